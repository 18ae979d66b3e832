"""Public API: verify a kernel (yours or nnlib's) against a SymPy definition.

    >>> import sympy as sp, verify
    >>> z = sp.Symbol("z", real=True)
    >>> r = verify.check_elementwise(1 / (1 + sp.exp(-z)), z, my_sigmoid, my_sigmoid_vjp)
    >>> r.passed, r.first_failure

``forward(x)`` and ``vjp(x, grad_out)`` take and return NumPy arrays (any shape; they are
called once per dtype with a 1-d array of test points). The derivative is derived by SymPy
from ``expr``; kinks (the boundaries of a Piecewise, or of Max/Min/Abs/Heaviside rewritten
as one) are found automatically, and at a kink the kernel's derivative is accepted iff it
lies in the interval spanned by the one-sided derivatives (the Clarke subdifferential of a
piecewise-smooth function of one variable) — never by differencing.
"""
import math
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp

from verify.evidence import (DTYPES, MPMATH, OracleError, edge_points, exact, lambdify,
                             measure, random_points)
from verify.registry import Tolerance
from verify.subgradient import subgradient_measure

__all__ = ["check_elementwise", "check_map", "check_loss", "CheckResult", "Failure"]

_DEFAULT_TOL = {"float64": Tolerance(4), "float32": Tolerance(1)}


@dataclass
class Failure:
    """One failing point: which output, dtype, the input, what was computed and expected."""
    which: str
    dtype: str
    point: object
    got: object
    expected: object
    ulps: float = math.nan
    detail: str = ""

    def __str__(self):
        return (f"{self.which} [{self.dtype}] at {self.point}: got {self.got}, expected "
                f"{self.expected} ({self.ulps:.3g} ulp) {self.detail}").rstrip()


