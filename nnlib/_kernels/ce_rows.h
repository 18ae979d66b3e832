/* ce_rows.h -- the row passes of softmax cross-entropy over a block of short rows
 * (loss_rows.pxd's softmax_cross_entropy_rows for rows of at most NN_CE_SHORT_MAX_C
 * classes), a row in one or two vectors of 8 doubles.
 *
 *   nn_ce_shift_rows_{f,d}(z, nr, c, rmax, e):
 *       rmax[r] = max_j z[r c + j] (in double), e[r c + j] = z[r c + j] - rmax[r] for
 *       r < nr; returns how many rows have a maximum that is NaN or a zero (there rmax
 *       and e are the caller's to redo: see below)
 *   nn_ce_row_sums(e, nr, c, rsum):
 *       rsum[r] = sum_j e[r c + j] (in order, from 0)
 *   nn_ce_grad_rows_{f,d}(e, nr, c, y, scale, rinv, dz):
 *       dz[r c + j] = scale (round(e[r c + j]) rinv[r] - [j == y[r]]), rinv[r] = 1 / rsum[r]
 *
 * Design note
 * -----------
 * loss_rows.pxd's exp_shifted_rows takes a block of rows in five passes: the maxima
 * (row_max.h, a vector per row), a scan of them for the rows short_row_max must redo, the
 * shifted values z - m (GCC's loop: half a vector and a scalar tail per row of 10), the
 * exps (one vectorized loop over the block), the sums; then softmax_cross_entropy_rows
 * writes the gradient (GCC's loop again: vectors of 4 and a scalar tail per row of 10,
 * 1/s a scalar division on the chain of the row's sum). Here the row stays in registers
 * from its load to its shifted values (maximum, NaN test and subtraction in one pass,
 * the lanes past c masked, the count of rows to redo kept on the way), and the gradient
 * is a masked vector per 8 classes with no scalar tail, from reciprocals the caller
 * takes a vector at a time after the sums. The exps and the logs stay loss_rows.pxd's
 * loops, so their values are the same instructions' as before.
 *
 * Each result is the one the loops above computed, bit for bit: the maximum of numbers
 * does not depend on the order of the compares, except for a NaN (the row's first NaN
 * must reach every output) and a zero (short_row_max keeps the first of -0 and +0), the
 * rows whose maximum this returns as NaN or 0 and the caller redoes with short_row_max;
 * z - m is the same subtraction in double; the sum runs in the same order from 0; the
 * gradient is round(e) x (1/s) - [j == y] as one FMA (GCC contracts the loop's expression
 * so: vfmsub, in body and tail alike), times scale, rounded. The flush-to-zero mode
 * (fpenv.h) acts on the same instructions (conversions, subtraction, FMA, product) as
 * in those loops.
 *
 * NaN payloads. Where a row holds a NaN, s and 1/s are NaN, and an FMA with two NaN
 * operands returns the one its instruction reads first, which an intrinsic leaves to the
 * compiler's choice of form. Such rows (a branch no other row takes) take that NaN
 * explicitly: float32 round(e)'s where it is NaN, else 1/s's (GCC's 16-wide body reads
 * round(e) first: vfmsub132pd), float64 1/s's (its loop's vfmsub231pd reads 1/s first).
 * The sum's NaN is the first NaN e_j, as s + e_j keeps s's, and the caller adds the
 * losses keeping the first NaN (the old loops' vaddsd order), whatever order the
 * compiler gives the operands of an addition. A row whose NaNs all have one payload
 * (one NaN, or copies of it) gives the old loop's bits everywhere; in a row with NaNs
 * of two payloads, GCC's float32 loop itself reads 1/s first in some lanes (the second
 * half of its 8-wide step, one position of its scalar tail: register allocation), so
 * there the payload of some gradient NaNs differs from it (NaN either way).
 * Without AVX-512 (F and VL), NN_CE_SHORT is 0 and the caller keeps the loops above.
 */
#ifndef NNLIB_CE_ROWS_H
#define NNLIB_CE_ROWS_H

#include <stddef.h>

#include "paths.h"    /* NN_CE_SHORT_MAX_C, rendered from nnlib/_paths.py */

