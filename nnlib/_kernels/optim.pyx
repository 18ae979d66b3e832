# cython: language_level=3
"""In-place optimizer steps on flat parameter buffers: layer 2 of the optimizers.

Design note
-----------
The update rules live in ``optim_rules.pxd`` (layer 1), shared with the compiled training
loop. This module is the thin loop that the Python optimizers (``nnlib/optim.py``, layer
3) call once per parameter array: it turns the optimizer's config dict into an
``OptimConfig`` struct, checks the buffer sizes (the compiled code runs without bounds
checks), releases the GIL for work worth it (``gil.pxd``) and applies the rule. The
rules without a division (SGD and its momentum variants) and float32 Adam/AdamW, Adagrad
and uncentered RMSprop run from ``optim_wide``, a build of the same rules with 512-bit
vectors, the others from this module's 256-bit build (why:
``optim_wide``'s docstring).

An optimizer step is elementwise and cheap (a few flops and loads per element), so it is
memory-bound and a thread fork/join only pays off for large arrays: the caller passes
``n_threads`` (``nnlib._threads.resolve_threads`` gives 1 below 2**15 elements). With
``n_threads > 1`` the array is cut into ``n_threads`` contiguous chunks, one per thread;
each element is updated by the same code either way, so the result does not depend on the
thread count (a test checks bit equality).

Two entry points: ``optim_step`` (one flat typed-memoryview triple; the signature of the
NumPy twin) and ``optim_step_arrays`` (every parameter of a model in one call, through the
arrays' data pointers), which ``Optimizer.step`` uses: for the small arrays of per-sample
training, fused-type dispatch and reshaping would cost more than the update itself. It
validates all arrays before touching any.

Overflow. ``optim_step_arrays`` also refuses a step that would turn finite numbers into
non-finite ones: a gradient of 1e155 (float64) or 1e20 (float32) squares to inf in the
second-moment state of Adagrad, RMSprop or Adam, after which every later update is
``g / inf = 0`` (the step silently skipped, forever) or NaN. Before writing anything it
runs the rule on copies, 256 elements at a time in stack buffers (``_dry_run``: reads
param, grad and state once, writes only to L1), and if an element whose param, gradient
and state are finite would come out non-finite it raises ``NonFiniteError`` naming the
array and the element, with every array untouched. Otherwise the real update runs as
before. The rule is elementwise, so the copy computes bitwise what the update will.
The dry run costs about two updates (bench/ measures it), so it
only runs when needed: a first pass checks that every param, gradient and state value
is at most ``_safe_bound(cfg)`` in magnitude, a bound under which no intermediate of any
rule can exceed the dtype's max (squares of at most ``(1 + M + wd M ...)^2``, steps of
at most ``lr / (1 - beta1) * (M + wd M) / eps``; see ``_safe_bound``). That pass is one
vectorized read of the arrays; values beyond it (|g| > ~1e145 in float64, ~1e13 in
float32 with the default eps) go through the dry run. Without weight decay the pass
reads no param, only the gradient and the state: a finite w moved by less than half an
ulp of the dtype's max stays finite, and without weight decay no rule reads w but to
move it (``_sgd_bound`` for PyTorch's SGD; for the other rules ``_safe_bound`` with that
margin in place of the dtype's max, which then bounds every step). The pass
compares the values' bit patterns as unsigned integers (one min reduction, cheaper
than float compares, so that it runs at the speed of the cache or memory it reads
from), four read streams at a time, over the arrays from their end backward
(``_inputs_within``), so that the update after it, which runs forward, finds its
first elements still in L2: for arrays larger than L2 the check is a second read
from L3, the guard's whole cost. How much of it L2 saves is bounded: each line of
param the update brings in evicts one the check left, so the update finds about half
of what L2 held; non-temporal loads or stores, cache-line demotes or flushes and other
block sizes keep no more of the gradient there without costing more elsewhere.
The check is not fused into the update (one pass, each block stored once found finite):
a refused step leaves every array as it was, and a block found to overflow after the
ones before it were written could not be undone (``w - lr g`` does not give back w), so
every value is read before any is written. Measured on Zen 4 (one thread, 1e6
elements, L3-resident, a copy outside nnlib): the check reads at L3's speed, about 96
GB/s, backward in 1 MiB blocks, forward, in 1, 4 or 8 streams alike (4 MB of float32
gradient in ~42 us); a fused pass that keeps the old params of each written block for
a rollback costs more than the second read (float64 SGD: 791 us with the copy, 531 with
non-temporal stores, against 346 for check then update), and a fused pass with no
rollback at all, the bound of any such scheme, runs as the update alone (265-295 us).
A rollback kept smaller than a copy (SGD: ``w = fl(w_new + lr g)`` holds for 92-99.8 %
of elements at lr 0.1-0.001, the rest need a code or their old value) is what could
remove the guard's cost on the memory-bound float64 rules; on float32 the update is
bound by its conversions, which the inverse's test would add to.
Negative squared state. The same pass also screens the state rows that hold sums or
averages of squared gradients (Adagrad's sum, RMSprop's square_avg, Adam's exp_avg_sq
and max_exp_avg_sq, scikit-learn Adam's vs: ``_squared_slots``) for a set sign bit, at
the cost of a shift, a subtraction and an and per element of those rows (``_key``). The
rules keep them >= 0; a negative one was written in place (``optimizer.state``,
``state_arrays``, a callback mid-fit) and the step takes its square root: NaN weights,
or, once later squares outweigh it, a wrong step that stays finite. A set sign bit
sends the array to the dry run, which refuses any value below 0 with NonFiniteError
naming the array, the slot and the element, before it looks for overflow. -0.0 and
negative NaNs set the bit too but pass the exact test: sqrt(-0.0) is -0.0 (IEEE 754),
so a -0.0 average adds nothing to eps, as +0.0; and a NaN state is non-finite input.
Centred RMSprop's variance ``square_avg - grad_avg**2`` is not screened: no sign bit
shows it, it needs a product and the alpha-dependent slack of rounding
(``nnlib/optim.py``'s ``_centred_slack``) per element, and the kernel clamps it to 0,
so it never gives NaN; ``Optimizer.step`` checks it once the state was handed out.
Non-finite input (a NaN gradient) is not an error here: it gives NaN in its own elements
only, as in PyTorch. ``optim_step``, the single-array kernel that mirrors the NumPy twin,
does not check.
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport isfinite, fabs, sqrt, INFINITY
from libc.float cimport DBL_MAX, FLT_MAX
from libc.string cimport memcpy
from libc.stdint cimport uint32_t, uint64_t
cimport numpy as cnp

import numpy as np

from nnlib._kernels.optim_rules cimport (OptimConfig, optim_state_slots, OPT_SGD,
                                         OPT_NOTES_MOMENTUM, OPT_SKLEARN_SGD,
                                         OPT_ADAM, OPT_ADAMW, OPT_SKLEARN_ADAM,
                                         OPT_ADAGRAD, OPT_NOTES_ADAGRAD, OPT_RMSPROP,
                                         optim_update_range, optim_update_threads,
                                         optim_update_sq, sum_squares_from)
from nnlib._kernels.optim_config cimport config_fields, config_from_dict
from nnlib._kernels.optim_wide cimport wide_rule, update_wide_f32, update_wide_f64
from nnlib._kernels.buffers cimport same_shape
from nnlib._kernels.finite cimport all_finite_ptr
from nnlib._kernels.gil cimport keeps_gil
from nnlib._validation import DTypeError, NonFiniteError, ShapeError

cnp.import_array()

# elements per dry-run block (x 4 arrays x 8 bytes: in L1); nnlib/_paths.py
from nnlib._kernels.paths cimport OPTIM_CHECK_CHUNK as CHECK_CHUNK

cdef enum:
    # bytes per array per block of the bound check (_inputs_within); only where it stops
    # early depends on it, never a result. Blocks this long keep each read stream going
    # long enough for the hardware prefetcher to run ahead of it (at 8192 elements the
    # check of a 1e7-element float32 gradient read memory at ~20 GB/s, at 1 MiB ~30),
    # and half of L2 still holds the last block read, the update's first
    WITHIN_BLOCK_BYTES = 1 << 20

# The largest step _sgd_bound lets move a finite param: below half an ulp of the
# dtype's max (2^970 for float64, 2^103 for float32), with a margin for double rounding.
cdef double SGD_MARGIN_F64 = 2.0 ** 969
cdef double SGD_MARGIN_F32 = 2.0 ** 102

# The OptimConfig fields, in struct order: nnlib/optim.py's config() returns exactly these.
CONFIG_FIELDS = config_fields()


def state_slots(dict config):
    """Number of state rows (each as long as the parameter) the rule of ``config`` keeps."""
    cdef OptimConfig cfg = config_from_dict(config)
    return optim_state_slots(&cfg)


def optim_step(dict config, floating[::1] param, const floating[::1] grad,
               floating[:, ::1] state, long long step, int n_threads):
    """Apply one update of the rule ``config`` to ``param`` in place.

    Parameters
    ----------
    config : dict
        The ``OptimConfig`` fields (``CONFIG_FIELDS``), as ``Optimizer.config()`` returns.
    param : float32 or float64 array, shape (n,)
        Flat, C-contiguous, writable view of the parameter; updated in place.
    grad : same dtype, shape (n,)
        Its gradient; not modified.
    state : same dtype, shape (slots, n)
        The rule's state rows (``state_slots(config)`` of them); updated in place.
    step : int
        1-based number of this update (bias correction, lr_decay, first momentum step).
    n_threads : int
        OpenMP threads (>= 1).
    """
    cdef OptimConfig cfg = config_from_dict(config)
    cdef Py_ssize_t n = param.shape[0]
    cdef int slots = optim_state_slots(&cfg)
    cdef floating* s = NULL
    if grad.shape[0] != n:
        raise ValueError(f"grad has {grad.shape[0]} elements, param has {n}")
    if state.shape[0] != slots or (slots > 0 and state.shape[1] != n):
        raise ValueError(f"state must have shape ({slots}, {n}); got "
                         f"({state.shape[0]}, {state.shape[1]})")
    if step < 1:
        raise ValueError(f"step must be >= 1; got {step}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1; got {n_threads}")
    if n == 0:
        return
    if slots > 0:
        s = &state[0, 0]
    if keeps_gil(n, n_threads):
        _run(&cfg, &param[0], &grad[0], s, n, step, n_threads)
    else:
        with nogil:
            _run(&cfg, &param[0], &grad[0], s, n, step, n_threads)


def _step_sum_squares(dict config, floating[::1] param, const floating[::1] grad,
                      floating[:, ::1] state, long long step):
    """Test hook: ``optim_step`` on one thread through ``optim_update_sq``, returning
    ``(its sum of the new squares, sum_squares_from(0, param) after the step)``, which
    the training loop relies on being bitwise equal."""
    cdef OptimConfig cfg = config_from_dict(config)
    cdef Py_ssize_t n = param.shape[0]
    cdef int slots = optim_state_slots(&cfg)
    cdef double fused = 0.0, plain = 0.0
    if grad.shape[0] != n or state.shape[0] != slots or (slots > 0 and state.shape[1] != n):
        raise ValueError("param, grad and state sizes do not match")
    if n == 0 or step < 1:
        raise ValueError("need n >= 1 and step >= 1")
    with nogil:
        fused = optim_update_sq(&cfg, &param[0], &grad[0],
                                &state[0, 0] if slots > 0 else NULL, n, step, 0.0)
        plain = sum_squares_from(0.0, &param[0], n)
    return fused, plain


cdef extern from "penalty.h" nogil:
    enum: NN_SQ_FUSED

# whether the L2 penalty's sum fuses each square into its addition (an FMA build) or
# rounds it first: the tests' exact model of the sum's order needs to know
_SQ_FUSED = bool(NN_SQ_FUSED)


def _sum_squares(const floating[::1] a not None, double s=0.0):
    """Test hook: ``sum_squares_from(s, a, len(a))``, the L2 penalty's sum of squares in
    penalty.h's blocked order (what the training loop reports), as a float."""
    cdef double out
    with nogil:
        out = sum_squares_from(s, &a[0], a.shape[0]) if a.shape[0] > 0 else s
    return out


