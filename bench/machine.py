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

__all__ = ["THREAD_VARS", "set_thread_env", "machine_info", "versions", "thread_info",
           "memory_bandwidth", "bandwidth_fraction", "fma_peak"]

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


_BANDWIDTH = {}


def memory_bandwidth(mib=64, repeats=15):
    """This machine's memory bandwidth for one thread, in bytes/s, measured once per
    process: a NumPy copy between two float64 arrays of ``mib`` MiB each (far beyond the
    caches), counted STREAM's way as the bytes read plus the bytes written (2 x size).
    The best of ``repeats`` copies (a limit: on a shared machine the slower ones measure
    the other processes): {"bytes_per_s", "median", "mib", "samples"}.

    The elementwise kernels are judged against it (``bandwidth_fraction``): an
    elementwise map on arrays that fit in a cache level can exceed 100 %; at 1e6
    float64 elements (8 MB per array) they stream from the last-level cache or memory.
    """
    import time

    import numpy as np

    if mib in _BANDWIDTH:
        return _BANDWIDTH[mib]
    n = mib * 2**20 // 8
    src = np.ones(n)
    dst = np.empty(n)
    np.copyto(dst, src)                  # pages touched
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        rates.append(2 * src.nbytes / (time.perf_counter() - t))
    rates.sort()
    _BANDWIDTH[mib] = {"bytes_per_s": rates[-1], "median": rates[len(rates) // 2],
                       "mib": mib, "samples": rates}
    return _BANDWIDTH[mib]


def bandwidth_fraction(bytes_moved, seconds, bandwidth=None):
    """``bytes_moved / seconds`` as a fraction of ``memory_bandwidth()``."""
    bw = (bandwidth or memory_bandwidth())["bytes_per_s"]
    return bytes_moved / seconds / bw


_PEAK = {}


PEAK_SIZES = ((128, 200), (256, 40), (512, 6), (1024, 2))    # (n, products per sample)


def fma_peak(dtype="float32", sizes=PEAK_SIZES, repeats=5):
    """This machine's practical multiply-add peak on one thread, in FLOP/s, measured once
    per process: the best rate of OpenBLAS's n x n products over ``sizes`` ((n, products
    per sample) pairs), best of ``repeats`` samples each. {"flops_per_s", "n", "dtype"},
    ``n`` the size that reached it. The small-network workloads are judged against it.

    The best over sizes, not one size: which size an OpenBLAS build runs fastest varies
    (on the AVX2-only EPYC guest 128 x 128 float32 products reach 16 GFLOP/s, 1024 x
    1024 ones 36, the FMA units' peak at the clock), and a bound below what nnlib's own
    blocked products reach would be no bound."""
    import time

    import numpy as np

    key = (str(dtype), tuple(sizes))
    if key in _PEAK:
        return _PEAK[key]
    rng = np.random.default_rng(0)
    best, best_n = 0.0, None
    for n, calls in sizes:
        A = rng.standard_normal((n, n)).astype(dtype)
        B = rng.standard_normal((n, n)).astype(dtype)
        C = np.empty((n, n), dtype=dtype)
        np.matmul(A, B, out=C)
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(calls):
                np.matmul(A, B, out=C)
            rate = 2.0 * n ** 3 * calls / (time.perf_counter() - t)
            if rate > best:
                best, best_n = rate, n
    _PEAK[key] = {"flops_per_s": best, "n": best_n, "dtype": str(np.dtype(dtype))}
    return _PEAK[key]
