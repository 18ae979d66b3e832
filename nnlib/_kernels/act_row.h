/* act_row.h -- ReLU's backward pass of one row (dense.pxd's act_backward_row), without a
 * branch on the data.
 *
 * Design note
 * -----------
 *   nn_relu_backward_row_{f,d}(h, g, z, db, c):
 *       d = h[j] > 0 ? g[j] : g[j] * 0;  z[j] = d;  db[j] = d + 0     for j < c
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
 * where it passes). With AVX-512 GCC already vectorizes the loop as this select (a
 * masked product), so there the generic loop stays (NN_RELU_ROW_EXPLICIT 0). The
 * vectors are GCC's vector extensions at the target's register width (blas_small.h's
 * nn_vf, nn_vd), then a half vector, then the scalar form for the last few elements
 * (fewer than a half vector), so it reads and writes only elements below c. z may be g
 * (in place): each element is read before it is written.
 */
#ifndef NNLIB_ACT_ROW_H
#define NNLIB_ACT_ROW_H

#include "blas_small.h"

#if defined(__AVX512F__)
#define NN_RELU_ROW_EXPLICIT 0
#else
#define NN_RELU_ROW_EXPLICIT 1
#endif

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

#endif
