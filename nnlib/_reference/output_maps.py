"""NumPy twins of nnlib.functional.output_maps: the readable statement of the math and
the tests' oracle. Same names and signatures; ``n_threads`` is accepted and ignored.
Computed in float64 and cast back to the input's dtype."""
import numpy as np

__all__ = ["softmax", "softmax_vjp", "log_softmax", "log_softmax_vjp",
           "sparsemax", "sparsemax_vjp"]


def _f(x):
    x = np.asarray(x)
    dt = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    return x.astype(np.float64), dt


def _softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sparsemax64(x):
    """(p, support mask): Martins & Astudillo (2016), Algorithm 1, vectorized over rows."""
    srt = -np.sort(-x, axis=-1)                          # descending
    k = np.arange(1, x.shape[-1] + 1)
    cumsum = np.cumsum(srt, axis=-1)
    in_support = 1 + k * srt > cumsum                    # true for a prefix of j = 1..k(z)
    k_z = in_support.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cumsum, k_z - 1, axis=-1) - 1) / k_z
    return np.maximum(x - tau, 0), x > tau


def softmax(x, *, n_threads=None):
    x, dt = _f(x)
    return _softmax64(x).astype(dt)


def softmax_vjp(x, grad_out, *, n_threads=None):
    x, dt = _f(x)
    s, g = _softmax64(x), np.asarray(grad_out, dtype=np.float64)
    return (s * (g - (g * s).sum(axis=-1, keepdims=True))).astype(dt)


def log_softmax(x, *, n_threads=None):
    x, dt = _f(x)
    m = x.max(axis=-1, keepdims=True)
    return ((x - m) - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))).astype(dt)


def log_softmax_vjp(x, grad_out, *, n_threads=None):
    x, dt = _f(x)
    g = np.asarray(grad_out, dtype=np.float64)
    return (g - _softmax64(x) * g.sum(axis=-1, keepdims=True)).astype(dt)


def sparsemax(x, *, n_threads=None):
    x, dt = _f(x)
    return _sparsemax64(x)[0].astype(dt)


def sparsemax_vjp(x, grad_out, *, n_threads=None):
    x, dt = _f(x)
    g = np.asarray(grad_out, dtype=np.float64)
    _, s = _sparsemax64(x)
    mean_s = (g * s).sum(axis=-1, keepdims=True) / s.sum(axis=-1, keepdims=True)
    return (s * (g - mean_s)).astype(dt)
