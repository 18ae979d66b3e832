"""vmath.h's exp, expm1, log1p and tanh (through nnlib._kernels.elementary): error in ULPs
on deterministic sweeps of each whole domain against long double (64-bit mantissa), and
the special values exactly as libm gives them; nn_log as well (the Poisson loss's log t).

The ULP figures in scalar.pxd's design note come from the same measurement with 1e7
points per domain (here 2e5 to keep the suite fast): ``_sweep`` and ``_max_ulp`` below
with ``n=10**7``.
"""
import numpy as np
import pytest

from nnlib._kernels import elementary as E

LD = np.longdouble
pytestmark = pytest.mark.skipif(np.finfo(LD).nmant < 60,
                                reason="needs an extended long double as the reference")

# Max error allowed, in ULPs of the exact value (float64). libm (glibc) is < 1 ulp for
# all five; measured here: exp 0.76, expm1 0.79, log1p 0.81, tanh 0.71, log 0.85.
BOUND = 0.9

def _fn(name):
    return lambda x, out: E.evaluate(name, x, out)


CASES = {  # name: (nnlib function, long double reference, [(lo, hi, spacing)])
    "exp": (_fn("exp"), np.exp, [(-746.0, 710.0, "lin"), (-1.0, 1.0, "lin"),
                            (-745.2, -708.0, "lin"), (1e-300, 746.0, "log"),
                            (-746.0, -1e-300, "log")]),
    "expm1_neg": (_fn("expm1_neg"), np.expm1, [(-60.0, 0.0, "lin"), (-1.0, 0.0, "lin"),
                                          (-60.0, -1e-300, "log")]),
    "log1p_unit": (_fn("log1p_unit"), np.log1p, [(0.0, 1.0, "lin"), (1e-300, 1.0, "log")]),
    "tanh": (_fn("tanh"), np.tanh, [(-20.0, 20.0, "lin"), (1e-300, 20.0, "log"),
                               (-20.0, -1e-300, "log")]),
    # log: near 1 (where log x is small and k = 0 or -1), every binade including the
    # subnormals (scaled by 2^54 first), and both sides of the reduction's sqrt2/2 cut
    "log": (_fn("log"), np.log, [(0.5, 2.0, "lin"), (5e-324, 1e308, "log"),
                            (5e-324, 2.2250738585072014e-308, "log"), (0.99, 1.01, "lin"),
                            (0.7071, 0.7072, "lin"), (1.4142, 1.4143, "lin")]),
}


def _sweep(lo, hi, spacing, n):
    """n points covering [lo, hi] (evenly, or evenly in log|x|), each moved by a few
    ulps so that the low mantissa bits vary too."""
    if spacing == "lin":
        x = np.linspace(lo, hi, n)
    else:
        sign = -1.0 if hi < 0 else 1.0
        a, b = sorted((abs(lo), abs(hi)))
        x = sign * np.geomspace(a, b, n)
    steps = (np.arange(n) % 7) - 3
    x = x + steps * np.spacing(x)
    return np.clip(x, lo, hi)


def _ulp64(e):
    """Spacing of float64 at the exact (long double) value e; subnormal spacing below."""
    _, ex = np.frexp(np.abs(e))
    return np.ldexp(LD(1), np.maximum(ex.astype(np.int64) - 1, -1022) - 52)


def _max_ulp(fn, ref, x):
    got = np.empty_like(x)
    fn(x, got)
    with np.errstate(over="ignore", under="ignore"):
        exact = ref(x.astype(LD))
    with np.errstate(over="ignore"):
        rounded = exact.astype(np.float64)
    finite = np.isfinite(rounded)
    # beyond the float64 range the only right answer is the rounded one (inf)
    assert np.array_equal(got[~finite], rounded[~finite])
    err = np.abs(got[finite].astype(LD) - exact[finite]) / _ulp64(exact[finite])
    i = int(np.argmax(err))
    return float(err[i]), float(x[finite][i])


@pytest.mark.parametrize("name", list(CASES))
def test_max_ulp_on_sweep(name):
    fn, ref, ranges = CASES[name]
    for lo, hi, spacing in ranges:
        worst, at = _max_ulp(fn, ref, _sweep(lo, hi, spacing, 200_001))
        assert worst <= BOUND, f"{name} on [{lo}, {hi}]: {worst:.3f} ulp at x = {at!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_float32_rounding_of_double_result(name):
    # float32 kernels compute in double and round once: within 0.5 ulp (+ the double's
    # error, ~2^-29 ulp of float32) of the exact value.
    fn, ref, ranges = CASES[name]
    lo, hi, spacing = ranges[0]
    lo, hi = max(lo, -103.0), min(hi, 88.0)    # float32's range for exp
    x = _sweep(lo, hi, spacing, 100_001).astype(np.float32).astype(np.float64)
    got = np.empty_like(x)
    fn(x, got)
    got32 = got.astype(np.float32)
    exact = ref(x.astype(LD))
    _, ex = np.frexp(np.abs(exact))
    ulp32 = np.ldexp(LD(1), np.maximum(ex.astype(np.int64) - 1, -126) - 23)
    err = np.abs(got32.astype(LD) - exact) / ulp32
    assert float(err.max()) <= 0.5 + 1e-6


