"""Where the ticks of an axis go and how they are labelled: matplotlib's default locators
and formatters (MaxNLocator with the steps 1, 2, 2.5, 5, 10; LogLocator; ScalarFormatter
and LogFormatterSciNotation) restated on plain floats, so that a figure has the ticks its
matplotlib version had.

A label is a string, or ``(mantissa, exponent)`` for a power written with a superscript
(``("10", -3)`` is 10⁻³, ``("2×10", -3)`` is 2×10⁻³), which the figure draws as a
``<tspan>``.
"""
import math

from verify.svg.text import MINUS

__all__ = ["tick_space", "linear_ticks", "linear_labels", "log_ticks", "margins"]

_STEPS = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0)   # MaxNLocator's staircase
_MAX = 1.7976931348623157e308      # the largest double
# matplotlib's nonsingular: a view whose largest magnitude is below this is drawn as
# -0.001 .. 0.001 (1e21 times the smallest normal double)
_TINY_VIEW = 1e21 * 2.2250738585072014e-308
_E_MIN, _E_MAX = -323, 308        # the powers of ten that are positive finite doubles


def tick_space(length_px, font_px, horizontal):
    """How many ticks fit on an axis ``length_px`` long with labels ``font_px`` high
    (matplotlib's Axis.get_tick_space: a label is at most 3 times as wide as high on an x
    axis, and y labels are 2 heights apart)."""
    return max(0, int(math.floor(length_px / (font_px * (3 if horizontal else 2)))))


def margins(lo, hi, frac=0.05):
    """``(lo, hi)`` widened by ``frac`` of their span at each end (matplotlib's autoscale
    margins); a zero span is widened as matplotlib's nonsingular does, and data all within
    _TINY_VIEW of 0 is drawn as 0 is (nonsingular's rule); the view stays finite."""
    if hi < lo:
        lo, hi = hi, lo
    if 0 < max(abs(lo), abs(hi)) < _TINY_VIEW:
        lo = hi = 0.0
    if hi == lo:
        d = abs(lo) * 0.001 if lo else 0.001
        if not lo:
            return -0.055, 0.055
        return max(lo - d - (2 * d) * frac, -_MAX), min(hi + d + (2 * d) * frac, _MAX)
    d = (hi - lo) * frac
    if math.isinf(d):                  # a span over most of the doubles
        d = hi * frac - lo * frac
    return max(lo - d, -_MAX), min(hi + d, _MAX)


