"""Output maps over the last axis (softmax, log_softmax, sparsemax) and their
vector-Jacobian products (compiled).

Each map ``name(x)`` sends every vector ``x[..., :]`` to the probability simplex (or, for
log_softmax, to log-probabilities); ``name_vjp(x, grad_out)`` is the gradient of
``sum(grad_out * name(x))`` with respect to ``x``.

Parameters shared by every function here:

x : array_like, shape (..., c), ndim >= 1, c >= 1
    Scores; float32 and float64 are kept as given, integers and bools become float64.
grad_out : array_like, shape of ``x``
    Upstream gradient (cast to ``x``'s dtype).
n_threads : int or None
    OpenMP threads over rows; None uses all cores for inputs of 2**15 elements or more.
    Rows are independent, so the result is the same for any ``n_threads``.

Each returns a new array with the shape and dtype of ``x``.

Numerics: softmax and log_softmax subtract the row maximum before exponentiating, so
they never overflow (softmax([1e4, 0]) = [1, 0], log_softmax([1e4, 0]) = [0, -1e4]);
sums accumulate in double. sparsemax is the exact, sort-based Euclidean projection onto
the simplex of Martins & Astudillo (2016), "From Softmax to Sparsemax: A Sparse Model of
Attention and Multi-Label Classification", ICML. A row holding NaN gives a NaN row.
"""
import numpy as np

from nnlib._kernels import output_maps as _k
from nnlib._kernels.aligned import empty_like as _empty_like
from nnlib._threads import resolve_threads
from nnlib._typing import ArrayLike, FloatArray, Threads
from nnlib._validation import check_same_shape
from nnlib.functional._arrays import (as_kernel_array as _as_kernel_array,
                                      as_kernel_rows as _as_kernel_rows)

__all__ = ["softmax", "softmax_vjp", "log_softmax", "log_softmax_vjp",
           "sparsemax", "sparsemax_vjp"]


def _forward(kernel, x, n_threads):
    x = _as_kernel_rows(x, "x")
    out = _empty_like(x)                   # on a cache line (nnlib._aligned)
    kernel(x, out, resolve_threads(n_threads, x.size))
    return out


def _vjp(kernel, x, grad_out, n_threads):
    x = _as_kernel_rows(x, "x")
    g = _as_kernel_array(grad_out, "grad_out", dtype=x.dtype)
    check_same_shape("x", x, "grad_out", g)
    out = _empty_like(x)                   # on a cache line (nnlib._aligned)
    kernel(x, g, out, resolve_threads(n_threads, x.size))
    return out


def softmax(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """softmax(x)_j = exp(x_j) / sum_k exp(x_k) over the last axis.

    Returns an array of the shape and dtype of ``x`` whose rows are positive (up to
    underflow) and sum to 1.

    Examples
    --------
    >>> softmax(np.array([[1.0, 2.0, 3.0], [1e4, 0.0, 0.0]]))
    array([[0.09003057, 0.24472847, 0.66524096],
           [1.        , 0.        , 0.        ]])
    """
    return _forward(_k.softmax_forward, x, n_threads)


def softmax_vjp(x: ArrayLike, grad_out: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """J^T g = s * (g - <g, s>) with s = softmax(x), row by row.

    Examples
    --------
    >>> softmax_vjp(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 0.0, 0.0]]))
    array([[ 0.08192507, -0.02203304, -0.05989202]])
    """
    return _vjp(_k.softmax_vjp, x, grad_out, n_threads)


def log_softmax(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """log_softmax(x) = x - logsumexp(x) over the last axis (stable for any finite x).

    Examples
    --------
    >>> log_softmax(np.array([[1.0, 2.0, 3.0], [1e4, 0.0, 0.0]]))
    array([[-2.40760596e+00, -1.40760596e+00, -4.07605964e-01],
           [ 0.00000000e+00, -1.00000000e+04, -1.00000000e+04]])
    """
    return _forward(_k.log_softmax_forward, x, n_threads)


def log_softmax_vjp(x: ArrayLike, grad_out: ArrayLike, *,
                    n_threads: Threads = None) -> FloatArray:
    """J^T g = g - softmax(x) * sum(g), row by row.

    Examples
    --------
    >>> log_softmax_vjp(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 0.0, 0.0]]))
    array([[ 0.90996943, -0.24472847, -0.66524096]])
    """
    return _vjp(_k.log_softmax_vjp, x, grad_out, n_threads)


def sparsemax(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """sparsemax(x) = argmin_{p in simplex} ||p - x||^2 over the last axis.

    ``p_j = max(x_j - tau, 0)`` with the threshold ``tau`` found by sorting the row
    (Martins & Astudillo 2016, Algorithm 1): rows sum to 1, are non-negative and are
    exactly sparse when the scores are spread out (sparsemax([3, 0]) = [1, 0]). Ties get
    equal probability.

    Examples
    --------
    >>> sparsemax(np.array([[3.0, 0.0], [0.5, 0.0], [1.0, 1.0]]))
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.5 , 0.5 ]])
    """
    return _forward(_k.sparsemax_forward, x, n_threads)


def sparsemax_vjp(x: ArrayLike, grad_out: ArrayLike, *,
                  n_threads: Threads = None) -> FloatArray:
    """J^T g = 1_S * (g - mean_S(g)), S = {j : sparsemax(x)_j > 0}, row by row.

    sparsemax is piecewise linear; where an entry sits exactly on the support boundary
    (x_j = tau, a measure-zero set) the one-sided Jacobian that excludes it is used.

    Examples
    --------
    >>> x = np.array([[0.5, 0.0, -2.0]])              # support {0, 1}
    >>> sparsemax_vjp(x, np.array([[1.0, 0.0, 5.0]]))
    array([[ 0.5, -0.5,  0. ]])
    """
    return _vjp(_k.sparsemax_vjp, x, grad_out, n_threads)
