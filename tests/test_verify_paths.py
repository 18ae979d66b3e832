"""verify/paths.py (the branch-plan evidence) and verify/conventions.py: the longdouble
reference against mpmath, the ULP measure, the plan against nnlib/_paths.py, the baseline
rules, and wrong kernels (a wide-row-only factor, a path-dependent element, a tie broken the
other way) failing."""
import json
from fractions import Fraction

import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
pytest.importorskip("sympy")

import nnlib.functional as F  # noqa: E402
from nnlib import _paths  # noqa: E402
from verify import conventions, paths  # noqa: E402
from verify.registry import ACTIVATIONS  # noqa: E402
from verify.run import Context  # noqa: E402

pytestmark = pytest.mark.skipif(not paths.reference_ok(),
                                reason="numpy.longdouble is not 80-bit here")
LD = np.longdouble


def _mp_ulps(ref, exact, dtype=np.float64):
    """|ref - exact| in ulps of the dtype at exact (ref: a longdouble, exact: mpf)."""
    from verify.evidence import ulp
    n, d = LD(ref).as_integer_ratio()
    r = mpmath.mpf(n) / d
    return float(abs(r - exact) / ulp(exact, dtype)) if exact != 0 else float(abs(r))


MP_ACT = {
    "sigmoid": (lambda x: 1 / (1 + mpmath.exp(-x)),
                lambda x: mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2),
    "tanh": (mpmath.tanh, lambda x: mpmath.sech(x) ** 2),
    "softplus": (lambda x: mpmath.log1p(mpmath.exp(x)), lambda x: 1 / (1 + mpmath.exp(-x))),
    "elu": (lambda x: 0.7 * mpmath.expm1(x) if x <= 0 else x,
            lambda x: 0.7 * mpmath.exp(x) if x <= 0 else mpmath.mpf(1)),
}


@pytest.mark.parametrize("name", sorted(MP_ACT))
def test_element_reference_agrees_with_mpmath(name):
    # the reference's own error, in float64 ulps, is far below the baseline's 2-ulp margin
    pool = paths.element_pool("float64", 0)
    pool = pool[np.abs(pool) < 1e4]
    f, d = paths.element_reference(name, pool, 0.7)
    worst = 0.0
    with mpmath.workdps(60):
        for i, x in enumerate(pool):
            xm = mpmath.mpf(float(x))
            fe, de = MP_ACT[name][0](xm), MP_ACT[name][1](xm)
            worst = max(worst, _mp_ulps(f[i], fe), _mp_ulps(d[i], de))
    assert worst < 0.01


def test_row_reference_agrees_with_mpmath_and_fractions():
    rows = np.array([[2.0, 2.0, 0.0, -1.0], [40.0, 0.0, 0.0, 0.0], [0.3, -1.7, 5.0, 5.0],
                     [1e-30, 0.0, -1e-30, 3.0]])
    with mpmath.workdps(60):
        (sm, _), _ = paths.row_reference("softmax", rows)
        (ls, _), _ = paths.row_reference("log_softmax", rows)
        for r, row in enumerate(rows):
            zs = [mpmath.mpf(float(v)) for v in row]
            s = mpmath.fsum(mpmath.exp(v) for v in zs)
            for j, v in enumerate(zs):
                assert _mp_ulps(sm[r, j], mpmath.exp(v) / s) < 0.01
                assert _mp_ulps(ls[r, j], v - mpmath.log(s)) < 0.01
    from verify.output_maps import sparsemax_exact
    (sp_, _), _ = paths.row_reference("sparsemax", rows[:3])
    for r, row in enumerate(rows[:3]):
        p, _ = sparsemax_exact(row)
        assert [Fraction(float(v)) for v in sp_[r]] == p


def test_loss_reference_logistic_keeps_relative_accuracy_at_large_margins():
    z = np.array([[40.0], [-40.0], [700.0], [-700.0]])
    for y in (0, 1):
        Y = np.full(4, y)
        (_, _), (g, _) = paths.loss_reference("logistic_loss", z, Y)
        with mpmath.workdps(60):
            for i in range(4):
                x = mpmath.mpf(float(z[i, 0]))
                exact = (1 / (1 + mpmath.exp(-x)) - y) / 4
                assert _mp_ulps(g[i, 0], exact) < 0.01


def test_ulp_errors():
    e = np.array([1.0, 1.0, 0.0, 2.0 ** -1074], dtype=LD)
    got = np.array([1.0, np.nextafter(1.0, 2.0), 0.0, 0.0])
    assert paths.ulp_errors(got, e, 0, np.float64).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert np.isinf(paths.ulp_errors(np.array([np.nan]), np.array([1.0], dtype=LD), 0,
                                     np.float64)).all()
    # an exact value beyond the dtype's range: only the right infinity is correct
    big = np.array([LD(np.finfo(np.float64).max) * 4], dtype=LD)
    assert paths.ulp_errors(np.array([np.inf]), big, 0, np.float64)[0] == 0
    assert np.isinf(paths.ulp_errors(np.array([1e308]), big, 0, np.float64)[0])
    # the cancellation term: an absolute error of u = 2^-53 is half an ulp of T = 1
    assert paths.ulp_errors(np.array([2.0 ** -53]), np.array([0.0], dtype=LD), 1.0,
                            np.float64)[0] == 0.5


def test_errors_by_value_measures_an_element_that_differs_from_its_twins():
    pool = np.array([1.0, 2.0, 3.0])
    idx = np.array([0, 1, 2, 0, 1, 2])
    got = pool[idx].copy()
    got[4] = np.nextafter(2.0, 3.0) + 4e-16            # one path computes it differently
    err = paths.errors_by_value(got, idx, pool[idx].astype(LD), 0, np.float64)
    assert err[4] > 1 and err[1] == 0 and err[[0, 2, 3, 5]].max() == 0


def test_errors_by_value_with_groups_made_once_is_the_same():
    """The paths make index_groups(idx) once for every output and thread count of one
    input array: the errors are those errors_by_value groups by itself."""
    rng = np.random.default_rng(5)
    pool = rng.standard_normal(50)
    for shape in [(7,), (300,), (20, 15)]:
        idx = rng.integers(0, pool.size, shape)
        groups = paths.index_groups(idx)
        for dt in (np.float64, np.float32):
            got = pool[idx].astype(dt)
            flat = got.reshape(-1)
            flat[rng.integers(0, flat.size, 3)] *= dt(1 + 2 ** -10)   # paths that differ
            ex = pool[idx].astype(LD)
            want = paths.errors_by_value(got, idx, ex, 0, dt)
            assert want.max() > 0
            np.testing.assert_array_equal(
                paths.errors_by_value(got, idx, ex, 0, dt, groups), want)
    # the groups are used: grouped as one input, two equal results of different inputs
    # take the first's error
    got, ex = np.array([1.0, 1.0]), np.array([1.0, 1.0 + 1e-10], dtype=LD)
    idx = np.array([0, 1])
    assert paths.errors_by_value(got, idx, ex, 0, np.float64)[1] > 1
    assert paths.errors_by_value(got, idx, ex, 0, np.float64,
                                 paths.index_groups(np.array([0, 0])))[1] == 0


def test_the_plan_straddles_every_threshold_nnlib_paths_names():
    plan = paths.plan()
    epoch = plan.pop("epoch")              # {loss: cases} of the training epoch's loss
    plan.pop("epoch_weighted")             # sample weights: the test below
    assert set(epoch) == set(paths.LOSS_KERNELS)
    assert any(shape[0] * shape[1] > _paths.path_value("VEC_BLOCK")
               for _, shape, _ in epoch["logistic_loss"])
    plan.update({f"epoch {k}": v for k, v in epoch.items()})
    covered = {}
    for fam, cases in plan.items():
        for case in cases:
            label, shape, key = (case[3], case[1], case[2]) if fam == "activation" else \
                case[:3]
            covered.setdefault(key, []).append(label)
    for name, (value, where, what) in _paths.INT_PATHS.items():
        if name == "OPTIM_CHECK_CHUNK":
            continue                  # verify.optim runs the optimizers around it
        if name.startswith("NN_SHUFFLE_"):
            continue                  # verify.fast_paths' order streams: test below
        if name in ("TRANSPOSED_MAX_BYTES", "PADDED_MAX_BYTES", "PADDED_MIN_STEPS",
                    "PADDED_MIN_STEPS_B1"):
            continue                  # bitwise either side: test_train_batch1_*.py,
            #                           test_train_padded_first_layer.py
        assert name in covered, name
        text = " ".join(covered[name])
        # (relu_step_plan's case above NARROW_K says "> NARROW_K": its baseline key)
        above = f"{name}+1" in text or f"> {name}" in text
        assert f"{name}-1" in text and above or "VEC_BLOCK//" in text
    pool = paths.element_pool("float64", 0)
    for name, xs in paths.cutoff_points().items():
        if name in paths.LOSS_ONLY_CUTOFFS:
            continue
        for x in xs:
            assert np.isin([x, -x], pool).all(), name
    # the Poisson loss's cut-off is on d = z - log t: at t = 1, z = +-NN_POISSON_NEAR and its
    # neighbours, and the -0.0 target at z = 673 (log(-0) must not be taken)
    near = _paths.path_value("NN_POISSON_NEAR")
    for dname in ("float64", "float32"):
        Z, T = paths.poisson_pool(dname, 0, far=True)
        dt = Z.dtype.type
        at1 = Z[T == 1]
        for z in (dt(near), dt(-near)):
            assert np.isin([z, np.nextafter(z, dt(np.inf)), np.nextafter(z, dt(-np.inf))],
                           at1).all(), dname
        assert ((Z == 673) & (T == 0) & np.signbit(T)).any(), dname


def test_branch_path_items_select_by_their_own_name():
    items = paths.run_paths(Context(quick=True, only=["tanh (branch paths)"]))
    assert [it["name"] for it in items] == ["tanh (branch paths)"]
    assert items[0]["paths"]


