"""The layer protocol: models with Python layers (Dropout, user layers, Dense subclasses)
train through nnlib.batch_training, whose steps equal the compiled epoch's arithmetic."""
import warnings

import numpy as np
import pytest

import nnlib
from nnlib.callbacks import Callback
from nnlib.layers import Dense, Dropout, Layer, is_compiled
from nnlib.optim import SGD, Adam

DTYPES = [(np.float64, 1e-11), (np.float32, 2e-4)]
OPTIMIZERS = [("sgd", lambda: SGD(lr=0.05)),
              ("momentum-wd", lambda: SGD(lr=0.05, momentum=0.9, weight_decay=1e-3)),
              ("adam", lambda: Adam(lr=0.01))]
LOSSES = ["softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss",
          "hinge_loss"]


class PyDense(Dense):
    """A Dense layer trained through the Python path (same math)."""

    def forward_train(self, X):
        return super().forward_train(X)


def _data(n=37, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.argmax(X[:, :3] + 0.5 * rng.normal(size=(n, 3)), axis=1)
    return X, y


def _targets(loss, y):
    if loss == "squared_error":
        return np.eye(3)[y] * 2.0 - 0.5
    if loss == "logistic_loss":
        return np.eye(3, dtype=int)[y]
    return y


def _pair(dtype, acts=("tanh", "identity")):
    def make(cls):
        return nnlib.Sequential([cls(4, 6, acts[0], random_state=0, dtype=dtype),
                                 cls(6, 3, acts[1], random_state=1, dtype=dtype)])
    return make(Dense), make(PyDense)


def test_which_path_a_model_takes():
    compiled, python = _pair(np.float64)
    assert compiled.compiled and not python.compiled
    assert is_compiled(Dense(2, 2)) and not is_compiled(PyDense(2, 2))
    with_dropout = nnlib.Sequential([Dense(2, 3), Dropout(0.5), Dense(3, 2)])
    assert with_dropout.compiled        # dropout trains inside the compiled epoch
    assert with_dropout.n_in == 2 and with_dropout.n_out == 2

    class MyDropout(Dropout):
        def forward_train(self, X):
            return super().forward_train(X)
    assert not nnlib.Sequential([Dense(2, 3), MyDropout(0.5), Dense(3, 2)]).compiled


def test_a_dense_whose_l2_flags_differ_trains_by_them():
    """The compiled epoch decays every W and no b: a Dense subclass (or instance) with
    other ``regularized`` flags takes the per-batch path, which honours them (the
    compiled one added l2/2 ||W||^2 to a layer that declared none)."""
    class NoDecay(Dense):
        regularized = (False, False)
    X, y = np.eye(2), [0, 1]
    flagged = Dense(2, 2, random_state=0)
    flagged.regularized = (True, True)
    for layer, decayed in [(NoDecay(2, 2, random_state=0), []),
                           (flagged, [flagged.W, flagged.b])]:
        flagged.b[:] = [1.0, -2.0]
        model = nnlib.Sequential([layer])
        assert not model.compiled
        plain, grads = model.loss_and_grads(X, y)
        with_l2, grads_l2 = model.loss_and_grads(X, y, l2=2.0)
        np.testing.assert_allclose(with_l2 - plain, sum((p ** 2).sum() for p in decayed),
                                   atol=1e-12)
        for p, g, g_l2 in zip(layer.params, grads, grads_l2):
            expected = 2.0 * p if any(p is q for q in decayed) else np.zeros_like(p)
            np.testing.assert_allclose(g_l2 - g, expected, atol=1e-12)


@pytest.mark.parametrize("dtype, rtol", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name, make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("l2_per_batch", [False, True], ids=["l2", "l2-per-batch"])
def test_python_path_trains_as_the_compiled_epoch(dtype, rtol, name, make_opt,
                                                  l2_per_batch):
    X, y = _data()
    compiled, python = _pair(dtype)
    kw = dict(epochs=3, batch_size=8, random_state=3, l2=1e-2, l2_per_batch=l2_per_batch)
    opt_c, opt_p = make_opt(), make_opt()
    hc = compiled.fit(X, y, optimizer=opt_c, **kw)
    hp = python.fit(X, y, optimizer=opt_p, **kw)
    assert opt_c.t == opt_p.t == 3 * 5
    for a, b in zip(compiled.params, python.params):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(hp["loss"], hc["loss"], rtol=rtol)


@pytest.mark.parametrize("loss", LOSSES)
def test_python_path_objective_equals_the_compiled_one(loss):
    X, y = _data()
    compiled, python = _pair(np.float64, acts=("sigmoid", "identity"))
    t = _targets(loss, y)
    lc, gc = compiled.loss_and_grads(X, t, loss=loss, l2=0.1)
    lp, gp = python.loss_and_grads(X, t, loss=loss, l2=0.1)
    assert lp == pytest.approx(lc, rel=1e-13)
    for a, b in zip(gc, gp):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-14)
    ep, ec = python.evaluate(X, t, loss=loss), compiled.evaluate(X, t, loss=loss)
    assert ep.loss == pytest.approx(ec.loss, rel=1e-13) and ep.accuracy == ec.accuracy


class Scale(Layer):
    """y = x * s (a learned factor per feature) -- a user's layer."""

    def __init__(self, n, dtype=np.float64):
        self.n_in = self.n_out = n
        self.s = np.linspace(0.5, 1.5, n).astype(dtype)

    params = property(lambda self: [self.s])
    param_names = ("s",)
    regularized = (True,)
    dtype = property(lambda self: self.s.dtype)

    def forward(self, X):
        return X * self.s

    def forward_train(self, X):
        return X * self.s, lambda dH: (dH * self.s, [(dH * X).sum(axis=0)])


def test_a_user_layer_gets_gradients_that_match_finite_differences():
    X, y = _data(12)
    model = nnlib.Sequential([Dense(4, 5, "tanh", random_state=0), Scale(5),
                              Dense(5, 3, random_state=1)])
    value, grads = model.loss_and_grads(X, y, l2=0.05)
    eps = 1e-6
    for p, g in zip(model.params, grads):
        for idx in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            old = p[idx]
            p[idx] = old + eps
            up = model.loss_and_grads(X, y, l2=0.05)[0]
            p[idx] = old - eps
            down = model.loss_and_grads(X, y, l2=0.05)[0]
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)
    # and it trains: the loss falls
    hist = model.fit(X, y, optimizer=Adam(lr=0.05), epochs=30, batch_size=4,
                     random_state=0)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]


