"""Losses (softmax cross-entropy, squared error, logistic, sparsemax, hinge;
``nnlib.functional`` from ``nnlib/_kernels/losses.pyx``): definitions, proofs and evidence.

Design note
-----------
Smooth losses (cross-entropy, squared error, logistic) are SymPy expressions in C = 3
logits; their gradients and Hessians are derived and shown equal to the closed forms the
kernels use (``nnlib/_kernels/loss_rows.pxd``) by canonical forms of rational functions in
exp(z_i).

The sparsemax loss and the hinge loss are piecewise: on each region of R^C they are
polynomials, so the proof enumerates the regions (sparsemax's supports, see
``verify.output_maps``; the hinge's active pieces, with the kernel's subgradient at every
kink checked to lie in the subdifferential). Their evidence oracles work on exact rationals.
"""
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from verify import kernels as K
from verify.api import check_loss, map_rows
from verify.convexity import is_zero_rational
from verify.dag_eval import diff_once
from verify.evidence import MPMATH, exact, lambdify, mp_exp
from verify.output_maps import (C, C_EVID, P, ZS, _absorb, _each, _item, _softmax_exprs,
                                _subsets, prove_log_identity, sparsemax_exact)
from verify.proofs import Proof

__all__ = ["run_losses", "LOSS_NAMES"]


def _ce(zs, y):
    return -sp.log(_softmax_exprs(zs)[y])


def _prove_ce():
    pr = Proof("softmax_cross_entropy")
    m = sp.Symbol("m", real=True)
    for yv in range(C):
        L = _ce(ZS, yv)
        kern = m + sp.log(sum(sp.exp(v - m) for v in ZS)) - ZS[yv]
        ok = prove_log_identity(-L, -kern)
        pr.add(f"y={yv}: -\\log p_y = \\operatorname{{lse}}(z) - z_y \\text{{ with lse}} = m + "
               f"\\log\\sum_j e^{{z_j - m}}", ok, "exp of both sides + cancel",
               None if ok else "failed")
        with diff_once():      # SymPy's derivatives, each subexpression's taken once
            grad = [sp.diff(L, v) for v in ZS]
            H = sp.hessian(L, ZS)
        okg = all(is_zero_rational(grad[i] - (P[i] - int(i == yv))) for i in range(C))
        pr.add(f"y={yv}: \\nabla_z = p - e_y", okg, "cancel", None if okg else "failed")
        Hc = sp.diag(*P) - sp.Matrix(P) * sp.Matrix(P).T
        okh = all(is_zero_rational(e) for e in (H - Hc))
        pr.add(f"y={yv}: \\nabla^2_z = \\operatorname{{diag}}(p) - p p^\\top", okh, "cancel",
               None if okh else "failed")
    pr.add("\\text{mean over } n \\text{ rows: each row's gradient is divided by } n",
           True, "linearity of the mean")
    pr.derived = r"\partial L/\partial z_i = p_i - [i = y],\quad \nabla^2 L = \operatorname{diag}(p) - pp^\top"
    pr.closed = r"(\operatorname{softmax}(z) - e_y)/n"
    return pr


def _prove_squared():
    pr = Proof("squared_error")
    ts = sp.symbols(f"t0:{C}", real=True)
    L = sp.Rational(1, 2) * sum((a - b) ** 2 for a, b in zip(ZS, ts))
    ok = all(sp.expand(sp.diff(L, ZS[i]) - (ZS[i] - ts[i])) == 0 for i in range(C))
    pr.add("\\nabla_z \\tfrac12\\lVert z - t\\rVert^2 = z - t", ok, "expand",
           None if ok else "failed")
    okh = sp.hessian(L, ZS) == sp.eye(C)
    pr.add("\\nabla^2_z = I", okh, "exact", None if okh else "failed")
    pr.derived = r"z - t"
    pr.closed = r"(z - t)/n"
    return pr


_zl = sp.Symbol("z", real=True)
_sig = 1 / (1 + sp.exp(-_zl))


