"""Inverted dropout (``nnlib.functional.dropout`` and ``dropout_vjp``) against its
definition.

Design note
-----------
Definition (the lecture notes' dropout, in its inverted form): with a mask
``m ~ Bernoulli(1 - p)`` per entry, ``f(x) = x m / (1 - p)``. Three checks:

* **proof** (SymPy): ``df/dx = m / (1 - p)``, so the vjp ``g m / (1 - p)`` is the derived
  one; and ``E_m[f(x)] = (1 - p) f(x)|_{m=1} + p f(x)|_{m=0} = x`` (why the scale is
  ``1 / (1 - p)``);
* **evidence**: the compiled output and vjp against the exact value ``x m / (1 - p)``
  (rationals: ``x`` and ``p`` are binary fractions, so the exact product is a rational
  rounded once to the dtype) in ULPs, float32 and float64, one thread and several, rows
  cut at ``row0``; the mask itself comes from the NumPy twin's uint64 arithmetic, and the
  compiled mask must equal it entry for entry;
* **the mask's law**: the kept fraction over 10^6 entries within 5 sigma of ``1 - p``
  for several ``p``, and masks of neighbouring steps independent (they agree on
  ``(1-p)^2 + p^2`` of the entries, within 5 sigma).
"""
import time
from fractions import Fraction

import numpy as np
import sympy as sp

from verify import kernels as K

__all__ = ["DROPOUT_NAMES", "run_dropout", "prove_dropout"]

DROPOUT_NAMES = ["dropout"]          # with dropout_vjp: the coverage check's names

# 1 rounding of 1/(1-p) to the dtype, then 1 of the product: at most ~1 ulp; 2 allowed
TOLERANCE_ULPS = 2.0


def prove_dropout():
    """(derivative proved, expectation proved, latex of the definition)."""
    x, g = sp.symbols("x g", real=True)
    p = sp.symbols("p", positive=True)
    m = sp.symbols("m", nonnegative=True)
    f = x * m / (1 - p)
    vjp_closed_form = g * m / (1 - p)               # what the kernel computes
    derivative_ok = sp.simplify(g * sp.diff(f, x) - vjp_closed_form) == 0
    expectation = (1 - p) * f.subs(m, 1) + p * f.subs(m, 0)
    expectation_ok = sp.simplify(expectation - x) == 0
    return derivative_ok, expectation_ok, sp.latex(sp.Eq(sp.Function("f")(x), f))


def _ulps(computed, x, keep, rate, dtype):
    """Worst error of ``computed`` against x * keep / (1 - rate), exact then rounded."""
    scale = 1 / (1 - Fraction(rate))
    worst = 0.0
    tiny = np.finfo(dtype).tiny
    for c, xv, k in zip(computed.ravel(), x.ravel(), keep.ravel()):
        exact = Fraction(float(xv)) * scale if k else Fraction(0)
        rounded = dtype(float(exact))                 # exact -> double -> dtype
        if c == rounded:
            continue
        spacing = max(float(np.spacing(np.abs(rounded))), float(tiny))
        worst = max(worst, abs(float(Fraction(float(c)) - exact)) / spacing)
    return worst


def _evidence(dtype, rng, quick):
    F, R = K.functional(), None
    from nnlib._reference.dropout import dropout_mask
    n, c = (64, 33) if quick else (256, 65)
    worst, mask_ok, cases = 0.0, True, 0
    for rate in (0.1, 0.5, 0.9):
        x = (rng.standard_normal((n, c)) * 10.0 ** rng.uniform(-3, 3, (n, c))).astype(dtype)
        g = rng.standard_normal((n, c)).astype(dtype)
        seed, step = int(rng.integers(0, 2**63)), int(rng.integers(0, 2**20))
        keep = dropout_mask(n, c, rate, seed, step, row0=5)
        for threads in (1, 2):
            out = F.dropout(x, rate, seed, step, row0=5, n_threads=threads)
            vjp = F.dropout_vjp(x, g, rate, seed, step, row0=5, n_threads=threads)
            mask_ok &= bool(np.array_equal(out != 0, keep & (x != 0)))
            worst = max(worst, _ulps(out, x, keep, rate, dtype),
                        _ulps(vjp, g, keep, rate, dtype))
            cases += 2 * x.size
    return worst, mask_ok, cases


def _law(quick):
    from nnlib._reference.dropout import dropout_mask
    size = 300 if quick else 1000
    rows, ok = [], True
    for rate in (0.05, 0.5, 0.95):
        kept = dropout_mask(size, size, rate, seed=2026).mean()
        sigma = np.sqrt(rate * (1 - rate) / size ** 2)
        z = abs(kept - (1 - rate)) / sigma
        ok &= z < 5
        rows.append((f"kept fraction, p = {rate}", f"{kept:.5f} (expected {1 - rate:g}, "
                                                   f"{z:.2f} sigma)"))
    a, b = dropout_mask(size, size, 0.5, 2026, 0), dropout_mask(size, size, 0.5, 2026, 1)
    agree = np.mean(a == b)
    z = abs(agree - 0.5) / np.sqrt(0.25 / a.size)
    ok &= z < 5
    rows.append(("masks of steps 0 and 1 agree on", f"{agree:.5f} of the entries "
                                                    f"(independent: 0.5; {z:.2f} sigma)"))
    return ok, rows


def run_dropout(ctx):
    if ctx.only and not (ctx.wanted("dropout") or ctx.wanted("dropout_vjp")):
        return []
    t0 = time.perf_counter()
    if K.kernel("dropout") is None or K.kernel("dropout_vjp") is None:
        return [{"name": "dropout", "section": "kernels", "passed": False,
                 "verdict": "FAIL (not available: no nnlib.functional.dropout)",
                 "rows": []}]
    derivative_ok, expectation_ok, latex = prove_dropout()
    rng = np.random.default_rng(ctx.seed)
    rows = [("definition", f"${latex}$, $m \\sim \\mathrm{{Bernoulli}}(1-p)$"),
            ("proof: vjp = g df/dx", "proved" if derivative_ok else "FAILED"),
            ("proof: E[f(x)] = x", "proved" if expectation_ok else "FAILED")]
    passed = derivative_ok and expectation_ok
    for dname in ctx.dtypes:
        worst, mask_ok, cases = _evidence(np.dtype(dname).type, rng, ctx.quick)
        passed &= mask_ok and worst <= TOLERANCE_ULPS
        rows.append((f"max error {dname}", f"{worst:.3g} ulp over {cases} entries "
                                           f"(tolerance {TOLERANCE_ULPS:g} ulp); mask "
                                           f"{'equals' if mask_ok else 'DIFFERS FROM'} "
                                           f"the twin's"))
    law_ok, law_rows = _law(ctx.quick)
    passed &= law_ok
    rows += law_rows
    item = {"name": "dropout", "section": "kernels", "passed": bool(passed),
            "verdict": "pass" if passed else "FAIL", "rows": rows,
            "seconds": round(time.perf_counter() - t0, 3)}
    if not passed:
        item["seed"] = ctx.seed
    return [item]
