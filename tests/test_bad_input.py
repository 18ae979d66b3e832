"""Bad input gives a clear ValueError/TypeError subclass naming the problem.

One table, ``CASES``: (id, callable, args, kwargs, expected exception, message fragment).
The fragment is matched case-insensitively as a regular expression against the message,
so each case also pins down that the message says *what* is wrong. Cases for parts of
nnlib that have not landed yet are added by the helpers below as those modules appear
(``_optional``), so this file never breaks on a partial checkout.
"""
import re

import numpy as np
import pytest

import nnlib
import nnlib.functional as F
from nnlib._codes import activation_code
from nnlib._validation import DTypeError, LabelError, NonFiniteError, ShapeError

ONES = np.ones((2, 3))
F32 = np.ones((2, 3), dtype=np.float32)


def case(id_, fn, args, exc, fragment, **kwargs):
    return pytest.param(fn, args, kwargs, exc, fragment, id=id_)


def _functional_cases():
    cases = []
    # Every activation and its vjp refuses unusable dtypes, naming the dtype.
    bad_dtypes = [
        ("complex", np.array([1 + 2j]), "complex"),
        ("object", np.array([1.0, None], dtype=object), "object"),
        ("string", np.array(["a", "b"]), "string"),
        ("bytes", np.array([b"a"]), "bytes"),
        ("datetime", np.array(["2020-01-01"], dtype="M8[D]"), "datetime"),
        ("timedelta", np.array([1], dtype="m8[s]"), "timedelta"),
        ("structured", np.zeros(2, dtype=[("a", "f8")]), "void"),
    ]
    for name in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu",
                 "sign"):
        fn, vjp = getattr(F, name), getattr(F, name + "_vjp")
        for tag, arr, frag in bad_dtypes:
            cases.append(case(f"{name}-x-{tag}", fn, (arr,), DTypeError, frag))
        cases += [
            case(f"{name}_vjp-grad-complex", vjp, (ONES, ONES + 1j), DTypeError,
                 "grad_out.*complex"),
            case(f"{name}_vjp-shape-mismatch", vjp, (ONES, np.ones((3, 2))), ShapeError,
                 r"same shape.*\(2, 3\).*\(3, 2\)"),
            case(f"{name}_vjp-grad-broadcastable-but-not-equal", vjp, (ONES, np.ones(3)),
                 ShapeError, "same shape"),
            case(f"{name}-n_threads-zero", fn, (ONES,), ValueError, "n_threads must be >= 1",
                 n_threads=0),
            case(f"{name}-n_threads-negative", fn, (ONES,), ValueError, "n_threads",
                 n_threads=-2),
            case(f"{name}-n_threads-float", fn, (ONES,), TypeError, "n_threads.*integer",
                 n_threads=2.0),
            case(f"{name}-n_threads-bool", fn, (ONES,), TypeError, "n_threads.*integer",
                 n_threads=True),
            case(f"{name}-n_threads-string", vjp, (ONES, ONES), TypeError, "n_threads",
                 n_threads="4"),
        ]
    for name, pname in (("leaky_relu", "slope"), ("elu", "alpha")):
        for fn in (getattr(F, name), getattr(F, name + "_vjp")):
            arrs = (ONES,) if fn.__name__ == name else (ONES, ONES)
            cases += [
                case(f"{fn.__name__}-{pname}-nan", fn, arrs + (np.nan,), ValueError,
                     f"{pname} must be finite"),
                case(f"{fn.__name__}-{pname}-inf", fn, arrs + (np.inf,), ValueError,
                     f"{pname} must be finite"),
                case(f"{fn.__name__}-{pname}-string", fn, arrs + ("0.1",), TypeError,
                     f"{pname} must be a real number"),
                case(f"{fn.__name__}-{pname}-array", fn, arrs + (np.ones(2),), TypeError,
                     f"{pname} must be a real number"),
                case(f"{fn.__name__}-{pname}-none", fn, arrs + (None,), TypeError, pname),
                case(f"{fn.__name__}-{pname}-complex", fn, arrs + (1j,), TypeError, pname),
            ]
    cases += [
        case("elu-alpha-negative", F.elu, (ONES, -0.5), ValueError, "alpha must be >= 0"),
        case("elu_vjp-alpha-negative", F.elu_vjp, (ONES, ONES, -1.0), ValueError,
             "alpha must be >= 0"),
        case("activation-unknown-name", activation_code, ("swish",), ValueError,
             "unknown activation 'swish'.*relu"),
        case("activation-unhashable-name", activation_code, (["relu"],), ValueError,
             "unknown activation"),
        case("sigmoid-ragged-list", F.sigmoid, ([[1.0, 2.0], [3.0]],), ValueError,
             "inhomogeneous|sequence"),
        case("tanh-x-none", F.tanh, (None,), DTypeError, "object"),
    ]
    return cases


