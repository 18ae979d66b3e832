"""verify/train.py: the proof of one training step holds, the compiled epoch matches the
exact replay for every optimizer, activation and loss, and a slipped factor in the compiled
loop (simulated on its results, no rebuild) fails ``python -m verify --quick`` naming the
item."""
import json
import types

import numpy as np
import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")

from verify import train as T  # noqa: E402
from verify.registry import ACTIVATIONS  # noqa: E402
from verify.run import Context  # noqa: E402

needs_epoch = pytest.mark.skipif(not hasattr(T.compiled_api(), "run_epoch"),
                                 reason="nnlib._kernels.train has no run_epoch")


def test_the_step_of_the_compiled_loop_is_proved():
    pr = T.prove_epoch()
    assert pr.status == "proved", [(s.claim, s.status) for s in pr.steps]
    assert len(pr.steps) >= 9


@pytest.fixture(scope="module")
def quick_items():
    return T.run_train(Context(quick=True))


@needs_epoch
def test_quick_section_passes_and_covers_every_optimizer_activation_and_loss(quick_items):
    for it in quick_items:
        assert it["passed"], (it["name"], [r for r in it.get("rows", [])
                                           if r[0] == "first failure"])
    names = [it["name"] for it in quick_items]
    assert names[0] == "epoch proof"
    text = " ".join(k for it in quick_items for k, _ in it.get("rows", []))
    for cls_name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NotesMomentum",
                     "NotesAdaGrad", "SklearnSGD", "SklearnAdam"):
        assert any(n.startswith(f"epoch {cls_name}(") for n in names), cls_name
    for a in ACTIVATIONS:
        assert f"{a.name} + " in text, a.name
    for loss in T.LOSSES:
        assert f" + {loss}" in text, loss
    for it in quick_items[1:]:
        assert set(it["stats"]) == {"float64", "float32"}


def _slipped_api(fault):
    """The compiled module with run_epoch wrapped so that plain SGD's fused step comes out
    as it would with a slipped factor in train.pyx: ``fault`` "l2" doubles the L2 factor,
    W <- (1 - lr (2 l2_eff + wd)) W - lr H^T dZ; "bias" divides the bias step by B,
    b <- (1 - lr wd) b - lr db / B, on each array whose own config is plain SGD (one
    config for all, or one per array). One step per call of the real run_epoch."""
    real = T.compiled_api()

    def plain(cfg):
        return cfg["kind"] == 0 and cfg["momentum"] == 0

    def run_epoch(setup, order, step0, max_steps=-1, check_updates=False):
        cfgs = setup.optimizer
        if isinstance(cfgs, dict):
            cfgs = [cfgs] * (2 * len(setup.weights))
        if not any(map(plain, cfgs)):
            return real.run_epoch(setup, order, step0, max_steps, check_updates)
        total, seen, steps, start = 0.0, 0, 0, 0
        while start < len(order) and (max_steps < 0 or steps < max_steps):
            B = min(setup.batch_size, len(order) - start)
            W0 = [W.copy() for W in setup.weights]
            b0 = [b.copy() for b in setup.biases]
            r = real.run_epoch(setup, order[start:], step0 + steps, max_steps=1)
            if r[3] != 0:
                return total, seen, steps, r[3], r[4]
            l2_eff = setup.l2 / B if setup.l2_per_batch else setup.l2
            for l, (W, w0, b, bb0) in enumerate(zip(setup.weights, W0, setup.biases, b0)):
                cW, cb = cfgs[2 * l], cfgs[2 * l + 1]
                if fault == "l2" and plain(cW):
                    W -= (cW["lr"] * l2_eff * w0).astype(W.dtype)
                elif fault == "bias" and plain(cb):
                    kept = (1 - cb["lr"] * cb["weight_decay"]) * bb0
                    b[...] = kept - (kept - b) / B
            total, seen, steps, start = total + r[0], seen + r[1], steps + 1, start + B
        return total, seen, steps, 0, True
    names = {k: getattr(real, k) for k in dir(real) if not k.startswith("__")}
    return types.SimpleNamespace(**dict(names, run_epoch=run_epoch))


