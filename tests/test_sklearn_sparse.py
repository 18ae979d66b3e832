"""Sparse X (SciPy CSR/CSC): the compiled sparse products against their twin, the
compiled epoch and loss_grad on sparse X against the same data dense and against the
twin, the estimators against scikit-learn's MLP on sparse input (1e-12), and clear errors
for NaN and unsupported formats."""
import warnings

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

from nnlib import MLPClassifier, MLPRegressor  # noqa: E402
from nnlib import optim as O  # noqa: E402
from nnlib._kernels import sparse as compiled_sparse  # noqa: E402
from nnlib._reference import sparse as twin_sparse  # noqa: E402
from nnlib._reference import train as twin  # noqa: E402
from nnlib.training import compiled_train  # noqa: E402
from nnlib._codes import LOSS_CODES  # noqa: E402
from tests._twin_fit import make_setup, network, targets  # noqa: E402
from tests.test_train_twin import _assert_close, _copy, _model  # noqa: E402

compiled = compiled_train()
DTYPES = [np.float32, np.float64]
N, D = 13, 4


def _sparse(n=N, d=D, density=0.4, seed=0, dtype=np.float64, fmt="csr"):
    X = sp.random(n, d, density=density, format=fmt, random_state=seed, dtype=dtype)
    X = X.tolil()
    X[2, :] = 0                                   # an empty row
    return X.asformat(fmt)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_products_match_the_twin(dtype, fmt):
    X = _sparse(30, 20, 0.2, dtype=dtype, fmt=fmt)
    rng = np.random.default_rng(1)
    W, G = rng.standard_normal((20, 5)), rng.standard_normal((30, 5))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for name, M in (("sparse_matmul", W), ("sparse_t_matmul", G)):
        got = getattr(compiled_sparse, name)(X, M)
        want = getattr(twin_sparse, name)(X, M)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        np.testing.assert_allclose(got, (X @ M) if name == "sparse_matmul" else X.T @ M,
                                   rtol=tol, atol=tol)


@pytest.mark.parametrize("module", [compiled_sparse, twin_sparse], ids=["compiled", "twin"])
def test_products_refuse_bad_input(module):
    X = _sparse()
    with pytest.raises(ValueError, match="rows"):
        module.sparse_matmul(X, np.ones((D + 1, 2)))
    with pytest.raises(TypeError, match=r"tocsr\(\)"):
        module.sparse_matmul(X.tocoo(), np.ones((D, 2)))
    bad = X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        module.sparse_t_matmul(bad, np.ones((N, 2)))
    broken = X.copy()
    broken.indices[0] = D + 5                     # an index past the columns
    with pytest.raises(ValueError, match="not a valid CSR"):
        module.sparse_matmul(broken, np.ones((D, 2)))


# Broken CSC structures: SciPy's conversion to CSR indexes with them unchecked (a row
# index past the rows wrote out of bounds and the fit went on; a lying indptr crashed)
BROKEN_CSC = {"row-index-past-rows": "X.indices[3] = X.shape[0] + 100000",
              "negative-row-index": "X.indices[3] = -7",
              "indptr-past-nnz": "X.indptr[-1] += 100000",
              "indptr-falls": "X.indptr[2] = X.indptr[3] + 1"}
_CHILD_ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("entry", ["sparse_matmul", "fit"])
@pytest.mark.parametrize("breakage", list(BROKEN_CSC), ids=list(BROKEN_CSC))
def test_a_broken_csc_matrix_is_refused_before_conversion(breakage, entry):
    # in a child process: before the check, some of these crashed the interpreter
    call = ("compiled_sparse.sparse_matmul(X, np.ones((X.shape[1], 2)))" if entry ==
            "sparse_matmul" else "MLPClassifier(max_iter=2).fit(X, np.arange(40) % 3)")
    code = "\n".join([
        "import numpy as np, scipy.sparse as sp",
        "from nnlib import MLPClassifier",
        "from nnlib._kernels import sparse as compiled_sparse",
        "X = sp.random(40, 6, density=0.5, format='csc', random_state=0)",
        BROKEN_CSC[breakage],
        "try:",
        f"    {call}",
        "except ValueError as exc:",
        "    print('refused:', exc)",
        "else:",
        "    print('accepted')"])
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=_CHILD_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: X is not a valid CSC matrix" in proc.stdout, proc.stdout


def _setup(module, model, X, y, loss, *, optimizer=None, batch_size=None, **kw):
    """``make_setup`` for X dense or sparse (kept as it is, in the model's dtype)."""
    if not sp.issparse(X):
        return make_setup(module, model, X, y, loss, optimizer=optimizer,
                          batch_size=batch_size, **kw)
    X = X.tocsr().astype(model.dtype)
    y_target, y_label = targets(model, y, loss)
    sizes = [model.n_in] + [layer.n_out for layer in model.layers]
    states = ([None] * len(model.params) if optimizer is None else
              [s.reshape(-1) for s in optimizer.state_arrays(model.params)])
    ws = module.Workspace(sizes, X.shape[0], y_target.shape[1], model.dtype)
    return module.EpochSetup(network(module, model), [l.W for l in model.layers],
                             [l.b for l in model.layers], states, X, y_target, y_label,
                             ws, LOSS_CODES[loss], batch_size or X.shape[0],
                             optimizer=None if optimizer is None else optimizer.config(),
                             **kw)


