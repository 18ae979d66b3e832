"""Optimizers: compiled in-place parameter updates, and full-batch gradient descent.

Every optimizer updates a list of NumPy arrays in place::

    opt = nnlib.optim.Adam(lr=1e-3)
    for X, y in batches:
        loss, grads = model.loss_and_grads(X, y)
        opt.step(model.params, grads)

The update rules are compiled (``nnlib/_kernels/optim_rules.pxd.tp``, shared with the
compiled training loop) and have NumPy twins in ``nnlib/_reference/optim.py``.

Three families of rules
-----------------------
**PyTorch's** (``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``): the names, defaults
and update rules of ``torch.optim`` 2.x (single-tensor code path), so trajectories agree
step for step with PyTorch's; tests check it when torch is installed. Weight decay is the
L2 term ``g <- g + weight_decay * w`` except in ``AdamW`` (decoupled:
``w <- w (1 - lr wd)``).

**scikit-learn's** (``SklearnSGD``, ``SklearnAdam``): the rules of
``sklearn/neural_network/_stochastic_optimizers.py``, used by ``nnlib.MLPClassifier`` /
``MLPRegressor`` so those match scikit-learn's estimators. They differ from PyTorch's:

============  ==================================  ======================================
              PyTorch                             scikit-learn
============  ==================================  ======================================
momentum      ``b <- mu b + (1-damp) g``          ``v <- mu v - lr g``
              (``b = g`` at the first step),      (``v = 0`` initially),
              ``w <- w - lr b``                   ``w <- w + v``
nesterov      ``w <- w - lr (g + mu b)``          ``w <- w + mu v - lr g``
Adam step     ``lr/bc1 * m / (sqrt(v)/sqrt(bc2)   ``lr sqrt(bc2)/bc1 * m / (sqrt(v) + eps)``
              + eps)``                            (eps is not bias-corrected)
============  ==================================  ======================================

with ``bc1 = 1 - beta1^t``, ``bc2 = 1 - beta2^t``. Because scikit-learn keeps the learning
rate inside the velocity, a schedule that lowers ``lr`` damps only new gradients; in
PyTorch it rescales the whole step at once. The two Adams agree when eps -> 0.

**The lecture notes'** (``NotesMomentum``, ``NotesAdaGrad``, :func:`gradient_descent`):
the momentum method ``v <- (1 - beta) v + beta grad; w <- w - lr v`` (an exponentially
weighted average of gradients, ``v0 = 0``), AdaGrad ``G_i <- G_i + g_i^2;
w_i <- w_i - lr g_i / sqrt(eps + G_i)`` with the stabilizer ``eps`` under the root, and
full-batch gradient descent with a tolerance stop.

Common API
----------
``opt.step(params, grads, n_threads=None)``
    One update of every array of ``params`` (list of C-contiguous, writable float32 or
    float64 arrays) given ``grads`` (same shapes and dtypes).
``opt.config()``
    dict with exactly the ``OptimConfig`` fields (``nnlib._kernels.optim.CONFIG_FIELDS``).
``opt.state_arrays(params)``
    the state, one array of shape ``(slots, param.size)`` per parameter, created on first
    use; the compiled training loop updates these same arrays.
``opt.t``
    updates taken so far; ``opt.lr`` the current learning rate (schedules write it).
``opt.reset()``
    forget the state and set ``t`` to 0.

State is kept by position in ``params``: pass the same list (same shapes and dtypes) each
time, as a model's ``params`` is.
"""
import math
import numbers
import warnings

import numpy as np

from nnlib._codes import OPTIM_KINDS
from nnlib._kernels import optim as _k
from nnlib._threads import (PARALLEL_MIN_SIZE, claimed_by, resolve_threads,
                            thread_limit)
from nnlib.exceptions import ConcurrentUseError
from nnlib._validation import (DTypeError, NonFiniteError, ShapeError, as_float_array,
                               check_int_scalar, check_real_scalar, native_float_dtype)

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NotesMomentum",
           "NotesAdaGrad", "SklearnSGD", "SklearnAdam", "gradient_descent", "GDResult",
           "CONFIG_FIELDS", "OPTIM_KINDS"]

CONFIG_FIELDS = _k.CONFIG_FIELDS



def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r} "
                        f"({type(value).__name__})")
    return bool(value)


def _unit(value, name, *, low_open=False, high_open=True):
    """A real in [0, 1) (by default) with a message naming the parameter."""
    return check_real_scalar(value, name, low=0.0, high=1.0, low_open=low_open,
                             high_open=high_open)


