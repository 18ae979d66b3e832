"""``score(X, y, sample_weight)`` checks its y and weights as the fits do: a wrong length,
a NaN or infinite target or weight, a 2-d weight array, negative weights or weights that
sum to zero raise an error naming the problem, never a score computed from them (an
MLPRegressor scored a NaN target or weight as R^2 = 1.0, an infinite one as 0.0) nor
NumPy's "Axis must be specified" TypeError. Found by probe33 against scikit-learn 1.9's
``score``, which refuses each of these."""
import warnings

import numpy as np
import pytest

from nnlib import (LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor,
                   Perceptron)
from nnlib.exceptions import NonFiniteError, ShapeError

N = 20

ESTIMATORS = [
    ("mlp-classifier", "classes", lambda: MLPClassifier(hidden_layer_sizes=(3,), max_iter=5,
                                                         random_state=0)),
    ("mlp-regressor", "values", lambda: MLPRegressor(hidden_layer_sizes=(3,), max_iter=5,
                                                      random_state=0)),
    ("perceptron", "classes", lambda: Perceptron(random_state=0)),
    ("logistic-regression", "classes", lambda: LogisticRegression(max_iter=5)),
    ("linear-regression", "values", lambda: LinearRegression()),
]

BAD_WEIGHTS = [
    ("nan", np.r_[np.nan, np.ones(N - 1)], NonFiniteError, "NaN"),
    ("inf", np.r_[np.inf, np.ones(N - 1)], NonFiniteError, "infinity"),
    ("short", np.ones(N - 1), ShapeError, "sample_weight.shape"),
    ("2-d", np.ones((N, 1)), ShapeError, "1D array"),
    ("negative", np.r_[-1.0, np.ones(N - 1)], ValueError, "Negative values"),
    ("negative-summing-to-0", np.r_[1.0, -1.0, np.zeros(N - 2)], ValueError, "Negative"),
]

BAD_TARGETS = [
    ("nan", lambda y: np.r_[np.nan, y[1:]], NonFiniteError, "NaN"),
    ("inf", lambda y: np.r_[np.inf, y[1:]], NonFiniteError, "infinity"),
    ("short", lambda y: y[1:], ShapeError, "inconsistent numbers of samples"),
]


