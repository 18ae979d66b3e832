"""Fuzzing ``Sequential.fit``: any data, optimizer and fit arguments.

A fit that diverges (huge inputs, huge learning rates) must stop as documented (a
RuntimeWarning, ``history.stop_reason == "nonfinite"``) and leave the weights of the
last finite step: replaying that many steps from the initial weights must give them
bitwise. Valid fits with smooth activations and losses follow the trajectory of the
twin of the compiled epoch (``nnlib._reference.train``, through tests/_twin_fit.py).

What an example may do (the documented error or a checked result) and how many run:
the models-and-estimators section of tests/_fuzz.py.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlib
from nnlib import optim as O
from nnlib._validation import NonFiniteError, ShapeError
from nnlib.layers import INITIALIZERS

from tests._fuzz import (COUNTS, F64, LOSSES, UNIT, assert_unchanged, call_expecting,
                         chance, data_x, fraction_settings, loss_model_errors,
                         model_counts_reporter, models, one_bad, outputs_for, range_errors,
                         scalar_errors, snapshot, threads_errors, x_errors, y_for)
from tests._twin_fit import reference_fit

# Random values overflow in the oracles' own arithmetic and in float casts; expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

_report_counts = model_counts_reporter(["sequential.fit"], "fuzz Sequential.fit")


# Valid hyperparameters per optimizer (the optimizer's own argument checks are fuzzed by
# tests/test_fuzz_optim.py; here lr is the one drawn out of range).
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
    epochs=st.sampled_from([-1, 2.0, None, True]), batch_size=st.sampled_from([0, -2, 1.5, True]),
    l2=st.sampled_from([-0.1, np.nan, np.inf, "0"]), margin=st.sampled_from([-1.0, np.inf]),
    random_state=st.sampled_from([-1, "0", 1.5]), validation_split=st.sampled_from([1.0, -0.1, 2]),
    n_threads=st.sampled_from([0, -1, 1.5]))


def _fit_kwarg_errors(kw):
    errs = scalar_errors(kw["epochs"], "epochs", integer=True, low=0)
    errs += scalar_errors(kw["batch_size"], "batch_size", integer=True, low=1)
    errs += scalar_errors(kw["l2"], "l2", low=0.0)
    errs += scalar_errors(kw["margin"], "margin", low=0.0)
    rs = kw["random_state"]
    if not isinstance(rs, int):
        errs.append((TypeError, "random_state"))
    elif rs < 0:
        errs.append((ValueError, "random_state"))
    errs += scalar_errors(kw["validation_split"], "validation_split", low=0.0, high=1.0,
                          high_open=True)
    if kw["n_threads"] is not None:
        errs += threads_errors(kw["n_threads"])
    return errs


@st.composite
def fit_kwargs(draw):
    """fit's scalar arguments, valid, or (one time in four) with one out of range.
    Returns (kwargs, errors)."""
    kw = one_bad(draw, FIT_VALID, FIT_BAD)
    return kw, _fit_kwarg_errors(kw)


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


@fraction_settings(0.6)
@given(loss_model=st.sampled_from(LOSSES).flatmap(
    lambda loss: st.tuples(st.just(loss), models(n_out=outputs_for(loss), wild_weights=False))),
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
    n = 0 if chance(data.draw, 0.1) else data.draw(st.integers(1, 8))
    X = data_x(data.draw, model.n_in, n)
    expected = list(expected)
    try:
        optimizer = make_opt()
    except ValueError as e:                         # lr out of range: the optimizer says
        assert "lr" in str(e)
        COUNTS["models.sequential.fit"]["raised"] += 1
        return
    # An lr beyond a float32 model's range is refused when training starts; with
    # epochs=0 fit may or may not get that far.
    lr_errors = range_errors(optimizer.lr, "lr", model.dtype)
    trains = isinstance(kw["epochs"], int) and kw["epochs"] > 0
    expected += lr_errors if trains else []
    allowed = [] if trains else lr_errors
    # Every problem drawn is listed; fit may report any one of them first.
    x_errs = x_errors(X, model.n_in)
    expected += x_errs
    Xa = np.asarray(X)
    if not x_errs:
        Xc = Xa.astype(model.dtype)
        if not np.isfinite(Xc).all():
            expected.append((NonFiniteError, "X"))
    y, y_errs = y_for(data.draw, loss, np.shape(X)[0] if np.ndim(X) else n, model.n_out,
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
    expected += loss_model_errors(loss, model.n_out) + y_errs
    w0 = [p.copy() for p in model.params]
    before = snapshot(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok, hist = call_expecting("sequential.fit", model.fit, (X, y), dict(
            loss=loss, optimizer=optimizer, **kw), expected, allowed)
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
    assert set(stop) == {"epoch", "step", "what", "cause"} and stop["epoch"] < kw["epochs"]
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


@fraction_settings(0.4)
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
    y, errs = y_for(data.draw, loss, n, model.n_out, bad_p=0.0)
    if loss == "squared_error":
        y = np.clip(np.nan_to_num(np.asarray(y, dtype=np.float64)), -10, 10)
    kw = dict(epochs=data.draw(st.integers(1, 3)), batch_size=data.draw(st.integers(1, 8)),
              l2=data.draw(st.one_of(st.just(0.0), st.floats(0, 0.1))),
              l2_per_batch=data.draw(st.booleans()), shuffle=data.draw(st.booleans()),
              random_state=data.draw(st.integers(0, 2 ** 32)))
    optimizer = make_opt()
    want, want_losses = reference_fit(model, X, y, loss, make_opt(), **kw)
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
