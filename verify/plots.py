"""SVG figures for the report, drawn from the data the checks computed (verify.svg: NumPy
only, no plotting library).

Design note
-----------
Every figure reads what a check stored on its item (keys starting with ``_``, kept out of
report.json): the per-point records of ``CheckResult.points`` (input, compiled value, exact
value, error in ULPs), the 1-d loss sweeps and the 3-class slice of the output maps, the
convexity checks' curvature sweeps and chord gaps, the XOR networks' compiled decision
regions on a grid, the optimizer trajectories. Nothing is re-derived here from a formula:
a figure shows exactly the numbers the verdict was computed from. Each figure is written
to a temporary file and renamed into place (atomic), and is referenced from the report
next to the check it illustrates (``item["plots"]``: [(caption, relative path)]).

A figure takes a few milliseconds (it is text: paths and labels), so figures are drawn
afresh every run, all in the main process.
"""
import math
import os
import time

import numpy as np

from verify.svg import BLUES, COOLWARM, CYCLE, Figure, Normalize, TwoSlopeNorm, grey

__all__ = ["make_plots"]

_STYLE = {"float64": dict(color=CYCLE[0], marker="o"), "float32": dict(color=CYCLE[1], marker="x")}
_BLACK = "#000"


def _save(fig, out, name):
    rel = os.path.join("plots", name)
    path = os.path.join(out, rel)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(fig.svg())
    os.replace(path + ".tmp", path)
    return rel


def _floor(u):
    return max(float(u), 1e-3) if not math.isinf(u) else 1e20


def _ulp_axis(ax, label="error (ulp; 0 drawn at 1e-3)"):
    ax.yscale = "log"
    ax.minor = False
    ax.ylabel = label


# ------------------------------------------------------------------ activations

def _abs_axis_points(recs):
    """|z| for a log axis (z = 0 drawn at the left edge) and the sign of z."""
    xs = np.array([abs(r["x"]) for r in recs], dtype=float)
    tiny = max(np.min(xs[xs > 0]) / 10, 5e-324) if np.any(xs > 0) else 1e-3
    return np.where(xs > 0, xs, tiny), np.array([r["x"] < 0 for r in recs])


