"""What ``fit`` reads once and reuses within one call: the layers' check (``fit`` ->
``network_of``), the optimizer's config (the run's constructor -> its first epoch), the
model's and the optimizer's claims (one lock), the kept setup's keep rule and the label
range check. Each reuse holds only while none of the user's code runs in between; every
change made by such code -- between fits, from a callback, from ``y.__array__``, from a
generator's ``permutation``, from another thread -- is seen as before, with the same
result or the same error.
"""
import numpy as np
import pytest

import nnlib
from nnlib import _threads, training
from nnlib._reference import train as twin
from nnlib._kernels import train
from nnlib.callbacks import Callback
from nnlib.exceptions import ConcurrentUseError, DTypeError, DTypeRangeError, ShapeError
from nnlib.layers import Dense
from nnlib.optim import SGD
from tests.test_concurrency import _PausedFit

N, D = 40, 5


def _model(dtype=np.float64):
    return nnlib.Sequential([Dense(D, 7, "tanh", dtype=dtype, random_state=0),
                             Dense(7, 3, dtype=dtype, random_state=1)])


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D)), rng.integers(0, 3, N)


def _fit(model, opt, X, y, seed, **kw):
    kw = {"epochs": 1, "batch_size": 1, "random_state": seed, "n_threads": 1, **kw}
    return model.fit(X, y, optimizer=opt, **kw)


class _UserY:
    """Labels handed over as an object whose ``__array__`` runs code of the user's."""

    def __init__(self, y, hook):
        self.y, self.hook = y, hook

    def __array__(self, dtype=None, copy=None):
        self.hook()
        return self.y


# -- the layers' check: once per fit, again when the user's code ran after it --------

def test_a_layer_swapped_in_by_y_array_is_refused_by_the_runs_check():
    """_inputs checks the stack before y is converted; the user's __array__ then breaks
    it, and the run's own check (which fit skips for plain arrays) names the layer."""
    X, y = _data()
    model = _model()
    _fit(model, SGD(lr=0.1), X, y, 1)             # caches warm

    def swap():
        model.layers[1] = Dense(8, 3, random_state=2)
    with pytest.raises(ShapeError, match=r"layers\[1\] expects 8 inputs but layers\[0\] "
                                         r"gives 7 outputs"):
        _fit(model, SGD(lr=0.1), X, _UserY(y, swap), 2)


def _mixed_dtype(model):
    model.layers[1].W = model.layers[1].W.astype(np.float32)


def _all_float32(model):
    for layer in model.layers:
        layer.W, layer.b = layer.W.astype(np.float32), layer.b.astype(np.float32)


def _reshaped_in_place(model):
    model.layers[0].W.shape = (7, D)


def _transposed_weights(model):
    model.layers[1].W = np.ascontiguousarray(model.layers[1].W.T)


def _strided_weights(model):
    layer = model.layers[0]
    layer.W = np.repeat(layer.W, 2, axis=0)[::2]      # the same values, not contiguous


def _wider_output(model):
    model.layers.append(Dense(3, 4, random_state=3))


def _narrower_input(model):
    model.layers.insert(0, Dense(4, D, random_state=4))


def _empty(model):
    model.layers.clear()


MUTATIONS = [_mixed_dtype, _all_float32, _reshaped_in_place, _transposed_weights,
             _strided_weights, _wider_output, _narrower_input, _empty]


def _outcome(model, opt, X, y):
    try:
        _fit(model, opt, X, y, 3)
    except Exception as exc:                    # compared between the two models
        return type(exc), str(exc)
    return [p.copy() for p in model.params]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=[m.__name__.lstrip("_") for m in MUTATIONS])
def test_a_model_changed_between_fits_fits_as_one_without_kept_state(mutate):
    """The same weights, or the same error and message, as the same change on a model
    whose caches were emptied (the first fit warms them; ``fresh`` drops them)."""
    X, y = _data()
    outcomes = []
    for fresh in (False, True):
        model, opt = _model(), SGD(lr=0.1)
        _fit(model, opt, X, y, 1)
        _fit(model, opt, X, y, 2)
        mutate(model)
        if fresh:
            training._KEPT.pop(model, None)
        outcomes.append(_outcome(model, opt, X[:, :4].copy() if mutate is _narrower_input
                                 else X, y))
    kept, fresh = outcomes
    if isinstance(fresh, tuple):
        assert kept == fresh
    else:
        assert len(kept) == len(fresh)
        for a, b in zip(kept, fresh):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mutate, error, message", [
    (_mixed_dtype, DTypeError, "all layers must share a dtype"),
    (_reshaped_in_place, ShapeError, r"Dense.W must be an array of shape \(5, 7\)"),
    (_transposed_weights, ShapeError, r"Dense.W must be an array of shape \(7, 3\)")],
    ids=["mixed-dtype", "reshaped", "transposed"])
