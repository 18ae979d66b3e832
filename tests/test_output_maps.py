"""Compiled output maps (softmax, log_softmax, sparsemax) vs NumPy twins, finite
differences, the simplex-projection definition, extremes and bad input."""
import warnings

import numpy as np
import pytest

import nnlib._reference as R
import nnlib.functional as F
from nnlib._kernels import aligned
from tests.conftest import FD_TOL, TOL, central_diff, layouts_of, unaligned_copy

NAMES = ["softmax", "log_softmax", "sparsemax"]
# (shape, id): 1-d, 2-d, n-d, one column, and rows long enough for sparsemax's heapsort.
SHAPES = [((9,), "1d"), ((7, 13), "2d"), ((2, 3, 5), "3d"), ((6, 1), "c1"),
          ((4, 100), "c100")]


def _sparsemax_tau(x):
    """Threshold per row, by brute force: the tau with sum(max(x - tau, 0)) = 1."""
    from scipy.optimize import brentq
    return np.array([brentq(lambda t: np.maximum(r - t, 0).sum() - 1, r.min() - 1, r.max())
                     for r in x.reshape(-1, x.shape[-1])])


@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[i for _, i in SHAPES])
@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_reference(name, shape, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    got = getattr(F, name)(x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, getattr(R, name)(x), **TOL[dtype])


@pytest.mark.parametrize("shape", [s for s, _ in SHAPES], ids=[i for _, i in SHAPES])
@pytest.mark.parametrize("name", NAMES)
def test_vjp_matches_reference(name, shape, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    got = getattr(F, name + "_vjp")(x, g)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, getattr(R, name + "_vjp")(x, g), **TOL[dtype])


def _away_from_sparsemax_kinks(rng, shape, gap):
    """Random scores none of which lies within ``gap`` of its row's threshold."""
    while True:
        x = rng.standard_normal(shape) * 1.5
        tau = _sparsemax_tau(x)
        if (np.abs(x.reshape(-1, shape[-1]) - tau[:, None]) > gap).all():
            return x


@pytest.mark.parametrize("name", NAMES)
def test_vjp_matches_finite_differences(name, dtype, rng):
    h = 1e-3 if dtype == np.float64 else 2e-2
    if name == "sparsemax":        # piecewise linear: keep 2h away from the pieces' edges
        x = _away_from_sparsemax_kinks(rng, (3, 5), gap=5 * h)
    else:
        x = rng.standard_normal((3, 5)) * 2
    x = x.astype(dtype)
    g = rng.standard_normal(x.shape)
    fwd = getattr(F, name)

    def scalar(v):
        return float(np.sum(g * fwd(v.astype(dtype)).astype(np.float64)))

    fd = central_diff(scalar, x, h=h)
    got = getattr(F, name + "_vjp")(x, g.astype(dtype))
    np.testing.assert_allclose(got, fd, **FD_TOL[dtype])


def test_sparsemax_vjp_on_sparse_rows(rng):
    # Rows with a real zero pattern: the vjp is zero off the support and centered on it.
    x = np.array([[3.0, 0.0, -1.0, 2.5], [0.1, 0.2, -5.0, 0.0]])
    g = rng.standard_normal(x.shape)
    p = F.sparsemax(x)
    d = F.sparsemax_vjp(x, g)
    support = p > 0
    assert (d[~support] == 0).all()
    np.testing.assert_allclose((d * support).sum(axis=1), 0, atol=1e-14)


def test_rows_are_distributions(dtype, rng):
    x = (rng.standard_normal((50, 9)) * 4).astype(dtype)
    for name in ("softmax", "sparsemax"):
        p = getattr(F, name)(x)
        assert (p >= 0).all()
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=0, atol=4 * np.finfo(dtype).eps * 9)
    np.testing.assert_allclose(np.exp(F.log_softmax(x).astype(np.float64)), F.softmax(x),
                               **TOL[dtype])


