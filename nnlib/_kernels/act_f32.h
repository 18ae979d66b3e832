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
 * The sigmoid forward (scalar.pxd's sigmoid_fwd_f32: e = e^-|x| by vmath.h's
 * nn_exp_neg_f32_half_bounded, then select(x >= 0, 1, e) / (1 + e) in double, rounded
 * once): 4 values a time in two independent streams, with AVX2 and FMA, widened from
 * memory and rounded into each 16-byte store; the generic loop instead runs it in blocks
 * through a stack buffer of doubles (activations.pyx's note). The same operations and
 * constants (vmath.h's NN_EXPH_*) in GCC's contraction (the polynomial's Horner steps,
 * the reduction's x - kd ln2/2 as FMAs), the clamp at -708 as one vmaxpd instead of a
 * compare and a blend (a NaN passes as the second operand, as through the select); every
 * float32 x gives the generic loop's bits, NaN payloads included (checked on all 2^32
 * against the previous build). The tail (fewer than 4) is the same vector code under a
 * masked load and store, which touch only the lanes below n. 1e6 values, one thread,
 * thread-CPU medians, interleaved with the previous build, on the AVX2 machine of
 * 2026-12-05 (Zen 1 EPYC under KVM, no AVX-512; GCC's generic loop there is 4 doubles
 * wide, ymm): 3660-3700 -> 3270-3310 us, and 1e4 values 38.0-38.3 -> 33.3-34.2 us
 * (PyTorch's float forward there: ~2350 us). Measured there and not kept (a copy of
 * the loop outside nnlib, same machine, 1e6 values: 3040-3120 us as kept): one stream
 * ~4 % slower; the select of 1 and e by x's sign bit (vblendvpd on x, no compare; the
 * same bits) within the noise; Estrin's scheme for the polynomial (two more products,
 * shorter chain) 3310-3470 us: the loop is bound by its vector operations, not by the
 * chain's latency; the division as a float reciprocal (vdivps) with one correction in
 * double 4590 us; e^x in quarter steps of ln 2 with 2^(j/4)'s bits from a 4-entry table
 * by vpermd and a degree-5 polynomial (one FMA fewer) 3160 us against 3125. (AVX-512's
 * vpermt2pd, a 16-entry table in two registers, is not available on that machine.)
 * With AVX-512 (F and VL) the same operations run 8 values a time in one 512-bit
 * register (nn_sigmoid_f32_x8), widened from memory (vcvtps2pd zmm, m256) and rounded
 * into each 32-byte store, the tail under a mask of the lanes below n: every float32 x
 * gives the generic loop's bits, NaN payloads included (all 2^32 checked against the
 * generic block loop and against the previous build). On the AVX-512 Intel Xeon of
 * 2026-12-06 (KVM, 2.6 GHz; GCC's generic loop there runs the blocks 8 doubles wide)
 * the generic loop is bound by the two 512-bit vector ports, not by the divider: a copy
 * outside nnlib, thread-CPU medians of 41 interleaved runs, 1e6 values (4 MB, in L3):
 * generic 688-776 us, this loop 637-711 (-8 %), a product in the division's place (a
 * probe, wrong results) 559; 8192 values (in L1): 5.4-5.9 -> 4.8-5.2 us; in nnlib
 * (activation_forward alone, one thread, medians of 21, the two builds interleaved
 * three times) 1e6 values 770-826 -> 710-752 us, 8192 values 5.7-6.3 -> 5.0-5.4 us
 * (PyTorch's float forward there: 470-620 us at 1e6). Measured there
 * and not kept: two streams of 8 within 2 %; sqrt2's bits by vpermq from an 8-entry
 * table (one uop fewer) no faster; the quotient from vrcp14pd, one Newton step and a
 * correction by the exact remainder, with a division only on lanes whose result lies
 * within 8 units of the 29 dropped bits of a float32 midpoint (the same bits), 912 us
 * against 637: the added FMA-class operations cost the ports more than the division.
 * The 4-wide loop above is not built there (AVX2 machines only).
 * On the AVX-512 Zen 4 of 2026-12-07 (KVM, ~3.6 GHz; vdivpd zmm one per ~9 cycles) the
 * 8-wide loop is not divider-bound either: a copy outside nnlib, 1e6 values, thread-CPU
 * medians of 101 interleaved runs, 647 us (~19 cycles per 8 values for 21 512-bit
 * operations), a product in the division's place (a probe, wrong results) 580 us, so the
 * division costs 67 us and the rest is the ports. Ziv's strategy in the division's place,
 * measured and not kept (all bitwise this loop's results over all 2^32 float32 x): q' =
 * q0 (1 + h + h^2), q0 = num r0, r0 = vrcp14pd(d), h = 1 - d r0 (|h| <= 2^-14, so
 * |q'/q - 1| <= 2^-42 (1 + 2^-13) + 3 2^-53 and, with the division's own 2^-53, q' is
 * within 2^12 units of its last place of the double quotient qd); where q''s 29 bits
 * below float32's are more than 2^12 units from a midpoint's (10...0), no float32
 * midpoint lies between q' and qd, so both round to the same float (rounding to float is
 * monotone); the other lanes, NaN and q' < 2^-125 (float32's subnormal results drop more
 * bits) take the division: 854 us (fallbacks: 15 vectors of 125000 at 1e6 normal x;
 * 24 % of all 2^32 patterns, the x < -86.6 and NaN ones). Without the test (wrong at the
 * rare midpoint lanes) it is still 714 us: the five operations it adds to the FMA ports
 * cost more than the division they replace. Two Newton steps from vrcp14pd with the test
 * as q' (1 -+ 2^-40) by FMA, both rounded to float and compared: 1090 us; a float seed
 * (vdivps on the rounded d) and one Newton step in double: 1050 us. Also measured there:
 * j's factor sqrt2 as one vpermq from a register table [0, sqrt2 - 1.5]x4 (the same bits)
 * 635 us against 647, within what a build-to-build comparison resolves; -min(|x|, 708) as
 * one vrangepd 594 us, but a NaN x gives 0 there (vrangepd returns the number operand),
 * and restoring NaN's lanes costs what it saves.
 *
 * The tanh forward (vmath.h's nn_tanh_f32: -2|x|, -60 beyond NN_TANH_F32_SATURATE,
 * E = expm1 of it by nn_expm1_neg_f32_core, |E| with x's sign over 2 + E, rounded once):
 * with AVX-512 (F and VL) 8 values a time in one 512-bit register, widened from memory
 * and rounded into each 32-byte store, the tail under a mask, as the sigmoid forward;
 * the same operations in GCC's contraction (the reduction's t and r as FMAs, nn_exp_q7's
 * Horner steps, s (r q) + (s - 1) as one FMA), the sign's merge one vpternlogq. Every
 * float32 x gives the generic block loop's bits, NaN payloads included (all 2^32 checked
 * in a C copy and through F.tanh against the previous build). Same Xeon, thread-CPU
 * medians of 41, a copy outside nnlib: 1e6 values 790 -> 764 us, 8192 values 5.76 ->
 * 5.50 us (the first form measured 718 -> 694 and 5.84 -> 5.43): 3-7 %, as the sigmoid
 * forward bound by the two 512-bit ports; PyTorch's float forward there: 380-460 us.
 *
 * The sign forward (scalar.pxd's act_sign_float: x > 0 ? 1 : (x < 0 ? -1 : x * 0)) with
 * AVX-512F: one vfixupimmps per 16 values, whose table maps each class of x (QNaN, SNaN,
 * +-0, 1, -inf, +inf, other negative, other positive) to the generic loop's result: x
 * quieted for a NaN (sign and payload kept, as x * 0), +0 for +-0 with x's sign ORed in
 * after (one vpternlogd), -1 or +1 for the rest. GCC's generic loop spends three compares, a masked multiply, two masked
 * moves and two ors on each 16 values and reads x three times, and on Zen 4 that, not
 * memory, bounds it: a copy of both loops outside nnlib, 1e6 values (4 MB each way, in
 * L3), thread-CPU medians of 201: generic 111 us, this loop 84 us, a plain vector copy
 * 84 us (the sign OR: 84.4 against 83.3 us without it, medians of 301, the loop is
 * memory-bound). In nnlib (activation_forward alone, one thread, the builds in alternating
 * processes, medians of 9 x 101): 110 -> 86 us. Every float32 bit pattern gives the
 * generic loop's bits (all 2^32 checked against it, in the C copy with MXCSR's
 * denormals-are-zero off and on -- with it on, a subnormal reads as +-0 for the table as
 * for the compares -- and through F.sign against the previous build).
 *
 * NN_ACT_F32_LEAKY, NN_ACT_F32_SIGN, NN_ACT_F32_OUTPUT_VJP, NN_ACT_F32_SIGMOID_FWD and
 * NN_ACT_F32_TANH_FWD are 0 where the instructions are missing (the functions are then
 * empty and the generic loops run).
 */
