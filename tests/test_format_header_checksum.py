"""The header checksum of a saved model (``header_sha256``, ``nnlib._format``): a header
edited to another valid value (a Dropout rate, an activation, the loss, a learning rate)
is refused with a ValueError naming the file; what nnlib writes round-trips through
JSON to the same digest; files written before the field existed (no ``header_sha256``)
load exactly as before, and files with it stay readable by an nnlib without it (the
arrays' ``sha256`` is unchanged and the new field is one more top-level key)."""
import base64
import json
import zlib

import numpy as np
import pytest

import nnlib
from nnlib import _format
from nnlib import optim as O
from nnlib.layers import Dense, Dropout

# A model saved by nnlib before header_sha256 existed (main at a594578), include_optimizer
# =True: Dense(2, 3, tanh, float32), Dropout(0.25, seed 7), Dense(3, 2, regularized
# (True, True)), fitted 2 epochs with SGD(lr=0.1, momentum=0.9); zlib-compressed .npz.
OLD_FILE = zlib.decompress(base64.b64decode(
    "eNrNVl9oHEUY36RNz54vYlX6Yrqu4qVwDfvn0r2LMYc0VLBUTqsEW8M6dzt7t7q3u5mdTXueQStII0SKSLUP"
    "2pfSUlHBh9aicHeIb74qYkEERRF8qRSEIkX9Zv+kt9sclCRK5pi9mW++33z/v93KgS1b93DheIA7Q+/76Z9o"
    "ZLl7uAZGOibjttsa4u7i3t8a8sX/7zz57MHKc0PcAtfO6dirkdwkn3vFl3J5Pmc4hBJkaw6BC4C+H1keBrrX"
    "QC6G/ZgkTsj53Xl+kV/ryLYFkNJEVJjkBdu2zOr4ITzvY5uayBLyvLCAiWc6NhxLsNNpy8WM1bAcRBWZcVio"
    "BTxAPNIW4uMZbHuYHdqaybBysHR8JkaBNapRcwHR8GKBIrshJKiaiwhqwpntWxacmLYZaFi3HOJQzbdNprWw"
    "mOf7ZBLHZRKAnSDKSOK4PAE7D2MddipbUuzCspAEppRV+pSVb1HW1JlzaGtNCjPdcN23EDFfDpQ6QokPIWXP"
    "ucU5OHZcajbhkMBhW6hZyGOuFQ49PsPAgRStThzfjTxukcBQFpym0wTV/GZAKLFooaaLbdOuBxSRmYXBA8RZ"
    "AIIRJpNwFJv1BtV0XEOtFb4mOhZo0ccXiA6EAgOIA88oocoeDd0N2sReEPt8zZaWQwPoio5a1TcMMHIuiEQM"
    "k9YGk9cGU24fxoACIgS1Qo5ZkUWjGjxnpWAdPCF6opaGh3RpAF0eQFduoQe+biB5Yi/LCFwykK6IpZKkiqIo"
    "FaUJVS4YNVHGerFYlSVcRLWCgnVDNVRdruqqaoiFEjIUGZewrCpB6TphdnmOQSHkWo0AQQOhUEotYbGS6Guf"
    "/ZmT4r62DfrarBj3tNMRT/y/ak+bMgq31dNYXq2rpfHZszdGysevvt39+kvS27X/RC9zJVP+WyXlpD2/n8J/"
    "9dtTXbFnOeJZ3gh7lPU1aGbPr9+OTn3+/LnO/IeNR5M2fDT/5nAiJtJ/EhOoFHmdMTn13RedF556q3zi3tHe"
    "Yw8+Xb4kvN49fu18N2nPS7VdlURMVuxZiniWNibH1h2T347Od2Cm4vFEMXN/rP9O0H+1frBZq+aHh97offXe"
    "q70dI490S5NXOh9fvzD98JnrnaSFM7/c3U5ZKA2ycLPVUWbvcveZY6T74jeFVN59cvaDYsoq+X+J2wZU1h8n"
    "L09fPXm5O3ow24NZHju8r5c7vC/V7Yyx3s8pC5VBFm62WnOvfToNE2I2NLxnS/JLm31Hs5nlbo7Xhtjz5nd3"
    "GsfeZKejCG5L4L6Hm8L3WhrD3hbLUS4nMRdGuOjdkcaw7ry6HAu2Ya9OY1gHXIp8n8RMZbioH6YxrOvEcnYm"
    "MDcAM6gHpW9hlR1bmLzlxzu4gXWevoVV0uq6XNzODayr9C0sW2MvJG95N8sNzN3KgZHAZdvhxw9DBtzJdv8C"
    "jyyIUA=="
))
OLD_FILE_FIELDS = {"format", "version", "dtype", "layers", "optimizer", "arrays", "sha256",
                   "loss"}


