"""nnlib.functional.dropout: the compiled kernel against its NumPy twin (bit for bit),
the mask's invariances and statistics, the vjp, and bad arguments."""
import numpy as np
import pytest

import nnlib.functional as F
import nnlib._reference as R
from nnlib._kernels import aligned
from nnlib._reference.dropout import dropout_mask
from tests.conftest import layouts_of, unaligned_copy

DTYPES = [np.float32, np.float64]
RATES = [0.0, 0.1, 0.5, 0.9, 0.999]
SHAPES = [(1,), (7,), (5, 3), (64, 33), (2, 3, 4)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_kernel_equals_its_twin_bit_for_bit(dtype, rate, shape, rng):
    x = rng.normal(size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    for seed, step, row0 in [(0, 0, 0), (2**64 - 1, 2**64 - 1, 2**64 - 7), (12345, 3, 9)]:
        out = F.dropout(x, rate, seed, step, row0=row0)
        assert out.dtype == dtype and out.shape == x.shape
        np.testing.assert_array_equal(out, R.dropout(x, rate, seed, step, row0=row0))
        np.testing.assert_array_equal(F.dropout_vjp(x, g, rate, seed, step, row0=row0),
                                      R.dropout_vjp(x, g, rate, seed, step, row0=row0))


def test_kept_entries_are_scaled_and_the_rest_zero(rng):
    x = rng.normal(size=(50, 40))
    out = F.dropout(x, 0.25, seed=1)
    kept = dropout_mask(50, 40, 0.25, 1)
    np.testing.assert_array_equal(out[kept], x[kept] * (1 / 0.75))
    np.testing.assert_array_equal(out[~kept], 0.0)
    np.testing.assert_array_equal(F.dropout(x, 0.0, seed=1), x)      # rate 0: identity


def test_the_mask_does_not_depend_on_threads_or_on_how_rows_are_cut(rng):
    x = rng.normal(size=(4096, 16))          # 2**16 elements: the parallel path
    whole = F.dropout(x, 0.3, 7, 5, n_threads=1)
    np.testing.assert_array_equal(F.dropout(x, 0.3, 7, 5, n_threads=2), whole)
    parts = [F.dropout(x[a:b], 0.3, 7, 5, row0=a) for a, b in [(0, 1000), (1000, 4096)]]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_masks_differ_across_seeds_steps_rows_and_columns():
    rate = 0.5
    base = dropout_mask(200, 200, rate, 0, 0)
    for other in (dropout_mask(200, 200, rate, 1, 0), dropout_mask(200, 200, rate, 0, 1),
                  dropout_mask(200, 200, rate, 0, 0, row0=1)):
        agree = np.mean(base == other)
        # independent masks agree on (1-p)^2 + p^2 = 1/2 of the entries; 5 sigma
        assert abs(agree - 0.5) < 5 * np.sqrt(0.25 / base.size)
    # neighbouring columns and rows are uncorrelated
    for a, b in ((base[:, :-1], base[:, 1:]), (base[:-1], base[1:])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(a.size)


@pytest.mark.parametrize("rate", [0.01, 0.2, 0.5, 0.8, 0.99])
def test_kept_fraction_is_one_minus_rate(rate):
    n = 1000 * 1000
    kept = dropout_mask(1000, 1000, rate, seed=42).mean()
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(kept - (1 - rate)) < 5 * sigma
    # the mean output is the input (inverted dropout), to the same precision
    out = F.dropout(np.ones((1000, 1000)), rate, seed=42)
    assert abs(out.mean() - 1) < 5 * sigma / (1 - rate)


def test_vjp_is_the_derivative(rng):
    x = rng.normal(size=(20, 6))
    g = rng.normal(size=(20, 6))
    # dropout is linear in x: sum(g * dropout(x + e_ij)) - sum(g * dropout(x)) = vjp_ij
    vjp = F.dropout_vjp(x, g, 0.4, 3, 2)
    f0 = np.sum(g * F.dropout(x, 0.4, 3, 2))
    for i, j in [(0, 0), (5, 3), (19, 5)]:
        e = np.zeros_like(x)
        e[i, j] = 1.0
        assert np.sum(g * F.dropout(x + e, 0.4, 3, 2)) - f0 == pytest.approx(vjp[i, j],
                                                                             abs=1e-12)


def test_nan_and_inf_propagate_through_dropped_entries():
    x = np.array([[np.nan, np.inf, -np.inf, 1.0] * 8])
    out = F.dropout(x, 0.5, seed=0)
    kept = dropout_mask(1, 32, 0.5, 0)[0]
    assert np.isnan(out[0, ~kept & ~np.isfinite(x[0])]).all()        # inf * 0 = NaN
    assert np.isnan(out[0, np.isnan(x[0])]).all()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rate=1.0), ValueError, "rate"),
    (dict(rate=-0.1), ValueError, "rate"),
    (dict(rate=float("nan")), ValueError, "rate"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(step=-3), ValueError, "step"),
    (dict(row0=2**70), ValueError, "row0"),
], ids=["rate-1", "rate-negative", "rate-nan", "seed-negative", "seed-too-big",
        "seed-float", "step-negative", "row0-too-big"])
