"""Repeated ``fit`` calls on one model and optimizer (a loop calling ``fit(epochs=1)``):
whatever changes between two calls -- a layer's arrays, the layer list, the optimizer's
groups and state, X and y -- the next call sees it, through the fast paths of the
checks (plain native arrays) and their slow paths alike."""
import warnings

import numpy as np
import pytest

from nnlib import Sequential, Dense
from nnlib.exceptions import (DTypeError, DTypeRangeError, LabelError, NonFiniteError,
                              ShapeError)
from nnlib.layers import Dropout
from nnlib.optim import SGD, Adam

X = np.random.default_rng(0).standard_normal((12, 6)).astype(np.float32)
Y = (np.arange(12) % 3).astype(np.int64)


def _model():
    return Sequential([Dense(6, 5, "relu", dtype=np.float32, random_state=1), Dropout(0.2),
                       Dense(5, 3, dtype=np.float32, random_state=2)])


def _fit(model, opt, X=X, y=Y, **kw):
    args = dict(loss="softmax_cross_entropy", optimizer=opt, epochs=2, batch_size=4,
                random_state=3, n_threads=1)
    args.update(kw)
    return model.fit(X, y, **args)


def _unaligned(a):
    return np.frombuffer(b"\0" + a.tobytes(), a.dtype, offset=1).reshape(a.shape)


# W replaced between two fits by an array of the same values in another form: the next
# fit trains exactly as with the original array
SAME_VALUES = [
    ("fortran", np.asfortranarray),
    ("read-only", lambda W: (lambda c: (c.setflags(write=False), c)[1])(W.copy())),
    ("unaligned", _unaligned),
    ("big-endian", lambda W: W.astype(">f4")),
    ("matrix", lambda W: np.asarray(W).view(np.matrix)),
]


def _two_fits(mutate=None, **kw):
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, opt)
    if mutate is not None:
        mutate(model, opt)
    _fit(model, opt, **kw)
    return model, opt


@pytest.mark.parametrize("how", [h for _, h in SAME_VALUES],
                         ids=[name for name, _ in SAME_VALUES])
def test_a_replaced_weight_array_trains_as_the_original(how):
    want, _ = _two_fits()
    got, opt = _two_fits(lambda m, o: setattr(m.layers[0], "W", how(m.layers[0].W)))
    W = got.layers[0].W
    assert W.flags.c_contiguous and W.flags.writeable and W.dtype == np.float32
    for a, b in zip(got.params, want.params):
        np.testing.assert_array_equal(a, b)
    assert opt.t == 12                  # two fits of two epochs of three batches


# what changes between two fits, and what the second one raises
REFUSED = [
    ("W of another shape", lambda m, o: setattr(m.layers[0], "W", np.zeros((6, 4), np.float32)),
     ShapeError),
    ("W of another dtype", lambda m, o: setattr(m.layers[0], "W",
                                                m.layers[0].W.astype(np.float64)), DTypeError),
    ("b a list", lambda m, o: setattr(m.layers[2], "b", [0.0, 0.0, 0.0]), ShapeError),
    ("a layer of another dtype", lambda m, o: m.layers.__setitem__(
        2, Dense(5, 3, dtype=np.float64)), DTypeError),
    ("momentum turned on", lambda m, o: o.param_groups[0].__setitem__("momentum", 0.9),
     ShapeError),
    ("maximize", lambda m, o: o.param_groups[0].__setitem__("maximize", True), ValueError),
    ("lr beyond float32", lambda m, o: o.param_groups[0].__setitem__("lr", 1e39),
     DTypeRangeError),
    ("step counts apart", lambda m, o: setattr(o._entries[id(m.params[0])], "step", 99),
     ValueError),
]


@pytest.mark.parametrize("mutate, error", [(m, e) for _, m, e in REFUSED],
                         ids=[name for name, _, _ in REFUSED])
