"""Fuzz: interrupts at random points (a real SIGINT, or a KeyboardInterrupt raised
asynchronously between any two bytecodes) in ``fit``, the estimators' ``fit`` and
``partial_fit`` (every solver), ``save``, ``load``, ``predict`` and ``optimizer.step``.

What must hold afterwards, whether the interrupt landed or the call finished first:

* fit: the weights and the optimizer state are bitwise those of an uninterrupted run of
  exactly ``optimizer.t`` steps (so the step count matches the weights that moved), all
  finite; the model trains and predicts again (nothing left claimed or locked);
* estimators: a fitted-looking estimator predicts finite values of the right shape, and
  a re-fit gives bitwise the model a fresh estimator gives;
* save: the file is the old complete model or the new one (or absent if there was none),
  no temporary file is left, the permission bits are kept;
* load and predict: no file descriptor leaks, the next call works;
* optimizer.step: params and state are those of exactly ``t`` steps.

Runs in a child process within a time budget (tests/_fuzz_reliability.py).
"""
import os
import tempfile

import numpy as np

import nnlib
from nnlib.training import TrainingRun
from tests._fuzz_reliability import run_subject
from tests._reliability_cases import (assert_same_arrays, copies, interrupted, model, pick,
                                      optimizer, problem, quiet, random_interrupt, state_of)


