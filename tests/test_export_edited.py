"""Exports of a model whose layer list or arrays were edited, or that another thread is
training (session 37's probe of nnlib.export). to_onnx, to_torch, to_torch_state_dict
and load_torch_state_dict checked only that each layer is a Dense or Dropout: a W
assigned of other shapes, a float32 W in a float64 model, a broken chain of widths
exported a graph or state_dict that disagrees with predict (to_onnx's checker passes
it), an unknown activation raised KeyError, an empty list IndexError/StopIteration; and
from another thread during a fit they read weights mid-step (get_weights refuses that)
or, loading, wrote under the compiled loop (set_weights refuses that). Each is now the
layer check's error, or ConcurrentUseError."""
import numpy as np
import pytest

import nnlib
from nnlib import export
from nnlib.exceptions import ConcurrentUseError
from nnlib.layers import Dense
from tests.test_concurrency import _PausedFit

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


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_export_is_refused_during_another_threads_fit(verb):
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    model = _model()
    with _PausedFit(model, X, y, epochs=2) as first:      # its callback waits
        before = [p.copy() for p in model.params]
        with pytest.raises(ConcurrentUseError, match=f"so {verb} there would mix "
                                                     f"training steps"):
            VERBS[verb](model)
        for p, q in zip(model.params, before):            # a refused load writes nothing
            np.testing.assert_array_equal(p, q)
    assert first.error is None
    VERBS[verb](model)                                    # free again


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
