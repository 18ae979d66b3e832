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
from nnlib.optim import SGD, Adam


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


# model.get_weights() / set_weights() / count_params(), and model.history: Keras's verbs
# for moving weights between models and reading the last fit, which nnlib lacked
# (AttributeError)
def test_get_weights_are_copies_in_kerass_layout():
    model = _model()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 5), (5,), (5, 3), (3,)]   # kernel (in, out)
    assert all(np.array_equal(w, p) and w is not p for w, p in zip(weights, model.params))
    weights[0][...] = 7.0
    assert not np.any(model.params[0] == 7.0)
    assert model.count_params() == 3 * 5 + 5 + 5 * 3 + 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_set_weights_writes_in_place_and_keeps_the_optimizers_state(dtype):
    X, y = _data()
    src, dst = _model(dtype), nnlib.Sequential([nnlib.Dense(3, 5, "tanh", dtype=dtype),
                                                nnlib.Dense(5, 3, dtype=dtype)])
    dst.fit(X, y, optimizer=Adam(lr=0.01), epochs=1, verbose=0)
    arrays, moments = dst.params, dst.optimizer.state_dict()["state"]
    dst.set_weights([w.astype(np.float64) for w in src.get_weights()])   # cast to dtype
    assert all(a is b for a, b in zip(dst.params, arrays))
    assert all(p.dtype == dtype for p in dst.params)
    assert np.array_equal(dst.predict(X), src.predict(X))
    kept = dst.optimizer.state_dict()["state"]
    assert all(np.array_equal(kept[i][k], moments[i][k]) for i in moments
               for k in moments[i])


BAD_WEIGHTS = [
    ("too few", lambda w: w[:3], ValueError, "got 3 arrays; the model has 4"),
    ("too many", lambda w: w + [np.zeros(1)], ValueError, "got 5 arrays"),
    ("shape", lambda w: [w[0].T] + w[1:], nnlib.ShapeError,
     r"weights\[0\] has shape \(5, 3\); layers\[0\].W has \(3, 5\)"),
    ("nan", lambda w: w[:3] + [np.full(3, np.nan)], nnlib.NonFiniteError,
     r"weights\[3\] \(layers\[1\].b\)"),
    ("strings", lambda w: w[:1] + [np.array(["a"] * 5)] + w[2:], TypeError,
     r"weights\[1\] has dtype"),
    ("one array", lambda w: w[0], TypeError, "list of arrays"),
]


@pytest.mark.parametrize("bid,edit,error,match", BAD_WEIGHTS,
                         ids=[b[0] for b in BAD_WEIGHTS])
def test_set_weights_checks_everything_first(bid, edit, error, match):
    model = _model()
    before = model.get_weights()
    with pytest.raises(error, match=match):
        model.set_weights(edit([w + 1.0 for w in before]))
    assert all(np.array_equal(a, b) for a, b in zip(model.params, before))


def test_set_weights_refuses_a_value_float32_cannot_hold():
    model = _model("float32")
    weights = model.get_weights()
    weights[2] = np.full((5, 3), 1e39)
    with pytest.raises(nnlib.exceptions.DTypeRangeError, match=r"weights\[2\]"):
        model.set_weights(weights)


def test_model_history_is_the_last_fits():
    model, (X, y) = _model(), _data()
    assert model.history is None
    first = model.fit(X, y, optimizer=Adam(lr=0.01), epochs=2, verbose=0)
    assert model.history is first
    model.train_on_batch(X[:4], y[:4])                  # Keras's leaves it too
    assert model.history is first and first.epoch == [0, 1]
    second = model.fit(X, y, epochs=3, initial_epoch=2, verbose=0)
    assert model.history is second and model.history.history["loss"] == second["loss"]


def test_model_history_holds_the_epochs_of_an_interrupted_fit():
    from nnlib.callbacks import Callback

    class Interrupt(Callback):
        def on_epoch_end(self, epoch, logs=None):
            assert self.model.history.epoch[-1] == epoch     # visible while it runs
            if epoch == 1:
                raise KeyboardInterrupt

    model, (X, y) = _model(), _data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, optimizer=Adam(lr=0.01), epochs=5, callbacks=[Interrupt()])
    assert model.history.epoch == [0, 1] and len(model.history["loss"]) == 2


