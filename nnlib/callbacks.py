"""What ``Sequential.fit`` records and calls, with Keras's names and habits:
:class:`History`, the :class:`Callback` base class with its epoch and batch hooks,
:class:`EarlyStopping` and :class:`ModelCheckpoint`.

A callback is either a :class:`Callback` (hooks ``on_train_begin``, ``on_epoch_begin``,
``on_train_batch_begin``, ``on_train_batch_end``, ``on_epoch_end``, ``on_train_end``;
``self.model.stop_training = True`` stops the fit) or, as before, a plain callable
``cb(epoch, logs) -> bool`` called after each epoch (a true value stops the fit).

Batch hooks cost speed: the compiled epoch normally runs about 0.1 s of steps per call,
and a callback that overrides a batch hook makes it run one step per call so the hook
sees every batch. The trained weights do not depend on it (the cut falls on whole
batches).
"""
import os
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np

from nnlib._format import check_npz_name
from nnlib._plateau import improves
from nnlib._threads import complete
from nnlib._validation import check_int_scalar, check_real_scalar

__all__ = ["History", "Callback", "EarlyStopping", "ModelCheckpoint"]


class History:
    """What ``fit`` did, epoch by epoch.

    Attributes
    ----------
    history : dict of lists
        ``loss`` (mean training loss of the epoch, L2 term included), ``time`` (seconds),
        ``lr``; with ``metrics`` the training metrics (``accuracy``, a user metric's
        name); with validation data ``val_loss``, for classification losses
        ``val_accuracy``, and ``val_`` + each metric.
    epoch : list of int
        The index of each epoch in ``history`` (Keras's ``History.epoch``): ``0, 1,
        ...``, or from ``initial_epoch`` on for ``fit(..., initial_epoch=N)``.
    val_epoch : list of int
        The epochs validated, one per entry of each ``val_`` list:
        ``history["val_loss"][i]`` is epoch ``val_epoch[i]``'s. Every epoch with
        validation data, only those ``fit(validation_freq=...)`` names otherwise: as
        Keras's History, the ``val_`` lists then hold only those epochs (they are
        shorter than ``loss``, not padded with NaN), and this list says which.
    epochs : int
        Epochs this fit trained (``len(epoch)``; a last epoch cut short by a
        non-finite step counts if it trained any rows).
    params : dict
        What the fit handed its callbacks (Keras's ``History.params``): ``verbose``
        (the fit's as given, ``"auto"`` or ``True`` too, as Keras 3's; 0 for the Dask
        runs), ``epochs``,
        ``batch_size``, ``steps`` (batches an epoch; None for the Dask runs of
        :mod:`nnlib.dask`, whose epochs run on the cluster), ``metrics`` (the names
        logged) and ``optimizer``. Empty for a History not made by a fit.
    model : Sequential or None
        The model the fit (or a Dask run's ``fit_data_parallel`` /
        ``fit_model_averaging``) trained (Keras's ``History.model``).
    stop_reason : None, "early_stopping", "callback" or "nonfinite"
    nonfinite : None or dict
        When training stopped on a non-finite loss or gradient, or on an update that
        overflowed the weights or the optimizer state: the epoch, the step within it,
        what was non-finite, and why (``cause``: the weights, sample_weight, or the
        update's size). The weights are those of the last finite step (or an
        EarlyStopping's best, with ``restore_best_weights``).

    Examples
    --------
    >>> h = History(); h.append(loss=0.5, time=0.01, lr=0.1); h["loss"]
    [0.5]

    Resuming at epoch 3 (Keras's ``initial_epoch``):

    >>> import numpy as np, nnlib
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    >>> h = model.fit(np.eye(2), [0, 1], epochs=5, initial_epoch=3)
    >>> h.epoch, h.epochs, len(h["loss"])
    ([3, 4], 2, 2)

    Validated every 2nd epoch (Keras's ``validation_freq``): the ``val_`` lists hold
    those epochs only, and ``val_epoch`` says which:

    >>> h = model.fit(np.eye(2), [0, 1], epochs=5, validation_data=(np.eye(2), [0, 1]),
    ...               validation_freq=2)
    >>> h.epoch, h.val_epoch, len(h["loss"]), len(h["val_loss"])
    ([0, 1, 2, 3, 4], [1, 3], 5, 2)
    """

    def __init__(self) -> None:
        self.history: Dict[str, List[float]] = {"loss": [], "time": [], "lr": []}
        self.epoch: List[int] = []
        self.val_epoch: List[int] = []
        self.epochs = 0
        self.stop_reason: Optional[str] = None
        self.nonfinite: Optional[dict] = None
        self.params: Dict[str, Any] = {}
        self.model: Any = None

    def append(self, **values: float) -> None:
        """Add one epoch's values, one list per key.

        Parameters
        ----------
        **values : float
            One value per key (``loss=0.5``); a new key starts its list.

        Examples
        --------
        >>> h = History()
        >>> h.append(loss=0.5, time=0.1, lr=0.01, accuracy=0.75)
        >>> h.history
        {'loss': [0.5], 'time': [0.1], 'lr': [0.01], 'accuracy': [0.75]}
        """
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def add_epoch(self, epoch: int, **values: float) -> None:
        """Record epoch ``epoch``: its index in :attr:`epoch`, its values as
        :meth:`append` does, and one more epoch in :attr:`epochs`.

        Parameters
        ----------
        epoch : int
            The epoch's index (absolute: ``initial_epoch`` counts).
        **values : float
            The epoch's logs.

        Examples
        --------
        >>> h = History()
        >>> h.add_epoch(7, loss=0.5, time=0.1, lr=0.01)
        >>> h.epoch, h.epochs, h["loss"]
        ([7], 1, [0.5])
        """
        self.epoch.append(epoch)
        self.append(**values)
        self.epochs = len(self.epoch)

    def __getitem__(self, key: str) -> List[float]:
        return self.history[key]

    def __setstate__(self, state: Dict[str, Any]) -> None:
        """Restore a pickled History; one pickled before it had :attr:`params` and
        :attr:`model` gets them as a History not made by a fit has them (``{}``,
        None) rather than an AttributeError on reading them, and one before
        :attr:`val_epoch` its first epochs, as many as it has ``val_`` values (each
        fit validated every epoch then, but a last epoch cut short by a non-finite
        step)."""
        # one pickled before val_epoch validated every epoch it has val_ values of: all
        # but a last one that stopped on a non-finite step and logged none
        history = state.get("history", {})
        n_validated = max((len(v) for k, v in history.items() if k.startswith("val_")),
                          default=0)
        validated = list(state.get("epoch", []))[:n_validated]
        self.__dict__.update({"params": {}, "model": None, "val_epoch": validated,
                              **state})

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={self.epochs}, last={last}, stop_reason={self.stop_reason})"


