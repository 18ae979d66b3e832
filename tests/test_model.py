"""Dense layers and Sequential: initializers, forward, loss_and_grads vs finite
differences for every activation x loss pair, save/load."""
import json
import os
import warnings

import numpy as np
import pytest

import nnlib
import nnlib._reference as R
from nnlib import DTypeError, LabelError, ShapeError
from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
from tests.conftest import FD_TOL, central_diff

ACTS = list(ACTIVATION_CODES)
LOSSES = list(LOSS_CODES)
PARAMS = {"leaky_relu": 0.1, "elu": 0.8}


def _net(sizes, hidden, out="identity", dtype=np.float64, seed=0, init="glorot_uniform"):
    layers = []
    for i in range(len(sizes) - 1):
        act = hidden if i < len(sizes) - 2 else out
        layers.append(nnlib.Dense(sizes[i], sizes[i + 1], act, init=init, dtype=dtype,
                                  random_state=seed + i, activation_param=PARAMS.get(act)))
    return nnlib.Sequential(layers)


def _targets(loss, rng, n, c):
    if loss == "squared_error":
        return rng.standard_normal((n, c))
    if loss == "logistic_loss":
        return rng.integers(0, 2, n)
    return rng.integers(0, c, n)


def _away_from_kinks(model, X):
    """Shift biases so no pre-activation sits within 0.05 of a kink (0) of relu-like
    units: the finite-difference quotient is then the derivative."""
    H = X
    for layer in model.layers:
        Z = H @ layer.W + layer.b
        near = np.abs(Z).min(axis=0) < 0.05
        layer.b[near] += 0.2
        H = R.dense_forward(H, layer.W, layer.b, layer.activation,
                            PARAMS.get(layer.activation))


# -- Dense ------------------------------------------------------------------------------

@pytest.mark.parametrize("init,kind,scale", [
    ("glorot_uniform", "u", np.sqrt(6 / 500)), ("glorot_normal", "n", np.sqrt(2 / 500)),
    ("he_uniform", "u", np.sqrt(6 / 200)), ("he_normal", "n", np.sqrt(2 / 200))])
def test_initializers_have_the_documented_spread(init, kind, scale, dtype):
    layer = nnlib.Dense(200, 300, init=init, dtype=dtype, random_state=1)
    W = layer.W.astype(np.float64)
    assert layer.W.dtype == dtype and layer.W.shape == (200, 300)
    assert (layer.b == 0).all() and layer.b.dtype == dtype
    if kind == "u":
        assert np.abs(W).max() <= scale and np.abs(W).max() > 0.99 * scale
        np.testing.assert_allclose(W.std(), scale / np.sqrt(3), rtol=0.02)
    else:
        np.testing.assert_allclose(W.std(), scale, rtol=0.02)
    assert abs(W.mean()) < 0.01 * scale