def test_a_dense_subclass_overriding_forward_is_used_everywhere_or_refused():
    class Doubled(Dense):
        def forward(self, X, n_threads=None):
            return 2.0 * super().forward(X, n_threads=n_threads)

    X, y = _data(10)
    plain = nnlib.Sequential([Dense(4, 3, random_state=0)])
    doubled = nnlib.Sequential([Doubled(4, 3, random_state=0)])
    np.testing.assert_array_equal(doubled.predict(X), 2 * plain.predict(X))
    # evaluate goes through the layer's own forward, as predict does
    assert doubled.evaluate(X, y).loss == pytest.approx(
        nnlib.functional.softmax_cross_entropy(2 * plain.predict(X), y), rel=1e-13)
    for call in (lambda: doubled.fit(X, y), lambda: doubled.loss_and_grads(X, y)):
        with pytest.raises(TypeError, match="overrides forward but not forward_train"):
            call()


def test_dropout_masks_are_inverted_seeded_and_off_at_inference():
    X = np.ones((2000, 50))
    H, backprop = Dropout(0.25, random_state=0).forward_train(X)
    kept = H != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_array_equal(H[kept], 1 / 0.75)
    np.testing.assert_array_equal(backprop(np.full_like(X, 3.0))[0], 3.0 * H)
    again, _ = Dropout(0.25, random_state=0).forward_train(X)
    np.testing.assert_array_equal(H, again)
    H32, _ = Dropout(0.5, random_state=0).forward_train(X.astype(np.float32))
    assert H32.dtype == np.float32
    assert Dropout(0.9).forward(X) is X
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            Dropout(bad)


