"""Convexity: proved by certificates, refuted by concrete witnesses, or supported by
evidence only — never read from SymPy's ``None``.

Design note
-----------
SymPy 1.14 answers ``None`` (undecided) to ``Matrix.is_positive_semidefinite`` for the
softmax cross-entropy Hessian with C = 3 and to ``is_convex`` for (ab - 1)^2, which is not
convex. So the verdicts here come from certificates built explicitly:

* 1-d: the second derivative written as a product/quotient of factors non-negative by
  construction (``verify._exact.nonnegative_certificate``);
* many-d: a sum-of-squares identity v^T H v = sum_k c_k (l_k^T v)^2 with every c_k >= 0 by
  construction, checked by expansion (e.g. v^T(diag(p) - pp^T)v = sum_{i<j} p_i p_j
  (v_i - v_j)^2 using sum p = 1), or all principal minors (not only the leading ones, which
  do not decide semidefiniteness) each with a certificate;
* structure: a pointwise maximum of affine functions is convex (hinge, sparsemax loss, relu).

A refutation is a concrete witness: a point where the second derivative (or the Hessian's
smallest eigenvalue, computed at 40 digits) is negative, and a chord violation
(1-t) f(a) + t f(b) < f((1-t) a + t b) at exact points. Every function also gets the chord
test at random points (mpmath): a certificate with a chord violation would be a bug.
"""
import itertools
import random
import time

import mpmath
import sympy as sp

from verify._exact import nonnegative_certificate
from verify.dag_eval import diff_once
from verify.evidence import MPMATH, lambdify

__all__ = ["decide", "decided", "run_convexity", "chord_test", "sos_certificate",
           "principal_minors_certificate"]


def chord_test(f, xs, n=200, seed=0, scale=3, box=None, gaps=None):
    """Largest violation of (1-t) f(a) + t f(b) >= f((1-t)a + tb) at random a, b, t (40
    digits). Returns (max violation, witness or None); every gap f(mid) - chord is appended
    to ``gaps`` (a list) if given."""
    rng = random.Random(seed)
    fn = lambdify(xs, f, MPMATH)
    worst, witness = mpmath.mpf(0), None
    with mpmath.workdps(40):
        for _ in range(n):
            a = [mpmath.mpf(rng.uniform(-scale, scale)) for _ in xs]
            b = [mpmath.mpf(rng.uniform(-scale, scale)) for _ in xs]
            t = mpmath.mpf(rng.uniform(0, 1))
            mid = [(1 - t) * u + t * v for u, v in zip(a, b)]
            viol = fn(*mid) - ((1 - t) * fn(*a) + t * fn(*b))
            if gaps is not None:
                gaps.append(float(viol))
            if viol > worst:
                worst = viol
                witness = dict(a=[mpmath.nstr(u, 8) for u in a],
                               b=[mpmath.nstr(u, 8) for u in b], t=mpmath.nstr(t, 8),
                               gap=mpmath.nstr(viol, 6))
    return float(worst), witness


def sos_certificate(H, v, sos, constraint=None):
    """v^T H v == sos (after substituting ``constraint``, a dict) by expansion. ``sos`` is a
    sum of terms c * (linear form)^2; each c is checked non-negative by construction."""
    q = (v.T * H * v)[0, 0]
    d = q - sos
    if constraint:
        d = d.subs(constraint)
    ok = is_zero_rational(d)
    terms_ok = all(nonnegative_certificate(term)[0] for term in sp.Add.make_args(sos))
    return ok and terms_ok


def _exp_free(e):
    """``e`` with each exponential exp(c_1 u_1 + c_2 u_2 + ...) (rational c_k, u_k without
    a numeric factor) replaced by the product of E_k^(c_k d_k), where the positive symbol
    E_k stands for exp(u_k / d_k) and d_k is the common denominator of every coefficient
    of u_k in ``e``'s exponentials; None when a coefficient is not rational."""
    split = {}
    for a in e.atoms(sp.exp):
        split[a] = [t.as_coeff_Mul() for t in sp.Add.make_args(a.args[0])]
        if not all(c.is_Rational for c, _ in split[a]):
            return None
    den = {}
    for terms in split.values():
        for c, u in terms:
            den[u] = sp.ilcm(den.get(u, 1), c.q)
    base = {u: sp.Dummy("E", positive=True) for u in den}
    return e.xreplace({a: sp.Mul(*[base[u] ** (c * den[u]) for c, u in terms])
                       for a, terms in split.items()})


