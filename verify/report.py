"""Write the results of :func:`verify.run.run_all` as report.html (self-contained: plots
embedded, formulas as MathML; :mod:`verify.html`), report.md (LaTeX formulas, one table per
kernel), report.json (the same data) and the SVG figures (:mod:`verify.plots`).

Both reports open with the overview (:func:`overview`): what was proved, what was
measured, what failed -- each failure linked to its check's section.
"""
import json
import math
import os

__all__ = ["write_report", "summary_lines", "overview", "anchor", "SCALE_TEXT"]

# The report's sections in order: one per verify module, as verify mirrors nnlib module by
# module (the kernel checks of the "kernels" run section split by their kind).
_SECTION_TITLES = [
    ("kernels", "Kernels at a glance: every kernel's error, and coverage"),
    ("activations", "Activations (nnlib.functional; verify.activations): definition, proof, "
                    "evidence"),
    ("output_maps", "Output maps: softmax, log_softmax, sparsemax (verify.output_maps)"),
    ("losses", "Losses and their gradients (nnlib.functional; verify.losses)"),
    ("dense", "The dense layer (nnlib.Dense; verify.dense)"),
    ("dropout", "Dropout (nnlib.functional.dropout, nnlib.layers.Dropout; verify.dropout)"),
    ("optimizers", "Optimizers (nnlib.optim; verify.optim): one update against the symbolic "
                   "rule"),
    ("backprop", "Backpropagation of small networks (nnlib.Sequential; verify.backprop)"),
    ("train", "The training epoch (verify.train): its step proved, the compiled loop "
              "against an exact replay"),
    ("convexity", "Convexity (verify.convexity)"),
    ("notes", "The notes' worked examples (verify.notes_examples)"),
    ("approximation", "The notes' universal approximation theorem, shown "
                      "(verify.approximation)"),
    ("skipped", "Skipped parts (failures under --strict)"),
]
KERNEL_SECTIONS = ("kernels", "activations", "output_maps", "losses", "dense", "dropout")


def group_of(it):
    """The report section an item is shown in: a kernel check under the verify module
    that made it (``item["module"]``, set by the run), anything else under its section."""
    if it["section"] == "kernels":
        mod = str(it.get("module") or "").rsplit(".", 1)[-1]
        return mod if mod in KERNEL_SECTIONS else "kernels"
    return it["section"]


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


# What "s" is in an absolute bound |error| <= m·eps·s, per output of a check.
SCALE_TEXT = {"forward": "s = 1", "vjp": "s = |grad_out| (for a map, the row's largest)",
              "loss": "s = 1 + max |z| of the batch", "grad": "s = 1/n (the batch mean)"}


def _tol_text(t, which=None):
    if not t:
        return "–"
    s = f"≤ {_fmt(t['ulps'])} ulp"
    if t.get("abs_eps") is not None:
        s += (f" or |error| ≤ {_fmt(t['abs_eps'])}·eps·s, "
              + SCALE_TEXT.get(which, "s = the check's scale"))
    return s


# float32 / float64 machine epsilons: 2**-23 / 2**-52
_F64_ULPS_PER_F32_ULP = 2.0 ** 29


def _evidence_rows(ev, label=""):
    """One row per output and dtype: the largest error in ULPs, the worst point as a
    fraction of its own tolerance (<= 1 passes), how many points needed the absolute
    bound, and the tolerance with its scale s spelled out."""
    rows = []
    if not ev:
        return rows
    for which, per in ev["stats"].items():
        for dt, s in per.items():
            u = s["max_ulps"]
            text = f"{_fmt(u)} ulp"
            if dt == "float32" and which == "loss" and 0 < u < 1e-3:
                text += (f" (= {_fmt(u * _F64_ULPS_PER_F32_ULP)} float64 ulp: the loss of a "
                         "float32 batch is accumulated and returned in double precision)")
            if s.get("of_tolerance") is not None:
                text += f"; worst point at {_fmt(s['of_tolerance'])} of its tolerance"
            text += f"; {s['n_points']} points"
            if s.get("n_by_abs"):
                text += f", {s['n_by_abs']} passed by the absolute bound"
            text += f", {s['n_failed']} failed; tolerance {_tol_text(s['tolerance'], which)}"
            rows.append((f"max error, {which}, {dt}{label}", text))
    return rows


def _sub_checks(it):
    """The sub-checks a kernel folds into its verdict (the loss sweep along a line, the
    output maps' 3-class slice), as (label, CheckResult): the report shows their numbers
    beside the plots drawn from them."""
    from verify.api import CheckResult
    return [(k.strip("_"), v) for k, v in it.items()
            if k.startswith("_") and k != "_result" and isinstance(v, CheckResult)]


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


