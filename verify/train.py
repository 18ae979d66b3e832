"""The compiled training epoch (``nnlib._kernels.train``): the objective of one mini-batch
step derived in SymPy and the closed forms the loop uses proved equal to its gradient; then
the compiled ``run_epoch`` run for a few steps and measured against an exact replay.

Design note
-----------
Proof. A 2-2-2 network on B = 2 rows is written as matrices of symbols, with an undefined
activation ``g`` and an undefined per-row loss ``ell_i(z)`` (one per row: the label or
target is part of the row's function), so each claim holds for every activation and loss at
once. The batch objective is

    J(W, b) = (1/B) sum_i ell_i(z_i) + l2_eff/2 sum_l ||W_l||^2     (biases not penalized)

SymPy differentiates J with respect to every weight and bias; the closed forms of
train.pyx (``dZ_L = (1/B) d ell/dz`` row by row, ``dZ_l = dZ_{l+1} W_{l+1}^T * g'(Z_l)``,
``dW_l = H_{l-1}^T dZ_l + l2_eff W_l``, ``db_l = 1^T dZ_l``) are shown equal entry by entry
(diff + expand). The fused plain-SGD update is then shown equal to the optimizer rule of
``verify.optim`` (``g <- g + wd w; w <- w - lr g``) applied to that gradient, and the
per-batch L2 (``l2_per_batch``) and the reported loss are shown to be what they claim.

Evidence. For each optimizer configuration of ``verify.optim.CONFIGS`` (weight decay
switched on in the config where the class leaves it 0; the compiled rules apply it for
every kind), a 3-4-C network (hidden activation from the registry, identity output) is
trained by the compiled ``run_epoch`` over 7 rows in batches of 3 (3, 3 and a 1-row batch,
which takes the loop's no-copy path), then one more step through a second call (``step0``
= 3, ``max_steps`` = 1), with L2 on. The replay starts from the same float values (the
arrays' exact binary values) and recomputes every step in mpmath at 50 and at 100 digits
(agreeing to 30 digits: the oracle settled): the forward pass from the registry's
definitions, the per-row loss from its definition (its smooth piece at the point for
sparsemax and hinge), the gradients by ``sympy.diff`` of those expressions, the update
from the symbolic rule. A point within ``BOUNDARY`` of a kink (activation, hinge, sparsemax
support change) is refused and the data redrawn: there the rounded and the exact
trajectories may take different pieces. So is a gradient that cancels by more than
``COND_MAX`` under a rule that divides by the root of the squared gradients
(``Replay._conditioning``: the exact step is ill-conditioned in g there).

Before training, ``loss_grad`` (the full-batch objective with ``l2`` as given, and its
gradient) is measured at the starting point the same way. Every weight, bias, optimizer
state value, loss_grad's gradients and loss, and both calls' ``loss_sum`` are compared in ULPs
of the run's dtype (``verify.evidence.measure``). Matrix products and sums round in
proportion to their largest terms, so a value also passes within ``abs_eps`` eps of the
largest exact value of its group (normwise; the groups: all weights and biases, all of
loss_grad's gradients, one optimizer state slot across all parameters). A slipped factor anywhere in the step (the L2
term, the mean, the bias step, the step count) moves values by ~1e-3 relative: millions of
ulps.
"""
import ast
import functools
import itertools
import time

import mpmath
import numpy as np
import sympy as sp

from verify import kernels as K
from verify import optim as O
from verify.evidence import MPMATH, lambdify, measure, measure_with_difference, mp_exp
from verify.losses import _ce, _logistic_def, _zl
from verify.proofs import Proof
from verify.registry import ACTIVATIONS, Tolerance, z

__all__ = ["prove_epoch", "check_epoch", "run_train", "compiled_api", "TOL", "LOSSES"]

LOSSES = ["softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss",
          "hinge_loss"]
N_IN, N_HID, N_ROWS, BATCH = 3, 4, 7, 3
L2, WD = 0.1, 0.05
BOUNDARY = 1e-3            # refuse points this close to a kink (|z - kink|, |h|, ties)
DPS = (50, 100)            # the replay's two precisions
# Rules that divide by a root of the squared gradients: scale-free in g (Replay._conditioning)
NORMALIZED = ("Adagrad", "RMSprop", "Adam", "AdamW", "NotesAdaGrad", "SklearnAdam")
COND_MAX = 1e4             # refuse their gradients that cancel by more than this
# Committed tolerances per dtype: a value passes within ``ulps`` of its exact value or
# within ``abs_eps`` eps of its group's largest; a loss within ``ulps``. Measured over 12
# seeds of the full run: float64 <= 13 eps normwise, losses <= 21 ulp; float32 <= 23 eps
# normwise, losses <= 28 ulp. A slipped factor moves values by ~1e10 eps and more.
TOL = {"float64": Tolerance(64, 64, "matrix products round in proportion to their "
                                    "largest terms: normwise bound for small entries"),
       "float32": Tolerance(128, 64, "float32 H, dZ and states are rounded every step: "
                                     "normwise bound for small entries")}
TINY = 2.0 ** -20   # values below TINY x their group's largest are left out of max_ulps


def compiled_api():
    """The compiled training module (``nnlib._kernels.train``) or None. Its GEMM calls go
    through the BLAS that ``nnlib._kernels.blas.load()`` resolves (once per process, as
    nnlib's Python side does before training)."""
    blas = K.nnlib_attr("_kernels.blas")
    if blas is not None:
        blas.load()
    return K.nnlib_attr("_kernels.train")


# ------------------------------------------------------------------------------ proof