def _read_npz(path):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    return json.loads(data.pop("header").tobytes()), data


def _write_npz(path, header, arrays, **dumps_kwargs):
    text = json.dumps(header, **dumps_kwargs).encode()
    with open(path, "wb") as f:
        np.savez(f, header=np.frombuffer(text, np.uint8), **arrays)


def _fitted(dtype=np.float64, optimizer=None):
    model = nnlib.Sequential([Dense(3, 4, "tanh", random_state=0, dtype=dtype),
                              Dropout(0.5, random_state=3),
                              Dense(4, 2, "leaky_relu", random_state=1, dtype=dtype,
                                    activation_param=0.05)])
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 3)).astype(dtype), rng.integers(0, 2, 16)
    model.fit(X, y, optimizer=optimizer or O.SGD(lr=0.05, momentum=0.9), epochs=2,
              batch_size=4, random_state=0)
    return model, X


@pytest.fixture
def saved(tmp_path):
    model, X = _fitted()
    path = tmp_path / "m.npz"
    model.save(path, include_optimizer=True)
    return model, X, path


def _set(keys, value):
    def edit(header):
        node = header
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return edit


# Each edit gives a header check_header accepts: only the checksum tells.
EDITS = {
    "dropout-rate": _set(["layers", 1, "rate"], 0.25),
    "dropout-seed": _set(["layers", 1, "seed"], 4),
    "dropout-step": _set(["layers", 1, "step"], 0),
    "activation": _set(["layers", 0, "activation"], "relu"),
    "activation-param": _set(["layers", 2, "activation_param"], 0.5),
    "init": _set(["layers", 0, "init"], "he_normal"),
    "regularized": _set(["layers", 0, "regularized"], [False, False]),
    "loss": _set(["loss"], "squared_error"),
    "loss-dropped": lambda h: h.pop("loss"),
    "optimizer-lr": _set(["optimizer", "param_groups", 0, "lr"], 0.5),
    "optimizer-momentum": _set(["optimizer", "param_groups", 0, "momentum"], 0.0),
    "optimizer-nesterov": _set(["optimizer", "param_groups", 0, "nesterov"], True),
    "optimizer-step": _set(["optimizer", "state", 0, "step"], 1000),
    "extra-field": _set(["note"], "hand-edited"),
}


@pytest.mark.parametrize("edit", list(EDITS.values()), ids=list(EDITS))
def test_a_header_edited_to_another_valid_value_is_refused(saved, edit):
    """Before: each of these loaded silently as a different model."""
    _, _, path = saved
    header, arrays = _read_npz(path)
    edit(header)
    _format.check_header(header, path)          # the edited header is itself valid
    _write_npz(path, header, arrays)
    with pytest.raises(ValueError, match="the header does not match its checksum") as info:
        nnlib.load(path)
    assert str(path) in str(info.value)


def test_the_edited_header_loads_once_signed(saved):
    """The refusal above is the checksum's alone: the same edit, signed, loads."""
    _, _, path = saved
    header, arrays = _read_npz(path)
    EDITS["dropout-rate"](header)
    _write_npz(path, _format.signed(header), arrays)
    assert nnlib.load(path).layers[1].rate == 0.25