def _logistic_def(yv):
    # P(y = 0) = 1 - sigma(z) is written sigma(-z) (identity proved in _prove_logistic): the
    # same function, but its high-precision evaluation does not cancel at z = 1e4
    return -(yv * sp.log(_sig) + (1 - yv) * sp.log(_sig.subs(_zl, -_zl)))


def _prove_logistic():
    pr = Proof("logistic_loss")
    sp_ = lambda u: sp.log(1 + sp.exp(u))  # noqa: E731
    pr.identity("1 - \\sigma(z) = \\sigma(-z) \\text{ (the probability of class 0)}",
                1 - _sig, _sig.subs(_zl, -_zl))
    for yv in (0, 1):
        L = _logistic_def(yv)
        kern = (1 - yv) * sp_(_zl) + yv * sp_(-_zl)
        ok = prove_log_identity(-L, -kern)
        pr.add(f"y={yv}: -[y\\log\\sigma(z) + (1-y)\\log(1-\\sigma(z))] = (1-y)\\,"
               f"\\operatorname{{softplus}}(z) + y\\,\\operatorname{{softplus}}(-z)", ok,
               "exp of both sides + cancel", None if ok else "failed")
        pr.identity(f"y={yv}: \\partial L/\\partial z = \\sigma(z) - y", sp.diff(L, _zl),
                    _sig - yv)
        pr.identity(f"y={yv}: \\partial^2 L/\\partial z^2 = \\sigma(z)(1-\\sigma(z))",
                    sp.diff(L, _zl, 2), _sig * (1 - _sig))
    pr.derived = r"\sigma(z) - y"
    pr.closed = r"(\sigma(z) - y)/n"
    return pr


def _prove_sparsemax_region(pr, zs, m, S):
    """The sparsemax loss's identities on the region where the support is ``S``, every
    label (a failure is added to ``pr``)."""
    c = len(zs)
    k = len(S)
    tau = (sum(zs[i] for i in S) - 1) / k
    p = [zs[i] - tau if i in S else sp.Integer(0) for i in range(c)]
    for yv in range(c):
        fy = sum(p[i] * zs[i] for i in range(c)) - sum(q ** 2 for q in p) / 2 - zs[yv] + \
            sp.Rational(1, 2)
        martins = -zs[yv] + sum(zs[i] ** 2 - tau ** 2 for i in S) / 2 + sp.Rational(1, 2)
        u = [v - m for v in zs]
        kern = sp.Rational(1, 2) + sum(p[i] * (u[i] - p[i] / 2) for i in range(c)) - u[yv]
        ok = sp.expand(fy - martins) == 0 and sp.expand(fy - kern) == 0
        grad_ok = all(sp.expand(sp.diff(fy, zs[i]) - (p[i] - int(i == yv))) == 0
                      for i in range(c))
        if not (ok and grad_ok):
            pr.add(f"S={S}, y={yv}", False, "expand", "failed")


def _prove_sparsemax_loss(c=C):
    pr = Proof("sparsemax_loss")
    zs = sp.symbols(f"z0:{c}", real=True)
    m = sp.Symbol("m", real=True)
    with diff_once():   # SymPy's derivatives; the labels' fy share their terms' derivatives
        for S in _subsets(c):
            _prove_sparsemax_region(pr, zs, m, S)
    pr.add("\\text{on every region } S \\text{ and label } y: \\max_{p\\in\\Delta}(p^\\top z"
           " - \\tfrac12\\lVert p\\rVert^2) - z_y + \\tfrac12 = -z_y + \\tfrac12\\sum_{j\\in S}"
           "(z_j^2 - \\tau^2) + \\tfrac12 = \\tfrac12 + \\sum_j p_j(u_j - p_j/2) - u_y "
           "\\ (u = z - m,\\ \\forall m)", not any(s.status == "failed" for s in pr.steps),
           f"expand, all {2 ** c - 1} supports x {c} labels (the max is attained at "
           "p = sparsemax(z): p^T z - |p|^2/2 = (|z|^2 - |p - z|^2)/2)")
    pr.add("\\nabla_z L = \\operatorname{sparsemax}(z) - e_y \\text{ on every region; "
           "continuous across regions (sparsemax is), so } L \\in C^1",
           not any(s.status == "failed" for s in pr.steps), "expand + continuity")
    pr.derived = r"\nabla L = p_S - e_y \text{ on region } S"
    pr.closed = r"(\operatorname{sparsemax}(z) - e_y)/n"
    return pr


