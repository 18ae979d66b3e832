"""The arrays the functional wrappers hand to the compiled kernels (layer 3).

The kernels read their arrays flat through data pointers (``nnlib/_kernels/buffers.pxd``):
C-contiguous, aligned, float32 or float64 in native byte order. On 1e2 elements the
call overhead is most of a kernel's time, so an array that already is one goes through
a single C test (``nnlib._kernels.aligned.flat_float``) instead of the general checks.
"""
from nnlib._kernels.aligned import flat_float
from nnlib._validation import as_float_array, as_float_rows


def as_kernel_array(a, name, dtype=None):
    """``as_float_array(a, name, dtype)``, returning an array the kernels read as it is
    (``flat_float``: C-contiguous, aligned, float32/float64, of ``dtype``) without the
    general checks. An unaligned array (a view at an odd offset of a buffer) is copied:
    the compiled loops read whole floats."""
    if flat_float(a, dtype):
        return a
    a = as_float_array(a, name, dtype=dtype)
    return a if a.flags.aligned else a.copy()


def as_kernel_rows(x, name):
    """``as_float_rows(x, name)`` (at least one dimension, a non-empty last axis: the
    rows of a row-wise kernel), as ``as_kernel_array`` returns arrays."""
    if flat_float(x) and x.ndim and x.shape[-1]:
        return x
    x = as_float_rows(x, name)
    return x if x.flags.aligned else x.copy()
