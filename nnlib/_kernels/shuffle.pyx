# cython: language_level=3
"""NumPy's ``default_rng(seed).permutation(n)`` without a Generator: the per-fit order.

Design note. ``Sequential.fit`` draws one shuffled order per epoch from
``default_rng(random_state)``. Building that Generator (SeedSequence's pool of NumPy
arrays) and calling ``permutation`` cost about 35 us per fit on 1797 rows, a tenth of a
batch-1 fit's Python glue. ``SeedOrders`` holds the same PCG64 state in a C struct and
draws the same orders bit for bit:

1. the seed's 32-bit words are stirred into SeedSequence's four-word pool and
   ``generate_state(4, uint64)`` gives PCG64's ``initstate`` and ``initseq``
   (``numpy/random/bit_generator.pyx``);
2. PCG64 is the 128-bit LCG with the XSL-RR output (``numpy/random/src/pcg64``), a
   32-bit draw using the two halves of one 64-bit draw, low half first;
3. ``permutation`` is Fisher-Yates from the last position down, each index drawn by
   ``random_interval`` (masked rejection, 32-bit draws below 2^32;
   ``numpy/random/src/distributions``).

``SeedOrders`` runs step 3 in two passes over blocks of NN_SHUFFLE_SWAPS (512) positions
(nnlib/_paths.py): first the accepted index of each position (a rejected draw is
overwritten by the next, the position held by a subtraction of the test's 0/1, not a
branch), then the swaps, from PCG64 outputs made ahead NN_SHUFFLE_DRAWS (64) at a time
with the state each leaves (the generator ends where the last draw taken leaves it, the
buffered half included). One pass with a branch per draw spends about 5 ns a position
on mispredicted rejections and the swaps' memory chain; the two take about 2.8 (1797
rows: ~9.5 -> ~5 us an epoch). The orders and states are the same draw for draw.

The NumPy twin ``nnlib/_reference/shuffle.py`` states each step in plain Python, and
``tests/test_shuffle.py`` checks both against NumPy for many seeds and lengths.

``generator_permutation`` runs step 3 on any NumPy ``Generator``'s own bit generator
(through its ``bitgen_t`` capsule, under its lock): its twin is ``permutation`` itself.
Both keep the GIL for orders below ``GIL_RELEASE_MIN`` rows, where NumPy's ``permutation``
lets it go (in ``arange`` and in ``shuffle``) however short the order: a fit whose epochs
keep the GIL (``gil.pxd``) would otherwise let it go for a microsecond once per epoch,
and such brief releases starve a thread that waits for the GIL (each one wakes it and
restarts its switch-interval wait; the releasing thread takes the GIL back first).
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport uint32_t, uint64_t, int64_t

from cpython.pycapsule cimport PyCapsule_GetPointer

from nnlib._kernels.gil cimport keeps_gil

cnp.import_array()

cdef extern from *:
    """
    #include <string.h>
    typedef unsigned __int128 nnlib_u128;
    typedef struct { nnlib_u128 state, inc; int has32; uint32_t half; } nnlib_pcg64;

    static inline void nnlib_pcg_step(nnlib_pcg64 *r) {
        const nnlib_u128 mult = (((nnlib_u128)0x2360ED051FC65DA4ULL) << 64)
                                | 0x4385DF649FCCF645ULL;
        r->state = r->state * mult + r->inc;
    }
    static inline void nnlib_pcg_seed(nnlib_pcg64 *r, uint64_t s_hi, uint64_t s_lo,
                                      uint64_t i_hi, uint64_t i_lo) {
        r->state = 0;
        r->inc = ((((nnlib_u128)i_hi << 64) | i_lo) << 1) | 1;
        nnlib_pcg_step(r);
        r->state += ((nnlib_u128)s_hi << 64) | s_lo;
        nnlib_pcg_step(r);
        r->has32 = 0;
        r->half = 0;
    }
    static inline uint64_t nnlib_pcg_next64(nnlib_pcg64 *r) {
        nnlib_pcg_step(r);
        uint64_t x = (uint64_t)(r->state >> 64) ^ (uint64_t)r->state;
        unsigned rot = (unsigned)(r->state >> 122);
        return (x >> rot) | (x << ((-rot) & 63));
    }
    /* NumPy's bit generator interface (numpy/random/bitgen.h, the capsule
       "BitGenerator" of every BitGenerator): its state and draw functions */
    typedef struct {
        void *state;
        uint64_t (*next_uint64)(void *st);
        uint32_t (*next_uint32)(void *st);
        double (*next_double)(void *st);
        uint64_t (*next_raw)(void *st);
    } nnlib_bitgen;
    typedef uint32_t (*nnlib_next32)(void *st);
    typedef uint64_t (*nnlib_next64)(void *st);
    /* random_interval (numpy/random/src/distributions): masked rejection */
    static inline uint64_t nnlib_interval(void *st, nnlib_next32 next32,
                                          nnlib_next64 next64, uint64_t hi) {
        uint64_t mask = hi, v;
        if (hi == 0) return 0;
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4;
        mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32;
        if (hi <= 0xffffffffULL) {
            while ((v = (next32(st) & mask)) > hi) {}
        } else {
            while ((v = (next64(st) & mask)) > hi) {}
        }
        return v;
    }
    /* o = 0, 1, ..., n-1 shuffled as Generator.shuffle does: Fisher-Yates from the
       last position down, one draw at a time through a bit generator's functions
       (generator_permutation) */
    static inline void nnlib_shuffled_range(void *st, nnlib_next32 next32,
                                            nnlib_next64 next64, int64_t *o,
                                            Py_ssize_t n) {
        Py_ssize_t i, j;
        int64_t t;
        for (i = 0; i < n; i++) o[i] = i;
        for (i = n - 1; i > 0; i--) {
            j = (Py_ssize_t)nnlib_interval(st, next32, next64, (uint64_t)i);
            t = o[i]; o[i] = o[j]; o[j] = t;
        }
    }
    /* PCG64's draws for a Fisher-Yates shuffle of SeedOrders, two passes per block of
       positions: the accepted indices first (a draw rejected by random_interval's masked
       test overwrites its slot and the position stays: no branch on the draw), then the
       swaps. The PCG64 outputs are made ahead in blocks of NNLIB_DRAWS, each with the state
       it leaves, so the generator is put back where the last draw taken leaves it. */
    #include "paths.h"      /* NN_SHUFFLE_DRAWS, NN_SHUFFLE_SWAPS (nnlib/_paths.py) */
    #define NNLIB_DRAWS NN_SHUFFLE_DRAWS
    #define NNLIB_SWAPS NN_SHUFFLE_SWAPS
    /* both sized on the stack: js[] 4 bytes a position, the made-ahead outputs 24 bytes
       a draw (a thread of Python's smallest stack, 32 KiB, runs a fit) */
    _Static_assert(NNLIB_SWAPS >= 1 && NNLIB_SWAPS <= 2048, "NN_SHUFFLE_SWAPS in 1..2048");
    _Static_assert(NNLIB_DRAWS >= 1 && NNLIB_DRAWS <= 256, "NN_SHUFFLE_DRAWS in 1..256");
    typedef struct {
        nnlib_pcg64 *r;
        uint32_t half[2 * NNLIB_DRAWS + 1];
        nnlib_u128 states[NNLIB_DRAWS + 1];
        int pos, len, first;
    } nnlib_pcg_draws;

    static inline void nnlib_pcg_fill(nnlib_pcg_draws *d, nnlib_u128 state) {
        nnlib_pcg64 g = *d->r;
        int k;
        g.state = state;
        d->states[0] = state;
        d->first = d->len = d->pos = 0;
        for (k = 0; k < NNLIB_DRAWS; k++) {
            uint64_t v = nnlib_pcg_next64(&g);
            d->states[k + 1] = g.state;
            d->half[d->len++] = (uint32_t)v;
            d->half[d->len++] = (uint32_t)(v >> 32);
        }
    }

    static void nnlib_pcg_shuffled_range(nnlib_pcg64 *r, int64_t *o, Py_ssize_t n) {
        Py_ssize_t i, j, top, stop;
        int64_t t;
        uint64_t v, mask;
        uint32_t js[NNLIB_SWAPS];
        nnlib_pcg_draws d;
        int used;
        for (i = 0; i < n; i++) o[i] = i;
        i = n - 1;
        for (; i > 0xffffffffLL; i--) {       /* 64-bit draws, as random_interval's */
            mask = ~(uint64_t)0 >> __builtin_clzll((uint64_t)i);
            while ((v = (nnlib_pcg_next64(r) & mask)) > (uint64_t)i) {}
            j = (Py_ssize_t)v; t = o[i]; o[i] = o[j]; o[j] = t;
        }
        if (i <= 0) return;
        d.r = r;
        nnlib_pcg_fill(&d, r->state);
        if (r->has32) {         /* first the half a 32-bit draw left buffered */
            memmove(d.half + 1, d.half, sizeof(uint32_t) * 2 * NNLIB_DRAWS);
            d.half[0] = r->half; d.first = 1; d.len++;
        }
        while (i > 0) {
            top = i;
            stop = i > NNLIB_SWAPS ? i - NNLIB_SWAPS : 0;
            while (i > stop) {
                uint32_t m = 0xffffffffu >> __builtin_clz((uint32_t)i);
                Py_ssize_t lo = (Py_ssize_t)(m >> 1) + 1;
                if (lo <= stop) lo = stop + 1;
                while (i >= lo) {
                    uint32_t w;
                    if (d.pos == d.len) nnlib_pcg_fill(&d, d.states[NNLIB_DRAWS]);
                    w = d.half[d.pos++] & m;
                    js[top - i] = w;
                    i -= (w <= (uint32_t)i);
                }
            }
            for (j = top; j > stop; j--) {
                Py_ssize_t k = js[top - j];
                t = o[j]; o[j] = o[k]; o[k] = t;
            }
        }
        used = d.pos - d.first;           /* fresh halves taken since the last fill */
        if (used == 0) {                  /* only the buffered half */
            r->has32 = 0;
            return;
        }
        r->state = d.states[(used + 1) / 2];
        r->has32 = used & 1;
        r->half = d.half[d.first + used - ((used & 1) ? 0 : 1)];
    }
    """
    ctypedef struct nnlib_pcg64:
        pass
    void nnlib_pcg_seed(nnlib_pcg64 *r, uint64_t s_hi, uint64_t s_lo,
                        uint64_t i_hi, uint64_t i_lo) noexcept nogil
    ctypedef uint32_t (*nnlib_next32)(void*) noexcept nogil
    ctypedef uint64_t (*nnlib_next64)(void*) noexcept nogil
    ctypedef struct nnlib_bitgen:
        void* state
        nnlib_next64 next_uint64
        nnlib_next32 next_uint32
    void nnlib_shuffled_range(void* st, nnlib_next32 next32, nnlib_next64 next64,
                              int64_t* o, Py_ssize_t n) noexcept nogil
    void nnlib_pcg_shuffled_range(nnlib_pcg64* r, int64_t* o, Py_ssize_t n) noexcept nogil

# SeedSequence's constants (numpy/random/bit_generator.pyx), typed uint32 in C so the
# products wrap modulo 2^32 as NumPy's uint32 arithmetic does
cdef extern from *:
    """
    #define NNLIB_INIT_A ((uint32_t)0x43b0d7e5u)
    #define NNLIB_MULT_A ((uint32_t)0x931e8875u)
    #define NNLIB_INIT_B ((uint32_t)0x8b51f9ddu)
    #define NNLIB_MULT_B ((uint32_t)0x58f38dedu)
    #define NNLIB_MIX_MULT_L ((uint32_t)0xca01f9ddu)
    #define NNLIB_MIX_MULT_R ((uint32_t)0x4973f715u)
    """
    const uint32_t INIT_A "NNLIB_INIT_A"
    const uint32_t MULT_A "NNLIB_MULT_A"
    const uint32_t INIT_B "NNLIB_INIT_B"
    const uint32_t MULT_B "NNLIB_MULT_B"
    const uint32_t MIX_MULT_L "NNLIB_MIX_MULT_L"
    const uint32_t MIX_MULT_R "NNLIB_MIX_MULT_R"

DEF XSHIFT = 16
DEF POOL_SIZE = 4


cdef inline uint32_t _hashmix(uint32_t value, uint32_t *h) noexcept nogil:
    value ^= h[0]
    h[0] *= MULT_A
    value *= h[0]
    return value ^ (value >> XSHIFT)


cdef inline uint32_t _mix(uint32_t x, uint32_t y) noexcept nogil:
    cdef uint32_t r = MIX_MULT_L * x - MIX_MULT_R * y
    return r ^ (r >> XSHIFT)


cdef class SeedOrders:
    """SeedOrders(seed)
    --

    ``np.random.default_rng(seed)``'s ``permutation``, one call per epoch.

    Parameters
    ----------
    seed : int >= 0

    Examples
    --------
    >>> import numpy as np
    >>> o, g = SeedOrders(3), np.random.default_rng(3)
    >>> [bool((o.permutation(n) == g.permutation(n)).all()) for n in (5, 9)]
    [True, True]
    """
    cdef nnlib_pcg64 rng

    def __cinit__(self, seed):
        cdef uint32_t pool[POOL_SIZE]
        cdef uint32_t w[8]
        cdef uint32_t h = INIT_A, v
        cdef Py_ssize_t i, i_src, i_dst, n_words
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"seed must be >= 0; got {seed}")
        words = [seed & 0xffffffff]              # little-endian words, [0] for 0
        seed >>= 32
        while seed:
            words.append(seed & 0xffffffff)
            seed >>= 32
        n_words = len(words)
        for i in range(POOL_SIZE):                 # SeedSequence.mix_entropy
            pool[i] = _hashmix(<uint32_t>words[i] if i < n_words else 0, &h)
        for i_src in range(POOL_SIZE):
            for i_dst in range(POOL_SIZE):
                if i_src != i_dst:
                    pool[i_dst] = _mix(pool[i_dst], _hashmix(pool[i_src], &h))
        for i_src in range(POOL_SIZE, n_words):
            for i_dst in range(POOL_SIZE):
                pool[i_dst] = _mix(pool[i_dst], _hashmix(<uint32_t>words[i_src], &h))
        h = INIT_B                                 # generate_state(4, uint64)
        for i in range(8):
            v = pool[i % POOL_SIZE] ^ h
            h *= MULT_B
            v *= h
            w[i] = v ^ (v >> XSHIFT)
        nnlib_pcg_seed(&self.rng, w[0] | (<uint64_t>w[1] << 32), w[2] | (<uint64_t>w[3] << 32),
                       w[4] | (<uint64_t>w[5] << 32), w[6] | (<uint64_t>w[7] << 32))

    def permutation(self, Py_ssize_t n):
        """Generator.permutation(n): Fisher-Yates from the last position down.

        Parameters
        ----------
        n : int >= 0

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        if n < 0:
            raise ValueError(f"n must be >= 0; got {n}")
        # its data pointer, not a typed memoryview (about 1 us a call: once per epoch)
        out = np.empty(n, dtype=np.int64)
        cdef int64_t* o = <int64_t*>cnp.PyArray_DATA(out)
        if keeps_gil(<double>n):        # as _shuffled_range (gil.pxd)
            nnlib_pcg_shuffled_range(&self.rng, o, n)
        else:
            with nogil:
                nnlib_pcg_shuffled_range(&self.rng, o, n)
        return out


