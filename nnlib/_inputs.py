"""Checks for the (X, y) given to the models' fit/predict (nnlib.linear_models,
nnlib.threshold, nnlib.estimators).

The messages use scikit-learn's wording where its own test-suite looks for it
("Found array with 0 sample(s)", "X has 1 features, but ... is expecting 4", "Unknown
label type", "Complex data not supported"), so the estimators pass ``check_estimator``
without importing scikit-learn. Every error is a ValueError/TypeError subclass from
nnlib._validation.
"""
import numbers
import warnings

import numpy as np

from nnlib._validation import (DTypeError, LabelError, NonFiniteError, ShapeError,
                               check_csr, native_float_dtype, plain_array)
from nnlib.exceptions import (BytesLabelError, ComplexDataError, DataConversionWarning,
                              MixedLabelTypesError, sklearn_compatible)


def _is_sparse(x):
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def check_X(X, *, owner, n_features=None, dtype=None, name="X",
            accept_sparse=False) -> np.ndarray:
    """Return X as a finite, C-contiguous (n_samples, n_features) float array.

    float32/float64 are kept unless ``dtype`` is given; ints, bools and object arrays of
    numbers become float64. ``owner`` names the model in messages; ``n_features`` (the
    number seen in fit) is enforced when given. With ``accept_sparse`` a SciPy CSR or
    CSC matrix comes back as a checked CSR copy (``nnlib._validation.check_csr``: finite,
    float32/float64; other sparse formats raise TypeError naming ``.tocsr()``).
    """
    if _is_sparse(X):
        if not accept_sparse:
            raise TypeError(f"{owner} does not accept sparse input; convert {name} with "
                            f"{name}.toarray()")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ShapeError(f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} "
                             f"feature(s) (shape={X.shape}) while a minimum of 1 is "
                             f"required by {owner}.")
        if n_features is not None and X.shape[1] != n_features:
            raise ShapeError(f"X has {X.shape[1]} features, but {owner} is expecting "
                             f"{n_features} features as input.")
        return check_csr(X, dtype=dtype, name=name)[0]
    if X is None:
        raise ShapeError(f"{owner} requires {name} to be an array of shape "
                         f"(n_samples, n_features); got None")
    arr = plain_array(X, name)
    kind = arr.dtype.kind
    if kind == "c":
        raise ComplexDataError(f"Complex data not supported: {name} has dtype "
                               f"{arr.dtype}")
    if kind == "O":
        arr = arr.astype(np.float64)   # TypeError naming the bad element if not numeric
    elif kind in "USVMm":
        # datetime/timedelta too: NumPy would cast them to float64 seconds-since-epoch
        # without a word
        raise DTypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = (" Reshape your data either using X.reshape(-1, 1) if it has a single "
                "feature or X.reshape(1, -1) if it is a single sample.") \
            if arr.ndim == 1 else ""
        raise ShapeError(f"Expected 2D array for {name}, got {arr.ndim}D array of shape "
                         f"{arr.shape} instead.{hint}")
    if arr.shape[0] == 0:
        raise ShapeError(f"Found array with 0 sample(s) (shape={arr.shape}) while a "
                         f"minimum of 1 is required by {owner}.")
    if arr.shape[1] == 0:
        raise ShapeError(f"Found array with 0 feature(s) (shape={arr.shape}) while a "
                         f"minimum of 1 is required by {owner}.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ShapeError(f"X has {arr.shape[1]} features, but {owner} is expecting "
                         f"{n_features} features as input.")
    if dtype is not None:
        target = np.dtype(dtype)
    elif native_float_dtype(arr.dtype) is not None:
        target = native_float_dtype(arr.dtype)     # '>f4' stays float32, in native order
    else:
        target = np.dtype(np.float64)
    arr = np.ascontiguousarray(arr, dtype=target)
    check_all_finite(arr, name)
    return arr


def _all_finite(arr):
    """``np.isfinite(arr).all()``, through the compiled check for a C-contiguous 2-d
    float array: no boolean temporary as large as X."""
    if arr.ndim == 2 and arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous:
        from nnlib._kernels.train import all_finite
        return all_finite(arr)
    return bool(np.isfinite(arr).all())


