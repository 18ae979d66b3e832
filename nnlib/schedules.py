"""Learning-rate schedules ``eta_t``: constant, inverse scaling, step, multi-step,
exponential, cosine (with warm restarts), linear warm-up, one-cycle, reduce-on-plateau.

A schedule computes the learning rate for epoch (or step) ``t`` and, when it is bound to an
optimizer, writes it to the optimizer's parameter groups::

    opt = nnlib.optim.SGD(model.params, lr=0.1, momentum=0.9)
    sched = nnlib.schedules.CosineAnnealing(T_max=50, optimizer=opt)   # lr0 = opt.lr
    for epoch in range(50):
        train_one_epoch(model, opt)
        sched.step()                  # opt.lr <- eta_{epoch + 1}

``Sequential.fit(..., schedule=sched)`` steps it after every epoch, or after every batch
with ``schedule_interval="batch"`` (OneCycleLR and warm-ups count batches).

Protocol (what a training loop may rely on)
-------------------------------------------
``schedule(t)``
    the rate for ``t = 0, 1, 2, ...`` (``t = 0`` gives ``lr0``); writes the optimizer's
    rate if bound; returns the rate. Not available for :class:`ReduceOnPlateau`, which
    depends on the history of the metric rather than on ``t``.
``schedule.step(metric=None)``
    advance one epoch (or batch) and return the new rate (``ReduceOnPlateau`` needs
    ``metric``; the others ignore it), like ``torch.optim.lr_scheduler``'s ``step()``.
``schedule.bind(optimizer)``
    attach an optimizer and set its rate to the schedule's current one. Each parameter
    group follows the schedule from its own rate at binding (``base_lrs``, torch's
    rule) unless ``lr0`` is given, which every group then starts from.
``schedule.lr``, ``schedule.epoch``
    the current rate (of the first group) and epoch.
``schedule.get_last_lr()``
    the rates last computed, one per group, as torch's: epoch 0's after binding, then
    those each ``step`` wrote.
``Schedule(optimizer, ...)``
    torch's argument order works too: an optimizer given first (``StepLR(opt,
    step_size=30)``) is taken as ``optimizer=`` (by nnlib's constructors and a
    subclass's in the same order; one whose own ``__init__`` takes the optimizer
    first is called as written); ``StepLR``, ``ExponentialLR``,
    ``CosineAnnealingLR`` and ``ReduceLROnPlateau`` are torch's names of
    ``StepDecay``, ``ExponentialDecay``, ``CosineAnnealing`` and ``ReduceOnPlateau``,
    and ``last_epoch`` is ``epoch`` (the constructors take torch's ``last_epoch=-1``,
    a fresh schedule, and refuse another value, which torch resumes by).

Schedules stepped on their own do not chain as torch's do. torch's chainable
schedulers update the rate in force by a factor (``lr *= gamma``), so two stepped on
one optimizer compose (a ``LinearLR`` warm-up times an ``ExponentialLR`` decay);
nnlib's write the rate of their closed form, so the last one stepped wins. A schedule
whose optimizer's rate changed since it last wrote it (another schedule, or a write by
hand) warns on ``step`` (a ``UserWarning``) rather than overwrite it silently. To
compose them, step one ``ChainedScheduler([warmup, decay])``: torch's
``ChainedScheduler``, which steps each part with torch's chainable form of it, so the
rates equal torch's; ``SequentialLR`` runs one after another. ``ReduceOnPlateau``
reduces the rate in force, as torch's, so it follows a rate set by hand.
``schedule.state_dict()``, ``schedule.load_state_dict(sd)``
    everything but the optimizer, as ``torch.optim.lr_scheduler``'s: saved with the
    optimizer's own ``state_dict``, training resumes bit-identically.

The closed forms (``lr0`` the initial rate):

=========================  ========================================================
Constant                   ``eta_t = lr0``
InverseScaling             ``eta_t = lr0 / (t + 1) ** power_t`` -- the notes'
                           ``eta0 / t^p`` with 1-based t, and scikit-learn's
                           ``'invscaling'`` when ``t`` counts the samples seen so far
StepDecay                  ``eta_t = lr0 * gamma ** floor(t / step_size)`` (``StepLR``)
MultiStepLR                ``eta_t = lr0 * gamma ** #{milestones <= t}`` (``MultiStepLR``)
ExponentialDecay           ``eta_t = lr0 * gamma ** t`` (``ExponentialLR``)
CosineAnnealing            ``eta_t = eta_min + (lr0 - eta_min) (1 + cos(pi t / T_max)) / 2``
                           (``CosineAnnealingLR``; periodic past ``T_max``, as PyTorch's)
CosineAnnealingWarmRestarts  the same within each period, ``T_cur`` steps into a period of
                           ``T_i = T_0 T_mult^i`` steps (``CosineAnnealingWarmRestarts``)
LinearLR                   ``eta_t = lr0 (s + (e - s) min(t, total_iters) / total_iters)``
                           (``LinearLR``: warm-up from ``s lr0`` to ``e lr0``)
LambdaLR                   ``eta_t = lr0 * lr_lambda(t)``, the user's function (``LambdaLR``)
MultiplicativeLR           ``eta_t = lr0 * prod_{k=1..t} lr_lambda(k)`` (``MultiplicativeLR``)
OneCycleLR                 up from ``max_lr / div_factor`` to ``max_lr`` over ``pct_start``
                           of ``total_steps``, then down to ``max_lr / div_factor /
                           final_div_factor`` (cosine or linear; momentum cycles the
                           other way) (``OneCycleLR``)
ReduceOnPlateau            multiply by ``factor`` (not below ``min_lr``) after more than
                           ``patience`` epochs without improvement (``ReduceLROnPlateau``)
ChainedScheduler           every part stepped in turn on the rate the one before left,
                           by torch's chainable forms (``ChainedScheduler``)
=========================  ========================================================

PyTorch's schedulers compute most rates by recursion from the previous one; the closed
forms here agree with them to rounding (tests check it over many steps when torch is
installed). OneCycleLR and the warm restarts are closed forms in torch too.
"""
import bisect
import copy
import functools
import math
import warnings
import numbers
import threading
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from nnlib._plateau import improves
from nnlib.exceptions import ConcurrentUseError
from nnlib._threads import holder_of
from nnlib._validation import check_int_scalar, check_real_scalar