def test_bad_arguments_are_named(kwargs, error, match):
    args = dict(rate=0.5, seed=0, step=0, row0=0)
    args.update(kwargs)
    for fn in (F.dropout, R.dropout):
        with pytest.raises(error, match=match):
            fn(np.ones((2, 2)), args["rate"], args["seed"], args["step"],
               row0=args["row0"])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="shape"):
        F.dropout_vjp(np.ones((2, 3)), np.ones((3, 2)), 0.5, 0)
    with pytest.raises(ValueError, match="at least one entry"):
        F.dropout(np.ones((2, 0)), 0.5, 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(5, 6), (2, 3, 4)], ids=str)
def test_arrays_the_kernel_cannot_read_as_is_are_converted_first(dtype, shape, rng):
    x = rng.normal(size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    want_y, want_g = F.dropout(x, 0.3, 5, 2), F.dropout_vjp(x, g, 0.3, 5, 2)
    for xx, gg in zip(layouts_of(x), layouts_of(g)):
        assert not aligned.flat_float(xx)
        np.testing.assert_array_equal(F.dropout(xx, 0.3, 5, 2), want_y, strict=True)
        np.testing.assert_array_equal(F.dropout_vjp(xx, gg, 0.3, 5, 2), want_g, strict=True)


def test_kernel_entry_point_checks_dtype_layout_shape_and_writeability():
    from nnlib._kernels import dropout as k
    x = np.ones((3, 4))
    with pytest.raises(TypeError, match="dtype of the first array"):
        k.dropout_apply(x, np.empty((3, 4), np.float32), 0.5, 1, 0, 0, 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.dropout_apply(np.ones((3, 8))[:, ::2], np.empty((3, 4)), 0.5, 1, 0, 0, 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.dropout_apply(unaligned_copy(x), np.empty((3, 4)), 0.5, 1, 0, 0, 1)
    with pytest.raises(TypeError, match="C-contiguous, aligned float32 or float64"):
        k.dropout_apply(np.ones((3, 4), np.int32), np.empty((3, 4)), 0.5, 1, 0, 0, 1)
    ro = np.empty((3, 4))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        k.dropout_apply(x, ro, 0.5, 1, 0, 0, 1)
    with pytest.raises(ValueError, match="at least one dimension"):
        k.dropout_apply(np.ones(()), np.empty(()), 0.5, 1, 0, 0, 1)
    with pytest.raises(TypeError):
        k.dropout_apply(x, None, 0.5, 1, 0, 0, 1)
    # any ndim >= 1: the rows of the last axis, row i of the mask for the i-th
    z = np.arange(1.0, 25.0).reshape(2, 3, 4)
    out, out2 = np.empty_like(z), np.empty((6, 4))
    k.dropout_apply(z, out, 0.5, 9, 1, 3, 1)
    k.dropout_apply(z.reshape(6, 4), out2, 0.5, 9, 1, 3, 1)
    np.testing.assert_array_equal(out.reshape(6, 4), out2)


@pytest.mark.parametrize("rate", [1.0, -0.25, 1.5, np.nan, np.inf, -np.inf])
def test_kernel_entry_point_refuses_a_rate_outside_0_1(rate):
    # the wrapper checks the rate, and so does the kernel, which scales by 1 / (1 - rate)
    # and turns the rate into an integer threshold (a NaN's is undefined in C)
    from nnlib._kernels import dropout as k
    x, out = np.ones((3, 4)), np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"dropout_apply: rate must be in \[0, 1\); got "):
        k.dropout_apply(x, out, rate, 1, 0, 0, 1)
    assert not out.any()                           # refused before any write
    with pytest.raises(ValueError, match=r"dropout_threshold: rate must be in \[0, 1\)"):
        k.dropout_threshold(rate)
    k.dropout_apply(x, out, 0.0, 1, 0, 0, 1)       # the ends of the range that are in it
    np.testing.assert_array_equal(out, x)
    assert k.dropout_threshold(0.0) == 0
