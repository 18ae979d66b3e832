"""Which kernel calls let the GIL go (nnlib/_kernels/gil.pxd): work below GIL_RELEASE_MIN
values keeps it, longer work releases it, and the result is the same either way.

How a test sees it: a second thread counts in a pure-Python loop, so it can only count
while it holds the GIL. The main thread first sleeps (letting the counter take the GIL)
and so starts its window with the GIL freshly taken back; the interpreter's forced
switch comes a whole switch interval later, and the counter cannot move during a window
shorter than that unless a call inside lets the GIL go.
"""
import os
import sys
import threading
import time

import numpy as np
import pytest

import nnlib
from nnlib import _paths
from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
from nnlib._kernels import activations as _act
from nnlib._kernels import aligned as _aligned
from nnlib._kernels import blas as _blas
from nnlib._kernels import dense as _dense
from nnlib._kernels import dropout as _drop
from nnlib._kernels import losses as _loss
from nnlib._kernels import optim as _optim
from nnlib._kernels import output_maps as _maps
from nnlib._kernels import train as _train
from tests._reliability_cases import PyDropout

GIL_MIN = _paths.path_value("GIL_RELEASE_MIN")
MACS_PER_VALUE = 16                 # gil.pxd's enum
SWITCH = 0.1                        # switch interval during a test: longer than a window


class Counter:
    """A thread that counts while it holds the GIL (pure Python: never releases it)."""

    def __init__(self):
        self.n, self.stop = 0, False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop:
            self.n += 1

    def __enter__(self):
        self.old = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH)
        self.thread.start()
        while self.n == 0:
            time.sleep(0.001)
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        sys.setswitchinterval(self.old)

    def moved_during(self, call, times=1):
        """Whether the counter ran during ``times`` calls of ``call()`` (timed from a fresh
        hold of the GIL), and how long they took."""
        time.sleep(0.0005)      # the counter takes the GIL; we take it back fresh
        before = self.n
        t0 = time.perf_counter()
        for _ in range(times):
            call()
        return self.n != before, time.perf_counter() - t0

    def released_in_some_window(self, call, tries=60):
        """Whether the counter ran in one of ``tries`` windows of ``call()`` repeated for
        about 20 ms, a fifth of the switch interval (past which the eval loop would hand
        the GIL over between calls, released or not). A call that lets the GIL go lets
        it go for all of its length, but on a loaded machine the counter's thread may
        not get a core within a short window: a CI run at load 4.5 saw none in 40
        windows of 5 epochs of ~0.3 ms."""
        t0 = time.perf_counter()
        call()
        times = max(1, min(50, int(SWITCH / 5 / max(time.perf_counter() - t0, 1e-6))))
        return any(self.moved_during(call, times)[0] for _ in range(tries))


def _elementwise(n, dtype):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    return x, rng.standard_normal(n).astype(dtype), np.empty_like(x)


