"""The 8x8 handwritten digits, shipped with the package (no network access).

Source and licence: nnlib/datasets/data/README.
"""
import gzip
import importlib.resources

from typing import Tuple

import numpy as np

from nnlib._typing import FloatArray
from nnlib._validation import check_int_scalar

__all__ = ["load_digits"]

_DIGITS_FILE = "digits.csv.gz"
_cache: dict = {}


def _digits_table():
    # Parsed once per process; callers get copies, so the cache cannot be corrupted.
    if "table" not in _cache:
        ref = importlib.resources.files("nnlib.datasets").joinpath("data").joinpath(_DIGITS_FILE)
        with ref.open("rb") as raw, gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.float64)
        if table.shape != (1797, 65):
            raise RuntimeError(f"{_DIGITS_FILE} is damaged: expected 1797 rows of 65 "
                               f"values, got shape {table.shape}")
        _cache["table"] = table
    return _cache["table"]


def load_digits(*, n_class: int = 10, return_images: bool = False) -> Tuple[FloatArray, ...]:
    """Load the 8x8 handwritten digits (1797 images, 10 classes, about 180 each).

    The data are the test set of the UCI ML Repository's "Optical Recognition of
    Handwritten Digits" (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), as distributed
    by scikit-learn (``sklearn/datasets/data/digits.csv.gz``, copied byte for byte into
    ``nnlib/datasets/data/``; see the README there). Each image is the count of "on"
    pixels in 4x4 blocks of a 32x32 bitmap, so every pixel is an integer in 0..16.
    The same rows in the same order as ``sklearn.datasets.load_digits``.

    Parameters
    ----------
    n_class : int in 1..10
        Keep only the digits 0 .. n_class - 1.
    return_images : bool
        Also return the pixels as images of shape (n, 8, 8).

    Returns
    -------
    X : ndarray of shape (n, 64), float64
        Pixel counts 0..16, row-major 8x8 (scale with X / 16 before training).
    y : ndarray of shape (n,), int64
        The digit, 0..9.
    images : ndarray of shape (n, 8, 8), float64
        Only if ``return_images``; a view of the same values as X.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, float(X.max()), np.bincount(y)
    ((1797, 64), 16.0, array([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]))
    >>> X, y, images = load_digits(n_class=2, return_images=True)
    >>> images.shape, sorted(set(y.tolist()))
    ((360, 8, 8), [0, 1])
    """
    n_class = check_int_scalar(n_class, "n_class", low=1)
    if n_class > 10:
        raise ValueError(f"n_class must be <= 10; got {n_class}")
    table = _digits_table()
    keep = table[:, -1] < n_class
    X = np.ascontiguousarray(table[keep, :-1])
    y = table[keep, -1].astype(np.int64)
    if return_images:
        return X, y, X.reshape(-1, 8, 8)
    return X, y
