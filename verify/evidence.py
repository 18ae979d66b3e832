"""Numerical evidence: compiled results against the exact value, in ULPs.

Design note
-----------
The oracle is the SymPy expression (the definition, or its derived derivative) turned into
an mpmath function and evaluated at the *exact* value of each floating-point input (a
float32 or float64 number is a dyadic rational, so ``mpmath.mpf(float(x))`` is exact).
Evaluation is adaptive: the precision doubles (40, 80, ... 1280 digits) until two
consecutive values agree to 30 digits, or both lie below 2^-1100 (far under the smallest
float64 subnormal, so both round to zero). This matters at large |z|: the derivative of the
notes' tanh, a quotient of exponentials, cancels catastrophically at 40 digits; and a
float64 ``lambdify`` of sigma' is NaN at z = -800. A value below 2^-1100 at two
precisions is accepted only at a high precision (a cancellation such as log(1 + 1e-309)
gives exactly 0 at 40 digits) -- from ``ZERO_DPS`` (400) digits on, which resolves every
value down to 2^-1100.

The error of a computed value c against the exact value e is reported three ways:

* ULPs: |c - e| / ulp(e), with ulp(e) = 2^(max(floor(log2|e|), emin) - p + 1) the spacing of
  the dtype at e (Muller's definition; a correctly rounded result is within 0.5 ulp);
* relative: |c - e| / |e| (where |e| is in the normal range; 0 is reported below it);
* absolute in units of the dtype's machine epsilon.
"""
import functools
import math

import mpmath
import numpy as np

__all__ = ["exact", "ulp", "Measure", "measure", "edge_points", "random_points",
           "OracleError", "DTYPES", "mp_exp", "MPMATH", "lambdify"]

DTYPES = {"float64": np.float64, "float32": np.float32}
_TINY = mpmath.mpf(2) ** -1100
# A zero (or a value below 2^-1100) is accepted from this many digits on: a cancellation
# 1 + x - 1 with |x| >= 2^-1100 (~1e-331, below every float64 subnormal) is resolved there.
# (Accepting it only at 1280 digits cost most of the oracle's time: exp(+-1e300) at 1280
# digits for log(1 + e^-1e300), whose value is far below any dtype's range.)
ZERO_DPS = 400


_HALF = mpmath.mpf(0.5)


def mp_exp(x):
    """``mpmath.exp(x)`` to the working precision, without mpmath's integer shortcut.

    Above 600 bits of precision mpmath evaluates e^n for an integer-valued n as ``e ** n``
    by repeated squaring at 1.45 log2|n| extra bits: ~5 ms for n = 700 at 1280 digits, and
    the oracle reaches those digits at every input whose result is near zero (the edge
    points 1e300, 700, ... of every activation). Here such an n is shifted by one half,
    exactly, and the half put back as a factor: exp(n) = exp(n - 1/2) exp(1/2), both
    evaluated by the argument reduction mpmath uses for every other input (one extra
    rounding at the working precision, far below the oracle's 30 agreeing digits).

    Examples
    --------
    >>> import mpmath
    >>> with mpmath.workdps(400):
    ...     bool(abs(mp_exp(700) / mpmath.exp(700) - 1) < mpmath.mpf(10) ** -390)
    True
    """
    x = mpmath.mpf(x)
    if mpmath.mp.prec > 600 and mpmath.isfinite(x) and x and mpmath.isint(x):
        return mpmath.exp(mpmath.fsub(x, _HALF, exact=True)) * mpmath.exp(_HALF)
    return mpmath.exp(x)


# lambdify's modules for the oracle: mpmath, with its exp replaced by mp_exp.
MPMATH = [{"exp": mp_exp}, "mpmath"]


def lambdify(args, expr, modules=MPMATH, **kwargs):
    """``sympy.lambdify(args, expr, modules, **kwargs)`` (the oracle's modules unless
    told), without the docstring SymPy writes into the function: it prints the whole
    expression once more (``str``), besides the code, for every function made, and a
    cold run makes several hundred (the replays' rules, each kernel's oracle). The
    function itself, its code and so its values, are SymPy's."""
    import sympy as sp
    if _has_docstring_limit():
        kwargs.setdefault("docstring_limit", 0)      # "too large": no str(expr)
    return sp.lambdify(args, expr, modules, **kwargs)


@functools.lru_cache(maxsize=1)
def _has_docstring_limit():
    """SymPy's lambdify takes ``docstring_limit`` (from SymPy 1.13 on)."""
    import inspect
    import sympy as sp
    return "docstring_limit" in inspect.signature(sp.lambdify).parameters


class OracleError(ArithmeticError):
    """The high-precision evaluation did not settle."""