class Callback:
    """Base class of fit's callbacks: override the hooks you need (Keras's names).

    ``fit`` sets ``self.model`` (the Sequential being trained) and ``self.params``
    (``epochs``, ``steps`` per epoch, ``batch_size``, ``metrics``) before training.
    ``logs`` of an epoch are those ``History`` records; those of a batch hold
    ``loss``, the mean loss of the epoch's batches so far. Setting
    ``self.model.stop_training = True`` in any hook ends the fit after the current
    batch (it then counts as stopped by a callback).

    Examples
    --------
    >>> import numpy as np, nnlib
    >>> class CountBatches(Callback):
    ...     def on_train_begin(self, logs=None):
    ...         self.batches = 0
    ...     def on_train_batch_end(self, batch, logs=None):
    ...         self.batches += 1
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    >>> counter = CountBatches()
    >>> _ = model.fit(np.eye(2).repeat(5, 0), [0, 1] * 5, epochs=2, batch_size=4,
    ...               callbacks=[counter])
    >>> counter.batches                      # 2 epochs x ceil(10 / 4) batches
    6
    """

    model: Any = None
    params: Dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        """The model being trained (``fit`` calls this first).

        Parameters
        ----------
        model : Sequential
            Kept as ``self.model``; the hooks read it, and set
            ``self.model.stop_training = True`` to end the fit.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> class Widths(Callback):
        ...     def set_model(self, model):
        ...         super().set_model(model)
        ...         self.widths = (model.n_in, model.n_out)
        >>> cb = Widths()
        >>> model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
        >>> _ = model.fit(np.eye(3), [0, 1, 0], epochs=1, callbacks=[cb])
        >>> cb.model is model, cb.widths
        (True, (3, 2))
        """
        self.model = model

    def set_params(self, params: Dict[str, Any]) -> None:
        """The fit's settings, kept as ``self.params`` (``fit`` calls this before
        training).

        Parameters
        ----------
        params : dict
            ``verbose`` (the fit's as given: Keras 3 hands ``"auto"`` and ``True`` on
            unconverted, and its ``ProgbarLogger`` reads ``"auto"`` as 1), ``epochs``,
            ``batch_size``,
            ``steps`` (batches per epoch), ``metrics`` (the names fit logs each epoch)
            and ``optimizer``: Keras 3's ``verbose``, ``epochs`` and ``steps``, and
            more.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> cb = Callback()
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> _ = model.fit(np.eye(2).repeat(5, 0), [0, 1] * 5, epochs=3, batch_size=4,
        ...               validation_data=(np.eye(2), [0, 1]), callbacks=[cb])
        >>> cb.params["epochs"], cb.params["steps"], cb.params["metrics"]  # 10 rows / 4
        (3, 3, ['loss', 'val_accuracy', 'val_loss'])
        """
        self.params = params

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        """Before the first epoch (``logs`` is empty): the place to reset what the
        callback gathers, so that one callback serves several fits.

        Parameters
        ----------
        logs : dict
            Empty.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> class Epochs(Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.seen = []
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         self.seen.append(epoch)
        >>> cb = Epochs()
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> _ = model.fit(np.eye(2), [0, 1], epochs=2, callbacks=[cb])
        >>> _ = model.fit(np.eye(2), [0, 1], epochs=3, callbacks=[cb])
        >>> cb.seen                                  # the second fit's epochs only
        [0, 1, 2]
        """

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        """After the last epoch (also when stopped early); ``logs`` of the last epoch.

        Parameters
        ----------
        logs : dict
            The last epoch's logs (empty if no epoch completed).

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> class Final(Callback):
        ...     def on_train_end(self, logs=None):
        ...         self.logs = logs
        >>> cb = Final()
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> history = model.fit(np.eye(2), [0, 1], epochs=3, callbacks=[cb])
        >>> sorted(cb.logs), cb.logs["loss"] == history["loss"][-1]
        (['loss', 'lr', 'time'], True)
        """

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        """Before epoch ``epoch`` (0-based; ``logs`` is empty). A change to
        ``self.model.optimizer`` here applies to the epoch.

        Parameters
        ----------
        epoch : int
            0-based and absolute: a fit from ``initial_epoch=N`` starts at N.
        logs : dict
            Empty.

        Examples
        --------
        Train one epoch, then freeze the weights by setting the learning rate to 0:

        >>> import numpy as np, nnlib
        >>> class FreezeAfterFirst(Callback):
        ...     def on_epoch_begin(self, epoch, logs=None):
        ...         self.model.optimizer.lr = 0.1 if epoch == 0 else 0.0
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> history = model.fit(np.eye(2), [0, 1], optimizer=nnlib.optim.SGD(lr=0.1),
        ...                     epochs=3, callbacks=[FreezeAfterFirst()])
        >>> history["lr"], history["loss"][1] == history["loss"][2]
        ([0.1, 0.0, 0.0], True)
        """

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        """After epoch ``epoch``, validation included: ``logs`` holds what History
        records for it (``loss``, ``time``, ``lr``, metrics, ``val_`` entries).

        Parameters
        ----------
        epoch : int
            0-based and absolute: a fit from ``initial_epoch=N`` starts at N.
        logs : dict
            The epoch's History entries.

        Examples
        --------
        Stop as soon as the training loss is below 0.1:

        >>> import numpy as np, nnlib
        >>> class StopBelow(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         if logs["loss"] < 0.1:
        ...             self.model.stop_training = True
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> history = model.fit(np.eye(2), [0, 1], optimizer=nnlib.optim.SGD(lr=0.5),
        ...                     epochs=1000, callbacks=[StopBelow()])
        >>> history.epochs < 1000, history["loss"][-1] < 0.1 <= history["loss"][-2]
        (True, True)
        >>> history.stop_reason
        'callback'
        """

    def on_train_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        """Before step ``batch`` (0-based within the epoch); ``logs`` holds ``loss``,
        the mean loss of the epoch's batches so far (empty before the first).
        Overriding a batch hook makes the epoch run one compiled step per call.

        Parameters
        ----------
        batch : int
            0-based step within the epoch.
        logs : dict
            ``loss`` so far in the epoch (empty before its first batch).

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> class Batches(Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.started = []
        ...     def on_train_batch_begin(self, batch, logs=None):
        ...         self.started.append(batch)
        >>> cb = Batches()
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> _ = model.fit(np.eye(2).repeat(5, 0), [0, 1] * 5, epochs=2, batch_size=4,
        ...               callbacks=[cb])
        >>> cb.started                               # 10 rows: 3 batches per epoch
        [0, 1, 2, 0, 1, 2]
        """
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        """After step ``batch`` was applied; ``logs["loss"]`` is the mean loss of the
        epoch's batches so far (after the last batch, the epoch's loss).

        Parameters
        ----------
        batch : int
            0-based step within the epoch.
        logs : dict
            ``loss``: the epoch's mean batch loss so far.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> class RunningLoss(Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.losses = []
        ...     def on_train_batch_end(self, batch, logs=None):
        ...         self.losses.append(logs["loss"])
        >>> cb = RunningLoss()
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> history = model.fit(np.eye(2).repeat(5, 0), [0, 1] * 5, epochs=1,
        ...                     batch_size=4, callbacks=[cb])
        >>> len(cb.losses), cb.losses[-1] == history["loss"][0]
        (3, True)
        """
        self.on_batch_end(batch, logs=logs)

    # Keras's older names of the two hooks above, which its base class keeps as aliases
    # (its on_train_batch_* call them), so callbacks written against them run here too.
    def on_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        """Keras's alias of :meth:`on_train_batch_begin`: called by it unless a
        subclass overrides that one.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> class Old(Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.seen = []
        ...     def on_batch_begin(self, batch, logs=None):
        ...         self.seen.append(batch)
        >>> cb = Old()
        >>> _ = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)]).fit(
        ...     np.eye(2).repeat(5, 0), [0, 1] * 5, epochs=1, batch_size=4, callbacks=[cb])
        >>> cb.seen
        [0, 1, 2]
        """

    def on_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        """Keras's alias of :meth:`on_train_batch_end`: called by it unless a subclass
        overrides that one.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> class Old(Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.losses = []
        ...     def on_batch_end(self, batch, logs=None):
        ...         self.losses.append(logs["loss"])
        >>> cb = Old()
        >>> history = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)]).fit(
        ...     np.eye(2).repeat(5, 0), [0, 1] * 5, epochs=1, batch_size=4, callbacks=[cb])
        >>> len(cb.losses), cb.losses[-1] == history["loss"][0]
        (3, True)
        """