# EarlyStopping(verbose=1), ModelCheckpoint(save_weights_only=, initial_value_threshold=)
# and model.save_weights / load_weights: Keras's arguments and verbs, a TypeError or an
# AttributeError before
def test_early_stopping_verbose_says_when_it_stops_and_restores(capsys):
    from nnlib.callbacks import EarlyStopping
    X, y = _data()
    stop = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True, verbose=1)
    model = _model()
    # a rate so large the loss climbs after the first epochs
    h = model.fit(X, y, optimizer=Adam(lr=5.0), epochs=30, callbacks=[stop])
    out = capsys.readouterr().out
    assert h.stop_reason == "early_stopping"
    assert out == (f"Epoch {stop.stopped_epoch + 1}: early stopping\n"
                   f"Restoring model weights from the end of the best epoch: "
                   f"{stop.best_epoch + 1}.\n")
    quiet = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    _model().fit(X, y, optimizer=Adam(lr=5.0), epochs=30, callbacks=[quiet])
    assert capsys.readouterr().out == "" and quiet.stopped_epoch == stop.stopped_epoch


def test_fits_early_stopping_dict_takes_verbose(capsys):
    X, y = _data()
    h = _model().fit(X, y, optimizer=Adam(lr=5.0), epochs=30,
                     early_stopping={"monitor": "loss", "patience": 2, "verbose": 1})
    assert h.stop_reason == "early_stopping"
    assert capsys.readouterr().out.splitlines()[0] == \
        f"Epoch {h.epoch[-1] + 1}: early stopping"


def test_save_weights_and_load_weights_move_weights_in_place(tmp_path):
    X, y = _data()
    src = _model()
    src.fit(X, y, optimizer=Adam(lr=0.01), epochs=2)
    src.save_weights(tmp_path / "w.npz")
    dst = nnlib.Sequential([nnlib.Dense(3, 5, "tanh"), nnlib.Dense(5, 3)])
    arrays = dst.params
    dst.load_weights(tmp_path / "w.npz")
    assert all(a is b for a, b in zip(dst.params, arrays))
    assert np.array_equal(dst.predict(X), src.predict(X))
    other = nnlib.Sequential([nnlib.Dense(3, 4), nnlib.Dense(4, 3)])
    with pytest.raises(ValueError, match=r"w\.npz holds parameters of shapes .*; this "
                                         r"model's are \[\(3, 4\)"):
        other.load_weights(tmp_path / "w.npz")


def test_model_checkpoint_takes_kerass_save_weights_only_and_threshold(tmp_path):
    from nnlib.callbacks import ModelCheckpoint
    X, y = _data()
    path = tmp_path / "best.npz"
    # no epoch beats a loss of 0: nothing is saved
    never = ModelCheckpoint(path, monitor="loss", save_best_only=True,
                            save_weights_only=True, initial_value_threshold=0.0)
    _model().fit(X, y, optimizer=Adam(lr=0.01), epochs=3, callbacks=[never])
    assert not path.exists() and never.best == 0.0
    ckpt = ModelCheckpoint(path, monitor="loss", save_best_only=True,
                           save_weights_only=True, initial_value_threshold=10.0)
    model = _model()
    model.fit(X, y, optimizer=Adam(lr=0.01), epochs=3, callbacks=[ckpt])
    back = _model()
    back.load_weights(path)
    assert ckpt.best < 10.0 and np.array_equal(back.predict(X), model.predict(X))
    with pytest.raises(ValueError,
                       match=r"save_weights_only=True .*\(include_optimizer=True\)"):
        ModelCheckpoint(path, save_weights_only=True, include_optimizer=True)


# fit(class_weight=...) and train_on_batch(class_weight=...): Keras's weighting of the
# training loss by class (a TypeError before)
CLASS_WEIGHTS = [("two", {0: 2.0, 2: 0.5}), ("all", {0: 1.0, 1: 3.0, 2: 0.25}),
                 ("zero", {1: 0.0}), ("numpy keys", {np.int64(1): 4.0})]


