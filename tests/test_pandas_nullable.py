"""pandas' nullable dtypes (Float64, Int64, boolean) as X, y and sample_weight.

Found by probe35: ``np.asarray`` makes an object array of such a frame or series, so
Sequential.fit and predict refused a ``Float64`` frame with "got dtype object", the
estimators raised "float() argument must be ... not 'NAType'" for one holding ``pd.NA``,
and a ``boolean`` y with ``pd.NA`` was "labels of dtype object". scikit-learn's
``check_array`` converts them to float64 with NaN for ``pd.NA``; nnlib now does too
(``nnlib._validation.plain_array``), so they train as the float64 array does and a
missing value is named as NaN.
"""
import numpy as np
import pytest

import nnlib
from nnlib.exceptions import LabelError, NonFiniteError

pd = pytest.importorskip("pandas")

N, D = 24, 3


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    return X, (X[:, 0] > 0).astype(np.int64)


NULLABLE = ["Float64", "Int64", "boolean"]


def _frame(X, dtype, missing=False):
    values = X > 0 if dtype == "boolean" else (X * 10).round() if dtype == "Int64" else X
    frame = pd.DataFrame(values).astype(dtype)
    if missing:
        frame = frame.mask(pd.DataFrame(np.eye(N, D, k=-2, dtype=bool)))   # row 2 first
    return frame


def _series(y, dtype, missing=False):
    s = pd.Series(y.astype(bool) if dtype == "boolean" else y).astype(dtype)
    return s.mask(pd.Series(np.arange(N) == 3)) if missing else s


def _sequential():
    return nnlib.Sequential([nnlib.Dense(D, 4, "tanh", random_state=0),
                             nnlib.Dense(4, 2, random_state=1)])


@pytest.mark.parametrize("dtype", NULLABLE)
def test_a_nullable_frame_trains_and_predicts_as_its_float64_array(dtype):
    X, y = _data()
    frame = _frame(X, dtype)
    plain = frame.to_numpy(dtype=np.float64)
    got, want = _sequential(), _sequential()
    got.fit(frame, _series(y, "Int64"), epochs=2, batch_size=8, random_state=0,
            sample_weight=pd.Series(np.linspace(1, 2, N)).astype("Float64"))
    want.fit(plain, y, epochs=2, batch_size=8, random_state=0,
             sample_weight=np.linspace(1, 2, N))
    np.testing.assert_array_equal(got.predict(frame), want.predict(plain))
    clf = nnlib.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    ref = nnlib.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.warns(Warning):         # not converged in 3 iterations, both
        clf.fit(frame, y)
    with pytest.warns(Warning):
        ref.fit(plain, y)
    np.testing.assert_array_equal(clf.predict_proba(frame), ref.predict_proba(plain))


@pytest.mark.parametrize("dtype", NULLABLE)
def test_a_missing_value_in_x_is_named_as_nan(dtype):
    X, y = _data()
    frame = _frame(X, dtype, missing=True)
    model = _sequential()
    for call in (lambda: model.fit(frame, y), lambda: model.predict(frame),
                 lambda: nnlib.MLPClassifier(max_iter=2).fit(frame, y)):
        with pytest.raises(NonFiniteError, match=r"row 2 .*holds nan|NaN \(nan\) at row 2"):
            call()


@pytest.mark.parametrize("dtype", NULLABLE)
def test_a_nullable_y_gives_the_labels_of_its_values_and_names_a_missing_one(dtype):
    X, y = _data()
    model = _sequential()
    model.fit(X, _series(y, dtype), epochs=1, random_state=0)
    twin = _sequential()
    twin.fit(X, y, epochs=1, random_state=0)
    np.testing.assert_array_equal(model.params[0], twin.params[0])
    with pytest.raises(LabelError, match=r"y\[3\] = nan"):
        _sequential().fit(X, _series(y, dtype, missing=True))
    with pytest.raises(NonFiniteError, match="y contains NaN"):
        nnlib.MLPClassifier(max_iter=2).fit(X, _series(y, dtype, missing=True))
    with pytest.raises(NonFiniteError, match="y contains NaN"):
        nnlib.MLPRegressor(max_iter=2).fit(X, _series(y, dtype, missing=True))


@pytest.mark.parametrize("dtype", NULLABLE)
def test_the_classes_of_a_nullable_y_are_scikit_learns(dtype):
    neural_network = pytest.importorskip("sklearn.neural_network")
    X, y = _data()
    ys = _series(y, dtype)
    with pytest.warns(Warning):
        theirs = neural_network.MLPClassifier(max_iter=1, random_state=0).fit(X, ys)
    with pytest.warns(Warning):
        ours = nnlib.MLPClassifier(max_iter=1, random_state=0).fit(X, ys)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.classes_.dtype == theirs.classes_.dtype


# A frame mixing nullable columns with an object or category column (rev35b):
# scikit-learn's check_array converts the whole frame to float64 and says "Input X
# contains NaN"; nnlib made an object array still holding pd.NA, and the estimators
# raised "float() argument must be ... not 'NAType'".
MIXED = {
    "object": lambda: pd.Series(np.arange(N) % 3, dtype=object),
    "category": lambda: pd.Series(pd.Categorical(np.arange(N) % 3)),
}


@pytest.mark.parametrize("other", list(MIXED))
@pytest.mark.parametrize("dtype", NULLABLE)
def test_a_missing_value_beside_an_object_column_is_named_as_nan(dtype, other):
    X, y = _data()
    frame = _frame(X, dtype, missing=True)
    frame[D] = MIXED[other]()
    for est in (nnlib.MLPClassifier(max_iter=2), nnlib.MLPRegressor(max_iter=2)):
        with pytest.raises(NonFiniteError, match=r"NaN \(nan\) at row 2"):
            est.fit(frame, y)
    whole = _frame(X, dtype)                                    # none missing: trains
    whole[D] = MIXED[other]()
    ours = nnlib.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    ref = nnlib.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.warns(Warning):
        ours.fit(whole, y)
    with pytest.warns(Warning):
        ref.fit(whole.astype(np.float64).to_numpy(), y)
    np.testing.assert_array_equal(ours.predict(whole), ref.predict(
        whole.astype(np.float64).to_numpy()))
