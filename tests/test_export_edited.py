"""Exports of a model whose layer list or arrays were edited, or that another thread is
training (session 37's probe of nnlib.export). to_onnx, to_torch, to_torch_state_dict
and load_torch_state_dict checked only that each layer is a Dense or Dropout: a W
assigned of other shapes, a float32 W in a float64 model, a broken chain of widths
exported a graph or state_dict that disagrees with predict (to_onnx's checker passes
it), an unknown activation raised KeyError, an empty list IndexError/StopIteration; and
from another thread during a fit they read weights mid-step (get_weights refuses that)
or, loading, wrote under the compiled loop (set_weights refuses that). Each is now the
layer check's error, or ConcurrentUseError."""
import threading
import time

import numpy as np
import pytest

import nnlib
from nnlib import export
from nnlib.exceptions import ConcurrentUseError
from nnlib.layers import Dense

pytest.importorskip("onnx")
pytest.importorskip("torch")


def _model(dtype=np.float64):
    return nnlib.Sequential([Dense(2, 3, "relu", random_state=0, dtype=dtype),
                             Dense(3, 2, random_state=1, dtype=dtype)])


def _state_dict_round_trip(model):
    export.load_torch_state_dict(model, {f"{k}.{n}": np.zeros(s) for k, n, s in
                                         [(0, "weight", (3, 2)), (0, "bias", (3,)),
                                          (2, "weight", (2, 3)), (2, "bias", (2,))]})


VERBS = {
    "to_onnx": lambda m: export.to_onnx(m),
    "to_torch": lambda m: export.to_torch(m),
    "to_torch_state_dict": lambda m: export.to_torch_state_dict(m),
    "load_torch_state_dict": _state_dict_round_trip,
}

EDITS = {
    "W-of-other-shape": (lambda m: setattr(m.layers[0], "W", np.ones((5, 5))),
                         nnlib.ShapeError, r"layers\[0\] is Dense\(2, 3\) but holds W of "
                                           r"shape \(5, 5\)"),
    "float32-W": (lambda m: setattr(m.layers[0], "W", m.layers[0].W.astype(np.float32)),
                  nnlib.DTypeError, "share a dtype"),
    "unknown-activation": (lambda m: setattr(m.layers[1], "activation", "nope"),
                           ValueError, r"layers\[1\] has the unknown activation 'nope'"),
    "broken-chain": (lambda m: m.layers.append(Dense(7, 2)), nnlib.ShapeError,
                     r"layers\[2\] expects 7 inputs"),
    "emptied": (lambda m: m.layers.clear(), ValueError, "at least one layer"),
}
CASES = [(v, e) for v in VERBS for e in EDITS]


@pytest.mark.parametrize("verb,edit", CASES, ids=[f"{v}-{e}" for v, e in CASES])
def test_an_edited_model_is_refused_by_every_export(verb, edit):
    model = _model()
    change, error, message = EDITS[edit]
    change(model)
    before = [np.array(p, copy=True) for p in model.params]
    with pytest.raises(error, match=message):
        VERBS[verb](model)
    for p, q in zip(model.params, before):      # a refused load writes nothing
        np.testing.assert_array_equal(p, q)


N, D = 12000, 64


def _big():
    return nnlib.Sequential([Dense(D, 128, "relu", random_state=0),
                             Dense(128, 10, random_state=1)])


def _big_state_dict_load(model):
    export.load_torch_state_dict(model, {
        "0.weight": np.zeros((128, D)), "0.bias": np.zeros(128),
        "2.weight": np.zeros((10, 128)), "2.bias": np.zeros(10)})


BIG_VERBS = {**{k: v for k, v in VERBS.items() if k != "load_torch_state_dict"},
             "load_torch_state_dict": _big_state_dict_load}


@pytest.mark.parametrize("verb", list(BIG_VERBS))
def test_every_export_is_refused_during_another_threads_fit(verb):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((N, D)), rng.integers(0, 10, N)
    for _ in range(5):                          # a loaded machine may delay the thread
        model = _big()
        W0, out = model.params[0].copy(), {}

        def watch():
            while np.array_equal(model.params[0], W0):
                time.sleep(0.0002)
            try:
                BIG_VERBS[verb](model)
                out["raised"] = None
            except Exception as exc:    # reported to the test thread
                out["raised"] = exc
            hist = model.history
            out["done"] = len(hist.history.get("loss", [])) if hist is not None else 0

        thread = threading.Thread(target=watch)
        thread.start()
        model.fit(X, y, optimizer=nnlib.optim.SGD(lr=0.01), epochs=2, batch_size=32)
        thread.join()
        if out["raised"] is not None or out["done"] < 2:
            break                               # refused, or taken during the fit
    assert isinstance(out["raised"], ConcurrentUseError), out["raised"]
    assert f"so {verb} there would mix training steps" in str(out["raised"])
    assert np.isfinite(model.params[0]).all() and not (model.params[0] == 0).all()


def test_exports_from_a_callback_of_the_fit_still_work(tmp_path):
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    model, seen = _model(), []

    def cb(epoch, logs):
        seen.append(export.to_torch_state_dict(model)["0.weight"].copy())
        export.to_onnx(model, tmp_path / "m.onnx")
        return False

    model.fit(X, y, epochs=2, callbacks=[cb])
    assert len(seen) == 2 and (tmp_path / "m.onnx").exists()
