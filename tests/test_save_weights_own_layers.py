"""save_weights of a model with layers of its own (Keras's save_weights: every layer's
weights). Before probe36 save_weights refused such a model (TypeError: save writes
models of Dense and Dropout layers only) while load_weights read into one."""
import json
import zipfile

import numpy as np
import pytest

import nnlib
from nnlib.callbacks import ModelCheckpoint
from nnlib.layers import Dense, Dropout, Layer

DTYPES = [np.float32, np.float64]


class Scale(Layer):
    """A learned factor per feature, with a 2-d array as well (shapes beyond Dense's)."""

    def __init__(self, n, dtype=np.float64):
        self.n_in = self.n_out = n
        self.s = np.ones(n, dtype)
        self.m = np.zeros((2, n), dtype)

    params = property(lambda self: [self.s, self.m])
    param_names = ("s", "m")
    dtype = property(lambda self: self.s.dtype)

    def forward(self, X, n_threads=None):
        return X * self.s + self.m.sum(axis=0)

    def forward_train(self, X):
        return self.forward(X), lambda dH: (dH * self.s, [(dH * X).sum(axis=0),
                                                          np.tile(dH.sum(axis=0), (2, 1))])


def _model(dtype, seed=0):
    return nnlib.Sequential([Dense(3, 4, "tanh", random_state=seed, dtype=dtype),
                             Scale(4, dtype), Dropout(0.25),
                             Dense(4, 3, random_state=seed + 1, dtype=dtype)])


def _data(n=30):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), np.arange(n) % 3


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_a_model_with_its_own_layer_round_trips_exactly(dtype, tmp_path):
    src = _model(dtype)
    src.fit(*_data(), epochs=3)
    path = tmp_path / "w.npz"
    src.save_weights(path)
    dst = _model(dtype, seed=7)
    arrays = dst.params
    dst.load_weights(path)
    for got, want, same in zip(dst.params, src.params, arrays):
        assert got is same                       # in place
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    X = _data()[0].astype(dtype)
    np.testing.assert_array_equal(dst.predict(X), src.predict(X))


def test_the_weights_file_is_refused_by_load_and_by_a_model_of_other_shapes(tmp_path):
    src = _model(np.float64)
    path = tmp_path / "w.npz"
    src.save_weights(path)
    with pytest.raises(ValueError, match="holds weights only .* load_weights"):
        nnlib.load(path)
    other = nnlib.Sequential([Dense(3, 4, random_state=0), Scale(4), Dense(4, 2)])
    before = [p.copy() for p in other.params]
    with pytest.raises(ValueError, match=r"holds parameters of shapes"):
        other.load_weights(path)
    for p, q in zip(other.params, before):
        np.testing.assert_array_equal(p, q)


def test_a_model_of_dense_and_dropout_keeps_writing_the_model_file(tmp_path):
    # the file save writes, as before: nnlib.load rebuilds it, load_weights reads it
    model = nnlib.Sequential([Dense(3, 4, "relu", random_state=0), Dropout(0.5),
                              Dense(4, 3, random_state=1)])
    path = tmp_path / "w.npz"
    model.save_weights(path)
    with zipfile.ZipFile(path) as zf, zf.open("header.npy") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        header = json.loads(f.read())
    assert header["format"] == "nnlib.Sequential"
    back = nnlib.load(path)
    for p, q in zip(back.params, model.params):
        np.testing.assert_array_equal(p, q)
    # the model file loads into a model with a layer of its own of the same shapes too
    mixed = nnlib.Sequential([Dense(3, 4, random_state=5), Dropout(0.5),
                              type("Plain", (Dense,), {})(4, 3, random_state=6)])
    mixed.load_weights(path)
    for p, q in zip(mixed.params, model.params):
        np.testing.assert_array_equal(p, q)


def test_model_checkpoint_save_weights_only_saves_a_model_with_its_own_layer(tmp_path):
    model = _model(np.float64)
    path = str(tmp_path / "ck.npz")
    model.fit(*_data(), epochs=2, callbacks=[ModelCheckpoint(path,
                                                             save_weights_only=True)])
    back = _model(np.float64, seed=3)
    back.load_weights(path)
    for p, q in zip(back.params, model.params):
        np.testing.assert_array_equal(p, q)


def test_mixed_dtypes_are_refused_naming_the_layer(tmp_path):
    model = _model(np.float64)
    model.layers[1].m = np.zeros((2, 4), np.float16)
    with pytest.raises(TypeError, match=r"layers\[1\] \(Scale\) .* float16"):
        model.save_weights(tmp_path / "w.npz")
    assert not (tmp_path / "w.npz").exists()


