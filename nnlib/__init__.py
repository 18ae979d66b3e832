"""nnlib: dense neural networks with Cython-compiled kernels.

``import nnlib`` loads NumPy and the exception classes only; every submodule and class
below is imported on first access (PEP 562 module ``__getattr__``), so a script that uses
only ``nnlib.functional`` never pays for the estimators, the datasets or the BLAS lookup.
"""
import importlib
from typing import TYPE_CHECKING, Any, List

from nnlib.exceptions import (DTypeError, DTypeRangeError, LabelError, NonFiniteError,
                              ShapeError)

__version__ = "0.1.0"

_SUBMODULES = {"callbacks", "datasets", "functional", "metrics", "optim", "schedules"}
_LAZY = {
    "Dense": "nnlib.layers",
    "Sequential": "nnlib.model",
    "History": "nnlib.model",
    "load": "nnlib.model",
    "MLPClassifier": "nnlib.estimators",
    "MLPRegressor": "nnlib.estimators",
    "LinearRegression": "nnlib.linear_models",
    "LogisticRegression": "nnlib.linear_models",
    "Perceptron": "nnlib.linear_models",
    "ThresholdNetwork": "nnlib.threshold",
    "set_flush_denormal": "nnlib._denormals",
    "get_flush_denormal": "nnlib._denormals",
}

__all__ = sorted(_SUBMODULES | set(_LAZY)) + [
    "DTypeError", "DTypeRangeError", "LabelError", "NonFiniteError", "ShapeError", "__version__"]


if TYPE_CHECKING:                     # the lazy names' types, for mypy and IDEs only
    from nnlib import callbacks, datasets, functional, metrics, optim, schedules
    from nnlib.estimators import MLPClassifier, MLPRegressor
    from nnlib.layers import Dense
    from nnlib.linear_models import LinearRegression, LogisticRegression, Perceptron
    from nnlib.model import History, Sequential, load
    from nnlib.threshold import ThresholdNetwork
    from nnlib._denormals import get_flush_denormal, set_flush_denormal


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"nnlib.{name}")
    elif name in _LAZY:
        module = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'nnlib' has no attribute {name!r}")
    globals()[name] = module          # cache: later look-ups skip __getattr__
    return module


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
