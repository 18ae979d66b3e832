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

The copies the losses read are made here too: class labels, binary labels and float
targets are copied and checked in one C call (``class_labels_copy``,
``binary_labels_copy``, ``float_target_copy``), for the common case of an ndarray in
native byte order. The compiled loops read them with the GIL released, so they must be
arrays nnlib owns, checked after the copy; ``np.asarray``, the dtype and shape tests,
the copy and NumPy's comparisons cost 2-8 us, most of a loss at 1e2 elements. Anything
else (a list, a byte-swapped array, a bad value) gets None, and ``nnlib._labels`` and
``nnlib.functional.losses`` take their Python path, which raises the errors that name the
first bad index and value.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY, floor
from libc.string cimport memmove
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t, uintptr_t)

from nnlib._kernels.buffers cimport same_shape
from nnlib._kernels.gil cimport keeps_gil

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

    Raises
    ------
    TypeError
        ``dtype`` is neither None nor a ``numpy.dtype`` (a scalar type such as
        ``np.float32`` is not one: pass ``np.dtype(np.float32)``).
    """
    if dtype is not None and not isinstance(dtype, cnp.dtype):
        raise TypeError(f"flat_float: dtype must be a numpy.dtype (such as x.dtype or "
                        f"np.dtype(np.float32)) or None; got {dtype!r} of type "
                        f"{type(dtype).__name__}")
    if type(a) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        return False
    if not (cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISALIGNED(arr)):
        return False
    return dtype is None or (<cnp.dtype>dtype).type_num == t


# --- the copies the losses read: made and checked in one C call ------------------------

# the element types of the labels read here (bool is read as uint8_t)
ctypedef fused number_t:
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t
    uint64_t
    float
    double


# the float targets' types (a second fused type: the source's and the copy's vary apart)
ctypedef fused real_t:
    float
    double


cdef enum _Source:
    _NONE = -1
    _I8, _I16, _I32, _I64, _U8, _U16, _U32, _U64, _F32, _F64


cdef _Source _source(cnp.ndarray a) noexcept:
    # the element type of an aligned, native-byte-order bool, integer or float32/float64
    # array; _NONE for anything else (float16, long double, complex, objects, strings)
    if not (cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISNOTSWAPPED(a)):
        return _NONE
    cdef int size = cnp.PyArray_ITEMSIZE(a)
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT:
        return _F32
    if t == cnp.NPY_DOUBLE:
        return _F64
    if cnp.PyArray_ISBOOL(a):
        return _U8
    if cnp.PyArray_ISSIGNED(a):
        return (_I8 if size == 1 else _I16 if size == 2 else _I32 if size == 4
                else _I64 if size == 8 else _NONE)
    if cnp.PyArray_ISUNSIGNED(a):
        return (_U8 if size == 1 else _U16 if size == 2 else _U32 if size == 4
                else _U64 if size == 8 else _NONE)
    return _NONE


cdef inline bint _is_class(number_t v, long long n_classes) noexcept nogil:
    # (& rather than ``and``: no branch, so the loops calling it vectorize)
    if number_t is float or number_t is double:
        # NaN and inf fail a comparison; 2.5 is not its floor
        return (v >= 0) & (<double>v < <double>n_classes) & (v == floor(v))
    elif (number_t is uint8_t or number_t is uint16_t or number_t is uint32_t
          or number_t is uint64_t):
        return v < <uint64_t>n_classes
    else:
        return (v >= 0) & (v < n_classes)


cdef Py_ssize_t _labels(const char* y, Py_ssize_t stride, Py_ssize_t n,
                        long long n_classes, long long* classes, floating* binary,
                        number_t kind) noexcept nogil:
    # With ``classes``: classes[i] = y[i] (every ``stride`` bytes) while it is a class
    # index in [0, n_classes); else binary[i] = y[i] while it is 0 or 1 (compared in its
    # own type, before the cast: 1 + 1e-10 is not a label). Returns the index of the
    # first label that is not, or -1. ``kind``: a dummy of the element type.
    # Contiguous labels first go through a loop with no exit, which GCC vectorizes: each
    # label is read once, and only a label that is not one sends the array through the
    # loop below, which stops at it. Float class labels skip that loop: their cast to
    # int64 has no AVX2 instruction, and unvectorized it costs more than the one below.
    cdef Py_ssize_t i
    cdef number_t v
    cdef const number_t* yc = <const number_t*>y
    cdef bint ok
    cdef int bad = 0
    cdef bint float_classes = (classes != NULL
                               and (number_t is float or number_t is double))
    if stride == sizeof(number_t) and not float_classes:
        if classes != NULL:
            for i in range(n):
                v = yc[i]
                ok = _is_class(v, n_classes)
                bad |= not ok
                classes[i] = <long long>(v if ok else 0)    # (no cast of a NaN or 1e30)
        else:
            for i in range(n):
                v = yc[i]
                bad |= (v != 0) & (v != 1)
                binary[i] = <floating>v
        if not bad:
            return -1
    for i in range(n):
        v = (<const number_t*>(y + i * stride))[0]
        if classes != NULL:
            if not _is_class(v, n_classes):
                return i
            classes[i] = <long long>v
        else:
            if not (v == 0 or v == 1):
                return i
            binary[i] = <floating>v
    return -1


cdef Py_ssize_t _labels_of(_Source s, const char* y, Py_ssize_t stride, Py_ssize_t n,
                           long long c, long long* classes,
                           floating* binary) noexcept nogil:
    if s == _I8:
        return _labels(y, stride, n, c, classes, binary, <int8_t>0)
    if s == _I16:
        return _labels(y, stride, n, c, classes, binary, <int16_t>0)
    if s == _I32:
        return _labels(y, stride, n, c, classes, binary, <int32_t>0)
    if s == _I64:
        return _labels(y, stride, n, c, classes, binary, <int64_t>0)
    if s == _U8:
        return _labels(y, stride, n, c, classes, binary, <uint8_t>0)
    if s == _U16:
        return _labels(y, stride, n, c, classes, binary, <uint16_t>0)
    if s == _U32:
        return _labels(y, stride, n, c, classes, binary, <uint32_t>0)
    if s == _U64:
        return _labels(y, stride, n, c, classes, binary, <uint64_t>0)
    if s == _F32:
        return _labels(y, stride, n, c, classes, binary, <float>0)
    return _labels(y, stride, n, c, classes, binary, <double>0)


def class_labels_copy(object a, Py_ssize_t n, Py_ssize_t n_classes):
    """A new C-contiguous int64 array of shape ``(n,)`` holding ``a``'s labels when
    ``a`` is an ndarray (not a subclass) of shape ``(n,)``, aligned, in native byte
    order, of bools, integers or float32/float64 with integral values, every label in
    ``[0, n_classes)``; None otherwise (the caller's checks then name what is wrong).

    One C call for class labels, which the losses copy before checking them
    (``nnlib._labels.check_class_labels``): the checks run on the copy, so a caller that
    changes ``a`` afterwards cannot make a compiled loop index out of bounds.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(4)
    >>> c = class_labels_copy(y, 4, 4)
    >>> c.tolist(), c is y, c.flags.owndata, class_labels_copy(y, 3, 4)
    ([0, 1, 2, 3], False, True, None)
    >>> class_labels_copy(np.array([1.0, 0.0]), 2, 2), class_labels_copy(y, 4, 3)
    (array([1, 0]), None)
    """
    if type(a) is not cnp.ndarray or n_classes <= 0:
        return None
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_NDIM(arr) != 1 or cnp.PyArray_DIMS(arr)[0] != n:
        return None
    cdef _Source s = _source(arr)
    if s == _NONE:
        return None
    cdef cnp.npy_intp length = n
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &length, cnp.NPY_INT64, 0)
    cdef const char* y = <const char*>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t stride = cnp.PyArray_STRIDES(arr)[0], bad
    cdef long long* o = <long long*>cnp.PyArray_DATA(out)
    if keeps_gil(n):
        bad = _labels_of(s, y, stride, n, n_classes, o, <double*>NULL)
    else:
        with nogil:
            bad = _labels_of(s, y, stride, n, n_classes, o, <double*>NULL)
    return out if bad < 0 else None


def binary_labels_copy(object a, Py_ssize_t n, object dtype):
    """A new C-contiguous array of ``dtype`` (a ``numpy.dtype``, float32 or float64)
    and shape ``(n,)`` holding ``a``'s labels when ``a`` is an ndarray (not a subclass)
    of shape ``(n,)`` or ``(n, 1)``, aligned, in native byte order, of bools, integers or
    float32/float64, every label 0 or 1; None otherwise (``nnlib._labels.
    check_binary_labels`` then names what is wrong). The labels are compared in their
    own type, then cast.

    Examples
    --------
    >>> import numpy as np
    >>> f4 = np.dtype(np.float32)
    >>> binary_labels_copy(np.array([[1], [0]]), 2, f4), binary_labels_copy([1, 0], 2, f4)
    (array([1., 0.], dtype=float32), None)
    >>> binary_labels_copy(np.array([1, 2]), 2, f4) is None
    True
    """
    if type(a) is not cnp.ndarray or not isinstance(dtype, cnp.dtype):
        return None
    cdef int t = (<cnp.dtype>dtype).type_num
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        return None
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int nd = cnp.PyArray_NDIM(arr)
    if not (cnp.PyArray_DIMS(arr)[0] == n if nd == 1 else
            nd == 2 and cnp.PyArray_DIMS(arr)[0] == n and cnp.PyArray_DIMS(arr)[1] == 1):
        return None
    cdef _Source s = _source(arr)
    if s == _NONE:
        return None
    cdef cnp.npy_intp length = n
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &length, t, 0)
    cdef const char* y = <const char*>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t stride = cnp.PyArray_STRIDES(arr)[0], bad
    cdef void* o = cnp.PyArray_DATA(out)
    if keeps_gil(n):
        bad = _binary_labels_to(t, s, y, stride, n, o)
    else:
        with nogil:
            bad = _binary_labels_to(t, s, y, stride, n, o)
    return out if bad < 0 else None


cdef Py_ssize_t _binary_labels_to(int t, _Source s, const char* y, Py_ssize_t stride,
                                  Py_ssize_t n, void* out) noexcept nogil:
    if t == cnp.NPY_FLOAT:
        return _labels_of(s, y, stride, n, 0, NULL, <float*>out)
    return _labels_of(s, y, stride, n, 0, NULL, <double*>out)


cdef bint _target_copy(const real_t* y, floating* out, Py_ssize_t n,
                       bint nonnegative) noexcept nogil:
    # out = y cast to the scores' type; whether every cast value is finite (and >= 0 if
    # asked). No early exit, so the loop vectorizes: v - v is 0 for a finite v, NaN for
    # inf and NaN.
    cdef Py_ssize_t i
    cdef floating v
    cdef floating low = 0 if nonnegative else -INFINITY
    cdef int bad = 0
    for i in range(n):
        v = <floating>y[i]
        out[i] = v
        bad |= (v - v != 0) | (v < low)
    return not bad


def float_target_copy(object a, cnp.ndarray z not None, bint nonnegative):
    """A new C-contiguous copy of ``a`` in ``z``'s dtype (float32 or float64) when ``a``
    is an ndarray (not a subclass) of float32 or float64, C-contiguous, aligned, in
    native byte order, of ``z``'s shape (or ``(n,)`` or ``(n, 1)`` for a ``z`` of one
    column or ``(n,)``), every value finite after the cast (and >= 0 with
    ``nonnegative``); None otherwise (``nnlib.functional.losses`` then names what is
    wrong): the targets of squared error and the Poisson loss.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((2, 1), np.float32)
    >>> float_target_copy(np.array([1.5, 2.0]), z, True)
    array([1.5, 2. ], dtype=float32)
    >>> float_target_copy(np.array([1.5, -2.0]), z, True) is None
    True
    >>> float_target_copy(np.array([1.5, -2.0]), z, False)
    array([ 1.5, -2. ], dtype=float32)
    """
    cdef int t = cnp.PyArray_TYPE(z)
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        raise TypeError(f"float_target_copy: z must be float32 or float64; got {z.dtype}")
    if type(a) is not cnp.ndarray:
        return None
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int s = cnp.PyArray_TYPE(arr), nd = cnp.PyArray_NDIM(arr)
    if ((s != cnp.NPY_FLOAT and s != cnp.NPY_DOUBLE) or not cnp.PyArray_ISNOTSWAPPED(arr)
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr)):
        return None
    cdef Py_ssize_t rows = cnp.PyArray_DIMS(z)[0] if cnp.PyArray_NDIM(z) else -1
    cdef bint one_column = (cnp.PyArray_NDIM(z) == 1
                            or cnp.PyArray_NDIM(z) == 2 and cnp.PyArray_DIMS(z)[1] == 1)
    if not (same_shape(arr, z) or one_column and (
            nd == 1 or nd == 2 and cnp.PyArray_DIMS(arr)[1] == 1)
            and cnp.PyArray_DIMS(arr)[0] == rows):
        return None
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(arr), t, 0)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(arr)
    cdef const void* y = cnp.PyArray_DATA(arr)
    cdef void* o = cnp.PyArray_DATA(out)
    cdef bint ok
    if keeps_gil(n):
        ok = _target_copy_to(t, s, y, o, n, nonnegative)
    else:
        with nogil:
            ok = _target_copy_to(t, s, y, o, n, nonnegative)
    return out if ok else None


cdef bint _target_copy_to(int t, int s, const void* y, void* out, Py_ssize_t n,
                          bint nonnegative) noexcept nogil:
    if t == cnp.NPY_FLOAT:
        if s == cnp.NPY_FLOAT:
            return _target_copy(<const float*>y, <float*>out, n, nonnegative)
        return _target_copy(<const double*>y, <float*>out, n, nonnegative)
    if s == cnp.NPY_FLOAT:
        return _target_copy(<const float*>y, <double*>out, n, nonnegative)
    return _target_copy(<const double*>y, <double*>out, n, nonnegative)


def copy_arrays(dst, src):
    """``np.copyto(d, s)`` for each pair of the lists ``dst`` and ``src`` (a pair of two
    None is skipped), in one C call: a training epoch snapshots its weights and optimizer
    states on every call, and ``np.copyto`` costs about 0.6 us an array.

    Every pair is checked before anything is copied: ndarrays (subclasses too: only
    their memory is read and written) of one shape and one native dtype, both C-contiguous, ``d`` writeable; else ValueError and
    no array changes. The bytes are copied as they are (NaN payloads, -0.0).

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.zeros((2, 3)), np.zeros(3)
    >>> copy_arrays([a, None, b], [np.ones((2, 3)), None, np.arange(3.0)])
    >>> a.sum(), b
    (6.0, array([0., 1., 2.]))
    """
    if type(dst) is not list or type(src) is not list or len(dst) != len(src):
        raise ValueError("copy_arrays: dst and src must be lists of one length")
    # tuples of the arrays, read from here on: they hold each array while the GIL is let
    # go, whatever another thread does to the lists meanwhile
    cdef tuple ds = tuple(dst), ss = tuple(src)
    cdef Py_ssize_t i, k = 0, n = len(ds)
    cdef double values = 0
    for i in range(n):
        d, s = ds[i], ss[i]
        if d is None and s is None:
            continue
        if not _copyable(d, s):
            raise ValueError(f"copy_arrays: pair {i} is not two C-contiguous ndarrays of "
                             f"one shape and native dtype (the first writeable)")
        values += cnp.PyArray_SIZE(<cnp.ndarray>s)
    # the pairs' pointers and sizes, so that a long copy lets the GIL go once (as
    # np.copyto lets it go for a large array: gil.pxd)
    cdef cnp.npy_intp* p = <cnp.npy_intp*>PyMem_Malloc(3 * n * sizeof(cnp.npy_intp) + 1)
    if p == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            d, s = ds[i], ss[i]
            if d is not None:
                p[k] = <cnp.npy_intp>cnp.PyArray_DATA(<cnp.ndarray>d)
                p[k + 1] = <cnp.npy_intp>cnp.PyArray_DATA(<cnp.ndarray>s)
                p[k + 2] = cnp.PyArray_NBYTES(<cnp.ndarray>s)
                k += 3
        if keeps_gil(values):
            _copy_spans(p, k)
        else:
            with nogil:
                _copy_spans(p, k)
    finally:
        PyMem_Free(p)


cdef void _copy_spans(const cnp.npy_intp* p, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(0, k, 3):
        memmove(<void*>p[i], <const void*>p[i + 1], <size_t>p[i + 2])


cdef bint _copyable(object d, object s) except -1:
    if not (cnp.PyArray_Check(d) and cnp.PyArray_Check(s)):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>d, b = <cnp.ndarray>s
    return (cnp.PyArray_TYPE(a) == cnp.PyArray_TYPE(b)
            and cnp.PyArray_ITEMSIZE(a) == cnp.PyArray_ITEMSIZE(b)
            and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISNOTSWAPPED(b)
            and same_shape(a, b)
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_C_CONTIGUOUS(b)
            and cnp.PyArray_ISWRITEABLE(a))