def test_baseline_rules(tmp_path):
    case = paths._Case("k", "out", "float64", "c=3", "narrow row", 16.0)
    case.base_ulps = case.max_ulps = 3.5
    case.worst = "x=1"
    paths._judge(case, {case.key: 1.0}, False)
    assert any("worse than the baseline" in p for p in case.problems)
    case2 = paths._Case("k", "out", "float64", "c=4", "narrow row", 16.0)
    case2.base_ulps = case2.max_ulps = 0.5
    paths._judge(case2, {}, False)
    assert any("no baseline" in p for p in case2.problems)
    case3 = paths._Case("k", "out", "float64", "c=5", "narrow row", 16.0)
    case3.base_ulps = case3.max_ulps = 2.9
    paths._judge(case3, {case3.key: 1.0}, False)          # within the 2-ulp margin
    assert not case3.problems
    case4 = paths._Case("k", "out", "float32", "c=5", "narrow row", 2.0)
    case4.base_ulps = case4.max_ulps = 0.98              # one more rounding, < 2 ulp
    paths._judge(case4, {case4.key: 0.5}, False)
    assert any("no longer correctly rounded" in p for p in case4.problems)
    # float32 is held to 0.501 (its results are double computations rounded once); a value
    # rounded to the wrong neighbour just past a midpoint (0.508) fails, 0.5003 passes
    case4b = paths._Case("k", "out", "float32", "c=8", "narrow row", 2.0)
    case4b.base_ulps = case4b.max_ulps = 0.508
    paths._judge(case4b, {case4b.key: 0.5}, False)
    assert any("no longer correctly rounded" in p for p in case4b.problems)
    case4c = paths._Case("k", "out", "float32", "c=9", "narrow row", 2.0)
    case4c.base_ulps = case4c.max_ulps = 0.5003
    paths._judge(case4c, {case4c.key: 0.5}, False)
    assert not case4c.problems
    # a float32 path two roundings deep (softmax: exp rounded, then the product): one more
    # float32 rounding adds up to 0.5 ulp, caught by float32's 0.25-ulp slack, not by 2 ulp
    case5 = paths._Case("k", "out", "float32", "c=6", "narrow row", 4.0)
    case5.base_ulps = case5.max_ulps = 1.72
    paths._judge(case5, {case5.key: 1.35}, False)
    assert any("by more than 0.25 ulp" in p for p in case5.problems)
    case6 = paths._Case("k", "out", "float32", "c=7", "narrow row", 4.0)
    case6.base_ulps = case6.max_ulps = 1.5
    paths._judge(case6, {case6.key: 1.35}, False)
    assert not case6.problems
    f = tmp_path / "b.json"
    paths.save_baseline({"a|b|float64|p": 1.5}, str(f))
    assert paths.load_baseline(str(f)) == {"a|b|float64|p": 1.5}
    assert "max_ulps" in json.loads(f.read_text())


def test_blas_products_under_another_blas_are_held_to_their_cap_only(tmp_path):
    """dense_backward's dX on several rows is a BLAS product: measured under a BLAS
    other than the baseline's (another fingerprint) such a case keeps the cap but not the
    baseline rules, and says so; nnlib's own outputs keep every rule under any BLAS."""
    other = "a BLAS product: the baseline was measured with another BLAS"

    def judged(blas, ulps, base, note):
        case = paths._Case("dense_backward", "dX (relu)", "float64", "151 x 217", "P",
                           16.0, blas=blas)
        case.base_ulps = case.max_ulps = ulps
        case.worst = "x=1"
        paths._judge(case, {case.key: base}, False, note)
        return case

    assert judged(True, 1.09, 0.35, None).problems          # same BLAS: baseline rules
    same_blas_ok = judged(True, 0.4, 0.35, None)
    assert not same_blas_ok.problems and same_blas_ok.note is None
    foreign = judged(True, 1.09, 0.35, other)
    assert not foreign.problems and foreign.note == other
    assert judged(True, 17.0, 0.35, other).problems          # the cap still holds
    assert judged(False, 1.09, 0.35, other).problems         # nnlib's own loops: no pass
    f = tmp_path / "b.json"
    paths.save_baseline({"a|b|float64|p": 1.5}, str(f), blas={"abc": {"k|dX|float64|p": 1}})
    assert paths.load_blas_baselines(str(f)) == {"abc": {"k|dX|float64|p": 1}}
    assert paths.load_baseline(str(f)) == {"a|b|float64|p": 1.5}
    assert paths.load_blas_baselines(str(tmp_path / "none.json")) == {}


def _blas_run(update=False):
    """run_paths on dense_backward: (its items, the rows of its BLAS products)."""
    blas = {k for figures in paths.load_blas_baselines().values() for k in figures}
    items = paths.run_paths(Context(quick=True, only=["dense_backward"],
                                    update_baseline=update))
    rows = [r for it in items for r in it["paths"]]
    return items, [r for r in rows
                   if f"{r['kernel']}|{r['output']}|{r['dtype']}|{r['path']}" in blas]


def _own_blas_baseline(tmp_path, monkeypatch):
    """A copy of the committed baseline, in use, with this machine's BLAS figures in it
    (recorded by --update-baseline where the committed file has none for its BLAS: the
    tests below hold the BLAS products to their own build's figures); this BLAS's
    fingerprint."""
    f = tmp_path / "baseline.json"
    f.write_text(open(paths.BASELINE_PATH).read())
    monkeypatch.setattr(paths, "BASELINE_PATH", str(f))
    fp = paths.blas_fingerprint()
    if fp not in paths.load_blas_baselines():
        _blas_run(update=True)
    assert fp in paths.load_blas_baselines()
    return f, fp


def test_each_blas_keeps_its_own_figures(tmp_path, monkeypatch):
    """A BLAS without figures in the baseline: its products are held to their cap only
    (and say so) until --update-baseline records its figures beside the other BLAS's,
    which stay as they were; from then on they are held to them, like the others'."""
    f, ours = _own_blas_baseline(tmp_path, monkeypatch)
    before_own, before_blas = paths.load_baseline(), paths.load_blas_baselines()
    monkeypatch.setattr(paths, "blas_fingerprint", lambda: "feedfacefeedface")
    items, blas_rows = _blas_run()
    assert len(blas_rows) == len(before_blas[ours]) and all(it["passed"] for it in items)
    assert all(r["note"] and "feedfacefeedface" in r["note"] and ours in r["note"]
               for r in blas_rows)
    assert any("cap only" in it["verdict"] for it in items)
    _blas_run(update=True)
    after = paths.load_blas_baselines()
    assert after[ours] == before_blas[ours]                  # the other BLAS untouched
    assert set(after["feedfacefeedface"]) == set(before_blas[ours])   # every BLAS case
    assert paths.load_baseline() == before_own               # nnlib's own loops: the same
    items, blas_rows = _blas_run()
    assert all(it["passed"] for it in items) and not any(r["note"] for r in blas_rows)
    # held to the new figures: with each one lowered to 0, every BLAS case fails on it
    low = {"feedfacefeedface": {k: 0.0 for k in after["feedfacefeedface"]}, **{
        ours: after[ours]}}
    paths.save_baseline(before_own, blas=low)
    items, blas_rows = _blas_run()
    worse = [r for r in blas_rows if any("worse than the baseline" in p
                                         for p in r["problems"])]
    assert worse and all(not r["passed"] for r in worse)


def test_a_baseline_of_the_earlier_layout_reads_and_converts(tmp_path, monkeypatch):
    # one blas_fingerprint (this machine's BLAS), its BLAS products' figures among max_ulps
    f, fp = _own_blas_baseline(tmp_path, monkeypatch)
    own, blas = paths.load_baseline(), paths.load_blas_baselines()[fp]
    f.write_text(json.dumps({"blas_fingerprint": fp, "max_ulps": {**own, **blas}}))
    items, blas_rows = _blas_run()
    assert blas_rows and all(it["passed"] for it in items)
    assert not any(r["note"] for r in blas_rows)             # its own BLAS: full rules
    _blas_run(update=True)
    doc = json.loads(f.read_text())
    assert "blas_fingerprint" not in doc and set(doc["blas_max_ulps"]) == {fp}
    assert doc["blas_max_ulps"][fp] == blas
    assert not set(blas) & set(doc["max_ulps"])


def test_the_blas_fingerprint_is_stable_and_recorded(monkeypatch):
    fp = paths.blas_fingerprint()
    assert fp == paths.blas_fingerprint() and len(fp) == 16
    assert paths.load_blas_baselines()     # the committed baseline has a BLAS's figures
    # a BLAS whose threads cannot be set (scipy's, get_num_threads() is None): the same
    # products, no set_num_threads call
    from nnlib._kernels import blas

    def refuse(n):
        raise AssertionError("set_num_threads called")
    monkeypatch.setattr(blas, "get_num_threads", lambda: None)
    monkeypatch.setattr(blas, "set_num_threads", refuse)
    assert paths.blas_fingerprint() == fp


def test_the_committed_baseline_covers_the_plan():
    items = paths.run_paths(Context(quick=True, only=["softmax", "hinge_loss"]))
    assert items and all(it["passed"] for it in items), [it["failures"] for it in items]
    assert {it["kernel"] for it in items} == {"softmax", "hinge_loss"}


def test_a_wide_row_only_factor_fails(monkeypatch):
    real = F.softmax_cross_entropy_grad

    def wrong(z, y, **kw):           # right on narrow rows, doubled from c = 65 on
        g = real(z, y, **kw)
        return g * 2 if np.shape(z)[-1] > 64 else g
    monkeypatch.setattr(F, "softmax_cross_entropy_grad", wrong)
    items = paths.run_paths(Context(quick=True, only=["softmax_cross_entropy"]))
    bad = [r for it in items for r in it["paths"] if not r["passed"]]
    assert bad and all("65" in r["path"] or "25" in r["path"] for r in bad)
    assert items[0]["smallest_failure"] and "seed" in items[0]["smallest_failure"]


def test_an_epoch_loss_wrong_past_one_block_fails(monkeypatch):
    # the training epoch's loss over more than VEC_BLOCK scores (one call per batch) is
    # measured by train.loss_grad; a slip there (a later block reading the first block's
    # targets) moves db: here db is off only for batches of more than one block
    from nnlib._kernels import train
    real = train.loss_grad

    def wrong(setup, dWs, dbs, *a, **kw):
        out = real(setup, dWs, dbs, *a, **kw)
        if setup.X.size > _paths.path_value("VEC_BLOCK"):
            dbs[0][...] = dbs[0] * (1 + 1e-6)
        return out
    monkeypatch.setattr(train, "loss_grad", wrong)
    items = paths.run_paths(Context(quick=True, only=["logistic_loss"]))
    bad = [r for it in items for r in it["paths"] if not r["passed"]]
    assert bad and all(r["path"].startswith("epoch") and "VEC_BLOCK-1" not in r["path"]
                       and "VEC_BLOCK (" not in r["path"] for r in bad), bad
    assert {r["output"] for r in bad} == {"epoch loss_grad db"}


def test_the_plan_measures_every_sample_weighted_loss():
    # fit's sample_weight takes weighted_loss_grad_batch, a branch of its own for every
    # loss code: each loss has an epoch case with unequal weights, a 0 among them, whose
    # total is no power of two (so 1 / sum w is rounded), weights fit would accept
    from nnlib._codes import LOSS_CODES
    from nnlib._validation import check_sample_weight
    weighted = paths.plan()["epoch_weighted"]
    assert set(weighted) == set(paths.LOSS_KERNELS) == set(LOSS_CODES)
    for name, cases in weighted.items():
        assert cases, name
        for label, (n, c), key in cases:
            assert "sample-weighted" in label and key == "sample weight"
            for dt in (np.float64, np.float32):
                w = paths.sample_weights(n, dt)
                assert w.shape == (n,) and w.dtype == dt
                assert (w == 0).any() and w[0] != 0 and len(set(w[w > 0].tolist())) > 2
                assert np.frexp(w.sum())[0] != 0.5, (name, w.sum())
                assert np.array_equal(check_sample_weight(w, n, dt), w)


