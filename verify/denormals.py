"""The flush-denormal mode of the compiled epoch (``nnlib.set_flush_denormal``) against the
IEEE epoch, in each dtype.

Two cases, each one epoch of ``run_epoch`` with plain SGD, run once in IEEE arithmetic and
once flushed:

* **no subnormal**: a 6-8-3 tanh network on standard normal data, batch 4: every value the
  epoch computes is 0 or normal, so the flushed epoch must be bitwise the IEEE one (loss
  sum, every parameter, the last loss gradient);
* **subnormal**: a linear softmax layer whose logits on one-hot rows are 0 for the row's
  class and -gap elsewhere (gap 95 in float32, 720 in float64), so the IEEE probabilities
  ``exp(-gap)`` are subnormal: the flushed loss gradient must be exactly the IEEE one with
  its entries below ``tiny`` made 0 (what flush-to-zero does), every parameter within
  ``tiny`` of the IEEE one, and the IEEE gradient must hold subnormals (else the case
  tests nothing).
"""
import numpy as np

__all__ = ["run_denormals", "check_flush", "ITEM_NAME"]

ITEM_NAME = "epoch flush-denormal"
SUBNORMAL_GAP = {"float32": 95.0, "float64": 720.0}


def _epoch(train, case, flush):
    """(loss sum, params after, last loss gradient) of one epoch of ``case``."""
    import nnlib
    from nnlib import optim
    from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
    sizes, acts, params, X, y, batch = case
    params = [p.copy() for p in params]
    net = train.Network(sizes, [ACTIVATION_CODES[a] for a in acts], [0.0] * len(acts))
    ws = train.Workspace(net.sizes, X.shape[0], 0, X.dtype)
    setup = train.EpochSetup(net, params[0::2], params[1::2], [None] * len(params), X,
                             np.empty((X.shape[0], 0), X.dtype), y,
                             ws, loss_kind=LOSS_CODES["softmax_cross_entropy"],
                             batch_size=batch, optimizer=optim.SGD(lr=0.1).config())
    nnlib.set_flush_denormal(flush)
    try:
        out = train.run_epoch(setup, np.arange(X.shape[0], dtype=np.int64), 0)
    finally:
        nnlib.set_flush_denormal(False)
    last = X.shape[0] - (X.shape[0] - 1) // batch * batch      # the last batch's rows
    return out, params, ws.dZ[-1][:last].copy()


def _cases(dtype):
    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    sizes = [6, 8, 3]
    params = []
    for a, b in zip(sizes, sizes[1:]):
        params += [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dt),
                   rng.uniform(-0.5, 0.5, b).astype(dt)]
    plain = (sizes, ["tanh", "identity"], params,
             rng.standard_normal((16, 6)).astype(dt), rng.integers(0, 3, 16), 4)
    W = np.full((3, 4), -SUBNORMAL_GAP[dt.name], dt)
    W[np.arange(3), np.arange(3)] = 0.0
    confident = ([3, 4], ["identity"], [W, np.zeros(4, dt)], np.eye(3, dtype=dt),
                 np.arange(3, dtype=np.int64), 1)
    return plain, confident


def check_flush(dtype):
    """(passed, rows, first failure) of both cases in ``dtype``."""
    from nnlib._kernels import train
    if not train._flush_supported():
        return True, [(np.dtype(dtype).name, "no flush-denormal mode on this CPU")], None
    tiny = float(np.finfo(dtype).tiny)
    plain, confident = _cases(dtype)
    name = np.dtype(dtype).name
    (o0, p0, z0), (o1, p1, z1) = (_epoch(train, plain, f) for f in (False, True))
    same = o0 == o1 and all(np.array_equal(a, b) for a, b in zip(p0 + [z0], p1 + [z1]))
    rows = [(f"{name}, no subnormal", "bitwise equal" if same else "DIFFERS")]
    failure = None if same else f"{name}: the flushed epoch differs without subnormals"
    (o0, p0, z0), (o1, p1, z1) = (_epoch(train, confident, f) for f in (False, True))
    n_sub = int(np.count_nonzero((z0 != 0) & (np.abs(z0) < tiny)))
    grad_ok = np.array_equal(z1, np.where(np.abs(z0) < tiny, 0, z0))
    dmax = max(float(np.abs(a.astype(np.float64) - b).max()) for a, b in zip(p0, p1))
    ok = n_sub > 0 and grad_ok and dmax < tiny and o0[1:] == o1[1:]
    rows.append((f"{name}, subnormal softmax",
                 f"{n_sub} subnormal gradient entries in IEEE; flushed gradient "
                 f"{'=' if grad_ok else '!='} where(|g| < tiny, 0, g); parameters within "
                 f"{dmax:.3g} (< tiny = {tiny:.3g})" if dmax < tiny else
                 f"parameters off by {dmax:.3g} >= tiny"))
    if not ok and failure is None:
        failure = (f"{name}: subnormal case: {n_sub} subnormals, gradient identity "
                   f"{grad_ok}, parameter difference {dmax:.3g}")
    return failure is None, rows, failure


def run_denormals(ctx):
    """The section's one item."""
    if ctx.only and not ctx.wanted(ITEM_NAME) and not ctx.wanted("train"):
        return []
    rows, failures = [], []
    for dn in ctx.dtypes:
        passed, r, failure = check_flush(np.dtype(dn))
        rows += r
        if failure:
            failures.append(failure)
    return [{"name": ITEM_NAME, "section": "train", "passed": not failures,
             "verdict": ("flushed epoch = IEEE epoch without subnormals, differs only "
                         "below tiny with them") if not failures else
                        "FAIL: " + "; ".join(failures),
             "statement": "run_epoch with nnlib.set_flush_denormal(True) against the IEEE "
                          "run_epoch: bitwise equal on a case without subnormals; on a "
                          "softmax with subnormal probabilities, its loss gradient is the "
                          "IEEE one with entries below tiny made 0 and its parameters are "
                          "within tiny of the IEEE ones.",
             "rows": rows}]
