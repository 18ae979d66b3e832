# cython: language_level=3
"""BLAS GEMM resolved at run time, callable without the GIL from other kernels.

Design note
-----------
nnlib links against no BLAS at build time. At first use, ``load()`` looks for one that is
already in the process, cheapest first:

1. NumPy's own OpenBLAS (the wheel bundles ``numpy.libs/libscipy_openblas64_*.so``,
   ILP64 Fortran symbols ``scipy_sgemm_64_`` / ``scipy_dgemm_64_`` with 64-bit integer
   arguments). NumPy has loaded it already, so ``ctypes.CDLL`` on that path only bumps a
   reference count: no import cost.
2. SciPy's ``scipy.linalg.cython_blas`` (LP64: 32-bit integers). Importing it costs about
   0.2 s (it pulls in scipy.linalg), so it is only a fallback.

With NumPy's OpenBLAS, ``load()`` also resolves its ``blas_level1_thread`` (OpenBLAS 0.3.11
or later), through which ``pool_run`` hands a compiled pass's tasks to OpenBLAS's own
worker threads (blas_pool.h says why and how); elsewhere ``pool_run`` runs them all on the
calling thread.

Neither found -> ImportError saying what to install. The resolved function pointers live
in module globals; ``sgemm_rm`` / ``dgemm_rm`` translate a row-major product into the
column-major call (C^T = op(B)^T op(A)^T: swap the operands and m/n, keep the flags).

``gemm`` must not be called before ``load()`` has succeeded (the Python wrappers of the
dense layer and the training loop call it).
"""
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer, PyCapsule_IsValid
from cython cimport floating
from libc.stdint cimport int64_t, uintptr_t

ctypedef void sgemm64_t(const char* ta, const char* tb, const int64_t* m,
                        const int64_t* n, const int64_t* k, const float* alpha,
                        const float* a, const int64_t* lda, const float* b,
                        const int64_t* ldb, const float* beta, float* c,
                        const int64_t* ldc) noexcept nogil
ctypedef void dgemm64_t(const char* ta, const char* tb, const int64_t* m,
                        const int64_t* n, const int64_t* k, const double* alpha,
                        const double* a, const int64_t* lda, const double* b,
                        const int64_t* ldb, const double* beta, double* c,
                        const int64_t* ldc) noexcept nogil
ctypedef void sgemm32_t(const char* ta, const char* tb, const int* m, const int* n,
                        const int* k, const float* alpha, const float* a, const int* lda,
                        const float* b, const int* ldb, const float* beta, float* c,
                        const int* ldc) noexcept nogil
ctypedef void dgemm32_t(const char* ta, const char* tb, const int* m, const int* n,
                        const int* k, const double* alpha, const double* a,
                        const int* lda, const double* b, const int* ldb,
                        const double* beta, double* c, const int* ldc) noexcept nogil

cdef sgemm64_t* _sgemm64 = NULL
cdef dgemm64_t* _dgemm64 = NULL
cdef sgemm32_t* _sgemm32 = NULL
cdef dgemm32_t* _dgemm32 = NULL

cdef extern from "blas_pool.h" nogil:
    void nn_pool_run(void* level1, pool_task_t fn, void* ctx, Py_ssize_t n_tasks,
                     int n_threads)

cdef void* _level1 = NULL       # OpenBLAS's blas_level1_thread, when usable
# OpenBLAS's openblas_get_num_threads, with _level1: pool_run's cap on its pieces
cdef int (*_pool_cap)() noexcept nogil
_pool_cap = NULL
cdef bint _pool_on = True       # tests turn the pool off (``_set_pool``)

_info = None          # dict describing the loaded BLAS, once load() succeeded
_set_threads = None   # ctypes function setting OpenBLAS's thread count, when known
_get_threads = None


def _numpy_openblas_path():
    """Path of the OpenBLAS bundled in NumPy's wheel, or None."""
    import glob
    import os
    import numpy
    root = os.path.dirname(os.path.dirname(numpy.__file__))
    for pattern in ("numpy.libs/libscipy_openblas64_*", "numpy/.dylibs/libscipy_openblas64_*",
                    "numpy.libs/libscipy_openblas64_*.dll"):
        hits = sorted(glob.glob(os.path.join(root, pattern)))
        if hits:
            return hits[0]
    return None


