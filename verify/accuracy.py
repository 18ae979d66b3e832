"""Where a derivative computed from the rounded output keeps *relative* accuracy.

Design note
-----------
sigma' = s(1 - s) and tanh' = 1 - t^2 are evaluated from the output (s = sigma(z) or
t = tanh z, already rounded). Where the output approaches 1 (sigma, z > 0) or +-1 (tanh), the
factor 1 - s (or 1 - t^2) is a difference of nearly equal numbers: it carries the output's
absolute rounding error (<= eps/2), so the derivative keeps only an *absolute* accuracy of
about eps while its value shrinks like e^-|z|. This module measures, instead of asserting,
where that happens: both paths nnlib has — the functional ``*_vjp`` (derivative at z, via
sigma(z)) and the Dense layer's backward (``dense_backward``: derivative from the layer's
output H) — are compared with the exact derivative on a log-spaced sweep of |z|, and the
report states the first |z| where the relative (ULP) bound fails and the absolute error that
still holds there. The sweep fails the kernel only if neither bound holds.

The functional vjps also take the output itself (``name_vjp(x, g, output=y)``, PyTorch's
``sigmoid_backward(g, y)``). Their contract is about the *given* y, not about z:
``output_vjp_evidence`` evaluates the registry's closed form in y (``closed_grad_y``:
y(1 - y), 1 - y^2, y + alpha, 1 - e^-y, ...) exactly (mpmath) at each y the forward
produced, times g, and holds the compiled result to ``OUTPUT_VJP_LIMIT`` ulp: 0.501 in
float32 (the double evaluation rounded once) and a few ulp in float64.
"""
import math

import mpmath
import numpy as np
import sympy as sp

from verify import kernels as K
from verify.api import _ok
from verify.evidence import DTYPES, MPMATH, edge_points, exact, lambdify, measure
from verify.registry import y, z

__all__ = ["FROM_OUTPUT", "output_form_sweep", "OUTPUT_VJP_LIMIT", "output_vjp_evidence"]

FROM_OUTPUT = ("sigmoid", "tanh")          # activations whose derivative uses the output


# float32: computed in double (relative error <= ~2^-50) and rounded once; float64: the
# formula's own roundings (two or three) and, for softplus, nn_expm1_neg's 0.81 ulp
OUTPUT_VJP_LIMIT = {"float32": 0.501, "float64": 2.0}


def output_vjp_evidence(act, dtypes, quick=False, seed=0):
    """The vjp given the forward's output, against closed_grad_y(y) * g evaluated exactly at
    the y the compiled forward returned. Returns {"passed", "rows", "worst"} (JSON-able)."""
    import inspect

    fwd, vjp = K.kernel(act.name), K.kernel(act.name + "_vjp")
    rows, worst, passed = [], {}, True
    if fwd is None or vjp is None or "output" not in inspect.signature(vjp).parameters:
        return {"passed": False, "worst": worst,
                "rows": [(f"{act.name}_vjp(output=y)", "FAIL: no output= path")]}
    kw = act.nnlib_kwargs
    gy = lambdify(y, act.closed_grad_y.subs(
        {s: v for s, (_, v) in act.params.items()}), MPMATH)
    rng = np.random.default_rng(seed)
    for dname in dtypes:
        dt = DTYPES[dname]
        edges = np.array([e for e in edge_points(dt) if np.isfinite(e)], dtype=dt)
        xs = np.concatenate([edges, sweep_points(dt, True),
                             (rng.standard_normal(40 if quick else 400) * 8)]).astype(dt)
        ys = np.asarray(fwd(xs, **kw))
        g = rng.standard_normal(xs.shape).astype(dt)
        got = np.asarray(vjp(xs, g, output=ys, **kw))
        limit, bad, top = OUTPUT_VJP_LIMIT[dname], None, (0.0, None)
        for i in range(xs.shape[0]):
            e = exact(lambda yy, gg: gy(yy) * gg, mpmath.mpf(float(ys[i])),
                      mpmath.mpf(float(g[i])))
            m = measure(got[i], e, dt)
            if m.ulps > top[0]:
                top = (m.ulps, float(ys[i]))
            if not m.ulps <= limit and bad is None:
                bad = (float(ys[i]), float(got[i]), mpmath.nstr(e, 17), m.ulps)
        passed &= bad is None
        worst[dname] = top[0]
        text = (f"{top[0]:.3g} ulp at most (limit {limit:g}) over {xs.shape[0]} outputs "
                f"y = {act.name}(x) of edge, swept and random x, exact: "
                f"{act.name}'(y) * g in y")
        if bad is not None:
            text += f"; FAIL at y = {bad[0]!r}: got {bad[1]!r}, exact {bad[2]} ({bad[3]:.3g} ulp)"
        rows.append((f"{act.name}_vjp(output=y), {dname}", text))
    return {"passed": bool(passed), "rows": rows, "worst": worst}


