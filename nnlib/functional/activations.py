"""Elementwise activations and their vector-Jacobian products (compiled).

Each activation ``name(x)`` has ``name_vjp(x, grad_out)``, the gradient of
``sum(grad_out * name(x))`` with respect to ``x``, i.e. ``name'(x) * grad_out``.

Parameters shared by every function here:

x : array_like, any shape
    Input; float32 and float64 are kept as given, integers and bools become float64.
grad_out : array_like, shape of ``x``
    Upstream gradient (cast to ``x``'s dtype).
n_threads : int or None
    OpenMP threads; None uses all cores for inputs of 2**15 elements or more, else 1.
output : array_like, shape of ``x``, or None (the vjps only)
    The forward's result ``y = name(x)`` (cast to ``x``'s dtype), as autograd would save
    it. When given, the derivative is computed from ``y`` -- sigmoid' = y (1 - y),
    tanh' = 1 - y^2, softplus' = 1 - e^-y, elu' = y + alpha for y <= 0 (1 above), and
    relu, leaky_relu, identity and sign from the sign of ``y`` -- as PyTorch's
    ``sigmoid_backward(grad, y)`` and nnlib's Dense layers do, and ``x`` is used only for
    its shape and dtype. For sigmoid, tanh and elu no exp or tanh is evaluated, so it is
    the cheaper vjp when the output is at hand (about 2x at 1e6 elements); softplus's
    output form evaluates expm1 and is not cheaper than its x form. leaky_relu needs
    ``slope >= 0`` for it (else ValueError).

Each returns a new array with the shape and dtype of ``x``.

Accuracy: without ``output``, each vjp is accurate relative to act'(x) * grad_out at the
given x (float32: correctly rounded to within 0.501 ulp; float64: a few ulp). With
``output``, the result is act'(x) expressed in the *given* y, computed in double and rounded
once: for float32 it is within 0.501 ulp of the exact g * y (1 - y) (resp. its analogue) for
that y, for float64 within 2 ulp (verify/ checks both against mpmath). That is not
the derivative at x to the same accuracy: y is rounded, and where it nears an asymptote
(sigmoid's 1, tanh's +-1, elu's -alpha) the factor 1 - y (or y + alpha) keeps only the
absolute accuracy of y, so the relative error of sigma'(x) grows like e^|x| eps. Training
does not notice (the gradients there are below eps); where sigma'(x) itself must be
accurate, pass x alone.

Conventions at kinks: ``relu'(0) = 0`` (as PyTorch; the notes' table writes 1 for x >= 0 —
both are subgradients), ``leaky_relu'(0) = slope``, ``elu'(0) = alpha``. ``sign`` is the
notes' threshold unit (``sign(+-0) = +-0``: ``np.sign`` too gives 0, but +0 at -0); its
derivative is 0 wherever it exists and undefined at 0, so ``sign_vjp`` returns zeros: sign
units cannot be trained by backprop. NaN in, NaN out, as in NumPy -- except ``sign_vjp``,
the zero map (see there).

``slope`` and ``alpha`` must be finite and at most the largest value of ``x``'s dtype
(3.4e38 for float32): the kernels use them in that dtype, where a larger one would be inf
(and ``0 * inf`` NaN). Beyond it :class:`~nnlib.DTypeRangeError` (a ValueError) is
raised. Within it, a result too large for the dtype (``leaky_relu(-1e30, slope=1e20)`` in
float32) is the correctly rounded overflow, +-inf, as in NumPy.
"""
from typing import Optional

import numpy as np

from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS
from nnlib._kernels import activations as _k
from nnlib._kernels.aligned import empty_like as _empty_like
from nnlib._threads import resolve_threads
from nnlib._typing import ArrayLike, FloatArray, Threads
from nnlib._validation import check_fits_dtype, check_real_scalar, check_same_shape
from nnlib.functional._arrays import as_kernel_array as _as_kernel_array

__all__ = ["identity", "identity_vjp", "sigmoid", "sigmoid_vjp", "tanh", "tanh_vjp", "relu",
           "relu_vjp", "leaky_relu", "leaky_relu_vjp", "softplus", "softplus_vjp", "elu",
           "elu_vjp", "sign", "sign_vjp"]   # each of ACTIVATION_CODES and its vjp (tested)


def _param(name, param, dtype):
    """The activation's parameter, checked to fit the working dtype."""
    if name in ACTIVATION_PARAMS:
        check_fits_dtype(param, ACTIVATION_PARAMS[name][0], dtype)
    return param