def test_a_change_between_fits_is_seen(mutate, error):
    with pytest.raises(error):
        _two_fits(mutate)


BAD_DATA = [
    ("X of other width", dict(X=X[:, :5]), ShapeError),
    ("X with NaN", dict(X=np.where(np.arange(6) == 2, np.nan, X).astype(np.float32)),
     NonFiniteError),
    ("X beyond float32", dict(X=np.full((12, 6), 1e300)), NonFiniteError),
    ("y out of range", dict(y=Y + 1), LabelError),
    ("y of other length", dict(y=Y[:5]), ShapeError),
]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("kw, error", [(k, e) for _, k, e in BAD_DATA],
                         ids=[name for name, _, _ in BAD_DATA])
def test_bad_data_after_a_good_fit_is_refused(kw, error):
    with pytest.raises(error):
        _two_fits(**kw)


def test_data_of_another_dtype_or_layout_after_a_fit():
    want, _ = _two_fits()
    for data in (X.astype(np.float64), np.asfortranarray(X), X.tolist()):
        got, _ = _two_fits(X=data)
        for a, b in zip(got.params, want.params):
            np.testing.assert_array_equal(a, b)


def test_an_instance_regularized_flag_moves_the_model_off_the_compiled_epoch():
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, opt, l2=0.1)
    assert model.compiled
    model.layers[0].regularized = (False, False)
    assert not model.compiled
    _fit(model, opt, l2=0.1)
    assert opt.t == 12                  # two fits of two epochs of three batches


def test_optimizer_changes_between_fits_take_effect():
    # a new lr in the group, a reset of Adam's state, then new groups
    model, opt = _model(), Adam(lr=0.01)
    _fit(model, opt)
    opt.reset()
    fresh_model, fresh_opt = _model(), Adam(lr=0.01)
    for a, b in zip(fresh_model.params, model.params):
        a[...] = b
    for layer, fresh in zip(model.layers, fresh_model.layers):
        if isinstance(layer, Dropout):
            fresh.step = layer.step
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(model, opt)
        _fit(fresh_model, fresh_opt)
    for a, b in zip(model.params, fresh_model.params):
        np.testing.assert_array_equal(a, b)
    opt.param_groups.clear()
    opt.add_param_group({"params": model.params[:2]})
    opt.add_param_group({"params": model.params[2:], "lr": 0.0})
    before = [p.copy() for p in model.params[2:]]
    opt.reset()
    _fit(model, opt)
    for a, b in zip(model.params[2:], before):
        np.testing.assert_array_equal(a, b)        # lr 0: the second group stays


# weights and biases a user replaced by arrays of a dtype no kernel computes in: every
# entry point names the layer and the dtype (integer weights gave NumPy's "data type
# <class 'numpy.int64'> not inexact" from the l2 range check)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.bool_, np.complex128])
@pytest.mark.parametrize("call", [
    lambda m: _fit(m, SGD(lr=0.1)),
    lambda m: m.loss_and_grads(X, Y, loss="softmax_cross_entropy"),
    lambda m: m.predict(X),
    lambda m: m.evaluate(X, Y, loss="softmax_cross_entropy"),
    lambda m: m.save(m._test_path),
], ids=["fit", "loss_and_grads", "predict", "evaluate", "save"])
def test_weights_of_a_dtype_no_kernel_takes_are_named(dtype, call, tmp_path):
    model = Sequential([Dense(6, 3, dtype=np.float32, random_state=1)])
    layer = model.layers[0]
    layer.W, layer.b = layer.W.astype(dtype), layer.b.astype(dtype)
    model._test_path = tmp_path / "m.npz"
    with pytest.raises(DTypeError, match=rf"layers\[0\]'s parameters are "
                                         rf"{np.dtype(dtype).name}; a model computes in "
                                         r"float32 or float64"):
        call(model)
    assert not model._test_path.exists()        # save wrote no file load would refuse