@dataclass
class CheckResult:
    """Outcome of a check. ``passed`` is True iff no point failed. ``stats[which][dtype]``
    holds max_ulps, max_rel, max_abs_eps (absolute error / eps), n_points, tolerance."""
    name: str
    passed: bool = True
    stats: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    n_failures: int = 0
    notes: list = field(default_factory=list)
    kinks: list = field(default_factory=list)   # non-differentiable points met (see _kink)
    samples: dict = field(default_factory=dict)  # which -> dtype -> [ulps per point] (plots)
    points: dict = field(default_factory=dict)   # which -> dtype -> [{x, got, exact, ulps}]

    @property
    def smallest_failure(self):
        """The failing point with the smallest input found (fewest values, then smallest
        magnitudes): the easiest one to replay by hand."""
        return self.smallest

    @property
    def first_failure(self):
        return self.failures[0] if self.failures else None

    def _fail(self, f):
        self.passed = False
        self.n_failures += 1
        if len(self.failures) < 20:
            self.failures.append(f)
        if self.smallest is None or _input_size(f.point) < _input_size(self.smallest.point):
            self.smallest = f

    smallest = None      # the failure with the smallest input (see _input_size)

    def _kink(self, which, dtype, point, subdifferential, picked, ok):
        """Record the element a kernel picked at a non-differentiable point (first 400)."""
        if len(self.kinks) < 400:
            self.kinks.append(dict(which=which, dtype=dtype, point=point,
                                   subdifferential=subdifferential, picked=picked,
                                   valid=bool(ok)))

    def _stat(self, which, dtype, m, tol, scale=1.0, ok=True, point=None):
        s = self.stats.setdefault(which, {}).setdefault(dtype, dict(
            max_ulps=0.0, max_rel=0.0, max_abs_eps=0.0, n_points=0, n_failed=0,
            tolerance=tol.as_dict() if tol else None))
        s["n_points"] += 1
        s["n_failed"] += (not ok)
        if m is not None:
            self.samples.setdefault(which, {}).setdefault(dtype, []).append(m.ulps)
        if point is not None:       # the data the report's plots are drawn from
            self.points.setdefault(which, {}).setdefault(dtype, []).append(
                dict(point, ulps=m.ulps if m is not None else None, ok=bool(ok)))
            s["max_ulps"] = max(s["max_ulps"], m.ulps)
            s["max_rel"] = max(s["max_rel"], m.rel)
            s["max_abs_eps"] = max(s["max_abs_eps"], m.abs_eps / scale if scale else m.abs_eps)
        if m is not None and tol:
            # the error as a fraction of the bound the point passed by (the looser of the
            # two): <= 1 passes; "by_abs" counts the points only the absolute bound passed
            of_ulps = m.ulps / tol.ulps if tol.ulps else (0.0 if m.ulps == 0 else math.inf)
            of_abs = (m.abs_eps / (tol.abs_eps * max(scale, 1e-300))
                      if tol.abs_eps is not None else math.inf)
            s["of_tolerance"] = max(s.get("of_tolerance", 0.0), min(of_ulps, of_abs))
            s["n_by_abs"] = s.get("n_by_abs", 0) + (of_ulps > 1 and of_abs <= 1)

    def as_dict(self):
        return {"name": self.name, "passed": self.passed, "stats": self.stats,
                "n_failures": self.n_failures,
                "first_failure": str(self.first_failure) if self.failures else None,
                "smallest_failure": str(self.smallest) if self.smallest else None,
                "failures": [str(f) for f in self.failures[:5]], "notes": self.notes,
                "kinks": self.kinks, "ulp_histogram": self.ulp_histogram()}

    def ulp_histogram(self):
        """Counts of the per-point ULP errors in decades: [0, 0.5], (0.5, 1], (1, 10], ...
        (the report's JSON and plots; the raw samples stay in ``samples``)."""
        edges = [0.5, 1.0, 10.0, 1e2, 1e4, 1e8, 1e16, math.inf]
        out = {}
        for which, per in self.samples.items():
            for dt, vals in per.items():
                counts = [0] * len(edges)
                for u in vals:
                    k = next((i for i, e in enumerate(edges) if u <= e), len(edges) - 1)
                    counts[k] += 1
                out.setdefault(which, {})[dt] = counts
        return {"upper_edges": [str(e) for e in edges], "counts": out}

    def __repr__(self):
        head = f"CheckResult({self.name!r}, passed={self.passed}"
        return head + (f", first_failure={str(self.first_failure)!r})" if self.failures
                       else ")")


def _input_size(point):
    """Sort key of a failing input: (number of values, largest magnitude)."""
    if isinstance(point, (int, float)):
        return (1, abs(point) if point == point else math.inf)
    if isinstance(point, (list, tuple)):
        flat = np.ravel(np.asarray(point, dtype=object)).tolist()
        try:
            return (len(flat), max((abs(float(v)) for v in flat), default=0.0))
        except (TypeError, ValueError):
            return (len(flat), math.inf)
    return (math.inf, len(str(point)))


def _ok(m, tol, scale=1.0):
    if m.ulps <= tol.ulps:
        return True
    return tol.abs_eps is not None and m.abs_eps <= tol.abs_eps * max(scale, 1e-300)


def _mpf(v):
    return mpmath.mpf(float(v))


def _call(res, dname, dt, X, forward, vjp, rng):
    """Run the kernels on X with a random grad_out; None (and a failure) on a wrong
    output dtype or shape."""
    G = (rng.uniform(0.5, 2.0, X.shape) * rng.choice([-1.0, 1.0], X.shape)).astype(dt)
    got = np.asarray(forward(X))
    gv = np.asarray(vjp(X, G)) if vjp is not None else None
    for which, arr in (("forward", got), ("vjp", gv)):
        if arr is not None and (arr.shape != X.shape or arr.dtype != dt):
            res._fail(Failure(which, dname, "all", f"{arr.dtype}{arr.shape}",
                              f"{np.dtype(dt)}{X.shape}", detail="wrong dtype or shape"))
            return None
    return G, got, gv


# ---------------------------------------------------------------------------- elementwise

