"""``Sequential.evaluate(batch_size=...)`` and ``fit(validation_batch_size=...)``:
Keras 3's ``evaluate(x, y, batch_size=None, ...)`` computes in batches and averages the
batches' losses weighted by their row counts (its loss tracker,
``Mean.update_state(loss, sample_weight=rows)``), and its fit validates so in batches
of ``validation_batch_size``. nnlib's took neither (TypeError), and its third positional
is the loss, so Keras's ``evaluate(x, y, 64)`` read "unknown loss 64". Each test failed
before.

The oracle of the batched loss is Keras's rule applied by hand to one-pass evaluations
of each batch; the batched results must also equal the one-pass value to rounding.
"""
import numpy as np
import pytest

import nnlib
from nnlib.layers import Layer

TOL = {"float32": 2e-6, "float64": 1e-13}

# (id, loss, outputs, target maker)
LOSSES = [
    ("softmax", "softmax_cross_entropy", 4, lambda rng, n: rng.integers(0, 4, size=n)),
    ("squared", "squared_error", 2, lambda rng, n: rng.normal(size=(n, 2))),
    ("multilabel", "logistic_loss", 3, lambda rng, n: rng.integers(0, 2, size=(n, 3))),
    ("poisson", "poisson_loss", 1, lambda rng, n: rng.poisson(2.0, size=(n, 1))),
]

# 1 and 7 split 50 rows unevenly (a short last batch), 49 leaves one row over
BATCHES = [1, 7, 32, 49]


def _model(n_out, dtype, n_in=5):
    return nnlib.Sequential([nnlib.Dense(n_in, 8, "tanh", random_state=0, dtype=dtype),
                             nnlib.Dense(8, n_out, random_state=1, dtype=dtype)])


def _case(lid, dtype, n=50, seed=0):
    _, loss, n_out, make = next(c for c in LOSSES if c[0] == lid)
    rng = np.random.default_rng(seed)
    return _model(n_out, dtype), rng.normal(size=(n, 5)), make(rng, n), loss


def _kerass_mean(model, X, y, loss, batch_size, w=None):
    """Keras's combination: the batches' mean losses, weighted by their rows (by their
    weight sums with ``w``, which makes the one-pass weighted mean)."""
    values, shares = [], []
    for i in range(0, len(X), batch_size):
        rows = slice(i, i + batch_size)
        share = len(X[rows]) if w is None else float(np.sum(w[rows]))
        if share:
            kw = {} if w is None else {"sample_weight": w[rows]}
            values.append(model.evaluate(X[rows], y[rows], loss=loss, **kw).loss)
            shares.append(share)
    return float(np.dot(values, shares) / np.sum(shares))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", BATCHES)
@pytest.mark.parametrize("lid", [c[0] for c in LOSSES])
def test_batches_give_the_one_pass_values(lid, batch_size, dtype):
    model, X, y, loss = _case(lid, dtype)
    whole = model.evaluate(X, y, loss=loss, batch_size=len(X))
    got = model.evaluate(X, y, loss=loss, batch_size=batch_size)
    assert got.loss == pytest.approx(whole.loss, rel=TOL[dtype])
    assert got.loss == pytest.approx(_kerass_mean(model, X, y, loss, batch_size),
                                     rel=TOL[dtype])
    assert got.accuracy == whole.accuracy


