"""verify/: convexity verdicts, backprop of small networks, the dense layer's proof and the
notes' worked examples."""
import itertools

import numpy as np
import pytest

sp = pytest.importorskip("sympy")
pytest.importorskip("mpmath")

from verify.backprop import check_network  # noqa: E402
from verify.convexity import (_exp_free, _numerator_is_zero, is_zero_rational,  # noqa: E402
                              run_convexity, sos_certificate)
from verify.convexity import _cases as _convexity_cases  # noqa: E402
from verify.dense import prove_dense  # noqa: E402
from verify.notes_examples import run_notes  # noqa: E402
from verify.run import Context  # noqa: E402

EXPECTED = {
    "squared error (1-d)": "strictly convex (proved)",
    "softmax cross-entropy in the logits (C = 3)": "convex (proved)",
    "logistic loss in w (one sample, label 1)": "convex (proved)",
    "L2-regularized logistic regression (2 samples, lambda > 0)": "strictly convex (proved)",
    "sigmoid": "not convex",
    "one-hidden-layer network's squared loss in its weights": "not convex",
    "(ab - 1)^2 (SymPy's is_convex is None on it)": "not convex",
}


@pytest.fixture(scope="module")
def convexity_items():
    return {it["name"]: it for it in run_convexity(Context(quick=True))}


def test_every_convexity_case_gets_its_expected_verdict(convexity_items):
    for name, it in convexity_items.items():
        assert it["passed"], (name, it["verdict"])
    for name, verdict in EXPECTED.items():
        assert convexity_items[name]["verdict"] == verdict


def test_non_convex_verdicts_carry_a_concrete_witness(convexity_items):
    for name in ("sigmoid", "one-hidden-layer network's squared loss in its weights"):
        claims = " ".join(s["claim"] for s in convexity_items[name]["steps"]
                          if s["status"] == "proved")
        assert "< 0" in claims and "chord violated" in claims


def test_sos_certificate_rejects_a_wrong_hessian_claim():
    zs = sp.symbols("z0:3", real=True)
    S = sum(sp.exp(u) for u in zs)
    p = [sp.exp(u) / S for u in zs]
    H = sp.hessian(-sp.log(p[0]), zs)
    v = sp.Matrix(sp.symbols("v0:3", real=True))
    pairs = list(itertools.combinations(range(3), 2))
    right = sum(p[i] * p[j] * (v[i] - v[j]) ** 2 for i, j in pairs)
    wrong = sum(p[i] * p[j] * (v[i] + v[j]) ** 2 for i, j in pairs)
    assert sos_certificate(H, v, right)
    assert not sos_certificate(H, v, wrong)


@pytest.mark.parametrize("act,loss", [("sigmoid", "softmax_cross_entropy"),
                                      ("relu", "hinge_loss")])
def test_backprop_of_a_small_network_matches_sympy(act, loss):
    r = check_network(act, loss)
    for dname, res in r.items():
        assert res["passed"], (dname, res)
        assert max(res["grad_err_eps"].values()) < 64


def test_dense_backward_is_proved_for_a_generic_activation():
    assert prove_dense().status == "proved"


def test_dense_evidence_substitutes_each_activation_as_subs_does():
    """check_dense builds H with xreplace: for every registered activation, the very
    expressions subs makes (so its exact values are those subs gave)."""
    import sympy as sp
    from verify.dense import N, _mats
    from verify.registry import ACTIVATIONS, z
    X, W, b, _ = _mats()
    Z = X * W + sp.ones(N, 1) * b
    for act in ACTIVATIONS:
        defn = act.definition.subs(act.evidence_params)
        for e in Z:
            assert sp.srepr(defn.xreplace({z: e})) == sp.srepr(defn.subs(z, e)), act.name


def test_the_notes_worked_examples():
    items = run_notes(Context(quick=True))
    assert len(items) >= 8
    for it in items:
        assert it["passed"], it["name"]


def test_every_exported_kernel_and_optimizer_has_a_verify_entry():
    from verify.run import coverage
    [item] = coverage(Context())
    assert item["passed"], item["verdict"]


def test_exact_forward_batch_equals_the_rational_forward_point_by_point():
    # the XOR decision-region check compares nnlib with the batched exact forward: it must
    # give the bits of the one-point Fraction forward, including on the hyperplanes
    from verify.notes_examples import (XOR_NETWORKS, _exact_forward, _exact_forward_batch,
                                       xor_grid)
    for _, (_, enc, layers, _) in XOR_NETWORKS.items():
        _, G = xor_grid(enc, n=12)
        G = np.vstack([G, [[-0.05, -0.05], [0.75, 0.75], [0.5, 0.5], [1e-300, -3.0]]])
        want = np.array([float(_exact_forward(layers, g)) for g in G])
        got = _exact_forward_batch(layers, G)
        assert got.tobytes() == want.tobytes()


