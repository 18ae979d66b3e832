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
        text += f"; {status}: {', '.join(ids)}"
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
    """The run as Markdown: what ran where, the kill rate, one row per fault."""
    m = data["meta"]
    lines = [f"# Mutation self-test of `python -m verify --quick`", "",
             f"Command: `{m['command']}` — {m['started']} UTC, {m['seconds']:.0f} s, "
             f"{m['jobs']} job(s).", "",
             f"Tree: `{m['tree']}` at commit {m['commit']}"
             + (" (uncommitted changes)" if m.get("dirty") else "") + ".", "",
             f"Unmutated tree: verify --quick passed in {m['baseline']['verify_seconds']:.0f} s. "
             f"Load average {m.get('loadavg_start', '?')} at start, "
             f"{m.get('loadavg_end', '?')} at end.", "",
             f"**Kill rate: {summary(data['results'])}.**", "",
             "| fault | file | kind | path | description | result | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in data["results"]:
        lines.append(f"| {r['id']} | {os.path.basename(r['file'])} | {r['kind']} | "
                     f"{_cell(r['path'])} | {_cell(r['description'])} | "
                     f"{_cell(_verdict(r))} | {r['seconds']:.0f} |")
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