def _replay(m0, opt0, X, y, loss, batch, t, fit_kw):
    """m0, opt0 trained (in place) by exactly t steps of fit(shuffle=False): whole
    epochs through fit, then the first steps of the next epoch through a TrainingRun."""
    n = X.shape[0]
    per_epoch = -(-n // batch)
    epochs, rest = divmod(t, per_epoch)
    if epochs:
        quiet(m0.fit, X, y, loss=loss, optimizer=opt0, epochs=epochs, batch_size=batch,
              shuffle=False, n_threads=1, **fit_kw)
    if rest:
        yt, yl = m0._targets(y, loss, n)
        with TrainingRun(m0, X, yt, yl, loss, opt0, batch_size=batch, n_threads=1,
                         l2=fit_kw.get("l2", 0.0), margin=fit_kw.get("margin", 1.0),
                         l2_per_batch=fit_kw.get("l2_per_batch", False)) as run:
            run.run_epoch(np.arange(rest * batch, dtype=np.int64))
    return m0, opt0


def case_fit(rng):
    dtype = pick(rng, [np.float64, np.float32])
    X, y, loss, m, opt = problem(rng, n=int(rng.integers(2, 2000)), dtype=dtype)
    if rng.random() < 0.15:
        opt.lr = float(10 ** rng.uniform(1, 4))           # diverges: rewind, then stop
    batch = int(pick(rng, [1, 4, 32, X.shape[0]]))
    fit_kw = {}
    if rng.random() < 0.3:
        fit_kw["l2"] = float(rng.uniform(0, 0.1))
        fit_kw["l2_per_batch"] = bool(rng.random() < 0.5)
    m0, opt0 = copies(m, opt)
    extra = {}
    if rng.random() < 0.3:
        extra["validation_data"] = (X[: max(1, len(X) // 4)], y[: max(1, len(X) // 4)])
    if rng.random() < 0.3:
        extra["callbacks"] = [lambda epoch, logs: False]
    delay, kind = random_interrupt(rng)
    # half the fits would run for ever: the interrupt always lands in them
    epochs = int(rng.integers(1, 40)) if rng.random() < 0.5 else 10 ** 6
    _, hit = interrupted(lambda: quiet(m.fit, X, y, loss=loss, optimizer=opt,
                                       epochs=epochs, batch_size=batch,
                                       shuffle=False, n_threads=1, **fit_kw, **extra),
                         delay, kind)
    _replay(m0, opt0, X, y, loss, batch, opt.t, fit_kw)
    assert opt0.t == opt.t
    if state_of(opt, m) is not None and state_of(opt0, m0) is None:   # made, not stepped
        opt0.state_arrays(m0.params)
    assert_same_arrays(m.params, m0.params, f"params after {opt.t} steps")
    assert_same_arrays(state_of(opt, m) or [], state_of(opt0, m0) or [],
                       f"optimizer state after {opt.t} steps")
    assert all(np.isfinite(p).all() for p in m.params)
    quiet(m.fit, X, y, loss=loss, optimizer=opt, epochs=1, n_threads=1)   # not left claimed
    try:
        assert m.predict(X).shape == (X.shape[0], m.n_out)
    except nnlib.NonFiniteError:
        # a diverged run (a large lr, or momentum on a deep linear net with a small one)
        # may leave weights whose products overflow; only then may predict refuse
        assert _products_may_overflow(X, m.params, m.dtype)
    return f"{'interrupted' if hit else 'finished'} ({kind}), t matches the weights"


def _products_may_overflow(X, params, dtype):
    """Whether the magnitude chain |X| |W1| + |b1| ... of a Dense stack (activations
    1-Lipschitz or bounded, hence the floor of 1) comes within 1e4 of ``dtype``'s max."""
    S = np.abs(X.astype(np.float64))
    with np.errstate(all="ignore"):
        for W, b in zip(params[0::2], params[1::2]):
            S = np.maximum(S @ np.abs(W.astype(np.float64)) + np.abs(b.astype(np.float64)),
                           1.0)
    return not S.max() < np.finfo(dtype).max / 1e4


def _estimator(rng):
    from nnlib.estimators import MLPClassifier, MLPRegressor
    from nnlib.linear_models import LinearRegression, LogisticRegression, Perceptron
    kind = pick(rng, ["mlp-sgd", "mlp-adam", "mlp-lbfgs", "mlp-reg", "mlp-early",
                      "perceptron", "logistic", "linear"])
    seed = int(rng.integers(1 << 20))
    hidden = tuple(int(h) for h in rng.integers(1, 8, int(rng.integers(1, 3))))
    if kind.startswith("mlp"):
        solver = {"mlp-sgd": "sgd", "mlp-lbfgs": "lbfgs"}.get(kind, "adam")
        cls = MLPRegressor if kind == "mlp-reg" else MLPClassifier
        est = cls(hidden_layer_sizes=hidden, solver=solver, max_iter=int(rng.integers(5, 80)),
                  random_state=seed, batch_size=int(pick(rng, [1, 16, 200])),
                  early_stopping=kind == "mlp-early", tol=0.0)
    elif kind == "perceptron":
        est = Perceptron(max_iter=int(rng.integers(1, 50)), shuffle=True, random_state=seed)
    elif kind == "logistic":
        est = LogisticRegression(alpha=float(rng.uniform(0, 0.1)))
    else:
        est = LinearRegression()
    return kind, est


def _fresh(est):
    return type(est)(**est.get_params())


def case_estimator_fit(rng):
    kind, est = _estimator(rng)
    n, d = int(rng.integers(20, 400)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n))
    if kind not in ("mlp-reg", "linear"):
        y = (y > 0).astype(int) + (2 * (y > 1) if kind.startswith("mlp") else 0)
        y[:3] = [0, 1, 0]
    incremental = kind in ("mlp-sgd", "mlp-adam", "mlp-reg") and rng.random() < 0.4
    if incremental:
        first = quiet(_fresh(est).partial_fit, X, y, **(
            {"classes": np.unique(y)} if kind != "mlp-reg" else {}))
        est = first
        op = (lambda: [quiet(est.partial_fit, X, y) for _ in range(30)])
    else:
        op = (lambda: quiet(est.fit, X, y))
    delay, kind_i = random_interrupt(rng, 0.15)
    _, hit = interrupted(op, delay, kind_i)
    fitted = hasattr(est, "coef_") or hasattr(est, "coefs_") or hasattr(est, "w_")
    if fitted:
        out = est.predict(X)
        assert out.shape[0] == n and np.isfinite(np.asarray(out, dtype=float)).all()
        if hasattr(est, "coefs_"):
            assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)
    # nothing left locked or claimed, no stale state: a re-fit is a fresh fit
    again = quiet(est.fit, X, y)
    fresh = quiet(_fresh(est).fit, X, y)
    np.testing.assert_array_equal(again.predict(X), fresh.predict(X))
    return f"{kind}{' partial_fit' if incremental else ''}: " \
           f"{'interrupted' if hit else 'finished'}, refit == fresh fit"


def _files(d):
    return sorted(f for f in os.listdir(d))


def case_save(rng):
    d = tempfile.mkdtemp(prefix="nnlib-fuzz-save-")
    path = os.path.join(d, "model.npz")
    old = None
    if rng.random() < 0.7:
        old = model(rng, 3, 2, max_hidden=1)
        old.save(path)
        os.chmod(path, pick(rng, [0o600, 0o644, 0o640, 0o664]))
    mode = os.stat(path).st_mode & 0o777 if old is not None else None
    width = int(pick(rng, [4, 64, 512]))
    new = nnlib.Sequential([nnlib.Dense(3, width, "tanh", random_state=1),
                            nnlib.Dense(width, width, random_state=2),
                            nnlib.Dense(width, 2, random_state=3)])
    delay, kind = random_interrupt(rng, 0.02)
    _, hit = interrupted(lambda: new.save(path), delay, kind)
    assert _files(d) in ([], ["model.npz"]), _files(d)        # no temporary file left
    if not os.path.exists(path):
        assert old is None
        return f"{'interrupted' if hit else 'finished'}: no file (none before)"
    got = nnlib.load(path)
    same_new = len(got.layers) == 3 and all(
        np.array_equal(a, b) for a, b in zip(got.params, new.params))
    same_old = old is not None and len(got.layers) == len(old.layers) and all(
        np.array_equal(a, b) for a, b in zip(got.params, old.params))
    assert same_new or same_old
    if mode is not None:
        assert os.stat(path).st_mode & 0o777 == mode
    return f"{'interrupted' if hit else 'finished'}: the {'new' if same_new else 'old'} file"


def _open_fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def case_load_predict(rng):
    d = tempfile.mkdtemp(prefix="nnlib-fuzz-load-")
    path = os.path.join(d, "model.npz")
    width = int(pick(rng, [8, 256]))
    m = nnlib.Sequential([nnlib.Dense(4, width, "relu", random_state=1),
                          nnlib.Dense(width, 3, random_state=2)])
    m.save(path)
    X = rng.standard_normal((int(pick(rng, [10, 5000, 50000])), 4))
    before = _open_fds()
    what = pick(rng, ["load", "predict", "evaluate"])
    op = {"load": lambda: nnlib.load(path), "predict": lambda: m.predict(X, batch_size=512),
          "evaluate": lambda: m.evaluate(X, np.arange(len(X)) % 3)}[what]
    delay, kind = random_interrupt(rng, 0.03)
    _, hit = interrupted(op, delay, kind)
    assert _open_fds() <= before, "a file descriptor leaked"
    assert_same_arrays(nnlib.load(path).params, m.params, "reloaded")
    assert m.predict(X[:5]).shape == (5, 3)
    return f"{what}: {'interrupted' if hit else 'finished'}"


def case_optimizer_step(rng):
    opt = optimizer(rng)
    dtype = pick(rng, [np.float64, np.float32])
    # up to 2^18 elements: past the parallel threshold (2^15), and a case with three
    # arrays, Adam's state, the replay's copies and a multi-call step's snapshot stays
    # well inside the runner's memory limit (2^20 made one case alone grow 170+ MB)
    sizes = [int(s) for s in rng.integers(1, 1 << int(rng.integers(4, 19)),
                                          int(rng.integers(1, 4)))]
    params = [rng.standard_normal(s).astype(dtype) for s in sizes]
    grads = [rng.standard_normal(s).astype(dtype) for s in sizes]
    p0, opt0 = [p.copy() for p in params], copy_opt(opt)
    threads = pick(rng, [None, 1, 2])

    def loop():
        for _ in range(100000):
            opt.step(params, grads, n_threads=threads)
    delay, kind = random_interrupt(rng, 0.05)
    _, hit = interrupted(loop, delay, kind)
    for _ in range(opt.t):
        opt0.step(p0, grads, n_threads=threads)
    assert opt0.t == opt.t
    assert_same_arrays(params, p0, f"params after t={opt.t} steps")
    # state made for an array (maybe not yet stepped; an interrupt can land between
    # two arrays' first entries) must equal the replay's for that array
    have = [i for i, p in enumerate(params) if id(p) in opt._entries]
    if have:
        opt0.state_arrays(p0)
    rows = [opt._entries[id(params[i])].rows for i in have]
    rows0 = [opt0._entries[id(p0[i])].rows for i in have]
    assert_same_arrays(rows, rows0, "state")
    # every array's own step count agrees with the updates its values took
    assert {opt._entries[id(p)].step for p in params if id(p) in opt._entries} <= {opt.t}
    return f"{'interrupted' if hit else 'finished'} ({kind}): params are t steps' worth"


def copy_opt(opt):
    import copy
    return copy.deepcopy(opt)


CASES = [case_fit, case_estimator_fit, case_save, case_load_predict, case_optimizer_step]


def test_fuzz_interrupts(request):
    run_subject(__name__, request)
