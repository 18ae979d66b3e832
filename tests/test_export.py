"""nnlib.export: the torch state_dict mapping against a real torch.nn.Sequential, and
ONNX files run with onnxruntime."""
import numpy as np
import pytest

import nnlib
from nnlib import export
from nnlib.layers import Layer

# (id, activations, activation params) of 3-layer networks
NETS = [
    ("tanh", ["tanh", "tanh", "identity"], None),
    ("relu_mixed", ["relu", "identity", "sigmoid"], None),
    ("leaky_elu", ["leaky_relu", "elu", "identity"], [0.2, 0.7, None]),
    ("softplus", ["softplus", "relu", "identity"], None),
]
NET_IDS = [n[0] for n in NETS]


def _model(acts, params=None, dtype=np.float64):
    sizes = [5, 7, 6, 3]
    params = params or [None] * 3
    return nnlib.Sequential([nnlib.Dense(a, b, act, random_state=i, dtype=dtype,
                                         activation_param=p)
                             for i, (a, b, act, p) in enumerate(zip(sizes, sizes[1:], acts,
                                                                    params))])


def _X(dtype=np.float64):
    return np.random.default_rng(0).standard_normal((40, 5)).astype(dtype) * 2


def test_module_positions_skip_identity():
    assert export.torch_module_names(["tanh", "identity", "relu"]) == [0, 2, 3]
    m = _model(["tanh", "identity", "relu"])
    sd = m.to_torch_state_dict()
    assert sorted(sd) == ["0.bias", "0.weight", "2.bias", "2.weight", "3.bias", "3.weight"]
    np.testing.assert_array_equal(sd["2.weight"], m.layers[1].W.T)
    assert sd["0.weight"].flags.c_contiguous and sd["0.weight"] is not m.layers[0].W


@pytest.mark.parametrize("name, acts, params", NETS, ids=NET_IDS)
def test_state_dict_drives_a_real_torch_sequential(name, acts, params, dtype):
    torch = pytest.importorskip("torch")
    m = _model(acts, params, dtype)
    mods = []
    for layer in m.layers:
        mods.append(torch.nn.Linear(layer.n_in, layer.n_out))
        act = layer.activation
        if act == "tanh":
            mods.append(torch.nn.Tanh())
        elif act == "relu":
            mods.append(torch.nn.ReLU())
        elif act == "sigmoid":
            mods.append(torch.nn.Sigmoid())
        elif act == "softplus":
            mods.append(torch.nn.Softplus())
        elif act == "leaky_relu":
            mods.append(torch.nn.LeakyReLU(layer.activation_param))
        elif act == "elu":
            mods.append(torch.nn.ELU(layer.activation_param))
    net = torch.nn.Sequential(*mods).to(torch.float64 if dtype == np.float64
                                        else torch.float32)
    net.load_state_dict(m.to_torch_state_dict(as_tensors=True))     # strict: every key
    X = _X(dtype)
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5,
                                                                       atol=1e-6)
    np.testing.assert_allclose(m.predict(X), want, **tol)
    np.testing.assert_allclose(export.to_torch(m)(torch.from_numpy(X)).detach().numpy(),
                               want, **tol)
    # and back: a torch-trained state_dict loads into nnlib
    for p in net.parameters():
        p.data.mul_(1.5)
    back = nnlib.Sequential.from_torch_state_dict(net.state_dict(), acts, dtype=dtype,
                                                  activation_params=params)
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(back.predict(X), want, **tol)
    m.load_torch_state_dict({k: v.numpy() for k, v in net.state_dict().items()})
    np.testing.assert_array_equal(m.predict(X), back.predict(X))


BAD_SD = [
    ("missing", lambda sd: sd.pop("2.bias"), ValueError, r"missing \['2.bias'\]"),
    ("extra", lambda sd: sd.update({"9.weight": np.ones(1)}), ValueError, "unexpected"),
    ("shape", lambda sd: sd.update({"0.weight": np.ones((5, 7))}), ValueError,
     r"needs \(7, 5\)"),
    ("nan", lambda sd: sd["3.bias"].__setitem__(0, np.nan), ValueError, "non-finite"),
    ("strings", lambda sd: sd.update({"0.bias": np.array(["a"] * 7)}), TypeError, "dtype"),
]


@pytest.mark.parametrize("name, spoil, exc, words", BAD_SD, ids=[c[0] for c in BAD_SD])
def test_bad_torch_state_dicts_are_refused_and_change_nothing(name, spoil, exc, words):
    m = _model(["tanh", "identity", "relu"])
    before = [p.copy() for p in m.params]
    sd = {k: v * 2 for k, v in m.to_torch_state_dict().items()}
    spoil(sd)
    with pytest.raises(exc, match=words):
        m.load_torch_state_dict(sd)
    for p, q in zip(before, m.params):
        np.testing.assert_array_equal(p, q)


def test_from_torch_state_dict_checks_activations_against_positions():
    sd = _model(["tanh", "tanh", "identity"]).to_torch_state_dict()
    with pytest.raises(ValueError, match="missing"):
        nnlib.Sequential.from_torch_state_dict(sd, ["identity", "tanh", "identity"])
    with pytest.raises(ValueError, match="activation_params"):
        nnlib.Sequential.from_torch_state_dict(sd, ["tanh", "tanh", "identity"],
                                               activation_params=[None])



# ---- layers the mapping does not cover ------------------------------------------------