cdef bint _load_numpy():
    global _sgemm64, _dgemm64, _info, _set_threads, _get_threads
    import ctypes
    path = _numpy_openblas_path()
    if path is None:
        return False
    try:
        lib = ctypes.CDLL(path)
        s = ctypes.cast(lib.scipy_sgemm_64_, ctypes.c_void_p).value
        d = ctypes.cast(lib.scipy_dgemm_64_, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return False
    if not s or not d:
        return False
    _sgemm64 = <sgemm64_t*><uintptr_t>s
    _dgemm64 = <dgemm64_t*><uintptr_t>d
    _load_pool(lib)
    try:
        # through PyDLL, which keeps the GIL during the call: CDLL's calls let it go, and
        # a call this short would then wait out another thread's switch interval to get
        # it back (gil.pxd)
        lib = ctypes.PyDLL(path)
        _set_threads = lib.scipy_openblas_set_num_threads64_
        _set_threads.argtypes = [ctypes.c_int]
        _set_threads.restype = None
        _get_threads = lib.scipy_openblas_get_num_threads64_
        _get_threads.argtypes = []
        _get_threads.restype = ctypes.c_int
    except AttributeError:
        _set_threads = _get_threads = None
    _info = {"source": "numpy", "path": path, "int_bits": 64}
    return True


def _openblas_version(config):
    """(major, minor, patch) from OpenBLAS's config string (``b"OpenBLAS 0.3.31 ..."``),
    or None."""
    import re
    found = re.match(rb"OpenBLAS (\d+)\.(\d+)\.(\d+)", config or b"")
    return tuple(int(g) for g in found.groups()) if found else None


cdef _load_pool(lib):
    # blas_level1_thread's mode bits (blas_pool.h's NN_POOL_MODE) are those of OpenBLAS
    # 0.3.11 and later; with an older one (or none found) pool_run stays on the caller
    global _level1, _pool_cap
    import ctypes
    try:
        config = lib.scipy_openblas_get_config64_
        config.restype = ctypes.c_char_p
        config.argtypes = []
        version = _openblas_version(config())
        level1 = ctypes.cast(lib.blas_level1_thread, ctypes.c_void_p).value
        cap = ctypes.cast(lib.scipy_openblas_get_num_threads64_, ctypes.c_void_p).value
    except AttributeError:
        return
    if version is not None and version >= (0, 3, 11) and level1 and cap:
        _pool_cap = <int (*)() noexcept nogil><uintptr_t>cap
        _level1 = <void*><uintptr_t>level1


def pool_threads():
    """Threads ``pool_run`` splits a pass between now: OpenBLAS's thread count where its
    pool is available (NumPy's OpenBLAS 0.3.11 or later), else 1."""
    load()
    if _level1 == NULL or not _pool_on or _get_threads is None:
        return 1
    return max(1, int(_get_threads()))


def _set_pool(bint on):
    """Let ``pool_run`` use OpenBLAS's threads (True) or only the caller's (tests);
    returns the previous setting."""
    global _pool_on
    previous = _pool_on
    _pool_on = on
    return previous


cdef void pool_run(pool_task_t fn, void* ctx, Py_ssize_t n_tasks,
                   int n_threads) noexcept nogil:
    # at most OpenBLAS's thread count at this call (another thread may have lowered it
    # since the caller read it): a piece queued beyond its pool would wait for a worker
    # that does not exist, for ever (blas_pool.h)
    cdef void* level1 = _level1 if _pool_on else NULL
    cdef int cap
    if level1 != NULL:
        cap = _pool_cap()
        if n_threads > cap:
            n_threads = cap
    nn_pool_run(level1, fn, ctx, n_tasks, n_threads)


cdef extern from *:
    """
    #include <pthread.h>
    #include <time.h>
    #if defined(__x86_64__) || defined(_M_X64)
    #include <xmmintrin.h>
    static unsigned int nn_probe_csr(void) { return _mm_getcsr(); }
    static void nn_probe_set_csr(unsigned int v) { _mm_setcsr(v); }
    #else
    static unsigned int nn_probe_csr(void) { return 0; }
    static void nn_probe_set_csr(unsigned int v) { (void)v; }
    #endif
    static double nn_probe_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + 1e-9 * ts.tv_nsec;
    }
    static unsigned long long nn_probe_thread(void) {
        return (unsigned long long)pthread_self();
    }
    """
    unsigned int nn_probe_csr() nogil
    void nn_probe_set_csr(unsigned int v) nogil
    double nn_probe_now() nogil
    unsigned long long nn_probe_thread() nogil


cdef struct _Probe:
    unsigned long long* thread
    unsigned int* csr
    double seconds


cdef void _probe_task(void* ctx, Py_ssize_t t) noexcept nogil:
    # ``seconds`` of waiting, then which thread ran the task, under which MXCSR
    cdef _Probe* p = <_Probe*>ctx
    cdef double end = nn_probe_now() + p.seconds
    while nn_probe_now() < end:
        pass
    p.thread[t] = nn_probe_thread()
    p.csr[t] = nn_probe_csr()


def _pool_probe(Py_ssize_t n_tasks, int n_threads, double seconds, csr=None):
    """Run ``n_tasks`` tasks of ``seconds`` each through ``pool_run`` on ``n_threads``,
    with this thread's MXCSR set to ``csr`` meanwhile (None: as it is); returns per task
    the id of the thread that ran it and the MXCSR it ran under (tests)."""
    import numpy as np
    load()
    thread = np.zeros(max(n_tasks, 1), np.uint64)
    seen = np.zeros(max(n_tasks, 1), np.uint32)
    cdef unsigned long long[::1] tv = thread
    cdef unsigned int[::1] cv = seen
    cdef _Probe p
    cdef unsigned int own
    cdef bint set_csr = csr is not None
    cdef unsigned int want = csr if set_csr else 0
    p.thread, p.csr, p.seconds = &tv[0], &cv[0], seconds
    with nogil:
        own = nn_probe_csr()
        if set_csr:
            nn_probe_set_csr(want)
        pool_run(_probe_task, &p, n_tasks, n_threads)
        nn_probe_set_csr(own)
    return thread[:n_tasks], seen[:n_tasks]


cdef void* _capsule_pointer(object capsule) except NULL:
    name = PyCapsule_GetName(capsule)
    return PyCapsule_GetPointer(capsule, name)


cdef bint _load_scipy():
    global _sgemm32, _dgemm32, _info
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return False
    capi = cython_blas.__pyx_capi__
    _sgemm32 = <sgemm32_t*>_capsule_pointer(capi["sgemm"])
    _dgemm32 = <dgemm32_t*>_capsule_pointer(capi["dgemm"])
    _info = {"source": "scipy", "path": cython_blas.__file__, "int_bits": 32}
    return True


def load(prefer="numpy"):
    """Resolve sgemm/dgemm once per process; return a dict describing the BLAS used.

    Parameters
    ----------
    prefer : {"numpy", "scipy"}
        Which source to try first ("scipy" exists for the tests of the fallback).

    Raises
    ------
    ImportError
        Neither NumPy's bundled OpenBLAS nor scipy.linalg.cython_blas is available.
    """
    if _info is not None:
        return dict(_info)
    for source in ((prefer, "scipy") if prefer == "numpy" else (prefer, "numpy")):
        if (_load_numpy() if source == "numpy" else _load_scipy()):
            return dict(_info)
    raise ImportError(
        "nnlib needs a BLAS for its matrix products and found none: NumPy's wheel ships "
        "one (numpy.libs/libscipy_openblas64_*) but this NumPy was built without it, and "
        "scipy is not installed. Install scipy (pip install scipy) or NumPy from PyPI.")


def _reset_for_tests():
    """Forget the loaded BLAS so a test can load the other source."""
    global _sgemm64, _dgemm64, _sgemm32, _dgemm32, _info, _set_threads, _get_threads
    global _level1
    _level1 = NULL
    _sgemm64 = NULL
    _dgemm64 = NULL
    _sgemm32 = NULL
    _dgemm32 = NULL
    _info = _set_threads = _get_threads = None


def get_num_threads():
    """OpenBLAS's thread count, or None when it cannot be queried (scipy fallback)."""
    load()
    return None if _get_threads is None else int(_get_threads())


def set_num_threads(int n):
    """Set OpenBLAS's thread count (process-wide: NumPy's matmul uses it too). Returns the
    previous count, or None when it cannot be set."""
    load()
    if _set_threads is None or _get_threads is None:
        return None
    old = int(_get_threads())
    _set_threads(max(1, n))
    return old


cdef inline void _scale(Py_ssize_t m, Py_ssize_t n, double beta, float* Cs, double* Cd,
                        Py_ssize_t ldc) noexcept nogil:
    # k == 0: op(A) op(B) is the zero matrix; BLAS would also accept it, but some builds
    # complain about lda = 0, so do the C = beta C ourselves.
    cdef Py_ssize_t i, j
    for i in range(m):
        for j in range(n):
            if Cs != NULL:
                Cs[i * ldc + j] = 0.0 if beta == 0.0 else <float>(beta * Cs[i * ldc + j])
            else:
                Cd[i * ldc + j] = 0.0 if beta == 0.0 else beta * Cd[i * ldc + j]


cdef inline void _gemm_rm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n,
                          Py_ssize_t k, floating alpha, const floating* A, Py_ssize_t lda,
                          const floating* B, Py_ssize_t ldb, floating beta, floating* C,
                          Py_ssize_t ldc) noexcept nogil:
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: pass B first,
    # swap m and n, keep the transpose flags.
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int64_t M = n, N = m, K = k, LA = ldb, LB = lda, LC = ldc
    cdef int m32 = n, n32 = m, k32 = k, la32 = ldb, lb32 = lda, lc32 = ldc
    if m <= 0 or n <= 0:
        return
    if k <= 0:
        if floating is float:
            _scale(m, n, beta, C, NULL, ldc)
        else:
            _scale(m, n, beta, NULL, C, ldc)
    elif floating is float:
        if _sgemm64 != NULL:
            _sgemm64(&tb, &ta, &M, &N, &K, &alpha, B, &LA, A, &LB, &beta, C, &LC)
        else:
            _sgemm32(&tb, &ta, &m32, &n32, &k32, &alpha, B, &la32, A, &lb32, &beta, C,
                     &lc32)
    else:
        if _dgemm64 != NULL:
            _dgemm64(&tb, &ta, &M, &N, &K, &alpha, B, &LA, A, &LB, &beta, C, &LC)
        else:
            _dgemm32(&tb, &ta, &m32, &n32, &k32, &alpha, B, &la32, A, &lb32, &beta, C,
                     &lc32)


