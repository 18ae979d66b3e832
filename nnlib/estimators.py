"""scikit-learn compatible multi-layer perceptrons: ``MLPClassifier``, ``MLPRegressor``.

Same parameter names, defaults and meanings as ``sklearn.neural_network`` (1.9), the
same fitted attributes, and the same training rules, so a model can move between the two
libraries and results can be compared; scikit-learn itself is never imported (only its
own tools call ``__sklearn_tags__``, which imports it lazily). Usable in scikit-learn's
``Pipeline`` and ``GridSearchCV`` and passes its ``check_estimator``; created while
scikit-learn is in use, an estimator is a ``sklearn.base.BaseEstimator`` too (HTML
repr, metadata routing of ``sample_weight``: see ``nnlib._base``).

Engine
------
A fit keeps one :class:`nnlib.training.TrainingRun` for all its epochs: each epoch is one
compiled call (``nnlib/_kernels/train.pyx``: batching over the shuffled order, forward,
loss, backward, L2 and the update with the GIL released) on the data validated once, with
integer labels for softmax and no copy of X. The optimizer is ``nnlib.optim``'s
SklearnSGD / SklearnAdam / NotesAdaGrad / SGD. L-BFGS evaluates its objective through one
compiled full-batch setup (``train.loss_grad``) over a flat parameter buffer. Python runs
only the per-epoch logic (shuffle, stopping, schedules, validation).
``nnlib/_reference/mlp.py`` states the same training in plain NumPy; the tests check both
train the same model. scikit-learn's multi-output squared loss averages over the outputs
but takes the gradient of the sum, which is nnlib's ``squared_error`` gradient; only the
reported loss (``loss_``, ``loss_curve_``) is divided by n_outputs (the run's
``loss_scale``), so the values match scikit-learn's.

How training follows scikit-learn
---------------------------------
* ``random_state`` seeds a legacy ``numpy.random.RandomState`` exactly as scikit-learn
  does, and it is drawn in the same order (Glorot-uniform weights with bound
  ``sqrt(6 / (fan_in + fan_out))``, ``sqrt(2 / ...)`` for logistic units; then one
  permutation per epoch), so with the same seed both libraries start from the same
  weights and visit the same mini-batches: their float64 trajectories agree to rounding
  (tests/test_estimators_sklearn.py checks 1e-10). ``early_stopping``'s validation rows
  are those scikit-learn's ``train_test_split`` picks from the same RandomState
  (``nnlib._shuffle_split`` draws as it does, stratified for a one-output classifier),
  so early stopping trains the same model too.
* ``sample_weight`` (fit and partial_fit) is normalised as scikit-learn 1.9 does: each
  batch's loss is the weighted mean ``sum_i w_i L_i / sum_i w_i``, ``alpha`` is divided
  by the batch's weight sum instead of its length, and early stopping's validation
  score is weighted. The compiled epoch weights the loss rows itself
  (``loss_rows.weighted_loss_grad_batch``); L-BFGS's objective too. Unlike
  scikit-learn, negative weights are refused (a weight sum of 0 or below has no mean).
* ``alpha`` is an L2 penalty ``alpha / (2 n_batch) * sum ||W||^2`` on the weights (not
  the biases), i.e. divided by the batch length; ``loss_`` and ``loss_curve_`` include it
  (the mean over the epoch of each batch's penalized loss), as scikit-learn reports.
* ``solver="sgd"`` is scikit-learn's momentum SGD: ``v <- momentum v - lr g``,
  ``w <- w + v`` (Nesterov: ``w <- w + momentum v - lr g``). The learning rate lives
  inside the velocity. ``nnlib.optim.SGD`` follows PyTorch instead:
  ``buf <- momentum buf + g``, ``w <- w - lr buf`` (lr outside the buffer, first buffer =
  g), so the same numbers give different trajectories.
* ``solver="adam"`` is scikit-learn's Adam: ``w <- w - lr sqrt(1-b2^t)/(1-b1^t) m /
  (sqrt(v) + eps)`` -- eps is not bias-corrected. ``nnlib.optim.Adam`` follows PyTorch:
  ``w <- w - lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)``. They differ only through
  eps.
* ``learning_rate`` ('constant', 'invscaling', 'adaptive') and ``power_t`` act as in
  scikit-learn: invscaling sets ``lr = learning_rate_init / (t_ + 1)^power_t`` at the end
  of each epoch (``t_`` = samples seen); 'adaptive' divides lr by 5 when the loss stops
  improving by ``tol`` for ``n_iter_no_change`` epochs, and stops below 1e-6. They apply
  to 'sgd', 'gd' and 'adagrad'; Adam keeps its rate (as scikit-learn).
* stopping: after ``n_iter_no_change`` epochs (``np.inf``: never) in which the training
  loss fails to drop by ``tol`` (or, with ``early_stopping``, the validation score fails
  to rise by ``tol``), or at ``max_iter`` epochs with a ConvergenceWarning. A fit with
  early stopping whose loss becomes non-finite finishes as scikit-learn's does (NaN
  losses and scores up to ``max_iter``, then the best weights); without early stopping
  it raises scikit-learn's "Solver produced non-finite parameter weights" error.

Extensions beyond scikit-learn
------------------------------
* ``solver="gd"``: the notes' full-batch gradient descent ``w <- w - lr grad`` (one step
  per epoch on all samples; batch_size, shuffle and momentum are ignored);
* ``solver="adagrad"``: the notes' AdaGrad ``G <- G + g^2``,
  ``w <- w - lr g / sqrt(epsilon + G)``, mini-batched like 'sgd';
* ``activation`` also accepts nnlib's 'leaky_relu', 'softplus' and 'elu'.

Multilabel classification (y an n_samples x n_labels 0/1 matrix) uses one logistic
output per label, as scikit-learn: the compiled ``logistic_loss`` on n_labels outputs,
whose loss (summed over the labels, averaged over the samples) and gradient are
scikit-learn's.

Sparse X (SciPy CSR or CSC; other formats and NaN raise) trains through the compiled
epoch's sparse first layer (``nnlib/_kernels/sparse_rows.pxd``: the batch's rows read in
place, ``X_b W`` and ``X_b^T dZ`` in O(nnz)), never a dense copy of X.

``MLPRegressor(loss="poisson")`` trains the compiled ``poisson_loss`` kernel
(``loss_rows.poisson_rows``: ``e^z - t z + t log t - t`` on the log-mean z, gradient
``e^z - t``), as scikit-learn's exp output with its half Poisson deviance.
"""
import copy
import functools
import numbers
import threading
import warnings
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from nnlib._aligned import aligned_copy
from nnlib._reference import mlp as ref
from nnlib import functional as F
from nnlib._base import BaseModel, ClassifierMixin, RegressorMixin
from nnlib._codes import loss_code
from nnlib._divergence import fault_phrase
from nnlib._inputs import (check_feature_names, check_float_target, check_output_finite,
                           check_X, check_y_shape, class_labels, labels_to_index)
from nnlib._threads import _at_fork_hooks, complete, training_call
from nnlib._typing import ArrayLike, FloatArray, NDArray, SeedLike
from nnlib._validation import (LabelError, NonFiniteError, ShapeError, check_batch_weights,
                               check_fits_dtype, check_sample_weight, check_weight_total,
                               is_sparse)
from nnlib._weak_identity import WeakIdentityDict
from nnlib._shuffle_split import stratify_groups, train_test_indices
from nnlib.exceptions import (ConvergenceWarning, DTypeError, InvalidParameterError,
                               sklearn_compatible)

