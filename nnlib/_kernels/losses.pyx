# cython: language_level=3
"""Losses and their gradients over a batch: layer 2.

Design note
-----------
There is no loss math in this file: every row goes through ``loss_grad_batch`` of
``loss_rows.pxd`` (layer 1), the very function the compiled training loop calls, so the
functional API and training cannot drift apart.

``loss_grad`` cuts the batch into fixed chunks of ``CHUNK`` rows, runs one chunk per
iteration of ``prange(schedule='static')`` with the GIL released (in order on the
calling thread for work too short for that: ``gil.pxd``), stores each chunk's loss
sum and returns their total, added in a fixed order: NumPy's pairwise order, so it is
``np.sum`` of the chunk sums bit for bit without a NumPy call. The chunks do not depend
on ``n_threads``, so the mean loss is bitwise the same for any thread count (a reduction
across threads would not be). Sparsemax sorts into a per-thread row of ``work``
(``(n_threads, c)``, indexed by ``threadid()``; row 0 when the chunks run in order).
Nothing is allocated here; the wrapper (layer 3, ``nnlib/functional/losses.py``)
validates labels and targets, allocates and picks ``n_threads``.

The arrays are ndarrays read through their data pointers after the checks of
``buffers.pxd`` (which says why not typed memoryviews). Unused inputs are passed as None
or empty arrays and become NULL pointers: ``y_target`` for the class-label losses,
``y_label`` for squared error and logistic, ``dz`` when only the loss is wanted, ``work``
for all but sparsemax, ``weight`` when the rows are unweighted (per-row weights run
``weighted_loss_grad_batch``, as the training epoch's sample weights do). An empty
``chunk_loss`` asks for the gradient alone
(``grad_batch``: the Poisson gradient then skips the log of its targets); None asks for
the loss with its chunk sums held on the stack (batches of up to ``STACK_ROWS`` rows).
"""
from cython.parallel cimport prange, threadid
from cython cimport floating
cimport numpy as cnp

from nnlib._kernels.buffers cimport check_flat_float, check_flat_int64
from nnlib._kernels.codes cimport LOSS_SPARSEMAX, N_LOSS_CODES
from nnlib._kernels.gil cimport keeps_gil
from nnlib._kernels.fpenv cimport nnlib_flush_enter, nnlib_flush_exit
from nnlib._kernels.loss_rows cimport (loss_grad_batch, grad_batch, weighted_loss_grad_batch,
                                       ce_rows, rows_per_block, NN_CE_SHORT,
                                       NN_CE_SHORT_MAX_C)

from nnlib._codes import CLASS_LABEL_LOSSES, LOSS_CODES

cnp.import_array()

# bit k set: the loss of code k reads class labels (one test in C per call)
cdef unsigned int _LABEL_KINDS = 0
for _name in CLASS_LABEL_LOSSES:
    _LABEL_KINDS |= <unsigned int>(1 << LOSS_CODES[_name])


# Rows per task (LOSS_CHUNK of nnlib/_paths.py). The batch is cut into fixed chunks of
# this many rows whatever n_threads is, and the chunk sums are added in chunk order, so
# the total does not depend on the thread count; large enough that the per-call overhead
# vanishes, small enough that two threads share even a few thousand rows evenly.
from nnlib._kernels.paths cimport LOSS_CHUNK as CHUNK

# Chunk sums the kernel keeps on its stack when it is given no chunk_loss buffer (512
# bytes): the wrapper then allocates none for batches of up to STACK_ROWS rows (an array
# costs about what the whole loss does at 1e2 elements).
cdef enum:
    _STACK_CHUNKS = 64
STACK_ROWS = _STACK_CHUNKS * CHUNK


