"""verify/: correct kernels pass, deliberately wrong ones fail (naming the point), proofs
hold for the registry and fail for false closed forms, the CLI writes its report."""
import copy
import json

import numpy as np
import pytest

sp = pytest.importorskip("sympy")
pytest.importorskip("mpmath")

import mpmath  # noqa: E402

import nnlib.functional as F  # noqa: E402
import verify  # noqa: E402
from verify.evidence import MPMATH, exact, lambdify, measure, mp_exp, ulp  # noqa: E402
from verify.proofs import prove_activation  # noqa: E402
from verify.registry import ACTIVATION_BY_NAME, ACTIVATIONS  # noqa: E402

z = sp.Symbol("z", real=True)
SIG = 1 / (1 + sp.exp(-z))


# ------------------------------------------------------------------- evidence machinery

def test_ulp_of_one_and_of_zero():
    assert ulp(mpmath.mpf(1), np.float64) == mpmath.mpf(2) ** -52
    assert ulp(mpmath.mpf(1), np.float32) == mpmath.mpf(2) ** -23
    assert ulp(mpmath.mpf(0), np.float64) == mpmath.mpf(2) ** -1074   # smallest subnormal


def test_correctly_rounded_value_is_within_half_an_ulp():
    e = mpmath.mpf(1) / 3
    assert measure(1 / 3, e, np.float64).ulps <= 0.5
    assert measure(np.float32(1 / 3), e, np.float32).ulps <= 0.5
    assert measure(np.nextafter(1 / 3, 1), e, np.float64).ulps > 0.5


def test_oracle_survives_cancellation_and_huge_arguments():
    # log(1 + e^-710) = 4.47e-309 (a float64 subnormal) is 0 at 40 digits: the oracle must
    # raise its precision instead of accepting 0.
    f = sp.lambdify(z, sp.log(1 + sp.exp(z)), "mpmath")
    v = exact(f, mpmath.mpf(-710))
    assert abs(v - mpmath.exp(-710)) < mpmath.mpf(10) ** -320
    d = sp.lambdify(z, sp.diff(SIG, z), "mpmath")       # float64 lambdify: NaN at -800
    assert float(exact(d, mpmath.mpf(-800))) == 0.0 and exact(d, mpmath.mpf(-800)) > 0



@pytest.mark.parametrize("dps", [40, 180, 400, 1280])
@pytest.mark.parametrize("x", [0, 1, -1, 2, 0.5, -3.25, 88, 700, -700, -745, 2.0 ** 60,
                               1e300, -1e300])
def test_mp_exp_is_mpmath_exp_to_the_working_precision(x, dps):
    # The oracle's exp skips mpmath's e ** n shortcut for integer n above 600 bits; its
    # value must still be exp(x) to the working precision (one extra rounding at most).
    with mpmath.workdps(dps):
        got, want = mp_exp(x), mpmath.exp(x)
        assert abs(got - want) <= mpmath.mpf(2) ** (4 - mpmath.mp.prec) * want


def test_oracle_lambdify_modules_use_mp_exp():
    f = sp.lambdify(z, sp.exp(z) + sp.log(1 + sp.exp(-z)), MPMATH)
    assert f.__globals__["exp"] is mp_exp
    with mpmath.workdps(400):
        assert abs(f(mpmath.mpf(700)) - mpmath.exp(700) - mpmath.log1p(mpmath.exp(-700))) \
            < mpmath.mpf(10) ** -380 * mpmath.exp(700)


def _settled_by_definition(a, b, last):
    """The oracle's agreement test as written on mpf (the definition evidence._settled
    computes on their tuples)."""
    from verify.evidence import _TINY, _agree
    if mpmath.isnan(a) or mpmath.isnan(b):
        return False
    if a == 0 and b == 0:
        return last
    if abs(a - b) <= _agree() * max(abs(a), abs(b)):
        return True
    return last and abs(a) < _TINY and abs(b) < _TINY