def _hinge_kernel_rule(zv, yv, mu):
    """The kernel's subgradient, transcribed from loss_rows.pxd (hinge_row): e_{j*} - e_y
    if h >= 0 else 0, j* the FIRST index attaining max_{j != y} z_j."""
    c = len(zv)
    others = [j for j in range(c) if j != yv]
    jstar = others[0]
    for j in others[1:]:
        if bool(sp.simplify(zv[j] - zv[jstar]) > 0):
            jstar = j
    h = mu + zv[jstar] - zv[yv]
    if bool(sp.simplify(h) >= 0):
        return sp.Matrix([int(i == jstar) - int(i == yv) for i in range(c)])
    return sp.zeros(c, 1)


# Non-differentiable points of the hinge loss (C = 3, y = 0), written with t > 0 so SymPy
# decides every comparison: where h = 0, where competitors tie, and both.
_HINGE_KINKS = [
    ("h = 0,\\ z_1 > z_2", lambda z0, t, mu: (z0, z0 - mu, z0 - mu - t)),
    ("h > 0,\\ z_1 = z_2", lambda z0, t, mu: (z0, z0 - mu + t, z0 - mu + t)),
    ("h = 0,\\ z_1 = z_2", lambda z0, t, mu: (z0, z0 - mu, z0 - mu)),
    ("h = 0,\\ z_2 > z_1", lambda z0, t, mu: (z0, z0 - mu - t, z0 - mu)),
]


def _prove_hinge():
    from verify.subgradient import convex_weights
    pr = Proof("hinge_loss")
    mg = sp.Symbol("mu", nonnegative=True)
    for yv in range(C):
        for j in range(C):
            if j == yv:
                continue
            piece = mg + ZS[j] - ZS[yv]
            grad = [sp.diff(piece, v) for v in ZS]
            ok = all(grad[i] == int(i == j) - int(i == yv) for i in range(C))
            if not ok:
                pr.add(f"y={yv}, j={j}", False, "diff", "failed")
    pr.add("\\text{on the open region where } j^* \\text{ is the unique maximizer of } "
           "z_j\\ (j \\ne y) \\text{ and } h > 0:\\ \\nabla(\\mu + z_{j^*} - z_y) = e_{j^*} - e_y;"
           "\\ \\text{where } h < 0: \\nabla 0 = 0", True, "diff of each affine piece")
    # At a kink the loss max(0, mu + z_1 - z_0, mu + z_2 - z_0) (y = 0) is a max of affine
    # pieces: its subdifferential is the convex hull of the gradients of the pieces that
    # attain the max. The kernel's rule must give a point of that hull.
    t = sp.Symbol("t", positive=True)
    z0 = sp.Symbol("z_0", real=True)
    pieces = [sp.Integer(0), mg + ZS[1] - ZS[0], mg + ZS[2] - ZS[0]]
    for where, at in _HINGE_KINKS:
        pt = dict(zip(ZS, at(z0, t, mg)))
        vals = [p.subs(pt) for p in pieces]
        top = vals[0]
        for v in vals[1:]:
            top = v if bool(sp.simplify(v - top) > 0) else top
        active = [k for k, v in enumerate(vals) if sp.simplify(v - top) == 0]
        verts = [sp.Matrix([sp.diff(pieces[k], v) for v in ZS]) for k in active]
        labels = ["0" if k == 0 else f"e_{k} - e_0" for k in active]
        kern = _hinge_kernel_rule([pt[v] for v in ZS], 0, mg)
        w = convex_weights(verts, kern)
        ok = w is not None
        picked = ("" if not ok else ", ".join(f"{sp.latex(a)}\\,({lab})"
                                              for a, lab in zip(w, labels)))
        pr.add(f"{where}\\ (y = 0):\\ \\partial L = \\operatorname{{conv}}\\{{"
               f"{', '.join(labels)}\\}};\\ \\text{{kernel gives }} "
               f"{sp.latex(kern.T)} = {picked if ok else '?'}",
               ok, "active pieces decided by SymPy (t > 0); convex weights solved exactly",
               "convention" if ok else "failed")
    pr.derived = r"\partial L = \operatorname{conv}\{\nabla \ell_k : \ell_k \text{ active}\},\ \ell_0 = 0,\ \ell_j = \mu + z_j - z_y"
    pr.closed = r"(e_{j^*} - e_y)\,[h \ge 0]/n,\ j^* = \text{first argmax}_{j\neq y} z_j"
    return pr


