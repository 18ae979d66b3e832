"""NumPy twins of nnlib.functional.losses: the readable statement of the math and the
tests' oracle. Same names and signatures; ``n_threads`` is accepted and ignored. Inputs
are assumed valid (the compiled versions validate); computed in float64, gradients cast
back to ``z``'s dtype."""
import numpy as np

from nnlib._codes import LOSS_CODES
from nnlib._reference.output_maps import _softmax64, _sparsemax64

__all__ = [n for name in LOSS_CODES for n in (name, name + "_grad")] + ["loss_and_grad"]


def _zy(z, y, labels):
    z = np.asarray(z)
    dt = z.dtype if z.dtype in (np.float32, np.float64) else np.float64
    z = z.astype(np.float64)
    # Targets are cast to z's dtype first, as the compiled versions document.
    y = np.asarray(y).astype(np.int64) if labels else np.asarray(y).astype(dt).astype(np.float64)
    return z, y, dt


def _onehot(y, c):
    return np.eye(c)[y]


def softmax_cross_entropy(z, y, *, n_threads=None):
    z, y, _ = _zy(z, y, True)
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def softmax_cross_entropy_grad(z, y, *, n_threads=None):
    z, y, dt = _zy(z, y, True)
    return ((_softmax64(z) - _onehot(y, z.shape[1])) / len(z)).astype(dt)


def squared_error(z, y, *, n_threads=None):
    z, y, _ = _zy(z, y, False)
    d = (z - y.reshape(z.shape)).reshape(len(z), -1)     # (n,) and (n, 1) interchangeable
    return float(np.mean(0.5 * (d ** 2).sum(axis=1)))


def squared_error_grad(z, y, *, n_threads=None):
    z, y, dt = _zy(z, y, False)
    return ((z - y.reshape(z.shape)) / len(z)).astype(dt)


def poisson_loss(z, y, *, n_threads=None):
    z, y, _ = _zy(z, y, False)
    t = y.reshape(z.shape).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tlogt = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
    per = (np.exp(z) - t * z + tlogt - t).reshape(len(z), -1)
    return float(np.mean(per.sum(axis=1)))


def poisson_loss_grad(z, y, *, n_threads=None):
    z, y, dt = _zy(z, y, False)
    return ((np.exp(z) - y.reshape(z.shape)) / len(z)).astype(dt)


def _softplus64(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def logistic_loss(z, y, *, n_threads=None):
    z, y, _ = _zy(z, y, False)
    s = np.where(y.reshape(-1) == 1, 1.0, -1.0) * z.reshape(-1)   # signed margin
    return float(np.mean(_softplus64(-s)))                         # log(1 + e^-s)


def logistic_loss_grad(z, y, *, n_threads=None):
    z, y, dt = _zy(z, y, False)
    shape = z.shape
    z, y = z.reshape(-1), y.reshape(-1)
    e = np.exp(-np.abs(z))
    sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return ((sig - y) / len(z)).reshape(shape).astype(dt)


def sparsemax_loss(z, y, *, n_threads=None):
    # Martins & Astudillo (2016): L = -z_k + 1/2 sum_{j in S} (z_j^2 - tau^2) + 1/2,
    # on z - max(z) (the loss is shift-invariant) to keep the squares small.
    z, y, _ = _zy(z, y, True)
    u = z - z.max(axis=1, keepdims=True)
    p, s = _sparsemax64(u)
    tau = np.where(s, u, 0.0).sum(axis=1) - 1         # u * s: -inf * 0 = NaN off support
    tau = tau / s.sum(axis=1)
    # np.where, not "* s": off the support u**2 may be inf (u = -1e308), and inf * 0 = NaN.
    sq = np.where(s, u ** 2 - tau[:, None] ** 2, 0.0)
    per = -u[np.arange(len(y)), y] + 0.5 * sq.sum(axis=1) + 0.5
    return float(np.mean(np.maximum(per, 0)))


def sparsemax_loss_grad(z, y, *, n_threads=None):
    z, y, dt = _zy(z, y, True)
    return ((_sparsemax64(z)[0] - _onehot(y, z.shape[1])) / len(z)).astype(dt)


def _hinge_parts(z, y, margin):
    n, c = z.shape
    rows = np.arange(n)
    others = np.where(_onehot(y, c) == 1, -np.inf, z)
    jstar = np.argmax(others, axis=1)                    # first maximizer among j != y
    h = margin + others[rows, jstar] - z[rows, y]
    return rows, jstar, h


def hinge_loss(z, y, margin=1.0, *, n_threads=None):
    z, y, _ = _zy(z, y, True)
    if z.shape[1] == 1:
        return 0.0
    _, _, h = _hinge_parts(z, y, margin)
    return float(np.mean(np.maximum(h, 0)))


def hinge_loss_grad(z, y, margin=1.0, *, n_threads=None):
    z, y, dt = _zy(z, y, True)
    g = np.zeros_like(z)
    if z.shape[1] > 1:
        rows, jstar, h = _hinge_parts(z, y, margin)
        active = h >= 0                                  # ties count as violations
        g[rows[active], jstar[active]] = 1.0
        g[rows[active], y[active]] = -1.0
    return (g / len(z)).astype(dt)


def loss_and_grad(loss, z, y, margin=1.0, *, n_threads=None):
    args = (margin,) if loss == "hinge_loss" else ()
    return globals()[loss](z, y, *args), globals()[loss + "_grad"](z, y, *args)
