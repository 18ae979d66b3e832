"""The notes' linear models: PLA converges and separates, least squares matches
np.linalg.lstsq, logistic regression reaches its optimum; protocol and bad input."""
import pickle
import warnings

import numpy as np
import pytest

import nnlib
from nnlib.exceptions import ConvergenceWarning, NotFittedError
from nnlib.linear_models import LinearRegression, LogisticRegression, Perceptron


def separable(rng, n=200, d=3, margin=0.2):
    w, b = rng.normal(size=d), 0.3
    X = rng.normal(size=(n, d))
    s = X @ w + b
    keep = np.abs(s) > margin * np.linalg.norm(w)
    return X[keep], np.where(s[keep] > 0, 1, -1), w, b


# ---------------------------------------------------------------- Perceptron (PLA)

@pytest.mark.parametrize("shuffle", [False, True], ids=["cyclic", "shuffled"])
def test_pla_converges_and_its_w_separates(rng, shuffle):
    X, y, _, _ = separable(rng)
    p = Perceptron(shuffle=shuffle, random_state=0).fit(X, y)
    assert p.converged_ and p.n_updates_ > 0 and 1 <= p.n_iter_ < 1000
    margins = y * (X @ p.coef_[0] + p.intercept_[0])
    assert margins.min() > 0                          # the final w separates strictly
    np.testing.assert_array_equal(p.predict(X), y)
    np.testing.assert_array_equal(p.w_, np.r_[p.intercept_, p.coef_[0]])


def test_pla_follows_the_update_rule(rng):
    """Replay PLA by hand: cyclic order, w <- w + y x on each mistake (w.x = 0 counts)."""
    X, y, _, _ = separable(rng, n=40)
    Xa = np.hstack([np.ones((len(X), 1)), X])
    w, updates = np.zeros(4), 0
    while True:
        mistakes = 0
        for xi, yi in zip(Xa, y):
            if np.sign(xi @ w) != yi:
                w += yi * xi
                mistakes += 1
        updates += mistakes
        if mistakes == 0:
            break
    p = Perceptron().fit(X, y)
    np.testing.assert_array_equal(p.w_, w)
    assert p.n_updates_ == updates


def test_pla_novikoff_bound(rng):
    X, y, _, _ = separable(rng, n=100, margin=0.5)
    p = Perceptron().fit(X, y)
    Xa = np.hstack([np.ones((len(X), 1)), X])
    # margin of the learned separator, normalised, lower-bounds the best margin gamma
    R = np.linalg.norm(Xa, axis=1).max()
    gamma = (y * (Xa @ p.w_)).min() / np.linalg.norm(p.w_)
    assert gamma > 0 and p.n_updates_ <= (R / gamma) ** 2


def test_pla_any_two_labels_and_not_separable(rng):
    X, y, _, _ = separable(rng)
    labels = np.where(y > 0, "yes", "no")
    p = Perceptron().fit(X, labels)
    assert p.classes_.tolist() == ["no", "yes"]
    np.testing.assert_array_equal(p.predict(X), labels)
    from nnlib.datasets import make_xor
    Xx, yx = make_xor()
    with pytest.warns(ConvergenceWarning, match="did not separate"):
        q = Perceptron(max_iter=20).fit(Xx, yx)
    assert not q.converged_ and q.n_iter_ == 20


def test_pla_bad_input():
    with pytest.raises(nnlib.LabelError, match="exactly 2 classes"):
        Perceptron().fit(np.ones((3, 2)), [0, 1, 2])
    with pytest.raises(nnlib.NonFiniteError, match="NaN.*row 2"):
        Perceptron().fit(np.array([[0, 1], [1, 0], [np.nan, 0.0]]), [1, -1, 1])
    with pytest.raises(nnlib.ShapeError, match="inconsistent numbers of samples"):
        Perceptron().fit(np.ones((3, 2)), [1, -1])
    with pytest.raises(NotFittedError):
        Perceptron().predict(np.ones((3, 2)))
    with pytest.raises(ValueError, match="max_iter"):
        Perceptron(max_iter=0).fit(np.eye(2), [1, -1])
    p = Perceptron().fit(np.eye(2), [1, -1])
    with pytest.raises(nnlib.ShapeError, match="X has 3 features.*expecting 2"):
        p.predict(np.ones((1, 3)))


# ---------------------------------------------------------------- least squares

