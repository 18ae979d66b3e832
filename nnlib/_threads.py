"""Thread policy: ``n_threads`` of the compiled loops, BLAS's thread count in training,
which objects a running fit owns, and what a fork()ed child may use (README "Threads and
concurrency")."""
import math
import os
import threading

from nnlib._kernels.parallel import max_threads as _max_threads
from nnlib._validation import check_int_scalar

MAX_THREADS = _max_threads()

# Below this many elements an OpenMP fork/join (a few microseconds) costs more than the
# loop it splits: measured with bench/kernels.py, cheap maps break even near 2**15.
PARALLEL_MIN_SIZE = 1 << 15


# --- fork() -------------------------------------------------------------------------
# libgomp's thread pool does not survive fork(): in the child of a process that has run
# an OpenMP region, the next region with more than one thread waits forever for pool
# threads that exist only in the parent (multiprocessing's default start method on Linux
# forks). A region of one thread never touches the pool, so a forked child runs every
# compiled loop on one thread; BLAS (OpenBLAS) handles fork itself. The child also
# starts with no fit running: claims and locks held by the parent's other threads, which
# do not exist in the child, are dropped (_after_fork_in_child).

_forked_child = False
_at_fork_hooks = []          # callables run in a forked child (estimators' locks)


def _after_fork_in_child():
    global _forked_child
    _forked_child = True
    for lock in (_OWNERS_LOCK, blas_threads._lock):
        lock._at_fork_reinit()
    _OWNERS.clear()
    blas_threads._users, blas_threads._saved = 0, None
    for hook in _at_fork_hooks:
        hook()


def in_forked_child():
    """True in a process made by fork() after nnlib was imported (compiled loops run on
    one thread there)."""
    return _forked_child


def thread_limit():
    """Most OpenMP threads a compiled loop may use here: all of them, or 1 in a forked
    child."""
    return 1 if _forked_child else max(MAX_THREADS, 1)


def resolve_threads(n_threads, work_size):
    """Threads to use: ``None`` means all available, but 1 for small work.

    Parameters
    ----------
    n_threads : int or None
        Requested count (>= 1), or None for automatic; at most :func:`thread_limit`.
    work_size : int
        Number of elements the loop touches.
    """
    if n_threads is None:
        return 1 if work_size < PARALLEL_MIN_SIZE else thread_limit()
    return min(check_int_scalar(n_threads, "n_threads", low=1), thread_limit())


# --- BLAS threads during training ---------------------------------------------------------
# The GEMMs are BLAS's to parallelize; the compiled elementwise passes of an epoch stay on
# one thread: an OpenMP pool spinning next to OpenBLAS's on the same cores slows large
# batches several-fold (bench/large.py shows it on a loaded machine).

# GEMMs below this many flops run on one BLAS thread: the fork/join costs more than it
# saves, and far more on a loaded machine.
BLAS_SPLIT_FLOPS = 8_000_000


def free_cores():
    """Cores not busy with other processes, by the 1-minute load average (all cores
    where that is unavailable).

    Multi-threaded GEMM synchronizes its threads at every block; when another process
    holds one of the cores, the whole product waits for the descheduled thread, which
    can make two threads several times slower than one. Our own process counts for
    about 1 in the load, hence the + 1."""
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):
        return MAX_THREADS
    return int(max(1, min(MAX_THREADS, math.floor(MAX_THREADS - load1 + 1.5))))


def training_blas_threads(n_threads, batch_rows, sizes):
    """BLAS threads for training batches of ``batch_rows`` rows through layers ``sizes``:
    ``n_threads`` as given (None: the free cores), but 1 when the largest product is
    below ``BLAS_SPLIT_FLOPS``."""
    wanted = resolve_threads(n_threads, 1 << 30) if n_threads is not None else None
    largest = 2 * batch_rows * max(a * b for a, b in zip(sizes, sizes[1:]))
    if largest < BLAS_SPLIT_FLOPS:
        return 1
    return wanted if wanted is not None else free_cores()


_BLAS = None


def _blas():
    """nnlib._kernels.blas, imported on first use (``import nnlib`` stays light)."""
    global _BLAS
    if _BLAS is None:
        from nnlib._kernels import blas
        _BLAS = blas
    return _BLAS


class blas_threads:
    """Context manager: BLAS runs on ``n`` threads inside, as before outside.

    BLAS's thread count is process-wide, so concurrent fits share it: the first to enter
    saves the original count and the last to leave restores it (each restoring its own
    saved value could leave the process on another fit's setting). The count is written
    only when it differs: a ctypes call costs microseconds, and a loop calling
    ``fit(epochs=1)`` enters once per epoch."""

    _lock = threading.Lock()
    _users = 0
    _saved = None

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        blas = _blas()
        cls = blas_threads
        with cls._lock:
            old = blas.get_num_threads()
            if old is not None and old != self.n:
                blas.set_num_threads(self.n)
            if cls._users == 0:
                cls._saved = old
            cls._users += 1
        return self

    def __exit__(self, *exc):
        blas = _blas()
        cls = blas_threads
        with cls._lock:
            cls._users -= 1
            if cls._users == 0 and cls._saved is not None:
                if blas.get_num_threads() != cls._saved:
                    blas.set_num_threads(cls._saved)
                cls._saved = None
        return False


# --- objects a running fit owns -------------------------------------------------------
# A fit updates its model's weights and its optimizer's state and step count ``t`` from
# compiled pieces that run with the GIL released; a second fit (or ``optimizer.step``) on
# the same model or optimizer at the same time would interleave updates and lose steps.
# The running fit claims both; everyone else is refused.

# id(object) -> (object, thread ident of the fit using it). A plain dict with the object
# held while claimed (a claim always ends in release): a fit claims and releases twice,
# and a WeakKeyDictionary's weak references cost more than the rest of the bookkeeping.
_OWNERS = {}
_OWNERS_LOCK = threading.Lock()


def claim(obj, what, advice):
    """Mark ``obj`` as used by a running fit in this thread; raise
    :class:`~nnlib.exceptions.ConcurrentUseError` (saying ``what`` is busy, and
    ``advice``) if a fit already uses it."""
    key = id(obj)
    with _OWNERS_LOCK:
        entry = _OWNERS.get(key)
        if entry is None:
            _OWNERS[key] = (obj, threading.get_ident())
            return
    from nnlib.exceptions import ConcurrentUseError
    raise ConcurrentUseError(f"{what} ({type(obj).__name__}) is in use by a running fit "
                             f"(thread {entry[1]}); {advice}")


def release(obj):
    """End the claim of :func:`claim` on ``obj``."""
    with _OWNERS_LOCK:
        _OWNERS.pop(id(obj), None)


def claimed_by(obj):
    """The thread ident of the fit using ``obj``, or None."""
    entry = _OWNERS.get(id(obj))
    return None if entry is None else entry[1]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
