"""The worker processes of a whole ``python -m verify`` run, and the calls they share with
the main process.

Design note
-----------
A whole run sends the backprop networks and the checks of ``verify.run.WORKER_SECTIONS``
to spawned worker processes, one call per check, while the main process runs the other
sections and draws their plots. Two things keep the run's wall time near its CPU time
divided by the cores:

- the workers start first (:func:`start_workers`, before the main process has imported
  SymPy, nnlib and the sections): this module imports nothing heavy, and the first call
  a worker gets imports what its checks need, beside the main process doing the same;
- no fixed split of the checks between the processes: once the main process has run its
  own sections and plots, :meth:`Workers.help` runs here, last first, every call no
  worker has started (its future cancelled). The workers take calls from the front and
  the main process from the back, so whichever side runs out of work first takes on the
  other's -- on any machine and load.

A call runs the same function with the same arguments wherever it runs, so the report
does not depend on which process ran it.
"""
import concurrent.futures
import functools
import importlib
import multiprocessing

__all__ = ["worker_pool", "n_workers", "start_workers", "Workers"]


def _init_worker():
    """A worker's BLAS limited to one thread (verify.kernels.one_blas_thread), NumPy's
    OpenBLAS loaded first: the limit applies to the libraries loaded when it is set."""
    import numpy  # noqa: F401
    from verify import kernels
    kernels.one_blas_thread(load_scipy=False)


def worker_pool(n):
    """``n`` spawned worker processes with BLAS limited to one thread. "spawn", not fork:
    a forked child of a process that ran OpenMP code can hang in libgomp."""
    return concurrent.futures.ProcessPoolExecutor(
        n, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)


def _import(modules):
    """Import ``modules`` (on a worker: the first call it gets)."""
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception:      # reported by the call that needs it
            pass


# What the workers' checks import: started on each worker as soon as it exists
WORKER_MODULES = ("nnlib", "verify.run", "verify.backprop", "verify.optim", "verify.train",
                  "verify.dense", "verify.convexity", "verify.dropout")


def n_workers(quick):
    """The worker processes of a whole run: one for --quick, two for the full run."""
    return 1 if quick else 2


def start_workers(n):
    """``n`` worker processes (:class:`Workers`), started now, each importing
    ``WORKER_MODULES`` while the caller goes on."""
    workers = Workers(worker_pool(n))
    for _ in range(n):
        workers.pool.submit(_import, WORKER_MODULES)
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
