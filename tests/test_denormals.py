"""The flush-denormal mode of the compiled epoch (``nnlib.set_flush_denormal``).

* the setting: torch's shape (returns whether the CPU supports it), read back by
  ``get_flush_denormal``, IEEE by default;
* an epoch that meets no subnormal is bitwise the IEEE epoch (``run_epoch``,
  ``loss_grad``), float32 and float64;
* on data built so the softmax's probabilities are subnormal (logit gaps of 95 in
  float32, 720 in float64: ``exp(-gap)`` is below ``tiny`` and above the smallest
  subnormal), the flushed epoch differs from the IEEE one only in those values: its
  loss gradient is the IEEE one with every entry below ``tiny`` made 0
  (``np.where(abs(x) < tiny, 0, x)``, what flush-to-zero does to a result), and every
  parameter is within ``tiny`` of the IEEE parameter;
* the twin story: the NumPy twin is the IEEE epoch. A flushed operation is off by less
  than ``tiny``, far below the twin comparison's tolerance (32 epsilons of each array's
  scale), so the flushed epoch is held to the twin by the same test as the IEEE one, on
  the subnormal data too; the exact statement of what flushing changes is the
  ``np.where`` identity above, tested against the IEEE compiled epoch, whose loss
  gradient is the twin's up to rounding, while a twin flushing each of its array
  results would not reproduce the compiled epoch bitwise (it rounds per layer in float64);
* the caller's floating-point mode is put back after ``fit``, after a fit refused for
  non-finite input or stopped by a non-finite step and after one interrupted by SIGINT, on the caller's thread (a NumPy
  product of two float32 values whose product is subnormal stays subnormal, and MXCSR's
  FTZ and DAZ bits are as before) and on the OpenMP worker threads of the epoch.

No timing here: that flushing is faster is measured by bench/ (per_sample, minibatch).
"""
import os
import signal
import threading

import numpy as np
import pytest

import nnlib
from nnlib._kernels import train as C
from nnlib._kernels.parallel import max_threads
from nnlib._reference import train as twin
from tests._twin_fit import make_setup

FTZ_DAZ = 0x8040
DTYPES = [np.float32, np.float64]
# the logit gap that makes exp(-gap) subnormal, not 0, in each dtype
SUBNORMAL_GAP = {np.float32: 95.0, np.float64: 720.0}

pytestmark = pytest.mark.skipif(not C._flush_supported(),
                                reason="no flush-denormal mode on this CPU")


@pytest.fixture
def flush():
    """Turns the mode on for the test and off after it, whatever the test does."""
    assert nnlib.set_flush_denormal(True)
    try:
        yield
    finally:
        nnlib.set_flush_denormal(False)


def _ieee_here():
    """The calling thread computes with subnormals: a float32 product of 1e-20 and 1e-20
    (1e-40) is subnormal, not 0."""
    return float(np.float32(1e-20) * np.float32(1e-20)) > 0.0


def test_the_setting_is_ieee_by_default_and_reads_back():
    assert nnlib.get_flush_denormal() is False
    assert nnlib.set_flush_denormal(True) is True
    try:
        assert nnlib.get_flush_denormal() is True
        assert _ieee_here()                      # the caller's thread is not touched
        assert C._csr() & FTZ_DAZ == 0
    finally:
        assert nnlib.set_flush_denormal(False) is True
    assert nnlib.get_flush_denormal() is False


@pytest.mark.parametrize("bad", [None, 1.0, "yes"])
def test_the_setting_takes_a_bool(bad):
    with pytest.raises(TypeError, match="mode must be a bool"):
        nnlib.set_flush_denormal(bad)
    assert nnlib.get_flush_denormal() is False


# ---------------------------------------------------------------- results

def _model(dtype, seed=0):
    layers = [nnlib.Dense(6, 8, "tanh", dtype=dtype, random_state=seed),
              nnlib.Dense(8, 3, "identity", dtype=dtype, random_state=seed + 1)]
    return nnlib.Sequential(layers)


def _epoch(model, X, y, flush, batch_size, steps=-1):
    """One run_epoch of the compiled loop on a copy of ``model``: (result, params, the
    last batch's loss gradient dZ_L, from the workspace)."""
    m = nnlib.Sequential([nnlib.Dense(l.n_in, l.n_out, l.activation, dtype=l.dtype)
                          for l in model.layers])
    for p, q in zip(m.params, model.params):
        p[...] = q
    nnlib.set_flush_denormal(flush)
    try:
        setup = make_setup(C, m, X, y, "softmax_cross_entropy",
                           optimizer=nnlib.optim.SGD(lr=0.1), batch_size=batch_size)
        out = C.run_epoch(setup, np.arange(X.shape[0], dtype=np.int64), 0, steps)
    finally:
        nnlib.set_flush_denormal(False)
    last = X.shape[0] - (X.shape[0] - 1) // batch_size * batch_size  # the last batch
    return out, [p.copy() for p in m.params], setup.workspace.dZ[-1][:last].copy()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("batch_size", [1, 4], ids=["batch-1", "batch-4"])
