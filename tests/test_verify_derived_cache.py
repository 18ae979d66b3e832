"""verify.cache's derived values (exact references, certificates' items, exact replays): a
hit returns what the derivation returns, types and bits included, and a cached reference
never makes a wrong compiled result pass -- the compiled side runs every time."""
import math
import os

import numpy as np
import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")


@pytest.fixture
def cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_derived_values_come_back_as_they_were(cache_dir):
    import mpmath
    from verify import cache
    value = {"b": [(1, "x", None), -0.0, math.inf, 1e-310, True],
             "a": {"mpf": mpmath.mpf(1) / 3, "nested": ((2.5,), [])}}
    calls = []

    def compute():
        calls.append(1)
        return value
    assert cache.derived("t", ("k", 1), compute) is value
    got = cache.derived("t", ("k", 1), compute)
    assert len(calls) == 1
    assert list(got) == ["b", "a"] and list(got["a"]) == ["mpf", "nested"]
    assert got["b"][0] == (1, "x", None) and isinstance(got["b"][0], tuple)
    assert math.copysign(1, got["b"][1]) == -1 and got["b"][2:] == [math.inf, 1e-310, True]
    assert got["b"][4] is True
    assert got["a"]["mpf"]._mpf_ == value["a"]["mpf"]._mpf_
    assert got["a"]["nested"] == ((2.5,), [])
    with pytest.raises(TypeError):
        cache.derived("t", ("k", 2), lambda: {1: "not a string key"})

def test_an_entry_is_the_text_json_dump_writes(cache_dir):
    """store writes json.dumps' text at once: the bytes json.dump (which writes it chunk by
    chunk) writes, so entries stay what they were."""
    import io
    import json
    import random
    from verify import cache
    rng = random.Random(3)

    def value(depth=0):
        r = rng.random()
        if depth > 3 or r < 0.3:
            return rng.choice([rng.random() * 10.0 ** rng.randint(-300, 300), -0.0, 5e-324,
                               rng.randint(-10 ** 30, 10 ** 30), "\u00e9\n\"x", None, True,
                               math.inf, -math.inf, math.nan, 1.7976931348623157e308])
        if r < 0.6:
            return [value(depth + 1) for _ in range(rng.randint(0, 5))]
        return {f"k{i}\u2202": value(depth + 1) for i in range(rng.randint(0, 5))}
    for n in range(300):
        v = {"kind": "t", "value": value()}
        cache.store(f"k{n}", v)
        fh = io.StringIO()
        json.dump(v, fh)
        path = os.path.join(cache.cache_dir(), f"k{n}.json")
        with open(path, encoding="utf-8") as f:
            assert f.read() == fh.getvalue()



@pytest.mark.parametrize("which", ["forward", "vjp"])
def test_a_warm_cache_fails_a_wrong_elementwise_kernel(cache_dir, which):
    import sympy as sp
    from verify import kernels as K
    from verify.api import check_elementwise
    fwd, vjp = K.kernel("sigmoid"), K.kernel("sigmoid_vjp")
    if fwd is None or vjp is None:
        pytest.skip("nnlib is not built")
    z = sp.Symbol("z", real=True)
    expr = 1 / (1 + sp.exp(-z))
    good = check_elementwise(expr, z, fwd, vjp, n_random=30)
    assert good.passed and any(cache_dir.rglob("*.json"))
    again = check_elementwise(expr, z, fwd, vjp, n_random=30)        # warm
    assert again.passed and again.as_dict() == good.as_dict()
    slip = (lambda x: fwd(x) * x.dtype.type(1.001)) if which == "forward" else fwd
    slip_vjp = (lambda x, g: vjp(x, g) * x.dtype.type(1.001)) if which == "vjp" else vjp
    bad = check_elementwise(expr, z, slip, slip_vjp, n_random=30)
    assert not bad.passed and bad.first_failure.which == which


