"""Learning-rate schedules ``eta_t``: constant, inverse scaling, step, exponential, cosine,
reduce-on-plateau.

A schedule computes the learning rate for epoch (or step) ``t`` and, when it is bound to an
optimizer, writes it to ``optimizer.lr``::

    opt = nnlib.optim.SGD(lr=0.1, momentum=0.9)
    sched = nnlib.schedules.CosineAnnealing(T_max=50, optimizer=opt)   # lr0 = opt.lr
    for epoch in range(50):
        train_one_epoch(model, opt)
        sched.step()                  # opt.lr <- eta_{epoch + 1}

Protocol (what a training loop may rely on)
-------------------------------------------
``schedule(t)``
    the rate for ``t = 0, 1, 2, ...`` (``t = 0`` gives ``lr0``); writes ``optimizer.lr``
    if bound; returns the rate. Not available for :class:`ReduceOnPlateau`, which depends
    on the history of the metric rather than on ``t``.
``schedule.step(metric=None)``
    advance one epoch and return the new rate (``ReduceOnPlateau`` needs ``metric``; the
    others ignore it), like ``torch.optim.lr_scheduler``'s ``step()``.
``schedule.bind(optimizer)``
    attach an optimizer (``lr0`` defaults to its current ``lr``) and set its rate to the
    schedule's current one.
``schedule.lr``, ``schedule.epoch``
    the current rate and epoch.

The closed forms (``lr0`` the initial rate):

=======================  ==========================================================
Constant                 ``eta_t = lr0``
InverseScaling           ``eta_t = lr0 / (t + 1) ** power_t`` -- the notes' ``eta0 / t^p``
                         with 1-based t, and scikit-learn's ``'invscaling'`` when ``t``
                         counts the samples seen so far
StepDecay                ``eta_t = lr0 * gamma ** floor(t / step_size)`` (``StepLR``)
ExponentialDecay         ``eta_t = lr0 * gamma ** t`` (``ExponentialLR``)
CosineAnnealing          ``eta_t = eta_min + (lr0 - eta_min) (1 + cos(pi t / T_max)) / 2``
                         (``CosineAnnealingLR``; periodic past ``T_max``, as PyTorch's)
ReduceOnPlateau          multiply by ``factor`` (not below ``min_lr``) after more than
                         ``patience`` epochs without improvement (``ReduceLROnPlateau``)
=======================  ==========================================================

PyTorch's schedulers compute the same rates by recursion from the previous one; the closed
forms here agree with them to rounding (tests check it when torch is installed).
"""
import math
import numbers

from nnlib._plateau import improves
from nnlib._validation import check_int_scalar, check_real_scalar

__all__ = ["Schedule", "Constant", "InverseScaling", "StepDecay", "ExponentialDecay",
           "CosineAnnealing", "ReduceOnPlateau"]


class Schedule:
    """Base class of the epoch-indexed schedules: subclasses define ``lr_at(t)``.

    Parameters
    ----------
    lr0 : float >= 0 or None
        Initial rate; None takes the bound optimizer's ``lr``.
    optimizer : object with a writable ``lr`` attribute, or None
        Optimizer whose ``lr`` the schedule writes (``nnlib.optim`` optimizers, or any
        object with an ``lr`` attribute).
    """

    def __init__(self, lr0=None, optimizer=None):
        self.lr0 = None if lr0 is None else check_real_scalar(lr0, "lr0", low=0.0)
        self.optimizer = None
        self.epoch = 0
        self.lr = self.lr0
        if optimizer is not None:
            self.bind(optimizer)

    def bind(self, optimizer):
        """Attach ``optimizer``; set ``lr0`` from it if not given; write the current rate.

        Returns
        -------
        self
        """
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer must have an lr attribute; got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if self.lr0 is None:
            self.lr0 = check_real_scalar(optimizer.lr, "optimizer.lr", low=0.0)
        self._apply(self._current())
        return self

    def _require_lr0(self):
        if self.lr0 is None:
            raise ValueError(f"{type(self).__name__} has no initial rate: pass lr0= or "
                             "an optimizer")
        return self.lr0

    def _current(self):
        return self.lr_at(self.epoch)

    def _apply(self, lr):
        self.lr = lr
        if self.optimizer is not None:
            self.optimizer.lr = lr
        return lr

    def lr_at(self, t):
        """The rate of epoch ``t`` (closed form); does not change any state."""
        raise NotImplementedError

    def __call__(self, t):
        """Set the epoch to ``t`` (an int >= 0), write and return ``eta_t``."""
        self.epoch = check_int_scalar(t, "t", low=0)
        return self._apply(self.lr_at(self.epoch))

    def step(self, metric=None):
        """Advance one epoch; write and return the new rate (``metric`` is ignored)."""
        return self(self.epoch + 1)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _params(self):
        return {"lr0": self.lr0}