def _targets(n_out, seed=1):
    return np.random.default_rng(seed).integers(0, n_out, N)


OPTIMIZERS = [("sgd-plain", lambda: O.SGD(lr=0.1)),
              ("sklearn-sgd", lambda: O.SklearnSGD(lr=0.1, momentum=0.9)),
              ("adam", lambda: O.SklearnAdam(lr=0.01))]


@pytest.mark.parametrize("opt", [o[1] for o in OPTIMIZERS], ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("batch", [1, 5, N], ids=["batch-1", "batch-5", "full"])
def test_epoch_on_sparse_x_equals_dense_and_the_twin(opt, dtype, batch):
    model = _model(["tanh", "relu"], 3, dtype)
    X = _sparse(dtype=dtype)
    y = _targets(3)
    order = np.random.default_rng(2).permutation(N).astype(np.int64)
    runs = []
    for module, data in ((compiled, X), (compiled, X.toarray()), (twin, X)):
        m = _copy(model)
        setup = _setup(module, m, data, y, "softmax_cross_entropy", optimizer=opt(),
                           batch_size=batch, l2=0.2, l2_per_batch=True)
        runs.append((module.run_epoch(setup, order, 0), [p.copy() for p in m.params]))
        if module is compiled and data is X:
            # sparse rows are read in place: no dense gathering buffer was made
            assert setup.workspace.Xb.shape[0] == 1
    (got, got_p) = runs[0]
    for want, want_p in runs[1:]:
        assert got[1:] == want[1:]
        _assert_close(got[0], want[0], dtype, "loss_sum")
        for i, (a, b) in enumerate(zip(got_p, want_p)):
            _assert_close(a, b, dtype, f"param {i}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_loss_grad_on_sparse_x_equals_dense(dtype):
    model = _model(["sigmoid", "tanh"], 3, dtype)
    X, y = _sparse(dtype=dtype), _targets(3)
    w = np.random.default_rng(3).uniform(0.5, 2.0, N)
    out = []
    for data in (X, X.toarray()):
        setup = _setup(compiled, model, data, y, "softmax_cross_entropy", l2=0.1,
                           sample_weight=w)
        dWs = [np.empty_like(l.W) for l in model.layers]
        dbs = [np.empty_like(l.b) for l in model.layers]
        out.append((compiled.loss_grad(setup, dWs, dbs), dWs + dbs))
    assert out[0][0][1] == out[1][0][1] == 0
    _assert_close(out[0][0][0], out[1][0][0], dtype, "loss")
    for a, b in zip(out[0][1], out[1][1]):
        _assert_close(a, b, dtype, "gradient")


def test_a_kept_setup_switches_between_sparse_and_dense_data():
    """set_data may rebind a setup built on sparse X to dense X (the row-gathering
    buffer is then made) and back."""
    model = _model(["tanh", "relu"], 3, np.float64)
    X, y = _sparse(), _targets(3)
    setup = _setup(compiled, model, X, y, "softmax_cross_entropy",
                   optimizer=O.SGD(lr=0.1), batch_size=5)
    yt, yl = setup.y_target, setup.y_label
    for data in (X.toarray(), X, X.toarray()):
        setup.set_data(data, yt, yl)
        assert compiled.run_epoch(setup, np.arange(N), 0)[3] == 0


# ---------------------------------------------------------------- estimators


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(90, 25, density=0.15, format="csr", random_state=seed)
    return X, rng.integers(0, 3, 90), rng.standard_normal(90), rng.uniform(0, 2, 90)


SK_CASES = [dict(solver="sgd"), dict(solver="sgd", momentum=0.0),
            dict(solver="adam", early_stopping=True), dict(solver="lbfgs")]


@pytest.mark.parametrize("params", SK_CASES, ids=lambda p: "-".join(
    f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_fit_equals_scikit_learns(params, weighted, fmt):
    nn = pytest.importorskip("sklearn.neural_network")
    X, y, yr, w = _problem()
    X = X.asformat(fmt)
    sw = w if weighted else None
    common = dict(hidden_layer_sizes=(7,), max_iter=12, random_state=0, batch_size=16,
                  **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = [(MLPClassifier(**common).fit(X, y, sample_weight=sw),
                  nn.MLPClassifier(**common).fit(X, y, sample_weight=sw)),
                 (MLPRegressor(**common).fit(X, yr, sample_weight=sw),
                  nn.MLPRegressor(**common).fit(X, yr, sample_weight=sw))]
    for a, b in pairs:
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_allclose(u, v, rtol=0, atol=1e-12)
        assert a.n_iter_ == b.n_iter_
        np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=0, atol=1e-12)


def test_sparse_and_dense_fits_agree_and_errors_are_clear():
    X, y, _, _ = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
        b = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(
            X.toarray(), y)
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X.toarray()),
                               atol=1e-12)
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPClassifier().fit(bad, y)
    with pytest.raises(TypeError, match=r"'coo' format.*tocsr\(\)"):
        a.predict(X.tocoo())
    with pytest.raises(ValueError, match="X has 24 features, but MLPClassifier is "
                                         "expecting 25"):
        a.predict(X[:, :24])
