"""Dense layer kernels and the BLAS binding: vs the NumPy twin, finite differences,
bad input."""
import numpy as np
import pytest

import nnlib._reference as R
import nnlib.functional as F
from nnlib import DTypeError, ShapeError
from nnlib._codes import ACTIVATION_CODES
from nnlib._kernels import blas
from tests.conftest import FD_TOL, central_diff

ACTS = list(ACTIVATION_CODES)
PARAMS = {"leaky_relu": 0.1, "elu": 0.8}
# (n, n_in, n_out): batch 1 and tiny (own loops), medium and large (BLAS), empty edges
SHAPES = [(1, 64, 100), (1, 100, 10), (3, 5, 4), (32, 64, 100), (257, 130, 70),
          (0, 4, 3), (4, 3, 0)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]


def _tol(dtype, k):
    # float32 products accumulate in float32 (as BLAS does): error grows like sqrt(k) ulps
    if dtype == np.float64:
        return dict(rtol=1e-12, atol=1e-12 * max(k, 1))
    return dict(rtol=1e-5, atol=2e-6 * max(k, 1))


def _data(rng, n, n_in, n_out, dtype):
    X = rng.standard_normal((n, n_in)).astype(dtype)
    X[X < -1] = 0   # zeros exercise the zero-skipping row updates
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(max(n_in, 1))).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype) * 0.1
    return X, W, b


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("act", ACTS)
def test_forward_and_backward_match_twin(act, shape, dtype, rng):
    n, n_in, n_out = shape
    X, W, b = _data(rng, n, n_in, n_out, dtype)
    p = PARAMS.get(act)
    H = F.dense_forward(X, W, b, act, p)
    Hr = R.dense_forward(X, W, b, act, p)
    assert H.dtype == dtype and H.shape == (n, n_out)
    np.testing.assert_allclose(H, Hr, **_tol(dtype, n_in))
    G = rng.standard_normal(H.shape).astype(dtype)
    got = F.dense_backward(X, W, H, G, act, p)
    want = R.dense_backward(X, W, H, G, act, p)
    for name, g, w, k in zip(("dX", "dW", "db"), got, want, (n_out, n, n)):
        assert g.dtype == dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, err_msg=name, **_tol(dtype, k))


@pytest.mark.parametrize("act", ACTS)
def test_backward_from_any_output_matches_twin(act, dtype):
    """dense_backward takes H as given, including values no input produces (softplus
    H < 0, sigmoid H > 1, ...): the derivative-from-output formula is evaluated there
    too, the same in the kernel and the twin (found by tests/test_fuzz.py: the
    vectorized softplus path returned 0 for H = -1, the twin 1 - e = -1.718)."""
    H = np.array([[-40.0, -3.0, -1.0, -1e-30, 0.0, 1e-30, 0.5, 1.0, 1.5, 3.0, 60.0]],
                 dtype).T
    n = H.shape[0]
    X, W, G = np.ones((n, 1), dtype), np.ones((1, 1), dtype), np.ones((n, 1), dtype)
    got = F.dense_backward(X, W, H, G, act, PARAMS.get(act))[0]
    want = R.dense_backward(X, W, H, G, act, PARAMS.get(act))[0]
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("n", [1, 3], ids=["one row", "three rows"])
@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_backward_derivative_beyond_float32_range(act, n):
    """An output far out of range (H = 2^64: sigmoid's y(1 - y) and tanh's 1 - y^2 are
    about -2^128, beyond float32's largest value) times a gradient: the product is
    formed in double and rounded once, as the twin computes it, so a zero gradient
    gives 0 and 2^-70 gives -2^58, not NaN and -inf (found by tests/test_fuzz.py:
    the derivative was rounded to float32 first, to -inf)."""
    H = np.full((n, 2), 2.0 ** 64, np.float32)
    G = np.array([[0.0, 2.0 ** -70]] * n, np.float32)
    X, W = np.ones((n, 1), np.float32), np.ones((1, 2), np.float32)
    got = F.dense_backward(X, W, H, G, act)
    want = R.dense_backward(X, W, H, G, act)
    for g, w, name in zip(got, want, ("dX", "dW", "db")):
        assert np.isfinite(g).all(), name
        np.testing.assert_array_equal(g, w, err_msg=name)
    assert got[2][1] == np.float32(-n * 2.0 ** 58)

