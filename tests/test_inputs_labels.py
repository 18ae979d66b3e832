"""nnlib._inputs.class_labels: the sorted distinct labels and each sample's index, counted
for integer labels of a narrow range (``_counted_labels``) and sorted otherwise
(``np.unique``): both ways give the same arrays, and a classifier fitted either way the
same weights bit for bit."""
import warnings

import numpy as np
import pytest

from nnlib import _inputs
from nnlib._inputs import class_labels

# native ones, and non-native byte orders (np.unique keeps y's byte order in classes)
SWAPPED = ">" if np.little_endian else "<"
INT_DTYPES = [np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                    np.uint32, np.int64, np.uint64)] + [
    np.dtype(SWAPPED + code) for code in ("i2", "u2", "i4", "u4", "i8", "u8")]


def _value_sets(dt):
    """(id, values) spread over a dtype's range, its ends included."""
    info = np.iinfo(dt)
    return [("small", [0, 1, 2, 4]),
            ("one-class", [7]),
            ("at-min", [info.min, info.min + 1, info.min + 5]),
            ("at-max", [info.max - 5, info.max - 2, info.max]),
            ("whole-range", [info.min, info.max])]


CASES = [pytest.param(dt, values, id=f"{dt.str}-{name}")
         for dt in INT_DTYPES for name, values in _value_sets(dt)]


def _draw(dt, values, n=300, seed=0):
    return np.random.default_rng(seed).choice(np.array(values, dtype=dt), n)


def _check_like_unique(y, classes, index):
    want_classes, want_index = np.unique(y, return_inverse=True)
    assert classes.dtype == want_classes.dtype
    np.testing.assert_array_equal(classes, want_classes)
    assert index.dtype == np.int64 and index.shape == y.shape
    np.testing.assert_array_equal(index, want_index)


@pytest.mark.parametrize("dt, values", CASES)
def test_counted_and_sorted_labels_match_unique(dt, values, monkeypatch):
    y = _draw(dt, values)
    _check_like_unique(y, *class_labels(y, owner="test"))
    monkeypatch.setattr(_inputs, "COUNTED_LABELS_MAX_RANGE", 0)     # always sorted
    assert _inputs._counted_labels(y) is None
    _check_like_unique(y, *class_labels(y, owner="test"))


@pytest.mark.parametrize("dt, values", CASES)
def test_counting_is_taken_for_a_narrow_range_only(dt, values):
    y = _draw(dt, values)
    span = int(y.max()) - int(y.min())
    counted = _inputs._counted_labels(y)
    assert (counted is not None) == (span < min(_inputs.COUNTED_LABELS_MAX_RANGE,
                                               4 * y.size + 64))


@pytest.mark.parametrize("y", [np.array([True, False, True]), np.array([1.0, 3.0, 1.0]),
                               np.array(["b", "a", "b"]), np.array([], dtype=np.int64)],
                         ids=["bool", "float", "str", "empty"])
def test_other_labels_are_sorted(y):
    assert _inputs._counted_labels(y) is None
    if y.size:
        _check_like_unique(y, *class_labels(y, owner="test"))


def test_fit_is_bitwise_the_same_counted_or_sorted(monkeypatch):
    from nnlib import MLPClassifier
    from nnlib.exceptions import ConvergenceWarning
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 6))
    y = rng.choice(np.array([-3, 2, 9], dtype=np.int16), 120)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, batch_size=32,
                                 random_state=0).fit(X, y)

    counted = fit()
    monkeypatch.setattr(_inputs, "COUNTED_LABELS_MAX_RANGE", 0)
    sorted_ = fit()
    np.testing.assert_array_equal(counted.classes_, sorted_.classes_)
    assert counted.classes_.dtype == sorted_.classes_.dtype
    for a, b in zip(counted.coefs_ + counted.intercepts_,
                    sorted_.coefs_ + sorted_.intercepts_):
        assert a.tobytes() == b.tobytes()
    assert counted.loss_curve_ == sorted_.loss_curve_
    np.testing.assert_array_equal(counted.predict(X), sorted_.predict(X))
