"""Conventions checked exactly: at each kink, tie and signed zero where the mathematics
leaves a choice, the compiled kernel returns EXACTLY the choice the registry states.

Design note
-----------
The evidence elsewhere accepts any element of the subdifferential at a kink (membership,
proved); that would let a kernel flip from one valid subgradient to another, and users'
results depend on which one it returns. Here every stated choice is a concrete input whose
exact output is known in closed form (0, +-1/n, 1/c, a dyadic vjp), computed by the
kernel in both dtypes and compared bit for bit (each input is one row, one task: the
thread split is verify.paths's business):

* activations: at each kink of ``registry.ACTIVATIONS`` the derivative is the value of
  ``grad_convention`` (so ``vjp(k, g) == dtype(convention * g)``), at +0 and -0, and the
  forward value is ``kink_values`` with the sign of zero ``zero_sign`` states (relu(-0)
  is +0, as the kernel documents; the others keep the input's sign);
* ``registry.CONVENTIONS``: the hinge loss's subgradient at h = 0 and its tie rule (first
  index attaining the maximum), sparsemax's support at a boundary, all-equal rows.
"""
import time

import numpy as np

from verify import kernels as K
from verify.registry import ACTIVATIONS, CONVENTIONS

__all__ = ["run_conventions", "activation_conventions"]

DTYPES = {"float64": np.float64, "float32": np.float32}
GRAD_OUT = (1.0, -0.75, 3.0)        # dyadic: convention * g is exact in both dtypes


def _bits(a):
    a = np.asarray(a)
    return a.dtype.str + a.tobytes().hex()


def activation_conventions():
    """[(kernel, statement, make, expected)] for every kink of every activation."""
    out = []
    for act in ACTIVATIONS:
        params = act.evidence_params
        kw = act.nnlib_kwargs
        for k, d in act.grad_convention.items():
            dv = float(d.subs(params))
            fv = float(act.kink_values[k].subs(params)) if k in act.kink_values else None
            for x0 in (float(k), -0.0 if float(k) == 0 else None):
                if x0 is None:
                    continue
                xs = (x0,) * len(GRAD_OUT)

                def make(dt, xs=xs, kw=kw):
                    return (np.array(xs, dtype=dt), np.array(GRAD_OUT, dtype=dt)), dict(kw)

                def expected(dt, dv=dv, zero_map=act.vjp_zero_map):
                    if zero_map:             # +0 whatever grad_out's sign
                        return np.zeros(len(GRAD_OUT), dtype=dt)
                    return (np.array(GRAD_OUT, dtype=np.float64) * dv).astype(dt)
                out.append((act.name + "_vjp", f"{act.name}'({x0!r}) = {d} (the kernel's "
                            "element of the subdifferential" + (
                                "; the vjp is the zero map: +0 for any grad_out"
                                if act.vjp_zero_map else "") + ")", make, expected))
                if fv is not None:
                    if fv == 0:
                        fv = 0.0 if act.zero_sign == "positive" else np.copysign(0.0, x0)

                    def make_f(dt, xs=xs, kw=kw):
                        return (np.array(xs, dtype=dt),), dict(kw)

                    def expected_f(dt, fv=fv):
                        return np.full(len(xs), fv).astype(dt)
                    out.append((act.name, f"{act.name}({x0!r}) = {fv!r} (bits, the sign of "
                                f"zero included: {act.zero_sign})", make_f, expected_f))
    return out


def _check(fn, make, expected, dname, n_threads):
    dt = DTYPES[dname]
    args, kw = make(dt)
    got = fn(*args, n_threads=n_threads, **kw)
    want = expected(dt)
    if np.ndim(want) == 0 and np.ndim(got) == 0:
        ok = float(got) == float(want) and np.signbit(float(got)) == np.signbit(float(want))
    else:
        ok = _bits(got) == _bits(np.asarray(want))
    return ok, got, want


def run_conventions(ctx):
    """One item per kernel with stated conventions: each statement, per dtype, passes only
    if the compiled value equals the stated choice bit for bit."""
    entries = activation_conventions() + [
        (c.kernel, c.statement, c.make, c.expected) for c in CONVENTIONS]
    by_kernel = {}
    for kernel, statement, make, expected in entries:
        by_kernel.setdefault(kernel, []).append((statement, make, expected))
    items = []
    for kernel, stated in by_kernel.items():
        base = kernel.removesuffix("_vjp").removesuffix("_grad")
        # picked by the kernel's name, its item's name (--only "relu (conventions)") or
        # the group
        if not (ctx.wanted(kernel) or ctx.wanted(base) or ctx.wanted("conventions")
                or ctx.wanted(f"{kernel} (conventions)")):
            continue
        t0 = time.perf_counter()
        fn = K.kernel(kernel)
        rows, failures = [], []
        if fn is None:
            failures.append(f"{kernel} is not available in nnlib")
        for statement, make, expected in stated if fn is not None else []:
            cells = []
            for dname in ctx.dtypes:
                for nt in (1,):
                    ok, got, want = _check(fn, make, expected, dname, nt)
                    if not ok:
                        failures.append(f"{statement} [{dname}]: got "
                                        f"{np.asarray(got).tolist()}, the stated choice is "
                                        f"{np.asarray(want).tolist()}")
                cells.append(f"{dname}: {'equal' if not failures else 'see failures'}")
            rows.append((statement, "exact in " + ", ".join(ctx.dtypes)
                         if not any(statement in f for f in failures)
                         else "**differs** from the stated choice"))
        items.append({"name": f"{kernel} (conventions)", "section": "kernels",
                      "kind": "conventions", "passed": not failures,
                      "verdict": "pass" if not failures else
                      f"FAIL ({len(failures)} differ from the stated choice)",
                      "rows": rows, "failures": failures[:10],
                      "statement": "The compiled value equals the registry's stated choice "
                                   "bit for bit (verify/conventions.py).",
                      "seconds": round(time.perf_counter() - t0, 3)})
    return items
