"""More of ``fit``'s fast paths against the general paths (tests/test_fast_paths.py has
the seed orders, the label check, X's layouts and the plain scalars): other forms of the
data and scalars, bad input the common cases must not let through, arrays replaced and
hyper-parameters changed between fits, parameter groups (configs looked up once per
group), and the checks themselves. Same weights bitwise, same errors.
"""
import numbers

import numpy as np
import pytest

import nnlib
from nnlib import _threads
from nnlib._labels import check_class_labels
from nnlib._validation import (DTypeError, DTypeRangeError, LabelError, as_float_array,
                               check_fits_dtype, check_int_scalar, check_real_scalar)
from nnlib.optim import SGD, Adam

N, D, C = 24, 5, 3


def _model(dtype=np.float32):
    return nnlib.Sequential([nnlib.Dense(D, 7, "relu", dtype=dtype, random_state=0),
                             nnlib.Dense(7, C, dtype=dtype, random_state=1)])


def _data(dtype=np.float32):
    rng = np.random.default_rng(3)
    return rng.normal(size=(N, D)).astype(dtype), rng.integers(0, C, N).astype(np.int64)


def _fit(model, X, y, optimizer=None, **kw):
    args = dict(epochs=2, batch_size=4, random_state=5, l2=0.0, n_threads=1)
    args.update(kw)
    model.fit(X, y, optimizer=SGD(lr=0.1) if optimizer is None else optimizer, **args)
    return [p.copy() for p in model.params]


def _assert_same(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.dtype == q.dtype and p.tobytes() == q.tobytes()


# -- the same values in other forms: the general paths ----------------------------------
X32, Y64 = _data()

SAME_DATA = [
    ("X float64 of float32 values", lambda: (X32.astype(np.float64), Y64)),
    ("X read-only", lambda: (_read_only(X32), Y64)),
    ("y a list", lambda: (X32, Y64.tolist())),
    ("y a strided view", lambda: (X32, np.repeat(Y64, 2)[::2])),
]


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("make", [m for _, m in SAME_DATA], ids=[i for i, _ in SAME_DATA])
def test_other_forms_of_the_data_train_the_same_weights(make):
    expected = _fit(_model(), X32, Y64)
    _assert_same(_fit(_model(), *make()), expected)


SAME_SCALARS = [
    ("numpy ints", dict(epochs=np.int64(2), batch_size=np.int32(4),
                        random_state=np.int64(5), n_threads=np.int16(1))),
    ("numpy float lr", dict(lr=np.float64(0.1))),
]


@pytest.mark.parametrize("kw", [k for _, k in SAME_SCALARS], ids=[i for i, _ in SAME_SCALARS])
def test_other_types_of_the_scalars_train_the_same_weights(kw):
    kw = dict(kw)
    lr = kw.pop("lr", 0.1)
    expected = _fit(_model(), X32, Y64)
    _assert_same(_fit(_model(), X32, Y64, optimizer=SGD(lr=lr), **kw), expected)


def test_float64_model_and_other_forms():
    X, y = _data(np.float64)
    expected = _fit(_model(np.float64), X, y)
    _assert_same(_fit(_model(np.float64), np.asfortranarray(X), y.tolist()), expected)


# -- bad input: the same errors ----------------------------------------------------------
BAD = [
    ("huge uint label", lambda X, y: (X, y.astype(np.uint64) + np.uint64(2**63)),
     LabelError, r"y\[0\] = \d+ is not a class label"),
    ("fractional label", lambda X, y: (X, np.where(np.arange(N) == 2, 0.5, y)),
     LabelError, r"y\[2\] = 0.5 is not an integer class label"),
    ("NaN label", lambda X, y: (X, np.where(np.arange(N) == 1, np.nan, y)),
     LabelError, r"y\[1\] = nan is not an integer class label"),
    ("string labels", lambda X, y: (X, y.astype(str)), DTypeError, "numeric labels"),
    ("complex X", lambda X, y: (X.astype(np.complex64), y), DTypeError, "complex"),
    ("object X", lambda X, y: (X.astype(object), y), DTypeError, "object"),
]


@pytest.mark.parametrize("make,error,match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_data_raises_as_before(make, error, match):
    model = _model()
    before = [p.copy() for p in model.params]
    with pytest.raises(error, match=match):
        _fit(model, *make(X32, Y64))
    _assert_same(model.params, before)


BAD_SCALARS = [
    ("negative seed", dict(random_state=-1), ValueError, "random_state must be >= 0"),
    ("bool seed", dict(random_state=True), TypeError, "random_state must be None"),
    ("zero threads", dict(n_threads=0), ValueError, "n_threads must be >= 1"),
    ("float threads", dict(n_threads=1.0), TypeError, "n_threads must be an integer"),
]


@pytest.mark.parametrize("kw,error,match", [b[1:] for b in BAD_SCALARS],
                         ids=[b[0] for b in BAD_SCALARS])
def test_bad_scalars_raise_as_before(kw, error, match):
    with pytest.raises(error, match=match):
        _fit(_model(), X32, Y64, **kw)


@pytest.mark.parametrize("lr,error", [(1e39, DTypeRangeError), (True, TypeError),
                                      (-0.1, ValueError)], ids=["beyond float32", "bool",
                                                                "negative"])
def test_bad_learning_rates_raise_as_before(lr, error):
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, X32, Y64, optimizer=opt)
    with pytest.raises(error):
        if lr == 1e39:
            opt.lr = lr             # valid for the optimizer, not for a float32 fit
            _fit(model, X32, Y64, optimizer=opt)
        else:
            opt.lr = lr


# -- state that changes between fits -----------------------------------------------------
def test_params_replaced_between_fits_are_trained():
    """New arrays in the layers (another identity, Fortran order) between two fits: the
    second fit trains them, as a fresh model holding the same values would."""
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, X32, Y64, optimizer=opt)
    values = [p.copy() for p in model.params]
    for layer in model.layers:
        layer.W = np.asfortranarray(layer.W + 0.25)
        layer.b = layer.b.copy()
    got = _fit(model, X32, Y64, optimizer=opt, random_state=9)

    fresh = _model()
    for layer, W, b in zip(fresh.layers, values[0::2], values[1::2]):
        layer.W[...], layer.b[...] = W + 0.25, b
    _assert_same(got, _fit(fresh, X32, Y64, random_state=9))