__all__ = ["MLPClassifier", "MLPRegressor"]

_SOLVERS = ("lbfgs", "sgd", "adam", "adagrad", "gd")
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                "relu": "relu", "leaky_relu": "leaky_relu", "softplus": "softplus",
                "elu": "elu"}
_SCHEDULES = ("constant", "invscaling", "adaptive")


def _check_param_arrays(est, one_dtype):
    """Raise a TypeError naming the first of ``coefs_``/``intercepts_`` (which a user may
    set) that is not a NumPy array (the fit reads their shapes); with ``one_dtype``, a
    DTypeError naming the first that is not float32/float64 or not of ``coefs_[0]``'s
    dtype: the compiled epoch trains them in place, in one dtype."""
    arrays = (("coefs_", est.coefs_), ("intercepts_", est.intercepts_))
    for name, group in arrays:
        for i, a in enumerate(group):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{type(est).__name__}.{name}[{i}] is a "
                                f"{type(a).__name__}; training continues from coefs_ "
                                f"and intercepts_ of NumPy arrays: np.asarray it")
    if not one_dtype:
        return
    d0 = est.coefs_[0].dtype
    for name, group in arrays:
        for i, a in enumerate(group):
            d = a.dtype
            if d not in (np.float32, np.float64) or d != d0:
                other = "" if d == d0 else f" (coefs_[0] has {d0})"
                raise DTypeError(f"{type(est).__name__}.{name}[{i}] has dtype {d}{other}; "
                                 f"training continues from coefs_ and intercepts_ all of "
                                 f"float32 or all of float64: cast them with .astype")


def _restore_vars(obj, saved):
    """Put back ``obj``'s attributes as ``saved`` (a copy of its ``vars``) holds them."""
    attrs = vars(obj)
    for name in [n for n in attrs if n not in saved]:
        del attrs[name]
    attrs.update(saved)


class _available_if:
    """A method that exists only when ``check(self)`` is true (``hasattr`` is then False),
    like scikit-learn's ``available_if``: ``partial_fit`` is absent for lbfgs."""

    def __init__(self, check, fn):
        self.check, self.fn = check, fn
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.fn
        if not self.check(obj):
            raise AttributeError(f"{self.name} is only available for the stochastic "
                                 f"solvers; {obj.solver!r} is not stochastic")
        return self.fn.__get__(obj, owner)


# scikit-learn's words (its tests match them); nnlib's messages go on from there
_NONFINITE = ("Solver produced non-finite parameter weights. The input data may contain "
              "large values and need to be preprocessed")


class _Diverged(ValueError):
    """An epoch met a non-finite loss, gradient or update (the weights are those of the
    last finite step)."""


# ---------------------------------------------------------------- one fit or predict at a time

_LOCKS = WeakIdentityDict()          # estimator -> its RLock (not pickled, not cloned)
_LOCKS_GUARD = threading.Lock()


def _drop_locks_in_forked_child():       # held by parent threads the child does not have
    _LOCKS_GUARD._at_fork_reinit()       # type: ignore[attr-defined]   # CPython's, private
    for est in _LOCKS.keys():
        # a parent thread's fit ran an epoch on the trainer's run at the fork: its setup
        # stays busy here for good (no thread will finish that epoch), so the child's
        # next fit builds its own run instead of closing that one
        trainer = getattr(est, "_trainer", None)
        run = getattr(trainer, "_run", None)
        if run is not None and run.setup.busy:
            trainer._run, trainer._run_key = None, None
    _LOCKS.clear()


_at_fork_hooks.append(_drop_locks_in_forked_child)


