"""What the numbers were measured on: CPU, cores, memory, versions, threads.

Also the one place that fixes the thread count. ``set_thread_env`` must run before NumPy
is imported (OpenBLAS and OpenMP read their variables once, at load time); the runner
calls it first thing. PyTorch's intra-op pool is set when a workload imports torch
(``bench.peers.import_torch``).
"""
import importlib
import importlib.metadata
import os
import platform
import sys

__all__ = ["THREAD_VARS", "set_thread_env", "machine_info", "versions", "thread_info"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def set_thread_env(n_threads):
    """Every BLAS/OpenMP in this process and its children uses ``n_threads``."""
    for var in THREAD_VARS:
        os.environ[var] = str(n_threads)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info():
    return {"cpu": _cpu_model(), "logical_cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "memory_gib": _memory_gib(), "os": platform.platform(),
            "python_implementation": platform.python_implementation()}


def _version(dist, module=None):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    if module:
        try:
            return getattr(importlib.import_module(module), "__version__", "unknown")
        except ImportError:
            pass
    return None


def versions():
    """Versions without importing the heavy peers (metadata only); None = not installed.
    nnlib is read from the package itself, since the bench runs from a source tree."""
    out = {"python": sys.version.split()[0]}
    for name, dist in (("numpy", "numpy"), ("torch", "torch"), ("sklearn", "scikit-learn"),
                       ("scipy", "scipy"), ("matplotlib", "matplotlib"),
                       ("threadpoolctl", "threadpoolctl")):
        out[name] = _version(dist)
    try:
        import nnlib
        out["nnlib"] = nnlib.__version__
    except ImportError:
        out["nnlib"] = None
    return out


def thread_info(n_threads):
    """The requested count, the environment, and what each loaded library reports."""
    info = {"requested": n_threads, "env": {v: os.environ.get(v) for v in THREAD_VARS}}
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [{k: p.get(k) for k in ("user_api", "internal_api", "prefix",
                                                      "num_threads", "version")}
                               for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    if "torch" in sys.modules:
        info["torch_num_threads"] = sys.modules["torch"].get_num_threads()
    try:
        from nnlib._threads import MAX_THREADS
        info["nnlib_max_threads"] = MAX_THREADS
    except ImportError:
        pass
    return info
