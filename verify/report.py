"""Write the results of :func:`verify.run.run_all` as report.md (LaTeX formulas, one table
per kernel), report.json (the same data) and, when matplotlib is installed, PNG plots."""
import json
import math
import os

__all__ = ["write_report", "summary_lines"]

_SECTION_TITLES = [
    ("kernels", "Kernels: definition, proof, evidence"),
    ("optimizers", "Optimizers: one update against the symbolic rule"),
    ("backprop", "Backpropagation of small networks"),
    ("train", "The training epoch: its step proved, the compiled loop against an exact replay"),
    ("convexity", "Convexity"),
    ("notes", "The notes' worked examples"),
    ("skipped", "Skipped parts (failures under --strict)"),
]


def _fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.3g}"
    return str(v)


def _cell(v):
    return str(v).replace("|", "\\|").replace("\n", " ")


def _tol_text(t):
    if not t:
        return "–"
    s = f"≤ {_fmt(t['ulps'])} ulp"
    if t.get("abs_eps") is not None:
        s += f" or ≤ {_fmt(t['abs_eps'])}·eps·scale absolute"
    return s


def _evidence_rows(ev):
    rows = []
    if not ev:
        return rows
    for which, per in ev["stats"].items():
        for dt, s in per.items():
            rows.append((f"max error, {which}, {dt}",
                         f"{_fmt(s['max_ulps'])} ulp (rel {_fmt(s['max_rel'])}, "
                         f"abs {_fmt(s['max_abs_eps'])}·eps·scale); {s['n_points']} points, "
                         f"{s['n_failed']} failed; tolerance {_tol_text(s['tolerance'])}"))
    return rows


def _kinks_md(kinks):
    """The non-differentiable points the evidence met: the subdifferential SymPy derived
    there, the element the compiled kernel returned, and whether it lies in it."""
    if not kinks:
        return []
    groups = {}
    for k in kinks:
        key = (k["which"], k["subdifferential"], k["picked"], k["valid"])
        g = groups.setdefault(key, {"dtypes": set(), "points": []})
        g["dtypes"].add(k["dtype"])
        if len(g["points"]) < 2 and str(k["point"]) not in g["points"]:
            g["points"].append(str(k["point"]))
    n_bad = sum(not k["valid"] for k in kinks)
    lines = [f"Non-differentiable points in the evidence ({len(kinks)}): "
             + ("every compiled (sub)gradient lies in the set SymPy derives there (the "
                "subdifferential: the convex hull of the one-sided/limiting derivatives; at a "
                "jump, where none exists, the limits of the a.e. derivative)."
                if not n_bad else f"**{n_bad} outside the subdifferential.**"), "",
             "| output | point (e.g.) | subdifferential (SymPy) | element the kernel returns "
             "| valid | dtypes |", "|---|---|---|---|---|---|"]
    for (which, sub, picked, ok), g in list(groups.items())[:16]:
        lines.append(f"| {which} | {_cell('; '.join(g['points']))} | {_cell(sub)} | "
                     f"{_cell(picked)} | {'yes' if ok else '**NO**'} | "
                     f"{', '.join(sorted(g['dtypes']))} |")
    return lines + [""]


def _verdict(it):
    """The verdict, with the seed that replays it when the item failed."""
    return it["verdict"] + (f" [seed {it['seed']}]" if "seed" in it else "")


def _kernel_md(it):
    lines = [f"### `{it['name']}` — {_verdict(it)}", ""]
    lines += ["| | |", "|---|---|"]
    rows = [("kind", it.get("kind", "")), ("definition", f"${it.get('definition', '')}$")]
    if it.get("derived"):
        rows.append(("derived derivative", f"${it['derived']}$"))
    if it.get("closed"):
        rows.append(("closed form in the kernel", f"${it['closed']}$"))
    if it.get("convention"):
        rows.append(("convention at kinks", it["convention"].replace("$", "$")))
    if it.get("params"):
        rows.append(("parameters in the evidence", ", ".join(
            f"{k} = {v}" for k, v in it["params"].items())))
    pr = it.get("proof")
    if pr:
        rows.append(("proof", f"**{pr['status']}** ({len(pr['steps'])} steps)"))
    if it.get("evidence"):
        rows += _evidence_rows(it["evidence"])
        ff = it["evidence"].get("first_failure")
        if ff:
            rows.append(("first failing point", f"`{ff}`"))
        sf = it["evidence"].get("smallest_failure")
        if sf and sf != ff:
            rows.append(("smallest failing input found", f"`{sf}`"))
    elif "available" in it:
        rows.append(("evidence", "none: the compiled kernel is not available in nnlib "
                                 "(a failure)"))
    for k, v in it.get("extra_rows", []):
        rows.append((k, v))
    rows.append(("verdict", f"**{_verdict(it)}**"))
    for k, v in rows:
        lines.append(f"| {k} | {_cell(v)} |")
    lines.append("")
    lines += _kinks_md((it.get("evidence") or {}).get("kinks") or [])
    if pr and pr["steps"]:
        lines.append("Proof steps:")
        lines.append("")
        for s in pr["steps"]:
            lines.append(f"- [{s['status']}] ${s['claim']}$ — {s['method']}")
        lines.append("")
    for n in it.get("notes", []) + (it.get("evidence") or {}).get("notes", [])[:12]:
        lines.append(f"> {n}")
        lines.append("")
    return lines + _plots_md(it)