def _serialized(method):
    """``method`` holding the estimator's lock: fit, partial_fit and the predictions of
    one estimator run one at a time (a predict waits for a running fit, and never sees
    the network half rebuilt); different estimators run concurrently."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with _LOCKS_GUARD:
            lock = _LOCKS.get(self)
            if lock is None:
                lock = _LOCKS[self] = threading.RLock()
        with lock:
            return method(self, *args, **kwargs)
    return locked


# ---------------------------------------------------------------- parameter checks

def _bad(name, value, want):
    return InvalidParameterError(f"The '{name}' parameter must be {want}; got {value!r}.")


def _real(p, name, low=None, high=None, low_open=False, high_open=False):
    v = p[name]
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != v:
        raise _bad(name, v, "a real number")
    if v in (float("inf"), float("-inf")):
        raise _bad(name, v, "a finite real number")
    if (low is not None and (v < low or (low_open and v == low))) or \
       (high is not None and (v > high or (high_open and v == high))):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise InvalidParameterError(
            f"The '{name}' parameter must be in the range {lo}{low}, "
            f"{'inf' if high is None else high}{hi}; got {v!r}.")
    return float(v)


def _int(p, name, low):
    v = p[name]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise _bad(name, v, f"an int >= {low}")
    if v < low:
        raise _bad(name, v, f"an int >= {low}")
    return int(v)


def _int_or_inf(p, name, low):
    """An int >= low, or ``np.inf`` (never: scikit-learn's ``n_iter_no_change``)."""
    v = p[name]
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and v == float("inf"):
        return float("inf")
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        raise _bad(name, v, f"an int >= {low} or np.inf")
    return int(v)


def _flag(p, name):
    v = p[name]
    if not isinstance(v, (bool, np.bool_)):
        raise _bad(name, v, "a bool")
    return bool(v)


def _choice(p, name, options):
    v = p[name]
    if not isinstance(v, str) or v not in options:
        raise _bad(name, v, f"one of {list(options)}")
    return v


def _hidden_sizes(value):
    sizes = [value] if isinstance(value, numbers.Integral) else value
    try:
        sizes = list(sizes)
    except TypeError:
        raise _bad("hidden_layer_sizes", value, "an int or a sequence of ints") from None
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s <= 0:
            raise _bad("hidden_layer_sizes", value, "positive ints (hidden_layer_sizes "
                       "must be > 0)")
    return [int(s) for s in sizes]


# ---------------------------------------------------------------- the shared base

class _BaseMLP(BaseModel):
    """Everything MLPClassifier and MLPRegressor share: checks, initialization, the
    training loops, prediction. Subclasses define the targets and the output map."""

    _engine = "compiled"     # "numpy": train with the NumPy reference (tests compare)

    # Set by fit, or defined by the subclasses (declared for type checkers only).
    n_features_in_: int
    classes_: np.ndarray
    validation_scores_: Optional[List[float]]
    best_validation_score_: Any           # float; None without early stopping
    best_loss_: Optional[float]
    _targets: Callable[..., Any]
    _output_activation: Callable[..., Any]
    _stratify_groups: Callable[..., Any]
    _decode: Callable[..., Any]
    _score_validation: Callable[..., Any]

    def __init__(self, hidden_layer_sizes: Union[int, Sequence[int]] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Union[int, str] = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: SeedLike = None, tol: float = 1e-4,
                 verbose: Union[bool, int] = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    # -- checks ------------------------------------------------------------------------
    def _checked_params(self):
        p = self.get_params(deep=False)
        batch = p["batch_size"]
        if not (isinstance(batch, str) and batch == "auto"):
            batch = _int(p, "batch_size", 1)
        verbose = p["verbose"]
        if isinstance(verbose, bool) or not isinstance(verbose, numbers.Integral):
            verbose = _flag(p, "verbose")
        return dict(
            hidden=_hidden_sizes(p["hidden_layer_sizes"]),
            activation=_ACTIVATIONS[_choice(p, "activation", tuple(_ACTIVATIONS))],
            solver=_choice(p, "solver", _SOLVERS),
            alpha=_real(p, "alpha", 0.0),
            batch_size=batch,
            learning_rate=_choice(p, "learning_rate", _SCHEDULES),
            learning_rate_init=_real(p, "learning_rate_init", 0.0, low_open=True),
            power_t=_real(p, "power_t", 0.0),
            max_iter=_int(p, "max_iter", 1),
            shuffle=_flag(p, "shuffle"),
            tol=_real(p, "tol", 0.0),
            verbose=int(verbose),
            warm_start=_flag(p, "warm_start"),
            momentum=_real(p, "momentum", 0.0, 1.0),
            nesterov=_flag(p, "nesterovs_momentum"),
            early_stopping=_flag(p, "early_stopping"),
            validation_fraction=_real(p, "validation_fraction", 0.0, 1.0,
                                      high_open=True),
            beta_1=_real(p, "beta_1", 0.0, 1.0, high_open=True),
            beta_2=_real(p, "beta_2", 0.0, 1.0, high_open=True),
            epsilon=_real(p, "epsilon", 0.0, low_open=True),
            n_iter_no_change=_int_or_inf(p, "n_iter_no_change", 1),
            max_fun=_int(p, "max_fun", 1),
        )

    def _rng(self):
        """scikit-learn's ``check_random_state``: a RandomState drawn in its order."""
        rs = self.random_state
        if rs is None:
            return np.random.mtrand._rand
        if isinstance(rs, np.random.RandomState):
            return rs
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            # RandomState(seed) first seeds itself from OS entropy, then reseeds: putting
            # back the state a seed gave before is a third of that. Each fit starts from
            # the seed's state, as a new RandomState would.
            seeded = self.__dict__.get("_seeded_rng")
            if seeded is not None and seeded[0] == int(rs):
                seeded[1].set_state(seeded[2])
                return seeded[1]
            rng = np.random.RandomState(int(rs))
            self._seeded_rng = (int(rs), rng, rng.get_state())
            return rng
        if isinstance(rs, np.random.Generator):
            return np.random.RandomState(int(rs.integers(0, 2**31 - 1)))
        raise _bad("random_state", rs, "None, an int, a numpy RandomState or Generator")

    def _is_stochastic(self):
        return self.solver != "lbfgs"

    # -- fitting -----------------------------------------------------------------------
    @_serialized
    def fit(self, X: ArrayLike, y: ArrayLike,
            sample_weight: Optional[ArrayLike] = None) -> "_BaseMLP":
        """Fit the model to X and y; returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,) or float, default=None
            Row weights, normalised as scikit-learn's MLP: each batch's loss is the
            weighted mean ``sum_i w_i L_i / sum_i w_i`` and ``alpha`` is divided by the
            batch's weight sum (by its length without weights). Finite, >= 0 and not
            all zero; with ``early_stopping`` the validation score is weighted too.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        >>> clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", random_state=0)
        >>> clf.fit(X, [0, 1, 1, 0], sample_weight=[1.0, 2.0, 2.0, 1.0]).classes_
        array([0, 1])
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _fit(self, X, y, incremental, sample_weight=None):
        cfg = self._checked_params()
        first = not hasattr(self, "coefs_") or (not cfg["warm_start"] and not incremental)
        if cfg["early_stopping"] and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        # The setup replaces the fitted attributes one by one (feature names, classes_,
        # coefs_, ...): an exception or interrupt before it ends puts the estimator back
        # as it was, never classes_ of one fit beside coefs_ of another.
        before = dict(vars(self))
        try:
            X, Y, sw, rng, sizes = self._setup(X, y, cfg, first, incremental, sample_weight)
        except BaseException:
            complete(lambda: _restore_vars(self, before))
            raise
        del before
        if not first:
            # before this fit sets anything (its trainer, n_iter_, _cfg); lbfgs copies
            # the arrays into one float64 vector and accepts any dtype
            _check_param_arrays(self, one_dtype=cfg["solver"] != "lbfgs")
        if not first and \
                [W.shape[0] for W in self.coefs_] + [self.coefs_[-1].shape[1]] != sizes:
            raise ValueError(f"warm_start/partial_fit need the same architecture: the "
                             f"model has layer sizes "
                             f"{[W.shape[0] for W in self.coefs_] + [self.n_outputs_]}, "
                             f"the new parameters and data ask for {sizes}")
        self._cfg = cfg
        if cfg["solver"] == "lbfgs":
            self._fit_lbfgs(X, Y, cfg, sw)
        else:
            self._fit_stochastic(X, Y, cfg, rng, incremental, sw)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError(_NONFINITE + " (e.g. standardized), or learning_rate_init "
                             "lowered.")
        del self._cfg
        return self

    def _setup(self, X, y, cfg, first, incremental, sample_weight):
        """Checked (X, Y, sample weights, rng, layer sizes) of a fit; a first fit's
        fitted attributes set and its weights initialized."""
        check_feature_names(self, X, reset=first)
        X = check_X(X, owner=type(self).__name__,
                    n_features=None if first else self.n_features_in_, accept_sparse=True)
        for name in ("alpha", "learning_rate_init"):   # cast to X's dtype when training
            check_fits_dtype(cfg[name], name, X.dtype)
        Y = self._targets(X, y, first=first, incremental=incremental)
        sw = None if sample_weight is None else check_sample_weight(
            sample_weight, X.shape[0], X.dtype)
        rng = self._rng()
        sizes = [X.shape[1]] + cfg["hidden"] + [self._n_outputs(Y)]
        if first:
            self._initialize(cfg, sizes, X.dtype, rng)
        return X, Y, sw, rng, sizes

    def _initialize(self, cfg, sizes, dtype, rng):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = sizes[-1]
        self.n_layers_ = len(sizes)
        self.out_activation_ = self._output_activation()
        factor = 2.0 if cfg["activation"] == "sigmoid" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            # at a cache line, as nnlib's own layers (nnlib._aligned)
            self.coefs_.append(aligned_copy(rng.uniform(-bound, bound, (fan_in, fan_out)),
                                            dtype))
            self.intercepts_.append(aligned_copy(rng.uniform(-bound, bound, fan_out), dtype))
        self._best = None
        self._trainer = None
        if cfg["solver"] != "lbfgs":
            self.loss_curve_ = []
            self._init_stopping(cfg)

    def _init_stopping(self, cfg):
        """The stochastic fit's record of its best score, for ``early_stopping`` or not."""
        self._no_improvement_count = 0
        if cfg["early_stopping"]:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _n_outputs(self, Y):
        """Output units for the training targets ``Y`` (class indices (n,) for a
        softmax classifier, else an (n, k) matrix)."""
        return Y.shape[1] if Y.ndim == 2 else self.classes_.size

    def _engine_for(self):
        """'compiled' (nnlib.Sequential's compiled loop) unless the NumPy reference is
        asked for (``_engine = "numpy"``, the tests' oracle)."""
        if self._engine == "numpy":
            return _NumpyTrainer
        return _CompiledTrainer

    def _fit_lbfgs(self, X, Y, cfg, sw):
        try:
            import scipy.optimize   # only when lbfgs is asked for
        except ImportError as exc:
            raise ImportError("solver='lbfgs' needs SciPy's L-BFGS-B, and SciPy is not "
                              "installed: install nnlib's 'scipy' extra (pip install "
                              "'nnlib[scipy]', or pip install scipy), or choose "
                              "solver='adam' or 'sgd'") from exc

        trainer = self._engine_for()(self, cfg, Y)
        if sw is not None:          # L-BFGS takes one weighted mean over every row
            check_weight_total(sw)
        norm = X.shape[0] if sw is None else float(sw.sum())
        objective = trainer.lbfgs_objective(X, Y, cfg["alpha"] / norm, sw)
        params = self.coefs_ + self.intercepts_
        theta0 = np.concatenate([p.ravel() for p in params])
        options = {"maxfun": cfg["max_fun"], "maxiter": cfg["max_iter"],
                   "gtol": cfg["tol"]}
        if _lbfgs_takes_iprint():
            options["iprint"] = 1 if cfg["verbose"] else -1
        res = scipy.optimize.minimize(objective, theta0.astype(np.float64),
                                      method="L-BFGS-B", jac=True, options=options)
        if not np.isfinite(res.fun):          # L-BFGS-B stops at a NaN loss, x finite
            raise ValueError(f"{_NONFINITE} (e.g. standardized), or learning_rate_init "
                             f"lowered: the loss became non-finite ({res.fun}).")
        if res.status != 0:
            msg = res.message.decode() if isinstance(res.message, bytes) else res.message
            warnings.warn(f"lbfgs failed to converge after {res.nit} iteration(s) "
                          f"(status={res.status}): {msg}. Increase the number of "
                          f"iterations (max_iter) or scale the data.",
                          sklearn_compatible(ConvergenceWarning), stacklevel=3)
        self.n_iter_ = min(int(res.nit), cfg["max_iter"])
        self.loss_ = float(res.fun)
        for p, value in zip(params, _views(res.x, [p.shape for p in params])):
            p[...] = value

    def _fit_stochastic(self, X, Y, cfg, rng, incremental, sw):
        solver = cfg["solver"]
        # a warm fit whose previous fit kept another record (lbfgs keeps none;
        # early_stopping switched since): start the record this fit keeps, as a first
        # fit would, the loss curve continued (scikit-learn crashes after an epoch here)
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_ = []
            self._init_stopping(cfg)
        elif cfg["early_stopping"] != (getattr(self, "validation_scores_", None)
                                       is not None):
            self._init_stopping(cfg)
        if not incremental or getattr(self, "_trainer", None) is None:
            self._trainer = self._engine_for()(self, cfg, Y)
        else:
            # partial_fit keeps the optimizer and its state, but alpha and activation
            # set between calls apply from this call on (as in scikit-learn)
            self._trainer.cfg = cfg
        trainer = self._trainer
        early = cfg["early_stopping"]
        sw_train = sw_val = None
        if early:
            # scikit-learn's train_test_split on its own RandomState: the same rows.
            # It stratifies a classifier with one output unit only (two classes, or
            # one), not a softmax or multilabel one.
            groups = self._stratify_groups(Y) if self.n_outputs_ == 1 else None
            try:
                train, val = train_test_indices(
                    X.shape[0], cfg["validation_fraction"], rng,
                    *(() if groups is None else stratify_groups(groups, 2)))
            except ValueError as exc:
                # train_test_split's own words (scikit-learn's tests match them) speak
                # of a test_size the user never passed: say what it is first
                raise ValueError(f"The validation set is too small. Increase "
                                 f"'validation_fraction' or the size of your dataset "
                                 f"(early_stopping=True with {X.shape[0]} samples and "
                                 f"validation_fraction={cfg['validation_fraction']}: "
                                 f"{exc})") from exc
            X_train, X_val, Y_train, Y_val = X[train], X[val], Y[train], Y[val]
            if sw is not None:
                sw_train, sw_val = sw[train], sw[val]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._decode(Y_val)
        else:
            X_train, Y_train, X_val, y_val, sw_train = X, Y, None, None, sw
        n = X_train.shape[0]
        if solver == "gd":
            batch = n
        elif cfg["batch_size"] == "auto":
            batch = min(200, n)
        else:
            if cfg["batch_size"] > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=3)
            batch = int(np.clip(cfg["batch_size"], 1, n))
        idx = np.arange(n)
        self.n_iter_ = 0
        try:
            self._epochs(trainer, X_train, Y_train, X_val, y_val, idx, batch, cfg, rng,
                         incremental, sw_train, sw_val)
        except KeyboardInterrupt:
            # scikit-learn's rule: Ctrl-C ends the training, and fit returns the model
            # as it is (the weights of the last completed step; with early stopping the
            # best epoch's, below) with this warning
            warnings.warn("Training interrupted by user.", stacklevel=3)
        finally:
            trainer.close()
        if early and self._best is not None:
            self.coefs_, self.intercepts_ = self._best

    def _epochs(self, trainer, X_train, Y_train, X_val, y_val, idx, batch, cfg, rng,
                incremental, sw_train, sw_val):
        """scikit-learn's epoch loop: shuffle, one epoch, the schedules, stopping.

        With early stopping a diverging fit finishes as scikit-learn's does: from the
        first non-finite step on, the epochs report a NaN loss and validation score
        (scikit-learn keeps training NaN weights, whose scores are NaN and never stop
        it) up to ``max_iter``, and the best weights seen are restored."""
        solver, early, n = cfg["solver"], cfg["early_stopping"], X_train.shape[0]
        diverged = False
        for _ in range(cfg["max_iter"]):
            if cfg["shuffle"] and solver != "gd":
                idx = _sklearn_shuffle(idx, rng)
            if diverged:
                total = float("nan")
            else:
                try:
                    total = trainer.epoch(X_train, Y_train, idx, batch, sw_train)
                except _Diverged:
                    if not early:
                        raise
                    diverged, total = True, float("nan")
            self.n_iter_ += 1
            self.loss_ = total
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if cfg["verbose"]:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement(early, X_val, y_val, cfg, sw_val, diverged)
            if solver != "adam" and cfg["learning_rate"] == "invscaling":
                trainer.lr = cfg["learning_rate_init"] / (self.t_ + 1) ** cfg["power_t"]
            if self._no_improvement_count > cfg["n_iter_no_change"]:
                what = ("Validation score" if early else "Training loss")
                msg = (f"{what} did not improve more than tol={cfg['tol']:f} for "
                       f"{cfg['n_iter_no_change']} consecutive epochs.")
                if self._stop_or_decay(trainer, cfg, msg):
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == cfg["max_iter"]:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations "
                              f"({cfg['max_iter']}) reached and the optimization hasn't "
                              f"converged yet.", sklearn_compatible(ConvergenceWarning),
                              stacklevel=4)

    def _stop_or_decay(self, trainer, cfg, msg):
        """scikit-learn's ``trigger_stopping``: True to stop; 'adaptive' first divides
        the rate by 5 until it falls to 1e-6."""
        if cfg["solver"] == "adam" or cfg["learning_rate"] != "adaptive":
            if cfg["verbose"]:
                print(msg + " Stopping.")
            return True
        if trainer.lr <= 1e-6:
            if cfg["verbose"]:
                print(msg + " Learning rate too small. Stopping.")
            return True
        trainer.lr /= 5.0
        if cfg["verbose"]:
            print(msg + f" Setting learning rate to {trainer.lr:f}")
        return False

    def _update_no_improvement(self, early, X_val, y_val, cfg, sw_val=None,
                               diverged=False):
        tol = cfg["tol"]
        if early:
            try:
                score = float("nan") if diverged else self._score_validation(
                    X_val, y_val, sw_val)
            except NonFiniteError:
                # finite weights whose output on the validation rows overflows: the
                # score scikit-learn computes from those outputs is NaN
                score = float("nan")
            self.validation_scores_.append(score)
            if cfg["verbose"]:
                print(f"Validation score: {score:f}")
            # scikit-learn's comparison as written: a NaN score counts as progress
            if score < self.best_validation_score_ + tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                # aligned: they become coefs_ at the end (nnlib._aligned)
                self._best = ([aligned_copy(W) for W in self.coefs_],
                              [aligned_copy(b) for b in self.intercepts_])
        else:
            if self.loss_curve_[-1] > self.best_loss_ - tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- prediction --------------------------------------------------------------------
    def _forward(self, X, check_names=True):
        """The output map's values for X, shape (n_samples, n_outputs_); NonFiniteError
        if the network's output overflows. ``check_names``: compare a data frame's
        columns with ``feature_names_in_`` (off for fit's own validation rows)."""
        self._check_fitted()
        if check_names:
            check_feature_names(self, X, reset=False)
        X = check_X(X, owner=type(self).__name__, n_features=self.n_features_in_,
                    accept_sparse=True)
        act = _ACTIVATIONS[self.activation]
        # in the wider of X's and the weights' precisions, as scikit-learn's product
        # float32 X @ float64 coefs_ is: a float64 network does not run in float32
        wide = np.result_type(X.dtype, self.coefs_[0].dtype)
        H = X if X.dtype == wide else X.astype(wide)
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            last = i == len(self.coefs_) - 1
            W, b = W.astype(H.dtype, copy=False), b.astype(H.dtype, copy=False)
            if is_sparse(H):        # the first layer on sparse X: O(nnz) product
                from nnlib._kernels.sparse import sparse_matmul
                Z = sparse_matmul(H, W)
                Z += b
                H = Z if last else getattr(F, act)(Z)
            else:
                H = F.dense_forward(H, W, b, "identity" if last else act)
        # An overflow (X of 1e308) would give NaN probabilities or inf predictions.
        check_output_finite(H, owner=type(self).__name__)
        if self.out_activation_ == "softmax":
            return F.softmax(H)
        if self.out_activation_ == "logistic":
            return F.sigmoid(H)
        if self.out_activation_ == "exp":        # Poisson: the log link's inverse
            with np.errstate(over="ignore"):
                P = np.exp(H)
            return check_output_finite(P, owner=type(self).__name__)
        return H

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coefs_")

    def _more_sklearn_tags(self, tags):
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = self._estimator_type == "regressor"
        tags.target_tags.single_output = True
        return tags

    @_serialized        # as predict: a fit running in another thread finishes first
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cfg", None)
        state.pop("_seeded_rng", None)      # a cache, rebuilt by the next fit
        # a copy, taken holding the lock: pickle writes the arrays and lists after this
        # returns and the lock is released, and a fit starting then stepped coefs_ in
        # place under a t_ already written (probe36: t_ 40 with the coefs_ of t_ 80)
        # (the estimator itself, which its trainer refers to, stays the one pickled)
        return copy.deepcopy(state, {id(self): self})