def _activation_plot(it, out):
    res = it["_result"]
    fw = res.points.get("forward", {})
    vj = res.points.get("vjp", {})
    acc = it.get("_accuracy")
    name = it["name"]
    ncol = 4 if acc else 3
    fig = Figure(4.0 * ncol, 3.9, ncol)
    ax = fig.axes
    # the curves of the run's widest dtype (--dtype float32 has no float64 points)
    dt = "float64" if "float64" in fw else next(iter(fw), "float64")
    for k, (recs, title) in enumerate(((fw.get(dt, []), f"{name}(z)"),
                                       (vj.get(dt, []), f"{name}'(z)"))):
        near = sorted((r for r in recs if abs(r["x"]) <= 6), key=lambda r: r["x"])
        smooth = [r for r in near if r["exact"] is not None]
        ax[k].plot([r["x"] for r in smooth], [r["exact"] for r in smooth], _BLACK, lw=1.5,
                   label="SymPy (exact, mpmath)")
        ax[k].plot([r["x"] for r in near], [r["got"] for r in near],
                   _STYLE.get(dt, _STYLE["float64"])["color"], ls=None,
                   marker=_STYLE.get(dt, _STYLE["float64"])["marker"], ms=3,
                   label=f"nnlib {dt}")
        for r in near:
            if r.get("interval"):            # a kink: the subdifferential and the pick
                lo, hi = r["interval"]
                ax[k].plot([r["x"], r["x"]], [lo, hi], CYCLE[3], lw=4, alpha=0.5,
                           label="subdifferential at the kink")
        ax[k].title = f"{title}: nnlib vs SymPy, |z| ≤ 6"
        ax[k].xlabel = "z"
    span = [math.inf, 0.0]
    for which, mk in (("forward", "o"), ("vjp", "x")):
        for dt, recs in res.points.get(which, {}).items():
            xs, neg = _abs_axis_points(recs)
            span = [min(span[0], xs.min()), max(span[1], xs.max())]
            us = np.array([_floor(r["ulps"]) for r in recs])
            c = _STYLE[dt]["color"]
            ax[2].plot(xs[~neg], us[~neg], c, ls=None, marker=mk, ms=3.5,
                       label=f"{which} {dt}")
            ax[2].plot(xs[neg], us[neg], c, ls=None, marker=mk, ms=3.5, alpha=0.35)
    ax[2].xscale = "log"
    ax[2].minor = False
    if span[1] > 0:      # explicit: a few decades, evenly spaced, over up to 600 decades
        ax[2].xlim = (span[0], span[1])
        lo, hi = math.log10(max(span[0], 5e-324)), math.log10(span[1])
        step = next(k for k in (1, 2, 5, 10, 20, 50, 100, 200) if (hi - lo) / k <= 7)
        exps = [e for e in range(int(math.floor(lo / step) * step), int(hi) + 1, step)
                if lo <= e <= hi]
        ax[2].xticks = [(10.0 ** e, f"1e{e}") for e in exps]
    _ulp_axis(ax[2])
    ax[2].xlabel = "|z| (faint: z < 0; z = 0 at the left edge)"
    ax[2].title = "error of every point of the check"
    if acc:
        for s in acc["series"]:
            zs = np.abs(np.array(s["z"], float))
            pos = np.array(s["z"], float) > 0
            ls = "-" if s["path"].startswith("vjp") else ":"
            c = _STYLE[s["dtype"]]["color"]
            ul = np.array([_floor(u) for u in s["ulps"]])
            for mask, side in ((pos, "z>0"), (~pos, "z<0")):
                ax[3].plot(zs[mask], ul[mask], c, lw=1, ls=ls,
                           alpha=1.0 if side == "z>0" else 0.4,
                           label=f"{s['path'].split(' ')[0]} {s['dtype']} (faint: z < 0)"
                           if side == "z>0" else None)
            if s["z_star"]:
                ax[3].axvline(s["z_star"], c, lw=0.6, ls="--")
            ax[3].axhline(s["tol_ulps"], c, lw=0.5)
        ax[3].xscale = "log"
        _ulp_axis(ax[3])
        ax[3].xlabel = "|z|"
        ax[3].title = (f"{name}' from the output: error vs |z|\n(dashed: first |z| over "
                       "the ulp bound)")
    for a in ax:
        a.grid = "both"
    fig.legend(ax, ncol=6)
    return [(f"{name}: compiled vs SymPy and the error in ULPs at every point of the "
             "check" + (" (right: the derivative-from-output sweep of the accuracy rows)"
                        if acc else ""), _save(fig, out, f"{name}.svg"))]


# ------------------------------------------------------------------ output maps

_TRI = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])