def is_zero_rational(d):
    """``d`` is identically 0 as a rational function of its symbols and exponentials, the
    exponentials of unrelated exponents taken as independent variables:
    ``cancel(expand(d)) == 0``, decided on the symbols of :func:`_exp_free` (d) without
    SymPy expanding every exponential of a sum and finding the generators of the
    expanded expression (5x the time of the whole decision): first by the numerator over
    a common denominator (:func:`_numerator_is_zero`, no gcds), else in the field of
    rational functions over QQ -- its normal form, a quotient of coprime polynomials, is
    0 only for the zero function. An expression outside that field (a logarithm, a root,
    a float) goes to ``cancel(expand(d))`` itself."""
    from sympy.polys.fields import field
    from sympy.polys.polyerrors import CoercionFailed, PolynomialError
    e = _exp_free(d)
    # a commutative field: symbols that do not commute (n m - m n) are not its variables
    if e is not None and e.free_symbols and not e.has(sp.Float) and e.is_commutative:
        gens = sorted(e.free_symbols, key=sp.default_sort_key)
        zero = _numerator_is_zero(e, gens)
        if zero is not None:
            return zero
        try:
            K = field(gens, sp.QQ)[0]
            return K.from_expr(e) == 0
        except (ValueError, ZeroDivisionError, PolynomialError, CoercionFailed):
            # not a rational function of the symbols, or a denominator that is 0 as a
            # function though not written as 0: cancel decides (and rejects) it
            pass
    return sp.cancel(sp.expand(d)) == 0


class _NotRational(Exception):
    """An expression :func:`_numerator_is_zero` does not write as a quotient of
    polynomials in its generators."""


def _numerator_is_zero(e, gens):
    """Whether ``e``, a rational function of the symbols ``gens`` over QQ, is 0, decided
    without the gcds of the field's normal form (:func:`is_zero_rational`): ``e`` is
    written N / (f_1^k_1 ... f_m^k_m), the f_i the non-zero polynomials ``e`` divides by
    (bases of negative powers, as written), a sum brought to the largest power of each
    f_i its terms carry (a common denominator, if not always the least one); the
    denominator is non-zero, so ``e`` is 0 exactly when the polynomial N is. None when
    ``e`` is not written that way (a power with a non-integer exponent, a number outside
    QQ) or divides by a polynomial that is 0: the field then decides (or rejects) it."""
    from sympy.polys.rings import ring
    R, *X = ring(gens, sp.QQ)
    gen = dict(zip(gens, X))
    memo = {}

    def rebuild(x):                  # (N, {f_i: k_i}) of x
        got = memo.get(x)
        if got is not None:
            return got
        if x in gen:
            got = (gen[x], {})
        elif x.is_Rational:
            got = (R(x.p), {} if x.q == 1 else {R(x.q): 1})
        elif x.is_Add:
            parts = [rebuild(a) for a in x.args]
            den = {}
            for _, dk in parts:
                for f, k in dk.items():
                    den[f] = max(den.get(f, 0), k)
            num = R.zero
            for n, dk in parts:
                for f, k in den.items():
                    if k > dk.get(f, 0):
                        n = n * f ** (k - dk.get(f, 0))
                num += n
            got = (num, den)
        elif x.is_Mul:
            num, den = R.one, {}
            for a in x.args:
                n, dk = rebuild(a)
                num = num * n
                for f, k in dk.items():
                    den[f] = den.get(f, 0) + k
            got = (num, den)
        elif x.is_Pow and x.exp.is_Integer:
            n, dk = rebuild(x.base)
            k = int(x.exp)
            if k == 0:               # SymPy's b**0: 1 for every b (the ring refuses 0**0)
                got = (R.one, {})
            elif k > 0:
                got = (n ** k, {f: j * k for f, j in dk.items()})
            else:
                if not n:
                    raise _NotRational(x)
                num = R.one
                for f, j in dk.items():
                    num = num * f ** (j * -k)
                got = (num, {n: -k})
        else:
            raise _NotRational(x)
        memo[x] = got
        return got
    try:
        return not rebuild(e)[0]
    except _NotRational:
        return None


