"""MLPRegressor(loss="poisson"): the compiled poisson_loss kernel against its twin and
finite differences (nnlib.functional), and the estimator against scikit-learn's MLP with
the same loss (1e-12; every solver, with weights, early stopping, sparse X)."""
import warnings

import numpy as np
import pytest

import nnlib.functional as F
from nnlib import MLPRegressor
from nnlib import _reference as R
from tests.conftest import central_diff


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_kernel_matches_twin_and_finite_differences(dtype):
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((7, 3)) * 2).astype(dtype)
    y = rng.poisson(1.5, (7, 3)).astype(float)
    y[0] = 0.0                                        # 0 log 0 = 0
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=0)
    np.testing.assert_allclose(F.poisson_loss(z, y), R.poisson_loss(z, y), **tol)
    np.testing.assert_allclose(F.poisson_loss_grad(z, y), R.poisson_loss_grad(z, y), **tol)
    if dtype == np.float64:
        fd = central_diff(lambda v: F.poisson_loss(v, y), z.copy(), h=1e-5)
        np.testing.assert_allclose(F.poisson_loss_grad(z, y), fd, rtol=1e-7, atol=1e-9)
    # scikit-learn's half deviance on the mean exp(z), averaged over rows
    mu = np.exp(z.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.where(y > 0, y * np.log(y / mu), 0.0) - y + mu
    np.testing.assert_allclose(F.poisson_loss(z, y), dev.sum(axis=1).mean(), **tol)


def test_negative_targets_are_refused():
    with pytest.raises(ValueError, match="targets >= 0"):
        F.poisson_loss(np.zeros((2, 1)), [[1.0], [-1.0]])
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        MLPRegressor(loss="poisson").fit(np.ones((3, 2)), [1.0, -2.0, 0.0])
    with pytest.raises(ValueError, match="'loss' parameter"):
        MLPRegressor(loss="huber").fit(np.ones((3, 2)), [1.0, 2.0, 0.0])


def _problem(n_out=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((70, 4))
    mean = np.exp(0.4 * X[:, :n_out] - 0.2)
    y = rng.poisson(mean).astype(float)
    return X, (y.ravel() if n_out == 1 else y), rng.uniform(0.2, 2.0, 70)


CASES = [dict(solver="sgd", learning_rate_init=0.01), dict(solver="adam"),
         dict(solver="lbfgs"), dict(solver="adam", early_stopping=True)]


@pytest.mark.parametrize("params", CASES, ids=lambda p: "-".join(
    f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("n_out", [1, 2])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_poisson_fit_equals_scikit_learns(params, n_out, weighted):
    nn = pytest.importorskip("sklearn.neural_network")
    X, y, w = _problem(n_out)
    sw = w if weighted else None
    common = dict(loss="poisson", hidden_layer_sizes=(6,), max_iter=15, random_state=0,
                  batch_size=20, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MLPRegressor(**common).fit(X, y, sample_weight=sw)
        b = nn.MLPRegressor(**common).fit(X, y, sample_weight=sw)
    assert a.out_activation_ == b.out_activation_ == "exp"
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-12)
    assert a.n_iter_ == b.n_iter_
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-10)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-12)


def test_poisson_on_sparse_x_and_the_numpy_reference():
    sparse = pytest.importorskip("scipy.sparse")
    X, y, _ = _problem()
    fits = []
    for engine, data in (("compiled", sparse.csr_matrix(X)), ("compiled", X),
                         ("numpy", X)):
        est = MLPRegressor(loss="poisson", hidden_layer_sizes=(5,), max_iter=6,
                           random_state=0)
        est._engine = engine
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(est.fit(data, y))
    for other in fits[1:]:
        for u, v in zip(fits[0].coefs_, other.coefs_):
            np.testing.assert_allclose(u, v, rtol=0, atol=1e-10)
    assert (fits[0].predict(X) > 0).all()
