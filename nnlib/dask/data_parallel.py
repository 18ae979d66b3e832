"""Synchronous data-parallel training of a Sequential on a dask.distributed cluster.

One step, for a global batch of B rows drawn exactly as ``Sequential.fit`` draws it
(one permutation per epoch from ``random_state``, batches in order)::

    client: the parameters as one flat vector, scattered to every worker
    worker k: gather the batch's rows it holds (B_k of them), compiled forward and
              backward (``train.loss_grad``) -> g_k = mean gradient over its rows;
              returns (B_k / B) g_k and its loss sum        [shard_gradient]
              (with Dropout layers: each row with the masks of its position in the
              global batch at this step, ``loss_grad(batch_rows=...)``)
    client: g = sum_k (B_k / B) g_k, in shard order (fixed, whatever finishes first)
            g_W += l2_eff W (once); optimizer.step(params, g) (once)

``sum_k (B_k/B) g_k`` is the mean gradient over the B rows, so the run follows
single-process ``fit`` with the same batch size, seed and data order (to rounding:
the sums are grouped differently; 1e-12 in float64 over a few hundred steps).

Dropout. The compiled epoch keys the mask of a batch row by the layer's seed, its step
count and the row's position in the batch (``nnlib/_kernels/train.pyx``, design note).
The run seeds Dropout layers made without a seed as ``fit`` does (from a child of
``random_state``), sends every step each layer's ``(seed, step)``, and each worker
draws, through the compiled kernels, the masks of its rows' positions in the global
batch: every row is dropped exactly as in single-process ``fit``. A layer's ``step``
advances with every applied step (it follows the optimizer's count, so a step
repeated after a lost worker draws the same masks). The data
stays on the workers; per step only the parameters go out and one gradient per shard
comes back, 2 P bytes per worker for P parameter bytes, plus a few scheduler round
trips. That round trip is paid every step: on a small network or batch one process is
faster (README, "Beyond one machine", measured by ``python -m bench --only dask``).

A worker that dies mid-step: dask re-runs the step's tasks elsewhere (rebuilding a
lost shard from the dask array's graph), the client's weights are untouched until every
part is in, and the step repeats with the same result. Shards given as NumPy pieces
cannot be rebuilt: the run stops with :class:`WorkerLostError` and the weights of the
last completed step.
"""
import math
import time
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple

import numpy as np

from nnlib._random import as_generator
from nnlib._typing import SeedLike
from nnlib.callbacks import History
from nnlib.dask import _worker
from nnlib._threads import complete
from nnlib.dask._common import ClusterRun, fit_epochs
from nnlib.training import EpochResult, FAULTS, dropout_layers

if TYPE_CHECKING:
    from nnlib.model import Sequential
    from nnlib.optim import Optimizer

__all__ = ["DataParallelRun", "fit_data_parallel"]


