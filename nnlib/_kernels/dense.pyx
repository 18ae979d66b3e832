# cython: language_level=3
"""Dense layer forward and backward over whole batches: layer 2.

Design note
-----------
The math and the small-vs-BLAS product choice live in ``dense.pxd`` (shared with the
compiled training loop). These entry points take C-contiguous arrays and output buffers
from the Python wrapper (``nnlib/functional/dense.py``), which checks values and dtypes;
they check the shapes and the activation code themselves (a wrong call raises ValueError
and never reads past a buffer), release the GIL for work worth it (``gil.pxd``) and
allocate nothing. ``nnlib._kernels.blas.load()`` must have been called first (the
wrapper does it).
"""
from cython cimport floating

from nnlib._kernels.dense cimport (mm, bias_act, act_backward, act_backward_cols,
                                   identity_backward, NN_SMALL_GEMM, NN_SMALL_GEMM_MAX_K,
                                   NN_SMALL_GEMM_MIN_N, NN_SMALL_GEMM_MAX_MNK)
from nnlib._kernels.gil cimport keeps_gil, product_values
from nnlib._kernels.fpenv cimport nnlib_flush_enter, nnlib_flush_exit
from nnlib._kernels.codes cimport N_ACTIVATION_CODES, ACT_IDENTITY

# Whether mm's register-blocked products (gemm_small.h) are built, and their bounds:
# (built, largest k, fewest columns, most multiply-adds), for the tests
_SMALL_GEMM = (bool(NN_SMALL_GEMM), NN_SMALL_GEMM_MAX_K, NN_SMALL_GEMM_MIN_N,
               NN_SMALL_GEMM_MAX_MNK)


cdef void _forward(const floating* X, const floating* W, const floating* b, floating* H,
                   Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, int kind, double param,
                   int n_threads) noexcept nogil:
    if n_in == 0:
        mm(False, False, n, n_out, 0, 1.0, H, 1, H, 1, 0.0, H, n_out)
    else:
        mm(False, False, n, n_out, n_in, 1.0, X, n_in, W, n_out, 0.0, H, n_out)
    bias_act(H, b, n, n_out, kind, param, n_threads, 1)


cdef void _backward(const floating* X, const floating* W, const floating* H,
                    const floating* grad_H, floating* dZ, floating* dX, floating* dW,
                    floating* db, double* work, Py_ssize_t n, Py_ssize_t n_in,
                    Py_ssize_t n_out, int kind, double param) noexcept nogil:
    act_backward(H, grad_H, dZ, db, work, n, n_out, kind, param, 1, 1)
    if n_in > 0:
        mm(True, False, n_in, n_out, n, 1.0, X, n_in, dZ, n_out, 0.0, dW, n_out)
        mm(False, True, n, n_in, n_out, 1.0, dZ, n_out, W, n_out, 0.0, dX, n_in)


cdef tuple _shape(const floating[:, ::1] a):
    return (a.shape[0], a.shape[1])


cdef int _check_kind(int kind) except -1:
    if not 0 <= kind < N_ACTIVATION_CODES:
        raise ValueError(f"unknown activation code {kind}")
    return 0


def dense_forward(const floating[:, ::1] X, const floating[:, ::1] W,
                  const floating[::1] b, floating[:, ::1] H, int kind, double param,
                  int n_threads):
    """H = act(X @ W + b); X (n, n_in), W (n_in, n_out), b (n_out,), H (n, n_out)."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
    if (W.shape[0] != n_in or b.shape[0] != n_out or H.shape[0] != n
            or H.shape[1] != n_out):
        raise ValueError(
            f"dense_forward: shapes X {_shape(X)}, W {_shape(W)}, b ({b.shape[0]},) and H "
            f"{_shape(H)} do not fit X (n, n_in), W (n_in, n_out), b (n_out,), H (n, n_out)")
    _check_kind(kind)
    if n == 0 or n_out == 0:
        return
    # X and W have no element when n_in == 0 and are not read: H stands in
    cdef const floating* x = &X[0, 0] if n_in > 0 else &H[0, 0]
    cdef const floating* w = &W[0, 0] if n_in > 0 else &H[0, 0]
    if keeps_gil(n * n_out + product_values(<double>n * n_in * n_out), n_threads):
        _forward(x, w, &b[0], &H[0, 0], n, n_in, n_out, kind, param, n_threads)
    else:
        with nogil:
            _forward(x, w, &b[0], &H[0, 0], n, n_in, n_out, kind, param, n_threads)


def dense_backward(const floating[:, ::1] X, const floating[:, ::1] W,
                   const floating[:, ::1] H, const floating[:, ::1] grad_H,
                   floating[:, ::1] dZ, floating[:, ::1] dX, floating[:, ::1] dW,
                   floating[::1] db, double[::1] work, int kind, double param):
    """dZ = grad_H * act'(H); dW = X^T dZ; db = sum_rows dZ; dX = dZ W^T.

    Shapes: X, dX (n, n_in); W, dW (n_in, n_out); H, grad_H, dZ (n, n_out);
    db (n_out,); work (n_out,) float64 scratch."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
    if (W.shape[0] != n_in or dW.shape[0] != n_in or dW.shape[1] != n_out
            or dX.shape[0] != n or dX.shape[1] != n_in
            or H.shape[0] != n or H.shape[1] != n_out
            or grad_H.shape[0] != n or grad_H.shape[1] != n_out
            or dZ.shape[0] != n or dZ.shape[1] != n_out
            or db.shape[0] != n_out or work.shape[0] < n_out):
        raise ValueError(
            f"dense_backward: shapes X {_shape(X)}, W {_shape(W)}, H {_shape(H)}, grad_H "
            f"{_shape(grad_H)}, dZ {_shape(dZ)}, dX {_shape(dX)}, dW {_shape(dW)}, db "
            f"({db.shape[0]},) and work ({work.shape[0]},) do not fit X, dX (n, n_in); W, dW "
            f"(n_in, n_out); H, grad_H, dZ (n, n_out); db (n_out,); work (>= n_out,)")
    _check_kind(kind)
    if n_out == 0:
        dX[:, :] = 0
        return
    if n == 0:
        dW[:, :] = 0
        db[:] = 0
        return
    # with n_in == 0, X, W, dX and dW have no element and are not read: dZ stands in
    cdef const floating* x = &X[0, 0] if n_in > 0 else &dZ[0, 0]
    cdef const floating* w = &W[0, 0] if n_in > 0 else &dZ[0, 0]
    cdef floating* dx = &dX[0, 0] if n_in > 0 else &dZ[0, 0]
    cdef floating* dw = &dW[0, 0] if n_in > 0 else &dZ[0, 0]
    if keeps_gil(n * n_out + product_values(2.0 * n * n_in * n_out)):
        _backward(x, w, &H[0, 0], &grad_H[0, 0], &dZ[0, 0], dx, dw, &db[0], &work[0],
                  n, n_in, n_out, kind, param)
    else:
        with nogil:
            _backward(x, w, &H[0, 0], &grad_H[0, 0], &dZ[0, 0], dx, dw, &db[0],
                      &work[0], n, n_in, n_out, kind, param)


