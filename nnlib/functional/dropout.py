"""Inverted dropout with a counter-based mask, and its vector-Jacobian product
(compiled).

``dropout(x, rate, seed, step)`` keeps each entry with probability ``1 - rate`` and
scales it by ``1 / (1 - rate)`` (so the expected output is ``x``), and sets the others to
0 (``x * 0``: NaN and inf propagate). The mask is a pure function of ``(seed, step, row,
column)`` over the rows of ``x.reshape(-1, c)`` (row ``row0 + i`` for the i-th row): the
same arguments give the same mask, bit for bit, for any ``n_threads`` and however the
rows are cut into calls; ``step`` gives each training step a fresh one. The generator is
documented in ``nnlib/_kernels/dropout_rows.pxd``.

``dropout_vjp(x, grad_out, rate, seed, step)`` is the gradient of
``sum(grad_out * dropout(x, ...))`` with respect to ``x``: ``grad_out * m / (1 - rate)``
with the same mask.

Parameters shared by both:

x : array_like, shape (..., c), ndim >= 1, c >= 1
    float32 and float64 are kept as given, integers and bools become float64.
rate : float in [0, 1)
seed, step, row0 : int in [0, 2**64)
n_threads : int or None
    OpenMP threads over rows; None uses all cores for 2**15 elements or more.

Examples
--------
>>> import numpy as np
>>> out = dropout(np.ones((2, 4)), 0.5, seed=0)
>>> sorted(set(out.ravel().tolist()))
[0.0, 2.0]
>>> np.array_equal(dropout_vjp(np.ones((2, 4)), np.ones((2, 4)), 0.5, seed=0), out)
True
"""
import numpy as np

from nnlib._dropout_args import check_dropout_args
from nnlib._kernels import dropout as _k
from nnlib._kernels.aligned import empty_like as _empty_like
from nnlib._threads import resolve_threads
from nnlib._typing import ArrayLike, FloatArray, Threads
from nnlib._validation import check_same_shape
from nnlib.functional._arrays import as_kernel_array, as_kernel_rows

__all__ = ["dropout", "dropout_vjp"]


def _apply(src, rate, seed, step, row0, n_threads):
    rate, seed, step, row0 = check_dropout_args(rate, seed, step, row0)
    out = _empty_like(src)                 # on a cache line (nnlib._aligned)
    _k.dropout_apply(src, out, rate, seed, step, row0, resolve_threads(n_threads, src.size))
    return out


def dropout(x: ArrayLike, rate: float, seed: int, step: int = 0, *, row0: int = 0,
            n_threads: Threads = None) -> FloatArray:
    """``x * m / (1 - rate)`` with the mask ``m`` of ``(seed, step)``; the shape and
    dtype of ``x``.

    Examples
    --------
    >>> x = np.arange(1.0, 9.0).reshape(2, 4)
    >>> out = dropout(x, 0.5, seed=0)
    >>> bool(np.all((out == 0) | (out == 2 * x)))     # dropped, or kept and scaled
    True
    >>> np.array_equal(out, dropout(x, 0.5, seed=0, n_threads=2))   # the mask is fixed
    True
    >>> np.array_equal(out, dropout(x, 0.5, seed=0, step=1))        # a new step, a new mask
    False
    >>> np.array_equal(dropout(x, 0.0, seed=0), x)
    True
    """
    return _apply(as_kernel_rows(x, "x"), rate, seed, step, row0, n_threads)


def dropout_vjp(x: ArrayLike, grad_out: ArrayLike, rate: float, seed: int, step: int = 0, *,
                row0: int = 0, n_threads: Threads = None) -> FloatArray:
    """``grad_out * m / (1 - rate)``, the mask of :func:`dropout` with the same
    arguments; the shape and dtype of ``x``.

    Examples
    --------
    >>> x = np.arange(1.0, 9.0).reshape(2, 4)
    >>> g = dropout_vjp(x, np.ones_like(x), 0.25, seed=3)
    >>> np.array_equal(g * x, dropout(x, 0.25, seed=3))   # the same mask and scale
    True
    """
    x = as_kernel_rows(x, "x")
    g = as_kernel_array(grad_out, "grad_out", dtype=x.dtype)
    check_same_shape("x", x, "grad_out", g)
    return _apply(g, rate, seed, step, row0, n_threads)
