"""What ``python -m verify`` prints: one line per check as it finishes, and a last line that
names the failures.

A check's line carries the figure that decides it, relative to its own bound where the
check has one: "0.29 of tolerance" is the worst point's error divided by the bound that
point had to meet (<= 1 passes; a point passes by its ULP bound or, where the kernel has
one, by its absolute bound, and the looser of the two counts), followed by how many points
passed only by the absolute bound. Checks without a per-point bound show their verdict.
The functions read whatever the item carries, so a field a check adds later needs no
change here unless it should be on the one line.
"""
import math
import shutil

__all__ = ["figure", "check_line", "header_line", "last_line", "list_lines"]


def _g(v):
    if v is None:
        return "–"
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return str(v)
    return f"{v:.2g}" if isinstance(v, float) else str(v)


def _evidence_figure(stats):
    worst, where, n_abs, n = -1.0, "", 0, 0
    for which, per in stats.items():
        for dt, s in per.items():
            n += s.get("n_points", 0)
            n_abs += s.get("n_by_abs", 0)
            of = s.get("of_tolerance")
            if of is None and s.get("tolerance"):
                of = s["max_ulps"] / s["tolerance"]["ulps"] if s["tolerance"]["ulps"] else None
            if of is not None and of > worst:
                worst, where = of, f"{which} {dt}"
    if worst < 0:
        return None
    text = f"{_g(worst)} of tolerance ({where})"
    if n:
        text += f", {n_abs}/{n} points by the abs. bound" if n_abs else \
            f", {n}/{n} points within the ulp bound"
    return text


def figure(it):
    """The one figure that says how close a check came to failing, or None."""
    ev = it.get("evidence")
    if ev and ev.get("stats"):
        return _evidence_figure(ev["stats"])
    res = it.get("result")
    if isinstance(res, dict) and res.get("stats"):        # an optimizer's update rule
        parts = []
        for dt, s in res["stats"].items():
            tol = (s.get("tolerance") or {}).get("ulps")
            parts.append((s["max_ulps"] / tol if tol else math.nan, dt, s["max_ulps"], tol))
        of, dt, u, tol = max(parts, key=lambda p: -1 if math.isnan(p[0]) else p[0])
        return f"{_g(of)} of tolerance ({dt}: {_g(u)} of {_g(tol)} ulp)"
    # other checks (the training epoch, backprop, convexity) put their figure in the
    # verdict, against the bound they apply
    return None


def _fit(text, width):
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def check_line(it, width=None):
    """One line for a finished check: mark, section, name, time, the figure (or verdict);
    cut to ``width`` columns (None: the terminal's when stdout is one, else not cut, so a
    log keeps every word; 0: never cut)."""
    import sys
    if width is None and sys.stdout.isatty():
        width = shutil.get_terminal_size((100, 24)).columns
    mark = "ok  " if it["passed"] else "FAIL"
    fig = figure(it)
    if not it["passed"]:
        what = it["verdict"] + (f" [seed {it['seed']}]" if "seed" in it else "")
        ff = (it.get("evidence") or {}).get("first_failure")
        what += f": {ff}" if ff else ""
    elif fig and it["verdict"] in ("pass", "passed"):
        what = fig
    else:
        what = it["verdict"] + (f"; {fig}" if fig else "")
    secs = f"{it['seconds']:5.1f} s" if isinstance(it.get("seconds"), (int, float)) \
        else " " * 7
    name = _fit(it["name"], 34) if width else it["name"]
    line = f"{mark} {it['section']:<13} {name:<34} {secs}  {what}"
    return _fit(line, max(width - 1, 60)) if width else line


def header_line(n_checks, quick, dtypes, seed, out):
    return (f"verify: {n_checks} checks{' (--quick)' if quick else ''}, "
            f"{' and '.join(dtypes)}, seed {seed}; report to {out}/ "
            "(one line per check as it finishes)")


def last_line(data, report_path=None):
    """'76 of 76 checks passed in 29.2 s' or '74 of 76 passed ...; FAILED: tanh, dense'."""
    n, bad = data["n_items"], [it["name"] for it in data["items"] if not it["passed"]]
    text = (f"{n - len(bad)} of {n} checks passed in {data['seconds']:.1f} s"
            + (" (--quick)" if data["quick"] else "") + f", seed {data.get('seed', 0)}")
    skipped = [s for s in data.get("skipped", []) if s.get("item") is None]
    if skipped and not data.get("strict"):
        text += "; skipped: " + ", ".join(f"{s['part']} (needs {s['needs']})" for s in skipped)
    if bad:
        text += "; FAILED: " + ", ".join(bad)
    if report_path:
        text += f" — report: {report_path}"
    return text


def list_lines(cat, groups):
    """``--list``: every check name by section, then the group names ``--only`` takes."""
    from verify.run import SECTIONS
    module = {fn: mod for _, mod, fn in SECTIONS}
    out = []
    for section, fn, names in cat:
        where = f"{section}, {module.get(fn, '?')}.{fn}"
        out.append(f"{where}:" if names else f"{where}: names unavailable (its module does "
                   "not import; the run reports it)")
        out += [f"  {n}" for n in names]
    out.append("groups (--only GROUP runs all its checks):")
    for g, names in groups.items():
        if "+" not in g:
            out.append(f"  {g}: {len(names)} check{'s' if len(names) != 1 else ''}")
    combos = [g for g in groups if "+" in g]
    if combos:
        out.append(f"  ACTIVATION+LOSS (backprop of one network, e.g. {combos[0]}): "
                   f"{len(combos)} combinations")
    return out
