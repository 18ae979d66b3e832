"""Sequential models: a stack of Dense layers, its loss and gradients, compiled training,
and a versioned file format.

Training runs one compiled call per epoch (``nnlib/_kernels/train.pyx``): shuffling,
batching, forward, loss, backward, L2 and the optimizer update all happen there with the
GIL released. Python only draws the seeded permutation, sets the learning rate (schedules),
evaluates validation data, and keeps the history.

File format (``Sequential.save`` / :func:`load`), version 1
-----------------------------------------------------------
An uncompressed ``.npz`` (a zip of ``.npy`` files, readable with
``np.load(path, allow_pickle=False)``) holding

* ``header``: a uint8 array, the UTF-8 bytes of a JSON object::

      {"format": "nnlib.Sequential", "version": 1, "dtype": "float64",
       "layers": [{"type": "Dense", "n_in": 2, "n_out": 4, "activation": "tanh",
                   "activation_param": null, "init": "glorot_uniform"}, ...],
       "arrays": ["W0", "b0", "W1", "b1", ...],
       "sha256": "<hex digest of the arrays' bytes, in that order, C order>"}

* ``W0, b0, W1, b1, ...``: the weights (n_in, n_out) and biases (n_out,) of each layer.

The file is written to a temporary file in the target directory and moved into place with
``os.replace``, so a crash never leaves a half-written model under the target name.
Loading checks the format name, version, layer specs, array shapes and dtypes, and the
checksum; any mismatch raises ``ValueError`` saying what is wrong.
"""
import math
import os
import threading
import time
import warnings
import weakref

import numpy as np

# hashlib (OpenSSL), json, tempfile and zipfile are imported inside save/load: together
# they would add tens of milliseconds to ``import nnlib``.

from nnlib._codes import ACTIVATION_CODES, CLASS_LABEL_LOSSES, loss_code
from nnlib._dense_args import activation_spec
from nnlib._labels import _numeric, check_binary_labels, check_class_labels
from nnlib._progress import Progress
from nnlib._threads import resolve_threads
from nnlib._validation import (DTypeError, NonFiniteError, ShapeError, as_float_array,
                               check_finite, check_fits_dtype, check_int_scalar,
                               check_real_scalar)
from nnlib.layers import Dense, as_generator

__all__ = ["Sequential", "History", "load", "FORMAT_VERSION"]

# GEMMs below this many flops run on one BLAS thread during fit (see fit).
BLAS_SPLIT_FLOPS = 8_000_000

FORMAT_NAME = "nnlib.Sequential"
FORMAT_VERSION = 1


def _train():
    from nnlib._kernels import blas, train
    blas.load()
    return train


class History:
    """What ``fit`` did, epoch by epoch.

    Attributes
    ----------
    history : dict of lists
        ``loss`` (mean training loss of the epoch, L2 term included), ``time`` (seconds),
        ``lr``, and with validation data ``val_loss`` and, for classification losses,
        ``val_accuracy``.
    epochs : int
        Epochs completed.
    stop_reason : None, "early_stopping", "callback" or "nonfinite"
    nonfinite : None or dict
        When training stopped on a non-finite loss or gradient: the epoch, the step
        within it, and what was non-finite. The weights are those of the last finite step.
    """

    def __init__(self):
        self.history = {"loss": [], "time": [], "lr": []}
        self.epochs = 0
        self.stop_reason = None
        self.nonfinite = None

    def append(self, **values):
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={self.epochs}, last={last}, stop_reason={self.stop_reason})"


