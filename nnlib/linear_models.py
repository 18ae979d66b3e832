"""The linear models of the notes, each a few lines over nnlib's kernels.

The notes' summary of linear models (seed 001, "Summary of linear models"):

=====================  ====================  =====================================
model                  error                 algorithm
=====================  ====================  =====================================
Perceptron             classification error  PLA: ``w <- w + y x`` on a mistake
Linear regression      squared error         pseudo-inverse / normal equations
Logistic regression    cross-entropy error   gradient descent
=====================  ====================  =====================================

All three use the notes' augmented form: ``x = (1, x_1, ..., x_d)`` and
``w = (w_0, w_1, ..., w_d)`` with the bias ``w_0`` first (attribute ``w_``); ``coef_`` and
``intercept_`` give the same numbers under scikit-learn's names and in its shapes: the
binary classifiers' ``coef_`` is ``(1, n_features)`` and ``intercept_`` ``(1,)``, as
scikit-learn's Perceptron and LogisticRegression give them; LinearRegression's follow
y's shape as scikit-learn's does. They follow the
scikit-learn estimator protocol (fit/predict/score/get_params/set_params, usable in a
Pipeline) without depending on scikit-learn.
"""
import warnings
from typing import Any, Union

import numpy as np

from nnlib import functional as F
from nnlib._base import BaseModel, ClassifierMixin, RegressorMixin
from nnlib._inputs import (check_float_target, check_output_finite, check_X, check_y_shape,
                           class_labels)
from nnlib._random import as_generator
from nnlib._typing import ArrayLike, FloatArray, NDArray, SeedLike
from nnlib._validation import LabelError, check_bool, check_int_scalar, check_real_scalar
from nnlib.exceptions import ConvergenceWarning, sklearn_compatible

__all__ = ["Perceptron", "LinearRegression", "LogisticRegression"]


def _augment(X, fit_intercept):
    """Prepend the constant feature x_0 = 1 (the notes' bias trick)."""
    if not fit_intercept:
        return X
    return np.hstack([np.ones((X.shape[0], 1), dtype=X.dtype), X])


def _split_w(w, fit_intercept):
    """(coef, intercept) from the augmented w (bias first) in the notes' layout."""
    if fit_intercept:
        return w[1:].copy(), w[0].copy()
    return w.copy(), np.zeros(w.shape[1:])


def _binary_coef(w, fit_intercept):
    """(coef_ (1, n_features), intercept_ (1,)) of a binary classifier from the
    augmented w: scikit-learn's shapes for a two-class linear model."""
    coef, intercept = _split_w(w, fit_intercept)
    return coef.reshape(1, -1), np.array([float(intercept)])


def _check_binary(classes, owner):
    if classes.size != 2:
        what = "only one class" if classes.size == 1 else f"{classes.size} classes"
        raise LabelError(f"Only binary classification is supported. {owner} needs "
                         f"exactly 2 classes; y holds {what} ({classes[:5].tolist()})")


class _BinaryClassifier(ClassifierMixin, BaseModel):
    """A two-class model (scikit-learn's tags say so, so its checks use 2 classes)."""

    def _more_sklearn_tags(self, tags):
        tags.classifier_tags.multi_class = False
        return tags

    def __setstate__(self, state):
        super().__setstate__(state)
        # pickled when coef_ was (n_features,) and intercept_ a float: scikit-learn's
        # shapes now, so that a loaded model reads as one fitted today
        coef = self.__dict__.get("coef_")
        if isinstance(coef, np.ndarray) and coef.ndim == 1:
            self.coef_ = coef.reshape(1, -1)
            self.intercept_ = np.array([float(self.__dict__["intercept_"])])

    def _signal(self, X):
        """w . x for each row of validated X: ``coef_[0]`` as a vector, so the dot
        products are those of the notes' w (bias apart)."""
        return check_output_finite(X @ self.coef_[0] + self.intercept_[0],
                                   owner=type(self).__name__)


