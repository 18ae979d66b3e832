"""Workload 6: how the epoch time grows with the work.

* batch size 1 ... 4096 (powers of 4) on 4096 rows (the digits tiled), MLP 64-100-10:
  the same arithmetic per epoch at every batch size, so the curve is pure per-step
  overhead falling away until the products dominate;
* hidden width 16 ... 2048 (powers of 2) at batch 32 on the digits, MLP 64-w-10: the
  arithmetic grows linearly with w, so the curve shows where each peer leaves its
  overhead floor.

Plain SGD lr 0.1 (lr 0.01 for widths >= 512, where 0.1 diverges), ReLU, softmax CE, the
runner's dtype, identical initial weights.
"""
from bench import data, peers
from bench.results import table, workload_result
from bench.training import epoch_row

NAME = "scaling"
TITLE = "Scaling: epoch time against batch size and width"


def run(ctx):
    X, y, source = data.digits(ctx.dtype)
    if ctx.tiny:
        batches, widths, n_rows = (16, 256), (16, 64), 256
        X, y = X[:256], y[:256]
    else:
        batches = ctx.scale(quick=(1, 16, 256, 4096), full=(1, 4, 16, 64, 256, 1024, 4096))
        widths = ctx.scale(quick=(16, 128, 1024, 2048),
                           full=(16, 32, 64, 128, 256, 512, 1024, 2048))
        n_rows = 4096
    repeats = ctx.scale(quick=2, full=5)
    Xb, yb = data.tiled_rows(X, y, n_rows)
    init = data.init_params((64, 100, 10), ctx.dtype, seed=0)
    rows_b = []
    for b in batches:
        spec = peers.TrainSpec((64, 100, 10), b, "sgd", dtype=ctx.dtype, threads=ctx.threads)
        rows_b.append(epoch_row(ctx, f"batch {b}", spec, Xb, yb, init, repeats=repeats))
    rows_w = []
    for w in widths:
        sizes = (64, w, 10)
        spec = peers.TrainSpec(sizes, 32, "sgd", dtype=ctx.dtype, threads=ctx.threads,
                               lr=0.01 if w >= 512 else None)
        rows_w.append(epoch_row(ctx, f"width {w}", spec, X, y,
                                data.init_params(sizes, ctx.dtype, seed=0),
                                params={"width": w}, repeats=repeats))
    return workload_result(
        TITLE,
        f"Seconds per epoch. Batch sweep: {n_rows} rows ({source} tiled), MLP 64-100-10. "
        f"Width sweep: {len(X)} rows, MLP 64-w-10, batch 32. {ctx.dtype.__name__}, SGD.",
        [table("scaling_batch", ctx.peers, rows_b,
               plot={"kind": "line", "x": "batch_size", "logx": True, "logy": True,
                     "file": "scaling_batch.png", "xlabel": "batch size",
                     "ylabel": "seconds per epoch"}),
         table("scaling_width", ctx.peers, rows_w,
               plot={"kind": "line", "x": "width", "logx": True, "logy": True,
                     "file": "scaling_width.png", "xlabel": "hidden width",
                     "ylabel": "seconds per epoch"})],
        peers=peers.describe_peers(ctx.dtype))