def _step_narrow(dict config, floating[::1] param, const floating[::1] grad,
                 floating[:, ::1] state, long long step):
    """Test hook: ``optim_step`` on one thread through this module's own (256-bit) build
    of the rules, whatever the rule; ``optim_step`` sends the rules without a division
    to ``optim_wide``'s, and the two must agree bit for bit."""
    cdef OptimConfig cfg = config_from_dict(config)
    cdef Py_ssize_t n = param.shape[0]
    cdef int slots = optim_state_slots(&cfg)
    if grad.shape[0] != n or state.shape[0] != slots or (slots > 0 and state.shape[1] != n):
        raise ValueError("param, grad and state sizes do not match")
    if n == 0 or step < 1:
        raise ValueError("need n >= 1 and step >= 1")
    with nogil:     # the generic loop alone (optim_update_* may take optim_f32.h's)
        optim_update_range(&cfg, &param[0], &grad[0],
                           &state[0, 0] if slots > 0 else NULL, n, step, 0, n)


def _bound_check(const floating[::1] param, const floating[::1] grad,
                 const floating[:, ::1] state, double bound, bint with_param,
                 int squared=0):
    """Test hook: ``_inputs_within`` on one thread, i.e. whether every value of ``grad``,
    of each state row and (``with_param``) of ``param`` is at most ``bound`` (>= 0) in
    magnitude, NaN passing, and no state row whose bit is set in ``squared`` has a sign
    bit set; the tests compare it with NumPy's comparisons."""
    cdef Py_ssize_t n = grad.shape[0]
    cdef bint inside = True
    if param.shape[0] != n or (state.shape[0] > 0 and state.shape[1] != n):
        raise ValueError("param, grad and state sizes do not match")
    if state.shape[0] > 3 or not bound >= 0.0:
        raise ValueError("need at most 3 state rows and bound >= 0")
    if squared < 0 or squared >> state.shape[0]:
        raise ValueError("squared must be a mask of the state rows")
    bound += 0.0            # -0.0 -> +0.0: the check compares bit patterns
    if n > 0:
        with nogil:
            inside = _inputs_within(&param[0], &grad[0],
                                    &state[0, 0] if state.shape[0] > 0 else NULL, n, n,
                                    state.shape[0], squared, <floating>bound, with_param)
    return inside


