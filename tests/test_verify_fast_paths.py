"""verify.fast_paths: the fit path's compiled shortcuts pass their checks, and a compiled
path that strays from NumPy by one draw or at one boundary fails them."""
import numpy as np
import pytest

from nnlib._kernels import shuffle, train
from verify import fast_paths
from verify.run import Context


def _item(name, **kw):
    items = fast_paths.run_fast_paths(Context(quick=True, only=[name], **kw))
    assert [it["name"] for it in items] == [name]
    return items[0]


@pytest.mark.parametrize("name", fast_paths.ITEM_NAMES)
def test_the_compiled_shortcuts_pass(name):
    it = _item(name)
    assert it["passed"], it["failures"]
    assert it["section"] == "kernels" and it["verdict"].startswith("pass")


def test_a_full_run_checks_both_with_every_run_seed():
    items = fast_paths.run_fast_paths(Context(quick=False, seed=4))
    assert [it["name"] for it in items] == fast_paths.ITEM_NAMES
    assert all(it["passed"] for it in items), [it["failures"] for it in items]


class _OneSwapPerLongOrder(shuffle.SeedOrders):
    """The compiled orders with two entries swapped from n = 257 on."""
    def permutation(self, n):
        out = super().permutation(n)
        if n >= 257:
            out[[0, -1]] = out[[-1, 0]]
        return out


def test_seed_orders_that_differ_from_numpy_fail(monkeypatch):
    monkeypatch.setattr(shuffle, "SeedOrders", _OneSwapPerLongOrder)
    it = _item("SeedOrders")
    assert not it["passed"]
    assert "seed 0, order 10 of its stream (n = 257): index 0:" in it["failures"][0]


def test_generator_orders_that_differ_from_numpy_fail(monkeypatch):
    """Two entries swapped from n = 257 on: caught on the first such order."""
    real = shuffle.generator_permutation

    def swapped(rng, n):
        out = real(rng, n)
        if n >= 257:
            out[[0, -1]] = out[[-1, 0]]
        return out
    monkeypatch.setattr(shuffle, "generator_permutation", swapped)
    it = _item("generator_permutation")
    assert not it["passed"]
    assert "PCG64(0), order 10 of its stream (n = 257): index 0:" in it["failures"][0]


def test_a_generator_left_in_another_state_fails(monkeypatch):
    """The same orders, but one raw draw too many after the last order of a stream
    (as reading a fresh 64-bit draw instead of a buffered half would leave it): no
    order shows it; the state check after the stream does."""
    real, calls, alive = shuffle.generator_permutation, {}, []

    def one_more_draw_at_the_end(rng, n):
        out = real(rng, n)
        alive.append(rng)                   # no other generator takes its id
        k = calls[id(rng)] = calls.get(id(rng), 0) + 1
        if k == len(fast_paths.LENGTHS) + fast_paths.EPOCHS:
            rng.bit_generator.random_raw()
        return out
    monkeypatch.setattr(shuffle, "generator_permutation", one_more_draw_at_the_end)
    it = _item("generator_permutation")
    assert not it["passed"]
    n_orders = len(fast_paths.LENGTHS) + fast_paths.EPOCHS
    assert (f"PCG64(1): after {n_orders} orders the bit generator's state differs from the "
            "one Generator.permutation leaves") in it["failures"], it["failures"]


def test_a_label_check_off_by_one_at_n_classes_fails(monkeypatch):
    real = train.first_label_outside

    def accepts_n_classes(y, n_classes):
        return real(y, min(n_classes + 1, 2**63 - 1))
    monkeypatch.setattr(train, "first_label_outside", accepts_n_classes)
    it = _item("first_label_outside")
    assert not it["passed"]
    assert any(f.startswith("n_classes outside (n_classes = 3): compiled -1, twin 2")
               for f in it["failures"]), it["failures"]


@pytest.mark.parametrize("name, missing", [("SeedOrders", "_kernels.shuffle.SeedOrders"),
                                           ("generator_permutation",
                                            "_kernels.shuffle.generator_permutation"),
                                           ("first_label_outside",
                                            "_kernels.train.first_label_outside")])
def test_a_missing_compiled_path_fails(monkeypatch, name, missing):
    from verify import kernels as K
    real = K.nnlib_attr
    monkeypatch.setattr(K, "nnlib_attr", lambda p: None if p == missing else real(p))
    it = _item(name)
    assert not it["passed"] and it["failures"] == [f"nnlib.{missing} is not available"]


def test_a_label_check_that_reads_a_strided_view_fails(monkeypatch):
    real = train.first_label_outside
    monkeypatch.setattr(train, "first_label_outside",
                        lambda y, n: real(np.ascontiguousarray(y, dtype=np.int64).ravel(), n))
    it = _item("first_label_outside")
    assert not it["passed"]
    assert any(f.startswith("a strided view y[::2] is accepted") for f in it["failures"])
