"""An estimator's pickle carries the nnlib version that wrote it, and unpickling it under
another version warns (``InconsistentVersionWarning``, scikit-learn's rule for its own
estimators' pickles). Found by probe33: nnlib's pickles held no version at all, so a
model pickled by one version loaded silently into another; session 34 stamps ``Sequential``
models and optimizers the same way."""
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


# Sequential models and optimizers carry the stamp too (session 34: they carried none, so a
# model or an Adam with its moments pickled by one version loaded silently into another)
def _fitted_model():
    from nnlib.optim import Adam
    model = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                              nnlib.Dense(4, 2, random_state=1)])
    X = np.random.default_rng(0).normal(size=(8, 3))
    model.fit(X, np.arange(8) % 2, optimizer=Adam(lr=0.01), epochs=2, verbose=0)
    return model, X


OBJECTS = [
    ("sequential", lambda: _fitted_model()[0]),
    ("optimizer", lambda: _fitted_model()[0].optimizer),
    ("unbound-optimizer", lambda: nnlib.optim.SGD(lr=0.3, momentum=0.9)),
]


def _same(a, b):
    """The pickled object came back whole: a model's predictions and its optimizer's
    state, an optimizer's hyper-parameters and moments."""
    if isinstance(a, nnlib.Sequential):
        X = np.random.default_rng(1).normal(size=(4, 3))
        assert np.array_equal(a.predict(X), b.predict(X))
        a, b = a.optimizer, b.optimizer
    assert repr(a) == repr(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i, s in sa["state"].items():
        assert all(np.array_equal(s[k], sb["state"][i][k]) for k in s)


@pytest.mark.parametrize("name,make", OBJECTS, ids=[o[0] for o in OBJECTS])
def test_a_model_or_optimizer_pickle_carries_the_version_and_loads_quietly(name, make):
    obj = make()
    assert obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[2]["_nnlib_version"] == \
        nnlib.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for back in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj), copy.copy(obj)):
            assert "_nnlib_version" not in vars(back)
            _same(obj, back)


@pytest.mark.parametrize("name,make", OBJECTS, ids=[o[0] for o in OBJECTS])
def test_a_model_or_optimizer_from_another_version_warns(name, make, monkeypatch):
    obj = make()
    monkeypatch.setattr(nnlib, "__version__", "0.0.1")      # the version that pickles
    data = pickle.dumps(obj)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning, match="from nnlib version 0.0.1") as rec:
        back = pickle.loads(data)
    names = {type(obj).__name__} | ({type(obj.optimizer).__name__}
                                    if isinstance(obj, nnlib.Sequential) else set())
    assert {w.message.estimator_name for w in rec} == names   # the model and its Adam
    assert all(w.message.current_nnlib_version == nnlib.__version__ and
               w.filename == __file__ for w in rec)          # pointing at pickle.loads
    _same(obj, back)


@pytest.mark.parametrize("name,make", OBJECTS, ids=[o[0] for o in OBJECTS])
def test_a_model_or_optimizer_pickled_before_the_stamp_loads_quietly(name, make):
    obj = make()
    # what an older nnlib pickled: the same state with no stamp, in the model and in
    # its optimizer
    def unstamped(o):
        rebuild, args, state = o.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[:3]
        del state["_nnlib_version"]
        back = rebuild(*args)
        if isinstance(o, nnlib.Sequential):
            state["optimizer"] = unstamped(o.optimizer)
            state["layers"] = o.layers
        back.__setstate__(state)
        return back
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = unstamped(obj)
    assert "_nnlib_version" not in vars(back)
    _same(obj, back)


def test_a_history_pickled_before_params_and_model_reads_them_as_an_unfitted_one():
    """A History pickled before session 34 gave it ``params`` and ``model`` (a plain
    ``__dict__`` pickle without them, as ``model.history`` of a pickled model from the
    day before held) read them as an AttributeError; found by the second review of
    habits34 unpickling a model and History pickled by 69f21fd. They read as a History
    not made by a fit has them."""
    from nnlib.callbacks import History
    model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    history = model.fit(np.eye(2), [0, 1], epochs=2)
    assert history.model is model and history.params["epochs"] == 2
    old = History()
    old.__dict__.update({k: v for k, v in vars(history).items()
                         if k not in ("params", "model")})
    del old.params, old.model                       # the layout an older nnlib pickled
    back = pickle.loads(pickle.dumps(old))
    assert back.params == {} and back.model is None
    assert back.epoch == [0, 1] and back["loss"] == history["loss"]
    again = pickle.loads(pickle.dumps(history))     # a current one keeps its own
    assert again.params["epochs"] == 2 and isinstance(again.model, nnlib.Sequential)
