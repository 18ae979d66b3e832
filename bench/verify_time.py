"""Workload 7: the run time of the verification report, ``python -m verify --quick`` and
(in a full bench run) ``python -m verify`` -- issue 18's targets are 10 s and 30 s, on a
first run as well as on a warm one.

Each sample is one fresh subprocess run in a temporary working directory (so its report
files land there, not in the checkout), timed from start to exit, with verify's disk
cache (verify.cache) empty and warm; the CPU seconds of its processes come from its
report.json. A failing run is reported with its exit code and the last line of its error
output, not timed.
"""
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.results import Unavailable, measure_peers, median, table, workload_result

NAME = "verify"
TITLE = "Verification report run time"
COMMAND = ["-m", "verify", "--quick"]
FULL_COMMAND = ["-m", "verify"]


def _root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_root()] + [p for p in
                                                    [env.get("PYTHONPATH")] if p])
    return env


def _available():
    if importlib.util.find_spec("verify") is None or \
            importlib.util.find_spec("verify.__main__") is None:
        raise Unavailable("not available yet", "no `verify` package with a __main__")


def run(ctx):
    # the full report only in a full bench run: cold and warm, 3 runs each, ~5 min
    commands = [COMMAND] + ctx.scale(quick=[], full=[FULL_COMMAND])
    cases = [_case(ctx, cmd) for cmd in commands]
    return workload_result(
        TITLE, "Wall seconds of `python -m verify --quick` (and, in a full bench run, of "
        "`python -m verify`) in a fresh subprocess, with an empty cache (verify.cache: a "
        "first run, as on a fresh clone or after an edit of verify) and with the cache a "
        "previous run filled; each cell also holds the median CPU seconds of the main "
        "process (cpu_main) and of the worker processes (cpu_workers), from report.json: "
        "on a shared machine the wall time measures the load, the CPU time the run.",
        [table("verify", PEERS, cases, baseline="nnlib, cache cold")])


PEERS = ["nnlib, cache cold", "nnlib, cache warm"]


def _case(ctx, command):
    timeout = ctx.scale(quick=90, full=900)
    cpu = {}                 # peer -> [(main, workers) CPU seconds of each timed run]
    keep = tempfile.TemporaryDirectory()        # the warm peer's cache, for this workload
    text = f"python {' '.join(command)}"

    def build(peer):
        _available()
        warm = peer == "nnlib, cache warm"

        def once(record=True, limit=timeout):
            with tempfile.TemporaryDirectory() as tmp:
                env = _env()
                # cold: an empty cache of its own (a first run after an edit of verify);
                # warm: the cache a previous run of the same source filled (verify.cache)
                env["NNLIB_VERIFY_CACHE"] = keep.name if warm else os.path.join(tmp, "cache")
                t = time.perf_counter()
                r = subprocess.run([sys.executable] + command, cwd=tmp, env=env,
                                   capture_output=True, text=True, timeout=limit)
                elapsed = time.perf_counter() - t
                if r.returncode:
                    last = (r.stderr.strip().splitlines() or ["(no stderr)"])[-1]
                    raise RuntimeError(f"`{text}` exited with {r.returncode} after "
                                       f"{elapsed:.1f} s: {last}")
                if record:
                    with open(os.path.join(tmp, "verify-report", "report.json")) as fh:
                        c = json.load(fh).get("cpu_seconds", {})
                    cpu.setdefault(peer, []).append((c.get("main"), c.get("workers")))
        if warm:
            once(record=False, limit=10 * timeout)   # untimed: fills the cache
        return once

    def after(peer):
        runs = [r for r in cpu.get(peer, []) if None not in r]
        if not runs:
            return {}
        return {"cpu_main": statistics.median([m for m, _ in runs]),
                "cpu_workers": statistics.median([w for _, w in runs])}

    # warm-up 0: the first run (cold caches, .pyc compilation) is a real user's first run
    # too, and this workload is too slow to repeat much.
    c = ctx.with_repeats(ctx.scale(quick=1, full=3))
    c.warmup = 0
    try:
        cells = measure_peers(c, {p: (lambda p=p: build(p)) for p in PEERS},
                              min_sample=0.0, after=after)
    finally:
        keep.cleanup()
    for p in PEERS:
        m = median(cells[p])
        ctx.log(f"  {text}, {p.split(', ')[1]}: " + (
            f"{m:.1f} s wall, CPU main {cells[p].get('cpu_main')} s, workers "
            f"{cells[p].get('cpu_workers')} s" if m is not None else cells[p]["status"]))
    return {"case": text, "params": {}, "cells": cells}
