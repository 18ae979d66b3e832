"""The training step's large passes on BLAS's own threads (blas_pool.h, pass_blocks.pxd).

* ``pool_run`` runs every task once: split between the caller and OpenBLAS's worker
  when BLAS has two threads, all on the caller with the pool off; each task under the
  caller's MXCSR (flush-denormal bits, rounding), whichever thread runs it;
* ``run_epoch`` with BLAS on two threads and the loop's ``n_threads`` 1 runs the row
  gather, bias plus activation and the activation's backward on BLAS's threads: its
  weights are bitwise those of the same run with the pool off (the same products on
  BLAS's two threads, every pass on the caller), for every activation kind and both
  dtypes, with blocks that end off a 64-byte line and a last batch of other rows, a
  step stopped by a NaN, a sparse X (its first layer's bias and activation), and in the
  flush-denormal mode on subnormal data.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnlib
from nnlib._kernels import blas
from nnlib._kernels import train as compiled
from nnlib._threads import blas_threads
from tests._twin_fit import make_setup

CONTROL = ~0x3F & 0xFFFF        # MXCSR without its sticky exception flags


@pytest.fixture
def two_blas_threads():
    """BLAS on two threads for the test (skipped where it cannot be, or the pool is
    unavailable), the pool on after it whatever the test does."""
    with blas_threads(2):
        if blas.pool_threads() < 2:
            pytest.skip("no OpenBLAS pool of two threads here")
        try:
            yield
        finally:
            blas._set_pool(True)


def test_pool_run_splits_the_tasks_and_runs_each_under_the_callers_mxcsr(
        two_blas_threads):
    csr = (compiled._csr() & CONTROL) | 0x8040      # flush and denormals-are-zero on
    for _ in range(5):        # a descheduled worker may leave every task to the caller
        threads, seen = blas._pool_probe(64, 2, 5e-4, csr)
        if len(set(threads)) == 2:
            break
    assert len(set(threads)) == 2
    assert threads.size == 64 and np.all(threads != 0)
    assert set(int(s) & CONTROL for s in seen) == {csr}
    assert compiled._csr() & 0x8040 == 0       # the caller's own bits back


def test_pool_off_runs_every_task_on_the_caller(two_blas_threads):
    blas._set_pool(False)
    threads, seen = blas._pool_probe(9, 2, 0.0)
    assert len(set(threads)) == 1 and np.all(threads != 0)
    assert blas.pool_threads() == 1


ACTS = ["relu", "tanh", "sigmoid", "identity"]


def _epoch(pool, dtype, act, X, y, order, B, sizes, flush=False):
    """One run_epoch of batches of B on BLAS's two threads, the pool on or off: the
    parameters and the last step's activations, dZ and bias gradients (the workspace),
    and the call's (steps, status, finite)."""
    blas._set_pool(pool)
    layers = [nnlib.Dense(a, b, act if i < len(sizes) - 2 else "identity", dtype=dtype,
                          random_state=i)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    m = nnlib.Sequential(layers)
    setup = make_setup(compiled, m, X, y, "softmax_cross_entropy",
                       optimizer=nnlib.optim.SGD(lr=0.1), batch_size=B, rows=B)
    before = nnlib.set_flush_denormal(flush) and nnlib.get_flush_denormal()
    try:
        out = compiled.run_epoch(setup, order, 0)
    finally:
        nnlib.set_flush_denormal(False)
    assert before == flush
    ws = setup.workspace
    return [a.copy() for a in list(m.params) + list(ws.H + ws.dZ + ws.db)], out[2:]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTS)
