"""The scikit-learn estimator protocol without scikit-learn: get_params/set_params from
the ``__init__`` signature, a readable repr, fitted-state checks, ``score``, and the
``__sklearn_tags__`` that scikit-learn's tools (Pipeline, GridSearchCV, clone,
check_estimator) ask for. scikit-learn is imported only inside ``__sklearn_tags__``,
which only scikit-learn calls.

Rules kept (as scikit-learn's): ``__init__`` stores its arguments unchanged and does no
validation; fitted attributes end in ``_``; ``fit`` validates and returns ``self``.

First-class citizens when scikit-learn is in use. A model created while scikit-learn is
imported (``sklearn.base`` in ``sys.modules``: the caller uses it) is an instance of a
subclass made once per class, ``(TheClass, sklearn.base.BaseEstimator)``, with the same
name, module and behaviour: ``isinstance(est, BaseEstimator)`` holds, and
BaseEstimator brings the HTML repr and metadata routing (``set_fit_request``,
``set_partial_fit_request``, ``set_score_request``, made from the signatures of fit,
partial_fit and score), while nnlib's own get_params, set_params, repr and tags come
first in the method order. ``import nnlib`` never imports scikit-learn; a model created
before scikit-learn was imported stays a plain nnlib model (everything but
``isinstance`` and routing still works with scikit-learn's tools). Pickles and copies
name the nnlib class, so they load with or without scikit-learn.
"""
import inspect
import sys
import threading
from typing import Any, Callable, Dict, Optional, TypeVar

import numpy as np

from nnlib._typing import ArrayLike
from nnlib._validation import refuse_masked, unit_scaled_weights
from nnlib.exceptions import not_fitted


_CITIZENS: dict = {}            # nnlib class -> its BaseEstimator subclass
_Model = TypeVar("_Model", bound="BaseModel")
_CITIZENS_LOCK = threading.Lock()


def _citizen_class(cls):
    """``cls`` with ``sklearn.base.BaseEstimator`` as a last base (made once)."""
    sub = _CITIZENS.get(cls)
    if sub is None:
        from sklearn.base import BaseEstimator     # already imported by the caller
        with _CITIZENS_LOCK:
            sub = _CITIZENS.get(cls)
            if sub is None:
                sub = type(cls.__name__, (cls, BaseEstimator),
                           {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                            "__doc__": cls.__doc__, "_nnlib_class": cls})
                _CITIZENS[cls] = sub
    return sub


def _new_model(cls):
    """An empty instance of ``cls`` (a citizen where scikit-learn is in use): what
    pickles and copies of nnlib models are rebuilt with."""
    return cls.__new__(cls)


def stamped(state: Dict[str, Any]) -> Dict[str, Any]:
    """``state`` with the nnlib version that pickles it (``"_nnlib_version"``), as
    scikit-learn stamps its estimators' pickles: what :func:`unstamped` checks."""
    from nnlib import __version__
    return {**state, "_nnlib_version": __version__}


def unstamped(state: Dict[str, Any], name: str) -> Dict[str, Any]:
    """``state`` without its version stamp, warning (InconsistentVersionWarning, naming
    ``name``) when another nnlib version pickled it; a state without a stamp (pickled
    before nnlib stamped it) is taken as this version's and loads quietly."""
    from nnlib import __version__
    state = dict(state)
    original = state.pop("_nnlib_version", __version__)
    if original != __version__:
        import warnings
        from nnlib.exceptions import InconsistentVersionWarning
        # 3: past this function and the __setstate__ that calls it, to pickle.loads's
        # caller (pickle's own loop is C and has no frame)
        warnings.warn(InconsistentVersionWarning(
            estimator_name=name, current_nnlib_version=__version__,
            original_nnlib_version=str(original)), stacklevel=3)
    return state