def wants_batches(callback: Any) -> bool:
    """Whether ``callback`` overrides a batch hook, or Keras's alias of one (then the
    epoch runs step by step). A :class:`ModelCheckpoint` wants them only when it saves
    every so many batches (an int ``save_freq``), or a subclass overrides one."""
    if not isinstance(callback, Callback):
        return False
    base: type = Callback
    if isinstance(callback, ModelCheckpoint):
        if callback.save_freq != "epoch":
            return True
        base = ModelCheckpoint          # its own batch hook is idle per epoch
    cls = type(callback)
    return any(getattr(cls, hook) is not getattr(base, hook)
               for hook in ("on_train_batch_begin", "on_train_batch_end",
                            "on_batch_begin", "on_batch_end"))


# Keras 3's built-in metrics that declare a direction (``_direction`` in
# keras/src/metrics/*.py), by the name each logs under (its default name, or
# auto_name's snake case of its class). Keras's mode="auto" follows a compiled metric's
# direction, so Keras code monitors "val_precision" or "val_f1_score" without a mode;
# nnlib's metric of that name is the user's callable, taken to mean the same.
_KERAS_GROWS = frozenset({
    "precision", "recall", "f1_score", "fbeta_score", "r2_score", "cosine_similarity",
    "pearson_correlation", "concordance_correlation", "precision_at_recall",
    "recall_at_precision", "sensitivity_at_specificity", "specificity_at_sensitivity",
    "io_u", "binary_io_u", "mean_io_u", "one_hot_io_u", "one_hot_mean_io_u"})
_KERAS_FALLS = frozenset({
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "root_mean_squared_error", "logcosh", "hinge",
    "squared_hinge", "categorical_hinge", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy",
    # a MeanMetricWrapper of a Keras loss function declares "down": KLDivergence and
    # Poisson, and compile's string aliases, which log under the string given
    "kl_divergence", "poisson", "mape", "msle", "bce"})


