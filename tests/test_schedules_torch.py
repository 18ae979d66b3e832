"""The newer schedules (warm-up, multi-step, one-cycle, warm restarts) against
torch.optim.lr_scheduler over many steps, per-group rates, state_dict, and stepping per
batch in fit."""
import pickle

import numpy as np
import pytest

import nnlib
import nnlib.optim as O
import nnlib.schedules as S

STEPS = 300

# (id, nnlib factory(optimizer), torch factory(torch, optimizer), nnlib optimizer class)
CASES = [
    ("linear_warmup", lambda o: S.LinearLR(0.1, 1.0, total_iters=37, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, total_iters=37)),
    ("linear_decay", lambda o: S.LinearLR(1.0, 0.05, total_iters=250, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.05, total_iters=250)),
    ("multistep", lambda o: S.MultiStepLR([30, 80, 80, 200], gamma=0.5, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.MultiStepLR(o, [30, 80, 80, 200], 0.5)),
    ("warm_restarts", lambda o: S.CosineAnnealingWarmRestarts(17, eta_min=1e-3, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 17,
                                                                           eta_min=1e-3)),
    ("warm_restarts_mult", lambda o: S.CosineAnnealingWarmRestarts(5, T_mult=2, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 5, T_mult=2)),
    ("one_cycle", lambda o: S.OneCycleLR(0.8, total_steps=STEPS, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.OneCycleLR(o, 0.8, total_steps=STEPS)),
    ("one_cycle_linear_3", lambda o: S.OneCycleLR(0.8, epochs=10, steps_per_epoch=30,
                                                  anneal_strategy="linear",
                                                  three_phase=True, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.OneCycleLR(
         o, 0.8, epochs=10, steps_per_epoch=30, anneal_strategy="linear",
         three_phase=True)),
]
IDS = [c[0] for c in CASES]


def _pair(torch, tmake, make, opt_cls="SGD", groups=False, **kw):
    """A torch optimizer + scheduler and the nnlib ones, on two groups when ``groups``
    (rates 0.3 and 0.1)."""
    tw = [torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)]
    ws = [np.zeros(2), np.zeros(1)]
    if groups:
        tspec = [{"params": tw[:1]}, {"params": tw[1:], "lr": 0.1}]
        spec = [{"params": ws[:1]}, {"params": ws[1:], "lr": 0.1}]
    else:
        tspec, spec = tw, ws
    topt = getattr(torch.optim, opt_cls)(tspec, lr=0.3, **kw)
    opt = getattr(O, opt_cls)(spec, lr=0.3, **kw)
    return topt, tmake(torch, topt), opt, make(opt)


def _rates(opt):
    return [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("groups", [False, True], ids=["one_group", "two_groups"])
@pytest.mark.parametrize("name, make, tmake", CASES, ids=IDS)
def test_matches_torch_over_many_steps(name, make, tmake, groups):
    torch = pytest.importorskip("torch")
    topt, tsched, opt, sched = _pair(torch, tmake, make, groups=groups, momentum=0.9)
    for t in range(STEPS):
        np.testing.assert_allclose(_rates(opt), [g["lr"] for g in topt.param_groups],
                                   rtol=1e-12, atol=1e-15, err_msg=f"step {t}")
        np.testing.assert_allclose([g["momentum"] for g in opt.param_groups],
                                   [g["momentum"] for g in topt.param_groups], rtol=1e-12)
        if t < STEPS - 1:
            topt.step()
            tsched.step()
            sched.step()


def test_one_cycle_cycles_adams_beta1_as_torch():
    torch = pytest.importorskip("torch")
    topt, tsched, opt, sched = _pair(
        torch, lambda torch, o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=50),
        lambda o: S.OneCycleLR(0.5, total_steps=50, optimizer=o), opt_cls="Adam")
    for _ in range(49):
        assert opt.param_groups[0]["betas"] == pytest.approx(topt.param_groups[0]["betas"],
                                                             rel=1e-12)
        topt.step()
        tsched.step()
        sched.step()
    with pytest.raises(ValueError, match="total_steps is 50"):
        sched.step()
        sched.step()


def test_one_cycle_needs_a_momentum_to_cycle():
    with pytest.raises(ValueError, match="does not support momentum"):
        S.OneCycleLR(0.1, total_steps=10, optimizer=O.Adagrad([np.zeros(1)]))
    S.OneCycleLR(0.1, total_steps=10, cycle_momentum=False,
                 optimizer=O.Adagrad([np.zeros(1)]))


def test_reduce_on_plateau_reduces_each_group_as_torch():
    torch = pytest.importorskip("torch")
    topt, tsched, opt, sched = _pair(
        torch, lambda torch, o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=2,
                                                                          factor=0.5),
        lambda o: S.ReduceOnPlateau(patience=2, factor=0.5, optimizer=o), groups=True)
    metrics = [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.5, 3.5, 3.5, 3.5, 3.5, 1.0]
    for m in metrics:
        tsched.step(m)
        sched.step(m)
        np.testing.assert_allclose(_rates(opt), [g["lr"] for g in topt.param_groups],
                                   rtol=1e-15)
    assert _rates(opt) == [0.3 * 0.25, 0.1 * 0.25]


ALL = [lambda o: S.Constant(optimizer=o), lambda o: S.InverseScaling(optimizer=o),
       lambda o: S.StepDecay(3, 0.5, optimizer=o),
       lambda o: S.ExponentialDecay(0.9, optimizer=o),
       lambda o: S.CosineAnnealing(7, optimizer=o),
       lambda o: S.ReduceOnPlateau(patience=1, optimizer=o)] + [c[1] for c in CASES]
ALL_IDS = ["constant", "invscaling", "step", "exponential", "cosine", "plateau"] + IDS


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_state_dict_resumes_the_same_rates(make):
    opt = O.SGD([np.zeros(1)], lr=0.3, momentum=0.9)
    sched = make(opt)
    metrics = [3.0, 2.0, 2.5, 2.5, 2.5, 1.0] * 8
    for m in metrics[:20]:
        sched.step(m)
    sd = pickle.loads(pickle.dumps(sched.state_dict()))
    opt_sd = opt.state_dict()
    opt2 = O.SGD([np.zeros(1)], lr=1.0, momentum=0.9)
    sched2 = make(opt2)
    sched2.load_state_dict(sd)
    opt2.load_state_dict(opt_sd)
    for m in metrics[20:]:
        assert sched.step(m) == sched2.step(m)
        assert opt.lr == opt2.lr
    with pytest.raises(ValueError, match="needs the keys"):
        sched2.load_state_dict({"epoch": 1})


# ---- per-batch stepping in fit ----------------------------------------------------------

def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def _model():
    return nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=0),
                             nnlib.Dense(5, 2, random_state=1)])


