"""Plain SGD at batch 1: the input gradients read a transposed copy of each weight
matrix past the first (``epoch_loop``'s ``WT``, stepped with the weights), which gives
bitwise the weights of the path without it, and the NumPy twin's within tolerance.

The copy is used with plain SGD, no decay and no L2, when the copies take at most
TRANSPOSED_MAX_BYTES; the cases below run it on several shapes (two and three layers),
on shapes over the limit (not used: the same result trivially) and with L2 (not used).
"""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib._paths import path_value
from nnlib._reference import train as twin
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

compiled = compiled_train()
N = 13
LIMIT = path_value("TRANSPOSED_MAX_BYTES")
# two epochs of training against the twin's NumPy products (other summation orders)
TWIN_TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}

# (widths, activation): hidden widths around a vector's 16 float32 / 8 float64 lanes,
# the digits net, three layers, and one over the size limit in both dtypes
SHAPES = [([64, 100, 10], "relu"), ([5, 7, 3], "relu"), ([9, 16, 17], "tanh"),
          ([12, 33, 8, 4], "relu"), ([3, 1, 6], "relu"), ([4, 300, 300], "relu")]
IDS = ["-".join(map(str, s)) + "-" + a for s, a in SHAPES]


def _model(sizes, act, dtype):
    return nnlib.Sequential([nnlib.Dense(a, b, act if i < len(sizes) - 2 else "identity",
                                         dtype=dtype, random_state=i + 1)
                             for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))])


def _data(sizes, dtype):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, sizes[0])).astype(dtype)
    X[X < -0.3] = 0
    return X, rng.integers(0, sizes[-1], N)


def _run(module, sizes, act, dtype, enabled, l2=0.0, epochs=2):
    previous = compiled._set_transposed(enabled)
    try:
        model = _model(sizes, act, dtype)
        X, y = _data(sizes, dtype)
        setup = make_setup(module, model, X, y, "softmax_cross_entropy",
                           optimizer=O.SGD(lr=0.2), batch_size=1, l2=l2)
        rng = np.random.default_rng(3)
        outs = []
        for e in range(epochs):
            outs.append(module.run_epoch(setup, rng.permutation(N).astype(np.int64),
                                         e * N))
        return outs, [p.copy() for p in model.params]
    finally:
        compiled._set_transposed(previous)


def _same(a, b):
    for p, q in zip(a, b):
        assert np.array_equal(p, q) and np.array_equal(np.signbit(p), np.signbit(q))


def test_limit_cases_are_on_both_sides():
    nbytes = [sum(a * b for a, b in zip(s[1:-1], s[2:])) * 4 for s, _ in SHAPES]
    assert min(nbytes) <= LIMIT < max(nbytes)


@pytest.mark.parametrize("sizes, act", SHAPES, ids=IDS)
def test_transposed_path_is_bitwise_the_plain_one(sizes, act, dtype):
    on, W_on = _run(compiled, sizes, act, dtype, True)
    off, W_off = _run(compiled, sizes, act, dtype, False)
    _same(W_on, W_off)
    assert on == off


@pytest.mark.parametrize("sizes, act", SHAPES, ids=IDS)
def test_transposed_path_matches_the_twin(sizes, act, dtype):
    tol = TWIN_TOL[dtype]
    on, W_on = _run(compiled, sizes, act, dtype, True)
    ref, W_ref = _run(twin, sizes, act, dtype, True)
    for p, q in zip(W_on, W_ref):
        np.testing.assert_allclose(p, q, **tol)
    np.testing.assert_allclose([o[0] for o in on], [o[0] for o in ref], **tol)


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_l2_and_set_transposed(l2, dtype):
    """With L2 the copies are not used; either way the switch gives the same weights."""
    _, W_on = _run(compiled, [64, 100, 10], "relu", dtype, True, l2=l2)
    _, W_off = _run(compiled, [64, 100, 10], "relu", dtype, False, l2=l2)
    _same(W_on, W_off)
    assert compiled._set_transposed(True) is True
