# cython: language_level=3
"""Dense-layer building blocks (layers 1-2), shared by dense.pyx and train.pyx.

Design note
-----------
A Dense layer is ``H = g(X W + b)`` with X (n, n_in), W (n_in, n_out), b (n_out,), all
row-major. Its three matrix products are

    forward    Z  = X  W          mm(NN)
    backward   dW = X^T dZ        mm(TN)       (dZ = dH * g'(H), taken from the output)
               dX = dZ W^T        mm(NT)

``mm`` sends products with a single row (m == 1: batch-1 forward and dX) or a single
inner index (k == 1: the batch-1 rank-one weight update) to the plain loops in
``small_gemm`` and everything else to BLAS (``blas.pxd``). Measured on the digits MLP
(64-100-10, float64, CPU time per epoch, one thread): batch 1 takes 4.5 ms with this rule,
5.1 ms with only one of the two cases in the own loops, 5.4 ms all-BLAS; from batch 2 on
BLAS wins clearly (batch 8: 1.7 ms vs 3.5 ms through the plain loops, whose row updates
re-read W once per row instead of blocking it in cache). Tiny widths too: sending
products of <= 4096 flops to the plain loops made a 2-8-2 net at batch 16 take 0.32 ms
per 2048-row epoch instead of 0.14 ms (OpenBLAS's small-matrix kernels are fast).

``small_gemm`` skips zero coefficients of op(A) in its row updates: ReLU outputs and
many-pixel-zero inputs make them common, and ``0 * finite`` adds nothing (the training
loop keeps every operand finite, so no NaN can be lost by the skip). The nonzero indices
are collected first with a branch-free compaction (``idx[cnt] = p; cnt += a_p != 0``):
an ``if a_p != 0`` in the loop mispredicted on the data-dependent zero pattern, and the
compaction took the digits batch-1 epoch from 4.9 to 3.2-3.7 ms of CPU (float64).

The elementwise work is fused: ``bias_act`` adds the bias and applies the activation in
one pass over Z; ``act_backward`` forms dZ = dH * g'(H) and db = sum_rows dZ (in double)
in one pass. None of these allocate.
"""
from cython cimport floating
from cython.parallel cimport prange

from nnlib._kernels.blas cimport gemm
from nnlib._kernels.scalar cimport act_scalar, act_grad_y, ACT_IDENTITY, ACT_RELU

# rows*cols below which an elementwise pass stays on one thread
cdef enum:
    PAR_MIN_ELEMS = 32768


cdef inline void sparse_axpys(const floating* coef, Py_ssize_t cstride, Py_ssize_t count,
                              floating alpha, const floating* src, Py_ssize_t sstride,
                              floating* dst, Py_ssize_t dstride,
                              Py_ssize_t n) noexcept nogil:
    """For r < count with c_r = coef[r*cstride] != 0:
    dst[r*dstride : +n] += alpha c_r src[r*sstride : +n] (one of the strides is 0).

    Only nonzero coefficients do work; their indices are collected first without a
    branch, 64 at a time (see the design note)."""
    cdef Py_ssize_t idx[64]
    cdef Py_ssize_t r, r0, r1, q, cnt, j
    cdef floating a
    cdef floating* d
    cdef const floating* x
    r0 = 0
    while r0 < count:
        r1 = min(r0 + 64, count)
        cnt = 0
        for r in range(r0, r1):
            idx[cnt] = r
            cnt += coef[r * cstride] != 0
        for q in range(cnt):
            r = idx[q]
            a = alpha * coef[r * cstride]
            d = dst + r * dstride
            x = src + r * sstride
            for j in range(n):
                d[j] += a * x[j]
        r0 = r1


