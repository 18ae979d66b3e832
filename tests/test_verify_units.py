"""verify._units: SymPy's simplify under the stand-in for sympy.physics.units returns what it
returns with the real package, imports no unit system, and a process that does use units
gets the real package. Each case runs in a fresh interpreter (the test process may have
imported sympy.physics.units already, which turns the stand-in off)."""
import json
import os
import subprocess
import sys

import pytest

sp = pytest.importorskip("sympy")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# expressions that reach simplify's unit step (and some that return before it): trig,
# exponentials, logs, roots, piecewise, rational functions, the verify sections' kinds
EXPRESSIONS = r"""
x, y = sp.symbols("x y", real=True)
p = sp.Symbol("p", positive=True)
z = sp.Symbol("z")
s = 1 / (1 + sp.exp(-x))
EXPRS = [
    sp.sin(x) ** 2 + sp.cos(x) ** 2,
    s * (1 - s) - sp.diff(s, x),
    sp.diff(sp.tanh(x), x, 2),
    sp.diff(sp.log(1 + sp.exp(x)), x, 2),
    sp.diff(sp.log(1 + sp.exp(-x)), x, 2),
    sp.diff(sp.exp(x) - y * x, x, 2),
    sp.diff(1 / (1 + sp.exp(-x)), x, 2),
    (x ** 2 - 1) / (x - 1),
    sp.exp(x) * sp.exp(y) / sp.exp(x + y),
    sp.log(p * sp.exp(x)) - sp.log(p),
    sp.sqrt(p ** 2),
    sp.Piecewise((x, x > 0), (0, True)) - sp.Max(x, 0),
    sp.Max(x, y) - sp.Max(y, x),
    sp.gamma(z + 1) / sp.gamma(z),
    sp.cosh(x) ** 2 - sp.sinh(x) ** 2,
    sp.erf(x) + sp.erfc(x),
    x * sp.exp(-x ** 2 / 2) / sp.sqrt(2 * sp.pi),
    sp.Rational(3, 7) + x - x,
    sp.Integer(0),
    sp.atan(sp.tan(x)),
    (sp.exp(2 * x) - 1) / (sp.exp(2 * x) + 1) - sp.tanh(x),
    sp.Sum(z ** 2, (z, 1, 4)),
    sp.Matrix([[sp.sin(x) ** 2 + sp.cos(x) ** 2, x / x]]),
]
"""


