"""The small products of gemm_small.h (mm's register-blocked loops, AVX2 with FMA).

Its header states the contract: each element of op(A) op(B) is one chain of fused
multiply-adds in increasing p from zero, then alpha and beta applied (the training
epoch's plain SGD step: ``fma(-lr, s, W)``), whichever panel (two vectors, one, a half
vector; read in place or copied) and row block computes it. These tests rebuild the
elements from exactly rounded fused multiply-adds and compare bit for bit where the loops
are built, over shapes that reach every panel and row block, and hold every build to the
NumPy twin on both sides of each of mm's bounds. (The epoch's SGD form, alpha -lr and
beta 1, is held to its twin by tests/test_train*.py.)
"""
from fractions import Fraction

import numpy as np
import pytest

import nnlib.functional as F
from nnlib._kernels.dense import _SMALL_GEMM

BUILT, MAX_K, MIN_N, MAX_MNK = _SMALL_GEMM
needs_loops = pytest.mark.skipif(not BUILT, reason="gemm_small.h not built (no AVX2+FMA, "
                                 "or AVX-512)")


def _round(x, dtype):
    """The exact rational ``x`` rounded to nearest (ties to even) in ``dtype``."""
    f = dtype(float(x))
    cands = [f, np.nextafter(f, dtype(np.inf)), np.nextafter(f, dtype(-np.inf))]
    bits = np.int64 if dtype == np.float64 else np.int32
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - x),
                                     int(np.array(c).view(bits)) & 1))


def _chain(a, b, dtype):
    """sum_p a[p] b[p] as fused multiply-adds in increasing p from zero."""
    s = dtype(0)
    for x, y in zip(a, b):
        s = _round(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(s)), dtype)
    return s


def _product(opA, opB, dtype):
    """The header's elements for alpha 1 and beta 0: the chains themselves."""
    m, n = opA.shape[0], opB.shape[1]
    out = np.empty((m, n), dtype)
    for i in range(m):
        for j in range(n):
            out[i, j] = _chain(opA[i], opB[:, j], dtype)
    return out


# (rows, n_in, n_out): row blocks of 6 and every remainder, panels of 16 columns and the
# one-vector and half-vector ones after them (in place and copied)
SHAPES = [(2, 3, 16), (7, 5, 17), (6, 4, 20), (11, 9, 23), (13, 2, 28), (5, 8, 31),
          (3, 6, 36), (14, 20, 36)]


@needs_loops
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_and_backward_are_the_fma_chains(shape, dtype, rng):
    r, k, n = shape
    X = rng.standard_normal((r, k)).astype(dtype)
    W = rng.standard_normal((k, n)).astype(dtype)
    b = np.zeros(n, dtype)
    H = F.dense_forward(X, W, b, "identity")
    np.testing.assert_array_equal(H, _product(X, W, dtype))
    # dX = G W^T: B transposed (copied panels); op(A) = G has n columns as k
    G = rng.standard_normal((r, n)).astype(dtype)
    dX, dW, _ = F.dense_backward(X, W, H, G, "identity")
    if k >= MIN_N and k > 1 and n <= MAX_K:
        np.testing.assert_array_equal(dX, _product(G, W.T, dtype))
    # dW = X^T G: A transposed (k rows, r inner)
    if k > 1 and r <= MAX_K:
        np.testing.assert_array_equal(dW, _product(X.T, G, dtype))


def _bounds_cases():
    """(rows, n_in, n_out) just inside and just outside each bound of mm's loops."""
    cases = [(4, MAX_K - 1, 16), (4, MAX_K, 16), (4, MAX_K + 1, 16),
             (5, 8, MIN_N - 1), (5, 8, MIN_N), (5, 8, MIN_N + 1)]
    # m n k = MAX_MNK +- 1 through the forward product (k = 64 divides MAX_MNK)
    k, n = 64, 128
    m = MAX_MNK // (k * n)
    cases += [(m, k, n), (m + 1, k, n), (m - 1, k, n)]
    return cases


@pytest.mark.parametrize("shape", _bounds_cases(), ids=lambda s: "x".join(map(str, s)))
def test_both_sides_of_each_bound_match_the_twin(shape, dtype, rng):
    from nnlib._reference import dense as twin
    r, k, n = shape
    X = rng.standard_normal((r, k)).astype(dtype)
    W = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    G = rng.standard_normal((r, n)).astype(dtype)
    H = F.dense_forward(X, W, b, "relu")
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12,
                                                                      atol=1e-12)
    np.testing.assert_allclose(H, twin.dense_forward(X, W, b, "relu"), **tol)
    got = F.dense_backward(X, W, H, G, "relu")
    want = twin.dense_backward(X, W, H, G, "relu")
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_out", [1, 16, 40])
def test_a_layer_without_inputs_gives_its_bias(dtype, n_out):
    # k = 0: the product is empty and each row is the bias. Before, mm sent it to the
    # blocked loops, which returned without writing, so the rows were whatever the
    # output buffer held (found by review rev19 for 2+ rows and 16+ outputs).
    X = np.zeros((4, 0), dtype)
    W = np.zeros((0, n_out), dtype)
    b = np.arange(n_out, dtype=dtype)
    for _ in range(3):
        np.testing.assert_array_equal(F.dense_forward(X, W, b),
                                      np.broadcast_to(b, (4, n_out)))
