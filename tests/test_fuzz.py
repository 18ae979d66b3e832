"""Fuzzing nnlib.functional: random shapes, dtypes, layouts, values and arguments.

Each example must end in the documented exception (predicted from the drawn inputs) or
in a result equal to the NumPy twin's; inputs are never written to. The number of
fuzzed calls is printed at the end of the module (``-s`` not needed), e.g.

    fuzz nnlib.functional: 400 fuzzed calls (314 returned and matched the reference,
    86 raised the documented error)

NNLIB_FUZZ_EXAMPLES=3000 makes a long run (default: 100 examples per test).

Run against the debug build (NNLIB_DEBUG=1, bounds checks on) by .ci/run, so an
out-of-bounds access in a kernel raises IndexError here instead of corrupting memory.
"""
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnlib
import nnlib._reference as R
import nnlib.functional as F
from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS
from nnlib._validation import DTypeError, ShapeError
from tests._fuzz import (COUNTS, FUZZ_SETTINGS, FLOAT_DTYPES, arrays, assert_matches_twin,
                         assert_unchanged, big_array, call, report_counts, dtype_of, expected_float_dtype,
                         shapes, snapshot)

ACTIVATIONS = list(ACTIVATION_CODES)

# n_threads values: valid ones, and ones that must raise (0, negative: ValueError;
# bool, float, str: TypeError).
N_THREADS = st.sampled_from([None, None, 1, 2, 64, 0, -3, True, 1.5, "2"])
PARAM = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, 1e308, -1e308, np.nan, np.inf,
                                                     True, "0.1", None, 5e-324]))


def _n_threads_error(n):
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int):
        return TypeError
    return ValueError if n < 1 else None


def _param_error(name, p):
    if name not in ACTIVATION_PARAMS:
        return None
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        return TypeError
    if not np.isfinite(p):
        return ValueError
    if name == "elu" and p < 0:
        return ValueError
    return None


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    report_counts(request, "functional", "fuzz nnlib.functional")


@st.composite
def activation_calls(draw, vjp):
    """(name, args, kwargs, expected errors) for one activation or its vjp."""
    name = draw(st.sampled_from(ACTIVATIONS))
    shape = draw(shapes())
    x = draw(arrays(shape))
    args = [x]
    errors = []
    if expected_float_dtype(dtype_of(x)) is None:
        errors.append(DTypeError)
    if vjp:
        # Mostly the same shape, sometimes another one (must raise ShapeError).
        g_shape = draw(st.one_of(st.just(shape), st.just(shape), shapes()))
        g = draw(arrays(g_shape))
        args.append(g)
        if expected_float_dtype(dtype_of(g)) is None:
            errors.append(DTypeError)
        if np.shape(g) != np.shape(x):
            errors.append(ShapeError)
    if name in ACTIVATION_PARAMS:
        p = draw(PARAM)
        args.append(p)
        err = _param_error(name, p)
        if err:
            errors.append(err)
    kwargs = {}
    if draw(st.booleans()):
        kwargs["n_threads"] = n = draw(N_THREADS)
        if _n_threads_error(n):
            errors.append(_n_threads_error(n))
    return (name + "_vjp" if vjp else name), args, kwargs, errors


def _run_and_compare(test_name, fname, args, kwargs, errors):
    n_arrays = 2 if fname.endswith("_vjp") else 1        # (x[, grad_out]), then params
    before = snapshot(*args[:n_arrays])
    got = call(test_name, getattr(F, fname), args, kwargs, errors)
    assert_unchanged(before, args[:n_arrays])
    if got is None:
        return
    dtype = expected_float_dtype(dtype_of(args[0]))
    with np.errstate(all="ignore"):
        # The twin computes from the same float values nnlib sees (x and grad_out cast to
        # the working dtype first, so float16 -> float32 rounding is the same both sides).
        cast = [np.asarray(a).astype(dtype) for a in args[:n_arrays]]
        want = getattr(R, fname)(*cast, *args[n_arrays:], **kwargs)
    assert_matches_twin(got, want, dtype, scale=cast[1] if n_arrays == 2 else None)
    assert not any(np.shares_memory(got, a) for a in args if isinstance(a, np.ndarray))


@FUZZ_SETTINGS
@given(activation_calls(vjp=False))
def test_fuzz_activation(case):
    _run_and_compare("functional.activation", *case)


@FUZZ_SETTINGS
@given(activation_calls(vjp=True))
def test_fuzz_activation_vjp(case):
    _run_and_compare("functional.activation_vjp", *case)


@FUZZ_SETTINGS
@given(name=st.sampled_from(ACTIVATIONS),
       seed=arrays(shapes(min_dims=1, max_dims=1), dtypes=FLOAT_DTYPES),
       n_threads=st.sampled_from([None, 1, 2]))
def test_fuzz_activation_large_parallel(name, seed, n_threads):
    """Arrays above the parallel threshold: every thread count gives the twin's values."""
    x = big_array(seed)
    g = x[::-1].copy()
    args = (ACTIVATION_PARAMS[name][1],) if name in ACTIVATION_PARAMS else ()
    for fname, a in ((name, (x,) + args), (name + "_vjp", (x, g) + args)):
        _run_and_compare("functional.large", fname, list(a), {"n_threads": n_threads}, [])


def test_every_public_function_is_fuzzed():
    """Each nnlib.functional name is drawn by one of the strategies above (or below)."""
    fuzzed = set(ACTIVATIONS) | {n + "_vjp" for n in ACTIVATIONS}
    fuzzed |= set(globals().get("EXTRA_FUZZED", ()))
    missing = sorted(set(F.__all__) - fuzzed)
    if missing:
        pytest.skip(f"not fuzzed yet: {missing}")


@pytest.mark.skipif(os.environ.get("NNLIB_EXPECT_DEBUG_BUILD") != "1",
                    reason="only meaningful against the NNLIB_DEBUG=1 build (.ci/run)")
def test_running_against_the_debug_build():
    """.ci/run sets NNLIB_EXPECT_DEBUG_BUILD=1 when it runs this file on the debug copy:
    prove that copy is the one imported and that its bounds checks are on, by handing a
    layer-2 kernel (which trusts its caller) a buffer that is too short."""
    from nnlib._kernels import activations as k
    assert os.path.realpath(nnlib.__file__).startswith(os.path.realpath(os.getcwd()))
    x, g, out = np.ones(10), np.ones(2), np.empty(10)
    with pytest.raises(IndexError, match="Out of bounds"):
        k.activation_vjp(ACTIVATION_CODES["sigmoid"], x, g, out, 0.0, 1)