#ifndef NNLIB_ACT_F32_H
#define NNLIB_ACT_F32_H

#include <math.h>
#include <stdint.h>

#include "vmath.h"    /* the sigmoid forward's e^x constants */

/* the leaky_relu loops need AVX-512 alone, the others AVX2 with FMA too */
#if defined(__AVX2__) || defined(__AVX512F__)
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

#if defined(__AVX512F__)
#define NN_ACT_F32_SIGN 1

/* vfixupimmps's response per class of x, one nibble each from class 0 up: QNaN and SNaN
 * -> x quieted (2), +-0 -> +0 (8), 1 -> +1 (10), -inf -> -1 (9), +inf -> +1 (10), other
 * negative -> -1 (9), other positive -> +1 (10); a subnormal x is negative or positive,
 * or zero when MXCSR's denormals-are-zero bit is set, as the compares of the generic
 * loop read it then. The zero's sign is x's, ORed in after (nn_sign_f32): with DAZ set,
 * Intel's pseudocode replaces every input of exponent 0 (+-0 and subnormals) by +0.0
 * before the table, so "x itself" (1) would give +0 for -0 there */
#define NN_SIGN_FIXUP_TABLE 0xA9A9A822

/* sign(x) for 16 values: the table's result with x's sign bit ORed in (one vpternlogd:
 * r | (x & sign)), which changes only the zero class's +0 -- -1 and a NaN carry x's sign
 * already, +1 comes from a positive x */
