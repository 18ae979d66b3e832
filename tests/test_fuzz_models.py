"""Fuzzing the model layer (``Dense``, ``Sequential``) and the estimators (``MLPClassifier``,
``MLPRegressor``, ``LinearRegression``, ``LogisticRegression``, ``Perceptron``,
``ThresholdNetwork``).

Each example draws constructor arguments, data (dtypes, shapes, layouts and values from
tests/_fuzz.py: +-inf, NaN, denormals, +-1e308, zero sizes) and hyperparameters, some of
them invalid, and accepts exactly two outcomes:

* the documented exception, predicted from the drawn arguments: a ValueError/TypeError
  subclass whose message names the offending argument (``_call``);
* a well-formed result: the documented shape and dtype, finite values, and -- where a
  NumPy reference exists -- the reference's values. ``Sequential.forward``/``predict``
  and ``loss_and_grads`` are compared with a chain of the ``nnlib._reference`` twins
  (forward, loss, backprop); a few epochs of ``Sequential.fit`` with ``n_threads=1`` with
  a reference trajectory built from the same twins and ``nnlib._reference.optim``;
  ``ThresholdNetwork`` with the twins of its activations. Classifiers must predict
  labels among ``classes_`` and probabilities in [0, 1] whose rows sum to 1.

A fit that diverges (huge inputs, huge learning rates) must stop as documented (a
RuntimeWarning, ``history.stop_reason == "nonfinite"``) and leave the weights of the last
finite step: replaying that many steps from the initial weights must give them bitwise.
Inputs are never written to.

Counts are printed at the end of the module. NNLIB_FUZZ_EXAMPLES scales the number of
examples (default 100, see tests/_fuzz.py); the heavier tests here run a fraction of it
(``_settings``) so that the module stays within a minute on a loaded 2-core machine.
"""
import re
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlib
import nnlib._reference as R
from nnlib import optim as O
from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS, LOSS_CODES
from nnlib._validation import DTypeError, LabelError, NonFiniteError, ShapeError
from nnlib.layers import INITIALIZERS
from tests._fuzz import (ALL_DTYPES, BAD_DTYPES, COUNTS, FLOAT_DTYPES, FUZZ_SETTINGS, INT_DTYPES,
                         LAYOUTS, MAX_EXAMPLES, arrays, assert_unchanged, dtype_of,
                         report_counts, snapshot, with_layout)

# Random values overflow in the oracles' own arithmetic and in float casts; expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ACTIVATIONS = list(ACTIVATION_CODES)
LOSSES = list(LOSS_CODES)
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
EPS = {F32: float(np.finfo(np.float32).eps), F64: float(np.finfo(np.float64).eps)}


def _settings(fraction):
    """FUZZ_SETTINGS with ``fraction`` of its examples (at least 5)."""
    return settings(FUZZ_SETTINGS, max_examples=max(5, int(MAX_EXAMPLES * fraction)))


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    report_counts(request, "models", "fuzz models and estimators")
    if request.config.getoption("verbose") > 0:         # the breakdown, with -v
        for name in sorted(k for k in COUNTS if k.startswith("models.")):
            print(f"  {name[len('models.'):]}: {dict(COUNTS[name])}")


def _chance(draw, p):
    """True with probability about ``p``. (Not ``floats(0, 1) < p`` or ``integers() ==
    0``: hypothesis draws its simplest value, the lower bound, far more often than its
    share, which made nearly every example take the error branch. Here the simplest
    value is False.)"""
    if p <= 0:
        return False
    k = max(1, round(1 / p))
    return draw(st.sampled_from([False] * (k - 1) + [True]))


# ------------------------------------------------------------------ the oracle


def _call(test_name, fn, args=(), kwargs=None, expected=(), allowed=()):
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


def _name(fn):
    return getattr(fn, "__qualname__", repr(fn))


