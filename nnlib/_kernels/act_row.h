/* act_row.h -- ReLU's backward pass of one row (dense.pxd's act_backward_row) and of a
 * batch's columns (act_backward_cols), without a branch on the data.
 *
 * Design note
 * -----------
 *   nn_relu_backward_row_{f,d}(h, g, z, db, c):
 *       d = h[j] > 0 ? g[j] : g[j] * 0;  z[j] = d;  db[j] = d + 0     for j < c
 *   nn_relu_backward_cols_{f,d}(H, dH, dZ, work, n, c, j0, j1):
 *       the same d for rows i < n, columns j0 <= j < j1; work[j] += d in double, row
 *       after row (at batch 32 the branch took a fifth of a digits epoch, float32)
 *
 * That is the generic loop (d = g * act_grad_y_relu(h), the 0/1 mask as a number) as
 * GCC compiles it: the product by 1 dropped (g passes unchanged), the product by 0
 * taken (+-0, or NaN for an infinite or NaN g), then d + 0 for the bias gradient (-0
 * becomes +0). Without AVX-512 GCC makes that a branch per element (under its default
 * -ftrapping-math it does not if-convert the product by 0), which mispredicts on ReLU's
 * zero pattern: a third to a half of a batch-1 step's hidden units are zero, in no
 * order. Here the mask is a compare of a vector of h (NaN fails it, as there), g * 0
 * is formed in every lane and the mask selects between it and g, so the result is the
 * branch's bit for bit (a subnormal g under flush-to-zero too: g is never multiplied
 * where it passes). With AVX-512 GCC does vectorize the generic loops as this select
 * (a masked product), but behind a runtime test that the output does not overlap the
 * gradient, and the training loop runs them in place (dZ is dH): the test fails and the
 * scalar fallback, the branch, runs (perf on an AVX-512 Xeon guest, digits 64-100-10
 * float32: the one-row loop was 60% of forward_backward, a sixth of the batch-1 epoch;
 * the columns loop a quarter of the batch-32 epoch). So these forms are used on every
 * target, the one-row form with AVX-512 a vector of
 * 16 floats or 8 doubles at a time and the last elements one masked vector (the compare
 * of its masked-off lanes is false, and they are neither read nor written). Elsewhere
 * the vectors are GCC's vector extensions at the target's register width
 * (blas_small.h's nn_vf, nn_vd), then a half vector, then the scalar form for the last
 * few elements (fewer than a half vector), so it reads and writes only elements below
 * c. z may be g (in place): each element is read before it is written.
 */
#ifndef NNLIB_ACT_ROW_H
#define NNLIB_ACT_ROW_H

#include "blas_small.h"

/* the scalar form: each element's formula, for the last few */
#define NN_RELU_BACKWARD_ONE(T, j)                                                          \
    do {                                                                                    \
        T d_ = h[j] > 0 ? g[j] : g[j] * (T)0;                                               \
        z[j] = d_;                                                                          \
        db[j] = d_ + (T)0;                                                                  \
    } while (0)
/* the vector gv where the vector at hp is > 0, else gv * 0: the mask (all ones where
 * h > 0) selects between them */
#define NN_RELU_SELECT(V, M, gv, hp)                                                        \
    ({                                                                                      \
        const V zs_ = {0};                                                                  \
        V g_ = (gv);                                                                        \
        M k_ = NN_LOAD(V, hp) > zs_;                                                        \
        (V)(((M)g_ & k_) | ((M)(g_ * zs_) & ~k_));                                          \
    })
/* elements j .. j + (lanes of V) */
#define NN_RELU_BACKWARD_V(V, M, j)                                                         \
    do {                                                                                    \
        const V zero_ = {0};                                                                \
        V d_ = NN_RELU_SELECT(V, M, NN_LOAD(V, g + (j)), h + (j));                          \
        NN_STORE(z + (j), d_);                                                              \
        NN_STORE(db + (j), d_ + zero_);                                                     \
    } while (0)
#if defined(__AVX512F__)
/* AVX-512: lanes j .. j + L in mask mk (the rest neither read nor written): d = g where
   h > 0 (ordered: NaN fails), g * 0 elsewhere; z = d, db = d + 0 */
