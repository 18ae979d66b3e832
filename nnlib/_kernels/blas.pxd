# cython: language_level=3
"""Row-major GEMM for other kernels: C = alpha * op(A) @ op(B) + beta * C, nogil.

Call ``nnlib._kernels.blas.load()`` (Python, holds the GIL) once before the first
``gemm`` in a process: it resolves the BLAS symbols (lazily, see blas.pyx). The Python
wrappers of the dense and training kernels do so.

Shapes (row-major, C-contiguous rows with leading dimensions lda/ldb/ldc):
    op(A) is (m, k): A is (m, k) with lda >= k, or (k, m) with lda >= m when trans_a;
    op(B) is (k, n): B is (k, n) with ldb >= n, or (n, k) with ldb >= k when trans_b;
    C is (m, n) with ldc >= n.

``pool_run(fn, ctx, n_tasks, n_threads)`` runs fn(ctx, t) for every t in [0, n_tasks) on up
to n_threads of OpenBLAS's own threads (the caller one of them; blas_pool.h), or all on
the caller where that pool is not available (``pool_threads``).
"""
from cython cimport floating

# A task of a pass split on BLAS's threads (``pool_run``): fn(ctx, task), task in [0, n)
ctypedef void (*pool_task_t)(void* ctx, Py_ssize_t task) noexcept nogil

cdef void pool_run(pool_task_t fn, void* ctx, Py_ssize_t n_tasks,
                   int n_threads) noexcept nogil

cdef void sgemm_rm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   float alpha, const float* A, Py_ssize_t lda, const float* B,
                   Py_ssize_t ldb, float beta, float* C, Py_ssize_t ldc) noexcept nogil

cdef void dgemm_rm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   double alpha, const double* A, Py_ssize_t lda, const double* B,
                   Py_ssize_t ldb, double beta, double* C, Py_ssize_t ldc) noexcept nogil


cdef inline void gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n,
                      Py_ssize_t k, double alpha, const floating* A, Py_ssize_t lda,
                      const floating* B, Py_ssize_t ldb, double beta, floating* C,
                      Py_ssize_t ldc) noexcept nogil:
    """The fused-type front door: sgemm for float32, dgemm for float64."""
    if floating is float:
        sgemm_rm(trans_a, trans_b, m, n, k, <float>alpha, A, lda, B, ldb, <float>beta,
                 C, ldc)
    else:
        dgemm_rm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
