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


# dunder methods a user calls by name or as ``obj(...)``: the constructor (its signature
# is the class's) and ``__call__`` (``schedule(t)``, ``network(X)``)
PUBLIC_DUNDERS = ("__init__", "__call__")


def _function_of(attr):
    """The function behind a class attribute: a method, a property's getter, a class-
    or static method's function, or that of a descriptor wrapping one (``partial_fit``
    under ``nnlib._base._available_if``); None for data."""
    if isinstance(attr, (staticmethod, classmethod)):
        attr = attr.__func__
    elif isinstance(attr, property):
        attr = attr.fget
    elif hasattr(attr, "__get__") and inspect.isfunction(getattr(attr, "fn", None)):
        attr = attr.fn
    return attr if inspect.isfunction(attr) else None


def public_methods():
    """``{qualified name: function}`` for the public methods, properties (their getter),
    class- and static methods defined on the exported classes and their nnlib bases
    (private ones included: ``MLPClassifier.fit`` is ``_BaseMLP.fit``), the methods that
    exist only in some states (``partial_fit``), ``__init__`` and ``__call__``."""
    found = {}
    for cls in [o for o in public_objects().values() if inspect.isclass(o)]:
        for klass in cls.__mro__:
            if not klass.__module__.startswith("nnlib"):
                continue
            for name, attr in vars(klass).items():
                if name.startswith("_") and name not in PUBLIC_DUNDERS:
                    continue
                func = _function_of(attr)
                if func is not None:
                    found.setdefault(f"{func.__module__}.{func.__qualname__}", func)
    return found
