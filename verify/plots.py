"""PNG plots for the report, drawn from the data the checks computed (imported only when
matplotlib is installed).

Design note
-----------
Every plot reads what a check stored on its item (keys starting with ``_``, kept out of
report.json): the per-point records of ``CheckResult.points`` (input, compiled value, exact
value, error in ULPs), the 1-d loss sweeps and the 3-class slice of the output maps, the
convexity checks' curvature sweeps and chord gaps, the XOR networks' compiled decision
regions on a grid, the optimizer trajectories. Nothing is re-derived here from a formula:
a plot shows exactly the numbers the verdict was computed from. Each figure is written to a
temporary file and renamed into place (atomic), and is referenced from the report next to
the check it illustrates (``item["plots"]``: [(caption, relative path)]).
"""
import math
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["make_plots"]

_DPI = 72
_STYLE = {"float64": dict(color="C0", marker="o"), "float32": dict(color="C1", marker="x")}


def _save(fig, out, name, **adjust):
    rel = os.path.join("plots", name)
    path = os.path.join(out, rel)
    tmp = path + ".tmp"
    # fixed margins: tight_layout cost a third of the plotting time
    fig.subplots_adjust(**{**dict(left=0.06, right=0.94, bottom=0.16, top=0.87, wspace=0.38),
                           **adjust})
    fig.savefig(tmp, format="png", dpi=_DPI)
    plt.close(fig)
    os.replace(tmp, path)
    return rel


def _floor(u):
    return max(float(u), 1e-3) if not math.isinf(u) else 1e20


def _ulp_axis(ax, label="error (ulp; floor 1e-3)"):
    ax.set_yscale("log")
    ax.set_ylabel(label, fontsize=8)


# ------------------------------------------------------------------ activations

def _activation_plot(it, out):
    res = it["_result"]
    fw = res.points.get("forward", {})
    vj = res.points.get("vjp", {})
    acc = it.get("_accuracy")
    ncol = 4 if acc else 3
    fig, ax = plt.subplots(1, ncol, figsize=(4.2 * ncol, 3.4))
    for k, (recs, title) in enumerate(((fw.get("float64", []), f"{it['name']}(z)"),
                                       (vj.get("float64", []), f"{it['name']}'(z)"))):
        near = sorted((r for r in recs if abs(r["x"]) <= 6), key=lambda r: r["x"])
        smooth = [r for r in near if r["exact"] is not None]
        ax[k].plot([r["x"] for r in smooth], [r["exact"] for r in smooth], "k-", lw=1.5,
                   label="SymPy (exact, mpmath)")
        ax[k].plot([r["x"] for r in near], [r["got"] for r in near], "o", ms=3, color="C0",
                   label="nnlib float64")
        for r in near:
            if r.get("interval"):            # a kink: the subdifferential and the pick
                lo, hi = r["interval"]
                ax[k].plot([r["x"], r["x"]], [lo, hi], "-", color="C3", lw=4, alpha=0.5,
                           label="subdifferential at the kink")
        ax[k].set_title(title + " at the check's points, |z| <= 6", fontsize=9)
        h, lab = ax[k].get_legend_handles_labels()
        uniq = dict(zip(lab, h))
        ax[k].legend(uniq.values(), uniq.keys(), fontsize=7)
    for which, style in (("forward", "-"), ("vjp", "--")):
        for dt, recs in res.points.get(which, {}).items():
            rs = sorted(recs, key=lambda r: r["x"])
            ax[2].plot([r["x"] for r in rs], [_floor(r["ulps"]) for r in rs], ls="none",
                       marker="." if which == "forward" else "x", ms=3,
                       color=_STYLE[dt]["color"], label=f"{which} {dt}")
    ax[2].set_xscale("symlog", linthresh=1e-3)
    big = max((abs(r["x"]) for recs in res.points.get("forward", {}).values() for r in recs
               if math.isfinite(r["x"])), default=1.0)
    ax[2].set_xlim(-big, big)
    ticks = [v for v in (1, 1e10, 1e100, 1e300) if v <= big]
    ax[2].set_xticks([-v for v in ticks[::-1]] + [0] + ticks,
                     [f"-{v:.0e}" for v in ticks[::-1]] + ["0"] + [f"{v:.0e}" for v in ticks],
                     fontsize=6, rotation=60)
    _ulp_axis(ax[2])
    ax[2].set_xlabel("z (symlog)", fontsize=8)
    ax[2].set_title("compiled - exact, every point of the check", fontsize=9)
    ax[2].legend(fontsize=7)
    if acc:
        for s in acc["series"]:
            zs = np.abs(np.array(s["z"]))
            pos = np.array(s["z"]) > 0
            ls = "-" if s["path"].startswith("vjp") else ":"
            c = _STYLE[s["dtype"]]["color"]
            for mask, side in ((pos, "z>0"), (~pos, "z<0")):
                ax[3].plot(zs[mask], [_floor(u) for u in np.array(s["ulps"])[mask]], ls,
                           color=c, alpha=1.0 if side == "z>0" else 0.4, lw=1,
                           label=f"{s['path'].split(' ')[0]} {s['dtype']} {side}")
            if s["z_star"]:
                ax[3].axvline(s["z_star"], color=c, lw=0.6, ls="--")
            ax[3].axhline(s["tol_ulps"], color=c, lw=0.5)
        ax[3].set_xscale("log")
        _ulp_axis(ax[3])
        ax[3].set_xlabel("|z|", fontsize=8)
        ax[3].set_title("act'(z) from the output: ulp error (dashed: first |z| over "
                        "the ulp bound)", fontsize=8)
        ax[3].legend(fontsize=5.5, ncol=2)
    for a in ax:
        a.grid(alpha=0.3)
    return [(f"{it['name']}: compiled vs SymPy and the error in ULPs at every point of the "
             "check" + (" (right: the derivative-from-output sweep of the accuracy rows)"
                        if acc else ""), _save(fig, out, f"{it['name']}.png", left=0.04,
                                               right=0.98, bottom=0.22))]