def _positive(value, name):
    return check_real_scalar(value, name, low=0.0, low_open=True)


def _nonneg(value, name):
    return check_real_scalar(value, name, low=0.0)


class Optimizer:
    """Base class: state bookkeeping, validation and the call into the compiled kernel.

    Subclasses set ``kind`` and ``_hyper()``, the non-default ``OptimConfig`` fields.
    """

    kind = None

    def __init__(self, lr):
        self.lr = lr
        self.t = 0
        self._state = None          # list of (slots, size) arrays, by position in params

    # -- learning rate: schedules write it, so it is validated on every write ----------
    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _nonneg(value, "lr")

    def _hyper(self):
        return {}

    def config(self):
        """The ``OptimConfig`` fields as a dict (``kind`` an int, flags 0/1)."""
        cfg = dict(kind=self.kind, lr=self.lr, momentum=0.0, dampening=0.0,
                   weight_decay=0.0, alpha=0.0, eps=0.0, beta1=0.0, beta2=0.0,
                   lr_decay=0.0, initial_accumulator_value=0.0, nesterov=0, centered=0,
                   amsgrad=0)
        cfg.update(self._hyper())
        for flag in ("nesterov", "centered", "amsgrad"):
            cfg[flag] = int(cfg[flag])
        return cfg

    def _initial_state_value(self):
        return 0.0

    def reset(self):
        """Forget all state (moments, buffers) and restart the step count at 0."""
        self._state = None
        self.t = 0

    def state_arrays(self, params):
        """The optimizer state of ``params``: one ``(slots, param.size)`` array per param.

        Created on first use (zeros, or Adagrad's ``initial_accumulator_value``), in the
        dtype of each param; later calls return the same arrays, which ``step`` and the
        compiled training loop update in place.

        Raises
        ------
        ShapeError, DTypeError
            If ``params`` no longer match the shapes/dtypes the state was created for.
        """
        params = _as_param_list(params)
        slots = _k.state_slots(self.config())
        if self._state is None:
            self._state = [np.full((slots, p.size), self._initial_state_value(),
                                   dtype=p.dtype) for p in params]
            return self._state
        if len(self._state) != len(params):
            raise ShapeError(f"the optimizer holds state for {len(self._state)} arrays; "
                             f"got {len(params)} params (call reset() to start over)")
        for i, (s, p) in enumerate(zip(self._state, params)):
            if s.shape != (slots, p.size):
                raise ShapeError(f"params[{i}] has {p.size} elements but its optimizer "
                                 f"state has shape {s.shape}; expected ({slots}, {p.size}) "
                                 "(call reset() to start over)")
            if s.dtype != p.dtype:
                raise DTypeError(f"params[{i}] is {p.dtype} but its optimizer state is "
                                 f"{s.dtype} (call reset() to start over)")
        return self._state

    def step(self, params, grads, n_threads=None):
        """Update ``params`` in place by one step of the rule.

        Parameters
        ----------
        params : list of ndarray
            Live parameter arrays (any shapes), float32 or float64, C-contiguous and
            writable. A single array is accepted too.
        grads : list of array_like
            Gradients, one per param, same shape and dtype as it; not modified.
        n_threads : int or None
            OpenMP threads per array; None: 1 for small arrays, all cores for large.

        Raises
        ------
        NonFiniteError
            If the update would turn a finite param, gradient and state into inf or NaN
            (e.g. a gradient of 1e155 in float64 or 1e20 in float32, whose square
            overflows the state of Adagrad, RMSprop and Adam: the step would then be
            silently skipped or NaN). The message names the optimizer, the array and the
            element; every param and the optimizer state are left as they were, and
            ``t`` does not advance. (PyTorch returns inf/NaN here.) A NaN or inf
            *gradient* is not refused: it gives NaN/inf in its own elements only.
        ConcurrentUseError
            If a running fit uses this optimizer (see README, "Threads and
            concurrency").
        """
        if claimed_by(self) is not None:
            raise ConcurrentUseError(f"{type(self).__name__}.step: the optimizer is in use "
                                     f"by a running fit (thread {claimed_by(self)}); its "
                                     f"steps would interleave with the fit's")
        if isinstance(params, np.ndarray):
            params = [params]
            grads = grads if isinstance(grads, (list, tuple)) else [grads]
        if not isinstance(params, (list, tuple)):
            raise TypeError(f"params must be a list of NumPy arrays; got "
                            f"{type(params).__name__}")
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of arrays; got {type(grads).__name__}")
        if len(grads) != len(params):
            raise ValueError(f"got {len(params)} params but {len(grads)} grads")
        state = self._state
        if state is None or len(state) != len(params):
            state = self.state_arrays(params)      # creates it, or explains the mismatch
        if n_threads is None:                      # as resolve_threads(None, size)
            threads, min_size = thread_limit(), PARALLEL_MIN_SIZE
        else:
            threads, min_size = resolve_threads(n_threads, 0), 0
        # the kernel validates every array (naming params[i] / grads[i]) before any update,
        # and undoes a step that overflows (finite in, inf/NaN out); it sets self.t itself,
        # so a Ctrl-C during the step (raised when the call returns) cannot separate the
        # update from its count
        try:
            _k.optim_step_arrays(self.config(), list(params), list(grads), state,
                                 self.t + 1, threads, min_size, self)
        except NonFiniteError as exc:
            raise NonFiniteError(f"{type(self).__name__} {exc}") from None

    def __repr__(self):
        hyper = {k: v for k, v in self._public().items()}
        args = ", ".join(f"{k}={v!r}" for k, v in hyper.items())
        return f"{type(self).__name__}({args})"

    def _public(self):
        return {"lr": self.lr}


