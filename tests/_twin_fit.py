"""Epoch setups for a ``Sequential`` model, and ``Sequential.fit`` restated with the NumPy
twin of the compiled epoch (``nnlib._reference.train``): the oracle of the tests of the
compiled training loop (tests/test_train*.py, tests/test_fuzz_fit.py).

``make_setup`` builds the ``EpochSetup`` of either module, compiled or twin, from the same
arguments, so a test can run both on equal copies of a model.
"""
import numpy as np

from nnlib._codes import ACTIVATION_CODES, CLASS_LABEL_LOSSES, LOSS_CODES
from nnlib._dense_args import activation_spec
from nnlib._reference import train as twin
from nnlib.layers import Dense
from nnlib.training import dropout_layers


def _dense(model):
    return [layer for layer in model.layers if isinstance(layer, Dense)]


def network(module, model):
    """``module.Network`` of a Sequential of Dense and Dropout layers."""
    dense = _dense(model)
    params = [activation_spec(*layer._act_args())[1] for layer in dense]
    return module.Network(model._sizes(), [ACTIVATION_CODES[layer.activation]
                                           for layer in dense], params,
                          [(p, layer.rate) for p, layer in dropout_layers(model)])


def targets(model, y, loss):
    """``(y_target, y_label)`` as the epoch reads them: integer labels for a class-label
    loss (and an empty target matrix), else float targets in the model's dtype (and one
    unused label)."""
    n = np.shape(y)[0]
    if loss in CLASS_LABEL_LOSSES:
        return np.empty((n, 0), model.dtype), np.asarray(y).astype(np.int64)
    y_target = np.ascontiguousarray(np.asarray(y).reshape(n, model.n_out), model.dtype)
    return y_target, np.zeros(1, np.int64)


def make_setup(module, model, X, y, loss, *, optimizer=None, config=None, states=None,
               batch_size=None, rows=None, **kwargs):
    """``module.EpochSetup`` training ``model``'s live parameters on (X, y).

    ``optimizer``: an nnlib.optim optimizer (its config, unless ``config`` is given, and
    unless ``states`` is, its state arrays, flattened); ``rows``: workspace rows (default:
    all of X, enough for ``loss_grad`` and any batch). Other keywords go to EpochSetup
    (l2, margin, ...). A SciPy sparse X is passed as it is (the compiled epoch's)."""
    if not hasattr(X, "tocsr"):
        X = np.ascontiguousarray(X, model.dtype)
    y_target, y_label = targets(model, y, loss)
    if config is None and optimizer is not None:
        config = optimizer.config()
    if states is None:
        states = ([None] * len(model.params) if optimizer is None else
                  [s.reshape(-1) for s in optimizer.state_arrays(model.params)])
    n = X.shape[0]
    workspace = module.Workspace(model._sizes(), rows or max(n, 1), y_target.shape[1],
                                 model.dtype)
    dense = _dense(model)
    return module.EpochSetup(network(module, model), [l.W for l in dense],
                             [l.b for l in dense], states, X, y_target, y_label,
                             workspace, LOSS_CODES[loss], batch_size or max(n, 1),
                             optimizer=config, **kwargs)


def reference_fit(model, X, y, loss, optimizer, *, epochs, batch_size, random_state=0,
                  shuffle=True, l2=0.0, l2_per_batch=False, margin=1.0):
    """What ``model.fit(..., n_threads=1)`` computes, by the twin: the same permutations
    (one ``default_rng(random_state).permutation`` per epoch), batches, L2 and update
    rule, and dropout masks (each Dropout layer's own seed, or one drawn from a child
    of the fit's generator; its ``step`` counting from where it is). Trains the model's
    parameters with ``optimizer`` (a fresh one), puts them back and returns ``(trained
    params, per-epoch mean losses)``; an epoch the twin stops (a non-finite loss or
    gradient) ends the run with a NaN loss."""
    saved = [p.copy() for p in model.params]
    try:
        setup = make_setup(twin, model, X, y, loss, optimizer=optimizer,
                           batch_size=batch_size, l2=l2, l2_per_batch=l2_per_batch,
                           margin=margin)
        rng = np.random.default_rng(random_state)
        drops = [layer for _, layer in dropout_layers(model)]
        if drops:
            unseeded = [layer for layer in model.layers
                        if getattr(layer, "rate", None) is not None and layer.seed is None]
            child = rng.spawn(1)[0].integers(0, 2**63, size=len(unseeded)) \
                if unseeded else []
            fit_seed = {id(layer): int(s) for layer, s in zip(unseeded, child)}
            # update t + 1 (t before it) uses the masks of the layer's step + t
            setup.set_dropout([layer.seed if layer.seed is not None
                               else fit_seed[id(layer)] for layer in drops],
                              [(layer.step - 1) % 2**64 for layer in drops])
        n, t, losses = np.shape(X)[0], 0, []
        for _ in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            loss_sum, seen, steps, status, _ = twin.run_epoch(setup, order, t)
            t += steps
            losses.append(loss_sum / seen if status == 0 else float("nan"))
            if status:
                break
        return [p.copy() for p in model.params], losses
    finally:
        for p, q in zip(model.params, saved):
            p[...] = q