def linear_ticks(lo, hi, nbins):
    """The ticks MaxNLocator(nbins) puts in [lo, hi] (those drawn: inside the view), and
    their step.

    Examples
    --------
    >>> linear_ticks(0.0, 1.0, 5)
    ([0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0], 0.2)
    """
    if hi < lo:
        lo, hi = hi, lo
    if max(abs(lo), abs(hi)) < _TINY_VIEW:
        lo = hi = 0.0
    if not hi > lo:
        lo, hi = (lo - 1, hi + 1) if lo == 0 else (lo - abs(lo) * 0.001, hi + abs(hi) * 0.001)
    lo, hi = max(lo, -_MAX), min(hi, _MAX)     # a view is of doubles
    nbins = min(max(1, nbins), 9)
    dv = hi - lo
    if dv > 1e306:     # a span near the doubles' (20 steps would overflow): a tenth's ticks
        ticks, step = linear_ticks(lo / 10, hi / 10, nbins)
        return [10 * t for t in ticks if abs(10 * t) <= _MAX], 10 * step
    meanv = hi / 2 + lo / 2              # (hi + lo) / 2 without overflow: the same double
    offset = 0.0 if abs(meanv) / dv < 100 else math.copysign(
        10 ** (math.log10(abs(meanv)) // 1), meanv)
    scale = 10 ** (math.log10(dv / nbins) // 1)
    _lo, _hi = lo - offset, hi - offset
    steps = [s * scale for s in _STEPS]
    raw = (_hi - _lo) / nbins
    istep = next((k for k, s in enumerate(steps) if s >= raw), len(steps) - 1)
    tol = max(1e-10, min(0.4999, 10 ** (math.log10(abs(offset) / scale) - 12))) \
        if offset else 1e-10
    for step in steps[:istep + 1][::-1]:
        best = (_lo // step) * step
        d, m = divmod(_lo - best, step)
        low = d + 1 if abs(m / step - 1) < tol else d
        d, m = divmod(_hi - best, step)
        high = d if abs(m / step) < tol else d + 1
        ticks = [k * step + best for k in range(int(low), int(high) + 1)]
        shown = [t for t in ticks if _lo <= t <= _hi]
        if len(shown) >= 2:
            break
    # in view by matplotlib's test: within 1e-10 of the span beyond either end
    slack = (_hi - _lo) * 1e-10
    return [t + offset for t in ticks
            if _lo - slack <= t <= _hi + slack and abs(t + offset) <= _MAX], step


def linear_labels(ticks, step):
    """ScalarFormatter's labels of ``ticks`` (spaced ``step``) and its offset text: as
    many decimals as the step needs, a Unicode minus, and a power of ten moved into the
    offset text ("1e−6") when the largest tick is below 1e-4 or at least 1e6."""
    if not ticks:
        return [], ""
    big = max(abs(t) for t in ticks)
    oom = 0
    if big:
        e = math.floor(math.log10(big))
        if e <= -5 or e >= 6:
            oom = e
    scale = 10.0 ** -oom
    s = step * scale
    dec = max(0, -math.floor(math.log10(s) + 1e-9))
    while dec < 12 and abs(round(s * 10 ** dec) - s * 10 ** dec) > 1e-6 * s * 10 ** dec:
        dec += 1
    out = []
    for t in ticks:
        v = t * scale
        if abs(v) < s * 1e-9:
            v = 0.0
        out.append(f"{v:.{dec}f}".replace("-", MINUS))
    offset = f"1e{oom}".replace("-", MINUS) if oom else ""
    return out, offset


def _decades(efmin, efmax, n_request):
    """LogLocator's major decades (exponents) for a view of 10**efmin .. 10**efmax, and
    the stride between them (matplotlib 3.8+'s choice: as many ticks as fit, at most
    ``n_request``, at multiples of the stride where possible)."""
    emin, emax = math.ceil(efmin), math.floor(efmax)
    n_avail = emax - emin + 1
    stride = n_avail // (n_request + 1) + 1
    nr = math.ceil(n_avail / stride)
    if nr <= n_request:
        n_request = nr
    if n_request <= 0:
        return [emin - 1, emax + 1], emax - emin + 2
    if n_request == 1:
        mid = round((efmin + efmax) / 2)
        stride = max(mid - (emin - 1), (emax + 1) - mid)
        return [mid - stride, mid, mid + stride], stride
    stride = (n_avail - 1) // (n_request - 1)
    if stride < n_avail / n_request:
        stride = n_avail // n_request
    olo = max(n_avail - stride * n_request, 0)
    ohi = min(n_avail - stride * (n_request - 1), stride)
    offset = (-emin) % stride
    if not olo <= offset < ohi:
        offset = olo
    return list(range(emin + offset - stride, emax + stride + 1, stride)), stride


_SUBSET = {2, 3, 4, 6}    # the minor ticks LogFormatter labels on a view of 0.4-1 decade


def log_ticks(llo, lhi, n_request, minor=True):
    """Ticks of a base-10 log axis whose view is 10**llo .. 10**lhi: (major, minor), each
    [(value, label)] inside the view, labels as LogFormatterSciNotation writes them
    (``("10", e)``; a minor tick labelled only on a view of at most one decade, as
    ``("2×10", e)``). ``n_request``: tick_space() clipped to 2..9 as LogLocator does.

    Examples
    --------
    >>> [lab for _, lab in log_ticks(-3.2, 1.5, 9)[0]]
    [('10', -3), ('10', -2), ('10', -1), ('10', 0), ('10', 1)]
    """
    n_request = min(max(n_request, 2), 9)
    decades, stride = _decades(llo, lhi, n_request)
    eps = (lhi - llo) * 1e-10
    major = [(10.0 ** e, ("10", e)) for e in decades
             if llo - eps <= e <= lhi + eps and _E_MIN <= e <= _E_MAX]
    minor_ticks = []
    emin, emax = math.ceil(llo), math.floor(lhi)
    n_avail = emax - emin + 1
    if minor and n_avail < 10 and (stride == 1 or n_avail <= 1):
        numdec = lhi - llo
        for e in range(max(emin - 1, _E_MIN), min(emax, _E_MAX) + 1):
            for m in range(2, 10):
                v = m * 10.0 ** e
                lv = math.log10(v)
                if not llo - eps <= lv <= lhi + eps:
                    continue
                label = None
                if numdec <= 0.4 or (numdec <= 1 and m in _SUBSET):
                    label = (f"{m}×10", e)
                minor_ticks.append((v, label))
    return major, minor_ticks