@needs_epoch
@pytest.mark.parametrize("fault", ["l2", "bias"], ids=["l2-factor-doubled", "bias-step-over-B"])
def test_a_slipped_factor_in_the_fused_sgd_step_fails_verify_quick(fault, monkeypatch,
                                                                    tmp_path):
    from verify.__main__ import main
    slipped = _slipped_api(fault)
    monkeypatch.setattr(T, "compiled_api", lambda: slipped)
    rc = main(["--out", str(tmp_path), "--quick", "--only", "train"])
    assert rc == 1
    items = json.loads((tmp_path / "report.json").read_text())["items"]
    failed = [it["name"] for it in items if not it["passed"]]
    # the bias step is fused wherever a bias's own config is plain SGD: also in the
    # momentum configs' parameter groups (verify.train.groups_of), whose b1 has none
    sgd = [it["name"] for it in items if it["name"].startswith("epoch SGD(")]
    assert failed == (["epoch SGD(lr=0.1)"] if fault == "l2" else sgd)
    md = (tmp_path / "report.md").read_text()
    assert "FAIL" in md and "first failure" in md


@needs_epoch
def test_the_replay_is_independent_of_the_compiled_rounding():
    """Measured errors are a few eps, not 0: the replay is not a copy of the kernel."""
    label, cls_name, cfg = T._configs()[6]                   # Adam(lr=0.01)
    specs = T._specs(6, cls_name, cfg, quick=True)
    assert [s["cfg"]["weight_decay"] for s in specs] == [T.WD, 0.0]   # both L2 paths
    for spec in specs:
        r = T.check_epoch(spec)
        assert r["passed"], r["first_failure"]
        for dn, st in r["stats"].items():
            assert 0 < st["max_ulps"] and st["max_normwise_eps"] < 8, (dn, st)


def test_a_kink_on_the_exact_trajectory_is_refused():
    relu = next(a for a in ACTIVATIONS if a.name == "relu")
    value, _ = T._activation(relu, 0.0)
    assert value(np.float64(2.0)) == 2.0
    with pytest.raises(T._Boundary):
        value(1e-5)


# --- the replay's arithmetic on _mpf_ tuples is the mpf arithmetic, bit for bit ----------

