"""Compiled optimizers vs their NumPy twins, torch.optim, scikit-learn and closed forms."""
import math
import os

import numpy as np
import pytest

import nnlib
import nnlib.optim as O
from nnlib import DTypeError, NonFiniteError, ShapeError
from nnlib._kernels import optim as K
from nnlib._kernels import optim_wide as KW
from nnlib._reference import optim as R
from tests.conftest import TOL

STEPS = 100

# (id, class, kwargs, torch class or None, sklearn class or None)
CASES = [
    ("sgd", O.SGD, dict(lr=0.05), "SGD", None),
    ("sgd_wd", O.SGD, dict(lr=0.05, weight_decay=0.1), "SGD", None),
    ("sgd_momentum", O.SGD, dict(lr=0.05, momentum=0.9), "SGD", None),
    ("sgd_dampening", O.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.05),
     "SGD", None),
    ("sgd_nesterov", O.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
     "SGD", None),
    ("adagrad", O.Adagrad, dict(lr=0.1), "Adagrad", None),
    ("adagrad_all", O.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.05,
                                    initial_accumulator_value=0.1, eps=1e-8),
     "Adagrad", None),
    ("rmsprop", O.RMSprop, dict(lr=0.01), "RMSprop", None),
    ("rmsprop_momentum", O.RMSprop, dict(lr=0.01, momentum=0.5, weight_decay=0.1),
     "RMSprop", None),
    ("rmsprop_centered", O.RMSprop, dict(lr=0.01, centered=True), "RMSprop", None),
    ("rmsprop_centered_momentum", O.RMSprop,
     dict(lr=0.005, alpha=0.95, momentum=0.5, centered=True, eps=1e-4), "RMSprop", None),
    ("adam", O.Adam, dict(lr=0.05), "Adam", None),
    ("adam_wd_amsgrad", O.Adam,
     dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True), "Adam", None),
    ("adamw", O.AdamW, dict(lr=0.05), "AdamW", None),
    ("adamw_amsgrad", O.AdamW, dict(lr=0.05, weight_decay=0.1, amsgrad=True), "AdamW",
     None),
    ("notes_momentum", O.NotesMomentum, dict(lr=0.05, beta=0.1), None, None),
    ("notes_momentum_gd", O.NotesMomentum, dict(lr=0.05, beta=1.0), None, None),
    ("notes_adagrad", O.NotesAdaGrad, dict(lr=0.1), None, None),
    ("notes_adagrad_eps", O.NotesAdaGrad, dict(lr=0.1, eps=0.5), None, None),
    ("sklearn_sgd_nesterov", O.SklearnSGD, dict(lr=0.05, momentum=0.9, nesterov=True),
     None, "SGDOptimizer"),
    ("sklearn_sgd", O.SklearnSGD, dict(lr=0.05, momentum=0.9, nesterov=False),
     None, "SGDOptimizer"),
    ("sklearn_sgd_plain", O.SklearnSGD, dict(lr=0.05, momentum=0.0, nesterov=False),
     None, "SGDOptimizer"),
    ("sklearn_adam", O.SklearnAdam, dict(lr=0.05), None, "AdamOptimizer"),
    ("sklearn_adam_betas", O.SklearnAdam,
     dict(lr=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-4), None, "AdamOptimizer"),
]
IDS = [c[0] for c in CASES]
TORCH_CASES = [c for c in CASES if c[3]]
SKLEARN_CASES = [c for c in CASES if c[4]]

# Trajectory tolerances: float64 agrees to a few ulps per step; float32 rounds every
# stored value and so drifts from another float32 implementation by more than one ulp.
# The hyperparameters keep each trajectory well conditioned: with a large step and a fast
# second-moment average (beta2 or alpha ~ 0.9) Adam and centered RMSprop oscillate around
# the optimum and amplify ulp differences (FMA contraction, float32 rounding) to 1e-3.
TRAJ_TOL = {np.float64: dict(rtol=1e-10, atol=1e-12),
            np.float32: dict(rtol=2e-4, atol=2e-5)}


# ---- two fixed problems over two parameter arrays (a matrix and a vector) ---------------

def _quadratic():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((16, 16))
    H = A @ A.T / 16 + 0.5 * np.eye(16)
    b = rng.standard_normal(16)

    def grads(params):
        w = np.concatenate([p.astype(np.float64).ravel() for p in params])
        g = H @ w - b                                   # grad of w'Hw/2 - b'w
        return [g[:12].reshape(3, 4).astype(params[0].dtype),
                g[12:].astype(params[1].dtype)]

    init = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    return init, grads


def _logistic():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((40, 5))
    y = (X @ rng.standard_normal(5) + 0.3 * rng.standard_normal(40) > 0).astype(float)

    def grads(params):
        w, c = params[0].astype(np.float64), params[1].astype(np.float64)
        z = X @ w + c[0]
        r = 1.0 / (1.0 + np.exp(-z)) - y                 # dL/dz of the mean logistic loss
        return [(X.T @ r / len(y)).astype(params[0].dtype),
                np.array([r.mean()], dtype=params[1].dtype)]

    init = [rng.standard_normal(5), np.zeros(1)]
    return init, grads


PROBLEMS = {"quadratic": _quadratic, "logistic": _logistic}


def _trajectory(step, problem, dtype):
    """Run ``step(params, grads, t)`` for STEPS updates; return every iterate, flattened."""
    init, grads = PROBLEMS[problem]()
    params = [p.astype(dtype) for p in init]
    out = []
    for t in range(1, STEPS + 1):
        step(params, grads(params), t)
        out.append(np.concatenate([p.ravel() for p in params]).astype(np.float64))
    return np.array(out)


def _nnlib_step(cls, kw, n_threads=None):
    opt = cls(**kw)

    def step(params, grads, t):
        opt.step(params, grads, n_threads=n_threads)
        assert opt.t == t
    return step


def _twin_step(cls, kw):
    opt = cls(**kw)
    cfg = opt.config()
    states = {}

    def step(params, grads, t):
        for i, (p, g) in enumerate(zip(params, grads)):
            if i not in states:   # the twin keeps its own state, started like the class's
                states[i] = np.full((R.state_slots(cfg), p.size),
                                    opt._initial_state_value(), dtype=p.dtype)
            R.optim_step(cfg, p.reshape(-1), g.reshape(-1), states[i], t, 1)
    return step


# ---- the twin and the compiled kernel ----------------------------------------------------

@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name, cls, kw, tc, sk", CASES, ids=IDS)
def test_trajectory_matches_twin(name, cls, kw, tc, sk, problem, dtype):
    got = _trajectory(_nnlib_step(cls, kw), problem, dtype)
    want = _trajectory(_twin_step(cls, kw), problem, dtype)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, **TRAJ_TOL[dtype])
    # the optimizer must actually have moved the parameters
    assert np.abs(got[-1] - got[0]).max() > 1e-3


@pytest.mark.parametrize("name, cls, kw, tc, sk", CASES, ids=IDS)
def test_float32_tracks_float64(name, cls, kw, tc, sk):
    f32 = _trajectory(_nnlib_step(cls, kw), "quadratic", np.float32)
    f64 = _trajectory(_nnlib_step(cls, kw), "quadratic", np.float64)
    np.testing.assert_allclose(f32, f64, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name, cls, kw, tc, sk", CASES, ids=IDS)
def test_one_and_two_threads_agree_bitwise(name, cls, kw, tc, sk, dtype):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(100_003).astype(dtype)
    runs = []
    for n_threads in (1, 2):
        opt, p = cls(**kw), p0.copy()
        for t in range(3):
            g = (np.sin(p.astype(np.float64) * (t + 1)) + 0.1).astype(dtype)
            opt.step([p], [g], n_threads=n_threads)
        runs.append((p, opt.state_arrays([p])[0]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    # and the threaded kernel agrees with the twin
    twin = _twin_step(cls, kw)
    p = p0.copy()
    for t in range(1, 4):
        twin([p], [(np.sin(p.astype(np.float64) * t) + 0.1).astype(dtype)], t)
    np.testing.assert_allclose(runs[1][0], p, **TRAJ_TOL[dtype])


@pytest.mark.parametrize("name, cls, kw, tc, sk", CASES, ids=IDS)
def test_update_with_square_sum_is_bitwise_the_update_then_the_sum(name, cls, kw, tc, sk,
                                                                   dtype):
    """The training loop takes its next L2 penalty from optim_update_sq (the update run
    in chunks of 512, each chunk's squares summed right after it): the parameters, the
    state and the sum must be bitwise those of optim_step followed by one sum in
    penalty.h's blocked order, for lengths around every chunk, block and vector
    boundary."""
    rng = np.random.default_rng(5)
    cfg = cls(**kw).config()
    slots = K.state_slots(cfg)
    for n in list(range(1, 70)) + [127, 128, 129, 130, 131, 511, 512, 513, 1000, 1025,
                                   10_003]:
        p0 = rng.standard_normal(n).astype(dtype)
        g = rng.standard_normal(n).astype(dtype)
        s0 = np.abs(rng.standard_normal((slots, n))).astype(dtype)
        for step in (1, 2):
            p, s = p0.copy(), s0.copy()
            fused, plain = K._step_sum_squares(cfg, p, g, s, step)
            assert fused == plain, (n, step)
            q, r = p0.copy(), s0.copy()
            K.optim_step(cfg, q, g, r, step, 1)
            np.testing.assert_array_equal(p, q)
            np.testing.assert_array_equal(s, r)
            exact = math.fsum(float(v) * float(v) for v in q)
            assert abs(plain - exact) <= 2 * n * np.finfo(np.float64).eps * exact


@pytest.mark.parametrize("name, cls, kw, tc, sk", CASES, ids=IDS)
def test_wide_vector_build_updates_bitwise_as_the_default_build(name, cls, kw, tc, sk,
                                                                dtype):
    """optim_step sends the rules without a division to optim_wide (512-bit vectors);
    its update must be bitwise that of optim's own 256-bit build, for lengths around
    every vector boundary and on the first step (momentum's buffer = grad) and later."""
    rng = np.random.default_rng(6)
    cfg = cls(**kw).config()
    slots = K.state_slots(cfg)
    for n in list(range(1, 70)) + [127, 129, 1000, 10_003]:
        p0 = rng.standard_normal(n).astype(dtype)
        g = rng.standard_normal(n).astype(dtype)
        s0 = np.abs(rng.standard_normal((slots, n))).astype(dtype)
        for step in (1, 2):
            p, s = p0.copy(), s0.copy()
            K._step_narrow(cfg, p, g, s, step)
            q, r = p0.copy(), s0.copy()
            K.optim_step(cfg, q, g, r, step, 1)
            assert p.tobytes() == q.tobytes() and s.tobytes() == r.tobytes(), (n, step)


SGD_WIDE_RULES = [dict(lr=0.1), dict(lr=0.01, momentum=0.9),
                  dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01),
                  dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.05),
                  dict(lr=3.0, weight_decay=0.5), dict(lr=1e30, momentum=0.99)]


# float32 values the explicit loops of optim_f32.h meet besides normal ones
F32_SPECIALS = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-40, 1e-38, 3.4e38,
                -3.4e38, 1.0]


