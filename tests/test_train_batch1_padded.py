"""Plain SGD at batch 1: the loop steps copies of the weights whose rows are padded to
whole cache lines (``epoch_loop``'s ``Wloop``, copied back at the end of each call),
which give bitwise the weights of the path without them, and the NumPy twin's within
tolerance.

The copies are used with plain SGD, no decay, no L2, dense rows, no dropout and no
per-step checks, for the weights whose rows do not fill whole lines; the cases below run
them with and without the transposed copies, on widths around a vector's lanes (16
float32, 8 float64) and around the fused first-layer pass's widest row (128 float32, 64
float64), in pieces of a call, and where they are not used (every row whole lines, L2,
check_updates: the same result trivially).
"""
import numpy as np
import pytest

from nnlib._paths import path_value
from nnlib._reference import train as twin
from nnlib.training import compiled_train
from tests._twin_fit import assert_same_bits, run_batch1

compiled = compiled_train()
N = 13
TWIN_TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}

# (widths, activation): the digits net; widths below, at and above a vector, rows of
# whole lines in both dtypes (16, 32: not copied), around the fused first-layer pass's
# widest row, three layers, one layer
SHAPES = [([64, 100, 10], "relu"), ([5, 7, 3], "relu"), ([9, 17, 4], "tanh"),
          ([6, 16, 32], "relu"), ([12, 33, 8, 4], "relu"), ([4, 127, 3], "relu"),
          ([4, 129, 3], "relu"), ([8, 20], "identity")]
WHOLE_LINES = {"6-16-32-relu"}
IDS = ["-".join(map(str, s)) + "-" + a for s, a in SHAPES]


def _run(module, sizes, act, dtype, padded, transposed=True, **kwargs):
    return run_batch1(module, sizes, act, dtype, padded=padded, transposed=transposed,
                      **kwargs)


@pytest.mark.parametrize("transposed", [True, False], ids=["transposed", "plain"])
@pytest.mark.parametrize("sizes, act", SHAPES, ids=IDS)
def test_padded_path_is_bitwise_the_plain_one(sizes, act, dtype, transposed):
    on, W_on, calls_on = _run(compiled, sizes, act, dtype, True, transposed)
    off, W_off, calls_off = _run(compiled, sizes, act, dtype, False, transposed)
    assert_same_bits(W_on, W_off)
    assert on == off
    key = "-".join(map(str, sizes)) + "-" + act
    assert (calls_on, calls_off) == ((0 if key in WHOLE_LINES else 2), 0)


@pytest.mark.parametrize("sizes, act", SHAPES, ids=IDS)
def test_padded_path_matches_the_twin(sizes, act, dtype):
    tol = TWIN_TOL[dtype]
    on, W_on, _ = _run(compiled, sizes, act, dtype, True)
    ref, W_ref, _ = _run(twin, sizes, act, dtype, True)
    for p, q in zip(W_on, W_ref):
        np.testing.assert_allclose(p, q, **tol)
    np.testing.assert_allclose([o[0] for o in on], [o[0] for o in ref], **tol)


@pytest.mark.parametrize("piece", [1, 2, 5])
def test_calls_in_pieces_copy_back_each_time(piece, dtype):
    """Each call copies W_0 in and back: an epoch cut into calls of a few steps (the
    last step of each call unfused) trains as one call does."""
    whole, W_whole, _ = _run(compiled, [64, 100, 10], "relu", dtype, True)
    cut, W_cut, calls = _run(compiled, [64, 100, 10], "relu", dtype, True, piece=piece)
    assert_same_bits(W_cut, W_whole)
    assert cut == whole
    assert calls == 2 * -(-N // piece)


@pytest.mark.parametrize("l2, check_updates", [(0.01, False), (0.0, True)],
                         ids=["l2", "check_updates"])
def test_unused_cases_and_set_padded(l2, check_updates, dtype):
    """With L2 or per-step checks the copy is not used; either way the switch gives the
    same weights."""
    _, W_on, calls = _run(compiled, [64, 100, 10], "relu", dtype, True, l2=l2,
                          check_updates=check_updates)
    _, W_off, _ = _run(compiled, [64, 100, 10], "relu", dtype, False, l2=l2,
                       check_updates=check_updates)
    assert_same_bits(W_on, W_off)
    assert calls == 0
    assert compiled._set_copies("padded", True) is True


def test_limit_is_above_the_digits_copies():
    assert (64 * 104 + 100 * 16) * 8 <= path_value("PADDED_MAX_BYTES")


def test_over_the_limit_is_not_copied(dtype):
    """Weights over PADDED_MAX_BYTES train in place, with the same result."""
    width = path_value("PADDED_MAX_BYTES") // (8 * 4) + 1        # 8 rows: over in float32
    sizes = [8, width, 3]
    on, W_on, calls = _run(compiled, sizes, "relu", dtype, True, epochs=1)
    off, W_off, _ = _run(compiled, sizes, "relu", dtype, False, epochs=1)
    assert_same_bits(W_on, W_off)
    assert on == off and calls == 0
