"""The float32 loops of ``act_f32.h`` (leaky_relu forward and vjp, sigmoid's and tanh's vjp
from the output): each result is the float64 kernel's rounded once, bit for bit, at
lengths around every vector boundary and with the special values in every lane position.

These kinds' float32 results are the double formula rounded once (the products p x, p g,
y (1 - y) g and (1 - y^2) g of float32 inputs are formed in double either way), so the
float64 kernel on the widened inputs is an exact oracle whichever loop a build runs (the
explicit one of act_f32.h, or the generic one where the instructions are missing).
"""
import numpy as np
import pytest

import nnlib.functional as F

# vector widths 4 and 8, a partial vector on either side, and the 4096-element task
# boundary (ACT_CHUNK) with ragged tails
LENGTHS = [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 4095, 4096, 4097, 2 * 4096 + 11]
SLOPES = [0.01, 0.2, 1.0 / 3.0, -0.5, 1.7, 0.0]
SPECIALS = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1.17e-38, -1.17e-38,
            3.4e38, -3.4e38, 1.0, -1.0, 0.5, -2.5]


def _values(rng, n, specials=SPECIALS):
    """n float32 values: the specials at shifting positions (so each meets every lane), the
    rest random over many binades and both signs."""
    v = rng.standard_normal(n) * np.exp2(rng.integers(-40, 40, n))
    k = min(n, len(specials))
    pos = rng.choice(n, size=k, replace=False)
    v[pos] = specials[:k]
    return v.astype(np.float32)


def _assert_rounded_once(got32, want64):
    with np.errstate(over="ignore"):        # beyond FLT_MAX the rounding gives inf
        want = want64.astype(np.float32)
    assert got32.dtype == np.float32
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got32), nan)
    np.testing.assert_array_equal(got32[~nan].view(np.uint32), want[~nan].view(np.uint32))


@pytest.mark.parametrize("slope", SLOPES)
@pytest.mark.parametrize("n", LENGTHS)
def test_leaky_relu_is_the_double_formula_rounded(n, slope, rng):
    x, g = _values(rng, n), _values(rng, n)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    _assert_rounded_once(F.leaky_relu(x, slope, n_threads=1), F.leaky_relu(x64, slope))
    _assert_rounded_once(F.leaky_relu_vjp(x, g, slope, n_threads=1),
                         F.leaky_relu_vjp(x64, g64, slope))


def test_leaky_relu_nan_lanes(rng):
    # a NaN x gives NaN in its lane only, g passes unchanged where x > 0 (a NaN g too)
    x = _values(rng, 37)
    g = _values(rng, 37)
    x[[0, 9, 20]] = np.nan
    g[[3, 12]] = np.nan
    x[[3, 12]] = 2.0
    d = F.leaky_relu_vjp(x, g, 0.2, n_threads=1)
    assert np.isnan(d[[0, 9, 20, 3, 12]]).all()
    ok = ~np.isin(np.arange(37), [0, 9, 20, 3, 12])
    _assert_rounded_once(d[ok], F.leaky_relu_vjp(x.astype(np.float64),
                                                 g.astype(np.float64), 0.2)[ok])
    y = F.leaky_relu(x, 0.2, n_threads=1)
    assert np.isnan(y[[0, 9, 20]]).all() and not np.isnan(np.delete(y, [0, 9, 20])).any()


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("n", LENGTHS)
def test_output_vjp_is_the_double_formula_rounded(name, n, rng):
    # y over the output's range [-1, 1] (and its edges, and beyond: the formula continued)
    y = np.concatenate([rng.uniform(-1, 1, n), [0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, 3.0,
                                                np.inf, -np.inf]])[:n].astype(np.float32)
    rng.shuffle(y)
    g = _values(rng, n)
    vjp = getattr(F, name + "_vjp")
    got = vjp(y, g, output=y, n_threads=1)
    want = vjp(y.astype(np.float64), g.astype(np.float64), output=y.astype(np.float64))
    _assert_rounded_once(got, want)