def _assert_explicit_loop_matches_generic(cfg, rng, lengths, steps, key, moment_rows,
                                          explicit):
    """optim_step (optim_f32.h's loop) against _step_narrow (the generic loop) on float32
    values across the range with F32_SPECIALS among them, for every length in
    ``lengths`` at every offset 0-3 from a vector boundary and every step in ``steps``;
    ``key(a)`` is what must agree, ``moment_rows`` the state rows kept >= 0 (or NaN).
    ``explicit``: whether optim_step must take the explicit loop (every call counted by
    optim_wide's hook), else none may."""
    slots = K.state_slots(cfg)
    count = KW._explicit_f32()[2]
    calls = 0

    def draw(shape):
        x = rng.standard_normal(shape) * 10.0 ** rng.integers(-45, 39, shape)
        pick = rng.random(shape) < 0.2
        x[pick] = rng.choice(F32_SPECIALS, pick.sum())
        with np.errstate(over="ignore"):
            return x.astype(np.float32)

    for n in lengths:
        for start in range(4):
            p0, g = draw(n + start)[start:], draw(n + start)[start:]
            s0 = draw((slots, n))
            s0[moment_rows] = np.abs(s0[moment_rows])
            for step in steps:
                p, s = p0.copy(), s0.copy()
                with np.errstate(all="ignore"):
                    K._step_narrow(cfg, p, g, s, step)
                q, r = np.empty(n + start, np.float32)[start:], s0.copy()
                q[...] = p0
                with np.errstate(all="ignore"):
                    K.optim_step(cfg, q, g, r, step, 1)
                calls += 1
                assert key(p) == key(q) and key(s) == key(r), (n, start, step)
    assert KW._explicit_f32()[2] - count == (calls if explicit else 0)


@pytest.mark.parametrize("kw", SGD_WIDE_RULES, ids=lambda kw: "-".join(map(str, kw.values())))
def test_float32_sgd_loop_updates_bitwise_as_the_generic_loop_on_any_values(kw):
    """Float32 SGD runs optim_f32.h's loop (conversions to and from memory), not the
    generic one: bitwise the same params and buffer on values across float32's range,
    subnormals, zeros of both signs, infs and NaNs, at every offset from a vector
    boundary (views starting 0-3 elements in) and on the first step and later; with
    momentum the loop runs in blocks of 256 elements (two passes each): lengths around
    them."""
    _assert_explicit_loop_matches_generic(O.SGD(**kw).config(), np.random.default_rng(8),
                                          list(range(1, 20)) + [64, 255, 256, 257, 513,
                                                                1001], (1, 2),
                                          lambda a: a.tobytes(), slice(0, 0),
                                          KW._explicit_f32()[0])


@pytest.mark.parametrize("alias", ["param", "grad"])
@pytest.mark.parametrize("kw", SGD_WIDE_RULES[1:4], ids=["momentum", "nesterov-wd",
                                                          "damp-wd"])
def test_float32_momentum_buffer_aliasing_another_array_updates_as_the_generic_loop(kw,
                                                                                 alias):
    """optim_f32.h's momentum loop forms a block's buffer before it steps the block's
    params (two passes); a buffer that is the param or the gradient array itself would
    be read back changed there, so such a call takes the one-pass loop: element by
    element the generic loop's reads before writes, the same bits."""
    cfg = O.SGD(**kw).config()
    rng = np.random.default_rng(12)
    for n in (7, 300, 1001):
        p0 = rng.standard_normal(n).astype(np.float32)
        g0 = rng.standard_normal(n).astype(np.float32)
        out = []
        for run in (K._step_narrow, lambda c, p, g, s, t: K.optim_step(c, p, g, s, t, 1)):
            p, g = p0.copy(), g0.copy()
            run(cfg, p, g, (p if alias == "param" else g).reshape(1, n), 2)
            out.append((p.tobytes(), g.tobytes()))
        assert out[0] == out[1], n


ADAM_WIDE_RULES = [(O.Adam, dict()), (O.Adam, dict(amsgrad=True)),
                   (O.Adam, dict(weight_decay=0.01, betas=(0.3, 0.99))),
                   (O.Adam, dict(lr=10.0, betas=(0.6, 0.5), eps=1e-3, amsgrad=True)),
                   (O.AdamW, dict()), (O.AdamW, dict(weight_decay=0.5, amsgrad=True)),
                   (O.AdamW, dict(weight_decay=0.0)), (O.Adam, dict(eps=1e-30)),
                   (O.Adam, dict(weight_decay=0.1, betas=(0.2, 0.9), amsgrad=True)),
                   # eps outside the float seeds' range (_root_f32_range): below 2^-125,
                   # above 2^125; eps=1e-30 above is inside it
                   (O.Adam, dict(eps=1e-40)), (O.AdamW, dict(eps=1e38, amsgrad=True))]


def _nan_as_one(a):
    a = a.copy()
    a[np.isnan(a)] = np.nan
    return a.tobytes()


@pytest.mark.parametrize("cls, kw", ADAM_WIDE_RULES,
                         ids=lambda x: x.__name__ if isinstance(x, type)
                         else "-".join(map(str, x.values())) or "default")
def test_float32_adam_loop_updates_bitwise_as_the_generic_loop_on_any_values(cls, kw):
    """Float32 Adam and AdamW run optim_f32.h's loop (8 elements a step; the tail under a
    mask on AVX-512, on zero-padded copies on AVX2), not the generic one: bitwise
    the same params and state on values across float32's range, subnormals, zeros of
    both signs, infs and NaNs, at every offset from a vector boundary and every length
    up to three 8-element vectors and a tail, on both lerp branches, with amsgrad,
    Adam's L2 term, AdamW's shrink and an eps outside the float seeds' range (the
    generic loop then runs in both, and the explicit one is not counted). A NaN matches
    any NaN: which NaN operand an instruction propagates (so a NaN result's sign and
    payload) follows the operand order GCC picks, and its own two builds of this loop
    differ there."""
    cfg = cls(**kw).config()
    seeds = 2.0 ** -125 <= cfg["eps"] <= 1e30      # the two eps outside the range above
    _assert_explicit_loop_matches_generic(cfg, np.random.default_rng(9),
                                          list(range(1, 26)) + [64, 1001], (1, 2, 7),
                                          _nan_as_one, slice(1, None),
                                          KW._explicit_f32()[1] and seeds)