def _prove_poisson():
    pr = Proof("poisson_loss")
    t = sp.Symbol("t", positive=True)
    mu = sp.exp(_zl)
    kern = mu - t * _zl + t * sp.log(t) - t     # the four-term sum (poisson_rows, far)
    # scikit-learn's half Poisson deviance with the log link: xlogy(t, t / mu) - t + mu
    pr.identity("t\\log(t/e^z) - t + e^z = e^z - t z + t\\log t - t",
                sp.expand_log(t * sp.log(t / mu), force=True) - t + mu, kern)
    pr.identity("t = 0:\\ \\lim_{t\\to 0^+} L = e^z\\ (0\\log 0 = 0)",
                sp.limit(kern, t, 0, "+"), mu)
    pr.identity("\\partial L/\\partial z = e^z - t", sp.diff(kern, _zl), mu - t)
    pr.identity("\\partial^2 L/\\partial z^2 = e^z > 0 \\text{ (strictly convex in } z)",
                sp.diff(kern, _zl, 2), mu)
    # the forms poisson_rows computes (t > 0, d = z - log t): t phi(d) near the fit, from
    # E1 = expm1(d/4) = x + q and E2 = expm1(d/2) = E1 (2 + E1) (x = d/4, q = E1 - x),
    # and the two far forms
    d, x = sp.Symbol("d", real=True), sp.Symbol("x", real=True)
    dz, phi = _zl - sp.log(t), lambda v: sp.exp(v) - 1 - v
    e1 = sp.exp(d / 4) - 1
    e2 = e1 * (2 + e1)
    pr.identity("t\\,\\varphi(z - \\log t) = e^z - t z + t\\log t - t,\\ "
                "\\varphi(d) = e^d - 1 - d", sp.expand(t * phi(dz)), kern)
    pr.identity("\\varphi(d) = E_2^2 + 4q + 2E_1^2,\\ E_1 = e^{d/4} - 1 = x + q,\\ "
                "E_2 = E_1(2 + E_1)", (e2 ** 2 + 4 * (e1 - d / 4) + 2 * e1 ** 2), phi(d))
    pr.identity("E_1(2 + E_1) = e^{d/2} - 1,\\ x = d/4",
                e2.subs(d, 4 * x), sp.exp(2 * x) - 1)
    pr.identity("d < -2\\ln 2:\\ e^z + t((\\log t - 1) - z) = L",
                mu + t * ((sp.log(t) - 1) - _zl), kern)
    pr.identity("d > 2\\ln 2:\\ (e^z - t) - t\\,(z - \\log t) = L",
                (mu - t) - t * dz, kern)
    pr.add("\\text{c outputs: the sum of independent terms, mean over } n \\text{ rows}",
           True, "linearity")
    pr.derived = r"e^z - t"
    pr.closed = r"(e^z - t)/n"
    return pr