# ------------------------------------------------------------------ output maps

_TRI = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])


def _simplex_plot(soft, sparse, out):
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    for k, it in enumerate((soft, sparse)):
        recs = it["_slice"].points.get("forward", {}).get("float64", [])
        P = np.array([r["got"] for r in recs])
        on_edge = np.any(P == 0.0, axis=1)
        XY = P @ _TRI
        ax[k].fill(_TRI[:, 0], _TRI[:, 1], color="0.93", zorder=0)
        ax[k].plot(*np.vstack([_TRI, _TRI[:1]]).T, "k-", lw=1)
        ax[k].scatter(XY[~on_edge, 0], XY[~on_edge, 1], s=9, c="C0",
                      label="interior (all p_j > 0)")
        ax[k].scatter(XY[on_edge, 0], XY[on_edge, 1], s=14, c="C3", marker="s",
                      label="on the boundary (some p_j = 0)")
        for j, name in enumerate(("p0 = 1", "p1 = 1", "p2 = 1")):
            ax[k].annotate(name, _TRI[j], fontsize=8, ha="center",
                           va="top" if j < 2 else "bottom")
        ax[k].set_title(f"{it['name']}(a, b, 0), nnlib float64:\n{int(on_edge.sum())} of "
                        f"{len(P)} outputs on the boundary", fontsize=9)
        ax[k].set_aspect("equal")
        ax[k].axis("off")
        ax[k].legend(fontsize=6.5, loc="upper left")
        for which, mk in (("forward", "o"), ("vjp", "x")):
            for dt, rs in it["_slice"].points.get(which, {}).items():
                ax[2].plot(sorted(_floor(r["ulps"]) for r in rs), mk, ms=3,
                           label=f"{it['name']} {which} {dt}")
    _ulp_axis(ax[2], "worst component error (ulp), sorted")
    ax[2].set_xlabel("slice row (sorted by error)", fontsize=8)
    ax[2].set_title("compiled - exact on the slice (both maps, both dtypes)", fontsize=9)
    ax[2].legend(fontsize=6)
    ax[2].grid(alpha=0.3)
    rel = _save(fig, out, "simplex_softmax_sparsemax.png", left=0.01, wspace=0.3)
    cap = ("softmax vs sparsemax on the 3-class slice z = (a, b, 0), drawn in the simplex "
           "from the compiled outputs of the slice check: sparsemax reaches the boundary, "
           "softmax never does")
    return [(cap, rel)]


