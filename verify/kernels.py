"""Look up the compiled nnlib kernels by name, without failing when one does not exist yet.

A kernel that verify knows but nnlib does not provide is a failure ("not available" never
passes); so is one that ``nnlib.functional.__all__`` exports but that is not callable. The
only thing verify may skip is a part that needs an optional dependency (``OPTIONAL``): it is
listed as "skipped (needs X)", and ``--strict`` turns every skip into a failure.
"""
import importlib
import importlib.util

__all__ = ["functional", "exported", "kernel", "nnlib_attr", "OPTIONAL", "missing_optional",
           "skip_verdict", "one_blas_thread"]

# optional dependency -> the part of verify that needs it (everything else is required:
# sympy, mpmath, numpy and a built nnlib)
OPTIONAL = {"matplotlib": "plots"}


def missing_optional():
    """{dependency: part} for the optional dependencies that are not installed."""
    return {dep: part for dep, part in OPTIONAL.items()
            if importlib.util.find_spec(dep) is None}


def skip_verdict(needs):
    return f"skipped (needs {needs})"


def functional():
    try:
        return importlib.import_module("nnlib.functional")
    except ImportError:      # nnlib not built: every kernel is missing, so every check fails
        return None


def exported():
    f = functional()
    return set(getattr(f, "__all__", ())) if f is not None else set()


def kernel(name):
    """``nnlib.functional.<name>`` or None."""
    f = functional()
    return getattr(f, name, None) if f is not None else None


def nnlib_attr(dotted):
    """``nnlib.<dotted>`` (e.g. "Sequential", "optim.SGD") or None."""
    try:
        obj = importlib.import_module("nnlib")
        for part in dotted.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                obj = importlib.import_module(obj.__name__ + "." + part)
        return obj
    except (ImportError, AttributeError):
        return None


def one_blas_thread(load_scipy=True):
    """Limit BLAS (NumPy's and SciPy's OpenBLAS: the L-BFGS fits, the plots' arrays) to one
    thread in this process until the returned limiter's ``restore()`` (or the end of a
    ``with`` block); None without threadpoolctl. Every product verify makes is small, and
    a second BLAS thread spinning for work on a two-core machine multiplied the CPU time
    of the fits by about 4. nnlib's own kernels take their thread counts as arguments (the
    branch plan runs them on one thread and several), so nothing verify measures changes.
    ``load_scipy=False`` for a process that makes no fit (the backprop workers)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    if load_scipy:
        # threadpoolctl limits the BLAS libraries loaded *now*: SciPy's own OpenBLAS (the
        # fits' L-BFGS) loads with scipy.linalg, so it is loaded first, or it keeps its
        # default threads (measured: the --quick fits took 6 s of CPU instead of 0.3 s)
        try:
            import scipy.linalg  # noqa: F401
        except ImportError:
            pass
    return threadpool_limits(1, user_api="blas")
