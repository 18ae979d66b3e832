/* act_f32.h -- float32 activation loops with the float<->double conversions written out.
 *
 * Design note
 * -----------
 * activations.pyx's float32 loops are generic Cython loops that GCC vectorizes. Where a
 * loop is little more than its float<->double conversions, GCC's code is bound by them
 * and by the lane shuffles around them: it vectorizes 16 floats at a time, loads them
 * whole and widens each half (vextractf32x8 of the upper one, then vcvtps2pd), and joins
 * rounded halves (vinsert*) before a store. These loops, as optim_f32.h's SGD step, widen
 * straight from memory (vcvtps2pd ymm, m128 / zmm, m256) and store each rounding as it
 * comes, with the choices made by compares and masks, never a shuffle. Each computes the
 * generic loop's formula operation for operation, so every result is bitwise the generic
 * loop's (checked against the generic build over all 2^32 float32 values of each
 * operand, the other one at 15 values: +-0, 1, -2.5, 0.3, +-inf, FLT_MAX, subnormals,
 * quiet and signalling NaNs; tests/test_activations_f32_loops.py checks each result
 * against the float64 kernel's rounded once, at lengths around every vector boundary).
 * The one exception is the payload of a product of two NaNs (x and g, or y and g), which
 * the generic build does not fix either: GCC orders that product one way in its vector
 * body and the other in some epilogue positions, so the same two NaNs give either
 * payload depending on where they sit; here the vector body takes GCC's body's order.
 * The tail (fewer than a vector) is plain C with the same operations.
 *
 * leaky_relu (scalar.pxd's FLOAT32_NATIVE_FORMS: the slope's product taken in double and
 * rounded once, x or g passed unchanged): the forward widens x, multiplies the lanes
 * with x <= 0 or NaN by p (a masked multiply: the other lanes keep x, whose widening
 * and rounding are exact) and rounds, 4 values a time in two independent streams; the
 * vjp rounds p g and selects g where x > 0 in float, after the rounding (so g's bits
 * pass unchanged, a signalling NaN too), 8 a time; a NaN x (g x, in the generic loop's
 * operand order: with both NaN the payload is g's) is rare and sits behind a branch.
 * 1e6 values, one thread, AVX-512 (Zen 4): forward 159 -> 114 us, vjp 222 -> 163 us.
 * Measured and not kept: the forward in one stream 147 us, in four 1 % faster than in
 * two, 8 a time 137 us, its two halves joined (vinsertf128) into one 32-byte store 5 %
 * slower; the vjp 4 a time 222 us, its NaN lanes' multiply without the branch 169 us.
 * The vjp is then where relu's float vjp is (161 us against 170: two streams in, one
 * out), the forward 25 us above relu's float forward (113 against 88).
 * Only with AVX-512VL: the AVX2 forms (vblendvps for the selects) measured slower than
 * GCC's AVX2 loop on the same machine (built with -mno-avx512f: forward 164 -> 173 us,
 * vjp 209 -> 232), so there the generic loops run.
 *
 * sigmoid's and tanh's vjp from the output (activations.pyx's OUTPUT_VJP_F32_DIRECT):
 * y (1 - y) g and (1 - y^2) g in double, 4 values a time; with AVX2 and FMA. 1e6 values,
 * one thread: sigmoid 241 -> 171 us, tanh 219 -> 162 us (8 a time on AVX-512: 214 and
 * 205); built with -mno-avx512f: 261 -> 174 and 230 -> 182 us.
 *
 * NN_ACT_F32_LEAKY and NN_ACT_F32_OUTPUT_VJP are 0 where the instructions are missing
 * (the functions are then empty and the generic loops run).
 */
#ifndef NNLIB_ACT_F32_H
#define NNLIB_ACT_F32_H

#include <math.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__) && defined(__AVX512VL__)
#define NN_ACT_F32_LEAKY 1

/* out = x > 0 ? x : (float)(p x): x <= 0 and NaN lanes take the product (a masked
 * multiply), the others keep x, whose widening and rounding are exact */
static inline void nn_leaky_relu_f32(const float* x, float* out, Py_ssize_t n, double p)
{
    const __m256d P = _mm256_set1_pd(p), Z = _mm256_setzero_pd();
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d xd = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        __m256d xe = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        __mmask8 ld = _mm256_cmp_pd_mask(xd, Z, _CMP_NGT_UQ);     /* x <= 0 or NaN */
        __mmask8 le = _mm256_cmp_pd_mask(xe, Z, _CMP_NGT_UQ);
        _mm_storeu_ps(out + i, _mm256_cvtpd_ps(_mm256_mask_mul_pd(xd, ld, P, xd)));
        _mm_storeu_ps(out + i + 4, _mm256_cvtpd_ps(_mm256_mask_mul_pd(xe, le, P, xe)));
    }
    for (; i + 4 <= n; i += 4) {
        __m256d xd = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        __mmask8 ld = _mm256_cmp_pd_mask(xd, Z, _CMP_NGT_UQ);
        _mm_storeu_ps(out + i, _mm256_cvtpd_ps(_mm256_mask_mul_pd(xd, ld, P, xd)));
    }
    for (; i < n; i++)
        out[i] = x[i] > 0.0f ? x[i] : (float)(p * x[i]);
}