def _scalar_errors(value, name, *, integer=False, low=None, high=None, low_open=False,
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


# ------------------------------------------------------------------ Dense / Sequential


F32_MAX = float(np.finfo(np.float32).max)


def _range_errors(value, name, dtype):
    """DTypeRangeError (a ValueError) for a valid float beyond float32's range when the
    model computes in float32 (it would become inf in the kernels)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return []
    if dt == F32 and isinstance(value, (int, float)) and abs(value) > F32_MAX:
        return [(ValueError, f"{name}.*beyond the range of float32")]
    return []


def _param_errors(act, param, dtype=F64):
    if param is None:
        return []
    if act not in ACTIVATION_PARAMS:
        return [(ValueError, "takes no parameter")]
    pname = ACTIVATION_PARAMS[act][0]
    return (_scalar_errors(param, pname, low=0.0)
            or _range_errors(param, pname, dtype))


SIZES_BAD = st.sampled_from([0, -2, True, 2.0, "3", None])
# Huge sizes only in pairs whose product no array can hold: a huge n_in with a small n_out
# would really try to allocate tens of gigabytes on a shared machine.
HUGE_SIZES = st.tuples(st.sampled_from([10 ** 10, 2 ** 62]), st.sampled_from([10 ** 10, 2 ** 62]))
DENSE_VALID = dict(
    sizes=st.tuples(st.integers(1, 5), st.one_of(st.integers(1, 5), st.just(np.int64(3)))),
    act=st.sampled_from(ACTIVATIONS), param=st.one_of(st.none(), st.floats(0, 3)),
    init=st.sampled_from(list(INITIALIZERS)),
    dtype=st.sampled_from([np.float32, np.float64, "float32", "f8", np.dtype(np.float64), None]),
    seed=st.one_of(st.none(), st.integers(0, 2 ** 32)))
DENSE_BAD = dict(
    sizes=st.one_of(st.tuples(SIZES_BAD, st.integers(1, 3)),
                    st.tuples(st.integers(1, 3), SIZES_BAD), HUGE_SIZES),
    act=st.sampled_from(["swish", None, 3]), param=WILD,
    init=st.sampled_from(["orthogonal", None]),
    dtype=st.sampled_from([np.float16, np.int32, complex, object, "U3", "nonsense"]),
    seed=st.sampled_from([-1, 1.5, "0", True]))


def _dtype_error(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return [(DTypeError, "dtype")]
    return [] if dt in (F32, F64) else [(DTypeError, "dtype")]


@FUZZ_SETTINGS
@given(kw=st.composite(lambda draw: _one_bad(draw, DENSE_VALID, DENSE_BAD, p_bad=0.5))())
@example(kw=dict(sizes=(10 ** 10, 10 ** 10), act="tanh", param=None, init="glorot_uniform",
                 dtype=np.float64, seed=0))
def test_fuzz_dense_construction(kw):
    sizes, act, param, init, dtype, seed = (kw[k] for k in ("sizes", "act", "param", "init",
                                                            "dtype", "seed"))
    n_in, n_out = sizes
    expected = []
    huge = False
    for name, v in (("n_in", n_in), ("n_out", n_out)):
        errs = _scalar_errors(v, name, integer=True, low=1)
        expected += errs
        huge = huge or (not errs and v > 10 ** 6)
    if act not in ACTIVATION_CODES:
        expected.append((ValueError, "activation"))
    else:
        expected += _param_errors(act, param, dtype)
    expected += _dtype_error(dtype)
    if init not in INITIALIZERS:
        expected.append((ValueError, "init"))
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)
                                 and seed >= 0):
        expected.append((TypeError, "random_state") if not isinstance(seed, int) or
                        isinstance(seed, bool) else (ValueError, "random_state"))
    if huge:
        # More weights than an array can hold: a ShapeError naming the sizes (never a
        # multi-terabyte allocation attempt, nor NumPy's "array is too big").
        expected.append((ShapeError, "too many weights"))
    ok, layer = _call("dense.construct", nnlib.Dense, (n_in, n_out), dict(
        activation=act, activation_param=param, init=init, dtype=dtype, random_state=seed),
        expected)
    if not ok:
        return
    dt = np.dtype(dtype)
    assert layer.W.shape == (n_in, n_out) and layer.b.shape == (n_out,)
    assert layer.W.dtype == dt and layer.b.dtype == dt
    assert layer.W.flags.c_contiguous and layer.W.flags.writeable
    assert np.isfinite(layer.W).all() and not layer.b.any()
    if init == "zeros":
        assert not layer.W.any()
    else:
        bound = np.sqrt(6.0 / (n_in + (n_out if init.startswith("glorot") else 0)))
        if init.endswith("uniform"):
            assert np.abs(layer.W).max() <= bound * (1 + 1e-6)


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_sequential_construction(data):
    k = data.draw(st.integers(0, 4))
    layers, expected = [], []
    if k == 0:
        expected.append((ValueError, "at least one layer"))
    prev = None
    for i in range(k):
        if _chance(data.draw, 0.1):
            layers.append(data.draw(st.sampled_from([None, "dense", np.ones((2, 2))])))
            expected.append((TypeError, rf"layers\[{i}\]"))
            prev = None
            continue
        n_in = prev.n_out if prev is not None and data.draw(st.integers(0, 4)) else \
            data.draw(st.integers(1, 4))
        dt = data.draw(st.sampled_from([F32, F64]))
        layer = nnlib.Dense(n_in, data.draw(st.integers(1, 4)), dtype=dt, random_state=i)
        if prev is not None:
            if n_in != prev.n_out:
                expected.append((ShapeError, rf"layers\[{i}\]"))
            if dt != layers[0].dtype if isinstance(layers[0], nnlib.Dense) else False:
                expected.append((DTypeError, "dtype"))
        layers.append(layer)
        prev = layer
    # dtype mismatches are reported against layers[0]; any layer may differ from it
    dts = [l.dtype for l in layers if isinstance(l, nnlib.Dense)]
    if len(set(dts)) > 1:
        expected.append((DTypeError, "dtype"))
    ok, model = _call("sequential.construct", nnlib.Sequential, (layers,), {}, expected)
    if ok:
        assert model.n_in == layers[0].n_in and model.n_out == layers[-1].n_out
        assert len(model.params) == 2 * k


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
    if wild_weights and _chance(draw, 0.25):
        for layer in layers:
            layer.W[...] = draw(hnp.arrays(dtype, layer.W.shape,
                                           elements=hnp.from_dtype(dtype)))
            layer.b[...] = draw(hnp.arrays(dtype, layer.b.shape,
                                           elements=hnp.from_dtype(dtype)))
    return nnlib.Sequential(layers)


def _outputs_for(loss):
    """Output widths that suit ``loss`` (and, one time in eight, any width)."""
    fit = {"logistic_loss": st.sampled_from([1, 1, 2, 3]), "squared_error": st.integers(1, 3),
           "hinge_loss": st.integers(1, 3)}.get(loss, st.integers(2, 3))
    return st.one_of(*([fit] * 7), st.integers(1, 3))


def _x_for(draw, n_in, n=None, bad_shape_p=0.2, dtypes=ALL_DTYPES):
    """An X for a model with ``n_in`` inputs: mostly (n, n_in), sometimes another shape."""
    n = draw(st.integers(0, 5)) if n is None else n
    shape = (n, n_in)
    if _chance(draw, bad_shape_p):
        shape = draw(st.sampled_from([(n,), (n, n_in + 1), (n, n_in, 1), (), (n, 0)]))
    return draw(arrays(shape, dtypes=dtypes))


def _x_errors(X, n_in, name="X"):
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


def _abs_chain(model, X):
    """Per layer: the reference pre-activations Z_l and outputs H_l (float64, from the
    twins), the magnitude chain S_l >= |H_l| (|W|, |b| and the activations' Lipschitz
    bounds), and the error bound B_l of Z_l (a few ulps of the products' magnitude per
    term). Used to say where compiled and reference may legitimately differ."""
    dt = model.dtype
    eps = EPS[dt]
    H = np.asarray(X, dtype=np.float64)
    S = np.abs(H)
    out = []
    for layer in model.layers:
        act, param = layer._act_args()
        p = ACTIVATION_PARAMS[act][1] if act in ACTIVATION_PARAMS and param is None else param
        lip = max(1.0, p or 0.0)
        W, b = layer.W.astype(np.float64), layer.b.astype(np.float64)
        Z = H @ W + b
        SZ = S @ np.abs(W) + np.abs(b)
        B = 8 * (W.shape[0] + 2) * eps * SZ
        Hn = R.dense_forward(H.astype(dt), layer.W, layer.b, act, param).astype(np.float64)
        S = lip * SZ + np.abs(Hn)
        out.append(dict(Z=Z, H=Hn, S=S, SZ=SZ, B=B, act=act, param=p, lip=lip))
        H = Hn
    return out


def _may_overflow(chain, dtype):
    """True if a layer's magnitudes come within a factor 4 of the dtype's largest value:
    the kernel computes Z in the model's dtype (float32 -> inf), the twin in float64."""
    big = float(np.finfo(dtype).max) / 4
    return any(not (c["SZ"].max(initial=0) < big and c["S"].max(initial=0) < big)
               for c in chain)


def _near_kink(chain, acts, slack=4.0):
    """True if a layer with an activation in ``acts`` has a pre-activation within its
    error bound of the kink at 0 (rounding may put compiled and reference on opposite
    sides), or a bound that is not finite."""
    for c in chain:
        if not np.isfinite(c["B"]).all() or not np.isfinite(c["Z"]).all():
            return True
        if c["act"] in acts and c["act"] in ("leaky_relu", "elu") and c["param"] == 1.0:
            continue                                         # no kink: slope 1 both sides
        if c["act"] in acts and (np.abs(c["Z"]) <= slack * c["B"]).any():
            return True
    return False


def _assert_close(got, want, bound, what):
    got = np.atleast_1d(np.asarray(got, dtype=np.float64))
    want = np.atleast_1d(want)
    err = np.abs(got - want)
    bad = ~(err <= bound)
    assert not bad.any(), (f"{what}: compiled {got[bad][:4]} vs reference {want[bad][:4]} "
                           f"(bound {np.broadcast_to(bound, err.shape)[bad][:4]})")


def _threads_errors(n):
    if n is None:
        return []
    return _scalar_errors(n, "n_threads", integer=True, low=1)


@_settings(1.0)
@given(model=models(), data=st.data())
def test_fuzz_forward_and_predict(model, data):
    X = _data_x(data.draw, model.n_in, data.draw(st.integers(0, 6)), p_wild=0.5,
                bad_shape_p=0.2)
    use_predict = data.draw(st.booleans())
    valid = dict(n_threads=st.sampled_from([None, 1, 2]))
    bad = dict(n_threads=st.sampled_from([0, -1, 1.5, True, "2"]))
    if use_predict:
        valid["batch_size"] = st.integers(1, 6)
        bad["batch_size"] = st.sampled_from([0, -3, 2.0, None])
    kwargs = _one_bad(data.draw, valid, bad)
    expected = _x_errors(X, model.n_in) + _threads_errors(kwargs["n_threads"])
    if use_predict:
        expected += _scalar_errors(kwargs["batch_size"], "batch_size", integer=True, low=1)
    allowed = []
    chain = None
    if not _x_errors(X, model.n_in):
        with np.errstate(all="ignore"):
            Xc = np.asarray(X).astype(model.dtype)
        if not np.isfinite(Xc).all():            # NaN/inf in X (1e308 in float32 too)
            expected += [(NonFiniteError, r"X must be finite; row \d+ holds")]
        else:
            with np.errstate(all="ignore"):
                chain = _abs_chain(model, Xc)
            big = np.finfo(model.dtype).max / 4
            if not all(np.isfinite(p).all() for p in model.params):
                # inf weights may still give finite outputs (sign(inf), no rows)
                allowed += [(NonFiniteError, r"output for row \d+ .*weights are not finite")]
            elif any(not (c["S"] <= big).all() for c in chain):
                # the magnitude chain nears the dtype's range: the products may overflow
                allowed += [(NonFiniteError, r"output for row \d+ of X is not finite "
                                             r"\(the products overflowed")]
    before = snapshot(X, *model.params)
    fn = model.predict if use_predict else model.forward
    ok, out = _call("sequential.forward", fn, (X,), kwargs, expected, allowed)
    assert_unchanged(before, [X] + model.params)
    if not ok:
        return
    assert isinstance(out, np.ndarray) and out.dtype == model.dtype
    assert out.shape == (Xc.shape[0], model.n_out)
    assert np.isfinite(out).all(), "forward/predict returned a non-finite output"
    if _near_kink(chain, ("sign",)) or _may_overflow(chain, model.dtype):
        return
    last = chain[-1]
    if not np.isfinite(last["S"]).all():
        return                                   # near overflow: finite is all promised
    _assert_close(out, last["H"], 4 * len(chain) * last["lip"] * last["B"]
                  + 8 * EPS[model.dtype] * np.abs(last["H"]), "forward")


# ---- loss_and_grads


def _y_for(draw, loss, n, c, bad_p=0.2, dtype=F64):
    """Targets for ``loss`` with n rows and c outputs; sometimes wrong (dtype, shape,
    range, NaN). Returns (y, expected errors). ``dtype``: the model's (squared_error's
    targets are converted to it: 1e308 is inf in float32)."""
    bad = _chance(draw, bad_p)
    if loss == "squared_error":
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


def _loss_model_errors(loss, c):
    if loss in ("softmax_cross_entropy", "sparsemax_loss") and c < 2:
        return [(ShapeError, ">= 2 units")]
    return []


def _ref_loss_and_grads(model, X, y, loss, l2, margin):
    """The twins' forward, loss and backward: (loss, [dW1, db1, ...], dz of the output)."""
    dt = model.dtype
    Hs = [X]
    for layer in model.layers:
        Hs.append(R.dense_forward(Hs[-1], layer.W, layer.b, *layer._act_args()))
    yy = np.asarray(y)
    if loss == "squared_error":
        yy = yy.astype(dt).reshape(Hs[-1].shape)
    elif loss == "logistic_loss":
        yy = yy.astype(dt).reshape(Hs[-1].shape)
    value, dH = R.loss_and_grad(loss, Hs[-1], yy, margin)
    if loss == "logistic_loss":     # the twin averages over all n*c outputs, the model
        c = Hs[-1].shape[1]          # sums over the c outputs and averages over the rows
        value, dH = value * c, (dH.astype(np.float64) * c).astype(dt)
    dz = dH
    grads = [None] * (2 * len(model.layers))
    for i in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[i]
        dX, dW, db = R.dense_backward(Hs[i], layer.W, Hs[i + 1], dH, *layer._act_args())
        grads[2 * i] = dW.astype(np.float64) + l2 * layer.W.astype(np.float64)
        grads[2 * i + 1] = db.astype(np.float64)
        dH = dX
    value += 0.5 * l2 * sum(float(np.sum(l.W.astype(np.float64) ** 2)) for l in model.layers)
    return value, grads, dz


def _hinge_near_tie(chain, y, margin):
    """hinge_loss's gradient jumps where margin + max_{j != y} z_j - z_y = 0 and where
    two of the other scores tie for the max."""
    Z, B = chain[-1]["H"], chain[-1]["B"] * 4 * len(chain) + EPS[F64] * np.abs(chain[-1]["H"])
    n, c = Z.shape
    if c < 2:
        return False
    rows = np.arange(n)
    y = np.asarray(y).astype(np.int64)
    others = np.where(np.eye(c, dtype=bool)[y], -np.inf, Z)
    srt = np.sort(others, axis=1)
    tol = 4 * B.max(axis=1)
    if c > 2 and (srt[:, -1] - srt[:, -2] <= tol).any():
        return True
    return bool((np.abs(margin + srt[:, -1] - Z[rows, y]) <= tol).any())


def _grad_bounds(model, X_abs, chain, dz, l2, y_abs):
    """Error bounds of the compiled gradients: a few ulps of the magnitudes of the terms
    backprop adds (|H|^T |dZ| chains), plus the reference output's own error passed
    through the loss (its gradient is 1/n-Lipschitz in z for every loss here)."""
    dt = model.dtype
    eps = EPS[dt]
    n = dz.shape[0]
    L = len(model.layers)
    # |dz| plus the magnitude of the terms it is the difference of (p - y, z - y: p ~ 1
    # against y = 1 leaves dz = -0.005 with an error of an ulp of 1, not of 0.005)
    D = (np.abs(dz.astype(np.float64)) + (1.0 + chain[-1]["S"] + np.abs(y_abs)) / n
         + 4 * L * chain[-1]["B"] / n)
    width = max(max(l.n_in, l.n_out) for l in model.layers) + n + 4
    K = 16 * L * width * eps
    bounds = [None] * (2 * L)
    for i in range(L - 1, -1, -1):
        layer = model.layers[i]
        Sin = chain[i - 1]["S"] if i else X_abs
        absW = np.abs(layer.W.astype(np.float64))
        bounds[2 * i] = K * (Sin.T @ D + l2 * absW) + np.finfo(dt).tiny
        bounds[2 * i + 1] = K * D.sum(axis=0) + np.finfo(dt).tiny
        if i:
            D = (D @ absW.T) * chain[i - 1]["lip"] * (1 + chain[i - 1]["B"]) \
                + D @ absW.T * chain[i - 1]["B"]
    return bounds




@_settings(1.0)
@given(loss_model=st.sampled_from(LOSSES).flatmap(
    lambda loss: st.tuples(st.just(loss), models(n_out=_outputs_for(loss)))), data=st.data())
def test_fuzz_loss_and_grads(loss_model, data):
    loss, model = loss_model
    kw = _one_bad(data.draw, dict(loss=st.just(loss), l2=st.one_of(st.just(0.0), st.floats(0, 1)),
                                  margin=st.one_of(st.just(1.0), st.floats(0, 2)),
                                  n_threads=st.sampled_from([None, 1, 2])),
                  dict(loss=st.sampled_from(["cross_entropy", None, 0]), l2=WILD, margin=WILD,
                       n_threads=st.sampled_from([0, -1, 1.5, True, "2"])))
    loss, l2, margin, n_threads = kw["loss"], kw["l2"], kw["margin"], kw["n_threads"]
    n = data.draw(st.integers(1, 5))
    X = _data_x(data.draw, model.n_in, n, p_wild=0.5, bad_shape_p=0.1)
    expected = _threads_errors(n_threads)
    if loss not in LOSS_CODES:
        expected.append((ValueError, "loss"))
    expected += (_scalar_errors(l2, "l2", low=0.0) or _range_errors(l2, "l2", model.dtype))
    expected += _scalar_errors(margin, "margin", low=0.0)
    expected += _x_errors(X, model.n_in)
    y = None
    if loss in LOSS_CODES:
        expected += _loss_model_errors(loss, model.n_out)
        y, y_errs = _y_for(data.draw, loss, np.shape(X)[0] if np.ndim(X) else n,
                           model.n_out, dtype=model.dtype)
        expected += y_errs
        if np.ndim(X) == 2 and np.shape(X)[0] == 0:
            expected.append((ShapeError, "at least one row"))
    before = snapshot(X, y, *model.params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok, out = _call("sequential.loss_and_grads", model.loss_and_grads, (X, y),
                        dict(loss=loss, l2=l2, margin=margin, n_threads=n_threads), expected)
    assert_unchanged(before, [X, y] + model.params)
    if not ok:
        return
    value, grads = out
    assert isinstance(value, float)
    assert [g.shape for g in grads] == [p.shape for p in model.params]
    assert all(g.dtype == model.dtype for g in grads)
    finite = np.isfinite(value) and all(np.isfinite(g).all() for g in grads)
    warned = any(issubclass(w.category, RuntimeWarning) and "not finite" in str(w.message)
                 for w in caught)
    assert warned == (not finite), (
        f"a RuntimeWarning iff the loss or a gradient is not finite: loss {value}, "
        f"grads {grads}, warnings {[str(w.message) for w in caught]}")
    Xc = np.asarray(X).astype(model.dtype)
    if not (np.isfinite(Xc).all() and all(np.isfinite(p).all() for p in model.params)):
        return
    with np.errstate(all="ignore"):
        chain = _abs_chain(model, Xc)
        kinked = ("sign", "relu", "leaky_relu", "elu")
        if _near_kink(chain, kinked) or _may_overflow(chain, model.dtype):
            return
        if loss == "hinge_loss" and _hinge_near_tie(chain, y, margin):
            return
        want, want_grads, dz = _ref_loss_and_grads(model, Xc, y, loss, float(l2),
                                                   float(margin))
        y_abs = (np.abs(np.asarray(y, dtype=np.float64)).reshape(dz.shape)
                 if loss == "squared_error" else 0.0)
        bounds = _grad_bounds(model, np.abs(Xc.astype(np.float64)), chain, dz, float(l2),
                              y_abs)
    if not (np.isfinite(want) and all(np.isfinite(g).all() for g in want_grads)
            and all(np.isfinite(b).all() for b in bounds)):
        return                                  # the reference overflows: no promise
    assert finite, "finite inputs with a finite reference must give finite results"
    for g, w, b, name in zip(grads, want_grads, bounds,
                             [f"{k}{i}" for i in range(len(model.layers)) for k in "Wb"]):
        _assert_close(g, w, b, f"d{name}")
    # The loss: its rounding, plus the output's error through the loss (|dz| * B).
    last = chain[-1]
    spread = (np.abs(dz) * 4 * len(chain) * last["B"]).sum()
    l2_term = float(l2) * sum(float(np.sum(l.W.astype(np.float64) ** 2)) for l in model.layers)
    _assert_close(value, want, spread + 64 * EPS[model.dtype] * (
        abs(want) + last["S"].max(axis=1).mean() + l2_term), "loss")


# ---- fit


# Valid hyperparameters per optimizer (the optimizer's own argument checks are fuzzed by
# tests/test_fuzz_optim.py; here lr is the one drawn out of range).
UNIT = st.floats(0, 0.99)
OPTIMIZERS = {
    O.SGD: dict(momentum=UNIT, dampening=st.floats(0, 1), weight_decay=st.floats(0, 0.1)),
    O.Adagrad: dict(lr_decay=st.floats(0, 1), weight_decay=st.floats(0, 0.1),
                    initial_accumulator_value=st.floats(0, 1), eps=st.floats(1e-10, 1e-2)),
    O.RMSprop: dict(alpha=st.floats(0.5, 0.99), eps=st.floats(1e-10, 1e-2),
                    weight_decay=st.floats(0, 0.1), momentum=UNIT, centered=st.booleans()),
    O.Adam: dict(betas=st.tuples(UNIT, UNIT), eps=st.floats(1e-10, 1e-2),
                 weight_decay=st.floats(0, 0.1), amsgrad=st.booleans()),
    O.AdamW: dict(betas=st.tuples(UNIT, UNIT), eps=st.floats(1e-10, 1e-2),
                  weight_decay=st.floats(0, 0.1), amsgrad=st.booleans()),
    O.NotesMomentum: dict(beta=st.floats(1e-3, 1)),
    O.NotesAdaGrad: dict(eps=st.floats(1e-10, 1e-2)),
    O.SklearnSGD: dict(momentum=st.floats(0, 1), nesterov=st.booleans()),
    O.SklearnAdam: dict(beta_1=UNIT, beta_2=UNIT, epsilon=st.floats(1e-10, 1e-2)),
}


@st.composite
def optimizers(draw, lr=st.floats(0, 0.5), min_eps=None):
    """(factory, description): a factory builds a fresh optimizer with the same settings
    (the reference and the replays need their own). ``min_eps``: adaptive rules get an
    eps of at least that."""
    cls = draw(st.sampled_from(list(OPTIMIZERS)))
    kwargs = {k: draw(v) for k, v in OPTIMIZERS[cls].items() if draw(st.booleans())}
    for key in ("eps", "epsilon"):
        if min_eps and key in OPTIMIZERS[cls]:
            kwargs[key] = draw(st.floats(min_eps, 0.1))
    kwargs["lr"] = draw(lr)
    if cls is O.SGD and kwargs.get("momentum", 0) > 0 and not kwargs.get("dampening") \
            and draw(st.booleans()):
        kwargs["nesterov"] = True
    return (lambda: cls(**kwargs)), f"{cls.__name__}({kwargs})"


FIT_VALID = dict(
    epochs=st.integers(0, 3), batch_size=st.integers(1, 8),
    l2=st.one_of(st.just(0.0), st.floats(0, 0.5)), margin=st.one_of(st.just(1.0), st.floats(0, 2)),
    l2_per_batch=st.booleans(), shuffle=st.booleans(), random_state=st.integers(0, 2 ** 32),
    validation_split=st.one_of(st.just(0.0), st.just(0.0), st.floats(0, 0.9)),
    n_threads=st.sampled_from([1, 1, None]))
FIT_BAD = dict(
    epochs=st.sampled_from([-1, 2.0, None, True]), batch_size=st.sampled_from([0, -2, 1.5, None]),
    l2=st.sampled_from([-0.1, np.nan, np.inf, "0"]), margin=st.sampled_from([-1.0, np.inf]),
    random_state=st.sampled_from([-1, "0", 1.5]), validation_split=st.sampled_from([1.0, -0.1, 2]),
    n_threads=st.sampled_from([0, -1, 1.5]))


def _fit_kwarg_errors(kw):
    errs = _scalar_errors(kw["epochs"], "epochs", integer=True, low=0)
    errs += _scalar_errors(kw["batch_size"], "batch_size", integer=True, low=1)
    errs += _scalar_errors(kw["l2"], "l2", low=0.0)
    errs += _scalar_errors(kw["margin"], "margin", low=0.0)
    rs = kw["random_state"]
    if not isinstance(rs, int):
        errs.append((TypeError, "random_state"))
    elif rs < 0:
        errs.append((ValueError, "random_state"))
    errs += _scalar_errors(kw["validation_split"], "validation_split", low=0.0, high=1.0,
                           high_open=True)
    if kw["n_threads"] is not None:
        errs += _threads_errors(kw["n_threads"])
    return errs


def _one_bad(draw, valid, bad, p_bad=0.25):
    """Keyword arguments drawn from ``valid``; with probability ``p_bad`` one of them
    replaced by a draw from ``bad`` (so each error is tried alone, not masked by others)."""
    kw = {k: draw(v) for k, v in valid.items()}
    if _chance(draw, p_bad):
        key = draw(st.sampled_from(sorted(bad)))
        kw[key] = draw(bad[key])
    return kw


@st.composite
def fit_kwargs(draw):
    """fit's scalar arguments, valid, or (one time in four) with one out of range.
    Returns (kwargs, errors)."""
    kw = _one_bad(draw, FIT_VALID, FIT_BAD)
    return kw, _fit_kwarg_errors(kw)


def _data_x(draw, n_in, n, p_wild=0.3, bad_shape_p=0.1):
    """X for fit/estimators: mostly moderate floats (so that training happens), else the
    wild arrays of tests/_fuzz.py (any dtype, edge values, layouts)."""
    if _chance(draw, p_wild):
        return _x_for(draw, n_in, n, bad_shape_p=bad_shape_p,
                      dtypes=FLOAT_DTYPES * 4 + ALL_DTYPES)
    dt = draw(st.sampled_from(FLOAT_DTYPES + [np.dtype(np.int64), np.dtype(bool)]))
    elements = st.floats(-5, 5, width=16 if dt == np.float16 else 32) if dt.kind == "f" else None
    X = draw(hnp.arrays(dt, (n, n_in), elements=elements))
    return with_layout(X, draw(st.sampled_from(LAYOUTS)))


def _replay(model0_params, model, X, y, loss, make_opt, kw, stop):
    """Train a copy from the initial weights for exactly the steps ``fit`` reports as
    done (whole epochs, then ``stop['step']`` batches of the next), feeding each epoch's
    rows in the order fit drew them; return its parameters."""
    replay = nnlib.Sequential([nnlib.Dense(l.n_in, l.n_out, l.activation, init="zeros",
                                           dtype=l.dtype, activation_param=l._act_args()[1])
                               for l in model.layers])
    for p, q in zip(replay.params, model0_params):
        p[...] = q
    opt = make_opt()
    n = X.shape[0]
    rng = np.random.default_rng(kw["random_state"])
    bs = kw["batch_size"]
    common = dict(loss=loss, optimizer=opt, epochs=1, shuffle=False, batch_size=bs,
                  l2=kw["l2"], l2_per_batch=kw["l2_per_batch"], margin=kw["margin"],
                  n_threads=kw["n_threads"])
    for e in range(stop["epoch"] + 1):
        order = rng.permutation(n) if kw["shuffle"] else np.arange(n)
        rows = order if e < stop["epoch"] else order[:stop["step"] * bs]
        if rows.size:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)      # must not diverge
                replay.fit(X[rows], np.asarray(y)[rows], **common)
    return replay.params, opt


@_settings(0.6)
@given(loss_model=st.sampled_from(LOSSES).flatmap(
    lambda loss: st.tuples(st.just(loss), models(n_out=_outputs_for(loss), wild_weights=False))),
    opt=optimizers(
    lr=st.one_of(st.floats(0, 0.5), st.floats(0, 0.5), st.sampled_from([10.0, 1e300, -0.1]))),
    fit=fit_kwargs(), data=st.data())
def test_fuzz_fit(loss_model, opt, fit, data):
    """Any data, any fit arguments: the documented error, or training that either
    completes with finite losses and weights or stops on divergence exactly as
    documented, with the weights of the last finite step."""
    loss, model = loss_model
    make_opt, _ = opt
    kw, expected = fit
    # Sometimes huge (finite) weights: the forward pass and the L2 penalty overflow.
    scale = data.draw(st.sampled_from([1.0] * 6 + [1e30] + [1e160] * (model.dtype == F64)))
    for p in model.params:
        p *= scale
    n = 0 if _chance(data.draw, 0.1) else data.draw(st.integers(1, 8))
    X = _data_x(data.draw, model.n_in, n)
    expected = list(expected)
    try:
        optimizer = make_opt()
    except ValueError as e:                         # lr out of range: the optimizer says
        assert "lr" in str(e)
        COUNTS["models.sequential.fit"]["raised"] += 1
        return
    if isinstance(kw["epochs"], int) and kw["epochs"] > 0:
        expected += _range_errors(optimizer.lr, "lr", model.dtype)
    # Every problem drawn is listed; fit may report any one of them first.
    x_errs = _x_errors(X, model.n_in)
    expected += x_errs
    Xa = np.asarray(X)
    if not x_errs:
        Xc = Xa.astype(model.dtype)
        if not np.isfinite(Xc).all():
            expected.append((NonFiniteError, "X"))
    y, y_errs = _y_for(data.draw, loss, np.shape(X)[0] if np.ndim(X) else n, model.n_out,
                       bad_p=0.1, dtype=model.dtype)
    if not x_errs and Xa.ndim == 2:
        vs = kw["validation_split"]
        n_val = int(np.ceil(Xa.shape[0] * vs)) \
            if isinstance(vs, float) and 0 < vs < 1 else 0
        if n_val and n_val >= Xa.shape[0]:
            expected.append((ValueError, "validation_split"))
        elif Xa.shape[0] - n_val == 0:
            expected += [(ShapeError, "at least one row"),
                         (ValueError, "validation_split=.* leaves no rows")]
    expected += _loss_model_errors(loss, model.n_out) + y_errs
    w0 = [p.copy() for p in model.params]
    before = snapshot(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok, hist = _call("sequential.fit", model.fit, (X, y), dict(
            loss=loss, optimizer=optimizer, **kw), expected)
    assert_unchanged(before, [X, y])
    if not ok:
        for p, q in zip(model.params, w0):          # refused: nothing trained
            assert np.array_equal(p, q)
        return
    assert all(np.isfinite(p).all() for p in model.params), "weights must stay finite"
    assert all(p.dtype == model.dtype for p in model.params)
    diverged = [w for w in caught if issubclass(w.category, RuntimeWarning)
                and "non-finite" in str(w.message)]
    if hist.stop_reason != "nonfinite":
        assert not diverged
        assert hist.epochs == len(hist["loss"]) <= kw["epochs"]
        assert all(np.isfinite(hist["loss"]))
        if hist.stop_reason is None:
            assert hist.epochs == kw["epochs"]
        return
    COUNTS["models.sequential.fit"]["diverged"] += 1
    assert diverged, "divergence is reported with a RuntimeWarning"
    stop = hist.nonfinite
    assert set(stop) == {"epoch", "step", "what"} and stop["epoch"] < kw["epochs"]
    assert stop["what"] in ("loss", "gradient", "weights or optimizer state after an update")
    if kw["validation_split"] or Xa.dtype.kind not in "f" and False:
        return
    Xc = Xa.astype(model.dtype)
    replayed, opt2 = _replay(w0, model, Xc, y, loss, make_opt, kw, stop)
    for p, q in zip(model.params, replayed):
        assert np.array_equal(p, q), "weights must be those after the reported step"
    assert optimizer.t == opt2.t


SMOOTH_ACTS = ["identity", "sigmoid", "tanh", "softplus"]
SMOOTH_LOSSES = ["softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss"]


def _reference_fit(model, X, y, loss, optimizer, kw):
    """The twins' training: same permutations, batches, L2 and update rule (the NumPy
    optimizer twin, nnlib._reference.optim). Returns (params, per-epoch mean losses)."""
    from nnlib._reference.optim import optim_step, state_slots
    params = [p.copy() for p in model.params]
    cfg = optimizer.config()
    init = getattr(optimizer, "initial_accumulator_value", 0.0) or 0.0
    states = [np.full((state_slots(cfg), p.size), init, dtype=p.dtype) for p in params]
    shadow = nnlib.Sequential([nnlib.Dense(l.n_in, l.n_out, l.activation, init="zeros",
                                           dtype=l.dtype) for l in model.layers])
    rng = np.random.default_rng(kw["random_state"])
    n, bs, t, losses = X.shape[0], kw["batch_size"], 0, []
    for _ in range(kw["epochs"]):
        order = rng.permutation(n) if kw["shuffle"] else np.arange(n)
        total = 0.0
        for s in range(0, n, bs):
            rows = order[s:s + bs]
            for p, q in zip(shadow.params, params):
                p[...] = q
            l2 = kw["l2"] / rows.size if kw["l2_per_batch"] else kw["l2"]
            value, grads, _ = _ref_loss_and_grads(shadow, X[rows], np.asarray(y)[rows], loss,
                                                  l2, 1.0)
            total += value * rows.size
            t += 1
            for p, g, st_ in zip(params, grads, states):
                flat = p.reshape(-1)
                optim_step(cfg, flat, g.reshape(-1).astype(p.dtype), st_, t, 1)
        losses.append(total / n)
    return params, losses


@_settings(0.4)
@given(loss_model=st.sampled_from(SMOOTH_LOSSES).flatmap(
    lambda loss: st.tuples(st.just(loss), models(
        dtype=F64, n_out={"logistic_loss": st.integers(1, 3),
                          "squared_error": st.integers(1, 3)}.get(
            loss, st.integers(2, 3)), acts=SMOOTH_ACTS, wild_weights=False,
        inits=[i for i in INITIALIZERS if i != "zeros"]))),
    # Adaptive rules divide by sqrt(v) + eps: with a tiny eps a gradient that is zero up
    # to rounding (1e-17 vs 0) becomes a step of size lr. Keep eps away from that.
    opt=optimizers(lr=st.floats(0, 0.3), min_eps=1e-4), data=st.data())
def test_fuzz_fit_matches_reference(loss_model, opt, data):
    """A few epochs of compiled training (n_threads=1) against the twins' trajectory, for
    random valid data and every optimizer. Smooth activations and losses only: at a kink
    (relu at 0) a rounding difference may pick the other one-sided derivative. No zero
    initialization: all-zero weights put training on a saddle where a gradient that is 0
    in exact arithmetic comes out as +-5e-17 depending on summation order, and the
    trajectories then separate (measured: 1e-15 after one step, 1e-7 after four)."""
    loss, model = loss_model
    make_opt, desc = opt
    n = data.draw(st.integers(1, 8))
    X = data.draw(hnp.arrays(F64, (n, model.n_in), elements=st.floats(-3, 3)))
    y, errs = _y_for(data.draw, loss, n, model.n_out, bad_p=0.0)
    if loss == "squared_error":
        y = np.clip(np.nan_to_num(np.asarray(y, dtype=np.float64)), -10, 10)
    kw = dict(epochs=data.draw(st.integers(1, 3)), batch_size=data.draw(st.integers(1, 8)),
              l2=data.draw(st.one_of(st.just(0.0), st.floats(0, 0.1))),
              l2_per_batch=data.draw(st.booleans()), shuffle=data.draw(st.booleans()),
              random_state=data.draw(st.integers(0, 2 ** 32)))
    optimizer = make_opt()
    want, want_losses = _reference_fit(model, X, y, loss, make_opt(), kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = model.fit(X, y, loss=loss, optimizer=optimizer, n_threads=1, **kw)
    if hist.stop_reason == "nonfinite":
        # lr 0.3 with momentum near 1 can diverge; test_fuzz_fit checks that outcome
        assert not all(np.isfinite(want_losses)) or max(np.abs(p).max() for p in want) > 1e100
        COUNTS["models.sequential.fit_vs_reference"]["diverged"] += 1
        return
    COUNTS["models.sequential.fit_vs_reference"]["returned"] += 1
    scale = max(1.0, max(float(np.abs(p).max()) for p in want))
    for got, ref in zip(model.params, want):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-11 * scale, err_msg=desc)
    np.testing.assert_allclose(hist["loss"], want_losses, rtol=1e-9, atol=1e-12, err_msg=desc)


# ------------------------------------------------------------------ the estimators

from nnlib.estimators import InvalidParameterError  # noqa: E402

# "Solver produced non-finite parameter weights": the documented ValueError of an MLP fit
# that diverges (scikit-learn's wording); allowed whenever training may run.
DIVERGED = (ValueError, "non-finite parameter weights")

MLP_VALID = dict(
    hidden_layer_sizes=st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=0,
                                                             max_size=2).map(tuple)),
    activation=st.sampled_from(["identity", "logistic", "tanh", "relu", "leaky_relu",
                                "softplus", "elu"]),
    solver=st.sampled_from(["lbfgs", "sgd", "adam", "adagrad", "gd"]),
    alpha=st.one_of(st.just(1e-4), st.floats(0, 1)),
    batch_size=st.one_of(st.just("auto"), st.integers(1, 10)),
    learning_rate=st.sampled_from(["constant", "invscaling", "adaptive"]),
    learning_rate_init=st.floats(1e-4, 0.5), power_t=st.floats(0, 1),
    max_iter=st.integers(1, 4), shuffle=st.booleans(), random_state=st.integers(0, 2 ** 31 - 2),
    tol=st.floats(0, 1e-2), warm_start=st.booleans(), momentum=st.floats(0, 1),
    nesterovs_momentum=st.booleans(), early_stopping=st.sampled_from([False, False, False, True]),
    validation_fraction=st.floats(0.1, 0.5), beta_1=UNIT, beta_2=UNIT,
    epsilon=st.floats(1e-10, 1e-3), n_iter_no_change=st.integers(1, 5),
    max_fun=st.integers(1, 50))
