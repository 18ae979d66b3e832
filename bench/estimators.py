"""Workload 8: the scikit-learn estimators -- ``nnlib.MLPClassifier`` against scikit-learn's
``MLPClassifier``, a whole ``fit`` on the same data with the same parameters and seed.

Data: ``make_classification``, 20000 x 100, 5 classes, standardized, float64 (what that
function returns and what estimator users pass; ``--dtype`` does not apply). MLP with one
hidden layer of 100 ReLU units, ``max_iter=10`` with ``tol=0`` and a huge
``n_iter_no_change`` so every fit runs all 10 epochs (or 10 L-BFGS iterations); the
ConvergenceWarning that follows is silenced. nnlib follows scikit-learn's training rules
with the same ``random_state`` (same initial weights, same shuffles), so both reach the
same ``loss_``: that is the equal-work check.

Besides time, the peak memory a fit adds: ``tracemalloc`` started right before ``fit``
(after X, y and the estimator exist), its peak minus the memory traced at the start. It
counts every Python and NumPy allocation -- the fitted weights, optimizer state, batch
buffers, copies of X -- but not a raw C ``malloc`` inside a compiled loop.

Targets (the estimators issue): nnlib's fit >= 3x faster than scikit-learn's with Adam at
batch 200, >= 1.5x with L-BFGS, >= 6x with SGD at batch 32; nnlib's added peak memory no
more than scikit-learn's, for every solver.
"""
import gc
import tracemalloc
import warnings

from bench import data
from bench.peers import PEER_LABELS
from bench.report import fmt_bytes
from bench.results import measure_peers, median, ok_cell, table, target, \
    unavailable_cell, workload_result
from bench.timing import Unavailable
from bench.training import not_measured, speedup_target

NAME = "estimators"
TITLE = "Estimators: MLPClassifier.fit, nnlib vs scikit-learn"
PEERS = ("nnlib", "sklearn")
HIDDEN = (100,)
# (case, solver parameters, target: nnlib at least this many times faster)
CONFIGS = (
    ("adam, batch 200", {"solver": "adam", "batch_size": 200}, 3.0),
    ("lbfgs", {"solver": "lbfgs"}, 1.5),
    ("sgd, batch 32", {"solver": "sgd", "batch_size": 32}, 6.0),
)


def _sizes(ctx):
    """(rows, features, classes, informative features, max_iter)."""
    return (300, 20, 5, 8, 2) if ctx.tiny else (20000, 100, 5, 20, 10)


def _estimator_class(name):
    """(MLPClassifier class, ConvergenceWarning class) of a peer, or Unavailable."""
    if name == "nnlib":
        try:
            import nnlib
            from nnlib.exceptions import ConvergenceWarning
        except ImportError:
            raise Unavailable("not installed", "python module 'nnlib' cannot be imported") \
                from None
        if not hasattr(nnlib, "MLPClassifier"):
            raise Unavailable("not available yet", "nnlib has no MLPClassifier")
        return nnlib.MLPClassifier, ConvergenceWarning
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise Unavailable("not installed", "python module 'sklearn' cannot be imported") \
            from None
    return MLPClassifier, ConvergenceWarning


def _fitter(name, params):
    """A zero-argument callable that builds a fresh estimator, fits it on the workload's
    data and returns it."""
    cls, convergence_warning = _estimator_class(name)

    def fit(X, y):
        clf = cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", convergence_warning)
            return clf.fit(X, y)
    return fit


