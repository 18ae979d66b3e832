# cython: language_level=3
"""Inverted dropout over the rows of a matrix: layer 2.

Design note
-----------
The row math and the mask generator live in ``dropout_rows.pxd`` (layer 1). The kernel
takes a C-contiguous ``(..., c)`` input (an ndarray read as the rows of its last axis
through its data pointer, after the checks of ``buffers.pxd``), runs one row per
iteration of ``prange(schedule='static', num_threads=n_threads)`` with the GIL released
(in order on the calling thread for work too short for that: ``gil.pxd``), and writes
into the
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
cimport numpy as cnp

from nnlib._kernels.buffers cimport check_flat_float, same_shape
from nnlib._kernels.dropout_rows cimport dropout_key, dropout_row
from nnlib._kernels.gil cimport keeps_gil

cnp.import_array()


cdef inline uint64_t _threshold(double rate) noexcept:
    return <uint64_t>ceil(rate * 9007199254740992.0)


cdef int _check_rate(double rate, str fn) except -1:
    # the loops need 0 <= rate < 1 (a scale 1 / (1 - rate), a threshold below 2**53 that
    # fits its integer): NaN fails both comparisons
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"{fn}: rate must be in [0, 1); got {rate}")
    return 0


def dropout_threshold(double rate):
    """ceil(rate * 2**53): the integer a mask's 53 bits must reach to keep an entry;
    0 <= rate < 1 (else ValueError)."""
    _check_rate(rate, "dropout_threshold")
    return _threshold(rate)


cdef void _apply(const floating* x, floating* out, Py_ssize_t n, Py_ssize_t c,
                 double rate, uint64_t seed, uint64_t step, uint64_t row0,
                 int n_threads) noexcept:
    cdef uint64_t threshold = _threshold(rate)
    cdef floating scale = <floating>(1.0 / (1.0 - rate))
    cdef Py_ssize_t i
    if keeps_gil(n * c, n_threads):     # the rows in order on this thread (gil.pxd)
        for i in range(n):
            dropout_row(&x[i * c], c, dropout_key(seed, step, row0 + <uint64_t>i),
                        threshold, scale, &out[i * c])
    else:
        with nogil:
            _rows(x, out, n, c, threshold, scale, seed, step, row0, n_threads)


def dropout_apply(cnp.ndarray x not None, cnp.ndarray out not None, double rate,
                  uint64_t seed, uint64_t step, uint64_t row0, int n_threads):
    """out[i] = x[i] * m[row0 + i] / (1 - rate) with the mask of (seed, step); x, out:
    (..., c) of one shape, read as the rows of the last axis; 0 <= rate < 1 (else
    ValueError: the wrapper checks it, and so does the kernel)."""
    _check_rate(rate, "dropout_apply")
    cdef int t = check_flat_float(x, "x", "dropout_apply", -1, -1, False)
    cdef int nd = cnp.PyArray_NDIM(x)
    if nd == 0:
        raise ValueError("dropout_apply: x must have at least one dimension; got a 0-d "
                         "array")
    check_flat_float(out, "out", "dropout_apply", t, -1, True)
    if not same_shape(x, out):
        raise ValueError(f"dropout_apply: x {(<object>x).shape} and out "
                         f"{(<object>out).shape} must have the same shape")
    cdef Py_ssize_t c = cnp.PyArray_DIMS(x)[nd - 1], size = cnp.PyArray_SIZE(x)
    if size == 0:
        return
    if t == cnp.NPY_FLOAT:
        _apply(<const float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), size // c,
               c, rate, seed, step, row0, n_threads)
    else:
        _apply(<const double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out),
               size // c, c, rate, seed, step, row0, n_threads)


cdef void _rows(const floating* x, floating* out, Py_ssize_t n, Py_ssize_t c,
                uint64_t threshold, floating scale, uint64_t seed, uint64_t step,
                uint64_t row0, int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, schedule='static', num_threads=n_threads):
        dropout_row(x + i * c, c, dropout_key(seed, step, row0 + <uint64_t>i), threshold,
                    scale, out + i * c)