def test_the_rational_zero_test_answers_as_cancel_where_its_field_does_not_apply():
    # symbols that do not commute are not variables of QQ(symbols), and a denominator
    # that is 0 as a function (though not written 0) makes no field element: both are
    # left to cancel(expand(d)), which rejects them, as a zero exponential identity passes
    x = sp.Symbol("x")
    n, m = sp.symbols("n m", commutative=False)
    assert is_zero_rational(n * m - m * n) is False
    assert is_zero_rational(x + 1 / ((x + 1) ** 2 - x ** 2 - 2 * x - 1)) is False
    assert is_zero_rational(
        x / ((sp.exp(x) + 1) ** 2 - sp.exp(2 * x) - 2 * sp.exp(x) - 1)) is False
    assert is_zero_rational((sp.exp(x) + 1) ** 2 - sp.exp(2 * x) - 2 * sp.exp(x) - 1)


def _random_rational(rng, xs, depth=2):
    """A random rational function of ``xs`` written with sums, products and integer
    powers (negative ones included), as SymPy builds it without simplifying."""
    if depth == 0:
        return rng.choice(list(xs) + [sp.Rational(rng.randint(-5, 5), rng.randint(1, 4))])
    a, b = _random_rational(rng, xs, depth - 1), _random_rational(rng, xs, depth - 1)
    op = rng.randrange(4)
    if op == 0:
        return a + b
    if op == 1:
        return a * b
    if op == 2:
        return a - 2 * b
    base = a + 1 + sum(x ** 2 for x in xs)            # never 0 as a function
    return base ** rng.choice([-2, -1, 2])


def test_the_numerator_zero_test_agrees_with_the_field_on_identities_and_near_misses():
    # _numerator_is_zero (a common denominator, no gcds) against the field's normal form
    # on zero identities (a sum minus its own cancel / together / expansion) and on the
    # same identity off by a small rational function: a wrong common denominator (a
    # factor dropped or not raised to the largest power) turns one into the other
    import random
    from sympy.polys.fields import field
    rng = random.Random(4)
    xs = sp.symbols("x y", real=True)
    K = field(xs, sp.QQ)[0]
    n_zero = n_nonzero = 0
    for _ in range(20):
        e = _random_rational(rng, xs, 2) + _random_rational(rng, xs, 1) / (
            _random_rational(rng, xs, 1) ** 2 + 1)
        for other in (sp.cancel(e), sp.together(e), sp.expand(e)):
            for d in (e - other, e - other + 1 / (7 * (xs[0] ** 2 + 3) ** 2)):
                gens = sorted(d.free_symbols, key=sp.default_sort_key) or list(xs)
                got = _numerator_is_zero(d, gens)
                assert got is not None
                assert got == (K.from_expr(d) == 0) if d.free_symbols else got == (d == 0)
                n_zero += got
                n_nonzero += not got
    assert n_zero > 30 and n_nonzero > 30
    # every convexity certificate's identity, as sos_certificate forms it, and off by
    # one of its terms halved
    for case in [c for c in _convexity_cases() if c.get("sos") is not None]:
        xs_c = case["vars"]
        H = sp.hessian(case["f"], xs_c)
        v = sp.Matrix(sp.symbols(f"v0:{len(xs_c)}", real=True))
        sos = case["sos"](v)
        q = (v.T * H * v)[0, 0]
        for d in (q - sos, q - sos + sp.Add.make_args(sos)[0] / 2):
            e = _exp_free(d)
            gens = sorted(e.free_symbols, key=sp.default_sort_key)
            want = field(gens, sp.QQ)[0].from_expr(e) == 0
            assert _numerator_is_zero(e, gens) == want
            assert is_zero_rational(d) == want


def test_the_numerator_zero_test_leaves_what_it_cannot_write_to_the_field():
    # a non-integer power, a number outside QQ and a division by a polynomial that is 0
    # (though not written 0) are not decided here (None): is_zero_rational's field and
    # cancel decide them
    x, y = sp.symbols("x y", real=True)
    assert _numerator_is_zero(sp.sqrt(x) + y, [x, y]) is None
    assert _numerator_is_zero(sp.pi * x, [x]) is None
    assert _numerator_is_zero(x / ((x + 1) ** 2 - x ** 2 - 2 * x - 1), [x]) is None
    assert _numerator_is_zero(1 / (x + 1) + 1 / (x + 1) ** 2 - (x + 2) / (x + 1) ** 2,
                              [x]) is True
    assert _numerator_is_zero(1 / (x + 1) + 1 / (x + 1) ** 2 - (x + 1) / (x + 1) ** 2,
                              [x]) is False


def test_the_numerator_zero_test_takes_a_zeroth_power_as_1():
    # SymPy's b**0 is 1 for every b, 0 included (the field and cancel agree); the
    # polynomial ring refuses 0**0 for a base that is 0 though not written 0
    x = sp.Symbol("x")
    zero = (x + 1) ** 2 - x ** 2 - 2 * x - 1
    assert _numerator_is_zero(sp.Pow(zero, 0, evaluate=False) - 1, [x]) is True
    assert is_zero_rational(sp.Pow(zero, 0, evaluate=False) - 1)
    assert _numerator_is_zero(sp.Pow(x, 0, evaluate=False) - x, [x]) is False


