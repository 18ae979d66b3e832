"""A loaded optimizer state whose accumulated squared gradients are negative (probe36):
load_state_dict and nnlib.load took it, and the next step took the square root of it,
turning finite weights NaN without the NonFiniteError a step gives a finite update
that overflows. Refused now, naming the entry, the slot and the element."""
import json

import numpy as np
import pytest

import nnlib
from nnlib import optim

# each optimizer with a slot of squared gradients, and that slot's name
SQUARED = {
    "Adagrad": (lambda: optim.Adagrad(lr=0.1), "sum"),
    "NotesAdaGrad": (lambda: optim.NotesAdaGrad(lr=0.1), "sum"),
    "RMSprop": (lambda: optim.RMSprop(lr=0.01), "square_avg"),
    "Adam": (lambda: optim.Adam(lr=0.1), "exp_avg_sq"),
    "Adam-amsgrad": (lambda: optim.Adam(lr=0.1, amsgrad=True), "max_exp_avg_sq"),
    "AdamW": (lambda: optim.AdamW(lr=0.1), "exp_avg_sq"),
    "SklearnAdam": (lambda: optim.SklearnAdam(lr=0.1), "vs"),
}
DTYPES = [np.float32, np.float64]


def _fitted(make, dtype):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)).astype(dtype), np.arange(20) % 3
    model = nnlib.Sequential([nnlib.Dense(3, 3, random_state=0, dtype=dtype)])
    opt = make()
    model.fit(X, y, optimizer=opt, epochs=1)
    return model, opt, X, y


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(SQUARED))
def test_a_negative_squared_gradient_state_is_refused_by_load_state_dict(name, dtype):
    make, slot = SQUARED[name]
    model, opt, X, y = _fitted(make, dtype)
    sd = opt.state_dict()
    sd["state"][0][slot] = np.array(sd["state"][0][slot], copy=True)
    sd["state"][0][slot][1, 2] = -0.5
    fresh = make()
    fresh.step(model.params, [np.zeros_like(p) for p in model.params])   # holds state
    kept = {k: np.array(v, copy=True) for k, v in fresh.state[model.params[0]].items()
            if k != "step"}
    with pytest.raises(ValueError, match=rf"state\[0\]\['{slot}'\] holds -0.5 at \(1, 2\)"):
        fresh.load_state_dict(sd)
    for k, v in kept.items():                   # the optimizer as it was
        np.testing.assert_array_equal(fresh.state[model.params[0]][k], v)
    sd["state"][0][slot][1, 2] = 0.0            # zero is a valid accumulation
    fresh.load_state_dict(sd)


@pytest.mark.parametrize("name", ["Adam", "RMSprop"])
def test_a_model_file_with_a_negative_squared_gradient_state_is_refused(name, tmp_path):
    from nnlib import _format
    make, slot = SQUARED[name]
    model, opt, X, y = _fitted(make, np.float64)
    path = tmp_path / "m.npz"
    model.save(path, include_optimizer=True)
    with np.load(path) as f:        # a hostile writer recomputes the checksums
        header = json.loads(bytes(f["header"]))
        arrays = {k: f[k] for k in f.files if k != "header"}
    key = f"opt0_{slot}"
    arrays[key] = arrays[key].copy()
    arrays[key][0, 0] = -1.0
    header["sha256"] = _format.digest(arrays[n] for n in header["arrays"])
    _format.write(path, header, arrays)
    with pytest.raises(ValueError, match=rf"saved optimizer is invalid: .*'{slot}'\] "
                                         rf"holds -1.0"):
        nnlib.load(path)
