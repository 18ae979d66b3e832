"""The lecture notes' worked examples, recomputed symbolically and with nnlib.

* the XOR networks with the notes' hand-set weights (sign networks of lecture 13 and of
  Martins et al., the OR/AND construction, the ReLU network W = (0 -1; 1 1; 1 1),
  w = (0, 1, -2)) compute XOR — evaluated exactly by SymPy and by nnlib's compiled
  ``dense_forward`` (and ``nnlib.ThresholdNetwork.xor_from_notes`` when present);
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

from verify import kernels as K

__all__ = ["XOR_NETWORKS", "run_notes"]

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


def _xor_items():
    out = []
    for name, (src, enc, layers, out_enc) in XOR_NETWORKS.items():
        pts = list(itertools.product(enc, enc))
        want = [out_enc[1] if (a == enc[1]) != (b == enc[1]) else out_enc[0] for a, b in pts]
        sym = [_sym_forward(layers, p) for p in pts]
        got = _nnlib_forward(layers, pts)
        ok_sym = all(s_ == w_ for s_, w_ in zip(sym, want))
        ok_nn = got is None or all(float(g_) == w_ for g_, w_ in zip(got, want))
        rows = [("inputs", str(pts)), ("XOR wanted", str(want)),
                ("SymPy (exact)", str([int(v) for v in sym])),
                ("nnlib dense_forward", "not available" if got is None else
                 str([float(v) for v in got]))]
        out.append({"name": f"XOR — {name}", "section": "notes", "passed": ok_sym and ok_nn,
                    "verdict": "computes XOR" if ok_sym and ok_nn else "FAIL",
                    "statement": f"Source: {src}.", "rows": rows})
    TN = K.nnlib_attr("ThresholdNetwork")
    if TN is not None and hasattr(TN, "xor_from_notes"):
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
        out.append({"name": "XOR — nnlib.ThresholdNetwork.xor_from_notes", "section": "notes",
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
    return {"name": "McCulloch-Pitts unit y = x2 (x1 + not x3): truth table",
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
    return {"name": "gradient-descent exercise (y = -4, -2, 2, 4; x0 = 4; alpha = 1/4)",
            "section": "notes", "passed": bool(ok), "verdict": "x1 = 2, answer (d)" if ok
            else "FAIL", "rows": rows}


def _chain_rule():
    t = sp.Symbol("t", real=True)
    u_, v_ = sp.symbols("u v", real=True)
    r = u_ * v_
    u, v = t ** 2, 3 * t + 1
    chain = (sp.diff(r, u_) * sp.diff(u, t) + sp.diff(r, v_) * sp.diff(v, t)).subs(
        {u_: u, v_: v})
    direct = sp.diff(r.subs({u_: u, v_: v}), t)
    ok = sp.expand(chain - (9 * t ** 2 + 2 * t)) == 0 and sp.expand(direct - chain) == 0
    return {"name": "chain-rule example: r = u v, u = t^2, v = 3t + 1", "section": "notes",
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
    ok = all(sp.cancel(sp.diff(L, a[j]) - 2 * sum((zs[i] - Y[i]) * zs[i] * (1 - zs[i]) * X[i, j]
                                                 for i in range(n)) / n) == 0 for j in range(d))
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
    return {"name": "single-unit backprop formula (sigmoid unit, square loss)", "section": "notes",
            "passed": bool(ok), "verdict": "agrees" if ok else "FAIL", "rows": rows}


def run_notes(ctx):
    if ctx.only and not ctx.wanted("notes"):
        return []
    t0 = time.perf_counter()
    items = _xor_items() + [_mcculloch_pitts(), _gd_exercise(), _chain_rule(),
                            _single_unit_backprop()]
    for it in items:
        it.setdefault("seconds", round(time.perf_counter() - t0, 3))
    return items
