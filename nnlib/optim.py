"""Optimizers shaped like ``torch.optim``: compiled in-place updates of NumPy arrays.

An optimizer is built with the arrays it updates (or with parameter groups, each with its
own hyper-parameters) and steps them with their gradients, in the same order::

    opt = nnlib.optim.Adam(model.params, lr=1e-3)
    for X, y in batches:
        loss, grads = model.loss_and_grads(X, y)
        opt.step(grads)

    opt = nnlib.optim.SGD([{"params": model.layers[0].params, "lr": 1e-2},
                           {"params": model.layers[1].params}], lr=1e-3, momentum=0.9)

NumPy arrays carry no ``.grad``, so the gradients are passed to ``step``. ``zero_grad``
has nothing to clear: it exists as a no-op so a ported torch loop or closure runs
unchanged, while a bare ``step()`` (torch's, reading ``.grad``) raises a TypeError
asking for the gradients (see :meth:`Optimizer.zero_grad` for why). The update rules are compiled
(``nnlib/_kernels/optim_rules.pxd.tp``, shared with the compiled training loop) and have
NumPy twins in ``nnlib/_reference/optim.py``.

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

Common API (torch.optim's, on NumPy arrays)
-------------------------------------------
``Opt(params, lr=..., ...)``
    ``params``: a list of arrays, or a list of dicts (parameter groups: ``"params"`` and
    any hyper-parameter, the constructor's values filling the rest). Omitted, the
    optimizer adopts the first arrays it is given (by ``step(params, grads)`` or
    ``Sequential.fit``) as its one group, as a Keras optimizer is built on first use.
``opt.step(grads)`` / ``opt.step(closure)``
    One update of every parameter given a gradient (same order as the parameters: one
    flat list, or one list per group; a ``None`` gradient skips its parameter, as
    torch skips a parameter without ``.grad``). ``closure() -> (loss, grads)`` is
    called once and its loss returned.
``opt.step(params, grads)``
    The functional form: update ``params`` (arrays, any of them) with ``grads``. Kept,
    without warning, because it is what NumPy code without ``.grad`` writes naturally;
    it uses the same identity-keyed state.
``opt.param_groups``, ``opt.defaults``, ``opt.add_param_group(group)``
    As torch. Setting ``opt.lr`` (what the schedules do) or another hyper-parameter
    attribute sets it in ``defaults`` and every group.
``opt.state[p]``
    The state of array ``p``: ``{"step": int, <slot name>: view of shape p.shape}``,
    keyed by the array's identity: ``step([a, b])`` then ``step([b, a])`` keeps each
    array's moments, and a new array (even of the same shape) starts fresh.
``opt.state_dict()`` / ``opt.load_state_dict(sd)``
    torch's layout, ``{"state": {index: {"step": int, <slot>: ndarray}},
    "param_groups": [{<hyper-parameters>, "params": [index, ...]}]}`` with NumPy
    copies; loading resumes bit-identically (and reads torch's own ``state_dict()``).
``maximize=True``
    Ascend: the gradient is negated before weight decay (torch's rule). ``fit``
    minimizes its loss and refuses it (naming the group).
``opt.configs(params)``, ``opt.config(params=None)``, ``opt.state_arrays(params)``,
``opt.t``, ``opt.reset()``
    What the compiled training loop uses: the ``OptimConfig`` fields
    (``nnlib._kernels.optim.CONFIG_FIELDS``) of each array (its group's: the compiled
    epoch steps every array by its own lr, weight decay, momentum, betas, ..., so
    ``fit`` trains with groups such as weight decay on the weights only), or the one
    config of arrays that share it; the state as one ``(slots, param.size)`` array per
    param (the slots of its own group's config); the steps taken (the largest over
    the parameters; setting it sets every parameter's), and forgetting the state.
"""
import math
import numbers
import operator
import threading
import warnings
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from nnlib._base import stamped, unstamped
from nnlib._codes import OPTIM_KINDS
from nnlib._kernels import optim as _k
from nnlib._threads import (PARALLEL_MIN_SIZE, StepClaim, UnchangedWhilePickled,
                            arrays_in_use, claim,
                            complete, holder_of, release, resolve_threads,
                            thread_limit)
from nnlib._typing import ArrayLike
from nnlib.exceptions import ConcurrentUseError
from nnlib._validation import (DTypeError, NonFiniteError, ShapeError, as_float_array,
                               check_int_scalar, check_real_scalar, native_float_dtype)

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NotesMomentum",
           "NotesAdaGrad", "SklearnSGD", "SklearnAdam", "gradient_descent", "GDResult",
           "CONFIG_FIELDS", "OPTIM_KINDS"]

CONFIG_FIELDS = _k.CONFIG_FIELDS

Params = Union[np.ndarray, Sequence[np.ndarray], Sequence[Dict[str, Any]]]


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


def _saved_scalar(value, name):
    """A hyper-parameter as a ``state_dict`` holds it, as a plain number: torch.optim
    allows a Tensor ``lr`` (and betas) of one element (its constructors refuse only
    ``lr.numel() != 1``), which its ``state_dict`` keeps as given; a tensor or ndarray
    of one element, whatever its shape, is its value (``.item()``, a float32 tensor's
    float32 value). One of several elements is refused by ``name``; anything else is
    returned for the hyper-parameter's own check to name."""
    shape = getattr(value, "shape", None)
    if shape is None or isinstance(value, numbers.Number) or not hasattr(value, "item"):
        return value
    if math.prod(tuple(shape)) != 1:
        raise ValueError(f"{name} must be a number or a tensor or array of one element; "
                         f"got {type(value).__name__} of shape {tuple(shape)}")
    return value.item()


class _Entry:
    """The state of one parameter array: its step count and its ``(slots, size)`` rows.
    The array is held weakly: the entry goes when the array does, so a new array at the
    same address never inherits it."""

    __slots__ = ("ref", "step", "rows", "__weakref__")

    def __init__(self, ref, step, rows):
        self.ref, self.step, self.rows = ref, step, rows


class _StateView(dict):
    """One array's ``optimizer.state[p]``: a dict to read (its arrays are views of the
    optimizer's own, written in place), whose keys cannot be set. torch's is the
    optimizer's own dict, so ported code that assigns into it (``state[p]
    ["momentum_buffer"] = zeros`` to reset a momentum) changed nothing here, silently;
    it is refused, saying what does work."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("optimizer.state[p] is a read-only view of the optimizer's state "
                        "(its keys cannot be set, and a new array would not be the one "
                        "the optimizer steps): write into its arrays in place (state[p]"
                        "['momentum_buffer'][...] = 0), or change the state with "
                        "load_state_dict or reset()")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse
    __ior__ = _refuse

    def __reduce__(self):
        return dict, (dict(self),)          # a copy or pickle is a plain dict, no view


class _State:
    """``optimizer.state``: read-only mapping array -> ``{"step", <slot>: view}`` keyed by
    the array's identity (NumPy arrays are unhashable, so torch's dict keyed by tensor
    becomes a dict keyed by ``id`` whose entries hold a weak reference).

    As torch's ``defaultdict``, an array of the optimizer's groups that has not been
    stepped yet reads as ``{}`` (and is not ``in`` the state); an array the optimizer
    does not hold is a KeyError (an equal array is another array). ``get``, ``keys``,
    ``values`` and ``items`` iterate the stepped arrays, as torch's dict does."""

    def __init__(self, opt):
        self._opt = weakref.ref(opt)

    def _entries(self):
        opt = self._opt()
        return {} if opt is None else opt._entries

    def __getitem__(self, p):
        e = self._entries().get(id(p))
        if e is None or e.ref() is not p:
            opt = self._opt()
            if opt is not None and any(q is p for q in opt._all_params()):
                return _StateView()         # torch: state[p] is {} before p's first step
            raise KeyError("this array has no optimizer state: it is in none of the "
                           "optimizer's parameter groups (an equal array is another "
                           "array)")
        out = {"step": e.step}
        opt = self._opt()
        names = opt._slot_names_of(p)
        if len(names) == e.rows.shape[0]:
            # views the caller may write into: the steps check them from now on
            opt._state_exposed = True
            out.update((n, e.rows[i].reshape(p.shape)) for i, n in enumerate(names))
        return _StateView(out)

    def get(self, p, default=None):
        """``self[p]`` for a stepped array, else ``default`` (dict's ``get``)."""
        return self[p] if p in self else default

    def keys(self):
        """The stepped arrays (a list: arrays are unhashable)."""
        return list(self)

    def values(self):
        """The state of each stepped array, in the order of :meth:`keys`."""
        return [self[p] for p in self]

    def items(self):
        """``(array, state)`` of each stepped array, as torch's ``state.items()``."""
        return [(p, self[p]) for p in self]

    def __contains__(self, p):
        e = self._entries().get(id(p))
        return e is not None and e.ref() is p

    def __len__(self):
        return len(self._entries())

    def __iter__(self):
        return iter([p for p in (e.ref() for e in list(self._entries().values()))
                     if p is not None])

    def __repr__(self):
        return f"<optimizer state of {len(self)} arrays>"