MLP_BAD = dict(
    hidden_layer_sizes=st.sampled_from([0, -1, (2, 0), "3", 2.5, (True,)]),
    activation=st.sampled_from(["sigmoid", "sign", None, 1]),
    solver=st.sampled_from(["newton", None, "SGD"]),
    alpha=st.sampled_from([-1.0, np.nan, "0", None]),
    batch_size=st.sampled_from([0, -1, 1.5, "all", True]),
    learning_rate=st.sampled_from(["optimal", None]),
    learning_rate_init=st.sampled_from([0.0, -0.1, np.nan, "0.1"]),
    power_t=st.sampled_from([-0.5, np.nan]),
    max_iter=st.sampled_from([0, -1, 2.0, None]),
    shuffle=st.sampled_from(["yes", 1, None]),
    random_state=st.sampled_from(["0", 1.5, [1]]),
    tol=st.sampled_from([-1e-3, np.nan]),
    momentum=st.sampled_from([-0.1, 1.5, np.nan]),
    nesterovs_momentum=st.sampled_from([0, "True"]),
    early_stopping=st.sampled_from([1, "no"]),
    validation_fraction=st.sampled_from([1.0, -0.1, 2]),
    beta_1=st.sampled_from([1.0, -0.1]), beta_2=st.sampled_from([1.0, 1.5]),
    epsilon=st.sampled_from([0.0, -1e-8]),
    n_iter_no_change=st.sampled_from([0, 1.5]), max_fun=st.sampled_from([0, None]))


