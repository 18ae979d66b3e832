"""The L2 penalty's sum of squares (``nnlib/_kernels/penalty.h``) and the epoch's reported
loss with L2 (``nnlib/_kernels/train.pyx``).

The sum has one fixed order, part of the reported loss: blocks of 64 values, each in 16
lanes (value i to lane i % 16, a running sum each, fused where the build has FMA), the
lanes added pairwise 16 -> 8 -> 4 -> 2 -> 1, the blocks' sums added in order. Here a
model of that order in exact arithmetic (``fractions.Fraction``: each fused multiply-add
rounded once, as IEEE's fma) must give the compiled sum bit for bit, for lengths around
every lane, block and update-chunk boundary; and the epoch must report, step by step,
``fma(l2/2, pen, loss)`` with that sum, whether it forms the sum itself (first step,
plain SGD's fused step, an update split between threads) or takes it from the update of
the step before (``optim_update_sq``, every other rule on one thread).
"""
import math
from fractions import Fraction

import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib._kernels import optim as K
from nnlib._paths import path_value
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

train = compiled_train()
FUSED = K._SQ_FUSED
BLOCK, LANES = 64, 16
DTYPES = [np.float64, np.float32]


def _fma(x, y, z):
    """x y + z rounded once to double (Fraction's float() rounds to nearest even)."""
    return float(Fraction(x) * Fraction(y) + Fraction(z))


def _add_square(x, acc):
    return _fma(x, x, acc) if FUSED else acc + x * x


def model_sum_squares(a, s=0.0):
    """``s`` plus the squares of ``a`` in penalty.h's order, one rounding per operation."""
    a = [float(v) for v in np.ravel(a)]
    for lo in range(0, len(a), BLOCK):
        lanes = [0.0] * LANES
        for i, x in enumerate(a[lo:lo + BLOCK]):
            lanes[i % LANES] = _add_square(x, lanes[i % LANES])
        for width in (8, 4, 2):
            lanes = [lanes[k] + lanes[k + width] for k in range(width)]
        s = s + (lanes[0] + lanes[1])
    return s


LENGTHS = (list(range(1, 70)) + [79, 80, 81, 127, 128, 129, 511, 512, 513, 575, 1023,
                                   1024, 1025, 1200, 4099])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_sum_of_squares_is_its_documented_order_bit_for_bit(dtype):
    rng = np.random.default_rng(11)
    for n in LENGTHS:
        # magnitudes spread over 2^-20 .. 2^20: the order shows in the last bits
        a = (rng.standard_normal(n) * 2.0 ** rng.integers(-20, 21, n)).astype(dtype)
        s0 = float(rng.standard_normal())
        got = K._sum_squares(a, s0)
        want = model_sum_squares(a, s0)
        assert got == want, (n, got.hex(), want.hex())
        sq = math.fsum(float(v) ** 2 for v in a)
        assert abs(got - (sq + s0)) <= (8 + n / BLOCK) * 2.0 ** -52 * (abs(s0) + sq)


def test_the_model_tells_the_order_apart():
    """The model is not any order's sum: on these values one running sum in index order
    and the blocked order differ, so the test above can fail."""
    a = np.array([1.0] + [2.0 ** -27] * 63)      # squares of 2^-54: half an ulp of 1
    in_order = 0.0
    for v in a:
        in_order += v * v
    assert in_order != model_sum_squares(a)
    assert K._sum_squares(a, 0.0) == model_sum_squares(a)


