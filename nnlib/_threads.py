"""Thread policy: ``n_threads`` of the compiled loops, BLAS's thread count in training,
which objects a running fit owns, and what a fork()ed child may use (README "Threads and
concurrency")."""
import math
import operator
import os
import threading
import time
import weakref

import numpy as np

from nnlib._kernels.parallel import max_threads as _max_threads
from nnlib._paths import INT_PATHS as _PATHS
from nnlib._validation import check_int_scalar
from nnlib._weak_identity import WeakIdentityDict

MAX_THREADS = _max_threads()        # at import, for reports; thread_limit() reads it now

# Below this many elements an OpenMP fork/join (a few microseconds) costs more than the
# loop it splits: measured with bench/kernels.py, cheap maps break even near 2**15 (the
# value lives in nnlib/_paths.py with the kernels' other branch thresholds).
PARALLEL_MIN_SIZE = _PATHS["PARALLEL_MIN_SIZE"][0]


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
    _ARRAY_OWNERS.clear()
    blas_threads._inside, blas_threads._saved = weakref.WeakSet(), None
    for hook in _at_fork_hooks:
        hook()


def in_forked_child():
    """True in a process made by fork() after nnlib was imported (compiled loops run on
    one thread there)."""
    return _forked_child


# os.environ's own store, read without os.environ.get's KeyError round trip: this is
# read before every compiled call, and os.environ.get costs more than a small kernel
_ENV_STORE = getattr(os.environ, "_data", None)
_ENV_KEY = (os.environ.encodekey("OMP_NUM_THREADS") if _ENV_STORE is not None
            else "OMP_NUM_THREADS")
_env_seen = (None, None)             # (raw value, parsed) of the last read


def _env_omp_threads():
    """OMP_NUM_THREADS as set now (its first level), or None when unset or invalid."""
    raw = (_ENV_STORE.get(_ENV_KEY) if _ENV_STORE is not None
           else os.environ.get(_ENV_KEY))
    global _env_seen
    if raw is None:
        return None
    seen = _env_seen
    if raw != seen[0]:
        text = raw.decode() if isinstance(raw, bytes) else raw
        value = text.split(",")[0].strip()
        seen = _env_seen = raw, (int(value) if value.isdigit() and int(value) > 0 else None)
    return seen[1]


def thread_limit():
    """Most OpenMP threads a compiled loop may use now: OpenMP's current maximum
    (``omp_get_max_threads()``, which a ``threadpoolctl.threadpool_limits`` in force
    lowers), at most ``OMP_NUM_THREADS`` as the environment says at this call; 1 in a
    forked child. Read at every call, never cached at import."""
    if _forked_child:
        return 1
    n, env = _max_threads(), _env_omp_threads()
    return max(1, min(n, env) if env else n)


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
    if type(n_threads) is int and n_threads == 1:    # thread_limit() is at least 1
        return 1
    return min(check_int_scalar(n_threads, "n_threads", low=1), thread_limit())


# --- BLAS threads during training ---------------------------------------------------------
# The GEMMs are BLAS's to parallelize; the compiled elementwise passes of an epoch use no
# OpenMP team of their own: an OpenMP pool spinning next to OpenBLAS's on the same cores
# slows large batches several-fold (bench/large.py shows it on a loaded machine). The
# large ones run on BLAS's own threads instead (train.pyx's ``pool_threads``,
# blas_pool.h), which spin idle between two products anyway.

# GEMMs below this many flops run on one BLAS thread: the fork/join costs more than it
# saves, and far more on a loaded machine.
BLAS_SPLIT_FLOPS = 8_000_000


def free_cores():
    """Cores not busy with other processes, by the 1-minute load average (all cores
    where that is unavailable). Not used unless asked for (``fit(n_threads=
    free_cores())``): a guess from the load average would override the user's limits.

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
    ``n_threads`` as given; None leaves BLAS's count as it is (OpenBLAS's start-up
    count from OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, or a ``threadpoolctl`` limit in
    force); 1 when the largest product is below ``BLAS_SPLIT_FLOPS`` either way."""
    if n_threads is not None:
        check_int_scalar(n_threads, "n_threads", low=1)     # refused even when unused
    largest = 2 * batch_rows * max(map(operator.mul, sizes, sizes[1:]))
    if largest < BLAS_SPLIT_FLOPS:
        return 1        # without reading the thread limit (a call into OpenMP)
    return resolve_threads(n_threads, 1 << 30) if n_threads is not None else None


