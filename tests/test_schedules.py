"""Learning-rate schedules vs their closed forms, torch.optim.lr_scheduler and
scikit-learn."""
import math

import numpy as np
import pytest

import nnlib
import nnlib.optim as O
import nnlib.schedules as S

EPOCHS = 40


# (id, factory(lr0, optimizer), closed form f(lr0, t), torch scheduler factory or None)
CLOSED = [
    ("constant", lambda lr0, opt: S.Constant(lr0, opt), lambda lr0, t: lr0, None),
    ("invscaling", lambda lr0, opt: S.InverseScaling(lr0, power_t=0.5, optimizer=opt),
     lambda lr0, t: lr0 / math.sqrt(t + 1), None),
    ("invscaling_p1", lambda lr0, opt: S.InverseScaling(lr0, power_t=1.0, optimizer=opt),
     lambda lr0, t: lr0 / (t + 1), None),
    ("step", lambda lr0, opt: S.StepDecay(7, gamma=0.5, lr0=lr0, optimizer=opt),
     lambda lr0, t: lr0 * 0.5 ** (t // 7),
     lambda torch, o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    ("exponential", lambda lr0, opt: S.ExponentialDecay(0.9, lr0=lr0, optimizer=opt),
     lambda lr0, t: lr0 * 0.9 ** t,
     lambda torch, o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
    ("cosine", lambda lr0, opt: S.CosineAnnealing(25, eta_min=0.01, lr0=lr0, optimizer=opt),
     lambda lr0, t: 0.01 + (lr0 - 0.01) * (1 + math.cos(math.pi * t / 25)) / 2,
     lambda torch, o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=25,
                                                                 eta_min=0.01)),
]
CLOSED_IDS = [c[0] for c in CLOSED]


@pytest.mark.parametrize("name, make, form, tmake", CLOSED, ids=CLOSED_IDS)
def test_call_matches_closed_form(name, make, form, tmake):
    sched = make(0.3, None)
    for t in [0, 1, 2, 5, 13, 24, 25, 39]:
        assert sched(t) == pytest.approx(form(0.3, t), rel=1e-15, abs=0)
        assert sched.lr_at(t) == sched(t) and sched.epoch == t


@pytest.mark.parametrize("name, make, form, tmake", CLOSED, ids=CLOSED_IDS)
def test_step_writes_the_optimizer_lr(name, make, form, tmake):
    opt = O.SGD(lr=0.3, momentum=0.9)
    sched = make(None, opt)                       # lr0 taken from the optimizer
    assert sched.lr0 == 0.3 and opt.lr == pytest.approx(form(0.3, 0), rel=1e-15)
    for t in range(1, EPOCHS):
        lr = sched.step()
        assert lr == opt.lr == sched.lr
        assert lr == pytest.approx(form(0.3, t), rel=1e-15, abs=0)


@pytest.mark.parametrize("name, make, form, tmake", [c for c in CLOSED if c[3]],
                         ids=[c[0] for c in CLOSED if c[3]])
def test_matches_torch_scheduler(name, make, form, tmake):
    torch = pytest.importorskip("torch")
    w = torch.zeros(2, requires_grad=True)
    topt = torch.optim.SGD([w], lr=0.3)
    tsched = tmake(torch, topt)
    opt = O.SGD(lr=0.3)
    sched = make(None, opt)
    for _ in range(EPOCHS):
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        topt.step()
        tsched.step()
        sched.step()


def test_inverse_scaling_matches_sklearn_invscaling():
    so = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    sk = so.SGDOptimizer([np.zeros(2)], learning_rate_init=0.2, lr_schedule="invscaling",
                         power_t=0.25)
    sched = S.InverseScaling(0.2, power_t=0.25)
    for samples_seen in [1, 50, 100, 1000, 12345]:
        sk.iteration_ends(samples_seen)
        assert sched(samples_seen) == pytest.approx(sk.learning_rate, rel=1e-15)


def test_training_uses_the_scheduled_rate():
    # with a constant gradient SGD moves by exactly the sum of the scheduled rates
    w = np.zeros(1)
    opt = O.SGD(lr=1.0)
    sched = S.StepDecay(2, gamma=0.5, optimizer=opt)
    for _ in range(6):
        opt.step([w], [np.ones(1)])
        sched.step()
    assert w[0] == -(1 + 1 + 0.5 + 0.5 + 0.25 + 0.25)


def test_cosine_reaches_eta_min_at_T_max_and_is_periodic():
    s = S.CosineAnnealing(10, eta_min=0.05, lr0=1.0)
    assert s(10) == pytest.approx(0.05, rel=1e-15)
    assert s(20) == pytest.approx(1.0, rel=1e-15)
    assert s(15) == pytest.approx(s(5), rel=1e-15)


# ---- ReduceOnPlateau ---------------------------------------------------------------------

METRICS = ([1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.89, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5]
           + [0.5] * 10 + [0.49999, 0.4, 0.4, 0.4])

PLATEAU = [
    dict(),
    dict(patience=2),
    dict(patience=1, factor=0.5, cooldown=2),
    dict(patience=0, factor=0.5, min_lr=0.02),
    dict(patience=1, threshold=0.05, threshold_mode="abs"),
    dict(patience=1, threshold=0.1, threshold_mode="rel"),
    dict(mode="max", patience=1, factor=0.3),
    dict(mode="max", patience=2, threshold=0.01, threshold_mode="abs", cooldown=1),
    dict(patience=0, factor=0.5, eps=0.04),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_on_plateau_matches_torch(kw):
    torch = pytest.importorskip("torch")
    w = torch.zeros(2, requires_grad=True)
    topt = torch.optim.SGD([w], lr=0.3)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    opt = O.Adam(lr=0.3)
    sched = S.ReduceOnPlateau(optimizer=opt, **kw)
    seen = set()
    metrics = METRICS if kw.get("mode", "min") == "min" else [-m for m in METRICS]
    for m in metrics:
        topt.step()
        tsched.step(m)
        lr = sched.step(m)
        assert lr == opt.lr
        assert lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-15)
        seen.add(lr)
    assert len(seen) >= 2                 # the rate was reduced at least once


def test_reduce_on_plateau_by_hand():
    s = S.ReduceOnPlateau(lr0=1.0, patience=1, factor=0.5)
    # best=3, then two epochs without improvement -> halve, then count restarts
    assert [s.step(m) for m in [3, 3, 3, 3, 2, 3, 3]] == [1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert s.epoch == 7 and s.best == 2


def test_reduce_on_plateau_nan_is_not_an_improvement():
    s = S.ReduceOnPlateau(lr0=1.0, patience=0, factor=0.5)
    s.step(1.0)
    assert s.step(float("nan")) == 0.5


def test_schedules_reachable_from_package():
    assert nnlib.schedules is S


# ---- bad input ---------------------------------------------------------------------------

BAD = [
    (lambda: S.Constant(-1.0), ValueError, "lr0"),
    (lambda: S.InverseScaling(0.1, power_t=-0.5), ValueError, "power_t"),
    (lambda: S.StepDecay(0, lr0=0.1), ValueError, "step_size"),
    (lambda: S.StepDecay(2.5, lr0=0.1), TypeError, "step_size"),
    (lambda: S.StepDecay(2, gamma=0.0, lr0=0.1), ValueError, "gamma"),
    (lambda: S.ExponentialDecay(1.5, lr0=0.1), ValueError, "gamma"),
    (lambda: S.CosineAnnealing(0, lr0=0.1), ValueError, "T_max"),
    (lambda: S.CosineAnnealing(5, eta_min=-1, lr0=0.1), ValueError, "eta_min"),
    (lambda: S.ReduceOnPlateau(mode="up"), ValueError, "mode"),
    (lambda: S.ReduceOnPlateau(factor=1.0), ValueError, "factor"),
    (lambda: S.ReduceOnPlateau(patience=-1), ValueError, "patience"),
    (lambda: S.ReduceOnPlateau(threshold_mode="x"), ValueError, "threshold_mode"),
    (lambda: S.Constant(optimizer=object()), TypeError, "lr attribute"),
    (lambda: S.Constant()(3), ValueError, "lr0"),
    (lambda: S.Constant(0.1)(-1), ValueError, "t"),
    (lambda: S.ReduceOnPlateau(lr0=0.1).step(), TypeError, "metric"),
    (lambda: S.ReduceOnPlateau(lr0=0.1).step("low"), TypeError, "metric"),
    (lambda: S.ReduceOnPlateau(lr0=0.1)(3), TypeError, "step"),
    (lambda: S.ReduceOnPlateau().step(1.0), ValueError, "lr0"),
]


@pytest.mark.parametrize("make, exc, words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_raises(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_repr_names_parameters():
    assert "T_max=5" in repr(S.CosineAnnealing(5, lr0=0.1))
    assert "patience=3" in repr(S.ReduceOnPlateau(patience=3))


@pytest.mark.parametrize("make", [
    lambda opt: S.StepDecay(2, gamma=0.5, optimizer=opt),
    lambda opt: S.CosineAnnealing(10, optimizer=opt),
    lambda opt: S.ReduceOnPlateau(patience=1, factor=0.5, optimizer=opt)])
def test_a_state_dict_saved_before_get_last_lr_still_loads(make):
    # nnlib's schedule state_dicts had no "_last_lr" before get_last_lr existed: they
    # load, get_last_lr reports the rates the restored schedule holds, and the steps
    # go on as the saved schedule's
    opt = O.SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}], lr=0.3)
    sched = make(opt)
    metrics = [3.0, 2.0, 2.5, 2.5, 2.5, 1.0]
    for m in metrics:
        sched.step(m)
    older = {k: v for k, v in sched.state_dict().items() if k != "_last_lr"}
    opt2 = O.SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}], lr=0.3)
    sched2 = make(opt2)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(older)
    assert sched2.get_last_lr() == sched.get_last_lr()
    for m in metrics:
        assert sched2.step(m) == sched.step(m)
        assert sched2.get_last_lr() == sched.get_last_lr()
    with pytest.raises(ValueError, match="needs the keys"):
        sched2.load_state_dict({k: v for k, v in older.items() if k != "epoch"})