def _kinks(expr, symbol):
    """Boundary points of the pieces of ``expr`` (rewritten as a Piecewise)."""
    e = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    pts = set()
    for pw in e.atoms(sp.Piecewise):
        for _, cond in pw.args:
            for rel in cond.atoms(sp.Rel) if not isinstance(cond, sp.Rel) else [cond]:
                if symbol in rel.free_symbols:
                    sol = sp.solve(sp.Eq(rel.lhs, rel.rhs), symbol)
                    pts.update(s for s in sol if s.is_real)
    return sorted(pts, key=float), e


def _one_sided(dexpr, symbol, k):
    """Left and right limits of the derivative at the kink ``k`` (exact, by SymPy). The
    point is written k -+ t with t > 0 first, so the Piecewise picks the piece on that side
    (a plain ``limit`` would evaluate the Piecewise's branch *at* k)."""
    t = sp.Dummy("t", positive=True)
    return (sp.limit(dexpr.subs(symbol, k - t), t, 0, "+"),
            sp.limit(dexpr.subs(symbol, k + t), t, 0, "+"))


def _interval_pick(d, lo, hi):
    """Where the derivative value d the kernel used lies relative to [lo, hi]."""
    lo, hi = float(lo), float(hi)
    near = lambda a: math.isclose(d, a, rel_tol=1e-6, abs_tol=1e-300)  # noqa: E731
    where = ("the only element" if lo == hi and near(lo) else "lower end" if near(lo) else
             "upper end" if near(hi) else "interior" if lo < d < hi else "outside")
    return f"{d:.6g} ({where})"


