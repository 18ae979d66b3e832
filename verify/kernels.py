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
# sympy, mpmath, numpy and a built nnlib); none at present: the figures are SVG written by
# verify.svg, which needs NumPy only
OPTIONAL = {}


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
    thread in this process until the returned limiter's ``restore_original_limits()`` (or
    the end of a ``with`` block); None when no BLAS's threads can be set. Every product
    verify makes is small, and a second BLAS thread spinning for work on a two-core machine
    multiplied the CPU time of the fits by about 20. nnlib's own kernels take their thread
    counts as arguments (the branch plan runs them on one thread and several), so nothing
    verify measures changes. With threadpoolctl the limit is its ``threadpool_limits``;
    without it, the OpenBLAS builds that NumPy's and SciPy's wheels bundle are set through
    their own thread-count functions (:class:`_OpenBLASLimit`). ``load_scipy=False`` for a
    process that makes no fit (the backprop workers)."""
    if load_scipy:
        # a limit applies to the BLAS libraries loaded *now*: SciPy's own OpenBLAS (the
        # fits' L-BFGS) loads with scipy.linalg, so it is loaded first, or it keeps its
        # default threads (measured: the --quick fits took 6 s of CPU instead of 0.3 s)
        try:
            import scipy.linalg  # noqa: F401
        except ImportError:
            pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limit = _OpenBLASLimit(1, load_scipy)
        return limit if limit.libraries else None
    return threadpool_limits(1, user_api="blas")


# Where a wheel bundles its OpenBLAS (beside the package, or in it on macOS), and the
# names of its thread-count functions: scipy-openblas builds prefix them with "scipy_",
# the 64-bit-integer builds suffix them with "64_".
_BUNDLED_BLAS = {"numpy": ("numpy.libs", "numpy/.dylibs"),
                 "scipy": ("scipy.libs", "scipy/.dylibs")}
_PREFIXES, _SUFFIXES = ("scipy_", ""), ("64_", "")


class _OpenBLASLimit:
    """threadpoolctl's ``threadpool_limits(n, user_api="blas")`` for the OpenBLAS libraries
    bundled with NumPy (and SciPy when it is loaded, ``with_scipy``), where threadpoolctl
    is not installed: each library's count is set through its own
    ``openblas_set_num_threads`` and put back by :meth:`restore_original_limits`.
    ``libraries``: the paths of the libraries it set."""

    def __init__(self, n, with_scipy=True):
        self.libraries, self._saved = [], []
        for package in ("numpy", "scipy") if with_scipy else ("numpy",):
            for path in _bundled_openblas(package):
                pair = _thread_functions(path)
                if pair is not None:
                    get, set_ = pair
                    self._saved.append((set_, int(get())))
                    set_(n)
                    self.libraries.append(path)

    def restore_original_limits(self):
        for set_, old in self._saved:
            set_(old)
        self._saved = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore_original_limits()


def _bundled_openblas(package):
    """Paths of the OpenBLAS libraries ``package``'s wheel bundles, if it is imported (a
    library is loaded with its package: opening it again returns the loaded one)."""
    import glob
    import os
    import sys
    mod = sys.modules.get(package)
    if mod is None or not getattr(mod, "__file__", None):
        return []
    root = os.path.dirname(os.path.dirname(mod.__file__))
    return sorted(p for d in _BUNDLED_BLAS[package]
                  for p in glob.glob(os.path.join(root, d, "*openblas*")))


def _thread_functions(path):
    """(get, set) of the OpenBLAS library at ``path``'s thread count, or None."""
    import ctypes
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            try:
                get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
                set_ = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
            except AttributeError:
                continue
            get.argtypes, get.restype = [], ctypes.c_int
            set_.argtypes, set_.restype = [ctypes.c_int], None
            return get, set_
    return None
