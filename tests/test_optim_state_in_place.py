"""Squared-gradient state written in place through ``optimizer.state[p]`` (session 37):
a negative sum or average (Adagrad's ``sum``, RMSprop's ``square_avg``, Adam's
``exp_avg_sq``/``max_exp_avg_sq``, SklearnAdam's ``vs``) turned finite weights NaN at the
next step, with no error, where load_state_dict refuses the same state; and a centred
RMSprop's ``square_avg`` below ``grad_avg**2`` (a negative variance, clamped to 0 by the
kernel) made a step of ``lr * grad / eps`` silently, in place and when loaded. Each is now
a NonFiniteError (ValueError when loaded) naming the array, the slot and the element;
nothing is updated."""
import re

import numpy as np
import pytest

import nnlib
from nnlib import optim
from nnlib.exceptions import NonFiniteError
from nnlib.layers import Layer

from tests.test_optim_state_hostile import SQUARED

DTYPES = [np.float32, np.float64]
IDS = ["float32", "float64"]


def _stepped(make, dtype):
    w = [np.ones((2, 3), dtype), np.ones(3, dtype)]
    opt = make()
    opt.step(w, [np.full_like(p, 0.1) for p in w])
    return opt, w


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(SQUARED))
def test_a_negative_squared_state_written_in_place_is_refused_by_step(name, dtype):
    make, slot = SQUARED[name]
    opt, w = _stepped(make, dtype)
    opt.state[w[1]][slot][2] = -1.0
    before = [p.copy() for p in w]
    rows = [opt.state_arrays([p])[0].copy() for p in w]
    with pytest.raises(NonFiniteError, match=rf"params\[1\] \(shape \(3,\)\): its "
                                             rf"state\['{slot}'\] holds -1.0 at \(2,\)"):
        opt.step(w, [np.full_like(p, 0.1) for p in w])
    for p, b in zip(w, before):                 # nothing updated, no step counted
        np.testing.assert_array_equal(p, b)
    for p, r in zip(w, rows):
        np.testing.assert_array_equal(opt.state_arrays([p])[0], r)
    assert opt.state[w[0]]["step"] == 1
    opt.state[w[1]][slot][2] = 0.0              # mended: the step runs and stays finite
    opt.step(w, [np.full_like(p, 0.1) for p in w])
    assert all(np.isfinite(p).all() for p in w)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(SQUARED))
def test_a_negative_squared_state_written_through_state_arrays_is_refused(name, dtype):
    # (review of probe37) state_arrays hands out the optimizer's own arrays, as
    # writable as optimizer.state's views, but did not turn the check on: a -1 written
    # there turned w NaN at the next step, with no error
    make, slot = SQUARED[name]
    opt, w = _stepped(make, dtype)
    rows = opt.state_arrays([w[1]])[0]
    rows[opt._slot_names_of(w[1]).index(slot), 2] = -1.0
    before = [p.copy() for p in w]
    with pytest.raises(NonFiniteError, match=rf"params\[1\] \(shape \(3,\)\): its "
                                             rf"state\['{slot}'\] holds -1.0 at \(2,\)"):
        opt.step(w, [np.full_like(p, 0.1) for p in w])
    for p, b in zip(w, before):
        np.testing.assert_array_equal(p, b)


def test_a_fit_does_not_turn_the_state_check_on():
    # the fits take the state arrays through the private _state_rows: a standalone
    # step after a fit does not pay the check (+8-11 % on a 1e6-element Adam step)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), np.arange(20) % 3
    opt = optim.Adam(lr=0.01)
    nnlib.Sequential([nnlib.Dense(3, 3, random_state=0)]).fit(X, y, optimizer=opt)
    assert not opt._state_exposed


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_a_negative_state_written_in_place_is_refused_by_fit(dtype):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)).astype(dtype), np.arange(20) % 3
    model = nnlib.Sequential([nnlib.Dense(3, 3, random_state=0, dtype=dtype)])
    opt = optim.Adam(lr=0.01)
    model.fit(X, y, optimizer=opt, epochs=1)
    opt.state[model.params[0]]["exp_avg_sq"][0, 1] = -2.0
    W = model.params[0].copy()
    with pytest.raises(NonFiniteError, match=r"Adam.fit: params\[0\] .*'exp_avg_sq'\] "
                                             r"holds -2.0 at \(0, 1\)"):
        model.fit(X, y, optimizer=opt, epochs=1)
    np.testing.assert_array_equal(model.params[0], W)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["plain", "momentum"])