def _output_map_and_loss_cases():
    Z = np.zeros((3, 4))
    cases = []
    for name in ("softmax", "log_softmax", "sparsemax"):
        fn, vjp = getattr(F, name), getattr(F, name + "_vjp")
        cases += [
            case(f"{name}-0d", fn, (np.float64(1.0),), ShapeError, "at least 1 dimension"),
            case(f"{name}-empty-last-axis", fn, (np.zeros((2, 0)),), ShapeError,
                 r"at least one entry on its last axis.*\(2, 0\)"),
            case(f"{name}-complex", fn, (Z + 1j,), DTypeError, "complex"),
            case(f"{name}-object", fn, (Z.astype(object),), DTypeError, "object"),
            case(f"{name}_vjp-shape-mismatch", vjp, (Z, Z[:, :3]), ShapeError,
                 "same shape"),
            case(f"{name}_vjp-grad-string", vjp, (Z, Z.astype(str)), DTypeError,
                 "grad_out.*string"),
            case(f"{name}-n_threads-zero", fn, (Z,), ValueError, "n_threads", n_threads=0),
        ]
    class_losses = ("softmax_cross_entropy", "sparsemax_loss", "hinge_loss")
    for name in class_losses:
        for fn in (getattr(F, name), getattr(F, name + "_grad")):
            n = fn.__name__
            cases += [
                case(f"{n}-label-too-big", fn, (Z, [0, 1, 4]), LabelError,
                     r"y\[2\] = 4 is not a class label in \[0, 4\)"),
                case(f"{n}-label-negative", fn, (Z, [0, -1, 2]), LabelError, r"y\[1\] = -1"),
                case(f"{n}-label-fraction", fn, (Z, [0, 1.5, 2]), LabelError,
                     "1.5 is not an integer"),
                case(f"{n}-label-nan", fn, (Z, [0, np.nan, 2]), LabelError, "nan"),
                case(f"{n}-label-inf", fn, (Z, [0, 1, np.inf]), LabelError, r"y\[2\] = inf"),
                case(f"{n}-label-huge", fn, (Z, [0, 1, 2 ** 63 - 1]), LabelError, r"y\[2\]"),
                case(f"{n}-labels-one-hot", fn, (Z, np.eye(4)[:3]), ShapeError,
                     "not one-hot"),
                case(f"{n}-labels-too-few", fn, (Z, [0, 1]), ShapeError,
                     r"shape \(3,\).*got shape \(2,\)"),
                case(f"{n}-labels-string", fn, (Z, ["a", "b", "c"]), DTypeError, "string"),
                case(f"{n}-labels-complex", fn, (Z, [0j, 1, 2]), DTypeError, "complex"),
                case(f"{n}-z-1d", fn, (np.zeros(3), [0, 1, 2]), ShapeError, "2-d"),
                case(f"{n}-z-no-samples", fn, (np.zeros((0, 3)), []), ShapeError,
                     "at least one sample"),
                case(f"{n}-z-no-classes", fn, (np.zeros((3, 0)), [0, 0, 0]), ShapeError,
                     "at least one sample and one column"),
                case(f"{n}-z-complex", fn, (Z + 1j, [0, 1, 2]), DTypeError, "complex"),
            ]
    for fn in (F.hinge_loss, F.hinge_loss_grad):
        cases += [
            case(f"{fn.__name__}-margin-negative", fn, (Z, [0, 1, 2], -1.0), ValueError,
                 "margin must be >= 0"),
            case(f"{fn.__name__}-margin-nan", fn, (Z, [0, 1, 2], np.nan), ValueError,
                 "margin must be finite"),
        ]
    for fn in (F.squared_error, F.squared_error_grad):
        n = fn.__name__
        cases += [
            case(f"{n}-target-shape", fn, (Z, Z[:2]), ShapeError, r"shape of z \(3, 4\)"),
            case(f"{n}-target-nan", fn, (Z, np.where(np.eye(3, 4) > 0, np.nan, 0)),
                 NonFiniteError, "y must be finite; row 0 holds nan"),
            case(f"{n}-target-inf-row-2", fn, (Z, np.where(np.arange(12).reshape(3, 4) == 9,
                                                             np.inf, 0)),
                 NonFiniteError, "row 2 holds inf"),
            case(f"{n}-target-complex", fn, (Z, Z + 1j), DTypeError, "complex"),
            case(f"{n}-z-3d", fn, (np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), ShapeError,
                 "1-d.*or 2-d"),
        ]
    for fn in (F.logistic_loss, F.logistic_loss_grad):
        n = fn.__name__
        cases += [
            case(f"{n}-label-2", fn, (np.zeros(3), [0, 2, 1]), LabelError,
                 r"y\[1\] = 2 is not a binary label"),
            case(f"{n}-label-minus-1", fn, (np.zeros(3), [0, 1, -1]), LabelError,
                 "binary label"),
            case(f"{n}-label-nan", fn, (np.zeros(3), [0, np.nan, 1]), LabelError, "nan"),
            case(f"{n}-many-columns", fn, (Z, [0, 1, 1]), ShapeError, "one score per sample"),
            case(f"{n}-labels-length", fn, (np.zeros(3), [0, 1]), ShapeError,
                 r"shape \(3,\)"),
        ]
    return cases


