"""The training loop's backward pass of a narrow identity layer (dense.pxd's
identity_backward, act_row.h's nn_identity_sums with AVX-512) against act_backward:
the same dZ, column sums and bias gradient, bit for bit, for every width it takes
(1 to NN_IDENTITY_SUMS_MAX_C of nnlib/_paths.py), with NaN, infinities, -0 and subnormals among the gradients; wider rows and
one row are left to act_backward."""
import numpy as np
import pytest

import nnlib
from nnlib import _paths
from nnlib._kernels import dense as K
from tests._page_end import array_at_page_end

DTYPES = [np.float32, np.float64]
MAX_C = _paths.path_value("NN_IDENTITY_SUMS_MAX_C")
WIDTHS = list(range(1, MAX_C + 1))


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _gradients(n, c, dtype, rng):
    g = rng.standard_normal((n, c)).astype(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    specials = [np.nan, np.inf, -np.inf, -0.0, 0.0, tiny, -tiny * 3, np.finfo(dtype).max]
    for k, v in enumerate(specials):
        g[(3 * k + 1) % n, (5 * k) % c] = v
    return g


def _both(g, flush=False):
    n, c = g.shape
    out = []
    for narrow in (True, False):
        dz, db, work = g.copy(), np.full(c, 7, g.dtype), np.full(c, 7.0)
        took = K._identity_backward(dz, db, work, narrow, flush)
        out.append((took, dz, db, work))
    return out


@pytest.mark.skipif(not K._identity_backward(np.ones((2, 2)), np.ones(2), np.ones(2), True),
                    reason="the register sums are built with AVX-512 only")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", WIDTHS, ids=[f"c={c}" for c in WIDTHS])
@pytest.mark.parametrize("n", [2, 33], ids=["n=2", "n=33"])
def test_narrow_sums_are_act_backwards_bit_for_bit(n, c, dtype, rng):
    g = _gradients(n, c, dtype, rng)
    g[g != g] = np.nan                      # one NaN per column at most: its payload
    (took, dz, db, work), (_, dz0, db0, work0) = _both(g)
    assert took
    np.testing.assert_array_equal(_bits(dz), _bits(dz0))
    np.testing.assert_array_equal(_bits(db), _bits(db0))
    np.testing.assert_array_equal(_bits(work), _bits(work0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("c", WIDTHS, ids=[f"c={c}" for c in WIDTHS])
def test_narrow_sums_read_nothing_past_the_rows(c, dtype, rng):
    """The masked loads stop at the last row's c-th value (for float64 also the second
    vector's, empty up to 8 columns): the rows end at a guard page."""
    g = rng.standard_normal((3, c)).astype(dtype)
    dz, db, work = array_at_page_end(g), np.zeros(c, dtype), np.zeros(c)
    K._identity_backward(dz, db, work, True)
    np.testing.assert_array_equal(work, g.astype(np.float64).sum(axis=0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_narrow_sums_under_flush_to_zero_are_act_backwards(dtype, rng):
    """In the epoch's flush-denormal mode (XLA's; nnlib.set_flush_denormal) the sums
    still agree: both widen or add a subnormal gradient as zero (dZ itself may keep it
    here, flushed there: every reader reads it as zero)."""
    if not nnlib.set_flush_denormal(False):
        pytest.skip("no flush-denormal mode on this CPU")
    g = _gradients(9, 10, dtype, rng)
    g[:, 3] = np.finfo(dtype).smallest_subnormal * np.arange(1, 10)
    (took, _, db, work), (_, _, db0, work0) = _both(g, flush=True)
    assert took
    np.testing.assert_array_equal(_bits(db), _bits(db0))
    np.testing.assert_array_equal(_bits(work), _bits(work0))
    assert work[3] == 0.0


@pytest.mark.parametrize("shape", [(1, 10), (5, MAX_C + 1), (3, 40)],
                         ids=["one-row", "c=NN_IDENTITY_SUMS_MAX_C+1", "c=40"])
def test_one_row_and_wide_rows_are_left_to_act_backward(shape):
    dz, db, work = np.ones(shape, np.float32), np.full(shape[1], 7, np.float32), np.full(
        shape[1], 7.0)
    assert not K._identity_backward(dz, db, work, True)
    assert (db == 7).all() and (work == 7).all()