#define NN_RELU_BACKWARD_ROW(NAME, T, SUF, M, MT)                                           \
static inline void NAME(const T* h, const T* g, T* z, T* restrict db, Py_ssize_t c)        \
{                                                                                           \
    enum { L = 64 / sizeof(T) };                                                            \
    const M zero = _mm512_setzero_##SUF();                                                  \
    Py_ssize_t j;                                                                           \
    for (j = 0; j < c; j += L) {                                                            \
        MT mk = (MT)(c - j >= L ? (MT)~0u : (MT)((1u << (c - j)) - 1u));                    \
        M gv = _mm512_maskz_loadu_##SUF(mk, g + j);                                         \
        MT pos = _mm512_mask_cmp_##SUF##_mask(mk, _mm512_maskz_loadu_##SUF(mk, h + j),      \
                                              zero, _CMP_GT_OQ);                            \
        M d = _mm512_mask_mov_##SUF(_mm512_mul_##SUF(gv, zero), pos, gv);                   \
        _mm512_mask_storeu_##SUF(z + j, mk, d);                                             \
        _mm512_mask_storeu_##SUF(db + j, mk, _mm512_add_##SUF(d, zero));                    \
    }                                                                                       \
}
NN_RELU_BACKWARD_ROW(nn_relu_backward_row_f, float, ps, __m512, __mmask16)
NN_RELU_BACKWARD_ROW(nn_relu_backward_row_d, double, pd, __m512d, __mmask8)
#else
#define NN_RELU_BACKWARD_ROW(NAME, T, V, VH, M, MH)                                         \
static inline void NAME(const T* h, const T* g, T* z, T* restrict db, Py_ssize_t c)        \
{                                                                                           \
    enum { L = sizeof(V) / sizeof(T), LH = sizeof(VH) / sizeof(T) };                        \
    Py_ssize_t j = 0;                                                                       \
    for (; j + L <= c; j += L)                                                              \
        NN_RELU_BACKWARD_V(V, M, j);                                                        \
    if (j + LH <= c) {                                                                      \
        NN_RELU_BACKWARD_V(VH, MH, j);                                                      \
        j += LH;                                                                            \
    }                                                                                       \
    for (; j < c; j++)                                                                      \
        NN_RELU_BACKWARD_ONE(T, j);                                                         \
}
NN_RELU_BACKWARD_ROW(nn_relu_backward_row_f, float, nn_vf, nn_vhf, nn_vmf, nn_vhmf)
NN_RELU_BACKWARD_ROW(nn_relu_backward_row_d, double, nn_vd, nn_vhd, nn_vmd, nn_vhmd)
#endif

/* nn_relu_backward_acc_d(h, z, work, c): act_backward_product's ReLU pass over one row
 * of double,
 *       d = h[j] > 0 ? z[j] : z[j] * 0;  z[j] = d;  work[j] += d          for j < c
 * (z in place, work the running column sums of dZ): the generic loop's d bit for bit,
 * as nn_relu_backward_row_d forms it, and each work[j] the same additions in the same
 * (row) order. GCC makes the generic loop a branch per element there too, and on a
 * 100-unit hidden layer that mispredicting loop took most of act_backward_product. */
#define NN_RELU_BACKWARD_ACC_V(V, M, j)                                                     \
    do {                                                                                    \
        V d_ = NN_RELU_SELECT(V, M, NN_LOAD(V, z + (j)), h + (j));                          \
        NN_STORE(z + (j), d_);                                                              \
        NN_STORE(work + (j), NN_LOAD(V, work + (j)) + d_);                                  \
    } while (0)
static inline void nn_relu_backward_acc_d(const double* restrict h, double* restrict z,
                                          double* restrict work, Py_ssize_t c)
{
    enum { L = sizeof(nn_vd) / sizeof(double), LH = sizeof(nn_vhd) / sizeof(double) };
    Py_ssize_t j = 0;
    for (; j + L <= c; j += L)
        NN_RELU_BACKWARD_ACC_V(nn_vd, nn_vmd, j);
    if (j + LH <= c) {
        NN_RELU_BACKWARD_ACC_V(nn_vhd, nn_vhmd, j);
        j += LH;
    }
    for (; j < c; j++) {
        double d = h[j] > 0 ? z[j] : z[j] * 0.0;
        z[j] = d;
        work[j] += d;
    }
}

