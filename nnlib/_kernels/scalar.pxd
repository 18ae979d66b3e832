# cython: language_level=3
"""Scalar activation functions and their derivatives: layer 1 of every kernel.

Design note
-----------
Pure C, ``noexcept nogil``, ``inline``: these are the single source of the elementwise
math, shared by the functional kernels (``activations.pyx``) and the compiled layers and
training loop, which ``cimport`` them so the formula exists once.

All arithmetic is done in double, whatever the array dtype: float32 results are then the
double value rounded once (<= 0.5 ulp + the libm error of exp/log1p/tanh), and the cost is
small because libm calls, not the conversions, dominate.

Two derivative forms exist for each activation:
``act_grad_x(kind, x, p)``  the derivative at the pre-activation ``x`` (used by the
                            functional ``*_vjp`` kernels, which receive ``x``);
``act_grad_y(kind, y, p)``  the same derivative written in terms of the output
                            ``y = act(x)`` (sigma' = s(1-s), tanh' = 1-t^2, relu' = 1[y>0]),
                            so a Dense layer need not keep the pre-activation.

Conventions at kinks (documented in nnlib.functional and checked by verify/ as
subgradient membership): relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha, sign'(x) = 0
everywhere (sign is the notes' threshold unit: its derivative is 0 for x != 0 and undefined
at 0; 0 is what gradient-based training can use, so sign units do not learn by backprop).
"""
from libc.math cimport exp, expm1, log1p, tanh, fabs

# Activation codes. Shared with nnlib/_activation_codes.py (the Python side); a test checks
# both lists agree.
cdef enum ActivationKind:
    ACT_IDENTITY = 0
    ACT_SIGMOID = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_LEAKY_RELU = 4
    ACT_SOFTPLUS = 5
    ACT_ELU = 6
    ACT_SIGN = 7


cdef inline double sigmoid_scalar(double x) noexcept nogil:
    # Two branches so exp() only ever sees a non-positive argument: no overflow, and
    # sigmoid(-1000) = exp(-1000)/(1+exp(-1000)) = 0 exactly, without a warning.
    cdef double e
    if x >= 0.0:
        return 1.0 / (1.0 + exp(-x))
    e = exp(x)
    return e / (1.0 + e)


cdef inline double softplus_scalar(double x) noexcept nogil:
    # log(1 + e^x) with the cut-offs of Maechler (2012), "Accurately Computing
    # log(1 - exp(-|a|))", as in scikit-learn's _loss.pyx (log1pexp): each branch is exact
    # to double precision where it is used and never overflows.
    if x <= -37.0:
        return exp(x)                   # log1p(e^x) = e^x - e^2x/2..., e^2x < 1e-32
    if x <= 18.0:
        return log1p(exp(x))
    if x <= 33.3:
        return x + exp(-x)              # x + log1p(e^-x), e^-x < 1.6e-8
    return x                            # e^-x below half an ulp of x


cdef inline double act_scalar(int kind, double x, double p) noexcept nogil:
    """act(x); ``p`` is the slope of leaky_relu and the alpha of elu."""
    if kind == ACT_IDENTITY:
        return x
    if kind == ACT_SIGMOID:
        return sigmoid_scalar(x)
    if kind == ACT_TANH:
        return tanh(x)
    if kind == ACT_RELU:
        return x if x > 0.0 else (0.0 if x <= 0.0 else x)   # +0 (not -0); NaN stays NaN
    if kind == ACT_LEAKY_RELU:
        return x if x > 0.0 else p * x
    if kind == ACT_SOFTPLUS:
        return softplus_scalar(x)
    if kind == ACT_ELU:
        return x if x > 0.0 else p * expm1(x)
    # ACT_SIGN: NaN propagates (neither comparison holds)
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return x * 0.0                          # keeps +-0 and NaN


cdef inline double act_grad_x(int kind, double x, double p) noexcept nogil:
    """act'(x) at the pre-activation ``x``."""
    cdef double s
    if kind == ACT_IDENTITY:
        return 1.0
    if kind == ACT_SIGMOID:
        s = sigmoid_scalar(x)
        return s * (1.0 - s)                # sigma' = sigma (1 - sigma)
    if kind == ACT_TANH:
        s = tanh(x)
        return 1.0 - s * s                  # tanh' = 1 - tanh^2
    if kind == ACT_RELU:
        return 1.0 if x > 0.0 else (0.0 if x <= 0.0 else x)   # NaN stays NaN
    if kind == ACT_LEAKY_RELU:
        return 1.0 if x > 0.0 else (p if x <= 0.0 else x)
    if kind == ACT_SOFTPLUS:
        return sigmoid_scalar(x)            # softplus' = sigma
    if kind == ACT_ELU:
        return 1.0 if x > 0.0 else (p * exp(x) if x <= 0.0 else x)
    return 0.0 if x == x else x             # sign' = 0 (a.e.); NaN stays NaN


cdef inline double act_grad_y(int kind, double y, double p) noexcept nogil:
    """act'(x) written in terms of the output ``y = act(x)``."""
    if kind == ACT_IDENTITY:
        return 1.0
    if kind == ACT_SIGMOID:
        return y * (1.0 - y)
    if kind == ACT_TANH:
        return 1.0 - y * y
    if kind == ACT_RELU:
        return 1.0 if y > 0.0 else 0.0
    if kind == ACT_LEAKY_RELU:
        return 1.0 if y > 0.0 else p        # needs slope >= 0 (then y > 0 <=> x > 0)
    if kind == ACT_SOFTPLUS:
        return -expm1(-y)                   # e^y = 1 + e^x  =>  sigma(x) = 1 - e^-y
    if kind == ACT_ELU:
        return 1.0 if y > 0.0 else y + p    # alpha e^x = y + alpha for x <= 0 (alpha > 0)
    return 0.0