__all__ = ["Schedule", "Constant", "InverseScaling", "StepDecay", "MultiStepLR",
           "ExponentialDecay", "CosineAnnealing", "CosineAnnealingWarmRestarts",
           "LinearLR", "OneCycleLR", "ReduceOnPlateau", "SequentialLR",
           "LambdaLR", "MultiplicativeLR", "ChainedScheduler",
           "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


def _groups(optimizer):
    return getattr(optimizer, "param_groups", None) or []


def _optimizer_first(init):
    """``init`` that also takes torch's argument order, the optimizer first
    (``StepLR(optimizer, step_size=30)``): an object with ``param_groups`` in the first
    place, where every schedule takes a number or a string, is passed as
    ``optimizer=``. It takes torch's keywords too: ``last_epoch=-1`` (torch's default,
    a fresh schedule; ported code writes it out) and a class's ``_torch_keywords``
    (``SequentialLR(optimizer, schedulers=[...], milestones=[...])``, torch's example)."""
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if args and hasattr(args[0], "param_groups"):
            if kwargs.get("optimizer") is not None:
                raise TypeError(f"{type(self).__name__} got an optimizer first (torch's "
                                f"order) and optimizer= too")
            args, kwargs = args[1:], {**kwargs, "optimizer": args[0]}
        for torch_name, name in getattr(type(self), "_torch_keywords", {}).items():
            if torch_name in kwargs:
                if name in kwargs:
                    raise TypeError(f"{type(self).__name__} got {torch_name}= (torch's "
                                    f"name) and {name}= too")
                kwargs[name] = kwargs.pop(torch_name)
        if "last_epoch" in kwargs:
            last = kwargs.pop("last_epoch")
            if isinstance(last, bool) or last != -1:
                # torch's last_epoch=N resumes by stepping its chainable form from the
                # groups' initial_lr; nnlib resumes from a state_dict or by epoch
                raise ValueError(f"{type(self).__name__} takes last_epoch=-1 (torch's "
                                 f"default: a fresh schedule) only; got {last!r}. To "
                                 f"resume at epoch N, load the schedule's state_dict or "
                                 f"call schedule(N) (fit(initial_epoch=N) does)")
        init(self, *args, **kwargs)
    setattr(wrapper, "_optimizer_first", True)
    return wrapper


def _takes_optimizer_later(init):
    """Whether ``init`` takes ``optimizer=`` but not as its first argument (nnlib's
    order, the optimizer last): the constructors :func:`_optimizer_first` gives
    torch's order too. A subclass's own ``__init__(self, optimizer, ...)`` (or
    ``(self, opt, ...)``, with no ``optimizer`` parameter) already takes the
    optimizer first and is left as written: moving its first argument to
    ``optimizer=`` would give it twice or to a parameter it does not have."""
    # the code object's names, not inspect.signature: no import of inspect for it
    code = init.__code__
    positional = code.co_varnames[1:code.co_argcount]                   # after self
    named = code.co_varnames[1:code.co_argcount + code.co_kwonlyargcount]
    return "optimizer" in named and positional[:1] != ("optimizer",)


def _written(optimizer, lr):
    """The rates now in ``optimizer``'s groups (``lr`` for an object without groups):
    what ``get_last_lr`` reports, copied as torch copies them."""
    groups = _groups(optimizer)
    return [float(g["lr"]) for g in groups] if groups else [lr]


def _refuse_other_thread(schedule, verb):
    """Raise ConcurrentUseError if a fit running in another thread steps ``schedule``
    (it claims it, and each part of one made of parts): a step is a read of the epoch
    count and a write of it and of the optimizer's rates, so two threads stepping one
    schedule can lose a step or write one epoch's rates over the next. From that fit's
    own thread (its callbacks) a step goes on, as before. One table look-up: schedules
    step per epoch or batch."""
    held = holder_of(schedule)
    if held is not None and held[0] != threading.get_ident():
        name = type(schedule).__name__
        if verb == "load_state_dict":
            raise ConcurrentUseError(
                f"{name}.load_state_dict: a fit running in another thread (thread "
                f"{held[0]}) is stepping this schedule; loading now would set its epoch "
                f"count and rates back under that fit, which steps on from them. Call "
                f"load_state_dict after that fit returns, or from one of its callbacks")
        raise ConcurrentUseError(
            f"{name}.{verb}: a fit running in another thread (thread {held[0]}) is "
            f"stepping this schedule; a step from here as well would move its epoch "
            f"count under that fit (a step lost or taken twice, one epoch's rates "
            f"written over the next's). Step it from a callback of that fit, or after "
            f"it returns. A rate written into the optimizer meanwhile lasts until this "
            f"schedule's next step writes its own")


class Schedule:
    """Base class of the epoch-indexed schedules: subclasses define ``_rate(t, lr0)``.

    Parameters
    ----------
    lr0 : float >= 0 or None
        Initial rate; None takes the bound optimizer's (each group's own).
    optimizer : object with a writable ``lr`` attribute, or None
        Optimizer whose rate the schedule writes (``nnlib.optim`` optimizers, or any
        object with an ``lr`` attribute).

    Examples
    --------
    A schedule that halves the rate every epoch:

    >>> class Halving(Schedule):
    ...     def _rate(self, t, lr0):
    ...         return lr0 * 0.5 ** t
    >>> s = Halving(lr0=1.0)
    >>> [s.lr_at(t) for t in range(3)]
    [1.0, 0.5, 0.25]
    >>> s.step(), s.epoch
    (0.5, 1)
    """

    # whether the base rates are the groups' "initial_lr" (torch's LRScheduler) or
    # their current rates (ReduceLROnPlateau, whose rate is state)
    _from_initial_lr = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_optimizer_first", False) and \
                _takes_optimizer_later(init):
            cls.__init__ = _optimizer_first(init)          # type: ignore[method-assign]

    @property
    def last_epoch(self) -> int:
        """torch's name of :attr:`epoch`: the steps taken (0 after construction).

        Examples
        --------
        >>> s = ExponentialDecay(0.5, lr0=1.0)
        >>> _ = s.step(); _ = s.step()
        >>> s.last_epoch, s.epoch
        (2, 2)
        """
        return self.epoch

    @_optimizer_first
    def __init__(self, lr0: Optional[float] = None, optimizer: Any = None) -> None:
        self.lr0 = None if lr0 is None else check_real_scalar(lr0, "lr0", low=0.0)
        self.optimizer = None
        self.epoch = 0
        self.lr = self.lr0
        self.base_lrs = None if lr0 is None else [self.lr0]
        self._last_lr: Optional[List[float]] = None
        if optimizer is not None:
            self.bind(optimizer)
        elif self.lr0 is not None:
            # the rate of epoch 0, which is not lr0 for every schedule (LinearLR's
            # start_factor, OneCycleLR's max_lr / div_factor, a milestone at 0)
            self._apply(self._current())

    def bind(self, optimizer: Any) -> "Schedule":
        """Attach ``optimizer``; take ``lr0`` (each group's) from it if not given; write
        the current rate.

        Without ``lr0``, each group's base rate is its ``"initial_lr"`` (torch's rule:
        the first schedule bound to the group records its rate under that key, and
        the optimizer's ``state_dict`` keeps it), so a fresh schedule bound to an
        optimizer that an earlier one has already decayed -- to resume a fit --
        starts from the original rate, not the decayed one.

        Parameters
        ----------
        optimizer : object with a writable ``lr``
            An ``nnlib.optim`` optimizer (its groups each follow the schedule), or any
            object with an ``lr`` attribute.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.optim import SGD
        >>> opt = SGD([np.zeros(1)], lr=0.5)
        >>> s = StepDecay(2, gamma=0.1).bind(opt)
        >>> s.lr0, s.step(), s.step(), opt.lr        # epoch 2: the first decay
        (0.5, 0.5, 0.05, 0.05)
        >>> t = StepDecay(2, gamma=0.1).bind(opt)    # a fresh schedule: the group's
        >>> t.lr0, t(3), opt.param_groups[0]["initial_lr"]     # initial_lr, as torch
        (0.5, 0.05, 0.5)
        """
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer must have an lr attribute; got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        groups = _groups(optimizer)
        if self.lr0 is None:
            self.lr0 = check_real_scalar(optimizer.lr, "optimizer.lr", low=0.0)
            if self._from_initial_lr:
                # torch's base_lrs: the first schedule bound records each group's rate
                # as "initial_lr", and every later one (a fresh schedule resuming a
                # fit) starts from it rather than from a rate already scheduled
                for g in groups:
                    g.setdefault("initial_lr", g["lr"])
            key = "initial_lr" if self._from_initial_lr else "lr"
            self.base_lrs = [check_real_scalar(g[key], key, low=0.0) for g in groups]
            if groups:
                self.lr0 = self.base_lrs[0]
        if not self.base_lrs or len(self.base_lrs) != len(groups):
            self.base_lrs = [self.lr0] * max(len(groups), 1)
        self._apply(self._current())
        return self

    def _check_optimizer(self, optimizer):
        """Raise if ``optimizer`` does not fit this schedule (a list of one value per
        group of another length): a schedule of parts checks each part with it, as
        the part's own ``bind`` would."""

    def _record_initial_lr(self):
        """Give each group of the bound optimizer without an ``"initial_lr"`` this
        schedule's base rate for it: a group added since binding (the one a fit adopts
        for an optimizer bound before it had parameters) then resumes from it, as a
        group present at binding does."""
        if not self._from_initial_lr:
            return
        bases = self.base_lrs or []
        for i, g in enumerate(_groups(self.optimizer)):
            g.setdefault("initial_lr", bases[i] if i < len(bases) else self.lr0)

    def get_last_lr(self) -> List[float]:
        """The rates the schedule last computed, one per parameter group
        (``torch.optim.lr_scheduler``'s ``get_last_lr``).

        As torch's: after construction (bound) or :meth:`bind`, the rates of epoch 0;
        after each :meth:`step` (or ``schedule(t)``), the rates it wrote. A rate set on
        the optimizer by hand since then is not seen (read ``opt.param_groups`` for
        the rates in force). Unbound, the one rate of the schedule's ``lr0``. The list
        is a copy.

        Returns
        -------
        list of float
            One rate per group of the bound optimizer (one for an optimizer without
            groups, or no optimizer).

        Raises
        ------
        ValueError
            For a schedule without ``lr0`` that was never bound: it has computed no
            rate yet.

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.optim import SGD
        >>> opt = SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)], "lr": 0.2}],
        ...           lr=0.1)
        >>> s = StepDecay(step_size=1, gamma=0.5, optimizer=opt)
        >>> s.get_last_lr()                          # before any step: epoch 0's
        [0.1, 0.2]
        >>> _ = s.step(); s.get_last_lr()
        [0.05, 0.1]
        >>> LinearLR(0.5, lr0=1.0).get_last_lr()    # unbound: epoch 0's rate of lr0
        [0.5]
        """
        if self._last_lr is None:
            raise ValueError(f"{type(self).__name__} has computed no rate yet: pass lr0= "
                             "or bind an optimizer")
        return list(self._last_lr)

    def _require_lr0(self):
        if self.lr0 is None:
            raise ValueError(f"{type(self).__name__} has no initial rate: pass lr0= or "
                             "an optimizer")
        return self.lr0

    def _current(self):
        return self.lr_at(self.epoch)

    def _apply(self, lr):
        """Write the rate of ``self.epoch``: ``lr`` to the first group, each other
        group its own from its base rate."""
        self.lr = lr
        opt = self.optimizer
        if opt is None:
            self._last_lr = [lr]
            return lr
        own = self._own_group_rates()
        if own is None:
            opt.lr = lr                         # every group and the defaults
        else:
            for g, rate in zip(_groups(opt), own):
                g["lr"] = check_real_scalar(rate, "lr", low=0.0)
        self._last_lr = _written(opt, lr)
        return lr

    @property
    def _varies_by_group(self) -> bool:
        # whether a group's rate depends on more than its base rate (the user's
        # functions, one per group, of a LambdaLR or MultiplicativeLR, or a part's)
        return False

    def _own_group_rates(self):
        """Each group's rate for ``self.epoch`` from its own base rate, or None when
        the groups share the first group's (``self.lr``): the one rule of which
        groups get their own rate, for ``_apply`` and ``_rates_of_epoch``."""
        groups, bases = _groups(self.optimizer), self.base_lrs or []
        if len(groups) > 1 and (len(set(bases)) > 1 or self._varies_by_group):
            return [self._rate_of_group(self.epoch, base, g)
                    for g, base in enumerate(bases)]
        return None

    def _rates_of_epoch(self):
        """The rates ``_apply`` writes for ``self.epoch`` (whose first is ``self.lr``),
        computed without writing: ``get_last_lr`` of a state_dict saved before it
        existed."""
        own = self._own_group_rates()
        if own is None:
            return [self.lr] * max(len(_groups(self.optimizer)), 1)
        return [float(rate) for rate in own]

    def _rate(self, t: int, lr0: float) -> float:
        raise NotImplementedError

    def _rate_of_group(self, t, base, group):
        """The rate of epoch ``t`` of group ``group`` from its base rate: ``_rate``'s,
        but for the user's functions given one per group."""
        return self._rate(t, base)

    def _chained(self, t: int, lr: float, base: float, group: int) -> float:
        """The rate this schedule's step to epoch ``t`` makes of the rate in force
        ``lr`` of group ``group`` (base rate ``base``) inside a
        :class:`ChainedScheduler`: torch's chainable form (``lr * gamma`` for
        ExponentialLR). A schedule torch computes in closed form only (LambdaLR,
        OneCycleLR, the warm restarts) and nnlib's own (Constant, InverseScaling)
        set their closed form, whatever the rate in force, as torch's closed forms do."""
        return self._rate_of_group(t, base, group)

    def lr_at(self, t: int) -> float:
        """The rate of epoch ``t`` (closed form) from ``lr0``; changes no state.

        Parameters
        ----------
        t : int >= 0

        Returns
        -------
        float

        Examples
        --------
        >>> s = CosineAnnealing(T_max=4, lr0=1.0)
        >>> [round(s.lr_at(t), 6) for t in range(5)], s.epoch
        ([1.0, 0.853553, 0.5, 0.146447, 0.0], 0)
        """
        return self._rate(t, self._require_lr0())

    def __call__(self, t: int) -> float:
        """Set the epoch to ``t`` (an int >= 0), write and return ``eta_t``: jump to
        any epoch, e.g. to resume, or use the schedule as ``fit``'s ``epoch -> lr``
        callable.

        Parameters
        ----------
        t : int >= 0

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.optim import SGD
        >>> opt = SGD([np.zeros(1)], lr=1.0)
        >>> s = StepDecay(step_size=10, gamma=0.5, optimizer=opt)
        >>> s(25), s.epoch, opt.lr                   # two decays by epoch 25
        (0.25, 25, 0.25)
        >>> s.step()                                 # continues from epoch 25
        0.25
        """
        _refuse_other_thread(self, "__call__")
        self.epoch = check_int_scalar(t, "t", low=0)
        return self._apply(self.lr_at(self.epoch))

    def step(self, metric: Optional[float] = None) -> float:
        """Advance one epoch; write and return the new rate (``metric`` is ignored).

        Parameters
        ----------
        metric : float, optional
            Ignored (``ReduceOnPlateau`` needs it); accepted so a loop can step any
            schedule alike.

        Returns
        -------
        float

        Examples
        --------
        >>> s = ExponentialDecay(0.5, lr0=1.0)
        >>> [s.step() for _ in range(3)], s.epoch
        ([0.5, 0.25, 0.125], 3)
        """
        _refuse_other_thread(self, "step")
        self._warn_if_overwritten()
        return self(self.epoch + 1)

    def _warn_if_overwritten(self):
        """Warn when the bound optimizer's rates are no longer those this schedule last
        wrote: something else writes them too (a second schedule, as torch users chain
        them, or code setting ``opt.lr``), and this step replaces that rate with the
        closed form's, where a torch scheduler would have scaled it."""
        if self.__dict__.pop("_loaded", False) or self.optimizer is None or \
                self._last_lr is None:
            return
        if _written(self.optimizer, self.lr) != self._last_lr:
            # one message per class (no numbers): the default filter shows it once per
            # place it is stepped from, not every epoch
            warnings.warn(f"{type(self).__name__}.step: the optimizer's lr changed since "
                          f"this schedule last wrote it (another schedule stepped on the "
                          f"same optimizer, or a rate set by hand); nnlib's schedules "
                          f"write their closed-form rate, so this step overwrites that "
                          f"change instead of scaling it as torch.optim.lr_scheduler's "
                          f"chained schedulers do. Step one schedule per optimizer "
                          f"(ChainedScheduler to compose them as torch does, "
                          f"SequentialLR for one after another)", UserWarning,
                          stacklevel=3)

    def state_dict(self) -> Dict[str, Any]:
        """Everything but the optimizer (``torch.optim.lr_scheduler``'s rule).

        Examples
        --------
        >>> from nnlib.schedules import StepDecay
        >>> s = StepDecay(2, gamma=0.5, lr0=1.0)
        >>> _ = s.step(); _ = s.step()
        >>> sd = s.state_dict(); sd["epoch"], sd["lr"]
        (2, 0.5)
        >>> t = StepDecay(2, lr0=1.0); t.load_state_dict(sd); t.epoch, t.gamma
        (2, 0.5)
        """
        return {k: (list(v) if isinstance(v, list) else v)
                for k, v in self.__dict__.items() if k not in ("optimizer", "_loaded")}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of the same class (the optimizer, and the rate it
        holds, are not touched: load the optimizer's own ``state_dict`` for that).

        Parameters
        ----------
        state_dict : dict
            From :meth:`state_dict` of a schedule of the same class.

        Raises
        ------
        ValueError
            If the keys are not this schedule's, or ``epoch`` is not an integer >= 0.

        Examples
        --------
        >>> s = MultiStepLR([2, 4], gamma=0.1, lr0=1.0)
        >>> _ = s(3)                                  # jump to epoch 3
        >>> t = MultiStepLR([2, 4], gamma=0.1, lr0=1.0)
        >>> t.load_state_dict(s.state_dict())
        >>> t.epoch, round(t.step(), 12)              # epoch 4: the second milestone
        (3, 0.01)
        >>> t.load_state_dict({"epoch": 1})
        Traceback (most recent call last):
        ...
        ValueError: MultiStepLR.load_state_dict needs the keys ...
        """
        _refuse_other_thread(self, "load_state_dict")
        mine = set(self.state_dict())
        # saved by an nnlib without get_last_lr: everything but "_last_lr"
        older = isinstance(state_dict, dict) and set(state_dict) == mine - {"_last_lr"}
        if not isinstance(state_dict, dict) or (set(state_dict) != mine and not older):
            got = sorted(state_dict) if isinstance(state_dict, dict) else state_dict
            raise ValueError(f"{type(self).__name__}.load_state_dict needs the keys "
                             f"{sorted(mine)}; got {got}")
        check_int_scalar(state_dict["epoch"], "epoch", low=0)
        groups, bases = _groups(self.optimizer), state_dict.get("base_lrs")
        if groups and isinstance(bases, list) and len(bases) not in (0, len(groups)):
            # its rates are one per group of the optimizer it was saved with (torch's
            # load takes them and fails at the next step: zip() argument 2 is shorter)
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state holds "
                             f"the base rates of {len(bases)} parameter groups; the "
                             f"bound optimizer has {len(groups)}")
        self._check_loaded(state_dict)
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v)
                              for k, v in state_dict.items()})
        if older:
            self._last_lr = None if self.lr is None else self._rates_of_epoch()
        # the optimizer's rate need not be the loaded _last_lr yet (its state_dict is
        # loaded before or after, or a fresh schedule wrote epoch 0's meanwhile): the
        # next step writes the loaded epoch's successor without taking that for a
        # second writer
        self._loaded = True

    def _check_loaded(self, state_dict):
        """Run the constructor's checks on the hyper-parameters of a state to load: one
        edited by hand or damaged (StepLR's ``step_size=-1`` gave ``lr0 * gamma ** -1``,
        ten times the rate, without a word). A subclass of the user's, whose constructor
        nnlib does not know, is loaded as given. The user's functions are not called
        (torch's load calls none): the check runs on stand-ins of them."""
        if type(self).__module__ != __name__:
            return
        loaded = object.__new__(type(self))
        loaded.__dict__.update(self.__dict__)
        loaded.__dict__.update(state_dict)
        try:
            type(self)(**loaded._checked_params())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{type(self).__name__}.load_state_dict: {exc}") from None

    def _initial_lr(self):
        """The ``initial_lr`` this schedule gives the first group it is bound to: the
        rate it started from (OneCycleLR's is its first step's)."""
        return self.lr0

    def _stand_in(self):
        """An unbound copy for a constructor check, whose rates call none of the user's
        functions (a lambda schedule's are replaced by a constant factor 1)."""
        stand_in = copy.copy(self)
        stand_in.optimizer = None
        return stand_in

    def _checked_params(self):
        """:meth:`_params` as ``_check_loaded`` passes them to the constructor."""
        return self._params()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _params(self):
        return {"lr0": self.lr0}


class Constant(Schedule):
    """``eta_t = lr0`` for every ``t``.

    Examples
    --------
    >>> Constant(0.1).lr_at(100)
    0.1
    """

    def _rate(self, t, lr0):
        return lr0


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

    Examples
    --------
    >>> InverseScaling(1.0, power_t=0.5).lr_at(3)
    0.5
    """

    def __init__(self, lr0: Optional[float] = None, power_t: float = 0.5,
                 optimizer: Any = None) -> None:
        self.power_t = check_real_scalar(power_t, "power_t", low=0.0)
        super().__init__(lr0, optimizer)

    def _rate(self, t, lr0):
        return lr0 / (t + 1) ** self.power_t

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

    Examples
    --------
    >>> [StepDecay(2, gamma=0.5, lr0=1.0).lr_at(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, step_size: int, gamma: float = 0.1, lr0: Optional[float] = None,
                 optimizer: Any = None) -> None:
        self.step_size = check_int_scalar(step_size, "step_size", low=1)
        self.gamma = check_real_scalar(gamma, "gamma", low=0.0, high=1.0, low_open=True)
        super().__init__(lr0, optimizer)

    def _rate(self, t, lr0):
        return lr0 * self.gamma ** (t // self.step_size)

    def _chained(self, t, lr, base, group):
        return lr * self.gamma if t and not t % self.step_size else lr    # torch's form

    def _params(self):
        return {"step_size": self.step_size, "gamma": self.gamma, "lr0": self.lr0}


class MultiStepLR(Schedule):
    """``eta_t = lr0 * gamma ** (number of milestones <= t)`` (PyTorch's ``MultiStepLR``;
    a milestone listed twice counts twice, as there).

    Parameters
    ----------
    milestones : sequence of int >= 0
    gamma : float in (0, 1], default 0.1
    lr0, optimizer : optional

    Examples
    --------
    >>> [MultiStepLR([1, 3], gamma=0.5, lr0=1.0).lr_at(t) for t in range(5)]
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1, lr0: Optional[float] = None,
                 optimizer: Any = None) -> None:
        try:
            ms = list(milestones)
        except TypeError:
            raise TypeError(f"milestones must be a list of epochs; got {milestones!r}") \
                from None
        self.milestones = sorted(check_int_scalar(m, "milestones[i]", low=0) for m in ms)
        self.gamma = check_real_scalar(gamma, "gamma", low=0.0, high=1.0, low_open=True)
        super().__init__(lr0, optimizer)

    def _rate(self, t, lr0):
        return lr0 * self.gamma ** bisect.bisect_right(self.milestones, t)

    def _chained(self, t, lr, base, group):
        hits = self.milestones.count(t)                 # torch's Counter of milestones
        return lr * self.gamma ** hits if hits else lr

    def _params(self):
        return {"milestones": self.milestones, "gamma": self.gamma, "lr0": self.lr0}


class ExponentialDecay(Schedule):
    """``eta_t = lr0 * gamma ** t`` (PyTorch's ``ExponentialLR``).

    Parameters
    ----------
    gamma : float in (0, 1]
    lr0, optimizer : optional

    Examples
    --------
    >>> ExponentialDecay(0.5, lr0=1.0).lr_at(3)
    0.125
    """

    def __init__(self, gamma: float, lr0: Optional[float] = None, optimizer: Any = None) -> None:
        self.gamma = check_real_scalar(gamma, "gamma", low=0.0, high=1.0, low_open=True)
        super().__init__(lr0, optimizer)

    def _rate(self, t, lr0):
        return lr0 * self.gamma ** t

    def _chained(self, t, lr, base, group):
        return lr * self.gamma if t else lr

    def _params(self):
        return {"gamma": self.gamma, "lr0": self.lr0}


def _cosine(eta_min, lr0, t, period):
    return eta_min + (lr0 - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


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

    Examples
    --------
    >>> CosineAnnealing(10, lr0=1.0).lr_at(5)
    0.5
    """

    def __init__(self, T_max: int, eta_min: float = 0.0, lr0: Optional[float] = None,
                 optimizer: Any = None) -> None:
        self.T_max = check_int_scalar(T_max, "T_max", low=1)
        self.eta_min = check_real_scalar(eta_min, "eta_min", low=0.0)
        super().__init__(lr0, optimizer)

    def _rate(self, t, lr0):
        return _cosine(self.eta_min, lr0, t, self.T_max)

    def _chained(self, t, lr, base, group):
        # torch's recursive form: an affine map of the rate in force, with its special
        # step just past each minimum (where the ratio's denominator is 0)
        if t == 0:
            return lr
        T, eta_min = self.T_max, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:
            return lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta_min) + eta_min)

    def _params(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min, "lr0": self.lr0}


class CosineAnnealingWarmRestarts(Schedule):
    """Cosine annealing restarted every period (SGDR; PyTorch's
    ``CosineAnnealingWarmRestarts``).

    The periods are ``T_0, T_0 T_mult, T_0 T_mult^2, ...`` steps; ``T_cur`` steps into a
    period of ``T_i`` steps, ``eta_t = eta_min + (lr0 - eta_min) (1 + cos(pi T_cur /
    T_i)) / 2``. Periods are found by integer arithmetic, as torch's stepping does.

    Parameters
    ----------
    T_0 : int >= 1
    T_mult : int >= 1, default 1
    eta_min : float >= 0, default 0
    lr0, optimizer : optional

    Examples
    --------
    >>> s = CosineAnnealingWarmRestarts(2, T_mult=2, lr0=1.0)
    >>> [s.lr_at(t) for t in (0, 1, 2, 4, 6)]          # restarts at 2 and 6
    [1.0, 0.5, 1.0, 0.5, 1.0]
    """

    def __init__(self, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 lr0: Optional[float] = None, optimizer: Any = None) -> None:
        self.T_0 = check_int_scalar(T_0, "T_0", low=1)
        self.T_mult = check_int_scalar(T_mult, "T_mult", low=1)
        self.eta_min = check_real_scalar(eta_min, "eta_min", low=0.0)
        super().__init__(lr0, optimizer)

    def period(self, t: int) -> Tuple[int, int]:
        """``(T_cur, T_i)`` at step ``t``.

        Parameters
        ----------
        t : int >= 0

        Returns
        -------
        T_cur : int
            Steps into the current period.
        T_i : int
            The current period's length.

        Examples
        --------
        >>> s = CosineAnnealingWarmRestarts(T_0=2, T_mult=2, lr0=1.0)
        >>> [s.period(t) for t in range(7)]        # restarts at 2 and 6
        [(0, 2), (1, 2), (0, 4), (1, 4), (2, 4), (3, 4), (0, 8)]
        """
        T_i = self.T_0
        if self.T_mult == 1:
            return t % T_i, T_i
        while t >= T_i:
            t -= T_i
            T_i *= self.T_mult
        return t, T_i

    def _rate(self, t, lr0):
        T_cur, T_i = self.period(t)
        return _cosine(self.eta_min, lr0, T_cur, T_i)

    def _params(self):
        return {"T_0": self.T_0, "T_mult": self.T_mult, "eta_min": self.eta_min,
                "lr0": self.lr0}


class LinearLR(Schedule):
    """Linear warm-up (or decay) of the rate's factor (PyTorch's ``LinearLR``).

    ``eta_t = lr0 * (start_factor + (end_factor - start_factor) * min(t, total_iters) /
    total_iters)``: from ``start_factor * lr0`` to ``end_factor * lr0`` over
    ``total_iters`` steps, then constant.

    Parameters
    ----------
    start_factor : float in (0, 1], default 1/3
    end_factor : float in [0, 1], default 1
    total_iters : int >= 1, default 5
    lr0, optimizer : optional

    Examples
    --------
    >>> [LinearLR(0.25, total_iters=3, lr0=1.0).lr_at(t) for t in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, lr0: Optional[float] = None, optimizer: Any = None) -> None:
        self.start_factor = check_real_scalar(start_factor, "start_factor", low=0.0,
                                              high=1.0, low_open=True)
        self.end_factor = check_real_scalar(end_factor, "end_factor", low=0.0, high=1.0)
        self.total_iters = check_int_scalar(total_iters, "total_iters", low=1)
        super().__init__(lr0, optimizer)

    def _rate(self, t, lr0):
        frac = min(t, self.total_iters) / self.total_iters
        return lr0 * (self.start_factor + (self.end_factor - self.start_factor) * frac)

    def _chained(self, t, lr, base, group):
        # torch's chainable form: the start factor at epoch 0, then the ratio of
        # successive factors until total_iters
        start, end, n = self.start_factor, self.end_factor, self.total_iters
        if t == 0:
            return lr * start
        if t > n:
            return lr
        return lr * (1.0 + (end - start) / (n * start + (t - 1) * (end - start)))

    def _params(self):
        return {"start_factor": self.start_factor, "end_factor": self.end_factor,
                "total_iters": self.total_iters, "lr0": self.lr0}


def _scalar_or_list(value, name, **bounds):
    """A float, or for a sequence a list of floats (one per parameter group), each
    checked against ``bounds``."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} must be a number or a non-empty list, one per "
                             f"parameter group; got {value!r}")
        return [check_real_scalar(v, f"{name}[{i}]", **bounds) for i, v in enumerate(value)]
    return check_real_scalar(value, name, **bounds)


def _per_group(value, name, n_groups):
    """``value`` for each of ``n_groups`` groups: a float repeated, or a list of exactly
    that length (torch's ``_format_param`` rule)."""
    if not isinstance(value, list):
        return [value] * n_groups
    if len(value) != n_groups:
        raise ValueError(f"expected {n_groups} values for {name}, one per parameter "
                         f"group; got {len(value)}")
    return list(value)


class OneCycleLR(Schedule):
    """The one-cycle policy (PyTorch's ``OneCycleLR``), stepped once per batch.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` steps, then falls to ``max_lr / div_factor /
    final_div_factor`` (``three_phase``: back to the start first, then down), along a
    cosine (``anneal_strategy='cos'``) or linearly. With ``cycle_momentum`` the optimizer's
    momentum (``betas[0]`` for Adam) cycles the other way between ``max_momentum`` and
    ``base_momentum``. Stepping past ``total_steps`` raises, as in torch.

    Parameter groups follow torch's rule: ``max_lr``, ``base_momentum`` and
    ``max_momentum`` are each one number for every group or a list with one per group
    (group ``i`` cycles between ``max_lr[i] / div_factor`` and ``max_lr[i]``); the
    groups' own rates are not used. ``div_factor`` and ``final_div_factor`` are one
    number for all groups, as in torch.

    Parameters
    ----------
    max_lr : float > 0 or list of float > 0
        One per parameter group when a list (its length must be the optimizer's number
        of groups).
    total_steps : int >= 1, optional
        Or ``epochs * steps_per_epoch``.
    epochs, steps_per_epoch : int >= 1, optional
    pct_start : float in [0, 1], default 0.3
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float or list of float, defaults 0.85, 0.95
        One per parameter group when a list.
    div_factor : float > 0, default 25
    final_div_factor : float > 0, default 1e4
    three_phase : bool, default False
    optimizer : optional

    Examples
    --------
    >>> s = OneCycleLR(1.0, total_steps=10, div_factor=10.0, final_div_factor=1.0)
    >>> round(s.lr_at(0), 12), s.lr_at(2), round(s.lr_at(9), 12)
    (0.1, 1.0, 0.1)

    One peak rate per parameter group:

    >>> import numpy as np
    >>> from nnlib.optim import SGD
    >>> opt = SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}], lr=0.1,
    ...           momentum=0.9)
    >>> s = OneCycleLR([1.0, 0.1], total_steps=10, div_factor=10.0, optimizer=opt)
    >>> [round(r, 12) for r in s.get_last_lr()]
    [0.1, 0.01]
    >>> _ = s(2); s.get_last_lr()                  # the peak: each group's max_lr
    [1.0, 0.1]
    """

    def __init__(self, max_lr: Union[float, Sequence[float]],
                 total_steps: Optional[int] = None,
                 epochs: Optional[int] = None, steps_per_epoch: Optional[int] = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: Union[float, Sequence[float]] = 0.85,
                 max_momentum: Union[float, Sequence[float]] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, optimizer: Any = None) -> None:
        self.max_lr = _scalar_or_list(max_lr, "max_lr", low=0.0, low_open=True)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or epochs and "
                                 "steps_per_epoch")
            total_steps = (check_int_scalar(epochs, "epochs", low=1)
                           * check_int_scalar(steps_per_epoch, "steps_per_epoch", low=1))
        self.total_steps = check_int_scalar(total_steps, "total_steps", low=1)
        self.pct_start = check_real_scalar(pct_start, "pct_start", low=0.0, high=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear'; got "
                             f"{anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = _scalar_or_list(base_momentum, "base_momentum", low=0.0,
                                             high=1.0, high_open=True)
        self.max_momentum = _scalar_or_list(max_momentum, "max_momentum", low=0.0,
                                            high=1.0, high_open=True)
        self.div_factor = check_real_scalar(div_factor, "div_factor", low=0.0,
                                            low_open=True)
        self.final_div_factor = check_real_scalar(final_div_factor, "final_div_factor",
                                                  low=0.0, low_open=True)
        self.three_phase = bool(three_phase)
        # unbound, the schedule is the first group's
        super().__init__(_first(self.max_lr), None)
        if optimizer is not None:
            self.bind(optimizer)

    def bind(self, optimizer: Any) -> "Schedule":
        """Attach ``optimizer`` and write the first step's rate (``max_lr /
        div_factor``, each group's own with a list) to every group, whatever its own
        rate (torch's rule), and with ``cycle_momentum`` its momentum (SGD) or first
        beta (Adam).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            With ``cycle_momentum``, an optimizer without momentum or betas; a list
            ``max_lr``, ``base_momentum`` or ``max_momentum`` whose length is not the
            number of parameter groups.

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.optim import SGD, Adagrad
        >>> opt = SGD([np.zeros(1)], lr=5.0, momentum=0.9)
        >>> s = OneCycleLR(max_lr=1.0, total_steps=10).bind(opt)
        >>> round(opt.lr, 12), opt.momentum          # max_lr / 25, max_momentum
        (0.04, 0.95)
        >>> OneCycleLR(max_lr=1.0, total_steps=10).bind(Adagrad([np.zeros(1)]))
        Traceback (most recent call last):
        ...
        ValueError: optimizer Adagrad does not support momentum with cycle_momentum enabled
        >>> OneCycleLR(max_lr=[1.0, 2.0], total_steps=10).bind(opt)
        Traceback (most recent call last):
        ...
        ValueError: expected 1 values for max_lr, one per parameter group; got 2
        """
        self._check_optimizer(optimizer)
        max_lrs = _per_group(self.max_lr, "max_lr", max(len(_groups(optimizer)), 1))
        self.lr0 = max_lrs[0]              # every group follows its max_lr (torch's rule)
        self.base_lrs = max_lrs
        for g, max_lr in zip(_groups(optimizer), max_lrs):
            g["initial_lr"] = max_lr / self.div_factor          # torch overwrites it too
        return super().bind(optimizer)

    def _initial_lr(self):
        # torch's OneCycleLR sets each group's initial_lr to max_lr / div_factor
        return _first(self.max_lr) / self.div_factor

    def _check_optimizer(self, optimizer):
        """``optimizer`` has momentum or betas to cycle (with ``cycle_momentum``), and
        as many groups as each list of ``max_lr`` and the momenta has entries."""
        if self.cycle_momentum and not any(
                k in getattr(optimizer, "_HYPER", ()) for k in ("momentum", "betas")):
            raise ValueError(f"optimizer {type(optimizer).__name__} does not support "
                             f"momentum with cycle_momentum enabled")
        n = max(len(_groups(optimizer)), 1)
        _per_group(self.max_lr, "max_lr", n)
        if self.cycle_momentum:
            _per_group(self.base_momentum, "base_momentum", n)
            _per_group(self.max_momentum, "max_momentum", n)

    def _phases(self, max_lr, m_lo, m_hi):
        """[(end step, start lr, end lr, start momentum, end momentum)], torch's, for a
        group of peak rate ``max_lr`` and momenta ``m_lo`` (base) and ``m_hi``
        (max)."""
        T, p = self.total_steps, self.pct_start
        lo = max_lr / self.div_factor
        hi, floor = max_lr, lo / self.final_div_factor
        if self.three_phase:
            return [(float(p * T) - 1, lo, hi, m_hi, m_lo),
                    (float(2 * p * T) - 2, hi, lo, m_lo, m_hi),
                    (T - 1, lo, floor, m_hi, m_hi)]
        return [(float(p * T) - 1, lo, hi, m_hi, m_lo), (T - 1, hi, floor, m_lo, m_hi)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, t, max_lr, m_lo=0.0, m_hi=0.0):
        """(rate, momentum) at step ``t`` of a group with these peaks."""
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {t} times; total_steps is "
                             f"{self.total_steps}")
        start = 0
        phases = self._phases(max_lr, m_lo, m_hi)
        for i, (end, lr_a, lr_b, m_a, m_b) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start)
                return self._anneal(lr_a, lr_b, pct), self._anneal(m_a, m_b, pct)
            start = end

    def _rate(self, t, lr0):
        # lr0 is the group's max_lr (base_lrs holds one per group)
        return self._at(t, lr0)[0]

    def _chained(self, t, lr, base, group):
        # in a ChainedScheduler: the closed form of the group's own max_lr (torch's
        # reads it from the group), not of the chain's base rate (max_lr / div_factor)
        max_lr = self.max_lr[group] if isinstance(self.max_lr, list) else self.max_lr
        return self._rate(t, max_lr)

    def _apply(self, lr):
        lr = super()._apply(lr)
        if self.optimizer is not None and self.cycle_momentum:
            self._cycle_momentum(self.optimizer)
        return lr

    def _cycle_momentum(self, opt):
        """Write epoch ``self.epoch``'s momentum (Adam's first beta) to ``opt``'s
        groups, each from its own max_lr and momenta (a ChainedScheduler holding this
        schedule writes it so, as torch's OneCycleLR does in a chain)."""
        groups = _groups(opt)
        n = max(len(groups), 1)
        bases = _per_group(self.base_momentum, "base_momentum", n)
        peaks = _per_group(self.max_momentum, "max_momentum", n)
        momenta = [self._at(self.epoch, max_lr, lo, hi)[1] for max_lr, lo, hi in
                   zip(_per_group(self.max_lr, "max_lr", n), bases, peaks)]
        if "betas" in getattr(opt, "_HYPER", ()):
            if len(set(momenta)) == 1:
                for h in groups or [opt.defaults]:
                    h["betas"] = (momenta[0], h["betas"][1])
            else:
                for h, m in zip(groups, momenta):
                    h["betas"] = (m, h["betas"][1])
        elif len(set(momenta)) == 1:
            opt.momentum = momenta[0]
        else:
            for g, m in zip(groups, momenta):
                g["momentum"] = m

    def _params(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "anneal_strategy": self.anneal_strategy,
                "cycle_momentum": self.cycle_momentum, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor,
                "three_phase": self.three_phase}