def test_oracle_agreement_test_is_its_definition():
    # every pair of a grid of values (0, nan, +-inf, below and above 2^-1100, pairs that
    # differ by about 1e-30 relatively on either side, signs), at two working precisions
    # and both values of ``last``: evidence._settled answers as the mpf expression does
    from verify.evidence import _settled
    vals = []
    with mpmath.workdps(80):
        for base in (mpmath.mpf(1) / 3, mpmath.mpf(2) ** -1100 / 3, mpmath.mpf(10) ** -400,
                     mpmath.mpf(10) ** 300 / 7, mpmath.mpf(-5) / 9):
            for rel in (0, 10 ** -31, 9 * mpmath.mpf(10) ** -31, 10 ** -30,
                        1.1 * mpmath.mpf(10) ** -30, 10 ** -29, -(10 ** -31), 1):
                vals.append(base * (1 + rel))
    vals += [mpmath.mpf(0), mpmath.nan, mpmath.inf, -mpmath.inf, mpmath.mpf(2) ** -1100]
    n = 0
    for prec in (53, 300):
        with mpmath.workprec(prec):
            for a in vals:
                for b in vals:
                    for last in (False, True):
                        assert _settled(a, b, last) == _settled_by_definition(a, b, last), \
                            (a, b, last, prec)
                        n += _settled(a, b, last)
    assert 0 < n < 2 * 2 * len(vals) ** 2       # both answers occur


def _measure_by_definition(c, e, dtype):
    """measure's figures as its docstring defines them: |c - e| / ulp(e), / |e| (normal
    range), / eps, each a division at the working precision."""
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    d = abs(mpmath.mpf(float(c)) - e)
    return (float(d / ulp(e, dtype)), float(d / abs(e)) if abs(e) >= tiny else 0.0,
            float(d / eps))


_EXACTS = [mpmath.mpf(1) / 3, -mpmath.mpf(2) / 7, mpmath.mpf(10) ** -310 / 3,
           mpmath.mpf(2) ** -1074 * 5 / 3, mpmath.mpf(2) ** -149 / 3, mpmath.mpf(10) ** 300 / 7,
           mpmath.mpf(2) ** -126 * (1 + mpmath.mpf(10) ** -20), mpmath.mpf(3) ** 40,
           -mpmath.mpf(2) ** 127 * 3 / 2, mpmath.mpf(1) + mpmath.mpf(10) ** -70]


@pytest.mark.parametrize("dps", [15, 50, 100])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_measure_is_its_definition_bit_for_bit(dtype, dps):
    # measure shifts instead of dividing by the powers of two ulp(e) and eps: the same
    # floats, at every working precision, for exact values of every size and bit length
    for e in _EXACTS:
        with mpmath.workdps(dps):
            e = +e
            with np.errstate(over="ignore", under="ignore"):
                near = float(dtype(float(e)))
            for c in (near, float(np.nextafter(dtype(near), dtype(np.inf))), 0.0, -near,
                      near * (1 + 2 ** -30)):
                m = measure(c, e, dtype)
                if np.isinf(c) or abs(e) > np.finfo(dtype).max:
                    continue
                assert (m.ulps, m.rel, m.abs_eps) == _measure_by_definition(c, e, dtype), \
                    (c, e)


@pytest.mark.parametrize("dps", [15, 50, 100])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_measure_of_random_values_is_its_definition_bit_for_bit(dtype, dps):
    # measure works on the values' _mpf_ tuples: random exact values of random sizes (at
    # the working precision and beyond it) against computed values near and far from them
    rng = np.random.default_rng(11)
    info = np.finfo(dtype)
    for _ in range(300):
        with mpmath.workdps(dps):
            e = mpmath.mpf(float(rng.standard_normal())) * mpmath.mpf(2) ** int(
                rng.integers(info.minexp - info.nmant - 2, info.maxexp - 1)) * (
                1 + mpmath.mpf(1) / int(rng.integers(3, 10 ** 9)))
            with np.errstate(over="ignore", under="ignore"):
                near = float(dtype(float(e)))
            for c in (near, float(np.nextafter(dtype(near), dtype(-np.inf))),
                      near * (1 + float(rng.uniform(-1e-3, 1e-3))), 0.0):
                if not np.isfinite(c) or abs(e) > info.max:
                    continue
                m = measure(c, e, dtype)
                assert (m.ulps, m.rel, m.abs_eps) == _measure_by_definition(c, e, dtype), \
                    (c, e)


