"""A torch user's schedule habits (session 34's survey against torch.optim.lr_scheduler,
each test failing before):

* ``StepLR(optimizer, step_size=30)``, torch's argument order, raised "got multiple values
  for argument 'step_size'" (and ``StepDecay(opt, 30)`` took the optimizer as the step
  size); torch's names StepLR, ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau and
  ``last_epoch`` were missing;
* two schedules stepped on one optimizer (torch users chain a warm-up and a decay) gave
  the last one's closed form without a word where torch composes them: now the step that
  overwrites another writer's rate warns;
* ReduceOnPlateau reduced its own copy of the rate, silently undoing a rate set by hand
  on a one-group optimizer; torch's reduces the rate in force.
"""
import warnings

import numpy as np
import pytest

import nnlib.optim as O
import nnlib.schedules as S

torch = pytest.importorskip("torch")

# (id, nnlib class by torch's name, its arguments after the optimizer, torch's class)
TORCH_ORDER = [
    ("StepLR", S.StepLR, (3,), {"gamma": 0.5}, "StepLR"),
    ("MultiStepLR", S.MultiStepLR, ([2, 5],), {"gamma": 0.1}, "MultiStepLR"),
    ("ExponentialLR", S.ExponentialLR, (0.9,), {}, "ExponentialLR"),
    ("CosineAnnealingLR", S.CosineAnnealingLR, (7,), {"eta_min": 0.01},
     "CosineAnnealingLR"),
    ("CosineAnnealingWarmRestarts", S.CosineAnnealingWarmRestarts, (4,), {"T_mult": 2},
     "CosineAnnealingWarmRestarts"),
    ("LinearLR", S.LinearLR, (0.25,), {"total_iters": 4}, "LinearLR"),
    ("OneCycleLR", S.OneCycleLR, (0.9,), {"total_steps": 12}, "OneCycleLR"),
]


@pytest.mark.parametrize("name,cls,args,kwargs,tname", TORCH_ORDER,
                         ids=[t[0] for t in TORCH_ORDER])
def test_a_schedule_takes_the_optimizer_first_as_torch(name, cls, args, kwargs, tname):
    opt = O.SGD([np.zeros(2)], lr=0.3)
    sched = cls(opt, *args, **kwargs)
    tw = torch.zeros(2, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.3)
    tsched = getattr(torch.optim.lr_scheduler, tname)(topt, *args, **kwargs)
    assert sched.optimizer is opt and sched.last_epoch == tsched.last_epoch == 0
    for _ in range(11):
        topt.step()
        tsched.step()
        sched.step()
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
    assert sched.last_epoch == tsched.last_epoch == 11


def test_reduce_lr_on_plateau_takes_the_optimizer_first():
    opt = O.SGD([np.zeros(2)], lr=1.0)
    sched = S.ReduceLROnPlateau(opt, "min", factor=0.5, patience=0)
    assert sched.optimizer is opt and S.ReduceLROnPlateau is S.ReduceOnPlateau
    sched.step(1.0)
    sched.step(2.0)
    assert opt.lr == 0.5


def test_the_optimizer_given_twice_is_named():
    opt = O.SGD([np.zeros(2)], lr=0.3)
    with pytest.raises(TypeError, match="optimizer first .* and optimizer= too"):
        S.StepLR(opt, 3, optimizer=O.SGD([np.zeros(2)], lr=0.1))


def test_the_keyword_order_and_a_user_schedule_still_work():
    opt = O.SGD([np.zeros(2)], lr=0.3)
    assert S.StepDecay(3, 0.5, optimizer=opt).optimizer is opt
    assert S.Constant(opt).optimizer is opt and S.Constant(0.2).lr == 0.2

    class Halving(S.Schedule):
        def _rate(self, t, lr0):
            return lr0 * 0.5 ** t
    h = Halving(opt)
    assert h.optimizer is opt and h.step() == pytest.approx(0.15)


