"""Plain SGD at batch 1: the compiled epoch's first-layer step fused with the next row's
product (``first_layer_step_and_product``) gives bitwise the unfused steps.

A call of ``run_epoch`` with ``max_steps=1`` never fuses (its step has no next one in
the call), so one step per call is the unfused reference; a whole-epoch call fuses every
step but the last where the layer allows it (plain SGD, no decay, dense rows, no
dropout, a first layer at most NN_FUSED_MAX_COLS wide; on a build without AVX-512 it
never fuses and the comparison holds trivially).
"""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

compiled = compiled_train()
N = 11


def _model(n_in, hidden, dtype, act="relu"):
    return nnlib.Sequential([nnlib.Dense(n_in, hidden, act, dtype=dtype, random_state=1),
                             nnlib.Dense(hidden, 3, dtype=dtype, random_state=2)])


def _data(n_in, dtype):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, n_in)).astype(dtype)
    X[X < -0.3] = 0         # rows share some zero pixels, not all (the union of rows)
    return X, rng.integers(0, 3, N)


def _run(model, X, y, order, calls, momentum=0.0, l2=0.0):
    """``run_epoch`` over ``order`` in calls of ``calls`` steps (None: one call)."""
    setup = make_setup(compiled, model, X, y, "softmax_cross_entropy",
                       optimizer=O.SGD(lr=0.3, momentum=momentum), batch_size=1, l2=l2)
    outs, start = [], 0
    while start < len(order):
        out = compiled.run_epoch(setup, order[start:], start,
                                 -1 if calls is None else calls)
        outs.append(out)
        start += out[2]
        if out[3] != 0 or out[2] == 0:
            break
    return outs, [p.copy() for p in model.params]


def _same(a, b):
    for p, q in zip(a, b):
        assert np.array_equal(p, q) and np.array_equal(np.signbit(p), np.signbit(q))


# every count of whole vectors the fused pass is compiled for (0 .. 8: 16 float32 or 8
# float64 lanes), each with and without a remainder, and one past its widest row
HIDDEN = [1, 10, 15, 16, 17, 31, 33, 47, 49, 63, 64, 65, 79, 81, 95, 97, 100, 111, 113,
          127, 128, 129]


@pytest.fixture(params=[True, False], ids=["padded", "unpadded"])
def padded(request):
    """W_0 stepped in its padded copy (rows whole lines; in every call, however few its
    steps) or in place (rows n apart)."""
    before = compiled._set_copies("padded", request.param)
    steps_before = compiled._set_padded_min_steps(0, 0)
    yield request.param
    compiled._set_copies("padded", before)
    compiled._set_padded_min_steps(*steps_before)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("n_in", [3, 64, 70])
def test_fused_epoch_equals_one_step_per_call(n_in, hidden, dtype, padded):
    X, y = _data(n_in, dtype)
    order = np.random.default_rng(3).permutation(N).astype(np.int64)
    order[4] = order[3]         # the same row twice in a row
    fused, W_fused = _run(_model(n_in, hidden, dtype), X, y, order, None)
    steps, W_steps = _run(_model(n_in, hidden, dtype), X, y, order, 1)
    _same(W_fused, W_steps)
    assert fused[0][1:4] == (N, N, 0)
    assert fused[0][0] == sum(o[0] for o in steps)


@pytest.mark.parametrize("case", ["l2", "tanh", "momentum"])
def test_unfused_cases_still_match(case, dtype):
    """With decay (no rank-one update) or another rule the general path runs; another
    activation fuses as relu does (the fused pass is the product only). Each gives the
    weights of its single steps."""
    X, y = _data(64, dtype)
    order = np.random.default_rng(4).permutation(N).astype(np.int64)
    kw = {"l2": 0.01} if case == "l2" else {"momentum": 0.5} if case == "momentum" else {}
    act = "tanh" if case == "tanh" else "relu"
    fused, W_fused = _run(_model(64, 100, dtype, act), X, y, order, None, **kw)
    steps, W_steps = _run(_model(64, 100, dtype, act), X, y, order, 1, **kw)
    _same(W_fused, W_steps)