def exact(fn, *args, dps_start=40, dps_max=1280):
    """Evaluate ``fn(*args)`` (an mpmath function of mpf arguments, scalar or sequence
    result) with adaptive precision; returns mpf (or a list of mpf)."""
    prev = None
    dps = dps_start
    while dps <= dps_max:
        with mpmath.workdps(dps):
            try:
                val = fn(*args)
            except ZeroDivisionError:     # e.g. 1 - sigma(700) is 0 at 40 digits
                prev, dps = None, dps * 2
                continue
            cur = [mpmath.mpf(v) for v in val] if isinstance(val, (list, tuple)) else [
                mpmath.mpf(val)]
        if prev is not None and all(_settled(a, b, dps >= min(dps_max, ZERO_DPS))
                                    for a, b in zip(cur, prev)):
            return cur if isinstance(val, (list, tuple)) else cur[0]
        prev = cur
        dps *= 2
    raise OracleError(f"oracle did not settle at {dps_max} digits for {args}")


def _agree(_by_prec={}):
    """10^-30 (two values agree to 30 digits) at the working precision, made once per
    precision: the power is most of the cost of comparing two values."""
    prec = mpmath.mp.prec
    tol = _by_prec.get(prec)
    if tol is None:
        tol = _by_prec[prec] = mpmath.mpf(10) ** -30
    return tol


def _settled(a, b, last):
    """Whether two successive values (mpf) of the oracle agree: to 30 digits, or both 0 or
    both below 2^-1100 at the last precision (``last``). Computed at the caller's working
    precision, in mpmath's own arithmetic on the values' ``_mpf_`` tuples: the operations
    and roundings of ``abs(a - b) <= 10^-30 max(|a|, |b|)`` on mpf, without making an mpf
    of each intermediate (this test runs for every value the oracle settles)."""
    # Values below 2^-1100 are only accepted at the highest precision: at lower precision a
    # cancellation (log(1 + 1e-309) at 40 digits) can give 0 for a representable result.
    a, b = a._mpf_, b._mpf_
    if a == _FNAN or b == _FNAN:
        return False
    if a == _FZERO and b == _FZERO:
        return last
    prec, rnd = mpmath.mp._prec_rounding
    abs_a, abs_b = _mpf_abs(a, prec, rnd), _mpf_abs(b, prec, rnd)
    big = abs_b if _mpf_gt(abs_b, abs_a) else abs_a          # max(|a|, |b|)
    if _mpf_le(_mpf_abs(_mpf_sub(a, b, prec, rnd), prec, rnd),
               _mpf_mul(_agree()._mpf_, big, prec, rnd)):
        return True
    return last and _mpf_lt(abs_a, _TINY._mpf_) and _mpf_lt(abs_b, _TINY._mpf_)


_FNAN, _FZERO = mpmath.libmp.fnan, mpmath.libmp.fzero
_mpf_abs, _mpf_sub, _mpf_mul = mpmath.libmp.mpf_abs, mpmath.libmp.mpf_sub, mpmath.libmp.mpf_mul
_mpf_gt, _mpf_le, _mpf_lt = mpmath.libmp.mpf_gt, mpmath.libmp.mpf_le, mpmath.libmp.mpf_lt
_mpf_ge, _mpf_pos, _mpf_div = mpmath.libmp.mpf_ge, mpmath.libmp.mpf_pos, mpmath.libmp.mpf_div
_mpf_shift = mpmath.libmp.mpf_shift
_from_float, _to_float = mpmath.libmp.from_float, mpmath.libmp.to_float


def ulp(e, dtype):
    """Spacing of ``dtype`` at the exact value ``e`` (an mpf)."""
    p, emin = _limits(dtype)[:2]
    if e == 0:
        return mpmath.ldexp(1, emin - p + 1)
    _, ex = mpmath.frexp(e)           # e = m 2^ex, 1/2 <= |m| < 1
    return mpmath.ldexp(1, max(int(ex) - 1, emin) - p + 1)


def _limits(dtype, _of={}):
    """(precision p, minimum exponent, eps, max, tiny, log2 eps, the overflow bound of
    ``measure`` as an mpf, tiny as an mpf's ``_mpf_`` tuple) of ``dtype``, once per dtype:
    ``measure`` runs for every point of every check."""
    got = _of.get(dtype)
    if got is None:
        info = np.finfo(dtype)
        eps, big = float(info.eps), float(info.max)
        got = _of[dtype] = (info.nmant + 1, info.minexp, eps, big, float(info.tiny),
                            math.frexp(eps)[1] - 1, mpmath.mpf(big * (1 + eps / 2)),
                            _from_float(float(info.tiny)))
    return got


class Measure:
    """Error of one computed value against the exact one."""
    __slots__ = ("ulps", "rel", "abs_eps", "computed", "exact")

    def __init__(self, ulps, rel, abs_eps, computed, exact_):
        self.ulps, self.rel, self.abs_eps = ulps, rel, abs_eps
        self.computed, self.exact = computed, exact_