@st.composite
def mlp_params(draw, regressor=False):
    """(params, expected errors): valid MLP parameters, one of them sometimes bad."""
    params = {k: draw(v) for k, v in MLP_VALID.items()}
    errs = []
    if _chance(draw, 0.25):
        key = draw(st.sampled_from(sorted(MLP_BAD)))
        params[key] = draw(MLP_BAD[key])
        errs.append((InvalidParameterError, f"'{key}' parameter"))
    if regressor and _chance(draw, 0.1):
        params["loss"] = draw(st.sampled_from(["poisson", "absolute_error"]))
        errs.append((ValueError, "'loss' parameter"))
    return params, errs


def _labels(draw, n):
    """Class labels for n samples: (y, expected errors, multilabel?)."""
    valid = ["int", "str", "float", "bool", "object", "column", "multilabel"]
    kind = draw(st.sampled_from(valid)) if not _chance(draw, 0.25) else draw(
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
        if n > 1:
            errs.append((LabelError, "one kind"))
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


def _x_dtype(X):
    """The dtype check_X gives X: float32 stays, everything else becomes float64."""
    return np.float32 if dtype_of(X) == np.float32 else np.float64


def _check_x_errors(X, n_features=None):
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


def _overflow_allowed(X, weights, biases, dtype=np.float64):
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


def _assert_classifier_output(est, X, multilabel):
    n = np.asarray(X).shape[0]
    pred = est.predict(X)
    proba = est.predict_proba(X)
    if multilabel:
        assert pred.shape == (n, est.classes_.size) and set(np.unique(pred)) <= {0, 1}
        assert proba.shape == (n, est.classes_.size)
    else:
        assert pred.shape == (n,)
        assert np.isin(pred, est.classes_).all(), "predict must return labels of classes_"
        assert proba.shape == (n, est.classes_.size)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()


def _fit_then_predict(name, est, params, X, y, expected, data):
    """Shared by the two MLP tests: fit (the documented error, or finite weights and the
    inputs untouched), then predict on a new X (sometimes with the wrong width, NaN or
    values that overflow). Returns predict's result, or None when a call raised."""
    allowed = [DIVERGED]
    if params["early_stopping"]:
        allowed.append((ValueError, "validation set is too small"))
    before = snapshot(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, _ = _call(f"{name}.fit", est.fit, (X, y), {}, expected, allowed)
    assert_unchanged(before, [X, y])
    if not ok:
        return None
    assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)
    d = est.n_features_in_
    assert d == np.shape(X)[1]
    X2 = _data_x(data.draw, data.draw(st.sampled_from([d, d, d, d + 1])),
                 data.draw(st.integers(1, 5)), p_wild=0.3)
    ok, pred = _call(f"{name}.predict", est.predict, (X2,), {}, _check_x_errors(X2, d),
                     _overflow_allowed(X2, est.coefs_, est.intercepts_, _x_dtype(X2)))
    return (X2, pred) if ok else None


@_settings(0.5)
@given(params=mlp_params(), data=st.data())
def test_fuzz_mlp_classifier(params, data):
    params, expected = params
    n = 1 if _chance(data.draw, 0.1) else data.draw(st.integers(2, 10))
    X = _data_x(data.draw, data.draw(st.integers(1, 3)), n, p_wild=0.25)
    y, y_errs, multilabel = _labels(data.draw, np.shape(X)[0] if np.ndim(X) else n)
    # Every problem drawn is listed; the estimator may report any one of them first.
    est = nnlib.MLPClassifier(**params)
    got = _fit_then_predict("mlp_classifier", est, params, X, y,
                            expected + _check_x_errors(X) + y_errs, data)
    if got is not None:
        X2, pred = got
        _assert_classifier_output(est, X2, multilabel)
        assert est.score(X2, pred) == 1.0
    if hasattr(est, "coefs_") and hasattr(est, "partial_fit") and not multilabel:
        # labels the model has never seen must be refused, naming them
        kind = est.classes_.dtype.kind
        new = "zebra" if kind in "UO" else 2 if kind == "b" else est.classes_.max() + 1
        y_new = np.array(list(np.asarray(y).reshape(-1)[:-1]) + [new])
        Xc = np.asarray(X, dtype=np.float64)
        errs = [(LabelError, "not among the classes")]
        if params["early_stopping"]:
            errs.append((ValueError, "partial_fit does not support early_stopping"))
        _call("mlp_classifier.partial_fit", est.partial_fit, (Xc, y_new), {}, errs)


def _reg_targets(draw, n):
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


@_settings(0.5)
@given(params=mlp_params(regressor=True), data=st.data())
def test_fuzz_mlp_regressor(params, data):
    params, expected = params
    n = 1 if _chance(data.draw, 0.1) else data.draw(st.integers(2, 10))
    X = _data_x(data.draw, data.draw(st.integers(1, 3)), n, p_wild=0.25)
    y, y_errs = _reg_targets(data.draw, np.shape(X)[0] if np.ndim(X) else n)
    est = nnlib.MLPRegressor(**params)
    got = _fit_then_predict("mlp_regressor", est, params, X, y,
                            expected + _check_x_errors(X) + y_errs, data)
    if got is not None:
        X2, pred = got
        k = est.n_outputs_
        assert pred.shape == ((np.shape(X2)[0],) if k == 1 else (np.shape(X2)[0], k))
        assert np.isfinite(pred).all()
        assert np.isfinite(est.score(X2, pred))


# ---- the linear models and the threshold network

BOOL_BAD = st.sampled_from(["no", 0, 1, None, 2.5])


@st.composite
def linear_cases(draw):
    """(estimator class, params, expected errors)."""
    cls = draw(st.sampled_from([nnlib.LinearRegression, nnlib.LogisticRegression,
                                nnlib.Perceptron]))
    if cls is nnlib.LinearRegression:
        valid = dict(fit_intercept=st.booleans(), solver=st.sampled_from(["lstsq", "pinv",
                                                                          "normal"]))
        bad = dict(fit_intercept=BOOL_BAD, solver=st.sampled_from(["qr", None]))
    elif cls is nnlib.LogisticRegression:
        valid = dict(alpha=st.floats(0, 1), fit_intercept=st.booleans(),
                     learning_rate=st.one_of(st.just("auto"), st.floats(1e-3, 1)),
                     tol=st.floats(0, 1e-2), max_iter=st.integers(1, 50))
        bad = dict(alpha=st.sampled_from([-1.0, np.nan, "0"]), fit_intercept=BOOL_BAD,
                   learning_rate=st.sampled_from([0.0, -1.0, "fast", np.inf]),
                   tol=st.sampled_from([-1.0, np.nan]), max_iter=st.sampled_from([0, 1.5]))
    else:
        valid = dict(max_iter=st.integers(1, 20), fit_intercept=st.booleans(),
                     shuffle=st.booleans(), random_state=st.integers(0, 2 ** 32))
        bad = dict(max_iter=st.sampled_from([0, -1, 2.0]), fit_intercept=BOOL_BAD,
                   shuffle=BOOL_BAD, random_state=st.sampled_from([-1, "0"]))
    params = {k: draw(v) for k, v in valid.items()}
    errs = []
    if _chance(draw, 0.25):
        key = draw(st.sampled_from(sorted(bad)))
        params[key] = draw(bad[key])
        errs += [(ValueError, key), (TypeError, key)]
    return cls, params, errs


@_settings(0.5)
@given(case=linear_cases(), data=st.data())
def test_fuzz_linear_models(case, data):
    cls, params, expected = case
    n = data.draw(st.integers(1, 8))
    d = data.draw(st.integers(1, 3))
    X = _data_x(data.draw, d, n, p_wild=0.3)
    n_rows = np.shape(X)[0] if np.ndim(X) else n
    if cls is nnlib.LinearRegression:
        y, y_errs = _reg_targets(data.draw, n_rows)
        classifier = False
    else:
        y, y_errs, multilabel = _labels(data.draw, n_rows)
        if multilabel:
            y_errs = [(ShapeError, "1d array")]
        elif not y_errs and len(np.unique(np.asarray(y).reshape(-1))) != 2:
            y_errs = [(LabelError, "binary")]
        classifier = True
    expected = expected + _check_x_errors(X) + y_errs
    # Documented: solver="normal" raises LinAlgError (a ValueError) if X^T X is singular;
    # learning_rate="auto" a ValueError if X is so large that the step underflows.
    allowed = ([(np.linalg.LinAlgError, "singular")]
               if params.get("solver") == "normal" else [])
    if params.get("learning_rate") == "auto" and not _check_x_errors(X) and \
            np.abs(np.asarray(X, dtype=np.float64)).max() > 1e100:
        allowed.append((ValueError, "learning_rate='auto' cannot handle X this large"))
    est = cls(**params)
    before = snapshot(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, _ = _call(f"{cls.__name__}.fit", est.fit, (X, y), {}, expected, allowed)
    assert_unchanged(before, [X, y])
    if not ok:
        return
    d = est.n_features_in_
    assert d == np.shape(X)[1]
    X2 = _data_x(data.draw, data.draw(st.sampled_from([d, d, d, d + 1])),
                 data.draw(st.integers(1, 5)), p_wild=0.3)
    coef = np.asarray(est.coef_, dtype=np.float64)
    ok, pred = _call(f"{cls.__name__}.predict", est.predict, (X2,), {},
                     _check_x_errors(X2, d),
                     _overflow_allowed(X2, [coef.T if coef.ndim == 2 else coef[:, None]],
                                       [np.atleast_1d(est.intercept_)]))
    if not ok:
        return
    n2 = np.shape(X2)[0]
    if classifier:
        assert pred.shape == (n2,) and np.isin(pred, est.classes_).all()
        if hasattr(est, "predict_proba"):
            P = est.predict_proba(X2)
            assert P.shape == (n2, 2) and np.isfinite(P).all()
            assert ((P >= 0) & (P <= 1)).all()
            np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
        assert 0.0 <= est.score(X2, pred) <= 1.0
    else:
        assert pred.shape[0] == n2 and np.isfinite(pred).all()


@st.composite
def threshold_networks(draw):
    """(weights, biases, activations, expected errors)."""
    depth = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    elements = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, 0.1, -1.0, 1.5]))
    W = [draw(hnp.arrays(np.float64, (a, b), elements=elements))
         for a, b in zip(sizes, sizes[1:])]
    b = [draw(hnp.arrays(np.float64, (s,), elements=elements)) for s in sizes[1:]]
    acts = draw(st.one_of(st.sampled_from(ACTIVATIONS),
                          st.lists(st.sampled_from(ACTIVATIONS), min_size=depth,
                                   max_size=depth)))
    errs = []
    mistake = draw(st.sampled_from([None] * 6 + ["chain", "bias", "count", "act", "nonfinite",
                                                 "dtype", "ndim"]))
    if mistake == "chain" and depth > 1:
        W[1] = np.ones((sizes[1] + 1, sizes[2]))
        errs.append((ShapeError, r"weights\[1\]"))
    elif mistake == "bias":
        b[0] = np.ones(sizes[1] + 1)
        errs.append((ShapeError, r"biases\[0\]"))
    elif mistake == "count":
        b = b[:-1]
        errs.append((ShapeError, "one bias vector per weight"))
    elif mistake == "act":
        acts = "swish"
        errs.append((ValueError, "unknown activation"))
    elif mistake == "nonfinite":
        W[0] = W[0].copy()
        W[0].flat[0] = draw(st.sampled_from([np.nan, np.inf]))
        errs.append((NonFiniteError, r"weights\[0\]"))
    elif mistake == "dtype":
        W[0] = W[0].astype(complex)
        errs.append((DTypeError, r"weights\[0\]"))
    elif mistake == "ndim":
        W[0] = W[0].reshape(-1)
        errs.append((ShapeError, r"weights\[0\]"))
    return W, b, acts, errs