def _rewrite(path, edit):
    """The weights file at ``path`` with its header edited by ``edit`` (checksums
    recomputed: what an editor or a hostile writer can do)."""
    from nnlib import _format
    with np.load(path) as f:
        header = json.loads(bytes(f["header"]))
        arrays = {k: f[k] for k in f.files if k != "header"}
    edit(header, arrays)
    header["sha256"] = _format.digest(arrays[n] for n in header["arrays"]
                                      if n in arrays)
    _format.write(path, header, arrays)


HOSTILE = {
    "huge-shape": (lambda h, a: h["layers"][1]["shapes"].__setitem__(0, [2 ** 40, 2 ** 20]),
                   "declares .* bytes of data but its member holds|has shape"),
    "negative-dim": (lambda h, a: h["layers"][1]["shapes"].__setitem__(0, [-4]),
                     "declares the shape"),
    "bool-dim": (lambda h, a: h["layers"][1]["shapes"].__setitem__(0, [True]),
                 "declares the shape"),
    "too-many-dims": (lambda h, a: h["layers"][1]["shapes"].__setitem__(0, [1] * 40),
                      "declares the shape"),
    "wrong-dtype-array": (lambda h, a: a.__setitem__("p2", a["p2"].astype(np.int64)),
                          "array p2 has shape"),
    "extra-field": (lambda h, a: h["layers"][0].__setitem__("x", 1), "layer 0 must be"),
    "arrays-misnamed": (lambda h, a: h.__setitem__("arrays", h["arrays"][::-1]),
                        "'arrays' must be p0, p1"),
    "version": (lambda h, a: h.__setitem__("version", 2), "weights format version 2"),
    "dtype": (lambda h, a: h.__setitem__("dtype", "float16"), "unsupported dtype"),
    "no-layers": (lambda h, a: h.__setitem__("layers", []), "non-empty list"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_a_hostile_weights_file_is_refused_and_the_model_untouched(case, tmp_path):
    edit, message = HOSTILE[case]
    path = tmp_path / "w.npz"
    _model(np.float64).save_weights(path)
    _rewrite(path, edit)
    model = _model(np.float64, seed=4)
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=message):
        model.load_weights(path)
    for p, q in zip(model.params, before):
        np.testing.assert_array_equal(p, q)


def test_a_truncated_weights_file_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    _model(np.float64).save_weights(path)
    data = path.read_bytes()
    model = _model(np.float64, seed=4)
    for cut in (10, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not .*nnlib model file"):
            model.load_weights(path)


class Affine(Layer):
    """A layer of Dense's shapes ((n, n) and (n,)) that is no Dense: its W scales,
    elementwise, where Dense's multiplies."""

    def __init__(self, n, dtype=np.float64):
        self.n_in = self.n_out = n
        self.W = np.ones((n, n), dtype)
        self.b = np.zeros(n, dtype)

    params = property(lambda self: [self.W, self.b])
    dtype = property(lambda self: self.W.dtype)

    def forward(self, X, n_threads=None):
        return X * self.W.sum(axis=0) + self.b

    def forward_train(self, X):
        return self.forward(X), lambda dH: (dH * self.W.sum(axis=0),
                                            [np.tile((dH * X).sum(axis=0), (self.n_in, 1)),
                                             dH.sum(axis=0)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("written", ["weights-only", "model-file"])
def test_a_file_is_refused_by_a_model_of_the_same_shapes_but_other_layer_types(
        written, dtype, tmp_path):
    # session 37: load_weights compared the shapes alone, and read a Dense layer's
    # weights into an Affine of the same shapes (and the Affine's into a Dense)
    path = tmp_path / "w.npz"
    if written == "weights-only":
        nnlib.Sequential([Dense(3, 3, random_state=0, dtype=dtype),
                          Affine(3, dtype)]).save_weights(path)
        other = nnlib.Sequential([Affine(3, dtype), Dense(3, 3, random_state=1,
                                                          dtype=dtype)])
    else:
        nnlib.Sequential([Dense(3, 3, random_state=0, dtype=dtype),
                          Dense(3, 3, random_state=1, dtype=dtype)]).save_weights(path)
        other = nnlib.Sequential([Dense(3, 3, random_state=2, dtype=dtype),
                                  Affine(3, dtype)])
    at = 0 if written == "weights-only" else 1
    before = [p.copy() for p in other.params]
    with pytest.raises(ValueError, match=rf"its layer {at} with parameters is a Dense "
                                         rf"of shapes \[\(3, 3\), \(3,\)\], where this "
                                         rf"model's is layers\[{at}\], a Affine"):
        other.load_weights(path)
    for p, q in zip(other.params, before):
        np.testing.assert_array_equal(p, q)


def test_a_weights_only_file_reads_into_a_subclass_of_the_written_layer(tmp_path):
    src = nnlib.Sequential([Dense(3, 3, random_state=0), Affine(3)])
    src.layers[1].W[:] = 2.0
    path = tmp_path / "w.npz"
    src.save_weights(path)
    dst = nnlib.Sequential([type("Plain", (Dense,), {})(3, 3, random_state=4),
                            type("Affine2", (Affine,), {})(3)])
    dst.load_weights(path)
    for p, q in zip(dst.params, src.params):
        np.testing.assert_array_equal(p, q)


def test_save_of_a_model_with_its_own_layer_points_at_save_weights(tmp_path):
    # session 37: the message suggested numpy.savez, from before save_weights wrote
    # such models
    model = _model(np.float64)
    with pytest.raises(TypeError, match=r"layers\[1\] is Scale: save_weights writes "
                                        r"every layer's arrays, for load_weights") as info:
        model.save(tmp_path / "m.npz")
    assert "numpy.savez" not in str(info.value)
    assert not (tmp_path / "m.npz").exists()
    model.save_weights(tmp_path / "m.npz")      # what it points at works


def _write_as_before(path, model):
    """``model.save_weights(path)`` as nnlib wrote it before session 38: every layer
    listed by its bare class name (``type(layer).__name__``), user classes included."""
    from nnlib import _format
    header, arrays = _format.weights_arrays(model)
    for spec, layer in zip(header["layers"], model.layers):
        spec["type"] = type(layer).__name__
    _format.write(path, header, arrays)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_a_user_class_named_dense_is_not_taken_for_nnlibs_dense(dtype, tmp_path):
    # session 38: the written type was matched by class name, so weights saved from a
    # user's class named "Dense" (a subclass of nnlib's, or a layer of its own) read
    # into plain Dense layers, which refuse every other subclass's weights
    sub = type("Dense", (Dense,), {"__module__": "userpkg.layers"})
    unrelated = type("Dense", (Affine,), {"__module__": "userpkg.other"})
    for mine in (sub(3, 3, random_state=0, dtype=dtype), unrelated(3, dtype)):
        path = tmp_path / "w.npz"
        nnlib.Sequential([mine, Affine(3, dtype)]).save_weights(path)
        plain = nnlib.Sequential([Dense(3, 3, random_state=1, dtype=dtype),
                                  Affine(3, dtype)])
        before = [p.copy() for p in plain.params]
        with pytest.raises(ValueError, match=rf"its layer 0 with parameters is a "
                                             rf"{type(mine).__module__}\.Dense of shapes"):
            plain.load_weights(path)
        for p, q in zip(plain.params, before):
            np.testing.assert_array_equal(p, q)
        again = nnlib.Sequential([type(mine)(3, 3, random_state=2, dtype=dtype)
                                  if type(mine) is sub else type(mine)(3, dtype),
                                  Affine(3, dtype)])
        again.load_weights(path)                # its own class reads it
        for p, q in zip(again.params, mine.params):
            np.testing.assert_array_equal(p, q)


def test_a_weights_only_file_records_nnlibs_layers_by_name_and_others_qualified(tmp_path):
    path = tmp_path / "w.npz"
    nnlib.Sequential([Dense(3, 3, random_state=0), Affine(3)]).save_weights(path)
    from nnlib import _format
    header = _format.read(path)[0]
    assert [s["type"] for s in header["layers"]] == ["Dense", f"{__name__}.Affine"]


def test_a_file_written_before_qualified_names_still_loads(tmp_path):
    # a file of main before session 38: "Dense" and the user's class by its bare name
    path = tmp_path / "old.npz"
    src = nnlib.Sequential([Dense(3, 3, random_state=0), Affine(3)])
    src.layers[1].W[:] = 3.0
    _write_as_before(path, src)
    dst = nnlib.Sequential([Dense(3, 3, random_state=5), Affine(3)])
    dst.load_weights(path)
    for p, q in zip(dst.params, src.params):
        np.testing.assert_array_equal(p, q)
    sub = nnlib.Sequential([type("Plain", (Dense,), {})(3, 3), Affine(3)])
    sub.load_weights(path)                      # a subclass of the written Dense
    other = nnlib.Sequential([Affine(3), Dense(3, 3)])
    with pytest.raises(ValueError, match=r"its layer 0 with parameters is a Dense"):
        other.load_weights(path)


def test_a_scripts_class_loads_where_it_is_imported_from_a_module(tmp_path):
    # a class saved from a script (module __main__) and loaded from its module, and back
    from nnlib import _format
    script = type("Affine", (Affine,), {"__module__": "__main__"})
    layer = Affine(3)
    assert _format.written_type_fits("__main__.Affine", layer)
    assert _format.written_type_fits(f"{__name__}.Affine", script(3))
    assert not _format.written_type_fits("otherpkg.Affine", layer)
