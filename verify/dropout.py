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

**The compiled epoch with dropout** (``nnlib._kernels.train``, item "epoch with
dropout"): networks with dropouts on the input, between the layers, on the output and
two at one position are trained by the compiled ``run_epoch`` and measured against
``verify.train``'s exact replay, whose forward pass multiplies by ``m / (1 - p)`` (exact)
where the network has a dropout and whose backward pass multiplies the gradient by the
same factors, the masks drawn by the NumPy twin's uint64 arithmetic for the update's
counter (``epoch_masks``); ``loss_grad`` at the start is the model at inference, with no
mask. A dropout whose scale is missing (``m`` alone), or one applied at inference, moves
the values by a factor ``1 - p`` (millions of ulps).
"""
import time
from fractions import Fraction

import numpy as np
import sympy as sp

from verify import kernels as K

__all__ = ["DROPOUT_NAMES", "ITEM_NAMES", "run_dropout", "prove_dropout", "epoch_masks"]

DROPOUT_NAMES = ["dropout"]          # with dropout_vjp: the coverage check's names
ITEM_NAMES = ["dropout", "epoch with dropout"]      # the checks run_dropout makes
# The compiled epoch's dropouts: (position, rate) per network 3-4-C (position 0: the input,
# 2: the output). 0.5 has an exact scale 2; 0.25's 4/3 is rounded to the dtype.
EPOCH_DROPOUTS = [[(1, 0.5)], [(0, 0.25), (1, 0.5)], [(1, 0.25), (1, 0.5), (2, 0.5)]]
# (optimizer class, its index in verify.optim.CONFIGS' order, quick): the fused plain SGD
# step, momentum and Adam read the dropped inputs through different code
EPOCH_OPTIMIZERS = ("SGD", "Adam")

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
    return _ulps_of(computed, _exact(x, keep, rate, dtype), keep, dtype)


def _exact(x, keep, rate, dtype):
    """(rounded, numerators, denominators) of x * keep / (1 - rate) per entry (flat):
    the exact rational as two ints, and it rounded exact -> double -> dtype. ``x`` and
    the scale are binary fractions, so the product is the rational (x's integer ratio
    times the scale's); Python's int / int is correctly rounded, as float() of the
    Fraction is (it divides the same rational reduced). A kept entry's exact value is
    made once for every output compared with it (the thread counts)."""
    scale = 1 / (1 - Fraction(rate))
    sn, sd = scale.numerator, scale.denominator
    num, den, near = [], [], []
    for xv, k in zip(x.ravel().tolist(), keep.ravel().tolist()):
        if k:
            a, b = xv.as_integer_ratio()
            n, d = a * sn, b * sd
        else:
            n, d = 0, 1
        num.append(n)
        den.append(d)
        near.append(n / d)
    return np.array(near, np.float64).astype(dtype), num, den


def _ulps_of(computed, exact, keep, dtype):
    """Worst error of ``computed`` against ``exact`` (``_exact``) in ulps of the rounded
    exact value (at least the dtype's tiny). A dropped entry's exact value is 0: a zero
    there (either sign) is exact, so only the kept entries and the nonzero dropped ones
    are compared; an entry equal to the rounded exact value has error 0."""
    rounded, num, den = exact
    c = computed.ravel()
    idx = np.flatnonzero((keep.ravel() | (c != 0)) & ~(c == rounded))
    spacing = np.maximum(np.spacing(np.abs(rounded[idx])).astype(np.float64),
                         float(np.finfo(dtype).tiny))
    worst = 0.0
    for i, cv, sp_ in zip(idx.tolist(), c[idx].tolist(), spacing.tolist()):
        a, b = cv.as_integer_ratio()            # |c - exact| of the two rationals
        worst = max(worst, abs((a * den[i] - num[i] * b) / (b * den[i])) / sp_)
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
        exact_x, exact_g = _exact(x, keep, rate, dtype), _exact(g, keep, rate, dtype)
        for threads in (1, 2):
            out = F.dropout(x, rate, seed, step, row0=5, n_threads=threads)
            vjp = F.dropout_vjp(x, g, rate, seed, step, row0=5, n_threads=threads)
            mask_ok &= bool(np.array_equal(out != 0, keep & (x != 0)))
            worst = max(worst, _ulps_of(out, exact_x, keep, dtype),
                        _ulps_of(vjp, exact_g, keep, dtype))
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


def epoch_masks(spec, B, t):
    """{position: B rows of exact factors m / (1 - p)} of the update ``t`` of a
    ``verify.train`` spec with ``"dropout"`` and ``"dropout_counters"`` (seeds, offsets),
    the masks from the twin's uint64 arithmetic; several dropouts at one position
    multiply."""
    import mpmath
    from nnlib._reference.dropout import dropout_mask
    seeds, offsets = spec["dropout_counters"]
    out = {}
    for (pos, rate), seed, offset in zip(spec["dropout"], seeds, offsets):
        c = spec["sizes"][pos]
        keep = dropout_mask(B, c, rate, seed, (offset + t) % 2**64)
        scale = 1 / (1 - mpmath.mpf(Fraction(rate).numerator) / Fraction(rate).denominator)
        rows = [[scale if k else mpmath.mpf(0) for k in row] for row in keep]
        prev = out.get(pos)
        out[pos] = rows if prev is None else [[a * b for a, b in zip(r, q)]
                                              for r, q in zip(prev, rows)]
    return out


def _epoch_specs(quick):
    """verify.train's specs with dropouts: per optimizer of EPOCH_OPTIMIZERS (with and
    without momentum for SGD) one network per placement (in --quick: one for all)."""
    from verify import train as T
    specs = []
    for index, (label, cls_name, cfg) in enumerate(T._configs()):
        if cls_name not in EPOCH_OPTIMIZERS:
            continue
        for spec in T._specs(index, cls_name, cfg, quick=True):
            for k, drop in enumerate(EPOCH_DROPOUTS):
                if quick and k != index % len(EPOCH_DROPOUTS):
                    continue
                # dropped outputs are exact zeros, several per row: ties, where hinge and
                # sparsemax have kinks in every draw
                if drop[-1][0] == 2 and spec["loss"] in ("hinge_loss", "sparsemax_loss"):
                    continue
                specs.append(dict(spec, index=spec["index"] + 10 * (k + 1), dropout=drop,
                                  dropout_counters=([11 + j for j in range(len(drop))],
                                                    [2**64 - 3 + j for j in
                                                     range(len(drop))]),
                                  label=label))
    return specs


def _inference_is_identity(dtype):
    """(ok, text): at inference the compiled objective of a network with dropouts equals
    that of the same network without them, bit for bit -- on a setup that has just
    trained with its masks (so its dropout buffers exist); and so do ``predict`` and
    ``evaluate`` of a Sequential with Dropout layers."""
    import nnlib
    from nnlib.training import compiled_train
    t = compiled_train()
    rng = np.random.default_rng(0)
    sizes = [3, 5, 4]
    W = [rng.standard_normal((a, b)).astype(dtype) for a, b in zip(sizes, sizes[1:])]
    b = [rng.standard_normal(m).astype(dtype) for m in sizes[1:]]
    X = rng.standard_normal((6, 3)).astype(dtype)
    y = rng.integers(0, 4, 6).astype(np.int64)
    out = []
    for drop in ([(0, 0.25), (1, 0.5), (2, 0.5)], []):
        s = t.EpochSetup(t.Network(sizes, [2, 0], [0.0, 0.0], drop), W, b, None, X,
                         np.empty((6, 0), dtype), y, t.Workspace(sizes, 6, 0, dtype), 0, 6)
        dWs = [np.empty_like(w) for w in W]
        dbs = [np.empty_like(v) for v in b]
        trained = t.loss_grad(s, dWs, dbs, train_step=1)[0] if drop else None
        out.append((t.loss_grad(s, dWs, dbs)[0], [g.copy() for g in dWs + dbs], trained))
    kernel_ok = out[0][0] == out[1][0] and all(
        np.array_equal(g, h) for g, h in zip(out[0][1], out[1][1])) and out[0][2] != out[0][0]
    layers = [nnlib.Dense(3, 5, "tanh", dtype=dtype, random_state=0),
              nnlib.Dense(5, 4, dtype=dtype, random_state=1)]
    bare = nnlib.Sequential(layers)
    dropped = nnlib.Sequential([nnlib.layers.Dropout(0.25), layers[0],
                                nnlib.layers.Dropout(0.5), layers[1]])
    model_ok = bool(np.array_equal(bare.predict(X), dropped.predict(X))
                    and bare.evaluate(X, y) == dropped.evaluate(X, y))
    return kernel_ok and model_ok, (
        f"loss_grad at inference {'equals' if kernel_ok else 'DIFFERS FROM'} the network "
        f"without dropout (bitwise, after a training call); Sequential.predict/evaluate "
        f"{'equal' if model_ok else 'DIFFER FROM'} the model without Dropout layers")


def _epoch_item(ctx):
    from verify import train as T
    t0 = time.perf_counter()
    rows, passed, worst = [], True, {}
    first = None
    for spec in _epoch_specs(ctx.quick):
        r = T.check_epoch(spec, ctx.dtypes, ctx.seed)
        rows.append((f"{spec['label']}, {spec['acts'][0].name} + {spec['loss']}, "
                     f"dropout {spec['dropout']}",
                     "; ".join(f"{dn}: {st['max_ulps']:.3g} ulp ({st['max_normwise_eps']:.3g}"
                               f" eps normwise), losses {st['loss_ulps']:.3g} ulp"
                               for dn, st in r["stats"].items())))
        for dn, st in r["stats"].items():
            worst[dn] = max(worst.get(dn, 0.0), st["max_normwise_eps"])
        if not r["passed"]:
            passed = False
            first = first or f"dropout {spec['dropout']}: {r['first_failure']}"
    head = [("definition", "training: $D_p = H_{p-1} m / (1 - p)$ on the input of layer $p$ "
                           r"(or the output), backward $dH = dD\, m / (1 - p)$; inference: "
                           "the identity"),
            ("run", "verify.train's epoch (loss_grad at the start, run_epoch over 7 rows "
                    "in batches of 3, then one step of a second call), the masks of each "
                    "update from the twin's counter arithmetic, counters wrapping past "
                    "2**64"),
            ("tolerance", "; ".join(f"{dn}: {t.ulps} ulp or {t.abs_eps} eps x the "
                                    f"group's max" for dn, t in T.TOL.items()))]
    for dn in ctx.dtypes:
        ok, text = _inference_is_identity(np.dtype(dn).type)
        head.append((f"inference {dn}", text))
        if not ok:
            passed = False
            first = first or f"{dn}: {text}"
    if first:
        head.append(("first failure", first))
    item = {"name": "epoch with dropout", "section": "kernels", "passed": passed,
            "verdict": ("pass (" + "/".join(f"{v:.2g}" for v in worst.values())
                        + " eps normwise)") if passed else "FAIL",
            "rows": head + [("network", "max error per dtype")] + rows,
            "seconds": round(time.perf_counter() - t0, 3)}
    if not passed:
        item["seed"] = ctx.seed
    return item


def run_dropout(ctx):
    if ctx.only and not any(ctx.wanted(n) for n in ITEM_NAMES + ["dropout_vjp"]):
        return []
    items = []
    if not ctx.only or ctx.wanted("epoch with dropout"):
        items.append(_epoch_item(ctx))
    if ctx.only and not (ctx.wanted("dropout") or ctx.wanted("dropout_vjp")):
        return items
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
    return [item] + items
