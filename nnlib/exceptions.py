"""Warnings and errors of nnlib's models (the input errors ShapeError, DTypeError,
NonFiniteError and LabelError live in nnlib._validation and are exported by nnlib).

Named as their scikit-learn counterparts so code written for one reads right for the
other; scikit-learn is never imported here.
"""
import sys


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped at ``max_iter`` before meeting its tolerance."""


class DataConversionWarning(UserWarning):
    """Input was converted, e.g. a column-vector y raveled to 1-d."""


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit``."""


_sk_twins = {}


def sklearn_compatible(cls):
    """``cls``, or -- when scikit-learn is already imported (the user is mixing the two) --
    a subclass of both ``cls`` and scikit-learn's class of the same name, so that
    scikit-learn's tools (``pytest.raises(NotFittedError)``, warning filters) recognise
    it. scikit-learn is never imported here."""
    sk = sys.modules.get("sklearn.exceptions")
    sk_cls = getattr(sk, cls.__name__, None) if sk is not None else None
    if sk_cls is None:
        return cls
    twin = _sk_twins.get((cls, sk_cls))
    if twin is None:
        twin = _sk_twins[(cls, sk_cls)] = type(cls.__name__, (cls, sk_cls),
                                               {"__module__": __name__})
    return twin


def not_fitted(estimator):
    """The exception to raise when ``estimator`` is used before fit."""
    return sklearn_compatible(NotFittedError)(
        f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
        f"appropriate arguments before using this estimator.")