cdef object _shuffled_range(void* state, nnlib_next32 next32, nnlib_next64 next64,
                            Py_ssize_t n):
    # filled here, not by np.arange (which lets the GIL go at any length), and with the
    # GIL kept below GIL_RELEASE_MIN rows: fit draws one order per epoch, and a brief
    # release per epoch of a fit that otherwise keeps the GIL starves a thread waiting
    # for it (gil.pxd)
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    if n == 0:
        return out
    if keeps_gil(<double>n):
        nnlib_shuffled_range(state, next32, next64, &o[0], n)
    else:
        with nogil:
            nnlib_shuffled_range(state, next32, next64, &o[0], n)
    return out


def generator_permutation(generator, Py_ssize_t n):
    """``generator.permutation(n)`` of a ``numpy.random.Generator`` on one of NumPy's
    bit generators (``nnlib._random.draws_in_library``): the same order from the same
    draws, the generator's state advanced as by its own call, but without letting the
    GIL go below ``GIL_RELEASE_MIN`` rows (NumPy's lets it go at any length).

    Parameters
    ----------
    generator : numpy.random.Generator
    n : int >= 0

    Returns
    -------
    ndarray of int64, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.random.default_rng(4), np.random.default_rng(4)
    >>> bool((generator_permutation(a, 9) == b.permutation(9)).all())
    True
    """
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    bit_generator = generator.bit_generator
    cdef nnlib_bitgen* g = <nnlib_bitgen*>PyCapsule_GetPointer(bit_generator.capsule,
                                                               "BitGenerator")
    with bit_generator.lock:        # as Generator.shuffle: one draw stream at a time
        return _shuffled_range(g.state, g.next_uint32, g.next_uint64, n)
