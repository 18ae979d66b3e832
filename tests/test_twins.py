"""Every compiled entry point has a NumPy twin with the same name and signature.

Two families: the kernels behind ``nnlib.functional`` (twins in ``nnlib._reference``'s
package namespace) and the compiled modules that are entry points themselves
(``nnlib._kernels.train`` and ``nnlib._kernels.optim``, twins in the module of the same
name under ``nnlib._reference``). Every compiled module must be in one of the lists below,
so a new one cannot go without a twin unnoticed.

Signatures are compared by ``inspect.signature``. A ``cdef class`` built in ``__cinit__``
is not introspectable that way; its docstring then opens with the signature, either in
CPython's text-signature form (``Name(...)`` then ``--``, which ``inspect`` reads) or as
Cython's ``embedsignature`` writes it (``Name(Type arg, ...)``, C types dropped here).
"""
import importlib
import inspect
import pkgutil
import re

import numpy as np
import pytest

import nnlib._kernels
import nnlib._reference as R
import nnlib.functional as F
from nnlib import NonFiniteError
from nnlib._reference import optim as twin_optim
from nnlib._reference import train as twin_train

# compiled module -> twin module, for the modules whose own callables are entry points
TWIN_MODULES = {"train": "nnlib._reference.train", "optim": "nnlib._reference.optim",
                "sparse": "nnlib._reference.sparse", "shuffle": "nnlib._reference.shuffle"}
# compiled modules reached through nnlib.functional (twins: test_functional_twin_*)
FUNCTIONAL_MODULES = ["activations", "dense", "dropout", "losses", "output_maps"]
# compiled modules that are plumbing, not math: aligned outputs, BLAS loading, thread
# counts, x*y+z, the codes and branch thresholds a build was made with
INFRASTRUCTURE_MODULES = ["aligned", "blas", "codes", "elementary", "parallel", "paths"]
# compiled modules with no Python entry point, reached only through a twin module's
# entry points: optim_wide is optim's rules built with 512-bit vectors (test_optim
# compares it bit for bit with optim's own build)
CIMPORTED_MODULES = {"optim_wide": "optim"}


def _compiled_modules():
    return sorted(m.name for m in pkgutil.iter_modules(nnlib._kernels.__path__)
                  if not m.name.startswith("_"))      # _templates: the build's renderer


def _entry_points(module):
    """Public callables defined in ``module`` itself (not imported into it)."""
    return sorted(name for name, obj in vars(module).items()
                  if not name.startswith("_") and callable(obj)
                  and getattr(obj, "__module__", None) == module.__name__)


def _embedded_signature(obj):
    """The signature in the first line of ``obj``'s docstring, ``Name(Type arg=1, ...)``,
    with C type names dropped; None if the docstring does not open with one."""
    first = (obj.__doc__ or "").lstrip().split("\n", 1)[0]
    m = re.fullmatch(rf"{obj.__name__}\((.*)\)", first.strip())
    if m is None:
        return None
    params = []
    for part in filter(None, (p.strip() for p in m.group(1).split(","))):
        declared, _, default = part.partition("=")
        name = declared.split()[-1]                   # "Network network" -> "network"
        params.append(f"{name}={default}" if default else name)
    namespace = {}
    exec(f"def f({', '.join(params)}): pass", namespace)
    return inspect.signature(namespace["f"])


def signature_of(obj):
    """``inspect.signature``, else the docstring's embedded signature (cdef classes)."""
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        sig = _embedded_signature(obj)
        assert sig is not None, f"{obj!r}: no introspectable or documented signature"
        return sig


def _shape_of(sig):
    """Names, kinds and defaults (annotations, which a compiled signature lacks, aside)."""
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_every_compiled_module_is_classified():
    assert _compiled_modules() == sorted(list(TWIN_MODULES) + FUNCTIONAL_MODULES
                                         + INFRASTRUCTURE_MODULES + list(CIMPORTED_MODULES))


@pytest.mark.parametrize("name", sorted(CIMPORTED_MODULES))
def test_cimported_module_has_no_entry_point_of_its_own(name):
    """Its code runs only through the twin module's entry points, which the twins check;
    an entry point added here would have no twin."""
    assert CIMPORTED_MODULES[name] in TWIN_MODULES
    assert _entry_points(importlib.import_module(f"nnlib._kernels.{name}")) == []


@pytest.mark.parametrize("name", sorted(TWIN_MODULES))
def test_twin_module_has_the_same_entry_points(name):
    compiled = importlib.import_module(f"nnlib._kernels.{name}")
    twin = importlib.import_module(TWIN_MODULES[name])
    assert _entry_points(compiled), f"nnlib._kernels.{name} has no entry points"
    assert _entry_points(twin) == _entry_points(compiled)
    if hasattr(compiled, "__all__"):
        assert sorted(twin.__all__) == sorted(compiled.__all__)


ENTRY_POINTS = [(name, entry) for name in sorted(TWIN_MODULES) for entry in
                _entry_points(importlib.import_module(f"nnlib._kernels.{name}"))]


@pytest.mark.parametrize("module, entry", ENTRY_POINTS,
                         ids=[f"{m}.{e}" for m, e in ENTRY_POINTS])