def _run(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _simplified(deferred):
    return _run(f"""
import json, sys
import sympy as sp
{EXPRESSIONS}
if {deferred!r}:
    from verify._units import deferred_units
    ctx = deferred_units()
else:
    import sympy.physics.units
    import contextlib
    ctx = contextlib.nullcontext()
with ctx:
    got = [sp.srepr(sp.simplify(e)) for e in EXPRS]
    units = sorted(m for m in sys.modules if m.startswith("sympy.physics.units"))
print(json.dumps(dict(got=got, units=units,
                      after="sympy.physics.units" in sys.modules)))
""")


def test_simplify_is_the_same_without_the_unit_systems():
    deferred, real = _simplified(True), _simplified(False)
    assert deferred["got"] == real["got"]
    # what the stand-in saves: no unit system, no quantity (only the stand-in itself)
    assert deferred["units"] == ["sympy.physics.units"]
    assert "sympy.physics.units.systems.si" in real["units"]
    assert deferred["after"] is False              # the block removed the stand-in


def test_units_used_inside_the_block_are_the_real_ones():
    got = _run("""
import json, sys
import sympy as sp
from verify._units import deferred_units
with deferred_units():
    stub = sys.modules["sympy.physics.units"]
    from sympy.physics.units import meter, centimeter     # imports the real package
    real = sys.modules["sympy.physics.units"]
    from sympy.physics.units import Quantity
    r = sp.simplify(meter / (100 * centimeter))
print(json.dumps(dict(replaced=real is not stub, r=str(r),
                      q=Quantity.__module__, stub_q=stub.Quantity.__module__,
                      attr=sp.physics.units is real)))
""")
    assert got == dict(replaced=True, r="1", q="sympy.physics.units.quantities",
                       stub_q="sympy.physics.units.quantities", attr=True)


def test_a_submodule_imported_in_the_block_gives_the_real_quantity():
    got = _run("""
import json, sys
import sympy as sp
from verify._units import deferred_units
with deferred_units():
    from sympy.physics.units import Quantity as before
    import sympy.physics.units.quantities as q
    from sympy.physics.units import Quantity as after
    k = q.Quantity("k")
    has = (2 * k).has(after)
print(json.dumps(dict(before=before.__name__, after=after is q.Quantity, has=has,
                      left="sympy.physics.units" in sys.modules and
                           type(sys.modules["sympy.physics.units"]).__name__)))
""")
    # left: the real package (imported on the way out, its submodule being in use)
    assert got == dict(before="_NoQuantity", after=True, has=True, left="module")


def test_the_units_are_whole_after_the_block():
    """After the block, sympy.physics.units is reachable as the parent's attribute, and
    the submodules imported under the stand-in as the real package's attributes."""
    got = _run("""
import json, sys
import sympy as sp
from verify._units import deferred_units
with deferred_units():
    sp.simplify(sp.Symbol("x") * 2 / 2)
import sympy.physics
first = str(sympy.physics.units.meter)
real = type(sys.modules["sympy.physics.units"]).__name__
for k in [k for k in sys.modules if k.startswith("sympy.physics.units")]:
    del sys.modules[k]
del sympy.physics.units
with deferred_units():
    import sympy.physics.units.quantities as q
    import sympy.physics.units.util
import sympy.physics.units as u
print(json.dumps(dict(first=first, real=real, q=u.quantities is q,
                      util=sympy.physics.units.util.__name__,
                      meter=str(sympy.physics.units.meter))))
""")
    assert got == dict(first="meter", real="module", q=True,
                       util="sympy.physics.units.util", meter="meter")


def test_the_stand_in_is_off_when_the_package_is_imported():
    got = _run("""
import json, sys
import sympy as sp
import sympy.physics.units as u
from verify._units import defer_units, deferred_units
with deferred_units():
    same = sys.modules["sympy.physics.units"] is u
print(json.dumps(dict(same=same, none=defer_units() is None)))
""")
    assert got == dict(same=True, none=True)


def test_the_placeholder_makes_no_quantity():
    from verify._units import _NoQuantity
    with pytest.raises(TypeError, match="deferred"):
        _NoQuantity("k")
    # Basic.has finds no placeholder in any expression (it is not a SymPy type)
    x = sp.Symbol("x")
    assert not (x + 1).has(_NoQuantity)


def test_a_run_defers_the_units(tmp_path):
    """verify.__main__ runs its checks with the stand-in (and its workers, started by
    start_workers, defer the units after their imports)."""
    got = _run(f"""
import json, sys
import verify.run
seen = []
real_run_all = verify.run.run_all
def run_all(**kw):
    seen.append(type(sys.modules.get("sympy.physics.units")).__name__)
    return real_run_all(**kw)
verify.run.run_all = run_all
from verify.__main__ import main
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    main(["--quick", "--only", "sigmoid", "--out", {str(tmp_path)!r}])
print(json.dumps(dict(seen=seen, after="sympy.physics.units" in sys.modules)))
""")
    assert got == dict(seen=["_Deferred"], after=False)


def test_the_workers_defer_the_units():
    from verify.workers import _init_worker, worker_pool
    assert _init_worker                              # the initializer the pool runs
    pool = worker_pool(1, ("sympy",))
    try:
        name = pool.submit(_module_type, "sympy.physics.units").result(timeout=300)
    finally:
        pool.shutdown()
    assert name == "_Deferred"


def _module_type(name):
    return type(sys.modules.get(name)).__name__
