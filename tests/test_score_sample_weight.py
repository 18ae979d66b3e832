"""``score(X, y, sample_weight=w)`` is a weighted mean, which does not depend on the
weights' scale: weights near 1e308 (whose total overflows) or subnormal ones give the
score of the same weights at a moderate scale -- no NaN, no NumPy warning -- and moderate
weights give scikit-learn's numbers."""
import warnings

import numpy as np
import pytest

from nnlib import (LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor,
                   Perceptron)

N = 40


def _data(kind, rng):
    X = rng.normal(size=(N, 3))
    if kind == "binary":
        return X, (X[:, 0] + 0.5 * rng.normal(size=N) > 0).astype(int)
    if kind == "multiclass":
        return X, rng.integers(0, 3, N)
    if kind == "multilabel":
        return X, (rng.normal(size=(N, 2)) > 0).astype(int)
    if kind == "multioutput":
        return X, X[:, :2] + rng.normal(size=(N, 2))
    return X, X[:, 0] + rng.normal(size=N)


ESTIMATORS = [
    ("mlp-classifier", "multiclass",
     lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0)),
    ("mlp-classifier-multilabel", "multilabel",
     lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0)),
    ("mlp-regressor", "regression",
     lambda: MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0)),
    ("mlp-regressor-multioutput", "multioutput",
     lambda: MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0)),
    ("perceptron", "binary", lambda: Perceptron(random_state=0)),
    ("logistic-regression", "binary", lambda: LogisticRegression()),
    ("linear-regression", "multioutput", lambda: LinearRegression()),
]
# the largest weight of each case (the others are it times 1/2 or 1/4): powers of two
# scale the weights exactly, so the score keeps its bits; other tops round each weight
EXACT_TOPS = [("2**1023", 2.0 ** 1023), ("2**-1060-subnormal", 2.0 ** -1060), ("1", 1.0)]
ROUNDED_TOPS = [("1.7e308", 1.7e308), ("1e308", 1e308), ("1e-310", 1e-310)]


def _fitted(make, kind):
    rng = np.random.default_rng(0)
    X, y = _data(kind, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # ConvergenceWarning of 20 iterations
        est = make().fit(X, y)
    X2, y2 = _data(kind, rng)
    # exact powers of two: the scaled weights are the same numbers at every top
    w = 2.0 ** -rng.integers(0, 3, N).astype(float)
    return est, X2, y2, w


def _score_quietly(est, X, y, w):
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no NumPy overflow warning either
        return est.score(X, y, sample_weight=w)


@pytest.mark.parametrize("top_id,top", EXACT_TOPS, ids=[t[0] for t in EXACT_TOPS])
@pytest.mark.parametrize("name,kind,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_score_does_not_depend_on_the_weights_scale(name, kind, make, top_id, top):
    est, X, y, w = _fitted(make, kind)
    expected = est.score(X, y, sample_weight=w)
    assert np.isfinite(expected)
    assert _score_quietly(est, X, y, w * top) == expected


@pytest.mark.parametrize("top_id,top", ROUNDED_TOPS, ids=[t[0] for t in ROUNDED_TOPS])
@pytest.mark.parametrize("name,kind,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_weights_near_the_ends_of_float64_score_as_moderate_ones(name, kind, make, top_id,
                                                                 top):
    est, X, y, w = _fitted(make, kind)
    expected = est.score(X, y, sample_weight=w)
    assert _score_quietly(est, X, y, w * top) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("name,kind,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_moderate_weights_score_as_scikit_learn(name, kind, make):
    metrics = pytest.importorskip("sklearn.metrics")
    est, X, y, _ = _fitted(make, kind)
    w = np.random.default_rng(1).uniform(0.1, 3.0, N)
    pred = est.predict(X)
    ref = (metrics.accuracy_score(y, pred, sample_weight=w) if est._estimator_type ==
           "classifier" else metrics.r2_score(y, pred, sample_weight=w))
    assert est.score(X, y, sample_weight=w) == pytest.approx(ref, rel=1e-13, abs=1e-15)


def test_weights_that_sum_to_zero_are_still_refused():
    est, X, y, w = _fitted(ESTIMATORS[0][2], "multiclass")
    with pytest.raises(ZeroDivisionError):
        est.score(X, y, sample_weight=np.zeros(N))
