"""The torch.optim shape of nnlib.optim: parameter groups, identity-keyed state, step forms,
maximize, state_dict, and how fit uses an optimizer -- checked against torch.optim where
it is installed."""
import copy
import pickle

import numpy as np
import pytest

import nnlib
import nnlib.optim as O
from nnlib import NonFiniteError, ShapeError
from tests.test_optim import CASES, TORCH_CASES

STEPS = 25
TORCH_IDS = [c[0] for c in TORCH_CASES]


def _grad(p, t):
    """A deterministic gradient of the array's current values (so trajectories couple)."""
    return np.cos(3.0 * p + t) + 0.1 * p


def _params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(4).astype(dtype),
            rng.standard_normal(5).astype(dtype)]


def _torch_run(torch, tc, params, steps, group_kw=None, **kw):
    """Run torch.optim class ``tc`` on copies of ``params`` for ``steps`` steps; return
    (arrays, optimizer)."""
    ts = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    if group_kw is None:
        spec = ts
    else:
        spec = [{"params": ts[:2], **group_kw}, {"params": ts[2:]}]
    opt = getattr(torch.optim, tc)(spec, foreach=False, **kw)
    for t in range(steps):
        for tt in ts:
            tt.grad = torch.from_numpy(_grad(tt.detach().numpy(), t))
        opt.step()
    return [tt.detach().numpy() for tt in ts], opt


def _nnlib_run(cls, params, steps, group_kw=None, t0=0, opt=None, **kw):
    if opt is None:
        spec = params if group_kw is None else [{"params": params[:2], **group_kw},
                                                {"params": params[2:]}]
        opt = cls(spec, **kw)
    for t in range(t0, t0 + steps):
        opt.step([_grad(p, t) for p in params])
    return opt


# ---- identity-keyed state ----------------------------------------------------------------

def test_swapped_order_keeps_each_arrays_state():
    """Before: state by position, so step([a, b]) then step([b, a]) swapped Adam's
    moments."""
    a, b = _params()[:2]
    a2, b2 = a.copy(), b.copy()
    opt, ref_a, ref_b = O.Adam(lr=0.1), O.Adam([a2], lr=0.1), O.Adam([b2], lr=0.1)
    for t in range(6):
        pair = [a, b] if t % 2 == 0 else [b, a]
        opt.step(pair, [_grad(p, t) for p in pair])
        ref_a.step([_grad(a2, t)])
        ref_b.step([_grad(b2, t)])
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)


def test_state_of_a_dead_array_is_dropped_and_never_inherited():
    opt = O.Adam(lr=0.1)
    keep = np.ones(3)
    opt.step([keep], [np.ones(3)])              # adopted: its group holds it
    for _ in range(3):
        tmp = np.ones(3)
        opt.step([tmp], [np.ones(3)])
        assert opt.state[tmp]["step"] == 1      # never a previous array's count
        del tmp
    assert len(opt.state) == 1 and keep in opt.state


def test_state_views_are_live_and_named_as_torch():
    w = np.zeros(2)
    opt = O.Adam([w], lr=0.1, amsgrad=True)
    opt.step([np.ones(2)])
    s = opt.state[w]
    assert sorted(s) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    s["exp_avg"][...] = 0.0                     # a view: the optimizer sees it
    assert (opt.state_arrays([w])[0][0] == 0).all()
    with pytest.raises(KeyError):
        opt.state[np.zeros(2)]


# ---- groups -------------------------------------------------------------------------------

def test_groups_fill_defaults_and_attribute_writes_reach_every_group():
    a, b = np.ones(2), np.ones(3)
    opt = O.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    opt.step([np.ones(2), np.ones(3)])
    np.testing.assert_array_equal(a, [0.5, 0.5])
    np.testing.assert_allclose(b, 0.9)
    opt.lr = 0.01                               # what a schedule writes
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01] == [opt.defaults["lr"]] * 2
    c = np.ones(1)
    opt.add_param_group({"params": c, "momentum": 0.0})
    assert opt.param_groups[2]["lr"] == 0.01 and opt.param_groups[2]["momentum"] == 0.0


