"""An estimator's pickle carries the nnlib version that wrote it, and unpickling it under
another version warns (``InconsistentVersionWarning``, scikit-learn's rule for its own
estimators' pickles). Found by probe33: nnlib's pickles held no version at all, so a
model pickled by one version loaded silently into another."""
import copy
import pickle
import warnings

import numpy as np
import pytest

import nnlib
from nnlib import (LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor,
                   Perceptron)
from nnlib.exceptions import InconsistentVersionWarning

ESTIMATORS = [
    ("mlp-classifier", lambda: MLPClassifier(hidden_layer_sizes=(3,), max_iter=3,
                                             random_state=0)),
    ("mlp-regressor", lambda: MLPRegressor(hidden_layer_sizes=(3,), max_iter=3,
                                           random_state=0)),
    ("perceptron", lambda: Perceptron(random_state=0)),
    ("logistic-regression", lambda: LogisticRegression(max_iter=3)),
    ("linear-regression", LinearRegression),
]


def _fitted(make):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # ConvergenceWarning of 3 iterations
        return make().fit(X, (X[:, 0] > 0).astype(int)), X


def _reduced(est):
    rebuild, args, state = est.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    return rebuild, args, state


@pytest.mark.parametrize("name,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_a_pickle_carries_the_version_and_loads_quietly_under_it(name, make):
    est, X = _fitted(make)
    assert _reduced(est)[2]["_nnlib_version"] == nnlib.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for back in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
            assert "_nnlib_version" not in vars(back)
            assert np.array_equal(back.predict(X), est.predict(X))


@pytest.mark.parametrize("name,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_another_versions_pickle_warns_naming_both_versions(name, make):
    est, X = _fitted(make)
    rebuild, args, state = _reduced(est)
    state["_nnlib_version"] = "0.0.1"
    back = rebuild(*args)
    with pytest.warns(InconsistentVersionWarning, match="from nnlib version 0.0.1") as rec:
        back.__setstate__(state)
    w = rec[0].message
    assert (w.estimator_name, w.original_nnlib_version, w.current_nnlib_version) == \
        (type(est).__name__, "0.0.1", nnlib.__version__)
    assert np.array_equal(back.predict(X), est.predict(X))


@pytest.mark.parametrize("name,make", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_a_pickle_from_before_the_stamp_loads_quietly(name, make):
    est, X = _fitted(make)
    rebuild, args, state = _reduced(est)
    del state["_nnlib_version"]
    back = rebuild(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back.__setstate__(state)
    assert np.array_equal(back.predict(X), est.predict(X))


def test_the_version_warning_survives_pickling():
    # raised as an error in a Dask or joblib worker, it travels back pickled
    import pickle
    from nnlib.exceptions import InconsistentVersionWarning
    w = InconsistentVersionWarning(estimator_name="MLPClassifier",
                                   current_nnlib_version="0.2", original_nnlib_version="0.1")
    back = pickle.loads(pickle.dumps(w))
    assert type(back) is InconsistentVersionWarning and str(back) == str(w)
    assert (back.estimator_name, back.current_nnlib_version,
            back.original_nnlib_version) == ("MLPClassifier", "0.2", "0.1")
