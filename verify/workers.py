"""The worker processes of a whole ``python -m verify`` run, and the calls they share with
the main process.

Design note
-----------
A whole run sends the backprop networks and the checks of ``verify.run.WORKER_SECTIONS``
to spawned worker processes, one call per check, while the main process runs the other
sections and draws every figure. Two things keep the run's wall time near its CPU time
divided by the cores:

- the workers start first (:func:`start_workers`, before the main process has imported
  SymPy, nnlib and the sections): this module imports nothing heavy, and each worker,
  before its first call, imports what its checks need, beside the main process doing the
  same;
- no fixed split of the checks between the processes: once the main process has run its
  own sections, :meth:`Workers.help` runs here, last first, every call no
  worker has started (its future cancelled). The workers take calls from the front and
  the main process from the back, so whichever side runs out of work first takes on the
  other's -- on any machine and load.

A call runs the same function with the same arguments wherever it runs, so the report
does not depend on which process ran it.

Every process of a run collects garbage less often (:func:`fewer_collections`, then
:func:`freeze_imports` once the heavy imports are done): CPython's cyclic collector
scans every tracked object at each full collection, and a run holds many (SymPy's
caches and expression trees, the modules of SymPy and SciPy), so its 8 full
collections cost the --quick main process about 1 s of its 12 s of CPU. Frozen and with
larger thresholds, its collections cost about 0.2 s. What a run computes does not depend
on when its cycles are freed.
"""
import concurrent.futures
import contextlib
import functools
import gc
import importlib
import multiprocessing

__all__ = ["worker_pool", "n_workers", "start_workers", "Workers", "fewer_collections",
           "freeze_imports", "collecting_less"]

# gc.set_threshold's first two: a young collection per 50000 net allocations (CPython's
# default is 700, then 10 of those per middle-generation collection); the third, which
# (with CPython's rule that a full collection waits until a quarter of the old objects
# are new) spaces the full collections, is kept
GC_THRESHOLDS = (50000, 10)


def fewer_collections():
    """Collect cycles less often in this process (``GC_THRESHOLDS``)."""
    gc.set_threshold(*GC_THRESHOLDS, gc.get_threshold()[2])


def freeze_imports():
    """Move every object tracked now (the imported modules, functions and classes, which
    live as long as the process) out of the collector's reach (``gc.freeze``): later
    collections no longer scan them."""
    gc.freeze()


@contextlib.contextmanager
def collecting_less():
    """:func:`fewer_collections` for the ``with`` block, which may call
    :func:`freeze_imports`; on the way out the thresholds are restored and the frozen
    objects returned to the collector (unless something had frozen objects before), so
    that a caller of ``verify.__main__.main`` (the tests) keeps its own collection."""
    old, frozen = gc.get_threshold(), gc.get_freeze_count()
    fewer_collections()
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if not frozen:
            gc.unfreeze()


def _init_worker(modules=()):
    """A worker's BLAS limited to one thread (verify.kernels.one_blas_thread), NumPy's
    OpenBLAS loaded first: the limit applies to the libraries loaded when it is set; then
    ``modules`` imported and frozen (:func:`_import`), and sympy.physics.units deferred
    (verify._units: the worker makes no unit quantity), before the worker takes a call."""
    fewer_collections()
    import numpy  # noqa: F401
    from verify import kernels
    kernels.one_blas_thread(load_scipy=False)
    if modules:
        _import(modules)
    from verify._units import defer_units
    defer_units()          # SymPy's simplify: no sympy.physics.units to import (a run's worker)


def worker_pool(n, modules=()):
    """``n`` spawned worker processes with BLAS limited to one thread, each importing
    ``modules`` before its first call. "spawn", not fork: a forked child of a process
    that ran OpenMP code can hang in libgomp."""
    return concurrent.futures.ProcessPoolExecutor(
        n, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
        initargs=(tuple(modules),))


def _import(modules):
    """Import ``modules``, then freeze what the imports made (:func:`freeze_imports`)."""
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception:      # reported by the call that needs it
            pass
    freeze_imports()


# What the workers' checks import: on each worker as soon as it exists (its initializer,
# so that every worker freezes them, not only the one that would take a first call)
WORKER_MODULES = ("nnlib", "verify.run", "verify.backprop", "verify.optim", "verify.train",
                  "verify.dense", "verify.convexity", "verify.dropout", "verify.paths")


def n_workers(quick):
    """The worker processes of a whole run: one for --quick, two for the full run."""
    return 1 if quick else 2


def start_workers(n):
    """``n`` worker processes (:class:`Workers`), started now, each importing
    ``WORKER_MODULES`` while the caller goes on. The pool spawns a process per call
    submitted while none is idle: one no-op call per worker starts them all."""
    workers = Workers(worker_pool(n, WORKER_MODULES))
    for _ in range(n):
        workers.pool.submit(int)
    return workers


class _Job:
    """One call submitted to the workers, which the main process runs itself
    (:meth:`take`) when no worker has started it; ``result()`` as a future's."""
    def __init__(self, future, fn, args):
        self.future, self.fn, self.args = future, fn, args
        self.here, self.value, self.error = False, None, None

    def take(self):
        """Run the call here if no worker has started it (its future is cancelled) and it
        has not run here already."""
        if self.here or not self.future.cancel():
            return False
        try:
            self.value = self.fn(*self.args)
        except Exception as exc:          # raised by result(), as a worker's would be
            self.error = exc
        self.here = True
        return True

    def result(self):
        if not self.here:
            return self.future.result()
        if self.error is not None:
            raise self.error
        return self.value


class Workers:
    """A process pool and every call submitted to it through :meth:`submit`."""
    def __init__(self, pool):
        self.pool, self.jobs = pool, []

    def submit(self, fn, *args):
        job = _Job(self.pool.submit(fn, *args), fn, args)
        self.jobs.append(job)
        return job

    def help(self):
        """Run here, last first, the calls no worker has started; returns how many."""
        return sum(job.take() for job in reversed(self.jobs))

    def shutdown(self, **kw):
        self.pool.shutdown(**kw)
