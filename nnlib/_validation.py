"""Input checks shared by every public entry point (layer 3 of each kernel).

Errors are :class:`ValueError` / :class:`TypeError` subclasses whose messages say what was
expected and what was given, so bad input never reaches a compiled loop that runs with
bounds checks off.
"""
import functools
import math
import numbers
import sys

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


# The exception classes live in nnlib.exceptions; they are imported here because every
# check below raises them (and older imports name this module).
from nnlib.exceptions import (DTypeError, DTypeRangeError, LabelError,  # noqa: E402,F401
                              NonFiniteError, ShapeError)


def plain_array(x, name):
    """``np.asarray(x)`` for data a user gives (X, y, sample_weight), after
    :func:`refuse_masked`; a pandas data frame or series of nullable numbers (``Float64``,
    ``Int64``, ``boolean``: extension dtypes, of which ``np.asarray`` makes an object array
    holding ``pd.NA``) becomes float64 with NaN for ``pd.NA``, as scikit-learn's
    ``check_array`` converts it, so the checks that follow name a missing value as NaN
    (pandas itself is not imported). Beside an object or category column the frame
    becomes an object array, with NaN for pd.NA."""
    refuse_masked(x, name)
    dtypes = getattr(x, "dtypes", None)
    if dtypes is not None and hasattr(x, "to_numpy"):
        # a series' dtypes is one dtype, a frame's a series of them
        dtypes = dtypes.tolist() if hasattr(dtypes, "tolist") else [dtypes]
        nullable = [not isinstance(d, np.dtype) and getattr(d, "kind", "O") in "biuf"
                    for d in dtypes]
        if any(nullable):
            if all(isinstance(d, np.dtype) and d.kind in "biuf" or is_nullable
                   for d, is_nullable in zip(dtypes, nullable)):
                return x.to_numpy(dtype=np.float64, na_value=np.nan)
            # beside an object or category column: an object array, whose pd.NA would
            # reach float() ("not 'NAType'") where scikit-learn names a NaN
            return x.to_numpy(na_value=np.nan)
    return np.asarray(x)


def refuse_masked(x, name):
    """Raise ValueError if ``x`` is a ``numpy.ma`` masked array with masked entries:
    ``np.asarray`` drops the mask, and the values under it would be used as data
    (scikit-learn's ``check_array`` drops it too, silently). One with nothing masked is
    its data. ``np.ma`` loads on first use (~10 ms) and no object is a masked array
    before its class exists, so the test looks for the class rather than loading the
    module (in numpy.ma.core: another thread may be part way through importing numpy.ma,
    which then lacks the name)."""
    core = sys.modules.get("numpy.ma.core")
    cls = getattr(core, "MaskedArray", None)
    if cls is None or not isinstance(x, cls):
        return
    mask = core.getmaskarray(x)
    if not mask.any():
        return
    first = [int(i) for i in np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape)]
    where = str(first[0]) if len(first) == 1 else str(tuple(first))
    raise ValueError(
        f"{name} is a numpy.ma masked array with {int(mask.sum())} masked value(s) "
        f"(the first at index {where}); nnlib does not use masks, and would use the "
        f"values under them as data: fill them ({name}.filled(value)), drop their rows "
        f"(np.ma.compress_rows({name})), or pass {name}.data to use those values")