def test_loss_reference_weighted_is_the_weighted_mean():
    # weights of 1 give the unweighted reference bit for bit; a weight of 2 counts a row
    # twice (the loss and the gradient of the batch with that row repeated)
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((5, 4))
    y = np.array([0, 1, 2, 3, 1])
    for name in ("softmax_cross_entropy", "hinge_loss", "sparsemax_loss"):
        (l0, T0), (g0, _) = paths.loss_reference(name, Z, y)
        (l1, T1), (g1, _) = paths.loss_reference(name, Z, y, weight=np.ones(5))
        assert l1 == l0 and T1 == T0 and np.array_equal(g1, g0)
        w = np.array([2.0, 1.0, 0.0, 1.0, 1.0])
        (lw, _), (gw, _) = paths.loss_reference(name, Z, y, weight=w)
        keep = [0, 0, 1, 3, 4]
        (ld, _), (gd, _) = paths.loss_reference(name, Z[keep], y[keep])
        assert abs(float(lw - ld)) <= 1e-15 * abs(float(ld))
        assert np.allclose(gw[[0, 1, 3, 4]].astype(float),
                           np.stack([gd[0] + gd[1], gd[2], gd[3], gd[4]]).astype(float),
                           rtol=1e-15, atol=0)
        assert not gw[2].any()


def test_a_sample_weighted_gradient_that_drops_the_weight_fails(monkeypatch):
    # the held-out fault held-loss-weighted-hinge-weight-dropped: the weighted rows'
    # gradient without w_i. Here db of a weighted setup becomes the unweighted rows
    # scaled by 1 / sum w: only the sample-weighted epoch cases may fail, on db
    from nnlib._kernels import train
    real = train.loss_grad

    def wrong(setup, dWs, dbs, *a, **kw):
        out = real(setup, dWs, dbs, *a, **kw)
        w = setup.sample_weight
        if w is not None:
            setup.set_data(setup.X, setup.y_target, setup.y_label)
            real(setup, dWs, dbs, *a, **kw)
            dbs[0][...] = dbs[0] * (len(w) / w.sum())
        return out
    monkeypatch.setattr(train, "loss_grad", wrong)
    items = paths.run_paths(Context(quick=True, only=["hinge_loss"]))
    bad = [r for it in items for r in it["paths"] if not r["passed"]]
    assert bad and all("sample-weighted" in r["path"] for r in bad), bad
    assert {r["output"] for r in bad} == {"epoch loss_grad db"}


def test_an_early_float32_saturation_fails(monkeypatch):
    # tanh's float32 cut-off moved from 30 to 9: 1 instead of 0.99999994 for 9 < |x| <
    # 9.011, where the exact value is just past the rounding midpoint (0.508 ulp, not
    # 0.492): held to correct rounding, and reached by the saturation points
    real = F.tanh
    assert any(9 < x < 9.011 for x in paths.saturation_points("float32"))

    def wrong(x, **kw):
        out = real(x, **kw)
        if out.dtype == np.float32:
            out = np.where((np.abs(x) > 9.0) & ~np.isnan(x), np.sign(x), out).astype(
                np.float32)
        return out
    monkeypatch.setattr(F, "tanh", wrong)
    items = paths.run_paths(Context(quick=True, only=["tanh"]))
    bad = [r for it in items for r in it["paths"] if not r["passed"]]
    assert bad and {r["dtype"] for r in bad} == {"float32"}
    assert all("correctly rounded" in p for r in bad for p in r["problems"]), bad


def test_a_path_dependent_activation_fails(monkeypatch):
    real = F.tanh

    def wrong(x, **kw):              # the last element of a long array is off
        out = real(x, **kw)
        if out.size > _paths.path_value("ACT_CHUNK"):
            out = out.copy()
            out[-1] = np.nextafter(np.nextafter(np.nextafter(out[-1], 9), 9), 9)
        return out
    monkeypatch.setattr(F, "tanh", wrong)
    items = paths.run_paths(Context(quick=True, only=["tanh"]))
    assert not items[0]["passed"]


def test_conventions_pass_and_a_flipped_tie_rule_fails(monkeypatch):
    items = conventions.run_conventions(Context(quick=True))
    names = {it["name"] for it in items}
    assert {"hinge_loss_grad (conventions)", "relu_vjp (conventions)",
            "sparsemax_vjp (conventions)"} <= names
    assert all(it["passed"] for it in items), [it["failures"] for it in items]
    real = F.hinge_loss_grad

    def last_argmax(z, y, margin=1.0, **kw):      # ties broken toward the LAST index
        z = np.asarray(z)
        return real(z[:, ::-1], np.shape(z)[1] - 1 - np.asarray(y), margin, **kw)[:, ::-1]
    monkeypatch.setattr(F, "hinge_loss_grad", last_argmax)
    items = conventions.run_conventions(Context(quick=True, only=["hinge_loss_grad"]))
    assert len(items) == 1 and not items[0]["passed"]


def test_a_conventions_item_is_picked_by_its_own_name():
    items = conventions.run_conventions(Context(quick=True, only=["relu_vjp (conventions)"]))
    assert [it["name"] for it in items] == ["relu_vjp (conventions)"]


def test_every_kink_of_every_activation_has_a_stated_convention():
    stated = {k for k, *_ in conventions.activation_conventions()}
    for act in ACTIVATIONS:
        if act.kinks:
            assert act.name + "_vjp" in stated and act.name in stated


def test_a_poisson_gradient_wrong_past_one_block_fails(monkeypatch):
    # a block-offset slip (every later block reading the first block's targets) shows only
    # on inputs longer than VEC_BLOCK: the Poisson cases past one block fail, the short and
    # one-row-alone cases pass
    real = F.poisson_loss_grad
    vb = _paths.path_value("VEC_BLOCK")

    def wrong(z, y, **kw):
        y = np.array(y, copy=True)
        flat = y.reshape(-1)
        if flat.size > vb:
            flat[vb:] = np.resize(flat[:vb], flat.size - vb)
        return real(z, y, **kw)
    monkeypatch.setattr(F, "poisson_loss_grad", wrong)
    items = paths.run_paths(Context(quick=True, only=["poisson_loss"]))
    bad = [r for it in items for r in it["paths"] if not r["passed"]]
    # (the gradient-only call then also differs from loss_and_grad's: "threads")
    assert bad and "grad" in {r["output"] for r in bad} <= {"grad", "threads"}, bad
    assert not [r for r in bad if "n=16" in r["path"] or "alone" in r["path"]], bad


# ---- mm's products: the one-row loops, gemm_small.h's blocked loops, BLAS ----------------
SMALL_GEMM = ("NN_SMALL_GEMM_MIN_N", "NN_SMALL_GEMM_MAX_K", "NN_SMALL_GEMM_MAX_MNK")


def _blocked_but_for(P, bound, m, n, k):
    """Whether mm would block (m, n, k) if ``bound`` did not stand in the way."""
    free = {"NN_SMALL_GEMM_MIN_N": 0, "NN_SMALL_GEMM_MAX_K": 10 ** 9,
            "NN_SMALL_GEMM_MAX_MNK": 10 ** 18}
    return paths.blocked(dict(P, **{bound: free[bound]}), m, n, k)


@pytest.mark.parametrize("family", ["dense_products", "epoch_sgd"])
def test_the_product_plans_put_each_product_on_both_sides_of_each_bound(family):
    P = paths._paths()
    cases = paths.plan()[family]
    products = (paths.PRODUCTS if family == "dense_products"
                else {"dW = X^T dZ": paths.PRODUCTS["dW = X^T dZ"]})
    for name, f in products.items():
        for bound in SMALL_GEMM:
            outside = "-1" if bound == "NN_SMALL_GEMM_MIN_N" else "+1"
            side = {rel: [f(*shape) for label, shape, key in cases
                          if f"{bound}{rel} (" in label] for rel in ("-1", "", "+1")}
            assert any(paths.blocked(P, *mnk) for mnk in side[""]), (name, bound)
            assert any(not paths.blocked(P, *mnk) and _blocked_but_for(P, bound, *mnk)
                       for mnk in side[outside]), (name, bound)
        # one row or k = 1 (the plain loops) beside k = 2
        small = [f(*shape) for label, shape, key in cases if key == "one row / k = 1"]
        assert any(m == 1 or k == 1 for m, n, k in small)
        assert any(paths.blocked(P, m, n, k) and k == 2 for m, n, k in small), name


@pytest.mark.parametrize("dname", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(13, 17, 17), (7, 257, 257), (9, 5419, 43),
                                   (9, 43, 5419), (257, 20, 24)])
def test_the_integer_operands_make_every_product_exact(dname, shape):
    dt = paths.DTYPES[dname]
    big = 2 ** (np.finfo(dt).nmant + 1)
    X, W, b, G = (a.astype(np.int64) for a in paths.product_operands(shape, dname, 0))
    aX, aW, aG = abs(X), abs(W), abs(G)
    # the sums of the terms' magnitudes bound every partial sum, in any order
    for bound in (aX @ aW + abs(b), aX.T @ aG, aG @ aW.T):
        assert bound.max() < big
    assert (X == 0).mean() > 0.2 and abs(X).max() > 1
    Xs, Ws, bs, T, D = paths.sgd_step_operands(shape, dname, 0)
    Xs, Ws, bs = (a.astype(np.int64) for a in (Xs, Ws, bs))
    B = shape[0]
    assert np.array_equal(T.astype(np.int64), Xs @ Ws + bs - B * D)       # T is exact
    dz = (np.float64(1.0 / B) * (B * D).astype(np.float64)).astype(dt)
    assert np.array_equal(dz, D) and (D != 0).mean() > 0.3
    assert (127 * abs(Ws) + 16 * (abs(Xs).T @ abs(D))).max() < big


def test_the_exact_product_cases_pass_on_this_build():
    items = paths.run_paths(Context(quick=True, only=["dense_forward", "dense_backward",
                                                      "run_epoch"]))
    assert {it["kernel"] for it in items} == {"dense_forward", "dense_backward",
                                              "run_epoch"}
    assert all(it["passed"] for it in items), [it["failures"] for it in items]
    rows = [r for it in items for r in it["paths"] if "integer operands" in r["output"]]
    assert rows and all(r["max_ulps"] == 0 and r["cap"] == 0 for r in rows)


