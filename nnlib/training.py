"""One training run: the object between ``fit`` and the compiled epoch.

A :class:`TrainingRun` is built once per fit from data that is already validated. It
owns what every epoch of that fit shares: the compiled network description, one checked
:class:`nnlib._kernels.train.EpochSetup` with its workspace and the optimizer's state
arrays (kept per model between fits without the data, so a loop calling
``fit(epochs=1)`` only rebinds X and y), BLAS's thread count while it is entered, the
piece clock and the progress display. Its verbs:

* :meth:`TrainingRun.run_epoch` -- one epoch over a given sample order, in compiled
  pieces of about ``INTERRUPT_INTERVAL`` seconds (Ctrl-C is seen that often, a progress
  bar moves); the same batches, updates and loss sums however the epoch is cut;
* :meth:`TrainingRun.rewind` -- after an update overflowed, put the weights and the
  optimizer state back at the last finite step;
* :meth:`Evaluation.__call__` -- loss and accuracy on held-out data, its setup built once.

Concurrency: one run trains a model, and uses an optimizer, at a time. Entering a second
run on a model or optimizer that a running fit holds raises ConcurrentUseError (a
RuntimeError); the compiled setup refuses a second concurrent call in the same way.

``Sequential.fit`` (through :class:`nnlib.fit_loop.FitLoop`) and the scikit-learn
estimators both train through it; ``nnlib._reference.train`` is the NumPy twin of the
compiled epoch it calls.
"""
import operator
import threading
import time
from typing import NamedTuple, Optional

import numpy as np

from nnlib._codes import CLASS_LABEL_LOSSES, EPOCH_STATUS, loss_code
from nnlib._dense_args import activation_spec
from nnlib._kernels.aligned import copy_arrays
from nnlib._threads import (_at_fork_hooks, blas_threads, claim_all, complete,
                            count_fit_start, memory_owner, release_all, resolve_threads,
                            training_blas_threads, training_call)
from nnlib._validation import (NonFiniteError, check_batch_weights, check_fits_dtype,
                               check_weight_total, unit_scaled_weights)
from nnlib._weak_identity import WeakIdentityDict
from nnlib.layers import Dense, Dropout
from nnlib.metrics import accuracy

__all__ = ["TrainingRun", "EpochResult", "Evaluation", "BatchedEvaluation", "PieceClock",
           "StepClock", "INTERRUPT_INTERVAL",
           "compiled_train", "network_of", "dropout_layers"]

# Seconds between two points where Python can see Ctrl-C (and redraw a progress bar):
# the compiled loop runs without the GIL, so an epoch is cut into pieces this long.
INTERRUPT_INTERVAL = 0.1

# What EpochResult.fault says for each status that ends an epoch early.
FAULTS = {EPOCH_STATUS["nonfinite_loss"]: "loss",
          EPOCH_STATUS["nonfinite_gradient"]: "gradient",
          EPOCH_STATUS["nonfinite_update"]: "weights or optimizer state after an update"}
_OK = EPOCH_STATUS["ok"]
# An index the epoch was about to read had left its range (another thread wrote y or
# the order): raised, never a fault of the weights.
_BAD_INDEX = (EPOCH_STATUS["bad_label"], EPOCH_STATUS["bad_order"])


_TRAIN = None


def compiled_train():
    """The compiled epoch module, with BLAS resolved (imported on first use: ``import
    nnlib`` stays light)."""
    global _TRAIN
    if _TRAIN is None:
        from nnlib._kernels import blas, train
        blas.load()
        _TRAIN = train
    return _TRAIN



# Per model (weak keys: nothing outlives the model, nothing is pickled with it), in one
# record so that a fit looks the model up once: the compiled network description, the
# training workspace and the measured step rate, which a loop calling fit(epochs=1) would
# otherwise rebuild or re-measure every epoch. A workspace is taken out while a run uses
# it, so concurrent runs never share buffers; large ones are not kept. The rate is kept
# per workspace key (sizes, batch rows, dtype): it is what sets the first piece of the
# next fit.
class _Kept:
    """What the training runs of one model keep for its next fit: ``net``, (key,
    Network, the layers as read when it was built, whether they were compiled:
    :func:`_network_and_read`) or None; ``setup``, (key, EpochSetup without data, snapshot buffers) or None
    (while a run holds it, or when it was too large to keep); ``rates``, workspace key ->
    measured steps per second."""

    __slots__ = ("net", "setup", "rates")

    def __init__(self):
        self.net, self.setup, self.rates = None, None, {}


_KEPT = WeakIdentityDict()                  # model -> _Kept
_CACHE_LOCK = threading.Lock()


def kept_of(model):
    """The model's :class:`_Kept` record, made on first use."""
    kept = _KEPT.get(model)
    if kept is None:
        with _CACHE_LOCK:
            kept = _KEPT.setdefault(model, _Kept())
    return kept


def _forget_runs_in_forked_child():     # the parent's training threads are not there
    _CACHE_LOCK._at_fork_reinit()


_at_fork_hooks.append(_forget_runs_in_forked_child)
# A setup's buffers (workspace, optimizer state) are kept between fits when they are
# small in absolute terms, or small beside the parameters they train: a network whose
# weights take megabytes spends far longer per epoch than re-zeroing its buffers costs
# in memory, while rebuilding them costs page faults on every fit(epochs=1) call.
_WORKSPACE_KEEP_BYTES = 1 << 22
_WORKSPACE_KEEP_PER_PARAM_BYTE = 6


