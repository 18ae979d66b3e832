"""Softmax cross-entropy of short rows through ce_rows.h (loss_rows.pxd's ce_short_rows,
AVX-512, rows of at most NN_CE_SHORT_MAX_C classes) against the blocks of
exp_shifted_rows and their gradient loop, bit for bit: the loss sum and every gradient
value, for every width it takes, several blocks of rows, and rows with NaN (one and two
payloads), infinities, huge and tiny logits, -0 and +0 maxima and subnormals, in IEEE
and in the flush-to-zero mode of the training epoch; wider rows keep the old loops."""
import numpy as np
import pytest

import nnlib
from nnlib import _paths
from nnlib._kernels import losses as K
from tests._page_end import array_at_page_end
from tests.test_row_max import _nan

DTYPES = [np.float32, np.float64]
MAX_C = _paths.path_value("NN_CE_SHORT_MAX_C")
WIDTHS = list(range(1, MAX_C + 1))
# rows: one, a partial block, VEC_BLOCK // c and past it (two and three blocks)
ROWS = [1, 7, 26, 77]

try:
    K._softmax_ce_blocks(np.zeros((1, 2)), np.zeros(1, np.int64), 1.0, True, True)
    NARROW = True
except ValueError:
    NARROW = False
needs_narrow = pytest.mark.skipif(not NARROW, reason="built without AVX-512 (F and VL)")