def _dense_cases():
    X, W, b = np.ones((2, 3)), np.ones((3, 2)), np.ones(2)
    fwd, bwd = F.dense_forward, F.dense_backward
    return [
        case("dense_forward-X-vs-W", fwd, (X, np.ones((4, 2)), b), ShapeError,
             r"X has 3 columns but W has 4 rows"),
        case("dense_forward-X-1d", fwd, (np.ones(3), W, b), ShapeError,
             "X must be 2-dimensional"),
        case("dense_forward-W-3d", fwd, (X, np.ones((3, 2, 1)), b), ShapeError,
             "W must be 2-dimensional"),
        case("dense_forward-b-shape", fwd, (X, W, np.ones(3)), ShapeError,
             r"b must have shape \(2,\)"),
        case("dense_forward-b-2d", fwd, (X, W, np.ones((1, 2))), ShapeError, "b must have"),
        case("dense_forward-mixed-precision", fwd, (X.astype(np.float32), W, b),
             DTypeError, "X has dtype float32 but W has dtype float64"),
        case("dense_forward-b-mixed-precision", fwd, (X, W, b.astype(np.float32)),
             DTypeError, "b has dtype float32"),
        case("dense_forward-W-complex", fwd, (X, W + 1j, b), DTypeError, "W.*complex"),
        case("dense_forward-X-object", fwd, (X.astype(object), W, b), DTypeError, "object"),
        case("dense_forward-unknown-activation", fwd, (X, W, b, "swish"), ValueError,
             "unknown activation 'swish'"),
        case("dense_forward-param-for-relu", fwd, (X, W, b, "relu", 0.5), ValueError,
             "takes no parameter"),
        case("dense_forward-negative-slope", fwd, (X, W, b, "leaky_relu", -0.5), ValueError,
             "slope must be >= 0"),
        case("dense_forward-elu-alpha-nan", fwd, (X, W, b, "elu", np.nan), ValueError,
             "alpha must be finite"),
        case("dense_backward-grad_H-shape", bwd, (X, W, np.ones((2, 2)), np.ones((3, 2))),
             ShapeError, r"grad_H must have shape \(2, 2\)"),
        case("dense_backward-H-shape", bwd, (X, W, np.ones((2, 3)), np.ones((2, 2))),
             ShapeError, "H must have shape"),
        case("dense_backward-X-vs-W", bwd, (np.ones((2, 4)), W, np.ones((2, 2)),
                                            np.ones((2, 2))), ShapeError, "4 columns"),
        case("dense_backward-n_threads-zero", bwd, (X, W, np.ones((2, 2)), np.ones((2, 2))),
             ValueError, "n_threads", n_threads=0),
    ]


