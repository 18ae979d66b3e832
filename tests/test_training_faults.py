"""Faults during training: divergence, interrupts, threads, reproducibility, memory.

* A fit whose loss or weights blow up stops with a RuntimeWarning and leaves the weights
  of the last finite step (bitwise those of a fit that stopped there by itself).
* A KeyboardInterrupt (from a callback, or a real SIGINT while the compiled epoch runs)
  is seen within a ~0.1 s piece of the epoch and leaves model, optimizer state and
  ``optimizer.t`` consistent, usable for predict and further fits.
* Two models trained at once in Python threads equal the same models trained one after
  the other; with a fixed seed and n_threads=1 training is bitwise reproducible.
* 1000 epochs and 10^5 predict calls grow resident memory by < 5 MB (slow-ish, ~10 s).
"""
import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

import nnlib
from nnlib import optim

pytest.importorskip("nnlib.model")


def _data(seed=0, n=64, d=4, c=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y % c


def _model(seed=0, d=4, hidden=8, c=3, act="tanh", out="identity", dtype=np.float64):
    return nnlib.Sequential([
        nnlib.Dense(d, hidden, act, random_state=seed, dtype=dtype),
        nnlib.Dense(hidden, c, out, random_state=seed + 1, dtype=dtype)])


def _params(model):
    return [p.copy() for p in model.params]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --- divergence -------------------------------------------------------------------------

STATEFUL = [(optim.Adagrad, {}), (optim.RMSprop, {}), (optim.RMSprop, dict(centered=True)),
            (optim.Adam, {}), (optim.AdamW, dict(amsgrad=True)), (optim.NotesAdaGrad, {}),
            (optim.SklearnAdam, {})]


@pytest.mark.parametrize("dtype, x_big, y_big", [(np.float64, 1e10, 1e150),
                                                 (np.float32, 1e10, 1e15)],
                         ids=["f64", "f32"])
@pytest.mark.parametrize("cls, kw", STATEFUL,
                         ids=[c.__name__ + "".join(k) for c, k in STATEFUL])
def test_fit_stops_when_the_optimizer_state_overflows(cls, kw, dtype, x_big, y_big):
    """Row 3 gives a finite loss (~y_big^2 / 2) but a weight gradient x_big * y_big whose
    square overflows the optimizer's state. The weights stay finite (m / inf = 0), so
    before the state was checked this step -- and every later one -- was silently
    skipped. Now fit stops there: a warning, and weights, state and t bitwise those of a
    fit on the first 3 rows."""
    X = np.array([[1.0], [0.5], [-1.0], [x_big], [1.0]], dtype=dtype)
    y = np.array([1.0, 0.0, 2.0, y_big, 1.0], dtype=dtype)

    def fresh():
        return (nnlib.Sequential([nnlib.Dense(1, 1, init="zeros", dtype=dtype)]),
                cls(lr=0.01, **kw))
    model, opt = fresh()
    with pytest.warns(RuntimeWarning, match="optimizer state.*last finite step"):
        hist = model.fit(X, y, loss="squared_error", optimizer=opt, epochs=3,
                         batch_size=1, shuffle=False)
    assert hist.stop_reason == "nonfinite"
    assert hist.nonfinite == {"epoch": 0, "step": 3,
                              "what": "weights or optimizer state after an update",
                              "cause": hist.nonfinite["cause"]}
    assert "whose square (an optimizer's state" in hist.nonfinite["cause"]
    state = opt.state_arrays(model.params)
    assert all(np.isfinite(s).all() for s in state) and opt.t == 3
    ref, ref_opt = fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref.fit(X[:3], y[:3], loss="squared_error", optimizer=ref_opt, epochs=1,
                batch_size=1, shuffle=False)
    _assert_same(model.params, ref.params)
    _assert_same(state, ref_opt.state_arrays(ref.params))


def test_fit_refuses_a_non_finite_optimizer_state():
    model = _model()
    opt = optim.Adam()
    opt.step(model.params, [np.full_like(p, np.nan) for p in model.params])
    for p, q in zip(model.params, _model().params):
        p[...] = q
    X, y = _data()
    with pytest.raises(nnlib.NonFiniteError, match=r"state for params\[0\].*reset"):
        model.fit(X, y, optimizer=opt)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_diverging_fit_warns_and_keeps_last_finite_weights(dtype):
    """Full-batch GD with a huge learning rate on squared error: the weights grow
    geometrically until an update overflows. One step per epoch, so the last finite
    weights are those of a fresh model fitted for the epochs that completed."""
    X, _ = _data()
    Y = np.random.default_rng(1).standard_normal((len(X), 3))
    model = _model(act="identity", dtype=dtype)
    with pytest.warns(RuntimeWarning, match="non-finite.*last finite step"):
        hist = model.fit(X, Y, loss="squared_error", optimizer=optim.SGD(lr=50.0),
                         epochs=10_000, batch_size=len(X), shuffle=False)
    assert hist.stop_reason == "nonfinite"
    info = hist.nonfinite
    assert info["what"] in ("loss", "gradient",
                            "weights or optimizer state after an update")
    assert all(np.isfinite(p).all() for p in model.params)
    assert np.isfinite(hist["loss"]).all()
    assert 0 < info["epoch"] < 10_000

    # Bitwise the weights of a fit that simply stopped after the completed steps.
    replay = _model(act="identity", dtype=dtype)
    opt = optim.SGD(lr=50.0)
    n_steps = info["epoch"] + info["step"]          # one step per epoch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replay.fit(X, Y, loss="squared_error", optimizer=opt, epochs=n_steps,
                   batch_size=len(X), shuffle=False)
    _assert_same(model.params, replay.params)


