"""What ``fit`` reads once and reuses within one call: the layers' check (``fit`` ->
``network_of``), the optimizer's config (the run's constructor -> its first epoch), the
model's and the optimizer's claims (one lock), the kept setup's keep rule and the label
range check. Each reuse holds only while none of the user's code runs in between; every
change made by such code -- between fits, from a callback, from ``y.__array__``, from a
generator's ``permutation``, from another thread -- is seen as before, with the same
result or the same error.
"""
import numpy as np
import pytest

import nnlib
from nnlib import _threads, training
from nnlib._reference import train as twin
from nnlib._kernels import train
from nnlib.callbacks import Callback
from nnlib.exceptions import ConcurrentUseError, DTypeError, ShapeError
from nnlib.layers import Dense
from nnlib.optim import SGD
from tests.test_concurrency import _PausedFit

N, D = 40, 5


def _model(dtype=np.float64):
    return nnlib.Sequential([Dense(D, 7, "tanh", dtype=dtype, random_state=0),
                             Dense(7, 3, dtype=dtype, random_state=1)])


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D)), rng.integers(0, 3, N)


def _fit(model, opt, X, y, seed, **kw):
    kw = {"epochs": 1, "batch_size": 1, "random_state": seed, "n_threads": 1, **kw}
    return model.fit(X, y, optimizer=opt, **kw)


class _UserY:
    """Labels handed over as an object whose ``__array__`` runs code of the user's."""

    def __init__(self, y, hook):
        self.y, self.hook = y, hook

    def __array__(self, dtype=None, copy=None):
        self.hook()
        return self.y


# -- claims: one lock, the same refusals ------------------------------------------

def test_a_refused_fit_holds_nothing_it_claimed():
    X, y = _data()
    busy_model, busy_opt = _model(), SGD(lr=0.1)
    with _PausedFit(busy_model, X, y, optimizer=busy_opt, epochs=2, batch_size=1,
                    n_threads=1):
        free_model, free_opt = _model(), SGD(lr=0.1)
        with pytest.raises(ConcurrentUseError, match=r"the optimizer \(SGD\) is in use by "
                                                     r"a running fit.*own optimizer"):
            _fit(free_model, busy_opt, X, y, 2)
        assert _threads.claimed_by(free_model) is None       # claimed, then released
        with pytest.raises(ConcurrentUseError, match=r"the model \(Sequential\) is in use "
                                                     r"by a running fit.*one model in one"):
            _fit(busy_model, free_opt, X, y, 2)
        assert _threads.claimed_by(free_opt) is None          # never claimed
        with pytest.raises(ConcurrentUseError, match=r"the model \(Sequential\)"):
            _fit(busy_model, busy_opt, X, y, 2)               # the model is named first
        _fit(free_model, free_opt, X, y, 2)                   # both free
    assert _threads.claimed_by(busy_model) is None and _threads.claimed_by(busy_opt) is None


# -- the kept setup, the label check -----------------------------------------------

def test_a_reused_setup_is_kept_again():
    X, y = _data()
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, opt, X, y, 1)
    first = training._SETUPS[model][1]
    for seed in (2, 3):
        _fit(model, opt, X, y, seed)
        assert training._SETUPS[model][1] is first


@pytest.mark.parametrize("module", [train, twin], ids=["compiled", "twin"])
@pytest.mark.parametrize("labels, shown", [([0, 1, 3], "0..3"), ([-1, 2, 0], "-1..2"),
                                           ([2, -5, 7], "-5..7")])
def test_labels_outside_the_classes_are_refused_with_their_range(module, labels, shown):
    net = module.Network([2, 3], [0], [0.0])
    W, b = [np.zeros((2, 3))], [np.zeros(3)]
    X, yt = np.zeros((3, 2)), np.empty((3, 0))
    ws = module.Workspace(net.sizes, 3, 0, np.float64)
    message = rf"y_label must hold class indices in \[0, 3\); got {shown}$"
    with pytest.raises(ValueError, match=message):
        module.EpochSetup(net, W, b, None, X, yt, np.array(labels), ws, 0, 3)
    setup = module.EpochSetup(net, W, b, None, X, yt, np.array([0, 1, 2]), ws, 0, 3)
    with pytest.raises(ValueError, match=message):
        setup.set_data(X, yt, np.array(labels))
