"""Hypothesis strategies and the oracle shared by the fuzz suites (tests/test_fuzz*.py).

Arrays are drawn in three independent steps so that every combination gets tried:

* a dtype: float16/32/64, integers, bool, and the dtypes that must be refused (complex,
  object, string, datetime);
* values for that dtype, with hypothesis's edge values (+-inf, NaN, denormals, +-max,
  +-0) mixed in by ``hnp.from_dtype``, plus optional huge-magnitude entries (+-1e308);
* a memory layout: C, Fortran, a strided view, negative strides, read-only, a zero-stride
  broadcast view, or a plain nested list.

The oracle (:func:`check_against_twin`) accepts exactly two outcomes: the documented
exception (a ValueError/TypeError subclass predicted from the inputs), or a result whose
shape and dtype are as documented and whose values match the NumPy twin in
``nnlib._reference`` (NaN and +-inf where the twin has them, close elsewhere). The inputs
must come back unmodified.

``NNLIB_FUZZ_EXAMPLES`` scales ``max_examples`` (default 100 per test) for a longer run.
"""
import collections
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnlib._validation import DTypeError

MAX_EXAMPLES = int(os.environ.get("NNLIB_FUZZ_EXAMPLES", "100"))

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

# Outcome counts per test, printed at the end of the session (see test_fuzz.py).
COUNTS = collections.defaultdict(collections.Counter)

FLOAT_DTYPES = [np.dtype(t) for t in (np.float16, np.float32, np.float64)]
INT_DTYPES = [np.dtype(t) for t in (np.int8, np.int32, np.int64, np.uint8, np.uint64)]
BAD_DTYPES = [np.dtype(t) for t in (np.complex64, np.complex128, object, "U3", "M8[s]")]
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES + [np.dtype(bool)] + BAD_DTYPES

LAYOUTS = ["C", "F", "strided", "negative", "readonly", "broadcast", "list"]

HUGE = [1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 2.2250738585072014e-308]

TOL = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-300),
       np.dtype(np.float32): dict(rtol=2e-6, atol=1e-37)}


def expected_float_dtype(dtype):
    """The dtype nnlib computes in for an input of ``dtype`` (nnlib._validation's rule),
    or None when the dtype must be refused with DTypeError."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return dtype
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return None


def _values(dtype, shape):
    """An array of ``dtype`` and ``shape`` with hypothesis's edge values mixed in."""
    if dtype.kind == "f":
        elements = hnp.from_dtype(dtype)
        if dtype == np.float64:
            elements = st.one_of(elements, st.sampled_from(HUGE),
                                 st.floats(-10, 10, width=64))
        return hnp.arrays(dtype, shape, elements=elements)
    if dtype.kind in "biu":
        return hnp.arrays(dtype, shape)
    # Refused dtypes: build them from finite floats (the value does not matter).
    base = hnp.arrays(np.float64, shape, elements=st.floats(-5, 5))
    if dtype.kind == "c":
        return base.map(lambda a: (a + 1j * a[::-1] if a.ndim else a + 1j).astype(dtype))
    if dtype.kind == "O":
        return base.map(lambda a: a.astype(object))
    if dtype.kind == "U":
        return base.map(lambda a: a.astype("U3"))
    return base.map(lambda a: a.astype(np.int64).astype(dtype))


def with_layout(arr, layout):
    """``arr``'s values with a different memory layout (or as a nested list)."""
    arr = np.asarray(arr)
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), dtype=arr.dtype)
        big[..., ::2] = arr
        return big[..., ::2]
    if layout == "negative" and arr.ndim:
        return np.ascontiguousarray(arr[::-1])[::-1]
    if layout == "readonly":
        arr = np.array(arr)
        arr.flags.writeable = False
        return arr
    if layout == "broadcast" and arr.ndim and arr.shape[0]:
        return np.broadcast_to(arr[:1], arr.shape)    # zero stride, read-only
    if layout == "list" and arr.dtype.kind in "fiub":
        return arr.tolist()
    return arr


@st.composite
def shapes(draw, min_dims=0, max_dims=3, max_side=6):
    """Small shapes, zero sizes included."""
    return draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0,
                                 max_side=max_side))