def _fitted(make, kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3))
    y = (X[:, 0] > 0).astype(float) if kind == "classes" else X @ [1.0, 2.0, 3.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # ConvergenceWarning of 5 iterations
        return make().fit(X, y), X, y


@pytest.mark.parametrize("wid,w,error,match", BAD_WEIGHTS, ids=[b[0] for b in BAD_WEIGHTS])
@pytest.mark.parametrize("name,kind,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_bad_sample_weight_is_named(name, kind, make, wid, w, error, match):
    est, X, y = _fitted(make, kind)
    with pytest.raises(error, match=match):
        est.score(X, y, sample_weight=w)


@pytest.mark.parametrize("yid,spoil,error,match", BAD_TARGETS, ids=[b[0] for b in BAD_TARGETS])
@pytest.mark.parametrize("name,kind,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_bad_target_is_named(name, kind, make, yid, spoil, error, match):
    est, X, y = _fitted(make, kind)
    with pytest.raises(error, match=match):
        est.score(X, spoil(y))


@pytest.mark.parametrize("name,kind,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_weights_all_zero_raise_both_errors_scikit_learn_has_raised(name, kind, make):
    # scikit-learn < 1.6 let np.average raise ZeroDivisionError; 1.6 on raise ValueError
    est, X, y = _fitted(make, kind)
    for error in (ValueError, ZeroDivisionError):
        with pytest.raises(error, match="at least one non-zero"):
            est.score(X, y, sample_weight=np.zeros(N))


@pytest.mark.parametrize("name,kind,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_good_weights_still_score(name, kind, make):
    est, X, y = _fitted(make, kind)
    w = np.random.default_rng(1).uniform(0.5, 2.0, N)
    plain = est.score(X, y)
    assert est.score(X, y, sample_weight=np.ones(N)) == pytest.approx(plain, rel=1e-15)
    assert est.score(X, y, sample_weight=2.0) == pytest.approx(plain, rel=1e-15)
    assert np.isfinite(est.score(X, y, sample_weight=w))


OUTPUT_MISMATCH = [
    ("mlp-regressor", lambda: MLPRegressor(hidden_layer_sizes=(3,), max_iter=5,
                                           random_state=0), "values"),
    ("linear-regression", LinearRegression, "values"),
    ("mlp-classifier-multilabel", lambda: MLPClassifier(hidden_layer_sizes=(3,), max_iter=5,
                                                        random_state=0), "labels"),
]


@pytest.mark.parametrize("name,make,kind", OUTPUT_MISMATCH, ids=[c[0] for c in OUTPUT_MISMATCH])
def test_a_target_with_other_outputs_is_named(name, make, kind):
    # a 1-d y scored a two-output regressor by broadcasting it against both outputs
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3))
    Y = X[:, :2] if kind == "values" else (X[:, :2] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(X, Y)
    for bad in (Y[:, 0], np.c_[Y, Y[:, :1]]):
        with pytest.raises(ShapeError, match="different number of output"):
            est.score(X, bad)
    assert np.isfinite(est.score(X, Y))


# -- Sequential: X (and targets) beyond what the model can read ------------------------
# Before (probe34): Sequential.evaluate and test_on_batch took a NaN in X and returned a
# NaN loss, and score (classification) an accuracy counting that row as a miss, 0.5 on
# 4 rows, where predict, fit's validation data and scikit-learn's score refuse it; a
# float32 model given 1e39 in X by train_on_batch, or as a squared_error target, said
# "row 1 holds inf", a value the user never gave.
def _sequential(dtype=np.float64, n_out=2):
    import nnlib
    return nnlib.Sequential([nnlib.Dense(3, n_out, random_state=0, dtype=dtype)])


SEQUENTIAL_CALLS = {
    "evaluate": lambda m, X, y: m.evaluate(X, y),
    "score": lambda m, X, y: m.score(X, y),
    "test_on_batch": lambda m, X, y: m.test_on_batch(X, y),
    "test_on_batch-weighted": lambda m, X, y: m.test_on_batch(X, y,
                                                              sample_weight=np.ones(4)),
    "train_on_batch": lambda m, X, y: m.train_on_batch(X, y),
    "fit": lambda m, X, y: m.fit(X, y),
}


@pytest.mark.parametrize("call", list(SEQUENTIAL_CALLS), ids=list(SEQUENTIAL_CALLS))
def test_sequential_refuses_a_nan_row_of_x(call):
    X, y = np.ones((4, 3)), [0, 1, 0, 1]
    X[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match="X must be finite; row 2 holds nan"):
        SEQUENTIAL_CALLS[call](_sequential(), X, y)


@pytest.mark.parametrize("call", list(SEQUENTIAL_CALLS), ids=list(SEQUENTIAL_CALLS))
def test_a_float32_model_names_an_x_value_beyond_its_range(call):
    X, y = np.ones((4, 3)), [0, 1, 0, 1]
    X[1, 2] = 1e39
    with pytest.raises(NonFiniteError, match=r"row 1 holds 1e\+39 \(column 2\), beyond "
                                             r"the range of float32"):
        SEQUENTIAL_CALLS[call](_sequential(np.float32), X, y)


@pytest.mark.parametrize("shape", [(4,), (4, 1)], ids=["1-d", "column"])
def test_a_float32_model_names_a_target_beyond_its_range(shape):
    y = np.ones(shape)
    y[3] = -1e39
    with pytest.raises(NonFiniteError, match=r"y must be finite; row 3 holds -1e\+39"):
        _sequential(np.float32, n_out=1).fit(np.ones((4, 3)), y, loss="squared_error")
    with pytest.raises(NonFiniteError, match=r"y must be finite; row 3 holds -1e\+39"):
        _sequential(np.float32, n_out=1).score(np.ones((4, 3)), y, loss="squared_error")