def _simplex_plot(soft, sparse, out):
    fig = Figure(14, 4.8, 3)
    ax = fig.axes
    for k, it in enumerate((soft, sparse)):
        recs = it["_slice"].points.get("forward", {}).get("float64", [])
        P = np.array([r["got"] for r in recs], float).reshape(-1, 3)
        on_edge = np.any(P == 0.0, axis=1)
        XY = P @ _TRI
        ax[k].fill(_TRI[:, 0], _TRI[:, 1], grey(0.93))
        ax[k].plot(*np.vstack([_TRI, _TRI[:1]]).T, _BLACK, lw=1)
        ax[k].scatter(XY[~on_edge, 0], XY[~on_edge, 1], 9, CYCLE[0],
                      label="interior (all p_j > 0)")
        ax[k].scatter(XY[on_edge, 0], XY[on_edge, 1], 14, CYCLE[3], marker="s",
                      label="on the boundary (some p_j = 0)")
        for j, name in enumerate(("p0 = 1", "p1 = 1", "p2 = 1")):
            ax[k].text(*_TRI[j], name, va="top" if j < 2 else "bottom")
        ax[k].title = (f"{it['name']}(a, b, 0) in the probability simplex\n(nnlib float64: "
                       f"{int(on_edge.sum())} of {len(P)} outputs on the boundary)")
        ax[k].aspect_equal = True
        ax[k].axis_off = True
        for which, mk in (("forward", "o"), ("vjp", "x")):
            for dt, rs in it["_slice"].points.get(which, {}).items():
                ys = sorted(_floor(r["ulps"]) for r in rs)
                ax[2].plot(range(len(ys)), ys, CYCLE[len(ax[2].legend) % 10], ls=None,
                           marker=mk, ms=3, label=f"{it['name']} {which} {dt}")
    _ulp_axis(ax[2], "worst component error (ulp), sorted")
    ax[2].xlabel = "slice row (sorted by error)"
    ax[2].title = "compiled - exact on the slice (both maps, both dtypes)"
    ax[2].grid = "both"
    fig.legend(ax, ncol=4)
    rel = _save(fig, out, "simplex_softmax_sparsemax.svg")
    cap = ("softmax vs sparsemax on the 3-class slice z = (a, b, 0), drawn in the simplex "
           "from the compiled outputs of the slice check: sparsemax reaches the boundary, "
           "softmax never does")
    return [(cap, rel)]


# ------------------------------------------------------------------ losses

def _loss_plot(it, out):
    res = it["_sweep"]
    fig = Figure(12, 4.4, 2)
    ax = fig.axes
    # the run's dtypes (--dtype float32 has no float64 points): the first one's exact values
    # drawn as the line
    first = next(iter(res.points["loss"].values()))
    t_of = (lambda x: x[0][0]) if isinstance(first[0]["x"][0], list) else (lambda x: x[0])
    for k, which in enumerate(("loss", "grad")):
        twin = ax[k].twinx()
        for dt, recs in res.points.get(which, {}).items():
            if which == "loss":
                ts = [t_of(r["x"]) for r in recs]
                ex = [r["exact"] for r in recs]
                got = [r["got"] for r in recs]
            else:
                ts = [r["x"][0] for r in recs]
                ex = [min(c[0] for c in r["exact"]) for r in recs]
                got = [r["got"][0] for r in recs]
                for t, r in zip(ts, recs):
                    if len(r["exact"]) > 1:     # a kink: the subdifferential's range
                        vals = [c[0] for c in r["exact"]]
                        ax[k].plot([t, t], [min(vals), max(vals)], CYCLE[3], lw=5,
                                   alpha=0.4, label="subdifferential (SymPy)")
            if recs is next(iter(res.points[which].values())):
                ax[k].plot(ts, ex, _BLACK, lw=1.5, label="SymPy (exact)")
            ax[k].plot(ts, got, _STYLE[dt]["color"], ls=None, marker=_STYLE[dt]["marker"],
                       ms=3, label=f"nnlib {dt}")
            twin.plot(ts, [_floor(r["ulps"]) for r in recs], _STYLE[dt]["color"], lw=0.8,
                      alpha=0.6, label=f"error {dt}")
        _ulp_axis(twin, "compiled - SymPy (ulp; floor 1e-3)")
        ax[k].xlabel = "t"
        worst = {dt: max(r["ulps"] for r in recs)
                 for dt, recs in res.points.get(which, {}).items()}
        ax[k].title = (("loss L" if which == "loss" else "gradient dL/dz_0")
                       + " along the sweep (the sweep check's points)\nmax error "
                       + ", ".join(f"{dt} {u:.3g} ulp" for dt, u in worst.items()))
        ax[k].grid = "both"
    fig.legend(ax, ncol=4)
    from verify.losses import SWEEP_TEXT
    cap = (f"{it['name']} and its derivative along {SWEEP_TEXT[it['name']]}: SymPy vs "
           "compiled, error in ULPs on the right axis (the sweep check's points)")
    return [(cap, _save(fig, out, f"loss_{it['name']}.svg"))]