def _top_share(y_true, y_pred):
    """A user metric of all rows at once (not a mean of per-row values)."""
    return float(np.mean(y_pred.argmax(axis=1) == y_true) ** 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_metrics_see_every_rows_outputs_once(dtype):
    model, X, y, loss = _case("softmax", dtype)
    seen = []

    def rows_seen(y_true, y_pred):
        seen.append(len(y_pred))
        return 0.0

    got = model.evaluate(X, y, batch_size=7, metrics=[_top_share, rows_seen])
    whole = model.evaluate(X, y, metrics=[_top_share])
    assert seen == [len(X)]
    assert got["_top_share"] == whole["_top_share"]
    assert got["accuracy"] == whole["accuracy"]
    assert got["loss"] == pytest.approx(whole["loss"], rel=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weighted_batches_give_the_weighted_mean(dtype):
    model, X, y, loss = _case("softmax", dtype)
    w = np.random.default_rng(3).uniform(0.0, 2.0, size=len(X))
    w[7:14] = 0.0               # a batch of 7 with no weight: no share of the mean
    w[14:21] = 1e-30            # one whose weights sum far below 1
    whole = model.evaluate(X, y, sample_weight=w, batch_size=len(X))
    got = model.evaluate(X, y, sample_weight=w, batch_size=7)
    assert got.loss == pytest.approx(whole.loss, rel=TOL[dtype])
    assert got.loss == pytest.approx(_kerass_mean(model, X, y, loss, 7, w), rel=TOL[dtype])
    assert got.accuracy == whole.accuracy                   # unweighted, of every row


def test_subnormal_batch_weights_keep_their_share():
    # a batch whose weights sum to a subnormal has a reciprocal beyond float64: its
    # weighted mean is still defined (the weights' scale does not enter it)
    model, X, y, _ = _case("softmax", "float64", n=8)
    w = np.ones(8)
    w[4:] = 1e-310
    got = model.evaluate(X, y, sample_weight=w, batch_size=4)
    whole = model.evaluate(X, y, sample_weight=w)
    assert got.loss == pytest.approx(whole.loss, rel=1e-12)


class _Shift(Layer):
    n_in = n_out = 5

    def forward(self, X, n_threads=None):
        return X + 1.0

    def forward_train(self, X):
        return X + 1.0, lambda dH: (dH, [])


def test_python_layers_evaluate_in_batches_too():
    _, X, y, _ = _case("softmax", "float64")
    model = nnlib.Sequential([_Shift(), *_model(4, "float64").layers])
    whole = model.evaluate(X, y)
    got = model.evaluate(X, y, batch_size=7)
    assert got.loss == pytest.approx(whole.loss, rel=1e-13)
    assert got.accuracy == whole.accuracy


# (id, model maker): compiled layers, and a Python layer (the per-batch path)
KINDS = [("compiled", lambda: _model(4, "float64")),
         ("python", lambda: nnlib.Sequential([_Shift(), *_model(4, "float64").layers]))]


@pytest.mark.parametrize("kid,make", KINDS, ids=[k[0] for k in KINDS])
def test_batches_build_one_evaluation_and_score_the_accuracy_once(monkeypatch, kid, make):
    # each batch's evaluation computed an accuracy that was thrown away (the accuracy
    # is taken once over all rows), and with Python layers a new evaluation was built
    # for each batch: 8 accuracies and 8 evaluations for 50 rows in batches of 7
    _, X, y, _ = _case("softmax", "float64")
    model = make()
    expected = model.evaluate(X, y)
    built, scored = [], []
    make_evaluation, score = model._evaluation, nnlib.training.accuracy
    monkeypatch.setattr(model, "_evaluation",
                        lambda *a, **k: built.append(1) or make_evaluation(*a, **k))
    monkeypatch.setattr(nnlib.training, "accuracy",
                        lambda *a: scored.append(1) or score(*a))
    got = model.evaluate(X, y, batch_size=7)
    assert (len(built), len(scored)) == (1, 1)
    assert got.loss == pytest.approx(expected.loss, rel=1e-13)
    assert got.accuracy == expected.accuracy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_default_is_one_pass_while_the_activations_fit(dtype):
    # None: one pass up to about 2**24 activations, so evaluate gives the values it gave
    # before it took batch_size (and test_on_batch's loss) bit for bit: 4096 rows a
    # batch, as 9a153fe made it, changed the last bits of 9000 rows' loss and took 4.7x
    # one pass's wall time on a loaded machine (each batch's GEMMs wait for BLAS)
    model, X, y, _ = _case("softmax", dtype, n=9000)
    assert model.evaluate(X, y) == model.evaluate(X, y, batch_size=9000)
    assert model.evaluate(X, y).loss == model.test_on_batch(X, y)
    assert model.evaluate(X, y).loss != model.evaluate(X, y, batch_size=4096).loss


def test_the_default_batches_beyond_the_memory_bound(monkeypatch):
    # rows x the layer widths (5 + 8 + 4 here) beyond _EVALUATE_VALUES: batches of
    # that many values' rows, never fewer than predict's 4096
    model, X, y, _ = _case("softmax", "float64", n=9000)
    monkeypatch.setattr(nnlib.model, "_EVALUATE_VALUES", 17 * 5000)
    assert model.evaluate(X, y) == model.evaluate(X, y, batch_size=5000)
    monkeypatch.setattr(nnlib.model, "_EVALUATE_VALUES", 1)
    assert model.evaluate(X, y) == model.evaluate(X, y, batch_size=4096)


def test_nnlibs_positional_loss_still_works():
    model, X, t, _ = _case("squared", "float64")
    by_position = model.evaluate(X, t, "squared_error", 1.0, None, ["mse"], True)
    assert by_position == model.evaluate(X, t, loss="squared_error", metrics=["mse"],
                                         return_dict=True)


KERAS_POSITIONAL = [
    ("evaluate", lambda m, X, y: m.evaluate(X, y, 64)),
    ("evaluate-x", lambda m, X, y: m.evaluate(None, y, 16, x=X)),
    ("fit", lambda m, X, y: m.fit(X, y, 32, 5)),
]


@pytest.mark.parametrize("kid,call", KERAS_POSITIONAL, ids=[k[0] for k in KERAS_POSITIONAL])
def test_kerass_positional_batch_size_is_named(kid, call):
    model, X, y, _ = _case("softmax", "float64")
    before = [p.copy() for p in model.params]
    with pytest.raises(TypeError, match=r"third positional argument is the loss.*"
                                        r"batch_size="):
        call(model, X, y)
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params))


