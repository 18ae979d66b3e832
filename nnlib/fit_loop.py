"""The per-epoch logic of ``Sequential.fit``, Keras's habits: learning-rate schedules
(stepped per epoch or per batch), the seeded shuffle, metrics, validation, history,
progress, early stopping and callbacks around one :class:`nnlib.training.TrainingRun`
epoch.

A schedule stepped per batch runs the epoch one batch per ``run_epoch`` call (each with
its own snapshot, so a divergence rewinds exactly), the rate written between calls: the
same batches, updates and loss sums as one call, at the cost of a Python round trip per
batch."""
import numbers
import time
import warnings
from collections.abc import Collection, Iterator, Mapping

import numpy as np

from nnlib.callbacks import (Callback, EarlyStopping, History, as_callbacks,
                             wants_batches)
from nnlib._divergence import fault_phrase
from nnlib._random import draws_in_library, epoch_order
from nnlib.training import EpochResult
from nnlib._validation import check_int_scalar

__all__ = ["FitLoop", "check_validation_freq"]


class FitLoop:
    """Runs the epochs of one ``fit``: ``begin()``, then ``epoch(i)`` until it returns
    False or the epochs run out, then ``end()``.

    Parameters
    ----------
    run : TrainingRun
        The entered run that trains the model.
    n_rows : int
        Training rows (the order is a permutation of ``range(n_rows)``).
    rng : numpy.random.Generator, nnlib._kernels.shuffle.SeedOrders or None
        Draws one permutation per epoch when ``shuffle`` (``rng.permutation(n_rows)``;
        ``nnlib._random.shuffle_orders`` gives the compiled orders for an int seed);
        None without ``shuffle``.
    shuffle : bool
    schedule : nnlib.schedules schedule, callable ``epoch -> lr`` or None
        A schedule object is bound to the optimizer and stepped after every epoch with
        the monitored metric; a callable sets ``optimizer.lr`` before each epoch.
    evaluation : nnlib.training.Evaluation or None
        Validation, after every epoch.
    early_stopping : None, int, dict or EarlyStopping
        As ``fit``'s (see :meth:`nnlib.callbacks.EarlyStopping.from_spec`).
    callbacks : list of Callback objects or callables ``cb(epoch, logs) -> bool``
    metrics : nnlib.metrics.Metrics, optional
        Reported on the training rows (by ``train_evaluation``) and, with validation
        data, on it (``val_`` + name).
    train_evaluation : nnlib.training.Evaluation, optional
        The model on the training rows, when there are metrics.
    epochs, batch_size : int
        What ``Callback.params`` tells the callbacks (``epochs``: the index the last
        epoch stops before, Keras's meaning).
    schedule_interval : {'epoch', 'batch'}
        When the schedule steps: after every epoch, or after every batch (a callable
        then gets the 0-based batch count, counted from epoch 0: ``initial_epoch``'s
        batches count as trained).
    initial_epoch : int >= 0
        The first epoch's index (Keras's ``initial_epoch``): callbacks, the history and
        a callable schedule see absolute epochs; a schedule object that is not at that
        epoch (that batch, per batch) is moved there, except ReduceOnPlateau, whose
        rate is the metric's history.
    validation_freq : int >= 1 or collection of int, default 1
        Which epochs ``evaluation`` runs after (Keras's ``validation_freq``, checked by
        :func:`check_validation_freq`): every ``k``-th counted from 1, or the 1-based
        absolute epochs listed. An epoch without it logs no ``val_`` values; a
        ReduceOnPlateau schedule then skips its step with a warning, as Keras's
        ReduceLROnPlateau callback does.
    verbose : int >= 0, bool or "auto", default 0
        The fit's ``verbose`` as given, the callbacks' ``params["verbose"]`` (Keras 3's,
        unconverted: its ProgbarLogger and ported progress callbacks read it there).
    """

    def __init__(self, run, n_rows, rng, shuffle=True, schedule=None, evaluation=None,
                 early_stopping=None, callbacks=None, metrics=None, train_evaluation=None,
                 epochs=None, batch_size=None, schedule_interval="epoch",
                 initial_epoch=0, validation_freq=1, verbose=0):
        self.run, self.n_rows, self.rng, self.shuffle = run, n_rows, rng, shuffle
        # the unshuffled order, made once: NumPy's arange lets the GIL go however short
        # it is, and a brief release once per epoch of a fit whose epochs keep the GIL
        # (gil.pxd) starves a thread waiting for it
        self._in_order = None if shuffle else np.arange(n_rows, dtype=np.int64)
        if self._in_order is not None:
            self._in_order.flags.writeable = False
        self.evaluation = evaluation
        self.validation_freq = check_validation_freq(validation_freq)
        self.metrics, self.train_evaluation = metrics, train_evaluation
        # whether an epoch logs more than its loss, time and lr (Metrics is immutable)
        self._evaluates = bool(metrics) or evaluation is not None
        logged = {"loss"} | set(metrics.names if metrics else ())
        if evaluation is not None:
            logged.add("val_loss")
            if evaluation.loss != "squared_error":
                logged.add("val_accuracy")
            logged |= {"val_" + name for name in (metrics.names if metrics else ())}
        self.logged = logged
        # (the tests of None first: a loop calling fit(epochs=1) builds one FitLoop per
        # epoch, and None has no callbacks, stopper or schedule to look at)
        self.stopper = (None if early_stopping is None
                        else EarlyStopping.from_spec(early_stopping, logged))
        self.callbacks = [] if callbacks is None else as_callbacks(callbacks)
        self.objects = [cb for cb in self.callbacks if isinstance(cb, Callback)]
        for cb in self.objects:
            if isinstance(cb, EarlyStopping):
                cb.check_monitor(logged)
        self.batch_callbacks = [cb for cb in self.objects if wants_batches(cb)]
        self.stepped = (schedule is not None and hasattr(schedule, "step")
                        and hasattr(schedule, "bind"))
        if self.stepped:
            run.claim_schedule(schedule)        # before it is bound to this fit's optimizer
        if self.stepped and getattr(schedule, "optimizer", None) is not run.optimizer:
            schedule.bind(run.optimizer)
        elif self.stepped and hasattr(schedule, "_record_initial_lr"):
            schedule._record_initial_lr()       # groups the fit adopted since binding
        elif schedule is not None and not self.stepped and not callable(schedule):
            raise TypeError(f"schedule must be an nnlib.schedules schedule or a callable "
                            f"epoch -> lr; got {schedule!r}")
        if schedule_interval not in ("epoch", "batch"):
            raise ValueError(f"schedule_interval must be 'epoch' or 'batch'; got "
                             f"{schedule_interval!r}")
        self.per_batch = schedule is not None and schedule_interval == "batch"
        if self.per_batch and type(schedule).__name__ == "ReduceOnPlateau":
            raise ValueError("ReduceOnPlateau follows an epoch metric: step it per epoch "
                             "(schedule_interval='epoch')")
        steps = -(-n_rows // batch_size) if batch_size else None
        # batches trained from epoch 0: initial_epoch's epochs count as trained
        self.batches = initial_epoch * (steps or 0)
        self.schedule = schedule
        if initial_epoch and self.stepped and callable(schedule) \
                and type(schedule).__name__ != "ReduceOnPlateau":
            # a closed-form schedule indexed by the absolute epoch (or batch), as a
            # callable is: a fresh schedule resumes at initial_epoch's rate, one carried
            # over from the fit that stopped there is already at it
            at = self.batches if self.per_batch else initial_epoch
            if getattr(schedule, "epoch", None) != at:
                schedule(at)
        self.history = History()
        self.params = {"verbose": verbose, "epochs": epochs, "batch_size": batch_size,
                       "steps": steps, "metrics": sorted(logged), "optimizer": run.optimizer}
        self.history.params, self.history.model = dict(self.params), run.model
        self._last_logs = None
        if self.batch_callbacks:
            run.on_piece = self._batch_end
        # no code of the user's runs between the run's construction and its first
        # epoch: no callback, schedule or stopper of a user's class, the model nnlib's
        # own Sequential (a subclass's property or __getattr__ runs when begin sets
        # stop_training or the claim reads an attribute), and the order drawn by
        # nnlib's or NumPy's own generator (run_epoch's ``fresh``)
        self.fresh = (not self.callbacks and schedule is None
                      and (self.stopper is None or type(self.stopper) is EarlyStopping)
                      and _is_sequential(run.model)
                      and (not shuffle or draws_in_library(rng)))

    @property
    def model(self):
        return self.run.model

    def begin(self, record_history=True):
        """Before the first epoch: hand the callbacks the model and the fit's params,
        and (``record_history``) the model this fit's history (Keras's
        ``model.history``), which each epoch fills as it ends, so an interrupted fit's
        completed epochs are kept there."""
        self.model.stop_training = False
        if record_history:
            self.model.history = self.history
        for cb in self.objects:
            cb.set_model(self.model)
            cb.set_params(self.params)
        for cb in self.objects:
            cb.on_train_begin({})
        # an EarlyStopping given as early_stopping= is not among the callbacks, yet it
        # may be the previous fit's: forget that fit's best value, wait and weights
        # (Keras resets it at train begin too)
        if self.stopper is not None and all(cb is not self.stopper for cb in self.objects):
            self.stopper.on_train_begin({})

    def end(self):
        """After the last epoch (stopped or not): the callbacks' ``on_train_end``, and
        the best weights back from ``early_stopping=``'s stopper when it restores them
        (Keras 3 restores at train end, however the fit ended)."""
        if self.stopper is not None and all(cb is not self.stopper for cb in self.objects):
            # into the model's arrays, as the callback's on_train_end: a callback of the
            # last epoch may have replaced the ones this run trained (later epochs
            # refuse that), which would then take the best weights in the model's stead
            self.stopper.restore(self.model.params)
        for cb in self.objects:
            cb.on_train_end(dict(self._last_logs or {}))

    def _batch_end(self, epoch, steps, loss_sum, seen):
        """After each step (with batch callbacks): their hooks; True to stop."""
        logs = {"loss": loss_sum / seen if seen else float("nan")}
        for cb in self.batch_callbacks:
            cb.on_train_batch_end(steps - 1, dict(logs))
        if self.model.stop_training:
            return True
        if steps < self.params["steps"]:
            for cb in self.batch_callbacks:
                cb.on_train_batch_begin(steps, dict(logs))
        return False

    def epoch(self, epoch):
        """Train epoch ``epoch`` (0-based, absolute: ``initial_epoch`` first) and record
        it; False when training stops."""
        run, history, optimizer = self.run, self.history, self.run.optimizer
        for cb in self.objects:
            cb.on_epoch_begin(epoch, {})
        if self.schedule is not None and not self.stepped and not self.per_batch:
            optimizer.lr = self.schedule(epoch)
        order = epoch_order(self.rng, self.n_rows) if self.shuffle else self._in_order
        for cb in self.batch_callbacks:
            cb.on_train_batch_begin(0, {})
        tic = time.perf_counter()
        result = (self._batch_by_batch(order, epoch) if self.per_batch
                  else run.run_epoch(order, epoch, self.fresh))
        if result.fault is not None:
            history.nonfinite = {"epoch": epoch, "step": result.steps,
                                 "what": result.fault, "cause": result.cause}
            history.stop_reason = "nonfinite"
            restoring = any(isinstance(cb, EarlyStopping) and cb.restore_best_weights
                            and cb.best_params is not None
                            for cb in (*self.objects, self.stopper))
            warnings.warn(f"training stopped at epoch {epoch}, step {result.steps}: "
                          f"{fault_phrase(result.fault, result.cause)}; the weights are "
                          f"those of the last finite step"
                          + (", until EarlyStopping(restore_best_weights=True) puts the "
                             "best epoch's back as the fit ends" if restoring else ""),
                          RuntimeWarning, stacklevel=3)
            if result.seen:
                history.add_epoch(epoch, loss=result.mean_loss,
                                  time=time.perf_counter() - tic, lr=optimizer.lr)
            return False
        logs = {"loss": result.mean_loss, "time": time.perf_counter() - tic,
                "lr": optimizer.lr}
        validates = self.evaluation is not None and self._validates(epoch)
        if self._evaluates:
            logs.update(self._metrics(validates))
        history.add_epoch(epoch, **logs)
        if validates:
            history.val_epoch.append(epoch)
        self._last_logs = logs
        if run.progress is not None:
            run.progress.epoch_done(epoch, logs)
        if self.stepped and not self.per_batch:
            if self.evaluation is not None and not validates and \
                    _follows_a_metric(self.schedule):
                # Keras's ReduceLROnPlateau on an epoch without its metric: a warning
                # and no step (its wait and cooldown unchanged), not a step on the
                # training loss or on the last validated epoch's value
                warnings.warn(f"{type(self.schedule).__name__} follows val_loss, which "
                              f"an epoch that validation_freq skips does not log: no "
                              f"step this epoch (as Keras's ReduceLROnPlateau)",
                              RuntimeWarning, stacklevel=3)
            else:
                self.schedule.step(logs.get("val_loss", logs["loss"]))
        # as Keras: every callback sees the epoch's end, then the loop decides
        early = self.stopper is not None and self.stopper.update(epoch, logs, run.params)
        stop = False
        for cb in self.callbacks:
            if isinstance(cb, Callback):
                cb.on_epoch_end(epoch, dict(logs))
            elif cb(epoch, logs):
                stop = True
        if early:
            history.stop_reason = "early_stopping"
            return False
        if stop or self.model.stop_training:
            stopped_by = [cb for cb in self.objects if isinstance(cb, EarlyStopping)
                          and cb.stopped_epoch == epoch]
            history.stop_reason = "early_stopping" if stopped_by else "callback"
            return False
        return True

    def _batch_by_batch(self, order, epoch):
        """One epoch, one batch per compiled call, the schedule stepped after each; the
        progress display and batch callbacks see the epoch's running counts."""
        run, schedule = self.run, self.schedule
        size = run.batch_size if hasattr(run, "batch_size") else run.setup.batch_size
        total, seen, steps = 0.0, 0, 0
        progress, on_piece = run.progress, run.on_piece
        run.progress = run.on_piece = None          # called here, for the whole epoch
        try:
            for start in range(0, order.shape[0], size):
                if not self.stepped:
                    run.optimizer.lr = schedule(self.batches)
                r = run.run_epoch(order[start:start + size], epoch)
                total, seen, steps = total + r.loss_sum, seen + r.seen, steps + r.steps
                if r.fault is not None:
                    return EpochResult(total, seen, steps, r.fault, r.cause)
                self.batches += 1
                if self.stepped:
                    schedule.step()
                if progress is not None:
                    progress.piece_done(epoch, steps, total, seen)
                if on_piece is not None and on_piece(epoch, steps, total, seen):
                    break
        finally:
            run.progress, run.on_piece = progress, on_piece
        return EpochResult(total, seen, steps, None)

    def _validates(self, epoch):
        """Whether validation runs after epoch ``epoch`` (0-based): Keras's rule on
        the 1-based epoch."""
        freq = self.validation_freq
        return (epoch + 1) % freq == 0 if isinstance(freq, int) else epoch + 1 in freq

    def _metrics(self, validates=True):
        """The epoch's training metrics and (``validates``) validation results, by
        their logged names."""
        logs = {}
        if self.metrics:
            ev = self.train_evaluation
            ev()
            logs.update(self.metrics.compute(ev.outputs, ev.y_true))
        if self.evaluation is not None and validates:
            ev = self.evaluation
            logs["val_loss"], val_acc = ev()
            if val_acc is not None:
                logs["val_accuracy"] = val_acc
            if self.metrics:
                logs.update({"val_" + k: v for k, v in
                             self.metrics.compute(ev.outputs, ev.y_true).items()})
        return logs


def check_validation_freq(validation_freq):
    """fit's ``validation_freq`` checked: an int >= 1 (validate every that many epochs,
    counted from 1), or a collection of 1-based epoch numbers, returned as a frozenset.
    True is 1 and False is refused, as Keras's int test makes them.

    Keras 3 (``Trainer._should_eval``) takes an int or a list, and raises only when
    the first epoch ends. A tuple, set, range or 1-d integer array says the same as
    the list of its epochs, so it is taken too. An iterator (a generator, ``map``,
    ``iter(...)``, ``itertools.count``) is refused: it can be read only once, and an
    endless one never ends, so the epochs it names are no stable set. Raises
    TypeError or ValueError naming the problem."""
    # type() first: fit and its loop both check the default 1, and isinstance against
    # numbers.Integral (an ABC) costs 0.5 us a call, 1 % of a train_on_batch
    if type(validation_freq) is int or isinstance(validation_freq, numbers.Integral) \
            and not isinstance(validation_freq, bool):
        return check_int_scalar(validation_freq, "validation_freq", low=1)
    if isinstance(validation_freq, bool):
        # Keras 3 tests isinstance(validation_freq, int), which a bool passes: True is
        # 1, every epoch; False is 0, whose ``epoch % 0`` raises ZeroDivisionError once
        # the first epoch has trained -- refused here before training, as 0 is
        if validation_freq:
            return 1
        raise ValueError("validation_freq=False is 0 to Keras (an int), which is no "
                         "frequency: its fit raises ZeroDivisionError after the first "
                         "epoch; validation_freq must be >= 1 (True is 1), and a fit "
                         "without validation takes no validation data")
    if isinstance(validation_freq, Iterator):
        raise TypeError(f"validation_freq is an iterator ({type(validation_freq).__name__})"
                        f", which can be read only once (and an endless one never ends):"
                        f" pass a list of the 1-based epochs to validate after, as "
                        f"Keras's fit takes (e.g. list(...) of it, or an int k for every "
                        f"k-th epoch)")
    if isinstance(validation_freq, (str, bytes, Mapping)) or \
            not isinstance(validation_freq, Collection) or \
            (isinstance(validation_freq, np.ndarray) and validation_freq.ndim != 1):
        raise TypeError(f"validation_freq must be an int >= 1 or a list of epoch numbers "
                        f"(1-based, as Keras's; a tuple, set, range or 1-d array of them "
                        f"is taken too); got {validation_freq!r}")
    return frozenset(check_int_scalar(e, "validation_freq's epochs", low=1)
                     for e in validation_freq)


def _follows_a_metric(schedule):
    """Whether ``schedule`` steps on the monitored metric (a ReduceOnPlateau, or a
    subclass), by name: this module does not import the schedules."""
    return any(c.__name__ == "ReduceOnPlateau" for c in type(schedule).__mro__)


def _is_sequential(model):
    """Whether ``model`` is a Sequential itself, not a subclass (imported on first use:
    the model module imports this one)."""
    if not _SEQUENTIAL:
        from nnlib.model import Sequential
        _SEQUENTIAL.append(Sequential)
    return type(model) is _SEQUENTIAL[0]


_SEQUENTIAL = []
