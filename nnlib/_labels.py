"""Checking and converting targets for the losses (and anything else that takes labels).

Class labels become an int64 vector in ``[0, n_classes)``; binary labels a float vector in
{0, 1}. Integer, bool and integral float input is accepted; anything else raises
:class:`~nnlib._validation.LabelError` naming the first bad index and value, so invalid
labels never reach a compiled loop (which indexes with them, bounds checks off).
"""
import numpy as np

from nnlib._kernels.aligned import binary_labels_copy, class_labels_copy
from nnlib._validation import DTypeError, LabelError, ShapeError, _kind_name, plain_array

# nnlib._kernels.train's, imported at the first check of int64 labels (not with this
# module, which the model imports before any training); an import statement at each
# call costs about 1 us
_first_label_outside = None


def _numeric(y, name):
    arr = plain_array(y, name)
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"{name} must hold numeric labels; got dtype {arr.dtype} "
                         f"({_kind_name(arr.dtype.kind)})")
    return arr


def _first_bad(arr, bad, name, what):
    i = int(np.flatnonzero(bad)[0])
    raise LabelError(f"{name}[{i}] = {arr[i].item()!r} is not {what}")


def check_class_labels(y, n_samples, n_classes, name="y"):
    """Return ``y`` as a C-contiguous int64 array of shape ``(n_samples,)``.

    Parameters
    ----------
    y : array_like, shape (n_samples,)
        Class indices: integers (or bools, or floats with integral values) in
        ``[0, n_classes)``.
    n_samples, n_classes : int
        Rows and columns of the score matrix the labels go with.

    Raises
    ------
    DTypeError
        ``y`` is not numeric (strings, objects, complex).
    ShapeError
        ``y`` is not 1-d of length ``n_samples`` (a one-hot matrix included).
    LabelError
        A label is non-integral, NaN or outside ``[0, n_classes)``; the message names the
        first such index and value.
    """
    # The compiled losses index with these labels, GIL released: they get an array of
    # their own, and the checks run on that same copy, so a caller (another thread, a
    # callback) that changes y afterwards cannot make them read out of bounds.
    arr = class_labels_copy(y, n_samples, n_classes)   # the common case: copied, checked
    if arr is not None:
        return arr
    # anything else (a list, a byte-swapped array, a bad label): the checks below, which
    # name what is wrong
    arr = _numeric(y, name)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        hint = (" (pass class indices, e.g. y.argmax(axis=1), not one-hot rows)"
                if arr.ndim == 2 and arr.shape == (n_samples, n_classes) else "")
        raise ShapeError(f"{name} must have shape ({n_samples},), one class index per "
                         f"row of z; got shape {arr.shape}{hint}")
    arr = np.array(arr, copy=True)
    if arr.dtype == np.int64:                   # one compiled pass
        global _first_label_outside
        if _first_label_outside is None:
            from nnlib._kernels.train import first_label_outside as _first_label_outside
        i = _first_label_outside(arr, n_classes)
        if i >= 0:
            raise LabelError(f"{name}[{i}] = {arr[i].item()!r} is not a class label in "
                             f"[0, {n_classes})")
        return arr
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(arr) & (arr == np.floor(arr)))
        if bad.any():
            _first_bad(arr, bad, name, "an integer class label")
    # two reductions find out; the mask that names the first bad label is built only
    # when there is one
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        _first_bad(arr, (arr < 0) | (arr >= n_classes), name,
                   f"a class label in [0, {n_classes})")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_binary_labels(y, n_samples, dtype, name="y"):
    """Return ``y`` as a C-contiguous array of ``dtype`` and shape ``(n_samples,)``.

    Parameters
    ----------
    y : array_like, shape (n_samples,) or (n_samples, 1)
        Binary labels in {0, 1} (ints, bools or floats).
    n_samples : int
    dtype : numpy.dtype, float32 or float64
        The scores' dtype; the labels are cast to it.

    Raises DTypeError, ShapeError, or LabelError naming the first value not in {0, 1}.
    """
    arr = binary_labels_copy(y, n_samples, dtype)    # the common case: copied, checked
    if arr is not None:
        return arr
    arr = _numeric(y, name)
    if arr.shape not in ((n_samples,), (n_samples, 1)):
        raise ShapeError(f"{name} must have shape ({n_samples},) or ({n_samples}, 1), one "
                         f"label per sample; got shape {arr.shape}")
    arr = np.array(arr.reshape(-1), copy=True)     # checked and used: one owned copy
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        _first_bad(arr, bad, name, "a binary label (0 or 1)")
    return np.ascontiguousarray(arr, dtype=dtype)
