# cython: language_level=3
"""How many OpenMP threads this build can use (1 when built without OpenMP)."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int nnlib_omp_max_threads(void) { return omp_get_max_threads(); }
    static int nnlib_has_openmp(void) { return 1; }
    #else
    static int nnlib_omp_max_threads(void) { return 1; }
    static int nnlib_has_openmp(void) { return 0; }
    #endif
    """
    int nnlib_omp_max_threads() nogil
    int nnlib_has_openmp() nogil


def max_threads():
    """omp_get_max_threads(), or 1 when nnlib was built without OpenMP."""
    return nnlib_omp_max_threads()


def has_openmp():
    """True when this build of nnlib was compiled with OpenMP."""
    return bool(nnlib_has_openmp())