/* out = x > 0 ? g : (x <= 0 ? (float)(p g) : x g): the selection in float, after the
 * rounding, so g's bits pass unchanged (a signalling NaN too); a NaN x is rare, so its
 * product sits behind a branch */
static inline void nn_leaky_relu_vjp_f32(const float* x, const float* g, float* out,
                                         Py_ssize_t n, double p)
{
    const __m512d P = _mm512_set1_pd(p);
    const __m256 Z = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xf = _mm256_loadu_ps(x + i), gf = _mm256_loadu_ps(g + i);
        __m256 r = _mm512_cvtpd_ps(_mm512_mul_pd(P, _mm512_cvtps_pd(gf)));
        __mmask8 gt = _mm256_cmp_ps_mask(xf, Z, _CMP_GT_OQ);
        __mmask8 un = _mm256_cmp_ps_mask(xf, xf, _CMP_UNORD_Q);
        r = _mm256_mask_blend_ps(gt, r, gf);
        if (un)     /* g x: with both NaN, g's (the operand order of GCC's generic loop) */
            r = _mm256_mask_mul_ps(r, un, gf, xf);
        _mm256_storeu_ps(out + i, r);
    }
    for (; i < n; i++)
        out[i] = x[i] > 0.0f ? g[i] : (x[i] <= 0.0f ? (float)(p * g[i]) : x[i] * g[i]);
}
#else
#define NN_ACT_F32_LEAKY 0
static inline void nn_leaky_relu_f32(const float* x, float* out, Py_ssize_t n, double p)
{ (void)x; (void)out; (void)n; (void)p; }
static inline void nn_leaky_relu_vjp_f32(const float* x, const float* g, float* out,
                                         Py_ssize_t n, double p)
{ (void)x; (void)g; (void)out; (void)n; (void)p; }
#endif

#if defined(__AVX2__) && defined(__FMA__)
#define NN_ACT_F32_OUTPUT_VJP 1

/* out = (float)(act'(y) g) in double, act' = y (1 - y) (sigmoid) or 1 - y y rounded once
 * (tanh: scalar.pxd's one_minus_square, -fma(y, y, -1), which GCC compiles as one
 * vfnmadd: +0, not -0, at |y| = 1); tanh is a literal at each call, so each kind is a
 * loop of its own without a branch */
static inline __attribute__((always_inline)) void
nn_output_vjp_f32_loop(const float* y, const float* g, float* out, Py_ssize_t n, int tanh)
{
    const __m256d ONE = _mm256_set1_pd(1.0);
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d yd = _mm256_cvtps_pd(_mm_loadu_ps(y + i));
        __m256d gd = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
        __m256d d = tanh ? _mm256_fnmadd_pd(yd, yd, ONE)
                         : _mm256_mul_pd(yd, _mm256_sub_pd(ONE, yd));
        _mm_storeu_ps(out + i, _mm256_cvtpd_ps(_mm256_mul_pd(d, gd)));
    }
    for (; i < n; i++) {
        double yd = y[i];
        out[i] = (float)((tanh ? fma(-yd, yd, 1.0) : yd * (1.0 - yd)) * (double)g[i]);
    }
}

static inline void nn_sigmoid_vjp_y_f32(const float* y, const float* g, float* out,
                                        Py_ssize_t n)
{
    nn_output_vjp_f32_loop(y, g, out, n, 0);
}

static inline void nn_tanh_vjp_y_f32(const float* y, const float* g, float* out,
                                     Py_ssize_t n)
{
    nn_output_vjp_f32_loop(y, g, out, n, 1);
}
#else
#define NN_ACT_F32_OUTPUT_VJP 0
static inline void nn_sigmoid_vjp_y_f32(const float* y, const float* g, float* out,
                                        Py_ssize_t n)
{ (void)y; (void)g; (void)out; (void)n; }
static inline void nn_tanh_vjp_y_f32(const float* y, const float* g, float* out,
                                     Py_ssize_t n)
{ (void)y; (void)g; (void)out; (void)n; }
#endif

#endif