def _calls(values, dtype):
    """{name: call} of the kernels a Python caller runs, each on work of about ``values``
    values (the elementwise ones exactly)."""
    _blas.load()
    x, g, out = _elementwise(values, dtype)
    sig = ACTIVATION_CODES["sigmoid"]
    c = 16
    rows = values // c
    z, gz, oz = x[:rows * c].reshape(rows, c), g[:rows * c].reshape(rows, c), \
        out[:rows * c].reshape(rows, c)
    labels = (np.arange(rows) % c).astype(np.int64)
    ce = LOSS_CODES["softmax_cross_entropy"]
    n_chunks = _loss.n_chunks(rows)
    # a dense layer n x k -> k: n k + n k^2 / 16 values forward, n k + 2 n k^2 / 16 back
    k = 64
    n = max(1, values // (k + k * k // MACS_PER_VALUE))
    X = np.ones((n, k), dtype)
    W = np.full((k, k), 0.01, dtype)
    b = np.zeros(k, dtype)
    H = np.empty((n, k), dtype)
    nb = max(1, values // (k + 2 * k * k // MACS_PER_VALUE))
    Xb, Hb = X[:nb], np.ones((nb, k), dtype)
    dZ, dX, dW, db = np.empty((nb, k), dtype), np.empty((nb, k), dtype), \
        np.empty((k, k), dtype), np.empty(k, dtype)
    ints = np.zeros(values, np.int64)
    config = nnlib.optim.SGD(lr=0.01, momentum=0.9).config()
    param, state = x.copy(), np.zeros((1, values), dtype)
    return {
        "activation_forward": lambda: _act.activation_forward(sig, x, out, 0.0, 1),
        "activation_vjp": lambda: _act.activation_vjp(sig, x, g, out, 0.0, 1),
        "activation_vjp_from_output":
            lambda: _act.activation_vjp_from_output(sig, x, g, out, 0.0, 1),
        "softmax_forward": lambda: _maps.softmax_forward(z, oz, 1),
        "log_softmax_vjp": lambda: _maps.log_softmax_vjp(z, gz, oz, 1),
        "sparsemax_vjp": lambda: _maps.sparsemax_vjp(z, gz, oz, 1),
        "loss_grad": lambda: _loss.loss_grad(
            ce, z, np.empty(0, dtype), labels, 1.0 / rows, 1.0, oz.reshape(-1),
            np.empty(n_chunks), np.empty((1, c), dtype), 1),
        "dropout_apply": lambda: _drop.dropout_apply(z, oz, 0.5, 7, 1, 0, 1),
        "dense_forward": lambda: _dense.dense_forward(X, W, b, H, sig, 0.0, 1),
        "dense_backward": lambda: _dense.dense_backward(
            Xb, W, Hb, Hb, dZ, dX, dW, db, np.empty(k), sig, 0.0),
        "optim_step": lambda: _optim.optim_step(config, param, g, state, 1, 1),
        "optim_step_arrays": lambda: _optim.optim_step_arrays(
            config, [param], [g], [state], 1, 1, 1 << 30),
        "all_finite": lambda: _train.all_finite(z),
        "first_label_outside": lambda: _train.first_label_outside(ints, 3),
        # a training run's snapshot of its weights and states (TrainingRun._snapshot)
        # (its pairs' values together: two halves)
        "copy_arrays": lambda: _aligned.copy_arrays([out[:values // 2], out[values // 2:]],
                                                    [x[:values // 2], x[values // 2:]]),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_below_the_threshold_keep_the_gil(dtype):
    # a call that lets the GIL go for ~100 us moves the counter in only some windows:
    # each window runs the kernel many times (still well inside the switch interval)
    calls = _calls(GIL_MIN - 1, dtype)
    released = []
    with Counter() as counter:
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times = max(1, min(50, int(SWITCH / 4 / max(time.perf_counter() - t0, 1e-6))))
            # a window the OS stretched past half the interval (a loaded machine) proves
            # nothing either way (near the interval the eval loop hands the GIL over
            # between calls): it is taken again, shorter
            for _ in range(8):
                moved, took = counter.moved_during(call, times)
                if took < SWITCH / 2:
                    break
                times = max(1, times // 2)
            assert took < SWITCH / 2, f"{name}: every window outlasted half the interval"
            if moved:
                released.append(name)
    assert released == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_kernels_let_the_gil_go(dtype):
    # 256x the threshold: about 10 ms of work or more, time for the counter's thread to
    # be scheduled and take the GIL even on a loaded machine
    calls = _calls(256 * GIL_MIN, dtype)
    held = []
    with Counter() as counter:
        for name, call in calls.items():
            # a fast kernel lets the GIL go for a short while (all_finite reads its 8.4e6
            # values in ~1.5 ms): each window repeats it for ~20 ms
            if not counter.released_in_some_window(call):
                held.append(name)
    assert held == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", [9, 4097, GIL_MIN - 1])
def test_in_order_tasks_equal_the_openmp_split_bit_for_bit(values, dtype):
    # below the threshold one thread runs the tasks in order with the GIL held; two
    # threads run the OpenMP loop with it released: the same tasks, the same sums
    rng = np.random.default_rng(values)
    x = (rng.standard_normal(values) * 4).astype(dtype)
    g = rng.standard_normal(values).astype(dtype)
    c = 7
    rows = max(1, values // c)
    z, gz = x[:rows * c].reshape(rows, c), g[:rows * c].reshape(rows, c)
    labels = rng.integers(0, c, rows).astype(np.int64)
    k = 24
    n = max(1, values // k)
    X = rng.standard_normal((n, k)).astype(dtype)
    W = rng.standard_normal((k, k)).astype(dtype) / 5
    b = rng.standard_normal(k).astype(dtype)
    config = nnlib.optim.Adam(lr=0.01).config()

    def run(t):
        out = {}
        for kind in ACTIVATION_CODES:
            a = ACTIVATION_CODES[kind]
            for name, fn, args in (("fwd", _act.activation_forward, (x,)),
                                   ("vjp", _act.activation_vjp, (x, g)),
                                   ("vjp_y", _act.activation_vjp_from_output, (x, g))):
                o = np.empty_like(x)
                fn(a, *args, o, 0.1, t)
                out[f"{kind} {name}"] = o
        for name in ("softmax_forward", "log_softmax_forward", "sparsemax_forward"):
            o = np.empty_like(z)
            getattr(_maps, name)(z, o, t)
            out[name] = o
        for name in ("softmax_vjp", "log_softmax_vjp", "sparsemax_vjp"):
            o = np.empty_like(z)
            getattr(_maps, name)(z, gz, o, t)
            out[name] = o
        o = np.empty_like(z)
        _drop.dropout_apply(z, o, 0.3, 11, 2, 5, t)
        out["dropout"] = o
        for loss in ("softmax_cross_entropy", "sparsemax_loss"):
            dz = np.empty(rows * c, dtype)
            sums = np.empty(_loss.n_chunks(rows))
            _loss.loss_grad(LOSS_CODES[loss], z, np.empty(0, dtype), labels, 1.0 / rows,
                            1.0, dz, sums, np.empty((t, c), dtype), t)
            out[loss], out[loss + " sums"] = dz, sums
        H = np.empty((n, k), dtype)
        _blas.load()
        _dense.dense_forward(X, W, b, H, ACTIVATION_CODES["tanh"], 0.0, t)
        out["dense"] = H
        p, st = x.copy(), np.zeros((2, values), dtype)
        _optim.optim_step(config, p, g, st, 3, t)
        out["adam"], out["adam state"] = p, st
        return out

    one, two = run(1), run(2)
    for name in one:
        assert np.array_equal(one[name].view(np.uint8), two[name].view(np.uint8)), name


def test_kernels_refuse_buffers_of_another_shape():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="same shape"):
        _maps.softmax_vjp(x, np.zeros((3, 4)), np.zeros((2, 4)), 1)
    with pytest.raises(ValueError, match="same shape"):
        _maps.softmax_forward(x, np.zeros((3, 5)), 1)
    with pytest.raises(ValueError, match="same shape"):
        _drop.dropout_apply(x, np.zeros((4, 4)), 0.5, 1, 1, 0, 1)
    relu = ACTIVATION_CODES["relu"]
    with pytest.raises(ValueError, match="same length"):
        _act.activation_forward(relu, np.ones(10), np.empty(0), 0.0, 1)
    with pytest.raises(ValueError, match="same length"):
        _act.activation_vjp(relu, np.empty(0), np.empty(0), np.empty(3), 0.0, 1)
    _blas.load()
    X, W, b, H = np.ones((3, 4)), np.ones((4, 2)), np.ones(2), np.empty((3, 2))
    _dense.dense_forward(X, W, b, H, relu, 0.0, 1)
    assert (H == 5).all()
    for bad in [(X, np.ones((5, 2)), b, H), (X, W, np.ones(3), H),
                (X, W, b, np.empty((2, 2))), (X, W, b, np.empty((3, 3)))]:
        with pytest.raises(ValueError, match="dense_forward: shapes"):
            _dense.dense_forward(*bad, relu, 0.0, 1)
    with pytest.raises(ValueError, match="unknown activation code 99"):
        _dense.dense_forward(X, W, b, H, 99, 0.0, 1)
    good = dict(X=X, W=W, H=H, grad_H=np.ones((3, 2)), dZ=np.empty((3, 2)),
                dX=np.empty((3, 4)), dW=np.empty((4, 2)), db=np.empty(2), work=np.empty(2))
    _dense.dense_backward(*good.values(), relu, 0.0)
    assert (good["dW"] == 3).all() and (good["dX"] == 2).all()
    for name, arr in good.items():
        shape = arr.shape[:-1] + (arr.shape[-1] - 1,)     # one column (or value) short
        with pytest.raises(ValueError, match="dense_backward: shapes"):
            _dense.dense_backward(*{**good, name: np.empty(shape)}.values(), relu, 0.0)


def _python_layer_model():
    return nnlib.Sequential([nnlib.Dense(8, 6, "tanh", random_state=1),
                             PyDropout(0.2, random_state=3),
                             nnlib.Dense(6, 5, "relu", random_state=2),
                             nnlib.Dense(5, 3, random_state=4)])


def test_a_batch1_fit_beside_a_python_loop_is_not_slowed_by_gil_handoffs():
    # The convoy: a thread looping in Python holds the GIL until the switch interval
    # forces it off, so every kernel of the fit that let the GIL go would wait out a
    # whole interval to get it back (about a dozen per row here). With tiny kernels
    # keeping it, the fit shares the GIL as Python code does.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((120, 8)), rng.integers(0, 3, 120)
    model = _python_layer_model()
    model.fit(X[:4], y[:4], optimizer=nnlib.optim.SGD(lr=0.01), batch_size=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(X, y, optimizer=nnlib.optim.SGD(lr=0.01), batch_size=1, verbose=0)
    alone = time.perf_counter() - t0
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.05)
    stop = []

    def spin():
        deadline = time.perf_counter() + 60
        while not stop and time.perf_counter() < deadline:
            pass
    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        t0 = time.perf_counter()
        model.fit(X, y, optimizer=nnlib.optim.SGD(lr=0.01), batch_size=1, verbose=0)
        took = time.perf_counter() - t0
    finally:
        stop.append(True)
        t.join()
        sys.setswitchinterval(old)
    # sharing the GIL costs about 2x; one hand-off per row would add 120 x 50 ms = 6 s
    assert took < 4 * alone + 1.0, \
        f"the fit took {took:.2f} s beside a Python loop, {alone:.2f} s alone"


def _epoch_setup(sizes, rows, batch, dtype=np.float64):
    """A compiled EpochSetup (SGD) of a Dense stack of ``sizes`` on ``rows`` rows."""
    from tests._twin_fit import make_setup
    rng = np.random.default_rng(1)
    model = nnlib.Sequential([nnlib.Dense(a, b, "relu" if i < len(sizes) - 2 else "identity",
                                          random_state=i, dtype=dtype)
                              for i, (a, b) in enumerate(zip(sizes, sizes[1:]))])
    X = rng.standard_normal((rows, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], rows)
    setup = make_setup(_train, model, X, y, "softmax_cross_entropy",
                       optimizer=nnlib.optim.SGD(lr=1e-4), batch_size=batch)
    grads = ([np.empty_like(layer.W) for layer in model.layers],
             [np.empty_like(layer.b) for layer in model.layers])
    return setup, np.arange(rows, dtype=np.int64), grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_epoch_keeps_the_gil_for_a_few_steps_of_a_tiny_net(dtype):
    # 8 batch-1 steps of a 4-3-2 net: ~4300 values (gil.pxd counts each step's update and
    # STEP_VALUES), far below GIL_RELEASE_MIN: the call shares the GIL as Python does
    setup, order, (dWs, dbs) = _epoch_setup([4, 3, 2], 8, 1, dtype)
    with Counter() as counter:
        moved, took = counter.moved_during(lambda: _train.run_epoch(setup, order, 0), 50)
        assert not moved, f"run_epoch let the GIL go ({took * 1e3:.2f} ms for 50 calls)"
        moved, took = counter.moved_during(lambda: _train.loss_grad(setup, dWs, dbs), 50)
        assert not moved, f"loss_grad let the GIL go ({took * 1e3:.2f} ms for 50 calls)"
    # 700 rows in one evaluation (~31k values with each row's own passes): its labels are
    # copied and checked in one loop, not by NumPy (whose copy, min and max let the GIL
    # go briefly over 500 values)
    setup, order, (dWs, dbs) = _epoch_setup([4, 3, 2], 700, 700, dtype)
    with Counter() as counter:
        moved, took = counter.moved_during(lambda: _train.loss_grad(setup, dWs, dbs), 20)
        assert not moved, f"loss_grad let the GIL go ({took * 1e3:.2f} ms for 20 calls)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_epoch_lets_the_gil_go_for_more_work(dtype):
    # 512 rows of a 64-64-64 net: ~1.6e6 values of products alone; 60000 rows of a 1-1-1
    # net: few products, but each row's own passes (~130 ns a row, 2.1e6 values)
    for sizes, rows, batch in [([64, 64, 64], 512, 32), ([1, 1, 1], 60000, 60000)]:
        setup, order, (dWs, dbs) = _epoch_setup(sizes, rows, batch, dtype)
        with Counter() as counter:
            for name, call in [("run_epoch", lambda: _train.run_epoch(setup, order, 0)),
                               ("loss_grad", lambda: _train.loss_grad(setup, dWs, dbs))]:
                # a call that keeps the GIL never lets it count, however often tried
                assert counter.released_in_some_window(call), \
                    f"{name} kept the GIL ({sizes}, {rows} rows)"


@pytest.mark.parametrize("shuffle,random_state,extra",
                         [(False, None, {}), (True, 3, {}), (True, None, {}),
                          (False, None, {"validation_split": 0.25, "metrics": ["accuracy"]})],
                         ids=["in-order", "int-seed", "generator", "validation"])
def test_an_endless_compiled_fit_lets_a_waiting_thread_in(shuffle, random_state, extra):
    # A thread waiting for the GIL gets it when the holder runs a switch interval without
    # letting it go (the timed drop request), or when it wins the race for a release. A
    # fit whose tiny epochs keep the GIL must then not let it go briefly once per epoch
    # (np.arange, NumPy's permutation): each such release wakes the waiter and restarts
    # its interval, the fit takes the GIL back first, and the waiter starves. The
    # reliability fuzz's interrupt thread waited > 60 s in CI; here, with a 50 ms
    # interval and the two threads on different CPUs (where the woken waiter loses the
    # race), 0.07-2.7 s (median 0.55 s) with the release, 51-57 ms without it.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 3, 40)
    model = nnlib.Sequential([nnlib.Dense(3, 7, "relu", random_state=0),
                              nnlib.Dense(7, 3, random_state=1)])
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = len(cpus) >= 2
    old, old_cpus = sys.getswitchinterval(), set(cpus)
    late = []

    def waiter():
        if pin:
            os.sched_setaffinity(0, {cpus[1]})      # this thread only (Linux)
        due = time.monotonic() + 0.05
        time.sleep(0.05)
        late.append(time.monotonic() - due)          # runs once it has the GIL
        model.stop_training = True
    sys.setswitchinterval(0.05)
    if pin:
        os.sched_setaffinity(0, {cpus[0]})
    try:
        for _ in range(5):
            late.clear()
            deadline = time.monotonic() + 10
            t = threading.Thread(target=waiter, daemon=True)
            t.start()
            model.fit(X, y, epochs=10**6, batch_size=4, shuffle=shuffle,
                      random_state=random_state, n_threads=1, **extra,
                      callbacks=[lambda epoch, logs: time.monotonic() > deadline])
            t.join()
            assert late and late[0] < 0.5, f"the waiting thread got the GIL {late} s late"
    finally:
        sys.setswitchinterval(old)
        if pin:
            os.sched_setaffinity(0, old_cpus)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_max_column_is_argmax(dtype):
    # fit's accuracies use it once per epoch instead of argmax (which lets the GIL go):
    # every row of 3 and 4 values from the special ones (NaN, infinities, signed zeros,
    # ties, subnormals), and random rows
    # (up to NUMPY_GIL_MIN values by ufuncs, so the rows go in pieces of at most that;
    # above it argmax itself)
    import itertools
    from nnlib.metrics import NUMPY_GIL_MIN, first_max_column
    vals = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, 1.0, -1.0, 2.0, 1e-300, -1e-300,
                     5e-324]).astype(dtype)
    for c in (3, 4):
        rows = np.array(list(itertools.product(vals, repeat=c)), dtype)
        step = NUMPY_GIL_MIN // c
        for i in range(0, len(rows), step):
            piece = rows[i:i + step]
            np.testing.assert_array_equal(first_max_column(piece), piece.argmax(axis=1))
    rng = np.random.default_rng(0)
    for c in (1, 2, 7, 10):
        for n in (NUMPY_GIL_MIN // c, 500):
            Z = rng.standard_normal((n, c)).astype(dtype)
            np.testing.assert_array_equal(first_max_column(Z), Z.argmax(axis=1))
    assert first_max_column(np.empty((0, 3), dtype)).shape == (0,)


def test_first_max_column_keeps_the_gil_up_to_numpy_s_threshold():
    from nnlib.metrics import NUMPY_GIL_MIN, first_max_column
    Z = np.random.default_rng(1).standard_normal((NUMPY_GIL_MIN // 10, 10))
    with Counter() as counter:
        moved, took = counter.moved_during(lambda: first_max_column(Z), 50)
        assert not moved, f"first_max_column let the GIL go ({took * 1e3:.2f} ms)"