def kernel_rows(it):
    """A kernel's table rows from its kind to its evidence (both report.md and
    report.html show them; each adds its own sub-checks, extra rows and verdict)."""
    rows = [("kind", it.get("kind", ""))]
    if it.get("definition"):
        rows.append(("definition", f"${it['definition']}$"))
    if it.get("derived"):
        rows.append(("derived derivative", f"${it['derived']}$"))
    if it.get("closed"):
        rows.append(("closed form in the kernel", f"${it['closed']}$"))
    if it.get("convention"):
        rows.append(("convention at kinks", it["convention"]))
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
    elif it.get("available") is False:
        rows.append(("evidence", "none: the compiled kernel is not available in nnlib "
                                 "(a failure)"))
    return rows


def _kernel_md(it):
    lines = [f'<a id="{anchor(it)}"></a>', "", f"### `{it['name']}` — {_verdict(it)}", ""]
    lines += ["| | |", "|---|---|"]
    rows = kernel_rows(it)
    pr = it.get("proof")
    for label, sub in _sub_checks(it):
        rows += _evidence_rows(sub.as_dict(), f" ({label} check, plotted below)")
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
                         + (" (cap only)" if r.get("note") else "")
                         + ("" if r["passed"] else " **FAIL**"))
        thr_text = ", ".join(str(t) for t in sorted(
            {t for r in per.values() for t in r["threads"]}, key=str))
        lines.append(f"| {_cell(path)} | {thr} | {out} | " + " | ".join(cells)
                     + f" | {thr_text} |")
    for note in sorted({r["note"] for r in it["paths"] if r.get("note")}):
        lines += ["", f"Cap only: {note}."]
    models = it.get("error_models") or {}
    if models:
        lines += ["", "Error measure (ULPs of |exact| + T1 + rho Td; T = 0: relative):", ""]
        lines += [f"- `{k}`: {m} — {why}" for k, (m, why) in models.items()]
    return lines + [""]


def _generic_md(it):
    lines = [f'<a id="{anchor(it)}"></a>', "", f"### {it['name']} — {_verdict(it)}", ""]
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


def anchor(it):
    """The id of a check's section in report.md and report.html ("check-kernels-tanh")."""
    import re
    slug = re.sub(r"[^a-z0-9]+", "-", f"{it['section']} {it['name']}".lower()).strip("-")
    return "check-" + slug[:80]


def overview(data):
    """What the run proved, measured and failed, for the top of both reports."""
    status = {}
    for it in data["items"]:
        for st in list((it.get("proof") or {}).get("steps", [])) + list(it.get("steps", [])):
            status[st.get("status")] = status.get(st.get("status"), 0) + 1
    proved = status.pop("proved", 0)
    others = ", ".join(f"{n} {k}" for k, n in sorted(status.items(), key=lambda kv: -kv[1]))
    n_points = n_abs = 0
    for it in data["items"]:
        for per in ((it.get("evidence") or {}).get("stats") or {}).values():
            for st in per.values():
                n_points += st.get("n_points", 0)
                n_abs += st.get("n_by_abs", 0)
    sections = []
    known = [sec for sec, _ in _SECTION_TITLES]
    titles = dict(_SECTION_TITLES)
    for sec in known + [g for g in dict.fromkeys(map(group_of, data["items"]))
                        if g not in known]:   # a section this module has no title for
        its = [it for it in data["items"] if group_of(it) == sec]
        if its:
            sections.append((sec, titles.get(sec, sec), len(its),
                             sum(not it["passed"] for it in its)))
    return {"n_items": data["n_items"], "n_failed": data["n_failed"],
            "proof_steps": proved, "other_steps": others,
            "n_points": n_points, "n_by_abs": n_abs, "sections": sections,
            "failed": [(it["name"], anchor(it), _verdict(it))
                       for it in data["items"] if not it["passed"]]}


def headline(data):
    """'74 of 76 checks passed; failed: tanh, dense (quick mode, ...)'."""
    failed = [it["name"] for it in data["items"] if not it["passed"]]
    return (f"{data['n_items'] - data['n_failed']} of {data['n_items']} checks passed"
            + (f"; failed: {', '.join(failed)}" if failed else "")
            + f" ({'quick mode, ' if data['quick'] else ''}dtypes: "
            f"{', '.join(data['dtypes'])}; seed {data.get('seed', 0)}"
            f"{'; --strict' if data.get('strict') else ''}; {data['seconds']:.1f} s).")


def summary_lines(data):
    """The console's lines, one per check, and its last line (:mod:`verify.console`)."""
    from verify.console import check_line, last_line
    return [check_line(it, width=0) for it in data["items"]] + [last_line(data)]


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
    """Draw the figures into ``out``/plots (sets data["plots"], data["plot_errors"] and
    each item's "plots")."""
    from verify.plots import make_plots
    os.makedirs(out, exist_ok=True)
    data["plots_dir"] = os.path.abspath(out)
    data["plot_errors"] = make_plots(data, out)
    data["plots"] = "written to plots/"


