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
from hypothesis.extra import numpy as hnp

import nnlib
import nnlib._reference as R
import nnlib.functional as F
from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS
from nnlib._validation import (DTypeError, DTypeRangeError, LabelError, NonFiniteError,
                               ShapeError)
from tests._fuzz import (ALL_DTYPES, COUNTS, FUZZ_SETTINGS, FLOAT_DTYPES, arrays, assert_matches_twin,
                         assert_unchanged, big_array, call, report_counts, dtype_of, expected_float_dtype,
                         shapes, snapshot)

# Random values overflow in the oracles' own arithmetic and in float casts; that is
# expected here and not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

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


def _draw_n_threads(draw, errors):
    """{} or {"n_threads": n}; appends the error a bad n must raise to ``errors``."""
    if not draw(st.booleans()):
        return {}
    n = draw(N_THREADS)
    if _n_threads_error(n):
        errors.append(_n_threads_error(n))
    return {"n_threads": n}


def _param_error(name, p, dtype=None):
    """The error an activation parameter ``p`` must raise with data of ``dtype``."""
    if name not in ACTIVATION_PARAMS:
        return None
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        return TypeError
    if not np.isfinite(p):
        return ValueError
    if name == "elu" and p < 0:
        return ValueError
    if dtype is not None and abs(p) > np.finfo(dtype).max:
        # beyond the dtype's range (slope 1e308 on float32): it would be inf in the
        # kernel, so it is refused, naming the parameter and the dtype's max
        return DTypeRangeError
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
        err = _param_error(name, p, expected_float_dtype(dtype_of(x)))
        if err:
            errors.append(err)
    kwargs = _draw_n_threads(draw, errors)
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


# --- output maps: softmax, log_softmax, sparsemax and their vjps over the last axis ---

OUTPUT_MAPS = ["softmax", "log_softmax", "sparsemax"]


@st.composite
def output_map_calls(draw, vjp):
    name = draw(st.sampled_from(OUTPUT_MAPS))
    x = draw(arrays(draw(shapes(min_dims=0, max_dims=3))))
    shape = np.shape(x)            # (layouts may change it: a list, np.asfortranarray)
    args, errors = [x], []
    if expected_float_dtype(dtype_of(x)) is None:
        errors.append(DTypeError)
    if len(shape) == 0 or shape[-1] == 0:           # needs a last axis with >= 1 entry
        errors.append(ShapeError)
    if vjp:
        g = draw(arrays(draw(st.one_of(st.just(shape), st.just(shape), shapes()))))
        args.append(g)
        if expected_float_dtype(dtype_of(g)) is None:
            errors.append(DTypeError)
        if np.shape(g) != shape:
            errors.append(ShapeError)
    kwargs = _draw_n_threads(draw, errors)
    return (name + "_vjp" if vjp else name), args, kwargs, errors


def _rows_finite(*arrs):
    """Per row (last axis) of the first array: True where every given array is finite."""
    ok = np.ones(np.shape(arrs[0])[:-1], dtype=bool)
    for a in arrs:
        ok &= np.isfinite(a).all(axis=-1)
    return ok


def _run_output_map(test_name, fname, args, kwargs, errors):
    n_arrays = 2 if fname.endswith("_vjp") else 1
    before = snapshot(*args)
    got = call(test_name, getattr(F, fname), args, kwargs, errors)
    assert_unchanged(before, args)
    if got is None:
        return
    dtype = expected_float_dtype(dtype_of(args[0]))
    cast = [np.asarray(a).astype(dtype) for a in args[:n_arrays]]
    assert got.dtype == dtype and got.shape == cast[0].shape
    # A row holding NaN gives a NaN row (documented); rows with inf: no promise on values.
    nan_rows = np.isnan(cast[0]).any(axis=-1)
    assert np.isnan(got[nan_rows]).all()
    ok = _rows_finite(*cast)
    x, g = cast[0][ok], (cast[1][ok] if n_arrays == 2 else None)
    with np.errstate(all="ignore"):
        want = getattr(R, fname)(*([x] if g is None else [x, g]), **kwargs)
        # Error model: exp/sort of a row shifted by its max loses ~eps * max|x| absolutely
        # (times sum|g| for a vjp); probabilities are <= 1.
        m = 1 + np.abs(x).max(axis=-1, keepdims=True, initial=0)
        scale = m if g is None else m * np.abs(g).sum(axis=-1, keepdims=True)
    if fname.startswith("softmax") or fname.startswith("sparsemax"):
        if g is None:
            assert (got[ok] >= 0).all() and (got[ok] <= 1).all()
            np.testing.assert_allclose(got[ok].astype(np.float64).sum(axis=-1), 1,
                                       rtol=0, atol=64 * np.finfo(dtype).eps)
    if not np.isfinite(scale).all():
        return       # sums of |grad_out| overflow (1e308s): the twin's 0 * inf is NaN
    if np.isfinite(want).all():
        assert np.isfinite(got[ok]).all(), "finite input must give a finite result"
    assert_matches_twin(got[ok], want, dtype, scale=scale)