class Constant(Schedule):
    """``eta_t = lr0`` for every ``t``."""

    def lr_at(self, t):
        return self._require_lr0()


class InverseScaling(Schedule):
    """``eta_t = lr0 / (t + 1) ** power_t``.

    With ``t`` the number of samples seen this is scikit-learn's ``learning_rate=
    'invscaling'`` (which updates the rate at the end of each epoch with
    ``t = samples seen``); with ``t`` counting epochs from 0 it is the notes'
    ``eta_t = eta_0 / t^p`` for ``t = 1, 2, ...``.

    Parameters
    ----------
    lr0 : float or None
    power_t : float >= 0, default 0.5
    optimizer : optional
    """

    def __init__(self, lr0=None, power_t=0.5, optimizer=None):
        self.power_t = check_real_scalar(power_t, "power_t", low=0.0)
        super().__init__(lr0, optimizer)

    def lr_at(self, t):
        return self._require_lr0() / (t + 1) ** self.power_t

    def _params(self):
        return {"lr0": self.lr0, "power_t": self.power_t}


class StepDecay(Schedule):
    """``eta_t = lr0 * gamma ** floor(t / step_size)``: drop by ``gamma`` every
    ``step_size`` epochs (PyTorch's ``StepLR``).

    Parameters
    ----------
    step_size : int >= 1
    gamma : float in (0, 1], default 0.1
    lr0, optimizer : optional
    """

    def __init__(self, step_size, gamma=0.1, lr0=None, optimizer=None):
        self.step_size = check_int_scalar(step_size, "step_size", low=1)
        self.gamma = check_real_scalar(gamma, "gamma", low=0.0, high=1.0, low_open=True)
        super().__init__(lr0, optimizer)

    def lr_at(self, t):
        return self._require_lr0() * self.gamma ** (t // self.step_size)

    def _params(self):
        return {"step_size": self.step_size, "gamma": self.gamma, "lr0": self.lr0}


class ExponentialDecay(Schedule):
    """``eta_t = lr0 * gamma ** t`` (PyTorch's ``ExponentialLR``).

    Parameters
    ----------
    gamma : float in (0, 1]
    lr0, optimizer : optional
    """

    def __init__(self, gamma, lr0=None, optimizer=None):
        self.gamma = check_real_scalar(gamma, "gamma", low=0.0, high=1.0, low_open=True)
        super().__init__(lr0, optimizer)

    def lr_at(self, t):
        return self._require_lr0() * self.gamma ** t

    def _params(self):
        return {"gamma": self.gamma, "lr0": self.lr0}


class CosineAnnealing(Schedule):
    """``eta_t = eta_min + (lr0 - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    Falls from ``lr0`` at ``t = 0`` to ``eta_min`` at ``t = T_max`` along half a cosine;
    past ``T_max`` the cosine continues (rises again), as PyTorch's ``CosineAnnealingLR``
    does -- stop at ``T_max`` epochs or choose ``T_max`` = the number of epochs.

    Parameters
    ----------
    T_max : int >= 1
    eta_min : float >= 0, default 0
    lr0, optimizer : optional
    """

    def __init__(self, T_max, eta_min=0.0, lr0=None, optimizer=None):
        self.T_max = check_int_scalar(T_max, "T_max", low=1)
        self.eta_min = check_real_scalar(eta_min, "eta_min", low=0.0)
        super().__init__(lr0, optimizer)

    def lr_at(self, t):
        lr0 = self._require_lr0()
        cosine = math.cos(math.pi * t / self.T_max)
        return self.eta_min + (lr0 - self.eta_min) * (1 + cosine) / 2

    def _params(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min, "lr0": self.lr0}


class ReduceOnPlateau(Schedule):
    """Cut the rate by ``factor`` when a metric stops improving (``ReduceLROnPlateau``).

    Call ``step(metric)`` once per epoch with the monitored value (say the validation
    loss). An epoch improves on the best value so far when, for ``mode='min'``,
    ``metric < best * (1 - threshold)`` (``threshold_mode='rel'``) or
    ``metric < best - threshold`` (``'abs'``); mirrored for ``mode='max'``. After more
    than ``patience`` epochs in a row without improvement the rate becomes
    ``max(lr * factor, min_lr)`` (changes smaller than ``eps`` are skipped), and the count
    is paused for ``cooldown`` epochs. A NaN metric never counts as an improvement.

    Parameters
    ----------
    mode : {'min', 'max'}, default 'min'
    factor : float in (0, 1), default 0.1
    patience : int >= 0, default 10
    threshold : float >= 0, default 1e-4
    threshold_mode : {'rel', 'abs'}, default 'rel'
    cooldown : int >= 0, default 0
    min_lr : float >= 0, default 0
    eps : float >= 0, default 1e-8
    lr0, optimizer : optional
        As for the other schedules; the rate then evolves from ``lr0``.
    """

    def __init__(self, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8, lr0=None,
                 optimizer=None):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs'; got "
                             f"{threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = check_real_scalar(factor, "factor", low=0.0, high=1.0, low_open=True,
                                        high_open=True)
        self.patience = check_int_scalar(patience, "patience", low=0)
        self.threshold = check_real_scalar(threshold, "threshold", low=0.0)
        self.cooldown = check_int_scalar(cooldown, "cooldown", low=0)
        self.min_lr = check_real_scalar(min_lr, "min_lr", low=0.0)
        self.eps = check_real_scalar(eps, "eps", low=0.0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        super().__init__(lr0, optimizer)

    def _current(self):
        # the rate is state, not a function of the epoch
        return self.lr if self.lr is not None else self._require_lr0()

    def lr_at(self, t):
        raise TypeError("ReduceOnPlateau's rate depends on the metric history, not on t; "
                        "use step(metric)")

    def __call__(self, t):
        return self.lr_at(t)

    def _improves(self, value):
        return improves(value, self.best, mode=self.mode, threshold=self.threshold,
                        threshold_mode=self.threshold_mode)

    def step(self, metric=None):
        """Record this epoch's ``metric``; write and return the (possibly reduced) rate."""
        if isinstance(metric, bool) or not isinstance(metric, numbers.Real):
            raise TypeError(f"ReduceOnPlateau.step needs the monitored metric (a real "
                            f"number); got {metric!r}")
        lr = self._current()
        value = float(metric)
        self.epoch += 1
        if self._improves(value):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0            # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(lr * self.factor, self.min_lr)
            if lr - new_lr > self.eps:
                lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self._apply(lr)

    def _params(self):
        return {"mode": self.mode, "factor": self.factor, "patience": self.patience,
                "threshold": self.threshold, "threshold_mode": self.threshold_mode,
                "cooldown": self.cooldown, "min_lr": self.min_lr, "eps": self.eps,
                "lr0": self.lr0}
