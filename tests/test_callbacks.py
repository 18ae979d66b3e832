"""fit's callbacks with Keras's habits: hook order, batch hooks, stop_training,
EarlyStopping's rule and options, ModelCheckpoint."""
import os

import numpy as np
import pytest

import nnlib
from nnlib.callbacks import Callback, EarlyStopping, ModelCheckpoint
from nnlib.layers import Layer
from nnlib.optim import SGD, Adam


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def _model(seed=0):
    return nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=seed),
                             nnlib.Dense(5, 2, random_state=seed + 1)])


class Recorder(Callback):
    def __init__(self, batches=True):
        self.calls = []
        self.batches = batches

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", sorted(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))


class BatchRecorder(Recorder):
    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, round(logs["loss"], 12)))


def test_hooks_run_in_keras_order_with_params_and_model():
    X, y = _data(10)
    model, rec = _model(), BatchRecorder()
    model.fit(X, y, epochs=2, batch_size=4, callbacks=[rec], shuffle=False)
    names = [c[:2] if c[0] != "train_begin" else c for c in rec.calls]
    expected = [("train_begin",)]
    for e in range(2):
        expected.append(("epoch_begin", e))
        for b in range(3):
            expected += [("batch_begin", b), ("batch_end", b)]
        expected.append(("epoch_end", e))
    expected.append(("train_end", ["loss", "lr", "time"]))
    assert [n if n[0] != "train_end" else rec.calls[-1] for n in names] == expected
    assert rec.model is model
    assert rec.params["epochs"] == 2 and rec.params["steps"] == 3
    assert rec.params["batch_size"] == 4


class OldNames(Recorder):
    """Keras's older batch hooks (its base class keeps them as aliases)."""
    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, round(logs["loss"], 12)))


