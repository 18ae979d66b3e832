"""The public API is typed: every public function and method is fully annotated, mypy
(pyproject.toml's [tool.mypy]) finds no error in the package, and a typed user script
(tests/typed_usage.py) that uses the API as documented type-checks and runs."""
import inspect
import os
import subprocess
import sys

import pytest

from tests._public_api import public_methods, public_objects

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USAGE = os.path.join(ROOT, "tests", "typed_usage.py")


def _missing_annotations(func):
    sig = inspect.signature(func)
    missing = [p.name for i, p in enumerate(sig.parameters.values())
               if p.annotation is inspect.Parameter.empty
               and not (i == 0 and p.name in ("self", "cls"))]
    if sig.return_annotation is inspect.Signature.empty and func.__name__ != "__init__":
        missing.append("return")
    return missing


CALLABLES = {**{q: o for q, o in public_objects().items() if inspect.isfunction(o)},
             **public_methods()}


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_public_callable_is_annotated(name):
    assert _missing_annotations(CALLABLES[name]) == []


def test_package_marks_itself_typed():
    assert os.path.isfile(os.path.join(ROOT, "nnlib", "py.typed"))
    with open(os.path.join(ROOT, "pyproject.toml")) as fh:
        assert '"py.typed"' in fh.read()


def _mypy(*targets):
    pytest.importorskip("mypy")
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary",
                          "--config-file", os.path.join(ROOT, "pyproject.toml"), *targets],
                         cwd=ROOT, capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


def test_mypy_finds_no_error_in_the_package():
    code, text = _mypy("-p", "nnlib")
    assert code == 0, text


def test_typed_user_script_type_checks():
    code, text = _mypy(USAGE)
    assert code == 0, text


# Calls the annotations must reject: if any of these type-checks, the public signatures
# have decayed to Any (or the wrong types) and the checks above prove nothing.
WRONG_CALLS = {
    "activation threads as text": "nnlib.functional.relu(x, n_threads='many')",
    "optimizer lr as text": "nnlib.optim.Adam([w], lr='fast')",
    "hidden sizes as one int": "nnlib.MLPClassifier(hidden_layer_sizes='10')",
    "predict result as a float": "y: float = nnlib.Sequential([nnlib.Dense(2, 1)]).predict(x)",
    "dataset with a text size": "nnlib.datasets.make_xor(n_samples='many')",
}


@pytest.mark.parametrize("call", WRONG_CALLS.values(), ids=list(WRONG_CALLS))
def test_mypy_rejects_a_wrong_call(call, tmp_path):
    script = tmp_path / "wrong.py"
    script.write_text("import numpy as np\nimport nnlib\nimport nnlib.optim\n"
                      "import nnlib.datasets\nimport nnlib.functional\n"
                      "x = np.ones((3, 2))\nw = np.ones(2)\n" + call + "\n")
    code, text = _mypy(str(script))
    assert code == 1 and "wrong.py:8: error" in text, text


def test_typed_user_script_runs():
    subprocess.run([sys.executable, USAGE], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": ROOT})