# ------------------------------------------------------------------ losses

def _loss_plot(it, out):
    res = it["_sweep"]
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    t_of = (lambda x: x[0][0]) if isinstance(res.points["loss"]["float64"][0]["x"][0], list) \
        else (lambda x: x[0])
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
                        ax[k].plot([t, t], [min(vals), max(vals)], "-", color="C3", lw=5,
                                   alpha=0.4, label="subdifferential (SymPy)")
            if dt == "float64":
                ax[k].plot(ts, ex, "k-", lw=1.5, label="SymPy (exact)")
            ax[k].plot(ts, got, _STYLE[dt]["marker"], ms=3, color=_STYLE[dt]["color"],
                       label=f"nnlib {dt}")
            twin.plot(ts, [_floor(r["ulps"]) for r in recs], "-", lw=0.8, alpha=0.6,
                      color=_STYLE[dt]["color"], label=f"error {dt}")
        _ulp_axis(twin, "compiled - SymPy (ulp; floor 1e-3)")
        ax[k].set_xlabel("t", fontsize=8)
        worst = {dt: max(r["ulps"] for r in recs)
                 for dt, recs in res.points.get(which, {}).items()}
        ax[k].set_title(("L" if which == "loss" else "dL/dz_0") + " along the sweep; max "
                        "error " + ", ".join(f"{dt} {u:.3g} ulp" for dt, u in worst.items()),
                        fontsize=8)
        h, lab = ax[k].get_legend_handles_labels()
        h2, lab2 = twin.get_legend_handles_labels()
        uniq = dict(zip(lab + lab2, h + h2))
        ax[k].legend(uniq.values(), uniq.keys(), fontsize=6.5, loc="upper center")
        ax[k].grid(alpha=0.3)
    from verify.losses import SWEEP_TEXT
    cap = (f"{it['name']} and its derivative along {SWEEP_TEXT[it['name']]}: SymPy vs "
           "compiled, error in ULPs on the right axis (the sweep check's points)")
    return [(cap, _save(fig, out, f"loss_{it['name']}.png", wspace=0.4))]


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
    labels = sorted({r[0] for r in rows}, key=lambda s: [r[0] for r in rows].index(s))
    edges = [0.5, 1, 10, 1e2, 1e4, 1e8, 1e16, math.inf]
    edge_txt = ["<=0.5", "<=1", "<=10", "<=1e2", "<=1e4", "<=1e8", "<=1e16", ">1e16"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 0.28 * len(labels) + 1.8),
                           gridspec_kw=dict(width_ratios=[1.4, 1, 1]))
    y = np.arange(len(labels))
    for off, dt in ((-0.2, "float64"), (0.2, "float32")):
        mx = [max((_floor(v) for lab, d, vs in rows if lab == L and d == dt for v in vs),
                  default=np.nan) for L in labels]
        ax[0].barh(y + off, mx, height=0.4, color=_STYLE[dt]["color"], label=dt)
    ax[0].set_xscale("log")
    ax[0].set_yticks(y, labels, fontsize=6.5)
    ax[0].set_ylim(len(labels) - 0.5, -0.5)
    ax[0].set_xlabel("max error over the check's points (ulp)", fontsize=8)
    ax[0].legend(fontsize=7)
    ax[0].grid(alpha=0.3, axis="x")
    for k, dt in ((1, "float64"), (2, "float32")):
        M = np.zeros((len(labels), len(edges)))
        for i, L in enumerate(labels):
            vs = [v for lab, d, vals in rows if lab == L and d == dt for v in vals]
            for v in vs:
                M[i, next(j for j, e in enumerate(edges) if v <= e)] += 1
            if vs:
                M[i] /= len(vs)
        ax[k].imshow(M, aspect="auto", cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(edges)):
                if M[i, j] > 0:
                    ax[k].text(j, i, f"{100 * M[i, j]:.0f}", ha="center", va="center",
                               fontsize=5.5, color="k" if M[i, j] < 0.6 else "w")
        ax[k].set_xticks(range(len(edges)), edge_txt, fontsize=6.5, rotation=45)
        ax[k].set_yticks(y, [""] * len(labels))
        ax[k].set_ylim(len(labels) - 0.5, -0.5)
        ax[k].set_title(f"{dt}: % of points per error decade (ulp)", fontsize=9)
    return [("distribution of the compiled-vs-exact error (ULPs) per kernel, output and "
             "dtype, over every point of the evidence checks; points far right passed by "
             "the absolute bound (tiny exact values, see each kernel's tolerance)",
             _save(fig, out, "ulp_distributions.png", left=0.13, right=0.98,
                   bottom=0.8 / fig.get_figheight(), top=1 - 0.35 / fig.get_figheight(),
                   wspace=0.05))]


