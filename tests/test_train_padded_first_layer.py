"""Plain SGD past batch 1 with the first layer reading its rows in place (``dense.pxd``'s
``rows_in_place``): the loop steps a copy of W_0 whose rows are padded to whole cache
lines (``EpochSetup._padded_copies``, W_0 only; copied back at the end of each call), so
that the forward's loads of W_0's rows and the step's read and write of them do not
straddle lines. Each element is the same chain either way, so an epoch with the copies
on and off (``train._set_copies("padded", ...)``) must give bitwise the same loss sums,
counts and weights; the copy is used where the conditions hold and rows are not whole
lines (counted by ``padded_calls``), and nowhere else: weight decay, a batch above
NN_SMALL_GEMM_MAX_K, a tanh first layer, rows of whole lines, per-step checks, and a call
of fewer than PADDED_MIN_STEPS steps (PADDED_MIN_STEPS_B1 at batch 1), where the copy
costs more than the steps gain. The cases run with the copy made in calls of any length,
then the step thresholds as built, on both sides of each.
"""
import numpy as np
import pytest

from nnlib import _paths
from nnlib.training import compiled_train
from tests._twin_fit import assert_same_bits, run_batch1, two_epochs

train = compiled_train()

MAX_K = _paths.path_value("NN_SMALL_GEMM_MAX_K")
MIN_STEPS = _paths.path_value("PADDED_MIN_STEPS")
MIN_STEPS_B1 = _paths.path_value("PADDED_MIN_STEPS_B1")
# (rows N, features d, hidden, outputs, batch, first activation, weight decay, copied)
CASES = [(301, 64, 100, 10, 32, "relu", 0.0, True), (301, 37, 20, 4, 16, "relu", 0.0, True),
         (257, 13, 70, 3, 33, "identity", 0.0, True), (97, 2, 17, 3, 8, "relu", 0.0, True),
         (601, 9, 33, 5, MAX_K, "relu", 0.0, True),
         (601, 9, 33, 5, MAX_K + 1, "relu", 0.0, False),
         (300, 5, 20, 2, 7, "relu", 0.01, False), (200, 8, 40, 3, 16, "tanh", 0.0, False),
         (200, 8, 32, 3, 16, "relu", 0.0, False)]
DTYPES = [np.float64, np.float32]
IDS = ["x".join(map(str, c[:5])) + "-" + c[5] + ("-wd" if c[6] else "") for c in CASES]


@pytest.fixture
def any_length():
    """The copy made in calls of any number of steps (the cases' epochs are short)."""
    before = train._set_padded_min_steps(0, 0)
    yield
    train._set_padded_min_steps(*before)


def _epochs(dtype, case, padded, check_updates=False, piece=-1):
    previous = train._set_copies("padded", padded)
    try:
        return two_epochs(train, dtype, case, check_updates, piece)
    finally:
        train._set_copies("padded", previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_padded_first_layer_changes_no_value(case, dtype, any_length):
    (got, W_got, calls), (want, W_want, calls_off) = (_epochs(dtype, case, True),
                                                      _epochs(dtype, case, False))
    assert got == want
    assert all(o[3] == 0 and o[2] == -(-case[0] // case[4]) for o in got)
    assert_same_bits(W_got, W_want)
    whole_lines = case[2] * np.dtype(dtype).itemsize % 64 == 0
    assert (calls, calls_off) == ((2 if case[7] and not whole_lines else 0), 0)


def test_not_copied_under_per_step_checks(dtype, any_length):
    case = CASES[0]
    (got, W_got, calls), (want, W_want, _) = (_epochs(dtype, case, True, True),
                                              _epochs(dtype, case, False, True))
    assert got == want and calls == 0
    assert_same_bits(W_got, W_want)



def _call_lengths(steps, piece):
    return [steps] if piece < 0 else [min(piece, steps - i) for i in range(0, steps, piece)]


# an epoch of 10 batches of 32 in calls of MIN_STEPS - 1 steps, of MIN_STEPS, or whole:
# a call makes the copy when it runs at least MIN_STEPS steps
@pytest.mark.parametrize("piece", [MIN_STEPS - 1, MIN_STEPS, -1],
                         ids=["below", "at", "whole"])
def test_short_calls_make_no_copy(piece, dtype):
    case = (10 * 32, 64, 100, 10, 32, "relu", 0.0)
    (got, W_got, calls), (want, W_want, calls_off) = (
        _epochs(dtype, case, True, piece=piece), _epochs(dtype, case, False, piece=piece))
    assert got == want
    assert_same_bits(W_got, W_want)
    lengths = _call_lengths(10, piece)
    assert [o[2] for o in got] == 2 * lengths
    assert (calls, calls_off) == (2 * sum(n >= MIN_STEPS for n in lengths), 0)
    assert piece != MIN_STEPS - 1 or calls == 0


@pytest.mark.parametrize("piece", [MIN_STEPS_B1 - 1, MIN_STEPS_B1], ids=["below", "at"])
def test_short_batch1_calls_make_no_copies(piece, dtype):
    """At batch 1 the threshold is PADDED_MIN_STEPS_B1: an epoch of a few rows more in
    calls of ``piece`` steps copies in its first call or in none, the same bits."""
    n = MIN_STEPS_B1 + 3
    run = dict(n=n, piece=piece, min_steps=None)
    on, W_on, calls = run_batch1(train, [5, 7, 3], "relu", dtype, padded=True, **run)
    off, W_off, _ = run_batch1(train, [5, 7, 3], "relu", dtype, padded=False, **run)
    assert on == off
    assert_same_bits(W_on, W_off)
    assert calls == 2 * sum(k >= MIN_STEPS_B1 for k in _call_lengths(n, piece))
    assert calls == (2 if piece == MIN_STEPS_B1 else 0)