def test_two_schedules_on_one_optimizer_warn_that_they_do_not_chain():
    opt = O.SGD([np.zeros(2)], lr=1.0)
    warm = S.LinearLR(opt, start_factor=0.5, total_iters=4)
    decay = S.ExponentialLR(opt, gamma=0.9)
    with pytest.warns(UserWarning, match=r"LinearLR.step: the optimizer's lr changed "
                                         r"since this schedule last wrote it") as rec:
        warm.step()
    assert "torch.optim.lr_scheduler's chained schedulers" in str(rec[0].message)
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning, match=r"ExponentialDecay.step"):
        decay.step()


def test_a_rate_set_by_hand_is_named_on_the_next_step():
    opt = O.Adam([np.zeros(2)], lr=1.0)
    sched = S.StepLR(opt, step_size=10)
    sched.step()
    opt.lr = 0.01
    with pytest.warns(UserWarning, match="a rate set by hand"):
        sched.step()
    assert opt.lr == 1.0                        # overwritten, as the warning says


def test_one_schedule_stepping_alone_is_quiet():
    opt = O.SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(1)], "lr": 0.1}], lr=0.3)
    schedules = [S.StepLR(opt, 2), S.OneCycleLR(opt, 0.9, total_steps=30),
                 S.ReduceLROnPlateau(opt, patience=0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sched in schedules:               # one after another, each bound afresh
            sched.bind(opt)
            for i in range(12):
                sched.step(float(i))


def test_reduce_on_plateau_reduces_a_rate_set_by_hand_as_torch():
    opt = O.SGD([np.zeros(2)], lr=1.0)
    sched = S.ReduceOnPlateau(factor=0.5, patience=0, optimizer=opt)
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.5, patience=0)
    for metric in [1.0, 2.0]:
        sched.step(metric)
        tsched.step(metric)
    opt.lr = topt.param_groups[0]["lr"] = 0.2          # by hand, between steps
    for metric in [3.0, 4.0, 0.1]:
        sched.step(metric)
        tsched.step(metric)
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-15)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)
    assert opt.lr == pytest.approx(0.05)


# SequentialLR: torch's way to a warm-up then a decay (missing before; with two schedules
# stepped on one optimizer not chaining, the one way to have both)
SEQUENCES = [
    ("warmup-cosine",
     lambda o: [S.LinearLR(o, 0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=20)], [5],
     lambda t, o: [t.LinearLR(o, 0.1, total_iters=5), t.CosineAnnealingLR(o, T_max=20)]),
    ("step-exp-multistep",
     lambda o: [S.StepLR(step_size=2, gamma=0.5), S.ExponentialLR(0.9),
                S.MultiStepLR([3, 6], gamma=0.3)], [4, 11],
     lambda t, o: [t.StepLR(o, step_size=2, gamma=0.5), t.ExponentialLR(o, 0.9),
                   t.MultiStepLR(o, [3, 6], gamma=0.3)]),
]


