"""Losses over a batch and the gradients of their mean (compiled).

Every loss comes as a pair:

``name(z, y, ...)``       the MEAN over the ``n`` samples of the per-sample loss, a Python
                          float (accumulated in double whatever the dtype);
``name_grad(z, y, ...)``  the gradient of that mean with respect to ``z``: an array of the
                          shape and dtype of ``z`` (each row is the per-sample gradient / n).

Parameters shared by every function here:

z : array_like, shape (n, c)
    Scores (the output layer's pre-activations), n >= 1 samples, c >= 1 columns. float32
    and float64 are kept as given, integers and bools become float64. NaN in a row gives
    NaN for that sample (so the mean is NaN).
y : array_like
    Targets, validated before any compiled code runs: class indices ``(n,)`` in
    ``[0, c)`` for ``softmax_cross_entropy``, ``sparsemax_loss`` and ``hinge_loss``
    (integers, bools, or floats with integral values; anything else raises
    :class:`~nnlib.LabelError` naming the first bad index and value); a float array of
    ``z``'s shape for ``squared_error``; labels in {0, 1} for ``logistic_loss``;
    non-negative counts or rates of ``z``'s shape for ``poisson_loss``. Float targets are
    cast to ``z``'s dtype.
n_threads : int or None
    OpenMP threads over samples; None uses all cores for 2**15 elements or more. Samples
    are independent and the mean is summed in a fixed order, so the result is bitwise the
    same for any ``n_threads``.

``loss_and_grad(loss, z, y)`` returns both from one pass (for training steps).

The math of each loss lives once, in ``nnlib/_kernels/loss_rows.pxd``, shared with the
compiled training loop.
"""
import math
from typing import Tuple

import numpy as np

from nnlib._codes import LOSS_CODES, loss_code
from nnlib._kernels import losses as _k
from nnlib._kernels.aligned import binary_labels_copy as _binary_labels_copy
from nnlib._kernels.aligned import class_labels_copy as _class_labels_copy
from nnlib._kernels.aligned import empty_like as _empty_like
from nnlib._kernels.aligned import flat_float as _flat_float
from nnlib._kernels.aligned import float_target_copy as _float_target_copy
from nnlib._labels import check_binary_labels, check_class_labels
from nnlib._threads import resolve_threads
from nnlib._typing import ArrayLike, FloatArray, Threads
from nnlib._validation import LabelError, ShapeError, check_finite, check_real_scalar
from nnlib.functional._arrays import as_kernel_array

_SPARSEMAX = LOSS_CODES["sparsemax_loss"]
# batches the kernel sums on its own stack (chunk_loss=None): no buffer to allocate
_STACK_ROWS = _k.STACK_ROWS
# chunk_loss for the gradient alone: empty, so never written (and shared)
_GRADIENT_ONLY = np.empty(0)

__all__ = ["softmax_cross_entropy", "softmax_cross_entropy_grad", "squared_error",
           "squared_error_grad", "logistic_loss", "logistic_loss_grad", "sparsemax_loss",
           "sparsemax_loss_grad", "hinge_loss", "hinge_loss_grad", "poisson_loss",
           "poisson_loss_grad", "loss_and_grad"]   # each of LOSS_CODES and its grad (tested)


# the losses whose scores may come as (n,): one output per sample
_ONE_COLUMN = frozenset(("squared_error", "logistic_loss", "poisson_loss"))
# the losses of float targets of z's shape
_FLOAT_TARGETS = frozenset(("squared_error", "poisson_loss"))


def _scores(z, allow_1d):
    if not _flat_float(z):        # an array the kernel reads as it is: one C test
        z = as_kernel_array(z, "z")
    if z.ndim == 2:
        z2 = z
    elif z.ndim == 1 and allow_1d:
        z2 = z.reshape(-1, 1)
    else:
        want = "1-d (n,) or 2-d (n, c)" if allow_1d else "2-d (n_samples, n_classes)"
        raise ShapeError(f"z must be {want}; got shape {z.shape}")
    if z2.size == 0:
        raise ShapeError(f"z must hold at least one sample and one column; got shape "
                         f"{z.shape}")
    return z, z2


