"""verify/output_maps.py: correct output-map kernels pass, wrong ones fail (a wrong vjp,
a wrong sparsemax, a vjp outside sparsemax's generalized Jacobian)."""
import numpy as np
import pytest

sp = pytest.importorskip("sympy")
pytest.importorskip("mpmath")

import nnlib.functional as F  # noqa: E402
import verify  # noqa: E402
from verify.output_maps import MAP_NAMES, run_maps, sparsemax_exact  # noqa: E402
from verify.run import Context  # noqa: E402

zs = sp.symbols("z0:4", real=True)


def test_wrong_softmax_vjp_fails():
    def wrong_vjp(Z, G):      # forgets the p factor: g - <g, p>
        p = F.softmax(Z)
        return (G - np.sum(G * p, axis=-1, keepdims=True)).astype(Z.dtype)
    s = sum(sp.exp(v) for v in zs)
    r = verify.check_map([sp.exp(v) / s for v in zs], zs, F.softmax, wrong_vjp,
                         dtypes=["float32"], n_random=4)
    assert not r.passed and r.first_failure.which == "vjp"


def test_check_map_answers_a_row_both_dtypes_share_once(monkeypatch):
    # the fixed rows (zeros, ties, 1e4, ...) are the same numbers in float32 and float64:
    # the SymPy oracle evaluates each distinct row once, and the float32 kernel is still
    # held to the answer on every row
    import verify.api as api
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", "off")
    made, rows = api._sym_oracle, []

    def counting(*args):
        oracle = made(*args)

        def counted(row):
            rows.append(tuple(row))
            return oracle(row)
        counted.cache_key = oracle.cache_key
        return counted
    monkeypatch.setattr(api, "_sym_oracle", counting)
    s = sum(sp.exp(v) for v in zs)
    exprs = [sp.exp(v) / s for v in zs]
    r = verify.check_map(exprs, zs, F.softmax, F.softmax_vjp, n_random=4)
    assert r.passed, r.first_failure
    n64 = len(api.map_rows(np.float64, 4, np.random.default_rng(0), 4))
    assert len(rows) == len(set(rows)) and n64 < len(rows) < 2 * n64

    def wrong_on_zeros_in_float32(Z):
        p = np.asarray(F.softmax(Z))
        if Z.dtype == np.float32:
            p[np.all(Z == 0, axis=1)] *= np.float32(1.001)
        return p
    r = verify.check_map(exprs, zs, wrong_on_zeros_in_float32, F.softmax_vjp, n_random=4)
    assert not r.passed and r.first_failure.which == "forward"
    assert r.first_failure.dtype == "float32"


def test_sparsemax_oracle_on_known_points():
    p, supports = sparsemax_exact([2.0, 0.0, 0.0])
    assert p == [1, 0, 0] and supports == [(0,)]
    p, supports = sparsemax_exact([0.5, 0.5, 0.0])          # tau = 0: z_2 sits on the edge
    assert p == [0.5, 0.5, 0] and set(supports) == {(0, 1), (0, 1, 2)}


def test_wrong_sparsemax_fails():
    from verify.output_maps import _sparsemax_oracle
    r = verify.check_map(None, zs, F.softmax, F.softmax_vjp, oracle=_sparsemax_oracle,
                         dtypes=["float64"], n_random=4)
    assert not r.passed


def test_sparsemax_vjp_checked_against_the_generalized_jacobian():
    from verify.output_maps import _sparsemax_oracle
    rows = np.array([[0.5, 0.5, 0.0, -0.25], [1.0, 0.0, 0.0, 0.0]])   # support changes

    def mean_of_one_sided(Z, G, factor=1.0):
        out = []
        for zr, gr in zip(Z, G):
            _, jacs, _ = _sparsemax_oracle([float(v) for v in zr])
            vs = [np.array(J, dtype=float).T @ gr for J in jacs]
            out.append(factor * np.mean(vs, axis=0))
        return np.array(out, dtype=Z.dtype)
    ok = verify.check_map(None, zs, F.sparsemax, mean_of_one_sided,
                          oracle=_sparsemax_oracle, rows=rows)
    assert ok.passed, ok.first_failure
    assert ok.kinks and all(k["picked"].startswith("interior") for k in ok.kinks)
    bad = verify.check_map(None, zs, F.sparsemax,
                           lambda Z, G: mean_of_one_sided(Z, G, 2.0),
                           oracle=_sparsemax_oracle, rows=rows)
    assert not bad.passed and bad.first_failure.point == rows[0].tolist()
    assert "convex hull" in bad.first_failure.detail


def test_registry_maps_proved_and_pass():
    items = run_maps(Context(quick=True, dtypes=["float64", "float32"]))
    assert [it["name"] for it in items] == MAP_NAMES
    for it in items:
        assert it["proof"]["status"] == "proved", it["name"]
        assert it["passed"], (it["name"], it["evidence"] and it["evidence"]["first_failure"])


def test_the_map_and_loss_proofs_zero_test_decides_as_cancel_did():
    # the softmax, log-softmax and cross-entropy proofs decide each entry by
    # verify.convexity.is_zero_rational (in place of cancel(e) == 0): on the entries they
    # prove it answers as cancel, and an entry off by a factor (p_i p_j halved, the 1 of
    # delta_ij dropped, the gradient's e_y doubled) is refuted by both
    from verify.convexity import is_zero_rational
    from verify.losses import _ce
    from verify.output_maps import C, P, ZS, _log_softmax_exprs
    p = sp.Matrix(P)
    J_soft = p.jacobian(ZS)
    J_log = sp.Matrix(_log_softmax_exprs(ZS)).jacobian(ZS)
    grad = [sp.diff(_ce(ZS, 0), v) for v in ZS]
    right = ([J_soft[i, j] - (P[i] * int(i == j) - P[i] * P[j]) for i in range(C)
              for j in range(C)]
             + [J_log[i, j] - (int(i == j) - P[j]) for i in range(C) for j in range(C)]
             + [grad[i] - (P[i] - int(i == 0)) for i in range(C)])
    wrong = ([J_soft[0, 1] + P[0] * P[1] / 2, J_log[1, 1] - (0 - P[1]),
              grad[0] - (P[0] - 2)])
    for e in right:
        assert is_zero_rational(e) and sp.cancel(e) == 0
    for e in wrong:
        assert is_zero_rational(e) is False and sp.cancel(e) != 0


def test_the_map_proofs_fail_with_a_wrong_closed_form(monkeypatch):
    # _prove_softmax's Jacobian and vjp steps with P replaced in the closed forms by a
    # slipped softmax (one term of its denominator dropped): each entry's zero test fails
    import verify.output_maps as om
    wrong_p = [sp.exp(v) / sum(sp.exp(w) for w in ZS_[1:]) for v, ZS_ in
               ((v, om.ZS) for v in om.ZS)]
    assert om._prove_softmax().passed
    monkeypatch.setattr(om, "P", wrong_p)
    pr = om._prove_softmax()
    assert not pr.passed
    assert [s.status for s in pr.steps][:2] == ["failed", "failed"]
