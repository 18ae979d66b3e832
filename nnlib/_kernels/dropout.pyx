# cython: language_level=3
"""Inverted dropout over the rows of a matrix: layer 2.

Design note
-----------
The row math and the mask generator live in ``dropout_rows.pxd`` (layer 1). The kernel
takes a C-contiguous ``(n, c)`` input, runs one row per iteration of
``prange(schedule='static', num_threads=n_threads)`` with the GIL released (in order on
the calling thread for work too short for that: ``gil.pxd``), and writes into the
``out`` buffer it is given; nothing is allocated. Row ``i`` of the input is row
``row0 + i`` of the mask, so a batch cut into pieces gets the mask of the whole. The
vector-Jacobian product of ``x -> x * m / (1 - rate)`` is the same map applied to the
upstream gradient (the Jacobian is the diagonal ``m / (1 - rate)``), so one kernel
serves both. The wrapper (layer 3, ``nnlib/functional/dropout.py``) validates and
allocates.
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport ceil
from libc.stdint cimport uint64_t

from nnlib._kernels.dropout_rows cimport dropout_key, dropout_row
from nnlib._kernels.gil cimport keeps_gil


def dropout_threshold(double rate):
    """ceil(rate * 2**53): the integer a mask's 53 bits must reach to keep an entry."""
    return <uint64_t>ceil(rate * 9007199254740992.0)


def dropout_apply(const floating[:, ::1] x, floating[:, ::1] out, double rate,
                  uint64_t seed, uint64_t step, uint64_t row0, int n_threads):
    """out[i] = x[i] * m[row0 + i] / (1 - rate) with the mask of (seed, step); x, out:
    (n, c); 0 <= rate < 1."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1]
    cdef uint64_t threshold = dropout_threshold(rate)
    cdef floating scale = <floating>(1.0 / (1.0 - rate))
    if out.shape[0] != n or out.shape[1] != c:
        raise ValueError(f"dropout_apply: x {(n, c)} and out "
                         f"{(out.shape[0], out.shape[1])} must have the same shape")
    if n == 0 or c == 0:
        return
    cdef Py_ssize_t i
    if keeps_gil(n * c, n_threads):     # the rows in order on this thread (gil.pxd)
        for i in range(n):
            dropout_row(&x[i, 0], c, dropout_key(seed, step, row0 + <uint64_t>i), threshold,
                        scale, &out[i, 0])
    else:
        with nogil:
            _rows(&x[0, 0], &out[0, 0], n, c, threshold, scale, seed, step, row0,
                  n_threads)


cdef void _rows(const floating* x, floating* out, Py_ssize_t n, Py_ssize_t c,
                uint64_t threshold, floating scale, uint64_t seed, uint64_t step,
                uint64_t row0, int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, schedule='static', num_threads=n_threads):
        dropout_row(x + i * c, c, dropout_key(seed, step, row0 + <uint64_t>i), threshold,
                    scale, out + i * c)