def measure(c, e, dtype):
    """Compare a computed float ``c`` with the exact mpf ``e`` in ``dtype``'s units."""
    return measure_with_difference(c, e, dtype)[0]


def measure_with_difference(c, e, dtype):
    """``(measure(c, e, dtype), d)``: d the ``_mpf_`` tuple of ``|mpf(c) - e|`` at the
    working precision as measure computes it (so ``d / s`` is ``abs(mpf(c) - e) / s``
    with the same roundings), or None where measure takes none (c not finite, e
    overflowing the dtype or not an mpf)."""
    c = float(c)
    p, emin, eps, big, tiny, eps_exp, over, tiny_m = _limits(dtype)
    if math.isnan(c):
        return Measure(math.inf, math.inf, math.inf, c, e), None
    if type(e) is _MPF and e._mpf_[1]:                 # a finite, non-zero mpf
        # |e|, d = |mpf(c) - e|, d / ulp(e), d / eps, d / |e| and the comparisons with
        # the overflow bound and tiny, with the operations and roundings of those mpf
        # expressions at the working precision, on the values' _mpf_ tuples (this runs
        # for every value every check compares). d / ulp(e) and d / eps divide by powers
        # of two, which is exact: shifts of d (the same mpf, so the same float); ulp(e)'s
        # exponent is read off e = man 2^exp (bc bits of man), as frexp reads it
        prec, rnd = mpmath.mp._prec_rounding
        em = e._mpf_
        aem = _mpf_abs(em, prec, rnd)
        if _mpf_gt(aem, over._mpf_):                   # e overflows the dtype
            v = 0.0 if math.isinf(c) and (c > 0) == (e > 0) else math.inf
            return Measure(v, v, v, c, e), None
        if math.isinf(c):
            return Measure(math.inf, math.inf, math.inf, c, e), None
        dm = _mpf_abs(_mpf_sub(_mpf_pos(_from_float(c), prec, rnd), em, prec, rnd),
                      prec, rnd)
        _, _, exp, bc = em
        ulps = _to_float(_mpf_shift(dm, p - 1 - max(exp + bc - 1, emin)), rnd=rnd)
        abs_eps = _to_float(_mpf_shift(dm, -eps_exp), rnd=rnd)
        # relative error is only meaningful where the dtype has full precision (normal
        # range)
        rel = _to_float(_mpf_div(dm, aem, prec, rnd), rnd=rnd) if _mpf_ge(aem, tiny_m) \
            else 0.0
        return Measure(ulps, rel, abs_eps, c, e), dm
    ae = abs(e)                                        # e is zero, or not an mpf
    if ae > big * (1 + eps / 2):                       # e overflows the dtype
        ok = math.isinf(c) and (c > 0) == (e > 0)
        v = 0.0 if ok else math.inf
        return Measure(v, v, v, c, e), None
    if math.isinf(c):
        return Measure(math.inf, math.inf, math.inf, c, e), None
    d = abs(mpmath.mpf(c) - e)
    ulps, abs_eps = float(d / ulp(e, dtype)), float(d / eps)
    rel = float(d / ae) if ae >= tiny else 0.0
    return Measure(ulps, rel, abs_eps, c, e), (d._mpf_ if type(d) is _MPF else None)


_MPF = type(mpmath.mpf(1))


def edge_points(dtype):
    """Edge inputs for an elementwise kernel: 0, +-tiny (subnormal, smallest normal),
    +-small, the exp cut-offs, large |z| and the largest finite value."""
    info = np.finfo(dtype)
    pos = [info.smallest_subnormal, info.tiny, 1e-30, 1e-8, 1e-4, 0.5, 1.0, 2.0, 5.0,
           18.0, 20.0, 30.0, 33.3, 37.0, 40.0, 88.0, 100.0, 1e4]
    if dtype == np.float64:
        pos += [700.0, 710.0, 745.0, 800.0, 1e30, 1e300]
    else:
        pos += [1e30]
    pos.append(float(info.max))
    vals = [0.0] + pos + [-p for p in pos]
    arr = np.array(vals, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        arr = arr.astype(dtype)
    return np.unique(arr[np.isfinite(arr)])


def random_points(dtype, n, rng):
    """``n`` random inputs: normal at three scales and log-uniform magnitudes."""
    k = max(n // 4, 1)
    parts = [rng.standard_normal(k), rng.standard_normal(k) * 5, rng.standard_normal(k) * 30,
             rng.choice([-1.0, 1.0], k) * 10.0 ** rng.uniform(-20, 20 if dtype == np.float64
                                                               else 15, k)]
    return np.concatenate(parts).astype(dtype)
