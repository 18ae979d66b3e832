/* row_max.h -- the maximum of each of a block of short rows (loss_rows.pxd's
 * exp_shifted_rows: softmax and log_softmax of short rows, and the softmax cross-entropy
 * of rows wider than ce_rows.h takes, or of any width where that is not built).
 *
 *   nn_rows_max_{f,d}(z, nr, c, rmax):
 *       rmax[r] = max_j z[r c + j] (in double) for r < nr, or NaN where row r holds one
 *
 * Design note
 * -----------
 * loss_rows.pxd's short_row_max runs one max chain per row in double, a value at a
 * time: at batch 32 of the digits net (10 classes, float32) it was a quarter of the
 * loss, the chain's latency ten compares long per row. Here a row is one vector of 16
 * floats or 8 doubles at a time (the lanes past c masked to -inf), reduced across its
 * lanes at the end. The maximum of numbers does not depend on the order they are
 * compared in, with two exceptions, which the caller settles with short_row_max itself:
 * a NaN (the row's NaN, first one and payload, must reach every output: this returns
 * some NaN) and a zero maximum (short_row_max keeps the first of -0 and +0, a vector max
 * either). Every other row's maximum is short_row_max's bit for bit (a float converts
 * to double exactly). Without AVX-512, NN_ROWS_MAX is 0 and the caller keeps
 * short_row_max for every row.
 */
#ifndef NNLIB_ROW_MAX_H
#define NNLIB_ROW_MAX_H

#include <stddef.h>

#if defined(__AVX512F__)
#define NN_ROWS_MAX 1
#include <immintrin.h>
#include <math.h>

/* One row's maximum: LN-lane vectors V of T (M its mask, SUF the intrinsics' suffix). */
#define NN_ROWS_MAX_DEF(NAME, T, V, M, LN, SUF, FULL)                                       \
static inline void NAME(const T* z, Py_ssize_t nr, Py_ssize_t c, double* rmax)             \
{                                                                                           \
    const V lowest = _mm512_set1_##SUF(-INFINITY);                                          \
    Py_ssize_t r, j;                                                                        \
    for (r = 0; r < nr; r++) {                                                              \
        const T* row = z + r * c;                                                           \
        V mx = lowest;                                                                      \
        M nan = 0;                                                                          \
        for (j = 0; j < c; j += LN) {                                                       \
            const M mk = c - j >= LN ? (M)FULL : (M)(((M)1 << (c - j)) - 1);                \
            const V v = _mm512_mask_loadu_##SUF(lowest, mk, row + j);                       \
            nan |= _mm512_cmp_##SUF##_mask(v, v, _CMP_UNORD_Q);                             \
            mx = _mm512_max_##SUF(mx, v);                                                   \
        }                                                                                   \
        rmax[r] = nan ? (double)NAN : (double)_mm512_reduce_max_##SUF(mx);                  \
    }                                                                                       \
}

NN_ROWS_MAX_DEF(nn_rows_max_f, float, __m512, __mmask16, 16, ps, 0xffffu)
NN_ROWS_MAX_DEF(nn_rows_max_d, double, __m512d, __mmask8, 8, pd, 0xffu)

#else
#define NN_ROWS_MAX 0
/* never called (the caller tests NN_ROWS_MAX first) */
static inline void nn_rows_max_f(const float* z, Py_ssize_t nr, Py_ssize_t c,
                                 double* rmax) { }
static inline void nn_rows_max_d(const double* z, Py_ssize_t nr, Py_ssize_t c,
                                 double* rmax) { }
#endif

#endif
