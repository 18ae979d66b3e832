# cython: language_level=3
"""In-place optimizer steps on flat parameter buffers: layer 2 of the optimizers.

Design note
-----------
The update rules live in ``optim_rules.pxd`` (layer 1), shared with the compiled training
loop. This module is the thin loop that the Python optimizers (``nnlib/optim.py``, layer
3) call once per parameter array: it turns the optimizer's config dict into an
``OptimConfig`` struct, checks the buffer sizes (the compiled code runs without bounds
checks), releases the GIL and applies the rule.

An optimizer step is elementwise and cheap (a few flops and loads per element), so it is
memory-bound and a thread fork/join only pays off for large arrays: the caller passes
``n_threads`` (``nnlib._threads.resolve_threads`` gives 1 below 2**15 elements). With
``n_threads > 1`` the array is cut into ``n_threads`` contiguous chunks, one per thread;
each element is updated by the same code either way, so the result does not depend on the
thread count (a test checks bit equality).

Two entry points: ``optim_step`` (one flat typed-memoryview triple; the signature of the
NumPy twin) and ``optim_step_arrays`` (every parameter of a model in one call, through the
arrays' data pointers), which ``Optimizer.step`` uses: for the small arrays of per-sample
training, fused-type dispatch and reshaping cost more than the update itself (a 4-array
SGD step fell from ~50 to ~13 us). It validates all arrays before touching any.
"""
from cython cimport floating
cimport numpy as cnp

import numpy as np

from nnlib._kernels.optim_rules cimport (OptimConfig, optim_state_slots,
                                         optim_update_threads)
from nnlib._validation import DTypeError, ShapeError

cnp.import_array()

# The OptimConfig fields, in struct order: nnlib/optim.py's config() returns exactly these.
CONFIG_FIELDS = ("kind", "lr", "momentum", "dampening", "weight_decay", "alpha", "eps",
                 "beta1", "beta2", "lr_decay", "initial_accumulator_value", "nesterov",
                 "centered", "amsgrad")


cdef OptimConfig _config(dict d) except *:
    cdef OptimConfig cfg
    missing = [f for f in CONFIG_FIELDS if f not in d]
    if missing:
        raise ValueError(f"optimizer config lacks {missing}")
    cfg.kind = d["kind"]
    cfg.lr = d["lr"]
    cfg.momentum = d["momentum"]
    cfg.dampening = d["dampening"]
    cfg.weight_decay = d["weight_decay"]
    cfg.alpha = d["alpha"]
    cfg.eps = d["eps"]
    cfg.beta1 = d["beta1"]
    cfg.beta2 = d["beta2"]
    cfg.lr_decay = d["lr_decay"]
    cfg.initial_accumulator_value = d["initial_accumulator_value"]
    cfg.nesterov = d["nesterov"]
    cfg.centered = d["centered"]
    cfg.amsgrad = d["amsgrad"]
    if not 0 <= cfg.kind <= 8:
        raise ValueError(f"unknown optimizer kind {cfg.kind}")
    return cfg


def state_slots(dict config):
    """Number of state rows (each as long as the parameter) the rule of ``config`` keeps."""
    cdef OptimConfig cfg = _config(config)
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
    cdef OptimConfig cfg = _config(config)
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
    with nogil:
        _run(&cfg, &param[0], &grad[0], s, n, step, n_threads)


cdef void _run(const OptimConfig* cfg, floating* param, const floating* grad,
               floating* state, Py_ssize_t n, long long step, int n_threads) noexcept nogil:
    # one contiguous chunk per thread (the update is elementwise)
    optim_update_threads(cfg, param, grad, state, n, step, n_threads)


cdef bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int d, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd:
        return False
    for d in range(nd):
        if cnp.PyArray_DIMS(a)[d] != cnp.PyArray_DIMS(b)[d]:
            return False
    return True


def optim_step_arrays(dict config, list params, list grads, list states, long long step,
                      int n_threads, Py_ssize_t parallel_min_size):
    """One update of every parameter array; the fast path of ``Optimizer.step``.

    Validates every array first (so an error leaves all of them untouched), then updates
    each in place. Works on the arrays' data pointers (any shape, C-contiguous), avoiding
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
    """
    cdef OptimConfig cfg = _config(config)
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
        g = grads[i] if isinstance(grads[i], cnp.ndarray) else np.asarray(grads[i])
        if cnp.PyArray_TYPE(g) != typ:
            raise DTypeError(f"grads[{i}] is {g.dtype} but params[{i}] is {p.dtype}; "
                             "they must have the same dtype")
        if not _same_shape(p, g):
            raise ShapeError(f"grads[{i}] has shape {(<object>g).shape} but params[{i}] "
                             f"has shape {(<object>p).shape}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(g):
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
    for i in range(k):
        p = params[i]
        g = checked[i]
        st = states[i]
        n = cnp.PyArray_SIZE(p)
        if n == 0:
            continue
        nt = n_threads if n >= parallel_min_size else 1
        if cnp.PyArray_TYPE(p) == cnp.NPY_DOUBLE:
            with nogil:
                _run(&cfg, <double*>cnp.PyArray_DATA(p), <const double*>cnp.PyArray_DATA(g),
                     <double*>cnp.PyArray_DATA(st), n, step, nt)
        else:
            with nogil:
                _run(&cfg, <float*>cnp.PyArray_DATA(p), <const float*>cnp.PyArray_DATA(g),
                     <float*>cnp.PyArray_DATA(st), n, step, nt)
