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


_sk_not_fitted = {}


def not_fitted(estimator):
    """The exception to raise when ``estimator`` is used before fit.

    If scikit-learn is already imported (the user is mixing the two), the exception also
    subclasses ``sklearn.exceptions.NotFittedError`` so scikit-learn's tools recognise it.
    """
    cls = NotFittedError
    sk = sys.modules.get("sklearn.exceptions")
    if sk is not None:
        cls = _sk_not_fitted.get(sk)
        if cls is None:
            cls = _sk_not_fitted[sk] = type("NotFittedError",
                                            (NotFittedError, sk.NotFittedError),
                                            {"__module__": __name__})
    return cls(f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' "
               f"with appropriate arguments before using this estimator.")
