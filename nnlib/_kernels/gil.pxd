# cython: language_level=3
"""Whether a kernel lets the GIL go: only for work long enough to be worth it.

Design note
-----------
Releasing the GIL costs a kernel ~100 ns while no other thread wants it, and up to a
whole switch interval (``sys.getswitchinterval()``, 5 ms) when one does: the thread that
takes it runs Python until the interpreter's timed switch request hands it back. A
batch-1 fit calls a dozen kernels of a few microseconds per row, so beside one thread
that loops in Python (polling the model, retrying a refused ``predict``) every call that
let the GIL go would wait out a switch interval to get it back (the convoy effect): a
fit of 200 rows with a Python layer, 0.1 s alone, takes 6-96 s that way. Below
``GIL_RELEASE_MIN`` values of work a kernel therefore keeps the GIL: another thread
waits at most its tens to a few hundred microseconds, less than the switch interval it
waits for pure Python anyway, and the caller shares the GIL as Python code does. From
there on kernels let it go, so threads run their kernels side by side.

A value is one element of an elementwise pass, ``MACS_PER_VALUE`` multiply-adds of a
product (a dense layer's product runs about that many in the time an activation maps
one element), for a training step ``STEP_VALUES`` plus one per weight it updates, and for
a training row ``ROW_VALUES`` plus one per unit of the network (its gather, bias,
activation and loss passes beside its products).
Estimates are doubles: they cannot overflow.

Below the threshold a kernel asked for one thread (what ``n_threads=None`` picks there:
``PARALLEL_MIN_SIZE``, which is not below ``GIL_RELEASE_MIN``) runs its tasks (chunks,
rows) in order on the calling thread and opens no OpenMP region: Cython lets the GIL go
around every ``prange``, even in a ``nogil`` function called with the GIL held. A call
that asks for several threads gets them, and lets the GIL go, at any size. The tasks and
the order of their sums do not depend on the thread count, so the result is bit for bit
the same either way (tests/test_gil_release.py).
"""
from nnlib._kernels.paths cimport GIL_RELEASE_MIN

cdef enum:
    MACS_PER_VALUE = 16
    # a compiled training step's cost beside its products and its update (gathering the
    # batch, the loss row, the bias passes, the guard): ~1.7 us, about 512 values
    STEP_VALUES = 512
    # a training row's cost beside its products and its units' passes (a 1-1-1 net, full
    # batch: ~130 ns per row), about 32 values
    ROW_VALUES = 32


cdef inline bint keeps_gil(double values, int n_threads=1) noexcept nogil:
    """True when work of ``values`` values on ``n_threads`` threads is too short to let
    the GIL go: a call that asks for several threads opens its OpenMP region (and lets the
    GIL go) at any size."""
    return n_threads <= 1 and values < GIL_RELEASE_MIN


cdef inline double product_values(double macs) noexcept nogil:
    """``macs`` multiply-adds of a product, in values of work."""
    return macs / MACS_PER_VALUE