cdef inline void small_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n,
                            Py_ssize_t k, double alpha, const floating* A,
                            Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
                            double beta, floating* C, Py_ssize_t ldc) noexcept nogil:
    """C = alpha op(A) op(B) + beta C with plain loops (same contract as blas.gemm)."""
    cdef Py_ssize_t i, j, p
    cdef floating acc0, acc1, acc2, acc3
    cdef floating* Ci
    cdef const floating* Bj
    cdef floating fbeta = <floating>beta, falpha = <floating>alpha
    if k == 1 and not trans_b and beta == 1.0:
        # rank-one update C += alpha a b^T (the batch-1 weight step): only the rows with
        # a_i != 0 change
        sparse_axpys(A, 1 if trans_a else lda, m, falpha, B, 0, C, ldc, n)
        return
    for i in range(m):
        Ci = C + i * ldc
        if beta == 0.0:
            for j in range(n):
                Ci[j] = 0
        elif beta != 1.0:
            for j in range(n):
                Ci[j] = fbeta * Ci[j]
        if not trans_b:
            # row update: C[i, :] += alpha * op(A)[i, p] * B[p, :] over the p with
            # op(A)[i, p] != 0 (vectorizes over j)
            if trans_a:
                sparse_axpys(A + i, lda, k, falpha, B, ldb, Ci, 0, n)
            else:
                sparse_axpys(A + i * lda, 1, k, falpha, B, ldb, Ci, 0, n)
        else:
            # dot products with rows of B; four accumulators break the FMA latency chain
            for j in range(n):
                Bj = B + j * ldb
                acc0 = acc1 = acc2 = acc3 = 0
                p = 0
                if not trans_a:
                    while p + 4 <= k:
                        acc0 += A[i * lda + p] * Bj[p]
                        acc1 += A[i * lda + p + 1] * Bj[p + 1]
                        acc2 += A[i * lda + p + 2] * Bj[p + 2]
                        acc3 += A[i * lda + p + 3] * Bj[p + 3]
                        p += 4
                    while p < k:
                        acc0 += A[i * lda + p] * Bj[p]
                        p += 1
                else:
                    while p < k:
                        acc0 += A[p * lda + i] * Bj[p]
                        p += 1
                Ci[j] += falpha * ((acc0 + acc1) + (acc2 + acc3))


cdef inline void mm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                    double alpha, const floating* A, Py_ssize_t lda, const floating* B,
                    Py_ssize_t ldb, double beta, floating* C,
                    Py_ssize_t ldc) noexcept nogil:
    """C = alpha op(A) op(B) + beta C: own loops for one row or a rank-one update, BLAS
    otherwise (see the design note)."""
    if m == 1 or k == 1:
        small_gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
    else:
        gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)


cdef inline void bias_act_row(floating* z, const floating* b, Py_ssize_t c, int kind,
                              double param) noexcept nogil:
    """In place on one row z (c,): z[j] = act(z[j] + b[j])."""
    cdef Py_ssize_t j
    if kind == ACT_IDENTITY:
        for j in range(c):
            z[j] = z[j] + b[j]
    elif kind == ACT_RELU:
        for j in range(c):
            z[j] = z[j] + b[j]
            # +0 for non-positive (as act_scalar), NaN kept
            z[j] = z[j] if z[j] > 0 else (0 if z[j] <= 0 else z[j])
    else:
        for j in range(c):
            z[j] = <floating>act_scalar(kind, z[j] + b[j], param)


cdef inline void bias_act(floating* Z, const floating* b, Py_ssize_t n, Py_ssize_t c,
                          int kind, double param, int n_threads) noexcept nogil:
    """In place on Z (n, c): Z[i, j] = act(Z[i, j] + b[j]). Small passes stay serial
    (no OpenMP region at all: its fork/join would cost more than the loop)."""
    cdef Py_ssize_t i
    if n_threads <= 1 or n * c < PAR_MIN_ELEMS:
        for i in range(n):
            bias_act_row(Z + i * c, b, c, kind, param)
    else:
        for i in prange(n, schedule='static', num_threads=n_threads):
            bias_act_row(Z + i * c, b, c, kind, param)


cdef inline void act_backward(const floating* H, const floating* dH, floating* dZ,
                              floating* db, double* work, Py_ssize_t n, Py_ssize_t c,
                              int kind, double param) noexcept nogil:
    """dZ = dH * g'(H) (derivative from the output) and db = sum over rows of dZ.

    ``dZ`` may be ``dH`` (in place). ``work``: c doubles, the column sums; ``db`` may be
    NULL when not wanted."""
    cdef Py_ssize_t i, j
    cdef floating g
    for j in range(c):
        work[j] = 0.0
    if kind == ACT_IDENTITY:
        for i in range(n):
            for j in range(c):
                dZ[i * c + j] = dH[i * c + j]
                work[j] += dZ[i * c + j]
    elif kind == ACT_RELU:
        for i in range(n):
            for j in range(c):
                dZ[i * c + j] = dH[i * c + j] if H[i * c + j] > 0 else 0
                work[j] += dZ[i * c + j]
    else:
        for i in range(n):
            for j in range(c):
                g = <floating>act_grad_y(kind, H[i * c + j], param)
                dZ[i * c + j] = dH[i * c + j] * g
                work[j] += dZ[i * c + j]
    if db != NULL:
        for j in range(c):
            db[j] = <floating>work[j]
