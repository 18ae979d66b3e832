"""The labels and targets of the losses, copied and checked in one C call
(``aligned.class_labels_copy``, ``binary_labels_copy``, ``float_target_copy``) for the
common case, and by the Python checks otherwise: every kind of input gives what the
Python path alone gives, the same array or the same error (class and message, naming
the first bad index and value), and the loss reads a copy of its own."""
import warnings

import numpy as np
import pytest

import nnlib.functional as F
from nnlib import _labels
from nnlib._kernels import aligned
from nnlib.functional import losses as L
from tests.test_losses import _ChangesLabelsFirst     # changes y before the kernel runs

Y = np.array([0, 2, 1, 3, 3, 0, 1, 2, 0])            # class labels, 9 rows of 4 classes
YB = np.array([1, 0, 0, 1, 1, 0, 1, 0, 1])           # binary labels


def _swapped(a):
    return a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))


def _strided(a):
    return np.stack([a, a], axis=-1)[..., 0]


def _with(a, i, value, dtype=None):
    a = a.astype(dtype or a.dtype)
    a[i] = value
    return a


# name -> (labels built from Y, whether the one C call takes them)
CLASS_INPUTS = {
    "int64": (Y, True),
    "int32": (Y.astype(np.int32), True),
    "int8": (Y.astype(np.int8), True),
    "uint8": (Y.astype(np.uint8), True),
    "uint64": (Y.astype(np.uint64), True),
    "bool": (Y.astype(bool), True),           # 0/1 labels, fine for 4 classes
    "strided int64": (_strided(Y), True),
    "strided int16": (_strided(Y.astype(np.int16)), True),
    "integral float64": (Y.astype(float), True),
    "integral float32": (Y.astype(np.float32), True),
    "negative zero": (_with(Y, 0, -0.0, float), True),
    "list": (Y.tolist(), False),
    "byte-swapped >i8": (_swapped(Y), False),
    "byte-swapped float": (_swapped(Y.astype(float)), False),
    "float16": (Y.astype(np.float16), False),
    "read-only": (np.frombuffer(Y.tobytes(), np.int64), True),
    # the errors
    "non-integral float": (_with(Y, 4, 2.5, float), False),
    "NaN": (_with(Y, 3, np.nan, float), False),
    "inf": (_with(Y, 3, np.inf, float), False),
    "negative": (_with(Y, 5, -1), False),
    "too large": (_with(Y, 6, 4), False),
    "too large uint64": (_with(Y.astype(np.uint64), 7, 2 ** 64 - 1), False),
    "too large float": (_with(Y, 2, 4.0, float), False),
    "2-d (n, 1)": (Y[:, None], False),
    "one-hot": (np.eye(4, dtype=np.int64)[Y], False),
    "wrong length": (Y[:-1], False),
    "0-d": (np.int64(1), False),
    "strings": (Y.astype(str), False),
    "complex": (Y.astype(complex), False),
}


def _outcome(f, *args):
    """What ``f(*args)`` gives: its array's dtype, shape and bytes, or its error."""
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = f(*args)
    except Exception as e:              # noqa: BLE001 -- the error is the outcome
        return type(e), str(e)
    return out.dtype, out.shape, out.tobytes(), [str(x.message) for x in w]


def _python_path(monkeypatch, *names, module=_labels):
    for name in names:
        monkeypatch.setattr(module, name, lambda *args: None)


@pytest.mark.parametrize("name", sorted(CLASS_INPUTS))
def test_class_labels_are_as_the_python_checks_give_them(name, monkeypatch):
    y, fast = CLASS_INPUTS[name]
    got = _outcome(_labels.check_class_labels, y, 9, 4)
    assert (aligned.class_labels_copy(y, 9, 4) is not None) == fast
    if fast:
        out = _labels.check_class_labels(y, 9, 4)
        assert out.dtype == np.int64 and out.flags.c_contiguous and out.flags.owndata
        assert not np.shares_memory(out, np.asarray(y))
        np.testing.assert_array_equal(out, np.asarray(y).astype(np.int64))
    _python_path(monkeypatch, "class_labels_copy")
    assert _outcome(_labels.check_class_labels, y, 9, 4) == got


def test_class_label_errors_name_the_first_bad_index_and_value():
    for y, message in [(_with(Y, 4, 2.5, float), r"y\[4\] = 2.5 is not an integer class"),
                       (_with(Y, 3, np.nan, float), r"y\[3\] = nan is not an integer"),
                       (_with(Y, 6, 4), r"y\[6\] = 4 is not a class label in \[0, 4\)"),
                       (_with(Y, 5, -1, np.int8), r"y\[5\] = -1 is not a class label")]:
        with pytest.raises(_labels.LabelError, match=message):
            F.softmax_cross_entropy(np.zeros((9, 4)), y)


