"""Workload "dask": nnlib.dask on a local cluster of 2 worker processes (1 thread each).

* **communication per step**: data-parallel steps of networks of 10^3 ... 4 x 10^6
  parameters on a batch of 16 rows (the arithmetic is nothing), against one process's
  step: the extra time is the round trip (parameters out, one gradient per shard back,
  scheduler messages). A least-squares line ``alpha + beta * parameter bytes`` gives the
  fixed latency ``alpha`` and the cost per parameter byte ``beta``;
* **1 vs 2 workers**: seconds per step of a large network (784-1024-1024-10) at large
  batches, one process (``Sequential.fit``) against the data-parallel run with the data
  on 1 and on 2 workers;
* **model averaging**: held-out accuracy and seconds per epoch on the digits, one
  process against averaging each epoch and every 10 steps (same data, epochs, batch).

The cost model the README quotes: one process takes ``c B`` per step (``c`` seconds
per row, measured at the largest batch); N workers take ``c B / N + alpha + beta P``.
N workers win when ``B > (alpha + beta P) / (c (1 - 1/N))``. For a network of
bandwidth ``bw`` in place of this machine's loopback, ``beta P`` is replaced by the
bytes through the client's link per step, ``(N + 1) P / bw`` (the parameters out once
-- workers pass them on -- and N gradients back).

The machine's other load shows in every number (``meta.loadavg_*``); on a loaded
machine the 2 workers also compete with the client for the same cores, so the 2-worker
column is a lower bound on what 2 machines give.
"""
import time

from bench.results import ok_cell, table, unavailable_cell, workload_result

NAME = "dask"
TITLE = "Beyond one machine: nnlib.dask, 1 vs 2 workers, communication per step"
LARGE = (784, 1024, 1024, 10)


def _unavailable(detail):
    cols = ["one process", "dask 1 worker", "dask 2 workers"]
    row = {"case": "nnlib.dask", "params": {},
           "cells": {c: unavailable_cell("not installed", detail) for c in cols}}
    return workload_result(TITLE, detail, [table("dask_steps", cols, [row],
                                                 baseline="one process")])


def run(ctx):
    try:
        import distributed
        import nnlib.dask  # noqa: F401
    except ImportError as exc:
        return _unavailable(f"the dask extra is not installed ({exc})")
    import numpy as np
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    client = distributed.Client(cluster)
    try:
        comm = _communication(ctx, client, np)
        scaling = _one_vs_two(ctx, client, np)
        averaging = _averaging(ctx, client, np)
    finally:
        client.close()
        cluster.close()
    model = _cost_model(comm, scaling)
    return workload_result(
        TITLE,
        "Seconds per data-parallel step against one process (medians over steps), "
        f"{ctx.dtype.__name__}; a LocalCluster of 2 worker processes, 1 thread each, "
        "on this machine (loopback network).",
        [comm["table"], scaling["table"], averaging],
        notes=model["notes"], cost_model=model)


def _model(np, sizes, dtype, seed=0):
    import nnlib
    acts = ["relu"] * (len(sizes) - 2) + ["identity"]
    return nnlib.Sequential([nnlib.Dense(a, b, act, dtype=dtype, random_state=seed + i)
                             for i, (a, b, act) in enumerate(zip(sizes[:-1], sizes[1:],
                                                                 acts))])


def _dp_step_times(client, np, model, pieces, batch, steps):
    """Median-ready step times of the data-parallel run (the first epoch's first step,
    which builds the workers' replicas, is left out)."""
    from nnlib.dask import DataParallelRun
    from nnlib.optim import SGD
    n = sum(p[0].shape[0] for p in pieces)
    with DataParallelRun(model, pieces, client=client, optimizer=SGD(lr=1e-3),
                         batch_size=batch, random_state=0) as run:
        while len(run.step_seconds) < steps + 1:
            run.run_epoch()
        assert n // batch >= 1
    return run.step_seconds[1:steps + 1]


