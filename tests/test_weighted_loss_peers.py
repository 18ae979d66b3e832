"""The weighted loss is ``sum_i w_i L_i / sum_i w_i``, as the peers that divide by the
weight sum compute it: torch's ``CrossEntropyLoss(weight=)`` (class weights, reduction
"mean") and scikit-learn's ``log_loss(sample_weight=)`` (its MLP's normalisation).
Keras's default reduction, ``"sum_over_batch_size"``, divides by the row count instead
(Keras is not installed here: ``keras/src/losses/loss.py``'s ``reduce_values``);
nnlib keeps the weight sum, so weights ``c * w`` train as ``w``. These tests pin that
choice: a change to Keras's divisor fails each of them.
"""
import numpy as np
import pytest

import nnlib
from nnlib.optim import SGD

DTYPES = ["float32", "float64"]
TOL = {"float32": 2e-6, "float64": 1e-12}
CLASS_WEIGHT = {0: 0.25, 1: 3.0, 2: 1.0, 3: 0.0}


def _model(dtype):
    return nnlib.Sequential([nnlib.Dense(5, 6, "tanh", random_state=0, dtype=dtype),
                             nnlib.Dense(6, 4, random_state=1, dtype=dtype)])


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 4, size=n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_class_weights_give_torchs_weighted_cross_entropy_and_gradient(dtype):
    torch = pytest.importorskip("torch")
    X, y = _data()
    model = _model(dtype)
    W = [torch.tensor(p.astype(np.float64), requires_grad=True) for p in model.params]
    H = torch.tanh(torch.tensor(X) @ W[0] + W[1])
    per_class = torch.tensor([CLASS_WEIGHT[k] for k in range(4)], dtype=torch.float64)
    expected = torch.nn.CrossEntropyLoss(weight=per_class)(H @ W[2] + W[3],
                                                           torch.tensor(y))
    expected.backward()
    before = [p.copy() for p in model.params]
    # the loss train_on_batch returns is its step's forward pass; SGD(lr=1) leaves
    # W - dW, so the step's gradient is before - after
    got = model.train_on_batch(X.astype(dtype), y, "softmax_cross_entropy", SGD(lr=1.0),
                               class_weight=CLASS_WEIGHT)
    assert got == pytest.approx(expected.item(), rel=TOL[dtype])
    for b, a, w in zip(before, model.params, W):
        np.testing.assert_allclose(b - a, w.grad.numpy(), rtol=50 * TOL[dtype],
                                   atol=50 * TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_weights_give_scikit_learns_weighted_log_loss(dtype):
    metrics = pytest.importorskip("sklearn.metrics")
    X, y = _data()
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=len(y))
    model = _model(dtype)
    got = model.evaluate(X, y, sample_weight=w).loss
    Z = model.predict(X).astype(np.float64)             # softmax in float64: rows sum
    P = np.exp(Z - Z.max(axis=1, keepdims=True))         # to 1 as log_loss checks
    expected = metrics.log_loss(y, P / P.sum(axis=1, keepdims=True), sample_weight=w,
                                labels=range(4))
    assert got == pytest.approx(expected, rel=TOL[dtype])
    assert model.test_on_batch(X, y, sample_weight=w) == got


@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_weights_train_as_the_weights(dtype):
    # a power of two scales every product and sum exactly: the same steps, bit for bit
    # (Keras's default divides by the row count, so its steps would be 4 times longer)
    X, y = _data(40)
    w = np.random.default_rng(2).uniform(0.0, 2.0, size=len(y))
    a, b = _model(dtype), _model(dtype)
    ha = a.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, batch_size=8, sample_weight=w,
               validation_split=0.25, random_state=0)
    hb = b.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, batch_size=8, sample_weight=4 * w,
               validation_split=0.25, random_state=0)
    assert ha["loss"] == hb["loss"] and ha["val_loss"] == hb["val_loss"]
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
