"""``feature_names_in_`` from data frames, and scikit-learn's errors and warnings when
the columns at predict time differ from fit's (nnlib._inputs.check_feature_names against
scikit-learn's own ``_check_feature_names``, message for message)."""
import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from nnlib import MLPClassifier, MLPRegressor  # noqa: E402
from nnlib._inputs import check_feature_names  # noqa: E402

COLUMNS = ["a", "b", "c", "d", "e", "f", "g"]


def _frame(columns=COLUMNS, seed=0, n=40):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((n, len(columns))), columns=columns)


def _fit(cls, X, **params):
    y = (np.asarray(X)[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(hidden_layer_sizes=(3,), max_iter=3, random_state=0, **params).fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor], ids=lambda c: c.__name__)
def test_fit_on_a_frame_sets_feature_names_in(cls):
    est = _fit(cls, _frame())
    assert est.feature_names_in_.dtype == object
    assert est.feature_names_in_.tolist() == COLUMNS
    est.fit(_frame().to_numpy(), np.zeros(40) if cls is MLPRegressor else
            (np.arange(40) % 2))
    assert not hasattr(est, "feature_names_in_")     # refitted on an array: deleted


def test_reordered_or_renamed_columns_raise_and_arrays_warn():
    est = _fit(MLPClassifier, _frame())
    X = _frame(seed=1)
    with pytest.raises(ValueError, match="must be in the same order"):
        est.predict(X[COLUMNS[::-1]])
    with pytest.raises(ValueError, match="unseen at fit time:\n- z\n"):
        est.predict_proba(X.rename(columns={"a": "z"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.predict(X.to_numpy())
    plain = _fit(MLPClassifier, _frame().to_numpy())
    with pytest.warns(UserWarning, match="X has feature names, but MLPClassifier"):
        plain.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(est.predict(X), est.predict(X[COLUMNS]))


def test_mixed_column_name_types_raise_scikit_learns_type_error():
    X = _frame()
    X.columns = ["a", 1, "c", "d", "e", "f", "g"]
    with pytest.raises(TypeError, match="Feature names are only supported if all"):
        _fit(MLPClassifier, X)
    X.columns = list(range(7))                      # all non-string: no names, no error
    assert not hasattr(_fit(MLPClassifier, X), "feature_names_in_")


def test_early_stopping_and_partial_fit_keep_quiet():
    X = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _fit(MLPClassifier, X, early_stopping=True)
        est = MLPRegressor(hidden_layer_sizes=(3,), random_state=0)
        est.partial_fit(X, X["a"])
        est.partial_fit(X, X["a"])
    assert est.feature_names_in_.tolist() == COLUMNS


class _Model:
    pass


CASES = [
    ("same", COLUMNS),
    ("reordered", COLUMNS[::-1]),
    ("renamed", ["z"] + COLUMNS[1:]),
    ("many unseen", [f"x{i}" for i in range(7)]),
    ("fewer", COLUMNS[:3]),
    ("array", None),
]


@pytest.mark.parametrize("columns", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_messages_are_scikit_learns(columns):
    validation = pytest.importorskip("sklearn.utils.validation")
    fitted = _frame()
    X = _frame(columns) if columns is not None else _frame().to_numpy()
    outcomes = []
    for check in (check_feature_names, validation._check_feature_names):
        model = _Model()
        check(model, fitted, reset=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                check(model, X, reset=False)
                outcomes.append(("ok", [str(w.message) for w in caught]))
            except ValueError as exc:
                outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]


def test_check_estimator_frame_checks_pass():
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    for est in (MLPClassifier(max_iter=50), MLPRegressor(max_iter=50)):
        checks.check_dataframe_column_names_consistency(type(est).__name__, est)
