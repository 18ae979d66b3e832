"""``python -m verify`` / ``nnlib-verify``: run every check, write the report, exit non-zero
if anything fails.

    python -m verify [--out DIR] [--quick] [--dtype float32 float64] [--only NAME ...]
                     [--seed N] [--strict] [--update-baseline]

A part that needs a missing optional dependency (the plots need matplotlib) is reported as
"skipped (needs X)"; ``--strict`` (for CI) makes every skip a failure.
"""
import argparse
import sys

__all__ = ["main"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="verify-report",
                    help="directory for report.md, report.json and plots (default: %(default)s)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer random points and smaller symbolic cases (for CI)")
    ap.add_argument("--dtype", nargs="+", choices=["float64", "float32"],
                    default=["float64", "float32"], help="dtypes to measure")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="run only the checks with these names (e.g. sigmoid softmax)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the random points (printed in the report and in every "
                         "failure; default: %(default)s)")
    ap.add_argument("--strict", action="store_true",
                    help="fail on every skipped part (e.g. plots without matplotlib)")
    ap.add_argument("--update-baseline", action="store_true",
                    help="record improved (and new) per-path ULP figures in "
                         "verify/baseline.json")
    args = ap.parse_args(argv)
    from verify.report import summary_lines, write_report
    from verify.run import run_all
    data = run_all(quick=args.quick, dtypes=args.dtype, only=args.only, seed=args.seed,
                   plots_to=args.out, strict=args.strict,
                   update_baseline=args.update_baseline)
    if args.only and not data["items"]:
        print(f"no check is named {' '.join(args.only)}", file=sys.stderr)
        return 2
    path = write_report(data, args.out)
    print("\n".join(summary_lines(data)))
    if args.update_baseline:
        changed = [k for it in data["items"] for k in it.get("baseline_changed", [])]
        print(f"baseline: {len(changed)} entries of verify/baseline.json recorded "
              "(new paths or improvements)")
    print(f"report: {path}")
    return 0 if data["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