@pytest.mark.parametrize("act", ACTS)
def test_backward_matches_finite_differences(act, dtype, rng):
    n, n_in, n_out = 3, 4, 5
    X = rng.uniform(-1, 1, (n, n_in))
    W = rng.uniform(-1, 1, (n_in, n_out))
    b = rng.uniform(-1, 1, n_out)
    # keep pre-activations away from the kinks of relu/leaky_relu/elu/sign
    Z = X @ W + b
    b = b + np.where(np.abs(Z).min(axis=0) < 0.1, 0.3, 0.0)
    G = rng.standard_normal((n, n_out))
    p = PARAMS.get(act)

    def objective(Xv, Wv, bv):
        H = F.dense_forward(Xv.astype(dtype), Wv.astype(dtype), bv.astype(dtype), act, p)
        return float(np.sum(G * H.astype(np.float64)))

    h = 1e-3 if dtype == np.float64 else 1e-2
    H = F.dense_forward(X.astype(dtype), W.astype(dtype), b.astype(dtype), act, p)
    dX, dW, db = F.dense_backward(X.astype(dtype), W.astype(dtype), H, G.astype(dtype),
                                  act, p)
    np.testing.assert_allclose(dX, central_diff(lambda v: objective(v, W, b), X, h),
                               **FD_TOL[dtype])
    np.testing.assert_allclose(dW, central_diff(lambda v: objective(X, v, b), W, h),
                               **FD_TOL[dtype])
    np.testing.assert_allclose(db, central_diff(lambda v: objective(X, W, v), b, h),
                               **FD_TOL[dtype])


def test_read_only_and_non_contiguous_inputs(rng):
    X, W, b = _data(rng, 6, 5, 4, np.float64)
    want = R.dense_forward(X, W, b, "tanh")
    for a in (X, W, b):
        a.setflags(write=False)
    np.testing.assert_allclose(F.dense_forward(X, W, b, "tanh"), want, rtol=1e-12)
    Xf = np.asfortranarray(X)
    Wt = np.ascontiguousarray(W.T).T            # a transposed view
    np.testing.assert_allclose(F.dense_forward(Xf, Wt, b[::1], "tanh"), want, rtol=1e-12)
    X2 = np.zeros((6, 10))
    X2[:, ::2] = X
    np.testing.assert_allclose(F.dense_forward(X2[:, ::2], W, b, "tanh"), want,
                               rtol=1e-12)


def test_integer_input_takes_the_weight_dtype(rng):
    W = rng.standard_normal((3, 2)).astype(np.float32)
    H = F.dense_forward(np.array([[1, 0, 2]]), W, np.zeros(2, np.float32))
    assert H.dtype == np.float32
    np.testing.assert_allclose(H[0], W[0] + 2 * W[2], rtol=1e-6)


BAD = [
    ("X columns vs W rows", dict(X=np.zeros((2, 3)), W=np.zeros((4, 2)), b=np.zeros(2)),
     ShapeError, "columns"),
    ("b length", dict(X=np.zeros((2, 3)), W=np.zeros((3, 2)), b=np.zeros(3)),
     ShapeError, "b must have shape"),
    ("X 1-d", dict(X=np.zeros(3), W=np.zeros((3, 2)), b=np.zeros(2)), ShapeError,
     "2-dimensional"),
    ("dtype mix X", dict(X=np.zeros((2, 3), np.float32), W=np.zeros((3, 2)),
                         b=np.zeros(2)), DTypeError, "float32"),
    ("dtype mix b", dict(X=np.zeros((2, 3), np.float32), W=np.zeros((3, 2), np.float32),
                         b=np.zeros(2)), DTypeError, "b has dtype"),
    ("complex", dict(X=np.zeros((2, 3), complex), W=np.zeros((3, 2)), b=np.zeros(2)),
     TypeError, "complex"),
]


@pytest.mark.parametrize("fn", [F.dense_forward, R.dense_forward], ids=["compiled", "twin"])
@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_raises_clear_errors(fn, case):
    _, kw, exc, msg = case
    with pytest.raises(exc, match=msg):
        fn(kw["X"], kw["W"], kw["b"])


