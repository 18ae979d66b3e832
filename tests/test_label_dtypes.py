"""The dtype of classes_ and of predict for string and object labels, and the error for
a mix of strings and integers, against scikit-learn's own estimators (probe36: an object
array of strings gave classes_ of dtype object and a <U5 y classes_ <U5 where
scikit-learn's MLPClassifier and Perceptron give <U1; a mix raised a ValueError where
scikit-learn raises TypeError)."""
import warnings

import numpy as np
import pytest

from nnlib import MLPClassifier
from nnlib.exceptions import BytesLabelError, LabelError, MixedLabelTypesError
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


# the cases hold what both accept (an object array of integers both refuse: below)
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


NOT_MIXED = {       # object arrays of one kind scikit-learn refuses as a ValueError
    "floats": [1.0, 2.0], "bools": [True, False], "ints-and-floats": [1, 2.0],
    "ints-and-bools": [1, True],
}


@pytest.mark.parametrize("est", list(ESTIMATORS))
@pytest.mark.parametrize("kind", list(NOT_MIXED))
def test_labels_without_strings_are_refused_as_a_value_error_not_a_mix(est, kind):
    # MixedLabelTypesError (a TypeError) named every refused object array a mix of
    # strings and integers, floats and bools alone too, where scikit-learn's
    # classifiers raise a ValueError ("Unknown label type") for all but strings beside
    # other values (bytes: test_label_types_raise_what_scikit_learn_raises)
    X, y = _X(), np.array(NOT_MIXED[kind] * (N // 2), dtype=object)
    ours, theirs = ESTIMATORS[est]
    with pytest.raises((TypeError, ValueError)) as want:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs().fit(X, y)
    with pytest.raises(LabelError, match=r"Unknown label type: .*one kind") as got:
        ours().fit(X, y)
    assert not isinstance(got.value, MixedLabelTypesError)
    assert isinstance(want.value, ValueError)


@pytest.mark.parametrize("mix", [["a", 1.5], ["a", None], ["a", True], [b"a", "b"]],
                         ids=["str-float", "str-None", "str-bool", "bytes-str"])
def test_strings_beside_any_other_label_are_a_mix(mix):
    X, y = _X(), np.array(mix * (N // 2), dtype=object)
    with pytest.raises(TypeError):
        sklearn_neural.MLPClassifier().fit(X, y)
    with pytest.raises(MixedLabelTypesError):
        MLPClassifier().fit(X, y)


# Labels scikit-learn's classifiers refuse (sklearn 1.9.1), and which of its two errors:
# bytes in any form a TypeError ("labels represented as bytes"), values that do not sort
# a TypeError (NumPy's sort), an object array of numbers or bools alone a ValueError
# ("Unknown label type", its first value being no string). Session 37: nnlib took bytes
# (a |S array or a list) and an object array of integers as labels, and called None
# beside an integer a ValueError.
REFUSED = {
    "bytes-array": (lambda: np.array([b"a", b"b"] * (N // 2)), BytesLabelError),
    "bytes-list": (lambda: [b"a", b"b"] * (N // 2), BytesLabelError),
    "bytes-object": (lambda: np.array([b"a", b"b"] * (N // 2), dtype=object),
                     BytesLabelError),
    "int-and-bytes": (lambda: np.array([0, b"b"] * (N // 2), dtype=object),
                      BytesLabelError),
    "object-ints": (lambda: np.array([0, 1] * (N // 2), dtype=object), LabelError),
    "object-numpy-ints": (lambda: np.array([np.int64(0), np.int64(1)] * (N // 2),
                                           dtype=object), LabelError),
    "int-and-None": (lambda: np.array([0, None] * (N // 2), dtype=object),
                     MixedLabelTypesError),
    "float-and-None": (lambda: np.array([None, 0.5] * (N // 2), dtype=object),
                       MixedLabelTypesError),
}
# labels whose error scikit-learn's MLPClassifier and Perceptron take from their sort
# (a TypeError) where its LogisticRegression checks the type first (a ValueError)
SORTED_FIRST = {"int-and-bytes", "int-and-None", "float-and-None"}
REFUSED_CASES = [(e, k) for e in ESTIMATORS for k in REFUSED]


@pytest.mark.parametrize("est,kind", REFUSED_CASES, ids=[f"{e}-{k}" for e, k in REFUSED_CASES])
def test_label_types_raise_what_scikit_learn_raises(est, kind):
    make_y, error = REFUSED[kind]
    ours, theirs = ESTIMATORS[est]
    with pytest.raises((TypeError, ValueError)) as want:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs().fit(_X(), make_y())
    with pytest.raises(error, match="Unknown label type") as got:
        ours().fit(_X(), make_y())
    assert isinstance(got.value, LabelError)
    if est == "LogisticRegression" and kind in SORTED_FIRST:
        return      # scikit-learn's checks the type first there: a ValueError
    assert isinstance(got.value, TypeError) == isinstance(want.value, TypeError)


@pytest.mark.parametrize("kind", ["object-ints", "bytes-array"])
def test_partial_fit_refuses_the_label_types_scikit_learn_refuses(kind):
    make_y, error = REFUSED[kind]
    X = _X()
    with pytest.raises(error):                  # as classes=
        MLPClassifier().partial_fit(X, np.arange(N) % 2, classes=make_y()[:2])
    with pytest.raises(error):                  # as a later call's y
        MLPClassifier().partial_fit(X, np.arange(N) % 2, classes=[0, 1]).partial_fit(
            X, make_y())