def test_the_rational_zero_test_decides_the_notes_single_unit_gradient():
    # the notes' claim dL/da_j = (2/n) sum_i (z_i - Y_i) z_i (1 - z_i) X_ij, z_i a sigmoid
    # of a sum (exponentials of sums: each exp(a_j X_ij) a variable of the field): proved
    # as cancel proves it, and refuted with the factor 2 or a factor z_i dropped
    n = d = 2
    a = sp.symbols(f"a0:{d}", real=True)
    X = sp.Matrix(n, d, lambda i, j: sp.Symbol(f"X_{i}{j}", real=True))
    Y = sp.symbols(f"Y0:{n}", real=True)
    zs = [1 / (1 + sp.exp(-sum(a[j] * X[i, j] for j in range(d)))) for i in range(n)]
    L = sum((zs[i] - Y[i]) ** 2 for i in range(n)) / n
    for j in range(d):
        dL = sp.diff(L, a[j])
        right = 2 * sum((zs[i] - Y[i]) * zs[i] * (1 - zs[i]) * X[i, j] for i in range(n)) / n
        assert is_zero_rational(dL - right) and sp.cancel(dL - right) == 0
        assert is_zero_rational(dL - right / 2) is False
        assert is_zero_rational(dL - 2 * sum((zs[i] - Y[i]) * (1 - zs[i]) * X[i, j]
                                             for i in range(n)) / n) is False


def test_backprop_affine_is_sympys_matrix_product_and_sum():
    # backprop's A W + 1 b by Add(*products, b_j) must be the very expressions SymPy's
    # Matrix product and sum make: a zero entry of A (dropped by SymPy's sparse product),
    # a repeated entry, expressions with exponentials (an activation of each unit) and a
    # column of b that the product's terms already hold
    from verify.backprop import _affine
    W = sp.Matrix(3, 2, lambda i, j: sp.Symbol(f"W_{i}{j}"))
    b = sp.Matrix(1, 2, lambda i, j: sp.Symbol(f"b_{j}"))
    u = sp.Symbol("u")
    for A in (sp.Matrix([[sp.Rational(3, 8), 0, -2], [1, 1, sp.Rational(-1, 4)]]),
              sp.Matrix(2, 3, lambda i, j: 1 / (1 + sp.exp(-(i + 1) * u - j))),
              sp.Matrix([[b[0, 0], W[0, 1], 0], [sp.tanh(u), 0, 0]])):
        want = A * W + sp.ones(2, 1) * b
        got = _affine(A, W, b)
        assert got.shape == want.shape
        assert all(sp.srepr(g) == sp.srepr(w) for g, w in zip(got, want))
    # and the comparison tells a product without the bias apart
    A = sp.Matrix([[1, 2, 3], [4, 5, 6]])
    assert _affine(A, W, b) != A * W


def test_nonnegative_certificate_tries_its_candidates_in_turn():
    # made lazily, each candidate still gets its turn: a term non-negative as written,
    # one only once factored, one only in exponentials (the third candidate, named in
    # the certificate); and no certificate for a term that is negative somewhere
    from verify._exact import nonnegative_certificate
    x, y = sp.symbols("x y", real=True)
    assert nonnegative_certificate(3 * (x - y) ** 2)[0] is True
    assert nonnegative_certificate(x ** 2 + 2 * x * y + y ** 2)[0] is True
    ok, how = nonnegative_certificate(2 * sp.cosh(x) - 2)
    assert ok is True and "e^{x} - 1" in how
    for bad in (x - 1, x ** 2 - 2 * x * y, -(x - y) ** 2 - 1, sp.exp(x) - 2):
        assert nonnegative_certificate(bad)[0] is None, bad


def test_convexity_hessians_are_sympys_under_diff_once():
    # decide() and curvature_sweep() derive each many-variable case's Hessian (of f, and
    # of f with its other symbols fixed at 1/3) under dag_eval.diff_once: the matrix must
    # be the one sp.hessian gives without it, entry for entry
    from verify.convexity import _cases
    from verify.dag_eval import diff_once
    from sympy.core.cache import clear_cache
    n = 0
    for case in _cases():
        xs = case["vars"]
        if len(xs) < 2:
            continue
        f = case["f"]
        fixed = {s: sp.Rational(1, 3) for s in f.free_symbols - set(xs)}
        for g in (f, f.subs(fixed)):
            clear_cache()
            want = sp.hessian(g, xs)
            clear_cache()
            with diff_once():
                got = sp.hessian(g, xs)
            assert all(sp.srepr(a) == sp.srepr(b) for a, b in zip(got, want)), case["name"]
            n += 1
    assert n >= 6