def test_sparsemax_is_the_euclidean_projection_onto_the_simplex(rng):
    x = rng.standard_normal((20, 6)) * 2
    p = F.sparsemax(x)
    np.testing.assert_allclose(p, np.maximum(x - _sparsemax_tau(x)[:, None], 0), atol=1e-12)
    # No point of the simplex is closer to x than p.
    q = rng.dirichlet(np.ones(6) * 0.3, size=(200, 20))
    assert ((np.linalg.norm(q - x, axis=2) + 1e-12) >= np.linalg.norm(p - x, axis=1)).all()


def test_sparsemax_sparsity_ties_and_limits():
    np.testing.assert_array_equal(F.sparsemax(np.array([3.0, 0.0, -1.0])), [1, 0, 0])
    np.testing.assert_array_equal(F.sparsemax(np.array([1.0, 1.0, 1.0, 1.0])), [0.25] * 4)
    np.testing.assert_array_equal(F.sparsemax(np.array([2.0, 2.0, 0.0])), [0.5, 0.5, 0])
    np.testing.assert_array_equal(F.sparsemax(np.full(100, 7.0)), np.full(100, 0.01))
    # Two classes: sparsemax([t, 0])_0 = clip((t + 1) / 2, 0, 1), the "hard sigmoid".
    t = np.linspace(-3, 3, 61)
    p = F.sparsemax(np.stack([t, np.zeros_like(t)], axis=1))
    np.testing.assert_allclose(p[:, 0], np.clip((t + 1) / 2, 0, 1), atol=1e-15)
    # Like softmax(x / T): one-hot on the argmax as T -> 0, uniform as T -> inf.
    x = np.array([0.3, -1.2, 0.9, 0.5])
    for fn in (F.softmax, F.sparsemax):
        np.testing.assert_allclose(fn(x / 1e-4), [0, 0, 1, 0], atol=1e-12)
        np.testing.assert_allclose(fn(x / 1e9), [0.25] * 4, atol=1e-9)


def test_shift_invariance(rng):
    x = rng.standard_normal((5, 8))
    for name in NAMES[::2]:
        fn = getattr(F, name)
        np.testing.assert_allclose(fn(x + 1000.0), fn(x), atol=1e-12)


def test_long_rows_with_many_ties_use_heapsort_correctly(rng):
    x = rng.integers(-3, 4, size=(30, 257)).astype(np.float64)
    np.testing.assert_allclose(F.sparsemax(x), R.sparsemax(x), **TOL[np.float64])
    x = rng.standard_normal((30, 1000)) * 0.01
    np.testing.assert_allclose(F.sparsemax(x), R.sparsemax(x), **TOL[np.float64])


def test_named_extreme_values():
    np.testing.assert_array_equal(F.softmax(np.array([1e4, 0.0])), [1.0, 0.0])
    np.testing.assert_array_equal(F.softmax(np.array([1e4, 0.0], np.float32)), [1.0, 0.0])
    np.testing.assert_array_equal(F.log_softmax(np.array([1e4, 0.0])), [0.0, -1e4])
    np.testing.assert_array_equal(F.sparsemax(np.array([1e4, 0.0])), [1.0, 0.0])
    np.testing.assert_array_equal(F.softmax(np.array([-1e4, -1e4])), [0.5, 0.5])


