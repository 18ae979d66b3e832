"""scikit-learn's ``train_test_split`` draws, without scikit-learn: the early-stopping
split of the MLP estimators.

scikit-learn's MLP holds out its validation rows with
``train_test_split(X, y, random_state=self._random_state, test_size=validation_fraction,
stratify=y if classifier and single-output else None)``, passing its RandomState itself,
so the split draws from the same stream as the initial weights and the epoch shuffles.
These functions draw exactly what ``ShuffleSplit`` / ``StratifiedShuffleSplit`` (1.9)
draw from that RandomState, in the same order, so ``early_stopping=True`` holds out the
same rows and trains the same model as scikit-learn for the same ``random_state``
(tests/test_sklearn_early_stopping.py compares the indices with scikit-learn's).

scikit-learn stratifies only a classifier with one output unit (two classes): on its
label-binarized target, a boolean column whose rows become the strings ``"False"`` and
``"True"`` (names used in its messages). ``stratify_groups`` also gives the groups of k
binarized columns (rows joined as ``"False True False"``, classes ordered as those
strings sort: descending class index), as ``StratifiedShuffleSplit`` orders them.
"""
import math

import numpy as np

__all__ = ["train_test_indices", "stratify_groups"]


def stratify_groups(class_index, n_classes):
    """(group codes, group names) scikit-learn's StratifiedShuffleSplit sees for a
    single-output classifier's targets, given each row's class index.

    Examples
    --------
    >>> codes, names = stratify_groups(np.array([0, 2, 1]), 3)
    >>> codes.tolist(), names
    ([2, 0, 1], ['False False True', 'False True False', 'True False False'])
    """
    class_index = np.asarray(class_index, dtype=np.int64)
    if n_classes <= 2:
        return class_index, ["False", "True"]
    names = [" ".join("True" if j == k else "False" for j in range(n_classes))
             for k in range(n_classes - 1, -1, -1)]
    return (n_classes - 1) - class_index, names


def _sizes(n_samples, test_size):
    """``_validate_shuffle_split(n_samples, test_size, None)``: (n_train, n_test)."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size={test_size} should be either positive and smaller "
                         f"than the number of samples {n_samples} or a float in the "
                         f"(0, 1) range")
    n_test = math.ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train == 0:
        raise ValueError(f"With n_samples={n_samples}, test_size={test_size} and "
                         f"train_size=None, the resulting train set will be empty. "
                         f"Adjust any of the aforementioned parameters.")
    return n_train, n_test


def _approximate_mode(class_counts, n_draws, rng):
    """``sklearn.utils.extmath._approximate_mode``: per-class draws, ties broken by
    ``rng`` exactly as there."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        values = np.sort(np.unique(remainder))[::-1]
        for value in values:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def train_test_indices(n_samples, test_size, rng, groups=None, group_names=None):
    """(train, test) row indices as ``train_test_split(..., test_size=test_size,
    random_state=rng, stratify=...)`` selects them.

    Parameters
    ----------
    n_samples : int
    test_size : float in (0, 1)
    rng : numpy.random.RandomState
        Drawn from (advanced) exactly as scikit-learn draws.
    groups : (n_samples,) int array or None
        Stratification group of each row (``stratify_groups``); None: a plain shuffle.
    group_names : list of str, optional
        The groups' names for the error messages.

    Returns
    -------
    train, test : int arrays

    Examples
    --------
    >>> train, test = train_test_indices(10, 0.2, np.random.RandomState(0))
    >>> sorted(train.tolist() + test.tolist()) == list(range(10)), len(test)
    (True, 2)
    """
    n_train, n_test = _sizes(n_samples, test_size)
    if groups is None:
        permutation = rng.permutation(n_samples)
        return permutation[n_test:n_test + n_train], permutation[:n_test]
    classes, y_indices, class_counts = np.unique(groups, return_inverse=True,
                                                 return_counts=True)
    names = [group_names[c] if group_names is not None else c for c in classes.tolist()]
    if np.min(class_counts) < 2:
        too_few = [names[i] for i in np.flatnonzero(class_counts < 2)]
        raise ValueError("The least populated classes in y have only 1 member, which is "
                         "too few. The minimum number of groups for any class cannot be "
                         f"less than 2. Classes with too few members are: {too_few}")
    n_classes = classes.shape[0]
    if n_train < n_classes:
        raise ValueError(f"The train_size = {n_train} should be greater or equal to the "
                         f"number of classes = {n_classes}")
    if n_test < n_classes:
        raise ValueError(f"The test_size = {n_test} should be greater or equal to the "
                         f"number of classes = {n_classes}")
    class_indices = np.split(np.argsort(y_indices.reshape(-1), kind="stable"),
                             np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(n_classes):
        permutation = rng.permutation(class_counts[i])
        perm = class_indices[i].take(permutation, mode="clip")
        train.extend(perm[:n_i[i]])
        test.extend(perm[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)