def test_loss_overflowing_on_the_first_step_keeps_the_initial_weights():
    """Inputs of 1e200 make the squared error overflow at once: nothing is applied, the
    optimizer has taken no step, and the model trains normally on sane data after."""
    X, _ = _data(n=200)
    Y = np.ones((200, 3))
    model = _model(act="identity")
    initial = _params(model)
    opt = optim.Adam(lr=0.1)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        hist = model.fit(X * 1e200, Y, loss="squared_error", optimizer=opt, epochs=50,
                         batch_size=7, random_state=0)
    assert hist.stop_reason == "nonfinite"
    assert hist.nonfinite["epoch"] == 0 and hist.nonfinite["step"] == 0
    _assert_same(model.params, initial)
    assert opt.t == 0
    assert all(np.isfinite(s).all() for s in opt.state_arrays(model.params))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, Y, loss="squared_error", optimizer=opt, epochs=2, random_state=0)
    assert opt.t > 0


# --- KeyboardInterrupt --------------------------------------------------------------------

def _interrupt_after(k):
    def callback(epoch, logs):
        if epoch == k:
            raise KeyboardInterrupt
        return False
    return callback


def test_keyboard_interrupt_from_callback_keeps_last_completed_epoch():
    X, y = _data()
    model, opt = _model(), optim.Adam(lr=0.01)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, optimizer=opt, epochs=100, batch_size=8, random_state=3,
                  callbacks=[_interrupt_after(4)])
    ref, ref_opt = _model(), optim.Adam(lr=0.01)
    ref.fit(X, y, optimizer=ref_opt, epochs=5, batch_size=8, random_state=3)
    _assert_same(model.params, ref.params)
    assert opt.t == ref_opt.t == 5 * 8
    _assert_same(opt.state_arrays(model.params), ref_opt.state_arrays(ref.params))
    # Usable: predicts, evaluates and trains on.
    assert np.isfinite(model.predict(X)).all()
    before = model.evaluate(X, y)[0]
    model.fit(X, y, optimizer=opt, epochs=5, batch_size=8, random_state=4)
    assert model.evaluate(X, y)[0] < before