def as_float_array(x, name="x", dtype=None, ndim=None, min_ndim=None,
                   allow_empty=True) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 or float64 array.

    float32 and float64 are kept as given (``dtype=None``; a non-native byte order such
    as ``'>f8'`` becomes the native order, same precision); bool and integer input becomes
    float64; complex, object, string and other dtypes raise :class:`DTypeError`. A
    non-contiguous or Fortran-ordered array is copied; a C-contiguous one (read-only
    included) is returned as is, never written to.
    """
    if (type(x) is np.ndarray and dtype is not None and min_ndim is None and allow_empty
            and (ndim is None or x.ndim == ndim) and x.dtype.kind == "f"
            and x.dtype == dtype and x.flags.c_contiguous):
        return x        # what the slow path returns for it (np.asarray keeps it), sooner
    if type(x).__module__.startswith("scipy.sparse"):
        # np.asarray would make it a 0-d object array, refused as "dtype object"
        raise TypeError(f"{name} is a SciPy sparse matrix ({type(x).__name__}), but "
                        f"dense data is required here: pass {name}.toarray(), or train "
                        f"through nnlib.MLPClassifier / MLPRegressor, which take CSR "
                        f"input")
    arr = plain_array(x, name)
    kind = arr.dtype.kind
    if kind == "f" and native_float_dtype(arr.dtype) is not None:
        target = native_float_dtype(arr.dtype)    # big-endian '>f8' becomes native f8
    elif kind == "f":  # float16, longdouble
        target = np.dtype(np.float64) if arr.dtype.itemsize > 8 else np.dtype(np.float32)
    elif kind in "biu":
        target = np.dtype(np.float64)
    else:
        raise DTypeError(f"{name} must be a real float32 or float64 array; got dtype "
                         f"{arr.dtype} ({_kind_name(kind)})")
    if dtype is not None:
        target = np.dtype(dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-dimensional; got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ShapeError(f"{name} must have at least {min_ndim} dimension(s); got shape "
                         f"{arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ShapeError(f"{name} must not be empty; got shape {arr.shape}")
    # np.asarray(order='C'), not np.ascontiguousarray: the latter turns a 0-d array into
    # shape (1,), and F.relu(np.float64(3)) must stay 0-d.
    return np.asarray(arr, dtype=target, order="C")


def as_float_rows(x, name="x") -> np.ndarray:
    """``x`` as by :func:`as_float_array`, with at least one dimension and at least one
    entry on its last axis: the rows of ``x.reshape(-1, x.shape[-1])`` a row-wise kernel
    (output map, dropout) walks."""
    x = as_float_array(x, name, min_ndim=1)
    if x.shape[-1] == 0:
        raise ShapeError(f"{name} must have at least one entry on its last axis; got "
                         f"shape {x.shape}")
    return x


def native_float_dtype(dtype):
    """The native-byte-order float32/float64 dtype of ``dtype`` (``'>f8'`` gives
    float64), or None if ``dtype`` is not a float32/float64 of either byte order.

    ``np.dtype('>f8') == np.float64`` is False on a little-endian machine, so a test such
    as ``dtype in (np.float32, np.float64)`` sends big-endian data down the wrong path."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return np.dtype(np.float32 if dtype.itemsize == 4 else np.float64)
    return None


def _kind_name(kind):
    return {"c": "complex", "O": "object", "U": "string", "S": "bytes", "V": "void",
            "M": "datetime", "m": "timedelta"}.get(kind, "unsupported")


def same_float_dtype(name_a, a, name_b, b):
    """Raise DTypeError unless float arrays ``a`` and ``b`` share a dtype."""
    if a.dtype != b.dtype:
        raise DTypeError(f"{name_a} and {name_b} must have the same dtype; got {a.dtype} "
                         f"and {b.dtype} (convert one with .astype())")


def check_same_shape(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ShapeError(f"{name_a} and {name_b} must have the same shape; got {a.shape} "
                         f"and {b.shape}")


def check_finite(x, name="X"):
    """Raise NonFiniteError naming the first row of ``x`` that holds NaN or +-inf."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or np.isfinite(x).all():
        return
    bad = ~np.isfinite(x)
    if x.ndim >= 2:
        row = int(np.flatnonzero(bad.reshape(x.shape[0], -1).any(axis=1))[0])
        val = x[row][bad[row]].flat[0]
        raise NonFiniteError(f"{name} must be finite; row {row} holds {val}")
    idx = int(np.flatnonzero(bad.ravel())[0])
    raise NonFiniteError(f"{name} must be finite; element {idx} is {x.ravel()[idx]}")


def check_real_scalar(value, name, *, low=None, high=None, low_open=False,
                      high_open=False) -> float:
    """Return ``value`` as a float, checking it is a finite real in the given range."""
    # a plain float or int (the common case) skips the slower ABC check
    if type(value) is not float and type(value) is not int and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number; got {value!r} "
                        f"({type(value).__name__})")
    try:
        v = float(value)
    except OverflowError:                 # an int beyond the float range
        raise ValueError(f"{name} must be finite; got an integer of "
                         f"{len(str(abs(math.trunc(value))))} digits") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite; got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}; got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}; got {v}")
    return v


def check_bool(value, name) -> bool:
    """Return ``value`` as a bool; only True/False (Python or NumPy) are accepted, so a
    string such as "no" is not silently taken as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r} "
                        f"({type(value).__name__})")
    return bool(value)