def principal_minors_certificate(H):
    """All principal minors (every subset of indices) non-negative by certificate."""
    n = H.shape[0]
    for k in range(1, n + 1):
        for idx in itertools.combinations(range(n), k):
            if nonnegative_certificate(sp.factor(H.extract(list(idx), list(idx)).det()))[0] \
                    is not True:
                return False
    return True


def _min_eig(H, xs, point):
    Hn = H.subs(dict(zip(xs, point)))
    with mpmath.workdps(40):
        M = mpmath.matrix([[sp.N(Hn[i, j], 40) for j in range(H.shape[1])]
                           for i in range(H.shape[0])])
        return min(mpmath.eigsy(M)[0])


def curvature_sweep(f, xs, through=None, n=41, seed=3):
    """The second derivative (1-d) or every Hessian eigenvalue (many-d) at ``n`` points of
    a line (40 digits): s in [-3, 3], x(s) = p + s d, p = ``through`` (a witness) or 0,
    d a fixed random unit direction. Returns dict(s, eigs, direction, base) or None for
    functions whose Hessian is not a function (max-type: a Dirac measure at the kinks)."""
    if len(xs) > 1:
        with diff_once():    # the Hessian SymPy derives, each entry's terms derived once
            H = sp.hessian(f, xs)
    else:
        H = sp.Matrix([[sp.diff(f, xs[0], 2)]])
    if H.has(sp.DiracDelta, sp.Heaviside, sp.Max, sp.Min, sp.Piecewise):
        return None
    rng = random.Random(seed)
    d = [rng.gauss(0, 1) for _ in xs]
    nrm = sum(v * v for v in d) ** 0.5
    d = [v / nrm for v in d]
    p = [float(v) for v in through] if through is not None else [0.0] * len(xs)
    fn = lambdify(xs, H, MPMATH)
    ss = [-3 + 6 * k / (n - 1) for k in range(n)]
    eigs = []
    with mpmath.workdps(40):
        for s_ in ss:
            pt = [mpmath.mpf(a) + mpmath.mpf(s_) * b for a, b in zip(p, d)]
            M = mpmath.matrix(fn(*pt))
            ev = mpmath.eigsy(M)[0] if len(xs) > 1 else [M[0, 0]]
            eigs.append(sorted(float(e) for e in ev))
    return dict(s=ss, eigs=eigs, direction=d, base=p)


