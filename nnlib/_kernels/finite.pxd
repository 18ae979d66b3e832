# cython: language_level=3
"""The one finiteness test of the compiled code.

``x - x`` is 0 exactly for a finite x and NaN for NaN or +-inf, so OR-ing the compares
``(x - x) != 0`` over an array answers "all finite?" with no branch per element: the loop
vectorizes (a ``isfinite`` call per element does not). With AVX-512 it is written as
one vector of compares at a time into a mask, the last columns one masked vector (it
reads nothing past the array): the compiler's loop spends more on its remainder and its
reduction than on the compares for the short rows the batch-1 step checks (a layer's
bias gradient, 10 or 100 values). An array longer than one vector has the values before
its first 64-byte boundary checked apart (one masked vector), so no later load straddles
two cache lines: NumPy starts a large array 16 bytes past one, and the straddling loads
took 7.4 us of fit's 1797 x 64 float32 X against ~3 us aligned.
"""
from cython cimport floating

cdef extern from *:
    """
    #if defined(__AVX512F__)
    #include <immintrin.h>
    #include <stdint.h>
    #define NN_ALL_FINITE(NAME, T, SUF, M, MT)                                              \
    static inline int NAME(const T* a, Py_ssize_t n)                                      \
    {                                                                                     \
        enum { L = 64 / sizeof(T) };                                                      \
        const M z = _mm512_setzero_##SUF();                                               \
        MT bad = 0;                                                                       \
        Py_ssize_t i = 0;                                                                 \
        if (n > L) {                    /* the values before a's first 64-byte boundary */ \
            Py_ssize_t h = (Py_ssize_t)(((64 - (uintptr_t)a % 64) % 64) / sizeof(T));     \
            if (h) {                                                                      \
                MT m = (MT)((1u << h) - 1u);                                              \
                M x = _mm512_maskz_loadu_##SUF(m, a);                                     \
                bad |= _mm512_mask_cmp_##SUF##_mask(m, _mm512_sub_##SUF(x, x), z,        \
                                                    _CMP_NEQ_UQ);                         \
                i = h;                                                                    \
            }                                                                             \
        }                                                                                 \
        for (; i + L <= n; i += L) {                                                      \
            M x = _mm512_loadu_##SUF(a + i);                                              \
            bad |= _mm512_cmp_##SUF##_mask(_mm512_sub_##SUF(x, x), z, _CMP_NEQ_UQ);      \
        }                                                                                 \
        if (i < n) {                                                                      \
            MT m = (MT)((1u << (n - i)) - 1u);                                            \
            M x = _mm512_maskz_loadu_##SUF(m, a + i);                                     \
            bad |= _mm512_mask_cmp_##SUF##_mask(m, _mm512_sub_##SUF(x, x), z,            \
                                                _CMP_NEQ_UQ);                             \
        }                                                                                 \
        return bad == 0;                                                                  \
    }
    #else
    #define NN_ALL_FINITE(NAME, T, SUF, M, MT)                                              \
    static inline int NAME(const T* a, Py_ssize_t n)                                      \
    {                                                                                     \
        Py_ssize_t i;                                                                     \
        int bad = 0;                                                                      \
        for (i = 0; i < n; i++)                                                           \
            bad |= (a[i] - a[i]) != 0;                                                    \
        return bad == 0;                                                                  \
    }
    #endif
    NN_ALL_FINITE(nn_all_finite_f, float, ps, __m512, __mmask16)
    NN_ALL_FINITE(nn_all_finite_d, double, pd, __m512d, __mmask8)
    """
    bint nn_all_finite_f(const float* a, Py_ssize_t n) noexcept nogil
    bint nn_all_finite_d(const double* a, Py_ssize_t n) noexcept nogil


cdef inline bint all_finite_ptr(const floating* a, Py_ssize_t n) noexcept nogil:
    """No NaN or +-inf in a[0:n] (NaN compares unordered: ``!= 0`` holds for it)."""
    if floating is float:
        return nn_all_finite_f(a, n)
    else:
        return nn_all_finite_d(a, n)
