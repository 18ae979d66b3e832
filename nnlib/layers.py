"""Layers of a :class:`nnlib.Sequential` model.

A :class:`Dense` layer holds its weights ``W`` (n_in, n_out) and bias ``b`` (n_out,) as
live NumPy arrays and computes ``H = act(X @ W + b)`` through the compiled kernels of
:mod:`nnlib.functional.dense`.

Initializers (fan_in = n_in, fan_out = n_out; biases start at 0):

=================  ===============================================  ===================
name               distribution                                     reference
=================  ===============================================  ===================
glorot_uniform     U(-a, a), a = sqrt(6 / (fan_in + fan_out))       Glorot & Bengio 2010
glorot_normal      N(0, 2 / (fan_in + fan_out))                     Glorot & Bengio 2010
he_uniform         U(-a, a), a = sqrt(6 / fan_in)                   He et al. 2015
he_normal          N(0, 2 / fan_in)                                 He et al. 2015
zeros              0                                                (the notes' XOR nets)
=================  ===============================================  ===================

(``glorot_uniform`` is also PyTorch's ``xavier_uniform_`` and Keras' default.)
"""
import numpy as np

from nnlib._dense_args import activation_spec
# One seed rule for the whole library (a negative seed is a clear ValueError, not
# NumPy's "expected non-negative integer"). Re-exported: nnlib.model imports it here.
from nnlib._random import as_generator
from nnlib._validation import (DTypeError, ShapeError, as_float_array, check_int_scalar,
                               native_float_dtype)
from nnlib.functional.dense import dense_backward, dense_forward

__all__ = ["Dense", "INITIALIZERS", "as_generator"]


def _glorot_uniform(rng, n_in, n_out):
    a = np.sqrt(6.0 / max(n_in + n_out, 1))
    return rng.uniform(-a, a, size=(n_in, n_out))


def _glorot_normal(rng, n_in, n_out):
    return rng.normal(0.0, np.sqrt(2.0 / max(n_in + n_out, 1)), size=(n_in, n_out))


def _he_uniform(rng, n_in, n_out):
    a = np.sqrt(6.0 / max(n_in, 1))
    return rng.uniform(-a, a, size=(n_in, n_out))


def _he_normal(rng, n_in, n_out):
    return rng.normal(0.0, np.sqrt(2.0 / max(n_in, 1)), size=(n_in, n_out))


def _zeros(rng, n_in, n_out):
    return np.zeros((n_in, n_out))


INITIALIZERS = {
    "glorot_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
    "zeros": _zeros,
}


class Dense:
    """Fully connected layer ``H = act(X @ W + b)``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths (>= 1).
    activation : str, default "identity"
        identity, sigmoid, tanh, relu, leaky_relu, softplus, elu or sign.
    init : str, default "glorot_uniform"
        Weight initializer (see the module docstring).
    dtype : float32 or float64, default float64
    random_state : None, int or numpy.random.Generator
        Seed for the initializer.
    activation_param : float, optional
        leaky_relu's slope (default 0.01) or elu's alpha (default 1.0), >= 0 and at most
        the largest value of ``dtype`` (DTypeRangeError otherwise; checked again when the
        model runs, as the attribute or the weights' dtype may change).

    Attributes
    ----------
    W : ndarray (n_in, n_out);  b : ndarray (n_out,)
        Live arrays: writing into them changes the layer.
    """

    def __init__(self, n_in, n_out, activation="identity", init="glorot_uniform",
                 dtype=np.float64, random_state=None, activation_param=None):
        self.n_in = check_int_scalar(n_in, "n_in", low=1)
        self.n_out = check_int_scalar(n_out, "n_out", low=1)
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise DTypeError(f"dtype must be float32 or float64; got {dtype!r}") from None
        if dt not in (np.float32, np.float64):
            raise DTypeError(f"dtype must be float32 or float64; got {dt}")
        self.activation_code, self.activation_param = activation_spec(
            activation, activation_param, dt)
        self.activation = activation
        self._param_given = activation_param is not None
        if self.n_in * self.n_out > np.iinfo(np.intp).max // dt.itemsize:
            # NumPy's own answer ("array is too big") does not say which argument is at
            # fault.
            raise ShapeError(f"Dense({self.n_in}, {self.n_out}) has too many weights "
                             f"(n_in * n_out = {self.n_in * self.n_out}) for one array")
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; expected one of "
                             f"{sorted(INITIALIZERS)}")
        self.init = init
        rng = as_generator(random_state)
        self.W = np.ascontiguousarray(INITIALIZERS[init](rng, self.n_in, self.n_out),
                                      dtype=dt)
        self.b = np.zeros(self.n_out, dtype=dt)

    @property
    def dtype(self):
        dt = self.W.dtype
        return dt if dt.isnative else (native_float_dtype(dt) or dt)

    @property
    def params(self):
        return [self.W, self.b]

    def spec(self):
        """JSON-able description (used by save/load)."""
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out,
                "activation": self.activation,
                "activation_param": self.activation_param if self._param_given else None,
                "init": self.init}

    def _act_args(self):
        """(activation name, its parameter or None for the default)."""
        return self.activation, self.activation_param if self._param_given else None

    def forward(self, X, n_threads=None):
        """``act(X @ W + b)``; X (n, n_in) in the layer's dtype."""
        return dense_forward(X, self.W, self.b, *self._act_args(), n_threads=n_threads)

    def backward(self, X, H, grad_H):
        """(dX, dW, db) given the input X, the output H and dObjective/dH."""
        return dense_backward(X, self.W, H, grad_H, *self._act_args())

    def _check_live(self):
        """The arrays may have been replaced by a user: keep them usable in place."""
        for name, shape in (("W", (self.n_in, self.n_out)), ("b", (self.n_out,))):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.shape != shape:
                raise ShapeError(f"Dense.{name} must be an array of shape {shape}; got "
                                 f"{getattr(a, 'shape', type(a).__name__)}")
            dt = a.dtype if a.dtype.isnative else (native_float_dtype(a.dtype) or a.dtype)
            if dt != self.dtype:
                raise DTypeError(f"Dense.W and Dense.b must share a dtype; got "
                                 f"{self.W.dtype} and {self.b.dtype}")
            if not (a.flags.c_contiguous and a.flags.writeable and a.dtype.isnative):
                setattr(self, name, as_float_array(a, name).copy())

    def __repr__(self):
        return (f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}, "
                f"dtype={self.dtype.name})")
