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
    (l2, margin, ...)."""
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
