"""nnlib: dense neural networks with Cython-compiled kernels.

``import nnlib`` loads only NumPy and the small compiled kernel modules; everything heavier
is imported when first used.
"""
from nnlib import functional
from nnlib import optim
from nnlib._validation import DTypeError, LabelError, NonFiniteError, ShapeError

__version__ = "0.1.0"

__all__ = ["functional", "optim", "DTypeError", "LabelError", "NonFiniteError", "ShapeError",
           "__version__"]