static inline __m512 nn_sign16_f32(__m512 v, __m512i T, __m512i S)
{
    __m512i r = _mm512_castps_si512(_mm512_fixupimm_ps(v, v, T, 0));
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(r, _mm512_castps_si512(v), S,
                                                         0xF8));
}

/* out = sign(x), 16 values a time; the tail (fewer than 16) under a mask of the lanes
 * below n */
static inline void nn_sign_f32(const float* x, float* out, Py_ssize_t n)
{
    const __m512i T = _mm512_set1_epi32(NN_SIGN_FIXUP_TABLE);
    const __m512i S = _mm512_set1_epi32((int)0x80000000u);
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, nn_sign16_f32(_mm512_loadu_ps(x + i), T, S));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m,
                              nn_sign16_f32(_mm512_maskz_loadu_ps(m, x + i), T, S));
    }
}
#else
#define NN_ACT_F32_SIGN 0
static inline void nn_sign_f32(const float* x, float* out, Py_ssize_t n)
{ (void)x; (void)out; (void)n; }
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

#define NN_ACT_F32_SIGMOID_FWD 1

/* p = nn_exp_neg_f32_half_core's polynomial in r, in Horner's order as GCC contracts it
 * (one FMA a degree), with the vector width's fmadd and set1 */
#define NN_EXPH_HORNER(p, r, FMADD, SET1)                                          \
    do {                                                                           \
        (p) = FMADD(SET1(NN_EXPH_C6), (r), SET1(NN_EXPH_C5));                      \
        (p) = FMADD((p), (r), SET1(NN_EXPH_C4));                                   \
        (p) = FMADD((p), (r), SET1(NN_EXPH_C3));                                   \
        (p) = FMADD((p), (r), SET1(NN_EXPH_C2));                                   \
        (p) = FMADD((p), (r), SET1(NN_EXPH_C1));                                   \
        (p) = FMADD((p), (r), SET1(1.0));                                          \
    } while (0)

/* sigmoid_fwd_f32 (scalar.pxd) on 4 widened values, operation for operation as GCC
 * compiles it (vmath.h's nn_exp_neg_f32_half_bounded of -|x|, contracted to FMAs as
 * there): e = e^-|x|, rounded (select(x >= 0, 1, e) / (1 + e)). The clamp at -708 is
 * one vmaxpd (LIM > a ? LIM : a, a NaN passes as the second operand), the select of 1
 * and e one vblendvpd */
