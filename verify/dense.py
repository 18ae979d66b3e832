"""The Dense layer H = act(X W + b): a matrix of symbols, its backward proved for ANY
activation, and the compiled dense_forward / dense_backward measured against SymPy.

Design note
-----------
The proof uses an undefined SymPy function ``act`` (so it holds for every activation at
once): with upstream gradient G, the scalar s = sum(G * act(X W + b)) is differentiated
entry by entry and compared with the closed forms the kernel implements,

    dZ = G * act'(Z),  dW = X^T dZ,  db = sum_rows dZ,  dX = dZ W^T.

The evidence substitutes each registered activation (its SymPy definition), draws X, W, b,
G at random, lets SymPy differentiate s with respect to every entry of X, W and b, evaluates
at high precision and compares with the compiled backward. Matrix products round in
proportion to the sizes of their terms, so the error is measured normwise: max |c - e| over
an array divided by max |e| (in units of the dtype's eps).
"""
import time

import mpmath
import numpy as np
import sympy as sp

from verify import cache, dag_eval
from verify import kernels as K
from verify.evidence import MPMATH, exact, lambdify
from verify.proofs import Proof
from verify.registry import ACTIVATIONS, z

__all__ = ["prove_dense", "check_dense", "run_layer"]

N, NIN, NOUT = 2, 3, 4


def _mats(n=N, n_in=NIN, n_out=NOUT):
    X = sp.Matrix(n, n_in, lambda i, j: sp.Symbol(f"x_{i}{j}", real=True))
    W = sp.Matrix(n_in, n_out, lambda i, j: sp.Symbol(f"w_{i}{j}", real=True))
    b = sp.Matrix(1, n_out, lambda i, j: sp.Symbol(f"b_{j}", real=True))
    Gm = sp.Matrix(n, n_out, lambda i, j: sp.Symbol(f"g_{i}{j}", real=True))
    return X, W, b, Gm


def prove_dense():
    pr = Proof("dense")
    act = sp.Function("act")
    X, W, b, Gm = _mats()
    Z = X * W + sp.ones(N, 1) * b
    s = sum(Gm[i, j] * act(Z[i, j]) for i in range(N) for j in range(NOUT))
    dZ = sp.Matrix(N, NOUT, lambda i, j: Gm[i, j] * sp.Subs(
        sp.Derivative(act(z), z), z, Z[i, j]).doit())
    checks = [("W", W, X.T * dZ, r"X^\top dZ"), ("b", b, sp.ones(1, N) * dZ, r"1^\top dZ"),
              ("X", X, dZ * W.T, r"dZ W^\top")]
    for name, M, closed, tex in checks:
        derived = sp.Matrix(M.shape[0], M.shape[1], lambda i, j: sp.diff(s, M[i, j]))
        ok = (derived - closed).applyfunc(sp.expand) == sp.zeros(*M.shape)
        pr.add(f"\\partial s/\\partial {name} = {tex}"
               f" \\text{{ (all {M.shape[0] * M.shape[1]} entries, generic act)}}", ok,
               "diff + expand", None if ok else "failed")
    pr.derived = r"\partial s/\partial W_{kl} = \sum_i G_{il}\,\operatorname{act}'(Z_{il}) X_{ik}"
    pr.closed = r"dZ = G \odot \operatorname{act}'(Z),\ dW = X^\top dZ,\ db = \mathbf{1}^\top dZ,\ dX = dZ\,W^\top"
    return pr


def _normwise(c, e):
    num = max(abs(mpmath.mpf(float(x)) - y) for x, y in zip(np.ravel(c), e))
    den = max(max(abs(y) for y in e), mpmath.mpf(10) ** -300)
    return float(num / den)


