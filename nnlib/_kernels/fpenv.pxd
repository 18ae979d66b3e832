# cython: language_level=3
"""fpenv.h's flush-denormal mode (nnlib.set_flush_denormal), declared once for the
modules that enter it: the training epoch, and the test helpers of dense.pyx and
losses.pyx that run a kernel in the epoch's mode. See fpenv.h for the per-thread rules."""

cdef extern from "fpenv.h" nogil:
    int nnlib_flush_supported()
    unsigned int nnlib_csr_get()
    void nnlib_flush_enter(int n_threads)
    void nnlib_flush_exit(int n_threads)
    void nnlib_team_csr(int n, unsigned int* out)
