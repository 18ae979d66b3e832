"""torch's LambdaLR, MultiplicativeLR and ChainedScheduler (``torch.optim.lr_scheduler``),
checked against torch where it is installed (those tests skip without it).

nnlib's schedules are closed forms; ChainedScheduler steps each part in turn from the
rate in force with torch's chainable form of each (StepLR, MultiStepLR, ExponentialLR,
LinearLR, MultiplicativeLR multiply it, CosineAnnealingLR maps it by its recursion,
LambdaLR and the closed-form ones set theirs), so the rates equal torch's. Before: no
LambdaLR, MultiplicativeLR or ChainedScheduler (AttributeError), and two schedules
stepped on one optimizer gave the last one's closed form with a warning.
"""
import pickle

import numpy as np
import pytest

import nnlib
import nnlib.schedules as S
from nnlib.optim import SGD


def halve_every_third(epoch):
    """A module-level function: a LambdaLR holding it pickles (by name)."""
    return 0.5 ** (epoch // 3)


class Warmup:
    """A callable object with state: its __dict__ is in the state_dict, as torch's."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.epochs)


# (id, a builder of the parts on torch's optimizer, a builder of nnlib's); each builder
# takes (module, optimizer) and builds the parts bound to it, torch's habit
CHAINS = [
    ("linear-warmup-x-exponential",
     lambda m, o: [m.LinearLR(o, 0.5, 1.0, total_iters=3), m.ExponentialLR(o, gamma=0.9)]),
    ("cosine-eta-min-x-step",
     lambda m, o: [m.CosineAnnealingLR(o, T_max=5, eta_min=0.001), m.StepLR(o, 3, 0.5)]),
    ("multiplicative-x-lambda-x-multistep",
     lambda m, o: [m.MultiplicativeLR(o, lambda e: 0.97), m.LambdaLR(o, halve_every_third),
                   m.MultiStepLR(o, [2, 5, 5], 0.5)]),
    ("exponential-then-lambda-overwrites",
     lambda m, o: [m.ExponentialLR(o, gamma=0.8), m.LambdaLR(o, Warmup(4))]),
    ("step-x-multiplicative-oscillating",
     lambda m, o: [m.StepLR(o, 2, 0.7),
                   m.MultiplicativeLR(o, lambda e: 1.1 if e % 2 else 0.9)]),
    ("one-part", lambda m, o: [m.MultiplicativeLR(o, lambda e: 0.95)]),
]
GROUPS = [("one-group", [0.05]), ("two-groups", [0.05, 0.2])]


def _torch_opt(torch, lrs):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
                            for lr in lrs], lr=lrs[0])


def _nnlib_opt(lrs):
    return SGD([{"params": [np.zeros(1)], "lr": lr} for lr in lrs], lr=lrs[0])


def _rates(opt):
    return [g["lr"] for g in opt.param_groups]


def _side_by_side(topt, tsched, opt, sched, steps, read=_rates):
    """``read`` of torch's and nnlib's optimizers after construction and each of
    ``steps`` steps of both schedules: (torch's, nnlib's) as arrays."""
    want, got = [read(topt)], [read(opt)]
    for _ in range(steps):
        topt.step()
        tsched.step()
        sched.step()
        want.append(read(topt))
        got.append(read(opt))
    return np.array(want), np.array(got)


def _torch_rates(torch, build, lrs, steps, between=None):
    opt = _torch_opt(torch, lrs)
    chain = torch.optim.lr_scheduler.ChainedScheduler(build(torch.optim.lr_scheduler, opt))
    out = [_rates(opt)]
    for t in range(steps):
        opt.step()
        chain.step()
        if between is not None:
            between(opt, t)
        out.append(_rates(opt))
    return np.array(out), chain


@pytest.mark.parametrize("gid,lrs", GROUPS, ids=[g[0] for g in GROUPS])
@pytest.mark.parametrize("cid,build", CHAINS, ids=[c[0] for c in CHAINS])
def test_chained_rates_equal_torchs(cid, build, gid, lrs):
    torch = pytest.importorskip("torch")
    want, _ = _torch_rates(torch, build, lrs, 30)
    opt = _nnlib_opt(lrs)
    chain = S.ChainedScheduler(build(S, opt))
    got = [_rates(opt)]
    for _ in range(30):
        chain.step()
        got.append(_rates(opt))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert chain.get_last_lr() == got[-1] and chain.last_epoch == 30
    assert [p.last_epoch for p in chain.schedules] == [30] * len(chain.schedules)


@pytest.mark.parametrize("cid,build", CHAINS, ids=[c[0] for c in CHAINS])
def test_chained_resumes_from_state_dict_and_jumps_as_torch(cid, build):
    torch = pytest.importorskip("torch")
    lrs = [0.05, 0.2]
    want, _ = _torch_rates(torch, build, lrs, 20)
    opt = _nnlib_opt(lrs)
    chain = S.ChainedScheduler(build(S, opt))
    for _ in range(8):
        chain.step()
    saved = pickle.loads(pickle.dumps((chain.state_dict(), opt.state_dict())))
    # a fresh optimizer and chain (writing epoch 0's rates), then the saved states
    opt2 = _nnlib_opt(lrs)
    chain2 = S.ChainedScheduler(build(S, opt2))
    chain2.load_state_dict(saved[0])
    got = []
    for _ in range(12):
        chain2.step()
        got.append(_rates(opt2))
    np.testing.assert_allclose(got, want[9:], rtol=1e-12, atol=0)
    # the optimizer's state loaded too, in either order, continues the same
    opt3 = _nnlib_opt(lrs)
    chain3 = S.ChainedScheduler(build(S, opt3))
    opt3.load_state_dict(saved[1])
    chain3.load_state_dict(saved[0])
    chain3.step()
    np.testing.assert_allclose(_rates(opt3), want[9], rtol=1e-12, atol=0)
    # a jump (fit's initial_epoch) replays the steps
    opt4 = _nnlib_opt(lrs)
    chain4 = S.ChainedScheduler(build(S, opt4))
    chain4(13)
    np.testing.assert_allclose(_rates(opt4), want[13], rtol=1e-12, atol=0)
    chain4.step()
    np.testing.assert_allclose(_rates(opt4), want[14], rtol=1e-12, atol=0)


def test_chained_follows_a_rate_set_by_hand_as_torch():
    torch = pytest.importorskip("torch")
    build = CHAINS[0][1]

    def by_hand(opt, t):
        if t == 4:
            for g in opt.param_groups:
                g["lr"] = 0.5 * g["lr"]
    want, _ = _torch_rates(torch, build, [0.05], 10, between=by_hand)
    opt = _nnlib_opt([0.05])
    chain = S.ChainedScheduler(build(S, opt))
    got = [_rates(opt)]
    for t in range(10):
        chain.step()
        by_hand(opt, t)
        got.append(_rates(opt))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_fit_steps_a_chain_as_torchs_loop():
    torch = pytest.importorskip("torch")
    build = CHAINS[0][1]
    want, _ = _torch_rates(torch, build, [0.05], 6)

    def unbound():                # the same parts, bound by fit to its optimizer
        return [S.LinearLR(0.5, 1.0, total_iters=3), S.ExponentialLR(gamma=0.9)]
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
    opt = SGD(lr=0.05)
    h = model.fit(X, y, optimizer=opt, epochs=6,
                  schedule=S.ChainedScheduler(unbound()))
    np.testing.assert_allclose(h["lr"], want[:6, 0], rtol=1e-12, atol=0)
    # resumed at epoch 3 with a fresh chain: epoch 3's rate on, as torch's sequence
    h2 = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)]).fit(
        X, y, optimizer=SGD(lr=0.05), epochs=6, initial_epoch=3,
        schedule=S.ChainedScheduler(unbound()))
    np.testing.assert_allclose(h2["lr"], want[3:6, 0], rtol=1e-12, atol=0)


LAMBDAS = [("lambda", "LambdaLR", lambda e: 0.9 ** e),
           ("lambda-object", "LambdaLR", Warmup(5)),
           ("multiplicative", "MultiplicativeLR", lambda e: 0.9 if e % 3 else 1.2)]


@pytest.mark.parametrize("gid,lrs", GROUPS, ids=[g[0] for g in GROUPS])
@pytest.mark.parametrize("lid,name,fn", LAMBDAS, ids=[lam[0] for lam in LAMBDAS])
def test_lambda_schedules_equal_torchs(lid, name, fn, gid, lrs):
    torch = pytest.importorskip("torch")
    topt = _torch_opt(torch, lrs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, fn)
    opt = _nnlib_opt(lrs)
    sched = getattr(S, name)(opt, fn, last_epoch=-1)          # torch's order and keyword
    want, got = _side_by_side(topt, tsched, opt, sched, 20)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    # torch's layout: one entry per group, the one function's repeated
    assert sched.state_dict()["lr_lambdas"] == tsched.state_dict()["lr_lambdas"]


def test_lambda_lr_takes_one_function_per_group():
    torch = pytest.importorskip("torch")
    fns = [lambda e: 0.5 ** e, lambda e: 1.0 / (e + 1)]
    topt = _torch_opt(torch, [0.1, 0.1])
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, fns)
    opt = _nnlib_opt([0.1, 0.1])
    sched = S.LambdaLR(opt, fns)
    for _ in range(5):
        topt.step()
        tsched.step()
        sched.step()
        np.testing.assert_allclose(_rates(opt), _rates(topt), rtol=1e-12)
    with pytest.raises(ValueError, match="has 2 lr_lambdas for an optimizer of 3"):
        S.LambdaLR(_nnlib_opt([0.1, 0.1, 0.1]), fns)


def test_a_lambda_does_not_pickle_its_state_dict_does():
    # pickle stores a function by name: a lambda has none it can find (pickle's rule,
    # torch's schedulers alike); a module-level function and the state_dict pickle
    sched = S.LambdaLR(lambda e: 0.9 ** e, lr0=1.0)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(sched)
    sched.step()
    sd = pickle.loads(pickle.dumps(sched.state_dict()))
    fresh = S.LambdaLR(lambda e: 0.9 ** e, lr0=1.0)
    fresh.load_state_dict(sd)
    assert fresh.epoch == 1 and fresh.step() == pytest.approx(0.81, rel=1e-15)
    named = pickle.loads(pickle.dumps(S.LambdaLR(halve_every_third, lr0=1.0)))
    assert named.lr_at(7) == 0.25


def test_a_callable_objects_state_is_saved_and_loaded():
    sched = S.LambdaLR(Warmup(4), lr0=1.0)
    sched.lr_lambdas[0].epochs = 8                     # its state changed mid-run
    other = S.LambdaLR(Warmup(4), lr0=1.0)
    other.load_state_dict(sched.state_dict())
    assert other.lr_lambdas[0].epochs == 8 and other.lr_at(1) == 0.25


def test_multiplicative_asks_each_factor_once():
    calls = []

    def factor(epoch):
        calls.append(epoch)
        return 0.5
    sched = S.MultiplicativeLR(factor, lr0=1.0)
    for _ in range(4):
        sched.step()
    assert sched(2) == 0.25 and sched.lr_at(4) == 0.0625
    assert calls == [1, 2, 3, 4]
    resumed = S.MultiplicativeLR(factor, lr0=1.0)
    resumed.load_state_dict(sched.state_dict())
    assert resumed.lr_at(4) == 0.0625 and calls == [1, 2, 3, 4]


BAD = [("empty", lambda: S.ChainedScheduler([]), ValueError, "at least one"),
       ("not-a-list", lambda: S.ChainedScheduler(S.StepLR(2)), TypeError,
        "must be a list"),
       ("plateau", lambda: S.ChainedScheduler([S.StepLR(2), S.ReduceOnPlateau()]),
        ValueError, "does not take ReduceOnPlateau"),
       ("two-optimizers",
        lambda: S.ChainedScheduler([S.StepLR(2, optimizer=SGD(lr=0.1)),
                                    S.StepLR(2, optimizer=SGD(lr=0.1))]),
        ValueError, "bound to another optimizer"),
       ("lambda-not-callable", lambda: S.LambdaLR(0.5), TypeError, "must be a function"),
       ("lambda-negative", lambda: S.LambdaLR(lambda e: -1.0, lr0=1.0), ValueError,
        r"lr_lambda\(0\) must give a finite real factor >= 0"),
       ("lambda-nan", lambda: S.MultiplicativeLR(lambda e: float("nan"), lr0=1.0).step(),
        ValueError, r"lr_lambda\(1\)")]


@pytest.mark.parametrize("bid,make,error,match", BAD, ids=[b[0] for b in BAD])
def test_bad_chains_and_lambdas_are_named(bid, make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_chain_by_torchs_keyword_and_unbound():
    chain = S.ChainedScheduler(schedulers=[S.StepLR(2, gamma=0.5), S.ExponentialLR(0.5)],
                               lr0=1.0)
    assert [chain.step() for _ in range(3)] == [0.5, 0.125, 0.0625]
    assert chain.lr_at(3) == 0.0625 and chain.epoch == 3


# -- found by a second read (rev35a): parts whose torch form is not a closed form ------
# torch's SequentialLR inside a ChainedScheduler steps its active part's chainable form
# on the rate in force (a milestone sets the next part's closed form at 0, a
# MultiplicativeLR multiplies by lr_lambda(0)); OneCycleLR's rates are from its own
# max_lr, whatever the chain's base. Before: the SequentialLR wrote its closed form
# (dropping the other parts' factors) and OneCycleLR took the chain's base rate for its
# max_lr (0.0016 for torch's 0.04 at epoch 0).
MORE_CHAINS = [
    ("sequential-x-step",
     lambda m, o: [m.SequentialLR(o, [m.LinearLR(o, 0.5, 1.0, total_iters=3),
                                     m.ExponentialLR(o, gamma=0.9)], [3]),
                   m.StepLR(o, 4, 0.5)]),
    ("step-x-sequential",
     lambda m, o: [m.StepLR(o, 4, 0.5),
                   m.SequentialLR(o, [m.LinearLR(o, 0.5, 1.0, total_iters=3),
                                      m.ExponentialLR(o, gamma=0.9)], [3])]),
    ("exponential-x-sequential-of-lambda-multiplicative-cosine",
     lambda m, o: [m.ExponentialLR(o, gamma=0.97),
                   m.SequentialLR(o, [m.LambdaLR(o, lambda e: 0.5 + 0.1 * e),
                                      m.MultiplicativeLR(o, lambda e: 0.9),
                                      m.CosineAnnealingLR(o, T_max=6, eta_min=0.001)],
                                  [3, 8])]),
    ("warm-restarts-x-exponential",
     lambda m, o: [m.CosineAnnealingWarmRestarts(o, 3, 2), m.ExponentialLR(o, gamma=0.9)]),
    ("one-cycle-x-exponential",
     lambda m, o: [m.OneCycleLR(o, max_lr=1.0, total_steps=40),
                   m.ExponentialLR(o, gamma=0.9)]),
    ("exponential-x-one-cycle-per-group",
     lambda m, o: [m.ExponentialLR(o, gamma=0.9),
                   m.OneCycleLR(o, max_lr=[1.0, 0.5][:len(o.param_groups)],
                                total_steps=40, three_phase=True)]),
]


def _momentum_opts(torch, lrs):
    topt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
                            for lr in lrs], lr=lrs[0], momentum=0.9)
    opt = SGD([{"params": [np.zeros(1)], "lr": lr} for lr in lrs], lr=lrs[0],
              momentum=0.9)
    return topt, opt


@pytest.mark.parametrize("gid,lrs", GROUPS, ids=[g[0] for g in GROUPS])
@pytest.mark.parametrize("cid,build", MORE_CHAINS, ids=[c[0] for c in MORE_CHAINS])
def test_chains_of_sequential_and_closed_forms_equal_torchs(cid, build, gid, lrs):
    torch = pytest.importorskip("torch")
    topt, opt = _momentum_opts(torch, lrs)
    tchain = torch.optim.lr_scheduler.ChainedScheduler(build(torch.optim.lr_scheduler,
                                                             topt))
    chain = S.ChainedScheduler(build(S, opt))
    # the rates, then the momenta (OneCycleLR's cycle)
    both, got = _side_by_side(topt, tchain, opt, chain, 30, read=lambda o: _rates(o) + [
        g["momentum"] for g in o.param_groups])
    np.testing.assert_allclose(got, both, rtol=1e-12, atol=0)
    want = both[:, :len(lrs)]
    # a jump (fit's initial_epoch) and a resume from the state_dict: the same rates
    _, opt2 = _momentum_opts(torch, lrs)
    chain2 = S.ChainedScheduler(build(S, opt2))
    chain2(17)
    np.testing.assert_allclose(_rates(opt2), want[17], rtol=1e-12, atol=0)
    _, opt3 = _momentum_opts(torch, lrs)
    chain3 = S.ChainedScheduler(build(S, opt3))
    chain3.load_state_dict(pickle.loads(pickle.dumps(chain2.state_dict())))
    chain3.step()
    np.testing.assert_allclose(_rates(opt3), want[18], rtol=1e-12, atol=0)


# A chain bound to an optimizer without groups (nnlib's before fit gives it parameters)
# takes its base rate from its first bound part: torch's OneCycleLR sets the group's
# initial_lr to max_lr / div_factor, which a LambdaLR bound after it starts from.
# Before: the chain's base was max_lr, 25 times torch's (1.0 for 0.04 at epoch 0).
ONE_CYCLE_FIRST = [
    ("one-cycle-x-lambda",
     lambda m, o: [m.OneCycleLR(o, max_lr=1.0, total_steps=40),
                   m.LambdaLR(o, lambda e: 1.0 / (e + 1))]),
    ("one-cycle-x-exponential-x-lambda",
     lambda m, o: [m.OneCycleLR(o, max_lr=0.5, total_steps=40, div_factor=10.0),
                   m.ExponentialLR(o, gamma=0.95), m.LambdaLR(o, lambda e: 0.9 ** e)]),
    # OneCycleLR not first: it overwrites the initial_lr the first part recorded, and
    # the LambdaLR bound after it starts from that (before: from the first part's
    # lr0, 125 times torch's: 5.0 for 0.04)
    ("linear-x-one-cycle-x-lambda",
     lambda m, o: [m.LinearLR(o, start_factor=0.5, total_iters=4),
                   m.OneCycleLR(o, max_lr=1.0, total_steps=40),
                   m.LambdaLR(o, lambda e: 0.9 ** e)]),
    ("lambda-x-one-cycle-x-lambda",
     lambda m, o: [m.LambdaLR(o, lambda e: 0.5), m.OneCycleLR(o, max_lr=1.0, total_steps=40),
                   m.LambdaLR(o, lambda e: 0.9 ** e)]),
    ("two-one-cycles-x-lambda",
     lambda m, o: [m.OneCycleLR(o, max_lr=1.0, total_steps=40),
                   m.OneCycleLR(o, max_lr=2.0, total_steps=40, div_factor=4.0),
                   m.LambdaLR(o, lambda e: 0.9 ** e)]),
]


@pytest.mark.parametrize("cid,build", ONE_CYCLE_FIRST, ids=[c[0] for c in ONE_CYCLE_FIRST])
def test_a_chain_first_bound_to_one_cycle_without_groups_equals_torchs(cid, build):
    torch = pytest.importorskip("torch")
    topt, _ = _momentum_opts(torch, [5.0])
    tchain = torch.optim.lr_scheduler.ChainedScheduler(build(torch.optim.lr_scheduler,
                                                             topt))
    opt = SGD(lr=5.0, momentum=0.9)                     # no parameters, no groups yet
    chain = S.ChainedScheduler(build(S, opt))
    want, got = [_rates(topt)[0]], [opt.lr]
    for _ in range(20):
        topt.step()
        tchain.step()
        got.append(chain.step())
        want.append(_rates(topt)[0])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    assert chain.lr0 == pytest.approx(tchain._schedulers[1].base_lrs[0], rel=1e-15)
    # fit gives the optimizer its group and steps the chain per batch: torch's rates
    X = np.random.default_rng(1).normal(size=(24, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    seen = []

    class Rates(nnlib.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.optimizer.lr)
    opt = SGD(lr=5.0, momentum=0.9)
    nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)]).fit(
        X, y, optimizer=opt, epochs=4, batch_size=8, schedule_interval="batch",
        schedule=S.ChainedScheduler(build(S, opt)), callbacks=[Rates()])
    np.testing.assert_allclose(seen, want[:12], rtol=1e-9, atol=0)


# torch's SequentialLR gives each group its own lr_lambda, and a MultiplicativeLR after a
# milestone goes on from the rate in force times lr_lambda(0) (torch's _update_lr(0) of a
# scheduler without a closed form). Before: every group took the first group's function,
# and the MultiplicativeLR restarted from the base rate (0.05 for torch's 0.01125).
SEQUENCES = [
    ("lambda-per-group-then-exponential",
     lambda m, o: m.SequentialLR(o, [m.LambdaLR(o, [lambda e: 0.5 ** e,
                                                     lambda e: 1 / (e + 1)][:len(
                                                         o.param_groups)]),
                                     m.ExponentialLR(o, gamma=0.9)], [3])),
    ("exponential-then-multiplicative",
     lambda m, o: m.SequentialLR(o, [m.ExponentialLR(o, gamma=0.5),
                                     m.MultiplicativeLR(o, lambda e: 0.9 - 0.01 * e)],
                                 [3])),
    ("multiplicative-per-group-then-lambda-then-multiplicative",
     lambda m, o: m.SequentialLR(o, [m.MultiplicativeLR(o, [lambda e: 0.5,
                                                            lambda e: 0.9][:len(
                                                                o.param_groups)]),
                                     m.LambdaLR(o, lambda e: 0.8 ** e),
                                     m.MultiplicativeLR(o, lambda e: 1.1)], [2, 5])),
]


@pytest.mark.parametrize("gid,lrs", GROUPS + [("two-equal-groups", [0.1, 0.1])],
                         ids=[g[0] for g in GROUPS] + ["two-equal-groups"])
@pytest.mark.parametrize("sid,build", SEQUENCES, ids=[s[0] for s in SEQUENCES])
def test_sequential_of_lambda_schedules_equals_torchs(sid, build, gid, lrs):
    torch = pytest.importorskip("torch")
    topt, opt = _torch_opt(torch, lrs), _nnlib_opt(lrs)
    tsched, sched = build(torch.optim.lr_scheduler, topt), build(S, opt)
    want, got = _side_by_side(topt, tsched, opt, sched, 12)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert sched.lr_at(9) == pytest.approx(want[9][0], rel=1e-12)


def test_fit_steps_a_chain_per_batch_as_torchs_loop():
    torch = pytest.importorskip("torch")
    build = MORE_CHAINS[0][1]
    X = np.random.default_rng(1).normal(size=(24, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    want, _ = _torch_rates(torch, build, [0.05], 3 * 3 * 2)   # 3 batches, 6 epochs

    class Rates(nnlib.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.optimizer.lr)
    seen = []
    opt = _nnlib_opt([0.05])
    nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)]).fit(
        X, y, optimizer=opt, epochs=6, batch_size=8, schedule_interval="batch",
        schedule=S.ChainedScheduler(build(S, opt)), callbacks=[Rates()])
    np.testing.assert_allclose(seen, want[:18, 0], rtol=1e-12, atol=0)
    # resumed at epoch 4 with a fresh chain: batch 12's rate on
    seen.clear()
    opt = _nnlib_opt([0.05])
    nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)]).fit(
        X, y, optimizer=opt, epochs=6, batch_size=8, schedule_interval="batch",
        initial_epoch=4, schedule=S.ChainedScheduler(build(S, opt)), callbacks=[Rates()])
    np.testing.assert_allclose(seen, want[12:18, 0], rtol=1e-12, atol=0)


class SlotsFactor:
    """A callable object without a __dict__ (its state in __slots__)."""
    __slots__ = ("base",)

    def __init__(self, base):
        self.base = base

    def __call__(self, epoch):
        return self.base ** epoch


def test_a_state_dict_of_a_callable_without_dict_loads_back():
    # Before: state_dict saved {} for it, and load_state_dict raised AttributeError
    # ('SlotsFactor' object has no attribute '__dict__') on the schedule's own state
    sched = S.LambdaLR(SlotsFactor(0.5), lr0=1.0)
    sched.step()
    fresh = S.LambdaLR(SlotsFactor(0.5), lr0=1.0)
    fresh.load_state_dict(sched.state_dict())
    assert fresh.epoch == 1 and fresh.step() == 0.25


@pytest.mark.parametrize("kind", ["SequentialLR", "ChainedScheduler"])
def test_parts_lambdas_per_group_are_checked_against_the_optimizer(kind):
    # Before: SequentialLR gave all 3 groups the first function silently, the chain
    # raised IndexError at binding; torch's LambdaLR refuses it when made
    parts = [S.LambdaLR([lambda e: 1.0, lambda e: 0.5]), S.StepLR(2)]
    sched = S.SequentialLR(parts, [2]) if kind == "SequentialLR" else \
        S.ChainedScheduler(parts)
    with pytest.raises(ValueError, match="has 2 lr_lambdas for an optimizer of 3"):
        sched.bind(_nnlib_opt([0.1] * 3))


def test_a_multiplicative_state_dict_saved_before_factor0_loads():
    # the state_dict of main 0c68935's MultiplicativeLR had no _factor0 (lr_lambda(0),
    # kept since for a SequentialLR's milestone): it loads, and lr_lambda(0) is asked
    sched = S.MultiplicativeLR(lambda e: 0.5 + e, lr0=1.0)
    sched.step()
    old = {k: v for k, v in sched.state_dict().items() if k != "_factor0"}
    fresh = S.MultiplicativeLR(lambda e: 0.5 + e, lr0=1.0)
    fresh.load_state_dict(old)
    assert fresh.epoch == 1 and fresh.step() == 1.5 * 2.5
    assert fresh._restarted(0, 1) == 0.5 * 1.5


class _PlainOptimizer:
    """Any object with an lr, as the schedules take."""
    lr = 0.1


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.1), _PlainOptimizer],
                         ids=["sgd-without-parameters", "object-with-lr"])
def test_a_chain_follows_a_rate_set_by_hand_on_an_optimizer_without_groups(make):
    # found by a second read (rev35a): step read the rate in force from the groups
    # only, so on an optimizer without any (nnlib's before fit gives it parameters, or
    # a plain object) a rate set by hand was overwritten: 0.025 where torch's
    # chainable ExponentialLR (and this chain on one with groups) gives 1.0 * 0.5
    opt = make()
    chain = S.ChainedScheduler([S.ExponentialLR(0.5)]).bind(opt)
    assert chain.step() == 0.05
    opt.lr = 1.0
    assert chain.step() == 0.5 and opt.lr == 0.5 and chain.get_last_lr() == [0.5]


def test_parts_bound_to_an_optimizer_without_groups_chain_from_its_rate():
    # found by a second read (rev35a): torch's habit (the parts bound, then chained) on
    # nnlib's SGD(lr=0.05) without parameters, as fit takes it. Such an optimizer keeps
    # no initial_lr, so the chain took the rate the LinearLR part had written (0.025)
    # for its base and warmed up from it again: 0.0125 at epoch 0 for torch's 0.025
    torch = pytest.importorskip("torch")
    build = CHAINS[0][1]
    want, _ = _torch_rates(torch, build, [0.05], 6)
    opt = SGD(lr=0.05)
    chain = S.ChainedScheduler(build(S, opt))
    assert chain.lr == pytest.approx(want[0, 0], rel=1e-12)
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    h = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)]).fit(
        X, y, optimizer=opt, epochs=6, schedule=chain)
    np.testing.assert_allclose(h["lr"], want[:6, 0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("order", ["torch", "nnlib-unbound"])
def test_sequential_of_parts_bound_to_an_optimizer_without_groups(order):
    # the same as the chain's above for SequentialLR (older than habits35, found with
    # it): torch's README order on SGD(lr=0.05) without parameters gave 0.0125 at
    # epoch 0 for torch's 0.025, the warm-up applied to the rate it had written
    torch = pytest.importorskip("torch")

    def build(m, o):
        parts = [m.LinearLR(o, 0.5, 1.0, total_iters=3), m.ExponentialLR(o, gamma=0.9)]
        return (m.SequentialLR(o, parts, milestones=[3]) if order == "torch" or m is not S
                else m.SequentialLR(parts, milestones=[3]))
    topt = _torch_opt(torch, [0.05])
    opt = SGD(lr=0.05)
    want, got = _side_by_side(topt, build(torch.optim.lr_scheduler, topt),
                              opt, build(S, opt), 6, read=lambda o: [o.param_groups[0][
                                  "lr"] if o.param_groups else o.lr])
    if order == "torch":
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    sched = build(S, SGD(lr=0.05))
    np.testing.assert_allclose([sched.lr_at(t) for t in range(7)], want[:, 0],
                               rtol=1e-12, atol=0)
