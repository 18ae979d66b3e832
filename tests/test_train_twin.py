"""The compiled training epoch (``nnlib._kernels.train``) against its NumPy twin
(``nnlib._reference.train``): the same setups, the same steps, the same results.

* ``run_epoch``: every activation x every loss, and every optimizer x L2 / weight decay /
  ``l2_per_batch`` x batch length (1, one that does not divide N, the full batch), in
  float32 and float64, for a few steps over two calls (so step numbers continue);
* the status codes: a step whose loss or gradient is not finite is refused before any
  update (1, 2); ``check_updates`` names the step whose update overflowed (3);
* ``loss_grad``: against the twin, and its gradient against 4th-order central
  differences of its own loss;
* parameter groups: one optimizer config per array (its own lr, weight decay, momentum,
  ..., and state layout), every rule kind, with and without L2, in both dtypes.

Tolerances. The kernels compute in the network's dtype (float32 products accumulate in
float32), the twin in float64 rounded to the dtype per layer, so after a few steps the
two differ by rounding errors carried through the updates: ``ULPS`` units of the dtype's
epsilon, relative to the largest magnitude of each array (normwise, as an entry that is
the difference of two large terms is only accurate to that scale).
"""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
from nnlib._reference import train as twin
from nnlib.training import compiled_train
from tests._param_groups import GROUPED
from tests._twin_fit import make_setup
from tests.conftest import central_diff

compiled = compiled_train()

N, D = 13, 4                           # 13 rows: batches of 5 leave a last one of 3
ACTIVATIONS = list(ACTIVATION_CODES)
LOSSES = list(LOSS_CODES)
DTYPES = [("f32", np.float32), ("f64", np.float64)]
# Normwise error allowed after the steps below, in units of the dtype's epsilon: four
# times the worst measured over all cases (8.3 ulps in float32, 6.8 in float64, both in
# a sparsemax_loss optimizer state).
ULPS = {np.float32: 32, np.float64: 32}

# Adaptive rules with eps = 1e-3: a gradient entry that is 0 in exact arithmetic comes out
# as +-1e-9 or 0 depending on the order of summation (hinge_loss's +-1/B terms cancel);
# divided by sqrt(v) + eps with eps = 1e-8 that is a step of up to lr in either direction,
# and the two trajectories part without either being wrong.
OPTIMIZERS = [
    ("sgd", lambda: O.SGD(lr=0.1)),                    # the fused GEMM update
    ("sgd-momentum", lambda: O.SGD(lr=0.05, momentum=0.9, nesterov=True)),
    ("adagrad", lambda: O.Adagrad(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1,
                                  eps=1e-3)),
    ("rmsprop", lambda: O.RMSprop(lr=0.01, momentum=0.5, centered=True, eps=1e-3)),
    ("adam", lambda: O.Adam(lr=0.01, amsgrad=True, eps=1e-3)),
    ("adamw", lambda: O.AdamW(lr=0.01, eps=1e-3)),
    ("notes-momentum", lambda: O.NotesMomentum(lr=0.1, beta=0.5)),
    ("notes-adagrad", lambda: O.NotesAdaGrad(lr=0.1, eps=1e-3)),
    ("sklearn-sgd", lambda: O.SklearnSGD(lr=0.1, momentum=0.9, nesterov=True)),
    ("sklearn-adam", lambda: O.SklearnAdam(lr=0.01, epsilon=1e-3)),
]
# (id, l2, l2_per_batch, weight_decay): weight decay is set in the optimizer's config,
# where every rule reads it (the notes' and scikit-learn's classes fix it at 0)
REGULARIZATION = [
    ("no-penalty", 0.0, False, 0.0),
    ("l2", 0.05, False, 0.0),
    ("l2-per-batch", 0.5, True, 0.0),
    ("weight-decay", 0.0, False, 0.01),
    ("l2-and-weight-decay", 0.05, False, 0.01),
]
BATCHES = [("batch-1", 1), ("batch-5-of-13", 5), ("full-batch", N)]


def _model(acts, n_out, dtype, seed=0):
    """A Sequential D -> 5 -> 4 -> n_out with the given hidden activations. The biases
    are drawn too: with zero biases, rows whose relu units are all off give equal scores,
    ties where hinge_loss has a kink (and finite differences straddle it)."""
    sizes = [D, 5, 4, n_out]
    acts = list(acts) + ["identity"]
    layers = [nnlib.Dense(a, b, act, dtype=dtype, random_state=seed + i)
              for i, (a, b, act) in enumerate(zip(sizes, sizes[1:], acts))]
    rng = np.random.default_rng(seed)
    for layer in layers:
        layer.b[...] = rng.uniform(-0.5, 0.5, layer.n_out)
    return nnlib.Sequential(layers)


