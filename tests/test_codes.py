"""The kind codes (nnlib/_codes.py) and the kernel templates rendered from them."""
import os
import shutil
import subprocess

import pytest

from nnlib import _codes
from nnlib._kernels import _templates, codes

TABLES = ["ACTIVATION_CODES", "LOSS_CODES", "OPTIM_KINDS"]
TEMPLATES = _templates.templates()


@pytest.mark.parametrize("table", TABLES)
def test_the_build_reports_the_codes_of_codes_py(table):
    # values read back from the compiled C enums: an extension built before an edit of
    # _codes.py fails here instead of running the wrong kind
    assert getattr(codes, table) == getattr(_codes, table)


@pytest.mark.parametrize("table", TABLES)
def test_codes_are_0_to_n_minus_1_and_the_build_knows_n(table):
    # the kernels range-check a code against N_<table> of codes.pxd
    values = list(getattr(_codes, table).values())
    assert sorted(values) == list(range(len(values))) and codes.COUNTS[table] == len(values)


def test_enum_constant_names():
    assert _codes.enum_constant("ACT_", "leaky_relu") == "ACT_LEAKY_RELU"
    assert _codes.enum_constant("LOSS_", "hinge_loss") == "LOSS_HINGE"
    assert _codes.enum_constant("LOSS_", "squared_error") == "LOSS_SQUARED_ERROR"


@pytest.mark.parametrize("template", TEMPLATES, ids=os.path.basename)
def test_rendered_file_is_current(template):
    # the .pyx/.pxd next to each template is what the template renders today (setup.py
    # rewrites it on every build; a hand edit of the generated file shows up here)
    pytest.importorskip("Cython")
    with open(template[:-len(".tp")], encoding="utf-8") as f:
        assert f.read() == _templates.render(template)


@pytest.mark.parametrize("template", TEMPLATES, ids=os.path.basename)
def test_rendered_file_is_git_ignored(template):
    # a rendered file is build output: committing it would let it drift from its template
    root = os.path.dirname(os.path.dirname(_templates.KERNELS))
    if shutil.which("git") is None or not os.path.exists(os.path.join(root, ".git")):
        pytest.skip("not a git checkout")
    target = os.path.relpath(template[:-len(".tp")], root)
    assert subprocess.run(["git", "check-ignore", "-q", target], cwd=root).returncode == 0
    tracked = subprocess.run(["git", "ls-files", target], cwd=root, capture_output=True,
                             text=True).stdout
    assert not tracked, f"{target} is tracked"


@pytest.mark.parametrize("template, table", [
    ("scalar.pxd.tp", "ACTIVATION_CODES"), ("optim_rules.pxd.tp", "OPTIM_KINDS")])
def test_a_kind_without_math_fails_the_build(template, table):
    # a code added to _codes.py without its formula (or rule) stops rendering with a
    # message naming the template, instead of compiling a switch that skips the kind
    pytest.importorskip("Cython")
    names = _templates.code_names()
    names[table] = dict(names[table], new_kind=len(names[table]))
    with pytest.raises(ValueError, match=template):
        _templates.render(os.path.join(_templates.KERNELS, template), names)


def test_each_kind_has_its_own_loop():
    # one loop per kind, the kind's function called with no switch inside (design notes
    # of activations.pyx and dense.pxd): every kind appears in each generated switch
    pytest.importorskip("Cython")
    for name in ("activations.pyx.tp", "dense.pxd.tp"):
        text = _templates.render(os.path.join(_templates.KERNELS, name))
        for kind in _codes.ACTIVATION_CODES:
            assert f"kind == {_codes.enum_constant('ACT_', kind)}:" in text, (name, kind)
            assert f"act_{kind}" in text or f"act_grad_y_{kind}" in text