def test_measure_of_special_exact_values():
    for dtype in (np.float64, np.float32):
        assert measure(0.0, mpmath.mpf(0), dtype).ulps == 0.0
        assert measure(np.finfo(dtype).tiny, mpmath.mpf(0), dtype).ulps == \
            2.0 ** (np.finfo(dtype).nmant)                  # tiny in subnormal spacings
        assert measure(np.inf, mpmath.inf, dtype).ulps == 0.0
        assert measure(1.0, mpmath.inf, dtype).ulps == np.inf
        assert measure(np.inf, mpmath.mpf(10) ** 400, dtype).ulps == 0.0
        assert measure(-np.inf, -mpmath.mpf(10) ** 400, dtype).ulps == 0.0
        assert measure(np.inf, -mpmath.mpf(10) ** 400, dtype).ulps == np.inf
        assert measure(float(np.finfo(dtype).max), mpmath.mpf(10) ** 400, dtype).rel == np.inf
        assert measure(np.inf, mpmath.mpf(1), dtype).abs_eps == np.inf
        assert measure(np.nan, mpmath.mpf(1), dtype).ulps == np.inf


def test_oracle_lambdify_is_sympys_function_without_its_docstring():
    import inspect
    exprs = [SIG, sp.diff(SIG, z), [sp.exp(z) / (1 + sp.exp(z)), sp.log(1 + sp.exp(z))]]
    for e in exprs:
        ours, sympys = lambdify(z, e, MPMATH, cse=True), sp.lambdify(z, e, MPMATH, cse=True)
        assert inspect.getsource(ours) == inspect.getsource(sympys)
        assert ours.__globals__["exp"] is mp_exp
        with mpmath.workdps(60):
            assert ours(mpmath.mpf(-3)) == sympys(mpmath.mpf(-3))
        assert "return" not in (ours.__doc__ or "")      # the source is not printed again


# ------------------------------------------------------------------- check_elementwise

def test_correct_sigmoid_passes():
    r = verify.check_elementwise(SIG, z, F.sigmoid, F.sigmoid_vjp, n_random=30,
                                 vjp_tol=ACTIVATION_BY_NAME["sigmoid"].vjp_tol)
    assert r.passed, r.first_failure
    assert r.stats["forward"]["float64"]["max_ulps"] <= 4
    assert r.stats["forward"]["float32"]["max_ulps"] <= 1


def _wrong_sigmoid_vjp(x, g):
    s = F.sigmoid(x)
    return (s * (1 + s) * g).astype(x.dtype)          # sigma' = sigma (1 + sigma): wrong


def test_wrong_sigmoid_derivative_is_reported_failed_naming_the_point():
    r = verify.check_elementwise(SIG, z, F.sigmoid, _wrong_sigmoid_vjp, points=[0.0, 1.5],
                                 dtypes=["float64"])
    assert not r.passed
    f = r.first_failure
    assert f.which == "vjp" and f.dtype == "float64" and f.point == 0.0
    assert "at 0.0" in str(f)
    # sigma(0)(1 + sigma(0)) = 0.75, the truth is 0.25: a gross error, not a rounding one
    assert abs(f.got / float(f.expected) - 3) < 1e-12


def test_wrong_forward_is_reported():
    r = verify.check_elementwise(sp.Max(z, 0), z, lambda x: np.abs(x), None,
                                 points=[-2.0, 3.0], dtypes=["float32"])
    assert not r.passed and r.first_failure.which == "forward"
    assert r.first_failure.point == -2.0


def test_kink_value_outside_the_subdifferential_fails():
    def bad_relu_vjp(x, g):
        return np.where(x > 0, 1.0, np.where(x == 0, 2.0, 0.0)).astype(x.dtype) * g
    r = verify.check_elementwise(sp.Max(z, 0), z, F.relu, bad_relu_vjp, points=[0.0, 1.0])
    assert not r.passed
    assert "subgradient" in r.first_failure.detail and r.first_failure.point == 0.0
    ok = verify.check_elementwise(sp.Max(z, 0), z, F.relu, F.relu_vjp, points=[0.0, 1.0])
    assert ok.passed, ok.first_failure


