"""python -m bench (console script nnlib-bench): run the workloads, write results.json,
results.md, summary.md and plots.

    python -m bench [--quick] [--only NAME ...] [--out DIR] [--threads N]

The thread count is fixed before anything imports NumPy (see ``bench.machine``), so this
module imports only the standard library at the top and the workloads inside ``main``.
"""
import argparse
import copy
import datetime
import importlib
import os
import sys
import time
import traceback

from bench.machine import machine_info, set_thread_env, thread_info, versions

# name -> module, in the order they run (cheap and fundamental first).
WORKLOADS = {
    "import": "bench.import_time",
    "per_sample": "bench.per_sample",
    "minibatch": "bench.minibatch",
    "large": "bench.large",
    "kernels": "bench.kernels",
    "scaling": "bench.scaling",
    "verify": "bench.verify_time",
    "estimators": "bench.estimators",
    "dask": "bench.dask_scaling",
}
ALL_PEERS = ("nnlib", "torch", "jax", "sklearn", "numpy")


class Context:
    """What every workload needs to know about this run.

    quick : bool        --quick: fewer repeats and smaller sizes (whole run < 2 min)
    tiny : bool         NNLIB_BENCH_TINY=1: minimal sizes, for the test suite only
    threads : int       the one thread count every library uses
    dtype : type        np.float32 or np.float64 for the training and kernel workloads
    peers : tuple       training peers to run (default all four)
    repeats : int       interleaved samples per peer (workloads pick their own via
                        ``reps``; --repeats overrides them all)
    warmup : int        untimed calls per peer before sampling (at least)
    warm_time : float   seconds of untimed calls per peer before sampling (at least)
    min_sample : float  seconds one sample of a short call should last
    """

    def __init__(self, quick, tiny, threads, dtype, peers, repeats_override, out):
        self.quick, self.tiny, self.threads, self.dtype = quick, tiny, threads, dtype
        self.peers, self.out = tuple(peers), out
        self.repeats_override = repeats_override
        self.repeats = repeats_override or (2 if tiny else 3 if quick else 10)
        self.warmup = 1
        self.warm_time = 0.01 if tiny else 0.03 if quick else 0.1
        self.min_sample = 0.0005 if tiny else 0.003 if quick else 0.02
        self._t0 = time.perf_counter()

    def scale(self, quick, full):
        """The quick or the full value of a size or count."""
        return quick if (self.quick or self.tiny) else full

    def with_repeats(self, n):
        """A copy with ``n`` repeats (unless --repeats or tiny mode fixed them)."""
        c = copy.copy(self)
        if not self.repeats_override:
            c.repeats = 2 if self.tiny else n
        return c

    def log(self, msg):
        print(f"[{time.perf_counter() - self._t0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time nnlib against PyTorch, scikit-learn and a NumPy loop (same data, "
                    "weights and threads; medians), and write results.json, results.md, "
                    "summary.md and plots.",
        epilog="One thread per library is the default: on a shared machine the "
               "spin-waiting thread pools of PyTorch and OpenBLAS stall when a core is "
               "taken away, which inflates the peers' times far more than nnlib's. When "
               "the load average exceeds the cores, every target is marked unreliable.")
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and sizes; finishes in under two minutes")
    p.add_argument("--only", nargs="+", choices=list(WORKLOADS), metavar="NAME",
                   help="run only these workloads: " + ", ".join(WORKLOADS))
    p.add_argument("--out", default=os.path.join("out", "bench"),
                   help="output directory (default out/bench)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every library (default: %(default)s; the fair setting "
                        "on a shared machine)")
    p.add_argument("--repeats", type=int, default=None,
                   help="samples per peer, overriding each workload's default")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="dtype of the digits and kernel workloads (default float32)")
    p.add_argument("--peers", nargs="+", choices=ALL_PEERS, default=list(ALL_PEERS),
                   help="training peers to run (default all)")
    p.add_argument("--render", metavar="DIR",
                   help="measure nothing: rewrite DIR/results.md and the plots from "
                        "DIR/results.json")
    return p


def _render(out_dir):
    import json

    from bench.report import write_markdown, write_plots, write_summary
    with open(os.path.join(out_dir, "results.json")) as f:
        results = json.load(f)
    results["plots"] = write_plots(results, out_dir)
    write_markdown(results, os.path.join(out_dir, "results.md"))
    write_summary(results, os.path.join(out_dir, "summary.md"))
    print(f"wrote {os.path.join(out_dir, 'results.md')}")
    return 0


def _commit():
    """The source tree's git commit, when the bench runs from a checkout."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        r = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None


def _usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.render:
        return _render(args.render)
    threads = args.threads
    if threads < 1:
        raise SystemExit("--threads must be >= 1")
    set_thread_env(threads)          # before NumPy is imported anywhere
    import numpy as np

    from bench.report import write_json, write_markdown, write_plots, write_summary

    tiny = os.environ.get("NNLIB_BENCH_TINY", "") not in ("", "0")
    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    ctx = Context(args.quick, tiny, threads, dtype, args.peers, args.repeats, args.out)
    os.makedirs(args.out, exist_ok=True)
    names = args.only or list(WORKLOADS)
    argv_shown = sys.argv[1:] if argv is None else list(argv)
    results = {"meta": {
        "command": " ".join(["python -m bench"] + argv_shown),
        "mode": "tiny" if tiny else "quick" if args.quick else "full",
        "started_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M"),
        "machine": machine_info(), "versions": versions(), "dtype": args.dtype,
        "peers": list(args.peers), "workloads_run": names,
        "commit": _commit(), "loadavg_start": _loadavg(), "repeats_default": ctx.repeats, "warmup": ctx.warmup, "min_sample_s": ctx.min_sample,
    }, "workloads": {}}
    failed = []
    t0 = time.perf_counter()
    json_path = os.path.join(args.out, "results.json")
    for name in names:
        ctx.log(f"{name} ...")
        try:
            mod = importlib.import_module(WORKLOADS[name])
            results["workloads"][name] = mod.run(ctx)
        except Exception:  # noqa: BLE001 - recorded; the other workloads still run
            tb = traceback.format_exc()
            print(tb, file=sys.stderr)
            results["workloads"][name] = {"title": name, "error": tb}
            failed.append(name)
        results["meta"]["duration_s"] = time.perf_counter() - t0
        results["meta"]["threads"] = thread_info(threads)
        results["meta"]["loadavg_end"] = _loadavg()
        write_json(results, json_path)     # after every workload: a crash keeps the rest
    ctx.log("plots ...")
    results["plots"] = write_plots(results, args.out)
    ctx.log("done")
    write_json(results, json_path)
    md_path = os.path.join(args.out, "results.md")
    write_markdown(results, md_path)
    write_summary(results, os.path.join(args.out, "summary.md"))
    from bench.report import load_warning_text, target_status
    warning = load_warning_text(results["meta"])
    if warning:
        print("WARNING: " + warning, file=sys.stderr)
    for w in results["workloads"].values():
        for tg in w.get("targets", []):
            status = target_status(tg["met"], results["meta"])
            print(f"{status:>12}  {tg['target']}: {tg['detail']}")
    if results["plots"]:
        plots = f" and {len(results['plots'])} plots"
    else:
        from importlib.util import find_spec
        plots = (" (no plots: matplotlib not installed)"
                 if find_spec("matplotlib") is None
                 else " (the workloads run asked for no plots)")
    print(f"wrote {json_path}, {md_path}" + plots)
    if failed:
        print("workloads that failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
