# cython: language_level=3
"""vmath.h's elementary functions over float64 arrays: for tests and error measurements.

Design note
-----------
nnlib's kernels do not call this: they inline the C functions of ``vmath.h`` (through
``scalar.pxd``) into their own loops. This module exposes the same functions one array
at a time, so ``tests/test_vmath.py`` can measure their error in ULPs against a
long-double or mpmath reference and check the special values (+-0, +-inf, NaN,
subnormals, the overflow and underflow thresholds) exactly. Single-threaded, the
function picked inside the loop (no vectorization wanted here): a test helper, not
public API.
"""
from nnlib._kernels.scalar cimport (nn_exp, nn_expm1_neg, nn_log1p_unit, nn_tanh,
                                    nn_tanh_f32, nn_exp_neg_f32, nn_expm1_neg_f32,
                                    nn_log1p_unit_f32, nn_log,
                                    nn_exp_neg_f32_half_factor)

# name -> code; domains: expm1_neg, exp_neg_f32, expm1_neg_f32 and exp_neg_f32_half (the
# float32 softplus kernels' e^x, as its vjp takes it) x <= 0, log1p_unit and
# log1p_unit_f32 0 <= x <= 1, the others (log too: NaN below 0) all x. The _f32 ones are
# meant for float32 results only.
FUNCTIONS = {"exp": 0, "expm1_neg": 1, "log1p_unit": 2, "tanh": 3, "tanh_f32": 4,
             "exp_neg_f32": 5, "expm1_neg_f32": 6, "log1p_unit_f32": 7, "log": 8,
             "exp_neg_f32_half": 9}


cdef inline double _apply(int code, double x) noexcept nogil:
    if code == 0:
        return nn_exp(x)
    if code == 1:
        return nn_expm1_neg(x)
    if code == 2:
        return nn_log1p_unit(x)
    if code == 3:
        return nn_tanh(x)
    if code == 4:
        return nn_tanh_f32(x)
    if code == 5:
        return nn_exp_neg_f32(x)
    if code == 6:
        return nn_expm1_neg_f32(x)
    if code == 8:
        return nn_log(x)
    if code == 9:
        return nn_exp_neg_f32_half_factor(x)
    return nn_log1p_unit_f32(x)


def evaluate(str name, const double[::1] x, double[::1] out):
    """out[i] = name(x[i]) for a name of FUNCTIONS."""
    if name not in FUNCTIONS:
        raise ValueError(f"unknown function {name!r}; expected one of {list(FUNCTIONS)}")
    if x.shape[0] != out.shape[0]:
        raise ValueError(f"x and out differ in length: {x.shape[0]} != {out.shape[0]}")
    cdef int code = FUNCTIONS[name]
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = _apply(code, x[i])
