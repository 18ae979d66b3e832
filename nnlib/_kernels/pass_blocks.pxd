# cython: language_level=3
"""A large pass's blocks: where they are cut, and which threads run them.

Design note
-----------
A large elementwise pass of the training step (the batch's row gather, bias plus
activation, the activation's backward with its column sums) is cut into independent
blocks, at most one per thread, in one of two ways:

    rows      ``row_block``: rows [t n / blocks, (t + 1) n / blocks)
    columns   ``line_block``: every bound but the last on a 64-byte line of the row, so
              two threads share at most the line at a block's edge (when a row does not
              start on one), never an element, and each column's sum is one thread's

and the blocks run (``run_blocks``) on one of two teams:

    OpenMP    ``n_threads`` threads: a kernel called from Python, or run_epoch's loop on
              T threads
    BLAS      ``pool`` > 1 of OpenBLAS's own threads (``blas.pool_run``): run_epoch's
              loop on one thread while BLAS runs the step's products on ``pool``, whose
              workers would otherwise spin idle through the passes between two
              products, and where an OpenMP team would be a third thread on two cores
              (blas_pool.h says why and how)

A pass is one task ``fn(job, t)`` that reads its operands from a ``PassJob`` and its
bounds from the helpers here, written once whichever team runs it (dense.pxd.tp:
``bias_act``, ``act_backward``; train.pyx: the gather). A block forms each element, and
each column sum, by the same operations in the same order as the one-thread pass, so the
result depends neither on the split nor on the team.
"""
from cython.parallel cimport prange

from nnlib._kernels.blas cimport pool_task_t, pool_run


cdef struct PassJob:
    # one pass's operands (each pass names its use of them); a task reads its block's
    # bounds from n (rows), c (columns) and blocks
    void* out
    const void* a
    const void* b
    double* work
    const long long* rows
    Py_ssize_t n, c, blocks
    int kind
    double param


cdef inline int team_threads(int n_threads, int pool) noexcept nogil:
    """The threads a pass may split between: ``pool`` of BLAS's where ``pool`` > 1,
    else ``n_threads`` of OpenMP's."""
    return pool if pool > 1 else n_threads


cdef inline void row_block(Py_ssize_t n, Py_ssize_t blocks, Py_ssize_t t, Py_ssize_t* lo,
                           Py_ssize_t* hi) noexcept nogil:
    """Rows [lo, hi) of block t of n rows cut into ``blocks``."""
    lo[0] = t * n // blocks
    hi[0] = (t + 1) * n // blocks


cdef inline Py_ssize_t line_blocks(Py_ssize_t c, Py_ssize_t itemsize,
                                   int threads) noexcept nogil:
    """Blocks of c columns of ``itemsize`` bytes for ``threads``: one per thread, but no
    more than the row holds whole 64-byte lines (fewer than two: the pass stays whole)."""
    cdef Py_ssize_t lines = c // (64 // itemsize)
    return threads if threads < lines else lines


cdef inline void line_block(Py_ssize_t c, Py_ssize_t itemsize, Py_ssize_t blocks,
                            Py_ssize_t t, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Columns [lo, hi) of block t of c columns cut into ``blocks`` on 64-byte lines:
    every bound but the last a whole number of lines from the row's start."""
    cdef Py_ssize_t line = 64 // itemsize
    lo[0] = (t * c // blocks) // line * line
    hi[0] = c if t == blocks - 1 else ((t + 1) * c // blocks) // line * line


cdef inline void run_blocks(pool_task_t task, PassJob* job, int pool) noexcept nogil:
    """task(job, t) for every block t in [0, job.blocks): on ``pool`` of BLAS's threads
    where ``pool`` > 1, else on an OpenMP team of one thread per block (the caller
    sized job.blocks for ``team_threads``); returns when all have run."""
    cdef Py_ssize_t t
    if pool > 1:
        pool_run(task, job, job.blocks, pool)
    else:
        for t in prange(job.blocks, schedule='static', num_threads=job.blocks):
            task(job, t)
