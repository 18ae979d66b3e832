"""Membership of a computed (sub)gradient in a subdifferential given by its vertices.

Design note
-----------
At a non-differentiable point the oracles (``verify.output_maps``, ``verify.losses``) return every limiting
gradient (or vjp) — the gradients of the active pieces of a max of affine functions (hinge),
the one-sided Jacobians of the regions meeting at a sparsemax support change. The Clarke
subdifferential there is their convex hull, so a kernel may return *any* point of it, not
only a vertex. The check is:

1. the nearest vertex within the tolerance (exact: no arithmetic on the vertices), else
2. the Euclidean projection of the computed vector onto the hull, found exactly (mpmath, 60
   digits) by solving the affine least-squares problem on every small subset of vertices
   and keeping the solutions with non-negative weights; the computed vector passes iff it
   is within the tolerance of that projection.

Either way the element the kernel picked is described (``vertex 'e_1 - e_0'`` or the convex
weights), so the report can say which subgradient the code uses and that it is valid.
"""
import itertools
import math

import mpmath

from verify.evidence import measure

__all__ = ["hull_projection", "subgradient_measure", "describe_weights"]

_MAX_SUBSET = 4          # hull faces tried: simplices of up to 4 vertices


def _affine_ls(vs, c):
    """Weights (summing to 1) of the point of aff(vs) nearest to c, or None if degenerate."""
    if len(vs) == 1:
        return [mpmath.mpf(1)]
    v0 = vs[0]
    D = [[vi[k] - v0[k] for k in range(len(c))] for vi in vs[1:]]
    m = len(D)
    A = mpmath.matrix(m, m)
    rhs = mpmath.matrix(m, 1)
    for i in range(m):
        for j in range(m):
            A[i, j] = mpmath.fsum(D[i][k] * D[j][k] for k in range(len(c)))
        rhs[i] = -mpmath.fsum(D[i][k] * (v0[k] - c[k]) for k in range(len(c)))
    try:
        mu = mpmath.lu_solve(A, rhs)
    except ZeroDivisionError:
        return None
    return [1 - mpmath.fsum(mu[i] for i in range(m))] + [mu[i] for i in range(m)]


def hull_projection(c, vertices):
    """Nearest point of conv(vertices) to c: (point, weights over all vertices)."""
    c = [mpmath.mpf(float(x)) for x in c]
    best = None
    with mpmath.workdps(60):
        tiny = mpmath.mpf(10) ** -40
        idx = list(range(len(vertices)))
        for r in range(1, min(len(idx), _MAX_SUBSET) + 1):
            for sub in itertools.combinations(idx, r):
                lam = _affine_ls([vertices[i] for i in sub], c)
                if lam is None or any(v < -tiny for v in lam):
                    continue
                lam = [max(v, mpmath.mpf(0)) for v in lam]
                p = [mpmath.fsum(lam[a] * vertices[i][k] for a, i in enumerate(sub))
                     for k in range(len(c))]
                d = mpmath.fsum((p[k] - c[k]) ** 2 for k in range(len(c)))
                if best is None or d < best[0]:
                    w = [mpmath.mpf(0)] * len(vertices)
                    for a, i in enumerate(sub):
                        w[i] = lam[a]
                    best = (d, p, w)
    return best[1], best[2]


def describe_weights(weights, labels):
    """'vertex L' for a vertex, else the convex combination 0.5·A + 0.5·B."""
    nz = [(float(w), lab) for w, lab in zip(weights, labels) if float(w) > 1e-12]
    if len(nz) == 1:
        return f"vertex {nz[0][1]}"
    return "interior point " + " + ".join(f"{w:.3g}·({lab})" for w, lab in nz)


def _against(got_row, target, dt, ok_fn):
    """(all ok, number failed, largest error, first failing (else largest), its index)."""
    ms = [measure(got_row[j], target[j], dt) for j in range(len(target))]
    oks = [ok_fn(m) for m in ms]
    key = (lambda k: ms[k].ulps if not math.isinf(ms[k].ulps) else 1e308)
    top = max(range(len(ms)), key=key)
    bad = [k for k, o in enumerate(oks) if not o]
    j = bad[0] if bad else top
    return all(oks), len(bad), ms[top], ms[j], j


def subgradient_measure(got_row, vertices, labels, dt, ok_fn):
    """Is ``got_row`` in conv(vertices) up to rounding? ``ok_fn(Measure) -> bool`` applies
    the tolerance. Returns (ok, largest Measure, first failing (else largest) Measure, its
    component index, description of the element picked)."""
    labels = labels or [f"#{k}" for k in range(len(vertices))]
    best = None
    for k, v in enumerate(vertices):
        ok, nbad, top, bad, j = _against(got_row, v, dt, ok_fn)
        key = (nbad, top.ulps)
        if best is None or key < best[0]:
            best = (key, ok, top, bad, j, f"vertex {labels[k]}")
    if best[1] or len(vertices) == 1:
        return best[1:]
    p, w = hull_projection(got_row, vertices)
    ok, _, top, bad, j = _against(got_row, p, dt, ok_fn)
    if ok:
        return True, top, bad, j, describe_weights(w, labels)
    return best[1:]


def convex_weights(vertices, point):
    """Exact convex weights (SymPy Rationals/expressions) with sum_k w_k v_k = point, or
    None: tries each subset of the vertices (smallest first), solving the linear system
    exactly, and keeps the first solution with every weight >= 0 (decided by SymPy)."""
    import sympy as sp
    point = sp.Matrix(point)
    idx = range(len(vertices))
    for r in range(1, len(vertices) + 1):
        for sub in itertools.combinations(idx, r):
            lam = sp.symbols(f"lam0:{r}")
            eqs = list(sum((lam[a] * sp.Matrix(vertices[i]) for a, i in enumerate(sub)),
                           sp.zeros(*point.shape)) - point) + [sum(lam) - 1]
            sol = sp.solve(eqs, lam, dict=True)
            if not sol or any(s not in sol[0] for s in lam):
                continue
            vals = [sp.simplify(sol[0][s]) for s in lam]
            if all(v.is_nonnegative is True for v in vals):
                w = [sp.Integer(0)] * len(vertices)
                for a, i in enumerate(sub):
                    w[i] = vals[a]
                return w
    return None