static inline __attribute__((always_inline)) __m128 nn_sigmoid_f32_x4(__m256d x)
{
    const __m256d ONE = _mm256_set1_pd(1.0), SH = _mm256_set1_pd(NN_EXPH_SHIFTER);
    const __m256d SIGN = _mm256_set1_pd(-0.0);
    __m256d a = _mm256_max_pd(_mm256_set1_pd(NN_EXP_F32_ARG_MIN), _mm256_or_pd(x, SIGN));
    __m256d t = _mm256_fmadd_pd(a, _mm256_set1_pd(2.0 * NN_LOG2E), SH);
    __m256d kd = _mm256_sub_pd(t, SH);
    __m256d r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(NN_EXPH_LN2_2), a);
    __m256i tb = _mm256_castpd_si256(t);
    __m256i j = _mm256_sub_epi64(_mm256_setzero_si256(),
                                 _mm256_and_si256(tb, _mm256_set1_epi64x(1)));
    __m256i sb = _mm256_add_epi64(_mm256_slli_epi64(tb, 51),
        _mm256_and_si256(j, _mm256_set1_epi64x((long long)NN_EXPH_SQRT2_D)));
    __m256d p;
    NN_EXPH_HORNER(p, r, _mm256_fmadd_pd, _mm256_set1_pd);
    __m256d e = _mm256_mul_pd(p, _mm256_castsi256_pd(sb));
    __m256d num = _mm256_blendv_pd(e, ONE, _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GE_OQ));
    return _mm256_cvtpd_ps(_mm256_div_pd(num, _mm256_add_pd(e, ONE)));
}

#if defined(__AVX512F__) && defined(__AVX512VL__)
/* nn_sigmoid_f32_x4 on 8 widened values in one 512-bit register: the same operations;
 * the clamp's -|x| as one vporq, j's factor sqrt2 as a masked move of its bits (a test
 * of t's low bit), the select of 1 and e a masked move on x >= 0 */
static inline __attribute__((always_inline)) __m256 nn_sigmoid_f32_x8(__m512d x)
{
    const __m512d ONE = _mm512_set1_pd(1.0), SH = _mm512_set1_pd(NN_EXPH_SHIFTER);
    __m512d a = _mm512_max_pd(_mm512_set1_pd(NN_EXP_F32_ARG_MIN), _mm512_castsi512_pd(
        _mm512_or_si512(_mm512_castpd_si512(x), _mm512_set1_epi64(INT64_MIN))));
    __m512d t = _mm512_fmadd_pd(a, _mm512_set1_pd(2.0 * NN_LOG2E), SH);
    __m512d kd = _mm512_sub_pd(t, SH);
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(NN_EXPH_LN2_2), a);
    __m512i tb = _mm512_castpd_si512(t);
    __m512i sb = _mm512_add_epi64(_mm512_slli_epi64(tb, 51), _mm512_maskz_mov_epi64(
        _mm512_test_epi64_mask(tb, _mm512_set1_epi64(1)),
        _mm512_set1_epi64((long long)NN_EXPH_SQRT2_D)));
    __m512d p;
    NN_EXPH_HORNER(p, r, _mm512_fmadd_pd, _mm512_set1_pd);
    __m512d e = _mm512_mul_pd(p, _mm512_castsi512_pd(sb));
    __m512d num = _mm512_mask_mov_pd(e, _mm512_cmp_pd_mask(x, _mm512_setzero_pd(),
                                                           _CMP_GE_OQ), ONE);
    return _mm512_cvtpd_ps(_mm512_div_pd(num, _mm512_add_pd(e, ONE)));
}

/* out = X8(x) over n floats, 8 values a time widened from memory (vcvtps2pd zmm, m256)
 * and rounded into each 32-byte store; the tail (fewer than 8) under a mask of the lanes
 * below n, whose load and store touch nothing past them */
#define NN_F32_MAP_X8(NAME, X8)                                                            \
static inline void NAME(const float* x, float* out, Py_ssize_t n)                          \
{                                                                                          \
    Py_ssize_t i = 0;                                                                      \
    for (; i + 8 <= n; i += 8)                                                             \
        _mm256_storeu_ps(out + i, X8(_mm512_cvtps_pd(_mm256_loadu_ps(x + i))));           \
    if (i < n) {                                                                           \
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1);                                      \
        _mm256_mask_storeu_ps(out + i, m, X8(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m,    \
                                                                           x + i))));     \
    }                                                                                      \
}

/* out = sigmoid(x) */
NN_F32_MAP_X8(nn_sigmoid_f32, nn_sigmoid_f32_x8)
#else
/* out = sigmoid(x), two independent streams of 4; the tail (fewer than 4) by a masked
 * load and store, which touch only the lanes below n */
