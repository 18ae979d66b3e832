"""The lecture notes' worked examples, recomputed symbolically and with nnlib.

* the XOR networks with the notes' hand-set weights (sign networks of lecture 13 and of
  Martins et al., the OR/AND construction, the ReLU network W = (0 -1; 1 1; 1 1),
  w = (0, 1, -2)) compute XOR — evaluated exactly by SymPy and by nnlib's compiled
  ``dense_forward`` and ``nnlib.ThresholdNetwork.xor_from_notes`` (missing is a failure);
* McCulloch & Pitts' threshold unit v = -2 + 2x1 + 4x2 - x3 reproduces its truth table;
* the gradient-descent exercise (y = -4, -2, 2, 4, x0 = 4, alpha = 1/4) gives x1 = 2,
  answer (d);
* the chain-rule example r = u v, u = t^2, v = 3t + 1 gives dr/dt = 9t^2 + 2t;
* the single-unit backprop formula dL/da_j = 2/n sum (z_i - Y_i) z_i (1 - z_i) X_ij.

Weights are transcribed here from /work/shared/seeds/*.txt independently of nnlib's own
transcription, so the two are checked against each other.
"""
import itertools
import time

import numpy as np
import sympy as sp

from verify import cache
from verify import kernels as K
from verify.lectures import lecture

__all__ = ["XOR_NETWORKS", "run_notes", "check_names"]

R = sp.Rational
# name: (source, input encoding (false, true), [(W (n_in x n_out), b, activation)], output
#        encoding (false, true))
XOR_NETWORKS = {
    "lecture 13 (Cornell): sign(sign(x1+x2+0.1) + sign(-x1-x2+0.1) - 1)": (
        "seed 000", (-1, 1),
        [([[1, -1], [1, -1]], [R(1, 10), R(1, 10)], "sign"), ([[1], [1]], [-1], "sign")],
        (-1, 1)),
    "Martins et al.: sgn(1 - z1 + z2), z1 = sgn(1 - x1 + x2), z2 = sgn(-1 - x1 + x2)": (
        "seed 002", (-1, 1),
        [([[-1, -1], [1, 1]], [1, -1], "sign"), ([[-1], [1]], [1], "sign")], (-1, 1)),
    "OR/AND (Caltech): OR(AND(x1, not x2), AND(not x1, x2)), OR = sign(a+b+1.5), "
    "AND = sign(a+b-1.5)": (
        "seed 001", (-1, 1),
        [([[1, -1], [-1, 1]], [R(-3, 2), R(-3, 2)], "sign"), ([[1], [1]], [R(3, 2)], "sign")],
        (-1, 1)),
    "ReLU (UCSD): W = (0 -1; 1 1; 1 1), w = (0, 1, -2)": (
        "seed 003", (0, 1),
        [([[1, 1], [1, 1]], [0, -1], "relu"), ([[1], [-2]], [0], "identity")], (0, 1)),
}

# the names of the section's checks besides the XOR networks (verify --list, --only)
TN_NAME = "XOR — nnlib.ThresholdNetwork.xor_from_notes"
MP_NAME = "McCulloch-Pitts unit y = x2 (x1 + not x3): truth table"
GD_NAME = "gradient-descent exercise (y = -4, -2, 2, 4; x0 = 4; alpha = 1/4)"
CHAIN_NAME = "chain-rule example: r = u v, u = t^2, v = 3t + 1"
UNIT_NAME = "single-unit backprop formula (sigmoid unit, square loss)"
TRAJ_NAME = ("GD, momentum and AdaGrad on the notes' quadratic "
             "(R(x) = mean (x - y_i)^2, y = -4, -2, 2, 4; x0 = 4)")


def check_names():
    """The names of this section's items, in report order (without running them)."""
    return [f"XOR — {name}" for name in XOR_NETWORKS] + [
        TN_NAME, MP_NAME, GD_NAME, TRAJ_NAME, CHAIN_NAME, UNIT_NAME]


_ACT = {"sign": sp.sign, "relu": lambda e: sp.Max(e, 0), "identity": lambda e: e}


