"""``import nnlib`` (and using the model, the estimators and the optimizers) never
imports dask: the ``dask`` extra is optional. Runs with or without dask installed."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASK_PACKAGES = ("dask", "distributed", "dask_ml")


def _modules_after(code):
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


@pytest.mark.parametrize("code", [
    "import nnlib",
    "import nnlib, numpy as np\nm = nnlib.Sequential([nnlib.Dense(2, 2)])\n"
    "m.fit(np.eye(2), [0, 1], epochs=1)\nnnlib.MLPClassifier(max_iter=1)",
], ids=["import", "fit"])
def test_nnlib_never_imports_dask(code):
    loaded = _modules_after(code)
    assert not {m for m in loaded if m.split(".")[0] in DASK_PACKAGES}
    assert "nnlib.dask" not in loaded


def test_nnlib_dask_without_dask_says_how_to_install():
    if importlib.util.find_spec("dask") is not None:
        # hide dask behind a finder that refuses it, as in an environment without it
        code = ("import sys\nclass _No:\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                "        if name.split('.')[0] in ('dask', 'distributed'):\n"
                "            raise ImportError('no ' + name)\n"
                "sys.meta_path.insert(0, _No())\n")
    else:
        code = ""
    r = subprocess.run([sys.executable, "-c", code + "import nnlib.dask"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0
    assert "pip install 'nnlib[dask]'" in r.stderr
