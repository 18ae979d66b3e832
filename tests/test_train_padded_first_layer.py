"""Plain SGD past batch 1 with the first layer reading its rows in place (``dense.pxd``'s
``rows_in_place``): the loop steps a copy of W_0 whose rows are padded to whole cache
lines (``EpochSetup._padded_copies``, W_0 only; copied back at the end of each call), so
that the forward's loads of W_0's rows and the step's read and write of them do not
straddle lines. Each element is the same chain either way, so an epoch with the copies
on and off (``train._set_copies("padded", ...)``) must give bitwise the same loss sums,
counts and weights; the copy is used where the conditions hold and rows are not whole
lines (counted by ``padded_calls``), and nowhere else: weight decay, a batch above
NN_SMALL_GEMM_MAX_K, a tanh first layer, rows of whole lines, per-step checks.
"""
import numpy as np
import pytest

from nnlib import _paths
from nnlib.training import compiled_train
from tests._twin_fit import assert_same_bits, two_epochs

train = compiled_train()

MAX_K = _paths.path_value("NN_SMALL_GEMM_MAX_K")
# (rows N, features d, hidden, outputs, batch, first activation, weight decay, copied)
CASES = [(301, 64, 100, 10, 32, "relu", 0.0, True), (301, 37, 20, 4, 16, "relu", 0.0, True),
         (257, 13, 70, 3, 33, "identity", 0.0, True), (97, 2, 17, 3, 8, "relu", 0.0, True),
         (601, 9, 33, 5, MAX_K, "relu", 0.0, True),
         (601, 9, 33, 5, MAX_K + 1, "relu", 0.0, False),
         (300, 5, 20, 2, 7, "relu", 0.01, False), (200, 8, 40, 3, 16, "tanh", 0.0, False),
         (200, 8, 32, 3, 16, "relu", 0.0, False)]
DTYPES = [np.float64, np.float32]
IDS = ["x".join(map(str, c[:5])) + "-" + c[5] + ("-wd" if c[6] else "") for c in CASES]


def _epochs(dtype, case, padded, check_updates=False):
    previous = train._set_copies("padded", padded)
    try:
        return two_epochs(train, dtype, case, check_updates)
    finally:
        train._set_copies("padded", previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_padded_first_layer_changes_no_value(case, dtype):
    (got, W_got, calls), (want, W_want, calls_off) = (_epochs(dtype, case, True),
                                                      _epochs(dtype, case, False))
    assert got == want
    assert all(o[3] == 0 and o[2] == -(-case[0] // case[4]) for o in got)
    assert_same_bits(W_got, W_want)
    whole_lines = case[2] * np.dtype(dtype).itemsize % 64 == 0
    assert (calls, calls_off) == ((2 if case[7] and not whole_lines else 0), 0)


def test_not_copied_under_per_step_checks(dtype):
    case = CASES[0]
    (got, W_got, calls), (want, W_want, _) = (_epochs(dtype, case, True, True),
                                              _epochs(dtype, case, False, True))
    assert got == want and calls == 0
    assert_same_bits(W_got, W_want)