def test_grads_may_come_per_group_and_none_skips():
    a, b, c = np.ones(2), np.ones(2), np.ones(2)
    opt = O.SGD([{"params": [a, b]}, {"params": [c], "lr": 1.0}], lr=0.5)
    opt.step([[np.ones(2), None], [np.ones(2)]])
    np.testing.assert_array_equal(a, [0.5, 0.5])
    np.testing.assert_array_equal(b, [1.0, 1.0])            # no gradient: not stepped
    np.testing.assert_array_equal(c, [0.0, 0.0])
    assert b not in opt.state and opt.state[a]["step"] == 1


def test_closure_is_called_once_and_its_loss_returned():
    w = np.array([3.0])
    calls = []

    def closure():
        calls.append(1)
        return float(w[0] ** 2), [2 * w]
    opt = O.SGD([w], lr=0.25)
    assert opt.step(closure) == 9.0 and calls == [1]
    assert opt.step(closure=closure) == 2.25
    np.testing.assert_array_equal(w, [0.75])


BAD_GROUPS = [
    ("empty", lambda: O.SGD([], lr=0.1), ValueError, "empty parameter list"),
    ("number-first", lambda: O.Adam(0.1), TypeError, r"Adam\(lr=0.1\)"),
    ("set", lambda: O.SGD({np.ones(1).tobytes()}, lr=0.1), TypeError, "list"),
    ("twice", lambda: O.SGD([{"params": [_P]}, {"params": [_P]}]), ValueError,
     "more than one parameter group"),
    ("no-params-key", lambda: O.SGD([{"lr": 0.1}]), ValueError, "'params'"),
    ("bad-group-value", lambda: O.SGD([{"params": [_P], "momentum": 2.0}]), ValueError,
     "momentum must be < 1"),
    ("int-array", lambda: O.SGD([np.ones(2, dtype=int)]), nnlib.DTypeError,
     "float32 or float64"),
]
_P = np.ones(2)


@pytest.mark.parametrize("name, make, exc, words", BAD_GROUPS, ids=[c[0] for c in BAD_GROUPS])
def test_bad_groups_raise(name, make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_step_without_parameters_says_what_to_do():
    with pytest.raises(TypeError, match="holds no parameters"):
        O.Adam().step([np.ones(2)])
    with pytest.raises(ValueError, match="got 1 grads for 2 parameters"):
        O.Adam([np.ones(2), np.ones(3)]).step([np.ones(2)])


def test_an_overflow_in_one_group_leaves_every_group_untouched():
    a, b = np.ones(3), np.ones(3)
    opt = O.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.step([np.ones(3), np.ones(3)])
    before = [a.copy(), b.copy()] + [s.copy() for s in opt.state_arrays([a, b])]
    with pytest.raises(NonFiniteError, match="nothing was updated"):
        opt.step([np.ones(3), np.full(3, 1e300)])
    after = [a, b] + opt.state_arrays([a, b])
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)
    assert opt.t == 1


# ---- state_dict ---------------------------------------------------------------------------

CLASSES = [O.SGD, O.Adagrad, O.RMSprop, O.Adam, O.AdamW, O.NotesMomentum, O.NotesAdaGrad,
           O.SklearnSGD, O.SklearnAdam]
RICH = {O.SGD: dict(momentum=0.9, nesterov=True), O.RMSprop: dict(momentum=0.5,
                                                                  centered=True),
        O.Adam: dict(amsgrad=True), O.Adagrad: dict(initial_accumulator_value=0.1)}