class Sequential:
    """A stack of :class:`~nnlib.Dense` layers applied in order.

    Parameters
    ----------
    layers : list of Dense
        Consecutive widths must agree (``layers[i].n_out == layers[i+1].n_in``) and all
        layers share one dtype.

    Attributes
    ----------
    params : list of ndarray
        ``[W1, b1, W2, b2, ...]``, the live arrays (writing into them changes the model).
    """

    # Factor on the data loss that fit reports (history["loss"]), never on the gradient:
    # 1 for every user model. MLPRegressor sets 1/n_outputs on the model it trains, to
    # report scikit-learn's multi-output squared loss (the mean over the outputs, whose
    # gradient scikit-learn takes as that of the sum).
    _loss_report_scale = 1.0

    def __init__(self, layers):
        self.layers = list(layers)
        self._check_layers()

    def _check_layers(self):
        """The stack must be Dense layers with matching widths and one dtype (checked
        again before every compiled call: ``layers`` is a plain list users can edit, and
        the compiled loops trust these shapes)."""
        layers = self.layers
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{i}] must be a nnlib.Dense; got "
                                f"{type(layer).__name__}")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise ShapeError(f"layers[{i}] expects {layers[i].n_in} inputs but "
                                 f"layers[{i - 1}] gives {layers[i - 1].n_out} outputs")
            if layers[i].dtype != layers[0].dtype:
                raise DTypeError(f"all layers must share a dtype; layers[0] is "
                                 f"{layers[0].dtype}, layers[{i}] is {layers[i].dtype}")

    # -- structure ------------------------------------------------------------------
    @property
    def params(self):
        return [p for layer in self.layers for p in layer.params]

    @property
    def dtype(self):
        return self.layers[0].dtype

    @property
    def n_in(self):
        return self.layers[0].n_in

    @property
    def n_out(self):
        return self.layers[-1].n_out

    def _sizes(self):
        return [self.n_in] + [layer.n_out for layer in self.layers]

    def _net(self, train):
        for layer in self.layers:
            layer._check_live()
        self._check_layers()
        specs = [activation_spec(*l._act_args(), l.dtype) for l in self.layers]
        key = (tuple(self._sizes()), tuple(specs))
        cached = _NETS.get(self)
        if cached is not None and cached[0] == key:
            return cached[1]
        net = train.make_net(list(key[0]), [code for code, _ in specs],
                             [param for _, param in specs])
        _NETS[self] = (key, net)
        return net

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}])"

    # -- inputs -----------------------------------------------------------------------
    def _inputs(self, X, name="X", finite=False):
        """X as a C-contiguous (n, n_in) array of the model's dtype (other float
        precisions and integers are converted). ``finite``: raise NonFiniteError naming
        the first row that holds NaN or +-inf, or a value beyond the model's dtype (1e300
        given to a float32 model would silently become inf in the conversion)."""
        given = X
        X = as_float_array(X, name, dtype=self.dtype, ndim=2)
        if X.shape[1] != self.n_in:
            raise ShapeError(f"{name} has {X.shape[1]} features but the model expects "
                             f"{self.n_in} (shape {X.shape})")
        # the compiled test costs one pass (microseconds); the NumPy search that names
        # the row runs only when it fails
        if finite and not _train().all_finite(X):
            src = np.asarray(given)
            if src.dtype.kind == "f" and src.dtype.itemsize > X.dtype.itemsize:
                row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
                col = int(np.flatnonzero(~np.isfinite(X[row]))[0])
                val = src[row, col]
                if np.isfinite(val):
                    raise NonFiniteError(
                        f"{name} must be finite; row {row} holds {float(val)!r} (column "
                        f"{col}), beyond the range of {self.dtype.name} (max "
                        f"{float(np.finfo(self.dtype).max):.7g}), the model's dtype: it "
                        f"would become inf; scale {name} or use a float64 model")
            check_finite(X, name)
        return X

    def _targets(self, y, loss, n):
        """(y_target (n, c or 0), y_label (n or 1,)) for the compiled loss."""
        c = self.n_out
        if loss in CLASS_LABEL_LOSSES:
            if c < 2 and loss != "hinge_loss":
                raise ShapeError(f"{loss} needs an output layer with >= 2 units; the "
                                 f"model has {c}")
            return (np.empty((n, 0), self.dtype),
                    check_class_labels(y, n, c, name="y"))
        if loss == "logistic_loss":
            if c == 1:
                t = check_binary_labels(y, n, self.dtype, name="y").reshape(n, 1)
            else:
                # multilabel: one independent logistic output per column of a 0/1 matrix
                arr = _numeric(y, "y")        # the dtype first, as for one output
                if arr.shape != (n, c):
                    raise ShapeError(f"y must have shape ({n}, {c}) for logistic_loss on "
                                     f"{c} outputs (a 0/1 indicator matrix, one column per "
                                     f"output); got {arr.shape}")
                t = check_binary_labels(arr.reshape(-1), n * c, self.dtype,
                                        name="y.ravel()").reshape(n, c)
        else:   # squared_error
            t = as_float_array(y, "y", dtype=self.dtype)
            if t.ndim == 1 and c == 1:
                t = t.reshape(-1, 1)
            if t.shape != (n, c):
                raise ShapeError(f"y must have shape ({n}, {c}) for squared_error (one "
                                 f"target row per sample); got {t.shape}")
            check_finite(t, "y")
        return np.ascontiguousarray(t), np.zeros(1, np.int64)

    # -- inference --------------------------------------------------------------------
    def forward(self, X, n_threads=None):
        """Output of the last layer (after its activation), shape (n, n_out).

        Raises NonFiniteError if X holds NaN or +-inf (naming the first such row), or if
        the output is not finite for a finite X (the products overflowed the dtype:
        scale X), so a prediction is never silently NaN or inf."""
        return self._forward_checked(self._inputs(X, finite=True), n_threads)

    def predict(self, X, batch_size=4096, n_threads=None):
        """The model's output for X, computed in chunks of ``batch_size`` rows (so large
        inputs need no intermediate activations for all rows at once). Errors as
        :meth:`forward`."""
        batch_size = check_int_scalar(batch_size, "batch_size", low=1)
        X = self._inputs(X, finite=True)
        if X.shape[0] <= batch_size:
            return self._forward_checked(X, n_threads)
        return np.concatenate([self._forward_checked(X[i:i + batch_size], n_threads, i)
                               for i in range(0, X.shape[0], batch_size)])

    def _forward_checked(self, X, n_threads, row0=0):
        # X: finite, validated by _inputs
        train = _train()
        H = X
        for layer in self.layers:
            H = layer.forward(H, n_threads=n_threads)
        if H.size and not train.all_finite(np.ascontiguousarray(H)):
            bad = int(np.flatnonzero(~np.isfinite(H).all(axis=1))[0]) + row0
            what = ("the weights are not finite"
                    if not all(np.isfinite(p).all() for p in self.params) else
                    "the products overflowed: X's values are too large for the weights; "
                    "scale X, e.g. standardize it")
            raise NonFiniteError(f"Sequential's output for row {bad} of X is not finite "
                                 f"({what})")
        return H

    # -- objective --------------------------------------------------------------------
    def loss_and_grads(self, X, y, loss="softmax_cross_entropy", l2=0.0, margin=1.0,
                       n_threads=None):
        """Mean loss over the rows of X plus ``l2/2 * sum ||W||^2``, and its gradient.

        Parameters
        ----------
        X : array_like (n, n_in), n >= 1
        y : class labels (n,) for softmax_cross_entropy, sparsemax_loss, hinge_loss;
            {0, 1} labels (n,) for logistic_loss with 1 output unit, or an (n, n_out) 0/1
            matrix with more (multilabel: one logistic output per column, the loss summed
            over the columns); targets (n, n_out) for squared_error.
        loss : str
        l2 : float >= 0
            L2 penalty on the weights (not the biases); at most the dtype's largest
            value (DTypeRangeError).
        margin : float >= 0
            hinge_loss's margin (0 is the perceptron criterion).

        Returns
        -------
        loss : float
        grads : list of ndarray
            ``[dW1, db1, dW2, db2, ...]`` in the order of ``params``. If the loss or a
            gradient is not finite, they are returned as computed (NaN/inf) with a
            RuntimeWarning.
        """
        value, grads, status, _ = self._objective(X, y, loss, l2, margin, n_threads, True)
        # The kernel checks the data loss and the bias gradients (column sums of dZ). That
        # misses an L2 penalty l2/2 ||W||^2 that overflows (weights ~1e154), and covers
        # dW = H^T dZ only while every H is finite: an inf in X or a hidden output that
        # overflows gives NaN/inf in dW next to a finite db (both found by
        # tests/test_fuzz_models.py).
        if not status and not math.isfinite(value):
            status = 1
        if not status and not all(np.isfinite(g).all() for g in grads):
            status = 2
        if status:
            warnings.warn(f"loss_and_grads: the {'loss' if status == 1 else 'gradient'} "
                          "is not finite", RuntimeWarning, stacklevel=2)
        return value, grads

    def _objective(self, X, y, loss, l2, margin, n_threads, grads):
        """The compiled loss (and gradients): (loss, grads or None, status, output)."""
        train = _train()
        code = loss_code(loss)
        l2 = check_real_scalar(l2, "l2", low=0.0)
        # the compiled loop adds l2 * W in the model's dtype
        check_fits_dtype(l2, "l2", self.dtype)
        margin = check_real_scalar(margin, "margin", low=0.0)
        X = self._inputs(X)
        if X.shape[0] == 0:
            raise ShapeError("X must have at least one row")
        yt, yl = self._targets(y, loss, X.shape[0])
        net = self._net(train)
        sizes = self._sizes()
        ws = train.workspace(sizes, X.shape[0], yt.shape[1], self.dtype)
        dWs = [np.empty_like(l.W) for l in self.layers]
        dbs = [np.empty_like(l.b) for l in self.layers]
        threads = resolve_threads(n_threads, X.shape[0] * max(sizes))
        value, status = train.loss_grad(net, [l.W for l in self.layers],
                                        [l.b for l in self.layers], X, yt, yl, code,
                                        margin, l2, ws, dWs, dbs, threads, grads)
        out = [g for pair in zip(dWs, dbs) for g in pair] if grads else None
        return float(value), out, status, (ws["H"][-1], yt, yl)

    def evaluate(self, X, y, loss="softmax_cross_entropy", margin=1.0, n_threads=None):
        """(mean loss, accuracy) of the model on (X, y), without L2. The accuracy is
        None for squared_error; for logistic_loss the prediction is ``output > 0`` and a
        row counts as correct when all its outputs are (multilabel: exact match)."""
        value, _, _, (Z, yt, yl) = self._objective(X, y, loss, 0.0, margin, n_threads,
                                                   False)
        if loss in CLASS_LABEL_LOSSES:
            acc = float(np.mean(Z.argmax(axis=1) == yl))
        elif loss == "logistic_loss":
            acc = float(np.mean(((Z > 0) == (yt > 0.5)).all(axis=1)))
        else:
            acc = None
        return value, acc

    # -- training ---------------------------------------------------------------------
    def fit(self, X, y, loss="softmax_cross_entropy", optimizer=None, epochs=1,
            batch_size=32, shuffle=True, validation_data=None, validation_split=0.0,
            early_stopping=None, callbacks=None, verbose=0, random_state=None, l2=0.0,
            schedule=None, n_threads=None, margin=1.0, l2_per_batch=False):
        """Train in place with mini-batch gradient steps; one compiled call per epoch.

        Parameters
        ----------
        X : array_like (n, n_in);  y : as in :meth:`loss_and_grads`.
        loss : str, default "softmax_cross_entropy"
        optimizer : nnlib.optim optimizer, default ``SGD(lr=0.01)``
            Its state and step count ``t`` carry over between calls to ``fit``.
        epochs : int >= 0
        batch_size : int >= 1 (1 = per-sample SGD); the last batch may be shorter.
        shuffle : bool
            Draw a new permutation each epoch from ``random_state``.
        validation_data : (X_val, y_val), optional
        validation_split : float in [0, 1)
            Use the last fraction of the rows (before shuffling) for validation.
        early_stopping : None, int or dict
            Patience in epochs, or ``dict(patience=5, min_delta=0.0, monitor=...,
            restore_best=True)``; ``monitor`` is "val_loss" when there is validation data,
            else "loss". Stops when the monitored value has not improved by ``min_delta``
            for ``patience`` epochs, then restores the best weights.
        callbacks : list of callables ``cb(epoch, logs) -> bool``
            Called after each epoch with the epoch's logs (loss, val_loss, ...); a true
            return value stops training.
        verbose : bool or int >= 0
            0 (False) silent. 1: on a terminal, a bar redrawn in place about every 0.1 s, also
            within an epoch (step, running loss, ETA), then the epoch's loss, validation
            metrics and time; elsewhere (a file, a pipe) one line per epoch. 2 or more:
            one line per epoch. The trained weights do not depend on ``verbose``.
        random_state : None, int or numpy Generator
            Seed of the shuffling.
        l2 : float >= 0
            L2 penalty ``l2/2 * sum ||W||^2`` added to each batch's loss (not on biases).
            It and the optimizer's ``lr`` must fit the model's dtype (at most 3.4e38 for
            float32; else DTypeRangeError, checked before every epoch for ``lr``).
        l2_per_batch : bool
            Divide ``l2`` by the batch length (scikit-learn's ``alpha`` semantics).
        schedule : nnlib.schedules.Schedule or callable, optional
            A :mod:`nnlib.schedules` schedule is bound to ``optimizer`` and stepped after
            every epoch with the monitored metric (``val_loss`` when there is validation
            data, else ``loss``; ReduceOnPlateau uses it, the others ignore it). A plain
            callable ``schedule(epoch) -> lr`` (0-based epoch) sets ``optimizer.lr``
            before each epoch.
        n_threads : int or None
            BLAS threads during the fit (None: the cores other processes leave free by
            the load average, and 1 when the products are small); restored afterwards.
            The compiled elementwise passes use one thread.
        margin : float >= 0
            hinge_loss's margin.

        Returns
        -------
        History
            Per-epoch loss, time, lr and validation metrics. If a loss or gradient
            became non-finite, or an update overflowed the weights or the optimizer's
            state (e.g. a squared gradient beyond the dtype's range in Adam), training
            stops with a RuntimeWarning, the weights and the optimizer state are left
            at the last finite step and ``history.nonfinite`` says where.
        """
        from nnlib import optim as _optim
        train = _train()
        code = loss_code(loss)
        epochs = check_int_scalar(epochs, "epochs", low=0)
        batch_size = check_int_scalar(batch_size, "batch_size", low=1)
        l2 = check_real_scalar(l2, "l2", low=0.0)
        # l2 and the learning rate are cast to the model's dtype in the compiled loop
        # (the fused SGD step): beyond its range they would be inf (0 * inf = NaN).
        check_fits_dtype(l2, "l2", self.dtype)
        margin = check_real_scalar(margin, "margin", low=0.0)
        verbose = (int(verbose) if isinstance(verbose, (bool, np.bool_))
                   else check_int_scalar(verbose, "verbose", low=0))
        validation_split = check_real_scalar(validation_split, "validation_split",
                                             low=0.0, high=1.0, high_open=True)
        if optimizer is None:
            optimizer = _optim.SGD(lr=0.01)
        if not hasattr(optimizer, "config") or not hasattr(optimizer, "state_arrays"):
            raise TypeError(f"optimizer must be an nnlib.optim optimizer; got "
                            f"{type(optimizer).__name__}")
        rng = as_generator(random_state)
        X = self._inputs(X, finite=True)
        n_total = X.shape[0]
        if validation_data is not None and validation_split > 0:
            raise ValueError("give validation_data or validation_split, not both")
        if validation_split > 0:
            n_val = int(math.ceil(n_total * validation_split))
            if n_val >= n_total:
                raise ValueError(f"validation_split={validation_split} leaves no rows to "
                                 f"train on ({n_total} rows)")
            y_arr = np.asarray(y)
            validation_data = (X[n_total - n_val:], y_arr[n_total - n_val:])
            X, y = X[:n_total - n_val], y_arr[:n_total - n_val]
        if X.shape[0] == 0:
            raise ShapeError("X must have at least one row to train on")
        yt, yl = self._targets(y, loss, X.shape[0])
        if validation_data is not None:
            try:
                Xv, yv = validation_data
            except (TypeError, ValueError):
                raise TypeError("validation_data must be a pair (X_val, y_val)") from None
            Xv = self._inputs(Xv, "X_val")
            self._targets(yv, loss, Xv.shape[0])    # validate once, up front
        stopper = _EarlyStopping(early_stopping, validation_data is not None)
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callables cb(epoch, logs); got {cb!r}")

        sizes = self._sizes()
        net = self._net(train)
        Ws = [l.W for l in self.layers]
        bs = [l.b for l in self.layers]
        params = self.params
        cfg = optimizer.config()
        if train.state_slots(cfg):
            states = [s for s in optimizer.state_arrays(params)]
            states = [s.reshape(-1) if s.size else None for s in states]
        else:
            states = [None] * len(params)
        for i, st in enumerate(states):
            # a non-finite state would stop the first epoch as if it had diverged
            if st is not None and not np.isfinite(st).all():
                raise NonFiniteError(f"the optimizer's state for params[{i}] is not finite "
                                     "(left by a step on a non-finite gradient?); call "
                                     "optimizer.reset()")
        ws_key = (tuple(sizes), min(batch_size, X.shape[0]), yt.shape[1], self.dtype)
        ws = _take_workspace(self, ws_key)
        if ws is None:
            ws = train.workspace(*ws_key)
        n = X.shape[0]
        # Threads: the GEMMs are BLAS's to parallelize; the compiled elementwise passes
        # stay on one thread (an OpenMP pool spinning next to OpenBLAS's on the same
        # cores slowed large batches several-fold). Products too small to split
        # (< BLAS_SPLIT_FLOPS per GEMM) run BLAS single-threaded: its fork/join would
        # cost more than it saves, and far more on a loaded machine. With
        # n_threads=None, BLAS gets only the cores other processes leave free
        # (_free_cores). The optimizer update could be split too (train_epoch's
        # update_threads), but stays on one thread as well: 784-512-512-10 with Adam,
        # n_threads=2, on this 2-core machine at load ~3, took 1.58 s per 4096-row epoch
        # with a 2-thread update vs 0.76 s (OpenMP's spinning workers stall OpenBLAS's);
        # it gained only in one of six samples, apparently with a core free (0.30 vs
        # 0.37 s).
        threads = 1
        blas_threads = (resolve_threads(n_threads, 1 << 30) if n_threads is not None
                        else _free_cores())
        largest = 2 * min(batch_size, n) * max(a * b for a, b in zip(sizes, sizes[1:]))
        if largest < BLAS_SPLIT_FLOPS:
            blas_threads = 1
        stepped = hasattr(schedule, "step") and hasattr(schedule, "bind")
        if stepped and getattr(schedule, "optimizer", None) is not optimizer:
            schedule.bind(optimizer)
        elif schedule is not None and not stepped and not callable(schedule):
            raise TypeError(f"schedule must be an nnlib.schedules schedule or a callable "
                            f"epoch -> lr; got {schedule!r}")
        history = History()
        progress = Progress(epochs, -(-n // batch_size), verbose)
        _blas_threads_enter(blas_threads)
        try:
            for epoch in range(epochs):
                if schedule is not None and not stepped:
                    optimizer.lr = schedule(epoch)
                cfg = optimizer.config()
                check_fits_dtype(cfg["lr"], "optimizer lr", self.dtype)
                order = (rng.permutation(n) if shuffle else np.arange(n)).astype(
                    np.int64, copy=False)
                tic = time.perf_counter()
                total, seen, steps, status, what = self._run_epoch(
                    train, net, Ws, bs, X, yt, yl, order, batch_size, code, margin, l2,
                    l2_per_batch, optimizer, states, ws, threads, params, progress, epoch,
                    cfg)
                if status:
                    history.nonfinite = {"epoch": epoch, "step": steps, "what": what}
                    history.stop_reason = "nonfinite"
                    warnings.warn(
                        f"training stopped at epoch {epoch}, step {steps}: the "
                        f"{what} became non-finite (lower the "
                        f"learning rate?); the weights are those of the last finite step",
                        RuntimeWarning, stacklevel=2)
                    if seen:
                        history.append(loss=total / seen, time=time.perf_counter() - tic,
                                       lr=optimizer.lr)
                    history.epochs = epoch + (1 if seen else 0)
                    break
                logs = {"loss": total / seen, "time": time.perf_counter() - tic,
                        "lr": optimizer.lr}
                if validation_data is not None:
                    val_loss, val_acc = self.evaluate(Xv, yv, loss, margin)
                    logs["val_loss"] = val_loss
                    if val_acc is not None:
                        logs["val_accuracy"] = val_acc
                history.append(**logs)
                history.epochs = epoch + 1
                progress.epoch_done(epoch, logs)
                if stepped:
                    schedule.step(logs.get("val_loss", logs["loss"]))
                if stopper.update(epoch, logs, params):
                    history.stop_reason = "early_stopping"
                    stopper.restore(params)
                    break
                if any(cb(epoch, logs) for cb in callbacks):
                    history.stop_reason = "callback"
                    break
        finally:
            _blas_threads_exit()
            progress.close()
            _keep_workspace(self, ws_key, ws)
        return history

    def _run_epoch(self, train, net, Ws, bs, X, yt, yl, order, batch_size, code, margin,
                   l2, l2_per_batch, optimizer, states, ws, threads, params, progress,
                   epoch, cfg=None):
        """One epoch in compiled pieces of whole batches (one piece unless a progress bar
        is redrawn within the epoch); the same batches and updates either way.

        Returns (loss_sum, seen, steps, status, what): status 0, or 1 if a loss, gradient
        or updated weight became non-finite -- then the weights and optimizer state are
        those of the last finite step, ``steps`` counts the steps kept and ``what`` names
        the fault."""
        n = order.shape[0]
        if cfg is None:
            cfg = optimizer.config()
        total = 0.0
        seen = steps = 0
        start = 0
        while start < n:
            stop = min(n, start + progress.piece_steps() * batch_size)
            piece = order[start:stop]
            snapshot = [p.copy() for p in params]
            state_snap = [None if s is None else s.copy() for s in states]
            t0 = optimizer.t
            tic = time.perf_counter()
            p_total, p_seen, p_steps, status, finite = train.train_epoch(
                net, Ws, bs, X, yt, yl, piece, batch_size, code, margin, l2,
                l2_per_batch, cfg, states, t0, ws, -1, threads, threads,
                self._loss_report_scale)
            optimizer.t = t0 + p_steps
            total += p_total
            seen += p_seen
            bad_weights = not finite
            if status or bad_weights:
                p_steps = self._rewind(train, net, Ws, bs, X, yt, yl, piece, batch_size,
                                       code, margin, l2, l2_per_batch, cfg, states, t0,
                                       ws, threads, params, snapshot, state_snap, p_steps,
                                       bad_weights)
                optimizer.t = t0 + p_steps
                what = ("loss" if status == 1 else "gradient" if status == 2
                        else "weights or optimizer state after an update")
                return total, seen, steps + p_steps, 1, what
            steps += p_steps
            start = stop
            progress.piece_done(epoch, steps, total, seen, p_steps,
                                time.perf_counter() - tic)
        return total, seen, steps, 0, None

    def _rewind(self, train, net, Ws, bs, X, yt, yl, order, batch_size, code, margin, l2,
                l2_per_batch, cfg, states, t0, ws, threads, params, snapshot, state_snap,
                steps, bad_weights):
        """Leave the weights and optimizer state at the last finite step of this piece;
        return its count.

        ``steps`` updates were applied. If they left a non-finite weight or state (an
        update overflowed), restore the start-of-piece copy, replay with a check after
        every step to find the first update that overflowed, restore again and replay
        only the steps before it (deterministic: two replays, whatever the step)."""
        if not bad_weights:
            return steps

        def restore():
            for p, s in zip(params, snapshot):
                p[...] = s
            for st, s in zip(states, state_snap):
                if st is not None:
                    st[...] = s

        restore()
        _, _, good, status, _ = train.train_epoch(
            net, Ws, bs, X, yt, yl, order, batch_size, code, margin, l2, l2_per_batch,
            cfg, states, t0, ws, steps, threads, threads, self._loss_report_scale,
            check_updates=True)
        restore()
        if status == 3 and good:
            train.train_epoch(net, Ws, bs, X, yt, yl, order, batch_size, code, margin,
                              l2, l2_per_batch, cfg, states, t0, ws, good, threads,
                              threads, self._loss_report_scale)
        elif status != 3:       # cannot happen (replays are exact); keep the safe point
            good = 0
        return good

    # -- persistence ------------------------------------------------------------------
    def save(self, path):
        """Write the model to ``path`` (format version 1, see the module docstring),
        atomically."""
        import json
        import tempfile
        arrays = {}
        for i, layer in enumerate(self.layers):
            arrays[f"W{i}"] = np.ascontiguousarray(layer.W)
            arrays[f"b{i}"] = np.ascontiguousarray(layer.b)
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                  "dtype": self.dtype.name,
                  "layers": [layer.spec() for layer in self.layers],
                  "arrays": list(arrays), "sha256": _digest(arrays.values())}
        payload = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
        payload.update(arrays)
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".nnlib-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


# BLAS's thread count is process-wide. Concurrent fits (Python threads) each saved and
# restored it, so the last to finish could restore another fit's setting and leave the
# process on 1 thread (found by tests/test_training_faults.py). Now the first fit to
# enter saves the original count and the last to leave restores it.
_BLAS_LOCK = threading.Lock()
_blas_users = 0
_blas_saved = None


# The count is only read, and written when it differs: each ctypes call costs ~1 us, and
# ~6 us when fit runs with cold caches (once per epoch in a benchmark loop).
def _blas_threads_enter(n):
    global _blas_users, _blas_saved
    from nnlib._kernels import blas
    with _BLAS_LOCK:
        old = blas.get_num_threads()
        if old is not None and old != n:
            blas.set_num_threads(n)
        if _blas_users == 0:
            _blas_saved = old
        _blas_users += 1


def _blas_threads_exit():
    global _blas_users, _blas_saved
    from nnlib._kernels import blas
    with _BLAS_LOCK:
        _blas_users -= 1
        if _blas_users == 0 and _blas_saved is not None:
            if blas.get_num_threads() != _blas_saved:
                blas.set_num_threads(_blas_saved)
            _blas_saved = None


# fit's reusable pieces, per model (weak keys: nothing outlives the model, and nothing is
# pickled with it): the compiled network description and the training workspace.
# Rebuilding them took ~12 us per fit warm and ~50 us with cold caches, which is what a
# loop calling fit(epochs=1) sees. A workspace is taken out while a fit uses it, so
# concurrent fits of one model never share buffers; large ones are not kept.
_NETS = weakref.WeakKeyDictionary()
_WORKSPACES = weakref.WeakKeyDictionary()
_WORKSPACE_KEEP_BYTES = 1 << 22


def _take_workspace(model, key):
    with _BLAS_LOCK:
        kept = _WORKSPACES.pop(model, None)
    return kept[1] if kept is not None and kept[0] == key else None


def _keep_workspace(model, key, ws):
    size = sum(a.nbytes for v in ws.values() for a in (v if isinstance(v, list) else [v]))
    if size <= _WORKSPACE_KEEP_BYTES:
        with _BLAS_LOCK:
            _WORKSPACES[model] = (key, ws)


def _free_cores():
    """Cores not busy with other processes, by the 1-minute load average (all cores
    where that is unavailable).

    Multi-threaded GEMM synchronizes its threads at every block; when another process
    holds one of the cores, the whole product waits for the descheduled thread. Measured
    on this 2-core machine under a load of ~5 (256x784 @ 784x512 float32, OpenBLAS):
    2 threads 6 GFLOP/s, 1 thread 50 GFLOP/s. Our own process counts for about 1 in the
    load, hence the + 1."""
    from nnlib._threads import MAX_THREADS
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):
        return MAX_THREADS
    return int(max(1, min(MAX_THREADS, math.floor(MAX_THREADS - load1 + 1.5))))


