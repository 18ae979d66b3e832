"""NumPy twin of ``nnlib._kernels.train``: one epoch of mini-batch training, and the loss
and gradients over a whole data set, written as the math.

Same public names and signatures as the compiled module (tests/test_twins.py checks
them); tests/test_train_twin.py runs both on the same setups and compares. The twin is
assembled from the other twins, so each piece of math is stated once:

* ``nnlib._reference.dense``: a layer, ``H_l = g_l(H_{l-1} W_l + b_l)``, and its
  backward pass, ``dZ_l = dH_l * g_l'(H_l)``, ``dW = H_{l-1}^T dZ_l``,
  ``db = sum_rows dZ_l``, ``dH_{l-1} = dZ_l W_l^T``;
* ``nnlib._reference.losses``: the data loss of a batch of ``B`` rows (the mean over the
  rows) and ``dH_L``, its gradient with respect to the output;
* ``nnlib._reference.optim``: the update rule of each optimizer.

One step on the rows ``order[s : s + B]``, with ``l2_eff = l2 / B`` if ``l2_per_batch``
else ``l2`` (with ``sample_weight`` w: the data loss is the weighted mean
``sum_i w_i L_i / sum_i w_i`` over the rows and ``l2_eff = l2 / sum_i w_i``)::

    forward     H_0 = X[rows],  H_l = g_l(H_{l-1} W_l + b_l),  l = 1..L
    loss        data = mean over the rows of loss(H_L, y[rows])       status 1 if not finite
    backward    dW_l = H_{l-1}^T dZ_l + l2_eff W_l,  db_l = sum dZ_l   status 2 if not finite
                (no L2 term at all for l2_eff = 0: an infinite weight keeps its gradient)
    reported    loss_scale * data + l2_eff / 2 * sum_l ||W_l||^2      status 1 if not finite
    update      optim_step on W_l (grad dW_l) and b_l (grad db_l), each by its own
                config (``optimizer``: one for all, or one per array),  t = step0 + steps + 1

A refused step (status 1: loss, 2: gradient) changes nothing and ends the epoch. A NaN or
inf anywhere in ``dZ_l`` shows in its column sums ``db_l``, so checking the biases'
gradients is enough to refuse a step whose weight gradients are not finite (the inputs
of each layer being finite). The L2 term is on the weights only, never the biases.
``loss_scale`` scales the reported data loss and not the gradient (scikit-learn's
multi-output squared loss is the mean over outputs, its gradient that of the sum).

Plain SGD (momentum 0) with weight decay ``wd`` is, by the rule of ``optim_step``::

    W <- W - lr (dW + wd W) = W - lr (H^T dZ + (l2_eff + wd) W)
       = (1 - lr (l2_eff + wd)) W - lr H^T dZ,        b <- (1 - lr wd) b - lr db

Dropout (``Network(..., dropout=[(position, rate), ...])``): in training, the input of
layer ``position`` (position L: the output the loss reads) is ``D = H * m / (1 - rate)``
with the mask of ``nnlib._reference.dropout`` for key ``(seed_k, offset_k + t, row)`` at
update ``t`` (``set_dropout``); the layer reads D, its ``dW`` multiplies D, and the
gradient with respect to H is that with respect to D times the same ``m / (1 - rate)``
(several dropouts at one position: in order forward, in reverse backward)::

    forward     H_0 = drop_0(X[rows]),  H_l = drop_l(g_l(H_{l-1} W_l + b_l))

The activation's derivative is taken from the layer's own output, before the dropout.
``loss_grad`` is the model at inference (no dropout) unless given ``train_step``.

The compiled loop computes the last form as one GEMM with ``beta = 1 - lr (l2_eff + wd)``;
the twin applies the rule itself. For finite weights the two differ by rounding only; an
infinite weight stays infinite in the fused form, ``(1 - lr wd) inf``, where the rule gives
``inf - lr wd inf = nan``. Either way the epoch ends with ``finite`` false.

With ``check_updates`` every parameter and optimizer state is checked after each step;
the first step that leaves one non-finite (an update can overflow although its gradient
is finite) stops the epoch with status 3, that step applied but not counted. ``finite``
in the result says whether all of them are finite at the end.

Arithmetic is float64 throughout, each layer's output and gradients rounded to the
network's dtype as the kernels store them; the compiled loop computes in that dtype, so
the two agree to a few rounding errors per operation (tolerances in the tests).
"""
import numpy as np

