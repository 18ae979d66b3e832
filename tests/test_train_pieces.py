"""The compiled epoch's products in row blocks (``mm_pieces`` in ``nnlib/_kernels/train.pyx``):
with BLAS on one thread, a float64 step's products above ``SMALL_GEMM_MNK`` (10^6)
multiply-adds go to BLAS as blocks of rows under it. Checked on a network and batch
that cross it (101 x 100 x 110 in the forward and weight-gradient products of the first
layer, cut into uneven blocks; the last batch of 48 rows stays whole), and in
``loss_grad`` over all 250 rows (the forward product in blocks): against the NumPy twin,
and against the same call with BLAS on two threads (products whole).
"""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib._kernels import blas
from nnlib._reference import train as twin
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

compiled = compiled_train()

N, D, HIDDEN, BATCH = 250, 100, 110, 101
ULPS = 32           # as tests/test_train_twin.py: normwise, in units of float64's eps
OPTIMIZERS = [
    ("sgd", lambda: O.SGD(lr=0.05)),                   # the fused GEMM update
    # eps 1e-3 as in tests/test_train_twin.py: with 1e-8, a gradient entry that is
    # ~1e-17 either way (a rounding difference) becomes a step of up to lr
    ("sklearn-adam", lambda: O.SklearnAdam(lr=0.01, epsilon=1e-3)),
]


@pytest.fixture
def blas_threads():
    """Set BLAS's thread count inside a test; the count before is put back after."""
    if blas.get_num_threads() is None:
        pytest.skip("BLAS's thread count cannot be set (SciPy BLAS fallback)")
    before = blas.get_num_threads()
    yield blas.set_num_threads
    blas.set_num_threads(before)


def _model(seed=0):
    layers = [nnlib.Dense(D, HIDDEN, "relu", dtype=np.float64, random_state=seed),
              nnlib.Dense(HIDDEN, 3, "identity", dtype=np.float64, random_state=seed + 1)]
    return nnlib.Sequential(layers)


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(0, 3, N)


def _epoch(module, make_opt, threads=None, set_threads=None):
    """One epoch over a fixed permutation, batches of BATCH; (result, params, states)."""
    model = _model()
    X, y = _data()
    setup = make_setup(module, model, X, y, "softmax_cross_entropy", optimizer=make_opt(),
                       batch_size=BATCH, l2=1e-3, l2_per_batch=True)
    order = np.random.default_rng(2).permutation(N).astype(np.int64)
    if set_threads is not None:
        set_threads(threads)
    out = module.run_epoch(setup, order, 0)
    return out, [p.copy() for p in model.params], [s.copy() for s in setup.states
                                                    if s is not None]


def _assert_close(got, want, what):
    scale = max(float(np.abs(want).max(initial=0.0)), np.finfo(np.float64).tiny)
    err = float(np.abs(np.asarray(got) - np.asarray(want)).max(initial=0.0))
    assert err <= ULPS * np.finfo(np.float64).eps * scale, (
        f"{what}: error {err:.3g} = {err / (np.finfo(np.float64).eps * scale):.1f} ulps")


def test_the_products_cross_the_block_size():
    assert BATCH * D * HIDDEN > 10**6 >= (N % BATCH) * D * HIDDEN


@pytest.mark.parametrize("name, make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_blocked_products_match_the_twin(name, make_opt, blas_threads):
    got = _epoch(compiled, make_opt, 1, blas_threads)
    want = _epoch(twin, make_opt)
    assert got[0][1:] == want[0][1:], f"(seen, steps, status, finite): {got[0]} vs {want[0]}"
    _assert_close(got[0][0], want[0][0], "loss_sum")
    for i, (a, b) in enumerate(zip(got[1] + got[2], want[1] + want[2])):
        _assert_close(a, b, f"array {i}")


@pytest.mark.parametrize("name, make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_blocked_and_whole_products_agree(name, make_opt, blas_threads):
    blocked = _epoch(compiled, make_opt, 1, blas_threads)
    whole = _epoch(compiled, make_opt, 2, blas_threads)
    assert blocked[0][1:] == whole[0][1:]
    _assert_close(blocked[0][0], whole[0][0], "loss_sum")
    for i, (a, b) in enumerate(zip(blocked[1] + blocked[2], whole[1] + whole[2])):
        _assert_close(a, b, f"array {i}")


def _loss_grad(module, threads=None, set_threads=None):
    model = _model()
    X, y = _data()
    setup = make_setup(module, model, X, y, "softmax_cross_entropy", l2=1e-3)
    dWs = [np.empty_like(W) for W in model.params[0::2]]
    dbs = [np.empty_like(b) for b in model.params[1::2]]
    if set_threads is not None:
        set_threads(threads)
    value, status = module.loss_grad(setup, dWs, dbs)
    return value, status, dWs + dbs


def test_loss_grad_with_blocked_products(blas_threads):
    assert N * D * HIDDEN > 10**6
    got = _loss_grad(compiled, 1, blas_threads)
    for want in (_loss_grad(twin), _loss_grad(compiled, 2, blas_threads)):
        assert got[1] == want[1] == 0
        _assert_close(got[0], want[0], "loss")
        for i, (a, b) in enumerate(zip(got[2], want[2])):
            _assert_close(a, b, f"gradient {i}")
