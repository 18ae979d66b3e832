"""Metrics a Sequential reports (``fit(metrics=...)``, ``evaluate``, ``score``) and the
output map that turns its outputs into probabilities (``predict_proba``).

The last layer of a Sequential gives scores (logits); the loss it was trained with says
how those scores become probabilities: softmax for softmax_cross_entropy, sparsemax for
sparsemax_loss, an independent sigmoid per output for logistic_loss. squared_error and
hinge_loss define no probabilities.

A metric is "accuracy", "mse", "mae", or a callable ``metric(y_true, y_pred) -> float``
named by its ``__name__`` (Keras's habit). ``y_pred`` is what ``predict_proba`` returns
for a loss with probabilities and the raw outputs otherwise; ``y_true`` is the class
labels (n,) for the class-label losses, the 0/1 targets (n, c) for logistic_loss and the
targets (n, c) for squared_error.
"""
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from nnlib._codes import CLASS_LABEL_LOSSES

__all__ = ["PROBABILITY_MAPS", "probabilities", "accuracy", "Metrics"]

# loss -> name of the nnlib.functional output map giving its probabilities
PROBABILITY_MAPS = {"softmax_cross_entropy": "softmax", "sparsemax_loss": "sparsemax",
                    "logistic_loss": "sigmoid"}


def probabilities(Z: np.ndarray, loss: str) -> np.ndarray:
    """Class probabilities (n, c) from the model's outputs ``Z`` (n, c) under ``loss``.

    Raises ValueError for a loss without probabilities (squared_error, hinge_loss).

    Parameters
    ----------
    Z : ndarray (n, c)
        The model's outputs (logits).
    loss : str
        softmax_cross_entropy (softmax), sparsemax_loss (sparsemax) or
        logistic_loss (a sigmoid per column).

    Returns
    -------
    ndarray (n, c)

    Examples
    --------
    >>> probabilities(np.array([[0.0, 0.0]]), "softmax_cross_entropy")
    array([[0.5, 0.5]])
    """
    name = PROBABILITY_MAPS.get(loss)
    if name is None:
        raise ValueError(f"{loss} defines no probabilities (those of "
                         f"{sorted(PROBABILITY_MAPS)} do); use predict for the outputs")
    import nnlib.functional as F
    return getattr(F, name)(Z)


# NumPy's ufunc loops and reductions let the GIL go for more values than this
# (NPY_BEGIN_THREADS_THRESHOLDED), its argmax at any size
NUMPY_GIL_MIN = 500


def first_max_column(Z: np.ndarray) -> np.ndarray:
    """``Z.argmax(axis=1)`` of a float matrix with at least one column (the first
    maximum of each row, or its first NaN). Up to ``NUMPY_GIL_MIN`` values it is taken
    with ufuncs and reductions, which keep the GIL there: NumPy's argmax lets it go at any
    size, and fit computes accuracies once per epoch, where a brief release in a fit whose
    epochs keep the GIL starves a thread waiting for it (nnlib/_kernels/gil.pxd). Above
    it those ufuncs let the GIL go too, each of them, and argmax is five times faster:
    argmax it is.

    Examples
    --------
    >>> first_max_column(np.array([[1.0, 3.0, 3.0], [np.nan, 2.0, np.nan], [-0.0, 0.0, -1.0]]))
    array([1, 0, 0])
    """
    if Z.size > NUMPY_GIL_MIN:
        return Z.argmax(axis=1)
    top = (Z == Z.max(axis=1, keepdims=True)) | np.isnan(Z)
    return (np.cumsum(top, axis=1) == 0).sum(axis=1)


def accuracy(Z: np.ndarray, y_true: np.ndarray, loss: str) -> Optional[float]:
    """Fraction of rows predicted right from the outputs ``Z``; None for squared_error.

    Class-label losses: ``argmax(Z) == y`` (ties go to the first class). logistic_loss:
    every output's sign matches its 0/1 target (multilabel: exact match).

    Parameters
    ----------
    Z : ndarray (n, c)
        The model's outputs (logits).
    y_true : ndarray
        Class indices (n,), or the 0/1 targets (n, c) for logistic_loss.
    loss : str

    Returns
    -------
    float or None

    Examples
    --------
    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]),
    ...          "softmax_cross_entropy")
    0.5
    """
    if loss in CLASS_LABEL_LOSSES:
        return float(np.mean(first_max_column(Z) == y_true))
    if loss == "logistic_loss":
        return float(np.mean(((Z > 0) == (y_true > 0.5)).all(axis=1)))
    return None


def _mse(y_true, y_pred):
    return float(np.mean((np.asarray(y_pred, np.float64) - y_true) ** 2))


def _mae(y_true, y_pred):
    return float(np.mean(np.abs(np.asarray(y_pred, np.float64) - y_true)))


_NAMED = {"mse": _mse, "mae": _mae}

Metric = Union[str, Callable[[np.ndarray, np.ndarray], float]]


