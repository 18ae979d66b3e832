/* The L2 penalty's sums of squares of several weight snapshots at once (train.pyx's
 * epoch loop, deferred penalties).
 *
 *   nn_copy_absmax_{f,d}(src, dst, n):
 *       dst[:n] = src[:n]; returns max |src[i]| (as a double; inf or NaN when some
 *       src[i] is not finite), the maximum taken on the bits (|x| ordered as unsigned
 *       integers), which vectorizes where a floating max does not.
 *   nn_sq_chains_{f,d}(p, n, out):
 *       out[k] = the sum of p[k][i]^2 for i < n, added one by one from 0 in index order,
 *       for the NN_SQ_CHAINS arrays p[0 .. NN_SQ_CHAINS).
 *
 * Each out[k] is bitwise train.pyx's ``sum_squares_from(0.0, p[k], n)`` as GCC compiles
 * it there: the squares of all but the last n % 4 terms are rounded and then added (its
 * vector loop squares 8 or 4 terms in a vector and adds them in order), the last n % 4
 * are fused multiply-adds (its scalar tail). The asm barriers keep GCC from contracting
 * the rounded square into the addition, and from packing the six sums into vectors
 * (its SLP pass did: the lane shuffles took longer than the additions). In float32 the square of a float is exact in
 * double, so both forms agree.
 *
 * One chain is a run of dependent additions: 3 cycles each (Zen 4), so a 100 x 100
 * layer takes 30 000 cycles whatever the width of the machine. NN_SQ_CHAINS = 6
 * independent chains advance together in the time of one: six additions per 3-cycle
 * latency fill the two floating-point adders.
 */
#ifndef NNLIB_PENALTY_H
#define NNLIB_PENALTY_H

#include <stdint.h>
#include <string.h>

#define NN_SQ_CHAINS 6

static inline double nn_copy_absmax_d(const double* restrict src, double* restrict dst,
                                      Py_ssize_t n)
{
    Py_ssize_t i;
    uint64_t m = 0, b;
    double r;
    for (i = 0; i < n; i++) {
        memcpy(&b, src + i, 8);
        b &= 0x7fffffffffffffffULL;
        m = b > m ? b : m;
        dst[i] = src[i];
    }
    memcpy(&r, &m, 8);
    return r;
}

static inline double nn_copy_absmax_f(const float* restrict src, float* restrict dst,
                                      Py_ssize_t n)
{
    Py_ssize_t i;
    uint32_t m = 0, b;
    float r;
    for (i = 0; i < n; i++) {
        memcpy(&b, src + i, 4);
        b &= 0x7fffffffU;
        m = b > m ? b : m;
        dst[i] = src[i];
    }
    memcpy(&r, &m, 4);
    return (double)r;
}

#define NN_SQ_ROUNDED(s, x) do { double q_ = (x) * (x); __asm__("" : "+x"(q_)); \
                                 (s) = (s) + q_; __asm__("" : "+x"(s)); } while (0)

/* the scalar tail: fused where the target has FMA (GCC contracts there), else rounded */
#ifdef __FP_FAST_FMA
#define NN_SQ_TAIL(x, s) __builtin_fma((x), (x), (s))
#else
#define NN_SQ_TAIL(x, s) ((s) + (x) * (x))
#endif

#define NN_SQ_CHAINS_FN(NAME, T)                                                        \
static inline void NAME(const T* const* p, Py_ssize_t n, double* out)                   \
{                                                                                       \
    const T* restrict p0 = p[0];                                                        \
    const T* restrict p1 = p[1];                                                        \
    const T* restrict p2 = p[2];                                                        \
    const T* restrict p3 = p[3];                                                        \
    const T* restrict p4 = p[4];                                                        \
    const T* restrict p5 = p[5];                                                        \
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, s5 = 0.0;                  \
    Py_ssize_t i, n4 = n - n % 4;                                                       \
    for (i = 0; i < n4; i++) {                                                          \
        NN_SQ_ROUNDED(s0, (double)p0[i]);                                               \
        NN_SQ_ROUNDED(s1, (double)p1[i]);                                               \
        NN_SQ_ROUNDED(s2, (double)p2[i]);                                               \
        NN_SQ_ROUNDED(s3, (double)p3[i]);                                               \
        NN_SQ_ROUNDED(s4, (double)p4[i]);                                               \
        NN_SQ_ROUNDED(s5, (double)p5[i]);                                               \
    }                                                                                   \
    for (; i < n; i++) {                                                                \
        s0 = NN_SQ_TAIL((double)p0[i], s0);                                             \
        s1 = NN_SQ_TAIL((double)p1[i], s1);                                             \
        s2 = NN_SQ_TAIL((double)p2[i], s2);                                             \
        s3 = NN_SQ_TAIL((double)p3[i], s3);                                             \
        s4 = NN_SQ_TAIL((double)p4[i], s4);                                             \
        s5 = NN_SQ_TAIL((double)p5[i], s5);                                             \
    }                                                                                   \
    out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3; out[4] = s4; out[5] = s5;       \
}
NN_SQ_CHAINS_FN(nn_sq_chains_d, double)
NN_SQ_CHAINS_FN(nn_sq_chains_f, float)

/* A step's reported loss and the epoch's running sum, in the operations GCC gives
 * epoch_loop's own lines for them (checked in its code: ``loss + 0.5 l2 pen`` contracted
 * to a fused multiply-add where the target has FMA, ``total + loss B`` not): spelled
 * out, so that a sum formed late rounds as one formed at its step, whatever GCC makes
 * of the lines around them. */
static inline double nn_penalized(double loss, double half_l2, double pen)
{
#ifdef __FP_FAST_FMA
    return __builtin_fma(half_l2, pen, loss);
#else
    return loss + half_l2 * pen;
#endif
}

static inline double nn_add_weighted(double total, double loss, double weight)
{
    double q = loss * weight;
    __asm__("" : "+x"(q));
    return total + q;
}

#endif
