"""Fuzz: inputs, weights and optimizer state changed while nnlib uses them.

* From an epoch callback or a schedule callable during ``fit``: X, y, the validation
  data, the weights (values NaN / inf / huge, arrays replaced by others of another
  shape, dtype or layout, layers added or removed) and the optimizer (lr NaN / inf /
  negative / huge, ``reset()``, state filled with NaN, a rule switched on).
* From another thread while ``fit``, ``predict``, ``evaluate``, ``loss_and_grads``, an
  estimator's ``fit`` / ``predict_proba`` / ``score(sample_weight=...)`` or a functional
  kernel runs: X, y, sample weights and the weights rewritten in place, labels set out
  of range.

What must hold: the call returns a result of the documented shape or raises a
ValueError / TypeError / RuntimeError (ConcurrentUseError included) whose message says
what is wrong -- never a crash, a hang or another exception. A fit that returns without
reporting divergence leaves finite weights unless the mutation itself wrote non-finite
ones after the last step; the model predicts afterwards with the documented shape.

Runs in a child process within a time budget (tests/_fuzz_reliability.py).
"""
import threading
import warnings

import numpy as np

import nnlib
import nnlib.functional as F
from tests._fuzz_reliability import run_subject
from tests._reliability_cases import DOCUMENTED, optimizer, pick, problem

WEIGHT_MUTATIONS = ["nan", "inf", "huge", "replace-same", "replace-shape", "replace-dtype",
                    "replace-fortran", "append-layer", "drop-layer", "readonly"]
OPT_MUTATIONS = ["lr-nan", "lr-inf", "lr-neg", "lr-huge", "reset", "state-nan", "momentum"]
DATA_MUTATIONS = ["X-nan", "X-huge", "X-shuffle", "y-range", "y-nan", "val-nan", "val-y"]


def _documented(exc):
    """The outcome label of an allowed exception; re-raises anything else."""
    if isinstance(exc, DOCUMENTED) and str(exc):
        return f"refused {type(exc).__name__}"
    raise exc


def _mutate(rng, what, m, opt, X, y, val):
    dense = [l for l in m.layers if hasattr(l, "W")] or [m.layers[0]]
    layer = dense[int(rng.integers(len(dense)))]
    if what in ("nan", "inf", "huge"):
        layer.W.reshape(-1)[int(rng.integers(layer.W.size))] = \
            {"nan": np.nan, "inf": np.inf, "huge": 1e300}[what]
    elif what == "replace-same":
        layer.W = rng.standard_normal(layer.W.shape).astype(layer.W.dtype)
    elif what == "replace-shape":
        layer.W = np.zeros((layer.W.shape[0] + 1, layer.W.shape[1]), layer.W.dtype)
    elif what == "replace-dtype":
        layer.W = layer.W.astype(np.float32 if layer.W.dtype == np.float64 else np.float64)
    elif what == "replace-fortran":
        layer.W = np.asfortranarray(layer.W + 0)
    elif what == "append-layer":
        m.layers.append(nnlib.Dense(m.n_out, m.n_out, dtype=m.dtype))
    elif what == "drop-layer":
        del m.layers[-1]
    elif what == "readonly":
        layer.b.flags.writeable = False
    elif what.startswith("lr-"):
        opt.lr = {"lr-nan": np.nan, "lr-inf": np.inf, "lr-neg": -0.1, "lr-huge": 1e300}[what]
    elif what == "reset":
        opt.reset()
    elif what == "state-nan":
        entry = opt._entries.get(id(m.params[0])) if m.params else None
        if entry is not None and entry.rows.size:    # (SGD keeps 0 slots)
            entry.rows.reshape(-1)[0] = np.nan
    elif what == "momentum":
        if hasattr(opt, "momentum"):
            opt.momentum = 0.5 if not opt.momentum else 0.0
    elif what == "X-nan":
        X.reshape(-1)[int(rng.integers(X.size))] = np.nan
    elif what == "X-huge":
        X.reshape(-1)[int(rng.integers(X.size))] = 1e300
    elif what == "X-shuffle":
        rng.shuffle(X)
    elif what == "y-range":
        if y.dtype.kind in "iu":
            y.reshape(-1)[int(rng.integers(y.size))] = pick(rng, [-1, 10 ** 9, 2 ** 62])
    elif what == "y-nan":
        if y.dtype.kind == "f":
            y.reshape(-1)[int(rng.integers(y.size))] = np.nan
    elif what == "val-nan" and val is not None:
        val[0].reshape(-1)[0] = np.nan
    elif what == "val-y" and val is not None and val[1].dtype.kind in "iu":
        val[1].reshape(-1)[0] = 10 ** 6


