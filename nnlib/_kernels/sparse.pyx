# cython: language_level=3
"""Sparse X times dense matrices: layer 2 and 3 of the sparse first layer.

Design note
-----------
The math lives in ``sparse_rows.pxd`` (layer 1), which the training epoch
(``train.pyx``) also calls for a network's first layer on sparse X. These wrappers
check a SciPy CSR/CSC matrix once (``nnlib._validation.check_csr``: owned int64 index
copies, finite values, indices in range), allocate the output, and run the loop with
the GIL released for work worth it (``gil.pxd``). Twin: ``nnlib._reference.sparse``.
"""
import numpy as np

from cython cimport floating

from nnlib._kernels.gil cimport keeps_gil, product_values
from nnlib._kernels.sparse_rows cimport CsrRows, csr_rows_matmul, csr_rows_t_matmul
from nnlib._validation import check_buffer, check_csr

__all__ = ["sparse_matmul", "sparse_t_matmul"]


cdef CsrRows _rows_of(const long long[::1] indptr, const long long[::1] indices,
                      const void* data):
    cdef CsrRows x
    x.indptr = &indptr[0]
    x.indices = &indices[0] if indices.shape[0] > 0 else NULL
    x.data = data
    x.rows = NULL
    return x


def _matmul(const long long[::1] indptr, const long long[::1] indices,
            const floating[::1] data, const floating[:, ::1] W, floating[:, ::1] out):
    cdef CsrRows x = _rows_of(indptr, indices, &data[0] if data.shape[0] > 0 else NULL)
    if keeps_gil(out.shape[0] * W.shape[1]
                 + product_values(<double>indices.shape[0] * W.shape[1])):
        csr_rows_matmul(&x, out.shape[0], &W[0, 0], W.shape[1], &out[0, 0])
    else:
        with nogil:
            csr_rows_matmul(&x, out.shape[0], &W[0, 0], W.shape[1], &out[0, 0])


def _t_matmul(const long long[::1] indptr, const long long[::1] indices,
              const floating[::1] data, const floating[:, ::1] G, floating[:, ::1] out):
    cdef CsrRows x = _rows_of(indptr, indices, &data[0] if data.shape[0] > 0 else NULL)
    if keeps_gil(out.shape[0] * out.shape[1]
                 + product_values(<double>indices.shape[0] * out.shape[1])):
        csr_rows_t_matmul(&x, G.shape[0], &G[0, 0], out.shape[0], out.shape[1], 1.0, 0.0,
                          &out[0, 0])
    else:
        with nogil:
            csr_rows_t_matmul(&x, G.shape[0], &G[0, 0], out.shape[0], out.shape[1], 1.0,
                              0.0, &out[0, 0])


def _operands(X, M, rows, what):
    X, indptr, indices, data = check_csr(X)
    M = np.ascontiguousarray(M, dtype=data.dtype)
    if M.ndim != 2 or M.shape[0] != rows(X) or M.shape[1] < 1 or X.shape[0] < 1:
        raise ValueError(f"{what} must be 2-d with {rows(X)} rows and >= 1 column (and X "
                         f"non-empty); got X {X.shape}, {what} {M.shape}")
    return X, indptr, indices, data, check_buffer(M, what, data.dtype, M.shape)


def sparse_matmul(X, W):
    """``X @ W`` for SciPy CSR/CSC ``X`` (n, d) and dense ``W`` (d, k), as a dense
    (n, k) array in X's float dtype (float32 kept), in O(nnz k).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> sparse_matmul(sp.csr_matrix([[0.0, 2.0], [1.0, 0.0]]), np.eye(2))
    array([[0., 2.],
           [1., 0.]])
    """
    X, indptr, indices, data, W = _operands(X, W, lambda X: X.shape[1], "W")
    out = np.empty((X.shape[0], W.shape[1]), data.dtype)
    _matmul(indptr, indices, data, W, out)
    return out


def sparse_t_matmul(X, G):
    """``X.T @ G`` for SciPy CSR/CSC ``X`` (n, d) and dense ``G`` (n, k): the (d, k)
    weight gradient of a first layer on sparse X, in O(nnz k).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> sparse_t_matmul(sp.csr_matrix([[0.0, 2.0], [1.0, 0.0]]), np.ones((2, 1)))
    array([[1.],
           [2.]])
    """
    X, indptr, indices, data, G = _operands(X, G, lambda X: X.shape[0], "G")
    out = np.empty((X.shape[1], G.shape[1]), data.dtype)
    _t_matmul(indptr, indices, data, G, out)
    return out
