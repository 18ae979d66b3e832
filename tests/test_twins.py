"""Every compiled kernel in nnlib.functional has a NumPy twin with the same signature."""
import inspect

import pytest

import nnlib._reference as R
import nnlib.functional as F


def test_functional_exports_are_nonempty():
    assert len(F.__all__) >= 16


@pytest.mark.parametrize("name", sorted(F.__all__))
def test_twin_exists_with_same_signature(name):
    assert hasattr(R, name), f"nnlib._reference has no twin for {name}"
    assert inspect.signature(getattr(F, name)) == inspect.signature(getattr(R, name))


def test_no_twin_without_kernel():
    assert sorted(R.__all__) == sorted(F.__all__)
