"""The per-epoch logic of ``Sequential.fit``, Keras's habits: learning-rate schedules
(stepped per epoch or per batch), the seeded shuffle, validation, history, progress,
early stopping and callbacks around one :class:`nnlib.training.TrainingRun` epoch.

A schedule stepped per batch runs the epoch one batch per compiled call (the run's piece
mechanism, with the rate written between pieces): the same batches, updates and loss
sums as one call, at the cost of a Python round trip per batch."""
import time
import warnings

import numpy as np

from nnlib.callbacks import EarlyStopping, History
from nnlib.training import EpochResult

__all__ = ["FitLoop"]


class FitLoop:
    """Runs the epochs of one ``fit``; ``epoch(i)`` returns False when training stops.

    Parameters
    ----------
    run : TrainingRun
        The entered run that trains the model.
    n_rows : int
        Training rows (the order is a permutation of ``range(n_rows)``).
    rng : numpy.random.Generator
        Draws one permutation per epoch when ``shuffle``.
    shuffle : bool
    schedule : nnlib.schedules schedule, callable ``epoch -> lr`` or None
        A schedule object is bound to the optimizer and stepped after every epoch with
        the monitored metric; a callable sets ``optimizer.lr`` before each epoch.
    evaluation : nnlib.training.Evaluation or None
        Validation, after every epoch.
    early_stopping : None, int or dict
        As ``fit``'s (see :class:`nnlib.callbacks.EarlyStopping`).
    callbacks : list of callables ``cb(epoch, logs) -> bool``
    schedule_interval : {'epoch', 'batch'}
        When the schedule steps: after every epoch, or after every batch (a callable
        then gets the 0-based batch count of this fit).
    """

    def __init__(self, run, n_rows, rng, shuffle=True, schedule=None, evaluation=None,
                 early_stopping=None, callbacks=None, schedule_interval="epoch"):
        self.run, self.n_rows, self.rng, self.shuffle = run, n_rows, rng, shuffle
        self.evaluation = evaluation
        metrics = {"loss"}
        if evaluation is not None:
            metrics.add("val_loss")
            if evaluation.loss != "squared_error":
                metrics.add("val_accuracy")
        self.stopper = EarlyStopping(early_stopping, metrics)
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callables cb(epoch, logs); got {cb!r}")
        self.stepped = hasattr(schedule, "step") and hasattr(schedule, "bind")
        if self.stepped and getattr(schedule, "optimizer", None) is not run.optimizer:
            schedule.bind(run.optimizer)
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
        self.batches = 0                    # batches trained by this fit
        self.schedule = schedule
        self.history = History()

    def epoch(self, epoch):
        """Train epoch ``epoch`` (0-based) and record it; False when training stops."""
        run, history, optimizer = self.run, self.history, self.run.optimizer
        if self.schedule is not None and not self.stepped and not self.per_batch:
            optimizer.lr = self.schedule(epoch)
        order = (self.rng.permutation(self.n_rows) if self.shuffle
                 else np.arange(self.n_rows)).astype(np.int64, copy=False)
        tic = time.perf_counter()
        result = (self._batch_by_batch(order, epoch) if self.per_batch
                  else run.run_epoch(order, epoch))
        if result.fault is not None:
            history.nonfinite = {"epoch": epoch, "step": result.steps,
                                 "what": result.fault}
            history.stop_reason = "nonfinite"
            warnings.warn(f"training stopped at epoch {epoch}, step {result.steps}: the "
                          f"{result.fault} became non-finite (lower the learning rate?); "
                          f"the weights are those of the last finite step",
                          RuntimeWarning, stacklevel=3)
            if result.seen:
                history.append(loss=result.mean_loss, time=time.perf_counter() - tic,
                               lr=optimizer.lr)
            history.epochs = epoch + (1 if result.seen else 0)
            return False
        logs = {"loss": result.mean_loss, "time": time.perf_counter() - tic,
                "lr": optimizer.lr}
        if self.evaluation is not None:
            logs["val_loss"], val_acc = self.evaluation()
            if val_acc is not None:
                logs["val_accuracy"] = val_acc
        history.append(**logs)
        history.epochs = epoch + 1
        if run.progress is not None:
            run.progress.epoch_done(epoch, logs)
        if self.stepped and not self.per_batch:
            self.schedule.step(logs.get("val_loss", logs["loss"]))
        if self.stopper.update(epoch, logs, run.params):
            history.stop_reason = "early_stopping"
            self.stopper.restore(run.params)
            return False
        if any(cb(epoch, logs) for cb in self.callbacks):
            history.stop_reason = "callback"
            return False
        return True

    def _batch_by_batch(self, order, epoch):
        """One epoch, one batch per compiled call, the schedule stepped after each."""
        run, schedule = self.run, self.schedule
        size = run.setup.batch_size
        total, seen, steps = 0.0, 0, 0
        progress, run.progress = run.progress, None     # drawn here, for the whole epoch
        try:
            for start in range(0, order.shape[0], size):
                if not self.stepped:
                    run.optimizer.lr = schedule(self.batches)
                r = run.run_epoch(order[start:start + size], epoch)
                total, seen, steps = total + r.loss_sum, seen + r.seen, steps + r.steps
                if r.fault is not None:
                    return EpochResult(total, seen, steps, r.fault)
                self.batches += 1
                if self.stepped:
                    schedule.step()
                if progress is not None:
                    progress.piece_done(epoch, steps, total, seen)
        finally:
            run.progress = progress
        return EpochResult(total, seen, steps, None)