def decide(case):
    """Run every test of one case; returns the item dict."""
    t0 = time.perf_counter()
    f, xs = case["f"], case["vars"]
    steps = []
    verdict = None
    strict = False
    if len(xs) == 1:
        f2 = sp.simplify(sp.diff(f, xs[0], 2))
        cert, how = nonnegative_certificate(f2)
        steps.append(dict(claim=f"second derivative: ${sp.latex(f2)}$",
                          status="proved" if cert else "no certificate",
                          method=how if cert else ""))
        if cert:
            verdict = "convex (proved)"
            if f2.is_positive is True:
                strict = True
                steps.append(dict(claim=f"${sp.latex(f2)} > 0$", status="proved",
                                  method="is_positive on real z: strictly convex"))
    else:
        with diff_once():        # the Hessian SymPy derives, each entry's terms derived once
            H = sp.hessian(f, xs)
        if case.get("sos") is not None:
            v = sp.Matrix(sp.symbols(f"v0:{len(xs)}", real=True))
            ok = sos_certificate(H, v, case["sos"](v), case.get("constraint"))
            steps.append(dict(claim=f"$v^\\top H v = {sp.latex(case['sos'](v))}$ "
                                    f"{case.get('sos_note', '')}",
                              status="proved" if ok else "failed",
                              method="expansion; each coefficient non-negative by construction"))
            if ok:
                verdict = "convex (proved)"
                c = case.get("strict_coef")
                if c is not None and sp.sympify(c).is_positive is True:
                    strict = True
                    steps.append(dict(claim=f"the identity contains ${sp.latex(c)}\\lVert v"
                                            f"\\rVert^2$ with ${sp.latex(c)} > 0$",
                                      status="proved", method="strictly convex"))
        elif case.get("minors"):
            ok = principal_minors_certificate(H)
            steps.append(dict(claim="all principal minors of $H = " + sp.latex(H) + "$ are >= 0",
                              status="proved" if ok else "no certificate",
                              method="certificate per minor"))
            if ok:
                verdict = "convex (proved)"
                lead = [H[:k, :k].det() for k in range(1, H.shape[0] + 1)]
                if all(d.is_positive is True for d in lead):
                    strict = True
                    steps.append(dict(claim="leading principal minors " + ", ".join(
                        f"${sp.latex(d)}$" for d in lead) + " > 0", status="proved",
                        method="Sylvester: positive definite, strictly convex"))
    if case.get("structure"):
        steps.append(dict(claim=case["structure"], status="proved",
                          method="a pointwise max of affine functions is convex"))
        verdict = "convex (proved)"
    if verdict is None and case.get("witness") is not None:
        w = case["witness"]
        if len(xs) == 1:
            val = sp.N(sp.diff(f, xs[0], 2).subs(xs[0], w), 30)
            if val < 0:
                verdict = "not convex"
                steps.append(dict(claim=f"$f''({w}) = {sp.N(val, 6)} < 0$", status="proved",
                                  method="exact evaluation (30 digits)"))
        else:
            lam = _min_eig(sp.hessian(f, xs), xs, w)
            if lam < 0:
                verdict = "not convex"
                steps.append(dict(claim=f"smallest Hessian eigenvalue at {list(w)} is "
                                        f"{mpmath.nstr(lam, 6)} < 0", status="proved",
                                  method="mpmath eigsy at 40 digits"))
    if case.get("chord_witness"):
        a, b, t = case["chord_witness"]
        fa, fb = f.subs(dict(zip(xs, a))), f.subs(dict(zip(xs, b)))
        fm = f.subs(dict(zip(xs, [(1 - t) * u + t * v for u, v in zip(a, b)])))
        gap = sp.N(fm - ((1 - t) * fa + t * fb), 30)
        if gap > 0:
            verdict = "not convex"
            steps.append(dict(claim=f"chord violated: $a = {list(a)},\\ b = {list(b)},\\ "
                                    f"t = {t}$: $f((1-t)a + tb) - [(1-t)f(a) + t f(b)] = "
                                    f"{sp.N(gap, 6)} > 0$", status="proved",
                              method="exact evaluation (30 digits)"))
    # other symbols (a target t, data x, lambda) are fixed at 1/3 for the chord evidence
    fixed = {sym: sp.Rational(1, 3) for sym in sorted(f.free_symbols - set(xs), key=str)}
    gaps = []
    viol, wit = chord_test(f.subs(fixed), xs, n=case.get("n_chord", 200),
                           scale=case.get("scale", 3), gaps=gaps)
    sweep = curvature_sweep(f.subs(fixed), xs, through=case.get("witness") if isinstance(
        case.get("witness"), tuple) else None, n=case.get("n_sweep", 41))
    if sweep is not None:
        lo = min(e[0] for e in sweep["eigs"])
        steps.append(dict(claim=("second derivative" if len(xs) == 1 else
                                 "smallest Hessian eigenvalue") + f" along a line "
                                 f"({len(sweep['s'])} points"
                                 + (f", {', '.join(map(str, fixed))} = 1/3" if fixed else "")
                                 + f"): min {lo:.3g}", status="evidence",
                          method="mpmath eigsy, 40 digits"))
    steps.append(dict(claim=f"chord inequality at {case.get('n_chord', 200)} random (a, b, t)"
                            + (f" ({', '.join(map(str, fixed))} = 1/3)" if fixed else "") + ": "
                            f"max violation {viol:.3g}", status="evidence",
                      method=f"witness {wit}" if wit and viol > 1e-25 else "mpmath, 40 digits"))
    if verdict is None:
        verdict = "convex (evidence only)" if viol <= 1e-25 else "not convex"
    if verdict.startswith("convex") and strict:
        verdict = verdict.replace("convex", "strictly convex")
    consistent = not (verdict.endswith("(proved)") and viol > 1e-25)
    if sweep is not None and "convex (proved)" in verdict:
        # a certificate with a negative curvature sample would be a bug in the certificate
        consistent &= min(e[0] for e in sweep["eigs"]) >= -1e-25
    expected = case["expected"]
    passed = consistent and verdict.split(" (")[0] == expected.split(" (")[0] and (
        "(proved)" in verdict or "(proved)" not in expected)
    return {"name": case["name"], "section": "convexity", "passed": passed,
            "verdict": verdict + ("" if passed else f" — expected {expected}"),
            "statement": f"$f = {sp.latex(f)}$ in ${', '.join(sp.latex(x) for x in xs)}$"
                         + (f". {case['note']}" if case.get("note") else ""),
            "steps": steps, "expected": expected,
            "seconds": round(time.perf_counter() - t0, 3),
            "_data": dict(gaps=gaps, sweep=sweep, witness=case.get("witness"),
                          chord_witness=wit if viol > 1e-25 else None, n_vars=len(xs),
                          var_names=[str(x) for x in xs])}