def check_fits_dtype(value, name, dtype):
    """Return ``value`` if its magnitude is at most the largest finite value of ``dtype``,
    else raise :class:`DTypeRangeError` naming the parameter, its value and that maximum.

    The compiled kernels cast some scalar parameters to the array dtype; one beyond the
    dtype's range would silently become inf there (and 0 * inf = NaN)."""
    dtype, big = _dtype_max(dtype)
    if abs(value) > big:
        raise DTypeRangeError(f"{name}={value!r} is beyond the range of {dtype.name} "
                              f"(max {big:.7g}): it would become inf in the {dtype.name} "
                              f"kernels; use a smaller value or float64 data")
    return value


@functools.lru_cache(maxsize=None)
def _dtype_max(dtype):
    """(np.dtype(dtype), its largest finite value as a float), looked up once per dtype."""
    dtype = np.dtype(dtype)
    return dtype, float(np.finfo(dtype).max)


def check_int_scalar(value, name, *, low=None) -> int:
    if type(value) is not int and (                 # bool is not type int
            isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer; got {value!r} "
                        f"({type(value).__name__})")
    v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}; got {v}")
    return v


def check_buffer(a, name, dtype, shape, writeable=False):
    """``a`` must be a C-contiguous ndarray of ``dtype`` and ``shape`` (and writeable):
    what the compiled training loop reads and writes through a raw pointer (TypeError
    for the type or dtype, ValueError for the rest). Returns ``a``."""
    if type(a) is np.ndarray and a.dtype is dtype and a.shape == tuple(shape):
        flags = a.flags             # the common case: ``dtype`` is the array's own
        if flags.c_contiguous and (flags.writeable or not writeable):
            return a
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array; got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}; expected {np.dtype(dtype)}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}; expected {tuple(shape)}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return a


def check_epoch_data(sizes, weights, biases, X, y_target, y_label, label_loss):
    """The arrays of a training epoch (``EpochSetup``, compiled and twin): X (N, sizes[0])
    float32 or float64; L weights and biases of its dtype, writeable; targets
    ``y_target`` (N, c), or (N, 0) and int64 labels in [0, c) for a class-label loss
    (else ``y_label`` is any 1-d int64 array of length >= 1). Returns (dtype, N)."""
    L = len(sizes) - 1
    dt, N = _check_inputs(sizes, X)
    if len(weights) != L or len(biases) != L:
        raise ValueError(f"the network has {L} layers; got {len(weights)} weights and "
                         f"{len(biases)} biases")
    for l in range(L):
        check_buffer(weights[l], f"weights[{l}]", dt, (sizes[l], sizes[l + 1]), True)
        check_buffer(biases[l], f"biases[{l}]", dt, (sizes[l + 1],), True)
    check_targets(sizes, N, dt, y_target, y_label, label_loss)
    return dt, N


def check_data(sizes, X, y_target, y_label, label_loss):
    """The data part of :func:`check_epoch_data` (``EpochSetup.set_data``): X, the
    targets and the labels for a network of ``sizes``. Returns (dtype, N)."""
    dt, N = _check_inputs(sizes, X)
    check_targets(sizes, N, dt, y_target, y_label, label_loss)
    return dt, N


