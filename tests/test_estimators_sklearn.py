"""nnlib's estimators against scikit-learn itself (skipped when it is not installed):
identical trajectories from the same seed, comparable accuracy, Pipeline and
GridSearchCV, and scikit-learn's own check_estimator suite with no expected failures."""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")   # ConvergenceWarning etc.

from sklearn.base import clone                                   # noqa: E402
from sklearn.model_selection import GridSearchCV                 # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor   # noqa: E402
from sklearn.pipeline import make_pipeline                       # noqa: E402
from sklearn.preprocessing import StandardScaler                 # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nnlib.datasets import load_digits, split                    # noqa: E402
from nnlib.estimators import MLPClassifier, MLPRegressor         # noqa: E402
from nnlib.linear_models import (LinearRegression, LogisticRegression,  # noqa: E402
                                 Perceptron)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return split(X / 16.0, y, 0.25, random_state=0, stratify=True)


def both(nn_cls, sk_cls, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nn_cls(**params).fit(X, y), sk_cls(**params).fit(X, y)


def assert_same_model(a, b, atol):
    for name in ("coefs_", "intercepts_"):
        for u, v in zip(getattr(a, name), getattr(b, name)):
            np.testing.assert_allclose(u, v, rtol=0, atol=atol)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-9, abs=1e-12)


SAME_SEED_CASES = [
    dict(solver="sgd"),
    dict(solver="sgd", nesterovs_momentum=False, learning_rate="invscaling"),
    dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=1),
    dict(solver="sgd", momentum=0.0, batch_size=50, shuffle=False),
    dict(solver="adam"),
    dict(solver="adam", beta_1=0.5, beta_2=0.9, epsilon=1e-3, alpha=0.1),
    dict(solver="lbfgs", max_iter=15),
]


@pytest.mark.parametrize("params", SAME_SEED_CASES, ids=lambda p: "-".join(
    f"{v}" for v in p.values()))
@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_same_trajectory_as_sklearn_classifier(digits, params, activation):
    """Same seed -> same initial weights and batches -> the same float64 model."""
    Xtr, _, ytr, _ = digits
    kw = dict(hidden_layer_sizes=(16,), activation=activation, max_iter=4,
              learning_rate_init=0.01, random_state=3)
    kw.update(params)
    a, b = both(MLPClassifier, SkClassifier, Xtr, ytr, **kw)
    assert_same_model(a, b, atol=1e-10)
    if hasattr(b, "loss_curve_"):
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(a.predict_proba(Xtr), b.predict_proba(Xtr), atol=1e-9)


def test_same_trajectory_as_sklearn_binary_and_regression(digits):
    Xtr, _, ytr, _ = digits
    a, b = both(MLPClassifier, SkClassifier, Xtr, ytr > 4, hidden_layer_sizes=(8, 8),
                solver="sgd", max_iter=3, random_state=0)
    assert_same_model(a, b, atol=1e-10)
    Y = np.column_stack([Xtr[:, :3] @ [1.0, 2.0, 3.0], Xtr[:, 10]])
    a, b = both(MLPRegressor, SkRegressor, Xtr, Y, hidden_layer_sizes=(8,),
                solver="adam", max_iter=3, random_state=0, activation="tanh")
    assert_same_model(a, b, atol=1e-10)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_same_trajectory_as_sklearn_multioutput_regression(digits, solver):
    """3 outputs, L2 on: scikit-learn reports the squared loss averaged over the outputs
    and steps along the gradient of the sum; the compiled loop does the same."""
    Xtr, _, _, _ = digits
    Y = np.column_stack([Xtr[:, :3] @ [1.0, 2.0, 3.0], Xtr[:, 10], -Xtr[:, 20]])
    a, b = both(MLPRegressor, SkRegressor, Xtr, Y, hidden_layer_sizes=(8,), alpha=0.1,
                solver=solver, max_iter=4, random_state=0, activation="tanh",
                learning_rate_init=0.01, batch_size=32)
    assert a._engine_for().__name__ == "_CompiledTrainer"      # not NumPy
    assert_same_model(a, b, atol=1e-10)
    if hasattr(b, "loss_curve_"):
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)


def test_same_trajectory_as_sklearn_multilabel():
    from sklearn.datasets import make_multilabel_classification
    X, Y = make_multilabel_classification(150, n_classes=4, random_state=0)
    for solver in ("adam", "sgd", "lbfgs"):
        a, b = both(MLPClassifier, SkClassifier, X, Y, hidden_layer_sizes=(10,),
                    solver=solver, max_iter=5, random_state=0)
        assert a._engine_for().__name__ == "_CompiledTrainer"    # not NumPy
        assert_same_model(a, b, atol=1e-10)
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_accuracy_comparable_to_sklearn(digits):
    Xtr, Xte, ytr, yte = digits
    a, b = both(MLPClassifier, SkClassifier, Xtr, ytr, hidden_layer_sizes=(64,),
                early_stopping=True, max_iter=50, random_state=0)
    assert a.score(Xte, yte) > 0.92
    # the same validation split (scikit-learn's train_test_split draws): the same model
    assert_same_model(a, b, atol=1e-12)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=0,
                               atol=1e-15)


def test_pipeline_and_grid_search(digits):
    Xtr, Xte, ytr, yte = digits
    pipe = make_pipeline(StandardScaler(),
                         MLPClassifier(hidden_layer_sizes=(32,), max_iter=30,
                                       random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1],
                               "mlpclassifier__hidden_layer_sizes": [(16,), (32,)]},
                        cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid.fit(Xtr, ytr)
    assert set(grid.best_params_) == {"mlpclassifier__alpha",
                                      "mlpclassifier__hidden_layer_sizes"}
    assert grid.score(Xte, yte) > 0.9
    best = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(best.predict(Xte), grid.predict(Xte))
    c = clone(MLPRegressor(hidden_layer_sizes=(3, 2), alpha=0.5))
    assert c.get_params()["hidden_layer_sizes"] == (3, 2) and c.alpha == 0.5


def test_sklearn_recognises_our_errors_and_warnings():
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.ones((1, 2)))
    X, y = np.eye(4), [0, 1, 0, 1]
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(max_iter=1).fit(X, y)


ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100),
              MLPClassifier(solver="lbfgs", max_iter=100),
              MLPRegressor(solver="sgd", max_iter=100),
              Perceptron(), LinearRegression(), LogisticRegression(alpha=0.01)]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_check_estimator(estimator, check):
    """scikit-learn's own estimator checks, no expected failures (max_iter=100 as
    scikit-learn's test-suite sets for its MLPs, to keep the checks fast). The notes'
    linear models pass them too."""
    check(estimator)


STALE_PARAMS = [("alpha", dict(alpha=1.0)), ("activation", dict(activation="tanh"))]


@pytest.mark.parametrize("params", [p[1] for p in STALE_PARAMS],
                         ids=[p[0] for p in STALE_PARAMS])
def test_partial_fit_uses_parameters_set_between_calls(params):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    kw = dict(hidden_layer_sizes=(7,), solver="sgd", random_state=0,
              learning_rate_init=0.01)
    ours, theirs = MLPClassifier(**kw), SkClassifier(**kw)
    for est in (ours, theirs):
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.set_params(**params)
        est.partial_fit(X, y)
    assert_same_model(ours, theirs, atol=1e-12)
