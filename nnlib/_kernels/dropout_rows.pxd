# cython: language_level=3
"""Inverted dropout, one row at a time: layer 1, shared by ``dropout.pyx`` and (next) the
compiled training epoch.

Design note
-----------
The mask is a pure function of ``(seed, step, row, column)``, not a stream: a
counter-based generator (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2,
3", SC'11) built from SplitMix64's finalizer (Steele, Lea & Flood 2014, "Fast
splittable pseudorandom number generators", OOPSLA; the constants are Vigna's). So a mask
does not depend on the thread count, the order rows are visited in, or how an epoch is
cut into pieces, and the backward pass recomputes it instead of storing it. All
arithmetic is on uint64 and wraps modulo 2**64 (the NumPy twin does the same)::

    key(seed, step, row) = mix(mix(mix(seed + G) + step + G) + row + G)
    bits(..., j)         = mix(key + (j + 1) G)                     G = 0x9E3779B97F4A7C15
    kept                 = (bits >> 11) >= ceil(rate * 2**53)       P(kept) = 1 - rate

``bits >> 11`` is uniform on [0, 2**53), so ``(bits >> 11) * 2**-53`` is a uniform
double and the comparison with the integer threshold is exact. A kept entry is scaled by
``scale = 1 / (1 - rate)`` rounded once to the dtype (inverted dropout: E[out] = x);
a dropped one is multiplied by 0, so NaN and inf still propagate, as in the math
``x * m / (1 - rate)``.
"""
from cython cimport floating
from libc.stdint cimport uint64_t

cdef extern from *:
    """
    #define NNLIB_GOLDEN 0x9E3779B97F4A7C15ULL
    """
    uint64_t NNLIB_GOLDEN


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t dropout_key(uint64_t seed, uint64_t step, uint64_t row) noexcept nogil:
    return mix64(mix64(mix64(seed + NNLIB_GOLDEN) + step + NNLIB_GOLDEN)
                 + row + NNLIB_GOLDEN)


cdef inline void dropout_row(const floating* x, Py_ssize_t c, uint64_t key,
                             uint64_t threshold, floating scale,
                             floating* out) noexcept nogil:
    """out[j] = x[j] * (scale if kept(key, j) else 0) for j < c."""
    cdef Py_ssize_t j
    cdef floating zero = 0
    for j in range(c):
        out[j] = x[j] * (scale if (mix64(key + <uint64_t>(j + 1) * NNLIB_GOLDEN) >> 11)
                         >= threshold else zero)