def test_bad_activation_and_parameters():
    X, W, b = np.zeros((2, 3)), np.zeros((3, 2)), np.zeros(2)
    with pytest.raises(ValueError, match="unknown activation"):
        F.dense_forward(X, W, b, "swish")
    with pytest.raises(ValueError, match="takes no parameter"):
        F.dense_forward(X, W, b, "relu", 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        F.dense_forward(X, W, b, "leaky_relu", -0.5)
    H = np.zeros((2, 2))
    with pytest.raises(ShapeError, match="grad_H"):
        F.dense_backward(X, W, H, np.zeros((3, 2)))
    with pytest.raises(ShapeError, match="H must have shape"):
        F.dense_backward(X, W, np.zeros((2, 3)), H)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_all_transposes(ta, tb, dtype, rng):
    m, n, k = 7, 5, 9
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    C = rng.standard_normal((m, n)).astype(dtype)
    want = 1.5 * (A.T if ta else A).astype(np.float64) @ (B.T if tb else B) + 0.25 * C
    blas.gemm_py(ta, tb, 1.5, A, B, 0.25, C)
    np.testing.assert_allclose(C, want, **_tol(dtype, k))


def test_gemm_rejects_misaligned_shapes():
    with pytest.raises(ValueError, match="do not align"):
        blas.gemm_py(False, False, 1.0, np.zeros((2, 3)), np.zeros((4, 2)), 0.0,
                     np.zeros((2, 2)))


def test_blas_prefers_numpy_and_falls_back_to_scipy(rng):
    info = blas.load()
    assert info["source"] in ("numpy", "scipy")
    pytest.importorskip("scipy.linalg.cython_blas")
    try:
        blas._reset_for_tests()
        assert blas.load(prefer="scipy")["int_bits"] == 32
        A, B = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
        np.testing.assert_allclose(blas.gemm_py(False, False, 1.0, A, B, 0.0,
                                                np.zeros((4, 5))), A @ B, rtol=1e-12)
    finally:
        blas._reset_for_tests()
        blas.load()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_native_byte_order_arrays_are_read_as_their_values(dtype):
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal((3, 2)).astype(dtype)
    b, G = rng.standard_normal(2).astype(dtype), rng.standard_normal((4, 2)).astype(dtype)
    sw = np.dtype(dtype).newbyteorder("S")
    H = F.dense_forward(X, W, b, "tanh")
    Hs = F.dense_forward(X.astype(sw), W.astype(sw), b.astype(sw), "tanh")
    assert Hs.dtype == dtype
    np.testing.assert_array_equal(Hs, H)
    for a, c in zip(F.dense_backward(X.astype(sw), W.astype(sw), H.astype(sw),
                                     G.astype(sw), "tanh"),
                    F.dense_backward(X, W, H, G, "tanh")):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("n_out", [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100])
def test_relu_batch_gradient_is_the_mask_product(n_out, dtype, rng):
    """A batch's relu backward (act_row.h's select over columns): the bias gradient is
    bitwise the column sums, in double and row order, of g where h > 0 and g * 0
    elsewhere, at widths around every vector width (the select's whole vectors and its
    single columns), -0 gradients included."""
    n = 7
    X = rng.standard_normal((n, 4)).astype(dtype)
    W = rng.standard_normal((4, n_out)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    G = rng.standard_normal((n, n_out)).astype(dtype)
    G[::2, ::3] = -0.0
    H = F.dense_forward(X, W, b, "relu")
    db = F.dense_backward(X, W, H, G, "relu")[2]
    d = np.where(H > 0, G, G * dtype(0))
    want = np.cumsum(d.astype(np.float64), axis=0)[-1].astype(dtype)
    assert (H == 0).any() and (H > 0).any()
    np.testing.assert_array_equal(db, want)


@pytest.mark.parametrize("n_out", [15, 16, 17, 33, 512, 515])
def test_relu_batch_gradient_keeps_nonfinite_gradients(n_out, dtype, rng):
    """The batch's relu select (act_row.h's columns form: whole vectors, then the last
    columns) passes an infinite or NaN gradient where h > 0 and makes g * 0 of it (NaN)
    elsewhere, as the generic loop's mask product does; the bias gradient's sums are
    bitwise those, in double and row order, at widths around the vector widths and at
    the large network's 512."""
    n = 9
    X = rng.standard_normal((n, 4)).astype(dtype)
    W = rng.standard_normal((4, n_out)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    G = rng.standard_normal((n, n_out)).astype(dtype)
    G[1, ::5] = np.inf
    G[4, 2::7] = -np.inf
    G[6, 1::3] = np.nan
    H = F.dense_forward(X, W, b, "relu")
    with np.errstate(invalid="ignore"):
        d = np.where(H > 0, G, G * dtype(0))
        want = np.cumsum(d.astype(np.float64), axis=0)[-1].astype(dtype)
        db = F.dense_backward(X, W, H, G, "relu")[2]
    assert (H == 0).any() and (H > 0).any()
    np.testing.assert_array_equal(db, want)