cdef void _run(const OptimConfig* cfg, floating* param, const floating* grad,
               floating* state, Py_ssize_t n, long long step, int n_threads) noexcept nogil:
    # one contiguous chunk per thread (the update is elementwise); the rules without a
    # division, and float32 Adam, Adagrad and uncentered RMSprop, run from optim_wide's
    # 512-bit build (see its docstring)
    if wide_rule(cfg, floating is float):
        if floating is float:
            update_wide_f32(cfg, param, grad, state, n, step, n_threads)
        else:
            update_wide_f64(cfg, param, grad, state, n, step, n_threads)
    else:
        optim_update_threads(cfg, param, grad, state, n, step, n_threads)


ctypedef fused key_t:
    uint32_t
    uint64_t

# _min_key*: ``m`` lowered to the least key ``(x & mag) - lo`` of the bit patterns of
# the floats in ``a[:n]`` (and ``b[:n]``...), see _inputs_within: one and, one
# subtraction and one unsigned min per element, which GCC vectorizes. (The float
# compares ``x > bound or x < -bound`` into masks and the or of their results bound the
# loop at about 3 cycles per vector, slower than L2 can feed it.)


cdef inline key_t _key(key_t x, key_t mag, key_t lo, bint sign) noexcept nogil:
    # the key ``(x & mag) - lo`` of _inputs_within; with ``sign`` (a squared-gradient
    # slot, which is never negative) 0 wherever x's sign bit is set, a key every bound
    # fails: ``(x >> top) - 1`` is 0 there and all ones elsewhere (a shift, a
    # subtraction and an and; ``sign`` is a literal at each inlined loop, so the other
    # arrays' loops carry none of it)
    cdef key_t k = (x & mag) - lo
    if sign:
        k = k & ((x >> (8 * sizeof(key_t) - 1)) - 1)
    return k


