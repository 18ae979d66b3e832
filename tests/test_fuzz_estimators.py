"""Fuzzing the scikit-learn style estimators ``MLPClassifier`` and ``MLPRegressor``:
parameters, labels, targets and data. A fit must end with finite weights (or
scikit-learn's divergence error); classifiers must predict labels among
``classes_`` and probabilities in [0, 1] whose rows sum to 1.

What an example may do (the documented error or a checked result) and how many run:
the models-and-estimators section of tests/_fuzz.py.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnlib
from nnlib._validation import LabelError
from nnlib.estimators import InvalidParameterError

from tests._fuzz import (UNIT, call_expecting, chance, check_x_errors, class_labels,
                         data_x, fit_quietly, fraction_settings, model_counts_reporter,
                         overflow_allowed, reg_targets, x_dtype)

# Random values overflow in the oracles' own arithmetic and in float casts; expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

_report_counts = model_counts_reporter(["mlp_"], "fuzz MLPClassifier and MLPRegressor")


# "Solver produced non-finite parameter weights": the documented ValueError of an MLP fit
# that diverges (scikit-learn's wording); allowed whenever training may run.
DIVERGED = (ValueError, "non-finite parameter weights")

MLP_VALID = dict(
    hidden_layer_sizes=st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=0,
                                                             max_size=2).map(tuple)),
    activation=st.sampled_from(["identity", "logistic", "tanh", "relu", "leaky_relu",
                                "softplus", "elu"]),
    solver=st.sampled_from(["lbfgs", "sgd", "adam", "adagrad", "gd"]),
    alpha=st.one_of(st.just(1e-4), st.floats(0, 1)),
    batch_size=st.one_of(st.just("auto"), st.integers(1, 10)),
    learning_rate=st.sampled_from(["constant", "invscaling", "adaptive"]),
    learning_rate_init=st.floats(1e-4, 0.5), power_t=st.floats(0, 1),
    max_iter=st.integers(1, 4), shuffle=st.booleans(), random_state=st.integers(0, 2 ** 31 - 2),
    tol=st.floats(0, 1e-2), warm_start=st.booleans(), momentum=st.floats(0, 1),
    nesterovs_momentum=st.booleans(), early_stopping=st.sampled_from([False, False, False, True]),
    validation_fraction=st.floats(0.1, 0.5), beta_1=UNIT, beta_2=UNIT,
    epsilon=st.floats(1e-10, 1e-3), n_iter_no_change=st.integers(1, 5),
    max_fun=st.integers(1, 50))
MLP_BAD = dict(
    hidden_layer_sizes=st.sampled_from([0, -1, (2, 0), "3", 2.5, (True,)]),
    activation=st.sampled_from(["sigmoid", "sign", None, 1]),
    solver=st.sampled_from(["newton", None, "SGD"]),
    alpha=st.sampled_from([-1.0, np.nan, "0", None]),
    batch_size=st.sampled_from([0, -1, 1.5, "all", True]),
    learning_rate=st.sampled_from(["optimal", None]),
    learning_rate_init=st.sampled_from([0.0, -0.1, np.nan, "0.1"]),
    power_t=st.sampled_from([-0.5, np.nan]),
    max_iter=st.sampled_from([0, -1, 2.0, None]),
    shuffle=st.sampled_from(["yes", 1, None]),
    random_state=st.sampled_from(["0", 1.5, [1]]),
    tol=st.sampled_from([-1e-3, np.nan]),
    momentum=st.sampled_from([-0.1, 1.5, np.nan]),
    nesterovs_momentum=st.sampled_from([0, "True"]),
    early_stopping=st.sampled_from([1, "no"]),
    validation_fraction=st.sampled_from([1.0, -0.1, 2]),
    beta_1=st.sampled_from([1.0, -0.1]), beta_2=st.sampled_from([1.0, 1.5]),
    epsilon=st.sampled_from([0.0, -1e-8]),
    n_iter_no_change=st.sampled_from([0, 1.5]), max_fun=st.sampled_from([0, None]))


@st.composite
def mlp_params(draw, regressor=False):
    """(params, expected errors): valid MLP parameters, one of them sometimes bad."""
    params = {k: draw(v) for k, v in MLP_VALID.items()}
    errs = []
    if chance(draw, 0.25):
        key = draw(st.sampled_from(sorted(MLP_BAD)))
        params[key] = draw(MLP_BAD[key])
        errs.append((InvalidParameterError, f"'{key}' parameter"))
    if regressor and chance(draw, 0.1):
        params["loss"] = draw(st.sampled_from(["huber", "absolute_error"]))   # not losses
        errs.append((ValueError, "'loss' parameter"))
    return params, errs


def _assert_classifier_output(est, X, multilabel):
    n = np.asarray(X).shape[0]
    pred = est.predict(X)
    proba = est.predict_proba(X)
    if multilabel:
        assert pred.shape == (n, est.classes_.size) and set(np.unique(pred)) <= {0, 1}
        assert proba.shape == (n, est.classes_.size)
    else:
        assert pred.shape == (n,)
        assert np.isin(pred, est.classes_).all(), "predict must return labels of classes_"
        assert proba.shape == (n, max(est.classes_.size, 2))    # one class: 2, as sklearn
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()


def _fit_then_predict(name, est, params, X, y, expected, data):
    """Shared by the two MLP tests: fit (the documented error, or finite weights and the
    inputs untouched), then predict on a new X (sometimes with the wrong width, NaN or
    values that overflow). Returns predict's result, or None when a call raised."""
    allowed = [DIVERGED]
    if params["early_stopping"]:
        allowed.append((ValueError, "validation set is too small"))
    if not fit_quietly(name, est, X, y, expected, allowed):
        return None
    assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)
    d = est.n_features_in_
    assert d == np.shape(X)[1]
    X2 = data_x(data.draw, data.draw(st.sampled_from([d, d, d, d + 1])),
                data.draw(st.integers(1, 5)), p_wild=0.3)
    ok, pred = call_expecting(f"{name}.predict", est.predict, (X2,), {}, check_x_errors(X2, d),
                              overflow_allowed(X2, est.coefs_, est.intercepts_, x_dtype(X2)))
    return (X2, pred) if ok else None


