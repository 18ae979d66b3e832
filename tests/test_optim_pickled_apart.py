"""An optimizer pickled apart from its model (``pickle.dumps(opt)`` and
``pickle.dumps(model)``, both loaded) holds copies of the model's arrays with its state
keyed to them. torch's habit is ``state_dict``/``load_state_dict`` into an optimizer built
on the model's params, which maps the state by position; a fit (or ``step(params,
grads)``) on the model's arrays now does the same, so the resumed trajectory is bitwise
the uninterrupted one -- or, where the arrays cannot be matched by position, a ValueError
says how to save and restore. Before, the momentum and Adam moments silently restarted."""
import copy
import pickle

import numpy as np
import pytest

import nnlib
from nnlib.layers import Dense
from nnlib.optim import SGD, Adam, AdamW, SklearnSGD


class PyDense(Dense):
    """A Dense layer trained through the Python path (nnlib.batch_training)."""

    def forward_train(self, X):
        return super().forward_train(X)


OPTIMIZERS = [
    ("sgd-momentum", lambda params: SGD(params, lr=0.1, momentum=0.9)),
    ("sgd-momentum-adopted", lambda params: SGD(lr=0.1, momentum=0.9, nesterov=True)),
    ("adam", lambda params: Adam(params, lr=0.01)),
    ("adamw-groups", lambda params: AdamW([{"params": params[:2], "lr": 0.02},
                                           {"params": params[2:], "weight_decay": 0.0}],
                                          lr=0.01)),
    ("sklearn-sgd-adopted", lambda params: SklearnSGD(lr=0.05, momentum=0.9)),
]
IDS = [o[0] for o in OPTIMIZERS]
# the Python path steps every array with one config: groups that differ are refused
FITS = [(name, make, layer) for name, make in OPTIMIZERS for layer in (Dense, PyDense)
        if not (layer is PyDense and name == "adamw-groups")]
FIT_IDS = [f"{name}-{'compiled' if layer is Dense else 'python'}" for name, _, layer in FITS]
COPIES = [("pickle", lambda obj: pickle.loads(pickle.dumps(obj))),
          ("deepcopy", copy.deepcopy)]


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 4)), rng.integers(0, 3, 40)


def _model(layer=Dense, hidden=5):
    return nnlib.Sequential([layer(4, hidden, "tanh", random_state=0),
                             layer(hidden, 3, random_state=1)])


def _fit(model, opt, epochs):
    X, y = _data()
    model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=8, shuffle=False)


def _assert_same(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.tobytes() == q.tobytes()


@pytest.mark.parametrize("copy_id,clone", COPIES, ids=[c[0] for c in COPIES])
@pytest.mark.parametrize("name,make,layer", FITS, ids=FIT_IDS)
def test_fit_resumes_bitwise_with_an_optimizer_pickled_apart(name, make, layer, copy_id,
                                                             clone):
    ref = _model(layer)
    ref_opt = make(ref.params)
    _fit(ref, ref_opt, 4)
    model = _model(layer)
    opt = make(model.params)
    _fit(model, opt, 2)
    model2, opt2 = clone(model), clone(opt)         # apart: opt2 holds its own copies
    _fit(model2, opt2, 2)
    _assert_same(model2.params, ref.params)
    assert opt2.t == ref_opt.t
    _assert_same(opt2.state_arrays(model2.params), ref_opt.state_arrays(ref.params))
    # its groups now hold the model's arrays, in their places
    assert [p is q for p, q in zip(opt2._all_params(), model2.params)] == \
        [True] * len(model2.params)
    assert [len(g["params"]) for g in opt2.param_groups] == \
        [len(g["params"]) for g in ref_opt.param_groups]


@pytest.mark.parametrize("name,make", OPTIMIZERS[:3], ids=IDS[:3])
def test_functional_step_resumes_bitwise_with_an_optimizer_pickled_apart(name, make):
    X, y = _data()

    def steps(model, opt, first, n):
        for i in range(first, first + n):
            _, grads = model.loss_and_grads(X[8 * i:8 * i + 8], y[8 * i:8 * i + 8])
            opt.step(model.params, grads)
    ref = _model()
    ref_opt = make(ref.params)
    steps(ref, ref_opt, 0, 4)
    model = _model()
    opt = make(model.params)
    steps(model, opt, 0, 2)
    model2, opt2 = pickle.loads(pickle.dumps(model)), pickle.loads(pickle.dumps(opt))
    steps(model2, opt2, 2, 2)
    _assert_same(model2.params, ref.params)


def test_pickled_together_is_unchanged():
    ref, model = _model(), _model()
    ref_opt, opt = Adam(ref.params, lr=0.01), Adam(model.params, lr=0.01)
    _fit(ref, ref_opt, 4)
    _fit(model, opt, 2)
    model2, opt2 = pickle.loads(pickle.dumps((model, opt)))
    assert opt2._all_params()[0] is model2.params[0]
    _fit(model2, opt2, 2)
    _assert_same(model2.params, ref.params)


@pytest.mark.parametrize("order", ["opt-first", "model-first"])
@pytest.mark.parametrize("name,make,layer", FITS, ids=FIT_IDS)
def test_a_pair_pickled_after_a_fit_shares_its_optimizer_and_trains_on(order, name,
                                                                       make, layer):
    # the optimizer reached twice: as the pair's member and as model.optimizer (set by
    # the fit); either order must give back one optimizer over the model's own arrays
    ref, model = _model(layer), _model(layer)
    ref_opt, opt = make(ref.params), make(model.params)
    _fit(ref, ref_opt, 3)
    _fit(model, opt, 2)
    assert model.optimizer is opt
    pair = (opt, model) if order == "opt-first" else (model, opt)
    a, b = pickle.loads(pickle.dumps(pair))
    opt2, model2 = (a, b) if order == "opt-first" else (b, a)
    assert model2.optimizer is opt2
    held = opt2._all_params()
    assert len(held) == len(model2.params)
    assert all(p is q for p, q in zip(held, model2.params))
    X, y = _data()
    model2.fit(X, y, epochs=1, batch_size=8, shuffle=False)    # goes on with model.optimizer
    _assert_same(model2.params, ref.params)
    grads = [np.full_like(p, 0.01) for p in ref.params]
    ref_opt.step(grads)
    opt2.step(grads)
    _assert_same(model2.params, ref.params)


def test_arrays_that_cannot_be_matched_raise_saying_how_to_save():
    model = _model()
    opt = Adam(model.params, lr=0.01)
    _fit(model, opt, 1)
    opt2 = pickle.loads(pickle.dumps(opt))
    other = _model(hidden=6)                        # other shapes: no mapping by position
    X, y = _data()
    with pytest.raises(ValueError, match=r"unpickled apart.*pickle.dump\(\(model, opt\)"
                                         r".*load_state_dict"):
        other.fit(X, y, optimizer=opt2, epochs=1)
    with pytest.raises(ValueError, match="unpickled apart"):
        opt2.step(other.params, [np.zeros_like(p) for p in other.params])
    _assert_same(opt2.state_arrays(opt2._all_params()), opt.state_arrays(model.params))


def test_an_unpickled_optimizer_without_state_trains_other_arrays_as_before():
    opt = pickle.loads(pickle.dumps(SGD(_model(hidden=6).params, lr=0.1)))
    model, ref = _model(), _model()
    _fit(model, opt, 1)
    _fit(ref, SGD(lr=0.1), 1)
    _assert_same(model.params, ref.params)
