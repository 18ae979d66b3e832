"""Workload 2: per-sample SGD (batch 1), one epoch on the digits (1797 x 64), MLP
64-100-10 ReLU, softmax cross-entropy, plain SGD lr 0.1.

Here each step is tiny (a 64x100 and a 100x10 product), so the time is per-call overhead:
PyTorch's dispatcher and autograd, scikit-learn's Python loop, NumPy's per-call cost.
Targets: nnlib >= 50x faster than PyTorch and >= 10x faster than the NumPy loop (issue 5),
>= 3x faster than JAX with the whole epoch jit-compiled (issue 18). XLA flushes subnormals
to zero, so the JAX target is judged on nnlib in its flush-denormal mode (a column of its
own, ``nnlib_flush``); the other targets on IEEE nnlib, as their peers keep subnormals.
"""
import numpy as np

from bench import data, peers
from bench.results import table, workload_result
from bench.training import (FLUSH_NOTE, SHORT_EPOCH_PRIME, compile_note, epoch_row,
                            limit_note, needed_fraction_note, speedup_target)

NAME = "per_sample"
TITLE = "Per-sample SGD: one epoch on digits, batch 1"
SIZES = (64, 100, 10)


def run(ctx):
    X, y, source = data.digits(ctx.dtype)
    if ctx.tiny:
        X, y = X[:200], y[:200]
    init = data.init_params(SIZES, ctx.dtype, seed=0)
    spec = peers.TrainSpec(SIZES, 1, "sgd", dtype=ctx.dtype, threads=ctx.threads)
    variants = peers.flush_variant(spec)
    row = epoch_row(ctx, "batch 1, SGD lr 0.1", spec, X, y, init,
                    repeats=ctx.scale(quick=3, full=10), variants=variants,
                    prime=SHORT_EPOCH_PRIME)
    notes = (limit_note(ctx, row, SIZES, len(X), 1)
             + limit_note(ctx, row, SIZES, len(X), 1, nnlib=peers.FLUSH_VARIANT)
             + needed_fraction_note(ctx, row, SIZES, len(X), 1, "jax", 3))
    what = "time per epoch, digits, batch 1 (per-sample SGD): nnlib >= {}x faster than {}"
    targets = [speedup_target(what.format(50, "PyTorch"), row, "torch", 50),
               speedup_target(what.format(3, "JAX's jit-compiled epoch") + FLUSH_NOTE, row,
                              "jax", 3, nnlib=peers.FLUSH_VARIANT),
               speedup_target(what.format(10, "the NumPy loop"), row,
                              "numpy", 10)]
    return workload_result(
        TITLE,
        f"Seconds per epoch ({len(X)} steps of one sample). Data: {source}, X/16, "
        f"{ctx.dtype.__name__}. MLP {'-'.join(map(str, SIZES))} ReLU, softmax CE, SGD "
        "lr 0.1, shuffled every epoch, identical initial weights. `loss_after` in "
        "results.json is each peer's mean loss after the timed epochs." + compile_note([row])
        + notes,
        [table("per_sample", peers.columns(ctx.peers, variants), [row], plot={"kind": "bar", "file": "per_sample.png"})],
        targets, peers=peers.describe_peers(ctx.dtype))