def _digest(arrays):
    import hashlib
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class _FormatError(ValueError):
    """A readable archive that is not a valid nnlib model."""


def load(path):
    """Read a model written by :meth:`Sequential.save`.

    Raises
    ------
    ValueError
        The file is not an nnlib model, is truncated or corrupted (checksum), has an
        unsupported version, or its arrays do not match its layer specs.
    """
    import json
    import zipfile
    import zlib
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path} is not an nnlib model file (not an .npz archive; "
                         f"truncated or corrupted?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            if "header" not in files:
                raise _FormatError(f"{path} is not an nnlib model file (no header)")
            header = json.loads(npz["header"].tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
                raise _FormatError(f"{path} is not an nnlib model file (format "
                                 f"{header.get('format') if isinstance(header, dict) else None!r})")
            version = header.get("version")
            if version != FORMAT_VERSION:
                raise _FormatError(f"{path} has format version {version!r}; this nnlib reads "
                                 f"version {FORMAT_VERSION}")
            names = header.get("arrays")
            if not isinstance(names, list) or not set(names) <= files:
                raise _FormatError(f"{path} is missing arrays listed in its header")
            arrays = {name: npz[name] for name in names}
    except _FormatError:
        raise
    # ValueError: np.load's, and json's decode errors. NotImplementedError, RuntimeError,
    # zlib.error: zipfile's answers to a damaged local header (an "unsupported
    # compression method" or "encrypted" flag bit, bad deflate data); found by
    # tests/test_fuzz_load.py, which flips random bytes of a saved model.
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, UnicodeDecodeError,
            ValueError, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise ValueError(f"{path} is not a readable nnlib model file (truncated or "
                         f"corrupted?): {exc}") from exc
    if _digest(arrays[n] for n in names) != header.get("sha256"):
        raise ValueError(f"{path} is corrupted: the arrays' SHA-256 does not match the "
                         f"header's")
    dtype = header.get("dtype")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"{path}: unsupported dtype {dtype!r}")
    specs = header.get("layers")
    if not isinstance(specs, list) or not specs or len(names) != 2 * len(specs):
        raise ValueError(f"{path}: the header's layers do not match its arrays")
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or spec.get("type") != "Dense":
            raise ValueError(f"{path}: layer {i} has unsupported type "
                             f"{spec.get('type') if isinstance(spec, dict) else spec!r}")
        if spec.get("activation") not in ACTIVATION_CODES:
            raise ValueError(f"{path}: layer {i} has unknown activation "
                             f"{spec.get('activation')!r}")
        # The arrays are checked against the spec before a layer is built, so a damaged
        # header (not covered by the checksum) cannot make us allocate arbitrary sizes.
        shapes = {f"W{i}": (spec.get("n_in"), spec.get("n_out")),
                  f"b{i}": (spec.get("n_out"),)}
        for name, shape in shapes.items():
            a = arrays.get(name)
            if a is None or a.shape != shape or a.dtype != np.dtype(dtype):
                raise ValueError(f"{path}: array {name} has shape "
                                 f"{getattr(a, 'shape', None)} and dtype "
                                 f"{getattr(a, 'dtype', None)}; layer {i} needs "
                                 f"{shape} {dtype}")
        try:
            layer = Dense(spec["n_in"], spec["n_out"], spec["activation"], init="zeros",
                          dtype=dtype, activation_param=spec.get("activation_param"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: layer {i} spec is invalid: {exc}") from exc
        layer.init = spec.get("init", "glorot_uniform")
        layer.W[...] = arrays[f"W{i}"]
        layer.b[...] = arrays[f"b{i}"]
        layers.append(layer)
    try:
        return Sequential(layers)
    except (ShapeError, DTypeError) as exc:
        raise ValueError(f"{path}: layers do not fit together: {exc}") from exc


class _EarlyStopping:
    def __init__(self, spec, has_validation):
        self.active = spec is not None and spec is not False
        if not self.active:
            return
        if spec is True:
            spec = {}
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = {"patience": spec}
        if not isinstance(spec, dict):
            raise TypeError(f"early_stopping must be None, an int patience or a dict; got "
                            f"{spec!r}")
        unknown = set(spec) - {"patience", "min_delta", "monitor", "restore_best"}
        if unknown:
            raise ValueError(f"unknown early_stopping keys {sorted(unknown)}")
        self.patience = check_int_scalar(spec.get("patience", 5), "patience", low=0)
        self.min_delta = check_real_scalar(spec.get("min_delta", 0.0), "min_delta",
                                           low=0.0)
        self.monitor = spec.get("monitor", "val_loss" if has_validation else "loss")
        if self.monitor.startswith("val_") and not has_validation:
            raise ValueError(f"early_stopping monitors {self.monitor!r} but there is no "
                             f"validation data")
        self.mode_max = self.monitor.endswith("accuracy")
        self.restore_best = bool(spec.get("restore_best", True))
        self.best = None
        self.best_params = None
        self.wait = 0

    def update(self, epoch, logs, params):
        if not self.active:
            return False
        value = logs[self.monitor]
        sign = -1.0 if self.mode_max else 1.0
        if self.best is None or sign * value < sign * self.best - self.min_delta:
            self.best = value
            self.wait = 0
            if self.restore_best:
                self.best_params = [p.copy() for p in params]
            return False
        self.wait += 1
        return self.wait > self.patience

    def restore(self, params):
        if self.active and self.restore_best and self.best_params is not None:
            for p, best in zip(params, self.best_params):
                p[...] = best