def test_no_classes_and_an_empty_batch():
    assert aligned.class_labels_copy(Y, 9, 0) is None
    with pytest.raises(_labels.LabelError, match=r"y\[0\] = 0 is not a class label in "
                                                 r"\[0, 0\)"):
        _labels.check_class_labels(Y, 9, 0)
    out = aligned.class_labels_copy(np.array([], np.int64), 0, 3)
    assert out.dtype == np.int64 and out.shape == (0,)


# name -> (labels built from YB, whether the one C call takes them)
BINARY_INPUTS = {
    "int64": (YB, True),
    "int32": (YB.astype(np.int32), True),
    "uint8": (YB.astype(np.uint8), True),
    "bool": (YB.astype(bool), True),
    "float64": (YB.astype(float), True),
    "float32": (YB.astype(np.float32), True),
    "(n, 1)": (YB[:, None], True),
    "(n, 1) float32": (YB[:, None].astype(np.float32), True),
    "strided": (_strided(YB), True),
    "negative zero": (_with(YB, 1, -0.0, float), True),
    "list": (YB.tolist(), False),
    "byte-swapped >i8": (_swapped(YB), False),
    "float16": (YB.astype(np.float16), False),
    # the errors
    "two": (_with(YB, 2, 2), False),
    "minus one": (_with(YB, 2, -1), False),
    "a half": (_with(YB, 8, 0.5, float), False),
    "NaN": (_with(YB, 3, np.nan, float), False),
    # 1 in float32, not in float64: the labels are compared before the cast
    "1 + 1e-10": (_with(YB, 0, 1 + 1e-10, float), False),
    "(n, 2)": (np.stack([YB, YB], 1), False),
    "wrong length": (YB[:-1], False),
    "strings": (YB.astype(str), False),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BINARY_INPUTS))
def test_binary_labels_are_as_the_python_checks_give_them(name, dtype, monkeypatch):
    y, fast = BINARY_INPUTS[name]
    dt = np.dtype(dtype)
    got = _outcome(_labels.check_binary_labels, y, 9, dt)
    assert (aligned.binary_labels_copy(y, 9, dt) is not None) == fast
    if fast:
        out = _labels.check_binary_labels(y, 9, dt)
        assert out.dtype == dt and out.shape == (9,) and out.flags.owndata
        assert not np.shares_memory(out, np.asarray(y))
        np.testing.assert_array_equal(out, YB)
    _python_path(monkeypatch, "binary_labels_copy")
    assert _outcome(_labels.check_binary_labels, y, 9, dt) == got


def test_binary_label_errors_name_the_first_bad_index_and_value():
    for y, message in [(_with(YB, 2, 2), r"y\[2\] = 2 is not a binary label"),
                       (_with(YB, 3, np.nan, float), r"y\[3\] = nan is not a binary"),
                       (_with(YB, 0, 1 + 1e-10, float), r"y\[0\] = 1.0000000001 is not")]:
        with pytest.raises(_labels.LabelError, match=message):
            F.logistic_loss(np.zeros(9, np.float32), y)


T = np.random.default_rng(3).poisson(1.5, (9, 4)).astype(float)   # targets >= 0


# name -> (a function of z giving targets, whether the one C call takes them)
TARGET_INPUTS = {
    "float64": (lambda z: T, True),
    "float32": (lambda z: T.astype(np.float32), True),
    "read-only": (lambda z: np.frombuffer(T.tobytes()).reshape(9, 4), True),
    "negative zero": (lambda z: _with(T, (0, 0), -0.0), True),
    "list": (lambda z: T.tolist(), False),
    "int64": (lambda z: T.astype(np.int64), False),
    "strided": (lambda z: _strided(T), False),
    "Fortran": (lambda z: np.asfortranarray(T), False),
    "byte-swapped": (lambda z: _swapped(T), False),
    # the errors
    "NaN": (lambda z: _with(T, (2, 1), np.nan), False),
    "inf": (lambda z: _with(T, (3, 0), -np.inf), False),
    "negative": (lambda z: _with(T, (4, 3), -2.0), None),     # Poisson's only
    "beyond float32": (lambda z: _with(T, (1, 1), 1e39), None),   # float32 z only
    "transposed": (lambda z: np.ascontiguousarray(T.T), False),
    "(n * c,)": (lambda z: T.ravel(), False),
    "wrong rows": (lambda z: T[:-1], False),
    "strings": (lambda z: T.astype(str), False),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["squared_error", "poisson_loss"])
@pytest.mark.parametrize("name", sorted(TARGET_INPUTS))
def test_float_targets_are_as_the_python_checks_give_them(name, loss, dtype, monkeypatch):
    make, fast = TARGET_INPUTS[name]
    z = np.random.default_rng(4).standard_normal((9, 4)).astype(dtype)
    y = make(z)
    if fast is None:
        fast = (name == "negative" and loss == "squared_error"
                or name == "beyond float32" and dtype == np.float64)
    assert (aligned.float_target_copy(y, z, loss == "poisson_loss") is not None) == fast
    got = _outcome(_loss_and_grad_bytes, loss, z, y)
    _python_path(monkeypatch, "_float_target_copy", module=L)
    assert _outcome(_loss_and_grad_bytes, loss, z, y) == got