_BLAS = []         # the compiled BLAS module, imported on first use (a fit enters twice)


def _blas():
    if not _BLAS:
        from nnlib._kernels import blas
        _BLAS.append(blas)
    return _BLAS[0]


class blas_threads:
    """Context manager: BLAS runs on ``n`` threads inside (None: as it is), as before
    outside.

    BLAS's thread count is process-wide, so concurrent fits share it: the first to enter
    saves the original count and the last to leave restores it (each restoring its own
    saved value could leave the process on another fit's setting). The count is written
    only when it differs: a ctypes call costs microseconds, and a loop calling
    ``fit(epochs=1)`` enters once per epoch.

    Both methods are idempotent. The users are the live entered instances (weakly held):
    an interrupt can cut a teardown short before ``__exit__`` runs (Python raises it at
    the start of any Python function), and such an instance stops counting once it is
    freed; the next ``__enter__`` then puts the saved count back first."""

    _lock = threading.Lock()
    _inside = weakref.WeakSet()
    _saved = None

    def __init__(self, n):
        self.n = n

    @classmethod
    def users(cls):
        """Entered instances that are alive and have not exited."""
        return len(cls._inside)

    def __enter__(self):
        blas = _blas()
        cls = blas_threads
        with cls._lock:
            if self in cls._inside:
                return self
            old = blas.get_num_threads()
            if not cls._inside:
                if cls._saved is not None and old != cls._saved:
                    blas.set_num_threads(cls._saved)     # left by a cut-short teardown
                    old = cls._saved
                cls._saved = old
            cls._inside.add(self)
            # n None: leave BLAS's count as it is (a threadpoolctl limit in force stays)
            if old is not None and self.n is not None and old != self.n:
                blas.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        blas = _blas()
        cls = blas_threads
        with cls._lock:
            if self not in cls._inside:
                return False
            if len(cls._inside) == 1 and cls._saved is not None \
                    and blas.get_num_threads() != cls._saved:
                blas.set_num_threads(cls._saved)
            cls._inside.discard(self)
            if not cls._inside:
                cls._saved = None
        return False


# --- objects a running fit owns -------------------------------------------------------
# A fit updates its model's weights and its optimizer's state and step count ``t`` from
# compiled pieces that run with the GIL released; a second fit (or ``optimizer.step``) on
# the same model or optimizer at the same time would interleave updates and lose steps.
# The running fit claims both, and the model's parameter arrays; everyone else is
# refused.
#
# A step of *another* optimizer bound to those arrays would interleave its updates with
# the fit's too. ``optimizer.step`` claims its optimizer (a ``StepClaim`` owns it) but not
# the arrays: claiming each array would cost a lock and a weak reference per array per
# step (measured: 9.5 -> 16 us for a 4-array SGD step). Instead the two sides check each
# other, Dekker-style, each writing before it reads: a step records its arrays
# (``StepClaim.params``), then looks for fits' claims on them (``arrays_in_use``: one
# dict truth test when no fit holds arrays; ~0.1 us a step in all); a fit claims its
# arrays, then looks for running steps that recorded one of them (``claim_all``).
# Python runs one of these bytecodes at a time, so the later of the two sees the earlier
# one's write: a step and a fit that overlap on an array never both go on.
#
# Python raises a pending interrupt (Ctrl-C, an asynchronous exception) at any call, so
# one can land in the middle of claiming or of releasing. Claims therefore name the run
# that holds them (releasing is idempotent, and the code that sets up and tears down a
# run finishes every step with ``complete``), and a claim whose run no longer exists
# counts as released: an interrupt never leaves a model or an optimizer refused for good.

# object -> (thread ident, weakref to the run); each run removes its own claims. Arrays
# (by their memory_owner) are in their own table, so that a step's check of them costs
# nothing while no fit holds any.
_OWNERS = WeakIdentityDict(prompt=False)
_ARRAY_OWNERS = WeakIdentityDict(prompt=False)
_OWNERS_LOCK = threading.Lock()
# claim_all and release_all write entries as a prompt=False table keeps them (a weak
# reference without a callback)
assert not _OWNERS._prompt and not _ARRAY_OWNERS._prompt


