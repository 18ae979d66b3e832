# cython: language_level=3
"""Losses and their gradients over a batch: layer 2.

Design note
-----------
There is no loss math in this file: every row goes through ``loss_grad_batch`` of
``loss_rows.pxd`` (layer 1), the very function the compiled training loop calls, so the
functional API and training cannot drift apart.

``loss_grad`` cuts the batch into fixed chunks of ``CHUNK`` rows, runs one chunk per
iteration of ``prange(schedule='static')`` with the GIL released (in order on the
calling thread for work too short for that: ``gil.pxd``) and stores each chunk's loss
sum; the wrapper adds those in a fixed order. The chunks do not depend on ``n_threads``,
so the mean loss is bitwise the same for any thread count (a reduction across threads
would not be). Sparsemax sorts into a per-thread row of ``work`` (``(n_threads, c)``,
indexed by ``threadid()``; row 0 when the chunks run in order). Nothing is allocated
here; the wrapper (layer 3, ``nnlib/functional/losses.py``) validates labels and
targets, allocates and picks ``n_threads``.

Unused inputs are passed as empty arrays and become NULL pointers: ``y_target`` for the
class-label losses, ``y_label`` for squared error and logistic, ``dz`` when only the
loss is wanted. An empty ``chunk_loss`` asks for the gradient alone (``grad_batch``:
the Poisson gradient then skips the log of its targets).
"""
from cython.parallel cimport prange, threadid
from cython cimport floating

from nnlib._kernels.gil cimport keeps_gil
from nnlib._kernels.loss_rows cimport loss_grad_batch, grad_batch

from nnlib._codes import CLASS_LABEL_LOSSES, LOSS_CODES

_LABEL_KINDS = frozenset(LOSS_CODES[name] for name in CLASS_LABEL_LOSSES)
_KINDS = frozenset(LOSS_CODES.values())


# Rows per task (LOSS_CHUNK of nnlib/_paths.py). The batch is cut into fixed chunks of
# this many rows whatever n_threads is, and the chunk sums are added in chunk order, so
# the total does not depend on the thread count; large enough that the per-call overhead
# vanishes, small enough that two threads share even a few thousand rows evenly.
from nnlib._kernels.paths cimport LOSS_CHUNK as CHUNK


