"""Every exception and warning class nnlib raises, in one place.

Input errors subclass ValueError or TypeError and their messages say what was expected and
what was given. The model warnings and errors are named as their scikit-learn counterparts
so code written for one reads right for the other; scikit-learn is never imported here.
"""
import sys


class ShapeError(ValueError):
    """An array has the wrong number of dimensions or a mismatched shape."""


class DTypeError(TypeError):
    """An array's dtype cannot be used (complex, object, string, mixed floats...)."""


class NonFiniteError(ValueError):
    """An input holds NaN or +-inf where finite values are required."""


class LabelError(ValueError):
    """Labels are out of range, non-integral, or unseen."""


class DTypeRangeError(ValueError):
    """A finite scalar parameter does not fit the working dtype: cast to it, it would
    become +-inf (e.g. a leaky_relu slope of 1e39 with float32 data)."""


class ComplexDataError(DTypeError, ValueError):
    """Complex input: a DTypeError that is also a ValueError (as scikit-learn raises)."""


class ConcurrentUseError(RuntimeError):
    """An object one running operation owns was used by another at the same time (two
    fits sharing one optimizer, or ``optimizer.step`` during a fit that uses it)."""


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has a bad type or value (raised by fit, as scikit-learn's
    error of the same name; both a ValueError and a TypeError)."""



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