def dense_net(sizes, act, dtype):
    """A Sequential of Dense layers of ``sizes``, ``act`` between them and identity last,
    layer i seeded i + 1 (the batch-1 copies' tests)."""
    from nnlib.model import Sequential
    return Sequential([Dense(a, b, act if i < len(sizes) - 2 else "identity", dtype=dtype,
                             random_state=i + 1)
                       for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))])


def sparse_class_data(sizes, dtype, n):
    """n rows of sizes[0] standard normal inputs with those below -0.3 set to 0 (zero
    coefficients for the steps to skip) and labels in [0, sizes[-1]), seed 5."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    X[X < -0.3] = 0
    return X, rng.integers(0, sizes[-1], n)


def assert_same_bits(a, b):
    """Arrays equal pairwise, signs of zero included."""
    for p, q in zip(a, b):
        assert np.array_equal(p, q) and np.array_equal(np.signbit(p), np.signbit(q))


def two_epochs(module, dtype, case, check_updates=False, piece=-1, optimizer=None,
               **setup_kw):
    """Two seeded epochs of ``module``'s ``run_epoch`` over a two-layer net (d -> hidden
    -> c, first activation ``act``, then identity), softmax cross-entropy, plain SGD lr
    0.05 with weight decay ``wd`` (or ``optimizer``, a callable making one for the
    model; ``setup_kw`` go to EpochSetup: l2, l2_per_batch), on N rows with a fifth of X
    zero; ``case`` is (N, d, hidden, c, batch, act, wd, ...); each epoch one call, or
    calls of ``piece`` steps. Returns each call's result, the trained parameters and the
    setup's ``padded_calls``."""
    from nnlib import Sequential, optim
    N, d, hidden, c, batch, act, wd = case[:7]
    model = Sequential([Dense(d, hidden, act, dtype=dtype, random_state=0),
                        Dense(hidden, c, "identity", dtype=dtype, random_state=1)])
    rng = np.random.default_rng([N, d, hidden, batch])
    X, y = rng.standard_normal((N, d)), rng.integers(0, c, N)
    X[rng.random(X.shape) < 0.2] = 0.0
    opt = optim.SGD(lr=0.05, weight_decay=wd) if optimizer is None else optimizer(model)
    setup = make_setup(module, model, X, y, "softmax_cross_entropy", optimizer=opt,
                       config=opt._fit_config(model.params), batch_size=batch, **setup_kw)
    outs = []
    for _ in range(2):
        order, done, total = rng.permutation(N).astype(np.int64), 0, 0.0
        while done < N:
            out = module.run_epoch(setup, order[done:], setup.steps_taken, piece,
                                   check_updates, total)
            outs.append(out)
            total, done = out[0], done + out[1]
            if out[3] != 0 or out[1] == 0:
                break
    return outs, [p.copy() for p in model.params], setup.padded_calls


def run_batch1(module, sizes, act, dtype, *, padded=True, transposed=True, l2=0.0,
               epochs=2, piece=None, check_updates=False, n=13, min_steps=0):
    """Train ``dense_net(sizes, act, dtype)`` on ``sparse_class_data`` (n rows) with
    ``module``'s run_epoch, batch 1, plain SGD lr 0.2, softmax cross-entropy: ``epochs``
    seeded orders, each in calls of ``piece`` steps (None: one call), the compiled
    epoch's batch-1 copies of each kind on or off; with ``padded``, calls of at least
    ``min_steps`` steps make the padded copies (0: every call, whatever its length;
    None: the build's PADDED_MIN_STEPS_B1). Returns each epoch's loss sum, rows seen and
    set of (status, finite) of its calls; the trained parameters; and how many calls
    stepped padded copies (0 for the twin)."""
    from nnlib import optim
    from nnlib.training import compiled_train
    compiled = compiled_train()
    previous = (compiled._set_copies("padded", padded),
                compiled._set_copies("transposed", transposed),
                compiled._set_padded_min_steps(0, 0))
    compiled._set_padded_min_steps(previous[2][0],
                                   previous[2][1] if min_steps is None else min_steps)
    try:
        model = dense_net(sizes, act, dtype)
        X, y = sparse_class_data(sizes, dtype, n)
        setup = make_setup(module, model, X, y, "softmax_cross_entropy",
                           optimizer=optim.SGD(lr=0.2), batch_size=1, l2=l2)
        rng = np.random.default_rng(3)
        outs = []
        for e in range(epochs):
            order = rng.permutation(n).astype(np.int64)
            done, total, flags = 0, 0.0, []
            while done < n:
                steps = n - done if piece is None else min(piece, n - done)
                total, seen, _, status, finite = module.run_epoch(
                    setup, order[done:], e * n + done, steps, check_updates, total)
                done += seen
                flags.append((status, finite))
            outs.append((total, done, set(flags)))
        return outs, [p.copy() for p in model.params], getattr(setup, "padded_calls", 0)
    finally:
        compiled._set_copies("padded", previous[0])
        compiled._set_copies("transposed", previous[1])
        compiled._set_padded_min_steps(*previous[2])
