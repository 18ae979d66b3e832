"""SymPy expressions as one mpmath program that evaluates each distinct subexpression once:
the oracle of the backprop networks, whose 31 gradients share most of their terms.

Design note
-----------
``sympy.lambdify(..., cse=True)`` shares the common subexpressions too, but finding them
(``cse``), printing the code and compiling it cost more than the derivation it serves
(about a quarter of a backprop network's CPU). The program here is read off the
expressions' own DAG instead: a subexpression is shared when SymPy holds it twice (equal
and hashed alike), which is what the chain rule produces. Every operation is the one the
mpmath printer of ``lambdify`` emits (``+``, ``*``, ``**`` with an integer exponent,
``sqrt``, ``exp``, ``log``, ...), at the caller's working precision, on the exact values
of the inputs; numbers enter exactly (an Integer, a Float's binary value) or rounded
at the working precision (a Rational p/q: mpf(p) / q), so the evaluation is as exact as
the precision it runs at and ``verify.evidence.exact`` settles it as it does a
``lambdify``. A Piecewise takes the first piece whose condition holds at the working
precision, as lambdify's conditional expression does (NaN when none holds; every piece is
evaluated, so pieces must be defined everywhere, as the registry's are). An expression
with a node this module has no rule for (an unknown function) raises ``Unsupported``: the
caller lambdifies it instead.

The derivatives themselves share in the same way: :func:`diff_once` has SymPy's ``diff``
take each repeated subexpression's derivative once per symbol (backprop's objective holds
each hidden unit in every logit of its row), and return SymPy's own result again at its
other occurrences.

Examples
--------
>>> import mpmath, sympy as sp
>>> x, y = sp.symbols("x y")
>>> f = program([x, y], [sp.exp(x) * y, sp.diff(sp.exp(x) * y, x)])
>>> with mpmath.workdps(30):
...     [mpmath.nstr(v, 10) for v in f(mpmath.mpf(0), mpmath.mpf(2))]
['2.0', '2.0']
"""
import contextlib
import operator

import mpmath
import sympy as sp
from sympy.core.function import ArgumentIndexError
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.ntheory.multinomial import multinomial_coefficients_iterator

from verify.evidence import mp_exp

__all__ = ["program", "Unsupported", "diff_once"]


class Unsupported(TypeError):
    """The expression has a node without an evaluation rule here."""


_FUNCTIONS = {sp.exp: mp_exp, sp.log: mpmath.log, sp.tanh: mpmath.tanh,
              sp.sinh: mpmath.sinh, sp.cosh: mpmath.cosh, sp.Abs: mpmath.fabs}
_CONSTANTS = {sp.E: mpmath.e, sp.pi: mpmath.pi}
_INFINITE = {sp.oo, -sp.oo, sp.zoo, sp.nan}
_RELATIONS = {sp.StrictLessThan: operator.lt, sp.StrictGreaterThan: operator.gt,
              sp.LessThan: operator.le, sp.GreaterThan: operator.ge,
              sp.Equality: operator.eq, sp.Unequality: operator.ne}


def _free_symbols(e, memo):
    """``e.free_symbols`` (a frozenset), each node of the expression's DAG walked once:
    ``memo`` maps the nodes seen to theirs. (SymPy's walks the tree: a subexpression as
    often as it occurs.)"""
    got = memo.get(e)
    if got is None:
        # Basic.free_symbols is the union of the arguments' (or the symbol itself); a
        # class with bound variables (Derivative, Subs, Lambda, ...) answers for itself
        if e.is_Symbol:
            got = frozenset((e,))
        elif _args_free_symbols(type(e)):
            got = frozenset().union(*[_free_symbols(a, memo) for a in e.args])
        else:
            got = frozenset(e.free_symbols)
        memo[e] = got
    return got