class _MpfReplay:
    """The replay written with mpf operators, fdot and fsum throughout (mpf arrays, no
    memo, a piece picked per call, the rule's arguments from a dict): the statement the
    tuple arithmetic, the memo, the shared picks and the tuple rules of ``T.Replay`` must
    reproduce bit for bit. It shares only ``run`` (the loop over steps) with ``T.Replay``."""

    def __init__(self, spec, arrays, dps):
        import mpmath
        self.spec, self.dps = spec, dps
        with mpmath.workdps(dps):
            mp = lambda a: [mpmath.mpf(float(v)) for v in np.ravel(a)]  # noqa: E731
            self.X = [mp(r) for r in arrays["X"]]
            self.W = [mp(W) for W in arrays["W"]]
            self.b = [mp(b) for b in arrays["b"]]
            self.st = [[mp(s)] for s in arrays["states"]]
            self.hyper = [[mpmath.mpf(float(c[f])) for _, f in T._HYPER]
                          for c in T.array_configs(spec)]
        self.y_label, self.y_target = arrays["y_label"], arrays["y_target"]
        self.sizes = spec["sizes"]
        self.slots = [T._slot_names(spec["cls_name"], c) for c in T.array_configs(spec)]
        self.masks = None
        self.rule = [T._rule(spec["cls_name"], c) for c in T.array_configs(spec)]
        self.mp_acts = [T._activation(a, p) for a, p in zip(spec["acts"], spec["aparams"])]

    def _drop(self, p, rows):
        if not self.masks or p not in self.masks:
            return rows
        return [[v * f for v, f in zip(row, fr)] for row, fr in zip(rows, self.masks[p])]

    def _target(self, r):
        if self.spec["loss"] in ("squared_error", "logistic_loss"):
            return list(self.y_target[r])
        return int(self.y_label[r])

    def step(self, rows, t):
        import mpmath
        sp_ = self.spec
        B = len(rows)
        l2e = mpmath.mpf(sp_["l2"]) / (B if sp_["l2_per_batch"] else 1)
        if "dropout" in sp_:
            from verify.dropout import epoch_masks
            self.masks = epoch_masks(sp_, B, t)
        data, pen, grads = self.objective(rows, l2e)
        self.masks = None
        reported = mpmath.mpf(sp_["loss_scale"]) * data + l2e * pen
        for l in range(len(self.W)):
            for p, (vals, g) in enumerate(((self.W[l], grads[l][0]), (self.b[l], grads[l][1]))):
                self._conditioning(2 * l + p, vals, g, self.terms[l][p])
                self._update(2 * l + p, vals, g, t)
        return reported * B

    def loss_grad(self):
        import mpmath
        with mpmath.workdps(self.dps):
            l2 = mpmath.mpf(self.spec["l2"])
            data, pen, grads = self.objective(list(range(len(self.X))), l2)
            out = {}
            for l, (dW, db) in enumerate(grads):
                out[f"dW{l + 1}"], out[f"db{l + 1}"] = dW, db
            return data + l2 * pen, out

    run = T.Replay.run               # the steps' loop (it calls this class's step)

    def values(self):
        out = {}
        for l in range(len(self.W)):
            out[f"W{l + 1}"], out[f"b{l + 1}"] = list(self.W[l]), list(self.b[l])
            for p, pn in enumerate((f"W{l + 1}", f"b{l + 1}")):
                n = len(self.W[l] if p == 0 else self.b[l])
                for k, name in enumerate(self.slots[2 * l + p]):
                    out[f"state {name} of {pn}"] = self.st[2 * l + p][0][k * n:(k + 1) * n]
        return out

    def objective(self, rows, l2e, terms=True):         # the terms always
        import mpmath
        fdot, fsum = mpmath.fdot, mpmath.fsum
        sp_, sz, L = self.spec, self.sizes, len(self.W)
        B = len(rows)
        H = [self._drop(0, [self.X[r] for r in rows])]
        Z = []
        for l in range(L):
            n, m = sz[l], sz[l + 1]
            Zl = [[fdot((h[k], self.W[l][k * m + j]) for k in range(n)) + self.b[l][j]
                   for j in range(m)] for h in H[-1]]
            Z.append(Zl)
            H.append(self._drop(l + 1, [[self.mp_acts[l][0](v) for v in row] for row in Zl]))
        data, dZ = 0, []
        for i, r in enumerate(rows):
            val, grad = T._loss_piece(sp_["loss"], sz[L], H[L][i], self._target(r),
                                      sp_["margin"])
            data += val
            dZ.append([mpmath.mpf(gv) / B for gv in grad])
        grads, self.terms = [None] * L, [None] * L
        aZ = [[abs(v) for v in row] for row in dZ]
        for l in range(L - 1, -1, -1):
            n, m = sz[l], sz[l + 1]
            dZ, aZ = self._drop(l + 1, dZ), self._drop(l + 1, aZ)
            d = [[self.mp_acts[l][1](Z[l][i][j]) for j in range(m)] for i in range(B)]
            dZ = [[dZ[i][j] * d[i][j] for j in range(m)] for i in range(B)]
            aZ = [[aZ[i][j] * abs(d[i][j]) for j in range(m)] for i in range(B)]
            W = self.W[l]
            dW = [fdot((H[l][i][k], dZ[i][j]) for i in range(B)) + l2e * W[k * m + j]
                  for k in range(n) for j in range(m)]
            db = [fsum(dZ[i][j] for i in range(B)) for j in range(m)]
            grads[l] = (dW, db)
            self.terms[l] = ([fdot((abs(H[l][i][k]), aZ[i][j]) for i in range(B))
                              + abs(l2e * W[k * m + j]) for k in range(n) for j in range(m)],
                             [fsum(aZ[i][j] for i in range(B)) for j in range(m)])
            dZ = [[fdot((dZ[i][j], W[k * m + j]) for j in range(m)) for k in range(n)]
                  for i in range(B)]
            aZ = [[fdot((aZ[i][j], abs(W[k * m + j])) for j in range(m)) for k in range(n)]
                  for i in range(B)]
        return data / B, sum(w * w for W in self.W for w in W) / 2, grads

    def _conditioning(self, a, vals, grads, terms):
        if self.spec["cls_name"] not in T.NORMALIZED:
            return
        cfg = T.array_configs(self.spec)[a]
        wd = 0 if self.spec["cls_name"] == "AdamW" else cfg["weight_decay"]
        for g, w, tm in zip(grads, vals, terms):
            ge = abs(g + wd * w)
            if ge != 0 and ge * T.COND_MAX < tm + abs(wd * w):
                raise T._Boundary("a normalized step of a cancelling gradient")

    def _update(self, a, vals, grads, t):
        import mpmath
        n = len(vals)
        flat, slots, rule, hyper = self.st[a][0], self.slots[a], self.rule[a], self.hyper[a]
        for i in range(n):
            env = dict.fromkeys(T._STATE, mpmath.mpf(0))
            for k, name in enumerate(slots):
                env[name] = flat[k * n + i]
            env["w"], env["g"] = vals[i], grads[i]
            for lhs, fn in rule:
                env[lhs] = fn(env["w"], env["g"], t, *[env[s] for s in T._STATE], *hyper)
            vals[i] = env["w"]
            for k, name in enumerate(slots):
                flat[k * n + i] = env[name]