def test_bound_check_agrees_with_numpy_comparisons(dtype):
    """The overflow guard's first pass (_inputs_within) compares bit patterns as
    unsigned integers, four read streams at a time, in blocks from the end backward; it
    must say exactly what ``|x| <= bound`` (NaN passing) says for every array it reads,
    whatever the position of the offending value: the special values (inf, NaN, -0,
    subnormals, the bound and its neighbours) at every place around the block and
    quarter boundaries, for one to five arrays."""
    rng = np.random.default_rng(11)
    info = np.finfo(dtype)
    bound = dtype(1e3)
    specials = [np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0, info.tiny / 4, -info.tiny / 4,
                bound, -bound, np.nextafter(bound, np.inf), -np.nextafter(bound, np.inf),
                np.nextafter(bound, 0), info.max, -info.max]
    specials = np.array(specials, dtype=dtype)

    def want(arrays, b):
        return all(not np.any(np.abs(a) > b) for a in arrays)   # NaN: False > b

    for n in (1, 3, 4, 7, 8191, 8192, 8193, 20_000, 32_771):
        for slots in (0, 1, 2, 3):
            for with_param in (False, True):
                p, g = (rng.uniform(-900, 900, n).astype(dtype) for _ in range(2))
                s = rng.uniform(-900, 900, (slots, n)).astype(dtype)
                assert K._bound_check(p, g, s, float(bound), with_param)
                rows = [g] + ([p] if with_param else []) + list(s)
                checked = [p, g] + list(s)         # p planted even when not checked
                places = sorted({0, 1, n // 4, n // 2, n - 8192, n - 1} & set(range(n)))
                for where in places:
                    for v in specials:
                        a = checked[rng.integers(len(checked))]
                        old = a[where]
                        a[where] = v
                        got = K._bound_check(p, g, s, float(bound), with_param)
                        assert got == want(rows, bound), (n, slots, with_param, where, v)
                        a[where] = old
                for b in (0.0, -0.0, float(info.max), np.inf):    # the edge bounds
                    assert K._bound_check(p, g, s, b, with_param) == want(rows, dtype(b))


def test_bound_check_screens_the_sign_bits_of_the_squared_rows(dtype):
    """With a mask of squared-gradient rows (session 38), _inputs_within also fails on
    any set sign bit in those rows (a negative value, -0.0, a negative NaN: the dry run
    is the exact test), at every place around the block and quarter boundaries, and
    only there: the other rows keep the magnitude test alone."""
    rng = np.random.default_rng(12)
    bound = dtype(1e3)
    specials = np.array([-1.0, -0.0, -np.nan, -np.finfo(dtype).tiny / 4, 0.0, np.nan,
                         np.nextafter(bound, np.inf), -bound], dtype=dtype)

    def want(p, g, s, squared, with_param, b):
        rows = [g] + ([p] if with_param else []) + list(s)
        if any(np.any(np.abs(a) > b) for a in rows):
            return False
        return not any(np.signbit(s[k]).any() for k in range(len(s)) if squared >> k & 1)

    block = (1 << 20) // np.dtype(dtype).itemsize
    for n in (1, 5, 8193, block + 3):
        for slots, squared in ((1, 1), (2, 2), (3, 6), (3, 5), (2, 0)):
            for with_param in (False, True):
                p, g = (rng.uniform(-900, 900, n).astype(dtype) for _ in range(2))
                s = rng.uniform(0, 900, (slots, n)).astype(dtype)
                assert K._bound_check(p, g, s, float(bound), with_param, squared)
                places = sorted({0, 1, n // 4, n // 2, n - block, n - 1} & set(range(n)))
                for where in places:
                    for v in specials:
                        k = rng.integers(slots)
                        old = s[k, where]
                        s[k, where] = v
                        got = K._bound_check(p, g, s, float(bound), with_param, squared)
                        assert got == want(p, g, s, squared, with_param, bound), \
                            (n, slots, squared, with_param, where, v)
                        s[k, where] = old
    with pytest.raises(ValueError, match="squared must be a mask"):
        K._bound_check(p, g, s[:1], 1.0, False, 2)


def _assert_rounding_of(p, want, exact):
    """float32 ``p`` is ``want`` (the double formula rounded) bit for bit if ``exact``,
    else at most one ulp apart in at most 0.1% of the elements, with the same zeros
    (sign included), infs and NaNs."""
    same = (p == want) & (np.signbit(p) == np.signbit(want))
    same |= np.isnan(p) & np.isnan(want)
    if exact:
        assert same.all()
        return
    finite = np.isfinite(want)
    assert np.array_equal(np.isnan(p), np.isnan(want))
    assert np.array_equal(p[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    ulps = np.abs(p[finite].view(np.int32).astype(np.int64)
                  - want[finite].view(np.int32).astype(np.int64))
    assert ulps.max() <= 1
    assert (~same).sum() <= p.size // 1000, (~same).sum()


def _with_special_pairs(num, den, special_num):
    """float32 ``num`` and ``den`` (a square-rooted denominator) followed by every pair of
    ``special_num`` with the special denominators (0, inf, NaN, the smallest subnormal,
    near the float maximum, 1, 1e-30)."""
    f = np.float32
    a, b = np.meshgrid(np.array(special_num, f),
                       np.array([0.0, np.inf, np.nan, 1e-45, 3.4e38, 1.0, 1e-30], f))
    return np.concatenate([num, a.ravel()]), np.concatenate([den, b.ravel()])


@pytest.mark.parametrize("eps", [1e-8, 1e-3, 1e-40])
@pytest.mark.parametrize("step", [1, 7])
def test_float32_adam_quotient_within_an_ulp_of_the_double_division(eps, step):
    """Float32 Adam takes m / (sqrt(v) / sqrt(bc2) + eps) from float seeds refined in
    double (_quot_root_f32); with p = 0 the new param is that quotient times -lr / bc1
    rounded to float32, which must be the double formula's rounding (at most one ulp
    apart, rarely: the refined quotient is within ~2^-44 of it), with the same zeros
    (sign included), infs and NaNs, for m and v from the subnormals to the float
    maximum and the special values (v = 0, inf, NaN; m = +-0, +-inf, NaN). eps = 1e-40
    is outside the seeds' range and takes the double path, equal bit for bit."""
    rng = np.random.default_rng(21)
    f = np.float32
    n = 20_000
    m = (rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-45, 38.5, n)).astype(f)
    v = (10.0 ** rng.uniform(-45, 38.5, n)).astype(f)
    v[:2000] = v[:2000] ** 0 * rng.uniform(0, 4, 2000).astype(f)  # denominators near eps
    m, v = _with_special_pairs(m, v, [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -3e38, 1e-45])
    n = m.size
    opt = O.Adam(lr=0.25, eps=eps)
    cfg = opt.config()
    p = np.zeros(n, f)
    p[1::2] = -0.0
    grad = np.zeros(n, f)                  # m <- b1 m, v <- b2 v, stored in float32
    state = np.stack([m, v])
    with np.errstate(all="ignore"):
        K.optim_step(cfg, p, grad, state, step, 1)
        b1, b2 = cfg["beta1"], cfg["beta2"]
        step_size = cfg["lr"] / (1.0 - b1 ** step)
        bc2_sqrt = math.sqrt(1.0 - b2 ** step)
        q = state[0].astype(np.float64) / (np.sqrt(state[1].astype(np.float64)) / bc2_sqrt
                                           + eps)
        want = (np.where(np.arange(n) % 2, -0.0, 0.0) - step_size * q).astype(f)
    _assert_rounding_of(p, want, exact=eps < 1e-30)


@pytest.mark.parametrize("rule", ["adagrad", "rmsprop", "rmsprop_momentum"])
@pytest.mark.parametrize("eps", [1e-10, 1e-2, 1e-40])
def test_float32_adagrad_rmsprop_quotient_within_an_ulp_of_the_double_division(rule, eps):
    """Float32 Adagrad and uncentered RMSprop take g / (sqrt(s) + eps) from float seeds
    (_quot_root_f32), as Adam does: from p = +-0 the new param is -lr times it (RMSprop
    with momentum: of the new buffer mu b + it), which must be the double formula's
    rounding, at most one ulp apart and rarely, with the same zeros, infs and NaNs,
    for g and s across the float range and the special values; eps = 1e-40 takes the
    double path, equal bit for bit."""
    rng = np.random.default_rng(22)
    f = np.float32
    n = 20_000
    g = (rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-45, 19, n)).astype(f)
    s0 = (10.0 ** rng.uniform(-45, 38, n)).astype(f)
    g, s0 = _with_special_pairs(g, s0, [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1e19, 1e-45])
    n = g.size
    if rule == "adagrad":
        opt = O.Adagrad(lr=0.25, eps=eps)
    else:
        opt = O.RMSprop(lr=0.25, eps=eps, alpha=0.5,
                        momentum=0.5 if rule == "rmsprop_momentum" else 0.0)
    cfg = opt.config()
    p = np.zeros(n, f)
    p[1::2] = -0.0
    p0 = p.copy()
    state = np.stack([s0] + ([(rng.standard_normal(n)).astype(f)]
                             if rule == "rmsprop_momentum" else []))
    buf0 = state[1:].astype(np.float64).copy()
    with np.errstate(all="ignore"):
        K.optim_step(cfg, p, g, state, 3, 1)
        q = g.astype(np.float64) / (np.sqrt(state[0].astype(np.float64)) + eps)
        if rule == "rmsprop_momentum":
            buf = (0.5 * buf0[0] + q).astype(f)
            assert np.array_equal(np.isnan(buf), np.isnan(state[1]))
            ok = ~np.isnan(buf)
            assert np.abs(buf[ok].view(np.int32).astype(np.int64)
                          - state[1][ok].view(np.int32).astype(np.int64)).max() <= 1
            q = state[1].astype(np.float64)           # the step reads the stored buffer
        want = (p0.astype(np.float64) - 0.25 * q).astype(f)
    _assert_rounding_of(p, want, exact=eps < 1e-30)


# ---- the peers ---------------------------------------------------------------------------

@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name, cls, kw, tc, sk", TORCH_CASES,
                         ids=[c[0] for c in TORCH_CASES])
def test_trajectory_matches_torch(name, cls, kw, tc, sk, problem, dtype):
    torch = pytest.importorskip("torch")
    tensors = []

    def torch_step(params, grads, t):
        if not tensors:
            tensors.extend(torch.tensor(p, requires_grad=True) for p in params)
            tensors.append(getattr(torch.optim, tc)(tensors[:len(params)], foreach=False,
                                                    **kw))
        *ts, topt = tensors
        for tt, g in zip(ts, grads):
            tt.grad = torch.from_numpy(g.copy())
        topt.step()
        for p, tt in zip(params, ts):
            p[...] = tt.detach().numpy()

    got = _trajectory(_nnlib_step(cls, kw), problem, dtype)
    want = _trajectory(torch_step, problem, dtype)
    np.testing.assert_allclose(got, want, **TRAJ_TOL[dtype])


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name, cls, kw, tc, sk", SKLEARN_CASES,
                         ids=[c[0] for c in SKLEARN_CASES])
def test_trajectory_matches_sklearn(name, cls, kw, tc, sk, problem, dtype):
    so = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    holder = []

    def sklearn_step(params, grads, t):
        if not holder:
            args = dict(learning_rate_init=kw["lr"])
            args.update({k: v for k, v in kw.items() if k != "lr"})
            holder.append(getattr(so, sk)(params, **args))
        holder[0].update_params(params, grads)

    got = _trajectory(_nnlib_step(cls, kw), problem, dtype)
    want = _trajectory(sklearn_step, problem, dtype)
    np.testing.assert_allclose(got, want, **TRAJ_TOL[dtype])


# ---- closed forms of the notes' rules (independent of the twin) -------------------------

def test_notes_momentum_closed_form_for_constant_gradient():
    # v_t = (1 - (1-beta)^t) g, so w_T = w_0 - lr g sum_t (1 - (1-beta)^t)
    lr, beta, g = 0.1, 0.25, np.array([1.0, -2.0, 0.5])
    w = np.zeros(3)
    opt = O.NotesMomentum(lr=lr, beta=beta)
    for _ in range(20):
        opt.step([w], [g])
    factor = sum(1 - (1 - beta) ** t for t in range(1, 21))
    np.testing.assert_allclose(w, -lr * g * factor, rtol=1e-13)
    np.testing.assert_allclose(opt.state_arrays([w])[0][0], (1 - 0.75 ** 20) * g,
                               rtol=1e-13)


def test_notes_adagrad_closed_form_for_constant_gradient():
    # G_t = t g^2 (this step's gradient included),
    # w_T = w_0 - lr sum_t g / sqrt(eps + t g^2)
    lr, eps, g = 0.2, 1e-3, np.array([3.0, -0.1, 0.0])
    w = np.ones(3)
    opt = O.NotesAdaGrad(lr=lr, eps=eps)
    for _ in range(10):
        opt.step([w], [g])
    want = 1 - lr * sum(g / np.sqrt(eps + t * g ** 2) for t in range(1, 11))
    np.testing.assert_allclose(w, want, rtol=1e-13)
    assert w[2] == 1.0                   # zero gradient: the stabilizer keeps 0/0 away


def test_notes_adagrad_first_step_is_about_lr_times_sign():
    w = np.zeros(4)
    O.NotesAdaGrad(lr=0.5).step([w], [np.array([1e3, -1e-2, 7.0, -2.0])])
    np.testing.assert_allclose(w, [-0.5, 0.5, -0.5, 0.5], rtol=1e-4)


def test_pytorch_and_sklearn_momentum_differ_as_documented():
    # Same mu and lr, same gradients: PyTorch starts b = g and multiplies by lr outside,
    # scikit-learn starts v = 0 and keeps lr inside -- after one step they agree (both
    # move by -lr g), after two they differ by lr * mu * g.
    g = np.array([1.0, 2.0])
    wt, ws = np.zeros(2), np.zeros(2)
    t, s = O.SGD(lr=0.1, momentum=0.5), O.SklearnSGD(lr=0.1, momentum=0.5, nesterov=False)
    t.step([wt], [g]), s.step([ws], [g])
    np.testing.assert_allclose(wt, ws, rtol=1e-15)
    t.lr = s.lr = 0.05                               # a schedule halves the rate
    t.step([wt], [g]), s.step([ws], [g])
    np.testing.assert_allclose(wt, -0.1 * g - 0.05 * 1.5 * g, rtol=1e-15)
    np.testing.assert_allclose(ws, -0.1 * g - (0.5 * 0.1 + 0.05) * g, rtol=1e-15)


def test_adam_variants_agree_as_eps_vanishes():
    g = np.array([0.3, -1.0, 2.0])
    a, b = np.ones(3), np.ones(3)
    ta, sk = O.Adam(lr=0.01, eps=1e-30), O.SklearnAdam(lr=0.01, epsilon=1e-30)
    for k in range(5):
        ta.step([a], [g * (k + 1)])
        sk.step([b], [g * (k + 1)])
    np.testing.assert_allclose(a, b, rtol=1e-14)


def test_sgd_without_momentum_is_plain_gradient_step(dtype):
    w = np.array([1.0, -2.0], dtype=dtype)
    O.SGD(lr=0.5).step([w], [np.array([4.0, 2.0], dtype=dtype)])
    np.testing.assert_array_equal(w, np.array([-1.0, -3.0], dtype=dtype))


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=-0.0), dict(momentum=0.9),
                                dict(momentum=0.9, nesterov=True)],
                         ids=["plain", "wd-0", "momentum", "nesterov"])
