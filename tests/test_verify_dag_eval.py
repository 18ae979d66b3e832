"""verify.dag_eval: one mpmath program for many SymPy expressions agrees with lambdify."""
import pytest

sp = pytest.importorskip("sympy")
mpmath = pytest.importorskip("mpmath")

from sympy.core.cache import clear_cache  # noqa: E402
from verify import dag_eval  # noqa: E402

x, y, w = sp.symbols("x y w")


def _lambdified(syms, exprs, vals, dps):
    with mpmath.workdps(dps):
        return [mpmath.mpf(v) for v in sp.lambdify(syms, exprs, "mpmath")(*vals)]


def test_agrees_with_lambdify_at_two_precisions():
    obj = (sp.log(sp.exp(x * w) + sp.exp(-y)) + sp.Rational(3, 7) * (x - y) ** 2
           + sp.tanh(w) / (1 + sp.exp(-x)) + sp.sqrt(1 + x ** 2) + sp.Float(0.1) * w
           + (1 + y ** 2) ** sp.Rational(3, 2) + sp.E * sp.pi + sp.Abs(y))
    syms = [x, y, w]
    exprs = [obj] + [sp.diff(obj, s) for s in (x, w)]
    f = dag_eval.program(syms, exprs)
    vals = [mpmath.mpf(0.75), mpmath.mpf(-1.25), mpmath.mpf(0.5)]
    for dps in (40, 80):
        with mpmath.workdps(dps):
            got = f(*vals)
        want = _lambdified(syms, exprs, vals, dps)
        assert len(got) == len(want) == 3
        for a, b in zip(got, want):
            assert abs(a - b) <= mpmath.mpf(10) ** (5 - dps) * abs(b)


def test_shared_subexpressions_are_one_instruction():
    e = sp.exp(x * y)
    f = dag_eval.program([x, y], [e + 1, e * 2, e])
    with mpmath.workdps(30):
        a, b, c = f(mpmath.mpf(1), mpmath.mpf(2))
        assert a == c + 1 and b == 2 * c


def test_piecewise_takes_the_first_piece_that_holds():
    from verify.registry import ACTIVATIONS, z
    exprs = []
    for act in ACTIVATIONS:
        d = act.definition.subs(act.evidence_params)
        exprs += [d, sp.diff(d, z)]
    exprs.append(sp.Piecewise((z, sp.And(z > -1, z <= 1)), (-z, sp.Not(z < 3)), (7, True)))
    f = dag_eval.program([z], exprs)
    for v in (-2.5, -0.5, 0.0, 0.5, 2.0, 3.0):
        assert [float(u) for u in f(mpmath.mpf(v))] == pytest.approx(
            [float(u) for u in _lambdified([z], exprs, [mpmath.mpf(v)], 30)], rel=1e-14)


def test_a_node_without_a_rule_is_unsupported():
    with pytest.raises(dag_eval.Unsupported):
        dag_eval.program([x], [sp.Function("g")(x)])


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="not inputs"):
        dag_eval.program([x], [x + y])
    with pytest.raises(ValueError, match="twice"):
        dag_eval.program([x, x], [x])
    f = dag_eval.program([x, y], [x * y])
    with pytest.raises(TypeError, match="expected 2 values"):
        f(mpmath.mpf(1))


def test_free_symbols_walks_each_node_once_and_answers_as_sympy():
    """dag_eval._free_symbols (program's input check, diff_once's test for a symbol) is
    SymPy's free_symbols, bound variables included, with one memo shared by several
    expressions; a symbol that is not an input is still named."""
    t = sp.Symbol("t", positive=True)
    f = sp.Function("f")
    s = sp.exp(x * w) / (1 + sp.exp(-y))
    exprs = [s, s ** 2 + s * x, sp.Derivative(f(x, t), x), sp.Subs(f(t) * y, t, x + 1),
             sp.Lambda(t, t * w), sp.Integral(t * x, (t, 0, y)), sp.Sum(t * w, (t, 1, x)),
             sp.Piecewise((x, y > 0), (w, True)), sp.Max(x, t), sp.Integer(3), sp.pi,
             sp.Matrix([[x, t]])[0, 1] * y, sp.diff(sp.log(1 + s), x, 2)]
    memo = {}
    for e in exprs:
        assert dag_eval._free_symbols(e, memo) == e.free_symbols, e
        assert dag_eval._free_symbols(e, {}) == e.free_symbols, e
    # every node is in the memo, walked once, functions (exp, log) included
    e = sp.diff(sp.log(1 + s), x, 2) * s
    memo = {}
    dag_eval._free_symbols(e, memo)
    assert set(memo) == set(sp.preorder_traversal(e))
    with pytest.raises(ValueError, match=r"\['t'\] are not inputs"):
        dag_eval.program([x, y, w], [s, s * t])