def test_real_sigint_during_fit_leaves_a_completed_epoch(sigint_raises):
    """Ctrl-C while the compiled epoch runs (GIL released): Python raises
    KeyboardInterrupt between compiled pieces (an epoch this short is one piece once its
    rate is known), so the weights are those after some whole number of epochs, never a
    half-applied update."""
    X, y = _data(n=512)
    model = _model(hidden=16)
    done = [0]                                   # epochs completed (callbacks run)

    def record(epoch, logs):
        done[0] = epoch + 1
        return False

    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y, optimizer=optim.SGD(lr=0.01, momentum=0.9), epochs=10 ** 7,
                      batch_size=4, random_state=0, callbacks=[record])
    finally:
        timer.cancel()
    assert done[0], "the interrupt came before the first epoch finished"
    # Equal to the last epoch whose callback ran, or to the one after it (interrupted
    # before its callback) -- never something in between.
    matches = []
    for n_epochs in (done[0], done[0] + 1):
        ref = _model(hidden=16)
        ref.fit(X, y, optimizer=optim.SGD(lr=0.01, momentum=0.9), epochs=n_epochs,
                batch_size=4, random_state=0)
        if all(np.array_equal(a, b) for a, b in zip(model.params, ref.params)):
            matches.append(n_epochs)
    assert matches, "the weights are not those of a completed epoch"
    assert np.isfinite(model.predict(X)).all()


# --- threads and reproducibility ------------------------------------------------------------

def _train(seed, n_threads=1, epochs=30, dtype=np.float64):
    X, y = _data(seed=seed, n=128)
    model = _model(seed=seed, hidden=16, dtype=dtype)
    hist = model.fit(X.astype(dtype), y, optimizer=optim.Adam(lr=0.01), epochs=epochs,
                     batch_size=16, random_state=seed, n_threads=n_threads)
    return _params(model), hist["loss"]


def test_two_models_trained_in_threads_equal_sequential():
    sequential = [_train(seed) for seed in (1, 2, 3, 4)]
    results = [None] * 4

    def work(i, seed):
        results[i] = _train(seed)

    from nnlib._kernels import blas
    blas_before = blas.get_num_threads()
    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate((1, 2, 3, 4))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (p_seq, h_seq), (p_thr, h_thr) in zip(sequential, results):
        _assert_same(p_seq, p_thr)
        assert h_seq == h_thr
    # fit sets BLAS's thread count and restores it; concurrent fits must not leave it
    # changed either.
    assert blas.get_num_threads() == blas_before


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_fixed_seed_and_one_thread_is_bitwise_reproducible(dtype):
    a, ha = _train(7, n_threads=1, dtype=dtype)
    b, hb = _train(7, n_threads=1, dtype=dtype)
    _assert_same(a, b)
    assert ha == hb


def test_more_threads_agree_to_tolerance():
    a, _ = _train(5, n_threads=1)
    b, _ = _train(5, n_threads=2)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


# --- memory ---------------------------------------------------------------------------------

def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_long_training_and_many_predicts_do_not_grow_memory():
    X, y = _data(n=32)
    model = _model()
    opt = optim.Adam(lr=1e-3)
    x1 = X[:1].copy()
    # Warm up: allocator pools, BLAS buffers, lazy imports.
    model.fit(X, y, optimizer=opt, epochs=20, batch_size=8, random_state=0)
    for _ in range(2000):
        model.predict(x1)
    start = _rss_kib()
    t0 = time.perf_counter()
    model.fit(X, y, optimizer=opt, epochs=1000, batch_size=8, random_state=0)
    after_fit = _rss_kib()
    for _ in range(100_000):
        model.predict(x1)
    end = _rss_kib()
    elapsed = time.perf_counter() - t0
    print(f"\nRSS: start {start} KiB, after 1000 epochs {after_fit} KiB, after 1e5 predicts "
          f"{end} KiB; growth {end - start} KiB in {elapsed:.1f} s")
    assert after_fit - start < 5 * 1024
    assert end - start < 5 * 1024