def test_a_centred_rmsprop_variance_below_zero_is_refused(momentum, dtype):
    def make(params=None):
        return optim.RMSprop(params, lr=0.01, centered=True, momentum=momentum)
    opt, w = _stepped(make, dtype)
    sd = opt.state_dict()
    opt.state[w[0]]["grad_avg"][1, 0] = 3.0     # square_avg there is 1e-4
    with pytest.raises(NonFiniteError, match=r"params\[0\] .*'square_avg'\] holds .* at "
                                             r"\(1, 0\), below the square of "
                                             r"\['grad_avg'\] there \(3.0\)"):
        opt.step(w, [np.full_like(p, 0.1) for p in w])
    sd["state"][1]["grad_avg"] = np.array([0.01, -0.5, 0.01], dtype)
    with pytest.raises(ValueError, match=r"state\[1\]\['square_avg'\] holds .* at \(1,\), "
                                         r"below the square of"):
        make([np.ones_like(p) for p in w]).load_state_dict(sd)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.99])
def test_a_centred_rmsprop_variance_rounded_below_zero_still_steps(alpha, dtype):
    # constant gradients drive square_avg - grad_avg**2 to 0, where it rounds below:
    # the kernel clamps that, and neither the step nor a reload may refuse it
    w = [np.zeros(500, dtype)]
    opt = optim.RMSprop([w[0]], lr=1e-6, alpha=alpha, centered=True)
    g = np.random.default_rng(1).uniform(-10, 10, 500).astype(dtype)
    opt.state[w[0]]                             # the steps check from here on
    for _ in range(400):
        opt.step([g])
    s = opt.state[w[0]]
    assert (s["grad_avg"].astype(float) ** 2 > s["square_avg"]).any() or alpha > 0.5
    optim.RMSprop([np.zeros(500, dtype)], lr=1e-6, alpha=alpha,
                  centered=True).load_state_dict(opt.state_dict())


@pytest.mark.parametrize("tiny", [1e-24, 1e-30])
def test_a_centred_rmsprop_state_of_tiny_gradients_still_steps_and_loads(tiny):
    # (review of probe37) a float32 gradient below ~1e-22 squares to 0 in square_avg
    # while grad_avg**2, checked in float64, does not: a state the kernel wrote (a
    # saturated unit's gradient) was refused by the next step and by a reload (float64
    # squares underflow in the check as in the kernel: no case there)
    dtype = np.float32
    w = np.zeros(3, dtype)
    g = np.array([tiny, 1.0, 0.0]).astype(dtype)
    opt = optim.RMSprop([w], lr=0.01, centered=True)
    opt.step([g])
    opt.state[w]                                # the steps check from here on
    opt.step([g])
    assert np.isfinite(w).all() and abs(w[0]) <= 0.01 * 2 * tiny / 1e-8
    optim.RMSprop([np.zeros_like(w)], centered=True).load_state_dict(opt.state_dict())


def _stalled_centred_rmsprop():
    """(optimizer, w, g): float32 RMSprop, alpha 0.99999, centred, whose averages of a
    gradient 2 % larger before, held long, then 40000 steps of ``g``, stalled with
    grad_avg**2 above square_avg by more than 1e-3 (an average stops moving within
    eps / (2e-5) = 0.6 % of its target)."""
    rng = np.random.default_rng(1)
    g = rng.uniform(0.5, 2.0, 1000).astype(np.float32)
    w = np.zeros_like(g)
    opt = optim.RMSprop([w], lr=0.0, alpha=0.99999, centered=True)
    opt.step([g])
    sd = opt.state_dict()
    a0 = g * np.float32(1.02)
    sd["state"][0]["grad_avg"] = a0
    sd["state"][0]["square_avg"] = np.nextafter(
        (a0.astype(np.float64) ** 2).astype(np.float32), np.float32(np.inf))
    opt.load_state_dict(sd)
    for _ in range(40000):
        opt.step([g])
    return opt, w, g


