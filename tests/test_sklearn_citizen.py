"""The estimators as first-class scikit-learn citizens once scikit-learn is in use:
``isinstance(est, BaseEstimator)``, HTML repr, tags, metadata routing of
``sample_weight`` through ``cross_validate(..., params=...)`` and a Pipeline; pickles
and copies that name the nnlib class; and ``import nnlib`` that still never imports
scikit-learn."""
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn  # noqa: E402
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor  # noqa: E402
from sklearn.model_selection import cross_validate  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from nnlib import LogisticRegression, MLPClassifier, MLPRegressor  # noqa: E402

ESTIMATORS = [MLPClassifier, MLPRegressor, LogisticRegression]


def _data(seed=0, n=60):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    w = rng.uniform(0.1, 3.0, n)
    return X, y, w


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_is_a_base_estimator_with_the_nnlib_name_and_behaviour(cls):
    est = cls()
    assert isinstance(est, BaseEstimator) and isinstance(est, cls)
    assert type(est).__name__ == cls.__name__ and type(est).__module__ == cls.__module__
    assert type(est).get_params is cls.get_params            # nnlib's, not sklearn's
    assert is_classifier(est) == (cls is not MLPRegressor)
    assert is_regressor(est) == (cls is MLPRegressor)
    html = est._repr_html_()
    assert cls.__name__ in html and "<style>" in html
    assert isinstance(clone(est), BaseEstimator)


def test_pickles_and_copies_name_the_nnlib_class():
    X, y, _ = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0).fit(X, y)
    blob = pickle.dumps(est)
    assert b"nnlib.estimators" in blob and b"MLPClassifier" in blob
    back = pickle.loads(blob)
    assert isinstance(back, BaseEstimator)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    # a process without scikit-learn loads it as a plain nnlib model
    code = ("import pickle, sys; est = pickle.loads(sys.stdin.buffer.read()); "
            "assert 'sklearn' not in sys.modules, 'sklearn imported'; "
            "print(type(est).__mro__[1].__name__)")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                         check=True)
    assert out.stdout.decode().strip() == "ClassifierMixin"


def test_import_nnlib_and_its_estimators_do_not_import_sklearn():
    code = ("import sys, nnlib; from nnlib import MLPClassifier; MLPClassifier(); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sklearn', 'scipy')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sample_weight_is_routed_through_cross_validate():
    X, y, w = _data()
    params = dict(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(**params).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=False)
        res = cross_validate(est, X, y, params={"sample_weight": w}, cv=3,
                             return_estimator=True, return_indices=True)
    for fitted, train in zip(res["estimator"], res["indices"]["train"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = MLPClassifier(**params).fit(X[train], y[train],
                                               sample_weight=w[train])
        for a, b in zip(fitted.coefs_, want.coefs_):
            np.testing.assert_array_equal(a, b)
    # without the request, routing refuses the metadata (scikit-learn's rule)
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(Exception, match="sample_weight"):
            cross_validate(MLPClassifier(**params), X, y, params={"sample_weight": w},
                           cv=3)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor], ids=lambda c: c.__name__)
def test_sample_weight_is_routed_through_a_pipeline(cls):
    X, y, w = _data(1)
    params = dict(hidden_layer_sizes=(4,), max_iter=15, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                             cls(**params).set_fit_request(sample_weight=True))
        pipe.fit(X, y, sample_weight=w)
        want = cls(**params).fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    for a, b in zip(pipe[-1].coefs_, want.coefs_):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_request_exists_for_stochastic_solvers():
    est = MLPRegressor(solver="sgd")
    with sklearn.config_context(enable_metadata_routing=True):
        assert est.set_partial_fit_request(sample_weight=True) is est
    routing = est.get_metadata_routing()
    assert routing.consumes("partial_fit", ["sample_weight"]) == {"sample_weight"}


def test_tags():
    from sklearn.utils import get_tags
    assert get_tags(MLPClassifier()).classifier_tags.multi_label
    assert get_tags(MLPRegressor()).target_tags.multi_output
