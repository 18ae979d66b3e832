"""What fuzzing the models and estimators found, each kept as a fixed case.
"""
import warnings

import numpy as np
import pytest

import nnlib
from nnlib._validation import DTypeError, NonFiniteError, ShapeError

# Random values overflow in the oracles' own arithmetic and in float casts; expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# What the fuzzing above found, each as a fixed case: (id, callable, exception, message).


def _fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _big_weights(est):
    est.coefs_[0][...] = 10.0                 # X of 1e308 then overflows the first layer
    return est


def _xor_data():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, np.array([0, 1, 1, 0])


def _loss_grads_inf_x():
    model = nnlib.Sequential([nnlib.Dense(1, 1, random_state=0),
                              nnlib.Dense(1, 2, "sigmoid", random_state=1)])
    return model.loss_and_grads(np.array([[np.inf]]), np.array([0]))


def _loss_grads_penalty_overflow():
    model = nnlib.Sequential([nnlib.Dense(1, 2, init="zeros")])
    model.layers[0].W[...] = 1.34e154            # sum W^2 overflows, the data loss does not
    return model.loss_and_grads(np.zeros((1, 1)), np.array([0]), l2=1.0)


REGRESSIONS = [
    ("dense-too-many-weights", lambda: nnlib.Dense(10 ** 10, 10 ** 10), ShapeError,
     "too many weights"),
    ("dense-negative-seed", lambda: nnlib.Dense(2, 3, random_state=-1), ValueError,
     "random_state must be >= 0"),
    ("mlp-datetime-X", lambda: nnlib.MLPRegressor().fit(
        np.array([["2020-01-01"]] * 3, dtype="M8[D]"), [1.0, 2.0, 3.0]), DTypeError,
     "X must hold numbers"),
    ("linreg-datetime-y", lambda: nnlib.LinearRegression().fit(
        np.ones((3, 1)), np.array([1, 2, 3], dtype="m8[s]")), DTypeError, "numeric target"),
    ("mlp-early-stopping-one-sample", lambda: nnlib.MLPRegressor(
        early_stopping=True, solver="sgd").fit([[0.0]], [1.0]), ValueError,
     "validation set is too small"),
    ("linreg-fit-intercept-string", lambda: nnlib.LinearRegression(fit_intercept="no").fit(
        np.ones((3, 1)), np.ones(3)), TypeError, "fit_intercept must be True or False"),
    ("logreg-fit-intercept-int", lambda: nnlib.LogisticRegression(fit_intercept=1).fit(
        *_xor_data()), TypeError, "fit_intercept"),
    ("perceptron-shuffle-string", lambda: nnlib.Perceptron(shuffle="yes").fit(*_xor_data()),
     TypeError, "shuffle must be True or False"),
    ("logreg-auto-lr-huge-X", lambda: nnlib.LogisticRegression().fit(
        [[1e200], [-1e200]], [0, 1]), ValueError, "learning_rate='auto' cannot handle"),
    ("threshold-nan-weight", lambda: nnlib.ThresholdNetwork([[[np.nan]]], [[0.0]]),
     NonFiniteError, r"weights\[0\] must be finite"),
    ("threshold-overflow", lambda: nnlib.ThresholdNetwork([[[2.0]], [[0.0]]], [[0.0], [0.0]],
                                                          "identity").predict([[1e308]]),
     NonFiniteError, "output for row 0 of X is not finite"),
    ("mlp-predict-proba-overflow", lambda: _big_weights(_fitted(nnlib.MLPClassifier(
        hidden_layer_sizes=(3,), solver="lbfgs", activation="identity", random_state=0),
        np.eye(3), [0, 1, 2])).predict_proba([[1e308, 1e308, 1e308]]), NonFiniteError,
     "MLPClassifier's output for row 0"),
    ("linreg-predict-overflow", lambda: _fitted(nnlib.LinearRegression(), np.eye(2),
                                                [1.0, 5.0]).predict([[0.0, 1e308]]),
     NonFiniteError, "LinearRegression's output"),
]


@pytest.mark.parametrize("fn, exc, message", [c[1:] for c in REGRESSIONS],
                         ids=[c[0] for c in REGRESSIONS])
def test_regressions_found_by_fuzzing(fn, exc, message):
    with pytest.raises(exc, match=message):
        fn()


def test_logistic_regression_auto_lr_on_all_zero_X():
    """L = 0 (X = 0, no intercept, alpha = 0) gave lr = 1/0 = inf and a complaint about
    an lr the user never passed; E is constant there, so w = 0 is the answer at once."""
    m = nnlib.LogisticRegression(fit_intercept=False).fit(np.zeros((2, 1)), [0, 1])
    assert m.converged_ and m.learning_rate_ == 1.0 and not m.coef_.any()
    m = nnlib.LogisticRegression(fit_intercept=False, alpha=5e-324).fit(np.zeros((2, 1)),
                                                                       [0, 1])
    assert m.learning_rate_ == 1.0 and not m.coef_.any()     # 1/L was 1/5e-324 = inf


@pytest.mark.parametrize("fn, what", [(_loss_grads_inf_x, "gradient"),
                                      (_loss_grads_penalty_overflow, "loss")],
                         ids=["inf-input-nan-dW-finite-db", "l2-penalty-overflow"])
def test_loss_and_grads_warns_on_every_nonfinite_result(fn, what):
    """The kernel's status missed these: NaN in dW next to a finite db (a non-finite
    hidden output), and a loss made infinite by the L2 penalty."""
    with pytest.warns(RuntimeWarning, match=f"the {what} is not finite"):
        value, grads = fn()
    assert not (np.isfinite(value) and all(np.isfinite(g).all() for g in grads))


def test_validation_overflow_during_fit_scores_nan_as_in_scikit_learn():
    """Finite weights whose output on the validation rows overflows (float32 X ~ 2e8 after
    a few large steps, found by the fuzzer) made fit raise predict's NonFiniteError. The
    validation score of such outputs is NaN now, and the fit goes on as scikit-learn's
    (its test_mlp_diverging_loss): NaN scores, no early stop, a ConvergenceWarning."""
    class Overflowing(nnlib.MLPRegressor):
        def _score_validation(self, X, y, sample_weight=None):
            raise NonFiniteError("MLPRegressor's output for row 0 of X is not finite")

    with pytest.warns(nnlib.exceptions.ConvergenceWarning):
        est = Overflowing(early_stopping=True, solver="sgd", max_iter=2).fit(
            np.arange(40.0).reshape(20, 2), np.arange(20.0))
    assert est.n_iter_ == 2 and all(np.isnan(est.validation_scores_))


# integer classes as an int array: an object array of integers is refused as classes
# (as scikit-learn's MLPClassifier refuses it: tests/test_label_dtypes.py)
@pytest.mark.parametrize("classes, y", [(np.array([1]), ["zebra"]),
                                        (np.array(["a"], dtype=object), [1])],
                         ids=["int-classes-str-label", "str-classes-int-label"])
def test_partial_fit_label_of_another_kind_is_unseen(classes, y):
    """Object classes and a label of the other kind (1 and 'zebra') do not order, so the
    lookup of the label raised NumPy's TypeError ('<' not supported between 'int' and
    'str'); it is the documented LabelError naming the unseen label now."""
    clf = nnlib.MLPClassifier(hidden_layer_sizes=1, solver="sgd", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit([[0.0]], classes[:1].tolist(), classes=classes)
    with pytest.raises(nnlib.LabelError, match=rf"labels \[{y[0]!r}\] not among the classes"):
        clf.partial_fit([[0.0]], y)
