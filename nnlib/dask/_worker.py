"""What runs on a dask worker: shards of validated data, and the two kinds of work the
runs ask of a shard (one step's gradient; a round of local training).

Every function here is a pure function of its arguments: a task that dask re-runs on
another worker after one died gives the same result, which is what makes a resumed run
equal an uninterrupted one. The replica models and workspaces kept per worker
(``_REPLICAS``) are a cache of what the arguments describe, never state a result depends
on.

The model travels as a *skeleton* (:func:`skeleton`: widths, activations, dtype, the
dropout rates; no weights) inside the task, and its parameters as one flat vector, so a
shard can be rebuilt from its task alone and a step's parameters are one buffer on the
wire. The dropout masks travel as counters: each Dropout layer's seed and step count
(``drop``: a list of ``(seed, step)`` pairs, one per Dropout layer the compiled epoch
applies), so a re-run task draws the same masks.
"""
import copy
import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

__all__ = ["Shard", "skeleton", "replica_of", "flat_params", "set_flat",
           "build_shard", "shard_gradient", "shard_fault_cause", "local_round",
           "shard_dropout_seed"]


class Shard(NamedTuple):
    """Validated rows of the training data held by one worker.

    index : int
        Position of the shard in the data (gradients are summed in this order).
    X : ndarray (n, n_in)
        C-contiguous, the model's dtype, finite.
    y_target, y_label : ndarrays
        As ``Sequential._targets`` gives them for the loss.
    """
    index: int                      # type: ignore[assignment]   # shadows tuple.index
    X: np.ndarray
    y_target: np.ndarray
    y_label: np.ndarray

    @property
    def n(self) -> int:
        return self.X.shape[0]


def skeleton(model) -> tuple:
    """A Sequential's structure without its weights: a small, picklable tuple (a Dropout
    layer as its rate; its seed and step count travel with each task).

    Examples
    --------
    >>> import nnlib
    >>> from nnlib.layers import Dropout
    >>> skeleton(nnlib.Sequential([nnlib.Dense(2, 3, "relu"), Dropout(0.5)]))
    (('Dense', 2, 3, 'relu', None, 'float64'), ('Dropout', 0.5))
    """
    from nnlib.layers import Dropout
    return tuple(("Dropout", l.rate) if isinstance(l, Dropout) else
                 ("Dense", l.n_in, l.n_out, *l._act_args(), l.dtype.name)
                 for l in model.layers)


def replica_of(skel):
    """A Sequential of the skeleton's structure whose parameters are views into one flat
    zero vector; returns ``(model, flat)``."""
    from nnlib.layers import Dense, Dropout
    from nnlib.model import Sequential
    layers = [Dropout(spec[1]) if spec[0] == "Dropout" else
              Dense(spec[1], spec[2], spec[3], init="zeros", dtype=spec[5],
                    activation_param=spec[4])
              for spec in skel]
    model = Sequential(layers)
    flat = np.zeros(sum(p.size for p in model.params), model.dtype)
    o = 0
    for layer in layers:
        if not isinstance(layer, Dense):
            continue
        for name in ("W", "b"):
            a = getattr(layer, name)
            setattr(layer, name, flat[o:o + a.size].reshape(a.shape))
            o += a.size
    return model, flat


def flat_params(params) -> np.ndarray:
    """The arrays of ``params`` (``[W1, b1, ...]``) as one new flat vector."""
    return np.concatenate([p.reshape(-1) for p in params])


def set_flat(arrays, flat) -> None:
    """Copy the flat vector ``flat`` into the arrays of ``arrays``, in order."""
    o = 0
    for a in arrays:
        a.reshape(-1)[...] = flat[o:o + a.size]
        o += a.size
    if o != flat.size:
        raise ValueError(f"a flat vector of {flat.size} values for arrays of {o}")


def build_shard(skel, loss, index, row0, X_blocks, y_blocks) -> Shard:
    """Validate and join the blocks of one shard (rows ``row0 ...`` of the data), as
    ``Sequential.fit`` validates its X and y; errors name the global rows."""
    from nnlib.exceptions import LabelError, NonFiniteError
    model, _ = replica_of(skel)
    X = X_blocks[0] if len(X_blocks) == 1 else np.concatenate(X_blocks)
    y = y_blocks[0] if len(y_blocks) == 1 else np.concatenate(y_blocks)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"shard {index}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    # the checks number the rows of the shard they see: say where it starts, for a bad
    # label or target as for a bad X row
    where = f" (row numbers within the shard that starts at row {row0} of the data)"
    try:
        X = model._inputs(X, finite=True)
    except NonFiniteError as exc:
        raise NonFiniteError(f"{exc}{where}") from None
    try:
        yt, yl = model._targets(y, loss, X.shape[0])
    except (LabelError, NonFiniteError) as exc:
        raise type(exc)(f"{exc}{where}") from None
    return Shard(index, X, yt, yl)