# torch's optimizer.state[p] is the optimizer's own dict; nnlib's a view built per read,
# so ported code resetting a momentum by assignment (state[p]["momentum_buffer"] =
# zeros) changed nothing and training went on with the old buffer, silently (probe35).
# Setting a key is refused, saying what works; in-place writes into its arrays work.
def test_assigning_into_optimizer_state_is_refused_and_in_place_writes_work():
    w = np.ones(3)
    opt = O.SGD([w], lr=0.1, momentum=0.9)
    for edit in (lambda s: s.__setitem__("momentum_buffer", np.zeros(3)),
                 lambda s: s.update(step=0), lambda s: s.pop("step", None),
                 lambda s: s.setdefault("momentum_buffer", np.zeros(3))):
        with pytest.raises(TypeError, match="read-only view.*in place"):
            edit(opt.state[w])                          # before the first step: {}
    opt.step([np.ones(3)])
    with pytest.raises(TypeError, match="read-only view"):
        opt.state[w]["momentum_buffer"] = np.zeros(3)
    assert opt.state[w]["momentum_buffer"].tolist() == [1.0, 1.0, 1.0]
    opt.state[w]["momentum_buffer"][...] = 0.0          # the documented way
    assert opt.state[w]["momentum_buffer"].tolist() == [0.0, 0.0, 0.0]
    kept = copy.deepcopy(opt.state[w])                  # a copy is a plain dict
    kept["step"] = 7
    assert opt.state[w]["step"] == 1

@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_state_dict_round_trip_resumes_bit_identically(cls, dtype):
    kw = dict(lr=0.05, **RICH.get(cls, {}))
    params = _params(dtype=dtype)
    opt = _nnlib_run(cls, params, 5, group_kw={"lr": 0.02}, **kw)
    sd = opt.state_dict()
    sd = pickle.loads(pickle.dumps(sd))         # nothing in it refers to the live arrays
    copies = [p.copy() for p in params]
    resumed = cls([{"params": copies[:2]}, {"params": copies[2:]}], lr=0.5)
    resumed.load_state_dict(sd)
    assert resumed.param_groups[0]["lr"] == 0.02 and resumed.param_groups[1]["lr"] == 0.05
    _nnlib_run(cls, params, 5, t0=5, opt=opt)
    _nnlib_run(cls, copies, 5, t0=5, opt=resumed)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p, q)
    for s, r in zip(opt.state_arrays(params), resumed.state_arrays(copies)):
        np.testing.assert_array_equal(s, r)


def test_state_dict_layout_is_torchs():
    w, b = np.zeros((2, 3)), np.zeros(3)
    opt = O.Adam([w, b], lr=0.1)
    opt.step([np.ones((2, 3)), None])
    sd = opt.state_dict()
    assert list(sd["state"]) == [0]                          # b has not stepped
    assert sd["state"][0]["exp_avg"].shape == (2, 3) and sd["state"][0]["step"] == 1
    assert sd["param_groups"] == [dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8,
                                       weight_decay=0.0, amsgrad=False, maximize=False,
                                       params=[0, 1])]
    sd["state"][0]["exp_avg"][...] = 7.0                     # a copy
    assert opt.state[w]["exp_avg"].max() < 1


BAD_STATE = [
    ("groups", lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])),
     ValueError, "2 parameter groups"),
    ("shape", lambda sd: sd["state"][0].update(exp_avg=np.zeros(5)), ValueError,
     r"shape \(5,\)"),
    ("slot", lambda sd: sd["state"][0].update(momentum_buffer=np.zeros((3, 4))),
     ValueError, "does not keep"),
    ("missing", lambda sd: sd["state"][0].pop("exp_avg_sq"), ValueError, "lacks"),
    ("step", lambda sd: sd["state"][0].update(step=-1), ValueError, "integer >= 0"),
    ("index", lambda sd: sd["state"].update({9: {}}), ValueError, "index 9"),
    ("hyper", lambda sd: sd["param_groups"][0].update(eps=0.0), ValueError,
     "eps must be > 0"),
    ("keys", lambda sd: sd.pop("state"), ValueError, "'state' and 'param_groups'"),
]


@pytest.mark.parametrize("name, spoil, exc, words", BAD_STATE, ids=[c[0] for c in BAD_STATE])
def test_bad_state_dict_is_refused_and_changes_nothing(name, spoil, exc, words):
    params = _params()
    opt = _nnlib_run(O.Adam, params, 2, lr=0.1)
    sd = opt.state_dict()
    before = [s.copy() for s in opt.state_arrays(params)]
    spoil(sd)
    with pytest.raises(exc, match=words):
        opt.load_state_dict(sd)
    for s, r in zip(before, opt.state_arrays(params)):
        np.testing.assert_array_equal(s, r)


