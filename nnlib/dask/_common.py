"""What the data-parallel and the model-averaging runs share: the client, the check of
fit's settings, the run's lifetime, and how a lost worker is recognised, retried and
reported."""
import uuid
import warnings
from typing import Any, Dict, Optional

from nnlib._threads import claim, release

from nnlib._codes import loss_code
from nnlib._validation import check_fits_dtype, check_int_scalar, check_real_scalar

__all__ = ["WorkerLostError", "ClusterRun", "fit_epochs", "get_client", "check_settings",
           "is_worker_loss", "new_token", "forget_on_workers"]


class WorkerLostError(RuntimeError):
    """A worker died with data nothing can rebuild (shards given as NumPy pieces), or a
    step failed on lost workers more often than the run retries.

    The model holds the weights (and the optimizer the state and step count) after the
    last completed step or averaged round; ``completed`` says which:
    ``{"epoch": e, "step": s}`` (data parallel: steps completed within epoch ``e``) or
    ``{"epoch": e, "round": r}`` (model averaging).

    Examples
    --------
    >>> err = WorkerLostError("a worker died", {"epoch": 2, "step": 5})
    >>> isinstance(err, RuntimeError), err.completed
    (True, {'epoch': 2, 'step': 5})
    """

    def __init__(self, message: str, completed: Dict[str, int]) -> None:
        super().__init__(message)
        self.completed = dict(completed)


def get_client(client):
    """``client``, or the default dask.distributed client (a clear error without one)."""
    if client is not None:
        return client
    from distributed import get_client as _default
    try:
        return _default()
    except ValueError:
        raise ValueError("no dask.distributed client: pass client=Client(...) (or create "
                         "one first, it becomes the default)") from None


def check_settings(model, optimizer, batch_size, l2, margin):
    """fit's checks of its scalar settings; the optimizer (default as fit's:
    ``model.optimizer`` when it holds the model's arrays, else ``SGD(lr=0.01)``)."""
    from nnlib.model import _FIT_BATCH, Sequential
    from nnlib.layers import is_compiled
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a nnlib.Sequential; got {type(model).__name__}")
    model._check_layers()
    for i, layer in enumerate(model.layers):
        # The workers rebuild the model from its skeleton and run the compiled epoch and
        # loss_grad, which train Dense and Dropout layers. A Python layer's forward and
        # backward are the user's code, with whatever state it keeps: nothing lets a
        # worker split its batch or its randomness the way a single process would.
        if not is_compiled(layer):
            raise TypeError(
                f"nnlib.dask trains models of nnlib.Dense and nnlib.Dropout layers (the "
                f"compiled kernels the workers run); layers[{i}] is "
                f"{type(layer).__name__}, a layer that trains through Python's per-batch "
                f"path: train this model with Sequential.fit")
    # None is fit's default, Keras's 32 rows
    batch_size = (_FIT_BATCH if batch_size is None
                  else check_int_scalar(batch_size, "batch_size", low=1))
    l2 = check_real_scalar(l2, "l2", low=0.0)
    check_fits_dtype(l2, "l2", model.dtype)
    margin = check_real_scalar(margin, "margin", low=0.0)
    if optimizer is None:
        from nnlib.model import default_optimizer
        optimizer = default_optimizer(model)        # as fit: model.optimizer goes on
    if not hasattr(optimizer, "config") or not hasattr(optimizer, "state_arrays"):
        raise TypeError(f"optimizer must be an nnlib.optim optimizer; got "
                        f"{type(optimizer).__name__}")
    optimizer._check_all_grouped(model.params)    # as fit: left out is not frozen
    return optimizer, batch_size, l2, margin


def check_loss(loss):
    loss_code(loss)
    return loss


def is_worker_loss(exc) -> bool:
    """Whether ``exc`` says a worker (or data it held) was lost, rather than an error
    of the task itself."""
    from concurrent.futures import CancelledError
    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker
    return isinstance(exc, (CancelledError, KilledWorker, CommClosedError, OSError))


def new_token() -> str:
    return uuid.uuid4().hex


def forget_on_workers(client, token) -> None:
    """Drop the run's replica cache on every worker (best effort: a cache)."""
    from nnlib.dask import _worker
    try:
        client.run(_worker.forget, token)
    except Exception as exc:  # noqa: BLE001 - a cache left behind is bounded
        warnings.warn(f"could not drop the run's replicas on the workers: {exc!r}",
                      RuntimeWarning, stacklevel=3)