def _optim_cases():
    import nnlib.optim as O
    p, p32 = np.ones(3), np.ones(3, dtype=np.float32)
    cases = []
    for cls in (O.SGD, O.Adagrad, O.RMSprop, O.Adam, O.AdamW, O.NotesMomentum,
                O.NotesAdaGrad, O.SklearnSGD, O.SklearnAdam):
        n = cls.__name__
        cases += [
            case(f"{n}-negative-lr", cls, (), ValueError, "lr must be >= 0", lr=-0.1),
            case(f"{n}-nan-lr", cls, (), ValueError, "lr must be finite", lr=np.nan),
            case(f"{n}-string-lr", cls, (), TypeError, "lr must be a real number",
                 lr="0.1"),
            case(f"{n}-step-shape-mismatch", cls().step, ([p], [np.ones(4)]), ShapeError,
                 r"grads\[0\] has shape \(4,\) but params\[0\] has shape \(3,\)"),
            case(f"{n}-step-count-mismatch", cls().step, ([p], [p, p]), ValueError,
                 "1 params but 2 grads"),
            case(f"{n}-step-dtype-mismatch", cls().step, ([p], [p32]), DTypeError,
                 "grads\\[0\\] is float32 but params\\[0\\] is float64"),
            case(f"{n}-step-int-params", cls().step, ([np.ones(3, dtype=int)],
                                                      [np.ones(3)]), DTypeError,
                 "float32 or float64; got int64"),
            case(f"{n}-step-noncontiguous-params", cls().step, ([np.ones(6)[::2]],
                                                                [np.ones(3)]),
                 ValueError, "C-contiguous"),
            case(f"{n}-step-list-params", cls().step, ([[1.0, 2.0]], [[1.0, 2.0]]), TypeError,
                 "NumPy array"),
        ]
    ro = np.ones(3)
    ro.flags.writeable = False
    sgd, p3 = O.SGD(lr=0.1), np.ones(3)
    sgd.step([p3], [np.ones(3)])
    sgd.momentum = 0.9                      # the state of p3 now lacks a momentum row
    cases += [
        case("SGD-step-readonly-params", O.SGD(lr=0.1).step, ([ro], [np.ones(3)]), ValueError,
             "read-only"),
        case("SGD-state-layout-changed", sgd.step, ([p3], [np.ones(3)]),
             ShapeError, "reset"),
        case("SGD-momentum-1", O.SGD, (None, 0.1, 1.0), ValueError, "momentum must be < 1"),
        case("SGD-momentum-negative", O.SGD, (None, 0.1, -0.5), ValueError, "momentum must be >= 0"),
        case("SGD-nesterov-without-momentum", O.SGD, (None, 0.1, 0.0, 0.0, True), ValueError,
             "nesterov momentum requires momentum > 0"),
        case("SGD-nesterov-not-bool", O.SGD, (None, 0.1, 0.9, 0.0, "yes"), TypeError,
             "nesterov must be True or False"),
        case("SGD-weight-decay-negative", O.SGD, (), ValueError, "weight_decay",
             weight_decay=-1.0),
        case("RMSprop-momentum-1", O.RMSprop, (), ValueError, "momentum must be < 1",
             momentum=1.0),
        case("RMSprop-alpha-1", O.RMSprop, (), ValueError, "alpha must be < 1", alpha=1.0),
        case("Adam-beta2-1", O.Adam, (), ValueError, r"betas\[1\] must be < 1",
             betas=(0.9, 1.0)),
        case("Adam-betas-not-pair", O.Adam, (), ValueError, "betas must be a pair",
             betas=(0.9,)),
        case("Adam-eps-zero", O.Adam, (), ValueError, "eps must be > 0", eps=0.0),
        case("Adam-amsgrad-int", O.Adam, (), TypeError, "amsgrad", amsgrad=1),
        case("NotesMomentum-beta-zero", O.NotesMomentum, (), ValueError, "beta must be > 0",
             beta=0.0),
        case("NotesAdaGrad-eps-negative", O.NotesAdaGrad, (), ValueError, "eps", eps=-1e-8),
        case("SklearnSGD-momentum-above-1", O.SklearnSGD, (), ValueError,
             "momentum must be <= 1", momentum=1.5),
        case("SklearnAdam-beta_1-1", O.SklearnAdam, (), ValueError, "beta_1 must be < 1",
             beta_1=1.0),
        case("SGD-lr-setter-negative", setattr, (O.SGD(lr=0.1), "lr", -1.0), ValueError,
             "lr must be >= 0"),
        case("gradient_descent-negative-lr", O.gradient_descent,
             (lambda w: (0.0, w), np.ones(2), -0.1), ValueError, "lr must be > 0"),
        case("gradient_descent-nan-at-start", O.gradient_descent,
             (lambda w: (np.nan, w), np.ones(2), 0.1), NonFiniteError, "not finite"),
        case("gradient_descent-grad-shape", O.gradient_descent,
             (lambda w: (0.0, w[:1]), np.ones(2), 0.1), ShapeError, "gradient of shape"),
        case("gradient_descent-not-callable", O.gradient_descent, (None, np.ones(2), 0.1),
             TypeError, "callable"),
        case("gradient_descent-max-iter-negative", O.gradient_descent,
             (lambda w: (0.0, w), np.ones(2), 0.1, 1e-6, -1), ValueError, "max_iter"),
        case("gradient_descent-not-a-pair", O.gradient_descent,
             (lambda w: 0.0, np.ones(2), 0.1), TypeError, "pair"),
    ]
    return cases


