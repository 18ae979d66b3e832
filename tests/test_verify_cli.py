"""``python -m verify`` flags from issue 12 (items 5, 6): --seed is recorded in the report and
in every failure; nothing passes by absence (a missing kernel fails, exported or not); a
missing optional dependency is a visible skip that --strict turns into a failure. Each run
uses --only on one small section, so the file stays fast."""
import json
import re

import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")

from verify import kernels as K  # noqa: E402
from verify.__main__ import main  # noqa: E402

ONLY = ["--quick", "--only", "relu"]


def _run(tmp_path, *args):
    rc = main([*ONLY, "--out", str(tmp_path), *args])
    return rc, json.loads((tmp_path / "report.json").read_text())


@pytest.fixture
def no_optional(monkeypatch):
    """Every optional dependency present (whatever this machine has installed)."""
    monkeypatch.setattr(K, "missing_optional", lambda: {})


def _drop_kernel(monkeypatch, name):
    real = K.kernel
    monkeypatch.setattr(K, "kernel", lambda n: None if n == name else real(n))


def test_seed_is_in_report_json_and_md(tmp_path, no_optional):
    rc, data = _run(tmp_path, "--seed", "17")
    assert rc == 0 and data["passed"]
    assert data["seed"] == 17 and data["seeds"] == [17]
    assert "seed 17" in (tmp_path / "report.md").read_text()


def test_exported_kernel_that_is_missing_fails_and_names_the_seed(tmp_path, monkeypatch,
                                                                  no_optional):
    assert "relu" in K.exported()
    _drop_kernel(monkeypatch, "relu_vjp")
    rc, data = _run(tmp_path, "--seed", "3")
    [item] = [it for it in data["items"] if it["name"] == "relu" and it["section"] == "kernels"]
    assert rc == 1 and not item["passed"]
    assert "exported but not callable" in item["verdict"] and item["seed"] == 3
    assert "`relu` — FAIL (exported but not callable) [seed 3]" in (
        tmp_path / "report.md").read_text()


def test_unexported_missing_kernel_fails_too(tmp_path, monkeypatch, no_optional):
    """'not available' is not a pass: a kernel verify knows but nnlib lacks fails."""
    _drop_kernel(monkeypatch, "relu")
    monkeypatch.setattr(K, "exported", lambda: set())
    rc, data = _run(tmp_path)
    [item] = [it for it in data["items"] if it["name"] == "relu" and it["section"] == "kernels"]
    assert rc == 1 and not item["passed"] and "not available" in item["verdict"]


# an optional dependency that is never installed, and the part of verify it stands for
# (verify has none at present: the mechanism is tested with this one)
_FAKE = {"nnlib_no_such_optional_dependency": "fake part"}


def test_missing_optional_dependency_is_a_visible_skip(tmp_path, monkeypatch):
    assert K.missing_optional() == {}                  # verify needs none today
    monkeypatch.setattr(K, "OPTIONAL", _FAKE)
    assert K.missing_optional() == _FAKE
    rc, data = _run(tmp_path)
    assert rc == 0 and data["passed"]
    assert data["skipped"] == [{"part": "fake part",
                                "needs": "nnlib_no_such_optional_dependency", "item": None}]
    assert "fake part (needs nnlib_no_such_optional_dependency)" in \
        (tmp_path / "report.md").read_text()


def test_strict_turns_a_skip_into_a_failure(tmp_path, monkeypatch, capsys):
    """The CI mode: a skipped part (a missing optional dependency) fails the run."""
    monkeypatch.setattr(K, "OPTIONAL", _FAKE)
    rc, data = _run(tmp_path, "--strict")
    assert rc == 1 and not data["passed"] and data["strict"]
    [item] = [it for it in data["items"] if it["name"] == "fake part"]
    assert not item["passed"] and \
        "skipped (needs nnlib_no_such_optional_dependency)" in item["verdict"]
    out = capsys.readouterr().out
    assert re.search(r"^FAIL skipped\s+fake part", out, re.M)
    assert out.rstrip().splitlines()[-1].split(" — ")[0].endswith("FAILED: fake part")


def test_strict_passes_when_nothing_is_skipped(tmp_path, no_optional):
    rc, data = _run(tmp_path, "--strict")
    assert rc == 0 and data["passed"] and data["skipped"] == []
