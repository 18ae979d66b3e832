"""NumPy twin of ``nnlib.functional.dropout``: the counter-based mask written out in
uint64 arithmetic (which wraps modulo 2**64, as the kernel's), then ``x * m / (1 - rate)``.
"""
import numpy as np

from nnlib._dropout_args import check_dropout_args
from nnlib._validation import as_float_array, as_float_rows, check_same_shape

__all__ = ["dropout", "dropout_vjp", "dropout_mask"]

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z):
    """SplitMix64's finalizer on a uint64 array."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(n, c, rate, seed, step=0, row0=0):
    """The (n, c) boolean mask of kept entries for rows row0 .. row0 + n - 1."""
    rate, seed, step, row0 = check_dropout_args(rate, seed, step, row0)
    with np.errstate(over="ignore"):
        seed_key = _mix64(np.array([seed], np.uint64) + GOLDEN)
        step_key = _mix64(seed_key + np.uint64(step) + GOLDEN)
        rows = np.arange(n, dtype=np.uint64) + np.uint64(row0)
        keys = _mix64(step_key + rows + GOLDEN)
        cols = (np.arange(c, dtype=np.uint64) + np.uint64(1)) * GOLDEN
        bits = _mix64(keys[:, None] + cols[None, :])
    threshold = np.uint64(int(np.ceil(rate * 2.0 ** 53)))
    return (bits >> np.uint64(11)) >= threshold


def _apply(src, rate, seed, step, row0):
    c = src.shape[-1]
    rows = src.reshape(-1, c)
    keep = dropout_mask(rows.shape[0], c, rate, seed, step, row0)
    scale = src.dtype.type(1.0 / (1.0 - rate))
    factor = np.where(keep, scale, src.dtype.type(0))
    with np.errstate(invalid="ignore", over="ignore"):
        return (rows * factor).reshape(src.shape)


def dropout(x, rate, seed, step=0, *, row0=0, n_threads=None):
    return _apply(as_float_rows(x, "x"), rate, seed, step, row0)


def dropout_vjp(x, grad_out, rate, seed, step=0, *, row0=0, n_threads=None):
    x = as_float_rows(x, "x")
    g = as_float_array(grad_out, "grad_out", dtype=x.dtype)
    check_same_shape("x", x, "grad_out", g)
    return _apply(g, rate, seed, step, row0)
