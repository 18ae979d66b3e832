# cython: language_level=3
"""Optimizer update rules: layer 1 of every optimizer kernel.

Design note
-----------
One in-place update of ``n`` parameters, as a ``cdef inline ... noexcept nogil`` function
over raw pointers, written for the fused ``floating`` type. The Python optimizers
(``nnlib/optim.py`` via ``optim.pyx``) and the compiled training loop (``train.pyx``)
``cimport`` this file, so each rule is written exactly once.

Layout. ``state`` holds ``optim_state_slots(cfg)`` slots of ``n`` values each, slot ``k`` at
``state[k*n : (k+1)*n]``; element ``i`` of slot ``k`` is ``state[k*n + i]``:

=====================  =========================================================
kind                   slots
=====================  =========================================================
OPT_SGD                momentum buffer (only if momentum != 0)
OPT_ADAGRAD            sum of squared gradients (starts at initial_accumulator_value)
OPT_RMSPROP            square_avg; then momentum buffer (if momentum > 0); then
                       grad_avg (if centered)
OPT_ADAM, OPT_ADAMW    exp_avg, exp_avg_sq; then max_exp_avg_sq (if amsgrad)
OPT_NOTES_MOMENTUM     v, the exponentially weighted average gradient
OPT_NOTES_ADAGRAD      G, the running sum of squared gradients
OPT_SKLEARN_SGD        velocity
OPT_SKLEARN_ADAM       m (first moment), v (second moment)
=====================  =========================================================

Numerics. Every element is loaded, updated in double and rounded once on store, whatever
the array dtype; per-call scalars (bias corrections, Adagrad's decayed rate) are computed
once per call. The order of operations follows PyTorch's single-tensor code
(``torch/optim/*.py``, ``foreach=False``) and scikit-learn's ``_stochastic_optimizers.py``
so that float64 trajectories agree with theirs to a few ulps; ``lerp`` is PyTorch's
two-branch formula for the same reason.

Speed. Every variant of every rule vectorizes (gcc -O3, checked with -fopt-info-vec): each
flag combination (momentum, nesterov, centered, amsgrad, lerp's branch) runs its own loop
with the flags as literals, and there is no fmax (gcc vectorizes none on x86) and no
select on a value it must widen first. Before, RMSprop and float32 amsgrad ran scalar:
6400 float32 elements, one thread, RMSprop 19.4 -> 10.0 us, centered with momentum 36 ->
12 us, AdamW amsgrad 34 -> 14 us. What bounds them now is the double-precision divider
(about 1.55 ns per element for one sqrt and one division, 2.1 ns for Adam's two).

``optim_update_range`` updates only elements ``[lo, hi)`` (the slot stride stays ``n``), so
layer 2 can split one parameter across OpenMP threads; ``optim_update`` is the whole range.

Where the rules differ (see also ``nnlib/optim.py``):

* PyTorch SGD: ``buf <- mu buf + (1 - dampening) g`` (``buf = g`` on the first step),
  ``w <- w - lr buf`` (nesterov: ``w <- w - lr (g + mu buf)``): lr is applied outside the
  buffer, so changing lr rescales the whole step at once.
* scikit-learn SGD: ``v <- mu v - lr g``, ``w <- w + v``
  (nesterov: ``w <- w + mu v - lr g``):
  lr sits inside the velocity, so a new lr only affects new contributions; v starts at 0.
* PyTorch Adam bias-corrects eps: ``w <- w - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)``;
  scikit-learn's does not: ``w <- w - lr sqrt(bc2)/bc1 * m / (sqrt(v) + eps)``.
* the notes' momentum averages instead of accumulating: ``v <- (1 - beta) v + beta g``,
  ``w <- w - lr v`` (beta is stored in ``cfg.momentum``).
* the notes' AdaGrad puts the stabilizer under the root and counts the current gradient:
  ``G <- G + g^2``, ``w <- w - lr g / sqrt(eps + G)``; PyTorch's adds eps outside:
  ``w <- w - clr g / (sqrt(G) + eps)`` with ``clr = lr / (1 + (t - 1) lr_decay)``.

``weight_decay`` is L2 added to the gradient (``g <- g + wd w``) for every kind except
OPT_ADAMW, where it is decoupled (``w <- w (1 - lr wd)`` before the Adam step), as in
PyTorch. The Python classes for the notes' and scikit-learn's rules fix it at 0 (the
estimators add their own L2 term to the gradient).
"""
from libc.math cimport sqrt, pow
from cython cimport floating
from cython.parallel cimport prange


