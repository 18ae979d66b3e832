"""Keras's positional order and Keras's counts, met by nnlib's own.

nnlib's ``fit(X, y, loss, optimizer, epochs, batch_size, ...)`` keeps its order (the
loss comes third: there is no ``compile``); Keras 3's is ``fit(x, y, batch_size,
epochs, ...)``, its ``train_on_batch(x, y, sample_weight, class_weight)`` and
``test_on_batch(x, y, sample_weight)``. A call ported as written is refused with a
TypeError that names both orders and the keywords to write, and changes nothing.
Before, ``fit(X, y, "softmax_cross_entropy", 10)`` read "optimizer must be an
nnlib.optim optimizer; got int", ``train_on_batch(X, y, w)`` "unknown loss array([...])".

Counts (``epochs``, ``batch_size``, ...) take NumPy integers, as Keras's ``range`` and
``math.ceil`` do, and refuse a bool or a float naming the argument and its type.
"""
import numpy as np
import pytest

import nnlib
from nnlib.optim import SGD


def _model():
    return nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                             nnlib.Dense(4, 2, random_state=1)])


def _data(n=20):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), rng.integers(0, 2, size=n)


# (id, call, what the message says of the places and the keywords to write)
PORTED = [
    ("fit-3-4", lambda m, X, y, w: m.fit(X, y, 32, 10),
     r"third positional argument is the loss and its fourth the optimizer.*"
     r"fit\(x, y, batch_size, epochs, \.\.\.\).*batch_size=32, epochs=10"),
    ("fit-4", lambda m, X, y, w: m.fit(X, y, "softmax_cross_entropy", 10),
     r"fourth positional argument is the optimizer \(nnlib's order: X, y, loss, "
     r"optimizer, epochs, batch_size.*got 10.*epochs=10"),
    ("fit-4-int64", lambda m, X, y, w: m.fit(X, y, "softmax_cross_entropy", np.int64(3)),
     r"fourth positional argument is the optimizer.*epochs=np.int64\(3\)"),
    ("fit-none-4", lambda m, X, y, w: m.fit(X, y, None, 10),
     r"fourth positional argument is the optimizer.*epochs=10"),
    ("evaluate-3", lambda m, X, y, w: m.evaluate(X, y, 64),
     r"third positional argument is the loss.*batch_size=64"),
    ("train_on_batch-3", lambda m, X, y, w: m.train_on_batch(X, y, w),
     r"third positional argument is the loss.*got an array \(ndarray\).*"
     r"train_on_batch\(x, y, sample_weight, class_weight.*sample_weight=\.\.\."),
    ("train_on_batch-3-4", lambda m, X, y, w: m.train_on_batch(X, y, w, {0: 2.0}),
     r"got an array \(ndarray\) and a dict.*sample_weight=\.\.\., class_weight=\.\.\."),
    ("train_on_batch-4", lambda m, X, y, w: m.train_on_batch(X, y, None, {0: 2.0}),
     r"fourth positional argument is the optimizer.*class_weight"),
    ("test_on_batch-3", lambda m, X, y, w: m.test_on_batch(X, y, list(w)),
     r"third positional argument is the loss.*got an array \(list\).*"
     r"test_on_batch\(x, y, sample_weight, \.\.\.\)"),
]


@pytest.mark.parametrize("pid,call,match", PORTED, ids=[p[0] for p in PORTED])
def test_kerass_positional_order_is_named_and_changes_nothing(pid, call, match):
    model, (X, y) = _model(), _data()
    model.fit(X, y, optimizer=SGD(lr=0.1), epochs=1)
    before = [p.copy() for p in model.params]
    optimizer, t = model.optimizer, model.optimizer.t
    with pytest.raises(TypeError, match=match):
        call(model, X, y, np.ones(len(y)))
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params))
    assert model.optimizer is optimizer and optimizer.t == t


class _KerasStyleLoss:
    """A loss object as Keras's compile takes one (keras.losses.Loss is callable)."""

    def __call__(self, y_true, y_pred):
        return 0.0


# (id, a loss that is no array: neither nnlib's nor Keras's sample_weight)
NOT_ARRAYS = [("callable", _KerasStyleLoss()), ("function", np.mean),
              ("bytes", b"softmax_cross_entropy")]
