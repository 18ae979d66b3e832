"""Shared by the training workloads: time one epoch of every peer on the same spec, and
check afterwards that every peer actually trained (its loss on the data, computed by one
NumPy function for all)."""
from bench import peers
from bench.data import mean_cross_entropy
from bench.results import measure_peers, median
from bench.timing import summarize

# Appended to a JAX target's text: it is judged on the flushing nnlib (peers.FLUSH_VARIANT)
FLUSH_NOTE = (", nnlib in its flush-denormal mode (XLA flushes subnormals to zero on the "
              "CPU)")

__all__ = ["FLUSH_NOTE", "epoch_row", "speedup_target", "not_measured", "compile_note",
           "epoch_limits", "limit_note", "needed_fraction_note"]


# Untimed epochs of a peer before each of its timed ones where epochs last a few ms
# (digits, batch 1-256): one is not enough there. A peer's epoch leaves the caches in a
# state that one short epoch of the next peer does not undo (after two PyTorch epochs,
# nnlib's batch-32 epoch took ~20 % longer after one priming epoch of its own, ~3 % after
# five), and a training loop, which runs its epochs back to back, never pays that.
SHORT_EPOCH_PRIME = 5


def epoch_row(ctx, case, spec, X, y, init, params=None, repeats=None, variants=None,
              prime=1):
    """One table row: ``case`` label, the spec's parameters, and a cell per peer with the
    seconds per epoch and ``loss_after`` (mean cross-entropy after all timed epochs).

    ``variants`` maps extra column names to ``(peer, spec)``: that peer built on another
    spec (e.g. nnlib on one thread beside nnlib on two), timed in the same interleaved
    rounds as the peers, so a ratio between two columns cancels drifting load; it runs
    when ``peer`` is one of ``ctx.peers`` (``peers.columns`` orders the table's columns).
    ``prime``: untimed epochs of each peer right before each of its timed ones (the same
    count for every peer, so all train the same number of epochs)."""
    builders, epochs = peers.train_builders(spec, X, y, init, ctx.peers)
    for column, (peer, vspec) in (variants or {}).items():
        if peer in ctx.peers:
            builders[column] = peers.epoch_builder(epochs, column, peer, vspec, X, y, init)

    def after(name):
        return {"loss_after": mean_cross_entropy(epochs[name].params(), X, y,
                                                 spec.activation)}

    # min_sample=0: one epoch per sample for everyone, so all peers train the same number
    # of epochs and their losses afterwards are comparable. prime >= 1: each timed epoch
    # follows untimed epochs of the same peer, as in a training loop; without them a
    # short epoch pays for the caches the previous peer left (measured: nnlib's 1.7 ms
    # batch-1 epoch took 0.3 ms longer after the NumPy loop than after nnlib; see
    # SHORT_EPOCH_PRIME for why one is not enough for epochs of a few ms).
    cells = measure_peers(ctx if repeats is None else ctx.with_repeats(repeats), builders,
                          min_sample=0.0, warm_time=0.0, after=after, prime=prime)
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


def speedup_target(text, row, peer, factor, nnlib="nnlib", limit=None):
    """Target "nnlib >= factor x faster than peer" on ``row``: (met, detail). ``nnlib``:
    the cell that stands for nnlib (``peers.FLUSH_VARIANT`` against a flushing peer).
    ``limit``: ``(sizes, n_samples, batch, dtype)`` of an MLP epoch, to say beside a
    missed target what share of this machine's FMA bound (``epoch_limits``) the factor
    would need -- above 100 %, more than the dense epoch can do at the multiply-add
    peak."""
    from bench.results import target
    nn, other = median(row["cells"].get(nnlib)), median(row["cells"].get(peer))
    label = peers.PEER_LABELS[peer]
    if nn is None or other is None:
        return target(text, None, not_measured(row, (nnlib, peer)))
    s = other / nn
    need = ""
    if limit is not None and s < factor:
        fma = epoch_limits(*limit)["fma"]
        need = (f"; {factor:g}x would take {other / factor * 1e3:.2f} ms, "
                f"{fma / (other / factor):.0%} of the FMA bound ({fma * 1e3:.2f} ms)")
    return target(text, s >= factor,
                  f"{row['case']}: {peers.PEER_LABELS[nnlib]} {nn * 1e3:.2f} ms, {label} "
                  f"{other * 1e3:.2f} ms -> nnlib is {_times(s)} faster (needs {factor:g}x)"
                  + _paired(row["cells"][nnlib], row["cells"][peer]) + need)