def _paths_md(it):
    """The branch paths a kernel's evidence covered: per path and output, today's largest
    error beside the committed baseline (ULPs, see verify/paths.py), per dtype."""
    rows = {}
    for r in it["paths"]:
        key = (r["path"], r["threshold"], r["output"])
        rows.setdefault(key, {})[r["dtype"]] = r
    dts = sorted({r["dtype"] for r in it["paths"]}, reverse=True)
    lines = [f"Paths covered ({len({k[0] for k in rows})}; thresholds: "
             f"{', '.join(it['thresholds_covered'])}; seeds {it['seeds']}):", "",
             "| path | threshold | output | " + " | ".join(
                 f"{d}: today / baseline (ulp)" for d in dts) + " | threads |",
             "|---|---|---|" + "---|" * len(dts) + "---|"]
    for (path, thr, out), per in rows.items():
        cells = []
        for d in dts:
            r = per.get(d)
            cells.append("–" if r is None else f"{_fmt(r['max_ulps'])} / {_fmt(r['baseline'])}"
                         + ("" if r["passed"] else " **FAIL**"))
        thr_text = ", ".join(str(t) for t in sorted(
            {t for r in per.values() for t in r["threads"]}, key=str))
        lines.append(f"| {_cell(path)} | {thr} | {out} | " + " | ".join(cells)
                     + f" | {thr_text} |")
    models = it.get("error_models") or {}
    if models:
        lines += ["", "Error measure (ULPs of |exact| + T1 + rho Td; T = 0: relative):", ""]
        lines += [f"- `{k}`: {m} — {why}" for k, (m, why) in models.items()]
    return lines + [""]


def _generic_md(it):
    lines = [f"### {it['name']} — {_verdict(it)}", ""]
    if it.get("paths"):
        lines += _paths_md(it)
        for f in it.get("failures", []):
            lines.append(f"- **{_cell(f)}**")
        if it.get("smallest_failure"):
            lines += ["", f"Smallest failing input found: `{it['smallest_failure']}`"]
        lines.append("")
    if it.get("statement"):
        lines += [it["statement"], ""]
    if it.get("rows"):
        lines += ["| | |", "|---|---|"]
        for k, v in it["rows"]:
            lines.append(f"| {k} | {_cell(v)} |")
        lines.append("")
    for s in it.get("steps", []):
        lines.append(f"- [{s['status']}] {s['claim']} — {s.get('method', '')}")
    if it.get("steps"):
        lines.append("")
    if it.get("error"):
        lines += ["```", it.get("traceback", it["error"]), "```", ""]
    return lines + _plots_md(it)


def _plots_md(it):
    lines = []
    for cap, rel in it.get("plots", []):
        lines += [f"![{it['name']}]({rel})", "", f"*{cap}.*", ""]
    return lines


def _smallest_failure(it):
    """The smallest failing input an item's checks found (verify.paths and
    verify.api.CheckResult record it), or None."""
    if it.get("smallest_failure"):
        return it["smallest_failure"]
    return (it.get("evidence") or {}).get("smallest_failure")


def summary_lines(data):
    lines = []
    for it in data["items"]:
        mark = "ok  " if it["passed"] else "FAIL"
        extra = ""
        ev = it.get("evidence")
        if ev:
            parts = []
            for which, per in ev["stats"].items():
                parts.append(which + " " + "/".join(
                    f"{_fmt(s['max_ulps'])}" for s in per.values()))
            extra = " max ulp (" + "/".join(next(iter(ev["stats"].values())).keys()) + "): " \
                + ", ".join(parts)
        lines.append(f"{mark} {it['section']:<10} {it['name']:<36} {_verdict(it)}{extra}")
        small = _smallest_failure(it) if not it["passed"] else None
        if small:
            lines.append(f"     smallest failing input found: {small[:300]}")
    for s in data.get("skipped", []):
        if s.get("item") is None and not data.get("strict"):
            lines.append(f"skip {'':<10} {s['part']:<36} skipped (needs {s['needs']})")
    lines.append(f"{data['n_items'] - data['n_failed']}/{data['n_items']} passed in "
                 f"{data['seconds']:.1f} s" + (" (quick)" if data["quick"] else "")
                 + f", seed {data.get('seed', 0)}"
                 + (f", {len(data['skipped'])} skipped" if data.get("skipped") else "")
                 + (" (--strict)" if data.get("strict") else ""))
    return lines


