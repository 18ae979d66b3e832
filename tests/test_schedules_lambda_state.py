"""The state of LambdaLR and MultiplicativeLR as torch 2.13 keeps it
(``torch/optim/lr_scheduler.py``): ``state_dict()["lr_lambdas"]`` holds one entry per
parameter group (one function given for every group is repeated; None for a function
or lambda, a copy of a callable object's ``__dict__``), ``load_state_dict`` updates
group ``i``'s function from entry ``i`` and calls no function of the user's.

Before: one entry per function given (``[None]`` where torch has ``[None, None]``), and
loading called ``lr_lambda(0)`` in the constructor check (LambdaLR, and a chain or
sequence holding one), which fails for a function valid only from some epoch on.
"""
import numpy as np
import pytest

import nnlib.schedules as S
from nnlib.optim import SGD


class Warmup:
    """A callable object with state: its __dict__ is saved, as torch's."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.epochs)


def decay(epoch):
    return 0.9 ** epoch


def _torch_opt(torch, n_groups):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))],
                             "lr": 0.1 * (g + 1)} for g in range(n_groups)], lr=0.1)


def _nnlib_opt(n_groups):
    return SGD([{"params": [np.zeros(1)], "lr": 0.1 * (g + 1)} for g in range(n_groups)],
               lr=0.1)


def _rates(opt):
    return [g["lr"] for g in opt.param_groups]


# (id, class name, a maker of lr_lambda given the number of groups)
LAYOUTS = [("lambda", "LambdaLR", lambda n: (lambda e: 0.5 ** e)),
           ("function", "LambdaLR", lambda n: decay),
           ("object", "LambdaLR", lambda n: Warmup(5)),
           ("per-group", "LambdaLR", lambda n: [decay, Warmup(3)][:n] + [Warmup(7)] * (n - 2)),
           ("multiplicative-object", "MultiplicativeLR", lambda n: Warmup(4)),
           ("multiplicative-per-group", "MultiplicativeLR",
            lambda n: [Warmup(2 + g) for g in range(n)])]


@pytest.mark.parametrize("n_groups", [1, 2, 3])
@pytest.mark.parametrize("lid,name,make", LAYOUTS, ids=[lay[0] for lay in LAYOUTS])
def test_state_dict_lr_lambdas_is_torchs(lid, name, make, n_groups):
    torch = pytest.importorskip("torch")
    tsched = getattr(torch.optim.lr_scheduler, name)(_torch_opt(torch, n_groups),
                                                      make(n_groups))
    sched = getattr(S, name)(_nnlib_opt(n_groups), make(n_groups))
    assert sched.state_dict()["lr_lambdas"] == tsched.state_dict()["lr_lambdas"]


@pytest.mark.parametrize("name", ["LambdaLR", "MultiplicativeLR"])
def test_a_state_saved_with_one_function_loads_onto_one_per_group_as_torchs(name):
    # torch updates group i's function from entry i: the one function's state, saved
    # once per group, goes to each group's own function, and the rates go on from the
    # loaded epoch (before: refused, the state had one entry for two functions)
    torch = pytest.importorskip("torch")
    L = torch.optim.lr_scheduler
    tsaved = getattr(L, name)(_torch_opt(torch, 2), Warmup(4))
    tsaved.lr_lambdas[0].epochs = 8
    for _ in range(3):
        tsaved.optimizer.step()
        tsaved.step()
    topt = _torch_opt(torch, 2)
    tsched = getattr(L, name)(topt, [Warmup(4), Warmup(5)])
    tsched.load_state_dict(tsaved.state_dict())
    topt.load_state_dict(tsaved.optimizer.state_dict())

    saved = getattr(S, name)(_nnlib_opt(2), Warmup(4))
    saved.lr_lambdas[0].epochs = 8
    for _ in range(3):
        saved.step()
    opt = _nnlib_opt(2)
    sched = getattr(S, name)(opt, [Warmup(4), Warmup(5)])
    sched.load_state_dict(saved.state_dict())
    opt.load_state_dict(saved.optimizer.state_dict())
    assert [f.epochs for f in sched.lr_lambdas] == [8, 8]
    assert [f.epochs for f in tsched.lr_lambdas] == [8, 8]
    assert sched.epoch == tsched.last_epoch == 3
    want, got = [], []
    for f, g in zip(sched.lr_lambdas, tsched.lr_lambdas):
        f.epochs, g.epochs = 10, 10                 # the functions go their own ways
    sched.lr_lambdas[1].epochs = tsched.lr_lambdas[1].epochs = 20
    for _ in range(6):
        topt.step()
        tsched.step()
        sched.step()
        want.append(_rates(topt))
        got.append(_rates(opt))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


def test_a_state_of_another_number_of_groups_is_refused():
    # torch loads it and fails at the next step (zip() argument 2 is shorter)
    saved = S.LambdaLR(decay, optimizer=_nnlib_opt(1))
    sched = S.LambdaLR(decay, optimizer=_nnlib_opt(2))
    with pytest.raises(ValueError, match="base rates of 1 parameter groups; the bound "
                                         "optimizer has 2"):
        sched.load_state_dict(saved.state_dict())


def test_an_older_state_with_one_entry_per_function_still_loads():
    # nnlib before torch's layout saved one entry for the one function of two groups
    opt = _nnlib_opt(2)
    saved = S.LambdaLR(Warmup(4), optimizer=opt)
    saved.lr_lambdas[0].epochs = 6
    saved.step()
    older = {**saved.state_dict(), "lr_lambdas": [{"epochs": 6}]}
    sched = S.LambdaLR(Warmup(4), optimizer=_nnlib_opt(2))
    sched.load_state_dict(older)
    assert sched.lr_lambdas[0].epochs == 6 and sched.epoch == 1
    assert sched.step() == saved.step()


BAD = [("per-group-short", [None], "needs lr_lambdas: a list of 2"),
       ("per-group-long", [None, None, None], "needs lr_lambdas: a list of 2"),
       ("not-a-list", None, "needs lr_lambdas"),
       ("an-int-entry", [None, 3], r"lr_lambdas\[1\] must be None or the __dict__")]


@pytest.mark.parametrize("bid,entries,match", BAD, ids=[b[0] for b in BAD])
def test_a_state_that_does_not_fit_the_functions_is_refused_unloaded(bid, entries, match):
    sched = S.LambdaLR([decay, Warmup(3)], optimizer=_nnlib_opt(2))
    sched.step()
    sd = {**sched.state_dict(), "lr_lambdas": entries, "epoch": 4}
    with pytest.raises(ValueError, match=match):
        sched.load_state_dict(sd)
    assert sched.epoch == 1 and sched.lr_lambdas[1].epochs == 3


def test_multiplicative_refuses_the_products_of_other_functions():
    # its products are the functions': one function for both groups cannot go on
    # from two groups' different products
    saved = S.MultiplicativeLR([lambda e: 0.5, lambda e: 0.9], optimizer=_nnlib_opt(2))
    saved.step()
    sched = S.MultiplicativeLR(lambda e: 0.5, optimizer=_nnlib_opt(2))
    with pytest.raises(ValueError, match="factors of 2 functions, one per group; this "
                                         "schedule has 1"):
        sched.load_state_dict(saved.state_dict())


def _recorder(calls, start):
    """A factor (a plain function: its state is not the schedule's) that records every
    call and refuses epochs before ``start[0]`` (valid only from some epoch on)."""
    def factor(epoch):
        calls.append(epoch)
        if epoch < start[0]:
            raise ValueError(f"no factor for epoch {epoch}")
        return 0.5
    return factor


# (id, a maker of the schedule holding the function)
HOLDERS = [("lambda", lambda f: S.LambdaLR(f, lr0=1.0)),
           ("multiplicative", lambda f: S.MultiplicativeLR(f, lr0=1.0)),
           ("sequential", lambda f: S.SequentialLR([S.LambdaLR(f), S.ExponentialLR(0.9)],
                                                   [5], lr0=1.0)),
           ("chained", lambda f: S.ChainedScheduler([S.ExponentialLR(0.9), S.LambdaLR(f)],
                                                    lr0=1.0))]


@pytest.mark.parametrize("hid,make", HOLDERS, ids=[h[0] for h in HOLDERS])
def test_load_state_dict_calls_no_function_of_the_users(hid, make):
    # torch's load_state_dict calls none; nnlib's constructor check of the loaded
    # state called lr_lambda(0), which a function valid only from epoch 2 on refuses
    saved = make(_recorder([], [0]))
    for _ in range(3):
        saved.step()
    calls, start = [], [0]
    sched = make(_recorder(calls, start))
    calls.clear()
    start[0] = 2
    sched.load_state_dict(saved.state_dict())
    assert calls == [] and sched.epoch == 3
    assert sched.step() == pytest.approx(saved.step(), rel=1e-15)
    assert calls and min(calls) >= 2


def test_state_dict_after_a_group_is_added_holds_the_functions_given_as_torchs():
    # a list of one function per group, then add_param_group: torch's state keeps its
    # two entries. Before: IndexError "list index out of range" (one entry per
    # current group asked for a third function)
    torch = pytest.importorskip("torch")
    topt = _torch_opt(torch, 2)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, [decay, Warmup(3)])
    topt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3})
    opt = _nnlib_opt(2)
    sched = S.LambdaLR([decay, Warmup(3)], optimizer=opt)
    opt.add_param_group({"params": [np.zeros(1)], "lr": 0.3})
    assert sched.state_dict()["lr_lambdas"] == tsched.state_dict()["lr_lambdas"] \
        == [None, {"epochs": 3}]