cdef bint _rows_ok(Py_ssize_t row, Py_ssize_t col, Py_ssize_t cols, Py_ssize_t item):
    return col == item and row % item == 0 and row >= cols * item


def _mm(bint trans_a, bint trans_b, double alpha, const floating[:, :] A,
        const floating[:, :] B, double beta, floating[:, :] C):
    """C = alpha op(A) op(B) + beta C through ``mm``, for the tests: A, B, C may be views
    whose rows lie further apart than their length (the leading dimensions lda, ldb, ldc),
    each row contiguous. op(A) is (m, k), op(B) (k, n), C (m, n); with m, n and k
    positive. The caller loads the BLAS (``nnlib._kernels.blas.load()``)."""
    cdef Py_ssize_t item = sizeof(floating)
    cdef Py_ssize_t m = C.shape[0], n = C.shape[1]
    cdef Py_ssize_t k = A.shape[0] if trans_a else A.shape[1]
    if ((A.shape[1] if trans_a else A.shape[0]) != m
            or (B.shape[1] if trans_b else B.shape[0]) != k
            or (B.shape[0] if trans_b else B.shape[1]) != n or m < 1 or n < 1 or k < 1):
        raise ValueError(f"_mm: op(A), op(B) and C of shapes {(A.shape[0], A.shape[1])}, "
                         f"{(B.shape[0], B.shape[1])}, {(m, n)} (transposed: {trans_a}, "
                         f"{trans_b}) do not fit (m, k), (k, n), (m, n) with m, n, k >= 1")
    if not (_rows_ok(A.strides[0], A.strides[1], A.shape[1], item)
            and _rows_ok(B.strides[0], B.strides[1], B.shape[1], item)
            and _rows_ok(C.strides[0], C.strides[1], C.shape[1], item)):
        raise ValueError("_mm: each operand's rows must be contiguous and apart by a "
                         "whole number of elements, at least their length")
    mm(trans_a, trans_b, m, n, k, alpha, &A[0, 0], A.strides[0] // item, &B[0, 0],
       B.strides[0] // item, beta, &C[0, 0], C.strides[0] // item)


def _identity_backward(floating[:, ::1] dZ, floating[::1] db, double[::1] work,
                       bint narrow, bint flush=False):
    """The backward of an identity layer in place on dZ (n, c), for the tests:
    ``identity_backward`` (``narrow``; returns whether it took the rows) or
    ``act_backward_cols``' loop over the rows, which act_backward runs otherwise (returns
    True); with ``flush``, in the flush-denormal mode the epoch runs in (fpenv.h). db and
    work hold c values."""
    cdef Py_ssize_t n = dZ.shape[0], c = dZ.shape[1], j
    cdef bint took = True
    if n < 1 or c < 1 or db.shape[0] != c or work.shape[0] != c:
        raise ValueError(f"_identity_backward: dZ {(n, c)} needs n, c >= 1 and db, work "
                         f"of c values; got {db.shape[0]}, {work.shape[0]}")
    if flush:
        nnlib_flush_enter(1)
    if narrow:
        took = identity_backward(&dZ[0, 0], &db[0], &work[0], n, c)
    else:
        act_backward_cols(&dZ[0, 0], &dZ[0, 0], &dZ[0, 0], &work[0], n, c, 0, c,
                          ACT_IDENTITY, 0.0)
        for j in range(c):
            db[j] = <floating>work[j]
    if flush:
        nnlib_flush_exit(1)
    return took
