"""The notes' universal approximation theorem, shown with nnlib.

The theorem (Cybenko 1989 for the sigmoid; Hornik, Stinchcombe and White 1989 for tanh
and other activations; stated in "Lecture 5: Neural Networks I" and in "Séance 5 : Deep
learning" of the notes): for every continuous f on a closed interval [a, b] and every
eps > 0 there is a width N and weights with

    sup_{x in [a, b]} | f(x) - sum_{k=1..N} v_k act(w_k x + c_k) - v_0 | < eps.

This section fits one-hidden-layer networks of growing width with nnlib (``MLPRegressor``,
L-BFGS on the mean squared error, act = sigmoid and tanh, a linear output) to a few
functions on [-1, 1] and measures the sup-norm error on a grid 16 times finer than the
training points. It shows what the theorem says and what it does not:

* for continuous targets the error falls with the width (the check: the best sup error
  over the widths is below ``SUP_BOUND`` and a quarter of the width-1 error);
* it is an existence result: it does not say how to find the weights (here a local
  optimiser of a non-convex loss finds them, or does not), how many units are needed
  (possibly exponentially many, as the notes warn), or anything outside [a, b] (the plots
  extend the fits to [-1.5, 1.5]);
* continuity is needed: for the step sign(x) no continuous function comes closer than half
  the jump in the sup norm, so its sup error stays >= 1 at every width, while in the mean
  a network comes close (the check for this target: the RMS error).
"""
import time

import numpy as np
import sympy as sp

from verify import kernels as K
from verify.evidence import lambdify
from verify.lectures import lecture

__all__ = ["run_approximation", "check_names", "TARGETS", "SUP_BOUND"]

_x = sp.Symbol("x", real=True)
# name -> (SymPy expression, continuous on [-1, 1]?)
TARGETS = {
    "sin(3x)": (sp.sin(3 * _x), True),
    "|x|": (sp.Abs(_x), True),
    "sqrt(1 - x^2)": (sp.sqrt(1 - _x ** 2), True),
    "sign(x)": (sp.sign(_x), False),
}
ACTIVATIONS = {"sigmoid": "logistic", "tanh": "tanh"}   # the notes' names -> MLPRegressor's
SUP_BOUND = 0.1
RMS_BOUND_STEP = 0.15
INTERVAL = (-1.0, 1.0)


def check_names():
    """The section's check names, one per target function."""
    return [f"universal approximation: {name}" for name in TARGETS]


def statement_latex():
    """The theorem as the notes state it, in LaTeX."""
    return (r"\forall f \in C([a,b]),\ \forall \varepsilon > 0,\ \exists N, v_k, w_k, c_k:\ "
            r"\sup_{x \in [a,b]} \left| f(x) - v_0 - \sum_{k=1}^{N} v_k\, \sigma(w_k x + c_k)"
            r"\right| < \varepsilon")


def _fit(Regressor, act, width, x, y, seed, max_iter):
    model = Regressor(hidden_layer_sizes=(width,), activation=act, solver="lbfgs",
                      alpha=0.0, max_iter=max_iter, tol=1e-10, random_state=seed)
    import warnings
    with warnings.catch_warnings():          # L-BFGS stopping at max_iter is expected here
        warnings.simplefilter("ignore")
        model.fit(x[:, None], y)
    return model


