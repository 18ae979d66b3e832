"""Output maps (softmax, log_softmax, sparsemax) and losses (softmax cross-entropy, squared
error, logistic, sparsemax, hinge): definitions, proofs and evidence.

Design note
-----------
Smooth objects (softmax, log_softmax, cross-entropy, squared error, logistic) are SymPy
expressions in C = 3 logits; their Jacobians / gradients / Hessians are derived and shown
equal to the closed forms the kernels use (``nnlib/_kernels/loss_rows.pxd``) by canonical
forms of rational functions in exp(z_i).

Sparsemax, the sparsemax loss and the hinge loss are piecewise: on each region of R^C they
are polynomials, so the proof enumerates the regions. For sparsemax the region of a support
S is {z_i > tau_S on S, z_i < tau_S off S} with tau_S = (sum_S z - 1)/|S|; on it the closed
form p_S = (z - tau_S)_S is shown to satisfy the KKT conditions of
min ||p - z||^2 s.t. p >= 0, 1^T p = 1 (strictly convex, so KKT identifies THE projection),
and its Jacobian is derived and compared with diag(s) - s s^T / |S|.

The evidence oracle for these piecewise maps does not reuse the kernel's sort-based
algorithm: it converts the float inputs to exact rationals and tries every support S, keeping
those that satisfy KKT (non-strictly). More than one surviving S means a boundary point, and
each survivor's Jacobian is an accepted one-sided Jacobian there.
"""
import itertools
import time
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from verify import kernels as K
from verify.api import check_loss, check_map, map_rows
from verify.evidence import exact
from verify.proofs import Proof
from verify.registry import Tolerance

__all__ = ["run_maps", "run_losses", "sparsemax_exact", "MAP_NAMES", "LOSS_NAMES"]

C = 3                                        # logits in the symbolic proofs
ZS = sp.symbols(f"z0:{C}", real=True)
GS = sp.symbols(f"g0:{C}", real=True)        # an upstream gradient (for vjp identities)
_S = sum(sp.exp(v) for v in ZS)
P = [sp.exp(v) / _S for v in ZS]             # softmax, from the definition
C_EVID = 4                                   # logits in the evidence


def _softmax_exprs(zs):
    s = sum(sp.exp(v) for v in zs)
    return [sp.exp(v) / s for v in zs]


def _log_softmax_exprs(zs):
    return [sp.log(p) for p in _softmax_exprs(zs)]


def _mtex(M):
    return sp.latex(M)


# --------------------------------------------------------------------------- sparsemax

def _subsets(c):
    for r in range(1, c + 1):
        yield from itertools.combinations(range(c), r)


def sparsemax_exact(row):
    """Exact sparsemax of a row of floats / mpf (converted to exact rationals): returns
    (p as Fractions, [every support S satisfying the KKT conditions])."""
    zs = [Fraction(float(v)) for v in row]
    c = len(zs)
    supports, p = [], None
    for S in _subsets(c):
        tau = (sum(zs[i] for i in S) - 1) / len(S)
        if all(zs[i] >= tau for i in S) and all(zs[i] <= tau for i in range(c) if i not in S):
            supports.append(S)
            if p is None:
                p = [max(v - tau, Fraction(0)) for v in zs]
    return p, supports


def _sparsemax_jac(S, c):
    k = len(S)
    return [[(Fraction(int(i == j)) - Fraction(1, k)) if (i in S and j in S) else Fraction(0)
             for j in range(c)] for i in range(c)]


def _sparsemax_oracle(row):
    p, supports = sparsemax_exact(row)
    c = len(row)
    to = lambda q: mpmath.mpf(q.numerator) / q.denominator  # noqa: E731
    return [to(q) for q in p], [[[to(q) for q in r] for r in _sparsemax_jac(S, c)]
                                for S in supports], [
        "J_{" + ",".join(map(str, S)) + "}" for S in supports]


# Support changes of sparsemax in C = 3 (exact rational points): z_2 = tau on the {0, 1}
# face (two regions meet), and a vertex of the simplex where z_1 = z_2 = tau (four meet).
_SPARSEMAX_BOUNDARIES = [(sp.Rational(3, 4), sp.Rational(1, 4), 0), (1, 0, 0),
                         (sp.Rational(1, 2), sp.Rational(1, 2), 0)]


