# cython: language_level=3
"""Output maps over the last axis (softmax, log_softmax, sparsemax) and their
vector-Jacobian products: layer 2.

Design note
-----------
The row math lives in ``loss_rows.pxd`` (layer 1), shared with the losses and the
training loop. Each kernel here takes a C-contiguous ``(n, c)`` input, runs one task
per iteration of ``prange(schedule='static', num_threads=n_threads)`` with the GIL
released (in order on the calling thread for work too short for that: ``gil.pxd``), and
writes into the ``out`` buffer it is given; nothing is allocated. A task is one row, or
for softmax and log_softmax (and their vjps) over rows of up to ``VEC_BLOCK`` values a
block of ``VEC_BLOCK // c`` rows whose exps run in one vectorized loop (loss_rows'
``exp_shifted_rows``, the row-by-row exps bit for bit; ``_block``). Rows of more than
``VEC_BLOCK`` values go one at a time in blocks of VEC_BLOCK values (``_row``).
Rows are independent and every row is computed the same way in any task, so the result
does not depend on ``n_threads`` (bit for bit). The wrapper (layer 3,
``nnlib/functional/output_maps.py``) validates and allocates ``out``.

The entry points take ndarrays of any ``ndim >= 1`` and read them as the ``(-1, c)`` rows
of their last axis through their data pointers, after the checks of ``buffers.pxd``
(which says why not typed memoryviews): one dtype and shape.

The vjps recompute the map from ``x`` (into ``out``, then overwrite it) instead of asking
the caller for the forward output, matching the ``name_vjp(x, grad_out)`` API:

* softmax:      J = diag(s) - s s^T        ->  J^T g = s * (g - <g, s>)
* log_softmax:  J = I - 1 s^T              ->  J^T g = g - s * sum(g)
* sparsemax:    J = diag(1_S) - 1_S 1_S^T / |S|  (S = support; Martins & Astudillo 2016)
                                           ->  J^T g = 1_S * (g - mean_S(g))

The inner products and sums accumulate in double.
"""
from cython.parallel cimport prange
from cython cimport floating
cimport numpy as cnp

from nnlib._kernels.buffers cimport check_flat_float, same_shape
from nnlib._kernels.gil cimport keeps_gil
from nnlib._kernels.loss_rows cimport (row_max, exp_shifted_row, softmax_row,
                                       sparsemax_row, exp_shifted_rows, rows_max,
                                       short_row_max)
from nnlib._kernels.paths cimport VEC_BLOCK
from nnlib._kernels.scalar cimport nn_log

cnp.import_array()

cdef enum:
    SOFTMAX, LOG_SOFTMAX, SPARSEMAX, SOFTMAX_VJP, LOG_SOFTMAX_VJP, SPARSEMAX_VJP


cdef inline void _log_softmax_from_shift(const floating* x, Py_ssize_t c, double m,
                                         double lse_shift, floating* out) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(c):
        # (x - m) - log(sum exp(x - m)): the subtraction of m is exact for the largest
        # entries, so log_softmax([1e4, 0]) = [0, -1e4] exactly.
        out[j] = <floating>((x[j] - m) - lse_shift)


cdef inline void _log_softmax_row(const floating* x, Py_ssize_t c,
                                  floating* out) noexcept nogil:
    cdef double m = row_max(x, c)
    _log_softmax_from_shift(x, c, m, nn_log(exp_shifted_row(x, c, m, <floating*>NULL)), out)


cdef inline void _softmax_vjp_from_softmax(const floating* g, Py_ssize_t c,
                                           floating* out) noexcept nogil:
    # out holds s = softmax(x) in the dtype; overwritten with s * (g - <g, s>)
    cdef Py_ssize_t j
    cdef double dot = 0.0
    for j in range(c):
        dot = dot + <double>g[j] * out[j]
    for j in range(c):
        out[j] = <floating>(out[j] * (g[j] - dot))


cdef inline void _log_softmax_vjp_from_softmax(const floating* g, Py_ssize_t c,
                                               floating* out) noexcept nogil:
    # out holds s = softmax(x) in the dtype; overwritten with g - s * sum(g)
    cdef Py_ssize_t j
    cdef double total = 0.0
    for j in range(c):
        total = total + g[j]
    for j in range(c):
        out[j] = <floating>(g[j] - out[j] * total)


cdef inline void _softmax_vjp_row(const floating* x, const floating* g, Py_ssize_t c,
                                  floating* out) noexcept nogil:
    softmax_row(x, c, out)
    _softmax_vjp_from_softmax(g, c, out)


cdef inline void _log_softmax_vjp_row(const floating* x, const floating* g, Py_ssize_t c,
                                      floating* out) noexcept nogil:
    softmax_row(x, c, out)
    _log_softmax_vjp_from_softmax(g, c, out)