class StepClaim:
    """The owner of an optimizer's claim while its ``step`` runs (held weakly by the
    claim table: an interrupted step's claim ends with it), holding the arrays the step
    updates (``params``) for a fit that starts meanwhile to see."""

    # slots: setting params makes no instance dict (a step's cost is counted in ns)
    __slots__ = ("params", "__weakref__")
    params: list                # unset until the step records its arrays
    claim_name = "a running optimizer.step"        # what a refused fit is told


def memory_owner(a):
    """The ndarray whose memory ``a`` (an ndarray) lies in: its ``base``, or ``a`` if it
    owns its data or views a buffer that is not an ndarray. Arrays are claimed by this,
    so a view of a claimed array (``W.reshape(-1)``, ``W[:2]``) counts as it (a layer's
    arrays are themselves views of an aligned buffer, ``nnlib._aligned``). NumPy keeps a
    view's ``base`` at the array owning the memory: the loop runs at most once."""
    base = a.base
    while isinstance(base, np.ndarray):
        a, base = base, base.base
    return a


def _table(obj):
    return _ARRAY_OWNERS if isinstance(obj, np.ndarray) else _OWNERS


def claim(obj, what, advice, owner):
    """Mark ``obj`` as used by ``owner`` (a running fit) in this thread; raise
    :class:`~nnlib.exceptions.ConcurrentUseError` (saying ``what`` is busy, and
    ``advice``) if another live run holds it."""
    claim_all(((obj, what, advice),), owner)


def claim_all(claims, owner):
    """:func:`claim` each ``(obj, what, advice)`` of ``claims`` in order, under one
    acquisition of the lock (a fit claims its model and its optimizer): the first one
    another live run holds raises, and those before it stay claimed, as by one
    :func:`claim` after another (the caller releases them)."""
    entry = None
    arrays = {}                             # id -> (array, what, advice) claimed here
    # the tables' entries are read and written in WeakIdentityDict's own layout, id ->
    # (weak reference to the object, (thread, weak reference to the run)), without its
    # methods: a fit claims about 8 objects and releases them, and those calls were
    # most of the 10 us it took
    owners, array_owners = _OWNERS._data, _ARRAY_OWNERS._data
    with _OWNERS_LOCK:
        for obj, what, advice in claims:
            is_array = isinstance(obj, np.ndarray)
            data, key = (array_owners if is_array else owners), id(obj)
            held = data.get(key)
            if held is not None and held[0]() is obj:
                run = held[1][1]()
                if run is owner:
                    continue                # named twice (a layer repeated in a model)
                if run is not None:
                    _refuse(obj, what, advice, held[1][0], holder_name(run))
            if entry is None:
                entry = (threading.get_ident(), weakref.ref(owner))
            data[key] = (weakref.ref(obj), entry)
            if is_array:
                arrays[key] = (obj, what, advice)
        if arrays:          # after claiming them: a step that records them later sees it
            for step, thread in _running_steps(owner):
                for p in getattr(step, "params", ()):       # () until the step sets it
                    hit = arrays.get(id(memory_owner(p))) \
                        if isinstance(p, np.ndarray) else None
                    if hit is not None:
                        _refuse(*hit, thread, StepClaim.claim_name)


def holder_name(run):
    """What a refused call is told holds the object: a running fit, or a running
    ``optimizer.step`` (a :class:`StepClaim`)."""
    return StepClaim.claim_name if isinstance(run, StepClaim) else "a running fit"


def _refuse(obj, what, advice, thread, holder):
    from nnlib.exceptions import ConcurrentUseError
    if thread == threading.get_ident() and holder == StepClaim.claim_name:
        # a step's closure calls fit (or step) on what the step holds
        raise ConcurrentUseError(
            f"{what} ({type(obj).__name__}) is in use by {holder} in this thread: this "
            f"call is nested in that step (made from its closure), and cannot use "
            f"{what} before the step returns; call it after the step")
    if thread == threading.get_ident():
        # the holder runs in this very thread: this call is nested in it (a callback
        # of that fit calls fit or train_on_batch), not a second fit beside it
        raise ConcurrentUseError(
            f"{what} ({type(obj).__name__}) is in use by {holder} in this thread: this "
            f"call is nested in it (made from code it runs: a callback, schedule or "
            f"metric of that fit), and a nested training call "
            f"cannot use {what} before it returns; train after it (a callback may set "
            f"model.stop_training = True to end the fit)")
    raise ConcurrentUseError(f"{what} ({type(obj).__name__}) is in use by {holder} "
                             f"(thread {thread}); {advice}")