def test_a_broken_model_is_refused_on_its_next_fit(mutate, error, message):
    X, y = _data()
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, opt, X, y, 1)
    mutate(model)
    with pytest.raises(error, match=message):
        _fit(model, opt, X, y, 2)


# -- the optimizer's config: read once before the first epoch unless code ran -------

class _SetLr(Callback):
    def __init__(self, opt, hook):
        self.opt, self.hook = opt, hook

    def on_train_begin(self, logs=None):
        if self.hook == "train_begin":
            self.opt.lr = 0.5

    def on_epoch_begin(self, epoch, logs=None):
        if self.hook == "epoch_begin":
            self.opt.lr = 0.5


class _LrGenerator(np.random.Generator):
    """A generator of the user's class: its permutation sets the learning rate."""
    opt = None

    def permutation(self, n):
        self.opt.lr = 0.5
        return super().permutation(n)


def _trained_with_lr_05(X, y, seed):
    model = _model()
    _fit(model, SGD(lr=0.5), X, y, np.random.default_rng(seed))
    return model.params


@pytest.mark.parametrize("how", ["train_begin", "epoch_begin", "generator", "schedule"])
def test_an_lr_set_before_the_first_epoch_by_the_users_code_takes_effect(how):
    X, y = _data()
    model, opt = _model(), SGD(lr=0.1)
    kw = {}
    if how == "generator":
        rng = _LrGenerator(np.random.PCG64(7))
        rng.opt = opt
    else:
        rng = np.random.default_rng(7)
        if how == "schedule":
            kw["schedule"] = lambda epoch: 0.5
        else:
            kw["callbacks"] = [_SetLr(opt, how)]
    _fit(model, opt, X, y, rng, **kw)
    for a, b in zip(model.params, _trained_with_lr_05(X, y, 7)):
        np.testing.assert_array_equal(a, b)


def test_an_lr_set_between_fits_takes_effect():
    X, y = _data()
    models = []
    for fresh in (False, True):
        model, opt = _model(), SGD(lr=0.1)
        _fit(model, opt, X, y, 1)
        opt.lr = 0.5
        if fresh:
            training._KEPT.pop(model, None)
        _fit(model, opt, X, y, 2)
        models.append(model)
    for a, b in zip(models[0].params, models[1].params):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(models[0].params[0], _lr_01_twice(X, y).params[0])


def _lr_01_twice(X, y):
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, opt, X, y, 1)
    _fit(model, opt, X, y, 2)
    return model


def test_a_run_built_by_hand_follows_an_lr_set_before_its_epoch():
    """TrainingRun's default (fresh=False) reads the config again at every epoch."""
    X, y = _data()
    model, opt = _model(), SGD(lr=0.1)
    yt, yl = model._targets(y, "softmax_cross_entropy", N)
    order = np.arange(N, dtype=np.int64)
    with training.TrainingRun(model, X, yt, yl, "softmax_cross_entropy", opt,
                              batch_size=1) as run:
        opt.lr = 0.5
        run.run_epoch(order)
    ref = _model()
    with training.TrainingRun(ref, X, yt, yl, "softmax_cross_entropy", SGD(lr=0.5),
                              batch_size=1) as run:
        run.run_epoch(order, fresh=True)
    for a, b in zip(model.params, ref.params):
        np.testing.assert_array_equal(a, b)


def test_arrays_replaced_before_a_runs_first_epoch_are_refused():
    X, y = _data()
    model, opt = _model(), SGD(lr=0.1)
    yt, yl = model._targets(y, "softmax_cross_entropy", N)
    with training.TrainingRun(model, X, yt, yl, "softmax_cross_entropy", opt,
                              batch_size=1) as run:
        model.layers[0].W = model.layers[0].W.copy()
        with pytest.raises(RuntimeError, match="parameter arrays were replaced"):
            run.run_epoch(np.arange(N, dtype=np.int64))