def test_a_tiny_relative_error_is_caught_by_ulps():
    r = verify.check_elementwise(sp.exp(z) - 1, z, lambda x: (np.exp(x) - 1).astype(x.dtype),
                                 None, points=[1e-10], dtypes=["float64"])
    assert not r.passed          # exp(x) - 1 cancels: expm1 is needed near 0


# ------------------------------------------------------------------- proofs

@pytest.mark.parametrize("act", ACTIVATIONS, ids=[a.name for a in ACTIVATIONS])
def test_every_registered_activation_is_proved(act):
    pr = prove_activation(act)
    assert pr.status == "proved", [s for s in pr.steps if s.status not in ("proved",
                                                                           "convention")]


def test_wrong_closed_form_is_refuted_with_a_point():
    a = copy.copy(ACTIVATION_BY_NAME["sigmoid"])
    a.closed_grad_x = SIG * (1 + SIG)
    Y = sp.Symbol("y", real=True)
    a.closed_grad_y = Y * (1 + Y)
    pr = prove_activation(a)
    assert pr.status == "failed"
    bad = [s for s in pr.steps if s.status == "failed"]
    assert bad and "at {'z'" in bad[0].method


def test_wrong_kink_convention_is_refuted():
    a = copy.copy(ACTIVATION_BY_NAME["relu"])
    a.grad_convention = {0: sp.Integer(2)}
    assert prove_activation(a).status == "failed"


# ------------------------------------------------------------------- CLI

def test_cli_quick_writes_both_files_and_exits_zero(tmp_path):
    from verify.__main__ import main
    rc = main(["--out", str(tmp_path), "--quick", "--only", "sigmoid", "relu"])
    assert rc == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert {it["name"] for it in data["items"] if it["section"] == "kernels"} == {
        "sigmoid", "relu", "sigmoid (branch paths)", "relu (branch paths)",
        "relu (conventions)", "relu_vjp (conventions)"}
    assert all(it["passed"] for it in data["items"])
    md = (tmp_path / "report.md").read_text()
    assert "### `sigmoid`" in md and "\\sigma" in md and "ulp" in md


def test_cli_exit_code_is_nonzero_on_failure(tmp_path, monkeypatch):
    import verify.activations as A
    from verify.__main__ import main
    bad = copy.copy(ACTIVATION_BY_NAME["sigmoid"])
    bad.closed_grad_x = SIG * (1 + SIG)
    monkeypatch.setattr(A, "ACTIVATIONS", [bad])
    assert main(["--out", str(tmp_path), "--quick", "--only", "sigmoid"]) == 1


def test_a_section_that_fails_to_import_or_raises_is_a_reported_failure(tmp_path,
                                                                         monkeypatch):
    import verify.run as run
    from verify.__main__ import main
    (tmp_path / "verify_broken_section.py").write_text("raise RuntimeError('broken')\n")
    (tmp_path / "verify_raising_section.py").write_text(
        "def run(ctx):\n    raise ValueError('raised while checking')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(run, "SECTIONS", [
        ("kernels", "verify.run", "coverage"),
        ("train", "verify_broken_section", "run"),
        ("train", "verify.no_such_section", "run"),
        ("train", "verify.run", "no_such_function"),
        ("train", "verify_raising_section", "run")])
    out = tmp_path / "out"
    assert main(["--out", str(out), "--quick"]) == 1
    items = {it["name"]: it for it in json.loads((out / "report.json").read_text())["items"]}
    assert items["coverage"]["passed"]
    not_imported = ["verify_broken_section.run", "verify.no_such_section.run",
                    "verify.run.no_such_function"]
    for name in not_imported:
        assert not items[name]["passed"]
        assert items[name]["verdict"] == "FAIL (section did not import)"
    assert "RuntimeError: broken" in items["verify_broken_section.run"]["traceback"]
    assert items["run"]["verdict"] == "FAIL (crashed)"
    assert "raised while checking" in items["run"]["error"]
    md = (out / "report.md").read_text()
    assert all(f"{name} — FAIL (section did not import)" in md for name in not_imported)


# ------------------------------------------------------------------- non-differentiable points