# ---- against torch.optim ------------------------------------------------------------------

@pytest.mark.parametrize("name, cls, kw, tc, sk", TORCH_CASES, ids=TORCH_IDS)
def test_groups_match_torch(name, cls, kw, tc, sk):
    torch = pytest.importorskip("torch")
    group_kw = {"lr": kw["lr"] / 2, "weight_decay": 0.05}
    want, _ = _torch_run(torch, tc, _params(), STEPS, group_kw=group_kw, **kw)
    params = _params()
    _nnlib_run(cls, params, STEPS, group_kw=group_kw, **kw)
    for p, q in zip(params, want):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, cls, kw, tc, sk", TORCH_CASES, ids=TORCH_IDS)
def test_maximize_matches_torch(name, cls, kw, tc, sk):
    torch = pytest.importorskip("torch")
    want, _ = _torch_run(torch, tc, _params(), STEPS, maximize=True, **kw)
    params = _params()
    _nnlib_run(cls, params, STEPS, maximize=True, **kw)
    for p, q in zip(params, want):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def _torch_slot_values(torch_state):
    return {k: np.asarray(v) for k, v in torch_state.items() if v is not None}


@pytest.mark.parametrize("name, cls, kw, tc, sk", TORCH_CASES, ids=TORCH_IDS)
def test_state_dict_values_match_torchs_and_load_from_it(name, cls, kw, tc, sk):
    torch = pytest.importorskip("torch")
    _, topt = _torch_run(torch, tc, _params(), STEPS, group_kw={"lr": kw["lr"] / 2}, **kw)
    tsd = topt.state_dict()
    params = _params()
    opt = _nnlib_run(cls, params, STEPS, group_kw={"lr": kw["lr"] / 2}, **kw)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [g["params"]
                                                         for g in tsd["param_groups"]]
    for ours, theirs in zip(sd["param_groups"], tsd["param_groups"]):
        assert {k: v for k, v in theirs.items() if k in ours} == ours
    # torch keeps no state for SGD without momentum; nnlib keeps every array's step
    assert set(tsd["state"]) <= set(sd["state"])
    assert all(set(sd["state"][i]) == {"step"} for i in set(sd["state"]) - set(tsd["state"]))
    for i, theirs in tsd["state"].items():
        theirs = _torch_slot_values(theirs)
        ours = sd["state"][i]
        assert set(theirs) <= set(ours) and set(ours) - set(theirs) <= {"step"}
        for k, v in theirs.items():
            np.testing.assert_allclose(ours[k], v, rtol=1e-10, atol=1e-13, err_msg=k)
    # torch's own state_dict resumes an nnlib optimizer where torch would continue
    want, topt2 = _torch_run(torch, tc, _params(), STEPS, group_kw={"lr": kw["lr"] / 2},
                             **kw)
    resumed_params = [w.copy() for w in want]
    resumed = cls([{"params": resumed_params[:2]}, {"params": resumed_params[2:]}], **kw)
    resumed.load_state_dict(topt2.state_dict())
    _both_go_on(torch, topt2, cls, resumed, resumed_params)


def _both_go_on(torch, topt, cls, resumed, resumed_params, steps=5):
    """Step torch's ``topt`` and the nnlib optimizer ``resumed`` (loaded from its
    state_dict, over copies of its arrays) ``steps`` more times: the arrays agree."""
    ts = [p for g in topt.param_groups for p in g["params"]]
    for t in range(STEPS, STEPS + steps):
        for tt in ts:
            tt.grad = torch.from_numpy(_grad(tt.detach().numpy(), t))
        topt.step()
    _nnlib_run(cls, resumed_params, steps, t0=STEPS, opt=resumed)
    for p, tt in zip(resumed_params, ts):
        np.testing.assert_allclose(p, tt.detach().numpy(), rtol=1e-10, atol=1e-13)