class _NoMemo(dict):
    """An exp memo that remembers nothing."""

    def __setitem__(self, key, value):
        pass


def _replay_bits(cls, spec, d, st0):
    """_replay_now's values with the replay class ``cls``, each mpf as its _mpf_ tuple
    (or the refusal); the mpf replay without the exp memo."""
    old, memo = T.Replay, T._EXP_MEMO
    T.Replay = cls
    if cls is _MpfReplay:
        T._EXP_MEMO = _NoMemo()
    try:
        vals, s0, s1, s2 = T._replay_now(spec, d, st0)
    except T._Boundary as exc:
        return "boundary", str(exc)
    finally:
        T.Replay, T._EXP_MEMO = old, memo
    return ({k: [v._mpf_ for v in vs] for k, vs in vals.items()},
            [s._mpf_ for s in (s0, s1, s2)])


def _replay_cases():
    """Specs of every activation, every loss, plain, momentum, normalized (the
    conditioning test) and parameter-group rules, and dropouts."""
    from verify import dropout as D
    cases = []
    for index, (label, cls_name, cfg) in enumerate(T._configs()):
        if index in (0, 3, 7, 13):      # SGD, Adagrad, Adam amsgrad, SklearnAdam
            cases += T._specs(index, cls_name, cfg, quick=index != 0)
    return cases + D._epoch_specs(quick=True)[:3]


@needs_epoch
def test_the_replay_on_mpf_tuples_is_the_mpf_replay_bit_for_bit():
    api = T.compiled_api()
    seen = {"boundary": 0, "values": 0}
    for spec in _replay_cases():
        for attempt in range(2):
            d = T._data(spec, np.random.default_rng([0, spec["index"], attempt]))
            st0 = [np.zeros(0, np.float64) if s is None else s for s in T._initial_states(
                api, spec, [p for W, b in zip(d["W"], d["b"]) for p in (W, b)], np.float64)]
            got, want = _replay_bits(T.Replay, spec, d, st0), _replay_bits(_MpfReplay, spec,
                                                                           d, st0)
            assert got == want, (T._spec_text(spec), attempt)
            seen["boundary" if got[0] == "boundary" else "values"] += 1
    assert seen["values"] >= 20 and seen["boundary"] >= 1, seen


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.kinks], ids=lambda a: a.name)
def test_the_replays_piece_pick_decides_as_the_mpf_comparisons(act):
    import mpmath
    value, _, _, pick = T._activation_entry(act, next(iter(act.evidence_params.values()), 0.0))
    for dps in T.DPS:
        with mpmath.workdps(dps):
            b = mpmath.mpf(T.BOUNDARY)
            tiny = mpmath.mpf(2) ** (-3 * dps)
            for k in act.kinks:
                for z in (k + b, k - b, k + b + tiny, k - b - tiny, k + b - tiny, k, k + 1,
                          k - 1, k + tiny, mpmath.mpf(-1e300), mpmath.mpf(1e300)):
                    z = mpmath.mpf(z)
                    try:
                        want = value(z)
                    except T._Boundary:
                        with pytest.raises(T._Boundary):
                            pick(z)
                        continue
                    assert mpmath.mpf(pick(z)[2](z))._mpf_ == mpmath.mpf(want)._mpf_, z


def test_measure_with_difference_is_measure_and_its_difference():
    import mpmath
    from verify.evidence import measure, measure_with_difference
    rng = np.random.default_rng(3)
    for dt in (np.float64, np.float32):
        for c in list(rng.standard_normal(20).astype(dt)) + [dt(0), dt(np.inf), dt(np.nan)]:
            for e in (mpmath.mpf(float(c)) * (1 + mpmath.mpf(10) ** -9) / 3, mpmath.mpf(0),
                      mpmath.mpf(float(c)), mpmath.mpf(1e300) ** 2):
                ms, d = measure_with_difference(c, e, dt)
                ref = measure(c, e, dt)
                assert (ms.ulps, ms.rel, ms.abs_eps) == (ref.ulps, ref.rel, ref.abs_eps) or (
                    np.isnan(ms.ulps) and np.isnan(ref.ulps))
                if d is not None:
                    assert d == abs(mpmath.mpf(float(c)) - e)._mpf_