cdef inline void _sparsemax_vjp_row(const floating* x, const floating* g, Py_ssize_t c,
                                    floating* out) noexcept nogil:
    # the support is read off the forward output (p_j > 0), so forward and vjp agree on it
    cdef Py_ssize_t j, size = 0
    cdef double total = 0.0, mean
    sparsemax_row(x, c, out, out)
    for j in range(c):
        if out[j] > 0:
            total = total + g[j]
            size = size + 1
    # size == 0 only for a NaN row (out is all NaN): 0/0 keeps it NaN.
    mean = total / size if size > 0 else out[0]
    for j in range(c):
        if out[j] > 0:
            out[j] = <floating>(g[j] - mean)
        elif out[j] == 0:
            out[j] = 0


cdef inline void _row(int which, const floating* x, const floating* g, Py_ssize_t c,
                      floating* out) noexcept nogil:
    if which == SOFTMAX:
        softmax_row(x, c, out)
    elif which == LOG_SOFTMAX:
        _log_softmax_row(x, c, out)
    elif which == SPARSEMAX:
        # each output row doubles as the sort buffer of its own row: no scratch
        sparsemax_row(x, c, out, out)
    elif which == SOFTMAX_VJP:
        _softmax_vjp_row(x, g, c, out)
    elif which == LOG_SOFTMAX_VJP:
        _log_softmax_vjp_row(x, g, c, out)
    else:
        _sparsemax_vjp_row(x, g, c, out)


cdef inline void _block(int which, const floating* x, const floating* g, Py_ssize_t nr,
                        Py_ssize_t c, floating* out) noexcept nogil:
    # nr rows of softmax / log_softmax or their vjps (nr * c <= VEC_BLOCK), each row's
    # arithmetic that of _row: the exps of all nr rows run in one loop, and the softmax
    # (rounded to the dtype) stays in e as doubles for the vjps, so their inner products
    # read no value just stored to out (a float store read back at once stalled the
    # float32 vjp), and each pass runs over all nr rows
    cdef double e[VEC_BLOCK + 8]
    cdef double rmax[VEC_BLOCK]
    cdef double rsum[VEC_BLOCK]
    cdef double rlog[VEC_BLOCK]
    cdef double acc[VEC_BLOCK]
    cdef double inv, dot
    cdef Py_ssize_t r, j, o
    exp_shifted_rows(x, nr, c, rmax, rsum, e,
                     &rlog[0] if which == LOG_SOFTMAX else <double*>NULL)
    if which == LOG_SOFTMAX:
        for r in range(nr):
            _log_softmax_from_shift(x + r * c, c, rmax[r], rlog[r], out + r * c)
        return
    if which == SOFTMAX:
        for r in range(nr):
            o = r * c
            inv = 1.0 / rsum[r]            # s >= 1: the max term is exp(0) = 1
            for j in range(c):
                # the exp is rounded to the dtype first, as softmax_row stores it
                out[o + j] = <floating>(<floating>e[o + j] * inv)
        return
    for r in range(nr):                     # the vjps: s in e, as softmax's values
        o = r * c
        inv = 1.0 / rsum[r]
        for j in range(c):
            e[o + j] = <floating>(<floating>e[o + j] * inv)
    if which == SOFTMAX_VJP:
        for r in range(nr):
            o = r * c
            dot = 0.0
            for j in range(c):
                dot = dot + <double>g[o + j] * e[o + j]
            acc[r] = dot
        for r in range(nr):
            o = r * c
            for j in range(c):
                out[o + j] = <floating>(e[o + j] * (g[o + j] - acc[r]))
    else:                                   # LOG_SOFTMAX_VJP
        for r in range(nr):
            o = r * c
            dot = 0.0                       # sum(g) in double, in order
            for j in range(c):
                dot = dot + g[o + j]
            acc[r] = dot
        for r in range(nr):
            o = r * c
            for j in range(c):
                out[o + j] = <floating>(g[o + j] - e[o + j] * acc[r])


cdef inline Py_ssize_t _rows_per_task(int which, Py_ssize_t c) noexcept nogil:
    # softmax / log_softmax kinds over rows of up to VEC_BLOCK values: VEC_BLOCK // c
    # rows per task (_block); otherwise one row (_row)
    if which == SPARSEMAX or which == SPARSEMAX_VJP or c > VEC_BLOCK or c == 0:
        return 1
    return VEC_BLOCK // c


cdef inline void _task(int which, const floating* x, const floating* g, floating* out,
                       Py_ssize_t t, Py_ssize_t per, Py_ssize_t n,
                       Py_ssize_t c) noexcept nogil:
    # task t: rows t * per .. min((t + 1) * per, n) - 1
    cdef Py_ssize_t i0 = t * per, o = t * per * c
    if which != SPARSEMAX and which != SPARSEMAX_VJP and c <= VEC_BLOCK:
        _block(which, x + o, g + o, min(per, n - i0), c, out + o)
    else:
        _row(which, x + o, g + o, c, out + o)


