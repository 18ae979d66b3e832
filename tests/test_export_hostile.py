"""Export edge cases found by probe33:

* ``to_onnx(path)`` wrote through ``tempfile.mkstemp``: every new ``.onnx`` was mode
  0600 (unreadable to a model server running as another user), an existing file lost
  its permission bits, and a symbolic link was replaced by a regular file; it now writes
  as ``Sequential.save`` does (``nnlib._format.write_atomically``);
* a finite weight beyond float32's range became inf without an error (a RuntimeWarning
  at most) in ``load_torch_state_dict`` / ``from_torch_state_dict`` into a float32 model
  and in ``to_onnx(dtype=float32)`` of a float64 model;
* ``from_torch_state_dict(sd, "relu")`` read the string as four activations and
  complained about missing keys ``4.weight`` and ``6.weight``.
"""
import os
import stat

import numpy as np
import pytest

import nnlib
from nnlib import export
from nnlib.exceptions import DTypeRangeError


def _model(dtype=np.float64):
    return nnlib.Sequential([nnlib.Dense(2, 3, "relu", random_state=0, dtype=dtype),
                             nnlib.Dense(3, 2, random_state=1, dtype=dtype)])


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_onnx_file_gets_the_umasks_mode(tmp_path):
    pytest.importorskip("onnx")
    with open(tmp_path / "plain", "wb"):
        pass                                         # what open() gives under this umask
    _model().to_onnx(tmp_path / "m.onnx")
    assert _mode(tmp_path / "m.onnx") == _mode(tmp_path / "plain")


