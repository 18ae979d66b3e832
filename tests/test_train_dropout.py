"""Dropout inside the compiled epoch (``nnlib/_kernels/train.pyx``) and its NumPy twin.

* ``run_epoch`` with dropouts at every kind of position (the input, between layers,
  the output, several at one position) against the twin, float32 and float64, over the
  fused SGD step and the rules' update, batch 1 and longer batches, weighted rows;
* the gradient of one training step with its masks fixed (``loss_grad(train_step=t)``)
  against finite differences, and ``run_epoch``'s step along it; a batch split into
  parts by ``batch_rows`` adds up to the whole batch;
* masks as pure functions of the step: independent of the thread count and of how an
  epoch is cut into calls; rate 0 equal to no dropout, bit for bit;
* ``Sequential.fit``: a model with Dropout trains in the compiled epoch (never
  ``BatchRun``), equals the twin's restatement of fit and the per-batch Python path,
  is bit-reproducible from ``random_state``, and ``predict``/``evaluate`` skip dropout;
* the checks: bad dropout specs, sparse X with input dropout, counters out of range.
"""
import threading

import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib._reference import train as twin
from nnlib.layers import Dense, Dropout
from nnlib.training import compiled_train
from tests._twin_fit import make_setup, reference_fit
from tests.conftest import central_diff_in_place

compiled = compiled_train()

N, D = 13, 4
DTYPES = [("f32", np.float32), ("f64", np.float64)]
ULPS = {np.float32: 32, np.float64: 32}     # normwise, as tests/test_train_twin.py
# (id, dropout layers by position: 0 the input, 1 and 2 between the Dense layers, 3 the
# output). Positions hold [rate, ...], several applying in order.
PLACEMENTS = [
    ("hidden", {1: [0.5]}),
    ("input-and-hidden", {0: [0.2], 2: [0.3]}),
    ("output", {3: [0.25]}),
    ("two-at-one-position", {1: [0.5, 0.3], 2: [0.1]}),
]
OPTIMIZERS = [("sgd-fused", lambda: O.SGD(lr=0.1)),
              ("momentum", lambda: O.SGD(lr=0.05, momentum=0.9)),
              ("adam", lambda: O.Adam(lr=0.01, eps=1e-3))]


def _model(placement, dtype=np.float64, acts=("tanh", "relu"), seeds=True):
    """Dense D -> 16 -> 16 -> 3 with Dropout layers where ``placement`` says."""
    sizes = [D, 16, 16, 3]
    acts = list(acts) + ["identity"]
    layers, k = [], 0
    for pos in range(4):
        for rate in placement.get(pos, []):
            layers.append(Dropout(rate, random_state=100 + k if seeds else None))
            k += 1
        if pos < 3:
            layers.append(Dense(sizes[pos], sizes[pos + 1], acts[pos], dtype=dtype,
                                random_state=pos))
    model = nnlib.Sequential(layers)
    rng = np.random.default_rng(0)
    for p in model.params[1::2]:
        p[...] = rng.uniform(-0.5, 0.5, p.shape)
    return model


def _copy(model):
    clone = nnlib.Sequential([
        Dense(l.n_in, l.n_out, l.activation, dtype=l.dtype, init="zeros")
        if isinstance(l, Dense) else Dropout(l.rate, random_state=l.seed)
        for l in model.layers])
    for p, q in zip(clone.params, model.params):
        p[...] = q
    return clone


def _data(n=N, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)), rng.integers(0, 3, n)


def _assert_close(got, want, dtype, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.abs(want).max(initial=0.0)), np.finfo(dtype).tiny)
    err = float(np.abs(got - want).max(initial=0.0))
    assert err <= ULPS[dtype] * np.finfo(dtype).eps * scale, (
        f"{what}: {err / (np.finfo(dtype).eps * scale):.1f} ulps of {scale:.3g}")


def _seeded(setup, seeds=(11, 12, 13, 14), offsets=(5, 0, 2**64 - 1, 7)):
    n = len(setup.network.dropout)
    setup.set_dropout(list(seeds)[:n], list(offsets)[:n])
    return setup