cdef Py_ssize_t _first_label_outside(const long long* y, Py_ssize_t n,
                                     Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if y[i] < 0 or y[i] >= c:
            return i
    return -1


cdef inline void _chunk(Py_ssize_t k, int kind, const floating* z, const floating* yt,
                        const long long* yl, const floating* sw, Py_ssize_t n,
                        Py_ssize_t c, double scale, double margin, floating* d,
                        double* chunk_loss, floating* w) noexcept nogil:
    # chunk k's loss sum into chunk_loss[k], or with chunk_loss NULL the gradient alone;
    # w: the c scratch values of the thread running it; sw: per-row weights or NULL
    cdef Py_ssize_t lo = k * CHUNK, rows = min(CHUNK, n - k * CHUNK)
    cdef double total
    if sw != NULL:
        total = weighted_loss_grad_batch(
            kind, z + lo * c,
            yt + lo * c if yt != NULL else NULL,
            yl + lo if yl != NULL else NULL,
            sw + lo, rows, c, scale, margin,
            d + lo * c if d != NULL else NULL,
            w)
        if chunk_loss != NULL:
            chunk_loss[k] = total
    elif chunk_loss == NULL:
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
                  const floating* sw, Py_ssize_t n, Py_ssize_t c, double scale,
                  double margin, floating* d, double* chunk_loss, floating* w,
                  int n_threads) noexcept nogil:
    cdef Py_ssize_t k
    for k in prange((n + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        _chunk(k, kind, z, yt, yl, sw, n, c, scale, margin, d, chunk_loss,
               w + threadid() * c if w != NULL else NULL)


cdef double pairwise_sum(const double* a, Py_ssize_t n) noexcept nogil:
    # NumPy's pairwise summation of a contiguous float64 vector (pairwise_sum in
    # numpy/_core/src/umath/loops_utils.h.src), so that 0.0 + pairwise_sum(a, n) is
    # np.sum(a) bit for bit (tests/test_losses.py checks it): under 8 values in order,
    # up to PW_BLOCKSIZE = 128 in 8 interleaved partial sums, above that split in two
    cdef Py_ssize_t i, j, n2
    cdef double res = 0.0
    cdef double r[8]
    if n < 8:
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2)


cdef inline Py_ssize_t _size(cnp.ndarray a) noexcept:
    return 0 if a is None else cnp.PyArray_SIZE(a)


cdef inline void* _data(cnp.ndarray a) noexcept:
    # NULL for an unused (None or empty) buffer
    return NULL if a is None or cnp.PyArray_SIZE(a) == 0 else cnp.PyArray_DATA(a)


cdef int _labels_apart(cnp.ndarray y_label, cnp.ndarray out, str what) except -1:
    # the labels are checked before the loop and read in it: a buffer the loop writes
    # must not share their bytes (it could turn a checked label into any index)
    cdef const char* y = <const char*>_data(y_label)
    cdef const char* o = <const char*>_data(out)
    if (y != NULL and o != NULL and y < o + cnp.PyArray_NBYTES(out)
            and o < y + cnp.PyArray_NBYTES(y_label)):
        raise ValueError(f"loss_grad: {what} shares memory with y_label; the loop would "
                         f"overwrite the labels it has checked")
    return 0


cdef void _run(int kind, const floating* z, const floating* yt, const long long* yl,
               const floating* sw, Py_ssize_t n, Py_ssize_t c, double scale,
               double margin, floating* d, double* sums, floating* w,
               int n_threads) noexcept:
    cdef Py_ssize_t k
    if keeps_gil(n * c, n_threads):     # the chunks in order on this thread (gil.pxd)
        for k in range((n + CHUNK - 1) // CHUNK):
            _chunk(k, kind, z, yt, yl, sw, n, c, scale, margin, d, sums, w)
    else:
        with nogil:
            _chunks(kind, z, yt, yl, sw, n, c, scale, margin, d, sums, w, n_threads)


def loss_grad(int kind, cnp.ndarray z not None, cnp.ndarray y_target,
              cnp.ndarray y_label, double scale, double margin, cnp.ndarray dz,
              cnp.ndarray chunk_loss, cnp.ndarray work, int n_threads,
              cnp.ndarray weight=None):
    """chunk_loss[k] = sum of loss(z[i], y[i]) over the rows i of chunk k (CHUNK rows
    each); dz[i*c:(i+1)*c] = scale * dloss/dz[i] (when dz is not empty). Returns the sum
    of the chunk sums in NumPy's pairwise order (``np.sum(chunk_loss)`` bit for bit), or
    None when no loss is asked for or the batch is empty. With ``weight``: the chunk sums
    are of ``w_i loss(z[i], y[i])`` and ``dz[i] = scale * w_i * dloss/dz[i]``
    (``weighted_loss_grad_batch``, the training epoch's sample-weighted loss).

    The arrays are read flat through their data pointers: C-contiguous, aligned, in
    native byte order, the float ones of ``z``'s dtype (float32 or float64).

    Parameters
    ----------
    kind : int
        A code of nnlib._codes.LOSS_CODES.
    z : (n, c)
    y_target : (n, c) or (n * c,) targets of squared error, logistic and Poisson; empty
        or None for the class-label losses (not read)
    y_label : (n,) int64 in [0, c) for the class-label losses; empty or None for the
        others (not read)
    scale, margin : float
        Gradient factor (1/n for the mean); hinge margin.
    dz : (n, c) or (n * c,), or empty or None (loss only)
    chunk_loss : (n_chunks(n),) float64, written; or None: the sums are held on the
        kernel's stack (at most ``STACK_ROWS`` rows); or empty: the gradient alone (dz
        not empty)
    work : (n_threads, c) scratch for sparsemax's sort; may be None for the other losses
    n_threads : int
    weight : (n,) per-row weights of ``z``'s dtype, or None (unweighted). Read as given:
        finite and >= 0 is the caller's to check.

    Raises
    ------
    TypeError
        An array of another dtype, not C-contiguous, unaligned or byte-swapped.
    ValueError
        An unknown code, a length or shape above that does not match, a read-only
        output, or a class label outside [0, c): checked before the loop, which reads
        through raw pointers.
    """
    cdef int t = check_flat_float(z, "z", "loss_grad", -1, -1, False)
    if cnp.PyArray_NDIM(z) != 2:
        raise ValueError(f"loss_grad: z must be 2-d (n, c); got shape {(<object>z).shape}")
    cdef Py_ssize_t n = cnp.PyArray_DIMS(z)[0], c = cnp.PyArray_DIMS(z)[1]
    cdef Py_ssize_t n_chunk = (n + CHUNK - 1) // CHUNK, bad = -1
    cdef Py_ssize_t work_rows = 0, work_cols = 0
    if y_target is not None:
        check_flat_float(y_target, "y_target", "loss_grad", t, -1, False)
    if y_label is not None:
        check_flat_int64(y_label, "y_label", "loss_grad")
    if dz is not None:
        check_flat_float(dz, "dz", "loss_grad", t, -1, True)
    if chunk_loss is not None:
        check_flat_float(chunk_loss, "chunk_loss", "loss_grad", cnp.NPY_DOUBLE, -1, True)
    if weight is not None:
        check_flat_float(weight, "weight", "loss_grad", t, -1, False)
    if work is not None:
        check_flat_float(work, "work", "loss_grad", t, -1, True)
        if cnp.PyArray_NDIM(work) != 2:
            raise ValueError(f"loss_grad: work must be 2-d (n_threads, c); got shape "
                             f"{(<object>work).shape}")
        work_rows, work_cols = cnp.PyArray_DIMS(work)[0], cnp.PyArray_DIMS(work)[1]
    if n == 0 or c == 0:
        return None
    _check_sizes(kind, n, c, _size(y_target), _size(y_label), _size(dz), _size(chunk_loss),
                 n_chunk, work_rows, work_cols, work is not None or kind == LOSS_SPARSEMAX,
                 n_threads)
    if (_LABEL_KINDS >> kind) & 1:
        if cnp.PyArray_NDIM(y_label) != 1:
            raise ValueError(f"loss_grad: y_label must have shape ({n},), one label per "
                             f"row; got shape {(<object>y_label).shape}")
    else:
        _check_rows(y_target, "y_target", n, c)
    if _data(dz) != NULL:
        _check_rows(dz, "dz", n, c)
    if weight is not None and (cnp.PyArray_NDIM(weight) != 1 or _size(weight) != n):
        raise ValueError(f"loss_grad: weight must have shape ({n},), one weight per row; "
                         f"got shape {(<object>weight).shape}")
    cdef const long long* yl = <const long long*>_data(y_label)
    if (_LABEL_KINDS >> kind) & 1:     # the rows read z[i, y[i]]: every label in [0, c)
        _labels_apart(y_label, dz, "dz")
        _labels_apart(y_label, chunk_loss, "chunk_loss")
        _labels_apart(y_label, work, "work")
        if keeps_gil(n * c, n_threads):
            bad = _first_label_outside(yl, n, c)
        else:
            with nogil:
                bad = _first_label_outside(yl, n, c)
        if bad >= 0:
            raise ValueError(f"loss_grad: label {yl[bad]} of row {bad} is outside "
                             f"[0, {c})")
    cdef double stack_sums[_STACK_CHUNKS]
    cdef double* sums = <double*>_data(chunk_loss)
    if chunk_loss is None:
        if n_chunk > _STACK_CHUNKS:
            raise ValueError(f"loss_grad: chunk_loss is None for {n} rows; the kernel "
                             f"holds the sums of {STACK_ROWS} rows at most: pass a "
                             f"buffer of n_chunks({n}) = {n_chunk} float64")
        sums = stack_sums
    elif sums == NULL and _data(dz) == NULL:
        raise ValueError("chunk_loss and dz are both empty: nothing to compute")
    if t == cnp.NPY_FLOAT:
        _run(kind, <const float*>cnp.PyArray_DATA(z), <const float*>_data(y_target), yl,
             <const float*>_data(weight), n, c, scale, margin, <float*>_data(dz), sums,
             <float*>_data(work), n_threads)
    else:
        _run(kind, <const double*>cnp.PyArray_DATA(z), <const double*>_data(y_target), yl,
             <const double*>_data(weight), n, c, scale, margin, <double*>_data(dz), sums,
             <double*>_data(work), n_threads)
    if sums == NULL:
        return None
    return 0.0 + pairwise_sum(sums, n_chunk)      # np.sum starts from its identity, 0.0


cdef int _check_rows(cnp.ndarray a, str what, Py_ssize_t n, Py_ssize_t c) except -1:
    # an array of n * c values (checked before) is (n, c) or flat: the shapes the callers
    # pass (the wrappers give z's own, or (n,) for a one-column z)
    cdef int nd = cnp.PyArray_NDIM(a)
    if nd == 1 or nd == 2 and cnp.PyArray_DIMS(a)[0] == n:
        return 0
    raise ValueError(f"loss_grad: {what} must have shape ({n}, {c}) or ({n * c},); got "
                     f"shape {(<object>a).shape}")


cdef int _check_sizes(int kind, Py_ssize_t n, Py_ssize_t c, Py_ssize_t n_target,
                      Py_ssize_t n_label, Py_ssize_t n_dz, Py_ssize_t n_loss,
                      Py_ssize_t n_chunk, Py_ssize_t work_rows, Py_ssize_t work_cols,
                      bint check_work, int n_threads) except -1:
    # the kernel reads and writes through raw pointers: every length it relies on is
    # checked here, so a wrong call from Python is a ValueError, not a stray write
    if kind < 0 or kind >= N_LOSS_CODES:
        raise ValueError(f"loss_grad: unknown loss code {kind}; the codes are {LOSS_CODES}")
    if (_LABEL_KINDS >> kind) & 1:
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
    if check_work and (work_rows < n_threads or work_cols < c):
        raise ValueError(f"loss_grad: work has shape ({work_rows}, {work_cols}); need at "
                         f"least ({n_threads}, {c})")
    return 0


def n_chunks(Py_ssize_t n):
    """Length of the ``chunk_loss`` buffer ``loss_grad`` needs for ``n`` rows."""
    return (n + CHUNK - 1) // CHUNK


def _softmax_ce_blocks(const floating[:, ::1] z, const long long[::1] y, double scale,
                       bint want_grad, bint narrow, bint flush=False):
    """(loss sum, dz or None) of softmax cross-entropy over the rows of z (n, c) in blocks
    of short rows, on one thread: through ce_rows.h's passes (``narrow``) or
    exp_shifted_rows and its gradient loop, for the tests, which compare the two bit
    for bit; ``flush``: in the training epoch's flush-to-zero mode (fpenv.h, this thread
    only, put back after). ``narrow`` needs NN_CE_SHORT and c <= NN_CE_SHORT_MAX_C; a
    label outside [0, c) is refused (the loops index z's row with it)."""
    import numpy as np
    cdef Py_ssize_t n = z.shape[0], c = z.shape[1], bad
    cdef double total
    if n == 0 or c == 0 or y.shape[0] != n or rows_per_block(c) == 0:
        raise ValueError("_softmax_ce_blocks: z must have rows of 1 to VEC_BLOCK // "
                         "CE_MULTIROW_MIN_ROWS classes and y one label per row")
    if narrow and not (NN_CE_SHORT and c <= NN_CE_SHORT_MAX_C):
        raise ValueError("_softmax_ce_blocks: no narrow path for these rows here")
    bad = _first_label_outside(&y[0], n, c)
    if bad >= 0:
        raise ValueError(f"_softmax_ce_blocks: label y[{bad}] = {y[bad]} is outside "
                         f"[0, {c})")
    dz = np.full((n, c), np.nan, np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] d = dz
    cdef floating* dzp = NULL
    if want_grad:
        dzp = &d[0, 0]
    if flush:
        nnlib_flush_enter(1)
    total = ce_rows(&z[0, 0], n, c, &y[0], scale, dzp, narrow)
    if flush:
        nnlib_flush_exit(1)
    return total, (dz if want_grad else None)
