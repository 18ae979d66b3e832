"""A pickle of a model or optimizer holds one consistent state while another thread
trains it: the check at the start of ``__getstate__`` alone let a fit that started
while the arrays were being written step the ones not yet written (probe36)."""
import pickle
import threading
import time

import numpy as np
import pytest

import nnlib
from nnlib import optim
from nnlib.exceptions import ConcurrentUseError
from nnlib.layers import Layer


def _data(n=40, d=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), np.arange(n) % classes


class _FitWhilePickled(Layer):
    """An identity layer whose pickling runs a whole fit of ``model`` in another thread
    and waits for it: the layers before it are written before that fit, those after it
    after (the widest possible race, made certain)."""

    def __init__(self, n):
        self.n_in = self.n_out = n
        self.model = None

    def forward(self, X, n_threads=None):
        return X

    def forward_train(self, X):
        return X, lambda dH: (dH, [])

    def __reduce__(self):
        model, self.model = self.model, None
        if model is not None:
            X, y = _data()
            worker = threading.Thread(target=lambda: model.fit(
                X, y, optimizer=model.optimizer, epochs=1, batch_size=len(X)))
            worker.start()
            worker.join(30)
        return _FitWhilePickled, (self.n_in,)


def _racing_model():
    hook = _FitWhilePickled(4)
    model = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0), hook,
                              nnlib.Dense(4, 3, random_state=1)])
    model.optimizer = optim.Adam(lr=0.1)
    model.fit(*_data(), epochs=1, batch_size=40)           # state to tear as well
    hook.model = model
    return model


PICKLED = {
    "model": lambda model: model,
    "optimizer": lambda model: model.optimizer,
    "model-and-optimizer": lambda model: (model, model.optimizer),
}


@pytest.mark.parametrize("what", list(PICKLED), ids=list(PICKLED))
def test_a_fit_starting_while_the_pickle_is_written_refuses_it(what):
    model = _racing_model()
    before = [p.copy() for p in model.params]
    obj = PICKLED[what](model)
    if what == "optimizer":     # the layer that races is the model's: race its state
        model.layers[1].model = None
        model.optimizer.__dict__["racer"] = _FitWhilePickled(4)   # before its entries
        model.optimizer.__dict__["racer"].model = model
    with pytest.raises(ConcurrentUseError, match="started while the pickle was being"):
        pickle.dumps(obj)
    # the fit ran and the model is usable; a pickle now holds its one state
    assert any((p != q).any() for p, q in zip(model.params, before))
    model.layers[1].model = None
    model.optimizer.__dict__.pop("racer", None)
    again = pickle.loads(pickle.dumps((model, model.optimizer)))
    for p, q in zip(again[0].params, model.params):
        np.testing.assert_array_equal(p, q)


def test_pickles_taken_while_another_thread_fits_are_each_one_epochs_state():
    # one step per epoch, and the epoch callback records every state the fit passes
    # through: each pickle that is not refused must load as one of them, with the
    # optimizer's step count of that state
    X, y = _data()
    model = nnlib.Sequential([nnlib.Dense(3, 16, "tanh", random_state=0),
                              nnlib.Dense(16, 3, random_state=1)])
    opt = optim.Adam(lr=0.01)
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=len(X))
    states = {}

    def record(epoch, logs):
        states[opt.state[model.params[0]]["step"]] = [p.copy() for p in model.params]
    record(0, {})
    stop = threading.Event()

    def train():
        while not stop.is_set():
            model.fit(X, y, optimizer=opt, epochs=5, batch_size=len(X),
                      callbacks=[record])
            stop.wait(0.002)        # between fits a pickle can pass (on a loaded machine)
    worker = threading.Thread(target=train)
    worker.start()
    kept = refused = 0
    try:
        deadline = time.monotonic() + 30
        while kept + refused < 400 or (kept == 0 and time.monotonic() < deadline):
            try:
                blob = pickle.dumps((model, opt))
            except ConcurrentUseError:
                refused += 1
                continue
            got, got_opt = pickle.loads(blob)
            step = got_opt.state[got.params[0]]["step"]
            for p in got.params:
                assert got_opt.state[p]["step"] == step
            # the callback records a state after the pickle may have been taken
            for _ in range(1000):
                if step in states:
                    break
                threading.Event().wait(0.001)
            for p, q in zip(got.params, states[step]):
                np.testing.assert_array_equal(p, q)
            kept += 1
    finally:
        stop.set()
        worker.join(30)
    assert kept > 0


class _PartialFitWhilePickled:
    """An estimator attribute written before coefs_: its pickling starts a partial_fit
    of the estimator in another thread and waits for it to end, or for 2 s (the state
    is copied holding the estimator's lock, which the partial_fit waits for)."""
    clf, worker = None, None

    def __reduce__(self):
        cls = type(self)
        clf, cls.clf = cls.clf, None
        if clf is not None:
            X, y = _data()
            cls.worker = threading.Thread(target=lambda: clf.partial_fit(X, y))
            cls.worker.start()
            cls.worker.join(2)
        return _PartialFitWhilePickled, ()


def test_an_estimator_pickle_holds_one_state_when_a_fit_starts_while_it_is_written():
    # the estimator's lock was held only while __getstate__ ran, not while pickle
    # wrote the arrays: a partial_fit starting then moved coefs_ under the old t_
    from nnlib import MLPClassifier
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="adam", random_state=0)
    clf.hook = _PartialFitWhilePickled()
    clf.partial_fit(X, y, classes=[0, 1, 2])
    before = {"t_": clf.t_, "coefs_": [c.copy() for c in clf.coefs_],
              "loss_curve_": list(clf.loss_curve_)}
    _PartialFitWhilePickled.clf = clf
    got = pickle.loads(pickle.dumps(clf))
    _PartialFitWhilePickled.worker.join(30)
    assert clf.t_ == 2 * before["t_"]                   # the partial_fit ran
    assert got.t_ == before["t_"] and got.loss_curve_ == before["loss_curve_"]
    for a, b in zip(got.coefs_, before["coefs_"]):
        np.testing.assert_array_equal(a, b)
    got.partial_fit(X, y)                               # and trains on as the original
    for a, b in zip(got.coefs_, clf.coefs_):
        np.testing.assert_array_equal(a, b)
