"""optimizer.step over several parameter groups of arrays with more than one element:
the one-call path compared the groups with ==, which compares their "params" lists and
raised "The truth value of an array with more than one element is ambiguous" (found
reviewing probe36; the tests of groups used one-element arrays)."""
import numpy as np
import pytest

import nnlib.optim as O

CLASSES = [O.SGD, O.Adagrad, O.RMSprop, O.Adam, O.AdamW, O.NotesMomentum,
           O.NotesAdaGrad, O.SklearnSGD, O.SklearnAdam]
DTYPES = [np.float32, np.float64]


def _arrays(dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in [(3, 2), (4,)]]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
@pytest.mark.parametrize("how", ["init", "add_param_group"])
@pytest.mark.parametrize("lr2", [0.01, 0.003], ids=["same-lr", "own-lr"])
def test_groups_step_as_one_optimizer_per_group(cls, dtype, how, lr2):
    # groups of equal hyper-parameters are the ones == compared down to their arrays
    p, q = _arrays(dtype, 0)
    g = _arrays(dtype, 1)
    if how == "init":
        both = cls([{"params": [p]}, {"params": [q], "lr": lr2}], lr=0.01)
    else:
        both = cls([p], lr=0.01)
        both.add_param_group({"params": [q], "lr": lr2})
    alone_p, alone_q = p.copy(), q.copy()
    one, two = cls([alone_p], lr=0.01), cls([alone_q], lr=lr2)
    for _ in range(3):
        both.step(g)
        one.step([g[0]])
        two.step([g[1]])
    np.testing.assert_array_equal(p, alone_p)
    np.testing.assert_array_equal(q, alone_q)