/* Columns [j0, j1) of several rows (dense.pxd's act_backward_cols): the same select per
 * element, and each column's sum work[j] += d in double, row after row (the generic
 * loop's order, so bitwise its sums). A block of columns runs down all the rows with its
 * sums in registers: 4 vectors of nn_vd's lanes (16 columns with AVX), then one, then
 * the scalar form. nn_vhf has nn_vd's lane count, so a float block is widened whole. */
#define NN_RELU_COLS_ONE(T, i, j)                                                           \
    do {                                                                                    \
        const T* h_ = H + (i) * c;                                                          \
        T g_ = dH[(i) * c + (j)];                                                           \
        T d_ = h_[j] > 0 ? g_ : g_ * (T)0;                                                  \
        dZ[(i) * c + (j)] = d_;                                                             \
        work[j] += d_;                                                                      \
    } while (0)
/* the select of lanes j .. j + DL of row i, stored to dZ and widened to doubles */
#define NN_RELU_COLS_V(VS, MS, i, j, out)                                                   \
    do {                                                                                    \
        const VS zero_ = {0};                                                               \
        VS gv_ = NN_LOAD(VS, dH + (i) * c + (j));                                           \
        MS k_ = NN_LOAD(VS, H + (i) * c + (j)) > zero_;                                     \
        VS d_ = (VS)(((MS)gv_ & k_) | ((MS)(gv_ * zero_) & ~k_));                           \
        NN_STORE(dZ + (i) * c + (j), d_);                                                   \
        out = __builtin_convertvector(d_, nn_vd);                                           \
    } while (0)
#define NN_RELU_BACKWARD_COLS(NAME, T, VS, MS)                                              \
static inline void NAME(const T* H, const T* dH, T* dZ, double* restrict work,             \
                        Py_ssize_t n, Py_ssize_t c, Py_ssize_t j0, Py_ssize_t j1)         \
{                                                                                           \
    enum { DL = sizeof(nn_vd) / sizeof(double) };                                           \
    _Static_assert(sizeof(VS) / sizeof(T) == DL, "act_row.h: one double per lane");        \
    Py_ssize_t i, j = j0;                                                                   \
    nn_vd s0, s1, s2, s3, e0, e1, e2, e3;                                                   \
    for (; j + 4 * DL <= j1; j += 4 * DL) {                                                 \
        s0 = NN_LOAD(nn_vd, work + j); s1 = NN_LOAD(nn_vd, work + j + DL);                  \
        s2 = NN_LOAD(nn_vd, work + j + 2 * DL); s3 = NN_LOAD(nn_vd, work + j + 3 * DL);     \
        for (i = 0; i < n; i++) {                                                           \
            NN_RELU_COLS_V(VS, MS, i, j, e0);                                               \
            NN_RELU_COLS_V(VS, MS, i, j + DL, e1);                                          \
            NN_RELU_COLS_V(VS, MS, i, j + 2 * DL, e2);                                      \
            NN_RELU_COLS_V(VS, MS, i, j + 3 * DL, e3);                                      \
            s0 += e0; s1 += e1; s2 += e2; s3 += e3;                                         \
        }                                                                                   \
        NN_STORE(work + j, s0); NN_STORE(work + j + DL, s1);                                \
        NN_STORE(work + j + 2 * DL, s2); NN_STORE(work + j + 3 * DL, s3);                   \
    }                                                                                       \
    for (; j + DL <= j1; j += DL) {                                                         \
        s0 = NN_LOAD(nn_vd, work + j);                                                      \
        for (i = 0; i < n; i++) {                                                           \
            NN_RELU_COLS_V(VS, MS, i, j, e0);                                               \
            s0 += e0;                                                                       \
        }                                                                                   \
        NN_STORE(work + j, s0);                                                             \
    }                                                                                       \
    for (; j < j1; j++)                                                                     \
        for (i = 0; i < n; i++)                                                             \
            NN_RELU_COLS_ONE(T, i, j);                                                      \
}
NN_RELU_BACKWARD_COLS(nn_relu_backward_colblocks_f, float, nn_vhf, nn_vhmf)
NN_RELU_BACKWARD_COLS(nn_relu_backward_colblocks_d, double, nn_vd, nn_vmd)
#if defined(__AVX512F__)
/* AVX-512: one sweep over the rows instead, each row's columns 16 floats (8 doubles) at
 * a time and the last ones one masked vector, with the sums read and written back in
 * work (c doubles, which stay in L1): H, dH and dZ stream once in address order. The
 * column blocks above hold only nn_vd's 4 doubles of sums per vector (blas_small.h's
 * vectors are 32 bytes wide) and run down all the rows a whole row apart, which at 512
 * columns lands every row on the same few L1 sets (the 784-512-512-10 network's hidden
 * layers at batch 256 take half the time this way). Each d and each column's additions,
 * in row order, are the same, so the results are bitwise those of the column form
 * (tests/test_act_row_cols.py), but for which NaN a sum of two NaNs keeps: x86 keeps
 * the first operand's, and GCC takes the addition as commutative (here it folds the
 * loaded sums in as the second operand, so the later row's NaN wins; in the column
 * blocks the earlier row's), so a bias gradient with two NaN terms in a column may
 * differ in that NaN's sign. Fewer columns than one vector stay with the column
 * blocks, whose sums stay in registers (there a sweep over rows is twice as slow). */