class Optimizer:
    """Base class: parameter groups, identity-keyed state, ``state_dict`` and the call
    into the compiled kernel.

    Subclasses set ``kind``, ``_HYPER`` (the hyper-parameter names of a group, torch's),
    ``_check(h)`` (validate a group's values, return them cleaned), ``_fields(h)`` (the
    non-default ``OptimConfig`` fields of a group) and ``_slot_names(config)``.

    Examples
    --------
    What every optimizer shares, shown with :class:`SGD`:

    >>> import numpy as np
    >>> w = np.array([1.0, 2.0])
    >>> opt = SGD([w], lr=0.1)
    >>> opt.step([np.array([1.0, -1.0])])             # in place: w -= lr * grad
    >>> w
    array([0.9, 2.1])
    >>> opt.state[w], opt.param_groups[0]["lr"]       # state keyed by the array itself
    ({'step': 1}, 0.1)
    >>> opt.state[np.array([0.9, 2.1])]               # an equal array is another array
    Traceback (most recent call last):
    ...
    KeyError: ...
    """

    kind: int = -1
    _HYPER: tuple = ("lr", "maximize")
    _state_exposed: bool = False          # optimizer.state handed out writable views
    # the rule keeps a sum or average of squared gradients (_SQUARED_SLOTS): the SGD
    # rules keep none, so a fit's check after each batch callback has nothing to read
    _SQUARES: bool = True
    # the alpha nearest 1 of any centred RMSprop config built since the state began:
    # averages stalled under it may still be off by its slack (_centred_slack)
    _alpha_top: float = 0.0

    def __init__(self, params: Optional[Params], defaults: Dict[str, Any]):
        object.__setattr__(self, "_entries", {})
        self.defaults = self._check(dict(defaults))
        self.param_groups: List[Dict[str, Any]] = []
        self._configs = {}                # group key -> config (validated once per key)
        # fits started on it (nnlib._threads.count_fit_start): set here, with the other
        # attributes, as a key added later costs each step's attribute reads ~0.5 us
        # (CPython's shared-key instance dicts)
        self._fits_started = 0
        if params is None:
            return
        if isinstance(params, numbers.Number):
            raise TypeError(f"{type(self).__name__}'s first argument is the parameters, as "
                            f"in torch.optim: {type(self).__name__}(params, lr={params!r}) "
                            f"or {type(self).__name__}(lr={params!r}); got {params!r}")
        if isinstance(params, np.ndarray):
            params = [params]
        if isinstance(params, (set, frozenset)) or not isinstance(params, Iterable):
            raise TypeError(f"params must be a list of arrays or of dicts (parameter "
                            f"groups); got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)               # type: ignore[arg-type]   # dicts here

    # -- hyper-parameters ---------------------------------------------------------------
    def _check(self, h: Dict[str, Any]) -> Dict[str, Any]:
        h["lr"] = _nonneg(h["lr"], "lr")
        h["maximize"] = _check_bool(h.get("maximize", False), "maximize")
        return h

    def _fields(self, h: Dict[str, Any]) -> Dict[str, Any]:
        return {}

    def _slot_names(self, config: Dict[str, Any]) -> List[str]:
        raise NotImplementedError

    def _initial_state_value(self, h: Optional[Dict[str, Any]] = None) -> float:
        return 0.0

    def __getattr__(self, name):
        # hyper-parameters read as attributes (opt.momentum): group 0's, or the defaults
        if name in type(self)._HYPER and "param_groups" in self.__dict__:
            src = self.param_groups[0] if self.param_groups else self.defaults
            return src[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in type(self)._HYPER and "param_groups" in self.__dict__:
            # the schedules write opt.lr: every group and the defaults take the value
            for h in [self.defaults, *self.param_groups]:
                h.update(self._check({**h, name: value}))
            return
        object.__setattr__(self, name, value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Do nothing: there is no ``.grad`` to clear (kept so code ported from
        ``torch.optim`` runs unchanged).

        A torch loop is ``opt.zero_grad(); loss.backward(); opt.step()``, and a torch
        closure calls ``zero_grad`` first. In nnlib the gradients are a value passed
        to :meth:`step` (``opt.step(grads)``, ``closure() -> (loss, grads)``), never
        stored on the arrays or in the optimizer, so each step's gradients are already
        "zeroed": nothing accumulates between steps. The method exists, rather than
        raising AttributeError, because that line of a ported loop or closure is
        harmless here, while the line that matters cannot be carried over silently: a
        bare ``opt.step()`` (torch's, which reads ``.grad``) raises a TypeError
        saying it needs the gradients. To accumulate gradients over several batches
        (torch's skipped ``zero_grad``), sum them yourself and pass the sum.

        Parameters
        ----------
        set_to_none : bool, default True
            Accepted for torch's signature; there is nothing to set.

        Examples
        --------
        A ported torch loop keeps its ``zero_grad`` and passes the gradients to
        ``step``:

        >>> import numpy as np
        >>> from nnlib.optim import SGD
        >>> w = np.array([1.0, -2.0])
        >>> opt = SGD([w], lr=0.1)
        >>> opt.zero_grad()                          # nothing to clear
        >>> opt.step([2 * w])                        # the gradient of ||w||^2
        >>> w
        array([ 0.8, -1.6])
        >>> opt.step()                               # torch's bare step has no gradients
        Traceback (most recent call last):
        ...
        TypeError: step needs the gradients: step(grads), step(closure) or step(params, grads) (NumPy arrays carry no .grad)
        """

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group ``{"params": arrays, <hyper-parameter>: value, ...}``; missing
        hyper-parameters take the constructor's values (torch's rule).

        Parameters
        ----------
        param_group : dict
            ``"params"``: a list of arrays (or one array); any hyper-parameter of the
            optimizer (``lr``, ``weight_decay``, ...) for this group.

        Raises
        ------
        ValueError
            If an array is already in a group (or twice in this one), or a value is out
            of range.

        Examples
        --------
        >>> import numpy as np
        >>> w, b = np.zeros(2), np.zeros(1)
        >>> opt = SGD([w], lr=0.1)
        >>> opt.add_param_group({"params": [b], "lr": 0.01})
        >>> opt.step([[np.ones(2)], [np.ones(1)]])          # one gradient list per group
        >>> w, b
        (array([-0.1, -0.1]), array([-0.01]))
        """
        self._add_group(param_group)
        # the user chose these arrays (torch's way), so one left out of every group is
        # meant to stay as it is: see _check_all_grouped
        object.__setattr__(self, "_chosen", True)

    def _add_group(self, param_group: Dict[str, Any]) -> None:
        """Check one group and append it (add_param_group's work, without marking the
        arrays as the user's choice)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict; got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, (set, frozenset)):
            raise TypeError("a group's params must be an ordered list (not a set): the "
                            "order of state_dict and of step's gradients follows it")
        params = _as_param_list(params)
        group = {**self.defaults, **{k: v for k, v in param_group.items()
                                     if k != "params"}}
        group = self._check(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group "
                             "(or twice in one)")
        group["params"] = params
        self.param_groups.append(group)

    def _all_params(self) -> List[np.ndarray]:
        return [p for g in self.param_groups for p in g["params"]]

    def _adopt(self, params):
        """An optimizer built without parameters takes the first it is given as its
        one group; one unpickled apart from its arrays follows ``params`` to them
        (:meth:`_follow_copies`)."""
        if "_unpickled" in self.__dict__:
            self._follow_copies(params)
        if not self.param_groups and len(params):
            # adopted as a Keras optimizer is built (not marked chosen): arrays a grown
            # model adds later train with the defaults
            self._add_group({"params": list(params)})

    def _follow_copies(self, params):
        """An optimizer unpickled (or deep-copied) apart from its model holds copies of
        the model's arrays, with its state keyed to those copies: a fit or
        ``step(params, grads)`` on the model's arrays would otherwise start their
        momentum or moments afresh, with the defaults instead of the groups' values.

        The first time it is given arrays, none of which its groups hold, it moves its
        groups and state onto them by position -- what ``load_state_dict`` does with a
        state_dict -- when that is unambiguous: as many arrays, each of the same shape
        and dtype. Otherwise, if it holds state, a ValueError says how to save and
        restore. Arrays its groups do hold (the model and the optimizer were pickled
        together) leave it as it is; either way it then behaves as any optimizer."""
        held = self._all_params()
        given = {id(p) for p in params}
        if held and not any(id(p) in given for p in held):
            if len(held) == len(params) and all(
                    o.shape == n.shape and o.dtype == n.dtype
                    for o, n in zip(held, params)):
                self._carry_state(held, params)
            elif any(e.ref() is p for p in held
                     for e in [self._entries.get(id(p))] if e is not None):
                name = type(self).__name__
                shapes = [p.shape for p in held]
                raise ValueError(
                    f"this {name} was unpickled apart from the arrays it trains: its "
                    f"state belongs to its own copies of {len(held)} arrays (shapes "
                    f"{shapes[:4]}{' ...' if len(shapes) > 4 else ''}), which cannot be "
                    f"matched by position to the {len(params)} arrays given here, so "
                    f"their momentum/moments would be lost. Pickle the model and the "
                    f"optimizer together (pickle.dump((model, opt), f)), or save "
                    f"opt.state_dict() and restore it into an optimizer built on the "
                    f"model's arrays: opt = {name}(model.params, ...); "
                    f"opt.load_state_dict(state_dict)")
        self.__dict__.pop("_unpickled", None)

    def _group_config(self, h):
        return self._config_slots(h)[0]

    def _config_slots(self, h):
        """(config, state slots) of a group's hyper-parameters, validated once per set
        of values (a group is a plain dict anyone may write into)."""
        try:
            key = tuple(map(h.__getitem__, type(self)._HYPER))
            found = self._configs.get(key)
        except TypeError:           # an unhashable value written into a group: check it
            found, key = None, None
        if found is None:
            h = self._check(dict(h))
            cfg = dict(kind=self.kind, lr=h["lr"], momentum=0.0, dampening=0.0,
                       weight_decay=0.0, alpha=0.0, eps=0.0, beta1=0.0, beta2=0.0,
                       lr_decay=0.0, initial_accumulator_value=0.0, nesterov=0,
                       centered=0, amsgrad=0)
            cfg.update(self._fields(h))
            for flag in ("nesterov", "centered", "amsgrad"):
                cfg[flag] = int(cfg[flag])
            found = (cfg, _k.state_slots(cfg))
            if cfg["centered"] and cfg["alpha"] > self._alpha_top:
                self._alpha_top = cfg["alpha"]
            if len(self._configs) > 64:        # a schedule writes a new lr every epoch
                self._configs.clear()
            if key is not None:
                self._configs[key] = found
        return found

    def _groups_of(self, params):
        """The hyper-parameter dict of each array: its group's, or the defaults."""
        groups = self.param_groups
        if len(groups) == 1 and len(groups[0]["params"]) == len(params) and all(
                map(operator.is_, groups[0]["params"], params)):
            return [groups[0]] * len(params)          # the common case, in order
        index = {id(p): g for g in groups for p in g["params"]}
        return [index.get(id(p), self.defaults) for p in params]

    def config(self, params: Optional[Sequence[np.ndarray]] = None) -> Dict[str, Any]:
        """The ``OptimConfig`` fields as a dict (``kind`` an int, flags 0/1): of the
        first group (the defaults without groups), or the one config of ``params``.

        Examples
        --------
        >>> import numpy as np
        >>> config = Adam([np.zeros(2)], lr=0.1).config()
        >>> config["lr"], config["beta1"], config["beta2"]
        (0.1, 0.9, 0.999)

        Raises
        ------
        ValueError
            If ``params`` belong to groups with different hyper-parameters (one config
            cannot describe them: :meth:`configs` gives one per array), or a group has
            ``maximize=True`` (a fit minimizes).
        """
        if params is None:
            return dict(self._group_config(self.param_groups[0] if self.param_groups
                                           else self.defaults))
        cfgs = self._configs_of(params)
        if any(c != cfgs[0] for c in cfgs[1:]):
            raise ValueError(f"these parameters are in {type(self).__name__} groups with "
                             f"different hyper-parameters; one config cannot describe "
                             f"them: configs(params) gives one per array")
        return dict(cfgs[0]) if cfgs else self.config()

    def configs(self, params: Sequence[np.ndarray]) -> List[Dict[str, Any]]:
        """One ``OptimConfig`` dict per array of ``params``: its group's (the defaults'
        for an array in no group). What the compiled training epoch reads: every
        array is stepped by its own lr, weight decay, momentum, betas, ..., one rule
        (``kind``) for all.

        Raises
        ------
        ValueError
            If a group of ``params`` has ``maximize=True`` (a fit minimizes its loss).

        Examples
        --------
        >>> import numpy as np
        >>> W, b = np.zeros((2, 2)), np.zeros(2)
        >>> opt = AdamW([{"params": [W]}, {"params": [b], "weight_decay": 0.0}],
        ...             lr=0.01, weight_decay=0.01)
        >>> [c["weight_decay"] for c in opt.configs([W, b])]
        [0.01, 0.0]
        """
        return [dict(c) for c in self._configs_of(params)]

    def _configs_of(self, params):
        """The (cached, shared) config of each array; a group that maximizes is
        refused, by its index."""
        out, configs, last = [], {}, None       # once per group, not per array
        for h in self._groups_of(params):
            if h is not last:           # most often the same as the array before's
                last, config = h, configs.get(id(h))
                if config is None:
                    if h["maximize"]:
                        where = next((f"param_groups[{i}]" for i, g in
                                      enumerate(self.param_groups) if g is h),
                                     "the defaults")
                        raise ValueError(f"{type(self).__name__}(maximize=True) ascends "
                                         f"({where} has maximize=True); a fit minimizes "
                                         f"its loss: use step(grads) for maximization")
                    config = configs[id(h)] = self._group_config(h)
            out.append(config)
        return out

    def _fit_config(self, params):
        """The optimizer argument of the compiled epoch for ``params``: one config dict
        when every array has the same, else a tuple of one per array (groups with their
        own hyper-parameters)."""
        cfgs = self._configs_of(params)
        if not cfgs:
            return self.config()
        first = cfgs[0]
        for c in cfgs:
            if c is not first and c != first:
                return tuple(map(dict, cfgs))
        return dict(first)

    def _slot_names_of(self, p):
        return self._slot_names(self._group_config(self._groups_of([p])[0]))

    # -- state --------------------------------------------------------------------------
    @property
    def state(self) -> _State:
        """Array -> ``{"step": int, <slot name>: view of the array's shape}``.

        Examples
        --------
        >>> import numpy as np
        >>> w = np.zeros(2)
        >>> opt = Adam([w], lr=0.1)
        >>> opt.step([np.array([1.0, -1.0])])
        >>> sorted(opt.state[w]), opt.state[w]["exp_avg"]     # (1 - beta1) * g
        (['exp_avg', 'exp_avg_sq', 'step'], array([ 0.1, -0.1]))
        """
        return _State(self)

    @property
    def t(self) -> int:
        """Steps taken: the largest step count over the arrays with state.

        Examples
        --------
        >>> import numpy as np
        >>> w = np.zeros(2)
        >>> opt = SGD([w], lr=0.1)
        >>> for _ in range(3):
        ...     opt.step([np.ones(2)])
        >>> opt.t
        3
        """
        return max((e.step for e in self._entries.values()), default=0)

    @t.setter
    def t(self, value):
        value = check_int_scalar(value, "t", low=0)
        for e in self._entries.values():
            e.step = value

    def reset(self) -> None:
        """Forget all state (moments, buffers, step counts).

        Examples
        --------
        >>> import numpy as np
        >>> w = np.zeros(2)
        >>> opt = Adam([w])
        >>> opt.step([np.ones(2)]); opt.t
        1
        >>> opt.reset(); opt.t, len(opt.state)
        (0, 0)
        """
        self._entries.clear()
        # _alpha_top is raised where a config is built: the cached ones are built again,
        # or a group whose config is cached (its alpha unchanged) would average the new
        # state without raising it, and lowering alpha later refuse that state's stalls
        self._configs.clear()
        self._alpha_top = 0.0

    def _detached(self) -> "Optimizer":
        """A new optimizer of this rule with the first group's hyper-parameters as its
        defaults, and no parameters or state (what a worker builds its replica's
        optimizer from)."""
        src = self.param_groups[0] if self.param_groups else self.defaults
        clone = object.__new__(type(self))
        Optimizer.__init__(clone, None, {k: src[k] for k in type(self)._HYPER})
        return clone

    def _entry(self, p, config, h, create=True, slots=None, index=0, pending=None):
        """The state entry of array ``p`` (created with step 0 when absent, after
        checking ``p`` is an updatable array: ``params[index]`` in messages), checked
        against the rule's layout of ``config`` (``slots`` rows). With ``pending`` (a
        dict), a new entry goes there, not yet into the optimizer: see :meth:`_commit`."""
        if slots is None:
            slots = _k.state_slots(config)
        e = self._entries.get(id(p))
        if e is None and pending is not None:
            e = pending.get(id(p))
        if e is None or e.ref() is not p:
            if not create:
                return None
            try:
                _as_param_list([p])
            except (TypeError, ValueError) as exc:      # DTypeError is a ValueError
                raise type(exc)(str(exc).replace("params[0]", f"params[{index}]")) \
                    from None
            rows = np.full((slots, p.size), self._initial_state_value(h), dtype=p.dtype)
            return self._new_entry(p, 0, rows, pending)
        if e.rows.shape != (slots, p.size):
            raise ShapeError(f"an array of {p.size} elements has optimizer state of shape "
                             f"{e.rows.shape}; the rule needs ({slots}, {p.size}) (the "
                             f"array was resized, or a hyper-parameter such as momentum "
                             f"or amsgrad changed the state's layout): call reset() to "
                             f"start over")
        if e.rows.dtype != p.dtype:
            raise DTypeError(f"an array is {p.dtype} but its optimizer state is "
                             f"{e.rows.dtype}: call reset() to start over")
        return e

    def _new_entry(self, p, step, rows, pending=None):
        key, owner = id(p), weakref.ref(self)

        def forget(ref, key=key):
            # the optimizer's table of the moment: load_state_dict puts a new one in place
            entries = getattr(owner(), "_entries", None)
            if entries is not None and entries.get(key) is not None and \
                    entries[key].ref is ref:
                del entries[key]
        e = _Entry(weakref.ref(p, forget), step, rows)
        (self._entries if pending is None else pending)[key] = e
        return e

    def _carry_state(self, old, new):
        """Put each array of ``new`` in the place of the one of ``old`` at its position:
        in its group, and with its state (step count and slots, moved). scikit-learn's
        optimizers keep their state by position, so an estimator whose user assigned
        ``coefs_[i]`` a new array of the same shape and dtype continues as if the array
        were the old one. Pairs that are one object, or differ in shape or dtype, are
        left as they are."""
        swap, pending = {}, {}
        for o, n in zip(old, new):
            if o is n or o.shape != n.shape or o.dtype != n.dtype:
                continue
            swap[id(o)] = n
            e = self._entries.get(id(o))
            if e is not None and e.ref() is o:
                self._new_entry(n, e.step, e.rows, pending)
        if not swap:
            return
        for g in self.param_groups:
            g["params"] = [swap.get(id(p), p) for p in g["params"]]
        self._commit(pending)
        kept = set(map(id, new))        # an old array may hold another place (a swap)
        for o in old:                   # the rows now belong to the new arrays alone
            if id(o) in swap and id(o) not in kept:
                self._entries.pop(id(o), None)

    def _commit(self, pending):
        """Add the entries a loop over several arrays made (``_entry(pending=...)``) in
        one dict update, a single C call: an interrupt between two bytecodes of the loop
        (it lands most often just after NumPy made a state array, where the GIL was let
        go) leaves none of them, never some."""
        if pending:
            self._entries.update(pending)

    def state_arrays(self, params: Sequence[np.ndarray]) -> List[np.ndarray]:
        """The optimizer state of ``params``: one ``(slots, param.size)`` array each.

        Keyed by each array's identity; created on first use (zeros, or Adagrad's
        ``initial_accumulator_value``) in its dtype; later calls return the same arrays,
        which ``step`` and the compiled training loop update in place. An optimizer
        without parameter groups adopts ``params`` as its group.

        Parameters
        ----------
        params : sequence of ndarray
            Live parameter arrays.

        Returns
        -------
        list of ndarray
            One ``(slots, param.size)`` array per parameter, in order (``slots`` is 0
            for a rule without state).

        Raises
        ------
        ShapeError, DTypeError
            If an array no longer matches the state it has (resized, or its rule's
            layout changed).

        Examples
        --------
        >>> import numpy as np
        >>> w = np.zeros(2)
        >>> opt = Adam([w])
        >>> [a.shape for a in opt.state_arrays([w])]        # exp_avg and exp_avg_sq rows
        [(2, 2)]
        >>> opt.state_arrays([w])[0] is opt.state_arrays([w])[0]
        True
        """
        rows = self._state_rows(params)
        # the caller may write into these arrays, as into optimizer.state's views: the
        # steps check the squared-gradient slots from now on (a negative one turned the
        # weights NaN with no error)
        self._state_exposed = True
        return rows

    def _state_rows(self, params: Sequence[np.ndarray]) -> List[np.ndarray]:
        """:meth:`state_arrays` for nnlib's own callers (the fits, dask's rounds), which
        write into the arrays only what the rules computed: the steps keep skipping
        the squared-gradient check for them."""
        params = _as_param_list(params)
        self._adopt(params)
        hypers = self._groups_of(params)
        rows, configs, pending = [], {}, {}
        for p, h in zip(params, hypers):
            config = configs.get(id(h))
            if config is None:              # once per group
                config = configs[id(h)] = self._group_config(h)
            rows.append(self._entry(p, config, h, pending=pending).rows)
        self._commit(pending)
        return rows

    def _bind(self, params):
        """What a fit does first: adopt ``params`` if the optimizer holds none, refuse
        them if its groups hold some but not all, and check they share one step count."""
        self._adopt(_as_param_list(params))
        self._check_all_grouped(params)
        self._steps_of(params)
        self._check_fit_squares(params)

    def _check_fit_squares(self, params):
        """A fit's check of the squared-gradient state of ``params`` (see
        ``_refuse_bad_squares``), once the state was handed out: as it starts, and
        before each compiled call after code of the user's ran (a callback may write
        into optimizer.state; the compiled epoch would step the weights NaN and name it
        only after rewinding them)."""
        if self._state_exposed and type(self)._SQUARES:
            entries = [self._entries.get(id(p)) for p in params]
            entries = [e if e is not None and e.ref() is p else None
                       for p, e in zip(params, entries)]
            self._refuse_bad_squares(params, entries,
                                     [self._group_config(h) for h in self._groups_of(params)],
                                     "fit")

    def _check_all_grouped(self, params):
        """A fit trains every array of its model. torch.optim users leave an array out
        of the optimizer to freeze it, which a fit would instead train with the
        defaults: refuse that -- groups the user gave (not adopted by a fit) holding
        only arrays of this fit, but not all of them -- naming the arrays and the way
        to freeze them. Adopted groups (a layer added since), and groups that also hold
        an array this fit does not train (one the user replaced by assigning
        ``layer.W``, another model's, this one's before a copy), leave the arrays in no
        group to the defaults, as documented in :meth:`configs`."""
        groups = self.param_groups
        if not groups or not getattr(self, "_chosen", False) or (
                len(groups) == 1 and len(groups[0]["params"]) == len(params)
                and all(map(operator.is_, groups[0]["params"], params))):
            return                                    # the common case: one group, all
        held = {id(p) for g in groups for p in g["params"]}
        missing = [i for i, p in enumerate(params) if id(p) not in held]
        if not missing or not held.issubset(map(id, params)):
            return
        named = ", ".join(f"params[{i}] (shape {params[i].shape})" for i in missing[:4])
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise ValueError(f"{named}{more} are in no parameter group of this "
                         f"{type(self).__name__}, which holds the fit's other arrays: "
                         f"fit trains every array of the model, so one left out would "
                         f"be trained with the defaults, not frozen as in torch.optim. "
                         f"To freeze them: opt.add_param_group({{'params': [...], "
                         f"'lr': 0.0}}); to train them: add them without 'lr'")

    def _steps_of(self, params: Sequence[np.ndarray]) -> int:
        """The one step count of ``params`` (the compiled epoch numbers its steps from
        it)."""
        get, first = self._entries.get, None
        for p in params:                # a plain loop: read twice per fit
            e = get(id(p))
            if e is not None:
                if first is None:
                    first = e.step
                elif e.step != first:
                    break
        else:
            return 0 if first is None else first
        steps = {e.step for e in map(get, map(id, params)) if e is not None}
        raise ValueError(f"the parameters of this fit have taken different numbers of "
                         f"steps {sorted(steps)} (stepped separately?); the compiled "
                         f"epoch steps them together: call reset() or step them "
                         f"together")

    def _step_entries(self, params):
        """The state entries of ``params`` (made where missing): what holds each one's
        step count, which the compiled epoch sets as it returns."""
        entries, found, pending = [], {}, {}
        held = self._entries.get
        last = None
        for p, h in zip(params, self._groups_of(params)):
            if h is not last:               # most often the same as the array before's
                last, got = h, found.get(id(h))
                if got is None:             # once per group
                    got = found[id(h)] = self._config_slots(h)
                config_slots = got
            # an entry of this very array in the rule's layout is what _entry returns
            e = held(id(p))
            if e is not None and e.ref() is p:
                rows = e.rows
                if rows.shape == (config_slots[1], p.size) and (
                        rows.dtype is p.dtype or rows.dtype == p.dtype):
                    entries.append(e)
                    continue
            entries.append(self._entry(p, config_slots[0], h, slots=config_slots[1],
                                       pending=pending))
        self._commit(pending)
        return entries

    def _set_steps(self, params, value):
        for entry in self._step_entries(params):
            entry.step = value

    # -- step ---------------------------------------------------------------------------
    def step(self, grads: Any = None, *legacy: Any, closure: Optional[Callable] = None,
             n_threads: Optional[int] = None) -> Optional[float]:
        """Update the parameters in place by one step of the rule.

        Parameters
        ----------
        grads : list of array_like, list of lists, or callable
            One gradient per parameter, same shape and dtype, in the parameters' order:
            a flat list, or one list per group (``None`` skips a parameter). A callable
            is taken as ``closure``. Not modified.
        closure : callable, optional
            ``closure() -> (loss, grads)``, called once; ``step`` returns its loss.
        n_threads : int or None
            OpenMP threads per array; None: 1 for small arrays, all cores for large.

        The functional form ``step(params, grads)`` updates the arrays ``params`` (any,
        in groups or not; others use the constructor's hyper-parameters).

        Returns
        -------
        The closure's loss, or None.

        Raises
        ------
        NonFiniteError
            If the update would turn a finite param, gradient and state into inf or NaN
            (e.g. a gradient of 1e155 in float64 or 1e20 in float32, whose square
            overflows the state of Adagrad, RMSprop and Adam: the step would then be
            silently skipped or NaN). The message names the optimizer, the array and the
            element; every param and the optimizer state are left as they were, and no
            step is counted. (PyTorch returns inf/NaN here.) A NaN or inf *gradient* is
            not refused: it gives NaN/inf in its own elements only.
        ConcurrentUseError
            If a running fit uses this optimizer (see README, "Threads and
            concurrency").

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.optim import SGD
        >>> w = np.array([1.0, 2.0])
        >>> opt = SGD([w], lr=0.5)
        >>> opt.step([np.array([1.0, -1.0])])
        >>> w
        array([0.5, 2.5])
        """
        # The step holds the optimizer as a fit does: a fit that starts meanwhile is
        # refused instead of reading the step counts before this step writes them.
        token = StepClaim()
        try:
            claim(self, "the optimizer", "a fit cannot start while optimizer.step runs "
                  "on the same optimizer", token)
        except ConcurrentUseError:
            thread, run = holder_of(self) or (None, None)
            here = thread == threading.get_ident()
            if isinstance(run, StepClaim):
                where = ("in this thread: this step is nested in it (made from its "
                         "closure)" if here else f"(thread {thread})")
                raise ConcurrentUseError(f"{type(self).__name__}.step: the optimizer is "
                                         f"in use by its running step {where}; one step "
                                         f"at a time") from None
            where = ("in this thread, which this step is nested in (made from a "
                     "callback of that fit)" if here else f"(thread {thread})")
            raise ConcurrentUseError(f"{type(self).__name__}.step: the optimizer is in use "
                                     f"by a running fit {where}; its steps would "
                                     f"interleave with the fit's") from None
        try:
            return self._claimed_step(grads, *legacy, closure=closure, n_threads=n_threads,
                                      token=token)
        finally:
            release(self, token)

    def _claimed_step(self, grads: Any = None, *legacy: Any,
                      closure: Optional[Callable] = None,
                      n_threads: Optional[int] = None,
                      token: Optional[StepClaim] = None) -> Optional[float]:
        """One step (see :meth:`step`) while this call holds the optimizer (for
        ``token``, which records the arrays it updates)."""
        loss = None
        if legacy:
            if len(legacy) > 2:
                raise TypeError("step takes (grads), (closure) or (params, grads)")
            params, grads = grads, legacy[0]
            if len(legacy) == 2:
                n_threads = legacy[1]
            if isinstance(params, np.ndarray):
                params = [params]
                grads = grads if isinstance(grads, (list, tuple)) else [grads]
            if not isinstance(params, (list, tuple)):
                raise TypeError(f"params must be a list of NumPy arrays; got "
                                f"{type(params).__name__}")
            if not isinstance(grads, (list, tuple)):
                raise TypeError(f"grads must be a list of arrays; got "
                                f"{type(grads).__name__}")
            if len(grads) != len(params):
                raise ValueError(f"got {len(params)} params but {len(grads)} grads")
            if not self.param_groups or "_unpickled" in self.__dict__:
                self._adopt(_as_param_list(params))
        else:
            if callable(grads) and closure is None:
                closure, grads = grads, None
            if closure is not None:
                if grads is not None:
                    raise TypeError("give step the gradients or a closure, not both")
                out = closure()
                try:
                    loss, grads = out
                except (TypeError, ValueError):
                    raise TypeError("closure() must return a pair (loss, grads)") from None
            if grads is None:
                raise TypeError("step needs the gradients: step(grads), step(closure) or "
                                "step(params, grads) (NumPy arrays carry no .grad)")
            params = self._all_params()
            if not params:
                raise TypeError(f"this {type(self).__name__} holds no parameters: build "
                                f"it with them ({type(self).__name__}(model.params, ...)) "
                                f"or call step(params, grads)")
            grads = self._match_grads(grads, params)
        keep = [i for i, g in enumerate(grads) if g is not None]
        if len(keep) != len(params):
            params, grads = [params[i] for i in keep], [grads[i] for i in keep]
        if token is not None:
            # recorded before the check: a fit claiming them meanwhile sees this step
            # (nnlib._threads, "objects a running fit owns")
            token.params = params
            busy = arrays_in_use(params)
            if busy is not None:
                i, thread = busy
                raise ConcurrentUseError(
                    f"{type(self).__name__}.step: parameter {i} (shape "
                    f"{np.shape(params[i])}) is being trained by a running fit with "
                    f"another optimizer (thread {thread}); the two would interleave "
                    f"their updates and lose steps: step it after the fit returns")
        self._apply(list(params), list(grads), n_threads)
        return loss

    def _match_grads(self, grads, params):
        """``grads`` as one flat list in the order of ``params`` (flat, or one list per
        group)."""
        if isinstance(grads, np.ndarray) and len(params) == 1:
            return [grads]
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of arrays (one per parameter); got "
                            f"{type(grads).__name__}")
        groups = self.param_groups
        if (len(groups) > 1 and len(grads) == len(groups)
                and all(isinstance(g, (list, tuple)) for g in grads)):
            for i, (g, group) in enumerate(zip(grads, groups)):
                if len(g) != len(group["params"]):
                    raise ValueError(f"grads[{i}] has {len(g)} gradients; group {i} has "
                                     f"{len(group['params'])} parameters")
            grads = [x for g in grads for x in g]
        if len(grads) != len(params):
            raise ValueError(f"got {len(grads)} grads for {len(params)} parameters (in "
                             f"the order of param_groups)")
        return list(grads)

    def _apply(self, params, grads, n_threads):
        """One update of ``params`` with ``grads``, all or nothing."""
        if not params:
            return
        # a new array is checked when its state is made; the kernel checks every array
        # again (contiguous, writable, dtypes, shapes) before it updates any
        hypers = self._groups_of(params)
        if self._apply_one_call(params, grads, n_threads, hypers):
            return
        entries, cfgs, pending = [], [], {}
        for i, (p, h) in enumerate(zip(params, hypers)):
            cfg, slots = self._config_slots(h)
            entries.append(self._entry(p, cfg, h, slots=slots, index=i, pending=pending))
            cfgs.append(cfg)
            if h["maximize"]:                      # torch: negate before weight decay
                grads[i] = np.negative(grads[i])
        self._commit(pending)
        if self._state_exposed:
            self._refuse_bad_squares(params, entries, cfgs)
        threads, min_size = _threads_for(params, n_threads)
        # one kernel call per (config, step count): usually one for all
        first, step0 = cfgs[0], entries[0].step
        if all(c is first and e.step == step0 for c, e in zip(cfgs, entries)):
            calls = [(first, step0, range(len(params)))]
        else:
            buckets = {}
            for i, (c, e) in enumerate(zip(cfgs, entries)):
                buckets.setdefault((id(c), e.step), (c, e.step, []))[2].append(i)
            calls = list(buckets.values())
        saved = ([(params[i].copy(), entries[i].rows.copy(), entries[i].step)
                  for i in range(len(params))] if len(calls) > 1 else None)
        try:
            # the kernel validates every array (naming params[i] / grads[i]) before any
            # update, and undoes a step that overflows (finite in, inf/NaN out); it sets
            # each entry's step count itself, so a Ctrl-C during the step (raised when the
            # call returns) cannot separate the update from its count
            for cfg, step, idx in calls:
                _k.optim_step_arrays(cfg, [params[i] for i in idx],
                                     [grads[i] for i in idx],
                                     [entries[i].rows for i in idx], step + 1, threads,
                                     min_size, [entries[i] for i in idx])
        except NonFiniteError as exc:
            complete(lambda: self._undo(saved, params, entries))
            raise NonFiniteError(f"{type(self).__name__} {exc}") from None
        except BaseException:
            complete(lambda: self._undo(saved, params, entries))
            raise

    def _apply_one_call(self, params, grads, n_threads, hypers):
        """``_apply`` when every array is in one group (``hypers``, not maximizing) and
        has its state, in that group's layout, at one step count: the usual step,
        done with one kernel call and nothing else per array. False (nothing done)
        otherwise, for the general path to handle (and to word any error)."""
        h = hypers[0]
        if h["maximize"]:
            return False
        cfg, slots = self._config_slots(h)
        if len(self.param_groups) < 2:
            # each entry is the one group's dict or the defaults, which hold no
            # "params" and so never equal it: list.count, by identity, in C (an
            # identity test of every dict in Python cost each step ~0.4 us)
            if hypers.count(h) != len(hypers):
                return False
        elif not self._one_config(hypers, h, cfg):
            return False
        found, rows = self._entries, []
        entries = [found.get(id(p)) for p in params]
        step = entries[0].step if entries[0] is not None else -1
        for p, e in zip(params, entries):
            if e is None or e.ref() is not p or e.step != step:
                return False
            r = e.rows
            if r.shape != (slots, p.size) or r.dtype != p.dtype:
                return False
            rows.append(r)
        if self._state_exposed:
            self._refuse_bad_squares(params, entries, [cfg] * len(params))
        threads, min_size = _threads_for(params, n_threads)
        try:
            # validates every array before any update and sets the step counts itself:
            # all or nothing, also on a Ctrl-C (see _apply)
            _k.optim_step_arrays(cfg, params, grads, rows, step + 1, threads, min_size,
                                 entries)
        except NonFiniteError as exc:
            raise NonFiniteError(f"{type(self).__name__} {exc}") from None
        return True

    def _one_config(self, hypers, h, cfg):
        """Whether every group in ``hypers`` has the settings of ``h`` (whose config is
        ``cfg``): compared by their cached configs, never as dicts, whose "params" lists
        of arrays have no truth value (list.count raised ValueError there)."""
        last = h
        for g in hypers:
            if g is not last and g is not h:
                if self._config_slots(g)[0] is not cfg:
                    return False
                last = g
        return True

    def _squares_cause(self, params: Sequence[np.ndarray]) -> Optional[str]:
        """Why a fit's step over ``params`` became non-finite when the optimizer's
        squared-gradient state is negative (written into ``optimizer.state`` during the
        fit, by a callback or another thread: the step takes its square root), as a
        phrase for the fit's warning; None otherwise. Run only after a fault."""
        for i, (p, h) in enumerate(zip(params, self._groups_of(params))):
            e = self._entries.get(id(p))
            cfg = self._group_config(h)
            names = self._slot_names(cfg)
            if e is None or e.ref() is not p or e.rows.shape != (len(names), p.size):
                continue
            bad = _squares_problem(names, e.rows, cfg, p.shape, self._alpha_top)
            if bad is not None:
                return (f"the optimizer's state{bad} (params[{i}], shape {p.shape}), "
                        f"and the step takes its square root (written into "
                        f"optimizer.state during the fit, by a callback or another "
                        f"thread?)")
        return None

    def _refuse_bad_squares(self, params, entries, cfgs, what="step"):
        """Raise NonFiniteError naming the first array whose squared-gradient state is
        negative (see ``_squares_problem``). Run only once ``optimizer.state`` has
        handed out views to write into (``_state_exposed``): load_state_dict checks
        what it loads, and the rules themselves keep these slots >= 0, so an optimizer
        whose state nobody could write pays nothing (the check reads every state row:
        a 1e6-element Adam step +3-10 %)."""
        for i, (p, e, cfg) in enumerate(zip(params, entries, cfgs)):
            names = self._slot_names(cfg)
            if e is None or e.rows.shape != (len(names), p.size):
                continue                    # no state yet, or one a step will refuse
            bad = _squares_problem(names, e.rows, cfg, p.shape, self._alpha_top)
            if bad is not None:
                raise NonFiniteError(
                    f"{type(self).__name__}.{what}: params[{i}] (shape {p.shape}): its "
                    f"state{bad}, and the step takes its square root (NaN weights, or grad / eps once clamped); "
                    f"was it written into optimizer.state[p] in place? Nothing was "
                    f"updated: mend it, or reset() or load_state_dict a saved state")

    @staticmethod
    def _undo(saved, params, entries):
        """Put back every array whose step count moved since ``saved``: the kernel sets
        the count as it updates, so the count says which calls were applied, also when
        an interrupt lands as a call returns. Idempotent. One kernel call (``saved``
        None) needs nothing: it writes and counts all or nothing."""
        if saved is None:
            return
        for i, (p0, rows0, step0) in enumerate(saved):
            if entries[i].step != step0:
                params[i][...] = p0
                entries[i].rows[...] = rows0
                entries[i].step = step0

    # -- state_dict ---------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's state in ``torch.optim``'s layout, as NumPy copies.

        Returns
        -------
        dict
            ``{"state": {index: {"step": int, <slot name>: ndarray of the parameter's
            shape}}, "param_groups": [{<hyper-parameters>, "params": [index, ...]}]}``;
            indices number the parameters of all groups in order, as torch does.

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.optim import Adam
        >>> w = np.zeros(2)
        >>> opt = Adam([w], lr=0.1)
        >>> opt.step([np.ones(2)])
        >>> sd = opt.state_dict()
        >>> sd["state"][0]["step"], sorted(sd["state"][0]), sd["param_groups"][0]["params"]
        (1, ['exp_avg', 'exp_avg_sq', 'step'], [0])
        """
        state, groups, index = {}, [], 0
        for g in self.param_groups:
            cfg = self._group_config(g)
            names = self._slot_names(cfg)
            ids = []
            for p in g["params"]:
                e = self._entry(p, cfg, g, create=False)
                if e is not None:
                    s = {"step": e.step}
                    s.update((n, e.rows[i].reshape(p.shape).copy())
                             for i, n in enumerate(names))
                    state[index] = s
                ids.append(index)
                index += 1
            groups.append({**{k: v for k, v in g.items() if k != "params"},
                           "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (also torch's own, tensors read as arrays): the
        groups' hyper-parameters and each parameter's step and state. Everything is
        checked before anything changes, and then all of it changes at once: an interrupt
        leaves the optimizer as it was or fully loaded. As with torch, ``param_groups``
        is a new list afterwards.

        Parameters
        ----------
        state_dict : dict
            From :meth:`state_dict` of an optimizer of the same class over arrays of the
            same shapes, or torch.optim's ``state_dict()``. A hyper-parameter held as a
            0-d tensor or array (torch's Tensor ``lr``, and the ``initial_lr`` a
            scheduler copies from it) is read as its number.

        Raises
        ------
        ValueError, TypeError
            If the groups or their sizes differ from this optimizer's, a state entry
            lacks a slot the rule needs or has the wrong shape, or a value is invalid
            (a hyper-parameter given as a tensor or array with dimensions is named).

        Examples
        --------
        Resuming gives the same steps as never stopping:

        >>> import numpy as np
        >>> w = np.zeros(2)
        >>> opt = Adam([w], lr=0.1)
        >>> opt.step([np.ones(2)])
        >>> w2 = w.copy()
        >>> resumed = Adam([w2], lr=0.1)
        >>> resumed.load_state_dict(opt.state_dict())
        >>> opt.step([np.ones(2)]); resumed.step([np.ones(2)])
        >>> np.array_equal(w, w2), resumed.t
        (True, 2)
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state",
                                                                   "param_groups"}:
            raise ValueError(f"{name}.load_state_dict needs a dict with 'state' and "
                             f"'param_groups'")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not isinstance(saved_state,
                                                                          dict):
            raise TypeError("state_dict['param_groups'] must be a list and "
                            "state_dict['state'] a dict")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"the state_dict has {len(saved_groups)} parameter groups; "
                             f"this optimizer has {len(self.param_groups)}")
        new_groups, by_index = [], {}
        for gi, (sg, g) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(sg, dict) or not isinstance(sg.get("params"), (list,
                                                                              tuple)):
                raise TypeError(f"param_groups[{gi}] must be a dict with a 'params' list")
            if len(sg["params"]) != len(g["params"]):
                raise ValueError(f"param_groups[{gi}] has {len(sg['params'])} parameters; "
                                 f"this optimizer's group {gi} has {len(g['params'])}")
            where = f"param_groups[{gi}]"
            hyper = {k: _saved_scalar(v, f"{where}[{k!r}]") for k, v in sg.items()
                     if k in type(self)._HYPER and k != "betas"}
            if "betas" in sg and "betas" in type(self)._HYPER:
                hyper["betas"] = tuple(_saved_scalar(b, f"{where}['betas'][{i}]")
                                       for i, b in enumerate(sg["betas"]))
            h = self._check({**self.defaults, **hyper})
            if "initial_lr" in sg:
                # a schedule's base rate (torch keeps it in the group, and so in the
                # state_dict: a fresh schedule then resumes from it; a clone of a
                # Tensor lr)
                h["initial_lr"] = check_real_scalar(
                    _saved_scalar(sg["initial_lr"], f"{where}['initial_lr']"),
                    f"{where}['initial_lr']", low=0.0)
            h["params"] = g["params"]
            new_groups.append(h)
            for idx, p in zip(sg["params"], g["params"]):
                by_index[idx] = (p, h)
        loaded = {}
        for idx, s in saved_state.items():
            if idx not in by_index:
                raise ValueError(f"state_dict['state'] has index {idx!r}, which no "
                                 f"parameter group lists")
            p, h = by_index[idx]
            _, step, rows = self._loaded_entry(idx, s, p, h)
            self._new_entry(p, step, rows, pending=loaded)
        listed = {id(p) for g in new_groups for p in g["params"]}
        entries = {k: e for k, e in self._entries.items() if k not in listed}
        entries.update(loaded)
        # One C call puts the groups, the state and an empty config cache in place (new
        # objects, as torch's load_state_dict does): an interrupt lands before it, and
        # nothing changed, or after it, and all of it did; never some arrays loaded and
        # others still holding the state they had.
        self.__dict__.update(param_groups=new_groups, _entries=entries, _configs={})

    def _loaded_entry(self, idx, s, p, h):
        """(p, step, rows) from one saved state entry, checked."""
        if not isinstance(s, dict):
            raise TypeError(f"state[{idx}] must be a dict")
        cfg = self._group_config(h)
        names = self._slot_names(cfg)
        step = s.get("step")
        if step is None:
            # torch's SGD keeps no step; a momentum buffer means it has stepped
            step = 1 if s.get("momentum_buffer") is not None else 0
        step = _checked_step(step, idx)
        unknown = set(s) - set(names) - {"step"}
        if unknown:
            raise ValueError(f"state[{idx}] has {sorted(unknown)}, which "
                             f"{type(self).__name__} with these hyper-parameters does not "
                             f"keep (it keeps {names})")
        rows = np.full((len(names), p.size), self._initial_state_value(h), dtype=p.dtype)
        for i, n in enumerate(names):
            if n not in s or s[n] is None:
                if step:
                    raise ValueError(f"state[{idx}] lacks {n!r}")
                continue
            a = np.asarray(s[n])
            if a.shape != p.shape or a.dtype.kind != "f":
                raise ValueError(f"state[{idx}][{n!r}] has shape {a.shape} and dtype "
                                 f"{a.dtype}; its parameter is {p.shape} float")
            rows[i] = a.reshape(-1)
        bad = _squares_problem(names, rows, cfg, p.shape)
        if bad is not None:
            raise ValueError(f"state[{idx}]{bad} (a corrupted or edited state)")
        return p, step, rows

    # -- pickling: the identity keys become the arrays themselves -------------------------
    def __getstate__(self):
        # the step counts first: a step or fit starting right after the check below
        # (before the entries' counts are read into the state) has then moved them
        unchanged = UnchangedWhilePickled((self,), f"pickling {type(self).__name__}",
                                          self._steps_taken)
        thread, run = holder_of(self) or (None, None)
        if thread is not None and thread != threading.get_ident():
            # its state and step counts move with the weights of that fit (or step),
            # without the GIL: a pickle would hold some of one step, some of the next
            what = "step" if isinstance(run, StepClaim) else "fit"
            raise ConcurrentUseError(f"pickling {type(self).__name__}: the optimizer is "
                                     f"in use by a running {what} (thread {thread}); "
                                     f"pickle it from a callback of that fit, or after "
                                     f"it")
        d = {k: v for k, v in self.__dict__.items()
             if k not in ("_entries", "_configs", "_unpickled", "_state_exposed")}
        d["_saved_entries"] = [(e.ref(), e.step, e.rows)
                               for e in self._entries.copy().values()
                               if e.ref() is not None]
        # last: a fit or step that starts while the arrays above are written is caught
        d = stamped(d)
        d[UnchangedWhilePickled.KEY] = unchanged
        return d

    def _steps_taken(self):
        """The fits started on it and each state entry's step count: what a step or fit
        of another thread moves (read by a pickle, which the steps themselves do not
        count for: a count in step cost each step ~0.2 us). The entries are read from
        a copy (one C call, atomic under the GIL): a first step in another thread adds
        entries meanwhile, which the pickle then refuses, where iterating the live dict
        raised 'dictionary changed size during iteration'."""
        return (self.__dict__.get("_fits_started", 0),
                [(k, e.step) for k, e in self._entries.copy().items()])

    def __setstate__(self, d):
        d = unstamped(d, type(self).__name__)
        d.pop(UnchangedWhilePickled.KEY, None)
        saved = d.pop("_saved_entries")
        object.__setattr__(self, "_entries", {})
        self.__dict__.update(d)
        self._configs = {}
        for p, step, rows in saved:         # as they were: a read-only copy stays one
            self._new_entry(p, step, rows)
        # its arrays may be copies of a model's, pickled apart (_follow_copies)
        self.__dict__["_unpickled"] = True
        # a squared-gradient state written in place before the pickle left no mark in
        # it (_state_exposed is not pickled): one look now, and a wrong one keeps every
        # step and fit checking it (naming it) where the compiled epoch would diverge
        params = [p for p, _, _ in saved if p is not None]
        if params and self._squares_cause(params) is not None:
            self._state_exposed = True

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._public().items())
        return f"{type(self).__name__}({args})"

    def _public(self):
        src = self.param_groups[0] if self.param_groups else self.defaults
        return {k: src[k] for k in type(self)._HYPER if k != "maximize" or src[k]}


# state slots that accumulate squared gradients (Adagrad's and NotesAdaGrad's sum,
# RMSprop's square_avg, Adam's second moments, SklearnAdam's vs): never negative
_SQUARED_SLOTS = frozenset({"sum", "square_avg", "exp_avg_sq", "max_exp_avg_sq", "vs"})

# centred RMSprop's variance square_avg - grad_avg**2 is >= 0 exactly (Cauchy-Schwarz on
# the two averages) and rounds below 0; the kernel clamps that to 0. An average
# alpha * x + (1 - alpha) * g stops moving once (1 - alpha) |g - x| is below half an ulp
# of x, so each average can stall eps / (2 (1 - alpha)) of itself off its exact value
# (eps of its dtype), and grad_avg**2 twice that: float32 with alpha 0.99999, a gradient
# that shrinks and holds, leaves grad_avg**2 9e-3 of square_avg above it. Beyond the
# larger of _CENTRED_SLACK and _CENTRED_ULPS * eps / (1 - alpha) of square_avg it is no
# rounding but an edited state.
_CENTRED_SLACK = 1e-3
_CENTRED_ULPS = 4.0


def _centred_slack(dtype: Any, alpha: float) -> Tuple[float, float]:
    """``(rtol, atol)``: how far grad_avg**2 may exceed square_avg by rounding alone
    (see _CENTRED_SLACK), for a state of ``dtype`` averaged with ``alpha``. ``atol``
    covers square_avg's underflow: a float32 gradient below ~1e-22 squares to 0 (or a
    subnormal of no precision) where grad_avg**2, taken in float64 here, does not; a
    variance that small is far below eps**2, so clamping it changes no step."""
    keep = 1.0 - float(alpha)
    if keep <= 0.0:
        return math.inf, math.inf       # alpha 1: the averages never move from their start
    info = np.finfo(dtype)
    return (max(_CENTRED_SLACK, _CENTRED_ULPS * float(info.eps) / keep),
            _CENTRED_ULPS * float(info.tiny) / keep)


def _squares_problem(names, rows, cfg, shape, alpha_top=0.0):
    """What is wrong with the squared-gradient slots of one array's ``(slots, size)``
    state ``rows`` (slot ``names``, rule ``cfg``), worded to follow ``state[...]``; None
    if nothing. A centred RMSprop's slack is that of the larger of ``cfg``'s alpha and
    ``alpha_top``, the alpha nearest 1 the state may have been averaged with: an alpha
    lowered mid-run leaves the averages stalled under the old one for a while. The step takes their square roots: a negative sum or average (or a
    centred RMSprop's negative variance) turns finite params NaN, or (clamped)
    divides the gradient by eps, with no NonFiniteError to say why."""
    for i, n in enumerate(names):
        if n in _SQUARED_SLOTS:
            r = rows[i]
            # an integer view's min screens for a set sign bit at the speed of a copy
            # (a float min is as fast but a full (r < 0) pass allocates); -0.0 and
            # negative NaNs pass the screen to the exact test below
            if r.size and r.view(_INT_OF[r.dtype.itemsize]).min() < 0 and (r < 0).any():
                j = int(np.argmax(r < 0))
                at = tuple(int(k) for k in np.unravel_index(j, shape))
                return (f"[{n!r}] holds {r[j].item()!r} at {at}: a sum or average of "
                        f"squared gradients is never negative")
    if cfg["centered"]:
        s, a = rows[0], rows[names.index("grad_avg")]
        excess = np.multiply(a, a, dtype=np.float64)
        excess -= s
        rtol, atol = _centred_slack(s.dtype, max(cfg["alpha"], alpha_top))
        bad = excess > rtol * np.abs(s.astype(np.float64)) + atol
        if bad.any():
            j = int(np.argmax(bad))
            at = tuple(int(k) for k in np.unravel_index(j, shape))
            return (f"['square_avg'] holds {s[j].item()!r} at {at}, below the square of "
                    f"['grad_avg'] there ({a[j].item()!r}): centred RMSprop's variance "
                    f"square_avg - grad_avg**2 is never negative")
    return None


_INT_OF = {4: np.int32, 8: np.int64}


def _checked_step(step, idx):
    """A saved state entry's step as an int in [0, 2**63) (the kernels' C long): an
    integer, or an integral float (torch keeps it in a float tensor); a bool is not a
    count. A larger one loaded, then raised OverflowError at the next step."""
    def bad():
        return ValueError(f"state[{idx}]['step'] must be an integer >= 0 and below "
                          f"2**63; got {step!r}")
    if isinstance(step, (bool, np.bool_)):
        raise bad()
    try:
        a = np.asarray(step)
    except Exception:       # noqa: BLE001 -- whatever asarray makes of it, it is no count
        raise bad() from None
    if a.shape != () or a.dtype.kind not in "iuf":
        raise bad()
    if a.dtype.kind == "f":
        v = float(a)
        if not math.isfinite(v) or v != math.floor(v):
            raise bad()
    value = int(a)
    if not 0 <= value < 2 ** 63:
        raise bad()
    return value


def _threads_for(params, n_threads):
    """(threads, parallel_min_size) for the kernel: ``n_threads`` None means
    ``resolve_threads(None, size)`` per array, whose thread limit is read only when an
    array is large enough to use it."""
    if n_threads is not None:
        return resolve_threads(n_threads, 0), 0
    for p in params:
        if p.size >= PARALLEL_MIN_SIZE:
            return thread_limit(), PARALLEL_MIN_SIZE
    return 1, PARALLEL_MIN_SIZE


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)    # native order


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
        dt = p.dtype
        if dt is _FLOAT64 or dt is _FLOAT32:
            pass                            # the common case, without np.dtype()
        elif native_float_dtype(dt) is None:
            raise DTypeError(f"params[{i}] must be float32 or float64; got {p.dtype}")
        elif not dt.isnative:
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

    With ``g = grad + weight_decay * w`` (``grad`` negated first when ``maximize``)::

        b <- g                              (first step)
        b <- momentum * b + (1 - dampening) * g
        w <- w - lr * (g + momentum * b)    if nesterov
        w <- w - lr * b                     otherwise (w - lr * g when momentum == 0)

    Parameters
    ----------
    params : list of ndarray or of dicts (parameter groups), optional
        The arrays to update (see the module docstring); omitted, the first arrays given
        to ``step(params, grads)`` or ``fit``.
    lr : float, default 1e-3
        Learning rate (>= 0).
    momentum : float in [0, 1), default 0
    dampening : float in [0, 1], default 0
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float >= 0, default 0
        L2 penalty coefficient added to the gradient.
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import SGD
    >>> w = np.zeros(2)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.step([np.ones(2)])
    >>> w                                  # -0.1, then -0.1 - 0.1 * 1.9
    array([-0.29, -0.29])
    """

    kind = OPTIM_KINDS["sgd"]
    _HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "maximize")
    _SQUARES = False                    # no squared-gradient state

    def __init__(self, params: Optional[Params] = None, lr: float = 1e-3,
                 momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay,
                                      maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["momentum"] = _unit(h["momentum"], "momentum")
        h["dampening"] = _unit(h["dampening"], "dampening", high_open=False)
        h["nesterov"] = _check_bool(h["nesterov"], "nesterov")
        h["weight_decay"] = _nonneg(h["weight_decay"], "weight_decay")
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0; "
                             f"got momentum={h['momentum']}, dampening={h['dampening']}")
        return h

    def _fields(self, h):
        return dict(momentum=h["momentum"], dampening=h["dampening"],
                    nesterov=h["nesterov"], weight_decay=h["weight_decay"])

    def _slot_names(self, config):
        return ["momentum_buffer"] if config["momentum"] != 0 else []


class Adagrad(Optimizer):
    """AdaGrad with PyTorch's rule (``torch.optim.Adagrad``).

    With ``g = grad + weight_decay * w`` and step ``t`` (1-based)::

        clr = lr / (1 + (t - 1) * lr_decay)
        G  <- G + g**2                      (G starts at initial_accumulator_value)
        w  <- w - clr * g / (sqrt(G) + eps)

    Parameters
    ----------
    params : list of ndarray or of dicts, optional
    lr : float, default 0.01
    lr_decay : float >= 0, default 0
    weight_decay : float >= 0, default 0
    initial_accumulator_value : float >= 0, default 0
    eps : float > 0, default 1e-10
        Added to ``sqrt(G)`` (outside the root; the notes' version puts it inside, see
        :class:`NotesAdaGrad`).
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import Adagrad
    >>> w = np.zeros(1)
    >>> Adagrad([w], lr=0.5).step([np.array([4.0])])
    >>> w.round(6)                         # -lr * g / sqrt(g**2)
    array([-0.5])
    """

    kind = OPTIM_KINDS["adagrad"]
    _HYPER = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps",
              "maximize")

    def __init__(self, params: Optional[Params] = None, lr: float = 0.01,
                 lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["lr_decay"] = _nonneg(h["lr_decay"], "lr_decay")
        h["weight_decay"] = _nonneg(h["weight_decay"], "weight_decay")
        h["initial_accumulator_value"] = _nonneg(h["initial_accumulator_value"],
                                                 "initial_accumulator_value")
        h["eps"] = _positive(h["eps"], "eps")
        return h

    def _initial_state_value(self, h=None):
        return (h or self.defaults)["initial_accumulator_value"]

    def _fields(self, h):
        return dict(lr_decay=h["lr_decay"], weight_decay=h["weight_decay"],
                    initial_accumulator_value=h["initial_accumulator_value"], eps=h["eps"])

    def _slot_names(self, config):
        return ["sum"]


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
    params : list of ndarray or of dicts, optional
    lr : float, default 0.01
    alpha : float in [0, 1), default 0.99
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
    momentum : float in [0, 1), default 0
    centered : bool, default False
        Normalize by the estimated variance instead of the raw second moment.
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import RMSprop
    >>> w = np.zeros(1)
    >>> opt = RMSprop([w], lr=0.01, alpha=0.75)
    >>> opt.step([np.array([2.0])])
    >>> sorted(opt.state[w]), float(opt.state[w]["square_avg"][0])   # 0.25 * 2**2
    (['square_avg', 'step'], 1.0)
    """

    kind = OPTIM_KINDS["rmsprop"]
    _HYPER = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(self, params: Optional[Params] = None, lr: float = 0.01,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps,
                                      weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["alpha"] = _unit(h["alpha"], "alpha")
        h["eps"] = _positive(h["eps"], "eps")
        h["weight_decay"] = _nonneg(h["weight_decay"], "weight_decay")
        h["momentum"] = _unit(h["momentum"], "momentum")
        h["centered"] = _check_bool(h["centered"], "centered")
        return h

    def _fields(self, h):
        return dict(alpha=h["alpha"], eps=h["eps"], weight_decay=h["weight_decay"],
                    momentum=h["momentum"], centered=h["centered"])

    def _slot_names(self, config):
        return (["square_avg"] + (["momentum_buffer"] if config["momentum"] > 0 else [])
                + (["grad_avg"] if config["centered"] else []))


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
    params : list of ndarray or of dicts, optional
    lr : float, default 1e-3
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
        L2 term added to the gradient (for decoupled decay use :class:`AdamW`).
    amsgrad : bool, default False
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import Adam
    >>> w = np.zeros(2)
    >>> opt = Adam([w], lr=0.1)
    >>> opt.step([np.array([3.0, -0.5])])   # the first step is lr * sign(g)
    >>> w.round(6)
    array([-0.1,  0.1])
    """

    kind = OPTIM_KINDS["adam"]
    _HYPER = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")

    def __init__(self, params: Optional[Params] = None, lr: float = 1e-3,
                 betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["betas"] = _betas(h["betas"])
        h["eps"] = _positive(h["eps"], "eps")
        h["weight_decay"] = _nonneg(h["weight_decay"], "weight_decay")
        h["amsgrad"] = _check_bool(h["amsgrad"], "amsgrad")
        return h

    def _fields(self, h):
        return dict(beta1=h["betas"][0], beta2=h["betas"][1], eps=h["eps"],
                    weight_decay=h["weight_decay"], amsgrad=h["amsgrad"])

    def _slot_names(self, config):
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if config["amsgrad"]
                                            else [])


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``).

    ``w <- w * (1 - lr * weight_decay)`` first, then the :class:`Adam` step on the raw
    gradient. Same parameters as :class:`Adam`; ``weight_decay`` defaults to 1e-2.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import AdamW
    >>> w = np.ones(1)
    >>> AdamW([w], lr=0.1, weight_decay=0.5).step([np.zeros(1)])   # only the decay
    >>> w
    array([0.95])
    """

    kind = OPTIM_KINDS["adamw"]

    def __init__(self, params: Optional[Params] = None, lr: float = 1e-3,
                 betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


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
    params : list of ndarray or of dicts, optional
    lr : float >= 0, default 0.01
    beta : float in (0, 1], default 0.1
        Weight of the newest gradient.
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import NotesMomentum
    >>> w = np.zeros(1)
    >>> NotesMomentum([w], lr=1.0, beta=0.25).step([np.ones(1)])   # v = 0.25
    >>> w
    array([-0.25])
    """

    kind = OPTIM_KINDS["notes_momentum"]
    _HYPER = ("lr", "beta", "maximize")
    _SQUARES = False                    # no squared-gradient state

    def __init__(self, params: Optional[Params] = None, lr: float = 0.01,
                 beta: float = 0.1, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, beta=beta, maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["beta"] = _unit(h["beta"], "beta", low_open=True, high_open=False)
        return h

    def _fields(self, h):
        return dict(momentum=h["beta"])

    def _slot_names(self, config):
        return ["velocity"]


class NotesAdaGrad(Optimizer):
    """AdaGrad as the lecture notes write it, with the stabilizer under the root.

    For every coordinate ``i``::

        G_i <- G_i + g_i**2                        (sum of squared derivatives so far,
                                                    this step's included)
        w_i <- w_i - lr * g_i / sqrt(eps + G_i)

    Parameters
    ----------
    params : list of ndarray or of dicts, optional
    lr : float >= 0, default 0.01
    eps : float > 0, default 1e-8
        The stabilizer: keeps the first steps finite where ``G_i`` is still 0. The notes
        add it under the square root; their numeric value does not survive in the
        extracted text, so the default is the customary 1e-8.
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import NotesAdaGrad
    >>> w = np.zeros(1)
    >>> NotesAdaGrad([w], lr=1.0, eps=0.0001).step([np.array([0.01])])
    >>> w.round(4)                         # -0.01 / sqrt(1e-4 + 1e-4)
    array([-0.7071])
    """

    kind = OPTIM_KINDS["notes_adagrad"]
    _HYPER = ("lr", "eps", "maximize")

    def __init__(self, params: Optional[Params] = None, lr: float = 0.01,
                 eps: float = 1e-8, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, eps=eps, maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["eps"] = _positive(h["eps"], "eps")
        return h

    def _fields(self, h):
        return dict(eps=h["eps"])

    def _slot_names(self, config):
        return ["sum"]


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
    params : list of ndarray or of dicts, optional
    lr : float >= 0, default 1e-3 (``learning_rate_init``)
    momentum : float in [0, 1], default 0.9
    nesterov : bool, default True (``nesterovs_momentum``)
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import SklearnSGD
    >>> w = np.zeros(1)
    >>> SklearnSGD([w], lr=0.1, momentum=0.5, nesterov=False).step([np.ones(1)])
    >>> w
    array([-0.1])
    """

    kind = OPTIM_KINDS["sklearn_sgd"]
    _HYPER = ("lr", "momentum", "nesterov", "maximize")
    _SQUARES = False                    # no squared-gradient state

    def __init__(self, params: Optional[Params] = None, lr: float = 1e-3,
                 momentum: float = 0.9, nesterov: bool = True, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["momentum"] = _unit(h["momentum"], "momentum", high_open=False)
        h["nesterov"] = _check_bool(h["nesterov"], "nesterov")
        return h

    def _fields(self, h):
        return dict(momentum=h["momentum"], nesterov=h["nesterov"])

    def _slot_names(self, config):
        return ["velocity"]


class SklearnAdam(Optimizer):
    """scikit-learn's ``AdamOptimizer``: bias correction folded into the rate, not eps.

    ::

        m <- beta_1 * m + (1 - beta_1) * grad
        v <- beta_2 * v + (1 - beta_2) * grad**2
        lr_t = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        w <- w - lr_t * m / (sqrt(v) + epsilon)

    Parameters
    ----------
    params : list of ndarray or of dicts, optional
    lr : float >= 0, default 1e-3 (``learning_rate_init``)
    beta_1, beta_2 : float in [0, 1), defaults 0.9, 0.999
    epsilon : float > 0, default 1e-8
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import SklearnAdam
    >>> w = np.zeros(1)
    >>> SklearnAdam([w], lr=0.1).step([np.ones(1)])
    >>> w.round(6)
    array([-0.1])
    """

    kind = OPTIM_KINDS["sklearn_adam"]
    _HYPER = ("lr", "beta_1", "beta_2", "epsilon", "maximize")

    def __init__(self, params: Optional[Params] = None, lr: float = 1e-3,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, *,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2,
                                      epsilon=epsilon, maximize=maximize))

    def _check(self, h):
        h = super()._check(h)
        h["beta_1"] = _unit(h["beta_1"], "beta_1")
        h["beta_2"] = _unit(h["beta_2"], "beta_2")
        h["epsilon"] = _positive(h["epsilon"], "epsilon")
        return h

    def _fields(self, h):
        return dict(beta1=h["beta_1"], beta2=h["beta_2"], eps=h["epsilon"])

    def _slot_names(self, config):
        return ["ms", "vs"]


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

    Examples
    --------
    >>> import numpy as np
    >>> w, n_iter, converged, losses = gradient_descent(
    ...     lambda w: (float(w @ w), 2 * w), np.array([3.0, -4.0]), lr=0.25)
    >>> n_iter, converged, losses[:3]                 # each step halves w
    (24, True, [25.0, 6.25, 1.5625])
    """

    def __init__(self, w: np.ndarray, n_iter: int, converged: bool, loss_history: List[float],
                 grad_norm: float, message: str, diverged: bool = False) -> None:
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


def gradient_descent(fun_and_grad: Callable[[np.ndarray], Tuple[float, ArrayLike]],
                     w0: ArrayLike, lr: float, tol: float = 1e-6,
                     max_iter: int = 1000) -> GDResult:
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

    Examples
    --------
    Minimise ``L(w) = ||w||^2`` (gradient ``2 w``):

    >>> import numpy as np
    >>> result = gradient_descent(lambda w: (float(w @ w), 2 * w), np.array([3.0, -4.0]),
    ...                           lr=0.25)
    >>> result.converged, result.n_iter, bool(np.abs(result.w).max() < 1e-6)
    (True, 24, True)
    >>> gradient_descent(lambda w: (float(w @ w), 2 * w), np.array([1.0]), lr=0.1,
    ...                  max_iter=3).message
    'max_iter=3 reached with |grad| = 1.02 > tol = 1e-06'
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


# --------------------------------------------------------------------------------------
# The optimizer inside a saved model file (nnlib._format calls these)
# --------------------------------------------------------------------------------------

_SAVABLE = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NotesMomentum", "NotesAdaGrad",
            "SklearnSGD", "SklearnAdam")


def _saved_section(optimizer, params):
    """(JSON-able header section, {array name: array}) of ``optimizer``'s defaults,
    groups and state over a model's ``params``: groups list positions in ``params``, each
    state row is an array ``opt<position>_<slot>`` of the parameter's shape."""
    name = type(optimizer).__name__
    if name not in _SAVABLE or type(optimizer) is not globals()[name]:
        raise TypeError(f"only nnlib.optim's optimizers are saved with a model; got {name}")
    position = {id(p): i for i, p in enumerate(params)}
    sd = optimizer.state_dict()
    flat = optimizer._all_params()
    if any(id(p) not in position for p in flat):
        raise ValueError("the optimizer holds arrays that are not this model's parameters; "
                         "save it with optimizer.state_dict() instead")
    groups = []
    for g in sd["param_groups"]:
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()
                 if k != "params"}
        groups.append({**hyper, "params": [position[id(flat[i])] for i in g["params"]]})
    state, arrays = [], {}
    for i, s in sd["state"].items():
        pos = position[id(flat[i])]
        slots = [k for k in s if k != "step"]
        state.append({"param": pos, "step": int(s["step"]), "slots": slots})
        arrays.update((f"opt{pos}_{k}", np.ascontiguousarray(s[k])) for k in slots)
    # the defaults too: an optimizer not yet given arrays has no group to hold them, and
    # add_param_group (or the fit that adopts the arrays) fills a new group from them
    defaults = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in optimizer.defaults.items() if k in type(optimizer)._HYPER}
    return {"class": name, "defaults": defaults, "param_groups": groups,
            "state": state}, arrays


