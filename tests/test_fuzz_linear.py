"""Fuzzing ``LinearRegression``, ``LogisticRegression``, ``Perceptron`` and
``ThresholdNetwork`` (the latter against the twins of its activations).

What an example may do (the documented error or a checked result) and how many run:
the models-and-estimators section of tests/_fuzz.py.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlib
import nnlib._reference as R
from nnlib._validation import DTypeError, LabelError, NonFiniteError, ShapeError

from tests._fuzz import (ACTIVATIONS, FUZZ_SETTINGS, call_expecting, chance,
                         check_x_errors, class_labels, data_x, fit_quietly,
                         fraction_settings, model_counts_reporter, overflow_allowed,
                         reg_targets)

# Random values overflow in the oracles' own arithmetic and in float casts; expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

_report_counts = model_counts_reporter(
    ["LinearRegression", "LogisticRegression", "Perceptron", "threshold."],
    "fuzz the linear models and ThresholdNetwork")


BOOL_BAD = st.sampled_from(["no", 0, 1, None, 2.5])


@st.composite
def linear_cases(draw):
    """(estimator class, params, expected errors)."""
    cls = draw(st.sampled_from([nnlib.LinearRegression, nnlib.LogisticRegression,
                                nnlib.Perceptron]))
    if cls is nnlib.LinearRegression:
        valid = dict(fit_intercept=st.booleans(), solver=st.sampled_from(["lstsq", "pinv",
                                                                          "normal"]))
        bad = dict(fit_intercept=BOOL_BAD, solver=st.sampled_from(["qr", None]))
    elif cls is nnlib.LogisticRegression:
        valid = dict(alpha=st.floats(0, 1), fit_intercept=st.booleans(),
                     learning_rate=st.one_of(st.just("auto"), st.floats(1e-3, 1)),
                     tol=st.floats(0, 1e-2), max_iter=st.integers(1, 50))
        bad = dict(alpha=st.sampled_from([-1.0, np.nan, "0"]), fit_intercept=BOOL_BAD,
                   learning_rate=st.sampled_from([0.0, -1.0, "fast", np.inf]),
                   tol=st.sampled_from([-1.0, np.nan]), max_iter=st.sampled_from([0, 1.5]))
    else:
        valid = dict(max_iter=st.integers(1, 20), fit_intercept=st.booleans(),
                     shuffle=st.booleans(), random_state=st.integers(0, 2 ** 32))
        bad = dict(max_iter=st.sampled_from([0, -1, 2.0]), fit_intercept=BOOL_BAD,
                   shuffle=BOOL_BAD, random_state=st.sampled_from([-1, "0"]))
    params = {k: draw(v) for k, v in valid.items()}
    errs = []
    if chance(draw, 0.25):
        key = draw(st.sampled_from(sorted(bad)))
        params[key] = draw(bad[key])
        errs += [(ValueError, key), (TypeError, key)]
    return cls, params, errs


@fraction_settings(0.5)
@given(case=linear_cases(), data=st.data())
def test_fuzz_linear_models(case, data):
    cls, params, expected = case
    n = data.draw(st.integers(1, 8))
    d = data.draw(st.integers(1, 3))
    X = data_x(data.draw, d, n, p_wild=0.3)
    n_rows = np.shape(X)[0] if np.ndim(X) else n
    if cls is nnlib.LinearRegression:
        y, y_errs = reg_targets(data.draw, n_rows)
        classifier = False
    else:
        y, y_errs, multilabel = class_labels(data.draw, n_rows)
        if multilabel:
            y_errs = [(ShapeError, "1d array")]
        elif not y_errs and len(np.unique(np.asarray(y).reshape(-1))) != 2:
            y_errs = [(LabelError, "binary")]
        classifier = True
    expected = expected + check_x_errors(X) + y_errs
    # Documented: solver="normal" raises LinAlgError (a ValueError) if X^T X is singular;
    # learning_rate="auto" a ValueError if X is so large that the step underflows.
    allowed = ([(np.linalg.LinAlgError, "singular")]
               if params.get("solver") == "normal" else [])
    if params.get("learning_rate") == "auto" and not check_x_errors(X) and \
            np.abs(np.asarray(X, dtype=np.float64)).max() > 1e100:
        allowed.append((ValueError, "learning_rate='auto' cannot handle X this large"))
    if cls is nnlib.Perceptron and not check_x_errors(X):
        # documented: the PLA's weights are sums of rows of X; rows near the float64
        # limit make them overflow, which fit refuses with a ValueError
        updates = n_rows * params.get("max_iter", 1000)
        if np.abs(np.asarray(X, dtype=np.float64)).max() * updates > 1e300:
            allowed.append((ValueError, "weights overflowed to infinity"))
    est = cls(**params)
    if not fit_quietly(cls.__name__, est, X, y, expected, allowed):
        return
    d = est.n_features_in_
    assert d == np.shape(X)[1]
    X2 = data_x(data.draw, data.draw(st.sampled_from([d, d, d, d + 1])),
                data.draw(st.integers(1, 5)), p_wild=0.3)
    coef = np.asarray(est.coef_, dtype=np.float64)
    weights = [coef.T if coef.ndim == 2 else coef[:, None]]
    ok, pred = call_expecting(f"{cls.__name__}.predict", est.predict, (X2,), {},
                              check_x_errors(X2, d),
                              overflow_allowed(X2, weights, [np.atleast_1d(est.intercept_)]))
    if not ok:
        return
    n2 = np.shape(X2)[0]
    if classifier:
        assert pred.shape == (n2,) and np.isin(pred, est.classes_).all()
        if hasattr(est, "predict_proba"):
            P = est.predict_proba(X2)
            assert P.shape == (n2, 2) and np.isfinite(P).all()
            assert ((P >= 0) & (P <= 1)).all()
            np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
        assert 0.0 <= est.score(X2, pred) <= 1.0
    else:
        assert pred.shape[0] == n2 and np.isfinite(pred).all()


@st.composite
def threshold_networks(draw):
    """(weights, biases, activations, expected errors)."""
    depth = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    elements = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, 0.1, -1.0, 1.5]))
    W = [draw(hnp.arrays(np.float64, (a, b), elements=elements))
         for a, b in zip(sizes, sizes[1:])]
    b = [draw(hnp.arrays(np.float64, (s,), elements=elements)) for s in sizes[1:]]
    acts = draw(st.one_of(st.sampled_from(ACTIVATIONS),
                          st.lists(st.sampled_from(ACTIVATIONS), min_size=depth,
                                   max_size=depth)))
    errs = []
    mistake = draw(st.sampled_from([None] * 6 + ["chain", "bias", "count", "act", "nonfinite",
                                                 "dtype", "ndim"]))
    if mistake == "chain" and depth > 1:
        W[1] = np.ones((sizes[1] + 1, sizes[2]))
        errs.append((ShapeError, r"weights\[1\]"))
    elif mistake == "bias":
        b[0] = np.ones(sizes[1] + 1)
        errs.append((ShapeError, r"biases\[0\]"))
    elif mistake == "count":
        b = b[:-1]
        errs.append((ShapeError, "one bias vector per weight"))
    elif mistake == "act":
        acts = "swish"
        errs.append((ValueError, "unknown activation"))
    elif mistake == "nonfinite":
        W[0] = W[0].copy()
        W[0].flat[0] = draw(st.sampled_from([np.nan, np.inf]))
        errs.append((NonFiniteError, r"weights\[0\]"))
    elif mistake == "dtype":
        W[0] = W[0].astype(complex)
        errs.append((DTypeError, r"weights\[0\]"))
    elif mistake == "ndim":
        W[0] = W[0].reshape(-1)
        errs.append((ShapeError, r"weights\[0\]"))
    return W, b, acts, errs


@FUZZ_SETTINGS
@given(net=threshold_networks(), data=st.data())
def test_fuzz_threshold_network(net, data):
    W, b, acts, expected = net
    ok, model = call_expecting("threshold.construct", nnlib.ThresholdNetwork, (W, b, acts), {},
                               expected)
    if not ok:
        return
    d = W[0].shape[0]
    X = data_x(data.draw, data.draw(st.sampled_from([d, d, d, d + 1])),
               data.draw(st.integers(1, 5)), p_wild=0.4)
    ok, out = call_expecting("threshold.predict", model.forward, (X,), {}, check_x_errors(X, d),
                             overflow_allowed(X, model.weights, model.biases))
    if not ok:
        return
    H = np.asarray(X, dtype=np.float64)
    for Wl, bl, act in zip(model.weights, model.biases, model.activations):
        H = getattr(R, act)(H @ Wl + bl)
    assert out.shape == H.shape and out.dtype == np.float64
    assert np.isfinite(out).all()
    # Same products (NumPy's), activations vs their twins: a few ulps apart.
    np.testing.assert_allclose(out, H, rtol=1e-12, atol=1e-300)