def test_sgd_without_weight_decay_keeps_infinite_params_as_torch_and_the_twin(kw, dtype):
    # weight_decay 0 (either sign) adds no term: g + 0 w would make w = inf NaN (0 inf),
    # while torch.optim.SGD and the twin skip the term and keep inf
    w = np.array([np.inf, -np.inf, 1.5, -0.0, 0.0, 3.0], dtype=dtype)
    g = np.array([1.0, -2.0, 0.25, -0.0, -0.0, np.nan], dtype=dtype)
    config = O.SGD([w], lr=0.5, **kw).config()
    compiled, twin = w.copy(), w.copy()
    state = np.zeros((R.state_slots(config), w.size), dtype)
    K.optim_step(config, compiled, g, state.copy(), 1, 1)
    R.optim_step(config, twin, g, state.copy(), 1, 1)
    np.testing.assert_array_equal(compiled.view(np.uint8), twin.view(np.uint8))
    assert compiled[0] == np.inf and compiled[1] == -np.inf and np.isnan(compiled[5])
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.from_numpy(w.copy()))
    p.grad = torch.from_numpy(g.copy())
    torch.optim.SGD([p], lr=0.5, foreach=False, **kw).step()
    np.testing.assert_array_equal(compiled[:5], p.detach().numpy()[:5])


# Every other rule with weight decay: L2 on the gradient (Adagrad, RMSprop, Adam and the
# notes' and scikit-learn's rules, whose classes fix it at 0 but whose kernels read it:
# the training epoch passes its L2 there) and AdamW (decoupled: its shrink keeps inf, and
# no L2 term may reach its gradient). (id, class, kwargs, torch class or None)
DECAY_RULES = [
    ("adagrad", O.Adagrad, dict(lr=0.5, lr_decay=0.1), "Adagrad"),
    ("rmsprop", O.RMSprop, dict(lr=0.5), "RMSprop"),
    ("rmsprop-momentum", O.RMSprop, dict(lr=0.5, momentum=0.5), "RMSprop"),
    ("rmsprop-centered", O.RMSprop, dict(lr=0.5, momentum=0.5, centered=True), "RMSprop"),
    ("adam", O.Adam, dict(lr=0.5), "Adam"),
    ("adam-amsgrad", O.Adam, dict(lr=0.5, amsgrad=True), "Adam"),
    ("adamw", O.AdamW, dict(lr=0.5), "AdamW"),
    ("adamw-amsgrad", O.AdamW, dict(lr=0.5, amsgrad=True), "AdamW"),
    ("notes-momentum", O.NotesMomentum, dict(lr=0.5, beta=0.5), None),
    ("notes-adagrad", O.NotesAdaGrad, dict(lr=0.5), None),
    ("sklearn-sgd", O.SklearnSGD, dict(lr=0.5, momentum=0.9, nesterov=False), None),
    ("sklearn-nesterov", O.SklearnSGD, dict(lr=0.5, momentum=0.9, nesterov=True), None),
    ("sklearn-adam", O.SklearnAdam, dict(lr=0.5), None),
]
WEIGHT_DECAYS = [("wd0", 0.0), ("wd-0", -0.0), ("wd0.25", 0.25)]


def _same_nonfinite(got, want, dtype):
    """NaN, +-inf and signed zeros where ``want`` has them, the other values within
    TRAJ_TOL (the kernels contract a * b + c to one FMA where NumPy rounds twice)."""
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    np.testing.assert_array_equal(np.signbit(got[want == 0]), np.signbit(want[want == 0]))
    np.testing.assert_allclose(got[fin], want[fin], **TRAJ_TOL[dtype])


@pytest.mark.parametrize("wd_id, wd", WEIGHT_DECAYS, ids=[w[0] for w in WEIGHT_DECAYS])
@pytest.mark.parametrize("name, cls, kw, torch_cls", DECAY_RULES,
                         ids=[r[0] for r in DECAY_RULES])
def test_weight_decay_zero_keeps_infinite_params_as_torch_and_the_twin(
        name, cls, kw, torch_cls, wd_id, wd, dtype):
    # weight_decay 0 (either sign) adds no term, as in torch.optim and the twin: g + 0 w
    # made w = +-inf NaN (0 inf). With decay, L2 makes an inf param's step inf / inf =
    # NaN for the adaptive rules (torch too) and AdamW's shrink keeps it inf. Two steps
    # through the entry point of Optimizer.step, whose overflow guard must pass an
    # already infinite param: the huge finite gradient sends the step through its dry run.
    big = 1e15 if dtype == np.float32 else 1e150
    # then every sign of a zero param and a zero gradient (-0.0 + 0 w would be +0.0)
    w = np.array([np.inf, -np.inf, np.inf, -np.inf, 1.5, 0.0, -0.0, 0.0,
                  -0.0, 0.0, -0.0, 0.0], dtype=dtype)
    g = np.array([1.0, -2.0, 0.0, 3.0, 0.25, -0.5, 0.75, big,
                  -0.0, -0.0, 0.0, 0.0], dtype=dtype)
    config = dict(cls(**kw).config(), weight_decay=wd)
    state = np.zeros((R.state_slots(config), w.size), dtype)
    state[...] = config["initial_accumulator_value"]            # Adagrad's; else 0
    compiled, twin, c_state = w.copy(), w.copy(), state.copy()
    for t in (1, 2):
        K.optim_step_arrays(config, [compiled], [g], [c_state], t, 1, 1)
        R.optim_step_arrays(config, [twin], [g], [state], t, 1, 1)
    _same_nonfinite(compiled, twin, dtype)
    _same_nonfinite(c_state, state, dtype)
    if wd == 0:
        assert (compiled[:4] == w[:4]).all()        # +-inf stays +-inf
    if torch_cls is None:
        return
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.from_numpy(w.copy()))
    topt = getattr(torch.optim, torch_cls)([p], foreach=False, weight_decay=wd, **kw)
    for _ in (1, 2):
        p.grad = torch.from_numpy(g.copy())
        topt.step()
    _same_nonfinite(compiled, p.detach().numpy(), dtype)

