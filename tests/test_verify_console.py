"""What ``python -m verify`` prints (issue 15): a line per check as it finishes with the
figure that decided it, failures named in the last line, --list, "did you mean", --only
runs exactly what it names; and proper --help for verify, bench and the demo."""
import json
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")

from verify import kernels as K  # noqa: E402
from verify.__main__ import main  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_optional(monkeypatch):
    monkeypatch.setattr(K, "missing_optional", lambda: {})


def test_list_names_every_check_and_group_and_runs_nothing(capsys, monkeypatch):
    import verify.run as run
    monkeypatch.setattr(run, "run_all", lambda *a, **k: pytest.fail("--list ran checks"))
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("sigmoid", "softmax_cross_entropy", "dense", "Adam(lr=0.01)", "backprop",
                 "epoch proof", "universal approximation: |x|", "coverage", "SeedOrders",
                 "generator_permutation", "first_label_outside"):
        assert f"\n  {name}\n" in out, name
    assert "  optimizers: 18 checks" in out and "ACTIVATION+LOSS" in out
    assert "  fast_paths: 3 checks" in out


@pytest.mark.parametrize("typo, suggestion", [("sigmoidd", "sigmoid"), ("xor", "XOR — "),
                                               ("softmax_xent", "softmax_cross_entropy")])
def test_unknown_name_suggests_the_nearest(capsys, typo, suggestion):
    assert main(["--quick", "--only", typo]) == 2
    err = capsys.readouterr().err
    assert f"no check or group is named {typo!r}; did you mean " in err
    assert f"'{suggestion}" in err.split("did you mean", 1)[1]
    assert "python -m verify --list" in err


def test_only_runs_what_it_names_and_nothing_else(tmp_path, capsys, no_optional):
    assert main(["--quick", "--only", "relu", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    # relu's own checks: the kernel, its branch paths and stated conventions, convexity
    assert {(it["section"], it["name"]) for it in data["items"]} == {
        ("kernels", "relu"), ("kernels", "relu (branch paths)"),
        ("kernels", "relu (conventions)"), ("kernels", "relu_vjp (conventions)"),
        ("convexity", "relu")}
    assert set(data["section_seconds"]) <= {"run_activations", "run_convexity",
                                            "run_paths", "run_conventions",
                                            "plots (while backprop runs)"}
    lines = capsys.readouterr().out.splitlines()
    # header first, one line per check, the last line names the report
    assert lines[0].startswith("verify: 5 checks (--quick)")
    checks = [ln for ln in lines if re.match(r"(ok  |FAIL) ", ln)]
    assert len(checks) == 5
    kern = [ln for ln in checks if " kernels " in ln][0]
    assert re.search(r"\d+(\.\d+)? s  0 of tolerance \(forward float64\), \d+/\d+ points "
                     r"within the ulp bound", kern), kern
    assert lines[-1].startswith("5 of 5 checks passed") and "report.html" in lines[-1]


def test_group_names_select_their_checks():
    from verify.run import resolve_only
    adam = resolve_only(["Adam"])
    assert "Adam(lr=0.01)" in adam and "epoch Adam(lr=0.01)" in adam
    assert all("Adam(" in n for n in adam)
    assert resolve_only(["tanh+squared_error"]) == ["tanh+squared_error"]
    assert "softmax_cross_entropy" in resolve_only(["losses"])


def test_figure_is_relative_to_the_check_s_own_bound():
    from verify.console import figure
    stats = {"forward": {"float64": dict(max_ulps=3.0, n_points=10, n_failed=0,
                                         tolerance={"ulps": 4, "abs_eps": 8},
                                         of_tolerance=0.75, n_by_abs=0)},
             "vjp": {"float64": dict(max_ulps=9e15, n_points=10, n_failed=0,
                                     tolerance={"ulps": 4, "abs_eps": 8},
                                     of_tolerance=0.3, n_by_abs=2)}}
    # the 9e15-ulp point passed by its absolute bound: the worst is forward's 0.75
    assert figure({"evidence": {"stats": stats}}) == (
        "0.75 of tolerance (forward float64), 2/20 points by the abs. bound")


def test_failing_check_is_named_on_its_line_and_in_the_last_line(tmp_path, capsys,
                                                                 monkeypatch, no_optional):
    real = K.kernel
    monkeypatch.setattr(K, "kernel", lambda n: (lambda x, g, **kw: real(n)(x, g, **kw)
                                                * 1.001) if n == "tanh_vjp" else real(n))
    assert main(["--quick", "--only", "tanh", "--out", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    fail = [ln for ln in lines if ln.startswith("FAIL")]
    # the kernel check and the branch-path check both see it; nothing else fails
    assert [ln.split()[2] for ln in fail] == ["tanh", "tanh"]
    assert any(" tanh " in ln and "vjp [float" in ln for ln in fail)
    assert "FAILED: tanh" in lines[-1]


def _help(*module):
    r = subprocess.run([sys.executable, "-m", *module, "--help"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_verify_help_is_argparse_help_not_rst():
    out = _help("verify")
    assert out.startswith("usage: python -m verify")
    assert "--list" in out and "--only NAME" in out and "``" not in out


def test_demo_help_does_not_run_the_demo():
    out = _help("nnlib.demo")
    assert out.startswith("usage: python -m nnlib.demo")
    assert "demonstration passed" not in out and "``" not in out


def test_bench_help_description_is_whole():
    out = _help("bench")
    desc = out.split("\n\n")[1]
    assert desc.startswith("Time nnlib against") and desc.rstrip().endswith("plots.")
    assert "(default: 1;" in " ".join(out.split())
