"""``Sequential.fit`` with parameter groups whose hyper-parameters differ, as PyTorch users
write them (``AdamW([{"params": weights, "weight_decay": 0.01}, {"params": biases,
"weight_decay": 0.0}])``, a lower lr for the first layer): the compiled epoch steps each
array by its own group's config (tests/_param_groups.py has the groups, one optimizer
of each rule kind).

* fit equals nnlib's own per-batch loop (``loss_and_grads`` then ``opt.step``) with the
  same groups: bit for bit, except where a group is plain SGD (momentum 0), whose update
  the epoch fuses into the weight-gradient product (rounding apart);
* fit equals ``torch.optim`` with the same groups to 1e-12 in float64, also with a
  schedule (torch's scheduler scales each group's lr) stepped per epoch or per batch;
* the state layout is each group's own (no momentum buffer where momentum is 0);
* ``state_dict`` and a model saved with its optimizer resume bit-identically;
* the estimators' one-group training and ``maximize`` are unchanged (tests/test_optim_api.py).
"""
import numpy as np
import pytest

import nnlib
from nnlib import optim as O
from nnlib import schedules as S
from tests._param_groups import GROUPED, SPECS, TORCH_CLASSES, make

DTYPES = [np.float32, np.float64]
N, EPOCHS, BATCH = 40, 3, 8


def _model(dtype=np.float64):
    return nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=0, dtype=dtype),
                             nnlib.Dense(5, 4, "elu", random_state=1, dtype=dtype),
                             nnlib.Dense(4, 2, random_state=2, dtype=dtype)])


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 3))
    return X, (X[:, 0] + 0.3 * rng.standard_normal(N) > 0).astype(int)


def _plain_sgd_somewhere(opt, params):
    return any(c["kind"] == O.SGD.kind and c["momentum"] == 0.0
               for c in opt.configs(params))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name, build", GROUPED, ids=[g[0] for g in GROUPED])
def test_fit_with_groups_equals_stepping_per_batch(name, build, dtype):
    X, y = _data()
    model, loop = _model(dtype), _model(dtype)
    opt, loop_opt = build(model.params), build(loop.params)
    model.fit(X, y, optimizer=opt, epochs=EPOCHS, batch_size=BATCH, random_state=0,
              n_threads=1)
    rng = np.random.default_rng(0)           # fit's permutation per epoch
    for _ in range(EPOCHS):
        order = rng.permutation(N)
        for start in range(0, N, BATCH):
            rows = order[start:start + BATCH]
            _, grads = loop.loss_and_grads(X[rows].astype(dtype), y[rows])
            loop_opt.step(loop.params, grads)
    assert opt.t == loop_opt.t == EPOCHS * N // BATCH
    for p, q in zip(model.params, loop.params):
        if _plain_sgd_somewhere(opt, model.params):
            np.testing.assert_allclose(p, q, rtol=0,
                                       atol=64 * np.finfo(dtype).eps * np.abs(q).max())
        else:
            np.testing.assert_array_equal(p, q)
    for p, q in zip(model.params, loop.params):     # each array's state of its group
        assert sorted(opt.state[p]) == sorted(loop_opt.state[q])
        for slot, value in opt.state[p].items():
            if slot != "step":
                np.testing.assert_allclose(value, loop_opt.state[q][slot], rtol=1e-4,
                                           atol=1e-6)