def _running_steps(other_than):
    """``(StepClaim, thread)`` of the optimizer steps running now (their claims on their
    optimizers); called holding the lock."""
    steps = []
    for _, held in _OWNERS.items():
        run = held[1]()
        if isinstance(run, StepClaim) and run is not other_than:
            steps.append((run, held[0]))
    return steps


def arrays_in_use(arrays):
    """``(index, thread)`` of the first of ``arrays`` (any objects; ndarrays are looked
    up by their :func:`memory_owner`) that a running fit holds, or None. Costs one
    truth test of a dict while no fit holds any array."""
    if not _ARRAY_OWNERS._data:             # any entry, live or dead: no call to make
        return None
    for i, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            thread = _holder(memory_owner(a))
            if thread is not None:
                return i, thread
    return None


def holder_of(obj):
    """``(thread, run)`` of the live run (a fit's, or a StepClaim) holding ``obj``, or
    None."""
    held = _table(obj).get(obj)
    run = None if held is None else held[1]()
    return None if run is None else (held[0], run)


def _holder(obj):
    held = _table(obj).get(obj)
    if held is None or held[1]() is None:
        return None
    return held[0]


def release(obj, owner):
    """End ``owner``'s claim on ``obj`` (nothing if it holds none)."""
    release_all((obj,), owner)


def release_all(objs, owner):
    """:func:`release` each of ``objs``, under one acquisition of the lock (the tables
    read as :func:`claim_all` reads them)."""
    owners, array_owners = _OWNERS._data, _ARRAY_OWNERS._data
    with _OWNERS_LOCK:
        for obj in objs:
            data, key = (array_owners if isinstance(obj, np.ndarray) else owners), id(obj)
            held = data.get(key)
            if held is not None and held[0]() is obj:
                run = held[1][1]()
                if run is owner or run is None:
                    del data[key]


def count_fit_start(obj):
    """Add one to ``obj``'s count of the fits started on it (a model, or a layer that
    models may share): a predict in another thread that a whole fit overlapped sees a
    count move. An object that takes no attribute keeps none."""
    try:
        obj._fits_started = getattr(obj, "_fits_started", 0) + 1
    except (AttributeError, TypeError):
        pass


def fits_started(objs):
    """The counts of :func:`count_fit_start` of ``objs``, as a tuple."""
    return tuple(getattr(obj, "_fits_started", 0) for obj in objs)


def _pickled_as_none():
    return None


class UnchangedWhilePickled:
    """The last item of a pickled state: pickling it re-checks that no fit (or step)
    of another thread holds ``objs`` and that none started since the state was taken.
    A state's arrays are written after ``__getstate__`` returns, so a check there alone
    lets a fit that starts meanwhile step the arrays not yet written (a pickle of two
    steps at once); this one, written after them, refuses such a pickle with
    :class:`~nnlib.exceptions.ConcurrentUseError` naming ``what``. It unpickles as None
    (the owner's ``__setstate__`` drops its key)."""

    KEY = "_unchanged_while_pickled"

    def __init__(self, objs, what, fingerprint=None):
        # fingerprint() -> what a fit or step moves; the objects' fit counts by default
        self.objs, self.what = objs, what
        self.fingerprint = fingerprint or (lambda: fits_started(objs))
        self.started = self.fingerprint()

    def __reduce__(self):
        me = threading.get_ident()
        moved = self.fingerprint() != self.started
        for obj in self.objs:
            thread = _holder(obj)
            if thread is not None and thread != me:
                moved = True
        if moved:
            from nnlib.exceptions import ConcurrentUseError
            raise ConcurrentUseError(
                f"{self.what}: a fit (or optimizer.step) in another thread started while "
                f"the pickle was being written, so it would hold arrays of different "
                f"steps; pickle it again after that fit, or from a callback of it")
        return _pickled_as_none, ()


def claimed_by(obj):
    """The thread ident of the fit using ``obj``, or None."""
    return _holder(obj)


def complete(*steps):
    """Run every one of ``steps`` (idempotent callables) to its end, in order: a
    KeyboardInterrupt landing in one makes it run again, and is raised once all are
    done. For teardown code (releasing claims, restoring weights), which an interrupt
    would otherwise cut short and leave half done."""
    interrupt = None
    for step in steps:
        while True:
            try:
                step()
                break
            except KeyboardInterrupt as exc:
                interrupt = exc
    if interrupt is not None:
        try:
            raise interrupt
        finally:
            interrupt = None        # no cycle through this frame: the run is freed