@FUZZ_SETTINGS
@given(output_map_calls(vjp=False))
def test_fuzz_output_map(case):
    _run_output_map("functional.output_map", *case)


@FUZZ_SETTINGS
@given(output_map_calls(vjp=True))
def test_fuzz_output_map_vjp(case):
    _run_output_map("functional.output_map_vjp", *case)


# --- losses: name(z, y) -> mean, name_grad(z, y) -> gradient of the mean ---

LOSSES = ["softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss",
          "hinge_loss"]
CLASS_LABEL_LOSSES = {"softmax_cross_entropy", "sparsemax_loss", "hinge_loss"}


@st.composite
def labels(draw, name, z_shape):
    """(y, error or None): valid targets for loss ``name`` and z of ``z_shape`` most of
    the time, else one specific mistake."""
    n = z_shape[0] if z_shape else 0
    c = (z_shape[1] if len(z_shape) == 2 else 1) if z_shape else 0
    mistake = draw(st.sampled_from([None] * 6 + ["shape", "dtype", "value"]))
    if name == "squared_error":
        y = draw(arrays(z_shape, dtypes=FLOAT_DTYPES[1:] + [np.dtype(np.int32)],
                        layouts=["C", "F", "negative", "readonly"]))
        if mistake == "shape":
            return np.ones((n + 1,) + tuple(z_shape[1:])), ShapeError
        if mistake == "dtype":
            return y.astype(complex), DTypeError
        if not np.isfinite(y).all():
            return y, NonFiniteError
        return y, None
    if name == "logistic_loss":
        y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 1)))
        y = y.astype(draw(st.sampled_from([np.int64, np.float32, bool, np.uint8])))
    else:
        y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, max(c - 1, 0))))
        y = y.astype(draw(st.sampled_from([np.int64, np.int32, np.float64, np.uint8])))
    if mistake == "shape":
        return np.zeros((n, 2) if n != 2 else (3,), dtype=np.int64), ShapeError
    if mistake == "dtype":
        return y.astype(draw(st.sampled_from(["U3", object, complex]))), DTypeError
    if mistake == "value" and n:
        bad = draw(st.sampled_from([-1, c, c + 7, 0.5, np.nan, np.inf, 2 ** 62, -2 ** 63]))
        y = y.astype(np.float64)
        y[draw(st.integers(0, n - 1))] = bad
        if name == "logistic_loss" and bad in (0, 1):
            return y, None
        return y, LabelError
    if c == 0 or (name in CLASS_LABEL_LOSSES and n and c == 0):
        return y, None
    return y, None


@st.composite
def loss_calls(draw, grad):
    name = draw(st.sampled_from(LOSSES))
    two_d = draw(st.booleans()) or name in CLASS_LABEL_LOSSES
    c = draw(st.sampled_from([1, 1, 2, 3, 5])) if name != "logistic_loss" else 1
    n = draw(st.integers(0, 6))
    z_shape = (n, c) if two_d else (n,)
    if draw(st.integers(0, 9)) == 0:                 # wrong number of dimensions
        z_shape = draw(shapes(min_dims=0, max_dims=3))
    z = draw(arrays(z_shape))
    z_shape = np.shape(z)
    errors = []
    if expected_float_dtype(dtype_of(z)) is None:
        errors.append(DTypeError)
    ndim_ok = len(z_shape) == 2 or (len(z_shape) == 1 and name in ("squared_error",
                                                                     "logistic_loss"))
    if not ndim_ok or 0 in z_shape or (name == "logistic_loss" and len(z_shape) == 2
                                       and z_shape[1] != 1):
        errors.append(ShapeError)
    y, y_err = draw(labels(name, z_shape))
    zdt = expected_float_dtype(dtype_of(z))
    if name == "squared_error" and y_err is None and zdt is not None:
        with np.errstate(over="ignore"):           # targets are cast to z's dtype first:
            if not np.isfinite(np.asarray(y).astype(zdt)).all():   # 1e308 -> float32 inf
                y_err = NonFiniteError
    if y_err:
        errors.append(y_err)
    args = [z, y]
    if name == "hinge_loss" and draw(st.booleans()):
        margin = draw(st.one_of(st.floats(0, 3), st.sampled_from([-1.0, np.nan, "1"])))
        args.append(margin)
        if isinstance(margin, str):
            errors.append(TypeError)
        elif not (margin >= 0) or not np.isfinite(margin):
            errors.append(ValueError)
    kwargs = _draw_n_threads(draw, errors)
    return (name + "_grad" if grad else name), args, kwargs, errors