def _sparsemax_boundary_steps(pr, c):
    """At each support change, the kernel's Jacobian (support read off the output, p_j > 0,
    transcribed from output_maps.pyx) must lie in the Clarke generalized Jacobian: the
    convex hull of the Jacobians of the regions that meet there (every S satisfying the KKT
    conditions non-strictly, found exactly)."""
    from verify.subgradient import convex_weights
    for zv in (_SPARSEMAX_BOUNDARIES if c == 3 else []):
        p, supports = sparsemax_exact([float(v) for v in zv])
        verts = [sp.Matrix(_sparsemax_jac(S, c)) for S in supports]
        kern_S = tuple(j for j in range(c) if p[j] > 0)
        kern = sp.Matrix(_sparsemax_jac(kern_S, c))
        w = convex_weights([list(v) for v in verts], list(kern))
        labels = ["J_{\\{" + ",".join(map(str, S)) + "\\}}" for S in supports]
        pr.add(f"z = {sp.latex(tuple(zv))}:\\ \\partial_C p = \\operatorname{{conv}}\\{{"
               f"{', '.join(labels)}\\}};\\ \\text{{kernel: }} S = \\{{j : p_j > 0\\}} = "
               f"\\{{{','.join(map(str, kern_S))}\\}},\\ J_S = "
               + (", ".join(f"{sp.latex(a)}\\,{lab}" for a, lab in zip(w, labels))
                  if w is not None else "?"),
               w is not None and len(supports) > 1,
               "supports by exact KKT (Fractions); convex weights solved exactly",
               "convention" if w is not None and len(supports) > 1 else "failed")


def _prove_sparsemax(c=C):
    pr = Proof("sparsemax")
    zs = sp.symbols(f"z0:{c}", real=True)
    for S in _subsets(c):
        k = len(S)
        tau = (sum(zs[i] for i in S) - 1) / k
        p = [zs[i] - tau if i in S else sp.Integer(0) for i in range(c)]
        name = "S = \\{" + ",".join(str(i) for i in S) + "\\}"
        ok1 = sp.expand(sum(p) - 1) == 0
        # stationarity of 1/2||p - z||^2 + tau (1^T p - 1) - mu^T p: p - z + tau 1 - mu = 0
        mu = [sp.expand(p[i] - zs[i] + tau) for i in range(c)]
        ok2 = all(mu[i] == 0 for i in S) and all(sp.expand(mu[i] - (tau - zs[i])) == 0
                                                 for i in range(c) if i not in S)
        pr.add(f"{name}: \\sum_i p_i = 1,\\ p - z + \\tau_S 1 = \\mu,\\ \\mu_S = 0,\\ "
               f"\\mu_i = \\tau_S - z_i > 0 \\ (i \\notin S) \\text{{ on the region }}",
               ok1 and ok2, "expand (KKT of the projection; strictly convex => unique)",
               None if ok1 and ok2 else "failed")
        J = sp.Matrix(p).jacobian(zs)
        s = sp.Matrix([1 if i in S else 0 for i in range(c)])
        Jc = sp.diag(*s) - s * s.T / k
        okj = (J - Jc).expand() == sp.zeros(c, c)
        pr.add(f"{name}: \\partial p / \\partial z = {_mtex(J)} = "
               f"\\operatorname{{diag}}(s) - s s^\\top/|S|", okj, "expand",
               None if okj else "failed")
        gsyms = sp.symbols(f"g0:{c}", real=True)
        g = sp.Matrix(gsyms)
        vjp = sp.Matrix([s[i] * (g[i] - sum(g[j] * s[j] for j in range(c)) / k)
                         for i in range(c)])
        okv = (J.T * g - vjp).expand() == sp.zeros(c, 1)
        pr.add(f"{name}: J^\\top g = s \\odot (g - \\operatorname{{mean}}_S g)", okv,
               "expand", None if okv else "failed")
    pr.add("\\text{the regions cover } \\mathbb{R}^C \\text{ up to their boundaries (every "
           "z has a projection, whose support is some S)}", True,
           "existence of the projection")
    _sparsemax_boundary_steps(pr, c)
    pr.derived = r"\partial p/\partial z = \operatorname{diag}(s) - s s^\top/|S| \text{ on each region}"
    pr.closed = r"J^\top g = s \odot \big(g - \tfrac{1}{|S|}\textstyle\sum_{j \in S} g_j\big)"
    return pr


# --------------------------------------------------------------------------- maps

