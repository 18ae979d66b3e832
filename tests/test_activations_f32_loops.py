"""The float32 loops of ``act_f32.h`` (leaky_relu forward and vjp, sigmoid's and tanh's vjp
from the output, the sigmoid and tanh forwards): each result is the float64 kernel's
rounded once, bit for bit, at lengths around every vector boundary and with the special
values in every lane position; the sigmoid and tanh forwards, whose float32 formulas are
not the float64 kernels', within the float32 contract of that rounding (<= 0.5005 ulp)
and the same in every position.

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


# the sigmoid forward (act_f32.h's explicit loop where the build has one, else the generic
# loop): values around every vector boundary (4, two streams of 4, one vector of 8 with
# AVX-512, the masked tail) and
# the regions where its branches meet: +-0, +-inf, NaN, subnormals, the float32 underflow
# of the result (-103.98: sigmoid < 2^-150 rounds to 0), the saturation to 1 (17.33), the
# clamp of e^x at -708, FLT_MAX
SIGMOID_SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1.17e-38, -1.17e-38,
     -103.972, -103.9721, -103.97208, -103.98, -104.0, -87.33655, -88.72284,
     17.32868, 17.328679, 17.3287, 16.6355, -708.0, -708.4, -707.9, -745.2, -1e4,
     3.4028235e38, -3.4028235e38, 1.0, -1.0, 0.5, -2.5, -30.537546, 88.0], np.float32)
SIGMOID_LENGTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32,
                   33, 39, 40, 41, 4095, 4096, 4097, 4096 + 8, 4096 + 9, 2 * 4096 + 11]


# the tanh forward's (act_f32.h's 8-wide loop with AVX-512): its saturation at
# NN_TANH_F32_SATURATE (30), where tanh rounds to +-1 (9.01), tiny x (tanh x = x)
TANH_SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1.17e-38, -1.17e-38,
     30.0, -30.0, 30.000002, -30.000002, 29.999998, 9.01, -9.01, 8.6, 1e-4, -3e-5,
     3.4028235e38, -3.4028235e38, 1.0, -1.0, 0.5, -2.5], np.float32)
FORWARD_SPECIALS = {"sigmoid": SIGMOID_SPECIALS, "tanh": TANH_SPECIALS}


def _sigmoid_values(rng, n, name="sigmoid"):
    specials = FORWARD_SPECIALS[name]
    v = rng.standard_normal(n) * rng.choice([1.0, 8.0, 30.0, 120.0, 1e3], n)
    k = min(n, len(specials))
    v[rng.choice(n, size=k, replace=False)] = specials[rng.choice(
        len(specials), size=k, replace=False)]
    return v.astype(np.float32)


def _assert_sigmoid_contract(x, got):
    """got (float32) is sigma(x) rounded to nearest to <= 0.5005 ulp: the float64 oracle
    (the NumPy twin's formula, ~1e-16 relative) rounded once, or its neighbour where the
    oracle lies within 5e-4 ulp of the midpoint between them; 0 exactly where the
    correctly rounded result is 0, NaN exactly for NaN x."""
    from nnlib._reference.activations import _sigmoid64
    want64 = _sigmoid64(x.astype(np.float64))
    want = want64.astype(np.float32)
    nan = np.isnan(x)
    np.testing.assert_array_equal(np.isnan(got), nan)
    got64, ok = got[~nan].astype(np.float64), ~nan
    exact = got[ok].view(np.uint32) == want[ok].view(np.uint32)
    # ulp of the float32 result (subnormal spacing 2^-149 at the bottom)
    ulp = np.maximum(np.spacing(np.abs(want[ok])).astype(np.float64), 2.0 ** -149)
    err = np.abs(got64 - want64[ok]) / ulp
    bad = ~exact & (err > 0.5005)
    assert not bad.any(), (x[ok][bad][:5], got[ok][bad][:5], want64[ok][bad][:5])
    assert ((got[ok] == 0) == (want[ok] == 0)).all()


@pytest.mark.parametrize("n", SIGMOID_LENGTHS)
def test_sigmoid_forward_within_the_float32_contract(n, rng):
    x = _sigmoid_values(rng, n)
    _assert_sigmoid_contract(x, F.sigmoid(x, n_threads=1))


def test_sigmoid_forward_special_values():
    inf, nan = np.inf, np.nan
    x = np.array([0.0, -0.0, inf, -inf, nan, 1e-45, -1e-45, 3.4028235e38, -3.4028235e38,
                  -104.0, -708.0, -1e4, 17.33, 40.0], np.float32)
    want = np.array([0.5, 0.5, 1.0, 0.0, nan, 0.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
                    np.float32)
    for k in range(len(x)):     # each value in every lane of a vector, a stream, the tail
        xs = np.roll(np.concatenate([x, x]), k)
        ws = np.roll(np.concatenate([want, want]), k)
        got = F.sigmoid(xs, n_threads=1)
        np.testing.assert_array_equal(got, ws)
        assert np.isnan(got[np.isnan(xs)]).all()
    assert np.signbit(F.sigmoid(x, n_threads=1)[~np.isnan(x)]).sum() == 0


@pytest.mark.parametrize("n", SIGMOID_LENGTHS)
def test_tanh_forward_within_the_float32_contract(n, rng):
    # tanh x in double (nn_tanh_f32, ~1e-11 relative) rounded once: within 0.5005 ulp of
    # NumPy's float64 tanh (~1 ulp of a double), +-1 beyond the saturation, x for tiny x
    x = _sigmoid_values(rng, n, "tanh")
    got = F.tanh(x, n_threads=1)
    nan = np.isnan(x)
    np.testing.assert_array_equal(np.isnan(got), nan)
    want64 = np.tanh(x[~nan].astype(np.float64))
    ulp = np.maximum(np.spacing(np.abs(want64.astype(np.float32))).astype(np.float64),
                     2.0 ** -149)
    err = np.abs(got[~nan].astype(np.float64) - want64) / ulp
    assert (err <= 0.5005).all(), (x[~nan][err > 0.5005][:5], got[~nan][err > 0.5005][:5])
    np.testing.assert_array_equal(np.signbit(got[~nan]), np.signbit(x[~nan]))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_forward_the_same_in_every_position(name, rng):
    # a value's result does not depend on its lane, stream, chunk or the tail: each value
    # alone (n = 1, the tail) against the same values at all offsets of longer arrays
    f = getattr(F, name)
    x = _sigmoid_values(rng, 64, name)
    alone = np.concatenate([f(x[i:i + 1], n_threads=1) for i in range(len(x))])
    for n in (5, 8, 13, 17, 33, 64):
        for off in range(0, len(x) - n + 1, 3):
            got = f(x[off:off + n], n_threads=1)
            np.testing.assert_array_equal(got.view(np.uint32),
                                          alone[off:off + n].view(np.uint32))
    big = np.resize(x, 3 * 4096 + 7)      # across the 4096-element tasks, two threads
    np.testing.assert_array_equal(f(big, n_threads=2).view(np.uint32),
                                  np.resize(alone, big.size).view(np.uint32))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("step", [2, 3, 8])
def test_forward_strided_and_offset_inputs(name, step, rng):
    # a strided view (the wrapper reads it through a contiguous copy) and contiguous
    # slices starting at every offset of a vector of 8 floats give each value's result
    # alone: no lane takes a neighbour's value, whatever the alignment of x and out
    f = getattr(F, name)
    x = _sigmoid_values(rng, 8 * 41, name)
    alone = np.concatenate([f(x[i:i + 1], n_threads=1) for i in range(len(x))])
    for off in range(8):
        got = f(x[off::step], n_threads=1)
        np.testing.assert_array_equal(got.view(np.uint32), alone[off::step].view(np.uint32))
        for n in (7, 8, 9, 17, 41):
            np.testing.assert_array_equal(
                f(x[off:off + n], n_threads=1).view(np.uint32),
                alone[off:off + n].view(np.uint32))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("n", SIGMOID_LENGTHS)
def test_forward_writes_only_its_output(name, n, rng):
    # the output a view into a larger buffer with sentinels after it: a full-width tail
    # store past n changes a sentinel (instead of writing past the end of the heap block)
    from nnlib._codes import ACTIVATION_CODES
    from nnlib._kernels.activations import activation_forward
    x = _sigmoid_values(rng, n, name)
    buf = np.full(n + 16, -7.25, np.float32)
    activation_forward(ACTIVATION_CODES[name], x, buf[:n], 0.0, 1)
    np.testing.assert_array_equal(buf[n:], np.float32(-7.25))
    np.testing.assert_array_equal(buf[:n].view(np.uint32),
                                  getattr(F, name)(x, n_threads=1).view(np.uint32))


# the sign forward (act_f32.h's vfixupimmps loop with AVX-512, 16 values a vector and a
# masked tail; else the generic loop): lengths around 16 and the 4096-element tasks
SIGN_LENGTHS = [1, 2, 15, 16, 17, 31, 32, 33, 47, 4095, 4096, 4097, 2 * 4096 + 19]
# NaNs by their bits: quiet and signalling, both signs, with payloads
SIGN_NAN_BITS = np.array([0x7FC00000, 0xFFC00000, 0x7FC12345, 0xFFD00001, 0x7F800001,
                          0xFF812345, 0x7FBFFFFF, 0xFF800FFF], np.uint32)


def _sign_values(rng, n):
    x = _values(rng, n)
    nan = rng.random(n) < 0.1
    x[nan] = SIGN_NAN_BITS[rng.integers(0, len(SIGN_NAN_BITS), nan.sum())].view(np.float32)
    return x


@pytest.mark.parametrize("n", SIGN_LENGTHS)
def test_sign_forward_is_the_double_formula_rounded(n, rng):
    # -1, +-0 (x's zero), 1 for every other value, the float64 kernel's exactly; a NaN
    # quieted with its sign and payload kept (x * 0, as the generic loop computes it)
    x = _sign_values(rng, n)
    got = F.sign(x, n_threads=1)
    nan = np.isnan(x)
    _assert_rounded_once(got[~nan], F.sign(x[~nan].astype(np.float64)))
    np.testing.assert_array_equal(got[nan].view(np.uint32),
                                  x[nan].view(np.uint32) | np.uint32(0x00400000))


@pytest.mark.parametrize("off", range(17))
def test_sign_forward_every_offset_and_tail(off, rng):
    # contiguous slices at every offset of a vector, each length to past one vector: each
    # value gives its result alone, and nothing past n is written
    from nnlib._codes import ACTIVATION_CODES
    from nnlib._kernels.activations import activation_forward
    x = _sign_values(rng, 80)
    alone = np.concatenate([F.sign(x[i:i + 1], n_threads=1) for i in range(len(x))])
    for n in range(0, 40):
        buf = np.full(n + 16, -7.25, np.float32)
        activation_forward(ACTIVATION_CODES["sign"], x[off:off + n], buf[:n], 0.0, 1)
        np.testing.assert_array_equal(buf[n:], np.float32(-7.25))
        np.testing.assert_array_equal(buf[:n].view(np.uint32),
                                      alone[off:off + n].view(np.uint32))


def test_sign_forward_in_the_callers_denormals_are_zero_mode():
    # a caller that set MXCSR's flush modes (torch.set_flush_denormal) gets what the
    # generic loop's compares give there: a subnormal x reads as +-0, so its sign is x's
    # zero; everything else as without the mode
    torch = pytest.importorskip("torch")
    x = np.array([1e-45, -1e-45, 1.17e-38, -1.17e-38, 1.2e-38, -1.2e-38, 0.0, -0.0, 2.5,
                  -3.0] * 4, np.float32)
    want_off = F.sign(x.astype(np.float64)).astype(np.float32)
    want_on = want_off.copy()
    sub = (x != 0) & (np.abs(x) < np.finfo(np.float32).tiny)
    want_on[sub] = np.copysign(np.float32(0), x[sub])
    if not torch.set_flush_denormal(True):
        pytest.skip("no flush-denormal mode on this CPU")
    try:
        got = F.sign(x, n_threads=1)
    finally:
        torch.set_flush_denormal(False)
    np.testing.assert_array_equal(got.view(np.uint32), want_on.view(np.uint32))
    np.testing.assert_array_equal(F.sign(x, n_threads=1).view(np.uint32),
                                  want_off.view(np.uint32))