@pytest.mark.parametrize("cls_name", ["Adagrad", "AdamW"])
def test_the_replays_conditioning_refuses_as_the_mpf_comparisons(cls_name):
    """Gradients on both sides of COND_MAX (and exact zeros): the tuple test refuses
    exactly where the mpf one does."""
    import mpmath
    label, _, cfg = next(c for c in T._configs() if c[1] == cls_name)
    spec = T._specs(0, cls_name, cfg, quick=True)[0]
    fast = object.__new__(T.Replay)
    slow = object.__new__(_MpfReplay)
    fast.spec = slow.spec = spec
    wd = 0 if cls_name == "AdamW" else T.array_configs(spec)[0]["weight_decay"]
    with mpmath.workdps(50):
        w = mpmath.mpf(0.75)
        for tm in (mpmath.mpf(1), mpmath.mpf(3) / 7):
            edge = (tm + abs(wd * w)) / T.COND_MAX
            cases = [0, edge, edge * (1 + mpmath.mpf(10) ** -40), edge * (1 - mpmath.mpf(10)
                                                                         ** -40), 2 * edge]
            for ge in cases:
                for sign in (1, -1):
                    g = sign * ge - wd * w
                    outcome = []
                    g = mpmath.mpf(g)
                    for rp, args in ((fast, ([w._mpf_], [g._mpf_], [tm._mpf_])),
                                     (slow, ([w], [g], [tm]))):
                        try:
                            rp._conditioning(0, *args)
                            outcome.append("ok")
                        except T._Boundary:
                            outcome.append("refused")
                    assert outcome[0] == outcome[1], (ge, sign, outcome)


def test_the_replays_exp_memo_is_exp_at_each_precision():
    import mpmath
    from verify.evidence import mp_exp
    xs = [mpmath.mpf(v) for v in (0.5, -0.5, 3.25, 700.0, -1e-3)]
    for _ in range(2):                  # the second pass reads the memo
        for dps in (50, 100, 15, 50):
            with mpmath.workdps(dps):
                for x in xs:
                    assert T._memo_exp(x)._mpf_ == mp_exp(x)._mpf_, (dps, x)
    with mpmath.workdps(50):
        assert T._memo_exp(1) == mp_exp(1)                      # not an mpf: not kept


def test_the_hoisted_rules_are_the_lambdified_rules_bit_for_bit():
    """Every assignment of every configuration (and of its parameter groups), split by
    ``T._hoist``, gives the lambdified assignment's bits at both precisions and several
    steps; the scalar parts are taken out (else the split would be pointless)."""
    import mpmath
    rng = np.random.default_rng(5)
    split = 0
    for label, cls_name, cfg in T._configs():
        wd_cfg = dict(cfg, weight_decay=cfg["weight_decay"] or T.WD)
        for c in [cfg, wd_cfg] + T.groups_of(cls_name, wd_cfg):
            for (lhs, fn), (lhs2, prep, body) in zip(T._rule(cls_name, c),
                                                     T._rule_hoisted(cls_name, c)):
                assert lhs == lhs2
                split += body is not fn
                for dps in T.DPS:
                    with mpmath.workdps(dps):
                        hyper = [mpmath.mpf(float(c[f])) for _, f in T._HYPER]
                        for t in (1, 2, 4):
                            w, g, a = (mpmath.mpf(float(v)) / 3 for v in rng.standard_normal(3))
                            states = [mpmath.mpf(float(v)) / 7 + 1 for v in rng.random(7)]
                            args = [w, g, t] + states + hyper
                            args[3 + T._STATE.index("a")] = a / 5
                            want = fn(*args)
                            zero = mpmath.mpf(0)       # prep reads t and hyper alone
                            pre = prep(zero, zero, t, *[zero] * len(states), *hyper)
                            got = body(*args, *pre)
                            assert type(got) is type(want) and mpmath.mpf(got)._mpf_ == \
                                mpmath.mpf(want)._mpf_, (label, lhs, dps, t)
    assert split >= 20, split