def test_a_warm_cache_fails_a_wrong_map(cache_dir):
    import sympy as sp
    from verify.api import check_map
    zs = sp.symbols("z0:3", real=True)
    S = sum(sp.exp(u) for u in zs)
    exprs = [sp.exp(u) / S for u in zs]

    def softmax(Z):
        e = np.exp(Z.astype(np.float64) - Z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(Z.dtype)

    def vjp(Z, G):
        p = softmax(Z).astype(np.float64)
        g = G.astype(np.float64)
        return (p * (g - (g * p).sum(axis=1, keepdims=True))).astype(Z.dtype)
    good = check_map(exprs, zs, softmax, vjp, n_random=8)
    again = check_map(exprs, zs, softmax, vjp, n_random=8)
    assert good.passed and again.as_dict() == good.as_dict()
    bad = check_map(exprs, zs, lambda Z: softmax(Z) * Z.dtype.type(1.001), vjp, n_random=8)
    assert not bad.passed


class _SlippedLossGrad:
    """The compiled training module with loss_grad's first weight gradient off by 1e-3."""
    def __init__(self, api):
        self._api = api

    def __getattr__(self, name):
        return getattr(self._api, name)

    def loss_grad(self, setup, dWs, dbs):
        out = self._api.loss_grad(setup, dWs, dbs)
        dWs[0] *= dWs[0].dtype.type(1.001)
        return out


def test_a_warm_cache_fails_a_wrong_training_epoch(cache_dir):
    from verify import train as T
    api = T.compiled_api()
    if api is None or not hasattr(api, "run_epoch"):
        pytest.skip("nnlib is not built")
    label, cls_name, cfg = T._configs()[0]
    spec = T._specs(0, cls_name, cfg, quick=True)[0]
    cold = T.check_epoch(spec, seed=0, api=api)
    n_entries = len(list(cache_dir.rglob("*.json")))
    warm = T.check_epoch(spec, seed=0, api=api)
    assert cold["passed"] and warm == cold and n_entries > 0
    assert len(list(cache_dir.rglob("*.json"))) == n_entries      # every replay a hit
    bad = T.check_epoch(spec, seed=0, api=_SlippedLossGrad(api))
    assert not bad["passed"] and "loss_grad dW1" in bad["first_failure"]


def test_a_cached_convexity_item_is_the_decided_one(cache_dir):
    from verify import convexity as C
    case = next(c for c in C._cases() if c["name"] == "sigmoid")
    case["n_chord"], case["n_sweep"] = 10, 5
    fresh = C.decide(dict(case))
    cold, warm = C.decided(dict(case)), C.decided(dict(case))
    for it in (fresh, cold, warm):
        it.pop("seconds")
    assert cold == fresh and warm == fresh
    assert isinstance(warm["_data"]["chord_witness"], dict)
    # the entry holds no time of the deciding call: two runs write the same bytes
    (entry,) = [p for p in cache_dir.rglob("*") if p.is_file()]
    assert '"seconds"' not in entry.read_text()


def test_a_users_function_is_evaluated_afresh_not_read_from_the_cache(cache_dir):
    # srepr names a Function subclass but not the numerical implementation lambdify
    # evaluates (_imp_): two such functions of one name would share a key, and a kernel
    # computing 2x passed against an oracle of 3x on a cache warmed by a 2x oracle
    # (review rev19).
    import sympy as sp
    from verify.api import check_elementwise
    x = sp.Symbol("x", real=True)

    def function(k):
        class F(sp.Function):
            _imp_ = staticmethod(lambda t: k * t)

            def fdiff(self, argindex=1):
                return sp.Integer(1)
        return F

    def check(k):
        return check_elementwise(function(k)(x), x, lambda a: (a * 2).astype(a.dtype),
                                 points=[0.5, 1.0, 1.5], dtypes=["float64"]).passed
    assert check(2)
    assert not check(3)
    assert check(2)