cdef inline key_t _min_key(const key_t* a, Py_ssize_t n, key_t mag, key_t lo,
                           key_t m, bint sign) noexcept nogil:
    cdef Py_ssize_t i
    cdef key_t k
    for i in range(n):
        k = _key(a[i], mag, lo, sign)
        m = k if k < m else m
    return m


cdef inline key_t _min_key2(const key_t* a, const key_t* b, Py_ssize_t n, key_t mag,
                            key_t lo, key_t m, bint sign) noexcept nogil:
    cdef Py_ssize_t i
    cdef key_t k, j
    for i in range(n):
        k = _key(a[i], mag, lo, sign)
        j = _key(b[i], mag, lo, sign)
        k = j if j < k else k
        m = k if k < m else m
    return m


cdef inline key_t _min_key4(const key_t* a, const key_t* b, const key_t* c,
                            const key_t* d, Py_ssize_t n, key_t mag, key_t lo, key_t m,
                            bint sign) noexcept nogil:
    cdef Py_ssize_t i
    cdef key_t k, j, u, v
    for i in range(n):
        k = _key(a[i], mag, lo, sign)
        j = _key(b[i], mag, lo, sign)
        u = _key(c[i], mag, lo, sign)
        v = _key(d[i], mag, lo, sign)
        k = j if j < k else k
        u = v if v < u else u
        k = u if u < k else k
        m = k if k < m else m
    return m


cdef inline key_t _min_keys(const key_t** arrays, int count, Py_ssize_t lo, Py_ssize_t n,
                     key_t mag, key_t low, key_t m, bint sign) noexcept nogil:
    """``m`` lowered to the least key of elements ``[lo, lo + n)`` of the ``count``
    arrays, read as four streams at a time (a check of one array reads the quarters of
    its block side by side, of two arrays their halves): one read stream alone leaves
    most of the bandwidth of L3 and memory unused. A check of three passes one array
    twice (its second read hits L1). ``sign``: the arrays are squared-gradient slots,
    whose set sign bits count as out of bounds (``_key``)."""
    cdef int k = 0
    cdef Py_ssize_t q
    cdef const key_t* a
    cdef const key_t* b
    while count - k >= 3:
        m = _min_key4(arrays[k] + lo, arrays[k + 1] + lo, arrays[k + 2] + lo,
                      arrays[k + 3 if count - k > 3 else k + 2] + lo, n, mag, low, m, sign)
        k += 4
    if count - k == 2:
        a = arrays[k] + lo
        b = arrays[k + 1] + lo
        q = n // 2
        m = _min_key4(a, a + q, b, b + q, q, mag, low, m, sign)
        m = _min_key2(a + 2 * q, b + 2 * q, n - 2 * q, mag, low, m, sign)
    elif count - k == 1:
        a = arrays[k] + lo
        q = n // 4
        m = _min_key4(a, a + q, a + 2 * q, a + 3 * q, q, mag, low, m, sign)
        m = _min_key(a + 4 * q, n - 4 * q, mag, low, m, sign)
    return m


cdef bint _inputs_within(const floating* param, const floating* grad,
                         const floating* state, Py_ssize_t m, Py_ssize_t stride, int slots,
                         int squared, floating bound, bint with_param) noexcept nogil:
    """Elements ``[0, m)`` of grad, of each state row (stride ``stride``) and, if
    ``with_param``, of param are at most ``bound`` (>= 0) in magnitude; a NaN passes (a
    NaN gradient is not refused here), an inf does not. The state rows whose bit is set
    in ``squared`` (``_squared_slots``) must also have no sign bit set: a negative sum or
    average of squared gradients fails, and so do -0.0 and a negative NaN, which the
    dry run then lets through (the check is a screen, the dry run the exact test).

    It compares bit patterns: with ``B`` the bits of ``bound`` and ``A`` those of
    ``|x|``, ``|x| > bound`` and x not NaN is ``B < A <= bits(inf)``, i.e. the unsigned
    difference ``A - B - 1`` is at most ``bits(inf) - B - 1`` (for ``A <= B`` it wraps
    to at least 2^31, resp. 2^63, above that). So every value passes when the least
    difference exceeds it: an unsigned min reduction (``_min_keys``). A squared slot's
    key is 0 where the sign bit is set (``_key``), which fails every bound.

    The blocks of ``WITHIN_BLOCK_BYTES`` per array run from the end backward: the update that
    follows starts at element 0, which this pass thus leaves in L2 (an array larger
    than L2 is otherwise read from L3 twice). Stops at the first block out of
    bounds."""
    # the arrays' bits read as unsigned integers of their size (read only, never
    # written through these pointers): the plain ones first, then the squared slots
    cdef const uint32_t* a32[5]
    cdef const uint64_t* a64[5]
    cdef const floating* arrays[5]
    cdef Py_ssize_t lo, hi = m, block = WITHIN_BLOCK_BYTES // sizeof(floating)
    cdef int k, count = 0, plain
    cdef uint32_t b32, m32 = 0xFFFFFFFF, mag32 = 0x7FFFFFFF, inf32 = 0x7F800000
    cdef uint64_t b64, m64 = 0xFFFFFFFFFFFFFFFF, mag64 = 0x7FFFFFFFFFFFFFFF
    cdef uint64_t inf64 = 0x7FF0000000000000
    if not bound < INFINITY:
        if squared == 0:
            return True         # nothing exceeds an infinite bound (nor a NaN one)
        # the sign screen still applies: under the largest finite bound an inf fails
        # too, which costs a dry run that finds nothing, never a refusal
        bound = FLT_MAX if floating is float else DBL_MAX
    arrays[count] = grad
    count += 1
    if with_param:
        arrays[count] = param
        count += 1
    for k in range(slots):
        if not (squared >> k) & 1:
            arrays[count] = state + k * stride
            count += 1
    plain = count
    for k in range(slots):
        if (squared >> k) & 1:
            arrays[count] = state + k * stride
            count += 1
    for k in range(count):
        if floating is float:
            a32[k] = <const uint32_t*>arrays[k]
        else:
            a64[k] = <const uint64_t*>arrays[k]
    if floating is float:
        memcpy(&b32, &bound, sizeof(bound))
    else:
        memcpy(&b64, &bound, sizeof(bound))
    while hi > 0:
        lo = hi - block if hi > block else 0
        if floating is float:
            m32 = _min_keys(a32, plain, lo, hi - lo, mag32, b32 + 1, m32, False)
            m32 = _min_keys(&a32[plain], count - plain, lo, hi - lo, mag32, b32 + 1, m32,
                            True)
            if m32 <= inf32 - b32 - 1:
                return False
        else:
            m64 = _min_keys(a64, plain, lo, hi - lo, mag64, b64 + 1, m64, False)
            m64 = _min_keys(&a64[plain], count - plain, lo, hi - lo, mag64, b64 + 1, m64,
                            True)
            if m64 <= inf64 - b64 - 1:
                return False
        hi = lo
    return True