def _dropout_model(seed, rate=0.5):
    return nnlib.Sequential([Dense(4, 16, "relu", random_state=0),
                             Dropout(rate, random_state=seed),
                             Dense(16, 3, random_state=1)])


def test_training_with_dropout_is_reproducible_and_rate_zero_is_plain_training():
    X, y = _data(60)
    a, b = _dropout_model(7), _dropout_model(7)
    for m in (a, b):
        m.fit(X, y, optimizer=Adam(lr=0.01), epochs=3, batch_size=8, random_state=0)
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)
    c = _dropout_model(8)
    c.fit(X, y, optimizer=Adam(lr=0.01), epochs=3, batch_size=8, random_state=0)
    assert not np.array_equal(a.params[0], c.params[0])
    zero = _dropout_model(7, rate=0.0)
    plain = nnlib.Sequential([Dense(4, 16, "relu", random_state=0),
                              Dense(16, 3, random_state=1)])
    for m in (zero, plain):
        m.fit(X, y, optimizer=Adam(lr=0.01), epochs=3, batch_size=8, random_state=0)
    for p, q in zip(zero.params, plain.params):
        np.testing.assert_allclose(p, q, rtol=1e-11, atol=1e-13)


class CountGrads(Layer):
    def __init__(self, n, n_grads=1, shape=None):
        self.n_in = self.n_out = n
        self.w = np.ones(n)
        self.n_grads, self.shape = n_grads, shape

    params = property(lambda self: [self.w])
    dtype = property(lambda self: self.w.dtype)

    def forward(self, X):
        return X * self.w

    def forward_train(self, X):
        g = np.zeros(self.shape or self.w.shape)
        return X * self.w, lambda dH: (dH * self.w, [g] * self.n_grads)