def _mode_is_max(monitor: str, mode: str) -> bool:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
    if mode == "auto":
        # Keras 3's MonitorCallback: "loss" falls, a metric goes its own direction
        # (accuracies and AUC up, mse and mae down), and a name whose direction it
        # cannot tell is refused -- minimizing a user's F1 or recall is never meant.
        # "acc" is Keras's accuracy under the name given to compile (nnlib logs it as
        # "accuracy"): it grows, and fit then names the monitor it does not log
        name = monitor[4:] if monitor.startswith("val_") else monitor
        # a Keras metric named after its class (AUC, Precision, Recall, ...) takes a
        # "_1", "_2" ... from the second made in a session on: "val_auc_1"
        base = name.rstrip("0123456789")
        name = base[:-1] if base != name and base.endswith("_") else name
        if name.endswith("accuracy") or name.endswith("auc") or name == "acc":
            return True
        if name.endswith("loss") or name in ("mse", "mae"):
            return False
        if name in _KERAS_GROWS or name in _KERAS_FALLS:
            return name in _KERAS_GROWS
        raise ValueError(f"mode='auto' cannot tell whether {monitor!r} should fall or "
                         f"grow (it knows the losses, accuracy, acc, auc, mse, mae and the "
                         f"names of Keras 3's metrics that declare a direction, as Keras "
                         f"3 knows its own metrics'): pass mode='max' for a score or "
                         f"mode='min' for an error")
    return mode == "max"


def _direction_if_known(monitor: str) -> Optional[bool]:
    """mode="auto"'s direction of ``monitor`` (True: it grows), or None when the name
    does not tell."""
    try:
        return _mode_is_max(monitor, "auto")
    except ValueError:
        return None


def _check_monitor(monitor: str, metrics: Iterable[str]) -> None:
    metrics = set(metrics)
    if monitor not in metrics:
        why = (" (there is no validation data)" if monitor.startswith("val_")
               and "val_loss" not in metrics else "")
        raise ValueError(f"early_stopping monitors {monitor!r}, which fit does not "
                         f"log{why}; it logs {sorted(metrics)}")


