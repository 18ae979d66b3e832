"""results.json -> results.md (tables with nnlib/peer ratios and the targets, stated
plainly) and PNG plots (when matplotlib is installed; imported only here, lazily)."""
import json
import math
import os

from bench.results import row_shows_faults

__all__ = ["write_json", "write_markdown", "write_summary", "write_plots", "fmt_seconds",
           "fmt_bytes", "fmt_faults"]

LABELS = {"nnlib": "nnlib", "torch": "PyTorch", "sklearn": "scikit-learn",
          "numpy": "NumPy loop", "twin": "NumPy twin", "jax": "JAX (jit epoch)",
          "nnlib_flush": "nnlib, flush-denormal"}


def _label(peer, tbl=None):
    """Display name of a column: the table's own label for it, else the peer's name."""
    return ((tbl or {}).get("labels") or {}).get(peer) or LABELS.get(peer, peer)


def _clean(obj):
    """JSON-safe copy: NumPy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, type):
        return obj.__name__
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def write_json(results, path):
    with open(path, "w") as f:
        json.dump(_clean(results), f, indent=1, allow_nan=False)


def fmt_seconds(s):
    if s is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_bytes(n):
    if n is None:
        return "—"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_faults(cell):
    """A cell's page faults per call, e.g. "808 page faults/call" ("" if not recorded)."""
    f = cell.get("faults_per_call")
    if f is None:
        return ""
    text = f"{_fmt_count(f)} page faults/call"
    major = cell.get("major_faults_per_call") or 0
    if major >= 1:
        text += f", {_fmt_count(major)} from disk"
    return text


def _fmt_count(x):
    return f"{x:,.0f}" if x >= 10 or x == 0 else f"{x:.1f}"


def _value(tbl, row, cell):
    """The number shown for a cell: seconds, or a rate (per_call / seconds)."""
    m = cell.get("median") if cell.get("status") == "ok" else None
    if m is None:
        return None
    return row["params"].get("per_call", 1) / m if tbl["value"] == "rate" else m


def _fmt_cell(tbl, row, cell):
    if cell is None:
        return "—"
    if cell.get("status") != "ok":
        return cell.get("status", "?")
    v = _value(tbl, row, cell)
    if tbl["value"] == "bytes":          # one measurement per cell: no spread to show
        return fmt_bytes(v)
    spread = cell["iqr"] / cell["median"] if cell["median"] else 0.0
    notes = []
    if tbl["value"] == "rate":
        text = f"{v:,.0f} {tbl['unit']}"
        if "sgemm_fraction" in cell:
            notes.append(f"{cell['sgemm_fraction']:.0%} of sgemm")
    else:
        text = fmt_seconds(v)
        if "bandwidth_fraction" in cell:
            notes.append(f"{cell['bandwidth_fraction']:.0%} of memory bandwidth")
    if row_shows_faults(row):
        notes.append(fmt_faults(cell))
    notes = [n for n in notes if n]
    if notes:
        text += f" ({'; '.join(notes)})"
    return f"{text} ±{spread:.0%}"


def _fmt_ratio(r):
    if r is None:
        return "—"
    return f"{r:.3g}" if r < 100 else f"{r:,.0f}"


