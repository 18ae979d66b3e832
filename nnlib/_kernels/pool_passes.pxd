# cython: language_level=3
"""The training step's large elementwise passes split on BLAS's own threads.

When BLAS runs a step's products on several threads and the compiled loop's own passes
are on one (``run_epoch`` with BLAS on T > 1 threads and ``n_threads`` 1), OpenBLAS's
workers spin idle through the passes between two products (blas_pool.h). These
functions give them each a block of the pass through ``blas.pool_run``: the batch's row
gather and bias plus activation by blocks of rows, the activation's backward and its
column sums by blocks of columns a multiple of 64 bytes wide (as ``dense.act_backward``
cuts them for OpenMP). Each element, and each column sum, is formed by the same
operations in the same order as by the one-thread pass, so the results do not depend
on the split. Small passes (under ``PAR_MIN_ELEMS`` elements) stay on the caller, as
OpenMP's do.
"""
from cython cimport floating
from libc.string cimport memcpy

from nnlib._kernels.blas cimport pool_run
from nnlib._kernels.codes cimport ACT_IDENTITY
from nnlib._kernels.dense cimport (mm, mm_bias_act, blocked_product, narrow_forward,
                                   bias_act_rows, act_backward, act_backward_cols,
                                   identity_backward, PAR_MIN_ELEMS)


cdef struct PassJob:
    # one pass's operands; each task reads its block's bounds from n, c and blocks
    void* out
    const void* a
    const void* b
    double* work
    const long long* rows
    Py_ssize_t n, c, blocks
    int kind
    double param


cdef inline void _bias_act_block(floating* tag, PassJob* p, Py_ssize_t t) noexcept nogil:
    # rows [t n / blocks, (t + 1) n / blocks) of Z = act(Z + b)
    cdef Py_ssize_t r0 = t * p.n // p.blocks, r1 = (t + 1) * p.n // p.blocks
    bias_act_rows(<floating*>p.out + r0 * p.c, <const floating*>p.b, r1 - r0, p.c, p.kind,
                  p.param)


cdef inline void _bias_act_task_f(void* p, Py_ssize_t t) noexcept nogil:
    _bias_act_block(<float*>NULL, <PassJob*>p, t)


cdef inline void _bias_act_task_d(void* p, Py_ssize_t t) noexcept nogil:
    _bias_act_block(<double*>NULL, <PassJob*>p, t)


cdef inline void mm_bias_act_pool(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                  const floating* A, Py_ssize_t lda, const floating* B,
                                  Py_ssize_t ldb, floating* C, const floating* b, int kind,
                                  double param, int n_threads, int pool) noexcept nogil:
    """``dense.mm_bias_act`` (on ``n_threads`` of OpenMP), but with ``pool`` > 1 a product
    BLAS runs gets its bias and activation in blocks of rows on ``pool`` of BLAS's
    threads: C (m, n) = act(A B + b), bit for bit either way."""
    cdef PassJob p
    if (pool <= 1 or m * n < PAR_MIN_ELEMS or blocked_product(m, n, k, 1.0)
            or (floating is float and narrow_forward(m, n, k))):
        mm_bias_act(m, n, k, A, lda, B, ldb, C, b, kind, param, n_threads)
        return
    mm(False, False, m, n, k, 1.0, A, lda, B, ldb, 0.0, C, n)
    p.out, p.b, p.n, p.c, p.kind, p.param = C, b, m, n, kind, param
    p.blocks = pool if pool < m else m
    pool_run(_bias_act_task_d if floating is double else _bias_act_task_f, &p, p.blocks,
             pool)


cdef inline void _act_backward_block(floating* tag, PassJob* p,
                                     Py_ssize_t t) noexcept nogil:
    # columns [j0, j1) of dZ = dH * g'(H) and their sums in work; every bound but the
    # last on a 64-byte line of the row
    cdef Py_ssize_t line = 64 // sizeof(floating)
    cdef Py_ssize_t j0 = (t * p.c // p.blocks) // line * line
    cdef Py_ssize_t j1 = (p.c if t == p.blocks - 1
                          else ((t + 1) * p.c // p.blocks) // line * line)
    act_backward_cols(<const floating*>p.a, <const floating*>p.b, <floating*>p.out,
                      p.work, p.n, p.c, j0, j1, p.kind, p.param)


cdef inline void _act_backward_task_f(void* p, Py_ssize_t t) noexcept nogil:
    _act_backward_block(<float*>NULL, <PassJob*>p, t)


cdef inline void _act_backward_task_d(void* p, Py_ssize_t t) noexcept nogil:
    _act_backward_block(<double*>NULL, <PassJob*>p, t)


cdef inline void act_backward_pool(const floating* H, const floating* dH, floating* dZ,
                                   floating* db, double* work, Py_ssize_t n, Py_ssize_t c,
                                   int kind, double param, int n_threads,
                                   int pool) noexcept nogil:
    """``dense.act_backward`` (on ``n_threads`` of OpenMP), but with ``pool`` > 1 a large
    pass runs in blocks of columns on ``pool`` of BLAS's threads: dZ = dH * g'(H) and
    db = its column sums, bit for bit either way."""
    cdef PassJob p
    cdef Py_ssize_t j, line = 64 // sizeof(floating)
    cdef Py_ssize_t blocks = pool if pool < c // line else c // line
    if pool <= 1 or n * c < PAR_MIN_ELEMS or blocks < 2:
        act_backward(H, dH, dZ, db, work, n, c, kind, param, n_threads)
        return
    if (kind == ACT_IDENTITY and dZ == dH and db != NULL
            and identity_backward(dZ, db, work, n, c)):
        return
    p.out, p.a, p.b, p.work, p.n, p.c, p.kind, p.param = dZ, H, dH, work, n, c, kind, param
    p.blocks = blocks
    pool_run(_act_backward_task_d if floating is double else _act_backward_task_f, &p,
             blocks, pool)
    if db != NULL:
        for j in range(c):
            db[j] = <floating>work[j]


cdef inline void _gather_block(floating* tag, PassJob* p, Py_ssize_t t) noexcept nogil:
    # rows [t n / blocks, (t + 1) n / blocks) of the batch: out[i] = X[rows[i]]
    cdef Py_ssize_t i, r0 = t * p.n // p.blocks, r1 = (t + 1) * p.n // p.blocks
    for i in range(r0, r1):
        memcpy(<floating*>p.out + i * p.c, <const floating*>p.a + p.rows[i] * p.c,
               p.c * sizeof(floating))


cdef inline void _gather_task_f(void* p, Py_ssize_t t) noexcept nogil:
    _gather_block(<float*>NULL, <PassJob*>p, t)


cdef inline void _gather_task_d(void* p, Py_ssize_t t) noexcept nogil:
    _gather_block(<double*>NULL, <PassJob*>p, t)


cdef inline void gather_pool(floating* out, const floating* X, const long long* rows,
                             Py_ssize_t n, Py_ssize_t c, int pool) noexcept nogil:
    """out (n, c) = the rows ``rows`` of X (rows c apart; every row number checked by
    the caller), in blocks of rows on ``pool`` (> 1) of BLAS's threads."""
    cdef PassJob p
    p.out, p.a, p.rows, p.n, p.c = out, X, rows, n, c
    p.blocks = pool if pool < n else n
    pool_run(_gather_task_d if floating is double else _gather_task_f, &p, p.blocks, pool)