def approximate(name, widths, n_train=128, max_iter=1500, seed=0):
    """Fit each width and activation to the target ``name``; returns the data of the
    item: sup and RMS errors per activation and width, and the fits for the plot."""
    Regressor = K.nnlib_attr("MLPRegressor")
    if Regressor is None:
        raise ImportError("nnlib has no MLPRegressor")
    expr, continuous = TARGETS[name]
    f = lambdify(_x, expr, "numpy")
    x = np.linspace(*INTERVAL, n_train)
    grid = np.linspace(*INTERVAL, 16 * (n_train - 1) + 1)     # contains the training points
    wide = np.linspace(-1.5, 1.5, 601)
    with np.errstate(invalid="ignore"):          # sqrt(1 - x^2) outside [-1, 1]: NaN
        target_wide = np.asarray(f(wide), dtype=float)
    out = {"widths": list(widths), "sup": {}, "rms": {}, "fits": {}, "wide": wide.tolist(),
           "target_wide": target_wide.tolist(), "interval": INTERVAL}
    for label, act in ACTIVATIONS.items():
        sups, rmss = [], []
        for w in widths:
            m = _fit(Regressor, act, w, x, np.asarray(f(x), dtype=float), seed, max_iter)
            err = np.abs(m.predict(grid[:, None]) - f(grid))
            sup = float(err.max())
            if not continuous:
                # the one-sided limits at the jump: a continuous g is g(0) there, so
                # sup |sign - g| >= max(|1 - g(0)|, |1 + g(0)|) >= 1, between grid points too
                g0 = float(m.predict(np.zeros((1, 1)))[0])
                sup = max(sup, abs(1 - g0), abs(1 + g0))
            sups.append(sup)
            rmss.append(float(np.sqrt(np.mean(err ** 2))))
            if w in (widths[0], widths[len(widths) // 2], widths[-1]):
                out["fits"][f"{label}, width {w}"] = m.predict(wide[:, None]).tolist()
        out["sup"][label], out["rms"][label] = sups, rmss
    return out


def run_approximation(ctx):
    out = []
    widths, max_iter, n_train = ([1, 3, 12], 250, 48) if ctx.quick else \
        ([1, 2, 4, 8, 16, 32], 3000, 128)
    for name, (expr, continuous) in TARGETS.items():
        check = f"universal approximation: {name}"
        if not ctx.wanted(check):
            continue
        t0 = time.perf_counter()
        d = approximate(name, widths, n_train=n_train, max_iter=max_iter, seed=ctx.seed)
        rows = [(f"{kind} error, {act}", ", ".join(
            f"N={w}: {e:.3g}" for w, e in zip(d["widths"], d[key][act])))
            for kind, key in (("sup-norm", "sup"), ("RMS", "rms")) for act in ACTIVATIONS]
        best = {a: min(d["sup"][a]) for a in ACTIVATIONS}
        if continuous:
            ok = all(best[a] <= SUP_BOUND and d["sup"][a][0] >= 4 * best[a]
                     for a in ACTIVATIONS)
            rule = (f"the best sup-norm error over the widths is <= {SUP_BOUND} and at most "
                    "a quarter of the width-1 error, for sigmoid and tanh")
            verdict = ", ".join(f"{a} {best[a]:.2g}" for a in ACTIVATIONS) + \
                " best sup error"
        else:
            # no continuous g comes within 1 of the step in the sup norm (the one-sided
            # limits at 0 are included in "sup" above); in the mean it can (Hornik 1991,
            # L^p targets), and that is what can be checked
            rms = {a: min(d["rms"][a]) for a in ACTIVATIONS}
            ok = all(v <= RMS_BOUND_STEP for v in rms.values())
            rule = (f"the best RMS error is <= {RMS_BOUND_STEP}; the sup-norm error stays "
                    ">= 1 (half the jump) for every continuous network: the theorem needs "
                    "a continuous target")
            verdict = "RMS " + ", ".join(f"{a} {rms[a]:.2g}" for a in ACTIVATIONS) + \
                "; sup >= 1 at every width"
        rows.append(("criterion", rule))
        rows.append(("fits", f"{len(widths)} widths x 2 activations; nnlib MLPRegressor, "
                             f"L-BFGS (at most {max_iter} iterations), {n_train} points on "
                             f"[-1, 1], no L2 penalty; errors on a grid of "
                             f"{16 * (n_train - 1) + 1} points"))
        out.append({"name": check, "section": "approximation", "passed": bool(ok),
                    "verdict": verdict if ok else "FAIL: not met: " + rule,
                    "statement": f"Target $f(x) = {sp.latex(expr)}$ on $[-1, 1]$"
                                 + ("" if continuous else " (not continuous at 0)") + ".",
                    "rows": rows, "_uat": d, "seconds": round(time.perf_counter() - t0, 3)})
    return out


THEOREM_TEXT = (
    "**The theorem** (Cybenko 1989 for the sigmoid; Hornik, Stinchcombe and White 1989 for "
    "tanh and many other activations): $" + statement_latex() + "$. Sources: "
    + lecture("002") + "; " + lecture("004") + ". **What it does not say**: how to find "
    "the weights (the fits below use L-BFGS on a non-convex loss and may stop short), how "
    "large N must be (possibly exponentially large, as the notes warn), anything outside "
    "$[a, b]$ (the plots extend the fits beyond the interval), or anything for a "
    "discontinuous target (the step below).")
