"""nnlib on a dask.distributed cluster (the ``dask`` extra: ``pip install nnlib[dask]``).

* :func:`fit_data_parallel` / :class:`DataParallelRun` -- synchronous data-parallel
  training: every step's gradient is computed where the data lives and summed in a
  fixed order; the result equals single-process ``Sequential.fit`` with the same
  batches (to rounding), Dropout masks included.
* :func:`fit_model_averaging` / :class:`ModelAveragingRun` -- each worker trains its
  own copy on its shard with the compiled epoch (its own stream of Dropout masks); the
  copies (and the optimizer state) are averaged every ``average_every`` steps or once
  per epoch.

Both train ``Sequential`` models of ``Dense`` and ``Dropout`` layers; a Python layer
is refused with a TypeError naming it.
* :class:`WorkerLostError` -- a worker died with data nothing can rebuild; the model
  keeps the last completed step or round.

The scikit-learn estimators need nothing from here to run on dask: ``MLPClassifier``
and ``MLPRegressor`` pickle and work with dask-ml's ``Incremental`` (``partial_fit``
over the blocks of a dask array), ``ParallelPostFit`` and joblib's dask backend (README,
"Beyond one machine").

``import nnlib`` never imports this package (nor dask); importing it needs ``dask`` and
``distributed``.
"""
try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:     # pragma: no cover - exercised without the extra
    raise ImportError("nnlib.dask needs dask and distributed: pip install "
                      "'nnlib[dask]' (or pip install 'dask[array]' distributed)") from exc

from nnlib.dask._common import WorkerLostError
from nnlib.dask.averaging import ModelAveragingRun, fit_model_averaging
from nnlib.dask.data_parallel import DataParallelRun, fit_data_parallel

__all__ = ["DataParallelRun", "fit_data_parallel", "ModelAveragingRun",
           "fit_model_averaging", "WorkerLostError"]
