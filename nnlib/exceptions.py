"""Every exception and warning class nnlib raises, in one place.

Input errors subclass ValueError or TypeError and their messages say what was expected and
what was given. The model warnings and errors are named as their scikit-learn counterparts
so code written for one reads right for the other; scikit-learn is never imported here.
"""
import sys


class ShapeError(ValueError):
    """An array has the wrong number of dimensions or a mismatched shape.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.functional import dense_forward
    >>> dense_forward(np.ones((2, 3)), np.ones((4, 1)), np.zeros(1))
    Traceback (most recent call last):
    ...
    nnlib.exceptions.ShapeError: X has 3 columns but W has 4 rows (X (2, 3) @ W (4, 1) is ...
    """


class DTypeError(TypeError):
    """An array's dtype cannot be used (complex, object, string, mixed floats...).

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.functional import relu
    >>> relu(np.array(["1.0"]))
    Traceback (most recent call last):
    ...
    nnlib.exceptions.DTypeError: x must be a real float32 or float64 array; got dtype <U3 (string)
    """


class NonFiniteError(ValueError):
    """An input holds NaN or +-inf where finite values are required.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib import MLPRegressor
    >>> MLPRegressor().fit([[1.0, np.nan], [1.0, 2.0]], [0.0, 1.0])
    Traceback (most recent call last):
    ...
    nnlib.exceptions.NonFiniteError: Input X contains NaN (nan) at row 0, column 1; ...
    """


class LabelError(ValueError):
    """Labels are out of range, non-integral, or unseen.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.functional import softmax_cross_entropy
    >>> softmax_cross_entropy(np.zeros((2, 3)), [0, 3])
    Traceback (most recent call last):
    ...
    nnlib.exceptions.LabelError: y[1] = 3 is not a class label in [0, 3)
    """


class DTypeRangeError(ValueError):
    """A finite scalar parameter does not fit the working dtype: cast to it, it would
    become +-inf (e.g. a leaky_relu slope of 1e39 with float32 data).

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.functional import leaky_relu
    >>> leaky_relu(np.ones(2, np.float32), slope=1e39)
    Traceback (most recent call last):
    ...
    nnlib.exceptions.DTypeRangeError: slope=1e+39 is beyond the range of float32 ...
    >>> leaky_relu(np.ones(2, np.float64), slope=1e39)       # fits float64
    array([1., 1.])
    """


class ComplexDataError(DTypeError, ValueError):
    """Complex input: a DTypeError that is also a ValueError (as scikit-learn raises).

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib import MLPRegressor
    >>> MLPRegressor().fit(np.ones((2, 2)) + 1j, [0.0, 1.0])
    Traceback (most recent call last):
    ...
    nnlib.exceptions.ComplexDataError: Complex data not supported: X has dtype complex128
    """


class MixedLabelTypesError(LabelError, TypeError):
    """Class labels of kinds that do not compare in one object array: strings beside
    others (integers, floats, None), or None beside numbers: a LabelError that is also a
    TypeError, as scikit-learn's classifiers raise (NumPy's sort of the labels: ``'<'
    not supported between instances of 'int' and 'str'``). Other refused labels that
    compare (floats, bools, integers in an object array) raise a plain LabelError.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib import MLPClassifier
    >>> MLPClassifier().fit(np.eye(3), np.array(["a", 1, "b"], dtype=object))
    Traceback (most recent call last):
    ...
    nnlib.exceptions.MixedLabelTypesError: Unknown label type: MLPClassifier needs labels ...
    """


class BytesLabelError(LabelError, TypeError):
    """Class labels given as bytes (a ``|S`` array, or bytes in an object array): a
    LabelError that is also a TypeError, as scikit-learn's classifiers raise ("Support
    for labels represented as bytes is not supported"); decode them first.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib import MLPClassifier
    >>> MLPClassifier().fit(np.eye(2), np.array([b"no", b"yes"]))
    Traceback (most recent call last):
    ...
    nnlib.exceptions.BytesLabelError: Unknown label type: MLPClassifier cannot use labels ...
    """


