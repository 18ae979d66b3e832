# cython: language_level=3
"""Scalar activation functions and their derivatives: layer 1 of every kernel.

Design note
-----------
Pure C, ``noexcept nogil``, ``inline``: these are the single source of the elementwise
math, shared by the functional kernels (``activations.pyx``) and the compiled layers and
training loop, which ``cimport`` them so the formula exists once.

All arithmetic is done in double, whatever the array dtype: float32 results are then the
double value rounded once (<= 0.5 ulp + a tiny fraction of an ulp).

exp, expm1, log1p and tanh come from ``vmath.h`` (nn_exp, nn_expm1_neg, nn_log1p_unit,
nn_tanh), not libm: they are branch-free inline C, so the activation loops, which inline
these functions with a literal ``kind``, are auto-vectorized (libm's are opaque calls, one
element at a time). Choices between values use ``nn_select`` (bit operations), not
``a if c else b``: GCC 12 keeps the latter as a branch on AVX2, which stops vectorization.
Every value is computed unconditionally and then selected, so each function is a straight
line. Measured max error against long double (x87, 64-bit mantissa: numpy.longdouble, i.e.
glibc's expl/expm1l/log1pl/tanhl) over 1e7-point sweeps of each range (tests/test_vmath.py's
``_sweep``/``_max_ulp`` with n = 10**7; the test itself runs 2e5 points and checks
<= 0.9 ulp plus the special values +-0, +-inf, NaN, subnormals and the overflow and
underflow thresholds exactly), confirmed by 1e5 random points against mpmath:

    ==============  =================================  ===========  ====================
    function        ranges swept                       float64      float32 (via double)
    ==============  =================================  ===========  ====================
    nn_exp          [-746, 710], [-1, 1], [-745.2,     0.78 ulp     <= 0.5 ulp + 1e-6
                    -708], +-[1e-300, 746] (log)
    nn_expm1_neg    [-60, 0], [-1, 0], -[1e-300, 60]   0.81 ulp     <= 0.5 ulp + 1e-6
    nn_log1p_unit   [0, 1], [1e-300, 1] (log)          0.82 ulp     <= 0.5 ulp + 1e-6
    nn_tanh         [-20, 20], +-[1e-300, 20] (log)    0.75 ulp     <= 0.5 ulp + 1e-6
    ==============  =================================  ===========  ====================

(libm: exp, expm1, log1p, tanh are all < 1 ulp in glibc; these are too.)

nn_tanh_f32 is the float32 kernels' tanh (activations.pyx): double arithmetic with a short
polynomial (~2e-11 relative error), about half of nn_tanh's work; checked on every float32
in [-20, 20] (2.2e9 values, beyond that tanh rounds to +-1) against tanhl: max 0.50012 ulp
of float32 after the rounding (tests/test_vmath.py checks a sweep and the special values).

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
from libc.math cimport fabs

cdef extern from "vmath.h" nogil:
    double nn_exp(double x) noexcept
    double nn_expm1_neg(double x) noexcept      # x <= 0 (and NaN)
    double nn_log1p_unit(double u) noexcept     # 0 <= u <= 1 (and NaN)
    double nn_tanh(double x) noexcept
    double nn_tanh_f32(double x) noexcept       # ~2e-11 rel.: for float32 results only
    double nn_select(int c, double a, double b) noexcept   # c ? a : b, branch-free

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
    # With e = exp(-|x|) <= 1: sigma(x) = 1/(1+e) for x >= 0 and e/(1+e) for x < 0. exp
    # never overflows, and the tiny outputs for x << 0 keep their relative accuracy
    # (sigmoid(-700) = e^-700, sigmoid(-1000) = 0 exactly, without a warning).
    cdef double e = nn_exp(-fabs(x))
    return nn_select(x >= 0.0, 1.0, e) / (1.0 + e)


cdef inline double sigmoid_grad_scalar(double x) noexcept nogil:
    # sigma'(x) = sigma(x) sigma(-x) = e / (1 + e)^2 with e = exp(-|x|): accurate in
    # relative terms for large |x| too, where sigma (1 - sigma) cancels (it is 0 beyond
    # x = 37 and has only an absolute error ~eps before).
    cdef double e = nn_exp(-fabs(x))
    cdef double d = 1.0 + e
    return e / (d * d)


cdef inline double softplus_scalar(double x) noexcept nogil:
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|) (as scikit-learn's and PyTorch's stable
    # forms): exp never overflows; for x << 0 it is log1p(e^x) ~ e^x with full relative
    # accuracy, for x >> 0 it is x + (a term below half an ulp of x). Both terms are
    # >= 0, so the sum does not cancel. NaN reaches the result through log1p.
    return nn_select(x > 0.0, x, 0.0) + nn_log1p_unit(nn_exp(-fabs(x)))


cdef inline double act_scalar(int kind, double x, double p) noexcept nogil:
    """act(x); ``p`` is the slope of leaky_relu and the alpha of elu."""
    if kind == ACT_IDENTITY:
        return x
    if kind == ACT_SIGMOID:
        return sigmoid_scalar(x)
    if kind == ACT_TANH:
        return nn_tanh(x)
    if kind == ACT_RELU:
        # +0 (not -0); NaN stays NaN. A plain ?: here: stored directly, it vectorizes
        # (as a float max for float32, 2x faster than nn_select's round trip via double)
        return x if x > 0.0 else (0.0 if x <= 0.0 else x)
    if kind == ACT_LEAKY_RELU:
        return nn_select(x > 0.0, x, p * x)
    if kind == ACT_SOFTPLUS:
        return softplus_scalar(x)
    if kind == ACT_ELU:
        # expm1 of min(x, 0) (NaN kept), so the unselected lane stays in its domain
        return nn_select(x > 0.0, x, p * nn_expm1_neg(nn_select(x > 0.0, 0.0, x)))
    # ACT_SIGN: NaN propagates (neither comparison holds); x * 0 keeps +-0 and NaN
    return nn_select(x > 0.0, 1.0, nn_select(x < 0.0, -1.0, x * 0.0))


cdef inline double act_grad_x(int kind, double x, double p) noexcept nogil:
    """act'(x) at the pre-activation ``x``."""
    cdef double s
    if kind == ACT_IDENTITY:
        return 1.0
    if kind == ACT_SIGMOID:
        return sigmoid_grad_scalar(x)       # sigma' = sigma (1 - sigma) = e/(1+e)^2
    if kind == ACT_TANH:
        s = nn_tanh(x)
        return 1.0 - s * s                  # tanh' = 1 - tanh^2
    if kind == ACT_RELU:
        return nn_select(x > 0.0, 1.0, nn_select(x <= 0.0, 0.0, x))   # NaN stays NaN
    if kind == ACT_LEAKY_RELU:
        return nn_select(x > 0.0, 1.0, nn_select(x <= 0.0, p, x))
    if kind == ACT_SOFTPLUS:
        return sigmoid_scalar(x)            # softplus' = sigma
    if kind == ACT_ELU:
        s = p * nn_exp(nn_select(x > 0.0, 0.0, x))
        return nn_select(x > 0.0, 1.0, nn_select(x <= 0.0, s, x))
    return nn_select(x == x, 0.0, x)        # sign' = 0 (a.e.); NaN stays NaN