/* lanes j .. j + 16 (8 for double) of the row at h, g, z in mask mk, the rest neither
   read nor written: d = g where h > 0 (ordered: NaN fails), g * 0 elsewhere; z = d,
   work += d (the enclosing loop's h, g, z, j and zv, a vector of zeros) */
#define NN_RELU_COLS_F(mk)                                                                  \
    do {                                                                                    \
        __m512 gv_ = _mm512_maskz_loadu_ps(mk, g + j);                                      \
        __m512 hv_ = _mm512_maskz_loadu_ps(mk, h + j);                                      \
        __mmask16 pos_ = _mm512_mask_cmp_ps_mask(mk, hv_, zv, _CMP_GT_OQ);                  \
        __m512 d_ = _mm512_mask_mov_ps(_mm512_mul_ps(gv_, zv), pos_, gv_);                  \
        __m256 dh_ = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d_), 1));     \
        __mmask8 lo_ = (__mmask8)(mk), hi_ = (__mmask8)((mk) >> 8);                         \
        _mm512_mask_storeu_ps(z + j, mk, d_);                                               \
        __m256 dl_ = _mm512_castps512_ps256(d_);                                            \
        _mm512_mask_storeu_pd(work + j, lo_, _mm512_add_pd(                                 \
            _mm512_maskz_loadu_pd(lo_, work + j), _mm512_cvtps_pd(dl_)));                   \
        _mm512_mask_storeu_pd(work + j + 8, hi_, _mm512_add_pd(                             \
            _mm512_maskz_loadu_pd(hi_, work + j + 8), _mm512_cvtps_pd(dh_)));               \
    } while (0)
#define NN_RELU_COLS_D(mk)                                                                  \
    do {                                                                                    \
        __m512d gv_ = _mm512_maskz_loadu_pd(mk, g + j);                                     \
        __m512d hv_ = _mm512_maskz_loadu_pd(mk, h + j);                                     \
        __mmask8 pos_ = _mm512_mask_cmp_pd_mask(mk, hv_, zv, _CMP_GT_OQ);                   \
        __m512d d_ = _mm512_mask_mov_pd(_mm512_mul_pd(gv_, zv), pos_, gv_);                 \
        _mm512_mask_storeu_pd(z + j, mk, d_);                                               \
        _mm512_mask_storeu_pd(work + j, mk, _mm512_add_pd(                                  \
            _mm512_maskz_loadu_pd(mk, work + j), d_));                                      \
    } while (0)
/* each row: whole vectors (an all-ones mask), then the last elements one masked vector */
#define NN_RELU_BACKWARD_COLS_512(NAME, T, V, M, L, ONE, NARROW)                            \
static inline void NAME(const T* H, const T* dH, T* dZ, double* restrict work,             \
                        Py_ssize_t n, Py_ssize_t c, Py_ssize_t j0, Py_ssize_t j1)         \
{                                                                                           \
    const V zv = {0};                                                                       \
    Py_ssize_t i, j;                                                                        \
    if (j1 - j0 < L) {                                                                      \
        NARROW(H, dH, dZ, work, n, c, j0, j1);                                              \
        return;                                                                             \
    }                                                                                       \
    for (i = 0; i < n; i++) {                                                               \
        const T* h = H + i * c;                                                             \
        const T* g = dH + i * c;                                                            \
        T* z = dZ + i * c;                                                                  \
        for (j = j0; j + L <= j1; j += L)                                                   \
            ONE((M)~0u);                                                                    \
        if (j < j1)                                                                         \
            ONE((M)((1u << (j1 - j)) - 1u));                                                \
    }                                                                                       \
}
NN_RELU_BACKWARD_COLS_512(nn_relu_backward_cols_f, float, __m512, __mmask16, 16,
                          NN_RELU_COLS_F, nn_relu_backward_colblocks_f)
