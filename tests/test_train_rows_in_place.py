"""The first layer reading the batch's rows of X in place (``nnlib/_kernels/train.pyx``:
dense rows, no dropout, both first-layer products in gemm_small.h's blocked loops,
``dense.pxd``'s ``rows_in_place``) instead of a gathered copy: each element of the
forward X_b W_0 and of the weight product X_b^T dZ_0 (plain SGD's fused step, or the
gradient of another rule: Adam, scikit-learn's SGD with momentum, with L2 and without,
parameter groups of both kinds) is the same chain either way, so an epoch
with it on and off (``train._set_rows_in_place``) must give bitwise the same loss sum,
weights and counts, in float32 and float64, relu and identity first layers, rows whose
width is not a whole number of cache lines, a short last batch (and a last batch of one
row), hidden widths around the loops' panels, batches at and above
NN_SMALL_GEMM_MAX_K rows (above: gathered again), weight decay (beta != 1), and several
epochs in one call (the order changes between batches).
"""
import numpy as np
import pytest

from nnlib import _paths, optim
from nnlib.training import compiled_train
from tests._twin_fit import two_epochs

train = compiled_train()

MAX_K = _paths.path_value("NN_SMALL_GEMM_MAX_K")
# (rows N, features d, hidden, outputs, batch, first activation, weight decay)
CASES = [(301, 37, 20, 4, 16, "relu", 0.0), (301, 64, 100, 10, 32, "relu", 0.0),
         (257, 13, 70, 3, 32, "identity", 0.0), (300, 5, 16, 2, 7, "relu", 0.01),
         (601, 9, 33, 5, MAX_K, "relu", 0.0), (601, 9, 33, 5, MAX_K + 1, "relu", 0.0),
         (97, 2, 17, 3, 8, "relu", 0.0)]
DTYPES = [np.float64, np.float32]


def _epochs(dtype, case, in_place):
    previous = train._set_rows_in_place(in_place)
    try:
        return two_epochs(train, dtype, case)[:2]
    finally:
        train._set_rows_in_place(previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=["x".join(map(str, c[:5])) + "-" + c[5]
                                             for c in CASES])
def test_rows_in_place_change_no_value(case, dtype):
    got, want = _epochs(dtype, case, True), _epochs(dtype, case, False)
    assert got[0] == want[0]
    assert all(o[3] == 0 and o[2] == -(-case[0] // case[4]) for o in got[0])
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        assert a.tobytes() == b.tobytes(), f"param {i} differs"


# rules that step a gradient (the estimators' adam and sgd), with l2 per batch as the
# estimators' and without, and parameter groups: W_0 plain SGD with W_1 Adam, and back
RULES = [("adam", lambda m: optim.SklearnAdam(m.params, lr=0.01), {}),
         ("adam-l2", lambda m: optim.SklearnAdam(m.params, lr=0.01),
          {"l2": 1e-3, "l2_per_batch": True}),
         ("sklearn-sgd-l2", lambda m: optim.SklearnSGD(m.params, lr=0.05, momentum=0.9),
          {"l2": 1e-3, "l2_per_batch": True}),
         ("momentum", lambda m: optim.SGD(m.params, lr=0.05, momentum=0.9), {}),
         ("groups-plain-first", lambda m: _groups(m, 0.0, 0.9), {}),
         ("groups-momentum-first", lambda m: _groups(m, 0.9, 0.0), {})]


def _groups(model, first, second):
    """SGD whose W_0, b_0 step with momentum ``first`` and W_1, b_1 with ``second``
    (parameter groups: 0 is plain SGD, fused with the product; 0.9 a gradient rule)."""
    return optim.SGD([{"params": model.params[:2], "momentum": first},
                      {"params": model.params[2:], "momentum": second}], lr=0.05)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("rule", RULES, ids=[r[0] for r in RULES])
@pytest.mark.parametrize("case", CASES[:3] + CASES[4:6],
                         ids=["x".join(map(str, c[:5])) + "-" + c[5]
                              for c in CASES[:3] + CASES[4:6]])
def test_rows_in_place_change_no_value_under_other_rules(case, rule, dtype):
    _, make, kw = rule
    got, want = (_rule_epochs(dtype, case, make, kw, on) for on in (True, False))
    assert got[0] == want[0]
    assert all(o[3] == 0 and o[2] == -(-case[0] // case[4]) for o in got[0])
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        assert a.tobytes() == b.tobytes(), f"param {i} differs"


def _rule_epochs(dtype, case, make, kw, in_place):
    previous = train._set_rows_in_place(in_place)
    try:
        return two_epochs(train, dtype, case, optimizer=make, **kw)[:2]
    finally:
        train._set_rows_in_place(previous)


def test_the_hook_restores_the_default():
    assert train._set_rows_in_place(False) is True
    assert train._set_rows_in_place(True) is False
