"""verify/losses.py: correct loss kernels pass, wrong ones fail (naming the row or the kink)."""
import numpy as np
import pytest

sp = pytest.importorskip("sympy")
pytest.importorskip("mpmath")

import nnlib.functional as F  # noqa: E402
import verify  # noqa: E402
from verify.losses import LOSS_NAMES, _ce, run_losses  # noqa: E402
from verify.output_maps import P, ZS  # noqa: E402
from verify.proofs import Proof  # noqa: E402
from verify.run import Context  # noqa: E402

zs = sp.symbols("z0:4", real=True)


def _ce_inputs(dt):
    rng = np.random.default_rng(3)
    Z = (rng.standard_normal((6, 4)) * 2).astype(dt)
    return [(Z, rng.integers(0, 4, 6))]


def test_correct_softmax_cross_entropy_passes():
    r = verify.check_loss(lambda y: _ce(zs, int(y)), zs, F.softmax_cross_entropy,
                          F.softmax_cross_entropy_grad, inputs=_ce_inputs)
    assert r.passed, r.first_failure


def test_wrong_softmax_cross_entropy_grad_fails_naming_the_row():
    def wrong(Z, y):          # softmax + e_y instead of softmax - e_y
        n = Z.shape[0]
        return (F.softmax(Z) + np.eye(Z.shape[1], dtype=Z.dtype)[y]) / np.asarray(n, Z.dtype)
    r = verify.check_loss(lambda y: _ce(zs, int(y)), zs, F.softmax_cross_entropy, wrong,
                          inputs=_ce_inputs, dtypes=["float64"])
    assert not r.passed
    f = r.first_failure
    assert f.which == "grad" and "row 0" in str(f.point)


def _repeated_rows(dt):
    # the same logits in two batches and twice in one, under two labels: each (label,
    # row) is a different exact answer, each evaluated once
    Z = np.array([[0.5, -1.0, 2.0, 0.25], [0.5, -1.0, 2.0, 0.25], [3.0, 0.0, -2.0, 1.0]])
    return [(Z.astype(dt), np.array([1, 2, 1])), (Z[:2].astype(dt), np.array([2, 1]))]


def test_check_loss_evaluates_each_rows_exact_answer_once(monkeypatch):
    import verify.api as api
    calls = []

    def counted(fn, *args, **kw):
        calls.append(tuple(args))
        return api_exact(fn, *args, **kw)
    api_exact = api.exact
    monkeypatch.setattr(api, "exact", counted)
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", "off")
    r = verify.check_loss(lambda y: _ce(zs, int(y)), zs, F.softmax_cross_entropy,
                          F.softmax_cross_entropy_grad, inputs=_repeated_rows)
    assert r.passed, r.first_failure
    # (label 1 | label 2) x (row a | row c): 3 answers, a value and a gradient each
    assert len(calls) == 2 * 3

    def wrong_for_label_2(Z, y):      # right for label 1, + e_y for label 2
        g = np.asarray(F.softmax_cross_entropy_grad(Z, y))
        return g + (np.eye(Z.shape[1], dtype=Z.dtype)[y] * (y == 2)[:, None]
                    / np.asarray(Z.shape[0], Z.dtype))
    r = verify.check_loss(lambda y: _ce(zs, int(y)), zs, F.softmax_cross_entropy,
                          wrong_for_label_2, inputs=_repeated_rows, dtypes=["float64"])
    assert not r.passed and "row 1" in str(r.first_failure.point)


def test_wrong_hessian_claim_is_refuted():
    pr = Proof("ce")
    H = sp.hessian(_ce(ZS, 0), ZS)
    wrong = sp.diag(*P) + sp.Matrix(P) * sp.Matrix(P).T          # + instead of -
    pr.identity("H_{00}", H[0, 0], wrong[0, 0])
    right = sp.diag(*P) - sp.Matrix(P) * sp.Matrix(P).T
    pr.identity("H_{01}", H[0, 1], right[0, 1])
    assert [s.status for s in pr.steps] == ["failed", "proved"]
    assert "differ by" in pr.steps[0].method