cdef int _squared_slots(const OptimConfig* c) noexcept nogil:
    """Bit k set: state slot k of rule ``c`` is a sum or average of squared gradients
    (optim_rules' slot table), never negative, whose square root the step takes.
    nnlib/optim.py's _SQUARED_SLOTS names the same slots."""
    cdef int k = c.kind
    if k == OPT_ADAGRAD or k == OPT_NOTES_ADAGRAD or k == OPT_RMSPROP:
        return 1                                    # sum, G, square_avg
    if k == OPT_ADAM or k == OPT_ADAMW:
        return 6 if c.amsgrad else 2                # exp_avg_sq, max_exp_avg_sq
    if k == OPT_SKLEARN_ADAM:
        return 2                                    # vs
    return 0


def squared_slots(dict config):
    """The state rows of rule ``config`` that hold sums or averages of squared
    gradients (never negative): a list of row indices, as the NumPy twin's."""
    cdef OptimConfig cfg = config_from_dict(config)
    cdef int mask = _squared_slots(&cfg)
    return [k for k in range(optim_state_slots(&cfg)) if (mask >> k) & 1]


cdef double _safe_bound(const OptimConfig* c, double big) noexcept nogil:
    """M such that one step of rule ``c`` on params, gradients and states all at most M
    in magnitude keeps every intermediate below ``big`` (0: no such M is known).

    With G = M (1 + wd)(1 + lr wd) + M bounding the effective gradient (L2 or AdamW's
    shrink included) and u = 1 + M + G, every rule's values are at most
    16 K u^2 (squares: states, g^2, a^2) or 16 K (1 + L) E u (steps: lr g / eps and
    momentum buffers), with L = lr / (1 - beta1) (Adam's bias correction at t = 1 is the
    largest), E = max(1, 1/eps, 1/sqrt(eps)) for the rules that divide, and K a product
    of (1 + |coefficient|) over momentum, dampening, alpha and the betas (at most 32
    for valid settings). Both terms are kept below big / 2."""
    cdef int k = c.kind
    cdef double lr = fabs(c.lr), wd = fabs(c.weight_decay), L = lr, E = 1.0, K, u
    if k == OPT_ADAM or k == OPT_ADAMW or k == OPT_SKLEARN_ADAM:
        if not c.beta1 < 1.0:
            return 0.0
        L = lr / (1.0 - c.beta1)
    if not (k == OPT_SGD or k == OPT_NOTES_MOMENTUM or k == OPT_SKLEARN_SGD):
        if not c.eps > 0.0:
            return 0.0
        E = 1.0 / c.eps
        if 1.0 / sqrt(c.eps) > E:
            E = 1.0 / sqrt(c.eps)
        if E < 1.0:
            E = 1.0
    K = ((1.0 + fabs(c.momentum)) * (1.0 + fabs(c.dampening)) * (1.0 + fabs(c.alpha))
         * (1.0 + fabs(c.beta1)) * (1.0 + fabs(c.beta2)))
    u = sqrt(big / (32.0 * K))
    if big / (32.0 * K * (1.0 + L) * E) < u:
        u = big / (32.0 * K * (1.0 + L) * E)
    u = (u - 1.0) / (2.0 + (1.0 + wd) * (1.0 + lr * wd))
    return u if u > 0.0 else 0.0     # NaN (lr = inf...) gives 0 too: always dry-run