def check_elementwise(expr, symbol, forward, vjp=None, *, params=None, dtypes=None,
                      points=None, tol=None, vjp_tol=None, n_random=200, seed=0,
                      name=None):
    """Check an elementwise kernel ``forward`` (and its ``vjp``) against ``expr(symbol)``.

    Parameters
    ----------
    expr : sympy.Expr
        The definition, a function of ``symbol`` (declare it ``real=True``).
    forward : callable, ``forward(x) -> array`` of x's shape and dtype.
    vjp : callable or None, ``vjp(x, grad_out) -> array``, the kernel's d/dx of
        ``sum(grad_out * forward(x))``.
    params : dict or None
        ``{sympy.Symbol: value}`` substituted into ``expr`` (e.g. a leaky slope).
    dtypes : list of str, default ``["float64", "float32"]``.
    points : array_like or None
        Inputs to test; default: edge points (0, +-tiny, large |x|, the extremes) plus
        ``n_random`` random points, per dtype.
    tol, vjp_tol : dict dtype -> Tolerance, default 4 ulp (float64), 1 ulp (float32).

    Returns
    -------
    CheckResult
        ``passed``, ``first_failure`` (which, dtype, point, got, expected, ulps) and per
        dtype the largest error in ULPs.
    """
    expr = sp.sympify(expr).subs(params or {})
    dtypes = list(dtypes or DTYPES)
    tol = tol or _DEFAULT_TOL
    vjp_tol = vjp_tol or _DEFAULT_TOL
    res = CheckResult(name or str(expr))
    kinks, pw = _kinks(expr, symbol)
    dexpr = sp.diff(pw, symbol)
    f_exact = lambdify(symbol, pw, MPMATH)
    d_exact = lambdify(symbol, dexpr, MPMATH)
    kink_range = {}
    for k in kinks:
        lo, hi = _one_sided(dexpr, symbol, k)
        kink_range[float(k)] = (min(lo, hi), max(lo, hi))
        fl, fr = _one_sided(pw, symbol, k)
        if sp.simplify(fl - fr) != 0:
            # a jump: no subgradient exists; the kernel's value is held to the limits of
            # the derivative from both sides (the a.e. derivative extended to the point)
            kink_range[float(k)] += (f"none (jump {fl} -> {fr}); limits of the a.e. "
                                     f"derivative: [{min(lo, hi)}, {max(lo, hi)}]",)
            res.notes.append(f"jump at {k}: f -> {fl} from the left, {fr} from the right; "
                             f"derivative -> {lo}, {hi}")
        else:
            kink_range[float(k)] += (f"[{min(lo, hi)}, {max(lo, hi)}]",)
            res.notes.append(f"kink at {k}: one-sided derivatives {lo}, {hi}")
    rng = np.random.default_rng(seed)
    for dname in dtypes:
        dt = DTYPES[dname]
        if points is None:
            xs = np.concatenate([edge_points(dt), random_points(dt, n_random, rng),
                                 np.array([float(k) for k in kinks], dtype=dt)])
        else:
            xs = np.asarray(points, dtype=np.float64).astype(dt)
        xs = np.ascontiguousarray(xs)
        called = _call(res, dname, dt, xs, forward, vjp, rng)
        if called is None:
            continue
        g, got_f, got_v = called
        exacts = _elementwise_exacts(pw, dexpr, symbol, f_exact, d_exact, xs,
                                     [float(x) in kink_range for x in xs], got_v is not None)
        for i, x in enumerate(xs):
            xm = _mpf(x)
            e, e_d = exacts[i]
            if e is None:
                res.notes.append(f"oracle undefined at {x!r}")
                continue
            m = measure(got_f[i], e, dt)
            ok = _ok(m, tol[dname])
            res._stat("forward", dname, m, tol[dname], ok=ok,
                      point=dict(x=float(x), got=float(got_f[i]), exact=float(e)))
            if not ok:
                res._fail(Failure("forward", dname, float(x), float(got_f[i]),
                                  mpmath.nstr(e, 17), m.ulps))
            if got_v is None:
                continue
            gi = _mpf(g[i])
            if float(x) in kink_range:
                # A subgradient up to rounding: the distance from the computed value to the
                # interval grad_out * [lo, hi] is measured in ULPs of the nearest end.
                lo, hi, subdiff = kink_range[float(x)]
                if not (lo.is_finite and hi.is_finite):
                    res._fail(Failure("vjp", dname, float(x), float(got_v[i]), "finite",
                                      detail="infinite one-sided derivative at the kink"))
                    continue
                ends = sorted([sp.Float(lo, 40)._to_mpmath(140) * gi,
                               sp.Float(hi, 40)._to_mpmath(140) * gi])
                c = mpmath.mpf(float(got_v[i]))
                nearest = min(max(c, ends[0]), ends[1])
                m = measure(got_v[i], nearest, dt)
                ok = _ok(m, vjp_tol[dname], abs(float(g[i])))
                res._stat("vjp", dname, m, vjp_tol[dname], abs(float(g[i])), ok=ok,
                          point=dict(x=float(x), got=float(got_v[i]) / float(g[i]),
                                     exact=None, interval=(float(lo), float(hi))))
                res._kink("vjp", dname, float(x), subdiff,
                          _interval_pick(float(got_v[i]) / float(g[i]), lo, hi), ok)
                if not ok:
                    res._fail(Failure("vjp", dname, float(x), float(got_v[i]),
                                      f"grad_out*[{lo}, {hi}] with grad_out={float(g[i])}",
                                      m.ulps, "not a subgradient at the kink"))
                continue
            if e_d is None:
                res.notes.append(f"derivative oracle undefined at {x!r}")
                continue
            e = e_d * gi
            m = measure(got_v[i], e, dt)
            scale = abs(float(g[i]))
            ok = _ok(m, vjp_tol[dname], scale)
            res._stat("vjp", dname, m, vjp_tol[dname], scale, ok=ok,
                      point=dict(x=float(x), got=float(got_v[i]) / float(g[i]),
                                 exact=float(e / gi)))
            if not ok:
                res._fail(Failure("vjp", dname, float(x), float(got_v[i]),
                                  mpmath.nstr(e, 17), m.ulps, f"(grad_out={float(g[i])})"))
    return res