# ------------------------------------------------------------------ ULP distributions

def _ulp_summary(items, out):
    from verify.api import CheckResult
    rows = []
    for it in items:
        res = it.get("_result")
        if not isinstance(res, CheckResult):
            continue
        for which, per in res.samples.items():
            for dt, vals in per.items():
                rows.append((f"{it['name']} {which}", dt, vals))
    if not rows:
        return []
    labels = list(dict.fromkeys(r[0] for r in rows))
    edges = [0.5, 1, 10, 1e2, 1e4, 1e8, 1e16, math.inf]
    edge_txt = ["<=0.5", "<=1", "<=10", "<=1e2", "<=1e4", "<=1e8", "<=1e16", ">1e16"]
    fig = Figure(15, 0.3 * len(labels) + 2.2, 3, width_ratios=[1.4, 1, 1])
    ax = fig.axes
    y = np.arange(len(labels))
    for off, dt in ((-0.2, "float64"), (0.2, "float32")):
        mx = [max((_floor(v) for lab, d, vs in rows if lab == L and d == dt for v in vs),
                  default=np.nan) for L in labels]
        ax[0].barh(y + off, mx, 0.4, _STYLE[dt]["color"], label=dt)
    ax[0].xscale = "log"
    ax[0].yticks = list(zip(y, labels))
    ax[0].ylim = (len(labels) - 0.5, -0.5)
    ax[0].xlabel = "max error over the check's points (ulp)"
    ax[0].title = "largest error per kernel output"
    ax[0].grid = "x"
    fig.legend(ax[:1], ncol=2)
    for k, dt in ((1, "float64"), (2, "float32")):
        M = np.zeros((len(labels), len(edges)))
        for i, L in enumerate(labels):
            vs = [v for lab, d, vals in rows if lab == L and d == dt for v in vals]
            for v in vs:
                M[i, next(j for j, e in enumerate(edges) if v <= e)] += 1
            if vs:
                M[i] /= len(vs)
        pix = np.round(BLUES(Normalize(0, 1)(M)) * 255).astype(np.uint8)
        ax[k].image(pix, (-0.5, len(edges) - 0.5, len(labels) - 0.5, -0.5))
        for i in range(len(labels)):
            for j in range(len(edges)):
                if M[i, j] > 0:
                    ax[k].text(j, i, f"{100 * M[i, j]:.0f}", size=7.5,
                               color=_BLACK if M[i, j] < 0.6 else "#fff")
        ax[k].xlim = (-0.5, len(edges) - 0.5)
        ax[k].xticks = list(zip(range(len(edges)), edge_txt))
        ax[k].xrotation = 45
        ax[k].yticks = [(v, "") for v in y]
        ax[k].ylim = (len(labels) - 0.5, -0.5)
        ax[k].title = f"{dt}: % of points per error decade (ulp)"
    return [("distribution of the compiled-vs-exact error (ULPs) per kernel, output and "
             "dtype, over every point of the evidence checks; points far right passed by "
             "the absolute bound (tiny exact values, see each kernel's tolerance)",
             _save(fig, out, "ulp_distributions.svg"))]


# ------------------------------------------------------------------ convexity

