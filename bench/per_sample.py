"""Workload 2: per-sample SGD (batch 1), one epoch on the digits (1797 x 64), MLP
64-100-10 ReLU, softmax cross-entropy, plain SGD lr 0.1.

Here each step is tiny (a 64x100 and a 100x10 product), so the time is per-call overhead:
PyTorch's dispatcher and autograd, scikit-learn's Python loop, NumPy's per-call cost.
Targets: nnlib >= 50x faster than PyTorch and >= 10x faster than the NumPy loop (issue 5),
>= 3x faster than JAX with the whole epoch jit-compiled (issue 18).
"""
import numpy as np

from bench import data, peers
from bench.results import table, workload_result
from bench.training import compile_note, epoch_row, speedup_target

NAME = "per_sample"
TITLE = "Per-sample SGD: one epoch on digits, batch 1"
SIZES = (64, 100, 10)


def run(ctx):
    X, y, source = data.digits(ctx.dtype)
    if ctx.tiny:
        X, y = X[:200], y[:200]
    init = data.init_params(SIZES, ctx.dtype, seed=0)
    spec = peers.TrainSpec(SIZES, 1, "sgd", dtype=ctx.dtype, threads=ctx.threads)
    row = epoch_row(ctx, "batch 1, SGD lr 0.1", spec, X, y, init,
                    repeats=ctx.scale(quick=3, full=10))
    limit_note = _limit_note(ctx, row, len(X))
    what = "time per epoch, digits, batch 1 (per-sample SGD): nnlib >= {}x faster than {}"
    targets = [speedup_target(what.format(50, "PyTorch"), row, "torch", 50),
               speedup_target(what.format(3, "JAX's jit-compiled epoch"), row, "jax", 3),
               speedup_target(what.format(10, "the NumPy loop"), row,
                              "numpy", 10)]
    return workload_result(
        TITLE,
        f"Seconds per epoch ({len(X)} steps of one sample). Data: {source}, X/16, "
        f"{ctx.dtype.__name__}. MLP {'-'.join(map(str, SIZES))} ReLU, softmax CE, SGD "
        "lr 0.1, shuffled every epoch, identical initial weights. `loss_after` in "
        "results.json is each peer's mean loss after the timed epochs." + compile_note([row])
        + limit_note,
        [table("per_sample", ctx.peers, [row], plot={"kind": "bar",
                                                     "file": "per_sample.png"})],
        targets, peers=peers.describe_peers(ctx.dtype))


def _limit_note(ctx, row, n_samples):
    """How far the nnlib epoch is from this machine's limits: the FMA bound (6 flops per
    weight per sample -- forward, backward, update -- at the in-cache sgemm rate of
    ``bench.machine.fma_peak``) and the load/store bound (each weight loaded once by the
    forward product, once by the backward one except the first layer's, loaded and
    stored once by the update; at 2 vector loads and 1 vector store per cycle, the
    cycle rate taken as the peak over 2 FMA units x the vector width x 2 flops)."""
    from bench.machine import fma_peak
    from bench.results import median
    t = median(row["cells"].get("nnlib"))
    if t is None or ctx.tiny:
        return ""
    dt = np.dtype(ctx.dtype)
    peak = fma_peak(dt.name)
    weights = [a * b for a, b in zip(SIZES[:-1], SIZES[1:])]
    flops = 6.0 * sum(weights) * n_samples
    fma_time = flops / peak["flops_per_s"]
    lanes = 64 // dt.itemsize                  # AVX-512; the bound is a lower one anyway
    cycles_per_s = peak["flops_per_s"] / (2 * lanes * 2)
    loads = sum(2 * w for w in weights) + sum(weights[1:])
    stores = sum(weights)
    ls_time = max(loads / lanes / 2, stores / lanes) * n_samples / cycles_per_s
    ctx.log(f"  limits: FMA bound {fma_time * 1e3:.2f} ms ({fma_time / t:.0%} of it "
            f"reached), load/store bound {ls_time * 1e3:.2f} ms ({ls_time / t:.0%})")
    return (f" Limits: {flops / 1e6:.0f} MFLOP per epoch at the measured in-cache "
            f"{dt.name} GEMM rate ({peak['flops_per_s'] / 1e9:.0f} GFLOP/s, "
            f"{peak['n']}x{peak['n']} OpenBLAS products) take {fma_time * 1e3:.2f} ms: "
            f"nnlib runs at {fma_time / t:.0%} of the FMA bound; its weight loads and "
            f"stores (2 loads and 1 store of {lanes} values per cycle) take at least "
            f"{ls_time * 1e3:.2f} ms: {ls_time / t:.0%} of the load/store bound.")
