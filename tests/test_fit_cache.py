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


def _lr_in_group(run):
    run["opt"].param_groups[0]["lr"] = 0.05       # the group's dict, written directly


def _weight_decay_in_group(run):
    run["opt"].param_groups[0]["weight_decay"] = 0.01


def _param_groups(run):
    W1, b1, W2, b2 = run["model"].params
    run["opt"] = SGD([{"params": [W1, b1], "lr": 0.2}, {"params": [W2, b2]}], lr=0.05)


def _units(run):
    m = run["model"]
    m.layers[0] = nnlib.Dense(D, 9, "tanh", random_state=7)
    m.layers[1] = nnlib.Dense(9, 3, random_state=8)


def _leaky_relu(run):
    run["model"].layers[0].activation = "leaky_relu"


def _X_float32(run):
    run["X"] = run["X"].astype(np.float32)        # converted to the model's float64


def _fewer_rows(run):
    run["X"], run["y"] = run["X"][:29].copy(), run["y"][:29].copy()


def _threads(run):
    run["fit"]["n_threads"] = 2


def _no_shuffle(run):
    run["fit"]["shuffle"] = False


def _dropout(run):
    m = run["model"]
    m.layers.insert(1, nnlib.layers.Dropout(0.3))


CHANGES = [_set_lr, _set_momentum, _new_X, _X_in_place, _y_in_place, _swap_weights,
           _swap_optimizer, _batch, _l2, _activation, _add_layer, _lr_in_group,
           _weight_decay_in_group, _param_groups, _units, _leaky_relu, _X_float32,
           _fewer_rows, _threads, _no_shuffle, _dropout]


def _run():
    rng = np.random.default_rng(0)
    return {"model": _model(), "opt": SGD(lr=0.1), "X": rng.standard_normal((N, D)),
            "y": rng.integers(0, 3, N), "fit": {"batch_size": 8, "l2": 0.0}}


def _fit(run, seed, fresh):
    if fresh:
        training._KEPT.pop(run["model"], None)
    run["model"].fit(run["X"], run["y"], optimizer=run["opt"], epochs=1,
                     random_state=seed, **{"n_threads": 1, **run["fit"]})


def _changed(change, fresh):
    """A run fitted twice, then changed by ``change``."""
    run = _run()
    _fit(run, 1, fresh)
    _fit(run, 2, fresh)
    change(run)
    return run


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.lstrip("_") for c in CHANGES])
def test_a_change_between_fits_takes_effect(change):
    runs = []
    for fresh in (False, True):
        run = _changed(change, fresh)
        _fit(run, 3, fresh)
        _fit(run, 4, fresh)
        runs.append(run)
    kept, fresh = runs
    assert len(kept["model"].params) == len(fresh["model"].params)
    for a, b in zip(kept["model"].params, fresh["model"].params):
        np.testing.assert_array_equal(a, b)


def _huge_lr_float32(run):
    m = run["model"]
    for layer in m.layers:
        layer.W, layer.b = layer.W.astype(np.float32), layer.b.astype(np.float32)
    run["opt"].lr = 1e39                            # beyond float32: DTypeRangeError


def _maximize(run):
    run["opt"].param_groups[0]["maximize"] = True


def _steps_apart(run):
    run["opt"]._entries[id(run["model"].params[1])].step += 1   # as if stepped alone


def _bad_units(run):
    run["model"].layers[1] = nnlib.Dense(8, 3, random_state=8)


def _nan_X(run):
    run["X"] = run["X"].copy()
    run["X"][3, 1] = np.nan


def _bad_label(run):
    run["y"] = run["y"].copy()
    run["y"][5] = 3


def _bad_threads(run):
    run["fit"]["n_threads"] = 0


def _bad_schedule(run):
    run["fit"]["schedule"] = 0.5                    # refused by the loop, after the run


def _integer_weights(run):
    run["model"].layers[0].W = run["model"].layers[0].W.astype(np.int64)


REFUSED = [_huge_lr_float32, _maximize, _steps_apart, _bad_units, _nan_X, _bad_label,
           _bad_threads, _bad_schedule, _integer_weights]


def _after(run, seed, fresh):
    """The outcome of a fit: the weights, or the error and its message; then what the
    fit left behind either way (weights, optimizer steps and state entries, claims)."""
    try:
        _fit(run, seed, fresh)
        outcome = None
    except Exception as exc:                        # compared between the two runs
        outcome = (type(exc), str(exc))
    opt = run["opt"]
    entries = sorted((i, e.step, e.rows.shape) for i, p in enumerate(run["model"].params)
                     for e in [opt._entries.get(id(p))] if e is not None)
    from nnlib import _threads
    return (outcome, [p.copy() for p in run["model"].params], entries,
            _threads.claimed_by(run["model"]), _threads.claimed_by(opt))


@pytest.mark.parametrize("change", REFUSED, ids=[c.__name__.lstrip("_") for c in REFUSED])
def test_a_change_that_breaks_the_next_fit_fails_as_without_kept_state(change):
    """The same error and message, and the same weights, steps and state entries left
    behind, as when nothing was kept between the fits."""
    outcomes = [_after(_changed(change, fresh), 3, fresh) for fresh in (False, True)]
    kept, fresh = outcomes
    assert kept[0] is not None and kept[0] == fresh[0]
    assert len(kept[1]) == len(fresh[1])
    for a, b in zip(kept[1], fresh[1]):
        np.testing.assert_array_equal(a, b)
    assert kept[2:] == fresh[2:]


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


def test_a_dropout_seeded_by_the_random_states_own_draw_is_left_to_its_seed():
    """fit reads the unseeded Dropout layers again after converting a random_state of
    the user's class (its draw may run code): a layer seeded in that draw keeps its own
    seed, and no fit seed is given to it."""
    from nnlib.layers import Dropout
    drop = Dropout(0.5)

    class Seeding(np.random.RandomState):
        def randint(self, *args, **kwargs):
            drop.seed = 11
            return super().randint(*args, **kwargs)
    model = nnlib.Sequential([nnlib.Dense(D, 7, "relu", random_state=0), drop,
                              nnlib.Dense(7, 3, random_state=1)])
    run = _run()
    model.fit(run["X"], run["y"], optimizer=SGD(lr=0.1), epochs=1, batch_size=8,
              random_state=Seeding(0), n_threads=1)
    assert drop.seed == 11 and drop._fit_seed is None and drop.mask_seed == 11


@pytest.mark.parametrize("seed", [None, 5, np.int64(5)], ids=["None", "int", "np.int64"])
def test_an_unseeded_dropout_gets_a_fit_seed_for_each_kind_of_seed(seed):
    from nnlib.layers import Dropout
    drop = Dropout(0.5)
    model = nnlib.Sequential([nnlib.Dense(D, 7, "relu", random_state=0), drop,
                              nnlib.Dense(7, 3, random_state=1)])
    run = _run()
    model.fit(run["X"], run["y"], optimizer=SGD(lr=0.1), epochs=1, batch_size=8,
              random_state=seed, n_threads=1)
    assert drop.seed is None and drop._fit_seed is not None
