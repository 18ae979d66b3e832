"""Output maps (softmax, log_softmax, sparsemax; ``nnlib.functional`` from
``nnlib/_kernels/output_maps.pyx``): definitions, proofs and evidence.

Design note
-----------
softmax and log_softmax are SymPy expressions in C = 3 logits; their Jacobians are derived
and shown equal to the closed forms the kernels use (``nnlib/_kernels/loss_rows.pxd``) by
canonical forms of rational functions in exp(z_i).

Sparsemax is piecewise: on each region of R^C it is a polynomial, so the proof enumerates
the regions. The region of a support S is {z_i > tau_S on S, z_i < tau_S off S} with
tau_S = (sum_S z - 1)/|S|; on it the closed form p_S = (z - tau_S)_S is shown to satisfy the
KKT conditions of min ||p - z||^2 s.t. p >= 0, 1^T p = 1 (strictly convex, so KKT
identifies THE projection), and its Jacobian is derived and compared with
diag(s) - s s^T / |S|.

The evidence oracle for sparsemax does not reuse the kernel's sort-based algorithm: it
converts the float inputs to exact rationals and tries every support S, keeping those that
satisfy KKT (non-strictly). More than one surviving S means a boundary point, and each
survivor's Jacobian is an accepted one-sided Jacobian there.

The helpers that build a kernel item (``_item``, ``_each``, ``_absorb``) serve
``verify.losses`` too.
"""
import itertools
import time
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from verify import kernels as K
from verify.api import check_map
from verify.convexity import is_zero_rational
from verify.proofs import Proof
from verify.registry import Tolerance

__all__ = ["run_maps", "sparsemax_exact", "MAP_NAMES"]

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
    ok = all(is_zero_rational(e) for e in (J - Jc))
    pr.steps[-1].status = "proved" if ok else "failed"
    pr.steps[-1].method = "cancel, entry by entry"
    g = sp.Matrix(GS)
    vjp = sp.Matrix([P[i] * (GS[i] - sum(GS[j] * P[j] for j in range(C))) for i in range(C)])
    okv = all(is_zero_rational(e) for e in (J.T * g - vjp))
    pr.add("J^\\top g = p \\odot (g - \\langle g, p \\rangle)", okv, "cancel",
           None if okv else "failed")
    c = sp.Symbol("c", real=True)
    shifted = _softmax_exprs([v + c for v in ZS])
    oks = all(is_zero_rational(a - b) for a, b in zip(shifted, P))
    pr.add("\\operatorname{softmax}(z + c\\mathbf{1}) = \\operatorname{softmax}(z) "
           "\\text{ (the kernel subtracts } \\max z)", oks, "expand + cancel",
           None if oks else "failed")
    pr.identity("\\sum_i p_i = 1", sum(P), 1)
    pr.derived = r"J_{ij} = p_i(\delta_{ij} - p_j)"
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
    okj = all(is_zero_rational(e) for e in (J - Jc))
    pr.add("\\partial \\log p_i / \\partial z_j = \\delta_{ij} - p_j", okj, "cancel",
           None if okj else "failed")
    g = sp.Matrix(GS)
    vjp = sp.Matrix([GS[i] - P[i] * sum(GS) for i in range(C)])
    okv = all(is_zero_rational(e) for e in (J.T * g - vjp))
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
    ev_ok = result is not None and result.passed     # no evidence is never a pass
    passed = proof.passed and ev_ok
    if result is None:
        verdict = "FAIL (exported but not callable)" if required else (
            "FAIL (not available in nnlib: proof only, no evidence)")
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