# (id, optimizer at lr 0, update threads): where the second step's penalty comes from
RULES = [
    ("sgd (fused step: sums at each step)", lambda: O.SGD(lr=0.0), 1),
    ("momentum (optim_update_sq)", lambda: O.SGD(lr=0.0, momentum=0.9), 1),
    ("sklearn-sgd-nesterov (optim_update_sq)",
     lambda: O.SklearnSGD(lr=0.0, momentum=0.9, nesterov=True), 1),
    ("adam (optim_update_sq)", lambda: O.Adam(lr=0.0), 1),
    ("adam, two update threads (sums at each step)", lambda: O.Adam(lr=0.0), 2),
]
SIZES = (40, 30, 7)       # W_0 of 1200 values: 2 update chunks of 512 and a part block
# two update threads split only a layer of PAR_MIN_ELEMS weights or more
PAR_MIN = path_value("PAR_MIN_ELEMS")
SIZES_SPLIT = (190, PAR_MIN // 190 + 1, 3)


def _model(dtype, sizes=SIZES):
    return nnlib.Sequential([
        nnlib.Dense(a, b, "relu" if i == 0 else "identity", dtype=dtype, random_state=i)
        for i, (a, b) in enumerate(zip(sizes, sizes[1:]))])


def _one_epoch(model, X, y, order, make_opt, l2, threads):
    setup = make_setup(train, model, X, y, "softmax_cross_entropy", optimizer=make_opt(),
                       batch_size=1, l2=l2, update_threads=threads)
    out = train.run_epoch(setup, np.asarray(order, dtype=np.int64), 0)
    assert out[3] == 0 and out[4], out
    return out[0]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name, make_opt, threads", RULES, ids=[r[0] for r in RULES])
def test_the_epoch_reports_each_step_with_the_ordered_penalty(name, make_opt, threads,
                                                              dtype):
    """Two steps at batch 1 and lr 0 (the weights stay, so both steps' penalty is the
    same sum P): the reported loss sum is fma(l2/2, P, d_1) + fma(l2/2, P, d_2) in
    double, with d_r the data loss of row r alone (an epoch of that row with l2 0)."""
    rng = np.random.default_rng(12)
    sizes = SIZES if threads == 1 else SIZES_SPLIT
    model = _model(dtype, sizes)
    for p in model.params:      # weights of many magnitudes: the order shows
        p[...] = p * 2.0 ** rng.integers(-6, 7, p.shape)
    X = rng.standard_normal((2, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], 2)
    l2 = 0.37
    data = [_one_epoch(model, X, y, [r], make_opt, 0.0, threads) for r in (0, 1)]
    got = _one_epoch(model, X, y, [0, 1], make_opt, l2, threads)
    pen = 0.0
    for W in model.params[::2]:
        pen = pen + model_sum_squares(W)
    half = 0.5 * l2
    steps = [_fma(half, pen, d) if FUSED else d + half * pen for d in data]
    want = (0.0 + steps[0] * 1.0) + steps[1] * 1.0
    assert got == want, (got.hex(), want.hex())


@pytest.mark.parametrize("dtype, l2, big", [(np.float64, 1.0, 1e160)], ids=["float64"])
def test_a_penalty_past_the_largest_double_stops_the_epoch_at_its_step(dtype, l2, big):
    """A weight whose square overflows the penalty (not the data loss: the weight's input
    is 0) reports a non-finite loss at the first step, before any update. (A float32
    epoch takes an l2 of at most FLT_MAX since session 38, and with weights of at most
    FLT_MAX its penalty stays near 1e115: past the largest double only in float64.)"""
    model = _model(dtype)
    model.layers[0].W[0, 0] = big
    X = np.random.default_rng(13).standard_normal((4, SIZES[0])).astype(dtype)
    X[:, 0] = 0.0
    before = [p.copy() for p in model.params]
    setup = make_setup(train, model, X, np.zeros(4, np.int64), "softmax_cross_entropy",
                       optimizer=O.SGD(lr=0.1), batch_size=2, l2=l2)
    out = train.run_epoch(setup, np.arange(4, dtype=np.int64), 0)
    assert out[2] == 0 and out[3] != 0, out
    assert all(a.tobytes() == b.tobytes() for a, b in zip(model.params, before))


def _in_order_sum(a, s=0.0):
    """``s`` plus the squares of ``a`` added one by one in index order (the old order)."""
    for x in np.ravel(a):
        s = _add_square(float(x), s)
    return s


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name, make_opt, threads", RULES, ids=[r[0] for r in RULES])
def test_each_layers_sum_starts_from_zero_on_every_path(name, make_opt, threads, dtype):
    """The penalty is (0 + S_0) + S_1, each layer's blocked sum from zero, on the first
    step and on the next (the update's sums or the step's own). Weights where the other
    orders show: S_0 = 1 + 14 2^-52 from 1 and 60 values 2^-27 (in index order each
    square, 2^-54, is rounded away), and W_1 holds four values 2^-27, two in each of its
    first two blocks: S_1 = 2^-52 lands on S_0 exactly, where W_1's blocks added one by
    one onto S_0 (one running sum across the layers) are each half an ulp of an even
    significand and round away. X = 0 and a bias margin of 40 keep the data loss under
    half an ulp of the penalty, which l2 = 2 leaves unscaled."""
    sizes = SIZES if threads == 1 else SIZES_SPLIT
    model = _model(dtype, sizes)
    W0, W1 = model.params[0], model.params[2]
    W0[...] = 0.0
    W0.reshape(-1)[:61] = 2.0 ** -27
    W0.reshape(-1)[0] = 1.0
    W1[...] = 0.0
    W1.reshape(-1)[[0, 1, BLOCK, BLOCK + 1]] = 2.0 ** -27
    model.params[1][...] = 0.0
    model.params[3][...] = 0.0
    model.params[3][0] = 40.0
    X = np.zeros((2, sizes[0]), dtype)
    y = np.zeros(2, np.int64)
    l2 = 2.0
    data = [_one_epoch(model, X, y, [r], make_opt, 0.0, threads) for r in (0, 1)]
    got = _one_epoch(model, X, y, [0, 1], make_opt, l2, threads)

    def reported(pen):
        steps = [_fma(0.5 * l2, pen, d) if FUSED else d + 0.5 * l2 * pen for d in data]
        return (0.0 + steps[0] * 1.0) + steps[1] * 1.0

    want = reported((0.0 + model_sum_squares(W0)) + model_sum_squares(W1))
    assert got == want, (got.hex(), want.hex())
    # the weights tell these orders apart, so the assertion above can fail
    chained = model_sum_squares(W1, model_sum_squares(W0))
    in_order = (0.0 + _in_order_sum(W0)) + _in_order_sum(W1)
    assert want != reported(chained) and want != reported(in_order)


# -- the L2 term of the weight gradient, float32 (session 38) -------------------------
from nnlib._reference import train as twin_train          # noqa: E402
from nnlib.exceptions import DTypeRangeError              # noqa: E402


def _one_weight_model(dtype, w):
    model = nnlib.Sequential([nnlib.Dense(1, 1, random_state=0, dtype=dtype)])
    model.layers[0].W[...] = w
    return model


def _loss_grad(module, model, l2):
    setup = make_setup(module, model, np.zeros((2, 1)), np.ones((2, 1)), "squared_error",
                       l2=l2)
    dWs = [np.empty_like(p) for p in model.params[::2]]
    dbs = [np.empty_like(p) for p in model.params[1::2]]
    module.loss_grad(setup, dWs, dbs)
    return dWs[0]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_l2_term_of_the_weight_gradient_rounds_once_as_in_the_twin(dtype):
    # (review of session 37) the compiled loop formed dW + l2 W in float32 with l2
    # rounded to float first (two roundings, and inf for an l2 beyond FLT_MAX), the twin
    # in double: their gradients differed in the last bit, and their statuses where the
    # float32 product overflowed. Both form it in double and round it once now. X = 0
    # makes dW = l2 W alone; the weights are those where the two orders differ.
    rng = np.random.default_rng(5)
    l2 = 0.1
    ws = rng.uniform(0.5, 4.0, 2000).astype(dtype)
    twice = (np.float32(l2) * ws).astype(dtype) if dtype == np.float32 else ws * l2
    once = (l2 * ws.astype(np.float64)).astype(dtype)
    differ = ws[twice != once][:5] if dtype == np.float32 else ws[:5]
    assert differ.size == 5
    for w in differ:
        got = _loss_grad(train, _one_weight_model(dtype, w), l2)
        want = _loss_grad(twin_train, _one_weight_model(dtype, w), l2)
        assert got.tobytes() == want.tobytes(), (w, got, want)
        assert got[0, 0] == dtype(l2 * float(w))


@pytest.mark.parametrize("module", [train, twin_train], ids=["compiled", "twin"])
def test_an_l2_beyond_float32_is_refused_by_both_epoch_setups(module):
    # an l2 of 1e308 with float32 weights: the compiled loop's float l2 was inf and
    # inf * 0 NaN (a NaN gradient from zero weights) where the twin's double product is
    # 0; both refuse it now as fit does, naming it (DTypeRangeError)
    model = _one_weight_model(np.float32, 0.0)
    for l2 in (1e308, 1e39):
        with pytest.raises(DTypeRangeError, match=r"l2=1e\+(308|39) is beyond the range "
                                                  r"of float32"):
            make_setup(module, model, np.zeros((2, 1)), np.ones((2, 1)), "squared_error",
                       l2=l2)
    make_setup(module, _one_weight_model(np.float64, 0.0), np.zeros((2, 1)),
               np.ones((2, 1)), "squared_error", l2=1e308)            # float64 holds it