def _run_loss(test_name, fname, args, kwargs, errors):
    before = snapshot(*args[:2])
    got = call(test_name, getattr(F, fname), args, kwargs, errors)
    assert_unchanged(before, args[:2])
    if got is None:
        return
    dtype = expected_float_dtype(dtype_of(args[0]))
    z = np.asarray(args[0]).astype(dtype)
    y = np.asarray(args[1])
    with np.errstate(all="ignore"):
        want = getattr(R, fname)(z, y, *args[2:], **kwargs)
    z_finite = np.isfinite(z).all()
    if fname.endswith("_grad"):
        assert got.shape == z.shape and got.dtype == dtype
        if not z_finite:
            return
        scale = (1 + np.abs(z).max()) / z.shape[0]
        if np.isfinite(want).all():
            assert np.isfinite(got).all(), "finite input must give a finite gradient"
        assert_matches_twin(got, want, dtype, scale=scale)
        return
    assert isinstance(got, float)
    if not z_finite:
        return
    if np.isfinite(want):
        assert np.isfinite(got), "finite input must give a finite loss"
        # Sums of n terms in double (float32: the inputs are rounded, not the sums).
        slack = 64 * np.finfo(np.float64).eps * (1 + np.abs(z).max()) ** 2
        assert abs(got - want) <= 1e-9 * abs(want) + slack, (got, want)
    else:
        assert got == want, (got, want)


@FUZZ_SETTINGS
@given(loss_calls(grad=False))
def test_fuzz_loss(case):
    _run_loss("functional.loss", *case)


@FUZZ_SETTINGS
@given(loss_calls(grad=True))
def test_fuzz_loss_grad(case):
    _run_loss("functional.loss_grad", *case)


# --- the Dense layer: dense_forward, dense_backward (zero sizes included) ---

DENSE_ACTS = ACTIVATIONS + ["swish"]              # + one unknown name


def _dense_array_errors(a, name, wdt, shape, free_rows=False):
    """Errors dense_arrays must raise for array ``a`` expected to have ``shape``
    (``free_rows``: any number of rows is valid, as for the forward's X)."""
    errs = []
    dt = dtype_of(a)
    # the other byte order of W's dtype is read as its values ('>f8' with float64 W)
    if expected_float_dtype(dt) is None or (dt.kind == "f" and dt.newbyteorder("=") != wdt):
        errs.append(DTypeError)
    if np.shape(a) != shape and not (free_rows and np.ndim(a) == 2
                                     and np.shape(a)[1:] == shape[1:]):
        errs.append(ShapeError)
    return errs


@st.composite
def dense_calls(draw, backward):
    n, n_in, n_out = (draw(st.integers(0, 5)) for _ in range(3))
    act = draw(st.sampled_from(DENSE_ACTS))
    errors = []
    param = draw(st.one_of(st.none(), st.none(), st.none(), PARAM))
    if act == "swish":
        errors.append(ValueError)
    elif param is not None:
        if act not in ACTIVATION_PARAMS:
            errors.append(ValueError)
        elif _param_error("elu", param):          # both need a finite value >= 0
            errors.append(_param_error("elu", param))
    mutate = draw(st.sampled_from([None] * 4 + ["X", "W", "b", "H", "grad_H"]))

    def shape_for(name, shape):
        if mutate != name:
            return shape
        return draw(st.one_of(shapes(max_dims=3), st.just(shape[:-1] + (shape[-1] + 1,))))

    W = draw(arrays(shape_for("W", (n_in, n_out)), dtypes=FLOAT_DTYPES * 4 + ALL_DTYPES,
                    layouts=["C", "F", "negative", "readonly", "strided"]))
    wdt = expected_float_dtype(dtype_of(W))
    if wdt is None:
        errors.append(DTypeError)
    if np.ndim(W) != 2:
        errors.append(ShapeError)
    else:
        n_in, n_out = np.shape(W)
    if (param is not None and act in ACTIVATION_PARAMS and wdt is not None
            and not _param_error("elu", param)):
        err = _param_error("elu", param, wdt)
        if err:
            errors.append(err)
    float_dtypes = [wdt] if wdt is not None else FLOAT_DTYPES
    def operand(name, shape):
        dtypes = ([np.dtype(np.int32), np.dtype(bool)] + float_dtypes * 4
                  if mutate != name else ALL_DTYPES)
        a = draw(arrays(shape_for(name, shape), dtypes=dtypes))
        if wdt is not None:
            errors.extend(_dense_array_errors(a, name, wdt, shape,
                                              free_rows=name == "X" and not backward))
        return a

    X = operand("X", (n, n_in))
    if backward:
        H, G = operand("H", (n, n_out)), operand("grad_H", (n, n_out))
        args = [X, W, H, G, act, param]
    else:
        args = [X, W, operand("b", (n_out,)), act, param]
    kwargs = _draw_n_threads(draw, errors)
    return ("dense_backward" if backward else "dense_forward"), args, kwargs, errors