@pytest.mark.parametrize("cid,class_weight", CLASS_WEIGHTS,
                         ids=[c[0] for c in CLASS_WEIGHTS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_class_weight_is_the_sample_weight_of_each_rows_class(cid, class_weight, dtype):
    X, y = _data(30)
    X = X.astype(dtype)
    per_row = np.array([class_weight.get(c, 1.0) for c in range(3)])[y]
    rw = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    runs = []
    for kwargs in ({"class_weight": class_weight}, {"sample_weight": per_row},
                   {"class_weight": class_weight, "sample_weight": rw},
                   # the product of the weights as checked, in the model's dtype
                   {"sample_weight": per_row * rw.astype(dtype)}):
        model = _model(dtype)
        h = model.fit(X, y, optimizer=Adam(lr=0.01), epochs=3, batch_size=8,
                      validation_split=0.2, random_state=0, **kwargs)
        runs.append((h["loss"], h["val_loss"], model.get_weights(), model, kwargs))
    for a, b in (runs[:2], runs[2:]):
        assert a[0] == b[0]                                 # the same steps, bit for bit
        assert all(np.array_equal(u, v) for u, v in zip(a[2], b[2]))
    # the validation loss: class_weight weighs the training rows alone (Keras's), and
    # the held-out rows' sample weights weigh it (Keras 3 splits them with the rows)
    for _, val_loss, _, model, kwargs in runs:
        w = kwargs.get("sample_weight")
        assert val_loss[-1] == model.evaluate(
            X[-6:], y[-6:], sample_weight=None if w is None else w[-6:]).loss


def test_class_weight_of_a_binary_logistic_model():
    X, y = _data(16)
    yb = (y > 0).astype(np.float64)[:, None]
    a = nnlib.Sequential([nnlib.Dense(3, 1, random_state=0)])
    b = nnlib.Sequential([nnlib.Dense(3, 1, random_state=0)])
    ha = a.fit(X, yb, loss="logistic_loss", class_weight={1: 3.0}, epochs=2, random_state=0)
    hb = b.fit(X, yb, loss="logistic_loss", sample_weight=np.where(yb[:, 0] > 0, 3.0, 1.0),
               epochs=2, random_state=0)
    assert ha["loss"] == hb["loss"]
    c = nnlib.Sequential([nnlib.Dense(3, 1, random_state=0)])
    assert c.train_on_batch(X, yb, loss="logistic_loss", class_weight={1: 3.0}) == \
        hb["loss"][0]


BAD_CLASS_WEIGHTS = [
    ("class 3", {3: 1.0}, ValueError, "class_weight has class 3; .* classes 0..2"),
    ("negative", {0: -1.0}, ValueError, r"class_weight\[0\] must be >= 0"),
    ("string key", {"cat": 1.0}, TypeError, "keys are class indices"),
    ("list", [1.0, 2.0, 3.0], TypeError, r"must be a dict \{class: weight\}"),
]


@pytest.mark.parametrize("bid,class_weight,error,match", BAD_CLASS_WEIGHTS,
                         ids=[b[0] for b in BAD_CLASS_WEIGHTS])
def test_a_bad_class_weight_is_named(bid, class_weight, error, match):
    X, y = _data()
    with pytest.raises(error, match=match):
        _model().fit(X, y, class_weight=class_weight)


def test_class_weight_needs_classes():
    X, y = _data()
    with pytest.raises(ValueError, match="squared_error has targets, not classes"):
        _model().fit(X, np.zeros((len(y), 3)), loss="squared_error", class_weight={0: 1.0})
    with pytest.raises(ValueError, match="logistic_loss with several outputs is multi"):
        _model().fit(X, np.zeros((len(y), 3)), loss="logistic_loss", class_weight={0: 1.0})


def test_history_has_kerass_params_and_model():
    # Keras's History.params and History.model (AttributeError before)
    model, (X, y) = _model(), _data(20)
    opt = Adam(lr=0.01)
    h = model.fit(X, y, optimizer=opt, epochs=3, batch_size=8, metrics=["accuracy"])
    assert h.model is model
    assert h.params == {"verbose": 0, "epochs": 3, "batch_size": 8, "steps": 3,
                        "metrics": ["accuracy", "loss"], "optimizer": opt}
    assert nnlib.callbacks.History().params == {}


class _ReadsVerbose(nnlib.callbacks.Callback):
    """What Keras 3's ProgbarLogger.set_params does first: params["verbose"]."""

    def set_params(self, params):
        super().set_params(params)
        self.verbose = 1 if params["verbose"] == "auto" else params["verbose"]


@pytest.mark.parametrize("verbose,seen", [(0, 0), (2, 2), ("auto", 1), (True, 1)])
def test_callbacks_read_the_fits_verbose_in_params_as_kerass(capsys, verbose, seen):
    # Keras 3's fit hands its callbacks {"verbose", "epochs", "steps"}; nnlib's params
    # had no "verbose" (KeyError in a callback ported from Keras). The value is the one
    # given, as Keras 3's CallbackList(verbose=verbose) passes it on: nnlib converted
    # "auto" and True to 1 (keras/src/backend/*/trainer.py, callbacks/progbar_logger.py)
    model, (X, y) = _model(), _data(20)
    cb = _ReadsVerbose()
    h = model.fit(X, y, epochs=1, verbose=verbose, callbacks=[cb])
    assert cb.verbose == seen
    assert h.params["verbose"] is verbose and cb.params["verbose"] is verbose


# Keras's keyword names of the rows: fit(x=X, y=Y), evaluate(x=, y=), predict(x=) and
# the one-batch verbs (TypeError "unexpected keyword argument 'x'" before); nnlib's X
# stays, positional and by keyword
X_KEYWORD_VERBS = [("predict", False), ("predict_proba", False),
                   ("predict_on_batch", False), ("evaluate", True), ("test_on_batch", True)]


@pytest.mark.parametrize("verb,takes_y", X_KEYWORD_VERBS, ids=[v[0] for v in X_KEYWORD_VERBS])
def test_kerass_x_keyword_gives_what_x_gives(verb, takes_y):
    model, (X, y) = _model(), _data()
    call = getattr(model, verb)
    positional = call(X, y) if takes_y else call(X)
    for kwargs in ({"x": X}, {"X": X}):
        got = call(**kwargs, y=y) if takes_y else call(**kwargs)
        if isinstance(positional, np.ndarray):
            assert np.array_equal(got, positional)
        else:
            assert got == positional


@pytest.mark.parametrize("verb", ["fit", "train_on_batch"])
def test_kerass_fit_x_y_trains_as_positional(verb):
    X, y = _data()
    kw = {"epochs": 3, "batch_size": 4, "random_state": 0} if verb == "fit" else {}
    models = [_model() for _ in range(3)]
    results = [getattr(models[0], verb)(X, y, optimizer=Adam(lr=0.01), **kw),
               getattr(models[1], verb)(x=X, y=y, optimizer=Adam(lr=0.01), **kw),
               getattr(models[2], verb)(X=X, y=y, optimizer=Adam(lr=0.01), **kw)]
    for m in models[1:]:
        assert all(np.array_equal(p, q) for p, q in zip(models[0].params, m.params))
    if verb == "fit":
        assert results[0]["loss"] == results[1]["loss"] == results[2]["loss"]
    else:
        assert results[0] == results[1] == results[2]


X_KEYWORD_MISTAKES = [("both", {"x": "rows", "X": "rows"}, "got both X and x="),
                      ("neither", {}, "missing its input rows X"),
                      ("no-y", {"x": "rows", "y": None}, "missing its targets y")]
X_KEYWORD_CASES = [(verb, *m) for verb in ("fit", "evaluate", "train_on_batch",
                                          "test_on_batch", "predict")
                   for m in X_KEYWORD_MISTAKES if not (verb == "predict" and m[0] == "no-y")]


@pytest.mark.parametrize("verb,mid,given,match", X_KEYWORD_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in X_KEYWORD_CASES])
def test_kerass_x_keyword_mistakes_are_named(verb, mid, given, match):
    model, (X, y) = _model(), _data()
    kwargs = {k: (X if v == "rows" else v) for k, v in given.items()}
    if verb != "predict" and "y" not in kwargs:
        kwargs["y"] = y
    before = [p.copy() for p in model.params]
    with pytest.raises(TypeError, match=f"{verb}\\(\\) .*{match}"):
        getattr(model, verb)(**kwargs)
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params))