def _first(value):
    return value[0] if isinstance(value, list) else value


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
    min_lr : float >= 0 or list of float >= 0, default 0
        The floor of the rate; a list holds one per parameter group of the optimizer
        (torch's), whose length is checked when it is bound.
    eps : float >= 0, default 1e-8
    lr0, optimizer : optional
        As for the other schedules; the rate then evolves from ``lr0``.

    Notes
    -----
    ``fit(initial_epoch=N)`` moves the other schedules to epoch N, since their rate is
    a function of the epoch. It does not move this one: its rate is state (what the
    metric's history did to it), which no epoch number recovers, and that is how
    both references behave. Keras's ``ReduceLROnPlateau`` callback keeps no epoch at
    all (only its wait and cooldown counts); torch's ``ReduceLROnPlateau`` has a
    ``last_epoch`` that ``step`` advances but no rate reads. So a fresh
    ReduceOnPlateau given to a resumed fit starts from the rate the optimizer holds
    (load the optimizer's ``state_dict`` to keep a reduced rate) with a fresh
    patience count, as a fresh Keras callback does; one carried over (or restored
    with :meth:`load_state_dict`) goes on from its best value and counts, as torch's
    does. ``epoch`` counts this schedule's own steps (torch's ``last_epoch``), not
    fit's absolute epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import SGD
    >>> opt = SGD([np.zeros(2)], lr=1.0)
    >>> s = ReduceOnPlateau(patience=1, factor=0.5, optimizer=opt)
    >>> [s.step(loss) for loss in [1.0, 1.0, 1.0, 1.0, 0.5]]   # 2 bad epochs > patience
    [1.0, 1.0, 0.5, 0.5, 0.5]
    >>> opt.lr
    0.5

    A resumed fit leaves a fresh one at the optimizer's rate, its count at its own
    steps:

    >>> import nnlib
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    >>> fresh = ReduceOnPlateau(patience=5)
    >>> _ = model.fit(np.eye(2), [0, 1], optimizer=SGD(lr=0.1), epochs=5,
    ...               initial_epoch=3, schedule=fresh)
    >>> fresh.epoch, fresh.lr                    # 2 epochs stepped, from epoch 3 on
    (2, 0.1)
    """

    _from_initial_lr = False

    def __init__(self, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8, lr0: Optional[float] = None,
                 optimizer: Any = None) -> None:
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
        self.min_lr = _scalar_or_list(min_lr, "min_lr", low=0.0)
        self.eps = check_real_scalar(eps, "eps", low=0.0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        super().__init__(lr0, optimizer)

    def bind(self, optimizer: Any) -> "Schedule":
        self._check_optimizer(optimizer)
        return super().bind(optimizer)

    def _check_optimizer(self, optimizer):
        """A list ``min_lr`` has one floor per parameter group (torch's "expected N
        min_lrs")."""
        _per_group(self.min_lr, "min_lr", max(len(_groups(optimizer)), 1))

    def _current(self):
        # the rate is state, not a function of the epoch
        groups = _groups(self.optimizer)
        if len(groups) > 1:
            return groups[0]["lr"]
        return self.lr if self.lr is not None else self._require_lr0()

    def lr_at(self, t: int) -> float:
        """Not available: the rate depends on the metric history, not on ``t``.

        Raises
        ------
        TypeError
            Always; use :meth:`step` with the metric, and ``lr`` for the current rate.

        Examples
        --------
        >>> s = ReduceOnPlateau(lr0=0.1)
        >>> s.lr
        0.1
        >>> s.lr_at(3)
        Traceback (most recent call last):
        ...
        TypeError: ReduceOnPlateau's rate depends on the metric history, not on t; use step(metric)
        """
        raise TypeError("ReduceOnPlateau's rate depends on the metric history, not on t; "
                        "use step(metric)")

    def __call__(self, t: int) -> float:
        """Not available, as :meth:`lr_at`: a ``ReduceOnPlateau`` is no ``epoch -> lr``
        callable (give it to ``fit`` as ``schedule=``, which steps it with the monitored
        loss).

        Raises
        ------
        TypeError
            Always.

        Examples
        --------
        >>> ReduceOnPlateau(lr0=0.1)(3)
        Traceback (most recent call last):
        ...
        TypeError: ReduceOnPlateau's rate depends on the metric history, not on t; use step(metric)
        """
        return self.lr_at(t)

    def _improves(self, value):
        return improves(value, self.best, mode=self.mode, threshold=self.threshold,
                        threshold_mode=self.threshold_mode)

    def step(self, metric: Optional[float] = None) -> float:
        """Record this epoch's ``metric``; write and return the (possibly reduced) rate.

        Parameters
        ----------
        metric : float
            The monitored value of the epoch (NaN never improves).

        Returns
        -------
        float

        Examples
        --------
        >>> s = ReduceOnPlateau(mode="max", patience=0, factor=0.5, lr0=1.0)
        >>> s.step(0.8), s.step(0.9), s.step(0.9)     # accuracy stalls: halve
        (1.0, 1.0, 0.5)
        >>> s.step(None)
        Traceback (most recent call last):
        ...
        TypeError: ReduceOnPlateau.step needs the monitored metric (a real number); got None
        """
        _refuse_other_thread(self, "step")
        if isinstance(metric, bool) or not isinstance(metric, numbers.Real):
            raise TypeError(f"ReduceOnPlateau.step needs the monitored metric (a real "
                            f"number); got {metric!r}")
        n_groups = max(len(_groups(self.optimizer)), 1)
        if isinstance(self.min_lr, list) and self.optimizer is not None and \
                n_groups != len(self.min_lr):
            # checked at bind; a group added since (add_param_group) has no floor of
            # its own (torch's RuntimeError), refused before this step counts
            raise ValueError(f"ReduceOnPlateau has {len(self.min_lr)} values for min_lr "
                             f"and the optimizer {n_groups} parameter groups (one added "
                             f"since binding?): give min_lr one floor per group")
        # the rate in force, as torch's reads it from the group: one set by hand or by
        # another schedule since the last step is the one reduced, not overwritten
        lr = (check_real_scalar(self.optimizer.lr, "optimizer.lr", low=0.0)
              if self.optimizer is not None else self._current())
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
            groups = _groups(self.optimizer)
            for i, g in enumerate(groups[1:] if len(groups) > 1 else [], 1):
                g["lr"] = self._reduced(g["lr"], i)             # each group on its own
            lr = self._reduced(lr, 0)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self._apply(lr)

    def _reduced(self, lr, group):
        floor = self.min_lr[group] if isinstance(self.min_lr, list) else self.min_lr
        new_lr = max(lr * self.factor, floor)
        return new_lr if lr - new_lr > self.eps else lr

    def _rates_of_epoch(self):
        # the other groups' rates live in the optimizer (step reduces them in place):
        # as its state_dict restored them
        rates = _written(self.optimizer, self.lr)
        rates[0] = self.lr
        return rates

    def _apply(self, lr):
        # the first group's rate; the others were reduced in place by step
        self.lr = lr
        groups = _groups(self.optimizer)
        if len(groups) > 1:
            groups[0]["lr"] = lr
        elif self.optimizer is not None:
            self.optimizer.lr = lr
        self._last_lr = _written(self.optimizer, lr)
        return lr

    def _params(self):
        return {"mode": self.mode, "factor": self.factor, "patience": self.patience,
                "threshold": self.threshold, "threshold_mode": self.threshold_mode,
                "cooldown": self.cooldown, "min_lr": self.min_lr, "eps": self.eps,
                "lr0": self.lr0}


def _rate_before_parts(schedules, optimizer):
    """The base rate of a schedule of ``schedules`` whose parts are bound to
    ``optimizer`` (None: to any), when it has no groups (nnlib's before fit gives it
    parameters): the ``initial_lr`` a group would hold once every bound part was bound,
    which torch keeps and such an optimizer cannot (its ``lr`` is the parts' by now);
    None otherwise. The first bound part records its rate, and each OneCycleLR
    overwrites it (torch's OneCycleLR sets ``initial_lr`` whatever it was), so a
    LambdaLR after ``[LinearLR, OneCycleLR]`` starts from ``max_lr / div_factor``."""
    base = None
    for part in schedules:
        if part.optimizer is not None and not _groups(part.optimizer) and \
                (optimizer is None or part.optimizer is optimizer) and \
                (base is None or isinstance(part, OneCycleLR)):
            base = part._initial_lr()
    return base


class _OfParts(Schedule):
    """A schedule made of other schedules (``self.schedules``): SequentialLR and
    ChainedScheduler, whose state holds their parts' as torch's ``_schedulers``."""

    schedules: List[Schedule]

    @property
    def _varies_by_group(self):
        return any(part._varies_by_group for part in self.schedules)

    def _rate(self, t, lr0):
        return self._rate_of_group(t, lr0, 0)

    def bind(self, optimizer: Any) -> "Schedule":
        """As :meth:`Schedule.bind`, each part checked against ``optimizer`` as its
        own ``bind`` checks it (this schedule writes the rates of its parts' groups,
        and a OneCycleLR part's momentum).

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.optim import SGD
        >>> opt = SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}], lr=0.1)
        >>> SequentialLR([LambdaLR([lambda e: 1.0] * 3), StepLR(2)], [2]).bind(opt)
        Traceback (most recent call last):
        ...
        ValueError: LambdaLR has 3 lr_lambdas for an optimizer of 2 parameter groups (torch's rule: one, or one per group)
        """
        self._check_optimizer(optimizer)
        return super().bind(optimizer)

    def _check_optimizer(self, optimizer):
        for part in self.schedules:
            part._check_optimizer(optimizer)

    def state_dict(self) -> Dict[str, Any]:
        """As :meth:`Schedule.state_dict`, the parts as their own ``state_dict``
        (torch's ``SequentialLR`` and ``ChainedScheduler`` keep their ``_schedulers``
        so).

        Examples
        --------
        >>> s = SequentialLR([Constant(), ExponentialDecay(0.5)], [1], lr0=1.0)
        >>> _ = s.step(); _ = s.step()
        >>> t = SequentialLR([Constant(), ExponentialDecay(0.5)], [1], lr0=1.0)
        >>> t.load_state_dict(s.state_dict()); t.epoch, t.lr
        (2, 0.5)
        >>> c = ChainedScheduler([StepLR(1, gamma=0.5)], lr0=1.0); _ = c.step()
        >>> d = ChainedScheduler([StepLR(1, gamma=0.5)], lr0=1.0)
        >>> d.load_state_dict(c.state_dict()); d.epoch, d.step()   # from the loaded rate
        (1, 0.25)
        """
        sd = super().state_dict()
        sd["schedules"] = [part.state_dict() for part in self.schedules]
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a schedule of as many parts, each of the same
        class (a ChainedScheduler's next step goes on from the loaded rates).

        Raises
        ------
        ValueError
            If the keys or the number of parts differ, or a part's state does not fit
            it.

        Examples
        --------
        >>> s = SequentialLR([Constant(), ExponentialDecay(0.5)], [1], lr0=1.0)
        >>> s.load_state_dict({**s.state_dict(), "schedules": []})
        Traceback (most recent call last):
        ...
        ValueError: SequentialLR.load_state_dict needs the state of 2 schedules; got 0
        """
        _refuse_other_thread(self, "load_state_dict")
        parts = state_dict.get("schedules") if isinstance(state_dict, dict) else None
        if not isinstance(parts, list) or len(parts) != len(self.schedules):
            got = len(parts) if isinstance(parts, list) else parts
            raise ValueError(f"{type(self).__name__}.load_state_dict needs the state of "
                             f"{len(self.schedules)} schedules; got {got}")
        schedules = self.schedules
        # all or nothing: a part refused after this schedule and the parts before it
        # were loaded left the loaded epoch over parts half loaded
        before = [(obj, dict(obj.__dict__)) for obj in self._loaded_objects()]
        try:
            super().load_state_dict(state_dict)
            self.schedules = schedules
            for part, sd in zip(schedules, parts):
                part.load_state_dict(sd)
                part.__dict__.pop("_loaded", None)      # only this schedule is stepped
        except BaseException:
            for obj, attrs in before:
                obj.__dict__.clear()
                obj.__dict__.update(attrs)
            raise

    def _loaded_objects(self):
        """What a load sets the attributes of: this schedule, its parts (and theirs),
        and the parts' callable objects (a LambdaLR's, whose state is their
        ``__dict__``)."""
        out: List[Any] = [self]
        for part in self.schedules:
            out += part._loaded_objects() if isinstance(part, _OfParts) else [part]
            out += [fn for fn in getattr(part, "lr_lambdas", ())
                    if not isinstance(fn, types.FunctionType) and hasattr(fn, "__dict__")]
        return out

    def _check_loaded(self, state_dict):
        # each part's own load_state_dict checks the part's state; this schedule's own
        # (milestones, lr0) go through the constructor with stand-ins for the parts,
        # unbound, since it binds the parts' optimizer and sets their epochs
        super()._check_loaded({**state_dict, "schedules": [part._stand_in() for part in
                                                            self.schedules]})

    def _stand_in(self):
        stand_in = super()._stand_in()
        stand_in.schedules = [part._stand_in() for part in self.schedules]
        return stand_in


class SequentialLR(_OfParts):
    """One schedule after another (PyTorch's ``SequentialLR``): ``schedules[0]`` until
    epoch ``milestones[0]``, then ``schedules[1]`` from its own epoch 0, and so on --
    the way to a warm-up followed by a decay, since two schedules stepped on one
    optimizer do not chain (each writes its closed form).

    ``eta_t = schedules[i]'s rate at t - milestones[i-1]`` for ``milestones[i-1] <= t <
    milestones[i]``, each from this schedule's base rates (the bound optimizer's groups',
    or ``lr0``). The parts only lend their formula: they need no optimizer (one bound to
    another optimizer is refused), their own ``lr0`` is not used, and only this
    schedule is stepped.

    Parameters
    ----------
    schedules : sequence of Schedule
        The parts, each a closed-form schedule (not ReduceOnPlateau, whose rate is
        state, nor OneCycleLR, whose rates are relative to its ``max_lr``). Also by
        torch's keyword, ``schedulers=``.
    milestones : sequence of int
        ``len(schedules) - 1`` increasing epochs >= 1 at which the next part starts.
    lr0, optimizer : optional
        As for the other schedules (torch's order, the optimizer first, works too).

    Examples
    --------
    Two epochs of linear warm-up, then a decay by half an epoch:

    >>> s = SequentialLR([LinearLR(0.5, total_iters=2), ExponentialDecay(0.5)],
    ...                  milestones=[2], lr0=1.0)
    >>> [s.lr_at(t) for t in range(5)]
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    # torch's keyword for the parts (SequentialLR(opt, schedulers=[...], milestones=...))
    _torch_keywords = {"schedulers": "schedules"}

    def __init__(self, schedules: Sequence[Schedule], milestones: Sequence[int],
                 lr0: Optional[float] = None, optimizer: Any = None) -> None:
        if isinstance(schedules, Schedule) or not isinstance(schedules, (list, tuple)):
            raise TypeError(f"schedules must be a list of schedules; got "
                            f"{type(schedules).__name__}")
        for i, part in enumerate(schedules):
            if not isinstance(part, Schedule):
                raise TypeError(f"schedules[{i}] must be an nnlib.schedules schedule; got "
                                f"{type(part).__name__}")
            if isinstance(part, (ReduceOnPlateau, OneCycleLR)):
                raise TypeError(f"schedules[{i}] is a {type(part).__name__}, whose rate "
                                f"is not a closed form of the epoch from a base rate; "
                                f"SequentialLR takes the others")
            if part.optimizer is not None and optimizer is not None and \
                    part.optimizer is not optimizer:
                raise ValueError(f"schedules[{i}] is bound to another optimizer than "
                                 f"SequentialLR's")
        if not schedules:
            raise ValueError("schedules must hold at least one schedule")
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones,
                                                                 (list, tuple)):
            raise TypeError(f"milestones must be a list of epochs; got {milestones!r}")
        milestones = [check_int_scalar(m, f"milestones[{i}]", low=1)
                      for i, m in enumerate(milestones)]
        if len(milestones) != len(schedules) - 1:
            raise ValueError(f"SequentialLR needs len(schedules) - 1 = "
                             f"{len(schedules) - 1} milestones; got {len(milestones)}")
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must increase; got {milestones}")
        self.schedules, self.milestones = list(schedules), milestones
        if lr0 is None:
            lr0 = _rate_before_parts(schedules, optimizer)
        super().__init__(lr0, optimizer)

    def _part(self, t):
        """(index, part, its first epoch) of the part in force at epoch ``t``."""
        i = bisect.bisect_right(self.milestones, t)
        return i, self.schedules[i], (self.milestones[i - 1] if i else 0)

    def _rate_of_group(self, t, base, group):
        i, part, start = self._part(t)
        if i and isinstance(part, MultiplicativeLR):
            # torch's step to a MultiplicativeLR's epoch 0 at its milestone is not its
            # first: it multiplies the rate in force, the part before's last, by
            # lr_lambda(0) (the part has no closed form to restart from the base)
            return (self._rate_of_group(start - 1, base, group)
                    * part._restarted(group, t - start))
        return part._rate_of_group(t - start, base, group)

    def _chained(self, t, lr, base, group):
        # torch's SequentialLR in a ChainedScheduler: made, it resets the rate to the
        # base and takes its first part's first step; each step after is its active
        # part's chainable one on the rate in force, but at a milestone, which sets
        # the part's closed form at 0 (a MultiplicativeLR, without one, multiplies
        # the rate in force by lr_lambda(0))
        if t == 0:
            return self.schedules[0]._chained(0, base, base, group)
        i, part, start = self._part(t)
        if i and t == start:
            if isinstance(part, MultiplicativeLR):
                return lr * part._restarted(group, 0)
            return part._rate_of_group(0, base, group)
        return part._chained(t - start, lr, base, group)

    def _params(self):
        return {"schedules": self.schedules, "milestones": self.milestones,
                "lr0": self.lr0}


def _factor_one(t):
    """The stand-in of the user's ``lr_lambda`` in a constructor check."""
    return 1.0


class _LambdaSchedule(Schedule):
    """A schedule of the user's functions ``lr_lambda(epoch) -> float``: one for every
    group, or a list of one per group (torch's ``lr_lambda``). Their state is
    torch's: :meth:`state_dict` leaves the functions out (a lambda or a function is
    kept by the code that makes the schedule; a callable object's ``__dict__`` is
    saved), and pickling the schedule pickles the functions, which pickle refuses for
    a lambda or a nested function."""

    def __init__(self, lr_lambda: Union[Callable[[int], float],
                                        Sequence[Callable[[int], float]]],
                 lr0: Optional[float] = None, optimizer: Any = None) -> None:
        lambdas = (list(lr_lambda) if isinstance(lr_lambda, (list, tuple))
                   else [lr_lambda])
        if not lambdas:
            raise ValueError(f"{type(self).__name__} needs lr_lambda: a function or a "
                             f"list of one per parameter group")
        for i, fn in enumerate(lambdas):
            if not callable(fn):
                raise TypeError(f"{type(self).__name__}'s lr_lambda must be a function "
                                f"epoch -> factor (or a list of them); got {fn!r}"
                                + (f" at [{i}]" if len(lambdas) > 1 else ""))
        self.lr_lambdas = lambdas
        self._per_group = isinstance(lr_lambda, (list, tuple))
        super().__init__(lr0, optimizer)

    def bind(self, optimizer: Any) -> "Schedule":
        self._check_optimizer(optimizer)
        return super().bind(optimizer)

    def _check_optimizer(self, optimizer):
        if self._per_group and len(self.lr_lambdas) != max(len(_groups(optimizer)), 1):
            raise ValueError(f"{type(self).__name__} has {len(self.lr_lambdas)} "
                             f"lr_lambdas for an optimizer of "
                             f"{max(len(_groups(optimizer)), 1)} parameter groups "
                             f"(torch's rule: one, or one per group)")

    def _fn(self, group):
        return self.lr_lambdas[group if self._per_group else 0]

    def _factor_of(self, group, t):
        value = self._fn(group)(t)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not math.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}'s lr_lambda({t}) must give a finite "
                             f"real factor >= 0; got {value!r}")
        return float(value)

    @property
    def _varies_by_group(self):
        return self._per_group

    def _rate(self, t, lr0):
        return self._rate_of_group(t, lr0, 0)

    def _n_groups(self):
        """The groups the functions serve: one per function given in a list (a group
        added since binding has none, and torch's state keeps the list's), else the
        bound optimizer's (at least one), or one unbound."""
        if self.optimizer is None or self._per_group:
            return len(self.lr_lambdas)
        return max(len(_groups(self.optimizer)), 1)

    def state_dict(self) -> Dict[str, Any]:
        """As :meth:`Schedule.state_dict`, the functions left out as torch leaves them:
        ``lr_lambdas`` holds one entry per parameter group (torch's layout: one
        function given for every group is repeated), None for a function (a lambda
        included) and a copy of a callable object's ``__dict__``, so the state always
        pickles.

        Examples
        --------
        >>> import pickle
        >>> import numpy as np
        >>> from nnlib.optim import SGD
        >>> s = LambdaLR(lambda epoch: 0.5 ** epoch, lr0=1.0)
        >>> _ = s.step()
        >>> sd = pickle.loads(pickle.dumps(s.state_dict()))
        >>> sd["lr_lambdas"], sd["epoch"]
        ([None], 1)
        >>> opt = SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}], lr=0.1)
        >>> LambdaLR(lambda epoch: 1.0, optimizer=opt).state_dict()["lr_lambdas"]
        [None, None]
        """
        sd = super().state_dict()
        # None too for a callable object without a __dict__ (its state in __slots__,
        # which torch's state_dict fails on): nothing of it to update on loading
        sd["lr_lambdas"] = [None if isinstance(fn, types.FunctionType)
                            or not hasattr(fn, "__dict__") else dict(fn.__dict__)
                            for fn in map(self._fn, range(self._n_groups()))]
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: the functions stay this schedule's (made by
        its constructor, and not called here), a callable object's ``__dict__`` is
        updated from its entry (torch's rule).

        As torch's: entry ``i`` belongs to group ``i``'s function, so one function
        given for every group takes every entry in turn -- a state saved on one group
        loads onto two, and one saved by an nnlib that kept one entry per function
        given loads as before. With one function per group, the entries must be as
        many as the functions (torch updates the first ones of a shorter list and
        fails on a longer one).

        Raises
        ------
        ValueError
            For ``lr_lambdas`` not a list of None or dicts, of the wrong length, a dict
            for a function without a ``__dict__``, or the rest of the state as
            :meth:`Schedule.load_state_dict`.

        Examples
        --------
        >>> s = LambdaLR(lambda epoch: 0.5 ** epoch, lr0=1.0); _ = s(3)
        >>> t = LambdaLR(lambda epoch: 0.5 ** epoch, lr0=1.0)
        >>> t.load_state_dict(s.state_dict()); t.epoch, t.step()
        (3, 0.0625)
        """
        _refuse_other_thread(self, "load_state_dict")
        saved = state_dict.get("lr_lambdas") if isinstance(state_dict, dict) else None
        n = len(self.lr_lambdas)
        if not isinstance(saved, list) or not saved or (self._per_group and
                                                        len(saved) != n):
            need = (f"{n} (one per function given)" if self._per_group
                    else "one or more (one per parameter group)")
            raise ValueError(f"{type(self).__name__}.load_state_dict needs lr_lambdas: a "
                             f"list of {need} entries, each None or a callable object's "
                             f"__dict__; got {saved!r}")
        fns = [self._fn(i) for i in range(len(saved))]
        for i, (fn, attrs) in enumerate(zip(fns, saved)):
            if attrs is not None and (not isinstance(attrs, dict) or
                                      not hasattr(fn, "__dict__")):
                raise ValueError(f"{type(self).__name__}.load_state_dict: lr_lambdas[{i}] "
                                 f"must be None or the __dict__ of a callable object "
                                 f"with one; got {attrs!r} for {fn!r}")
        # the functions and whether they are one per group are this schedule's, made
        # by its constructor, as torch's are
        own: Dict[str, Any] = {"lr_lambdas": self.lr_lambdas}
        if "_per_group" in state_dict:
            own["_per_group"] = self._per_group
        super().load_state_dict({**state_dict, **own})
        for fn, attrs in zip(fns, saved):
            if attrs is not None:
                fn.__dict__.update(attrs)

    def _stand_in(self):
        stand_in = super()._stand_in()
        stand_in.lr_lambdas = [_factor_one] * len(self.lr_lambdas)
        return stand_in

    def _checked_params(self):
        # the constructor check of a state to load: the user's functions are not
        # called at load (torch's never are: one valid only from some epoch on, or
        # with side effects), so a stand-in of each takes their place
        return self._stand_in()._params()

    def _params(self):
        fns = self.lr_lambdas if self._per_group else self.lr_lambdas[0]
        return {"lr_lambda": fns, "lr0": self.lr0}


class LambdaLR(_LambdaSchedule):
    """``eta_t = lr0 * lr_lambda(t)``: the user's factor of the base rate (PyTorch's
    ``LambdaLR``), each group from its own base rate, or with a list of functions
    one per group.

    Parameters
    ----------
    lr_lambda : callable ``epoch -> float`` or list of them
        The factor of epoch ``t`` (finite, >= 0), called once per step. A list holds
        one per parameter group of the optimizer it is bound to.
    lr0, optimizer : optional
        As for the other schedules (torch's order, the optimizer first, works too).

    Notes
    -----
    A schedule holding a lambda (or a function nested in another) cannot be pickled
    -- pickle's rule for functions, which it stores by name (``PicklingError`` or
    ``AttributeError: Can't pickle local object``): give a module-level function or a
    callable object to pickle it, or save its :meth:`state_dict`, which leaves the
    functions out as torch's does, and make the schedule anew with them to resume.
    In a :class:`ChainedScheduler` it sets ``base * lr_lambda(t)``, whatever the
    other schedules did before it in the step (torch's LambdaLR is not chainable).

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import SGD
    >>> opt = SGD([np.zeros(1)], lr=0.1)
    >>> s = LambdaLR(opt, lambda epoch: 0.95 ** epoch)        # torch's order
    >>> [round(s.step(), 6) for _ in range(3)]
    [0.095, 0.09025, 0.085737]
    """

    def _rate_of_group(self, t, base, group):
        return base * self._factor_of(group, t)


class MultiplicativeLR(_LambdaSchedule):
    """``eta_t = eta_{t-1} * lr_lambda(t)`` for ``t >= 1``, ``eta_0 = lr0`` (PyTorch's
    ``MultiplicativeLR``): the closed form ``lr0 * prod_{k=1..t} lr_lambda(k)``, each
    factor asked once (the products are kept, with :meth:`state_dict`, so a jump back
    or a resume asks no factor again).

    Parameters
    ----------
    lr_lambda : callable ``epoch -> float`` or list of them
        The factor applied at epoch ``t >= 1`` (finite, >= 0); a list, one per group.
    lr0, optimizer : optional
        As for the other schedules (torch's order, the optimizer first, works too).

    Notes
    -----
    Pickling: as :class:`LambdaLR` (a lambda does not pickle; the state_dict does).

    Examples
    --------
    >>> s = MultiplicativeLR(lambda epoch: 0.5, lr0=1.0)
    >>> [s.step() for _ in range(3)], s.lr_at(1)
    ([0.5, 0.25, 0.125], 0.5)
    """

    def __init__(self, lr_lambda: Union[Callable[[int], float],
                                        Sequence[Callable[[int], float]]],
                 lr0: Optional[float] = None, optimizer: Any = None) -> None:
        # per group (per function): the products prod_{k=1..t} lr_lambda(k), t = 0, 1..
        n = len(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else 1
        self._products: List[List[float]] = [[1.0] for _ in range(n)]
        # per group: lr_lambda(0), asked only inside a SequentialLR (see _restarted)
        self._factor0: List[Optional[float]] = [None] * n
        super().__init__(lr_lambda, lr0, optimizer)

    def _product(self, group, t):
        products = self._products[group if self._per_group else 0]
        while len(products) <= t:
            products.append(products[-1] * self._factor_of(group, len(products)))
        return products[t]

    def _rate_of_group(self, t, base, group):
        return base * self._product(group, t)

    def _restarted(self, group, t):
        """``prod_{k=0..t} lr_lambda(k)``: the factor ``t`` steps after a
        SequentialLR's milestone starts this schedule, whose step to epoch 0 there is
        not its first and so multiplies by ``lr_lambda(0)`` too (torch's)."""
        i = group if self._per_group else 0
        if self._factor0[i] is None:
            self._factor0[i] = self._factor_of(group, 0)
        return self._factor0[i] * self._product(group, t)

    def _chained(self, t, lr, base, group):
        return lr * self._factor_of(group, t) if t else lr

    def state_dict(self) -> Dict[str, Any]:
        sd = super().state_dict()
        sd["_products"] = [list(p) for p in self._products]
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        _refuse_other_thread(self, "load_state_dict")
        if isinstance(state_dict, dict) and "_factor0" not in state_dict:
            # saved before _factor0 was kept: lr_lambda(0) not asked yet
            state_dict = {**state_dict, "_factor0": [None] * len(self._factor0)}
        products = state_dict.get("_products") if isinstance(state_dict, dict) else None
        n = len(self._products)
        if isinstance(products, list) and len(products) == 1 < n:
            # saved with one function for every group, loaded with one per group: each
            # group's rate so far is the one function's product (torch's rate in
            # force), its own function's factors multiply it from here on
            state_dict = {**state_dict, "_products": [list(products[0])] * n,
                          "_factor0": list(state_dict["_factor0"]) * n}
        elif isinstance(products, list) and len(products) != n:
            raise ValueError(f"MultiplicativeLR.load_state_dict: the state holds the "
                             f"factors of {len(products)} functions, one per group; "
                             f"this schedule has {n} (one function for every group "
                             f"cannot go on from the groups' different products)")
        super().load_state_dict(state_dict)
        self._products = [list(p) for p in self._products]

    def _stand_in(self):
        stand_in = super()._stand_in()
        stand_in._products = [list(p) for p in self._products]
        stand_in._factor0 = list(self._factor0)
        return stand_in


class ChainedScheduler(_OfParts):
    """Several schedules stepped together on one optimizer, their effects multiplied
    (PyTorch's ``ChainedScheduler``): each :meth:`step` steps every schedule in turn,
    each acting on the rate the one before it left -- torch's chainable forms
    (StepLR, MultiStepLR, ExponentialLR, LinearLR, MultiplicativeLR multiply it by
    their factor of the epoch, CosineAnnealingLR maps it by its recursion), so a
    ``LinearLR`` warm-up and an ``ExponentialLR`` decay give ``lr0 * start_factor...
    * gamma ** t``. A schedule torch computes in closed form only (LambdaLR,
    OneCycleLR, CosineAnnealingWarmRestarts) sets its closed form when its turn
    comes, as torch's does (OneCycleLR's from its own ``max_lr``, its momentum
    cycled too). A SequentialLR steps its active part's chainable form, and at a
    milestone sets that part's rate of epoch 0, as torch's does in a chain.

    Only this schedule writes the optimizer: the parts lend their formula (each
    from this schedule's base rates, the groups' ``initial_lr``); parts bound to the
    optimizer at construction (torch's habit) are not stepped on their own. The rate
    in force is read at each step, as torch's are, so a rate set by hand between
    steps is followed, not overwritten. ``schedule(t)`` replays the steps from epoch
    0 (a resume by ``fit(initial_epoch=...)``); :meth:`state_dict` holds the parts'
    states and the rates, so a resume from it continues exactly.

    Parameters
    ----------
    schedules : sequence of Schedule
        At least one, none a ReduceOnPlateau (torch refuses it too: it steps on a
        metric); also by torch's keyword ``schedulers=``. Parts bound to an optimizer
        must all be bound to this one's.
    optimizer : optional
        Default: the parts' (torch's ``ChainedScheduler(schedulers, optimizer=None)``).
    lr0 : float, optional
        The base rate of an unbound chain.

    Examples
    --------
    A warm-up from half the rate over 2 epochs, times a decay of 0.9 an epoch (torch's
    order: the parts bound to the optimizer, then chained):

    >>> import numpy as np
    >>> from nnlib.optim import SGD
    >>> opt = SGD([np.zeros(1)], lr=0.05)
    >>> s = ChainedScheduler([LinearLR(0.5, 1.0, total_iters=2, optimizer=opt),
    ...                       ExponentialLR(opt, gamma=0.9)])
    >>> [round(s.lr, 6)] + [round(s.step(), 6) for _ in range(3)]
    [0.025, 0.03375, 0.0405, 0.03645]
    """

    _torch_keywords = {"schedulers": "schedules"}

    def __init__(self, schedules: Sequence[Schedule], optimizer: Any = None,
                 lr0: Optional[float] = None) -> None:
        if isinstance(schedules, Schedule) or not isinstance(schedules, (list, tuple)):
            raise TypeError(f"schedules must be a list of schedules; got "
                            f"{type(schedules).__name__}")
        if not schedules:
            raise ValueError("ChainedScheduler expects at least one schedule to chain")
        bound = optimizer
        for i, part in enumerate(schedules):
            if not isinstance(part, Schedule):
                raise TypeError(f"schedules[{i}] must be an nnlib.schedules schedule; got "
                                f"{type(part).__name__}")
            if isinstance(part, ReduceOnPlateau):
                raise ValueError(f"ChainedScheduler does not take ReduceOnPlateau (at "
                                 f"index {i}): it steps on a metric (torch refuses it "
                                 f"too); step it on its own")
            if part.optimizer is not None:
                if bound is None:
                    bound = part.optimizer
                elif part.optimizer is not bound:
                    raise ValueError(f"schedules[{i}] is bound to another optimizer than "
                                     f"the chain's (torch's rule: one optimizer)")
        if lr0 is None:
            lr0 = _rate_before_parts(schedules, bound)
        self.schedules = list(schedules)
        # per group: the epoch the rates in force were computed for, and those rates
        self._rates: Optional[List[float]] = None
        super().__init__(lr0, bound)

    def _chained(self, t, lr, base, group):
        # one of torch's steps: every part in turn on the rate the one before left
        # (so a chain in a chain too)
        for part in self.schedules:
            lr = part._chained(t, lr, base, group)
        return lr

    def _rate_of_group(self, t, base, group):
        # the rate of epoch t, replayed from the base rate: torch's steps one by one
        lr = base
        for k in range(t + 1):
            lr = self._chained(k, lr, base, group)
        return lr

    def _bases(self):
        n = max(len(_groups(self.optimizer)), 1)
        bases = self.base_lrs or [self._require_lr0()]
        return bases if len(bases) == n else [self._require_lr0()] * n

    def _current(self):
        return [self._rate_of_group(self.epoch, base, g)
                for g, base in enumerate(self._bases())]

    def _apply(self, lr):
        # lr: the rates, one per group (a float from the base class: the one group's)
        rates = list(lr) if isinstance(lr, list) else [lr]
        self._rates = [float(r) for r in rates]
        self.lr = self._rates[0]
        opt, groups = self.optimizer, _groups(self.optimizer)
        if opt is None:
            self._last_lr = [self.lr]
        else:
            if len(groups) > 1:
                for g, rate in zip(groups, self._rates):
                    g["lr"] = check_real_scalar(rate, "lr", low=0.0)
            else:
                opt.lr = self.lr
            self._last_lr = _written(opt, self.lr)
        for part in self.schedules:
            part.epoch = self.epoch
            if opt is not None and isinstance(part, OneCycleLR) and part.cycle_momentum:
                part._cycle_momentum(opt)          # as torch's OneCycleLR in a chain
        return self.lr

    def _rates_of_epoch(self):
        return list(self._rates or [self._require_lr0() if self.lr is None else self.lr])

    def __call__(self, t: int) -> float:
        """Jump to epoch ``t``: replay the steps from epoch 0 and write the rates
        (``fit(initial_epoch=t)`` resumes so).

        Examples
        --------
        >>> s = ChainedScheduler([StepLR(2, gamma=0.5), ExponentialLR(0.9)], lr0=1.0)
        >>> round(s(3), 6), s.epoch
        (0.3645, 3)
        """
        _refuse_other_thread(self, "__call__")
        self.epoch = check_int_scalar(t, "t", low=0)
        return self._apply(self._current())

    def step(self, metric: Optional[float] = None) -> float:
        """Step every schedule in turn from the rates in force (the optimizer's, as
        torch reads them, or after :meth:`load_state_dict` the loaded ones); write
        and return the first group's new rate. ``metric`` is ignored.

        Examples
        --------
        >>> s = ChainedScheduler([MultiStepLR([1], gamma=0.5), ExponentialLR(0.5)],
        ...                      lr0=1.0)
        >>> [s.step() for _ in range(3)]
        [0.25, 0.125, 0.0625]
        """
        _refuse_other_thread(self, "step")
        loaded = self.__dict__.pop("_loaded", False)
        if self.optimizer is not None and not loaded:
            # (an optimizer without groups, as nnlib's before fit gives it parameters,
            # or any object with an lr: its lr, as set by hand too)
            in_force = _written(self.optimizer, float(self.optimizer.lr))
        else:
            in_force = list(self._rates if self._rates is not None else self._current())
        bases = self._bases()
        t = self.epoch + 1
        rates = [self._chained(t, lr, base, g)
                 for g, (lr, base) in enumerate(zip(in_force, bases))]
        self.epoch = t
        return self._apply(rates)

    def _params(self):
        return {"schedules": self.schedules, "lr0": self.lr0}


# torch.optim.lr_scheduler's names of the same schedules (same parameters), so that
# ``StepLR(opt, step_size=30, gamma=0.1)`` reads as it does in torch
StepLR = StepDecay
ExponentialLR = ExponentialDecay
CosineAnnealingLR = CosineAnnealing
ReduceLROnPlateau = ReduceOnPlateau