TENSOR_LR = [("sgd_momentum", O.SGD, "SGD", {"momentum": 0.9}),
             ("adam", O.Adam, "Adam", {})]


@pytest.mark.parametrize("name, cls, tc, kw", TENSOR_LR, ids=[c[0] for c in TENSOR_LR])
def test_a_state_dict_with_a_tensor_lr_loads_as_its_number(name, cls, tc, kw):
    # torch allows a Tensor lr: its state_dict keeps the 0-d tensor (and a scheduler's
    # "initial_lr", a clone of it), which load_state_dict refused as "not a real
    # number"; it resumes where torch goes on
    torch = pytest.importorskip("torch")
    lr = torch.tensor(0.05, dtype=torch.float64)
    want, topt = _torch_run(torch, tc, _params(), STEPS, lr=lr, **kw)
    torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5)    # its initial_lr
    sd = topt.state_dict()
    assert isinstance(sd["param_groups"][0]["lr"], torch.Tensor)
    assert isinstance(sd["param_groups"][0]["initial_lr"], torch.Tensor)
    resumed_params = [w.copy() for w in want]
    resumed = cls(resumed_params, lr=0.5, **kw)
    resumed.load_state_dict(sd)
    group = resumed.param_groups[0]
    assert type(group["lr"]) is float and group["lr"] == group["initial_lr"] == 0.05
    _both_go_on(torch, topt, cls, resumed, resumed_params)


def test_a_one_element_array_lr_loads_and_a_longer_one_is_named():
    # torch's constructors take a Tensor lr of one element, whatever its shape
    # (lr.numel() != 1 is refused), and its state_dict keeps it as given
    opt = O.Adam(_params(), lr=0.1)
    sd = opt.state_dict()
    for one, value in ((np.array(0.02), 0.02), (np.array([0.03]), 0.03),
                       (np.full((1, 1), 0.04), 0.04)):
        sd["param_groups"][0]["lr"] = one
        opt.load_state_dict(sd)
        assert type(opt.lr) is float and opt.lr == value
    for bad in (np.full(2, 0.05), np.zeros((0,))):
        sd["param_groups"][0]["lr"] = bad
        with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\] must be a "
                                             r"number or a tensor or array of one "
                                             r"element.*shape \("):
            opt.load_state_dict(sd)
    assert opt.lr == 0.04                                 # refused whole


def test_a_torch_state_dict_with_a_one_element_tensor_lr_loads():
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    topt = torch.optim.SGD([p], lr=torch.tensor([0.05]), momentum=0.9)
    p.grad = torch.ones(3, dtype=torch.float64)
    topt.step()
    opt = O.SGD([np.ones(3)], lr=0.5, momentum=0.9)
    opt.load_state_dict(topt.state_dict())
    assert opt.lr == pytest.approx(0.05)
    sd = topt.state_dict()
    sd["param_groups"][0]["lr"] = torch.tensor([0.05, 0.05])
    with pytest.raises(ValueError, match="one element.*shape \\(2,\\)"):
        opt.load_state_dict(sd)


# ---- the optimizer in fit -----------------------------------------------------------------

def _model_and_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    model = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                              nnlib.Dense(4, 2, random_state=1)])
    return model, X, y


def test_fit_with_an_optimizer_built_on_the_model_equals_one_built_without():
    model, X, y = _model_and_data()
    twin = nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=0),
                             nnlib.Dense(4, 2, random_state=1)])
    opt = O.Adam(model.params, lr=0.01)
    model.fit(X, y, optimizer=opt, epochs=3, batch_size=8, random_state=0)
    twin_opt = O.Adam(lr=0.01)
    twin.fit(X, y, optimizer=twin_opt, epochs=3, batch_size=8, random_state=0)
    for p, q in zip(model.params, twin.params):
        np.testing.assert_array_equal(p, q)
    assert twin_opt.param_groups[0]["params"][0] is twin.params[0]     # adopted
    assert [opt.state[p]["step"] for p in model.params] == [15] * 4
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2, 3]