def test_initializers_are_seeded_and_zeros_is_zero():
    a = nnlib.Dense(5, 4, random_state=7).W
    b = nnlib.Dense(5, 4, random_state=7).W
    c = nnlib.Dense(5, 4, random_state=8).W
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (nnlib.Dense(5, 4, init="zeros").W == 0).all()


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(n_in=0, n_out=3), ValueError, "n_in"),
    (dict(n_in=2.5, n_out=3), TypeError, "n_in"),
    (dict(n_in=2, n_out=3, init="ones"), ValueError, "unknown init"),
    (dict(n_in=2, n_out=3, activation="swish"), ValueError, "unknown activation"),
    (dict(n_in=2, n_out=3, dtype=np.int32), DTypeError, "float32 or float64"),
    (dict(n_in=2, n_out=3, random_state="x"), TypeError, "random_state"),
])
def test_dense_rejects_bad_arguments(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        nnlib.Dense(**kwargs)


# -- Sequential -------------------------------------------------------------------------

def test_sequential_checks_widths_and_dtypes():
    with pytest.raises(ShapeError, match="expects 4 inputs"):
        nnlib.Sequential([nnlib.Dense(2, 3), nnlib.Dense(4, 1)])
    with pytest.raises(DTypeError, match="share a dtype"):
        nnlib.Sequential([nnlib.Dense(2, 3), nnlib.Dense(3, 1, dtype=np.float32)])
    with pytest.raises(ValueError, match="at least one"):
        nnlib.Sequential([])
    with pytest.raises(TypeError, match="Dense"):
        nnlib.Sequential([np.zeros((2, 2))])


def test_forward_composes_the_layers_and_params_are_live(rng, dtype):
    model = _net([4, 6, 5, 3], "tanh", "sigmoid", dtype=dtype)
    X = rng.standard_normal((7, 4)).astype(dtype)
    H = X
    for layer in model.layers:
        H = R.dense_forward(H, layer.W, layer.b, layer.activation)
    tol = dict(rtol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.forward(X), H, **tol)
    np.testing.assert_allclose(model.predict(X, batch_size=3), H, **tol)
    assert len(model.params) == 6
    model.params[1][:] = 5.0          # writing into params changes the model
    assert (model.layers[0].b == 5.0).all()
    assert not np.allclose(model.forward(X), H)


def test_forward_converts_input_precision_and_checks_width(rng):
    model = _net([3, 2], "relu", dtype=np.float32)
    assert model.forward(np.ones((2, 3))).dtype == np.float32
    with pytest.raises(ShapeError, match="features"):
        model.forward(np.ones((2, 4)))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_loss_and_grads_match_finite_differences(act, loss, rng):
    c = 1 if loss == "logistic_loss" else 3
    # squared_error also puts the activation on the output layer
    out = act if loss == "squared_error" else "identity"
    model = _net([4, 5, c], act, out, seed=3)
    X = rng.uniform(-1, 1, (6, 4))
    y = _targets(loss, rng, 6, c)
    _away_from_kinks(model, X)
    l2 = 0.3
    value, grads = model.loss_and_grads(X, y, loss, l2=l2)
    params = model.params
    for k, (p, g) in enumerate(zip(params, grads)):
        assert g.shape == p.shape and g.dtype == p.dtype
        orig = p.copy()

        def objective(v, p=p):
            p[...] = v
            return model.loss_and_grads(X, y, loss, l2=l2)[0]

        fd = central_diff(objective, orig, h=1e-4)
        p[...] = orig
        np.testing.assert_allclose(g, fd, err_msg=f"param {k}", **FD_TOL[np.float64])
    # the value itself: mean loss + l2/2 sum ||W||^2 (biases not penalized)
    v0, _ = model.loss_and_grads(X, y, loss, l2=0.0)
    pen = sum(float(np.sum(l.W ** 2)) for l in model.layers)
    np.testing.assert_allclose(value, v0 + 0.5 * l2 * pen, rtol=1e-12)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "squared_error"])
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softplus"])
def test_loss_and_grads_float32(act, loss, rng):
    model = _net([4, 5, 3], act, dtype=np.float32, seed=5)
    X = rng.uniform(-1, 1, (6, 4)).astype(np.float32)
    y = _targets(loss, rng, 6, 3)
    value, grads = model.loss_and_grads(X, y, loss, l2=0.1)
    m64 = nnlib.Sequential([nnlib.Dense(l.n_in, l.n_out, l.activation) for l in model.layers])
    for p64, p in zip(m64.params, model.params):
        p64[...] = p
    v64, g64 = m64.loss_and_grads(X.astype(np.float64), y, loss, l2=0.1)
    assert isinstance(value, float)
    np.testing.assert_allclose(value, v64, rtol=1e-5)
    for g, g_ref in zip(grads, g64):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-6)


def test_loss_and_grads_bad_input():
    model = _net([3, 4, 2], "relu")
    X = np.zeros((5, 3))
    with pytest.raises(LabelError):
        model.loss_and_grads(X, [0, 1, 2, 0, 1])
    with pytest.raises(ShapeError):
        model.loss_and_grads(X, [0, 1, 0])
    # 2 outputs: logistic_loss wants a (5, 2) 0/1 matrix (multilabel), not 5 labels
    with pytest.raises(ShapeError, match=r"shape \(5, 2\) for logistic_loss on 2 outputs"):
        model.loss_and_grads(X, [0, 1, 0, 1, 0], "logistic_loss")
    with pytest.raises(LabelError, match=r"y.ravel\(\)\[1\] = 2"):
        model.loss_and_grads(X, [[0, 2]] + [[1, 0]] * 4, "logistic_loss")
    with pytest.raises(ShapeError, match="squared_error"):
        model.loss_and_grads(X, np.zeros((5, 3)), "squared_error")
    with pytest.raises(ValueError, match="unknown loss"):
        model.loss_and_grads(X, [0] * 5, "cross_entropy")
    with pytest.raises(ValueError, match="l2"):
        model.loss_and_grads(X, [0] * 5, l2=-1.0)
    with pytest.raises(ShapeError, match="at least one row"):
        model.loss_and_grads(np.zeros((0, 3)), [])