def _train(module, model, X, y, make_opt, batch_size, max_steps=-1, **kw):
    opt = make_opt()
    setup = _seeded(make_setup(module, model, X, y, "softmax_cross_entropy",
                               optimizer=opt, batch_size=batch_size, **kw))
    rng = np.random.default_rng(2)
    results, step0 = [], 0
    for _ in range(2):
        out = module.run_epoch(setup, rng.permutation(X.shape[0]), step0, max_steps)
        results.append(out)
        step0 += out[2]
    return results, [p.copy() for p in model.params], [
        s.copy() for s in setup.states if s is not None]


CASES = [(p, o, b, d) for p in PLACEMENTS for o in OPTIMIZERS
         for b in (1, 5) for d in DTYPES]


@pytest.mark.parametrize("placement, opt, batch, dt", CASES,
                         ids=[f"{p[0]}-{o[0]}-batch{b}-{d[0]}" for p, o, b, d in CASES])
def test_run_epoch_with_dropout_equals_the_twin(placement, opt, batch, dt):
    model = _model(placement[1], dt[1])
    X, y = _data()
    weights = np.random.default_rng(3).uniform(0.5, 2.0, N) if batch == 5 else None
    twin_model = _copy(model)
    got = _train(compiled, model, X, y, opt[1], batch, sample_weight=weights, l2=0.01)
    want = _train(twin, twin_model, X, y, opt[1], batch, sample_weight=weights, l2=0.01)
    for g, w in zip(got[0], want[0]):
        assert g[1:] == w[1:]
        _assert_close(g[0], w[0], dt[1], "loss_sum")
    for i, (g, w) in enumerate(zip(got[1] + got[2], want[1] + want[2])):
        _assert_close(g, w, dt[1], f"array {i}")


def test_dropout_changes_training_and_the_masks_follow_the_seeds():
    X, y = _data()
    plain = _train(compiled, _model({}), X, y, OPTIMIZERS[0][1], 5)[1]
    a = _train(compiled, _model({1: [0.5]}), X, y, OPTIMIZERS[0][1], 5)[1]
    b = _train(compiled, _model({1: [0.5]}), X, y, OPTIMIZERS[0][1], 5)[1]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a[0], plain[0])
    model = _model({1: [0.5]})
    setup = make_setup(compiled, model, X, y, "softmax_cross_entropy",
                       optimizer=O.SGD(lr=0.1), batch_size=5)
    setup.set_dropout([99], [5])                            # another seed
    compiled.run_epoch(setup, np.random.default_rng(2).permutation(N), 0)
    assert not np.array_equal(model.params[0], a[0])


# ------------------------------------------------- the step's gradient, masks fixed

FD_CASES = [(p, d) for p in PLACEMENTS for d in ("tanh", "sigmoid")]


@pytest.mark.parametrize("placement, act", FD_CASES,
                         ids=[f"{p[0]}-{a}" for p, a in FD_CASES])
def test_the_training_gradient_with_fixed_masks_is_the_finite_difference(placement, act):
    model = _model(placement[1], acts=(act, act))
    X, y = _data()
    t = 4

    def loss_grad(module, m):
        setup = _seeded(make_setup(module, m, X, y, "softmax_cross_entropy", l2=0.1))
        dWs = [np.empty_like(W) for W in m.params[0::2]]
        dbs = [np.empty_like(b) for b in m.params[1::2]]
        value, status = module.loss_grad(setup, dWs, dbs, train_step=t)
        assert status == 0
        return value, [g for pair in zip(dWs, dbs) for g in pair]

    value, grads = loss_grad(compiled, model)
    want, want_grads = loss_grad(twin, _copy(model))
    _assert_close(value, want, np.float64, "loss")
    for i, (g, w) in enumerate(zip(grads, want_grads)):
        _assert_close(g, w, np.float64, f"gradient {i}")
    for i, p in enumerate(model.params):
        fd = central_diff_in_place(lambda: loss_grad(compiled, model)[0], p, h=1e-4)
        np.testing.assert_allclose(grads[i], fd, rtol=1e-6, atol=1e-8,
                                   err_msg=f"parameter {i}")
    # the masks are the training step's: at inference the objective is another one
    setup = make_setup(compiled, model, X, y, "softmax_cross_entropy", l2=0.1)
    dWs = [np.empty_like(W) for W in model.params[0::2]]
    dbs = [np.empty_like(b) for b in model.params[1::2]]
    assert compiled.loss_grad(setup, dWs, dbs)[0] != value


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
def test_run_epoch_steps_along_the_gradient_of_its_masks(module):
    """One full-batch plain-SGD step at update t = step0 + 1 is W - lr * the gradient of
    loss_grad(train_step=t): the epoch's forward, backward and masks are that function's."""
    model = _model({0: [0.2], 1: [0.5], 3: [0.3]})
    X, y = _data()
    grads_setup = _seeded(make_setup(module, model, X, y, "softmax_cross_entropy"))
    dWs = [np.empty_like(W) for W in model.params[0::2]]
    dbs = [np.empty_like(b) for b in model.params[1::2]]
    module.loss_grad(grads_setup, dWs, dbs, train_step=8)
    before = [p.copy() for p in model.params]
    setup = _seeded(make_setup(module, model, X, y, "softmax_cross_entropy",
                               optimizer=O.SGD(lr=0.1), batch_size=N))
    assert module.run_epoch(setup, np.arange(N), 7)[2] == 1
    for p, p0, g in zip(model.params, before, [g for pr in zip(dWs, dbs) for g in pr]):
        np.testing.assert_allclose(p, p0 - 0.1 * g, rtol=1e-13, atol=1e-15)