def _sym_forward(layers, x):
    h = sp.Matrix([list(x)])
    for W, b, act in layers:
        h = (h * sp.Matrix(W) + sp.Matrix([b])).applyfunc(_ACT[act])
    return h[0, 0]


def _nnlib_forward(layers, X):
    fwd = K.kernel("dense_forward")
    if fwd is None:
        return None
    h = np.asarray(X, dtype=np.float64)
    for W, b, act in layers:
        h = fwd(h, np.array(W, dtype=np.float64), np.array([float(v) for v in b]), act)
    return h[:, 0]


def _exact_forward(layers, x):
    """The network on one input, in exact rational arithmetic (the input's float value)."""
    from fractions import Fraction
    h = [Fraction(float(v)) for v in x]
    for W, b, act in layers:
        z = [sum((h[i] * Fraction(str(W[i][j])) for i in range(len(h))), Fraction(0))
             + Fraction(str(b[j])) for j in range(len(b))]
        h = [(v > 0) - (v < 0) if act == "sign" else max(v, Fraction(0)) if act == "relu"
             else v for v in z]
    return h[0]


def _exact_forward_batch(layers, X):
    """:func:`_exact_forward` on every row of X at once, still exact: each layer's values
    are integer numerators (Python ints in object arrays) over one common denominator
    (the inputs are dyadic floats, the weights rationals), and the last layer's
    quotient is rounded once (int / int is correctly rounded)."""
    from fractions import Fraction
    from math import lcm
    X = np.asarray(X, dtype=np.float64)
    fr = [[Fraction(float(v)) for v in row] for row in X]
    den = lcm(*[f.denominator for row in fr for f in row])
    num = np.array([[f.numerator * (den // f.denominator) for f in row] for row in fr],
                   dtype=object)
    for W, b, act in layers:
        Wf = [[Fraction(str(w)) for w in r] for r in W]
        bf = [Fraction(str(v)) for v in b]
        dw = lcm(*[f.denominator for r in Wf for f in r], *[f.denominator for f in bf])
        Wn = np.array([[f.numerator * (dw // f.denominator) for f in r] for r in Wf],
                      dtype=object)
        bn = np.array([f.numerator * (dw // f.denominator) for f in bf], dtype=object)
        num = num.dot(Wn) + bn[None, :] * den     # z = num / (den dw)
        den = den * dw
        if act == "sign":
            num = np.sign(num).astype(object)
            den = 1
        elif act == "relu":
            num = np.where(num > 0, num, 0).astype(object)
    return np.array([int(v) / den for v in num[:, 0]], dtype=np.float64)


def xor_grid(enc, n=48):
    """A grid over the input plane around the encoding, on dyadic cell centres (their float
    sums are exact, and none lies on a notes' hyperplane x1 + x2 = -0.1, ...)."""
    lo, hi = min(enc) - 1.0, max(enc) + 1.0
    step = (hi - lo) / n
    step = 2.0 ** np.floor(np.log2(step))
    ax = lo + (np.arange(int((hi - lo) / step)) + 0.5) * step
    return ax, np.array([(a, b) for b in ax for a in ax])


def _xor_grid_check(layers, enc):
    """nnlib's compiled forward on the whole grid against the exact rational forward: the
    decision regions the plot shows are the compiled ones, and they are exact."""
    ax, G = xor_grid(enc)
    got = _nnlib_forward(layers, G)
    if got is None:
        return None, None
    want = _exact_forward_batch(layers, G)
    agree = int(np.sum(got == want))
    return (agree, len(G)), dict(axis=ax.tolist(), out=got.reshape(len(ax), len(ax)).tolist(),
                                 layers=layers, enc=enc)


def _xor_items():
    out = []
    for name, (src, enc, layers, out_enc) in XOR_NETWORKS.items():
        pts = list(itertools.product(enc, enc))
        want = [out_enc[1] if (a == enc[1]) != (b == enc[1]) else out_enc[0] for a, b in pts]
        sym = [_sym_forward(layers, p) for p in pts]
        got = _nnlib_forward(layers, pts)
        ok_sym = all(s_ == w_ for s_, w_ in zip(sym, want))
        ok_nn = got is not None and all(float(g_) == w_ for g_, w_ in zip(got, want))
        rows = [("inputs", str(pts)), ("XOR wanted", str(want)),
                ("SymPy (exact)", str([int(v) for v in sym])),
                ("nnlib dense_forward", "not available" if got is None else
                 str([float(v) for v in got]))]
        agree, grid = _xor_grid_check(layers, enc)
        if agree is not None:
            ok_nn &= agree[0] == agree[1]
            rows.append(("decision regions: nnlib vs exact rational forward on a grid",
                         f"{agree[0]} of {agree[1]} grid points agree"))
        if grid is not None:
            grid.update(points=pts, sym=[int(v) for v in sym])
        out.append({"name": f"XOR — {name}", "section": "notes", "passed": ok_sym and ok_nn,
                    "verdict": "computes XOR" if ok_sym and ok_nn else "FAIL",
                    "statement": f"Source: {lecture(src)}.", "rows": rows, "_grid": grid})
    TN = K.nnlib_attr("ThresholdNetwork")
    if TN is None or not hasattr(TN, "xor_from_notes"):      # missing is a failure
        out.append({"name": TN_NAME, "section": "notes",
                    "passed": False, "verdict": "FAIL (not available in nnlib)", "rows": []})
    else:
        import importlib
        rows, ok = [], True
        names = list(getattr(importlib.import_module(TN.__module__), "_XOR_NETWORKS", {}))
        for which in names:
            net = TN.xor_from_notes(which)
            f, t = net.inputs
            pts = list(itertools.product((f, t), (f, t)))
            pred = np.ravel(net.predict(np.array(pts, dtype=float)))
            want = [bool((a == t) != (b == t)) for a, b in pts]
            got = [bool(p_ == net.outputs[1]) if net.outputs else bool(p_) for p_ in pred]
            ok &= got == want
            rows.append((which, f"predict {pred.tolist()} -> XOR {got == want}"))
        ok &= bool(names)
        out.append({"name": TN_NAME, "section": "notes",
                    "passed": ok, "verdict": "computes XOR" if ok else "FAIL", "rows": rows})
    return out


def _mcculloch_pitts():
    table = [((-1, -1, -1), -7, -1), ((-1, -1, 1), -9, -1), ((-1, 1, -1), 1, 1),
             ((-1, 1, 1), -1, -1), ((1, -1, -1), -3, -1), ((1, -1, 1), -5, -1),
             ((1, 1, -1), 5, 1), ((1, 1, 1), 3, 1)]          # the notes' Table 3.6
    x1, x2, x3 = sp.symbols("x1 x2 x3")
    v = -2 + 2 * x1 + 4 * x2 - x3
    rows, ok = [], True
    fwd = K.kernel("dense_forward")
    X = np.array([r[0] for r in table], dtype=float)
    nn = fwd(X, np.array([[2.0], [4.0], [-1.0]]), np.array([-2.0]), "sign")[:, 0] \
        if fwd is not None else None
    for k, (x, vv, yy) in enumerate(table):
        val = v.subs(dict(zip((x1, x2, x3), x)))
        good = val == vv and sp.sign(val) == yy and (nn is None or nn[k] == yy)
        ok &= bool(good)
        rows.append((str(x), f"v = {val} (table {vv}), sgn = {sp.sign(val)} (table {yy})"
                             + ("" if nn is None else f", nnlib {nn[k]:g}")))
    return {"name": MP_NAME,
            "section": "notes", "passed": ok, "verdict": "matches the table" if ok else "FAIL",
            "rows": rows}


def _gd_exercise():
    x = sp.Symbol("x", real=True)
    ys = [-4, -2, 2, 4]
    Rsq = sum((x - yi) ** 2 for yi in ys) / len(ys)
    x1 = 4 - R(1, 4) * sp.diff(Rsq, x).subs(x, 4)
    rows = [("$R_{sq}(x)$", f"${sp.latex(Rsq)}$"),
            ("$R_{sq}'(4)$", f"${sp.diff(Rsq, x).subs(x, 4)}$"),
            ("$x_1 = x_0 - \\alpha R_{sq}'(x_0)$ (SymPy)", f"${x1}$")]
    ok = x1 == 2
    g = K.kernel("squared_error_grad")
    if g is not None:
        # nnlib's squared_error is the mean of (z - y)^2 / 2, so R_sq' = 2 * sum of its rows
        Z = np.full((4, 1), 4.0)
        d = 2 * float(np.sum(g(Z, np.array(ys, dtype=float).reshape(-1, 1))))
        x1_nn = 4 - 0.25 * d
        ok &= x1_nn == 2.0
        rows.append(("$x_1$ with nnlib's squared_error_grad", f"{x1_nn:g}"))
    rows.append(("the notes' answer", "(d) 2"))
    return {"name": GD_NAME,
            "section": "notes", "passed": bool(ok), "verdict": "x1 = 2, answer (d)" if ok
            else "FAIL", "rows": rows}


# The notes' quadratic: R(x) = mean (x - y_i)^2, y = -4, -2, 2, 4 (the GD exercise), from
# x0 = 4. R'(x) = 2x, so GD is linear, the notes' momentum a linear 2-d recursion (both have
# closed forms SymPy derives), AdaGrad is not linear (compared with its exact iteration).
TRAJ_STEPS = 20
TRAJ_CONFIGS = [("SGD", dict(lr=0.25), "GD, eta = 1/4 (the notes' alpha)"),
                ("NotesMomentum", dict(lr=0.25, beta=0.3), "momentum, eta = 1/4, beta = 0.3"),
                ("NotesAdaGrad", dict(lr=1.0, eps=1e-8), "AdaGrad, eta = 1, eps = 1e-8")]


def _closed_forms(k):
    """x_k for GD and the notes' momentum on R(x) = x^2 + 10 from x0 = 4, by SymPy."""
    xk = sp.Function("x")
    gd = sp.rsolve(xk(k + 1) - (xk(k) - R(1, 4) * 2 * xk(k)), xk(k), {xk(0): 4})
    eta, beta = R(1, 4), R(3, 10)
    # state (w, v): v' = (1 - beta) v + beta 2w ; w' = w - eta v'
    M = sp.Matrix([[1 - 2 * eta * beta, -eta * (1 - beta)], [2 * beta, 1 - beta]])
    P, D = M.diagonalize()
    mom = (P * sp.diag(*[D[i, i] ** k for i in range(2)]) * P.inv() * sp.Matrix([4, 0]))[0]
    return {"SGD": sp.simplify(gd), "NotesMomentum": sp.simplify(mom)}, M


def _momentum_tex(M):
    lam = M.eigenvals()
    mods = sorted({sp.nsimplify(sp.sqrt(sp.expand(v * sp.conjugate(v)))) for v in lam})
    return (f"closed form $x_k = e_1^\\top M^k (4, 0)^\\top$, $M = {sp.latex(M)}$ "
            f"diagonalized by SymPy (eigenvalues ${', '.join(sp.latex(v) for v in lam)}$, "
            f"modulus ${', '.join(sp.latex(m) for m in mods)}$: a damped oscillation)")


def _exact_iterates(available):
    """{class name: (how the exact iterates are made, [str(x_k)], [float(x_k)])} for the
    configs of TRAJ_CONFIGS whose class ``available`` maps to its ``config()``: closed forms
    derived by SymPy or the symbolic rule iterated at 40 digits. A pure function of verify's
    source and those configs (in the key): derived once, then read from verify.cache."""
    from verify import cache

    def compute():
        from verify.optim import symbolic_rule
        k = sp.Symbol("k", integer=True, nonnegative=True)
        closed, M = _closed_forms(k)
        out = {}
        for cls_name, kw, label in TRAJ_CONFIGS:
            if cls_name not in available:
                continue
            if cls_name in closed:
                exact_x = [sp.N(closed[cls_name].subs(k, i), 40)
                           for i in range(TRAJ_STEPS + 1)]
                how = (f"closed form $x_k = {sp.latex(closed[cls_name])}$"
                       if cls_name == "SGD" else _momentum_tex(M))
            else:                               # the exact iteration of the symbolic rule
                from verify.optim import G as G_, g as g_, w as w_
                eqs = symbolic_rule(cls_name, available[cls_name])
                sub = {sp.Symbol("eta", positive=True): sp.Float(kw["lr"], 40),
                       sp.Symbol("epsilon", positive=True): sp.Float(kw["eps"], 40)}
                env, exact_x = {w_: sp.Integer(4), G_: sp.Integer(0)}, [sp.Integer(4)]
                for _ in range(TRAJ_STEPS):
                    env[g_] = 2 * env[w_]
                    for lhs, rhs in eqs:
                        env[lhs] = sp.N(rhs.subs(sub).subs(env), 40)
                    exact_x.append(env[w_])
                how = "no closed form (not linear): the symbolic rule iterated at 40 digits"
            out[cls_name] = (how, [str(sp.re(e)) for e in exact_x],
                             [float(sp.re(e)) for e in exact_x])
        return out
    return cache.derived("notes trajectories",
                         sorted((c, sorted(cfg.items())) for c, cfg in available.items()),
                         compute)


def _trajectories():
    from verify.evidence import measure
    import mpmath
    g = K.kernel("squared_error_grad")
    ys = np.array([-4.0, -2.0, 2.0, 4.0]).reshape(-1, 1)
    rows, ok, series = [], True, []
    classes = {c: K.nnlib_attr("optim." + c) for c, _, _ in TRAJ_CONFIGS}
    exact = _exact_iterates({c: classes[c](**kw).config() for c, kw, _ in TRAJ_CONFIGS
                             if classes[c] is not None and g is not None})
    for cls_name, kw, label in TRAJ_CONFIGS:
        cls = classes[cls_name]
        if cls is None or g is None:
            rows.append((label, "FAIL: not available in nnlib"))
            ok = False
            continue
        how, exact_str, exact_float = exact[cls_name]
        for dname in ("float64", "float32"):
            dt = np.dtype(dname).type
            opt, p, xs = cls(**kw), np.array([4.0], dtype=dt), [4.0]
            for _ in range(TRAJ_STEPS):
                # R'(x) = 2 mean(x - y_i): twice the sum of nnlib's squared_error_grad rows
                grad = (2 * np.sum(g(np.full((4, 1), p[0], dtype=dt), ys.astype(dt)))
                        ).astype(dt).reshape(1)
                opt.step([p], [grad])
                xs.append(float(p[0]))
            with mpmath.workdps(40):
                us = [measure(xv, mpmath.mpf(e), dt).ulps for xv, e in zip(xs, exact_str)]
            # rounding errors of a contracting recursion add up: a few ulp per step
            good = all(u <= 8 * (i + 1) for i, u in enumerate(us))
            ok &= good
            series.append(dict(label=label, cls=cls_name, dtype=dname, x=xs,
                               exact=list(exact_float), ulps=us))
            rows.append((f"{label}, {dname}", f"{how}; max error {max(us):.3g} ulp over "
                                              f"{TRAJ_STEPS} steps (tolerance 8(k+1) ulp at step k)"
                         + ("" if good else " FAIL")))
    return {"name": TRAJ_NAME,
            "section": "notes", "passed": bool(ok) and bool(series),
            "verdict": f"{TRAJ_STEPS} steps match SymPy" if ok and series else "FAIL",
            "statement": "nnlib's optimizers (SGD as plain GD, the notes' momentum "
                         "v <- (1-beta) v + beta g, w <- w - eta v, and the notes' AdaGrad) "
                         "stepped on the notes' quadratic with gradients from nnlib's "
                         "squared_error_grad, every iterate compared with SymPy.",
            "rows": rows, "_traj": series}


def _chain_rule():
    t = sp.Symbol("t", real=True)
    u_, v_ = sp.symbols("u v", real=True)
    r = u_ * v_
    u, v = t ** 2, 3 * t + 1
    chain = (sp.diff(r, u_) * sp.diff(u, t) + sp.diff(r, v_) * sp.diff(v, t)).subs(
        {u_: u, v_: v})
    direct = sp.diff(r.subs({u_: u, v_: v}), t)
    ok = sp.expand(chain - (9 * t ** 2 + 2 * t)) == 0 and sp.expand(direct - chain) == 0
    return {"name": CHAIN_NAME, "section": "notes",
            "passed": ok, "verdict": "dr/dt = 9t^2 + 2t" if ok else "FAIL",
            "rows": [("$\\partial_u r\\, u' + \\partial_v r\\, v'$", f"${sp.latex(sp.expand(chain))}$"),
                     ("direct $dr/dt$", f"${sp.latex(sp.expand(direct))}$"),
                     ("the notes", "$2tv + 3u = 2t(3t + 1) + 3t^2 = 9t^2 + 2t$")]}


def _single_unit_backprop():
    n, d = 2, 2
    a = sp.symbols(f"a0:{d}", real=True)
    X = sp.Matrix(n, d, lambda i, j: sp.Symbol(f"X_{i}{j}", real=True))
    Y = sp.symbols(f"Y0:{n}", real=True)
    sig = lambda s: 1 / (1 + sp.exp(-s))  # noqa: E731
    zs = [sig(sum(a[j] * X[i, j] for j in range(d))) for i in range(n)]
    L = sum((zs[i] - Y[i]) ** 2 for i in range(n)) / n
    # a proof about verify's own expressions: derived once, then read from verify.cache;
    # cancel's decision, made in the field of rational functions of the symbols and the
    # exponentials (verify.convexity.is_zero_rational: without SymPy expanding each
    # exponential of a sum)
    def proved():
        from verify.convexity import is_zero_rational
        return all(is_zero_rational(sp.diff(L, a[j]) - 2 * sum(
            (zs[i] - Y[i]) * zs[i] * (1 - zs[i]) * X[i, j] for i in range(n)) / n)
            for j in range(d))
    ok = cache.derived("notes single-unit gradient", (n, d), proved)
    rows = [("claim", "$\\partial L/\\partial a_j = \\frac{2}{n}\\sum_i (z_i - Y_i) z_i (1 - z_i)"
                      " X_{ij}$, $z_i = \\sigma(a^\\top X_i)$, $L = \\frac1n\\sum_i (z_i - Y_i)^2$"),
            ("SymPy (n = d = 2)", "proved (cancel)" if ok else "FAIL")]
    Seq, Dense = K.nnlib_attr("Sequential"), K.nnlib_attr("Dense")
    if Seq is not None and Dense is not None:
        rng = np.random.default_rng(4)
        Xv, Yv, av = rng.standard_normal((n, d)), rng.uniform(0, 1, (n, 1)), rng.standard_normal(d)
        m = Seq([Dense(d, 1, "sigmoid")])
        m.params[0][...] = av.reshape(d, 1)
        m.params[1][...] = 0.0
        _, grads = m.loss_and_grads(Xv, Yv, loss="squared_error")
        zv = 1 / (1 + np.exp(-Xv @ av))
        notes = 2 / n * ((zv - Yv[:, 0]) * zv * (1 - zv)) @ Xv
        # nnlib's squared error is (z - y)^2 / 2: its gradient is half the notes'
        err = float(np.max(np.abs(2 * grads[0][:, 0] - notes)))
        ok &= err < 1e-14
        rows.append(("nnlib Sequential([Dense(2, 1, 'sigmoid')]), 2 x dW vs the formula",
                     f"max difference {err:.2g}"))
    return {"name": UNIT_NAME, "section": "notes",
            "passed": bool(ok), "verdict": "agrees" if ok else "FAIL", "rows": rows}


def run_notes(ctx):
    if ctx.only and not ctx.wanted("notes"):
        return []
    t0 = time.perf_counter()
    items = _xor_items() + [_mcculloch_pitts(), _gd_exercise(), _trajectories(),
                            _chain_rule(), _single_unit_backprop()]
    for it in items:
        it.setdefault("seconds", round(time.perf_counter() - t0, 3))
    return items