def test_the_tuple_rules_are_the_mpf_rules_bit_for_bit():
    """Every configuration's rule (and its parameter groups'), as ``T._tuple_step`` makes
    it, gives the values and states of the lambdified assignments called in mpf
    (``_MpfReplay._update``) at both precisions and several steps, on arrays of mixed
    signs; every rule is translated (else the replay would run its mpf code)."""
    import mpmath
    rng = np.random.default_rng(7)
    for label, cls_name, cfg in T._configs():
        wd_cfg = dict(cfg, weight_decay=cfg["weight_decay"] or T.WD)
        for c in [cfg, wd_cfg] + T.groups_of(cls_name, wd_cfg):
            spec = {"cls_name": cls_name, "cfg": c, "sizes": [1, 5]}
            slots = T._slot_names(cls_name, c)
            assert T._tuple_step(cls_name, c) is not None, (label, c)
            for dps in T.DPS:
                with mpmath.workdps(dps):
                    fast, slow = object.__new__(T.Replay), object.__new__(_MpfReplay)
                    fast.spec = slow.spec = spec
                    slow.rule = [T._rule(cls_name, c)]
                    fast.hoisted = [T._rule_hoisted(cls_name, c)]
                    fast.tuple_steps = [T._tuple_step(cls_name, c)]
                    fast.hyper = slow.hyper = [[mpmath.mpf(float(c[f])) for _, f in T._HYPER]]
                    fast.hyper_t = [[h._mpf_ for h in fast.hyper[0]]]
                    fast.slots = slow.slots = [slots]
                    n = 5
                    w = [mpmath.mpf(float(v)) / 3 for v in rng.standard_normal(n)]
                    # positive states, s above a^2 (RMSprop's centered root)
                    st = [mpmath.mpf(float(v)) / 7 + mpmath.mpf(1) / 2
                          for v in rng.random(n * len(slots))]
                    slow.st, fast.st = [[list(st)]], [[[v._mpf_ for v in st]]]
                    wf = [v._mpf_ for v in w]
                    for t in (1, 2, 4):
                        g = [mpmath.mpf(float(v)) / 5 for v in rng.standard_normal(n)]
                        slow._update(0, w, g, t)
                        fast._update(0, wf, [v._mpf_ for v in g], t)
                        assert wf == [v._mpf_ for v in w], (label, c, dps, t)
                        assert fast.st[0][0] == [v._mpf_ for v in slow.st[0][0]], (label, dps)


def test_the_replays_dot_is_mpf_sum_of_exact_products():
    """``T._dot`` is mpf_sum of the exact mpf_mul products bit for bit: zeros, infinities
    and NaN, mantissas of 1 to 300 bits, exponents close and more than 2 prec apart (the
    terms mpf_sum drops), every rounding, at the replay's precisions and unrounded."""
    import random
    import mpmath
    L = mpmath.libmp
    rng = random.Random(1)

    def value():
        k = rng.random()
        if k < 0.05:
            return L.fzero
        if k < 0.07:
            return rng.choice([L.finf, L.fninf, L.fnan])
        man = (rng.getrandbits(rng.choice([1, 5, 53, 120, 300])) | 1) * rng.choice([1, -1])
        return L.from_man_exp(man, rng.choice([-60, -10, 0, 5, rng.randint(-2000, 2000)]))
    for prec in [L.dps_to_prec(d) for d in T.DPS] + [53, 0]:
        for _ in range(4000):
            n = rng.randint(0, 6)
            xs, ys = [value() for _ in range(n)], [value() for _ in range(n)]
            for rnd in ("n", "d", "u", "f", "c"):
                assert T._dot(xs, ys, prec, rnd) == L.mpf_sum(
                    [L.mpf_mul(x, y) for x, y in zip(xs, ys)], prec, rnd), (xs, ys, prec)


