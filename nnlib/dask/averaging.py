"""Model averaging on a dask.distributed cluster: every worker trains its own copy on
its shard with the compiled epoch, and the copies are averaged every few steps.

One round::

    client: parameters and optimizer state, scattered to every worker
    worker k: a replica from them trains ``average_every`` steps (or its whole local
              epoch) on its shard, ``TrainingRun.run_epoch`` -- the compiled loop,
              nothing per step leaves the worker                  [local_round]
    client: parameters <- sum_k (n_k / n) params_k, in shard order
            optimizer state <- the same weighted average; optimizer.t += the most
            local steps any worker took

The optimizer state (SGD's momentum buffer, Adam's first and second moments,
Adagrad's and RMSprop's running squares) is averaged like the weights: each is a running
statistic of the gradients its worker saw, and the average is that statistic over the
workers' pooled gradients at the scale a single worker's step expects. Averaging it
keeps Adam's bias correction and a momentum's direction consistent with the averaged
weights; restarting it every round would throw away what was learned about curvature.

Communication is 2 P bytes per worker per round (P parameter and state bytes) instead
of per step: ``average_every`` steps of the data-parallel run cost one round here. The
price is that the result is not single-process training: each worker descends on its
own shard between averages (local SGD). ``python -m bench --only dask`` measures the
accuracy against single-process ``fit`` on the same data and epochs.

Dropout. Each worker's copy of a Dropout layer draws its own stream of masks: worker
(shard) k's copy of a layer whose seed is ``s`` (its own, or the one the run draws for
it from a child of ``random_state``, as ``fit`` does) uses the seed
``SeedSequence(s).spawn(k + 1)[k]`` (:func:`nnlib.dask._worker.shard_dropout_seed`),
its counter starting each round at the layer's ``step`` on the client; after the round
the client's ``step`` advances by the most local steps any worker took (as
``optimizer.t``), so no worker ever reuses a mask of its stream. The masks are
independent across workers and a function of the seed, the shard and the step: the
same ``random_state`` gives the same averaged model, bit for bit.

Every round is a pure function of the client's parameters, state and the round's
seeds: a round re-run after a worker died gives the same result.
"""
import time
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

import numpy as np

from nnlib._random import as_generator
from nnlib._threads import complete
from nnlib._typing import SeedLike
from nnlib._validation import check_int_scalar
from nnlib.callbacks import History
from nnlib.dask import _worker
from nnlib.dask._common import ClusterRun, fit_epochs
from nnlib.training import EpochResult, compiled_train, dropout_layers

if TYPE_CHECKING:
    from nnlib.model import Sequential
    from nnlib.optim import Optimizer

__all__ = ["ModelAveragingRun", "fit_model_averaging"]


