"""Why a training step became non-finite: the cause a fit's warning or error names.

The compiled epoch only reports *that* a step's loss, gradient or update left the
floating-point range (``EPOCH_STATUS``). A learning rate too high is one cause; weights
so large that the network's output overflows, and sample weights so large that the
weighted loss ``sum_i w_i L_i`` overflows float64, are others, and lowering the learning
rate cures neither. This module tells them apart *after* a fault, never on the hot path:
it evaluates the refused step once more, in NumPy (the twin's forward and backward), at
the weights of the last finite step, and checks each part in the order the epoch
computes it.

The causes, as :func:`cause_of_step` returns them (each a phrase that completes "the loss
became non-finite: ..."):

* weights that are not finite before the step (written into them since the last step,
  by a callback or another thread, or given to fit so), named by array and element;
* the weights: the output, loss, L2 penalty or gradient of the step overflows before any
  update of it (so no learning rate could have prevented it); said to be the weights
  given to fit when no update was applied yet;
* sample_weight: each row's loss is finite but ``sum_i w_i L_i`` is not;
* the weights within a factor ``HEADROOM`` of the dtype's largest value: the update
  (of any size) overflows them;
* otherwise the update itself: lower the learning rate.
"""
from typing import Optional

import numpy as np

# Weights this close to the dtype's largest value (a factor) overflow on an update of
# any reasonable size: the weights, not the learning rate, are then named.
HEADROOM = 16.0


def _largest(arrays) -> float:
    """The largest |value| over ``arrays`` (0 for none or empty), as a float."""
    return max((float(np.max(np.abs(a))) for a in arrays if a is not None and a.size),
               default=0.0)


def _finite(*arrays) -> bool:
    return all(a is None or bool(np.isfinite(a).all()) for a in arrays)


def nonfinite_weights_cause(params, first: bool) -> Optional[str]:
    """The phrase for a step whose weights are not finite before it starts (a NaN or
    inf written into them since the last step, by a callback or another thread, or
    given to fit so): no learning rate or scaling is the cause. None if all are
    finite."""
    for i, p in enumerate(params):
        if p is not None and p.size and not np.isfinite(p).all():
            j = int(np.flatnonzero(~np.isfinite(p.reshape(-1)))[0])
            at = tuple(int(k) for k in np.unravel_index(j, p.shape))
            what = ("the weights given to fit are not finite" if first else
                    "the weights are not finite at the start of the step (written since "
                    "the last step: by a callback, or another thread?)")
            return (f"{what}: parameter array {i} (shape {p.shape}) holds "
                    f"{p.reshape(-1)[j].item()!r} at {at}")
    return None


def weights_cause(part: str, params, X_rows, dtype, first: bool, lr_name: str) -> str:
    """The phrase for a step whose ``part`` ("network's output", "loss", ...) overflows
    at the weights it starts from, before its update: the weights (or X) are too large
    -- as given to fit (``first``), or grown in training (the learning rate)."""
    x_big = _largest([X_rows]) if isinstance(X_rows, np.ndarray) else None
    x_note = f", largest |x| {x_big:.3g}" if x_big is not None else ""
    big, name = _largest(params), np.dtype(dtype).name
    if first:
        return (f"the {part} overflows {name} at the weights given to fit, before any "
                f"update (largest |parameter| {big:.3g}): the weights are too large; "
                f"scale them (or X{x_note}) down")
    return (f"the {part} overflows {name} at the weights of the last finite step, before "
            f"its update (largest |parameter| {big:.3g}): lower {lr_name} if they grew "
            f"during training, else scale the weights (or X{x_note}) down")


def sample_weight_cause(w, losses) -> str:
    """The phrase for a step whose rows' losses are finite but ``sum_i w_i L_i`` is not."""
    return (f"sample_weight is too large: the step's rows have finite losses (largest "
            f"{float(np.max(np.abs(losses))):.3g}) but sum_i sample_weight_i * loss_i "
            f"overflows float64 (largest sample_weight {float(np.max(w)):.3g}); scale "
            f"sample_weight down, e.g. divide it by its mean (the weighted mean does not "
            f"depend on its scale)")


def update_cause(params, dtype, lr_name: str, grads=()) -> str:
    """The phrase for a step whose loss and gradient (``grads``, when known) are finite at
    the weights it starts from: its update overflowed (or the fault is not reproduced,
    e.g. a loss that the compiled loop sums in another order)."""
    big, top, name = _largest(params), float(np.finfo(dtype).max), np.dtype(dtype).name
    if big * HEADROOM > top:
        return (f"the weights are within a factor {HEADROOM:g} of {name}'s largest "
                f"value (largest |parameter| {big:.3g}), so an update overflows them; "
                f"scale the weights down")
    g = _largest(grads)
    if g * g > top:
        # Adam's, RMSprop's and Adagrad's state holds the gradient's square: no
        # learning rate keeps that finite
        return (f"the gradient reaches {g:.3g}, whose square (an optimizer's state: "
                f"Adam, RMSprop, Adagrad) overflows {name}; scale X or the targets down, "
                f"else lower {lr_name}?")
    return f"lower {lr_name}?"