def _copy(model):
    twin_model = nnlib.Sequential([
        nnlib.Dense(l.n_in, l.n_out, l.activation, activation_param=l._act_args()[1],
                    dtype=l.dtype, init="zeros") for l in model.layers])
    for p, q in zip(twin_model.params, model.params):
        p[...] = q
    return twin_model


def _data(loss, n_out, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    if loss == "squared_error":
        y = rng.standard_normal((N, n_out))
    elif loss == "poisson_loss":
        y = rng.poisson(1.5, (N, n_out)).astype(float)
    elif loss == "logistic_loss":
        y = rng.integers(0, 2, (N, n_out))
    else:
        y = rng.integers(0, n_out, N)
    return X, y


def _assert_close(got, want, dtype, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.abs(want).max(initial=0.0)), np.finfo(dtype).tiny)
    err = float(np.abs(got - want).max(initial=0.0))
    assert err <= ULPS[dtype] * np.finfo(dtype).eps * scale, (
        f"{what}: error {err:.3g} = {err / (np.finfo(dtype).eps * scale):.1f} ulps of "
        f"{scale:.3g}")


def _train_both(model, X, y, loss, make_opt, *, batch_size, l2=0.0, l2_per_batch=False,
                weight_decay=0.0, max_steps=3, check_updates=False, config=None):
    """Two run_epoch calls (two orders, ``max_steps`` each, step numbers continuing) of
    the compiled loop and of the twin on equal copies of ``model``. Returns, per module,
    (the two results, parameters and states after)."""
    rng = np.random.default_rng(2)
    orders = [rng.permutation(N).astype(np.int64) for _ in range(2)]
    runs = []
    for module in (compiled, twin):
        m = _copy(model)
        opt = make_opt()
        cfg = dict(config or opt.config(), weight_decay=weight_decay)
        setup = make_setup(module, m, X, y, loss, optimizer=opt, config=cfg,
                           batch_size=batch_size, l2=l2, l2_per_batch=l2_per_batch)
        results, step0 = [], 0
        for order in orders:
            out = module.run_epoch(setup, order, step0, max_steps, check_updates)
            results.append(out)
            step0 += out[2]
        runs.append((results, [p.copy() for p in m.params],
                     [s.copy() for s in setup.states if s is not None]))
    return runs


def _assert_same_training(runs, dtype):
    (got_out, got_params, got_states), (want_out, want_params, want_states) = runs
    for got, want in zip(got_out, want_out):
        assert got[1:] == want[1:], f"(seen, steps, status, finite): {got} vs {want}"
        _assert_close(got[0], want[0], dtype, "loss_sum")
    for i, (got, want) in enumerate(zip(got_params, want_params)):
        _assert_close(got, want, dtype, f"param {i}")
    for i, (got, want) in enumerate(zip(got_states, want_states)):
        _assert_close(got, want, dtype, f"state {i}")


def _n_out(loss):
    return 2 if loss == "logistic_loss" else 3


# ---------------------------------------------------------------- run_epoch

ACT_LOSS = [(a, l) for a in ACTIVATIONS for l in LOSSES]
ACT_LOSS_CASES = [(act, loss, dt_id, dt, OPTIMIZERS[i % len(OPTIMIZERS)])
                  for i, (act, loss) in enumerate(ACT_LOSS) for dt_id, dt in DTYPES]


@pytest.mark.parametrize("act, loss, dt_id, dtype, opt", ACT_LOSS_CASES,
                         ids=[f"{a}-{l}-{o[0]}-{d}" for a, l, d, _, o in ACT_LOSS_CASES])
def test_run_epoch_every_activation_and_loss(act, loss, dt_id, dtype, opt):
    """Each activation on both hidden layers, each loss, with L2 and batches of 5; the
    optimizers take turns (each meets several activations and losses)."""
    model = _model([act, act], _n_out(loss), dtype)
    X, y = _data(loss, _n_out(loss))
    runs = _train_both(model, X, y, loss, opt[1], batch_size=5, l2=0.05)
    _assert_same_training(runs, dtype)


OPT_CASES = [(o, r, b, d) for o in OPTIMIZERS for r in REGULARIZATION for b in BATCHES
             for d in DTYPES]