def test_the_settling_check_is_the_mpf_comparison():
    """``T._unsettled`` decides as ``abs(a - b) > 10^-30 max(abs(a), 1)`` on mpf (at the
    default precision, where _replay_now compares): both sides of the threshold, |a|
    below, at and above 1, zeros, infinities and NaN."""
    import mpmath
    agree = mpmath.mpf(10) ** -30
    prec, rnd = mpmath.mp._prec_rounding
    seen = set()
    with mpmath.workdps(50):
        base = [mpmath.mpf(v) for v in (0, 1, -1, 0.5, -3.25, 7e5, 1e-40)] + [
            mpmath.mpf(1) / 3, mpmath.inf, -mpmath.inf, mpmath.nan]
        moves = [0, mpmath.mpf(10) ** -29, mpmath.mpf(10) ** -31, mpmath.mpf(10) ** -30,
                 -mpmath.mpf(10) ** -30 * (1 + mpmath.mpf(2) ** -60)]
        pairs = [(a, a + m * max(abs(a), 1) if mpmath.isfinite(a) else a + m)
                 for a in base for m in moves] + [(a, b) for a in base[:3] for b in base]
        # between 10^-30 and 10^-30 |a|: the side of 1 that |a| is on decides
        pairs += [(mpmath.mpf(v), mpmath.mpf(v) + mpmath.mpf(k) * agree)
                  for v, k in ((1.5, 1.2), (0.75, 0.9), (-1.5, 1.2), (0.75, 0.6))]
    for a, b in pairs:
        want = bool(abs(a - b) > agree * max(abs(a), 1))
        assert T._unsettled(a._mpf_, b._mpf_, agree._mpf_, prec, rnd) == want, (a, b)
        seen.add(want)
    assert seen == {True, False}


def test_the_activations_tuple_code_is_their_mpf_code_bit_for_bit():
    """Every piece of every activation (value and derivative) has tuple code
    (``T._tuple_fn``), and it gives the lambdified piece's bits at both precisions, on
    and off its piece (the code is a formula: the pick is separate)."""
    import mpmath
    for act in ACTIVATIONS:
        for aparam in {next(iter(act.evidence_params.values()), 0.0), 0.0}:
            entry = T._activation_entry(act, aparam)
            pieces = {id(p): p for z in (-2.5, -0.7, 0.5, 3.0) for p in [
                _pick_or_none(entry[3], z)] if p is not None}
            for p in pieces.values():
                assert p[4] is not None and p[5] is not None, act.name
                for dps in T.DPS:
                    with mpmath.workdps(dps):
                        prec, rnd = mpmath.mp._prec_rounding
                        for v in (-40.25, -2.5, -0.7, -1e-9, 0.0, 1e-9, 0.5, 3.0, 41.5):
                            z = mpmath.mpf(v) / 3
                            for tfn, fn in ((p[4], p[2]), (p[5], p[3])):
                                assert tfn(z._mpf_, prec, rnd) == T._raw(fn(z)), (act.name, v)


def _pick_or_none(pick, v):
    import mpmath
    with mpmath.workdps(50):
        try:
            return pick(mpmath.mpf(v))
        except T._Boundary:
            return None


def test_the_losses_tuple_code_is_their_mpf_code_bit_for_bit():
    """Every loss piece the replay lambdifies (every loss; sparsemax's supports, hinge's
    active and flat pieces) has tuple code (``T._tuple_loss``), and its value and
    gradient are the lambdified code's -- the same types, ints as ints, mpf bit for bit
    -- at both precisions on random logits."""
    import mpmath
    rng = np.random.default_rng(11)
    for dps in T.DPS:
        with mpmath.workdps(dps):
            for _ in range(12):
                for loss in T.LOSSES:
                    c = 1 if loss == "logistic_loss" else 3
                    zrow = [mpmath.mpf(float(v)) for v in rng.standard_normal(c) * 2]
                    label = (list(rng.standard_normal(c).astype(np.float32)) if loss ==
                             "squared_error" else [0.25] * c if loss == "logistic_loss"
                             else int(rng.integers(0, c)))
                    try:
                        T._loss_piece(loss, c, zrow, label, 1.0)
                    except T._Boundary:
                        continue
    pieces = [v for k, v in T._CACHE.items() if isinstance(k, tuple) and k[0] in T.LOSSES]
    assert len(pieces) >= 8 and {k[0] for k in T._CACHE if isinstance(k, tuple)} >= set(
        T.LOSSES)
    for f, d, tf in pieces:
        assert tf is not None
        n = f.__code__.co_argcount
        for dps in T.DPS:
            with mpmath.workdps(dps):
                prec, rnd = mpmath.mp._prec_rounding
                for _ in range(5):
                    args = [mpmath.mpf(float(v)) / 3 for v in rng.standard_normal(n)]
                    val, grad = tf([a._mpf_ for a in args], prec, rnd)
                    want_val, want_grad = f(*args), d(*args)
                    for got, want in zip([val] + grad, [want_val] + want_grad):
                        assert type(got) is type(want) and (
                            got._mpf_ == want._mpf_ if type(got) is not int else got == want)