def _convexity_plot(it, out, idx):
    d = it["_data"]
    sw = d["sweep"]
    fig = Figure(11 if sw else 6, 4.0, 2 if sw else 1,
                 suptitle=f"{it['name']}: {it['verdict']}")
    ax = fig.axes
    k = 0
    if sw:
        E = np.array(sw["eigs"], float)
        s = np.array(sw["s"], float)
        for j in range(E.shape[1]):
            ax[0].plot(s, E[:, j], CYCLE[3] if j == 0 else grey(0.5),
                       lw=1.5 if j == 0 else 0.8,
                       label="smallest eigenvalue" if j == 0 and E.shape[1] > 1 else
                       ("f''" if E.shape[1] == 1 else None))
        ax[0].axhline(0, _BLACK, lw=0.6)
        neg = E[:, 0] < -1e-25                 # the check's threshold (0 is convex)
        if neg.any():
            ax[0].plot(s[neg], E[neg, 0], CYCLE[3], ls=None, marker="v", ms=4,
                       label="negative: not convex here")
        w = d.get("witness")
        if w is not None:
            wv = w if isinstance(w, (tuple, list)) else (w,)
            if d["n_vars"] == 1:
                s_w = float(wv[0]) / sw["direction"][0]
            else:
                s_w = 0.0                      # the line passes through the witness
            ax[0].axvline(s_w, CYCLE[3], ls="--", lw=0.8, label=f"witness {tuple(wv)}")
        where = ("x(s) = s·d" if not any(sw["base"]) else f"x(s) = {tuple(sw['base'])} + s·d")
        ax[0].title = (("f'' " if d["n_vars"] == 1 else "Hessian eigenvalues ") +
                       f"along {where}")
        ax[0].xlabel = "s"
        ax[0].grid = "both"
        k = 1
    g = np.array(d["gaps"], float)
    if g.size:
        ax[k].hist(g[g <= 1e-25], 30, CYCLE[0], label=f"chord holds ({int((g <= 1e-25).sum())})")
        if (g > 1e-25).any():
            ax[k].hist(g[g > 1e-25], 30, CYCLE[3],
                       label=f"chord violated ({int((g > 1e-25).sum())})")
        ax[k].axvline(0, _BLACK, lw=0.6)
        ax[k].xlabel = "chord gap (convex: <= 0)"
        ax[k].ylabel = "chords"
    else:
        ax[k].text(0.5, 0.5, "no random chord test for this case\n(proved by certificate)",
                   axes_coords=True)
        ax[k].xlim = ax[k].ylim = (0.0, 1.0)
    ax[k].title = "chord gaps f((1-t)a+tb) - [(1-t)f(a)+t f(b)]\nat the check's random chords"
    fig.legend(ax, ncol=4)
    cap = (f"{it['name']}: " + ("curvature along a line (the check's sweep) and " if sw else "")
           + "the chord gaps the check computed (convex: all <= 0)")
    return [(cap, _save(fig, out, f"convexity_{idx:02d}.svg"))]


# ------------------------------------------------------------------ the notes

def _xor_plot(it, out, idx):
    g = it["_grid"]
    ax_ = np.array(g["axis"], float)
    O = np.array(g["out"], float)
    step = ax_[1] - ax_[0]
    ext = [ax_[0] - step / 2, ax_[-1] + step / 2] * 2
    fig = Figure(6.4, 5.4)
    ax = fig.axes[0]
    level = (min(g["sym"]) + max(g["sym"])) / 2     # between the two output codes
    split = O.min() < level < O.max()
    norm = (TwoSlopeNorm(level, O.min(), O.max()) if split
            else Normalize(O.min(), O.max()))
    alpha = 0.55                       # the regions blended with white, as the colorbar
    rgb = alpha * COOLWARM(norm(O)) + (1 - alpha)
    ax.image(np.round(rgb * 255).astype(np.uint8)[::-1], ext)   # row 0 at the bottom
    ax.aspect_equal = True
    fig.colorbar(ax, COOLWARM, norm, "network output (nnlib)", alpha)
    if split:
        ax.contour(ax_, ax_, O, level, _BLACK, lw=2)
        ax.plot([], [], _BLACK, lw=2, label=f"decision boundary (output = {level:g})")
    xs = np.array([ext[0], ext[1]])
    W, b = g["layers"][0][0], g["layers"][0][1]
    for j in range(len(b)):
        w0, w1, bj = float(W[0][j]), float(W[1][j]), float(b[j])
        lab = "a hidden unit's line (pre-activation 0)" if j == 0 else None
        if w1 != 0:
            ax.plot(xs, -(w0 * xs + bj) / w1, _BLACK, ls="--", lw=0.8, label=lab)
        else:
            ax.axvline(-bj / w0, _BLACK, ls="--", lw=0.8, label=lab)
    for (x1, x2), v in zip(g["points"], g["sym"]):
        ax.plot([x1], [x2], _BLACK, ls=None, marker="o", ms=7)
        ax.text(x1, x2, f"{v}", size=12, ha="left", va="baseline", bold=True,
                offset=(7, 7), box="#fff")
    ax.xlim = (ext[0], ext[1])
    ax.ylim = (ext[2], ext[3])
    ax.xlabel = "x1"
    ax.ylabel = "x2"
    ax.title = (f"{it['name'].split(':')[0]}: decision regions\n"
                "(labels: SymPy's exact output at the four XOR inputs)")
    fig.legend([ax], ncol=1)
    return [("decision regions of the notes' construction, computed by nnlib's compiled "
             "dense_forward on the grid the check compares with the exact rational forward",
             _save(fig, out, f"xor_{idx}.svg"))]