# ------------------------------------------- a batch split over calls (batch_rows)

def _grads(module, model, X, y, t, batch_rows=None):
    setup = _seeded(make_setup(module, model, X, y, "softmax_cross_entropy"))
    dWs = [np.empty_like(W) for W in model.params[0::2]]
    dbs = [np.empty_like(b) for b in model.params[1::2]]
    value, status = module.loss_grad(setup, dWs, dbs, train_step=t,
                                     batch_rows=batch_rows)
    assert status == 0
    return value, [g for pair in zip(dWs, dbs) for g in pair]


SPLIT_CASES = [(p, d) for p in PLACEMENTS for d in DTYPES]


@pytest.mark.parametrize("placement, dt", SPLIT_CASES,
                         ids=[f"{p[0]}-{d[0]}" for p, d in SPLIT_CASES])
def test_a_batch_split_by_batch_rows_adds_up_to_the_whole_batch(placement, dt):
    """The parts of one batch, each with its rows' positions as ``batch_rows``, weighted
    by their share of the rows, give the whole batch's loss and gradient (as nnlib.dask's
    workers sum them); each part's gradient equals the twin's."""
    model = _model(placement[1], dt[1])
    X, y = _data()
    t = 6
    whole, whole_grads = _grads(compiled, model, X, y, t)
    parts = [np.array([0, 3, 4, 9, 12]), np.array([1, 2, 5, 6, 7, 8, 10, 11])]
    value, grads = 0.0, [np.zeros_like(p, np.float64) for p in model.params]
    for rows in parts:
        part, part_grads = _grads(compiled, model, X[rows], y[rows], t, batch_rows=rows)
        want, want_grads = _grads(twin, _copy(model), X[rows], y[rows], t,
                                  batch_rows=rows)
        _assert_close(part, want, dt[1], "part loss")
        for i, (g, w) in enumerate(zip(part_grads, want_grads)):
            _assert_close(g, w, dt[1], f"part gradient {i}")
        value += part * len(rows) / N
        for acc, g in zip(grads, part_grads):
            acc += g * (len(rows) / N)
    _assert_close(value, whole, dt[1], "loss")
    for i, (g, w) in enumerate(zip(grads, whole_grads)):
        _assert_close(g, w, dt[1], f"gradient {i}")
    # the positions matter: the same rows as the batch's first rows draw other masks
    assert _grads(compiled, model, X[parts[0]], y[parts[0]], t)[0] != _grads(
        compiled, model, X[parts[0]], y[parts[0]], t, batch_rows=parts[0])[0]


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
def test_batch_rows_of_the_batch_itself_are_the_default_bit_for_bit(module):
    model = _model({1: [0.5], 3: [0.25]})
    X, y = _data()
    value, grads = _grads(module, model, X, y, 3)
    value2, grads2 = _grads(module, model, X, y, 3, batch_rows=np.arange(N, dtype=np.uint8))
    assert value == value2
    for g, h in zip(grads, grads2):
        np.testing.assert_array_equal(g, h)


