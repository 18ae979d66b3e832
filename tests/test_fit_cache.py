"""What ``fit`` keeps between calls (the model's EpochSetup and workspace, its compiled
Network, the measured step rate) never outlives a change: each change below, made
between two ``fit(epochs=1)`` calls, takes effect exactly as in a fit that builds
everything anew (``training._SETUPS`` emptied before each of its fits), bitwise.
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
        training._SETUPS.pop(run["model"], None)
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
    first = training._SETUPS[run["model"]][1]
    _fit(run, 2, False)
    assert training._SETUPS[run["model"]][1] is first