class _NumpyTrainer:
    """Epochs and gradients in plain NumPy (nnlib._reference.mlp): the reference."""

    def __init__(self, est, cfg, Y):
        self.est, self.cfg, self.lr, self.step = est, cfg, cfg["learning_rate_init"], 0
        params = est.coefs_ + est.intercepts_
        self.slots = [[np.zeros_like(p) for p in params]
                      for _ in range(ref.state_slots(cfg["solver"]))]

    def loss_and_grads(self, X, Y, l2, sw=None):
        """Penalized batch loss with ``l2 / 2 * sum ||W||^2`` (``l2`` = alpha over the
        batch's length, or weight sum with ``sw``); (loss, dWs, dbs)."""
        e = self.est
        if Y.ndim == 1:                 # class indices -> the one-hot rows of the math
            Y = np.eye(e.n_outputs_, dtype=X.dtype)[Y]
        norm = X.shape[0] if sw is None else sw.sum()
        return ref.loss_and_grads(e.coefs_, e.intercepts_, X, Y, self.cfg["activation"],
                                  e.out_activation_, l2 * norm, sw)

    def lbfgs_objective(self, X, Y, l2, sw=None):
        """``theta -> (loss, gradient)`` over all rows (float64, coefs_ then
        intercepts_); coefs_/intercepts_ become views of one flat buffer."""
        e = self.est
        shapes = [W.shape for W in e.coefs_] + [b.shape for b in e.intercepts_]
        flat = np.concatenate([p.ravel() for p in e.coefs_ + e.intercepts_])
        params = _views(flat, shapes)
        e.coefs_, e.intercepts_ = params[:len(e.coefs_)], params[len(e.coefs_):]

        def objective(theta):
            flat[...] = theta
            loss, dWs, dbs = self.loss_and_grads(X, Y, l2, sw)
            return loss, np.concatenate([g.ravel() for g in dWs + dbs]).astype(np.float64)

        return objective

    def close(self):
        pass

    def epoch(self, X, Y, order, batch, sw=None):
        """One pass over ``X[order]`` in batches; returns the mean penalized loss."""
        e, cfg = self.est, self.cfg
        params = e.coefs_ + e.intercepts_
        hyper = dict(lr=self.lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                     beta_1=cfg["beta_1"], beta_2=cfg["beta_2"], epsilon=cfg["epsilon"])
        total = 0.0
        for start in range(0, order.size, batch):
            rows = order[start:start + batch]
            w = None if sw is None else sw[rows]
            if w is not None:
                check_batch_weights(sw, rows)
            loss, dWs, dbs = self.loss_and_grads(
                X[rows], Y[rows], cfg["alpha"] / (rows.size if w is None else w.sum()), w)
            if not np.isfinite(loss):
                raise _Diverged(f"{_NONFINITE}: the loss became non-finite at epoch "
                                f"{e.n_iter_ + 1}.")
            total += loss * rows.size
            self.step += 1
            ref.update(cfg["solver"], params, dWs + dbs, self.slots, self.step, hyper)
        return total / order.size