def test_fit_steps_a_schedule_per_batch_like_a_loop_of_single_batches():
    """fit(schedule_interval="batch") == fitting one batch at a time and stepping the
    schedule after each: the same weights, bit for bit."""
    X, y = _data()
    batch, epochs = 8, 3
    model = _model()
    opt = O.SGD(model.params, lr=0.5, momentum=0.9)
    sched = S.OneCycleLR(0.5, epochs=epochs, steps_per_epoch=7)
    hist = model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=batch, shuffle=False,
                     schedule=sched, schedule_interval="batch")
    assert sched.epoch == epochs * 7 and len(hist.history["lr"]) == epochs

    ref = _model()
    ref_opt = O.SGD(ref.params, lr=0.5, momentum=0.9)
    ref_sched = S.OneCycleLR(0.5, epochs=epochs, steps_per_epoch=7, optimizer=ref_opt)
    for _ in range(epochs):
        for start in range(0, 50, batch):
            ref.fit(X[start:start + batch], y[start:start + batch], optimizer=ref_opt,
                    epochs=1, batch_size=batch, shuffle=False)
            ref_sched.step()
    for p, q in zip(model.params, ref.params):
        np.testing.assert_array_equal(p, q)


def test_fit_per_batch_epoch_loss_equals_the_per_epoch_one_for_a_constant_rate():
    X, y = _data()
    a, b = _model(), _model()
    ha = a.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=2, batch_size=8, random_state=3,
               schedule=S.Constant(), schedule_interval="batch")
    hb = b.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=2, batch_size=8, random_state=3)
    assert ha.history["loss"] == hb.history["loss"]
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)


