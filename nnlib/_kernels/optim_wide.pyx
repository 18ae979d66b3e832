# cython: language_level=3
"""The optimizer update of the rules without a division or a square root, built with
512-bit vectors (setup.py's ``WIDE_VECTOR_MODULES``); ``optim.pyx`` sends those rules
here and the others to its own copy of the same loops, built with GCC's default
256-bit vectors.

Why two builds of one rule file (``optim_rules.pxd``): a float32 loop loads each
element as float, widens it to double and rounds the result back. In the SGD-like
rules that conversion is most of the work, and at 256 bits its lane shuffles
(``vcvtps2pd``/``vcvtpd2ps`` with ``vextractf128``/``vinsertf128``, all on one port)
bound the loop; 512-bit vectors convert 16 elements per instruction pair instead of 8.
The rules that divide (Adagrad, RMSprop, Adam and their variants) are bound by the
double-precision divider, whose throughput per element is the same at both widths,
and run slower in 512-bit code (the core's clock drops), so they stay in ``optim``.
GCC sets the vector width per translation unit, hence a module of its own. The loops
are elementwise, so the width changes no result (tests compare the two builds bit
for bit).
"""
from nnlib._kernels.optim_rules cimport (OptimConfig, optim_update_threads, OPT_SGD,
                                         OPT_NOTES_MOMENTUM, OPT_SKLEARN_SGD)


cdef bint wide_rule(const OptimConfig* cfg) noexcept nogil:
    """Whether the rule of ``cfg`` is one this module updates (no division, no root)."""
    return (cfg.kind == OPT_SGD or cfg.kind == OPT_NOTES_MOMENTUM
            or cfg.kind == OPT_SKLEARN_SGD)


cdef void update_wide_f32(const OptimConfig* cfg, float* param, const float* grad,
                          float* state, Py_ssize_t n, long long step,
                          int n_threads) noexcept nogil:
    """``optim_update_threads`` on float32 arrays, from the 512-bit build."""
    optim_update_threads(cfg, param, grad, state, n, step, n_threads)


cdef void update_wide_f64(const OptimConfig* cfg, double* param, const double* grad,
                          double* state, Py_ssize_t n, long long step,
                          int n_threads) noexcept nogil:
    """``optim_update_threads`` on float64 arrays, from the 512-bit build."""
    optim_update_threads(cfg, param, grad, state, n, step, n_threads)