BAD_BATCH_ROWS = [
    ("no-train-step", dict(batch_rows=np.arange(N)), ValueError, "needs train_step"),
    ("short", dict(train_step=1, batch_rows=np.arange(N - 1)), ValueError,
     f"1-d array of {N} row positions"),
    ("2-d", dict(train_step=1, batch_rows=np.arange(N)[:, None]), ValueError, "1-d"),
    ("negative", dict(train_step=1, batch_rows=np.arange(N) - 1), ValueError,
     r"\[0, 2\*\*63\)"),
    ("too-large", dict(train_step=1, batch_rows=np.full(N, 2**63, np.uint64)), ValueError,
     r"\[0, 2\*\*63\)"),
    ("floats", dict(train_step=1, batch_rows=np.arange(N) * 1.0), TypeError, "integers"),
]


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
@pytest.mark.parametrize("name, kw, exc, match", BAD_BATCH_ROWS,
                         ids=[b[0] for b in BAD_BATCH_ROWS])
def test_loss_grad_refuses_bad_batch_rows(module, name, kw, exc, match):
    model = _model({1: [0.5]})
    X, y = _data()
    setup = make_setup(module, model, X, y, "softmax_cross_entropy")
    dWs = [np.empty_like(W) for W in model.params[0::2]]
    dbs = [np.empty_like(b) for b in model.params[1::2]]
    with pytest.raises(exc, match=match):
        module.loss_grad(setup, dWs, dbs, **kw)


# ------------------------------------------------------------ masks as functions

def test_masks_do_not_depend_on_threads_or_on_how_the_epoch_is_cut():
    """A batch wide enough for the threaded mask loop (B * width >= PAR_MIN_ELEMS)."""
    rng = np.random.default_rng(0)
    n, width = 600, 256                 # 150 x 256 >= PAR_MIN_ELEMS (32768)
    X = rng.standard_normal((n, D))
    y = rng.integers(0, 3, n)
    results = []
    for threads, cuts in ((1, None), (2, None), (1, [1, 2, 1])):
        model = nnlib.Sequential([Dense(D, width, "relu", random_state=0),
                                  Dropout(0.5, random_state=3),
                                  Dense(width, 3, random_state=1)])
        setup = make_setup(compiled, model, X, y, "softmax_cross_entropy",
                           optimizer=O.SGD(lr=0.01, momentum=0.9), batch_size=150,
                           n_threads=threads)
        setup.set_dropout([3], [0])
        order = rng.permutation(n) if not results else results[0][0]
        if cuts is None:
            compiled.run_epoch(setup, order, 0)
        else:
            step, start = 0, 0
            for k in cuts:
                stop = start + 150 * k
                step += compiled.run_epoch(setup, order[start:stop], step)[2]
                start = stop
        results.append((order, [p.copy() for p in model.params]))
    for _, params in results[1:]:
        for p, q in zip(params, results[0][1]):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("name, make_opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_rate_zero_is_no_dropout_bit_for_bit(name, make_opt):
    X, y = _data(40)
    plain = nnlib.Sequential([Dense(D, 16, "relu", random_state=0),
                              Dense(16, 3, random_state=1)])
    zero = nnlib.Sequential([Dropout(0.0), Dense(D, 16, "relu", random_state=0),
                             Dropout(0.0), Dense(16, 3, random_state=1)])
    for m in (plain, zero):
        m.fit(X, y, optimizer=make_opt(), epochs=3, batch_size=8, random_state=0)
    for p, q in zip(plain.params, zero.params):
        np.testing.assert_array_equal(p, q)
    # in the kernel too: a Network holding a rate-0 dropout
    runs = []
    for drop in ([], [(1, 0.0)]):
        m = _copy(plain)
        setup = make_setup(compiled, m, X, y, "softmax_cross_entropy",
                           optimizer=make_opt(), batch_size=8)
        setup = compiled.EpochSetup(
            compiled.Network(setup.network.sizes, setup.network.kinds,
                             setup.network.aparams, drop),
            setup.weights, setup.biases, setup.states, setup.X, setup.y_target,
            setup.y_label, setup.workspace, setup.loss_kind, 8, optimizer=setup.optimizer)
        compiled.run_epoch(setup, np.arange(40), 0)
        runs.append([p.copy() for p in m.params])
    for p, q in zip(*runs):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------- Sequential.fit

@pytest.fixture
def no_batch_run(monkeypatch):
    """Fail if a fit takes the per-batch Python path."""
    import nnlib.model

    def refuse(*args, **kwargs):
        raise AssertionError("BatchRun used: the model did not train in the compiled "
                             "epoch")
    monkeypatch.setattr(nnlib.model, "BatchRun", refuse)


@pytest.mark.parametrize("dt_id, dtype", DTYPES, ids=[d[0] for d in DTYPES])
@pytest.mark.parametrize("placement", PLACEMENTS, ids=[p[0] for p in PLACEMENTS])
def test_fit_with_dropout_is_compiled_and_equals_the_twin(no_batch_run, placement, dt_id,
                                                          dtype):
    X, y = _data(50)
    model = _model(placement[1], dtype, seeds=False)
    assert model.compiled
    start = _copy(model)
    want, want_losses = reference_fit(start, X, y, "softmax_cross_entropy",
                                      O.Adam(lr=0.01), epochs=3, batch_size=8,
                                      random_state=5)
    hist = model.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=3, batch_size=8,
                     random_state=5)
    for i, (p, w) in enumerate(zip(model.params, want)):
        _assert_close(p, w, dtype, f"param {i}")
    np.testing.assert_allclose(hist["loss"], want_losses, rtol=100 * np.finfo(dtype).eps)
    assert all(l.step == 3 * 7 for l in model.layers if isinstance(l, Dropout))


