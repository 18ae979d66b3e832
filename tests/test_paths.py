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


SMALL_GEMM_BOUNDS = ("NN_SMALL_GEMM_MAX_K", "NN_SMALL_GEMM_MIN_N", "NN_SMALL_GEMM_MAX_MNK")


def test_mm_reads_the_small_gemm_bounds_of_paths_py():
    # dense.pxd's mm takes its bounds from gemm_small.h, which includes paths.h: the
    # values the build routes products by are the table's
    from nnlib._kernels.dense import _SMALL_GEMM
    assert _SMALL_GEMM[1:] == tuple(_paths.path_value(n) for n in SMALL_GEMM_BOUNDS)
    assert all(_paths.c_macro(n) for n in SMALL_GEMM_BOUNDS)


def test_each_threshold_has_one_c_home():
    # NN_ names are macros of paths.h, the other integers enums of paths.pxd; no kernel
    # header defines a threshold itself (a second home would drift from the table)
    import glob
    import os
    import re

    from nnlib._kernels import _templates
    h = _templates.render(os.path.join(_templates.KERNELS, "paths.h.tp"))
    pxd = _templates.render(os.path.join(_templates.KERNELS, "paths.pxd.tp"))
    for name, (value, _, _) in _paths.INT_PATHS.items():
        in_h = re.search(rf"^#define {name} {value}$", h, re.M) is not None
        in_pxd = re.search(rf"^    {name} = {value}$", pxd, re.M) is not None
        assert (in_h, in_pxd) == ((True, False) if _paths.c_macro(name) else (False, True))
    names = set(_paths.INT_PATHS) | set(_paths.REAL_PATHS)
    for header in glob.glob(os.path.join(_templates.KERNELS, "*.h")):
        if os.path.basename(header) == "paths.h":
            continue
        with open(header, encoding="utf-8") as f:
            text = f.read()
        # a macro or an enum constant: either is a second home
        defined = set(re.findall(r"^\s*#\s*define\s+(\w+)", text, re.M))
        defined |= set(re.findall(r"\b(\w+)\s*=", " ".join(
            re.findall(r"\benum\s*\w*\s*\{([^}]*)\}", text))))
        assert not defined & names, (header, defined & names)