def _atomic_write(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader (or a
    crash) never sees a half-written report."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _public(obj):
    """The JSON view: keys starting with "_" hold the checks' raw data for the plots."""
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [_public(v) for v in obj]
    return obj


def draw_plots(data, out):
    """Draw the plots into ``out``/plots (sets data["plots"], data["plot_errors"] and each
    item's "plots"); without matplotlib, says so in data["plots"] instead."""
    os.makedirs(out, exist_ok=True)
    data["plots_dir"] = os.path.abspath(out)
    try:
        from verify.plots import make_plots
    except ImportError as exc:
        data["plots"] = (f"no plots: matplotlib is not installed ({exc}); install the "
                         f"report extra: pip install 'nnlib[report]'")
        data["plot_errors"] = []
    else:
        data["plot_errors"] = make_plots(data, out)
        data["plots"] = "written to plots/"


def _skipped_md(data):
    if not data.get("skipped"):
        return []
    how = "each a failure under --strict" if data.get("strict") else \
        "not failures; --strict makes them failures"
    return [f"**Skipped** ({how}): " + "; ".join(
        f"{s['part']} (needs {s['needs']})" for s in data["skipped"]) + ".", ""]


def write_report(data, out):
    """Write report.md, report.json and plots/ (if matplotlib is installed) into ``out``
    (the plots only if :func:`draw_plots` has not drawn them already, into ``out``)."""
    os.makedirs(out, exist_ok=True)
    if data.get("plots_dir") != os.path.abspath(out):
        draw_plots(data, out)
    _atomic_write(os.path.join(out, "report.json"),
                  json.dumps(_public(data), indent=1, default=str))
    md = ["# nnlib verification report", "",
          f"{data['n_items'] - data['n_failed']} of {data['n_items']} checks passed "
          f"({'quick mode, ' if data['quick'] else ''}dtypes: {', '.join(data['dtypes'])}; "
          f"seed {data.get('seed', 0)}{'; --strict' if data.get('strict') else ''}; "
          f"{data['seconds']:.1f} s).", ""] + _skipped_md(data) + [
          "Each kernel's mathematics is stated from first principles in SymPy; the closed form "
          "the compiled kernel implements is **proved** equal to the derivative SymPy derives "
          "(piece by piece where there are kinks, with the kink convention checked to be a "
          "subgradient); the compiled kernel is then measured against the exact value "
          "(mpmath, adaptive precision) at random and edge points, in ULPs of the exact "
          "value. A tolerance `≤ k ulp or ≤ m·eps·scale absolute` means a point passes if "
          "either bound holds; the table states why an absolute bound is needed. Where an absolute "
          "bound applies, the largest ULP error usually comes from a tiny exact value "
          "(say 1e-300) computed as 0 or with a few correct digits: harmless for training, "
          "and reported rather than hidden. At every non-differentiable point the evidence "
          "meets (kinks, ties, support changes), the compiled (sub)gradient is checked to "
          "lie in the subdifferential SymPy derives there (the convex hull of the one-sided "
          "or limiting gradients), and the element it picks is listed.", ""]
    if data["plots"].startswith("no plots"):
        md += [f"> **Plots: none.** {data['plots']}.", ""]
    else:
        md += ["Plots (in `plots/`) are drawn from the numbers each check computed, next "
               "to the check they illustrate.", ""]
    for e in data["plot_errors"]:
        md += [f"> **plot failed**: {e}", ""]
    for sec, title in _SECTION_TITLES:
        its = [it for it in data["items"] if it["section"] == sec]
        if not its:
            continue
        md += [f"## {title}", ""]
        if sec == "kernels":
            md += _plots_md({"name": "ULP summary", "plots": data.get("summary_plots", [])})
        for it in its:
            md += _kernel_md(it) if (sec == "kernels" and "proof" in it) else _generic_md(it)
    md += ["## Summary", "", "```"] + summary_lines(data) + ["```", ""]
    _atomic_write(os.path.join(out, "report.md"), "\n".join(md))
    return os.path.join(out, "report.md")