class ClusterRun:
    """The part of a run on the cluster that does not depend on how it trains: the
    checked settings, the shards, the claim on the model, and the submission of one
    step or round with retries after lost workers.

    Subclasses set ``unit`` ("step" or "round") and keep ``completed`` current.
    """

    unit = "step"

    def __init__(self, model: Any, X: Any, y: Any, client: Any, loss: str, optimizer: Any,
                 batch_size: Optional[int], l2: float, l2_per_batch: bool, margin: float,
                 shuffle: bool,
                 max_retries: int) -> None:
        from nnlib.callbacks import History
        from nnlib.dask import _worker
        from nnlib.dask._shards import place_shards
        self.loss = check_loss(loss)
        self.optimizer, self.batch_size, self.l2, self.margin = check_settings(
            model, optimizer, batch_size, l2, margin)
        self.model, self.client = model, get_client(client)
        self.l2_per_batch, self.shuffle = bool(l2_per_batch), bool(shuffle)
        self.max_retries = int(max_retries)
        self.skel = _worker.skeleton(model)
        self.token = new_token()
        self.shards: Any = place_shards(self.client, self.skel, self.loss, X, y)   # or None
        self.epoch, self.history = 0, History()
        self.completed = {"epoch": 0, self.unit: 0}
        self._claimed = False

    # -- lifetime ---------------------------------------------------------------------
    def __enter__(self):
        claim(self.model, "the model", "it is being trained by another fit; train one "
              "model in one fit at a time", self)
        self._claimed = True
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        """Release the model, the shards and the workers' replicas (leaving the ``with``
        block calls it; a closed run refuses to train). Closing twice does nothing.

        Examples
        --------
        >>> import dask.array as da, nnlib
        >>> from distributed import Client
        >>> from nnlib.dask import DataParallelRun
        >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
        ...                 dashboard_address=":0")
        >>> X = da.random.RandomState(0).normal(size=(100, 2), chunks=50)
        >>> y = (X[:, 0] > 0).astype("int64")
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> run = DataParallelRun(model, X, y, client=client, batch_size=25)
        >>> run.run_epoch().steps
        4
        >>> run.close()
        >>> run.shards is None, run.epoch             # the trained state stays
        (True, 1)
        >>> run.run_epoch()
        Traceback (most recent call last):
        ...
        RuntimeError: this run is closed
        >>> client.close()
        """
        if self._claimed:
            release(self.model, self)
            self._claimed = False
        if self.shards is not None:
            forget_on_workers(self.client, self.token)
            self.shards = None

    def _record(self, result, tic):
        """Enter a finished (or faulted) epoch in the history, as ``fit`` does."""
        import time
        if result.fault is None:
            self.history.add_epoch(self.epoch, loss=result.mean_loss,
                                   time=time.perf_counter() - tic, lr=self.optimizer.lr)
            self.epoch += 1
        else:
            self.history.nonfinite = {"epoch": self.epoch, self.unit: result.steps,
                                      "what": result.fault, "cause": result.cause}
            self.history.stop_reason = "nonfinite"
        return result

    def _check_open(self):
        """Before each epoch: the run is open, and the model still has the layers the
        workers' replicas were built from (a callback or the user's code between
        epochs may have changed them: the workers would go on training the old network
        -- model averaging silently, data parallel with a broadcasting error)."""
        if self.shards is None:
            raise RuntimeError("this run is closed")
        from nnlib.dask import _worker
        try:
            same = _worker.skeleton(self.model) == self.skel
        except Exception:           # noqa: BLE001 -- a layer skeleton cannot describe
            same = False
        if not same:
            from nnlib.training import LAYERS_CHANGED
            raise RuntimeError(f"{LAYERS_CHANGED}; the workers train the network the "
                               f"run was built from: start a new run")

    # -- one step or round on every shard ---------------------------------------------
    def _on_shards(self, sent, task, parts, *args):
        """``task(shard, sent, part, *args)`` on every shard with a non-empty ``part``
        (an array of rows, or a tuple whose first item is one), ``sent`` scattered once;
        the results in shard order (None for empty parts).

        The client's model is untouched until this returns, so after a lost worker the
        same submission is simply made again (dask has already re-run, or will re-run,
        the lost shards from the data's graph); without a graph, or after
        ``max_retries``, raise WorkerLostError."""
        client = self.client
        for attempt in range(self.max_retries + 1):
            try:
                [w] = client.scatter([sent], hash=False)
                futures = [client.submit(task, shard, w, part, *args, pure=False)
                           for shard, part in zip(self.shards.futures, parts)
                           if _rows_in(part)]
                done = iter(client.gather(futures))
                return [next(done) if _rows_in(part) else None for part in parts]
            except Exception as exc:  # noqa: BLE001 - sorted just below
                if not is_worker_loss(exc):
                    raise
                if not self.shards.recoverable or attempt == self.max_retries:
                    raise self._lost(exc) from exc
                warnings.warn(f"a {self.unit} failed on a lost worker ({exc!r}); "
                              f"submitting it again from the last completed {self.unit}",
                              RuntimeWarning, stacklevel=4)
        raise AssertionError("unreachable")

    def _lost(self, exc):
        where = self.completed
        why = ("the shards were given as NumPy pieces, which only that worker held"
               if not self.shards.recoverable else
               f"the {self.unit} failed {self.max_retries + 1} times")
        return WorkerLostError(
            f"a dask worker was lost during training ({type(exc).__name__}: {exc}); "
            f"{why}. The model holds the parameters after {self.unit} "
            f"{where[self.unit]} of epoch {where['epoch']} (the optimizer its state and "
            f"t={self.optimizer.t}); give the data as a dask array to let the run "
            f"rebuild lost shards", where)


