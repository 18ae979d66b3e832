"""The result records every workload produces, and the one way peers get measured.

A workload returns a dict (see ``workload_result``) holding tables; a table holds rows;
a row maps each peer to a *cell*: either ``{"status": "ok", "samples": [...], "median":
..., "iqr": ..., "faults_per_call": ..., ...}`` or ``{"status": "not installed" | "not
available yet" | "no equivalent" | "error", "detail": ...}``. ``bench.report`` turns
these into Markdown and plots; ``results.json`` stores them as they are.
"""
import sys
import traceback

from bench.timing import Unavailable, interleaved, summarize

__all__ = ["Unavailable", "ok_cell", "unavailable_cell", "measure_peers", "table",
           "workload_result", "target", "median", "faults_matter", "row_shows_faults"]

# A cell's page faults are worth showing when they are at least one per call and, at what
# a minor fault of a 4 KiB page measures here (the trap and zeroing the page: ~1.8 us;
# one of a 2 MiB page costs 10-45 us), at least this share of its time: two 8 MB outputs
# faulted back in every call (about 800 faults and 2 ms of a 5 ms call here) are shown, a
# training epoch's few faults in a second are not.
FAULTS_SHOWN_PER_CALL = 1.0
FAULT_SECONDS = 2e-6
FAULTS_SHOWN_SHARE = 0.01


def ok_cell(samples, number=1, **extra):
    """A measured cell: every sample (seconds per call) and their summary."""
    cell = {"status": "ok", "samples": list(samples), "number": number}
    cell.update(summarize(samples))
    cell.update(extra)
    return cell


def unavailable_cell(status, detail=""):
    return {"status": status, "detail": detail}


def _error_cell(name, exc):
    # A peer that fails is reported, not allowed to stop the other measurements; the
    # traceback goes to stderr so a real bug is not hidden.
    print(f"bench: peer {name!r} failed: {exc!r}", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    return unavailable_cell("error", f"{type(exc).__name__}: {exc}")


def median(cell):
    """The median of an ok cell, else None."""
    return cell.get("median") if cell and cell.get("status") == "ok" else None


def faults_matter(cell):
    """True when an ok cell's page faults per call are many enough to be shown: at least
    ``FAULTS_SHOWN_PER_CALL`` and, at ``FAULT_SECONDS`` each, ``FAULTS_SHOWN_SHARE`` of its
    median time."""
    if not cell or cell.get("status") != "ok" or cell.get("faults_per_call") is None:
        return False
    f, m = cell["faults_per_call"], cell.get("median")
    return (f >= FAULTS_SHOWN_PER_CALL
            and (not m or f * FAULT_SECONDS >= FAULTS_SHOWN_SHARE * m))


def row_shows_faults(row):
    """True when some peer of ``row`` takes page faults that matter (``faults_matter``):
    then every cell of the row shows its count, so a peer that faults stands beside one
    that does not."""
    return any(faults_matter(c) for c in row["cells"].values())


def measure_peers(ctx, builders, min_sample=None, after=None, warm_time=None, prime=0):
    """Build every peer, then time the ones that built, interleaved.

    Parameters
    ----------
    ctx : bench.__main__.Context
        Repeats, warm-up and default ``min_sample`` come from here.
    builders : dict of str -> callable
        ``builders[name]()`` returns the zero-argument callable to time, or raises
        ``Unavailable`` (reported with its status) or any other exception (reported as
        "error" with the traceback on stderr).
    min_sample : float, optional
        Overrides ``ctx.min_sample`` (0 for calls that take long anyway).
    warm_time : float, optional
        Overrides ``ctx.warm_time`` (0 for training: exactly ``ctx.warmup`` epochs).
    after : callable, optional
        ``after(name)`` -> dict of extra fields stored in that peer's cell after timing
        (e.g. the training loss each peer reached).
    prime : int
        Untimed calls of each peer right before each of its samples (``interleaved``).

    Returns
    -------
    dict of str -> cell, in the order of ``builders``.
    """
    timing = {"warmup": ctx.warmup,
              "warm_time": ctx.warm_time if warm_time is None else warm_time,
              "min_sample": ctx.min_sample if min_sample is None else min_sample,
              "prime": prime}
    cells, fns = {}, {}
    for name, build in builders.items():
        try:
            fns[name] = build()
        except Unavailable as e:
            cells[name] = unavailable_cell(e.status, e.detail)
        except Exception as e:  # noqa: BLE001 - reported, see _error_cell
            cells[name] = _error_cell(name, e)
    try:
        timed = interleaved(fns, ctx.repeats, **timing)
    except Exception:
        # One peer raised while being timed: time them one by one so the others survive.
        timed = {}
        for name, fn in fns.items():
            try:
                timed.update(interleaved({name: fn}, ctx.repeats, **timing))
            except Exception as e:  # noqa: BLE001
                cells[name] = _error_cell(name, e)
    for name, t in timed.items():
        extra = {}
        if after is not None:
            try:
                extra = after(name) or {}
            except Exception as e:  # noqa: BLE001
                extra = {"after_error": f"{type(e).__name__}: {e}"}
        if t.get("threads"):
            extra.update(t["threads"])
        if t.get("faults"):
            extra["faults_per_call"] = t["faults"]["minor"] + t["faults"]["major"]
            extra["major_faults_per_call"] = t["faults"]["major"]
        if t.get("others") and any(o is not None for o in t["others"]):
            extra["others"] = t["others"]
        cells[name] = ok_cell(t["samples"], t["number"], **extra)
    return {name: cells[name] for name in builders}


def table(name, columns, rows, *, unit="s", baseline="nnlib", value="time", notes=(),
          **extra):
    """A table: ``rows`` is a list of {"case": str, "params": dict, "cells": {peer: cell}}.

    ``value`` is "time" (lower is better; ratios are nnlib/peer), "rate" (cells hold
    seconds but the table shows ``params["per_call"] / seconds``, e.g. samples/s) or
    "bytes" (cells hold bytes, lower is better).
    ``extra`` may hold ``plot`` = {"kind": "bar" | "line", "file": ..., "x": param name,
    "group": param name, "logx": bool, "logy": bool} for ``bench.report``.
    """
    out = {"name": name, "columns": list(columns), "rows": rows, "unit": unit,
           "baseline": baseline, "value": value, "notes": list(notes)}
    out.update(extra)
    return out


def target(text, met, detail):
    """A target line: ``met`` is True, False or None (not measured)."""
    return {"target": text, "met": met, "detail": detail}


def workload_result(title, description, tables, targets=(), plots=(), notes=(), **extra):
    out = {"title": title, "description": description, "tables": list(tables),
           "targets": list(targets), "plots": list(plots), "notes": list(notes)}
    out.update(extra)
    return out