@pytest.mark.parametrize("make", [
    lambda opt: S.StepDecay(2, gamma=0.5, optimizer=opt),
    lambda opt: S.CosineAnnealing(10, eta_min=0.01, optimizer=opt),
    lambda opt: S.LinearLR(0.25, total_iters=4, optimizer=opt),
    lambda opt: S.OneCycleLR([1.0, 0.2], total_steps=12, cycle_momentum=False,
                             optimizer=opt)],
    ids=["step", "cosine", "linear", "one_cycle"])
def test_an_older_state_dict_reports_each_groups_own_rate(make):
    # groups of different base rates each follow the schedule from their own: the
    # rates an older state_dict's get_last_lr is rebuilt from are the ones the steps
    # wrote (one rule decides which groups get their own rate, for both)
    def opt():
        return O.SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)], "lr": 0.1}],
                     lr=0.3)
    sched = make(opt())
    for _ in range(6):
        sched.step()
        older = {k: v for k, v in sched.state_dict().items() if k != "_last_lr"}
        restored = make(opt())
        restored.load_state_dict(older)
        assert restored.get_last_lr() == sched.get_last_lr()
        assert len(set(sched.get_last_lr())) == 2


# A state_dict edited by hand or damaged was loaded without the constructor's checks
# (probe35): StepLR's step_size=-1 gave lr0 * gamma ** -1, ten times the rate, an
# ExponentialLR's gamma=2 a rate doubling each epoch, ReduceLROnPlateau's factor=2 a
# "reduction" that doubled it, all without a word. load_state_dict now runs them.
def _sgd():
    return O.SGD([np.ones(2)], lr=0.1)