def test_fit_with_dropout_equals_the_per_batch_python_path():
    """A Dropout subclass trains through BatchRun with the layer's own forward_train: the
    same masks, the same steps (rounding aside)."""
    class PyDropout(Dropout):
        def forward_train(self, X):
            return super().forward_train(X)
    X, y = _data(50)
    fast = _model({0: [0.2], 1: [0.5]})
    slow = _copy(fast)
    slow.layers = [PyDropout(l.rate, random_state=l.seed) if isinstance(l, Dropout)
                   else l for l in slow.layers]
    assert fast.compiled and not slow.compiled
    for m in (fast, slow):
        m.fit(X, y, optimizer=O.SGD(lr=0.05, momentum=0.9), epochs=2, batch_size=8,
              random_state=1, l2=0.01)
    for p, q in zip(fast.params, slow.params):
        np.testing.assert_allclose(p, q, rtol=1e-11, atol=1e-13)


def test_fit_is_reproducible_from_random_state(no_batch_run):
    X, y = _data(60)

    def trained(random_state, **kw):
        m = _model({1: [0.5], 2: [0.3]}, seeds=False)
        m.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=3, batch_size=8,
              random_state=random_state, **kw)
        return m.params
    a, b, c = trained(0), trained(0), trained(1)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a[0], c[0])
    # the masks, not only the shuffling, follow random_state
    d, e = trained(0, shuffle=False), trained(1, shuffle=False)
    assert not np.array_equal(d[0], e[0])


def test_layer_step_carries_the_masks_across_fits(no_batch_run):
    """fit(epochs=1) three times is fit(epochs=3): the layers' step counts continue the
    masks (and the optimizer its state)."""
    X, y = _data(40)
    once, loop = _model({1: [0.5]}), _model({1: [0.5]})
    opt_once, opt_loop = O.Adam(lr=0.01), O.Adam(lr=0.01)
    once.fit(X, y, optimizer=opt_once, epochs=3, batch_size=8, shuffle=False)
    for _ in range(3):
        loop.fit(X, y, optimizer=opt_loop, epochs=1, batch_size=8, shuffle=False)
    for p, q in zip(once.params, loop.params):
        np.testing.assert_array_equal(p, q)
    assert once.layers[1].step == loop.layers[1].step == 15


