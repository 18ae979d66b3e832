"""Training and evaluation of a Sequential with layers the compiled epoch cannot run
(a user's :class:`~nnlib.layers.Layer`, a Dense or Dropout subclass with its own
forward): a Python loop over the batches, each step calling the
compiled kernels -- every Dense layer's forward and backward, the loss and its gradient,
the optimizer's update.

:class:`BatchRun` has the surface of :class:`nnlib.training.TrainingRun` (entered as a
context, ``run_epoch(order, epoch) -> EpochResult``, ``model``, ``optimizer``,
``params``, ``progress``, ``on_piece``), so :class:`nnlib.fit_loop.FitLoop` drives either;
:class:`BatchEvaluation` has the surface of :class:`nnlib.training.Evaluation`.

One step on the rows ``order[s : s + B]`` is the compiled epoch's step (see
``nnlib._reference.train``), with each layer's own forward and backward::

    H_0 = X[rows],  (H_l, backprop_l) = layers[l].forward_train(H_{l-1})
    data, dH_L = loss(H_L, y[rows]) and its gradient        (mean over the rows)
    dH_{l-1}, grads_l = backprop_l(dH_l)  + l2_eff * p for each regularized param p
    reported = data + l2_eff / 2 * sum ||p||^2,  then one optimizer update of every param

For a model of plain Dense layers this is the compiled epoch's arithmetic in another
order (rounding differs; tests/test_layers_protocol.py compares the two). A step whose
loss or gradients are not finite is not applied; an update that would overflow is
refused by the optimizer kernel and undone; either ends the epoch with ``fault`` set.
Ctrl-C lands between two steps, with ``optimizer.t`` counting the steps applied.
"""
import math
import time

import numpy as np

from nnlib._codes import CLASS_LABEL_LOSSES
from nnlib._divergence import cause_of_layers_step
from nnlib._threads import training_blas_threads
from nnlib._validation import NonFiniteError, ShapeError, check_fits_dtype
from nnlib.metrics import accuracy
from nnlib.training import INTERRUPT_INTERVAL, ClaimedRun, EpochResult

__all__ = ["BatchRun", "BatchEvaluation", "forward_backward"]


def _loss_and_grad(loss, Z, y, margin, grad=True):
    """The compiled mean loss over the rows of ``Z`` (n, c) and its gradient (None
    unless ``grad``). logistic_loss on c > 1 outputs (multilabel) is the sum over the
    columns: the functional kernel takes one column, so it runs on the n*c scores as one
    column and its mean is scaled back by c, as the compiled epoch defines it."""
    from nnlib.functional import losses
    n, c = Z.shape
    if loss == "logistic_loss" and c > 1:
        Z, y = Z.reshape(-1, 1), np.asarray(y).reshape(-1)
    kw = {"margin": margin} if loss == "hinge_loss" else {}
    if grad:
        value, dZ = losses.loss_and_grad(loss, Z, y, margin)
    else:
        value, dZ = getattr(losses, loss)(Z, y, **kw), None
    if loss == "logistic_loss" and c > 1:
        value = value * c
        dZ = None if dZ is None else (dZ * Z.dtype.type(c)).reshape(n, c)
    return value, dZ


def _targets_of(loss, y_target, y_label, rows=None):
    src = y_label if loss in CLASS_LABEL_LOSSES else y_target
    return src if rows is None else src[rows]


def _check_live(model):
    """Dense layers' arrays may have been replaced by a user: keep them usable; the
    structure must still hold (as before every compiled call); and every layer must be
    trainable: a Dense subclass that changes ``forward`` alone would be trained with the
    gradient of Dense's forward, not of its own."""
    from nnlib.layers import Dense
    for i, layer in enumerate(model.layers):
        check = getattr(layer, "_check_live", None)
        if check is not None:
            check()
        cls = type(layer)
        n_params, n_flags = len(layer.params), len(tuple(layer.regularized))
        if n_flags != n_params:
            raise ShapeError(f"layers[{i}] ({cls.__name__}) has {n_params} params but "
                             f"{n_flags} regularized flags: one per array of params")
        if (isinstance(layer, Dense) and cls.forward is not Dense.forward
                and cls.forward_train is Dense.forward_train
                and cls.backward is Dense.backward):
            raise TypeError(f"layers[{i}] ({cls.__name__}) overrides forward but not "
                            f"forward_train or backward: its gradient is unknown. "
                            f"Implement forward_train(X) -> (H, backprop) (see "
                            f"nnlib.layers.Layer)")
    model._check_layers()


