# cython: language_level=3
"""The checks an entry point makes of the ndarrays whose data pointers its loops read.

Design note
-----------
The entry points of the elementwise and row-wise kernels (activations, output maps,
losses, dropout) take ``cnp.ndarray`` and read data pointers, not typed memoryviews of the
fused ``floating`` type: the memoryviews' signature dispatch and buffer acquisitions cost
~3 us a call, PyTorch's whole call at 1e2 elements. Each array is checked here, in C,
before a loop reads it: what the memoryviews checked (float32 or float64, C-contiguous,
one dtype across the arrays, writeable outputs) plus native byte order and alignment (the
loops read whole floats; a memoryview let an unaligned array through). The module that
cimports these calls ``cnp.import_array()``.
"""
cimport numpy as cnp


cdef inline int check_flat_float(cnp.ndarray a, str what, str fn, int typenum,
                                 Py_ssize_t n, bint writeable) except -1:
    """``a``'s type number after checking it is a C-contiguous, aligned float32 or
    float64 array in native byte order (of type ``typenum`` and ``n`` elements when
    they are not -1; writeable if asked): the loops read it flat through its data
    pointer, whatever its shape."""
    cdef int t = cnp.PyArray_TYPE(a)
    if ((t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or not cnp.PyArray_ISNOTSWAPPED(a)
            or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a)):
        raise TypeError(f"{fn}: {what} must be a C-contiguous, aligned float32 or float64 "
                        f"array in native byte order; got {a.dtype} with flags "
                        f"c_contiguous={a.flags.c_contiguous}, aligned={a.flags.aligned}")
    if typenum != -1 and t != typenum:
        raise TypeError(f"{fn}: {what} must have the dtype of the first array; got "
                        f"{a.dtype}")
    if n != -1 and cnp.PyArray_SIZE(a) != n:
        raise ValueError(f"{fn}: the arrays must have the same length; got {n} and "
                         f"{cnp.PyArray_SIZE(a)} ({what})")
    if writeable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{fn}: {what} is read-only")
    return t


cdef inline int check_flat_int64(cnp.ndarray a, str what, str fn) except -1:
    """Check ``a`` is a C-contiguous, aligned int64 array in native byte order (read flat
    through its data pointer)."""
    if (not cnp.PyArray_ISINTEGER(a) or not cnp.PyArray_ISSIGNED(a)
            or cnp.PyArray_ITEMSIZE(a) != 8 or not cnp.PyArray_ISNOTSWAPPED(a)
            or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a)):
        raise TypeError(f"{fn}: {what} must be a C-contiguous, aligned int64 array in "
                        f"native byte order; got {a.dtype} with flags "
                        f"c_contiguous={a.flags.c_contiguous}, aligned={a.flags.aligned}")
    return 0


cdef inline bint same_shape(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether ``a`` and ``b`` have the same shape."""
    cdef int k, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd:
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(a)[k] != cnp.PyArray_DIMS(b)[k]:
            return False
    return True