class BaseModel:
    """Parameter handling shared by every nnlib model."""

    _estimator_type: Optional[str] = None   # "classifier" / "regressor"
    _nnlib_class = None      # on a scikit-learn citizen subclass: the nnlib class

    def __new__(cls, *args, **kwargs):
        base = sys.modules.get("sklearn.base")
        if base is not None and cls._nnlib_class is None and \
                hasattr(base, "BaseEstimator") and not issubclass(cls, base.BaseEstimator):
            cls = _citizen_class(cls)
        return super().__new__(cls)

    def __reduce_ex__(self, protocol):
        # the citizen subclass is not importable by name: pickle (and copy) the nnlib
        # class, whose __new__ makes a citizen again where scikit-learn is in use
        cls = type(self)._nnlib_class or type(self)
        state = self.__getstate__() if hasattr(self, "__getstate__") else self.__dict__
        return _new_model, (cls,), stamped(state)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        """Restore a pickled state, warning (InconsistentVersionWarning) when another
        nnlib version pickled it; a state without a version (pickled before the stamp)
        is taken as this version's."""
        self.__dict__.update(unstamped(state, type(self).__name__))

    @classmethod
    def _param_names(cls):
        # kept on the class itself (its own __dict__, not a parent's): inspect.signature
        # costs more than the rest of get_params, which every fit calls
        names = cls.__dict__.get("_param_names_of_init")
        if names is None or names[0] is not cls.__init__:
            sig = inspect.signature(cls.__init__)
            names = (cls.__init__, sorted(p.name for p in sig.parameters.values()
                                          if p.name != "self" and p.kind != p.VAR_KEYWORD))
            cls._param_names_of_init = names
        return list(names[1])

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The constructor arguments as a dict (``deep`` expands nested models).

        Parameters
        ----------
        deep : bool, default True
            Also list the parameters of nested estimators as ``name__param``.

        Returns
        -------
        dict

        Examples
        --------
        >>> from nnlib import Perceptron
        >>> Perceptron(max_iter=5).get_params()
        {'fit_intercept': True, 'max_iter': 5, 'random_state': None, 'shuffle': False}
        """
        out: Dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self: _Model, **params: Any) -> _Model:
        """Set constructor arguments (validated at the next ``fit``); returns self.

        Parameters
        ----------
        **params
            Constructor arguments by name (``name__param`` for a nested estimator's).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a name the constructor does not take.

        Examples
        --------
        >>> from nnlib import Perceptron
        >>> Perceptron().set_params(max_iter=5, shuffle=True)
        Perceptron(max_iter=5, shuffle=True)
        >>> Perceptron().set_params(max_iters=5)
        Traceback (most recent call last):
        ...
        ValueError: Invalid parameter 'max_iters' for estimator Perceptron(). ...
        """
        valid = self._param_names()
        nested: Dict[str, Dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self!r}. "
                                 f"Valid parameters are: {valid!r}.")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            if not _same(value, default):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- fitted state ------------------------------------------------------------------
    def __sklearn_is_fitted__(self):
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise not_fitted(self)

    # -- scikit-learn tags (called by scikit-learn only) -----------------------------------
    def __sklearn_tags__(self):
        from sklearn.utils import (ClassifierTags, InputTags, RegressorTags, TargetTags,
                                   Tags)
        tags = Tags(estimator_type=self._estimator_type,
                    target_tags=TargetTags(required=True),
                    input_tags=InputTags())
        if self._estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags()
        elif self._estimator_type == "regressor":
            tags.regressor_tags = RegressorTags()
        return self._more_sklearn_tags(tags)

    def _more_sklearn_tags(self, tags):
        return tags


def _same(a, b):
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:   # noqa: BLE001 -- exotic values compare however they like
        return False


def _refuse_masked(y, sample_weight):
    """score's y and sample_weight, as the fits check them (``refuse_masked``)."""
    for name, a in (("y", y), ("sample_weight", sample_weight)):
        refuse_masked(a, name)


class _ZeroWeights(ValueError, ZeroDivisionError):
    """score's weights are all 0: scikit-learn raised ZeroDivisionError (np.average's)
    before 1.6 and a ValueError since; either ``except`` catches this one."""


def _checked_score_inputs(model, pred, y, sample_weight, numeric):
    """(y, sample_weight) for ``_score_predictions``, checked as a fit checks them: y
    has one row per row of ``pred`` and, where it holds numbers (always when
    ``numeric``), is finite; the weights are finite, >= 0, not all 0, one per row (a
    scalar is every row's). An unchecked NaN scored R^2 = 1.0 and an infinity 0.0."""
    from nnlib._inputs import check_all_finite, check_y_shape
    from nnlib._validation import ShapeError, check_sample_weight
    _refuse_masked(y, sample_weight)
    owner = type(model).__name__
    n = pred.shape[0]
    y = check_y_shape(y, n, owner=owner, allow_2d=True)
    # outputs counted as scikit-learn's metrics count them: 1-d is one output; a
    # mismatch broadcast (R^2 of one target against every output) or failed in NumPy
    outputs = [1 if a.ndim == 1 else a.shape[1] for a in (y, np.asarray(pred))]
    if outputs[0] != outputs[1]:
        raise ShapeError(f"y_true and y_pred have different number of output "
                         f"({outputs[0]}!={outputs[1]}): {owner} predicts "
                         f"{outputs[1]} output(s) per row; y has shape {y.shape}")
    if numeric:
        from nnlib._inputs import check_float_target
        y = check_float_target(y, owner=owner)
    elif y.dtype.kind in "fc":
        check_all_finite(y, "y")
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, n, np.float64,
                                            zero_error=_ZeroWeights)
    return y, sample_weight


