"""Sample weights: the compiled epoch and loss_grad against their NumPy twin and finite
differences, the estimators against scikit-learn's MLP (1e-12, every solver, both
estimators, early stopping), and scikit-learn's errors for bad weights.

scikit-learn 1.9's normalisation (``_backprop``): a batch's loss is
``np.average(L_i, weights=w)`` plus ``alpha / (2 sum w) ||W||^2``; its gradient
``(H^T (delta * w) + alpha W) / sum w``. Without weights ``sum w`` is the batch length.
"""
import warnings

import numpy as np
import pytest

import nnlib
from nnlib import MLPClassifier, MLPRegressor
from nnlib import optim as O
from nnlib._codes import LOSS_CODES
from nnlib._reference import train as twin
from nnlib._validation import check_sample_weight
from nnlib.training import compiled_train
from tests._twin_fit import make_setup
from tests.conftest import central_diff
from tests.test_train_twin import _assert_close, _copy, _data, _model, _n_out

compiled = compiled_train()
LOSSES = list(LOSS_CODES)
N = 13


def _weights(seed=3):
    w = np.random.default_rng(seed).uniform(0.0, 3.0, N)
    w[4] = 0.0                                    # a zero weight is allowed
    return w


# ---------------------------------------------------------------- compiled vs twin


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch", [1, 5, N], ids=["batch-1", "batch-5", "full"])
def test_weighted_epoch_matches_the_twin(loss, dtype, batch):
    model = _model(["tanh", "relu"], _n_out(loss), dtype)
    X, y = _data(loss, _n_out(loss))
    w = _weights()
    order = np.random.default_rng(2).permutation(N).astype(np.int64)
    runs = []
    for module in (compiled, twin):
        m = _copy(model)
        opt = O.SklearnAdam(lr=0.01)
        setup = make_setup(module, m, X, y, loss, optimizer=opt, batch_size=batch,
                           l2=0.3, l2_per_batch=True, sample_weight=w)
        runs.append((module.run_epoch(setup, order, 0), [p.copy() for p in m.params]))
    (got, got_p), (want, want_p) = runs
    assert got[1:] == want[1:]
    _assert_close(got[0], want[0], dtype, "loss_sum")
    for i, (a, b) in enumerate(zip(got_p, want_p)):
        _assert_close(a, b, dtype, f"param {i}")


@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_loss_grad_matches_the_twin_and_finite_differences(loss):
    model = _model(["tanh", "sigmoid"], _n_out(loss), np.float64)
    X, y = _data(loss, _n_out(loss))
    w = _weights()

    def loss_grad(module, m):
        setup = make_setup(module, m, X, y, loss, l2=0.1, sample_weight=w)
        dWs = [np.empty_like(l.W) for l in m.layers]
        dbs = [np.empty_like(l.b) for l in m.layers]
        value, status = module.loss_grad(setup, dWs, dbs)
        return value, status, [g for pair in zip(dWs, dbs) for g in pair]

    value, status, grads = loss_grad(compiled, model)
    want, want_status, want_grads = loss_grad(twin, _copy(model))
    assert status == want_status == 0
    _assert_close(value, want, np.float64, "loss")
    for g, gw in zip(grads, want_grads):
        _assert_close(g, gw, np.float64, "gradient")
    for i, p in enumerate(model.params):
        def loss_at(v, p=p):
            saved = p.copy()
            p[...] = v
            try:
                return loss_grad(compiled, model)[0]
            finally:
                p[...] = saved
        np.testing.assert_allclose(grads[i], central_diff(loss_at, p, h=1e-5),
                                   rtol=1e-6, atol=1e-8, err_msg=f"parameter {i}")


