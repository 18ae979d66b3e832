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
in one pass. None of these allocate. Both have one loop per activation kind with the
kind as a literal, so each loop holds one formula and gcc vectorizes it; relu's backward
is a product with the 0/1 mask (as the NumPy twin computes it). With the kind tested
inside one shared loop, the relu backward stayed a scalar, branchy loop that took a third
of a digits batch-32 epoch (float32 64-100-10, one thread: 1.41 -> 0.99 ms per epoch).
"""
from cython cimport floating
from cython.parallel cimport prange

from nnlib._kernels.blas cimport gemm
from libc.string cimport memcpy

from nnlib._kernels.scalar cimport (
    act_scalar, act_grad_y, ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU,
    ACT_SOFTPLUS, ACT_ELU, ACT_SIGN)

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


cdef inline void _bias_act_rows(floating* Z, const floating* b, Py_ssize_t n,
                                Py_ssize_t c, int kind, double param) noexcept nogil:
    # Z[i, j] = act(Z[i, j] + b[j]) for rows [0, n). Called only with a literal ``kind``
    # (see bias_act_rows), so after inlining the loop holds one formula and no switch.
    cdef Py_ssize_t i, j
    cdef floating* z
    for i in range(n):
        z = Z + i * c
        for j in range(c):
            z[j] = <floating>act_scalar(kind, z[j] + b[j], param)


cdef inline void bias_act_rows(floating* Z, const floating* b, Py_ssize_t n, Py_ssize_t c,
                               int kind, double param) noexcept nogil:
    """In place on rows [0, n) of Z (n, c): Z[i, j] = act(Z[i, j] + b[j]).

    One loop per kind with the kind as a literal: a switch inside the loop is not
    unswitched by gcc, and keeps even relu from vectorizing (see activations.pyx)."""
    cdef Py_ssize_t i, j
    cdef floating* z
    cdef floating v
    if kind == ACT_IDENTITY:
        for i in range(n):
            z = Z + i * c
            for j in range(c):
                z[j] = z[j] + b[j]
    elif kind == ACT_RELU:
        for i in range(n):
            z = Z + i * c
            for j in range(c):
                v = z[j] + b[j]
                # +0 for non-positive (as act_scalar), NaN kept
                z[j] = v if v > 0 else (0 if v <= 0 else v)
    elif kind == ACT_SIGMOID:
        _bias_act_rows(Z, b, n, c, ACT_SIGMOID, param)
    elif kind == ACT_TANH:
        _bias_act_rows(Z, b, n, c, ACT_TANH, param)
    elif kind == ACT_LEAKY_RELU:
        _bias_act_rows(Z, b, n, c, ACT_LEAKY_RELU, param)
    elif kind == ACT_SOFTPLUS:
        _bias_act_rows(Z, b, n, c, ACT_SOFTPLUS, param)
    elif kind == ACT_ELU:
        _bias_act_rows(Z, b, n, c, ACT_ELU, param)
    else:
        _bias_act_rows(Z, b, n, c, ACT_SIGN, param)


cdef inline void bias_act(floating* Z, const floating* b, Py_ssize_t n, Py_ssize_t c,
                          int kind, double param, int n_threads) noexcept nogil:
    """In place on Z (n, c): Z[i, j] = act(Z[i, j] + b[j]). Small passes stay serial
    (no OpenMP region at all: its fork/join would cost more than the loop); large ones
    are cut into one block of rows per thread."""
    cdef Py_ssize_t t, lo, hi, chunks = n_threads if n_threads < n else n
    if n_threads <= 1 or n * c < PAR_MIN_ELEMS:
        bias_act_rows(Z, b, n, c, kind, param)
    else:
        for t in prange(chunks, schedule='static', num_threads=n_threads):
            lo = t * n // chunks
            hi = (t + 1) * n // chunks
            bias_act_rows(Z + lo * c, b, hi - lo, c, kind, param)


cdef inline void _backward_rows(const floating* H, floating* dZ, double* work,
                                Py_ssize_t n, Py_ssize_t c, int kind,
                                double param) noexcept nogil:
    # dZ <- dZ * g'(H) and work += column sums, for the smooth kinds; called only with a
    # literal ``kind`` (see act_backward). g' is rounded to the dtype before the product.
    cdef Py_ssize_t i, j
    cdef floating d
    cdef floating* z
    cdef const floating* h
    for i in range(n):
        z = dZ + i * c
        h = H + i * c
        for j in range(c):
            d = z[j] * <floating>act_grad_y(kind, h[j], param)
            z[j] = d
            work[j] += d


cdef inline void act_backward(const floating* H, const floating* dH, floating* dZ,
                              floating* db, double* work, Py_ssize_t n, Py_ssize_t c,
                              int kind, double param) noexcept nogil:
    """dZ = dH * g'(H) (derivative from the output) and db = sum over rows of dZ.

    ``dZ`` may be ``dH`` (in place). ``work``: c doubles, the column sums; ``db`` may be
    NULL when not wanted.

    Both passes are fused into one sweep over the rows whose inner loop runs over the
    contiguous features, with one loop per kind (the kind a literal, no branch on the
    data: relu is a select), so every kind's loop vectorizes; each column is still summed
    row by row in double, in the same order as a plain loop would."""
    cdef Py_ssize_t i, j
    cdef floating d
    cdef floating* z
    cdef const floating* h
    for j in range(c):
        work[j] = 0.0
    if dZ != dH:
        memcpy(dZ, dH, n * c * sizeof(floating))
    if kind == ACT_IDENTITY:
        for i in range(n):
            z = dZ + i * c
            for j in range(c):
                work[j] += z[j]
    elif kind == ACT_RELU:
        for i in range(n):
            z = dZ + i * c
            h = H + i * c
            for j in range(c):
                # a product with the 0/1 mask, not a select: gcc if-converts no select
                # whose result is widened to double (for the sum) under its default
                # -ftrapping-math, so the select kept the loop scalar and branchy
                d = z[j] * <floating>(h[j] > 0)
                z[j] = d
                work[j] += d
    elif kind == ACT_SIGMOID:
        _backward_rows(H, dZ, work, n, c, ACT_SIGMOID, param)
    elif kind == ACT_TANH:
        _backward_rows(H, dZ, work, n, c, ACT_TANH, param)
    elif kind == ACT_LEAKY_RELU:
        _backward_rows(H, dZ, work, n, c, ACT_LEAKY_RELU, param)
    elif kind == ACT_SOFTPLUS:
        _backward_rows(H, dZ, work, n, c, ACT_SOFTPLUS, param)
    elif kind == ACT_ELU:
        _backward_rows(H, dZ, work, n, c, ACT_ELU, param)
    else:
        _backward_rows(H, dZ, work, n, c, ACT_SIGN, param)
    if db != NULL:
        for j in range(c):
            db[j] = <floating>work[j]