def _skipped_md(data):
    if not data.get("skipped"):
        return []
    how = "each a failure under --strict" if data.get("strict") else \
        "not failures; --strict makes them failures"
    return [f"**Skipped** ({how}): " + "; ".join(
        f"{s['part']} (needs {s['needs']})" for s in data["skipped"]) + ".", ""]


def _overview_md(data):
    ov = overview(data)
    md = ["## Overview", "",
          f"- **Proved**: {ov['proof_steps']} proof steps (SymPy: each closed form equals the "
          "derivative derived from the definition)"
          + (f"; the other steps by kind: {ov['other_steps']}" if ov["other_steps"] else "")
          + ".",
          f"- **Measured**: {ov['n_points']} points of compiled kernels against exact "
          f"values (mpmath), {ov['n_by_abs']} of them within the absolute bound only; "
          "optimizer steps, training epochs and small networks against exact replays.",
          "- **Failed**: " + ("none." if not ov["failed"] else ", ".join(
              f"[{name}](#{aid})" for name, aid, _ in ov["failed"]) + "."), "",
          "| section | checks | failed |", "|---|---|---|"]
    md += [f"| [{title}](#section-{sec}) | {n} | {bad or ''} |"
           for sec, title, n, bad in ov["sections"]]
    return md + [""]


def write_report(data, out):
    """Write report.html, report.md, report.json and plots/ into ``out`` (the plots only if
    :func:`draw_plots` has not drawn them already, into ``out``); returns the path of
    report.html."""
    os.makedirs(out, exist_ok=True)
    if data.get("plots_dir") != os.path.abspath(out):
        draw_plots(data, out)
    for it in data["items"]:              # the sub-checks' numbers, for the JSON and html
        subs = _sub_checks(it)
        if subs:
            it["sub_evidence"] = {label: sub.as_dict()["stats"] for label, sub in subs}
    _atomic_write(os.path.join(out, "report.json"),
                  json.dumps(_public(data), indent=1, default=str))
    md = ["# nnlib verification report", "", headline(data), ""] + _skipped_md(data) \
        + _overview_md(data) + [
          "## How to read it", "",
          "Each kernel's mathematics is stated from first principles in SymPy; the closed form "
          "the compiled kernel implements is **proved** equal to the derivative SymPy derives "
          "(piece by piece where there are kinks, with the kink convention checked to be a "
          "subgradient); the compiled kernel is then measured against the exact value "
          "(mpmath, adaptive precision) at random and edge points, in ULPs of the exact "
          "value. A tolerance `≤ k ulp or |error| ≤ m·eps·s` means a point passes if "
          "either bound holds, where eps is the dtype's machine epsilon and s the scale "
          "of the output (" + "; ".join(f"{w}: {t}" for w, t in SCALE_TEXT.items()) + "). "
          "\"Worst point at x of its tolerance\" is the largest error divided by the bound "
          "that point had to meet (the looser of the two): at most 1 passes. Where an "
          "absolute bound applies, the largest ULP error usually comes from a tiny exact "
          "value (say 1e-300) computed as 0 or with a few correct digits: harmless for "
          "training, and reported rather than hidden. At every non-differentiable point the "
          "evidence meets (kinks, ties, support changes), the compiled (sub)gradient is "
          "checked to lie in the subdifferential SymPy derives there (the convex hull of the "
          "one-sided or limiting gradients), and the element it picks is listed. "
          "report.html shows the same with the formulas typeset.", ""]
    md += ["Plots (in `plots/`, SVG) are drawn from the numbers each check computed, next "
           "to the check they illustrate.", ""]
    for e in data["plot_errors"]:
        md += [f"> **plot failed**: {e}", ""]
    summary_shown = False
    for sec, title, _, _ in overview(data)["sections"]:
        its = [it for it in data["items"] if group_of(it) == sec]
        md += [f'<a id="section-{sec}"></a>', "", f"## {title}", ""]
        if sec in KERNEL_SECTIONS and not summary_shown:
            summary_shown = True
            md += _plots_md({"name": "ULP summary", "plots": data.get("summary_plots", [])})
        if sec == "approximation":
            from verify.approximation import THEOREM_TEXT
            md += [THEOREM_TEXT, ""]
        for it in its:
            md += _kernel_md(it) if (it["section"] == "kernels" and "proof" in it) \
                else _generic_md(it)
    md += ["## Every check", "", "```"] + summary_lines(data) + ["```", ""]
    _atomic_write(os.path.join(out, "report.md"), "\n".join(md))
    from verify.html import write_html
    return write_html(data, out)
