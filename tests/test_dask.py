"""nnlib on dask.distributed (the ``dask`` extra): data-parallel training equals
single-process ``fit`` (with Dropout layers too: every row keeps the mask ``fit`` draws
for it), model averaging learns as well and is reproducible with dropout, the
estimators train out of core with dask-ml and search on the cluster, and a worker
killed mid-training loses nothing (dropout step counts included). One real LocalCluster
of 2 worker processes (1 thread each) for the module.
"""
import os
import pickle
import signal
import warnings

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import nnlib  # noqa: E402
from nnlib.dask import (DataParallelRun, WorkerLostError, fit_data_parallel,  # noqa: E402
                        fit_model_averaging)
from nnlib.dask._worker import shard_dropout_seed  # noqa: E402
from nnlib.exceptions import NonFiniteError, ShapeError  # noqa: E402
from nnlib.layers import Dense, Dropout, Layer  # noqa: E402
from nnlib.optim import SGD, Adam  # noqa: E402

# The estimators' short fits here stop at max_iter on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::nnlib.exceptions.ConvergenceWarning")

# Each worker gets this much memory; the out-of-core test trains on an array larger
# than both together. A worker that imports dask-ml (scikit-learn, pandas) sits near
# 300-450 MB before holding any data.
WORKER_MEMORY = 700e6


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       memory_limit=int(WORKER_MEMORY),
                                       dashboard_address=None, silence_logs=50)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def cluster_of_two(client):
    """The client, after any worker a previous test killed has been restarted."""
    client.wait_for_workers(2, timeout=60)
    return client


def _model(sizes=(6, 12, 3), acts=("tanh", "identity"), seed=0):
    return nnlib.Sequential([nnlib.Dense(a, b, act, random_state=seed + i)
                             for i, (a, b, act) in enumerate(zip(sizes[:-1], sizes[1:],
                                                                 acts))])


def _dropout_model(seed=0, hidden_seed=None):
    """6 -> 12 -> 3 with dropout on the input (a seed of its own) and on the hidden
    layer (the fit's seed unless ``hidden_seed``)."""
    return nnlib.Sequential([Dropout(0.1, random_state=50), _model(seed=seed).layers[0],
                             Dropout(0.5, random_state=hidden_seed),
                             _model(seed=seed).layers[1]])


def _without_dropout(model):
    """A Dense-only copy of ``model``'s weights (the model at inference)."""
    out = nnlib.Sequential([Dense(l.n_in, l.n_out, l.activation, init="zeros")
                            for l in model.layers if isinstance(l, Dense)])
    for p, q in zip(out.params, model.params):
        p[...] = q
    return out


def _drop_steps(model):
    return [l.step for l in model.layers if isinstance(l, Dropout)]


def _data(n=600, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(X[:, :c] + 0.3 * rng.normal(size=(n, c)), axis=1).astype(np.int64)
    return X, y


def _max_diff(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(a.params, b.params))


def _kill_one_worker(client, index=0):
    """SIGKILL one worker process (the nanny starts a new one)."""
    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[index]], signal.SIGKILL)


# --------------------------------------------------------------------------------------
# 1. synchronous data parallel == single process
# --------------------------------------------------------------------------------------

DP_CASES = [
    # id, optimizer, loss, l2, l2_per_batch, batch
    ("sgd-momentum-l2", lambda: SGD(lr=0.05, momentum=0.9), "softmax_cross_entropy",
     1e-3, False, 64),
    ("adam-l2", lambda: Adam(lr=0.01), "softmax_cross_entropy", 1e-3, False, 50),
    ("adam-squared-l2-per-batch", lambda: Adam(lr=0.01), "squared_error", 0.1, True, 64),
]


@pytest.mark.parametrize("name, make_opt, loss, l2, per_batch, batch", DP_CASES,
                         ids=[c[0] for c in DP_CASES])