def _targets(name, z, z2, y):
    """(y_target, y_label) for loss ``name``; the unused one is None. Both are arrays of
    the loss's own, checked after the copy: the compiled loop reads them GIL released."""
    n, c = z2.shape
    if name in _FLOAT_TARGETS:
        poisson = name == "poisson_loss"
        t = _float_target_copy(y, z, poisson)   # the common case: copied and checked in C
        return (t if t is not None else _float_target(y, z, n, c, poisson)), None
    if name == "logistic_loss":
        if c != 1:
            raise ShapeError(f"logistic_loss takes one score per sample: z of shape (n,) "
                             f"or (n, 1); got shape {z.shape}")
        t = _binary_labels_copy(y, n, z.dtype)     # the common case: one C call
        return (t if t is not None else check_binary_labels(y, n, z.dtype)), None
    labels = _class_labels_copy(y, n, c)           # the common case: one C call
    return None, labels if labels is not None else check_class_labels(y, n, c)


def _float_target(y, z, n, c, poisson):
    """The targets ``_float_target_copy`` does not take (a list, integers, another
    layout), as an array of the loss's own, or the error naming what is wrong."""
    t = as_kernel_array(y, "y", dtype=z.dtype)
    # One output per sample may come as (n,) or (n, 1) on either side.
    single = c == 1 and t.shape in ((n,), (n, 1))
    if t.shape != z.shape and not single:
        raise ShapeError(f"y must have the shape of z {z.shape}; got {t.shape}")
    if t is y or t.base is not None:        # the caller's memory (or a view of it)
        t = t.copy()
    check_finite(t, "y")
    if poisson and (t < 0).any():
        raise LabelError(f"y[{int(np.flatnonzero(t.reshape(-1) < 0)[0])}] is negative;"
                         f" poisson_loss needs targets >= 0 (counts or rates)")
    return t


def _run(name, z, y, margin, n_threads, want_grad, want_loss=True):
    """(mean loss or None, gradient of the mean or None) of loss ``name``; the *_grad
    functions pass ``want_loss=False`` (Poisson's gradient then skips log t)."""
    z, z2 = _scores(z, allow_1d=name in _ONE_COLUMN)
    y_target, y_label = _targets(name, z, z2, y)
    n, c = z2.shape
    nt = resolve_threads(n_threads, z.size)
    dz = _empty_like(z) if want_grad else None       # on a cache line (nnlib._aligned)
    if want_loss or not want_grad:
        # the chunk sums (float64): on the kernel's stack for up to _STACK_ROWS rows
        chunk_loss = None if n <= _STACK_ROWS else np.empty(_k.n_chunks(n))
    else:
        chunk_loss = _GRADIENT_ONLY
    code = LOSS_CODES[name]
    # sparsemax's sort buffer, one row per thread; the other losses use none
    work = np.empty((nt, c), dtype=z.dtype) if code == _SPARSEMAX else None
    total = _k.loss_grad(code, z2, y_target, y_label, 1.0 / n, margin, dz, chunk_loss,
                         work, nt)
    # the chunk sums added in a fixed order (np.sum's, bit for bit), divided by n
    return (total / n if total is not None else None), dz


def _margin(margin):
    if type(margin) is float and 0.0 <= margin < math.inf:   # a plain float: at once
        return margin
    return check_real_scalar(margin, "margin", low=0.0)