TINY = 5e-324
SPECIAL = [0.0, -0.0, TINY, -TINY, 2.2250738585072014e-308, -2.2250738585072014e-308,
           1e-20, -1e-20, 0.5, -0.5, 1.0, -1.0, 19.1, -19.1, -37.5, -60.0, -61.0,
           709.782712893384, 709.7827128933841, 710.0, -708.3964185322641,
           -745.1332191019411, -745.1332191019412, -746.0, 1e308, -1e308,
           np.inf, -np.inf, np.nan]


def _same(a, b):
    """Bitwise-equal as values: equal with the same sign (so +0 != -0), or both NaN."""
    return (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))


@pytest.mark.parametrize("name,domain", [("exp", lambda x: np.ones_like(x, bool)),
                                         ("expm1_neg", lambda x: ~(x > 0)),
                                         ("log1p_unit", lambda x: ~((x < 0) | (x > 1))),
                                         ("tanh", lambda x: np.ones_like(x, bool)),
                                         ("log", lambda x: np.ones_like(x, bool))])
def test_special_values_match_libm(name, domain):
    fn, _, _ = CASES[name]
    libm = {"exp": np.exp, "expm1_neg": np.expm1, "log1p_unit": np.log1p,
            "tanh": np.tanh, "log": np.log}[name]
    x = np.array(SPECIAL)
    x = x[domain(x)]
    got = np.empty_like(x)
    fn(x, got)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        want = libm(x)     # log: -inf at +-0, NaN below 0
    # Exactly libm's answer where that is a special value (+-0, +-1, +-inf, NaN, x itself,
    # a subnormal near the underflow threshold); within BOUND ulp elsewhere.
    special = (np.isnan(want) | np.isinf(want) | (want == 0) | (np.abs(want) == 1)
               | (want == x) | (np.abs(want) < 1e-300))
    bad = ~_same(got, want) & special
    ordinary = ~special
    bad[ordinary] = (np.abs(got[ordinary] - want[ordinary])
                     > BOUND * 2 * np.spacing(np.abs(want[ordinary])))
    assert not bad.any(), [(float(a), float(g), float(w))
                           for a, g, w in zip(x[bad], got[bad], want[bad])]


def test_saturated_regions_keep_relative_accuracy():
    # exp underflows gradually to the last subnormal; tanh x = x for tiny x (subnormals
    # too); expm1 and log1p are x for tiny x.
    x = np.array([-740.0, -744.0, -745.0])
    got = np.empty_like(x)
    E.evaluate("exp", x, got)
    np.testing.assert_array_equal(got, np.exp(x))
    tiny = np.array([1e-300, -1e-300, 1e-310, -1e-310, TINY, 1e-17])
    E.evaluate("tanh", tiny, got := np.empty_like(tiny))
    np.testing.assert_array_equal(got, tiny)
    E.evaluate("expm1_neg", -np.abs(tiny), got)
    np.testing.assert_array_equal(got, -np.abs(tiny))
    E.evaluate("log1p_unit", np.abs(tiny), got)
    np.testing.assert_array_equal(got, np.abs(tiny))


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="length"):
        E.evaluate("exp", np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="unknown function"):
        E.evaluate("log2", np.zeros(3), np.zeros(3))


def test_tanh_f32_after_rounding_to_float32():
    # nn_tanh_f32 (the float32 kernels' tanh) only needs to be right after rounding to
    # float32: within 0.5 ulp + 1e-3 (measured on all float32 in [-20, 20]: 0.50012).
    x = _sweep(-20.0, 20.0, "lin", 400_001).astype(np.float32)
    x = np.concatenate([x, np.geomspace(1e-45, 20, 100_000, dtype=np.float32)])
    got = np.empty(x.size)
    E.evaluate("tanh_f32", x.astype(np.float64), got)
    exact = np.tanh(x.astype(LD))
    _, ex = np.frexp(np.abs(exact))
    ulp32 = np.ldexp(LD(1), np.maximum(ex.astype(np.int64) - 1, -126) - 23)
    err = np.abs(got.astype(np.float32).astype(LD) - exact) / ulp32
    assert float(err.max()) <= 0.5 + 1e-3
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.4e-45, -1.4e-45, 1e-38, 30.0,
                        -100.0, 3.4e38], dtype=np.float32)
    got = np.empty(special.size)
    E.evaluate("tanh_f32", special.astype(np.float64), got)
    assert _same(got.astype(np.float32), np.tanh(special)).all()