@st.composite
def arrays(draw, shape, dtypes=ALL_DTYPES, layouts=LAYOUTS):
    """An array of the given shape with a random dtype, values and layout."""
    dtype = draw(st.sampled_from(dtypes))
    arr = draw(_values(dtype, shape))
    return with_layout(arr, draw(st.sampled_from(layouts)))


def big_array(seed_arr, min_size=1 << 16):
    """Tile a small float array up to >= ``min_size`` elements: exercises the OpenMP path
    (n_threads=None goes parallel above 2**15 elements) without drawing huge examples."""
    flat = np.asarray(seed_arr).reshape(-1)
    if flat.size == 0:
        flat = np.zeros(1, dtype=np.asarray(seed_arr).dtype)
    reps = -(-min_size // flat.size)
    return np.tile(flat, reps)


def dtype_of(x):
    return np.asarray(x).dtype


def is_refused_dtype(x):
    return expected_float_dtype(dtype_of(x)) is None


def snapshot(*arrays_):
    """Copies of the inputs, to check afterwards that nothing was written to."""
    return [np.array(a, copy=True) for a in arrays_]


def assert_unchanged(before, after):
    for b, a in zip(before, after):
        np.testing.assert_array_equal(np.asarray(a), b, strict=True)


def assert_matches_twin(got, want, dtype, scale=None):
    """``got`` has ``dtype`` and the twin's shape; the values agree, NaN/inf included.

    ``scale`` (broadcastable to ``got``): an absolute error of a few ulps of ``scale`` is
    accepted on top of the relative tolerance. A vector-Jacobian product passes
    ``|grad_out|``: derivatives such as tanh' = 1 - tanh^2 are accurate to ~eps absolute,
    not relative (tanh'(7) differs by 1e-11 relative between libm's and NumPy's tanh).
    """
    want = np.asarray(want)
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == dtype, (got.dtype, dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    want = want.astype(dtype)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    fin = np.isfinite(want)
    if scale is None:
        np.testing.assert_allclose(got[fin], want[fin], **TOL[dtype])
        return
    tol = TOL[dtype]
    slack = 8 * np.finfo(dtype).eps * np.broadcast_to(np.abs(scale), got.shape)[fin]
    err = np.abs(got[fin].astype(np.float64) - want[fin])
    bound = tol["rtol"] * np.abs(want[fin]) + tol["atol"] + slack
    assert (err <= bound).all(), (
        f"max error {err.max()} > bound; got {got[fin][err > bound][:5]}, "
        f"want {want[fin][err > bound][:5]}")


def call(test_name, fn, args, kwargs, expected_errors):
    """Call ``fn``; return its result, or None if it raised one of ``expected_errors``.

    Any other exception (or none when one is required) fails the example. Outcomes are
    counted in COUNTS[test_name].
    """
    try:
        out = fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        assert expected_errors, f"{fn.__name__} raised {e!r} on valid input"
        assert isinstance(e, tuple(expected_errors)), (
            f"{fn.__name__} raised {type(e).__name__}: {e}; expected one of "
            f"{[t.__name__ for t in expected_errors]}")
        assert str(e), "the error message must say what is wrong"
        COUNTS[test_name]["raised"] += 1
        return None
    assert not expected_errors, (
        f"{fn.__name__} returned instead of raising one of "
        f"{[t.__name__ for t in expected_errors]}")
    COUNTS[test_name]["returned"] += 1
    return out


def report_counts(request, prefix, what):
    """Print '<what>: N examples (...)' for the COUNTS keys starting with ``prefix``, past
    pytest's output capture (call from a module-scoped fixture's teardown)."""
    totals = {k: sum(c[k] for n, c in COUNTS.items() if n.startswith(prefix))
              for k in ("returned", "raised")}
    line = (f"{what}: {sum(totals.values())} fuzzed calls ({totals['returned']} returned "
            f"and matched the reference, {totals['raised']} raised the documented error)")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capman is None:
        print(line)
        return
    with capman.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


__all__ = ["report_counts", "FUZZ_SETTINGS", "COUNTS", "DTypeError", "arrays", "shapes", "with_layout",
           "big_array", "expected_float_dtype", "is_refused_dtype", "snapshot",
           "assert_unchanged", "assert_matches_twin", "call", "dtype_of", "LAYOUTS",
           "FLOAT_DTYPES", "INT_DTYPES", "BAD_DTYPES", "ALL_DTYPES", "TOL"]