# ---- the Python-side contract ------------------------------------------------------------

def test_kinds_match_the_compiled_enum():
    # the values the extensions were compiled with (a build older than _codes.py fails)
    from nnlib._kernels import codes
    assert codes.OPTIM_KINDS == O.OPTIM_KINDS == R.KINDS


def test_config_field_list_matches_the_struct():
    src = open(os.path.join(os.path.dirname(K.__file__), "optim_rules.pxd")).read()
    body = src.split("cdef struct OptimConfig:")[1].split("\n\n")[0]
    fields = [f.strip() for line in body.strip().splitlines()
              for f in line.split(None, 1)[1].split(",")]
    assert tuple(fields) == O.CONFIG_FIELDS


@pytest.mark.parametrize("name, cls, kw, tc, sk", CASES, ids=IDS)
def test_config_and_state_contract(name, cls, kw, tc, sk, dtype):
    opt = cls(**kw)
    cfg = opt.config()
    assert tuple(cfg) == O.CONFIG_FIELDS
    assert cfg["kind"] == opt.kind and isinstance(cfg["kind"], int)
    assert all(cfg[f] in (0, 1) for f in ("nesterov", "centered", "amsgrad"))
    params = [np.ones((3, 2), dtype=dtype), np.ones(5, dtype=dtype)]
    state = opt.state_arrays(params)
    slots = K.state_slots(cfg)
    assert slots == R.state_slots(cfg)
    assert [s.shape for s in state] == [(slots, 6), (slots, 5)]
    assert all(s.dtype == dtype and s.flags.c_contiguous for s in state)
    again = opt.state_arrays(params)                    # created once, then reused
    assert all(a is b for a, b in zip(again, state))
    assert opt.t == 0 and opt.lr == kw["lr"]


def test_expected_slot_counts():
    cases = [(O.SGD(), 0), (O.SGD(momentum=0.9), 1), (O.Adagrad(), 1), (O.RMSprop(), 1),
             (O.RMSprop(momentum=0.1), 2), (O.RMSprop(centered=True), 2),
             (O.RMSprop(momentum=0.1, centered=True), 3), (O.Adam(), 2),
             (O.Adam(amsgrad=True), 3), (O.AdamW(amsgrad=True), 3),
             (O.NotesMomentum(), 1), (O.NotesAdaGrad(), 1), (O.SklearnSGD(), 1),
             (O.SklearnAdam(), 2)]
    for opt, slots in cases:
        assert K.state_slots(opt.config()) == slots, opt


def test_adagrad_initial_accumulator_fills_state():
    opt = O.Adagrad(initial_accumulator_value=0.25)
    (s,) = opt.state_arrays([np.zeros(4, dtype=np.float32)])
    assert s.dtype == np.float32 and (s == 0.25).all()


def test_state_persists_and_is_shared_with_the_compiled_kernel(rng):
    # The compiled training loop drives K.optim_step on opt.state_arrays() and advances
    # opt.t; mixing that with opt.step must give the same trajectory as opt.step alone.
    params_a = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    params_b = [p.copy() for p in params_a]
    a, b = O.Adam(lr=0.1, amsgrad=True), O.Adam(lr=0.1, amsgrad=True)
    for t in range(1, 9):
        grads = [np.cos(p * t) for p in params_a]
        a.step(params_a, grads)
        if t % 2:
            b.step(params_b, grads)
        else:
            cfg, state = b.config(), b.state_arrays(params_b)
            for p, g, s in zip(params_b, grads, state):
                K.optim_step(cfg, p.reshape(-1), g.reshape(-1), s, b.t + 1, 1)
            b.t += 1
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa, pb)
    assert a.t == b.t == 8


def test_reset_restarts_the_rule(rng):
    p = rng.standard_normal(5)
    first = p.copy()
    opt = O.Adam(lr=0.1)
    opt.step([first], [np.ones(5)])
    opt.step([first], [np.ones(5)])
    opt.reset()
    assert opt.t == 0 and opt.state_arrays([p])[0].max() == 0
    again = p.copy()
    fresh = p.copy()
    opt.step([again], [np.ones(5)])
    O.Adam(lr=0.1).step([fresh], [np.ones(5)])
    np.testing.assert_array_equal(again, fresh)


def test_lr_written_by_a_schedule_is_used():
    w = np.zeros(2)
    opt = O.SGD(lr=1.0)
    opt.lr = 0.25
    opt.step([w], [np.ones(2)])
    np.testing.assert_array_equal(w, [-0.25, -0.25])
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -0.1


def test_grads_are_not_modified_and_may_be_readonly_or_strided(rng):
    p = rng.standard_normal((3, 4))
    g_full = rng.standard_normal((3, 8))
    g = g_full[:, ::2]                              # strided view
    g_copy = g.copy()
    ro = rng.standard_normal(4)
    ro.flags.writeable = False
    q = rng.standard_normal(4)
    O.SGD(lr=0.1, momentum=0.9, weight_decay=0.1).step([p, q], [g, ro])
    np.testing.assert_array_equal(g, g_copy)


def test_single_array_and_empty_params():
    w = np.ones(3)
    O.SGD(lr=0.5).step(w, np.ones(3))
    np.testing.assert_array_equal(w, [0.5, 0.5, 0.5])
    e = np.ones((0, 4))
    opt = O.Adam()
    opt.step([e], [np.ones((0, 4))])
    assert opt.t == 1


def test_float32_state_and_params_stay_float32(rng):
    p = rng.standard_normal(6).astype(np.float32)
    opt = O.RMSprop(lr=0.01, momentum=0.5, centered=True)
    opt.step([p], [np.ones(6, dtype=np.float32)])
    assert p.dtype == np.float32 and opt.state_arrays([p])[0].dtype == np.float32


def test_optim_is_reachable_from_the_package():
    assert nnlib.optim is O


# ---- bad input ---------------------------------------------------------------------------