from nnlib._codes import (ACTIVATION_CODES, ACTIVATION_PARAMS, CLASS_LABEL_LOSSES,
                          EPOCH_STATUS, LOSS_CODES)
from nnlib._dropout_args import (check_batch_rows, check_dropout_args,
                                 check_dropout_counters, check_network_dropout)
from nnlib._optim_args import per_array_configs
from nnlib._reference import dense as _dense
from nnlib._reference.dropout import dropout as _dropout_map
from nnlib._reference import losses as _losses
from nnlib._reference import optim as _optim
from nnlib._reference.optim import state_slots  # one definition; part of this API
from nnlib._validation import (check_buffer, check_data, check_epoch_data,
                               check_fits_dtype, check_sample_weight,
                               check_weight_total, check_workspace_args, is_sparse)

__all__ = ["Network", "Workspace", "EpochSetup", "run_epoch", "loss_grad", "state_slots",
           "all_finite", "first_label_outside"]

STATUS_OK = EPOCH_STATUS["ok"]
STATUS_NONFINITE_LOSS = EPOCH_STATUS["nonfinite_loss"]
STATUS_NONFINITE_GRAD = EPOCH_STATUS["nonfinite_gradient"]
STATUS_NONFINITE_UPDATE = EPOCH_STATUS["nonfinite_update"]

# Overflow and NaN are reported through the status codes, as the kernels report them,
# not as NumPy's RuntimeWarnings.
_QUIET = np.errstate(over="ignore", invalid="ignore", divide="ignore")

_ACTIVATION_NAMES = {code: name for name, code in ACTIVATION_CODES.items()}
_LOSS_NAMES = {code: name for name, code in LOSS_CODES.items()}


class _ReadOnly:
    """Attributes set once by ``_set`` and read-only after, as the compiled classes'."""

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__}.{name} is read-only")

    def _set(self, **values):
        for name, value in values.items():
            object.__setattr__(self, name, value)


class Network(_ReadOnly):
    """The shape of a network of ``L`` dense layers.

    Parameters
    ----------
    sizes : sequence of L + 1 ints >= 1
        Layer widths ``[n_in, n_1, ..., n_L]``.
    kinds : sequence of L ints
        Activation codes (``nnlib._codes.ACTIVATION_CODES``).
    aparams : sequence of L floats
        Activation parameters (leaky_relu's slope, elu's alpha; unused for the others).
    dropout : sequence of (position, rate) pairs
        Inverted dropout in training on the input of layer ``position`` (L: the output).
    """

    def __init__(self, sizes, kinds, aparams, dropout=()):
        sizes, kinds = tuple(int(v) for v in sizes), tuple(int(v) for v in kinds)
        aparams = tuple(float(v) for v in aparams)
        if not len(sizes) == len(kinds) + 1 == len(aparams) + 1 >= 2:
            raise ValueError(f"a network of L layers needs L + 1 sizes, L kinds and L "
                             f"parameters; got {len(sizes)}, {len(kinds)}, {len(aparams)}")
        if min(sizes) < 1:
            raise ValueError(f"layer sizes must be >= 1; got {list(sizes)}")
        if not set(kinds) <= set(_ACTIVATION_NAMES):
            raise ValueError(f"unknown activation code in {list(kinds)}")
        if not np.isfinite(aparams).all():
            raise ValueError(f"activation parameters must be finite; got {list(aparams)}")
        pairs = check_network_dropout(dropout, len(kinds))[0]
        self._set(sizes=sizes, kinds=kinds, aparams=aparams, n_layers=len(kinds),
                  dropout=pairs)