def sweep_points(dtype, quick):
    top = 800.0 if dtype == np.float64 else 100.0
    mags = np.logspace(-1, math.log10(top), 24 if quick else 48)
    return np.concatenate([-mags[::-1], mags]).astype(dtype)


def _paths(name):
    """(label, callable z -> derivative) for each way nnlib computes act'(z)."""
    out = []
    vjp = K.kernel(name + "_vjp")
    if vjp is not None:
        out.append(("vjp (functional)", lambda x: vjp(x, np.ones_like(x))))
    fwd, back = K.kernel("dense_forward"), K.kernel("dense_backward")
    if fwd is not None and back is not None:
        def from_output(x):
            # one sample, one input equal to 1, W = the identity on a 1-by-m layer: the
            # output H = act(z) is what the layer keeps, and db = act'(H) * 1
            X = np.ones((1, 1), dtype=x.dtype)
            W = x.reshape(1, -1).copy()
            H = fwd(X, W, np.zeros(x.shape[0], dtype=x.dtype), name)
            _, _, db = back(X, W, H, np.ones_like(H), name)
            return np.asarray(db).reshape(-1)
        out.append(("dense_backward (from the output H)", from_output))
    return out


def output_form_sweep(act, dtypes, quick=False):
    """Measure act' along the sweep for every path and dtype. Returns a dict (JSON-able)
    with ``passed``, ``rows`` for the report and ``series`` for the plot."""
    d_exact = lambdify(z, sp.diff(act.definition, z), MPMATH)
    series, rows, passed = [], [], True
    for dname in dtypes:
        dt = DTYPES[dname]
        xs = sweep_points(dt, quick)
        ex = [exact(d_exact, mpmath.mpf(float(x))) for x in xs]
        tol = act.vjp_tol[dname]
        for label, fn in _paths(act.name):
            got = np.asarray(fn(np.ascontiguousarray(xs)))
            ms = [measure(got[i], ex[i], dt) for i in range(len(xs))]
            rel_ok = [m.ulps <= tol.ulps for m in ms]
            ok = [_ok(m, tol) for m in ms]
            passed &= all(ok)
            bad_rel = [abs(float(x)) for x, r in zip(xs, rel_ok) if not r]
            z_star = min(bad_rel) if bad_rel else None
            series.append(dict(path=label, dtype=dname, z=[float(x) for x in xs],
                               ulps=[m.ulps for m in ms], abs_eps=[m.abs_eps for m in ms],
                               z_star=z_star, tol_ulps=tol.ulps, tol_abs=tol.abs_eps))
            if z_star is None:
                text = (f"relative: <= {tol.ulps:g} ulp on the whole sweep "
                        f"(|z| <= {abs(float(xs[-1])):g})")
            else:
                text = f"<= {tol.ulps:g} ulp for |z| < {z_star:.3g}; beyond: "
                parts = []
                for sgn, name in ((1, "z > 0"), (-1, "z < 0")):
                    far = [m for x, m in zip(xs, ms) if sgn * x >= z_star]
                    parts.append(f"{name} up to {max(m.ulps for m in far):.3g} ulp "
                                 f"({max(m.abs_eps for m in far):.3g} eps absolute)")
                text += "; ".join(parts) + f" [absolute bound {tol.abs_eps:g} eps]"
            if not all(ok):
                first = next(float(x) for x, o in zip(xs, ok) if not o)
                text += f"; FAIL at z = {first!r}: neither bound holds"
            rows.append((f"{act.name}' accuracy, {label}, {dname}", text))
    return {"passed": bool(passed), "rows": rows, "series": series}
