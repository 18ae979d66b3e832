"""The fit path's fast paths (the compiled seed orders, the compiled label check, the
input and scalar checks' common cases) train to bitwise the same weights as the slow
paths they skip, and bad input still raises the same clear errors."""
import numpy as np
import pytest

import nnlib
from nnlib.layers import Dropout
from nnlib.optim import SGD

DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


def _data(dtype, n=40, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(dtype), rng.integers(0, k, n)


def _model(dtype, d=6, k=3, dropout=False):
    layers = [nnlib.Dense(d, 8, "relu", dtype=dtype, random_state=1)]
    if dropout:
        layers.append(Dropout(0.2))
    layers.append(nnlib.Dense(8, k, dtype=dtype, random_state=2))
    return nnlib.Sequential(layers)


def _fit(X, y, random_state, dtype, dropout=False, **kw):
    model = _model(dtype, X.shape[1], dropout=dropout)
    model.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, batch_size=kw.pop("batch_size", 1),
              random_state=random_state, n_threads=1, **kw)
    return [p.copy() for p in model.params]


def _assert_bitwise(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p.view(np.uint8), q.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 3, 2**40 + 1])
def test_int_seed_trains_as_its_generator(dtype, seed):
    X, y = _data(dtype)
    _assert_bitwise(_fit(X, y, seed, dtype), _fit(X, y, np.random.default_rng(seed), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_int_seed_with_dropout_trains_as_its_generator(dtype):
    X, y = _data(dtype)
    _assert_bitwise(_fit(X, y, 4, dtype, dropout=True),
                    _fit(X, y, np.random.default_rng(4), dtype, dropout=True))
