"""Habits a Keras user brings to ``Sequential`` (session 34's survey against Keras 3's
documented API): arguments its ``evaluate`` and ``predict`` take that nnlib's refused
with a TypeError, and what a model keeps after ``fit``. Each test failed before.

* ``model.predict(X, verbose=0)`` and ``model.evaluate(X, y, verbose=0)`` -- the line
  ported Keras code writes to silence the progress bar -- raised TypeError; ``verbose``
  also takes Keras's default ``"auto"`` (fit's too);
* ``evaluate(X, y, sample_weight=w)`` raised TypeError: the weighted loss was only to be
  had one batch at a time (``test_on_batch``).
"""
import numpy as np
import pytest

import nnlib
from nnlib.layers import Layer
from nnlib.optim import Adam


def _model(dtype="float64"):
    return nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=0, dtype=dtype),
                             nnlib.Dense(5, 3, random_state=1, dtype=dtype)])


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.integers(0, 3, size=n)


QUIET = [("zero", 0), ("false", False)]
CHATTY = [("one", 1), ("two", 2), ("true", True), ("auto", "auto")]


@pytest.mark.parametrize("vid,verbose", QUIET, ids=[q[0] for q in QUIET])
def test_verbose_zero_is_silent_and_changes_nothing(capsys, vid, verbose):
    model, (X, y) = _model(), _data()
    assert np.array_equal(model.predict(X, verbose=verbose), model.predict(X))
    assert np.array_equal(model.predict_proba(X, verbose=verbose), model.predict_proba(X))
    assert model.evaluate(X, y, verbose=verbose) == model.evaluate(X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("vid,verbose", CHATTY, ids=[c[0] for c in CHATTY])
def test_verbose_prints_one_line_of_results(capsys, vid, verbose):
    model, (X, y) = _model(), _data()
    result = model.evaluate(X, y, verbose=verbose, metrics=["accuracy"])
    assert capsys.readouterr().out == \
        f"evaluate  loss {result['loss']:.4g}  accuracy {result['accuracy']:.4g}\n"
    out = model.predict(X, verbose=verbose)
    line = capsys.readouterr().out
    assert line.startswith(f"predict  rows {len(X)}  time ") and line.endswith(" ms\n")
    assert np.array_equal(out, model.predict(X))


def test_fit_takes_kerass_default_verbose(capsys):
    X, y = _data()
    a, b = _model(), _model()
    ha = a.fit(X, y, optimizer=Adam(lr=0.01), epochs=2, verbose="auto", random_state=0)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    hb = b.fit(X, y, optimizer=Adam(lr=0.01), epochs=2, verbose=1, random_state=0)
    assert ha["loss"] == hb["loss"]


BAD_VERBOSE = [("negative", -1, ValueError), ("word", "loud", TypeError),
               ("float", 1.5, TypeError)]


@pytest.mark.parametrize("bid,verbose,error", BAD_VERBOSE, ids=[b[0] for b in BAD_VERBOSE])
@pytest.mark.parametrize("verb", ["predict", "evaluate", "fit"])
def test_a_bad_verbose_is_named(bid, verbose, error, verb):
    model, (X, y) = _model(), _data()
    args = (X,) if verb == "predict" else (X, y)
    with pytest.raises(error, match="verbose must be"):
        getattr(model, verb)(*args, verbose=verbose)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluate_weighs_the_loss_by_sample_weight(dtype):
    model, (X, y) = _model(dtype), _data()
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=len(y))
    # the reference: each row's loss alone, weighted by hand
    rows = np.array([model.evaluate(X[i:i + 1], y[i:i + 1]).loss for i in range(len(y))])
    expected = float(np.sum(w * rows) / np.sum(w))
    got = model.evaluate(X, y, sample_weight=w)
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert got.loss == pytest.approx(expected, rel=tol)
    assert got.accuracy == model.evaluate(X, y).accuracy            # unweighted, as Keras's
    assert model.test_on_batch(X, y, sample_weight=w) == got.loss   # one computation
    assert model.evaluate(X, y, sample_weight=w, return_dict=True)["loss"] == got.loss
    assert model.evaluate(X, y, sample_weight=2.5).loss == pytest.approx(
        model.evaluate(X, y).loss, rel=tol)


def test_evaluate_names_bad_sample_weights():
    model, (X, y) = _model(), _data()
    with pytest.raises(nnlib.ShapeError, match="sample_weight"):
        model.evaluate(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="[Nn]egative"):
        model.evaluate(X, y, sample_weight=-np.ones(len(y)))


class _Shift(Layer):
    n_in = n_out = 3

    def forward(self, X, n_threads=None):
        return X + 1.0

    def forward_train(self, X):
        return X + 1.0, lambda dH: (dH, [])


def test_evaluate_sample_weight_needs_compiled_layers():
    model, (X, y) = nnlib.Sequential([_Shift(), nnlib.Dense(3, 3, random_state=0)]), _data()
    with pytest.raises(ValueError, match="sample_weight needs a model of compiled layers"):
        model.evaluate(X, y, sample_weight=np.ones(len(y)))