@FUZZ_SETTINGS
@given(net=threshold_networks(), data=st.data())
def test_fuzz_threshold_network(net, data):
    W, b, acts, expected = net
    ok, model = _call("threshold.construct", nnlib.ThresholdNetwork, (W, b, acts), {},
                      expected)
    if not ok:
        return
    d = W[0].shape[0]
    X = _data_x(data.draw, data.draw(st.sampled_from([d, d, d, d + 1])),
                data.draw(st.integers(1, 5)), p_wild=0.4)
    ok, out = _call("threshold.predict", model.forward, (X,), {}, _check_x_errors(X, d),
                    _overflow_allowed(X, model.weights, model.biases))
    if not ok:
        return
    H = np.asarray(X, dtype=np.float64)
    for Wl, bl, act in zip(model.weights, model.biases, model.activations):
        H = getattr(R, act)(H @ Wl + bl)
    assert out.shape == H.shape and out.dtype == np.float64
    assert np.isfinite(out).all()
    # Same products (NumPy's), activations vs their twins: a few ulps apart.
    np.testing.assert_allclose(out, H, rtol=1e-12, atol=1e-300)


# ------------------------------------------------------------------ regressions
# What the fuzzing above found, each as a fixed case: (id, callable, exception, message).


def _fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _big_weights(est):
    est.coefs_[0][...] = 10.0                 # X of 1e308 then overflows the first layer
    return est


