"""Arrays whose data starts on a cache line: the layers' weights and biases.

The compiled kernels read a weight matrix a row at a time in 64-byte vectors. NumPy's
allocator only promises 16 bytes, so the same model trained at different speeds
depending on where its arrays happened to land: the float32 batch-1 digits epoch (W0
rows of 400 bytes) measured 1.41 ms with W0 at a multiple of 64 or 32 bytes and 1.49 ms
at 16 or 48. The parameters nnlib allocates (Dense's, the MLP estimators' initial and
early-stopping weights) start at a multiple of 64, so a fresh model's speed does not
depend on the allocator's draw. Arrays made elsewhere keep the address they have: a
copy by pickle or ``copy.deepcopy``, L-BFGS's views of one flat buffer, a user's array
assigned to ``layer.W`` (values are the same either way; only the speed can differ).

The outputs of ``nnlib.functional``'s elementwise kernels (activations, their vjps, the
output maps, dropout and its vjp) start on a cache line too: ``nnlib._kernels.aligned.empty_like`` makes them
in C, as cheaply as ``np.empty_like`` (the Python helpers here cost about 2 us a call,
most of a kernel call at 1e2 elements). Like the arrays here, they are views of a buffer
they keep alive (``flags.owndata`` is False, ``base`` is the buffer).
"""
import math
import operator

import numpy as np

CACHE_LINE = 64


def aligned_zeros(shape, dtype) -> np.ndarray:
    """Zeros of ``shape`` and ``dtype``, C-contiguous, the data at a multiple of
    ``CACHE_LINE`` bytes; a view into a slightly larger buffer that it keeps alive.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : numpy dtype

    Returns
    -------
    ndarray of ``shape``, writeable, owning no memory of its own (``.base`` is the
    buffer)

    Examples
    --------
    >>> a = aligned_zeros((3, 5), np.float32)
    >>> a.shape, a.dtype, a.ctypes.data % CACHE_LINE, float(a.sum())
    ((3, 5), dtype('float32'), 0, 0.0)
    """
    dtype = np.dtype(dtype)
    try:                            # an integer of any kind (a 0-d array too), as np.zeros
        dims = (operator.index(shape),)
    except TypeError:
        dims = tuple(shape)
    # math.prod of Python ints: exact at any size (np.prod's int64 wraps), and ~8 us less
    # a call than np.prod, most of a small layer's allocation
    n = math.prod(map(operator.index, dims)) * dtype.itemsize
    buf = np.zeros(n + CACHE_LINE, dtype=np.uint8)
    start = (-buf.ctypes.data) % CACHE_LINE
    return buf[start:start + n].view(dtype).reshape(dims)


def aligned_copy(a, dtype=None) -> np.ndarray:
    """``a`` (array_like) copied into an ``aligned_zeros`` array (of ``dtype``, default
    ``a``'s).

    Examples
    --------
    >>> b = aligned_copy(np.arange(6.0).reshape(2, 3), np.float32)
    >>> b.ctypes.data % CACHE_LINE, b.tolist()
    (0, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    """
    a = np.asarray(a)
    out = aligned_zeros(a.shape, a.dtype if dtype is None else dtype)
    out[...] = a
    return out
