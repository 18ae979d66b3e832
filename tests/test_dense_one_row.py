"""The batch-1 products of blas_small.h are bitwise the plain loops they replace.

Its header states the contract: each element is formed by the operations of the loops of
dense.pxd's ``small_gemm`` (fused multiply-adds in a fixed order), whichever of the
vectorized forms (gathered rows, masked columns, blocks of vectors) computes it. These
tests rebuild each element from those operations with exactly rounded fused
multiply-adds and compare bit for bit, over widths that reach every form: fewer rows
than half a vector, whole vectors, a masked remainder, several blocks.
"""
from fractions import Fraction

import numpy as np
import pytest

import nnlib
import nnlib.functional as F
from nnlib.optim import SGD


def _round(x, dtype):
    """The exact rational ``x`` rounded to nearest (ties to even) in ``dtype``."""
    f = dtype(float(x))     # within one unit in the last place of the nearest
    cands = [f, np.nextafter(f, dtype(np.inf)), np.nextafter(f, dtype(-np.inf))]
    bits = np.int64 if dtype == np.float64 else np.int32
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - x),
                                     int(np.array(c).view(bits)) & 1))


def _fma(a, b, c, dtype):
    return _round(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)), dtype)


def _dot_chain(a, row, dtype):
    """small_gemm's dot product: four accumulators over p mod 4, the remainder into the
    first, summed as (acc0 + acc1) + (acc2 + acc3)."""
    k = len(a)
    acc = [dtype(0)] * 4
    p = 0
    while p + 4 <= k:
        for q in range(4):
            acc[q] = _fma(a[p + q], row[p + q], acc[q], dtype)
        p += 4
    for p in range(p, k):
        acc[0] = _fma(a[p], row[p], acc[0], dtype)
    return (acc[0] + acc[1]) + (acc[2] + acc[3])


@pytest.mark.parametrize("n_out", [1, 3, 4, 6, 10, 17])
@pytest.mark.parametrize("n_in", [1, 3, 7, 8, 9, 16, 17, 100])
def test_one_row_input_gradient_is_the_scalar_chain(n_in, n_out, dtype, rng):
    X = rng.standard_normal((1, n_in)).astype(dtype)
    W = rng.standard_normal((n_in, n_out)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    G = rng.standard_normal((1, n_out)).astype(dtype)
    H = F.dense_forward(X, W, b, "identity")
    dX = F.dense_backward(X, W, H, G, "identity")[0]
    want = np.array([_dot_chain(G[0], W[j], dtype) for j in range(n_in)], dtype)
    np.testing.assert_array_equal(dX[0], want)


@pytest.mark.parametrize("n_out", [1, 5, 16, 17, 100, 128, 129, 300])
def test_batch1_sgd_step_is_the_rank_one_update(n_out, dtype, rng):
    """One step of plain SGD at batch 1: W[i, :] += (-lr x_i) dz for x_i != 0, each
    element one fused multiply-add (dz is the bias gradient of that row)."""
    n_in, lr = 70, 0.25      # more inputs than one 64-wide chunk of the compaction
    model = nnlib.Sequential([nnlib.Dense(n_in, n_out, dtype=dtype, random_state=0)])
    X = rng.standard_normal((1, n_in)).astype(dtype)
    X[X < -0.5] = 0
    y = rng.standard_normal((1, n_out)).astype(dtype)
    W0 = model.params[0].copy()
    _, grads = model.loss_and_grads(X, y, "squared_error")
    dz = grads[1]
    model.fit(X, y, loss="squared_error", optimizer=SGD(lr=lr), epochs=1, batch_size=1,
              shuffle=False, verbose=0)
    want = W0.copy()
    alpha = dtype(-lr)
    for i in np.flatnonzero(X[0]):
        s = alpha * X[0, i]
        want[i] = [_fma(s, dz[j], W0[i, j], dtype) for j in range(n_out)]
    np.testing.assert_array_equal(model.params[0], want)



# around each vector width (8 doubles, 16 floats; 4 and 8 with AVX2) and its multiples:
# the one-row relu pass takes the last elements as one masked vector with AVX-512
ONE_ROW_WIDTHS = [1, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 23, 24, 25, 31, 32, 33, 100]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("n_out", ONE_ROW_WIDTHS)
def test_one_row_bias_gradient_is_the_double_column_sum(activation, n_out, dtype, rng):
    """One row's db (``act_backward_row``: dZ + 0 in the dtype) is bitwise the column
    sums from 0.0 in double of the rows loop, given that row and rows of zero gradient:
    -0 gives +0, NaN stays NaN, and relu's inf at a zero unit is inf * 0 (NaN)."""
    X = rng.standard_normal((3, 5)).astype(dtype)
    W = rng.standard_normal((5, n_out)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    G = np.zeros((3, n_out), dtype)
    G[0] = rng.standard_normal(n_out)
    G[0, 2::5] = np.inf
    G[0, ::3] = -0.0
    G[0, 1::7] = np.nan
    H = F.dense_forward(X, W, b, activation)
    _, _, db_row = F.dense_backward(X[:1], W, H[:1], G[:1], activation)
    _, _, db_rows = F.dense_backward(X, W, H, G, activation)
    np.testing.assert_array_equal(db_row, db_rows)
    assert np.array_equal(np.signbit(db_row), np.signbit(db_rows))
    assert not np.signbit(db_row[::3]).any()


@pytest.mark.parametrize("n_out", ONE_ROW_WIDTHS)
def test_one_row_relu_gradient_is_the_mask_product(n_out, dtype, rng):
    """One row's relu dZ, read through dW = x^T dZ with x = 1 (each element 0 + 1 d),
    is bitwise g where h > 0 and g * 0 elsewhere (NaN and inf g at zero units give NaN,
    -0 g gives +0 through the sum), at every width around the vector boundaries; and
    the row's db is the same d + 0."""
    X = np.ones((1, 1), dtype)
    W = rng.standard_normal((1, n_out)).astype(dtype)
    b = np.where(rng.random(n_out) < 0.5, 4, -4).astype(dtype)   # half the units zero
    b[:2] = [4, -4][:n_out]
    G = rng.standard_normal((1, n_out)).astype(dtype)
    G[0, ::4] = -0.0
    G[0, 1::6] = np.nan
    G[0, 3::5] = np.inf
    H = F.dense_forward(X, W, b, "relu")
    _, dW, db = F.dense_backward(X, W, H, G, "relu")
    with np.errstate(invalid="ignore"):
        d = np.where(H[0] > 0, G[0], G[0] * dtype(0))
    want = d + dtype(0)
    assert (H[0] > 0).any() and (n_out == 1 or (H[0] == 0).any())
    np.testing.assert_array_equal(dW[0], want)
    np.testing.assert_array_equal(db, want)
    assert np.array_equal(np.signbit(db), np.signbit(want))
