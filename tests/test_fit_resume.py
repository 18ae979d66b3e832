"""Keras's History.epoch and fit(..., initial_epoch=N): epochs is the index training
stops before, callbacks, early stopping, schedules and the history see absolute
epochs, and a fit resumed at N continues the one that stopped there."""
import io
import time

import numpy as np
import pytest

import nnlib
import nnlib.schedules as S
from nnlib.callbacks import Callback, EarlyStopping
from nnlib.optim import SGD


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def _model():
    return nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=0),
                             nnlib.Dense(5, 2, random_state=1)])


class Epochs(Callback):
    def __init__(self):
        self.begun, self.ended, self.params_seen, self.trained = [], [], None, False

    def on_train_begin(self, logs=None):
        self.params_seen = dict(self.params)

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.ended.append(epoch)

    def on_train_end(self, logs=None):
        self.trained = True


def test_history_epoch_lists_the_epochs():
    X, y = _data()
    h = _model().fit(X, y, epochs=4)
    assert h.epoch == [0, 1, 2, 3] and h.epochs == 4 == len(h["loss"])


def test_history_epoch_stops_with_early_stopping():
    X, y = _data()
    h = _model().fit(X, y, optimizer=SGD(lr=1e-4), epochs=50,
                     early_stopping={"patience": 2, "min_delta": 1.0})
    assert h.stop_reason == "early_stopping"
    assert h.epoch == list(range(h.epochs)) and len(h["loss"]) == h.epochs == 3


def test_history_epoch_of_a_nonfinite_stop():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)) * 10, rng.standard_normal((40, 2)) * 10
    model = nnlib.Sequential([nnlib.Dense(3, 2, dtype=np.float32, random_state=0)])
    with pytest.warns(RuntimeWarning, match="non-finite"):
        h = model.fit(X, y, loss="squared_error", optimizer=SGD(lr=5.0), epochs=50,
                      batch_size=1, random_state=0, initial_epoch=2)
    assert h.stop_reason == "nonfinite" and h.nonfinite["epoch"] >= 2
    # the epoch cut short is listed when it trained rows, as its loss is
    assert h.epoch == list(range(2, 2 + h.epochs)) and len(h["loss"]) == h.epochs
    assert h.epoch[-1] in (h.nonfinite["epoch"], h.nonfinite["epoch"] - 1)


def test_initial_epoch_runs_epochs_initial_to_final_with_absolute_indices():
    X, y = _data()
    rec = Epochs()
    h = _model().fit(X, y, epochs=5, initial_epoch=2, callbacks=[rec])
    assert rec.begun == rec.ended == [2, 3, 4] == h.epoch
    assert h.epochs == 3 == len(h["loss"])
    assert rec.params_seen["epochs"] == 5                 # Keras passes the final epoch


@pytest.mark.parametrize("epochs", [3, 2], ids=["equal", "below"])
def test_initial_epoch_at_or_past_epochs_trains_nothing(epochs):
    X, y = _data()
    model, rec = _model(), Epochs()
    before = [p.copy() for p in model.params]
    h = model.fit(X, y, epochs=epochs, initial_epoch=3, callbacks=[rec])
    assert h.epoch == [] and h.epochs == 0 and rec.begun == [] and rec.trained
    for p, q in zip(model.params, before):
        np.testing.assert_array_equal(p, q)


def test_initial_epoch_must_be_a_count():
    X, y = _data()
    with pytest.raises(ValueError, match="initial_epoch"):
        _model().fit(X, y, epochs=3, initial_epoch=-1)


def test_a_callable_schedule_gets_the_absolute_epoch():
    X, y = _data()
    asked = []

    def rate(epoch):
        asked.append(epoch)
        return 0.1 / (1 + epoch)
    h = _model().fit(X, y, epochs=6, initial_epoch=4, schedule=rate)
    assert asked == [4, 5] and h["lr"] == [0.1 / 5, 0.1 / 6]