def test_a_blocked_product_dropping_its_last_term_fails(monkeypatch):
    # mm's blocked loops losing the last p of the inner dimension: only the products mm
    # blocks go wrong, and every case whose forward product is blocked fails
    P = paths._paths()
    real = F.dense_forward

    def wrong(X, W, b, *a, **kw):
        (r, i), o = np.shape(X), np.shape(W)[1]
        if paths.blocked(P, r, o, i):
            X, W = X[:, :-1].copy(), W[:-1].copy()
        return real(X, W, b, *a, **kw)
    monkeypatch.setattr(F, "dense_forward", wrong)
    items = paths.run_paths(Context(quick=True, only=["dense_forward"]))
    bad = {r["path"] for it in items for r in it["paths"] if not r["passed"]}
    blocked = {label for label, (r, i, o), _ in paths.plan()["dense_products"]
               if paths.blocked(P, r, o, i)}
    assert bad == blocked and len(blocked) >= 10


def test_a_plain_sgd_step_without_its_decay_fails(monkeypatch):
    # the fused step taking beta as 1 on the blocked path (weight decay lost): the cases
    # with decay whose update mm blocks fail, the others pass
    from nnlib._kernels import train
    P = paths._paths()
    real = train.run_epoch

    def wrong(setup, order, *a, **kw):
        W = setup.weights[0]
        before = W.copy()
        out = real(setup, order, *a, **kw)
        (i, o), B = W.shape, len(order)
        cfg = setup.optimizer if isinstance(setup.optimizer, dict) else setup.optimizer[0]
        if paths.blocked(P, i, o, B) and cfg["weight_decay"]:
            W[...] = W + paths.SGD_LR * paths.SGD_WD * before
        return out
    monkeypatch.setattr(train, "run_epoch", wrong)
    items = paths.run_paths(Context(quick=True, only=["run_epoch"]))
    bad = {r["path"] for it in items for r in it["paths"] if not r["passed"]}
    assert bad and all("weight_decay" in p for p in bad)
    assert not any("B=1," in p or "NN_SMALL_GEMM_MAX_K+1" in p for p in bad)


@pytest.mark.parametrize("dname", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(13, 5, 15, 3), (13, 5, 37, 3), (13, 5, 37, 1),
                                   (13, 5, 70, 15), (13, 5, 70, 16), (13, 5, 70, 17),
                                   (13, 5, 20, 17), (1, 5, 20, 10), (256, 784, 512, 10)]
                         + [shape for label, shape, key in paths.pool_step_plan()])
def test_the_relu_step_operands_make_every_value_exact(dname, shape):
    dt = paths.DTYPES[dname]
    big = 2 ** (np.finfo(dt).nmant + 1)
    X, W0, b0, W1, b1, T, D = paths.relu_step_operands(shape, dname, 0)
    Xi, W0i, b0i, W1i, b1i = (a.astype(np.int64) for a in (X, W0, b0, W1, b1))
    B = shape[0]
    Z0 = Xi @ W0i + b0i
    H0 = np.maximum(Z0, 0)
    assert (Z0 < 0).mean() > 0.2 and (H0 > 0).mean() > 0.2     # both sides of the kink
    assert np.array_equal(T.astype(np.int64), H0 @ W1i + b1i - B * D)   # T is exact
    dz = (np.float64(1.0 / B) * (B * D).astype(np.float64)).astype(dt)
    assert np.array_equal(dz, D) and (D != 0).mean() > 0.3
    aX, aW0, aW1, aD = abs(Xi), abs(W0i), abs(W1i), abs(D)
    aH0 = aX @ aW0 + abs(b0i)
    # the sums of the terms' magnitudes bound every partial sum, in any order
    for bound in (aH0, aH0 @ aW1 + abs(b1i) + B * aD, aD @ aW1.T, aX.T @ (aD @ aW1.T),
                  8 * aW0 + aX.T @ (aD @ aW1.T), 8 * aW1 + aH0.T @ aD,
                  8 * abs(b0i) + (aD @ aW1.T).sum(axis=0), 8 * abs(b1i) + aD.sum(axis=0)):
        assert bound.max() < big


def test_the_relu_step_plan_straddles_the_blocked_width():
    P = paths._paths()
    cases = paths.plan()["epoch_relu"]
    # dZ_1 W_1^T: m = B, n = hidden, k = n_out
    blocked = [paths.blocked(P, B, h, o) for label, (B, i, h, o), key in cases]
    assert any(blocked) and not all(blocked)
    assert any(not paths.blocked(P, B, h, o) and o > 1 and B > 1
               for label, (B, i, h, o), key in cases)          # below the width
    assert any(o == 1 for label, (B, i, h, o), key in cases)   # k = 1
    # float64 forms dZ_1 W_1^T inside act_backward_product under an output layer at most
    # NARROW_K wide, so only a wider one reaches the write-back's float64 relu backward
    # (NN_GEMM512_COLSUMS_pd): blocked products just below, at and just above it; and a
    # hidden layer of more than four float vectors reaches the float loops' 4-vector
    # panel and a second panel (the offsets of H, work and the bias by panel)
    narrow_k = P["NARROW_K"]
    assert {o for label, (B, i, h, o), key in cases
            if key == "NARROW_K" and paths.blocked(P, B, h, o)} == {
        narrow_k - 1, narrow_k, narrow_k + 1}
    assert any(paths.blocked(P, B, h, o) and h > 4 * 16
               for label, (B, i, h, o), key in cases)