def check_all_finite(arr, name):
    """Raise NonFiniteError naming the first row (and column) holding NaN or infinity."""
    if arr.dtype.kind != "f" or _all_finite(arr):
        return
    bad = ~np.isfinite(arr)
    if arr.ndim == 1:
        row, col = int(np.flatnonzero(bad)[0]), None
        val = arr[row]
    else:
        row = int(np.flatnonzero(bad.reshape(arr.shape[0], -1).any(axis=1))[0])
        col = int(np.flatnonzero(bad[row].ravel())[0])
        val = arr[row].ravel()[col]
    what = "NaN" if np.isnan(val) else "infinity"
    where = f"row {row}" + ("" if col is None else f", column {col}")
    raise NonFiniteError(f"Input {name} contains {what} ({val}) at {where}; {name} must "
                         f"be finite (drop or impute that row)")


def check_output_finite(out, *, owner, name="X") -> np.ndarray:
    """Return ``out``, a model's output for a finite ``name``; raise NonFiniteError naming
    the first row if it is not finite (the products overflowed: inputs such as 1e308 are
    too large for the weights). Predictions are never silently NaN or inf."""
    if np.isfinite(out).all():
        return out
    bad = ~np.isfinite(out)
    row = int(np.flatnonzero(bad.reshape(out.shape[0], -1).any(axis=1))[0])
    raise NonFiniteError(f"{owner}'s output for row {row} of {name} is not finite (it "
                         f"overflowed: the values of {name} are too large for the "
                         f"model's weights; scale {name}, e.g. standardize it)")


