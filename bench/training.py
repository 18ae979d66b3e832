"""Shared by the training workloads: time one epoch of every peer on the same spec, and
check afterwards that every peer actually trained (its loss on the data, computed by one
NumPy function for all)."""
from bench import peers
from bench.data import mean_cross_entropy
from bench.results import measure_peers, median
from bench.timing import summarize

__all__ = ["epoch_row", "speedup_target", "not_measured", "compile_note"]


def epoch_row(ctx, case, spec, X, y, init, params=None, repeats=None, variants=None):
    """One table row: ``case`` label, the spec's parameters, and a cell per peer with the
    seconds per epoch and ``loss_after`` (mean cross-entropy after all timed epochs).

    ``variants`` maps extra column names to ``(peer, spec)``: that peer built on another
    spec (e.g. nnlib on one thread beside nnlib on two), timed in the same interleaved
    rounds as the peers, so a ratio between two columns cancels drifting load."""
    builders, epochs = peers.train_builders(spec, X, y, init, ctx.peers)
    for column, (peer, vspec) in (variants or {}).items():
        if peer in ctx.peers:
            builders[column] = peers.epoch_builder(epochs, column, peer, vspec, X, y, init)

    def after(name):
        return {"loss_after": mean_cross_entropy(epochs[name].params(), X, y,
                                                 spec.activation)}

    # min_sample=0: one epoch per sample for everyone, so all peers train the same number
    # of epochs and their losses afterwards are comparable.
    cells = measure_peers(ctx if repeats is None else ctx.with_repeats(repeats), builders,
                          min_sample=0.0, warm_time=0.0, after=after)
    for name, epoch in epochs.items():
        if epoch.compile_seconds is not None and name in cells:
            cells[name]["compile_seconds"] = epoch.compile_seconds     # not in the timings
    ctx.log(f"  {case}: " + ", ".join(
        f"{k} {median(c) * 1e3:.2f} ms" if median(c) is not None else f"{k} {c['status']}"
        for k, c in cells.items()))
    p = {"batch_size": spec.batch_size, "optimizer": spec.optimizer, "sizes": spec.sizes,
         "dtype": spec.dtype.__name__, "rows": len(X), **spec.hyper}
    p.update(params or {})
    return {"case": case, "params": p, "cells": cells}


def speedup_target(text, row, peer, factor):
    """Target "nnlib >= factor x faster than peer" on ``row``: (met, detail)."""
    from bench.results import target
    nn, other = median(row["cells"].get("nnlib")), median(row["cells"].get(peer))
    label = peers.PEER_LABELS[peer]
    if nn is None or other is None:
        return target(text, None, not_measured(row, ("nnlib", peer)))
    s = other / nn
    return target(text, s >= factor,
                  f"{row['case']}: nnlib {nn * 1e3:.2f} ms, {label} {other * 1e3:.2f} ms "
                  f"-> nnlib is {_times(s)} faster (needs {factor:g}x)"
                  + _paired(row["cells"]["nnlib"], row["cells"][peer]))


def _times(s):
    return f"{s:.{2 if s < 10 else 1}f}x"


def _paired(nn, other):
    """The median of the per-round ratios, when both peers took one call per sample.

    The samples of one round run back to back (``bench.timing.interleaved``), so their
    ratio cancels load that drifts between rounds; on a busy machine it is steadier than
    the ratio of the two medians, and a target met by the latter alone shows as noise."""
    if nn["number"] != 1 or other["number"] != 1 or len(nn["samples"]) < 3:
        return ""
    ratios = [o / n for n, o in zip(nn["samples"], other["samples"])]
    return f"; median of per-round ratios {_times(summarize(ratios)['median'])}"


def not_measured(row, names, field=None):
    """Why a target on ``row`` has no number: "not measured: <peer> <status>, ..." for each
    of ``names`` whose cell has no median (or, with ``field``, lacks that field)."""
    why = []
    for k in names:
        cell = row["cells"].get(k, {"status": "not run"})
        if median(cell) is None:
            why.append(f"{peers.PEER_LABELS[k]} {cell['status']}")
        elif field is not None and field not in cell:
            why.append(f"{peers.PEER_LABELS[k]} {cell.get('after_error', 'no ' + field)}")
    return "not measured: " + ", ".join(why)


def compile_note(rows):
    """A sentence giving the ahead-of-time compilation seconds of the peers that compile
    (JAX), which the timings exclude; "" when none ran."""
    parts = [f"{row['case']}: {cell['compile_seconds']:.1f} s"
             for row in rows for name, cell in row["cells"].items()
             if "compile_seconds" in cell]
    return (" JAX's compilation, ahead of time and not in the timings: " + "; ".join(parts)
            + ".") if parts else ""
