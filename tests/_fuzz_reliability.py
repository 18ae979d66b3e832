"""A time-budgeted, seeded fuzz runner for the reliability suites
(tests/test_fuzz_reliability_*.py): mutation during callbacks and from other threads,
concurrent use, interrupts at random points, hostile model files.

Each suite module defines ``CASES``, a list of functions ``case(rng) -> str``: one
random case drawn from ``rng`` (a seeded ``numpy.random.Generator``), which asserts what
must hold and returns a short outcome label ("refused ConcurrentUseError", "loaded the
old file", ...). Case ``seed`` is ``CASES[seed % len(CASES)]`` run with
``default_rng(seed)``, so consecutive seeds rotate through every case and any one is
reproduced by its seed alone.

The cases run in a child process (``python -m tests._fuzz_reliability MODULE SEED0
SECONDS``), seeds SEED0, SEED0+1, ... until SECONDS have passed: a crash (SIGSEGV, abort)
or a hang kills only the child, and the parent reports the seed it was running. A case
that runs longer than ``CASE_TIMEOUT`` seconds is a hang: faulthandler dumps every
thread's stack and ends the child. Memory: the child's peak resident size may grow by at
most ``MAX_RSS_GROWTH_MB`` over the run (a file that makes ``load`` allocate what it
declares would show here).

Environment:

* ``NNLIB_RELIABILITY_SECONDS``: total budget of the four suites (default 24 s, split
  evenly; .ci/run gives them minutes).
* ``NNLIB_RELIABILITY_SEED``: run only the case of this seed (reproduce a failure), or
  ``NNLIB_RELIABILITY_SEED=N+`` to start the budgeted run at seed N.

A failure message ends with the command that reproduces it.
"""
import faulthandler
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback

SUBJECTS = ("mutation", "concurrency", "interrupts", "files")
BUDGET_ENV, SEED_ENV = "NNLIB_RELIABILITY_SECONDS", "NNLIB_RELIABILITY_SEED"
DEFAULT_BUDGET = 24.0
CASE_TIMEOUT = 60.0          # seconds: longer is a hang (cases take well under 1 s)
MAX_RSS_GROWTH_MB = 256
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subject_seconds():
    """Seconds each suite runs: the budget split over the four subjects."""
    return float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET)) / len(SUBJECTS)


def _peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(module_name, seed0, seconds, one):
    """Run the module's cases from ``seed0`` for ``seconds`` (or only ``seed0``); print a
    JSON line before and after each case, the traceback on failure."""
    # a real SIGINT raises KeyboardInterrupt here even when the run was started in the
    # background by a non-interactive shell, which hands it SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    module = importlib.import_module(module_name)
    if os.environ.get("NNLIB_EXPECT_DEBUG_BUILD") == "1":       # .ci/run's debug step
        import nnlib
        assert os.path.realpath(nnlib.__file__).startswith(os.path.realpath(ROOT)), \
            f"the child imported {nnlib.__file__}, not the debug build under {ROOT}"
    cases = module.CASES
    setup = getattr(module, "child_setup", None)
    if setup is not None:
        setup()
    rss0 = _peak_rss_mb()
    end = time.monotonic() + seconds
    seed = seed0
    while True:
        case = cases[seed % len(cases)]
        print(json.dumps({"start": seed, "case": case.__name__}), flush=True)
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        import numpy as np
        tic = time.monotonic()
        try:
            outcome = case(np.random.default_rng(seed))
        except BaseException:                         # reported with the seed
            faulthandler.cancel_dump_traceback_later()
            print(json.dumps({"fail": seed, "case": case.__name__,
                              "traceback": traceback.format_exc()}), flush=True)
            return 1
        faulthandler.cancel_dump_traceback_later()
        growth = _peak_rss_mb() - rss0
        print(json.dumps({"done": seed, "case": case.__name__, "outcome": str(outcome),
                          "seconds": round(time.monotonic() - tic, 4),
                          "rss_growth_mb": round(growth, 1)}), flush=True)
        if growth > MAX_RSS_GROWTH_MB:
            print(json.dumps({"fail": seed, "case": case.__name__, "traceback":
                              f"peak resident memory grew by {growth:.0f} MB (limit "
                              f"{MAX_RSS_GROWTH_MB})"}), flush=True)
            return 1
        seed += 1
        if one or time.monotonic() >= end:
            return 0


def run_subject(module_name, request=None):
    """Run ``module_name``'s CASES in a child for this suite's share of the budget;
    fail (with the reproducing command) on a failed case, a crash or a hang. Prints one
    summary line per case kind. Returns {case: {outcome: count}}."""
    import pytest
    seconds = subject_seconds()
    spec = os.environ.get(SEED_ENV, "")
    one = bool(spec) and not spec.endswith("+")
    seed0 = int(spec.rstrip("+")) if spec else int.from_bytes(os.urandom(3), "little") * 1000
    cmd = [sys.executable, "-X", "faulthandler", "-m", "tests._fuzz_reliability",
           module_name, str(seed0), str(seconds)] + (["--one"] if one else [])
    env = dict(os.environ, PYTHONHASHSEED="0")
    tic = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=seconds + CASE_TIMEOUT + 60)
        out, err, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        code = "timeout"
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    counts, started = {}, None
    for ev in events:
        if "start" in ev:
            started = ev
        elif "done" in ev:
            counts.setdefault(ev["case"], {}).setdefault(ev["outcome"], 0)
            counts[ev["case"]][ev["outcome"]] += 1
    failed = next((ev for ev in events if "fail" in ev), None)
    if failed is not None or code != 0:
        seed = failed["fail"] if failed else (started["start"] if started else seed0)
        case = failed["case"] if failed else (started["case"] if started else "?")
        why = (failed["traceback"] if failed else
               f"the child {'hung' if code == 'timeout' else 'died'} (exit {code}) in this "
               f"case; stderr:\n{err[-6000:]}")
        pytest.fail(f"{module_name}: case {case} with seed {seed} failed:\n{why}\n"
                    f"reproduce: {SEED_ENV}={seed} python -m pytest "
                    f"{module_name.replace('.', '/')}.py", pytrace=False)
    n = sum(sum(c.values()) for c in counts.values())
    lines = [f"reliability fuzz {module_name.rsplit('_', 1)[-1]}: {n} cases in "
             f"{time.monotonic() - tic:.1f} s, seeds {seed0}..{seed0 + n - 1}, all held"]
    for case in sorted(counts):
        outcomes = ", ".join(f"{k} x{v}" for k, v in sorted(counts[case].items()))
        lines.append(f"  {case}: {outcomes}")
    _report(request, lines)
    return counts


def _report(request, lines):
    """Print past pytest's capture (as tests/_fuzz.py's report_counts)."""
    if request is None:
        print("\n".join(lines))
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capman is None:
        print("\n".join(lines))
        return
    with capman.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(_child(args[0], int(args[1]), float(args[2]), "--one" in args))