def _args_free_symbols(cls, _known={}):
    """Whether instances of ``cls`` take Basic's free_symbols (the union of their
    arguments'). Read off the class's own attributes in its MRO: ``cls.free_symbols``
    of a function class (exp, log, Max, ...) is its metaclass's property, not the one
    its instances use."""
    got = _known.get(cls)
    if got is None:
        owner = next(c for c in cls.__mro__ if "free_symbols" in c.__dict__)
        got = _known[cls] = owner is sp.Basic
    return got


@contextlib.contextmanager
def diff_once():
    """``sympy.Expr.diff`` by one symbol, without options, remembered per (expression,
    symbol) inside the block: a subexpression's derivative is taken once, however often
    the subexpression occurs. The block runs in one thread of a process that derives
    nothing else meanwhile (a worker, or the main process running a network itself).

    Each derivative is the expression's own rule (``_eval_derivative_n_times``, as
    ``Derivative`` calls it), taken the way ``Derivative`` takes a first derivative by
    one symbol, less the work that cannot change its result: ``Derivative`` reads
    ``free_symbols`` (unmemoized: a walk of the whole tree, at every node of the chain
    rule) to return 0 for an expression without the symbol -- here the free symbols are
    kept per node --, asks ``is_zero`` of the result only to return that same result
    early, and canonicalizes the unevaluated ``Derivative`` nodes of the result, which
    has none unless an expression has no rule (then SymPy's ``diff`` itself runs). So the
    derivative is the very expression ``diff`` returns (backprop's 40 networks and the
    Dense layers: each equal to SymPy's, tests/test_verify_dag_eval.py), without the
    walks: deriving the full run's 40 networks costs 20 s of CPU instead of 55.
    Mul's rule asks for ``arg.diff((s, k))`` (k = 0 or 1): the same derivative (or
    the argument itself), remembered alike.

    The rules of a product, of a power whose exponent is free of the symbol and of a
    function of one argument are SymPy's, less assumption queries whose answers cannot
    change their result in an expression without an infinity (``shortcut``): the
    products with a factor 0 that Mul's rule builds and drops (each asking every other
    factor's ``is_finite``), Pow's 0 * log(base), Function's ``da.is_zero``. Such a
    query walks the assumptions of a new expression at every node of the chain rule:
    about half of a network's derivation. The derivatives stay SymPy's own (every
    network of the full run: the same ``srepr``)."""
    diff, memo, free, holds, finite = sp.Expr.diff, {}, {}, {}, {}
    one = sp.Integer(1)               # the order Derivative passes on

    def free_symbols(e):
        return _free_symbols(e, free)

    def has_derivative(e):
        # an unevaluated Derivative, made only by a function without a rule of its own
        got = holds.get(e)
        if got is None:
            got = holds[e] = isinstance(e, sp.Derivative) or any(
                map(has_derivative, e.args))
        return got

    def no_infinity(e):
        # no infinite or undefined number, no symbol assumed infinite and none assumed
        # zero (1/z of a zero z is infinite, though no oo is written; a da that is 0 by
        # assumption is not SymPy's Zero) anywhere in e: SymPy's product 0 * e is then 0
        # (it is nan only for a factor whose is_finite is False)
        got = finite.get(e)
        if got is None:
            got = finite[e] = e not in _INFINITE and not (e.is_Symbol and (
                e.is_finite is False or e.is_zero is True)) and all(
                map(no_infinity, e.args))
        return got

    def mul_rule(self, s):
        # Mul's own rule (Mul._eval_derivative_n_times for one derivative: the product
        # with each factor in turn replaced by its derivative, summed), less the terms
        # of the factors without s: each is a product with the factor 0, which SymPy
        # makes 0 after asking every other factor's is_finite (a walk of the
        # assumptions of each, new at every node); Add drops the 0s
        args, terms = self.args, []
        for kvals, c in multinomial_coefficients_iterator(len(args), 1):
            if s in free_symbols(args[kvals.index(1)]):
                terms.append(c * sp.Mul(*[a.diff((s, k)) for k, a in zip(kvals, args)]))
        return sp.Add(*terms)

    def shortcut(self, s):
        # the rule SymPy applies to a product, a power with an exponent free of s and a
        # function of one argument, without the assumption queries that cannot change
        # the result here; None for any other expression (its own rule then applies)
        if type(self) is sp.Mul and self.is_commutative:
            return mul_rule(self, s)
        if type(self) is sp.Pow and s not in free_symbols(self.exp):
            # Pow's rule, self (dexp log(base) + dbase exp / base), has dexp = 0: SymPy
            # makes log(base) (asking is base 0, positive, ...) only to multiply it by 0,
            # which gives 0 (log(base) is finite: base holds no infinity, and log(0)
            # would have made self's base an infinity), and 0 + x is x
            return self * (self.base.diff(s) * self.exp / self.base)
        if isinstance(self, sp.Function) and len(self.args) == 1 and \
                type(self)._eval_derivative is sp.Function._eval_derivative:
            # Function's rule, fdiff(1) * da, less its test da.is_zero (a walk of da's
            # assumptions): da is the derivative of an argument holding s, and a 0 (no
            # term left) is SymPy's Zero itself
            da = self.args[0].diff(s)
            if da is sp.S.Zero:
                return da
            try:
                df = self.fdiff(1)
            except ArgumentIndexError:
                df = sp.Function.fdiff(self, 1)
            return df * da
        return None

    def once(self, *symbols, **kwargs):
        s = symbols[0] if len(symbols) == 1 else None
        if type(s) is tuple and len(s) == 2 and isinstance(s[1], (int, sp.Integer)) \
                and s[1] in (0, 1):
            s, k = s          # Mul's rule: (s, 0) is the argument itself, (s, 1) d/ds
            if k == 0 and isinstance(s, sp.Symbol) and not kwargs:
                return self
        # by one Symbol only: a Matrix of symbols (which SymPy also takes) is unhashable
        if kwargs or not isinstance(s, sp.Symbol):
            return diff(self, *symbols, **kwargs)
        key = (self, s)
        got = memo.get(key)
        if got is None:
            if getattr(self, "is_Matrix", False) or not hasattr(self, "_eval_derivative"):
                got = diff(self, s)     # a matrix's zero is a ZeroMatrix; no rule at all
            elif s not in free_symbols(self):
                got = sp.S.Zero
            else:
                got = shortcut(self, s) if no_infinity(self) else None
                if got is None:
                    got = self._eval_derivative_n_times(s, one)
                if got is None or has_derivative(got):      # no rule: SymPy's diff
                    got = diff(self, s)
            memo[key] = got
        return got
    sp.Expr.diff = once
    try:
        yield
    finally:
        sp.Expr.diff = diff


