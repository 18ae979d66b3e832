/* The flush-denormal mode of the compiled training epoch (nnlib.set_flush_denormal).
 *
 *   nnlib_flush_supported()        1 where the mode exists (x86-64: SSE's MXCSR), else 0
 *   nnlib_csr_get()                this thread's MXCSR (0 where there is none)
 *   nnlib_flush_enter(n_threads)   set FTZ | DAZ on this thread and on the OpenMP team of
 *                                  n_threads that the epoch's parallel loops run on
 *   nnlib_flush_exit(n_threads)    put back, on each of those threads, the FTZ and DAZ
 *                                  bits it had at nnlib_flush_enter
 *
 * FTZ (bit 15) makes an SSE/AVX result that would be subnormal +-0; DAZ (bit 6) reads a
 * subnormal operand as +-0. Both avoid the microcode assists subnormals cost (~100
 * cycles each) once a confident softmax makes p_j < FLT_MIN. The mode is a property of
 * the thread that runs the instructions, so it is set per thread: the caller's thread,
 * and the OpenMP worker threads, each in a parallel region of the same team size as the
 * epoch's loops (the OpenMP runtime hands a master the same pool threads, in the same
 * order, for consecutive regions of at most that size: libgomp and LLVM's libomp both
 * do; dynamic team sizing is switched off around the two regions so both get n). Each
 * thread keeps the bits it had in its own thread-local word, so a thread puts back its
 * own state and nothing else: rounding mode, exception masks and the sticky exception
 * flags raised meanwhile are left alone. A new thread copies its creator's MXCSR, so the
 * caller changes its own bits only after the workers of the entering region exist (they
 * are created as the caller is), and puts them back before the exiting region; a worker
 * the runtime creates in between (a pool that shrank and grew again) has no saved word
 * and gets the caller's bits from before the call. Threads BLAS starts itself
 * (OpenBLAS's pthreads) are not reached: their products run IEEE.
 *
 * Enter and exit bracket a call that cannot raise (the GIL released, a noexcept loop), so
 * no Python code, and no path out of the call, runs between them.
 */
#ifndef NNLIB_FPENV_H
#define NNLIB_FPENV_H

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define NNLIB_FTZ_DAZ 0x8040u
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(_MSC_VER)
#define NNLIB_TLS __declspec(thread)
#else
#define NNLIB_TLS __thread
#endif
static NNLIB_TLS unsigned int nnlib_saved_ftz_daz;  /* this thread's bits at enter */
static NNLIB_TLS int nnlib_entered;                  /* 1 between its enter and exit */

static inline int nnlib_flush_supported(void) { return 1; }
static inline unsigned int nnlib_csr_get(void) { return _mm_getcsr(); }

static inline void nnlib_flush_enter_thread(void)
{
    unsigned int csr = _mm_getcsr();
    nnlib_saved_ftz_daz = csr & NNLIB_FTZ_DAZ;
    nnlib_entered = 1;
    _mm_setcsr(csr | NNLIB_FTZ_DAZ);
}

/* Its own bits back; a thread never entered (created since) takes ``fallback``. */
static inline void nnlib_flush_exit_thread(unsigned int fallback)
{
    unsigned int bits = nnlib_entered ? nnlib_saved_ftz_daz : fallback;
    nnlib_entered = 0;
    _mm_setcsr((_mm_getcsr() & ~NNLIB_FTZ_DAZ) | bits);
}

/* Enter (exit with the caller's bits ``fallback``) on each worker of an OpenMP team of
   n, not on the caller (thread 0), with dynamic team sizing off so the team is n. */
static void nnlib_on_workers(int n, int entering, unsigned int fallback)
{
#ifdef _OPENMP
    if (n > 1) {
        int dynamic = omp_get_dynamic();
        omp_set_dynamic(0);
        #pragma omp parallel num_threads(n)
        {
            if (omp_get_thread_num() != 0) {
                if (entering)
                    nnlib_flush_enter_thread();
                else
                    nnlib_flush_exit_thread(fallback);
            }
        }
        omp_set_dynamic(dynamic);
    }
#endif
    (void)n; (void)entering; (void)fallback;
}

static void nnlib_flush_enter(int n_threads)
{
    /* workers first: threads created here copy the caller's bits from before the call */
    nnlib_on_workers(n_threads, 1, 0u);
    nnlib_flush_enter_thread();
}

static void nnlib_flush_exit(int n_threads)
{
    unsigned int caller = nnlib_entered ? nnlib_saved_ftz_daz
                                        : (_mm_getcsr() & NNLIB_FTZ_DAZ);
    nnlib_flush_exit_thread(caller);
    nnlib_on_workers(n_threads, 0, caller);
}

/* For tests: the MXCSR of each thread of a team of n (out[0]: the caller's). */
static void nnlib_team_csr(int n, unsigned int* out)
{
    out[0] = _mm_getcsr();
#ifdef _OPENMP
    if (n > 1) {
        #pragma omp parallel num_threads(n)
        {
            int i = omp_get_thread_num();
            if (i != 0 && i < n)
                out[i] = _mm_getcsr();
        }
    }
#endif
}

#else   /* no MXCSR: the mode does not exist and nothing is touched */
static void nnlib_team_csr(int n, unsigned int* out) { (void)n; out[0] = 0u; }
static inline int nnlib_flush_supported(void) { return 0; }
static inline unsigned int nnlib_csr_get(void) { return 0u; }
static inline void nnlib_flush_enter(int n_threads) { (void)n_threads; }
static inline void nnlib_flush_exit(int n_threads) { (void)n_threads; }
#endif

#endif
