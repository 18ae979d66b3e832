"""SymPy's ``simplify`` without the import of ``sympy.physics.units`` it makes for its
unit handling, in a process that has no unit quantities.

Design note
-----------
``sympy.simplify`` (SymPy 1.14) runs ``from sympy.physics.units import Quantity`` and, only
when the expression ``has`` a ``Quantity``, simplifies its units. Importing the package
builds every unit of its unit systems: 0.2-0.5 s of CPU in each process of a verify run,
where no expression holds a unit. :func:`deferred_units` puts a stand-in for the package
in ``sys.modules`` while it is not imported: its ``Quantity`` is a class that is not a
SymPy type, which ``Basic.has`` reports absent -- as the real class is, since a unit
quantity exists only once ``sympy.physics.units.quantities``, which defines it, is
imported. ``simplify`` then returns the
same expression it returns with the real package loaded.

The stand-in is a package at the real package's directory, so that the submodules that
need nothing of the package's namespace import under it (``sympy.physics.units.quantities``,
``.util``); its ``Quantity`` is SymPy's as soon as that module, where the class lives, is
imported. A submodule that imports names of the package while being imported itself
(``sympy.physics.units.systems``: its ``mks`` reads the package's units) raises an
ImportError under the stand-in (a circular import), so this is only for processes whose
code makes no units: verify's command-line run and its workers (``verify.api`` never puts
it in place). A SymPy whose ``simplify`` imported ``systems`` would make a check fail
with that ImportError, not pass with another result. Any other name asked of it
imports the real package, which then replaces the stand-in in ``sys.modules`` (and as
``sympy.physics.units``). So a process that makes a unit quantity gets SymPy's
simplification of it. The ``with`` block removes the stand-in from ``sys.modules`` on
the way out (or, when a submodule was imported under it, imports the real package then);
a reference to it kept past the block, ``sympy.physics.units`` too, answers every name
from the real package.
"""
import contextlib
import importlib
import os
import sys
import types

__all__ = ["deferred_units", "defer_units"]

_NAME = "sympy.physics.units"
_QUANTITIES = _NAME + ".quantities"


class _NoQuantity:
    """What the stand-in gives for ``Quantity``: no SymPy object is an instance of it, and
    ``Basic.has`` skips a pattern that is not a SymPy type (it finds nothing)."""

    def __new__(cls, *args, **kwargs):
        raise TypeError("sympy.physics.units is deferred (verify._units): import "
                        "sympy.physics.units.quantities before making a Quantity")


class _Deferred(types.ModuleType):
    """The stand-in for ``sympy.physics.units`` (see the module's design note)."""

    def __getattr__(self, name):
        if name == "Quantity" and sys.modules.get(_NAME) is self:
            q = sys.modules.get(_QUANTITIES)
            return _NoQuantity if q is None else q.Quantity
        return getattr(_load_real(self), name)


def _load_real(stub):
    _remove(stub)
    real = importlib.import_module(_NAME)
    # a submodule imported under the stand-in is bound as its attribute only: the real
    # package's own imports of it find it in sys.modules and bind nothing
    for name, value in list(vars(stub).items()):
        if isinstance(value, types.ModuleType) and name not in vars(real):
            setattr(real, name, value)
    return real


def defer_units():
    """Put the stand-in in place unless the package is imported (or SymPy is not, which
    this does not import); returns it, or None."""
    sympy = sys.modules.get("sympy")
    if _NAME in sys.modules or sympy is None:
        return None
    stub = _Deferred(_NAME, "verify's stand-in for sympy.physics.units until it is used")
    stub.__path__ = [os.path.join(os.path.dirname(sympy.__file__), "physics", "units")]
    sys.modules[_NAME] = stub
    # its parent package (a millisecond without the units), so that sympy.physics.units.x
    # resolves as an attribute as it would
    importlib.import_module("sympy.physics")
    return stub


def _remove(stub):
    if sys.modules.get(_NAME) is stub:
        del sys.modules[_NAME]
    parent = sys.modules.get("sympy.physics")
    if parent is not None and parent.__dict__.get("units") is stub:
        del parent.units


@contextlib.contextmanager
def deferred_units():
    """:func:`defer_units` for the ``with`` block; the stand-in is removed on the way out
    (unless the real package replaced it)."""
    stub = defer_units()
    try:
        yield
    finally:
        if stub is not None and sys.modules.get(_NAME) is stub:
            if any(isinstance(v, types.ModuleType) for v in vars(stub).values()):
                _load_real(stub)        # its submodules are in use: the real package's
            else:
                # out of sys.modules; sympy.physics.units, the parent's attribute, stays
                # the stand-in, which answers every name from the real package
                del sys.modules[_NAME]
