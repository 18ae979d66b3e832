"""The README's demonstration runs and every step of it passes."""
from nnlib import demo


def test_demo_passes(capsys):
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "all demonstrations passed" in out and "FAILED" not in out