def added_peak_bytes(fn):
    """(peak bytes traced while ``fn()`` runs minus those traced at its start, its result)."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = fn()
        return tracemalloc.get_traced_memory()[1] - start, result
    finally:
        tracemalloc.stop()


def _row(ctx, case, params, X, y, repeats):
    fits = {}

    def builder(name):
        def build():
            fits[name] = _fitter(name, params)
            return lambda: fits[name](X, y)
        return build

    def after(name):
        # One more fit, untimed, under tracemalloc (which slows allocations); the same
        # seed gives the same loss_ as the timed fits.
        peak, clf = added_peak_bytes(lambda: fits[name](X, y))
        return {"loss_": float(clf.loss_), "n_iter_": int(clf.n_iter_),
                "loss_after": data.mean_cross_entropy(
                    list(zip(clf.coefs_, clf.intercepts_)), X, y),
                "fit_peak_bytes": peak}

    peers = [p for p in PEERS if p in ctx.peers]
    cells = measure_peers(ctx.with_repeats(repeats), {p: builder(p) for p in peers},
                          min_sample=0.0, warm_time=0.0, after=after)
    ctx.log(f"  {case}: " + ", ".join(
        f"{k} {median(c):.3f} s, loss_ {c['loss_']:.6g}, +{fmt_bytes(c['fit_peak_bytes'])}"
        if median(c) is not None and "loss_" in c else f"{k} {c['status']}"
        for k, c in cells.items()))
    return {"case": case, "params": dict(params, rows=len(X), features=X.shape[1]),
            "cells": cells}


def _memory_row(row):
    """The same row with each cell holding the added peak bytes of one fit."""
    cells = {k: ok_cell([c["fit_peak_bytes"]]) if "fit_peak_bytes" in c
             else unavailable_cell(c.get("status", "error"), c.get("detail", ""))
             for k, c in row["cells"].items()}
    return dict(row, cells=cells)


def _memory_target(rows):
    text = "estimator fit adds no more peak memory than scikit-learn's (every solver)"
    parts, met = [], True
    for row in rows:
        nn, sk = (row["cells"].get(k, {}).get("fit_peak_bytes") for k in PEERS)
        if nn is None or sk is None:
            return target(text, None, f"{row['case']}: "
                          + not_measured(row, PEERS, field="fit_peak_bytes"))
        met = met and nn <= sk
        parts.append(f"{row['case']}: nnlib {fmt_bytes(nn)}, scikit-learn {fmt_bytes(sk)}")
    return target(text, met, "; ".join(parts))


def _loss_note(rows):
    parts = []
    for row in rows:
        vals = [f"{PEER_LABELS[k]} {c['loss_']:.6g}" for k, c in row["cells"].items() if "loss_" in c]
        if vals:
            parts.append(f"{row['case']}: " + ", ".join(vals))
    return ("Final `loss_` of each fit (the estimator's own training loss, with the L2 "
            "term; same seed, so equal work shows as equal values): "
            + "; ".join(parts) + ".") if parts else ""


def run(ctx):
    n_rows, n_features, n_classes, n_informative, max_iter = _sizes(ctx)
    X, y, source = data.classification(n_rows, n_features, n_classes, n_informative)
    common = {"hidden_layer_sizes": HIDDEN, "max_iter": max_iter, "tol": 0.0,
              "n_iter_no_change": 10**9, "random_state": 0}
    repeats = ctx.scale(quick=3, full=9)
    rows = [_row(ctx, case, dict(common, **params), X, y, repeats)
            for case, params, _ in CONFIGS]
    targets = [speedup_target(f"MLPClassifier.fit wall time, {case}: nnlib >= "
                              f"{factor:g}x faster than scikit-learn", row, "sklearn", factor)
               for (case, _, factor), row in zip(CONFIGS, rows)]
    targets.append(_memory_target(rows))
    note = _loss_note(rows)
    cols = [p for p in PEERS if p in ctx.peers]
    return workload_result(
        TITLE,
        f"Seconds per `fit` (median of interleaved fits, each on a fresh estimator). "
        f"Data: {source}, {n_rows} x {n_features}, {n_classes} classes, standardized, "
        f"float64. hidden_layer_sizes={HIDDEN}, ReLU, alpha 1e-4, max_iter={max_iter}, "
        "tol=0, n_iter_no_change=1e9, random_state=0: every fit runs all its epochs "
        "(L-BFGS: iterations). Memory: peak bytes traced by tracemalloc during one more "
        "fit, minus those traced at its start (X, y and the unfitted estimator exist "
        "before); it sees Python and NumPy allocations, not a raw C malloc.",
        [table("estimators", cols, rows, notes=[note] if note else [],
               plot={"kind": "bar", "file": "estimators.png"}),
         table("estimators_memory", cols, [_memory_row(r) for r in rows], unit="bytes",
               value="bytes", notes=["Peak memory added by one `fit` (tracemalloc)."])],
        targets,
        peers={"nnlib": "nnlib.MLPClassifier(...).fit(X, y), OpenMP and BLAS at the run's "
                        "thread count",
               "sklearn": "sklearn.neural_network.MLPClassifier(...).fit(X, y), BLAS at "
                          "the run's thread count"})
