"""verify's plot cache (verify.cache): a hit writes the bytes a fresh render writes; a
changed number in the plotted data is a miss; a malformed or hostile entry is a miss that
writes nothing outside plots/; NNLIB_VERIFY_CACHE=0 turns it off."""
import json
import os

import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")
pytest.importorskip("matplotlib")


@pytest.fixture
def hinge(monkeypatch, tmp_path):
    from verify.losses import run_losses
    from verify.run import Context
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", str(tmp_path / "cache"))
    return run_losses(Context(quick=True, only=["hinge_loss"]))


def _draw(items, out):
    from verify.plots import make_plots
    data = {"items": items, "quick": True}
    assert make_plots(data, str(out), summary=False) == []
    return (out / "plots" / "loss_hinge_loss.png").read_bytes(), data["plot_cpu_seconds"]


def _entries(tmp_path):
    return [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "cache") for f in fs]


def test_a_hit_writes_the_bytes_of_a_fresh_render(hinge, tmp_path, monkeypatch):
    first, _ = _draw(hinge, tmp_path / "a")
    assert len(_entries(tmp_path)) == 1
    again, _ = _draw(hinge, tmp_path / "b")
    assert again == first
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", "0")          # off: drawn, same bytes
    fresh, _ = _draw(hinge, tmp_path / "c")
    assert fresh == first and len(_entries(tmp_path)) == 1


def test_a_changed_compiled_value_is_a_miss(hinge, tmp_path):
    first, _ = _draw(hinge, tmp_path / "a")
    recs = hinge[0]["_sweep"].points["loss"]["float64"]
    recs[3]["got"] = float(recs[3]["got"]) * (1 + 2 ** -40)   # one bit off: not visible,
    same, _ = _draw(hinge, tmp_path / "b")                     # but a miss, drawn again
    assert len(_entries(tmp_path)) == 2 and same == first
    recs[3]["got"] = float(recs[3]["got"]) + 1.0               # visibly wrong: its own figure
    wrong, _ = _draw(hinge, tmp_path / "c")
    assert len(_entries(tmp_path)) == 3 and wrong != first


def test_a_malformed_or_hostile_entry_is_a_miss(hinge, tmp_path):
    first, _ = _draw(hinge, tmp_path / "a")
    (entry,) = _entries(tmp_path)
    good = json.load(open(entry))
    escape = str(tmp_path / "escaped.png")
    for bad in ("{not json", json.dumps({"plots": [["x", "../escaped.png"]],
                                         "files": {"../escaped.png": "AAAA"}}),
                json.dumps({"plots": [["x", escape]], "files": {escape: "AAAA"}}),
                json.dumps(dict(good, files={})),
                json.dumps(dict(good, files={k: "%%%" for k in good["files"]}))):
        with open(entry, "w") as fh:
            fh.write(bad)
        again, _ = _draw(hinge, tmp_path / "b")
        assert again == first
        assert not (tmp_path / "escaped.png").exists()
        assert not (tmp_path / "b" / "escaped.png").exists()


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