@pytest.mark.parametrize("build, error, match", [
    (lambda: nnlib.Sequential([Dense(2, 2), object()]), TypeError, "layer protocol"),
    (lambda: nnlib.Sequential([Dense(2, 3), Dropout(0.1), Dense(2, 2)]), nnlib.ShapeError,
     r"layers\[2\] expects 2 inputs but layers\[0\] gives 3"),
    (lambda: nnlib.Sequential([Dropout(0.1)]), nnlib.ShapeError, "input width"),
], ids=["not-a-layer", "width-across-dropout", "no-width"])
def test_bad_stacks_are_refused(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("layer, match", [
    (CountGrads(4, n_grads=2), "returned 2 gradients"),
    (CountGrads(4, shape=(3,)), "gradient of shape"),
], ids=["count", "shape"])
def test_a_layer_returning_bad_gradients_gets_a_clear_error(layer, match):
    X, y = _data(8)
    model = nnlib.Sequential([layer, Dense(4, 3, random_state=0)])
    with pytest.raises(nnlib.ShapeError, match=match):
        model.loss_and_grads(X, y)
    with pytest.raises(nnlib.ShapeError, match=match):
        model.fit(X, y)


class BadInputGradient(Layer):
    """A parameter-free layer whose backprop returns ``dX`` as ``make(dH)``."""

    def __init__(self, make):
        self.make = make

    def forward(self, X):
        return X

    def forward_train(self, X):
        return X, lambda dH: (self.make(dH), [])


# Before (probe34) a dX of None, of another shape or a list reached the Dense layer
# below as dH: "not enough values to unpack (expected 4, got 3)" from dense_backward, or
# NumPy's broadcasting error, naming neither the layer nor its backprop.
@pytest.mark.parametrize("make, got", [
    (lambda dH: None, "NoneType"),
    (lambda dH: dH[:, :3], r"\(8, 3\)"),
    (lambda dH: dH[:-1], r"\(7, 4\)"),
    (lambda dH: dH.tolist(), "list"),
], ids=["none", "narrower", "fewer-rows", "list"])
def test_a_layer_returning_a_bad_input_gradient_is_named(make, got):
    X, y = _data(8)
    model = nnlib.Sequential([Dense(4, 4, random_state=0), BadInputGradient(make),
                              Dense(4, 3, random_state=1)])
    match = (r"layers\[1\] \(BadInputGradient\)'s backprop must return dX of its input's "
             r"shape \(8, 4\); got " + got)
    with pytest.raises(nnlib.ShapeError, match=match):
        model.loss_and_grads(X, y)
    with pytest.raises(nnlib.ShapeError, match=match):
        model.fit(X, y, batch_size=8)


class CopiedParams(CountGrads):
    """params gives copies: the optimizer would update arrays the layer never reads."""
    params = property(lambda self: [self.w.copy()])


class ThreeFlags(CountGrads):
    regularized = (True, False, True)             # three flags for one array


class NoFlags(CountGrads):
    regularized = ()


def test_a_layer_whose_params_are_not_its_live_arrays_is_refused_by_fit():
    # fit raised "The truth value of an array ... is ambiguous" after the first epoch
    X, y = _data(8)
    model = nnlib.Sequential([Dense(4, 4, random_state=0), CopiedParams(4),
                              Dense(4, 3, random_state=1)])
    with pytest.raises(TypeError, match=r"layers\[1\] \(CopiedParams\)\.params gives "
                                        r"new arrays at each call"):
        model.fit(X, y, epochs=2)


def test_layers_whose_params_are_new_arrays_are_not_taken_for_one_shared_array():
    # Found in review of probe34: the check for an array held twice compared the ids of
    # arrays freed as soon as the next layer's params were read, so a new copy given by
    # the next such layer took a freed id and fit said "layers[1].w and layers[2].w are
    # the same array" -- naming two different arrays -- instead of what is wrong
    X, y = _data(8)
    model = nnlib.Sequential([Dense(4, 4, random_state=0), CopiedParams(4),
                              CopiedParams(4), CopiedParams(4), Dense(4, 3, random_state=1)])
    for _ in range(3):
        with pytest.raises(TypeError, match=r"layers\[1\] \(CopiedParams\)\.params gives "
                                            r"new arrays at each call"):
            model.fit(X, y, epochs=2)


@pytest.mark.parametrize("layer", [ThreeFlags(4), NoFlags(4)], ids=["more", "fewer"])
def test_a_layer_with_one_regularized_flag_per_param_or_a_clear_error(layer):
    # three flags for one array were ignored; none gave an IndexError with l2 > 0
    X, y = _data(8)
    model = nnlib.Sequential([layer, Dense(4, 3, random_state=0)])
    for call in (lambda: model.loss_and_grads(X, y, l2=0.1),
                 lambda: model.fit(X, y, l2=0.1)):
        with pytest.raises(nnlib.ShapeError, match=r"layers\[0\] \(\w+\) has 1 params "
                                                   r"but \d regularized flags"):
            call()


def test_a_python_layers_array_replaced_mid_fit_stops_with_the_documented_error():
    # it was meant to raise this; comparing the lists with != raised NumPy's "truth
    # value of an array is ambiguous" instead
    X, y = _data(8)
    layer = CountGrads(4)
    model = nnlib.Sequential([Dense(4, 4, random_state=0), layer,
                              Dense(4, 3, random_state=1)])

    class Replace(Callback):
        def on_epoch_end(self, epoch, logs=None):
            layer.w = layer.w.copy()

    with pytest.raises(RuntimeError, match="replaced during training"):
        model.fit(X, y, epochs=3, callbacks=[Replace()])


def test_save_refuses_layers_the_format_cannot_hold(tmp_path):
    model = nnlib.Sequential([Dense(4, 3), CountGrads(3), Dense(3, 2)])
    with pytest.raises(TypeError, match="Dense and Dropout layers only"):
        model.save(tmp_path / "m.npz")


def test_divergence_stops_with_the_last_finite_weights():
    X, y = _data(40)
    model = _dropout_model(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = model.fit(X * 1e150, y, optimizer=SGD(lr=1e10), epochs=5, batch_size=8)
    assert hist.stop_reason == "nonfinite"
    assert any("non-finite" in str(w.message) for w in caught)
    assert all(np.isfinite(p).all() for p in model.params)


class InterruptAt(Callback):
    def __init__(self, step):
        self.step, self.seen = step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            raise KeyboardInterrupt


def test_an_interrupt_leaves_the_step_count_consistent():
    X, y = _data(40)
    model, opt = _dropout_model(0), Adam(lr=0.01)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, optimizer=opt, epochs=5, batch_size=8,
                  callbacks=[InterruptAt(7)])
    assert opt.t == 7
    # the model and optimizer are usable afterwards
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=8)
    assert opt.t == 12