def _model_cases():
    import nnlib
    from nnlib import optim
    m = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                          nnlib.Dense(4, 2, random_state=1)])
    X, y = np.ones((5, 3)), np.array([0, 1, 0, 1, 1])
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    Xinf = X.copy()
    Xinf[2, 0] = -np.inf
    big = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])     # identity: no saturation
    big.layers[0].W[...] = 10.0
    fit = m.fit
    byte_swapped = np.ones(3, np.dtype(np.float64).newbyteorder(">" if np.little_endian
                                                                 else "<"))
    return [
        case("Optimizer-step-non-native-param", optim.SGD(lr=0.1).step,
             ([byte_swapped], [np.ones(3)]), DTypeError,
             r"params\[0\] has non-native byte order"),
        case("fit-nan-in-validation-X", fit, (X, y), NonFiniteError, "X_val.*row 3",
             validation_data=(Xnan, y)),
        case("fit-inf-in-validation-X", fit, (X, y), NonFiniteError, "X_val.*row 2",
             validation_data=(Xinf, y)),
        case("Dense-n_in-zero", nnlib.Dense, (0, 3), ValueError, "n_in must be >= 1"),
        case("Dense-n_out-float", nnlib.Dense, (3, 2.5), TypeError, "n_out must be an integer"),
        case("Dense-dtype-int", nnlib.Dense, (3, 2), DTypeError, "float32 or float64",
             dtype=np.int32),
        case("Dense-unknown-init", nnlib.Dense, (3, 2), ValueError, "unknown init",
             init="magic"),
        case("Dense-unknown-activation", nnlib.Dense, (3, 2, "swish"), ValueError,
             "unknown activation"),
        case("Sequential-empty", nnlib.Sequential, ([],), ValueError, "at least one layer"),
        case("Sequential-widths", nnlib.Sequential,
             ([nnlib.Dense(3, 4), nnlib.Dense(5, 2)],), ShapeError,
             r"layers\[1\] expects 5 inputs but layers\[0\] gives 4"),
        case("Sequential-mixed-dtypes", nnlib.Sequential,
             ([nnlib.Dense(3, 4), nnlib.Dense(4, 2, dtype=np.float32)],), DTypeError,
             "share a dtype"),
        case("Sequential-not-a-layer", nnlib.Sequential, ([nnlib.Dense(3, 4), "relu"],),
             TypeError, r"layers\[1\] must follow the layer protocol"),
        case("predict-X-vs-W", m.predict, (np.ones((5, 4)),), ShapeError,
             "4 features but the model expects 3"),
        case("predict-X-1d", m.predict, (np.ones(3),), ShapeError, "2-dimensional"),
        case("predict-X-complex", m.predict, (X + 1j,), DTypeError, "complex"),
        case("multilabel-y-complex-wrong-shape-dtype-first", m.loss_and_grads,
             (X, np.zeros((5, 1), complex)), DTypeError, "y must hold numeric labels",
             loss="logistic_loss"),
        case("predict-nan-in-X-names-row", m.predict, (Xnan,), NonFiniteError,
             "X must be finite; row 3 holds nan"),
        case("predict-chunked-inf-in-X-names-row", m.predict, (Xinf,), NonFiniteError,
             "X must be finite; row 2 holds -inf", batch_size=2),
        case("forward-nan-in-X-names-row", m.forward, (Xnan,), NonFiniteError,
             "X must be finite; row 3 holds nan"),
        case("predict-overflow-names-row", big.predict,
             (np.vstack([X, np.full((1, 3), 1e308)]),), NonFiniteError,
             r"output for row 5 of X is not finite \(the products overflowed"),
        case("predict-chunked-overflow-names-row", big.predict,
             (np.vstack([X, np.full((1, 3), 1e308)]),), NonFiniteError,
             r"output for row 5 of X is not finite", batch_size=2),
        case("fit-y-length", fit, (X, y[:4]), ShapeError, r"shape \(5,\)"),
        case("fit-nan-in-X-names-row", fit, (Xnan, y), NonFiniteError,
             "X must be finite; row 3 holds nan"),
        case("fit-inf-in-X-names-row", fit, (Xinf, y), NonFiniteError, "row 2 holds -inf"),
        case("fit-label-out-of-range", fit, (X, [0, 1, 2, 0, 1]), LabelError,
             r"y\[2\] = 2 is not a class label in \[0, 2\)"),
        case("fit-label-negative", fit, (X, [0, -1, 1, 0, 1]), LabelError, r"y\[1\] = -1"),
        case("fit-label-float", fit, (X, [0, 0.5, 1, 0, 1]), LabelError, "integer"),
        case("fit-labels-one-hot", fit, (X, np.eye(2)[y]), ShapeError, "one-hot"),
        case("fit-batch-size-zero", fit, (X, y), ValueError, "batch_size must be >= 1",
             batch_size=0),
        case("fit-epochs-negative", fit, (X, y), ValueError, "epochs must be >= 0",
             epochs=-1),
        case("fit-l2-negative", fit, (X, y), ValueError, "l2 must be >= 0", l2=-0.1),
        case("fit-unknown-loss", fit, (X, y), ValueError, "loss", loss="cross_entropy"),
        case("fit-optimizer-not-optimizer", fit, (X, y), TypeError, "optimizer",
             optimizer="sgd"),
        case("fit-validation-split-1", fit, (X, y), ValueError, "validation_split",
             validation_split=1.0),
        case("fit-callback-not-callable", fit, (X, y), TypeError, "callbacks", callbacks=[3]),
        # 2 outputs: logistic_loss needs a (5, 2) 0/1 matrix (multilabel), not labels
        case("fit-logistic-multi-output-needs-matrix", fit, (X, y), ShapeError,
             r"shape \(5, 2\) for logistic_loss on 2 outputs", loss="logistic_loss"),
        case("fit-squared-error-target-shape", fit, (X, np.ones((5, 3))), ShapeError,
             r"shape \(5, 2\)", loss="squared_error"),
        case("fit-squared-error-nan-target", fit, (X, np.where(np.eye(5, 2) > 0, np.nan, 0)),
             NonFiniteError, "y must be finite; row 0", loss="squared_error"),
        case("fit-n_threads-zero", fit, (X, y), ValueError, "n_threads", n_threads=0),
        case("fit-momentum-1", optim.SGD, (None, 0.1, 1.0), ValueError, "momentum must be < 1"),
        case("loss_and_grads-X-empty", m.loss_and_grads, (np.ones((0, 3)), []), ShapeError,
             "at least one row"),
    ]


