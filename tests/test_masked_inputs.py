"""numpy.ma masked arrays at the shared input checks: np.asarray drops the mask, so a
masked X, y or sample_weight trained (and predicted, scored) on the values under the
mask without a word (scikit-learn's check_array drops it silently too). Now every entry
point refuses one with masked entries by a ValueError naming the argument, the count
and the first masked index; one with nothing masked is its data."""
import warnings

import numpy as np
import pytest

import nnlib
import nnlib.functional as F
from nnlib import MLPClassifier, MLPRegressor

RNG = np.random.default_rng(0)
X = RNG.standard_normal((12, 3))
Y = np.arange(12) % 2
MX = np.ma.masked_array(X, mask=np.arange(36).reshape(12, 3) == 7)       # (2, 1)
MY = np.ma.masked_array(Y, mask=np.arange(12) == 5)
MW = np.ma.masked_array(np.ones(12), mask=np.arange(12) == 3)
MT = np.ma.masked_array(X[:, 0], mask=np.arange(12) == 1)                # a float target


def _sequential(n_out=2):
    return nnlib.Sequential([nnlib.Dense(3, n_out, random_state=0)])


def _fitted(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est(max_iter=2, random_state=0).fit(X, Y)


def _quiet(est):
    return est(max_iter=2, random_state=0)


# (id, call, argument name, first masked index as printed)
CALLS = [
    ("seq-fit-X", lambda: _sequential().fit(MX, Y, epochs=1), "X", r"\(2, 1\)"),
    ("seq-fit-y", lambda: _sequential().fit(X, MY, epochs=1), "y", "5"),
    ("seq-fit-sample_weight", lambda: _sequential().fit(X, Y, sample_weight=MW, epochs=1),
     "sample_weight", "3"),
    ("seq-fit-validation", lambda: _sequential().fit(X, Y, epochs=1,
                                                     validation_data=(MX, Y)),
     "X_val", r"\(2, 1\)"),
    ("seq-fit-float-target", lambda: _sequential(1).fit(X, MT, loss="squared_error",
                                                        epochs=1), "y", "1"),
    ("seq-predict", lambda: _sequential().predict(MX), "X", r"\(2, 1\)"),
    ("seq-predict_proba", lambda: _sequential().predict_proba(MX), "X", r"\(2, 1\)"),
    ("seq-evaluate-X", lambda: _sequential().evaluate(MX, Y), "X", r"\(2, 1\)"),
    ("seq-evaluate-y", lambda: _sequential().evaluate(X, MY), "y", "5"),
    ("seq-loss_and_grads", lambda: _sequential().loss_and_grads(MX, Y), "X", r"\(2, 1\)"),
    ("functional-relu", lambda: F.relu(MX), "x", r"\(2, 1\)"),
]
for est in (MLPClassifier, MLPRegressor):
    n = est.__name__
    CALLS += [
        (f"{n}-fit-X", lambda est=est: _quiet(est).fit(MX, Y), "X", r"\(2, 1\)"),
        (f"{n}-fit-y", lambda est=est: _quiet(est).fit(X, MY), "y", "5"),
        (f"{n}-fit-sample_weight", lambda est=est: _quiet(est).fit(X, Y, sample_weight=MW),
         "sample_weight", "3"),
        (f"{n}-partial_fit-X", lambda est=est: _fitted(est).partial_fit(MX, Y), "X",
         r"\(2, 1\)"),
        (f"{n}-predict", lambda est=est: _fitted(est).predict(MX), "X", r"\(2, 1\)"),
        (f"{n}-score-X", lambda est=est: _fitted(est).score(MX, Y), "X", r"\(2, 1\)"),
        (f"{n}-score-y", lambda est=est: _fitted(est).score(X, MY), "y", "5"),
        (f"{n}-score-sample_weight", lambda est=est: _fitted(est).score(X, Y, MW),
         "sample_weight", "3"),
    ]
CALLS.append(("MLPClassifier-predict_proba",
              lambda: _fitted(MLPClassifier).predict_proba(MX), "X", r"\(2, 1\)"))


@pytest.mark.parametrize("call, name, index", [c[1:] for c in CALLS],
                         ids=[c[0] for c in CALLS])
def test_a_masked_input_is_refused_naming_its_mask(call, name, index):
    with pytest.raises(ValueError, match=rf"^{name} is a numpy\.ma masked array with 1 "
                                         rf"masked value\(s\) \(the first at index "
                                         rf"{index}\); nnlib does not use masks"):
        call()


def test_a_masked_array_with_nothing_masked_is_its_data():
    plain, masked = _sequential(), _sequential()
    plain.fit(X, Y, epochs=2, random_state=0, sample_weight=np.ones(12))
    masked.fit(np.ma.masked_array(X), np.ma.masked_array(Y, mask=False), epochs=2,
               random_state=0, sample_weight=np.ma.masked_array(np.ones(12)))
    for a, b in zip(plain.params, masked.params):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(masked.predict(np.ma.masked_array(X)), plain.predict(X))
    clf = _fitted(MLPClassifier)
    assert clf.score(np.ma.masked_array(X), np.ma.masked_array(Y)) == clf.score(X, Y)
