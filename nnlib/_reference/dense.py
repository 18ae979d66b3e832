"""NumPy twin of nnlib.functional.dense: the Dense layer's math, written to be read.
Computed in float64, returned in W's dtype; ``n_threads`` is accepted and ignored."""
import numpy as np

from nnlib._dense_args import activation_spec, dense_arrays
from nnlib._reference import activations as _act

__all__ = ["dense_forward", "dense_backward"]


def _act_fn(activation, param):
    f = getattr(_act, activation)
    return (lambda z: f(z, param)) if activation in ("leaky_relu", "elu") else f


def _act_grad_from_output(activation, h, param):
    """act'(x) written with the output h = act(x) (what the layer keeps)."""
    if activation == "identity":
        return np.ones_like(h)
    if activation == "sigmoid":
        return h * (1 - h)                          # s' = s (1 - s)
    if activation == "tanh":
        return 1 - h * h                            # tanh' = 1 - tanh^2
    if activation == "relu":
        return (h > 0).astype(np.float64)
    if activation == "leaky_relu":
        return np.where(h > 0, 1.0, param)
    if activation == "softplus":
        return -np.expm1(-h)                        # sigma(x) = 1 - e^-softplus(x)
    if activation == "elu":
        return np.where(h > 0, 1.0, h + param)      # alpha e^x = elu(x) + alpha, x <= 0
    return np.zeros_like(h)                         # sign


def dense_forward(X, W, b, activation="identity", activation_param=None, *,
                  n_threads=None):
    _, param = activation_spec(activation, activation_param)
    X, W, b = dense_arrays(X, W, b)
    activation_spec(activation, activation_param, W.dtype)     # the param fits W's dtype
    Z = X.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    return np.asarray(_act_fn(activation, param)(Z), dtype=W.dtype)


def dense_backward(X, W, H, grad_H, activation="identity", activation_param=None, *,
                   n_threads=None):
    _, param = activation_spec(activation, activation_param)
    X, W, H, grad_H = dense_arrays(X, W, None, H, grad_H)
    activation_spec(activation, activation_param, W.dtype)     # the param fits W's dtype
    X64, W64, H64 = (a.astype(np.float64) for a in (X, W, H))
    dZ = grad_H.astype(np.float64) * _act_grad_from_output(activation, H64, param)
    dt = W.dtype
    return (dZ @ W64.T).astype(dt), (X64.T @ dZ).astype(dt), dZ.sum(axis=0).astype(dt)
