/* Software prefetch of the next batch's rows of X (train.pyx's epoch loop).
 *
 *   nn_prefetch_rows(X, row_bytes, order, count, N):
 *       asks for every cache line of the rows order[0 .. count) of X (rows row_bytes
 *       apart; a row number outside [0, N) is skipped) into L2 (prefetcht1).
 *
 * A batch's gather copies rows in shuffled order: each row is a new, cold address, and
 * the copy waits on memory row after row (a fifth of a 20000 x 100 float64 epoch at
 * batch 32 or 200). Named one step ahead, the rows arrive while the step's products
 * run, and the gather reads them from L2. A prefetch changes no value. L1 (prefetcht0)
 * and non-temporal hints measured no faster than none: a batch of 200 rows (160 KB)
 * does not fit L1 and pushes out the products' operands.
 *
 * always_inline: a function of prefetches alone has no side effect GCC can see, and
 * GCC's IPA marks it const and drops its calls (measured: none left in train.so).
 */
#ifndef NNLIB_PREFETCH_H
#define NNLIB_PREFETCH_H

#include <stddef.h>

static inline __attribute__((always_inline)) void
nn_prefetch_rows(const char* X, Py_ssize_t row_bytes, const long long* order,
                 Py_ssize_t count, long long N)
{
    Py_ssize_t i, j;
    for (i = 0; i < count; i++) {
        long long r = order[i];
        const char* row;
        if (r < 0 || r >= N)
            continue;
        row = X + r * row_bytes;
        for (j = 0; j < row_bytes; j += 64)
            __builtin_prefetch(row + j, 0, 2);
        __builtin_prefetch(row + row_bytes - 1, 0, 2);    /* a row that ends mid-line */
    }
}

/* nn_copy_row(dst, src, bytes): dst[:bytes] = src[:bytes], whole 64-byte pieces and
 * then the bytes left, inline. The epoch's gather copies a batch's rows one call each;
 * libc's memcpy for a row of 256 bytes (the digits net's 64 floats) costs more in its
 * call and size dispatch than in the copy: 32 of them were 2% of a batch-32 epoch. */
static inline __attribute__((always_inline)) void
nn_copy_row(char* restrict dst, const char* restrict src, Py_ssize_t bytes)
{
    Py_ssize_t j = 0;
    for (; j + 64 <= bytes; j += 64)
        __builtin_memcpy(dst + j, src + j, 64);
    if (j < bytes)
        __builtin_memcpy(dst + j, src + j, (size_t)(bytes - j));
}

#endif
