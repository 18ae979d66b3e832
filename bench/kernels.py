"""Workload 5: the kernels one by one -- nnlib (compiled) vs its NumPy twin
(``nnlib._reference``) vs PyTorch.

Three tables:

* **sweep** -- what a training step calls, as a unit: each activation forward + vjp,
  softmax (and log-softmax, sparsemax) forward + vjp, softmax-CE loss + gradient, dense
  forward + backward, one step of each optimizer; sizes 1e2 ... 1e7 elements (1e2, 1e4,
  1e6 with --quick) in the runner's dtype. PyTorch runs the ATen ops its autograd would
  run (e.g. ``sigmoid`` then ``sigmoid_backward(grad, out)``), called directly, no graph;
  nnlib's vjp gets the same saved tensor (``sigmoid_vjp(x, g, output=y)``).
* **activation_parts** (issue 18) -- each activation's forward and its vjp alone against
  PyTorch's forward and backward op, at the largest size, in the runner's dtype (the
  backward gets what autograd saved, e.g. sigmoid's output).
* **twins** (issue 2) -- every function of ``nnlib.functional`` alone against its twin,
  on 1e6 elements, float32 and float64. Arguments are built from the parameter names
  (``x``, ``grad_out``, ``z``, ``y``, ...); a function whose arguments this module cannot
  build is listed as skipped, not guessed at.

Elementwise inputs are shaped (n / 10, 10) -- ten "classes" per row, so the same arrays
serve the row-wise output maps and losses; the dense layer is (n / 256, 256) @ (256, 256).
"""
import inspect

import numpy as np

from nnlib._aligned import aligned_copy

from bench.report import LABELS
from bench.results import (FAULT_SECONDS, FAULTS_SHOWN_SHARE, Unavailable, measure_peers,
                           median, row_shows_faults, table, workload_result)

NAME = "kernels"
TITLE = "Kernels: nnlib vs its NumPy twin vs PyTorch"
KERNEL_PEERS = ("nnlib", "twin", "torch")
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu",
               "sign")
DENSE_WIDTH = 256
TINY_OPS = ("sigmoid", "softmax", "sparsemax", "softmax_cross_entropy", "dense", "optimizer")


def _modules():
    import nnlib._reference as R
    import nnlib.functional as F
    return F, R


def _torch(ctx):
    from bench.peers import import_torch
    return import_torch(ctx.threads)


def _need(mod, *names):
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise Unavailable("not available yet", f"{mod.__name__} has no {', '.join(missing)}")
    return [getattr(mod, n) for n in names]


def _normal(rng, shape, dtype):
    """Standard normal draws of ``shape`` in ``dtype``, the data at a multiple of 64 bytes.

    Every input of this file's rows is made here, for nnlib, its twin and PyTorch alike
    (``torch.from_numpy`` shares the buffer): NumPy puts a large array 16 bytes past a
    page, PyTorch's allocator at a multiple of 64, and a streaming kernel's time depends
    on which (the float32 relu vjp at 1e6 elements: 168 us aligned, 232 us 16 bytes
    off), so the rows compare kernels, not where each allocator put the inputs."""
    return aligned_copy(rng.standard_normal(shape), dtype)