# Per worker process: replica models and their workspaces, by (run token, shard index).
# A cache: bounded, rebuilt from the task's arguments when missing.
_REPLICAS: "OrderedDict[tuple, dict]" = OrderedDict()
_REPLICAS_LOCK = threading.Lock()
_REPLICAS_MAX = 16


def _replica(token, index, skel):
    """This worker's replica for (run, shard), and a lock that serialises its use."""
    key = (token, index)
    with _REPLICAS_LOCK:
        entry = _REPLICAS.get(key)
        if entry is None:
            model, flat = replica_of(skel)
            entry = {"model": model, "flat": flat, "lock": threading.Lock()}
            _REPLICAS[key] = entry
            while len(_REPLICAS) > _REPLICAS_MAX:
                _REPLICAS.popitem(last=False)
        else:
            _REPLICAS.move_to_end(key)
    return entry


def forget(token) -> int:
    """Drop this worker's replicas of run ``token``; the number dropped."""
    with _REPLICAS_LOCK:
        keys = [k for k in _REPLICAS if k[0] == token]
        for k in keys:
            del _REPLICAS[k]
    return len(keys)


def shard_dropout_seed(seed: int, index: int) -> int:
    """The mask seed of shard ``index``'s copy of a Dropout layer whose seed is ``seed``
    (model averaging): ``SeedSequence(seed).spawn(index + 1)[index]``'s first 64-bit
    word, so the workers' masks are independent streams, each a function of the layer's
    seed and the shard alone.

    Examples
    --------
    >>> import numpy as np
    >>> child = np.random.SeedSequence(7).spawn(2)[1]
    >>> shard_dropout_seed(7, 1) == int(child.generate_state(1, np.uint64)[0])
    True
    """
    return int(np.random.SeedSequence(int(seed), spawn_key=(int(index),))
               .generate_state(1, np.uint64)[0])


def _part_setup(entry, shard, params, rows, loss, margin, drop):
    """The compiled setup of this shard's part of one step (the rows ``rows``, the
    replica ``entry`` holding ``params``; with dropout, each Dropout layer's
    ``(seed, step)`` of ``drop`` as update 1 of offsets ``step - 1``, so the mask
    counter of each layer is its step); ``(setup, dropout)``. Called holding the
    replica's lock."""
    from nnlib._codes import loss_code
    from nnlib.training import compiled_train, network_of
    train = compiled_train()
    k = rows.shape[0]
    model, flat = entry["model"], entry["flat"]
    np.copyto(flat, params, casting="no")
    ws = entry.get("ws")
    if ws is None or ws.rows < k:
        ws = entry["ws"] = train.Workspace(model._sizes(), k, shard.y_target.shape[1],
                                           model.dtype)
    Xb = shard.X[rows]
    ytb = shard.y_target[rows]
    ylb = shard.y_label[rows] if shard.y_target.shape[1] == 0 else shard.y_label
    network = network_of(model)
    setup = train.EpochSetup(network, model.params[0::2], model.params[1::2], None,
                             Xb, ytb, ylb, ws, loss_code(loss), k, margin, 0.0)
    if network.dropout:
        setup.set_dropout([sd for sd, _ in drop], [(st - 1) % 2**64 for _, st in drop])
    return setup, bool(network.dropout)