BAD_HYPER = [
    (O.SGD, dict(lr=-0.1), ValueError, "lr"),
    (O.SGD, dict(lr=float("nan")), ValueError, "lr"),
    (O.SGD, dict(lr="0.1"), TypeError, "lr"),
    (O.SGD, dict(momentum=1.0), ValueError, "momentum"),
    (O.SGD, dict(momentum=-0.5), ValueError, "momentum"),
    (O.SGD, dict(dampening=1.5), ValueError, "dampening"),
    (O.SGD, dict(nesterov=True), ValueError, "nesterov"),
    (O.SGD, dict(momentum=0.9, dampening=0.1, nesterov=True), ValueError, "dampening"),
    (O.SGD, dict(nesterov=1), TypeError, "nesterov"),
    (O.SGD, dict(weight_decay=-1e-4), ValueError, "weight_decay"),
    (O.Adagrad, dict(lr_decay=-1), ValueError, "lr_decay"),
    (O.Adagrad, dict(eps=0.0), ValueError, "eps"),
    (O.Adagrad, dict(initial_accumulator_value=-1), ValueError, "initial_accumulator"),
    (O.RMSprop, dict(alpha=1.0), ValueError, "alpha"),
    (O.RMSprop, dict(alpha=-0.1), ValueError, "alpha"),
    (O.RMSprop, dict(eps=-1e-8), ValueError, "eps"),
    (O.RMSprop, dict(momentum=2.0), ValueError, "momentum"),
    (O.RMSprop, dict(centered="yes"), TypeError, "centered"),
    (O.Adam, dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    (O.Adam, dict(betas=(-0.1, 0.9)), ValueError, r"betas\[0\]"),
    (O.Adam, dict(betas=0.9), ValueError, "betas"),
    (O.Adam, dict(eps=0.0), ValueError, "eps"),
    (O.Adam, dict(amsgrad=None), TypeError, "amsgrad"),
    (O.AdamW, dict(weight_decay=-0.01), ValueError, "weight_decay"),
    (O.NotesMomentum, dict(beta=0.0), ValueError, "beta"),
    (O.NotesMomentum, dict(beta=1.5), ValueError, "beta"),
    (O.NotesAdaGrad, dict(eps=0.0), ValueError, "eps"),
    (O.SklearnSGD, dict(momentum=1.1), ValueError, "momentum"),
    (O.SklearnAdam, dict(beta_1=1.0), ValueError, "beta_1"),
    (O.SklearnAdam, dict(beta_2=-0.5), ValueError, "beta_2"),
    (O.SklearnAdam, dict(epsilon=0.0), ValueError, "epsilon"),
]


@pytest.mark.parametrize("cls, kw, exc, words", BAD_HYPER,
                         ids=[f"{c.__name__}-{next(iter(k))}" for c, k, _, _ in BAD_HYPER])
def test_bad_hyperparameters_raise(cls, kw, exc, words):
    with pytest.raises(exc, match=words):
        cls(**kw)


def _readonly(a):
    a.flags.writeable = False
    return a


BAD_STEP = [
    ("length", lambda: ([np.ones(3)], [np.ones(3), np.ones(2)]), ValueError,
     "1 params but 2"),
    ("shape", lambda: ([np.ones((2, 3))], [np.ones((3, 2))]), ShapeError, "shape"),
    ("grad_dtype", lambda: ([np.ones(3)], [np.ones(3, dtype=np.float32)]), DTypeError,
     "same dtype"),
    ("int_param", lambda: ([np.ones(3, dtype=int)], [np.ones(3, dtype=int)]), DTypeError,
     "float32 or float64"),
    ("list_param", lambda: ([[1.0, 2.0]], [np.ones(2)]), TypeError, "NumPy array"),
    ("not_a_list", lambda: ({"w": np.ones(2)}, [np.ones(2)]), TypeError, "list"),
    ("fortran", lambda: ([np.ones((3, 2), order="F")], [np.ones((3, 2))]), ValueError,
     "C-contiguous"),
    ("strided", lambda: ([np.ones(6)[::2]], [np.ones(3)]), ValueError, "C-contiguous"),
    ("readonly", lambda: ([_readonly(np.ones(3))], [np.ones(3)]), ValueError, "read-only"),
    ("complex_grad", lambda: ([np.ones(3)], [np.ones(3, dtype=complex)]), DTypeError,
     "dtype"),
]


@pytest.mark.parametrize("name, make, exc, words", BAD_STEP, ids=[b[0] for b in BAD_STEP])
def test_bad_params_and_grads_raise(name, make, exc, words):
    params, grads = make()
    opt = O.Adam()
    with pytest.raises(exc, match=words):
        opt.step(params, grads)
    assert opt.t == 0                                 # a failed step is not counted


def test_state_is_keyed_by_array_identity():
    """Before: state was matched by list position, so a new array of the same shape
    inherited it and a changed shape raised; now each array has its own."""
    a, b = np.ones(3), np.ones(4)
    opt = O.Adam()
    opt.step([a], [np.ones(3)])
    opt.step([b], [np.ones(4)])                     # another shape: its own state
    fresh = np.ones(3)
    opt.step([fresh], [np.ones(3)])                 # same shape, new array: fresh state
    assert opt.state[fresh]["step"] == 1 and opt.state[a]["step"] == 1
    f32 = np.ones(3, dtype=np.float32)
    opt.step([f32], [np.ones(3, dtype=np.float32)])
    assert opt.state[f32]["exp_avg"].dtype == np.float32


def test_a_changed_state_layout_asks_for_reset():
    p = np.ones(3)
    opt = O.SGD(lr=0.1)
    opt.step([p], [np.ones(3)])
    opt.momentum = 0.9                              # the state now needs a buffer row
    with pytest.raises(ShapeError, match="reset"):
        opt.step([p], [np.ones(3)])
    opt.reset()
    opt.step([p], [np.ones(3)])


def test_kernel_checks_buffer_sizes():
    cfg = O.Adam().config()
    p, g = np.ones(4), np.ones(4)
    with pytest.raises(ValueError, match="state must have shape"):
        K.optim_step(cfg, p, g, np.zeros((2, 3)), 1, 1)
    with pytest.raises(ValueError, match="state must have shape"):
        K.optim_step(cfg, p, g, np.zeros((3, 4)), 1, 1)
    with pytest.raises(ValueError, match="grad has 3"):
        K.optim_step(cfg, p, np.ones(3), np.zeros((2, 4)), 1, 1)
    with pytest.raises(ValueError, match="step"):
        K.optim_step(cfg, p, g, np.zeros((2, 4)), 0, 1)
    with pytest.raises(ValueError, match="lacks"):
        K.optim_step({"kind": 3}, p, g, np.zeros((2, 4)), 1, 1)
    with pytest.raises(ValueError, match="kind"):
        K.optim_step(dict(cfg, kind=42), p, g, np.zeros((2, 4)), 1, 1)


# ---- full-batch gradient descent ---------------------------------------------------------

def _quadratic_fun():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((6, 6))
    H = A @ A.T + np.eye(6)
    b = rng.standard_normal(6)
    return H, b, lambda w: (0.5 * w @ H @ w - b @ w, H @ w - b)


def test_gradient_descent_converges_on_a_convex_quadratic():
    H, b, f = _quadratic_fun()
    L = np.linalg.eigvalsh(H).max()
    res = O.gradient_descent(f, np.zeros(6), lr=1.0 / L, tol=1e-8, max_iter=100_000)
    w, n_iter, converged, hist = res
    assert converged and res.grad_norm <= 1e-8 and "converged" in res.message
    np.testing.assert_allclose(w, np.linalg.solve(H, b), rtol=1e-6, atol=1e-8)
    assert len(hist) == n_iter + 1
    assert all(b_ <= a_ + 1e-12 for a_, b_ in zip(hist, hist[1:]))  # lr <= 1/L: monotone


def test_gradient_descent_logistic_regression():
    rng = np.random.default_rng(2)
    X = np.hstack([rng.standard_normal((50, 2)), np.ones((50, 1))])
    y = (X[:, 0] - X[:, 1] + 0.5 * rng.standard_normal(50) > 0).astype(float)
    lam = 0.1

    def f(w):
        z = X @ w
        loss = np.mean(np.logaddexp(0, z) - y * z) + lam / 2 * w @ w
        return loss, X.T @ (1 / (1 + np.exp(-z)) - y) / len(y) + lam * w
    res = O.gradient_descent(f, np.zeros(3), lr=1.0, tol=1e-10, max_iter=10_000)
    assert res.converged
    assert np.linalg.norm(f(res.w)[1]) <= 1e-10


def test_gradient_descent_stops_at_max_iter_and_on_divergence():
    H, b, f = _quadratic_fun()
    res = O.gradient_descent(f, np.zeros(6), lr=1e-3, tol=0.0, max_iter=7)
    assert not res.converged and res.n_iter == 7 and "max_iter" in res.message
    L = np.linalg.eigvalsh(H).max()
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(RuntimeWarning,
                                                                    match="diverged"):
        res = O.gradient_descent(f, np.ones(6), lr=3.0 / L, tol=1e-6, max_iter=100_000)
    assert not res.converged and res.diverged and "diverged" in res.message
    res = O.gradient_descent(f, np.linalg.solve(H, b), lr=0.01, tol=1e-6)
    assert res.converged and res.n_iter == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_descent_divergence_returns_the_last_finite_iterate(dtype):
    """lr = 3/L on a quadratic: |w| grows by ~2x per step until the loss overflows. The
    result must be the last iterate whose loss and gradient were finite, bitwise, with
    its own loss and gradient norm -- never the non-finite point."""
    H, b, f = _quadratic_fun()
    seen = []

    def recording(w):
        seen.append(w.copy())
        loss, grad = f(w.astype(np.float64))
        return loss, grad
    L = np.linalg.eigvalsh(H).max()
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(
            RuntimeWarning, match="diverged at iteration"):
        res = O.gradient_descent(recording, np.ones(6, dtype=dtype), lr=3.0 / L, tol=0.0,
                                 max_iter=100_000)
    assert res.diverged and not res.converged and "diverged" in res.message
    assert res.w.dtype == dtype and np.isfinite(res.w).all()
    with np.errstate(over="ignore", invalid="ignore"):
        finite = [w for w in seen if np.isfinite(f(w.astype(np.float64))[0])
                  and np.isfinite(f(w.astype(np.float64))[1]).all()]
    assert res.w.tobytes() == finite[-1].tobytes()
    assert res.n_iter == len(finite) - 1 == len(res.loss_history) - 1
    assert np.isfinite(res.loss_history).all()
    assert res.loss_history[-1] == f(res.w.astype(np.float64))[0]
    g = f(res.w.astype(np.float64))[1]
    m = np.abs(g).max()                        # |g|^2 may overflow: norm of g / max|g|
    assert res.grad_norm == pytest.approx(m * np.linalg.norm(g / m), rel=1e-12)


def test_gradient_descent_update_overflow_keeps_the_finite_point():
    """A finite gradient whose step overflows (w - lr g = -inf): stop at w, not -inf."""
    w0 = np.array([-1e308, 0.0])
    with pytest.warns(RuntimeWarning, match="overflowed"):
        res = O.gradient_descent(lambda w: (float(w.sum()), np.ones(2)), w0, lr=1e308,
                                 max_iter=5)
    assert res.diverged and res.n_iter == 0 and res.w.tobytes() == w0.tobytes()


def test_gradient_descent_huge_but_finite_gradient_is_not_divergence():
    """|grad| of a finite 1e200 gradient overflows when squared; it is still finite."""
    res = O.gradient_descent(lambda w: (1e200 * float(w.sum()), np.full(4, 1e200)),
                             np.zeros(4), lr=1e-300, tol=0.0, max_iter=3)
    assert not res.diverged and res.n_iter == 3 and np.isfinite(res.w).all()
    assert res.grad_norm == pytest.approx(2e200)


def test_gradient_descent_does_not_modify_w0_and_keeps_float32():
    w0 = np.ones(2, dtype=np.float32)
    res = O.gradient_descent(lambda w: (float(w @ w), 2 * w), w0, lr=0.25, tol=1e-6)
    assert (w0 == 1).all() and res.w.dtype == np.float32 and res.converged


@pytest.mark.parametrize("kw, exc, words", [
    (dict(fun_and_grad=None), TypeError, "callable"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(tol=-1.0), ValueError, "tol"),
    (dict(max_iter=1.5), TypeError, "max_iter"),
    (dict(fun_and_grad=lambda w: (0.0, np.ones(3))), ShapeError, "shape"),
    (dict(fun_and_grad=lambda w: 1.0), TypeError, "pair"),
    (dict(fun_and_grad=lambda w: (np.nan, w)), NonFiniteError, "finite"),
    (dict(w0=np.array(["a"])), TypeError, "w0"),
])
def test_gradient_descent_bad_input(kw, exc, words):
    args = dict(fun_and_grad=lambda w: (float(w @ w), 2 * w), w0=np.ones(2), lr=0.1)
    args.update(kw)
    with pytest.raises(exc, match=words):
        O.gradient_descent(**args)


def test_a_bad_array_leaves_every_param_untouched():
    # validation runs over all arrays before the first update
    good, bad = np.ones(3), np.ones(4)
    opt = O.SGD(lr=0.1, momentum=0.9)
    opt.step([good, bad], [np.ones(3), np.ones(4)])
    before = good.copy(), bad.copy(), [s.copy() for s in opt.state_arrays([good, bad])]
    with pytest.raises(ShapeError, match=r"grads\[1\]"):
        opt.step([good, bad], [np.ones(3), np.ones(5)])
    np.testing.assert_array_equal(good, before[0])
    np.testing.assert_array_equal(bad, before[1])
    for s, s0 in zip(opt.state_arrays([good, bad]), before[2]):
        np.testing.assert_array_equal(s, s0)
    assert opt.t == 1


def test_arrays_kernel_checks_states():
    cfg = O.Adam().config()
    p, g = np.ones(4), np.ones(4)
    with pytest.raises(ShapeError, match="state has shape"):
        K.optim_step_arrays(cfg, [p], [g], [np.zeros((2, 3))], 1, 1, 0)
    with pytest.raises(DTypeError, match="state is float32"):
        K.optim_step_arrays(cfg, [p], [g], [np.zeros((2, 4), np.float32)], 1, 1, 0)
    with pytest.raises(ValueError, match="1 params, 1 grads and 2 states"):
        K.optim_step_arrays(cfg, [p], [g], [np.zeros((2, 4))] * 2, 1, 1, 0)
    ro = np.zeros((2, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        K.optim_step_arrays(cfg, [p], [g], [ro], 1, 1, 0)


@pytest.mark.parametrize("name, cls, kw, tc, sk", CASES, ids=IDS)
def test_pickle_round_trip_keeps_state_and_step(name, cls, kw, tc, sk):
    import pickle
    rng = np.random.default_rng(1)
    p = rng.standard_normal(6)
    opt = cls([p], **kw)
    for _ in range(3):
        opt.step([np.cos(p)])
    clone = pickle.loads(pickle.dumps(opt))         # with its own copy of the arrays
    (q,) = clone.param_groups[0]["params"]
    assert q is not p and clone.t == 3 and clone.config() == opt.config()
    np.testing.assert_array_equal(p, q)
    opt.step([np.cos(p)])
    clone.step([np.cos(q)])
    np.testing.assert_array_equal(p, q)


# ---- overflow: finite in, non-finite out is refused, everything left unchanged ---------

OVERFLOW_RULES = [
    (O.SGD, {}), (O.SGD, dict(momentum=0.9, nesterov=True)), (O.Adagrad, {}),
    (O.RMSprop, {}), (O.RMSprop, dict(centered=True)),
    (O.RMSprop, dict(centered=True, momentum=0.5)), (O.Adam, {}),
    (O.Adam, dict(amsgrad=True)), (O.AdamW, {}), (O.NotesMomentum, {}),
    (O.NotesAdaGrad, {}), (O.SklearnSGD, {}), (O.SklearnAdam, {}),
    (O.RMSprop, dict(centered=True, eps=1e-300)), (O.Adam, dict(eps=1e-300, weight_decay=1.0)),
    (O.SGD, dict(weight_decay=1.0))]
# Huge but finite gradients per dtype: 1e155 (f64) and 1e20 (f32) square past the dtype's
# max; the larger ones overflow even (1 - beta2) g^2.
# The sweep crosses the magnitude below which the kernel skips its dry run (_safe_bound):
# an overflow must not slip through on either side.
HUGE = {np.float64: [1e100, 1e140, 1e150, 1e152, 1e153, 1e154, 1e155, 1e200, 1e300],
        np.float32: [1e10, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e30, 3e38]}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls, kw", OVERFLOW_RULES,
                         ids=[f"{c.__name__}-{'-'.join(k) or 'default'}"
                              for c, k in OVERFLOW_RULES])
def test_step_on_a_huge_gradient_is_a_real_step_or_refused(cls, kw, dtype):
    """A finite gradient too large for the dtype: either the step is an honest finite
    update (param and state finite, the huge element moved) or NonFiniteError naming the
    optimizer and array, with params, state and t exactly as before. Never the old
    outcomes: a state of inf and a silently skipped step, or NaN. (PyTorch gives those.)"""
    for g_big in HUGE[dtype]:
        opt = cls(lr=1e-3, **kw)
        params = [np.ones(3, dtype), np.full((2, 2), 0.5, dtype)]
        opt.step(params, [np.full(3, 0.1, dtype), np.full((2, 2), -0.2, dtype)])
        before = [p.copy() for p in params]
        state_before = [s.copy() for s in opt.state_arrays(params)]
        grads = [np.full(3, 0.1, dtype), np.array([[0.3, g_big], [0.1, -0.1]], dtype)]
        try:
            with np.errstate(all="raise"):          # no hidden overflow in Python code
                opt.step(params, grads)
        except NonFiniteError as exc:
            msg = str(exc)
            assert cls.__name__ in msg and "params[1] element 1" in msg
            assert "nothing was updated" in msg
            _assert_bitwise(params, before)
            _assert_bitwise(opt.state_arrays(params), state_before)
            assert opt.t == 1
            continue
        assert all(np.isfinite(p).all() for p in params), (g_big, params)
        assert all(np.isfinite(s).all() for s in opt.state_arrays(params)), g_big
        assert params[1][0, 1] != before[1][0, 1], "the step was silently skipped"
        assert opt.t == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls, kw", [(c, dict(k, weight_decay=0.0) if c is O.AdamW else k)
                                     for c, k in OVERFLOW_RULES if "weight_decay" not in k],
                         ids=lambda v: getattr(v, "__name__", None))
