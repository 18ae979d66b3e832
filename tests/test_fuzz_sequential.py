"""Fuzzing a built ``Sequential``: ``forward``/``predict`` and ``loss_and_grads``
on any data and any weights (edge values included), compared with a chain of
the ``nnlib._reference`` twins (forward, loss, backprop) within error bounds
derived from the magnitudes involved.

What an example may do (the documented error or a checked result) and how many run:
the models-and-estimators section of tests/_fuzz.py.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnlib._reference as R
from nnlib._reference import train as twin
from nnlib._codes import ACTIVATION_PARAMS, LOSS_CODES
from nnlib._validation import NonFiniteError, ShapeError

from tests._fuzz import (EPS, F64, LOSSES, WILD, assert_unchanged, call_expecting, data_x,
                         fraction_settings, loss_model_errors, model_counts_reporter,
                         models, one_bad, outputs_for, range_errors, scalar_errors,
                         snapshot, threads_errors, x_errors, y_for)
from tests._twin_fit import make_setup

# Random values overflow in the oracles' own arithmetic and in float casts; expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

_report_counts = model_counts_reporter(["sequential.forward", "sequential.loss_and_grads"],
                                       "fuzz Sequential forward and loss_and_grads")


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


@fraction_settings(1.0)
@given(model=models(), data=st.data())
def test_fuzz_forward_and_predict(model, data):
    X = data_x(data.draw, model.n_in, data.draw(st.integers(0, 6)), p_wild=0.5,
               bad_shape_p=0.2)
    use_predict = data.draw(st.booleans())
    valid = dict(n_threads=st.sampled_from([None, 1, 2]))
    bad = dict(n_threads=st.sampled_from([0, -1, 1.5, True, "2"]))
    if use_predict:
        valid["batch_size"] = st.integers(1, 6)
        bad["batch_size"] = st.sampled_from([0, -3, 2.0, True])
    kwargs = one_bad(data.draw, valid, bad)
    expected = x_errors(X, model.n_in) + threads_errors(kwargs["n_threads"])
    if use_predict:
        expected += scalar_errors(kwargs["batch_size"], "batch_size", integer=True, low=1)
    allowed = []
    chain = None
    if not x_errors(X, model.n_in):
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
    ok, out = call_expecting("sequential.forward", fn, (X,), kwargs, expected, allowed)
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
    # a rounding into the subnormal range errs by up to half its spacing, whatever the
    # magnitudes: the relative bound alone can fall below what the dtype can represent
    floor = 4 * len(chain) * np.finfo(model.dtype).smallest_subnormal
    _assert_close(out, last["H"], 4 * len(chain) * last["lip"] * last["B"]
                  + 8 * EPS[model.dtype] * np.abs(last["H"]) + floor, "forward")


def _ref_loss_and_grads(model, X, y, loss, l2, margin):
    """The twin's ``loss_grad`` (``nnlib._reference.train``) on the model: (loss,
    [dW1, db1, ...] in float64, the data loss's gradient with respect to the output)."""
    setup = make_setup(twin, model, X, y, loss, l2=l2, margin=margin)
    dWs = [np.empty_like(layer.W) for layer in model.layers]
    dbs = [np.empty_like(layer.b) for layer in model.layers]
    value, _ = twin.loss_grad(setup, dWs, dbs)
    n = setup.X.shape[0]
    _, dz = twin._data_loss(setup, setup.workspace.H[-1][:n], np.arange(n))
    grads = [g.astype(np.float64) for pair in zip(dWs, dbs) for g in pair]
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


@fraction_settings(1.0)
@given(loss_model=st.sampled_from(LOSSES).flatmap(
    lambda loss: st.tuples(st.just(loss), models(n_out=outputs_for(loss)))), data=st.data())
def test_fuzz_loss_and_grads(loss_model, data):
    loss, model = loss_model
    kw = one_bad(data.draw, dict(loss=st.just(loss), l2=st.one_of(st.just(0.0), st.floats(0, 1)),
                                 margin=st.one_of(st.just(1.0), st.floats(0, 2)),
                                 n_threads=st.sampled_from([None, 1, 2])),
                 dict(loss=st.sampled_from(["cross_entropy", None, 0]), l2=WILD, margin=WILD,
                      n_threads=st.sampled_from([0, -1, 1.5, True, "2"])))
    loss, l2, margin, n_threads = kw["loss"], kw["l2"], kw["margin"], kw["n_threads"]
    n = data.draw(st.integers(1, 5))
    X = data_x(data.draw, model.n_in, n, p_wild=0.5, bad_shape_p=0.1)
    expected = threads_errors(n_threads)
    if loss not in LOSS_CODES:
        expected.append((ValueError, "loss"))
    expected += (scalar_errors(l2, "l2", low=0.0) or range_errors(l2, "l2", model.dtype))
    expected += scalar_errors(margin, "margin", low=0.0)
    expected += x_errors(X, model.n_in)
    y = None
    if loss in LOSS_CODES:
        expected += loss_model_errors(loss, model.n_out)
        y, y_errs = y_for(data.draw, loss, np.shape(X)[0] if np.ndim(X) else n,
                          model.n_out, dtype=model.dtype)
        expected += y_errs
        if np.ndim(X) == 2 and np.shape(X)[0] == 0:
            expected.append((ShapeError, "at least one row"))
    before = snapshot(X, y, *model.params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok, out = call_expecting("sequential.loss_and_grads", model.loss_and_grads, (X, y),
                                 dict(loss=loss, l2=l2, margin=margin, n_threads=n_threads),
                                 expected)
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
    # no penalty at all for l2 = 0, as in the kernel: huge weights make sum W^2 = inf
    l2_term = float(l2) * sum(float(np.sum(l.W.astype(np.float64) ** 2))
                              for l in model.layers) if l2 else 0.0
    _assert_close(value, want, spread + 64 * EPS[model.dtype] * (
        abs(want) + last["S"].max(axis=1).mean() + l2_term), "loss")