def _prove_softmax():
    pr = Proof("softmax")
    J = sp.Matrix(P).jacobian(ZS)
    p = sp.Matrix(P)
    Jc = sp.diag(*P) - p * p.T
    pr.identity("\\partial \\operatorname{softmax} / \\partial z = \\operatorname{diag}(p) - "
                "p p^\\top \\text{ (each entry)}", sp.Matrix(J - Jc).norm(1) * 0 + sum(
                    (J - Jc)), 0)
    ok = all(sp.cancel(e) == 0 for e in (J - Jc))
    pr.steps[-1].status = "proved" if ok else "failed"
    pr.steps[-1].method = "cancel, entry by entry"
    g = sp.Matrix(GS)
    vjp = sp.Matrix([P[i] * (GS[i] - sum(GS[j] * P[j] for j in range(C))) for i in range(C)])
    okv = all(sp.cancel(e) == 0 for e in (J.T * g - vjp))
    pr.add("J^\\top g = p \\odot (g - \\langle g, p \\rangle)", okv, "cancel",
           None if okv else "failed")
    c = sp.Symbol("c", real=True)
    shifted = _softmax_exprs([v + c for v in ZS])
    oks = all(sp.cancel(sp.expand(a - b)) == 0 for a, b in zip(shifted, P))
    pr.add("\\operatorname{softmax}(z + c\\mathbf{1}) = \\operatorname{softmax}(z) "
           "\\text{ (the kernel subtracts } \\max z)", oks, "expand + cancel",
           None if oks else "failed")
    pr.identity("\\sum_i p_i = 1", sum(P), 1)
    pr.derived = _mtex(sp.simplify(J[0, :]))[:0] + r"J_{ij} = p_i(\delta_{ij} - p_j)"
    pr.closed = r"J = \operatorname{diag}(p) - p p^\top,\quad J^\top g = p \odot (g - \langle g, p\rangle)"
    return pr


def _prove_log_softmax():
    pr = Proof("log_softmax")
    L = _log_softmax_exprs(ZS)
    m = sp.Symbol("m", real=True)
    kern = [v - m - sp.log(sum(sp.exp(w - m) for w in ZS)) for v in ZS]
    ok = all(prove_log_identity(a, b) for a, b in zip(L, kern))
    pr.add("\\log \\operatorname{softmax}(z)_i = (z_i - m) - \\log \\sum_j e^{z_j - m} "
           "\\ \\forall m \\text{ (the kernel's form, m = max z)}", ok,
           "exp of both sides + cancel (both real)", None if ok else "failed")
    J = sp.Matrix(L).jacobian(ZS)
    Jc = sp.Matrix(C, C, lambda i, j: int(i == j) - P[j])
    okj = all(sp.cancel(e) == 0 for e in (J - Jc))
    pr.add("\\partial \\log p_i / \\partial z_j = \\delta_{ij} - p_j", okj, "cancel",
           None if okj else "failed")
    g = sp.Matrix(GS)
    vjp = sp.Matrix([GS[i] - P[i] * sum(GS) for i in range(C)])
    okv = all(sp.cancel(e) == 0 for e in (J.T * g - vjp))
    pr.add("J^\\top g = g - p \\sum_j g_j", okv, "cancel", None if okv else "failed")
    pr.derived = r"J_{ij} = \delta_{ij} - p_j"
    pr.closed = r"J^\top g = g - \operatorname{softmax}(z) \textstyle\sum_j g_j"
    return pr


def prove_log_identity(a, b):
    """a == b for real-valued logs: exp(a) == exp(b) (exp is injective on the reals)."""
    return sp.cancel(sp.expand(sp.exp(a) - sp.exp(b))) == 0 or \
        sp.simplify(sp.expand_log(a - b, force=True)) == 0


MAPS = {
    "softmax": dict(latex=r"\operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}",
                    prove=_prove_softmax, exprs=_softmax_exprs),
    "log_softmax": dict(latex=r"\log \operatorname{softmax}(z)_i", prove=_prove_log_softmax,
                        exprs=_log_softmax_exprs),
    "sparsemax": dict(latex=r"\operatorname{sparsemax}(z) = \arg\min_{p \in \Delta} "
                            r"\lVert p - z \rVert^2", prove=_prove_sparsemax, exprs=None),
}
MAP_NAMES = list(MAPS)
_MAP_TOL = {
    # log_softmax: z_i - m - log(sum) cancels when z_i is the maximum and the sum is ~1
    # (output near 0): only an absolute bound of a few eps times the logits' size holds.
    "log_softmax": {"float64": Tolerance(8, 8), "float32": Tolerance(2, 4)},
}