class Perceptron(_BinaryClassifier):
    """Rosenblatt's perceptron trained by the Perceptron Learning Algorithm (PLA).

    ``h(x) = sign(w . x)`` with the augmented x = (1, x_1, ..., x_d). PLA, from w = 0:
    visit the samples in order (or shuffled each pass); whenever ``sign(w . x_i) != y_i``,
    update ``w <- w + y_i x_i``. A point on the boundary (``w . x_i = 0``) counts as a
    mistake, so the all-zero start learns at once. If the data are linearly separable
    PLA stops after finitely many updates (Novikoff: at most (R / gamma)^2 with R the
    largest ||x_i|| and gamma the margin); otherwise it runs ``max_iter`` passes and
    warns.

    Parameters
    ----------
    max_iter : int >= 1
        Maximum number of passes (epochs) over the data.
    fit_intercept : bool
        Learn the bias w_0 (the constant feature x_0 = 1).
    shuffle : bool
        Visit the samples in a new random order each pass (seeded by random_state).
    random_state : None, int or numpy.random.Generator

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[0]`` plays the role of -1 and ``classes_[1]`` of +1
        (so labels -1/+1 map to themselves).
    w_ : ndarray of shape (n_features + 1,) or (n_features,)
        The notes' weight vector, bias first when fit_intercept.
    coef_ : ndarray of shape (1, n_features)
        ``w_`` without the bias, in scikit-learn's shape for a binary classifier.
    intercept_ : ndarray of shape (1,)
        The bias w_0 (0 without fit_intercept).
    converged_ : bool
        True if the last pass made no mistake (the data are separated).
    n_iter_ : int
        Passes made.
    n_updates_ : int
        Total number of PLA updates (mistakes corrected).
    n_features_in_ : int

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> clf = Perceptron().fit(X, [0, 0, 0, 1])                   # AND is separable
    >>> clf.predict(X), clf.converged_
    (array([0, 0, 0, 1]), True)
    >>> clf.w_                                                    # bias first
    array([-4.,  3.,  2.])
    """

    def __init__(self, max_iter: int = 1000, fit_intercept: bool = True, shuffle: bool = False,
                 random_state: SeedLike = None) -> None:
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> "Perceptron":
        """Run PLA on (X, y) with y of exactly two labels; returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Exactly two distinct labels; ``classes_`` keeps them sorted.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = Perceptron().fit(X, [-1, -1, 1, 1])
        >>> clf.converged_, clf.n_updates_, clf.w_            # w_0 = -3: the bias
        (True, 9, array([-3.,  2.]))
        """
        max_iter = check_int_scalar(self.max_iter, "max_iter", low=1)
        fit_intercept = check_bool(self.fit_intercept, "fit_intercept")
        shuffle = check_bool(self.shuffle, "shuffle")
        X = check_X(X, owner="Perceptron", dtype=np.float64)
        y = check_y_shape(y, X.shape[0], owner="Perceptron")
        classes, idx = class_labels(y, owner="Perceptron", as_unique_labels=True)
        _check_binary(classes, "Perceptron")
        s = 2.0 * idx - 1.0                               # labels as -1/+1
        Xa = _augment(X, fit_intercept)
        rng = as_generator(self.random_state)
        w = np.zeros(Xa.shape[1])
        n_updates, converged, epoch = 0, False, 0
        for epoch in range(1, max_iter + 1):
            if np.all(F.sign(Xa @ w) == s):               # no mistakes: separated
                converged = True
                epoch -= 1
                break
            order = rng.permutation(Xa.shape[0]) if shuffle else range(Xa.shape[0])
            for i in order:
                if np.sign(Xa[i] @ w) != s[i]:
                    w += s[i] * Xa[i]                     # w <- w + y x
                    n_updates += 1
            if not np.isfinite(w).all():
                raise ValueError(f"Perceptron's weights overflowed to infinity after "
                                 f"{n_updates} updates (pass {epoch}): the values of X "
                                 f"are too large; scale X, e.g. standardize it")
        else:
            converged = bool(np.all(F.sign(Xa @ w) == s))
        if not converged:
            warnings.warn(f"Perceptron did not separate the data in max_iter={max_iter} "
                          f"passes ({n_updates} updates); the classes may not be "
                          f"linearly separable", sklearn_compatible(ConvergenceWarning),
                          stacklevel=2)
        self.classes_ = classes
        self.w_ = w
        self.coef_, self.intercept_ = _binary_coef(w, fit_intercept)
        self.converged_ = converged
        self.n_iter_ = max(epoch, 1)
        self.n_updates_ = n_updates
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """The signal w . x, shape (n_samples,); > 0 predicts ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> Perceptron().fit(X, [-1, -1, 1, 1]).decision_function(X)      # -3 + 2 x
        array([-3., -1.,  1.,  3.])
        """
        self._check_fitted()
        return self._signal(check_X(X, owner="Perceptron",
                                    n_features=self.n_features_in_, dtype=np.float64))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """``classes_[1]`` where sign(w . x) = +1, else ``classes_[0]`` (boundary
        points, sign 0, go to ``classes_[0]``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Values of ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> Perceptron().fit(X, ["no", "no", "yes", "yes"]).predict([[0.0], [3.0]])
        array(['no', 'yes'], dtype='<U3')
        """
        positive = F.sign(self.decision_function(X)) > 0
        return self.classes_[positive.astype(np.int64)]