@pytest.mark.parametrize("how", ["reset", "load_state_dict"])
def test_optimizer_state_replaced_in_a_callback_is_refused(how):
    """Before: after reset() or load_state_dict() in a callback the run stepped the
    arrays it was built on, so the optimizer's new state stayed as it was while t
    counted every step (review rev19: t 18, the loaded state bitwise untouched)."""
    X, y = _data()
    model, opt = _model(), nnlib.optim.Adam(lr=0.01)
    saved = {}

    class Replace(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                saved["t"] = opt.t
                if how == "reset":
                    opt.reset()
                else:
                    opt.load_state_dict(opt.state_dict())
    with pytest.raises(RuntimeError, match="optimizer's state was replaced"):
        model.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=3,
                  batch_size=4, callbacks=[Replace()])
    assert opt.t == (0 if how == "reset" else saved["t"])


@pytest.mark.parametrize("epochs", [1, 2])
def test_momentum_turned_on_in_a_batch_callback(epochs):
    """The epoch it happens in ends as it ran (plain SGD, counted); the next one refuses
    a config its state cannot follow. The end of the epoch makes no optimizer entry, so
    it does not trip over the new layout (a ShapeError as the epoch ended, before)."""
    X, y = np.eye(4).repeat(3, 0), np.arange(12) % 4
    model = nnlib.Sequential([Dense(4, 4, random_state=0)])
    opt = nnlib.optim.SGD(model.params, lr=0.1)

    class TurnOn(Callback):
        def on_train_batch_end(self, batch, logs=None):
            opt.param_groups[0]["momentum"] = 0.9

    def fit():
        model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=4, shuffle=False,
                  callbacks=[TurnOn()])
    if epochs == 1:
        fit()
        assert opt.t == 3
    else:
        with pytest.raises(ValueError, match="state cannot follow"):
            fit()


@pytest.mark.parametrize("how", ["reset", "load_state_dict"])
def test_optimizer_state_replaced_within_an_epoch_is_refused(how):
    """A batch callback replacing the state in the middle of the only epoch: before, the
    rest of the epoch stepped the old arrays and the fit ended without a word, the new
    state zero but counted (t = 10 after a reset at batch 2 of 10). Now the next
    piece refuses, and the new state keeps its own count."""
    X, y = _data()
    model, opt = _model(), nnlib.optim.Adam(lr=0.01)
    saved = {}

    class Replace(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                saved["t"] = opt.t
                saved["state"] = opt.state_dict()
                if how == "reset":
                    opt.reset()
                else:
                    opt.load_state_dict(saved["state"])
    with pytest.raises(RuntimeError, match="optimizer's state was replaced"):
        model.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=1,
                  batch_size=4, shuffle=False, callbacks=[Replace()])
    assert saved["t"] == 2
    assert opt.t == (0 if how == "reset" else 2)
    if how == "load_state_dict":
        for p, want in zip(model.params, saved["state"]["state"].values()):
            for k, v in want.items():
                if isinstance(v, np.ndarray):
                    np.testing.assert_array_equal(opt.state[p][k], v)


# What a callback may change in the layers without replacing an array. Before, the
# compiled setup kept training the network it was built from: relu set to tanh at the
# end of epoch 0 left epochs 1 and 2 training relu (the same losses as no change) while
# predict, validation and save used tanh; a Dropout inserted or its rate changed was
# likewise never applied by the steps (probe34).
class _Tripled(nnlib.layers.Layer):
    params = []

    def forward(self, X):
        return 3 * X

    def forward_train(self, X):
        return 3 * X, lambda dH: (3 * dH, [])


LAYER_CHANGES = {
    "activation": lambda model: setattr(model.layers[0], "activation", "relu"),
    "dropout-rate": lambda model: setattr(model.layers[1], "rate", 0.5),
    "dropout-inserted": lambda model: model.layers.insert(1, nnlib.layers.Dropout(0.5)),
    "python-layer-inserted": lambda model: model.layers.insert(1, _Tripled()),
}


def _changed_model(change):
    model = _model()
    if change == "dropout-rate":
        model.layers.insert(1, nnlib.layers.Dropout(0.25, random_state=0))
    return model