def test_integer_weights_equal_repeated_rows():
    """Full batch: weight k is k copies of the row (the weighted mean's definition)."""
    model = _model(["tanh", "relu"], 3, np.float64)
    X, y = _data("softmax_cross_entropy", 3)
    w = np.random.default_rng(0).integers(1, 4, N)
    rep = np.repeat(np.arange(N), w)

    def value(Xs, ys, **kw):
        setup = make_setup(compiled, model, Xs, ys, "softmax_cross_entropy", l2=0.2, **kw)
        dWs = [np.empty_like(l.W) for l in model.layers]
        dbs = [np.empty_like(l.b) for l in model.layers]
        return compiled.loss_grad(setup, dWs, dbs)[0], dWs + dbs

    got, got_g = value(X, y, sample_weight=w)
    want, want_g = value(X[rep], y[rep])
    assert got == pytest.approx(want, rel=1e-13)
    for a, b in zip(got_g, want_g):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_unweighted_setups_are_untouched_by_the_weighted_branch():
    """sample_weight=None reads no weight: the same bits as before weights existed
    (tests/test_estimators_sklearn.py's bitwise configs check the estimators)."""
    model = _model(["relu", "relu"], 3, np.float64)
    X, y = _data("softmax_cross_entropy", 3)
    outs = []
    for kw in ({}, {"sample_weight": None}):
        m = _copy(model)
        setup = make_setup(compiled, m, X, y, "softmax_cross_entropy",
                           optimizer=O.SklearnSGD(lr=0.1), batch_size=5, **kw)
        outs.append((compiled.run_epoch(setup, np.arange(N), 0), m.params))
    assert outs[0][0] == outs[1][0]
    for a, b in zip(outs[0][1], outs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_setup_owns_a_checked_copy_of_the_weights():
    model = _model(["tanh", "tanh"], 3, np.float32)
    X, y = _data("softmax_cross_entropy", 3)
    w = _weights()
    setup = make_setup(compiled, model, X, y, "softmax_cross_entropy", sample_weight=w)
    assert setup.sample_weight is not w and setup.sample_weight.dtype == np.float32
    w[:] = -1.0                                   # the caller's array, not the setup's
    assert (setup.sample_weight >= 0).all()
    setup.set_data(setup.X, setup.y_target, setup.y_label)
    assert setup.sample_weight is None
    for module in (compiled, twin):
        with pytest.raises(ValueError, match="sample_weight.shape"):
            make_setup(module, model, X, y, "softmax_cross_entropy",
                       sample_weight=np.ones(N - 1))


# ---------------------------------------------------------------- bad weights

BAD_WEIGHTS = [
    ("negative", np.r_[-1.0, np.ones(N - 1)], ValueError, "Negative values"),
    ("nan", np.r_[np.nan, np.ones(N - 1)], ValueError, "contains NaN"),
    ("inf", np.r_[np.inf, np.ones(N - 1)], ValueError, "contains infinity"),
    ("wrong-length", np.ones(N + 1), ValueError, r"sample_weight.shape == \(14,\)"),
    ("2-d", np.ones((N, 1)), ValueError, "Sample weights must be 1D array or scalar"),
    ("all-zero", np.zeros(N), ValueError, "at least one non-zero"),
    ("strings", np.array(["a"] * N), TypeError, "must hold numbers"),
    # a flag in the weights' place: NumPy's view of it spoke of a "0D array"
    ("bool", True, TypeError,
     r"^sample_weight must be array_like of numbers or a number, got bool \(True\)$"),
    ("numpy-bool", np.False_, TypeError, "array_like of numbers or a number, got bool"),
]


@pytest.mark.parametrize("w, exc, match", [c[1:] for c in BAD_WEIGHTS],
                         ids=[c[0] for c in BAD_WEIGHTS])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_bad_weights_get_scikit_learns_errors(w, exc, match, solver):
    X, y = _data("softmax_cross_entropy", 3)
    with pytest.raises(exc, match=match):
        MLPClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=2).fit(
            X, y, sample_weight=w)


def test_bad_weight_messages_are_scikit_learns():
    validation = pytest.importorskip("sklearn.utils.validation")
    X = np.ones((N, 2))
    for name, w, _, _ in BAD_WEIGHTS:
        if name in ("negative", "strings", "bool", "numpy-bool"):
            continue        # not checked by its MLP / its wording / a weight of 1 there
        with pytest.raises(ValueError) as theirs:
            validation._check_sample_weight(w, X)
        with pytest.raises(ValueError) as ours:
            check_sample_weight(w, N, np.float64)
        assert str(ours.value) == str(theirs.value), name
    assert check_sample_weight(2.5, 3, np.float32).tolist() == [2.5] * 3


# ---------------------------------------------------------------- vs scikit-learn

def _sklearn():
    return pytest.importorskip("sklearn.neural_network")


def _both(ours, theirs, X, y, w, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ours(**params).fit(X, y, sample_weight=w), \
            theirs(**params).fit(X, y, sample_weight=w)


def _same(a, b, tol=1e-12):
    for name in ("coefs_", "intercepts_"):
        for u, v in zip(getattr(a, name), getattr(b, name)):
            np.testing.assert_allclose(u, v, rtol=0, atol=tol)
    assert a.n_iter_ == b.n_iter_
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-10, abs=tol)
    if getattr(b, "validation_scores_", None) is not None:
        np.testing.assert_allclose(a.validation_scores_, b.validation_scores_,
                                   rtol=0, atol=tol)


SK_CASES = [
    dict(solver="sgd"),
    dict(solver="sgd", momentum=0.0, alpha=0.01),
    dict(solver="adam", batch_size=7),
    dict(solver="lbfgs"),
    dict(solver="adam", early_stopping=True, validation_fraction=0.2),
    dict(solver="sgd", early_stopping=True, batch_size=9),
]
TARGETS = ["binary", "multiclass", "multilabel", "regression", "multi-output"]