def _compile(exprs, index):
    """Append each node of ``exprs`` (children first) to a list of instructions:
    ("in", k), ("int", n), ("mpf", mpf tuple), ("rat", p, q), ("add", [slots]),
    ("mul", [slots]), ("powi", slot, n), ("sqrt", slot), ("pow", slot, slot),
    ("fn", mpmath function, slot), ("const", mpmath constant), and for a Piecewise
    ("pw", [pair slots]), ("pair", expr slot, condition slot), ("rel", operator, slot,
    slot), ("and" / "or", [slots]), ("not", slot), ("bool", value); ``index`` maps a node to its slot (the inputs are
    there already)."""
    code = [("in", k) for k in range(len(index))]
    out = []
    for root in exprs:
        stack = [(root, False)]
        while stack:
            e, ready = stack.pop()
            if e in index:
                continue
            if not ready:
                stack.append((e, True))
                stack.extend((a, False) for a in reversed(e.args) if a not in index)
                continue
            if e.is_Integer:
                ins = ("int", int(e))
            elif e.is_Rational:
                ins = ("rat", int(e.p), int(e.q))
            elif e.is_Float:
                ins = ("mpf", e._mpf_)
            elif e.is_Add:
                ins = ("add", [index[a] for a in e.args])
            elif e.is_Mul:
                ins = ("mul", [index[a] for a in e.args])
            elif e.is_Pow:
                b, p = e.args
                if p.is_Integer:
                    ins = ("powi", index[b], int(p))
                elif p == sp.S.Half:
                    ins = ("sqrt", index[b])
                else:
                    ins = ("pow", index[b], index[p])
            elif e.func in _FUNCTIONS and len(e.args) == 1:
                ins = ("fn", _FUNCTIONS[e.func], index[e.args[0]])
            elif isinstance(e, sp.Piecewise):
                ins = ("pw", [index[a] for a in e.args])
            elif isinstance(e, ExprCondPair):
                ins = ("pair", index[e.args[0]], index[e.args[1]])
            elif type(e) in _RELATIONS:
                ins = ("rel", _RELATIONS[type(e)], index[e.args[0]], index[e.args[1]])
            elif isinstance(e, (sp.And, sp.Or)):
                ins = ("and" if isinstance(e, sp.And) else "or", [index[a] for a in e.args])
            elif isinstance(e, sp.Not):
                ins = ("not", index[e.args[0]])
            elif e is sp.true or e is sp.false:
                ins = ("bool", e is sp.true)
            elif e in _CONSTANTS:
                ins = ("const", _CONSTANTS[e])
            else:
                raise Unsupported(f"no mpmath rule for {type(e).__name__}")
            index[e] = len(code)
            code.append(ins)
        out.append(index[root])
    return code, out


