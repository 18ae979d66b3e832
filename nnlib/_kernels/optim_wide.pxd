# cython: language_level=3
from nnlib._kernels.optim_rules cimport OptimConfig

cdef bint wide_rule(const OptimConfig* cfg, bint f32) noexcept nogil
cdef void update_wide_f32(const OptimConfig* cfg, float* param, const float* grad,
                          float* state, Py_ssize_t n, long long step,
                          int n_threads) noexcept nogil
cdef void update_wide_f64(const OptimConfig* cfg, double* param, const double* grad,
                          double* state, Py_ssize_t n, long long step,
                          int n_threads) noexcept nogil
