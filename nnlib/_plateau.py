"""When does a monitored value improve? One rule for the three places that count epochs
without improvement: ``fit``'s EarlyStopping (Keras), the estimators' ``n_iter_no_change``
(scikit-learn) and ``ReduceOnPlateau`` (torch's ReduceLROnPlateau).

They differ only in parameters: the direction (``mode``), the margin (``threshold``,
absolute or relative to the best value), and whether meeting the margin exactly counts
(scikit-learn's ``loss <= best - tol`` is an improvement; Keras's and torch's comparisons
are strict). A NaN value never improves.
"""
import math

__all__ = ["improves"]


def improves(value, best, *, mode="min", threshold=0.0, threshold_mode="abs",
             strict=True):
    """True when ``value`` improves on ``best`` by more than the margin.

    Parameters
    ----------
    value, best : float
        The new value and the best so far (None or +-inf: nothing yet, any finite value
        improves).
    mode : {"min", "max"}
    threshold : float >= 0
    threshold_mode : {"abs", "rel"}
        The bound is ``best -+ threshold`` or ``best * (1 -+ threshold)``.
    strict : bool
        Whether a value exactly at the bound fails to improve.

    Examples
    --------
    >>> improves(0.9, 1.0, threshold=0.1), improves(0.9, 1.0, threshold=0.1, strict=False)
    (False, True)
    """
    if best is None:
        return not math.isnan(value)
    sign = 1.0 if mode == "max" else -1.0
    if threshold_mode == "rel":
        bound = best * (1.0 + sign * threshold)
    else:
        bound = best + sign * threshold
    if mode == "max":
        return value > bound if strict else value >= bound
    return value < bound if strict else value <= bound