def program(syms, exprs):
    """An mpmath function of the values of ``syms`` returning the list of the values of
    ``exprs`` (SymPy expressions in those symbols), each shared subexpression evaluated
    once, at the working precision of the call."""
    index = {}
    for s in syms:
        if s in index:
            raise ValueError(f"symbol {s} listed twice")
        index[s] = len(index)
    free = {}                  # the free symbols of the nodes, shared by the expressions
    for e in exprs:
        missing = _free_symbols(sp.sympify(e), free) - set(index)
        if missing:
            raise ValueError(f"free symbols {sorted(map(str, missing))} are not inputs")
    code, roots = _compile([sp.sympify(e) for e in exprs], index)
    mpf = mpmath.mpf
    n_in = len(syms)

    def run(*vals):
        if len(vals) != n_in:
            raise TypeError(f"expected {n_in} values, got {len(vals)}")
        v = list(vals) + [None] * (len(code) - n_in)
        for k in range(n_in, len(code)):
            ins = code[k]
            op = ins[0]
            if op == "add":
                acc = v[ins[1][0]]
                for j in ins[1][1:]:
                    acc = acc + v[j]
            elif op == "mul":
                acc = v[ins[1][0]]
                for j in ins[1][1:]:
                    acc = acc * v[j]
            elif op == "fn":
                acc = ins[1](v[ins[2]])
            elif op == "powi":
                acc = v[ins[1]] ** ins[2]
            elif op == "int":
                acc = mpf(ins[1])
            elif op == "rat":
                acc = mpf(ins[1]) / ins[2]
            elif op == "mpf":
                acc = mpf(ins[1])
            elif op == "pw":                       # the first piece whose condition holds
                acc = next((v[j][1] for j in ins[1] if v[j][0]), mpmath.nan)
            elif op == "pair":
                acc = (v[ins[2]], v[ins[1]])
            elif op == "rel":
                acc = bool(ins[1](v[ins[2]], v[ins[3]]))
            elif op == "and":
                acc = all(v[j] for j in ins[1])
            elif op == "or":
                acc = any(v[j] for j in ins[1])
            elif op == "not":
                acc = not v[ins[1]]
            elif op == "bool":
                acc = ins[1]
            elif op == "const":
                acc = +ins[1]                      # at the working precision
            elif op == "sqrt":
                acc = mpmath.sqrt(v[ins[1]])
            else:                                  # "pow"
                acc = v[ins[1]] ** v[ins[2]]
            v[k] = acc
        return [v[r] for r in roots]
    return run