def _symbols(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def prove_epoch(B=2, sizes=(2, 2, 2)):
    """Prove the closed forms of one training step of train.pyx for any activation and
    any per-row loss (undefined SymPy functions)."""
    pr = Proof("train")
    n0, n1, c = sizes
    X = _symbols("x", B, n0)
    Ws = [_symbols("W1", n0, n1), _symbols("W2", n1, c)]
    bs = [_symbols("b1", 1, n1), _symbols("b2", 1, c)]
    act = sp.Function("g")
    ells = [sp.Function(f"ell_{i}") for i in range(B)]
    l2e, l2, s_rep = sp.symbols("lambda_eff lambda s", positive=True)
    lr, wd = O.lr, O.wd
    ones = sp.ones(B, 1)
    Z1 = X * Ws[0] + ones * bs[0]
    H1 = Z1.applyfunc(act)
    Z2 = H1 * Ws[1] + ones * bs[1]
    data = sum(ells[i](*Z2.row(i)) for i in range(B)) / B
    pen = sum(e ** 2 for W in Ws for e in W) / 2
    J = data + l2e * pen
    # the closed forms of train.pyx
    zs, u = sp.symbols(f"z0:{c}", real=True), sp.Symbol("u", real=True)
    dZ2 = sp.Matrix(B, c, lambda i, j: sp.diff(ells[i](*zs), zs[j]).subs(
        dict(zip(zs, Z2.row(i)))) / B)
    dZ1 = (dZ2 * Ws[1].T).multiply_elementwise(
        Z1.applyfunc(lambda e: sp.diff(act(u), u).subs(u, e)))
    closed = {"W_2": (Ws[1], H1.T * dZ2 + l2e * Ws[1]), "b_2": (bs[1], ones.T * dZ2),
              "W_1": (Ws[0], X.T * dZ1 + l2e * Ws[0]), "b_1": (bs[0], ones.T * dZ1)}
    derived = {}
    for name, (M, cf) in closed.items():
        d = sp.Matrix(*M.shape, lambda i, j: sp.diff(J, M[i, j]))
        derived[name] = d
        ok = (d - cf).applyfunc(sp.expand) == sp.zeros(*M.shape)
        tex = (rf"H_{{{int(name[2]) - 1}}}^\top dZ_{name[2]} + \lambda_{{eff}} {name}"
               if name[0] == "W" else rf"\mathbf 1^\top dZ_{name[2]}")
        pr.add(rf"\partial J/\partial {name} = {tex}\quad(\text{{all {len(M)} entries}};\ "
               rf"dZ_2 = \tfrac1B \partial\ell/\partial z,\ dZ_1 = dZ_2 W_2^\top \odot "
               rf"g'(Z_1))", ok, "diff + expand, generic g and ell_i",
               None if ok else "failed")
    dpen = [sp.diff(l2e * pen, e) - l2e * e for W in Ws for e in W]
    pr.add(r"\nabla_W \tfrac{\lambda_{eff}}2 \textstyle\sum_l \lVert W_l\rVert^2 = "
           r"\lambda_{eff} W,\ \nabla_b = 0", all(sp.expand(d) == 0 for d in dpen) and all(
               sp.diff(pen, e) == 0 for b in bs for e in b), "diff")
    # l2_per_batch: scikit-learn's (1/B)(sum_i ell_i + l2/2 ||W||^2) is J with l2/B
    J_sk = (B * data + l2 * pen) / B
    ok = sp.expand(J_sk - J.subs(l2e, l2 / B)) == 0 and all(
        sp.expand(sp.diff(J_sk, e) - sp.diff(J, e).subs(l2e, l2 / B)) == 0
        for W in Ws for e in W)
    pr.add(r"\text{l2\_per\_batch: } \tfrac1B\big(\textstyle\sum_i \ell_i + "
           r"\tfrac\lambda2\sum_l\lVert W_l\rVert^2\big) = J|_{\lambda_{eff} = \lambda/B}"
           r"\text{ (value and every } \partial/\partial W)", ok, "expand",
           None if ok else "failed")
    # the fused plain-SGD update is the SGD rule applied to dJ/dW and dJ/db
    rule = O.symbolic_rule("SGD", {"momentum": 0.0})

    def apply_rule(wv, gv):
        env = {O.w: wv, O.g: gv}
        for lhs, rhs in rule:
            env[lhs] = rhs.subs(env, simultaneous=True)
        return env[O.w]
    ok_w = all(sp.expand(apply_rule(W[k], derived[n][k])
                         - ((1 - lr * (l2e + wd)) * W[k] - lr * (H.T * dZ)[k])) == 0
               for n, W, H, dZ in (("W_1", Ws[0], X, dZ1), ("W_2", Ws[1], H1, dZ2))
               for k in range(len(W)))
    pr.add(r"\text{fused SGD: } (1 - \eta(\lambda_{eff} + \mathrm{wd})) W - \eta H^\top dZ"
           r" = W - \eta(\partial J/\partial W + \mathrm{wd}\,W)", ok_w,
           "expand (the rule of verify.optim.SGD, momentum 0)",
           None if ok_w else "failed")
    ok_b = all(sp.expand(apply_rule(b[k], derived[n][k])
                         - ((1 - lr * wd) * b[k] - lr * (ones.T * dZ)[k])) == 0
               for n, b, dZ in (("b_1", bs[0], dZ1), ("b_2", bs[1], dZ2))
               for k in range(len(b)))
    pr.add(r"\text{bias step: } (1 - \eta\,\mathrm{wd})\, b - \eta \textstyle\sum_{rows} dZ"
           r" = b - \eta(\partial J/\partial b + \mathrm{wd}\,b)\ \text{(dZ carries the }"
           r"1/B\text{ of the mean)}", ok_b, "expand", None if ok_b else "failed")
    # the reported loss
    rep = s_rep * data + l2e * pen
    ok_r = sp.expand(rep.subs(s_rep, 1) - J) == 0
    pr.add(r"\text{reported } s\cdot\text{data} + \tfrac{\lambda_{eff}}2\sum\lVert W\rVert^2"
           r" = J \text{ at } s = 1", ok_r, "expand", None if ok_r else "failed")
    ts = _symbols("t", B, c)
    sq = sp.Rational(1, 2) * sum((Z2[i, j] - ts[i, j]) ** 2 for i in range(B)
                                 for j in range(c))
    mean_sq = sum((Z2[i, j] - ts[i, j]) ** 2 for i in range(B) for j in range(c)) / (B * c)
    ok_s = sp.expand(sp.Rational(1, c) * sq / B - mean_sq / 2) == 0
    pr.add(r"s = 1/c \text{ with squared error: } s\,\tfrac1B\sum_i\tfrac12\lVert z_i - t_i"
           r"\rVert^2 = \tfrac12\operatorname{mean}_{ij}(z_{ij} - t_{ij})^2 \text{ "
           r"(scikit-learn's squared loss; the gradient stays that of } J)", ok_s, "expand",
           None if ok_s else "failed")
    pr.derived = (r"\partial J/\partial W_l = H_{l-1}^\top dZ_l + \lambda_{eff} W_l,\ "
                  r"\partial J/\partial b_l = \mathbf 1^\top dZ_l")
    pr.closed = (r"W \leftarrow (1 - \eta(\lambda_{eff} + \mathrm{wd}))W - \eta H^\top dZ,\ "
                 r"b \leftarrow (1 - \eta\,\mathrm{wd})b - \eta\,\mathbf 1^\top dZ")
    return pr


# ------------------------------------------------------------------------- the replay

class _Boundary(ValueError):
    """The exact trajectory passes within BOUNDARY of a kink: redraw the data."""


_CACHE = {}
# mpmath's arithmetic on the values' _mpf_ tuples, for the replay's hot loops (the same
# operations and roundings as the mpf operators and fdot / fsum, without an mpf per
# intermediate)
_LIB = mpmath.libmp
_mpf_add, _mpf_sub, _mpf_mul, _mpf_abs = _LIB.mpf_add, _LIB.mpf_sub, _LIB.mpf_mul, _LIB.mpf_abs
_mpf_sum, _mpf_lt, _mpf_eq = _LIB.mpf_sum, _LIB.mpf_lt, _LIB.mpf_eq
_from_int, _from_float, _FZERO, _FONE = (_LIB.from_int, _LIB.from_float, _LIB.fzero,
                                         _LIB.fone)
_mpf_div, _to_float = _LIB.mpf_div, _LIB.to_float
_mpf_pos, _mpf_neg, _from_man_exp, _bitcount = (_LIB.mpf_pos, _LIB.mpf_neg,
                                                 _LIB.from_man_exp, _LIB.bitcount)
_MPF = type(mpmath.mpf(0))
_BOUNDARY_T = _from_float(BOUNDARY)
_COND_MAX_T = _from_float(COND_MAX)


def _dot(xs, ys, prec, rnd):
    """``mpf_sum([mpf_mul(x, y) for x, y in zip(xs, ys)], prec, rnd)`` (the exact
    products summed as fdot sums them) without a tuple per product: mpf_sum's loop with
    each product's mantissa and exponent made in place. mpf_sum drops a term more than
    ``2 prec`` bits away from the running sum; so does this, by the same tests, so the
    value is mpf_sum's bit for bit. An infinite or NaN factor takes mpf_sum itself."""
    man = exp = 0
    far = prec * 2 or 1000000
    for (xsign, xman, xexp, _), (ysign, yman, yexp, _) in zip(xs, ys):
        pman = xman * yman
        if pman:
            pexp = xexp + yexp
            if xsign ^ ysign:
                pman = -pman
            delta = pexp - exp
            if delta >= 0:
                if delta > far and ((not man) or delta - _bitcount(abs(man)) > far):
                    man, exp = pman, pexp
                else:
                    man += pman << delta
            elif -delta - _bitcount(abs(pman)) > far:
                if not man:
                    man, exp = pman, pexp
            else:
                man = (man << -delta) + pman
                exp = pexp
        elif (not xman and xexp) or (not yman and yexp):        # inf or nan
            return _mpf_sum([_mpf_mul(x, y) for x, y in zip(xs, ys)], prec, rnd)
    return _from_man_exp(man, exp, prec, rnd)


# exp(x) of the replay's activations and losses by x's tuple and the working precision and
# rounding: tanh's definition and derivative take exp(z) and exp(-z) twelve times between
# them, softmax cross-entropy's gradient exp(z_j) c + 1 times per logit. Emptied by each
# Replay (the values of one replay at one precision).
_EXP_MEMO = {}


def _memo_exp(x):
    """``mp_exp(x)``, remembered: the same function of the same value at the same
    precision and rounding."""
    if type(x) is not _MPF:
        return mp_exp(x)
    prec, rnd = mpmath.mp._prec_rounding
    key = (x._mpf_, prec, rnd)
    got = _EXP_MEMO.get(key)
    if got is None:
        got = _EXP_MEMO[key] = mp_exp(x)
    return got


# lambdify's modules for the replay's activations and losses: the oracle's, exp memoized
_REPLAY_MODULES = [{"exp": _memo_exp}, "mpmath"]


def _raw(v):
    """The ``_mpf_`` tuple of an mpf, or of a number as fdot converts it (an activation's
    constant piece is an int)."""
    return v._mpf_ if type(v) is _MPF else mpmath.mp.convert(v)._mpf_


def _lambdified(key, build):
    """(value, gradient, both as tuple code (``_tuple_loss``) or None) of a loss piece,
    lambdified once per process."""
    if key not in _CACHE:
        expr, args = build()
        f, d = (lambdify(args, expr, _REPLAY_MODULES),
                lambdify(args, [sp.diff(expr, a) for a in args[:key[1]]], _REPLAY_MODULES))
        _CACHE[key] = (f, d, _tuple_loss(f, d))
    return _CACHE[key]


@functools.lru_cache(maxsize=None)
def _zsyms(c):
    return sp.symbols(f"z0:{c}", real=True)


def _loss_piece(loss, c, zrow, label, margin):
    """(loss value, gradient) of one row at the exact logits ``zrow`` (mpf), from the
    loss's definition (its smooth piece there for sparsemax and hinge): by the piece's
    tuple code where it has one (the lambdified code's bits), else its mpf code."""
    zs = _zsyms(c)
    if loss == "softmax_cross_entropy":
        f, d, tf = _lambdified((loss, c, label), lambda: (_ce(zs, label), list(zs)))
        args = list(zrow)
    elif loss in ("squared_error", "logistic_loss"):
        def build():
            ts = sp.symbols(f"t0:{c}", real=True)
            if loss == "squared_error":
                return (sp.Rational(1, 2) * sum((a - b) ** 2 for a, b in zip(zs, ts)),
                        list(zs) + list(ts))
            return (sum(_logistic_def(t).subs(_zl, v) for v, t in zip(zs, ts)),
                    list(zs) + list(ts))
        f, d, tf = _lambdified((loss, c), build)
        args = list(zrow) + [mpmath.mpf(float(v)) for v in label]
    elif loss == "sparsemax_loss":
        S = _sparsemax_support(zrow)
        f, d, tf = _lambdified((loss, c, label, S), lambda: (_sparsemax_piece(zs, label, S),
                                                         list(zs)))
        args = list(zrow)
    else:
        others = [j for j in range(c) if j != label]
        top = sorted(others, key=lambda j: zrow[j], reverse=True)
        h = margin + zrow[top[0]] - zrow[label]
        if abs(h) < BOUNDARY or (len(top) > 1 and zrow[top[0]] - zrow[top[1]] < BOUNDARY):
            raise _Boundary("hinge kink")
        mg = sp.Rational(margin)
        f, d, tf = _lambdified((loss, c, label, top[0], h > 0, margin), lambda: (
            mg + zs[top[0]] - zs[label] if h > 0 else sp.Integer(0) * zs[0], list(zs)))
        args = list(zrow)
    if tf is not None and all(type(a) is _MPF for a in args):
        try:
            prec, rnd = mpmath.mp._prec_rounding
            return tf([a._mpf_ for a in args], prec, rnd)
        except Exception:                   # noqa: BLE001 -- f and d raise as they do
            pass
    return f(*args), d(*args)


def _sparsemax_support(zrow):
    """The support S of sparsemax(z): the one S with z_i > tau_S on S and z_i < tau_S off
    it (the KKT conditions of the projection), decided on the exact values."""
    c = len(zrow)
    for r in range(1, c + 1):
        for S in itertools.combinations(range(c), r):
            tau = (sum(zrow[i] for i in S) - 1) / len(S)
            gaps = [zrow[i] - tau if i in S else tau - zrow[i] for i in range(c)]
            if min(gaps) > BOUNDARY:
                return S
            if min(gaps) > -BOUNDARY:
                raise _Boundary("sparsemax support change")
    raise AssertionError("no sparsemax support")     # the projection always has one


def _sparsemax_piece(zs, y, S):
    # Martins & Astudillo's form on the region S: proved equal to the definition
    # max_p (p.z - |p|^2/2) - z_y + 1/2 on every region (verify.losses)
    tau = (sum(zs[i] for i in S) - 1) / len(S)
    return -zs[y] + sum(zs[i] ** 2 - tau ** 2 for i in S) / 2 + sp.Rational(1, 2)


def _activation(act, aparam):
    """value(z), derivative(z) of a registry activation as mpmath functions, piece by
    piece (a point near a kink raises _Boundary)."""
    return _activation_entry(act, aparam)[:2]


def _activation_entry(act, aparam):
    """(value(z), derivative(z), the registry entry, pick(z)): ``pick`` takes an mpf at
    the working precision and returns the piece (lower bound, upper bound, value,
    derivative, and value and derivative as tuple code (``_tuple_fn``)) it lies on,
    deciding the same comparisons as ``value`` does (``|z - k| < BOUNDARY``, ``lo < z <
    hi``) on the ``_mpf_`` tuples: the kinks, BOUNDARY and the bounds are floats and
    integers, whose tuples are exact. Replay picks each pre-activation's piece once, for
    the value and the derivative."""
    # lambdified once per process and registry entry (held in the entry, so that its id is
    # not reused), as the rules are
    key = ("activation", id(act), aparam)
    if key in _CACHE:
        return _CACHE[key]
    subs = {s: sp.Rational(aparam) for s in act.params}
    inf = lambda v: mpmath.inf if v == sp.oo else -mpmath.inf if v == -sp.oo else v  # noqa: E731
    kinks = [float(k) for k in act.kinks]
    pieces = [(inf(lo), inf(hi), lambdify([z], e.subs(subs), _REPLAY_MODULES),
               lambdify([z], sp.diff(e.subs(subs), z), _REPLAY_MODULES))
              for lo, hi, e in act.pieces]
    # (lower bound, upper bound, value, derivative, and the two as tuple code)
    pieces = [p + (_tuple_fn(p[2]), _tuple_fn(p[3])) for p in pieces]

    def pick(v):
        if any(abs(v - k) < BOUNDARY for k in kinks):
            raise _Boundary(f"{act.name} kink")
        return next(p for p in pieces if p[0] < v < p[1])

    def bound(v):       # None for an infinite bound, else the exact tuple of an integer
        return None if v in (sp.oo, -sp.oo) else _from_int(int(v))
    if all(sp.sympify(v).is_Integer or v in (sp.oo, -sp.oo)
           for lo, hi, _ in act.pieces for v in (lo, hi)) and all(
            float(k) == int(k) for k in kinks):
        kinks_t = [_from_float(k) for k in kinks]
        bounds = [(bound(lo), bound(hi), p) for (lo, hi, _), p in zip(act.pieces, pieces)]

        def pick_raw(v):
            prec, rnd = mpmath.mp._prec_rounding
            t = v._mpf_
            for k in kinks_t:
                if _mpf_lt(_mpf_abs(_mpf_sub(t, k, prec, rnd), prec, rnd), _BOUNDARY_T):
                    raise _Boundary(f"{act.name} kink")
            return next(p for lo, hi, p in bounds
                        if (lo is None or _mpf_lt(lo, t)) and (hi is None or _mpf_lt(t, hi)))
    else:
        pick_raw = pick
    _CACHE[key] = ((lambda v: pick(v)[2](v)), (lambda v: pick(v)[3](v)), act, pick_raw)
    return _CACHE[key]


def array_configs(spec):
    """The optimizer config of each array W1, b1, W2, b2, ...: ``spec["cfgs"]`` (one per
    array: parameter groups), else ``spec["cfg"]`` for all."""
    return spec.get("cfgs") or [spec["cfg"]] * (2 * (len(spec["sizes"]) - 1))


def groups_of(cls_name, cfg):
    """Two parameter groups' worth of configs from ``cfg`` (weight decay on): the first
    layer at half the lr, weight decay on W1 and b2 only (so W2 meets float64's folding
    of l2 into the rule's weight decay, and b1 the bias step without decay), and where
    the rule has optional state, b1 without it (momentum, centered, amsgrad off: fewer
    state slots; SGD's b1 then takes the fused plain step beside momentum on W) or, for
    plain SGD, momentum on b2 (one array with state, off the fused path)."""
    first = dict(cfg, lr=cfg["lr"] / 2)
    b1 = dict(first, weight_decay=0.0)
    if cls_name in ("SGD", "RMSprop"):
        b1.update(momentum=0.0, nesterov=0, centered=0)
    elif cls_name in ("Adam", "AdamW"):
        b1.update(amsgrad=0)
    b2 = dict(cfg)
    if cls_name == "SGD" and cfg["momentum"] == 0:
        b2.update(momentum=0.5)
    return [first, b1, dict(cfg, weight_decay=0.0), b2]


def _slot_names(cls_name, cfg):
    """The symbolic state of each slot, in optim_rules.pxd's layout."""
    if cls_name == "SGD":
        return ["b"] if cfg["momentum"] != 0 else []
    if cls_name in ("Adagrad", "NotesAdaGrad"):
        return ["G"]
    if cls_name == "RMSprop":
        return ["s"] + (["b"] if cfg["momentum"] > 0 else []) + (["a"] if cfg["centered"]
                                                                  else [])
    if cls_name in ("Adam", "AdamW"):
        return ["m", "v"] + (["v_max"] if cfg["amsgrad"] else [])
    if cls_name == "SklearnAdam":
        return ["m", "v"]
    return ["v"]                                # NotesMomentum, SklearnSGD


_STATE = ["b", "G", "s", "a", "m", "v", "v_max"]
# the position of w, g and each state in the arguments of a rule's assignment (_rule)
_ARG = dict({"w": 0, "g": 1}, **{name: 3 + k for k, name in enumerate(_STATE)})
_HYPER = [(O.lr, "lr"), (O.mu, "momentum"), (O.tau, "dampening"), (O.wd, "weight_decay"),
          (O.alpha, "alpha"), (O.eps, "eps"), (O.beta, "momentum"), (O.beta1, "beta1"),
          (O.beta2, "beta2"), (O.lr_decay, "lr_decay")]


def _rule(cls_name, cfg):
    """The symbolic update of verify.optim as mpmath functions of (w, g, t, state,
    hyper-parameters): one per assignment, in order."""
    key = ("rule", 0, cls_name, tuple(sorted((k, cfg[k]) for k in (
        "momentum", "nesterov", "centered", "amsgrad", "weight_decay"))))
    if key not in _CACHE:
        args = [O.w, O.g, O.t] + [sp.Symbol(n, real=True) for n in _STATE] + [
            s for s, _ in _HYPER]
        fns = []
        for lhs, rhs in O.symbolic_rule(cls_name, cfg):
            # configs that differ in a value share their assignments (the values are
            # arguments): each assignment, by its srepr, is lambdified once per process
            k = ("assignment", sp.srepr(rhs))
            if k not in _CACHE:
                _CACHE[k] = lambdify(args, rhs, MPMATH)
            fns.append((str(lhs), _CACHE[k]))
        _CACHE[key] = fns
    return _CACHE[key]


def _rule_hoisted(cls_name, cfg):
    """``_rule`` with each assignment split in two (``_hoist``): [(left-hand side,
    prep, body)], ``body(*args, *prep(*args))`` the assignment's value."""
    key = ("hoisted rule", id(_rule(cls_name, cfg)))
    if key not in _CACHE:
        _CACHE[key] = [(lhs, *_hoist(fn)) for lhs, fn in _rule(cls_name, cfg)]
    return _CACHE[key]


def _hoist(fn):
    """(prep, body) of a lambdified assignment ``fn(w, g, t, states..., hyper...)``: its
    code with every operation on t and the hyper-parameters alone (``1 - beta_1**t``,
    ``-eta``, ``sqrt(1 - beta_2**t)``) taken out into ``prep``, which returns their values,
    and ``body``, which takes them as extra arguments in their place. The operations are
    SymPy's code, unchanged, on the same values at the same precision, so the value is
    fn's bit for bit; a step makes them once per array, not once per element. Nothing is
    taken out of a conditional's branches (only from its test), where fn may not
    evaluate it."""
    import inspect
    fdef = ast.parse(inspect.getsource(fn)).body[0]
    names = [a.arg for a in fdef.args.args]
    per_element = set(names[:3 + len(_STATE)]) - {"t"}
    if len(names) != 3 + len(_STATE) + len(_HYPER) or names[2] != "t" or len(fdef.body) != 1 \
            or not isinstance(fdef.body[0], ast.Return):
        return (lambda *args: ()), fn                       # not the expected form
    hoisted = []

    def scalar(node):
        return all(not (isinstance(n, ast.Name) and n.id in per_element) and not isinstance(
            n, (ast.IfExp, ast.Lambda, ast.NamedExpr, ast.Starred)) for n in ast.walk(node))

    def rewrite(node):
        if isinstance(node, ast.IfExp):
            node.test = rewrite(node.test)
            return node
        if not isinstance(node, (ast.Name, ast.Constant)) and scalar(node):
            hoisted.append(node)
            return ast.Name(f"_hoisted{len(hoisted) - 1}", ast.Load())
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.expr):
                setattr(node, field, rewrite(value))
            elif isinstance(value, list):
                setattr(node, field, [rewrite(v) if isinstance(v, ast.expr) else v
                                      for v in value])
        return node
    body = ast.unparse(rewrite(fdef.body[0].value))
    if not hoisted:
        return (lambda *args: ()), fn
    extra = [f"_hoisted{k}" for k in range(len(hoisted))]
    src = (f"def _prep({', '.join(names)}):\n"
           f"    return ({', '.join(ast.unparse(h) for h in hoisted)},)\n"
           f"def _body({', '.join(names + extra)}):\n"
           f"    return {body}\n")
    made = {}
    exec(compile(src, "<verify.train hoisted rule>", "exec"), fn.__globals__, made)
    made["_body"].source = src                 # read by _tuple_step (no file to read)
    return made["_prep"], made["_body"]


