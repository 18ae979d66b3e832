"""Evaluate fault witnesses against the nnlib of the current directory; print digests.

Run by path (``python .../witness.py IDS_FILE``) with the tree under test as the working
directory, so ``import nnlib`` finds that tree's build (this file is not imported from the
tree: a tree being mutated need not contain verify.mutants). Reads a JSON list of
``[id, expression]`` pairs and prints one JSON object ``{id: {"digest": ..., "summary":
...}}``: the SHA-256 of every array's dtype, shape and bytes (a raised exception digests
its type), so two trees agree on a witness exactly when their results are bit-identical.

The helpers below are the names a witness expression may use besides ``np``, ``nnlib``,
``F`` (nnlib.functional) and ``optim`` (nnlib.optim).
"""
import hashlib
import json
import os
import sys

import numpy as np


def rand(shape, seed=0, scale=1.0, dtype=np.float64):
    """Standard normal values times ``scale``, drawn in float64 and cast to ``dtype``."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def elementary(name, x):
    """vmath.h's function ``name`` (exp, expm1_neg, log1p_unit, tanh, tanh_f32) on x."""
    from nnlib._kernels import elementary as _e
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _e.evaluate(name, x, out)
    return out


def dense_bwd(act, n=4, n_in=3, n_out=5, scale=1.0, param=None, dtype=np.float64):
    """dense_backward's (dX, dW, db) at random X, W, b (pre-activations ~ scale)."""
    import nnlib.functional as F
    X = rand((n, n_in), 0, scale, dtype)
    W = rand((n_in, n_out), 1, 1.0, dtype)
    b = rand(n_out, 2, 1.0, dtype)
    H = F.dense_forward(X, W, b, act, param)
    G = rand((n, n_out), 3, 1.0, dtype)
    return F.dense_backward(X, W, H, G, act, param)


def opt_run(opt, n=7, steps=3, n_threads=None, dtype=np.float64):
    """The parameter and state after ``steps`` steps of ``opt`` on random gradients."""
    p = rand(n, 0, 1.0, dtype)
    for s in range(steps):
        opt.step([p], [rand(n, s + 1, 1.0, dtype)], n_threads=n_threads)
    return [p] + list(opt.state_arrays([p]))


def fit(loss="softmax_cross_entropy", optimizer=None, batch_size=4, l2=0.0,
        l2_per_batch=False, act="tanh", epochs=2, dtype=np.float64, n=23, hidden=7):
    """Weights and loss history of a small 5-``hidden``-3 network fitted by nnlib's
    compiled epoch (targets: normal values for squared error, three 0/1 labels per row
    for the logistic loss, a class otherwise)."""
    import nnlib
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 5))
    if loss == "squared_error":
        y = rng.standard_normal((n, 3))
    elif loss == "logistic_loss":
        y = rng.integers(0, 2, (n, 3)).astype(np.float64)
    else:
        y = rng.integers(0, 3, n)
    model = nnlib.Sequential([nnlib.Dense(5, hidden, act, dtype=dtype, random_state=0),
                              nnlib.Dense(hidden, 3, dtype=dtype, random_state=1)])
    hist = model.fit(X, y, loss=loss, optimizer=optimizer, epochs=epochs,
                     batch_size=batch_size, random_state=3, l2=l2, l2_per_batch=l2_per_batch,
                     n_threads=1)
    return [p.copy() for p in model.params] + [np.asarray(hist["loss"])]


def sparse_epoch(weight_decay=0.0, momentum=0.0, batch_size=4, dtype=np.float64):
    """Weights and (loss_sum, n_seen, steps, status) after one compiled epoch
    (``train.run_epoch``, shuffled batches, nnlib's SGD) of a 5-7-2 tanh network under
    squared error on a SciPy CSR X with about a third of its values 0: the first layer's
    sparse products (sparse_rows.pxd), fused into plain SGD's update (``momentum`` 0)
    or formed alone."""
    import scipy.sparse
    from nnlib import optim
    from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
    from nnlib.training import compiled_train
    api, rng = compiled_train(), np.random.default_rng(0)
    X = rng.standard_normal((23, 5)).astype(dtype)
    X[np.arange(X.size).reshape(X.shape) % 3 == 1] = 0
    T = rng.standard_normal((23, 2)).astype(dtype)
    Ws = [rng.standard_normal(s).astype(dtype) for s in ((5, 7), (7, 2))]
    bs = [rng.standard_normal(s).astype(dtype) for s in (7, 2)]
    params = [Ws[0], bs[0], Ws[1], bs[1]]
    opt = optim.SGD(lr=0.05, weight_decay=weight_decay, momentum=momentum)
    states = [None if s is None or not s.size else s.reshape(-1)
              for s in opt.state_arrays(params)]
    kinds = [ACTIVATION_CODES["tanh"], ACTIVATION_CODES["identity"]]
    setup = api.EpochSetup(api.Network([5, 7, 2], kinds, [0.0, 0.0]), Ws, bs, states,
                           scipy.sparse.csr_matrix(X), T, np.zeros(1, np.int64),
                           api.Workspace([5, 7, 2], batch_size, 2, dtype),
                           LOSS_CODES["squared_error"], batch_size, l2=0.0,
                           optimizer=opt.config())
    r = api.run_epoch(setup, np.random.default_rng(3).permutation(23).astype(np.int64), 0)
    return params + [np.array(r[:4], dtype=np.float64)]