@pytest.mark.parametrize("hook", ["on_epoch_end", "on_train_batch_end"])
@pytest.mark.parametrize("change", list(LAYER_CHANGES), ids=list(LAYER_CHANGES))
def test_a_layer_changed_in_a_callback_is_refused(change, hook):
    """The next piece refuses, having applied only the steps before the change; the
    next fit trains the changed model, exactly as a model built that way."""
    X, y = _data()
    model, opt = _changed_model(change), SGD(lr=0.1)
    seen = {}

    class Change(Callback):
        pass

    def once(self, *args):
        if not seen:
            seen["t"] = opt.t
            seen["params"] = [p.copy() for p in model.params]
            LAYER_CHANGES[change](model)
    setattr(Change, hook, once)
    with pytest.raises(RuntimeError, match="layers changed during training"):
        model.fit(X, y, optimizer=opt, epochs=3, batch_size=4, random_state=0,
                  callbacks=[Change()])
    assert opt.t == seen["t"]
    for p, q in zip(model.params, seen["params"]):
        np.testing.assert_array_equal(p, q)
    twin = _changed_model(change)
    LAYER_CHANGES[change](twin)
    for p, q in zip(twin.params, model.params):
        p[...] = q
    for a, b in zip(twin.layers, model.layers):
        if isinstance(a, nnlib.layers.Dropout):
            a.step = b.step                 # the masks go on from the steps applied
    for m in (model, twin):
        m.fit(X, y, optimizer=SGD(lr=0.1), epochs=1, batch_size=4, random_state=0)
    for p, q in zip(model.params, twin.params):
        np.testing.assert_array_equal(p, q)



# The layers are checked after every batch callback. Found reviewing probe34: the check
# converted and validated every activation each time (training._computation: 1.0 us ->
# 3.0 us per check, fit of digits 64-100-10 with a batch callback 9% slower); it now reads
# the layers' attributes and runs _computation only when one differs.
def _counted_computations(monkeypatch):
    """A list that gains an entry at each call of training._computation."""
    calls = []
    real = training._computation

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(training, "_computation", counted)
    return calls


def test_the_layers_check_after_each_batch_callback_reads_them_unconverted(monkeypatch):
    X, y = _data()
    calls = _counted_computations(monkeypatch)

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass
    model = _model()
    model.fit(X, y, epochs=3, batch_size=2, callbacks=[Batches()])
    assert len(calls) <= 1                  # network_of's, as the run is built


# A run is built from the layers as read once: train_on_batch paid for two walks of the
# layers per call (the network's _computation, converting and checking every activation,
# and the run's _layers_read). Now the kept network remembers the layers as read when it
# was built, and _computation runs only when they differ.
def test_repeated_runs_of_unchanged_layers_convert_their_activations_once(monkeypatch):
    X, y = _data()
    calls = _counted_computations(monkeypatch)
    model = _model()
    model.fit(X, y, epochs=1, batch_size=8)
    for _ in range(3):
        model.train_on_batch(X[:8], y[:8])
        model.fit(X, y, epochs=1, batch_size=8)
    assert len(calls) == 1


def _retyped_to_float32(model):
    for layer in model.layers:
        layer.W, layer.b = layer.W.astype(np.float32), layer.b.astype(np.float32)


# what the read layers decide: a change between two runs is seen by the next
BETWEEN_RUNS = {
    "activation": (lambda m: setattr(m.layers[0], "activation", "relu"), None),
    "slope": (lambda m: setattr(m.layers[0], "activation_param", 0.5), None),
    "unknown-activation": (lambda m: setattr(m.layers[0], "activation", "swish"),
                           ValueError),
    # a slope float64 holds but float32 cannot, checked against the new dtype
    "dtype": (_retyped_to_float32, DTypeRangeError),
}