NN_RELU_BACKWARD_COLS_512(nn_relu_backward_cols_d, double, __m512d, __mmask8, 8,
                          NN_RELU_COLS_D, nn_relu_backward_colblocks_d)
#else
#define nn_relu_backward_cols_f nn_relu_backward_colblocks_f
#define nn_relu_backward_cols_d nn_relu_backward_colblocks_d
#endif

/* nn_identity_sums_{f,d}(dZ, work, n, c): identity's backward of a batch of n rows of
 * c <= NN_IDENTITY_SUMS_MAX_C values (an output layer of a few classes, in the training
 * loop), dZ = dH in place:
 *       work[j] = sum over rows i, in order, of d = dZ[i, j] (from 0.0, in double)
 * act_backward's identity loop forms d = dH * 1 and stores it, and adds d into work[j] in
 * memory, a load, an add and a store per row and column: 2% of the digits net's
 * batch-32 epoch. Here the sums of a row's columns stay in two vectors of 8 doubles
 * down the rows, the same additions in the same order (0.0 + d first). dZ is not written:
 * d is dH itself (times 1, exactly; a float widened to double and rounded back), but for
 * a subnormal under flush-to-zero with denormals-are-zero, where the generic loop may
 * store it flushed or not; every reader of dZ (the products, the widening for the sums)
 * reads it as zero there either way. Without AVX-512, NN_IDENTITY_SUMS is 0 and the
 * caller keeps act_backward. */
#include "paths.h"    /* NN_IDENTITY_SUMS_MAX_C, rendered from nnlib/_paths.py */
#if defined(__AVX512F__)
#define NN_IDENTITY_SUMS 1
/* the sums live in two vectors of 8 doubles: a wider threshold would drop columns */
_Static_assert(NN_IDENTITY_SUMS_MAX_C >= 1 && NN_IDENTITY_SUMS_MAX_C <= 16,
               "nn_identity_sums holds at most 16 column sums");
static inline void nn_identity_sums_f(const float* dZ, double* restrict work, Py_ssize_t n,
                                      Py_ssize_t c)
{
    const __mmask16 mk = (__mmask16)((1u << c) - 1u);
    const __mmask8 lo = (__mmask8)mk, hi = (__mmask8)(mk >> 8);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        const __m512 g = _mm512_maskz_loadu_ps(mk, dZ + i * c);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(g)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(
                 _mm512_extractf64x4_pd(_mm512_castps_pd(g), 1))));
    }
    _mm512_mask_storeu_pd(work, lo, s0);
    _mm512_mask_storeu_pd(work + 8, hi, s1);
}
static inline void nn_identity_sums_d(const double* dZ, double* restrict work, Py_ssize_t n,
                                      Py_ssize_t c)
{
    const __mmask8 lo = (__mmask8)(c >= 8 ? 0xffu : (1u << c) - 1u);
    const __mmask8 hi = (__mmask8)(c <= 8 ? 0u : (1u << (c - 8)) - 1u);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        s0 = _mm512_add_pd(s0, _mm512_maskz_loadu_pd(lo, dZ + i * c));
        s1 = _mm512_add_pd(s1, _mm512_maskz_loadu_pd(hi, dZ + i * c + 8));
    }
    _mm512_mask_storeu_pd(work, lo, s0);
    _mm512_mask_storeu_pd(work + 8, hi, s1);
}
#else
#define NN_IDENTITY_SUMS 0
/* never called (the caller tests NN_IDENTITY_SUMS first) */
static inline void nn_identity_sums_f(const float* dZ, double* restrict work, Py_ssize_t n,
                                      Py_ssize_t c) { }
static inline void nn_identity_sums_d(const double* dZ, double* restrict work, Py_ssize_t n,
                                      Py_ssize_t c) { }
#endif

#endif