def epoch_limits(sizes, n_samples, batch, dtype):
    """Lower bounds on one epoch of the MLP ``sizes`` on this machine, in seconds.

    The FMA bound: the dense epoch's flops at OpenBLAS's best one-thread GEMM rate
    (``bench.machine.fma_peak``). Per sample, 2 flops per weight for the forward product
    and 2 for the weight gradient, plus 2 per weight of every layer but the first for the
    input gradient (no one asks for the gradient of the data); per step, 2 per weight for
    the update when the batch has several rows (at batch 1 the update is the weight
    gradient's rank-1 product itself). A step that skips zero inputs (nnlib's batch-1
    step skips the data's zeros and ReLU's) does less than this dense work and can run
    below it. The
    load/store bound: per step each weight is loaded once by the forward product, once by
    the backward one except the first layer's, loaded and stored once by the update, at 2
    vector loads and 1 vector store per cycle, the cycle rate taken as the peak over 2 FMA
    units x the vector width x 2 flops; a step covers ``batch`` samples, so this bound
    shrinks with the batch. Returns {"flops", "fma", "load_store", "peak"}."""
    import math

    import numpy as np

    from bench.machine import fma_peak
    dt = np.dtype(dtype)
    peak = fma_peak(dt.name)
    weights = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    steps = math.ceil(n_samples / batch)
    flops = (4.0 * sum(weights) + 2.0 * sum(weights[1:])) * n_samples
    if batch > 1:
        flops += 2.0 * sum(weights) * steps
    lanes = 64 // dt.itemsize                  # AVX-512; the bound is a lower one anyway
    cycles_per_s = peak["flops_per_s"] / (2 * lanes * 2)
    loads = sum(2 * w for w in weights) + sum(weights[1:])
    stores = sum(weights)
    ls = max(loads / lanes / 2, stores / lanes) * steps / cycles_per_s
    return {"flops": flops, "fma": flops / peak["flops_per_s"], "load_store": ls,
            "peak": peak, "lanes": lanes}


def limit_note(ctx, row, sizes, n_samples, batch, nnlib="nnlib"):
    """Log and return how far the ``nnlib`` cell of ``row`` is from ``epoch_limits``."""
    t = median(row["cells"].get(nnlib))
    if t is None or ctx.tiny:
        return ""
    lim = epoch_limits(sizes, n_samples, batch, ctx.dtype)
    fma, ls, peak = lim["fma"], lim["load_store"], lim["peak"]
    who = peers.PEER_LABELS[nnlib]
    ctx.log(f"  limits, batch {batch}: FMA bound {fma * 1e3:.2f} ms ({fma / t:.0%} of it "
            f"reached by {who}), load/store bound {ls * 1e3:.3f} ms ({ls / t:.0%})")
    return (f" Limits at batch {batch}: {lim['flops'] / 1e6:.0f} MFLOP per epoch at the "
            f"best measured one-thread {peak['dtype']} GEMM rate "
            f"({peak['flops_per_s'] / 1e9:.0f} GFLOP/s, {peak['n']}x{peak['n']} OpenBLAS "
            f"products) take {fma * 1e3:.2f} ms "
            f"(dense work: a step that skips zero inputs does less): "
            f"{who} runs at {fma / t:.0%} of the FMA bound; its weight loads and stores "
            f"(2 loads and 1 store of {lim['lanes']} values per cycle, once per step) "
            f"take at least {ls * 1e3:.3f} ms: {ls / t:.0%} of the load/store bound.")


def needed_fraction_note(ctx, row, sizes, n_samples, batch, peer, factor):
    """What ``factor`` x faster than ``peer`` would take: that time as a share of the
    FMA bound (above 100%: faster than the dense epoch can run at the machine's multiply-add
    peak; only skipping work, as nnlib's batch-1 step skips zero inputs, gets there)."""
    other = median(row["cells"].get(peer))
    if other is None or ctx.tiny:
        return ""
    lim = epoch_limits(sizes, n_samples, batch, ctx.dtype)
    need = other / factor
    text = (f"{factor:g}x {peers.PEER_LABELS[peer]} at batch {batch} = {need * 1e3:.2f} ms "
            f"would need {lim['fma'] / need:.0%} of the FMA bound "
            f"({lim['fma'] * 1e3:.2f} ms)")
    ctx.log("  " + text)
    return " " + text[0].upper() + text[1:] + "."


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
