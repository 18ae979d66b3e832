"""The epoch's float32 PyTorch SGD (momentum), Adam and AdamW updates run optim_f32.h's
explicit loops where they are built (``optim_rules.explicit_f32``, as the standalone
step), and give bitwise what the generic loop gives.

Nothing in the results shows which loop ran (they are the same by design), so each case
reads the module's count of updates sent to the explicit loops (``train._explicit_f32``):
every weight and bias update of every step must be counted where the rule's loop is
built (AVX2 and FMA), none where it is not or with the switch off.
The same epoch with the switch off (the generic loop only) must end with the same
weights, states and loss to the bit: on one thread (``optim_update``, and with L2 the
penalty-sum path ``optim_update_sq``) and on two (``optim_update_threads`` splitting a
layer of at least PAR_MIN_ELEMS weights). A step whose update overflows is still refused
by the fit with the weights and state it had.
"""
import numpy as np
import pytest

import nnlib
import nnlib.optim as O
from nnlib._paths import path_value
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

compiled = compiled_train()
SGD_BUILT, ADAM_BUILT = compiled._explicit_f32()[:2]
PAR_MIN = path_value("PAR_MIN_ELEMS")

# (id, optimizer, fit-level L2, update threads): Adam's lerp both ways (beta1 0.9 and
# 0.3), its L2 term, amsgrad, AdamW; PyTorch's SGD with momentum, nesterov, dampening and
# decay; L2 through the penalty-sum path (Adam, SGD); two threads on a layer split by
# update_threads
CASES = [
    ("adam", lambda: O.Adam(lr=1e-3), 0.0, 1),
    ("adam-amsgrad", lambda: O.Adam(lr=1e-2, amsgrad=True), 0.0, 1),
    ("adam-wd-beta1-0.3", lambda: O.Adam(lr=1e-2, weight_decay=0.01, betas=(0.3, 0.99)),
     0.0, 1),
    ("adamw", lambda: O.AdamW(lr=1e-2, weight_decay=0.01), 0.0, 1),
    ("adamw-amsgrad", lambda: O.AdamW(lr=1e-2, weight_decay=0.5, amsgrad=True), 0.0, 1),
    ("adam-l2", lambda: O.Adam(lr=1e-2), 1e-3, 1),
    ("adamw-amsgrad-l2", lambda: O.AdamW(lr=1e-2, amsgrad=True), 1e-2, 1),
    ("adam-2-threads", lambda: O.Adam(lr=1e-3), 0.0, 2),
    ("adam-amsgrad-l2-2-threads", lambda: O.Adam(lr=1e-3, amsgrad=True), 1e-3, 2),
    ("momentum", lambda: O.SGD(lr=0.01, momentum=0.9), 0.0, 1),
    ("nesterov-wd", lambda: O.SGD(lr=0.01, momentum=0.9, nesterov=True,
                                  weight_decay=0.01), 0.0, 1),
    ("momentum-dampening-l2", lambda: O.SGD(lr=0.05, momentum=0.8, dampening=0.3),
     1e-3, 1),
    ("momentum-l2", lambda: O.SGD(lr=0.01, momentum=0.9), 1e-3, 1),
    ("momentum-2-threads", lambda: O.SGD(lr=0.01, momentum=0.9), 0.0, 2),
]