BAD_STATES = {
    "StepLR-step_size": (lambda: S.StepLR(_sgd(), step_size=2), "step_size", -1),
    "StepLR-gamma-nan": (lambda: S.StepLR(_sgd(), step_size=2), "gamma", math.nan),
    "ExponentialLR-gamma": (lambda: S.ExponentialLR(_sgd(), gamma=0.9), "gamma",
                            2.0),
    "CosineAnnealingLR-T_max": (lambda: S.CosineAnnealingLR(_sgd(), T_max=5),
                                "T_max", 0),
    "MultiStepLR-milestones": (lambda: S.MultiStepLR([2], lr0=0.1), "milestones",
                               [-3]),
    "LinearLR-total_iters": (lambda: S.LinearLR(lr0=0.1), "total_iters", "4"),
    "ReduceLROnPlateau-factor": (lambda: S.ReduceLROnPlateau(_sgd()), "factor",
                                 2.0),
    # a schedule of parts: its own hyper-parameters as well as each part's (rev35b:
    # these loaded unchecked, milestones=[-1] ran the last part from epoch 0, lr0=-1
    # gave negative rates)
    "SequentialLR-milestones": (lambda: S.SequentialLR(
        [S.LinearLR(0.5, total_iters=2), S.ExponentialLR(0.9)], [2], lr0=0.1),
        "milestones", [-1]),
    "SequentialLR-lr0": (lambda: S.SequentialLR(
        [S.LinearLR(0.5, total_iters=2), S.ExponentialLR(0.9)], [2], lr0=0.1),
        "lr0", -1.0),
    "ChainedScheduler-lr0": (lambda: S.ChainedScheduler(
        [S.StepLR(2, gamma=0.5), S.ExponentialLR(0.9)], lr0=0.1), "lr0", -1.0),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
def test_load_state_dict_checks_the_hyper_parameters_as_the_constructor(case):
    make, key, bad = BAD_STATES[case]
    state = make().state_dict()
    fresh = make()
    fresh.load_state_dict(state)                 # the state as saved loads
    with pytest.raises(ValueError, match=f"{type(fresh).__name__}.load_state_dict: "
                                         f"{key}"):
        make().load_state_dict({**state, key: bad})


def test_load_state_dict_of_a_chain_checks_without_touching_its_parts():
    # the check builds the chain's constructor on stand-ins: the parts bound to the
    # optimizer (torch's habit) keep their epochs, the optimizer its rate, until the
    # state is loaded
    opt = _sgd()
    chain = S.ChainedScheduler([S.StepLR(opt, step_size=2, gamma=0.5),
                                S.ExponentialLR(opt, gamma=0.9)])
    chain.step()
    state = chain.state_dict()
    opt2 = _sgd()
    parts = [S.StepLR(opt2, step_size=2, gamma=0.5), S.ExponentialLR(opt2, gamma=0.9)]
    fresh = S.ChainedScheduler(parts)
    opt2.lr = 0.07
    with pytest.raises(ValueError, match="ChainedScheduler.load_state_dict: lr0"):
        fresh.load_state_dict({**state, "lr0": -1.0})
    assert [p.epoch for p in parts] == [0, 0] and opt2.lr == 0.07
    fresh.load_state_dict(state)
    assert fresh.epoch == 1 and [p.epoch for p in parts] == [1, 1]
    assert fresh.step() == chain.step()


class _Factor:
    """A callable lr_lambda, whose attributes a state_dict holds."""

    def __init__(self, k):
        self.k = k

    def __call__(self, epoch):
        return self.k ** epoch


OF_PARTS = {
    "SequentialLR": lambda: S.SequentialLR(
        [S.LambdaLR(_Factor(0.9)), S.LinearLR(0.5, total_iters=2),
         S.ExponentialLR(0.9)], [2, 4], lr0=0.1),
    "ChainedScheduler": lambda: S.ChainedScheduler(
        [S.LambdaLR(_Factor(0.9)), S.StepLR(2, gamma=0.5), S.ExponentialLR(0.9)],
        lr0=0.1),
}


@pytest.mark.parametrize("case", list(OF_PARTS))
def test_load_state_dict_of_parts_loads_all_or_nothing(case):
    # rev35b: a part refused after the schedule and the parts before it were loaded
    # left the schedule at the loaded epoch over parts half loaded, and the callable
    # of the first part with the loaded attributes
    s = OF_PARTS[case]()
    for _ in range(3):
        s.step()
    s.schedules[0].lr_lambdas[0].k = 0.5
    state = s.state_dict()
    bad = {**state, "schedules": [*state["schedules"][:2],
                                  {**state["schedules"][2], "gamma": 5.0}]}
    fresh = OF_PARTS[case]()
    before = fresh.state_dict()
    with pytest.raises(ValueError, match="ExponentialDecay.load_state_dict: gamma"):
        fresh.load_state_dict(bad)
    assert fresh.state_dict() == before
    assert fresh.schedules[0].lr_lambdas[0].k == 0.9
    fresh.load_state_dict(state)
    assert fresh.step() == s.step()


def test_load_state_dict_of_a_users_subclass_is_as_given():
    class Halving(S.Schedule):
        def __init__(self, start, optimizer=None):
            self.start = start
            super().__init__(start, optimizer)

        def _rate(self, t, lr0):
            return lr0 * 0.5 ** t
    s = Halving(1.0)
    s.load_state_dict({**s.state_dict(), "start": "anything", "epoch": 3})
    assert s.epoch == 3 and s.start == "anything"
