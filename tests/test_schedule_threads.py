"""One schedule in two fits at once (probe36): the second fit rebound the schedule to
its own optimizer under the first and both stepped its epoch count, so the first fit's
rates were written into the second's optimizer and each fit's rates were off by the
other's epochs -- silently. The second fit is refused (ConcurrentUseError); one after
the other they still share it (a schedule continues its count, as before)."""
import threading

import numpy as np
import pytest

import nnlib
from nnlib import optim, schedules
from nnlib.exceptions import ConcurrentUseError


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), np.arange(n) % 3


def _model(seed):
    return nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=seed),
                             nnlib.Dense(4, 3, random_state=seed + 1)])


SCHEDULES = {
    "ExponentialLR": lambda: schedules.ExponentialLR(gamma=0.9),
    "StepDecay": lambda: schedules.StepDecay(step_size=1, gamma=0.5),
    "ChainedScheduler": lambda: schedules.ChainedScheduler(
        [schedules.LinearLR(start_factor=0.5, total_iters=2),
         schedules.ExponentialLR(gamma=0.9)]),
}


def _rates(model, opt, schedule, epochs=4, pause=None):
    X, y = _data()
    rates = []

    def record(epoch, logs):
        rates.append(opt.param_groups[0]["lr"])
        if pause is not None and epoch == 0:
            pause[0].set()
            pause[1].wait(10)
    model.fit(X, y, optimizer=opt, schedule=schedule, epochs=epochs, batch_size=40,
              callbacks=[record])
    return rates


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_a_second_fit_on_a_schedule_in_use_is_refused(name):
    opt1, opt2 = optim.SGD(lr=0.1), optim.SGD(lr=0.1)
    solo = _rates(_model(0), optim.SGD(lr=0.1), SCHEDULES[name]())
    schedule = SCHEDULES[name]()
    inside, go, got = threading.Event(), threading.Event(), {}
    first = threading.Thread(target=lambda: got.setdefault(
        "rates", _rates(_model(0), opt1, schedule, pause=(inside, go))))
    first.start()
    try:
        assert inside.wait(10)
        lr2 = opt2.param_groups[0]["lr"] if opt2.param_groups else opt2.lr
        with pytest.raises(ConcurrentUseError, match="the schedule .* in use by a running "
                                                     "fit"):
            _rates(_model(5), opt2, schedule)
        assert schedule.optimizer is opt1           # not rebound by the refused fit
        assert (opt2.param_groups[0]["lr"] if opt2.param_groups else opt2.lr) == lr2
    finally:
        go.set()
        first.join(30)
    assert got["rates"] == solo                     # the first fit's rates untouched
    # after it, a fit may take the schedule over (its count goes on, as before)
    assert len(_rates(_model(5), opt2, schedule)) == 4