def _fit_step_times(np, model, X, y, batch, steps):
    from nnlib.optim import SGD
    times = []
    opt = SGD(lr=1e-3)
    model.fit(X[:batch], y[:batch], optimizer=opt, epochs=1, batch_size=batch)  # warm
    for _ in range(steps):
        tic = time.perf_counter()
        model.fit(X[:batch], y[:batch], optimizer=opt, epochs=1, batch_size=batch,
                  n_threads=1)
        times.append(time.perf_counter() - tic)
    return times


def _communication(ctx, client, np):
    widths = (16, 128, 1024) if ctx.tiny else ctx.scale(quick=(16, 128, 512, 1024),
                                                         full=(16, 64, 256, 512, 1024, 2048))
    steps = 3 if ctx.tiny else ctx.scale(quick=8, full=20)
    batch, rows = 16, []
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for w in widths:
        sizes = (w, w, 2)
        X = rng.random((2 * batch, w)).astype(ctx.dtype)
        y = rng.integers(0, 2, 2 * batch)
        pieces = [(X[:batch], y[:batch]), (X[batch:], y[batch:])]
        model = _model(np, sizes, ctx.dtype)
        p_bytes = sum(p.nbytes for p in model.params)
        dp = _dp_step_times(client, np, model, pieces, batch, steps)
        one = _fit_step_times(np, _model(np, sizes, ctx.dtype), X, y, batch, steps)
        d1, d2 = ok_cell(one), ok_cell(dp)
        rows.append({"case": f"{w}-{w}-2, {p_bytes / 1e6:.3g} MB of parameters",
                     "params": {"param_bytes": p_bytes, "width": w},
                     "cells": {"one process": d1, "dask 2 workers": d2}})
        xs.append(p_bytes)
        ys.append(d2["median"] - d1["median"])
        ctx.log(f"  comm {w}: {p_bytes / 1e6:.3g} MB, step {d2['median'] * 1e3:.1f} ms vs "
                f"{d1['median'] * 1e3:.2f} ms in one process")
    beta, alpha = np.polyfit(np.array(xs, float), np.array(ys, float), 1)
    return {"alpha": float(max(alpha, 0.0)), "beta": float(max(beta, 0.0)),
            "table": table("dask_communication", ["one process", "dask 2 workers"], rows,
                           baseline="one process",
                           notes=[f"fit of the extra time per step: {alpha * 1e3:.2f} ms "
                                  f"+ {beta * 1e9:.3f} ns per parameter byte "
                                  f"({1 / beta / 1e6 if beta > 0 else float('inf'):.0f} "
                                  f"MB/s effective)"],
                           plot={"kind": "line", "x": "param_bytes", "logx": True,
                                 "logy": True, "file": "dask_communication.png",
                                 "xlabel": "parameter bytes",
                                 "ylabel": "seconds per step"})}


def _one_vs_two(ctx, client, np):
    from bench import data
    sizes = (64, 256, 256, 10) if ctx.tiny else LARGE
    batches = (64, 256) if ctx.tiny else ctx.scale(quick=(512, 2048),
                                                   full=(256, 1024, 4096, 8192))
    steps = 2 if ctx.tiny else ctx.scale(quick=4, full=8)
    n = 2 * max(batches)
    X, y = data.synthetic_mnist(n, ctx.dtype, seed=0)
    X = np.ascontiguousarray(X[:, :sizes[0]])
    rows = []
    for b in batches:
        one = _fit_step_times(np, _model(np, sizes, ctx.dtype), X, y, b, steps)
        w1 = _dp_step_times(client, np, _model(np, sizes, ctx.dtype), [(X[:2 * b],
                                                                        y[:2 * b])],
                            b, steps)
        w2 = _dp_step_times(client, np, _model(np, sizes, ctx.dtype),
                            [(X[:b], y[:b]), (X[b:2 * b], y[b:2 * b])], b, steps)
        cells = {"one process": ok_cell(one), "dask 1 worker": ok_cell(w1),
                 "dask 2 workers": ok_cell(w2)}
        rows.append({"case": f"batch {b}", "params": {"batch_size": b}, "cells": cells})
        ctx.log(f"  batch {b}: one {cells['one process']['median'] * 1e3:.1f} ms, "
                f"1 worker {cells['dask 1 worker']['median'] * 1e3:.1f} ms, "
                f"2 workers {cells['dask 2 workers']['median'] * 1e3:.1f} ms")
    model = _model(np, sizes, ctx.dtype)
    return {"sizes": sizes, "param_bytes": sum(p.nbytes for p in model.params),
            "rows": rows,
            "table": table("dask_one_vs_two", ["one process", "dask 1 worker",
                                               "dask 2 workers"], rows,
                           baseline="one process",
                           notes=[f"network {'-'.join(map(str, sizes))}, "
                                  f"{data.n_params(sizes):,} parameters, SGD; seconds "
                                  f"per step"],
                           plot={"kind": "line", "x": "batch_size", "logx": True,
                                 "logy": True, "file": "dask_one_vs_two.png",
                                 "xlabel": "batch size", "ylabel": "seconds per step"})}