def test_start_from_epoch_and_the_first_epoch_rule_count_absolute_epochs():
    """Keras compares start_from_epoch with the absolute epoch, and 'epoch > 0' lets a
    resumed fit stop at its first epoch."""
    X, y = _data()
    stop = EarlyStopping(monitor="loss", patience=0, min_delta=10.0, start_from_epoch=3)
    h = _model().fit(X, y, epochs=10, initial_epoch=2, callbacks=[stop])
    # epoch 2 is before start_from_epoch; epoch 3 sets the best; 4 does not improve
    assert h.epoch == [2, 3, 4] and stop.stopped_epoch == 4 and stop.best_epoch == 3


@pytest.mark.parametrize("interval, make", [
    ("epoch", lambda: S.CosineAnnealing(T_max=6)),
    ("epoch", lambda: S.StepDecay(2, gamma=0.5)),
    ("batch", lambda: S.OneCycleLR(0.5, epochs=6, steps_per_epoch=5)),
], ids=["cosine", "step", "one_cycle_per_batch"])
@pytest.mark.parametrize("carry", [False, True], ids=["fresh_schedule", "same_schedule"])
def test_resuming_at_initial_epoch_continues_the_fit(interval, make, carry):
    """Six epochs in one fit == three, then a fit resumed at epoch 3 with the same
    optimizer and shuffle stream, whether the schedule is the one that stopped there
    or a fresh one (moved to epoch 3)."""
    X, y = _data()
    kw = dict(batch_size=8, schedule_interval=interval)
    whole = _model()
    h_whole = whole.fit(X, y, optimizer=SGD(lr=0.2, momentum=0.9), epochs=6,
                        schedule=make(), random_state=np.random.default_rng(5), **kw)
    parts, opt, rng, sched = _model(), SGD(lr=0.2, momentum=0.9), \
        np.random.default_rng(5), make()
    h1 = parts.fit(X, y, optimizer=opt, epochs=3, schedule=sched, random_state=rng, **kw)
    h2 = parts.fit(X, y, optimizer=opt, epochs=6, initial_epoch=3,
                   schedule=sched if carry else make(), random_state=rng, **kw)
    assert h1.epoch + h2.epoch == h_whole.epoch == list(range(6))
    assert h1["lr"] + h2["lr"] == h_whole["lr"]
    np.testing.assert_array_equal(h1["loss"] + h2["loss"], h_whole["loss"])
    for p, q in zip(parts.params, whole.params):
        np.testing.assert_array_equal(p, q)


def test_a_fresh_plateau_schedule_is_not_moved():
    X, y = _data()
    sched = S.ReduceOnPlateau(patience=100)
    _model().fit(X, y, optimizer=SGD(lr=0.1), epochs=4, initial_epoch=2, schedule=sched)
    assert sched.epoch == 2 and sched.lr == 0.1


def test_progress_lines_show_the_absolute_epoch():
    from nnlib._progress import Progress
    p = Progress(epochs=5, steps_per_epoch=4, verbose=2, stream=io.StringIO(),
                 initial_epoch=3)
    p.epoch_done(3, {"loss": 0.5, "time": 0.01})
    assert p.stream.getvalue().startswith("epoch 4/5  loss 0.5")
    # one of this run's two epochs done in 10 s: 10 s to go
    p.t_start = time.perf_counter() - 10.0
    assert p._eta(4, 0) == pytest.approx(10.0, rel=0.01)


@pytest.mark.parametrize("early_bind", [False, True])
def test_a_schedule_bound_before_the_fit_adopted_its_optimizer_resumes(early_bind):
    # a schedule bound to an optimizer that had no parameters yet: the group the fit
    # adopts gets its "initial_lr" too, so a fresh schedule resuming at initial_epoch
    # continues the rates instead of decaying from the already-decayed rate again
    X, y = np.eye(2), np.array([0, 1])
    opt = SGD(lr=1.0)
    first = S.StepDecay(1, 0.5, optimizer=opt) if early_bind else S.StepDecay(1, 0.5)
    model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    model.fit(X, y, optimizer=opt, epochs=3, schedule=first)
    assert opt.param_groups[0]["initial_lr"] == 1.0
    h = model.fit(X, y, optimizer=opt, epochs=6, initial_epoch=3,
                  schedule=S.StepDecay(1, 0.5))
    assert h["lr"] == [0.5 ** 3, 0.5 ** 4, 0.5 ** 5]