class EarlyStopping(Callback):
    """Stop when a monitored metric has not improved for ``patience`` epochs (Keras's
    ``EarlyStopping``, its argument names and defaults).

    Parameters
    ----------
    monitor : str, default "val_loss"
        A name fit logs each epoch ("loss", "val_loss", "val_accuracy", a metric).
    min_delta : float >= 0
        Smaller changes do not count as an improvement.
    patience : int >= 0
        Training stops after this many epochs in a row without improvement (Keras:
        0 and 1 both stop at the first epoch that does not improve).
    mode : {"auto", "min", "max"}
        "auto": maximize names ending in "accuracy" or "auc" (and "acc"), minimize the
        losses, "mse" and "mae" (with or without "val_"), and follow Keras 3's own
        metrics by the names they log under (precision, recall, f1_score, r2_score
        grow; mean_squared_error, hinge, the crossentropies fall); another name (a
        metric of yours) needs "min" or "max", as in Keras 3, which raises a
        ValueError for it too.
    baseline : float, optional
        Stop if the monitored value does not beat it within ``patience`` epochs.
    restore_best_weights : bool, default False
        Put back the best epoch's weights when the fit ends, whether it stopped early,
        was stopped by another callback or a non-finite step, or ran all its epochs
        (Keras 3's rule, ``keras/src/callbacks/early_stopping.py``, in
        ``keras/callbacks/`` in Keras 3.0.0; Keras 2 restored only on an early
        stop). The best epoch is the first monitored one until another improves on
        it. Until the fit ends the weights
        are the last epoch's, so callbacks see the stopping epoch's own weights.
    start_from_epoch : int >= 0
        Epochs to wait before counting (warm-up).
    verbose : int >= 0 or bool, default 0
        Keras's: 0 silent; otherwise a line when it stops the fit ("Epoch 7: early
        stopping") and when it puts the best weights back ("Restoring model weights
        from the end of the best epoch: 4."), epochs counted from 1 as Keras prints
        them. Last here (Keras has it fourth): give it by name.

    ``fit(early_stopping=...)`` builds one from an int (patience) or a dict of these
    arguments; there ``restore_best_weights`` defaults to True and ``monitor`` to
    "val_loss" with validation data, else "loss" (``restore_best`` is accepted as an
    older name of ``restore_best_weights``).

    Examples
    --------
    >>> stop = EarlyStopping(monitor="loss", patience=2)
    >>> [stop.update(e, {"loss": v}, []) for e, v in enumerate([1.0, 0.5, 0.6, 0.7])]
    [False, False, False, True]

    Keras 3 restores the best weights even when patience never ran out:

    >>> import numpy as np, nnlib
    >>> X, y = np.eye(2), [0, 1]
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    >>> stop = EarlyStopping(monitor="loss", patience=100, restore_best_weights=True)
    >>> class Worse(nnlib.callbacks.Callback):      # the last epoch's loss is the worst
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         logs_seen.append(logs["loss"])
    >>> logs_seen = []
    >>> h = model.fit(X, y, optimizer=nnlib.optim.SGD(lr=0.1), epochs=3,
    ...               callbacks=[stop, Worse()])
    >>> h.stop_reason is None, stop.best_epoch == int(np.argmin(logs_seen))
    (True, True)
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0,
                 patience: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0,
                 verbose: Union[bool, int] = 0) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name; got {monitor!r}")
        self.monitor = monitor
        self.patience = check_int_scalar(patience, "patience", low=0)
        self.min_delta = abs(check_real_scalar(min_delta, "min_delta"))
        self.mode_max = _mode_is_max(monitor, mode)
        self.baseline = (None if baseline is None
                         else check_real_scalar(baseline, "baseline"))
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = check_int_scalar(start_from_epoch, "start_from_epoch",
                                                 low=0)
        self.verbose = _verbose_level(verbose)
        self.on_train_begin()

    @classmethod
    def from_spec(cls, spec: Union[None, bool, int, Dict[str, Any], "EarlyStopping"],
                  metrics: Iterable[str]) -> Optional["EarlyStopping"]:
        """The stopper ``fit(early_stopping=spec)`` asks for, checked against the
        ``metrics`` fit logs; None for None/False.

        Parameters
        ----------
        spec : None, bool, int, dict or EarlyStopping
            False/None: no early stopping; True: the defaults; an int: the patience; a
            dict: the constructor's arguments; an EarlyStopping: itself.
        metrics : iterable of str
            The names fit logs each epoch (the monitor must be one).

        Returns
        -------
        EarlyStopping or None

        Raises
        ------
        ValueError
            For an unknown key or a monitor fit does not log.
        TypeError
            For a spec of another type.

        Examples
        --------
        >>> stop = EarlyStopping.from_spec({"patience": 2}, ["loss", "val_loss"])
        >>> stop.monitor, stop.patience, stop.restore_best_weights   # fit's defaults
        ('val_loss', 2, True)
        >>> EarlyStopping.from_spec(None, ["loss"]) is None
        True
        """
        if spec is None or spec is False:
            return None
        if isinstance(spec, EarlyStopping):
            spec.check_monitor(metrics)
            return spec
        if spec is True:
            spec = {}
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = {"patience": spec}
        if not isinstance(spec, dict):
            raise TypeError(f"early_stopping must be None, an int patience, a dict or an "
                            f"EarlyStopping; got {spec!r}")
        spec = dict(spec)
        if "restore_best" in spec:
            if "restore_best_weights" in spec:
                raise ValueError("give restore_best_weights or its older name "
                                 "restore_best, not both")
            spec["restore_best_weights"] = spec.pop("restore_best")
        known = {"monitor", "min_delta", "patience", "mode", "baseline",
                 "restore_best_weights", "start_from_epoch", "verbose"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown early_stopping keys {sorted(unknown)}; known: "
                             f"{sorted(known)}")
        metrics = set(metrics)
        spec.setdefault("monitor", "val_loss" if "val_loss" in metrics else "loss")
        spec.setdefault("patience", 5)
        spec.setdefault("restore_best_weights", True)
        # a monitor fit does not log (a typo) is named as such, before the
        # constructor asks which way an unknown name goes
        if isinstance(spec["monitor"], str):
            _check_monitor(spec["monitor"], metrics)
        stopper = cls(**spec)
        stopper.check_monitor(metrics)
        return stopper

    def check_monitor(self, metrics: Iterable[str]) -> None:
        """Refuse, before training, a monitor that fit does not log.

        Parameters
        ----------
        metrics : iterable of str
            The names fit logs each epoch.

        Raises
        ------
        ValueError
            If ``monitor`` is not among them.

        Examples
        --------
        >>> EarlyStopping(monitor="val_loss").check_monitor(["loss"])
        Traceback (most recent call last):
        ...
        ValueError: early_stopping monitors 'val_loss', which fit does not log (there is no ...
        """
        _check_monitor(self.monitor, metrics)

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        """Forget the previous fit's best value and wait (``fit`` calls it, so one
        EarlyStopping serves several fits).

        Examples
        --------
        >>> stop = EarlyStopping(monitor="loss", patience=3)
        >>> stop.update(0, {"loss": 0.1}, []), stop.update(1, {"loss": 0.2}, [])
        (False, False)
        >>> stop.best, stop.wait
        (0.1, 1)
        >>> stop.on_train_begin()
        >>> stop.best, stop.wait
        (None, 0)
        """
        self.best: Optional[float] = None
        self.best_params: Optional[List[Any]] = None
        self.best_epoch: Optional[int] = None
        self.wait = 0
        self.stopped_epoch: Optional[int] = None

    def _improves(self, value, reference):
        return improves(value, reference, mode="max" if self.mode_max else "min",
                        threshold=self.min_delta)

    def update(self, epoch: int, logs: Dict[str, float], params: List[Any]) -> bool:
        """Record the epoch's ``logs``; True when training should stop. The best
        weights are put back by :meth:`restore` at the end of the fit
        (:meth:`on_train_end`), not here (Keras 3).

        Keras's rule: an epoch that does not improve on the best value by more than
        ``min_delta`` (or, with a ``baseline``, does not beat it) adds one to the wait;
        training stops once ``patience`` epochs in a row have not improved (after the
        first epoch).

        Parameters
        ----------
        epoch : int
            0-based and absolute (``initial_epoch`` counts, as in Keras).
        logs : dict
            The epoch's logs. One without ``monitor`` (an epoch that
            ``fit(validation_freq=...)`` does not validate) is skipped with a
            RuntimeWarning, as Keras 3 skips it: no wait counted, no best taken.
        params : list of ndarray
            The model's live parameters (copied at the best epoch with
            ``restore_best_weights``; :meth:`restore` writes them back).

        Returns
        -------
        bool

        Examples
        --------
        >>> import numpy as np
        >>> stop = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
        >>> w = np.zeros(1)
        >>> for epoch, loss in enumerate([1.0, 0.5, 0.7]):
        ...     w += 1                                    # the epoch's training
        ...     if stop.update(epoch, {"loss": loss}, [w]):
        ...         break
        >>> epoch, stop.best_epoch, w                     # the last epoch's weights...
        (2, 1, array([3.]))
        >>> stop.restore([w]); w                          # ...until the fit's end
        array([2.])
        """
        if epoch < self.start_from_epoch:
            return False
        value = logs.get(self.monitor)
        if value is None:
            # Keras 3 warns and skips the epoch (no wait counted, no best taken): an
            # epoch that fit(validation_freq=...) does not validate logs no val_ value
            warnings.warn(f"EarlyStopping monitors {self.monitor!r}, which this "
                          f"epoch's logs lack (they hold {sorted(logs)}; with "
                          f"fit(validation_freq=...) only the validated epochs log "
                          f"val_ values): the epoch is skipped, as Keras skips it",
                          RuntimeWarning, stacklevel=2)
            return False
        if self.restore_best_weights and self.best_params is None:
            # Keras 3: until an epoch improves, the first monitored one is the best
            self.best_params = [p.copy() for p in params]
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                for buf, p in zip(self.best_params, params):  # type: ignore[arg-type]
                    buf[...] = p
            if self.baseline is None or self._improves(value, self.baseline):
                self.wait = 0
            return False
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping", flush=True)
            return True
        return False

    def restore(self, params: List[Any]) -> None:
        """Put the best epoch's weights back into ``params`` (when asked to): all of
        them, even if an interrupt lands in the middle (it is raised afterwards).

        ``fit`` calls it when the fit ends (:meth:`on_train_end`, Keras 3's rule:
        stopped early or not); call it yourself when driving :meth:`update` by hand.

        Parameters
        ----------
        params : list of ndarray
            The live arrays ``update`` was given (``model.params``), written in place.

        Raises
        ------
        ValueError
            If ``params`` are not as many as the best epoch's copies, or one differs
            in shape (or is read-only): nothing is restored.

        Examples
        --------
        >>> import numpy as np
        >>> stop = EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
        >>> w = np.array([1.0])
        >>> stop.update(0, {"loss": 0.5}, [w])       # the best epoch: w = 1
        False
        >>> w += 1
        >>> stop.update(1, {"loss": 0.7}, [w])       # worse, patience not used up
        False
        >>> stop.restore([w])
        >>> w
        array([1.])
        """
        if self.restore_best_weights and self.best_params is not None:
            params = list(params)
            self._check_restorable(params)
            def put_back() -> None:
                for p, best in zip(params, self.best_params):  # type: ignore[arg-type]
                    p[...] = best
            complete(put_back)
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.", flush=True)  # type: ignore[operator]

    def _check_restorable(self, params: List[Any]) -> None:
        """Raise ValueError unless ``params`` match the best epoch's copies one for one
        in shape: checked before any is written, so a mismatch restores none (a
        broadcast would fill an array of another shape silently, a shorter list restore
        some layers only, a longer one leave the rest as they are)."""
        best = self.best_params
        assert best is not None
        if len(params) != len(best):
            raise ValueError(f"EarlyStopping.restore: got {len(params)} arrays; the best "
                             f"epoch's weights are {len(best)} (of shapes "
                             f"{[b.shape for b in best]}); nothing was restored: were the "
                             f"model's layers replaced since update() copied them?")
        for i, (p, b) in enumerate(zip(params, best)):
            if not isinstance(p, np.ndarray) or p.shape != b.shape:
                raise ValueError(f"EarlyStopping.restore: params[{i}] has shape "
                                 f"{np.shape(p)} where the best epoch's copy has "
                                 f"{b.shape}; nothing was restored: were the model's "
                                 f"layers replaced since update() copied them?")
            if not p.flags.writeable:
                raise ValueError(f"EarlyStopping.restore: params[{i}] is read-only; "
                                 f"nothing was restored")

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        """Put the best epoch's weights back into the model with
        ``restore_best_weights``, however the fit ended (Keras 3's
        ``EarlyStopping.on_train_end``).

        Parameters
        ----------
        logs : dict, optional
            Unused.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> model = nnlib.Sequential([nnlib.Dense(1, 1, random_state=0)])
        >>> stop = EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
        >>> stop.set_model(model)
        >>> stop.on_epoch_end(0, {"loss": 0.5})            # the best epoch so far
        >>> model.params[0][...] = 9.0
        >>> stop.on_epoch_end(1, {"loss": 0.7})            # worse; patience not used up
        >>> stop.on_train_end()
        >>> bool(model.params[0][0, 0] != 9.0)              # epoch 0's weights again
        True
        """
        if self.model is not None:
            self.restore(self.model.params)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        """:meth:`update` with the epoch's logs and the model's parameters, and stop the
        model's fit when patience runs out (what makes an EarlyStopping work in
        ``fit(callbacks=[...])``).

        Parameters
        ----------
        epoch : int
            0-based and absolute: a fit from ``initial_epoch=N`` starts at N.
        logs : dict

        Examples
        --------
        With plain SGD at a small rate the loss moves by less than ``min_delta`` per
        epoch, so after the first epoch two more without improvement stop the fit:

        >>> import numpy as np, nnlib
        >>> stop = EarlyStopping(monitor="loss", min_delta=0.01, patience=2)
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> history = model.fit(np.eye(2), [0, 1], optimizer=nnlib.optim.SGD(lr=0.01),
        ...                     epochs=100, callbacks=[stop])
        >>> history.epochs, stop.stopped_epoch, stop.best_epoch, history.stop_reason
        (3, 2, 0, 'early_stopping')
        """
        if self.update(epoch, logs or {}, self.model.params):
            self.model.stop_training = True


class ModelCheckpoint(Callback):
    """Save the model after every epoch (or every ``period`` epochs), or every
    ``save_freq`` batches, or only when the monitored metric improves (Keras's
    ``ModelCheckpoint``). Each save is atomic (a temporary file renamed over the
    target), so an interrupted save leaves the previous checkpoint intact.

    Parameters
    ----------
    filepath : str or os.PathLike
        Ending in ``.npz``; may hold ``str.format`` fields: ``{epoch}`` (1-based, as
        Keras), with an int ``save_freq`` ``{batch}`` (1-based within the epoch, as
        Keras), and any logged metric, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.
        Missing folders are made at the save (as Keras).
    monitor : str, default "val_loss"
    save_best_only : bool
        Save only when ``monitor`` improves on the best value so far. A save whose
        logs lack ``monitor`` (no validation data for "val_loss", or an epoch that
        ``fit(validation_freq=...)`` does not validate; a per-batch save sees the
        batch's logs) warns and saves, as Keras 3's does (``_should_save_model``
        returns True); the best value stays the last validated epoch's.
    mode : {"auto", "min", "max"}
        As :class:`EarlyStopping`'s: "auto" knows the losses, accuracy, acc, auc, mse,
        mae and the names of Keras 3's metrics that declare a direction (precision,
        recall, f1_score, r2_score, ...); give "min" or "max" for another name with
        ``save_best_only`` (without it the direction is not used, and not needed).
    save_freq : "epoch" or int >= 1
        "epoch": save at the end of every epoch (of every ``period``-th). An int N:
        save after every N batches, counted across epochs (and fits) as Keras counts
        them; the fit then runs one batch per compiled call (a batch hook), and a save
        sees the batch's logs (the epoch's running ``loss``; no validation metrics).
        Changed in December 2026: an int counted epochs before; for that, pass
        ``period=N`` (Keras 2's name for it).
    period : int >= 1, default 1
        With ``save_freq="epoch"``: save at the end of every ``period``-th epoch
        (epochs ``period, 2 period, ...``, 1-based and absolute, so a fit resumed at
        ``initial_epoch`` keeps the same ones).
    include_optimizer : bool
        Also save the optimizer of the fit (``model.optimizer``) with its state, so a
        loaded checkpoint resumes bit-identically (``Sequential.save``).
    verbose : int
        1: print a line per save.
    save_weights_only : bool, default False
        Keras's: save the weights alone, by ``model.save_weights`` (a model with
        layers of its own too; one of Dense and Dropout layers alone gets the file
        ``save`` writes, which ``nnlib.load`` also rebuilds); refuses
        ``include_optimizer=True`` beside it.
    initial_value_threshold : float, optional
        Keras's: with ``save_best_only``, the value the monitored metric must beat
        for the first save (the best so far until then).

    Attributes
    ----------
    best : float or None
    last_saved : str or None
        The path of the last save.

    Examples
    --------
    >>> import numpy as np, nnlib, os, tempfile
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    >>> path = os.path.join(tempfile.mkdtemp(), "best.npz")
    >>> ckpt = ModelCheckpoint(path, monitor="loss", save_best_only=True)
    >>> _ = model.fit(np.eye(2), [0, 1], epochs=3, callbacks=[ckpt])
    >>> nnlib.load(path).n_out
    2

    Every 2 batches (Keras's int ``save_freq``), or every 2 epochs (``period``):

    >>> folder = tempfile.mkdtemp()
    >>> X, y = np.eye(2).repeat(3, 0), [0, 1] * 3          # 3 batches of 2 an epoch
    >>> by_batch = ModelCheckpoint(os.path.join(folder, "e{epoch}-b{batch}.npz"),
    ...                            save_freq=2)
    >>> by_epoch = ModelCheckpoint(os.path.join(folder, "e{epoch}.npz"), period=2)
    >>> _ = model.fit(X, y, epochs=4, batch_size=2, callbacks=[by_batch, by_epoch])
    >>> sorted(os.listdir(folder))
    ['e1-b2.npz', 'e2-b1.npz', 'e2-b3.npz', 'e2.npz', 'e3-b2.npz', 'e4-b1.npz',
     'e4-b3.npz', 'e4.npz']
    """

    def __init__(self, filepath: Union[str, "os.PathLike[str]"], monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto",
                 save_freq: Union[str, int] = "epoch", include_optimizer: bool = False,
                 verbose: int = 0, period: int = 1, save_weights_only: bool = False,
                 initial_value_threshold: Optional[float] = None) -> None:
        self.filepath = os.fspath(filepath)
        # the name save() would refuse, refused before training rather than after the
        # first epoch (Keras checks its extension here too)
        check_npz_name(self.filepath, "ModelCheckpoint filepath ")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name; got {monitor!r}")
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        # the direction orders the monitored values for save_best_only alone: without
        # it a name mode="auto" cannot tell is no error (Keras 3 resolves the direction
        # at the first epoch end either way, and raises there after an epoch trained)
        self.mode_max: Optional[bool] = (_mode_is_max(monitor, mode)
                                         if self.save_best_only or mode != "auto"
                                         else _direction_if_known(monitor))
        if isinstance(save_freq, str) and save_freq != "epoch":
            raise ValueError(f"save_freq must be 'epoch' or an int >= 1 (batches); got "
                             f"{save_freq!r}")
        self.save_freq: Union[str, int] = (
            "epoch" if save_freq == "epoch"
            else check_int_scalar(save_freq, "save_freq", low=1))
        self.period = check_int_scalar(period, "period", low=1)
        if self.period != 1 and self.save_freq != "epoch":
            raise ValueError(f"period counts epochs, and save_freq={self.save_freq} "
                             f"batches: give period with save_freq='epoch'")
        self.include_optimizer = bool(include_optimizer)
        self.save_weights_only = bool(save_weights_only)
        if self.save_weights_only and self.include_optimizer:
            raise ValueError("save_weights_only=True saves the weights alone; it cannot "
                             "include the optimizer (include_optimizer=True)")
        self.verbose = _verbose_level(verbose)
        self.best: Optional[float] = (None if initial_value_threshold is None else
                                      check_real_scalar(initial_value_threshold,
                                                        "initial_value_threshold"))
        self.last_saved: Optional[str] = None
        # Keras's count: batches since the last save, across epochs and fits
        self._batches_since_save = 0
        self._epoch = 0

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        """With ``save_freq="epoch"``: save the model (at every ``period``-th epoch,
        and if improved with ``save_best_only``) to ``filepath`` filled from
        ``epoch + 1`` and ``logs``.

        Parameters
        ----------
        epoch : int
            0-based and absolute: a fit from ``initial_epoch=N`` starts at N.
        logs : dict

        Examples
        --------
        One file per epoch whose loss improves, named after the epoch:

        >>> import numpy as np, nnlib, os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> ckpt = ModelCheckpoint(os.path.join(folder, "m-{epoch}.npz"), monitor="loss",
        ...                        save_best_only=True)
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> ckpt.set_model(model)
        >>> for epoch, loss in enumerate([0.9, 0.7, 0.8]):
        ...     ckpt.on_epoch_end(epoch, {"loss": loss})
        >>> sorted(os.listdir(folder)), ckpt.best, os.path.basename(ckpt.last_saved)
        (['m-1.npz', 'm-2.npz'], 0.7, 'm-2.npz')
        """
        if self.save_freq == "epoch" and not (epoch + 1) % self.period:
            self._save(epoch, None, logs or {})

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        """Note the epoch, for the paths of the saves within it (an int
        ``save_freq``).

        Examples
        --------
        >>> ckpt = ModelCheckpoint("m.npz", save_freq=10)
        >>> ckpt.on_epoch_begin(4); ckpt._epoch
        4
        """
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        """With an int ``save_freq``: count the batch, and save after every
        ``save_freq``-th (counted across epochs, as Keras), to ``filepath`` filled from
        the epoch, ``batch + 1`` and the batch's ``logs`` (the arguments of
        :meth:`Callback.on_train_batch_end`).

        Examples
        --------
        >>> import numpy as np, nnlib, os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> ckpt = ModelCheckpoint(os.path.join(folder, "m-{batch}.npz"), save_freq=2)
        >>> ckpt.set_model(nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)]))
        >>> for batch in range(5):
        ...     ckpt.on_train_batch_end(batch, {"loss": 1.0})
        >>> sorted(os.listdir(folder))
        ['m-2.npz', 'm-4.npz']
        """
        if isinstance(self.save_freq, int):
            self._batches_since_save += 1
            if self._batches_since_save >= self.save_freq:
                self._batches_since_save = 0
                self._save(self._epoch, batch, logs or {})
        super().on_train_batch_end(batch, logs)

    def _save(self, epoch, batch, logs):
        """Save (if improved, with ``save_best_only``) at ``epoch`` (0-based) and
        ``batch`` (0-based, or None at an epoch's end)."""
        if self.save_best_only and self.monitor not in logs:
            # Keras 3 warns and saves: a checkpoint too many rather than none
            hint = ("" if batch is None else
                    "; a save every save_freq batches sees the batch's logs: "
                    "monitor 'loss', or save per epoch (an int save_freq counts "
                    "batches, as Keras's; period=N saves every N epochs)")
            warnings.warn(f"ModelCheckpoint monitors {self.monitor!r}, which these logs "
                          f"lack (they hold {sorted(logs)}: no validation data, or an "
                          f"epoch fit(validation_freq=...) does not validate); saved "
                          f"all the same, as Keras 3 does{hint}", RuntimeWarning,
                          stacklevel=3)
        elif self.save_best_only:
            if self.mode_max is None:       # save_best_only set after construction
                self.mode_max = _mode_is_max(self.monitor, "auto")
            value = logs[self.monitor]
            if not improves(value, self.best, mode="max" if self.mode_max else "min"):
                return
        where = {"epoch": epoch + 1}
        if batch is not None and "batch" not in logs:
            where["batch"] = batch + 1
        try:
            path = self.filepath.format(**where, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r} cannot be "
                             f"filled from {' and '.join(where)} and the logs "
                             f"{sorted(logs)}: {exc}") from None
        # a folder the path names (a run's, an epoch's) is made as Keras makes it
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:      # Keras's: a model with layers of its own too
            self.model.save_weights(path)
        else:
            self.model.save(path, include_optimizer=self.include_optimizer)
        # the best once saved: a save that fails or is interrupted (the previous file
        # kept) leaves the best the files hold, so the next improvement on it saves
        if self.save_best_only and self.monitor in logs:
            self.best = logs[self.monitor]
        self.last_saved = path
        if self.verbose:
            at = "" if batch is None else f", batch {batch + 1}"
            print(f"epoch {epoch + 1}{at}: saved the model to {path}")


def _verbose_level(verbose):
    """A callback's ``verbose``: a bool or an int >= 0, named when it is not (int() of
    a string said only "invalid literal for int() with base 10")."""
    return int(verbose) if isinstance(verbose, bool) else check_int_scalar(
        verbose, "verbose", low=0)


def as_callbacks(callbacks: Optional[Iterable[Any]]) -> List[Union[Callback, Callable]]:
    """Check fit's ``callbacks`` argument: Callback objects or callables, in a list or
    any iterable (read once: a generator is not read again), or one of them alone (as
    Keras 3's fit takes it)."""
    if isinstance(callbacks, Callback) or (callable(callbacks)
                                           and not isinstance(callbacks, Iterable)):
        return [callbacks]
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, Callback) and not callable(cb):
            raise TypeError(f"callbacks must be nnlib.callbacks.Callback objects or "
                            f"callables cb(epoch, logs); got {cb!r}")
    return callbacks