class Workspace(_ReadOnly):
    """Buffers for steps of up to ``rows`` rows: ``H[l]``, ``dZ[l]`` (rows, sizes[l+1]),
    ``db[l]`` (sizes[l+1],), ``dW[l]`` (sizes[l], sizes[l+1]). After a step or a
    ``loss_grad`` call the network's output for its ``B`` rows is ``H[-1][:B]`` (the
    twin writes only that)."""

    def __init__(self, sizes, rows, n_target_cols, dtype):
        sizes, dt = check_workspace_args(sizes, rows, n_target_cols, dtype)
        pairs = list(zip(sizes[:-1], sizes[1:]))
        self._set(sizes=sizes, rows=int(rows), n_target_cols=int(n_target_cols), dtype=dt,
                  H=tuple(np.zeros((rows, m), dt) for _, m in pairs),
                  dZ=tuple(np.zeros((rows, m), dt) for _, m in pairs),
                  db=tuple(np.zeros(m, dt) for _, m in pairs),
                  dW=tuple(np.zeros((k, m), dt) for k, m in pairs))


class EpochSetup(_ReadOnly):
    """Everything one epoch reads and writes, checked once here as the compiled
    ``EpochSetup`` checks it (same errors: TypeError for a type or dtype, ValueError for
    the rest).

    Parameters
    ----------
    network : Network
    weights, biases : lists of L arrays
        The live parameters, (sizes[l], sizes[l+1]) and (sizes[l+1],), C-contiguous,
        writeable, one dtype; ``run_epoch`` updates them in place.
    states : list of 2 L entries, or None
        For W_1, b_1, W_2, ... the optimizer's state: None, or a flat array of
        ``slots * param.size`` values, slot-major (``slots = state_slots`` of that
        array's config).
    X : (N, sizes[0]) array
    y_target : (N, sizes[-1]) array, or (N, 0) for a class-label loss
    y_label : (N,) int64 labels in [0, sizes[-1]) for a class-label loss, else length >= 1
    workspace : Workspace
        At least ``min(batch_size, N)`` rows.
    loss_kind : int
        ``nnlib._codes.LOSS_CODES`` value.
    batch_size : int >= 1
    margin : float >= 0
        hinge_loss's margin.
    l2 : float >= 0
        L2 strength on the weights; ``l2_per_batch`` divides it by each batch's length.
    optimizer : dict, sequence of 2 L dicts, or None
        The optimizer's ``config()`` for every array, or one config per W_1, b_1, W_2,
        ... (parameter groups; one ``kind``); None allows ``loss_grad`` only. Each
        array's state has ``state_slots`` of its own config.
    n_threads, update_threads : int >= 1
        Accepted and checked; the twin runs on one thread.
    loss_scale : float
        Factor on the reported data loss (not on the gradient).
    sample_weight : (N,) array or None
        Row weights (checked and copied): each batch's data loss is then the weighted
        mean ``sum_i w_i L_i / sum_i w_i`` and ``l2_per_batch`` divides by the batch's
        weight sum, as scikit-learn's MLP.
    """

    def __init__(self, network, weights, biases, states, X, y_target, y_label, workspace,
                 loss_kind, batch_size, margin=1.0, l2=0.0, l2_per_batch=False,
                 optimizer=None, n_threads=1, update_threads=1, loss_scale=1.0,
                 sample_weight=None):
        L, sizes = network.n_layers, network.sizes
        if loss_kind not in _LOSS_NAMES:
            raise ValueError(f"unknown loss code {loss_kind}")
        labels = _LOSS_NAMES[loss_kind] in CLASS_LABEL_LOSSES
        weights, biases = tuple(weights), tuple(biases)
        dt, N = check_epoch_data(sizes, weights, biases, X, y_target, y_label, labels)
        if workspace.sizes != sizes or workspace.dtype != dt:
            raise ValueError(f"the workspace is for sizes {list(workspace.sizes)} "
                             f"{workspace.dtype}; the network has {list(sizes)} {dt}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        tcols = 0 if labels else sizes[-1]
        if workspace.rows < min(batch_size, N) or workspace.n_target_cols < tcols:
            raise ValueError(f"the workspace holds {workspace.rows} rows of "
                             f"{workspace.n_target_cols} targets; batches need "
                             f"{min(batch_size, N)} of {tcols}")
        if not (margin >= 0 and l2 >= 0 and np.isfinite([margin, l2, loss_scale]).all()):
            raise ValueError(f"margin and l2 must be finite and >= 0, loss_scale finite; "
                             f"got {margin}, {l2}, {loss_scale}")
        # l2 W is formed in the weights' dtype's range (a float32 l2 beyond FLT_MAX
        # made inf * 0 = NaN where the double product is 0), as fit checks it
        check_fits_dtype(l2, "l2", dt)
        if n_threads < 1 or update_threads < 1:
            raise ValueError("n_threads and update_threads must be >= 1")
        states = (None,) * (2 * L) if states is None else tuple(states)
        if len(states) != 2 * L:
            raise ValueError(f"states needs {2 * L} entries (W1, b1, ...); got "
                             f"{len(states)}")
        self._set(network=network, weights=weights, biases=biases, states=states, X=X,
                  y_target=y_target, y_label=y_label, workspace=workspace,
                  loss_kind=int(loss_kind), batch_size=int(batch_size),
                  margin=float(margin), l2=float(l2), l2_per_batch=bool(l2_per_batch),
                  optimizer=None, n_threads=int(n_threads),
                  update_threads=int(update_threads), loss_scale=float(loss_scale),
                  sample_weight=_weights(sample_weight, N, dt))
        _check_sparse_input_dropout(network, X)
        self.set_dropout([0] * len(network.dropout), [0] * len(network.dropout))
        if optimizer is not None:
            self.set_optimizer(optimizer)
        elif any(s is not None for s in states):
            raise ValueError("states given without an optimizer config")

    def set_optimizer(self, config):
        """Use optimizer ``config`` from now on (e.g. a new lr between epochs): one config
        dict for every array, or a sequence of 2 L, one per W1, b1, W2, b2, ... (one
        ``kind``); each array's state must fit its own config's layout."""
        configs, stored = per_array_configs(config, 2 * self.network.n_layers)
        params = [p for pair in zip(self.weights, self.biases) for p in pair]
        for i, (p, s, c) in enumerate(zip(params, self.states, configs)):
            slots = state_slots(c)
            if slots == 0:
                if s is not None and s.size != 0:
                    raise ValueError(f"states[{i}] is given but the optimizer keeps no "
                                     f"state for it")
            elif s is None:
                raise ValueError(f"the optimizer keeps {slots} state rows; states[{i}] "
                                 f"is None")
            else:
                check_buffer(s, f"states[{i}]", p.dtype, (slots * p.size,), True)
        self._set(optimizer=stored)

    def set_dropout(self, seeds, offsets):
        """Seeds and counter offsets of the dropouts (ints in [0, 2**64)): the mask of
        dropout k at update t has key ``(seeds[k], offsets[k] + t mod 2**64, row)``."""
        seeds, offsets = check_dropout_counters(seeds, offsets,
                                                len(self.network.dropout))
        self._set(dropout_seeds=seeds, dropout_offsets=offsets)

    def set_data(self, X, y_target, y_label, sample_weight=None):
        """Train on other rows (and weights) from now on (same widths, dtype and kind of
        targets); the weights, states, workspace and settings stay."""
        labels = _LOSS_NAMES[self.loss_kind] in CLASS_LABEL_LOSSES
        dt, N = check_data(self.network.sizes, X, y_target, y_label, labels)
        if dt != self.workspace.dtype:
            raise TypeError(f"X has dtype {dt}; this setup trains in "
                            f"{self.workspace.dtype}")
        if self.workspace.rows < min(self.batch_size, N):
            raise ValueError(f"the workspace holds {self.workspace.rows} rows; batches "
                             f"need {min(self.batch_size, N)}")
        _check_sparse_input_dropout(self.network, X)
        self._set(X=X, y_target=y_target, y_label=y_label,
                  sample_weight=_weights(sample_weight, N, dt))

    def release_data(self):
        """Drop the references to the data; ``set_data`` binds new data."""
        tcols = 0 if _LOSS_NAMES[self.loss_kind] in CLASS_LABEL_LOSSES else \
            self.network.sizes[-1]
        dt = self.workspace.dtype
        self._set(X=np.empty((0, self.network.sizes[0]), dt),
                  y_target=np.empty((0, tcols), dt), y_label=np.empty(0, np.int64),
                  sample_weight=None)


def _check_sparse_input_dropout(network, X):
    if is_sparse(X) and network.dropout and network.dropout[0][0] == 0:
        raise ValueError("dropout on the input (position 0) needs a dense X; X is sparse")


def _weights(sample_weight, N, dt):
    return None if sample_weight is None else check_sample_weight(sample_weight, N, dt)


# ------------------------------------------------------------------ the math


def _layers(network):
    """(activation name, its parameter or None) of each layer, as the dense twin takes."""
    return [(_ACTIVATION_NAMES[k], a if _ACTIVATION_NAMES[k] in ACTIVATION_PARAMS else None)
            for k, a in zip(network.kinds, network.aparams)]


def _drop(setup, p, A, t, vjp=False, rows=None):
    """``A`` through the dropouts at position ``p`` with the masks of update ``t`` (None:
    at inference, the identity); ``vjp``: in reverse order (the backward pass). Row i of
    ``A`` is row i of the batch, or row ``rows[i]`` (``loss_grad``'s ``batch_rows``)."""
    ks = [k for k, (pos, _) in enumerate(setup.network.dropout) if pos == p]
    if t is None or not ks:
        return A
    for k in (reversed(ks) if vjp else ks):
        rate = setup.network.dropout[k][1]
        counter = (int(setup.dropout_offsets[k]) + int(t)) % 2 ** 64
        seed = int(setup.dropout_seeds[k])
        if rows is None:
            A = _dropout_map(A, rate, seed, counter)
        else:               # each row with its own mask row: the twin says it plainly
            A = np.concatenate([_dropout_map(A[i:i + 1], rate, seed, counter, row0=int(r))
                                for i, r in enumerate(rows)]).reshape(A.shape)
    return A


def _forward(setup, X, t=None, rows=None):
    """(ins, outs): ``ins[l]`` what layer l reads (``ins[L]``: what the loss reads) and
    ``outs[l]`` its own output ``H_l``, each in the network's dtype; the dropouts apply
    with the masks of update ``t`` (None: none) of the batch rows ``rows`` (None: row i
    is row i). Sparse rows as the dense matrix they
    stand for: the twin states the math, not the O(nnz) way."""
    ins, outs = [_drop(setup, 0, X.toarray() if is_sparse(X) else X, t, rows=rows)], []
    for l, ((act, param), W, b) in enumerate(zip(_layers(setup.network), setup.weights,
                                                 setup.biases)):
        outs.append(_dense.dense_forward(ins[-1], W, b, act, param))
        ins.append(_drop(setup, l + 1, outs[-1], t, rows=rows))
    return ins, outs


def _data_loss(setup, out, rows):
    """Mean loss over the rows of the output ``out`` and its gradient (float64); with
    ``setup.sample_weight`` the weighted mean ``sum_i w_i L_i / sum_i w_i``."""
    name = _LOSS_NAMES[setup.loss_kind]
    if name in CLASS_LABEL_LOSSES:
        y = setup.y_label[rows]
    else:
        y = setup.y_target[rows]
    z = out.astype(np.float64)
    c = z.shape[1]
    # the losses twin averages over all B * c outputs for the logistic loss; the
    # network's loss sums over the c outputs of a row (independent binary labels)
    per_output = c if name == "logistic_loss" else 1
    if setup.sample_weight is None:
        value, dout = _losses.loss_and_grad(name, z, y, setup.margin)
        return value * per_output, dout * per_output
    w = setup.sample_weight[rows].astype(np.float64)
    losses, grads = zip(*(_losses.loss_and_grad(name, z[i:i + 1], y[i:i + 1],
                                                setup.margin) for i in range(len(rows))))
    # each one-row loss is that row's loss; its gradient that of the row's loss
    value = float(np.dot(w, losses)) / w.sum() * per_output
    dout = np.concatenate(grads).astype(np.float64) * (w[:, None] / w.sum()) * per_output
    return value, dout


def _backward(setup, ins, outs, dout, t=None, rows=None):
    """(dWs, dbs): ``D_{l-1}^T dZ_l`` and ``sum dZ_l`` of every layer (no L2 term), back
    through the masks of update ``t``."""
    L, dt = setup.network.n_layers, outs[-1].dtype
    dWs, dbs = [None] * L, [None] * L
    dH = dout.astype(dt)            # the kernels store dH_L in the network's dtype
    for l, (act, param) in reversed(list(enumerate(_layers(setup.network)))):
        dH = _drop(setup, l + 1, dH, t, vjp=True, rows=rows)
        dH, dWs[l], dbs[l] = _dense.dense_backward(ins[l], setup.weights[l], outs[l],
                                                   dH, act, param)
    return dWs, dbs


def _penalty(weights, l2):
    """``l2 / 2 * sum ||W_l||^2``; exactly 0 for l2 = 0 (also for weights of inf)."""
    if l2 == 0.0:
        return 0.0
    return 0.5 * l2 * sum(float(np.sum(W.astype(np.float64) ** 2)) for W in weights)


def _with_l2(dW, W, l2):
    """``dW + l2 W`` formed in float64 and rounded once to W's dtype, as the compiled
    loop stores it (a float32 sum beyond FLT_MAX is inf there and here alike); ``dW`` as
    it is for l2 = 0, as the compiled loop and the optimizers' weight decay (torch.optim's
    too): ``0 W`` would make the gradient of an infinite weight NaN."""
    if l2 == 0.0:
        return dW.astype(np.float64)
    with np.errstate(over="ignore"):            # an inf is the step's to report
        return (dW.astype(np.float64) + l2 * W.astype(np.float64)).astype(W.dtype)


def _keep_output(setup, outs):
    """The kernels leave each layer's output in the workspace; so does the twin."""
    B = outs[0].shape[0]
    for H, buf in zip(outs, setup.workspace.H):
        buf[:B] = H


def _update(configs, params, grads, states, t):
    """``optim_step`` on every parameter by its own config (flat views, state rows
    slot-major)."""
    for config, p, g, s in zip(configs, params, grads, states):
        n = p.size
        state = np.empty((0, n), p.dtype) if s is None else s.reshape(-1, n)
        _optim.optim_step(config, p.reshape(-1), np.ravel(g), state, t, 1)


def _all_finite_arrays(arrays):
    return all(a is None or bool(np.isfinite(a).all()) for a in arrays)


@_QUIET
def run_epoch(setup, order, step0, max_steps=-1, check_updates=False, loss_sum=0.0,
              counters=None):
    """One epoch of mini-batch training in place on ``setup``'s weights, biases and states.

    Parameters
    ----------
    setup : EpochSetup
        This module's or the compiled one (only its attributes are read).
    order : (n,) int64 array
        Rows of ``setup.X`` in training order; batches are ``order[0:B]``,
        ``order[B:2B]``, ... (the last one may be shorter).
    step0 : int
        Updates taken before this call: this call's first step is ``t = step0 + 1``.
    max_steps : int, default -1
        Stop after this many steps (< 0: the whole order).
    check_updates : bool, default False
        Check every parameter and state after each step (status 3, see below).
    loss_sum : float, default 0.0
        Where the loss sum starts (an epoch run in several calls passes the sum so far).
    counters : list, optional
        Objects whose ``step`` is set to the step count after the call.

    Returns
    -------
    loss_sum : float
        ``loss_sum`` plus, over the completed steps, the reported batch loss times its
        length.
    n_seen : int
        Rows those steps covered.
    steps : int
        Completed steps.
    status : int
        ``nnlib._codes.EPOCH_STATUS``: 0 ok; 1 a non-finite loss, 2 a non-finite
        gradient (that step not applied, the epoch ends); 3 with ``check_updates``: the
        step after ``steps`` left a parameter or state non-finite (that step applied).
        (4 and 5, a label or row index changed during the call, cannot happen here:
        NumPy indexing checks every index.)
    finite : bool
        Every weight, bias and state is finite at the end.
    """
    config = setup.optimizer
    if config is None:
        raise ValueError("this EpochSetup has no optimizer config (set_optimizer)")
    # one config per array (a compiled setup is read through its ``optimizer`` too)
    setup_configs = per_array_configs(config, 2 * setup.network.n_layers)[0]
    order = np.asarray(order)
    if order.dtype != np.int64 or order.ndim != 1:
        raise ValueError("order must be a 1-d int64 array")
    if setup.workspace.rows < min(setup.batch_size, order.size):
        raise ValueError(f"batches of {min(setup.batch_size, order.size)} rows exceed the "
                         f"workspace's {setup.workspace.rows}")
    if step0 < 0:
        raise ValueError(f"step0 must be >= 0; got {step0}")
    if order.size and not (0 <= order.min() and order.max() < setup.X.shape[0]):
        raise ValueError(f"order must hold row indices in [0, {setup.X.shape[0]})")
    weights, biases = list(setup.weights), list(setup.biases)
    params = [p for pair in zip(weights, biases) for p in pair]
    states = list(setup.states)
    max_steps = order.size + 1 if max_steps < 0 else max_steps
    n_seen, steps, status = 0, 0, STATUS_OK
    for start in range(0, order.size, setup.batch_size):
        if steps >= max_steps:
            break
        rows = order[start:start + setup.batch_size]
        B = rows.size
        t = step0 + steps + 1               # this step's update number (and masks)
        ins, outs = _forward(setup, setup.X[rows], t)
        _keep_output(setup, outs)
        data, dout = _data_loss(setup, ins[-1], rows)
        if not np.isfinite(data):
            status = STATUS_NONFINITE_LOSS
            break
        dWs, dbs = _backward(setup, ins, outs, dout, t)
        if not _all_finite_arrays(dbs):
            status = STATUS_NONFINITE_GRAD
            break
        norm = B if setup.sample_weight is None else \
            float(setup.sample_weight[rows].astype(np.float64).sum())
        l2_eff = setup.l2 / norm if setup.l2_per_batch else setup.l2
        loss = setup.loss_scale * data
        if l2_eff != 0.0:
            loss += _penalty(weights, l2_eff)
            if not np.isfinite(loss):       # the penalty overflows, the data loss did not
                status = STATUS_NONFINITE_LOSS
                break
        grads = [g for dW, db, W in zip(dWs, dbs, weights)
                 for g in (_with_l2(dW, W, l2_eff), db)]
        _update(setup_configs, params, grads, states, t)
        if check_updates and not _all_finite_arrays(params + states):
            status = STATUS_NONFINITE_UPDATE
            break
        loss_sum += loss * B
        n_seen += B
        steps += 1
    for counter in counters or ():
        counter.step = step0 + steps + (status == STATUS_NONFINITE_UPDATE)
    return loss_sum, n_seen, steps, status, _all_finite_arrays(params + states)


@_QUIET
def loss_grad(setup, dWs, dbs, grads=True, train_step=None, batch_rows=None):
    """Loss and gradients over all rows of ``setup.X``.

    Parameters
    ----------
    setup : EpochSetup
        This module's or the compiled one; its workspace must hold N rows.
    dWs, dbs : lists of arrays shaped like the weights and biases
        Receive ``dW_l = H_{l-1}^T dZ_l + l2 W_l`` and ``db_l = sum dZ_l`` (with
        ``grads``; untouched otherwise).
    grads : bool, default True
        False: the forward pass and the loss only (the output is left in
        ``setup.workspace.H[-1][:N]``).
    train_step : int >= 1 or None, default None
        None: the model at inference (dropout off). An update number t: in training, with
        the masks ``run_epoch`` draws at update t (row i of X as row i of the batch).
    batch_rows : (N,) int array or None, default None
        With ``train_step``: row i of X takes the masks of row ``batch_rows[i]`` of the
        batch (a part of a batch split over several calls); None: those of row i.

    Returns
    -------
    loss : float
        ``loss_scale`` times the mean data loss, plus ``l2 / 2 * sum ||W_l||^2`` (``l2``
        as given, never divided by N). The gradients are those of the unscaled loss.
    status : int
        1 if the data loss is not finite, else 2 if a ``db_l`` is not finite, else 0.
        The gradients are written either way.
    """
    N = setup.X.shape[0]
    if train_step is not None:
        check_dropout_args(0.0, 0, train_step, 0)
        if train_step < 1:
            raise ValueError(f"train_step must be >= 1 (an update number); got "
                             f"{train_step}")
    rows = check_batch_rows(batch_rows, N, train_step)
    if N < 1:
        raise ValueError("loss_grad needs at least one row")
    if setup.sample_weight is not None:     # a weighted mean over all N rows
        check_weight_total(setup.sample_weight, f"the sample weights of loss_grad's "
                                                f"{N} rows")
    if setup.workspace.rows < N:
        raise ValueError(f"loss_grad over {N} rows needs a workspace of as many; it has "
                         f"{setup.workspace.rows}")
    if len(dWs) != len(setup.weights) or len(dbs) != len(setup.biases):
        raise ValueError("dWs and dbs need one array per layer")
    for l, (W, b) in enumerate(zip(setup.weights, setup.biases)):
        check_buffer(dWs[l], f"dWs[{l}]", W.dtype, W.shape, True)
        check_buffer(dbs[l], f"dbs[{l}]", b.dtype, b.shape, True)
    ins, outs = _forward(setup, setup.X, train_step, rows)
    _keep_output(setup, outs)
    loss, dout = _data_loss(setup, ins[-1], np.arange(N))
    status = STATUS_OK if np.isfinite(loss) else STATUS_NONFINITE_LOSS
    if grads:
        grad_W, grad_b = _backward(setup, ins, outs, dout, train_step, rows)
        if status == STATUS_OK and not _all_finite_arrays(grad_b):
            status = STATUS_NONFINITE_GRAD
        for l, W in enumerate(setup.weights):
            dWs[l][...] = _with_l2(grad_W[l], W, setup.l2)
            dbs[l][...] = grad_b[l]
    return setup.loss_scale * loss + _penalty(setup.weights, setup.l2), status


def all_finite(X):
    """True when the 2-d array ``X`` holds no NaN or +-inf."""
    return bool(np.isfinite(X).all())


def first_label_outside(y, n_classes):
    """Index of the first label of the int64 vector ``y`` outside ``[0, n_classes)``,
    or -1."""
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    return int(bad[0]) if bad.size else -1