class ConcurrentUseError(RuntimeError):
    """An object one running operation owns was used by another at the same time (two
    fits sharing one optimizer, or ``optimizer.step`` during a fit that uses it or trains
    its arrays with another optimizer).

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib import Dense, Sequential
    >>> from nnlib.callbacks import Callback
    >>> from nnlib.optim import SGD
    >>> model = Sequential([Dense(2, 2, random_state=0)])
    >>> opt = SGD(model.params, lr=0.1)
    >>> class StepsToo(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         opt.step([np.zeros_like(p) for p in model.params])
    >>> model.fit(np.eye(2), [0, 1], optimizer=opt, callbacks=[StepsToo()])
    Traceback (most recent call last):
    ...
    nnlib.exceptions.ConcurrentUseError: SGD.step: the optimizer is in use by a running fit ...
    """


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has a bad type or value (raised by fit, as scikit-learn's
    error of the same name; both a ValueError and a TypeError).

    Examples
    --------
    >>> from nnlib import MLPClassifier
    >>> MLPClassifier(hidden_layer_sizes=-1).fit([[0.0], [1.0]], [0, 1])
    Traceback (most recent call last):
    ...
    nnlib.exceptions.InvalidParameterError: The 'hidden_layer_sizes' parameter must be ...
    """



class ConvergenceWarning(UserWarning):
    """An iterative fit stopped at ``max_iter`` before meeting its tolerance.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from nnlib import MLPRegressor
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = MLPRegressor(max_iter=2, random_state=0).fit(np.eye(4), [0.0, 1.0, 0.0, 1.0])
    >>> [type(w.message).__name__ for w in caught]
    ['ConvergenceWarning']
    """


class DataConversionWarning(UserWarning):
    """Input was converted, e.g. a column-vector y raveled to 1-d.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from nnlib import MLPRegressor
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = MLPRegressor(max_iter=500, random_state=0).fit(np.eye(4),
    ...                                                        [[0.0], [1.0], [0.0], [1.0]])
    >>> [type(w.message).__name__ for w in caught]
    ['DataConversionWarning']
    """


class InconsistentVersionWarning(UserWarning):
    """An estimator, a ``Sequential`` model or an optimizer pickled by one nnlib version
    is unpickled by another (scikit-learn's warning of the same name, for nnlib's
    version): its attributes may not be what this version's methods expect.

    Attributes
    ----------
    estimator_name, current_nnlib_version, original_nnlib_version : str
        ``estimator_name`` is the class name of what was unpickled (``"Sequential"``,
        ``"Adam"``, ...), by scikit-learn's name for the field.

    Examples
    --------
    >>> import warnings
    >>> from nnlib import Perceptron
    >>> rebuild, args, state = Perceptron().__reduce_ex__(2)   # what pickle stores
    >>> state["_nnlib_version"] = "0.0.1"                      # as an older nnlib's
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     rebuild(*args).__setstate__(state)
    >>> caught[0].message.original_nnlib_version
    '0.0.1'
    """

    def __init__(self, *, estimator_name: str, current_nnlib_version: str,
                 original_nnlib_version: str) -> None:
        self.estimator_name = estimator_name
        self.current_nnlib_version = current_nnlib_version
        self.original_nnlib_version = original_nnlib_version
        super().__init__(str(self))

    def __reduce__(self):
        # keyword-only arguments: pickle's default (the class called with self.args)
        # could not rebuild it, e.g. raised as an error in a Dask or joblib worker
        return (_inconsistent_version_warning, (self.estimator_name,
                                                self.current_nnlib_version,
                                                self.original_nnlib_version))

    def __str__(self) -> str:
        return (f"Trying to unpickle estimator {self.estimator_name} from nnlib version "
                f"{self.original_nnlib_version} when using version "
                f"{self.current_nnlib_version}. This might lead to breaking code or "
                f"invalid results. Use at your own risk.")


def _inconsistent_version_warning(estimator_name, current, original):
    return InconsistentVersionWarning(estimator_name=estimator_name,
                                      current_nnlib_version=current,
                                      original_nnlib_version=original)


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit``.

    Examples
    --------
    >>> from nnlib import MLPClassifier
    >>> MLPClassifier().predict([[0.0, 1.0]])
    Traceback (most recent call last):
    ...
    nnlib.exceptions.NotFittedError: This MLPClassifier instance is not fitted yet. ...
    """


_sk_twins: dict = {}


def sklearn_compatible(cls: type) -> type:
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


def not_fitted(estimator: object) -> Exception:
    """The exception to raise when ``estimator`` is used before fit."""
    return sklearn_compatible(NotFittedError)(
        f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
        f"appropriate arguments before using this estimator.")
