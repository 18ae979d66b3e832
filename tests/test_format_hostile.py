"""Crafted model files whose every checksum is right (whoever edits a file can recompute
them) but whose contents are hostile, and include_optimizer round trips that must give
back the optimizer that was saved. Found by probe33:

* a Dense layer declaring n_in = 10**30 (its .npy header agreeing) made ``load`` raise
  OverflowError from ``np.prod``, and n_in = 2**61 + 1 a byte count that wrapped to a
  negative number in the message;
* a Dense spec's ``init`` was never checked: ``{"a": 1}`` loaded as ``layer.init``;
* an optimizer that had not adopted the model's arrays yet (``model.optimizer =
  Adam(lr=0.01)`` before a fit) was saved without its hyper-parameters and loaded as
  ``Adam()`` (lr 0.001), and a saved optimizer's ``defaults`` (what
  ``add_param_group`` fills in, what the next adopted group gets) were the class's;
* a file written before that fix, of such an optimizer, holds neither its defaults nor a
  group: it loaded with the class's defaults without a word, and a fit that went on with
  ``model.optimizer`` trained with them (session 34): now a UserWarning names each
  missing hyper-parameter and the value used instead;
* a state entry's step of 2**63 or more loaded, then the next step raised OverflowError
  ("Python int too large to convert to C long"); 2**64, a string or a bool step raised
  NumPy's "ufunc 'isfinite' not supported" TypeError or loaded as step 1.
"""
import io
import json
import warnings
import zipfile

import numpy as np
import pytest

import nnlib
from nnlib import _format
from nnlib.optim import SGD, Adam, AdamW, RMSprop


def _model():
    return nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                             nnlib.Dense(4, 2, random_state=1)])


def _npy(arr):
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def _write_signed(path, header, members):
    """A zip of ``members`` (name -> .npy bytes) with ``header`` signed as save signs it
    (the arrays' checksum is whatever the header says: the checks before it must fire)."""
    with zipfile.ZipFile(path, "w") as z:
        text = json.dumps(_format.signed(header)).encode()
        z.writestr("header.npy", _npy(np.frombuffer(text, dtype=np.uint8)))
        for name, data in members.items():
            z.writestr(name + ".npy", data)


HUGE_N_IN = [("2**61+1", 2 ** 61 + 1), ("2**62", 2 ** 62), ("2**63", 2 ** 63),
             ("10**30", 10 ** 30)]


@pytest.mark.parametrize("nid,n_in", HUGE_N_IN, ids=[h[0] for h in HUGE_N_IN])
def test_a_huge_declared_layer_is_refused_as_a_value_error(tmp_path, nid, n_in):
    header, arrays = _format.model_arrays(_model())
    header = json.loads(json.dumps(header))
    header["layers"][0]["n_in"] = n_in
    w0 = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        w0, {"descr": "<f8", "fortran_order": False, "shape": (n_in, 4)})
    members = {"W0": w0.getvalue(), **{k: _npy(arrays[k]) for k in ("b0", "W1", "b1")}}
    path = tmp_path / "huge.npz"
    _write_signed(path, header, members)
    with pytest.raises(ValueError, match="W0") as info:
        nnlib.load(path)
    assert str(path) in str(info.value)
    assert "-" not in str(info.value).split("declares")[-1].split("bytes")[0]


BAD_INITS = [("dict", {"a": 1}), ("list", [1, 2]), ("int", 5), ("unknown", "nonsense"),
             ("null", None)]


@pytest.mark.parametrize("iid,init", BAD_INITS, ids=[b[0] for b in BAD_INITS])
def test_an_unknown_init_is_named(tmp_path, iid, init):
    header, arrays = _format.model_arrays(_model())
    header["layers"][1]["init"] = init
    path = tmp_path / "init.npz"
    _format.write(path, header, arrays)
    with pytest.raises(ValueError, match=r"layer 1 has init="):
        nnlib.load(path)