#if defined(__AVX512F__) && defined(__AVX512VL__)
#define NN_CE_SHORT 1
#include <immintrin.h>
#include <math.h>

/* a row lives in two vectors of 8 doubles: a wider threshold would drop classes */
_Static_assert(NN_CE_SHORT_MAX_C >= 1 && NN_CE_SHORT_MAX_C <= 16,
               "ce_rows.h holds a row of at most 16 classes");

/* the lanes below n (0 <= n <= 16) of the first and the second vector of 8 */
static inline __mmask8 nn_ce_mask0(Py_ssize_t n) { return n >= 8 ? 0xff : (__mmask8)((1u << n) - 1); }
static inline __mmask8 nn_ce_mask1(Py_ssize_t n) { return n <= 8 ? 0 : (__mmask8)((1u << (n - 8)) - 1); }

/* 8 values of a row widened to double, the lanes outside k -inf (no effect on a max);
 * a masked load reads nothing of the lanes outside k */
static inline __m512d nn_ce_load_f(const float* z, __mmask8 k)
{
    return _mm512_cvtps_pd(_mm256_mask_loadu_ps(_mm256_set1_ps(-INFINITY), k, z));
}

static inline __m512d nn_ce_load_d(const double* z, __mmask8 k)
{
    return _mm512_mask_loadu_pd(_mm512_set1_pd(-INFINITY), k, z);
}

#define NN_CE_SHIFT_DEF(NAME, T, LOAD)                                                     \
static inline Py_ssize_t NAME(const T* z, Py_ssize_t nr, Py_ssize_t c, double* rmax,      \
                              double* e)                                                  \
{                                                                                         \
    const __mmask8 k0 = nn_ce_mask0(c), k1 = nn_ce_mask1(c);                              \
    Py_ssize_t r, redo = 0;                                                               \
    for (r = 0; r < nr; r++) {                                                            \
        const T* row = z + r * c;                                                         \
        const __m512d v0 = LOAD(row, k0);                                                 \
        __m512d v1 = v0, mx = v0, mb;                                                     \
        __mmask8 nan = _mm512_cmp_pd_mask(v0, v0, _CMP_UNORD_Q);                          \
        double m;                                                                         \
        if (k1) {                                                                         \
            v1 = LOAD(row + 8, k1);                                                       \
            nan |= _mm512_cmp_pd_mask(v1, v1, _CMP_UNORD_Q);                              \
            mx = _mm512_max_pd(v0, v1);                                                   \
        }                                                                                 \
        m = nan ? (double)NAN : _mm512_reduce_max_pd(mx);                                 \
        redo += (nan != 0) | (m == 0.0);   /* !(m < 0 || m > 0), without a branch */     \
        rmax[r] = m;                                                                      \
        mb = _mm512_set1_pd(m);                                                           \
        _mm512_mask_storeu_pd(e + r * c, k0, _mm512_sub_pd(v0, mb));                      \
        if (k1)                                                                           \
            _mm512_mask_storeu_pd(e + r * c + 8, k1, _mm512_sub_pd(v1, mb));              \
    }                                                                                     \
    return redo;                                                                          \
}

NN_CE_SHIFT_DEF(nn_ce_shift_rows_f, float, nn_ce_load_f)
NN_CE_SHIFT_DEF(nn_ce_shift_rows_d, double, nn_ce_load_d)

/* round(e) (float32: to float and back; float64: e itself) x (1/s) - onehot, as the FMA
 * GCC's loop makes of it; for a NaN row (s NaN) the payload that loop's instruction
 * gives (see the design note) */
static inline __m512d nn_ce_term_f(__m512d e, __m512d inv, __m512d hot, int nan_row)
{
    const __m512d E = _mm512_cvtps_pd(_mm512_cvtpd_ps(e));
    __m512d x = _mm512_fmsub_pd(E, inv, hot);
    if (nan_row)            /* vfmsub132pd: round(e)'s NaN first, else 1/s's */
        x = _mm512_mask_mov_pd(inv, _mm512_cmp_pd_mask(E, E, _CMP_UNORD_Q), E);
    return x;
}

