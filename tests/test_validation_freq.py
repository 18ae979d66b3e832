"""``fit(validation_freq=...)`` as Keras 3's (``keras/src/trainers/trainer.py``,
``_should_eval``: ``epoch + 1`` -- 1-based -- ``% validation_freq == 0`` for an int,
``epoch + 1 in validation_freq`` for a list), and what reads validation values on an
epoch without them. Keras is not installed; its documented behaviour is quoted:

* History: Keras's ``History.on_epoch_end`` appends each key of the epoch's logs, so
  the ``val_`` lists hold only the validated epochs (nnlib's ``History.val_epoch``
  says which);
* EarlyStopping: ``get_monitor_value`` warns "Early stopping conditioned on metric
  ... which is not available" and ``on_epoch_end`` returns (no wait counted);
* ReduceLROnPlateau: warns "Learning rate reduction is conditioned on metric ..." and
  changes nothing (nnlib's ReduceOnPlateau schedule: no step);
* ModelCheckpoint(save_best_only=True): ``_should_save_model`` warns "Can save best
  model only with ... available." and returns True (saves).

Before: ``validation_freq`` was a TypeError.
"""
import itertools
import warnings

import numpy as np
import pytest

import nnlib
from nnlib.callbacks import Callback, EarlyStopping, History, ModelCheckpoint
from nnlib.optim import SGD
from nnlib.schedules import ReduceOnPlateau


def _model():
    return nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                             nnlib.Dense(4, 2, random_state=1)])


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)


class _Logs(Callback):
    """Each epoch's logs, and the validation loss of the model as it ends."""

    def __init__(self, Xv, yv):
        self.Xv, self.yv, self.seen = Xv, yv, []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((epoch, dict(logs), self.model.evaluate(self.Xv, self.yv).loss))


# (id, validation_freq, initial_epoch, epochs, the 0-based epochs validated)
FREQS = [("every-epoch", 1, 0, 5, [0, 1, 2, 3, 4]),
         ("every-2nd", 2, 0, 7, [1, 3, 5]),
         ("every-3rd-resumed", 3, 2, 9, [2, 5, 8]),
         ("list", [1, 4, 5], 0, 6, [0, 3, 4]),
         ("set-beyond-epochs", {2, 99}, 0, 4, [1]),
         ("range-resumed", range(4, 7), 3, 8, [3, 4, 5]),
         ("none-listed", [], 0, 3, []),
         ("tuple", (2, 3), 0, 4, [1, 2]),
         ("int-array", np.array([1, 3]), 0, 4, [0, 2])]


@pytest.mark.parametrize("fid,freq,initial,epochs,validated", FREQS,
                         ids=[f[0] for f in FREQS])
def test_validation_runs_on_kerass_epochs_and_history_keeps_them(fid, freq, initial,
                                                                  epochs, validated):
    X, y = _data()
    Xv, yv = _data(15, seed=1)
    logs = _Logs(Xv, yv)
    h = _model().fit(X, y, optimizer=SGD(lr=0.1), epochs=epochs, batch_size=8,
                     validation_data=(Xv, yv), validation_freq=freq, metrics=["accuracy"],
                     initial_epoch=initial, callbacks=[logs])
    assert h.epoch == list(range(initial, epochs))
    assert h.val_epoch == validated
    for key in ("val_loss", "val_accuracy"):
        assert len(h.history.get(key, [])) == len(validated)
    assert len(h["loss"]) == len(h["accuracy"]) == len(h.epoch)
    for epoch, epoch_logs, val_loss in logs.seen:
        if epoch in validated:
            assert epoch_logs["val_loss"] == pytest.approx(val_loss, rel=1e-12)
            i = h.val_epoch.index(epoch)
            assert h["val_loss"][i] == epoch_logs["val_loss"]
        else:
            assert not any(k.startswith("val_") for k in epoch_logs)


