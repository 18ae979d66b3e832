"""Fuzzing nnlib.optim: random rules, hyperparameters, parameter lists and gradients.

Each example builds an optimizer from hyperparameters drawn from the valid range (or,
sometimes, one out-of-range value, which must raise at construction), then takes a few
``step``s on a list of parameter arrays of random shapes (zero sizes included), dtypes
and values (+-inf, NaN, huge and tiny), sometimes with mismatched gradients (which must
raise before anything is written). After every step the parameters and the optimizer
state must equal those of the NumPy twin ``nnlib._reference.optim.optim_step`` run on
copies.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("nnlib.optim")

import nnlib.optim as O  # noqa: E402
from nnlib._reference.optim import optim_step as twin_step  # noqa: E402
from nnlib._validation import DTypeError, ShapeError  # noqa: E402
from tests._fuzz import (FUZZ_SETTINGS, TOL, call, report_counts, shapes,  # noqa: E402
                         snapshot, assert_unchanged)

# Random values overflow in the oracles' own arithmetic and in float casts; that is
# expected here and not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

UNIT = st.floats(0, 0.999)
POS = st.floats(1e-12, 1e-2)
NONNEG = st.floats(0, 1)
BOOL = st.booleans()

# Valid hyperparameter draws per rule; then one can be replaced by a bad value.
HYPER = {
    O.SGD: dict(lr=NONNEG, momentum=UNIT, dampening=NONNEG, weight_decay=NONNEG),
    O.Adagrad: dict(lr=NONNEG, lr_decay=NONNEG, weight_decay=NONNEG,
                    initial_accumulator_value=NONNEG, eps=POS),
    # alpha >= 0.5: centered RMSprop with alpha ~ 0 computes var = g^2 - g^2, pure
    # rounding (float32 state vs float64 twin), then divides by eps: ill-conditioned.
    O.RMSprop: dict(lr=NONNEG, alpha=st.floats(0.5, 0.999), eps=POS, weight_decay=NONNEG, momentum=UNIT,
                    centered=BOOL),
    O.Adam: dict(lr=NONNEG, betas=st.tuples(UNIT, UNIT), eps=POS, weight_decay=NONNEG,
                 amsgrad=BOOL),
    O.AdamW: dict(lr=NONNEG, betas=st.tuples(UNIT, UNIT), eps=POS, weight_decay=NONNEG,
                  amsgrad=BOOL),
    O.NotesMomentum: dict(lr=NONNEG, beta=st.floats(1e-6, 1)),
    O.NotesAdaGrad: dict(lr=NONNEG, eps=POS),
    O.SklearnSGD: dict(lr=NONNEG, momentum=st.floats(0, 1), nesterov=BOOL),
    O.SklearnAdam: dict(lr=NONNEG, beta_1=UNIT, beta_2=UNIT, epsilon=POS),
}
BAD_VALUES = st.sampled_from([-1.0, np.nan, np.inf, -np.inf, "0.1", None, 1.5, 2.0])


def _is_bad(cls, key, value):
    """Whether ``value`` is outside the documented range of hyperparameter ``key``."""
    if key in ("centered", "amsgrad", "nesterov"):
        return not isinstance(value, bool)
    if key == "betas":
        return True                   # a scalar where a pair is required
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    if not np.isfinite(value) or value < 0:
        return True
    if key in ("momentum", "alpha", "beta_1", "beta_2"):
        return value > 1 or (value == 1 and cls is not O.SklearnSGD)
    if key in ("dampening", "beta"):
        return value > 1
    return False


@st.composite
def optimizers(draw):
    """(class, kwargs, must_raise)."""
    cls = draw(st.sampled_from(list(HYPER)))
    kwargs = {k: draw(v) for k, v in HYPER[cls].items() if draw(st.booleans())}
    bad = False
    if draw(st.integers(0, 5)) == 0:
        key = draw(st.sampled_from(sorted(HYPER[cls])))
        kwargs[key] = draw(BAD_VALUES)
        bad = _is_bad(cls, key, kwargs[key])
    if cls is O.SGD and draw(st.booleans()):
        kwargs["nesterov"] = True
        m, d = kwargs.get("momentum", 0.0), kwargs.get("dampening", 0.0)
        ok = isinstance(m, float) and isinstance(d, float)
        bad = bad or not (ok and m > 0 and d == 0)
    return cls, kwargs, bad


# Magnitudes stay below sqrt(max float) so that g**2 in the rules' state does not
# overflow (there the kernel's fused multiply-adds and the twin legitimately differ:
# centered RMSprop's s - a*a is inf - inf = NaN in the twin, inf with an FMA); +-inf and
# NaN themselves are drawn, to check they neither crash nor spread to other elements.
VALUES = {np.dtype(np.float64): st.one_of(st.floats(-10, 10), st.floats(-1e150, 1e150),
                                          st.sampled_from([np.inf, -np.inf, np.nan, 5e-324,
                                                           0.0, -0.0])),
          np.dtype(np.float32): st.one_of(st.floats(-10, 10, width=32),
                                          st.floats(-2.0 ** 60, 2.0 ** 60, width=32),
                                          st.sampled_from([np.inf, -np.inf, np.nan, 1e-45,
                                                           0.0]))}


@st.composite
def param_lists(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    k = draw(st.integers(1, 3))
    # Parameters are finite (a model's weights); only the gradients get inf/NaN. (With an
    # inf weight the kernel's branch-free weight decay g + 0 * w is NaN where the twin
    # skips it: a difference only for already-broken weights.)
    params = [draw(hnp.arrays(dtype, draw(shapes(max_dims=2, max_side=5)),
                              elements=VALUES[dtype].filter(np.isfinite)))
              for _ in range(k)]
    return dtype, params


@st.composite
def grad_lists(draw, params):
    """(grads, expected error or None): matching grads, or one specific mismatch."""
    grads = [draw(hnp.arrays(p.dtype, p.shape, elements=VALUES[p.dtype])) for p in params]
    mistake = draw(st.sampled_from([None] * 5 + ["shape", "dtype", "count"]))
    if mistake == "shape":
        i = draw(st.integers(0, len(params) - 1))
        grads[i] = np.zeros(params[i].shape + (2,), dtype=params[i].dtype)
        return grads, ShapeError
    if mistake == "dtype":
        i = draw(st.integers(0, len(params) - 1))
        other = np.float32 if params[i].dtype == np.float64 else np.float64
        grads[i] = grads[i].astype(other)
        return grads, DTypeError
    if mistake == "count":
        return grads + [grads[0]], ValueError
    return grads, None


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    report_counts(request, "optim", "fuzz nnlib.optim")


def _close(got, want, dtype, scale, floor):
    """Same finite positions; finite values within 8 rtol plus 16 ulps of ``scale``
    (float32 rules may round intermediates: m / (sqrt(v) + eps) for a weight-decayed
    parameter near 0 cancels to ~1e-8 while its terms are ~1e-3)."""
    # Non-finite where the twin is (inf - inf may be NaN in one and inf in the other).
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    err = np.abs(got[fin].astype(np.float64) - want[fin])
    bound = (8 * TOL[dtype]["rtol"] * np.abs(want[fin])
             + 16 * np.finfo(dtype).eps * np.broadcast_to(scale, got.shape)[fin] + floor)
    assert (err <= bound).all(), (got[fin][err > bound], want[fin][err > bound])


@FUZZ_SETTINGS
@given(opt=optimizers(), plist=param_lists(), data=st.data())
def test_fuzz_optimizer_steps(opt, plist, data):
    cls, kwargs, bad = opt
    made = call("optim.construct", cls, (), kwargs, [ValueError, TypeError] if bad else [])
    if made is None:
        return
    dtype, params = plist
    twin_params = [p.reshape(-1).copy() for p in params]
    twin_state = [s.copy() for s in made.state_arrays(params)]   # initial state (zeros,
    # or Adagrad's initial_accumulator_value), created on first use
    # Elements that have seen a NaN/inf gradient: the rules are elementwise, so these may
    # differ from the twin (C's fmax drops NaN where np.maximum keeps it: amsgrad's max)
    # but must not affect any other element.
    poisoned = [np.zeros(p.size, dtype=bool) for p in params]
    for t in range(1, data.draw(st.integers(1, 3)) + 1):
        grads, err = data.draw(grad_lists(params))
        before = snapshot(*params, *grads)
        out = call("optim.step", made.step, (params, grads), {}, [err] if err else [])
        if out is None and err is not None:
            assert_unchanged(before, params + grads)     # refused before writing
            assert made.t == t - 1
            return
        assert_unchanged(before[len(params):], grads)
        cfg = made.config()
        state = made.state_arrays(params)
        assert made.t == t
        lr, eps = cfg["lr"], cfg["eps"]
        # Below the normal range float32 state rounds to a few bits, and the twin keeps
        # its float64 intermediates: allow tiny * the rule's largest gain lr / eps.
        floor = np.finfo(dtype).tiny * (1 + (lr / eps if eps > 0 else lr))
        with np.errstate(all="ignore"):
            for p, tp, g, s, ts, bad in zip(params, twin_params, grads, state, twin_state,
                                            poisoned):
                tp0, ts0, g = tp.astype(np.float64), ts.astype(np.float64), g.reshape(-1)
                twin_step(cfg, tp, g, ts, t, 1)
                bad |= ~np.isfinite(g)
                ok = ~bad
                g = np.abs(g.astype(np.float64))
                _close(p.reshape(-1)[ok], tp[ok], dtype,
                       (np.abs(tp0) + np.abs(tp) + lr * (1 + g + np.abs(tp0)))[ok], floor)
                _close(s[:, ok], ts[:, ok], dtype,
                       (np.abs(ts0) + np.abs(ts) + g + g * g + np.abs(tp0))[:, ok], floor)