def test_params_resized_between_fits_raise_as_before():
    model = _model()
    _fit(model, X32, Y64)
    model.layers[1].b = np.zeros(C + 1, np.float32)
    with pytest.raises(nnlib.exceptions.ShapeError, match="Dense.b"):
        _fit(model, X32, Y64)


def test_layers_edited_between_fits_raise_as_before():
    model = _model()
    _fit(model, X32, Y64)
    model.layers.append(nnlib.Dense(5, 2, dtype=np.float32))
    with pytest.raises(nnlib.exceptions.ShapeError, match="expects 5 inputs"):
        _fit(model, X32, Y64)
    model.layers[-1] = nnlib.Dense(C, 2, dtype=np.float64)
    with pytest.raises(DTypeError, match="share a dtype"):
        _fit(model, X32, Y64)


HYPER_CHANGES = [
    ("SGD lr", lambda: SGD(lr=0.1), lambda o: setattr(o, "lr", 0.03), None),
    ("SGD group lr", lambda: SGD(lr=0.1),
     lambda o: o.param_groups[0].__setitem__("lr", 0.03), None),
    ("SGD weight decay", lambda: SGD(lr=0.1),
     lambda o: setattr(o, "weight_decay", 0.01), None),
    ("Adam lr", lambda: Adam(lr=0.01), lambda o: setattr(o, "lr", 0.002), None),
    ("Adam betas", lambda: Adam(lr=0.01),
     lambda o: o.param_groups[0].__setitem__("betas", (0.8, 0.99)), None),
    ("SGD momentum on", lambda: SGD(lr=0.1), lambda o: setattr(o, "momentum", 0.9),
     "reset"),
]


@pytest.mark.parametrize("make,change,reset", [h[1:] for h in HYPER_CHANGES],
                         ids=[h[0] for h in HYPER_CHANGES])