def test_huge_params_without_weight_decay_step_as_unchecked_or_are_refused(cls, kw, dtype):
    """Without weight decay the bound check reads no param (the design note of
    optim.pyx): params up to the dtype's max with steps from tiny to past half an ulp
    of that max must give exactly the unchecked kernel's result, or NonFiniteError with
    nothing changed where the unchecked kernel turns a finite value non-finite."""
    big = float(np.finfo(dtype).max)
    w0 = np.array([big, -big, big / 2, 1.0, -big * 0.999], dtype)
    g = np.array([-1.0, 1.0, -3.0, 0.5, 2.0], dtype)         # w - step grows |w|
    lrs = [1e-3, 1.0, 1e250, 1e290, 1e292, 1e293, 1e300] if dtype == np.float64 else [
        1e-3, 1.0, 1e28, 1e30, 1e31, 2e31, 1e33]
    refused = 0
    for lr in lrs:
        opt, w = cls(lr=lr, **kw), w0.copy()
        opt.step([w], [np.zeros_like(w)])                    # the state, unmoved w
        want, rows = w.copy(), opt.state_arrays([w])[0].copy()
        with np.errstate(all="ignore"):
            K.optim_step(opt.config(), want, g, rows, 2, 1)
        grows = (np.isfinite(w) & ~np.isfinite(want)).any() or (
            np.isfinite(opt.state_arrays([w])[0]) & ~np.isfinite(rows)).any()
        before, state_before = w.copy(), opt.state_arrays([w])[0].copy()
        if grows:
            refused += 1
            with pytest.raises(NonFiniteError, match="nothing was updated"):
                opt.step([w], [g])
            _assert_bitwise([w, opt.state_arrays([w])[0]], [before, state_before])
        else:
            opt.step([w], [g])
            _assert_bitwise([w, opt.state_arrays([w])[0]], [want, rows])
    assert refused > 0, "no step in the sweep overflows: the test checks nothing"


@pytest.mark.parametrize("cls, kw", ADAM_WIDE_RULES[:6],
                         ids=lambda x: x.__name__ if isinstance(x, type)
                         else "-".join(map(str, x.values())) or "default")
def test_float32_adam_loop_refuses_an_overflow_and_keeps_a_nan_at_every_position(cls, kw):
    """Through Optimizer.step, whose float32 Adam runs optim_f32.h's loop (8 elements a
    step, then a tail): a gradient whose (1 - beta2) g^2 passes float32's max, at any
    position of arrays of 1 to 3 vectors and a tail, is refused with every array as it
    was; a NaN or inf gradient there is stepped, and only its own element leaves the
    finite values."""
    rng = np.random.default_rng(10)
    for n in (7, 8, 9, 16, 17, 27):
        w0 = rng.standard_normal(n).astype(np.float32)
        g0 = rng.standard_normal(n).astype(np.float32)
        for j in range(n):
            opt, w = cls(**kw), w0.copy()
            opt.step([w], [g0])
            before, state_before = w.copy(), opt.state_arrays([w])[0].copy()
            g = g0.copy()
            g[j] = 1e30                          # (1 - beta2) g^2 > float32 max
            with pytest.raises(NonFiniteError, match=f"element {j} .*nothing was updated"):
                opt.step([w], [g])
            _assert_bitwise([w, opt.state_arrays([w])[0]], [before, state_before])
            for bad in (np.nan, np.inf):
                g[j] = bad
                opt2, w2 = cls(**kw), w0.copy()
                opt2.step([w2], [g0])
                with np.errstate(invalid="ignore"):
                    opt2.step([w2], [g])
                others = np.arange(n) != j
                assert not np.isfinite(w2[j]) and np.isfinite(w2[others]).all(), (n, j)
                assert np.isfinite(opt2.state_arrays([w2])[0][:, others]).all(), (n, j)