def dropout_layers(model):
    """The model's Dropout layers that the compiled epoch applies, in order (a rate of
    0 is the identity, left out), with each one's position: the number of Dense layers
    before it."""
    out, position = [], 0
    for layer in model.layers:
        if isinstance(layer, Dense):
            position += 1
        elif isinstance(layer, Dropout) and layer.rate > 0:
            out.append((position, layer))
    return out


def network_of(model, checked=False, kept=None):
    """The compiled ``Network`` of a Sequential (its Dense layers and the dropouts
    between them), checked against its live layers. ``checked``: the caller ran
    ``model._check_layers()`` and none of the user's code since (``fit``), so the
    stack's widths and dtype are known to agree; each layer's arrays are checked.
    ``kept``: the model's :func:`kept_of` record, when the caller has it."""
    return _network_and_read(model, checked, kept)[0]


def _network_and_read(model, checked=False, kept=None):
    """(:func:`network_of`'s Network, its key, the :func:`_layers_read` it was built
    from, equal to the model's now, and ``model.compiled``). The layers are read once:
    as read when the kept Network was built (and of the same sizes and dtype), they
    compute the same, passed :func:`_computation`'s checks on the same values and are
    as compiled (a layer's class and ``regularized`` decide it), so only a change pays
    for those walks, the first of which checks and converts each activation."""
    train = compiled_train()
    layers = model.layers
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    for layer in dense:
        layer._check_live()
    if not checked:
        model._check_layers()
    if kept is None:
        kept = kept_of(model)
    # the dtype too: activation_spec checks a parameter against it
    read = (_layers_read(model), tuple(model._sizes()),
            dense[0].W.dtype if dense else None)
    cached = kept.net
    if cached is not None and cached[2] == read:
        return cached[1], cached[0], read[0], cached[3]
    specs, dropout = _computation(model, dense)
    key = (read[1], specs, dropout)
    if cached is not None and cached[0] == key:
        net = cached[1]
    else:
        net = train.Network(list(key[0]), [code for code, _ in specs],
                            [param for _, param in specs], dropout)
    compiled = model.compiled
    kept.net = (key, net, read, compiled)
    return net, key, read[0], compiled


# what a run says when the layers it was built from changed under it
LAYERS_CHANGED = ("the model's layers changed during training (an activation, a Dropout "
                  "rate, a layer added or removed)")


def _computation(model, dense=None):
    """What the compiled network computes besides its sizes: each Dense layer's
    (activation code, parameter) and the dropouts' (position, rate)."""
    layers = model.layers
    if dense is None:
        dense = [layer for layer in layers if isinstance(layer, Dense)]
    specs = tuple(activation_spec(*l._act_args(), l.dtype) for l in dense)
    dropout = (tuple((p, layer.rate) for p, layer in dropout_layers(model))
               if len(dense) < len(layers) else ())
    return specs, dropout


def _layers_read(model):
    """What the compiled network is built from, as the layers hold it (unchecked, so
    cheap): each layer; a Dense layer's activation, its parameter as given and its
    ``regularized`` (whether it is compiled); a Dropout's rate. Equal lists mean the
    same network; unequal ones may still compute the same (a parameter set to its
    default), which :func:`_computation` decides."""
    return [(layer, layer.activation, layer._activation_param, layer.regularized)
            if isinstance(layer, Dense) else
            (layer, layer.rate) if isinstance(layer, Dropout) else (layer,)
            for layer in model.layers]


def _take_workspace(kept, key):
    """The workspace of the model's kept setup (``kept``: its :class:`_Kept`) if it has
    these sizes, else a new one."""
    with _CACHE_LOCK:
        setup, kept.setup = kept.setup, None
    if setup is not None and setup[0][-1] == key:
        return setup[1].workspace
    return compiled_train().Workspace(*key)


def _kept_setup(kept, key, params, states, config, X, y_target, y_label,
                sample_weight=None):
    """(setup, snapshot buffers) -- see below."""
    found = _kept(kept, key, params, states, config, X, y_target, y_label, sample_weight)
    return (None, None) if found is None else found


def _kept(kept, key, params, states, config, X, y_target, y_label, sample_weight=None):
    """The kept EpochSetup of ``kept`` (the model's :class:`_Kept`), rebound to this
    fit's data, when everything else about it is the same (``key``: network, loss,
    batch, L2, scales, workspace; and the very weight, bias and state arrays); None
    otherwise."""
    with _CACHE_LOCK:
        held = kept.setup
        if held is None or held[0] != key:
            return None
        kept.setup = None
    setup = held[1]
    same = (all(map(operator.is_, setup.weights, params[0::2]))
            and all(map(operator.is_, setup.biases, params[1::2]))
            and all(map(_same_memory, setup.states, states)))
    if not same:
        return None
    try:
        if setup.optimizer != config:
            setup.set_optimizer(config)
        setup.set_data(X, y_target, y_label, sample_weight)
    except (TypeError, ValueError):
        return None
    return setup, held[2]


def _same_memory(a, b):
    """Whether ``a`` and ``b`` (arrays or None) are one array, or views of the same memory
    with the same layout: each fit flattens an optimizer's ``(slots, size)`` state into a
    new view object (``_state_arrays``). While ``a`` lives it keeps its memory, so no
    other array can start at its address.

    Examples
    --------
    >>> s = np.zeros((2, 3)); _same_memory(s.reshape(-1), s.reshape(-1))
    True
    >>> _same_memory(s.reshape(-1), s.copy().reshape(-1)), _same_memory(None, None)
    (False, True)
    """
    if a is b:
        return True
    if a is None or b is None:
        return False
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


