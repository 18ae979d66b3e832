"""Type aliases of nnlib's public signatures.

The names say what a parameter accepts: ``ArrayLike`` anything ``np.asarray`` takes
(lists included), ``FloatArray`` the float32 or float64 array nnlib returns (the dtype of
the input, as given), ``SeedLike`` the ``random_state`` values ``nnlib._random`` accepts.
``numpy.typing`` is part of NumPy's import, so these cost ``import nnlib`` nothing.
"""
import os
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["ArrayLike", "DTypeLike", "NDArray", "FloatArray", "IntArray", "SeedLike",
           "Threads", "PathLike", "SampleWeight", "Verbose"]

FloatArray = NDArray[np.floating[Any]]
IntArray = NDArray[np.integer[Any]]
SeedLike = Union[int, np.integer[Any], np.random.Generator, np.random.RandomState, None]
Threads = Union[int, None]
PathLike = Union[str, "os.PathLike[str]"]
SampleWeight = Union[None, float, ArrayLike]
#: Keras's ``verbose``: 0 (False) silent, 1 or 2 chattier, "auto" as 1
Verbose = Union[bool, int, str]