def _epochs(make_opt, l2, threads, explicit, dtype=np.float32):
    """Two run_epoch calls (8 steps of 16 rows, step0 0 then 4) from one seeded start:
    (weights and states, the calls' loss sums, updates counted as explicit)."""
    rng = np.random.default_rng(3)
    # the digits net, or (two threads) one whose first layer update_threads splits
    sizes = (64, 100, 10) if threads == 1 else (190, PAR_MIN // 190 + 1, 3)
    X = rng.standard_normal((64, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], 64)
    model = nnlib.Sequential([nnlib.Dense(a, b, "relu" if i == 0 else "identity",
                                          dtype=dtype, random_state=i)
                              for i, (a, b) in enumerate(zip(sizes, sizes[1:]))])
    opt = make_opt()
    was = compiled._explicit_f32(explicit)[3]
    try:
        setup = make_setup(compiled, model, X, y, "softmax_cross_entropy", optimizer=opt,
                           batch_size=16, l2=l2, update_threads=threads)
        count = compiled._explicit_f32()[2]
        losses = []
        for step0 in (0, 4):
            out = compiled.run_epoch(setup, rng.permutation(64).astype(np.int64), step0)
            assert out[2] == 4 and out[3] == 0 and out[4], out
            losses.append(out[0])
        count = compiled._explicit_f32()[2] - count
    finally:
        compiled._explicit_f32(was)
    arrays = [p.copy() for p in model.params] + [s.copy() for s in
                                                 opt.state_arrays(model.params)]
    return arrays, losses, count


@pytest.mark.parametrize("name, make_opt, l2, threads", CASES,
                         ids=[c[0] for c in CASES])
def test_epoch_takes_the_explicit_loops_and_matches_the_generic_loop(name, make_opt, l2,
                                                                     threads):
    built = ADAM_BUILT if name.startswith("adam") else SGD_BUILT
    fast, fast_losses, fast_count = _epochs(make_opt, l2, threads, True)
    slow, slow_losses, slow_count = _epochs(make_opt, l2, threads, False)
    # every step updates 2 weight and 2 bias arrays, none on plain SGD's fused paths
    assert fast_count == (8 * 4 if built else 0)
    assert slow_count == 0
    assert [a.tobytes() for a in fast] == [a.tobytes() for a in slow]
    assert np.array(fast_losses).tobytes() == np.array(slow_losses).tobytes()
    assert all(np.isfinite(a).all() for a in fast)


def test_float64_epoch_takes_no_explicit_loop():
    _, _, count = _epochs(lambda: O.Adam(lr=1e-3), 1e-3, 1, True, np.float64)
    assert count == 0
    _, _, count = _epochs(lambda: O.SGD(lr=0.01, momentum=0.9), 0.0, 1, True, np.float64)
    assert count == 0


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "generic"])
@pytest.mark.parametrize("make_opt", [lambda: O.Adam(lr=1e-3),
                                      lambda: O.AdamW(lr=1e-3, amsgrad=True)],
                         ids=["adam", "adamw-amsgrad"])
def test_an_update_that_overflows_the_state_is_refused_with_weights_and_state_kept(
        make_opt, explicit):
    """Gradients near 1e22 (inputs that large, finite loss) square past float32's max in
    exp_avg_sq at the first step: the fit rewinds and refuses that step, leaving the
    weights, the state and the step count as they were, whichever loop ran it."""
    rng = np.random.default_rng(4)
    X = (rng.standard_normal((32, 64)) * 1e22).astype(np.float32)
    y = rng.integers(0, 10, 32)
    model = nnlib.Sequential([nnlib.Dense(64, 10, dtype=np.float32, random_state=0)])
    opt = make_opt()
    before = [p.copy() for p in model.params]
    was = compiled._explicit_f32(explicit)[3]
    try:
        count = compiled._explicit_f32()[2]
        with pytest.warns(RuntimeWarning, match="non-finite"):
            hist = model.fit(X, y, optimizer=opt, epochs=2, batch_size=16,
                             random_state=0, n_threads=1)
        count = compiled._explicit_f32()[2] - count
    finally:
        compiled._explicit_f32(was)
    assert hist.nonfinite == {"epoch": 0, "step": 0,
                              "what": "weights or optimizer state after an update",
                              "cause": hist.nonfinite["cause"]}
    assert "whose square (an optimizer's state" in hist.nonfinite["cause"]
    for a, b in zip(model.params, before):
        assert a.tobytes() == b.tobytes()
    for s in opt.state_arrays(model.params):
        assert not s.any()
    assert opt.t == 0
    # the run, its checked replay: both updated through the explicit loop where built
    assert count >= (4 if explicit and ADAM_BUILT else 0)
    assert explicit and ADAM_BUILT or count == 0
