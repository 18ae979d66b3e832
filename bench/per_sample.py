"""Workload 2: per-sample SGD (batch 1), one epoch on the digits (1797 x 64), MLP
64-100-10 ReLU, softmax cross-entropy, plain SGD lr 0.1.

Here each step is tiny (a 64x100 and a 100x10 product), so the time is per-call overhead:
PyTorch's dispatcher and autograd, scikit-learn's Python loop, NumPy's per-call cost.
Targets: nnlib >= 50x faster than PyTorch and >= 10x faster than the NumPy loop (issue 5),
>= 3x faster than JAX with the whole epoch jit-compiled (issue 18).
"""
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
    targets = [speedup_target("batch-1 epoch >= 50x faster than PyTorch", row, "torch", 50),
               speedup_target("batch-1 epoch >= 3x faster than JAX's jit-compiled epoch",
                              row, "jax", 3),
               speedup_target("batch-1 epoch >= 10x faster than the NumPy loop", row,
                              "numpy", 10)]
    return workload_result(
        TITLE,
        f"Seconds per epoch ({len(X)} steps of one sample). Data: {source}, X/16, "
        f"{ctx.dtype.__name__}. MLP {'-'.join(map(str, SIZES))} ReLU, softmax CE, SGD "
        "lr 0.1, shuffled every epoch, identical initial weights. `loss_after` in "
        "results.json is each peer's mean loss after the timed epochs." + compile_note([row]),
        [table("per_sample", ctx.peers, [row], plot={"kind": "bar",
                                                     "file": "per_sample.png"})],
        targets, peers=peers.describe_peers(ctx.dtype))