def _loss_and_grad_bytes(loss, z, y):
    """The loss and the gradient's bytes in one array (for ``_outcome``)."""
    value, grad = F.loss_and_grad(loss, z, y)
    return np.concatenate([np.float64(value).view(np.uint8),
                           grad.reshape(-1).view(np.uint8)])


# (scores' shape, targets' shape): one output per sample as (n,) or (n, 1) on either side
ONE_COLUMN = [((9,), (9,)), ((9,), (9, 1)), ((9, 1), (9,)), ((9, 1), (9, 1))]


@pytest.mark.parametrize("zs, ts", ONE_COLUMN, ids=str)
def test_one_output_per_sample_takes_either_shape(zs, ts):
    z = np.linspace(-1, 1, 9).reshape(zs)
    t = T[:, 0].copy().reshape(ts)
    assert aligned.float_target_copy(t, z, True) is not None
    want = F.loss_and_grad("poisson_loss", z.ravel(), t.ravel())
    got = F.loss_and_grad("poisson_loss", z, t)
    assert got[0] == want[0] and got[1].shape == zs
    np.testing.assert_array_equal(got[1].ravel(), want[1])
    assert aligned.float_target_copy(np.ones((9, 2)), np.ones((9, 1)), False) is None


def test_float_target_copy_is_a_copy_in_the_scores_dtype():
    z = np.zeros((9, 4), np.float32)
    out = aligned.float_target_copy(T, z, True)
    assert out.dtype == np.float32 and out.flags.owndata and out.shape == T.shape
    np.testing.assert_array_equal(out, T.astype(np.float32))
    with pytest.raises(TypeError, match="float_target_copy: z must be float32 or float64"):
        aligned.float_target_copy(T, np.zeros((9, 4), np.int64), True)


@pytest.mark.parametrize("loss, y", [("squared_error", T), ("poisson_loss", T),
                                     ("logistic_loss", YB.astype(float))],
                         ids=["squared_error", "poisson_loss", "logistic_loss"])
@pytest.mark.parametrize("value", [np.nan, -5.0, 0.5])
def test_targets_changed_during_the_kernel_are_not_read(loss, y, value, monkeypatch):
    z = np.random.default_rng(5).standard_normal(y.shape)
    y = y.copy()
    want = F.loss_and_grad(loss, z, y.copy())
    monkeypatch.setattr(L, "_k", _ChangesLabelsFirst(L._k, y, value))
    got = F.loss_and_grad(loss, z, y)
    first = y.flat[0]                                    # the caller's did change
    assert np.isnan(first) if value != value else first == value
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])


LABEL_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
               np.uint64, np.float32, np.float64, np.bool_]


@pytest.mark.parametrize("dtype", LABEL_TYPES)
def test_one_bad_label_anywhere_is_found(dtype):
    """Contiguous labels are first checked by a loop with no exit (vectorized): a bad label
    at any position, at every vector boundary and in every tail, still makes the copy
    None, and good labels give the same copy as a strided view (the loop that stops)."""
    kinds = np.dtype(dtype).kind
    bad_binary = [] if kinds == "b" else [2] + ([-1] if kinds == "i" else []) + (
        [np.nan, np.inf, 0.5, 1 + 2**-20] if kinds == "f" else [])
    bad_class = ([] if kinds == "b" else [5] + ([-1] if kinds == "i" else [])
                 + ([np.nan, -np.inf, 2.5, 1e30] if kinds == "f" else []))
    f4, f8 = np.dtype(np.float32), np.dtype(np.float64)
    for n in list(range(1, 40)) + [63, 64, 65, 257]:
        y = (np.arange(n) % 2).astype(dtype)
        wide = np.zeros(2 * n, dtype)
        wide[::2] = y                                   # the same labels, strided
        for out in (f4, f8):
            got, want = aligned.binary_labels_copy(y, n, out), \
                aligned.binary_labels_copy(wide[::2], n, out)
            assert got.dtype == out and np.array_equal(got, want)
        got = aligned.class_labels_copy(y, n, 5)
        assert got.dtype == np.int64 and np.array_equal(got, aligned.class_labels_copy(
            wide[::2], n, 5)) and np.array_equal(got, y.astype(np.int64))
        for i in range(n):
            for v in bad_binary:
                b = y.copy()
                b[i] = v
                assert aligned.binary_labels_copy(b, n, f4) is None, (n, i, v)
                assert aligned.binary_labels_copy(b, n, f8) is None, (n, i, v)
            for v in bad_class:
                b = y.copy()
                b[i] = v
                assert aligned.class_labels_copy(b, n, 5) is None, (n, i, v)