def test_a_group_without_momentum_keeps_no_momentum_buffer():
    X, y = _data()
    model = _model()
    opt = make(SPECS[0], model.params)           # SGD, momentum 0.9 but not the biases
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=BATCH, random_state=0)
    W1, b1, W2, b2, W3, b3 = model.params
    assert sorted(opt.state[W1]) == ["momentum_buffer", "step"]
    assert opt.state[b1] == {"step": N // BATCH} and opt.state[b3] == {"step": N // BATCH}


# ---------------------------------------------------------------- against torch.optim

def _torch_fit(torch, spec, params, X, y, sched=None, per_batch=False):
    """The model's forward pass, loss and mini-batches in torch, with torch.optim's
    optimizer of ``spec`` (and scheduler ``sched(opt)``) over the same arrays."""
    F = torch.nn.functional
    ts = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = make(spec, ts, torch.optim)
    scheduler = sched(opt) if sched is not None else None
    Xt, yt = torch.tensor(X), torch.tensor(y)
    rng = np.random.default_rng(0)
    for _ in range(EPOCHS):
        order = rng.permutation(N)
        for start in range(0, N, BATCH):
            rows = torch.tensor(order[start:start + BATCH])
            h = torch.tanh(Xt[rows] @ ts[0] + ts[1])
            h = F.elu(h @ ts[2] + ts[3])
            loss = F.cross_entropy(h @ ts[4] + ts[5], yt[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if scheduler is not None and per_batch:
                scheduler.step()
        if scheduler is not None and not per_batch:
            scheduler.step()
    return [t.detach().numpy() for t in ts]


TORCH_SPECS = [s for s in SPECS if s[1] in TORCH_CLASSES]


@pytest.mark.parametrize("spec", TORCH_SPECS, ids=[s[0] for s in TORCH_SPECS])
def test_fit_with_groups_equals_torch_optim(spec):
    torch = pytest.importorskip("torch")
    X, y = _data()
    model = _model()
    want = _torch_fit(torch, spec, model.params, X, y)
    model.fit(X, y, optimizer=make(spec, model.params), epochs=EPOCHS, batch_size=BATCH,
              random_state=0)
    for p, q in zip(model.params, want):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-12)


SCHEDULES = [
    ("exponential-per-epoch", lambda o: S.ExponentialDecay(0.5, optimizer=o),
     lambda torch: lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.5), False),
    ("step-per-batch", lambda o: S.StepDecay(4, 0.5, optimizer=o),
     lambda torch: lambda o: torch.optim.lr_scheduler.StepLR(o, 4, 0.5), True),
]


@pytest.mark.parametrize("sched", SCHEDULES, ids=[s[0] for s in SCHEDULES])
@pytest.mark.parametrize("spec", [SPECS[0], SPECS[5]], ids=[SPECS[0][0], SPECS[5][0]])
def test_a_schedule_scales_each_groups_lr_mid_fit_as_torch(spec, sched):
    torch = pytest.importorskip("torch")
    _, make_schedule, make_torch_schedule, per_batch = sched
    X, y = _data()
    model = _model()
    want = _torch_fit(torch, spec, model.params, X, y, make_torch_schedule(torch),
                      per_batch)
    opt = make(spec, model.params)
    lrs = [g["lr"] for g in opt.param_groups]
    model.fit(X, y, optimizer=opt, epochs=EPOCHS, batch_size=BATCH, random_state=0,
              schedule=make_schedule(opt),
              schedule_interval="batch" if per_batch else "epoch")
    steps = EPOCHS * N // BATCH if per_batch else EPOCHS
    factor = 0.5 ** (steps // (4 if per_batch else 1))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([f * factor for f in lrs])
    for p, q in zip(model.params, want):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- resuming

@pytest.mark.parametrize("name, build", GROUPED, ids=[g[0] for g in GROUPED])
def test_fit_with_groups_resumes_bit_identically(name, build, tmp_path):
    """From a state_dict, and from a model saved with its optimizer."""
    X, y = _data()
    model = _model()
    opt = build(model.params)
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=BATCH, random_state=0)
    path = tmp_path / "m.npz"
    model.save(path, include_optimizer=True)
    loaded = nnlib.load(path)
    assert [g["lr"] for g in loaded.optimizer.param_groups] == [
        g["lr"] for g in opt.param_groups]
    resumed = _model()
    for p, q in zip(resumed.params, model.params):
        p[...] = q
    resumed_opt = build(resumed.params)
    resumed_opt.load_state_dict(opt.state_dict())
    for m, o in ((model, opt), (loaded, loaded.optimizer), (resumed, resumed_opt)):
        m.fit(X, y, optimizer=o, epochs=2, batch_size=BATCH, random_state=1)
    for m, o in ((loaded, loaded.optimizer), (resumed, resumed_opt)):
        assert o.t == opt.t == 4 * N // BATCH
        for p, q in zip(m.params, model.params):
            np.testing.assert_array_equal(p, q)


def test_a_model_with_python_layers_names_the_groups_and_field_it_cannot_follow():
    """The per-batch path of Python layers steps every array with one config: groups
    that differ are refused with the groups and the field (equal groups train)."""
    from tests._reliability_cases import PyDropout
    X, y = _data()
    m = _model()
    model = nnlib.Sequential([m.layers[0], PyDropout(0.0), m.layers[1], m.layers[2]])
    p = model.params
    opt = O.AdamW([{"params": p[0::2]}, {"params": p[1::2], "weight_decay": 0.0}],
                  lr=0.01)
    with pytest.raises(ValueError, match=r"param_groups\[0\] and param_groups\[1\] "
                                         r"differ in 'weight_decay'"):
        model.fit(X, y, optimizer=opt)
    assert opt.t == 0
    model.fit(X, y, optimizer=O.AdamW([{"params": p[:2]}, {"params": p[2:]}], lr=0.01))



def _with_python_layer(m):
    from tests._reliability_cases import PyDropout
    return nnlib.Sequential([m.layers[0], PyDropout(0.0), m.layers[1], m.layers[2]])


PATHS = [("compiled", lambda m: m), ("python-layer", _with_python_layer)]
FREEZING = [("sgd", lambda g: O.SGD(g, lr=0.1, momentum=0.9, weight_decay=0.01)),
            ("adam", lambda g: O.Adam(g, lr=0.01)),
            ("adamw", lambda g: O.AdamW(g, lr=0.01, weight_decay=0.1))]


@pytest.mark.parametrize("opt_name, make_opt", FREEZING, ids=[f[0] for f in FREEZING])
@pytest.mark.parametrize("path, build", PATHS, ids=[p[0] for p in PATHS])
def test_arrays_left_out_of_the_groups_are_refused_and_an_lr0_group_freezes(
        path, build, opt_name, make_opt):
    # torch.optim users freeze a layer by leaving its arrays out of the optimizer; fit
    # trained them anyway, with the optimizer's defaults. It now refuses, naming them,
    # and the way it names (a group with lr=0) keeps them bit for bit where groups may
    # differ (the compiled epoch; the per-batch path refuses such groups by name).
    X, y = _data()
    model = build(_model())
    p = model.params
    opt = make_opt(p[2:])
    before = [q.copy() for q in p]
    with pytest.raises(ValueError, match=r"params\[0\] \(shape \(3, 5\)\), "
                                         r"params\[1\] \(shape \(5,\)\) are in no "
                                         r"parameter group.*'lr': 0\.0"):
        model.fit(X, y, optimizer=opt, epochs=2)
    assert opt.t == 0 and len(opt.state) == 0
    for q, b in zip(p, before):
        np.testing.assert_array_equal(q, b)
    opt.add_param_group({"params": p[:2], "lr": 0.0})
    if path == "python-layer":
        with pytest.raises(ValueError, match="differ in 'lr'"):
            model.fit(X, y, optimizer=opt)
        return
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=8)
    for q, b in zip(p[:2], before[:2]):
        np.testing.assert_array_equal(q, b)
    assert all(not np.array_equal(q, b) for q, b in zip(p[2:], before[2:]))