def test_key_order_and_whitespace_do_not_count(saved):
    model, X, path = saved
    header, arrays = _read_npz(path)
    _write_npz(path, dict(reversed(list(header.items()))), arrays, indent=3,
               sort_keys=True)
    np.testing.assert_array_equal(nnlib.load(path).predict(X), model.predict(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("opt", ["sgd", "adam", "none"])
def test_what_save_writes_carries_a_digest_read_rederives(tmp_path, dtype, opt):
    """Awkward floats (0.1 + 0.2, a subnormal, 1e-8 as a product) round-trip through the
    JSON text to the same digest; the optimizer resumes bit-identically."""
    optimizer = {"sgd": O.SGD(lr=0.1 + 0.2, momentum=1 / 3, weight_decay=5e-324),
                 "adam": O.Adam(lr=3e-5, betas=(0.9, 0.999 + 1e-16), eps=1e300 * 1e-308),
                 "none": None}[opt]
    model, X = _fitted(dtype, optimizer)
    path = tmp_path / "m.npz"
    model.save(path, include_optimizer=opt != "none")
    header, arrays = _read_npz(path)
    assert set(header) - OLD_FILE_FIELDS == {"header_sha256"}
    assert header["header_sha256"] == _format.header_digest(header)
    # what an nnlib without header_sha256 checks still holds
    assert header["sha256"] == _format.digest(arrays[n] for n in header["arrays"])
    loaded = nnlib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.loss == model.loss and loaded.layers[1].step == model.layers[1].step
    if opt != "none":
        assert repr(loaded.optimizer) == repr(model.optimizer)
        y = np.arange(len(X)) % 2
        for m in (model, loaded):
            m.fit(X, y, optimizer=m.optimizer, epochs=1, batch_size=4, random_state=1)
        for p, q in zip(model.params, loaded.params):
            np.testing.assert_array_equal(p, q)


def test_write_replaces_a_stale_digest(saved, tmp_path):
    """A header passed to write with an old header_sha256 (a loaded header, edited) is
    signed afresh."""
    _, _, path = saved
    header, arrays = _read_npz(path)
    header["layers"][1]["rate"] = 0.125
    _format.write(tmp_path / "again.npz", header, arrays)
    assert nnlib.load(tmp_path / "again.npz").layers[1].rate == 0.125


def test_a_file_saved_before_header_sha256_loads_as_before(tmp_path):
    path = tmp_path / "old.npz"
    path.write_bytes(OLD_FILE)
    header, arrays = _read_npz(path)
    assert set(header) == OLD_FILE_FIELDS                  # no header_sha256
    model = nnlib.load(path)
    assert [l.spec() for l in model.layers] == header["layers"]
    assert (model.layers[1].rate, model.layers[1].seed, model.layers[1].step) == \
        (0.25, 7, 4)
    assert model.layers[2].regularized == (True, True)
    assert model.loss == "softmax_cross_entropy" and model.dtype == np.float32
    for name, p in zip(header["arrays"], model.params):
        np.testing.assert_array_equal(p, arrays[name], strict=True)
    sd = model.optimizer.state_dict()
    assert type(model.optimizer) is O.SGD
    assert (sd["param_groups"][0]["lr"], sd["param_groups"][0]["momentum"]) == (0.1, 0.9)
    for i in range(4):
        assert sd["state"][i]["step"] == 4
        np.testing.assert_array_equal(sd["state"][i]["momentum_buffer"],
                                      arrays[f"opt{i}_momentum_buffer"], strict=True)
    # saved again, it gets the header checksum and loads to the same model
    model.save(tmp_path / "new.npz", include_optimizer=True)
    again = nnlib.load(tmp_path / "new.npz")
    X = np.array([[0.0, 1.0], [1.0, 0.5]], np.float32)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_header_without_the_field_loads_by_the_old_rule(tmp_path, dtype):
    """Files built as nnlib wrote them before the field (model_arrays' header, which
    does not hold it): they load, with or without an optimizer section."""
    model, X = _fitted(dtype)
    for opt in (None, model.optimizer):
        header, arrays = _format.model_arrays(model, opt)
        assert "header_sha256" not in header
        path = tmp_path / "old-rule.npz"
        _write_npz(path, header, arrays)
        loaded = nnlib.load(path)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        assert (getattr(loaded, "optimizer", None) is None) == (opt is None)


@pytest.mark.parametrize("value", [None, 1, ["x"], "0" * 64, "F" * 64],
                         ids=["null", "int", "list", "zeros", "upper"])
def test_a_damaged_header_sha256_is_refused(saved, value):
    _, _, path = saved
    header, arrays = _read_npz(path)
    header["header_sha256"] = value if value != "F" * 64 else header["header_sha256"].upper()
    _write_npz(path, header, arrays)
    with pytest.raises(ValueError, match="header does not match its checksum"):
        nnlib.load(path)


def test_a_header_nested_too_deep_to_digest_is_a_value_error(saved):
    _, _, path = saved
    header, arrays = _read_npz(path)
    depth = 5000
    text = json.dumps(header)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    with open(path, "wb") as f:
        np.savez(f, header=np.frombuffer(text.encode(), np.uint8), **arrays)
    with pytest.raises(ValueError, match="not a readable nnlib model") as info:
        nnlib.load(path)
    assert str(path) in str(info.value)
