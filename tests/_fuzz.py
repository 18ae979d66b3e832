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

The models-and-estimators section (at the end) serves the suites of the model layer
(tests/test_fuzz_{layers,sequential,fit,estimators,linear}.py). Each of their examples
draws arguments, data and hyperparameters, some of them invalid, and accepts exactly two
outcomes: the documented exception, predicted from the drawn arguments (a
ValueError/TypeError subclass whose message names the offending argument:
``call_expecting``), or a well-formed result. Inputs are never written to. The heavier
tests run a fraction of the examples (``fraction_settings``) so that each suite stays
within a minute on a loaded 2-core machine.

``NNLIB_FUZZ_EXAMPLES`` scales ``max_examples`` (default 100 per test) for a longer run.
"""
import collections
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlib
from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS, LOSS_CODES
from nnlib._validation import DTypeError, LabelError, NonFiniteError, ShapeError
from nnlib.layers import INITIALIZERS

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
# the other byte order ('>f8' on a little-endian machine): computed in native order
FLOAT_DTYPES += [d.newbyteorder("S") for d in FLOAT_DTYPES[1:]]
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
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return dtype.newbyteorder("=")
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return None


def _values(dtype, shape):
    """An array of ``dtype`` and ``shape`` with hypothesis's edge values mixed in."""
    if dtype.kind == "f":
        elements = hnp.from_dtype(dtype)
        if dtype.newbyteorder("=") == np.float64:
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
    # a finite result from a non-finite grad_out (sign's vjp is the zero map) gets no slack
    scale = np.broadcast_to(np.abs(scale), got.shape)[fin]
    slack = 8 * np.finfo(dtype).eps * np.where(np.isfinite(scale), scale, 0)
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
    """Print '<what>: N examples (...)' for the COUNTS keys starting with ``prefix`` (a
    string or a tuple of them), past pytest's output capture (call from a module-scoped
    fixture's teardown)."""
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


# ------------------------------------------------------------------ models and estimators
# Shared by tests/test_fuzz_{layers,sequential,fit,estimators,linear}.py: what each drawn
# argument must make a model or estimator raise, and strategies for models and data.

ACTIVATIONS = list(ACTIVATION_CODES)
LOSSES = list(LOSS_CODES)
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
EPS = {F32: float(np.finfo(np.float32).eps), F64: float(np.finfo(np.float64).eps)}
F32_MAX = float(np.finfo(np.float32).max)
UNIT = st.floats(0, 0.99)


def fraction_settings(fraction):
    """FUZZ_SETTINGS with ``fraction`` of its examples (at least 5)."""
    return settings(FUZZ_SETTINGS, max_examples=max(5, int(MAX_EXAMPLES * fraction)))


def chance(draw, p):
    """True with probability about ``p``. (Not ``floats(0, 1) < p`` or ``integers() ==
    0``: hypothesis draws its simplest value, the lower bound, far more often than its
    share, which made nearly every example take the error branch. Here the simplest
    value is False.)"""
    if p <= 0:
        return False
    k = max(1, round(1 / p))
    return draw(st.sampled_from([False] * (k - 1) + [True]))


def call_expecting(test_name, fn, args=(), kwargs=None, expected=(), allowed=()):
    """Call ``fn``; return (True, result) or (False, None) when it raised an expected error.

    ``expected``: (exception class, regex) pairs. A raised ValueError/TypeError must be an
    instance of one of the classes AND its message must match that pair's regex
    (case-insensitive): the message names what is wrong. Anything else fails the example,
    as does returning when an error is expected. ``allowed``: pairs that may be raised
    but need not be (a documented outcome the test cannot predict, e.g. divergence)."""
    kwargs = kwargs or {}
    try:
        out = fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        assert expected or allowed, f"{_name(fn)} raised {type(e).__name__}: {e} on valid input"
        ok = [(c, p) for c, p in list(expected) + list(allowed)
              if isinstance(e, c) and re.search(p, str(e), re.IGNORECASE | re.DOTALL)]
        assert ok, (f"{_name(fn)} raised {type(e).__name__}: {e!s}; expected one of "
                    f"{[(c.__name__, p) for c, p in list(expected) + list(allowed)]}")
        COUNTS["models." + test_name]["raised"] += 1
        return False, None
    assert not expected, (f"{_name(fn)} returned instead of raising one of "
                          f"{[(getattr(c, '__name__', c), p) for c, p in expected]}")
    COUNTS["models." + test_name]["returned"] += 1
    return True, out


