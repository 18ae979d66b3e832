"""Elementwise activations and their vector-Jacobian products (compiled).

Each activation ``name(x)`` has ``name_vjp(x, grad_out)``, the gradient of
``sum(grad_out * name(x))`` with respect to ``x``, i.e. ``name'(x) * grad_out``.

Parameters shared by every function here:

x : array_like, any shape
    Input; float32 and float64 are kept as given, integers and bools become float64.
grad_out : array_like, shape of ``x``
    Upstream gradient (cast to ``x``'s dtype).
n_threads : int or None
    OpenMP threads; None uses all cores for inputs of 2**15 elements or more, else 1.

Each returns a new array with the shape and dtype of ``x``.

Conventions at kinks: ``relu'(0) = 0`` (as PyTorch; the notes' table writes 1 for x >= 0 —
both are subgradients), ``leaky_relu'(0) = slope``, ``elu'(0) = alpha``. ``sign`` is the
notes' threshold unit (``sign(0) = 0``, as ``np.sign``); its derivative is 0 wherever it
exists and undefined at 0, so ``sign_vjp`` returns zeros: sign units cannot be trained by
backprop. NaN in, NaN out, as in NumPy.

``slope`` and ``alpha`` must be finite and at most the largest value of ``x``'s dtype
(3.4e38 for float32): the kernels use them in that dtype, where a larger one would be inf
(and ``0 * inf`` NaN). Beyond it :class:`~nnlib.DTypeRangeError` (a ValueError) is
raised. Within it, a result too large for the dtype (``leaky_relu(-1e30, slope=1e20)`` in
float32) is the correctly rounded overflow, +-inf, as in NumPy.
"""
import numpy as np

from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS
from nnlib._kernels import activations as _k
from nnlib._threads import resolve_threads
from nnlib._validation import (as_float_array, check_fits_dtype, check_real_scalar,
                               check_same_shape)

__all__ = [n for name in ACTIVATION_CODES for n in (name, name + "_vjp")]


def _param(name, param, dtype):
    """The activation's parameter, checked to fit the working dtype."""
    if name in ACTIVATION_PARAMS:
        check_fits_dtype(param, ACTIVATION_PARAMS[name][0], dtype)
    return param


def _forward(name, x, param, n_threads):
    x = as_float_array(x, "x")
    param = _param(name, param, x.dtype)
    out = np.empty_like(x)
    _k.activation_forward(ACTIVATION_CODES[name], x.reshape(-1), out.reshape(-1),
                          param, resolve_threads(n_threads, x.size))
    return out


def _vjp(name, x, grad_out, param, n_threads):
    x = as_float_array(x, "x")
    g = as_float_array(grad_out, "grad_out", dtype=x.dtype)
    check_same_shape("x", x, "grad_out", g)
    param = _param(name, param, x.dtype)
    out = np.empty_like(x)
    _k.activation_vjp(ACTIVATION_CODES[name], x.reshape(-1), g.reshape(-1),
                      out.reshape(-1), param, resolve_threads(n_threads, x.size))
    return out


def identity(x, *, n_threads=None):
    """identity(x) = x (a copy)."""
    return _forward("identity", x, 0.0, n_threads)


def identity_vjp(x, grad_out, *, n_threads=None):
    """identity'(x) * grad_out = grad_out."""
    return _vjp("identity", x, grad_out, 0.0, n_threads)


def sigmoid(x, *, n_threads=None):
    """sigmoid(x) = 1 / (1 + exp(-x)); never overflows (sigmoid(-1000) = 0)."""
    return _forward("sigmoid", x, 0.0, n_threads)


def sigmoid_vjp(x, grad_out, *, n_threads=None):
    """sigmoid'(x) * grad_out, with sigmoid' = sigmoid (1 - sigmoid)."""
    return _vjp("sigmoid", x, grad_out, 0.0, n_threads)


def tanh(x, *, n_threads=None):
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x)."""
    return _forward("tanh", x, 0.0, n_threads)


def tanh_vjp(x, grad_out, *, n_threads=None):
    """tanh'(x) * grad_out, with tanh' = 1 - tanh^2."""
    return _vjp("tanh", x, grad_out, 0.0, n_threads)


def relu(x, *, n_threads=None):
    """relu(x) = max(x, 0)."""
    return _forward("relu", x, 0.0, n_threads)


def relu_vjp(x, grad_out, *, n_threads=None):
    """relu'(x) * grad_out, with relu'(x) = 1 if x > 0 else 0 (0 at the kink)."""
    return _vjp("relu", x, grad_out, 0.0, n_threads)


def leaky_relu(x, slope=0.01, *, n_threads=None):
    """leaky_relu(x) = x if x > 0 else slope * x."""
    return _forward("leaky_relu", x, check_real_scalar(slope, "slope"), n_threads)


def leaky_relu_vjp(x, grad_out, slope=0.01, *, n_threads=None):
    """leaky_relu'(x) * grad_out, with leaky_relu'(x) = 1 if x > 0 else slope."""
    return _vjp("leaky_relu", x, grad_out, check_real_scalar(slope, "slope"), n_threads)


def softplus(x, *, n_threads=None):
    """softplus(x) = log(1 + e^x), exact to double precision for all x (softplus(1000) =
    1000): the cut-offs of Maechler (2012) as in scikit-learn's _loss."""
    return _forward("softplus", x, 0.0, n_threads)


def softplus_vjp(x, grad_out, *, n_threads=None):
    """softplus'(x) * grad_out, with softplus' = sigmoid."""
    return _vjp("softplus", x, grad_out, 0.0, n_threads)


def elu(x, alpha=1.0, *, n_threads=None):
    """elu(x) = x if x > 0 else alpha * (e^x - 1), alpha >= 0."""
    return _forward("elu", x, check_real_scalar(alpha, "alpha", low=0.0), n_threads)


def elu_vjp(x, grad_out, alpha=1.0, *, n_threads=None):
    """elu'(x) * grad_out, with elu'(x) = 1 if x > 0 else alpha * e^x."""
    return _vjp("elu", x, grad_out, check_real_scalar(alpha, "alpha", low=0.0), n_threads)


def sign(x, *, n_threads=None):
    """sign(x) in {-1, 0, 1}: the notes' threshold unit (np.sign's convention at 0)."""
    return _forward("sign", x, 0.0, n_threads)


def sign_vjp(x, grad_out, *, n_threads=None):
    """Zeros: sign' = 0 for x != 0 and is undefined at 0 (0 is used there)."""
    return _vjp("sign", x, grad_out, 0.0, n_threads)