def _poisson_oracle(row, t):
    """sum_j e^{z_j} - t_j z_j + t_j log t_j - t_j (0 log 0 = 0) and its gradient, with
    adaptive precision (``exact``): near the fit the terms cancel, so the working
    precision of the caller (double's, by default) would give the four-term sum's own
    rounding errors back as the reference."""
    ts = [mpmath.mpf(float(v)) for v in np.asarray(t).reshape(-1)]

    def f(*zs):
        val = sum(mp_exp(z) - tj * z + (tj * mpmath.log(tj) - tj if tj > 0 else 0)
                  for z, tj in zip(zs, ts))
        return [val] + [mp_exp(z) - tj for z, tj in zip(zs, ts)]
    vals = exact(f, *row)
    return vals[0], [vals[1:]]


def _poisson_inputs(c, quick):
    def inputs(dt):
        rng = np.random.default_rng(10)
        Z = (rng.standard_normal((8 if quick else 40, c)) * 2).astype(dt)
        T = rng.poisson(2.0, Z.shape).astype(dt)
        edges = np.array([[-30.0, 0.0, 1e-8, 20.0]], dtype=dt)[:, :c]
        # near the fit, z = log t + d on both sides of NN_POISSON_NEAR (t phi(d) inside,
        # e^z - t (1 + d) outside), with t = 1e5, where the four-term sum would cancel.
        # (d = +-0.2 there, not smaller: the gradient e^z - t cancels too, and its error,
        # an ulp of e^z, is within 8 ulp of e^z - t only for |e^z/t - 1| >~ 0.1.)
        from nnlib._paths import path_value
        near = path_value("NN_POISSON_NEAR")
        Tn = np.array([[1e5, 3.0, 1.0, 0.37], [1e5, 20.0, 1e-3, 7.0]], dtype=dt)[:, :c]
        Dn = np.array([[0.2, -near * (1 - 1e-6), near * (1 + 1e-6), 1e-6],
                       [-0.2, near * (1 - 1e-6), -near * (1 + 1e-6), 0.5]])[:, :c]
        Zn = (np.log(Tn.astype(np.float64)) + Dn).astype(dt)
        return [(Z, T), (edges, np.array([[0.0, 1.0, 0.0, 3.0]], dtype=dt)[:, :c]),
                (Zn, Tn)]
    return inputs


def _squared_oracle(zs):
    """The definition 1/2 |z - t|^2 with the target as symbols too, lambdified once."""
    ts = sp.symbols(f"t0:{len(zs)}", real=True)
    L = sp.Rational(1, 2) * sum((a - b) ** 2 for a, b in zip(zs, ts))
    f = lambdify(list(zs) + list(ts), L, MPMATH)
    d = lambdify(list(zs) + list(ts), [sp.diff(L, v) for v in zs], MPMATH)

    def oracle(row, t):
        args = list(row) + [mpmath.mpf(float(v)) for v in t]
        return exact(f, *args), [exact(d, *args)]
    return oracle


def _sparsemax_loss_oracle(row, yv):
    p, _ = sparsemax_exact(row)
    zs = [Fraction(float(v)) for v in row]
    yv = int(yv)
    val = sum(a * b for a, b in zip(p, zs)) - sum(a * a for a in p) / 2 - zs[yv] + \
        Fraction(1, 2)
    to = lambda q: mpmath.mpf(q.numerator) / q.denominator  # noqa: E731
    return to(val), [[to(p[i] - int(i == yv)) for i in range(len(zs))]]


def _hinge_oracle(margin):
    def oracle(row, yv):
        zs = [Fraction(float(v)) for v in row]
        yv = int(yv)
        c = len(zs)
        to = lambda q: mpmath.mpf(q.numerator) / q.denominator  # noqa: E731
        others = [j for j in range(c) if j != yv]
        if not others:
            return mpmath.mpf(0), [[mpmath.mpf(0)] * c]
        best = max(zs[j] for j in others)
        h = Fraction(margin) + best - zs[yv]
        active = [j for j in others if zs[j] == best]
        act = [[to(Fraction(int(i == j) - int(i == yv))) for i in range(c)] for j in active]
        names = [f"e_{j} - e_{yv}" for j in active]
        zero = [[mpmath.mpf(0)] * c]
        if h > 0:
            return to(h), act, names
        if h < 0:
            return mpmath.mpf(0), zero, ["0"]
        return mpmath.mpf(0), zero + act, ["0"] + names    # the kink: conv{0, e_j - e_y}
    return oracle