def test_a_per_batch_schedule_cuts_the_epoch_without_changing_the_masks(no_batch_run):
    X, y = _data(40)
    whole, cut = _model({1: [0.5]}), _model({1: [0.5]})
    whole.fit(X, y, optimizer=O.SGD(lr=0.05), epochs=2, batch_size=8, random_state=0,
              schedule=lambda step: 0.05)
    cut.fit(X, y, optimizer=O.SGD(lr=0.05), epochs=2, batch_size=8, random_state=0,
            schedule=lambda step: 0.05, schedule_interval="batch")
    for p, q in zip(whole.params, cut.params):
        np.testing.assert_array_equal(p, q)


def test_predict_and_evaluate_skip_dropout():
    X, y = _data(30)
    model = _model({0: [0.3], 1: [0.5], 3: [0.2]})
    model.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=2, random_state=0)
    bare = nnlib.Sequential([l for l in _copy(model).layers if isinstance(l, Dense)])
    np.testing.assert_array_equal(model.predict(X), bare.predict(X))
    assert model.evaluate(X, y) == bare.evaluate(X, y)
    np.testing.assert_array_equal(model.loss_and_grads(X, y)[1][0],
                                  bare.loss_and_grads(X, y)[1][0])
    hist = model.fit(X, y, epochs=1, validation_data=(X, y), metrics=["accuracy"],
                     random_state=0)
    assert hist["val_loss"][-1] == pytest.approx(model.evaluate(X, y).loss, rel=1e-12)


def test_concurrent_fits_of_dropout_models_equal_sequential_ones(no_batch_run):
    X, y = _data(400)
    models = [_model({1: [0.5]}, seeds=False) for _ in range(2)]
    alone = _model({1: [0.5]}, seeds=False)
    alone.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=3, batch_size=4, random_state=0)
    threads = [threading.Thread(target=m.fit, args=(X, y),
                                kwargs=dict(optimizer=O.Adam(lr=0.01), epochs=3,
                                            batch_size=4, random_state=0))
               for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in models:
        for p, q in zip(m.params, alone.params):
            np.testing.assert_array_equal(p, q)


# ------------------------------------------------------------------------ checks

BAD_DROPOUT = [
    ([(3, 0.5)], ValueError, "position must be in"),
    ([(1, 0.5), (0, 0.5)], ValueError, "non-decreasing"),
    ([(1, 1.0)], ValueError, "rate"),
    ([(1, float("nan"))], ValueError, "rate"),
    ([(1, -0.1)], ValueError, "rate"),
    ([(1,)], ValueError, "pair"),
    (5, TypeError, "pairs"),
]


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
@pytest.mark.parametrize("dropout, exc, match", BAD_DROPOUT,
                         ids=[str(b[0]) for b in BAD_DROPOUT])
def test_network_refuses_bad_dropout(module, dropout, exc, match):
    with pytest.raises(exc, match=match):
        module.Network([2, 3, 2], [2, 0], [0.0, 0.0], dropout)


@pytest.mark.parametrize("module", [compiled, twin], ids=["compiled", "twin"])
def test_setup_checks_dropout_counters_and_sparse_input(module):
    sp = pytest.importorskip("scipy.sparse")
    model = _model({0: [0.5], 1: [0.5]})
    X, y = _data()
    setup = make_setup(module, model, X, y, "softmax_cross_entropy")
    with pytest.raises(ValueError, match="2 seeds"):
        setup.set_dropout([1], [0])
    with pytest.raises(ValueError, match=r"offsets\[1\] must be < 2\*\*64"):
        setup.set_dropout([1, 2], [0, 2**64])
    with pytest.raises(ValueError, match="seeds"):
        setup.set_dropout([-1, 2], [0, 0])
    dWs = [np.empty_like(W) for W in model.params[0::2]]
    dbs = [np.empty_like(b) for b in model.params[1::2]]
    with pytest.raises(ValueError, match="train_step"):
        module.loss_grad(setup, dWs, dbs, train_step=0)
    with pytest.raises(ValueError, match="needs a dense X"):
        module.EpochSetup(setup.network, setup.weights, setup.biases, None,
                          sp.csr_matrix(X), setup.y_target, setup.y_label,
                          setup.workspace, setup.loss_kind, N)
    with pytest.raises(ValueError, match="needs a dense X"):
        setup.set_data(sp.csr_matrix(X), setup.y_target, setup.y_label)