def test_fit_resumes_bit_identically_from_a_state_dict():
    model, X, y = _model_and_data()
    opt = O.Adam(model.params, lr=0.01)
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=8, random_state=0)
    clone = pickle.loads(pickle.dumps(model))
    opt2 = O.Adam(clone.params)
    opt2.load_state_dict(opt.state_dict())
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=8, random_state=1)
    clone.fit(X, y, optimizer=opt2, epochs=2, batch_size=8, random_state=1)
    for p, q in zip(model.params, clone.params):
        np.testing.assert_array_equal(p, q)


def test_fit_refuses_maximize_naming_the_group():
    model, X, y = _model_and_data()
    with pytest.raises(ValueError, match="maximize"):
        model.fit(X, y, optimizer=O.SGD(model.params, lr=0.1, maximize=True))
    mixed = O.SGD([{"params": model.params[:2]},
                   {"params": model.params[2:], "maximize": True}], lr=0.1)
    with pytest.raises(ValueError, match=r"param_groups\[1\] has maximize=True"):
        model.fit(X, y, optimizer=mixed)
    two_lrs = O.SGD([{"params": model.params[:2], "lr": 0.5},
                     {"params": model.params[2:]}], lr=0.1)
    with pytest.raises(ValueError, match="different hyper-parameters"):
        two_lrs.config(model.params)      # one config cannot describe two groups
    same = O.SGD([{"params": model.params[:2]}, {"params": model.params[2:]}], lr=0.1)
    model.fit(X, y, optimizer=same)                       # equal groups train as one


def test_fit_refuses_arrays_with_different_step_counts():
    model, X, y = _model_and_data()
    opt = O.Adam(model.params, lr=0.01)
    opt.step([np.zeros_like(p) for p in model.params[:2]] + [None, None])
    with pytest.raises(ValueError, match="different numbers of steps"):
        model.fit(X, y, optimizer=opt)
    with pytest.raises(ShapeError):                       # unrelated: still a ShapeError
        O.Adam([np.ones(2)]).step([np.ones(3)])


# ---- saved with the model -----------------------------------------------------------------

@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_model_saved_with_its_optimizer_resumes_bit_identically(cls, tmp_path):
    model, X, y = _model_and_data()
    opt = cls([{"params": model.params[2:]}, {"params": model.params[:2]}],
              lr=0.01, **RICH.get(cls, {}))
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=8, random_state=0)
    path = tmp_path / "m.npz"
    model.save(path, include_optimizer=True)
    loaded = nnlib.load(path)
    assert type(loaded.optimizer) is cls and loaded.optimizer.t == opt.t == 10
    assert loaded.optimizer.param_groups[0]["params"][0] is loaded.params[2]
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=8, random_state=1)
    loaded.fit(X, y, optimizer=loaded.optimizer, epochs=2, batch_size=8, random_state=1)
    for p, q in zip(model.params, loaded.params):
        np.testing.assert_array_equal(p, q)


def test_save_refuses_other_extensions_and_a_missing_optimizer(tmp_path):
    model, X, y = _model_and_data()
    for name in ("m.h5", "m.pt", "m"):
        with pytest.raises(ValueError, match="must end in .npz"):
            model.save(tmp_path / name)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="no optimizer"):
        model.save(tmp_path / "m.npz", include_optimizer=True)
    model.save(tmp_path / "M.NPZ")
    assert nnlib.load(tmp_path / "M.NPZ").optimizer is None


SPOILED = [
    ("class", lambda h: h["optimizer"].update({"class": "os.system"}), "unknown class"),
    ("param-range", lambda h: h["optimizer"]["param_groups"][0]["params"].append(9),
     "lists parameters"),
    ("param-twice", lambda h: h["optimizer"]["param_groups"][0]["params"].append(0),
     "lists parameters"),
    ("slot-name", lambda h: h["optimizer"]["state"][0]["slots"].__setitem__(0, "../x"),
     "malformed"),
    ("step", lambda h: h["optimizer"]["state"][0].update(step=-3), "malformed"),
    ("arrays", lambda h: h["arrays"].pop(), "declares arrays"),
    ("no-section", lambda h: h.pop("optimizer"), "do not match its arrays"),
    ("hyper", lambda h: h["optimizer"]["param_groups"][0].update(lr=-1.0), "lr must be"),
]


