"""The dtype of classes_ and of predict for string and object labels, and the error for
a mix of strings and integers, against scikit-learn's own estimators (probe36: an object
array of strings gave classes_ of dtype object and a <U5 y classes_ <U5 where
scikit-learn's MLPClassifier and Perceptron give <U1; a mix raised a ValueError where
scikit-learn raises TypeError)."""
import warnings

import numpy as np
import pytest

from nnlib import MLPClassifier
from nnlib.exceptions import LabelError, MixedLabelTypesError
from nnlib.linear_models import LogisticRegression, Perceptron

sklearn_neural = pytest.importorskip("sklearn.neural_network")
sklearn_linear = pytest.importorskip("sklearn.linear_model")

N = 30


def _labels(a, b, c=None):
    """The label sets, of two classes (``c`` None: the linear models are binary) or
    three, repeated to N rows."""
    kinds = [a, b] if c is None else [a, b, c]
    reps = N // len(kinds)
    return {
        "U": np.array(kinds * reps),
        "U5": np.array(kinds * reps, dtype="<U5"),
        "U5-big-endian": np.array(kinds * reps, dtype=">U5"),
        "object-str": np.array(kinds * reps, dtype=object),
        "list-str": kinds * reps,
        "list-mixed": [kinds[0], 1, *kinds[2:]] * reps,   # np.asarray: all strings
        "int32": np.arange(len(kinds) * reps, dtype=np.int32) % len(kinds) + 3,
    }


# scikit-learn's classifiers refuse an object array of integers ("Unknown label type"),
# which nnlib's take as integers: the cases hold what both accept
LABELS = {"MLPClassifier": {**_labels("a", "bb", "c"),
                            **{f"binary-{k}": v for k, v in _labels("a", "bb").items()}},
          "Perceptron": _labels("a", "bb"),
          "LogisticRegression": _labels("a", "bb")}
ESTIMATORS = {
    "MLPClassifier": (lambda: MLPClassifier(hidden_layer_sizes=(3,), max_iter=3,
                                            random_state=0),
                      lambda: sklearn_neural.MLPClassifier(hidden_layer_sizes=(3,),
                                                           max_iter=3, random_state=0)),
    "Perceptron": (lambda: Perceptron(max_iter=3), lambda: sklearn_linear.Perceptron(
        max_iter=3)),
    "LogisticRegression": (lambda: LogisticRegression(max_iter=3),
                           lambda: sklearn_linear.LogisticRegression(max_iter=3)),
}
CASES = [(e, y) for e in ESTIMATORS for y in LABELS[e]]


def _X():
    return np.random.default_rng(0).standard_normal((N, 3))


@pytest.mark.parametrize("est,labels", CASES, ids=[f"{e}-{y}" for e, y in CASES])
def test_classes_and_predict_have_scikit_learns_dtype(est, labels):
    X, y = _X(), LABELS[est][labels]
    ours, theirs = ESTIMATORS[est]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, want = ours().fit(X, y), theirs().fit(X, y)
    assert got.classes_.dtype == want.classes_.dtype
    np.testing.assert_array_equal(got.classes_, want.classes_)
    assert got.predict(X).dtype == want.predict(X).dtype


@pytest.mark.parametrize("est", list(ESTIMATORS))
def test_a_mix_of_strings_and_integers_raises_scikit_learns_type_error(est):
    X, y = _X(), np.array(["a", 1] * (N // 2), dtype=object)
    ours, theirs = ESTIMATORS[est]
    with pytest.raises(TypeError) as want:
        theirs().fit(X, y)
    with pytest.raises(MixedLabelTypesError, match=r"one kind .*\['int', 'str'\]") as got:
        ours().fit(X, y)
    assert isinstance(got.value, LabelError) and isinstance(want.value, TypeError)


def test_partial_fit_takes_string_classes_as_scikit_learn_does():
    X = _X()
    y = np.array(list("abc") * 10, dtype=object)
    classes = np.array(["a", "b", "c"], dtype="<U4")
    got = MLPClassifier(hidden_layer_sizes=(3,), random_state=0).partial_fit(
        X, y, classes=classes)
    want = sklearn_neural.MLPClassifier(hidden_layer_sizes=(3,), random_state=0)
    want.partial_fit(X, y, classes=classes)
    assert got.classes_.dtype == want.classes_.dtype
    assert got.predict(X).dtype == want.predict(X).dtype
    got.partial_fit(X, y)                       # the object labels map onto <U1 classes
    with pytest.raises(TypeError):
        want.partial_fit(X, np.array(["a", 1] * 15, dtype=object))
    with pytest.raises(MixedLabelTypesError):
        got.partial_fit(X, np.array(["a", 1] * 15, dtype=object))
