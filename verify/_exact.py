"""Exact decisions used by the proofs: "is this expression identically zero?" and "is this
expression non-negative for every admissible value of its symbols?".

Design note
-----------
SymPy's ``simplify`` and its assumption queries are heuristics: ``None`` means "could not
decide", never "false" (with SymPy 1.14, ``Matrix.is_positive_semidefinite`` is None even for
the softmax cross-entropy Hessian). So every verdict here comes with the method that produced
it, and an undecided case is reported as undecided, never as a proof or a refutation.

``prove_zero`` tries, cheapest first:

1. ``cancel``: for rational functions in exponentials of independent symbols (softmax,
   sigmoid, tanh written with ``exp``) the normal form is canonical, so ``cancel(e) == 0`` is
   an exact decision;
2. ``expand`` after rewriting ``tanh``/``sech`` in ``exp`` (polynomial identities);
3. ``simplify`` (heuristic, but a returned 0 is still a proof: SymPy only applies valid
   rewrites, and symbols are declared real);
4. if all fail: "undecided", and the caller evaluates the difference at random rational
   points (evidence, never reported as proof).
"""
import random

import sympy as sp

__all__ = ["prove_zero", "nonnegative_certificate", "random_zero_check"]


def prove_zero(expr, timeout_simplify=True):
    """Return ``(True, method)`` when ``expr`` is shown identically zero, else
    ``(False, "undecided")``."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True, "reduces to 0 on substitution"
    try:
        if sp.cancel(sp.together(expr)) == 0:
            return True, "cancel (canonical form of a rational function)"
    except (sp.PolynomialError, TypeError, ValueError):
        pass
    e2 = expr.rewrite(sp.exp)
    try:
        if sp.cancel(sp.together(sp.expand(e2))) == 0:
            return True, "rewrite(exp) + cancel"
    except (sp.PolynomialError, TypeError, ValueError):
        pass
    if timeout_simplify and sp.count_ops(expr) < 400:
        if sp.simplify(e2) == 0:
            return True, "simplify"
    return False, "undecided"


def random_zero_check(expr, symbols, n=8, seed=0, positive=()):
    """Evaluate ``expr`` at ``n`` random rational points (numerically, 50 digits). Returns
    the largest absolute value seen: evidence only, never a proof."""
    rng = random.Random(seed)
    worst = 0
    for _ in range(n):
        subs = {}
        for s in symbols:
            v = sp.Rational(rng.randint(-300, 300), rng.randint(50, 150))
            subs[s] = abs(v) + sp.Rational(1, 10) if s in positive else v
        worst = max(worst, abs(sp.N(expr.subs(subs), 50)))
    return worst


def _factor_sign(f):
    """True if the factor ``f`` is shown >= 0 for all real values of its symbols."""
    if f.is_nonnegative is True:
        return True
    if isinstance(f, sp.Pow) and f.exp.is_even:
        return True
    if isinstance(f, sp.Pow) and f.base.is_nonnegative is True:
        return True
    return False


def nonnegative_certificate(expr):
    """Try to show ``expr >= 0`` for all real values of its (real / positive) symbols.

    Returns ``(verdict, how)``: verdict True with the certificate used (a factorization into
    factors each non-negative by construction: squares, exponentials, positive symbols), or
    None when no certificate was found (never False: a missing certificate is not a proof
    of negativity; the convexity module looks for a concrete witness instead)."""
    expr = sp.sympify(expr)
    # the candidates in turn, each made only when the ones before it have no certificate
    # (most terms of a sum of squares are non-negative as written)
    for make in (lambda: expr, lambda: sp.factor(sp.together(expr)),
                 lambda: sp.factor(sp.together(expr.rewrite(sp.exp)))):
        cand = make()
        if cand.is_nonnegative is True:
            return True, f"{sp.latex(cand)} \\ge 0 (each factor non-negative by construction)"
        num, den = sp.fraction(sp.together(cand))
        fs = sp.Mul.make_args(sp.factor(num)) + sp.Mul.make_args(sp.factor(den))
        if all(_factor_sign(f) for f in fs):
            return True, (f"{sp.latex(cand)}: a product/quotient of factors each "
                          "non-negative by construction")
    return None, "no certificate found"
