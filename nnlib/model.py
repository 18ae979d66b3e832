"""Sequential models: a stack of layers, its inference, loss and gradients.

Training is owned by :class:`nnlib.training.TrainingRun` (``fit`` validates, then hands
it the data once; the per-epoch logic is :class:`nnlib.fit_loop.FitLoop`, the epoch
itself one compiled call of ``nnlib/_kernels/train.pyx``). The file format of
``save``/:func:`load` is :mod:`nnlib._format`.
"""
import functools
import math
import numbers
import operator
import os
import threading
import time
import warnings
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Literal, Mapping,
                    NamedTuple, Optional, Sequence, Tuple, Union, overload)

import numpy as np

from nnlib import _format
from nnlib._base import stamped, unstamped
from nnlib._codes import CLASS_LABEL_LOSSES, loss_code
from nnlib._labels import _numeric, check_binary_labels, check_class_labels
from nnlib._progress import Progress, print_results
from nnlib._threads import complete, resolve_threads
from nnlib._validation import (DTypeError, LabelError, NonFiniteError, ShapeError,
                               as_float_array, check_finite, check_fits_dtype,
                               check_int_scalar, check_real_scalar, check_sample_weight)
from nnlib._typing import (ArrayLike, DTypeLike, FloatArray, PathLike, SampleWeight,
                           SeedLike, Threads, Verbose)
from nnlib.callbacks import Callback, EarlyStopping, History, as_callbacks, wants_batches
from nnlib.fit_loop import FitLoop, check_validation_freq
from nnlib.metrics import Metric, Metrics, metrics_list, probabilities
from nnlib.batch_training import (BatchEvaluation, BatchRun, _check_live,
                                  forward_backward)
from nnlib.layers import Dense, Dropout, Layer, as_generator, is_compiled
from nnlib._random import shuffle_orders
from nnlib.training import (BatchedEvaluation, Evaluation, TrainingRun, compiled_train,
                            network_of)

__all__ = ["Sequential", "History", "EvaluationResult", "load"]

# what batch_size=None means (Keras's habit: None is its default): fit's rows per step,
# Keras's 32; predict's rows per chunk, which the outputs do not depend on. evaluate's
# None (and fit's validation_batch_size's) is one pass while the rows' activations fit
# in _EVALUATE_VALUES values: each batch's GEMMs wait for BLAS's threads again, which on
# a loaded machine costs far more than the rows (20000 digits rows in batches of 4096:
# 4.7x the wall time of one pass), and one pass keeps the values evaluate gave before it
# took batch_size. Keras's 32 bounds a device's memory; this bounds the host's.
_FIT_BATCH = 32
_PREDICT_BATCH = 4096
_EVALUATE_VALUES = 1 << 24          # 128 MiB of float64 activations


