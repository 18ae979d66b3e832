"""What ``fit`` keeps between calls (the model's EpochSetup and workspace, its compiled
Network, the measured step rate) never outlives a change: each change below, made
between two ``fit(epochs=1)`` calls, takes effect exactly as in a fit that builds
everything anew (``training._KEPT`` emptied before each of its fits), bitwise.
"""
import numpy as np
import pytest

import nnlib
from nnlib import training
from nnlib.optim import SGD, Adam

N, D = 48, 5


def _model():
    return nnlib.Sequential([nnlib.Dense(D, 7, "tanh", random_state=0),
                             nnlib.Dense(7, 3, random_state=1)])


def _set_lr(run):
    run["opt"].lr = 0.5


def _set_momentum(run):
    run["opt"].momentum = 0.9      # a new state layout: the optimizer says to reset()
    run["opt"].reset()


def _new_X(run):
    run["X"] = run["X"][::-1].copy()


def _X_in_place(run):
    run["X"][:5] *= -3.0


def _y_in_place(run):
    run["y"][:] = (run["y"] + 1) % 3


def _swap_weights(run):
    layer = run["model"].layers[0]
    layer.W = np.ascontiguousarray(layer.W[::-1] * 0.5)


def _swap_optimizer(run):
    run["opt"] = Adam(lr=0.01)


def _batch(run):
    run["fit"]["batch_size"] = 5


def _l2(run):
    run["fit"]["l2"] = 0.1


def _activation(run):
    run["model"].layers[0].activation = "relu"


def _add_layer(run):
    m = run["model"]
    m.layers.insert(1, nnlib.Dense(7, 7, "relu", random_state=5))


CHANGES = [_set_lr, _set_momentum, _new_X, _X_in_place, _y_in_place, _swap_weights,
           _swap_optimizer, _batch, _l2, _activation, _add_layer]


def _run():
    rng = np.random.default_rng(0)
    return {"model": _model(), "opt": SGD(lr=0.1), "X": rng.standard_normal((N, D)),
            "y": rng.integers(0, 3, N), "fit": {"batch_size": 8, "l2": 0.0}}


def _fit(run, seed, fresh):
    if fresh:
        training._KEPT.pop(run["model"], None)
    run["model"].fit(run["X"], run["y"], optimizer=run["opt"], epochs=1,
                     random_state=seed, n_threads=1, **run["fit"])


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.lstrip("_") for c in CHANGES])
def test_a_change_between_fits_takes_effect(change):
    runs = []
    for fresh in (False, True):
        run = _run()
        _fit(run, 1, fresh)
        _fit(run, 2, fresh)
        change(run)
        _fit(run, 3, fresh)
        _fit(run, 4, fresh)
        runs.append(run)
    kept, fresh = runs
    assert len(kept["model"].params) == len(fresh["model"].params)
    for a, b in zip(kept["model"].params, fresh["model"].params):
        np.testing.assert_array_equal(a, b)


def test_an_unchanged_refit_reuses_the_kept_setup():
    """The cache is used at all: a second identical fit takes the same EpochSetup."""
    run = _run()
    _fit(run, 1, False)
    first = training._KEPT[run["model"]].setup[1]
    _fit(run, 2, False)
    assert training._KEPT[run["model"]].setup[1] is first


def _fit_twice(sizes, rows, batch_size, dtype):
    rng = np.random.default_rng(0)
    model = nnlib.Sequential([nnlib.Dense(a, b, "relu" if i < len(sizes) - 2 else
                                          "identity", dtype=dtype, random_state=i)
                              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))])
    X = rng.standard_normal((rows, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], rows)
    kept = []
    for seed in (1, 2):
        model.fit(X, y, optimizer=SGD(lr=0.01), epochs=1, batch_size=batch_size,
                  random_state=seed, n_threads=1)
        kept.append((training._KEPT[model].setup or (None, None))[1])
    return kept


def test_a_large_setup_is_kept_when_small_beside_its_parameters():
    """The benchmark's 784-512-512-10 float32 net at batch 256: a 4.8 MB workspace, over
    4 MiB but under 6x its 2.7 MB of weights, is kept and reused by the next fit."""
    first, second = _fit_twice((784, 512, 512, 10), 256, 256, np.float32)
    assert first is not None and second is first
    assert first.workspace.nbytes > training._WORKSPACE_KEEP_BYTES


def test_a_large_setup_is_dropped_when_large_beside_its_parameters():
    """A wide hidden layer on few weights at a large batch: 16 MB of workspace for 50 kB
    of parameters is rebuilt by each fit rather than held between them."""
    first, second = _fit_twice((2, 1024, 2), 1024, 1024, np.float64)
    assert first is None and second is None


KEEP_CASES = [(0, 0, True), (1 << 22, 0, True), ((1 << 22) + 1, 0, False),
              (6 << 20, 1 << 20, True), ((6 << 20) + 1, 1 << 20, False)]


@pytest.mark.parametrize("kept, params, expected", KEEP_CASES,
                         ids=[f"{k}-beside-{p}" for k, p, _ in KEEP_CASES])
def test_the_keep_rule_is_4_mib_or_6x_the_parameters(kept, params, expected):
    assert training._worth_keeping(kept, params) is expected


def _est_partial_fits(est, X, y):
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X, y)


def _est_partial_fit_new_X_shape(est, X, y):
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X[:31], y[:31])


def _est_partial_fit_other_dtype(est, X, y):
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X.astype(np.float32), y)


def _est_set_params_between(est, X, y):
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.set_params(learning_rate_init=0.3, alpha=0.01, batch_size=7)
    est.partial_fit(X, y)


def _est_warm_start(est, X, y):
    est.set_params(warm_start=True, max_iter=2)
    est.fit(X, y)
    est.fit(X[::-1].copy(), y[::-1].copy())


def _est_cold_refit(est, X, y):
    est.set_params(max_iter=2)
    est.fit(X, y)
    est.fit(X, y)


ESTIMATOR_SEQUENCES = [_est_partial_fits, _est_partial_fit_new_X_shape,
                       _est_partial_fit_other_dtype, _est_set_params_between,
                       _est_warm_start, _est_cold_refit]


@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("sequence", ESTIMATOR_SEQUENCES,
                         ids=[s.__name__.lstrip("_") for s in ESTIMATOR_SEQUENCES])
def test_estimator_fits_are_the_same_with_and_without_kept_setups(sequence, solver,
                                                                  monkeypatch):
    """partial_fit, set_params, warm_start and new X between fits of an MLPClassifier
    give bitwise the same weights whether setups are kept between fits or never."""
    from nnlib.estimators import MLPClassifier
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((N, D)), rng.integers(0, 3, N)
    coefs = []
    for keep in (True, False):
        if not keep:
            monkeypatch.setattr(training, "_worth_keeping", lambda kept, params: False)
        est = MLPClassifier(hidden_layer_sizes=(6,), solver=solver, batch_size=8,
                            random_state=0, shuffle=True, momentum=0.9)
        sequence(est, X, y)
        coefs.append(est.coefs_ + est.intercepts_)
    for a, b in zip(*coefs):
        np.testing.assert_array_equal(a, b)