def _rows_in(part) -> int:
    return (part[0] if isinstance(part, tuple) else part).size


def fit_epochs(run, epochs, callbacks):
    """Run ``epochs`` epochs of ``run`` (entered here) as ``fit`` does: stop with a
    RuntimeWarning on a non-finite fault, or when a callback returns True or sets
    ``model.stop_training``; the run's History.

    ``callbacks`` are ``fit``'s: plain callables ``cb(epoch, logs) -> bool`` and
    :class:`nnlib.callbacks.Callback` objects, which get the epoch hooks
    (``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end``, ``on_train_end``),
    ``set_model`` and ``set_params``, in fit's order: EarlyStopping and
    ModelCheckpoint work as in ``fit``. A callback overriding a batch hook is
    refused: an epoch's steps run on the cluster without returning to Python
    between batches."""
    from nnlib._divergence import fault_phrase
    from nnlib._validation import check_int_scalar
    from nnlib.callbacks import (Callback, EarlyStopping, ModelCheckpoint, as_callbacks,
                                 wants_batches)
    epochs = check_int_scalar(epochs, "epochs", low=0)
    callbacks = as_callbacks(callbacks)
    objects = [cb for cb in callbacks if isinstance(cb, Callback)]
    logged = ["loss"]
    for cb in objects:
        if isinstance(cb, ModelCheckpoint) and cb.save_freq != "epoch":
            raise TypeError(f"ModelCheckpoint(save_freq={cb.save_freq}) saves every "
                            f"{cb.save_freq} batches (Keras's meaning), which a cluster "
                            f"run cannot call back between (its epoch runs without "
                            f"returning to Python between {run.unit}s); save per epoch: "
                            f"save_freq='epoch', with period=N for every N epochs")
        if wants_batches(cb):
            raise TypeError(f"{type(cb).__name__} overrides a batch hook, which a cluster "
                            f"run cannot call (its epoch runs without returning to "
                            f"Python between {run.unit}s); give epoch hooks only "
                            f"(on_epoch_begin, on_epoch_end, on_train_begin/_end)")
        if isinstance(cb, EarlyStopping):
            cb.check_monitor(logged)
    model = run.model
    # verbose 0: a cluster run prints nothing
    params = {"verbose": 0, "epochs": epochs, "batch_size": getattr(run, "batch_size", None),
              "steps": None, "metrics": logged, "optimizer": run.optimizer}
    last_logs = None
    with run:
        # the model is claimed now: a run refused because another thread's fit trains
        # it clears none of that fit's state (its stop_training). As fit, the run's
        # loss and optimizer become the model's: what ModelCheckpoint's
        # include_optimizer saves, and what train_on_batch continues with; its History
        # is model.history, filled as each epoch ends (kept if the run is interrupted)
        model.stop_training = False
        model.optimizer, model.loss = run.optimizer, run.loss
        model.history = run.history
        # Keras's History.params and History.model, as fit's History has them
        run.history.params, run.history.model = dict(params), model
        for cb in objects:
            cb.set_model(model)
            cb.set_params(params)
        for cb in objects:
            cb.on_train_begin({})
        for epoch in range(epochs):
            for cb in objects:
                cb.on_epoch_begin(epoch, {})
            result = run.run_epoch()
            if result.fault is not None:
                # the cause as a local fit names it (the weights given or grown, or the
                # update: the learning rate), found where the step ran
                warnings.warn(f"training stopped at epoch {epoch}, {run.unit} "
                              f"{result.steps}: {fault_phrase(result.fault, result.cause)}"
                              f"; the parameters are those of the last finite {run.unit}",
                              RuntimeWarning, stacklevel=3)
                break
            logs = {k: v[-1] for k, v in run.history.history.items() if v}
            last_logs = logs
            # as fit (and Keras): every callback sees the epoch's end, then the loop
            # decides
            stop = False
            for cb in callbacks:
                if isinstance(cb, Callback):
                    cb.on_epoch_end(epoch, dict(logs))
                elif cb(epoch, logs):
                    stop = True
            if stop or model.stop_training:
                stopped_by = [cb for cb in objects if isinstance(cb, EarlyStopping)
                              and cb.stopped_epoch == epoch]
                run.history.stop_reason = "early_stopping" if stopped_by else "callback"
                break
        # still claimed: EarlyStopping puts its best weights back before another
        # thread's fit may take the model
        for cb in objects:
            cb.on_train_end(dict(last_logs or {}))
    return run.history
