"""The kernels' branch thresholds (nnlib/_paths.py) and the constants the build compiled."""
import pytest

from nnlib import _paths, _threads
from nnlib._kernels import paths


@pytest.mark.parametrize("table", ["INT_PATHS", "REAL_PATHS"])
def test_the_build_reports_the_thresholds_of_paths_py(table):
    # read back from the compiled C constants: a build older than an edit of _paths.py
    # (kernels on other paths than verify runs) fails here
    want = {name: entry[0] for name, entry in getattr(_paths, table).items()}
    assert getattr(paths, table) == want


@pytest.mark.parametrize("value", [710.0, -746.0, 0.41421356237309503, 1e-300, 3.0])
def test_real_literal_reads_back_exactly(value):
    assert float(_paths.real_literal(value)) == value


def test_each_entry_says_where_and_what():
    for table in (_paths.INT_PATHS, _paths.REAL_PATHS):
        for name, (value, where, what) in table.items():
            assert name.isupper() and where and len(what) > 20


def test_python_side_reads_the_same_table():
    assert _threads.PARALLEL_MIN_SIZE == _paths.path_value("PARALLEL_MIN_SIZE")
    with pytest.raises(KeyError, match="unknown branch threshold"):
        _paths.path_value("NO_SUCH")


def test_one_thread_keeps_the_gil_only_where_n_threads_none_picks_one_thread():
    # gil.pxd: below GIL_RELEASE_MIN a one-thread call runs its tasks in order with the
    # GIL held; n_threads=None must not pick several threads there
    assert _paths.path_value("GIL_RELEASE_MIN") <= _paths.path_value("PARALLEL_MIN_SIZE")