def test_without_subnormals_the_flushed_epoch_is_bitwise_the_ieee_one(dtype, batch_size):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 6)).astype(dtype), rng.integers(0, 3, 16)
    model = _model(dtype)
    (o0, p0, z0), (o1, p1, z1) = (_epoch(model, X, y, f, batch_size) for f in (0, 1))
    assert o0 == o1
    for a, b in zip(p0 + [z0], p1 + [z1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_without_subnormals_flushed_loss_grad_is_bitwise_the_ieee_one(dtype):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((9, 6)).astype(dtype), rng.integers(0, 3, 9)
    model = _model(dtype)
    setup = make_setup(C, model, X, y, "softmax_cross_entropy")
    got = []
    for flush in (False, True):
        dWs = [np.empty_like(l.W) for l in model.layers]
        dbs = [np.empty_like(l.b) for l in model.layers]
        nnlib.set_flush_denormal(flush)
        try:
            loss, status = C.loss_grad(setup, dWs, dbs)
        finally:
            nnlib.set_flush_denormal(False)
        got.append((loss, status, dWs + dbs))
    assert got[0][:2] == got[1][:2]
    for a, b in zip(got[0][2], got[1][2]):
        np.testing.assert_array_equal(a, b)


def _confident(dtype):
    """A linear softmax layer 3 -> 4 whose logits on the one-hot rows of X are 0 for the
    row's class and -gap elsewhere: p_j = exp(-gap) is subnormal for j != class."""
    model = nnlib.Sequential([nnlib.Dense(3, 4, "identity", dtype=dtype, init="zeros")])
    W = model.layers[0].W
    W[...] = -SUBNORMAL_GAP[dtype]
    W[np.arange(3), np.arange(3)] = 0.0
    return model, np.eye(3, dtype=dtype), np.arange(3)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_with_subnormals_the_flushed_epoch_differs_only_below_tiny(dtype):
    tiny = np.finfo(dtype).tiny
    model, X, y = _confident(dtype)
    (o0, p0, z0), (o1, p1, z1) = (_epoch(model, X, y, f, 1) for f in (0, 1))
    subnormal = (z0 != 0) & (np.abs(z0) < tiny)
    assert subnormal.any(), "the case must make the IEEE loss gradient subnormal"
    # flush-to-zero on the loss gradient: exactly the IEEE one with its subnormals made 0
    np.testing.assert_array_equal(z1, np.where(np.abs(z0) < tiny, 0, z0))
    assert o0[1:] == o1[1:] and abs(o0[0] - o1[0]) <= tiny
    moved = False
    for a, b in zip(p0, p1):
        diff = np.abs(a.astype(np.float64) - b)
        assert diff.max() < tiny, "a parameter moved by more than tiny"
        moved |= bool(diff.max() > 0)
    assert moved, "the IEEE epoch's subnormal bias steps must be flushed"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("data", ["random", "subnormal"])
def test_the_flushed_epoch_meets_the_twin_tolerance(dtype, data, flush):
    """The twin comparison of tests/test_train_twin.py (normwise, 32 epsilons) holds
    between the flushed epoch and the twin's results with their subnormals flushed: what
    flushing changes is below ``tiny``, and an array whose every IEEE value is subnormal
    (the normwise scale then being ``tiny``) is 0."""
    from tests.test_train_twin import _assert_close
    if data == "random":
        rng = np.random.default_rng(3)
        model = _model(dtype)
        X, y = rng.standard_normal((10, 6)).astype(dtype), rng.integers(0, 3, 10)
    else:
        model, X, y = _confident(dtype)
    results = []
    for module in (C, twin):
        m = nnlib.Sequential([nnlib.Dense(l.n_in, l.n_out, l.activation, dtype=dtype)
                              for l in model.layers])
        for p, q in zip(m.params, model.params):
            p[...] = q
        setup = make_setup(module, m, X, y, "softmax_cross_entropy",
                           optimizer=nnlib.optim.SGD(lr=0.1), batch_size=2)
        out = module.run_epoch(setup, np.arange(X.shape[0], dtype=np.int64), 0)
        results.append((out, m.params))
    (got, got_p), (want, want_p) = results
    assert got[1:] == want[1:]
    _assert_close(got[0], want[0], dtype, "loss_sum")
    tiny = np.finfo(dtype).tiny
    for i, (a, b) in enumerate(zip(got_p, want_p)):
        # the subnormal case's biases are subnormal in IEEE arithmetic (every step adds
        # -lr p_j < tiny): flushed, they are 0, as the twin's flushed results are
        _assert_close(a, np.where(np.abs(b) < tiny, 0, b), dtype, f"param {i}")


# ---------------------------------------------------------------- the caller's mode

def _fit(model, X, y, **kw):
    kw = {"loss": "softmax_cross_entropy", "optimizer": nnlib.optim.SGD(lr=0.1),
          "epochs": 2, "batch_size": 4, "verbose": 0, "n_threads": 1, **kw}
    return model.fit(X, y, **kw)


def _assert_caller_mode_kept(before):
    assert C._csr() & FTZ_DAZ == before & FTZ_DAZ
    assert _ieee_here()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fit_puts_the_callers_mode_back(dtype, flush):
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((20, 6)).astype(dtype), rng.integers(0, 3, 20)
    before = C._csr()
    _fit(_model(dtype), X, y)
    _assert_caller_mode_kept(before)


def test_a_caller_that_flushes_itself_keeps_flushing(flush):
    """The epoch puts back the caller's bits, whatever they were (set here as
    ``torch.set_flush_denormal(True)``)."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((20, 6)).astype(np.float32), rng.integers(0, 3, 20)
    torch = pytest.importorskip("torch")
    assert torch.set_flush_denormal(True)
    try:
        _fit(_model(np.float32), X, y)
        assert C._csr() & FTZ_DAZ == FTZ_DAZ
        assert not _ieee_here()
    finally:
        torch.set_flush_denormal(False)
    assert _ieee_here()


def test_a_fit_stopped_by_bad_input_or_a_nonfinite_step_puts_the_mode_back(flush):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((20, 6)).astype(np.float32)
    X[7, 2] = np.inf
    before = C._csr()
    with pytest.raises((nnlib.NonFiniteError, ValueError)):
        _fit(_model(np.float32), X, rng.integers(0, 3, 20))
    _assert_caller_mode_kept(before)
    # a step that becomes non-finite inside the compiled loop (lr far too large): the
    # loop stops, the run rewinds and replays, fit warns and returns
    X = rng.standard_normal((64, 6)).astype(np.float32) * 1e3
    with pytest.warns(RuntimeWarning, match="non-finite"):
        history = _fit(_model(np.float32), X, rng.integers(0, 3, 64),
                       optimizer=nnlib.optim.SGD(lr=1e30), epochs=50)
    assert history.stop_reason == "nonfinite"
    _assert_caller_mode_kept(before)


def test_an_interrupted_fit_puts_the_mode_back(flush, sigint_raises):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((2000, 6)).astype(np.float32)
    y = rng.integers(0, 3, 2000)
    before = C._csr()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _fit(_model(np.float32), X, y, epochs=10**6, batch_size=1)
    finally:
        timer.cancel()
    _assert_caller_mode_kept(before)


def two_thread_epoch():
    """One epoch through a setup with ``n_threads=2, update_threads=2``."""
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((512, 6)).astype(np.float32), rng.integers(0, 3, 512)
    model = nnlib.Sequential([nnlib.Dense(6, 512, "relu", dtype=np.float32, random_state=0),
                              nnlib.Dense(512, 3, dtype=np.float32, random_state=1)])
    setup = make_setup(C, model, X, y, "softmax_cross_entropy",
                       optimizer=nnlib.optim.SGD(lr=0.1, momentum=0.9), batch_size=256,
                       n_threads=2, update_threads=2)
    C.run_epoch(setup, np.arange(512, dtype=np.int64), 0)


@pytest.mark.skipif(max_threads() < 2, reason="built without OpenMP")
def test_the_openmp_workers_get_their_mode_back(flush):
    """An epoch on two threads (``EpochSetup(n_threads=2, update_threads=2)``, as the
    estimators' and dask's runs may be) sets the mode on its OpenMP team and puts each
    worker's bits back (read through a team of the same size afterwards)."""
    before = C._team_csr(2)
    two_thread_epoch()
    after = C._team_csr(2)
    assert [c & FTZ_DAZ for c in after] == [c & FTZ_DAZ for c in before]
    assert _ieee_here()


_FRESH_PROCESS = """
import numpy as np
import nnlib
import nnlib.functional as F
from nnlib._kernels import train as C
from tests.test_denormals import two_thread_epoch
nnlib.set_flush_denormal(True)
two_thread_epoch()
nnlib.set_flush_denormal(False)
print([c & 0x8040 for c in C._team_csr(2)])
s = F.sigmoid(np.full(1 << 16, -88.0, np.float32), n_threads=2)   # ~6e-39: subnormal
print(int((s == 0).sum()))
"""


@pytest.mark.skipif(max_threads() < 2, reason="built without OpenMP")
def test_workers_created_by_the_epoch_do_not_inherit_the_mode():
    """In a process whose first OpenMP region is the flushed epoch's, the runtime creates
    the workers there: they must start from the caller's mode before the call, not copy
    the flushed one (which they would then keep, and a later IEEE kernel on two threads
    would flush half its results)."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], cwd=root,
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=root))
    assert r.returncode == 0, r.stderr[-2000:]
    bits, zeros = r.stdout.split("\n")[:2]
    assert bits == "[0, 0]"
    assert zeros == "0"