def softmax_cross_entropy(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> float:
    """Mean of ``-log softmax(z_i)[y_i] = logsumexp(z_i) - z_i[y_i]``.

    Computed from the max-shifted log-sum-exp, never as ``-log(p)``: finite for any finite
    ``z`` (a wrong class with margin 1e4 costs exactly 1e4, not ``inf``).

    Parameters
    ----------
    z : (n, c) scores;  y : (n,) class indices in [0, c).

    Returns
    -------
    float

    Examples
    --------
    >>> z = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> round(softmax_cross_entropy(z, [0, 2]), 6)
    0.860645
    >>> softmax_cross_entropy(np.array([[0.0, 1e4]]), [0])     # finite, not inf
    10000.0
    """
    return _run("softmax_cross_entropy", z, y, 0.0, n_threads, False)[0]


def softmax_cross_entropy_grad(z: ArrayLike, y: ArrayLike, *,
                               n_threads: Threads = None) -> FloatArray:
    """Gradient of the mean cross-entropy: ``(softmax(z) - onehot(y)) / n``, shape (n, c).

    Examples
    --------
    >>> z = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> softmax_cross_entropy_grad(z, [0, 2])
    array([[-0.07810263,  0.0570976 ,  0.02100503],
           [ 0.10597078,  0.28805844, -0.39402922]])
    """
    return _run("softmax_cross_entropy", z, y, 0.0, n_threads, True, want_loss=False)[1]


def squared_error(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> float:
    """Mean over samples of ``1/2 ||z_i - y_i||^2`` (summed over the c outputs).

    Parameters
    ----------
    z : (n, c) or (n,) predictions;  y : same shape, finite real targets ((n,) and
        (n, 1) are interchangeable for one output per sample).

    Examples
    --------
    >>> squared_error([[1.0, 2.0]], [[0.0, 0.0]])             # (1 + 4) / 2
    2.5
    """
    return _run("squared_error", z, y, 0.0, n_threads, False)[0]


def squared_error_grad(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """Gradient of the mean squared error: ``(z - y) / n``, shape of ``z``.

    Examples
    --------
    >>> squared_error_grad([[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]])
    array([[0.5, 1. ],
           [0. , 0. ]])
    """
    return _run("squared_error", z, y, 0.0, n_threads, True, want_loss=False)[1]


def logistic_loss(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> float:
    """Mean binary logistic loss ``log(1 + exp(-s_i))``, ``s_i = z_i`` if ``y_i = 1`` and
    ``-z_i`` if ``y_i = 0``.

    Evaluated as ``(1 - y) softplus(z) + y softplus(-z)`` with the overflow-free softplus
    of Maechler (2012): finite and accurate for |z| up to the float range (no
    ``softplus(z) - y z`` cancellation).

    Parameters
    ----------
    z : (n,) or (n, 1) scores (logits);  y : (n,) or (n, 1) labels in {0, 1}.

    Examples
    --------
    >>> round(logistic_loss([0.0, 2.0], [1, 0]), 6)       # (log 2 + softplus(2)) / 2
    1.410038
    >>> logistic_loss([1000.0], [0])
    1000.0
    """
    return _run("logistic_loss", z, y, 0.0, n_threads, False)[0]


def logistic_loss_grad(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """Gradient of the mean logistic loss: ``(sigmoid(z) - y) / n``, shape of ``z``.

    Examples
    --------
    >>> logistic_loss_grad([0.0, 2.0], [1, 0])
    array([-0.25      ,  0.44039854])
    """
    return _run("logistic_loss", z, y, 0.0, n_threads, True, want_loss=False)[1]


def poisson_loss(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> float:
    """Mean over samples of the half Poisson deviance with the log link, summed over the
    c outputs: ``sum_j e^{z_j} - y_j z_j + y_j log y_j - y_j`` (``0 log 0 = 0``), the loss of
    scikit-learn's ``MLPRegressor(loss="poisson")`` on the log-mean ``z``. Computed as
    ``y (e^d - 1 - d)`` with ``d = z - log y`` near the fit, where the four terms cancel:
    the loss is then exact for a ``z`` moved by a fraction of its ulp (``d`` is only as
    accurate as ``log y``, so where ``|d|`` is a few ulps of ``log y`` the relative error
    grows as ``2 ulp(log y) / |d|``).

    Parameters
    ----------
    z : (n, c) or (n,) log-means;  y : same shape, finite targets >= 0.

    Examples
    --------
    >>> round(poisson_loss([[0.0]], [[1.0]]), 12)        # e^0 - 0 + 0 - 1
    0.0
    >>> round(poisson_loss([[np.log(3.0) + 1e-6]], [[3.0]]) * 1e12, 3)   # ~ 3 (1e-6)^2 / 2
    1.5
    """
    return _run("poisson_loss", z, y, 0.0, n_threads, False)[0]


def poisson_loss_grad(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """Gradient of the mean Poisson loss: ``(e^z - y) / n``, shape of ``z``.

    Examples
    --------
    >>> poisson_loss_grad([[0.0], [np.log(2.0)]], [[1.0], [0.0]])
    array([[0.],
           [1.]])
    """
    return _run("poisson_loss", z, y, 0.0, n_threads, True, want_loss=False)[1]


def sparsemax_loss(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> float:
    """Mean sparsemax loss of Martins & Astudillo (2016), the sparsemax analogue of the
    logistic loss.

    ``L(z, k) = -z_k + 1/2 sum_{j in S(z)} (z_j^2 - tau(z)^2) + 1/2``, where
    ``sparsemax(z) = max(z - tau, 0)`` and ``S(z)`` is its support. It is convex,
    non-negative and zero exactly when ``sparsemax(z) = onehot(k)``. Evaluated in the
    equivalent shift-invariant form ``1/2 + sum_j p_j (u_j - p_j/2) - u_k``, ``u = z - max z``.

    Parameters
    ----------
    z : (n, c) scores;  y : (n,) class indices in [0, c).

    Examples
    --------
    >>> sparsemax_loss(np.array([[3.0, 0.0], [0.5, 0.0]]), [0, 0])   # (0 + 1/16) / 2
    0.03125
    """
    return _run("sparsemax_loss", z, y, 0.0, n_threads, False)[0]


def sparsemax_loss_grad(z: ArrayLike, y: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """Gradient of the mean sparsemax loss: ``(sparsemax(z) - onehot(y)) / n``.

    Examples
    --------
    >>> sparsemax_loss_grad(np.array([[3.0, 0.0], [0.5, 0.0]]), [0, 0])
    array([[ 0.   ,  0.   ],
           [-0.125,  0.125]])
    """
    return _run("sparsemax_loss", z, y, 0.0, n_threads, True, want_loss=False)[1]


def hinge_loss(z: ArrayLike, y: ArrayLike, margin: float = 1.0, *,
               n_threads: Threads = None) -> float:
    """Mean multiclass hinge loss of Crammer & Singer (2001).

    ``L(z, y) = max(0, margin + max_{j != y} z_j - z_y)``; ``margin = 0`` is the
    perceptron criterion (the loss is positive only when another class outscores ``y``).

    Parameters
    ----------
    z : (n, c) scores;  y : (n,) class indices in [0, c).
    margin : float >= 0, default 1.0.

    Examples
    --------
    >>> z = np.array([[2.0, 1.5, 0.0], [0.0, 3.0, 0.0]])
    >>> hinge_loss(z, [0, 1])                 # (max(0, 1 + 1.5 - 2) + 0) / 2
    0.25
    >>> hinge_loss(z, [0, 1], margin=0.0)     # the perceptron criterion
    0.0
    """
    return _run("hinge_loss", z, y, _margin(margin), n_threads, False)[0]


def hinge_loss_grad(z: ArrayLike, y: ArrayLike, margin: float = 1.0, *,
                    n_threads: Threads = None) -> FloatArray:
    """A subgradient of the mean hinge loss, shape (n, c).

    Row i is ``(e_{j*} - e_{y_i}) / n`` when ``h_i = margin + z_{i,j*} - z_{i,y_i} >= 0``
    and 0 when ``h_i < 0``, where ``j*`` is the FIRST index attaining ``max_{j != y_i}``.

    Conventions at the kinks (both choices are valid subgradients): at ``h_i = 0`` the
    active piece ``e_{j*} - e_y`` is used, so with ``margin = 0`` a tie between the true
    class and another counts as a mistake and the perceptron moves even from all-zero
    weights; among tied competitors the lowest index is ``j*``. With one column there is
    no competitor: loss and gradient are 0.

    Examples
    --------
    >>> hinge_loss_grad(np.array([[2.0, 1.5, 0.0], [0.0, 3.0, 0.0]]), [0, 1])
    array([[-0.5,  0.5,  0. ],
           [ 0. ,  0. ,  0. ]])
    """
    return _run("hinge_loss", z, y, _margin(margin), n_threads, True, want_loss=False)[1]


def loss_and_grad(loss: str, z: ArrayLike, y: ArrayLike, margin: float = 1.0, *,
                  n_threads: Threads = None) -> Tuple[float, FloatArray]:
    """Mean loss and its gradient from ONE pass over ``z`` (what a training step needs).

    Parameters
    ----------
    loss : str
        One of ``softmax_cross_entropy, squared_error, logistic_loss, sparsemax_loss,
        hinge_loss``.
    z, y : as for that loss.
    margin : float >= 0, default 1.0
        The hinge margin; ignored by the other losses.

    Returns
    -------
    (float, ndarray)
        ``(name(z, y), name_grad(z, y))``, bitwise equal to the two separate calls.

    Examples
    --------
    >>> loss_and_grad("squared_error", [[1.0, 2.0]], [[0.0, 0.0]])
    (2.5, array([[1., 2.]]))
    """
    loss_code(loss)                                   # ValueError naming the choices
    return _run(loss, z, y, _margin(margin), n_threads, True)
