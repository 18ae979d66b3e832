"""``python -m verify`` / ``nnlib-verify``: run every check, print one line per check as it
finishes, write the report (report.html, report.md, report.json, plots/) and exit non-zero
if anything fails."""
import argparse
import contextlib
import os
import sys

__all__ = ["main"]

_EPILOG = """\
examples:
  python -m verify --out out/verify          the full report (a few minutes)
  python -m verify --quick                   fewer points, smaller cases (for CI)
  python -m verify --list                    every check name and group
  python -m verify --only sigmoid softmax    just these checks
  python -m verify --only optimizers         a group: a section, module or optimizer class

A part that needs a missing optional dependency is reported as "skipped (needs X)";
--strict (for CI) makes every skip a failure.
"""


def _parser():
    ap = argparse.ArgumentParser(
        prog="python -m verify", epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Prove nnlib's formulas with SymPy, measure its compiled kernels "
                    "against exact values, and write the report.")
    ap.add_argument("--out", default="verify-report",
                    help="directory for report.html, report.md, report.json and plots "
                         "(default: %(default)s)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer random points and smaller symbolic cases (for CI)")
    ap.add_argument("--dtype", nargs="+", choices=["float64", "float32"],
                    default=["float64", "float32"], help="dtypes to measure (default: both)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="run only these checks or groups (see --list), nothing else")
    ap.add_argument("--list", action="store_true",
                    help="print every check name and group, run nothing")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the random points (printed in the report and in every "
                         "failure; default: %(default)s)")
    ap.add_argument("--strict", action="store_true",
                    help="fail on every skipped part (a check or part whose optional "
                         "dependency is missing)")
    ap.add_argument("--update-baseline", action="store_true",
                    help="record improved (and new) per-path ULP figures in "
                         "verify/baseline.json")
    return ap


@contextlib.contextmanager
def _sleeping_openmp_threads():
    """``OMP_WAIT_POLICY=passive`` in the environment for the ``with`` block (unless it is
    set already), so that the worker processes started in it, and this process if it
    has not loaded OpenMP yet, read it: an OpenMP thread of nnlib's kernels that waits
    for work then sleeps, instead of spinning on a core for a while after each parallel
    loop. verify calls many short threaded loops (the branch plan, the optimizers'
    thread splits), and on a two-core machine the spinning took CPU from the other
    process of the run. The loops compute the same either way (their schedules are
    static); the block removes the variable it set, unless the block set it anew. (A
    process that loads OpenMP inside the block keeps the policy its runtime read.)"""
    set_here = "OMP_WAIT_POLICY" not in os.environ
    if set_here:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        yield
    finally:
        if set_here and os.environ.get("OMP_WAIT_POLICY") == "passive":
            os.environ.pop("OMP_WAIT_POLICY", None)


def main(argv=None):
    args = _parser().parse_args(argv)
    from verify.workers import collecting_less
    with collecting_less(), _sleeping_openmp_threads():
        workers = None
        if not args.list and not args.only:
            # a whole run: its worker processes start now, importing what their checks
            # need while this process imports the rest (verify.workers)
            from verify.workers import n_workers, start_workers
            workers = start_workers(n_workers(args.quick))
        try:
            return _main(args, workers)
        finally:
            if workers is not None:
                workers.shutdown(cancel_futures=True)


def _main(args, workers):
    from verify.console import check_line, header_line, last_line, list_lines
    from verify.run import (UnknownCheck, aliases, catalogue, count_checks, resolve_only,
                            run_all)
    cat = catalogue()
    if args.list:
        print("\n".join(list_lines(cat, aliases(cat))))
        return 0
    try:
        picked = resolve_only(args.only, cat) if args.only else None
    except UnknownCheck as exc:
        print(f"python -m verify: {exc}", file=sys.stderr)
        return 2
    print(header_line(count_checks(cat, picked), args.quick, args.dtype, args.seed,
                      args.out), flush=True)
    from verify.report import write_report
    from verify.kernels import one_blas_thread
    from verify.workers import freeze_imports
    limit = one_blas_thread()
    from verify._units import deferred_units
    freeze_imports()                   # SymPy, NumPy, SciPy, nnlib and verify: imported
    try:
        with deferred_units():         # SymPy's simplify: no sympy.physics.units to import
            data = run_all(quick=args.quick, dtypes=args.dtype, only=args.only,
                           seed=args.seed, plots_to=args.out, strict=args.strict,
                           update_baseline=args.update_baseline,
                           on_item=lambda it: print(check_line(it), flush=True),
                           on_note=lambda text: print(f"     ... {text}", flush=True),
                           workers=workers)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    path = write_report(data, args.out)
    if args.update_baseline:
        changed = [k for it in data["items"] for k in it.get("baseline_changed", [])]
        print(f"baseline: {len(changed)} entries of verify/baseline.json recorded "
              "(new paths or improvements)")
    print(last_line(data, path))
    return 0 if data["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