def test_data_parallel_equals_single_process(cluster_of_two, name, make_opt, loss, l2,
                                             per_batch, batch):
    Xn, yn = _data()
    if loss == "squared_error":
        yn = np.eye(3)[yn] + 0.1 * Xn[:, :3]
    # uneven blocks: a global batch straddles them in every way
    X = da.from_array(Xn, chunks=((250, 200, 150), (6,)))
    y = da.from_array(yn, chunks=((250, 200, 150),) + yn.shape[1:])
    dp, ref = _model(), _model()
    o_dp, o_ref = make_opt(), make_opt()
    h = fit_data_parallel(dp, X, y, client=cluster_of_two, loss=loss, optimizer=o_dp,
                          epochs=3, batch_size=batch, random_state=7, l2=l2,
                          l2_per_batch=per_batch)
    h_ref = ref.fit(Xn, yn, loss=loss, optimizer=o_ref, epochs=3, batch_size=batch,
                    random_state=7, l2=l2, l2_per_batch=per_batch)
    steps = 3 * -(-600 // batch)
    assert o_dp.t == o_ref.t == steps
    assert _max_diff(dp, ref) < 1e-12
    assert max(float(np.abs(a - b).max()) for a, b in
               zip(o_dp.state_arrays(dp.params), o_ref.state_arrays(ref.params))) < 1e-12
    np.testing.assert_allclose(h["loss"], h_ref["loss"], rtol=1e-12)
    # the model moved: equality is not that of two untouched models
    assert _max_diff(dp, _model()) > 1e-2


def test_data_parallel_pieces_equal_single_process(cluster_of_two):
    Xn, yn = _data(n=300)
    pieces = [(Xn[:170], yn[:170]), (Xn[170:], yn[170:])]
    dp, ref = _model(), _model()
    fit_data_parallel(dp, pieces, client=cluster_of_two, optimizer=Adam(lr=0.01),
                      epochs=2, batch_size=32, random_state=3, l2=1e-2)
    ref.fit(Xn, yn, optimizer=Adam(lr=0.01), epochs=2, batch_size=32, random_state=3,
            l2=1e-2)
    assert _max_diff(dp, ref) < 1e-12


@pytest.mark.parametrize("name, fit", [("data_parallel", fit_data_parallel),
                                       ("averaging", fit_model_averaging)],
                         ids=["data_parallel", "averaging"])
def test_cluster_fits_take_batch_size_none_as_fit_does(cluster_of_two, name, fit):
    # Sequential.fit(batch_size=None) takes Keras's default, 32 rows; the cluster fits
    # refused None with a TypeError
    Xn, yn = _data(n=100)
    X, y = da.from_array(Xn, chunks=50), da.from_array(yn, chunks=50)
    none, given = _model(), _model()
    h = fit(none, X, y, client=cluster_of_two, optimizer=SGD(lr=0.1), epochs=2,
            batch_size=None, random_state=3)
    h32 = fit(given, X, y, client=cluster_of_two, optimizer=SGD(lr=0.1), epochs=2,
              batch_size=32, random_state=3)
    assert h.params["batch_size"] == 32
    assert h["loss"] == h32["loss"] and _max_diff(none, given) == 0.0
    if fit is fit_data_parallel:        # and fit's own None: the same batches
        ref = _model()
        ref.fit(Xn, yn, optimizer=SGD(lr=0.1), epochs=2, batch_size=None, random_state=3)
        assert _max_diff(none, ref) < 1e-12


def test_data_parallel_step_time_is_recorded_and_run_closes(cluster_of_two):
    Xn, yn = _data(n=200)
    X, y = da.from_array(Xn, chunks=100), da.from_array(yn, chunks=100)
    model = _model()
    with DataParallelRun(model, X, y, client=cluster_of_two, batch_size=50,
                         random_state=0) as run:
        result = run.run_epoch()
        with pytest.raises(RuntimeError, match="in use"):       # one run per model
            model.fit(Xn, yn, epochs=1)
    assert result.steps == 4 and result.seen == 200 and result.fault is None
    assert len(run.step_seconds) == 4 and all(s > 0 for s in run.step_seconds)
    with pytest.raises(RuntimeError, match="closed"):
        run.run_epoch()


class _Hooks(nnlib.callbacks.Callback):
    """Records the epoch-level hooks and what they were given."""

    def on_train_begin(self, logs=None):
        self.calls = [("train_begin", self.params["epochs"], self.model is not None)]

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", sorted(logs)))


def test_data_parallel_takes_fits_callback_objects(cluster_of_two, tmp_path):
    """Callback objects, not only plain callables: EarlyStopping with
    restore_best_weights, ModelCheckpoint and the epoch hooks act as in fit on the
    gathered data."""
    Xn, yn = _data(n=300)
    X, y = da.from_array(Xn, chunks=150), da.from_array(yn, chunks=150)

    def callbacks(name):
        # epoch 0 improves, epoch 1 cannot by 10: stop there, epoch 0's weights back
        return [_Hooks(), nnlib.callbacks.EarlyStopping(monitor="loss", min_delta=10.0,
                                                        patience=1,
                                                        restore_best_weights=True),
                nnlib.callbacks.ModelCheckpoint(str(tmp_path / name), monitor="loss")]
    dp, ref = _model(), _model()
    cb_dp, cb_ref = callbacks("dp.npz"), callbacks("ref.npz")
    h = fit_data_parallel(dp, X, y, client=cluster_of_two, optimizer=SGD(lr=0.1),
                          epochs=5, batch_size=50, random_state=3, callbacks=cb_dp)
    h_ref = ref.fit(Xn, yn, optimizer=SGD(lr=0.1), epochs=5, batch_size=50,
                    random_state=3, callbacks=cb_ref)
    assert h.epoch == h_ref.epoch == [0, 1]
    assert h.stop_reason == h_ref.stop_reason == "early_stopping"
    assert cb_dp[0].calls[1:] == [
        ("epoch_begin", 0), ("epoch_end", 0, ["loss", "lr", "time"]),
        ("epoch_begin", 1), ("epoch_end", 1, ["loss", "lr", "time"]),
        ("train_end", ["loss", "lr", "time"])]
    assert cb_dp[0].calls[0] == ("train_begin", 5, True)
    assert cb_dp[1].stopped_epoch == cb_ref[1].stopped_epoch == 1
    assert _max_diff(dp, ref) < 1e-12
    assert _max_diff(dp, _model()) > 1e-3                # epoch 0's weights, trained
    saved = nnlib.load(str(tmp_path / "dp.npz"))     # epoch 1's, not restored
    assert _max_diff(saved, dp) > 0


CLUSTER_FITS = [("data_parallel", fit_data_parallel), ("averaging", fit_model_averaging)]


@pytest.mark.parametrize("name, fit", CLUSTER_FITS, ids=[c[0] for c in CLUSTER_FITS])
def test_cluster_history_has_kerass_params_and_model(cluster_of_two, name, fit):
    # Keras's History.params and History.model, as fit's History has them ({} and None
    # before: the cluster runs built their History without them)
    Xn, yn = _data(n=100)
    X, y = da.from_array(Xn, chunks=50), da.from_array(yn, chunks=50)
    model, opt = _model(), SGD(lr=0.1)
    seen = {}

    class Params(nnlib.callbacks.Callback):
        def set_params(self, params):
            seen.update(params)
    h = fit(model, X, y, client=cluster_of_two, optimizer=opt, epochs=2, batch_size=25,
            callbacks=[Params()])
    assert h.model is model and model.history is h
    assert h.params == seen == {"verbose": 0, "epochs": 2, "batch_size": 25,
                                "steps": None, "metrics": ["loss"], "optimizer": opt}


def test_cluster_runs_refuse_batch_hooks_and_unlogged_monitors(cluster_of_two):
    Xn, yn = _data(n=100)
    X, y = da.from_array(Xn, chunks=50), da.from_array(yn, chunks=50)

    class PerBatch(nnlib.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass
    for fit in (fit_data_parallel, fit_model_averaging):
        with pytest.raises(TypeError, match="PerBatch overrides a batch hook"):
            fit(_model(), X, y, client=cluster_of_two, callbacks=[PerBatch()])
        # Keras's int save_freq counts batches: named, with the per-epoch way out
        with pytest.raises(TypeError, match=r"ModelCheckpoint\(save_freq=3\) saves every "
                                            r"3 batches.*period=N for every N epochs"):
            fit(_model(), X, y, client=cluster_of_two, callbacks=[
                nnlib.callbacks.ModelCheckpoint("m.npz", save_freq=3)])
        with pytest.raises(ValueError, match="monitors 'val_loss'"):
            fit(_model(), X, y, client=cluster_of_two,
                callbacks=[nnlib.callbacks.EarlyStopping()])
        with pytest.raises(TypeError, match="Callback objects or callables"):
            fit(_model(), X, y, client=cluster_of_two, callbacks=[3])


def test_model_averaging_takes_callback_objects(cluster_of_two):
    Xn, yn = _data(n=200)
    X, y = da.from_array(Xn, chunks=100), da.from_array(yn, chunks=100)
    hooks = _Hooks()

    class StopAfter1(nnlib.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 1
    h = fit_model_averaging(_model(), X, y, client=cluster_of_two, epochs=4,
                            batch_size=25, callbacks=[hooks, StopAfter1()])
    assert h.epoch == [0, 1] and h.stop_reason == "callback"
    assert [c[:2] for c in hooks.calls[1:]] == [("epoch_begin", 0), ("epoch_end", 0),
                                                ("epoch_begin", 1), ("epoch_end", 1),
                                                ("train_end", ["loss", "lr", "time"])]


def test_cluster_runs_own_the_model_as_fit_does(cluster_of_two, tmp_path):
    """Before: the model kept the previous fit's optimizer and loss (ModelCheckpoint's
    include_optimizer saved that fit's SGD, train_on_batch went on with it), and a run
    refused because another thread's fit held the model had already cleared that fit's
    stop_training (the fit went on past its stop)."""
    import threading
    from nnlib.exceptions import ConcurrentUseError
    Xn, yn = _data(n=200)
    X, y = da.from_array(Xn, chunks=100), da.from_array(yn, chunks=100)
    for fit in (fit_data_parallel, fit_model_averaging):
        model = _model()
        model.fit(Xn, yn, optimizer=SGD(lr=0.1), epochs=1)
        adam = Adam(lr=0.01)
        path = tmp_path / f"{fit.__name__}.npz"
        fit(model, X, y, client=cluster_of_two, loss="hinge_loss", optimizer=adam,
            epochs=1, batch_size=50,
            callbacks=[nnlib.callbacks.ModelCheckpoint(str(path),
                                                       include_optimizer=True)])
        assert model.optimizer is adam and model.loss == "hinge_loss"
        saved = nnlib.load(str(path)).optimizer
        assert isinstance(saved, Adam) and saved.t == adam.t > 0

        refused = []

        class StopAndIntrude(nnlib.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                self.model.stop_training = True

                def intrude():
                    try:
                        fit(self.model, X, y, client=cluster_of_two, epochs=1,
                            batch_size=50)
                    except ConcurrentUseError:
                        refused.append(epoch)
                thread = threading.Thread(target=intrude)
                thread.start()
                thread.join()
        history = model.fit(Xn, yn, epochs=3, callbacks=[StopAndIntrude()])
        assert refused == [0] and history.epoch == [0]


def test_data_parallel_bad_input(cluster_of_two):
    Xn, yn = _data(n=100)
    model = _model()
    with pytest.raises(TypeError, match="dask arrays"):
        fit_data_parallel(model, Xn, yn, client=cluster_of_two)
    with pytest.raises(ShapeError, match="rows"):
        fit_data_parallel(model, da.from_array(Xn), da.from_array(yn[:90]),
                          client=cluster_of_two)
    bad = Xn.copy()
    bad[73, 2] = np.nan
    with pytest.raises(NonFiniteError, match="shard that starts at row 50"):
        fit_data_parallel(model, da.from_array(bad, chunks=50), da.from_array(yn, chunks=50),
                          client=cluster_of_two)
    # a bad label or target is named as a bad X row is: "y[23]" alone points at a
    # good label of the data (the bad one is row 73)
    bad_y = yn.copy()
    bad_y[73] = 7
    with pytest.raises(nnlib.LabelError,
                       match=r"y\[23\] = 7 .*shard that starts at row 50"):
        fit_data_parallel(model, da.from_array(Xn, chunks=50),
                          da.from_array(bad_y, chunks=50), client=cluster_of_two)
    bad_t = Xn[:, :3].copy()
    bad_t[73, 1] = np.inf
    with pytest.raises(NonFiniteError, match="shard that starts at row 50"):
        fit_model_averaging(model, da.from_array(Xn, chunks=50),
                            da.from_array(bad_t, chunks=50), loss="squared_error",
                            client=cluster_of_two)
    with pytest.raises(TypeError, match=r"layers\[1\] is Doubler, a layer that trains "
                                        r"through Python's per-batch path"):
        fit_data_parallel(nnlib.Sequential([Dense(6, 4), Doubler(), Dense(4, 3)]),
                          da.from_array(Xn), da.from_array(yn), client=cluster_of_two)
    with pytest.raises(TypeError, match=r"layers\[0\] is TracedDense, a layer"):
        fit_model_averaging(nnlib.Sequential([TracedDense(6, 3)]), da.from_array(Xn),
                            da.from_array(yn), client=cluster_of_two)
    with pytest.raises(ValueError, match="batch_size"):
        fit_data_parallel(model, da.from_array(Xn), da.from_array(yn),
                          client=cluster_of_two, batch_size=0)


def test_parameter_groups_data_parallel_follows_them_averaging_refuses(cluster_of_two):
    """Groups with their own hyper-parameters (torch's shape): the data-parallel run
    steps with the optimizer itself and equals fit; model averaging's replicas take one
    set, so it refuses groups that differ (before: it trained every array with the
    first group's, silently)."""
    Xn, yn = _data(n=100)

    def setup():
        model = _model()
        p = model.params
        return model, SGD([{"params": p[:2], "lr": 0.0},
                           {"params": p[2:], "lr": 0.05, "momentum": 0.9}], lr=0.5)
    model, opt = setup()
    fit_data_parallel(model, da.from_array(Xn, chunks=50), da.from_array(yn, chunks=50),
                      client=cluster_of_two, optimizer=opt, batch_size=20, epochs=2,
                      shuffle=False)
    ref, ref_opt = setup()
    ref.fit(Xn, yn, optimizer=ref_opt, batch_size=20, epochs=2, shuffle=False)
    for got, want in zip(model.params, ref.params):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.params[0], _model().params[0])    # lr 0
    model, opt = setup()
    with pytest.raises(ValueError, match="model averaging steps every replica's arrays "
                                         "with one set of hyper-parameters"):
        fit_model_averaging(model, da.from_array(Xn, chunks=50),
                            da.from_array(yn, chunks=50), client=cluster_of_two,
                            optimizer=opt)


@pytest.mark.parametrize("fit", [fit_data_parallel, fit_model_averaging],
                         ids=["data-parallel", "averaging"])
def test_arrays_left_out_of_the_optimizer_are_refused_as_fit_refuses_them(
        cluster_of_two, fit):
    # torch's way to freeze a layer; Sequential.fit refuses it (naming the lr=0 group
    # that freezes), and these runs trained the left-out arrays with the defaults
    Xn, yn = _data(n=100)
    model = _model()
    before = [p.copy() for p in model.params]
    opt = Adam(model.params[2:], lr=0.01)
    with pytest.raises(ValueError, match=r"params\[0\] .*params\[1\] .* are in no "
                                         r"parameter group"):
        fit(model, da.from_array(Xn, chunks=50), da.from_array(yn, chunks=50),
            client=cluster_of_two, optimizer=opt)
    assert opt.t == 0
    for p, q in zip(model.params, before):
        np.testing.assert_array_equal(p, q)


class Doubler(Layer):
    """A Python layer (the per-batch path): the workers cannot run it."""

    def forward(self, X, n_threads=None):
        return 2 * np.asarray(X)

    def forward_train(self, X):
        return 2 * np.asarray(X), lambda dH: (2 * dH, [])


class TracedDense(Dense):
    """A Dense subclass with its own forward: trained in Python, refused too."""

    def forward(self, X, n_threads=None):
        return super().forward(X, n_threads)


DROPOUT_DP_CASES = [("sgd-momentum-l2", lambda: SGD(lr=0.05, momentum=0.9), 64),
                    ("adam-l2", lambda: Adam(lr=0.01), 50)]


@pytest.mark.parametrize("name, make_opt, batch", DROPOUT_DP_CASES,
                         ids=[c[0] for c in DROPOUT_DP_CASES])
def test_data_parallel_with_dropout_equals_single_process(cluster_of_two, name, make_opt,
                                                          batch):
    """Each worker draws, for the rows of the global batch it holds, the masks of their
    positions in that batch: the run is single-process ``fit`` with the same seed."""
    Xn, yn = _data()
    X = da.from_array(Xn, chunks=((250, 200, 150), (6,)))
    y = da.from_array(yn, chunks=((250, 200, 150),))
    dp, ref = _dropout_model(), _dropout_model()
    o_dp, o_ref = make_opt(), make_opt()
    h = fit_data_parallel(dp, X, y, client=cluster_of_two, optimizer=o_dp, epochs=3,
                          batch_size=batch, random_state=7, l2=1e-3)
    h_ref = ref.fit(Xn, yn, optimizer=o_ref, epochs=3, batch_size=batch, random_state=7,
                    l2=1e-3)
    steps = 3 * -(-600 // batch)
    assert o_dp.t == o_ref.t == steps
    assert _drop_steps(dp) == _drop_steps(ref) == [steps, steps]
    assert _max_diff(dp, ref) < 1e-12
    assert max(float(np.abs(a - b).max()) for a, b in
               zip(o_dp.state_arrays(dp.params), o_ref.state_arrays(ref.params))) < 1e-12
    np.testing.assert_allclose(h["loss"], h_ref["loss"], rtol=1e-12)
    # the dropout mattered: without it (or with other masks) the weights differ
    plain = _model()
    plain.fit(Xn, yn, optimizer=make_opt(), epochs=3, batch_size=batch, random_state=7,
              l2=1e-3)
    assert _max_diff(dp, plain) > 1e-3
    other_masks = _dropout_model(hidden_seed=8)
    other_masks.fit(Xn, yn, optimizer=make_opt(), epochs=3, batch_size=batch,
                    random_state=7, l2=1e-3)
    assert _max_diff(other_masks, dp) > 1e-3
    # predict skips dropout: the Dense layers alone, bit for bit
    np.testing.assert_array_equal(dp.predict(Xn), _without_dropout(dp).predict(Xn))


# --------------------------------------------------------------------------------------
# 2. model averaging
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("make_opt", [lambda: SGD(lr=0.05, momentum=0.9),
                                      lambda: Adam(lr=0.01)], ids=["sgd-momentum", "adam"])
def test_model_averaging_of_identical_shards_is_single_process(cluster_of_two, make_opt):
    # two workers with the same rows in the same order compute the same copies: their
    # average (parameters, optimizer state, t) must be exactly one process's fit
    Xn, yn = _data(n=200)
    ma, ref = _model(), _model()
    o_ma, o_ref = make_opt(), make_opt()
    fit_model_averaging(ma, [(Xn, yn), (Xn, yn)], client=cluster_of_two, optimizer=o_ma,
                        epochs=2, batch_size=16, average_every=5, shuffle=False, l2=1e-3)
    ref.fit(Xn, yn, optimizer=o_ref, epochs=2, batch_size=16, shuffle=False, l2=1e-3)
    assert o_ma.t == o_ref.t == 2 * 13
    assert _max_diff(ma, ref) < 1e-12
    for a, b in zip(o_ma.state_arrays(ma.params), o_ref.state_arrays(ref.params)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("average_every", [None, 10], ids=["each-epoch", "every-10-steps"])
def test_model_averaging_accuracy_near_single_process(cluster_of_two, average_every):
    X, y = nnlib.datasets.load_digits()
    X = X / 16.0
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    sizes, acts = (64, 32, 10), ("relu", "identity")
    ma, ref = _model(sizes, acts), _model(sizes, acts)
    Xd = da.from_array(Xtr, chunks=(700, 64))
    yd = da.from_array(ytr, chunks=700)
    h = fit_model_averaging(ma, Xd, yd, client=cluster_of_two,
                            optimizer=SGD(lr=0.05, momentum=0.9), epochs=8, batch_size=16,
                            average_every=average_every, random_state=0)
    ref.fit(Xtr, ytr, optimizer=SGD(lr=0.05, momentum=0.9), epochs=8, batch_size=16,
            random_state=0)
    acc_ma, acc_ref = ma.evaluate(Xte, yte)[1], ref.evaluate(Xte, yte)[1]
    chance = 0.1
    print(f"held-out accuracy: model averaging {acc_ma:.3f}, one process {acc_ref:.3f}")
    assert acc_ref > 0.85
    # each worker sees half the data between averages: a little worse at most
    assert acc_ma > max(acc_ref - 0.06, 0.8), (acc_ma, acc_ref)
    assert h["loss"][-1] < h["loss"][0] and acc_ma > 5 * chance


def test_model_averaging_with_dropout_is_reproducible(cluster_of_two):
    Xn, yn = _data(n=400)
    X = da.from_array(Xn, chunks=((150, 100, 150), (6,)))     # blocks placed anyhow
    y = da.from_array(yn, chunks=((150, 100, 150),))
    kw = dict(client=cluster_of_two, epochs=2, batch_size=16, average_every=5, l2=1e-3)
    runs = []
    for seed in (3, 3, 4):
        model = _dropout_model()
        fit_model_averaging(model, X, y, optimizer=Adam(lr=0.01), random_state=seed, **kw)
        runs.append(model)
    assert _max_diff(runs[0], runs[1]) == 0.0
    assert _max_diff(runs[0], runs[2]) > 1e-3
    # shards of 150 and 250 rows (balanced cuts at block boundaries); each round
    # advances the client's step counts by the longest local run, 16 steps per epoch on
    # the larger shard (so no worker reuses a count in the next round)
    assert _drop_steps(runs[0]) == [32, 32]
    np.testing.assert_array_equal(runs[0].predict(Xn),
                                  _without_dropout(runs[0]).predict(Xn))


def test_model_averaging_dropout_streams_are_the_documented_per_worker_seeds(
        cluster_of_two):
    """Two workers with the same rows, one round: the average is the mean of two
    single-process fits whose Dropout seeds are ``shard_dropout_seed(seed, k)``, and
    their masks differ (independent streams)."""
    Xn, yn = _data(n=120)
    ma = _dropout_model(hidden_seed=11)
    fit_model_averaging(ma, [(Xn, yn), (Xn, yn)], client=cluster_of_two,
                        optimizer=SGD(lr=0.05), epochs=1, batch_size=16,
                        average_every=None, shuffle=False)
    copies = []
    for k in (0, 1):
        m = _dropout_model()
        m.layers[0] = Dropout(0.1, random_state=shard_dropout_seed(50, k))
        m.layers[2] = Dropout(0.5, random_state=shard_dropout_seed(11, k))
        m.fit(Xn, yn, optimizer=SGD(lr=0.05), epochs=1, batch_size=16, shuffle=False)
        copies.append(m)
    assert _max_diff(copies[0], copies[1]) > 1e-3
    for p, a, b in zip(ma.params, copies[0].params, copies[1].params):
        np.testing.assert_allclose(p, 0.5 * a + 0.5 * b, rtol=0, atol=1e-15)
    assert _drop_steps(ma) == [8, 8]


# --------------------------------------------------------------------------------------
# 2b. a non-finite step names its cause, as a local fit does (nnlib._divergence)
# --------------------------------------------------------------------------------------

def _cluster_fault(client, fit, model, Xn, yn, lr, **kw):
    """The one non-finite warning of a 2-epoch cluster fit, and its history."""
    X, y = da.from_array(Xn, chunks=len(Xn) // 2), da.from_array(yn, chunks=len(yn) // 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit(model, X, y, client=client, optimizer=SGD(lr=lr), epochs=2,
                      batch_size=4, **kw)
    messages = [str(w.message) for w in caught if "non-finite" in str(w.message)]
    assert history.stop_reason == "nonfinite" and len(messages) == 1, messages
    assert history.nonfinite["cause"] in messages[0]
    return messages[0], history


@pytest.mark.parametrize("dropout", [False, True], ids=["dense", "dropout"])
@pytest.mark.parametrize("name, fit", CLUSTER_FITS, ids=[c[0] for c in CLUSTER_FITS])
def test_weights_given_too_large_are_named_not_the_learning_rate(cluster_of_two, name,
                                                                  fit, dropout):
    # a worker's step found them (its cause_of_step, with each row's dropout masks):
    # the cluster run said "lower the learning rate?", which cannot help
    Xn, yn = _data(40)
    model = _model(acts=("relu", "identity"))        # tanh would bound the output
    if dropout:
        model = nnlib.Sequential([Dropout(0.1, random_state=50), model.layers[0],
                                  Dropout(0.5, random_state=11), model.layers[1]])
    for layer in model.layers:
        if isinstance(layer, Dense):
            layer.W[...] = 1e307 * np.sign(layer.W)
    message, history = _cluster_fault(cluster_of_two, fit, model, Xn, yn, 0.1)
    assert "weights given to fit" in message and "too large" in message, message
    assert "learning rate" not in message, message


@pytest.mark.parametrize("name, fit", CLUSTER_FITS, ids=[c[0] for c in CLUSTER_FITS])
def test_weights_grown_on_the_cluster_name_both_remedies(cluster_of_two, name, fit):
    # a finite first update, then an output that overflows: not the weights given to
    # fit (with a round per local step, the fault is at a round's first local step,
    # which starts from averaged weights, not from those)
    Xn, yn = _data(40)
    model = _model(acts=("relu", "identity"))
    kw = {"average_every": 1} if fit is fit_model_averaging else {}
    message, history = _cluster_fault(cluster_of_two, fit, model, Xn * 1e5, yn, 1e290,
                                      **kw)
    where = history.nonfinite
    assert where["epoch"] >= 1 or where.get("step", where.get("round")) >= 1, where
    assert "lower the learning rate if they grew during training" in message, message
    assert "weights given to fit" not in message


def test_an_update_that_overflows_on_the_client_names_the_learning_rate(cluster_of_two):
    Xn, yn = _data(40)
    message, history = _cluster_fault(cluster_of_two, fit_data_parallel,
                                      _model(acts=("relu", "identity")), Xn * 1e4, yn,
                                      1e306)
    assert history.nonfinite["what"] == "weights or optimizer state after an update"
    assert history.nonfinite["cause"] == "lower the learning rate?"


# --------------------------------------------------------------------------------------
# 4. a worker killed mid-training
# --------------------------------------------------------------------------------------

def test_data_parallel_resumes_after_a_worker_dies(cluster_of_two):
    """With Dropout layers: the repeated step draws the masks of the lost one."""
    client = cluster_of_two
    Xn, yn = _data(n=400)
    X = da.from_array(Xn, chunks=100)
    y = da.from_array(yn, chunks=100)

    def kill_after_first_epoch(epoch, logs):
        if epoch == 0:
            _kill_one_worker(client)
        return False

    dp, ref = _dropout_model(), _dropout_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # "submitting it again"
        h = fit_data_parallel(dp, X, y, client=client, optimizer=Adam(lr=0.01), epochs=3,
                              batch_size=40, random_state=1, l2=1e-3,
                              callbacks=[kill_after_first_epoch])
    ref.fit(Xn, yn, optimizer=Adam(lr=0.01), epochs=3, batch_size=40, random_state=1,
            l2=1e-3)
    assert h.epochs == 3
    assert _drop_steps(dp) == _drop_steps(ref) == [30, 30]
    assert _max_diff(dp, ref) < 1e-12


def test_data_parallel_lost_piece_stops_with_last_good_weights(cluster_of_two):
    """With Dropout layers: their step counts are those of the last completed step, so
    training continued from there equals a single process's continued fit."""
    client = cluster_of_two
    Xn, yn = _data(n=200)
    pieces = [(Xn[:100], yn[:100]), (Xn[100:], yn[100:])]

    def kill_after_first_epoch(epoch, logs):
        if epoch == 0:
            _kill_one_worker(client)
        return False

    dp, ref = _dropout_model(), _dropout_model()
    opt = Adam(lr=0.01)
    with pytest.raises(WorkerLostError, match="last completed|after step") as info:
        fit_data_parallel(dp, pieces, client=client, optimizer=opt, epochs=3,
                          batch_size=20, random_state=1,
                          callbacks=[kill_after_first_epoch])
    assert info.value.completed == {"epoch": 1, "step": 0}
    # the weights and optimizer state of the last completed step: one epoch's fit
    ref_opt = Adam(lr=0.01)
    ref.fit(Xn, yn, optimizer=ref_opt, epochs=1, batch_size=20, random_state=1)
    assert opt.t == ref_opt.t == 10
    assert _drop_steps(dp) == _drop_steps(ref) == [10, 10]
    assert _max_diff(dp, ref) < 1e-12
    # resumed from there (new pieces, a new seed): still the single-process fit
    client.wait_for_workers(2, timeout=60)
    fit_data_parallel(dp, pieces, client=client, optimizer=opt, epochs=1, batch_size=20,
                      random_state=2)
    ref.fit(Xn, yn, optimizer=ref_opt, epochs=1, batch_size=20, random_state=2)
    assert _drop_steps(dp) == _drop_steps(ref) == [20, 20]
    assert _max_diff(dp, ref) < 1e-12


def test_model_averaging_resumes_after_a_worker_dies(cluster_of_two):
    client = cluster_of_two
    Xn, yn = _data(n=400)
    X = da.from_array(Xn, chunks=200)
    y = da.from_array(yn, chunks=200)
    kw = dict(client=client, optimizer=None, epochs=3, batch_size=10, average_every=4,
              random_state=5)

    def kill_after_first_epoch(epoch, logs):
        if epoch == 0:
            _kill_one_worker(client, index=1)
        return False

    a, b = _dropout_model(), _dropout_model()
    fit_model_averaging(a, X, y, **dict(kw, optimizer=SGD(lr=0.05, momentum=0.5)))
    client.wait_for_workers(2, timeout=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit_model_averaging(b, X, y, callbacks=[kill_after_first_epoch],
                            **dict(kw, optimizer=SGD(lr=0.05, momentum=0.5)))
    assert _drop_steps(a) == _drop_steps(b) == [60, 60]
    assert _max_diff(a, b) == 0.0


# --------------------------------------------------------------------------------------
# 3. the estimators on the cluster: pickled and shipped, Incremental, ParallelPostFit,
#    GridSearchCV through joblib's dask backend
# --------------------------------------------------------------------------------------

def _fit_on_worker(est, X, y):
    return est.fit(X, y)


def test_estimators_pickle_and_train_on_a_worker(cluster_of_two):
    X, y = _data(n=200)
    for est in (nnlib.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0),
                nnlib.MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0)):
        target = y if isinstance(est, nnlib.MLPClassifier) else X[:, 0] - X[:, 1]
        remote = cluster_of_two.submit(_fit_on_worker, est, X, target).result()
        local = pickle.loads(pickle.dumps(est)).fit(X, target)
        for a, b in zip(remote.coefs_ + remote.intercepts_,
                        local.coefs_ + local.intercepts_):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(remote.predict(X), local.predict(X))


def test_incremental_equals_partial_fit_over_the_blocks(cluster_of_two):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    Xn, yn = _data(n=900)
    X, y = da.from_array(Xn, chunks=(300, 6)), da.from_array(yn, chunks=300)
    inc = wrappers.Incremental(nnlib.MLPClassifier(hidden_layer_sizes=(8,), batch_size=50,
                                                   random_state=0), shuffle_blocks=False)
    inc.fit(X, y, classes=[0, 1, 2])
    ref = nnlib.MLPClassifier(hidden_layer_sizes=(8,), batch_size=50, random_state=0)
    for k in range(3):
        ref.partial_fit(Xn[300 * k:300 * (k + 1)], yn[300 * k:300 * (k + 1)],
                        classes=[0, 1, 2])
    for a, b in zip(inc.estimator_.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)
    # ParallelPostFit: predictions computed block by block on the workers
    post = wrappers.ParallelPostFit(inc.estimator_)
    pred = post.predict(X)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), ref.predict(Xn))
    np.testing.assert_allclose(post.predict_proba(X).compute(), ref.predict_proba(Xn),
                               rtol=1e-12)


# Rows of the out-of-core data: every block is a function of its row range, so the
# labels do not need X (a second array holding X's blocks in memory). The noise is a
# fixed table read cyclically: generating a gigabyte of random numbers would dominate
# the test's time, and only the size matters here.
OOC_FEATURES = 200
_OOC_NOISE = np.random.default_rng(2).random((4099, OOC_FEATURES)) - 0.5


def _ooc_y(block_info=None):
    (r0, r1), = block_info[None]["array-location"]
    return np.random.default_rng([r0, 1]).integers(0, 2, r1 - r0)


def _ooc_X(block_info=None):
    (r0, r1), _ = block_info[None]["array-location"]
    y = _ooc_y(block_info={None: {"array-location": [(r0, r1)]}})
    X = np.take(_OOC_NOISE, np.arange(r0, r1), axis=0, mode="wrap")
    X[:, :4] += 0.4 * (2 * y[:, None] - 1)
    return X


def test_incremental_out_of_core_and_predict_in_parallel(cluster_of_two):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    n, block = 1_000_000, 40_000
    chunks = ((block,) * (n // block),)
    X = da.map_blocks(_ooc_X, chunks=chunks + ((OOC_FEATURES,),), dtype=np.float64)
    y = da.map_blocks(_ooc_y, chunks=chunks, dtype=np.int64)
    assert X.nbytes > 2 * WORKER_MEMORY          # larger than both workers together
    inc = wrappers.Incremental(nnlib.MLPClassifier(hidden_layer_sizes=(4,), batch_size=1000,
                                                   learning_rate_init=0.01,
                                                   random_state=0),
                               shuffle_blocks=False)
    inc.fit(X, y, classes=[0, 1])
    assert inc.estimator_.t_ == n               # every row seen once, block by block
    post = wrappers.ParallelPostFit(inc.estimator_)
    held_out = slice(0, 2 * block)
    acc = float((post.predict(X[held_out]) == y[held_out]).mean().compute())
    assert acc > 0.9


def test_grid_search_through_joblib_dask_backend(cluster_of_two):
    joblib = pytest.importorskip("joblib")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = _data(n=240)
    grid = {"hidden_layer_sizes": [(4,), (16,)], "alpha": [1e-4, 1e-1]}

    def search():
        return model_selection.GridSearchCV(
            nnlib.MLPClassifier(max_iter=30, random_state=0), grid, cv=2).fit(X, y)

    with joblib.parallel_backend("dask"):
        on_cluster = search()
    local = search()
    np.testing.assert_array_equal(on_cluster.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    assert on_cluster.best_params_ == local.best_params_


def test_a_cluster_without_workers_is_waited_for_then_refused(monkeypatch):
    # a nanny restarting its worker leaves the scheduler without it for a moment: the
    # shards wait for a worker to join, and name the problem if none does
    import threading
    import time

    import nnlib.dask._shards as shards
    monkeypatch.setattr(shards, "WORKER_WAIT", 20.0)
    cluster = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None,
                                       silence_logs=50)
    c = distributed.Client(cluster)
    try:
        joins = threading.Timer(0.5, lambda: cluster.scale(1))
        t0 = time.perf_counter()
        joins.start()
        assert len(shards._workers(c)) == 1 and time.perf_counter() - t0 >= 0.4
        cluster.scale(0)
        deadline = time.perf_counter() + 20
        while c.scheduler_info(n_workers=-1)["workers"] and time.perf_counter() < deadline:
            time.sleep(0.05)
        monkeypatch.setattr(shards, "WORKER_WAIT", 0.3)
        with pytest.raises(RuntimeError, match="no workers .none joined within 0.3 s"):
            shards._workers(c)
    finally:
        c.close()
        cluster.close()


def test_an_l2_penalty_that_overflows_is_named_as_a_local_fit_names_it(cluster_of_two):
    # data parallel's client names the penalty itself (no worker's step is at fault)
    Xn, yn = _data(40)
    model = nnlib.Sequential([Dense(Xn.shape[1], 3, random_state=0)])
    local = nnlib.Sequential([Dense(Xn.shape[1], 3, random_state=0)])
    for m in (model, local):
        m.layers[0].W[...] = 1e160 * np.sign(m.layers[0].W)
    message, history = _cluster_fault(cluster_of_two, fit_data_parallel, model, Xn, yn,
                                      0.1, l2=1.0)
    assert "L2 penalty" in message and "weights given to fit" in message, message
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        local_history = local.fit(Xn, yn, optimizer=SGD(lr=0.1), epochs=2, batch_size=4,
                                  l2=1.0)
    # the same diagnosis (the local one also quotes X's largest value, which the
    # client does not gather)
    cluster_cause, local_cause = history.nonfinite["cause"], local_history.nonfinite["cause"]
    assert cluster_cause.split(" (or X")[0] == local_cause.split(" (or X")[0]


@pytest.mark.parametrize("name, fit", CLUSTER_FITS, ids=[c[0] for c in CLUSTER_FITS])
def test_a_cluster_fit_given_no_optimizer_goes_on_with_the_models(cluster_of_two, name,
                                                                    fit):
    # as Sequential.fit: model.optimizer (here a local fit's Adam) when it holds the
    # model's arrays; a cluster run started a new SGD(lr=0.01) and lost Adam's state
    from nnlib.optim import Adam
    Xn, yn = _data(40)
    model = _model()
    adam = Adam(lr=0.01)
    model.fit(Xn, yn, optimizer=adam, epochs=1, batch_size=8)
    t0 = adam.t
    X, y = da.from_array(Xn, chunks=20), da.from_array(yn, chunks=20)
    fit(model, X, y, client=cluster_of_two, epochs=1, batch_size=4)
    assert model.optimizer is adam and adam.t > t0


# A callback changing the layers between epochs. Before (probe34) the workers kept
# training the network the run was built from: model averaging silently (the losses of
# an unchanged model, the client's model now relu where tanh was trained), data parallel
# with NumPy's "could not broadcast input array from shape (87,) into shape (75,)" after
# a layer was appended. Now the next epoch refuses, as Sequential.fit does.
CLUSTER_LAYER_CHANGES = {
    "activation": lambda model: setattr(model.layers[0], "activation", "relu"),
    "appended": lambda model: model.layers.append(Dense(3, 3, random_state=9)),
}


@pytest.mark.parametrize("change", list(CLUSTER_LAYER_CHANGES),
                         ids=list(CLUSTER_LAYER_CHANGES))
@pytest.mark.parametrize("fit", [fit_data_parallel, fit_model_averaging],
                         ids=["data-parallel", "averaging"])
def test_a_layer_changed_by_a_callback_stops_a_cluster_run(cluster_of_two, fit, change):
    X, y = _data(n=200)
    Xd, yd = da.from_array(X, chunks=100), da.from_array(y, chunks=100)
    model, seen = _model(), []

    def after_first(epoch, logs):
        if epoch == 0:
            seen.append([p.copy() for p in model.params])
            CLUSTER_LAYER_CHANGES[change](model)
    with pytest.raises(RuntimeError, match="layers changed during training"):
        fit(model, Xd, yd, client=cluster_of_two, epochs=3, batch_size=50,
            random_state=0, callbacks=[after_first])
    assert model.history.epoch == [0]           # the epoch completed, as fit keeps it
    for p, q in zip(model.params, seen[0]):          # nothing trained after the change
        np.testing.assert_array_equal(p, q)