@pytest.mark.parametrize("change", list(BETWEEN_RUNS))
def test_a_layer_changed_between_runs_is_trained_or_refused(change):
    X, y = _data()

    def built():
        return nnlib.Sequential([Dense(D, 7, "leaky_relu", random_state=0,
                                       activation_param=1e39 if change == "dtype" else None),
                                 Dense(7, 3, random_state=1)])
    model = built()
    model.train_on_batch(X[:8], y[:8], optimizer=SGD(lr=0.1))
    edit, refused = BETWEEN_RUNS[change]
    edit(model)
    if refused is not None:
        with pytest.raises(refused):
            model.train_on_batch(X[:8], y[:8])
        return
    twin = built()                          # the changed layers on a network built anew
    edit(twin)
    twin.set_weights(model.get_weights())
    model.train_on_batch(X[:8], y[:8])      # plain SGD: no state to carry
    twin.train_on_batch(X[:8], y[:8], optimizer=SGD(lr=0.1))
    for p, q in zip(model.params, twin.params):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("change, refused", [
    # the same network: the slope set to the value it had (by default)
    (lambda model: setattr(model.layers[0], "activation_param", 0.01), False),
    (lambda model: setattr(model.layers[0], "activation", "leaky_relu"), False),
    # the layer now trains in Python (no L2 on W), which the compiled setup cannot
    (lambda model: setattr(model.layers[0], "regularized", (False, False)), True),
], ids=["default-slope-given", "same-activation-set", "regularized-changed"])
def test_a_layer_attribute_set_mid_fit_is_refused_only_if_the_network_changes(change,
                                                                             refused):
    X, y = _data()
    model = nnlib.Sequential([Dense(D, 7, "leaky_relu", random_state=0),
                              Dense(7, 3, random_state=1)])

    class Change(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                change(model)
    fit = lambda: model.fit(X, y, epochs=2, batch_size=4,              # noqa: E731
                            callbacks=[Change()])
    if refused:
        with pytest.raises(RuntimeError, match="layers changed during training"):
            fit()
    else:
        assert fit().epoch == [0, 1]

# -- claims: one lock, the same refusals ------------------------------------------

def test_a_refused_fit_holds_nothing_it_claimed():
    X, y = _data()
    busy_model, busy_opt = _model(), SGD(lr=0.1)
    with _PausedFit(busy_model, X, y, optimizer=busy_opt, epochs=2, batch_size=1,
                    n_threads=1):
        free_model, free_opt = _model(), SGD(lr=0.1)
        with pytest.raises(ConcurrentUseError, match=r"the optimizer \(SGD\) is in use by "
                                                     r"a running fit.*own optimizer"):
            _fit(free_model, busy_opt, X, y, 2)
        assert _threads.claimed_by(free_model) is None       # claimed, then released
        with pytest.raises(ConcurrentUseError, match=r"the model \(Sequential\) is in use "
                                                     r"by a running fit.*one model in one"):
            _fit(busy_model, free_opt, X, y, 2)
        assert _threads.claimed_by(free_opt) is None          # never claimed
        with pytest.raises(ConcurrentUseError, match=r"the model \(Sequential\)"):
            _fit(busy_model, busy_opt, X, y, 2)               # the model is named first
        _fit(free_model, free_opt, X, y, 2)                   # both free
    assert _threads.claimed_by(busy_model) is None and _threads.claimed_by(busy_opt) is None


# -- the kept setup, the label check -----------------------------------------------

def test_a_reused_setup_is_kept_again():
    X, y = _data()
    model, opt = _model(), SGD(lr=0.1)
    _fit(model, opt, X, y, 1)
    first = training._KEPT[model].setup[1]
    for seed in (2, 3):
        _fit(model, opt, X, y, seed)
        assert training._KEPT[model].setup[1] is first


@pytest.mark.parametrize("module", [train, twin], ids=["compiled", "twin"])
@pytest.mark.parametrize("labels, shown", [([0, 1, 3], "0..3"), ([-1, 2, 0], "-1..2"),
                                           ([2, -5, 7], "-5..7")])
def test_labels_outside_the_classes_are_refused_with_their_range(module, labels, shown):
    net = module.Network([2, 3], [0], [0.0])
    W, b = [np.zeros((2, 3))], [np.zeros(3)]
    X, yt = np.zeros((3, 2)), np.empty((3, 0))
    ws = module.Workspace(net.sizes, 3, 0, np.float64)
    message = rf"y_label must hold class indices in \[0, 3\); got {shown}$"
    with pytest.raises(ValueError, match=message):
        module.EpochSetup(net, W, b, None, X, yt, np.array(labels), ws, 0, 3)
    setup = module.EpochSetup(net, W, b, None, X, yt, np.array([0, 1, 2]), ws, 0, 3)
    with pytest.raises(ValueError, match=message):
        setup.set_data(X, yt, np.array(labels))


class _LrModel(nnlib.Sequential):
    """A model of the user's class whose ``stop_training`` property (set by fit before
    the first epoch, through ``object.__setattr__``) sets the learning rate."""
    opt = None

    @property
    def stop_training(self):
        return self.__dict__.get("_stop", False)

    @stop_training.setter
    def stop_training(self, value):
        self.__dict__["_stop"] = value
        if self.opt is not None:
            self.opt.lr = 0.5


def test_an_lr_set_by_a_model_subclass_before_the_first_epoch_takes_effect():
    X, y = _data()
    base = _model()
    model, opt = _LrModel(base.layers), SGD(lr=0.1)
    model.opt = opt
    _fit(model, opt, X, y, np.random.default_rng(7))
    for a, b in zip(model.params, _trained_with_lr_05(X, y, 7)):
        np.testing.assert_array_equal(a, b)
