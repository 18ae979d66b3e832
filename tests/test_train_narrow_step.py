"""The training step's weight product of a float32 output layer of a few columns (the
digits net's 10): H^T dZ fused into plain SGD's W <- beta W - lr H^T dZ (alpha = -lr,
beta 1 or 1 - lr wd), or formed alone for momentum and Adam (alpha 1, beta 0). From
NN_SMALL_GEMM_NARROW_STEP_MIN_N up to NN_SMALL_GEMM_MIN_N - 1 columns, k = the batch
within NN_SMALL_GEMM_MAX_K and at most NN_SMALL_GEMM_NARROW_STEP_MAX_MNK multiply-adds it
runs through gemm_small.h's blocked loops with OpenBLAS's write-back (dense.pxd's
``narrow_step``: NN_GEMM_ACT_ALPHA_FIRST), elsewhere through BLAS. The loops form each
element as one chain of fused multiply-adds from zero in increasing k, then
fma(beta, W, alpha s) with alpha s rounded first: checked here against an exact twin of
that (test_train_narrow_forward's ``fma_chain_f32`` and ``fma_f32``) on any machine.
With OpenBLAS's SkylakeX-family kernels that is BLAS's result too (its small-matrix
kernel for the product), so there the weights after the step must be ``blas.gemm_py``'s,
bit for bit, on every path; another core or BLAS sums in another order. One step of
``run_epoch`` over the whole batch leaves the output layer's input H_0 and gradient dZ_1
in the workspace; the product is checked on them, over output widths on both sides of
the bounds, hidden widths that straddle the loops' blocks of 16 and 32 rows, batches on
both sides of NN_SMALL_GEMM_MAX_K, signed zeros, subnormal and large weights.
"""
import numpy as np
import pytest

import nnlib
from nnlib import _paths
from nnlib import optim as O
from nnlib._kernels import blas
from nnlib.training import compiled_train
from tests._twin_fit import make_setup
from tests.test_train_narrow_forward import SKYLAKEX_FAMILY, _openblas_core, _values
from tests.test_train_narrow_forward import fma_chain_f32, fma_f32

train = compiled_train()

SM, MIN_N = _paths.path_value("NN_SMALL_GEMM_NARROW_STEP_MIN_N"), \
    _paths.path_value("NN_SMALL_GEMM_MIN_N")
MAX_K = _paths.path_value("NN_SMALL_GEMM_MAX_K")
STEP_MNK = _paths.path_value("NN_SMALL_GEMM_NARROW_STEP_MAX_MNK")
# (rows B, inputs, hidden h, outputs o): h o B is the weight product's size (m n k)
CASES = [(13, 5, 20, SM - 1), (13, 5, 20, SM), (13, 5, 37, SM + 1), (32, 64, 100, 10),
         (2, 3, 2, 12), (25, 7, 3, 15), (7, 9, 17, 11), (13, 5, 20, MIN_N),
         (256, 5, 33, 10), (257, 5, 33, 10), (40, 5, 48, 14), (9, 4, 16, 13),
         (250, 5, 400, 10), (250, 5, 401, 10), (31, 5, 64, 9)]
RULES = {"sgd": lambda: O.SGD(lr=0.1), "sgd-decay": lambda: O.SGD(lr=0.1, weight_decay=0.3),
         "adam": lambda: O.Adam(lr=1e-3)}


def test_the_twin_rounds_alpha_s_first():
    """fma(beta, c, fl(alpha s)) and the one-rounding fma(alpha, s, c) differ where
    alpha s is not a float32: (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46 rounds to 1 + 2^-22,
    which c = -(1 + 2^-22) cancels; fused, 2^-46 is left. The twin tells the two
    write-backs apart."""
    s = alpha = np.float32(1 + 2.0 ** -23)
    c = np.float32(-(1 + 2.0 ** -22))
    two = fma_f32(np.float32(1), c, np.float32(alpha * s))
    one = fma_f32(alpha, s, c)
    assert two[0] == 0 and one[0] == np.float32(2.0 ** -46)


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", CASES, ids=["x".join(map(str, c)) for c in CASES])
def test_step_weights_are_blas_step(shape, dtype, rule):
    B, i, h, o = shape
    rng = np.random.default_rng([B, i, h, o, len(rule)])
    model = nnlib.Sequential([nnlib.Dense(i, h, "relu", dtype=dtype, random_state=0),
                              nnlib.Dense(h, o, "identity", dtype=dtype, random_state=1)])
    W1 = model.params[2]
    W1[...] = _values(rng, W1.shape, dtype)
    X, y = rng.standard_normal((B, i)), rng.integers(0, o, B)
    opt = RULES[rule]()
    setup = make_setup(train, model, X, y, "softmax_cross_entropy", optimizer=opt,
                       batch_size=B)
    before = np.ascontiguousarray(model.params[2]).copy()
    train.run_epoch(setup, np.arange(B, dtype=np.int64), 0)
    ws = setup.workspace
    # the product's operands as the step formed them: H_0 (B, h) and dZ_1 (B, o)
    h0, dz = ws.H[0][:B].copy(), ws.dZ[1][:B].copy()
    if rule == "adam":          # dW_1 = H_0^T dZ_1 alone (alpha 1, beta 0)
        got, alpha, beta = ws.dW[1].reshape(h, o), 1.0, 0.0
    else:                       # fused: W_1 <- beta W_1 - lr H_0^T dZ_1
        got = model.params[2]
        cfg = opt.config()
        alpha, beta = -cfg["lr"], 1.0 - cfg["lr"] * cfg["weight_decay"]
    fa, fb = np.float32(alpha), np.float32(beta)
    blocked = (dtype == np.float32 and B > 1 and h > 1 and 1 < B <= MAX_K
               and SM <= o < MIN_N and h * o * B <= STEP_MNK)
    if blocked:      # gemm_small.h's loops with OpenBLAS's write-back (narrow_step)
        with np.errstate(over="ignore", invalid="ignore"):
            t = (fa * fma_chain_f32(np.ascontiguousarray(h0.T), dz)).astype(np.float32)
        want = t if beta == 0.0 else fma_f32(fb, before, t)
        assert np.ascontiguousarray(got).tobytes() == want.tobytes()
    # mm's loops for 16+ columns (blocked_product) round alpha s + beta W once, as
    # fma(alpha, s, fl(beta W)): not BLAS's bits where beta != 0
    wide = (1 < B <= MAX_K and h > 1 and o >= MIN_N and beta != 0.0
            and h * o * B <= _paths.path_value("NN_SMALL_GEMM_MAX_MNK"))
    if wide and dtype == np.float64:
        pytest.skip("float64's fused step of 16+ columns rounds once, in mm's loops "
                    "(the exact-twin test has no float64 fused multiply-add)")
    if wide:
        with np.errstate(over="ignore", invalid="ignore"):
            s = fma_chain_f32(np.ascontiguousarray(h0.T), dz)
            want = fma_f32(fa, s, before if beta == 1.0 else (fb * before).astype(dtype))
        assert np.ascontiguousarray(got).tobytes() == want.tobytes()
    elif SKYLAKEX_FAMILY:
        want = np.zeros((h, o), dtype) if beta == 0.0 else before.copy()
        blas.gemm_py(True, False, alpha, h0, dz, beta, want)
        assert np.ascontiguousarray(got).tobytes() == want.tobytes()
    elif not blocked:
        pytest.skip("neither path's bits are pinned: the product is BLAS's own on a "
                    f"{_openblas_core()!r} core")