def _trajectory_plot(it, out):
    series = it["_traj"]
    names = list(dict.fromkeys(s["label"] for s in series))
    fig = Figure(4.6 * len(names), 4.2, len(names))
    ax = fig.axes
    for k, name in enumerate(names):
        twin = ax[k].twinx()
        for s in (s for s in series if s["label"] == name):
            ks = np.arange(len(s["x"]))
            st = _STYLE[s["dtype"]]
            if s["dtype"] == "float64":
                ax[k].plot(ks, s["exact"], _BLACK, lw=1.5, label="SymPy")
            ax[k].plot(ks, s["x"], st["color"], ls=None, marker=st["marker"], ms=4,
                       label=f"nnlib {s['dtype']}")
            twin.plot(ks, [_floor(u) for u in s["ulps"]], st["color"], lw=0.8, alpha=0.6,
                      label=f"error {s['dtype']}")
        _ulp_axis(twin, "nnlib - SymPy (ulp)")
        ax[k].xlabel = "step k"
        ax[k].ylabel = "iterate x_k"
        ax[k].title = f"{name}: x_k, nnlib vs SymPy"
        ax[k].grid = "both"
    fig.legend(ax, ncol=5)
    return [("iterates x_k of nnlib's optimizers on the notes' quadratic vs SymPy, error in "
             "ULPs on the right axis", _save(fig, out, "optimizer_trajectories.svg"))]


# ------------------------------------------------------------------ universal approximation

