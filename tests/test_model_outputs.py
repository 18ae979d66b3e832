"""What a trained Sequential gives back: probabilities, evaluate's named metrics and its
default loss, score, summary, and the metrics fit logs."""
import numpy as np
import pytest

import nnlib
import nnlib.functional as F
from nnlib.optim import Adam

LOSS_MAPS = [("softmax_cross_entropy", F.softmax), ("sparsemax_loss", F.sparsemax),
             ("logistic_loss", F.sigmoid)]


def _data(n=40, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.argmax(X[:, :classes] + 0.3 * rng.normal(size=(n, classes)), axis=1)
    return X, y


def _model(n_out=3, dtype=np.float64):
    return nnlib.Sequential([nnlib.Dense(4, 6, "tanh", random_state=0, dtype=dtype),
                             nnlib.Dense(6, n_out, random_state=1, dtype=dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("loss, output_map", LOSS_MAPS, ids=[l for l, _ in LOSS_MAPS])
def test_predict_proba_is_the_output_map_of_the_trained_loss(loss, output_map, dtype):
    X, y = _data()
    model = _model(dtype=dtype)
    if loss == "logistic_loss":
        y = np.eye(3, dtype=int)[y]                       # multilabel 0/1 targets
    model.fit(X, y, loss=loss, epochs=2)
    assert model.loss == loss
    P = model.predict_proba(X)
    assert P.dtype == dtype and P.shape == (40, 3)
    np.testing.assert_array_equal(P, output_map(model.predict(X)))
    if loss != "logistic_loss":
        np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("loss", ["squared_error", "hinge_loss"])
def test_predict_proba_refuses_losses_without_probabilities(loss):
    X, y = _data()
    model = _model()
    target = np.eye(3)[y] if loss == "squared_error" else y
    model.fit(X, target, loss=loss, epochs=1)
    with pytest.raises(ValueError, match="defines no probabilities"):
        model.predict_proba(X)
    # asked for explicitly, another loss's map is used
    assert model.predict_proba(X, loss="softmax_cross_entropy").shape == (40, 3)


def test_evaluate_defaults_to_the_trained_loss_and_names_its_results():
    X, y = _data()
    target = np.eye(3)[y]
    model = _model()
    model.fit(X, target, loss="squared_error", epochs=2)
    result = model.evaluate(X, target)              # no loss given: squared_error
    assert result == model.evaluate(X, target, loss="squared_error")
    assert result.accuracy is None and result.loss > 0
    loss, acc = result                              # still unpacks as a pair
    assert loss == result.loss
    d = model.evaluate(X, target, metrics=["mse", "mae"])
    assert d["loss"] == result.loss
    pred = model.predict(X)
    assert d["mse"] == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)
    assert d["mae"] == pytest.approx(np.mean(np.abs(pred - target)), rel=1e-12)
    # an untrained model: softmax cross-entropy
    fresh = _model()
    assert fresh.loss is None
    assert fresh.evaluate(X, y) == fresh.evaluate(X, y, loss="softmax_cross_entropy")


def test_evaluate_return_dict_and_user_metrics_get_probabilities():
    X, y = _data()
    model = _model()
    model.fit(X, y, epochs=2)
    seen = {}

    def top1(y_true, y_pred):
        seen["rows"] = np.asarray(y_pred).sum(axis=1)
        return float(np.mean(np.argmax(y_pred, axis=1) == y_true))

    d = model.evaluate(X, y, metrics=[top1], return_dict=True)
    assert set(d) == {"loss", "accuracy", "top1"}
    assert d["top1"] == d["accuracy"]
    np.testing.assert_allclose(seen["rows"], 1, rtol=1e-12)     # softmax rows


@pytest.mark.parametrize("metrics, loss, error, match", [
    (["accuracy"], "squared_error", ValueError, "classification loss"),
    (["mse"], "softmax_cross_entropy", ValueError, "real-valued"),
    (["f1"], "softmax_cross_entropy", ValueError, "unknown metric"),
    ([lambda a, b: 0.0], "softmax_cross_entropy", ValueError, "needs a name"),
    ([3], "softmax_cross_entropy", TypeError, "names or callables"),
    (["accuracy", "acc"], "softmax_cross_entropy", ValueError, "unique"),
], ids=["accuracy-regression", "mse-classification", "unknown", "lambda", "number",
        "duplicate"])
def test_bad_metrics_are_refused_before_training(metrics, loss, error, match):
    X, y = _data()
    model = _model()
    before = [p.copy() for p in model.params]
    target = np.eye(3)[y] if loss == "squared_error" else y
    with pytest.raises(error, match=match):
        model.fit(X, target, loss=loss, epochs=1, metrics=metrics)
    for a, b in zip(before, model.params):
        np.testing.assert_array_equal(a, b)


def test_fit_logs_training_and_validation_metrics():
    X, y = _data(60)
    model = _model()

    def worst_class_recall(y_true, y_pred):
        pred = np.argmax(y_pred, axis=1)
        return min(float(np.mean(pred[y_true == c] == c)) for c in np.unique(y_true))

    hist = model.fit(X, y, optimizer=Adam(lr=0.02), epochs=4, validation_split=0.25,
                     metrics=["accuracy", worst_class_recall])
    for key in ("accuracy", "worst_class_recall", "val_accuracy", "val_loss",
                "val_worst_class_recall"):
        assert len(hist[key]) == 4, key
    # the training metrics are those of the epoch's final weights on the training rows
    X_tr, y_tr = X[:45], y[:45]
    assert hist["accuracy"][-1] == model.evaluate(X_tr, y_tr).accuracy
    assert hist["val_accuracy"][-1] == model.evaluate(X[45:], y[45:]).accuracy
    assert hist["worst_class_recall"][-1] == worst_class_recall(
        y_tr, model.predict_proba(X_tr))


def test_metrics_can_be_monitored_by_early_stopping():
    X, y = _data(60)
    hist = _model().fit(X, y, optimizer=Adam(lr=0.0), epochs=10, metrics=["accuracy"],
                        early_stopping=dict(monitor="accuracy", patience=1))
    assert hist.stop_reason == "early_stopping" and hist.epochs == 2


def test_score_is_accuracy_or_r2():
    X, y = _data()
    model = _model()
    model.fit(X, y, epochs=2)
    assert model.score(X, y) == np.mean(model.predict(X).argmax(axis=1) == y)
    target = np.column_stack([X[:, 0], 2 * X[:, 1], np.full(len(X), 3.0)])
    reg = _model()
    reg.fit(X, target, loss="squared_error", epochs=3)
    pred = reg.predict(X)
    r2 = [1 - ((target[:, j] - pred[:, j]) ** 2).sum()
          / ((target[:, j] - target[:, j].mean()) ** 2).sum() for j in range(2)]
    r2.append(0.0)                      # a constant column not predicted exactly: 0
    assert reg.score(X, target) == pytest.approx(np.mean(r2), rel=1e-12)
    metrics = pytest.importorskip("sklearn.metrics")
    assert reg.score(X, target) == pytest.approx(metrics.r2_score(target, pred),
                                                 rel=1e-12)


def test_score_of_a_poisson_model_is_r2_of_the_predicted_mean():
    # it returned None (evaluate's accuracy); MLPRegressor(loss="poisson").score, as
    # scikit-learn's, is R^2 of its prediction, the mean exp(z) of the log-mean z
    X, _ = _data()
    counts = np.random.default_rng(1).poisson(np.exp(0.5 * X[:, :3]))
    reg = _model()
    reg.fit(X, counts, loss="poisson_loss", optimizer=Adam(lr=0.01), epochs=5)
    mean = np.exp(reg.predict(X))
    r2 = [1 - ((counts[:, j] - mean[:, j]) ** 2).sum()
          / ((counts[:, j] - counts[:, j].mean()) ** 2).sum() for j in range(3)]
    score = reg.score(X, counts)
    assert isinstance(score, float) and score == pytest.approx(np.mean(r2), rel=1e-12)


def test_summary_lists_layers_and_totals():
    model = nnlib.Sequential([nnlib.Dense(64, 100, "relu"), nnlib.Dense(100, 10)])
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Dense(64 -> 100, relu)" in text and "6,500" in text and "1,010" in text
    assert "total params: 7,510" in text
    model.loss = "softmax_cross_entropy"
    model.summary(print_fn=lines.append)
    assert "trained with softmax_cross_entropy" in lines[1]


def test_accuracy_metric_needs_a_classification_loss():
    """poisson_loss, like squared_error, has no accuracy: asked for, it is refused before
    training (it was logged as None every epoch)."""
    model = nnlib.Sequential([nnlib.Dense(2, 1, random_state=0)])
    for loss, y in (("poisson_loss", [[1.0], [2.0]]), ("squared_error", [[1.0], [2.0]])):
        with pytest.raises(ValueError, match=f"accuracy needs a classification loss; {loss}"):
            model.fit(np.eye(2), y, loss=loss, metrics=["accuracy"])


# A user metric is handed read-only views. Before (probe34) it got the fit's own label
# array and the outputs the next metric reads: a metric writing into y_true (an in-place
# normalisation) made the next step raise "y changed during training", and one writing
# into y_pred changed the accuracy reported beside it (evaluate: 0.0 for 0.26).
def _writes_true(y_true, y_pred):
    y_true[...] = 99
    return 1.0


def _writes_pred(y_true, y_pred):
    np.clip(y_pred, 0.4, 0.6, out=y_pred)
    return 1.0


@pytest.mark.parametrize("metric", [_writes_true, _writes_pred], ids=["y_true", "y_pred"])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "squared_error"])
@pytest.mark.parametrize("where", ["fit", "fit-validation", "evaluate"])
def test_a_metric_writing_into_its_arguments_is_named_and_changes_nothing(metric, loss,
                                                                           where):
    X, y = _data()
    if loss == "squared_error":
        y = np.eye(3)[y]
    model = _model()
    before = [p.copy() for p in model.params]
    y_given = y.copy()
    builtin = "mse" if loss == "squared_error" else "accuracy"
    with pytest.raises(ValueError, match=f"metric '{metric.__name__}' writes into its "
                                         f"arguments"):
        if where == "evaluate":
            model.evaluate(X, y, loss=loss, metrics=[metric, builtin])
        else:
            model.fit(X, y, loss=loss, epochs=2, metrics=[metric], validation_split=0.25
                      if where == "fit-validation" else 0.0)
    np.testing.assert_array_equal(y, y_given)
    want = model.evaluate(X, y, loss=loss, metrics=[builtin])
    twin = _model()
    for p, q in zip(twin.params, model.params):
        p[...] = q
    assert twin.evaluate(X, y, loss=loss, metrics=[builtin]) == want
    if where == "evaluate":
        for p, q in zip(model.params, before):
            np.testing.assert_array_equal(p, q)