@pytest.mark.parametrize("solver", ["lstsq", "pinv", "normal"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["bias", "nobias"])
def test_least_squares_matches_lstsq(rng, solver, fit_intercept):
    X = rng.normal(size=(50, 4))
    y = X @ rng.normal(size=4) + 2.0 + 0.1 * rng.normal(size=50)
    Xa = np.hstack([np.ones((50, 1)), X]) if fit_intercept else X
    w_ref = np.linalg.lstsq(Xa, y, rcond=None)[0]
    m = LinearRegression(fit_intercept=fit_intercept, solver=solver).fit(X, y)
    np.testing.assert_allclose(m.w_, w_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.predict(X), Xa @ w_ref, rtol=1e-10, atol=1e-12)
    # the normal equations hold at the solution: X^T (X w - y) = 0
    np.testing.assert_allclose(Xa.T @ (Xa @ m.w_ - y), 0, atol=1e-9)
    assert m.rank_ == Xa.shape[1]


def test_least_squares_multi_target_and_score(rng):
    X = rng.normal(size=(30, 3))
    Y = X @ rng.normal(size=(3, 2)) + [1.0, -1.0]
    m = LinearRegression().fit(X, Y)
    assert m.coef_.shape == (2, 3) and m.intercept_.shape == (2,)
    np.testing.assert_allclose(m.predict(X), Y, atol=1e-10)
    assert m.score(X, Y) == pytest.approx(1.0)


def test_least_squares_rank_deficient_gives_min_norm(rng):
    X = rng.normal(size=(20, 2))
    X = np.hstack([X, X[:, :1]])                      # duplicate column
    y = rng.normal(size=20)
    Xa = np.hstack([np.ones((20, 1)), X])
    m = LinearRegression().fit(X, y)
    np.testing.assert_allclose(m.w_, np.linalg.pinv(Xa) @ y, atol=1e-10)
    assert m.rank_ == 3
    np.testing.assert_allclose(LinearRegression(solver="pinv").fit(X, y).w_, m.w_,
                               atol=1e-10)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        LinearRegression(solver="normal").fit(X, y)


def test_least_squares_protocol_and_bad_input(rng):
    m = LinearRegression(solver="pinv")
    assert m.get_params() == {"fit_intercept": True, "solver": "pinv"}
    assert repr(m) == "LinearRegression(solver='pinv')"
    m.set_params(solver="qr")
    with pytest.raises(ValueError, match="solver"):
        m.fit(np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match="Invalid parameter"):
        m.set_params(alpha=1)
    with pytest.raises(nnlib.NonFiniteError, match="y contains infinity"):
        LinearRegression().fit(np.eye(3), [1, np.inf, 0])
    m = pickle.loads(pickle.dumps(LinearRegression().fit(np.eye(3), [1.0, 2, 3])))
    np.testing.assert_allclose(m.predict(np.eye(3)), [1, 2, 3])


# ---------------------------------------------------------------- logistic regression

def _logistic_data(rng, n=300):
    X = rng.normal(size=(n, 3))
    y = (X @ [1.0, -2.0, 0.5] + 0.4 + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def _newton(Xa, y, alpha, penalized):
    """Independent solver: Newton's method on the same objective, in NumPy."""
    w = np.zeros(Xa.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(Xa @ w)))
        g = Xa.T @ (p - y) / len(y) + alpha * penalized * w
        H = (Xa.T * (p * (1 - p))) @ Xa / len(y) + alpha * np.diag(penalized)
        w -= np.linalg.solve(H, g)
    return w


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_logistic_regression_reaches_the_optimum(rng, alpha):
    X, y = _logistic_data(rng)
    m = LogisticRegression(alpha=alpha, tol=1e-9).fit(X, y)
    assert m.converged_ and m.grad_norm_ <= 1e-9
    Xa = np.hstack([np.ones((len(X), 1)), X])
    penalized = np.array([0.0, 1, 1, 1])
    p = 1 / (1 + np.exp(-(Xa @ m.w_)))
    grad = Xa.T @ (p - y) / len(y) + alpha * penalized * m.w_
    assert np.linalg.norm(grad) <= 1e-9                     # gradient ~ 0, recomputed
    np.testing.assert_allclose(m.w_, _newton(Xa, y, alpha, penalized), atol=1e-7)
    # the loss curve of gradient descent on a convex, L-smooth loss with lr = 1/L falls
    assert np.all(np.diff(m.loss_curve_) <= 1e-15)
    np.testing.assert_allclose(m.predict_proba(X)[:, 1], p, rtol=1e-12)
    np.testing.assert_array_equal(m.predict(X), (p > 0.5).astype(int))


def test_logistic_regression_matches_sklearn(rng):
    sk = pytest.importorskip("sklearn.linear_model")
    X, y = _logistic_data(rng)
    alpha = 0.05
    m = LogisticRegression(alpha=alpha, tol=1e-10).fit(X, y)
    s = sk.LogisticRegression(C=1 / (alpha * len(y)), tol=1e-12, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(m.coef_, s.coef_, atol=1e-6)
    np.testing.assert_allclose(m.intercept_, s.intercept_, atol=1e-6)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("name", ["Perceptron", "LogisticRegression"])
def test_binary_coef_has_sklearns_shapes(rng, name, fit_intercept):
    """coef_ (1, n_features) and intercept_ (1,), float64, as scikit-learn's binary
    Perceptron and LogisticRegression give them (ported code reads coef_[0] as the
    weight vector); the numbers are w_'s, and decision_function is X w_ as before."""
    sk = pytest.importorskip("sklearn.linear_model")
    X, y, _, _ = separable(rng)
    ours = getattr(nnlib.linear_models, name)(fit_intercept=fit_intercept).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(sk, name)(fit_intercept=fit_intercept).fit(X, y)
    for attr in ("coef_", "intercept_"):
        a, b = getattr(ours, attr), getattr(theirs, attr)
        assert (type(a), a.shape, a.dtype) == (type(b), b.shape, b.dtype), attr
    w = ours.w_
    np.testing.assert_array_equal(ours.coef_[0], w[1:] if fit_intercept else w)
    assert ours.intercept_[0] == (w[0] if fit_intercept else 0.0)
    Xa = np.hstack([np.ones((len(X), 1)), X]) if fit_intercept else X
    np.testing.assert_array_equal(ours.decision_function(X),
                                  X @ ours.coef_[0] + ours.intercept_[0])
    np.testing.assert_allclose(ours.decision_function(X), Xa @ w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["Perceptron", "LogisticRegression"])
def test_binary_coef_of_an_older_pickle_takes_the_new_shapes(rng, name):
    """A pickle written when coef_ was (n_features,) and intercept_ a float loads with
    scikit-learn's shapes and predicts as it did."""
    X, y, _, _ = separable(rng)
    est = getattr(nnlib.linear_models, name)().fit(X, y)
    expected = est.decision_function(X)
    old = est.__reduce_ex__(2)
    state = dict(old[2], coef_=est.coef_[0].copy(), intercept_=float(est.intercept_[0]))
    loaded = old[0](*old[1])
    loaded.__setstate__(state)
    assert loaded.coef_.shape == (1, X.shape[1]) and loaded.intercept_.shape == (1,)
    np.testing.assert_array_equal(loaded.decision_function(X), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded)).coef_, est.coef_)


