"""Choosing ``n_threads`` for the compiled loops."""
from nnlib._kernels.parallel import max_threads as _max_threads
from nnlib._validation import check_int_scalar

MAX_THREADS = _max_threads()

# Below this many elements an OpenMP fork/join (a few microseconds) costs more than the
# loop it splits: measured with bench/kernels.py, cheap maps break even near 2**15.
PARALLEL_MIN_SIZE = 1 << 15


def resolve_threads(n_threads, work_size):
    """Threads to use: ``None`` means all available, but 1 for small work.

    Parameters
    ----------
    n_threads : int or None
        Requested count (>= 1), or None for automatic.
    work_size : int
        Number of elements the loop touches.
    """
    if n_threads is None:
        return 1 if work_size < PARALLEL_MIN_SIZE else MAX_THREADS
    return min(check_int_scalar(n_threads, "n_threads", low=1), max(MAX_THREADS, 1))
