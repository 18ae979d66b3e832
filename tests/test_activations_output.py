"""The vjps given the forward's output (``output=``, activation_vjp_from_output) and
sign's zero vjp: against the twins, finite differences, the x-based vjp and bad input."""
import numpy as np
import pytest

import nnlib._reference as R
import nnlib.functional as F
from nnlib._codes import ACTIVATION_CODES, ACTIVATION_FLOAT32_NATIVE, ACTIVATION_ZERO_VJP
from tests.conftest import FD_TOL, central_diff

NAMES = list(ACTIVATION_CODES)
# kinds whose output form is a formula in y (the others reuse the x loop on y)
FROM_Y = [n for n in NAMES if n not in ACTIVATION_FLOAT32_NATIVE + ACTIVATION_ZERO_VJP]
PARAM_VALUES = {"leaky_relu": 0.2, "elu": 0.7}
# a length past two ACT_CHUNKs (three tasks) with a ragged tail
SIZES = [1, 7, 2 * 4096 + 5]


def _args(name):
    return (PARAM_VALUES[name],) if name in PARAM_VALUES else ()


def _ulps(a, b, dtype):
    """|a - b| in units of the last place of b (float64 differences)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.abs(a - b) / np.spacing(np.abs(b).astype(dtype)).astype(np.float64)


def _inputs(rng, n, dtype):
    x = rng.standard_normal(n) * 6
    x[: min(n, 6)] = [-30.0, -1e-30, 0.0, 1e-30, 30.0, 3.0][: min(n, 6)]
    return x.astype(dtype), rng.standard_normal(n).astype(dtype)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_output_vjp_matches_twin(name, n, dtype, rng):
    # the same formula in float64 by NumPy: float32 within one ulp of the compiled double
    # evaluation rounded once (the two may differ in an FMA contraction); float64 within
    # the few roundings of each (softplus: nnlib's expm1 vs NumPy's, each < 1 ulp)
    x, g = _inputs(rng, n, dtype)
    y = getattr(F, name)(x, *_args(name))
    got = getattr(F, name + "_vjp")(x, g, *_args(name), output=y)
    want = getattr(R, name + "_vjp")(x, g, *_args(name), output=y)
    assert got.dtype == dtype and got.shape == x.shape
    assert _ulps(got, want, dtype).max() <= (1.0 if dtype == np.float32 else 3.0)


@pytest.mark.parametrize("name", NAMES)
def test_output_vjp_matches_finite_differences(name, dtype, rng):
    x = (rng.uniform(0.1, 3, size=(4, 3)) * rng.choice([-1, 1], size=(4, 3))).astype(dtype)
    g = rng.standard_normal(x.shape)
    fwd = getattr(F, name)

    def scalar(z):
        return float(np.sum(g * fwd(z.astype(dtype), *_args(name)).astype(np.float64)))

    fd = central_diff(scalar, x, h=1e-3 if dtype == np.float64 else 2e-2)
    got = getattr(F, name + "_vjp")(x, g.astype(dtype), *_args(name),
                                    output=fwd(x, *_args(name)))
    np.testing.assert_allclose(got, fd, **FD_TOL[dtype])


@pytest.mark.parametrize("name", FROM_Y)
def test_output_vjp_is_the_derivative_away_from_saturation(name, dtype, rng):
    # where y is far from an asymptote the output form is as accurate as the x form
    x = rng.uniform(-1, 1, 2000).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    y = getattr(F, name)(x, *_args(name))
    from_y = getattr(F, name + "_vjp")(x, g, *_args(name), output=y)
    from_x = getattr(F, name + "_vjp")(x, g, *_args(name))
    # y's rounding (half an ulp of y), amplified by at most 2|y| / (1 - y^2) ~ 3.6 (tanh at
    # |x| = 1) relative to the result, plus the roundings of each form
    assert _ulps(from_y, from_x, dtype).max() <= 8.0


@pytest.mark.parametrize("name", sorted(set(ACTIVATION_FLOAT32_NATIVE) - {"sign"}))
def test_sign_class_kinds_give_the_x_vjp_bit_for_bit(name, dtype):
    x = np.array([-np.inf, -3.0, -1e-30, -0.0, 0.0, 1e-30, 2.5, np.inf, np.nan], dtype=dtype)
    g = np.array([1.0, -2.0, 3.0, 4.0, np.inf, 0.5, -1.0, 2.0, 1.0], dtype=dtype)
    y = getattr(F, name)(x, *_args(name))
    got = getattr(F, name + "_vjp")(x, g, *_args(name), output=y)
    want = getattr(F, name + "_vjp")(x, g, *_args(name))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", FROM_Y)
def test_output_nan_gives_nan(name, dtype):
    y = np.array([np.nan, 0.25], dtype=dtype)
    d = getattr(F, name + "_vjp")(y, np.ones_like(y), *_args(name), output=y)
    assert np.isnan(d[0]) and np.isfinite(d[1])


def test_output_vjp_threads_agree(dtype, rng):
    x, g = _inputs(rng, 3 * 4096 + 11, dtype)
    for name in NAMES:
        y = getattr(F, name)(x, *_args(name))
        one = getattr(F, name + "_vjp")(x, g, *_args(name), output=y, n_threads=1)
        two = getattr(F, name + "_vjp")(x, g, *_args(name), output=y, n_threads=2)
        np.testing.assert_array_equal(one, two)


def test_output_is_cast_to_x_dtype_and_shaped_like_x():
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    y64 = F.sigmoid(x.astype(np.float64))
    got = F.sigmoid_vjp(x, np.ones_like(x), output=y64)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, F.sigmoid_vjp(x, np.ones_like(x),
                                                     output=y64.astype(np.float32)))
    with pytest.raises(ValueError, match="output"):
        F.sigmoid_vjp(x, np.ones_like(x), output=np.ones(6, np.float32))


@pytest.mark.parametrize("lib", [F, R.activations], ids=["compiled", "twin"])
def test_leaky_relu_output_needs_nonnegative_slope(lib):
    x = np.array([-1.0, 2.0])
    with pytest.raises(ValueError, match="slope >= 0"):
        lib.leaky_relu_vjp(x, np.ones(2), -0.5, output=F.leaky_relu(x, -0.5))
    # slope 0 is fine: y = 0 for x <= 0 still means x <= 0
    assert (F.leaky_relu_vjp(x, np.ones(2), 0.0, output=F.leaky_relu(x, 0.0)) == [0, 1]).all()


def test_compiled_entry_point_checks_lengths():
    from nnlib._kernels import activations as K
    y = np.ones(4)
    with pytest.raises(ValueError, match="same length"):
        K.activation_vjp_from_output(ACTIVATION_CODES["tanh"], y, np.ones(3), np.empty(4),
                                     0.0, 1)
    with pytest.raises(ValueError, match="unknown activation code"):
        K.activation_vjp_from_output(99, y, y, np.empty(4), 0.0, 1)


@pytest.mark.parametrize("output", [False, True])
def test_sign_vjp_is_the_zero_map(output, dtype):
    x = np.array([np.nan, -np.inf, -1.0, -0.0, 0.0, 2.0, np.inf], dtype=dtype)
    g = np.array([1.0, np.nan, np.inf, -np.inf, np.nan, 3.0, 1.0], dtype=dtype)
    kw = {"output": F.sign(x)} if output else {}
    d = F.sign_vjp(x, g, **kw)
    assert d.dtype == dtype and (d == 0).all() and not np.signbit(d).any()
    np.testing.assert_array_equal(d, R.sign_vjp(x, g, **kw))
