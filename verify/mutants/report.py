"""The mutation run's table (Markdown) and its JSON record."""
import json
import os

from verify.mutants.harness import kill_rate

__all__ = ["markdown", "write", "summary"]


def summary(results):
    """'killed K of N (P %)' plus the faults that did not count, by status."""
    killed, counted = kill_rate(results)
    pct = f" ({100.0 * killed / counted:.0f} %)" if counted else ""
    text = f"killed {killed} of {counted}{pct}"
    others = {}
    for r in results:
        if r["status"] not in ("killed", "SURVIVED"):
            others.setdefault(r["status"], []).append(r["id"])
    for status, ids in sorted(others.items()):
        # faults a cut-short run did not reach are counted, the others named
        text += (f"; not run: {len(ids)}" if status == "not run"
                 else f"; {status}: {', '.join(ids)}")
    return text


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict(r):
    if r["status"] == "killed":
        by = r["killed_by"]
        more = f" (+{len(by) - 2} more)" if len(by) > 2 else ""
        return "killed by " + "; ".join(by[:2]) + more
    if r["status"] == "SURVIVED":
        return "**SURVIVED**"
    return f"{r['status']}: {r['detail']}"


def markdown(data):
    """The run as Markdown: what ran where, the kill rate, one row per fault, and the
    notes per fault (``data["notes"]``: {fault id: why verify misses it, or the results
    of earlier runs when the table merges several}) if any."""
    m = data.get("meta", {})
    base = m.get("baseline") or {}
    lines = ["# Mutation self-test of `python -m verify --quick`", ""]
    if m.get("started"):
        lines += [f"Command: `{m.get('command', '')}` — {m['started']} UTC, "
                  f"{m.get('seconds', 0):.0f} s, {m.get('jobs', 1)} job(s).", "",
                  f"Tree: `{m.get('tree', '?')}` at commit {m.get('commit', '?')}"
                  + (" (uncommitted changes)" if m.get("dirty") else "") + ".", ""]
    if base.get("verify_seconds") is not None:
        lines += [f"Unmutated tree: verify --quick passed in {base['verify_seconds']:.0f} s. "
                  f"Load average {m.get('loadavg_start', '?')} at start, "
                  f"{m.get('loadavg_end', '?')} at end.", ""]
    lines += [f"**Kill rate: {summary(data['results'])}.**", "",
              "| fault | file | kind | path | description | result | seconds |",
              "|---|---|---|---|---|---|---|"]
    for r in data["results"]:
        lines.append(f"| {r['id']} | {os.path.basename(r['file'])} | {r['kind']} | "
                     f"{_cell(r['path'])} | {_cell(r['description'])} | "
                     f"{_cell(_verdict(r))} | {r.get('seconds') or 0:.0f} |")
    notes = data.get("notes") or {}
    if notes:
        lines += ["", "## Notes per fault (a survivor's cause; earlier runs' results)", ""]
        lines += [f"* **{fid}**: {text}" for fid, text in notes.items()]
    return "\n".join(lines) + "\n"


def write(data, out_dir, stem="mutants"):
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``; returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    jp, mp = (os.path.join(out_dir, stem + ext) for ext in (".json", ".md"))
    with open(jp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    with open(mp, "w") as f:
        f.write(markdown(data))
    return jp, mp
