"""The training data on the cluster: dask arrays (or per-worker pieces) turned into one
validated :class:`~nnlib.dask._worker.Shard` per worker, held there.

A dask array is persisted, its row blocks cut into one group of consecutive blocks per
worker (balanced by rows, a function of the chunks and the number of workers alone, not
of where dask happened to put the blocks: model averaging trains one copy per shard, so
its result depends on the partition), and each group joined and validated into one
shard on the worker that holds most of its rows (a task, so dask can rebuild a lost
shard from the array's graph on another worker). Pieces given as NumPy
arrays are scattered, one per worker: nothing can rebuild them, so a worker that dies
with one loses it (:class:`~nnlib.dask.WorkerLostError`).
"""
from typing import List, NamedTuple

import numpy as np

from nnlib.exceptions import ShapeError
from nnlib.dask import _worker

__all__ = ["ShardSet", "place_shards"]


class ShardSet(NamedTuple):
    """The shards of a run.

    futures : list of distributed.Future
        One per shard, in data order (each resolves to a ``_worker.Shard``).
    offsets : ndarray (n_shards + 1,) int64
        Global rows ``offsets[k]:offsets[k+1]`` are shard ``k``'s rows, in order.
    recoverable : bool
        Whether dask can rebuild a lost shard (True for dask arrays).
    """
    futures: List
    offsets: np.ndarray
    recoverable: bool

    @property
    def n_rows(self) -> int:
        return int(self.offsets[-1])

    def locate(self, rows: np.ndarray):
        """Split global row indices by shard: a list of ``(local, positions)`` pairs of
        int64 arrays, one per shard: the shard's rows among ``rows`` (local indices, in
        the order they appear) and their positions in ``rows``."""
        k = np.searchsorted(self.offsets, rows, side="right") - 1
        out = []
        for s in range(len(self.futures)):
            positions = np.flatnonzero(k == s)
            out.append((rows[positions] - self.offsets[s], positions.astype(np.int64)))
        return out


# Seconds to wait for a worker when the cluster has none at the moment: a nanny
# restarting its worker (after a crash, or past its memory limit) leaves the scheduler
# without it for a second or two.
WORKER_WAIT = 30.0


def _workers(client):
    """The addresses of the cluster's workers, sorted; waits up to ``WORKER_WAIT``
    seconds for one if there is none, then raises RuntimeError."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except (TimeoutError, OSError):
            pass
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        raise RuntimeError(f"the dask cluster has no workers (none joined within "
                           f"{WORKER_WAIT:g} s)")
    return workers


def place_shards(client, skel, loss, X, y) -> ShardSet:
    """Shards of (X, y): dask arrays with the same rows, or X a list of (X_k, y_k)
    pairs of arrays (one shard each, y None). See the module docstring."""
    import dask.array as da
    if isinstance(X, (list, tuple)):
        if y is not None:
            raise TypeError("give X as a list of (X_k, y_k) pairs and y=None, or X and y "
                            "as dask arrays")
        return _scatter_pieces(client, skel, loss, X)
    if not isinstance(X, da.Array) or not isinstance(y, da.Array):
        raise TypeError(f"X and y must be dask arrays (or X a list of (X_k, y_k) pairs); "
                        f"got {type(X).__name__} and {type(y).__name__}")
    if X.ndim != 2:
        raise ShapeError(f"X must be 2-d (n_samples, n_features); got shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]) or any(np.isnan(c) for c in y.chunks[0]):
        X, y = X.compute_chunk_sizes(), y.compute_chunk_sizes()
    if X.shape[0] != y.shape[0]:
        raise ShapeError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise ShapeError("X must have at least one row")
    X = X.rechunk({1: -1})
    y = y.rechunk({0: X.chunks[0]} | ({1: -1} if y.ndim == 2 else {}))
    X, y = client.persist([X, y])
    xkeys = [k for k in _flat(X.__dask_keys__())]
    ykeys = [k for k in _flat(y.__dask_keys__())]
    from distributed import Future, wait
    xf = [Future(k, client) for k in xkeys]
    yf = [Future(k, client) for k in ykeys]
    wait(xf + yf)
    who = client.who_has(xf)
    bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
    groups = block_groups(bounds, len(_workers(client)))
    owners = []
    for blocks in groups:       # the worker holding most of the group's rows builds it
        held: dict = {}
        for i in blocks:
            for w in who.get(xkeys[i], ()):
                held[w] = held.get(w, 0) + int(bounds[i + 1] - bounds[i])
        owners.append(min(held, key=lambda w: (-held[w], w)) if held else "")
    futures = []
    for s, (blocks, owner) in enumerate(zip(groups, owners)):
        futures.append(client.submit(
            _worker.build_shard, skel, loss, s, int(bounds[blocks[0]]),
            [xf[i] for i in blocks], [yf[i] for i in blocks],
            workers=[owner] if owner else None, allow_other_workers=True, pure=False))
    wait(futures)
    for f in futures:
        if f.status == "error":
            f.result()          # raises the worker's validation error here
    offsets = np.array([0] + [int(bounds[g[-1] + 1]) for g in groups], np.int64)
    return ShardSet(futures, offsets, True)


def block_groups(bounds, n_workers):
    """Cut the row blocks ``bounds[i]:bounds[i+1]`` into at most ``n_workers`` groups of
    consecutive blocks, balanced by rows: the k-th cut is the block boundary nearest to
    ``k n / n_workers`` rows (repeated cuts merge). A list of lists of block indices.

    Examples
    --------
    >>> block_groups([0, 250, 450, 600], 2)
    [[0], [1, 2]]
    >>> block_groups([0, 100, 200, 300, 400], 2)
    [[0, 1], [2, 3]]
    >>> block_groups([0, 5, 6, 7, 100], 2)
    [[0, 1, 2], [3]]
    >>> block_groups([0, 500], 2)
    [[0]]
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    n_blocks, n = bounds.shape[0] - 1, int(bounds[-1])
    n_groups = max(1, min(int(n_workers), n_blocks))
    inner = bounds[1:-1]                 # boundary b (1-based) ends block b - 1
    cuts = [0]
    for k in range(1, n_groups):
        b = 1 + int(np.argmin(np.abs(inner * n_groups - k * n)))
        if b > cuts[-1]:
            cuts.append(b)
    cuts.append(n_blocks)
    return [list(range(a, b)) for a, b in zip(cuts[:-1], cuts[1:])]


def _scatter_pieces(client, skel, loss, pieces) -> ShardSet:
    workers = _workers(client)
    futures, sizes = [], []
    for s, piece in enumerate(pieces):
        try:
            Xk, yk = piece
        except (TypeError, ValueError):
            raise TypeError(f"X[{s}] must be a pair (X_k, y_k)") from None
        shard = _worker.build_shard(skel, loss, s, sum(sizes), [np.asarray(Xk)],
                                    [np.asarray(yk)])
        if shard.n == 0:
            raise ShapeError(f"shard {s} has no rows")
        sizes.append(shard.n)
        futures.append(client.scatter(shard, workers=[workers[s % len(workers)]],
                                      hash=False))
    if not futures:
        raise ValueError("X is an empty list of shards")
    return ShardSet(futures, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                    False)


def _flat(keys):
    if isinstance(keys, list):
        for k in keys:
            yield from _flat(k)
    else:
        yield keys