def _averaging(ctx, client, np):
    import dask.array as da
    import nnlib
    from nnlib.dask import fit_model_averaging
    from nnlib.optim import SGD
    X, y = nnlib.datasets.load_digits()
    X = (X / 16.0).astype(ctx.dtype)
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    epochs = 2 if ctx.tiny else ctx.scale(quick=5, full=10)
    sizes = (64, 32, 10)
    Xd, yd = da.from_array(Xtr, chunks=(700, 64)), da.from_array(ytr, chunks=700)
    cells = {}
    for name, every in (("one process", "fit"), ("average each epoch", None),
                        ("average every 10 steps", 10)):
        model = _model(np, sizes, ctx.dtype)
        tic = time.perf_counter()
        opt = SGD(lr=0.05, momentum=0.9)
        if every == "fit":
            model.fit(Xtr, ytr, optimizer=opt, epochs=epochs, batch_size=16, random_state=0)
        else:
            fit_model_averaging(model, Xd, yd, client=client, optimizer=opt,
                                epochs=epochs, batch_size=16, average_every=every,
                                random_state=0)
        seconds = (time.perf_counter() - tic) / epochs
        acc = model.evaluate(Xte, yte)[1]
        cells[name] = ok_cell([seconds], accuracy=acc)
        ctx.log(f"  averaging {name}: accuracy {acc:.3f}, {seconds:.2f} s per epoch")
    return table("dask_model_averaging", list(cells),
                 [{"case": f"digits, {epochs} epochs, batch 16", "params": {},
                   "cells": cells}], baseline="one process",
                 notes=["held-out accuracy (397 digits): " + ", ".join(
                     f"{k} {c['accuracy']:.3f}" for k, c in cells.items())])


def _cost_model(comm, scaling):
    """The batch from which N workers beat one process (see the module docstring)."""
    rows = scaling["rows"]
    biggest = rows[-1]
    b = biggest["params"]["batch_size"]
    c = biggest["cells"]["one process"]["median"] / b          # seconds per row
    P = scaling["param_bytes"]
    alpha, beta = comm["alpha"], comm["beta"]
    out = {"seconds_per_row": c, "alpha_s": alpha, "beta_s_per_byte": beta,
           "param_bytes": P, "break_even_batch": {}}
    notes = [f"one process: {c * 1e6:.1f} us per row for {'-'.join(map(str, scaling['sizes']))} "
             f"({P / 1e6:.1f} MB of parameters)"]
    for label, per_step in (("this machine (loopback)", alpha + beta * P),
                            ("1 Gbit/s", alpha + 3 * P / 125e6),
                            ("10 Gbit/s", alpha + 3 * P / 1.25e9)):
        for N in (2, 4, 8):
            comm_s = per_step if label.startswith("this") else alpha + (N + 1) * P / (
                125e6 if label == "1 Gbit/s" else 1.25e9)
            if label.startswith("this") and N != 2:
                continue
            B = comm_s / (c * (1 - 1 / N))
            out["break_even_batch"][f"{label}, N={N}"] = B
            notes.append(f"{label}, N={N}: communication {comm_s * 1e3:.1f} ms per step; "
                         f"N workers win from a batch of about {B:,.0f} rows")
    out["notes"] = notes
    return out