# (name, long double reference, domain [lo, hi]) of vmath.h's functions for float32
# results: each must be right after rounding to float32 (the float32 kernels round once).
F32_CASES = [("exp_neg_f32", np.exp, -104.0, 0.0), ("expm1_neg_f32", np.expm1, -20.0, 0.0),
             ("tanh_f32", np.tanh, -20.0, 20.0), ("log1p_unit_f32", np.log1p, 0.0, 1.0),
             ("exp_neg_f32_half", np.exp, -104.0, 0.0)]


@pytest.mark.parametrize("name,ref,lo,hi", F32_CASES, ids=[c[0] for c in F32_CASES])
def test_float32_functions_after_rounding_to_float32(name, ref, lo, hi):
    # within 0.5 ulp + 1e-3 of float32 (their relative error, <= 3e-11, is 5e-4 ulp),
    # subnormal float32 results included (exp down to -104, expm1 and tanh near 0)
    x = _sweep(lo, hi, "lin", 400_001).astype(np.float32)
    tiny = np.geomspace(1e-45, max(abs(lo), abs(hi)), 100_000, dtype=np.float32)
    x = np.concatenate([x, -tiny if hi <= 0 else tiny])
    got = np.empty(x.size)
    E.evaluate(name, x.astype(np.float64), got)
    exact = ref(x.astype(LD))
    _, ex = np.frexp(np.abs(exact))
    ulp32 = np.ldexp(LD(1), np.maximum(ex.astype(np.int64) - 1, -149 + 23) - 23)
    err = np.abs(got.astype(np.float32).astype(LD) - exact) / ulp32
    assert float(err.max()) <= 0.5 + 1e-3, float(x[np.argmax(err)])


def test_exp_neg_f32_clamp_and_special_values():
    # below NN_EXP_F32_ARG_MIN (-708) e^x through e^(x + 64 ln 2) 2^-64, down to libm's
    # underflow; 0 below it and at -inf (a product with an infinite gradient is then
    # inf or NaN as with libm's exp: sigmoid_vjp(-inf, inf) is NaN, not inf); NaN stays
    # NaN; -0 and +0 give 1
    x = np.array([0.0, -0.0, -707.9, -708.0, -708.1, -720.0, -745.0, -745.2, -1e4,
                  -np.inf, np.nan])
    got = np.empty_like(x)
    E.evaluate("exp_neg_f32", x, got)
    np.testing.assert_allclose(got[:5], np.exp(x[:5]), rtol=1e-10)
    np.testing.assert_allclose(got[5], np.exp(x[5]), rtol=1e-10)     # subnormal
    assert got[6] > 0 and np.exp(-745.0) > 0
    assert (got[7:10] == 0).all() and np.exp(-745.2) == 0
    assert np.isnan(got[10]) and not got.astype(np.float32)[3:10].any()
    x = np.array([0.0, -0.0, -60.0, -1e4, -np.inf, np.nan])
    E.evaluate("expm1_neg_f32", x, got := np.empty_like(x))
    assert _same(got, np.array([0.0, -0.0, -1.0, -1.0, -1.0, np.nan])).all()


def test_exp_neg_f32_half_range_and_special_values():
    # the float32 softplus vjp's e^x: within its fit's 1.5e-11 at every half step k ln2/2
    # down to -708 (r ~ 0: each 2^k and sqrt2 2^k scale, the integer lanes' sqrt2 too),
    # e^-708 on [-745.13, -708) (every float32 product with it is the signed 0 e^x
    # gives), 0 below and at -inf, NaN kept, +-0 give 1
    k = np.arange(-2042, 1)
    x = k * (np.log(2.0) / 2)
    got = np.empty_like(x)
    E.evaluate("exp_neg_f32_half", x, got)
    np.testing.assert_allclose(got, np.exp(x), rtol=2e-11)
    x = np.array([0.0, -0.0, -708.0, -708.1, -745.0, -745.2, -1e4, -np.inf, np.nan])
    E.evaluate("exp_neg_f32_half", x, got := np.empty_like(x))
    assert (got[:2] == 1.0).all() and abs(got[2] / np.exp(-708.0) - 1) < 2e-11
    assert got[3] == got[4] == got[2] and (got[5:8] == 0).all() and np.isnan(got[8])


def test_log_is_exact_on_powers_of_two_and_one():
    # log 1 = +0 (k = 0, f = 0) and log 2^k = k ln 2 rounded (f = 0: only k ln2_hi + k
    # ln2_lo), for every binade, subnormal ones included
    k = np.arange(-1074, 1024)
    x = np.ldexp(1.0, k)
    got = np.empty_like(x)
    E.evaluate("log", x, got)
    assert got[k == 0][0] == 0.0 and not np.signbit(got[k == 0][0])
    err = np.abs(got.astype(LD) - k.astype(LD) * np.log(LD(2))) / _ulp64(k * np.log(2.0))
    assert float(err[k != 0].max()) <= 0.5 + 1e-3
