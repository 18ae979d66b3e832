"""A fit stopped by a non-finite step names the cause: the weights, sample_weight, or the
update's size (the learning rate) -- never "lower the learning rate" for weights or
sample weights no learning rate could have saved (``nnlib._divergence``)."""
import warnings

import numpy as np
import pytest

import nnlib
from nnlib import MLPClassifier, MLPRegressor
from nnlib.layers import Dense
from nnlib.optim import SGD, Adam

LOSSES = [("softmax_cross_entropy", lambda rng: rng.integers(0, 3, 20)),
          ("squared_error", lambda rng: rng.normal(size=(20, 3)))]
OPTIMIZERS = [("sgd", lambda: SGD(lr=0.1)), ("momentum", lambda: SGD(lr=0.1, momentum=0.9)),
              ("adam", lambda: Adam(lr=0.01))]


class PyDense(Dense):
    """A Dense layer trained through the Python path (nnlib.batch_training)."""

    def forward_train(self, X):
        return super().forward_train(X)


def _model(layer=Dense):
    return nnlib.Sequential([layer(4, 5, "relu", random_state=0),
                             layer(5, 3, random_state=1)])


def _fit_warning(model, X, y, loss, optimizer, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(X, y, loss=loss, optimizer=optimizer, epochs=2, batch_size=1,
                            shuffle=False, **kw)
    messages = [str(w.message) for w in caught if "non-finite" in str(w.message)]
    assert history.stop_reason == "nonfinite" and len(messages) == 1, messages
    return history, messages[0]


@pytest.mark.parametrize("layer", [Dense, PyDense], ids=["compiled", "python"])
@pytest.mark.parametrize("opt_name,make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("loss,make_y", LOSSES, ids=[l[0] for l in LOSSES])
def test_weights_near_the_top_of_float64_are_named_not_the_learning_rate(
        loss, make_y, opt_name, make_opt, layer):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), make_y(rng)
    model = _model(layer)
    for lay in model.layers:
        lay.W[...] = 1e307 * np.sign(lay.W)
    before = [p.copy() for p in model.params]
    history, message = _fit_warning(model, X, y, loss, make_opt())
    assert "weights given to fit" in message and "too large" in message, message
    assert "learning rate" not in message, message
    assert history.nonfinite["step"] == 0 and "weights given to fit" in \
        history.nonfinite["cause"]
    for a, b in zip(model.params, before):          # the refused step left them as given
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt_name,make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("loss,make_y", LOSSES, ids=[l[0] for l in LOSSES])
def test_sample_weights_near_the_top_of_float64_are_named(loss, make_y, opt_name, make_opt):
    # one row per batch: each batch's total (1e308) has a weighted mean, but 1e308 times
    # a row's loss above ~1.8 overflows the compiled sum_i w_i L_i
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), make_y(rng)
    history, message = _fit_warning(_model(), X, y, loss, make_opt(),
                                     sample_weight=np.full(20, 1e308))
    assert "sample_weight is too large" in message and "divide it by its mean" in message
    assert "learning rate" not in message, message


def test_an_update_that_overflows_still_names_the_learning_rate():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)) * 1e4, rng.integers(0, 3, 20)
    history, message = _fit_warning(_model(), X, y, "softmax_cross_entropy",
                                    SGD(lr=1e306))
    assert history.nonfinite["what"] == "weights or optimizer state after an update"
    assert "lower the learning rate?" in message, message
    assert "too large" not in message


def test_weights_grown_in_training_name_both_remedies():
    # a finite first update, then an output that overflows: either the learning rate
    # made them grow, or they were given that large
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)) * 1e5, rng.integers(0, 3, 20)
    history, message = _fit_warning(_model(), X, y, "softmax_cross_entropy",
                                    SGD(lr=1e290))
    assert history.nonfinite["step"] >= 1
    assert "lower the learning rate if they grew during training" in message, message


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_estimators_name_sample_weight_and_the_weights(solver):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver=solver, batch_size=1, max_iter=3,
                        random_state=0)
    with pytest.raises(ValueError, match="sample_weight is too large") as info:
        clf.fit(X, y, sample_weight=np.full(20, 1e308))
    assert "learning_rate_init" not in str(info.value)
    reg = MLPRegressor(hidden_layer_sizes=(5,), solver=solver, batch_size=1, max_iter=1,
                       random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, X[:, 0])
    for W in reg.coefs_:
        W[...] = 1e307 * np.sign(W)
    with pytest.raises(ValueError, match="weights given to fit") as info:
        reg.fit(X, X[:, 0])
    assert "learning_rate_init" not in str(info.value)


@pytest.mark.parametrize("layer", [Dense, PyDense], ids=["compiled", "python"])
def test_a_diagnosis_that_fails_still_reports_the_fault(monkeypatch, layer):
    import nnlib._divergence as divergence

    def broken(*args, **kwargs):
        raise RuntimeError("diagnosis bug")
    monkeypatch.setattr(divergence, "cause_of_step", broken)
    monkeypatch.setattr("nnlib.batch_training.cause_of_layers_step", broken)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    model = _model(layer)
    for lay in model.layers:
        lay.W[...] = 1e307 * np.sign(lay.W)
    history, message = _fit_warning(model, X, y, "softmax_cross_entropy", SGD(lr=0.1))
    assert "became non-finite: lower the learning rate?" in message
    assert history.nonfinite["cause"] is None