def test_hyper_parameters_changed_between_fits_take_effect(make, change, reset):
    """A change made between two fits trains as an optimizer built with it from the
    start of the second fit (its state and step count carried over), bitwise."""
    model, opt = _model(), make()
    _fit(model, X32, Y64, optimizer=opt)
    if reset:
        opt.reset()
    mid = [p.copy() for p in model.params]
    state = opt.state_dict()
    change(opt)
    got = _fit(model, X32, Y64, optimizer=opt)

    other = _model()
    for p, v in zip(other.params, mid):
        p[...] = v
    opt2 = make()
    opt2._adopt(other.params)
    change(opt2)
    if not reset:
        state2 = opt2.state_dict()
        state["param_groups"] = state2["param_groups"]    # the changed values
        opt2.load_state_dict(state)
    _assert_same(got, _fit(other, X32, Y64, optimizer=opt2))


def test_param_groups_with_their_own_lr_train_each_array_with_its_own():
    """Two groups: each array is stepped by its group's config (looked up once per
    group), as one step of the optimizer would."""
    model = _model()
    p = model.params
    opt = SGD([{"params": p[:2]}, {"params": p[2:], "lr": 0.02}], lr=0.1)
    before = [q.copy() for q in p]
    _fit(model, X32[:4], Y64[:4], optimizer=opt, epochs=1, batch_size=4, shuffle=False)
    grads = _model()
    for q, v in zip(grads.params, before):
        q[...] = v
    _, g = grads.loss_and_grads(X32[:4], Y64[:4])
    for q, v, gi, lr in zip(p, before, g, [0.1, 0.1, 0.02, 0.02]):
        np.testing.assert_allclose(q, v - np.float32(lr) * gi, rtol=1e-5, atol=1e-6)


def test_a_maximizing_group_is_refused_as_before():
    model = _model()
    p = model.params
    opt = SGD([{"params": p[:2]}, {"params": p[2:], "maximize": True}], lr=0.1)
    with pytest.raises(ValueError, match=r"param_groups\[1\] has maximize=True"):
        _fit(model, X32, Y64, optimizer=opt)


def test_a_bad_value_written_into_a_group_is_refused_as_before():
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, X32, Y64, optimizer=opt)
    opt.param_groups[0]["momentum"] = 1.5
    with pytest.raises(ValueError, match="momentum"):
        _fit(model, X32, Y64, optimizer=opt)


# -- the checks themselves -----------------------------------------------------------------
class _MyInt(int):
    pass


class _MyReal(numbers.Real):
    """A Real that is neither float nor int: the general path."""
    def __init__(self, v): self.v = v
    def __float__(self): return float(self.v)
    __abs__ = __add__ = __ceil__ = __eq__ = __floor__ = __floordiv__ = __le__ = __lt__ = \
        __mod__ = __mul__ = __neg__ = __pos__ = __pow__ = __radd__ = __rfloordiv__ = \
        __rmod__ = __rmul__ = __round__ = __rpow__ = __rtruediv__ = __truediv__ = \
        __trunc__ = None
    __hash__ = object.__hash__


@pytest.mark.parametrize("value,expected", [(3, 3), (np.int8(3), 3), (_MyInt(3), 3),
                                            (2**70, 2**70)],
                         ids=["int", "int8", "int subclass", "big int"])
def test_check_int_scalar_types(value, expected):
    got = check_int_scalar(value, "n", low=0)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value,expected", [(0.5, 0.5), (2, 2.0), (np.float32(0.5), 0.5),
                                            (_MyReal(0.25), 0.25), (np.int64(3), 3.0)],
                         ids=["float", "int", "float32", "Real", "int64"])
def test_check_real_scalar_types(value, expected):
    got = check_real_scalar(value, "x", low=0.0)
    assert got == expected and type(got) is float


def test_as_float_array_fast_path_returns_the_array_only_when_the_slow_path_would():
    a = np.ones((3, 2), np.float32)
    assert as_float_array(a, "X", dtype=np.float32, ndim=2) is a
    assert np.asarray(a, dtype=np.float32, order="C") is a      # what the slow path does
    for other in (np.asfortranarray(np.ones((3, 2), np.float32)), a.astype(">f4"),
                  np.ones((3, 4), np.float32)[:, ::2], a.view(np.matrix)):
        got = as_float_array(other, "X", dtype=np.float32, ndim=2)
        assert got is not other and type(got) is np.ndarray and got.flags.c_contiguous
        assert got.dtype == np.float32 and got.dtype.isnative
    with pytest.raises(nnlib.exceptions.ShapeError):
        as_float_array(a, "X", dtype=np.float32, ndim=1)
    with pytest.raises(nnlib.exceptions.ShapeError):
        as_float_array(np.ones((0, 2), np.float32), "X", dtype=np.float32,
                       allow_empty=False)
    with pytest.raises(DTypeError):
        as_float_array(np.ones(2, np.complex64), "X", dtype=np.complex64)