def forward_backward(model, X, y, loss, margin=1.0, l2=0.0, grads=True):
    """Mean loss of ``model`` on (X, y) plus ``l2/2 * sum ||p||^2`` over the regularized
    params, and the gradient of that objective with respect to ``model.params`` (None
    when ``grads`` is False) -- through each layer's own ``forward_train`` and backprop.

    Returns
    -------
    (loss, grads, status) : float, list of ndarray or None, int
        status 0, or 1 (loss not finite) or 2 (a gradient not finite).
    """
    H = X
    backprops, inputs = [], []          # each layer's backprop, and its input's shape
    with np.errstate(over="ignore", invalid="ignore"):
        for i, layer in enumerate(model.layers):
            inputs.append(H.shape)
            H, backprop = layer.forward_train(H)
            if not isinstance(H, np.ndarray) or H.ndim != 2 or H.shape[0] != X.shape[0]:
                raise ShapeError(f"layers[{i}] ({type(layer).__name__}).forward_train "
                                 f"must return an (n, width) array for n = {X.shape[0]} "
                                 f"rows; got {getattr(H, 'shape', type(H).__name__)}")
            backprops.append(backprop)
        if H.dtype != model.dtype:
            H = H.astype(model.dtype)
        if np.isfinite(H).all():
            value, dH = _loss_and_grad(loss, H, y, margin)
        else:
            value, dH = math.nan, None
        penalty = 0.0
        if l2:
            penalty = sum(float(np.vdot(p, p)) for p, reg in _params_regularized(model)
                          if reg)
        value = float(value) + 0.5 * l2 * penalty
        if not math.isfinite(value):
            return value, None, 1
        if not grads:
            return value, None, 0
        out = [None] * len(model.layers)
        for i in range(len(model.layers) - 1, -1, -1):
            dH, layer_grads = backprops[i](dH)
            out[i] = _layer_grads(model.layers[i], i, list(layer_grads), l2)
            # the first layer's dX goes nowhere; the others' is the previous layer's dH
            if i and (not isinstance(dH, np.ndarray) or dH.shape != inputs[i]):
                raise ShapeError(f"layers[{i}] ({type(model.layers[i]).__name__})'s "
                                 f"backprop must return dX of its input's shape "
                                 f"{inputs[i]}; got "
                                 f"{getattr(dH, 'shape', type(dH).__name__)}")
        flat = [g for gs in out for g in gs]
    status = 0 if all(np.isfinite(g).all() for g in flat) else 2
    return value, flat, status


def _params_regularized(model):
    for layer in model.layers:
        regs = tuple(layer.regularized)
        for p, reg in zip(layer.params, regs):
            yield p, reg


def _layer_grads(layer, i, grads, l2):
    params = layer.params
    if len(grads) != len(params):
        raise ShapeError(f"layers[{i}] ({type(layer).__name__}) has {len(params)} params "
                         f"but its backprop returned {len(grads)} gradients")
    regs = tuple(layer.regularized)
    out = []
    for k, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g)
        if g.shape != p.shape:
            raise ShapeError(f"layers[{i}] ({type(layer).__name__}) returned a gradient "
                             f"of shape {g.shape} for its param "
                             f"{layer.param_names[k] if k < len(layer.param_names) else k}"
                             f" of shape {p.shape}")
        g = np.array(g, dtype=p.dtype, order="C", copy=True)
        if l2 and regs[k]:
            g += p.dtype.type(l2) * p
        out.append(g)
    return out