def _sympy_own(*exprs):
    """Whether every node of ``exprs`` is of a class SymPy defines. srepr names a user's
    function (an ``implemented_function``, a Function subclass, an undefined ``f(x)``) but
    not the numerical implementation lambdify evaluates, so an expression with one cannot
    key a cache entry: its exact values are derived afresh every run."""
    for e in exprs:
        for node in sp.preorder_traversal(sp.sympify(e)):
            module = type(node).__module__ or ""
            if not module.startswith("sympy.") or \
                    isinstance(node, sp.core.function.AppliedUndef):
                return False
    return True


def _elementwise_exacts(pw, dexpr, symbol, f_exact, d_exact, xs, at_kink, with_d):
    """[(exact value, exact derivative)] at each point of ``xs`` (None where the oracle is
    undefined; no derivative at a kink, or without ``with_d``). Exact values of SymPy's
    expressions at the given numbers: derived once, then read from verify.cache bit for
    bit (the key holds the expressions, by ``srepr``, and the points' bits)."""
    from verify import cache

    def compute():
        out = []
        for x, kink in zip(xs, at_kink):
            xm = _mpf(x)
            try:
                e = exact(f_exact, xm)
            except (OracleError, TypeError):
                out.append((None, None))
                continue
            d = None
            if with_d and not kink:
                try:
                    d = exact(d_exact, xm)
                except (OracleError, TypeError):
                    pass
            out.append((e, d))
        return out
    if not _sympy_own(pw, dexpr):
        return compute()
    payload = (sp.srepr(pw), sp.srepr(dexpr), sp.srepr(symbol), xs.dtype.str, xs.tobytes(),
               list(at_kink), with_d)
    return [tuple(p) for p in cache.exact_values("elementwise", payload, compute)]


# ------------------------------------------------------------------------- maps and losses

def _sym_oracle(exprs, symbols, params):
    """(values, [Jacobian]) oracle from SymPy expressions of ``symbols``."""
    exprs = [sp.sympify(e).subs(params or {}) for e in exprs]
    jac = sp.Matrix(exprs).jacobian(list(symbols))
    # the Jacobian's C^2 entries share their exponentials: evaluated once each (cse)
    fv = lambdify(list(symbols), exprs, MPMATH, cse=True)
    fj = lambdify(list(symbols), list(jac), MPMATH, cse=True)
    c = len(symbols)

    def oracle(row):
        vals = exact(lambda *a: fv(*a), *row)
        flat = exact(lambda *a: fj(*a), *row)
        return vals, [[flat[i * c:(i + 1) * c] for i in range(len(exprs))]]
    # what its answers are a function of, besides the row (check_map caches them)
    if _sympy_own(*exprs):
        oracle.cache_key = (sp.srepr(exprs), sp.srepr(list(symbols)))
    return oracle


def _oracle_answers(oracle, Z):
    """``oracle``'s answer for each row of ``Z``; for a SymPy oracle (``_sym_oracle``: exact
    values of expressions at the given numbers) derived once, then read from verify.cache
    bit for bit (the key holds the expressions, by ``srepr``, and the rows' bits)."""
    key = getattr(oracle, "cache_key", None)
    if key is None:
        return [oracle([_mpf(v) for v in Z[r]]) for r in range(Z.shape[0])]
    # a row the map's two dtypes share (its fixed rows: zeros, ties, 1e4, ...) is answered
    # once per oracle: a SymPy oracle's answer is a function of the row's numbers
    answered = oracle.__dict__.setdefault("answered", {})

    def compute():
        out = []
        for r in range(Z.shape[0]):
            row = [_mpf(v) for v in Z[r]]
            at = tuple(x._mpf_ for x in row)
            if at not in answered:
                answered[at] = oracle(row)
            out.append(answered[at])
        return out
    from verify import cache
    return cache.exact_values("map", (key, Z.dtype.str, Z.shape, Z.tobytes()), compute)