# -- a Dense layer's activation parameter set as an attribute --------------------------
# Before (probe34): set after construction, activation_param was kept and ignored unless
# the constructor had been given one: forward, fit and save used the default slope 0.01
# while to_torch and to_onnx used the value set (the PyTorch twin computed -0.5 where
# predict gave -0.01); an activation switched from leaky_relu to elu exported alpha 0.01
# and ran alpha 1.0.
ACTIVATION_SETS = {
    "leaky-slope": ("leaky_relu", lambda layer: setattr(layer, "activation_param", 0.5),
                    lambda z: np.where(z > 0, z, 0.5 * z)),
    "elu-alpha": ("elu", lambda layer: setattr(layer, "activation_param", 0.25),
                  lambda z: np.where(z > 0, z, 0.25 * np.expm1(np.minimum(z, 0)))),
    "leaky-to-elu": ("leaky_relu", lambda layer: setattr(layer, "activation", "elu"),
                     lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))),
    "back-to-default": ("leaky_relu", lambda layer: (
        setattr(layer, "activation_param", 0.5), setattr(layer, "activation_param", None)),
        lambda z: np.where(z > 0, z, 0.01 * z)),
}


@pytest.mark.parametrize("case", list(ACTIVATION_SETS), ids=list(ACTIVATION_SETS))
def test_an_activation_parameter_set_later_is_the_one_every_path_uses(case, tmp_path):
    activation, change, act = ACTIVATION_SETS[case]
    layer = Dense(3, 4, activation, random_state=0)
    change(layer)
    model = nnlib.Sequential([layer])
    X = np.random.default_rng(0).normal(size=(6, 3))
    want = act(X @ layer.W + layer.b)
    np.testing.assert_allclose(model.predict(X), want, rtol=1e-13, atol=1e-15)
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nnlib.load(tmp_path / "m.npz").predict(X),
                                  model.predict(X))
    torch = pytest.importorskip("torch")
    from nnlib.export import to_torch
    twin = to_torch(model)
    with torch.no_grad():
        out = twin(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-15)


def test_a_dense_pickled_before_activation_param_was_a_property_loads():
    layer = Dense(2, 2, "elu", random_state=0)
    old = {k: v for k, v in layer.__dict__.items() if k != "_activation_param"}
    old.update(activation_code=6, activation_param=1.0, _param_given=False)
    revived = Dense.__new__(Dense)
    revived.__setstate__(dict(old))
    assert revived.activation_param == 1.0 and revived.spec() == layer.spec()
    old.update(activation_param=0.5, _param_given=True)
    revived = Dense.__new__(Dense)
    revived.__setstate__(dict(old))
    assert revived.activation_param == 0.5 and revived.spec()["activation_param"] == 0.5


# A model holding one array in two places. Before (probe34) fit refused it with the
# optimizer's "some parameters appear in more than one parameter group (or twice in
# one)", about groups the user never made.
def _tied_model(how):
    first = Dense(4, 4, "tanh", random_state=0)
    if how == "same-layer":
        second = first
    else:
        second = Dense(4, 4, "tanh", random_state=1)
        second.W = first.W
    return nnlib.Sequential([first, second, Dense(4, 3, random_state=2)])


@pytest.mark.parametrize("how, match", [
    ("same-layer", r"layers\[0\] and layers\[1\] are the same layer"),
    ("tied-W", r"layers\[0\]\.W and layers\[1\]\.W are the same array"),
], ids=["same-layer", "tied-W"])
@pytest.mark.parametrize("verb", ["fit", "train_on_batch"])
def test_a_model_holding_an_array_twice_is_named_by_fit(how, match, verb):
    X, y = _data(8)
    model = _tied_model(how)
    with pytest.raises(ValueError, match=match):
        getattr(model, verb)(X, y, optimizer=SGD(lr=0.1))
    assert model.predict(X).shape == (8, 3)          # inference is well defined