def test_every_initializer_loads(tmp_path):
    from nnlib.layers import INITIALIZERS
    for init in INITIALIZERS:
        m = nnlib.Sequential([nnlib.Dense(3, 2, init=init, random_state=0)])
        m.save(tmp_path / "m.npz")
        assert nnlib.load(tmp_path / "m.npz").layers[0].init == init


# (optimizer made before the model's arrays exist, fit or not)
UNADOPTED = [
    ("Adam", lambda: Adam(lr=0.01, betas=(0.5, 0.6), amsgrad=True)),
    ("AdamW", lambda: AdamW(lr=0.02, weight_decay=0.3)),
    ("SGD", lambda: SGD(lr=0.3, momentum=0.9, nesterov=True)),
    ("RMSprop", lambda: RMSprop(lr=0.05, alpha=0.5, centered=True)),
]


@pytest.mark.parametrize("oid,make", UNADOPTED, ids=[u[0] for u in UNADOPTED])
def test_an_optimizer_not_yet_adopted_keeps_its_hyper_parameters(tmp_path, oid, make):
    m = _model()
    m.optimizer = make()
    m.save(tmp_path / "m.npz", include_optimizer=True)
    loaded = nnlib.load(tmp_path / "m.npz").optimizer
    assert type(loaded) is type(m.optimizer)
    assert loaded.defaults == m.optimizer.defaults
    assert repr(loaded) == repr(m.optimizer)


@pytest.mark.parametrize("oid,make", UNADOPTED, ids=[u[0] for u in UNADOPTED])
def test_a_saved_optimizers_defaults_fill_a_new_group(tmp_path, oid, make):
    m = _model()
    X = np.random.default_rng(0).normal(size=(8, 3))
    m.fit(X, np.arange(8) % 2, optimizer=make(), epochs=1, verbose=0)
    m.save(tmp_path / "m.npz", include_optimizer=True)
    loaded = nnlib.load(tmp_path / "m.npz").optimizer
    assert loaded.defaults == m.optimizer.defaults
    extra = [np.zeros(2)]
    loaded.add_param_group({"params": extra[:]})
    m.optimizer.add_param_group({"params": [np.zeros(2)]})
    assert {k: v for k, v in loaded.param_groups[-1].items() if k != "params"} == \
        {k: v for k, v in m.optimizer.param_groups[-1].items() if k != "params"}