@pytest.mark.parametrize("opt, reg, batch, dt", OPT_CASES,
                         ids=[f"{o[0]}-{r[0]}-{b[0]}-{d[0]}" for o, r, b, d in OPT_CASES])
def test_run_epoch_every_optimizer_penalty_and_batch_length(opt, reg, batch, dt):
    _, make_opt = opt
    _, l2, per_batch, wd = reg
    dtype = dt[1]
    model = _model(["tanh", "elu"], 3, dtype)
    X, y = _data("softmax_cross_entropy", 3)
    runs = _train_both(model, X, y, "softmax_cross_entropy", make_opt, batch_size=batch[1],
                       l2=l2, l2_per_batch=per_batch, weight_decay=wd)
    _assert_same_training(runs, dtype)


# An infinite weight into a relu unit that is off for every row (a positive input times
# -inf): the loss and every gradient stay finite. Without L2 or weight decay no rule
# adds a term to that weight's gradient (0 * inf would make it NaN), in the compiled
# loop as in the twin and in torch.optim, so it stays -inf; every other value trains
# as usual. Batch 1 runs plain SGD's fused first-layer pass and transposed copies.
@pytest.mark.parametrize("batch", BATCHES[:2], ids=[b[0] for b in BATCHES[:2]])
@pytest.mark.parametrize("dt_id, dtype", DTYPES, ids=[d[0] for d in DTYPES])
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_run_epoch_without_decay_keeps_an_infinite_weight(opt, dt_id, dtype, batch):
    model = _model(["relu", "tanh"], 3, dtype)
    model.layers[0].W[0, 2] = -np.inf
    X, y = _data("softmax_cross_entropy", 3)
    X[:, 0] = np.abs(X[:, 0]) + 0.5
    runs = _train_both(model, X, y, "softmax_cross_entropy", opt[1], batch_size=batch[1])
    (got_out, got_params, got_states), (want_out, want_params, want_states) = runs
    for got, want in zip(got_out, want_out):
        assert got[1:] == want[1:] == (got[1], 3, 0, False), f"{got} vs {want}"
        _assert_close(got[0], want[0], dtype, "loss_sum")
    assert got_params[0][0, 2] == want_params[0][0, 2] == -np.inf
    got_params[0][0, 2] = want_params[0][0, 2] = 0.0
    for i, (got, want) in enumerate(zip(got_params + got_states,
                                        want_params + want_states)):
        _assert_close(got, want, dtype, f"array {i}")


# The same weight under plain SGD with weight decay: the compiled loop's fused form
# (1 - lr wd) W - lr H^T dZ keeps it -inf and trains on, the rule W - lr (dW + wd W)
# gives -inf + inf = nan in the twin (as in torch.optim), whose next forward is then not
# finite and refuses its step. Both end the call not finite, so a fit rolls back to the
# last finite weights either way (the documented difference of the fused form).
@pytest.mark.parametrize("batch", BATCHES[:2], ids=[b[0] for b in BATCHES[:2]])
@pytest.mark.parametrize("dt_id, dtype", DTYPES, ids=[d[0] for d in DTYPES])
def test_run_epoch_plain_sgd_with_decay_on_an_infinite_weight(dt_id, dtype, batch):
    model = _model(["relu", "tanh"], 3, dtype)
    model.layers[0].W[0, 2] = -np.inf
    X, y = _data("softmax_cross_entropy", 3)
    X[:, 0] = np.abs(X[:, 0]) + 0.5
    runs = _train_both(model, X, y, "softmax_cross_entropy", lambda: O.SGD(lr=0.1),
                       batch_size=batch[1], weight_decay=0.01)
    (got_out, got_params, _), (want_out, want_params, _) = runs
    assert all(o[-1] is False for o in got_out + want_out)
    assert got_out[0][2:4] == (3, 0) and want_out[0][2:4] == (1, 1)
    assert got_params[0][0, 2] == -np.inf and np.isnan(want_params[0][0, 2])