def _table_md(tbl):
    base = tbl["baseline"]
    cols = tbl["columns"]
    others = [c for c in cols if c != base] if base in cols else []
    kind = {"rate": "throughput", "bytes": "memory"}.get(tbl["value"], "time")
    names = {c: _label(c, tbl) for c in cols}
    head = ["case"] + [names[c] for c in cols] + [f"{names[base]}/{names[c]} ({kind})"
                                                  for c in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in tbl["rows"]:
        cells = row["cells"]
        vals = [_fmt_cell(tbl, row, cells.get(c)) for c in cols]
        b = _value(tbl, row, cells.get(base) or {})
        ratios = []
        for c in others:
            o = _value(tbl, row, cells.get(c) or {})
            ratios.append(_fmt_ratio(b / o if b is not None and o else None))
        lines.append("| " + " | ".join([row["case"]] + vals + ratios) + " |")
    return "\n".join(lines)


def _load(meta):
    a, b = meta.get("loadavg_start"), meta.get("loadavg_end")
    return f"{a[0]:.2f} at start, {b[0]:.2f} at end" if a and b else "unknown"


def _overload(meta):
    """(worst 1-min load average, usable cores) when the load exceeded the cores, else
    None: then other work competed with the timings and no target can be trusted."""
    a, b = meta.get("loadavg_start"), meta.get("loadavg_end")
    cores = (meta.get("machine") or {}).get("usable_cores") or 1
    worst = max(x[0] for x in (a, b) if x) if (a or b) else 0
    return (worst, cores) if worst > cores else None


def load_warning_text(meta):
    """The console's and the report's warning for an overloaded run ('' if none)."""
    over = _overload(meta)
    if not over:
        return ""
    return (f"the load average reached {over[0]:.1f} on {over[1]} cores: other processes "
            "competed with these timings, so every target below is marked unreliable.")


def target_status(met, meta):
    """MET / MISSED / not measured, with "(unreliable)" when the machine was overloaded."""
    status = {True: "MET", False: "MISSED", None: "not measured"}[met]
    return status + (" (unreliable)" if met is not None and _overload(meta) else "")


def _load_warning(meta):
    """A plain warning when other work competed for the cores during the run."""
    if not _overload(meta):
        return []
    return [f"**Warning: {load_warning_text(meta)}** Multi-threaded libraries suffer most "
            "(an OpenMP or OpenBLAS thread that spins at a barrier while its partner is "
            "descheduled stalls the whole call), so with more than one thread the peers' "
            "times can be inflated far more than nnlib's; `--threads 1` (the default) is "
            "the fairer setting on a busy machine.", ""]


def _loss_line(tbl):
    """Each peer's training loss after the timed epochs: equal work shows as similar
    losses (a peer that skipped work, or diverged, would stand out)."""
    parts = []
    for row in tbl["rows"]:
        vals = [f"{_label(c)} {cell['loss_after']:.3g}" for c, cell in row["cells"].items()
                if cell.get("status") == "ok" and cell.get("loss_after") is not None]
        if vals:
            parts.append(f"{row['case']}: " + ", ".join(vals))
    if not parts:
        return ""
    return ("Training loss after the timed epochs (mean cross-entropy on the data, same "
            "function for every peer): " + "; ".join(parts) + ".")


def _threads_line(tbl, requested):
    """The cells whose work kept more CPUs busy than the run allows (``requested``): a
    library that ignores the thread limit is named, not counted as one fast thread. A
    dispatching thread that waits for a worker adds to ``threads_used`` but not to the
    CPU seconds per wall second, so the test is on the latter (with 20 % for the waiting
    thread's own work)."""
    parts = []
    for row in tbl["rows"]:
        over = [f"{_label(c)} {cell['cpu_per_wall']:.2f} CPU s per s on "
                f"{cell['threads_used']} threads" for c, cell in row["cells"].items()
                if cell.get("status") == "ok"
                and cell.get("cpu_per_wall", 0) > 1.2 * requested]
        if over:
            parts.append(f"{row['case']}: " + ", ".join(over))
    if not parts:
        return ""
    return (f"Busier than {requested} CPU{'s' if requested > 1 else ''} (each thread's "
            "CPU clock read around every timed sample; threads counted when they ran 10 % "
            "of the wall time): " + "; ".join(parts) + ".")


def _status(met, meta=None):
    text = target_status(met, meta or {})
    return f"**{text}**" if met is not None else text


def write_markdown(results, path):
    """results.md: the run's header, the targets, then every workload's tables."""
    out = _header(results)
    out += _body(results, results["workloads"])
    with open(path, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


# Tables small enough for the README: the headline workloads, not the kernel sweeps.
SUMMARY_TABLES = ("import", "per_sample", "minibatch", "large", "verify", "estimators",
                  "estimators_memory")


def write_summary(results, path):
    """summary.md: the header, the targets and the headline tables (no kernels/scaling
    sweeps, no plots) -- the block the README's "Benchmarks" section shows."""
    out = _header(results, level=3, title="Latest run")
    picked = {k: dict(w, tables=[t for t in w.get("tables", [])
                                 if t["name"] in SUMMARY_TABLES])
              for k, w in results["workloads"].items()}
    picked = {k: w for k, w in picked.items() if w["tables"]}
    out += _body(results, picked, level=3, plots=False, descriptions=False)
    with open(path, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


def _header(results, level=1, title="nnlib benchmarks"):
    meta = results["meta"]
    m, v, t = meta["machine"], meta["versions"], meta["threads"]
    h = "#" * level
    out = [f"{h} {title}", "",
           f"Command: `{meta['command']}` — {meta['mode']} run, {meta['started_utc']} UTC, "
           f"{meta['duration_s']:.0f} s.", "",
           f"Machine: {m['cpu']}, {m['usable_cores']} usable cores "
           f"({m['logical_cores']} logical), {m['memory_gib']} GiB, {m['os']}. "
           f"Load average (1 min) {_load(meta)} — the machine is shared, so a load above "
           f"the core count means other work competed with these timings.", ""]
    out += _load_warning(meta)
    out += [f"Threads: {t['requested']} for every library (OMP/OpenBLAS/MKL environment "
            f"variables, `torch.set_num_threads`, nnlib's OpenMP).", "",
            "Versions: " + ", ".join(f"{k} {val if val else 'not installed'}"
                                     for k, val in v.items())
            + (f"; source commit {meta['commit']}" if meta.get("commit") else "") + ".", "",
            "Cells: median, ± the interquartile range as a fraction of the median. Ratio "
            "columns divide nnlib's value by the peer's: for times, below 1 means nnlib is "
            "faster (0.02 = 50× faster); for throughputs, above 1 means nnlib is faster; "
            "for memory, below 1 means nnlib needs less.",
            "", f"{h}# Targets", ""]
    targets = [tg for w in results["workloads"].values() for tg in w.get("targets", [])]
    if targets:
        out += ["| target | status | measured |", "|---|---|---|"]
        out += [f"| {tg['target']} | {_status(tg['met'], meta)} | {tg['detail']} |"
                for tg in targets]
    else:
        out.append("(The workloads run here have no targets.)")
    return out


def _body(results, workloads, level=1, plots=True, descriptions=True):
    out = []
    h = "#" * (level + 1)
    for key, w in workloads.items():
        out += ["", f"{h} {w.get('title', key)}", ""]
        if "error" in w:
            out += [f"This workload failed: `{w['error'].strip().splitlines()[-1]}` "
                    "(traceback in results.json)."]
            continue
        if descriptions:
            out += [w["description"], ""]
            for peer, text in (w.get("peers") or {}).items():
                out.append(f"- {_label(peer)}: {text}")
            if w.get("peers"):
                out.append("")
        for tbl in w["tables"]:
            for note in tbl.get("notes", []):
                out += [note, ""]
            out += [_table_md(tbl), ""]
            losses = _loss_line(tbl)
            if losses and descriptions:
                out += [losses, ""]
            requested = results.get("meta", {}).get("threads", {}).get("requested")
            crowd = _threads_line(tbl, requested) if requested else ""
            if crowd:
                out += [crowd, ""]
            plot = tbl.get("plot")
            if plots and plot and plot.get("file") in results.get("plots", []):
                out += [f"![{tbl['name']}]({plot['file']})", ""]
        for note in w.get("notes", []) if descriptions else ():
            out += [note, ""]
    return out


def write_plots(results, out_dir):
    """One PNG per table that asks for a plot; returns the file names written (none when
    matplotlib is missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for key, w in results["workloads"].items():
        for tbl in w.get("tables", []):
            plot = tbl.get("plot")
            if not plot:
                continue
            title = _plot_title(w, key, tbl)
            fig = (_bar if plot["kind"] == "bar" else _lines)(plt, tbl, plot, title)
            if fig is None:
                continue
            fig.savefig(os.path.join(out_dir, plot["file"]), dpi=90)
            plt.close(fig)
            written.append(plot["file"])
    return written


def _plot_title(w, key, tbl):
    """The workload's title (what is measured), and the table's unit when it has several
    tables -- never an internal identifier alone."""
    title = w.get("title", key)
    if len(w.get("tables", [])) > 1:
        title += " (" + {"rate": "throughput", "bytes": "memory"}.get(tbl["value"], "time") \
            + ")"
    return title


def _bar(plt, tbl, plot, title):
    rows, cols = tbl["rows"], tbl["columns"]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(rows) + 2), 4))
    width = 0.8 / max(len(cols), 1)
    vals_all = []
    for j, c in enumerate(cols):
        xs, vals, lo, hi = [], [], [], []
        for i, row in enumerate(rows):
            cell = row["cells"].get(c) or {}
            v = _value(tbl, row, cell)
            if v is None:
                continue
            per = row["params"].get("per_call", 1) if tbl["value"] == "rate" else 1
            a, b = (per / cell["q3"], per / cell["q1"]) if tbl["value"] == "rate" \
                else (cell["q1"], cell["q3"])
            xs.append(i + j * width)
            vals.append(v)
            lo.append(max(v - a, 0))
            hi.append(max(b - v, 0))
        if vals:
            ax.bar(xs, vals, width, yerr=[lo, hi], label=_label(c, tbl), capsize=2)
            vals_all += vals
    if not vals_all:
        plt.close(fig)
        return None
    if max(vals_all) / max(min(vals_all), 1e-30) > 50:
        ax.set_yscale("log")
    ax.set_xticks([i + width * (len(cols) - 1) / 2 for i in range(len(rows))])
    ax.set_xticklabels([r["case"] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(tbl["unit"] if tbl["value"] == "rate" else "seconds (median, IQR bars)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _lines(plt, tbl, plot, title):
    group = plot.get("group")
    groups = []
    for row in tbl["rows"]:
        g = row["params"].get(group) if group else None
        if g not in groups:
            groups.append(g)
    ncol = min(4, len(groups))
    nrow = -(-len(groups) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.2 * nrow), squeeze=False)
    for k, g in enumerate(groups):
        ax = axes[k // ncol][k % ncol]
        rows = [r for r in tbl["rows"] if not group or r["params"].get(group) == g]
        for c in tbl["columns"]:
            pts = [(r["params"][plot["x"]], _value(tbl, r, r["cells"].get(c) or {}))
                   for r in rows]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=_label(c, tbl))
        if plot.get("logx"):
            ax.set_xscale("log")
        if plot.get("logy"):
            ax.set_yscale("log")
        ax.set_title(f"{group} {g}" if group else title, fontsize=9)
        ax.set_xlabel(plot.get("xlabel", plot["x"]), fontsize=8)
        ax.set_ylabel(plot.get("ylabel", "seconds"), fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for k in range(len(groups), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    if group:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