def _cases():
    z = sp.Symbol("z", real=True)
    tt = sp.Symbol("t", real=True)
    sig = 1 / (1 + sp.exp(-z))
    zs = sp.symbols("z0:3", real=True)
    S = sum(sp.exp(u) for u in zs)
    ps = sp.symbols("p0:3", positive=True)
    p = [sp.exp(u) / S for u in zs]
    w1, w2, x1, x2 = sp.symbols("w1 w2 x1 x2", real=True)
    lam = sp.Symbol("lambda", positive=True)
    ws = [w1, w2]

    def logistic(w, x, yv):
        s = sum(a * b for a, b in zip(w, x))
        return sp.log(1 + sp.exp(s)) - yv * s

    def sig_of(u):
        return 1 / (1 + sp.exp(-u))

    X = [(sp.Rational(1), sp.Rational(-2)), (sp.Rational(3, 2), sp.Rational(1, 2))]
    l2_logreg = logistic(ws, X[0], 1) + logistic(ws, X[1], 0) + lam / 2 * (w1 ** 2 + w2 ** 2)
    a, bb = sp.symbols("a b", real=True)
    u, v_ = sp.symbols("u v", real=True)
    net = (v_ * sp.tanh(u * 1) - 1) ** 2
    return [
        dict(name="squared error (1-d)", f=(z - tt) ** 2 / 2, vars=[z],
             expected="strictly convex"),
        dict(name="squared error in R^3", f=sum((u_ - c) ** 2 for u_, c in zip(zs, (1, -2, 3))) / 2,
             vars=list(zs), minors=True, expected="strictly convex"),
        dict(name="softmax cross-entropy in the logits (C = 3)", f=-sp.log(p[0]), vars=list(zs),
             sos=lambda v: sum(p[i] * p[j] * (v[i] - v[j]) ** 2
                               for i, j in itertools.combinations(range(3), 2)),
             sos_note="$= \\sum_{i<j} p_i p_j (v_i - v_j)^2$ (uses $\\sum_i p_i = 1$); "
                      "$H\\mathbf{1} = 0$, so not strictly", expected="convex"),
        dict(name="logistic loss in w (one sample, label 1)", f=logistic(ws, (x1, x2), 1),
             vars=ws, sos=lambda v: sig_of(w1 * x1 + w2 * x2) * (1 - sig_of(w1 * x1 + w2 * x2))
             * (x1 * v[0] + x2 * v[1]) ** 2,
             sos_note="$= \\sigma(s)(1-\\sigma(s))(x^\\top v)^2$, any x", expected="convex",
             n_chord=0),
        dict(name="L2-regularized logistic regression (2 samples, lambda > 0)", f=l2_logreg,
             vars=ws, sos=lambda v: sum(
                 sig_of(w1 * xa + w2 * xb) * (1 - sig_of(w1 * xa + w2 * xb)) *
                 (xa * v[0] + xb * v[1]) ** 2 for xa, xb in X) + lam * (v[0] ** 2 + v[1] ** 2),
             sos_note="$+ \\lambda\\lVert v\\rVert^2 > 0$ for $v \\ne 0$: strictly convex",
             strict_coef=lam, expected="strictly convex", n_chord=0),
        dict(name="L2-regularized logistic regression, lambda = 1/10 (chord evidence)",
             f=l2_logreg.subs(lam, sp.Rational(1, 10)), vars=ws,
             sos=lambda v: sum(sig_of(w1 * xa + w2 * xb) * (1 - sig_of(w1 * xa + w2 * xb)) *
                               (xa * v[0] + xb * v[1]) ** 2 for xa, xb in X)
             + sp.Rational(1, 10) * (v[0] ** 2 + v[1] ** 2), strict_coef=sp.Rational(1, 10),
             expected="strictly convex"),
        dict(name="logistic loss (1-d, in the score)", f=sp.log(1 + sp.exp(-z)), vars=[z],
             expected="strictly convex"),
        dict(name="softplus", f=sp.log(1 + sp.exp(z)), vars=[z], expected="strictly convex"),
        dict(name="Poisson loss (1-d, in the log-mean z, target t)", f=sp.exp(z) - tt * z,
             vars=[z], expected="strictly convex"),
        dict(name="relu", f=sp.Max(z, 0), vars=[z], structure="$\\max(z, 0)$",
             expected="convex"),
        dict(name="hinge loss (C = 3, y = 0, margin 1)",
             f=sp.Max(0, 1 + sp.Max(zs[1], zs[2]) - zs[0]), vars=list(zs),
             structure="$\\max(0, 1 + z_1 - z_0, 1 + z_2 - z_0)$", expected="convex"),
        dict(name="sigmoid", f=sig, vars=[z], witness=1, chord_witness=([0], [4], sp.Rational(1, 2)),
             expected="not convex"),
        dict(name="tanh", f=sp.tanh(z), vars=[z], witness=1, expected="not convex"),
        dict(name="one-hidden-layer network's squared loss in its weights",
             f=net, vars=[u, v_], witness=(0, 0),
             chord_witness=([1, 2], [-1, -2], sp.Rational(1, 2)),
             note="$x = 1$, target 1, one tanh hidden unit: $(v\\tanh(u) - 1)^2$; the weights "
                  "$(u, v)$ and $(-u, -v)$ compute the same function, the midpoint 0 does not",
             expected="not convex"),
        dict(name="(ab - 1)^2 (SymPy's is_convex is None on it)", f=(a * bb - 1) ** 2,
             vars=[a, bb], witness=(0, 0), chord_witness=([1, 1], [-1, -1], sp.Rational(1, 2)),
             expected="not convex"),
    ]


def run_convexity(ctx):
    out = []
    for case in _cases():
        if ctx.only and not (ctx.wanted(case["name"]) or ctx.wanted("convexity")):
            continue
        if ctx.quick:
            case["n_chord"] = min(case.get("n_chord", 200), 40)
            case["n_sweep"] = 15
        out.append(decided(case))
    return out


def decided(case):
    """:func:`decide`'s item for ``case``, from verify.cache when this source version of
    verify decided it before with the same SymPy and mpmath: a case is verify's own
    definitions (its function, certificate and points, in verify's source, which is in
    every key) and its sample counts, and nothing of nnlib enters a decision, so the item
    is a pure function of the key. ``seconds``: this call's."""
    from verify import cache
    t0 = time.perf_counter()
    # the entry without the deciding call's time: equal runs write equal entries
    item = cache.derived("convexity item", (case["name"], case.get("n_chord"),
                                            case.get("n_sweep")),
                         lambda: {k: v for k, v in decide(case).items() if k != "seconds"})
    # this call's time, in decide's place (before _data): cold and warm items alike
    data = item.pop("_data")
    item["seconds"] = round(time.perf_counter() - t0, 3)
    item["_data"] = data
    return item
