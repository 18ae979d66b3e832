"""Train/test split, seeded, optionally stratified (scikit-learn's ``train_test_split``
for the common case of one X and one y)."""
import math
import numbers

from typing import Any, Tuple, Union

import numpy as np

from nnlib._random import as_generator
from nnlib._typing import ArrayLike, NDArray, SeedLike
from nnlib._validation import ShapeError

__all__ = ["split"]


def _n_test(test_size, n):
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a float in (0, 1) or an int; got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    else:
        if not 0.0 < float(test_size) < 1.0:
            raise ValueError(f"test_size as a fraction must be in (0, 1); got {test_size}")
        n_test = math.ceil(test_size * n)   # as scikit-learn: the test set rounds up
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"test_size={test_size!r} leaves {n_test} test and {n - n_test} "
                         f"training samples out of {n}; both must be >= 1")
    return n_test


def _stratified_test_counts(counts, n_test):
    """Split n_test over classes in proportion to counts (largest remainder), keeping at
    least one training sample of every class that has one; what that keeps back from
    the test part is split the same way over the classes with members to spare (in
    proportion to their counts, so two equal classes stay within one sample).
    Raises ValueError when they cannot make up n_test."""
    take = np.minimum(_largest_remainder(counts, n_test), counts - 1).clip(min=0)
    short = n_test - int(take.sum())
    while short > 0:
        spare = counts - 1 - take
        open_ = spare > 0
        if not open_.any():
            raise ValueError(f"stratify: a test part of {n_test} samples leaves no "
                             f"training sample of some class (the "
                             f"{int((counts == 1).sum())} classes of one member stay in "
                             f"training, and the others spare {int(take.sum())}); lower "
                             f"test_size or stratify=None")
        # a class filled by its share passes what it cannot take to the next round
        add = np.minimum(_largest_remainder(np.where(open_, counts, 0), short), spare)
        take += add
        short -= int(add.sum())
    return take


def _largest_remainder(counts, n):
    """n split over counts in proportion, floors first, the rest one each to the largest
    remainders (ties to the lower class index)."""
    exact = counts * (n / counts.sum())
    take = np.floor(exact).astype(np.int64)
    for k in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[k] += 1
    return take


def split(X: ArrayLike, y: ArrayLike, test_size: Union[float, int] = 0.25, *,
          random_state: SeedLike = None, stratify: Union[None, bool, ArrayLike] = None,
          shuffle: bool = True) -> Tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Split ``X, y`` into a training and a test part.

    Parameters
    ----------
    X : array_like of shape (n_samples, ...)
    y : array_like of shape (n_samples, ...)
    test_size : float in (0, 1) or int
        Fraction of the samples (rounded up) or number of samples in the test part.
    random_state : None, int or numpy.random.Generator
    stratify : None, True or array_like of shape (n_samples,)
        Keep class proportions equal in both parts: True stratifies by ``y``, an array by
        its values. Every class with >= 2 samples appears in both parts when possible.
    shuffle : bool
        If False, the last ``test_size`` samples form the test part (no randomness;
        ``stratify`` must then be None).

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarrays (same order as scikit-learn)

    Examples
    --------
    >>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    >>> X_train, X_test, y_train, y_test = split(X, y, test_size=2, shuffle=False)
    >>> X_test, y_test
    (array([[6., 7.],
           [8., 9.]]), array([3, 4]))
    >>> parts = split(X, y, test_size=2, random_state=0)
    >>> sorted(parts[2].tolist() + parts[3].tolist())
    [0, 1, 2, 3, 4]
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"X and y must be arrays of samples; got shapes {X.shape} and "
                         f"{y.shape}")
    n = X.shape[0]
    if y.shape[0] != n:
        raise ShapeError(f"X and y must have the same number of samples; got {n} and "
                         f"{y.shape[0]}")
    n_test = _n_test(test_size, n)
    if not shuffle:
        if stratify is not None:
            raise ValueError("stratify needs shuffle=True")
        return X[: n - n_test], X[n - n_test:], y[: n - n_test], y[n - n_test:]
    rng = as_generator(random_state)
    if isinstance(stratify, (bool, np.bool_)):    # numpy's True, as from a comparison
        stratify = bool(stratify) or None
    if stratify is None:
        order = rng.permutation(n)
        test, train = order[:n_test], order[n_test:]
    else:
        groups = y if stratify is True else np.asarray(stratify)
        if groups.shape[:1] != (n,) or groups.ndim != 1:
            raise ShapeError(f"stratify must have shape ({n},); got {groups.shape}")
        try:
            classes, inverse, counts = np.unique(groups, return_inverse=True,
                                                 return_counts=True)
        except TypeError:       # an object array of values that do not compare
            kinds = sorted({type(v).__name__ for v in groups.tolist()})
            raise TypeError(f"stratify must hold groups of one kind that compare (they "
                            f"are sorted); got the types {kinds}") from None
        inverse = inverse.reshape(-1)
        take = _stratified_test_counts(counts, n_test)
        test_parts, train_parts = [], []
        for k in range(classes.size):
            members = rng.permutation(np.flatnonzero(inverse == k))
            test_parts.append(members[: take[k]])
            train_parts.append(members[take[k]:])
        test = rng.permutation(np.concatenate(test_parts))
        train = rng.permutation(np.concatenate(train_parts))
    return X[train], X[test], y[train], y[test]