@pytest.mark.parametrize("dtype", [np.float32, np.dtype(np.float32), "float32", ">f4"],
                         ids=["type", "dtype", "str", "big-endian"])
def test_check_fits_dtype_any_spelling(dtype):
    assert check_fits_dtype(3.0e38, "lr", dtype) == 3.0e38
    with pytest.raises(DTypeRangeError, match="max 3.402823e\\+38"):
        check_fits_dtype(3.5e38, "lr", dtype)
    with pytest.raises(ValueError):
        check_fits_dtype(1.0, "lr", np.int32)       # no float range: as np.finfo says


LABELS = [np.array([0, 2, 1]), np.array([0, 2, 1], np.uint8), np.array([True, False, True]),
          np.array([0.0, 2.0, 1.0]), np.array([], np.int64)]


@pytest.mark.parametrize("y", LABELS, ids=["int64", "uint8", "bool", "float", "empty"])
def test_check_class_labels_accepts_as_before(y):
    got = check_class_labels(y, y.shape[0], 3)
    assert got.dtype == np.int64 and got.flags.c_contiguous and got is not y
    assert np.array_equal(got, y.astype(np.int64))


def test_check_class_labels_names_the_first_bad_label():
    y = np.array([0, 1, 5, -2, 7])
    with pytest.raises(LabelError, match=r"y\[2\] = 5 is not a class label in \[0, 3\)"):
        check_class_labels(y, 5, 3)
    with pytest.raises(LabelError, match=r"y\[1\] = True is not a class label in \[0, 1\)"):
        check_class_labels(np.array([False, True]), 2, 1)


def test_training_blas_threads_checks_n_threads_before_the_shortcut():
    sizes = [5, 7, 3]
    assert _threads.training_blas_threads(None, 4, sizes) == 1
    assert _threads.training_blas_threads(8, 4, sizes) == 1
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        _threads.training_blas_threads(0, 4, sizes)
    with pytest.raises(TypeError, match="n_threads must be an integer"):
        _threads.training_blas_threads(True, 4, sizes)
    big = [4096, 4096]
    assert _threads.training_blas_threads(1, 4096, big) == 1
    assert _threads.training_blas_threads(None, 4096, big) is None


def test_step_counts_of_a_fit_as_before():
    """_steps_of: 0 without state, the one shared count, and the same ValueError listing
    the counts when arrays were stepped separately."""
    w, b = np.zeros(2), np.zeros(1)
    opt = SGD([w, b], lr=0.1)
    assert opt._steps_of([w, b]) == 0
    opt.step([np.ones(2), np.ones(1)])
    opt.step([np.ones(2), np.ones(1)])
    assert opt._steps_of([w, b]) == 2 and opt._steps_of([np.zeros(3), w]) == 2
    SGD([w], lr=0.1)        # another optimizer's steps are its own
    opt._entries[id(b)].step = 5
    with pytest.raises(ValueError, match=r"different numbers of steps \[2, 5\]"):
        opt._steps_of([w, b])


def test_an_unshuffled_fit_without_random_state_draws_no_entropy(monkeypatch):
    # random_state=None would seed a Generator from the OS (~10 us a fit); nothing draws
    # from it without shuffle or unseeded Dropout layers, so none is made
    import nnlib.model as model_module
    X, y = _data()
    expected = _fit(_model(), X, y, shuffle=False, random_state=None)

    def refused(*args, **kwargs):
        raise AssertionError("a generator was made for an unshuffled fit")

    monkeypatch.setattr(model_module, "as_generator", refused)
    monkeypatch.setattr(model_module, "shuffle_orders", refused)
    _assert_same(_fit(_model(), X, y, shuffle=False, random_state=None), expected)
    # with an unseeded Dropout layer its mask seed still comes from the generator
    from nnlib.layers import Dropout
    drop = nnlib.Sequential([nnlib.Dense(D, 7, "relu", random_state=0),
                             Dropout(0.5), nnlib.Dense(7, C, random_state=1)])
    with pytest.raises(AssertionError, match="generator was made"):
        drop.fit(X, y, shuffle=False, random_state=None, epochs=1)