# Keras 3's validation_data=(x, y, sample_weight) raised "validation_data must be a pair"
# (probe35). The weights weigh val_loss as evaluate's sample_weight does; the accuracy
# stays unweighted, as Keras's metrics.
def test_validation_data_takes_kerass_sample_weights():
    X, y = _data(40)
    Xv, yv = X[:10], y[:10]
    w = np.r_[np.zeros(5), np.linspace(1.0, 2.0, 5)]
    model = _model()
    history = model.fit(X, y, epochs=1, validation_data=(Xv, yv, w))
    assert history["val_loss"][0] == model.evaluate(Xv, yv, sample_weight=w).loss
    assert history["val_loss"][0] != model.evaluate(Xv, yv).loss
    assert history["val_accuracy"][0] == model.evaluate(Xv, yv).accuracy
    unweighted = model.fit(X, y, epochs=1, validation_data=(Xv, yv, None))
    assert unweighted["val_loss"][0] == model.evaluate(Xv, yv).loss


# Keras 3 splits (x, y, sample_weight) alike for validation_split, and weighs its
# val_loss by the held-out rows' weights; nnlib dropped them (an unweighted val_loss).
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_validation_split_weighs_val_loss_by_the_held_out_weights(dtype):
    X, y = _data(40)
    w = np.random.default_rng(2).uniform(0.0, 2.0, size=40)
    split, given = _model(dtype), _model(dtype)
    h = split.fit(X, y, epochs=2, sample_weight=w, validation_split=0.25, shuffle=False)
    h_given = given.fit(X[:30], y[:30], epochs=2, sample_weight=w[:30], shuffle=False,
                        validation_data=(X[30:], y[30:], w[30:]))
    assert h["loss"] == h_given["loss"] and h["val_loss"] == h_given["val_loss"]
    assert h["val_loss"][-1] == split.evaluate(X[30:], y[30:], sample_weight=w[30:]).loss
    assert h["val_loss"][-1] != split.evaluate(X[30:], y[30:]).loss