class ClassifierMixin:
    """score = mean accuracy."""

    _estimator_type: Optional[str] = "classifier"
    predict: Callable[..., Any]          # the estimator's own (for type checkers)

    def score(self, X: ArrayLike, y: ArrayLike,
              sample_weight: Optional[ArrayLike] = None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y`` (weighted if given).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float

        Examples
        --------
        >>> from nnlib import Perceptron
        >>> clf = Perceptron().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        >>> clf.score([[0.0], [3.0]], [1, 1]), clf.score([[0.0], [3.0]], [1, 1], [0, 1])
        (0.5, 1.0)
        """
        pred = self.predict(X)
        y, sample_weight = _checked_score_inputs(self, pred, y, sample_weight, False)
        return self._score_predictions(pred, y, sample_weight)

    @staticmethod
    def _score_predictions(pred, y, sample_weight=None):
        _refuse_masked(y, sample_weight)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1 and pred.ndim == 1:
            y = y.ravel()
        correct = (pred == y)
        if correct.ndim > 1:           # multilabel: a sample counts if all labels match
            correct = correct.all(axis=1)
        # scaled: weights near 1e308 would sum to inf (NaN accuracy)
        return float(np.average(correct, weights=unit_scaled_weights(sample_weight)))


class RegressorMixin:
    """score = coefficient of determination R^2."""

    _estimator_type: Optional[str] = "regressor"
    predict: Callable[..., Any]

    def score(self, X: ArrayLike, y: ArrayLike,
              sample_weight: Optional[ArrayLike] = None) -> float:
        """R^2 = 1 - SS_res / SS_tot of ``predict(X)`` (averaged over outputs uniformly,
        as scikit-learn's ``r2_score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float

        Examples
        --------
        >>> from nnlib import LinearRegression
        >>> reg = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
        >>> round(reg.score([[3.0], [4.0]], [7.0, 8.0]), 12)       # 1 - 1 / 0.5
        -1.0
        """
        pred = self.predict(X)
        y, sample_weight = _checked_score_inputs(self, pred, y, sample_weight, True)
        return self._score_predictions(pred, y, sample_weight)

    @staticmethod
    def _score_predictions(pred, y, sample_weight=None):
        _refuse_masked(y, sample_weight)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        pred = np.asarray(pred, dtype=np.float64).reshape(y.shape[0], -1)
        # scaled: weights near 1e308 would overflow the sums (R^2 of NaN, or 0)
        w = np.ones(y.shape[0]) if sample_weight is None else \
            unit_scaled_weights(sample_weight)
        ss_res = (w[:, None] * (y - pred) ** 2).sum(axis=0)
        mean = np.average(y, axis=0, weights=w)
        ss_tot = (w[:, None] * (y - mean) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot,
                          np.where(ss_res > 0, 0.0, 1.0))
        return float(r2.mean())
