"""The next batch's prefetch in the compiled epoch (``nnlib/_kernels/train.pyx``, only for
batches of at most ``PREFETCH_MAX_BYTES`` of rows): a prefetch changes no value, so an
epoch with it always on and always off (``train._set_prefetch_max``) must give bitwise
the same loss sum, weights and counts, in float32 and float64, with rows whose width is
not a whole number of cache lines and a short last batch, below and above the default
bound.
"""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib.training import compiled_train
from tests._twin_fit import make_setup

train = compiled_train()

N, HIDDEN, C = 301, 9, 4
# (features, batch): 37 float64 features are 296 bytes (rows straddle lines); 700 x 100
# float32 is 280 KB a batch, above the default bound (the default then skips it)
CASES = [(37, 16), (37, 64), (700, 100)]
DTYPES = [np.float64, np.float32]
ALWAYS, NEVER = 1 << 62, -1


def _epoch(dtype, d, batch, prefetch_max):
    previous = train._set_prefetch_max(prefetch_max)
    try:
        model = nnlib.Sequential([
            nnlib.Dense(d, HIDDEN, "relu", dtype=dtype, random_state=0),
            nnlib.Dense(HIDDEN, C, "identity", dtype=dtype, random_state=1)])
        rng = np.random.default_rng(3)
        X, y = rng.standard_normal((N, d)), rng.integers(0, C, N)
        setup = make_setup(train, model, X, y, "softmax_cross_entropy",
                           optimizer=O.SGD(lr=0.05), batch_size=batch)
        out = train.run_epoch(setup, rng.permutation(N).astype(np.int64), 0)
        return out, [p.copy() for p in model.params]
    finally:
        train._set_prefetch_max(previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("d, batch", CASES, ids=[f"{d}x{b}" for d, b in CASES])
def test_prefetch_changes_no_value(d, batch, dtype):
    got, want = _epoch(dtype, d, batch, ALWAYS), _epoch(dtype, d, batch, NEVER)
    assert got[0] == want[0] and got[0][2] == -(-N // batch) and got[0][3] == 0
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        assert a.tobytes() == b.tobytes(), f"param {i} differs"


def test_the_hook_restores_the_default():
    default = train._set_prefetch_max(NEVER)
    assert train._set_prefetch_max(default) == NEVER
    assert default > 0 and train._set_prefetch_max(default) == default