def _problem(kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((60, 5))
    w = rng.uniform(0.0, 2.0, 60)
    w[::7] = 0.0
    if kind == "binary":
        return X, (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int), w
    if kind == "multiclass":
        return X, np.digitize(X[:, 0], [-0.5, 0.5]), w
    if kind == "multilabel":
        return X, (X[:, :3] > 0).astype(int), w
    if kind == "regression":
        return X, X @ rng.standard_normal(5), w
    return X, X @ rng.standard_normal((5, 2)), w


@pytest.mark.parametrize("params", SK_CASES, ids=lambda p: "-".join(
    f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("kind", TARGETS)
def test_weighted_fit_equals_scikit_learns(kind, params):
    nn = _sklearn()
    X, y, w = _problem(kind)
    regress = kind in ("regression", "multi-output")
    if params.get("early_stopping") and kind == "multilabel":
        pytest.skip("covered by the multiclass case (no stratification either way)")
    ours, theirs = (MLPRegressor, nn.MLPRegressor) if regress else \
        (MLPClassifier, nn.MLPClassifier)
    a, b = _both(ours, theirs, X, y, w, hidden_layer_sizes=(6,), max_iter=15,
                 random_state=1, **params)
    _same(a, b)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_weighted_partial_fit_equals_scikit_learns(kind):
    nn = _sklearn()
    X, y, w = _problem(kind)
    if kind == "multiclass":
        a, b = MLPClassifier(random_state=0), nn.MLPClassifier(random_state=0)
        for _ in range(3):
            a.partial_fit(X, y, w, classes=[0, 1, 2])
            b.partial_fit(X, y, w, classes=[0, 1, 2])
    else:
        a, b = MLPRegressor(random_state=0), nn.MLPRegressor(random_state=0)
        for _ in range(3):
            a.partial_fit(X, y, w)
            b.partial_fit(X, y, w)
    _same(a, b)


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_a_batch_of_zero_weights_raises_as_in_scikit_learn(engine):
    X, y, _ = _problem("binary")
    w = np.ones(len(y))
    w[:3] = 0.0
    est = MLPClassifier(batch_size=1, shuffle=False, max_iter=1)
    est._engine = engine
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        est.fit(X, y, sample_weight=w)


def test_unit_weights_train_the_unweighted_model():
    X, y, _ = _problem("multiclass")
    a = MLPClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=0)
    b = MLPClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.fit(X, y)
        b.fit(X, y, sample_weight=np.ones(len(y)))
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_weighted_compiled_estimator_matches_the_numpy_reference(solver):
    X, y, w = _problem("binary")
    models = []
    for engine in ("compiled", "numpy"):
        est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=8, solver=solver,
                            random_state=0)
        est._engine = engine
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models.append(est.fit(X, y, sample_weight=w))
    for u, v in zip(models[0].coefs_, models[1].coefs_):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- Sequential.fit


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_sequential_fit_weights_equal_repeated_rows_full_batch(dtype):
    """Full batch, no shuffle: integer weights train exactly as repeated rows (the
    weighted mean is the mean over the copies), L2 per batch included."""
    X, y = _data("softmax_cross_entropy", 3)
    w = np.random.default_rng(0).integers(1, 4, N)
    rep = np.repeat(np.arange(N), w)
    fitted = []
    for Xs, ys, kw in ((X, y, {"sample_weight": w}), (X[rep], y[rep], {})):
        m = _model(["tanh", "relu"], 3, dtype)
        m.fit(Xs, ys, optimizer=O.SGD(lr=0.1), epochs=4, batch_size=len(Xs),
              shuffle=False, l2=0.5, l2_per_batch=True, n_threads=1, **kw)
        fitted.append(m.params)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(*fitted):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_sequential_fit_refuses_bad_weights():
    X, y = _data("softmax_cross_entropy", 3)
    m = _model(["tanh", "relu"], 3, np.float64)
    with pytest.raises(ValueError, match="Negative values"):
        m.fit(X, y, sample_weight=-np.ones(N))
    with pytest.raises(ValueError, match="expected"):
        m.fit(X, y, sample_weight=np.ones(N + 2))


# Weights the docstring accepts (finite, >= 0, not all 0) whose batch has no weighted
# mean in float64: Sequential.fit stopped with "the loss became non-finite (lower the
# learning rate?)", and the estimators named only the all-zero batch.
WEIGHTS_WITHOUT_A_BATCH_MEAN = {
    "a-batch-of-zeros": (lambda w: np.where(np.arange(N) < 3, 0.0, w), ZeroDivisionError,
                         "Weights sum to zero"),
    "sum-overflows": (lambda w: w * 1e308, ValueError, "sum to inf.*scale sample_weight"),
    "reciprocal-overflows": (lambda w: w * 1e-310, ValueError,
                             "sum to .*e-3.*scale sample_weight"),
}


@pytest.mark.parametrize("case", list(WEIGHTS_WITHOUT_A_BATCH_MEAN),
                         ids=list(WEIGHTS_WITHOUT_A_BATCH_MEAN))
class _BatchHook(nnlib.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        pass


# how the epoch is cut: pieces, one step per call (batch hooks), one call per batch
# (a per-batch schedule)
CUTS = {"pieces": {}, "batch-hook": {"callbacks": [_BatchHook()]},
        "batch-schedule": {"schedule": lambda step: 0.1, "schedule_interval": "batch"}}


@pytest.mark.parametrize("cut", list(CUTS), ids=list(CUTS))
@pytest.mark.parametrize("case", list(WEIGHTS_WITHOUT_A_BATCH_MEAN),
                         ids=list(WEIGHTS_WITHOUT_A_BATCH_MEAN))
def test_sequential_fit_names_a_batch_without_a_weighted_mean(case, cut):
    make, exc, match = WEIGHTS_WITHOUT_A_BATCH_MEAN[case]
    X, y = _data("softmax_cross_entropy", 3)
    m = _model(["tanh", "relu"], 3, np.float64)
    before = [p.copy() for p in m.params]
    opt = O.SGD(lr=0.1)
    with pytest.raises(exc, match=match):
        m.fit(X, y, optimizer=opt, batch_size=2, shuffle=False, n_threads=1,
              sample_weight=make(np.ones(N)), **CUTS[cut])
    assert opt.t == 0                    # the first batch is refused: nothing applied
    for a, b in zip(m.params, before):
        np.testing.assert_array_equal(a, b)


def test_the_estimators_name_a_batch_whose_weight_sum_overflows():
    X, y, _ = _problem("binary")
    with pytest.raises(ValueError, match="sum to inf.*scale sample_weight"):
        MLPClassifier(batch_size=4, max_iter=1).fit(X, y, sample_weight=np.full(len(y), 1e308))


# Weights near 1e308 are legal where each batch's sum stays finite (batch_size=1), but
# the setup's sum over all rows (the normaliser of a full-data loss_grad) overflowed
# with NumPy's "overflow encountered in reduce" RuntimeWarning; and L-BFGS, one mean over
# every row, failed as "non-finite parameter weights ... standardized".
HUGE = 2.0 ** 1022      # a power of two: w * (1 / w) is exactly 1; 13 of them overflow


def test_weights_whose_total_overflows_train_without_a_numpy_warning():
    X, y = _data("softmax_cross_entropy", 3)
    assert not np.isfinite(np.float64(HUGE) * N)
    runs = []
    for w in (np.full(N, HUGE), np.ones(N)):
        m = _model(["tanh", "relu"], 3, np.float64)
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(2):          # the second fit rebinds the model's kept setup
                h = m.fit(X, y, optimizer=O.SGD(lr=0.01), batch_size=1, shuffle=False,
                          n_threads=1, sample_weight=w, epochs=1)
                losses += h.history["loss"]
        runs.append((m.params, losses))
    (p_huge, l_huge), (p_one, l_one) = runs
    assert l_huge == l_one              # each step's weight is w / w = 1 either way
    for a, b in zip(p_huge, p_one):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("est", [MLPClassifier, MLPRegressor])
def test_the_estimators_train_on_weights_whose_total_overflows(est):
    X, y, _ = _problem("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", nnlib.exceptions.ConvergenceWarning)
        est(batch_size=1, max_iter=2, random_state=0).fit(
            X, y, sample_weight=np.full(len(y), HUGE))
        with pytest.raises(ValueError, match=r"the sample weights sum to inf, whose "
                                             r"weighted mean.*scale sample_weight"):
            est(solver="lbfgs", max_iter=2).fit(X, y, sample_weight=np.full(len(y), HUGE))


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
def test_a_setup_binds_weights_whose_total_overflows_and_loss_grad_refuses_them(module):
    # The setup itself (not only fit's wrapper) binds them without NumPy's overflow
    # warning: run_epoch checks each batch's sum; loss_grad, one mean over all rows,
    # names the total instead of dividing by inf.
    model = _model(["tanh", "sigmoid"], 3, np.float64)
    X, y = _data("softmax_cross_entropy", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        setup = make_setup(module, model, X, y, "softmax_cross_entropy",
                           sample_weight=np.full(N, HUGE))
    dWs = [np.zeros_like(l.W) for l in model.layers]
    dbs = [np.zeros_like(l.b) for l in model.layers]
    with pytest.raises(ValueError, match=r"the sample weights of loss_grad's 13 rows sum "
                                         r"to inf.*scale sample_weight"):
        module.loss_grad(setup, dWs, dbs)
    assert not any(d.any() for d in dWs + dbs)       # refused before any pass