@fraction_settings(0.5)
@given(params=mlp_params(), data=st.data())
def test_fuzz_mlp_classifier(params, data):
    params, expected = params
    n = 1 if chance(data.draw, 0.1) else data.draw(st.integers(2, 10))
    X = data_x(data.draw, data.draw(st.integers(1, 3)), n, p_wild=0.25)
    y, y_errs, multilabel = class_labels(data.draw, np.shape(X)[0] if np.ndim(X) else n)
    # one class is no error for the MLP (it trains as scikit-learn's, one logistic unit)
    y_errs = [e for e in y_errs if "only one class" not in e[1]]
    # Every problem drawn is listed; the estimator may report any one of them first.
    est = nnlib.MLPClassifier(**params)
    got = _fit_then_predict("mlp_classifier", est, params, X, y,
                            expected + check_x_errors(X) + y_errs, data)
    if got is not None:
        X2, pred = got
        _assert_classifier_output(est, X2, multilabel)
        assert est.score(X2, pred) == 1.0
    if hasattr(est, "coefs_") and hasattr(est, "partial_fit") and not multilabel:
        # labels the model has never seen must be refused, naming them
        kind = est.classes_.dtype.kind
        new = "zebra" if kind in "UO" else 2 if kind == "b" else est.classes_.max() + 1
        y_new = np.array(list(np.asarray(y).reshape(-1)[:-1]) + [new])
        Xc = np.asarray(X, dtype=np.float64)
        errs = [(LabelError, "not among the classes")]
        if params["early_stopping"]:
            errs.append((ValueError, "partial_fit does not support early_stopping"))
        call_expecting("mlp_classifier.partial_fit", est.partial_fit, (Xc, y_new), {}, errs)


@fraction_settings(0.5)
@given(params=mlp_params(regressor=True), data=st.data())
def test_fuzz_mlp_regressor(params, data):
    params, expected = params
    n = 1 if chance(data.draw, 0.1) else data.draw(st.integers(2, 10))
    X = data_x(data.draw, data.draw(st.integers(1, 3)), n, p_wild=0.25)
    y, y_errs = reg_targets(data.draw, np.shape(X)[0] if np.ndim(X) else n)
    est = nnlib.MLPRegressor(**params)
    got = _fit_then_predict("mlp_regressor", est, params, X, y,
                            expected + check_x_errors(X) + y_errs, data)
    if got is not None:
        X2, pred = got
        k = est.n_outputs_
        assert pred.shape == ((np.shape(X2)[0],) if k == 1 else (np.shape(X2)[0], k))
        assert np.isfinite(pred).all()
        assert np.isfinite(est.score(X2, pred))