def test_loss_scale_scales_the_reported_data_loss_only():
    model = _model(["tanh", "tanh"], 3, np.float64)
    X, y = _data("squared_error", 3)
    outs = []
    for scale in (1.0, 0.25):
        for module in (compiled, twin):
            m = _copy(model)
            setup = make_setup(module, m, X, y, "squared_error", optimizer=O.SGD(lr=0.1),
                               batch_size=N, l2=0.1, loss_scale=scale)
            outs.append((module.run_epoch(setup, np.arange(N, dtype=np.int64), 0)[0],
                         [p.copy() for p in m.params]))
    penalty = 0.5 * 0.1 * sum(float((l.W ** 2).sum()) for l in model.layers) * N
    (full, p_full), (full_twin, _), (scaled, p_scaled), (scaled_twin, _) = outs
    assert scaled == pytest.approx(0.25 * (full - penalty) + penalty, rel=1e-14)
    assert full_twin == pytest.approx(full, rel=1e-13)
    assert scaled_twin == pytest.approx(scaled, rel=1e-13)
    for a, b in zip(p_full, p_scaled):                  # the same step either way
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- EpochSetup's checks

def _setup_args(module):
    """EpochSetup's arguments for a 2-3-3 float64 network on 4 labelled rows."""
    sizes = (2, 3, 3)
    rng = np.random.default_rng(0)
    return dict(network=module.Network(sizes, [2, 0], [0.0, 0.0]),
                weights=[rng.standard_normal((2, 3)), rng.standard_normal((3, 3))],
                biases=[np.zeros(3), np.zeros(3)], states=None,
                X=rng.standard_normal((4, 2)), y_target=np.empty((4, 0)),
                y_label=np.array([0, 1, 2, 0]),
                workspace=module.Workspace(sizes, 4, 0, np.float64),
                loss_kind=LOSS_CODES["softmax_cross_entropy"], batch_size=2,
                optimizer=O.SGD(lr=0.1).config())


BAD_SETUPS = [
    ("X-float16", lambda a, m: a.update(X=a["X"].astype(np.float16))),
    ("X-wrong-width", lambda a, m: a.update(X=np.ones((4, 3)))),
    ("X-fortran-order", lambda a, m: a.update(X=np.asfortranarray(np.ones((4, 2))))),
    ("weight-read-only", lambda a, m: a["weights"][0].setflags(write=False)),
    ("bias-float32", lambda a, m: a["biases"].__setitem__(1, np.zeros(3, np.float32))),
    ("label-out-of-range", lambda a, m: a.update(y_label=np.array([0, 1, 3, 0]))),
    ("labels-int32", lambda a, m: a.update(y_label=np.array([0, 1, 2, 0], np.int32))),
    ("unknown-loss", lambda a, m: a.update(loss_kind=9)),
    ("workspace-too-small", lambda a, m: a.update(
        workspace=m.Workspace((2, 3, 3), 1, 0, np.float64))),
    ("batch-size-0", lambda a, m: a.update(batch_size=0)),
    ("negative-l2", lambda a, m: a.update(l2=-1.0)),
    ("states-without-optimizer", lambda a, m: a.update(
        optimizer=None, states=[np.zeros(6), None, None, None])),
    ("state-missing", lambda a, m: a.update(optimizer=O.Adam().config(),
                                            states=[None] * 4)),
    # one config per array: as many as arrays, dicts, one kind, each state its layout
    ("configs-too-few", lambda a, m: a.update(optimizer=[O.SGD(lr=0.1).config()] * 3)),
    ("configs-not-dicts", lambda a, m: a.update(optimizer=[0.1] * 4)),
    ("configs-of-two-kinds", lambda a, m: a.update(
        optimizer=[O.SGD(lr=0.1).config()] * 3 + [O.Adam().config()])),
    ("configs-negative-lr", lambda a, m: a.update(
        optimizer=[O.SGD(lr=0.1).config()] * 3 + [dict(O.SGD().config(), lr=-1.0)])),
    ("configs-momentum-state-missing", lambda a, m: a.update(
        optimizer=[O.SGD(lr=0.1, momentum=0.9).config()] + [O.SGD().config()] * 3)),
    ("configs-state-where-none-is-kept", lambda a, m: a.update(
        optimizer=[O.SGD(lr=0.1, momentum=0.9).config()] + [O.SGD().config()] * 3,
        states=[np.zeros(6), np.zeros(3), None, None])),
]


def test_epoch_setup_arguments_above_are_valid():
    for module in (compiled, twin):
        setup = module.EpochSetup(**_setup_args(module))
        assert module.run_epoch(setup, np.arange(4, dtype=np.int64), 0)[1:4] == (4, 2, 0)
        # momentum on W1 only: a state for W1, none for the others
        args = dict(_setup_args(module), states=[np.zeros(6), None, None, None],
                    optimizer=[O.SGD(lr=0.1, momentum=0.9).config()]
                    + [O.SGD(lr=0.2).config()] * 3)
        setup = module.EpochSetup(**args)
        assert isinstance(setup.optimizer, tuple) and len(setup.optimizer) == 4
        assert module.run_epoch(setup, np.arange(4, dtype=np.int64), 0)[1:4] == (4, 2, 0)