def test_a_centred_rmsprop_state_stalled_by_an_alpha_near_1_still_steps_and_loads():
    # (review of probe37) averages of a gradient that shrank and holds stall above it,
    # grad_avg**2 beyond square_avg by more than the fixed 1e-3 slack: a state the
    # kernel wrote itself was refused by the next step and by a reload
    opt, w, g = _stalled_centred_rmsprop()
    s = opt.state[w]                            # the steps check from here on
    excess = s["grad_avg"].astype(float) ** 2 / s["square_avg"] - 1
    assert excess.max() > 1e-3                  # the case the fixed slack refused
    opt.step([g])
    optim.RMSprop([np.zeros_like(g)], alpha=0.99999,
                  centered=True).load_state_dict(opt.state_dict())
    # an edited state is still refused at this alpha (slack 4 eps / 1e-5 = 4.8 %)
    opt.state[w]["grad_avg"][3] = 1.1 * np.sqrt(s["square_avg"][3])
    with pytest.raises(NonFiniteError, match=r"holds .* at \(3,\), below the square"):
        opt.step([g])


def test_a_centred_rmsprop_alpha_lowered_mid_run_keeps_the_stalled_state_steppable():
    # (review of session 37) the slack followed the alpha of the moment: averages that
    # stalled under 0.99999 were refused by the first step after alpha was lowered to
    # 0.9 (slack 1e-3), a state the kernel wrote itself; the slack is now that of the
    # alpha nearest 1 the state was averaged with, until reset()
    opt, w, g = _stalled_centred_rmsprop()
    s = opt.state[w]                            # the steps check from here on
    assert (s["grad_avg"].astype(float) ** 2 / s["square_avg"] - 1).max() > 1e-3
    opt.param_groups[0]["alpha"] = 0.9
    opt.step([g])                               # NonFiniteError before
    opt.reset()                                 # a fresh state: 0.9's slack again
    opt.step([g])
    opt.state[w]["grad_avg"][3] = np.sqrt(opt.state[w]["square_avg"][3]) * 1.01
    with pytest.raises(NonFiniteError, match=r"at \(3,\), below the square"):
        opt.step([g])


def test_an_optimizer_whose_state_was_never_handed_out_is_not_checked():
    # the check costs a read of every state row (a 1e6-element Adam step +3-10 %): it
    # runs only once optimizer.state gave out views that may be written into
    w = np.ones(4)
    opt = optim.Adam([w], lr=0.1)
    opt.step([np.full(4, 0.1)])
    assert not opt._state_exposed
    opt.state_dict()
    assert not opt._state_exposed
    opt.state[w]
    assert opt._state_exposed


class _Scale(Layer):
    """A Python layer: the model trains through nnlib.batch_training."""

    def __init__(self, n, dtype):
        self.n_in = self.n_out = n
        self.s = np.ones(n, dtype)

    params = property(lambda self: [self.s])
    dtype = property(lambda self: self.s.dtype)

    def forward(self, X, n_threads=None):
        return X * self.s

    def forward_train(self, X):
        return X * self.s, lambda dH: (dH * self.s, [(dH * X).sum(axis=0)])