def check_dense(act, dtypes, seed=0):
    """Compiled dense_forward/backward with activation ``act`` (a registry entry) vs SymPy.
    Returns {dtype: {array: normwise error / eps}} and passed."""
    fwd, bwd = K.kernel("dense_forward"), K.kernel("dense_backward")
    if fwd is None or bwd is None:
        return None
    derived = []                    # SymPy's functions, made at the first cache miss

    def exact_at(vals):
        if not derived:
            X, W, b, Gm = _mats()
            Z = X * W + sp.ones(N, 1) * b
            defn = act.definition.subs(act.evidence_params)
            # xreplace: the expressions subs makes (tests/test_verify_sections.py), 5x faster
            H = Z.applyfunc(lambda e: defn.xreplace({z: e}))
            terms = [Gm[i, j] * H[i, j] for i in range(N) for j in range(NOUT)]
            syms = list(X) + list(W) + list(b) + list(Gm)

            def grad(e):               # d/de of s = sum G * H: the terms holding e
                return sp.diff(sp.Add(*[t for t in terms if t.has(e)]), e)
            with dag_eval.diff_once():   # H's entries occur in several gradients
                groups = [list(H)] + [[grad(e) for e in M] for M in (X, W, b)]
            try:                        # one mpmath program per group (verify.dag_eval)
                derived.extend(dag_eval.program(syms, g) for g in groups)
            except dag_eval.Unsupported:
                derived[:] = [lambdify(syms, g, MPMATH) for g in groups]
        return [exact(f, *vals) for f in derived]
    rng = np.random.default_rng(seed)
    out, passed = {}, True
    param = next(iter(act.nnlib_kwargs.values()), None)
    for dname in dtypes:
        dt = np.dtype(dname).type
        Xv, Wv = rng.standard_normal((N, NIN)).astype(dt), rng.standard_normal((NIN, NOUT)).astype(dt)
        bv, Gv = rng.standard_normal(NOUT).astype(dt), rng.standard_normal((N, NOUT)).astype(dt)
        Hc = fwd(Xv, Wv, bv, act.name, param)
        dXc, dWc, dbc = bwd(Xv, Wv, Hc, Gv, act.name, param)
        vals = [mpmath.mpf(float(x)) for x in
                list(Xv.ravel()) + list(Wv.ravel()) + list(bv.ravel()) + list(Gv.ravel())]
        eps = float(np.finfo(dt).eps)
        # exact H, dX, dW, db depend on the activation and these inputs alone (and on
        # verify's source): derived once, then read from verify.cache, bit for bit
        ex = cache.exact_values(
            "dense layer", (act.name, sp.srepr(act.definition), repr(act.evidence_params),
                            [float(v) for v in vals]), lambda: exact_at(vals))
        errs = {}
        for name, c, e in zip(("H", "dX", "dW", "db"), (Hc, dXc, dWc, dbc), ex):
            errs[name] = _normwise(c, e) / eps
        out[dname] = errs
        passed &= all(v <= 64 for v in errs.values())
    return {"passed": passed, "errors_eps": out}


def run_layer(ctx):
    if not ctx.wanted("dense") and not ctx.wanted("dense_backward"):
        return []
    t0 = time.perf_counter()
    pr = prove_dense()
    rows, ok_all, available = [], pr.passed, True
    for act in ACTIVATIONS:
        r = check_dense(act, ctx.dtypes, ctx.seed)
        if r is None:
            available = False
            break
        ok_all &= r["passed"]
        rows.append((f"act = {act.name}", "; ".join(
            f"{d}: " + ", ".join(f"{k} {v:.3g}" for k, v in e.items())
            for d, e in r["errors_eps"].items())))
    required = "dense_backward" in K.exported()
    passed = ok_all and available           # no compiled layer is a failure, not a pass
    return [{"name": "dense", "section": "kernels", "kind": "layer",
             "definition": r"H = \operatorname{act}(X W + \mathbf{1} b^\top),\ "
                           rf"X \in \mathbb{{R}}^{{{N}\times{NIN}}},\ W \in \mathbb{{R}}^{{{NIN}\times{NOUT}}}",
             "derived": pr.derived, "closed": pr.closed, "proof": pr.as_dict(),
             "evidence": None, "available": available, "required": required,
             "extra_rows": [("normwise error / eps (tolerance 64), per activation", "")] + rows,
             "passed": passed, "verdict": "pass" if passed else "FAIL" if available else
             "FAIL (exported but not callable)" if required else
             "FAIL (not available in nnlib: proof only, no evidence)",
             "seconds": round(time.perf_counter() - t0, 3)}]