def _run_dense(test_name, fname, args, kwargs, errors):
    arrs = [a for a in args if not isinstance(a, (str, type(None), float, int))]
    before = snapshot(*arrs)
    got = call(test_name, getattr(F, fname), args, kwargs, errors)
    assert_unchanged(before, arrs)
    if got is None:
        return
    with np.errstate(all="ignore"):
        want = getattr(R, fname)(*args, **kwargs)
    wdt = expected_float_dtype(dtype_of(args[1]))
    f64 = [np.asarray(a, dtype=np.float64) for a in arrs]
    if not all(np.isfinite(a).all() for a in f64):
        # NaN/inf inputs: only the shapes and dtypes are promised.
        for g_, w_ in zip(got if isinstance(got, tuple) else [got],
                          want if isinstance(want, tuple) else [want]):
            assert g_.shape == w_.shape and g_.dtype == wdt
        return
    p = args[-1] if isinstance(args[-1], float) else 1.0
    amp = max(1.0, abs(p))
    # An activation parameter beyond the dtype's range (slope 1e308 on float32) raised
    # DTypeRangeError above (dense_calls expects it), so it never gets here.
    assert amp <= np.finfo(wdt).max
    if fname == "dense_forward":
        X, W, b = f64
        k = X.shape[1]
        scale = (k + 2) * amp * (np.abs(X) @ np.abs(W) + np.abs(b))
        pairs = [(got, want, scale)]
    else:
        from nnlib._reference.dense import _act_grad_from_output
        X, W, H, G = f64
        act = args[4]
        param = args[5] if args[5] is not None else ACTIVATION_PARAMS.get(act, (0, 0.0))[1]
        dZ = np.abs(G * _act_grad_from_output(act, H, param))
        fi = np.finfo(wdt)
        if not (dZ <= fi.max / (1 + 16 * fi.eps)).all():
            # dZ itself reaches the dtype's limit (an out-of-range output H times a
            # large gradient; a few roundings can carry it past): inf * 0 in dX is NaN,
            # as in NumPy; no promise beyond shapes
            assert all(g_.shape == w_.shape for g_, w_ in zip(got, want))
            return
        pairs = [(got[0], want[0], (W.shape[1] + 2) * (dZ @ np.abs(W).T)),
                 (got[1], want[1], (X.shape[0] + 2) * (np.abs(X).T @ dZ)),
                 (got[2], want[2], (X.shape[0] + 2) * dZ.sum(axis=0))]
    for g_, w_, sc in pairs:
        if not np.isfinite(w_).all() or not np.isfinite(sc).all():
            assert g_.shape == w_.shape and g_.dtype == wdt     # overflow: no promise
            continue
        assert np.isfinite(g_).all(), "finite input must give a finite result"
        assert_matches_twin(g_, w_, wdt, scale=sc)


@FUZZ_SETTINGS
@given(dense_calls(backward=False))
def test_fuzz_dense_forward(case):
    _run_dense("functional.dense_forward", *case)


@FUZZ_SETTINGS
@given(dense_calls(backward=True))
def test_fuzz_dense_backward(case):
    _run_dense("functional.dense_backward", *case)


