"""Dense layers and Sequential: initializers, forward, loss_and_grads vs finite
differences for every activation x loss pair, save/load."""
import json
import os
import re
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
    if loss == "poisson_loss":
        return rng.poisson(1.5, (n, c)).astype(float)
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
    with pytest.raises(TypeError, match="layer protocol"):
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


def _zip(path, members, compress=None):
    """Write ``members`` (name -> bytes) as a zip, each stored or deflated."""
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=(compress or {}).get(
                name, zipfile.ZIP_STORED))


def _members(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _load_peak_bytes(path):
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            nnlib.load(path)
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("member", ["W0.npy", "header.npy"])
def test_load_refuses_a_deflate_bomb_before_decompressing_it(saved, member):
    """Before: a 0.5 MB file made load allocate 1 GB before it refused it."""
    import zipfile
    model, path = saved
    members = _members(path)
    members[member] += bytes(32 << 20)                 # 32 MiB of zeros after the data
    _zip(path, members, {member: zipfile.ZIP_DEFLATED})
    assert path.stat().st_size < 1 << 20
    peak, msg = _load_peak_bytes(path)
    assert peak < 4 << 20, peak
    assert str(path) in msg and ("declares" in msg or "holds" in msg)


def test_load_refuses_a_header_listing_one_array_many_times_fast(saved):
    """Before: 'W0' listed 10**5 times cost 5 s (10**6: 70 s)."""
    import time
    model, path = saved
    _rewrite(path, header_arrays=["W0"] * 10**5)
    t = time.perf_counter()
    with pytest.raises(ValueError, match="layers do not match its arrays"):
        nnlib.load(path)
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize("field, value, msg", [
    ("activation", ["tanh"], r"unknown activation \['tanh'\]"),
    ("activation", {"a": 1}, "unknown activation"),
    ("n_in", "4", "n_in='4'; expected an integer"),
    ("n_out", True, "n_out=True; expected an integer"),
    ("n_out", 10 ** 12, r"W0 has shape \(4, 6\).*needs \(4, 1000000000000\)"),
    ("n_in", -3, "n_in=-3"),
    ("regularized", [1, 0], r"regularized=\[1, 0\]; expected two booleans"),
    ("regularized", [True], r"regularized=\[True\]; expected two booleans"),
], ids=["activation-list", "activation-dict", "n_in-string", "n_out-bool",
        "n_out-1e12", "n_in-negative", "regularized-ints", "regularized-short"])
def test_load_checks_the_header_types_before_reading_arrays(saved, field, value, msg):
    """Before: ["tanh"] gave a raw TypeError and a shape of 10**12 a raw MemoryError."""
    model, path = saved
    layers = [l.spec() for l in model.layers]
    layers[0][field] = value
    _rewrite(path, layers=layers)
    peak, got = _load_peak_bytes(path)
    assert re.search(msg, got), got
    assert peak < 4 << 20


def test_load_refuses_an_npy_header_declaring_a_huge_array(saved):
    model, path = saved
    members = _members(path)
    header = np.lib.format.header_data_from_array_1_0(np.zeros((4, 6), np.float32))
    header["shape"] = (10 ** 12, 6)
    import io
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, header)
    members["W0.npy"] = f.getvalue() + bytes(96)
    _zip(path, members)
    peak, msg = _load_peak_bytes(path)
    assert "W0 has shape (1000000000000, 6)" in msg and peak < 4 << 20


def test_save_while_another_thread_trains_writes_loadable_files(tmp_path):
    """Before: 20 of 23 files failed to load ('SHA-256 does not match'): the digest was
    taken from the live arrays and the arrays written afterwards."""
    import threading
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20_000, 16)), rng.integers(0, 3, 20_000)
    model = _net([16, 64, 3], "relu")
    stop = threading.Event()

    def train():
        while not stop.is_set():
            model.fit(X, y, epochs=1, batch_size=1, shuffle=False,
                      optimizer=nnlib.optim.SGD(lr=1e-4))
    t = threading.Thread(target=train)
    t.start()
    try:
        paths = []
        for i in range(15):
            paths.append(tmp_path / f"m{i}.npz")
            model.save(paths[-1])
    finally:
        stop.set()
        t.join()
    for p in paths:
        nnlib.load(p)


def test_save_keeps_the_targets_permission_bits(saved):
    model, path = saved
    for mode in (0o644, 0o640, 0o664):
        os.chmod(path, mode)
        model.save(path)
        assert path.stat().st_mode & 0o777 == mode
    new = path.parent / "new.npz"
    umask = os.umask(0o022)
    os.umask(umask)
    model.save(new)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_through_a_symlink_writes_its_target(saved, tmp_path):
    model, path = saved
    link = tmp_path / "link.npz"
    link.symlink_to(path)
    model.params[0][...] = 7.0
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(path)
    assert (nnlib.load(path).params[0] == 7.0).all()


