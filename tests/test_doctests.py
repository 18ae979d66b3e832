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

from tests._public_api import PUBLIC_MODULES, available, public_methods, public_objects

EXAMPLES = re.compile(r"^\s*Examples\n\s*-{8}\s*$", re.M)
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

OBJECTS = public_objects()
METHODS = public_methods()
def _docstring_items():
    items = {m: importlib.import_module(m) for m in PUBLIC_MODULES if available(m)}
    items.update(OBJECTS)
    items.update(METHODS)
    return {name: obj for name, obj in items.items() if inspect.getdoc(obj)}


ITEMS = _docstring_items()


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_object_has_examples(name):
    doc = inspect.getdoc(OBJECTS[name]) or ""
    assert EXAMPLES.search(doc), f"{name}'s docstring has no Examples section"


def _documented_by(name):
    """``{where: docstring}`` that documents METHODS[name] for a user: the docstring
    ``help`` shows (its own, or the one it inherits); for a constructor without its own,
    numpydoc's place, the docstring of each exported class it constructs (or, for one
    only reached through ``super().__init__``, of each exported subclass)."""
    func = METHODS[name]
    if func.__name__ != "__init__" or func.__doc__:
        return {name: inspect.getdoc(func) or ""}
    classes = [c for c in OBJECTS.values() if inspect.isclass(c)]
    owner = next(k for c in classes for k in c.__mro__ if vars(k).get("__init__") is func)
    built = [c for c in classes if c.__init__ is func] or [
        c for c in classes if issubclass(c, owner)]
    return {f"{c.__module__}.{c.__qualname__}": inspect.getdoc(c) or "" for c in built}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_public_method_has_examples(name):
    missing = [where for where, doc in _documented_by(name).items()
               if not EXAMPLES.search(doc)]
    assert not missing, (f"{name} has no Examples section in the docstring of "
                         f"{', '.join(missing)}")


def _skip_without_extras(test):
    """An example that needs an optional extra is skipped without it (CI's cross-check
    job installs torch and onnx and runs this file again)."""
    code = "\n".join(example.source for example in test.examples)
    if "to_onnx(" in code:
        pytest.importorskip("onnx")
    if "import torch" in code or ", torch" in code:
        pytest.importorskip("torch")
    if "import dask" in code or "from distributed" in code:
        pytest.importorskip("dask.distributed")


def _globals(obj):
    """The defining module's namespace, as ``python -m doctest`` gives it."""
    module = obj if inspect.ismodule(obj) else sys.modules[obj.__module__]
    return {**vars(module), "np": np}


@pytest.mark.parametrize("name", sorted(n for n, o in ITEMS.items()
                                        if ">>>" in (inspect.getdoc(o) or "")))
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    test = doctest.DocTestParser().get_doctest(
        inspect.getdoc(ITEMS[name]), _globals(ITEMS[name]), name, None, 0)
    _skip_without_extras(test)
    monkeypatch.chdir(tmp_path)                # examples that save files write here
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = []
    with np.printoptions(precision=8, suppress=False, legacy=False):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
