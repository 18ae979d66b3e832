# cython: language_level=3
"""Output maps over the last axis (softmax, log_softmax, sparsemax) and their
vector-Jacobian products: layer 2.

Design note
-----------
The row math lives in ``loss_rows.pxd`` (layer 1), shared with the losses and the
training loop. Each kernel here takes a C-contiguous ``(n, c)`` input, runs one row per
iteration of ``prange(schedule='static', num_threads=n_threads)`` with the GIL released,
and writes into the ``out`` buffer it is given; nothing is allocated. Rows are
independent, so the result does not depend on ``n_threads`` (bit for bit). The wrapper
(layer 3, ``nnlib/functional/output_maps.py``) validates, reshapes any ``ndim >= 1`` input
to ``(-1, c)`` and allocates ``out``.

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
from libc.math cimport log

from nnlib._kernels.loss_rows cimport (row_max, exp_shifted_row, softmax_row,
                                       sparsemax_row)


def softmax_forward(const floating[:, ::1] x, floating[:, ::1] out, int n_threads):
    """out[i] = softmax(x[i]) for each row i; x, out: (n, c)."""
    cdef Py_ssize_t i, n = x.shape[0], c = x.shape[1]
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            softmax_row(&x[i, 0], c, &out[i, 0])


def log_softmax_forward(const floating[:, ::1] x, floating[:, ::1] out, int n_threads):
    """out[i] = log_softmax(x[i]) = x[i] - logsumexp(x[i]); x, out: (n, c)."""
    cdef Py_ssize_t i, j, n = x.shape[0], c = x.shape[1]
    cdef double m, lse_shift
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            m = row_max(&x[i, 0], c)
            lse_shift = log(exp_shifted_row(&x[i, 0], c, m, <floating*>NULL))
            for j in range(c):
                # (x - m) - log(sum exp(x - m)): the subtraction of m is exact for the
                # largest entries, so log_softmax([1e4, 0]) = [0, -1e4] exactly.
                out[i, j] = <floating>((x[i, j] - m) - lse_shift)


def sparsemax_forward(const floating[:, ::1] x, floating[:, ::1] out, int n_threads):
    """out[i] = sparsemax(x[i]) (projection onto the simplex); x, out: (n, c).

    Each output row doubles as the sort buffer of its own row, so no scratch is needed.
    """
    cdef Py_ssize_t i, n = x.shape[0], c = x.shape[1]
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            sparsemax_row(&x[i, 0], c, &out[i, 0], &out[i, 0])


def softmax_vjp(const floating[:, ::1] x, const floating[:, ::1] g,
                floating[:, ::1] out, int n_threads):
    """out[i] = s * (g[i] - <g[i], s>), s = softmax(x[i]); all (n, c)."""
    cdef Py_ssize_t i, j, n = x.shape[0], c = x.shape[1]
    cdef double dot
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            softmax_row(&x[i, 0], c, &out[i, 0])
            dot = 0.0
            for j in range(c):
                dot = dot + <double>g[i, j] * out[i, j]
            for j in range(c):
                out[i, j] = <floating>(out[i, j] * (g[i, j] - dot))


def log_softmax_vjp(const floating[:, ::1] x, const floating[:, ::1] g,
                    floating[:, ::1] out, int n_threads):
    """out[i] = g[i] - softmax(x[i]) * sum(g[i]); all (n, c)."""
    cdef Py_ssize_t i, j, n = x.shape[0], c = x.shape[1]
    cdef double total
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            softmax_row(&x[i, 0], c, &out[i, 0])
            total = 0.0
            for j in range(c):
                total = total + g[i, j]
            for j in range(c):
                out[i, j] = <floating>(g[i, j] - out[i, j] * total)


def sparsemax_vjp(const floating[:, ::1] x, const floating[:, ::1] g,
                  floating[:, ::1] out, int n_threads):
    """out[i] = 1_S * (g[i] - mean_S(g[i])), S = support of sparsemax(x[i]); all (n, c).

    The support is read off the forward output (p_j > 0), so forward and vjp agree on it.
    """
    cdef Py_ssize_t i, j, n = x.shape[0], c = x.shape[1]
    cdef double total, mean
    cdef Py_ssize_t size
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            sparsemax_row(&x[i, 0], c, &out[i, 0], &out[i, 0])
            total = 0.0
            size = 0
            for j in range(c):
                if out[i, j] > 0:
                    total = total + g[i, j]
                    size = size + 1
            # size == 0 only for a NaN row (out is all NaN): 0/0 keeps it NaN.
            mean = total / size if size > 0 else out[i, 0]
            for j in range(c):
                if out[i, j] > 0:
                    out[i, j] = <floating>(g[i, j] - mean)
                elif out[i, j] == 0:
                    out[i, j] = 0