# the mpf operators' libmp calls, as _tuple_step's code names them
_TUPLE_OPS = {"_add": _mpf_add, "_sub": _mpf_sub, "_mul": _mpf_mul, "_div": _mpf_div,
              "_neg": _mpf_neg, "_mul_int": _LIB.mpf_mul_int, "_pow_int": _LIB.mpf_pow_int,
              "_rdiv_int": _LIB.mpf_rdiv_int, "_sqrt": _LIB.mpf_sqrt,
              "_from_int": _from_int, "_fzero": _FZERO, "_log": _LIB.mpf_log,
              "_mpf_pos": _mpf_pos, "_int_t": lambda v: mpmath.mp.convert(v)._mpf_,
              "_mk": mpmath.mp.make_mpf,
              "_max2": lambda x, y: y if _LIB.mpf_gt(y, x) else x}
# (both tuples, tuple op int, int op tuple) per operator: what mpf's __add__ / __radd__ /
# __rsub__ ... call (mpmath.ctx_mp_python); None: not translated
_BINOPS = {ast.Add: ("_add({a}, {b}, prec, rnd)", "_add({a}, _from_int({b}), prec, rnd)",
                     "_add({b}, _from_int({a}), prec, rnd)"),
           ast.Sub: ("_sub({a}, {b}, prec, rnd)", "_sub({a}, _from_int({b}), prec, rnd)",
                     "_sub(_from_int({a}), {b}, prec, rnd)"),
           ast.Mult: ("_mul({a}, {b}, prec, rnd)", "_mul_int({a}, {b}, prec, rnd)",
                      "_mul_int({b}, {a}, prec, rnd)"),
           ast.Div: ("_div({a}, {b}, prec, rnd)", "_div({a}, _from_int({b}), prec, rnd)",
                     "_rdiv_int({a}, {b}, prec, rnd)"),
           ast.Pow: (None, "_pow_int({a}, {b}, prec, rnd)", None)}