def test_fit_per_batch_takes_a_callable_of_the_step():
    X, y = _data()
    seen = []

    def rate(step):
        seen.append(step)
        return 0.1 / (1 + step)
    _model().fit(X, y, optimizer=O.SGD(lr=0.1), epochs=2, batch_size=25, schedule=rate,
                 schedule_interval="batch")
    assert seen == [0, 1, 2, 3]


def test_fit_refuses_plateau_per_batch_and_unknown_intervals():
    X, y = _data()
    with pytest.raises(ValueError, match="per epoch"):
        _model().fit(X, y, schedule=S.ReduceOnPlateau(), schedule_interval="batch")
    with pytest.raises(ValueError, match="schedule_interval"):
        _model().fit(X, y, schedule=S.Constant(), schedule_interval="step")


def test_per_batch_schedule_with_batch_callbacks_and_a_python_layer():
    """Batch callbacks see the epoch's running step count; a model with a Python layer
    (Dropout: the per-batch BatchRun path) steps the schedule per batch too."""
    from nnlib.callbacks import Callback
    from nnlib.layers import Dropout
    X, y = _data()
    seen = []

    class Count(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)
    sched = S.LinearLR(0.5, total_iters=10)
    _model().fit(X, y, optimizer=O.SGD(lr=0.1), epochs=2, batch_size=10, shuffle=False,
                 schedule=sched, schedule_interval="batch", callbacks=[Count()])
    assert seen == [0, 1, 2, 3, 4] * 2 and sched.epoch == 10
    model = nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=0),
                              Dropout(0.2, random_state=0), nnlib.Dense(5, 2, random_state=1)])
    opt = O.Adam(lr=0.1)
    sched = S.CosineAnnealing(T_max=10)
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=10, schedule=sched,
              schedule_interval="batch")
    assert sched.epoch == 10 and opt.lr == pytest.approx(0.1 * (1 + np.cos(np.pi)) / 2,
                                                         abs=1e-15)
    assert [opt.state[p]["step"] for p in model.params] == [10] * 4


# ---- get_last_lr and per-group base rates, as torch's --------------------------------

# the older closed forms, whose torch schedulers recurse from each group's initial rate
OLDER = [
    ("step", lambda o: S.StepDecay(7, 0.5, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5)),
    ("exponential", lambda o: S.ExponentialDecay(0.97, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.ExponentialLR(o, 0.97)),
    ("cosine", lambda o: S.CosineAnnealing(40, eta_min=1e-3, optimizer=o),
     lambda torch, o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 40, eta_min=1e-3)),
]
WITH_TORCH = CASES + OLDER
WITH_TORCH_IDS = [c[0] for c in WITH_TORCH]


@pytest.mark.parametrize("name, make, tmake", WITH_TORCH, ids=WITH_TORCH_IDS)
def test_get_last_lr_is_torchs_before_and_after_each_step(name, make, tmake):
    torch = pytest.importorskip("torch")
    topt, tsched, opt, sched = _pair(torch, tmake, make, groups=True, momentum=0.9)
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
    for t in range(STEPS - 1):
        topt.step()
        tsched.step()
        sched.step()
        last = sched.get_last_lr()
        assert isinstance(last, list) and len(last) == 2
        np.testing.assert_allclose(last, tsched.get_last_lr(), rtol=1e-12, atol=1e-15,
                                   err_msg=f"step {t + 1}")
        # per-group base rates (0.3 and 0.1): the groups differ as torch's do
        np.testing.assert_allclose(_rates(opt), _rates(topt), rtol=1e-12, atol=1e-15)


