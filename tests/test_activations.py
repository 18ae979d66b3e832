"""Compiled activations vs their NumPy twins, finite differences and extremes."""
import warnings

import numpy as np
import pytest

import nnlib._reference as R
import nnlib.functional as F
from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS
from nnlib._kernels import aligned
from tests.conftest import FD_TOL, TOL, central_diff, unaligned_copy

NAMES = list(ACTIVATION_CODES)
SMOOTH = ["identity", "sigmoid", "tanh", "softplus"]   # differentiable everywhere
PARAM_VALUES = {"leaky_relu": 0.2, "elu": 0.7}


def _args(name):
    return (PARAM_VALUES[name],) if name in PARAM_VALUES else ()


def test_codes_match_the_compiled_enum():
    # the values the extensions were compiled with (a build older than _codes.py fails)
    from nnlib._kernels import codes
    assert codes.ACTIVATION_CODES == ACTIVATION_CODES


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_reference(name, dtype, rng):
    x = (rng.standard_normal((7, 13)) * 5).astype(dtype)
    got = getattr(F, name)(x, *_args(name))
    want = getattr(R, name)(x, *_args(name))
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_vjp_matches_reference(name, dtype, rng):
    x = (rng.standard_normal((5, 11)) * 5).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    got = getattr(F, name + "_vjp")(x, g, *_args(name))
    want = getattr(R, name + "_vjp")(x, g, *_args(name))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_vjp_matches_finite_differences(name, dtype, rng):
    # Stay away from the kinks (|x| > 0.05) so the difference quotient is the derivative.
    x = rng.uniform(0.1, 3, size=(4, 3)) * rng.choice([-1, 1], size=(4, 3))
    x = x.astype(dtype)
    g = rng.standard_normal(x.shape)
    fwd = getattr(F, name)

    def scalar(z):
        return float(np.sum(g * fwd(z.astype(dtype), *_args(name)).astype(np.float64)))

    h = 1e-3 if dtype == np.float64 else 2e-2
    fd = central_diff(scalar, x, h=min(h, 0.04))
    got = getattr(F, name + "_vjp")(x, g.astype(dtype), *_args(name))
    np.testing.assert_allclose(got, fd, **FD_TOL[dtype])


def test_kink_conventions():
    z = np.zeros(3)
    one = np.ones(3)
    assert (F.relu_vjp(z, one) == 0).all()
    assert (F.leaky_relu_vjp(z, one, 0.3) == 0.3).all()
    assert (F.elu_vjp(z, one, 0.5) == 0.5).all()
    assert (F.sign_vjp(np.array([-2.0, 0.0, 3.0]), one) == 0).all()
    assert (F.sign(np.array([-2.0, 0.0, 3.0])) == [-1, 0, 1]).all()


