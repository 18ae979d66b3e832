# cython: language_level=3
"""Dense layer forward and backward over whole batches: layer 2.

Design note
-----------
The math and the small-vs-BLAS product choice live in ``dense.pxd`` (shared with the
compiled training loop). These entry points take validated, C-contiguous arrays and
output buffers from the Python wrapper (``nnlib/functional/dense.py``), release the GIL
and allocate nothing. ``nnlib._kernels.blas.load()`` must have been called first (the
wrapper does it).
"""
from cython cimport floating

from nnlib._kernels.dense cimport mm, bias_act, act_backward


def dense_forward(const floating[:, ::1] X, const floating[:, ::1] W,
                  const floating[::1] b, floating[:, ::1] H, int kind, double param,
                  int n_threads):
    """H = act(X @ W + b); X (n, n_in), W (n_in, n_out), b (n_out,), H (n, n_out)."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
    if n == 0 or n_out == 0:
        return
    with nogil:
        if n_in == 0:
            mm(False, False, n, n_out, 0, 1.0, &H[0, 0], 1, &H[0, 0], 1, 0.0,
               &H[0, 0], n_out)
        else:
            mm(False, False, n, n_out, n_in, 1.0, &X[0, 0], n_in, &W[0, 0], n_out, 0.0,
               &H[0, 0], n_out)
        bias_act(&H[0, 0], &b[0], n, n_out, kind, param, n_threads)


def dense_backward(const floating[:, ::1] X, const floating[:, ::1] W,
                   const floating[:, ::1] H, const floating[:, ::1] grad_H,
                   floating[:, ::1] dZ, floating[:, ::1] dX, floating[:, ::1] dW,
                   floating[::1] db, double[::1] work, int kind, double param):
    """dZ = grad_H * act'(H); dW = X^T dZ; db = sum_rows dZ; dX = dZ W^T.

    Shapes: X, dX (n, n_in); W, dW (n_in, n_out); H, grad_H, dZ (n, n_out);
    db (n_out,); work (n_out,) float64 scratch."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
    if n_out == 0:
        dX[:, :] = 0
        return
    if n == 0:
        dW[:, :] = 0
        db[:] = 0
        return
    with nogil:
        act_backward(&H[0, 0], &grad_H[0, 0], &dZ[0, 0], &db[0], &work[0], n, n_out,
                     kind, param, 1)
        if n_in > 0:
            mm(True, False, n_in, n_out, n, 1.0, &X[0, 0], n_in, &dZ[0, 0], n_out, 0.0,
               &dW[0, 0], n_out)
            mm(False, True, n, n_in, n_out, 1.0, &dZ[0, 0], n_out, &W[0, 0], n_out, 0.0,
               &dX[0, 0], n_in)
