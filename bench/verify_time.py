"""Workload 7: the run time of the verification report, ``python -m verify --quick``.

Each sample is one fresh subprocess run in a temporary working directory (so its report
files land there, not in the checkout), timed from start to exit. A failing run is
reported with its exit code and the last line of its error output, not timed.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

from bench.results import Unavailable, measure_peers, median, table, workload_result

NAME = "verify"
TITLE = "Verification report run time"
COMMAND = ["-m", "verify", "--quick"]


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
    timeout = ctx.scale(quick=90, full=900)

    def build():
        _available()

        def once():
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                r = subprocess.run([sys.executable] + COMMAND, cwd=tmp, env=_env(),
                                   capture_output=True, text=True, timeout=timeout)
                elapsed = time.perf_counter() - t
            if r.returncode:
                last = (r.stderr.strip().splitlines() or ["(no stderr)"])[-1]
                raise RuntimeError(f"`python {' '.join(COMMAND)}` exited with "
                                   f"{r.returncode} after {elapsed:.1f} s: {last}")
        return once

    # warm-up 0: the first run (cold caches, .pyc compilation) is a real user's first run
    # too, and this workload is too slow to repeat much.
    c = ctx.with_repeats(ctx.scale(quick=1, full=3))
    c.warmup = 0
    cells = measure_peers(c, {"nnlib": build}, min_sample=0.0)
    m = median(cells["nnlib"])
    ctx.log("  verify --quick: " + (f"{m:.1f} s" if m is not None
                                   else cells["nnlib"]["status"]))
    return workload_result(
        TITLE, f"Wall seconds of `python {' '.join(COMMAND)}` in a fresh subprocess "
        f"(timeout {timeout} s).",
        [table("verify", ["nnlib"], [{"case": "python -m verify --quick", "params": {},
                                      "cells": cells}])])