ONE_BATCH_VERBS = ["train_on_batch", "test_on_batch"]


@pytest.mark.parametrize("verb", ONE_BATCH_VERBS)
@pytest.mark.parametrize("lid,loss", NOT_ARRAYS, ids=[c[0] for c in NOT_ARRAYS])
def test_a_loss_that_is_no_array_is_an_unknown_loss_as_fits(verb, lid, loss):
    # train_on_batch(X, y, loss=keras.losses.X()) read "third positional argument is
    # the loss ...; got an array (_KerasStyleLoss): Keras's ... puts sample_weight
    # there": no array was given, nor a positional; fit and evaluate say "unknown loss"
    model, (X, y) = _model(), _data()
    model.fit(X, y, optimizer=SGD(lr=0.1), epochs=1)
    before = [p.copy() for p in model.params]
    for call in (lambda: model.fit(X, y, loss=loss), lambda: model.evaluate(X, y, loss),
                 lambda: getattr(model, verb)(X, y, loss=loss),
                 lambda: getattr(model, verb)(X, y, loss)):
        with pytest.raises(ValueError, match=r"^unknown loss .*; expected one of "
                                             r"\[.*'softmax_cross_entropy'"):
            call()
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params))


def test_nnlibs_own_positional_order_still_trains():
    X, y = _data()
    a, b = _model(), _model()
    a.fit(X, y, "softmax_cross_entropy", SGD(lr=0.1), 2, 8, random_state=0)
    b.fit(X, y, loss="softmax_cross_entropy", optimizer=SGD(lr=0.1), epochs=2,
          batch_size=8, random_state=0)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))


# (argument, verb, a valid value, the call)
COUNTS = [
    ("epochs", "fit", 2, lambda m, X, y, v: m.fit(X, y, epochs=v, random_state=0)),
    ("batch_size", "fit", 8,
     lambda m, X, y, v: m.fit(X, y, epochs=2, batch_size=v, random_state=0)),
    ("initial_epoch", "fit", 1,
     lambda m, X, y, v: m.fit(X, y, epochs=3, initial_epoch=v, random_state=0)),
    ("validation_batch_size", "fit", 3,
     lambda m, X, y, v: m.fit(X, y, epochs=2, validation_split=0.25,
                              validation_batch_size=v, random_state=0)),
    ("batch_size", "evaluate", 7, lambda m, X, y, v: m.evaluate(X, y, batch_size=v)),
    ("batch_size", "predict", 7, lambda m, X, y, v: m.predict(X, batch_size=v)),
    ("batch_size", "predict_proba", 7,
     lambda m, X, y, v: m.predict_proba(X, batch_size=v)),
]
COUNT_IDS = [f"{verb}-{arg}" for arg, verb, *_ in COUNTS]


def _same(a, b):
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, nnlib.History):            # all but the epochs' times
        return ({k: v for k, v in a.history.items() if k != "time"}
                == {k: v for k, v in b.history.items() if k != "time"})
    return a == b


@pytest.mark.parametrize("arg,verb,value,call", COUNTS, ids=COUNT_IDS)
@pytest.mark.parametrize("int_type", [np.int64, np.int32, np.uint8])
def test_numpy_integer_counts_act_as_ints(arg, verb, value, call, int_type):
    X, y = _data()
    a, b = _model(), _model()
    got, expected = call(a, X, y, int_type(value)), call(b, X, y, value)
    assert _same(got, expected)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))


@pytest.mark.parametrize("arg,verb,value,call", COUNTS, ids=COUNT_IDS)
@pytest.mark.parametrize("bad", [True, np.True_, 2.0, np.float32(2.0)],
                         ids=["bool", "numpy-bool", "float", "numpy-float"])
def test_bool_and_float_counts_are_named_with_their_type(arg, verb, value, call, bad):
    X, y = _data()
    model = _model()
    before = [p.copy() for p in model.params]
    with pytest.raises(TypeError, match=rf"^{arg} must be an integer; got "
                                        rf".* \({type(bad).__name__}\)$"):
        call(model, X, y, bad)
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params))