class BatchRun(ClaimedRun):
    """Mini-batch training of a Sequential through its layers' own forward and backward,
    one epoch at a time (the surface of :class:`nnlib.training.TrainingRun`).

    Parameters
    ----------
    model : Sequential
    X, y_target, y_label, loss, optimizer, batch_size, margin, l2, l2_per_batch,
    n_threads, progress, on_piece, step_by_step
        As for :class:`nnlib.training.TrainingRun` (``step_by_step`` is how this run
        always works; ``on_piece`` is called after every step when it is set, else about
        every ``INTERRUPT_INTERVAL`` seconds with the progress display).

    Examples
    --------
    >>> import numpy as np, nnlib
    >>> from nnlib.layers import Dense, Dropout
    >>> from nnlib.optim import SGD
    >>> model = nnlib.Sequential([Dense(2, 4, "relu", random_state=0), Dropout(0.5, 0),
    ...                           Dense(4, 2, random_state=1)])
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]]); y = np.array([0, 1])
    >>> yt, yl = model._targets(y, "softmax_cross_entropy", 2)
    >>> with BatchRun(model, X, yt, yl, "softmax_cross_entropy", SGD(lr=0.1),
    ...               batch_size=1) as run:
    ...     result = run.run_epoch(np.array([1, 0]))
    >>> result.steps, result.fault
    (2, None)
    """

    def __init__(self, model, X, y_target, y_label, loss, optimizer, *, batch_size,
                 margin=1.0, l2=0.0, l2_per_batch=False, n_threads=None, loss_scale=1.0,
                 progress=None, on_piece=None, step_by_step=False):
        if loss_scale != 1.0:
            raise ValueError("loss_scale is for the estimators' compiled runs")
        self.model, self.optimizer, self.progress = model, optimizer, progress
        self.on_piece = on_piece
        _check_live(model)
        for i, layer in enumerate(model.layers):
            # the optimizer updates what params gives, in place: copies would leave the
            # layer untrained (and every epoch would find the arrays "replaced")
            if any(a is not b for a, b in zip(layer.params, layer.params)):
                raise TypeError(f"layers[{i}] ({type(layer).__name__}).params gives new "
                                f"arrays at each call; it must give the layer's own "
                                f"arrays, which the optimizer updates in place")
        self.params = model.params
        self.X, self.y = X, _targets_of(loss, y_target, y_label)
        self.loss, self.margin = loss, margin
        self.l2, self.l2_per_batch = l2, l2_per_batch
        self.batch_size = min(batch_size, max(X.shape[0], 1))
        optimizer._bind(self.params)        # adopted if it has none; one step count
        self._t_start = optimizer._steps_of(self.params) if self.params else 0
        check_fits_dtype(_one_config(optimizer, self.params)["lr"], "optimizer lr",
                         model.dtype)
        sizes = [model.n_in] + [l.n_out or model.n_in for l in model.layers]
        self.blas_threads = training_blas_threads(n_threads, self.batch_size, sizes)
        self.states = optimizer._state_rows(self.params) if self.params else []
        self._threads = None

    def close(self):
        """Restore BLAS's thread count and release the model and the optimizer."""
        self._release()

    def run_epoch(self, order, epoch=0, fresh=False):
        """Train one epoch over the rows ``order``; an :class:`EpochResult`. ``fresh``
        as for :class:`~nnlib.training.TrainingRun` (unused: every epoch checks)."""
        from nnlib._kernels import optim as _k
        from nnlib._threads import PARALLEL_MIN_SIZE, thread_limit
        params, optimizer, model = self.params, self.optimizer, self.model
        now = model.params          # compared by identity: != compares arrays' values
        if len(now) != len(params) or not all(a is b for a, b in zip(now, params)):
            raise RuntimeError("the model's parameter arrays were replaced during "
                               "training; start a new fit")
        # a state written into optimizer.state since (a callback): named before a step,
        # as the compiled path and the fit's start name it
        optimizer._check_fit_squares(params)
        config = _one_config(optimizer, params)
        check_fits_dtype(config["lr"], "optimizer lr", model.dtype)
        t0, steps = optimizer._steps_of(params), 0
        # the kernel sets these entries' step counts itself as it returns: no point
        # between an update and its count where an interrupt could land
        counters = optimizer._step_entries(params) if params else []
        total, seen, n, B = 0.0, 0, order.shape[0], self.batch_size
        fault = cause = None
        last_draw = time.perf_counter()
        for start in range(0, n, B):
            rows = order[start:start + B]
            l2 = self.l2 / rows.shape[0] if self.l2_per_batch else self.l2
            if rows.shape[0] == 1:
                # a copied slice keeps the GIL; fancy indexing lets it go at any size, and
                # beside a thread running Python would wait out its switch interval
                r = int(rows[0])
                Xb, yb = self.X[r:r + 1].copy(), self.y[r:r + 1].copy()
            else:
                Xb, yb = self.X[rows], self.y[rows]
            value, grads, status = forward_backward(model, Xb, yb, self.loss, self.margin,
                                                    l2)
            if status:
                fault = "loss" if status == 1 else "gradient"
            elif params:
                try:
                    _k.optim_step_arrays(config, list(params), grads, self.states,
                                         t0 + steps + 1, thread_limit(),
                                         PARALLEL_MIN_SIZE, counters)
                except NonFiniteError:
                    fault = "weights or optimizer state after an update"
            if fault is not None:
                try:
                    # a squared-gradient state written negative mid-fit first
                    squares = getattr(self.optimizer, "_squares_cause", None)
                    cause = squares(list(params)) if squares is not None else None
                    cause = cause or cause_of_layers_step(
                        model, Xb, yb, self.loss, self.margin, l2,
                        first=t0 + steps == self._t_start)
                except Exception:   # noqa: BLE001 -- the fault is reported all the same
                    cause = None
                break
            steps = counters[0].step - t0 if params else steps + 1
            total += value * rows.shape[0]
            seen += rows.shape[0]
            now = time.perf_counter()
            if self.progress is not None and now - last_draw >= INTERRUPT_INTERVAL:
                self.progress.piece_done(epoch, steps, total, seen)
                last_draw = now
            if self.on_piece is not None:
                if self.on_piece(epoch, steps, total, seen):
                    break
                optimizer._check_fit_squares(params)    # the batch callbacks may write
        return EpochResult(total, seen, steps, fault, cause)


