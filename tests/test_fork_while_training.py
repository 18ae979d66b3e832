"""os.fork() while another thread trains: the fork waits for nnlib's compiled training
calls in flight (``nnlib._threads.training_call``), so OpenBLAS's fork handler never
joins BLAS threads that another thread's call keeps busy (it could hang there), and the
wait is bounded (never a deadlock)."""
import os
import threading
import time

import numpy as np
import pytest

import nnlib
from nnlib import _threads
from nnlib.optim import SGD
from nnlib.training import TrainingRun

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _fork_and_report(check):
    """Fork; the child exits with ``check()`` (an int), the parent returns it."""
    pid = os.fork()
    if pid == 0:
        try:
            code = int(check())
        except BaseException:       # noqa: BLE001 -- the child never returns to pytest
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_no_fork_lands_inside_a_compiled_epoch_of_another_thread():
    # the child sees the parent's memory as of the fork: EpochSetup.busy says whether a
    # compiled run_epoch was under way on the training thread at that moment. One BLAS
    # thread, so that the old code (which forked mid-call) cannot hang this test.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 64))
    model = nnlib.Sequential([nnlib.Dense(64, 128, "relu", random_state=0),
                              nnlib.Dense(128, 10, random_state=1)])
    yt, yl = model._targets(rng.integers(0, 10, 2000), "softmax_cross_entropy", 2000)
    order = np.arange(2000, dtype=np.int64)
    held, stop, failed = {}, threading.Event(), []

    def train():
        try:
            with TrainingRun(model, X, yt, yl, "softmax_cross_entropy", SGD(lr=1e-3),
                             batch_size=32, n_threads=1) as run:
                held["setup"] = run.setup
                while not stop.is_set():
                    run.run_epoch(order)
        except BaseException as exc:    # noqa: BLE001 -- reported by the main thread
            failed.append(exc)
            held.setdefault("setup", None)
    thread = threading.Thread(target=train)
    thread.start()
    try:
        while "setup" not in held:
            time.sleep(0.01)
        assert held["setup"] is not None, failed
        inside = [_fork_and_report(lambda: held["setup"].busy) for _ in range(25)]
    finally:
        stop.set()
        thread.join()
    assert not failed
    assert inside == [0] * 25


def test_a_fork_waits_for_a_call_in_flight_and_holds_new_ones_back():
    entered, leave, events = threading.Event(), threading.Event(), []

    def in_flight():
        with _threads.training_call():
            entered.set()
            leave.wait()
            time.sleep(0.2)
            events.append("first call left")
        with _threads.training_call():      # a call that starts during the fork
            events.append("second call entered")
    thread = threading.Thread(target=in_flight)
    thread.start()
    assert entered.wait(10)
    leave.set()
    code = _fork_and_report(lambda: 0)
    events.append("forked")
    thread.join()
    assert code == 0
    assert events.index("first call left") < events.index("forked")


def test_the_wait_is_bounded_and_a_thread_inside_never_waits_for_itself(monkeypatch):
    monkeypatch.setattr(_threads, "FORK_WAIT_SECONDS", 0.3)
    entered, leave = threading.Event(), threading.Event()

    def stuck():
        with _threads.training_call():
            entered.set()
            leave.wait()
    thread = threading.Thread(target=stuck)
    thread.start()
    assert entered.wait(10)
    try:
        tic = time.monotonic()
        assert _fork_and_report(lambda: 0) == 0
        assert 0.25 < time.monotonic() - tic < 10
    finally:
        leave.set()
        thread.join()
    with _threads.training_call():          # e.g. a signal handler that forks
        tic = time.monotonic()
        assert _fork_and_report(lambda: 0) == 0
        assert time.monotonic() - tic < 0.25
    # the child starts with no call in flight and no fork under way
    assert _fork_and_report(lambda: len(_threads._TRAINING_CALLS.calls)
                            + _threads._TRAINING_CALLS.forking) == 0


def test_a_call_whose_exit_an_interrupt_cut_short_makes_no_fork_wait(monkeypatch):
    # Python raises an interrupt at any bytecode, also inside training_call's exit
    # before the call is taken off the table: the call then counts as gone once it is
    # freed (as the exception leaves its frame), and a later fork from another thread
    # goes ahead at once instead of waiting FORK_WAIT_SECONDS for it
    monkeypatch.setattr(_threads, "FORK_WAIT_SECONDS", 5.0)
    real_leave = _threads._TrainingCalls.leave

    def cut_short(self, call):
        raise KeyboardInterrupt

    def interrupted():
        monkeypatch.setattr(_threads._TrainingCalls, "leave", cut_short)
        try:
            with _threads.training_call():
                pass
        except KeyboardInterrupt:
            pass
        finally:
            monkeypatch.setattr(_threads._TrainingCalls, "leave", real_leave)
    thread = threading.Thread(target=interrupted)
    thread.start()
    thread.join()
    tic = time.monotonic()
    assert _fork_and_report(lambda: 0) == 0
    assert time.monotonic() - tic < 2.0
