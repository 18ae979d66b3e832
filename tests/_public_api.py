"""The public API, listed once for tests/test_typing.py and tests/test_doctests.py: every
object the public modules export in ``__all__`` and the public methods and properties of
the exported classes (their own, not those inherited from outside nnlib)."""
import importlib
import importlib.util
import inspect

PUBLIC_MODULES = ["nnlib", "nnlib.functional", "nnlib.optim", "nnlib.schedules",
                  "nnlib.callbacks", "nnlib.metrics", "nnlib.layers", "nnlib.export",
                  "nnlib.estimators", "nnlib.linear_models", "nnlib.datasets", "nnlib.dask",
                  "nnlib.model", "nnlib.threshold", "nnlib.exceptions"]
# modules of an optional extra: listed only where the extra is installed (nnlib and its
# tests work without it)
EXTRA_MODULES = {"nnlib.dask": ("dask", "distributed")}


def available(module_name):
    """False for a module of an optional extra that is not installed."""
    return all(importlib.util.find_spec(dep) is not None
               for dep in EXTRA_MODULES.get(module_name, ()))


def _exported(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, o in vars(module).items() if not n.startswith("_")
                 and inspect.isclass(o) and o.__module__ == module.__name__]
    return [(n, getattr(module, n)) for n in names]


def public_objects():
    """``{qualified name: object}`` for the exported functions and classes, first export
    wins (``nnlib.Sequential`` and ``nnlib.model.Sequential`` are one entry)."""
    found = {}
    for module_name in filter(available, PUBLIC_MODULES):
        for _, obj in _exported(importlib.import_module(module_name)):
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue                       # constants, submodules, __version__
            found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


def public_methods():
    """``{qualified name: function}`` for the public methods, properties (their getter),
    class- and static methods defined on the exported classes and their nnlib bases;
    ``__init__`` included (its signature is the constructor's)."""
    found = {}
    for cls in [o for o in public_objects().values() if inspect.isclass(o)]:
        for klass in cls.__mro__:
            if not klass.__module__.startswith("nnlib"):
                continue
            for name, attr in vars(klass).items():
                if name.startswith("_") and name != "__init__":
                    continue
                if isinstance(attr, (staticmethod, classmethod)):
                    attr = attr.__func__
                elif isinstance(attr, property):
                    attr = attr.fget
                if inspect.isfunction(attr):
                    found.setdefault(f"{attr.__module__}.{attr.__qualname__}", attr)
    return found