def case_fit_callback(rng):
    X, y, loss, m, opt = problem(rng, python_layers=True, n=int(rng.integers(2, 400)))
    n_val = max(1, len(X) // 4)
    val = (X[:n_val].copy(), y[:n_val].copy()) if rng.random() < 0.5 else None
    what = pick(rng, pick(rng, [WEIGHT_MUTATIONS, OPT_MUTATIONS, DATA_MUTATIONS]))
    epochs = int(rng.integers(1, 6))
    at = int(rng.integers(epochs))
    last_epoch = [None]

    def callback(epoch, logs):
        last_epoch[0] = epoch
        if epoch == at:
            _mutate(rng, what, m, opt, X, y, val)
        return False

    def schedule(epoch):
        if epoch == at:
            _mutate(rng, what, m, opt, X, y, val)
        return opt.lr
    kw = dict(callbacks=[callback]) if rng.random() < 0.7 else dict(schedule=schedule)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hist = m.fit(X, y, loss=loss, optimizer=opt, epochs=epochs,
                         batch_size=int(pick(rng, [1, 8, 64])), validation_data=val,
                         early_stopping=pick(rng, [None, 1]), **kw)
            outcome = "returned"
        except Exception as exc:             # noqa: BLE001 - judged
            hist, outcome = None, _documented(exc)
    wrote_nonfinite = what in ("nan", "inf", "huge", "state-nan", "lr-nan", "lr-inf",
                               "lr-huge", "X-huge")
    if hist is not None and hist.stop_reason != "nonfinite" and not wrote_nonfinite:
        try:
            params = m.params
        except Exception:                    # noqa: BLE001 - layers edited by the case
            params = []
        assert all(np.isfinite(np.asarray(p, dtype=float)).all() for p in params), \
            f"fit returned non-finite weights without a warning ({what})"
    if hist is not None and hist.stop_reason == "nonfinite":
        assert any(issubclass(w.category, RuntimeWarning) for w in caught)
    try:
        Xp = X[:3] if np.isfinite(X[:3]).all() else np.zeros((3, X.shape[1]))
        assert m.predict(Xp).shape == (len(Xp), m.n_out)
    except Exception as exc:                 # noqa: BLE001 - judged
        _documented(exc)
    return f"{what}: {outcome}"


class _Scribbler:
    """A thread that keeps rewriting ``arrays`` in place (random values, sometimes NaN
    or out-of-range labels) until stopped."""

    def __init__(self, rng, arrays):
        self.stop, self.arrays = threading.Event(), [a for a in arrays if a is not None]
        self.seed = int(rng.integers(1 << 30))
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        rng = np.random.default_rng(self.seed)
        while not self.stop.is_set():
            for a in self.arrays:
                if not a.flags.writeable or a.size == 0:
                    continue
                flat = a.reshape(-1)
                i = int(rng.integers(flat.size))
                if a.dtype.kind in "iu":
                    flat[i] = pick(rng, [0, 1, -1, 10 ** 9])
                else:
                    flat[i] = pick(rng, [0.0, 1.0, -3.0, np.nan, 1e300])

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return False


def case_thread_scribbles_during_call(rng):
    X, y, loss, m, opt = problem(rng, python_layers=True, n=int(pick(rng, [50, 2000, 20000])))
    what = pick(rng, ["fit", "predict", "evaluate", "loss_and_grads", "kernel",
                      "estimator-fit", "estimator-proba", "score"])
    targets = pick(rng, [["X"], ["y"], ["W"], ["X", "y", "W"]])
    W = m.layers[0].W
    arrays = {"X": X, "y": np.asarray(y), "W": W}
    sw = rng.uniform(0, 1, len(X))
    z = rng.standard_normal((len(X), 4))
    labels = rng.integers(0, 4, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = None
        if what.startswith("estimator") or what == "score":
            from nnlib.estimators import MLPClassifier
            ycls = (np.arange(len(X)) % 3).astype(np.int64)
            est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
            est.fit(X, ycls)
            arrays["y"] = ycls
            arrays["W"] = est.coefs_[0]
            arrays["sw"] = sw
        if what == "kernel":
            arrays = {"X": z, "y": labels}
        scribbled = [arrays[k] for k in targets if k in arrays] + \
            ([sw] if what == "score" else [])
        call = {
            "fit": lambda: m.fit(X, y, loss=loss, optimizer=opt, epochs=2, batch_size=4),
            "predict": lambda: m.predict(X),
            "evaluate": lambda: m.evaluate(X, y, loss=loss),
            "loss_and_grads": lambda: m.loss_and_grads(X, y, loss=loss),
            "kernel": lambda: pick(rng, [F.softmax_cross_entropy_grad, F.hinge_loss,
                                          F.sparsemax_loss, F.softmax_cross_entropy])(
                                              z, labels),
            "estimator-fit": lambda: est.fit(X, arrays["y"]),
            "estimator-proba": lambda: est.predict_proba(X),
            "score": lambda: est.score(X, arrays["y"], sample_weight=sw),
        }[what]
        with _Scribbler(rng, scribbled):
            try:
                out = call()
                outcome = "returned"
            except Exception as exc:             # noqa: BLE001 - judged
                out, outcome = None, _documented(exc)
    if what == "predict" and out is not None:
        assert out.shape == (len(X), m.n_out)
    if what == "estimator-proba" and out is not None:
        assert out.shape == (len(X), 3)
    if what == "kernel" and out is not None:
        shapes = [np.shape(o) for o in (out if isinstance(out, tuple) else (out,))]
        assert all(s in ((), (len(X), 4), (len(X),)) for s in shapes), shapes
    return f"{what} ({'+'.join(targets)}): {outcome}"


CASES = [case_fit_callback, case_thread_scribbles_during_call]


def test_fuzz_mutation(request):
    run_subject(__name__, request)