def fit_quietly(name, est, X, y, expected, allowed):
    """``est.fit(X, y)`` through ``call_expecting`` (counted as ``<name>.fit``), warnings
    silenced; X and y must come back unchanged. True when the fit returned."""
    before = snapshot(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, _ = call_expecting(f"{name}.fit", est.fit, (X, y), {}, expected, allowed)
    assert_unchanged(before, [X, y])
    return ok


def _name(fn):
    return getattr(fn, "__qualname__", repr(fn))


def scalar_errors(value, name, *, integer=False, low=None, high=None, low_open=False,
                  high_open=False):
    """The error check_real_scalar / check_int_scalar must raise for ``value``."""
    if integer:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            return [(TypeError, name)]
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        return [(TypeError, name)]
    v = float(value)
    if not np.isfinite(v):
        return [(ValueError, name)]
    if low is not None and (v < low or (low_open and v == low)):
        return [(ValueError, name)]
    if high is not None and (v > high or (high_open and v == high)):
        return [(ValueError, name)]
    return []


# Values for a scalar argument: mostly valid ones from ``valid``, sometimes anything.
WILD = st.sampled_from([-1, 0, -0.5, 1.5, np.nan, np.inf, -np.inf, 1e308, True, None, "1",
                        2 ** 63, 1j])


def range_errors(value, name, dtype):
    """DTypeRangeError (a ValueError) for a valid float beyond float32's range when the
    model computes in float32 (it would become inf in the kernels)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return []
    if dt == F32 and isinstance(value, (int, float)) and abs(value) > F32_MAX:
        return [(ValueError, f"{name}.*beyond the range of float32")]
    return []


def one_bad(draw, valid, bad, p_bad=0.25):
    """Keyword arguments drawn from ``valid``; with probability ``p_bad`` one of them
    replaced by a draw from ``bad`` (so each error is tried alone, not masked by others)."""
    kw = {k: draw(v) for k, v in valid.items()}
    if chance(draw, p_bad):
        key = draw(st.sampled_from(sorted(bad)))
        kw[key] = draw(bad[key])
    return kw


def threads_errors(n):
    if n is None:
        return []
    return scalar_errors(n, "n_threads", integer=True, low=1)


@st.composite
def models(draw, dtype=None, n_in=None, n_out=None, acts=None, wild_weights=True,
           inits=tuple(INITIALIZERS)):
    """A valid Sequential of 1-3 layers (widths 1-4), random activations, parameters,
    initializers and dtype; sometimes with weights overwritten by drawn values (edge values
    included: the arrays are live, users may write anything into them)."""
    dtype = np.dtype(dtype or draw(st.sampled_from([F32, F64])))
    depth = draw(st.integers(1, 3))
    sizes = ([n_in or draw(st.integers(1, 4))] + [draw(st.integers(1, 4))
                                                  for _ in range(depth - 1)]
             + [draw(n_out) if isinstance(n_out, st.SearchStrategy)
                else n_out or draw(st.integers(1, 4))])
    layers = []
    for i in range(depth):
        act = draw(st.sampled_from(acts or ACTIVATIONS))
        param = (draw(st.one_of(st.none(), st.floats(0, 3)))
                 if act in ACTIVATION_PARAMS else None)
        layers.append(nnlib.Dense(sizes[i], sizes[i + 1], act, activation_param=param,
                                  init=draw(st.sampled_from(list(inits))),
                                  dtype=dtype, random_state=draw(st.integers(0, 2 ** 32))))
    if wild_weights and chance(draw, 0.25):
        for layer in layers:
            layer.W[...] = draw(hnp.arrays(dtype, layer.W.shape,
                                           elements=hnp.from_dtype(dtype)))
            layer.b[...] = draw(hnp.arrays(dtype, layer.b.shape,
                                           elements=hnp.from_dtype(dtype)))
    return nnlib.Sequential(layers)


def outputs_for(loss):
    """Output widths that suit ``loss`` (and, one time in eight, any width)."""
    fit = {"logistic_loss": st.sampled_from([1, 1, 2, 3]), "squared_error": st.integers(1, 3),
           "hinge_loss": st.integers(1, 3),
           "poisson_loss": st.integers(1, 3)}.get(loss, st.integers(2, 3))
    return st.one_of(*([fit] * 7), st.integers(1, 3))


def x_for(draw, n_in, n=None, bad_shape_p=0.2, dtypes=ALL_DTYPES):
    """An X for a model with ``n_in`` inputs: mostly (n, n_in), sometimes another shape."""
    n = draw(st.integers(0, 5)) if n is None else n
    shape = (n, n_in)
    if chance(draw, bad_shape_p):
        shape = draw(st.sampled_from([(n,), (n, n_in + 1), (n, n_in, 1), (), (n, 0)]))
    return draw(arrays(shape, dtypes=dtypes))


def x_errors(X, n_in, name="X"):
    """What Sequential._inputs must raise for X (converted to the model's dtype)."""
    dt = dtype_of(X)
    if dt.kind not in "biuf":
        return [(DTypeError, name)]
    shape = np.shape(X)
    if len(shape) != 2:
        return [(ShapeError, name)]
    if shape[1] != n_in:
        return [(ShapeError, f"{name} has {shape[1]} features")]
    return []


def y_for(draw, loss, n, c, bad_p=0.2, dtype=F64):
    """Targets for ``loss`` with n rows and c outputs; sometimes wrong (dtype, shape,
    range, NaN). Returns (y, expected errors). ``dtype``: the model's (squared_error's
    targets are converted to it: 1e308 is inf in float32)."""
    bad = chance(draw, bad_p)
    if loss in ("squared_error", "poisson_loss"):
        shape = (n, c) if not bad else draw(st.sampled_from([(n,), (n, c + 1), (n + 1, c)]))
        y = draw(arrays(shape, dtypes=FLOAT_DTYPES * 3 + INT_DTYPES + ([np.dtype(bool)] + BAD_DTYPES
                                                                       if bad else [])))
        shp, dt = np.shape(y), dtype_of(y)
        if dt.kind not in "biuf":
            return y, [(DTypeError, "y")]
        # Every problem is listed: fit's validation_split slices y before checking it,
        # which can hide a wrong length behind a value error.
        errs = []
        if shp != (n, c) and not (shp == (n,) and c == 1):
            errs.append((ShapeError, "y must have shape"))
        if not np.isfinite(np.asarray(y).astype(dtype)).all():
            errs.append((NonFiniteError, "y"))
        if loss == "poisson_loss" and (np.asarray(y).astype(dtype) < 0).any():
            errs.append((LabelError, "targets >= 0"))
        return y, errs
    if loss == "logistic_loss":
        # one output: (n,) or (n, 1); c outputs (multilabel): (n, c)
        shape = (n,) if c == 1 else (n, c)
        if not bad:
            y = draw(hnp.arrays(draw(st.sampled_from([np.int64, np.float64, bool, np.float32])),
                                shape, elements=st.sampled_from([0, 1])))
            return y, []
        y = draw(arrays(draw(st.sampled_from([shape, (n, 1), (n, c + 1), (n + 1,)]))))
    else:
        if not bad:
            y = draw(hnp.arrays(draw(st.sampled_from([np.int64, np.int32, np.uint8,
                                                      np.float64])), (n,),
                                elements=st.integers(0, c - 1)))
            return y, []
        y = draw(st.one_of(arrays(draw(st.sampled_from([(n,), (n, c), (n + 1,)]))),
                           hnp.arrays(np.int64, (n,), elements=st.integers(-2, c + 2))))
    arr = np.asarray(y)
    ok_shapes = [(n,)] if loss != "logistic_loss" else \
        [(n,), (n, 1)] if c == 1 else [(n, c)]
    if arr.dtype.kind not in "biuf":
        return y, [(DTypeError, "y")] + ([(ShapeError, "y must have shape")]
                                         if arr.shape not in ok_shapes else [])
    errs = []
    if loss == "logistic_loss":
        if arr.shape not in (((n,), (n, 1)) if c == 1 else ((n, c),)):
            errs.append((ShapeError, "y must have shape"))
        flat = arr.reshape(-1)
        if not ((flat == 0) | (flat == 1)).all():
            errs.append((LabelError, r"y(\.ravel\(\))?\[\d+\]"))
        return y, errs
    if arr.shape != (n,):
        errs.append((ShapeError, "y must have shape"))
    with np.errstate(invalid="ignore"):
        okv = np.isfinite(arr) & (arr == np.floor(arr)) & (arr >= 0) & (arr < c) \
            if arr.dtype.kind == "f" else (arr >= 0) & (arr < c)
    if not okv.all():
        errs.append((LabelError, r"y\[\d+\]"))
    return y, errs


def loss_model_errors(loss, c):
    if loss in ("softmax_cross_entropy", "sparsemax_loss") and c < 2:
        return [(ShapeError, ">= 2 units")]
    return []


def data_x(draw, n_in, n, p_wild=0.3, bad_shape_p=0.1):
    """X for fit/estimators: mostly moderate floats (so that training happens), else the
    wild arrays of tests/_fuzz.py (any dtype, edge values, layouts)."""
    if chance(draw, p_wild):
        return x_for(draw, n_in, n, bad_shape_p=bad_shape_p,
                     dtypes=FLOAT_DTYPES * 4 + ALL_DTYPES)
    dt = draw(st.sampled_from(FLOAT_DTYPES + [np.dtype(np.int64), np.dtype(bool)]))
    elements = st.floats(-5, 5, width=16 if dt == np.float16 else 32) if dt.kind == "f" else None
    X = draw(hnp.arrays(dt, (n, n_in), elements=elements))
    return with_layout(X, draw(st.sampled_from(LAYOUTS)))


def class_labels(draw, n):
    """Class labels for n samples: (y, expected errors, multilabel?)."""
    valid = ["int", "str", "float", "bool", "object", "column", "multilabel"]
    kind = draw(st.sampled_from(valid)) if not chance(draw, 0.25) else draw(
        st.sampled_from(["noninteger", "nonfinite", "mixed", "bad-multilabel", "length"]))
    k = draw(st.sampled_from([2, 2, 3, 3, 1]))
    # shifted by the row number: hypothesis's favourite all-zero draw still has k classes
    idx = (draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1))) + np.arange(n)) % k
    errs = []
    if kind in ("int", "column", "length"):
        y = idx * 7 - 3
        if kind == "column":
            y = y.reshape(-1, 1)
        if kind == "length":
            y = np.concatenate([y, [0]])
            errs.append((ShapeError, "inconsistent numbers of samples"))
    elif kind == "str":
        y = np.array(["cat", "dog", "emu"])[idx]
    elif kind == "float":
        y = idx.astype(np.float64) + 0.0
    elif kind == "bool":
        y = idx % 2 == 1
    elif kind == "object":
        y = np.array([["a", "bb", "c"][i] for i in idx], dtype=object)
    elif kind == "noninteger":
        y = idx + 0.5
        errs.append((LabelError, "continuous"))
    elif kind == "nonfinite":
        y = idx.astype(np.float64)
        y[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf]))
        errs.append((NonFiniteError, "y"))
    elif kind == "mixed":
        y = np.array([1, "a"] * n, dtype=object)[:n]
        # one row holds the integer alone: an object array of integers, refused as
        # scikit-learn refuses it ("Unknown label type"), before the count of classes
        errs.append((LabelError, "one kind" if n > 1 else "object array of integers"))
    if kind in ("multilabel", "bad-multilabel"):
        L = draw(st.integers(2, 3))
        y = draw(hnp.arrays(np.int64, (n, L), elements=st.integers(0, 1)))
        if kind == "bad-multilabel":
            y[0, 0] = 2
            errs.append((LabelError, "indicator"))
        return y, errs, True
    y_flat = np.asarray(y).reshape(-1) if kind != "length" else None
    if not errs and len(np.unique(y_flat)) < 2:
        errs.append((LabelError, "at least 2 classes|only one class"))
    return y, errs, False