def _as_param_list(params):
    if isinstance(params, np.ndarray):
        params = [params]
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of NumPy arrays; got "
                        f"{type(params).__name__}")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}] must be a NumPy array (updated in place); got "
                            f"{type(p).__name__}")
        if native_float_dtype(p.dtype) is None:
            raise DTypeError(f"params[{i}] must be float32 or float64; got {p.dtype}")
        if not p.dtype.isnative:
            raise DTypeError(f"params[{i}] has non-native byte order ({p.dtype.str}); the "
                             f"optimizer updates it in place in the machine's order, so "
                             f"it must be native: use p = "
                             f"p.astype(p.dtype.newbyteorder('=')) and pass p")
        if not p.flags.c_contiguous:
            raise ValueError(f"params[{i}] must be C-contiguous to be updated in place "
                             "(np.ascontiguousarray makes a copy the model would not see)")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}] is read-only; the optimizer updates it in place")
    return list(params)


# --------------------------------------------------------------------------------------
# PyTorch's rules
# --------------------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (``torch.optim.SGD``).

    With ``g = grad + weight_decay * w``::

        b <- g                              (first step)
        b <- momentum * b + (1 - dampening) * g
        w <- w - lr * (g + momentum * b)    if nesterov
        w <- w - lr * b                     otherwise (w - lr * g when momentum == 0)

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate (>= 0).
    momentum : float in [0, 1), default 0
    dampening : float in [0, 1], default 0
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float >= 0, default 0
        L2 penalty coefficient added to the gradient.
    """

    kind = OPTIM_KINDS["sgd"]

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(lr)
        self.momentum = _unit(momentum, "momentum")
        self.dampening = _unit(dampening, "dampening", high_open=False)
        self.nesterov = _check_bool(nesterov, "nesterov")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0; "
                             f"got momentum={self.momentum}, dampening={self.dampening}")

    def _hyper(self):
        return dict(momentum=self.momentum, dampening=self.dampening,
                    nesterov=self.nesterov, weight_decay=self.weight_decay)

    def _public(self):
        return dict(lr=self.lr, **self._hyper())


class Adagrad(Optimizer):
    """AdaGrad with PyTorch's rule (``torch.optim.Adagrad``).

    With ``g = grad + weight_decay * w`` and step ``t`` (1-based)::

        clr = lr / (1 + (t - 1) * lr_decay)
        G  <- G + g**2                      (G starts at initial_accumulator_value)
        w  <- w - clr * g / (sqrt(G) + eps)

    Parameters
    ----------
    lr : float, default 0.01
    lr_decay : float >= 0, default 0
    weight_decay : float >= 0, default 0
    initial_accumulator_value : float >= 0, default 0
    eps : float > 0, default 1e-10
        Added to ``sqrt(G)`` (outside the root; the notes' version puts it inside, see
        :class:`NotesAdaGrad`).
    """

    kind = OPTIM_KINDS["adagrad"]

    def __init__(self, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(lr)
        self.lr_decay = _nonneg(lr_decay, "lr_decay")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        self.initial_accumulator_value = _nonneg(initial_accumulator_value,
                                                 "initial_accumulator_value")
        self.eps = _positive(eps, "eps")

    def _initial_state_value(self):
        return self.initial_accumulator_value

    def _hyper(self):
        return dict(lr_decay=self.lr_decay, weight_decay=self.weight_decay,
                    initial_accumulator_value=self.initial_accumulator_value, eps=self.eps)

    def _public(self):
        return dict(lr=self.lr, **self._hyper())


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``).

    With ``g = grad + weight_decay * w``::

        s <- alpha * s + (1 - alpha) * g**2
        a <- alpha * a + (1 - alpha) * g                (centered only)
        d  = sqrt(s - a**2) + eps   if centered else sqrt(s) + eps
        b <- momentum * b + g / d;  w <- w - lr * b     if momentum > 0
        w <- w - lr * g / d                             otherwise

    Parameters
    ----------
    lr : float, default 0.01
    alpha : float in [0, 1), default 0.99
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
    momentum : float in [0, 1), default 0
    centered : bool, default False
        Normalize by the estimated variance instead of the raw second moment.
    """

    kind = OPTIM_KINDS["rmsprop"]

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(lr)
        self.alpha = _unit(alpha, "alpha")
        self.eps = _positive(eps, "eps")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        self.momentum = _unit(momentum, "momentum")
        self.centered = _check_bool(centered, "centered")

    def _hyper(self):
        return dict(alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay,
                    momentum=self.momentum, centered=self.centered)

    def _public(self):
        return dict(lr=self.lr, **self._hyper())