@pytest.mark.parametrize("name", NAMES)
def test_extremes_are_finite_and_warning_free(name, dtype):
    big = 1e4 if dtype == np.float32 else 700.0
    x = np.array([-1e4, -big, -50, -1e-30, 0, 1e-30, 50, big, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(F, name)(x, *_args(name))
        d = getattr(F, name + "_vjp")(x, np.ones_like(x), *_args(name))
    assert np.isfinite(y).all() and np.isfinite(d).all()
    np.testing.assert_allclose(y, getattr(R, name)(x, *_args(name)), **TOL[dtype])


def test_named_extreme_values():
    assert F.sigmoid(np.array([-1000.0]))[0] == 0.0
    assert F.sigmoid(np.array([1000.0]))[0] == 1.0
    assert F.softplus(np.array([1000.0]))[0] == 1000.0
    assert F.softplus(np.array([-1000.0]))[0] == 0.0
    assert F.softplus(np.array([1e4], dtype=np.float32))[0] == np.float32(1e4)
    assert F.relu(np.array([-3.0]))[0] == 0.0 and not np.signbit(F.relu(np.array([-3.0]))[0])


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates(name):
    y = getattr(F, name)(np.array([np.nan, 1.0]), *_args(name))
    assert np.isnan(y[0]) and np.isfinite(y[1])


@pytest.mark.parametrize("name", NAMES)
def test_readonly_and_noncontiguous_inputs(name, dtype, rng):
    base = rng.standard_normal((20, 30)).astype(dtype)
    view = base[::2, ::3]                       # non-contiguous
    fortran = np.asfortranarray(base)
    ro = base.copy()
    ro.flags.writeable = False
    fn, ref = getattr(F, name), getattr(R, name)
    for x in (view, fortran, ro):
        np.testing.assert_allclose(fn(x, *_args(name)), ref(x, *_args(name)), **TOL[dtype])
    g = np.ones_like(ro)
    g.flags.writeable = False
    out = getattr(F, name + "_vjp")(ro, g, *_args(name))
    assert out.flags.writeable and not np.shares_memory(out, ro)


@pytest.mark.parametrize("name", NAMES)
def test_one_and_two_threads_agree(name, dtype, rng):
    x = (rng.standard_normal(100_003) * 4).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    fn, vjp = getattr(F, name), getattr(F, name + "_vjp")
    np.testing.assert_array_equal(fn(x, *_args(name), n_threads=1),
                                  fn(x, *_args(name), n_threads=2))
    np.testing.assert_array_equal(vjp(x, g, *_args(name), n_threads=1),
                                  vjp(x, g, *_args(name), n_threads=2))


def test_output_is_never_the_input(rng):
    x = rng.standard_normal(10)
    y = F.identity(x)
    assert not np.shares_memory(x, y)
    np.testing.assert_array_equal(x, y)


def test_integer_input_becomes_float64():
    assert F.relu(np.arange(-3, 3)).dtype == np.float64


def test_activation_params_accept_keywords():
    x = np.array([-2.0, 2.0])
    np.testing.assert_array_equal(F.leaky_relu(x, slope=0.5), [-1.0, 2.0])
    np.testing.assert_allclose(F.elu(x, alpha=2.0), [2 * np.expm1(-2), 2.0])
    assert set(ACTIVATION_PARAMS) == {"leaky_relu", "elu"}


@pytest.mark.parametrize("bad, exc, words", [
    (np.array([1 + 2j]), TypeError, "complex"),
    (np.array(["a"]), TypeError, "string"),
    (np.array([object()]), TypeError, "object"),
])
def test_bad_dtypes_raise(bad, exc, words):
    with pytest.raises(exc, match=words):
        F.sigmoid(bad)


def test_vjp_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        F.tanh_vjp(np.ones(3), np.ones(4))


def test_bad_params_raise():
    with pytest.raises(ValueError, match="alpha"):
        F.elu(np.ones(2), -1.0)
    with pytest.raises(TypeError, match="slope"):
        F.leaky_relu(np.ones(2), "x")
    with pytest.raises(ValueError, match="n_threads"):
        F.relu(np.ones(2), n_threads=0)


def test_vjp_kernel_rejects_mismatched_buffers():
    # Layer 2 reads through raw pointers per chunk, so it checks lengths itself.
    from nnlib._kernels import activations as k
    with pytest.raises(ValueError, match="same length"):
        k.activation_vjp(ACTIVATION_CODES["relu"], np.ones(10), np.ones(2), np.empty(10),
                         0.0, 1)


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_chunk_boundaries(n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype)
    for name in NAMES:
        np.testing.assert_allclose(getattr(F, name)(x, *_args(name), n_threads=2),
                                   getattr(R, name)(x, *_args(name)), **TOL[dtype])


@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_non_native_byte_order_is_read_as_its_values(dtype):
    """'>f8' was cast to float32 (relu(1e300) gave inf, softmax NaN)."""
    big = 1e300 if dtype == ">f8" else 1e30
    x = np.array([[big, -2.0, 0.5]], dtype=dtype)
    native = x.astype(np.dtype(dtype).newbyteorder("="))
    for fn in (F.relu, F.tanh, F.sigmoid, F.softmax, F.sparsemax, F.identity):
        out = fn(x)
        assert out.dtype == native.dtype and out.dtype.isnative, fn.__name__
        np.testing.assert_array_equal(out, fn(native))
    assert F.relu(x)[0, 0] == big
    assert np.isfinite(F.softmax(x)).all()


@pytest.mark.parametrize("name", NAMES)
def test_arrays_the_kernels_cannot_read_as_is_are_converted_first(name, dtype, rng):
    # the wrapper hands the kernels ndarrays as they are only when they are C-contiguous,
    # aligned and native float32/float64 (aligned.flat_float); the rest take a copy
    x = rng.standard_normal((5, 6)).astype(dtype)
    g = rng.standard_normal((5, 6)).astype(dtype)
    f, vjp = getattr(F, name), getattr(F, name + "_vjp")
    want_y, want_g = f(x), vjp(x, g)
    for xx, gg in [(unaligned_copy(x), unaligned_copy(g)),                      # odd address
                   (np.asfortranarray(x), g),                           # F order
                   (x.astype(x.dtype.newbyteorder(">")), g),            # byte-swapped
                   (np.hstack([x, x])[:, :6], np.hstack([g, g])[:, :6])]:   # strided
        assert not aligned.flat_float(xx)
        np.testing.assert_array_equal(f(xx), want_y, strict=True)
        np.testing.assert_array_equal(vjp(xx, gg), want_g, strict=True)
        np.testing.assert_array_equal(vjp(xx, gg, output=unaligned_copy(want_y)),
                                      vjp(x, g, output=want_y), strict=True)
    # a grad_out of the other dtype is converted to x's
    other = np.float32 if dtype == np.float64 else np.float64
    np.testing.assert_array_equal(vjp(x, g.astype(other)), vjp(x, g.astype(other).astype(dtype)),
                                  strict=True)


def test_kernel_entry_points_check_dtype_layout_and_writeability():
    from nnlib._kernels import activations as k
    relu = ACTIVATION_CODES["relu"]
    x = np.ones(6)
    with pytest.raises(TypeError, match="dtype of the first array"):
        k.activation_forward(relu, x, np.empty(6, np.float32), 0.0, 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.activation_vjp(relu, x, np.ones(12)[::2], np.empty(6), 0.0, 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.activation_forward(relu, np.ones(6, np.int64), np.empty(6), 0.0, 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.activation_forward(relu, unaligned_copy(x), np.empty(6), 0.0, 1)
    ro = np.empty(6)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        k.activation_vjp_from_output(relu, x, x, ro, 0.0, 1)
    with pytest.raises(TypeError):
        k.activation_forward(relu, None, np.empty(6), 0.0, 1)
    # any shape is read flat: (2, 3) in, (6,) out
    out = np.empty(6)
    k.activation_forward(relu, np.arange(-3.0, 3.0).reshape(2, 3), out, 0.0, 1)
    assert out.tolist() == [0, 0, 0, 0, 1, 2]


# sign's zero and NaN classes by their bits: +-0, +-the smallest subnormal, +-inf, quiet
# and signalling NaNs of both signs with payloads
SIGN_SPECIAL_BITS = {
    np.float32: np.array([0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x7F800000,
                          0xFF800000, 0x7FC00000, 0xFFC12345, 0x7F800001, 0xFF812345],
                         np.uint32),
    np.float64: np.array([0, 1 << 63, 1, (1 << 63) | 1, 0x7FF0000000000000,
                          0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000012345,
                          0x7FF0000000000001, 0xFFF0000000012345], np.uint64)}


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_sign_twin_is_the_kernel_bit_for_bit_at_zero_and_nan(dt):
    # the kernel's x * 0 keeps -0 and quiets a NaN keeping its payload (verify.conventions
    # states sign(-0) = -0); np.sign, which the twin called, gives +0 at -0 and passes a
    # signalling float64 NaN through, so the twin disagreed at both
    bits = SIGN_SPECIAL_BITS[dt]
    x = bits.view(dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # the cast of a float32 sNaN
        want = R.sign(x)
    np.testing.assert_array_equal(F.sign(x).view(bits.dtype), want.view(bits.dtype))
    assert np.signbit(want[1]) and want[1] == 0