class ModelAveragingRun(ClusterRun):
    """One model-averaging run: shards on the workers, the averaged model and optimizer
    state on the client (and the Dropout layers' step counts; each worker's masks are
    its own stream, see :mod:`nnlib.dask.averaging`).

    Parameters
    ----------
    model : Sequential
        Receives the averaged parameters after every round.
    X, y, client, loss, optimizer, batch_size, l2, l2_per_batch, margin
        As in :class:`nnlib.dask.DataParallelRun`.
    average_every : int >= 1 or None
        Local steps per worker between two averages; None: one local epoch (each
        worker one pass over its shard) per round.
    shuffle : bool
        Each worker visits its shard in a new permutation every epoch.
    random_state : None, int or Generator
        Seeds every worker's permutations and the dropout masks of Dropout layers made
        without a seed (a worker's draws do not depend on which machine runs it; see
        :mod:`nnlib.dask.averaging` for how worker k's masks derive from it).
    max_retries : int >= 0
        As in :class:`nnlib.dask.DataParallelRun`.

    Attributes
    ----------
    epoch : int
        Epochs completed (every worker has passed once over its shard).
    history : nnlib.callbacks.History
        ``loss``: the mean over the epoch of the workers' local batch losses.
    completed : dict
        ``{"epoch": e, "round": r}``: the last averaged round.

    Examples
    --------
    Two workers in this process (a real cluster: ``Client("scheduler:8786")``), each
    training on its chunk of 200 rows, averaged every 5 local steps:

    >>> import dask.array as da, nnlib
    >>> from distributed import Client
    >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
    ...                 dashboard_address=":0")
    >>> X = da.random.RandomState(0).normal(size=(400, 4), chunks=200)
    >>> y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    >>> model = nnlib.Sequential([nnlib.Dense(4, 8, "tanh", random_state=0),
    ...                           nnlib.Dense(8, 2, random_state=1)])
    >>> with ModelAveragingRun(model, X, y, client=client, batch_size=20,
    ...                        optimizer=nnlib.optim.SGD(lr=0.1), average_every=5,
    ...                        random_state=0) as run:
    ...     for _ in range(3):
    ...         result = run.run_epoch()
    >>> run.epoch, run.completed                     # 10 local steps: 2 rounds
    (3, {'epoch': 2, 'round': 2})
    >>> losses = run.history["loss"]
    >>> losses[0] > losses[1] > losses[2], model.score(X.compute(), y.compute()) > 0.9
    (True, True)
    >>> client.close()
    """

    unit = "round"

    def __init__(self, model: "Sequential", X: Any, y: Any = None, *, client: Any = None,
                 loss: str = "softmax_cross_entropy", optimizer: Optional["Optimizer"] = None,
                 batch_size: Optional[int] = 32, average_every: Optional[int] = None,
                 shuffle: bool = True,
                 random_state: SeedLike = None, l2: float = 0.0, l2_per_batch: bool = False,
                 margin: float = 1.0, max_retries: int = 2) -> None:
        super().__init__(model, X, y, client, loss, optimizer, batch_size, l2,
                         l2_per_batch, margin, shuffle, max_retries)
        try:
            # each worker's replica takes one set of hyper-parameters (_detached)
            self.optimizer.config(model.params)
        except ValueError as exc:
            raise ValueError(f"model averaging steps every replica's arrays with one set "
                             f"of hyper-parameters, and {exc}. Use fit_data_parallel "
                             f"(it steps with the optimizer's groups), or one group") from None
        self.average_every = (None if average_every is None else
                              check_int_scalar(average_every, "average_every", low=1))
        # whether a round has been averaged in: a worker's fault cause tells the
        # weights given to fit from those reached since
        self._averaged = False
        rng = as_generator(random_state)
        from nnlib.model import _seed_dropouts
        _seed_dropouts(model, rng)          # a child of rng: self.seed stays the same
        self.dropouts = [layer for _, layer in dropout_layers(model)]
        self.seed = int(rng.integers(2**63))

    # -- verbs ------------------------------------------------------------------------
    def local_orders(self, epoch: int) -> List[np.ndarray]:
        """Each shard's visiting order (local row indices) in epoch ``epoch``: a
        permutation drawn from ``(seed, epoch, shard)`` with ``shuffle``, else the row
        order. The same on any machine, and again after a worker died.

        Examples
        --------
        >>> import dask.array as da, nnlib
        >>> from distributed import Client
        >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
        ...                 dashboard_address=":0")
        >>> X = da.random.RandomState(0).normal(size=(10, 2), chunks=(6, 2))
        >>> y = (X[:, 0] > 0).astype("int64")
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> with ModelAveragingRun(model, X, y, client=client, random_state=0) as run:
        ...     orders = run.local_orders(0)
        ...     same, next_epoch = run.local_orders(0), run.local_orders(1)
        >>> [sorted(o.tolist()) for o in orders]             # shards of 6 and 4 rows
        [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3]]
        >>> all(np.array_equal(a, b) for a, b in zip(orders, same))
        True
        >>> any(not np.array_equal(a, b) for a, b in zip(orders, next_epoch))
        True
        >>> client.close()
        """
        sizes = np.diff(self.shards.offsets)
        if not self.shuffle:
            return [np.arange(n, dtype=np.int64) for n in sizes]
        return [np.random.default_rng([self.seed, epoch, k]).permutation(n).astype(
                np.int64) for k, n in enumerate(sizes)]

    def run_epoch(self) -> EpochResult:
        """One epoch: rounds of local training and averaging until every worker has
        passed once over its shard.

        Returns
        -------
        EpochResult
            :class:`nnlib.training.EpochResult` with ``steps`` the rounds and
            ``loss_sum``/``seen`` over the workers' local batches; a worker whose loss
            became non-finite stops the epoch before that round is averaged in
            (``fault``). The epoch is also entered in ``history``.

        Examples
        --------
        >>> import dask.array as da, nnlib
        >>> from distributed import Client
        >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
        ...                 dashboard_address=":0")
        >>> X = da.random.RandomState(0).normal(size=(400, 4), chunks=200)
        >>> y = (X[:, 0] > 0).astype("int64")
        >>> model = nnlib.Sequential([nnlib.Dense(4, 2, random_state=0)])
        >>> with ModelAveragingRun(model, X, y, client=client, batch_size=20,
        ...                        average_every=4) as run:
        ...     result = run.run_epoch()
        >>> result.steps, result.seen, result.fault      # 10 local steps: 3 rounds
        (3, 400, None)
        >>> result.mean_loss == run.history["loss"][0]
        True
        >>> client.close()
        """
        self._check_open()
        tic = time.perf_counter()
        orders, B = self.local_orders(self.epoch), self.batch_size
        local_steps = max(-(-o.shape[0] // B) for o in orders)
        per_round = local_steps if self.average_every is None else self.average_every
        total, seen, rounds, fault, cause = 0.0, 0, 0, None, None
        self.completed = {"epoch": self.epoch, "round": 0}
        for r in range(-(-local_steps // per_round)):
            rows = [o[r * per_round * B:(r + 1) * per_round * B] for o in orders]
            r_total, r_seen, fault, cause = self._round(rows)
            if fault is not None:
                break
            total, seen, rounds = total + r_total, seen + r_seen, rounds + 1
            self.completed = {"epoch": self.epoch, "round": rounds}
        return self._record(EpochResult(total, seen, rounds, fault, cause), tic)

    def round(self, rows: List[np.ndarray]) -> Tuple[float, int, Optional[str]]:
        """Train every shard from the current parameters over its local ``rows`` and
        average.

        Parameters
        ----------
        rows : list of ndarray of int
            One array per shard: the local row indices it trains on this round, in
            order, in batches of ``batch_size`` (an empty array: the shard sits out).

        Returns
        -------
        loss_sum : float
            The workers' batch losses times their rows, summed.
        seen : int
            Rows trained.
        fault : None or str
            What became non-finite on a worker (the round then not averaged in); the
            run's ``history.nonfinite["cause"]`` says why, as the worker found it.

        Examples
        --------
        With plain SGD (no optimizer state) the averaged model is the mean of what
        each shard's own ``fit`` gives, weighted by the rows each trained:

        >>> import dask.array as da, nnlib
        >>> from distributed import Client
        >>> from nnlib.optim import SGD
        >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
        ...                 dashboard_address=":0")
        >>> X = da.random.RandomState(0).normal(size=(12, 3), chunks=(6, 3))
        >>> y = (X[:, 0] > 0).astype("int64")
        >>> model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
        >>> with ModelAveragingRun(model, X, y, client=client, batch_size=3,
        ...                        optimizer=SGD(lr=0.1)) as run:
        ...     loss_sum, seen, fault = run.round([np.arange(6), np.arange(6)])
        >>> seen, fault
        (12, None)
        >>> Xs, ys = X.compute(), y.compute()
        >>> local = [nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)]) for _ in "ab"]
        >>> for k, copy in enumerate(local):
        ...     _ = copy.fit(Xs[6 * k:6 * k + 6], ys[6 * k:6 * k + 6], optimizer=SGD(lr=0.1),
        ...                  batch_size=3, shuffle=False)
        >>> all(np.allclose(p, (a + b) / 2)
        ...     for p, a, b in zip(model.params, local[0].params, local[1].params))
        True
        >>> client.close()
        """
        return self._round(rows)[:3]

    def _round(self, rows):
        """:meth:`round`, and the cause of its fault (the worker's
        ``EpochResult.cause``; None without a fault)."""
        params = self.model.params
        slots = compiled_train().state_slots(self.optimizer.config())
        states = self.optimizer._state_rows(params) if slots else None
        flat_states = None if states is None else [s.reshape(-1) for s in states]
        t0 = self.optimizer.t
        drop = [(layer.mask_seed, layer.step) for layer in self.dropouts]
        results = self._on_shards((_worker.flat_params(params), flat_states), _round_task,
                                  rows, t0, _stateless(self.optimizer),
                                  self.token, self.skel, self.loss, self.batch_size,
                                  self.margin, self.l2, self.l2_per_batch, drop,
                                  not self._averaged)
        done = [r for r in results if r is not None]
        for r in done:
            if r[5] is not None:
                return 0.0, 0, r[5], r[6]
        weights = np.array([r[4] for r in done], dtype=np.float64)
        weights /= weights.sum()
        avg = _weighted(weights, [r[0] for r in done])
        if not np.isfinite(avg).all():
            return 0.0, 0, "weights or optimizer state after an update", None
        avg_states = (None if states is None else
                      [_weighted(weights, [r[1][i] for r in done])
                       for i in range(len(states))])
        steps = max(r[2] for r in done)

        def commit():       # idempotent: complete() runs it again after an interrupt
            _worker.set_flat(params, avg)
            if states is not None and avg_states is not None:
                for st, a in zip(states, avg_states):
                    st.reshape(-1)[...] = a
            self.optimizer.t = t0 + steps
            for layer, (_, step) in zip(self.dropouts, drop):
                layer.step = (step + steps) % 2**64
            self._averaged = True

        complete(commit)
        return sum(r[3] for r in done), int(sum(r[4] for r in done)), None, None


def _round_task(shard, sent, rows, t0, optimizer, token, skel, loss, batch_size, margin,
                l2, l2_per_batch, drop, first_round):
    flat, states = sent
    return _worker.local_round(shard, flat, states, t0, optimizer, rows, token, skel,
                               loss, batch_size, margin, l2, l2_per_batch, drop,
                               first_round)


def _weighted(weights, vectors):
    """``sum_k weights[k] vectors[k]`` in the given order (fixed: shard order)."""
    out = vectors[0] * weights[0]
    for w, v in zip(weights[1:], vectors[1:]):
        out += w * v
    return out


def _stateless(optimizer):
    """A copy of the optimizer's rule and hyper-parameters without its parameters and
    state (the state travels as flat vectors beside it)."""
    return optimizer._detached()


def fit_model_averaging(model: "Sequential", X: Any, y: Any = None, *, client: Any = None,
                        loss: str = "softmax_cross_entropy",
                        optimizer: Optional["Optimizer"] = None, epochs: int = 1,
                        batch_size: Optional[int] = 32, average_every: Optional[int] = None,
                        shuffle: bool = True, random_state: SeedLike = None, l2: float = 0.0,
                        l2_per_batch: bool = False, margin: float = 1.0,
                        callbacks: Optional[Sequence[Any]] = None,
                        max_retries: int = 2) -> History:
    """Train ``model`` in place by model averaging on a dask cluster.

    Parameters
    ----------
    model : Sequential
        A stack of :class:`nnlib.Dense` layers; receives the averaged parameters after
        every round.
    X : dask.array.Array (n, n_in), or list of (X_k, y_k) pairs
        The training rows: each chunk's worker trains on the rows it holds (a shard);
        NumPy pieces are scattered one per worker and cannot be rebuilt if their worker
        dies.
    y : dask.array.Array or None
        Labels or targets as ``Sequential.fit`` takes them for ``loss``, the same rows
        as X; None with pieces.
    client : distributed.Client, optional
        Default: the current default client.
    loss : str, default "softmax_cross_entropy"
        As in :meth:`nnlib.Sequential.fit`.
    optimizer : nnlib.optim optimizer, optional
        Its rule runs on every worker; its state (momentum, moments) is averaged like
        the weights. Default as ``fit``'s
        (:func:`nnlib.model.default_optimizer`): ``model.optimizer`` when it holds the
        model's arrays, else ``SGD(lr=0.01)``.
    epochs : int >= 0, default 1
        Passes of every worker over its shard.
    batch_size : int >= 1 or None, default 32
        Rows of one local step, on one worker. None takes 32, as ``fit``'s (Keras's
        default).
    average_every : int >= 1 or None
        Local steps between averages (None: one local epoch per round).
    shuffle : bool, default True
        Each worker visits its shard in a new permutation every epoch.
    random_state : None, int or numpy.random.Generator
        Seeds every worker's permutations.
    l2 : float >= 0, default 0
        L2 penalty ``l2/2 * sum ||W||^2`` on the weights (not the biases).
    l2_per_batch : bool, default False
        Divide ``l2`` by the batch's rows, as ``fit`` does with this flag.
    margin : float >= 0, default 1
        hinge_loss's margin.
    callbacks : list of nnlib.callbacks.Callback objects or callables
        As :func:`nnlib.dask.fit_data_parallel`'s: ``fit``'s, at epoch level (a
        Callback overriding a batch hook is refused).
    max_retries : int >= 0, default 2
        Times a round is submitted again after its tasks failed on lost workers.

    Returns
    -------
    History
        Per-epoch loss (the mean of the workers' local batch losses), time and lr;
        ``nonfinite`` as in ``fit``.

    Raises
    ------
    WorkerLostError
        A worker died with data nothing can rebuild; the model keeps the parameters of
        the last averaged round (``exc.completed``).

    Examples
    --------
    >>> import dask.array as da, nnlib
    >>> from distributed import Client
    >>> from nnlib.optim import SGD
    >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
    ...                 dashboard_address=":0")
    >>> X = da.random.RandomState(0).normal(size=(1000, 6), chunks=500)
    >>> y = (X[:, :2].sum(axis=1) > 0).astype("int64")
    >>> model = nnlib.Sequential([nnlib.Dense(6, 16, "relu", random_state=0),
    ...                           nnlib.Dense(16, 2, random_state=1)])
    >>> history = fit_model_averaging(model, X, y, client=client,
    ...                               optimizer=SGD(lr=0.05, momentum=0.9), epochs=3,
    ...                               batch_size=32, average_every=4, random_state=0)
    >>> history.epochs, history["loss"][-1] < history["loss"][0]
    (3, True)
    >>> model.score(X.compute(), y.compute()) > 0.95
    True
    >>> client.close()
    """
    run = ModelAveragingRun(model, X, y, client=client, loss=loss, optimizer=optimizer,
                            batch_size=batch_size, average_every=average_every,
                            shuffle=shuffle, random_state=random_state, l2=l2,
                            l2_per_batch=l2_per_batch, margin=margin,
                            max_retries=max_retries)
    return fit_epochs(run, epochs, callbacks)
