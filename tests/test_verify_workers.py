"""verify.workers: the calls of a whole run that no worker has started run in the main
process (Workers.help), with the results and errors a worker would give, in the order
they were submitted."""
import os
import time

import pytest

from verify.workers import Workers, worker_pool


@pytest.fixture
def workers():
    w = Workers(worker_pool(1))
    yield w
    w.shutdown(cancel_futures=True)


def _started(job):
    """``job``, once the executor has handed it to a worker (it can no longer be taken)."""
    while not job.future.running():
        time.sleep(0.01)
    return job


def test_the_calls_no_worker_started_run_here_last_first(workers):
    busy = _started(workers.submit(time.sleep, 1.0))     # holds the one worker
    jobs = [workers.submit(pow, 2, k) for k in range(8)]
    ran_here = workers.help()
    # the executor queues at most one call beyond the one its worker runs: the rest ran here
    assert ran_here in (7, 8)
    assert [j.result() for j in jobs] == [2 ** k for k in range(8)]
    assert busy.result() is None and not busy.here
    assert [j.here for j in jobs][1:] == [True] * 7
    assert workers.help() == 0                 # nothing is run twice


def test_an_error_is_raised_by_result_wherever_the_call_ran(workers):
    _started(workers.submit(time.sleep, 1.0))
    jobs = [workers.submit(int, "not a number") for _ in range(4)]
    assert workers.help() >= 3
    for j in jobs:
        with pytest.raises(ValueError, match="not a number"):
            j.result()


def test_importing_verify_leaves_sympy_for_later_and_keeps_the_public_api():
    """``python -m verify`` starts its workers before SymPy is imported (verify/__init__
    loads verify.api on first use); the public names still resolve."""
    import subprocess
    import sys
    code = ("import sys, verify; heavy = [m for m in ('sympy', 'mpmath', 'numpy', 'nnlib') "
            "if m in sys.modules]; print(heavy, verify.check_elementwise.__module__, "
            "sorted(set(verify.__all__) - set(dir(verify))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["[]", "verify.api", "[]"]


def _frozen(_):
    import gc
    import os
    time.sleep(0.2)                       # keeps this worker busy: the next call goes on
    return os.getpid(), "verify.dropout" in __import__("sys").modules, gc.get_freeze_count()


def test_every_worker_imports_and_freezes_before_its_first_call():
    from verify.workers import start_workers
    w = start_workers(2)
    try:
        seen = dict((pid, (imported, frozen)) for pid, imported, frozen in
                    w.pool.map(_frozen, range(6)))
    finally:
        w.shutdown()
    assert seen and all(imported and frozen > 0 for imported, frozen in seen.values())


def _wait_policy():
    import os
    return os.environ.get("OMP_WAIT_POLICY")


@pytest.mark.parametrize("given", [None, "active"], ids=["unset", "set by the user"])
def test_a_run_starts_its_workers_with_sleeping_openmp_threads(monkeypatch, given):
    # python -m verify's worker processes inherit OMP_WAIT_POLICY=passive (unless the
    # user set the variable); the run's environment is left as it was
    from verify.__main__ import _sleeping_openmp_threads
    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    with _sleeping_openmp_threads():
        pool = worker_pool(1)
        try:
            assert pool.submit(_wait_policy).result() == (given or "passive")
        finally:
            pool.shutdown()
    assert _wait_policy() == given


def test_a_wait_policy_set_inside_the_run_is_left_as_set(monkeypatch):
    # the block removes only the "passive" it set itself
    from verify.__main__ import _sleeping_openmp_threads
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with _sleeping_openmp_threads():
        os.environ["OMP_WAIT_POLICY"] = "active"
    assert os.environ.pop("OMP_WAIT_POLICY") == "active"
