"""NumPy twin of ``nnlib._kernels.shuffle``: NumPy's ``default_rng(seed).permutation(n)``
written out step by step (SeedSequence, PCG64, ``random_interval``, Fisher-Yates).

Plain Python integers masked to 32, 64 and 128 bits; slow, and the readable statement of
what the compiled ``SeedOrders`` reproduces bit for bit.
"""
import numpy as np

__all__ = ["SeedOrders", "generator_permutation"]

_M32, _M64, _M128 = (1 << 32) - 1, (1 << 64) - 1, (1 << 128) - 1
# numpy/random/bit_generator.pyx (SeedSequence, after Melissa O'Neill's seed_seq_fe)
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43b0d7e5, 0x931e8875, 0x8b51f9dd, 0x58f38ded
_MIX_MULT_L, _MIX_MULT_R, _XSHIFT, _POOL_SIZE = 0xca01f9dd, 0x4973f715, 16, 4
# numpy/random/src/pcg64/pcg64.h: PCG_DEFAULT_MULTIPLIER_128
_PCG_MULT = (0x2360ED051FC65DA4 << 64) | 0x4385DF649FCCF645


def _seed_words(seed):
    """The seed as little-endian 32-bit words (``[0]`` for 0), as SeedSequence reads it."""
    words = [seed & _M32]
    seed >>= 32
    while seed:
        words.append(seed & _M32)
        seed >>= 32
    return words


def _pool(words):
    """SeedSequence.mix_entropy: the four-word pool an int seed stirs into."""
    h = [_INIT_A]

    def hashmix(value):
        value = (value ^ h[0]) & _M32
        h[0] = (h[0] * _MULT_A) & _M32
        value = (value * h[0]) & _M32
        return value ^ (value >> _XSHIFT)

    def mix(x, y):
        r = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _M32
        return r ^ (r >> _XSHIFT)

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(_POOL_SIZE)]
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for i_src in range(_POOL_SIZE, len(words)):
        for i_dst in range(_POOL_SIZE):
            pool[i_dst] = mix(pool[i_dst], hashmix(words[i_src]))
    return pool


def _state_words(pool):
    """SeedSequence.generate_state(4, uint64) as eight 32-bit words."""
    h, out = _INIT_B, []
    for i in range(8):
        v = (pool[i % _POOL_SIZE] ^ h) & _M32
        h = (h * _MULT_B) & _M32
        v = (v * h) & _M32
        out.append(v ^ (v >> _XSHIFT))
    return out


class SeedOrders:
    """``np.random.default_rng(seed)``'s ``permutation``, one call per epoch.

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

    def __init__(self, seed):
        w = _state_words(_pool(_seed_words(int(seed))))
        u = [w[2 * i] | (w[2 * i + 1] << 32) for i in range(4)]   # four uint64, LE
        initstate, initseq = (u[0] << 64) | u[1], (u[2] << 64) | u[3]
        self._inc = ((initseq << 1) | 1) & _M128
        self._state = 0
        self._step()
        self._state = (self._state + initstate) & _M128
        self._step()
        self._has32, self._half = False, 0

    def _step(self):
        self._state = (self._state * _PCG_MULT + self._inc) & _M128

    def _next64(self):
        self._step()                                             # XSL-RR output
        s = self._state
        x, rot = ((s >> 64) ^ s) & _M64, s >> 122
        return ((x >> rot) | (x << ((-rot) & 63))) & _M64

    def _next32(self):
        if self._has32:
            self._has32 = False
            return self._half
        v = self._next64()
        self._has32, self._half = True, v >> 32
        return v & _M32

    def _interval(self, hi):
        """random_interval: uniform in [0, hi] by masked rejection."""
        if hi == 0:
            return 0
        mask = (1 << hi.bit_length()) - 1
        draw = self._next32 if hi <= _M32 else self._next64
        while True:
            v = draw() & mask
            if v <= hi:
                return v

    def permutation(self, n):
        """Generator.permutation(n): Fisher-Yates from the last position down.

        Parameters
        ----------
        n : int >= 0

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        out = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self._interval(i)
            out[i], out[j] = out[j], out[i]
        return np.array(out, dtype=np.int64)


def generator_permutation(generator, n):
    """Twin of the compiled ``generator_permutation``: NumPy's own ``permutation`` of the
    generator (the compiled one runs its algorithm on the generator's bit generator,
    keeping the GIL for short orders)."""
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    return generator.permutation(n).astype(np.int64, copy=False)
