"""The public API is typed: every public function and method is fully annotated, mypy
(pyproject.toml's [tool.mypy]) finds no error in the package, and a typed user script
(tests/typed_usage.py) that uses the API as documented type-checks and runs."""
import inspect
import os
import re
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


def test_literal_export_lists_follow_the_codes():
    """nnlib.functional's activations and losses list their names literally (mypy reads
    ``__all__`` to resolve ``from ... import *``); the lists are every code and its pair."""
    from nnlib._codes import ACTIVATION_CODES, LOSS_CODES
    from nnlib.functional import activations, losses
    assert activations.__all__ == [n for a in ACTIVATION_CODES for n in (a, a + "_vjp")]
    assert losses.__all__ == [n for a in LOSS_CODES for n in (a, a + "_grad")] + [
        "loss_and_grad"]


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


def test_mypy_finds_no_error_in_the_package_and_the_user_script():
    code, text = _mypy("nnlib", USAGE)
    assert code == 0, text


# Calls the annotations must reject: if any of these type-checks, the public signatures
# have decayed to Any (or the wrong types) and the checks above prove nothing.
WRONG_CALLS = {
    "activation threads as text": "nnlib.functional.relu(x, n_threads='many')",
    "optimizer lr as text": "nnlib.optim.Adam([w], lr='fast')",
    "hidden sizes as text": "nnlib.MLPClassifier(hidden_layer_sizes='10')",
    "predict result as a float": "y: float = nnlib.Sequential([nnlib.Dense(2, 1)]).predict(x)",
    "dataset size as text": "nnlib.datasets.make_xor(n_samples='many')",
    "unknown keyword": "nnlib.functional.softmax(x, axis=0)",
    "accuracy as surely a float": ("a: float = nnlib.Sequential([nnlib.Dense(2, 2)])"
                                   ".evaluate(x, [0, 1, 0]).accuracy"),
}


def test_mypy_rejects_wrong_calls(tmp_path):
    head = ["import numpy as np", "import nnlib", "import nnlib.datasets",
            "import nnlib.functional", "import nnlib.optim",
            "x = np.ones((3, 2))", "w = np.ones(2)"]
    script = tmp_path / "wrong.py"
    script.write_text("\n".join(head + list(WRONG_CALLS.values())) + "\n")
    code, text = _mypy(str(script))
    flagged = {int(m) for m in re.findall(r"wrong\.py:(\d+): error", text)}
    missed = [name for i, name in enumerate(WRONG_CALLS, start=len(head) + 1)
              if i not in flagged]
    assert code == 1 and missed == [], text


def test_typed_user_script_runs():
    subprocess.run([sys.executable, USAGE], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": ROOT})


STUBS = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "nnlib", "_kernels"))
               if f.endswith(".pyi"))


@pytest.mark.parametrize("module", STUBS)
def test_kernel_stub_matches_the_compiled_module(module):
    """Each function a stub declares exists in the built module with the same parameters
    (names, order, which have defaults): a renamed or reshaped kernel entry point must be
    renamed in its stub too, or mypy checks calls against a signature that is not there."""
    import ast
    import importlib
    compiled = importlib.import_module(f"nnlib._kernels.{module}")
    with open(os.path.join(ROOT, "nnlib", "_kernels", module + ".pyi")) as fh:
        tree = ast.parse(fh.read())
    for node in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        if node.name == "__getattr__":
            continue
        stub = [(a.arg, i >= len(node.args.args) - len(node.args.defaults))
                for i, a in enumerate(node.args.args)]
        params = inspect.signature(getattr(compiled, node.name)).parameters.values()
        assert stub == [(p.name, p.default is not p.empty) for p in params], node.name