def _vjp_with_kink_value(value, slope=0.0):
    def vjp(x, g):
        d = np.where(x > 0, 1.0, np.where(x == 0, value, slope))
        return d.astype(x.dtype) * g
    return vjp


def test_relu_derivative_minus_one_at_zero_fails_naming_the_point():
    r = verify.check_elementwise(sp.Max(z, 0), z, F.relu, _vjp_with_kink_value(-1.0),
                                 points=[-1.0, 0.0, 2.0])
    assert not r.passed
    f = r.first_failure
    assert f.point == 0.0 and "subgradient" in f.detail
    assert any(k["point"] == 0.0 and not k["valid"] and "outside" in k["picked"]
               for k in r.kinks)


def test_any_point_of_the_subdifferential_is_accepted_and_reported():
    # leaky_relu'(0) = 0.6 is inside [0.2, 1]: a valid subgradient, not one of the corners
    leaky = ACTIVATION_BY_NAME["leaky_relu"]
    r = verify.check_elementwise(leaky.definition, z, lambda x: F.leaky_relu(x, slope=0.2),
                                 _vjp_with_kink_value(0.6, slope=0.2),
                                 params=leaky.evidence_params, points=[-1.0, 0.0, 2.0])
    assert r.passed, r.first_failure
    assert {k["picked"] for k in r.kinks} == {"0.6 (interior)"}
    assert all(k["subdifferential"].startswith("[0.2") for k in r.kinks)


def test_the_kernels_choice_at_each_kink_is_recorded():
    for name, picked in [("relu", "0 (lower end)"), ("leaky_relu", "0.2 (lower end)"),
                         ("elu", "0.7 (lower end)")]:
        act = ACTIVATION_BY_NAME[name]
        kw = act.nnlib_kwargs
        r = verify.check_elementwise(
            act.definition, z, lambda x: getattr(F, name)(x, **kw),
            lambda x, g: getattr(F, name + "_vjp")(x, g, **kw), params=act.evidence_params,
            points=[0.0, 1.0])
        assert r.passed and [k["picked"] for k in r.kinks] == [picked, picked], r.kinks


def test_sign_jump_is_reported_and_a_nonzero_derivative_there_fails():
    sign = ACTIVATION_BY_NAME["sign"]
    ok = verify.check_elementwise(sign.definition, z, F.sign, F.sign_vjp, points=[-1.0, 0.0])
    assert ok.passed and ok.kinks and all("jump" in k["subdifferential"] for k in ok.kinks)
    bad = verify.check_elementwise(sign.definition, z, F.sign, _vjp_with_kink_value(1.0),
                                   points=[-1.0, 0.0])
    assert not bad.passed and bad.first_failure.point == 0.0


# ------------------------------------------------------------------- derivative from the output

def test_derivative_accuracy_sweep_measures_every_path_and_dtype():
    from verify.accuracy import output_form_sweep
    acc = output_form_sweep(ACTIVATION_BY_NAME["sigmoid"], ["float64", "float32"], quick=True)
    assert acc["passed"]
    got = {(s["path"], s["dtype"]) for s in acc["series"]}
    assert got == {(p, d) for p in ("vjp (functional)", "dense_backward (from the output H)")
                   for d in ("float64", "float32")}
    for s in acc["series"]:
        below = [u for z_, u in zip(s["z"], s["ulps"])
                 if s["z_star"] is None or abs(z_) < s["z_star"]]
        assert max(below) <= s["tol_ulps"]            # the stated relative range holds
    assert len(acc["rows"]) == 4


def test_derivative_accuracy_sweep_fails_when_neither_bound_holds(monkeypatch):
    import verify.accuracy as A
    real = A.K.kernel

    def kernel(name):
        if name == "sigmoid_vjp":               # sigma (1 + sigma): wrong everywhere
            return lambda x, g: (F.sigmoid(x) * (1 + F.sigmoid(x)) * g).astype(x.dtype)
        return real(name)
    monkeypatch.setattr(A.K, "kernel", kernel)
    acc = A.output_form_sweep(ACTIVATION_BY_NAME["sigmoid"], ["float64"], quick=True)
    assert not acc["passed"]
    assert any("FAIL at z =" in text for label, text in acc["rows"] if "vjp" in label)