_INT_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}


class _Untranslated(Exception):
    """A construct _tuple_step does not translate: the rule keeps its mpf code."""


def _tuple_expr(node, names, glob, tests, cse=None):
    """(code, kind) of an expression of a rule's body on ``_mpf_`` tuples: kind "t" (a
    tuple: what an mpf would hold) or "i" (a Python int, as in the mpf code). Each
    operation is the libmp call the mpf operator makes, at the working precision and
    rounding; ``names`` maps the body's parameters to the step's variables and their
    kinds; ``tests`` collects the variables read as a conditional's test. With ``cse``
    (a dict), each tuple subexpression is named once there ({code: name}, in the order
    they are to be computed) and a repeated one read by its name: the same calls on the
    same values give the same tuple (there is no conditional then, which evaluates a
    branch only when taken)."""
    code, kind = _tuple_node(node, names, glob, tests, cse)
    if cse is None or kind != "t" or code.isidentifier():
        return code, kind
    return cse.setdefault(code, f"_c{len(cse)}"), kind


def _tuple_node(node, names, glob, tests, cse):
    """``_tuple_expr`` of one node (its operands through ``_tuple_expr``)."""
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return repr(node.value), "i"
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        (a, ka), (b, kb) = (_tuple_expr(x, names, glob, tests, cse)
                            for x in (node.left, node.right))
        if ka == kb == "i":
            if type(node.op) not in _INT_OPS:
                raise _Untranslated(ast.dump(node))
            return f"({a} {_INT_OPS[type(node.op)]} {b})", "i"
        form = _BINOPS[type(node.op)][{"tt": 0, "ti": 1, "it": 2}[ka + kb]]
        if form is None:
            raise _Untranslated(ast.dump(node))
        return form.format(a=a, b=b), "t"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        a, ka = _tuple_expr(node.operand, names, glob, tests, cse)
        return (f"_neg({a}, prec, rnd)", "t") if ka == "t" else (f"(-{a})", "i")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fname = node.func.id
        args = [_tuple_expr(x, names, glob, tests, cse) for x in node.args]
        if fname == "mpf" and glob.get(fname) is mpmath.mpf and len(args) == 1 and \
                args[0][1] == "i":
            # mpf(n): mpf_pos of n's exact tuple, as mpf.__new__ makes it
            return f"_mpf_pos(_from_int({args[0][0]}), prec, rnd)", "t"
        if any(k != "t" for _, k in args) or not args:
            raise _Untranslated(ast.dump(node))
        # mpmath.sqrt and mpmath.log (ln) are mpf_sqrt and mpf_log of an mpf at the
        # working precision (a negative argument raises ComplexResult: the caller's mpf
        # code takes it); exp is mp_exp, through the replay's memo
        if fname == "sqrt" and glob.get(fname) is mpmath.sqrt and len(args) == 1:
            return f"_sqrt({args[0][0]}, prec, rnd)", "t"
        if fname == "log" and glob.get(fname) is mpmath.log and len(args) == 1:
            return f"_log({args[0][0]}, prec, rnd)", "t"
        if fname == "exp" and glob.get(fname) in (mp_exp, _memo_exp) and len(args) == 1:
            return f"_texp({args[0][0]}, prec, rnd)", "t"
        if fname == "max" and fname not in glob:
            # the builtin: the first of the largest, by each later argument's __gt__
            code = args[0][0]
            for a, _ in args[1:]:
                code = f"_max2({code}, {a})"
            return code, "t"
    if isinstance(node, ast.IfExp) and isinstance(node.test, ast.Name) and \
            node.test.id.startswith("_hoisted") and node.test.id in names and cse is None:
        tests.add(names[node.test.id][0])
        (a, ka), (b, kb) = (_tuple_expr(x, names, glob, tests, cse)
                            for x in (node.body, node.orelse))
        if ka == kb:
            return f"({a} if {names[node.test.id][0]} else {b})", ka
    raise _Untranslated(ast.dump(node))


def _texp(x, prec, rnd):
    """``_memo_exp`` of the mpf of the tuple ``x``, as a tuple (the same memo)."""
    key = (x, prec, rnd)
    got = _EXP_MEMO.get(key)
    if got is None:
        got = mp_exp(mpmath.mp.make_mpf(x))
        _EXP_MEMO[key] = got
    return got._mpf_


_TUPLE_OPS["_texp"] = _texp


def _tuple_source(fns):
    """(parameters, lines, codes) of lambdified functions of the same parameters on
    ``_mpf_`` tuples (``_tuple_expr``, the common subexpressions of all of them named
    once): the lines compute the named subexpressions, ``codes[k]`` is fns[k]'s returned
    value, or list of values, as (code, kind); the parameters are renamed ``_x0``,
    ``_x1``, ... Raises _Untranslated (or what parsing raises) where it does not
    translate."""
    import inspect
    params, cse, codes = None, {}, []
    for fn in fns:
        fdef = ast.parse(inspect.getsource(fn)).body[0]
        if params not in (None, [a.arg for a in fdef.args.args]):
            raise _Untranslated("parameters")
        params = [a.arg for a in fdef.args.args]
        if len(fdef.body) != 1 or not isinstance(fdef.body[0], ast.Return):
            raise _Untranslated("body")
        ret = fdef.body[0].value
        names = {p: (f"_x{k}", "t") for k, p in enumerate(params)}
        one = lambda e: _tuple_expr(e, names, fn.__globals__, set(), cse)  # noqa: E731
        codes.append([one(e) for e in ret.elts] if isinstance(ret, ast.List) else one(ret))
    return params, [f"    {name} = {code}" for code, name in cse.items()], codes


_NOT_TRANSLATED = (_Untranslated, OSError, TypeError, SyntaxError, ValueError)


def _exec_tuple(lines):
    made = {}
    exec(compile("\n".join(lines) + "\n", "<verify.train tuple function>", "exec"),
         dict(_TUPLE_OPS), made)
    return made["_f"]


def _tuple_fn(fn):
    """A lambdified function of one mpf (an activation's piece or its derivative) as a
    function of its ``_mpf_`` tuple, ``f(x, prec, rnd)``, returning the tuple of fn's
    value (an int result as ``_raw`` takes it), or None when ``_tuple_source`` does not
    translate it. The same calls on the same values: fn's bits. An exception (a log of
    a negative number) is the caller's to redo with fn."""
    try:
        params, lines, [value] = _tuple_source([fn])
    except _NOT_TRANSLATED:
        return None
    if len(params) != 1 or isinstance(value, list):
        return None
    code, kind = value
    return _exec_tuple(["def _f(_x0, prec, rnd):"] + lines + [
        f"    return {code if kind == 't' else f'_int_t({code})'}"])


def _tuple_loss(f, d):
    """A loss's lambdified value ``f`` and gradient list ``d`` (the same arguments) as
    one function of the arguments' tuples, ``g(args, prec, rnd)``, returning (value,
    [gradient]) as f and d return them (an mpf as the mpf of its tuple, an int as the
    int), or None when ``_tuple_source`` does not translate them. Their common
    subexpressions (softmax's sum of exponentials) are computed once: the same bits."""
    try:
        params, lines, (value, grad) = _tuple_source([f, d])
    except _NOT_TRANSLATED:
        return None
    if isinstance(value, list) or not isinstance(grad, list):
        return None
    obj = lambda c: f"_mk({c[0]})" if c[1] == "t" else c[0]  # noqa: E731
    return _exec_tuple(["def _f(_args, prec, rnd):",
                        f"    {''.join(f'_x{k}, ' for k in range(len(params)))}= _args"]
                       + lines + [f"    return {obj(value)}, [{', '.join(map(obj, grad))}]"])


def _tuple_step(cls_name, cfg):
    """The rule of ``_rule_hoisted`` as one function on ``_mpf_`` tuples, or None (a
    construct it does not translate): ``step(vals, grads, flat, t, hyper, pres, prec,
    rnd)`` returns the array's new values and flat state (new lists), where ``hyper`` is
    the hyper-parameters' tuples and ``pres`` each assignment's ``prep`` values (an mpf
    as its tuple, a conditional's test as it is: ``step.tests[j][k]``). Each
    assignment's body becomes a line of the element loop, each operation the libmp call
    the mpf operator makes on the same values at the same precision and rounding
    (``_tuple_expr``): the mpf code's bits. An exception (a root
    of a negative number, a division by zero) is the caller's to redo in mpf."""
    import inspect
    key = ("tuple step", cls_name, id(_rule_hoisted(cls_name, cfg)),
           tuple(_slot_names(cls_name, cfg)))
    if key in _CACHE:
        return _CACHE[key]
    slots = _slot_names(cls_name, cfg)
    n_pos = 3 + len(_STATE) + len(_HYPER)
    lines, tests = [], set()
    try:
        for j, (lhs, prep, body) in enumerate(_rule_hoisted(cls_name, cfg)):
            src = getattr(body, "source", None) or inspect.getsource(body)
            fdef = ast.parse(src).body[-1]
            params = [a.arg for a in fdef.args.args]
            names = {p: (f"_a{k}", "i" if k == 2 else "t") for k, p in enumerate(params[:n_pos])}
            names.update({p: (f"_p{j}_{k}", "t") for k, p in enumerate(params[n_pos:])})
            if len(fdef.body) != 1 or not isinstance(fdef.body[0], ast.Return):
                raise _Untranslated("body")
            code, kind = _tuple_expr(fdef.body[0].value, names, body.__globals__, tests)
            if kind != "t":
                raise _Untranslated("an int value")
            lines.append((j, len(params) - n_pos, f"_a{_ARG[lhs]} = {code}"))
    except _Untranslated:
        _CACHE[key] = None
        return None
    slot_at = [_ARG[name] for name in slots]
    hyper0 = 3 + len(_STATE)
    src = ["def _step(vals, grads, flat, t, hyper, pres, prec, rnd):",
           "    n = len(vals)",
           f"    {', '.join(f'_a{hyper0 + k}' for k in range(len(_HYPER)))}, = hyper",
           "    _a2 = t"]
    for j, n_pre, _ in lines:
        if n_pre:
            src.append(f"    {', '.join(f'_p{j}_{k}' for k in range(n_pre))}, = pres[{j}]")
    src += ["    out, out_flat = [None] * n, [None] * len(flat)",
            "    for i in range(n):",
            "        _a0, _a1 = vals[i], grads[i]"]
    for k in range(len(_STATE)):
        at = 3 + k
        src.append(f"        _a{at} = flat[{slot_at.index(at)} * n + i]" if at in slot_at
                   else f"        _a{at} = _fzero")
    src += [f"        {line}" for _, _, line in lines]
    src.append("        out[i] = _a0")
    src += [f"        out_flat[{k} * n + i] = _a{at}" for k, at in enumerate(slot_at)]
    src.append("    return out, out_flat")
    made = {}
    exec(compile("\n".join(src) + "\n", "<verify.train tuple rule>", "exec"),
         dict(_TUPLE_OPS), made)
    step = made["_step"]
    # per assignment, per prep value: read as a conditional's test (else as an mpf)
    step.tests = [[f"_p{j}_{k}" in tests for k in range(n_pre)] for j, n_pre, _ in lines]
    _CACHE[key] = step
    return step