# ------------------------------------------------------------------ convexity

def _convexity_plot(it, out, idx):
    d = it["_data"]
    sw = d["sweep"]
    fig, ax = plt.subplots(1, 2 if sw else 1, figsize=(10 if sw else 5, 3.2), squeeze=False)
    ax = ax[0]
    k = 0
    if sw:
        E = np.array(sw["eigs"])
        for j in range(E.shape[1]):
            ax[0].plot(sw["s"], E[:, j], "-", lw=1.5 if j == 0 else 0.8,
                       color="C3" if j == 0 else "0.5",
                       label="smallest eigenvalue" if j == 0 and E.shape[1] > 1 else
                       ("f''" if E.shape[1] == 1 else None))
        ax[0].axhline(0, color="k", lw=0.6)
        neg = E[:, 0] < -1e-25                 # the check's threshold (0 is convex)
        if neg.any():
            ax[0].plot(np.array(sw["s"])[neg], E[neg, 0], "v", color="C3", ms=4,
                       label="negative: not convex here")
        w = d.get("witness")
        if w is not None:
            wv = w if isinstance(w, (tuple, list)) else (w,)
            if d["n_vars"] == 1:
                s_w = float(wv[0]) / sw["direction"][0]
            else:
                s_w = 0.0                      # the line passes through the witness
            ax[0].axvline(s_w, color="C3", ls="--", lw=0.8, label=f"witness {tuple(wv)}")
        where = ("x(s) = s·d" if not any(sw["base"]) else f"x(s) = {tuple(sw['base'])} + s·d")
        ax[0].set_title(("f'' " if d["n_vars"] == 1 else "Hessian eigenvalues ") +
                        f"along {where}", fontsize=9)
        ax[0].set_xlabel("s", fontsize=8)
        ax[0].legend(fontsize=7)
        ax[0].grid(alpha=0.3)
        k = 1
    g = np.array(d["gaps"])
    if g.size:
        bins = 30
        ax[k].hist(g[g <= 1e-25], bins=bins, color="C0", alpha=0.8,
                   label=f"chord holds ({int((g <= 1e-25).sum())})")
        if (g > 1e-25).any():
            ax[k].hist(g[g > 1e-25], bins=bins, color="C3", alpha=0.8,
                       label=f"chord violated ({int((g > 1e-25).sum())})")
        ax[k].axvline(0, color="k", lw=0.6)
        ax[k].legend(fontsize=7)
    else:
        ax[k].text(0.5, 0.5, "no random chord test for this case\n(proved by certificate)",
                   ha="center", va="center", fontsize=8, transform=ax[k].transAxes)
    ax[k].set_title("f((1-t)a+tb) - [(1-t)f(a)+t f(b)] at the random chords", fontsize=9)
    cap = (f"{it['name']}: " + ("curvature along a line (the check's sweep) and " if sw else "")
           + "the chord gaps the check computed (convex: all <= 0)")
    return [(cap, _save(fig, out, f"convexity_{idx:02d}.png", left=0.08, right=0.98,
                        wspace=0.25))]


# ------------------------------------------------------------------ the notes