class _CompiledTrainer:
    """Epochs through one :class:`nnlib.training.TrainingRun` per fit (one compiled call
    per epoch, GIL released, over the shuffled order without copying X) and L-BFGS's
    objective through one compiled full-batch setup; the optimizer is the matching
    nnlib.optim rule (SklearnSGD, SklearnAdam, NotesAdaGrad, plain SGD for 'gd'), kept
    between partial_fit calls so its state and step count carry over."""

    _LOSSES = {"softmax": "softmax_cross_entropy", "logistic": "logistic_loss",
               "identity": "squared_error", "exp": "poisson_loss"}
    opt: Any                 # the nnlib.optim rule of the solver
    _run_key: Any

    def __init__(self, est, cfg, Y):
        from nnlib import optim
        self.est, self.cfg = est, cfg
        lr, solver = cfg["learning_rate_init"], cfg["solver"]
        if solver == "sgd":
            self.opt = optim.SklearnSGD(lr=lr, momentum=cfg["momentum"],
                                        nesterov=cfg["nesterov"])
        elif solver == "adam":
            self.opt = optim.SklearnAdam(lr=lr, beta_1=cfg["beta_1"],
                                         beta_2=cfg["beta_2"], epsilon=cfg["epsilon"])
        elif solver == "adagrad":
            self.opt = optim.NotesAdaGrad(lr=lr, eps=cfg["epsilon"])
        else:                                   # 'gd' (and lbfgs, which only asks grads)
            self.opt = optim.SGD(lr=lr)
        self.loss = self._LOSSES[est.out_activation_]
        self._run, self._run_key = None, None

    @property
    def lr(self):
        return self.opt.lr

    @lr.setter
    def lr(self, value):
        self.opt.lr = value

    def _model(self):
        """A Sequential whose W and b ARE the estimator's coefs_/intercepts_ (live);
        built once and reused while those arrays stay the same objects."""
        from nnlib.layers import Dense
        from nnlib.model import Sequential
        e = self.est
        cached = self.__dict__.get("_cached_model")
        if cached is not None and len(cached.layers) == len(e.coefs_) and all(
                layer.W is W and layer.b is b for layer, W, b in
                zip(cached.layers, e.coefs_, e.intercepts_)) and \
                cached.layers[0].activation == self.cfg["activation"]:
            return cached
        layers = []
        for i, (W, b) in enumerate(zip(e.coefs_, e.intercepts_)):
            last = i == len(e.coefs_) - 1
            # zeros draw nothing; a fixed seed spares the generator a read of OS entropy
            layer = Dense(W.shape[0], W.shape[1], init="zeros", dtype=W.dtype,
                          activation="identity" if last else self.cfg["activation"],
                          random_state=0)
            layer.W, layer.b = W, b
            layers.append(layer)
        model = Sequential(layers)
        held = self.opt.param_groups    # the arrays of the first fit, in model order
        if len(held) == 1 and len(held[0]["params"]) == len(model.params):
            # arrays a user replaced (coefs_[i] = ...) keep their state, by position
            self.opt._carry_state(held[0]["params"], model.params)
        self._cached_model = model
        return model

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cached_model", None)     # rebuilt on demand from the estimator
        state["_run"], state["_run_key"] = None, None
        return state

    def _targets(self, Y):
        """(y_target, y_label, loss_scale) for the compiled loss, once per fit: integer
        labels for softmax, the 0/1 or float target matrix otherwise. scikit-learn's
        multi-output squared loss is the mean over the k outputs but its gradient that of
        the sum (nnlib's squared_error), so only the reported loss is scaled by 1/k."""
        if Y.ndim == 1:             # class indices: softmax
            return (np.empty((Y.shape[0], 0), self.est.coefs_[0].dtype),
                    np.ascontiguousarray(Y, dtype=np.int64), 1.0)
        scale = 1.0 / Y.shape[1] if self.loss == "squared_error" else 1.0
        return self._as_model_dtype(Y), np.zeros(1, np.int64), scale

    def epoch(self, X, Y, order, batch, sw=None):
        """One epoch over the rows ``order`` of X in batches of ``batch`` (row weights
        ``sw`` or None); returns the mean penalized loss. The run is built on the first
        epoch of a fit and reused while X, Y, the weights and the batch stay the same
        (``close`` ends it)."""
        from nnlib.training import TrainingRun
        run = self._run
        if run is None or self._run_key[0] is not X or self._run_key[1] is not Y or \
                self._run_key[2] != batch or self._run_key[3] is not sw:
            self.close()
            yt, yl, scale = self._targets(Y)
            # a warm start may bring X in the other float dtype: train in the model's
            run = TrainingRun(self._model(), self._as_model_dtype(X), yt, yl, self.loss,
                              self.opt, batch_size=batch, l2=self.cfg["alpha"],
                              l2_per_batch=True, loss_scale=scale,
                              sample_weight=sw).__enter__()
            run.lr_name = "learning_rate_init"
            self._run, self._run_key = run, (X, Y, batch, sw)
        order = np.ascontiguousarray(order, dtype=np.int64)
        # fresh: no code of the user's runs between building a run and its first epoch
        result = run.run_epoch(order, fresh=True)
        if result.fault is not None:
            raise _Diverged(f"{_NONFINITE}: at step {result.steps} of epoch "
                            f"{self.est.n_iter_ + 1}, "
                            f"{fault_phrase(result.fault, result.cause)}.")
        return result.mean_loss

    def close(self):
        """End the current training run (restores BLAS's thread count)."""
        if self._run is not None:
            self._run.close()
            self._run, self._run_key = None, None

    def _as_model_dtype(self, X):
        dtype = self.est.coefs_[0].dtype
        if is_sparse(X):
            return X if X.dtype == dtype else X.astype(dtype)
        return np.ascontiguousarray(X, dtype=dtype)

    def _objective(self, X, Y, l2, dWs, dbs, sw=None):
        """``params -> penalized loss`` over all rows, writing the gradient into dWs,
        dbs: a closure over one compiled full-batch setup on the estimator's current
        coefs_/intercepts_. scikit-learn's multi-output squared loss is the mean over
        the k outputs with the gradient of the sum, its penalty added in NumPy as
        scikit-learn adds it (so the sums round as they do there)."""
        from nnlib.training import compiled_train, network_of
        train = compiled_train()
        e = self.est
        X = self._as_model_dtype(X)
        yt, yl, scale = self._targets(Y)
        multi = self.loss == "squared_error" and yt.shape[1] > 1
        model = self._model()
        if sw is not None:          # one weighted mean over every row (as _fit_lbfgs)
            check_weight_total(sw)
        setup = train.EpochSetup(
            network_of(model), list(e.coefs_), list(e.intercepts_), None, X, yt, yl,
            train.Workspace(model._sizes(), X.shape[0], yt.shape[1], X.dtype),
            loss_kind=loss_code(self.loss), batch_size=X.shape[0],
            l2=0.0 if multi else l2, sample_weight=sw)

        def objective():
            with training_call():
                value, _ = train.loss_grad(setup, dWs, dbs)
            if multi:
                for dW, W in zip(dWs, e.coefs_):
                    dW += l2 * W
                penalty = sum(float(np.dot(W.ravel(), W.ravel())) for W in e.coefs_)
                value = value / yt.shape[1] + 0.5 * l2 * penalty
            return value

        return objective

    def lbfgs_objective(self, X, Y, l2, sw=None):
        """``theta -> (loss, gradient)`` over all rows for L-BFGS (float64 vectors in
        the order coefs_ then intercepts_), with ``l2 / 2 * sum ||W||^2`` (row weights
        ``sw``: the weighted mean loss). For the
        minimization the estimator's coefs_/intercepts_ become views of one flat buffer
        (in X's dtype, as scikit-learn's unpacking leaves them) that each call
        overwrites, and one workspace serves every call."""
        e = self.est
        shapes = [W.shape for W in e.coefs_] + [b.shape for b in e.intercepts_]
        flat = np.concatenate([p.ravel() for p in e.coefs_ + e.intercepts_]).astype(
            X.dtype, copy=False)
        gflat = np.empty_like(flat)
        params, grads = _views(flat, shapes), _views(gflat, shapes)
        L = len(e.coefs_)
        e.coefs_, e.intercepts_ = params[:L], params[L:]
        loss = self._objective(X, Y, l2, grads[:L], grads[L:], sw)

        def objective(theta):
            flat[...] = theta
            return loss(), gflat.astype(np.float64)      # a copy: scipy may keep it

        return objective

    def loss_and_grads(self, X, Y, l2, sw=None):
        """Penalized loss over all rows with ``l2 / 2 * sum ||W||^2`` at the current
        weights (row weights ``sw``: the weighted mean); (loss, dWs, dbs)."""
        e = self.est
        dWs = [np.empty_like(W) for W in e.coefs_]
        dbs = [np.empty_like(b) for b in e.intercepts_]
        return self._objective(X, Y, l2, dWs, dbs, sw)(), dWs, dbs