class Replay:
    """The exact epoch: every step of run_epoch recomputed in mpmath. The weights, biases,
    states and gradients are held as their ``_mpf_`` tuples (``values`` makes the mpf)."""

    def __init__(self, spec, arrays, dps):
        self.spec, self.dps = spec, dps
        with mpmath.workdps(dps):
            prec, rnd = mpmath.mp._prec_rounding
            # mpmath.mpf(v) of each float: the float's exact tuple, as mpf_pos leaves it
            tup = lambda a: [_mpf_pos(_from_float(v), prec, rnd)  # noqa: E731
                             for v in np.ravel(a).tolist()]
            self.X = [[mpmath.mp.make_mpf(v) for v in tup(r)] for r in arrays["X"]]
            self.W = [tup(W) for W in arrays["W"]]
            self.b = [tup(b) for b in arrays["b"]]
            self.st = [[tup(s)] for s in arrays["states"]]
            # each array's own config (parameter groups): W1, b1, W2, b2, ...
            self.hyper = [_hyper(c) for c in array_configs(spec)]
            self.hyper_t = [[h._mpf_ for h in hs] for hs in self.hyper]
        self.y_label, self.y_target = arrays["y_label"], arrays["y_target"]
        self.sizes = spec["sizes"]
        # each activation's piece picker; the memo of _forward, _derivative and _loss
        self.acts = [_activation_entry(a, p)[3] for a, p in zip(spec["acts"], spec["aparams"])]
        self._memo = {}
        _EXP_MEMO.clear()
        self.hoisted = [_rule_hoisted(spec["cls_name"], c) for c in array_configs(spec)]
        self.tuple_steps = [_tuple_step(spec["cls_name"], c) for c in array_configs(spec)]
        self.slots = [_slot_names(spec["cls_name"], c) for c in array_configs(spec)]
        self.masks = None       # {position: factor rows} of the step being replayed

    def _drop(self, p, rows):
        """``rows`` times the dropout factors ``m / (1 - rate)`` at position ``p`` (exact;
        ``verify.dropout`` sets ``masks`` per step), or as they are."""
        if not self.masks or p not in self.masks:
            return rows
        return [[v * f for v, f in zip(row, fr)] for row, fr in zip(rows, self.masks[p])]

    def _drop_raw(self, p, rows, prec, rnd):
        """``_drop`` on rows of ``_mpf_`` tuples (the same products, rounded the same)."""
        if not self.masks or p not in self.masks:
            return rows
        return [[_mpf_mul(v, _raw(f), prec, rnd) for v, f in zip(row, fr)]
                for row, fr in zip(rows, self.masks[p])]

    def _target(self, r):
        if self.spec["loss"] in ("squared_error", "logistic_loss"):
            return list(self.y_target[r])
        return int(self.y_label[r])

    def _forward(self, l, z):
        """(piece, value) of activation ``l`` at the mpf ``z``, memoized by z's tuple at
        this precision: a function of z alone, and the first step's rows start where
        loss_grad's do."""
        key = (l, z._mpf_)
        got = self._memo.get(key)
        if got is None:
            piece = self.acts[l](z)
            got = self._memo[key] = (piece, piece[2](z))
        return got

    def _forward_t(self, l, zt):
        """``_forward`` on a tuple: (piece, value's tuple), by the piece's tuple code
        (``_tuple_fn``), else its mpf code, memoized alike."""
        key = (l, zt, "t")
        got = self._memo.get(key)
        if got is None:
            z = mpmath.mp.make_mpf(zt)
            piece = self.acts[l](z)
            got = self._memo[key] = (piece, _tuple_value(piece[4], piece[2], zt, z))
        return got

    def _derivative_t(self, l, piece, zt):
        """``_derivative`` on a tuple, as ``_forward_t`` is ``_forward``."""
        key = (l, zt, "dt")
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = _tuple_value(piece[5], piece[3], zt,
                                                 mpmath.mp.make_mpf(zt))
        return got

    def _derivative(self, l, piece, z):
        """The derivative of activation ``l`` at the mpf ``z`` on its ``piece``, memoized
        as ``_forward`` is."""
        key = (l, z._mpf_, "d")
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = piece[3](z)
        return got

    def _loss(self, zrow, r):
        """``_loss_piece`` of row ``r`` at the logits ``zrow`` (mpf), memoized by their
        tuples (a function of them and of the row's target alone)."""
        key = ("loss", r, tuple(_raw(v) for v in zrow))
        got = self._memo.get(key)
        if got is None:
            sp_ = self.spec
            got = self._memo[key] = _loss_piece(sp_["loss"], self.sizes[-1], zrow,
                                                self._target(r), sp_["margin"])
        return got

    def objective(self, rows, l2e, terms=True):
        """(mean data loss, penalty sum ||W||^2 / 2, [(dW_l, db_l)]) of the batch ``rows``:
        the forward pass, each row's loss and gradient, backprop, + l2e W on dW; with
        ``terms``, also ``self.terms`` (``_terms``: only ``_conditioning`` reads them, for
        the NORMALIZED rules). The products are summed as mpmath's fdot / fsum sum them:
        exactly, then rounded once at the working precision (and twice as fast as a sum
        of rounded products). The sums and products are taken on the ``_mpf_`` tuples
        (``_dot``: mpf_sum of exact mpf_mul products, as fdot takes them; ``mpf_add`` /
        ``mpf_mul`` / ``mpf_abs`` at the working precision, as the mpf operators do): the
        same values, without an mpf per intermediate. The gradients are tuples."""
        prec, rnd = mpmath.mp._prec_rounding
        mk, mul, add, msum, mabs = (mpmath.mp.make_mpf, _mpf_mul, _mpf_add, _mpf_sum,
                                    _mpf_abs)
        sz, L = self.sizes, len(self.W)
        B = len(rows)
        H = [self._drop(0, [self.X[r] for r in rows])]          # as the activations give
        Ht = [[[_raw(v) for v in row] for row in H[0]]]          # the same as tuples
        # pre-activations, the piece of each: tuples in the hidden layers (their values
        # are read as tuples alone), mpf in the output layer (the loss's arguments)
        Z, P = [], []
        for l in range(L):
            m, last = sz[l + 1], l == L - 1
            Wl, bl = self.W[l], self.b[l]
            cols = [Wl[j::m] for j in range(m)]
            Zl, Pl, Hl = [], [], []
            for h in Ht[-1]:
                zrow = [add(_dot(h, cols[j], prec, rnd), bl[j], prec, rnd) for j in range(m)]
                if last:
                    zrow = [mk(v) for v in zrow]
                    got = [self._forward(l, v) for v in zrow]
                else:
                    got = [self._forward_t(l, v) for v in zrow]
                Zl.append(zrow)
                Pl.append([g[0] for g in got])
                Hl.append([g[1] for g in got])
            Z.append(Zl)
            P.append(Pl)
            if last:
                H.append(self._drop(l + 1, Hl))
                Ht.append([[_raw(v) for v in row] for row in H[-1]])
            else:       # v * f of an mpf or int v and an mpf f: one rounding of the product
                Ht.append(self._drop_raw(l + 1, Hl, prec, rnd))
        data, dZ = 0, []
        for i, r in enumerate(rows):
            val, grad = self._loss(H[-1][i], r)
            data += val
            # the gradient of the MEAN loss; an integer gradient (hinge's +-1, a
            # constant piece's 0) enters as an mpf: int / int would be a rounded float
            dZ.append([(mpmath.mpf(gv) / B)._mpf_ for gv in grad])
        grads, self.terms = [None] * L, [None] * L
        # backprop in absolute values, for the terms
        aZ = [[mabs(v, prec, rnd) for v in row] for row in dZ] if terms else None
        l2t = l2e._mpf_
        for l in range(L - 1, -1, -1):
            n, m = sz[l], sz[l + 1]
            dZ = self._drop_raw(l + 1, dZ, prec, rnd)
            if terms:
                aZ = self._drop_raw(l + 1, aZ, prec, rnd)           # factors are >= 0
            if l == L - 1:
                d = [[_raw(self._derivative(l, P[l][i][j], Z[l][i][j])) for j in range(m)]
                     for i in range(B)]
            else:
                d = [[self._derivative_t(l, P[l][i][j], Z[l][i][j]) for j in range(m)]
                     for i in range(B)]
            dZ = [[mul(dZ[i][j], d[i][j], prec, rnd) for j in range(m)] for i in range(B)]
            W, Hl = self.W[l], Ht[l]
            l2W = [mul(l2t, w, prec, rnd) for w in W]
            Hc, dZc = list(zip(*Hl)), list(zip(*dZ))                 # columns
            dW = [add(_dot(Hc[k], dZc[j], prec, rnd), l2W[k * m + j], prec, rnd)
                  for k in range(n) for j in range(m)]
            db = [msum(dZc[j], prec, rnd) for j in range(m)]
            grads[l] = (dW, db)
            if terms:
                aZ = self._terms(l, aZ, d, Hl, W, l2W, prec, rnd)
            if l:           # the input's gradient is not needed
                rows_w = [W[k * m:(k + 1) * m] for k in range(n)]
                dZ = [[_dot(dz, rows_w[k], prec, rnd) for k in range(n)] for dz in dZ]
        return data / B, _half_sum_squares(self.W, prec, rnd), grads

    def _terms(self, l, aZ, d, Hl, W, l2W, prec, rnd):
        """Set ``self.terms[l]`` from the absolute backprop ``aZ`` at layer l's output (its
        dropout applied), the activation's derivatives ``d``, the layer's input ``Hl``, its
        weights ``W`` and ``l2e W`` (tuples); returns aZ at layer l's input (None for the
        first layer)."""
        mul, add, msum, mabs = _mpf_mul, _mpf_add, _mpf_sum, _mpf_abs
        B, (n, m) = len(Hl), (self.sizes[l], self.sizes[l + 1])
        aZ = [[mul(aZ[i][j], mabs(d[i][j], prec, rnd), prec, rnd) for j in range(m)]
              for i in range(B)]
        aHc = [[mabs(v, prec, rnd) for v in col] for col in zip(*Hl)]
        aZc = list(zip(*aZ))
        # the sizes of the terms each gradient sums: its rounding error is of their order,
        # however small the sum (a first-order running error bound); tuples
        self.terms[l] = ([add(_dot(aHc[k], aZc[j], prec, rnd), mabs(l2W[k * m + j], prec, rnd),
                              prec, rnd) for k in range(n) for j in range(m)],
                         [msum(aZc[j], prec, rnd) for j in range(m)])
        if not l:
            return None
        aW = [[mabs(w, prec, rnd) for w in W[k * m:(k + 1) * m]] for k in range(n)]
        return [[_dot(az, aW[k], prec, rnd) for k in range(n)] for az in aZ]

    def step(self, rows, t):
        """One step of run_epoch on ``rows`` (the t-th update); returns reported loss * B."""
        sp_ = self.spec
        B = len(rows)
        l2e = mpmath.mpf(sp_["l2"]) / (B if sp_["l2_per_batch"] else 1)
        if "dropout" in sp_:        # this update's masks; loss_grad (inference) has none
            from verify.dropout import epoch_masks
            self.masks = epoch_masks(sp_, B, t)
        data, pen, grads = self.objective(rows, l2e, sp_["cls_name"] in NORMALIZED)
        self.masks = None
        reported = mpmath.mpf(sp_["loss_scale"]) * data + l2e * pen
        for l in range(len(self.W)):
            for p, (vals, g) in enumerate(((self.W[l], grads[l][0]), (self.b[l], grads[l][1]))):
                if self.terms[l] is not None:           # the NORMALIZED rules
                    self._conditioning(2 * l + p, vals, g, self.terms[l][p])
                self._update(2 * l + p, vals, g, t)
        return reported * B

    def _conditioning(self, a, vals, grads, terms):
        """Rules that divide by a root of the squared gradients are scale-free in g: where
        a gradient is a cancellation (|g| far below the sizes of the terms it sums), its
        relative rounding error goes into the step, and the trajectory after it (a W2
        gradient of 2.2e-7 from terms of size 1, under SklearnAdam, gave 655 eps). The
        exact step is ill-conditioned there, so such a draw is refused like a kink. An
        exact 0 (a class no row pushes, hinge's +-1/B cancelling) is computed exactly.
        (``|g + wd w| != 0 and |g + wd w| COND_MAX < terms + |wd w|``, taken on the
        ``_mpf_`` tuples as the mpf operators take it; the floats are exact tuples.)"""
        if self.spec["cls_name"] not in NORMALIZED:
            return
        cfg = array_configs(self.spec)[a]
        wd = _from_float(0.0 if self.spec["cls_name"] == "AdamW" else cfg["weight_decay"])
        prec, rnd = mpmath.mp._prec_rounding
        for g, w, tm in zip(grads, vals, terms):
            wdw = _mpf_mul(wd, w, prec, rnd)
            ge = _mpf_abs(_mpf_add(g, wdw, prec, rnd), prec, rnd)
            if not _mpf_eq(ge, _FZERO) and _mpf_lt(_mpf_mul(ge, _COND_MAX_T, prec, rnd),
                                        _mpf_add(tm, _mpf_abs(wdw, prec, rnd), prec, rnd)):
                raise _Boundary("a normalized step of a cancelling gradient")

    def loss_grad(self):
        """loss_grad over all rows: mean data loss + l2/2 sum ||W||^2 (l2 as given) and
        {"dW1": [...], "db1": [...], ...} (mpf)."""
        with mpmath.workdps(self.dps):
            mk = mpmath.mp.make_mpf
            l2 = mpmath.mpf(self.spec["l2"])
            data, pen, grads = self.objective(list(range(len(self.X))), l2, terms=False)
            out = {}
            for l, (dW, db) in enumerate(grads):
                out[f"dW{l + 1}"], out[f"db{l + 1}"] = [mk(v) for v in dW], [mk(v) for v in db]
            return data + l2 * pen, out

    def _update(self, a, vals, grads, t):
        """The rule of array ``a`` (its own config) on its values and state (tuples, in
        place): its ``_tuple_step``; where the rule has none, or the step raises, the
        assignments' mpf code (``_update_mpf``) does it (and raises as it does)."""
        step = self.tuple_steps[a]
        if step is not None:
            pres, ok = [], True
            zero = mpmath.mpf(0)
            scalars = [zero, zero, t] + [zero] * len(_STATE) + self.hyper[a]
            for (_, prep, _), tests in zip(self.hoisted[a], step.tests):
                vs = []
                for v, test in zip(prep(*scalars), tests):
                    if test:
                        vs.append(v)
                    elif type(v) is _MPF:
                        vs.append(v._mpf_)
                    else:
                        ok = False
                pres.append(vs)
            if ok:
                prec, rnd = mpmath.mp._prec_rounding
                try:
                    new, flat = step(vals, grads, self.st[a][0], t, self.hyper_t[a], pres,
                                     prec, rnd)
                except Exception:           # noqa: BLE001 -- redone in mpf, which raises
                    pass
                else:
                    vals[:] = new
                    self.st[a][0][:] = flat
                    return
        self._update_mpf(a, vals, grads, t)

    def _update_mpf(self, a, vals, grads, t):
        """``_update`` by the assignments' mpf code: each called with (w, g, t, the states
        of _STATE (0 but the array's slots), the hyper-parameters), its result assigned to
        its left-hand side in that list; the operations on t and the hyper-parameters
        alone made once (``_hoist``)."""
        mk = mpmath.mp.make_mpf
        n = len(vals)
        flat = [mk(v) for v in self.st[a][0]]
        slots, hyper = self.slots[a], self.hyper[a]
        pos = [3 + _STATE.index(name) for name in slots]
        zero = mpmath.mpf(0)
        scalars = [zero, zero, t] + [zero] * len(_STATE) + hyper
        steps = [(_ARG[name], body, prep(*scalars)) for name, prep, body in self.hoisted[a]]
        for i in range(n):
            args = [mk(vals[i]), mk(grads[i]), t] + [zero] * len(_STATE) + hyper
            for k, at in enumerate(pos):
                args[at] = flat[k * n + i]
            for at, body, pre in steps:
                args[at] = body(*args, *pre)
            vals[i] = mpmath.mpf(args[0])._mpf_
            for k, at in enumerate(pos):
                flat[k * n + i] = args[at]
        self.st[a][0][:] = [mpmath.mpf(v)._mpf_ for v in flat]

    def run(self, order, step0, max_steps=-1):
        with mpmath.workdps(self.dps):
            total, steps, start = mpmath.mpf(0), 0, 0
            while start < len(order) and (max_steps < 0 or steps < max_steps):
                rows = list(order[start:start + self.spec["batch_size"]])
                total += self.step(rows, step0 + steps + 1)
                steps += 1
                start += len(rows)
            return total

    def values(self):
        """{name: [mpf]} of every weight, bias and state array."""
        mk = mpmath.mp.make_mpf
        out = {}
        for l in range(len(self.W)):
            out[f"W{l + 1}"], out[f"b{l + 1}"] = ([mk(v) for v in self.W[l]],
                                                  [mk(v) for v in self.b[l]])
            for p, pn in enumerate((f"W{l + 1}", f"b{l + 1}")):
                n = len(self.W[l] if p == 0 else self.b[l])
                for k, name in enumerate(self.slots[2 * l + p]):
                    out[f"state {name} of {pn}"] = [mk(v) for v in
                                                    self.st[2 * l + p][0][k * n:(k + 1) * n]]
        return out