def test_validation_split_refuses_held_out_weights_that_are_all_zero():
    # Keras 3 logs val_loss 0.0 here (sum_over_batch_size: 0 / rows) every epoch;
    # nnlib's weighted mean is 0 / 0, refused, the message saying why and what to give
    X, y = _data(40)
    w = np.r_[np.ones(30), np.zeros(10)]
    model = _model()
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=r"holds out the last 10 rows, whose sample "
                                         r"weights are all 0: .* is then 0 / 0 "
                                         r"\(Keras 3 would log 0.0.*not all 0, or "
                                         r"validation_data"):
        model.fit(X, y, sample_weight=w, validation_split=0.25)
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params))


@pytest.mark.parametrize("data, error, match", [
    (lambda Xv, yv: (Xv, yv, np.ones(3)), ValueError,
     r"validation_data's sample weights: .*\(3,\)"),
    (lambda Xv, yv: (Xv, yv, -np.ones(len(yv))), ValueError,
     "validation_data's sample weights: Negative"),
    (lambda Xv, yv: (Xv, yv, None, None), TypeError, "or Keras's triple"),
    (lambda Xv, yv: (Xv,), TypeError, "or Keras's triple"),
], ids=["short", "negative", "four", "one"])
def test_bad_validation_weights_are_named(data, error, match):
    X, y = _data(40)
    with pytest.raises(error, match=match):
        _model().fit(X, y, validation_data=data(X[:10], y[:10]))


# set_weights wrote the arrays one by one in its own loop: an interrupt (Ctrl-C) landing
# between two left the model with some layers' new weights and the others' old, a model
# nobody saved (probe35, an interrupt injected at each line of set_weights). Now the
# copies, once begun, all run and the interrupt follows.
def test_an_interrupted_set_weights_leaves_all_old_or_all_new_weights():
    import sys
    model = nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=0),
                              nnlib.Dense(5, 5, random_state=1),
                              nnlib.Dense(5, 3, random_state=2)])
    old = model.get_weights()
    new = [w + 1.0 for w in old]
    code = nnlib.Sequential.set_weights.__code__
    outcomes, k = set(), 0
    while True:
        k += 1
        seen = [0]

        def interrupt_at_kth_line(frame, event, arg):
            if frame.f_code is code and event == "line":
                seen[0] += 1
                if seen[0] == k:
                    raise KeyboardInterrupt
            return interrupt_at_kth_line
        model.set_weights(old)
        sys.settrace(interrupt_at_kth_line)
        try:
            model.set_weights(new)
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sys.settrace(None)
        now = model.get_weights()
        if all(np.array_equal(a, b) for a, b in zip(now, old)):
            outcomes.add("old")
        else:
            assert all(np.array_equal(a, b) for a, b in zip(now, new)), k
            outcomes.add("new")
        if not interrupted:
            break
    assert outcomes == {"old", "new"} and k > 5


def test_batch_size_none_takes_the_default_as_kerass():
    # Keras's fit and predict take batch_size=None as "the default" (32 for fit);
    # ported code passes it through from a config. Before: TypeError "batch_size must
    # be an integer; got None"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(70, 3))
    y = (X[:, 0] > 0).astype(np.int64)

    def model():
        return nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                                 nnlib.Dense(4, 2, random_state=1)])
    a, b = model(), model()
    ha = a.fit(X, y, optimizer=SGD(lr=0.1), epochs=2, batch_size=None, random_state=0)
    hb = b.fit(X, y, optimizer=SGD(lr=0.1), epochs=2, batch_size=32, random_state=0)
    assert ha.params["batch_size"] == 32 and ha.params["steps"] == 3
    assert ha["loss"] == hb["loss"]
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    assert np.array_equal(a.predict(X, batch_size=None), a.predict(X))
    assert np.array_equal(a.predict_proba(X, batch_size=None), a.predict_proba(X))
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        a.predict(X, batch_size=2.0)
