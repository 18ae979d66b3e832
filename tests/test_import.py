"""``import nnlib`` stays light: nothing heavy is imported, the rest loads on access."""
import subprocess
import sys

import pytest

import nnlib

HEAVY = ("sympy", "scipy", "torch", "sklearn", "matplotlib", "nnlib.estimators",
         "nnlib.model")


def _modules_after(code):
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_nnlib_imports_nothing_heavy():
    loaded = _modules_after("import nnlib")
    assert not [m for m in HEAVY if m in loaded]


def test_functional_use_stays_light():
    loaded = _modules_after("import nnlib, numpy as np\nnnlib.functional.relu(np.ones(3))")
    assert not [m for m in HEAVY if m in loaded]


@pytest.mark.parametrize("name", sorted(nnlib.__all__))
def test_every_public_name_resolves(name):
    assert getattr(nnlib, name) is not None
    assert name in dir(nnlib)


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no_such_thing"):
        nnlib.no_such_thing