cdef void sgemm_rm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   float alpha, const float* A, Py_ssize_t lda, const float* B,
                   Py_ssize_t ldb, float beta, float* C, Py_ssize_t ldc) noexcept nogil:
    _gemm_rm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)


cdef void dgemm_rm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   double alpha, const double* A, Py_ssize_t lda, const double* B,
                   Py_ssize_t ldb, double beta, double* C, Py_ssize_t ldc) noexcept nogil:
    _gemm_rm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)


def gemm_py(bint trans_a, bint trans_b, double alpha, A, B, double beta, C):
    """C = alpha * op(A) @ op(B) + beta * C in place on 2-d C-contiguous arrays of one
    float dtype (for tests; shapes are checked here)."""
    import numpy as np
    load()
    if not (A.dtype == B.dtype == C.dtype) or A.dtype not in (np.float32, np.float64):
        raise TypeError("A, B, C must share a float32/float64 dtype")
    for name, a in (("A", A), ("B", B), ("C", C)):
        if a.ndim != 2 or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a 2-d C-contiguous array")
    if not C.flags.writeable:
        raise ValueError("C must be writeable")
    pm, pk = (A.shape[1], A.shape[0]) if trans_a else A.shape
    pkb, pn = (B.shape[1], B.shape[0]) if trans_b else B.shape
    if pkb != pk or C.shape != (pm, pn):
        raise ValueError(f"shapes do not align: op(A) {(pm, pk)}, op(B) {(pkb, pn)}, "
                         f"C {C.shape}")
    cdef Py_ssize_t m = pm, n = pn, k = pk
    if _sgemm64 == NULL and max(A.size, B.size, C.size) >= 2 ** 31:
        raise ValueError("arrays too large for the 32-bit BLAS fallback")
    cdef const float[:, ::1] As, Bs
    cdef float[:, ::1] Cs
    cdef const double[:, ::1] Ad, Bd
    cdef double[:, ::1] Cd
    cdef Py_ssize_t lda = max(A.shape[1], 1), ldb = max(B.shape[1], 1)
    cdef Py_ssize_t ldc = max(C.shape[1], 1)
    if A.dtype == np.float32:
        As = np.ascontiguousarray(A) if A.size else np.zeros((1, 1), np.float32)
        Bs = np.ascontiguousarray(B) if B.size else np.zeros((1, 1), np.float32)
        Cs = C if C.size else np.zeros((1, 1), np.float32)
        with nogil:
            sgemm_rm(trans_a, trans_b, m, n, k, <float>alpha, &As[0, 0], lda, &Bs[0, 0],
                     ldb, <float>beta, &Cs[0, 0], ldc)
    else:
        Ad = np.ascontiguousarray(A) if A.size else np.zeros((1, 1))
        Bd = np.ascontiguousarray(B) if B.size else np.zeros((1, 1))
        Cd = C if C.size else np.zeros((1, 1))
        with nogil:
            dgemm_rm(trans_a, trans_b, m, n, k, alpha, &Ad[0, 0], lda, &Bd[0, 0], ldb,
                     beta, &Cd[0, 0], ldc)
    return C