def _uat_plot(it, out, idx):
    d = it["_uat"]
    target = it["name"].split(": ", 1)[-1]
    fig = Figure(12, 4.4, 2)
    ax = fig.axes
    for act, mk, c in (("sigmoid", "o", CYCLE[0]), ("tanh", "s", CYCLE[1])):
        ax[0].plot(d["widths"], d["sup"][act], c, marker=mk, label=f"sup-norm error, {act}")
        ax[0].plot(d["widths"], d["rms"][act], c, ls=":", marker=mk, alpha=0.6,
                   label=f"RMS error, {act}")
    ax[0].xscale = "log"               # base 2: the widths as ticks, no minor ticks
    ax[0].yscale = "log"
    ax[0].xticks = [(w, str(w)) for w in d["widths"]]
    ax[0].xlabel = "hidden units N (one hidden layer, linear output)"
    ax[0].ylabel = "error on [-1, 1]"
    ax[0].title = f"f(x) = {target}: error of the fitted network vs its width"
    ax[0].grid = "both"
    ax[0].minor_grid = True
    wide = np.array(d["wide"], float)
    ax[1].axvspan(-1.5, d["interval"][0], grey(0.9))
    ax[1].axvspan(d["interval"][1], 1.5, grey(0.9), label="outside [-1, 1] (no promise)")
    ax[1].plot(wide, d["target_wide"], _BLACK, lw=2.2, label=f"f(x) = {target}")
    for k, (lab, ys) in enumerate(d["fits"].items()):
        ax[1].plot(wide, ys, CYCLE[(k + 2) % 10], lw=1.1, label=f"nnlib, {lab}")
    ax[1].xlim = (-1.5, 1.5)
    finite = np.array(d["target_wide"], dtype=float)
    lo, hi = np.nanmin(finite), np.nanmax(finite)
    ax[1].ylim = (lo - 0.6 * (hi - lo + 0.2), hi + 0.6 * (hi - lo + 0.2))
    ax[1].xlabel = "x"
    ax[1].title = "the target and a few fitted networks, beyond the interval"
    ax[1].grid = "both"
    fig.legend(ax, ncol=4)
    cap = (f"universal approximation, f(x) = {target}: one-hidden-layer networks of growing "
           "width fitted by nnlib (L-BFGS); left, the sup-norm and RMS errors on [-1, 1]; "
           "right, fits of three widths, drawn beyond the interval where the theorem says "
           "nothing")
    return [(cap, _save(fig, out, f"approximation_{idx}.svg"))]


# ------------------------------------------------------------------ driver

def make_plots(data, out, summary=True):
    """Draw every figure; returns a list of errors (a figure that fails is reported in the
    report, not fatal). Sets ``item["plots"]`` and ``data["summary_plots"]`` (the ULP
    summary only when ``summary``), and the CPU seconds of each kind of figure in
    ``data["plot_cpu_seconds"]``."""
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    items = data["items"]
    errors = []
    cpu = data.setdefault("plot_cpu_seconds", {})

    def attempt(target, fn, *args):
        t0 = time.process_time()
        try:
            with np.errstate(over="ignore", invalid="ignore"):   # axes spanning +-1e308
                target.setdefault("plots", []).extend(fn(*args))
        except Exception as exc:     # one broken figure must not hide the report
            errors.append(f"{fn.__name__} ({target.get('name', 'summary')}): {exc!r}")
            target.setdefault("plots", [])
        key = fn.__name__.strip("_")
        cpu[key] = round(cpu.get(key, 0) + time.process_time() - t0, 3)

    by_name = {it["name"]: it for it in items if it.get("section") == "kernels"}
    n_conv = n_xor = n_uat = 0
    for it in items:
        if it.get("section") == "kernels" and it.get("_result") is not None:
            if it.get("kind") == "activation":
                attempt(it, _activation_plot, it, out)
            elif it.get("kind") == "loss" and it.get("_sweep") is not None:
                attempt(it, _loss_plot, it, out)
        elif it.get("section") == "convexity" and it.get("_data"):
            n_conv += 1
            attempt(it, _convexity_plot, it, out, n_conv)
        elif it.get("section") == "notes" and it.get("_grid"):
            n_xor += 1
            attempt(it, _xor_plot, it, out, n_xor)
        elif it.get("section") == "notes" and it.get("_traj"):
            attempt(it, _trajectory_plot, it, out)
        elif it.get("section") == "approximation" and it.get("_uat"):
            n_uat += 1
            attempt(it, _uat_plot, it, out, n_uat)
    soft, sparse = by_name.get("softmax"), by_name.get("sparsemax")
    if soft and sparse and soft.get("_slice") and sparse.get("_slice"):
        attempt(sparse, _simplex_plot, soft, sparse, out)
        soft["plots"] = soft.get("plots", []) + sparse["plots"][-1:]
    if summary:
        summary = {"name": "ULP summary"}
        attempt(summary, _ulp_summary,
                [it for it in items if it.get("section") == "kernels"], out)
        data["summary_plots"] = summary["plots"]
    return errors