def test_twin_entry_point_has_the_same_signature(module, entry):
    compiled = getattr(importlib.import_module(f"nnlib._kernels.{module}"), entry)
    twin = getattr(importlib.import_module(TWIN_MODULES[module]), entry)
    assert _shape_of(signature_of(compiled)) == _shape_of(signature_of(twin))


def test_embedded_signature_parses_cython_text():
    class Example:
        """Example(Network network, x, double margin=1.0, flag=False)

        Body."""
    assert str(_embedded_signature(Example)) == "(network, x, margin=1.0, flag=False)"


# ---------------------------------------------------------------- nnlib.functional

def test_functional_exports_are_nonempty():
    assert len(F.__all__) >= 16


@pytest.mark.parametrize("name", sorted(F.__all__))
def test_functional_twin_exists_with_same_signature(name):
    assert hasattr(R, name), f"nnlib._reference has no twin for {name}"
    assert _untyped(getattr(F, name)) == _untyped(getattr(R, name))


def _untyped(func):
    """The signature without annotations: the public functions are typed, the twins need
    not be; names, kinds and defaults must agree."""
    sig = inspect.signature(func)
    return sig.replace(parameters=[p.replace(annotation=p.empty)
                                   for p in sig.parameters.values()],
                       return_annotation=sig.empty)


def test_no_functional_twin_without_kernel():
    assert sorted(R.__all__) == sorted(F.__all__)


# ---------------------------------------------------------------- functional checks

def test_state_slots_agree_for_every_optimizer_kind():
    from nnlib._kernels import optim, train
    base = dict(kind=0, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, alpha=0.99,
                eps=1e-8, beta1=0.9, beta2=0.999, lr_decay=0.0,
                initial_accumulator_value=0.0, nesterov=0, centered=0, amsgrad=0)
    for kind in twin_optim.KINDS.values():
        for extra in ({}, dict(momentum=0.5), dict(centered=1), dict(amsgrad=1)):
            cfg = dict(base, kind=kind, **extra)
            want = twin_optim.state_slots(cfg)
            assert optim.state_slots(cfg) == train.state_slots(cfg) == want
            assert twin_train.state_slots(cfg) == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_epoch_setups_take_the_same_per_array_optimizer_configs(dtype):
    """One optimizer config per parameter array (parameter groups): both setups keep the
    same form, check each array's state against its own config's layout, and take the
    same steps (tests/test_train_twin.py compares them on every rule kind)."""
    from nnlib import optim as O
    from nnlib._kernels import train
    cfgs = [O.RMSprop(lr=0.01, momentum=0.5).config(), O.RMSprop(lr=0.02).config(),
            O.RMSprop(lr=0.01, centered=True).config(), O.RMSprop(lr=0.03).config()]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in ((2, 3), (3,), (3, 2), (2,))]
    slots = [2, 1, 2, 1]
    out = []
    for module in (train, twin_train):
        ps = [p.copy() for p in params]
        states = [np.zeros(k * p.size, dtype) for k, p in zip(slots, ps)]
        setup = module.EpochSetup(
            module.Network((2, 3, 2), [2, 0], [0.0, 0.0]), ps[0::2], ps[1::2], states,
            rng.standard_normal((4, 2)).astype(dtype) if not out else out[0][2],
            np.empty((4, 0), dtype), np.array([0, 1, 1, 0]),
            module.Workspace((2, 3, 2), 4, 0, dtype), 0, 2, optimizer=cfgs)
        assert setup.optimizer == tuple(cfgs)
        with pytest.raises(ValueError, match="states\\[1\\]"):
            setup.set_optimizer([cfgs[0]] * 4)          # b1 would need 2 state rows
        assert module.run_epoch(setup, np.arange(4, dtype=np.int64), 0)[1:4] == (4, 2, 0)
        out.append((ps, states, setup.X))
    for got, want in zip(out[0][0] + out[0][1], out[1][0] + out[1][1]):
        np.testing.assert_allclose(got, want, rtol=0, atol=64 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_agrees(dtype):
    from nnlib._kernels import train
    X = np.ones((3, 4), dtype)
    for value in (1.0, np.nan, np.inf):
        X[1, 2] = value
        assert train.all_finite(X) == twin_train.all_finite(X) == np.isfinite(value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optim_step_arrays_agrees_and_refuses_the_same_overflow(dtype, rng):
    from nnlib._kernels import optim
    from nnlib.optim import Adam
    cfg = Adam(lr=0.01).config()
    shapes = [(3, 4), (4,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    runs = []
    for module in (optim, twin_optim):
        p = [a.copy() for a in params]
        states = [np.zeros((2, a.size), dtype) for a in p]
        for step in (1, 2):
            module.optim_step_arrays(cfg, p, grads, states, step, 1, 1 << 15)
        runs.append(p + states)
    for got, want in zip(*runs):
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    # a gradient whose square overflows the second moment: refused, nothing written
    huge = [np.full(s, 1e30 if dtype == np.float32 else 1e200, dtype) for s in shapes]
    for module in (optim, twin_optim):
        p = [a.copy() for a in params]
        states = [np.zeros((2, a.size), dtype) for a in p]
        with pytest.raises(NonFiniteError, match=r"params\[0\] element 0"):
            module.optim_step_arrays(cfg, p, huge, states, 1, 1, 1 << 15)
        for got, want in zip(p, params):
            np.testing.assert_array_equal(got, want)
        assert not any(s.any() for s in states)