cdef enum OptimKind:
    OPT_SGD = 0             # torch.optim.SGD rules
    OPT_ADAGRAD = 1         # torch.optim.Adagrad
    OPT_RMSPROP = 2         # torch.optim.RMSprop
    OPT_ADAM = 3            # torch.optim.Adam (amsgrad flag)
    OPT_ADAMW = 4           # torch.optim.AdamW
    OPT_NOTES_MOMENTUM = 5  # the notes: v <- (1-beta) v + beta g ; w <- w - lr v
    OPT_NOTES_ADAGRAD = 6   # the notes' AdaGrad with its stabilizer under the root
    OPT_SKLEARN_SGD = 7     # scikit-learn's SGDOptimizer (v <- mu v - lr g; w += v)
    OPT_SKLEARN_ADAM = 8    # scikit-learn's AdamOptimizer (lr_t bias-corrected, eps not)


cdef struct OptimConfig:
    int kind
    double lr, momentum, dampening, weight_decay, alpha, eps, beta1, beta2, lr_decay
    double initial_accumulator_value
    int nesterov, centered, amsgrad


cdef inline int optim_state_slots(const OptimConfig* cfg) noexcept nogil:
    """Number of n-length state slots the rule of ``cfg`` needs (0..3)."""
    cdef int k = cfg.kind
    if k == OPT_SGD:
        return 1 if cfg.momentum != 0.0 else 0
    if k == OPT_RMSPROP:
        return 1 + (1 if cfg.momentum > 0.0 else 0) + (1 if cfg.centered else 0)
    if k == OPT_ADAM or k == OPT_ADAMW:
        return 3 if cfg.amsgrad else 2
    if k == OPT_SKLEARN_ADAM:
        return 2
    return 1        # ADAGRAD, NOTES_MOMENTUM, NOTES_ADAGRAD, SKLEARN_SGD


cdef inline double _lerp(double start, double end, bint from_end,
                         double c) noexcept nogil:
    # PyTorch's lerp(start, end, weight), whose branch on weight < 0.5 keeps the result
    # exact at weight 0 and 1, with that branch taken once per call instead of per element
    # (``_lerp_coef``): start + weight (end - start), or end - (end - start)(1 - weight)
    # written as end + c (end - start) with c = -(1 - weight) (the same roundings).
    # ``from_end`` is always a literal at the call (a select of a float32 value widened
    # to double is not if-converted by gcc, and the loop would stay scalar).
    return (end if from_end else start) + c * (end - start)


cdef inline double _lerp_coef(double weight, bint* from_end) noexcept nogil:
    from_end[0] = not (weight < 0.5)
    return weight if weight < 0.5 else -(1.0 - weight)


cdef inline double _l2(double g, double p, double wd) noexcept nogil:
    # Weight decay as the gradient of the L2 penalty wd/2 |w|^2 (all kinds but AdamW).
    # Branch-free (wd = 0 adds an exact 0): a conditional FP add would stop GCC from
    # vectorizing the loops under its default -ftrapping-math.
    return g + wd * p


# ---------------------------------------------------------------------------------------
# One function per rule. Their bint flags are always passed as literals (see
# optim_update_range), so once inlined each loop holds one variant of the rule and no
# branch: the vectorizer handles it. With the flags tested inside one shared loop, gcc
# unswitched some combinations and left others (every RMSprop, Adam with amsgrad)
# scalar.
# ---------------------------------------------------------------------------------------