cdef inline double act_grad_y(int kind, double y, double p) noexcept nogil:
    """act'(x) written in terms of the output ``y = act(x)``."""
    cdef double a, e
    if kind == ACT_IDENTITY:
        return 1.0
    if kind == ACT_SIGMOID:
        return y * (1.0 - y)
    if kind == ACT_TANH:
        return 1.0 - y * y
    if kind == ACT_RELU:
        return nn_select(y > 0.0, 1.0, 0.0)
    if kind == ACT_LEAKY_RELU:
        return nn_select(y > 0.0, 1.0, p)   # needs slope >= 0 (then y > 0 <=> x > 0)
    if kind == ACT_SOFTPLUS:
        # e^y = 1 + e^x  =>  sigma(x) = 1 - e^-y = -expm1(-y), y = softplus(x) >= 0. A
        # y < 0 (no x produces one) gets the same formula continued, as the other kinds
        # and the NumPy twin do: -expm1(|y|) = E / e^-|y| with E = expm1(-|y|), both in
        # nn_expm1_neg's and nn_exp's vectorized domain. NaN stays NaN.
        a = nn_select(y < 0.0, y, -y)       # -|y|
        e = nn_expm1_neg(a)
        return nn_select(y < 0.0, e / nn_exp(a), -e)
    if kind == ACT_ELU:
        return nn_select(y > 0.0, 1.0, y + p)   # alpha e^x = y + alpha, x <= 0 (alpha > 0)
    return 0.0
