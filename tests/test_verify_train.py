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
