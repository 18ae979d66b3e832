# cython: language_level=3
"""Elementwise activations and their vector-Jacobian products: layer 2.

Design note
-----------
The scalar math lives in ``scalar.pxd`` (layer 1). Here each kernel is one loop over a
flat, C-contiguous buffer, written for the fused ``floating`` type (float32 and float64
from one source), with the GIL released and the loop split over ``n_threads`` OpenMP
threads by ``prange(schedule='static')``. Kernels allocate nothing: the caller (layer 3,
``nnlib/functional/activations.py``) validates, allocates ``out`` and picks ``n_threads``.

The activation ``kind`` is tested inside the loop; the switch is loop-invariant, so the
compiler unswitches it (-O3) and the cheap cases (identity, relu, leaky_relu) vectorize.

Any shape is handled by the wrapper passing ``ravel()``ed views: an elementwise map does
not care about the shape.
"""
from cython.parallel cimport prange
from cython cimport floating

from nnlib._kernels.scalar cimport act_scalar, act_grad_x


def activation_forward(int kind, const floating[::1] x, floating[::1] out,
                       double param, int n_threads):
    """out[i] = act(x[i]) for i < len(x)."""
    cdef Py_ssize_t i, n = x.shape[0]
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            out[i] = <floating>act_scalar(kind, x[i], param)


def activation_vjp(int kind, const floating[::1] x, const floating[::1] grad_out,
                   floating[::1] out, double param, int n_threads):
    """out[i] = act'(x[i]) * grad_out[i]: the gradient of sum(grad_out * act(x))."""
    cdef Py_ssize_t i, n = x.shape[0]
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            out[i] = <floating>(act_grad_x(kind, x[i], param) * grad_out[i])
