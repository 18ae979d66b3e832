"""Argument checks shared by the Dense layer's compiled wrapper, its NumPy twin and the
model API: activation names and parameters, array shapes and dtypes."""
from typing import List

import numpy as np

from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS, activation_code
from nnlib._validation import (DTypeError, ShapeError, as_float_array,
                               check_fits_dtype, check_real_scalar, native_float_dtype)


def activation_spec(activation, activation_param, dtype=None):
    """Return (code, param) for a Dense layer's activation.

    The derivative is taken from the layer's output, which needs a leaky_relu slope >= 0
    and an elu alpha >= 0 (then y > 0 exactly when x > 0). With ``dtype`` (the layer's
    working dtype) the parameter must also fit it (DTypeRangeError otherwise: a slope of
    1e39 would be inf in float32 kernels)."""
    code = activation_code(activation)
    if activation in ACTIVATION_PARAMS:
        pname, default = ACTIVATION_PARAMS[activation]
        if activation_param is None:
            return code, float(default)
        param = check_real_scalar(activation_param, f"{activation} {pname}", low=0.0)
        if dtype is not None:
            check_fits_dtype(param, f"{activation} {pname}", dtype)
        return code, param
    if activation_param is not None:
        raise ValueError(f"activation {activation!r} takes no parameter; got "
                         f"activation_param={activation_param!r}")
    return code, 0.0


def _as_dtype(x, name, dtype, ndim):
    """Float input must already be ``dtype``; bool/int input is converted to it."""
    arr = np.asarray(x)
    # `is None` first: NumPy reads None as float64, so `None != float64` is False
    native = native_float_dtype(arr.dtype)
    if arr.dtype.kind == "f" and (native is None or native != dtype):
        raise DTypeError(f"{name} has dtype {arr.dtype} but W has dtype {dtype}; "
                         f"convert one with .astype() (nnlib does not mix precisions)")
    if arr.dtype.kind in "biu":
        arr = arr.astype(dtype)
    return as_float_array(arr, name, ndim=ndim)


def dense_arrays(X, W, b=None, H=None, grad_H=None) -> List[np.ndarray]:
    """Validate a Dense layer's arrays; return them C-contiguous in W's dtype."""
    W = as_float_array(W, "W", ndim=2)
    dt = W.dtype
    X = _as_dtype(X, "X", dt, 2)
    n_in, n_out = W.shape
    if X.shape[1] != n_in:
        raise ShapeError(f"X has {X.shape[1]} columns but W has {n_in} rows "
                         f"(X {X.shape} @ W {W.shape} is undefined)")
    out = [X, W]
    if b is not None:
        b = _as_dtype(b, "b", dt, None)
        if b.shape != (n_out,):
            raise ShapeError(f"b must have shape ({n_out},) to match W {W.shape}; "
                             f"got {b.shape}")
        out.append(b)
    for name, a in (("H", H), ("grad_H", grad_H)):
        if a is not None:
            a = _as_dtype(a, name, dt, 2)
            if a.shape != (X.shape[0], n_out):
                raise ShapeError(f"{name} must have shape {(X.shape[0], n_out)} (rows of "
                                 f"X, columns of W); got {a.shape}")
            out.append(a)
    return out


__all__ = ["activation_spec", "dense_arrays", "ACTIVATION_CODES"]