cdef inline void _sgd(floating* param, const floating* grad, floating* s0, Py_ssize_t lo,
                      Py_ssize_t hi, double lr, double wd, double mu, double damp,
                      bint momentum, bint first, bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef double g, p, buf
    for i in range(lo, hi):
        p = param[i]
        g = _l2(grad[i], p, wd)
        if momentum:
            if first:
                buf = g                                 # PyTorch: buffer = clone(grad)
            else:
                buf = mu * s0[i] + (1.0 - damp) * g
            s0[i] = <floating>buf
            buf = s0[i]                     # PyTorch reads back the stored buffer
            g = g + mu * buf if nesterov else buf
        param[i] = <floating>(p - lr * g)


cdef inline void _adagrad(floating* param, const floating* grad, floating* s0,
                          Py_ssize_t lo, Py_ssize_t hi, double decay, double wd,
                          double eps) noexcept nogil:
    cdef Py_ssize_t i
    cdef double g, p
    for i in range(lo, hi):
        p = param[i]
        g = _l2(grad[i], p, wd)
        s0[i] = <floating>(s0[i] + g * g)               # sum of squares
        param[i] = <floating>(p - decay * (g / (sqrt(<double>s0[i]) + eps)))


cdef inline void _rmsprop(floating* param, const floating* grad, floating* s0,
                          floating* s1, floating* ga, Py_ssize_t lo, Py_ssize_t hi,
                          double lr, double wd, double eps, double alpha, double mu,
                          double c, bint has_mom, bint centered,
                          bint from_end) noexcept nogil:
    # c, from_end: _lerp_coef(1 - alpha) (grad_avg's lerp; only used when centered)
    cdef Py_ssize_t i
    cdef double g, p, s, a, denom
    for i in range(lo, hi):
        p = param[i]
        g = _l2(grad[i], p, wd)
        s0[i] = <floating>(alpha * s0[i] + (1.0 - alpha) * g * g)   # addcmul order
        s = s0[i]
        if centered:
            ga[i] = <floating>_lerp(ga[i], g, from_end, c)
            a = ga[i]
            # s >= a^2 holds exactly (Cauchy-Schwarz on the two averages) but may
            # round below 0; PyTorch would return NaN there, we clamp. A select, not
            # fmax: gcc vectorizes no fmax on x86 (and this keeps NaN, as np.maximum).
            s = s - a * a
            s = 0.0 if s < 0.0 else s
        denom = sqrt(s) + eps
        if has_mom:
            s1[i] = <floating>(mu * s1[i] + g / denom)
            param[i] = <floating>(p - lr * s1[i])
        else:
            param[i] = <floating>(p - lr * (g / denom))


cdef inline void _adam(floating* param, const floating* grad, floating* s0, floating* s1,
                       floating* s2, Py_ssize_t lo, Py_ssize_t hi, double step_size,
                       double bc2_sqrt, double eps, double b1, double b2, double shrink,
                       double l2, double c, bint amsgrad, bint from_end) noexcept nogil:
    # c, from_end: _lerp_coef(1 - beta1) (exp_avg's lerp)
    cdef Py_ssize_t i
    cdef double g, p, v, denom
    cdef floating vf, vm
    for i in range(lo, hi):
        p = <floating>(param[i] * shrink)   # PyTorch stores the shrunk w first
        g = grad[i] + l2 * p
        s0[i] = <floating>_lerp(s0[i], g, from_end, c)              # exp_avg
        s1[i] = <floating>(b2 * s1[i] + (1.0 - b2) * g * g)         # exp_avg_sq
        vf = s1[i]
        if amsgrad:
            # max_exp_avg_sq = maximum(max_exp_avg_sq, exp_avg_sq) as a select in the
            # array dtype (gcc vectorizes neither fmax nor a select whose operand it has
            # to widen); a NaN in exp_avg_sq is kept (it stays NaN in every later step,
            # so max_exp_avg_sq never holds a NaN that the select could drop)
            vm = s2[i]
            vf = vm if vm >= vf else vf
            s2[i] = vf
        v = vf
        denom = sqrt(v) / bc2_sqrt + eps
        param[i] = <floating>(p - step_size * (s0[i] / denom))


cdef inline void _sklearn_sgd(floating* param, const floating* grad, floating* s0,
                              Py_ssize_t lo, Py_ssize_t hi, double lr, double wd,
                              double mu, bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef double g, p
    for i in range(lo, hi):
        p = param[i]
        g = _l2(grad[i], p, wd)
        s0[i] = <floating>(mu * s0[i] - lr * g)         # v <- mu v - lr g
        if nesterov:
            param[i] = <floating>(p + (mu * s0[i] - lr * g))
        else:
            param[i] = <floating>(p + s0[i])


cdef inline void optim_update_range(const OptimConfig* cfg, floating* param,
                                    const floating* grad, floating* state, Py_ssize_t n,
                                    long long step, Py_ssize_t lo,
                                    Py_ssize_t hi) noexcept nogil:
    """Update elements ``lo <= i < hi`` of ``param`` (and their state) by one step.

    ``state[k*n + i]`` is element ``i`` of slot ``k``; ``step`` is the 1-based count of
    updates including this one. ``grad`` is not modified. Each flag combination of a
    rule calls its loop with the flags as literals (see the functions above).
    """
    cdef Py_ssize_t i
    cdef int k = cfg.kind
    cdef double lr = cfg.lr, mu = cfg.momentum, wd = cfg.weight_decay, eps = cfg.eps
    cdef double b1 = cfg.beta1, b2 = cfg.beta2, alpha = cfg.alpha
    cdef double damp = cfg.dampening
    cdef bint nesterov = cfg.nesterov != 0, amsgrad = cfg.amsgrad != 0
    cdef double g, p
    cdef double step_size, bc2_sqrt, decay, lr_t, shrink, l2, c
    cdef bint from_end
    cdef floating* ga
    cdef floating* s0 = state
    cdef floating* s1 = state + n
    cdef floating* s2 = state + 2 * n
    cdef bint first = step <= 1
    cdef bint centered = cfg.centered != 0

    if k == OPT_SGD:
        if mu == 0.0:
            _sgd(param, grad, s0, lo, hi, lr, wd, mu, damp, False, False, False)
        elif first:
            if nesterov:
                _sgd(param, grad, s0, lo, hi, lr, wd, mu, damp, True, True, True)
            else:
                _sgd(param, grad, s0, lo, hi, lr, wd, mu, damp, True, True, False)
        elif nesterov:
            _sgd(param, grad, s0, lo, hi, lr, wd, mu, damp, True, False, True)
        else:
            _sgd(param, grad, s0, lo, hi, lr, wd, mu, damp, True, False, False)

    elif k == OPT_ADAGRAD:
        decay = lr / (1.0 + (step - 1) * cfg.lr_decay)     # clr of torch.optim.Adagrad
        _adagrad(param, grad, s0, lo, hi, decay, wd, eps)

    elif k == OPT_RMSPROP:
        # slots: square_avg; the momentum buffer if momentum > 0; then grad_avg
        c = _lerp_coef(1.0 - alpha, &from_end)
        ga = s2 if mu > 0.0 else s1
        if not centered:
            if mu > 0.0:
                _rmsprop(param, grad, s0, s1, ga, lo, hi, lr, wd, eps, alpha, mu, c, True,
                         False, False)
            else:
                _rmsprop(param, grad, s0, s1, ga, lo, hi, lr, wd, eps, alpha, mu, c, False,
                         False, False)
        elif mu > 0.0:
            if from_end:
                _rmsprop(param, grad, s0, s1, ga, lo, hi, lr, wd, eps, alpha, mu, c, True,
                         True, True)
            else:
                _rmsprop(param, grad, s0, s1, ga, lo, hi, lr, wd, eps, alpha, mu, c, True,
                         True, False)
        elif from_end:
            _rmsprop(param, grad, s0, s1, ga, lo, hi, lr, wd, eps, alpha, mu, c, False,
                     True, True)
        else:
            _rmsprop(param, grad, s0, s1, ga, lo, hi, lr, wd, eps, alpha, mu, c, False,
                     True, False)

    elif k == OPT_ADAM or k == OPT_ADAMW:
        step_size = lr / (1.0 - pow(b1, <double>step))
        bc2_sqrt = sqrt(1.0 - pow(b2, <double>step))
        # AdamW shrinks w before the step (decoupled decay), Adam adds wd*w to g; the
        # neutral values (factor 1, coefficient 0) are exact, so no branch is needed.
        shrink = 1.0 - lr * wd if k == OPT_ADAMW else 1.0
        l2 = 0.0 if k == OPT_ADAMW else wd
        c = _lerp_coef(1.0 - b1, &from_end)
        if amsgrad:
            if from_end:
                _adam(param, grad, s0, s1, s2, lo, hi, step_size, bc2_sqrt, eps, b1, b2,
                      shrink, l2, c, True, True)
            else:
                _adam(param, grad, s0, s1, s2, lo, hi, step_size, bc2_sqrt, eps, b1, b2,
                      shrink, l2, c, True, False)
        elif from_end:
            _adam(param, grad, s0, s1, s2, lo, hi, step_size, bc2_sqrt, eps, b1, b2,
                  shrink, l2, c, False, True)
        else:
            _adam(param, grad, s0, s1, s2, lo, hi, step_size, bc2_sqrt, eps, b1, b2,
                  shrink, l2, c, False, False)

    elif k == OPT_NOTES_MOMENTUM:
        for i in range(lo, hi):
            p = param[i]
            g = _l2(grad[i], p, wd)
            s0[i] = <floating>((1.0 - mu) * s0[i] + mu * g)  # v <- (1-beta) v + beta g
            param[i] = <floating>(p - lr * s0[i])

    elif k == OPT_NOTES_ADAGRAD:
        for i in range(lo, hi):
            p = param[i]
            g = _l2(grad[i], p, wd)
            s0[i] = <floating>(s0[i] + g * g)               # G <- G + g^2
            param[i] = <floating>(p - lr * g / sqrt(eps + s0[i]))

    elif k == OPT_SKLEARN_SGD:
        if nesterov:
            _sklearn_sgd(param, grad, s0, lo, hi, lr, wd, mu, True)
        else:
            _sklearn_sgd(param, grad, s0, lo, hi, lr, wd, mu, False)

    elif k == OPT_SKLEARN_ADAM:
        lr_t = lr * sqrt(1.0 - pow(b2, <double>step)) / (1.0 - pow(b1, <double>step))
        for i in range(lo, hi):
            p = param[i]
            g = _l2(grad[i], p, wd)
            s0[i] = <floating>(b1 * s0[i] + (1.0 - b1) * g)
            s1[i] = <floating>(b2 * s1[i] + (1.0 - b2) * (g * g))
            param[i] = <floating>(p + (-lr_t * s0[i]) / (sqrt(<double>s1[i]) + eps))


cdef inline void optim_update(const OptimConfig* cfg, floating* param, const floating* grad,
                              floating* state, Py_ssize_t n, long long step) noexcept nogil:
    """One in-place update of ``n`` parameters; see ``optim_update_range``."""
    optim_update_range(cfg, param, grad, state, n, step, 0, n)


cdef inline void optim_update_threads(const OptimConfig* cfg, floating* param,
                                      const floating* grad, floating* state, Py_ssize_t n,
                                      long long step, int n_threads) noexcept nogil:
    """``optim_update`` with the n elements cut into one contiguous chunk per thread
    (no OpenMP region at all for ``n_threads <= 1``). The rule is elementwise, so the
    result does not depend on the thread count (tests check bit equality)."""
    cdef Py_ssize_t c, lo, hi, chunks = n_threads if n_threads < n else n
    if chunks <= 1:
        optim_update_range(cfg, param, grad, state, n, step, 0, n)
        return
    for c in prange(chunks, schedule='static', num_threads=n_threads):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        optim_update_range(cfg, param, grad, state, n, step, lo, hi)