def _class_inputs(c, quick):
    def inputs(dt):
        rng = np.random.default_rng(7)
        Z1 = map_rows(dt, 8 if quick else 40, rng, c)
        Z2 = (rng.standard_normal((16, c)) * 3).astype(dt)
        Z3 = np.array([[1.0, 1.0, 0.0, -2.0], [0.5, 0.5, 0.5, 0.5], [3.0, 2.0, 2.0, 0.0],
                       [2.0, 1.0, 0.0, -1.0]], dtype=dt)[:, :c]   # ties and exact margins
        return [(Z, rng.integers(0, c, Z.shape[0])) for Z in (Z1, Z2)] + [
            (Z3, np.array([0, 1, 1, 0])), (Z3, np.array([2, 0, 0, 1]))]
    return inputs


def _squared_inputs(c, quick):
    def inputs(dt):
        rng = np.random.default_rng(8)
        Z = map_rows(dt, 8 if quick else 40, rng, c)
        T = (rng.standard_normal(Z.shape) * 2).astype(dt)
        return [(Z, T), (Z, Z.copy())]
    return inputs


def _logistic_inputs(quick):
    def inputs(dt):
        rng = np.random.default_rng(9)
        edges = np.array([0.0, 1e-30, -1e-30, 1e-8, 1.0, -1.0, 17.0, 18.5, -18.5, 33.0, 34.0,
                          -37.5, 40.0, -40.0, 700.0, -700.0, 1e4, -1e4], dtype=dt)
        z = np.concatenate([edges, (rng.standard_normal(8 if quick else 40) * 6).astype(dt)])
        return [(z, rng.integers(0, 2, z.shape[0])), (z.reshape(-1, 1),
                                                    rng.integers(0, 2, z.shape[0]))]
    return inputs


def _loss_specs(quick):
    zs = sp.symbols(f"z0:{C_EVID}", real=True)
    return {
        "softmax_cross_entropy": dict(
            latex=r"-\log \operatorname{softmax}(z)_y", prove=_prove_ce,
            per_sample=lambda yv: _ce(zs, int(yv)), symbols=zs,
            inputs=_class_inputs(C_EVID, quick)),
        "squared_error": dict(
            latex=r"\tfrac12 \lVert z - t \rVert^2", prove=_prove_squared,
            per_sample=None, symbols=zs, oracle=_squared_oracle(zs),
            inputs=_squared_inputs(C_EVID, quick)),
        "logistic_loss": dict(
            latex=r"-[y \log\sigma(z) + (1-y)\log(1-\sigma(z))],\ y \in \{0,1\}",
            prove=_prove_logistic, per_sample=lambda yv: _logistic_def(int(yv)),
            symbols=[_zl], inputs=_logistic_inputs(quick)),
        "sparsemax_loss": dict(
            latex=r"\max_{p\in\Delta}\big(p^\top z - \tfrac12\lVert p\rVert^2\big) - z_y + "
                  r"\tfrac12", prove=_prove_sparsemax_loss, per_sample=None, symbols=zs,
            oracle=_sparsemax_loss_oracle, inputs=_class_inputs(C_EVID, quick)),
        "hinge_loss": dict(
            latex=r"\max\big(0,\ \mu + \max_{j\ne y} z_j - z_y\big),\ \mu = 1",
            prove=_prove_hinge, per_sample=None, symbols=zs, oracle=_hinge_oracle(1.0),
            inputs=_class_inputs(C_EVID, quick)),
        "poisson_loss": dict(
            latex=r"\textstyle\sum_j e^{z_j} - t_j z_j + t_j \log t_j - t_j,\ t \ge 0",
            prove=_prove_poisson, per_sample=None, symbols=zs, oracle=_poisson_oracle,
            inputs=_poisson_inputs(C_EVID, quick)),
    }