def _tuple_value(tfn, fn, zt, z):
    """``_raw(fn(z))`` by fn's tuple code ``tfn`` on ``zt`` (z's tuple) where there is
    one and it does not raise, else by fn."""
    if tfn is not None:
        try:
            prec, rnd = mpmath.mp._prec_rounding
            return tfn(zt, prec, rnd)
        except Exception:                   # noqa: BLE001 -- fn raises as it does
            pass
    return _raw(fn(z))


def _hyper(cfg):
    """A config's hyper-parameters in _HYPER's order as mpf at the working precision
    (the same numbers for every replay of the config: made once per precision)."""
    values = tuple(float(cfg[f]) for _, f in _HYPER)
    key = ("hyper", values, tuple(mpmath.mp._prec_rounding))
    if key not in _CACHE:
        _CACHE[key] = [mpmath.mpf(v) for v in values]
    return _CACHE[key]


def _half_sum_squares(Ws, prec, rnd):
    """``sum(w * w for W in Ws for w in W) / 2`` of mpf values, on their tuples: Python's
    sum starts at the int 0 (``0 + p`` is mpf's ``p + 0``), each product and partial sum
    rounded as the mpf operators round them."""
    acc = None
    for W in Ws:
        for w in W:
            p = _mpf_mul(w, w, prec, rnd)
            acc = _mpf_add(p, _from_int(0), prec, rnd) if acc is None else _mpf_add(
                acc, p, prec, rnd)
    return mpmath.mp.make_mpf(_mpf_div(acc, _from_int(2), prec, rnd))


# --------------------------------------------------------------------- the compiled side

def _data(spec, rng):
    """Inputs, targets and parameters as float32 numbers (exact in float64 as well)."""
    c, loss = spec["sizes"][-1], spec["loss"]
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    d = {"X": f32(rng.standard_normal((N_ROWS, N_IN))),
         "W": [f32(rng.standard_normal((a, b)) * 0.8) for a, b in zip(spec["sizes"],
                                                                       spec["sizes"][1:])],
         "b": [f32(rng.standard_normal(b) * 0.5) for b in spec["sizes"][1:]],
         "y_label": rng.integers(0, c, N_ROWS).astype(np.int64),
         "order1": rng.permutation(N_ROWS).astype(np.int64),
         "order2": rng.integers(0, N_ROWS, 5).astype(np.int64)}
    if loss == "squared_error":
        d["y_target"] = f32(rng.standard_normal((N_ROWS, c)))
    elif loss == "logistic_loss":       # 0/1 labels and one soft target (the general path)
        d["y_target"] = f32(np.array([0, 1, 0.25, 1, 0, 1, 0])[:N_ROWS, None]
                            * np.ones((1, c)))
    else:
        d["y_target"] = np.zeros((N_ROWS, 0), np.float32)
    return d


