"""Dense (fully connected) layer, compiled: ``H = act(X @ W + b)`` and its backward.

Shapes: X (n, n_in), W (n_in, n_out), b (n_out,), H (n, n_out). float32 and float64 are
kept (W's dtype; float X or b of the other precision is an error, integer input is
converted). Matrix products go to BLAS for large sizes and to compiled loops for small
ones; the bias and activation are applied in the same pass (see
nnlib/_kernels/dense.pxd.tp).
"""
from typing import Optional, Tuple

import numpy as np

from nnlib._dense_args import activation_spec, dense_arrays
from nnlib._kernels import blas as _blas
from nnlib._kernels import dense as _k
from nnlib._threads import resolve_threads
from nnlib._typing import ArrayLike, FloatArray, Threads

__all__ = ["dense_forward", "dense_backward"]


def dense_forward(X: ArrayLike, W: ArrayLike, b: ArrayLike, activation: str = "identity",
                  activation_param: Optional[float] = None, *,
                  n_threads: Threads = None) -> FloatArray:
    """Forward pass of a Dense layer.

    Parameters
    ----------
    X : array_like, shape (n, n_in)
    W : array_like, shape (n_in, n_out)
    b : array_like, shape (n_out,)
    activation : str
        One of nnlib.functional's activations (identity, sigmoid, tanh, relu, leaky_relu,
        softplus, elu, sign).
    activation_param : float, optional
        leaky_relu's slope (default 0.01) or elu's alpha (default 1.0); both must be >= 0
        and at most the largest value of W's dtype (else DTypeRangeError). Within that, an
        output too large for the dtype is the correctly rounded overflow, +-inf.
    n_threads : int or None
        Threads for the elementwise pass (BLAS uses its own setting).

    Returns
    -------
    H : ndarray, shape (n, n_out)
        ``act(X @ W + b)``.

    Notes
    -----
    Finite inputs whose products or sums exceed the dtype's range (|X| @ |W| beyond
    1.8e308 in float64, 3.4e38 in float32) give +-inf or NaN in ``H``, as NumPy's and
    BLAS's ``X @ W`` do; the sums are not rescaled, so an intermediate overflow can give
    inf (or NaN, from inf - inf) even where the exact ``X @ W + b`` is representable.
    Check ``np.isfinite(H)`` when inputs may be that large.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0], [-1.0, 0.5]])
    >>> W = np.array([[0.5, -1.0, 0.0], [0.25, 1.0, 2.0]])
    >>> b = np.array([0.0, 0.5, -1.0])
    >>> dense_forward(X, W, b, "relu")                 # relu(X @ W + b)
    array([[1. , 1.5, 3. ],
           [0. , 2. , 0. ]])
    """
    kind, param = activation_spec(activation, activation_param)
    X, W, b = dense_arrays(X, W, b)
    activation_spec(activation, activation_param, W.dtype)     # the param fits W's dtype
    _blas.load()
    H = np.empty((X.shape[0], W.shape[1]), dtype=W.dtype)
    _k.dense_forward(X, W, b, H, kind, param, resolve_threads(n_threads, H.size))
    return H


def dense_backward(X: ArrayLike, W: ArrayLike, H: ArrayLike, grad_H: ArrayLike,
                   activation: str = "identity", activation_param: Optional[float] = None,
                   *, n_threads: Threads = None) -> Tuple[FloatArray, FloatArray, FloatArray]:
    """Backward pass of a Dense layer, the derivative taken from the output ``H``.

    Parameters
    ----------
    X : array_like, shape (n, n_in)
        The layer's input.
    W : array_like, shape (n_in, n_out)
    H : array_like, shape (n, n_out)
        The layer's output ``act(X @ W + b)`` (from :func:`dense_forward`).
    grad_H : array_like, shape (n, n_out)
        Gradient of the objective with respect to ``H``.
    activation, activation_param : as in :func:`dense_forward`.
    n_threads : int or None
        Accepted for symmetry; the backward's elementwise pass is single-threaded.

    Returns
    -------
    dX : ndarray, shape (n, n_in)
    dW : ndarray, shape (n_in, n_out)
        ``X.T @ dZ`` with ``dZ = grad_H * act'(H)``.
    db : ndarray, shape (n_out,)
        ``dZ.sum(axis=0)`` (accumulated in float64).

    Examples
    --------
    >>> X = np.array([[1.0, 2.0], [-1.0, 0.5]])
    >>> W = np.array([[0.5, -1.0, 0.0], [0.25, 1.0, 2.0]])
    >>> H = dense_forward(X, W, np.array([0.0, 0.5, -1.0]), "relu")
    >>> dX, dW, db = dense_backward(X, W, H, np.ones_like(H), "relu")
    >>> db                                # relu' = 1[H > 0], summed over the rows
    array([1., 2., 1.])
    >>> dW                                # X.T @ (1 * relu')
    array([[1. , 0. , 1. ],
           [2. , 2.5, 2. ]])
    >>> dX                                # (1 * relu') @ W.T
    array([[-0.5 ,  3.25],
           [-1.  ,  1.  ]])
    """
    kind, param = activation_spec(activation, activation_param)
    # Unused (single-threaded) but validated like everywhere else, so n_threads=0 or "2"
    # is an error here too.
    resolve_threads(n_threads, 0)
    X, W, H, grad_H = dense_arrays(X, W, None, H, grad_H)
    activation_spec(activation, activation_param, W.dtype)     # the param fits W's dtype
    _blas.load()
    n, (n_in, n_out) = X.shape[0], W.shape
    dt = W.dtype
    dZ = np.empty((n, n_out), dt)
    dX = np.empty((n, n_in), dt)
    dW = np.empty((n_in, n_out), dt)
    db = np.empty(n_out, dt)
    _k.dense_backward(X, W, H, grad_H, dZ, dX, dW, db, np.empty(n_out), kind, param)
    return dX, dW, db