def _shape(n, width=10):
    return (max(n // width, 1), width)


# --- the sweep: one builder per (op, peer) -----------------------------------------------

# Activations whose PyTorch backward takes the forward's output (what autograd saves):
# nnlib's vjp is timed the same way, given the output (``output=``); the others take x.
VJP_FROM_OUTPUT = ("sigmoid", "tanh", "elu")


def _map_and_vjp(which, name):
    """Builder timing ``y = name(x)`` then ``name_vjp(x, g)`` -- given ``output=y`` for the
    kinds of VJP_FROM_OUTPUT -- from nnlib.functional (which=0) or nnlib._reference
    (which=1)."""
    def build(n, dtype, rng, ctx):
        f, vjp = _need(_modules()[which], name, name + "_vjp")
        x = _normal(rng, _shape(n), dtype)
        g = _normal(rng, x.shape, dtype)
        if name in VJP_FROM_OUTPUT:
            def call():
                y = f(x)
                return y, vjp(x, g, output=y)
            return call
        return lambda: (f(x), vjp(x, g))
    return build


def _torch_activation(torch, name):
    """(forward(x), backward(g, x, y)): the ATen ops PyTorch's autograd runs for ``name``;
    the backward gets the saved tensors autograd would keep (x or the output y)."""
    aten, tf = torch.ops.aten, torch.nn.functional
    return {
        "identity": (lambda x: x.clone(), lambda g, x, y: g.clone()),
        "sigmoid": (torch.sigmoid, lambda g, x, y: aten.sigmoid_backward(g, y)),
        "tanh": (torch.tanh, lambda g, x, y: aten.tanh_backward(g, y)),
        "relu": (torch.relu, lambda g, x, y: aten.threshold_backward(g, x, 0)),
        "leaky_relu": (lambda x: tf.leaky_relu(x, 0.01),
                       lambda g, x, y: aten.leaky_relu_backward(g, x, 0.01, False)),
        "softplus": (tf.softplus, lambda g, x, y: aten.softplus_backward(g, x, 1, 20)),
        "elu": (tf.elu, lambda g, x, y: aten.elu_backward(g, 1.0, 1, 1, True, y)),
        "sign": (torch.sign, lambda g, x, y: torch.zeros_like(g)),
    }[name]


def _torch_inputs(torch, n, dtype, rng):
    x = torch.from_numpy(_normal(rng, _shape(n), dtype))
    g = torch.from_numpy(_normal(rng, tuple(x.shape), dtype))
    return x, g


def _activation_op(name):
    def torch_build(n, dtype, rng, ctx):
        torch = _torch(ctx)
        fwd, bwd = _torch_activation(torch, name)
        x, g = _torch_inputs(torch, n, dtype, rng)

        def call():
            y = fwd(x)
            return y, bwd(g, x, y)
        return call

    return {"nnlib": _map_and_vjp(0, name), "twin": _map_and_vjp(1, name),
            "torch": torch_build}


def activation_part_builders(name, part, n, dtype, rng, ctx):
    """{"nnlib", "torch"} -> builder of ``name``'s forward alone (part "forward") or its
    vjp alone ("vjp"; PyTorch's backward gets the forward's output precomputed, as from
    autograd's saved tensors)."""
    def nnlib_build():
        F = _modules()[0]
        f = getattr(F, name if part == "forward" else name + "_vjp")
        x = _normal(rng, _shape(n), dtype)
        g = _normal(rng, x.shape, dtype)
        if part == "forward":
            return lambda: f(x)
        if name in VJP_FROM_OUTPUT:
            y = getattr(F, name)(x)
            return lambda: f(x, g, output=y)
        return lambda: f(x, g)

    def torch_build():
        torch = _torch(ctx)
        fwd, bwd = _torch_activation(torch, name)
        x, g = _torch_inputs(torch, n, dtype, rng)
        y = fwd(x)
        return (lambda: fwd(x)) if part == "forward" else (lambda: bwd(g, x, y))

    return {"nnlib": nnlib_build, "torch": torch_build}


def _output_map_op(name):
    def torch_build(n, dtype, rng, ctx):
        torch = _torch(ctx)
        aten = torch.ops.aten
        z = torch.from_numpy(_normal(rng, _shape(n), dtype))
        g = torch.from_numpy(_normal(rng, tuple(z.shape), dtype))
        if name == "softmax":
            return lambda: aten._softmax_backward_data(g, torch.softmax(z, 1), 1, z.dtype)
        if name == "log_softmax":
            return lambda: aten._log_softmax_backward_data(g, torch.log_softmax(z, 1), 1,
                                                           z.dtype)
        raise Unavailable("no equivalent", f"PyTorch has no {name}")

    return {"nnlib": _map_and_vjp(0, name), "twin": _map_and_vjp(1, name),
            "torch": torch_build}


def _labels(rng, rows, classes=10):
    return rng.integers(0, classes, rows).astype(np.int64)


def _sce_op():
    name = "softmax_cross_entropy"

    def nnlib_like(which):
        def build(n, dtype, rng, ctx):
            f, grad = _need(_modules()[which], name, name + "_grad")
            z = _normal(rng, _shape(n), dtype)
            y = _labels(rng, z.shape[0])
            return lambda: (f(z, y), grad(z, y))
        return build

    def torch_build(n, dtype, rng, ctx):
        torch = _torch(ctx)
        z = torch.from_numpy(_normal(rng, _shape(n), dtype))
        y = torch.from_numpy(_labels(rng, z.shape[0]))
        rows = torch.arange(z.shape[0])

        def call():
            logp = torch.log_softmax(z, 1)           # what F.cross_entropy computes
            loss = -logp[rows, y].mean()
            dz = logp.exp_()                         # softmax, reusing the buffer
            dz[rows, y] -= 1
            dz /= z.shape[0]
            return float(loss), dz
        return call

    return {"nnlib": nnlib_like(0), "twin": nnlib_like(1), "torch": torch_build}


def _dense_op():
    """Dense ReLU layer forward + backward (nnlib.functional.dense_forward/_backward)."""
    def nnlib_like(which):
        def build(n, dtype, rng, ctx):
            mod = _modules()[which]
            fwd, bwd = _need(mod, "dense_forward", "dense_backward")
            X, W, b, dH = _dense_arrays(n, dtype, rng)
            return _dense_call(fwd, bwd, X, W, b, dH)
        return build

    def torch_build(n, dtype, rng, ctx):
        torch = _torch(ctx)
        X, W, b, dH = (torch.from_numpy(a) for a in _dense_arrays(n, dtype, rng))
        aten = torch.ops.aten

        def call():
            H = torch.relu(torch.addmm(b, X, W))
            dZ = aten.threshold_backward(dH, H, 0)
            return H, X.T @ dZ, dZ.sum(0), dZ @ W.T
        return call

    return {"nnlib": nnlib_like(0), "twin": nnlib_like(1), "torch": torch_build}


def _dense_arrays(n, dtype, rng):
    rows = max(n // DENSE_WIDTH, 1)
    X = _normal(rng, (rows, DENSE_WIDTH), dtype)
    W = aligned_copy(rng.standard_normal((DENSE_WIDTH, DENSE_WIDTH)) / 16, dtype)
    b = _normal(rng, DENSE_WIDTH, dtype)
    dH = _normal(rng, (rows, DENSE_WIDTH), dtype)
    return X, W, b, dH


def _dense_call(fwd, bwd, X, W, b, dH):
    """``dense_forward(X, W, b, activation)`` then ``dense_backward(X, W, H, grad_H,
    activation)``, arguments bound by name."""
    fwd_kw = _bind(fwd, {"X": X, "W": W, "b": b, "activation": "relu"})
    H = fwd(**fwd_kw)
    H = H[0] if isinstance(H, tuple) else H
    bwd_kw = _bind(bwd, {"X": X, "W": W, "b": b, "H": H, "grad_H": dH, "activation": "relu"})

    def call():
        out = fwd(**fwd_kw)
        bwd_kw["H"] = out[0] if isinstance(out, tuple) else out
        return bwd(**bwd_kw)
    return call


def _bind(fn, pool):
    """Keyword arguments for ``fn`` from ``pool``: every required parameter must be found;
    optional ones are passed when the pool has them."""
    kw = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in pool:
            kw[p.name] = pool[p.name]
        elif p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL,
                                                                     p.VAR_KEYWORD):
            raise Unavailable("skipped", f"{fn.__name__}: no recipe for argument {p.name!r}")
    return kw


def _optimizer_op(kind):
    """One optimizer step on a single parameter of n elements (gradient fixed)."""
    from bench.peers import OPTIMIZERS, TrainSpec
    spec = TrainSpec((1, 1), 1, kind)


    def nnlib_build(n, dtype, rng, ctx):
        from bench.peers import nnlib_api, nnlib_optimizer
        _, optim = nnlib_api()
        w, g = (_normal(rng, n, dtype) for _ in range(2))
        opt = nnlib_optimizer(optim, spec)
        return lambda: opt.step([w], [g])

    def twin_build(n, dtype, rng, ctx):
        # nnlib._reference.optim.optim_step: the twin of the compiled update, driven by
        # the nnlib optimizer's own config and state layout.
        from bench.peers import nnlib_api, nnlib_optimizer
        _, optim = nnlib_api()
        ref = _need(_reference_optim(), "optim_step", "state_slots")
        cfg = nnlib_optimizer(optim, spec).config()
        w, g = (_normal(rng, n, dtype) for _ in range(2))
        state = np.zeros((ref[1](cfg), n), dtype=dtype)
        t = [0]

        def step():
            t[0] += 1
            ref[0](cfg, w, g, state, t[0], None)
        return step

    def torch_build(n, dtype, rng, ctx):
        torch = _torch(ctx)
        p = torch.nn.Parameter(torch.from_numpy(_normal(rng, n, dtype)))
        p.grad = torch.from_numpy(_normal(rng, n, dtype))
        h = OPTIMIZERS[kind]
        # foreach=False: PyTorch's single-tensor loop (its default for CPU tensors; named
        # so a change of default cannot switch the peer to the multi-tensor one)
        if kind == "adam":
            opt = torch.optim.Adam([p], lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                   eps=h["eps"], foreach=False)
        else:
            opt = torch.optim.SGD([p], lr=h["lr"], momentum=h["momentum"], foreach=False)
        return opt.step

    return {"nnlib": nnlib_build, "twin": twin_build, "torch": torch_build}


def _reference_optim():
    import nnlib._reference.optim as ref
    return ref


# Bytes an op must move per element, in units of the dtype's size (each input read once,
# each output written once; STREAM's count, as bench.machine.memory_bandwidth measures):
# a map + vjp reads x, writes y, reads x (or y) and g, writes dx -- sign's vjp, the zero
# map, only writes; the loss reads z, writes dz (labels neglected); an optimizer step reads
# param, grad and each state row and writes param and each state row. Dense layers are
# compute-bound (see the large workload).
def _stream_elements(op):
    if op.endswith("fwd+vjp"):
        return 3 if op.startswith("sign ") else 5
    if op.startswith("softmax_cross_entropy"):
        return 3
    if op.startswith("optimizer step"):
        return {"sgd": 3, "momentum": 5, "adam": 7}[op.rsplit(" ", 1)[1]]
    return None


# Arrays each optimizer step streams through memory, as shipped (nnlib, torch) and at
# least (one read of each input, one write of each output): nnlib's overflow guard
# reads the gradient and the state rows once more before the update (a refused step
# must leave every array as it was, so the check cannot be fused into the update);
# torch's single-tensor step runs one ATen op per term (momentum: buf.mul_().add_() and
# p.add_(buf); Adam: six ops over m, v, their copies and p). A row of the table whose
# arrays exceed L3 cannot run faster than these counts times the bandwidth allow: at
# 1e7 elements SGD's nnlib/torch ratio has the floor 4/3.
OPTIMIZER_STREAMS = {"sgd": (4, 3, 3), "momentum": (7, 8, 5), "adam": (10, 18, 7)}


def _streams_note():
    return ("Stream floors (arrays read or written per element: nnlib as shipped, torch "
            "as shipped, the minimum): " + "; ".join(
                f"{k} {a}/{b}/{c} (nnlib/torch floor {a / b:.2f})"
                for k, (a, b, c) in OPTIMIZER_STREAMS.items())
            + ". nnlib's guard re-reads the gradient and state before any write.")


# The slope of time against n between these sizes is an op's cost per element with its
# arrays in a cache (float32 at 1e5: 0.4 MB an array, in L2 or L3), free of the call's
# fixed overhead: what bounds a row whose arrays fit in a cache, as at 1e6 float32
# elements (4 MB an array, in L3), where the arithmetic, not memory, sets the time.
SLOPE_SIZES = (10**4, 10**5)


def _slope_note(rows, dtype):
    """A note giving each op's in-cache cost per element for nnlib and torch, or None
    when the sweep lacks the sizes of ``SLOPE_SIZES``."""
    at = {}
    for row in rows:
        p = row["params"]
        at[p["op"], p["elements"]] = row["cells"]
    lo, hi = SLOPE_SIZES
    parts = []
    for op in dict.fromkeys(p for p, _ in at):
        if (op, lo) not in at or (op, hi) not in at:
            continue
        slope = {}
        for peer in ("nnlib", "torch"):
            a, b = median(at[op, lo].get(peer)), median(at[op, hi].get(peer))
            if a is not None and b is not None and b > a:
                slope[peer] = (b - a) / (hi - lo)
        if len(slope) == 2:
            parts.append(f"{op} {slope['nnlib'] * 1e9:.3g}/{slope['torch'] * 1e9:.3g} ns "
                         f"({slope['nnlib'] / slope['torch']:.2f})")
    if not parts:
        return None
    return (f"In-cache cost per element, {np.dtype(dtype).name} (the slope of the time "
            f"between {_pow10(lo)} and {_pow10(hi)} elements, nnlib/torch, and their "
            "ratio): " + "; ".join(parts) + ". Where the arrays fit in a cache (1e6 "
            "float32 elements: 4 MB an array, in L3) this arithmetic bounds the row, not "
            "memory: a ratio above 1 here is one the 1e6 row cannot beat without cheaper "
            "arithmetic."
            + (" nnlib's float32 optimizer rules widen each element to double and round "
               "once (optim_f32.h): their conversions are that arithmetic."
               if np.dtype(dtype) == np.float32 else ""))


def _faults_note(rows):
    """What the page-fault counts in the cells mean, and the rows that show them (None
    when no row does)."""
    shown = []
    for row in filter(row_shows_faults, rows):
        f = {p: c["faults_per_call"] for p, c in row["cells"].items()
             if c.get("status") == "ok" and c.get("faults_per_call") is not None}
        shown.append(f"{row['case']} (" + ", ".join(
            f"{LABELS.get(p, p)} {v:,.0f}" for p, v in f.items()) + ")")
    if not shown:
        return None
    return ("Page faults per call (counted around every timed sample) are shown in a row "
            f"where a peer takes at least one per call and, at {FAULT_SECONDS * 1e6:.2g} µs "
            f"each, {FAULTS_SHOWN_SHARE:.0%} of its time: they are the allocator returning "
            "freed outputs to the OS between calls and the next call faulting them back in "
            "(glibc trims its heap top past twice the largest mmap'd block freed, 128 KiB "
            "until one is, and maps blocks above 32 MiB afresh at every call), which follows "
            "the process's allocation history below 32 MiB, not the peer's kernel. A count "
            "is of pages of either size: NumPy (so nnlib's outputs) asks for 2 MiB pages on "
            "blocks of 4 MiB and more, PyTorch does not, so the same bytes faulted in count "
            "up to 512 times fewer faults for NumPy's arrays, each costing more. Rows that "
            "show them (all tables of this workload): " + "; ".join(shown) + ".")


def _add_bandwidth(cells, op, n, dtype, bandwidth):
    """Each ok cell gets ``bandwidth_fraction``: its bytes/s over the machine's memory
    bandwidth (an op on arrays that fit in a cache can exceed 1)."""
    per = _stream_elements(op)
    if per is None or bandwidth is None:
        return
    moved = per * n * np.dtype(dtype).itemsize
    for cell in cells.values():
        if median(cell):
            cell["bandwidth_fraction"] = moved / median(cell) / bandwidth["bytes_per_s"]


def sweep_ops():
    """op name -> {peer: builder(n, dtype, rng, ctx) -> callable}."""
    ops = {f"{a} fwd+vjp": _activation_op(a) for a in ACTIVATIONS}
    for m in ("softmax", "log_softmax", "sparsemax"):
        ops[f"{m} fwd+vjp"] = _output_map_op(m)
    ops["softmax_cross_entropy loss+grad"] = _sce_op()
    ops[f"dense relu fwd+bwd (n/{DENSE_WIDTH} x {DENSE_WIDTH})"] = _dense_op()
    for kind in ("sgd", "momentum", "adam"):
        ops[f"optimizer step: {kind}"] = _optimizer_op(kind)
    return ops


# --- the issue-2 twin table: every functional kernel alone ------------------------------

def _twin_args(name, fn, n, dtype, rng):
    """Positional arguments for ``fn`` (a function of nnlib.functional) on about n
    elements, or Unavailable("skipped") when its parameters are not ones we know."""
    shape = _shape(n)
    z = _normal(rng, shape, dtype)
    pool = {"x": z, "z": z, "grad_out": _normal(rng, shape, dtype)}
    if "y" in inspect.signature(fn).parameters:
        if name.startswith("squared_error"):
            pool["y"] = _normal(rng, shape, dtype)
        elif name.startswith("poisson_loss"):           # counts: targets >= 0
            pool["y"] = rng.poisson(1.5, shape).astype(dtype)
        elif name.startswith("logistic_loss"):
            pool["z"] = _normal(rng, shape[0] * shape[1], dtype)
            pool["y"] = rng.integers(0, 2, pool["z"].shape[0]).astype(dtype)
        else:
            pool["y"] = _labels(rng, shape[0])
    if name.startswith("dense"):
        X, W, b, dH = _dense_arrays(n, dtype, rng)
        pool.update(X=X, W=W, b=b, grad_H=dH, H=np.maximum(X @ W + b, 0))
    if "loss" in inspect.signature(fn).parameters:
        pool["loss"] = "softmax_cross_entropy"
    return _bind(fn, pool)


def twin_builders(name, n, dtype, rng):
    F, R = _modules()
    f, r = getattr(F, name), getattr(R, name, None)

    def nnlib_build():
        kw = _twin_args(name, f, n, dtype, rng)
        return lambda: f(**kw)

    def twin_build():
        if r is None:
            raise Unavailable("missing", f"nnlib._reference has no {name}")
        kw = _twin_args(name, r, n, dtype, np.random.default_rng(0))
        return lambda: r(**kw)

    return {"nnlib": nnlib_build, "twin": twin_build}


def _pow10(n):
    k = round(np.log10(n))
    return f"1e{k}" if 10**k == n else str(n)


def run(ctx):
    if ctx.tiny:
        sizes = (100,)
    else:
        sizes = ctx.scale(quick=(10**2, 10**4, 10**6),
                          full=tuple(10**k for k in range(2, 8)))
    twin_n = 10**3 if ctx.tiny else 10**6
    rng = np.random.default_rng(0)
    rows = []
    from bench.machine import memory_bandwidth
    bandwidth = None if ctx.tiny else memory_bandwidth()
    if bandwidth:
        ctx.log(f"  memory bandwidth (one thread, 64 MiB copy, read + write): "
                f"{bandwidth['bytes_per_s'] / 1e9:.1f} GB/s")
    ops = sweep_ops()
    if ctx.tiny:   # the test suite: one op of each kind is enough to exercise the code
        ops = {k: v for k, v in ops.items() if k.split()[0] in TINY_OPS}
    for op, builders in ops.items():
        for n in sizes:
            cells = measure_peers(ctx, {p: (lambda b=b, n=n: b(n, ctx.dtype, rng, ctx))
                                        for p, b in builders.items()})
            _add_bandwidth(cells, op, n, ctx.dtype, bandwidth)
            rows.append({"case": f"{op}, n={_pow10(n)}", "params": {"op": op, "elements": n},
                         "cells": cells})
        ctx.log(f"  {op}: " + ", ".join(
            f"{p} {median(c) * 1e6:.1f} us" + (f" ({c['bandwidth_fraction']:.0%} of memory "
                                               f"bandwidth)" if "bandwidth_fraction" in c
                                               else "")
            if median(c) is not None else f"{p} {c['status']}"
            for p, c in rows[-1]["cells"].items()) + f" at n={_pow10(sizes[-1])}")
    # issue 18: each activation's forward and vjp alone against PyTorch's, largest size
    part_rows = []
    part_n = sizes[-1]
    for name in ("sigmoid",) if ctx.tiny else ACTIVATIONS:
        for part in ("forward", "vjp"):
            cells = measure_peers(ctx, activation_part_builders(name, part, part_n,
                                                                ctx.dtype, rng, ctx))
            part_rows.append({"case": f"{name} {part}, n={_pow10(part_n)}",
                              "params": {"op": name, "part": part, "elements": part_n},
                              "cells": cells})
    ctx.log("  twins: every nnlib.functional kernel alone vs its twin")
    F, _ = _modules()
    twin_rows = []
    # Both dtypes in the full run; --quick keeps the sweep's dtype (half the time).
    for dtype in (ctx.dtype,) if ctx.quick or ctx.tiny else (np.float32, np.float64):
        for name in sorted(F.__all__):
            cells = measure_peers(ctx, twin_builders(name, twin_n, dtype, rng))
            twin_rows.append({"case": f"{name} ({np.dtype(dtype).name})",
                              "params": {"function": name, "elements": twin_n,
                                         "dtype": np.dtype(dtype).name},
                              "cells": cells})
    dt = np.dtype(ctx.dtype).name
    return workload_result(
        TITLE,
        "Seconds per call (median over interleaved samples; short calls are repeated "
        f"inside one sample). Sweep dtype {dt}. `twin` is the NumPy twin in "
        "nnlib._reference (computed in float64 for clarity, so it is a readable oracle, "
        "not a tuned NumPy implementation); PyTorch calls the ATen ops its autograd "
        "runs, without building a graph; the activation rows give nnlib's vjp what "
        "PyTorch's backward gets (the forward's output for "
        + ", ".join(VJP_FROM_OUTPUT) + ", via `output=`; x for the others). Optimizer rows: one step on one parameter of n "
        "elements, `Optimizer.step` against `torch.optim` single-tensor (foreach=False) "
        "`opt.step()`, both with their overflow or no checks as shipped (twin: nnlib._reference's optimizer if present, else the same rule "
        "in NumPy here). Elementwise rows also give each figure as a share of this "
        "machine's memory bandwidth (bytes each input read once and each output written "
        "once, over a one-thread 64 MiB copy's bytes/s"
        + (f": {bandwidth['bytes_per_s'] / 1e9:.1f} GB/s" if bandwidth else "") + "); "
        "arrays that fit in a cache can exceed 100 %. Every input starts at a multiple "
        "of 64 bytes and nnlib, its twin and PyTorch read the same buffers (torch.from_numpy);"
        " nnlib's elementwise outputs and PyTorch's start at 64 bytes as they allocate "
        "them: NumPy's own allocator would put a large input 16 bytes past a page, which "
        "costs a streaming kernel up to 40 % (the float32 relu vjp at 1e6 elements: 168 "
        "us aligned, 232 us 16 bytes off), so the ratios compare the kernels, not where "
        "the allocator put the arrays.",
        [table("kernels", KERNEL_PEERS, rows, baseline="nnlib",
               plot={"kind": "line", "x": "elements", "group": "op", "logx": True,
                     "logy": True, "file": "kernels.png", "xlabel": "elements",
                     "ylabel": "seconds per call"},
               memory_bandwidth=bandwidth,
               notes=[n for n in (_streams_note(), _slope_note(rows, ctx.dtype),
                                  _faults_note(rows + part_rows + twin_rows)) if n]),
         table("activation_parts", ("nnlib", "torch"), part_rows,
               notes=[f"Each activation's forward and vjp alone, {_pow10(part_n)} elements, "
                      f"{dt}. Both vjps get what PyTorch's autograd saves: the forward's "
                      f"output y for {', '.join(VJP_FROM_OUTPUT)} (nnlib's "
                      "`name_vjp(x, g, output=y)`, so neither evaluates exp or tanh again), "
                      "x for the others; sign's vjp is the zero map in both (zeros, "
                      "reading nothing)."]),
         table("twins_1e6", ("nnlib", "twin"), twin_rows,
               notes=[f"Every function of nnlib.functional alone, {_pow10(twin_n)} elements "
                      "(issue 2's table)."])])