@pytest.mark.parametrize("name", NAMES)
def test_extremes_are_finite_and_warning_free(name, dtype):
    big = 1e4 if dtype == np.float32 else 700.0
    x = np.array([[-1e4, 1e4, 0.0], [-big, big, 1.0], [big, big, -big], [1e4, 1e4 - 1, 0],
                  [-1e-30, 0.0, 1e-30]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(F, name)(x)
        d = getattr(F, name + "_vjp")(x, np.ones_like(x))
    assert np.isfinite(y).all() and np.isfinite(d).all()
    np.testing.assert_allclose(y, getattr(R, name)(x), **TOL[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_nan_row_gives_nan_row_only(name):
    x = np.array([[np.nan, 1.0, 2.0], [0.0, 1.0, 2.0]])
    for y in (getattr(F, name)(x), getattr(F, name + "_vjp")(x, np.ones_like(x))):
        assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


@pytest.mark.parametrize("name", NAMES)
def test_readonly_and_noncontiguous_inputs(name, dtype, rng):
    base = rng.standard_normal((20, 30)).astype(dtype)
    ro = base.copy()
    ro.flags.writeable = False
    fn, ref = getattr(F, name), getattr(R, name)
    for x in (base[::2, ::3], np.asfortranarray(base), ro, base.T):
        np.testing.assert_allclose(fn(x), ref(x), **TOL[dtype])
    g = np.ones_like(ro)
    g.flags.writeable = False
    out = getattr(F, name + "_vjp")(ro, g)
    np.testing.assert_allclose(out, getattr(R, name + "_vjp")(ro, g), **TOL[dtype])
    assert out.flags.writeable and not np.shares_memory(out, ro)


@pytest.mark.parametrize("name", NAMES)
def test_one_and_two_threads_agree_bitwise(name, dtype, rng):
    x = (rng.standard_normal((5001, 37)) * 4).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    fn, vjp = getattr(F, name), getattr(F, name + "_vjp")
    np.testing.assert_array_equal(fn(x, n_threads=1), fn(x, n_threads=2))
    np.testing.assert_array_equal(vjp(x, g, n_threads=1), vjp(x, g, n_threads=2))



@pytest.mark.parametrize("c", [4, 10])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_short_rows_grouped_in_blocks_are_the_rows_alone(name, c, dtype, rng):
    """Rows of c <= VEC_BLOCK values are taken VEC_BLOCK // c to a block: around a
    block's row count, and past GIL_RELEASE_MIN values over two threads, every row is
    bitwise the row computed alone (a block or task that miscounted its last rows would
    leave them unwritten or read past them)."""
    from nnlib._paths import INT_PATHS
    per = INT_PATHS["VEC_BLOCK"][0] // c
    fn, vjp = getattr(F, name), getattr(F, name + "_vjp")
    big = INT_PATHS["GIL_RELEASE_MIN"][0] // c + per + 3
    for n in (per - 1, per, per + 1, 2 * per + 1, big):
        x = (rng.standard_normal((n, c)) * 4).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        y, d = fn(x, n_threads=1), vjp(x, g, n_threads=1)
        np.testing.assert_array_equal(y, fn(x, n_threads=2))
        np.testing.assert_array_equal(d, vjp(x, g, n_threads=2))
        for i in sorted({0, n - 2, n - 1} - {-1}):
            np.testing.assert_array_equal(y[i], fn(x[i:i + 1], n_threads=1)[0])
            np.testing.assert_array_equal(d[i], vjp(x[i:i + 1], g[i:i + 1],
                                                    n_threads=1)[0])

@pytest.mark.parametrize("name", NAMES)
def test_output_never_aliases_input(name, rng):
    x = rng.standard_normal((4, 5))
    keep = x.copy()
    y = getattr(F, name)(x)
    d = getattr(F, name + "_vjp")(x, x)
    assert not np.shares_memory(x, y) and not np.shares_memory(x, d)
    np.testing.assert_array_equal(x, keep)


def test_integer_input_becomes_float64():
    assert F.softmax(np.arange(6).reshape(2, 3)).dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad, exc, words", [
    (np.array([1 + 2j, 1]), TypeError, "complex"),
    (np.array(["a", "b"]), TypeError, "string"),
    (np.float64(3.0), ValueError, "at least 1 dimension"),
    (np.zeros((3, 0)), ValueError, "at least one entry"),
], ids=["complex", "string", "0d", "empty-row"])
def test_bad_input_raises(name, bad, exc, words):
    with pytest.raises(exc, match=words):
        getattr(F, name)(bad)


@pytest.mark.parametrize("name", NAMES)
def test_vjp_shape_mismatch_raises(name):
    with pytest.raises(ValueError, match="same shape"):
        getattr(F, name + "_vjp")(np.ones((2, 3)), np.ones((3, 2)))


# Property tests: any finite rows (ties, huge offsets, tiny spreads), both dtypes.
hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings                      # noqa: E402
from hypothesis import strategies as st                     # noqa: E402
from hypothesis.extra.numpy import arrays                   # noqa: E402

_ROWS = st.tuples(st.integers(1, 6), st.integers(1, 40)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.one_of(
        st.sampled_from([0.0, 1.0, -1.0, 0.5]),            # ties
        st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False))))


