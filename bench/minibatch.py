"""Workload 3: mini-batch training on digits, batch 32 and 256, with plain SGD,
momentum and Adam (MLP 64-100-10 ReLU, softmax cross-entropy).

At batch 32 a step still costs more in overhead than in arithmetic; at 256 the matrix
products start to matter. Targets (plain SGD): at batch 32, nnlib >= 10x faster than
PyTorch and >= 3x faster than scikit-learn (issue 5); at batch 32 and 256, >= 3x faster than
JAX with the whole epoch jit-compiled (issue 18), judged on nnlib in its flush-denormal
mode (column ``nnlib_flush``), as XLA flushes subnormals to zero on the CPU.
"""
from bench import data, peers
from bench.peers import OPTIMIZERS
from bench.results import table, workload_result
from bench.training import (FLUSH_NOTE, SHORT_EPOCH_PRIME, compile_note, epoch_row,
                            limit_note, needed_fraction_note, speedup_target)

NAME = "minibatch"
TITLE = "Mini-batch training: one epoch on digits, batch 32 and 256"
SIZES = (64, 100, 10)
BATCHES = (32, 256)


def _label(opt):
    h = OPTIMIZERS[opt]
    if opt == "adam":
        return f"Adam lr {h['lr']:g}"
    return f"SGD lr {h['lr']:g}" + (f" momentum {h['momentum']:g}" if h["momentum"] else "")


def run(ctx):
    X, y, source = data.digits(ctx.dtype)
    if ctx.tiny:
        X, y = X[:256], y[:256]
    init = data.init_params(SIZES, ctx.dtype, seed=0)
    rows = []
    for batch in BATCHES:
        for opt in OPTIMIZERS:
            spec = peers.TrainSpec(SIZES, batch, opt, dtype=ctx.dtype, threads=ctx.threads)
            rows.append(epoch_row(ctx, f"batch {batch}, {_label(opt)}", spec, X, y, init,
                                  repeats=ctx.scale(quick=5, full=20),
                                  variants=peers.flush_variant(spec),
                                  prime=SHORT_EPOCH_PRIME))
    b32, b256 = rows[0], rows[len(OPTIMIZERS)]
    notes = ""
    for batch, row in ((32, b32), (256, b256)):
        notes += (limit_note(ctx, row, SIZES, len(X), batch)
                  + limit_note(ctx, row, SIZES, len(X), batch, nnlib=peers.FLUSH_VARIANT)
                  + needed_fraction_note(ctx, row, SIZES, len(X), batch, "jax", 3))
    what = "time per epoch, digits, batch {} (SGD): nnlib >= {}x faster than {}"
    jax = "JAX's jit-compiled epoch"
    targets = [speedup_target(what.format(32, 10, "PyTorch"), b32, "torch", 10),
               speedup_target(what.format(32, 3, jax) + FLUSH_NOTE, b32, "jax", 3,
                              nnlib=peers.FLUSH_VARIANT,
                              limit=None if ctx.tiny else (SIZES, len(X), 32, ctx.dtype)),
               speedup_target(what.format(256, 3, jax) + FLUSH_NOTE, b256, "jax", 3,
                              nnlib=peers.FLUSH_VARIANT,
                              limit=None if ctx.tiny else (SIZES, len(X), 256,
                                                                  ctx.dtype)),
               speedup_target(what.format(32, 3, "scikit-learn"), b32,
                              "sklearn", 3)]
    return workload_result(
        TITLE,
        f"Seconds per epoch. Data: {source}, X/16, {ctx.dtype.__name__}, shuffled every "
        f"epoch, identical initial weights. MLP {'-'.join(map(str, SIZES))} ReLU, softmax "
        "CE. Momentum is PyTorch's rule (scikit-learn's is the same for a constant lr), "
        "no Nesterov; Adam betas (0.9, 0.999), eps 1e-8." + compile_note(rows) + notes,
        [table("minibatch", peers.columns(ctx.peers, peers.flush_variant(spec)), rows,
               plot={"kind": "bar", "file": "minibatch.png"})],
        targets, peers=peers.describe_peers(ctx.dtype))
