"""The training step's forward product of a float32 output layer of a few columns (the
digits net's 10): from NN_SMALL_GEMM_NARROW_MIN_N up to NN_SMALL_GEMM_MIN_N - 1 columns
and at most NN_SMALL_GEMM_NARROW_MAX_MNK multiply-adds it runs through gemm_small.h's
blocked loops with the bias added in their write-back (dense.pxd's ``narrow_forward``),
elsewhere through BLAS and ``bias_act``. The blocked loops form each float32 logit as
one chain of fused multiply-adds from zero in increasing k, then add the bias: checked
here against an exact twin of that chain (``fma_chain_f32``) on any machine. With
OpenBLAS's SkylakeX-family kernels (NumPy's OpenBLAS on AVX-512 CPUs) that is BLAS's
product too, so there the logits must be BLAS's product plus the bias, bit for bit, on
every path; another core (``OPENBLAS_CORETYPE=Haswell``) or BLAS sums in another order,
and the path change shows in the last bits. One step of ``run_epoch`` at lr 0 leaves the
batch's logits in the workspace (``H[L-1]``), compared with ``blas.gemm_py`` on the same
hidden values plus the bias, over output widths on both sides of the bounds, hidden
widths that straddle the loops' row blocks, signed zeros, subnormal and large values.
"""
import ctypes

import numpy as np
import pytest

import nnlib
from nnlib import _paths
from nnlib import optim as O
from nnlib._kernels import blas
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

train = compiled_train()

NM, MIN_N = _paths.path_value("NN_SMALL_GEMM_NARROW_MIN_N"), \
    _paths.path_value("NN_SMALL_GEMM_MIN_N")
MAX_K = _paths.path_value("NN_SMALL_GEMM_MAX_K")
MAX_MNK = _paths.path_value("NN_SMALL_GEMM_MAX_MNK")
NARROW_MNK = _paths.path_value("NN_SMALL_GEMM_NARROW_MAX_MNK")
# (rows B, inputs, hidden h, outputs o): B h o is the forward product's size
CASES = [(13, 5, 20, NM - 1), (13, 5, 20, NM), (13, 5, 37, NM + 1), (32, 64, 100, 10),
         (2, 3, 2, 12), (25, 7, 256, 15), (7, 9, 257, 11), (13, 5, 20, MIN_N),
         (400, 5, 250, 10), (401, 5, 250, 10), (333, 5, 231, 13)]
DTYPES = [np.float32, np.float64]


def _openblas_core():
    """OpenBLAS's kernel family in use (b"SkylakeX"), or None for another BLAS."""
    info = blas.load()
    try:
        corename = ctypes.CDLL(info["path"]).scipy_openblas_get_corename64_
    except (AttributeError, KeyError, OSError, TypeError):
        return None
    corename.restype = ctypes.c_char_p
    return corename()


SKYLAKEX_FAMILY = _openblas_core() in (b"SkylakeX", b"Cooperlake", b"SapphireRapids")


def fma_chain_f32(A, W):
    """(m, n) float32: element (i, j) is fl(... fl(fl(0 + A[i,0] W[0,j]) + A[i,1] W[1,j])
    ...), each step one fused multiply-add rounded once to float32 (``fma_f32``)."""
    acc = np.zeros((A.shape[0], W.shape[1]), np.float32)
    for k in range(A.shape[1]):
        acc = fma_f32(A[:, k:k + 1], W[k:k + 1, :], acc)
    return acc


def fma_f32(a, b, c):
    """a b + c rounded once to float32, elementwise (broadcast; float32 operands). A
    product of two float32 is exact in float64; the sum with c is formed in float64
    rounded to odd (round to nearest, then the error's direction kept in the last bit:
    TwoSum), which rounds to float32 as the exact sum would (53 >= 24 + 2)."""
    p = np.atleast_1d(np.asarray(a, np.float64) * np.asarray(b, np.float64))
    c = np.broadcast_to(np.asarray(c, np.float64), p.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + c
        bv = s - p
        err = (p - (s - bv)) + (c - bv)
        odd = (s.view(np.int64) & 1) == 1
        fix = np.isfinite(s) & (err != 0) & ~odd
        s[fix] = np.nextafter(s[fix], np.where(err[fix] > 0, np.inf, -np.inf))
    return s.astype(np.float32)


def _values(rng, shape, dtype):
    v = rng.standard_normal(shape).astype(dtype)
    pick = rng.random(shape)
    v[pick < 0.15] = 0.0
    v[(pick >= 0.15) & (pick < 0.2)] = -0.0
    tiny = np.finfo(dtype).smallest_subnormal
    v[(pick >= 0.2) & (pick < 0.25)] *= tiny * 64      # subnormal
    v[(pick >= 0.25) & (pick < 0.28)] *= 1e18          # large, finite products
    return v


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", CASES, ids=["x".join(map(str, c)) for c in CASES])
def test_step_logits_are_blas_plus_bias(shape, dtype):
    B, i, h, o = shape
    rng = np.random.default_rng([B, i, h, o])
    model = nnlib.Sequential([nnlib.Dense(i, h, "relu", dtype=dtype, random_state=0),
                              nnlib.Dense(h, o, "identity", dtype=dtype, random_state=1)])
    W1, b1 = model.params[2], model.params[3]
    W1[...] = _values(rng, W1.shape, dtype)
    b1[...] = _values(rng, b1.shape, dtype)
    X, y = rng.standard_normal((B, i)), rng.integers(0, o, B)
    setup = make_setup(train, model, X, y, "softmax_cross_entropy",
                       optimizer=O.SGD(lr=0.0), batch_size=B)
    before = [p.copy() for p in model.params]
    train.run_epoch(setup, np.arange(B, dtype=np.int64), 0)
    H = setup.workspace.H
    # run_epoch formed H_0 from X; the product is checked on the H_0 it formed
    got_h0 = H[0][:B].copy()
    W = np.ascontiguousarray(before[2])
    blocked = dtype == np.float32 and B > 1 and 1 < h <= MAX_K and (
        (NM <= o < MIN_N and B * o * h <= NARROW_MNK)
        or (o >= MIN_N and B * o * h <= MAX_MNK))
    if blocked:      # gemm_small.h's loops (narrow_forward or blocked_product)
        chain = fma_chain_f32(got_h0, W) + before[3]
        assert H[1][:B].tobytes() == chain.tobytes()
    if SKYLAKEX_FAMILY:
        want = np.zeros((B, o), dtype)
        blas.gemm_py(False, False, 1.0, got_h0, W, 0.0, want)
        want = want + before[3]                     # one float addition per element
        assert H[1][:B].tobytes() == want.tobytes()
    elif not blocked:
        pytest.skip("neither path's bits are pinned: the product is BLAS's own on a "
                    f"{_openblas_core()!r} core")