def test_validation_freq_changes_no_weight():
    X, y = _data()
    Xv, yv = _data(15, seed=1)
    a, b = _model(), _model()
    ha = a.fit(X, y, optimizer=SGD(lr=0.1), epochs=4, validation_data=(Xv, yv),
               random_state=0)
    hb = b.fit(X, y, optimizer=SGD(lr=0.1), epochs=4, validation_data=(Xv, yv),
               validation_freq=2, random_state=0)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    assert hb["val_loss"] == ha["val_loss"][1::2] and hb["loss"] == ha["loss"]


def test_without_validation_data_validation_freq_is_ignored():
    # Keras validates only with validation data; the argument is still checked
    X, y = _data()
    h = _model().fit(X, y, epochs=3, validation_freq=2)
    assert h.val_epoch == [] and "val_loss" not in h.history


BAD = [("zero", 0, ValueError, "validation_freq"),
       ("negative", -2, ValueError, "validation_freq"),
       ("float", 2.0, TypeError, "validation_freq must be an int"),
       ("string", "2", TypeError, "validation_freq must be an int"),
       ("false", False, ValueError, "validation_freq=False is 0 to Keras"),
       ("numpy-bool", np.True_, TypeError, "validation_freq must be an int"),
       ("epoch-zero", [0, 2], ValueError, "validation_freq's epochs"),
       ("float-epoch", [1.5], TypeError, "validation_freq's epochs"),
       ("dict", {1: "a", 3: "b"}, TypeError, "validation_freq must be an int"),
       ("2d-array", np.array([[1, 2]]), TypeError, "validation_freq must be an int"),
       ("0d-array", np.array(2), TypeError, "validation_freq must be an int")]


@pytest.mark.parametrize("bid,freq,error,match", BAD, ids=[b[0] for b in BAD])
def test_a_bad_validation_freq_is_named_before_training(bid, freq, error, match):
    X, y = _data()
    model = _model()
    before = [p.copy() for p in model.params]
    with pytest.raises(error, match=match):
        model.fit(X, y, epochs=2, validation_split=0.2, validation_freq=freq)
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params))


ITERATORS = [("generator", lambda: (e for e in [1, 2, 3])),
             ("map", lambda: map(int, [1, 2])),
             ("iter-of-list", lambda: iter([2, 4])),
             ("endless", lambda: itertools.count(1, 2))]


@pytest.mark.parametrize("make", [i[1] for i in ITERATORS], ids=[i[0] for i in ITERATORS])
def test_an_iterator_validation_freq_is_refused_unread(make):
    # Keras takes an int or a list; an iterator reads once (before: consumed into the
    # set of epochs -- and itertools.count hung the fit there)
    X, y = _data()
    freq = make()
    with pytest.raises(TypeError, match=r"validation_freq is an iterator .*read only "
                                        r"once"):
        _model().fit(X, y, epochs=2, validation_split=0.2, validation_freq=freq)
    assert next(freq) in (1, 2)                         # not a single epoch taken


def test_early_stopping_skips_an_epoch_without_its_monitor_as_keras():
    # before: KeyError 'val_loss' on the first epoch not validated
    stop = EarlyStopping(monitor="val_loss", patience=1)
    assert not stop.update(0, {"loss": 1.0, "val_loss": 0.5}, [])
    with pytest.warns(RuntimeWarning, match="EarlyStopping monitors 'val_loss', which "
                                            "this epoch's logs lack"):
        for epoch in (1, 2, 3):
            assert not stop.update(epoch, {"loss": 1.0}, [])
    assert (stop.best, stop.wait) == (0.5, 0)          # skipped: no wait counted
    assert stop.update(4, {"loss": 1.0, "val_loss": 0.6}, [])


@pytest.mark.parametrize("how", ["early_stopping", "callback"])
def test_fit_with_early_stopping_counts_only_validated_epochs(how):
    # no epoch improves by min_delta=10 after the first validated: the stopper's wait
    # grows on validated epochs only, so with patience 2 and validation every 3rd epoch the fit
    # stops at the third validated epoch, 1-based epoch 9
    X, y = _data()
    Xv, yv = _data(15, seed=1)
    stop = EarlyStopping(monitor="val_loss", patience=2, min_delta=10.0)
    kw = ({"early_stopping": stop} if how == "early_stopping" else {"callbacks": [stop]})
    with pytest.warns(RuntimeWarning, match="EarlyStopping monitors 'val_loss'"):
        h = _model().fit(X, y, optimizer=SGD(lr=0.01), epochs=30,
                         validation_data=(Xv, yv), validation_freq=3, **kw)
    assert h.val_epoch == [2, 5, 8] and h.epoch[-1] == 8
    assert stop.stopped_epoch == 8 and h.stop_reason == "early_stopping"


