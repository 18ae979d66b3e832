"""The compiled step's screen of the squared-gradient state (session 38): a negative sum
or average (Adagrad's ``sum``, RMSprop's ``square_avg``, Adam's ``exp_avg_sq`` and
``max_exp_avg_sq``, SklearnAdam's ``vs``) written in place where the optimizer's own
check does not look -- rows nnlib's fits take through ``_state_rows``, an optimizer
unpickled from one whose state was written -- turned finite weights NaN at the next step
with no error (or, once later squares outweighed it, a wrong finite step). The bound
check that decides on the dry run now also reads those rows' sign bits, and the dry run
refuses a value below 0 with NonFiniteError naming the array, the slot and the element,
as the NumPy twin does. -0.0 (whose root is -0.0) and NaN are not refused."""
import pickle

import numpy as np
import pytest

from nnlib import optim
from nnlib._kernels import optim as K
from nnlib._reference import optim as R
from nnlib.exceptions import NonFiniteError

from tests.test_optim_state_hostile import SQUARED

DTYPES = [np.float32, np.float64]
IDS = ["float32", "float64"]
# (maker, slot name) of every rule with a squared slot, amsgrad's first slot too
RULES = {**SQUARED, "Adam-amsgrad-exp_avg_sq": (SQUARED["Adam-amsgrad"][0], "exp_avg_sq"),
         "RMSprop-centred-momentum": (lambda: optim.RMSprop(lr=0.01, momentum=0.9,
                                                            centered=True), "square_avg")}


def _stepped(make, dtype, sizes=((2, 3), (5,))):
    w = [np.linspace(-1, 1, int(np.prod(s))).reshape(s).astype(dtype) for s in sizes]
    opt = make()
    opt.step(w, [np.full_like(p, 0.1) for p in w])
    return opt, w


def _slot(opt, p, name):
    return opt._slot_names_of(p).index(name)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(RULES))
def test_a_negative_squared_state_in_rows_the_check_never_saw_is_refused(name, dtype):
    make, slot = RULES[name]
    opt, w = _stepped(make, dtype)
    rows = opt._state_rows(w)                   # a fit's rows: no in-place check
    assert not opt._state_exposed
    k = _slot(opt, w[1], slot)
    rows[1][k, 3] = -0.5
    before = [p.copy() for p in w] + [r.copy() for r in rows]
    with pytest.raises(NonFiniteError, match=rf"step 2: params\[1\] \(shape \(5,\)\): its "
                                             rf"state\['{slot}'\] holds -0.5 at \(3,\): "
                                             rf"a sum or average of squared gradients is "
                                             rf"never negative"):
        opt.step(w, [np.full_like(p, 0.1) for p in w])
    for a, b in zip(w + rows, before):          # nothing updated, no step counted
        np.testing.assert_array_equal(a, b)
    assert opt.t == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(SQUARED))
def test_an_unpickled_optimizer_with_a_negative_squared_state_refuses_its_step(name, dtype):
    make, slot = SQUARED[name]
    opt, w = _stepped(make, dtype)
    opt.state[w[0]][slot][1, 2] = -0.5
    w2, opt2 = pickle.loads(pickle.dumps((w, opt)))
    assert opt2._state_exposed                  # unpickling found it: checked steps
    with pytest.raises(NonFiniteError, match=rf"params\[0\] \(shape \(2, 3\)\): its "
                                             rf"state\['{slot}'\] holds -0.5 at \(1, 2\)"):
        opt2.step(w2, [np.full_like(p, 0.1) for p in w2])
    assert np.isfinite(w2[0]).all()


def _kernel_case(name, dtype, rng, n=(6, 300)):
    """(config, params, grads, states) of a stepped optimizer of rule ``name``."""
    make, _ = RULES[name]
    opt, w = _stepped(make, dtype, sizes=[(m,) for m in n])
    g = [rng.uniform(-1, 1, p.shape).astype(dtype) for p in w]
    return opt.config(), w, g, [r.copy() for r in opt._state_rows(w)]


