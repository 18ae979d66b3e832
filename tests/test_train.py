"""Sequential.fit and the compiled training loop: fit == the twin's epochs
(nnlib._reference.train, through tests/_twin_fit.py), reproducibility, XOR, divergence
handling, fit's options and bad input. The compiled epoch itself against its twin, case by
case, is tests/test_train_twin.py."""
import math
from fractions import Fraction

import numpy as np
import pytest

import nnlib
from nnlib import LabelError, NonFiniteError, ShapeError
from nnlib.optim import SGD, Adam
from tests._twin_fit import reference_fit

N, D, HID, C = 23, 5, 7, 3


def _model(dtype=np.float64, act="tanh", out=C, seed=0):
    return nnlib.Sequential([nnlib.Dense(D, HID, act, dtype=dtype, random_state=seed),
                             nnlib.Dense(HID, out, dtype=dtype, random_state=seed + 1)])


def _data(rng, loss="softmax_cross_entropy", c=C):
    X = rng.standard_normal((N, D))
    y = rng.standard_normal((N, c)) if loss == "squared_error" else rng.integers(0, c, N)
    return X, y


CASES = [
    # (id, loss, batch_size, optimizer factory, l2, l2_per_batch)
    ("sgd-b1", "softmax_cross_entropy", 1, lambda: SGD(lr=0.05), 0.0, False),
    ("sgd-b5", "softmax_cross_entropy", 5, lambda: SGD(lr=0.1), 0.0, False),
    ("sgd-full", "squared_error", N, lambda: SGD(lr=0.1), 0.0, False),
    ("sgd-l2", "softmax_cross_entropy", 4, lambda: SGD(lr=0.1), 0.01, False),
    ("sgd-alpha", "squared_error", 6, lambda: SGD(lr=0.05), 0.5, True),
    ("momentum-b1", "softmax_cross_entropy", 1, lambda: SGD(lr=0.02, momentum=0.9), 0.0,
     False),
    ("momentum-b8", "squared_error", 8, lambda: SGD(lr=0.05, momentum=0.5), 0.1, False),
    ("adam-b1", "softmax_cross_entropy", 1, lambda: Adam(lr=0.01), 0.0, False),
    ("adam-b6", "softmax_cross_entropy", 6, lambda: Adam(lr=0.01), 0.0, False),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fit_matches_the_twin(case, rng):
    """fit's epochs (seeded permutations, batches, L2, the update) are the twin's."""
    _, loss, bs, make_opt, l2, per_batch = case
    X, y = _data(rng, loss)
    model = _model()
    want, want_losses = reference_fit(model, X, y, loss, make_opt(), epochs=3,
                                      batch_size=bs, random_state=11, l2=l2,
                                      l2_per_batch=per_batch)
    opt = make_opt()
    hist = model.fit(X, y, loss=loss, optimizer=opt, epochs=3, batch_size=bs,
                     random_state=11, l2=l2, l2_per_batch=per_batch)
    assert opt.t == 3 * -(-N // bs)
    for got, ref in zip(model.params, want):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hist["loss"], want_losses, rtol=1e-10)


def test_float32_epoch_close_to_float64(rng):
    X, y = _data(rng)
    m64, m32 = _model(), _model(np.float32)
    for p32, p64 in zip(m32.params, m64.params):
        p32[...] = p64
    m64.fit(X, y, optimizer=SGD(lr=0.1), epochs=2, batch_size=4, random_state=0)
    m32.fit(X, y, optimizer=SGD(lr=0.1), epochs=2, batch_size=4, random_state=0)
    for a, b in zip(m32.params, m64.params):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _round_to(v, bits):
    """The Fraction v rounded once to ``bits`` significant bits, ties to even (normal
    range)."""
    if v == 0:
        return 0.0
    a = abs(v)
    shift = bits - 1 - (a.numerator.bit_length() - a.denominator.bit_length())
    scaled = a * Fraction(2) ** shift
    while scaled >= 2 ** bits:
        shift, scaled = shift - 1, scaled / 2
    while scaled < 2 ** (bits - 1):
        shift, scaled = shift + 1, scaled * 2
    return math.copysign(math.ldexp(round(scaled), -shift), v)


def _fma_in_order(A, B):
    """A @ B.T as each element's k fused multiply-adds in order from zero, in A's dtype:
    each step a*b + acc exact (Fractions) and rounded once."""
    bits = np.finfo(A.dtype).nmant + 1
    out = np.empty((A.shape[0], B.shape[0]), A.dtype)
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            acc = 0.0
            for a, b in zip(A[i].tolist(), B[j].tolist()):
                acc = _round_to(Fraction(a) * Fraction(b) + Fraction(acc), bits)
            out[i, j] = acc
    return out


def _blas_adds_in_order(dtype):
    """Whether nnlib's BLAS forms a product of ``dtype`` as k fused multiply-adds in order
    per element, as OpenBLAS's SkylakeX kernels do; its Haswell kernels (AVX2 CPUs) add
    in an order that depends on the element's position."""
    from nnlib._kernels import blas
    r = np.random.RandomState(7)
    for n, k, c in [(32, 10, 100), (57, 16, 33)]:   # Haswell's dgemm: only the second
        A, B = r.standard_normal((n, k)).astype(dtype), r.standard_normal((c, k)).astype(dtype)
        C = np.zeros((n, c), dtype)
        blas.gemm_py(False, True, 1.0, A, B, 0.0, C)
        if not np.array_equal(C, _fma_in_order(A, B)):
            return False
    return True


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_narrow_layer_input_gradient_is_the_in_order_fma_sum(dtype, rng):
    """Under a layer at most NARROW_K (16) wide the float64 backward pass forms
    dH = dZ W^T itself (k fused multiply-adds in order from zero per element, as
    OpenBLAS's SkylakeX kernels add them): with such a BLAS it must be bitwise NumPy's
    (BLAS's) product, for BLAS's small-matrix and blocked paths alike, so training does
    not change by taking that path. With a BLAS that adds in another order (OpenBLAS's
    Haswell kernels) no loop of nnlib's can match it everywhere: the loop is then held bit
    for bit to the in-order sum computed exactly (the smaller shapes) and both paths to
    its error bound (k units of rounding of sum |dZ_ij W_lj|). (Float32 training never
    takes the path, ``by_product``.)"""
    from nnlib._codes import ACTIVATION_CODES
    from nnlib._kernels import blas, dense, train
    blas.load()
    bitwise = _blas_adds_in_order(dtype)
    u = np.finfo(dtype).eps / 2
    for n, k, c in [(2, 2, 2), (3, 5, 7), (32, 10, 100), (200, 5, 100), (20000, 5, 100),
                    (57, 16, 33), (1000, 3, 130), (7, 16, 2)]:
        dZn = rng.standard_normal((n, k)).astype(dtype)
        Wn = rng.standard_normal((c, k)).astype(dtype)
        H = np.abs(rng.standard_normal((n, c))).astype(dtype) * (rng.random((n, c)) > 0.3)
        # the product as the backward pass formed it before: mm through dense_backward
        dH, dZ_, dW_ = (np.empty((n, c), dtype), np.empty((n, k), dtype),
                        np.empty((c, k), dtype))
        dense.dense_backward(np.ones((n, c), dtype), Wn, np.ones((n, k), dtype), dZn, dZ_,
                             dH, dW_, np.empty(k, dtype), np.empty(k),
                             ACTIVATION_CODES["identity"], 0.0)
        dZ, db = train._input_grad_by_product(dZn, Wn, H, ACTIVATION_CODES["identity"])
        if n * c <= 4000:
            np.testing.assert_array_equal(dZ, _fma_in_order(dZn, Wn))
        if bitwise:
            np.testing.assert_array_equal(dZ, dH)
            np.testing.assert_array_equal(dZ, dZn @ Wn.T)  # and NumPy's (BLAS's) product
        else:
            ld = np.longdouble      # 64-bit significand: a k-term sum to ~k 2^-64
            exact = dZn.astype(ld) @ Wn.T.astype(ld)
            bound = k * u * (np.abs(dZn).astype(ld) @ np.abs(Wn).T.astype(ld))
            assert np.all(np.abs(dZ - exact) <= bound)
            assert np.all(np.abs(dH - exact) <= bound)
        np.testing.assert_allclose(db, dZ.sum(axis=0, dtype=np.float64),
                                   rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 * n if dtype == np.float32 else 1e-12 * n)
        np.testing.assert_array_equal(db, _column_sums_in_row_order(dZ))
        if n >= 3:      # the mask's edge cases: a NaN, a -0 and an infinite gradient
            H[0, 0], H[1, 0], dZn[2, 0] = np.nan, -0.0, np.inf
            dZ, _ = train._input_grad_by_product(dZn, Wn, H, ACTIVATION_CODES["identity"])
        # relu's float64 pass is act_row.h's select: bitwise the generic loop's product
        # by the 0/1 mask, its column sums the same additions in row order
        dZr, dbr = train._input_grad_by_product(dZn, Wn, H, ACTIVATION_CODES["relu"])
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(dZr, dZ * (H > 0).astype(dtype))
            np.testing.assert_array_equal(dbr, _column_sums_in_row_order(dZr))


def _column_sums_in_row_order(A):
    """Column sums of A added row after row in double, rounded to A's dtype."""
    return np.cumsum(A.astype(np.float64), axis=0)[-1].astype(A.dtype)


@pytest.mark.parametrize("bs", [1, 16])
def test_single_thread_runs_are_bitwise_reproducible(bs, rng):
    X, y = _data(rng)
    runs = []
    for _ in range(2):
        model = _model()
        h = model.fit(X, y, optimizer=SGD(lr=0.1, momentum=0.9), epochs=3, batch_size=bs,
                      random_state=5, n_threads=1)
        runs.append(([p.copy() for p in model.params], h["loss"]))
    for a, b in zip(runs[0][0], runs[1][0]):
        assert np.array_equal(a, b)
    assert runs[0][1] == runs[1][1]


def test_shuffle_false_uses_the_given_order(rng):
    X, y = _data(rng)
    model = _model()
    want, _ = reference_fit(model, X, y, "softmax_cross_entropy", SGD(lr=0.1), epochs=1,
                            batch_size=4, shuffle=False)
    model.fit(X, y, optimizer=SGD(lr=0.1), batch_size=4, shuffle=False)
    for got, ref in zip(model.params, want):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("hidden", [2, 4])
def test_xor_is_learned(hidden):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    model = nnlib.Sequential([nnlib.Dense(2, hidden, "tanh", random_state=3),
                              nnlib.Dense(hidden, 1, random_state=4)])
    hist = model.fit(X, y, loss="logistic_loss", optimizer=SGD(lr=0.5, momentum=0.9),
                     epochs=500, batch_size=4, random_state=0)
    assert hist["loss"][-1] < 0.05
    assert np.array_equal((model.predict(X)[:, 0] > 0).astype(int), y)


def test_divergence_stops_and_keeps_the_last_finite_weights(rng):
    X = rng.standard_normal((40, D)) * 10
    y = rng.standard_normal((40, C)) * 10
    model = nnlib.Sequential([nnlib.Dense(D, C, dtype=np.float32, random_state=0)])
    with pytest.warns(RuntimeWarning, match="non-finite"):
        hist = model.fit(X, y, loss="squared_error", optimizer=SGD(lr=5.0), epochs=50,
                         batch_size=1, random_state=0)
    assert hist.stop_reason == "nonfinite"
    assert hist.nonfinite is not None
    assert all(np.isfinite(p).all() for p in model.params)
    assert hist.epochs < 50 and len(hist["loss"]) <= hist.epochs + 1


def test_divergence_weights_are_those_after_the_reported_step(rng):
    """Re-running the same number of steps from the same start gives the same weights."""
    X = rng.standard_normal((40, D)) * 10
    y = rng.standard_normal((40, C)) * 10
    start = nnlib.Sequential([nnlib.Dense(D, C, dtype=np.float32, random_state=0)])
    init = [p.copy() for p in start.params]
    with pytest.warns(RuntimeWarning):
        hist = start.fit(X, y, loss="squared_error", optimizer=SGD(lr=5.0), epochs=50,
                         batch_size=1, random_state=0, shuffle=False)
    k = hist.nonfinite["epoch"] * 40 + hist.nonfinite["step"]
    assert k > 0
    replay = nnlib.Sequential([nnlib.Dense(D, C, dtype=np.float32, random_state=0)])
    for p, q in zip(replay.params, init):
        p[...] = q
    Xs = np.tile(X, (k // 40 + 1, 1))[:k]
    ys = np.tile(y, (k // 40 + 1, 1))[:k]
    replay.fit(Xs, ys, loss="squared_error", optimizer=SGD(lr=5.0), epochs=1,
               batch_size=1, shuffle=False)
    for a, b in zip(start.params, replay.params):
        assert np.array_equal(a, b)


def test_fit_rejects_bad_input(rng):
    X, y = _data(rng)
    model = _model()
    with pytest.raises(LabelError):
        model.fit(X, np.full(N, 7))
    with pytest.raises(ShapeError):
        model.fit(X[:, :3], y)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(NonFiniteError, match="row 3"):
        model.fit(Xn, y)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, y, batch_size=0)
    with pytest.raises(TypeError, match="optimizer"):
        model.fit(X, y, optimizer="sgd")
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, y, validation_split=1.0)
    with pytest.raises(ValueError, match="not both"):
        model.fit(X, y, validation_split=0.2, validation_data=(X, y))


def test_validation_early_stopping_callbacks_schedule_and_verbose(rng, capsys):
    X, y = _data(rng)
    model = _model()
    seen = []
    hist = model.fit(X, y, optimizer=SGD(lr=0.1), epochs=4, batch_size=4,
                     validation_split=0.25, verbose=1,
                     schedule=lambda epoch: 0.1 / (1 + epoch),
                     callbacks=[lambda epoch, logs: seen.append(epoch) or False])
    assert hist.epochs == 4 and seen == [0, 1, 2, 3]
    np.testing.assert_allclose(hist["lr"], [0.1, 0.05, 0.1 / 3, 0.025])
    assert len(hist["val_loss"]) == 4 and len(hist["val_accuracy"]) == 4
    assert all(0 <= a <= 1 for a in hist["val_accuracy"])
    out = capsys.readouterr().out
    assert "epoch 4/4" in out and "ETA" in out and "loss" in out
    # a callback returning True stops; early stopping with lr 0 stops after patience
    hist = model.fit(X, y, optimizer=SGD(lr=0.1), epochs=10,
                     callbacks=[lambda epoch, logs: epoch == 1])
    assert hist.epochs == 2 and hist.stop_reason == "callback"
    # Keras's rule: patience 2 = stop after 2 epochs in a row without improvement
    hist = model.fit(X, y, optimizer=SGD(lr=0.0), epochs=10, early_stopping=dict(patience=2, min_delta=1e-9))
    assert hist.epochs == 3 and hist.stop_reason == "early_stopping"
    val_loss, acc = model.evaluate(X, y)
    assert np.isfinite(val_loss) and 0 <= acc <= 1


def test_digits_mlp_learns():
    X, y = nnlib.datasets.load_digits()
    X = X / 16
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:1400], idx[1400:]
    model = nnlib.Sequential([nnlib.Dense(64, 100, "relu", init="he_uniform",
                                          random_state=0),
                              nnlib.Dense(100, 10, random_state=1)])
    model.fit(X[tr], y[tr], optimizer=SGD(lr=0.1), epochs=20, batch_size=16,
              random_state=0)
    assert model.evaluate(X[te], y[te])[1] > 0.95


def test_nonfinite_gradient_with_finite_loss_is_refused_before_any_update():
    """float32 z - y overflows to inf while the loss (accumulated in double) is finite:
    the step must be refused with the weights untouched."""
    model = nnlib.Sequential([nnlib.Dense(1, 1, dtype=np.float32, init="zeros")])
    model.layers[0].W[...] = 3e38
    X = np.ones((2, 1), np.float32)
    y = np.full((2, 1), -3e38, np.float32)
    with pytest.warns(RuntimeWarning, match="gradient"):
        value, grads = model.loss_and_grads(X, y, "squared_error")
    assert np.isfinite(value) and not np.isfinite(grads[1]).all()
    before = [p.copy() for p in model.params]
    with pytest.warns(RuntimeWarning, match="gradient became non-finite"):
        hist = model.fit(X, y, loss="squared_error", optimizer=SGD(lr=0.1), epochs=3,
                         batch_size=1)
    assert hist.nonfinite == {"epoch": 0, "step": 0, "what": "gradient",
                              "cause": hist.nonfinite["cause"]}
    assert hist.nonfinite["cause"].startswith("the gradient overflows float32 at the "
                                              "weights given to fit")
    assert hist.epochs == 0 and hist["loss"] == []
    for a, b in zip(model.params, before):
        assert np.array_equal(a, b)


def test_fit_drives_nnlib_schedules(rng):
    from nnlib.schedules import ReduceOnPlateau, StepDecay
    X, y = _data(rng)
    model = _model()
    opt = SGD(lr=0.2)
    hist = model.fit(X, y, optimizer=opt, epochs=5, schedule=StepDecay(2, gamma=0.5))
    np.testing.assert_allclose(hist["lr"], [0.2, 0.2, 0.1, 0.1, 0.05])
    opt = SGD(lr=0.1)     # a 10x relative threshold is never met: lr halves every epoch
    hist = model.fit(X, y, optimizer=opt, epochs=4, shuffle=False,
                     schedule=ReduceOnPlateau(factor=0.5, patience=0, threshold=10.0))
    assert hist["lr"][0] == 0.1 and opt.lr < hist["lr"][-1] < 0.1


def test_free_cores_is_a_valid_thread_count():
    from nnlib._threads import MAX_THREADS
    from nnlib._threads import free_cores
    assert 1 <= free_cores() <= max(MAX_THREADS, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_every_nonfinite_position(dtype, bad):
    """The compiled check fit uses before check_finite: a vectorized OR of compares, so
    test positions in the vector body and in the scalar tail of the loop."""
    from nnlib._kernels import train
    X = np.full((7, 37), np.finfo(dtype).max, dtype=dtype)
    X[::2] = -np.finfo(dtype).tiny
    assert train.all_finite(X)
    assert train.all_finite(np.empty((0, 3), dtype))
    for pos in (0, 1, 36, 37, 100, 7 * 37 - 1):
        Y = X.copy()
        Y.flat[pos] = bad
        assert not train.all_finite(Y), pos


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_at_every_start_past_a_cache_line(dtype):
    """all_finite checks the values before the array's first 64-byte boundary apart from
    the rest: arrays starting at each element offset, short and long (past the GIL
    release), a non-finite value in the head, at the boundary, in the body and last."""
    from nnlib._kernels import train
    size = np.dtype(dtype).itemsize
    buf = np.empty(2048 * 64 + 64, dtype)
    skip = (-buf.ctypes.data % 64) // size          # buf[skip:] starts on a line
    for rows, cols in ((1, 1), (1, 5), (3, 7), (5, 37), (2048, 64)):
        n = rows * cols
        for offset in range(64 // size + 1):
            start = skip + offset
            buf[:] = np.finfo(dtype).max
            X = buf[start:start + n].reshape(rows, cols)
            assert train.all_finite(X), (n, offset)
            head = min(n, (-X.ctypes.data % 64) // size)
            for pos in sorted({0, head - 1, head, head + 1, n // 2, n - 1}):
                if 0 <= pos < n:
                    X.flat[pos] = np.nan if pos % 2 else -np.inf
                    assert not train.all_finite(X), (n, offset, pos)
                    X.flat[pos] = 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_on_unaligned_data(dtype):
    """An array whose data starts 1 .. itemsize-1 bytes past an element boundary (NumPy
    makes one from a buffer at such an offset): no element starts on the 64-byte
    boundary, so the head and the rest split at the last element before it; every
    value is still checked, none past the array read."""
    from nnlib._kernels import train
    size = np.dtype(dtype).itemsize
    raw = np.zeros(4096 * size + 192, np.uint8)
    line = -raw.ctypes.data % 64
    for shift in range(1, size):
        for start in range(line + shift, line + shift + 64, size):
            for n in (1, 3, 17, 4096):
                X = np.frombuffer(raw, dtype, n, start).reshape(1, n)
                assert not X.flags.aligned
                tail = np.frombuffer(raw, dtype, 1, start + n * size)
                tail[0] = np.nan                # just past the array: never read
                X[...] = 1.0
                assert train.all_finite(X), (shift, start, n)
                head = min(n, (-X.ctypes.data % 64) // size)
                for pos in sorted({0, head - 1, head, head + 1, n - 1}):
                    if 0 <= pos < n:
                        X[0, pos] = np.inf if pos % 2 else np.nan
                        assert not train.all_finite(X), (shift, start, n, pos)
                        X[0, pos] = 1.0
                tail[0] = 0


@pytest.mark.parametrize("opt", [lambda: Adam(lr=1e-3, amsgrad=True),
                                 lambda: nnlib.optim.RMSprop(lr=1e-3, centered=True,
                                                             momentum=0.5)],
                         ids=["adam-amsgrad", "rmsprop-centered-momentum"])
def test_threaded_optimizer_update_is_bitwise_the_serial_one(opt, rng):
    """run_epoch's update_threads splits large weight matrices (>= 32768 elements)
    across OpenMP threads: the weights and optimizer state must not change by a bit."""
    from nnlib.training import compiled_train, network_of
    train = compiled_train()
    X = rng.standard_normal((64, 190)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    runs = []
    for update_threads in (1, 2):
        m = nnlib.Sequential([nnlib.Dense(190, 180, "relu", dtype=np.float32,
                                          random_state=0),
                              nnlib.Dense(180, 3, dtype=np.float32, random_state=1)])
        o = opt()
        params = m.params
        states = [s.reshape(-1) for s in o.state_arrays(params)]
        yt, yl = m._targets(y, "softmax_cross_entropy", 64)
        setup = train.EpochSetup(network_of(m), [l.W for l in m.layers],
                                 [l.b for l in m.layers], states, X, yt, yl,
                                 train.Workspace(m._sizes(), 16, 0, np.float32), 0, 16,
                                 optimizer=o.config(), update_threads=update_threads)
        out = train.run_epoch(setup, np.arange(64, dtype=np.int64), 0)
        assert out[2] == 4 and out[3] == 0 and out[4]
        runs.append([p.copy() for p in params] + [s.copy() for s in states])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_threaded_gather_and_activation_backward_are_bitwise_the_serial_ones(act, dtype,
                                                                            rng):
    """With n_threads > 1 the epoch copies a large batch's rows (B * n_in >= 32768) and
    forms dZ = dH g'(H) with its column sums (B * width >= 32768) on every thread, in
    blocks of rows and of columns: weights must not change by a bit. 180 hidden units
    split at column 80 in float32, 88 in float64 (whole 64-byte lines), not at 90; 20
    outputs, more than NARROW_K, so float64 forms dZ here too (not under the product)."""
    runs = _one_and_two_threads(rng, 512, 256, (190, 180, 20), act, dtype,
                                lambda: nnlib.optim.SGD(lr=0.1, momentum=0.9))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def _one_and_two_threads(rng, n, B, sizes, act, dtype, optimizer, dropout=None,
                         twin=False):
    """One run_epoch of batches of B over n random rows, a network of ``sizes`` (``act``
    in every hidden layer, a linear output, softmax cross-entropy; a seeded Dropout of
    rate r before the Dense layer at position p for each p: r of ``dropout``), on one
    thread and on two from the same weights, and with ``twin`` by the NumPy twin too
    (nnlib._reference.train): each run's parameters and optimizer states."""
    from nnlib._reference import train as twin_train
    from nnlib.training import compiled_train
    from tests._twin_fit import make_setup
    compiled = compiled_train()
    dropout = dropout or {}
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n)
    order = rng.permutation(n).astype(np.int64)
    runs = []
    for module, n_threads in [(compiled, 1), (compiled, 2)] + [(twin_train, 1)] * twin:
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i in dropout:
                layers.append(nnlib.layers.Dropout(dropout[i], random_state=100 + i))
            layers.append(nnlib.Dense(a, b, act if i < len(sizes) - 2 else "identity",
                                      dtype=dtype, random_state=i))
        m = nnlib.Sequential(layers)
        setup = make_setup(module, m, X, y, "softmax_cross_entropy", optimizer=optimizer(),
                           batch_size=B, rows=B, n_threads=n_threads)
        if dropout:
            setup.set_dropout([100 + i for i in sorted(dropout)], [0] * len(dropout))
        assert module.run_epoch(setup, order, 0)[2:] == (-(-n // B), 0, True)
        runs.append([p.copy() for p in m.params]
                    + [s.copy() for s in setup.states if s is not None])
    return runs


# (id, rows, batch, sizes, dropout {position: rate}) of the write-back test below: one
# relu layer, then two in a row (the second's backward formed by the output layer's
# product dZ W^T, the first's by the second's), with dropout between them, above them
# and on the input (a dropped layer's input gradient is a plain product)
WRITE_BACK_NETS = [
    ("30-128-20-b256", 600, 256, (30, 128, 20), {}),
    ("30-64-64-20-b512", 600, 512, (30, 64, 64, 20), {}),
    ("30-64-64-20-b512-dropout-between", 600, 512, (30, 64, 64, 20), {1: 0.3}),
    ("30-40-24-20-b64", 150, 64, (30, 40, 24, 20), {}),
    ("30-40-24-20-b64-dropout-above", 150, 64, (30, 40, 24, 20), {2: 0.5}),
    ("30-70-33-3-b13", 40, 13, (30, 70, 33, 3), {}),
    ("30-70-33-3-b13-dropout-input-and-above", 40, 13, (30, 70, 33, 3), {0: 0.2, 2: 0.25}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["relu", "identity", "tanh"])
@pytest.mark.parametrize("n, B, sizes, dropout", [c[1:] for c in WRITE_BACK_NETS],
                         ids=[c[0] for c in WRITE_BACK_NETS])
def test_bias_and_activation_in_the_product_write_back_are_bitwise_bias_act(
        n, B, sizes, dropout, act, dtype, rng):
    """On one thread the products that gemm_small.h's loops take apply the layer's
    elementwise pass in their write-back (dense.pxd): the forward product adds the bias
    and applies identity or relu (mm_bias_act), the input gradient dZ W^T of the layer
    above a relu layer applies relu's backward and sums the columns (mm_relu_backward;
    with two relu layers in a row, train.pyx's ``formed`` takes each one's dZ and bias
    gradient from the product above it). With two threads a pass of at least
    PAR_MIN_ELEMS values (256 x 128, 512 x 64) runs bias_act and act_backward on both
    threads after the product instead; smaller ones fuse on two threads too. The weights
    must agree bit for bit (the other threaded passes are bitwise their serial selves:
    the test above), and with the twin's within its tolerance (tests/test_train_twin.py).
    30 inputs keep the forward product whole in float64 (under mm_pieces' cut); 20
    outputs, more than NARROW_K, keep float64's input gradient a product (not
    act_backward_product) and put the output layer's product in the loops too; under 3
    outputs float64 forms the second layer's dZ in act_backward_product, and the first
    layer's in the write-back of its 33-wide product."""
    from tests.test_train_twin import _assert_close
    one, two, twin = _one_and_two_threads(rng, n, B, sizes, act, dtype,
                                          lambda: nnlib.optim.SGD(lr=0.05), dropout,
                                          twin=True)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    for i, (a, b) in enumerate(zip(one, twin)):
        _assert_close(a, b, dtype, f"param {i}")


def test_a_kept_setup_holds_no_data_and_trains_as_a_fresh_one():
    """fit keeps the model's EpochSetup for the next fit (a loop of fit(epochs=1)
    rebinds only X and y), without keeping the caller's X alive, and a fit through the
    kept setup equals one through a new setup bitwise."""
    import gc
    import weakref
    from nnlib import training
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    Xs = [X.copy() for _ in range(3)]

    def make():
        return nnlib.Sequential([nnlib.Dense(5, 7, "tanh", random_state=0),
                                 nnlib.Dense(7, 3, random_state=1)])
    kept, opt_k = make(), Adam(lr=0.01)
    for Xi in Xs:
        kept.fit(Xi, y, optimizer=opt_k, epochs=1, batch_size=8, random_state=3)
    assert training._KEPT[kept].setup is not None
    probe = weakref.ref(Xs[-1])
    del Xs[-1], Xi
    gc.collect()
    assert probe() is None, "the kept setup keeps the caller's X alive"
    fresh, opt_f = make(), Adam(lr=0.01)
    for _ in range(3):
        training._KEPT.pop(fresh, None)           # force a new setup every fit
        fresh.fit(X.copy(), y, optimizer=opt_f, epochs=1, batch_size=8, random_state=3)
    for a, b in zip(kept.params, fresh.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_workspace_buffers_start_on_a_cache_line(dtype):
    # the batch-1 step reads and writes their rows in 64-byte vectors
    from nnlib._kernels import train
    ws = train.Workspace((64, 100, 10), 32, 0, dtype)
    ws._gather_buffers()
    arrays = [*ws.H, *ws.dZ, *ws.db, *ws.dW, ws.Xb]
    assert [a.ctypes.data % 64 for a in arrays] == [0] * len(arrays)
    assert all(a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
               for a in arrays)