@FUZZ_SETTINGS
@given(loss_calls(grad=True))
def test_fuzz_loss_and_grad(case):
    """loss_and_grad(name, z, y) raises as name_grad does, else returns what name and
    name_grad return (those are checked against the twins above)."""
    fname, args, kwargs, errors = case
    name = fname[:-len("_grad")]
    got = call("functional.loss_and_grad", F.loss_and_grad, [name] + list(args), kwargs,
               errors)
    if got is None:
        return
    value, grad = got
    want_value = getattr(F, name)(*args, **kwargs)
    want_grad = getattr(F, fname)(*args, **kwargs)
    assert grad.dtype == want_grad.dtype and grad.shape == want_grad.shape
    rtol = 1e-6 if grad.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(value, want_value, rtol=rtol, atol=0, equal_nan=True)
    np.testing.assert_allclose(grad, want_grad, rtol=rtol, atol=0, equal_nan=True)


EXTRA_FUZZED = (["loss_and_grad"] + [n + s for n in OUTPUT_MAPS for s in ("", "_vjp")]
                + [n + s for n in LOSSES for s in ("", "_grad")]
                + ["dense_forward", "dense_backward"])


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
    from nnlib._kernels import sparse as k
    assert os.path.realpath(nnlib.__file__).startswith(os.path.realpath(os.getcwd()))
    # the private _matmul takes out's first element without checking that out has a row
    # (sparse_matmul, its wrapper, refuses an empty X): an empty out is out of bounds
    with pytest.raises(IndexError, match="Out of bounds"):
        k._matmul(np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0),
                  np.ones((2, 3)), np.empty((0, 3)))


# --- extreme but finite values: never NaN (targeted probes, float64 and float32) ---

EXTREME = {np.float64: [1.7e308, -1.7e308, 1e308, -1e308, 1e154, -1e154, 5e-324, 0.0, 1.0],
           np.float32: [3.4e38, -3.4e38, 1e38, -1e38, 1e19, -1e19, 1e-45, 0.0, 1.0]}
EXTREME_LOSSES = ["softmax_cross_entropy", "sparsemax_loss", "hinge_loss", "squared_error",
                  "logistic_loss"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_extreme_finite_scores_never_give_nan(dtype):
    """Every loss (value and gradient), output map and vjp on rows built from the largest
    finite magnitudes, denormals and 0: the value may overflow to +inf where the exact
    loss is beyond the float range (documented), but NaN from finite input is a silently
    wrong number. (Found: sparsemax_loss of [1e308, -1e308] was NaN -- 0 * (z_j - max z)
    with z_j - max z = -inf off the support -- where the exact loss is 0.)"""
    vals = np.array(EXTREME[dtype], dtype=dtype)
    rng = np.random.default_rng(0)
    rows = [rng.choice(vals, size=(3, c)) for c in (1, 2, 3, 4) for _ in range(40)]
    rows += [np.array([[a, b]], dtype=dtype) for a in vals for b in vals]
    with np.errstate(all="ignore"):
        for z in rows:
            n, c = z.shape
            y = np.arange(n) % c
            for name in EXTREME_LOSSES:
                if name == "logistic_loss":
                    zz, yy = z[:, :1], y % 2
                elif name == "squared_error":
                    zz, yy = z, rng.choice(vals, size=z.shape)
                else:
                    zz, yy = z, y
                value, grad = F.loss_and_grad(name, zz, yy)
                assert not np.isnan(value), (name, zz, yy)
                assert np.isfinite(grad).all() or name == "squared_error", (name, zz, yy)
                assert not np.isnan(grad).any(), (name, zz, yy)
            for name in ("softmax", "log_softmax", "sparsemax"):
                assert not np.isnan(getattr(F, name)(z)).any(), (name, z)
                g = np.ones_like(z)
                assert not np.isnan(getattr(F, name + "_vjp")(z, g)).any(), (name, z)


def test_sparsemax_loss_at_the_float_range():
    z = np.array([[1e308, -1e308], [1e308, -1e308], [1e308, 1e308]])
    assert F.sparsemax_loss(z[:1], [0]) == 0.0                 # p = e_0: no loss
    assert F.sparsemax_loss(z[1:2], [1]) == np.inf             # exact 2e308 > max
    assert F.sparsemax_loss(z[2:], [0]) == 0.25                # p = (1/2, 1/2)
    assert F.sparsemax_loss(np.array([[1e308, 1e308, -1e308]]), [0]) == 0.25
    np.testing.assert_array_equal(F.sparsemax_loss_grad(z, [0, 1, 0]),
                                  [[0, 0], [1 / 3, -1 / 3], [-1 / 6, 1 / 6]])
    assert R.sparsemax_loss(z[:1], [0]) == 0.0                 # the twin agrees