def _estimator_cases():
    from nnlib.estimators import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), np.arange(20) % 3
    Xn = X.copy()
    Xn[4, 1] = np.nan
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # not converged in 5 iterations
        clf.fit(X, y)
    fit = lambda est, *a: est.fit(*a)              # noqa: E731
    C = lambda **kw: MLPClassifier(**{"max_iter": 5, **kw})   # noqa: E731
    return [
        case("MLPClassifier-nan-in-X-names-row-and-column", fit, (C(), Xn, y),
             NonFiniteError, "row 4, column 1"),
        case("MLPClassifier-y-length", fit, (C(), X, y[:5]), ShapeError, "20 and 5"),
        case("MLPClassifier-negative-lr", fit, (C(learning_rate_init=-1.0), X, y),
             ValueError, "learning_rate_init"),
        case("MLPClassifier-batch-size-zero", fit, (C(batch_size=0), X, y), ValueError,
             "batch_size"),
        case("MLPClassifier-momentum-above-1", fit, (C(momentum=1.5), X, y), ValueError,
             "momentum"),
        case("MLPClassifier-zero-width-layer", fit, (C(hidden_layer_sizes=(0,)), X, y),
             ValueError, "hidden_layer_sizes"),
        case("MLPClassifier-unknown-activation", fit, (C(activation="swish"), X, y),
             ValueError, "activation"),
        case("MLPClassifier-negative-alpha", fit, (C(alpha=-1.0), X, y), ValueError,
             "alpha"),
        # named as the user wrote them, not as the optimizer's lr / the model's l2
        case("MLPClassifier-inf-lr", fit, (C(learning_rate_init=np.inf), X, y),
             ValueError, "'learning_rate_init' parameter must be a finite real number"),
        case("MLPClassifier-inf-alpha", fit, (C(alpha=np.inf), X, y), ValueError,
             "'alpha' parameter must be a finite real number"),
        case("MLPClassifier-float32-alpha-1e39", fit,
             (C(alpha=1e39), X.astype(np.float32), y), ValueError,
             r"^alpha=1e\+39 is beyond the range of float32"),
        case("MLPClassifier-lbfgs-overflowing-X", fit,
             (C(solver="lbfgs", hidden_layer_sizes=(4,), random_state=0), X * 1e200, y),
             ValueError, "Solver produced non-finite parameter weights.*loss"),
        case("MLPClassifier-unknown-solver", fit, (C(solver="newton"), X, y), ValueError,
             "solver"),
        case("MLPClassifier-max-iter-zero", fit, (C(max_iter=0), X, y), ValueError,
             "max_iter"),
        case("MLPClassifier-complex-X", fit, (C(), X + 1j, y), DTypeError, "complex"),
        case("MLPClassifier-no-samples", fit, (C(), np.ones((0, 3)), []), ShapeError,
             "0 sample"),
        case("MLPClassifier-predict-feature-count", clf.predict, (X[:, :2],), ShapeError,
             "2 features.*expecting 3"),
        case("MLPClassifier-predict-nan", clf.predict, (Xn,), NonFiniteError, "row 4"),
        case("MLPClassifier-partial-fit-unseen-label", clf.partial_fit, (X, np.arange(20) % 4),
             LabelError, "not among the classes"),
        case("MLPRegressor-inf-target", fit, (MLPRegressor(max_iter=5), X, np.full(20, np.inf)),
             NonFiniteError, "y contains infinity"),
    ]


_PWNED = []


def _pwned():
    _PWNED.append(True)        # would run if a loader unpickled the file
    return 0


class _Evil:
    def __reduce__(self):
        return (_pwned, ())


