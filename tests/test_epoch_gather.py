"""The compiled epoch's gather of a batch's rows (train.pyx's epoch_loop, prefetch.h's
nn_copy_row): training through a shuffled order is bit for bit training on the rows
permuted beforehand in order, for rows of whole 64-byte pieces, of pieces and a tail,
and shorter than one piece."""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib.training import compiled_train
from tests._page_end import array_at_page_end
from tests._twin_fit import make_setup

compiled = compiled_train()

DTYPES = [("f32", np.float32), ("f64", np.float64)]
# row lengths in elements: 1, 15, 16, 17 and 33 floats are 4 to 132 bytes
WIDTHS = [1, 15, 16, 17, 33]


def _model(n_in, dtype):
    return nnlib.Sequential([nnlib.Dense(n_in, 20, "relu", dtype=dtype, random_state=0),
                             nnlib.Dense(20, 3, "identity", dtype=dtype, random_state=1)])


@pytest.mark.parametrize("dt_id, dtype", DTYPES, ids=[d[0] for d in DTYPES])
@pytest.mark.parametrize("n_in", WIDTHS, ids=[f"n_in={w}" for w in WIDTHS])
def test_gathered_batches_train_as_the_rows_in_order(n_in, dt_id, dtype):
    rng = np.random.default_rng(n_in)
    n = 45                                  # batches of 8: a last one of 5
    X = rng.standard_normal((n, n_in))
    y = rng.integers(0, 3, n)
    order = rng.permutation(n).astype(np.int64)
    params = []
    for X_run, y_run, o in ((X, y, order), (X[order], y[order], np.arange(n))):
        model = _model(n_in, dtype)
        setup = make_setup(compiled, model, X_run, y_run, "softmax_cross_entropy",
                           optimizer=O.SGD(lr=0.1), batch_size=8)
        out = compiled.run_epoch(setup, o.astype(np.int64), 0, n, False)
        assert out[1:3] == (n, 6)
        params.append([p.copy() for p in model.params])
    for got, want in zip(*params):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dt_id, dtype", DTYPES, ids=[d[0] for d in DTYPES])
@pytest.mark.parametrize("n_in", WIDTHS, ids=[f"n_in={w}" for w in WIDTHS])
def test_the_gather_reads_nothing_past_the_last_row(n_in, dt_id, dtype):
    """The epoch reads X in place: a row copy stops at the row's last byte, here the
    last readable byte before a guard page (X's last row is gathered into each epoch's
    batches), and training matches the same rows in ordinary memory bit for bit."""
    rng = np.random.default_rng(n_in)
    n = 21
    X = rng.standard_normal((n, n_in)).astype(dtype)
    y = rng.integers(0, 3, n)
    order = rng.permutation(n).astype(np.int64)
    params = []
    for X_run in (array_at_page_end(X), X.copy()):
        model = _model(n_in, dtype)
        setup = make_setup(compiled, model, X_run, y, "softmax_cross_entropy",
                           optimizer=O.SGD(lr=0.1), batch_size=8)
        assert np.shares_memory(setup.X, X_run)        # read in place, not a copy
        out = compiled.run_epoch(setup, order, 0, n, False)
        assert out[1:3] == (n, 3)
        params.append([p.copy() for p in model.params])
    for got, want in zip(*params):
        np.testing.assert_array_equal(got, want)
