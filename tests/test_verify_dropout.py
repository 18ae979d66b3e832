"""verify.dropout: the proofs hold, the evidence passes on the compiled kernel, and the
ULP measure sees a wrong scale."""
import numpy as np
import pytest

pytest.importorskip("sympy")
from verify import dropout as V  # noqa: E402
from verify.run import Context  # noqa: E402


def test_proofs_hold():
    derivative_ok, expectation_ok, latex = V.prove_dropout()
    assert derivative_ok and expectation_ok and "1 - p" in latex


def test_dropout_section_passes_on_the_compiled_kernel():
    items = V.run_dropout(Context(quick=True))
    assert [it["name"] for it in items] == V.ITEM_NAMES
    for item in items:
        assert item["passed"], item["rows"]


def _epoch_item_with(monkeypatch, **patches):
    """The "epoch with dropout" item with parts of the compiled loop's math replaced."""
    import importlib
    R = importlib.import_module("nnlib._reference.dropout")   # (the package exports a
    #                                                            function of that name)
    for name, fn in patches.items():
        monkeypatch.setattr(R, name, fn)
    return V._epoch_item(Context(quick=True))


def test_the_epoch_check_sees_a_missing_scale_through_its_oracle(monkeypatch):
    """The replay's masks come from the twin's dropout_mask: a mask that keeps other
    entries than the compiled loop's (here: all of them) must fail the item."""
    def keep_all(n, c, *args, **kwargs):
        return np.ones((n, c), bool)
    item = _epoch_item_with(monkeypatch, dropout_mask=keep_all)
    assert not item["passed"]


def test_the_ulp_measure_catches_a_wrong_scale():
    from nnlib._reference.dropout import dropout_mask
    x = np.linspace(-3, 3, 40).reshape(4, 10)
    keep = dropout_mask(4, 10, 0.3, 1)
    right = np.where(keep, x * (1 / 0.7), 0.0)
    assert V._ulps(right, x, keep, 0.3, np.float64) <= 1
    wrong = np.where(keep, x * (1 / 0.7) * (1 + 1e-12), 0.0)   # a slip in the scale
    assert V._ulps(wrong, x, keep, 0.3, np.float64) > 100


def test_the_ulp_measure_catches_a_nonzero_dropped_entry():
    from nnlib._reference.dropout import dropout_mask
    x = np.linspace(-3, 3, 40).reshape(4, 10)
    keep = dropout_mask(4, 10, 0.3, 1)
    leaked = np.where(keep, x * (1 / 0.7), 0.0)
    leaked[~keep] = -0.0                        # a signed zero is still exact
    assert V._ulps(leaked, x, keep, 0.3, np.float64) <= 1
    leaked[np.argwhere(~keep)[0][0], np.argwhere(~keep)[0][1]] = 1e-300
    assert V._ulps(leaked, x, keep, 0.3, np.float64) > 100


def _ulps_by_fractions(computed, x, keep, rate, dtype):
    """The measure by its definition, entry by entry in Fractions (the reference)."""
    from fractions import Fraction
    scale = 1 / (1 - Fraction(rate))
    worst = 0.0
    tiny = np.finfo(dtype).tiny
    look = (keep | (computed != 0)).ravel()
    for c, xv, k in zip(computed.ravel()[look], x.ravel()[look], keep.ravel()[look]):
        exact = Fraction(float(xv)) * scale if k else Fraction(0)
        rounded = dtype(float(exact))
        if c == rounded:
            continue
        spacing = max(float(np.spacing(np.abs(rounded))), float(tiny))
        worst = max(worst, abs(float(Fraction(float(c)) - exact)) / spacing)
    return worst


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_ulp_measure_is_its_fraction_definition(dtype):
    """``V._ulps`` (ints, the exact values made once) equals the entry-by-entry Fraction
    definition bit for bit: outputs rounded right, by the rounded scale, off by a few
    ulps, leaked dropped entries, signed zeros, subnormal and huge inputs, each rate."""
    from nnlib._reference.dropout import dropout_mask
    rng = np.random.default_rng(4)
    for rate in (0.1, 0.25, 0.5, 0.9):
        x = (rng.standard_normal((16, 9)) * 10.0 ** rng.uniform(-30, 30, (16, 9))).astype(dtype)
        x[0, :3] = [np.finfo(dtype).smallest_subnormal, -np.finfo(dtype).tiny, 0.0]
        keep = dropout_mask(16, 9, rate, 3)
        scale = dtype(1 / (1 - rate))
        for computed in (np.where(keep, x * scale, dtype(0)),
                         np.where(keep, x * scale * dtype(1 + 4 * np.finfo(dtype).eps), -0.0),
                         np.where(keep, x * scale, x)):           # every dropped entry leaks
            computed = computed.astype(dtype)
            got = V._ulps(computed, x, keep, rate, dtype)
            want = _ulps_by_fractions(computed, x, keep, rate, dtype)
            assert got == want, (rate, got, want)
