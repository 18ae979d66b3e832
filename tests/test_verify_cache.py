"""verify's cache (verify.cache): its key follows verify's source; exact values come back
bit for bit and a damaged entry is a miss; the figures are not cached (drawn afresh: a
few milliseconds each)."""
import os

import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")


def test_figures_are_drawn_afresh_not_cached(monkeypatch, tmp_path):
    from verify.losses import run_losses
    from verify.plots import make_plots
    from verify.run import Context
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", str(tmp_path / "cache"))
    items = run_losses(Context(quick=True, only=["hinge_loss"]))
    before = [f for _, _, fs in os.walk(tmp_path / "cache") for f in fs]
    data = {"items": items, "quick": True}
    assert make_plots(data, str(tmp_path / "out"), summary=False) == []
    after = [f for _, _, fs in os.walk(tmp_path / "cache") for f in fs]
    assert after == before and (tmp_path / "out" / "plots" / "loss_hinge_loss.svg").is_file()
    assert data["plot_cpu_seconds"]["loss_plot"] < 1.0


def test_the_key_changes_with_verify_source(monkeypatch, tmp_path):
    from verify import cache
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", str(tmp_path))
    d = cache.cache_dir()
    assert os.path.basename(d) == cache.source_hash()[:32]
    cache.source_hash.cache_clear()
    monkeypatch.setattr(cache, "__file__", str(tmp_path / "elsewhere" / "cache.py"))
    os.makedirs(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "cache.py").write_text("# another verify\n")
    try:
        assert cache.cache_dir() != d
    finally:
        cache.source_hash.cache_clear()


def test_exact_values_come_back_bit_for_bit(monkeypatch, tmp_path):
    import mpmath
    from verify import cache
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", str(tmp_path))
    with mpmath.workdps(80):
        third, big = mpmath.mpf(1) / 3, -mpmath.exp(1000)
    value = (third, [big, mpmath.mpf(0), mpmath.mpf("1e-400")], 7)
    calls = []

    def compute():
        calls.append(1)
        return value
    assert cache.exact_values("t", ("x", 1.5), compute) is value
    got = cache.exact_values("t", ("x", 1.5), compute)
    assert len(calls) == 1 and isinstance(got, tuple) and got[2] == 7
    assert got[0]._mpf_ == third._mpf_ and [g._mpf_ for g in got[1]] == [
        v._mpf_ for v in value[1]]
    cache.exact_values("t", ("x", 1.25), compute)           # other inputs: derived again
    assert len(calls) == 2
    entries = sorted(os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs)
    assert len(entries) == 2
    entry = entries[0]                                      # one of the two, damaged:
    for bad in ('{"kind": "t", "value": {"mpf": [0, "0x3", 0, 99]}}', "[]",
                '{"kind": "t", "value": {"mpf": [0, "zz", 0, 2]}}'):
        with open(entry, "w") as fh:
            fh.write(bad)
        calls.clear()
        cache.exact_values("t", ("x", 1.5), compute)
        cache.exact_values("t", ("x", 1.25), compute)
        assert len(calls) == 1                              # the damaged one, again
