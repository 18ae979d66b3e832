"""The small products of gemm_small.h (mm's register-blocked loops, AVX2 with FMA or
AVX-512).

Its header states the contract: each element of op(A) op(B) is one chain of fused
multiply-adds in increasing p from zero, then alpha and beta applied (the training
epoch's plain SGD step: ``fma(-lr, s, W)``), whichever panel (two vectors, one, a half
vector; read in place or copied) and row block computes it. These tests rebuild the
elements from exactly rounded fused multiply-adds and compare bit for bit where the loops
are built, over shapes that reach every panel and row block, and hold every build to the
NumPy twin on both sides of each of mm's bounds. ``dense._mm`` runs mm itself on strided
views with every alpha/beta form, each transpose and every panel and row remainder of
both branches (AVX2: panels of 2, 1 and a half vector, blocks of 6 rows; AVX-512: panels
of up to 4 vectors with the last one masked, blocks of 6, 8 or 12 rows). (The epoch's SGD form, alpha -lr and
beta 1, is held to its twin by tests/test_train*.py.)
"""
from fractions import Fraction

import numpy as np
import pytest

import nnlib.functional as F
from nnlib._kernels.dense import _SMALL_GEMM

BUILT, MAX_K, MIN_N, MAX_MNK = _SMALL_GEMM
needs_loops = pytest.mark.skipif(not BUILT, reason="gemm_small.h not built (neither AVX2 "
                                 "with FMA nor AVX-512)")


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


def _fma(a, b, c, dtype):
    """a b + c rounded once to ``dtype``."""
    return _round(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)), dtype)


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


# mm on strided operands: (m, n, k). Rows reach every remainder of the blocks (6 and 8 and
# 12 rows: 23 = 12 + 11 = 2 * 8 + 7 = 3 * 6 + 5; 13, 7, 2); columns every panel: whole
# 4-vector panels (64 floats, 32 doubles) and 1-3 vectors after them, the last one
# partly masked, and the AVX2 panels (16+ columns).
MM_SHAPES = [(23, 100, 9), (13, 65, 4), (7, 17, 33), (2, 49, 2), (12, 31, 3),
             (9, 130, 5), (6, 16, 2), (8, 47, 7)]
# (alpha, beta): each write-back form: s, alpha s, fma(alpha, s, C), fma(alpha, s, beta C)
COEFFS = [(1.0, 0.0), (-0.1, 0.0), (1.0, 1.0), (-0.1, 1.0), (-0.3, 0.7)]
PAD = 5     # elements between the end of an operand's row and the next row


def _strided(a, fill):
    """``a`` as a view whose rows are PAD elements longer, the gaps holding ``fill``."""
    full = np.full((a.shape[0], a.shape[1] + PAD), fill, a.dtype)
    full[:, :a.shape[1]] = a
    return full, full[:, :a.shape[1]]


def _written(s, c, alpha, beta, dtype):
    """The header's write-back of chain ``s`` onto ``c`` (alpha and beta in the dtype)."""
    alpha, beta = dtype(alpha), dtype(beta)
    if beta == 0:
        return s if alpha == 1 else _round(Fraction(float(alpha)) * Fraction(float(s)),
                                           dtype)
    if beta == 1:
        return _fma(alpha, s, c, dtype)
    return _fma(alpha, s, _round(Fraction(float(beta)) * Fraction(float(c)), dtype),
                dtype)


@needs_loops
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True),
                                   (True, True)], ids=["NN", "TN", "NT", "TT"])
@pytest.mark.parametrize("shape", MM_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_mm_on_strided_operands_is_the_chains_then_alpha_and_beta(shape, trans, dtype,
                                                                  rng):
    # NaN in the gaps between rows: a lane read from the wrong place (a wrong mask or
    # leading dimension) turns its element NaN; a sentinel in C's gaps: a store past a
    # row's last column (a masked store's lanes) overwrites it. With beta 0, C starts NaN:
    # it must not be read.
    from nnlib._kernels import blas
    from nnlib._kernels.dense import _mm
    blas.load()
    m, n, k = shape
    ta, tb = trans
    if not (1 < k <= MAX_K and n >= MIN_N and m * n * k <= MAX_MNK):
        pytest.skip("outside mm's blocked loops on this build")
    opA = rng.standard_normal((m, k)).astype(dtype)
    opB = rng.standard_normal((k, n)).astype(dtype)
    _, A = _strided(opA.T.copy() if ta else opA, np.nan)
    _, B = _strided(opB.T.copy() if tb else opB, np.nan)
    chains = _product(opA, opB, dtype)
    for alpha, beta in COEFFS:
        C0 = rng.standard_normal((m, n)).astype(dtype) if beta else np.full((m, n), np.nan,
                                                                            dtype)
        Cfull, C = _strided(C0, -7.0)
        _mm(ta, tb, alpha, A, B, beta, C)
        want = np.empty((m, n), dtype)
        for i in range(m):
            for j in range(n):
                want[i, j] = _written(chains[i, j], C0[i, j], alpha, beta, dtype)
        np.testing.assert_array_equal(C, want, err_msg=f"alpha {alpha}, beta {beta}")
        assert (Cfull[:, n:] == -7.0).all(), f"alpha {alpha}, beta {beta}"