def _worth_keeping(kept_bytes, param_bytes):
    """Whether a setup whose workspace and optimizer states take ``kept_bytes`` is kept
    for the next fit of a model whose weights and biases take ``param_bytes``: when
    ``kept_bytes`` is at most 4 MiB, or at most 6 times ``param_bytes``.

    Examples
    --------
    >>> _worth_keeping(1 << 20, 0), _worth_keeping(12 << 20, 2 << 20)
    (True, True)
    >>> _worth_keeping(13 << 20, 2 << 20)
    False
    """
    return (kept_bytes <= _WORKSPACE_KEEP_BYTES
            or kept_bytes <= _WORKSPACE_KEEP_PER_PARAM_BYTE * param_bytes)


def _keep_setup(kept, key, setup, snapshot, reused=False):
    """Keep ``setup`` in ``kept`` (the model's :class:`_Kept`) for the model's next fit,
    without the caller's data, unless its buffers are large (:func:`_worth_keeping`).
    ``reused``: the setup came from the model's cache, so it was worth keeping then, and
    its arrays (the very same, whose sizes cannot change in place) still are."""
    if not reused:
        buffers = (sum(a.nbytes for a in setup.states if a is not None)
                   + setup.workspace.nbytes)
        params = (sum(a.nbytes for a in setup.weights)
                  + sum(a.nbytes for a in setup.biases))
        if not _worth_keeping(buffers, params):
            return
    setup.release_data()
    with _CACHE_LOCK:
        kept.setup = (key, setup, snapshot)


def check_fit_lrs(config, dtype):
    """Each learning rate of a fit's optimizer argument (one config, or one per array)
    fits ``dtype`` (the fused SGD step casts it), naming the array when they differ."""
    if isinstance(config, dict):
        check_fits_dtype(config["lr"], "optimizer lr", dtype)
        return
    for i, c in enumerate(config):
        check_fits_dtype(c["lr"], f"optimizer lr (of params[{i}])", dtype)


def _state_arrays(optimizer, config, params):
    """The optimizer's state of each parameter as one flat array (None without state);
    a non-finite state would stop the first epoch as if it had diverged. ``config``:
    one config, or one per parameter."""
    slots = compiled_train().state_slots
    if not (slots(config) if isinstance(config, dict) else any(map(slots, config))):
        return [None] * len(params)
    states = [s.reshape(-1) if s.size else None for s in optimizer._state_rows(params)]
    for i, st in enumerate(states):
        if st is not None and not np.isfinite(st).all():
            raise NonFiniteError(f"the optimizer's state for params[{i}] is not finite "
                                 "(left by a step on a non-finite gradient?); call "
                                 "optimizer.reset()")
    return states