def map_rows(dtype, n_random, rng, c):
    """Test rows for a map over the last axis: random rows at several scales, ties,
    all-equal rows, one huge entry, large spreads, tiny entries."""
    big = 1e4
    rows = [np.zeros(c), np.full(c, 3.0), np.r_[big, np.zeros(c - 1)],
            np.r_[big, -big, np.zeros(c - 2)], np.r_[1.0, 1.0, np.full(c - 2, -1.0)],
            np.r_[-big, np.zeros(c - 1)], np.full(c, 1e-30), np.r_[2.0, 2.0, np.zeros(c - 2)],
            np.r_[0.5, 0.5, 0.0, np.full(c - 3, -0.25)][:c], np.linspace(-1, 1, c),
            np.r_[700.0, np.zeros(c - 1)], np.r_[-700.0, 700.0, np.zeros(c - 2)],
            np.r_[1.0, np.zeros(c - 1)]]         # a vertex of the simplex: sparsemax regions meet
    for s in (0.1, 1.0, 5.0, 30.0):
        rows += list(rng.standard_normal((max(n_random // 4, 1), c)) * s)
    return np.array(rows).astype(dtype)


def _split(answer):
    """An oracle answers (value, [gradients]) or (value, [gradients], [their labels])."""
    return (answer[0], answer[1], answer[2]) if len(answer) == 3 else (answer[0], answer[1],
                                                                      None)


def _hull_text(labels, k):
    return "conv{" + ", ".join(labels or [f"#{i}" for i in range(k)]) + "}"


def _min_measure(got_row, cands, dt, tol, scale, labels=None):
    """``got_row`` against the exact value (one candidate) or, at a non-differentiable point
    (several: the limiting gradients), against their convex hull — any subgradient is
    accepted, not only a vertex. Returns (ok, largest Measure, first failing Measure, its
    component, the element picked)."""
    return subgradient_measure(got_row, cands, labels, dt, lambda m: _ok(m, tol, scale))


def check_map(exprs, symbols, forward, vjp=None, *, oracle=None, params=None, dtypes=None,
              rows=None, tol=None, vjp_tol=None, n_random=40, seed=0, name=None):
    """Check a map over the last axis, R^C -> R^C (softmax-like), and its vjp.

    Parameters
    ----------
    exprs : list of C sympy.Expr in ``symbols`` (length C), the map's components; or None
        when ``oracle`` is given.
    forward : callable, ``forward(Z) -> (n, C)`` for ``Z`` of shape (n, C).
    vjp : callable or None, ``vjp(Z, G) -> (n, C)``: row r is ``G[r] @ J(Z[r])``.
    oracle : callable or None, ``oracle(row_of_mpf) -> (values, [J, ...])`` for maps that
        are not one expression (sparsemax); several Jacobians (optionally followed by their
        labels) mean a non-smooth point, where the vjp must lie in the convex hull of the
        one-sided vjps (the Clarke generalized Jacobian applied to grad_out).
    tol, vjp_tol : dict dtype -> Tolerance; the default adds an absolute bound of 4 eps
        (outputs bounded by 1; rounding z_i - max(z) costs |z_i - max z| eps relative in
        exp, so only an absolute bound is attainable for the tiny components).
    """
    c = len(symbols)
    oracle = oracle or _sym_oracle(exprs, symbols, params)
    dtypes = list(dtypes or DTYPES)
    deft = {"float64": Tolerance(8, 4), "float32": Tolerance(2, 2)}
    tol, vjp_tol = tol or deft, vjp_tol or deft
    res = CheckResult(name or "map")
    rng = np.random.default_rng(seed)
    for dname in dtypes:
        dt = DTYPES[dname]
        Z = np.ascontiguousarray(rows if rows is not None else map_rows(dt, n_random, rng, c),
                                 dtype=dt)
        called = _call(res, dname, dt, Z, forward, vjp, rng)
        if called is None:
            continue
        G, got, gv = called
        answers = _oracle_answers(oracle, Z)
        for r in range(Z.shape[0]):
            vals, jacs, labels = _split(answers[r])
            ok, worst, bad, j, _ = _min_measure(got[r], [vals], dt, tol[dname], 1.0)
            res._stat("forward", dname, worst, tol[dname], ok=ok,
                      point=dict(x=Z[r].tolist(), got=got[r].tolist(),
                                 exact=[float(v) for v in vals]))
            if not ok:
                res._fail(Failure("forward", dname, Z[r].tolist(), got[r].tolist(),
                                  [mpmath.nstr(v, 17) for v in vals], bad.ulps,
                                  f"(component {j})"))
            if gv is None:
                continue
            grow = [_mpf(v) for v in G[r]]
            cands = [[mpmath.fsum(grow[i] * J[i][k] for i in range(c)) for k in range(c)]
                     for J in jacs]
            scale = max(abs(float(v)) for v in G[r])
            ok, worst, bad, j, picked = _min_measure(gv[r], cands, dt, vjp_tol[dname], scale,
                                                     labels)
            res._stat("vjp", dname, worst, vjp_tol[dname], scale, ok=ok,
                      point=dict(x=Z[r].tolist(), got=gv[r].tolist(), picked=picked,
                                 exact=[[float(v) for v in cd] for cd in cands]))
            if len(cands) > 1:
                res._kink("vjp", dname, Z[r].tolist(), _hull_text(labels, len(cands)),
                          picked if ok else "outside", ok)
            if not ok:
                res._fail(Failure("vjp", dname, Z[r].tolist(), gv[r].tolist(),
                                  [mpmath.nstr(v, 17) for v in cands[0]], bad.ulps,
                                  f"(component {j}, grad_out={G[r].tolist()})" + (
                                      f"; not in the convex hull of the {len(cands)} "
                                      f"one-sided vjps" if len(cands) > 1 else "")))
    return res


def check_loss(per_sample, symbols, loss, grad=None, *, inputs, oracle=None, params=None,
               dtypes=None, tol=None, grad_tol=None, name=None):
    """Check a loss ``loss(Z, Y) -> mean over rows`` and ``grad(Z, Y) -> d mean / dZ``.

    Parameters
    ----------
    per_sample : callable ``per_sample(y_row) -> sympy.Expr`` in ``symbols`` (one row's
        logits), the per-sample loss for target/label ``y_row``; or None with ``oracle``.
    loss, grad : the kernels; ``Z`` is (n, C) (or whatever ``inputs`` yields).
    inputs : callable ``inputs(dtype) -> list of (Z, Y)`` test batches, the rows of
        ``Z.reshape(n, -1)`` matching ``symbols``.
    oracle : callable ``oracle(row_of_mpf, y_row) -> (value, [gradient, ...][, labels])``
        for non-smooth losses: several gradients = a kink, where the computed gradient must
        lie in their convex hull (the subdifferential), and the element it picks is recorded
        in ``result.kinks``.
    tol, grad_tol : dict dtype -> Tolerance. The mean loss is compared in the dtype's ULPs
        or absolutely within abs_eps * eps * (1 + max|z|) (log-sum-exp minus z_y cancels
        when the loss is near 0); the gradient within ulps or abs_eps * eps / n.
    """
    dtypes = list(dtypes or DTYPES)
    tol = tol or {"float64": Tolerance(8, 8), "float32": Tolerance(2, 4)}
    grad_tol = grad_tol or {"float64": Tolerance(8, 8), "float32": Tolerance(2, 4)}
    res = CheckResult(name or "loss")
    exprs, made, answered = {}, {}, {}

    def expr_of(yr):
        """(the per-sample expression for target ``yr``, its srepr), made once per target."""
        key = yr if np.ndim(yr) == 0 else tuple(np.ravel(yr).tolist())
        if key not in exprs:
            e = sp.sympify(per_sample(yr)).subs(params or {})
            exprs[key] = (e, sp.srepr(e))
        return exprs[key]

    def orc(row, yr):
        if oracle is not None:
            return oracle(row, yr)
        e, key = expr_of(yr)
        if key not in made:
            # the gradient's entries share their terms (a log-sum-exp's exponentials):
            # evaluated once each (cse)
            made[key] = (lambdify(list(symbols), e, MPMATH),
                         lambdify(list(symbols), [sp.diff(e, s) for s in symbols],
                                  MPMATH, cse=True))
        # batches (and the two dtypes) share rows: each row's exact answer is evaluated
        # once per expression -- the same function at the same numbers
        at = (key, tuple(x._mpf_ for x in row))
        if at not in answered:
            f, d = made[key]
            answered[at] = (exact(f, *row), exact(d, *row))
        value, gradient = answered[at]
        return value, [list(gradient)]

    def answers(Zr, Y):
        """The oracle's answer for each row; for SymPy's per-sample expressions (exact
        values at the given numbers) derived once, then read from verify.cache bit for bit
        (the key holds each row's expression, by ``srepr``, and the rows' bits)."""
        def compute():
            return [orc([_mpf(x) for x in Zr[r]], Y[r]) for r in range(Zr.shape[0])]
        if oracle is not None:
            return compute()
        rows = {}
        for r in range(Zr.shape[0]):
            e, key = expr_of(Y[r])
            rows[key] = e
        if not _sympy_own(*rows.values()):
            return compute()
        from verify import cache
        key = ([expr_of(Y[r])[1] for r in range(Zr.shape[0])], sp.srepr(list(symbols)))
        return cache.exact_values("loss", (key, Zr.dtype.str, Zr.shape, Zr.tobytes()),
                                  compute)

    for dname in dtypes:
        dt = DTYPES[dname]
        for Z, Y in inputs(dt):
            Z = np.ascontiguousarray(Z)
            Zr = Z.reshape(Z.shape[0], -1)
            n = Zr.shape[0]
            vals, grads = [], []
            try:
                for answer in answers(Zr, Y):
                    v, gs, labels = _split(answer)
                    vals.append(v)
                    grads.append((gs, labels))
            except OracleError as exc:     # a limit of the oracle, not of the kernel
                res.notes.append(f"batch skipped ({dname}): {exc}")
                continue
            mean = mpmath.fsum(vals) / n
            got = loss(Z, Y)
            m = measure(got, mean, dt)
            scale = 1.0 + float(np.max(np.abs(Zr.astype(np.float64)))) if Zr.size else 1.0
            ok = _ok(m, tol[dname], scale)
            res._stat("loss", dname, m, tol[dname], scale, ok=ok,
                      point=dict(x=Zr.tolist(), y=np.asarray(Y).tolist(), got=float(got),
                                 exact=float(mean)))
            if not ok:
                res._fail(Failure("loss", dname, f"Z={Z.tolist()}, y={np.asarray(Y).tolist()}",
                                  float(got), mpmath.nstr(mean, 17), m.ulps))
            if grad is None:
                continue
            gg = np.asarray(grad(Z, Y))
            if gg.shape != Z.shape or gg.dtype != dt:
                res._fail(Failure("grad", dname, "all", f"{gg.dtype}{gg.shape}",
                                  f"{np.dtype(dt)}{Z.shape}", detail="wrong dtype or shape"))
                continue
            gr = gg.reshape(n, -1)
            for r in range(n):
                gs, labels = grads[r]
                cands = [[x / n for x in g] for g in gs]
                ok, worst, bad, j, picked = _min_measure(gr[r], cands, dt, grad_tol[dname],
                                                         1.0 / n, labels)
                res._stat("grad", dname, worst, grad_tol[dname], 1.0 / n, ok=ok,
                          point=dict(x=Zr[r].tolist(), got=gr[r].tolist(), picked=picked,
                                     exact=[[float(v) for v in cd] for cd in cands]))
                where = f"row {r}: z={Zr[r].tolist()}, y={np.asarray(Y[r]).tolist()}"
                if len(cands) > 1:
                    res._kink("grad", dname, where, _hull_text(labels, len(cands)),
                              picked if ok else "outside", ok)
                if not ok:
                    res._fail(Failure("grad", dname, where, gr[r].tolist(),
                                      [mpmath.nstr(v, 17) for v in cands[0]], bad.ulps,
                                      f"(component {j})" + (
                                          f"; not a subgradient: outside conv of the "
                                          f"{len(cands)} limiting gradients"
                                          if len(cands) > 1 else "")))
    return res