def test_registry_losses_proved_and_pass():
    items = run_losses(Context(quick=True, dtypes=["float64", "float32"]))
    assert [it["name"] for it in items] == LOSS_NAMES
    for it in items:
        assert it["proof"]["status"] == "proved", it["name"]
        assert it["passed"], (it["name"], it["evidence"] and it["evidence"]["first_failure"])


# ------------------------------------------------------------------- subgradients at kinks

def _hinge_inputs(dt):
    # row 0: h = 1 + z_1 - z_0 = 0 (the kink, one competitor); row 1: smooth (h > 0)
    return [(np.array([[2.0, 1.0, 0.0, -1.0], [0.0, 1.0, 0.5, -1.0]], dtype=dt),
             np.array([0, 0]))]


def _hinge_grad_scaled_at_kink(factor):
    def grad(Z, y):
        g = F.hinge_loss_grad(Z, y).copy()
        g[0] *= factor                     # row 0 is the kink
        return g
    return grad


def test_hinge_gradient_outside_the_subdifferential_fails_naming_the_point():
    from verify.losses import _hinge_oracle
    r = verify.check_loss(None, zs, F.hinge_loss, _hinge_grad_scaled_at_kink(2.0),
                          inputs=_hinge_inputs, oracle=_hinge_oracle(1.0))
    assert not r.passed
    f = r.first_failure
    assert "row 0" in str(f.point) and "[2.0, 1.0, 0.0, -1.0]" in str(f.point)
    assert "not a subgradient" in f.detail


def test_hinge_interior_subgradient_passes_and_the_correct_kernel_picks_a_vertex():
    from verify.losses import _hinge_oracle
    half = verify.check_loss(None, zs, F.hinge_loss, _hinge_grad_scaled_at_kink(0.5),
                             inputs=_hinge_inputs, oracle=_hinge_oracle(1.0))
    assert half.passed, half.first_failure
    assert half.kinks and all(k["picked"].startswith("interior point 0.5") and
                              k["subdifferential"] == "conv{0, e_1 - e_0}" for k in half.kinks)
    real = verify.check_loss(None, zs, F.hinge_loss, F.hinge_loss_grad,
                             inputs=_hinge_inputs, oracle=_hinge_oracle(1.0))
    assert real.passed and {k["picked"] for k in real.kinks} == {"vertex e_1 - e_0"}


def test_a_wrong_kink_rule_in_the_hinge_proof_is_refuted(monkeypatch):
    import verify.losses as ml
    good = ml._hinge_kernel_rule
    assert ml._prove_hinge().status == "proved"
    monkeypatch.setattr(ml, "_hinge_kernel_rule", lambda *a: 2 * good(*a))
    pr = ml._prove_hinge()
    assert pr.status == "failed"
    assert any(s.status == "failed" and "h = 0" in s.claim for s in pr.steps)


def test_the_loss_proofs_derivatives_under_diff_once_are_sympys(monkeypatch):
    """_prove_ce and _prove_sparsemax_loss take their derivatives under dag_eval.diff_once:
    every one is the expression SymPy's diff returns, so each proof decides what it
    decided without the block."""
    from verify import losses
    from verify.dag_eval import diff_once
    for yv in range(len(ZS)):
        L = _ce(ZS, yv)
        plain = [sp.diff(L, v) for v in ZS] + list(sp.hessian(L, ZS))
        with diff_once():
            once = [sp.diff(L, v) for v in ZS] + list(sp.hessian(L, ZS))
        assert [sp.srepr(e) for e in once] == [sp.srepr(e) for e in plain]
    # the sparsemax loss's fy on every region and label: the derivatives the proof takes
    seen = []
    real_diff = sp.diff

    def spy(e, *a):
        seen.append((e, a))
        return real_diff(e, *a)
    monkeypatch.setattr(losses.sp, "diff", spy)
    assert losses._prove_sparsemax_loss().passed
    monkeypatch.setattr(losses.sp, "diff", real_diff)
    assert len(seen) == 7 * 3 * 3
    with diff_once():
        once = [sp.diff(e, *a) for e, a in seen]
    assert [sp.srepr(e) for e in once] == [sp.srepr(real_diff(e, *a)) for e, a in seen]