def _item(name, kind, latex, proof, result, required, t0, extra=None):
    ev_ok = result.passed if result is not None else not required
    passed = proof.passed and ev_ok
    if result is None:
        verdict = "FAIL (exported but not callable)" if required else (
            "proved; proof only (kernel not in nnlib yet)" if proof.passed else "FAIL")
    else:
        verdict = "pass" if passed else "FAIL"
    it = {"name": name, "section": "kernels", "kind": kind, "definition": latex,
          "derived": proof.derived, "closed": proof.closed, "proof": proof.as_dict(),
          "evidence": result.as_dict() if result is not None else None,
          "available": result is not None, "required": required, "passed": passed,
          "verdict": verdict, "seconds": round(time.perf_counter() - t0, 3),
          "_result": result}
    it.update(extra or {})
    return it


def _each(ctx, specs, suffix):
    """(name, spec, start time, proof, kernel, its derivative kernel) for wanted names."""
    for name, spec in specs.items():
        if ctx.wanted(name):
            t0 = time.perf_counter()
            yield name, spec, t0, spec["prove"](), K.kernel(name), K.kernel(name + suffix)


def _absorb(result, label, r2):
    """Fold a sub-check into a kernel's result: its failures fail the kernel."""
    if not r2.passed:
        result.passed = False
        result.failures = r2.failures + result.failures
        result.n_failures += r2.n_failures
    result.notes.append(f"{label}: {'pass' if r2.passed else 'FAIL'}")


def slice_rows(quick):
    """The 3-class slice z = (a, b, 0) on a grid, for the simplex picture."""
    ab = np.linspace(-2.5, 2.5, 11 if quick else 17)
    return np.array([[a, b, 0.0] for a in ab for b in ab])


def run_maps(ctx):
    out = []
    exported = K.exported()
    zs = sp.symbols(f"z0:{C_EVID}", real=True)
    z3 = sp.symbols("z0:3", real=True)
    for name, spec, t0, proof, fwd, vjp in _each(ctx, MAPS, "_vjp"):
        result, extra = None, {}
        if fwd is not None and vjp is not None:
            kw = dict(oracle=_sparsemax_oracle) if name == "sparsemax" else {}
            tol = _MAP_TOL.get(name)
            result = check_map(spec["exprs"](zs) if spec["exprs"] else None, zs, fwd, vjp,
                               dtypes=ctx.dtypes, n_random=12 if ctx.quick else 60,
                               seed=ctx.seed, name=name, tol=tol, vjp_tol=tol, **kw)
            if name in ("softmax", "sparsemax"):
                # C = 3 on the grid z = (a, b, 0): the simplex picture is drawn from this
                sl = check_map(spec["exprs"](z3) if spec["exprs"] else None, z3, fwd, vjp,
                               rows=slice_rows(ctx.quick), dtypes=ctx.dtypes, seed=ctx.seed,
                               name=name + " (3-class slice)", tol=tol, vjp_tol=tol, **kw)
                _absorb(result, f"3-class slice z = (a, b, 0), {len(slice_rows(ctx.quick))} "
                                f"rows", sl)
                result.kinks += [dict(k, which=f"{k['which']} on the 3-class slice")
                                 for k in sl.kinks]
                extra["_slice"] = sl
        out.append(_item(name, "output map", spec["latex"], proof, result,
                         name in exported, t0, extra))
    return out


# --------------------------------------------------------------------------- losses

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
        grad = [sp.diff(L, v) for v in ZS]
        okg = all(sp.cancel(grad[i] - (P[i] - int(i == yv))) == 0 for i in range(C))
        pr.add(f"y={yv}: \\nabla_z = p - e_y", okg, "cancel", None if okg else "failed")
        H = sp.hessian(L, ZS)
        Hc = sp.diag(*P) - sp.Matrix(P) * sp.Matrix(P).T
        okh = all(sp.cancel(e) == 0 for e in (H - Hc))
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


def _prove_sparsemax_loss(c=C):
    pr = Proof("sparsemax_loss")
    zs = sp.symbols(f"z0:{c}", real=True)
    m = sp.Symbol("m", real=True)
    for S in _subsets(c):
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


def _squared_oracle(zs):
    """The definition 1/2 |z - t|^2 with the target as symbols too, lambdified once."""
    ts = sp.symbols(f"t0:{len(zs)}", real=True)
    L = sp.Rational(1, 2) * sum((a - b) ** 2 for a, b in zip(zs, ts))
    f = sp.lambdify(list(zs) + list(ts), L, "mpmath")
    d = sp.lambdify(list(zs) + list(ts), [sp.diff(L, v) for v in zs], "mpmath")

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
        return [(r, np.array([0])) for r in rows]
    return inputs


LOSS_NAMES = ["softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss",
              "hinge_loss"]


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