def _compiled_run(api, spec, d, dt):
    """loss_grad at the start, then the two run_epoch calls, in dtype ``dt``. Returns
    ((run_epoch's two returns, loss_grad's), {name: loss_grad gradient}, weights, biases,
    states), the arrays as the compiled code left them."""
    from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
    cfg = spec["cfg"]
    net = api.Network(spec["sizes"], [ACTIVATION_CODES[a.name] for a in spec["acts"]],
                      list(spec["aparams"]), *([spec["dropout"]] if "dropout" in spec
                                               else []))
    tcols = d["y_target"].shape[1]
    ws = api.Workspace(spec["sizes"], spec["batch_size"], tcols, dt)
    Ws = [np.array(W, dt) for W in d["W"]]
    bs = [np.array(b, dt) for b in d["b"]]
    states = _initial_states(api, spec, [p for W, b in zip(Ws, bs) for p in (W, b)], dt)
    y_label = d["y_label"] if tcols == 0 else np.zeros(1, np.int64)
    setup = api.EpochSetup(net, Ws, bs, states, np.array(d["X"], dt),
                           np.array(d["y_target"], dt), y_label, ws,
                           LOSS_CODES[spec["loss"]], spec["batch_size"],
                           margin=spec["margin"], l2=spec["l2"],
                           l2_per_batch=spec["l2_per_batch"],
                           optimizer=(list(spec["cfgs"]) if "cfgs" in spec else dict(cfg)),
                           loss_scale=spec["loss_scale"])
    if "dropout" in spec:       # seeds, counter offsets (verify.dropout)
        setup.set_dropout(*spec["dropout_counters"])
    # loss_grad first, at the starting point: the full-batch objective and its gradient
    full = api.EpochSetup(net, Ws, bs, [None] * len(states), setup.X, setup.y_target,
                          y_label, api.Workspace(spec["sizes"], N_ROWS, tcols, dt),
                          LOSS_CODES[spec["loss"]], N_ROWS, margin=spec["margin"],
                          l2=spec["l2"])
    dWs, dbs = [np.empty_like(W) for W in Ws], [np.empty_like(b) for b in bs]
    lg = api.loss_grad(full, dWs, dbs)
    grads = {}
    for l, (dW, db) in enumerate(zip(dWs, dbs)):
        grads[f"loss_grad dW{l + 1}"], grads[f"loss_grad db{l + 1}"] = dW.ravel(), db
    r1 = api.run_epoch(setup, d["order1"], 0)
    r2 = api.run_epoch(setup, d["order2"], int(r1[2]), max_steps=1)
    return (r1, r2, lg), grads, Ws, bs, states


def _initial_states(api, spec, params, dt):
    """Each array's starting state by its own config (None without state): zeros, or
    Adagrad's initial_accumulator_value."""
    out = []
    for p, cfg in zip(params, array_configs(spec)):
        slots = api.state_slots(cfg)
        init = cfg["initial_accumulator_value"] if spec["cls_name"] == "Adagrad" else 0.0
        out.append(np.full(slots * p.size, init, dt) if slots else None)
    return out


def _initial(d, states):
    return {"X": d["X"], "W": d["W"], "b": d["b"], "states": states,
            "y_label": d["y_label"], "y_target": d["y_target"]}


def check_epoch(spec, dtypes=("float64", "float32"), seed=0, api=None):
    """Compiled run_epoch vs the exact replay for one configuration ``spec``. Returns
    {"passed", "stats": {dtype: {...}}, "first_failure", "reseeded"}."""
    api = api or compiled_api()
    res = {"passed": True, "stats": {}, "first_failure": None, "reseeded": 0}
    for attempt in range(8):
        rng = np.random.default_rng([seed, spec["index"], attempt])
        d = _data(spec, rng)
        replays = {}        # the exact replay of each distinct start, shared by the dtypes
        try:
            out = {dn: _check_dtype(api, spec, d, dn, replays) for dn in dtypes}
            break
        except _Boundary:
            res["reseeded"] += 1
    else:
        raise RuntimeError("every draw met a kink")
    for dn, (stats, fail) in out.items():
        res["stats"][dn] = stats
        if fail and res["passed"]:
            res["passed"], res["first_failure"] = False, f"{dn}: {fail}"
    return res


def _group(name):
    """The values whose largest one sets the normwise scale: all weights and biases, all
    of loss_grad's gradients, or one optimizer state slot across all parameters (an average of gradients of mixed signs
    can cancel far below the gradients' size; the error is in proportion to that size)."""
    if name.startswith("loss_grad"):
        return "gradients"
    return name.split(" of ")[0] if name.startswith("state") else "parameters"


def _replay(spec, d, st0):
    """The exact replay from the start ``st0``: (values, loss_grad's loss, the calls' loss
    sums) at the first precision of ``DPS``, each agreeing to 30 digits with the replay at
    the second (else ArithmeticError: the oracle did not settle).

    A pure function of its inputs and verify's source (the data and the starting states
    are numbers in the key, the activations, losses and rules verify's definitions; a
    dropout's masks, from the twin ``nnlib._reference.dropout_mask``, are in the key as
    the bits of every mask the replay reads): derived once, then read from verify.cache
    bit for bit -- as is a draw that meets a kink (``_Boundary``, redrawn by the caller).
    The compiled run it is compared with runs every time."""
    from verify import cache
    payload = (_spec_key(spec), {k: _array_key(v) for k, v in d.items()},
               [_array_key(s) for s in st0], _mask_key(spec, d))

    def compute():
        try:
            return ["replay", _replay_now(spec, d, st0)]
        except _Boundary as exc:
            return ["boundary", str(exc)]
    kind, value = cache.exact_values("train replay", payload, compute)
    if kind == "boundary":
        raise _Boundary(value)
    return value


def _replay_now(spec, d, st0):
    exacts = []
    for dps in DPS:
        rp = Replay(spec, _initial(d, st0), dps)
        s0, vals = rp.loss_grad()
        vals = {f"loss_grad {k}": v for k, v in vals.items()}
        s1 = rp.run(list(d["order1"]), 0)
        s2 = rp.run(list(d["order2"]), 3, max_steps=1)
        vals.update(rp.values())
        exacts.append((vals, s0, s1, s2))
    (vals, s0, s1, s2), (vals2, s0b, s1b, s2b) = exacts
    agree = (mpmath.mpf(10) ** -30)._mpf_
    prec, rnd = mpmath.mp._prec_rounding
    for a, b in [(s0, s0b), (s1, s1b), (s2, s2b)] + [
            (x, y) for k in vals for x, y in zip(vals[k], vals2[k])]:
        if _unsettled(a._mpf_, b._mpf_, agree, prec, rnd):
            raise ArithmeticError("the replay did not settle between 50 and 100 digits")
    return exacts[0]


def _unsettled(a, b, agree, prec, rnd):
    """``abs(a - b) > agree * max(abs(a), 1)`` of mpf values, on their tuples at the
    working precision: the mpf operators' calls (builtin max keeps |a| unless 1 is
    larger, by |a| < 1; mpf times the int 1 is mpf_mul_int)."""
    abs_a = _mpf_abs(a, prec, rnd)
    bound = (_LIB.mpf_mul_int(agree, 1, prec, rnd) if _mpf_lt(abs_a, _FONE)
             else _mpf_mul(agree, abs_a, prec, rnd))
    return _LIB.mpf_gt(_mpf_abs(_mpf_sub(a, b, prec, rnd), prec, rnd), bound)


def _array_key(a):
    """An array (or a list of arrays) as the key sees it: dtype, shape and bytes."""
    if isinstance(a, (list, tuple)):
        return [_array_key(x) for x in a]
    a = np.ascontiguousarray(a)
    return (a.dtype.str, a.shape, a.tobytes())


def _spec_key(spec):
    """A spec with its activations by name (their definitions are verify's source)."""
    return sorted((k, [a.name for a in v] if k == "acts" else v) for k, v in spec.items())


def _mask_key(spec, d):
    """The bits of every dropout mask the replay reads (``verify.dropout.epoch_masks`` of
    each of its steps: the first call's batches over ``order1`` from step 1, the second
    call's one batch over ``order2`` at step 4), or None without dropout."""
    if "dropout" not in spec:
        return None
    from nnlib._reference.dropout import dropout_mask
    bs, n1 = spec["batch_size"], len(d["order1"])
    steps = [(min(bs, n1 - start), t + 1) for t, start in enumerate(range(0, n1, bs))]
    steps.append((min(bs, len(d["order2"])), 3 + 1))          # run(order2, 3, max_steps=1)
    seeds, offsets = spec["dropout_counters"]
    return [_array_key(dropout_mask(B, spec["sizes"][pos], rate, seed, (offset + t) % 2**64))
            for B, t in steps for (pos, rate), seed, offset in zip(spec["dropout"], seeds,
                                                                    offsets)]


def _check_dtype(api, spec, d, dn, replays=None):
    """``replays``: {exact start: replay} shared by the dtypes of one draw. The replay is a
    function of the exact starting values alone (the data are float32 numbers, exact in
    both dtypes), so a dtype whose start rounds to the same numbers -- every start but
    Adagrad's float32 initial_accumulator_value -- reuses the other's."""
    dt = np.dtype(dn).type
    (r1, r2, lg), got, Ws, bs, states = _compiled_run(api, spec, d, dt)
    fail = None
    if (r1[1], r1[2], r1[3], r2[1], r2[2], r2[3]) != (N_ROWS, 3, 0, BATCH, 1, 0) or not (
            r1[4] and r2[4]) or lg[1] != 0:
        fail = (f"returns (loss_sum, n_seen, steps, status, finite) {tuple(r1)}, "
                f"{tuple(r2)}; expected n_seen 7 and 3, steps 3 and 1, status 0, finite; "
                f"loss_grad status {lg[1]}")
    # initial states as the compiled run saw them (Adagrad's start is rounded to dt)
    st0 = [np.zeros(0, dt) if s is None else s for s in _initial_states(
        api, spec, [p for W, b in zip(d["W"], d["b"]) for p in (W, b)], dt)]
    start = tuple(tuple(float(v) for v in s) for s in st0)
    if replays is None or start not in replays:
        exacts = _replay(spec, d, st0)
        if replays is not None:
            replays[start] = exacts
    exacts = replays[start] if replays is not None else exacts
    vals, s0, s1, s2 = exacts
    for l, (W, b) in enumerate(zip(Ws, bs)):
        got[f"W{l + 1}"], got[f"b{l + 1}"] = W.ravel(), b
        for p, (pn, arr) in enumerate(((f"W{l + 1}", W), (f"b{l + 1}", b))):
            s = states[2 * l + p]
            cfg = array_configs(spec)[2 * l + p]
            for k, name in enumerate(_slot_names(spec["cls_name"], cfg)):
                got[f"state {name} of {pn}"] = s[k * arr.size:(k + 1) * arr.size]
    tol = TOL[dn]
    eps = float(np.finfo(dt).eps)
    groups, floor = {}, mpmath.mpf(10) ** -300
    mags = {name: [abs(e) for e in ex] for name, ex in vals.items()}
    for name, ex in vals.items():
        groups[_group(name)] = max([groups.get(_group(name), floor)] + mags[name])
    stats = {"max_ulps": 0.0, "max_normwise_eps": 0.0, "n_values": 0, "loss_ulps": 0.0,
             "tolerance": tol.as_dict()}
    for name, ex in vals.items():
        scale = max(max(mags[name]), groups[_group(name)])
        tiny = TINY * groups[_group(name)]
        prec, rnd = mpmath.mp._prec_rounding
        for i, (cv, e, mag) in enumerate(zip(got[name], ex, mags[name])):
            # the normwise error from measure's |mpf(cv) - e|: the same difference
            ms, d = measure_with_difference(cv, e, dt)
            if d is not None and type(scale) is _MPF:
                nw = _to_float(_mpf_div(d, scale._mpf_, prec, rnd), rnd=rnd) / eps
            else:
                nw = float(abs(mpmath.mpf(float(cv)) - e) / scale) / eps
            if mag >= tiny:                 # elsewhere ulps measure cancellation
                stats["max_ulps"] = max(stats["max_ulps"], ms.ulps)
            stats["max_normwise_eps"] = max(stats["max_normwise_eps"], nw)
            stats["n_values"] += 1
            if not (ms.ulps <= tol.ulps or nw <= tol.abs_eps) and fail is None:
                fail = (f"{name}[{i}]: got {float(cv)!r}, exact {mpmath.nstr(e, 17)} "
                        f"({ms.ulps:.3g} ulp, {nw:.3g} eps of the largest such value)")
    for which, cv, e in (("loss of loss_grad", lg[0], s0),
                         ("loss_sum of the first call", r1[0], s1),
                         ("loss_sum of the second call", r2[0], s2)):
        ms = measure(cv, e, dt)
        stats["loss_ulps"] = max(stats["loss_ulps"], ms.ulps)
        if ms.ulps > tol.ulps and fail is None:
            fail = f"{which}: got {cv!r}, exact {mpmath.nstr(e, 17)} ({ms.ulps:.3g} ulp)"
    return stats, fail


