"""What ``Sequential.fit`` records and how it decides to stop: :class:`History` and
:class:`EarlyStopping` (Keras's names and habits)."""
from nnlib._plateau import improves
from nnlib._threads import complete
from nnlib._validation import check_int_scalar, check_real_scalar

__all__ = ["History", "EarlyStopping"]


class History:
    """What ``fit`` did, epoch by epoch.

    Attributes
    ----------
    history : dict of lists
        ``loss`` (mean training loss of the epoch, L2 term included), ``time`` (seconds),
        ``lr``, and with validation data ``val_loss`` and, for classification losses,
        ``val_accuracy``.
    epochs : int
        Epochs completed.
    stop_reason : None, "early_stopping", "callback" or "nonfinite"
    nonfinite : None or dict
        When training stopped on a non-finite loss or gradient, or on an update that
        overflowed the weights or the optimizer state: the epoch, the step within it,
        and what was non-finite. The weights are those of the last finite step.

    Examples
    --------
    >>> h = History(); h.append(loss=0.5, time=0.01, lr=0.1); h["loss"]
    [0.5]
    """

    def __init__(self):
        self.history = {"loss": [], "time": [], "lr": []}
        self.epochs = 0
        self.stop_reason = None
        self.nonfinite = None

    def append(self, **values):
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={self.epochs}, last={last}, stop_reason={self.stop_reason})"


class EarlyStopping:
    """Stop when a monitored metric has not improved for ``patience`` epochs.

    Parameters
    ----------
    spec : None, False, True, int or dict
        None/False: never stop. True: the defaults. An int: the patience. A dict with
        keys ``patience`` (5), ``min_delta`` (0.0), ``monitor`` ("val_loss" with
        validation data, else "loss"; a name ending in "accuracy" is maximized) and
        ``restore_best`` (True: put back the best epoch's weights when stopping).
    metrics : collection of str
        The names fit logs each epoch ("loss", and with validation data "val_loss" and,
        for classification losses, "val_accuracy"); the monitor must be one of them.

    Examples
    --------
    >>> stop = EarlyStopping({"patience": 1}, metrics={"loss"})
    >>> [stop.update(e, {"loss": v}, []) for e, v in enumerate([1.0, 0.5, 0.6, 0.7])]
    [False, False, False, True]
    """

    def __init__(self, spec, metrics):
        self.active = spec is not None and spec is not False
        if not self.active:
            return
        if spec is True:
            spec = {}
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = {"patience": spec}
        if not isinstance(spec, dict):
            raise TypeError(f"early_stopping must be None, an int patience or a dict; got "
                            f"{spec!r}")
        unknown = set(spec) - {"patience", "min_delta", "monitor", "restore_best"}
        if unknown:
            raise ValueError(f"unknown early_stopping keys {sorted(unknown)}")
        self.patience = check_int_scalar(spec.get("patience", 5), "patience", low=0)
        self.min_delta = check_real_scalar(spec.get("min_delta", 0.0), "min_delta",
                                           low=0.0)
        self.monitor = spec.get("monitor", "val_loss" if "val_loss" in metrics else "loss")
        if self.monitor not in metrics:
            why = (" (there is no validation data)" if str(self.monitor).startswith("val_")
                   and "val_loss" not in metrics else "")
            raise ValueError(f"early_stopping monitors {self.monitor!r}, which fit does "
                             f"not log{why}; it logs {sorted(metrics)}")
        self.mode_max = self.monitor.endswith("accuracy")
        self.restore_best = bool(spec.get("restore_best", True))
        self.best = None
        self.best_params = None
        self.wait = 0

    def update(self, epoch, logs, params):
        """Record the epoch's ``logs``; True when training should stop."""
        if not self.active:
            return False
        value = logs[self.monitor]
        if improves(value, self.best, mode="max" if self.mode_max else "min",
                    threshold=self.min_delta):
            self.best = value
            self.wait = 0
            if self.restore_best:
                self.best_params = [p.copy() for p in params]
            return False
        self.wait += 1
        return self.wait > self.patience

    def restore(self, params):
        """Put the best epoch's weights back into ``params`` (when asked to): all of
        them, even if an interrupt lands in the middle (it is raised afterwards)."""
        if self.active and self.restore_best and self.best_params is not None:
            def put_back():
                for p, best in zip(params, self.best_params):
                    p[...] = best
            complete(put_back)
