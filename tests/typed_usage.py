"""A user's typed script over nnlib's public API, as the docs show it.

tests/test_typing.py type-checks it with mypy (a public signature that is wrong for its
documented use makes mypy fail here: each annotated variable below is what the docs say
the call returns) and runs it (the script itself checks the values).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

import nnlib
import nnlib.functional as F
from nnlib.callbacks import Callback, EarlyStopping, History, ModelCheckpoint
from nnlib.datasets import load_digits, make_xor, split
from nnlib.export import from_torch_state_dict, to_torch_state_dict
from nnlib.layers import Dense, Dropout, is_compiled
from nnlib.metrics import Metrics, accuracy, probabilities
from nnlib.optim import SGD, Adam, GDResult, gradient_descent
from nnlib.schedules import CosineAnnealing, OneCycleLR, ReduceOnPlateau, Schedule


class CountEpochs(Callback):
    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        self.epochs += 1


def main() -> None:
    # functional: arrays in, arrays (or a float loss) out
    z = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    h: NDArray[np.floating] = F.relu(z, n_threads=1)
    p: NDArray[np.floating] = F.softmax(z)
    loss: float = F.softmax_cross_entropy(z, [0, 2])
    pair: Tuple[float, NDArray[np.floating]] = F.loss_and_grad("hinge_loss", z, [0, 2])
    H = F.dense_forward(np.ones((2, 3)), np.ones((3, 2)), np.zeros(2), "tanh")
    dX, dW, db = F.dense_backward(np.ones((2, 3)), np.ones((3, 2)), H, np.ones_like(H), "tanh")
    kept = F.dropout(z, 0.5, seed=0, step=1)
    assert h.shape == p.shape == kept.shape == z.shape and loss > 0 and pair[1].shape == z.shape
    assert dX.shape == (2, 3) and dW.shape == (3, 2) and db.shape == (2,)

    # a model, Keras's way
    X, y = make_xor()
    model = nnlib.Sequential([Dense(2, 8, "tanh", random_state=0), Dense(8, 2, random_state=1)])
    optimizer = Adam(model.params, lr=0.05)
    counter = CountEpochs()
    history: History = model.fit(X, y, optimizer=optimizer, epochs=50, batch_size=4,
                                 metrics=["accuracy"], callbacks=[counter], random_state=0,
                                 schedule=CosineAnnealing(T_max=50))
    losses: List[float] = history["loss"]
    result = model.evaluate(X, y)
    value: float = result.loss
    acc: Optional[float] = result.accuracy
    named: Dict[str, float] = model.evaluate(X, y, return_dict=True)
    proba: NDArray[np.floating] = model.predict_proba(X)
    score: float = model.score(X, y)
    logits: NDArray[np.floating] = model.predict(X, batch_size=2)
    grads_pair: Tuple[float, List[NDArray[np.floating]]] = model.loss_and_grads(X, y, l2=1e-3)
    assert counter.epochs == 50 and len(losses) == 50 and value >= 0 and acc is not None
    assert set(named) == {"loss", "accuracy"} and proba.shape == logits.shape == (4, 2)
    assert 0.0 <= score <= 1.0 and len(grads_pair[1]) == 4
    state: dict = optimizer.state_dict()
    optimizer.load_state_dict(state)
    stopper: Optional[EarlyStopping] = EarlyStopping.from_spec(3, ["loss"])
    assert stopper is not None and stopper.patience == 3
    model.save("typed_usage_model.npz")
    copy: nnlib.Sequential = nnlib.load("typed_usage_model.npz")
    assert np.array_equal(copy.predict(X), logits)
    # Keras's keywords (x=, y=) type-check as nnlib's X, y do
    keras_named: Dict[str, float] = copy.evaluate(x=X, y=y, return_dict=True)
    assert np.array_equal(copy.predict(x=X), logits) and "loss" in keras_named
    checkpoint = ModelCheckpoint("typed_usage_{epoch}.npz", monitor="loss")
    assert checkpoint.monitor == "loss"

    # dropout: a compiled layer, inside the compiled epoch
    dropped = nnlib.Sequential([Dense(2, 4, "relu", random_state=0), Dropout(0.25, 0),
                                Dense(4, 2, random_state=1)])
    assert dropped.compiled and is_compiled(dropped.layers[1])

    # torch-shaped optimizers, schedules
    w = np.zeros(3)
    sgd = SGD([w], lr=0.1, momentum=0.9)
    sgd.step([np.ones(3)])
    plateau = ReduceOnPlateau(patience=0, optimizer=sgd)
    new_lr: float = plateau.step(1.0)
    cycle: Schedule = OneCycleLR(max_lr=0.1, total_steps=10, optimizer=sgd)
    assert new_lr == 0.1 and cycle.lr_at(0) < 0.1
    gd: GDResult = gradient_descent(lambda v: (float(v @ v), 2 * v), np.ones(2), lr=0.25)
    assert gd.converged

    # metrics, export
    outputs = np.array([[2.0, 1.0], [0.0, 3.0]])
    share: Optional[float] = accuracy(outputs, np.array([0, 1]), "softmax_cross_entropy")
    probs = probabilities(outputs, "softmax_cross_entropy")
    computed: Dict[str, float] = Metrics(["accuracy"], "softmax_cross_entropy").compute(
        outputs, np.array([0, 1]))
    assert share == 1.0 and probs.shape == (2, 2) and computed == {"accuracy": 1.0}
    torch_layout = to_torch_state_dict(model)
    rebuilt: nnlib.Sequential = from_torch_state_dict(torch_layout, ["tanh", "identity"])
    assert np.allclose(rebuilt.predict(X), logits)

    # the scikit-learn estimators and data sets
    digits_X, digits_y = load_digits(n_class=2)
    X_train, X_test, y_train, y_test = split(digits_X / 16, digits_y, random_state=0)
    clf: nnlib.MLPClassifier = nnlib.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs",
                                                   random_state=0).fit(X_train, y_train)
    labels: NDArray = clf.predict(X_test)
    clf_score: float = clf.score(X_test, y_test)
    reg = nnlib.LinearRegression().fit(X_train, y_train.astype(float))
    params: dict = reg.get_params()
    assert labels.shape == y_test.shape and clf_score > 0.9 and "solver" in params


if __name__ == "__main__":
    import os
    import tempfile
    os.chdir(tempfile.mkdtemp())
    main()