def test_get_last_lr_is_a_copy_and_ignores_a_rate_set_by_hand():
    torch = pytest.importorskip("torch")
    make, tmake = OLDER[0][1], OLDER[0][2]
    topt, tsched, opt, sched = _pair(torch, tmake, make, groups=True)
    sched.get_last_lr()[0] = 99.0
    opt.param_groups[0]["lr"] = 7.0
    topt.param_groups[0]["lr"] = 7.0
    assert sched.get_last_lr() == tsched.get_last_lr() == [0.3, 0.1]


def test_get_last_lr_of_plateau_as_torch():
    torch = pytest.importorskip("torch")
    topt, tsched, opt, sched = _pair(
        torch, lambda torch, o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0,
                                                                          factor=0.5),
        lambda o: S.ReduceOnPlateau(patience=0, factor=0.5, optimizer=o), groups=True)
    assert sched.get_last_lr() == tsched.get_last_lr() == [0.3, 0.1]
    for m in [2.0, 2.0, 2.0, 1.0]:
        tsched.step(m)
        sched.step(m)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-15)
    assert sched.get_last_lr() == [0.3 * 0.25, 0.1 * 0.25]


@pytest.mark.parametrize("make, first", [
    (lambda: S.LinearLR(0.25, lr0=2.0), 0.5),
    (lambda: S.MultiStepLR([0, 3], gamma=0.5, lr0=1.0), 0.5),
    (lambda: S.OneCycleLR(1.0, total_steps=10, div_factor=4.0), 0.25),
    (lambda: S.ReduceOnPlateau(lr0=0.1), 0.1),
], ids=["linear", "milestone_at_0", "one_cycle", "plateau"])
def test_unbound_get_last_lr_and_lr_are_epoch_0s_rate(make, first):
    sched = make()
    assert sched.get_last_lr() == [pytest.approx(first, rel=1e-15)]
    assert sched.lr == pytest.approx(first, rel=1e-15)


def test_get_last_lr_needs_a_rate():
    with pytest.raises(ValueError, match="computed no rate yet"):
        S.CosineAnnealing(10).get_last_lr()


# ---- OneCycleLR with one max_lr (and momentum) per group --------------------------------

ONE_CYCLE_PER_GROUP = [
    ("max_lr_list", {"max_lr": [0.8, 0.05]}),
    ("max_lr_and_momenta_lists", {"max_lr": [0.8, 0.05], "base_momentum": [0.8, 0.6],
                                  "max_momentum": [0.9, 0.99]}),
    ("three_phase_linear", {"max_lr": [0.8, 0.05], "three_phase": True,
                            "anneal_strategy": "linear", "div_factor": 10.0,
                            "final_div_factor": 100.0}),
]


@pytest.mark.parametrize("opt_cls, momentum_key", [("SGD", "momentum"), ("Adam", "betas")],
                         ids=["sgd", "adam"])
@pytest.mark.parametrize("kw", [c[1] for c in ONE_CYCLE_PER_GROUP],
                         ids=[c[0] for c in ONE_CYCLE_PER_GROUP])
def test_one_cycle_per_group_max_lr_and_momenta_as_torch(kw, opt_cls, momentum_key):
    torch = pytest.importorskip("torch")
    extra = {"momentum": 0.9} if opt_cls == "SGD" else {}
    topt, tsched, opt, sched = _pair(
        torch, lambda torch, o: torch.optim.lr_scheduler.OneCycleLR(o, total_steps=60, **kw),
        lambda o: S.OneCycleLR(total_steps=60, optimizer=o, **kw), opt_cls=opt_cls,
        groups=True, **extra)
    for t in range(60):
        np.testing.assert_allclose(_rates(opt), _rates(topt), rtol=1e-12, atol=1e-15,
                                   err_msg=f"step {t}")
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12,
                                   atol=1e-15)
        np.testing.assert_allclose([g[momentum_key] for g in opt.param_groups],
                                   [g[momentum_key] for g in topt.param_groups],
                                   rtol=1e-12)
        if t < 59:
            topt.step()
            tsched.step()
            sched.step()
    assert _rates(opt)[0] != _rates(opt)[1]


@pytest.mark.parametrize("kw, name", [({"max_lr": [0.1, 0.2, 0.3]}, "max_lr"),
                                      ({"max_lr": 0.1, "max_momentum": [0.9]},
                                       "max_momentum")], ids=["max_lr", "max_momentum"])