class LinearRegression(RegressorMixin, BaseModel):
    """Least-squares linear regression, solved in closed form.

    Minimises ``||X w - y||^2`` over the augmented X. The minimiser solves the normal
    equations ``X^T X w = X^T y``; the notes' one-line answer is ``w = X^+ y`` with the
    pseudo-inverse ``X^+`` (the minimum-norm solution when X^T X is singular).

    Parameters
    ----------
    fit_intercept : bool
    solver : {"lstsq", "pinv", "normal"}
        "lstsq": ``np.linalg.lstsq`` (SVD; the pseudo-inverse solution without forming
        X^+; the default, the most accurate). "pinv": ``np.linalg.pinv(X) @ y``, the notes'
        formula literally. "normal": solve ``X^T X w = X^T y`` by Cholesky-free
        ``np.linalg.solve`` (fastest; squares the condition number; raises if X^T X is
        singular).

    Attributes
    ----------
    w_ : ndarray of shape (n_features [+1],) or (n_features [+1], n_targets)
        Bias first when fit_intercept (the notes' layout, weights (n_in, n_out)).
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        scikit-learn's layout.
    intercept_ : float or ndarray of shape (n_targets,)
    rank_ : int
        Rank of the augmented X.
    singular_ : ndarray
        Its singular values (solver "lstsq" only; else None).
    n_features_in_ : int

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> reg = LinearRegression().fit(X, 1.0 + 2.0 * X.ravel())
    >>> np.round(reg.w_, 12)                                      # (intercept, slope)
    array([1., 2.])
    >>> np.round(reg.predict([[10.0]]), 12)
    array([21.])
    """

    _SOLVERS = ("lstsq", "pinv", "normal")

    def _more_sklearn_tags(self, tags):
        tags.target_tags.multi_output = True     # y may be (n_samples, n_targets)
        return tags

    def __init__(self, fit_intercept: bool = True, solver: str = "lstsq") -> None:
        self.fit_intercept = fit_intercept
        self.solver = solver

    def fit(self, X: ArrayLike, y: ArrayLike) -> "LinearRegression":
        """Solve the least-squares problem; returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> reg = LinearRegression(solver="pinv").fit(X, np.c_[2 * X, -X])   # 2 targets
        >>> reg.coef_.shape, reg.rank_
        ((2, 1), 2)
        """
        if self.solver not in self._SOLVERS:
            raise ValueError(f"solver must be one of {self._SOLVERS}; got "
                             f"{self.solver!r}")
        fit_intercept = check_bool(self.fit_intercept, "fit_intercept")
        X = check_X(X, owner="LinearRegression", dtype=np.float64)
        y = check_float_target(check_y_shape(y, X.shape[0], owner="LinearRegression",
                                             allow_2d=True), owner="LinearRegression")
        Xa = _augment(X, fit_intercept)
        singular = None
        if self.solver == "lstsq":
            w, _, rank, singular = np.linalg.lstsq(Xa, y, rcond=None)
        elif self.solver == "pinv":
            w = np.linalg.pinv(Xa) @ y
            rank = np.linalg.matrix_rank(Xa)
        else:
            gram = Xa.T @ Xa
            rank = np.linalg.matrix_rank(gram)
            if rank < gram.shape[0]:
                raise np.linalg.LinAlgError(
                    f"X^T X is singular (rank {rank} < {gram.shape[0]}): the normal "
                    f"equations have no unique solution; use solver='lstsq' or 'pinv' "
                    f"for the minimum-norm (pseudo-inverse) solution")
            w = np.linalg.solve(gram, Xa.T @ y)
        self.w_ = w
        coef, intercept = _split_w(w, fit_intercept)
        self.coef_ = coef.T if coef.ndim == 2 else coef
        self.intercept_ = float(intercept) if np.ndim(intercept) == 0 else intercept
        self.rank_ = int(rank)
        self.singular_ = singular
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """``X @ coef_.T + intercept_``: shape (n_samples,) or (n_samples, n_targets).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> reg = LinearRegression().fit(X, np.c_[2 * X, -X])
        >>> np.round(reg.predict([[1.0]]), 12)
        array([[ 2., -1.]])
        """
        self._check_fitted()
        X = check_X(X, owner="LinearRegression", n_features=self.n_features_in_,
                    dtype=np.float64)
        return check_output_finite(X @ self.coef_.T + self.intercept_,
                                   owner="LinearRegression")


