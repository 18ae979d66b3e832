"""The README's commands are the ones CI runs, and its user guide is true: the valid names
are nnlib's own, every Python example runs and prints what its comments say."""
import os
import re

import numpy as np
import pytest

import nnlib.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*path):
    with open(os.path.join(ROOT, *path)) as fh:
        return fh.read()


def _commands():
    text = _read("README.md")
    return re.findall(r"```bash\n# ([^\n]+)\n([^\n]+)\n```", text)


def test_readme_has_exactly_two_commands():
    assert [c[0].split(":")[0] for c in _commands()] == ["main job", "tests"]


def test_ci_runs_the_readme_test_command():
    test_cmd = dict((k.split(":")[0], v) for k, v in _commands())["tests"]
    ci = _read(".ci", "run")
    assert test_cmd in ci.splitlines()


# ------------------------------------------------------------------ the user guide is true

def _block(marker):
    text = _read("README.md")
    m = re.search(rf"<!-- {marker}: begin -->\n(.*?)<!-- {marker}: end -->", text, re.S)
    assert m, f"README.md has no <!-- {marker}: begin/end --> block"
    return m.group(1)


def _names_block():
    """The README's "Valid names" list, generated from nnlib's own tables."""
    import inspect

    from nnlib import _codes, estimators, optim
    acts = []
    for name in _codes.ACTIVATION_CODES:
        p = _codes.ACTIVATION_PARAMS.get(name)
        acts.append(f"`{name}`" + (f" (parameter `{p[0]}`, default {p[1]})" if p else ""))
    kinds = {"softmax_cross_entropy": "integer class labels", "squared_error": "float targets",
             "logistic_loss": "labels 0/1", "sparsemax_loss": "integer class labels",
             "hinge_loss": "integer class labels",
             "poisson_loss": "non-negative targets, log link"}
    losses = [f"`{n}` ({kinds[n]})" for n in _codes.LOSS_CODES]
    opts = [n for n in optim.__all__ if inspect.isclass(getattr(optim, n)) and
            issubclass(getattr(optim, n), optim.Optimizer) and n != "Optimizer"]
    return "".join(f"* {line}\n" for line in [
        "`Dense(..., activation=)`: " + ", ".join(acts),
        "`fit(..., loss=)`: " + ", ".join(losses),
        "`fit(..., optimizer=)`, an instance of `nnlib.optim`: "
        + ", ".join(f"`{n}`" for n in opts),
        "`MLPClassifier` / `MLPRegressor`: `activation=` "
        + ", ".join(f"`{n}`" for n in estimators._ACTIVATIONS) + "; `solver=` "
        + ", ".join(f"`{n}`" for n in estimators._SOLVERS)])


def test_readme_valid_names_are_nnlib_s_own():
    assert _block("names") == _names_block(), "regenerate the block:\n" + _names_block()


def test_readme_names_every_lecture_of_the_notes():
    pytest.importorskip("sympy")
    from verify.lectures import LECTURES
    expected = "".join(f"* {title} — {who}\n" for title, who in LECTURES.values())
    assert _block("lectures") == expected


def _python_blocks():
    text = _read("README.md")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def _run_block(code, tmp_path, monkeypatch, capsys, ns=None):
    monkeypatch.chdir(tmp_path)              # the training example saves digits.npz
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"} if ns is None else ns)
    return capsys.readouterr().out


def test_readme_functional_estimator_and_training_examples_run(tmp_path, monkeypatch, capsys):
    # the Dask examples need a cluster and the extra (tests/test_dask.py runs their code)
    blocks = [b for b in _python_blocks() if "verify.check_elementwise" not in b and
              "dask" not in b]
    assert len(blocks) >= 3
    ns = {"__name__": "readme"}
    outs = [_run_block(b, tmp_path, monkeypatch, capsys, ns if k == 2 else None)
            for k, b in enumerate(blocks)]        # every example runs
    score = float(outs[1].splitlines()[0])
    assert score > 0.9                                   # "about 0.96"
    assert float(outs[2].strip().splitlines()[-1]) > 0.85   # val_accuracy, "about 0.95"
    assert (tmp_path / "digits.npz").exists()
    np.testing.assert_allclose(ns["probs"], F.softmax(ns["scores"]))   # as the comment says


def test_readme_verify_example_runs_and_prints_what_it_says(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sympy")
    pytest.importorskip("mpmath")
    [code] = [b for b in _python_blocks() if "verify.check_elementwise" in b]
    monkeypatch.syspath_prepend(ROOT)
    out = _run_block(code, tmp_path, monkeypatch, capsys).splitlines()
    # each print's comment in the README states its output
    assert out[0].startswith("False vjp [float64] at 2.0:") and out[0].endswith(
        "(6 ulp) (grad_out=-0.9834300871097477)")
    assert "(6 ulp)" in code and out[1] == "True None"


def test_license_matches_pyproject():
    text = _read("LICENSE")
    meta = _read("pyproject.toml")
    assert 'license = { text = "BSD-3-Clause" }' in meta
    assert text.startswith("BSD 3-Clause License")