def test_one_cycle_refuses_lists_of_the_wrong_length(kw, name):
    opt = O.SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}], lr=0.1,
                momentum=0.9)
    with pytest.raises(ValueError, match=f"expected 2 values for {name}"):
        S.OneCycleLR(total_steps=10, optimizer=opt, **kw)


def test_one_cycle_list_max_lr_resumes_from_its_state_dict():
    def make():
        opt = O.SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}], lr=0.1,
                    momentum=0.9)
        return opt, S.OneCycleLR([0.5, 0.25], total_steps=40, max_momentum=[0.9, 0.95],
                                 optimizer=opt)
    opt, sched = make()
    for _ in range(15):
        sched.step()
    opt2, sched2 = make()
    sched2.load_state_dict(pickle.loads(pickle.dumps(sched.state_dict())))
    opt2.load_state_dict(opt.state_dict())
    for _ in range(20):
        sched.step()
        sched2.step()
        assert _rates(opt) == _rates(opt2)
        assert [g["momentum"] for g in opt.param_groups] == \
            [g["momentum"] for g in opt2.param_groups]


# ---- base rates from the groups' initial_lr, torch's rule -------------------------------

FRESH = OLDER + CASES[:3]


@pytest.mark.parametrize("name, make, tmake", FRESH, ids=[c[0] for c in FRESH])
def test_a_fresh_schedule_on_a_decayed_optimizer_starts_from_initial_lr(name, make, tmake):
    torch = pytest.importorskip("torch")
    topt, tsched, opt, sched = _pair(torch, tmake, make, groups=True, momentum=0.9)
    for _ in range(33):                    # before each schedule's rates come back
        topt.step()
        tsched.step()
        sched.step()
    assert _rates(opt) != [0.3, 0.1]
    fresh, tfresh = make(opt), tmake(torch, topt)
    assert fresh.base_lrs == tfresh.base_lrs == [0.3, 0.1]
    assert [g["initial_lr"] for g in opt.param_groups] == \
        [g["initial_lr"] for g in topt.param_groups]


def test_initial_lr_survives_the_optimizers_state_dict_and_loads_from_torchs():
    torch = pytest.importorskip("torch")
    make, tmake = OLDER[0][1], OLDER[0][2]
    topt, tsched, opt, sched = _pair(torch, tmake, make, groups=True)
    for _ in range(10):
        topt.step()
        tsched.step()
        sched.step()
    for sd in (opt.state_dict(), topt.state_dict()):
        ws = [np.zeros(2), np.zeros(1)]
        opt2 = O.SGD([{"params": ws[:1]}, {"params": ws[1:], "lr": 0.1}], lr=0.3)
        opt2.load_state_dict(pickle.loads(pickle.dumps(
            {"state": {}, "param_groups": sd["param_groups"]})))
        assert [g["initial_lr"] for g in opt2.param_groups] == [0.3, 0.1]
        assert make(opt2).base_lrs == [0.3, 0.1]


def test_one_cycle_records_initial_lr_as_torch():
    torch = pytest.importorskip("torch")
    topt, tsched, opt, sched = _pair(
        torch, lambda torch, o: torch.optim.lr_scheduler.OneCycleLR(o, [0.8, 0.4], 50),
        lambda o: S.OneCycleLR([0.8, 0.4], 50, optimizer=o), groups=True, momentum=0.9)
    np.testing.assert_allclose([g["initial_lr"] for g in opt.param_groups],
                               [g["initial_lr"] for g in topt.param_groups], rtol=1e-15)


def test_plateau_reduces_from_the_current_rate():
    opt = O.SGD([np.zeros(1)], lr=0.3)
    S.StepDecay(1, gamma=0.5, optimizer=opt).step()
    plateau = S.ReduceOnPlateau(patience=0, factor=0.5, optimizer=opt)
    assert plateau.get_last_lr() == [0.15] and plateau.step(1.0) == 0.15
    assert plateau.step(1.0) == 0.075
