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


def _steps(both, singles, grads, n):
    """``n`` steps of the grouped optimizer and of one optimizer per array."""
    for _ in range(n):
        both.step(grads)
        for opt, g in zip(singles, grads):
            opt.step([g])


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
    _steps(both, [cls([alone_p], lr=0.01), cls([alone_q], lr=lr2)], g, 3)
    np.testing.assert_array_equal(p, alone_p)
    np.testing.assert_array_equal(q, alone_q)


def _no_general_path(opt):
    def refuse(*args, **kwargs):
        raise AssertionError("the step took the per-array path")
    opt._entry = refuse         # made per array by the general path only


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_groups_of_equal_settings_step_in_one_call(cls, dtype):
    # session 37: the one-call path now compares the groups' settings (their cached
    # configs), not the dicts with their params; before, list.count's ValueError on
    # arrays of several elements sent such groups down the per-array path
    p, q = _arrays(dtype, 0)
    g = _arrays(dtype, 1)
    both = cls([{"params": [p]}, {"params": [q]}], lr=0.01)
    alone_p, alone_q = p.copy(), q.copy()
    singles = [cls([alone_p], lr=0.01), cls([alone_q], lr=0.01)]
    _steps(both, singles, g, 1)                 # makes the state
    _no_general_path(both)
    _steps(both, singles, g, 2)
    np.testing.assert_array_equal(p, alone_p)
    np.testing.assert_array_equal(q, alone_q)