class LogisticRegression(_BinaryClassifier):
    """Logistic regression: a single sigmoid unit trained by gradient descent.

    ``P(y = 1 | x) = sigmoid(w . x)`` on the augmented x; the weights minimise the
    regularized empirical risk of the notes::

        E(w) = 1/n sum_i log(1 + exp(-s_i w . x_i)) + alpha/2 ||w_1..d||^2

    (s_i = +1/-1; the bias w_0 is not penalized) by full-batch gradient descent
    ``w <- w - lr grad E(w)`` (``nnlib.optim.gradient_descent``) until ``||grad E|| <=
    tol``. The loss and its gradient are nnlib's compiled ``logistic_loss`` /
    ``logistic_loss_grad``. E is convex (strictly, with alpha > 0), so the stopping point is
    the global optimum; on linearly separable data with ``alpha = 0`` there is no optimum
    (||w|| grows without bound) and the fit ends at ``max_iter`` with a warning.

    Parameters
    ----------
    alpha : float >= 0
        L2 strength (scikit-learn's ``C`` corresponds to ``alpha = 1 / (C n)``).
    fit_intercept : bool
    learning_rate : "auto" or float > 0
        "auto" takes ``1 / L`` with ``L = sigma_max(X)^2 / (4 n) + alpha``, the gradient's
        Lipschitz constant, for which gradient descent provably converges (1 when 1 / L
        would overflow, L ~ 0; ValueError when X is so large that 1 / L underflows to 0).
    tol : float >= 0
        Stop when the Euclidean norm of the gradient is at most tol.
    max_iter : int >= 1

    Attributes
    ----------
    classes_ : ndarray of shape (2,)  (``classes_[1]`` is the positive class)
    w_ : ndarray (n_features [+1],), bias first
    coef_ : ndarray (1, n_features);  intercept_ : ndarray (1,)
        ``w_`` split as scikit-learn's binary classifiers shape it.
    n_iter_ : int;  converged_ : bool;  grad_norm_ : float
    loss_ : float
        E(w) at the end;  ``loss_curve_`` lists E at every iterate.
    learning_rate_ : float
        The step size used.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = LogisticRegression(alpha=0.1).fit(X, [0, 0, 1, 1])
    >>> clf.predict(X), clf.converged_
    (array([0, 0, 1, 1]), True)
    >>> np.round(clf.predict_proba([[1.5]]), 4)                   # the midpoint
    array([[0.5, 0.5]])
    """

    def __init__(self, alpha: float = 0.0, fit_intercept: bool = True,
                 learning_rate: Union[str, float] = "auto", tol: float = 1e-6,
                 max_iter: int = 10000) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.learning_rate = learning_rate
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: ArrayLike, y: ArrayLike) -> "LogisticRegression":
        """Minimise E(w) on (X, y) with y of exactly two labels; returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Exactly two distinct labels; ``classes_`` keeps them sorted.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = LogisticRegression(alpha=0.1).fit(X, ["no", "no", "yes", "yes"])
        >>> clf.classes_, clf.converged_
        (array(['no', 'yes'], dtype='<U3'), True)
        """
        from nnlib.optim import gradient_descent
        alpha = check_real_scalar(self.alpha, "alpha", low=0.0)
        tol = check_real_scalar(self.tol, "tol", low=0.0)
        max_iter = check_int_scalar(self.max_iter, "max_iter", low=1)
        fit_intercept = check_bool(self.fit_intercept, "fit_intercept")
        X = check_X(X, owner="LogisticRegression", dtype=np.float64)
        y = check_y_shape(y, X.shape[0], owner="LogisticRegression")
        classes, y01 = class_labels(y, owner="LogisticRegression")
        _check_binary(classes, "LogisticRegression")
        Xa = _augment(X, fit_intercept)
        penalized = np.ones(Xa.shape[1])
        if fit_intercept:
            penalized[0] = 0.0                              # the bias is not penalized

        def loss_and_grad(w):
            z = Xa @ w
            loss = F.logistic_loss(z, y01) + 0.5 * alpha * np.dot(penalized * w, w)
            grad = Xa.T @ F.logistic_loss_grad(z, y01) + alpha * penalized * w
            return loss, grad

        if isinstance(self.learning_rate, str) and self.learning_rate == "auto":
            sigma_max = np.linalg.norm(Xa, 2)
            # 1/0 and an overflowing sigma^2 would make gradient_descent complain about
            # an lr the user never gave
            with np.errstate(over="ignore"):
                L = (sigma_max / (4.0 * Xa.shape[0])) * sigma_max + alpha
            if L <= 1.0 / np.finfo(np.float64).max:
                # X = 0 without intercept and alpha ~ 0 (a denormal alpha made 1/L inf):
                # E is (nearly) constant and any step up to 2/L converges; take 1
                lr = 1.0
            else:
                lr = 1.0 / L
                if not lr > 0.0:
                    raise ValueError(
                        f"learning_rate='auto' cannot handle X this large: its largest "
                        f"singular value {sigma_max:.3g} makes the step 1/L underflow "
                        f"to 0; standardize X or give learning_rate explicitly")
        else:
            lr = check_real_scalar(self.learning_rate, "learning_rate", low=0.0,
                                   low_open=True)
        res = gradient_descent(loss_and_grad, np.zeros(Xa.shape[1]), lr, tol=tol,
                               max_iter=max_iter)
        if not res.converged:
            warnings.warn(f"LogisticRegression: gradient descent stopped after "
                          f"{res.n_iter} iterations with ||grad|| = {res.grad_norm:.3g} > "
                          f"tol = {tol} ({res.message}); if the classes are separable, "
                          f"set alpha > 0", sklearn_compatible(ConvergenceWarning),
                          stacklevel=2)
        self.classes_ = classes
        self.w_ = res.w
        self.coef_, self.intercept_ = _binary_coef(res.w, fit_intercept)
        self.n_iter_ = max(res.n_iter, 1)
        self.converged_ = bool(res.converged)
        self.grad_norm_ = float(res.grad_norm)
        self.loss_ = float(res.loss_history[-1])
        self.loss_curve_ = list(res.loss_history)
        self.learning_rate_ = lr
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """The signal w . x, shape (n_samples,); > 0 predicts ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = LogisticRegression(alpha=0.1).fit(X, ["no", "no", "yes", "yes"])
        >>> np.round(clf.decision_function([[0.0], [3.0]]), 2)      # symmetric about 1.5
        array([-2.26,  2.26])
        """
        self._check_fitted()
        return self._signal(check_X(X, owner="LogisticRegression",
                                    n_features=self.n_features_in_, dtype=np.float64))

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """[P(classes_[0]), P(classes_[1])] = [1 - sigmoid(w . x), sigmoid(w . x)].

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, 2)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = LogisticRegression(alpha=0.1).fit(X, ["no", "no", "yes", "yes"])
        >>> np.round(clf.predict_proba([[3.0]]), 3)
        array([[0.094, 0.906]])
        """
        p = F.sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """``classes_[1]`` where sigmoid(w . x) > 1/2, else ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Values of ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = LogisticRegression(alpha=0.1).fit(X, ["no", "no", "yes", "yes"])
        >>> clf.predict([[0.0], [3.0]])
        array(['no', 'yes'], dtype='<U3')
        """
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(np.int64)]