def _check_inputs(sizes, X):
    """X (N, sizes[0]), float32 or float64, C-contiguous (or a SciPy CSR matrix of such
    values, whose arrays ``check_csr`` checks); returns (dtype, N)."""
    if type(X) is not np.ndarray and is_sparse(X):
        if X.format != "csr" or X.dtype not in (np.float32, np.float64):
            raise TypeError(f"a sparse X must be CSR of float32 or float64; got "
                            f"{X.format} {X.dtype}")
        if X.shape[1] != sizes[0]:
            raise ValueError(f"X has shape {X.shape}; expected (N, {sizes[0]})")
        return X.dtype, X.shape[0]
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise ValueError("X must be a 2-d NumPy array")
    dt, N = X.dtype, X.shape[0]
    if dt is not _FLOAT32 and dt is not _FLOAT64 and dt not in (np.float32, np.float64):
        raise TypeError(f"X must be float32 or float64; got {dt}")
    check_buffer(X, "X", dt, (N, sizes[0]))
    return dt, N


def check_targets(sizes, N, dt, y_target, y_label, label_loss):
    """``y_target`` (N, c) of dtype ``dt``, or (N, 0) and int64 labels in [0, c) for a
    class-label loss (else ``y_label`` is a 1-d int64 array, of length >= 1 when N is)."""
    c = sizes[-1]
    check_buffer(y_target, "y_target", dt, (N, 0 if label_loss else c))
    if label_loss:
        check_buffer(y_label, "y_label", _INT64, (N,))
        # one compiled pass (as check_class_labels); min and max only name the range
        if _train().first_label_outside(y_label, c) >= 0:
            raise ValueError(f"y_label must hold class indices in [0, {c}); got "
                             f"{int(y_label.min())}..{int(y_label.max())}")
    else:
        if not (isinstance(y_label, np.ndarray) and y_label.ndim == 1
                and (y_label.shape[0] >= 1 or N == 0)):
            raise ValueError("y_label must be a 1-d int64 array of length >= 1")
        check_buffer(y_label, "y_label", _INT64, y_label.shape)


_FLOAT32, _FLOAT64, _INT64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
_TRAIN = []


def _train():
    """The compiled training module (its label check), imported on first use: ``import
    nnlib`` stays light."""
    if not _TRAIN:
        from nnlib._kernels import train
        _TRAIN.append(train)
    return _TRAIN[0]