def _saved_shapes(section, names, param_shapes, path):
    """``{array name: shape}`` of the optimizer arrays a file declares (``names``, in
    file order), after checking the header's optimizer section against the model's
    parameter shapes (``param_shapes``, in model order); ValueError naming ``path``."""
    from nnlib._format import _FormatError

    def bad(what):
        return _FormatError(f"{path}: the saved optimizer {what}")
    if not isinstance(section, dict) or section.get("class") not in _SAVABLE:
        raise bad(f"has unknown class "
                  f"{section.get('class') if isinstance(section, dict) else section!r}")
    groups, state = section.get("param_groups"), section.get("state")
    if not isinstance(groups, list) or not isinstance(state, list):
        raise bad("lacks its param_groups or state list")
    defaults = section.get("defaults", {})      # absent from files written before it
    if not isinstance(defaults, dict):
        raise bad(f"has defaults {defaults!r}; expected an object of hyper-parameters")
    listed = []
    for g in groups:
        if not isinstance(g, dict) or not isinstance(g.get("params"), list):
            raise bad("has a parameter group without a params list")
        listed += g["params"]
    ok = lambda i: isinstance(i, int) and not isinstance(i, bool) and \
        0 <= i < len(param_shapes)                                          # noqa: E731
    if not all(map(ok, listed)) or len(set(listed)) != len(listed):
        raise bad(f"lists parameters {listed}; the model has {len(param_shapes)}")
    shapes = {}
    for s in state:
        if not isinstance(s, dict) or s.get("param") not in listed or \
                not isinstance(s.get("step"), int) or s["step"] < 0 or \
                not isinstance(s.get("slots"), list) or \
                not all(isinstance(k, str) and k.isidentifier() and len(k) < 64
                        for k in s["slots"]):
            raise bad("has a malformed state entry")
        for k in s["slots"]:
            shapes[f"opt{s['param']}_{k}"] = param_shapes[s["param"]]
    if list(shapes) != list(names):
        raise bad(f"declares arrays {list(shapes)}; the file lists {list(names)}")
    return shapes