def _views(flat, shapes):
    """Consecutive C-contiguous views of ``flat`` with the given shapes."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start:start + size].reshape(shape))
        start += size
    return out


def _sklearn_shuffle(idx, rng):
    """``sklearn.utils.shuffle(idx, random_state=rng)``, in place: scikit-learn shuffles
    ``arange(n)`` and indexes ``idx`` with it; the Fisher-Yates swaps depend only on n and
    the draws, so applying them to ``idx`` itself gives the same permutation without the
    two temporaries."""
    rng.shuffle(idx)
    return idx


def _lbfgs_takes_iprint():
    # SciPy >= 1.15 deprecates L-BFGS-B's iprint; pass it only to versions that use it.
    import scipy
    major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
    return (major, minor) < (1, 15)


# ---------------------------------------------------------------- the two estimators

class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier (scikit-learn's ``MLPClassifier`` interface).

    Minimises the cross-entropy of a softmax output (3+ classes) or a single logistic
    output (2 classes) plus ``alpha``'s L2 penalty. See the module docstring for the
    training rules and how they match scikit-learn's.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'softplus',
        'elu'}, default='relu'
    solver : {'lbfgs', 'sgd', 'adam', 'adagrad', 'gd'}, default='adam'
    alpha : float >= 0, default=1e-4
        L2 strength, divided by the batch length.
    batch_size : int or 'auto', default='auto' (= min(200, n_samples))
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
    learning_rate_init : float > 0, default=1e-3
    power_t : float >= 0, default=0.5
    max_iter : int >= 1, default=200
        Epochs (stochastic solvers) or L-BFGS iterations.
    shuffle : bool, default=True
    random_state : None, int, RandomState or Generator
    tol : float >= 0, default=1e-4
    verbose : bool or int, default=False
    warm_start : bool, default=False
    momentum : float in [0, 1], default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
    validation_fraction : float in [0, 1), default=0.1
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
    epsilon : float > 0, default=1e-8
    n_iter_no_change : int >= 1, default=10
    max_fun : int >= 1, default=15000
        L-BFGS's limit on loss evaluations.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_ : list of ndarray, ``coefs_[i]`` of shape (n_units[i], n_units[i+1])
    intercepts_ : list of ndarray, ``intercepts_[i]`` of shape (n_units[i+1],)
    loss_ : float
        Penalized loss of the last epoch (stochastic) or at the L-BFGS solution.
    loss_curve_ : list of float
        ``loss_`` after every epoch (stochastic solvers only).
    best_loss_ : float or None
        Lowest ``loss_curve_`` value (None with early stopping).
    validation_scores_ : list of float or None
        Held-out accuracy per epoch (early stopping only).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run in the last fit (1 after each partial_fit).
    t_ : int
        Training samples seen, over all fits.
    n_features_in_, n_layers_, n_outputs_ : int
    out_activation_ : {'softmax', 'logistic'}

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.datasets import load_digits, split
    >>> X, y = load_digits(n_class=3)
    >>> X_train, X_test, y_train, y_test = split(X / 16, y, random_state=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", random_state=0)
    >>> clf = clf.fit(X_train, y_train)
    >>> clf.classes_, clf.coefs_[0].shape
    (array([0, 1, 2]), (64, 16))
    >>> clf.score(X_test, y_test) > 0.9
    True
    >>> np.allclose(clf.predict_proba(X_test).sum(axis=1), 1.0)
    True
    """

    @_serialized
    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The most probable class for each row of X, shape (n_samples,); for a
        multilabel model the 0/1 indicator matrix (n_samples, n_labels).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_``; a 0/1 indicator matrix for a multilabel model.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        >>> clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs",
        ...                     random_state=0).fit(X, [0, 1, 1, 1])         # OR
        >>> clf.predict(X)
        array([0, 1, 1, 1])
        """
        return self._labels_of(self._forward(X))

    def _labels_of(self, P):
        if self._multilabel:
            return (P > 0.5).astype(np.int64)
        if self.classes_.size == 1:
            return np.repeat(self.classes_, P.shape[0])
        if P.shape[1] == 1:
            return self.classes_[(P[:, 0] > 0.5).astype(np.int64)]
        return self.classes_[np.argmax(P, axis=1)]

    @_serialized
    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Class probabilities, shape (n_samples, n_classes), columns as ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows summing to 1; for a multilabel model, each column's own probability.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        >>> clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs",
        ...                     random_state=0).fit(X, [0, 1, 1, 1])         # OR
        >>> P = clf.predict_proba(X)
        >>> P.shape, np.array_equal(P.argmax(axis=1), clf.predict(X))
        ((4, 2), True)
        """
        P = self._forward(X)
        if P.shape[1] == 1 and not self._multilabel:
            return np.hstack([1.0 - P, P])
        return P

    def predict_log_proba(self, X: ArrayLike) -> FloatArray:
        """``log(predict_proba(X))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        >>> clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs",
        ...                     random_state=0).fit(X, [0, 1, 1, 1])         # OR
        >>> np.allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X))
        True
        """
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    @_serialized
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                    classes: Optional[ArrayLike] = None) -> "MLPClassifier":
        """One epoch of the stochastic solver on (X, y); returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or a (n_samples, n_labels) indicator
        sample_weight : array-like of shape (n_samples,), default=None
            As in :meth:`fit`.
        classes : array-like of shape (n_classes,), default=None
            Every label that will ever appear: required on the first call unless y is
            a multilabel indicator matrix (or ``classes_`` was set by hand); later calls
            may repeat it.

        Examples
        --------
        >>> import numpy as np
        >>> clf = MLPClassifier(hidden_layer_sizes=(3,), solver="sgd", random_state=0)
        >>> clf = clf.partial_fit(np.eye(2), [0, 1], classes=[0, 1, 2])
        >>> clf.classes_
        array([0, 1, 2])
        """
        indicator = _is_indicator(y)
        if not hasattr(self, "classes_"):
            if classes is None and not indicator:
                raise ValueError("classes must be passed on the first call to "
                                 "partial_fit.")
            if classes is not None and not indicator:
                found, _ = class_labels(np.asarray(classes).ravel(),
                                        owner="MLPClassifier", as_unique_labels=True)
                self._partial_classes = found
        elif classes is not None and not indicator and not np.array_equal(
                np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"`classes={np.asarray(classes)!r}` is not the same as on "
                             f"the first call to partial_fit, which was "
                             f"{self.classes_!r}")
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    partial_fit = _available_if(_BaseMLP._is_stochastic, partial_fit)

    _multilabel = False

    def _output_activation(self):
        return "logistic" if self._multilabel or self.classes_.size <= 2 else "softmax"

    def _targets(self, X, y, first, incremental):
        owner = "MLPClassifier"
        if _is_indicator(y):
            return self._indicator_targets(X, np.asarray(y), first)
        if not first and self._multilabel:
            raise LabelError("this MLPClassifier was fitted on a multilabel indicator "
                             "matrix; y must be one too")
        y = check_y_shape(y, X.shape[0], owner=owner)
        partial_classes = self.__dict__.get("_partial_classes")
        if partial_classes is not None and (first or not hasattr(self, "classes_")):
            # the first partial_fit, also on coefs_/intercepts_ set by hand (then the
            # model is not new, but it has no classes yet)
            classes = partial_classes
            idx = labels_to_index(y, classes, owner=owner)
            if not first:
                self.classes_ = classes
        else:
            found, found_idx = class_labels(y, owner=owner, as_unique_labels=True)
            if first:
                classes, idx = found, found_idx
            else:
                classes = self.classes_
                if self.warm_start and not incremental and not np.array_equal(
                        found, classes):
                    raise LabelError(f"warm_start can only be used where `y` has the "
                                     f"same classes as in the previous call to fit. "
                                     f"Previously got {classes}, `y` has {found}")
                idx = labels_to_index(y, classes, owner=owner)
        # one class trains as scikit-learn's does: one logistic output, every target
        # 0 (its LabelBinarizer's column), and predict returns that class
        self.__dict__.pop("_partial_classes", None)
        if first:
            self.classes_ = classes
            self._multilabel = False
            self.n_features_in_ = X.shape[1]
        if classes.size > 2:
            return np.ascontiguousarray(idx, dtype=np.int64)     # softmax: class indices
        return idx.astype(X.dtype).reshape(-1, 1)                # one logistic output

    def _indicator_targets(self, X, y, first):
        """Multilabel: y is an (n_samples, n_labels) 0/1 matrix, one logistic output
        per label (as scikit-learn)."""
        if y.shape[0] != X.shape[0]:
            raise ShapeError(f"X and y have inconsistent numbers of samples: "
                             f"{X.shape[0]} and {y.shape[0]}")
        if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
            raise LabelError("Unknown label type: a 2-d y must be a multilabel indicator "
                             "matrix of 0s and 1s (one column per label)")
        if first:
            self.classes_ = np.arange(y.shape[1])
            self._multilabel = True
            self.n_features_in_ = X.shape[1]
        elif not hasattr(self, "classes_"):     # coefs_ set by hand, no labels yet
            self.classes_ = np.arange(y.shape[1])
            self._multilabel = True
        elif not self._multilabel or self.classes_.size != y.shape[1]:
            raise LabelError(f"y has {y.shape[1]} label columns; the model was fitted on "
                             f"{self.classes_.size} "
                             f"{'labels' if self._multilabel else 'classes (not multilabel)'}")
        return np.ascontiguousarray(y, dtype=X.dtype)

    def _stratify_groups(self, Y):
        if self._multilabel:
            return None
        return Y if Y.ndim == 1 else Y[:, 0]

    def _decode(self, Y):
        if self._multilabel:
            return Y.astype(np.int64)
        return self.classes_[self._stratify_groups(Y).astype(np.int64)]

    def _score_validation(self, X, y, sample_weight=None):
        return self._score_predictions(self._labels_of(self._forward(X, False)), y,
                                       sample_weight)

    def _more_sklearn_tags(self, tags):
        tags = super()._more_sklearn_tags(tags)
        tags.classifier_tags.multi_label = True
        return tags