def _model_and_data(dtype, python_layer):
    """(model, Adam, X, y): two Dense layers (a Python layer between them: the model
    trains through nnlib.batch_training)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)).astype(dtype), np.arange(64) % 3
    layers = [nnlib.Dense(4, 5, "relu", random_state=0, dtype=dtype),
              nnlib.Dense(5, 3, random_state=1, dtype=dtype)]
    if python_layer:
        layers.insert(1, _Scale(5, dtype))
    model, opt = nnlib.Sequential(layers), optim.Adam(lr=0.01)
    return model, opt, X, y


def _fit_with_callback(dtype, python_layer, action):
    import warnings
    model, opt, X, y = _model_and_data(dtype, python_layer)

    def cb(epoch, logs):
        if epoch == 0:
            action(model, opt)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model.fit(X, y, optimizer=opt, epochs=3, batch_size=16, callbacks=[cb])
    return [str(w.message) for w in seen if "training stopped" in str(w.message)]


class _WriteAtBatch(nnlib.callbacks.Callback):
    """Writes -1 into exp_avg_sq as batch ``at`` of the first epoch ends (mid-epoch)."""

    def __init__(self, opt, at):
        super().__init__()
        self.opt, self.at, self.done = opt, at, False

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.at and not self.done:
            self.done = True
            self.opt.state[self.model.params[0]]["exp_avg_sq"][0, 0] = -1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("python_layer", [False, True], ids=["compiled", "python"])
@pytest.mark.parametrize("when", ["epoch-end", "mid-epoch"])
def test_a_state_written_mid_fit_is_refused_before_the_next_step_naming_it(
        when, python_layer, dtype):
    # session 37: a callback's write between epochs stopped the fit at the next step,
    # as any divergence, the weights rewound and the state named in the warning; a
    # write within an epoch (a batch callback) was rewound away with the weights and
    # the warning said "lower the learning rate?". Session 38: the fit checks the
    # handed-out state before each compiled call after a callback, as it does when it
    # starts, and raises before stepping (the Python path: the kernel's screen)
    import warnings
    model, opt, X, y = _model_and_data(dtype, python_layer)
    if when == "epoch-end":
        callbacks = [lambda epoch, logs: epoch == 0 and opt.state[model.params[0]][
            "exp_avg_sq"].__setitem__((0, 0), -1.0)]
    else:
        callbacks = [_WriteAtBatch(opt, at=1)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            model.fit(X, y, optimizer=opt, epochs=3, batch_size=16, callbacks=callbacks)
        except NonFiniteError as exc:
            message = str(exc)
        else:
            stopped = [str(w.message) for w in seen if "training stopped" in str(w.message)]
            pytest.fail(f"the fit went on; its warnings: {stopped}")
    assert re.search(r"params\[0\] \(shape \(4, 5\)\): its state\['exp_avg_sq'\] "
                     r"holds -1.0 at \(0, 0\): a sum or average of squared gradients is "
                     r"never negative", message), message
    assert np.isfinite(model.params[0]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("python_layer", [False, True], ids=["compiled", "python"])
def test_a_fit_stopped_by_a_weight_written_non_finite_mid_fit_names_it(python_layer,
                                                                      dtype):
    # its warning said "the network's output overflows ... (largest |parameter| nan):
    # lower the learning rate if they grew during training, else scale the weights"
    got = _fit_with_callback(dtype, python_layer,
                             lambda m, o: m.params[0].__setitem__((1, 2), np.nan))
    assert len(got) == 1
    assert ("the weights are not finite at the start of the step (written since the "
            "last step: by a callback, or another thread?): parameter array 0 (shape "
            "(4, 5)) holds nan at (1, 2)") in got[0]


def test_a_centred_rmsprop_reset_keeps_following_the_alpha_of_a_cached_config():
    # (review of session 38) reset() set _alpha_top to 0, but _alpha_top is raised only
    # where a config is built: a group whose alpha 0.99999 config was cached before the
    # reset averaged the new state without raising it, so lowering alpha to 0.9 after
    # the averages stalled refused the state the kernel wrote (slack 1e-3, not 4.8 %)
    rng = np.random.default_rng(1)
    g = rng.uniform(0.5, 2.0, 1000).astype(np.float32)
    w = np.zeros_like(g)
    opt = optim.RMSprop([w], lr=0.0, alpha=0.99999, centered=True)
    opt.step([g])                               # the alpha 0.99999 config is cached
    opt.reset()
    opt.step([g])
    s = opt.state[w]
    a0 = g * np.float32(1.02)                   # a consistent state: variance >= 0
    s["grad_avg"][...] = a0
    s["square_avg"][...] = np.nextafter((a0.astype(np.float64) ** 2).astype(np.float32),
                                        np.float32(np.inf))
    for _ in range(40000):
        opt.step([g])
    assert (s["grad_avg"].astype(float) ** 2 / s["square_avg"] - 1).max() > 1e-3
    opt.param_groups[0]["alpha"] = 0.9
    opt.step([g])                               # NonFiniteError before


@pytest.mark.parametrize("make, squares", [
    (lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9), False),
    (lambda ps: optim.Adam(ps, lr=1e-3), True)], ids=["sgd-momentum", "adam"])
def test_a_fit_checks_squared_state_after_batch_callbacks_only_where_a_rule_keeps_one(
        make, squares, monkeypatch):
    # (review of session 38) the check after each batch callback cost 7.7 us a batch for
    # SGD with momentum (4 arrays, state handed out), which keeps no squared state: a
    # batch-1 digits fit with a callback took 1.4-1.7x as long
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    model = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                              nnlib.Dense(4, 2, random_state=1)])
    opt = make(model.params)
    opt.step([np.zeros_like(p) for p in model.params])
    opt.state[model.params[0]]                  # handed out: the checks are on
    calls = []
    real = optim.Optimizer._refuse_bad_squares
    monkeypatch.setattr(optim.Optimizer, "_refuse_bad_squares",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))

    class _Noop(nnlib.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    model.fit(X, y, epochs=2, batch_size=4, optimizer=opt, callbacks=[_Noop()], verbose=0)
    assert (len(calls) > 0) == squares