def _both(config, params, grads, states, step):
    """The compiled optim_step_arrays and the twin's on copies: (outcome, arrays) each,
    the outcome the message of a NonFiniteError or None."""
    out = []
    for mod in (K, R):
        p = [a.copy() for a in params]
        s = [a.copy() for a in states]
        try:
            mod.optim_step_arrays(dict(config), p, grads, s, step, 1, 1 << 15)
            outcome = None
        except NonFiniteError as exc:
            outcome = str(exc)
        out.append((outcome, p + s))
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(RULES))
def test_the_kernel_and_its_twin_refuse_the_same_negative_state(name, dtype):
    rng = np.random.default_rng(3)
    config, w, g, st = _kernel_case(name, dtype, rng)
    assert K.squared_slots(config) == R.squared_slots(config)
    assert K.squared_slots(config)
    for k in K.squared_slots(config):
        for i, j in ((0, 0), (1, 299), (1, 150)):
            bad = [s.copy() for s in st]
            bad[i][k, j] = -np.finfo(dtype).tiny    # the least negative normal
            (got, arrays), (want, _) = _both(config, w, g, bad, 2)
            assert got is not None and got == want
            assert f"params[{i}]" in got and f"at ({j},)" in got
            for a, b in zip(arrays, w + bad):    # the compiled one wrote nothing
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(RULES))
@pytest.mark.parametrize("value", [-0.0, -np.nan, np.nan], ids=["-0.0", "-nan", "nan"])
def test_minus_zero_and_nan_in_a_squared_slot_step_as_the_twin(name, dtype, value):
    # -0.0 sets the sign bit (so the dry run runs) but is no negative value: sqrt(-0.0)
    # is -0.0 and adds nothing to eps; a NaN state is non-finite input, stepped to NaN
    # in its own element only
    rng = np.random.default_rng(4)
    config, w, g, st = _kernel_case(name, dtype, rng)
    for k in K.squared_slots(config):
        bad = [s.copy() for s in st]
        bad[1][k, 7] = value
        (got, arrays), (want, ref) = _both(config, w, g, bad, 2)
        assert got is None and want is None
        tol = 1e-5 if dtype == np.float32 else 1e-12
        # element 7 of params[1] aside: a NaN in max_exp_avg_sq is dropped by the
        # kernel's select and kept by the twin's np.maximum (a state the rule never
        # writes: see _adam in optim_rules.pxd.tp)
        keep = np.arange(w[1].size) != 7
        for a, b in zip(arrays, ref):
            if a.shape[-1] == w[1].size:
                a, b = a[..., keep], b[..., keep]
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        if value == 0:
            np.testing.assert_allclose(arrays[1], ref[1], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_a_negative_state_outweighed_by_the_gradient_is_refused_not_stepped(dtype):
    # Adagrad's sum of -0.5 plus a gradient of 1 squared is +0.5: no NaN comes out,
    # so the overflow dry run alone found nothing and the step went on from a sum
    # that is no sum of squares
    w = np.zeros(4, dtype)
    opt = optim.Adagrad([w], lr=0.1)
    opt.step([np.ones(4, dtype)])
    opt._state_rows([w])[0][0, 2] = -0.5
    with pytest.raises(NonFiniteError, match=r"state\['sum'\] holds -0.5 at \(2,\)"):
        opt.step([np.ones(4, dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_a_large_negative_state_is_refused_in_every_thread_chunk(dtype):
    # 1e6 elements take the threaded check (one chunk per thread) and its 1 MiB blocks
    n = 1_000_000
    w = np.zeros(n, dtype)
    opt = optim.Adam([w], lr=1e-3)
    g = np.full(n, 1e-2, dtype)
    opt.step([g], n_threads=2)
    rows = opt._state_rows([w])[0]
    for j in (0, n // 2 - 1, n // 2, n - 1):
        rows[1, j] = -1.0
        with pytest.raises(NonFiniteError, match=rf"holds -1.0 at \({j},\)"):
            opt.step([g], n_threads=2)
        rows[1, j] = 1e-6
    opt.step([g], n_threads=2)
    assert opt.t == 2 and np.isfinite(w).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(SQUARED))
def test_a_fit_with_an_unpickled_negative_state_is_refused_before_its_first_step(name,
                                                                                 dtype):
    # the compiled epoch reads the state rows itself: before, it stepped the weights
    # NaN at step 0, rewound them and named the state in a RuntimeWarning afterwards;
    # unpickling now looks at the squared slots once and keeps a wrong one checked
    import nnlib
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 3)).astype(dtype), np.arange(32) % 2
    model = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0, dtype=dtype),
                              nnlib.Dense(4, 2, random_state=1, dtype=dtype)])
    make, slot = SQUARED[name]
    opt = make()
    model.fit(X, y, optimizer=opt, epochs=1)
    opt.state[model.params[0]][slot][0, 1] = -2.0
    model2, opt2 = pickle.loads(pickle.dumps((model, opt)))
    before = [p.copy() for p in model2.params]
    with pytest.raises(NonFiniteError, match=rf"{type(opt).__name__}.fit: params\[0\] "
                                             rf"\(shape \(3, 4\)\): its state\['{slot}'\] "
                                             rf"holds -2.0 at \(0, 1\)"):
        model2.fit(X, y, optimizer=opt2, epochs=1)
    for p, q in zip(model2.params, before):
        np.testing.assert_array_equal(p, q)
    healthy, _ = _stepped(make, dtype)
    assert not pickle.loads(pickle.dumps(healthy))._state_exposed   # no cost otherwise
