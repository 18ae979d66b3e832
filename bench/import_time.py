"""Workload 1: the wall time of ``import nnlib`` against ``import numpy``, ``import torch``
and ``import sklearn.neural_network``.

Each sample is a fresh interpreter (``python -c``) that times only the import statement
with ``time.perf_counter`` (interpreter start-up is the same for all and left out) and
prints it. The modules are interleaved round-robin, like every other peer here. Target
(issue 2 and 5): ``import nnlib`` within 20 ms of ``import numpy`` -- nnlib imports NumPy,
so the difference is nnlib's own cost.
"""
import subprocess
import sys

from bench.results import (Unavailable, measure_peers, median, ok_cell, table, target,
                           workload_result)

NAME = "import"
TITLE = "Import time"

MODULES = {"nnlib": "nnlib", "numpy": "numpy", "torch": "torch",
           "sklearn": "sklearn.neural_network"}

_SNIPPET = ("import time, sys; t = time.perf_counter(); import {mod}; "
            "t = time.perf_counter() - t; sys.stdout.write(repr(t))")


def _probe(module):
    """Raise Unavailable when ``module`` cannot be imported (checked once, not timed)."""
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                       text=True)
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise Unavailable("not installed", last)


def _import_once(module, out):
    r = subprocess.run([sys.executable, "-c", _SNIPPET.format(mod=module)],
                       capture_output=True, text=True, check=True)
    out.append(float(r.stdout))


def run(ctx):
    repeats = max(3, ctx.scale(quick=3, full=20))
    # The subprocess's own import time is the sample, not the wall time of the call:
    # each builder returns a callable appending to its list, and we keep those lists.
    measured = {name: [] for name in MODULES}

    def builder(name):
        def build():
            _probe(MODULES[name])
            return lambda: _import_once(MODULES[name], measured[name])
        return build

    cells = measure_peers(ctx.with_repeats(repeats), {n: builder(n) for n in MODULES},
                          min_sample=0.0)
    for name, cell in cells.items():
        if cell["status"] == "ok":
            # The timed calls are the last `repeats` entries (the first was warm-up); the
            # wall time of the whole subprocess is kept alongside.
            cells[name] = ok_cell(measured[name][-repeats:], 1,
                                  subprocess_wall_samples=cell["samples"])
    # One row with the modules as columns.
    row = {"case": "import", "params": {}, "cells": cells}
    nn, npy = median(cells["nnlib"]), median(cells["numpy"])
    if nn is not None and npy is not None:
        diff = (nn - npy) * 1e3
        tgt = target("import nnlib within 20 ms of import numpy", diff <= 20.0,
                     f"import nnlib {nn * 1e3:.1f} ms vs import numpy {npy * 1e3:.1f} ms: "
                     f"{diff:+.1f} ms")
    else:
        tgt = target("import nnlib within 20 ms of import numpy", None,
                     "not measured: " + ", ".join(f"{k} {cells[k]['status']}"
                                                 for k in ("nnlib", "numpy")
                                                 if cells[k]["status"] != "ok"))
    return workload_result(
        TITLE,
        "Seconds spent in the import statement, each sample in a fresh `python -c` "
        f"(interpreter start-up excluded), {repeats} samples per module, interleaved. "
        "Columns are the modules imported: nnlib, numpy, torch, sklearn.neural_network.",
        [table("import", list(MODULES), [row], plot={"kind": "bar", "file": "import.png"},
               labels={"nnlib": "import nnlib", "numpy": "import numpy",
                       "torch": "import torch",
                       "sklearn": "import sklearn.neural_network"})],
        [tgt])