# ----------------------------------------------------------------------------- section

def _configs():
    """(label, class name, config dict) per optimizer configuration, as the class makes it."""
    out = []
    for cls_name, kw in O.CONFIGS:
        cls = K.nnlib_attr("optim." + cls_name)
        if cls is not None:
            out.append((O._label(cls_name, kw), cls_name, cls(**kw).config()))
    return out


def _specs(index, cls_name, cfg, quick):
    """The networks one optimizer configuration trains. Weight decay is on (WD, set in the
    config when the class leaves it 0); a configuration whose weight decay is 0 also runs
    as it is, because train.pyx then takes another path (float64 folds the L2 term into the
    rule's weight decay). Parameter groups: one config per array (``groups_of``: lr,
    weight decay and state layout differing per array), the path of every fit, as
    train.pyx steps each array by its own config whether they differ or not; in --quick
    it stands in for the variant with weight decay on everywhere (it has weight decay on
    some arrays, and 0, folded, on others), so --quick runs no more networks. In --quick
    one network per variant (the activation and loss cycling with the configuration's
    index, so that every activation and every loss appears), else every activation with
    one loss and every loss with one activation."""
    wd_cfg = dict(cfg, weight_decay=cfg["weight_decay"] or WD)
    variants = [(wd_cfg, groups_of(cls_name, wd_cfg))]
    if not quick:
        variants.append((wd_cfg, None))
    if cfg["weight_decay"] == 0.0:
        variants.append((dict(cfg), None))
    specs = []
    for v, (vcfg, cfgs) in enumerate(variants):
        at = index + 3 * v
        if quick:
            pairs = [(ACTIVATIONS[at % len(ACTIVATIONS)], LOSSES[at % len(LOSSES)])]
        else:
            pairs = [(a, LOSSES[(at + k) % len(LOSSES)]) for k, a in enumerate(ACTIVATIONS)]
            pairs += [(ACTIVATIONS[(at + k + 3) % len(ACTIVATIONS)], ls)
                      for k, ls in enumerate(LOSSES)]
        for k, (act, loss) in enumerate(pairs):
            c = 1 if loss == "logistic_loss" else 3
            param = next(iter(act.evidence_params.values()), 0.0)
            specs.append({
                "index": index * 1000 + v * 100 + k, "cls_name": cls_name, "cfg": vcfg,
                "loss": loss, "sizes": [N_IN, N_HID, c], "acts": [act, ACTIVATIONS[0]],
                "aparams": [param, 0.0], "batch_size": BATCH, "l2": L2,
                "l2_per_batch": (at + k) % 2 == 1,
                "loss_scale": 0.5 if (at + k) % 3 == 2 else 1.0,
                "margin": 0.5 if (at + k) % 4 == 3 else 1.0})
            if cfgs is not None:
                specs[-1]["cfgs"] = cfgs
    return specs


def _spec_text(s):
    if "cfgs" in s:
        c = s["cfgs"]
        lrs = "/".join(format(x["lr"], "g") for x in c)
        wds = "/".join(format(x["weight_decay"], "g") for x in c)
        slots = "/".join(str(len(_slot_names(s["cls_name"], x))) for x in c)
        return (f"{s['acts'][0].name} + {s['loss']}, one config per array (W1/b1/W2/b2): "
                f"lr {lrs}, weight_decay {wds}, state slots {slots}"
                + (", l2_per_batch" if s["l2_per_batch"] else ""))
    return (f"{s['acts'][0].name} + {s['loss']}, weight_decay {s['cfg']['weight_decay']}"
            + (", l2_per_batch" if s["l2_per_batch"] else "")
            + (f", loss_scale {s['loss_scale']}" if s["loss_scale"] != 1 else "")
            + (f", margin {s['margin']}" if s["loss"] == "hinge_loss" else ""))


def run_train(ctx):
    """The section: the proof, then one item per optimizer configuration."""
    out = []
    if not ctx.only or ctx.wanted("train") or ctx.wanted("epoch proof"):
        t0 = time.perf_counter()
        pr = prove_epoch()
        out.append({"name": "epoch proof", "section": "train", "passed": pr.passed,
                    "verdict": "proved" if pr.passed else "FAIL: " + pr.status,
                    "statement": "One step of train.pyx on a 2-2-2 network, 2 rows, generic "
                                 "activation g and per-row losses ell_i (undefined SymPy "
                                 f"functions): ${pr.derived}$; ${pr.closed}$.",
                    "steps": [dict(s.as_dict(), claim=f"${s.claim}$") for s in pr.steps],
                    "seconds": round(time.perf_counter() - t0, 3)})
    configs = [(i, label, cls_name, cfg) for i, (label, cls_name, cfg) in enumerate(_configs())
               if not ctx.only or ctx.wanted("train") or ctx.wanted(f"epoch {label}")
               or ctx.wanted(cls_name)]
    if not configs and not ctx.only:
        raise ImportError("nnlib.optim has no optimizer of verify.optim.CONFIGS")
    api = compiled_api() if configs else None
    if configs and not hasattr(api, "run_epoch"):
        raise ImportError("nnlib._kernels.train has no run_epoch (the compiled epoch API)")
    for index, label, cls_name, cfg in configs:
        name = f"epoch {label}"
        t0 = time.perf_counter()
        rows, passed, failures, worst = [], True, [], {}
        for spec in _specs(index, cls_name, cfg, ctx.quick):
            r = check_epoch(spec, ctx.dtypes, ctx.seed, api)
            cells = [f"{dn}: {st['max_ulps']:.3g} ulp ({st['max_normwise_eps']:.3g} eps "
                     f"normwise), losses {st['loss_ulps']:.3g} ulp"
                     for dn, st in r["stats"].items()]
            if r["reseeded"]:
                cells.append(f"(redrawn {r['reseeded']}x: near a kink or a near-zero "
                             "gradient of a normalized rule)")
            rows.append((_spec_text(spec), "; ".join(cells)))
            for dn, st in r["stats"].items():
                w = worst.setdefault(dn, {"max_ulps": 0.0, "max_normwise_eps": 0.0,
                                          "loss_ulps": 0.0, "n_values": 0})
                for k in ("max_ulps", "max_normwise_eps", "loss_ulps"):
                    w[k] = max(w[k], st[k])
                w["n_values"] += st["n_values"]
            if not r["passed"]:
                passed = False
                failures.append(f"{_spec_text(spec)}: {r['first_failure']}")
        fused = cls_name == "SGD" and cfg["momentum"] == 0
        wd = ("weight_decay as the class sets it" if cfg["weight_decay"] else
              f"weight_decay {WD} (set in the config; the compiled rule applies it"
              + (")" if cls_name in ("SGD", "Adagrad", "RMSprop", "Adam") else
                 ", the class fixes it at 0)") + " and 0 (" +
              ("the fused step's bias update without decay" if fused else
               "float64 folds l2 into the rule's weight decay") + ")")
        wd_cfg = dict(cfg, weight_decay=cfg["weight_decay"] or WD)
        head = [("update", f"$\\begin{{aligned}}"
                           f"{O.rule_latex(O.symbolic_rule(cls_name, wd_cfg))}"
                           f"\\end{{aligned}}$".replace(r"\leftarrow", r"&\leftarrow")),
                ("run", f"loss_grad over the {N_ROWS} rows at the start, then run_epoch on a "
                        f"3-4-C network, batch {BATCH} (3 + 3 + 1 rows), then 1 step of a "
                        f"second call (step0 = 3); l2 = {L2}; {wd}"),
                ("compared", "every weight, bias and optimizer state value after each call, "
                             "loss_grad's gradients, loss_grad's loss and each call's "
                             "loss_sum"),
                ("tolerance", "; ".join(f"{dn}: {t.ulps} ulp or {t.abs_eps} eps x the "
                                        f"group's max" for dn, t in TOL.items()))]
        for dn, w in worst.items():
            head.append((f"max error {dn}", f"{w['max_ulps']:.3g} ulp "
                                            f"({w['max_normwise_eps']:.3g} eps normwise), "
                                            f"losses {w['loss_ulps']:.3g} ulp; "
                                            f"{w['n_values']} values"))
        if failures:
            head.append(("first failure", failures[0]))
        nw = "/".join(f"{w['max_normwise_eps']:.2g}" for w in worst.values())
        out.append({"name": name, "section": "train", "passed": passed,
                    "verdict": (f"pass ({nw} eps normwise, {'/'.join(worst)})" if passed
                                else "FAIL"),
                    "rows": head + [("network", "max error per dtype")] + rows,
                    "stats": worst, "seconds": round(time.perf_counter() - t0, 3)})
    return out