class Doubling(nnlib.Dense):
    """A Dense whose output is twice the plain one: its weights alone do not say so."""

    def forward(self, X, n_threads=None):
        return 2 * super().forward(X, n_threads)

    def forward_train(self, X):
        H, backprop = super().forward_train(X)
        return 2 * H, lambda dH: backprop(2 * dH)


class Shift(Layer):
    def __init__(self, n):
        self.n_in = self.n_out = n
        self.c = np.ones(n)
    params = property(lambda self: [self.c])
    param_names = ("c",)
    dtype = property(lambda self: self.c.dtype)

    def forward(self, X, n_threads=None):
        return X + self.c

    def forward_train(self, X):
        return X + self.c, lambda dH: (dH, [dH.sum(axis=0)])


class NoDecay(nnlib.Dense):
    """Another L2 rule, the same network at inference: exported as a Dense."""
    regularized = (False, False)


EXPORTERS = [
    ("to_torch_state_dict", lambda m: m.to_torch_state_dict()),
    ("load_torch_state_dict", lambda m: m.load_torch_state_dict(
        _model(["relu", "identity", "identity"]).to_torch_state_dict())),
    ("to_torch", lambda m: export.to_torch(m)),
    ("to_onnx", lambda m: m.to_onnx()),
]
FOREIGN_LAYERS = [("Doubling", lambda: Doubling(7, 6, random_state=1)),
                  ("Shift", lambda: Shift(7))]


@pytest.mark.parametrize("layer_name, make_layer", FOREIGN_LAYERS,
                         ids=[c[0] for c in FOREIGN_LAYERS])
@pytest.mark.parametrize("name, call", EXPORTERS, ids=[c[0] for c in EXPORTERS])
def test_a_layer_with_its_own_forward_is_refused_by_name(name, call, layer_name,
                                                         make_layer):
    # Doubling's weights exported as a Linear gave a network whose output differs
    # from predict's (by 1.6 here); Shift raised AttributeError: 'activation'
    if name == "to_torch":
        pytest.importorskip("torch")
    if name == "to_onnx":
        pytest.importorskip("onnx")
    m = nnlib.Sequential([nnlib.Dense(5, 7, "relu", random_state=0), make_layer()]
                         + ([] if layer_name == "Doubling" else
                            [nnlib.Dense(7, 6, random_state=1)])
                         + [nnlib.Dense(6, 3, random_state=2)])
    before = [p.copy() for p in m.params]
    with pytest.raises(TypeError, match=rf"layers\[1\] is {layer_name}"):
        call(m)
    for p, q in zip(before, m.params):
        np.testing.assert_array_equal(p, q)


def test_a_dense_subclass_with_dense_forward_exports_as_dense():
    torch = pytest.importorskip("torch")
    m = nnlib.Sequential([nnlib.Dense(5, 7, "relu", random_state=0),
                          NoDecay(7, 3, "tanh", random_state=1)])
    X = _X()
    got = export.to_torch(m)(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(got, m.predict(X), rtol=0, atol=1e-12)


# ---- ONNX ---------------------------------------------------------------------------------

ONNX_NETS = NETS + [("sign", ["tanh", "sign", "identity"], None)]


@pytest.mark.parametrize("name, acts, params", ONNX_NETS, ids=[n[0] for n in ONNX_NETS])
def test_onnx_file_runs_in_onnxruntime_like_predict(name, acts, params, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    m = _model(acts, params, np.float32)
    path = tmp_path / "m.onnx"
    m.to_onnx(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    X = _X(np.float32)
    (got,) = sess.run(None, {"X": X})
    assert got.dtype == np.float32 and got.shape == (40, 3)
    np.testing.assert_allclose(got, m.predict(X), rtol=1e-6, atol=1e-6)


def test_onnx_float64_graph_of_a_float64_model(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    _float64_graph_runs_like_predict(ort, _model(["tanh", "sigmoid", "identity"]))


def _float64_graph_runs_like_predict(ort, m):
    """The model's float64 ONNX graph, run by onnxruntime, gives predict's outputs."""
    proto = export.to_onnx(m, dtype=np.float64)
    sess = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    X = _X()
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], m.predict(X), rtol=1e-12,
                               atol=1e-12)


def test_to_onnx_into_a_missing_folder_names_the_users_path(tmp_path):
    # not nnlib's hidden temporary file (".nnlib-xxxx.tmp") beside it
    pytest.importorskip("onnx")
    target = tmp_path / "missing" / "m.onnx"
    with pytest.raises(FileNotFoundError) as info:
        _model(["tanh", "tanh", "identity"]).to_onnx(target)
    assert info.value.filename == str(target)
    assert ".tmp" not in str(info.value)


def test_to_onnx_without_onnx_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"nnlib\[onnx\]"):
        export.to_onnx(_model(["tanh", "tanh", "identity"]))


def test_onnx_float64_graph_of_a_deep_elu_and_leaky_relu_network():
    # each layer's double-precision nodes have names of their own: layer 2's "t2" and
    # layer 22's "t" were both "t22", a graph onnx's checker refused
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    m = nnlib.Sequential([nnlib.Dense(5 if i == 0 else 3, 3,
                                      "elu" if i % 3 else "leaky_relu",
                                      dtype=np.float64, random_state=i)
                          for i in range(24)])
    _float64_graph_runs_like_predict(ort, m)