@settings(max_examples=150, deadline=None)
@given(x=_ROWS, f32=st.booleans())
def test_sparsemax_properties_hold_for_any_finite_rows(x, f32):
    dtype = np.float32 if f32 else np.float64
    x = x.astype(dtype)
    p = F.sparsemax(x)
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5 if f32 else 1e-12)
    np.testing.assert_allclose(p, R.sparsemax(x), rtol=TOL[dtype]["rtol"], atol=1e-5 if f32 else 1e-10)
    # Order is kept: a larger score never gets less probability.
    order = np.argsort(x, axis=1, kind="stable")
    assert (np.diff(np.take_along_axis(p, order, axis=1), axis=1) >= 0).all()


@settings(max_examples=100, deadline=None)
@given(x=_ROWS)
def test_softmax_properties_hold_for_any_finite_rows(x):
    p = F.softmax(x)
    assert np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-12)
    lp = F.log_softmax(x)
    assert (lp <= 0).all()
    np.testing.assert_allclose(lp, R.log_softmax(x), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("shape", [(5, 6), (2, 3, 4)], ids=["2d", "3d"])
@pytest.mark.parametrize("name", NAMES)
def test_arrays_the_kernels_cannot_read_as_is_are_converted_first(name, shape, dtype, rng):
    # the wrapper hands the kernels ndarrays as they are only when they are C-contiguous,
    # aligned and native float32/float64 (aligned.flat_float); the rest take a copy
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    f, vjp = getattr(F, name), getattr(F, name + "_vjp")
    want_y, want_g = f(x), vjp(x, g)
    for xx, gg in zip(layouts_of(x), layouts_of(g)):
        assert not aligned.flat_float(xx)
        np.testing.assert_array_equal(f(xx), want_y, strict=True)
        np.testing.assert_array_equal(vjp(xx, gg), want_g, strict=True)
        np.testing.assert_array_equal(vjp(x, gg), want_g, strict=True)
    other = np.float32 if dtype == np.float64 else np.float64
    np.testing.assert_array_equal(vjp(x, g.astype(other)),
                                  vjp(x, g.astype(other).astype(dtype)), strict=True)


def test_kernel_entry_points_check_dtype_layout_shape_and_writeability():
    from nnlib._kernels import output_maps as k
    x = np.ones((3, 4))
    with pytest.raises(TypeError, match="dtype of the first array"):
        k.softmax_forward(x, np.empty((3, 4), np.float32), 1)
    with pytest.raises(TypeError, match="dtype of the first array"):
        k.softmax_vjp(x, np.ones((3, 4), np.float32), np.empty((3, 4)), 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.log_softmax_vjp(x, np.ones((3, 8))[:, ::2], np.empty((3, 4)), 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.sparsemax_forward(np.ones((3, 4), np.int64), np.empty((3, 4)), 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.softmax_forward(unaligned_copy(x), np.empty((3, 4)), 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.softmax_forward(x.astype(">f8"), np.empty((3, 4)), 1)
    ro = np.empty((3, 4))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        k.sparsemax_vjp(x, x, ro, 1)
    with pytest.raises(ValueError, match="same shape"):
        k.softmax_forward(x, np.empty((4, 3)), 1)
    with pytest.raises(ValueError, match="same shape"):
        k.softmax_vjp(x, np.ones(12), np.empty((3, 4)), 1)
    with pytest.raises(ValueError, match="at least one dimension"):
        k.softmax_forward(np.ones(()), np.empty(()), 1)
    with pytest.raises(TypeError):
        k.softmax_forward(None, np.empty((3, 4)), 1)
    # any ndim >= 1: the rows of the last axis
    z = np.arange(24.0).reshape(2, 3, 4) % 5
    out, out2 = np.empty_like(z), np.empty((6, 4))
    k.log_softmax_forward(z, out, 1)
    k.log_softmax_forward(z.reshape(6, 4), out2, 1)
    np.testing.assert_array_equal(out.reshape(6, 4), out2)
