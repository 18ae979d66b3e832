"""``python -m verify.mutants``: the mutation self-test of verify (see verify/mutants).

    python -m verify.mutants [--only ID ...] [--held-out] [--list] [--jobs N]
                             [--tree PATH] [--keep] [--out DIR] [--build-jobs N] [--workdir DIR] [--resume]
                             [--report-only] [--ccache PATH|auto|off]

Applies each fault of the catalogue to a scratch copy of ``--tree`` (default: this
repository; it must be built), rebuilds what changed, runs ``python -m verify --quick``
there and prints one line per fault and the kill rate. Writes ``mutants.json`` and
``mutants.md`` to ``--out`` (default ``out/bench``, beside the benchmark results). Exits 0
when every counted fault is killed and no fault is invalid, equivalent, orphaned or an
error; 1 otherwise. Each result is also appended to ``DIR/mutants.partial.jsonl`` as it
completes: ``--resume`` (same ``--out`` and ``--workdir``) skips the faults found there, and
``--report-only`` writes the table from it, listing the others as "not run". Faults run
round-robin over the kernel families, so a run cut short has covered each of them
(``--only`` runs them in the order given, most suspicious first).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _git(tree, *args):
    try:
        return subprocess.run(["git", "-C", tree, *args], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _interleaved(faults):
    """The faults taken round-robin over their families, so that a run cut short (they
    take minutes each) has covered every family."""
    groups = {}
    for f in faults:
        groups.setdefault(f.family, []).append(f)
    out = []
    while any(groups.values()):
        for g in groups.values():
            if g:
                out.append(g.pop(0))
    return out


def _not_run(f):
    return {"id": f.id, "file": f.file, "kind": f.kind, "family": f.family, "path": f.path,
            "description": f.description, "killed_by": [], "status": "not run",
            "detail": "no result recorded", "seconds": 0.0}


def _report_only(args, faults, done):
    from verify.mutants.report import summary, write
    path = os.path.join(args.out, "mutants.json")
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            meta = json.load(f).get("meta", {})
    meta.setdefault("command", "python -m verify.mutants --report-only")
    meta["n_faults"] = len(faults)
    results = [done.get(f.id) or _not_run(f) for f in faults]
    jp, mp = write({"meta": meta, "results": results}, args.out)
    print(summary(results))
    print(f"wrote {jp} and {mp}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m verify.mutants",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these faults")
    ap.add_argument("--list", action="store_true", help="list the catalogue and exit")
    ap.add_argument("--held-out", action="store_true",
                    help="run the held-out set (faults written after verify was tuned to "
                         "the catalogue) instead of the catalogue")
    ap.add_argument("--jobs", type=int, default=1,
                    help="faults run in parallel, each in its own scratch copy (default 1)")
    ap.add_argument("--build-jobs", type=int, default=2,
                    help="parallel compiles within one rebuild (setup.py -j; default 2)")
    ap.add_argument("--tree", default=ROOT,
                    help="the source tree to mutate (read only; built; default this repo)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch copies and reports (printed) for debugging")
    ap.add_argument("--out", default=os.path.join("out", "bench"),
                    help="directory for mutants.json / mutants.md (default %(default)s)")
    ap.add_argument("--workdir", help="scratch directory (default: a new temporary one)")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: write the report from DIR/mutants.partial.jsonl, the "
                         "faults without a result listed as 'not run'")
    ap.add_argument("--ccache", default="auto", metavar="PATH|auto|off",
                    help="compile through ccache (same compiler and flags; 'auto': the "
                         "ccache on PATH if any)")
    ap.add_argument("--resume", action="store_true",
                    help="skip the faults already in DIR/mutants.partial.jsonl (each result "
                         "is appended there as it completes) and merge them in")
    args = ap.parse_args(argv)

    from verify.mutants.catalogue import FAULTS, HELD_OUT, by_id
    from verify.mutants.harness import Runner
    from verify.mutants.report import summary, write

    table = by_id()
    if args.list:
        for f in FAULTS + HELD_OUT:
            print(f"{f.id:38s} {f.family:12s} {f.kind:13s} {f.file[len('nnlib/_kernels/'):]:20s}"
                  f" {f.description}")
        return 0
    faults = HELD_OUT if args.held_out else FAULTS
    if args.held_out and not HELD_OUT:
        print("the held-out set is empty: its last one joined the catalogue (see "
              "verify/mutants/catalogue.py)", file=sys.stderr)
        return 2
    if args.only:
        unknown = [i for i in args.only if i not in table]
        if unknown:
            print(f"unknown fault id(s): {' '.join(unknown)} (see --list)", file=sys.stderr)
            return 2
        faults = [table[i] for i in args.only]

    os.makedirs(args.out, exist_ok=True)
    partial = os.path.join(args.out, "mutants.partial.jsonl")
    done = {}
    if (args.resume or args.report_only) and os.path.exists(partial):
        with open(partial) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    done[r["id"]] = r
    elif os.path.exists(partial):
        os.remove(partial)
    todo = [f for f in faults if f.id not in done]
    if not args.only:                      # --only runs in the order given
        todo = _interleaved(todo)

    def record(r):
        with open(partial, "a") as f:
            f.write(json.dumps(r) + "\n")

    if args.report_only:
        return _report_only(args, faults, done)

    tree = os.path.abspath(args.tree)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load0, t0 = _loadavg(), time.perf_counter()
    runner = Runner(tree, workdir=args.workdir, jobs=args.jobs, build_jobs=args.build_jobs,
                    keep=args.keep, log=lambda s: print(s, flush=True),
                    ccache=None if args.ccache == "off" else args.ccache)
    try:
        runner.prepare(todo)
        fresh = {r["id"]: r for r in runner.run(todo, on_result=record)}
        results = [done.get(f.id) or fresh[f.id] for f in faults]
    finally:
        if args.keep:
            print(f"scratch copies kept in {runner.workdir}")
        runner.cleanup()
    data = {"meta": {
        "command": "python -m verify.mutants " + " ".join(argv if argv is not None
                                                          else sys.argv[1:]),
        "tree": tree, "commit": _git(tree, "rev-parse", "--short", "HEAD"),
        "dirty": bool(_git(tree, "status", "--porcelain", "--untracked-files=no")),
        "started": started, "seconds": round(time.perf_counter() - t0, 1),
        "jobs": args.jobs, "loadavg_start": load0, "loadavg_end": _loadavg(),
        "baseline": {k: v for k, v in runner.baseline.items() if k != "digests"},
        "n_faults": len(faults)},
        "results": results}
    jp, mp = write(data, args.out)
    print(summary(results))
    print(f"wrote {jp} and {mp}")
    clean = all(r["status"] == "killed" for r in results)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
