"""verify/optim.py: every optimizer configuration's compiled step matches its symbolic rule,
and a wrong rule is caught."""
import pytest

sp = pytest.importorskip("sympy")
pytest.importorskip("mpmath")

from verify import optim  # noqa: E402


@pytest.mark.parametrize("cls_name,kw", optim.CONFIGS,
                         ids=[optim._label(c, k) for c, k in optim.CONFIGS])
def test_optimizer_step_matches_its_symbolic_rule(cls_name, kw):
    r = optim.check_optimizer(cls_name, kw)
    assert r is not None and r["passed"], r and r["first_failure"]


def test_a_wrong_optimizer_rule_is_caught(monkeypatch):
    def adam_without_bias_correction(h):
        o = optim
        return [(o.m, o.beta1 * o.m + (1 - o.beta1) * o.g),
                (o.v, o.beta2 * o.v + (1 - o.beta2) * o.g ** 2),
                (o.w, o.w - o.lr * o.m / (sp.sqrt(o.v) + o.eps))]
    monkeypatch.setitem(optim.RULES, "Adam", (adam_without_bias_correction, "wrong"))
    r = optim.check_optimizer("Adam", dict(lr=0.01))
    assert not r["passed"] and "step 1" in r["first_failure"]