def _evaluate_rows(model):
    """evaluate's rows per pass for batch_size=None: all rows up to a workspace of
    about _EVALUATE_VALUES activations (at least predict's 4096 rows)."""
    return max(_PREDICT_BATCH, _EVALUATE_VALUES // max(sum(model._sizes()), 1))

if TYPE_CHECKING:
    from nnlib.optim import Optimizer
    from nnlib.schedules import Schedule

# fit's callbacks: Callback objects, or cb(epoch, logs) -> stop?
_CallbackLike = Union[Callback, Callable[[int, Dict[str, float]], Any]]


class EvaluationResult(NamedTuple):
    """What :meth:`Sequential.evaluate` returns: the mean loss and the accuracy (None
    for squared_error); unpacks as ``loss, accuracy = model.evaluate(X, y)``.

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> model = Sequential([Dense(2, 2, init="zeros")])
    >>> loss, accuracy = result = model.evaluate(np.ones((2, 2)), [0, 1])
    >>> round(loss, 12) == round(math.log(2), 12), result.accuracy     # uniform outputs
    (True, 0.5)
    """
    loss: float
    accuracy: Optional[float]


class Sequential:
    """A stack of :class:`~nnlib.Dense` layers applied in order.

    Parameters
    ----------
    layers : list of layers
        :class:`~nnlib.Dense` layers, or any layer of the protocol of
        :mod:`nnlib.layers` (a :class:`~nnlib.layers.Dropout`, a user's
        :class:`~nnlib.layers.Layer`). Consecutive widths must agree
        (``layers[i].n_out == layers[i+1].n_in``) and all layers with parameters share
        one dtype. A model of plain Dense and Dropout layers trains in the compiled
        epoch; any other layer makes it train batch by batch through the compiled kernels
        (:mod:`nnlib.batch_training`; ``compiled`` says which).

    Attributes
    ----------
    params : list of ndarray
        ``[W1, b1, W2, b2, ...]``, the live arrays (writing into them changes the model).
    loss : str or None
        The loss of the last ``fit``.

    Examples
    --------
    >>> import numpy as np, nnlib
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]); y = [0, 1, 1, 0]
    >>> model = nnlib.Sequential([nnlib.Dense(2, 8, "tanh", random_state=0),
    ...                           nnlib.Dense(8, 2, random_state=1)])
    >>> history = model.fit(X, y, optimizer=nnlib.optim.Adam(lr=0.05), epochs=300,
    ...                     batch_size=4, metrics=["accuracy"], random_state=0)
    >>> history["accuracy"][-1], model.predict_proba(X).shape
    (1.0, (4, 2))
    >>> model.evaluate(X, y).accuracy                  # the trained loss by default
    1.0
    """

    # Factor on the data loss that fit reports (history["loss"]), never on the gradient:
    # 1 for every user model. MLPRegressor sets 1/n_outputs on the model it trains, to
    # report scikit-learn's multi-output squared loss (the mean over the outputs, whose
    # gradient scikit-learn takes as that of the sum).
    _loss_report_scale = 1.0

    #: The loss of the last ``fit`` (or of the saved file): what ``evaluate``,
    #: ``predict_proba`` and ``score`` use when not told. None before any fit.
    loss = None
    #: Keras's flag: a callback sets it to True to end the running fit.
    stop_training = False
    #: The :class:`~nnlib.callbacks.History` of the last ``fit`` (Keras's
    #: ``model.history``), filled epoch by epoch as it runs: a fit ended by Ctrl-C or
    #: by an exception keeps the epochs it completed here; ``train_on_batch`` leaves it
    #: alone. None before any fit.
    history: Optional[History] = None

    def __init__(self, layers: Iterable[Layer]) -> None:
        self.layers: List[Any] = list(layers)        # Dense or other protocol layers
        self._check_layers()
        self.optimizer: Optional["Optimizer"] = None   # the last fit's (Keras's model.optimizer)

    # -- pickling: stamped with the nnlib version, as the estimators' pickles are ---------
    def __getstate__(self) -> Dict[str, Any]:
        # one that a fit starting while the arrays are written steps is caught after
        # them (its optimizer, pickled inside this state, is checked by its own); the
        # fit counts are read first, as predict reads them: a fit starting right after
        # the check below has then moved them
        from nnlib._threads import UnchangedWhilePickled
        unchanged = UnchangedWhilePickled((self, *self.layers), "pickling the model")
        # a pickle (or deep copy) taken while another thread's fit steps the weights
        # in place, without the GIL, would hold arrays of different steps, some torn
        # mid-step: refused as predict is (from a callback of that fit it is taken)
        _NotDuringAnotherThreadsFit(self, "pickling the model")._check()
        state = stamped(self.__dict__)
        state.pop(UnchangedWhilePickled.KEY, None)
        state[UnchangedWhilePickled.KEY] = unchanged
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        """Restore a pickled model, warning (InconsistentVersionWarning) when another
        nnlib version pickled it; one pickled before the stamp loads quietly."""
        state = unstamped(state, type(self).__name__)
        state.pop("_unchanged_while_pickled", None)
        self.__dict__.update(state)

    def _check_layers(self):
        """The stack must follow the layer protocol with matching widths and one dtype
        (checked again before every compiled call: ``layers`` is a plain list users can
        edit, and the compiled loops trust these shapes). Returns that dtype (what the
        ``dtype`` property reads)."""
        layers = self.layers
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        width, width_from, dtype, dtype_from, known_in = None, None, None, None, False
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer) and not all(
                    hasattr(layer, a) for a in ("forward", "forward_train", "params")):
                raise TypeError(f"layers[{i}] must follow the layer protocol (a "
                                f"nnlib.layers.Layer: forward, forward_train, params); "
                                f"got {type(layer).__name__}")
            n_in, n_out = getattr(layer, "n_in", None), getattr(layer, "n_out", None)
            if n_in is not None:
                known_in = True
                if width is not None and n_in != width:
                    raise ShapeError(f"layers[{i}] expects {n_in} inputs but "
                                     f"layers[{width_from}] gives {width} outputs")
            if n_out is not None:
                width, width_from = n_out, i
            dt = getattr(layer, "dtype", None)
            if dt is not None and layer.params:
                dt = np.dtype(dt)
                if dtype is None:
                    dtype, dtype_from = dt, i
                elif dt != dtype:
                    raise DTypeError(f"all layers must share a dtype; layers[{dtype_from}] "
                                     f"is {dtype}, layers[{i}] is {dt}")
        if not known_in:
            raise ShapeError("the model's input width is unknown: no layer declares "
                             "n_in (start with a Dense)")
        if dtype is None:
            raise DTypeError("the model has no layer with parameters to give it a dtype")
        if dtype != np.float32 and dtype != np.float64:
            # weights a user assigned (layer.W = integer array): the kernels and the
            # input conversion know these two only
            raise DTypeError(f"layers[{dtype_from}]'s parameters are {dtype}; a model "
                             "computes in float32 or float64 (convert the layer's arrays, "
                             "e.g. a Dense's layer.W = layer.W.astype(np.float64))")
        return dtype

    @property
    def compiled(self) -> bool:
        """Whether ``fit``, ``evaluate`` and ``loss_and_grads`` run the compiled epoch
        (every layer a plain Dense or Dropout) or the per-batch path of
        :mod:`nnlib.batch_training` (see :mod:`nnlib.layers`).

        Examples
        --------
        >>> from nnlib.layers import Dropout
        >>> Sequential([Dense(2, 3), Dense(3, 2)]).compiled
        True
        >>> model = Sequential([Dense(2, 4, "relu"), Dropout(0.5), Dense(4, 3)])
        >>> model.compiled, model.n_in, model.n_out, model.dtype
        (True, 2, 3, dtype('float64'))
        >>> [p.shape for p in model.params]                 # W1, b1, W2, b2
        [(2, 4), (4,), (4, 3), (3,)]
        """
        return all(map(is_compiled, self.layers))

    # -- structure ------------------------------------------------------------------
    @property
    def params(self) -> List[np.ndarray]:
        """``[W1, b1, W2, b2, ...]``: the layers' live parameter arrays, in order (what
        ``loss_and_grads`` returns gradients for, and an optimizer updates in place).

        Examples
        --------
        A hand-written gradient step on the live arrays lowers the loss:

        >>> import numpy as np
        >>> model = Sequential([Dense(2, 3, "tanh", random_state=0), Dense(3, 2)])
        >>> model.params[0] is model.layers[0].W, [p.shape for p in model.params]
        (True, [(2, 3), (3,), (3, 2), (2,)])
        >>> X, y = np.array([[1.0, -1.0], [0.5, 2.0]]), [0, 1]
        >>> before, grads = model.loss_and_grads(X, y)
        >>> for p, g in zip(model.params, grads):
        ...     p -= 0.1 * g
        >>> bool(model.loss_and_grads(X, y)[0] < before)
        True
        """
        return [p for layer in self.layers for p in layer.params]

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the layers' parameters: the model computes in it, and converts
        its inputs to it.

        Examples
        --------
        >>> import numpy as np
        >>> model = Sequential([Dense(2, 3, dtype=np.float32), Dense(3, 1, dtype=np.float32)])
        >>> model.dtype, model.predict(np.ones((1, 2))).dtype     # float64 X converted
        (dtype('float32'), dtype('float32'))
        """
        for layer in self.layers:       # a plain loop: fit reads this several times
            dt = getattr(layer, "dtype", None)
            if dt is not None and layer.params:
                return np.dtype(dt)
        raise StopIteration             # as next() on no such layer (_check_layers)

    @property
    def n_in(self) -> int:
        """Input width: the first layer's with a fixed width (a leading Dropout keeps
        any width).

        Examples
        --------
        >>> from nnlib.layers import Dropout
        >>> model = Sequential([Dropout(0.2), Dense(4, 3, "relu"), Dense(3, 2)])
        >>> model.n_in
        4
        >>> model.predict([[1.0, 2.0, 3.0]])
        Traceback (most recent call last):
        ...
        nnlib.exceptions.ShapeError: X has 3 features but the model expects 4 (shape (1, 3))
        """
        for layer in self.layers:
            n_in = getattr(layer, "n_in", None)
            if n_in is not None:
                return n_in
        raise StopIteration     # as next() on no such layer (_check_layers refuses it)

    @property
    def n_out(self) -> int:
        """Output width: the last layer's with a fixed width (a trailing Dropout keeps
        it): the columns of ``predict``.

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.layers import Dropout
        >>> model = Sequential([Dense(4, 3, "relu"), Dense(3, 2), Dropout(0.5)])
        >>> model.n_out, model.predict(np.ones((5, 4))).shape
        (2, (5, 2))
        """
        for layer in reversed(self.layers):     # a plain loop: fit reads this
            n_out = getattr(layer, "n_out", None)
            if n_out is not None:
                return n_out
        raise StopIteration     # as next() on no such layer (_check_layers refuses it)

    def _sizes(self):
        """The widths of the compiled network: the input, then each Dense layer's
        output (a Dropout keeps its width)."""
        return [self.n_in] + [layer.n_out for layer in self.layers
                              if getattr(layer, "n_out", None) is not None]

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}])"

    # -- inputs -----------------------------------------------------------------------
    def _inputs(self, X: ArrayLike, name: str = "X", finite: bool = False) -> np.ndarray:
        """X as a C-contiguous (n, n_in) array of the model's dtype (other float
        precisions and integers are converted). ``finite``: raise NonFiniteError naming
        the first row that holds NaN or +-inf, or a value beyond the model's dtype (1e300
        given to a float32 model would silently become inf in the conversion)."""
        given = X
        dtype = self._check_layers()    # ``layers`` is a plain list: emptied, dtype unknown
        if type(self) is not Sequential:    # a subclass may say otherwise
            dtype = self.dtype
        X = as_float_array(X, name, dtype=dtype, ndim=2)   # an array fit can use: at once
        if X.shape[1] != self.n_in:
            raise ShapeError(f"{name} has {X.shape[1]} features but the model expects "
                             f"{self.n_in} (shape {X.shape})")
        # the compiled test costs one pass (microseconds); the NumPy search that names
        # the row runs only when it fails
        if finite and not compiled_train().all_finite(X):
            self._check_converted(given, X, name)
        return X

    def _checked_inputs(self, X: ArrayLike) -> np.ndarray:
        """fit's X through :meth:`_inputs` (finite, the layers checked), unless it is
        the array train_on_batch has just passed through it for this model, whose layer
        list still holds the same layers: its conversion and layer check then stand (the
        check runs once per train_on_batch; a list edited since is checked again)."""
        given = getattr(_ON_BATCH, "inputs", None)
        # the same layers, by identity: == on the tuples would take a layer that
        # compares equal (a config-comparing __eq__) for the one checked
        if (given is not None and given[0] is self and given[1] is X
                and getattr(_ON_BATCH, "active", False)
                and len(given[2]) == len(self.layers)
                and all(map(operator.is_, given[2], self.layers))):
            return X
        return self._inputs(X, finite=True)

    def _check_converted(self, given, converted, name):
        """Raise NonFiniteError for the first non-finite row of ``converted`` (2-d), the
        model's dtype's conversion of ``given``: naming the value given when it was
        finite there and only the conversion made it inf (1e300 into float32)."""
        src = np.asarray(given)
        if (src.dtype.kind == "f" and src.dtype.itemsize > converted.dtype.itemsize
                and src.shape == converted.shape):
            row = int(np.flatnonzero(~np.isfinite(converted).all(axis=1))[0])
            col = int(np.flatnonzero(~np.isfinite(converted[row]))[0])
            val = src[row, col]
            if np.isfinite(val):
                raise NonFiniteError(
                    f"{name} must be finite; row {row} holds {float(val)!r} (column "
                    f"{col}), beyond the range of {self.dtype.name} (max "
                    f"{float(np.finfo(self.dtype).max):.7g}), the model's dtype: it "
                    f"would become inf; scale {name} or use a float64 model")
        check_finite(converted, name)

    def _targets(self, y, loss, n, dtype=None):
        """(y_target (n, c or 0), y_label (n or 1,)) for the compiled loss. ``dtype``:
        the model's, when the caller has just read it."""
        c = self.n_out
        if loss in CLASS_LABEL_LOSSES:
            if c < 2 and loss != "hinge_loss":
                raise ShapeError(f"{loss} needs an output layer with >= 2 units; the "
                                 f"model has {c}")
            return (np.empty((n, 0), self.dtype if dtype is None else dtype),
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
            if not np.isfinite(t).all():
                self._check_converted(np.reshape(y, t.shape), t, "y")
            if loss == "poisson_loss" and (t < 0).any():
                raise LabelError("poisson_loss needs targets >= 0 (counts or rates); y "
                                 "holds negative values")
        return np.ascontiguousarray(t), np.zeros(1, np.int64)

    # -- inference --------------------------------------------------------------------
    def forward(self, X: ArrayLike, n_threads: Threads = None) -> FloatArray:
        """Output of the last layer (after its activation), shape (n, n_out).

        Raises NonFiniteError if X holds NaN or +-inf (naming the first such row), or if
        the output is not finite for a finite X (the products overflowed the dtype:
        scale X), so a prediction is never silently NaN or inf. Raises
        ConcurrentUseError if a fit in another thread trains this model during the call
        (README, "Threads and concurrency"): its weights would mix training steps.

        Parameters
        ----------
        X : array_like (n, n_in)
            Rows to predict; converted to the model's dtype, finite.
        n_threads : int or None
            Threads of the compiled kernels; None: all available (the thread limit in
            force: threadpoolctl, ``OMP_NUM_THREADS``) for large inputs, else 1.

        Returns
        -------
        ndarray (n, n_out)
            In the model's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> model = Sequential([Dense(2, 3, "relu", random_state=0), Dense(3, 2)])
        >>> X = np.array([[1.0, -2.0], [0.5, 0.25]])
        >>> H = np.maximum(X @ model.layers[0].W + model.layers[0].b, 0)
        >>> np.allclose(model.forward(X), H @ model.layers[1].W + model.layers[1].b)
        True
        >>> model.forward([[np.nan, 0.0]])
        Traceback (most recent call last):
        ...
        nnlib.exceptions.NonFiniteError: ...
        """
        X = self._inputs(X, finite=True)
        with _NotDuringAnotherThreadsFit(self):
            return self._forward_checked(X, n_threads)

    def predict(self, X: Optional[ArrayLike] = None, batch_size: Optional[int] = 4096,
                n_threads: Threads = None, verbose: Verbose = 0, *,
                x: Optional[ArrayLike] = None) -> FloatArray:
        """The model's output for X, computed in chunks of ``batch_size`` rows (so large
        inputs need no intermediate activations for all rows at once). Errors as
        :meth:`forward`.

        Parameters
        ----------
        X : array_like (n, n_in)
            Rows to predict; converted to the model's dtype, finite.
        batch_size : int >= 1 or None, default 4096
            Rows per chunk (the rows' outputs do not depend on it); None takes the
            default, as Keras's ``predict(batch_size=None)`` takes its own.
        n_threads : int or None
            Threads of the compiled kernels; None: all available (the thread limit in
            force: threadpoolctl, ``OMP_NUM_THREADS``) for large inputs, else 1.
        verbose : bool, int >= 0 or "auto", default 0
            0 silent (nnlib's default; Keras's is "auto", so ported code often passes
            ``verbose=0``); otherwise one line with the rows and the time is printed.
        x : array_like, optional
            Keras's name of ``X`` (``model.predict(x=X)``): give one of the two.

        Returns
        -------
        ndarray (n, n_out)
            The last layer's output (logits for a classification loss: see
            :meth:`predict_proba`).

        Examples
        --------
        >>> import numpy as np
        >>> model = Sequential([Dense(2, 3, "tanh", random_state=0), Dense(3, 2)])
        >>> X = np.random.default_rng(0).normal(size=(5, 2))
        >>> np.array_equal(model.predict(X, batch_size=2), model.forward(X))   # in 3 chunks
        True
        """
        X = _keras_x(X, x, "predict")
        batch_size = (_PREDICT_BATCH if batch_size is None
                      else check_int_scalar(batch_size, "batch_size", low=1))
        verbose = _verbosity(verbose)
        X = self._inputs(X, finite=True)
        start = time.perf_counter()
        with _NotDuringAnotherThreadsFit(self):
            if X.shape[0] <= batch_size:
                out = self._forward_checked(X, n_threads)
            else:
                out = np.concatenate([self._forward_checked(X[i:i + batch_size],
                                                            n_threads, i)
                                      for i in range(0, X.shape[0], batch_size)])
        if verbose:
            print_results("predict", {"rows": X.shape[0], "time":
                                      f"{(time.perf_counter() - start) * 1e3:.1f} ms"})
        return out

    def _forward_checked(self, X, n_threads, row0=0):
        # X: finite, validated by _inputs
        train = compiled_train()
        H = X
        for layer in self.layers:
            H = (layer.forward(H, n_threads=n_threads) if is_compiled(layer)
                 else layer.forward(H))
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
    def loss_and_grads(self, X: ArrayLike, y: ArrayLike,
                       loss: str = "softmax_cross_entropy", l2: float = 0.0, margin: float = 1.0,
                       n_threads: Threads = None) -> Tuple[float, List[FloatArray]]:
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

        Examples
        --------
        Against a central difference in one weight:

        >>> import numpy as np
        >>> model = Sequential([Dense(2, 3, "tanh", random_state=0), Dense(3, 2)])
        >>> X, y = np.array([[1.0, -2.0], [0.5, 0.25]]), [0, 1]
        >>> loss, grads = model.loss_and_grads(X, y)
        >>> [g.shape for g in grads]
        [(2, 3), (3,), (3, 2), (2,)]
        >>> W = model.layers[0].W
        >>> W[0, 0] += 1e-6; up = model.loss_and_grads(X, y)[0]
        >>> W[0, 0] -= 2e-6; down = model.loss_and_grads(X, y)[0]
        >>> bool(abs((up - down) / 2e-6 - grads[0][0, 0]) < 1e-8)
        True
        """
        with _NotDuringAnotherThreadsFit(self, "loss_and_grads"):
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
        check_fits_dtype(l2, "l2", self._check_layers())     # a dtype the check knows
        margin = check_real_scalar(margin, "margin", low=0.0)
        X = self._inputs(X)
        if X.shape[0] == 0:
            raise ShapeError("X must have at least one row")
        yt, yl = self._targets(y, loss, X.shape[0])
        if not self.compiled:
            _check_live(self)
            return forward_backward(self, X, yl if loss in CLASS_LABEL_LOSSES else yt,
                                    loss, margin, l2, grads)
        sizes = self._sizes()
        ws = train.Workspace(sizes, X.shape[0], yt.shape[1], self.dtype)
        threads = resolve_threads(n_threads, X.shape[0] * max(sizes))
        network = network_of(self)          # first: it makes replaced arrays usable
        params = self.params
        setup = train.EpochSetup(network, params[0::2], params[1::2], None, X,
                                 yt, yl, ws, code, X.shape[0], margin, l2,
                                 n_threads=threads)
        dWs = [np.empty_like(W) for W in params[0::2]]
        dbs = [np.empty_like(b) for b in params[1::2]]
        value, status = train.loss_grad(setup, dWs, dbs, grads)
        return float(value), [g for pair in zip(dWs, dbs) for g in pair], status

    @overload
    def evaluate(self, X: Optional[ArrayLike] = ..., y: Optional[ArrayLike] = ...,
                 loss: Optional[str] = ..., margin: float = ..., n_threads: Threads = ...,
                 metrics: None = ..., return_dict: Literal[False] = ...,
                 sample_weight: SampleWeight = ..., verbose: Verbose = ..., *,
                 x: Optional[ArrayLike] = ..., batch_size: Optional[int] = ...
                 ) -> EvaluationResult: ...

    @overload
    def evaluate(self, X: Optional[ArrayLike] = ..., y: Optional[ArrayLike] = ...,
                 loss: Optional[str] = ..., margin: float = ..., n_threads: Threads = ...,
                 metrics: Optional[Sequence[Metric]] = ..., *,
                 return_dict: Literal[True], sample_weight: SampleWeight = ...,
                 verbose: Verbose = ..., x: Optional[ArrayLike] = ...,
                 batch_size: Optional[int] = ...) -> Dict[str, float]: ...

    @overload
    def evaluate(self, X: Optional[ArrayLike] = ..., y: Optional[ArrayLike] = ...,
                 loss: Optional[str] = ..., margin: float = ..., n_threads: Threads = ..., *,
                 metrics: Sequence[Metric], return_dict: bool = ...,
                 sample_weight: SampleWeight = ..., verbose: Verbose = ...,
                 x: Optional[ArrayLike] = ..., batch_size: Optional[int] = ...
                 ) -> Dict[str, float]: ...

    @overload
    def evaluate(self, X: Optional[ArrayLike] = ..., y: Optional[ArrayLike] = ...,
                 loss: Optional[str] = ..., margin: float = ..., n_threads: Threads = ...,
                 metrics: Optional[Sequence[Metric]] = ..., return_dict: bool = ...,
                 sample_weight: SampleWeight = ..., verbose: Verbose = ..., *,
                 x: Optional[ArrayLike] = ..., batch_size: Optional[int] = ...
                 ) -> Union[EvaluationResult, Dict[str, float]]: ...

    def evaluate(self, X: Optional[ArrayLike] = None, y: Optional[ArrayLike] = None,
                 loss: Optional[str] = None, margin: float = 1.0, n_threads: Threads = None,
                 metrics: Optional[Sequence[Metric]] = None,
                 return_dict: bool = False, sample_weight: SampleWeight = None,
                 verbose: Verbose = 0, *, x: Optional[ArrayLike] = None,
                 batch_size: Optional[int] = None
                 ) -> Union[EvaluationResult, Dict[str, float]]:
        """Mean loss (without L2) and accuracy of the model on (X, y), and ``metrics``.

        Parameters
        ----------
        X : array_like (n, n_in)
            Finite, as :meth:`predict`'s (NonFiniteError names the first row that is
            not, or holds a value beyond the model's dtype).
        y : as in :meth:`loss_and_grads`.
        loss : str, optional
            Default: the loss of the last ``fit`` (``self.loss``), else
            "softmax_cross_entropy".
        margin : float >= 0
            hinge_loss's margin.
        metrics : list of str or callables, optional
            As ``fit``'s (see :mod:`nnlib.metrics`).
        return_dict : bool
            Return a dict ``{"loss": ..., "accuracy": ..., metric: ...}`` (Keras's
            ``return_dict=True``).
        sample_weight : array_like (n,) or float, optional
            Row weights of the loss (Keras's ``evaluate`` argument): the weighted mean
            ``sum_i w_i L_i / sum_i w_i``, the loss ``fit`` reports with the same
            weights (Keras's ``reduction="mean_with_sample_weight"``; Keras's default
            divides by the row count instead, as ``fit``'s ``sample_weight`` notes).
            The accuracy and ``metrics`` stay unweighted. Needs a model of compiled
            layers.
        verbose : bool, int >= 0 or "auto", default 0
            0 silent (nnlib's default; Keras's is "auto"); otherwise one line with the
            results is printed ("auto" is 1).
        x : array_like, optional
            Keras's name of ``X`` (``model.evaluate(x=X, y=Y)``): give one of the two.
        batch_size : int >= 1 or None, default None
            Rows per forward pass (keyword-only: nnlib's third positional is ``loss``,
            Keras's is ``batch_size``, and a number given there is refused with a
            TypeError that says so). The results do not depend on it beyond rounding:
            the loss is the mean of the batches' mean losses weighted by their row
            counts (Keras's loss tracker, ``Mean(sample_weight=batch rows)``), or with
            ``sample_weight`` by their weight sums, which is the one-pass weighted
            mean; the accuracy and ``metrics`` are computed once over all rows' outputs.
            None is one pass while the activations of all rows fit in about 2**24
            values (rows times the sum of the layer widths; at least 4096 rows a
            batch), so the values are those of one pass (Keras's default is 32, a
            memory bound for its devices; each batch waits for the BLAS threads
            again, which on a loaded machine costs more than the rows).

        Returns
        -------
        EvaluationResult or dict
            The named pair ``(loss, accuracy)`` (it unpacks as a tuple); the accuracy is
            None for squared_error; for logistic_loss the prediction is ``output > 0``
            and a row counts as correct when all its outputs are (multilabel: exact
            match). With ``metrics`` or ``return_dict``, a dict.

        Notes
        -----
        Keras's ``evaluate`` returns the bare loss (a float) when the model was
        compiled without metrics, and a list ``[loss, metric, ...]`` when it was; nnlib
        has no ``compile`` and computes the accuracy of a classification loss unasked,
        so it returns the pair (``loss, accuracy = model.evaluate(X, y)``, kept as it
        always was). Ported Keras code writes ``model.evaluate(x=X, y=Y).loss`` for
        the bare loss (``test_on_batch`` returns it bare, as Keras's does) and
        ``return_dict=True`` for Keras's dict, which has the same keys here (``loss``,
        ``accuracy``, each metric); with ``metrics``, nnlib returns that dict rather
        than Keras's list, whose order a reader must know.

        Raises
        ------
        ValueError
            ``sample_weight`` for a model with Python layers, or weights whose sum
            leaves float64's range.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, init="zeros")])
        >>> model.evaluate(np.ones((2, 2)), [0, 1])
        EvaluationResult(loss=0.6931471805599453, accuracy=0.5)
        >>> model.evaluate(np.ones((2, 2)), [0, 1], verbose=1)
        evaluate  loss 0.6931  accuracy 0.5
        EvaluationResult(loss=0.6931471805599453, accuracy=0.5)

        In batches of 2 rows (Keras's ``evaluate(x, y, 2)`` is written with the keyword):

        >>> model.evaluate(np.ones((5, 2)), [0, 1, 1, 0, 1], batch_size=2)
        EvaluationResult(loss=0.6931471805599453, accuracy=0.4)

        Row weights weigh the mean loss (each row's loss here is 0.5):

        >>> model = nnlib.Sequential([nnlib.Dense(1, 1, init="zeros")])
        >>> X, t = np.ones((3, 1)), np.array([[1.0], [1.0], [2.0]])
        >>> model.evaluate(X, t, loss="squared_error").loss           # (0.5 + 0.5 + 2) / 3
        1.0
        >>> model.evaluate(X, t, loss="squared_error", sample_weight=[2.0, 2.0, 0.0]).loss
        0.5
        """
        X, y = _keras_xy(X, x, y, "evaluate")
        _refuse_keras_positionals("evaluate", loss)
        batch_size = (_evaluate_rows(self) if batch_size is None
                      else check_int_scalar(batch_size, "batch_size", low=1))
        loss = self._default_loss(loss)
        verbose = _verbosity(verbose)
        # finite, as predict's and fit's validation data: a NaN row made a NaN loss and
        # a wrong row of the accuracy (score), without a word
        X, yt, yl = self._data(X, y, loss, "X", finite=True)
        margin = check_real_scalar(margin, "margin", low=0.0)
        wanted = Metrics(metrics, loss)
        if sample_weight is not None and not self.compiled:
            raise ValueError("sample_weight needs a model of compiled layers (Dense, "
                             "Dropout), as fit's does")
        weights = (None if sample_weight is None else
                   check_sample_weight(sample_weight, X.shape[0], X.dtype))
        if X.shape[0] > batch_size:
            ev = BatchedEvaluation(self, X, yt, yl, loss, margin, n_threads, batch_size,
                                   weights)
            with _NotDuringAnotherThreadsFit(self, "evaluate"):
                result = EvaluationResult(*ev())
            outputs, y_true = ev.outputs, ev.y_true
        else:
            ev = self._evaluation(X, yt, yl, loss, margin, n_threads)
            if weights is not None:
                # the compiled loss over the rows weighted, as a fit's batch: sum_i w_i
                # L_i / sum_i w_i (accumulated in double, overflow checked); the
                # accuracy and metrics, of the same outputs, unweighted
                ev.setup.set_data(X, yt, yl, weights)
            with _NotDuringAnotherThreadsFit(self, "evaluate"):
                result = EvaluationResult(*ev())
            outputs, y_true = ev.outputs, ev.y_true
        out = {"loss": result.loss}
        if result.accuracy is not None:
            out["accuracy"] = result.accuracy
        out.update(wanted.compute(outputs, y_true))
        if verbose:
            print_results("evaluate", out)
        return out if wanted or return_dict else result

    def _evaluation(self, X, yt, yl, loss, margin, n_threads=None):
        cls = Evaluation if self.compiled else BatchEvaluation
        return cls(self, X, yt, yl, loss, margin, n_threads)

    def _default_loss(self, loss):
        if loss is None:
            loss = self.loss if self.loss is not None else "softmax_cross_entropy"
        loss_code(loss)
        return loss

    def predict_proba(self, X: Optional[ArrayLike] = None,
                      batch_size: Optional[int] = 4096,
                      n_threads: Threads = None, loss: Optional[str] = None,
                      verbose: Verbose = 0, *, x: Optional[ArrayLike] = None) -> FloatArray:
        """Class probabilities (n, n_out): the outputs through the map of the loss.

        softmax for softmax_cross_entropy, sparsemax for sparsemax_loss (exact zeros
        allowed), an independent sigmoid per output for logistic_loss (each column is
        P(label 1)). ``loss`` defaults to the loss of the last ``fit``; squared_error
        and hinge_loss define no probabilities (ValueError).

        Parameters
        ----------
        X : array_like (n, n_in)
            Rows to predict; converted to the model's dtype, finite.
        batch_size : int >= 1 or None, default 4096
            Rows per chunk, as in :meth:`predict` (None: the default).
        n_threads : int or None
            Threads of the compiled kernels; None: all available (the thread limit in
            force: threadpoolctl, ``OMP_NUM_THREADS``) for large inputs, else 1.
        loss : str, optional
            The loss whose map to apply; default the last ``fit``'s.
        verbose : bool, int >= 0 or "auto", default 0
            As :meth:`predict`'s.
        x : array_like, optional
            Keras's name of ``X`` (``model.predict_proba(x=X)``): give one of the two.

        Returns
        -------
        ndarray (n, n_out)
            Rows summing to 1 (softmax, sparsemax) or one probability per column
            (logistic_loss).

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> model = nnlib.Sequential([nnlib.Dense(2, 3, init="zeros")])
        >>> model.predict_proba(np.ones((1, 2)), loss="softmax_cross_entropy").round(3)
        array([[0.333, 0.333, 0.333]])
        """
        X = _keras_x(X, x, "predict_proba")
        loss = self._default_loss(loss)
        with _NotDuringAnotherThreadsFit(self, "predict_proba"):
            return probabilities(self.predict(X, batch_size, n_threads, verbose), loss)

    def score(self, X: ArrayLike, y: ArrayLike, loss: Optional[str] = None,
              n_threads: Threads = None) -> float:
        """scikit-learn's ``score``: accuracy for a classification loss, the
        coefficient of determination R^2 (averaged over the outputs) for squared_error,
        and for poisson_loss R^2 of the predicted mean ``exp(output)`` (the output is
        the log-mean; ``MLPRegressor(loss="poisson").score`` likewise).

        Parameters
        ----------
        X : array_like (n, n_in)
        y : array_like
            Labels or targets, as in :meth:`loss_and_grads`.
        loss : str, optional
            Default: the loss of the last ``fit``.
        n_threads : int or None
            Threads of the compiled kernels; None: all available (the thread limit in
            force: threadpoolctl, ``OMP_NUM_THREADS``) for large inputs, else 1.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> model = nnlib.Sequential([nnlib.Dense(1, 1, init="zeros")])
        >>> model.layers[0].W[...] = 2.0
        >>> model.score([[1.0], [2.0]], [2.0, 4.0], loss="squared_error")
        1.0
        """
        loss = self._default_loss(loss)
        if loss not in ("squared_error", "poisson_loss"):     # the losses with accuracy
            with _NotDuringAnotherThreadsFit(self, "score"):
                accuracy = self.evaluate(X, y, loss=loss, n_threads=n_threads).accuracy
            return accuracy                       # type: ignore[return-value]  # not None here
        X, yt, _ = self._data(X, y, loss, "X", finite=True)
        with _NotDuringAnotherThreadsFit(self, "score"):
            pred = self.predict(X, n_threads=n_threads).astype(np.float64)
        if loss == "poisson_loss":
            with np.errstate(over="ignore"):      # a mean beyond float64: R^2 is -inf
                pred = np.exp(pred)
        yt = yt.astype(np.float64)
        ss_res = ((yt - pred) ** 2).sum(axis=0)
        ss_tot = ((yt - yt.mean(axis=0)) ** 2).sum(axis=0)
        # scikit-learn's convention for a constant target column: 1 if predicted
        # exactly, else 0
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                      np.where(ss_res == 0, 1.0, 0.0))
        return float(r2.mean())

    # -- Keras's weight verbs ---------------------------------------------------------
    def get_weights(self) -> List[np.ndarray]:
        """Copies of the parameter arrays, ``[W1, b1, W2, b2, ...]`` (Keras's
        ``get_weights``: a Dense's kernel ``(n_in, n_out)`` then its bias, the layout
        Keras uses too).

        Returns
        -------
        list of ndarray
            One copy per array of :attr:`params`, in that order; writing into them does
            not change the model.

        Examples
        --------
        >>> model = Sequential([Dense(2, 3, random_state=0), Dense(3, 1, random_state=1)])
        >>> [w.shape for w in model.get_weights()], model.count_params()
        ([(2, 3), (3,), (3, 1), (1,)], 13)
        """
        with _NotDuringAnotherThreadsFit(self, "get_weights"):
            return [p.copy() for p in self.params]

    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Write ``weights`` into the parameter arrays, in place (Keras's
        ``set_weights``): every array is checked first, so nothing changes on an error,
        and the arrays stay the same objects, so an optimizer keeps its state for them.

        Parameters
        ----------
        weights : sequence of array_like
            One per array of :attr:`params` (``[W1, b1, W2, b2, ...]``, as
            :meth:`get_weights` gives them), each of its shape; cast to the model's
            dtype.

        Raises
        ------
        ValueError
            A count that is not the number of arrays; a
            :class:`~nnlib.exceptions.ShapeError` for a shape that differs; a
            :class:`~nnlib.exceptions.NonFiniteError` for NaN or inf; a
            :class:`~nnlib.exceptions.DTypeRangeError` for a value beyond float32's
            range in a float32 model.
        TypeError
            A value that is not an array of numbers.

        Examples
        --------
        Copying the weights of one model into another of the same shape:

        >>> import numpy as np
        >>> src = Sequential([Dense(2, 3, "relu", random_state=0),
        ...                   Dense(3, 2, random_state=1)])
        >>> dst = Sequential([Dense(2, 3, "relu"), Dense(3, 2)])
        >>> dst.set_weights(src.get_weights())
        >>> X = np.array([[1.0, -2.0]])
        >>> np.array_equal(dst.predict(X), src.predict(X))
        True
        >>> dst.set_weights(src.get_weights()[:2])
        Traceback (most recent call last):
        ...
        ValueError: set_weights got 2 arrays; the model has 4 ([W1, b1, W2, b2, ...] ...
        """
        from nnlib.export import _in_dtype
        params = self.params
        if isinstance(weights, np.ndarray) or not isinstance(weights, Iterable):
            raise TypeError(f"set_weights takes a list of arrays, one per array of "
                            f"model.params; got {type(weights).__name__}")
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError(f"set_weights got {len(weights)} arrays; the model has "
                             f"{len(params)} ([W1, b1, W2, b2, ...] in the order of "
                             f"model.params)")
        names = [f"layers[{i}].{name}" for i, layer in enumerate(self.layers)
                 for name in (getattr(layer, "param_names", ()) or
                              [f"params[{k}]" for k in range(len(layer.params))])]
        new = []
        for i, (p, w, name) in enumerate(zip(params, weights, names)):
            try:
                a = np.asarray(w)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"weights[{i}] is not an array: {exc}") from None
            if a.dtype.kind not in "fiu":
                raise DTypeError(f"weights[{i}] has dtype {a.dtype}; expected numbers")
            if a.shape != p.shape:
                raise ShapeError(f"weights[{i}] has shape {a.shape}; {name} has "
                                 f"{p.shape}")
            if not np.isfinite(a).all():
                raise NonFiniteError(f"weights[{i}] ({name}) holds NaN or inf")
            new.append(_in_dtype(a, p.dtype, f"weights[{i}]"))
        with _NotDuringAnotherThreadsFit(self, "set_weights"):
            # all or none: an interrupt between two arrays left the model half the old
            # weights, half the new (each copy runs to its end, the interrupt after)
            complete(*[functools.partial(np.copyto, p, a) for p, a in zip(params, new)])

    def save_weights(self, path: PathLike) -> None:
        """Keras's ``save_weights``: every array of :attr:`params`, a layer of your own's
        included, written atomically for :meth:`load_weights` to read back into a model
        of the same shapes. A model of ``Dense`` and ``Dropout`` layers alone is written
        as :meth:`save` writes it, without the optimizer (so :func:`nnlib.load` also
        rebuilds it); one with any other layer as a weights-only file (format
        ``nnlib.weights``, see :mod:`nnlib._format`), which only ``load_weights`` reads.

        Parameters
        ----------
        path : str or os.PathLike
            Ending in ``.npz``.

        Raises
        ------
        TypeError
            The arrays are not all float32 or all float64 (naming the layer).

        Examples
        --------
        >>> import numpy as np
        >>> src = Sequential([Dense(2, 3, "relu", random_state=0),
        ...                   Dense(3, 2, random_state=1)])
        >>> src.save_weights("w.npz")
        >>> dst = Sequential([Dense(2, 3, "relu"), Dense(3, 2)])
        >>> dst.load_weights("w.npz")
        >>> X = np.array([[1.0, -2.0]])
        >>> np.array_equal(dst.predict(X), src.predict(X))
        True

        With a layer of your own (a learned scale of each feature):

        >>> from nnlib.layers import Layer
        >>> class Scale(Layer):
        ...     def __init__(self, n):
        ...         self.n_in = self.n_out = n
        ...         self.s = np.ones(n)
        ...     params = property(lambda self: [self.s])
        ...     dtype = property(lambda self: self.s.dtype)
        >>> src = Sequential([Dense(2, 3, random_state=0), Scale(3)])
        >>> src.layers[1].s[:] = [1.0, 2.0, 3.0]
        >>> src.save_weights("ws.npz")
        >>> dst = Sequential([Dense(2, 3), Scale(3)])
        >>> dst.load_weights("ws.npz")
        >>> dst.layers[1].s
        array([1., 2., 3.])
        """
        if all(type(layer) in (Dense, Dropout) for layer in self.layers):
            self.save(path)
            return
        _format.check_npz_name(path, "")
        self._check_layers()
        _format.write(path, *_format.weights_arrays(self))

    def load_weights(self, path: PathLike) -> None:
        """Keras's ``load_weights``: read the weights of a file written by
        :meth:`save`, :meth:`save_weights` or a ``ModelCheckpoint`` into this model
        (a layer of your own's too, by the order of :attr:`params`),
        in place (:meth:`set_weights`; an optimizer the file holds is not read). The
        layers' activations are this model's; the file's shapes must match.

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        ValueError
            The file is not an nnlib model (as :func:`nnlib.load`), its parameter
            arrays differ from this model's in number or shape (naming both), or a
            layer with parameters is of another type than the file's (neither it nor
            a subclass of it: naming the layer).

        Examples
        --------
        >>> Sequential([Dense(2, 3, random_state=0)]).save_weights("w3.npz")
        >>> Sequential([Dense(2, 4)]).load_weights("w3.npz")
        Traceback (most recent call last):
        ...
        ValueError: w3.npz holds parameters of shapes [(2, 3), (3,)]; this model's are ...
        """
        header, arrays = _format.read(path)
        if header["format"] == _format.WEIGHTS_FORMAT_NAME:     # read checked its shapes
            weights = [arrays[name] for name in header["arrays"]]
            written = [(spec["type"], [tuple(s) for s in spec["shapes"]])
                       for spec in header["layers"]]
        else:
            built = _format.build_model(header, arrays, path)
            weights = built.params
            written = [(type(layer), [p.shape for p in layer.params])
                       for layer in built.layers]
        mine = [p.shape for p in self.params]
        if [w.shape for w in weights] != mine:
            raise ValueError(f"{os.fspath(path)} holds parameters of shapes "
                             f"{[w.shape for w in weights]}; this model's are {mine}")
        self._check_written_layers(written, path)
        with _NotDuringAnotherThreadsFit(self, "load_weights"):
            self.set_weights(weights)

    def _check_written_layers(self, written, path):
        """Refuse a file whose layers holding parameters are not of this model's types,
        pair by pair (``written``: ``(type or class name, shapes)`` of each layer of the
        file): equal shapes alone would read a Dense layer's weights into a layer of
        another kind (a ``Scale`` of 4 inputs takes a bias of 4). A layer of a subclass
        of the written type reads it (a ``Dense`` subclass, the Python path's)."""
        theirs = [(kind, shapes) for kind, shapes in written if shapes]
        ours = [(i, layer) for i, layer in enumerate(self.layers) if list(layer.params)]
        for k, ((kind, shapes), (i, layer)) in enumerate(zip(theirs, ours)):
            if isinstance(kind, type):
                fits, name = isinstance(layer, kind), kind.__name__
            else:
                fits, name = _format.written_type_fits(kind, layer), kind
            if not fits or [tuple(s) for s in shapes] != [p.shape for p in layer.params]:
                raise ValueError(
                    f"{os.fspath(path)}: its layer {k} with parameters is a {name} of "
                    f"shapes {[tuple(s) for s in shapes]}, where this model's is layers"
                    f"[{i}], a {type(layer).__name__} of shapes "
                    f"{[p.shape for p in layer.params]}: load_weights reads weights into "
                    f"layers of the types that wrote them")

    def count_params(self) -> int:
        """The number of scalars in :attr:`params` (Keras's ``count_params``; the
        total :meth:`summary` prints).

        Returns
        -------
        int

        Examples
        --------
        >>> Sequential([Dense(64, 100), Dense(100, 10)]).count_params()   # 6500 + 1010
        7510
        """
        return int(sum(p.size for p in self.params))

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print a table of the layers, output shapes and parameter counts (Keras's
        ``summary``); ``print_fn`` receives the whole text.

        Parameters
        ----------
        print_fn : callable, default print
            Receives the table as one string (``lines.append`` keeps it).

        Examples
        --------
        >>> import nnlib
        >>> nnlib.Sequential([nnlib.Dense(64, 100, "relu"), nnlib.Dense(100, 10)]).summary()
        Sequential, float64
        #  layer                       output shape  params
        0  Dense(64 -> 100, relu)      (n, 100)       6,500
        1  Dense(100 -> 10, identity)  (n, 10)        1,010
        total params: 7,510 (58.7 KiB)
        """
        rows, width = [], self.n_in
        for i, layer in enumerate(self.layers):
            width = getattr(layer, "n_out", None) or width
            name = (f"Dense({layer.n_in} -> {layer.n_out}, {layer.activation})"
                    if isinstance(layer, Dense) else repr(layer))
            rows.append((str(i), name, f"(n, {width})",
                         f"{sum(p.size for p in layer.params):,}"))
        head = ("#", "layer", "output shape", "params")
        widths = [max(len(r[k]) for r in rows + [head]) for k in range(4)]

        def line(r):
            return "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                              r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()
        total = sum(p.size for p in self.params)
        text = [f"Sequential, {self.dtype.name}" +
                (f", trained with {self.loss}" if self.loss else ""), line(head)]
        text += [line(r) for r in rows]
        text.append(f"total params: {total:,} "
                    f"({total * self.dtype.itemsize / 1024:.1f} KiB)")
        print_fn("\n".join(text))

    def _data(self, X: ArrayLike, y: ArrayLike, loss: str, name: str,
              finite: bool = False) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, y_target, y_label) validated for the compiled loops; X has >= 1 row."""
        loss_code(loss)
        X = self._inputs(X, name, finite=finite)
        if X.shape[0] == 0:
            raise ShapeError(f"{name} must have at least one row")
        return (X,) + self._targets(y, loss, X.shape[0])

    # -- training ---------------------------------------------------------------------
    def fit(self, X: Optional[ArrayLike] = None, y: Optional[ArrayLike] = None,
            loss: str = "softmax_cross_entropy",
            optimizer: Optional["Optimizer"] = None, epochs: int = 1,
            batch_size: Optional[int] = 32,
            shuffle: bool = True,
            validation_data: Optional[Union[Tuple[ArrayLike, ArrayLike],
                                            Tuple[ArrayLike, ArrayLike, SampleWeight]]] = None,
            validation_split: float = 0.0,
            early_stopping: Union[None, bool, int, Dict[str, Any], EarlyStopping] = None,
            callbacks: Optional[Sequence[_CallbackLike]] = None,
            verbose: Verbose = 0, random_state: SeedLike = None, l2: float = 0.0,
            schedule: Union[None, "Schedule", Callable[[int], float]] = None,
            n_threads: Threads = None, margin: float = 1.0, l2_per_batch: bool = False,
            metrics: Optional[Sequence[Metric]] = None, schedule_interval: str = "epoch",
            sample_weight: SampleWeight = None,
            initial_epoch: int = 0,
            class_weight: Optional[Mapping[int, float]] = None,
            validation_freq: Union[int, Iterable[int]] = 1, *,
            x: Optional[ArrayLike] = None,
            validation_batch_size: Optional[int] = None) -> History:
        """Train in place with mini-batch gradient steps, each epoch in compiled pieces of
        about 0.1 s (Ctrl-C is honoured within one; the weights do not depend on the cut).

        Parameters
        ----------
        X : array_like (n, n_in);  y : as in :meth:`loss_and_grads`.
        loss : str, default "softmax_cross_entropy"
            The third positional argument, as ``optimizer`` is the fourth: Keras's
            ``fit(x, y, batch_size, epochs)`` puts numbers there, which are refused
            with a TypeError naming both orders (write ``batch_size=``, ``epochs=``).
        optimizer : nnlib.optim optimizer, optional
            Default: ``self.optimizer`` (the last fit's, or the one :func:`load` read
            from a file saved with ``include_optimizer=True``), as Keras's ``fit`` goes
            on with the compiled optimizer; else a new ``SGD(lr=0.01)``. Its state and
            step count ``t`` carry over between calls to ``fit``. Built
            with some of the model's arrays, it must hold them all: one left out is
            refused rather than frozen (torch's habit); freeze it with a group of
            ``lr=0.0``.
        epochs : int >= 0
            The index the training stops before (Keras's meaning): epochs
            ``initial_epoch, ..., epochs - 1`` run, none if ``epochs <=
            initial_epoch``. This and the other counts (``batch_size``,
            ``initial_epoch``, ``validation_batch_size``) take NumPy integers, as
            Keras's do; a bool or a float is a TypeError naming the argument.
        batch_size : int >= 1 or None, default 32
            Rows per step (1 = per-sample SGD); the last batch may be shorter. None
            takes 32, as Keras's ``fit(batch_size=None)`` does.
        shuffle : bool
            Draw a new permutation each epoch from ``random_state``.
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Keras's forms: with weights (checked as ``sample_weight``), ``val_loss``
            is the weighted mean :meth:`evaluate` gives with them; ``val_accuracy``
            and the metrics stay unweighted, as Keras's ``metrics``.
        validation_split : float in [0, 1)
            Use the last fraction of the rows (before shuffling) for validation.
        early_stopping : None, int, dict or nnlib.callbacks.EarlyStopping
            Patience in epochs, or a dict of :class:`~nnlib.callbacks.EarlyStopping`'s
            arguments (Keras's names: ``patience=5, min_delta=0.0, monitor=..., mode,
            baseline, restore_best_weights=True, start_from_epoch``); ``monitor`` is
            "val_loss" when there is validation data, else "loss". Stops once the
            monitored value has not improved by more than ``min_delta`` for ``patience``
            epochs in a row; the best epoch's weights are put back when the fit ends,
            stopped early or not (Keras 3's ``restore_best_weights``).
        callbacks : list (or iterable) of nnlib.callbacks.Callback objects or callables
            One alone is taken as a list of one, as Keras 3 does. Callback objects get
            Keras's hooks (train, epoch and batch begin/end; see
            :mod:`nnlib.callbacks`, e.g. ``ModelCheckpoint``); a plain callable
            ``cb(epoch, logs) -> bool`` is called after each epoch with the epoch's
            logs (loss, val_loss, ...) and a true return value stops training.
        metrics : list of str or callables, optional
            Logged each epoch on the training rows (after the epoch, with its final
            weights -- Keras averages over the batches while the weights move) and, with
            validation data, as ``val_`` + name: "accuracy", "mse", "mae", or
            ``f(y_true, y_pred) -> float`` (see :mod:`nnlib.metrics`; both arrays are
            read-only views). Each costs one
            forward pass over the training rows per epoch.
        verbose : bool, int >= 0 or "auto"
            0 (False) silent (nnlib's default; Keras's is "auto", which is 1 here). 1: on
            a terminal, a bar redrawn in place about every 0.1 s, also within an epoch
            (step, running loss, ETA), then the epoch's loss, validation metrics and
            time; elsewhere (a file, a pipe) one line per epoch. 2 or more: one line per
            epoch (Keras's 3 and above print only its "Epoch i/n" header, an accident of
            its ``== 1`` and ``== 2`` tests; nnlib's 3 is its 2). The trained weights do
            not depend on ``verbose``. Callbacks find the value as given in
            ``params["verbose"]`` (``"auto"``, ``True``, ``2``: Keras 3 passes it
            unconverted, and its ``ProgbarLogger`` turns ``"auto"`` into 1 itself).
        random_state : None, int or numpy Generator
            Seed of the shuffling, and of the masks of Dropout layers made without a
            seed of their own (drawn from a generator spawned off it, so the shuffling
            is that of the same model without them).
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
        schedule_interval : {"epoch", "batch"}, default "epoch"
            "batch": step the schedule after every batch instead (OneCycleLR, warm-ups;
            a callable gets this fit's 0-based batch count). The epoch then runs one
            batch per compiled call, with the rate written in between: the same
            updates as a loop over single batches.
        n_threads : int or None
            BLAS threads during the fit (None: BLAS's count as it is -- its start-up
            count, or a ``threadpoolctl`` limit in force -- and 1 when the products are
            small); restored afterwards. The compiled elementwise passes use one
            thread.
        margin : float >= 0
            hinge_loss's margin.
        sample_weight : array_like (n,) or float, optional
            Row weights (finite, >= 0, not all 0). Each batch's loss is then the
            weighted mean ``sum_i w_i L_i / sum_i w_i``: scikit-learn's MLP
            normalisation, torch's ``CrossEntropyLoss(weight=)`` and Keras's
            ``reduction="mean_with_sample_weight"``. Keras's default,
            ``"sum_over_batch_size"``, divides by the batch length instead, so its
            step grows with the weights' scale and shrinks in a batch of light rows;
            here the loss and its gradient for weights ``c * w`` are those for ``w``
            (which the scikit-learn estimators, sharing this loss, need). A batch
            whose weights are all 0 raises scikit-learn's ZeroDivisionError (Keras's
            ``divide_no_nan`` makes its loss 0 under either reduction), one whose
            weight sum or its reciprocal leaves float64's range a ValueError;
            ``l2_per_batch`` divides ``l2`` by the batch's weight sum (so that term,
            as scikit-learn's ``alpha``, does change with ``c``). With
            ``validation_split`` the held-out rows' weights weigh the validation loss
            (Keras 3 splits ``(x, y, sample_weight)`` alike), as a ``validation_data``
            triple's do: not all 0 then (ValueError: the weighted mean is 0 / 0,
            where Keras 3 logs ``val_loss`` 0.0 every epoch).
        initial_epoch : int >= 0, default 0
            The first epoch's index, to resume a fit (Keras's ``initial_epoch``):
            callbacks, early stopping (its ``start_from_epoch``), the progress lines,
            ``History.epoch`` and a callable schedule see the absolute epoch. A
            schedule object not at that epoch is moved there (per batch: to
            ``initial_epoch`` times the batches of an epoch), ReduceOnPlateau
            excepted; one carried over from the fit that stopped there is already
            at it. The shuffle starts afresh from ``random_state`` (pass the same
            Generator to go on with its stream).
        class_weight : dict {class: weight}, optional
            Keras's: each training row's loss weighted by its class's weight (a class
            not in the dict weighs 1), times its ``sample_weight`` if given; with the
            weighted mean above, only the ratios between classes matter. For the
            class-label losses and a one-output ``logistic_loss`` (classes 0 and 1);
            keys are class indices in ``[0, n_out)``, weights finite and >= 0. The
            validation loss is not weighted by class, as Keras's (only by the
            validation rows' sample weights, given or held out by
            ``validation_split``).
        validation_freq : int >= 1 or collection of int, default 1
            Keras's: with validation data, validate after every ``validation_freq``-th
            epoch (``2``: epochs 2, 4, ... counted from 1; True is 1, as Keras's
            ``isinstance(validation_freq, int)`` takes it, and False, Keras's 0, is
            refused), or after the epochs listed
            (``[1, 5, 10]``, 1-based and absolute as ``initial_epoch`` counts them;
            Keras takes a list; a tuple, set, range or 1-d array is taken too, an
            iterator such as a generator is refused: it reads once). Ignored without
            validation data, as Keras ignores it. An epoch not validated logs no
            ``val_`` values: the History's ``val_`` lists hold only the validated
            epochs (as Keras's; ``History.val_epoch`` says which), and a callback or
            ``early_stopping`` monitoring a ``val_`` value skips that epoch with a
            RuntimeWarning (EarlyStopping: no wait counted; a ReduceOnPlateau
            schedule: no step) -- ModelCheckpoint(save_best_only=True) warns and
            saves, as Keras 3's does.
        x : array_like, optional
            Keras's name of ``X`` (``model.fit(x=X, y=Y)``): give one of the two.
        validation_batch_size : int >= 1 or None, default None
            Keras's: rows per forward pass of the validation, which bounds its memory;
            the values do not depend on it beyond rounding (combined as
            :meth:`evaluate`'s ``batch_size``, so ``val_loss`` equals ``evaluate(X_val,
            y_val, batch_size=validation_batch_size).loss``). None takes evaluate's
            default, one pass up to about 2**24 activations (Keras's None takes
            ``batch_size``: a memory bound for its devices).

        Returns
        -------
        History
            Per-epoch loss, time, lr and validation metrics. If a loss or gradient
            became non-finite, or an update overflowed the weights or the optimizer's
            state (e.g. a squared gradient beyond the dtype's range in Adam), training
            stops with a RuntimeWarning, the weights and the optimizer state are left
            at the last finite step (unless an EarlyStopping with
            ``restore_best_weights`` puts back its best epoch's weights at the end, as
            Keras 3 does after TerminateOnNaN) and ``history.nonfinite`` says where.

        Examples
        --------
        >>> import numpy as np
        >>> from nnlib.callbacks import EarlyStopping
        >>> from nnlib.optim import Adam
        >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]); y = [0, 1, 1, 0]
        >>> model = Sequential([Dense(2, 8, "tanh", random_state=0), Dense(8, 2, random_state=1)])
        >>> history = model.fit(X, y, optimizer=Adam(lr=0.05), epochs=400, batch_size=4,
        ...                     random_state=0, early_stopping=EarlyStopping(
        ...                         monitor="loss", min_delta=1e-4, patience=5))
        >>> history.epochs < 400, history.stop_reason, model.score(X, y)
        (True, 'early_stopping', 1.0)
        """
        X, y = _keras_xy(X, x, y, "fit")
        _refuse_keras_positionals("fit", loss, optimizer)
        loss_code(loss)
        epochs = check_int_scalar(epochs, "epochs", low=0)
        validation_freq = check_validation_freq(validation_freq)
        initial_epoch = check_int_scalar(initial_epoch, "initial_epoch", low=0)
        batch_size = (_FIT_BATCH if batch_size is None
                      else check_int_scalar(batch_size, "batch_size", low=1))
        validation_batch_size = (
            _evaluate_rows(self) if validation_batch_size is None
            else check_int_scalar(validation_batch_size, "validation_batch_size", low=1))
        l2 = check_real_scalar(l2, "l2", low=0.0)
        margin = check_real_scalar(margin, "margin", low=0.0)
        # the callbacks' params["verbose"] is the value given, as Keras 3's (its
        # ProgbarLogger makes "auto" 1 itself); the progress display takes the level
        verbose_given, verbose = verbose, _verbosity(verbose)
        validation_split = check_real_scalar(validation_split, "validation_split",
                                             low=0.0, high=1.0, high_open=True)
        if callbacks is not None:
            # once: an iterator read here for the batch hooks was empty for the loop,
            # which then ran no callback at all
            callbacks = as_callbacks(callbacks)
        if optimizer is None:
            optimizer = default_optimizer(self)
        if not hasattr(optimizer, "config") or not hasattr(optimizer, "state_arrays"):
            raise TypeError(f"optimizer must be an nnlib.optim optimizer; got "
                            f"{type(optimizer).__name__}")
        unseeded = _unseeded_dropouts(self)
        # random_state=None draws OS entropy (~10 us): skipped when nothing draws from it
        rng = (None if random_state is None and not shuffle and not unseeded
               else shuffle_orders(random_state) if not unseeded
               else as_generator(random_state))
        # none of the user's code runs from _inputs' check of the layers (train_on_batch's:
        # _checked_inputs compares the list since) to the run's:
        # arrays (no __array__ to call), no validation data, metrics, callbacks or
        # progress stream, a model and layers of nnlib's own classes (the layers checked
        # after _inputs, which sees the list as it is)
        plain = (type(X) is np.ndarray and type(y) is np.ndarray and sample_weight is None
                 and class_weight is None and validation_data is None and metrics is None
                 and not verbose
                 and callbacks is None and type(self) is Sequential)
        X = self._checked_inputs(X)
        # l2 and the learning rate are cast to the model's dtype in the compiled loop
        # (the fused SGD step): beyond its range they would be inf (0 * inf = NaN).
        check_fits_dtype(l2, "l2", X.dtype)
        plain = plain and all(type(layer) is Dense or type(layer) is Dropout
                              for layer in self.layers)
        _check_no_shared_arrays(self)
        if sample_weight is not None:
            if not self.compiled:
                raise ValueError("sample_weight needs a model of compiled layers (Dense, "
                                 "Dropout): the per-batch path of Python layers does not "
                                 "weight its loss")
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
                # Keras 3 splits (x, y, sample_weight) alike (array_slicing.
                # train_validation_split): the held-out rows' weights weigh val_loss, as
                # a validation_data triple's do (class_weight stays the training's)
                held_out = sample_weight[-n_val:]
                if not held_out.any():
                    # Keras 3 logs val_loss 0.0 here, every epoch (its default reduction
                    # divides sum w_i L_i by the row count): a value that looks like a
                    # perfect fit and that EarlyStopping and checkpoints act on
                    raise ValueError(f"validation_split={validation_split} holds out the "
                                     f"last {n_val} rows, whose sample weights are all 0: "
                                     f"they weigh val_loss (Keras 3 splits sample_weight "
                                     f"with the rows), whose weighted mean sum w_i L_i / "
                                     f"sum w_i is then 0 / 0 (Keras 3 would log 0.0, its "
                                     f"sum over the row count); give the held-out rows "
                                     f"weights that are not all 0, or validation_data")
                validation_data += (held_out,)
                sample_weight = sample_weight[:-n_val]
        if X.shape[0] == 0:
            raise ShapeError("X must have at least one row")
        yt, yl = self._targets(y, loss, X.shape[0], X.dtype if plain else None)
        if class_weight is not None:
            sample_weight = self._class_weighted(class_weight, loss, yt, yl, sample_weight,
                                                 X.dtype)
        evaluation = None
        if validation_data is not None:
            try:
                Xv, yv, *wv = validation_data
            except (TypeError, ValueError):
                wv = [None, None]
            if len(wv) > 1:
                raise TypeError("validation_data must be a pair (X_val, y_val) or Keras's "
                                "triple (X_val, y_val, sample_weight_val)")
            val = self._data(Xv, yv, loss, "X_val", finite=True)
            weights = None
            if wv and wv[0] is not None:
                if not self.compiled:
                    raise ValueError("validation_data's sample weights need a model of "
                                     "compiled layers (Dense, Dropout), as fit's "
                                     "sample_weight does")
                try:
                    weights = check_sample_weight(wv[0], val[0].shape[0], val[0].dtype)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"validation_data's sample weights: {exc}") from None
            if val[0].shape[0] > validation_batch_size:
                # evaluate's batches: val_loss is evaluate's value with the same size
                evaluation = BatchedEvaluation(self, *val, loss, margin, None,
                                               validation_batch_size, weights)
            else:
                evaluation = self._evaluation(*val, loss, margin)
                if weights is not None:
                    # the weighted mean loss, as evaluate(..., sample_weight=) gives it
                    evaluation.setup.set_data(*val, weights)
        metrics = Metrics(metrics, loss)                # type: ignore[assignment]
        train_evaluation = (self._evaluation(X, yt, yl, loss, margin) if metrics
                            else None)
        progress = (Progress(epochs, -(-X.shape[0] // batch_size), verbose,
                             initial_epoch=initial_epoch) if verbose else None)
        run_class = TrainingRun if self.compiled else BatchRun
        with run_class(self, X, yt, yl, loss, optimizer, batch_size=batch_size,
                         margin=margin, l2=l2, l2_per_batch=l2_per_batch,
                         n_threads=n_threads, progress=progress,
                         step_by_step=any(map(wants_batches, callbacks or ())),
                         **({"checked": True} if plain and run_class is TrainingRun
                            else {}),
                         **({} if sample_weight is None else
                            {"sample_weight": sample_weight})) as run:  # type: ignore[arg-type]
            # the model is claimed now: a call refused because another thread's fit
            # trains it changes none of that fit's state (its Dropout seeds) nor the
            # defaults the next train_on_batch takes (the loss, the optimizer)
            self.optimizer, self.loss = optimizer, loss
            on_batch, _ON_BATCH.active = getattr(_ON_BATCH, "active", False), False
            # train_on_batch goes on with the masks of the last fit's seed, as one
            # fit's steps do (a seed drawn afresh per call made no loop repeatable)
            _seed_dropouts(self, rng, random_state, keep=on_batch)
            loop = FitLoop(run, X.shape[0], rng, shuffle, schedule, evaluation,
                           early_stopping, callbacks, metrics, train_evaluation,
                           epochs=epochs, batch_size=batch_size,
                           schedule_interval=schedule_interval,
                           initial_epoch=initial_epoch, validation_freq=validation_freq,
                           verbose=verbose_given)
            loop.begin(record_history=not on_batch)
            for epoch in range(initial_epoch, epochs):
                if not loop.epoch(epoch):
                    break
            loop.end()
        return loop.history

    def _class_weighted(self, class_weight, loss, y_target, y_label, sample_weight, dtype):
        """fit's row weights for ``class_weight``: each row's class's weight (1 for a
        class the dict leaves out), times ``sample_weight`` (checked) when given."""
        if not self.compiled:
            raise ValueError("class_weight needs a model of compiled layers (Dense, "
                             "Dropout), as sample_weight does")
        if loss in CLASS_LABEL_LOSSES:
            labels, n_classes = y_label, self.n_out
        elif loss == "logistic_loss" and y_target.shape[1] == 1:
            labels, n_classes = y_target[:, 0].astype(np.intp), 2
        else:
            what = ("with several outputs is multilabel" if loss == "logistic_loss"
                    else "has targets, not classes")
            raise ValueError(f"class_weight needs one class label per row; {loss} {what}: "
                             f"give sample_weight instead")
        if not isinstance(class_weight, Mapping):
            raise TypeError(f"class_weight must be a dict {{class: weight}}; got "
                            f"{type(class_weight).__name__}")
        per_class = np.ones(n_classes)
        for key, weight in class_weight.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Integral):
                raise TypeError(f"class_weight's keys are class indices (ints); got "
                                f"{key!r}")
            key = int(key)
            if not 0 <= key < n_classes:
                raise ValueError(f"class_weight has class {key}; {loss} on this model "
                                 f"has classes 0..{n_classes - 1}")
            per_class[key] = check_real_scalar(weight, f"class_weight[{key}]", low=0.0)
        weights = per_class[labels]
        if sample_weight is not None:
            weights = weights * sample_weight
        return check_sample_weight(weights, labels.shape[0], dtype)

    # -- one batch at a time (Keras's custom-loop verbs) ----------------------------------
    def train_on_batch(self, X: Optional[ArrayLike] = None, y: Optional[ArrayLike] = None,
                       loss: Optional[str] = None,
                       optimizer: Optional["Optimizer"] = None,
                       sample_weight: SampleWeight = None,
                       l2: float = 0.0, l2_per_batch: bool = False, margin: float = 1.0,
                       metrics: Optional[Sequence[Metric]] = None,
                       n_threads: Threads = None, return_dict: bool = False,
                       class_weight: Optional[Mapping[int, float]] = None, *,
                       x: Optional[ArrayLike] = None
                       ) -> Union[float, List[float], Dict[str, float]]:
        """One gradient step on exactly the rows given (Keras's ``train_on_batch``):
        ``fit`` with one epoch of one batch, unshuffled.

        Keras takes the loss and the optimizer from ``compile``; nnlib has no compile
        step, so they default to the last ``fit``'s (``self.loss``, ``self.optimizer``):
        a loop of ``train_on_batch`` calls carries the optimizer's state (momentum,
        Adam's moments, its step count) from one call to the next, as Keras's does. A
        Dropout made without a seed goes on with the masks of the last fit's
        ``random_state`` (the first call draws one if no fit did).

        Parameters
        ----------
        X : array_like (n, n_in), n >= 1;  y : as in :meth:`loss_and_grads`.
            One batch: all n rows make one step.
        loss : str, optional
            Default: ``self.loss``, else "softmax_cross_entropy".
        optimizer : nnlib.optim optimizer, optional
            Default: ``self.optimizer``, else a new ``SGD(lr=0.01)`` (as ``fit``'s),
            which becomes ``self.optimizer`` for the next call.
        sample_weight, class_weight, l2, l2_per_batch, margin, n_threads
            As in :meth:`fit`.
        metrics : list of str or callables, optional
            As ``fit``'s: computed on the batch after the step, with the updated weights
            (Keras reports them from the step's forward pass).
        return_dict : bool
            Return ``{"loss": ..., metric: ...}`` (Keras's ``return_dict=True``).
        x : array_like, optional
            Keras's name of ``X`` (``model.train_on_batch(x=X, y=Y)``): give one of the two.

        Returns
        -------
        float, list or dict
            The batch's loss from the step's forward pass, before the update (the L2
            term included), as Keras reports it; with ``metrics`` (and not
            ``return_dict``) Keras's list ``[loss, metric, ...]`` in ``metrics``'
            order, so ``loss, acc = model.train_on_batch(...)`` unpacks as in Keras;
            with ``return_dict`` the dict. NaN (each value) if the step was refused
            because the loss, gradient or update was non-finite (``fit``'s
            RuntimeWarning says which, and the weights are left as they were).

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> from nnlib.optim import SGD
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, init="zeros")])
        >>> X, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
        >>> round(model.train_on_batch(X, y, optimizer=SGD(lr=0.5)), 6)   # log 2
        0.693147
        >>> model.train_on_batch(X, y) < 0.6931     # the same optimizer, a second step
        True
        """
        X, y = _keras_xy(X, x, y, "train_on_batch")
        _refuse_keras_positionals("train_on_batch", loss, optimizer)
        loss = self._default_loss(loss)
        metrics = metrics_list(metrics)
        if optimizer is None:
            optimizer = self.optimizer
        # finite here, where a value beyond a float32 model's range is still seen as
        # given (fit would see the inf the conversion made of it)
        X = self._inputs(X, finite=True)
        # the last fit's history stays self.history, as Keras's train_on_batch leaves it
        _ON_BATCH.active = True
        # fit takes this X as converted and its layer check as done (see _checked_inputs)
        _ON_BATCH.inputs = (self, X, tuple(self.layers))
        try:
            history = self.fit(X, y, loss=loss, optimizer=optimizer, epochs=1,
                               batch_size=max(X.shape[0], 1), shuffle=False,
                               sample_weight=sample_weight, l2=l2,
                               l2_per_batch=l2_per_batch, margin=margin, metrics=metrics,
                               n_threads=n_threads, class_weight=class_weight)
        finally:
            _ON_BATCH.active, _ON_BATCH.inputs = False, None
        names = Metrics(metrics, loss).names
        if history.nonfinite is not None:
            # the step was refused (the weights are as they were): NaN for the loss
            # however far the step got (an overflowing update comes after a finite
            # loss), and for each metric, whose keys the dict keeps
            logs = dict.fromkeys(["loss", *names], math.nan)
        else:
            logs = {key: values[0] for key, values in history.history.items()
                    if key not in ("time", "lr")}
        return _batch_result(logs, names, return_dict)

    def test_on_batch(self, X: Optional[ArrayLike] = None, y: Optional[ArrayLike] = None,
                      loss: Optional[str] = None, margin: float = 1.0,
                      metrics: Optional[Sequence[Metric]] = None,
                      n_threads: Threads = None, return_dict: bool = False,
                      sample_weight: SampleWeight = None, *, x: Optional[ArrayLike] = None
                      ) -> Union[float, List[float], Dict[str, float]]:
        """The mean loss of the model on one batch (Keras's ``test_on_batch``): the loss
        of :meth:`evaluate`, without L2; with ``metrics``, Keras's list ``[loss,
        metric, ...]``; with ``return_dict``, evaluate's dict.

        Parameters
        ----------
        X : array_like (n, n_in);  y : as in :meth:`loss_and_grads`.
        loss, margin, metrics, n_threads
            As in :meth:`evaluate`.
        return_dict : bool
            Return ``{"loss": ..., "accuracy": ..., metric: ...}``, as :meth:`evaluate`.
        sample_weight : array_like (n,) or float, optional
            Row weights, checked as :meth:`fit`'s (finite, >= 0, not all 0). The loss is
            then the weighted mean ``sum_i w_i L_i / sum_i w_i``, the one ``fit`` and
            :meth:`train_on_batch` report for a batch (Keras divides by the batch
            length instead); the accuracy and ``metrics`` stay unweighted, as Keras's
            ``metrics`` (it weighs only ``weighted_metrics``). Needs a model of
            compiled layers (Dense, Dropout), as ``fit``'s does.
        x : array_like, optional
            Keras's name of ``X`` (``model.test_on_batch(x=X, y=Y)``): give one of the two.

        Returns
        -------
        float, list or dict

        Raises
        ------
        ValueError
            ``sample_weight`` for a model with Python layers, or weights whose sum
            leaves float64's range.

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, init="zeros")])
        >>> model.test_on_batch(np.ones((2, 2)), [0, 1])
        0.6931471805599453
        >>> model.test_on_batch(np.ones((2, 2)), [0, 1], metrics=["accuracy"])
        [0.6931471805599453, 0.5]

        Row weights weigh the mean loss (each row's loss here is 0.5):

        >>> model = nnlib.Sequential([nnlib.Dense(1, 1, init="zeros")])
        >>> X, t = np.ones((3, 1)), np.array([[1.0], [1.0], [2.0]])
        >>> model.test_on_batch(X, t, loss="squared_error")           # (0.5 + 0.5 + 2) / 3
        1.0
        >>> model.test_on_batch(X, t, loss="squared_error", sample_weight=[2.0, 2.0, 0.0])
        0.5
        """
        X, y = _keras_xy(X, x, y, "test_on_batch")
        _refuse_keras_positionals("test_on_batch", loss)
        loss = self._default_loss(loss)
        metrics = metrics_list(metrics)
        wanted = Metrics(metrics, loss)
        with _NotDuringAnotherThreadsFit(self, "test_on_batch"):
            logs = self.evaluate(X, y, loss=loss, margin=margin, n_threads=n_threads,
                                 metrics=metrics, return_dict=True,
                                 sample_weight=sample_weight)
        return _batch_result(logs, wanted.names, return_dict)

    def predict_on_batch(self, X: Optional[ArrayLike] = None, n_threads: Threads = None, *,
                         x: Optional[ArrayLike] = None) -> FloatArray:
        """The outputs for one batch (Keras's ``predict_on_batch``): :meth:`predict`
        over all rows at once.

        Parameters
        ----------
        X : array_like (n, n_in)
        n_threads : int or None
            As in :meth:`predict`.
        x : array_like, optional
            Keras's name of ``X`` (``model.predict_on_batch(x=X)``): give one of the two.

        Returns
        -------
        ndarray (n, n_out)

        Examples
        --------
        >>> import numpy as np, nnlib
        >>> nnlib.Sequential([nnlib.Dense(2, 1, init="zeros")]).predict_on_batch(np.ones((3, 2)))
        array([[0.],
               [0.],
               [0.]])
        """
        X = _keras_x(X, x, "predict_on_batch")
        X = self._inputs(X)
        with _NotDuringAnotherThreadsFit(self, "predict_on_batch"):
            return self.predict(X, batch_size=max(X.shape[0], 1), n_threads=n_threads)

    # -- interop (nnlib.export) ---------------------------------------------------------
    def to_torch_state_dict(self, as_tensors: bool = False) -> Dict[str, Any]:
        """The weights as the ``state_dict`` of the equivalent ``torch.nn.Sequential``
        (``"0.weight"`` of shape ``(out, in)``, ...); see :mod:`nnlib.export`.

        Parameters
        ----------
        as_tensors : bool, default False
            Give ``torch.Tensor`` values (imports torch) instead of NumPy arrays.

        Returns
        -------
        dict
            ``{"<i>.weight": (out, in), "<i>.bias": (out,)}`` for the i-th module of
            the torch model (activations take positions too).

        Examples
        --------
        >>> import nnlib
        >>> m = nnlib.Sequential([nnlib.Dense(2, 3, "relu"), nnlib.Dense(3, 1)])
        >>> sorted(m.to_torch_state_dict())
        ['0.bias', '0.weight', '2.bias', '2.weight']
        """
        from nnlib import export
        return export.to_torch_state_dict(self, as_tensors)

    def load_torch_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Copy a torch ``state_dict`` of the equivalent ``torch.nn.Sequential`` into the
        layers (checked first: nothing changes on an error); see :mod:`nnlib.export`.

        Parameters
        ----------
        state_dict : dict
            Keys and shapes as :meth:`to_torch_state_dict` gives them; values arrays or
            torch tensors.

        Examples
        --------
        >>> import numpy as np
        >>> model = Sequential([Dense(2, 1, init="zeros")])
        >>> model.load_torch_state_dict({"0.weight": np.array([[1.0, 2.0]]),
        ...                              "0.bias": np.array([0.5])})
        >>> model.layers[0].W                      # torch's (out, in), transposed
        array([[1.],
               [2.]])
        """
        from nnlib import export
        export.load_torch_state_dict(self, state_dict)

    @classmethod
    def from_torch_state_dict(cls, state_dict: Dict[str, Any], activations: Sequence[str],
                              dtype: DTypeLike = np.float64,
                              activation_params: Optional[Sequence[Optional[float]]] = None
                              ) -> "Sequential":
        """A model built from a torch ``state_dict`` and one activation name per
        ``Linear``; see :func:`nnlib.export.from_torch_state_dict`.

        Parameters
        ----------
        state_dict : dict
            Of a ``torch.nn.Sequential`` of ``Linear`` layers and activation modules.
        activations : sequence of str
            One nnlib activation name per ``Linear``, in order.
        dtype : float32 or float64, default float64
        activation_params : sequence of float or None, optional
            Each layer's leaky_relu slope or elu alpha (None: the default).

        Returns
        -------
        Sequential

        Examples
        --------
        >>> import numpy as np
        >>> model = Sequential([Dense(2, 3, "relu", random_state=0), Dense(3, 1)])
        >>> copy = Sequential.from_torch_state_dict(model.to_torch_state_dict(),
        ...                                        ["relu", "identity"])
        >>> X = np.array([[1.0, -2.0]])
        >>> np.array_equal(copy.predict(X), model.predict(X))
        True
        """
        from nnlib import export
        return export.from_torch_state_dict(state_dict, activations, dtype,
                                            activation_params)

    def to_onnx(self, path: Optional[PathLike] = None, **kwargs: Any) -> Any:
        """Export as an ONNX graph (needs ``onnx``); see :func:`nnlib.export.to_onnx`.

        Parameters
        ----------
        path : str or path-like, optional
            Also write the graph there.
        **kwargs
            Passed to :func:`nnlib.export.to_onnx`: ``dtype`` (default float32),
            ``opset``, ``input_name``, ``output_name``.

        Returns
        -------
        onnx.ModelProto

        Examples
        --------
        >>> proto = Sequential([Dense(2, 3, "tanh"), Dense(3, 2)]).to_onnx("model.onnx")
        >>> [node.op_type for node in proto.graph.node]
        ['Gemm', 'Tanh', 'Gemm']
        """
        from nnlib import export
        return export.to_onnx(self, path, **kwargs)

    # -- persistence ------------------------------------------------------------------
    def save(self, path: PathLike, include_optimizer: bool = False) -> None:
        """Write the model to ``path`` (format version 1, see :mod:`nnlib._format`),
        atomically.

        Parameters
        ----------
        path : str or path-like
            Must end in ``.npz``: the file is an uncompressed NumPy archive, and a name
            such as ``m.h5`` or ``m.pt`` would promise a format it is not (for those,
            see :mod:`nnlib.export`).
        include_optimizer : bool, default False
            Also save ``self.optimizer`` (the optimizer of the last ``fit``, or one
            assigned): its class, defaults, parameter groups and state (one not yet
            given the model's arrays keeps its hyper-parameters), so that ``load``
            gives a model whose ``optimizer`` resumes training bit-identically.

        Examples
        --------
        >>> import os, tempfile, numpy as np, nnlib
        >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
        >>> _ = model.fit(np.eye(2), [0, 1], optimizer=nnlib.optim.Adam(lr=0.1))
        >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
        >>> model.save(path, include_optimizer=True)
        >>> nnlib.load(path).optimizer
        Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)
        """
        _format.check_npz_name(path, "")
        for i, layer in enumerate(self.layers):
            if type(layer) not in (Dense, Dropout):
                raise TypeError(f"save writes models of Dense and Dropout layers only; "
                                f"layers[{i}] is {type(layer).__name__}: save_weights "
                                f"writes every layer's arrays, for load_weights to read "
                                f"into a model built the same way (Keras's save_weights)")
        self._check_layers()        # a file load would refuse (integer weights) is not written
        optimizer = getattr(self, "optimizer", None) if include_optimizer else None
        if include_optimizer and optimizer is None:
            raise ValueError("include_optimizer=True but the model has no optimizer: fit "
                             "it first, or set model.optimizer")
        _format.write(path, *_format.model_arrays(self, optimizer))


# set by train_on_batch for the fit it calls in this thread (read and cleared by that
# fit), which leaves model.history to the last fit
_ON_BATCH = threading.local()


def default_optimizer(model: "Sequential") -> "Optimizer":
    """The optimizer of a fit given none: ``model.optimizer`` (the last fit's, or the
    one :func:`load` read) when it holds exactly the model's arrays, or none yet, as
    Keras's ``fit`` goes on with the compiled optimizer; else a new ``SGD(lr=0.01)``
    -- with a RuntimeWarning when ``model.optimizer`` holds other arrays (layers or
    arrays replaced since: its state cannot go on with them).

    Examples
    --------
    >>> import numpy as np, nnlib
    >>> from nnlib.optim import Adam
    >>> model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    >>> type(default_optimizer(model)).__name__, default_optimizer(model).lr
    ('SGD', 0.01)
    >>> model.optimizer = Adam(model.params, lr=0.1)
    >>> default_optimizer(model) is model.optimizer
    True
    """
    from nnlib.optim import SGD
    opt = model.optimizer
    held = getattr(opt, "_all_params", None)
    if opt is None:
        return SGD(lr=0.01)
    if held is None:
        return opt                      # not nnlib's: fit's type check names it
    held, params = held(), model.params
    if not held or (len(held) == len(params)
                    and {id(p) for p in held} == {id(p) for p in params}):
        return opt
    warnings.warn(f"model.optimizer ({type(opt).__name__}) trains arrays this model no "
                  f"longer holds (its layers or arrays were replaced since): this fit "
                  f"trains with a new SGD(lr=0.01); pass optimizer= to choose one",
                  RuntimeWarning, stacklevel=3)
    return SGD(lr=0.01)


def _check_no_shared_arrays(model):
    """Refuse a model that holds one parameter array in two places (a layer appearing
    twice, or tied weights): a step would update it once per place from gradients
    taken before either update. (The optimizer's own message spoke of parameter groups
    the user never made.)"""
    params = model.params       # all held at once: distinct arrays have distinct ids
    if len(set(map(id, params))) == len(params):
        return                  # the common case in one pass (train_on_batch: each call)
    # each array is held here while its id is compared: a layer whose params gives new
    # arrays frees them once read, and the next layer's would take their ids
    seen = {}
    for i, layer in enumerate(model.layers):
        names = tuple(getattr(layer, "param_names", ()))
        for k, p in enumerate(layer.params):
            here = f"layers[{i}]." + (names[k] if k < len(names) else f"params[{k}]")
            if id(p) in seen:
                j, there, _ = seen[id(p)]
                what = (f"layers[{j}] and layers[{i}] are the same layer"
                        if model.layers[j] is layer else
                        f"{there} and {here} are the same array")
                raise ValueError(f"{what}: fit trains each parameter array of the model "
                                 f"once per step; give each layer its own arrays "
                                 f"(copy.deepcopy(layer))")
            seen[id(p)] = (i, here, p)


def _unseeded_dropouts(model):
    """The Dropout layers whose fit seed comes from ``random_state``'s generator."""
    return [layer for layer in model.layers
            if isinstance(layer, Dropout) and layer.seed is None]


def _seed_dropouts(model, rng, random_state=None, keep=False):
    """Give each Dropout layer without its own seed this fit's seed, from a child of
    ``rng`` (``Generator.spawn`` leaves the parent's stream, the shuffling, as it is).
    ``rng`` need not be a Generator (None, or the compiled orders of an int seed, when
    fit saw no unseeded layer before the user's code ran): then the child comes from
    ``as_generator(random_state)``, the Generator fit would have drawn from.
    ``keep``: a layer that has a fit seed already keeps it (train_on_batch)."""
    unseeded = _unseeded_dropouts(model)
    if keep:
        unseeded = [layer for layer in unseeded if layer._fit_seed is None]
    if not unseeded:
        return
    if not isinstance(rng, np.random.Generator):
        rng = as_generator(random_state)
    try:
        child = rng.spawn(1)[0]
    except (AttributeError, TypeError):     # a bit generator without a SeedSequence
        child = np.random.default_rng(rng.integers(0, 2**63))
    for layer, seed in zip(unseeded, child.integers(0, 2**63, size=len(unseeded))):
        layer._fit_seed = int(seed)


# {id(model): verb} of the _NotDuringAnotherThreadsFit checks running in this thread
_GUARDED = threading.local()


class _NotDuringAnotherThreadsFit:
    """Refuse an inference whose weights another thread's fit moves meanwhile: the
    compiled loop updates W and b in place without the GIL, so the result would mix
    steps (a model that never existed). Checked before and after: no fit of another
    thread held the model at either point, and none started in between. The fit's own
    thread (a callback) predicts between steps, with consistent weights."""

    def __init__(self, model, verb="predict"):
        self.model, self.verb = model, verb
        self.outer = False

    def _check(self):
        from nnlib._threads import claimed_by
        me = threading.get_ident()
        # a layer it shares with another model is claimed by that model's fit
        for obj in (self.model, *self.model.layers):
            thread = claimed_by(obj)
            if thread is not None and thread != me:
                break
        if thread is not None and thread != me:
            from nnlib.exceptions import ConcurrentUseError
            raise ConcurrentUseError(
                f"the model{'' if obj is self.model else ' (a layer it shares)'} is "
                f"being trained by a running fit in another thread (thread "
                f"{thread}); its weights change without a lock, so {self.verb} there "
                f"would mix training steps: call it from a callback of that fit, or "
                f"after it")

    def __enter__(self):
        # within this thread's check of the same model (score's evaluate, predict_proba's
        # predict) the messages name the call the user made, the outer one's verb (the
        # checks all run: a stale entry, left by an interrupt, costs only a name)
        held = _GUARDED.__dict__.setdefault("verbs", {})
        if id(self.model) in held:
            self.verb = held[id(self.model)]
        else:
            held[id(self.model)], self.outer = self.verb, True
        try:
            # the count first: a fit that starts right after the check has then moved it
            from nnlib._threads import fits_started
            self.objs = (self.model, *self.model.layers)
            self.started = fits_started(self.objs)
            self._check()
        except BaseException:
            self._leave()
            raise
        return self

    def _leave(self):
        if self.outer:
            _GUARDED.verbs.pop(id(self.model), None)

    def __exit__(self, exc_type, *exc):
        self._leave()
        if exc_type is None:
            self._check()
            from nnlib._threads import fits_started
            if fits_started(self.objs) != self.started:
                from nnlib.exceptions import ConcurrentUseError
                raise ConcurrentUseError(f"the model was trained by a fit in another "
                                         f"thread while {self.verb} ran; {self.verb} again")
        return False


def load(path: PathLike) -> Sequential:
    """Read a model written by :meth:`Sequential.save`.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` file written by :meth:`Sequential.save`.

    Returns
    -------
    Sequential
        With its ``optimizer`` when it was saved with ``include_optimizer=True``.

    Raises
    ------
    ValueError
        The file is not an nnlib model, is truncated or corrupted (checksum), has an
        unsupported version, or its arrays do not match its layer specs.

    Warns
    -----
    UserWarning
        The file is older than nnlib's saving of an optimizer's defaults and its
        optimizer was not yet bound to the model's arrays, so none of its
        hyper-parameters were kept: the warning names them and the class defaults
        the loaded ``optimizer`` has instead.

    Examples
    --------
    >>> import numpy as np
    >>> model = Sequential([Dense(2, 3, "relu", random_state=0), Dense(3, 2, random_state=1)])
    >>> model.save("model.npz")
    >>> copy = load("model.npz")
    >>> copy
    Sequential([Dense(2, 3, activation='relu', dtype=float64),
                Dense(3, 2, activation='identity', dtype=float64)])
    >>> X = np.array([[1.0, -2.0]])
    >>> np.array_equal(copy.predict(X), model.predict(X))
    True
    >>> with open("junk.npz", "wb") as fh:
    ...     _ = fh.write(b"not an archive")
    >>> load("junk.npz")
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    header, arrays = _format.read(path)
    model = _format.build_model(header, arrays, path)
    if "optimizer" in header:
        from nnlib.optim import _from_saved
        model.optimizer = _from_saved(header["optimizer"], arrays, model.params, path)
    return model


def _keras_x(X, x, verb):
    """The input rows given as ``X`` or by Keras's name ``x=`` (one of the two)."""
    if x is None:
        if X is None:
            raise TypeError(f"{verb}() is missing its input rows X (x=, Keras's name, "
                            f"is taken too)")
        return X
    if X is not None:
        raise TypeError(f"{verb}() got both X and x= (Keras's name of X): give one")
    return x


def _keras_xy(X, x, y, verb):
    """``_keras_x``'s rows and the targets ``y`` (keyword-optional only so that
    Keras's ``fit(x=X, y=Y)`` reads as written: y is required)."""
    X = _keras_x(X, x, verb)
    if y is None:
        raise TypeError(f"{verb}() is missing its targets y")
    return X, y


# Where nnlib's positional arguments after (X, y) part from Keras's: per verb, nnlib's
# name and Keras's at the third and fourth places, and both orders as the messages
# quote them. A call ported as written would otherwise fail on "unknown loss 64" or
# "optimizer must be an nnlib.optim optimizer; got int".
_KERAS_PLACES = {
    "fit": ((("loss", "batch_size"), ("optimizer", "epochs")),
            "X, y, loss, optimizer, epochs, batch_size", "x, y, batch_size, epochs"),
    "evaluate": ((("loss", "batch_size"),), "X, y, loss, margin", "x, y, batch_size"),
    "train_on_batch": ((("loss", "sample_weight"), ("optimizer", "class_weight")),
                       "X, y, loss, optimizer", "x, y, sample_weight, class_weight"),
    "test_on_batch": ((("loss", "sample_weight"),), "X, y, loss, margin",
                      "x, y, sample_weight"),
}


def _is_keras_value(name, value):
    """Whether ``value`` is what Keras puts at the place of its argument ``name``, and
    nnlib never takes at its own (no loss is a number or an array, no optimizer a
    number or a dict)."""
    if name in ("batch_size", "epochs"):
        return isinstance(value, numbers.Number)
    if name == "sample_weight":
        # an array-like (a loss object or a function is no weight: "unknown loss")
        return (isinstance(value, (numbers.Number, np.ndarray, list, tuple))
                or hasattr(value, "__array__") or hasattr(value, "__array_interface__"))
    return isinstance(value, Mapping)               # class_weight


def _refuse_keras_positionals(verb, *values):
    """A TypeError naming both orders when nnlib's third (and fourth) positional
    arguments of ``verb`` hold what Keras's take there: ``fit(x, y, 32, 10)``,
    ``evaluate(x, y, 64)``, ``train_on_batch(x, y, w)``. nnlib keeps its order (the
    loss third: there is no ``compile``); Keras's arguments are taken by keyword."""
    places, nnlib_order, keras_order = _KERAS_PLACES[verb]
    wrong = [(ordinal, ours, theirs, value) for ordinal, (ours, theirs), value
             in zip(("third", "fourth"), places, values) if _is_keras_value(theirs, value)]
    if not wrong:
        return
    shown = [repr(v) if isinstance(v, numbers.Number) else "a dict"
             if isinstance(v, Mapping) else f"an array ({type(v).__name__})"
             for *_, v in wrong]
    what = " and its ".join(f"{o} the {ours}" if i else f"{o} positional argument is "
                            f"the {ours}" for i, (o, ours, _, _) in enumerate(wrong))
    keywords = ", ".join(f"{theirs}={v!r}" if isinstance(v, numbers.Number)
                         else f"{theirs}=..." for *_, theirs, v in wrong)
    raise TypeError(f"{verb}'s {what} (nnlib's order: {nnlib_order}, ...); got "
                    f"{' and '.join(shown)}: Keras's {verb}({keras_order}, ...) puts "
                    f"{' and '.join(t for *_, t, _ in wrong)} there, which nnlib takes "
                    f"by keyword: {keywords}")


def _verbosity(verbose):
    """``verbose`` as an int >= 0: a bool as 0 or 1, Keras's "auto" as 1 (what Keras's
    fit, evaluate and predict make of it outside a distributed run)."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return check_int_scalar(verbose, "verbose", low=0)


def _batch_result(logs, names, return_dict):
    """What train_on_batch and test_on_batch return from their ``logs``: the dict
    (``return_dict``), Keras's list ``[loss, metric, ...]`` in the order of the metric
    ``names`` (given metrics), else the loss alone."""
    if return_dict:
        return logs
    if names:
        return [logs["loss"], *(logs[name] for name in names)]
    return logs["loss"]