cdef double _sgd_bound(const OptimConfig* c, double big, double margin) noexcept nogil:
    """M such that one step of PyTorch's SGD without weight decay, on a gradient and a
    momentum buffer both at most M in magnitude, keeps the buffer below ``big / 2`` and
    moves every finite param by at most ``margin`` (0: no such M is known, or the rule
    is another).

    Unlike ``_safe_bound`` this bounds no param: ``w - x`` computed in double and
    stored in the dtype is finite for every finite w once ``|x| <= margin``, with
    ``margin`` below half an ulp of the dtype's max (2^969 for float64: the exact
    difference stays under DBL_MAX + 2^970, which rounds to DBL_MAX; 2^102 for
    float32: the double result stays at most FLT_MAX + 2^102, which rounds to FLT_MAX).
    So the check need not read the params. With A = 1 + |mu| + |1 - dampening|, the
    buffer (g at the first step, ``mu b + (1 - dampening) g`` after) is at most A M and
    the step ``lr b`` (nesterov ``lr (g + mu b)``) at most lr (1 + |mu|) A M; both are
    kept below half their limit, which covers the roundings."""
    cdef double lr = c.lr, mu = c.momentum, a, m
    if c.kind != OPT_SGD or c.weight_decay != 0.0:
        return 0.0
    if not (isfinite(lr) and isfinite(mu) and isfinite(c.dampening)):
        return 0.0
    a = 1.0 + fabs(mu) + fabs(1.0 - c.dampening)
    m = big / (2.0 * a)
    if fabs(lr) * (1.0 + fabs(mu)) * a * m > margin / 2.0:
        m = margin / (2.0 * fabs(lr) * (1.0 + fabs(mu)) * a)
    return m if m > 0.0 else 0.0


cdef bint _within(const floating* param, const floating* grad, const floating* state,
                  Py_ssize_t n, int slots, int squared, double bound, bint with_param,
                  int n_threads) noexcept nogil:
    """Every value checked is within ``bound`` (then the dry run cannot find anything;
    the params are checked only ``with_param``, see ``_sgd_bound``). Split over
    ``n_threads`` like the update (contiguous chunks)."""
    cdef floating b = <floating>bound
    cdef Py_ssize_t c, lo, hi, chunks = n_threads if n_threads < n else 1
    cdef int out = 0
    if chunks <= 1:         # no OpenMP region at all (as optim_update_threads)
        return _inputs_within(param, grad, state, n, n, slots, squared, b, with_param)
    for c in prange(chunks, schedule='static', num_threads=n_threads):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        out += not _inputs_within(param + lo, grad + lo, state + lo, hi - lo, n, slots,
                                  squared, b, with_param)
    return out == 0


cdef bint _element_finite(const floating* p, const floating* s, Py_ssize_t i,
                          Py_ssize_t stride, int slots) noexcept nogil:
    """p[i] and the state s[k * stride + i] of every slot k are finite."""
    cdef int k
    if not isfinite(p[i]):
        return False
    for k in range(slots):
        if not isfinite(s[k * stride + i]):
            return False
    return True


