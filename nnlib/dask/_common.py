"""What the data-parallel and the model-averaging runs share: the client, the check of
fit's settings, and how a lost worker is recognised and reported."""
import uuid
import warnings

from nnlib._codes import loss_code
from nnlib._validation import check_fits_dtype, check_int_scalar, check_real_scalar

__all__ = ["WorkerLostError", "get_client", "check_settings", "is_worker_loss",
           "new_token", "forget_on_workers"]


class WorkerLostError(RuntimeError):
    """A worker died with data nothing can rebuild (shards given as NumPy pieces), or a
    step failed on lost workers more often than the run retries.

    The model holds the weights (and the optimizer the state and step count) after the
    last completed step or averaged round; ``completed`` says which:
    ``{"epoch": e, "step": s}`` (data parallel: steps completed within epoch ``e``) or
    ``{"epoch": e, "round": r}`` (model averaging).
    """

    def __init__(self, message, completed):
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
    """fit's checks of its scalar settings; the optimizer (default ``SGD(lr=0.01)``)."""
    from nnlib import optim
    from nnlib.model import Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a nnlib.Sequential; got {type(model).__name__}")
    batch_size = check_int_scalar(batch_size, "batch_size", low=1)
    l2 = check_real_scalar(l2, "l2", low=0.0)
    check_fits_dtype(l2, "l2", model.dtype)
    margin = check_real_scalar(margin, "margin", low=0.0)
    optimizer = optim.SGD(lr=0.01) if optimizer is None else optimizer
    if not hasattr(optimizer, "config") or not hasattr(optimizer, "state_arrays"):
        raise TypeError(f"optimizer must be an nnlib.optim optimizer; got "
                        f"{type(optimizer).__name__}")
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