@pytest.mark.parametrize("mutate", [c[1] for c in BAD_SETUPS],
                         ids=[c[0] for c in BAD_SETUPS])
def test_epoch_setup_refuses_what_the_compiled_one_refuses(mutate):
    raised = []
    for module in (compiled, twin):
        args = _setup_args(module)
        mutate(args, module)
        with pytest.raises((TypeError, ValueError)) as info:
            module.EpochSetup(**args)
        raised.append(type(info.value))
    assert raised[0] is raised[1]


# ---------------------------------------------------------------- status codes

def _status_run(module, model, X, y, loss, config, batch_size, **kw):
    setup = make_setup(module, model, X, y, loss, optimizer=O.SGD(lr=0.1), config=config,
                       batch_size=batch_size)
    return module.run_epoch(setup, np.arange(X.shape[0], dtype=np.int64), 0, **kw)


REFUSED = [
    # (id, status, dtype, how the second batch goes bad)
    ("loss-overflows", 1, np.float64, "x"),         # a row of 1e200: (z - y)^2 = inf
    ("gradient-overflows", 2, np.float32, "y"),     # z - y = 6e38: inf in float32 only
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
def test_a_nonfinite_step_is_refused_before_any_update(case, module):
    """The first step trains, the second is refused: the result counts one step and the
    parameters are bitwise those after that one step."""
    _, status, dtype, bad = case
    model = nnlib.Sequential([nnlib.Dense(2, 1, dtype=dtype, random_state=0)])
    X, y = np.ones((2, 2)), np.zeros((2, 1))
    if bad == "x":
        X[1] = 1e200
    else:
        model.layers[0].W[...] = 1.5e38
        y[1] = -3e38
    config = O.SGD(lr=1e-40).config()      # the first step leaves the weights finite
    one_step = _copy(model)
    assert _status_run(module, one_step, X, y, "squared_error", config, 1,
                       max_steps=1)[2:4] == (1, 0)
    out = _status_run(module, model, X, y, "squared_error", config, 1)
    assert out[1:4] == (1, 1, status)
    for a, b in zip(model.params, one_step.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
def test_check_updates_stops_at_the_update_that_overflows(module):
    """An lr of 1e38 in float32: the first update makes W infinite. Without
    check_updates the epoch goes on until a loss is not finite; with it, the step is
    reported (status 3, applied, not counted)."""
    model = nnlib.Sequential([nnlib.Dense(2, 1, dtype=np.float32, random_state=0)])
    X, y = np.full((3, 2), 10.0), np.full((3, 1), -10.0)
    config = dict(O.SGD(lr=0.1).config(), lr=1e38)
    m = _copy(model)
    assert _status_run(module, m, X, y, "squared_error", config, 1)[1:] == (1, 1, 1, False)
    m = _copy(model)
    out = _status_run(module, m, X, y, "squared_error", config, 1, check_updates=True)
    assert out[1:] == (0, 0, 3, False)
    assert not np.isfinite(m.layers[0].W).all()


# ---------------------------------------------------------------- loss_grad

def _loss_grad(module, model, X, y, loss, **kw):
    setup = make_setup(module, model, X, y, loss, **kw)
    dWs = [np.empty_like(l.W) for l in model.layers]
    dbs = [np.empty_like(l.b) for l in model.layers]
    value, status = module.loss_grad(setup, dWs, dbs)
    return value, status, [g for pair in zip(dWs, dbs) for g in pair]


# A step that stays on one side of the kinks of relu, leaky_relu and elu's g''.
FD_STEP = {"relu": 1e-6, "leaky_relu": 1e-6, "elu": 1e-5}


@pytest.mark.parametrize("act, loss", ACT_LOSS, ids=[f"{a}-{l}" for a, l in ACT_LOSS])
def test_loss_grad_matches_the_twin_and_finite_differences(act, loss):
    model = _model([act, act], _n_out(loss), np.float64)
    X, y = _data(loss, _n_out(loss))
    value, status, grads = _loss_grad(compiled, model, X, y, loss, l2=0.1)
    want, want_status, want_grads = _loss_grad(twin, _copy(model), X, y, loss, l2=0.1)
    assert status == want_status == 0
    _assert_close(value, want, np.float64, "loss")
    for i, (g, w) in enumerate(zip(grads, want_grads)):
        _assert_close(g, w, np.float64, f"gradient {i}")
    for i, p in enumerate(model.params):
        def loss_at(v, p=p):
            saved = p.copy()
            p[...] = v
            try:
                return _loss_grad(compiled, model, X, y, loss, l2=0.1)[0]
            finally:
                p[...] = saved
        fd = central_diff(loss_at, p, h=FD_STEP.get(act, 1e-4))
        np.testing.assert_allclose(grads[i], fd, rtol=1e-6, atol=1e-8,
                                   err_msg=f"parameter {i}")


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
def test_loss_grad_status_names_what_is_not_finite(module):
    model = nnlib.Sequential([nnlib.Dense(1, 1, dtype=np.float32, init="zeros")])
    model.layers[0].W[...] = 3e38
    X = np.ones((1, 1))
    assert _loss_grad(module, model, X, np.full((1, 1), -3e38), "squared_error")[1] == 2
    assert _loss_grad(module, model, X * 1e30, np.zeros((1, 1)), "squared_error")[1] == 1


# ---------------------------------------------------------------- None where an object goes

NONE_ARGUMENTS = [
    ("run_epoch-setup", lambda m: m.run_epoch(None, np.arange(4, dtype=np.int64), 0)),
    ("loss_grad-setup", lambda m: m.loss_grad(None, [], [])),
    ("EpochSetup-workspace", lambda m: m.EpochSetup(**dict(_setup_args(m),
                                                           workspace=None))),
    ("run_epoch-order", lambda m: m.run_epoch(m.EpochSetup(**_setup_args(m)), None, 0)),
]


@pytest.mark.parametrize("call", [c[1] for c in NONE_ARGUMENTS],
                         ids=[c[0] for c in NONE_ARGUMENTS])
def test_none_in_place_of_a_setup_workspace_or_order_is_a_type_error(call):
    with pytest.raises(TypeError):
        call(compiled)


# ---------------------------------------------------------------- parameter groups

GROUP_CASES = [(o, l2, d) for o in GROUPED for l2 in (0.0, 0.05) for d in DTYPES]


@pytest.mark.parametrize("opt, l2, dt", GROUP_CASES,
                         ids=[f"{o[0]}-{'l2' if l2 else 'no-l2'}-{d[0]}"
                              for o, l2, d in GROUP_CASES])
def test_run_epoch_with_one_config_per_array(opt, l2, dt):
    """Parameter groups with their own lr, weight decay, momentum, ... (one config per
    array, each array's state of its own layout): the compiled loop and the twin take
    the same steps."""
    _, make = opt
    dtype = dt[1]
    model = _model(["tanh", "elu"], 3, dtype)
    X, y = _data("softmax_cross_entropy", 3)
    rng = np.random.default_rng(2)
    orders = [rng.permutation(N).astype(np.int64) for _ in range(2)]
    runs = []
    for module in (compiled, twin):
        m = _copy(model)
        optimizer = make(m.params)
        configs = optimizer.configs(m.params)
        assert len({repr(sorted(c.items())) for c in configs}) > 1     # really differ
        setup = make_setup(module, m, X, y, "softmax_cross_entropy", optimizer=optimizer,
                           config=configs, batch_size=5, l2=l2)
        results, step0 = [], 0
        for order in orders:
            out = module.run_epoch(setup, order, step0, 2)
            results.append(out)
            step0 += out[2]
        runs.append((results, [p.copy() for p in m.params],
                     [s.copy() for s in setup.states if s is not None]))
    assert [s.size for s in runs[0][2]] == [s.size for s in runs[1][2]]
    _assert_same_training(runs, dtype)


def test_one_config_per_array_equals_the_shared_config_when_all_are_equal():
    """A sequence of equal configs is the one config: the same steps, bit for bit."""
    model = _model(["tanh", "elu"], 3, np.float64)
    X, y = _data("softmax_cross_entropy", 3)
    out = []
    for per_array in (False, True):
        m = _copy(model)
        opt = O.Adam(m.params, lr=0.01)
        cfg = opt.config()
        setup = make_setup(compiled, m, X, y, "softmax_cross_entropy", optimizer=opt,
                           config=[cfg] * 6 if per_array else cfg, batch_size=5, l2=0.05)
        compiled.run_epoch(setup, np.arange(N, dtype=np.int64), 0)
        out.append([p.copy() for p in m.params])
    for p, q in zip(*out):
        np.testing.assert_array_equal(p, q)