def test_kerass_older_batch_hook_names_run_as_the_new_ones():
    """Before, on_batch_begin / on_batch_end were never called (Keras calls them from
    its on_train_batch_* defaults): a callback written against them did nothing."""
    X, y = _data(10)
    runs = []
    for rec in (BatchRecorder(), OldNames()):
        model = _model()
        model.fit(X, y, epochs=2, batch_size=4, callbacks=[rec], shuffle=False)
        runs.append((rec.calls, [p.copy() for p in model.params]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_batch_logs_hold_the_running_mean_loss_of_the_epoch():
    X, y = _data(12)
    rec = BatchRecorder()
    hist = _model().fit(X, y, epochs=1, batch_size=4, callbacks=[rec], shuffle=False)
    batch_losses = [c[2] for c in rec.calls if c[0] == "batch_end"]
    assert len(batch_losses) == 3
    # equal batches: the running mean after the last batch is the epoch's loss
    assert batch_losses[-1] == pytest.approx(hist["loss"][0], rel=1e-12)


@pytest.mark.parametrize("batch_size", [1, 4, 7])
def test_batch_hooks_do_not_change_the_trained_weights(batch_size):
    X, y = _data(23)
    plain, hooked = _model(), _model()
    plain.fit(X, y, optimizer=Adam(lr=0.05), epochs=3, batch_size=batch_size,
              random_state=1)
    hooked.fit(X, y, optimizer=Adam(lr=0.05), epochs=3, batch_size=batch_size,
               random_state=1, callbacks=[BatchRecorder()])
    for a, b in zip(plain.params, hooked.params):
        np.testing.assert_array_equal(a, b)


class StopAtBatch(Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.stop_training = True


def test_stop_training_in_a_batch_hook_ends_the_fit_after_that_batch():
    X, y = _data(20)
    opt = SGD(lr=0.1)
    model = _model()
    hist = model.fit(X, y, optimizer=opt, epochs=5, batch_size=4, shuffle=False,
                     callbacks=[StopAtBatch(1, 2)])
    assert hist.stop_reason == "callback" and hist.epochs == 2
    assert opt.t == 5 + 3                    # epoch 0: 5 steps, epoch 1: steps 0..2
    assert model.stop_training is True
    # the same weights as training exactly those 8 steps
    again, opt2 = _model(), SGD(lr=0.1)
    again.fit(X, y, optimizer=opt2, epochs=1, batch_size=4, shuffle=False)
    again.fit(X[:12], y[:12], optimizer=opt2, epochs=1, batch_size=4, shuffle=False)
    for a, b in zip(model.params, again.params):
        np.testing.assert_array_equal(a, b)


class StopAtEpochEnd(Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.model.stop_training = True


def test_stop_training_at_epoch_end_and_plain_callables_still_work():
    X, y = _data(20)
    model = _model()
    hist = model.fit(X, y, epochs=10, callbacks=[StopAtEpochEnd()])
    assert hist.epochs == 2 and hist.stop_reason == "callback"
    # the next fit starts afresh
    hist = model.fit(X, y, epochs=3, callbacks=[lambda e, logs: False])
    assert hist.epochs == 3 and hist.stop_reason is None


# -- EarlyStopping: Keras's rule ------------------------------------------------------
SEQ = [1.0, 0.5, 0.6, 0.7, 0.8, 0.4, 0.9]


@pytest.mark.parametrize("patience, stop_at", [(0, 2), (1, 2), (2, 3), (3, 4), (9, None)])
def test_early_stopping_stops_after_patience_epochs_without_improvement(patience,
                                                                        stop_at):
    stop = EarlyStopping(monitor="loss", patience=patience)
    flags = [stop.update(e, {"loss": v}, []) for e, v in enumerate(SEQ)]
    assert (flags.index(True) if True in flags else None) == stop_at


def test_early_stopping_min_delta_mode_baseline_and_start_from_epoch():
    # a decrease of 0.05 does not beat min_delta 0.1
    stop = EarlyStopping(monitor="loss", patience=1, min_delta=0.1)
    assert [stop.update(e, {"loss": v}, []) for e, v in enumerate([1.0, 0.95])] \
        == [False, True]
    # accuracy is maximized under mode="auto"
    stop = EarlyStopping(monitor="val_accuracy", patience=1)
    assert [stop.update(e, {"val_accuracy": v}, []) for e, v in
            enumerate([0.5, 0.6, 0.55])] == [False, False, True]
    # an epoch that does not beat the baseline counts as waiting (Keras's rule)
    rising = [1.0, 1.1, 1.2]
    stop = EarlyStopping(monitor="loss", patience=2, baseline=0.1)
    assert [stop.update(e, {"loss": v}, []) for e, v in enumerate(rising)] \
        == [False, True, True]
    stop = EarlyStopping(monitor="loss", patience=2)
    assert [stop.update(e, {"loss": v}, []) for e, v in enumerate(rising)] \
        == [False, False, True]
    # warm-up epochs are not counted: the best is taken from epoch 3 on
    stop = EarlyStopping(monitor="loss", patience=1, start_from_epoch=3)
    assert [stop.update(e, {"loss": v}, []) for e, v in
            enumerate([1.0, 2.0, 3.0, 4.0, 5.0])] == [False] * 4 + [True]
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


@pytest.mark.parametrize("how", ["object", "dict"])
def test_restore_best_weights_puts_back_the_best_epoch(how):
    X, y = _data(40)
    model = _model()
    snapshots = []
    # lr so large the loss climbs after the first epochs
    record = lambda e, logs: snapshots.append([p.copy() for p in model.params])  # noqa
    if how == "object":
        es = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
        kw = dict(callbacks=[es, record])
    else:
        kw = dict(early_stopping=dict(monitor="loss", patience=2,
                                      restore_best_weights=True), callbacks=[record])
    hist = model.fit(X, y, optimizer=SGD(lr=50.0), epochs=30, batch_size=40, **kw)
    losses = hist["loss"]
    assert hist.stop_reason == "early_stopping"
    best = int(np.argmin(losses))
    for p, s in zip(model.params, snapshots[best]):
        np.testing.assert_array_equal(p, s)


def test_early_stopping_dict_keys_and_refusals():
    X, y = _data(20)
    model = _model()
    # lr 0 and no shuffle: the same loss, bit for bit, every epoch
    hist = model.fit(X, y, optimizer=SGD(lr=0.0), epochs=10, shuffle=False,
                     early_stopping=dict(patience=1, restore_best=False))
    assert hist.epochs == 2
    with pytest.raises(ValueError, match="not both"):
        model.fit(X, y, early_stopping=dict(restore_best=True, restore_best_weights=True))
    with pytest.raises(ValueError, match="unknown early_stopping keys"):
        model.fit(X, y, early_stopping=dict(patiense=3))
    with pytest.raises(ValueError, match="no validation data"):
        model.fit(X, y, callbacks=[EarlyStopping(monitor="val_loss")])
    with pytest.raises(TypeError, match="Callback objects or callables"):
        model.fit(X, y, callbacks=[3])



@pytest.mark.parametrize("restore", [False, True], ids=["keep", "restore"])
def test_an_early_stopping_object_passed_to_fit_again_starts_afresh(restore):
    # Keras resets an EarlyStopping at train begin, so one object serves several fits:
    # the second fit must stop (and restore) as with a new one, not compare against
    # the first fit's best loss or write the first fit's best weights back
    X, y = _data(40)

    def two_fits(second_stopper):
        model = _model()
        first = EarlyStopping(monitor="loss", patience=1, restore_best_weights=restore)
        model.fit(X, y, optimizer=SGD(lr=50.0), epochs=30, batch_size=40, shuffle=False,
                  early_stopping=first)
        hist = model.fit(X, y, optimizer=SGD(lr=0.05), epochs=6, batch_size=40,
                         shuffle=False, early_stopping=first if second_stopper is None
                         else second_stopper)
        return hist, [p.copy() for p in model.params]

    reused, reused_params = two_fits(None)
    fresh, fresh_params = two_fits(EarlyStopping(monitor="loss", patience=1,
                                                 restore_best_weights=restore))
    assert reused["loss"] == fresh["loss"]
    assert reused.stop_reason == fresh.stop_reason
    for a, b in zip(reused_params, fresh_params):
        np.testing.assert_array_equal(a, b)


# -- ModelCheckpoint --------------------------------------------------------------------
def test_checkpoint_every_epoch_formats_the_path(tmp_path):
    X, y = _data(30)
    model = _model()
    path = tmp_path / "m-{epoch:02d}-{val_loss:.4f}.npz"
    hist = model.fit(X, y, epochs=3, validation_split=0.2,
                     callbacks=[ModelCheckpoint(path)])
    names = sorted(os.listdir(tmp_path))
    assert names == [f"m-{e + 1:02d}-{v:.4f}.npz"
                     for e, v in enumerate(hist["val_loss"])]
    last = nnlib.load(tmp_path / names[-1])
    for a, b in zip(last.params, model.params):
        np.testing.assert_array_equal(a, b)
    assert last.loss == "softmax_cross_entropy"


def test_checkpoint_best_only_keeps_the_best_epoch(tmp_path):
    X, y = _data(40)
    model = _model()
    saved = []
    ckpt = ModelCheckpoint(tmp_path / "best.npz", monitor="loss", save_best_only=True)
    record = lambda e, logs: saved.append([p.copy() for p in model.params])  # noqa: E731
    hist = model.fit(X, y, optimizer=SGD(lr=50.0), epochs=8, batch_size=40,
                     callbacks=[ckpt, record])
    best = int(np.argmin(hist["loss"]))
    assert ckpt.best == hist["loss"][best]
    for a, b in zip(nnlib.load(tmp_path / "best.npz").params, saved[best]):
        np.testing.assert_array_equal(a, b)


# probe35: the best was taken before the save, so a save interrupted (Ctrl-C, the old
# file kept) or failing (an unfillable name) left ckpt.best at a model no file held, and
# a later epoch better than the saved one but not than that was never saved.
SAVE_FAILURES = {
    "interrupted": (lambda: KeyboardInterrupt(), KeyboardInterrupt),
    "disk-full": (lambda: OSError(28, "No space left on device"), OSError),
}


@pytest.mark.parametrize("failure", list(SAVE_FAILURES))
def test_checkpoint_best_is_the_best_saved_after_a_failed_save(failure, tmp_path,
                                                               monkeypatch):
    model = _model()
    ckpt = ModelCheckpoint(tmp_path / "best.npz", monitor="loss", save_best_only=True)
    ckpt.set_model(model)
    ckpt.on_epoch_end(0, {"loss": 0.9})
    make, kind = SAVE_FAILURES[failure]

    def failing_savez(f, **arrays):
        f.write(b"PK")                      # part of the file written, then the failure
        raise make()
    monkeypatch.setattr(np, "savez", failing_savez)
    model.params[0][...] += 1.0
    with pytest.raises(kind):
        ckpt.on_epoch_end(1, {"loss": 0.7})
    monkeypatch.undo()
    assert ckpt.best == 0.9
    assert os.listdir(tmp_path) == ["best.npz"]          # the old file, nothing else
    model.params[0][...] += 1.0
    ckpt.on_epoch_end(2, {"loss": 0.8})                  # better than the file's 0.9
    assert ckpt.best == 0.8
    for a, b in zip(nnlib.load(tmp_path / "best.npz").params, model.params):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_period_and_bad_paths(tmp_path):
    X, y = _data(20)
    model = _model()
    model.fit(X, y, epochs=5, batch_size=8, callbacks=[
        ModelCheckpoint(tmp_path / "e{epoch}.npz", period=2)])
    assert sorted(os.listdir(tmp_path)) == ["e2.npz", "e4.npz"]
    with pytest.raises(ValueError, match="cannot be filled"):
        model.fit(X, y, epochs=1, callbacks=[ModelCheckpoint(tmp_path / "{val_loss}.npz")])
    # a monitor the logs lack: warned and saved all the same, as Keras 3
    with pytest.warns(RuntimeWarning, match="which these logs lack.*saved all the same"):
        model.fit(X, y, epochs=1, callbacks=[ModelCheckpoint(tmp_path / "x.npz",
                                                             save_best_only=True)])
    assert (tmp_path / "x.npz").exists()


def test_an_int_save_freq_counts_batches_as_keras(tmp_path):
    # Keras saves after every save_freq batches, counted across epochs (and fits); an
    # int counted epochs here, so save_freq=100 saved nothing in a 50-epoch fit
    X, y = _data(20)                                  # 3 batches of 8 an epoch
    model = _model()
    saved = {}

    class Record(Callback):
        def on_train_batch_end(self, batch, logs=None):
            saved[(self.epoch, batch + 1)] = [p.copy() for p in self.model.params]

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

    ckpt = ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.npz", save_freq=2,
                           include_optimizer=True)
    model.fit(X, y, optimizer=SGD(lr=0.1, momentum=0.9), epochs=3, batch_size=8,
              callbacks=[ckpt, Record()])
    # batches 2, 4, 6, 8 of 9: epoch 1's 2nd, epoch 2's 1st and 3rd, epoch 3's 2nd
    names = ["e1-b2.npz", "e2-b1.npz", "e2-b3.npz", "e3-b2.npz"]
    assert sorted(os.listdir(tmp_path)) == names
    for name in names:                # the weights and step count after that batch
        epoch, batch = int(name[1]), int(name[4])
        loaded = nnlib.load(tmp_path / name)
        for p, q in zip(loaded.params, saved[(epoch, batch)]):
            np.testing.assert_array_equal(p, q)
        assert loaded.optimizer.t == 3 * (epoch - 1) + batch
    # the count goes on in the next fit: batch 10 is one more past the last save
    model.fit(X, y, epochs=4, initial_epoch=3, batch_size=8, callbacks=[ckpt])
    assert sorted(os.listdir(tmp_path)) == names + ["e4-b1.npz", "e4-b3.npz"]


def test_checkpoint_save_freq_runs_steps_only_when_it_counts_batches():
    from nnlib.callbacks import wants_batches

    class Subclassed(ModelCheckpoint):
        def on_batch_end(self, batch, logs=None):
            pass

    assert not wants_batches(ModelCheckpoint("m.npz"))              # an epoch's pace
    assert not wants_batches(ModelCheckpoint("m.npz", period=3))
    assert wants_batches(ModelCheckpoint("m.npz", save_freq=5))
    assert wants_batches(Subclassed("m.npz"))       # its own batch hook is called


def test_checkpoint_per_batch_names_what_its_logs_lack(tmp_path):
    X, y = _data(20)
    with pytest.warns(RuntimeWarning, match="which these logs lack.*an int save_freq counts "
                                            "batches.*period=N saves every N epochs"):
        _model().fit(X, y, epochs=1, batch_size=10, validation_split=0.2, callbacks=[
            ModelCheckpoint(tmp_path / "x.npz", save_freq=1, save_best_only=True)])
    assert (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("kw, exc, match", [
    ({"save_freq": "batch"}, ValueError, "'epoch' or an int"),
    ({"save_freq": 0}, ValueError, "save_freq"),
    ({"save_freq": 2, "period": 2}, ValueError, "period counts epochs"),
    ({"period": 0}, ValueError, "period"),
])
def test_checkpoint_bad_frequencies_are_named(kw, exc, match):
    with pytest.raises(exc, match=match):
        ModelCheckpoint("m.npz", **kw)


def test_checkpoint_makes_its_folder_as_keras_does(tmp_path):
    # Keras's ModelCheckpoint creates the folder of the path it fills in; nnlib's
    # raised FileNotFoundError naming its hidden temporary file, after the first epoch
    X, y = _data(20)
    model = _model()
    ckpt = ModelCheckpoint(tmp_path / "runs" / "e{epoch}" / "m.npz", monitor="loss")
    model.fit(X, y, epochs=2, callbacks=[ckpt])
    assert sorted(os.listdir(tmp_path / "runs")) == ["e1", "e2"]
    assert nnlib.load(ckpt.last_saved).n_out == model.n_out


@pytest.mark.parametrize("name", ["best.keras", "weights.h5", "m-{epoch}", "m.npz.tmp"])
def test_checkpoint_refuses_a_name_save_refuses_before_training(name):
    # the name was checked only by the first save, after an epoch of training
    with pytest.raises(ValueError, match=r"^ModelCheckpoint filepath .*must end in \.npz"):
        ModelCheckpoint(name)


def test_saved_loss_is_checked_on_load(tmp_path):
    X, y = _data(20)
    model = _model()
    model.fit(X, y, loss="sparsemax_loss", epochs=1)
    model.save(tmp_path / "m.npz")
    assert nnlib.load(tmp_path / "m.npz").loss == "sparsemax_loss"
    # a header naming an unknown loss is refused
    from nnlib import _format
    header, arrays = _format.model_arrays(model)
    header["loss"] = "bogus"
    _format.write(tmp_path / "bad.npz", header, arrays)
    with pytest.raises(ValueError, match="loss 'bogus'"):
        nnlib.load(tmp_path / "bad.npz")


# ---- restore_best_weights at train end, Keras 3's rule -----------------------------------
# keras/src/callbacks/early_stopping.py (Keras >= 3.0.0) restores in on_train_end whenever
# it holds best weights; these are its early_stopping_test.py cases, then the same in fit.

class _EpochModel:
    """Keras's test DummyModel: the weights are the epoch that wrote them."""

    def __init__(self):
        self.stop_training = False
        self.params = [np.array([-1.0])]

    def set_weight_to_epoch(self, epoch):
        self.params[0][...] = epoch


def _drive(stop, losses, stop_at=None):
    model = _EpochModel()
    stop.set_model(model)
    stop.on_train_begin()
    trained = 0
    for epoch, loss in enumerate(losses):
        trained += 1
        model.set_weight_to_epoch(epoch)
        stop.on_epoch_end(epoch, {"val_loss": loss})
        if epoch == stop_at:
            model.stop_training = True
        if model.stop_training:
            break
    stop.on_train_end()
    return trained, model.params[0][0]


KERAS_CASES = [
    # (id, EarlyStopping kwargs, losses, another callback stops at, epochs, weights)
    ("patience_runs_out", dict(patience=2), [0.2, 0.15, 0.1, 0.11, 0.12], None, 5, 2),
    ("no_epoch_beats_baseline", dict(patience=5, baseline=0.5),
     [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], None, 5, 2),
    ("another_callback_stops", dict(patience=5, baseline=0.5),
     [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], 3, 4, 2),
    ("patience_never_runs_out", dict(patience=10), [0.5, 0.3, 0.4, 0.45], None, 4, 1),
    ("never_improves", dict(patience=10), [0.5, 0.6, 0.7], None, 3, 0),
]


@pytest.mark.parametrize("kw, losses, stop_at, epochs, weights",
                         [c[1:] for c in KERAS_CASES], ids=[c[0] for c in KERAS_CASES])
def test_restore_best_weights_at_train_end_as_keras_3(kw, losses, stop_at, epochs, weights):
    stop = EarlyStopping(monitor="val_loss", restore_best_weights=True, **kw)
    assert _drive(stop, losses, stop_at) == (epochs, weights)
    keep = EarlyStopping(monitor="val_loss", restore_best_weights=False, **kw)
    assert _drive(keep, losses, stop_at) == (epochs, epochs - 1)


class _Snapshots(Callback):
    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([p.copy() for p in self.model.params])


def _assert_params(model, params):
    for p, q in zip(model.params, params):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("how", ["object", "dict"])
def test_fit_restores_the_best_epoch_when_all_epochs_ran(how):
    """Keras 3's rule: the best epoch's weights come back also when patience never runs
    out (Keras 2 left the last epoch's)."""
    X, y = _data(40)
    model, snaps = _model(), _Snapshots()
    spec = dict(monitor="loss", patience=100, restore_best_weights=True)
    kw = (dict(callbacks=[EarlyStopping(**spec), snaps]) if how == "object"
          else dict(early_stopping=spec, callbacks=[snaps]))
    hist = model.fit(X, y, optimizer=SGD(lr=50.0), epochs=8, batch_size=40, **kw)
    best = int(np.argmin(hist["loss"]))
    assert hist.stop_reason is None and hist.epochs == 8 and best < 7
    _assert_params(model, snaps.weights[best])


def test_fit_restores_when_another_callback_stops_and_later_callbacks_see_the_epoch():
    X, y = _data(40)
    model, snaps = _model(), _Snapshots()

    class StopAt3(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 3:
                self.model.stop_training = True
    stop = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    hist = model.fit(X, y, optimizer=SGD(lr=50.0), epochs=30, batch_size=40,
                     callbacks=[stop, snaps, StopAt3()])
    best = int(np.argmin(hist["loss"]))
    assert stop.best_epoch == best
    # the snapshots after the stopper saw each epoch's own weights, not the best
    assert len(snaps.weights) == hist.epochs
    if best != hist.epochs - 1:
        assert any((p != q).any() for p, q in zip(snaps.weights[-1], snaps.weights[best]))
    _assert_params(model, snaps.weights[best])


def test_fit_without_restore_keeps_the_last_epoch():
    X, y = _data(40)
    model, snaps = _model(), _Snapshots()
    model.fit(X, y, optimizer=SGD(lr=50.0), epochs=6, batch_size=40, callbacks=[snaps],
              early_stopping=dict(monitor="loss", patience=100, restore_best_weights=False))
    _assert_params(model, snaps.weights[-1])


def test_fit_stopped_by_a_nonfinite_step_restores_the_best_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)) * 10, rng.standard_normal((40, 2)) * 10
    model = nnlib.Sequential([nnlib.Dense(3, 2, dtype=np.float32, random_state=0)])
    snaps = _Snapshots()
    stop = EarlyStopping(monitor="loss", patience=100, restore_best_weights=True)
    # the warning says the best epoch's weights come back at the end
    with pytest.warns(RuntimeWarning, match="non-finite.*until EarlyStopping"):
        # the loss grows from the first epoch and overflows float32 in epoch 4
        hist = model.fit(X, y, loss="squared_error", optimizer=SGD(lr=0.015), epochs=50,
                         batch_size=1, random_state=0, callbacks=[stop, snaps])
    assert hist.stop_reason == "nonfinite" and len(snaps.weights) >= 2
    assert stop.best_epoch == 0
    _assert_params(model, snaps.weights[stop.best_epoch])


# -- model.history (Keras's) -------------------------------------------------------------
# Before (probe34): the History was only fit's return value, so a fit ended by Ctrl-C or
# by a callback's exception lost the record of the epochs it had completed.

@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python-layer"])
def test_an_interrupted_fit_keeps_its_completed_epochs_in_model_history(error, compiled):
    X, y = _data()

    def build():
        model = _model()
        if not compiled:
            model.layers.insert(1, _Identity())
        return model

    def stop_at_2(epoch, logs):
        if epoch == 2:
            raise error("stop")
    model, whole = build(), build()
    want = whole.fit(X, y, optimizer=SGD(lr=0.1), epochs=5, random_state=0)
    assert whole.history is want
    with pytest.raises(error):
        model.fit(X, y, optimizer=SGD(lr=0.1), epochs=5, random_state=0,
                  callbacks=[stop_at_2], validation_split=0.2 if compiled else 0.0)
    assert model.history.epoch == [0, 1, 2]
    if not compiled:
        assert model.history["loss"] == want["loss"][:3]


class _Identity(Layer):
    params = []

    def forward(self, X):
        return X

    def forward_train(self, X):
        return X, lambda dH: (dH, [])


def test_train_on_batch_leaves_model_history_to_the_last_fit():
    X, y = _data()
    model = _model()
    assert model.history is None
    history = model.fit(X, y, epochs=2)
    model.train_on_batch(X, y)
    assert model.history is history and history.epoch == [0, 1]


# callbacks given as an iterator, or one alone. Before (probe34) fit read an iterator
# once to look for batch hooks and handed the loop the exhausted rest: no callback ran
# (a generator of ModelCheckpoints saved nothing, without a word); one Callback object
# alone raised "'EarlyStopping' object is not iterable" where Keras 3 takes it.
CALLBACK_FORMS = {
    "generator": lambda cbs: (cb for cb in cbs),
    "iterator": lambda cbs: iter(cbs),
    "map": lambda cbs: map(lambda cb: cb, cbs),
    "alone": lambda cbs: cbs[0],
}


@pytest.mark.parametrize("form", list(CALLBACK_FORMS), ids=list(CALLBACK_FORMS))
@pytest.mark.parametrize("kind", ["object", "function", "batch-object"])
def test_callbacks_in_any_iterable_or_alone_all_run(form, kind):
    X, y = _data()
    seen = []
    if kind == "function":
        cb = lambda epoch, logs: seen.append(epoch)          # noqa: E731
    elif kind == "object":
        class Epochs(Callback):
            def on_epoch_end(self, epoch, logs=None):
                seen.append(epoch)
        cb = Epochs()
    else:
        class Batches(Callback):
            def on_train_batch_end(self, batch, logs=None):
                seen.append(batch)
        cb = Batches()
    _model().fit(X, y, epochs=2, batch_size=10, callbacks=CALLBACK_FORMS[form]([cb]))
    assert seen == ([0, 1, 2] * 2 if kind == "batch-object" else [0, 1])


# ModelCheckpoint read verbose with int(): "x" said only "invalid literal for int() with
# base 10: 'x'", None "int() argument must be a string...", -1 was taken (probe35). Both
# callbacks now check it alike.
@pytest.mark.parametrize("make", [
    lambda v: ModelCheckpoint("m.npz", verbose=v), lambda v: EarlyStopping(verbose=v)],
    ids=["ModelCheckpoint", "EarlyStopping"])
def test_a_callbacks_verbose_is_checked_and_named(make):
    for bad, error in (("x", TypeError), (None, TypeError), (-1, ValueError),
                       (1.5, TypeError)):
        with pytest.raises(error, match="verbose must be"):
            make(bad)
    assert make(True).verbose == 1 and make(2).verbose == 2


# Keras 3's MonitorCallback._set_monitor_op in mode "auto": "loss" falls, a metric goes
# its own direction, and one it cannot tell raises ValueError (pass mode). Before:
# every name not ending in accuracy/auc was minimized, a user's F1 or recall too.
AUTO_MODES = [("loss", False), ("val_loss", False), ("accuracy", True),
              ("val_accuracy", True), ("val_auc", True), ("mse", False),
              ("val_mae", False), ("val_hinge_loss", False), ("val_acc", True)]


@pytest.mark.parametrize("monitor,grows", AUTO_MODES, ids=[m[0] for m in AUTO_MODES])
def test_auto_mode_knows_the_direction_of_nnlibs_names(monitor, grows):
    assert EarlyStopping(monitor=monitor).mode_max is grows
    assert ModelCheckpoint("m.npz", monitor=monitor).mode_max is grows


# Keras 3's own metrics declare their direction (``_direction``), which its mode
# "auto" follows for a compiled metric; Keras code monitoring "val_precision" carries no
# mode. Before: a ValueError here for every one of them.
KERAS_NAMES = [("val_precision", True), ("recall", True), ("precision_1", True),
               ("val_f1_score", True), ("val_r2_score", True),
               ("val_mean_squared_error", False), ("val_binary_crossentropy", False),
               ("hinge", False), ("root_mean_squared_error_2", False),
               # a second AUC() of a Keras session logs as "auc_1"; KLDivergence and
               # Poisson wrap Keras loss functions ("down"), as compile's "mape",
               # "msle" and "bce" do; the IoUs log under their classes' snake case
               ("val_auc_1", True), ("auc_12", True), ("val_kl_divergence", False),
               ("poisson", False), ("val_mape", False), ("msle", False),
               ("val_bce_1", False), ("val_binary_io_u", True), ("mean_io_u_1", True)]


@pytest.mark.parametrize("monitor,grows", KERAS_NAMES, ids=[m[0] for m in KERAS_NAMES])
def test_auto_mode_knows_the_direction_of_kerass_metric_names(monitor, grows):
    assert EarlyStopping(monitor=monitor).mode_max is grows
    assert ModelCheckpoint("m.npz", monitor=monitor, save_best_only=True).mode_max is grows


@pytest.mark.parametrize("monitor", ["val_precision_at", "f1", "precision_"])
def test_auto_mode_does_not_guess_from_a_part_of_a_kerass_name(monitor):
    with pytest.raises(ValueError, match="mode='auto' cannot tell"):
        EarlyStopping(monitor=monitor)


_SEPARABLE = np.random.default_rng(0).normal(size=(60, 3))


def precision(y_true, y_pred):
    """Class 1's precision (0 when nothing is predicted as 1)."""
    said = y_pred.argmax(axis=1) == 1
    return float(np.mean(y_true[said] == 1)) if said.any() else 0.0


def test_a_checkpoint_on_a_kerass_metric_name_keeps_its_best_epoch(tmp_path):
    X = _SEPARABLE
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
    ckpt = ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_precision",
                           save_best_only=True)
    history = model.fit(X, y, optimizer=SGD(lr=0.05), epochs=6,
                        validation_split=0.3, metrics=[precision], callbacks=[ckpt])
    values = history["val_precision"]
    assert min(values) < max(values) == ckpt.best        # it grows: the largest kept


def test_a_checkpoint_saving_every_epoch_needs_no_direction(tmp_path):
    # without save_best_only the monitor's direction is not used: a user metric of
    # unknown direction is no error (before: a ValueError at construction; Keras 3
    # raises at the first epoch end, after an epoch trained)
    X = _SEPARABLE
    y = (X[:, 0] > 0).astype(np.int64)
    ckpt = ModelCheckpoint(str(tmp_path / "e{epoch}-{val_f1:.2f}.npz"), monitor="val_f1")
    assert ckpt.mode_max is None

    def f1(y_true, y_pred):
        return float(np.mean(y_pred.argmax(axis=1) == y_true))

    model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
    model.fit(X, y, epochs=2, validation_split=0.25, metrics=[f1], callbacks=[ckpt])
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["e1", "e2"]
    # best-only needs the direction: refused at construction (before any epoch), and
    # at the first save when turned on afterwards
    with pytest.raises(ValueError, match="mode='auto' cannot tell whether 'val_f1'"):
        ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_f1", save_best_only=True)
    ckpt.save_best_only = True
    with pytest.raises(ValueError, match="mode='auto' cannot tell whether 'val_f1'"):
        model.fit(X, y, epochs=1, validation_split=0.25, metrics=[f1], callbacks=[ckpt])


@pytest.mark.parametrize("make", [lambda m, **kw: EarlyStopping(monitor=m, **kw),
                                  lambda m, **kw: ModelCheckpoint("m.npz", monitor=m,
                                                                  save_best_only=True, **kw)],
                         ids=["EarlyStopping", "ModelCheckpoint"])
def test_auto_mode_refuses_a_metric_it_cannot_tell_as_keras(make):
    with pytest.raises(ValueError, match="mode='auto' cannot tell whether 'val_f1' "
                                         "should fall or grow"):
        make("val_f1")
    assert make("val_f1", mode="max").mode_max and not make("val_f1", mode="min").mode_max


def test_a_keras_acc_monitor_is_named_as_not_logged_not_as_of_unknown_direction():
    # Keras 3 logs compile(metrics=["acc"]) as "acc" and knows it grows; nnlib logs it
    # as "accuracy". Before: EarlyStopping(monitor="val_acc") raised "mode='auto'
    # cannot tell whether 'val_acc' should fall or grow" -- the direction was never in
    # doubt, the name was -- where fit said "monitors 'val_acc', which fit does not log"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
    with pytest.raises(ValueError, match="monitors 'val_acc', which fit does not log; it "
                                         "logs .*'val_accuracy'"):
        model.fit(X, y, epochs=2, validation_split=0.25, metrics=["acc"],
                  early_stopping=EarlyStopping(monitor="val_acc", patience=1))


# ---- restore into a model whose arrays changed (session 38's probe) -----------------
class _ReplaceAtEpoch(Callback):
    """Replaces the model's arrays (``change(model)``) as epoch ``at`` ends: the fit's
    later epochs refuse that, but after the last one only the restore sees it."""

    def __init__(self, at, change):
        super().__init__()
        self.at, self.change = at, change

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            self.change(self.model)


def _fit_replacing(change, how, epochs=4):
    X, y = _data()
    model = _model()
    stop = EarlyStopping(monitor="loss", patience=100, restore_best_weights=True,
                         mode="max")                 # the best is epoch 0's
    replace = _ReplaceAtEpoch(epochs - 1, change)
    kw = (dict(callbacks=[replace, stop]) if how == "callback"
          else dict(callbacks=[replace], early_stopping=stop))
    return model, stop, lambda: model.fit(X, y, optimizer=SGD(lr=0.1), epochs=epochs, **kw)


@pytest.mark.parametrize("how", ["callback", "early_stopping="])
def test_the_best_weights_go_into_the_arrays_the_model_holds_at_the_end(how):
    # before: early_stopping= restored into the arrays the run trained, which a
    # last-epoch callback had replaced in the model: the model kept the new arrays'
    # values, the best weights went nowhere (the callback form already wrote model.params)
    def replace_last_W(model):
        model.layers[-1].W = np.full_like(model.layers[-1].W, 7.0)

    model, stop, fit = _fit_replacing(replace_last_W, how)
    fit()
    for p, best in zip(model.params, stop.best_params):
        np.testing.assert_array_equal(p, best)
    assert not (model.layers[-1].W == 7.0).any()


@pytest.mark.parametrize("how", ["callback", "early_stopping="])
@pytest.mark.parametrize("change", ["wider-layers", "bias-reshaped"])
def test_a_restore_into_arrays_of_other_shapes_is_refused_and_restores_none(how, change):
    # before: NumPy's "could not broadcast input array from shape (3,4) into shape
    # (3,5)" after the arrays before it were written, or, for shapes that broadcast
    # (a bias made (1, n)), a silent restore into the reshaped array
    def wider(model):
        n_in, n_out = model.layers[0].n_in, model.layers[-1].n_out
        model.layers[:] = [nnlib.Dense(n_in, 7, random_state=5),
                           nnlib.Dense(7, n_out, random_state=6)]

    def reshaped(model):
        model.layers[0].b = model.layers[0].b.reshape(1, -1).copy()

    after_change = []

    def change_and_keep(model):
        {"wider-layers": wider, "bias-reshaped": reshaped}[change](model)
        after_change.extend(p.copy() for p in model.params)

    model, stop, fit = _fit_replacing(change_and_keep, how)
    with pytest.raises(ValueError, match=r"EarlyStopping.restore: params\[(0|1)\] has "
                                         r"shape .* where the best epoch's copy has "
                                         r".*; nothing was restored"):
        fit()
    assert len(after_change) == len(model.params)
    for p, q in zip(model.params, after_change):    # none written, not even params[0]
        np.testing.assert_array_equal(p, q)


def test_restore_by_hand_checks_count_and_shapes_before_writing():
    stop = EarlyStopping(monitor="loss", restore_best_weights=True)
    w = [np.ones((2, 3)), np.ones(3)]
    stop.update(0, {"loss": 1.0}, w)
    for other, what in (([np.zeros((4, 2, 3)), np.zeros(3)], r"params\[0\] has shape "
                                                             r"\(4, 2, 3\)"),
                        ([np.zeros((2, 3))], r"got 1 arrays; the best epoch's weights "
                                             r"are 2"),
                        ([np.zeros((2, 3)), np.zeros(3), np.zeros(1)], r"got 3 arrays")):
        before = [a.copy() for a in other]
        with pytest.raises(ValueError, match=what):
            stop.restore(other)                 # before: broadcast, or a partial restore
        for a, b in zip(other, before):
            np.testing.assert_array_equal(a, b)
    stop.restore([np.zeros((2, 3)), np.zeros(3)])   # matching arrays restore as before
