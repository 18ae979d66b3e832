/* Independent tasks of a compiled pass run on OpenBLAS's own worker threads.
 *
 *   nn_pool_run(level1, fn, ctx, n_tasks, n_threads)
 *       runs fn(ctx, t) once for every t in [0, n_tasks): on up to n_threads threads
 *       through OpenBLAS's ``blas_level1_thread`` (``level1``, NULL: none), the calling
 *       thread one of them, and returns when all have run. n_threads must be at most
 *       OpenBLAS's thread count (``openblas_get_num_threads``): its pool has that many
 *       threads (it keeps them when the count is lowered), and a piece queued beyond
 *       them would wait for ever for a worker that does not exist; pool_run (blas.pyx)
 *       caps it at every call.
 *
 * Why OpenBLAS's threads: while BLAS runs a training step's products on its threads,
 * the passes between two products (the batch's gather, bias and activation, relu's
 * backward) run on the calling thread, and OpenBLAS's worker spends that time spinning
 * on its queue (OpenBLAS's x86-64 YIELDING is a run of nops, for 2^28 cycles after each
 * job). An OpenMP team beside it would be a third thread on two cores, and libgomp's
 * worker in turn spins after each region through the next product. Handed to the
 * spinning worker instead, a pass's other half starts within its next poll, and no
 * thread but BLAS's and the caller's ever runs.
 *
 * How: ``blas_level1_thread(mode, m, n, k, alpha, a, lda, b, ldb, c, ldc, fn, nthreads)``
 * (exported by every OpenBLAS build with threads; NumPy's ``libscipy_openblas64_``
 * included) cuts m into nthreads pieces, each queued to a worker but the first, which
 * the caller runs, and calls fn(m_piece, n, k, alpha, a, lda, b, ldb, c, ldc, sb) in
 * its legacy (BLAS_LEGACY) convention, returning when every piece has. Here m is the
 * number of pieces, lda = ldb = 0 (so no operand moves between pieces, whatever
 * element size OpenBLAS's mode bits mean in its version) and c points to the job; each
 * piece takes tasks from the job's atomic counter until none is left, so which thread
 * runs a task changes nothing a task computes. After the call the caller runs any task
 * no piece took (none, unless the BLAS ran no piece at all): the result never depends
 * on OpenBLAS running anything.
 *
 * Floating-point environment: a worker runs each piece under the caller's MXCSR (the
 * flush-denormal bits, rounding) and puts its own back after, so a task gives the bits
 * it gives on the calling thread. Memory: OpenBLAS's hand-over (a locked queue, a
 * store the caller waits on) orders the job's setup before a piece and a piece's writes
 * before the call returns.
 */
#ifndef NNLIB_BLAS_POOL_H
#define NNLIB_BLAS_POOL_H

#include <stddef.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define NN_POOL_CSR 1
#else
#define NN_POOL_CSR 0
#endif

/* OpenBLAS's common_thread.h since 0.3.11: BLAS_DOUBLE (a real double piece, alpha a
 * double) | BLAS_LEGACY. Older numbering (BLAS_DOUBLE 0x1) is refused by the caller
 * (blas.pyx reads the version). */
#define NN_POOL_MODE (0x0003u | 0x8000u)

typedef void (*nn_pool_task)(void* ctx, Py_ssize_t task);
typedef int (*nn_level1_thread_t)(int mode, int64_t m, int64_t n, int64_t k, void* alpha,
                                  void* a, int64_t lda, void* b, int64_t ldb, void* c,
                                  int64_t ldc, int (*function)(void), int nthreads);

typedef struct {
    nn_pool_task fn;
    void* ctx;
    Py_ssize_t n_tasks;
    Py_ssize_t next;            /* the next task to take (atomic) */
    unsigned int csr;           /* the caller's MXCSR */
} nn_pool_job;

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#if defined(_WIN64)         /* Py_ssize_t is 64 bits wide there, 32 on 32-bit Windows */
#define NN_POOL_TAKE(p) ((Py_ssize_t)_InterlockedExchangeAdd64((volatile __int64*)(p), 1))
#else
#define NN_POOL_TAKE(p) ((Py_ssize_t)_InterlockedExchangeAdd((volatile long*)(p), 1))
#endif
#else
#define NN_POOL_TAKE(p) __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)
#endif

static void nn_pool_tasks(nn_pool_job* job)
{
    Py_ssize_t t;
    while ((t = NN_POOL_TAKE(&job->next)) < job->n_tasks)
        job->fn(job->ctx, t);
}

/* One piece, in OpenBLAS's legacy real-double convention. */
static void nn_pool_piece(int64_t m, int64_t n, int64_t k, double alpha, double* a,
                          int64_t lda, double* b, int64_t ldb, double* c, int64_t ldc,
                          void* sb)
{
    nn_pool_job* job = (nn_pool_job*)c;
#if NN_POOL_CSR
    unsigned int own = _mm_getcsr();
    if (own != job->csr)
        _mm_setcsr(job->csr);
    nn_pool_tasks(job);
    if (own != job->csr)
        _mm_setcsr(own);
#else
    nn_pool_tasks(job);
#endif
    (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)ldc; (void)sb;
}

static void nn_pool_run(void* level1, nn_pool_task fn, void* ctx, Py_ssize_t n_tasks,
                        int n_threads)
{
    nn_pool_job job;
    double zero = 0.0;
    /* (through void (*)(void): the cast GCC's -Wcast-function-type leaves alone) */
    int (*piece)(void) = (int (*)(void))(void (*)(void))nn_pool_piece;
    int pieces = n_threads < n_tasks ? n_threads : (int)n_tasks;
    job.fn = fn;
    job.ctx = ctx;
    job.n_tasks = n_tasks;
    job.next = 0;
#if NN_POOL_CSR
    job.csr = _mm_getcsr();
#else
    job.csr = 0;
#endif
    if (level1 != NULL && pieces > 1)
        ((nn_level1_thread_t)level1)((int)NN_POOL_MODE, pieces, 0, 0, &zero, NULL, 0, NULL,
                                     0, (void*)&job, 0, piece, pieces);
    nn_pool_tasks(&job);        /* what no piece took: here, on this thread */
}

#endif