# The 1-d sweeps the loss plots are drawn from: one sample per batch, so the compiled loss
# and gradient are compared point by point along a line through the logits.
SWEEP_DIR = (0.5, -0.5, 0.0)        # z_1.., fixed; z_0 = t varies; label y = 0 / target
SWEEP_TEXT = {
    "softmax_cross_entropy": "z = (t, 0.5, -0.5, 0), y = 0",
    "squared_error": "z = (t, 0.5, -0.5, 0), target (1, 0, 0, 0)",
    "logistic_loss": "z = t, y = 1",
    "sparsemax_loss": "z = (t, 0.5, -0.5, 0), y = 0",
    "hinge_loss": "z = (t, 0.5, -0.5, 0), y = 0 (kink at t = 1.5)",
    "poisson_loss": "z = (t, 0.5, -0.5, 0), target (1, 0, 2, 0)",
}


def sweep_ts(quick):
    return np.linspace(-3.0, 4.0, 29 if quick else 57)        # step 1/4 or 1/8: t = 1.5 hit


def _sweep_inputs(name, quick):
    ts = sweep_ts(quick)

    def inputs(dt):
        if name == "logistic_loss":
            return [(np.array([t], dtype=dt), np.array([1])) for t in ts]
        rows = [np.array([[t, *SWEEP_DIR]], dtype=dt) for t in ts]
        if name == "squared_error":
            return [(r, np.array([[1.0, 0.0, 0.0, 0.0]], dtype=dt)) for r in rows]
        if name == "poisson_loss":
            return [(r, np.array([[1.0, 0.0, 2.0, 0.0]], dtype=dt)) for r in rows]
        return [(r, np.array([0])) for r in rows]
    return inputs


LOSS_NAMES = ["softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss",
              "hinge_loss", "poisson_loss"]


def run_losses(ctx):
    out = []
    exported = K.exported()
    for name, spec, t0, proof, loss, grad in _each(ctx, _loss_specs(ctx.quick), "_grad"):
        result = None
        if loss is not None and grad is not None:
            result = check_loss(spec["per_sample"], spec["symbols"], loss, grad,
                                inputs=spec["inputs"], oracle=spec.get("oracle"),
                                dtypes=ctx.dtypes, name=name)
            extra = []
            if name == "hinge_loss":      # margin 0: the perceptron criterion
                extra.append(("hinge_loss(margin=0), the perceptron criterion", check_loss(
                    None, spec["symbols"], lambda Z, Y: loss(Z, Y, margin=0.0),
                    lambda Z, Y: grad(Z, Y, margin=0.0), inputs=spec["inputs"],
                    oracle=_hinge_oracle(0.0), dtypes=ctx.dtypes, name=name + "(margin=0)")))
            fused = K.kernel("loss_and_grad")
            if fused is not None:         # the one-pass (loss, grad) entry point
                extra.append((f"loss_and_grad({name!r}, z, y)", check_loss(
                    spec["per_sample"], spec["symbols"],
                    lambda Z, Y, n=name: fused(n, Z, Y)[0],
                    lambda Z, Y, n=name: fused(n, Z, Y)[1], inputs=spec["inputs"],
                    oracle=spec.get("oracle"), dtypes=ctx.dtypes, name="loss_and_grad")))
            sweep = check_loss(spec["per_sample"], spec["symbols"], loss, grad,
                               inputs=_sweep_inputs(name, ctx.quick),
                               oracle=spec.get("oracle"), dtypes=ctx.dtypes,
                               name=name + " (sweep)")
            extra.append((f"1-d sweep {SWEEP_TEXT[name]}", sweep))
            for label, r2 in extra:
                result.kinks += [dict(k, which=f"{k['which']} of {label}") for k in r2.kinks
                                 if label.startswith(("hinge", "1-d"))]
                _absorb(result, label, r2)
        out.append(_item(name, "loss", spec["latex"], proof, result, name in exported, t0,
                         {"_sweep": sweep} if result is not None else None))
    return out