class DataParallelRun(ClusterRun):
    """One data-parallel training run: the shards on the workers, the model and
    optimizer on the client, the epoch and step reached.

    Parameters
    ----------
    model : Sequential
        Trained in place (its live arrays change after every step).
    X : dask.array.Array (n, n_in), or list of (X_k, y_k) pairs
        The training rows. A dask array is persisted on the cluster and never gathered;
        pieces are scattered one per worker and define the row order (piece 0 first).
    y : dask.array.Array or None
        Labels or targets as ``Sequential.fit`` takes them, the same rows as X (None
        with pieces).
    client : distributed.Client, optional
        Default: the current default client.
    loss, optimizer, batch_size, shuffle, random_state, l2, l2_per_batch, margin
        As in :meth:`nnlib.Sequential.fit`; the batches and their order are the ones
        ``fit`` would draw from the same ``random_state``, and so are the dropout masks
        (Dropout layers without a seed are seeded here, as ``fit`` seeds them).
    max_retries : int >= 0
        Times a step is submitted again after its tasks failed on lost workers (dask
        itself already re-runs tasks of a dead worker; this covers what it gave up on).

    Attributes
    ----------
    epoch : int
        Epochs completed.
    history : nnlib.callbacks.History
    completed : dict
        ``{"epoch": e, "step": s}``: the last completed step (steps of epoch ``e``).
    step_seconds : list of float
        Wall time of every step (communication included), for measurements.

    Examples
    --------
    Two workers in this process (a real cluster: ``Client("scheduler:8786")``), each
    holding one chunk of 200 rows:

    >>> import dask.array as da, nnlib
    >>> from distributed import Client
    >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
    ...                 dashboard_address=":0")
    >>> X = da.random.RandomState(0).normal(size=(400, 4), chunks=200)
    >>> y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    >>> model = nnlib.Sequential([nnlib.Dense(4, 8, "tanh", random_state=0),
    ...                           nnlib.Dense(8, 2, random_state=1)])
    >>> with DataParallelRun(model, X, y, client=client, batch_size=100,
    ...                      optimizer=nnlib.optim.SGD(lr=0.3), random_state=0) as run:
    ...     for _ in range(3):
    ...         result = run.run_epoch()
    >>> run.epoch, run.completed, len(run.step_seconds)      # 4 steps per epoch
    (3, {'epoch': 2, 'step': 4}, 12)
    >>> losses = run.history["loss"]
    >>> losses[0] > losses[1] > losses[2], model.score(X.compute(), y.compute()) > 0.9
    (True, True)
    >>> client.close()
    """

    def __init__(self, model: "Sequential", X: Any, y: Any = None, *, client: Any = None,
                 loss: str = "softmax_cross_entropy", optimizer: Optional["Optimizer"] = None,
                 batch_size: Optional[int] = 32, shuffle: bool = True,
                 random_state: SeedLike = None,
                 l2: float = 0.0, l2_per_batch: bool = False, margin: float = 1.0,
                 max_retries: int = 2) -> None:
        super().__init__(model, X, y, client, loss, optimizer, batch_size, l2,
                         l2_per_batch, margin, shuffle, max_retries)
        self.rng = as_generator(random_state)
        from nnlib.model import _seed_dropouts
        _seed_dropouts(model, self.rng)     # a child of rng: the shuffles stay fit's
        self.dropouts = [layer for _, layer in dropout_layers(model)]
        self._drop_steps0 = [layer.step for layer in self.dropouts]
        self._t0 = self.optimizer._steps_of(model.params)
        self.step_seconds = []

    # -- verbs ------------------------------------------------------------------------
    def run_epoch(self) -> EpochResult:
        """One epoch over a new permutation of the rows (as ``fit`` draws it).

        Returns
        -------
        EpochResult
            ``(loss_sum, seen, steps, fault)`` (:class:`nnlib.training.EpochResult`):
            the batch losses times their rows, summed; the rows and steps trained; and
            None, or what became non-finite. A non-finite loss or gradient stops the
            epoch before that step is applied, an update that would overflow leaves the
            weights and the state as they were. The epoch is also entered in
            ``history`` (a fault in ``history.nonfinite``).

        Examples
        --------
        >>> import dask.array as da, nnlib
        >>> from distributed import Client
        >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
        ...                 dashboard_address=":0")
        >>> X = da.random.RandomState(0).normal(size=(400, 4), chunks=200)
        >>> y = (X[:, 0] > 0).astype("int64")
        >>> model = nnlib.Sequential([nnlib.Dense(4, 2, random_state=0)])
        >>> with DataParallelRun(model, X, y, client=client, batch_size=64) as run:
        ...     result = run.run_epoch()
        >>> result.seen, result.steps, result.fault           # 7 batches: 6 x 64 + 16
        (400, 7, None)
        >>> result.mean_loss == run.history["loss"][0]
        True
        >>> client.close()
        """
        self._check_open()
        n, B = self.shards.n_rows, self.batch_size
        order = (self.rng.permutation(n) if self.shuffle else np.arange(n)).astype(
            np.int64, copy=False)
        tic = time.perf_counter()
        total, seen, steps, fault, cause = 0.0, 0, 0, None, None
        self.completed = {"epoch": self.epoch, "step": 0}
        try:
            for start in range(0, n, B):
                rows = order[start:start + B]
                batch_loss, fault, cause = self._step(rows)
                if fault is not None:
                    break
                total += batch_loss * rows.shape[0]
                seen += rows.shape[0]
                steps += 1
                self.completed = {"epoch": self.epoch, "step": steps}
        finally:        # however the epoch ends, the masks continue from the steps applied
            complete(self._sync_dropout_steps)
        return self._record(EpochResult(total, seen, steps, fault, cause), tic)

    def _sync_dropout_steps(self):
        """Each Dropout layer's step count: its count at the run's start plus the steps
        applied since (the optimizer's count); idempotent."""
        if self.dropouts:
            t = self.optimizer._steps_of(self.model.params)
            for layer, step0 in zip(self.dropouts, self._drop_steps0):
                layer.step = (step0 + t - self._t0) % 2**64

    def step(self, rows: np.ndarray) -> Tuple[float, Optional[str]]:
        """One synchronous step on the global batch ``rows`` (global row indices).

        Parameters
        ----------
        rows : ndarray of int (B,)
            The batch: indices into the rows of X (across the shards), any order.

        Returns
        -------
        loss : float
            The mean data loss over the rows plus ``l2_eff / 2 sum ||W||^2``, before
            the update.
        fault : None or str
            What was non-finite (the step then not applied); the run's
            ``history.nonfinite["cause"]`` says why (from :meth:`run_epoch`).

        Examples
        --------
        The step is the optimizer's step on the batch's mean gradient, whichever
        workers hold its rows:

        >>> import dask.array as da, nnlib
        >>> from distributed import Client
        >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
        ...                 dashboard_address=":0")
        >>> X = da.random.RandomState(0).normal(size=(400, 4), chunks=200)
        >>> y = (X[:, 0] > 0).astype("int64")
        >>> model = nnlib.Sequential([nnlib.Dense(4, 2, random_state=0)])
        >>> reference = nnlib.Sequential([nnlib.Dense(4, 2, random_state=0)])
        >>> rows = np.array([3, 250, 17, 399])                 # on both shards
        >>> with DataParallelRun(model, X, y, client=client,
        ...                      optimizer=nnlib.optim.SGD(lr=0.1)) as run:
        ...     loss, fault = run.step(rows)
        >>> ref_loss, grads = reference.loss_and_grads(X[rows].compute(), y[rows].compute())
        >>> fault, bool(np.isclose(loss, ref_loss))
        (None, True)
        >>> all(np.allclose(p, q - 0.1 * g)
        ...     for p, q, g in zip(model.params, reference.params, grads))
        True
        >>> client.close()
        """
        return self._step(rows)[:2]

    def _step(self, rows):
        """:meth:`step`, and the cause of its fault (``nnlib._divergence``'s phrase, as a
        local fit names it; None without a fault, or when it cannot be told)."""
        tic = time.perf_counter()
        model, params = self.model, self.model.params
        parts = self.shards.locate(np.asarray(rows, dtype=np.int64))
        B = int(rows.shape[0])
        flat = _worker.flat_params(params)
        self._sync_dropout_steps()
        drop = [(layer.mask_seed, layer.step) for layer in self.dropouts]
        results = self._on_shards(flat, _gradient_task, parts, B, self.token, self.skel,
                                  self.loss, self.margin, drop)
        loss_sum, grad = 0.0, None
        for r in results:               # shard order: the sum never depends on timing
            if r is None or r[1] is None:
                continue
            value, g = r
            loss_sum += value
            grad = g if grad is None else grad.__iadd__(g)
        l2_eff = self.l2 / B if self.l2_per_batch else self.l2
        batch_loss = loss_sum / B
        penalty = 0.0
        if l2_eff:
            penalty = 0.5 * l2_eff * sum(float(np.dot(W.ravel(), W.ravel()))
                                         for W in params[0::2])
            batch_loss += penalty
        if not math.isfinite(batch_loss) or not np.isfinite(grad).all():  # type: ignore
            fault = FAULTS[1] if not math.isfinite(batch_loss) else FAULTS[2]
            return batch_loss, fault, self._cause(results, parts, flat, drop, penalty)
        grads = _unflatten(grad, params)
        if l2_eff:
            for g, W in zip(grads[0::2], params[0::2]):
                g += l2_eff * W
        from nnlib.exceptions import NonFiniteError
        try:
            self.optimizer.step(params, grads)
        except NonFiniteError:
            # the loss and gradient are finite at the weights the step starts from
            # (kept: the step is refused whole): its update overflows
            from nnlib._divergence import update_cause
            return batch_loss, FAULTS[3], update_cause(params, model.dtype,
                                                       "the learning rate", grads)
        complete(self._sync_dropout_steps)
        self.step_seconds.append(time.perf_counter() - tic)
        return batch_loss, None, None

    def _cause(self, results, parts, flat, drop, penalty):
        """Why a step's loss or gradient is not finite: the first shard whose part is
        not finite diagnoses it on its rows (``_worker.shard_fault_cause``, one more
        task, run only after a fault); with every part finite, the L2 penalty's
        overflow (the weights), else None (their sum overflowed)."""
        from nnlib._divergence import weights_cause
        first = self.optimizer._steps_of(self.model.params) == self._t0
        for k, r in enumerate(results):
            if r is None or r[1] is None or (math.isfinite(r[0])
                                             and np.isfinite(r[1]).all()):
                continue
            nothing = (np.empty(0, np.int64), np.empty(0, np.int64))
            only_k = [part if j == k else nothing for j, part in enumerate(parts)]
            return self._on_shards(flat, _cause_task, only_k, self.token, self.skel,
                                   self.loss, self.margin, drop, first)[k]
        if not math.isfinite(penalty):
            params = self.model.params
            return weights_cause("L2 penalty", params, None, self.model.dtype, first,
                                 "the learning rate")
        return None



