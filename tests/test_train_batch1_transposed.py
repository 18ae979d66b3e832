"""Plain SGD at batch 1: the input gradients read a transposed copy of each weight
matrix past the first (``epoch_loop``'s ``WT``, stepped with the weights), which gives
bitwise the weights of the path without it, and the NumPy twin's within tolerance.

The copy is used with plain SGD, no decay and no L2, when the copies take at most
TRANSPOSED_MAX_BYTES; the cases below run it on several shapes (two and three layers),
on shapes over the limit (not used: the same result trivially) and with L2 (not used).
"""
import numpy as np
import pytest

from nnlib._paths import path_value
from nnlib._reference import train as twin
from nnlib.training import compiled_train
from tests._twin_fit import assert_same_bits, run_batch1

compiled = compiled_train()
N = 13
LIMIT = path_value("TRANSPOSED_MAX_BYTES")
# two epochs of training against the twin's NumPy products (other summation orders)
TWIN_TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}

# (widths, activation): hidden widths around a vector's 16 float32 / 8 float64 lanes,
# the digits net, three layers, and one over the size limit in both dtypes
SHAPES = [([64, 100, 10], "relu"), ([5, 7, 3], "relu"), ([9, 16, 17], "tanh"),
          ([12, 33, 8, 4], "relu"), ([3, 1, 6], "relu"), ([4, 300, 300], "relu")]
IDS = ["-".join(map(str, s)) + "-" + a for s, a in SHAPES]


def _run(module, sizes, act, dtype, enabled, l2=0.0, epochs=2):
    outs, params, _ = run_batch1(module, sizes, act, dtype, transposed=enabled, l2=l2,
                                 epochs=epochs, n=N)
    return outs, params


def test_limit_cases_are_on_both_sides():
    nbytes = [sum(a * b for a, b in zip(s[1:-1], s[2:])) * 4 for s, _ in SHAPES]
    assert min(nbytes) <= LIMIT < max(nbytes)


@pytest.mark.parametrize("sizes, act", SHAPES, ids=IDS)
def test_transposed_path_is_bitwise_the_plain_one(sizes, act, dtype):
    on, W_on = _run(compiled, sizes, act, dtype, True)
    off, W_off = _run(compiled, sizes, act, dtype, False)
    assert_same_bits(W_on, W_off)
    assert on == off


@pytest.mark.parametrize("sizes, act", SHAPES, ids=IDS)
def test_transposed_path_matches_the_twin(sizes, act, dtype):
    tol = TWIN_TOL[dtype]
    on, W_on = _run(compiled, sizes, act, dtype, True)
    ref, W_ref = _run(twin, sizes, act, dtype, True)
    for p, q in zip(W_on, W_ref):
        np.testing.assert_allclose(p, q, **tol)
    np.testing.assert_allclose([o[0] for o in on], [o[0] for o in ref], **tol)


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_l2_and_set_transposed(l2, dtype):
    """With L2 the copies are not used; either way the switch gives the same weights."""
    _, W_on = _run(compiled, [64, 100, 10], "relu", dtype, True, l2=l2)
    _, W_off = _run(compiled, [64, 100, 10], "relu", dtype, False, l2=l2)
    assert_same_bits(W_on, W_off)
    assert compiled._set_copies("transposed", True) is True