def _from_saved(section, arrays, params, path):
    """The optimizer a checked section (:func:`_saved_shapes`) and its arrays describe,
    built over the model's ``params``."""
    cls = globals()[section["class"]]
    defaults = section.get("defaults", {})
    groups, flat = [], []
    for g in section["param_groups"]:
        groups.append({**{k: v for k, v in g.items() if k != "params"},
                       "params": [params[i] for i in g["params"]]})
        flat += g["params"]
    index = {pos: i for i, pos in enumerate(flat)}
    sd = {"param_groups": [{**{k: v for k, v in g.items() if k != "params"},
                            "params": [index[p] for p in g["params"]]}
                           for g in section["param_groups"]],
          "state": {index[s["param"]]: {"step": s["step"],
                                        **{k: arrays[f"opt{s['param']}_{k}"]
                                           for k in s["slots"]}}
                    for s in section["state"]}}
    unknown = sorted(set(defaults) - set(cls._HYPER))
    try:
        if unknown:
            raise ValueError(f"defaults has {unknown}, which {cls.__name__} does not take")
        if "betas" in defaults and isinstance(defaults["betas"], list):
            defaults = {**defaults, "betas": tuple(defaults["betas"])}
        opt = cls([{"params": g["params"]} for g in groups] if groups else None,
                  **defaults)
        opt.load_state_dict(sd)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the saved optimizer is invalid: {exc}") from exc
    missing = [k for k in cls._HYPER if k not in defaults]
    if not groups and missing:
        _warn_unsaved_hyper(opt, missing, path)
    return opt


def _warn_unsaved_hyper(opt, missing, path):
    """Warn that a saved optimizer section without groups lacked ``missing`` defaults:
    files written before the section held ``"defaults"`` kept nothing of an optimizer
    not yet bound to the model's arrays (``model.optimizer = Adam(lr=0.01)`` then
    ``save``), so its lr and the rest were lost and the class's stand in for them; a
    fit that goes on with ``model.optimizer`` would train with them unannounced."""
    name = type(opt).__name__
    used = ", ".join(f"{k}={opt.defaults[k]!r}" for k in missing)
    warnings.warn(f"{path}: the saved {name} holds no {', '.join(missing)} (a file "
                  f"written before nnlib saved the hyper-parameters of an optimizer not "
                  f"yet bound to the model's arrays); {name}'s defaults are used instead: "
                  f"{used}. Set them on model.optimizer, or pass optimizer= to fit, to "
                  f"train with the original values", UserWarning, stacklevel=4)