def test_nonfinite_loss_warns():
    model = _net([2, 2], "identity")
    model.layers[0].W[:] = np.inf
    with pytest.warns(RuntimeWarning, match="not finite"):
        value, _ = model.loss_and_grads(np.ones((1, 2)), [0])
    assert not np.isfinite(value)


# -- save / load ------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, rng):
    model = _net([4, 6, 3], "leaky_relu", dtype=np.float32, seed=2)
    for p in model.params:
        p[...] = rng.standard_normal(p.shape)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def test_save_load_round_trip_is_exact(saved, rng):
    model, path = saved
    loaded = nnlib.load(path)
    assert [l.spec() for l in loaded.layers] == [l.spec() for l in model.layers]
    assert loaded.dtype == np.float32
    for a, b in zip(model.params, loaded.params):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    X = rng.standard_normal((5, 4)).astype(np.float32)
    assert np.array_equal(model.forward(X), loaded.forward(X))
    assert loaded.layers[0].activation_param == 0.1
    assert [f for f in os.listdir(path.parent) if f != "model.npz"] == []   # no temp left


def test_save_is_a_plain_npz_with_a_json_header(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(f["header"].tobytes())
        assert header["format"] == "nnlib.Sequential" and header["version"] == 1
        assert header["arrays"] == ["W0", "b0", "W1", "b1"]
        assert f["W0"].shape == (4, 6)


def test_save_overwrites_atomically(saved, rng):
    model, path = saved
    model.params[0][...] = 1.0
    model.save(path)
    assert (nnlib.load(path).params[0] == 1.0).all()


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    header = json.loads(data["header"].tobytes())
    arrays = changes.pop("arrays", {})
    if "header_arrays" in changes:
        changes["arrays"] = changes.pop("header_arrays")
    header.update(changes)
    data.update(arrays)
    data["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **data)


@pytest.mark.parametrize("case", ["truncated", "garbage", "version", "format", "checksum",
                                  "shape", "missing", "header-size"])
def test_load_rejects_bad_files(saved, case):
    model, path = saved
    if case == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        msg = "truncated or corrupted"
    elif case == "garbage":
        path.write_bytes(b"not a zip file at all")
        msg = "truncated or corrupted"
    elif case == "version":
        _rewrite(path, version=99)
        msg = "version 99"
    elif case == "format":
        _rewrite(path, format="something else")
        msg = "not an nnlib model"
    elif case == "checksum":
        W = model.params[0].copy()
        W[0, 0] += 1
        _rewrite(path, arrays={"W0": W})
        msg = "SHA-256"
    elif case == "shape":
        W = np.zeros((4, 5), np.float32)
        arrays = {"W0": W}
        _rewrite(path, arrays=arrays, sha256=__import__("nnlib._format")._format.digest(
            [W, model.params[1], model.params[2], model.params[3]]))
        msg = "W0 has shape"
    elif case == "header-size":     # a damaged header must not drive an allocation
        layers = [l.spec() for l in model.layers]
        layers[0]["n_in"] = 10 ** 12
        _rewrite(path, layers=layers)
        msg = "W0 has shape"
    else:
        _rewrite(path, header_arrays=["W0", "b0", "W1", "b1", "W2"])
        msg = "missing arrays"
    with pytest.raises(ValueError, match=msg):
        nnlib.load(path)


def test_load_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nnlib.load(tmp_path / "nope.npz")


def test_edited_layer_list_is_checked_before_compiled_code(rng):
    model = _net([3, 4, 2], "relu")
    model.layers.append(nnlib.Dense(5, 2))          # 2 outputs feed a 5-input layer
    with pytest.raises(ShapeError, match="expects 5 inputs"):
        model.loss_and_grads(np.zeros((2, 3)), [0, 1])
    model = _net([3, 4, 2], "relu")
    model.layers[0].W = np.zeros((3, 5))
    with pytest.raises(ShapeError, match="Dense.W"):
        model.fit(np.zeros((2, 3)), [0, 1])
    model = _net([3, 4, 2], "relu")
    model.layers[0].W = np.asfortranarray(model.layers[0].W)    # replaced, same values
    g = model.loss_and_grads(np.ones((2, 3)), [0, 1])[1]
    assert np.isfinite(g[0]).all()


def test_readme_training_example_runs(tmp_path, monkeypatch):
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md")).read()
    code = re.search(r"## Training a network\n\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code.replace("print(", "_ = ("), "README", "exec"), scope)
    assert scope["history"]["val_accuracy"][-1] > 0.9
    assert isinstance(scope["model"], nnlib.Sequential)
