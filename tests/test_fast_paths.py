"""The fit path's fast paths (the compiled seed orders, the compiled label check, the
input and scalar checks' common cases) train to bitwise the same weights as the slow
paths they skip, and bad input still raises the same clear errors."""
import numpy as np
import pytest

import nnlib
from nnlib.layers import Dropout
from nnlib.optim import SGD

DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


def _data(dtype, n=40, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.integers(0, k, n)


def _model(dtype, d=6, k=3, dropout=False):
    layers = [nnlib.Dense(d, 8, "relu", dtype=dtype, random_state=1)]
    if dropout:
        layers.append(Dropout(0.2))
    layers.append(nnlib.Dense(8, k, dtype=dtype, random_state=2))
    return nnlib.Sequential(layers)


def _fit(X, y, random_state, dtype, dropout=False, **kw):
    model = _model(dtype, dropout=dropout)          # 6 features, 3 classes
    model.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, batch_size=kw.pop("batch_size", 1),
              random_state=random_state, n_threads=1, **kw)
    return [p.copy() for p in model.params]


def _assert_bitwise(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p.view(np.uint8), q.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 3, 2**40 + 1])
def test_int_seed_trains_as_its_generator(dtype, seed):
    X, y = _data(dtype)
    _assert_bitwise(_fit(X, y, seed, dtype), _fit(X, y, np.random.default_rng(seed), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_int_seed_with_dropout_trains_as_its_generator(dtype):
    X, y = _data(dtype)
    _assert_bitwise(_fit(X, y, 4, dtype, dropout=True),
                    _fit(X, y, np.random.default_rng(4), dtype, dropout=True))


# --- labels: int64 through the compiled check, other dtypes through NumPy's -------------

LABEL_CASES = [pytest.param([0, 1, 2, 1], -1, id="all-good"),
               pytest.param([0, 3, 1, 5], 1, id="too-big"),
               pytest.param([0, 1, -1, 2], 2, id="negative"),
               pytest.param([-2**63, 0], 0, id="int64-min"),
               pytest.param([], -1, id="empty")]


@pytest.mark.parametrize("labels, first", LABEL_CASES)
def test_first_label_outside_agrees_with_twin(labels, first):
    from nnlib._kernels import train
    from nnlib._reference import train as twin
    y = np.array(labels, dtype=np.int64)
    assert train.first_label_outside(y, 3) == twin.first_label_outside(y, 3) == first


@pytest.mark.parametrize("n_classes", [0, -1, -2**63])
@pytest.mark.parametrize("labels", [[], [0], [5, -1], [-2**63, 2**63 - 1]])
def test_first_label_outside_empty_range(labels, n_classes):
    # [0, n_classes) is empty for n_classes <= 0: every label is outside, as in the twin
    # (an unsigned comparison alone would accept labels below a negative n_classes).
    from nnlib._kernels import train
    from nnlib._reference import train as twin
    y = np.array(labels, dtype=np.int64)
    want = 0 if len(labels) else -1
    assert train.first_label_outside(y, n_classes) == twin.first_label_outside(y, n_classes) \
        == want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_dtype", [np.int32, np.uint8, np.float64],
                         ids=["int32", "uint8", "float64"])
def test_int64_labels_train_as_other_label_dtypes(dtype, label_dtype):
    X, y = _data(dtype)
    _assert_bitwise(_fit(X, y.astype(np.int64), 0, dtype),
                    _fit(X, y.astype(label_dtype), 0, dtype))


@pytest.mark.parametrize("bad", [3, 7, -1])
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.float64],
                         ids=["int64", "int32", "float64"])
def test_bad_labels_raise_the_same_message(bad, label_dtype):
    from nnlib._validation import LabelError
    X, y = _data(np.float32)
    y = y.astype(np.int64)
    y[5] = bad
    with pytest.raises(LabelError, match=rf"^y\[5\] = {bad}(\.0)? is not a class label "
                                         r"in \[0, 3\)$"):
        _fit(X, y.astype(label_dtype), 0, np.float32)