def test_epoch_passes_on_blas_threads_are_bitwise_the_callers(act, dtype, rng,
                                                              two_blas_threads):
    """190 inputs and 180 hidden units of 255-row batches (48 450 and 45 900 values,
    over PAR_MIN_ELEMS): the gather splits at row 127, bias and activation too, the
    backward at column 80 (float32) or 88 (float64), not at 90; 512 rows leave a last
    batch of 2, whose passes stay on the caller."""
    sizes, n, B = (190, 180, 20), 512, 255
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n)
    order = rng.permutation(n).astype(np.int64)
    on, status_on = _epoch(True, dtype, act, X, y, order, B, sizes)
    off, status_off = _epoch(False, dtype, act, X, y, order, B, sizes)
    assert status_on == status_off == (3, 0, True)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_sparse_first_layers_pass_on_blas_threads_is_bitwise_the_callers(dtype, rng,
                                                                         two_blas_threads):
    """A SciPy CSR X (a third of its values 0): the first layer's product is the sparse
    rows' (sparse_rows.pxd, no gather), its bias and tanh over 255 x 180 values split on
    BLAS's threads at row 127 as after a dense product."""
    import scipy.sparse
    sizes, n, B = (190, 180, 20), 512, 255
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    X[rng.random(X.shape) < 1 / 3] = 0
    y = rng.integers(0, sizes[-1], n)
    order = rng.permutation(n).astype(np.int64)
    Xs = scipy.sparse.csr_matrix(X)
    on, status_on = _epoch(True, dtype, "tanh", Xs, y, order, B, sizes)
    off, status_off = _epoch(False, dtype, "tanh", Xs, y, order, B, sizes)
    assert status_on == status_off == (3, 0, True)
    for a, b in zip(on, off):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_nan_row_stops_the_pooled_epoch_where_it_stops_the_callers(dtype, rng,
                                                                     two_blas_threads):
    sizes, n, B = (190, 180, 20), 512, 255
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n)
    order = rng.permutation(n).astype(np.int64)
    X[order[300], 7] = np.nan            # in the second batch
    on, status_on = _epoch(True, dtype, "relu", X, y, order, B, sizes)
    off, status_off = _epoch(False, dtype, "relu", X, y, order, B, sizes)
    assert status_on == status_off and status_on[0] == 1 and status_on[1] != 0
    for a, b in zip(on, off):
        assert a.tobytes() == b.tobytes()


@pytest.mark.skipif(not compiled._flush_supported(), reason="no flush-denormal mode")
@pytest.mark.parametrize("act", ["tanh", "identity"])
def test_pooled_passes_flush_denormals_as_the_callers_do(act, rng, two_blas_threads):
    """Float32 inputs of order 1e-39 (subnormal: under 2**-126) and weights of order
    0.1 make the pre-activations subnormal: flushed on the caller, they must be flushed
    on BLAS's worker too (tanh of a subnormal is that subnormal under IEEE, 0 with
    denormals-are-zero). The flushed run differs from the IEEE one, so subnormals are
    met (the step's activations H_0, formed from zero biases)."""
    sizes, n, B = (190, 180, 20), 512, 256
    dtype = np.float32
    X = (rng.standard_normal((n, sizes[0])) * 1e-39).astype(dtype)
    y = rng.integers(0, sizes[-1], n)
    order = rng.permutation(n)[:B].astype(np.int64)   # one step: H_0 from zero biases
    on, _ = _epoch(True, dtype, act, X, y, order, B, sizes, flush=True)
    off, _ = _epoch(False, dtype, act, X, y, order, B, sizes, flush=True)
    ieee, _ = _epoch(False, dtype, act, X, y, order, B, sizes, flush=False)
    for a, b in zip(on, off):
        assert a.tobytes() == b.tobytes()
    assert off[len(sizes) * 2 - 2].tobytes() != ieee[len(sizes) * 2 - 2].tobytes()   # H_0


def test_pool_run_caps_its_pieces_at_openblas_threads():
    # more pieces than OpenBLAS has threads would queue one to a worker that does not
    # exist and wait for it for ever: pool_run caps them at OpenBLAS's count per call
    code = ("from nnlib._kernels import blas; blas.load(); "
            "t, _ = blas._pool_probe(4, 2, 0.0); print(len(t))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4"
