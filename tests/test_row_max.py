"""The maxima of a block of short rows (loss_rows.pxd's rows_max, row_max.h with
AVX-512) against short_row_max row by row, bit for bit: NaN rows (the first NaN and its
payload), zero maxima (the first of -0 and +0), infinities, subnormals, and row lengths
around the vector widths (8 doubles, 16 floats)."""
import numpy as np
import pytest

from nnlib._kernels import output_maps as K
from tests._page_end import array_at_page_end

DTYPES = [np.float32, np.float64]
WIDTHS = [1, 2, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 64, 65, 100]


def _bits(a):
    return a.view(np.uint64)


def _nan(dtype, payload, sign=False):
    """A quiet NaN of ``dtype`` with the given payload bits."""
    if dtype == np.float32:
        v = np.array([0x7FC00000 | payload | (0x80000000 if sign else 0)], np.uint32)
    else:
        v = np.array([0x7FF8000000000000 | payload | (1 << 63 if sign else 0)], np.uint64)
    return v.view(dtype)[0]


def _special_rows(c, dtype, rng):
    """Rows of c values: random ones, and each kind of row whose maximum a vector max
    and a chain of compares could disagree on, at the first, a middle and the last
    column (the last one in a vector's masked tail when c is not a whole vector)."""
    rows = [rng.standard_normal(c).astype(dtype) * 5 for _ in range(5)]
    tiny = np.finfo(dtype).smallest_subnormal
    for j in sorted({0, c // 2, c - 1}):
        base = -np.abs(rng.standard_normal(c)).astype(dtype) - 1
        for value in (np.inf, -np.inf, tiny, -tiny, _nan(dtype, 5), _nan(dtype, 9, True)):
            r = base.copy()
            r[j] = value
            rows.append(r)
        r = base.copy()                     # two NaNs: the first one's payload wins
        r[j] = _nan(dtype, 3)
        r[c - 1 - j] = _nan(dtype, 7, True)
        rows.append(r)
        for first, second in ((-0.0, 0.0), (0.0, -0.0)):   # the first zero wins
            r = base.copy()
            r[j] = first
            if c > 1:
                r[(j + 1) % c] = second
            rows.append(r)
    rows.append(np.full(c, -np.inf, dtype))
    rows.append(np.full(c, -0.0, dtype))
    return np.array(rows, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", WIDTHS, ids=[f"c={c}" for c in WIDTHS])
def test_block_maxima_are_the_row_by_row_maxima_bit_for_bit(c, dtype, rng):
    z = _special_rows(c, dtype, rng)
    np.testing.assert_array_equal(_bits(K._row_maxima(z, True)),
                                  _bits(K._row_maxima(z, False)))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_block_maxima_of_a_row_that_ends_a_buffer(dtype, rng):
    """A row whose last vector is masked reads nothing past its c values: the block is
    the tail of a larger array, its last row the array's last values."""
    big = (rng.standard_normal(4096 * 3 + 10) * 3).astype(dtype)
    z = big[-30:].reshape(3, 10)
    np.testing.assert_array_equal(_bits(K._row_maxima(z, True)),
                                  _bits(K._row_maxima(z, False)))
    np.testing.assert_array_equal(K._row_maxima(z, True), z.max(axis=1))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", WIDTHS, ids=[f"c={c}" for c in WIDTHS])
def test_block_maxima_read_nothing_past_the_block(c, dtype, rng):
    """The last row's masked vector stops at its c-th value: the block ends at a guard
    page (an unmasked load of the tail would fault)."""
    z = array_at_page_end((rng.standard_normal((3, c)) * 3).astype(dtype))
    np.testing.assert_array_equal(K._row_maxima(z, True), z.max(axis=1))


def test_block_maxima_refuse_an_empty_block():
    with pytest.raises(ValueError, match="at least one row"):
        K._row_maxima(np.empty((0, 3), np.float32), True)