def _betas(betas):
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2); got {betas!r}") from None
    return _unit(b1, "betas[0]"), _unit(b2, "betas[1]")


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``), with the AMSGrad variant.

    With ``g = grad + weight_decay * w`` and step ``t``::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g**2
        vmax <- max(vmax, v);  v_used = vmax if amsgrad else v
        w <- w - lr / (1 - beta1**t) * m / (sqrt(v_used) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
        L2 term added to the gradient (for decoupled decay use :class:`AdamW`).
    amsgrad : bool, default False
    """

    kind = OPTIM_KINDS["adam"]

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(lr)
        self.betas = _betas(betas)
        self.eps = _positive(eps, "eps")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        self.amsgrad = _check_bool(amsgrad, "amsgrad")

    def _hyper(self):
        return dict(beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                    weight_decay=self.weight_decay, amsgrad=self.amsgrad)

    def _public(self):
        return dict(lr=self.lr, betas=self.betas, eps=self.eps,
                    weight_decay=self.weight_decay, amsgrad=self.amsgrad)


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``).

    ``w <- w * (1 - lr * weight_decay)`` first, then the :class:`Adam` step on the raw
    gradient. Same parameters as :class:`Adam`; ``weight_decay`` defaults to 1e-2.
    """

    kind = OPTIM_KINDS["adamw"]

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(lr, betas, eps, weight_decay, amsgrad)


# --------------------------------------------------------------------------------------
# The notes' rules
# --------------------------------------------------------------------------------------

class NotesMomentum(Optimizer):
    """The momentum method of the lecture notes.

    ::

        v <- (1 - beta) * v + beta * grad      (v starts at 0)
        w <- w - lr * v

    ``v`` is an exponentially weighted average of past gradients; ``beta = 1`` is plain
    gradient descent. (PyTorch's ``SGD(momentum=mu, dampening=mu)`` is the same recursion
    with ``beta = 1 - mu``, except that PyTorch starts the buffer at the first gradient.)

    Parameters
    ----------
    lr : float >= 0, default 0.01
    beta : float in (0, 1], default 0.1
        Weight of the newest gradient.
    """

    kind = OPTIM_KINDS["notes_momentum"]

    def __init__(self, lr=0.01, beta=0.1):
        super().__init__(lr)
        self.beta = _unit(beta, "beta", low_open=True, high_open=False)

    def _hyper(self):
        return dict(momentum=self.beta)

    def _public(self):
        return dict(lr=self.lr, beta=self.beta)


class NotesAdaGrad(Optimizer):
    """AdaGrad as the lecture notes write it, with the stabilizer under the root.

    For every coordinate ``i``::

        G_i <- G_i + g_i**2                        (sum of squared derivatives so far,
                                                    this step's included)
        w_i <- w_i - lr * g_i / sqrt(eps + G_i)

    Parameters
    ----------
    lr : float >= 0, default 0.01
    eps : float > 0, default 1e-8
        The stabilizer: keeps the first steps finite where ``G_i`` is still 0. The notes
        add it under the square root; their numeric value does not survive in the
        extracted text, so the default is the customary 1e-8.
    """

    kind = OPTIM_KINDS["notes_adagrad"]

    def __init__(self, lr=0.01, eps=1e-8):
        super().__init__(lr)
        self.eps = _positive(eps, "eps")

    def _hyper(self):
        return dict(eps=self.eps)

    def _public(self):
        return dict(lr=self.lr, eps=self.eps)


# --------------------------------------------------------------------------------------
# scikit-learn's rules (used by the MLP estimators)
# --------------------------------------------------------------------------------------

class SklearnSGD(Optimizer):
    """scikit-learn's ``SGDOptimizer``: the learning rate inside the velocity.

    ::

        v <- momentum * v - lr * grad          (v starts at 0)
        w <- w + momentum * v - lr * grad      if nesterov
        w <- w + v                             otherwise

    Parameters
    ----------
    lr : float >= 0, default 1e-3 (``learning_rate_init``)
    momentum : float in [0, 1], default 0.9
    nesterov : bool, default True (``nesterovs_momentum``)
    """

    kind = OPTIM_KINDS["sklearn_sgd"]

    def __init__(self, lr=1e-3, momentum=0.9, nesterov=True):
        super().__init__(lr)
        self.momentum = _unit(momentum, "momentum", high_open=False)
        self.nesterov = _check_bool(nesterov, "nesterov")

    def _hyper(self):
        return dict(momentum=self.momentum, nesterov=self.nesterov)

    def _public(self):
        return dict(lr=self.lr, **self._hyper())


class SklearnAdam(Optimizer):
    """scikit-learn's ``AdamOptimizer``: bias correction folded into the rate, not eps.

    ::

        m <- beta_1 * m + (1 - beta_1) * grad
        v <- beta_2 * v + (1 - beta_2) * grad**2
        lr_t = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        w <- w - lr_t * m / (sqrt(v) + epsilon)

    Parameters
    ----------
    lr : float >= 0, default 1e-3 (``learning_rate_init``)
    beta_1, beta_2 : float in [0, 1), defaults 0.9, 0.999
    epsilon : float > 0, default 1e-8
    """

    kind = OPTIM_KINDS["sklearn_adam"]

    def __init__(self, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__(lr)
        self.beta_1 = _unit(beta_1, "beta_1")
        self.beta_2 = _unit(beta_2, "beta_2")
        self.epsilon = _positive(epsilon, "epsilon")

    def _hyper(self):
        return dict(beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)

    def _public(self):
        return dict(lr=self.lr, beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon)


# --------------------------------------------------------------------------------------
# Full-batch gradient descent (the notes' convex problems)
# --------------------------------------------------------------------------------------

class GDResult:
    """Result of :func:`gradient_descent`.

    Attributes
    ----------
    w : ndarray
        Final parameters (shape of ``w0``): the last iterate whose loss and gradient were
        finite (after a divergence, the point before it).
    n_iter : int
        Updates taken to reach ``w``.
    converged : bool
        True when the gradient norm fell to ``tol`` or below.
    loss_history : list of float
        Loss at every accepted point, ``w0`` first (length ``n_iter + 1``; all finite).
    grad_norm : float
        Euclidean norm of the gradient at ``w``.
    message : str
        Why the loop stopped.
    diverged : bool
        True when the loop stopped because the next iterate, its loss or its gradient was
        not finite (``lr`` too large); ``w`` is then the last finite point.
    """

    def __init__(self, w, n_iter, converged, loss_history, grad_norm, message,
                 diverged=False):
        self.w = w
        self.n_iter = n_iter
        self.converged = converged
        self.loss_history = loss_history
        self.grad_norm = grad_norm
        self.message = message
        self.diverged = diverged

    def __iter__(self):
        # unpack as (w, n_iter, converged, loss_history)
        return iter((self.w, self.n_iter, self.converged, self.loss_history))

    def __repr__(self):
        return (f"GDResult(n_iter={self.n_iter}, converged={self.converged}, "
                f"loss={self.loss_history[-1]:.6g}, grad_norm={self.grad_norm:.3g}, "
                f"diverged={self.diverged}, message={self.message!r})")


def _norm(g):
    """Euclidean norm of a finite array without overflow: np.linalg.norm squares the
    entries, so a finite gradient of 1e200 would have norm inf; then it is rescaled."""
    with np.errstate(over="ignore"):
        n = float(np.linalg.norm(g))
    if math.isfinite(n):
        return n
    m = float(np.max(np.abs(g)))
    return m * float(np.linalg.norm(g / m))


def gradient_descent(fun_and_grad, w0, lr, tol=1e-6, max_iter=1000):
    """Full-batch gradient descent ``w <- w - lr * grad L(w)`` until ``||grad|| <= tol``.

    The notes' algorithm: compute the gradient, move against it, repeat until converged.

    Parameters
    ----------
    fun_and_grad : callable
        ``fun_and_grad(w) -> (loss, grad)``: the loss (a real) and its gradient (the shape
        of ``w``) at ``w``.
    w0 : array_like
        Starting point (any shape; float32 kept, other input becomes float64). Not
        modified.
    lr : float > 0
        Step size (constant).
    tol : float >= 0, default 1e-6
        Stop when the Euclidean norm of the gradient is at most ``tol``.
    max_iter : int >= 0, default 1000
        Maximum number of updates.

    Returns
    -------
    GDResult
        ``w, n_iter, converged, loss_history`` (unpackable in that order), plus
        ``grad_norm``, ``message`` and ``diverged``.

    Raises
    ------
    NonFiniteError
        If the loss or gradient at ``w0`` is not finite.

    Warns
    -----
    RuntimeWarning
        On divergence, as :meth:`nnlib.Sequential.fit` does: when an update gives a
        non-finite point, or a point where the loss or gradient is not finite (``lr`` too
        large), the loop stops and returns the last point whose loss and gradient were
        finite, bitwise as it was, with ``converged=False``, ``diverged=True`` and a
        ``message`` saying at which iteration and what was non-finite. Never a
        non-finite ``w``.
    """
    if not callable(fun_and_grad):
        raise TypeError("fun_and_grad must be callable: w -> (loss, grad)")
    w = as_float_array(w0, "w0").copy()
    lr = _positive(lr, "lr")
    tol = _nonneg(tol, "tol")
    max_iter = check_int_scalar(max_iter, "max_iter", low=0)

    def evaluate(w):
        out = fun_and_grad(w)
        try:
            loss, grad = out
        except (TypeError, ValueError):
            raise TypeError("fun_and_grad must return a pair (loss, grad)") from None
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != w.shape:
            raise ShapeError(f"fun_and_grad returned a gradient of shape {grad.shape}; "
                             f"w has shape {w.shape}")
        if not isinstance(loss, numbers.Real) and np.ndim(loss) != 0:
            raise TypeError(f"fun_and_grad must return a scalar loss; got {loss!r}")
        return float(loss), grad

    def nonfinite(loss, grad):
        """What is not finite at a point ("" when all is)."""
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        if not np.isfinite(grad).all():
            return f"the gradient holds {grad.ravel()[~np.isfinite(grad.ravel())][0]}"
        return ""

    loss, grad = evaluate(w)
    bad = nonfinite(loss, grad)
    if bad:
        raise NonFiniteError(f"loss or gradient at w0 is not finite: {bad}")
    gnorm = _norm(grad)
    history = [loss]
    n_iter = 0
    while gnorm > tol and n_iter < max_iter:
        with np.errstate(over="ignore", invalid="ignore"):
            w_next = w - (lr * grad).astype(w.dtype, copy=False)
        if not np.isfinite(w_next).all():
            bad = "the update w - lr * grad overflowed"
        else:
            loss_next, grad_next = evaluate(w_next)
            bad = nonfinite(loss_next, grad_next)
        if bad:
            msg = (f"diverged at iteration {n_iter + 1}: {bad} (lr={lr} too large?); w is "
                   f"the last point with a finite loss and gradient (iteration {n_iter})")
            warnings.warn(f"gradient_descent {msg}", RuntimeWarning, stacklevel=2)
            return GDResult(w, n_iter, False, history, gnorm, msg, diverged=True)
        w, loss, grad = w_next, loss_next, grad_next
        n_iter += 1
        gnorm = _norm(grad)
        history.append(loss)
    if gnorm <= tol:
        msg = f"converged: |grad| = {gnorm:.3g} <= tol = {tol:g}"
        return GDResult(w, n_iter, True, history, gnorm, msg)
    return GDResult(w, n_iter, False, history, gnorm,
                    f"max_iter={max_iter} reached with |grad| = {gnorm:.3g} > "
                    f"tol = {tol:g}")
