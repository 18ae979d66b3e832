"""Thread counts follow threadpoolctl and OMP_NUM_THREADS at call time (README, "Threads
and concurrency"): the optimizer step, the compiled kernels and fit's BLAS count."""
import numpy as np
import pytest

import nnlib
from nnlib import _threads
from nnlib._kernels.parallel import has_openmp


def test_omp_num_threads_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads.thread_limit() == 1
    assert _threads.resolve_threads(None, 1 << 30) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1,1")           # nested levels: the first
    assert _threads.thread_limit() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")          # invalid: ignored, as libgomp
    assert _threads.thread_limit() == max(_threads._max_threads(), 1)


def test_threadpoolctl_openmp_limit_is_followed():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not has_openmp() or _threads.MAX_THREADS < 2:
        pytest.skip("needs an OpenMP build on 2+ cores")
    before = _threads.thread_limit()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _threads.thread_limit() == 1
    assert _threads.thread_limit() == before


def test_fit_leaves_a_blas_limit_in_force():
    """Before: fit set BLAS to the cores the load average left free, over a
    threadpool_limits(1) in force."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from nnlib._kernels import blas
    blas.load()
    if blas.get_num_threads() is None or _threads.MAX_THREADS < 2:
        pytest.skip("BLAS thread count not settable here, or one core")
    seen = []
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((512, 256)), rng.integers(0, 4, 512)
    model = nnlib.Sequential([nnlib.Dense(256, 512, "relu", random_state=0),
                              nnlib.Dense(512, 4, random_state=1)])
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        limit = blas.get_num_threads()
        model.fit(X, y, epochs=1, batch_size=256,
                  callbacks=[lambda e, logs: seen.append(blas.get_num_threads())])
        assert blas.get_num_threads() == limit
    assert seen == [limit]
    assert _threads.training_blas_threads(None, 256, [256, 512, 4]) is None   # as it is
    assert _threads.training_blas_threads(None, 1, [2, 2]) == 1               # small
    assert _threads.training_blas_threads(2, 256, [256, 512, 4]) == min(
        2, _threads.thread_limit())
