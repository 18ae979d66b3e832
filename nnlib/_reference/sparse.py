"""NumPy twin of ``nnlib._kernels.sparse``: sparse X times dense matrices, by SciPy's own
sparse products (the statement of the math; the compiled loops add in the same order)."""
import numpy as np

from nnlib._validation import check_buffer, check_csr

__all__ = ["sparse_matmul", "sparse_t_matmul"]


def _operands(X, M, rows, what):
    X = check_csr(X)[0]
    M = np.ascontiguousarray(M, dtype=X.dtype)
    if M.ndim != 2 or M.shape[0] != rows(X) or M.shape[1] < 1 or X.shape[0] < 1:
        raise ValueError(f"{what} must be 2-d with {rows(X)} rows and >= 1 column (and X "
                         f"non-empty); got X {X.shape}, {what} {M.shape}")
    return X, check_buffer(M, what, X.dtype, M.shape)


def sparse_matmul(X, W):
    """``X @ W`` (n, k) for sparse X (n, d), dense W (d, k)."""
    X, W = _operands(X, W, lambda X: X.shape[1], "W")
    return np.asarray(X @ W, dtype=X.dtype)


def sparse_t_matmul(X, G):
    """``X.T @ G`` (d, k) for sparse X (n, d), dense G (n, k)."""
    X, G = _operands(X, G, lambda X: X.shape[0], "G")
    return np.asarray(X.T @ G, dtype=X.dtype)