def _xor_data():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, np.array([0, 1, 1, 0])


def _loss_grads_inf_x():
    model = nnlib.Sequential([nnlib.Dense(1, 1, random_state=0),
                              nnlib.Dense(1, 2, "sigmoid", random_state=1)])
    return model.loss_and_grads(np.array([[np.inf]]), np.array([0]))


def _loss_grads_penalty_overflow():
    model = nnlib.Sequential([nnlib.Dense(1, 2, init="zeros")])
    model.layers[0].W[...] = 1.34e154            # sum W^2 overflows, the data loss does not
    return model.loss_and_grads(np.zeros((1, 1)), np.array([0]), l2=1.0)


REGRESSIONS = [
    ("dense-too-many-weights", lambda: nnlib.Dense(10 ** 10, 10 ** 10), ShapeError,
     "too many weights"),
    ("dense-negative-seed", lambda: nnlib.Dense(2, 3, random_state=-1), ValueError,
     "random_state must be >= 0"),
    ("mlp-datetime-X", lambda: nnlib.MLPRegressor().fit(
        np.array([["2020-01-01"]] * 3, dtype="M8[D]"), [1.0, 2.0, 3.0]), DTypeError,
     "X must hold numbers"),
    ("linreg-datetime-y", lambda: nnlib.LinearRegression().fit(
        np.ones((3, 1)), np.array([1, 2, 3], dtype="m8[s]")), DTypeError, "numeric target"),
    ("mlp-early-stopping-one-sample", lambda: nnlib.MLPRegressor(
        early_stopping=True, solver="sgd").fit([[0.0]], [1.0]), ValueError,
     "validation set is too small"),
    ("linreg-fit-intercept-string", lambda: nnlib.LinearRegression(fit_intercept="no").fit(
        np.ones((3, 1)), np.ones(3)), TypeError, "fit_intercept must be True or False"),
    ("logreg-fit-intercept-int", lambda: nnlib.LogisticRegression(fit_intercept=1).fit(
        *_xor_data()), TypeError, "fit_intercept"),
    ("perceptron-shuffle-string", lambda: nnlib.Perceptron(shuffle="yes").fit(*_xor_data()),
     TypeError, "shuffle must be True or False"),
    ("logreg-auto-lr-huge-X", lambda: nnlib.LogisticRegression().fit(
        [[1e200], [-1e200]], [0, 1]), ValueError, "learning_rate='auto' cannot handle"),
    ("threshold-nan-weight", lambda: nnlib.ThresholdNetwork([[[np.nan]]], [[0.0]]),
     NonFiniteError, r"weights\[0\] must be finite"),
    ("threshold-overflow", lambda: nnlib.ThresholdNetwork([[[2.0]], [[0.0]]], [[0.0], [0.0]],
                                                          "identity").predict([[1e308]]),
     NonFiniteError, "output for row 0 of X is not finite"),
    ("mlp-predict-proba-overflow", lambda: _big_weights(_fitted(nnlib.MLPClassifier(
        hidden_layer_sizes=(3,), solver="lbfgs", activation="identity", random_state=0),
        np.eye(3), [0, 1, 2])).predict_proba([[1e308, 1e308, 1e308]]), NonFiniteError,
     "MLPClassifier's output for row 0"),
    ("linreg-predict-overflow", lambda: _fitted(nnlib.LinearRegression(), np.eye(2),
                                                [1.0, 5.0]).predict([[0.0, 1e308]]),
     NonFiniteError, "LinearRegression's output"),
]


