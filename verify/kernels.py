"""Look up the compiled nnlib kernels by name, without failing when one does not exist yet.

A kernel that nnlib does not export yet is reported "not available"; that is a failure only
if its name *is* in ``nnlib.functional.__all__`` (exported but not callable would be a bug).
"""
import importlib

__all__ = ["functional", "exported", "kernel", "nnlib_attr"]


def functional():
    try:
        return importlib.import_module("nnlib.functional")
    except ImportError:      # nnlib not built: every kernel is "not available"
        return None


def exported():
    f = functional()
    return set(getattr(f, "__all__", ())) if f is not None else set()


def kernel(name):
    """``nnlib.functional.<name>`` or None."""
    f = functional()
    return getattr(f, name, None) if f is not None else None


def nnlib_attr(dotted):
    """``nnlib.<dotted>`` (e.g. "Sequential", "optim.SGD") or None."""
    try:
        obj = importlib.import_module("nnlib")
        for part in dotted.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                obj = importlib.import_module(obj.__name__ + "." + part)
        return obj
    except (ImportError, AttributeError):
        return None