@pytest.mark.parametrize("label", [-1, 3, 40])
def test_the_block_hook_refuses_a_label_outside_the_row(label):
    # the test hook indexes z's row with each label: one outside [0, c) is refused, never
    # read past the row
    y = np.array([0, label, 1], np.int64)
    for narrow in ([True, False] if NARROW else [False]):
        with pytest.raises(ValueError, match=r"y\[1\] = .* outside \[0, 3\)"):
            K._softmax_ce_blocks(np.zeros((3, 3)), y, 1.0, True, narrow)


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _rows(c, dtype, rng):
    """Random rows of c logits, and rows with each special value at the first, a middle
    and the last class (the last one in the second vector's masked tail when c > 8)."""
    rows = list((rng.standard_normal((6, c)) * 4).astype(dtype))
    big, tiny = np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal
    for j in sorted({0, c // 2, c - 1}):
        base = (rng.standard_normal(c) * 3).astype(dtype)
        for value in (np.inf, -np.inf, big, -big, tiny, -tiny, 0.0, -0.0, 1e4, -1e4,
                      _nan(dtype, 5), _nan(dtype, 9, True)):
            r = base.copy()
            r[j] = value
            rows.append(r)
        r = base.copy()                     # two NaNs, two payloads
        r[j] = _nan(dtype, 3)
        r[c - 1 - j] = _nan(dtype, 7, True)
        rows.append(r)
        neg = -np.abs(base) - 1             # a zero maximum: the first of -0 and +0
        for first, second in ((-0.0, 0.0), (0.0, -0.0)):
            r = neg.copy()
            r[j] = first
            if c > 1:
                r[(j + 1) % c] = second
            rows.append(r)
        r = neg.copy()                      # subnormal maximum, the others tiny too
        r[:] = -tiny
        r[j] = tiny
        rows.append(r)
    for fill in (np.inf, -np.inf, -0.0, 0.0, big, tiny):
        rows.append(np.full(c, fill, dtype))
    gap = 95.0 if dtype == np.float32 else 720.0          # exp(-gap): subnormal
    for j in sorted({0, c // 2, c - 1}):
        r = np.ones(c, dtype)
        r[j] = 1.0 - gap
        rows.append(r)
    rows.append(np.linspace(-200, 0, c).astype(dtype))   # exps far below FLT_MIN
    rows.append(np.linspace(-800, 0, c).astype(dtype))   # below e^-708 (the clamp)
    return np.array(rows, dtype)


def _both(z, y, scale, want_grad):
    new = K._softmax_ce_blocks(z, y, scale, want_grad, True)
    old = K._softmax_ce_blocks(z, y, scale, want_grad, False)
    return new, old


def _two_payloads(z):
    """The rows of z holding NaNs of two or more bit patterns."""
    return np.array([len(set(_bits(r[np.isnan(r)]).tolist())) > 1 for r in z], bool)


def _assert_same(new, old, z=None):
    """new is old bit for bit, but in rows with NaNs of two payloads (the gradient is NaN
    there, its payload that of an FMA with two NaN operands): the old loop's payload
    depends on the lane (GCC's vector body and tail read the operands in different
    orders), ce_rows.h's is fixed (see _nan_row_gradient)."""
    assert _bits(np.float64(new[0])) == _bits(np.float64(old[0]))
    if old[1] is None:
        return
    if z is None:
        np.testing.assert_array_equal(_bits(new[1]), _bits(old[1]))
        return
    mixed = _two_payloads(z)
    np.testing.assert_array_equal(_bits(new[1][~mixed]), _bits(old[1][~mixed]))
    assert np.isnan(old[1][mixed]).all()
    np.testing.assert_array_equal(_bits(new[1][mixed]), _bits(_nan_row_gradient(z[mixed])))


def _nan_row_gradient(z):
    """The gradient ce_rows.h gives a row holding NaN: float32, round(e_j)'s NaN first,
    which is z_j where z_j is NaN, else the row's first NaN (the maximum, whose NaN
    z_j - m carries); float64, 1/s's, the NaN of the sum: the row's first NaN."""
    out = np.empty_like(z)
    for i, r in enumerate(z):
        first = r[np.isnan(r)][0]
        out[i] = np.where(np.isnan(r), r, first) if z.dtype == np.float32 else first
    return out


@needs_narrow
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", WIDTHS, ids=[f"c={c}" for c in WIDTHS])
def test_special_rows_give_the_old_loops_bits(c, dtype, rng):
    z = _rows(c, dtype, rng)
    for y in (np.zeros(len(z), np.int64), np.full(len(z), c - 1, np.int64),
              rng.integers(0, c, len(z))):
        for want_grad in (True, False):
            _assert_same(*_both(z, y, 1.0 / len(z), want_grad), z)


@needs_narrow
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", WIDTHS, ids=[f"c={c}" for c in WIDTHS])
@pytest.mark.parametrize("n", ROWS, ids=[f"n={n}" for n in ROWS])
def test_random_rows_give_the_old_loops_bits(n, c, dtype, rng):
    z = (rng.standard_normal((n, c)) * rng.choice([0.1, 3.0, 30.0, 300.0])).astype(dtype)
    y = rng.integers(0, c, n)
    for scale in (1.0 / n, 1.0, 0.3):
        _assert_same(*_both(z, y, scale, True))


@needs_narrow
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", [3, 8, 10, 16], ids=["c=3", "c=8", "c=10", "c=16"])
def test_flush_to_zero_gives_the_old_loops_bits(c, dtype, rng):
    """Under FTZ and DAZ (the training epoch's flush-denormal mode), tiny logits and
    exps flush in both paths alike."""
    if not nnlib.set_flush_denormal(False):
        pytest.skip("no flush-denormal mode on this CPU")
    z = _rows(c, dtype, rng)
    y = rng.integers(0, c, len(z))
    new = K._softmax_ce_blocks(z, y, 1.0 / len(z), True, True, True)
    old = K._softmax_ce_blocks(z, y, 1.0 / len(z), True, False, True)
    ieee = K._softmax_ce_blocks(z, y, 1.0 / len(z), True, False, False)
    # the mode reached the loops: some gradient value is subnormal in IEEE and 0 flushed
    tiny = np.finfo(dtype).tiny
    assert np.any((np.abs(ieee[1]) < tiny) & (ieee[1] != 0) & (old[1] == 0))
    _assert_same(new, old, z)


@needs_narrow
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", WIDTHS, ids=[f"c={c}" for c in WIDTHS])
def test_rows_that_end_a_buffer_read_nothing_past_it(c, dtype, rng):
    """The last row's masked vectors stop at its c-th value: the scores end at a guard
    page (an unmasked load of the tail would fault)."""
    z = array_at_page_end((rng.standard_normal((5, c)) * 3).astype(dtype))
    y = rng.integers(0, c, 5)
    new = K._softmax_ce_blocks(z, y, 0.2, True, True)
    _assert_same(new, K._softmax_ce_blocks(np.array(z), y, 0.2, True, False))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_the_narrow_path_refuses_wider_rows(dtype):
    z, y = np.zeros((2, MAX_C + 1), dtype), np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="no narrow path"):
        K._softmax_ce_blocks(z, y, 1.0, True, True)
    loss, dz = K._softmax_ce_blocks(z, y, 1.0, True, False)
    assert loss == pytest.approx(2 * np.log(MAX_C + 1))