class PieceClock:
    """How many steps the next compiled call runs: about ``interval`` seconds at the rate
    measured so far. The cut falls on whole batches, so training does not depend on it.

    Parameters
    ----------
    steps_per_epoch : int
        Steps in one full epoch; no piece is longer.
    interval : float
        Target seconds per piece.
    rate : float or None
        Steps per second, when known (a previous fit of the same model and sizes);
        without it the first piece is a probe of 1/64 of an epoch.

    Examples
    --------
    >>> clock = PieceClock(6400); clock.steps()
    100
    >>> clock.done(100, 0.01); clock.steps()      # 1e4 steps/s: 0.1 s is 1000 steps
    1000
    """

    def __init__(self, steps_per_epoch, interval=INTERRUPT_INTERVAL, rate=None):
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.interval, self.rate = interval, rate

    def steps(self):
        """Steps for the next piece."""
        if self.rate is None:
            return max(1, self.steps_per_epoch // 64)
        return min(self.steps_per_epoch, max(1, int(self.rate * self.interval)))

    def done(self, steps, seconds):
        """Record a piece of ``steps`` steps that took ``seconds``."""
        if seconds > 0 and steps:
            self.rate = steps / seconds


class StepClock(PieceClock):
    """A clock whose pieces are one step each (per-batch callbacks).

    Examples
    --------
    >>> clock = StepClock(6400); clock.done(1, 1e-5); clock.steps()
    1
    """

    def steps(self):
        return 1


class EpochResult(NamedTuple):
    """What one epoch did.

    loss_sum : float
        Sum over its steps of the reported batch loss times the batch length.
    seen : int
        Rows covered by the completed steps.
    steps : int
        Completed (applied) steps.
    fault : str or None
        None, or what became non-finite (a value of ``FAULTS``); the weights are those of
        the last finite step.
    cause : str or None
        With a fault, why (``nnlib._divergence``: the weights, sample_weight, or the
        update: lower the learning rate), found after the fault; else None.

    Examples
    --------
    >>> EpochResult(3.0, 6, 2, None).mean_loss
    0.5
    """
    loss_sum: float
    seen: int
    steps: int
    fault: Optional[str]
    cause: Optional[str] = None

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / self.seen if self.seen else float("nan")


# What a second fit of a busy model or optimizer is told to do instead.
_MODEL_BUSY = "it is being trained by another fit; train one model in one fit at a time"
_OPTIMIZER_BUSY = ("two fits cannot share one optimizer at the same time: give each fit "
                   "its own optimizer")
_SCHEDULE_BUSY = ("two fits cannot step one schedule at the same time: give each fit its "
                  "own schedule")
_LAYER_BUSY = ("a fit of another model that shares it trains it; train models that share "
               "layers one at a time")
_ARRAY_BUSY = ("another fit or an optimizer.step updates it; train models that share "
               "parameter arrays one at a time")


class ClaimedRun:
    """What every training run does on entering and leaving: claim the model, the
    optimizer, the model's layers and its parameter arrays (ConcurrentUseError, a
    RuntimeError, if a running fit holds any, or a running ``optimizer.step`` one of the
    arrays: README, "Threads and concurrency"), set BLAS's thread count to
    ``blas_threads``, and give all of it back, closing the progress display.

    Subclasses set ``model``, ``optimizer``, ``progress``, ``blas_threads`` and
    ``_threads = None``, and define an idempotent ``close`` (calling ``_release``).

    An interrupt can land between any two calls, also here: whatever part of
    ``__enter__`` ran is undone, and ``__exit__`` finishes ``close`` (running it again if
    the interrupt landed in it) before raising it. Claims name this run, so releasing is
    idempotent, and a claim outlives neither the run nor a teardown cut short at its
    very start.
    """

    _claimed = ()

    def __enter__(self):
        try:
            # the layers too: two models that share a layer would otherwise train its
            # arrays in two fits at once (each step's update lost to the other's)
            layers = [layer for layer in self.model.layers
                      if type(layer).__weakrefoffset__]
            # and the arrays (by the memory they lie in): another optimizer bound to
            # them would step them meanwhile (optimizer.step checks them, and claim_all
            # the steps running: nnlib._threads)
            arrays = [memory_owner(p) for p in self.model.params
                      if isinstance(p, np.ndarray)]
            self._claimed = (self.model, self.optimizer, *layers, *arrays)
            claim_all(((self.model, "the model", _MODEL_BUSY),
                       (self.optimizer, "the optimizer", _OPTIMIZER_BUSY),
                       *((layer, "a layer of the model", _LAYER_BUSY)
                         for layer in layers),
                       *((a, "a parameter array of the model", _ARRAY_BUSY)
                         for a in arrays)), self)
            # a predict in another thread that overlapped this fit sees a count move
            for obj in (self.model, self.optimizer, *layers):
                count_fit_start(obj)
            self._threads = blas_threads(self.blas_threads)
            self._threads.__enter__()
        except BaseException:
            complete(self._release)
            raise
        return self

    def __exit__(self, *exc):
        complete(self.close)
        return False

    def claim_schedule(self, schedule):
        """Claim ``schedule`` (a schedule object, and each part of one made of parts)
        for this run, released with the rest: a fit binds it to its optimizer and steps
        its epoch count, so a second fit sharing it meanwhile would rebind it to its own
        optimizer under the first and step the count of both (found by probe36: two
        threads' fits on one ExponentialLR, each fit's rates off by the other's
        epochs, the first's written into the second's optimizer)."""
        parts = [schedule, *getattr(schedule, "schedules", ())]
        parts = [p for p in parts if type(p).__weakrefoffset__]
        # named before they are claimed, as __enter__ names its objects: claim_all keeps
        # the parts before a refused one, and the release must reach them (else a
        # refused fit whose run outlives it, in a kept traceback, holds them)
        self._claimed = (*self._claimed, *parts)
        claim_all([(p, "the schedule", _SCHEDULE_BUSY) for p in parts], self)

    def _release(self):
        if self._threads is not None:
            self._threads.__exit__(None, None, None)
            self._threads = None
        release_all(self._claimed, self)
        if self.progress is not None:
            self.progress.close()


class TrainingRun(ClaimedRun):
    """Mini-batch training of a Sequential on validated data, one epoch at a time.

    Parameters
    ----------
    model : Sequential
        Trained in place: the run updates its layers' live W and b arrays.
    X : ndarray (n, n_in)
        C-contiguous, the model's dtype, finite (``Sequential._inputs``).
    y_target : ndarray (n, c) or (n, 0)
        Float targets, width 0 for a class-label loss (``Sequential._targets``).
    y_label : ndarray (n,) int64
        Class labels for a class-label loss (else length >= 1, unread).
    loss : str
        A name of ``nnlib._codes.LOSS_CODES``.
    optimizer : nnlib.optim optimizer
        Its state and step count ``t`` advance with every step.
    batch_size : int >= 1
        Larger than n: one batch of all rows.
    margin, l2, l2_per_batch, loss_scale, sample_weight
        As in :class:`nnlib._kernels.train.EpochSetup`.
    n_threads : int or None
        BLAS threads while the run is entered (None: the free cores; 1 for small
        products; see ``nnlib._threads.training_blas_threads``).
    progress : nnlib._progress.Progress, optional
        Drawn within and after each epoch.
    on_piece : callable ``(epoch, steps, loss_sum, seen) -> bool``, optional
        Called after each compiled piece with the epoch's counts so far; a true value
        ends the epoch there (``run_epoch`` then returns fewer steps).
    step_by_step : bool
        Run one step per compiled call (so ``on_piece`` sees every batch) instead of
        pieces of about ``INTERRUPT_INTERVAL`` seconds; the same updates either way.
    checked : bool
        The caller (``fit``) has just run ``model._check_layers()``, converted X to
        the model's dtype, and run none of the user's code since: :func:`network_of`
        need not check the stack again, and X's dtype is the model's.
    given_weights : bool, default True
        The run starts from the weights the user gave (a fault at its first update is
        then blamed on them, ``nnlib._divergence``); False for a run that starts from
        weights computed elsewhere (a Dask averaging round after the first).

    Examples
    --------
    >>> import numpy as np, nnlib
    >>> from nnlib.optim import SGD
    >>> model = nnlib.Sequential([nnlib.Dense(2, 3, "tanh", random_state=0),
    ...                           nnlib.Dense(3, 2, random_state=1)])
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]]); y = np.array([0, 1])
    >>> yt, yl = model._targets(y, "softmax_cross_entropy", 2)
    >>> with TrainingRun(model, X, yt, yl, "softmax_cross_entropy", SGD(lr=0.1),
    ...                  batch_size=1) as run:
    ...     result = run.run_epoch(np.array([1, 0]))
    >>> result.steps, result.fault
    (2, None)
    """

    # what a fault's cause calls the learning rate (the estimators: learning_rate_init)
    lr_name = "the learning rate"

    def __init__(self, model, X: np.ndarray, y_target: np.ndarray, y_label: np.ndarray,
                 loss: str, optimizer, *, batch_size: int, margin: float = 1.0,
                 l2: float = 0.0, l2_per_batch: bool = False, n_threads=None,
                 loss_scale: float = 1.0, progress=None, on_piece=None,
                 step_by_step: bool = False, sample_weight=None, checked: bool = False,
                 given_weights: bool = True):
        self.model, self.optimizer, self.progress = model, optimizer, progress
        self.on_piece = on_piece
        self._kept = kept = kept_of(model)
        # first: it makes replaced arrays usable; its sizes are the model's _sizes()
        network, key, self._layers_read, compiled = _network_and_read(model, checked, kept)
        # what the network computes (its key holds it), held against the model's layers
        # as _check_arrays runs: the compiled setup keeps training the network it was
        # built from
        self._computation = (key[1:], compiled)
        self.params = model.params
        # fit (``checked``) has just converted X to the model's dtype
        sizes, dtype = network.sizes, (X.dtype if checked else model.dtype)
        batch_size = min(batch_size, max(X.shape[0], 1))
        self._ws_key = (sizes, batch_size, y_target.shape[1], dtype)
        optimizer._bind(self.params)        # adopted if it has none; one step count
        # the update count this run starts from: a fault before any update of the run
        # is not the learning rate's (-1, no count: the weights are not the user's)
        self._t_start = optimizer._steps_of(self.params) if given_weights else -1
        # one config, or one per array (parameter groups with their own values)
        self._config = optimizer._fit_config(self.params)
        check_fit_lrs(self._config, dtype)
        states = _state_arrays(optimizer, self._config, self.params)
        # everything of the setup but the data: a fit that repeats it (a loop calling
        # fit(epochs=1)) reuses the model's kept setup and only rebinds X and y
        self._key = (network, loss_code(loss), batch_size, margin, l2,
                     l2_per_batch, loss_scale, self._ws_key)
        self.setup, self._snap = _kept_setup(kept, self._key, self.params, states,
                                             self._config, X, y_target, y_label,
                                             sample_weight)
        self._reused = self.setup is not None
        if self.setup is None:
            self.setup = compiled_train().EpochSetup(
                self._key[0], self.params[0::2], self.params[1::2], states, X,
                y_target, y_label, _take_workspace(kept, self._ws_key),
                loss_kind=self._key[1], batch_size=batch_size, margin=margin, l2=l2,
                l2_per_batch=l2_per_batch, optimizer=self._config,
                loss_scale=loss_scale, sample_weight=sample_weight)
        self._workspace = self.setup.workspace
        self.states = list(self.setup.states)
        self._dropouts = ([layer for _, layer in dropout_layers(model)]
                          if network.dropout else [])
        self.blas_threads = training_blas_threads(n_threads, batch_size, sizes)
        steps_per_epoch = -(-X.shape[0] // batch_size)
        self.clock = (StepClock(steps_per_epoch) if step_by_step else
                      PieceClock(steps_per_epoch,
                                 rate=kept.rates.get(self._ws_key)))
        self._threads = None
        # the optimizer's config and the model's arrays were read just now: until the
        # first epoch, a caller that ran none of the user's code since may say so
        # (run_epoch's ``fresh``)
        self._fresh = True

    def close(self):
        """Restore BLAS's thread count, release the model, and hand the workspace and
        the measured rate back to the model's caches. Idempotent: ``__exit__`` runs it
        again if an interrupt lands in it."""
        self._release()
        if self._workspace is not None:
            self._workspace = None
            _keep_setup(self._kept, self._key, self.setup, self._snap, self._reused)
        if self.clock.rate is not None and not isinstance(self.clock, StepClock):
            self._kept.rates[self._ws_key] = self.clock.rate

    # -- verbs ------------------------------------------------------------------------
    def run_epoch(self, order: np.ndarray, epoch: int = 0,
                  fresh: bool = False) -> EpochResult:
        """Train one epoch over the rows ``order`` (int64, in visiting order).

        Returns an :class:`EpochResult`. On a non-finite loss or gradient the failing
        step is not applied; on an overflowing update the weights and optimizer state are
        rewound to the last finite step (:meth:`rewind`); either way ``fault`` says what
        and training should stop. An interrupt (or any exception) leaves the weights,
        the optimizer state and ``optimizer.t`` consistent: ``t`` counts exactly the
        updates applied.

        Each epoch first follows the optimizer's current config and checks the model
        still holds the run's arrays and layers (a callback or schedule may have changed
        them);
        with batch callbacks (``on_piece``) the arrays are checked after each of their
        calls too.
        ``fresh=True`` says no code of the user's has run since the run was built (no
        callback, schedule, ...): the first epoch then uses what the constructor read.
        Another thread's change in that window takes effect at the next epoch, as one
        made just after the check would."""
        if not (fresh and self._fresh):
            self._sync_optimizer()
        self._fresh = False
        optimizer = self.optimizer
        t_epoch, taken0 = optimizer._steps_of(self.params), self.setup.steps_taken
        snapshot = self._snapshot()
        counters = optimizer._step_entries(self.params)
        rewound = False
        drop_steps0 = [layer.step for layer in self._dropouts]
        if self._dropouts:
            self._bind_dropout(t_epoch)
        try:
            total, seen, steps, status, finite, stop = self._pieces(order, epoch, t_epoch,
                                                                    counters)
            if status == _OK and finite:
                return EpochResult(total, seen, steps, None)
            size = self.setup.batch_size
            if not finite:
                rewound = True              # rewind sets optimizer.t itself
                steps = self.rewind(order[:stop], t_epoch, snapshot, steps)
                rows = order[steps * size:(steps + 1) * size]
            else:
                rows = order[seen:seen + size]
                if self.setup.sample_weight is not None:
                    # the refused step's batch: weights without a weighted mean are
                    # named as such (not as a learning rate too high)
                    check_batch_weights(self.setup.sample_weight, rows)
            return EpochResult(total, seen, steps,
                               FAULTS[status or EPOCH_STATUS["nonfinite_update"]],
                               self._cause(rows, t_epoch + steps))
        except BaseException:
            # an interrupt raised as a piece returns loses that piece's result: weights
            # or states it left non-finite are rewound here, as the result would have
            # had them (a second interrupt in the rewind leaves the snapshot's state)
            if not rewound and not self._finite():
                rewound = True
                self.rewind(order, t_epoch, snapshot, self.setup.steps_taken - taken0)
            raise
        finally:
            # the compiled calls have set the counts already (an interrupt cannot come
            # between an update and its count); this covers a piece that never ran
            if not rewound:
                complete(lambda: self._set_steps(counters,
                                                 t_epoch + self.setup.steps_taken - taken0))
            if self._dropouts:      # each layer has seen as many batches as were applied
                complete(lambda: self._advance_dropout_steps(drop_steps0, t_epoch))

    def rewind(self, order, t0, snapshot, steps):
        """Put the weights and optimizer state back at the last finite step of the
        ``steps`` updates applied from ``snapshot`` (taken at step ``t0``) over ``order``;
        return the number of steps kept (``optimizer.t`` follows).

        Restore the snapshot, replay with a check after every step to find the first
        update that overflowed, restore again and replay only the steps before it: two
        exact replays (the loop is deterministic for a fixed thread count). Interrupted,
        it leaves the snapshot's state (and ``t0``)."""
        train = compiled_train()
        good = 0
        try:
            self._restore(snapshot)
            with training_call():
                _, _, good, status, _ = train.run_epoch(self.setup, order, t0, steps,
                                                        True)
            self._restore(snapshot)
            if status != EPOCH_STATUS["nonfinite_update"]:
                good = 0        # a replay is exact, so this is unreachable; stay safe
            if good:
                with training_call():
                    good = train.run_epoch(self.setup, order, t0, good)[2]
        except BaseException:
            good = 0
            complete(lambda: self._restore(snapshot))   # whole, even if interrupted
            raise
        finally:
            complete(lambda: self.optimizer._set_steps(self.params, t0 + good))
        return good

    # -- helpers ----------------------------------------------------------------------
    def _cause(self, rows, t):
        """Why the step after update ``t`` (over ``rows``) became non-finite, at the
        weights it starts from (``nnlib._divergence``); run only after a fault."""
        from nnlib._divergence import cause_of_step
        try:
            # a squared-gradient state written negative mid-fit (optimizer.state)
            squares = getattr(self.optimizer, "_squares_cause", None)
            bad = squares(self.params) if squares is not None else None
            if bad is not None:
                return bad
            return cause_of_step(self.setup, rows, t + 1, first=t == self._t_start,
                                 lr_name=self.lr_name)
        except Exception:       # noqa: BLE001 -- the fault is reported all the same
            return None         # (without a cause: the learning rate is suggested)

    def _pieces(self, order, epoch, t_epoch, counters):
        """Run ``order`` in pieces of ``clock.steps()`` batches until it ends or a step
        is refused, each piece setting the step count of ``counters`` (the optimizer's
        entries); (loss_sum, seen, steps, status, finite, end of the last piece)."""
        train = compiled_train()
        clock, progress, batch_size = self.clock, self.progress, self.setup.batch_size
        n = order.shape[0]
        total, seen, steps, start = 0.0, 0, 0, 0
        while start < n:
            stop = min(n, start + clock.steps() * batch_size)
            tic = time.perf_counter()
            # the running sum goes in, so it adds up in the same order however cut
            with training_call():
                total, p_seen, p_steps, status, finite = train.run_epoch(
                    self.setup, order[start:stop], t_epoch + steps, loss_sum=total,
                    counters=counters)
            seen += p_seen
            steps += p_steps
            if status in _BAD_INDEX:
                what = "y" if status == EPOCH_STATUS["bad_label"] else "the sample order"
                raise RuntimeError(f"{what} changed during training: an index is outside "
                                   f"its range; the step that read it was not applied")
            if status or not finite:
                return total, seen, steps, status, finite, stop
            start = stop
            clock.done(p_steps, time.perf_counter() - tic)
            if progress is not None:
                progress.piece_done(epoch, steps, total, seen)
            if self.on_piece is not None:
                if self.on_piece(epoch, steps, total, seen):
                    return total, seen, steps, _OK, True, stop
                if stop < n:
                    self._check_arrays()    # the callback may have replaced them
        return total, seen, steps, _OK, True, n

    def _set_steps(self, counters, value):
        """Set the step count of the optimizer's entries of the run's arrays: the
        epoch's ``counters`` when no code of the user's ran within it (no ``on_piece``
        callback: the entries cannot have been replaced, e.g. by ``optimizer.reset()``),
        else those of them the optimizer still holds: an entry a callback replaced keeps
        its own count, and none is made here (making one checks the state's layout,
        which a callback may have changed: this runs as the epoch ends, interrupted or
        not)."""
        if self.on_piece is None:
            for entry in counters:
                entry.step = value
        else:
            held = self.optimizer._entries
            for p, entry in zip(self.params, counters):
                if held.get(id(p)) is entry:
                    entry.step = value

    def _bind_dropout(self, t_epoch):
        """Seed each dropout of the setup with its layer's seed, and offset its counter
        so that update ``t_epoch + 1`` uses the masks of the layer's ``step``: the same
        masks as the layer's own ``forward_train`` would draw, however the epoch is cut
        or replayed."""
        self.setup.set_dropout([layer.mask_seed for layer in self._dropouts],
                               [(layer.step - t_epoch - 1) % 2**64
                                for layer in self._dropouts])

    def _advance_dropout_steps(self, steps0, t_epoch):
        """Each Dropout layer's step count becomes its count at the epoch's start
        (``steps0``) plus the updates applied since ``t_epoch`` (the optimizer's count
        now), so the next fit continues its masks; idempotent (``complete`` may run it
        again after an interrupt)."""
        t_now = self.optimizer._steps_of(self.params)
        for layer, step0 in zip(self._dropouts, steps0):
            layer.step = (step0 + t_now - t_epoch) % 2**64

    def _state_replaced(self):
        """Whether the optimizer no longer keeps some state array the setup steps
        (``reset()`` or ``load_state_dict()`` made new ones)."""
        entries = self.optimizer._entries
        for p, st in zip(self.params, self.states):
            if st is None:
                continue
            e = entries.get(id(p))
            if e is None or e.ref() is not p or not _same_memory(st, e.rows.reshape(-1)):
                return True
        return False

    def _check_arrays(self):
        """Raise RuntimeError if the model or the optimizer no longer holds the arrays
        the setup steps (code of the user's, a callback, replaced them), or the model's
        layers no longer compute what the setup's network does."""
        params = self.model.params
        if len(params) != len(self.params) or not all(map(operator.is_, params,
                                                           self.params)):
            raise RuntimeError("the model's parameter arrays were replaced during "
                               "training; start a new fit")
        # the layers' own attributes first: _computation checks and converts them, a
        # few microseconds that after every batch callback were 5-9% of a fit's time
        if (_layers_read(self.model) != self._layers_read
                and (_computation(self.model), self.model.compiled) != self._computation):
            # the setup trains the network it was built from: an activation, dropout
            # rate or layer changed now would be ignored by the steps yet used by
            # predict, validation and save
            raise RuntimeError(f"{LAYERS_CHANGED}; the running fit cannot follow: "
                               f"start a new fit")
        if self._state_replaced():
            # the setup steps the arrays it was built on: stepping them on would leave
            # the optimizer's new state untouched while t counted the steps
            raise RuntimeError("the optimizer's state was replaced during training "
                               "(reset() or load_state_dict() in a callback?); start a "
                               "new fit")
        check = getattr(self.optimizer, "_check_fit_squares", None)
        if check is not None:
            check(self.params)

    def _sync_optimizer(self):
        """Make the setup follow the optimizer's current config (a schedule may have
        changed its lr), after checking the model still holds the arrays the setup points
        into."""
        self._check_arrays()
        config = self.optimizer._fit_config(self.params)
        if config == self._config:
            return
        check_fit_lrs(config, self.model.dtype)
        try:
            self.setup.set_optimizer(config)
        except ValueError as exc:
            raise ValueError(f"the optimizer changed during fit in a way its state "
                             f"cannot follow (e.g. momentum or amsgrad turned on): "
                             f"{type(self.optimizer).__name__} now keeps a different "
                             f"number of state arrays; start a new fit") from exc
        self._config = config

    def _snapshot(self):
        """The weights and optimizer states now, in buffers allocated once per setup."""
        if self._snap is None:
            self._snap = ([p.copy() for p in self.params],
                          [None if s is None else s.copy() for s in self.states])
        else:
            weights, states = self._snap
            copy_arrays(weights, self.params)
            copy_arrays(states, self.states)
        return self._snap

    def _finite(self):
        """Whether every weight and optimizer state of the run is finite."""
        return all(np.isfinite(a).all() for a in self.params + self.states
                   if a is not None)

    def _restore(self, snapshot):
        params, states = snapshot
        for p, s in zip(self.params, params):
            p[...] = s
        for st, s in zip(self.states, states):
            if st is not None:
                st[...] = s


class Evaluation:
    """Loss and accuracy of a Sequential on fixed, validated data (validation during
    fit), its compiled setup and workspace built once.

    Parameters
    ----------
    model : Sequential
    X, y_target, y_label : as for :class:`TrainingRun`
    loss : str
    margin : float
    n_threads : int or None
        Threads of the large elementwise passes.

    Calling it returns ``(mean loss, accuracy)`` without L2; the accuracy is None for
    squared_error; for logistic_loss a row counts as correct when every output's sign
    matches its 0/1 target (multilabel: exact match).

    Examples
    --------
    >>> import numpy as np, nnlib
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, init="zeros")])
    >>> X = np.ones((4, 2))
    >>> yt, yl = model._targets([0, 1, 1, 0], "softmax_cross_entropy", 4)
    >>> Evaluation(model, X, yt, yl, "softmax_cross_entropy")()     # log 2, ties -> 0
    (0.6931471805599453, 0.5)
    """

    def __init__(self, model, X: np.ndarray, y_target: np.ndarray, y_label: np.ndarray,
                 loss: str, margin: float = 1.0, n_threads=None):
        train = compiled_train()
        self.model, self.loss = model, loss
        self.params = model.params
        rows = max(X.shape[0], 1)
        ws = train.Workspace(model._sizes(), rows, y_target.shape[1], model.dtype)
        threads = resolve_threads(n_threads, X.shape[0] * max(model._sizes()))
        self.setup = train.EpochSetup(network_of(model), self.params[0::2],
                                      self.params[1::2], None, X, y_target, y_label, ws,
                                      loss_kind=loss_code(loss), batch_size=rows,
                                      margin=margin, n_threads=threads)

    def __call__(self):
        return self.loss_value(), accuracy(self.outputs, self.y_true, self.loss)

    def loss_value(self) -> float:
        """The mean loss alone (its outputs in :attr:`outputs`): what
        :class:`BatchedEvaluation` takes from each batch, whose accuracy it computes
        once over all rows."""
        train = compiled_train()
        s = self.setup
        with training_call():
            value, _ = train.loss_grad(s, s.workspace.dW, s.workspace.db, grads=False)
        return float(value)

    def set_data(self, X, y_target, y_label, sample_weight=None):
        """Evaluate other rows from now on (as many as the first at most), with
        ``sample_weight`` (checked, X's dtype) or unweighted."""
        self.setup.set_data(X, y_target, y_label, sample_weight)

    @property
    def outputs(self) -> np.ndarray:
        """The model's outputs (n, c) on the data, as of the last call (a view into the
        workspace, overwritten by the next call)."""
        return self.setup.workspace.H[-1][:self.setup.X.shape[0]]

    @property
    def y_true(self) -> np.ndarray:
        """The labels (class-label losses) or targets the outputs are scored against."""
        return (self.setup.y_label if self.loss in CLASS_LABEL_LOSSES
                else self.setup.y_target)


class BatchedEvaluation:
    """:class:`Evaluation`'s surface (call, ``outputs``, ``y_true``, ``loss``) over
    consecutive batches of ``batch_size`` rows: ``evaluate(batch_size=...)`` and fit's
    ``validation_batch_size``, Keras's, whose memory it bounds.

    The loss is the mean of the batches' mean losses weighted by their row counts
    (Keras's loss tracker: ``Mean.update_state(loss, sample_weight=rows)``), or with
    ``sample_weight`` by their weight sums, which is the one-pass weighted mean; the
    accuracy is taken once over all rows' outputs, and so are a caller's metrics. One
    evaluation of the first batch's rows is rebound to each batch in turn (a compiled
    model's setup and workspace, built once) and asked for the loss alone.

    Parameters
    ----------
    model : Sequential
    X, y_target, y_label : as for :class:`Evaluation`
    loss : str
    margin : float
    n_threads : int or None
    batch_size : int >= 1
    sample_weight : ndarray (n,) of X's dtype, optional
        Checked row weights (``check_sample_weight``).

    Examples
    --------
    >>> import numpy as np, nnlib
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, init="zeros")])
    >>> X = np.ones((5, 2))
    >>> yt, yl = model._targets([0, 1, 1, 0, 1], "softmax_cross_entropy", 5)
    >>> BatchedEvaluation(model, X, yt, yl, "softmax_cross_entropy", batch_size=2)()
    (0.6931471805599453, 0.4)
    """

    def __init__(self, model, X: np.ndarray, y_target: np.ndarray, y_label: np.ndarray,
                 loss: str, margin: float = 1.0, n_threads=None, batch_size: int = 4096,
                 sample_weight: Optional[np.ndarray] = None):
        self.model, self.loss, self.margin, self.n_threads = model, loss, margin, n_threads
        self.X, self.y_target, self.y_label = X, y_target, y_label
        self.batch_size, self.sample_weight = batch_size, sample_weight
        if sample_weight is not None:
            check_weight_total(sample_weight)       # the one-pass evaluation's error
        # a class-label loss scores the labels; the others' y_label is a placeholder
        # of one row, given whole to every batch
        self.labels = loss in CLASS_LABEL_LOSSES
        self.y_true = y_label if self.labels else y_target
        self.outputs = np.empty((X.shape[0], model.n_out), X.dtype)
        self._ev = None             # the first batch's evaluation, rebound to each

    def __call__(self):
        X, yt, yl, weights = self.X, self.y_target, self.y_label, self.sample_weight
        total = weight_total = 0.0
        for start in range(0, X.shape[0], self.batch_size):
            rows = slice(start, start + self.batch_size)
            Xb, ytb, ylb = X[rows], yt[rows], yl[rows] if self.labels else yl
            w = None if weights is None else weights[rows]
            w_sum = float(Xb.shape[0]) if w is None else float(np.sum(w, dtype=np.float64))
            if w is not None and w_sum == 0.0:
                w = None            # no share of the weighted mean; its outputs count
            elif w is not None and w_sum < 1.0:
                # a power of two up, which leaves the batch's weighted mean as it is:
                # the reciprocal of a subnormal sum would overflow in the compiled loss
                w = unit_scaled_weights(w).astype(X.dtype)
            ev = self._batch(Xb, ytb, ylb, w)
            value = ev.loss_value()
            if weights is None or w is not None:
                total += value * w_sum
                weight_total += w_sum
            self.outputs[rows] = ev.outputs
        return total / weight_total, accuracy(self.outputs, self.y_true, self.loss)

    def _batch(self, X, y_target, y_label, sample_weight):
        """The evaluation of the first batch, bound to these rows."""
        ev = self._ev
        if ev is None:
            ev = self._ev = self.model._evaluation(X, y_target, y_label, self.loss,
                                                   self.margin, self.n_threads)
            if sample_weight is None:
                return ev
        ev.set_data(X, y_target, y_label, sample_weight)
        return ev