def check_workspace_args(sizes, rows, n_target_cols, dtype):
    """The arguments of a training ``Workspace`` (compiled and twin): >= 2 widths >= 1,
    rows >= 1, n_target_cols >= 0, float32 or float64. Returns (sizes tuple, dtype)."""
    sizes = tuple(int(v) for v in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be >= 2 widths >= 1; got {list(sizes)}")
    if rows < 1 or n_target_cols < 0:
        raise ValueError(f"rows must be >= 1 and n_target_cols >= 0; got {rows}, "
                         f"{n_target_cols}")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    return sizes, dt


def check_sample_weight(sample_weight, n_samples, dtype,
                        zero_error=ValueError) -> np.ndarray:
    """Return per-row weights as a new C-contiguous ``(n_samples,)`` array of ``dtype``.

    The messages are scikit-learn's (``sklearn.utils.validation._check_sample_weight``
    and ``check_non_negative``), so code written against it sees the same errors: a
    scalar is broadcast to every row; a 2-d array, a wrong length, NaN or infinity, a
    negative weight or all weights zero raise, and so does a bool (scikit-learn takes
    True as the weight 1; here it is named, as a flag given in the weights' place). The result is always a copy: a compiled
    loop reads it with the GIL released, so no caller can change it under the loop.
    (scikit-learn's MLP accepts negative weights; nnlib refuses them, since a weight sum
    of zero or below has no weighted mean.) ``zero_error`` is the class raised for
    weights that are all 0 (``score`` raises one that is also a ZeroDivisionError).
    """
    dtype = np.dtype(dtype)
    if isinstance(sample_weight, (bool, np.bool_)):
        # a flag given for the weights (sample_weight=True): NumPy would see a 0-d
        # array, and the message would speak of its dimensions
        raise DTypeError(f"sample_weight must be array_like of numbers or a number, got "
                         f"bool ({sample_weight!r})")
    if isinstance(sample_weight, numbers.Number):
        w = np.full(n_samples, sample_weight, dtype=dtype)
    else:
        arr = plain_array(sample_weight, "sample_weight")
        if arr.dtype.kind == "c":
            raise DTypeError(f"Complex data not supported: sample_weight has dtype "
                             f"{arr.dtype}")
        if arr.dtype.kind not in "biuf":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise DTypeError(f"sample_weight must hold numbers; got dtype "
                                 f"{arr.dtype}") from None
        if arr.ndim != 1:
            raise ShapeError(f"Sample weights must be 1D array or scalar, got "
                             f"{arr.ndim}D array. Expected either a scalar value or a 1D "
                             f"array of length {n_samples}.")
        if arr.shape != (n_samples,):
            raise ShapeError(f"sample_weight.shape == {arr.shape}, expected "
                             f"{(n_samples,)}!")
        w = np.array(arr, dtype=dtype, order="C", copy=True)
    finite = np.isfinite(w)
    if not finite.all():
        what = "NaN" if np.isnan(w).any() else \
            f"infinity or a value too large for {w.dtype!r}"
        raise NonFiniteError(f"Input sample_weight contains {what}.")
    if (w == 0).all():
        raise zero_error("Sample weights must contain at least one non-zero number.")
    if (w < 0).any():
        raise ValueError("Negative values in data passed to `sample_weight`.")
    return w


def check_batch_weights(sw, rows):
    """Raise if the weights ``sw[rows]`` of one batch have no weighted mean in float64:
    scikit-learn's ZeroDivisionError (from ``np.average``) when they are all 0 (the mean
    is 0 / 0), a ValueError when their sum or its reciprocal leaves float64's range
    (weights near 1e308, or all below ~1e-308; the mean does not depend on their
    scale). The compiled epoch reports such a batch as a non-finite loss or gradient."""
    if not rows.size:
        return
    w = sw[rows]
    if not w.any():
        raise ZeroDivisionError(f"Weights sum to zero, can't be normalized: every row of "
                                f"a batch of {rows.size} has sample_weight 0 (use larger "
                                f"batches, or shuffle=True, or drop those rows)")
    check_weight_total(w, f"the sample weights of a batch of {rows.size} rows")


def check_weight_total(w, what="the sample weights"):
    """Raise a ValueError if the float64 sum of the weights ``w`` (finite, >= 0, not all
    0) or its reciprocal leaves float64's range; the sum is taken without a NumPy
    warning (weights near 1e308 are legal: only a weighted mean over them may not be)."""
    with np.errstate(over="ignore", divide="ignore"):
        total = float(np.sum(w, dtype=np.float64))
        inverse = 1.0 / total
    if not (np.isfinite(total) and np.isfinite(inverse)):
        raise ValueError(f"{what} sum to {total!r}, whose weighted mean leaves float64's "
                         f"range: scale sample_weight (e.g. divide it by its mean; the "
                         f"weighted mean does not depend on its scale)")


def unit_scaled_weights(w):
    """The weights ``w`` (array-like, or None: None) as float64 times the power of two
    that brings their largest |value| into [0.5, 1): a weighted mean does not depend on
    the weights' scale, and after this their sum and their products with finite values
    of moderate size stay in float64's range (weights near 1e308 sum to inf, and
    inf / inf is NaN; subnormal ones lose digits). A power of two scales every normal
    weight exactly, so a mean whose sums did not overflow keeps its bits. Weights that
    are all 0 or not all finite are returned unscaled (the caller's checks see them)."""
    if w is None:
        return None
    w = np.asarray(w, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        top = float(np.max(np.abs(w))) if w.size else 0.0
    if top == 0.0 or not math.isfinite(top):
        return w
    return np.ldexp(w, -math.frexp(top)[1])


def is_sparse(X):
    """A SciPy sparse matrix or array (duck-typed: SciPy is never imported here)."""
    if type(X) is np.ndarray:       # the common case, without three failed look-ups
        return False
    return hasattr(X, "tocsr") and hasattr(X, "nnz") and hasattr(X, "format")


def check_csr(X, n_features=None, dtype=None, name="X"):
    """``(X_csr, indptr, indices, data)``: a SciPy CSR or CSC matrix as CSR arrays the
    compiled loops may trust, every one a fresh copy (int64 indptr and indices, data
    in ``dtype``, float32/float64 kept when None). Checks: the format (CSR or CSC; any
    other raises TypeError naming ``.tocsr()``), ``n_features`` columns, finite values
    (scikit-learn's "Input X contains NaN" ValueError), and the index structure
    (indptr non-decreasing from 0 to nnz, indices in [0, n_features)) that the compiled
    products index with. CSC is converted to CSR (a sparse copy, never a dense one)."""
    if not is_sparse(X):
        raise TypeError(f"{name} must be a SciPy sparse matrix; got {type(X).__name__}")
    if X.format not in ("csr", "csc"):
        raise TypeError(f"{name} is a sparse matrix in {X.format!r} format; nnlib takes "
                        f"CSR or CSC: convert it with {name}.tocsr()")
    if len(X.shape) != 2:
        raise ShapeError(f"{name} must be 2-d; got shape {X.shape}")
    n, d = X.shape
    if n_features is not None and d != n_features:
        raise ShapeError(f"X has {d} features, but the model is expecting {n_features} "
                         f"features as input.")
    if dtype is None:
        dtype = native_float_dtype(X.dtype) or np.dtype(np.float64)
    if X.dtype.kind == "c":
        raise DTypeError(f"Complex data not supported: {name} has dtype {X.dtype}")
    if X.dtype.kind not in "biuf":
        raise DTypeError(f"{name} must hold numbers; got dtype {X.dtype}")
    data = np.array(X.data, dtype=dtype, copy=True)
    indptr = np.array(X.indptr, dtype=np.int64, copy=True)
    indices = np.array(X.indices, dtype=np.int64, copy=True)
    if not np.isfinite(data).all():
        what = "NaN" if np.isnan(data).any() else "infinity or a value too large for " \
            f"{data.dtype!r}"
        raise NonFiniteError(f"Input {name} contains {what}.")
    # checked in the matrix's own format: SciPy's CSC-to-CSR conversion indexes with the
    # CSC structure unchecked (a lying indptr or row index writes out of bounds)
    major, minor = (n, d) if X.format == "csr" else (d, n)
    _check_compressed(indptr, indices, data.shape[0], major, minor, name, X.format)
    X = type(X)((data, indices, indptr), shape=(n, d))
    if X.format == "csc":
        X = X.tocsr()
        data = X.data
        indptr = np.array(X.indptr, dtype=np.int64, copy=True)
        indices = np.array(X.indices, dtype=np.int64, copy=True)
    return X, indptr, indices, data


def _check_compressed(indptr, indices, nnz, major, minor, name, fmt):
    """Raise ValueError unless ``indptr`` rises from 0 to ``nnz`` over ``major`` + 1
    entries and the ``nnz`` ``indices`` lie in [0, ``minor``): the structure the
    compiled products (and SciPy's conversions) index with."""
    if (indptr.shape != (major + 1,) or indptr[0] != 0 or indptr[-1] != nnz
            or np.any(np.diff(indptr) < 0) or indices.shape != (nnz,)
            or (nnz and (indices.min() < 0 or indices.max() >= minor))):
        raise ValueError(f"{name} is not a valid {fmt.upper()} matrix: its indptr must "
                         f"rise from 0 to nnz = {nnz} and its indices lie in [0, {minor})")