def x_dtype(X):
    """The dtype check_X gives X: float32 stays (in either byte order: ``>f4`` is not
    ``== np.float32``), everything else becomes float64."""
    d = dtype_of(X)
    return np.float32 if d.kind == "f" and d.itemsize == 4 else np.float64


def check_x_errors(X, n_features=None):
    """What nnlib._inputs.check_X must raise (scikit-learn's messages)."""
    arr = np.asarray(X)
    if arr.dtype.kind in "cUSVMmO" and arr.dtype.kind != "O":
        return [(DTypeError, "X|Complex")]
    if arr.ndim != 2:
        return [(ShapeError, "Expected 2D array")]
    if arr.shape[0] == 0:
        return [(ShapeError, "0 sample")]
    if arr.shape[1] == 0:
        return [(ShapeError, "0 feature")]
    if n_features is not None and arr.shape[1] != n_features:
        return [(ShapeError, f"X has {arr.shape[1]} features")]
    vals = arr.astype(np.float64) if arr.dtype != np.float32 else arr
    if not np.isfinite(vals).all():
        return [(NonFiniteError, "X contains")]
    return []


def overflow_allowed(X, weights, biases, dtype=np.float64):
    """[the documented NonFiniteError of predict] if the products may overflow ``dtype``:
    the magnitude chain |X| |W1| + |b1| ... (activations here are 1-Lipschitz or
    bounded) gets within a factor 1e4 of the largest float; else []."""
    try:
        S = np.abs(np.asarray(X, dtype=np.float64))
    except (TypeError, ValueError):
        return []
    if S.ndim != 2 or not np.isfinite(S).all() or S.shape[1] != np.shape(weights[0])[0]:
        return []
    with np.errstate(all="ignore"):
        for W, b in zip(weights, biases):
            S = S @ np.abs(np.asarray(W, dtype=np.float64)).reshape(S.shape[1], -1) \
                + np.abs(np.asarray(b, dtype=np.float64))
            S = np.maximum(S, 1.0)       # bounded activations (sigmoid) still output <= 1
    if S.size and not (S.max() < np.finfo(dtype).max / 1e4):
        return [(NonFiniteError, "output for row .* not finite")]
    return []


