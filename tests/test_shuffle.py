"""SeedOrders (compiled and twin) draw NumPy's ``default_rng(seed).permutation(n)`` orders
bit for bit, epoch after epoch, and ``fit`` trains to the same weights with it."""
import re

import numpy as np
import pytest

from nnlib._kernels.shuffle import SeedOrders
from nnlib._random import shuffle_orders
from nnlib._reference.shuffle import SeedOrders as TwinSeedOrders

# one-word, multi-word (SeedSequence's extra mixing loop) and boundary seeds
SEEDS = [0, 1, 2, 7, 42, 12345, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 5, 2**63,
         2**64 - 1, 2**100 + 3, 2**200 + 7] + list(range(100, 140))
LENGTHS = [0, 1, 2, 3, 5, 16, 255, 256, 257, 1797]
IMPLEMENTATIONS = [pytest.param(SeedOrders, id="compiled"),
                   pytest.param(TwinSeedOrders, id="twin")]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("seed", SEEDS)
def test_orders_match_numpy_epoch_after_epoch(impl, seed):
    ours, numpy = impl(seed), np.random.default_rng(seed)
    for n in LENGTHS:                   # one stream: each call continues the state
        got, want = ours.permutation(n), numpy.permutation(n)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


# SeedOrders draws in blocks (512 positions, 64 PCG64 outputs made ahead = 128 draws):
# lengths around their edges, in a stream that starts some orders on a buffered half
BLOCK_LENGTHS = [63, 64, 65, 127, 128, 129, 511, 512, 513, 514, 1023, 1024, 1025, 1537,
                 4096, 4097]


@pytest.mark.parametrize("seed", list(range(30)) + [2**32 + 1, 2**63, 2**64 - 1])
def test_orders_match_numpy_for_a_stream_of_random_lengths(seed):
    from nnlib._kernels.shuffle import generator_permutation
    lengths = (np.random.default_rng(seed + 1000).integers(0, 3000, 40).tolist()
               + BLOCK_LENGTHS + [1, 2, 1797, 1797, 1797])
    ours, numpy, one_pass = (SeedOrders(seed), np.random.default_rng(seed),
                             np.random.default_rng(seed))
    for n in lengths:                   # one stream: each order leaves the next's state
        want = numpy.permutation(n)
        np.testing.assert_array_equal(ours.permutation(n), want)
        # the one-pass draw with a branch per draw (Generator's own bit generator)
        np.testing.assert_array_equal(generator_permutation(one_pass, n), want)


# long orders around powers of two (where the mask widens) and 10^6, in one stream whose
# first long order starts on a buffered half (permutation(2) takes one 32-bit draw)
LONG_LENGTHS = [2**k + d for k in (13, 16, 20) for d in (-1, 0, 1)] + [10**6]


def test_long_orders_around_powers_of_two_match_numpy_in_one_stream():
    ours, numpy = SeedOrders(11), np.random.default_rng(11)
    for n in [2] + LONG_LENGTHS + [300]:
        np.testing.assert_array_equal(ours.permutation(n), numpy.permutation(n))


def test_long_order_matches_numpy():
    np.testing.assert_array_equal(SeedOrders(9).permutation(100_000),
                                  np.random.default_rng(9).permutation(100_000))


@pytest.mark.parametrize("seed", [-1, -2**40])
def test_negative_seed_refused(seed):
    with pytest.raises(ValueError, match=">= 0"):
        SeedOrders(seed)


def test_negative_length_refused():
    with pytest.raises(ValueError, match=">= 0"):
        SeedOrders(0).permutation(-1)


@pytest.mark.parametrize("random_state", [None, np.random.default_rng(0),
                                          np.random.RandomState(0)],
                         ids=["none", "generator", "randomstate"])
def test_other_seeds_keep_the_generator(random_state):
    assert isinstance(shuffle_orders(random_state), np.random.Generator)


@pytest.mark.parametrize("random_state", [5, np.int64(5), np.uint32(5)],
                         ids=["int", "int64", "uint32"])
def test_int_seeds_get_seed_orders(random_state):
    assert isinstance(shuffle_orders(random_state), SeedOrders)


@pytest.mark.parametrize("random_state", [-1, True, 1.5, "3"],
                         ids=["negative", "bool", "float", "str"])
def test_bad_seeds_raise_as_before(random_state):
    from nnlib._random import as_generator
    with pytest.raises((ValueError, TypeError)) as want:
        as_generator(random_state)
    with pytest.raises(type(want.value), match=re.escape(str(want.value))):
        shuffle_orders(random_state)


def _assert_same_state(a, b):
    """A bit generator's state dicts (ints, strings, arrays) equal, leaf by leaf."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_state(a[k], b[k])
    else:
        np.testing.assert_array_equal(a, b)


BIT_GENERATORS = [np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937,
                  np.random.Philox, np.random.SFC64]


@pytest.mark.parametrize("bit_generator", BIT_GENERATORS, ids=lambda b: b.__name__)
@pytest.mark.parametrize("seed", [0, 1, 42, 2**40 + 5])
def test_generator_permutation_matches_numpy_and_leaves_its_state(bit_generator, seed):
    from nnlib._kernels.shuffle import generator_permutation
    ours, numpy = (np.random.Generator(bit_generator(seed)) for _ in range(2))
    for n in LENGTHS + [5000]:          # one stream, as fit draws it
        got, want = generator_permutation(ours, n), numpy.permutation(n)
        assert got.dtype == np.int64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
        # the state moved as numpy's own call moves it (a 32-bit half kept too)
        _assert_same_state(ours.bit_generator.state, numpy.bit_generator.state)
    assert ours.random() == numpy.random()


def test_generator_permutation_long_order_and_bad_length():
    from nnlib._kernels.shuffle import generator_permutation
    np.testing.assert_array_equal(
        generator_permutation(np.random.default_rng(9), 100_000),
        np.random.default_rng(9).permutation(100_000))
    with pytest.raises(ValueError, match=">= 0"):
        generator_permutation(np.random.default_rng(0), -1)


def test_epoch_order_takes_the_compiled_draw_only_for_numpys_generators():
    from nnlib._random import epoch_order

    class Traced(np.random.Generator):
        pass
    for rng in (np.random.default_rng(3), Traced(np.random.PCG64(3)), SeedOrders(3)):
        got = epoch_order(rng, 257)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.random.default_rng(3).permutation(257))


def test_epoch_order_checks_the_compiled_permutation_against_numpy_once(monkeypatch):
    # NumPy does not promise its Generator's streams across versions: if the compiled copy
    # of its permutation ever differs, fit's orders come from NumPy's own permutation
    from nnlib import _random
    from nnlib._kernels import shuffle
    monkeypatch.setattr(_random, "_PERMUTATION_CHECKED", [])
    assert _random._compiled_permutation_is_numpys()
    real = shuffle.generator_permutation
    monkeypatch.setattr(_random, "_PERMUTATION_CHECKED", [])
    monkeypatch.setattr(shuffle, "generator_permutation",
                        lambda rng, n: real(rng, n)[::-1].copy())
    assert not _random._compiled_permutation_is_numpys()
    got = _random.epoch_order(np.random.default_rng(5), 300)     # NumPy's own, then
    np.testing.assert_array_equal(got, np.random.default_rng(5).permutation(300))
    assert got.dtype == np.int64