def _forward(name: str, x: ArrayLike, param: float, n_threads: Optional[int]) -> FloatArray:
    x = _as_kernel_array(x, "x")
    param = _param(name, param, x.dtype)
    out = _empty_like(x)                   # on a cache line (nnlib._aligned)
    _k.activation_forward(ACTIVATION_CODES[name], x, out, param,
                          resolve_threads(n_threads, x.size))
    return out


def _vjp(name: str, x: ArrayLike, grad_out: ArrayLike, param: float,
         n_threads: Optional[int], output: Optional[ArrayLike] = None) -> FloatArray:
    x = _as_kernel_array(x, "x")
    g = _as_kernel_array(grad_out, "grad_out", dtype=x.dtype)
    check_same_shape("x", x, "grad_out", g)
    param = _param(name, param, x.dtype)
    out = _empty_like(x)                   # on a cache line (nnlib._aligned)
    threads = resolve_threads(n_threads, x.size)
    if output is None:
        _k.activation_vjp(ACTIVATION_CODES[name], x, g, out, param, threads)
        return out
    y = _as_kernel_array(output, "output", dtype=x.dtype)
    check_same_shape("x", x, "output", y)
    if name == "leaky_relu" and param < 0:
        raise ValueError(f"leaky_relu_vjp: output= needs slope >= 0 (got {param!r}): with "
                         "a negative slope the output's sign does not tell x > 0 from x < 0")
    _k.activation_vjp_from_output(ACTIVATION_CODES[name], y, g, out, param, threads)
    return out