class Metrics:
    """The metrics one fit (or evaluate) reports, checked once.

    Parameters
    ----------
    metrics : sequence of str or callables
        "accuracy" (classification losses only), "mse", "mae" (squared_error only), or
        ``f(y_true, y_pred) -> float``.
    loss : str
        The loss the model is trained or evaluated with.

    Examples
    --------
    >>> m = Metrics(["accuracy"], "softmax_cross_entropy")
    >>> m.names
    ['accuracy']
    >>> m.compute(np.array([[1.0, 0.0]]), np.array([0]))
    {'accuracy': 1.0}
    """

    def __init__(self, metrics: Optional[Sequence[Metric]], loss: str):
        self.loss = loss
        self.items: List[tuple] = []
        if metrics is None:
            return
        if isinstance(metrics, (str, bytes)) or callable(metrics):
            metrics = [metrics]
        for metric in metrics:
            if isinstance(metric, str):
                if metric in ("accuracy", "acc"):
                    if loss not in CLASS_LABEL_LOSSES and loss != "logistic_loss":
                        hint = " (try 'mse' or 'mae')" if loss == "squared_error" else ""
                        raise ValueError(f"accuracy needs a classification loss; {loss} "
                                         f"has none{hint}")
                    self.items.append(("accuracy", None))
                elif metric in _NAMED:
                    if loss != "squared_error":
                        raise ValueError(f"{metric!r} compares real-valued targets; use it "
                                         f"with squared_error, not {loss}")
                    self.items.append((metric, _NAMED[metric]))
                else:
                    raise ValueError(f"unknown metric {metric!r}; use 'accuracy', 'mse', "
                                     f"'mae' or a callable metric(y_true, y_pred)")
            elif callable(metric):
                name = getattr(metric, "name", None) or getattr(metric, "__name__", None)
                if not isinstance(name, str) or name == "<lambda>":
                    raise ValueError(f"metric {metric!r} needs a name: give it a "
                                     f"__name__ or a 'name' attribute (a def, not a "
                                     f"lambda)")
                self.items.append((name, metric))
            else:
                raise TypeError(f"metrics must be names or callables; got {metric!r}")
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique; got {names}")
        reserved = {"loss", "time", "lr"} & set(names)
        if reserved:
            raise ValueError(f"metric names {sorted(reserved)} are taken by fit's logs")

    @property
    def names(self) -> List[str]:
        """The metrics' names, in order (the keys of :meth:`compute`, and of ``fit``'s
        History): a callable's ``name`` attribute, else its ``__name__``.

        Examples
        --------
        >>> def hit_rate(y_true, y_pred):
        ...     return 0.0
        >>> class Margin:
        ...     name = "margin"
        ...     def __call__(self, y_true, y_pred):
        ...         return 0.0
        >>> Metrics(["acc", hit_rate, Margin()], "softmax_cross_entropy").names
        ['accuracy', 'hit_rate', 'margin']
        """
        return [name for name, _ in self.items]

    def __bool__(self):
        return bool(self.items)

    def compute(self, Z: np.ndarray, y_true: np.ndarray) -> Dict[str, float]:
        """Each metric on the outputs ``Z`` (n, c) against ``y_true``.

        Parameters
        ----------
        Z : ndarray (n, c)
            The model's outputs (logits); callables receive the probabilities of the
            loss where it has them, else Z.
        y_true : ndarray
            The labels or targets the loss takes.

        Returns
        -------
        dict
            ``{name: value}`` in the order of :attr:`names`.

        Examples
        --------
        >>> def top_score(y_true, y_pred):                # on the probabilities
        ...     return round(float(y_pred.max(axis=1).mean()), 6)
        >>> m = Metrics(["accuracy", top_score], "softmax_cross_entropy")
        >>> m.compute(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([1, 0]))
        {'accuracy': 0.5, 'top_score': 0.690399}
        """
        out: Dict[str, float] = {}
        y_pred = given_true = None
        for name, fn in self.items:
            if fn is None:
                out[name] = accuracy(Z, y_true, self.loss)  # type: ignore[assignment]
                continue
            if y_pred is None:
                # read-only views: y_true is the labels the fit trains on and Z its
                # outputs, which the metrics after this one read too (a metric writing
                # into them made the next fit step raise 'y changed during training',
                # or changed the accuracy reported beside it)
                y_pred = _read_only(probabilities(Z, self.loss)
                                    if self.loss in PROBABILITY_MAPS else Z)
                given_true = _read_only(y_true)
            try:
                value = fn(given_true, y_pred)
            except ValueError as exc:
                if "read-only" not in str(exc):
                    raise
                raise ValueError(f"metric {name!r} writes into its arguments, which are "
                                 f"read-only (the labels the fit trains on, the outputs "
                                 f"the other metrics read): compute on a copy "
                                 f"(y_pred.copy())") from exc
            try:
                out[name] = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"metric {name!r} must return a number; got "
                                f"{value!r}") from None
        return out


def _read_only(a: np.ndarray) -> np.ndarray:
    """A view of ``a`` that cannot be written through."""
    view = a.view()
    view.flags.writeable = False
    return view


def metrics_list(metrics: Optional[Sequence[Metric]]) -> Optional[List[Metric]]:
    """``metrics`` as a list, read once (None stays None, one metric alone becomes a list
    of one): a caller that reads them twice (``train_on_batch``'s fit, then the names of
    its result) saw an iterator empty the second time and dropped the values."""
    if metrics is None:
        return None
    if isinstance(metrics, (str, bytes)) or callable(metrics):
        return [metrics]
    return list(metrics)