def reg_targets(draw, n):
    kind = draw(st.sampled_from(["1d", "1d", "2d", "column", "int", "str", "nonfinite",
                                 "complex", "length", "3d"]))
    k = draw(st.integers(2, 3))
    y = draw(hnp.arrays(np.float64, (n, k) if kind == "2d" else (n,),
                        elements=st.floats(-10, 10)))
    if kind == "column":
        y = y.reshape(-1, 1)
    elif kind == "int":
        y = np.round(y).astype(np.int32)
    elif kind == "str":
        y = y.astype("U8")
    elif kind == "nonfinite":
        y[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return y, [(NonFiniteError, "y")]
    elif kind == "complex":
        return y + 1j, [(DTypeError, "Complex")]
    elif kind == "length":
        return np.append(y, 1.0), [(ShapeError, "inconsistent numbers of samples")]
    elif kind == "3d":
        return y.reshape(n, 1, 1), [(ShapeError, "shape")]
    return y, []


def model_counts_reporter(prefixes, what):
    """A module-scoped autouse fixture that prints, at the end of the module, the outcome
    counts of the ``call_expecting`` names starting with one of ``prefixes`` (with -v,
    name by name). Assign it to a module-level name of the test module."""
    keys = tuple("models." + p for p in prefixes)

    @pytest.fixture(scope="module", autouse=True)
    def _report_counts(request):
        yield
        report_counts(request, keys, what)
        if request.config.getoption("verbose") > 0:
            for name in sorted(k for k in COUNTS if k.startswith(keys)):
                print(f"  {name[len('models.'):]}: {dict(COUNTS[name])}")

    return _report_counts


__all__ = ["report_counts", "FUZZ_SETTINGS", "COUNTS", "DTypeError", "arrays", "shapes",
           "with_layout", "big_array", "expected_float_dtype", "is_refused_dtype",
           "snapshot", "assert_unchanged", "assert_matches_twin", "call", "dtype_of",
           "LAYOUTS", "FLOAT_DTYPES", "INT_DTYPES", "BAD_DTYPES", "ALL_DTYPES", "TOL",
           "ACTIVATIONS", "LOSSES", "F32", "F64", "EPS", "F32_MAX", "UNIT", "WILD",
           "fraction_settings", "chance", "call_expecting", "scalar_errors",
           "range_errors", "one_bad", "threads_errors", "models", "outputs_for", "x_for",
           "x_errors", "y_for", "loss_model_errors", "data_x", "class_labels", "x_dtype",
           "check_x_errors", "overflow_allowed", "fit_quietly", "reg_targets",
           "model_counts_reporter", "MAX_EXAMPLES"]