def test_a_replaced_onnx_file_keeps_its_mode_and_a_link_stays_a_link(tmp_path):
    pytest.importorskip("onnx")
    target = tmp_path / "m.onnx"
    _model().to_onnx(target)
    os.chmod(target, 0o640)
    link = tmp_path / "link.onnx"
    os.symlink(target.name, link)
    _model().to_onnx(link)
    assert os.path.islink(link) and _mode(target) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_onnx_into_a_missing_folder_names_the_folder(tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(FileNotFoundError, match="no folder"):
        _model().to_onnx(tmp_path / "nope" / "m.onnx")


@pytest.mark.parametrize("key", ["0.weight", "2.bias"])
def test_a_weight_beyond_float32_is_refused_by_load_torch_state_dict(key):
    model = _model(np.float32)
    before = [p.copy() for p in model.params]
    sd = {k: v.astype(np.float64) for k, v in export.to_torch_state_dict(model).items()}
    sd[key].flat[0] = 1e39
    with pytest.raises(DTypeRangeError, match=key.split(".")[0]):
        export.load_torch_state_dict(model, sd)
    assert all(np.array_equal(a, b) for a, b in zip(model.params, before))
    with pytest.raises(DTypeRangeError):
        export.from_torch_state_dict(sd, ["relu", "identity"], dtype=np.float32)
    m64 = export.from_torch_state_dict(sd, ["relu", "identity"], dtype=np.float64)
    assert np.isfinite(m64.layers[0].W).all()        # fits float64


def test_a_weight_that_rounds_to_float32_max_is_taken():
    model = _model(np.float32)
    sd = {k: v.astype(np.float64) for k, v in export.to_torch_state_dict(model).items()}
    big = float(np.finfo(np.float32).max)
    sd["0.weight"][0, 0] = big * (1 + 2.0 ** -30)    # rounds down to float32's max
    export.load_torch_state_dict(model, sd)
    assert model.layers[0].W[0, 0] == np.float32(big)


def test_a_float32_onnx_graph_refuses_a_weight_beyond_float32():
    pytest.importorskip("onnx")
    model = _model(np.float64)
    model.layers[1].W[0, 0] = 1e39
    with pytest.raises(DTypeRangeError, match="layers\\[1\\]"):
        model.to_onnx(dtype=np.float32)
    assert model.to_onnx(dtype=np.float64) is not None


def test_activations_given_as_one_string_are_named():
    sd = export.to_torch_state_dict(_model())
    with pytest.raises(TypeError, match="one activation name per Linear"):
        export.from_torch_state_dict(sd, "relu")


def test_a_folder_as_the_target_is_named_not_the_temporary_file(tmp_path):
    pytest.importorskip("onnx")
    (tmp_path / "d.npz").mkdir()
    (tmp_path / "d.onnx").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder") as info:
        _model().save(tmp_path / "d.npz")
    assert info.value.filename == str(tmp_path / "d.npz")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        _model().to_onnx(tmp_path / "d.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "d.onnx"]


def test_bytes_paths_save_load_and_export(tmp_path):
    # save refused b"m.npz" as "(got .npz')", to_onnx raised startswith's TypeError
    pytest.importorskip("onnx")
    model = _model()
    path = os.fsencode(tmp_path / "m.npz")
    model.save(path)
    assert np.array_equal(nnlib.load(path).layers[0].W, model.layers[0].W)
    model.to_onnx(os.fsencode(tmp_path / "m.onnx"))
    assert (tmp_path / "m.onnx").stat().st_size > 0
    with pytest.raises(ValueError, match=r"must end in \.npz \(got \.h5\)"):
        model.save(os.fsencode(tmp_path / "m.h5"))


# (activation, parameter): 0.01 and 0.3 are not float32 numbers; ONNX's alpha attribute is
DOUBLE_ACTIVATIONS = [("leaky_relu", None), ("leaky_relu", 0.3), ("leaky_relu", 2.5),
                      ("elu", None), ("elu", 0.3), ("elu", 2.5)]


@pytest.mark.parametrize("act,param", DOUBLE_ACTIVATIONS,
                         ids=[f"{a}-{p}" for a, p in DOUBLE_ACTIVATIONS])
def test_a_float64_onnx_graph_keeps_the_activation_parameter_in_double(act, param):
    # LeakyRelu(alpha=0.01) in a float64 graph computed with 0.0099999998: every negative
    # output 1.4e-9 off (6e6 ulp); onnxruntime had no double Elu kernel at all
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    m = nnlib.Sequential([nnlib.Dense(1, 1, act, init="zeros", activation_param=param)])
    m.layers[0].W[...] = 1.0
    z = np.r_[-np.logspace(-300, 2.8, 400), 0.0, np.logspace(-300, 2.8, 50)][:, None]
    sess = ort.InferenceSession(m.to_onnx(dtype=np.float64).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got, want = sess.run(None, {"X": z})[0], m.predict(z)
    assert got.dtype == np.float64
    # nnlib's elu is expm1 to about 1 ulp; the composition adds at most ~2 ulp
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(np.float64).eps, atol=0)


BAD_OPSETS = [("3", ["relu"], np.float32, 3, ValueError),
              ("6", ["relu"], np.float32, 6, ValueError),
              ("sign-8", ["sign"], np.float32, 8, ValueError),
              ("f64-leaky-8", ["leaky_relu"], np.float64, 8, ValueError),
              ("99", ["relu"], np.float32, 99, ValueError),
              ("bool", ["relu"], np.float32, True, TypeError),
              ("str", ["relu"], np.float32, "17", TypeError)]


@pytest.mark.parametrize("oid,acts,dtype,opset,error", BAD_OPSETS,
                         ids=[b[0] for b in BAD_OPSETS])
def test_an_opset_the_graph_cannot_use_is_named(oid, acts, dtype, opset, error):
    # opset 3 and 99 passed onnx.checker and failed in onnxruntime; 8 with Sign or a
    # float64 leaky_relu raised onnx's ValidationError (no ValueError)
    pytest.importorskip("onnx")
    m = nnlib.Sequential([nnlib.Dense(2, 3, acts[0], random_state=0),
                          nnlib.Dense(3, 2, random_state=1)])
    with pytest.raises(error, match="opset"):
        m.to_onnx(opset=opset, dtype=dtype)


def test_the_lowest_opsets_that_fit_still_export():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    for act, dtype, opset in (("relu", np.float32, 8), ("sign", np.float32, 9),
                              ("leaky_relu", np.float64, 9)):
        m = nnlib.Sequential([nnlib.Dense(2, 3, act, random_state=0),
                              nnlib.Dense(3, 2, random_state=1)])
        sess = ort.InferenceSession(m.to_onnx(opset=opset, dtype=dtype).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        X = np.array([[0.5, -2.0]], dtype=dtype)
        np.testing.assert_allclose(sess.run(None, {"X": X})[0], m.predict(X), rtol=1e-6)


BAD_NAMES = [("input-W0", dict(input_name="W0")), ("input-b1", dict(input_name="b1")),
             ("input-Z0", dict(input_name="Z0")), ("output-H0", dict(output_name="H0")),
             ("output-W1", dict(output_name="W1")), ("same", dict(input_name="a",
                                                                   output_name="a")),
             ("empty", dict(input_name="")), ("not-str", dict(output_name=3))]


@pytest.mark.parametrize("nid,kwargs", BAD_NAMES, ids=[b[0] for b in BAD_NAMES])
def test_onnx_io_names_that_clash_are_named(nid, kwargs):
    # input_name="W0" gave a graph whose input was the first weight's initializer (no
    # input at all); the others raised onnx's ValidationError or onnxruntime's Fail
    pytest.importorskip("onnx")
    m = nnlib.Sequential([nnlib.Dense(2, 2, "tanh", random_state=0),
                          nnlib.Dense(2, 2, random_state=1)])
    with pytest.raises(ValueError, match="_name"):
        m.to_onnx(**kwargs)