def cause_of_step(setup, rows, t: int, first: bool,
                  lr_name: str = "the learning rate", mask_rows=None) -> str:
    """Why the step over ``rows`` (update number ``t``) of the compiled ``setup`` became
    non-finite, evaluated at the setup's current weights (those the step started from:
    the epoch refuses a non-finite step, or rewinds it). ``first``: no update was applied
    in this fit before it. ``mask_rows``: the rows' positions in the step's batch, whose
    dropout masks they take (``loss_grad``'s ``batch_rows``: a part of a batch, as
    nnlib.dask's workers hold one); None: row i of ``rows`` is row i. Returns a phrase
    (see the module's docstring); costs one forward and backward of the batch in NumPy,
    row by row for the loss."""
    from nnlib._reference import losses as ref_losses
    from nnlib._reference import train as twin
    from nnlib._codes import CLASS_LABEL_LOSSES, LOSS_CODES
    weights, biases = list(setup.weights), list(setup.biases)
    params = weights + biases
    bad = nonfinite_weights_cause(params, first)
    if bad is not None:
        return bad
    dtype = weights[0].dtype if weights else np.float64
    rows = np.asarray(rows, dtype=np.int64)
    X_rows = setup.X[rows]
    dense_rows = X_rows.toarray() if hasattr(X_rows, "toarray") else X_rows
    name = {code: nm for nm, code in LOSS_CODES.items()}[setup.loss_kind]
    y = (setup.y_label if name in CLASS_LABEL_LOSSES else setup.y_target)[rows]
    sw = setup.sample_weight
    with np.errstate(all="ignore"):
        ins, outs = twin._forward(setup, X_rows, t, rows=mask_rows)
        z = ins[-1].astype(np.float64)
        if not _finite(z):
            return weights_cause("network's output", params, dense_rows, dtype, first,
                                 lr_name)
        pairs = [ref_losses.loss_and_grad(name, z[i:i + 1], y[i:i + 1], setup.margin)
                 for i in range(rows.size)]
        # the network's logistic loss sums over a row's outputs; the twin's averages
        per_output = z.shape[1] if name == "logistic_loss" else 1
        losses = np.array([v for v, _ in pairs], np.float64) * per_output
        dout = np.concatenate([g for _, g in pairs]).astype(np.float64) * per_output
        if not _finite(losses, dout):
            return weights_cause("loss", params, dense_rows, dtype, first, lr_name)
        if sw is None:
            w, norm = None, float(rows.size)
        else:
            w = sw[rows].astype(np.float64)
            norm = float(np.sum(w))
        l2 = setup.l2 / norm if setup.l2_per_batch else setup.l2
        if not np.isfinite(setup.loss_scale * float(np.mean(losses))
                           + twin._penalty(weights, l2)):
            return weights_cause("L2 penalty", params, dense_rows, dtype, first, lr_name)
        if w is not None and not np.isfinite(float(np.dot(w, losses))):
            return sample_weight_cause(w, losses)
        # the gradient of the (weighted) mean, its weights scaled to at most 1 first
        share = (np.full(rows.size, 1.0 / rows.size) if w is None else
                 (w / w.max()) / np.sum(w / w.max()))
        dWs, dbs = twin._backward(setup, ins, outs, dout * share[:, None], t,
                                  rows=mask_rows)
        grads = [twin._with_l2(dW, W, l2) for dW, W in zip(dWs, weights)] + list(dbs)
        if not _finite(*grads):
            return weights_cause("gradient", params, dense_rows, dtype, first, lr_name)
    return update_cause(params, dtype, lr_name, grads)


def cause_of_layers_step(model, X_rows, y_rows, loss: str, margin: float, l2: float,
                         first: bool, lr_name: str = "the learning rate") -> str:
    """:func:`cause_of_step` for a model trained layer by layer (``batch_training``):
    the step's loss at the current weights through each layer's inference ``forward``
    (a layer's ``forward_train`` may advance its own state, e.g. a dropout's step)."""
    from nnlib.batch_training import _loss_and_grad
    params = [p for p in model.params if isinstance(p, np.ndarray)]
    bad = nonfinite_weights_cause(params, first)
    if bad is not None:
        return bad
    dtype = model.dtype
    with np.errstate(all="ignore"):
        H = X_rows
        for layer in model.layers:
            H = layer.forward(H)
        H = np.asarray(H)
        if not _finite(H):
            return weights_cause("network's output", params, X_rows, dtype, first, lr_name)
        value, dH = _loss_and_grad(loss, H.astype(dtype, copy=False), y_rows, margin)
        if not (np.isfinite(value) and _finite(dH)):
            return weights_cause("loss", params, X_rows, dtype, first, lr_name)
        if l2 and not np.isfinite(0.5 * l2 * sum(float(np.vdot(p, p)) for p in params)):
            return weights_cause("L2 penalty", params, X_rows, dtype, first, lr_name)
    return update_cause(params, dtype, lr_name)


def fault_phrase(fault: str, cause: Optional[str]) -> str:
    """``"the loss became non-finite: cause"``, the words a fit's warning or error uses
    (without a cause: the learning rate is suggested)."""
    return f"the {fault} became non-finite: {cause or 'lower the learning rate?'}"