def test_reduce_on_plateau_steps_only_on_validated_epochs():
    X, y = _data()
    Xv, yv = _data(15, seed=1)
    opt = SGD(lr=0.1)
    sched = ReduceOnPlateau(patience=0, factor=0.5, threshold=10.0)   # never improves
    with pytest.warns(RuntimeWarning, match="ReduceOnPlateau follows val_loss"):
        h = _model().fit(X, y, optimizer=opt, epochs=6, validation_data=(Xv, yv),
                         validation_freq=[2, 3, 6], schedule=sched)
    # three steps, each halving (epochs 2, 3 and 6, 1-based), none on the other three
    # (before: a step on every epoch, on the training loss where val_loss was missing)
    assert sched.epoch == 3 and sched.lr == pytest.approx(0.0125)
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.025, 0.025])


def test_model_checkpoint_best_only_warns_and_saves_unvalidated_epochs(tmp_path):
    X, y = _data()
    Xv, yv = _data(15, seed=1)
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"), monitor="val_loss",
                           save_best_only=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = _model().fit(X, y, optimizer=SGD(lr=0.1), epochs=4,
                         validation_data=(Xv, yv), validation_freq=2, callbacks=[ckpt])
    assert sum("ModelCheckpoint monitors 'val_loss'" in str(w.message)
               for w in caught) == 2
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert {"m-1.npz", "m-3.npz"} <= set(saved)          # unvalidated: saved, as Keras 3
    assert ckpt.best == min(h["val_loss"])


def test_a_history_pickled_before_val_epoch_reads_every_epoch_validated():
    h = History()
    h.add_epoch(0, loss=1.0, val_loss=2.0)
    h.add_epoch(1, loss=0.5, val_loss=1.5)
    state = dict(h.__dict__)
    del state["val_epoch"]
    old = History.__new__(History)
    old.__setstate__(state)
    assert old.val_epoch == [0, 1]
    plain = History.__new__(History)
    del state["history"]["val_loss"]
    plain.__setstate__(state)
    assert plain.val_epoch == []


def test_an_old_history_stopped_on_a_nonfinite_epoch_keeps_val_epoch_aligned():
    # found by a second read (rev35a): a fit that stopped on a non-finite step records
    # that last epoch without val_ values (FitLoop's fault branch), so a History pickled
    # before val_epoch has one epoch more than val_loss values. Before: val_epoch named
    # every epoch, [0, 1, 2] for 2 val_loss values, against its own rule (one per entry)
    h = History()
    h.add_epoch(0, loss=1.0, val_loss=2.0, val_accuracy=0.5)
    h.add_epoch(1, loss=0.5, val_loss=1.5, val_accuracy=0.5)
    h.add_epoch(2, loss=float("nan"))
    h.stop_reason = "nonfinite"
    state = dict(h.__dict__)
    del state["val_epoch"]
    old = History.__new__(History)
    old.__setstate__(state)
    assert old.val_epoch == [0, 1] and len(old.val_epoch) == len(old["val_loss"])


def test_validation_freq_true_is_every_epoch_as_kerass_int_test_makes_it():
    # Keras 3's _should_eval tests isinstance(validation_freq, int): True passes, and
    # epoch % True == 0 validates every epoch. Before: a TypeError.
    X, y = _data()
    a, b = _model(), _model()
    ha = a.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, validation_split=0.25,
               validation_freq=True, random_state=0)
    hb = b.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, validation_split=0.25,
               validation_freq=1, random_state=0)
    assert ha.val_epoch == hb.val_epoch == [0, 1, 2]
    for key in ("loss", "val_loss", "val_accuracy"):
        assert ha[key] == hb[key]
