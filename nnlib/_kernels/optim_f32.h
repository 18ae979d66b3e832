/* optim_f32.h -- PyTorch's SGD on float32 arrays with the float<->double conversions
 * written out, 4 elements at a time (optim_wide's update of float32 SGD).
 *
 * Design note
 * -----------
 * optim_rules.pxd states every rule once: each float32 element is widened to double,
 * updated in double and rounded once on store. In SGD, momentum and nesterov the
 * conversions are most of the work (two or three widenings and one or two roundings
 * for one or two multiply-adds), and the loops GCC makes of them are bound by the
 * conversions and by the lane shuffles around them: a float vector loaded whole is
 * widened in halves (vextractf32x8 or vextractf128 of its upper half, then vcvtps2pd),
 * and two rounded halves are joined (vinsert*) before the store. At 512 bits that is 3
 * shuffles to 6 conversions per 16 elements of plain SGD, and on Zen 4 a 512-bit
 * shuffle or conversion takes two cycles. Here each widening reads its 4 floats from
 * memory (vcvtps2pd ymm, m128) and each rounding stores its 4 floats as they come
 * (vcvtpd2ps, then a 16-byte store): conversions and nothing else on those ports (in
 * L1, one thread: SGD 0.20 -> 0.12 ns per element, momentum 0.44 -> 0.29; the same
 * code at 512 bits 0.16 and 0.33). Float32 Adam is not here: the same rewrite of its
 * loop (root and divisions on 8 floats, the rest on halves of 4 doubles) measured
 * within 2 % of GCC's, whose bound is elsewhere than the shuffles.
 *
 * The arithmetic is the generic loop's, operation for operation, as GCC contracts it
 * on an FMA target: the L2 term g + wd p is fma(wd, p, g), the momentum buffer
 * mu b + (1 - dampening) g is fma(mu, b, c g) with c g rounded first, nesterov's
 * g + mu b is fma(mu, b, g), and the step p - lr g is one fused multiply-subtract;
 * the buffer is stored as float and read back (PyTorch uses the stored buffer). So
 * every result is bitwise the generic loop's (tests/test_optim.py compares this
 * build with optim's generic one on finite and non-finite values at lengths around
 * every vector boundary). The tail (fewer than 4 elements) uses fma() with the same
 * operands. Only with AVX2 and FMA (NN_SGD_F32 is 0 otherwise: the generic loop
 * runs, and on a target without FMA it rounds products separately).
 */
#ifndef NNLIB_OPTIM_F32_H
#define NNLIB_OPTIM_F32_H

#include <math.h>

#if defined(__AVX2__) && defined(__FMA__)
#define NN_SGD_F32 1
#include <immintrin.h>

/* Elements [lo, hi) of PyTorch's SGD step on float32 param, grad and (momentum)
 * buffer s; the flags are literals at every call (nn_sgd_f32_range), so each
 * combination is a loop of its own without a branch. */
static inline __attribute__((always_inline)) void
nn_sgd_f32_loop(float* p, const float* g, float* s, Py_ssize_t lo, Py_ssize_t hi,
                double lr, double wd, double mu, double damp, int has_wd, int momentum,
                int first, int nesterov)
{
    const __m256d LR = _mm256_set1_pd(lr), WD = _mm256_set1_pd(wd);
    const __m256d MU = _mm256_set1_pd(mu), C = _mm256_set1_pd(1.0 - damp);
    const double c = 1.0 - damp;
    Py_ssize_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        __m256d w = _mm256_cvtps_pd(_mm_loadu_ps(p + i));
        __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
        if (has_wd)
            d = _mm256_fmadd_pd(WD, w, d);                          /* g + wd p */
        if (momentum) {
            __m256d b;
            __m128 bf;
            if (first)
                b = d;                                              /* buffer = g */
            else
                b = _mm256_fmadd_pd(MU, _mm256_cvtps_pd(_mm_loadu_ps(s + i)),
                                    _mm256_mul_pd(C, d));           /* mu b + c g */
            bf = _mm256_cvtpd_ps(b);
            _mm_storeu_ps(s + i, bf);
            b = _mm256_cvtps_pd(bf);                                /* the stored buffer */
            d = nesterov ? _mm256_fmadd_pd(MU, b, d) : b;
        }
        _mm_storeu_ps(p + i, _mm256_cvtpd_ps(_mm256_fnmadd_pd(LR, d, w)));  /* p - lr g */
    }
    for (; i < hi; i++) {
        double w = p[i], d = g[i], b;
        if (has_wd)
            d = fma(wd, w, d);
        if (momentum) {
            b = first ? d : fma(mu, (double)s[i], c * d);
            s[i] = (float)b;
            b = s[i];
            d = nesterov ? fma(mu, b, d) : b;
        }
        p[i] = (float)fma(-lr, d, w);
    }
}

/* nn_sgd_f32_loop with each reachable flag combination as literals (nesterov and first
 * mean nothing without momentum). */
static void
nn_sgd_f32_range(float* p, const float* g, float* s, Py_ssize_t lo, Py_ssize_t hi,
                 double lr, double wd, double mu, double damp, int has_wd, int momentum,
                 int first, int nesterov)
{
#define NN_SGD_F32_CALL(W, M, F, N) \
    nn_sgd_f32_loop(p, g, s, lo, hi, lr, wd, mu, damp, W, M, F, N)
#define NN_SGD_F32_MOMENTUM(W)                                                     \
    if (!momentum) NN_SGD_F32_CALL(W, 0, 0, 0);                                    \
    else if (first) { if (nesterov) NN_SGD_F32_CALL(W, 1, 1, 1);                   \
                      else NN_SGD_F32_CALL(W, 1, 1, 0); }                          \
    else { if (nesterov) NN_SGD_F32_CALL(W, 1, 0, 1);                              \
           else NN_SGD_F32_CALL(W, 1, 0, 0); }
    if (has_wd) { NN_SGD_F32_MOMENTUM(1) }
    else { NN_SGD_F32_MOMENTUM(0) }
#undef NN_SGD_F32_MOMENTUM
#undef NN_SGD_F32_CALL
}
#else
#define NN_SGD_F32 0
static void
nn_sgd_f32_range(float* p, const float* g, float* s, Py_ssize_t lo, Py_ssize_t hi,
                 double lr, double wd, double mu, double damp, int has_wd, int momentum,
                 int first, int nesterov)
{
    (void)p; (void)g; (void)s; (void)lo; (void)hi; (void)lr; (void)wd; (void)mu;
    (void)damp; (void)has_wd; (void)momentum; (void)first; (void)nesterov;
}
#endif

#endif