def _gradient_task(shard, flat, part, *args):
    rows, positions = part
    return _worker.shard_gradient(shard, flat, rows, positions, *args)


def _cause_task(shard, flat, part, *args):
    rows, positions = part
    return _worker.shard_fault_cause(shard, flat, rows, positions, *args)


def _unflatten(flat, params):
    out, o = [], 0
    for p in params:
        out.append(flat[o:o + p.size].reshape(p.shape))
        o += p.size
    return out


def fit_data_parallel(model: "Sequential", X: Any, y: Any = None, *, client: Any = None,
                      loss: str = "softmax_cross_entropy", optimizer: Optional["Optimizer"] = None,
                      epochs: int = 1, batch_size: Optional[int] = 32, shuffle: bool = True,
                      random_state: SeedLike = None, l2: float = 0.0, l2_per_batch: bool = False,
                      margin: float = 1.0, callbacks: Optional[Sequence[Any]] = None,
                      max_retries: int = 2) -> History:
    """Train ``model`` in place by synchronous data-parallel steps on a dask cluster.

    The result equals ``model.fit(X, y, loss=..., optimizer=..., epochs=...,
    batch_size=..., random_state=..., l2=...)`` on the gathered data (to rounding; see
    :mod:`nnlib.dask.data_parallel`), with each step's gradient computed where the data
    lives; Dropout layers drop every row as ``fit`` would, and their ``step`` counts
    advance as in ``fit``.

    Parameters
    ----------
    model : Sequential
        A stack of :class:`nnlib.Dense` layers, trained in place (its live arrays
        change after every step).
    X : dask.array.Array (n, n_in), or list of (X_k, y_k) pairs
        The training rows, persisted on the cluster and never gathered; NumPy pieces
        are scattered one per worker (piece 0's rows first) and cannot be rebuilt if
        their worker dies.
    y : dask.array.Array or None
        Labels or targets as ``Sequential.fit`` takes them for ``loss``, the same rows
        as X (chunked like them or not); None with pieces.
    client : distributed.Client, optional
        Default: the current default client.
    loss : str, default "softmax_cross_entropy"
        As in :meth:`nnlib.Sequential.fit`.
    optimizer : nnlib.optim optimizer, optional
        Stepped once per global batch, on the client. Default as ``fit``'s
        (:func:`nnlib.model.default_optimizer`): ``model.optimizer`` when it holds the
        model's arrays, else ``SGD(lr=0.01)``.
    epochs : int >= 0, default 1
    batch_size : int >= 1 or None, default 32
        Rows of one global batch, wherever they are. None takes 32, as ``fit``'s
        (Keras's default).
    shuffle : bool, default True
        A new permutation of all rows each epoch (``fit``'s), else the row order.
    random_state : None, int or numpy.random.Generator
        Seeds the permutations: the same batches as ``fit`` with this seed.
    l2 : float >= 0, default 0
        L2 penalty ``l2/2 * sum ||W||^2`` on the weights (not the biases).
    l2_per_batch : bool, default False
        Divide ``l2`` by the batch's rows, as ``fit`` does with this flag.
    margin : float >= 0, default 1
        hinge_loss's margin.
    callbacks : list of nnlib.callbacks.Callback objects or callables
        As ``fit``'s, at epoch level: a callable ``cb(epoch, logs) -> bool`` is called
        after each epoch with its logs (``loss``, ``time``, ``lr``) and a true return
        value stops training; a Callback object gets ``set_model``, ``set_params``
        and the epoch hooks (``on_train_begin``, ``on_epoch_begin``,
        ``on_epoch_end``, ``on_train_end``), so ``EarlyStopping(monitor="loss")``
        and ``ModelCheckpoint`` per epoch (``save_freq="epoch"``, ``period=N``)
        work as in ``fit``. One overriding a batch hook, or a ModelCheckpoint
        counting batches, is refused with a TypeError (the epoch's steps run on the
        cluster).
    max_retries : int >= 0, default 2
        Times a step is submitted again after its tasks failed on lost workers (see
        :class:`DataParallelRun`).

    Returns
    -------
    History
        Per-epoch loss (L2 included), time and lr; ``nonfinite`` as in ``fit``.

    Raises
    ------
    WorkerLostError
        A worker died with data nothing can rebuild; the model keeps the weights of the
        last completed step (``exc.completed``).

    Examples
    --------
    The same weights as ``fit`` on the gathered data, to rounding:

    >>> import dask.array as da, nnlib
    >>> from distributed import Client
    >>> from nnlib.optim import Adam
    >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
    ...                 dashboard_address=":0")
    >>> X = da.random.RandomState(0).normal(size=(400, 4), chunks=200)
    >>> y = (X[:, :2].sum(axis=1) > 0).astype("int64")
    >>> def network():
    ...     return nnlib.Sequential([nnlib.Dense(4, 8, "relu", random_state=0),
    ...                              nnlib.Dense(8, 2, random_state=1)])
    >>> model, single = network(), network()
    >>> history = fit_data_parallel(model, X, y, client=client, optimizer=Adam(lr=1e-2),
    ...                             epochs=2, batch_size=100, random_state=0, l2=1e-4)
    >>> reference = single.fit(X.compute(), y.compute(), optimizer=Adam(lr=1e-2),
    ...                        epochs=2, batch_size=100, random_state=0, l2=1e-4)
    >>> history.epochs, np.allclose(history["loss"], reference["loss"], rtol=1e-12)
    (2, True)
    >>> all(np.allclose(p, q, rtol=0, atol=1e-12)
    ...     for p, q in zip(model.params, single.params))
    True
    >>> client.close()
    """
    run = DataParallelRun(model, X, y, client=client, loss=loss, optimizer=optimizer,
                          batch_size=batch_size, shuffle=shuffle, random_state=random_state,
                          l2=l2, l2_per_batch=l2_per_batch, margin=margin,
                          max_retries=max_retries)
    return fit_epochs(run, epochs, callbacks)