def test_sigint_inside_a_long_epoch_is_seen_within_a_piece_and_t_counts_the_updates(
        sigint_raises):
    """The compiled epoch runs without the GIL, cut into ~0.1 s pieces: Ctrl-C during
    long epochs raises KeyboardInterrupt promptly, and the model, the optimizer state and
    ``optimizer.t`` then agree with a replay of exactly ``t`` updates. The fit asks for
    far more epochs than can run, so the signal always lands inside it."""
    n = 200_000
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 16))
    y = rng.integers(0, 3, n)
    model, opt = _model(d=16, hidden=32), optim.Adam(lr=1e-3)
    start = _params(model)
    timer = threading.Timer(0.4, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y, optimizer=opt, epochs=10 ** 6, batch_size=1, shuffle=False,
                      n_threads=1)
    finally:
        timer.cancel()
    late = time.perf_counter() - t0 - 0.4
    assert opt.t > 0
    assert late < 1.0, f"the interrupt was seen {late:.2f} s late"
    replay, replay_opt = _model(d=16, hidden=32), optim.Adam(lr=1e-3)
    for p, q in zip(replay.params, start):
        p[...] = q
    full, rest = divmod(opt.t, n)
    if full:
        replay.fit(X, y, optimizer=replay_opt, epochs=full, batch_size=1, shuffle=False,
                   n_threads=1)
    if rest:
        replay.fit(X[:rest], y[:rest], optimizer=replay_opt, epochs=1, batch_size=1,
                   shuffle=False, n_threads=1)
    assert replay_opt.t == opt.t
    for a, b in zip(model.params + opt.state_arrays(model.params),
                    replay.params + replay_opt.state_arrays(replay.params)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch", [1, 8])
def test_a_label_changed_after_the_setup_is_refused_not_read_out_of_bounds(batch):
    """The compiled loops copy each label into the workspace and check it there: a
    caller that changes its label array after the checks (a callback, another thread)
    gets an error, never a read past the output row."""
    from nnlib.training import compiled_train, network_of
    train = compiled_train()
    X, y = _data()
    model = _model()
    labels = np.ascontiguousarray(y, dtype=np.int64)
    setup = train.EpochSetup(network_of(model), model.params[0::2], model.params[1::2],
                             None, X, np.empty((64, 0)), labels,
                             train.Workspace(model._sizes(), 64, 0, np.float64), 0, batch,
                             optimizer=optim.SGD(lr=0.1).config())
    labels[20] = 10 ** 9
    out = train.run_epoch(setup, np.arange(64, dtype=np.int64), 0)
    assert out[3] == 4 and out[2] == 20 // batch      # stopped before the bad batch
    assert setup.steps_taken == 20 // batch
    labels[20] = -1
    with pytest.raises(ValueError, match="changed after the setup"):
        train.loss_grad(setup, list(setup.workspace.dW), list(setup.workspace.db))


# --- faults that would crash the process: each runs in a subprocess ----------------------

_SCRIPT_HEAD = """
import threading, time
import numpy as np
from nnlib.training import compiled_train
from nnlib.optim import SGD
train = compiled_train()
rng = np.random.default_rng(0)
"""


def _run_script(body):
    """Run ``body`` after _SCRIPT_HEAD in a fresh interpreter; fail on a non-zero exit
    (a segfault or an abort included)."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _SCRIPT_HEAD + body], capture_output=True,
                       text=True, timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-500:]}"


_ORDER_RACE = """
N = 200_000
net = train.Network([20, 16, 3], [2, 0], [0.0, 0.0])
W = [rng.standard_normal((20, 16)), rng.standard_normal((16, 3))]
b = [np.zeros(16), np.zeros(3)]
X = rng.standard_normal((N, 20))
setup = train.EpochSetup(net, W, b, None, X, np.empty((N, 0)),
                         (np.arange(N) % 3).astype(np.int64),
                         train.Workspace(net.sizes, 1, 0, np.float64), 0, 1,
                         optimizer=SGD(lr=1e-4).config())
order = np.arange(N, dtype=np.int64)
def change_order():
    time.sleep(0.02)                # after run_epoch's range check, while the loop runs
    order[N // 2:] = 10 ** 15
worker = threading.Thread(target=change_order)
worker.start()
try:
    train.run_epoch(setup, order, 0)
except ValueError as exc:
    print("refused:", exc)
worker.join()
"""


def test_an_order_changed_by_another_thread_is_never_read_out_of_bounds():
    """The compiled epoch releases the GIL, so by the design it reads only buffers it owns
    or has copied and checked. Another thread writing row indices far out of range into
    the order array after the check must give an error or a completed epoch, never a
    read past X (a crash of the whole process, hence the subprocess)."""
    _run_script(_ORDER_RACE)


_HUGE_THREADS = """
N = 4000
net = train.Network([300, 300, 10], [2, 0], [0.0, 0.0])
W = [rng.standard_normal((300, 300)), rng.standard_normal((300, 10))]
b = [np.zeros(300), np.zeros(10)]
X = rng.standard_normal((N, 300))
try:
    setup = train.EpochSetup(net, W, b, None, X, np.empty((N, 0)),
                             (np.arange(N) % 10).astype(np.int64),
                             train.Workspace(net.sizes, N, 0, np.float64), 0, N,
                             optimizer=SGD(lr=0.1).config(), n_threads=1_000_000)
    print(train.run_epoch(setup, np.arange(N, dtype=np.int64), 0))
except ValueError as exc:
    print("refused:", exc)
"""


def test_a_huge_thread_count_in_epoch_setup_is_clamped_or_refused():
    _run_script(_HUGE_THREADS)


def _long_setup(seed=0, n=200_000):
    from nnlib.training import compiled_train, network_of
    train = compiled_train()
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 16))
    y = rng.integers(0, 3, n).astype(np.int64)
    model = _model(d=16, hidden=32)
    setup = train.EpochSetup(network_of(model), model.params[0::2], model.params[1::2],
                             None, X, np.empty((n, 0)), y,
                             train.Workspace(model._sizes(), 1, 0, np.float64), 0, 1,
                             optimizer=optim.SGD(lr=1e-3).config())
    return train, model, setup, np.arange(n, dtype=np.int64)


def test_two_threads_on_one_epoch_setup_are_refused_or_serialized():
    train, model, setup, order = _long_setup()
    errors, barrier = [], threading.Barrier(2)

    def work():
        barrier.wait()
        try:
            train.run_epoch(setup, order, 0)
        except RuntimeError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, replay, replay_setup, _ = _long_setup()
    for _ in range(2 - len(errors)):
        train.run_epoch(replay_setup, order, 0)
    _assert_same(model.params, replay.params)


def test_two_fits_of_one_model_in_threads_are_refused_or_serialized():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100_000, 16))
    y = rng.integers(0, 3, 100_000)
    model, errors = _model(d=16, hidden=32), []
    barrier = threading.Barrier(2)

    def work():
        barrier.wait()
        try:
            model.fit(X, y, optimizer=optim.SGD(lr=0.01), epochs=1, batch_size=1,
                      shuffle=False, n_threads=1)
        except RuntimeError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    replay = _model(d=16, hidden=32)
    for _ in range(2 - len(errors)):
        replay.fit(X, y, optimizer=optim.SGD(lr=0.01), epochs=1, batch_size=1,
                   shuffle=False, n_threads=1)
    _assert_same(model.params, replay.params)


class _FixedCut:
    """A PieceClock stand-in that cuts every epoch into pieces of ``k`` steps."""

    def __init__(self, k):
        self.k, self.rate = k, None

    def steps(self):
        return self.k

    def done(self, steps, seconds):
        pass


def test_the_reported_epoch_loss_does_not_depend_on_how_the_epoch_is_cut():
    from nnlib.training import TrainingRun
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 6))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.3)
    sums = []
    for k in (3000, 1000, 7, 1):
        model = _model(d=6, hidden=10)
        yt, yl = model._targets(y, "softmax_cross_entropy", 3000)
        with TrainingRun(model, X, yt, yl, "softmax_cross_entropy", optim.SGD(lr=0.01),
                         batch_size=1, n_threads=1) as run:
            run.clock = _FixedCut(k)
            sums.append(run.run_epoch(np.arange(3000, dtype=np.int64)).loss_sum)
    assert len(set(sums)) == 1, sums


def test_changing_the_optimizer_state_layout_mid_fit_names_the_optimizer_not_states():
    X, y = _data()
    opt = optim.SGD(lr=0.1)
    with pytest.raises((ValueError, RuntimeError)) as info:
        _model().fit(X, y, optimizer=opt, epochs=3,
                     callbacks=[lambda epoch, logs: setattr(opt, "momentum", 0.9)])
    assert "states[" not in str(info.value)
