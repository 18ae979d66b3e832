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
"""
from cython.parallel cimport prange
from cython cimport floating

from nnlib._kernels.optim_rules cimport (OptimConfig, optim_state_slots,
                                         optim_update_range)

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
    cdef Py_ssize_t n = param.shape[0], c, lo, hi, chunks
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
    chunks = n_threads if n_threads < n else n
    with nogil:
        if chunks == 1:
            optim_update_range(&cfg, &param[0], &grad[0], s, n, step, 0, n)
        else:
            for c in prange(chunks, schedule='static', num_threads=n_threads):
                lo = c * n // chunks
                hi = (c + 1) * n // chunks
                optim_update_range(&cfg, &param[0], &grad[0], s, n, step, lo, hi)
