# cython: language_level=3
"""Sparse (CSR) rows times dense matrices: layer 1 of the sparse first layer.

Design note
-----------
A network's first layer on sparse X needs two products, each costing O(nnz * n_out)
instead of O(rows * n_in * n_out), and never a dense copy of X:

    forward        Z = X_b W              Z[i, :]  = sum_k data[k] W[indices[k], :]
    weight grad.   W' = beta W' + alpha X_b^T dZ
                                          W'[indices[k], :] += alpha data[k] dZ[i, :]

``X_b`` is the batch: the rows ``rows[0..B)`` of X (NULL: rows 0..B-1), read in place
from X's CSR arrays. Every index is trusted here: ``CsrRows`` points into arrays the
caller owns and checked once (indptr non-decreasing from 0 to nnz, indices in
[0, n_in)), and ``rows`` into a buffer of row numbers it checked. Each output row (and,
for the weight gradient, each row i's contribution) is added in the order of its
nonzeros and of the batch, as SciPy's ``csr_matvecs`` / ``csc_matvecs`` add them, so
the products equal scikit-learn's ``safe_sparse_dot`` to rounding in the same order.
Sums run in the array dtype, as a dense GEMM's do.
"""
from cython cimport floating


cdef struct CsrRows:
    const long long* indptr      # (N + 1,)
    const long long* indices     # (nnz,) column of each stored value
    const void* data             # (nnz,) values, in the network's dtype
    const long long* rows        # (B,) rows of X in the batch, or NULL: rows 0..B-1


cdef inline void csr_rows_matmul(const CsrRows* x, Py_ssize_t B, const floating* W,
                                 Py_ssize_t n_out, floating* out) noexcept nogil:
    """out (B, n_out) = X_b W, W (n_in, n_out) C-contiguous."""
    cdef const floating* data = <const floating*>x.data
    cdef Py_ssize_t i, j
    cdef long long r, k
    cdef floating v
    cdef floating* o
    cdef const floating* w
    for i in range(B):
        r = x.rows[i] if x.rows != NULL else i
        o = out + i * n_out
        for j in range(n_out):
            o[j] = 0
        for k in range(x.indptr[r], x.indptr[r + 1]):
            v = data[k]
            w = W + x.indices[k] * n_out
            for j in range(n_out):
                o[j] += v * w[j]


cdef inline void csr_rows_t_matmul(const CsrRows* x, Py_ssize_t B, const floating* dZ,
                                   Py_ssize_t n_in, Py_ssize_t n_out, double alpha,
                                   double beta, floating* out) noexcept nogil:
    """out (n_in, n_out) = beta out + alpha X_b^T dZ, dZ (B, n_out) C-contiguous
    (beta = 0 overwrites: out may hold anything, NaN included)."""
    cdef const floating* data = <const floating*>x.data
    cdef Py_ssize_t i, j, n = n_in * n_out
    cdef long long r, k
    cdef floating a
    cdef floating fbeta = <floating>beta
    cdef floating* o
    cdef const floating* d
    if beta == 0.0:
        for j in range(n):
            out[j] = 0
    elif beta != 1.0:
        for j in range(n):
            out[j] = fbeta * out[j]
    for i in range(B):
        r = x.rows[i] if x.rows != NULL else i
        d = dZ + i * n_out
        for k in range(x.indptr[r], x.indptr[r + 1]):
            a = <floating>(alpha * data[k]) if alpha != 1.0 else data[k]
            o = out + x.indices[k] * n_out
            for j in range(n_out):
                o[j] += a * d[j]