def _one_config(optimizer, params):
    """The one optimizer config this path steps every array with; groups that differ
    are refused naming the first field and the groups where they part."""
    config = optimizer._fit_config(params)
    if isinstance(config, dict):
        return config
    where = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
    first = config[0]
    for p, c in zip(params, config):
        if c != first:
            field = next(k for k in first if c[k] != first[k])
            raise ValueError(
                f"a model with Python layers trains per batch with one optimizer config "
                f"for every array; param_groups[{where.get(id(params[0]), 0)}] and "
                f"param_groups[{where.get(id(p), 0)}] differ in {field!r} "
                f"({first[field]!r} vs {c[field]!r}): use one group's values, or a model "
                f"of compiled layers (whose fit steps each group by its own)")
    return first


class BatchEvaluation:
    """Loss and accuracy of a Sequential with Python layers on fixed data, at inference
    (the surface of :class:`nnlib.training.Evaluation`)."""

    def __init__(self, model, X, y_target, y_label, loss, margin=1.0, n_threads=None):
        self.model, self.loss, self.margin, self.n_threads = model, loss, margin, n_threads
        self.set_data(X, y_target, y_label)
        self.outputs = None

    def __call__(self):
        value = self.loss_value()
        return value, accuracy(self.outputs, self.y_true, self.loss)

    def loss_value(self):
        """The mean loss alone (the outputs in ``outputs``), as
        :meth:`nnlib.training.Evaluation.loss_value`."""
        Z = self.model._forward_checked(self.X, self.n_threads)
        self.outputs = Z
        value, _ = _loss_and_grad(self.loss, Z, self.y_true, self.margin, grad=False)
        return float(value)

    def set_data(self, X, y_target, y_label, sample_weight=None):
        """Evaluate other rows from now on (unweighted: weights need compiled layers)."""
        if sample_weight is not None:
            raise ValueError("sample_weight needs a model of compiled layers (Dense, "
                             "Dropout)")
        self.X, self.y_true = X, _targets_of(self.loss, y_target, y_label)