BAD = [("zero", 0, ValueError), ("negative", -3, ValueError), ("float", 2.5, TypeError),
       ("string", "32", TypeError)]


@pytest.mark.parametrize("bid,batch_size,error", BAD, ids=[b[0] for b in BAD])
def test_a_bad_batch_size_is_named(bid, batch_size, error):
    model, X, y, _ = _case("softmax", "float64")
    with pytest.raises(error, match="batch_size"):
        model.evaluate(X, y, batch_size=batch_size)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_fit_validates_in_batches_of_validation_batch_size(weighted, dtype):
    model, X, y, _ = _case("softmax", dtype, n=80)
    Xv, yv = X[30:], y[30:]
    w = np.random.default_rng(4).uniform(0.0, 2.0, size=50) if weighted else None
    val = (Xv, yv) if w is None else (Xv, yv, w)
    h = model.fit(X[:30], y[:30], epochs=2, validation_data=val, metrics=[_top_share],
                  validation_batch_size=7)
    batched = model.evaluate(Xv, yv, sample_weight=w, batch_size=7, metrics=[_top_share])
    assert h["val_loss"][-1] == batched["loss"]              # the same batches
    assert h["val_loss"][-1] == pytest.approx(
        model.evaluate(Xv, yv, sample_weight=w).loss, rel=TOL[dtype])
    assert h["val_accuracy"][-1] == batched["accuracy"]
    assert h["val__top_share"][-1] == batched["_top_share"]


def test_fits_default_validation_batches_are_evaluates():
    # None: evaluate's default, so val_loss is evaluate's value bit for bit however
    # many rows validate
    model, X, y, _ = _case("softmax", "float32", n=4200)
    h = model.fit(X[:100], y[:100], epochs=1, validation_data=(X[100:], y[100:]))
    assert h["val_loss"][-1] == model.evaluate(X[100:], y[100:]).loss
    assert h["val_accuracy"][-1] == model.evaluate(X[100:], y[100:]).accuracy


@pytest.mark.parametrize("bid,batch_size,error", BAD, ids=[b[0] for b in BAD])
def test_a_bad_validation_batch_size_is_named(bid, batch_size, error):
    model, X, y, _ = _case("softmax", "float64")
    with pytest.raises(error, match="validation_batch_size"):
        model.fit(X, y, validation_split=0.2, validation_batch_size=batch_size)