def identity(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """identity(x) = x (a copy).

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> identity(x)
    array([-2. ,  0. ,  1.5])
    """
    return _forward("identity", x, 0.0, n_threads)


def identity_vjp(x: ArrayLike, grad_out: ArrayLike, *, output: Optional[ArrayLike] = None,
                 n_threads: Threads = None) -> FloatArray:
    """identity'(x) * grad_out = grad_out.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> identity_vjp(x, g)
    array([1., 1., 2.])
    """
    return _vjp("identity", x, grad_out, 0.0, n_threads, output)


def sigmoid(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """sigmoid(x) = 1 / (1 + exp(-x)); never overflows (sigmoid(-1000) = 0).

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> sigmoid(x)
    array([0.11920292, 0.5       , 0.81757448])
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0], np.float32))
    array([0. , 0.5, 1. ], dtype=float32)
    """
    return _forward("sigmoid", x, 0.0, n_threads)


def sigmoid_vjp(x: ArrayLike, grad_out: ArrayLike, *, output: Optional[ArrayLike] = None,
                n_threads: Threads = None) -> FloatArray:
    """sigmoid'(x) * grad_out, with sigmoid' = sigmoid (1 - sigmoid).

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> sigmoid_vjp(x, g)
    array([0.10499359, 0.25      , 0.2982929 ])
    >>> sigmoid_vjp(x, g, output=sigmoid(x))      # from the forward's output
    array([0.10499359, 0.25      , 0.2982929 ])
    """
    return _vjp("sigmoid", x, grad_out, 0.0, n_threads, output)


def tanh(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x).

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> tanh(x)
    array([-0.96402758,  0.        ,  0.90514825])
    """
    return _forward("tanh", x, 0.0, n_threads)


def tanh_vjp(x: ArrayLike, grad_out: ArrayLike, *, output: Optional[ArrayLike] = None,
             n_threads: Threads = None) -> FloatArray:
    """tanh'(x) * grad_out, with tanh' = 1 - tanh^2.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> tanh_vjp(x, g)
    array([0.07065082, 1.        , 0.36141328])
    >>> tanh_vjp(x, g, output=tanh(x))            # from the forward's output
    array([0.07065082, 1.        , 0.36141328])
    """
    return _vjp("tanh", x, grad_out, 0.0, n_threads, output)


def relu(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """relu(x) = max(x, 0).

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> relu(x)
    array([0. , 0. , 1.5])
    """
    return _forward("relu", x, 0.0, n_threads)


def relu_vjp(x: ArrayLike, grad_out: ArrayLike, *, output: Optional[ArrayLike] = None,
             n_threads: Threads = None) -> FloatArray:
    """relu'(x) * grad_out, with relu'(x) = 1 if x > 0 else 0 (0 at the kink).

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> relu_vjp(x, g)
    array([0., 0., 2.])
    """
    return _vjp("relu", x, grad_out, 0.0, n_threads, output)


def leaky_relu(x: ArrayLike, slope: float = 0.01, *, n_threads: Threads = None) -> FloatArray:
    """leaky_relu(x) = x if x > 0 else slope * x.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> leaky_relu(x, slope=0.1)
    array([-0.2,  0. ,  1.5])
    """
    return _forward("leaky_relu", x, check_real_scalar(slope, "slope"), n_threads)


def leaky_relu_vjp(x: ArrayLike, grad_out: ArrayLike, slope: float = 0.01, *,
                   output: Optional[ArrayLike] = None,
                   n_threads: Threads = None) -> FloatArray:
    """leaky_relu'(x) * grad_out, with leaky_relu'(x) = 1 if x > 0 else slope.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> leaky_relu_vjp(x, g, slope=0.1)
    array([0.1, 0.1, 2. ])
    """
    return _vjp("leaky_relu", x, grad_out, check_real_scalar(slope, "slope"), n_threads,
                output)


def softplus(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """softplus(x) = log(1 + e^x), exact to double precision for all x (softplus(1000) =
    1000): the cut-offs of Maechler (2012) as in scikit-learn's _loss.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> softplus(x)
    array([0.12692801, 0.69314718, 1.70141328])
    >>> softplus(np.array([-1000.0, 1000.0]))
    array([   0., 1000.])
    """
    return _forward("softplus", x, 0.0, n_threads)


def softplus_vjp(x: ArrayLike, grad_out: ArrayLike, *, output: Optional[ArrayLike] = None,
                 n_threads: Threads = None) -> FloatArray:
    """softplus'(x) * grad_out, with softplus' = sigmoid.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> softplus_vjp(x, g)
    array([0.11920292, 0.5       , 1.63514895])
    """
    return _vjp("softplus", x, grad_out, 0.0, n_threads, output)


def elu(x: ArrayLike, alpha: float = 1.0, *, n_threads: Threads = None) -> FloatArray:
    """elu(x) = x if x > 0 else alpha * (e^x - 1), alpha >= 0.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> elu(x, alpha=0.5)
    array([-0.43233236,  0.        ,  1.5       ])
    """
    return _forward("elu", x, check_real_scalar(alpha, "alpha", low=0.0), n_threads)


def elu_vjp(x: ArrayLike, grad_out: ArrayLike, alpha: float = 1.0, *,
            output: Optional[ArrayLike] = None,
            n_threads: Threads = None) -> FloatArray:
    """elu'(x) * grad_out, with elu'(x) = 1 if x > 0 else alpha * e^x.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> elu_vjp(x, g, alpha=0.5)
    array([0.06766764, 0.5       , 2.        ])
    >>> elu_vjp(x, g, alpha=0.5, output=elu(x, alpha=0.5))
    array([0.06766764, 0.5       , 2.        ])
    """
    return _vjp("elu", x, grad_out, check_real_scalar(alpha, "alpha", low=0.0), n_threads,
                output)


def sign(x: ArrayLike, *, n_threads: Threads = None) -> FloatArray:
    """sign(x) in {-1, 0, 1}: the notes' threshold unit, 0 at 0 with x's sign (x * 0).

    -0 gives -0 (np.sign gives +0 there) and a NaN gives that NaN quieted, its sign and
    payload kept.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> sign(x)
    array([-1.,  0.,  1.])
    """
    return _forward("sign", x, 0.0, n_threads)


def sign_vjp(x: ArrayLike, grad_out: ArrayLike, *, output: Optional[ArrayLike] = None,
             n_threads: Threads = None) -> FloatArray:
    """Zeros: sign' = 0 for x != 0 and is undefined at 0 (0 is used there).

    The vjp is the zero map: zeros of x's shape and dtype for every x and grad_out, NaN and
    inf included (as PyTorch's ``zeros_like(grad)`` and JAX's zero jvp), and neither array
    is read beyond its shape and dtype. The other vjps multiply act'(x) by grad_out, so
    0 * NaN is NaN there; sign's derivative is not a number computed at x but the constant
    0, and a gradient that is identically zero carries no information from upstream to
    propagate. Reading nothing also makes it one store per element, the least memory
    traffic an output needs.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> g = np.array([1.0, 1.0, 2.0])
    >>> sign_vjp(x, g)
    array([0., 0., 0.])
    """
    return _vjp("sign", x, grad_out, 0.0, n_threads, output)