def _xor_plot(it, out, idx):
    g = it["_grid"]
    ax_ = np.array(g["axis"])
    O = np.array(g["out"])
    step = ax_[1] - ax_[0]
    ext = [ax_[0] - step / 2, ax_[-1] + step / 2] * 2
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    im = ax.imshow(O, origin="lower", extent=ext, cmap="coolwarm", alpha=0.55)
    fig.colorbar(im, ax=ax, shrink=0.8, label="network output")
    xs = np.array([ext[0], ext[1]])
    W, b = g["layers"][0][0], g["layers"][0][1]
    for j in range(len(b)):
        w0, w1, bj = float(W[0][j]), float(W[1][j]), float(b[j])
        if w1 != 0:
            ax.plot(xs, -(w0 * xs + bj) / w1, "k--", lw=0.8)
        else:
            ax.axvline(-bj / w0, color="k", ls="--", lw=0.8)
    for (x1, x2), v in zip(g["points"], g["sym"]):
        ax.plot(x1, x2, "ko", ms=7)
        ax.annotate(f"{v}", (x1, x2), textcoords="offset points", xytext=(6, 6),
                    fontsize=10, weight="bold")
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title("compiled output on a grid; dashed: hidden units;\nlabels: SymPy output "
                 "at the XOR inputs", fontsize=8)
    return [("decision regions of the notes' construction, computed by nnlib's compiled "
             "dense_forward on the grid the check compares with the exact rational forward",
             _save(fig, out, f"xor_{idx}.png", left=0.14, right=0.98, bottom=0.12))]


def _trajectory_plot(it, out):
    series = it["_traj"]
    names = list(dict.fromkeys(s["label"] for s in series))
    fig, ax = plt.subplots(1, len(names), figsize=(4.3 * len(names), 3.4))
    ax = np.atleast_1d(ax)
    for k, name in enumerate(names):
        twin = ax[k].twinx()
        for s in (s for s in series if s["label"] == name):
            ks = np.arange(len(s["x"]))
            if s["dtype"] == "float64":
                ax[k].plot(ks, s["exact"], "k-", lw=1.5, label="SymPy")
            ax[k].plot(ks, s["x"], _STYLE[s["dtype"]]["marker"], ms=4,
                       color=_STYLE[s["dtype"]]["color"], label=f"nnlib {s['dtype']}")
            twin.plot(ks, [_floor(u) for u in s["ulps"]], "-", lw=0.8, alpha=0.6,
                      color=_STYLE[s["dtype"]]["color"], label=f"error {s['dtype']}")
        _ulp_axis(twin, "nnlib - SymPy (ulp)")
        ax[k].set_yscale("symlog", linthresh=1e-3)
        ax[k].set_xlabel("step k", fontsize=8)
        ax[k].set_title(name, fontsize=9)
        h, lab = ax[k].get_legend_handles_labels()
        h2, lab2 = twin.get_legend_handles_labels()
        ax[k].legend(h + h2, lab + lab2, fontsize=6.5)
        ax[k].grid(alpha=0.3)
    return [("iterates x_k of nnlib's optimizers on the notes' quadratic vs SymPy, error in "
             "ULPs on the right axis", _save(fig, out, "optimizer_trajectories.png",
                                             left=0.05, right=0.95, wspace=0.45))]


# ------------------------------------------------------------------ driver

def make_plots(data, out, summary=True):
    """Draw every plot; returns a list of errors (a plot that fails is reported in the
    report, not fatal). Sets ``item["plots"]`` and ``data["summary_plots"]`` (the ULP
    summary only when ``summary``: a worker process draws its own sections' plots)."""
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    items = data["items"]
    errors = []

    cpu = data.setdefault("plot_cpu_seconds", {})

    def attempt(target, fn, *args):
        t0 = time.process_time()
        try:
            with np.errstate(over="ignore"):   # symlog axes spanning +-1e308
                target.setdefault("plots", []).extend(fn(*args))
        except Exception as exc:     # one broken plot must not hide the report
            errors.append(f"{fn.__name__} ({target.get('name', 'summary')}): {exc!r}")
            target.setdefault("plots", [])
        key = fn.__name__.strip("_")
        cpu[key] = round(cpu.get(key, 0) + time.process_time() - t0, 3)

    by_name = {it["name"]: it for it in items if it.get("section") == "kernels"}
    n_conv = n_xor = 0
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