def test_save_into_a_missing_folder_names_the_users_path(saved, tmp_path):
    # not nnlib's hidden temporary file (".nnlib-<name>.<pid>-<hex>.tmp") beside it
    model, _ = saved
    target = tmp_path / "missing" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        model.save(target)
    assert info.value.filename == str(target)
    assert ".tmp" not in str(info.value) and "missing" in str(info.value)
    assert not (tmp_path / "missing").exists()


def test_save_removes_the_stale_temporary_files_of_killed_saves(saved):
    import time
    from nnlib import _format
    model, path = saved
    old = path.parent / ".nnlib-model.npz.123-dead.tmp"
    fresh = path.parent / ".nnlib-model.npz.456-live.tmp"      # a save in progress
    other = path.parent / ".nnlib-notes.txt"
    for p in (old, fresh, other):
        p.write_bytes(b"partial")
    past = time.time() - _format.STALE_TEMP_SECONDS - 60
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    model.save(path)
    assert not old.exists() and fresh.exists() and other.exists()


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


def test_non_native_byte_order_input_trains_like_native():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    results = []
    for Xi, yi in ((X, y), (X.astype(">f8"), y.astype(">i8"))):
        m = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                              nnlib.Dense(4, 2, random_state=1)])
        m.fit(Xi, yi, epochs=2, batch_size=8, random_state=0)
        results.append((m.predict(Xi), m.loss_and_grads(Xi, yi)[0]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_load_reads_arrays_written_in_the_other_byte_order(saved):
    """The checksum is of values: a file written in the other byte order carries the
    same digest and loads to the same numbers."""
    model, path = saved
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    swapped = {k: (v.astype(v.dtype.newbyteorder("S")) if k != "header" else v)
               for k, v in data.items()}
    np.savez(path, **swapped)
    loaded = nnlib.load(path)
    for a, b in zip(model.params, loaded.params):
        assert b.dtype.isnative and np.array_equal(a, b)


def test_load_refuses_a_byte_order_relabelled_without_its_bytes(saved):
    """An .npy header whose '<f8' became '>f8' over the same bytes declares other
    values; the checksum was of raw bytes and passed them (found by the hostile-files
    fuzz, seed 3007765093: W0 loaded as 6.5e-270, -8.5e+220, ...)."""
    model, path = saved
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    data["W0"] = data["W0"].view(data["W0"].dtype.newbyteorder("S"))
    np.savez(path, **data)
    with pytest.raises(ValueError, match="corrupted: the arrays' SHA-256"):
        nnlib.load(path)


def test_a_layer_given_non_native_byte_order_arrays_works_in_native_order(tmp_path):
    """A replaced W of dtype '>f8' made predict/fit fail with Cython's 'Big-endian buffer
    not supported' and the model's dtype read as '>f8'."""
    X, y = np.ones((2, 3)), [0, 1]
    model = _net([3, 2], "tanh")
    ref = model.predict(X)
    model.layers[0].W = model.layers[0].W.astype(">f8")
    model.layers[0].b = model.layers[0].b.astype(">f8")
    assert model.dtype == np.float64
    np.testing.assert_array_equal(model.predict(X), ref)
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nnlib.load(tmp_path / "m.npz").predict(X), ref)
    model.fit(X, y, epochs=1)
    assert all(p.dtype == np.float64 and p.dtype.isnative for p in model.params)


def test_save_keeps_l2_flags_set_on_a_dense_instance(tmp_path):
    """Before: a Dense whose ``regularized`` was set on the instance saved as a plain
    Dense, and the loaded model put the L2 penalty back on W (another loss)."""
    X, y = np.eye(3), [0, 1, 2]
    layer = nnlib.Dense(3, 3, random_state=0)
    layer.regularized = (False, True)
    model = nnlib.Sequential([layer])
    model.save(tmp_path / "m.npz")
    got = nnlib.load(tmp_path / "m.npz")
    assert got.layers[0].regularized == (False, True) and not got.compiled
    assert got.loss_and_grads(X, y, l2=1.0)[0] == model.loss_and_grads(X, y, l2=1.0)[0]
    plain = nnlib.Sequential([nnlib.Dense(3, 3, random_state=0)])
    plain.save(tmp_path / "p.npz")
    assert "regularized" not in plain.layers[0].spec()
    assert nnlib.load(tmp_path / "p.npz").layers[0].regularized == (True, False)