def _load_cases():
    import os
    import tempfile
    import nnlib
    from nnlib.model import load
    d = tempfile.mkdtemp(prefix="nnlib-bad-input-")
    m = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0), nnlib.Dense(4, 2)])
    good = os.path.join(d, "good.npz")
    m.save(good)
    raw = open(good, "rb").read()

    def write(name, data):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def with_header(name, edit=None, extra=None):
        import json
        with np.load(good, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(arrays["header"].tobytes())
        if edit:
            edit(header)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        arrays.update(extra or {})
        path = os.path.join(d, name)
        np.savez(path, **arrays)
        return path

    def tamper(name):                       # flip one byte inside W0's data
        i = raw.index(b"W0.npy")
        b = bytearray(raw)
        b[i + 200] ^= 0xFF
        return write(name, bytes(b))

    import pickle
    return [
        case("load-truncated-half", load, (write("half.npz", raw[:len(raw) // 2]),),
             ValueError, "truncated or corrupted"),
        case("load-truncated-10-bytes", load, (write("ten.npz", raw[:10]),), ValueError,
             "truncated or corrupted"),
        case("load-empty-file", load, (write("empty.npz", b""),), ValueError,
             "not an nnlib model file"),
        case("load-text-file", load, (write("text.npz", b"hello world\n"),), ValueError,
             "not an nnlib model file"),
        case("load-flipped-byte", load, (tamper("flip.npz"),), ValueError,
             "corrupted|truncated"),
        case("load-wrong-version", load,
             (with_header("v99.npz", lambda h: h.update(version=99)),), ValueError,
             "format version 99"),
        case("load-wrong-format-name", load,
             (with_header("fmt.npz", lambda h: h.update(format="other")),), ValueError,
             "not an nnlib model file"),
        case("load-bad-checksum", load,
             (with_header("sha.npz", lambda h: h.update(sha256="0" * 64)),), ValueError,
             "SHA-256 does not match"),
        case("load-missing-array", load,
             (with_header("miss.npz", lambda h: h["arrays"].append("W9")),), ValueError,
             "missing arrays"),
        case("load-pickle-file", load,
             (write("evil.pkl", pickle.dumps(_Evil())),), ValueError,
             "not an nnlib model file"),
        case("load-object-array-in-npz", load,
             (with_header("evil.npz", extra={"W0": np.array([_Evil()], dtype=object)}),),
             ValueError, "truncated or corrupted|pickle|object"),
        case("load-missing-file", load, (os.path.join(d, "nope.npz"),), FileNotFoundError,
             "nope"),
    ]


def _dtype_range_cases():
    """A finite scalar parameter beyond the working dtype's range would become inf in the
    compiled code (0 * inf = NaN: a silently wrong number); it is refused up front, naming
    the parameter, its value and the dtype's max."""
    import nnlib
    from nnlib import optim
    from nnlib._validation import DTypeRangeError
    x32 = np.array([-2.0, 0.0, 3.0], dtype=np.float32)
    max32 = r"float32 \(max 3\.402823e\+38\)"
    cases = []
    for name, pname in (("leaky_relu", "slope"), ("elu", "alpha")):
        for fn in (getattr(F, name), getattr(F, name + "_vjp")):
            arrs = (x32,) if fn.__name__ == name else (x32, x32)
            for value in (1e39, 1e308):
                cases.append(case(f"{fn.__name__}-float32-{pname}-{value:.0e}", fn,
                                  arrs + (value,), DTypeRangeError,
                                  rf"{pname}={re.escape(repr(value))}.*{max32}"))
    cases.append(case("leaky_relu-float32-slope--1e39", F.leaky_relu, (x32, -1e39),
                      DTypeRangeError, rf"slope=-1e\+39.*{max32}"))
    X, W, b = (np.ones((2, 3), np.float32), np.ones((3, 2), np.float32),
               np.ones(2, np.float32))
    H = np.zeros((2, 2), np.float32)
    for act in ("leaky_relu", "elu"):
        pname = "slope" if act == "leaky_relu" else "alpha"
        frag = rf"{act} {pname}=1e\+39.*{max32}"
        cases += [
            case(f"dense_forward-float32-{act}-1e39", F.dense_forward,
                 (X, W, b, act, 1e39), DTypeRangeError, frag),
            case(f"dense_backward-float32-{act}-1e39", F.dense_backward,
                 (X, W, H, H, act, 1e39), DTypeRangeError, frag),
            case(f"Dense-float32-{act}-1e39", nnlib.Dense, (3, 2, act), DTypeRangeError,
                 frag, dtype=np.float32, activation_param=1e39),
        ]
    # The dtype is not fixed at construction: a float64 layer whose arrays a user then
    # replaces by float32 ones is checked when the model runs.
    layer = nnlib.Dense(3, 2, "leaky_relu", activation_param=1e300, random_state=0)
    layer.W, layer.b = layer.W.astype(np.float32), layer.b.astype(np.float32)
    m32 = nnlib.Sequential([layer])
    y = np.array([0, 1])
    frag = rf"leaky_relu slope=1e\+300.*{max32}"
    cases += [
        case("Sequential-float32-arrays-slope-1e300-predict", m32.predict, (X,),
             DTypeRangeError, frag),
        case("Sequential-float32-arrays-slope-1e300-fit", m32.fit, (X, y),
             DTypeRangeError, frag),
        case("Sequential-float32-arrays-slope-1e300-loss_and_grads", m32.loss_and_grads,
             (X, y), DTypeRangeError, frag),
    ]
    m = nnlib.Sequential([nnlib.Dense(3, 2, dtype=np.float32, random_state=0)])
    cases += [
        case("fit-float32-l2-1e39", m.fit, (X, y), DTypeRangeError,
             rf"l2=1e\+39.*{max32}", l2=1e39),
        case("loss_and_grads-float32-l2-1e39", m.loss_and_grads, (X, y), DTypeRangeError,
             rf"l2=1e\+39.*{max32}", l2=1e39),
        case("fit-float32-lr-1e39", m.fit, (X, y), DTypeRangeError,
             rf"lr=1e\+39.*{max32}", optimizer=optim.SGD(lr=1e39)),
        case("fit-float32-adam-lr-1e39", m.fit, (X, y), DTypeRangeError,
             rf"lr=1e\+39.*{max32}", optimizer=optim.Adam(lr=1e39)),
    ]
    # float64 X with a value beyond float32 for a float32 model: named as given, not as
    # the inf the conversion makes of it
    Xbig = np.array(X, dtype=np.float64)
    Xbig[1, 2] = -1e300
    frag = rf"X must be finite; row 1 holds -1e\+300 \(column 2\), beyond the range of {max32}"
    cases += [case(f"{name}-float32-model-X-1e300", fn, (Xbig,) + extra, NonFiniteError, frag)
              for name, fn, extra in (("fit", m.fit, (y,)), ("predict", m.predict, ()),
                                      ("forward", m.forward, ()))]
    return cases


def _optional(builder, module):
    """``builder()``'s cases if ``module`` imports (it may not have landed yet)."""
    try:
        __import__(module)
    except ImportError:
        return []
    return builder()


CASES = (_functional_cases() + _output_map_and_loss_cases() + _dense_cases()
         + _optional(_optim_cases, "nnlib.optim") + _optional(_model_cases, "nnlib.model")
         + _optional(_load_cases, "nnlib.model")
         + _optional(_estimator_cases, "nnlib.estimators")
         + _optional(_dtype_range_cases, "nnlib.model"))


@pytest.mark.parametrize("fn, args, kwargs, exc, fragment", CASES)
def test_bad_input_raises_clear_error(fn, args, kwargs, exc, fragment):
    assert issubclass(exc, (ValueError, TypeError, FileNotFoundError))
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, (ValueError, TypeError, FileNotFoundError))
    msg = str(info.value)
    assert re.search(fragment, msg, re.IGNORECASE | re.DOTALL), (
        f"message {msg!r} does not mention {fragment!r}")


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_error_classes_are_value_or_type_errors():
    from nnlib._validation import DTypeRangeError
    for exc in (ShapeError, NonFiniteError, LabelError, DTypeRangeError):
        assert issubclass(exc, ValueError)
    assert issubclass(DTypeError, TypeError)


def test_loading_never_unpickles():
    """After every load case above ran (this test is after them in the module), no
    pickled object was ever reconstructed."""
    assert not _PWNED


def test_fit_with_a_batch_size_beyond_ssize_t_trains_or_names_batch_size():
    import nnlib
    X = np.ones((5, 3))
    model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
    try:
        model.fit(X, [0, 1, 0, 1, 0], batch_size=2 ** 63)
    except ValueError as exc:
        assert "batch_size" in str(exc)


@pytest.mark.parametrize("monitor", ["accuracy", "val_los"])
def test_early_stopping_on_a_metric_fit_never_logs_is_refused_before_training(monitor):
    import nnlib
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = (X[:, 0] > 0).astype(int)
    model = nnlib.Sequential([nnlib.Dense(3, 2, random_state=0)])
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match="monitor"):
        model.fit(X, y, epochs=3, validation_split=0.2,
                  early_stopping=dict(monitor=monitor))
    for p, q in zip(model.params, before):
        np.testing.assert_array_equal(p, q)


def test_a_sparse_matrix_where_dense_data_is_needed_is_named():
    # np.asarray makes a SciPy sparse matrix a 0-d object array, which was refused as
    # "dtype object": the message names sparse input and what to do
    sp = pytest.importorskip("scipy.sparse")
    model = nnlib.Sequential([nnlib.Dense(3, 2)])
    for X in (sp.csr_matrix(np.ones((4, 3))), sp.csc_matrix(np.ones((4, 3)))):
        for call in (lambda: model.fit(X, [0, 1, 0, 1]), lambda: model.predict(X),
                     lambda: model.train_on_batch(X, [0, 1, 0, 1]),
                     lambda: nnlib.functional.relu(X)):
            with pytest.raises(TypeError, match="sparse matrix .*toarray"):
                call()
