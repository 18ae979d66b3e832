"""Sequential models: a stack of Dense layers, its inference, loss and gradients.

Training is owned by :class:`nnlib.training.TrainingRun` (``fit`` validates, then hands
it the data once; the per-epoch logic is :class:`nnlib.fit_loop.FitLoop`, the epoch
itself one compiled call of ``nnlib/_kernels/train.pyx``). The file format of
``save``/:func:`load` is :mod:`nnlib._format`.
"""
import math
import warnings

import numpy as np

from nnlib import _format
from nnlib._codes import CLASS_LABEL_LOSSES, loss_code
from nnlib._labels import _numeric, check_binary_labels, check_class_labels
from nnlib._progress import Progress
from nnlib._threads import resolve_threads
from nnlib._validation import (DTypeError, NonFiniteError, ShapeError, as_float_array,
                               check_finite, check_fits_dtype, check_int_scalar,
                               check_real_scalar, check_sample_weight)
from nnlib.callbacks import History
from nnlib.fit_loop import FitLoop
from nnlib.layers import Dense, as_generator
from nnlib.training import Evaluation, TrainingRun, compiled_train, network_of

__all__ = ["Sequential", "History", "load"]

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
        if finite and not compiled_train().all_finite(X):
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
        else:   # squared_error, poisson_loss
            t = as_float_array(y, "y", dtype=self.dtype)
            if t.ndim == 1 and c == 1:
                t = t.reshape(-1, 1)
            if t.shape != (n, c):
                raise ShapeError(f"y must have shape ({n}, {c}) for {loss} (one "
                                 f"target row per sample); got {t.shape}")
            check_finite(t, "y")
            if loss == "poisson_loss" and (t < 0).any():
                raise LabelError("poisson_loss needs targets >= 0 (counts or rates); y "
                                 "holds negative values")
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
        train = compiled_train()
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
        value, grads, status = self._objective(X, y, loss, l2, margin, n_threads, True)
        # The kernel checks the data loss and the bias gradients (column sums of dZ). That
        # misses an L2 penalty l2/2 ||W||^2 that overflows (weights ~1e154), and covers
        # dW = H^T dZ only while every H is finite: an inf in X or a hidden output that
        # overflows gives NaN/inf in dW next to a finite db.
        if not status and not math.isfinite(value):
            status = 1
        if not status and not all(np.isfinite(g).all() for g in grads):
            status = 2
        if status:
            warnings.warn(f"loss_and_grads: the {'loss' if status == 1 else 'gradient'} "
                          "is not finite", RuntimeWarning, stacklevel=2)
        return value, grads

    def _objective(self, X, y, loss, l2, margin, n_threads, grads):
        """The compiled loss and gradients over all rows: (loss, grads, status)."""
        train = compiled_train()
        code = loss_code(loss)
        l2 = check_real_scalar(l2, "l2", low=0.0)
        # the compiled loop adds l2 * W in the model's dtype
        check_fits_dtype(l2, "l2", self.dtype)
        margin = check_real_scalar(margin, "margin", low=0.0)
        X = self._inputs(X)
        if X.shape[0] == 0:
            raise ShapeError("X must have at least one row")
        yt, yl = self._targets(y, loss, X.shape[0])
        sizes = self._sizes()
        ws = train.Workspace(sizes, X.shape[0], yt.shape[1], self.dtype)
        threads = resolve_threads(n_threads, X.shape[0] * max(sizes))
        setup = train.EpochSetup(network_of(self), [l.W for l in self.layers],
                                 [l.b for l in self.layers], None, X, yt, yl, ws, code,
                                 X.shape[0], margin, l2, n_threads=threads)
        dWs = [np.empty_like(l.W) for l in self.layers]
        dbs = [np.empty_like(l.b) for l in self.layers]
        value, status = train.loss_grad(setup, dWs, dbs, grads)
        return float(value), [g for pair in zip(dWs, dbs) for g in pair], status

    def evaluate(self, X, y, loss="softmax_cross_entropy", margin=1.0, n_threads=None):
        """(mean loss, accuracy) of the model on (X, y), without L2.

        The accuracy is None for squared_error; for logistic_loss the prediction is
        ``output > 0`` and a row counts as correct when all its outputs are (multilabel:
        exact match)."""
        X, yt, yl = self._data(X, y, loss, "X")
        margin = check_real_scalar(margin, "margin", low=0.0)
        return Evaluation(self, X, yt, yl, loss, margin, n_threads)()

    def _data(self, X, y, loss, name, finite=False):
        """(X, y_target, y_label) validated for the compiled loops; X has >= 1 row."""
        loss_code(loss)
        X = self._inputs(X, name, finite=finite)
        if X.shape[0] == 0:
            raise ShapeError(f"{name} must have at least one row")
        return (X,) + self._targets(y, loss, X.shape[0])

    # -- training ---------------------------------------------------------------------
    def fit(self, X, y, loss="softmax_cross_entropy", optimizer=None, epochs=1,
            batch_size=32, shuffle=True, validation_data=None, validation_split=0.0,
            early_stopping=None, callbacks=None, verbose=0, random_state=None, l2=0.0,
            schedule=None, n_threads=None, margin=1.0, l2_per_batch=False,
            sample_weight=None):
        """Train in place with mini-batch gradient steps, each epoch in compiled pieces of
        about 0.1 s (Ctrl-C is honoured within one; the weights do not depend on the cut).

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
        sample_weight : array_like (n,) or float, optional
            Row weights (finite, >= 0, not all 0). Each batch's loss is then the
            weighted mean ``sum_i w_i L_i / sum_i w_i`` (scikit-learn's MLP
            normalisation; Keras divides by the batch length instead) and
            ``l2_per_batch`` divides ``l2`` by the batch's weight sum. With
            ``validation_split`` the held-out rows' weights are dropped (the validation
            loss is unweighted).

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
        loss_code(loss)
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
        optimizer = _optim.SGD(lr=0.01) if optimizer is None else optimizer
        if not hasattr(optimizer, "config") or not hasattr(optimizer, "state_arrays"):
            raise TypeError(f"optimizer must be an nnlib.optim optimizer; got "
                            f"{type(optimizer).__name__}")
        rng = as_generator(random_state)
        X = self._inputs(X, finite=True)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        if validation_data is not None and validation_split > 0:
            raise ValueError("give validation_data or validation_split, not both")
        if validation_split > 0:
            n_val = int(math.ceil(X.shape[0] * validation_split))
            if n_val >= X.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves no rows to "
                                 f"train on ({X.shape[0]} rows)")
            y = np.asarray(y)
            validation_data = (X[-n_val:], y[-n_val:])
            X, y = X[:-n_val], y[:-n_val]
            if sample_weight is not None:
                sample_weight = sample_weight[:-n_val]
        if X.shape[0] == 0:
            raise ShapeError("X must have at least one row")
        yt, yl = self._targets(y, loss, X.shape[0])
        evaluation = None
        if validation_data is not None:
            try:
                Xv, yv = validation_data
            except (TypeError, ValueError):
                raise TypeError("validation_data must be a pair (X_val, y_val)") from None
            evaluation = Evaluation(self, *self._data(Xv, yv, loss, "X_val", finite=True),
                                    loss, margin)
        progress = (Progress(epochs, -(-X.shape[0] // batch_size), verbose) if verbose
                    else None)
        with TrainingRun(self, X, yt, yl, loss, optimizer, batch_size=batch_size,
                         margin=margin, l2=l2, l2_per_batch=l2_per_batch,
                         n_threads=n_threads, progress=progress,
                         sample_weight=sample_weight) as run:
            loop = FitLoop(run, X.shape[0], rng, shuffle, schedule, evaluation,
                           early_stopping, callbacks)
            for epoch in range(epochs):
                if not loop.epoch(epoch):
                    break
        return loop.history

    # -- persistence ------------------------------------------------------------------
    def save(self, path):
        """Write the model to ``path`` (format version 1, see :mod:`nnlib._format`),
        atomically."""
        _format.write(path, *_format.model_arrays(self))


def load(path):
    """Read a model written by :meth:`Sequential.save`.

    Raises
    ------
    ValueError
        The file is not an nnlib model, is truncated or corrupted (checksum), has an
        unsupported version, or its arrays do not match its layer specs.
    """
    header, arrays = _format.read(path)
    return _format.build_model(header, arrays, path)