def pool_epoch(n_out=128, dtype=np.float64):
    """Weights and (loss_sum, n_seen, steps, status) after one compiled epoch
    (``train.run_epoch``, plain SGD, squared error) of a 128-128-``n_out`` relu network
    over 512 rows in batches of 256, with BLAS on two threads and the loop's passes on
    one: where OpenBLAS's pool is available, the row gather, bias and activation and
    the activation's backward run in blocks on BLAS's threads (pass_blocks.pxd)."""
    from nnlib import optim
    from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
    from nnlib._threads import blas_threads
    from nnlib.training import compiled_train
    api, rng, sizes = compiled_train(), np.random.default_rng(0), [128, 128, n_out]
    X = rng.standard_normal((512, 128)).astype(dtype)
    T = rng.standard_normal((512, n_out)).astype(dtype)
    Ws = [(rng.standard_normal(s) * 0.1).astype(dtype) for s in ((128, 128), (128, n_out))]
    bs = [rng.standard_normal(s).astype(dtype) for s in (128, n_out)]
    kinds = [ACTIVATION_CODES["relu"], ACTIVATION_CODES["identity"]]
    setup = api.EpochSetup(api.Network(sizes, kinds, [0.0, 0.0]), Ws, bs, [None] * 4, X,
                           T, np.zeros(1, np.int64), api.Workspace(sizes, 256, n_out, dtype),
                           LOSS_CODES["squared_error"], 256, l2=0.0,
                           optimizer=optim.SGD(lr=0.01).config())
    with blas_threads(2):
        r = api.run_epoch(setup, np.random.default_rng(3).permutation(512).astype(np.int64),
                          0)
    return [Ws[0], bs[0], Ws[1], bs[1], np.array(r[:4], dtype=np.float64)]


def _feed(h, v):
    if isinstance(v, np.ndarray):
        h.update(f"a{v.dtype.str}{v.shape}".encode())
        h.update(np.ascontiguousarray(v).tobytes())
    elif isinstance(v, (list, tuple)):
        h.update(f"l{len(v)}".encode())
        for x in v:
            _feed(h, x)
    elif isinstance(v, dict):
        for k in sorted(v):
            h.update(repr(k).encode())
            _feed(h, v[k])
    elif isinstance(v, (float, np.floating)):
        h.update(np.float64(v).tobytes())
    else:
        h.update(repr(v).encode())


def _summary(v):
    text = np.array2string(v, precision=17, threshold=6) if isinstance(v, np.ndarray) \
        else repr(v)
    return text if len(text) <= 160 else text[:157] + "..."


def value(expression):
    """The value of the witness ``expression`` (exceptions propagate)."""
    import nnlib
    import nnlib.functional as F
    import nnlib.optim as optim
    names = dict(np=np, nnlib=nnlib, F=F, optim=optim, rand=rand, elementary=elementary,
                 dense_bwd=dense_bwd, opt_run=opt_run, fit=fit,
                 sparse_epoch=sparse_epoch, pool_epoch=pool_epoch)
    with np.errstate(all="ignore"):
        return eval(expression, names)      # noqa: S307 - the catalogue's own text


def evaluate(expression):
    """(digest, summary) of ``expression``; an exception is part of the result."""
    try:
        v = value(expression)
    except Exception as exc:                # a raising mutant differs from one that does not
        v = ("raised", type(exc).__name__, str(exc)[:200])
    h = hashlib.sha256()
    _feed(h, v)
    return h.hexdigest(), _summary(v)


def main(path):
    with open(path) as f:
        pairs = json.load(f)
    out = {}
    for fid, expression in pairs:
        digest, summary = evaluate(expression)
        out[fid] = {"digest": digest, "summary": summary}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())     # the tree under test, not this file's directory
    main(sys.argv[1])
