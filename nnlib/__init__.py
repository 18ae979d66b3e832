"""nnlib: dense neural networks with Cython-compiled kernels.

``import nnlib`` loads only NumPy and the small compiled kernel modules; everything heavier
is imported when first used.
"""
from nnlib import datasets, functional
from nnlib import optim, schedules
from nnlib._validation import DTypeError, LabelError, NonFiniteError, ShapeError
from nnlib.estimators import MLPClassifier, MLPRegressor
from nnlib.linear_models import LinearRegression, LogisticRegression, Perceptron
from nnlib.threshold import ThresholdNetwork
from nnlib.layers import Dense
from nnlib.model import History, Sequential, load

__version__ = "0.1.0"

__all__ = ["datasets", "functional", "DTypeError", "LabelError", "NonFiniteError",
           "ShapeError", "__version__", "LinearRegression", "Perceptron",
           "ThresholdNetwork"]
__all__ += ["optim", "schedules"]
__all__ += ["Dense", "Sequential", "History", "load"]
__all__ += ["MLPClassifier", "MLPRegressor", "LogisticRegression"]