static inline void nn_sigmoid_f32(const float* x, float* out, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128 a = nn_sigmoid_f32_x4(_mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        __m128 b = nn_sigmoid_f32_x4(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
        _mm_storeu_ps(out + i, a);
        _mm_storeu_ps(out + i + 4, b);
    }
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(out + i, nn_sigmoid_f32_x4(_mm256_cvtps_pd(_mm_loadu_ps(x + i))));
    if (i < n) {
        __m128i m = _mm_cmpgt_epi32(_mm_set1_epi32((int)(n - i)), _mm_setr_epi32(0, 1, 2, 3));
        _mm_maskstore_ps(out + i, m, nn_sigmoid_f32_x4(_mm256_cvtps_pd(_mm_maskload_ps(x + i, m))));
    }
}
#endif
#else
#define NN_ACT_F32_OUTPUT_VJP 0
static inline void nn_sigmoid_vjp_y_f32(const float* y, const float* g, float* out,
                                        Py_ssize_t n)
{ (void)y; (void)g; (void)out; (void)n; }
static inline void nn_tanh_vjp_y_f32(const float* y, const float* g, float* out,
                                     Py_ssize_t n)
{ (void)y; (void)g; (void)out; (void)n; }
#define NN_ACT_F32_SIGMOID_FWD 0
static inline void nn_sigmoid_f32(const float* x, float* out, Py_ssize_t n)
{ (void)x; (void)out; (void)n; }
#endif

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)
#define NN_ACT_F32_TANH_FWD 1

/* vmath.h's nn_tanh_f32 on 8 widened values in one 512-bit register, operation for
 * operation as GCC compiles the generic loop: y = -2|x| (-60 beyond NN_TANH_F32_SATURATE),
 * e = expm1(y) (nn_expm1_neg_f32_core: the reduction's t and r as FMAs, 2^k built in the
 * exponent field, nn_exp_q7 in Horner's order, s (r q) + (s - 1) as one FMA), |e| with
 * x's sign as one vpternlogq, then that over 2 + e, rounded once */
static inline __attribute__((always_inline)) __m256 nn_tanh_f32_x8(__m512d x)
{
    const __m512d SH = _mm512_set1_pd(NN_SHIFTER);
    const __m512i SIGN = _mm512_set1_epi64(INT64_MIN);
    __m512d ax = _mm512_castsi512_pd(_mm512_andnot_si512(SIGN, _mm512_castpd_si512(x)));
    __m512d y = _mm512_mask_mov_pd(
        _mm512_mul_pd(_mm512_set1_pd(-2.0), ax),
        _mm512_cmp_pd_mask(ax, _mm512_set1_pd(NN_TANH_F32_SATURATE), _CMP_GT_OQ),
        _mm512_set1_pd(-60.0));
    __m512d t = _mm512_fmadd_pd(y, _mm512_set1_pd(NN_LOG2E), SH);
    __m512i k = _mm512_sub_epi64(_mm512_castpd_si512(t), _mm512_castpd_si512(SH));
    __m512d kd = _mm512_sub_pd(t, SH);
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(0.6931471805599453), y);
    __m512d s = _mm512_castsi512_pd(_mm512_slli_epi64(
        _mm512_add_epi64(k, _mm512_set1_epi64(1023)), 52));
    __m512d q = _mm512_fmadd_pd(r, _mm512_set1_pd(NN_EXP_Q7_C7), _mm512_set1_pd(NN_EXP_Q7_C6));
    q = _mm512_fmadd_pd(r, q, _mm512_set1_pd(NN_EXP_Q7_C5));
    q = _mm512_fmadd_pd(r, q, _mm512_set1_pd(NN_EXP_Q7_C4));
    q = _mm512_fmadd_pd(r, q, _mm512_set1_pd(NN_EXP_Q7_C3));
    q = _mm512_fmadd_pd(r, q, _mm512_set1_pd(NN_EXP_Q7_C2));
    q = _mm512_fmadd_pd(r, q, _mm512_set1_pd(NN_EXP_Q7_C1));
    q = _mm512_fmadd_pd(r, q, _mm512_set1_pd(NN_EXP_Q7_C0));
    __m512d e = _mm512_fmadd_pd(s, _mm512_mul_pd(r, q), _mm512_sub_pd(s, _mm512_set1_pd(1.0)));
    __m512d num = _mm512_castsi512_pd(_mm512_ternarylogic_epi64(      /* SIGN ? x : e */
        SIGN, _mm512_castpd_si512(x), _mm512_castpd_si512(e), 0xCA));
    return _mm512_cvtpd_ps(_mm512_div_pd(num, _mm512_add_pd(e, _mm512_set1_pd(2.0))));
}

/* out = tanh(x), as the sigmoid forward's driver (NN_F32_MAP_X8) */
NN_F32_MAP_X8(nn_tanh_fwd_f32, nn_tanh_f32_x8)
#else
#define NN_ACT_F32_TANH_FWD 0
static inline void nn_tanh_fwd_f32(const float* x, float* out, Py_ssize_t n)
{ (void)x; (void)out; (void)n; }
#endif

#endif
