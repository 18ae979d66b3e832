# cython: language_level=3
"""The one finiteness test of the compiled code.

``x - x`` is 0 exactly for a finite x and NaN for NaN or +-inf, so OR-ing the compares
``(x - x) != 0`` over an array answers "all finite?" with no branch per element: the loop
vectorizes (a ``isfinite`` call per element does not).
"""
from cython cimport floating


cdef inline bint all_finite_ptr(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad = bad | ((a[i] - a[i]) != 0)
    return bad == 0