@pytest.mark.parametrize("cls, kw", ADAM_WIDE_RULES[:6],
                         ids=lambda x: x.__name__ if isinstance(x, type)
                         else "-".join(map(str, x.values())) or "default")
def test_float32_adam_loop_writes_nothing_past_its_arrays(cls, kw):
    """optim_f32.h's Adam loop stores its tail (fewer than 8 elements) under a mask
    (AVX-512) or from zero-padded copies (AVX2): with param, grad and state each followed
    by 8 sentinel floats in the same buffer, a step on every length to two vectors and a
    tail, split over 1 and 2 threads (each chunk with a tail of its own), leaves every
    sentinel's bits as they were (the bitwise test cannot see a write past the end of
    param or of the last state row)."""
    cfg = cls(**kw).config()
    slots = K.state_slots(cfg)
    rng = np.random.default_rng(11)
    for n in range(1, 26):
        for n_threads in (1, 2):
            bufs = [rng.standard_normal(size + 8).astype(np.float32)
                    for size in (n, n, slots * n)]
            bufs[2][:slots * n] = np.abs(bufs[2][:slots * n])
            tails = [b[-8:].copy() for b in bufs]
            p, g, s = bufs[0][:n], bufs[1][:n], bufs[2][:slots * n].reshape(slots, n)
            K.optim_step(cfg, p, g, s, 2, n_threads)
            for b, t in zip(bufs, tails):
                assert b[-8:].tobytes() == t.tobytes(), (n, n_threads)


def _assert_bitwise(got, want):
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("cls, kw, g_big", [
    (O.Adagrad, {}, 1e155), (O.NotesAdaGrad, {}, 1e155), (O.SklearnAdam, {}, 1e155),
    (O.RMSprop, {}, 1e160), (O.RMSprop, dict(centered=True), 1e160), (O.Adam, {}, 1e160),
    (O.AdamW, dict(amsgrad=True), 1e160)], ids=lambda v: getattr(v, "__name__", None))
def test_overflowing_second_moment_is_refused(cls, kw, g_big):
    """These must raise (g^2 or (1 - beta) g^2 overflows float64): the case the old code
    turned into a silently skipped step."""
    opt = cls(**kw)
    p = np.ones(4)
    with pytest.raises(NonFiniteError, match=f"{cls.__name__} step 1: params\\[0\\] "
                                             "element 2.*overflows float64"):
        opt.step([p], [np.array([1.0, -1.0, g_big, 0.0])])
    assert (p == 1).all() and opt.t == 0
    assert (opt.state_arrays([p])[0] == opt._initial_state_value()).all()
    opt.step([p], [np.array([1.0, -1.0, 2.0, 0.0])])          # still usable
    assert opt.t == 1 and np.isfinite(p).all()


def test_non_finite_gradient_is_not_an_overflow_error():
    """NaN/inf *in* give NaN/inf in those elements only (as before, and as PyTorch)."""
    p = np.ones(3)
    O.Adam().step([p], [np.array([np.nan, 1.0, np.inf])])
    assert np.isnan(p[0]) and np.isfinite(p[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_native_byte_order_grads_are_read_as_their_values(dtype):
    """A big-endian gradient of 1e-3 was read with its bytes swapped (a step of 3e291)."""
    swapped = np.dtype(dtype).newbyteorder(">" if np.little_endian else "<")
    for fresh in (True, False):
        p, q = np.ones(4, dtype), np.ones(4, dtype)
        a, b = O.Adam(lr=0.1), O.Adam(lr=0.1)
        if not fresh:                              # state already created
            a.step([p], [np.zeros(4, dtype)]), b.step([q], [np.zeros(4, dtype)])
        g = np.full(4, 1e-3, dtype)
        a.step([p], [g.astype(swapped)])
        b.step([q], [g])
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("fresh", [True, False], ids=["new-state", "existing-state"])
def test_non_native_byte_order_params_are_refused(fresh):
    swapped = np.dtype(np.float64).newbyteorder(">" if np.little_endian else "<")
    opt = O.SGD(lr=0.1)
    if not fresh:
        opt.step([np.ones(3)], [np.ones(3)])
    p = np.ones(3, swapped)
    with pytest.raises(DTypeError, match=r"params\[0\] has non-native byte order.*newbyteorder"):
        opt.step([p], [np.ones(3)])
    np.testing.assert_array_equal(p, 1.0)


# ---- SGD without weight decay: the bound check reads no param ---------------------------
# The kernel skips the dry run of PyTorch's SGD (wd = 0) when the gradient and momentum
# buffer are small enough, whatever the params (a finite w moved by less than half an ulp
# of the dtype's max stays finite: _sgd_bound). With params at the dtype's max, steps
# around that margin (2^102 in float32, 2^969 in float64) and buffers near the max, a
# step must be refused exactly when the unguarded update (``optim_step``, the same
# compiled arithmetic) turns a finite element non-finite, and otherwise equal it bitwise.

SGD_GUARD_RULES = [dict(lr=1.0), dict(lr=0.1), dict(lr=3e-3, momentum=0.9),
                   dict(lr=1.0, momentum=0.9, nesterov=True),
                   dict(lr=0.5, momentum=0.5, dampening=0.5)]


def _first_overflow(cfg, p, g, s, step):
    """(index of the first element the unguarded update turns from finite to
    non-finite or None, the updated copies)."""
    p1, s1 = p.copy(), s.copy()
    K.optim_step(cfg, p1, g, s1, step, 1)
    was = np.isfinite(p) & np.isfinite(g) & np.isfinite(s).all(axis=0)
    bad = np.flatnonzero(was & ~(np.isfinite(p1) & np.isfinite(s1).all(axis=0)))
    return (int(bad[0]) if bad.size else None), p1, s1


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kw", SGD_GUARD_RULES, ids=lambda kw: "-".join(map(str, kw.values())))
def test_sgd_guard_without_a_param_check_refuses_exactly_the_overflows(kw, dtype):
    big = float(np.finfo(dtype).max)
    margin = 2.0 ** (102 if dtype == np.float32 else 969)
    steps = [margin / kw["lr"] * f for f in (0.25, 0.5, 1.0, 2.0, 4.0)]
    pool_p = [big, -big, big / 2, float(np.nextafter(dtype(big), dtype(0))), 1.0, 0.0]
    pool_g = [1e-3, -1.0] + steps + [-x for x in steps] + [big, -big / 3]
    pool_s = [0.0, 1.0, big / 4, -big / 2, big] + steps[:3]
    cfg = O.SGD(**kw).config()
    slots = K.state_slots(cfg)
    rng = np.random.default_rng(0)
    refused = accepted = 0
    for trial in range(400):
        n = int(rng.integers(1, 5))
        p = np.array(rng.choice(pool_p, n), dtype)
        g = np.array(rng.choice(pool_g, n) if trial % 3 else np.full(n, 1e-3), dtype)
        s = np.array(rng.choice(pool_s, (slots, n)), dtype)
        step = int(rng.integers(1, 3))
        bad, p_want, s_want = _first_overflow(cfg, p, g, s, step)
        p1, s1 = p.copy(), s.copy()
        if bad is None:
            K.optim_step_arrays(cfg, [p1], [g], [s1], step, 1, 1)
            _assert_bitwise([p1, s1], [p_want, s_want])
            accepted += 1
        else:
            with pytest.raises(NonFiniteError, match=f"params\\[0\\] element {bad} "):
                K.optim_step_arrays(cfg, [p1], [g], [s1], step, 1, 1)
            _assert_bitwise([p1, s1], [p, s])
            refused += 1
    assert refused > 20 and accepted > 20, (refused, accepted)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cls, kw", [(O.SGD, {}), (O.SGD, dict(momentum=0.9)), (O.Adam, {})],
                         ids=["sgd", "momentum", "adam"])
def test_overflow_at_either_end_of_a_threaded_array_is_refused(cls, kw, dtype):
    """The bound check splits a large array over the threads and reads several arrays
    per pass, blocks from the end backward: an overflowing element at the first, a
    middle or the last index of a two-thread array is named, and nothing changes."""
    big = np.finfo(dtype).max
    for pos in (0, 35000, 35001, 70000):
        params = [np.ones(70001, dtype), np.ones(5, dtype)]
        opt = cls(params, lr=1.0, **kw)
        opt.step([np.full(70001, 0.1, dtype), np.full(5, 0.1, dtype)], n_threads=2)
        params[0][pos] = big
        before = [p.copy() for p in params]
        state_before = [s.copy() for s in opt.state_arrays(params)]
        g = np.full(70001, 0.1, dtype)
        g[pos] = -big                                  # w - lr g = 2 max: overflows
        with pytest.raises(NonFiniteError, match=f"params\\[0\\] element {pos} "):
            opt.step([g, np.full(5, 0.1, dtype)], n_threads=2)
        _assert_bitwise(params, before)
        _assert_bitwise(opt.state_arrays(params), state_before)
