"""The deferred L2 penalties of the compiled epoch (``nnlib/_kernels/train.pyx``, rules
that do not divide): the weights of up to five steps kept, their penalty sums formed six
at a time (``penalty.h``). Each step's reported loss, the epoch's sum, the weights and
the states must be bitwise those of the same epoch with every sum formed at its step
(the ring off, ``train._set_copies("penalties", False)``): over many steps (the ring
fills and empties, the last batch short), layers whose weight counts are not multiples
of four (the sum's fused tail), float32 and float64, and weights so large that the
finiteness bound fails and the sums are formed at the step again, until the loss
overflows and the epoch stops at the same step.
"""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

train = compiled_train()

N, D, HIDDEN, C, BATCH = 103, 13, 7, 3, 5      # 91 and 21 weights: n % 4 = 3 and 1
OPTIMIZERS = [
    ("sklearn-sgd-nesterov", lambda: O.SklearnSGD(lr=0.05, momentum=0.9, nesterov=True)),
    ("sklearn-sgd", lambda: O.SklearnSGD(lr=0.05, momentum=0.9, nesterov=False)),
    ("sgd-momentum", lambda: O.SGD(lr=0.05, momentum=0.9)),
    ("sgd", lambda: O.SGD(lr=0.05)),
]
DTYPES = [np.float64, np.float32]


def _epoch(make_opt, dtype, penalties, l2=1e-2, big=None, hidden=HIDDEN):
    """One epoch with the ring on or off; (run_epoch's result, params, states)."""
    previous = train._set_copies("penalties", penalties)
    try:
        model = nnlib.Sequential([
            nnlib.Dense(D, hidden, "relu", dtype=dtype, random_state=0),
            nnlib.Dense(hidden, C, "identity", dtype=dtype, random_state=1)])
        if big is not None:
            model.layers[0].W[0, 0] = big
        rng = np.random.default_rng(2)
        X, y = rng.standard_normal((N, D)), rng.integers(0, C, N)
        setup = make_setup(train, model, X, y, "softmax_cross_entropy",
                           optimizer=make_opt(), batch_size=BATCH, l2=l2,
                           l2_per_batch=True)
        order = rng.permutation(N).astype(np.int64)
        out = train.run_epoch(setup, order, 0)
        return out, [p.copy() for p in model.params], [s.copy() for s in setup.states
                                                        if s is not None]
    finally:
        train._set_copies("penalties", previous)


def _assert_same(got, want):
    assert got[0] == want[0], f"(loss_sum, seen, steps, status, finite): {got[0]} vs {want[0]}"
    for i, (a, b) in enumerate(zip(got[1] + got[2], want[1] + want[2])):
        assert a.tobytes() == b.tobytes(), f"array {i} differs"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name, make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_deferred_penalties_are_bitwise_the_immediate_ones(name, make_opt, dtype):
    got, want = _epoch(make_opt, dtype, True), _epoch(make_opt, dtype, False)
    assert got[0][2] == -(-N // BATCH) and got[0][3] == 0
    _assert_same(got, want)


# (dtype, l2, one weight): l2 / 2 * pen stays finite, l2 / 2 * n max|w|^2 does not
BIG = [(np.float64, 1e3, 1e152), (np.float32, 1e235, 1e36)]


@pytest.mark.parametrize("dtype, l2, big", BIG, ids=lambda v: getattr(v, "__name__", ""))
def test_a_failed_bound_forms_the_sums_at_the_step(dtype, l2, big):
    # the bound fails at the first step, so the sums are formed at their steps; the L2
    # steps then grow the weight until a loss is not finite: the same step both ways
    make_opt = OPTIMIZERS[0][1]
    got = _epoch(make_opt, dtype, True, l2=l2, big=big)
    want = _epoch(make_opt, dtype, False, l2=l2, big=big)
    assert got[0][2] >= 1 and got[0][3] != 0
    _assert_same(got, want)


def _epoch_and_peak(*args, **kwargs):
    """_epoch's result and the peak memory it traced (tracemalloc)."""
    import tracemalloc
    tracemalloc.start()
    try:
        return _epoch(*args, **kwargs), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("hidden, ring", [(1000, True), (3300, False)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_ring_is_kept_only_under_its_cap(dtype, hidden, ring):
    # 5 snapshots of (13 + 3) * hidden weights: 0.32 / 0.64 MB at 1000, 1.06 / 2.1 MB
    # at 3300 (float32 / float64), over the ring's 1 MiB: the sums are then formed at
    # each step, the same values without the 5 snapshots' memory
    make_opt = OPTIMIZERS[0][1]
    want, peak_off = _epoch_and_peak(make_opt, dtype, False, hidden=hidden)
    got, peak_on = _epoch_and_peak(make_opt, dtype, True, hidden=hidden)
    _assert_same(got, want)
    snapshots = 5 * (D + C) * hidden * np.dtype(dtype).itemsize
    assert (peak_on - peak_off > snapshots // 2) == ring, (peak_on, peak_off, snapshots)