# --- X: a C-contiguous array of the model's dtype is used as it is ----------------------

def _variants(X):
    """X as the fast path takes it, and as the conversion takes it (same values)."""
    return {"fortran": np.asfortranarray(X), "strided": np.repeat(X, 2, axis=0)[::2],
            "list": X.tolist(), "big-endian": X.astype(X.dtype.newbyteorder(">"))}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", ["fortran", "strided", "list", "big-endian"])
def test_contiguous_x_trains_as_converted_x(dtype, variant):
    X, y = _data(dtype)
    _assert_bitwise(_fit(X, y, 0, dtype), _fit(_variants(X)[variant], y, 0, dtype))


BAD_X = [pytest.param(lambda X: X[:, :5], "ShapeError", "features", id="width"),
         pytest.param(lambda X: X[0], "ShapeError", "2-dimensional", id="1-d"),
         pytest.param(lambda X: np.where(np.arange(X.shape[0])[:, None] == 3, np.nan, X)
                      .astype(X.dtype), "NonFiniteError", "row 3", id="nan"),
         pytest.param(lambda X: X.astype(str), "DTypeError", "float32 or float64",
                      id="strings")]


@pytest.mark.parametrize("make, error, words", BAD_X)
@pytest.mark.parametrize("layout", ["c", "fortran"])
def test_bad_x_raises_on_either_path(make, error, words, layout):
    import nnlib._validation as V
    import nnlib.exceptions as E
    exc = getattr(E, error, None) or getattr(V, error)
    X, y = _data(np.float32)
    bad = make(X)
    if layout == "fortran" and bad.ndim == 2:
        bad = np.asfortranarray(bad)
    with pytest.raises(exc, match=words):
        _fit(bad, y, 0, np.float32)


# --- scalars: plain int and float skip the ABC checks ---------------------------------

GOOD_SCALARS = [pytest.param(dict(epochs=np.int64(3), batch_size=np.int32(1), l2=np.float32(0),
                                  margin=np.float64(1)), id="numpy-scalars"),
                pytest.param(dict(l2=0, margin=1), id="ints-for-reals")]


@pytest.mark.parametrize("kw", GOOD_SCALARS)
def test_other_scalar_types_train_as_plain_ones(kw):
    X, y = _data(np.float32)
    model_a, model_b = _model(np.float32), _model(np.float32)
    model_a.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, batch_size=1, l2=0.0, margin=1.0,
                random_state=0, n_threads=1)
    model_b.fit(X, y, optimizer=SGD(lr=0.1), random_state=0, n_threads=1,
                **{"epochs": 3, "batch_size": 1, **kw})
    _assert_bitwise(model_a.params, model_b.params)


BAD_SCALARS = [pytest.param("epochs", True, TypeError, "must be an integer", id="bool-epochs"),
               pytest.param("epochs", 2.0, TypeError, "must be an integer", id="float-epochs"),
               pytest.param("batch_size", 0, ValueError, ">= 1", id="zero-batch"),
               pytest.param("l2", True, TypeError, "real number", id="bool-l2"),
               pytest.param("l2", "0", TypeError, "real number", id="str-l2"),
               pytest.param("l2", float("nan"), ValueError, "finite", id="nan-l2"),
               pytest.param("l2", 10**400, ValueError, "finite", id="huge-int-l2"),
               pytest.param("l2", -1.0, ValueError, ">= 0", id="negative-l2"),
               pytest.param("l2", 1e39, "DTypeRangeError", "float32", id="l2-beyond-float32")]


@pytest.mark.parametrize("name, value, exc, words", BAD_SCALARS)
def test_bad_scalars_raise_as_before(name, value, exc, words):
    import nnlib.exceptions as E
    exc = getattr(E, exc) if isinstance(exc, str) else exc
    X, y = _data(np.float32)
    with pytest.raises(exc, match=words):
        _model(np.float32).fit(X, y, random_state=0, **{name: value})
