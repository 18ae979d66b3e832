# cython: language_level=3
"""The optimizer update of the rules without a division or a square root, and of
float32 Adam, AdamW, Adagrad and uncentered RMSprop, built with 512-bit vectors (setup.py's ``WIDE_VECTOR_MODULES``);
``optim.pyx`` sends those here and the others to its own copy of the same loops, built
with GCC's default 256-bit vectors.

Why two builds of one rule file (``optim_rules.pxd``): a float32 loop loads each
element as float, widens it to double and rounds the result back. In the SGD-like
rules that conversion is most of the work, and at 256 bits its lane shuffles
(``vcvtps2pd``/``vcvtpd2ps`` with ``vextractf128``/``vinsertf128``, all on one port)
bound the loop; 512-bit vectors convert 16 elements per instruction pair instead of 8.
The rules that divide in double (all of them on float64, and the notes' AdaGrad,
scikit-learn's Adam and centered RMSprop on float32) are bound by the double-precision
divider, whose throughput per element is
the same at both widths, and run slower in 512-bit code (the core's clock drops), so
they stay in ``optim``. Float32 Adam, Adagrad and RMSprop take their root and quotient
from float seeds (``_quot_root_f32`` in ``optim_rules``): the divider is no longer
their bound, the conversions are, as in SGD (Adam, 100k float32 elements, one thread:
125 us here against 170 us at 256 bits, where the float seeds gain nothing). An eps
outside the seeds' range (``_root_f32_range``: below 2^-125, 0, or a denominator that
could leave float's range) sends them back to the double division, still from this
build: the same results, a little slower than the 256-bit build would be.
GCC sets the vector width per translation unit, hence a module of its own. The loops
are elementwise, so the width changes no result (tests compare the two builds bit
for bit).

Float32 PyTorch SGD (plain, momentum, nesterov, weight decay) runs neither build of the
generic loop but ``optim_f32.h``'s, which widens and rounds four elements at a time
straight from and to memory: GCC's loops at either width spend a third of their
conversion ports on shuffles (its design note). So does float32 Adam and AdamW (seeds
in range, ``adam_scalars``), eight elements at a time with the floats in 256-bit and the
doubles in 512-bit registers (no shuffle at all; AdamW's shrink only where it is not
1): 100k elements, one thread, 1.68 -> 1.19 ns per element; without AVX-512, as two
halves of four in 128- and 256-bit registers (Zen 1: 8.7 -> 4.8 ns). Same operations,
same results (a NaN's sign aside, see tests/test_optim.py). The choice is
``optim_rules.explicit_f32``'s (where the loop is built, the seeds in range, no array
partly overlapping another), made inside ``optim_update_threads`` and its siblings, so the
training epoch (``train.pyx``) takes the same loops; ``optim``'s ``_step_narrow`` calls
``optim_update_range``, the generic loop alone, which the tests compare them with.
"""
from nnlib._kernels.optim_rules cimport (OptimConfig, optim_update_threads, OPT_SGD,
                                         OPT_NOTES_MOMENTUM, OPT_SKLEARN_SGD, OPT_ADAM,
                                         OPT_ADAMW, OPT_ADAGRAD, OPT_RMSPROP, NN_SGD_F32,
                                         NN_ADAM_F32, nn_explicit_f32_updates,
                                         nn_explicit_f32_on, nn_set_explicit_f32)


cdef bint wide_rule(const OptimConfig* cfg, bint f32) noexcept nogil:
    """Whether the rule of ``cfg`` on float32 (``f32``) or float64 arrays is one this
    module updates: no division, no root, or on float32 one whose quotient comes from
    float seeds (Adam, AdamW, Adagrad, RMSprop but centered)."""
    cdef int k = cfg.kind
    return (k == OPT_SGD or k == OPT_NOTES_MOMENTUM or k == OPT_SKLEARN_SGD
            or (f32 and (k == OPT_ADAM or k == OPT_ADAMW or k == OPT_ADAGRAD
                         or (k == OPT_RMSPROP and not cfg.centered))))


cdef void update_wide_f32(const OptimConfig* cfg, float* param, const float* grad,
                          float* state, Py_ssize_t n, long long step,
                          int n_threads) noexcept nogil:
    """``optim_update_threads`` on float32 arrays, from the 512-bit build (PyTorch's SGD,
    Adam and AdamW from ``optim_f32.h`` where ``optim_rules.explicit_f32`` lets them)."""
    optim_update_threads(cfg, param, grad, state, n, step, n_threads)


cdef void update_wide_f64(const OptimConfig* cfg, double* param, const double* grad,
                          double* state, Py_ssize_t n, long long step,
                          int n_threads) noexcept nogil:
    """``optim_update_threads`` on float64 arrays, from the 512-bit build."""
    optim_update_threads(cfg, param, grad, state, n, step, n_threads)


def _explicit_f32(on=None):
    """Test hook on the standalone step's float32 updates (this module's, as
    ``train._explicit_f32`` on the epoch's): returns ``(sgd, adam, count, on)``, whether
    the SGD and the Adam loop of ``optim_f32.h`` are built, how many updates
    ``optim_rules.explicit_f32`` has sent to them so far and whether it may (before
    ``on``, if given, sets it: False sends every update to the generic loop)."""
    out = (bool(NN_SGD_F32), bool(NN_ADAM_F32), nn_explicit_f32_updates,
           bool(nn_explicit_f32_on))
    if on is not None:
        nn_set_explicit_f32(1 if on else 0)
    return out