def shard_gradient(shard: Shard, params: np.ndarray, rows: np.ndarray,
                   positions: np.ndarray, batch_len: int, token, skel, loss: str,
                   margin: float, drop):
    """This shard's part of one step: the data loss and gradient over ``rows`` (local
    indices, the rows of the global batch this shard holds, at ``positions`` in it),
    scaled so that the parts of all shards add up to the global batch's mean.

    With dropout (``drop``: the ``(seed, step)`` of each Dropout layer) each row takes
    the masks of its position in the global batch at that step (``loss_grad``'s
    ``batch_rows``), the masks single-process ``fit`` draws for that row.

    Returns ``(loss_sum, flat_grad)``: the data loss summed over the rows (the mean
    times ``len(rows)``) and ``len(rows) / batch_len`` times the gradient of the mean
    over them, as one flat vector ordered like ``params``. L2 is not included (the
    client adds it once). ``(0.0, None)`` when the batch holds no row of this shard.
    """
    from nnlib.training import compiled_train
    k = rows.shape[0]
    if k == 0:
        return 0.0, None
    train = compiled_train()
    entry = _replica(token, shard.index, skel)
    with entry["lock"]:
        setup, dropout = _part_setup(entry, shard, params, rows, loss, margin, drop)
        model, flat = entry["model"], entry["flat"]
        grad = np.empty_like(flat)
        views = [grad[o:o + p.size].reshape(p.shape)
                 for o, p in zip(np.cumsum([0] + [p.size for p in model.params]),
                                 model.params)]
        if dropout:
            value, _status = train.loss_grad(setup, views[0::2], views[1::2],
                                             train_step=1, batch_rows=positions)
        else:
            value, _status = train.loss_grad(setup, views[0::2], views[1::2])
    # a non-finite part shows in the sum; the client refuses that step
    grad *= k / batch_len
    return float(value) * k, grad


def shard_fault_cause(shard: Shard, params: np.ndarray, rows: np.ndarray,
                      positions: np.ndarray, token, skel, loss: str, margin: float, drop,
                      first: bool):
    """Why this shard's part of a step (the arguments of :func:`shard_gradient`) is not
    finite: ``nnlib._divergence.cause_of_step`` over its rows at ``params``, with the
    masks of their positions in the global batch; ``first``: no update applied in the
    run before it. The phrase a local fit's warning names (the weights, or the learning
    rate), or None if the diagnosis itself fails. Run only after a refused step."""
    from nnlib._divergence import cause_of_step
    entry = _replica(token, shard.index, skel)
    with entry["lock"]:
        setup, dropout = _part_setup(entry, shard, params, rows, loss, margin, drop)
        try:
            return cause_of_step(setup, np.arange(rows.shape[0]), 1, first,
                                 mask_rows=positions if dropout else None)
        except Exception:       # noqa: BLE001 -- the fault is reported all the same
            return None


def local_round(shard: Shard, params: np.ndarray, states, t0: int, optimizer,
                order: np.ndarray, token, skel, loss: str, batch_size: int, margin: float,
                l2: float, l2_per_batch: bool, drop, first_round: bool = True):
    """Train a replica from ``params`` (and the optimizer's ``states`` at step ``t0``)
    with the compiled epoch over the shard's rows ``order``; return what it ends with.

    The replica's Dropout layers (``drop``: each one's ``(seed, step)`` on the client)
    draw the masks of seed ``shard_dropout_seed(seed, shard.index)`` from count ``step``
    on: a stream of this shard's own.

    Returns ``(flat params, states, steps, loss_sum, rows, fault, cause)`` (``states``
    as flat vectors in the optimizer's order, None without state; ``fault`` None or what
    became non-finite, the params then being those of the last finite step, and
    ``cause`` why, as ``nnlib._divergence`` finds it; ``first_round``: no round was
    averaged in before, so the round starts from the weights given to fit).
    """
    from nnlib.training import TrainingRun, dropout_layers
    entry = _replica(token, shard.index, skel)
    with entry["lock"]:
        model, flat = entry["model"], entry["flat"]
        np.copyto(flat, params, casting="no")
        opt = copy.deepcopy(optimizer)      # stateless: the client sends it reset
        opt.reset()
        if states is not None:
            for st, src in zip(opt._state_rows(model.params), states):
                st.reshape(-1)[...] = src
        opt.t = t0
        for layer, (seed, step) in zip([l for _, l in dropout_layers(model)], drop):
            layer.seed = shard_dropout_seed(seed, shard.index)
            layer.step = step
        with TrainingRun(model, shard.X, shard.y_target, shard.y_label, loss, opt,
                         batch_size=batch_size, margin=margin, l2=l2,
                         l2_per_batch=l2_per_batch, n_threads=1,
                         # a later round starts from averaged weights, not from those
                         # given to fit
                         given_weights=first_round) as run:
            result = run.run_epoch(np.ascontiguousarray(order, dtype=np.int64))
        out_states = (None if states is None else
                      [s.reshape(-1).copy() for s in opt._state_rows(model.params)])
        return (flat.copy(), out_states, result.steps, result.loss_sum, result.seen,
                result.fault, result.cause)