cdef Py_ssize_t _first_label_outside(const long long* y, Py_ssize_t n,
                                     Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if y[i] < 0 or y[i] >= c:
            return i
    return -1


cdef inline void _chunk(Py_ssize_t k, int kind, const floating* z, const floating* yt,
                        const long long* yl, Py_ssize_t n, Py_ssize_t c, double scale,
                        double margin, floating* d, double* chunk_loss,
                        floating* w) noexcept nogil:
    # chunk k's loss sum into chunk_loss[k], or with chunk_loss NULL the gradient alone;
    # w: the c scratch values of the thread running it
    cdef Py_ssize_t lo = k * CHUNK, rows = min(CHUNK, n - k * CHUNK)
    if chunk_loss == NULL:
        grad_batch(kind, z + lo * c,
                   yt + lo * c if yt != NULL else NULL,
                   yl + lo if yl != NULL else NULL,
                   rows, c, scale, margin, d + lo * c, w)
    else:
        chunk_loss[k] = loss_grad_batch(
            kind, z + lo * c,
            yt + lo * c if yt != NULL else NULL,
            yl + lo if yl != NULL else NULL,
            rows, c, scale, margin,
            d + lo * c if d != NULL else NULL,
            w)


cdef void _chunks(int kind, const floating* z, const floating* yt, const long long* yl,
                  Py_ssize_t n, Py_ssize_t c, double scale, double margin, floating* d,
                  double* chunk_loss, floating* w, int n_threads) noexcept nogil:
    cdef Py_ssize_t k
    for k in prange((n + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        _chunk(k, kind, z, yt, yl, n, c, scale, margin, d, chunk_loss, w + threadid() * c)


def loss_grad(int kind, const floating[:, ::1] z, const floating[::1] y_target,
              const long long[::1] y_label, double scale, double margin,
              floating[::1] dz, double[::1] chunk_loss, floating[:, ::1] work,
              int n_threads):
    """chunk_loss[k] = sum of loss(z[i], y[i]) over the rows i of chunk k (CHUNK rows
    each); dz[i*c:(i+1)*c] = scale * dloss/dz[i] (when dz is not empty).

    Parameters
    ----------
    kind : int
        A code of nnlib._codes.LOSS_CODES.
    z : (n, c)
    y_target : (n * c,) or empty
    y_label : (n,) int64 in [0, c), or empty
    scale, margin : float
        Gradient factor (1/n for the mean); hinge margin.
    dz : (n * c,) or empty (loss only)
    chunk_loss : (n_chunks(n),) float64, written; or empty (gradient only, dz not empty)
    work : (n_threads, c) scratch for sparsemax's sort
    n_threads : int

    Raises
    ------
    ValueError
        An unknown code, a length above that does not match, or a class label outside
        [0, c): checked before the loop, which reads through raw pointers.
    """
    cdef Py_ssize_t n = z.shape[0], c = z.shape[1]
    cdef Py_ssize_t n_chunk = (n + CHUNK - 1) // CHUNK, bad = -1
    cdef const floating* yt = NULL
    cdef const long long* yl = NULL
    cdef floating* d = NULL
    cdef double* sums = NULL
    cdef floating* w
    if n == 0 or c == 0:
        return
    _check_sizes(kind, n, c, y_target.shape[0], y_label.shape[0], dz.shape[0],
                 chunk_loss.shape[0], n_chunk, work.shape[0], work.shape[1], n_threads)
    if y_target.shape[0] > 0:
        yt = &y_target[0]
    if y_label.shape[0] > 0:
        yl = &y_label[0]
    if dz.shape[0] > 0:
        d = &dz[0]
    w = &work[0, 0]
    cdef bint keep = keeps_gil(n * c, n_threads)
    if kind in _LABEL_KINDS:          # the rows read z[i, y[i]]: every label in [0, c)
        if keep:
            bad = _first_label_outside(yl, n, c)
        else:
            with nogil:
                bad = _first_label_outside(yl, n, c)
        if bad >= 0:
            raise ValueError(f"loss_grad: label {y_label[bad]} of row {bad} is outside "
                             f"[0, {c})")
    if chunk_loss.shape[0] > 0:
        sums = &chunk_loss[0]
    elif d == NULL:
        raise ValueError("chunk_loss and dz are both empty: nothing to compute")
    cdef Py_ssize_t k
    if keep:                    # the chunks in order on this thread (gil.pxd)
        for k in range(n_chunk):
            _chunk(k, kind, &z[0, 0], yt, yl, n, c, scale, margin, d, sums, w)
    else:
        with nogil:
            _chunks(kind, &z[0, 0], yt, yl, n, c, scale, margin, d, sums, w, n_threads)


cdef int _check_sizes(int kind, Py_ssize_t n, Py_ssize_t c, Py_ssize_t n_target,
                      Py_ssize_t n_label, Py_ssize_t n_dz, Py_ssize_t n_loss,
                      Py_ssize_t n_chunk, Py_ssize_t work_rows, Py_ssize_t work_cols,
                      int n_threads) except -1:
    # the kernel reads and writes through raw pointers: every length it relies on is
    # checked here, so a wrong call from Python is a ValueError, not a stray write
    if kind not in _KINDS:
        raise ValueError(f"loss_grad: unknown loss code {kind}; the codes are {LOSS_CODES}")
    if kind in _LABEL_KINDS:
        if n_label != n:
            raise ValueError(f"loss_grad: y_label has {n_label} labels for {n} rows")
    elif n_target != n * c:
        raise ValueError(f"loss_grad: y_target has {n_target} elements for {n} x {c} "
                         f"scores")
    if n_dz not in (0, n * c):
        raise ValueError(f"loss_grad: dz has {n_dz} elements; need 0 or {n * c}")
    if n_loss not in (0, n_chunk):
        raise ValueError(f"loss_grad: chunk_loss has {n_loss} elements; need 0 or "
                         f"{n_chunk} (n_chunks({n}))")
    if n_threads < 1:
        raise ValueError(f"loss_grad: n_threads must be >= 1; got {n_threads}")
    if work_rows < n_threads or work_cols < c:
        raise ValueError(f"loss_grad: work has shape ({work_rows}, {work_cols}); need at "
                         f"least ({n_threads}, {c})")
    return 0


def n_chunks(Py_ssize_t n):
    """Length of the ``chunk_loss`` buffer ``loss_grad`` needs for ``n`` rows."""
    return (n + CHUNK - 1) // CHUNK