@pytest.mark.parametrize("fn, exc, message", [c[1:] for c in REGRESSIONS],
                         ids=[c[0] for c in REGRESSIONS])
def test_regressions_found_by_fuzzing(fn, exc, message):
    with pytest.raises(exc, match=message):
        fn()


def test_logistic_regression_auto_lr_on_all_zero_X():
    """L = 0 (X = 0, no intercept, alpha = 0) gave lr = 1/0 = inf and a complaint about
    an lr the user never passed; E is constant there, so w = 0 is the answer at once."""
    m = nnlib.LogisticRegression(fit_intercept=False).fit(np.zeros((2, 1)), [0, 1])
    assert m.converged_ and m.learning_rate_ == 1.0 and not m.coef_.any()
    m = nnlib.LogisticRegression(fit_intercept=False, alpha=5e-324).fit(np.zeros((2, 1)),
                                                                       [0, 1])
    assert m.learning_rate_ == 1.0 and not m.coef_.any()     # 1/L was 1/5e-324 = inf


@pytest.mark.parametrize("fn, what", [(_loss_grads_inf_x, "gradient"),
                                      (_loss_grads_penalty_overflow, "loss")],
                         ids=["inf-input-nan-dW-finite-db", "l2-penalty-overflow"])
def test_loss_and_grads_warns_on_every_nonfinite_result(fn, what):
    """The kernel's status missed these: NaN in dW next to a finite db (a non-finite
    hidden output), and a loss made infinite by the L2 penalty."""
    with pytest.warns(RuntimeWarning, match=f"the {what} is not finite"):
        value, grads = fn()
    assert not (np.isfinite(value) and all(np.isfinite(g).all() for g in grads))


def test_validation_overflow_during_fit_is_reported_as_divergence():
    """Finite weights whose output on the validation rows overflows (float32 X ~ 2e8 after
    a few large steps, found by the fuzzer) made fit raise predict's NonFiniteError; it is
    the documented divergence error now."""
    class Overflowing(nnlib.MLPRegressor):
        def _score_validation(self, X, y):
            raise NonFiniteError("MLPRegressor's output for row 0 of X is not finite")

    with pytest.raises(ValueError, match="non-finite parameter weights or outputs"):
        Overflowing(early_stopping=True, solver="sgd", max_iter=2).fit(
            np.arange(40.0).reshape(20, 2), np.arange(20.0))
