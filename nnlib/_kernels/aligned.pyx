# cython: language_level=3
"""Output arrays whose data starts on a cache line, made in C.

Design note
-----------
The elementwise kernels stream their inputs and outputs in 32- or 64-byte vectors.
NumPy's allocator promises 16 bytes, and a large array (glibc serves it by ``mmap``)
starts 16 bytes past a page, so a vector store straddles two cache lines once in every
few: the float32 relu vjp at 1e6 elements runs 168 us into a 64-byte-aligned output and
232 us 16 bytes off. ``empty_like`` here allocates ``CACHE_LINE`` bytes more than the
array needs and returns the aligned view of that buffer (its ``base``, kept alive by
it). It is written in C because the same steps in Python (``ndarray.ctypes.data``, a
slice, a view, a reshape) cost about 2 us, most of a call at 1e2 elements; here it
costs about what ``np.empty_like`` does. ``nnlib._aligned`` documents the policy and
holds the Python-level helpers.
"""
cimport numpy as cnp
from libc.stdint cimport uintptr_t

cnp.import_array()

cdef enum:
    _LINE = 64

CACHE_LINE = _LINE


def empty_like(cnp.ndarray x not None):
    """An uninitialized C-contiguous array of ``x``'s shape and (native) dtype whose data
    starts at a multiple of ``CACHE_LINE`` bytes.

    Parameters
    ----------
    x : ndarray of a native-byte-order numeric dtype (not None)

    Returns
    -------
    ndarray, writeable, C-contiguous; ``flags.owndata`` is False: its ``base`` is the
    one-dimensional uint8 buffer it lives in, which nothing else references.
    """
    cdef cnp.npy_intp nbytes = cnp.PyArray_NBYTES(x) + _LINE
    cdef cnp.ndarray buf = cnp.PyArray_EMPTY(1, &nbytes, cnp.NPY_UINT8, 0)
    cdef char* data = <char*>cnp.PyArray_DATA(buf)
    data += (_LINE - <uintptr_t>data % _LINE) % _LINE
    cdef cnp.ndarray out = cnp.PyArray_SimpleNewFromData(
        cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), cnp.PyArray_TYPE(x), data)
    cnp.set_array_base(out, buf)
    return out


def flat_float(object a, object dtype=None):
    """Whether ``a`` is an ndarray (not a subclass) that the compiled elementwise kernels
    read as it is: C-contiguous, aligned, float32 or float64 in native byte order, and of
    ``dtype`` (a NumPy dtype) unless that is None. One C call: the same tests through
    ``ndarray.flags`` and ``dtype`` comparisons cost about 0.7 us, a quarter of a kernel
    call at 1e2 elements.

    Examples
    --------
    >>> import numpy as np
    >>> flat_float(np.ones(3)), flat_float(np.ones((3, 2))[:, 0]), flat_float(np.ones(3, int))
    (True, False, False)
    >>> flat_float(np.ones(3, np.float32), np.dtype(np.float64))
    False
    """
    if type(a) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        return False
    if not (cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISALIGNED(arr)):
        return False
    return dtype is None or (<cnp.dtype?>dtype).type_num == t


def int64_copy(object a, Py_ssize_t n):
    """A new C-contiguous array holding a copy of ``a`` when ``a`` is an ndarray (not a
    subclass) of int64 in native byte order and shape ``(n,)``; None otherwise. One C call
    for the common case of class labels, which the losses copy before checking them
    (``nnlib._labels``): ``np.asarray``, the dtype and shape tests and
    ``np.array(copy=True)`` cost about 1.5 us.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(4)
    >>> c = int64_copy(y, 4)
    >>> c.tolist(), c is y, c.flags.owndata, int64_copy(y, 3), int64_copy([0, 1], 2)
    ([0, 1, 2, 3], False, True, None, None)
    """
    if type(a) is not cnp.ndarray:
        return None
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (cnp.PyArray_NDIM(arr) != 1 or cnp.PyArray_DIMS(arr)[0] != n
            or not cnp.PyArray_ISINTEGER(arr) or not cnp.PyArray_ISSIGNED(arr)
            or cnp.PyArray_ITEMSIZE(arr) != 8 or not cnp.PyArray_ISNOTSWAPPED(arr)):
        return None
    return cnp.PyArray_NewCopy(arr, cnp.NPY_CORDER)