def _is_indicator(y):
    """A multilabel indicator matrix: 2-d with more than one column."""
    shape = getattr(y, "shape", None)
    if shape is None and isinstance(y, (list, tuple)):
        try:
            shape = np.shape(y)           # list of lists or of arrays
        except ValueError:                # ragged: not a matrix
            return False
    return shape is not None and len(shape) == 2 and shape[1] > 1


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (scikit-learn's ``MLPRegressor`` interface).

    Minimises half the mean squared error of an identity output (``loss='squared_error'``)
    or half the Poisson deviance with the log link (``loss='poisson'``: the network's
    output is the log-mean, predictions ``exp`` of it, targets >= 0), plus ``alpha``'s L2
    penalty. Parameters and attributes as :class:`MLPClassifier` (no ``classes_``;
    ``out_activation_`` 'identity' or 'exp').

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(-1.0, 1.0, 50)[:, None]
    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=500,
    ...                    random_state=0).fit(X, X.ravel() ** 2)
    >>> reg.score(X, X.ravel() ** 2) > 0.99
    True
    >>> reg.predict([[0.5]]).shape, reg.out_activation_
    ((1,), 'identity')
    """

    def __init__(self, loss: str = "squared_error",
                 hidden_layer_sizes: Union[int, Sequence[int]] = (100,), activation: str = "relu",
                 *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Union[int, str] = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: SeedLike = None, tol: float = 1e-4,
                 verbose: Union[bool, int] = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000) -> None:
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun)

    @_serialized
    def predict(self, X: ArrayLike) -> FloatArray:
        """Predictions, shape (n_samples,) or (n_samples, n_outputs_).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs_)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.linspace(0.0, 1.0, 20)[:, None]
        >>> reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs",
        ...                    random_state=0).fit(X, 3.0 * X.ravel())
        >>> reg.predict(X).shape, bool(np.abs(reg.predict([[0.5]]) - 1.5).max() < 0.05)
        ((20,), True)
        """
        return self._values_of(self._forward(X))

    @staticmethod
    def _values_of(P):
        return P.ravel() if P.shape[1] == 1 else P

    @_serialized
    def partial_fit(self, X: ArrayLike, y: ArrayLike,
                    sample_weight: Optional[ArrayLike] = None) -> "MLPRegressor":
        """One epoch of the stochastic solver on (X, y), with optional row weights
        (as in :meth:`fit`); returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            As in :meth:`fit`.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> reg = MLPRegressor(hidden_layer_sizes=(4,), random_state=0)
        >>> for _ in range(3):
        ...     reg = reg.partial_fit(np.eye(4), [0.0, 1.0, 1.0, 2.0])
        >>> reg.n_iter_, reg.t_                       # 1 epoch per call; 12 rows seen
        (1, 12)
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    partial_fit = _available_if(_BaseMLP._is_stochastic, partial_fit)

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _targets(self, X, y, first, incremental):
        if not isinstance(self.loss, str) or self.loss not in ("squared_error", "poisson"):
            raise _bad("loss", self.loss, "one of ['poisson', 'squared_error']")
        if not first and getattr(self, "out_activation_", None) not in (
                None, self._output_activation()):
            raise ValueError(f"warm_start/partial_fit cannot change the loss: the model "
                             f"was fitted with out_activation_={self.out_activation_!r}")
        y = check_y_shape(y, X.shape[0], owner="MLPRegressor", allow_2d=True)
        if y.ndim == 2 and y.shape[1] == 1:     # a column vector: warn and ravel
            y = check_y_shape(y, X.shape[0], owner="MLPRegressor")
        Y = check_float_target(y, owner="MLPRegressor", dtype=X.dtype)
        if self.loss == "poisson" and (Y < 0).any():
            # scikit-learn's PoissonRegressor's words (its MLP does not check, and then
            # trains on NaN losses)
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "Poisson regression.")
        if first:
            self.n_features_in_ = X.shape[1]
        return Y.reshape(Y.shape[0], -1)

    def _stratify_groups(self, Y):
        return None

    def _decode(self, Y):
        return Y

    def _score_validation(self, X, y, sample_weight=None):
        return self._score_predictions(self._values_of(self._forward(X, False)), y,
                                       sample_weight)