# --- fork() while other threads train ------------------------------------------------
# OpenBLAS's fork handler (blas_thread_shutdown_, a pthread_atfork "prepare" handler)
# joins its server threads; if another thread's BLAS call has them working at that
# moment, the join can wait forever (reproduced: a thread training with BLAS on 2
# threads, the main thread forking in a loop; about one run in three hung, the forking
# thread in pthread_join under blas_thread_shutdown_, the server thread waiting on its
# condition variable). nnlib's compiled training calls (an epoch's pieces, a rewind's
# replays, a fit's evaluation, L-BFGS's objective) therefore run inside
# ``training_call()``, and a fork first waits for those in flight to return, holding
# new ones back until it is done. The wait runs in a Python before-fork hook, before
# CPython takes its import lock and before libc's handlers run, and polls with the GIL
# let go, so a compiled call that is ending can get the GIL and leave. BLAS calls of other code (NumPy's matmul in another thread) are not covered.
FORK_WAIT_SECONDS = 30.0     # then the fork goes ahead: a bound, never a deadlock


class _TrainingCalls:
    """The compiled training calls in flight and the forks waiting for them
    (``training_call``). Each call is a :class:`_Call`, held weakly with its thread: an
    interrupt that cuts a call's ``leave`` short (Python raises it at any bytecode)
    leaves an entry whose call is freed as the exception leaves the frame, and a dead
    entry counts as gone -- it never makes a fork wait.

    The table is guarded by a plain lock, whose acquisition is one C call: an interrupt
    cannot land between taking it and the ``with`` block that gives it back (it can in
    ``threading.Condition``'s Python-level ``__enter__``, leaving the lock held for
    good). The waits therefore poll (1 ms), with the GIL let go."""

    __slots__ = ("lock", "calls", "forking")

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = {}         # id(call) -> (thread ident, weak reference to the call)
        self.forking = 0        # forks waiting or under way

    def _in_flight(self, me, mine):
        """Whether a live call of thread ``me`` (``mine``) or of another thread (not
        ``mine``) is in flight; called holding the lock."""
        return any((thread == me) == mine and ref() is not None
                   for thread, ref in self.calls.values())

    def enter(self, call):
        me = threading.get_ident()
        while True:
            with self.lock:
                # a thread already inside (a signal handler's fork) never waits for
                # itself; others wait while a fork is under way
                if not self.forking or self._in_flight(me, True):
                    self.calls[id(call)] = (me, weakref.ref(call))
                    return
            time.sleep(0.001)

    def leave(self, call):
        with self.lock:
            entry = self.calls.get(id(call))
            if entry is not None and entry[1]() is call:
                del self.calls[id(call)]

    def before_fork(self):
        me = threading.get_ident()
        end = time.monotonic() + FORK_WAIT_SECONDS
        with self.lock:
            self.forking += 1
        while True:
            with self.lock:
                # dead entries go (their calls' leave was cut short)
                self.calls = {k: e for k, e in self.calls.items() if e[1]() is not None}
                if not self._in_flight(me, False):
                    return
            if time.monotonic() >= end:
                return
            time.sleep(0.001)

    def after_fork_in_parent(self):
        with self.lock:
            self.forking = max(self.forking - 1, 0)

    def after_fork_in_child(self):
        # the parent's other threads, and their calls, do not exist here
        self.lock = threading.Lock()
        self.calls, self.forking = {}, 0


class _Call:
    """One compiled training call (the context manager ``training_call`` returns)."""

    __slots__ = ("__weakref__",)

    def __enter__(self):
        _TRAINING_CALLS.enter(self)
        return self

    def __exit__(self, *exc):
        _TRAINING_CALLS.leave(self)
        return False


_TRAINING_CALLS = _TrainingCalls()


def training_call():
    """Context manager around one compiled training call that may use BLAS's threads: a
    fork() waits for it to return (see above). Not reentrant across fork: enter it
    around the compiled call only, never around code of the user's."""
    return _Call()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_TRAINING_CALLS.before_fork,
                        after_in_parent=_TRAINING_CALLS.after_fork_in_parent,
                        after_in_child=_TRAINING_CALLS.after_fork_in_child)
    os.register_at_fork(after_in_child=_after_fork_in_child)