static inline __m512d nn_ce_term_d(__m512d e, __m512d inv, __m512d hot, int nan_row)
{
    __m512d x = _mm512_fmsub_pd(e, inv, hot);
    if (nan_row)            /* vfmsub231pd: 1/s's NaN first (and 1/s is NaN) */
        x = inv;
    return x;
}

static inline void nn_ce_store_f(float* dz, __mmask8 k, __m512d x)
{
    _mm256_mask_storeu_ps(dz, k, _mm512_cvtpd_ps(x));
}

static inline void nn_ce_store_d(double* dz, __mmask8 k, __m512d x)
{
    _mm512_mask_storeu_pd(dz, k, x);
}

/* rsum[r] = sum_j e[r c + j] in order from 0; where it is NaN, the first NaN e_j, as the
 * loop's s + e_j gives (s's NaN first) whichever way the compiler orders the operands */
static inline void nn_ce_row_sums(const double* e, Py_ssize_t nr, Py_ssize_t c,
                                  double* rsum)
{
    Py_ssize_t r, j;
    for (r = 0; r < nr; r++) {
        const double* er = e + r * c;
        double s = 0.0;
        for (j = 0; j < c; j++)
            s += er[j];
        if (s != s)
            for (j = 0; j < c; j++)
                if (er[j] != er[j]) {
                    s = er[j];
                    break;
                }
        rsum[r] = s;
    }
}

#define NN_CE_GRAD_DEF(NAME, T, TERM, STORE)                                               \
static inline void NAME(const double* e, Py_ssize_t nr, Py_ssize_t c, const long long* y,  \
                        double scale, const double* rinv, T* dz)                           \
{                                                                                          \
    const __mmask8 k0 = nn_ce_mask0(c), k1 = nn_ce_mask1(c);                               \
    const __m512d sb = _mm512_set1_pd(scale), one = _mm512_set1_pd(1.0);                   \
    Py_ssize_t r;                                                                          \
    for (r = 0; r < nr; r++) {                                                             \
        const double* er = e + r * c;                                                      \
        const double inv1 = rinv[r];                                                       \
        const __m512d inv = _mm512_set1_pd(inv1);                                          \
        const int nan_row = inv1 != inv1;   /* 1/s is NaN only where s is */               \
        const unsigned int hot = 1u << y[r];    /* y[r] in [0, c): the callers' check */   \
        __m512d x = TERM(_mm512_maskz_loadu_pd(k0, er), inv,                               \
                         _mm512_maskz_mov_pd((__mmask8)hot, one), nan_row);                \
        STORE(dz + r * c, k0, _mm512_mul_pd(sb, x));                                       \
        if (k1) {                                                                          \
            x = TERM(_mm512_maskz_loadu_pd(k1, er + 8), inv,                               \
                     _mm512_maskz_mov_pd((__mmask8)(hot >> 8), one), nan_row);             \
            STORE(dz + r * c + 8, k1, _mm512_mul_pd(sb, x));                               \
        }                                                                                  \
    }                                                                                      \
}

NN_CE_GRAD_DEF(nn_ce_grad_rows_f, float, nn_ce_term_f, nn_ce_store_f)
NN_CE_GRAD_DEF(nn_ce_grad_rows_d, double, nn_ce_term_d, nn_ce_store_d)

#else
#define NN_CE_SHORT 0
/* never called (the caller tests NN_CE_SHORT first) */
static inline Py_ssize_t nn_ce_shift_rows_f(const float* z, Py_ssize_t nr, Py_ssize_t c,
                                            double* rmax, double* e) { return 0; }
static inline Py_ssize_t nn_ce_shift_rows_d(const double* z, Py_ssize_t nr, Py_ssize_t c,
                                            double* rmax, double* e) { return 0; }
static inline void nn_ce_row_sums(const double* e, Py_ssize_t nr, Py_ssize_t c,
                                  double* rsum) { }
static inline void nn_ce_grad_rows_f(const double* e, Py_ssize_t nr, Py_ssize_t c,
                                     const long long* y, double scale, const double* rinv,
                                     float* dz) { }
static inline void nn_ce_grad_rows_d(const double* e, Py_ssize_t nr, Py_ssize_t c,
                                     const long long* y, double scale, const double* rinv,
                                     double* dz) { }
#endif

#endif