def test_a_file_without_saved_defaults_loads_with_the_class_defaults(tmp_path):
    # files written before the defaults were saved: their groups carry every value
    m = _model()
    m.fit(np.eye(3), [0, 1, 0], optimizer=Adam(lr=0.05), epochs=1, verbose=0)
    header, arrays = _format.model_arrays(m, m.optimizer)
    del header["optimizer"]["defaults"]
    _format.write(tmp_path / "old.npz", header, arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the groups hold what fit used
        loaded = nnlib.load(tmp_path / "old.npz").optimizer
    assert loaded.param_groups[0]["lr"] == 0.05 and loaded.defaults == Adam().defaults


@pytest.mark.parametrize("oid,make", UNADOPTED, ids=[u[0] for u in UNADOPTED])
def test_an_old_file_of_an_unbound_optimizer_warns_naming_what_it_lacks(tmp_path, oid,
                                                                       make):
    # written the way nnlib wrote it before the section held "defaults": no groups (the
    # optimizer had no arrays yet), so nothing of lr=... was kept
    m = _model()
    m.optimizer = make()
    header, arrays = _format.model_arrays(m, m.optimizer)
    assert header["optimizer"]["param_groups"] == []
    del header["optimizer"]["defaults"]
    _format.write(tmp_path / "old.npz", header, arrays)
    with pytest.warns(UserWarning, match=r"old\.npz: the saved " + oid) as rec:
        loaded = nnlib.load(tmp_path / "old.npz").optimizer
    msg = str(rec[0].message)
    cls = type(m.optimizer)
    assert rec[0].filename == __file__          # points at the caller of load
    for k in cls._HYPER:
        assert k in msg and f"{k}={cls().defaults[k]!r}" in msg
    assert loaded.defaults == cls().defaults    # what is used, as the warning says


def test_a_current_file_of_an_unbound_optimizer_loads_quietly(tmp_path):
    m = _model()
    m.optimizer = Adam(lr=0.01)
    m.save(tmp_path / "m.npz", include_optimizer=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nnlib.load(tmp_path / "m.npz").optimizer.lr == 0.01


BAD_DEFAULTS = [("list", [0.1]), ("unknown key", {"lr": 0.1, "foo": 1}),
                ("bad value", {"lr": -1.0})]


@pytest.mark.parametrize("did,defaults", BAD_DEFAULTS, ids=[b[0] for b in BAD_DEFAULTS])
def test_bad_saved_defaults_are_named(tmp_path, did, defaults):
    m = _model()
    m.optimizer = Adam(lr=0.01)
    header, arrays = _format.model_arrays(m, m.optimizer)
    header["optimizer"]["defaults"] = defaults
    _format.write(tmp_path / "d.npz", header, arrays)
    with pytest.raises(ValueError, match="the saved optimizer"):
        nnlib.load(tmp_path / "d.npz")


BAD_STEPS = [("2**63", 2 ** 63), ("2**64", 2 ** 64), ("2**70", 2 ** 70), ("-1", -1),
             ("true", True), ("string", "3"), ("float 2.5", 2.5), ("nan", float("nan"))]


@pytest.mark.parametrize("sid,step", BAD_STEPS, ids=[b[0] for b in BAD_STEPS])
def test_load_state_dict_names_a_bad_step(sid, step):
    w = np.zeros(3)
    opt = Adam([w], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["state"][0]["step"] = step
    with pytest.raises(ValueError, match=r"state\[0\]\['step'\] must be an integer"):
        opt.load_state_dict(sd)
    assert opt.state[w]["step"] == 1                    # unchanged


@pytest.mark.parametrize("step", [0, 5, 2 ** 62, np.int64(7), np.float32(3.0)],
                         ids=["0", "5", "2**62", "int64", "float32"])
def test_load_state_dict_takes_integral_steps(step):
    w = np.zeros(3)
    opt = Adam([w], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["state"][0]["step"] = step
    opt.load_state_dict(sd)
    assert opt.state[w]["step"] == int(step)


def test_a_saved_step_too_large_for_the_kernels_is_refused_by_load(tmp_path):
    m = _model()
    m.fit(np.eye(3), [0, 1, 0], optimizer=Adam(lr=0.05), epochs=1, verbose=0)
    header, arrays = _format.model_arrays(m, m.optimizer)
    header["optimizer"]["state"][0]["step"] = 2 ** 63
    _format.write(tmp_path / "s.npz", header, arrays)
    with pytest.raises(ValueError, match=r"'step'\] must be an integer"):
        nnlib.load(tmp_path / "s.npz")


def _load_in_a_thread(path, seconds=20.0):
    """What nnlib.load(path) raised, from a daemon thread given ``seconds`` (a hang
    fails the test instead of blocking the suite)."""
    import threading
    out = []

    def run():
        try:
            nnlib.load(path)
            out.append(None)
        except BaseException as exc:        # noqa: BLE001 -- handed to the test
            out.append(exc)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"nnlib.load({path!r}) still runs after {seconds} s (a hang)"
    return out[0]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_not_waited_on(tmp_path):
    # open() of a FIFO without a writer waited forever
    import os
    path = tmp_path / "m.npz"
    os.mkfifo(path)
    exc = _load_in_a_thread(path)
    assert isinstance(exc, ValueError) and "FIFO" in str(exc)


def test_a_folder_and_a_device_are_named(tmp_path):
    import os
    assert isinstance(_load_in_a_thread(tmp_path), IsADirectoryError)
    if os.path.exists("/dev/zero"):
        exc = _load_in_a_thread("/dev/zero")
        assert isinstance(exc, ValueError) and "device" in str(exc)