@pytest.mark.parametrize("groups", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("name,parts,milestones,tparts", SEQUENCES,
                         ids=[s[0] for s in SEQUENCES])
def test_sequential_lr_matches_torch(name, parts, milestones, tparts, groups):
    spec = ([{"params": [np.zeros(2)]}, {"params": [np.zeros(1)], "lr": 0.1}]
            if groups else [np.zeros(2)])
    tw = [torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)]
    tspec = [{"params": tw[:1]}, {"params": tw[1:], "lr": 0.1}] if groups else tw[:1]
    opt, topt = O.SGD(spec, lr=0.4), torch.optim.SGD(tspec, lr=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched = S.SequentialLR(opt, parts(opt), milestones=milestones)
        tsched = torch.optim.lr_scheduler.SequentialLR(
            topt, tparts(torch.optim.lr_scheduler, topt), milestones=milestones)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        for _ in range(30):
            topt.step()
            tsched.step()
            sched.step()
            assert [g["lr"] for g in opt.param_groups] == pytest.approx(
                [g["lr"] for g in topt.param_groups], rel=1e-12, abs=1e-15)


def test_sequential_lr_state_dict_resumes():
    def make(opt=None):
        return S.SequentialLR([S.LinearLR(0.2, total_iters=3), S.ExponentialLR(0.8)],
                              [3], optimizer=opt)
    opt = O.SGD([np.zeros(2)], lr=1.0)
    a = make(opt)
    for _ in range(5):
        a.step()
    opt2 = O.SGD([np.zeros(2)], lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    b = make(opt2)
    b.load_state_dict(a.state_dict())
    assert [b.step() for _ in range(4)] == [a.step() for _ in range(4)]


BAD_SEQUENCES = [
    ("plateau", lambda: [S.ReduceOnPlateau(), S.Constant()], [2], TypeError,
     "ReduceOnPlateau, whose rate is not a closed form"),
    ("one-cycle", lambda: [S.OneCycleLR(1.0, total_steps=9), S.Constant()], [2], TypeError,
     "OneCycleLR"),
    ("milestone count", lambda: [S.Constant(), S.Constant()], [2, 4], ValueError,
     "needs len.schedules. - 1 = 1 milestones; got 2"),
    ("decreasing", lambda: [S.Constant()] * 3, [4, 2], ValueError, "must increase"),
    ("not a schedule", lambda: [S.Constant(), lambda t: 0.1], [2], TypeError,
     r"schedules\[1\] must be an nnlib.schedules schedule"),
]


@pytest.mark.parametrize("bid,parts,milestones,error,match", BAD_SEQUENCES,
                         ids=[b[0] for b in BAD_SEQUENCES])
def test_a_bad_sequence_is_named(bid, parts, milestones, error, match):
    with pytest.raises(error, match=match):
        S.SequentialLR(parts(), milestones, lr0=1.0)


@pytest.mark.parametrize("opt_first", [True, False], ids=["optimizer-loaded-first",
                                                           "schedule-built-first"])
def test_resuming_from_state_dicts_is_quiet_in_either_order(opt_first):
    opt = O.SGD([np.zeros(2)], lr=1.0)
    a = S.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(5):
        a.step()
    opt2 = O.SGD([np.zeros(2)], lr=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if opt_first:                        # the optimizer's state, then a new schedule
            opt2.load_state_dict(opt.state_dict())
            b = S.StepLR(opt2, step_size=2, gamma=0.5)
        else:                                # torch's order: both built, then loaded
            b = S.StepLR(opt2, step_size=2, gamma=0.5)
            opt2.load_state_dict(opt.state_dict())
        b.load_state_dict(a.state_dict())
        assert [b.step() for _ in range(4)] == [a.step() for _ in range(4)]
        assert opt2.lr == opt.lr


def test_torch_keywords_schedulers_and_last_epoch_as_torch_s_example():
    """torch's SequentialLR example, keywords and all: ``SequentialLR(optimizer,
    schedulers=[...], milestones=[2])``, its parts made with ``last_epoch=-1`` as ported
    code writes it out. Found by the second review of habits34: SequentialLR took only
    nnlib's ``schedules=`` (TypeError 'unexpected keyword argument schedulers') and no
    schedule took ``last_epoch`` (TypeError), though both are torch's names; now the
    rates match torch's over 10 steps, and a last_epoch torch would resume from, or
    both names at once, is named."""
    opt, tw = O.SGD([np.zeros(2)], lr=0.5), torch.zeros(2, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.5)
    T = torch.optim.lr_scheduler
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched = S.SequentialLR(opt, schedulers=[
            S.LinearLR(opt, start_factor=0.1, total_iters=2, last_epoch=-1),
            S.ExponentialLR(opt, gamma=0.9, last_epoch=-1)], milestones=[2])
        tsched = T.SequentialLR(topt, schedulers=[
            T.LinearLR(topt, start_factor=0.1, total_iters=2, last_epoch=-1),
            T.ExponentialLR(topt, gamma=0.9, last_epoch=-1)], milestones=[2])
        for _ in range(10):
            topt.step()
            tsched.step()
            sched.step()
            assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
    with pytest.raises(ValueError, match=r"last_epoch=-1 .* got 4.*state_dict"):
        S.StepLR(opt, step_size=3, last_epoch=4)
    with pytest.raises(ValueError, match="last_epoch=-1"):
        S.StepLR(opt, step_size=3, last_epoch=True)
    with pytest.raises(TypeError, match="schedulers= .* and schedules= too"):
        S.SequentialLR(opt, schedulers=[S.StepLR(3)], schedules=[S.StepLR(3)],
                       milestones=[])


def test_a_user_schedule_taking_the_optimizer_first_is_left_as_written():
    """A Schedule subclass whose own ``__init__`` takes the optimizer first (torch's
    habit, under ``optimizer`` or another name) worked before session 34 and raised
    TypeError after it: torch's order moved that first argument to ``optimizer=``
    ('got multiple values for argument optimizer'; 'unexpected keyword argument
    optimizer' for ``opt``). Found by the second review of habits34 (works on 5974dd6,
    fails on 786b31b); such an ``__init__`` is now left unwrapped, and one in nnlib's
    order (the optimizer last) still takes torch's order."""
    class Warm(S.Schedule):
        def __init__(self, optimizer, warmup=3):
            self.warmup = warmup
            super().__init__(optimizer=optimizer)

        def _rate(self, t, lr0):
            return lr0 * min(1.0, (t + 1) / self.warmup)

    class WarmOpt(Warm):
        def __init__(self, opt, warmup=3, lr0=None):
            self.warmup = warmup
            S.Schedule.__init__(self, lr0, opt)

    class WarmLast(Warm):
        def __init__(self, warmup=3, lr0=None, optimizer=None):
            self.warmup = warmup
            S.Schedule.__init__(self, lr0, optimizer)

    for cls in (Warm, WarmOpt, WarmLast):
        opt = O.SGD([np.zeros(1)], lr=0.3)
        sched = cls(opt, 4)
        assert sched.optimizer is opt and sched.warmup == 4, cls.__name__
        assert [sched.step() for _ in range(4)] == pytest.approx([0.15, 0.225, 0.3, 0.3])


# torch's ReduceLROnPlateau takes min_lr as one floor per parameter group (a list);
# before: TypeError "min_lr must be a real number"
MIN_LRS = [("floors-reached", [0.3, 0.01], [1.0, 0.5]),
           ("second-floor-first", [0.001, 0.2], [1.0, 0.5]),
           ("three-groups", [0.0, 0.05, 0.3], [1.0, 0.5, 2.0])]


@pytest.mark.parametrize("mid,min_lr,lrs", MIN_LRS, ids=[m[0] for m in MIN_LRS])
def test_reduce_on_plateau_min_lr_per_group_equals_torchs(mid, min_lr, lrs):
    torch = pytest.importorskip("torch")
    from nnlib.optim import SGD
    tps = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    topt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(tps, lrs)], lr=1.0)
    opt = SGD([{"params": [np.zeros(1)], "lr": lr} for lr in lrs], lr=1.0)
    kw = dict(min_lr=min_lr, patience=1, factor=0.5, cooldown=1)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    sched = S.ReduceLROnPlateau(opt, **kw)
    metrics = [1.0, 0.9] + [0.95] * 60
    want, got = [], []
    for m in metrics:
        topt.step()
        tsched.step(m)
        sched.step(m)
        want.append([g["lr"] for g in topt.param_groups])
        got.append([g["lr"] for g in opt.param_groups])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    assert all(lr == f for lr, f in zip(got[-1], min_lr) if f > 0)    # its own floor
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-9)
    with pytest.raises(ValueError, match="expected 2 values for min_lr"):
        S.ReduceLROnPlateau(SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)]}]),
                            min_lr=[0.1, 0.2, 0.3])


def test_reduce_on_plateau_refuses_a_group_added_without_its_min_lr():
    # torch raises RuntimeError ("The number of param groups in the `optimizer` (2)
    # differs from when `ReduceLROnPlateau` was initialized (1)") at its reduction.
    # Before: IndexError "list index out of range" at the first reduction, naming
    # nothing; now a ValueError before the step counts, the rates untouched
    from nnlib.optim import SGD
    opt = SGD([{"params": [np.zeros(1)], "lr": 1.0}], lr=1.0)
    sched = S.ReduceLROnPlateau(opt, min_lr=[0.1], patience=0)
    assert sched.step(1.0) == 1.0
    opt.add_param_group({"params": [np.zeros(1)], "lr": 0.5})
    for metric in (2.0, 3.0):
        with pytest.raises(ValueError, match="1 values for min_lr and the optimizer 2 "
                                             "parameter groups"):
            sched.step(metric)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 0.5] and sched.epoch == 1