def test_the_narrow_pass_plan_runs_every_pass_form_of_the_in_pass_input_gradient():
    # float64's act_backward_product adds dZ_1 W_1^T's n_out products in passes of up to
    # four, each pass count a literal: every n_out from 2 to NARROW_K gives the first pass
    # of 2, 3 and 4 and a later pass of 1, 2, 3 and 4 after one, two and three passes of
    # four, each under relu and identity, on 2+ rows (one row takes another path)
    nk = paths._paths()["NARROW_K"]
    cases = paths.plan()["epoch_narrow"]
    forms = {(act, o // 4 if o % 4 else o // 4 - 1, o % 4 or 4)
             for label, (B, i, h, o, act), key in cases if B > 1 and h > 1}
    assert forms >= {(act, passes, last) for act in ("relu", "identity")
                     for passes in range(nk // 4) for last in range(1, 5)
                     if 4 * passes + last >= 2 and 4 * passes + last <= nk}
    assert {o for label, (B, i, h, o, act), key in cases} == set(range(2, nk + 1))


@pytest.mark.parametrize("dname", ["float32", "float64"])
@pytest.mark.parametrize("o", [2, 7, 11, 16])
def test_the_identity_hidden_layer_operands_are_exact(dname, o):
    # the narrow pass cases' identity hidden layer: the relu operands' bounds are the
    # terms' magnitudes, so without the mask every value stays an exact integer too
    dt = paths.DTYPES[dname]
    big = 2 ** (np.finfo(dt).nmant + 1)
    X, W0, b0, W1, b1, T, D = paths.relu_step_operands((13, 5, 20, o), dname, 0)
    Xi, W0i, b0i, W1i, b1i = (a.astype(np.int64) for a in (X, W0, b0, W1, b1))
    H0 = Xi @ W0i + b0i
    T = H0 @ W1i + b1i - 13 * D
    assert abs(T).max() < big and abs(D @ W1i.T).max() < big
    assert abs(8 * W0i - Xi.T @ (D @ W1i.T)).max() < big
    assert np.array_equal(T.astype(dt).astype(np.int64), T)


def _failing_run_epoch_cases(monkeypatch, model):
    """The run_epoch cases that fail with ``paths.squared_error_epoch`` replaced by
    ``model(squared_error_epoch)`` (a NumPy model of a slip applied to the weights the
    real epoch leaves)."""
    monkeypatch.setattr(paths, "squared_error_epoch", model(paths.squared_error_epoch))
    items = paths.run_paths(Context(quick=True, only=["run_epoch"]))
    return [r for it in items for r in it["paths"] if not r["passed"]]


def _third_pass_short(real):
    """squared_error_epoch under a model of the slip held-dense-product-third-pass-short:
    float64's act_backward_product (2+ rows, an output layer 2 to NARROW_K wide) takes a
    later pass of three products as two, so dH_0 leaves out dZ_1[:, k-1] W_1[:, k-1]^T
    for k = 4 j + 3, j >= 1 (the step subtracts that much less from W_0 and b_0)."""
    from nnlib._codes import ACTIVATION_CODES
    nk = paths._paths()["NARROW_K"]

    def wrong(api, kinds, Ws, bs, X, T, batch, optimizer, order, *a, **kw):
        W0, b0, W1, b1 = (v.copy() for v in (Ws[0], bs[0], Ws[-1], bs[-1]))
        out = real(api, kinds, Ws, bs, X, T, batch, optimizer, order, *a, **kw)
        k, B = W1.shape[1], len(order)
        if (len(Ws) == 2 and X.dtype == np.float64 and B > 1 and batch > 1
                and 7 <= k <= nk and k % 4 == 3):
            Z0 = X[order] @ W0 + b0
            relu = kinds[0] == ACTIVATION_CODES["relu"]
            H0 = np.maximum(Z0, 0) if relu else Z0
            dZ1 = (H0 @ W1 + b1 - T[order]) / B
            lost = np.outer(dZ1[:, k - 1], W1[:, k - 1]) * ((Z0 > 0) if relu else 1)
            lr = optimizer.config()["lr"]
            Ws[0] += lr * (X[order].T @ lost)
            bs[0] += lr * lost.sum(axis=0)
        return out
    return wrong


def test_a_later_pass_of_three_products_taken_as_two_fails(monkeypatch):
    # held-dense-product-third-pass-short: only the float64 W_0 and b_0 of networks with 7,
    # 11 and 15 outputs fail; the narrow pass plan has four such networks where the other
    # epoch plans had two (both with 15 outputs)
    bad = _failing_run_epoch_cases(monkeypatch, _third_pass_short)
    assert bad and all(r["dtype"] == "float64" and r["output"][:3] in ("W_0", "b_0")
                       for r in bad)
    outs = {int(r["path"].split(" -> ")[-1].split(":")[0]) for r in bad}
    assert outs == {7, 11, 15}
    narrow = [r for r in bad if r["threshold"] == "act_backward_product passes"]
    assert {(o, act) for o in (7, 11, 15) for act in ("relu", "identity")} == {
        (int(r["path"].split(" -> ")[-1].split(":")[0]), r["path"].split()[4])
        for r in narrow}
    # W_0 and b_0 of each: 12 cases, beside the 4 of relu_step_plan's two
    assert len(narrow) == 12 and len(bad) - len(narrow) == 4


def test_the_relu_step_plan_straddles_the_identity_sums_width():
    # the identity output layer's column sums stay in two vectors of 8 doubles for 2+ rows
    # of at most NN_IDENTITY_SUMS_MAX_C columns (act_row.h): widths just below, at and just
    # above it, the second vector empty and one lane wide, and one row (act_backward's)
    sc = paths._paths()["NN_IDENTITY_SUMS_MAX_C"]
    cases = paths.plan()["epoch_relu"]
    assert {o for label, (B, i, h, o), key in cases
            if key == "NN_IDENTITY_SUMS_MAX_C" and B > 1} == {sc - 1, sc, sc + 1}
    assert {8, 9} <= {o for label, (B, i, h, o), key in cases if B > 1}
    assert {B for label, (B, i, h, o), key in cases if o <= sc} >= {1, 2}


def test_the_sparse_step_plan_reaches_every_branch_of_the_sparse_first_layer():
    # sparse_rows.pxd: X_b W (a relu network's first layer) and X_b^T dZ fused into plain
    # SGD (alpha -lr; beta 1, or 1 - lr wd with decay) or alone before a momentum step
    # (alpha 1, beta 0), each on one row and on several rows taken out of storage order
    cases = paths.plan()["epoch_sparse"]
    paths_of = {key for label, shape, key in cases}
    assert paths_of == {"sparse X: X^T dZ fused into the step", "sparse X: fused, with decay",
                        "sparse X: X^T dZ, then the step", "sparse X: X W_0 forward"}
    for key in paths_of:
        rows = {B for label, (B, i, h, o), k in cases if k == key}
        assert max(rows) > 1, key
    assert {1} <= {B for label, (B, i, h, o), k in cases if "X^T dZ" in k}
    assert all("reversed" in label for label, (B, i, h, o), k in cases if B > 1)
    assert all((h > 0) == (k == "sparse X: X W_0 forward") for label, (B, i, h, o), k in cases)


def test_the_rows_step_plan_reads_dense_rows_in_place_out_of_order():
    # dense.pxd's rows_in_place: more than one row and one input, both first-layer
    # products blocked (X_b W_0: m = B, k = n_in; X_b^T dZ: m = n_in, k = B), plain SGD
    # fused with and without decay, X_b^T dZ alone before a momentum step, and a relu
    # first layer; the rows reversed, more of them than one row block of the forward
    # holds (gemm_small.h: 12 at most)
    P = paths._paths()
    cases = paths.plan()["epoch_rows"]
    assert {key for label, shape, key in cases} == {
        "rows in place: X^T dZ fused into the step", "rows in place: with decay",
        "rows in place: X^T dZ, then the step", "rows in place: X W_0 forward"}
    for label, (B, i, h, o), key in cases:
        width = h or o
        assert B > 12 and i > 1 and "reversed" in label
        assert paths.blocked(P, B, width, i) and paths.blocked(P, i, width, B)
        assert (h > 0) == (key == "rows in place: X W_0 forward")


def test_the_l2_epoch_plan_reaches_the_sums_lanes_and_blocks():
    # several steps (plain SGD: each step sums the weights its fused step left);
    # weight arrays with and without a lane group cut short (penalty.h's 16 lanes), and
    # one longer than a block of 64 values
    cases = paths.plan()["epoch_l2"]
    assert all(-(-N // B) > 2 for label, (N, B, i, h, o), key in cases)
    sizes = [[i * o] if not h else [i * h, h * o] for label, (N, B, i, h, o), key in cases]
    tails = {n % 16 for ns in sizes for n in ns}
    assert 0 in tails and tails - {0}
    assert any(len(ns) > 1 for ns in sizes)
    assert any(n > 64 and n % 64 for ns in sizes for n in ns)


def test_the_batch1_steps_are_exact_in_float32_for_any_seed():
    # several steps in a row at batch 1 (the second reads what the first left), on
    # operands whose every product, partial sum and update is exact in float32
    cases = paths.plan()["epoch_b1"]
    assert cases and all(N >= 2 for label, (N, i, h, o), key in cases)
    for label, shape, key in cases:
        for seed in range(4):
            ops, exact = paths.batch1_steps_exact(shape, seed)
            assert all(int(v * 4096) == v * 4096 for a in exact for v in np.ravel(a))


def test_the_sklearn_step_cancels_in_scikit_learns_order_only():
    # scikit-learn's Nesterov step from a velocity of 3 g (mu = lr = 1/2): its order,
    # w + (mu v' - lr g), gives w back exactly (v' = g, the update 0); adding mu v' to w
    # first rounds away every w but 0 (no gradient is 0), in float64 as in float32
    # arrays (the rule computes in double); the targets and gradients are exact in
    # float32, with and without the 1/B of two rows
    cases = paths.plan()["epoch_sklearn"]
    assert {B for label, (B, i, o), key in cases} == {1, 2}
    mu, lr = paths.SKLEARN_MU, paths.SKLEARN_LR
    for label, shape, key in cases:
        for seed in range(4):
            X, W, b, S, C = paths.sklearn_step_operands(shape, seed)
            assert (X == X[0]).all() and not (X[0] @ W + b).any()
            T = -C.astype(np.float64) * 2.0 ** paths.SKLEARN_SHIFT
            dz = (np.float64(1.0 / shape[0]) * (0.0 - T)).astype(np.float32)
            assert (dz.sum(axis=0) == S * 2.0 ** 59).all()
            for w, g in ((W, np.outer(X[0], S) * 2.0 ** 59), (b, S * 2.0 ** 59)):
                w = w.astype(np.float64)
                v = mu * (3.0 * g) - lr * g
                assert (v == g).all() and (g.astype(np.float32) == g).all()
                assert (w + (mu * v - lr * g) == w).all()
                other = (w + mu * v) - lr * g
                assert g.all() and ((other != w) == (w != 0)).all()
            assert W.all()


def test_the_seed_order_streams_straddle_the_shuffle_blocks():
    """verify.fast_paths' streams run SeedOrders across its first pass's blocks (one
    position past a block, a block of one, two blocks and one more) and across its
    made-ahead PCG64 outputs (an order needing more halves than one refill holds)."""
    from verify import fast_paths
    s = _paths.path_value("NN_SHUFFLE_SWAPS")
    assert {s + 1, s + 2, 2 * s, 2 * s + 1} <= set(fast_paths.LENGTHS)
    assert max(fast_paths.LENGTHS) > 2 * _paths.path_value("NN_SHUFFLE_DRAWS")


def test_the_pool_step_plan_reaches_the_passes_on_blas_threads():
    """train.pyx's epoch with BLAS on several threads and n_threads 1 (pass_blocks.pxd):
    the batch is gathered on BLAS's threads from PAR_MIN_ELEMS values when its first-layer
    products are not both blocked (the rows are then not read in place); the hidden
    layer's bias and activation from PAR_MIN_ELEMS values after an unblocked product;
    the backward in blocks of columns from PAR_MIN_ELEMS values over 2+ lines, where the
    input gradient above is neither formed in act_backward_product (float64, an output
    layer at most NARROW_K wide) nor in a blocked product's write-back."""
    P = paths._paths()
    pme, nk = P["PAR_MIN_ELEMS"], P["NARROW_K"]
    cases = paths.plan()["epoch_pool"]
    assert len(cases) == 2
    for label, (B, i, h, o), key in cases:
        assert B * i >= pme and not paths.blocked(P, B, h, i)      # gather; H_0's product
        assert B * h >= pme                                        # H_0's bias + relu
    backward = [(B, h, o) for label, (B, i, h, o), key in cases if "act_backward" in key]
    assert backward and all(o > nk and B * h >= pme and B * o >= pme and h >= 2 * 16
                            and o >= 2 * 16 and not paths.blocked(P, B, h, o)
                            for B, h, o in backward)


def test_the_pool_cases_are_exact_on_blas_threads():
    from nnlib._kernels import blas
    from nnlib._threads import blas_threads
    with blas_threads(paths.POOL_THREADS):
        if blas.pool_threads() < paths.POOL_THREADS:
            pytest.skip("no OpenBLAS pool of two threads here")
    items = paths.run_paths(Context(quick=True, only=["run_epoch_pool"]))
    assert [it["name"] for it in items] == ["run_epoch_pool (branch paths)"]
    rows = items[0]["paths"]
    assert not items[0].get("skipped") and items[0]["passed"]
    assert len(rows) == 16 and all(r["passed"] and r["max_ulps"] == 0 for r in rows)
    assert {r["dtype"] for r in rows} == {"float32", "float64"}


def test_the_pool_cases_are_skipped_without_the_pool(monkeypatch):
    """Where BLAS cannot run the passes on its threads the cases cannot reach them: the
    item says skipped (a failure under --strict), it does not pass by absence."""
    from nnlib._kernels import blas
    from verify.run import _strict_fail
    monkeypatch.setattr(blas, "pool_threads", lambda: 1)
    items = paths.run_paths(Context(quick=True, only=["run_epoch_pool"]))
    assert len(items) == 1
    it = items[0]
    assert it["name"] == "run_epoch_pool (branch paths)" and it["paths"] == []
    assert it["skipped"] == paths.POOL_NEEDS
    assert it["verdict"] == f"skipped (needs {paths.POOL_NEEDS})"
    assert not _strict_fail(it)["passed"]
    # --only and --list know the item by its name
    assert "run_epoch_pool (branch paths)" in paths.item_names()


def _exp_without_low_part(x):
    """vmath.h's nn_exp with 1 + r rounded once more (its Fast2Sum's low part left out,
    catalogue fault held-vmath-exp-pair-low-dropped), in NumPy's float64 arithmetic."""
    x = np.maximum(np.asarray(x, dtype=np.float64), -746.0)     # nn_exp's clamp
    t = (x * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0
    r1 = x - t * float.fromhex("0x1.62e42fee00000p-1")
    r = r1 - t * 1.90821492927058770002e-10
    r_lo = (r1 - r) - t * 1.90821492927058770002e-10
    rl = r.astype(LD)
    g = ((np.expm1(rl) - rl) / (rl * rl)).astype(np.float64)    # vmath's g(r), closely
    return np.ldexp((1.0 + r) + (r_lo + (r * r) * g), t.astype(np.int64))


def test_the_exp_tail_pool_has_outputs_that_are_e_to_the_x_rounded_once():
    for dname, lo in (("float64", -700.0), ("float32", -79.0)):
        x = paths.exp_tail_pool(dname, 0).astype(np.float64)
        assert x.size >= 40 and x.dtype == np.float64
        assert np.all((x > lo) & (x < -39.0))
        k = np.round(x.astype(LD) / np.log(LD(2)))
        if dname == "float64":
            assert np.all(np.abs(x.astype(LD) - k * np.log(LD(2))) <= 2.0 ** -12)
        assert np.all(1.0 + np.exp(x) == 1.0)          # sigma(x) = e^x / 1 there


def test_an_exp_that_loses_half_an_ulp_fails_the_exp_tail_cases(monkeypatch):
    # sigmoid(x) = e^x on the exp-tail pool (1 + e^x = 1): an e^x that rounds 1 + r
    # twice is more than 0.51 ulp off on about a fifth of those points; the cases of
    # random arguments (a division, 2 ulp of slack) do not see it
    real = F.sigmoid

    def wrong(x, **kw):
        out = real(x, **kw)
        if out.dtype == np.float64:
            tail = np.asarray(x) < -39.0
            out = np.where(tail, _exp_without_low_part(np.where(tail, x, 0.0)), out)
        return out
    monkeypatch.setattr(F, "sigmoid", wrong)
    items = paths.run_paths(Context(quick=True, only=["sigmoid"]))
    bad = {(r["dtype"], r["path"]) for it in items for r in it["paths"]
           if not r["passed"] and r["output"] == "forward"}
    assert bad == {("float64", label) for label, _ in paths.EXP_TAIL_SIZES}, bad


def test_a_one_row_dx_reading_the_wrong_rows_fails_every_row_dots_shape(monkeypatch):
    # blas_small.h's float32 row dots of one row take rows 8-15 of each block of 16 from
    # the first 8 rows, 8 columns on (catalogue fault
    # held-dense-row-dots-f32-second-half-stride): every one-row shape with such rows and
    # four or more columns fails, not just one
    real = F.dense_backward

    def wrong(X, W, H, G, *a, **kw):
        dX, dW, db = real(X, W, H, G, *a, **kw)
        n_in, n_out = np.shape(W)
        if dX.dtype == np.float32 and dX.shape[0] == 1 and n_in >= 9 and n_out >= 4:
            flat = np.concatenate([np.ravel(W), np.zeros(n_out + 8, np.float32)])
            dX = dX.copy()
            for j in range(n_in):
                if j % 16 >= 8:
                    Wj = flat[(j - 8) * n_out + 8:(j - 8) * n_out + 8 + n_out]
                    dX[0, j] = np.float32(np.dot(G[0].astype(np.float64), Wj))
        return dX, dW, db
    monkeypatch.setattr(F, "dense_backward", wrong)
    items = paths.run_paths(Context(quick=True, only=["dense_backward"]))
    bad = {r["path"] for it in items for r in it["paths"] if not r["passed"]}
    one_row = {label for label, (r, i, o), _ in paths.plan()["dense_products"]
               if r == 1 and i >= 9 and o >= 4}
    assert bad == one_row and len(one_row) >= 7, bad


def test_a_float32_leaky_relu_whose_scalar_tail_rounds_the_slope_first_fails(monkeypatch):
    # act_f32.h's tail (the last n % 4 values) taking float(slope) x (catalogue fault
    # held-act-f32-leaky-tail-slope-float): a long array sends at most three values
    # there, so only the calls of 1, 2 and 3 values that take every pool value see it
    real = F.leaky_relu

    def wrong(x, slope=0.01, **kw):
        out = np.array(real(x, slope, **kw))
        xf, of = np.asarray(x).reshape(-1), out.reshape(-1)
        if out.dtype == np.float32:
            for i in range(xf.size - xf.size % 4, xf.size):
                if not xf[i] > 0:
                    of[i] = np.float32(slope) * xf[i]
        return out
    monkeypatch.setattr(F, "leaky_relu", wrong)
    items = paths.run_paths(Context(quick=True, only=["leaky_relu"]))
    bad = {(r["dtype"], r["output"], r["path"]) for it in items for r in it["paths"]
           if not r["passed"]}
    # the registry's slope through the scalar tails, and every other slope through the
    # tails and a vector plus each tail (PARAM_SWEEP: none of them is a float)
    assert bad == {("float32", "forward", f"n={n}, each pool value (the scalar tails)")
                   for n in paths.TAIL_NS} | {
        ("float32", "forward", f"n={n}, each pool value (the scalar tails), slope={p!r}")
        for p in paths.PARAM_SWEEP["leaky_relu"] for n in paths.PARAM_TAIL_NS}, bad


def _grad_y_f64(name, H, p):
    # act'(H) as the kernels form it in double, from the float32 output
    y = H.astype(np.float64)
    return {"sigmoid": lambda: y * (1.0 - y), "tanh": lambda: 1.0 - y * y,
            "softplus": lambda: -np.expm1(-y), "elu": lambda: np.where(y > 0, 1.0, y + p),
            "leaky_relu": lambda: np.where(y > 0, 1.0, p)}[name]()


_ROUNDED_KINDS = ("sigmoid", "tanh", "softplus", "elu", "leaky_relu")


def _wrong_dense_backward(monkeypatch, dz_of, db_of):
    # float32 dense_backward of 2+ rows whose dZ and db come from dz_of / db_of (models of
    # a slip in act_backward_cols); everything else is the real kernel's
    real = F.dense_backward

    def wrong(X, W, H, G, activation="identity", activation_param=None, **kw):
        dX, dW, db = real(X, W, H, G, activation, activation_param, **kw)
        H, G = np.asarray(H), np.asarray(G)
        if H.dtype != np.float32 or H.shape[0] < 2 or activation not in _ROUNDED_KINDS:
            return dX, dW, db
        p = 0.0 if activation_param is None else activation_param
        dZ = dz_of(activation, H, G, p)
        return (dZ @ np.asarray(W).T, np.asarray(X).T @ dZ, db_of(dZ))
    monkeypatch.setattr(F, "dense_backward", wrong)
    items = paths.run_paths(Context(quick=True, only=["dense_backward"]))
    return {(r["output"], r["path"]) for it in items for r in it["paths"]
            if not r["passed"] and r["dtype"] == "float32"}


def _given_h_labels(output):
    return {(f"{output} ({name}), error / bound",
             f"{r} x {m}, X = I, grad_H in +-[0.3, 3], given H")
            for name in _ROUNDED_KINDS for r, m in paths.DENSE_GIVEN_H_SHAPES}


def _db_in_double(dZ):
    return dZ.astype(np.float64).sum(axis=0).astype(np.float32)


def test_a_float32_dense_backward_rounding_act_grad_first_fails_every_given_h_dz_case(
        monkeypatch):
    # act_backward_cols rounding act'(H) to float before its float product with g
    # (catalogue fault held-dense-act-grad-f32-rounded-first): one rounding more in each
    # dZ, which the given-H cases' bound (half an ulp and 4 units of 2^-53) does not hold
    bad = _wrong_dense_backward(
        monkeypatch,
        lambda name, H, G, p: G * _grad_y_f64(name, H, p).astype(np.float32),
        _db_in_double)
    # all 30 but at most one: the 2 x 7 tanh case's 14 values are mostly saturated (act' 0)
    assert len(_given_h_labels("dZ = dW") - bad) <= 1, _given_h_labels("dZ = dW") - bad


def test_a_float32_column_accumulator_fails_the_given_h_db_cases(monkeypatch):
    # db summed in a float32 accumulator (catalogue fault
    # dense-db-f32-partial-sums-rounded): each partial sum rounded, which the db bound
    # (the sum of the kernel's own dZ rows in double, rounded once) does not hold from 3
    # rows on (two rows: the one float addition is that rounding)
    def float_sums(dZ):
        acc = np.zeros(dZ.shape[1], np.float32)
        for row in dZ:
            acc = (acc.astype(np.float64) + row).astype(np.float32)
        return acc
    bad = _wrong_dense_backward(
        monkeypatch,
        lambda name, H, G, p: (G.astype(np.float64) * _grad_y_f64(name, H, p)
                               ).astype(np.float32),
        float_sums)
    want = {(o, lab) for o, lab in _given_h_labels("db = sum of dZ's rows")
            if not lab.startswith("2 x")}
    # at three rows each column has one float rounding more, which may land on the
    # value the double sum rounds to: all 25 cases of 3+ rows but at most two
    assert len(want - bad) <= 2, sorted(want - bad)


def _t_ln2_below_normal(y, weight=None):
    """The shift of a mean Poisson loss whose log of a subnormal target is ln 2 too large:
    the (weighted) mean over rows of the row sums of t ln 2, t below the smallest normal
    double (a float32 target is a normal double: no shift)."""
    t = np.asarray(y)
    if t.dtype != np.float64:
        return 0.0
    t = t.reshape(t.shape[0], -1)
    rows = np.where((t > 0) & (t < np.finfo(np.float64).tiny), t * np.log(2.0), 0.0).sum(1)
    w = np.ones(len(rows)) if weight is None else np.asarray(weight, np.float64)
    return float((w * rows).sum() / w.sum())


def test_a_poisson_loss_whose_log_of_a_subnormal_target_is_off_by_ln2_fails(monkeypatch):
    # vmath.h's nn_log_reduce taking a subnormal x back by 2^53 instead of 2^54 (catalogue
    # fault held-vmath-log-subnormal-exponent): t log t off by t ln 2 where t is below the
    # smallest normal double, which only the subnormal-target cases reach: each row alone,
    # and batches through the functional loss, loss_and_grad and the epoch's loss_grad
    # (with and without sample weights); the gradients do not take log t
    real, real_fused = F.poisson_loss, F.loss_and_grad
    real_epoch = paths._Runner._epoch_call

    def wrong(z, y, **kw):
        return real(z, y, **kw) + _t_ln2_below_normal(y)

    def wrong_fused(name, z, y, **kw):
        loss, grad = real_fused(name, z, y, **kw)
        return loss + (_t_ln2_below_normal(y) if name == "poisson_loss" else 0.0), grad

    def wrong_epoch(api, name, Z, Y, mg, dt, weight=None):
        loss, db = real_epoch(api, name, Z, Y, mg, dt, weight)
        return loss + _t_ln2_below_normal(Y, weight), db
    monkeypatch.setattr(F, "poisson_loss", wrong)
    monkeypatch.setattr(F, "loss_and_grad", wrong_fused)
    monkeypatch.setattr(paths._Runner, "_epoch_call", staticmethod(wrong_epoch))
    items = paths.run_paths(Context(quick=True, only=["poisson_loss"]))
    bad = {(r["dtype"], r["output"], r["path"]) for it in items for r in it["paths"]
           if not r["passed"]}
    alone = "each (z, t) alone, t below the smallest normal"
    want = {("float64", o, alone) for o in ("loss (each row alone)",
                                           "loss_and_grad loss (each row alone)")}
    want |= {("float64", o, label) for label, _ in paths.subnormal_target_shapes()
             for o in ("loss", "loss_and_grad loss")}
    want |= {("float64", "epoch loss_grad loss", label + w)
             for label, _ in paths.subnormal_target_shapes(epoch=True)
             for w in ("", ", sample weights")}
    assert bad == want, sorted(bad ^ want)
    assert len(want) >= 16


def test_a_float32_output_vjp_whose_tail_rounds_act_grad_first_fails(monkeypatch):
    # act_f32.h's sigmoid/tanh vjp given the output rounding act'(y) to float and
    # multiplying in float in its scalar tail (catalogue fault
    # held-act-f32-vjp-tail-rounded-first): the output-form tail cases hold it
    def wrong_of(name):
        real = getattr(F, name + "_vjp")

        def wrong(x, g, *, output=None, **kw):
            out = np.array(real(x, g, output=output, **kw))
            if output is None or out.dtype != np.float32:
                return out
            y = np.asarray(output).reshape(-1).astype(np.float64)
            gf, of = np.asarray(g).reshape(-1), out.reshape(-1)
            d = 1.0 - y * y if name == "tanh" else y * (1.0 - y)
            for i in range(y.size - y.size % 4, y.size):
                of[i] = np.float32(d[i]) * gf[i]
            return out
        return wrong
    for name in ("sigmoid", "tanh"):
        monkeypatch.setattr(F, name + "_vjp", wrong_of(name))
    items = paths.run_paths(Context(quick=True, only=["sigmoid", "tanh"]))
    bad = {(r["kernel"], r["dtype"], r["output"], r["path"]) for it in items
           for r in it["paths"] if not r["passed"]}
    assert bad == {(name, "float32", "vjp given the output",
                    f"n={n}, each pool value's output (the scalar tails)")
                   for name in ("sigmoid", "tanh") for n in paths.PARAM_TAIL_NS}, bad


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "elu"])
def test_grad_y_reference_is_exact_enough_near_saturation(name):
    # the exact act'(y) of the output-form vjp cases: at float64 outputs next to the
    # saturation values (|y| -> 1, y -> 0, y -> -alpha) it must stay within a few 2^-64
    # relative, far below a float64 ulp; tanh's 1 - y*y in longdouble was ~1e-9 relative
    # at y = -0.9999999999730104 (a full run's seed 1: 84116 "ulps" of a correct kernel)
    p = 1.3
    ys = {"sigmoid": [1 - 2.0 ** -40, 0.5 + 2.0 ** -30, 1e-300, 0.25],
          "tanh": [-0.9999999999730104, 1 - 2.0 ** -50, 0.999999, -0.5],
          "softplus": [1e-17, 3.0, 40.0],
          "elu": [-p * (1 - 2.0 ** -45), -1.0, 2.0]}[name]
    exact = {"sigmoid": lambda y: y * (1 - y), "tanh": lambda y: 1 - y * y,
             "softplus": lambda y: -mpmath.expm1(-y), "elu": lambda y: y + p if y <= 0 else 1}
    got = paths.grad_y_reference(name, np.array(ys, dtype=np.float64), p)
    with mpmath.workprec(200):
        for y, v in zip(ys, got):
            e = exact[name](mpmath.mpf(y))
            num, den = v.as_integer_ratio()                 # the longdouble exactly
            assert abs(mpmath.mpf(num) / den - e) <= 2.0 ** -60 * abs(e), (name, y, v)


def _sign_bits_failures(monkeypatch, edit):
    """The (dtype, path) of sign's bit-for-bit cases that fail when float32 F.sign's
    output of each call passes through ``edit(x, out)`` (in place)."""
    real = F.sign

    def wrong(x, **kw):
        out = np.array(real(x, **kw))
        if out.dtype == np.float32:
            edit(np.asarray(x).reshape(-1), out.reshape(-1))
        return out
    monkeypatch.setattr(F, "sign", wrong)
    items = paths.run_paths(Context(quick=True, only=["sign"]))
    return {(r["dtype"], r["path"]) for it in items for r in it["paths"]
            if not r["passed"] and r["output"] == "forward, bits"}


def _sign_label(n):
    return (f"n={n}, each pool value and NaNs (bits: the sign of zero, a NaN's sign and "
            "payload)")


def test_sign_bits_cases_pass_on_this_build():
    items = paths.run_paths(Context(quick=True, only=["sign"]))
    rows = [r for it in items for r in it["paths"] if r["output"] == "forward, bits"]
    assert {(r["dtype"], r["path"]) for r in rows} == {
        (d, _sign_label(n)) for d in ("float32", "float64") for n in paths.SIGN_NS}
    assert all(r["passed"] for r in rows), [r["problems"] for r in rows if r["problems"]]


@pytest.mark.parametrize("dname", ["float32", "float64"])
def test_sign_exact_is_the_documented_convention(dname):
    x = paths.sign_pool(dname, 0)
    want = paths.sign_exact(x)
    ut = np.uint64 if dname == "float64" else np.uint32
    for v, w in zip(x, want):
        if np.isnan(v):      # quieted, sign and payload kept
            q = 1 << (np.finfo(x.dtype).nmant - 1)
            assert np.array(w).view(ut) == np.array(v).view(ut) | q
        elif v == 0:
            assert np.array(w).view(ut) == np.array(v).view(ut)     # -0 -> -0
        else:
            assert w == (1 if v > 0 else -1)
    assert np.isnan(x).sum() >= 5 and (np.signbit(x) & (x == 0)).any()


def test_a_float32_sign_dropping_the_zeros_sign_fails_every_bits_case(monkeypatch):
    # act_f32.h's vpternlogd without x's sign bit ORed in (catalogue fault
    # act-f32-sign-zero-sign-dropped): sign(-0) = +0, which the ULP cases do not see
    def edit(x, out):
        out[x == 0] = np.float32(0.0)
    assert _sign_bits_failures(monkeypatch, edit) == {
        ("float32", _sign_label(n)) for n in paths.SIGN_NS}


def test_a_float32_sign_whose_tail_mask_is_one_lane_short_fails(monkeypatch):
    # act_f32.h's masked tail one lane short (act-f32-sign-tail-mask-short): the last value
    # of a call whose length is not a multiple of 16 is left as the output buffer held it
    def edit(x, out):
        if out.size % 16:
            out[-1] = np.float32(0.5)
    size = paths.sign_pool("float32", paths.FIXED_SEED).size
    # a case fails where one of its calls has a tail: n not a multiple of 16, or the
    # pool's last, shorter call (so every n here)
    with_tail = {n for n in paths.SIGN_NS if n % 16 or size % n % 16}
    assert with_tail == set(paths.SIGN_NS)
    assert _sign_bits_failures(monkeypatch, edit) == {
        ("float32", _sign_label(n)) for n in with_tail}


def test_a_float32_sign_with_the_infinities_swapped_fails_every_bits_case(monkeypatch):
    # the fixup table's +-inf nibbles swapped (act-f32-sign-table-inf-swapped)
    def edit(x, out):
        out[np.isinf(x)] = -np.sign(x[np.isinf(x)])
    assert _sign_bits_failures(monkeypatch, edit) == {
        ("float32", _sign_label(n)) for n in paths.SIGN_NS}


def test_a_batch1_fused_step_dropping_w0s_last_partial_chunk_fails(monkeypatch):
    # blas_small.h's fused batch-1 step and next-row product (nn_rank1_axpys) ending its
    # last chunk of 64 rows at the count left instead of m (held-out fault
    # held-gemm-fused-chunk-end-count): past 64 inputs, W_0's last m mod 64 rows are not
    # stepped at a step with a next row, and that row's product leaves them out. Modelled
    # in NumPy on the epoch_b1 cases (exact operands, so float64 arithmetic is exact)
    real = paths.squared_error_epoch

    def wrong(api, kinds, Ws, bs, X, T, batch, optimizer, order, states=None, l2=0.0):
        m = Ws[0].shape[0]
        if batch != 1 or m <= 64 or m % 64 == 0:
            return real(api, kinds, Ws, bs, X, T, batch, optimizer, order, states, l2)
        cut, lr = m - m % 64, paths.SGD_LR
        W0, b0, W1, b1 = (a.astype(np.float64) for a in (Ws[0], bs[0], Ws[1], bs[1]))
        for s, r in enumerate(order):
            x = X[r].astype(np.float64)
            xs = x.copy()
            if s > 0:                       # this row's product came from the fused pass
                xs[cut:] = 0
            z0 = xs @ W0 + b0
            h0 = np.maximum(z0, 0)
            d = h0 @ W1 + b1 - T[r]
            dz0 = (d @ W1.T) * (z0 > 0)
            W1 -= lr * np.outer(h0, d)
            b1 -= lr * d
            g = lr * np.outer(x, dz0)
            if s < len(order) - 1:          # the fused pass steps W_0 here
                g[cut:] = 0
            W0 -= g
            b0 -= lr * dz0
        for out, v in zip((Ws[0], bs[0], Ws[1], bs[1]), (W0, b0, W1, b1)):
            out[...] = v
        return None, True
    monkeypatch.setattr(paths, "squared_error_epoch", wrong)
    items = paths.run_paths(Context(quick=True, only=["run_epoch"]))
    bad = {(r["dtype"], r["output"].split(" after")[0], r["path"]) for it in items
           for r in it["paths"] if not r["passed"]}
    long_rows = [label for label, (N, i, h, o), _ in paths.batch1_steps_plan() if i > 64]
    assert len(long_rows) == 2
    assert {p for _, _, p in bad} == set(long_rows), bad
    assert {(d, "W_0", p) for d in ("float32", "float64") for p in long_rows} <= bad, bad


def test_a_one_row_product_dropping_its_last_partial_chunk_fails(monkeypatch):
    # blas_small.h's one-row x W (nn_row_axpys) ending its last chunk of 64 terms at the
    # count left instead of k (held-out fault held-gemm-row-axpys-chunk-end-count): past
    # 64 inputs the last k mod 64 terms are left out; only the one-row shapes past 64
    # inputs reach it
    real = F.dense_forward

    def wrong(X, W, b, *a, **kw):
        (r, i) = np.shape(X)
        if r == 1 and i > 64 and i % 64:
            cut = i - i % 64
            X, W = X[:, :cut].copy(), W[:cut].copy()
        return real(X, W, b, *a, **kw)
    monkeypatch.setattr(F, "dense_forward", wrong)
    items = paths.run_paths(Context(quick=True, only=["dense_forward"]))
    bad = {r["path"] for it in items for r in it["paths"] if not r["passed"]}
    long_rows = {label for label, (r, i, o), _ in paths.plan()["dense_products"]
                 if r == 1 and i > 64 and i % 64}
    assert bad == long_rows and len(long_rows) == 2, bad


def _vmath_constants(*names):
    """vmath.h's #define'd doubles ``names``, read from the header the kernels build."""
    import os
    import re
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "nnlib", "_kernels", "vmath.h")
    src = open(path).read()
    return [float(re.search(rf"#define {n}\s+([-+0-9.eE]+)", src).group(1)) for n in names]


def _log1p_unit_model(u, half=0.5):
    """vmath.h's nn_log1p_unit for u in (sqrt2 - 1, 1), its operations in NumPy's float64
    (no FMA); ``half=1.0`` is catalogue fault held-vmath-log1p-split-correction-unhalved
    (the rounding error c of u - 1 added as c (1 - f), not c/2 (1 - f))."""
    lg = _vmath_constants(*(f"NN_LG{i}" for i in range(1, 8)))
    ln2_hi, ln2_lo = _vmath_constants("NN_LN2_HI", "NN_LN2_LO")
    u = np.asarray(u, dtype=np.float64)
    d = u - 1.0
    c = u - (d + 1.0)
    f = 0.5 * d
    s = f / (2.0 + f)
    z = s * s
    R = lg[6]
    for g in lg[5::-1]:
        R = g + z * R
    R = z * R
    hfsq = 0.5 * f * f
    return ln2_hi - ((hfsq - (s * (hfsq + R) + (ln2_lo + (half * c) * (1.0 - f)))) - f)


def _log1p_unhalved(z):
    """(wrong, right) log1p(e^-|z|) by the two models where e^-|z| is in nn_log1p_unit's
    halved range (sqrt2 - 1, 1/2), NaN elsewhere."""
    u = np.exp(-np.abs(np.asarray(z, dtype=np.float64)))
    inside = (u > _paths.REAL_PATHS["NN_LOG1P_SPLIT"][0]) & (u < 0.5)
    u = np.where(inside, u, np.nan)
    return _log1p_unit_model(u, 1.0), _log1p_unit_model(u, 0.5)


def test_the_log1p_split_pool_is_softplus_rounded_once_on_u_past_sqrt2_minus_1():
    from verify.evidence import ulp
    x = paths.log1p_split_pool(0)
    assert x.size == 64 and np.all((x > -0.8814) & (x < -0.6931))
    u = np.exp(x)
    assert np.all(u.view(np.uint64) & np.uint64(1) == 1)      # u - 1 is inexact
    assert np.array_equal(F.softplus(x), _log1p_unit_model(u))
    with mpmath.workdps(50):
        for xi, ui in zip(x, u):
            assert abs(mpmath.exp(mpmath.mpf(xi)) - ui) <= 0.05 * ulp(ui, np.float64)
            sp = mpmath.log1p(mpmath.exp(mpmath.mpf(xi)))
            assert abs(mpmath.mpf(float(F.softplus(np.array([xi]))[0])) - sp) \
                <= 0.14 * ulp(sp, np.float64)


def test_a_log1p_that_adds_its_split_correction_twice_fails(monkeypatch):
    # vmath.h's log1p adding the rounding error of u - 1 as c (1 - f), not c/2 (1 - f)
    # (held-out fault held-vmath-log1p-split-correction-unhalved): +-0.635 ulp of log1p
    # where u in (sqrt2 - 1, 1/2) has its last bit set, inside the random arguments' 2 ulp
    # of slack; the log1p_split cases of each float64 entry point that takes it fail
    real_sp, real_fwd = F.softplus, F.dense_forward
    real_loss, real_fused = F.logistic_loss, F.loss_and_grad
    real_epoch = paths._Runner._epoch_call

    def sp_wrong(z, out):
        z = np.asarray(z)
        bad, _ = _log1p_unhalved(z)
        return np.where(np.isnan(bad) | (z.dtype != np.float64), out,
                        np.maximum(z, 0.0) + bad).astype(out.dtype)

    def loss_shift(z, y):
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        bad, good = _log1p_unhalved(z)
        return np.nansum(bad - good) / z.size if np.asarray(y).dtype != np.float32 else 0.0

    monkeypatch.setattr(F, "softplus", lambda x, **kw: sp_wrong(x, real_sp(x, **kw)))
    monkeypatch.setattr(F, "dense_forward", lambda X, W, b, act="identity", *a, **kw: (
        sp_wrong(np.asarray(X) @ np.asarray(W) + np.asarray(b), real_fwd(X, W, b, act, *a, **kw))
        if act == "softplus" else real_fwd(X, W, b, act, *a, **kw)))
    monkeypatch.setattr(F, "logistic_loss", lambda z, y, **kw: real_loss(z, y, **kw) + (
        loss_shift(z, y) if np.asarray(z).dtype == np.float64 else 0.0))

    def fused(name, z, y, **kw):
        loss, grad = real_fused(name, z, y, **kw)
        if name == "logistic_loss" and np.asarray(z).dtype == np.float64:
            loss = loss + loss_shift(z, y)
        return loss, grad

    def epoch(api, name, Z, Y, mg, dt, weight=None):
        loss, db = real_epoch(api, name, Z, Y, mg, dt, weight)
        if name == "logistic_loss" and dt == np.float64 and weight is None:
            loss = loss + loss_shift(Z, Y)
        return loss, db
    monkeypatch.setattr(F, "loss_and_grad", fused)
    monkeypatch.setattr(paths._Runner, "_epoch_call", staticmethod(epoch))
    items = paths.run_paths(Context(quick=True, only=["softplus", "logistic_loss",
                                                      "dense_forward"]))
    bad = {(r["kernel"], r["output"], r["path"]) for it in items for r in it["paths"]
           if not r["passed"]}
    assert all(d == "float64" for it in items for r in it["paths"] if not r["passed"]
               for d in [r["dtype"]])
    want = {("softplus", "forward", label) for label, _ in paths.LOG1P_SPLIT_SIZES}
    want |= {("logistic_loss", o, f"each value alone, {paths.LOG1P_SPLIT_PATH}")
             for o in ("loss (each row alone)", "loss_and_grad loss (each row alone)",
                       "epoch loss_grad loss (each row alone)")}
    want |= {("dense_forward", "H (softplus)",
              f"{r} x 61, X = ones, W: {paths.LOG1P_SPLIT_PATH}")
             for r in (1, 5, _paths.INT_PATHS["PAR_MIN_ELEMS"][0] // 61 + 1)}
    assert len(want) == 9 and bad == want, sorted(bad ^ want)


# ---- several steps with the rows read in place; Adam's chunked update with L2 -----------
def test_the_rows_steps_operands_are_exact_in_float32():
    # every score, partial sum, gradient and update a multiple of 1 / scale below 2^23 /
    # scale, so that the epoch's steps are exact in float32 (float64 a fortiori), and the
    # plain-SGD epoch runs the padded copy's steps (PADDED_MIN_STEPS and more)
    min_steps = _paths.path_value("PADDED_MIN_STEPS")
    cases = paths.plan()["epoch_rows_steps"]
    assert {rule for label, (N, B, i, o, rule), key in cases} == {"sgd", "momentum"}
    for label, (N, B, i, o, rule), key in cases:
        assert B & (B - 1) == 0 and N % B == 0 and N // B >= 2
        assert rule == "momentum" or N // B >= min_steps
        assert (o * 4) % 64 and (o * 8) % 64          # rows never whole cache lines
        for seed in range(3):
            X, W, b, T, We, be, scale = paths.rows_steps_operands((N, B, i, o), rule,
                                                                 "float32", seed)
            assert np.array_equal(T.astype(np.float64) * scale,
                                  np.round(T.astype(np.float64) * scale))
            assert abs(We).max() < 2 ** 23 and abs(be).max() < 2 ** 23


def _rows_steps_model(real, slip):
    """squared_error_epoch under a NumPy model of one of two slips on the rows-in-place
    epochs (a one-layer network, its rows in ``order``, batches of ``batch``):
    "copy back" (held-train-padded-copy-back-last-row): a plain-SGD call of
    PADDED_MIN_STEPS steps and more returns W_0's padded copy one row short, so the last
    row keeps its value from before the call; "stale" (held-train-rows-grad-beta-stale):
    under momentum the in-place X_b^T dZ keeps beta 1, so the second step's gradient adds
    the first's (modelled for two steps: W moves by lr g_1 more)."""
    min_steps = _paths.path_value("PADDED_MIN_STEPS")

    def wrong(api, kinds, Ws, bs, X, T, batch, optimizer, order, *a, **kw):
        W0, b0 = Ws[0].copy(), bs[0].copy()
        out = real(api, kinds, Ws, bs, X, T, batch, optimizer, order, *a, **kw)
        cfg = optimizer.config()
        steps = -(-len(order) // batch)
        if len(Ws) != 1 or batch < 2 or kw.get("l2", 0.0) or cfg["weight_decay"]:
            return out
        if slip == "copy back" and cfg["momentum"] == 0 and steps >= min_steps:
            Ws[0][-1] = W0[-1]
        if slip == "stale" and cfg.get("momentum") and steps == 2:
            rows = order[:batch]
            dz = (X[rows] @ W0 + b0 - T[rows]) / batch
            Ws[0] -= cfg["lr"] * (X[rows].T @ dz)
        return out
    return wrong


@pytest.mark.parametrize("slip, failing", [("copy back", "plain SGD"),
                                           ("stale", "momentum")])
def test_a_slip_of_the_rows_in_place_steps_fails(monkeypatch, slip, failing):
    bad = _failing_run_epoch_cases(monkeypatch, lambda real: _rows_steps_model(real, slip))
    assert {(r["output"].split()[0], r["dtype"]) for r in bad} == {
        ("W", "float32"), ("W", "float64")}
    assert all(failing in r["path"] and r["threshold"] == "rows in place, steps in a row"
               for r in bad)


def _adam_chunk_stride(real):
    """squared_error_epoch under a NumPy model of held-optim-sq-f32-chunk-slot-stride at
    Adam's first step from zero states: optim_update_sq's float32 chunks pass the chunk's
    length hi - lo as the slot stride, so past the first chunk of 512 values element i
    reads its first moment where the chunk before wrote element i - 512's second moment
    and its second moment where it wrote element i - 424's."""
    def wrong(api, kinds, Ws, bs, X, T, batch, optimizer, order, *a, l2=0.0, **kw):
        W0 = Ws[0].copy()
        out = real(api, kinds, Ws, bs, X, T, batch, optimizer, order, *a, l2=l2, **kw)
        cfg = optimizer.config()
        n = W0.size
        if (l2 and W0.dtype == np.float32 and n > 512
                and type(optimizer).__name__ in ("Adam", "AdamW")):
            b1, b2 = cfg["beta1"], cfg["beta2"]
            g = l2 * W0.astype(np.float64).reshape(-1)
            w = W0.astype(np.float64).reshape(-1)
            i = np.arange(512, n)
            m = b1 * (1 - b2) * g[i - 512] ** 2 + (1 - b1) * g[i]
            v = b2 * (1 - b2) * g[i - 424] ** 2 + (1 - b2) * g[i] ** 2
            step = cfg["lr"] * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + cfg["eps"])
            Ws[0].reshape(-1)[i] = (w[i] - step).astype(np.float32)
        return out
    return wrong


def test_adams_chunked_update_with_a_wrong_slot_stride_fails(monkeypatch):
    bad = _failing_run_epoch_cases(monkeypatch, _adam_chunk_stride)
    assert [(r["output"].split()[0], r["dtype"], r["path"].split(":")[0]) for r in bad] == [
        ("W", "float32", "B=13, 30 -> 20 identity")]


def test_the_adam_l2_cases_pass_and_hold_w_to_a_few_ulps():
    items = paths.run_paths(Context(quick=True, only=["run_epoch"]))
    rows = [r for it in items for r in it["paths"]
            if r["threshold"] == "optim_update_sq chunks"]
    assert len(rows) == 8 and all(r["passed"] for r in rows)