def test_diff_once_returns_sympys_derivatives_and_restores_diff():
    # a repeated subexpression (h in every term), as in backprop's objective
    h = sp.tanh(x * w + y)
    obj = sp.log(sp.exp(h * w) + sp.exp(h * y) + 1) + h ** 2 - sp.Rational(1, 3) * h * x
    want = [sp.diff(obj, s) for s in (x, y, w)]
    diff, rule = sp.Expr.diff, sp.tanh.fdiff
    calls = []

    def counted(self, argindex=1):    # tanh's derivative, counting its calls on h
        calls.extend([argindex] if self == h else [])
        return rule(self, argindex)
    sp.tanh.fdiff = counted
    clear_cache()                     # Mul's rule is cached: want's diff would answer
    try:
        with dag_eval.diff_once():
            assert sp.Expr.diff is not diff
            got = [sp.diff(obj, s) for s in (x, y, w)]
            first = sp.diff(h, x)
            assert calls == [1, 1, 1]                        # once per symbol
            assert sp.diff(h, x) is first and len(calls) == 3  # remembered: no call
            assert sp.diff(obj, x, 2) == diff(obj, x, 2)    # options: SymPy's own diff
            m = sp.Matrix([x, y])                            # unhashable: SymPy's own
            assert sp.diff(h, m) == diff(h, m)
        assert sp.Expr.diff is diff
    finally:
        sp.tanh.fdiff = rule
    assert got == want


def test_diff_once_is_sympys_diff_where_its_shortcuts_apply():
    f = sp.Function("f")                 # no derivative rule: an unevaluated Derivative
    exprs = [x * y * sp.exp(x), f(x * y) * x + y, sp.exp(y) * w, sp.Integer(3),
             sp.Piecewise((x ** 2, x > 0), (y, True)), sp.sqrt(x * w + 1) / (x - y),
             # products, powers and functions of one argument take the shortcuts; an
             # infinity (0 oo is nan) and an exponent holding the symbol do not
             sp.oo * x * sp.exp(y) + w, x ** y * sp.log(x * w + 1), sp.tanh(x * y) ** 2 * w,
             sp.log(sp.exp(x) + sp.exp(y) + 1) * (x - w) ** 3]
    want = [[sp.diff(e, s) for s in (x, y, w)] for e in exprs]
    mul = x * y * w
    with dag_eval.diff_once():
        got = [[sp.diff(e, s) for s in (x, y, w)] for e in exprs]
        assert got[2][0] is sp.S.Zero                   # x is not in exp(y) w
        assert mul.diff((x, 0)) is mul and mul.diff((x, 1)) == y * w   # Mul's rule asks so
        assert got[1][0].has(sp.Derivative)
    assert got == want


def test_diff_once_leaves_expressions_without_a_rule_and_matrices_to_sympy():
    # an Expr class without _eval_derivative (UnevaluatedExpr, Limit, ...) gives SymPy's
    # unevaluated Derivative, and a matrix expression SymPy's own zero, not a scalar 0
    x, y = sp.symbols("x y")
    A = sp.MatrixSymbol("A", 2, 2)
    exprs = [(sp.UnevaluatedExpr(x * y), x), (A * x, y), (A * x, x)]
    want = [e.diff(s) for e, s in exprs]
    with dag_eval.diff_once():
        got = [e.diff(s) for e, s in exprs]
    assert got == want and [type(g) for g in got] == [type(w) for w in want]


def test_diff_once_leaves_expressions_with_a_symbol_assumed_zero_to_sympy():
    # 1/z of a zero z is infinite with no oo written (0 * it is nan), and a derivative
    # that is 0 by assumption is not SymPy's Zero: SymPy's own rules decide those
    a, b = sp.symbols("a b", real=True)
    z = sp.Symbol("z", zero=True)
    exprs = [a * (1 / z) * b, sp.exp(a * z), sp.tanh(a * z) * b]
    want = [sp.diff(e, a) for e in exprs]
    with dag_eval.diff_once():
        got = [sp.diff(e, a) for e in exprs]
    assert [sp.srepr(g) for g in got] == [sp.srepr(w) for w in want]
    assert got[0] is sp.nan and got[1] == 0