cdef Py_ssize_t _dry_run(const OptimConfig* cfg, const floating* param,
                         const floating* grad, const floating* state, Py_ssize_t n,
                         long long step, int slots) noexcept nogil:
    """Index of the first element that the step would make non-finite (param or state)
    although its param, gradient and state are finite; -1 if none. Runs the rule on
    copies, CHECK_CHUNK elements at a time, and writes nothing else."""
    cdef floating p[CHECK_CHUNK]
    cdef floating s[3 * CHECK_CHUNK]
    cdef Py_ssize_t blk, lo, m, i
    cdef int k
    for blk in range((n + CHECK_CHUNK - 1) // CHECK_CHUNK):
        lo = blk * CHECK_CHUNK
        m = CHECK_CHUNK if n - lo > CHECK_CHUNK else n - lo
        memcpy(p, param + lo, m * sizeof(floating))
        for k in range(slots):
            memcpy(s + k * m, state + k * n + lo, m * sizeof(floating))
        optim_update_range(cfg, p, grad + lo, s, m, step, 0, m)
        if all_finite_ptr(p, m) and all_finite_ptr(s, slots * m):
            continue                                    # the usual case
        for i in range(m):
            if (not _element_finite(p, s, i, m, slots)
                    and isfinite(grad[lo + i])
                    and _element_finite(param + lo, state + lo, i, n, slots)):
                return lo + i
    return -1


def _swapped_param_message(i, p):
    return (f"params[{i}] has non-native byte order ({p.dtype.str}); the optimizer "
            f"updates it in place in the machine's order, so it must be native: use "
            f"p = p.astype(p.dtype.newbyteorder('=')) and pass p")


def optim_step_arrays(dict config, list params, list grads, list states, long long step,
                      int n_threads, Py_ssize_t parallel_min_size, object counters=None):
    """One update of every parameter array; the fast path of ``Optimizer.step``.

    Validates every array first (so an error leaves all of them untouched), then updates
    each in place. Refuses (NonFiniteError, nothing updated) a step that would turn
    finite values non-finite, and a squared-gradient state row holding a negative
    value (see the design note). Works on the arrays' data pointers (any shape, C-contiguous), avoiding
    the per-array cost of reshaping and of fused-type dispatch, which for the small
    arrays of per-sample training is larger than the update itself.

    Parameters
    ----------
    config : dict
        ``Optimizer.config()``.
    params : list of ndarray
        float32/float64, C-contiguous, writable; updated in place.
    grads : list of array_like
        Same shapes and dtypes; copied to C order if needed; not modified.
    states : list of ndarray
        ``(slots, param.size)`` each, the params' dtype; updated in place.
    step : int
        1-based number of this update.
    n_threads : int
        Threads for arrays of at least ``parallel_min_size`` elements (others use 1).
    parallel_min_size : int
    counters : list, optional
        Objects whose attribute ``step`` is set to ``step`` once every array is updated,
        inside this call (``Optimizer.step`` passes the arrays' state entries). Python
        sees a pending interrupt only between bytecodes, i.e. after this call returns:
        the counts are then already there, so the weights that moved and their step
        counts always agree.
    """
    cdef OptimConfig cfg = config_from_dict(config)
    cdef int slots = optim_state_slots(&cfg), typ, nt
    cdef Py_ssize_t i, n, k = len(params)
    cdef cnp.ndarray p, g, st
    if len(grads) != k or len(states) != k:
        raise ValueError(f"got {k} params, {len(grads)} grads and {len(states)} states")
    if step < 1 or n_threads < 1:
        raise ValueError(f"step and n_threads must be >= 1; got {step}, {n_threads}")
    checked = []
    for i in range(k):
        if not isinstance(params[i], cnp.ndarray):
            raise TypeError(f"params[{i}] must be a NumPy array (updated in place); got "
                            f"{type(params[i]).__name__}")
        p = params[i]
        typ = cnp.PyArray_TYPE(p)
        if typ != cnp.NPY_DOUBLE and typ != cnp.NPY_FLOAT:
            raise DTypeError(f"params[{i}] must be float32 or float64; got {p.dtype}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(p):
            raise ValueError(f"params[{i}] must be C-contiguous to be updated in place "
                             "(np.ascontiguousarray makes a copy the model would not see)")
        if not cnp.PyArray_ISWRITEABLE(p):
            raise ValueError(f"params[{i}] is read-only; the optimizer updates it in place")
        if not cnp.PyArray_ISNOTSWAPPED(p):
            raise DTypeError(_swapped_param_message(i, p))
        g = grads[i] if isinstance(grads[i], cnp.ndarray) else np.asarray(grads[i])
        if cnp.PyArray_TYPE(g) != typ:
            raise DTypeError(f"grads[{i}] is {g.dtype} but params[{i}] is {p.dtype}; "
                             "they must have the same dtype")
        if not same_shape(p, g):
            raise ShapeError(f"grads[{i}] has shape {(<object>g).shape} but params[{i}] "
                             f"has shape {(<object>p).shape}")
        if not cnp.PyArray_ISNOTSWAPPED(g):     # read as native: a converted copy
            g = np.ascontiguousarray(g, dtype=(<object>g).dtype.newbyteorder("="))
        elif not cnp.PyArray_IS_C_CONTIGUOUS(g):
            g = np.ascontiguousarray(g)
        n = cnp.PyArray_SIZE(p)
        st = states[i]
        if (cnp.PyArray_NDIM(st) != 2 or cnp.PyArray_DIMS(st)[0] != slots
                or cnp.PyArray_DIMS(st)[1] != n):
            raise ShapeError(f"params[{i}] has {n} elements but its optimizer state has "
                             f"shape {(<object>st).shape}; expected ({slots}, {n}) (call "
                             "reset() to start over)")
        if cnp.PyArray_TYPE(st) != typ:
            raise DTypeError(f"params[{i}] is {p.dtype} but its optimizer state is "
                             f"{st.dtype} (call reset() to start over)")
        if not (cnp.PyArray_IS_C_CONTIGUOUS(st) and cnp.PyArray_ISWRITEABLE(st)):
            raise ValueError(f"the optimizer state of params[{i}] must be C-contiguous and "
                             "writable")
        checked.append(g)
    # all arrays before any update: a refused step writes nothing. The bound checks run
    # from the last array back, as each runs from its end back (_inputs_within); the
    # dry runs, where needed, from the first, so the first array to overflow is named
    dry = [False] * k
    for i in range(k - 1, -1, -1):
        n = cnp.PyArray_SIZE(params[i])
        dry[i] = _needs_dry_run(&cfg, params[i], checked[i], states[i], slots,
                                n_threads if n >= parallel_min_size else 1)
    for i in range(k):
        if dry[i]:
            _refuse_overflow(&cfg, params[i], checked[i], states[i], i, step, slots)
    for i in range(k):
        p = params[i]
        g = checked[i]
        st = states[i]
        n = cnp.PyArray_SIZE(p)
        if n == 0:
            continue
        nt = n_threads if n >= parallel_min_size else 1
        if cnp.PyArray_TYPE(p) == cnp.NPY_DOUBLE:
            _run_array(&cfg, <double*>cnp.PyArray_DATA(p),
                       <const double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(st),
                       n, step, nt)
        else:
            _run_array(&cfg, <float*>cnp.PyArray_DATA(p), <const float*>cnp.PyArray_DATA(g),
                       <float*>cnp.PyArray_DATA(st), n, step, nt)
    if counters is not None:
        for c in counters:
            c.step = step


cdef bint _needs_dry_run(const OptimConfig* cfg, cnp.ndarray p, cnp.ndarray g,
                         cnp.ndarray st, int slots, int nt):
    """Whether ``params[i]`` has a value beyond the bound under which its step cannot
    overflow (see the design note), i.e. whether its dry run must run."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef bint f64 = cnp.PyArray_TYPE(p) == cnp.NPY_DOUBLE, inside, with_param
    cdef double big = DBL_MAX if f64 else FLT_MAX
    cdef double margin = SGD_MARGIN_F64 if f64 else SGD_MARGIN_F32
    cdef double bound = _sgd_bound(cfg, big, margin)
    cdef int squared = _squared_slots(cfg)
    if n == 0:
        return False
    with_param = bound == 0.0 and cfg.weight_decay != 0.0
    if bound == 0.0:
        # without weight decay a rule reads its param only to move it (p - step, or
        # p + v): with every step and state kept below margin / 2, a finite param stays
        # finite whatever its size (see _sgd_bound), so the params need no check
        bound = _safe_bound(cfg, big if with_param else margin)
    # a negative squared-gradient state (written in place: its square root is NaN, or a
    # later square hides it in a wrong but finite step) fails the check too, so its
    # dry run runs and refuses it (_refuse_overflow)
    if f64:
        inside = _within_array(<const double*>cnp.PyArray_DATA(p),
                               <const double*>cnp.PyArray_DATA(g),
                               <const double*>cnp.PyArray_DATA(st), n, slots, squared,
                               bound, with_param, nt)
    else:
        inside = _within_array(<const float*>cnp.PyArray_DATA(p),
                               <const float*>cnp.PyArray_DATA(g),
                               <const float*>cnp.PyArray_DATA(st), n, slots, squared,
                               bound, with_param, nt)
    return not inside


cdef void _run_array(const OptimConfig* cfg, floating* param, const floating* grad,
                     floating* state, Py_ssize_t n, long long step, int n_threads) noexcept:
    # _run, letting the GIL go for work worth it (gil.pxd)
    if keeps_gil(n, n_threads):
        _run(cfg, param, grad, state, n, step, n_threads)
    else:
        with nogil:
            _run(cfg, param, grad, state, n, step, n_threads)


cdef bint _within_array(const floating* p, const floating* g, const floating* st,
                        Py_ssize_t n, int slots, int squared, double bound,
                        bint with_param, int nt) noexcept:
    # _within, letting the GIL go for work worth it (gil.pxd)
    cdef bint inside
    if keeps_gil(n, nt):
        return _within(p, g, st, n, slots, squared, bound, with_param, nt)
    with nogil:
        inside = _within(p, g, st, n, slots, squared, bound, with_param, nt)
    return inside


# the squared-gradient slots' names in nnlib/optim.py's state (optimizer.state[p][name])
_SQUARED_NAMES = {OPT_ADAGRAD: ("sum",), OPT_NOTES_ADAGRAD: ("sum",),
                  OPT_RMSPROP: ("square_avg",),
                  OPT_ADAM: ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                  OPT_ADAMW: ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                  OPT_SKLEARN_ADAM: ("ms", "vs")}


def _negative_square_message(step, i, p, st, int k, j, kind):
    """The refusal of a step whose state row ``k`` (a squared-gradient slot) of
    ``params[i]`` holds a negative value at flat element ``j`` (the twin's too)."""
    names = _SQUARED_NAMES.get(kind, ())
    name = repr(names[k]) if k < len(names) else f"row {k}"
    at = tuple(int(x) for x in np.unravel_index(j, (<object>p).shape))
    return (f"step {step}: params[{i}] (shape {(<object>p).shape}): its state[{name}] "
            f"holds {(<object>st)[k, j].item()!r} at {at}: a sum or average of squared "
            f"gradients is never negative, and the step takes its square root (NaN "
            f"weights, or a wrong finite step once later squares outweigh it); was it "
            f"written into optimizer.state[p] or state_arrays in place? Nothing was "
            f"updated: mend it, or reset() or load_state_dict a saved state")


cdef _refuse_overflow(const OptimConfig* cfg, cnp.ndarray p, cnp.ndarray g,
                      cnp.ndarray st, Py_ssize_t i, long long step, int slots):
    """Raise NonFiniteError if the step would turn a finite element of ``params[i]`` (or
    of its state) non-finite: the dry run (see the design note); or, first, if a
    squared-gradient slot of its state holds a negative value (-0.0, whose root is
    -0.0, and NaN are no such value)."""
    cdef Py_ssize_t j = -1, n = cnp.PyArray_SIZE(p)
    cdef int k, squared = _squared_slots(cfg)
    if n == 0:
        return
    for k in range(slots):
        if (squared >> k) & 1:
            neg = (<object>st)[k] < 0
            if neg.any():
                raise NonFiniteError(_negative_square_message(
                    step, i, p, st, k, int(np.argmax(neg)), cfg.kind))
    if cnp.PyArray_TYPE(p) == cnp.NPY_DOUBLE:
        with nogil:
            j = _dry_run(cfg, <const double*>cnp.PyArray_DATA(p),
                         <const double*>cnp.PyArray_DATA(g),
                         <const double*>cnp.PyArray_DATA(st), n, step, slots)
    else:
        with nogil:
            j = _dry_run(cfg, <const float*>cnp.PyArray_DATA(p),
                         <const float*>cnp.PyArray_DATA(g),
                         <const float*>cnp.PyArray_DATA(st), n, step, slots)
    if j >= 0:
        state = [float(x) for x in (<object>st)[:, j]]
        raise NonFiniteError(
            f"step {step}: params[{i}] element {j} would become non-finite from "
            f"finite values (gradient {float((<object>g).reshape(-1)[j]):g}, param "
            f"{float((<object>p).reshape(-1)[j]):g}, state {state}): the update "
            f"overflows {(<object>p).dtype} (a gradient this large squares to inf in "
            f"the state of Adagrad, RMSprop and Adam); nothing was updated")