def test_logistic_regression_labels_and_separable_data(rng):
    X, y, _, _ = separable(rng)
    labels = np.where(y > 0, "spam", "ham")
    with pytest.warns(ConvergenceWarning, match="separable, set alpha > 0"):
        m = LogisticRegression(max_iter=200).fit(X, labels)
    assert m.classes_.tolist() == ["ham", "spam"] and not m.converged_
    np.testing.assert_array_equal(m.predict(X), labels)     # still separates
    m = LogisticRegression(alpha=0.1).fit(X, labels)
    assert m.converged_
    np.testing.assert_allclose(m.predict_proba(X).sum(axis=1), 1.0)


def test_logistic_regression_bad_input():
    with pytest.raises(nnlib.LabelError, match="exactly 2 classes"):
        LogisticRegression().fit(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match="learning_rate"):
        LogisticRegression(learning_rate=-1.0).fit(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match="alpha"):
        LogisticRegression(alpha=-1.0).fit(np.eye(2), [0, 1])
    with pytest.raises(nnlib.NonFiniteError, match="row 1"):
        LogisticRegression().fit([[0.0], [np.inf]], [0, 1])
    with pytest.raises(NotFittedError):
        LogisticRegression().predict_proba(np.eye(2))


def test_perceptron_refuses_weights_that_overflow():
    """Updates w += y x with x near the float range made w inf, stored without a word."""
    X = np.array([[1e308, 1e308], [-1e308, 1e308], [1e308, -1e308], [-1e308, -1e308]])
    y = np.array([0, 1, 1, 0])                          # XOR: never separated
    with pytest.raises(ValueError, match="weights overflowed.*scale X"):
        Perceptron(max_iter=50).fit(X, y)
