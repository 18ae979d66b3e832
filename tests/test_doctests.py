"""Every public docstring has a numpydoc Examples section, and every example runs: the
docstrings of the public modules, of every exported function and class and of their
public methods are run with doctest (ELLIPSIS and NORMALIZE_WHITESPACE on; each docstring
in a copy of its module's namespace, as ``python -m doctest`` runs it, NumPy's print
options fixed)."""
import doctest
import importlib
import inspect
import re
import sys

import numpy as np
import pytest

from tests._public_api import PUBLIC_MODULES, public_methods, public_objects

EXAMPLES = re.compile(r"^\s*Examples\n\s*-{8}\s*$", re.M)
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

OBJECTS = public_objects()
METHODS = public_methods()
# Extras the examples need: an example that needs one is skipped without it (the CI job
# installs them). The dask examples start a cluster; tests/test_dask.py runs those paths.
NEEDS = {"to_onnx": "onnx", "to_torch": "torch", "load_torch_state_dict": "torch",
         "nnlib.dask": "dask.distributed"}


def _docstring_items():
    items = {m: importlib.import_module(m) for m in PUBLIC_MODULES}
    items.update(OBJECTS)
    items.update(METHODS)
    return {name: obj for name, obj in items.items() if inspect.getdoc(obj)}


ITEMS = _docstring_items()


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_object_has_examples(name):
    doc = inspect.getdoc(OBJECTS[name]) or ""
    assert EXAMPLES.search(doc), f"{name}'s docstring has no Examples section"


def _needs(name):
    return next((extra for key, extra in NEEDS.items()
                 if key in name.split(".") or name.startswith(key)), None)


def _globals(obj):
    """The defining module's namespace, as ``python -m doctest`` gives it."""
    module = obj if inspect.ismodule(obj) else sys.modules[obj.__module__]
    return {**vars(module), "np": np}


@pytest.mark.parametrize("name", sorted(n for n, o in ITEMS.items()
                                        if ">>>" in (inspect.getdoc(o) or "")))
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    extra = _needs(name)
    if extra:
        pytest.importorskip(extra)
    monkeypatch.chdir(tmp_path)                # examples that save files write here
    test = doctest.DocTestParser().get_doctest(
        inspect.getdoc(ITEMS[name]), _globals(ITEMS[name]), name, None, 0)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = []
    with np.printoptions(precision=8, suppress=False, legacy=False):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