def check_y_shape(y, n_samples, *, owner, allow_2d=False, name="y") -> np.ndarray:
    """Return y as an array of n_samples rows; a column vector is raveled with a
    DataConversionWarning unless ``allow_2d``."""
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None")
    if _is_sparse(y):
        raise TypeError(f"{owner} does not accept a sparse {name}; convert it with "
                        f"{name}.toarray()")
    y = plain_array(y, name)
    if y.dtype.kind == "c":
        raise ComplexDataError(f"Complex data not supported: {name} has dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1 and not allow_2d:
        warnings.warn("A column-vector y was passed when a 1d array was expected. "
                      "Please change the shape of y to (n_samples,), for example using "
                      "ravel().", sklearn_compatible(DataConversionWarning),
                      stacklevel=3)
        y = y.ravel()
    if y.ndim == 0 or y.ndim > (2 if allow_2d else 1):
        raise ShapeError(f"y should be a 1d array{' or 2d' if allow_2d else ''}; got "
                         f"an array of shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ShapeError(f"X and y have inconsistent numbers of samples: {n_samples} "
                         f"and {y.shape[0]}")
    return y


def class_labels(y, *, owner, as_unique_labels=False):
    """Check ``y`` (already 1-d) holds class labels and return ``(classes, y_index)``:
    the sorted distinct labels and each sample's index into them (int64).

    Floats must be integral (a continuous target raises "Unknown label type:
    continuous"); NaN/inf raise; strings and other hashables are fine. ``classes`` has
    the dtype of ``np.unique(y)`` (scikit-learn's LabelEncoder, as its
    LogisticRegression), or with ``as_unique_labels`` that of scikit-learn's
    ``unique_labels`` (its LabelBinarizer, as its MLPClassifier and Perceptron): an
    object array of strings or integers gives a string or integer array, and strings
    are as wide as the longest label.
    """
    if y.dtype.kind == "f":
        check_all_finite(y, "y")
        if np.any(y != np.round(y)):
            raise LabelError(f"Unknown label type: continuous. {owner} is a classifier "
                             f"and needs class labels; y holds non-integer values such "
                             f"as {y[np.flatnonzero(y != np.round(y))[0]]!r} (use a "
                             f"regressor for a continuous target)")
    elif y.dtype.kind == "O":
        one_kind = _labels_of_one_kind(y, owner)
        if as_unique_labels:
            y = one_kind
    elif y.dtype.kind == "S":
        raise _bytes_labels(owner)
    elif y.dtype.kind not in "biuU":
        raise LabelError(f"Unknown label type: {owner} cannot use labels of dtype "
                         f"{y.dtype}")
    counted = _counted_labels(y)
    if counted is not None:
        return counted
    classes, y_index = np.unique(y, return_inverse=True)
    if as_unique_labels and classes.dtype.kind == "U" and classes.size:
        # scikit-learn's classes_ is np.asarray(sorted(set(y))): as wide as the longest
        # label, not as y's dtype (<U1 from a <U5 y; predict returns it too)
        classes = np.asarray(classes.tolist())
    return classes, y_index.astype(np.int64).reshape(-1)


def _labels_of_one_kind(y, owner):
    """An object array of labels as scikit-learn's classifiers read it (its
    ``type_of_target``): all strings become a string array (``np.asarray`` of the
    values, so classes_ and predict have scikit-learn's dtype, not object). Anything
    else is refused as scikit-learn's MLPClassifier refuses it: values that do not
    compare (strings beside others, None beside numbers) as MixedLabelTypesError, bytes
    as BytesLabelError, both TypeErrors (its sort of them, its bytes check); others
    alone -- integers, floats, bools -- as a LabelError, a ValueError ("Unknown label
    type": an object array whose first value is no string). (Its LogisticRegression
    checks the type before it sorts: a ValueError for None or bytes beside integers.)"""
    values = y.tolist()
    strings = [isinstance(v, str) for v in values]
    if all(strings):
        return np.asarray(values).reshape(y.shape) if values else y
    kinds = sorted({type(v).__name__ for v in values})
    if any(strings):
        raise MixedLabelTypesError(f"Unknown label type: {owner} needs labels of one kind "
                                   f"that compare; got the types {kinds}")
    if any(isinstance(v, bytes) for v in values):
        raise _bytes_labels(owner)
    if not _comparable(values):
        raise MixedLabelTypesError(f"Unknown label type: {owner} needs labels of one kind "
                                   f"that compare; got the types {kinds}")
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise LabelError(f"Unknown label type: {owner} cannot use an object array of "
                         f"integers (as scikit-learn's classifiers cannot): pass them "
                         f"as an integer array, y.astype(np.int64)")
    raise LabelError(f"Unknown label type: {owner} needs labels of one kind (integers "
                     f"in an integer array, or strings); got the types {kinds}")


def _comparable(values):
    """Whether the labels sort, as NumPy's unique sorts them (None beside a number, or
    an unhashable value, does not)."""
    try:
        sorted(set(values))
    except TypeError:
        return False
    return True


def _bytes_labels(owner):
    return BytesLabelError(f"Unknown label type: {owner} cannot use labels represented "
                           f"as bytes (nor can scikit-learn's classifiers): decode "
                           f"them, e.g. y.astype(str)")


# Widest value range (max - min + 1) of integer labels that ``class_labels`` counts
# instead of sorting: the counts array is this many int64 at most, and past a few times
# the sample count counting reads more memory than the sort it replaces.
COUNTED_LABELS_MAX_RANGE = 1 << 16


def _counted_labels(y):
    """``np.unique(y, return_inverse=True)`` (index as int64) of integer labels spread
    over at most ``COUNTED_LABELS_MAX_RANGE`` values and ``4 len(y) + 64``, from one
    count of each value: no sort, which is most of a classifier's label handling (20000
    labels: 1.9 ms sorted, 0.06 ms counted). None for other labels."""
    if y.dtype.kind not in "iu" or y.size == 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    if hi - lo >= min(COUNTED_LABELS_MAX_RANGE, 4 * y.size + 64):
        return None
    # shifted to [0, hi - lo] in int64 (the range is small) and back: unsigned labels
    # add and subtract lo in their own dtype (nothing passes 0 or hi there; a uint64
    # over 2^63 does not fit int64), signed ones in int64 (a narrow dtype would wrap:
    # int8 127 - -128)
    unsigned = y.dtype.kind == "u"
    if unsigned:
        shifted = (y - y.dtype.type(lo)).astype(np.int64)
    else:
        shifted = y.astype(np.int64) - lo
    present = np.bincount(shifted, minlength=hi - lo + 1) > 0
    values = np.flatnonzero(present)
    # astype last in both: the sum comes out in native byte order, np.unique keeps y's
    classes = ((values.astype(y.dtype) + y.dtype.type(lo)).astype(y.dtype, copy=False)
               if unsigned else (values + lo).astype(y.dtype))
    rank = np.cumsum(present, dtype=np.int64) - 1        # each value's index in classes
    return classes, rank[shifted].reshape(-1)


def labels_to_index(y, classes, *, owner):
    """Map labels y to their index in ``classes`` (sorted); unseen labels raise
    LabelError listing them."""
    if y.dtype.kind == "O" and classes.dtype.kind != "O":
        y = _labels_of_one_kind(y, owner)       # as fit reads them
    try:
        idx = np.searchsorted(classes, y)
    except TypeError:       # labels of another kind than the (object) classes: 'a' vs 1
        known = set(classes.tolist())
        new = sorted({v for v in np.asarray(y).ravel().tolist() if v not in known}, key=str)
        raise _unseen_labels(new, classes, owner) from None
    idx = np.clip(idx, 0, classes.size - 1)
    unseen = classes[idx] != y
    if np.any(unseen):
        raise _unseen_labels(np.unique(np.asarray(y)[unseen]).tolist(), classes, owner)
    return idx.astype(np.int64)


def _unseen_labels(new, classes, owner):
    return LabelError(f"y contains labels {new[:10]} not among the classes {owner} was "
                      f"fitted on ({classes[:10].tolist()}"
                      f"{', ...' if classes.size > 10 else ''})")


def check_float_target(y, *, owner, dtype=np.float64) -> np.ndarray:
    """A regression target: finite numbers, as ``dtype``."""
    if y.dtype.kind in "USO":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise DTypeError(f"{owner} needs a numeric target y; got dtype "
                             f"{y.dtype}") from None
    elif y.dtype.kind in "Mm":
        raise DTypeError(f"{owner} needs a numeric target y; got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=dtype)
    check_all_finite(y, "y")
    return y


def feature_names(X):
    """The column names of a data frame X (pandas, polars: anything with ``columns``)
    as an object array when they are all strings, else None -- scikit-learn's
    ``_get_feature_names``, with its TypeError for a mix of string and other names."""
    if isinstance(X, np.ndarray) or not hasattr(X, "columns") or not hasattr(X, "shape"):
        return None
    names = np.asarray(list(X.columns), dtype=object)
    if names.size == 0:
        return None
    types = sorted(t.__qualname__ for t in set(type(v) for v in names))
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but your input has {types} as feature name / column name types. "
            "If you want feature names to be stored and validated, you must convert "
            "them all to strings, by using X.columns = X.columns.astype(str) for "
            "example. Otherwise you can remove feature / column names from your input "
            "data, or convert them all to a non-string data type.")
    return names if types == ["str"] else None


def _listed(names, limit=5):
    shown = [f"- {name}\n" for name in names[:limit]]
    return "".join(shown) + ("- ...\n" if len(names) > limit else "")


def check_feature_names(model, X, *, reset):
    """scikit-learn's ``_check_feature_names``: with ``reset`` (fit, the first
    partial_fit) set or delete ``model.feature_names_in_`` from X's column names;
    otherwise warn when only one side has names and raise ValueError, with its message,
    when the names differ or come in another order (the columns would be silently
    misread)."""
    X_names = feature_names(X)
    if reset:
        if X_names is not None:
            model.feature_names_in_ = X_names
        elif "feature_names_in_" in vars(model):
            del model.feature_names_in_
        return
    fitted = getattr(model, "feature_names_in_", None)
    owner = type(model).__name__
    if fitted is None and X_names is None:
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {owner} was fitted without feature "
                      f"names", UserWarning, stacklevel=4)
        return
    if X_names is None:
        warnings.warn(f"X does not have valid feature names, but {owner} was fitted with "
                      f"feature names", UserWarning, stacklevel=4)
        return
    if len(fitted) == len(X_names) and not np.any(fitted != X_names):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unexpected = sorted(set(X_names) - set(fitted))
    missing = sorted(set(fitted) - set(X_names))
    if unexpected:
        message += "Feature names unseen at fit time:\n" + _listed(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + _listed(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
