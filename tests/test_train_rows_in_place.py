"""The first layer reading the batch's rows of X in place (``nnlib/_kernels/train.pyx``:
plain SGD, dense rows, no dropout, both first-layer products in gemm_small.h's blocked
loops, ``dense.pxd``'s ``rows_in_place``) instead of a gathered copy: each element of the
forward X_b W_0 and of the step's X_b^T dZ_0 is the same chain either way, so an epoch
with it on and off (``train._set_rows_in_place``) must give bitwise the same loss sum,
weights and counts, in float32 and float64, relu and identity first layers, rows whose
width is not a whole number of cache lines, a short last batch (and a last batch of one
row), hidden widths around the loops' panels, batches at and above
NN_SMALL_GEMM_MAX_K rows (above: gathered again), weight decay (beta != 1), and several
epochs in one call (the order changes between batches).
"""
import numpy as np
import pytest

from nnlib import _paths
from nnlib.training import compiled_train
from tests._twin_fit import two_epochs

train = compiled_train()

MAX_K = _paths.path_value("NN_SMALL_GEMM_MAX_K")
# (rows N, features d, hidden, outputs, batch, first activation, weight decay)
CASES = [(301, 37, 20, 4, 16, "relu", 0.0), (301, 64, 100, 10, 32, "relu", 0.0),
         (257, 13, 70, 3, 32, "identity", 0.0), (300, 5, 16, 2, 7, "relu", 0.01),
         (601, 9, 33, 5, MAX_K, "relu", 0.0), (601, 9, 33, 5, MAX_K + 1, "relu", 0.0),
         (97, 2, 17, 3, 8, "relu", 0.0)]
DTYPES = [np.float64, np.float32]


def _epochs(dtype, case, in_place):
    previous = train._set_rows_in_place(in_place)
    try:
        return two_epochs(train, dtype, case)[:2]
    finally:
        train._set_rows_in_place(previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=["x".join(map(str, c[:5])) + "-" + c[5]
                                             for c in CASES])
def test_rows_in_place_change_no_value(case, dtype):
    got, want = _epochs(dtype, case, True), _epochs(dtype, case, False)
    assert got[0] == want[0]
    assert all(o[3] == 0 and o[2] == -(-case[0] // case[4]) for o in got[0])
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        assert a.tobytes() == b.tobytes(), f"param {i} differs"


def test_the_hook_restores_the_default():
    assert train._set_rows_in_place(False) is True
    assert train._set_rows_in_place(True) is False