cdef void _rows(int which, const floating* x, const floating* g, floating* out,
                Py_ssize_t n, Py_ssize_t c, int n_threads) noexcept nogil:
    cdef Py_ssize_t t, per = _rows_per_task(which, c)
    for t in prange((n + per - 1) // per, schedule='static', num_threads=n_threads):
        _task(which, x, g, out, t, per, n, c)


cdef void _run_rows(int which, const floating* x, const floating* g, floating* out,
                    Py_ssize_t n, Py_ssize_t c, int n_threads) noexcept:
    cdef Py_ssize_t t, per = _rows_per_task(which, c)
    if keeps_gil(n * c, n_threads):     # the tasks in order on this thread (gil.pxd)
        for t in range((n + per - 1) // per):
            _task(which, x, g, out, t, per, n, c)
    else:
        with nogil:
            _rows(which, x, g, out, n, c, n_threads)


cdef int _run(int which, cnp.ndarray x, cnp.ndarray g, cnp.ndarray out, int n_threads,
              str fn) except -1:
    # g is x for the forward maps (not read)
    cdef int t = check_flat_float(x, "x", fn, -1, -1, False)
    cdef int nd = cnp.PyArray_NDIM(x)
    if nd == 0:
        raise ValueError(f"{fn}: x must have at least one dimension; got a 0-d array")
    if g is not x:
        check_flat_float(g, "grad_out", fn, t, -1, False)
    check_flat_float(out, "out", fn, t, -1, True)
    if not same_shape(x, out) or not same_shape(x, g):
        shapes = (f"x {(<object>x).shape} and out {(<object>out).shape}" if g is x else
                  f"x {(<object>x).shape}, grad_out {(<object>g).shape} and out "
                  f"{(<object>out).shape}")
        raise ValueError(f"{fn}: {shapes} must have the same shape")
    cdef Py_ssize_t c = cnp.PyArray_DIMS(x)[nd - 1]
    cdef Py_ssize_t size = cnp.PyArray_SIZE(x)
    if size == 0:
        return 0
    if t == cnp.NPY_FLOAT:
        _run_rows(which, <const float*>cnp.PyArray_DATA(x),
                  <const float*>cnp.PyArray_DATA(g), <float*>cnp.PyArray_DATA(out),
                  size // c, c, n_threads)
    else:
        _run_rows(which, <const double*>cnp.PyArray_DATA(x),
                  <const double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(out),
                  size // c, c, n_threads)
    return 0


def softmax_forward(cnp.ndarray x not None, cnp.ndarray out not None, int n_threads):
    """out[i] = softmax(x[i]) for each row i of the last axis; x, out: (..., c)."""
    _run(SOFTMAX, x, x, out, n_threads, "softmax_forward")


def log_softmax_forward(cnp.ndarray x not None, cnp.ndarray out not None, int n_threads):
    """out[i] = log_softmax(x[i]) = x[i] - logsumexp(x[i]); x, out: (..., c)."""
    _run(LOG_SOFTMAX, x, x, out, n_threads, "log_softmax_forward")


def sparsemax_forward(cnp.ndarray x not None, cnp.ndarray out not None, int n_threads):
    """out[i] = sparsemax(x[i]) (projection onto the simplex); x, out: (..., c)."""
    _run(SPARSEMAX, x, x, out, n_threads, "sparsemax_forward")


def softmax_vjp(cnp.ndarray x not None, cnp.ndarray g not None, cnp.ndarray out not None,
                int n_threads):
    """out[i] = s * (g[i] - <g[i], s>), s = softmax(x[i]); all (..., c)."""
    _run(SOFTMAX_VJP, x, g, out, n_threads, "softmax_vjp")


def log_softmax_vjp(cnp.ndarray x not None, cnp.ndarray g not None,
                    cnp.ndarray out not None, int n_threads):
    """out[i] = g[i] - softmax(x[i]) * sum(g[i]); all (..., c)."""
    _run(LOG_SOFTMAX_VJP, x, g, out, n_threads, "log_softmax_vjp")


def sparsemax_vjp(cnp.ndarray x not None, cnp.ndarray g not None, cnp.ndarray out not None,
                  int n_threads):
    """out[i] = 1_S * (g[i] - mean_S(g[i])), S = support of sparsemax(x[i]); all (..., c)."""
    _run(SPARSEMAX_VJP, x, g, out, n_threads, "sparsemax_vjp")


def _row_maxima(const floating[:, ::1] z, bint blocked):
    """The maximum of each row of z (n, c) as the blocks of short rows form it, in
    double: ``rows_max`` over all rows at once (``blocked``) or ``short_row_max`` row by
    row, for the tests, which compare the two bit for bit."""
    import numpy as np
    cdef Py_ssize_t n = z.shape[0], c = z.shape[1], r
    if n == 0 or c == 0:
        raise ValueError("_row_maxima: z must have at least one row and one column")
    out = np.empty(n, np.float64)
    cdef double[::1] o = out
    if blocked:
        rows_max(&z[0, 0], n, c, &o[0])
    else:
        for r in range(n):
            o[r] = short_row_max(&z[r, 0], c)
    return out