@pytest.mark.parametrize("name, spoil, words", SPOILED, ids=[c[0] for c in SPOILED])
def test_a_spoiled_optimizer_section_is_refused(name, spoil, words, tmp_path):
    from nnlib import _format
    model, X, y = _model_and_data()
    model.fit(X, y, optimizer=O.Adam(lr=0.01), epochs=1)
    header, arrays = _format.model_arrays(model, model.optimizer)
    spoil(header)
    arrays = {k: arrays[k] for k in header["arrays"]}
    header["sha256"] = _format.digest(arrays.values())
    path = tmp_path / "m.npz"
    _format.write(path, header, arrays)
    with pytest.raises(ValueError, match=words):
        nnlib.load(path)


def test_readme_optimizer_example_runs():
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md")).read()
    block = text.split("## Optimizers and schedules")[1].split("```python\n")[1]
    ns = {}
    exec(block.split("```")[0], ns)
    assert ns["sched"].epoch == 5 * 57 and ns["loss"] < 0.5
    assert ns["opt"].param_groups[1]["weight_decay"] == 0.0


# ---- zero_grad: a no-op for ported torch loops ------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_zero_grad_changes_nothing(case):
    _, cls, kw = case[:3]
    params = _params()
    opt = _nnlib_run(cls, params, 3, **kw)
    before = pickle.dumps((params, opt.state_dict()))
    assert opt.zero_grad() is None
    opt.zero_grad(set_to_none=False)
    assert pickle.dumps((params, opt.state_dict())) == before


@pytest.mark.parametrize("case", TORCH_CASES, ids=TORCH_IDS)
def test_a_ported_torch_loop_with_zero_grad_follows_torch(case):
    """torch's loop and closure call zero_grad; kept in the port, they change nothing,
    and the gradients passed to step give torch's trajectory."""
    torch = pytest.importorskip("torch")
    _, cls, kw, tc = case[:4]
    params = _params()
    want, _ = _torch_run(torch, tc, params, STEPS, **kw)
    opt = cls(params, **kw)
    for t in range(STEPS):
        def closure(t=t):
            opt.zero_grad()
            return 0.0, [_grad(p, t) for p in params]
        if t % 2:
            opt.step(closure)
        else:
            opt.zero_grad()
            opt.step([_grad(p, t) for p in params])
    for p, w in zip(params, want):
        np.testing.assert_allclose(p, w, rtol=1e-10, atol=1e-12)


def test_torchs_bare_step_asks_for_the_gradients():
    opt = O.SGD([np.zeros(2)], lr=0.1)
    opt.zero_grad()
    with pytest.raises(TypeError, match=r"step needs the gradients.*no \.grad"):
        opt.step()


def test_state_reads_as_torchs_defaultdict():
    # session 34: opt.state[p] before p's first step raised KeyError where torch's
    # defaultdict gives {}, and state.items()/.get()/.values() (torch's dict) were missing
    w, v = np.zeros(2), np.zeros(3)
    opt = O.Adam([w, v], lr=0.1)
    assert opt.state[w] == {} and w not in opt.state and len(opt.state) == 0
    assert opt.state.get(w) is None and opt.state.get(w, 5) == 5
    opt.step([np.ones(2), np.ones(3)])
    assert [p is q for p, q in zip(opt.state.keys(), [w, v])] == [True, True]
    assert [s["step"] for s in opt.state.values()] == [1, 1]
    items = opt.state.items()
    assert items[0][0] is w
    assert np.array_equal(items[0][1]["exp_avg"], opt.state[w]["exp_avg"])
    assert opt.state.get(v)["step"] == 1
    with pytest.raises(KeyError, match="in none of the optimizer's parameter groups"):
        opt.state[np.zeros(2)]
