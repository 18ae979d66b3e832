"""A Sequential with Dropout layers in the model file (``nnlib._format``) and in export
(``nnlib.export``): saved and loaded with its rates, seeds and step counts (so training
resumes bit-identically), hostile Dropout specs refused with a ValueError naming the
file, and the inference identity in torch (a ``Dropout`` module in eval mode) and ONNX
(left out of the graph)."""
import json

import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib.layers import Dense, Dropout


def _model(dtype=np.float64):
    return nnlib.Sequential([Dropout(0.1), Dense(5, 8, "relu", random_state=0,
                                                 dtype=dtype),
                             Dropout(0.5, random_state=7),
                             Dense(8, 3, "tanh", random_state=1, dtype=dtype),
                             Dropout(0.25)])


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


def test_save_and_load_keep_dropout_and_resume_bit_identically(tmp_path):
    X, y = _data()
    model = _model()
    model.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=2, batch_size=8, random_state=0)
    path = tmp_path / "m.npz"
    model.save(path, include_optimizer=True)
    loaded = nnlib.load(path)
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    for a, b in zip(loaded.layers, model.layers):
        if isinstance(a, Dropout):
            assert (a.rate, a.seed, a.step) == (b.rate, b.seed, b.step)
    assert loaded.compiled
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for m in (model, loaded):
        m.fit(X, y, optimizer=m.optimizer, epochs=2, batch_size=8, random_state=1)
    for p, q in zip(model.params, loaded.params):
        np.testing.assert_array_equal(p, q)


def test_a_file_without_dropout_is_as_before(tmp_path):
    """Dense arrays are numbered over the Dense layers: W0, b0, W1, b1 either way."""
    path = tmp_path / "m.npz"
    _model().save(path)
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(f["header"].tobytes())
    assert header["arrays"] == ["W0", "b0", "W1", "b1"]
    assert [s["type"] for s in header["layers"]] == ["Dropout", "Dense", "Dropout",
                                                     "Dense", "Dropout"]
    assert header["layers"][2] == {"type": "Dropout", "rate": 0.5, "seed": 7, "step": 0}


def _with_spec(path, index, **fields):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    header = json.loads(data["header"].tobytes())
    spec = header["layers"][index]
    for key, value in fields.items():
        if value is KeyError:
            spec.pop(key)
        else:
            spec[key] = value
    data["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **data)


HOSTILE = [
    ("rate-one", dict(rate=1.0), "rate=1.0"),
    ("rate-negative", dict(rate=-0.5), "rate=-0.5"),
    ("rate-nan", dict(rate=float("nan")), "rate=nan"),
    ("rate-inf", dict(rate=float("inf")), "rate=inf"),
    ("rate-string", dict(rate="0.5"), "rate='0.5'"),
    ("rate-bool", dict(rate=True), "rate=True"),
    ("rate-missing", dict(rate=KeyError), "rate=None"),
    ("rate-list", dict(rate=[0.5]), r"rate=\[0.5\]"),
    ("seed-negative", dict(seed=-1), "seed=-1"),
    ("seed-huge", dict(seed=2**64), "seed="),
    ("seed-float", dict(seed=1.5), "seed=1.5"),
    ("step-null", dict(step=None), "step=None"),
    ("step-huge", dict(step=2**70), "step="),
    ("unknown-field", dict(n_in=3), "unknown fields"),
]


@pytest.mark.parametrize("name, fields, words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_dropout_specs_are_refused_naming_the_file(tmp_path, name, fields, words):
    path = tmp_path / "m.npz"
    _model().save(path)
    _with_spec(path, 2, **fields)
    with pytest.raises(ValueError, match=words) as info:
        nnlib.load(path)
    assert str(path) in str(info.value)


def test_a_file_of_dropouts_only_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    _model().save(path)
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    header = json.loads(data["header"].tobytes())
    header["layers"] = [header["layers"][0]]
    header["arrays"] = []
    header["sha256"] = nnlib._format.digest([])
    data = {"header": np.frombuffer(json.dumps(header).encode(), np.uint8)}
    with open(path, "wb") as f:
        np.savez(f, **data)
    with pytest.raises(ValueError, match=str(path)):
        nnlib.load(path)


def test_torch_state_dict_and_module_with_dropout():
    X, _ = _data()
    model = _model()
    sd = model.to_torch_state_dict()
    # torch.nn.Sequential(Dropout, Linear, ReLU, Dropout, Linear, Tanh, Dropout)
    assert sorted(sd) == ["1.bias", "1.weight", "4.bias", "4.weight"]
    other = _model()
    other.load_torch_state_dict({k: v * 2 for k, v in sd.items()})
    np.testing.assert_array_equal(other.layers[3].W, 2 * model.layers[3].W)
    torch = pytest.importorskip("torch")
    net = nnlib.export.to_torch(model)
    assert [type(m).__name__ for m in net] == ["Dropout", "Linear", "ReLU", "Dropout",
                                               "Linear", "Tanh", "Dropout"]
    assert not net.training
    with torch.no_grad():
        got = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-12, atol=1e-14)


def test_onnx_leaves_dropout_out(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _model(np.float32)
    path = tmp_path / "m.onnx"
    proto = model.to_onnx(path)
    assert "Dropout" not in {node.op_type for node in proto.graph.node}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    X = _data()[0].astype(np.float32)
    (got,) = sess.run(None, {"X": X})
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-6, atol=1e-6)
