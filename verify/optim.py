"""Optimizer update rules as symbolic equations, and nnlib's compiled steps against them.

Design note
-----------
Each rule is written here from its source of truth — PyTorch's documented algorithms
(torch.optim, single-tensor path), scikit-learn's ``_stochastic_optimizers.py``, and the
lecture notes (momentum as an exponentially weighted average; AdaGrad with the stabilizer
under the root) — as a sequence of SymPy assignments ``lhs <- rhs`` over one coordinate
(w the parameter, g the gradient, t the 1-based step, the state and the hyper-parameters
as symbols). Boolean options (nesterov, centered, amsgrad) select the sequence; numeric
ones stay symbols and are substituted with the optimizer's ``config()`` values.

The check runs three steps of ``opt.step(params, grads)`` on a float64 and a float32
vector, with gradients of different sizes per step (so AMSGrad's max and the first-step
momentum buffer are exercised), and compares every coordinate after every step with the
exact recursion (mpmath, 40 digits) started from the same values.

Float32 quotients. Float32 Adam, AdamW, Adagrad and uncentered RMSprop take
``a / (k sqrt(v) + eps)`` from float seeds refined by a Newton step in double
(``_quot_root_f32`` in ``optim_rules.pxd.tp``), documented as the double formula's
rounding but for ties. The 4-ulp tolerance above cannot tell that from the seeds alone
(about 2^-23 relative, a last-bit error in a good share of elements), so
``check_quotient_f32`` holds the compiled float32 step to the rule's double formula,
evaluated from the float32 states the step stored (so only the quotient is under test),
on thousands of elements, each from p = 0 (the new weight is the step itself, rounded
once: nothing cancels): at most 1 ulp anywhere and all but a handful of elements bit
for bit.
"""
import time

import mpmath
import numpy as np
import sympy as sp

from verify import kernels as K
from verify.evidence import MPMATH, lambdify, measure
from verify.registry import Tolerance

__all__ = ["RULES", "CONFIGS", "QUOTIENT_CONFIGS", "symbolic_rule", "check_optimizer",
           "check_quotient_f32", "run_optimizers"]

w, g, t = sp.symbols("w g t", real=True)
b, G, s, a, m, v, vmax = sp.symbols("b G s a m v v_max", real=True)
lr, mu, tau, wd, alpha, eps, beta, beta1, beta2, lr_decay = sp.symbols(
    "eta mu tau lambda alpha epsilon beta beta_1 beta_2 delta", positive=True)


def _sgd(h):
    eq = [(g, g + wd * w)]
    if h["momentum"]:
        eq.append((b, sp.Piecewise((g, sp.Eq(t, 1)), (mu * b + (1 - tau) * g, True))))
        eq.append((g, g + mu * b) if h["nesterov"] else (g, b))
    return eq + [(w, w - lr * g)]


def _adagrad(h):
    return [(g, g + wd * w), (G, G + g ** 2),
            (w, w - lr / (1 + (t - 1) * lr_decay) * g / (sp.sqrt(G) + eps))]


def _rmsprop(h):
    eq = [(g, g + wd * w), (s, alpha * s + (1 - alpha) * g ** 2)]
    if h["centered"]:
        eq.append((a, alpha * a + (1 - alpha) * g))
        d = sp.sqrt(s - a ** 2) + eps
    else:
        d = sp.sqrt(s) + eps
    if h["momentum"]:
        return eq + [(b, mu * b + g / d), (w, w - lr * b)]
    return eq + [(w, w - lr * g / d)]


def _adam(h, decoupled=False):
    eq = [(w, w * (1 - lr * wd))] if decoupled else [(g, g + wd * w)]
    eq += [(m, beta1 * m + (1 - beta1) * g), (v, beta2 * v + (1 - beta2) * g ** 2)]
    vv = v
    if h["amsgrad"]:
        eq.append((vmax, sp.Max(vmax, v)))
        vv = vmax
    return eq + [(w, w - lr / (1 - beta1 ** t) * m / (sp.sqrt(vv) / sp.sqrt(1 - beta2 ** t)
                                                         + eps))]


# The notes' and scikit-learn's classes fix weight_decay at 0 (the estimators add their own
# L2 term), but the compiled rule applies g <- g + wd w for them as for PyTorch's (the
# training loop can be handed any config): with a weight_decay in the config, so do these.

def _decay(h):
    return [(g, g + wd * w)] if h["weight_decay"] else []


def _notes_momentum(h):
    return _decay(h) + [(v, (1 - beta) * v + beta * g), (w, w - lr * v)]


def _notes_adagrad(h):
    return _decay(h) + [(G, G + g ** 2), (w, w - lr * g / sp.sqrt(eps + G))]


def _sklearn_sgd(h):
    eq = _decay(h) + [(v, mu * v - lr * g)]
    return eq + [(w, w + mu * v - lr * g) if h["nesterov"] else (w, w + v)]


def _sklearn_adam(h):
    return _decay(h) + [(m, beta1 * m + (1 - beta1) * g),
            (v, beta2 * v + (1 - beta2) * g ** 2),
            (w, w - lr * sp.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (sp.sqrt(v) + eps))]


RULES = {
    "SGD": (_sgd, "PyTorch torch.optim.SGD"),
    "Adagrad": (_adagrad, "PyTorch torch.optim.Adagrad"),
    "RMSprop": (_rmsprop, "PyTorch torch.optim.RMSprop"),
    "Adam": (_adam, "PyTorch torch.optim.Adam"),
    "AdamW": (lambda h: _adam(h, decoupled=True), "PyTorch torch.optim.AdamW"),
    "NotesMomentum": (_notes_momentum, "the notes: v <- (1-beta) v + beta grad; w <- w - eta v"),
    "NotesAdaGrad": (_notes_adagrad, "the notes: G <- G + g^2; w <- w - eta g / sqrt(eps + G)"),
    "SklearnSGD": (_sklearn_sgd, "scikit-learn SGDOptimizer"),
    "SklearnAdam": (_sklearn_adam, "scikit-learn AdamOptimizer"),
}

# (class name, constructor kwargs): every option of every rule at least once.
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.01, momentum=0.5, centered=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("NotesMomentum", dict(lr=0.1, beta=0.3)),
    ("NotesAdaGrad", dict(lr=0.1, eps=1e-8)),
    ("SklearnSGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SklearnSGD", dict(lr=0.1, momentum=0.9, nesterov=False)),
    ("SklearnAdam", dict(lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)),
]

_SYM_OF_FIELD = {"lr": lr, "momentum": mu, "dampening": tau, "weight_decay": wd,
                 "alpha": alpha, "eps": eps, "beta1": beta1, "beta2": beta2,
                 "lr_decay": lr_decay}


def symbolic_rule(cls_name, cfg):
    """The assignments for optimizer ``cls_name`` with ``cfg`` (its ``config()`` dict)."""
    h = dict(momentum=cfg.get("momentum", 0) != 0, nesterov=bool(cfg.get("nesterov")),
             centered=bool(cfg.get("centered")), amsgrad=bool(cfg.get("amsgrad")),
             weight_decay=cfg.get("weight_decay", 0) != 0)
    return RULES[cls_name][0](h)


def rule_latex(eqs):
    return r" \\ ".join(f"{sp.latex(lhs)} \\leftarrow {sp.latex(rhs)}" for lhs, rhs in eqs)


def _hyper_values(cls_name, cfg):
    vals = {sym: cfg[f] for f, sym in _SYM_OF_FIELD.items() if f in cfg}
    if cls_name == "NotesMomentum":           # the notes' beta travels in the momentum field
        vals[beta] = cfg["momentum"]
    return vals


def path_sizes():
    """Vector lengths that straddle the optimizers' blocks (OPTIM_CHECK_CHUNK of
    nnlib/_paths.py: the overflow dry run) and split over threads."""
    from nnlib._paths import path_value
    c = path_value("OPTIM_CHECK_CHUNK")
    return [c - 1, c, c + 1, 2 * c + 1]


def check_optimizer(cls_name, kwargs, dtypes=("float64", "float32"), n=5, steps=3, seed=0,
                    sizes=(), threaded=True):
    """Run ``steps`` updates of nnlib.optim.<cls_name>(**kwargs) and compare with the
    symbolic rule. Returns a dict (passed, max_ulps per dtype, first failure, latex).

    ``sizes``: also run vectors of these lengths, the n coordinates repeated (the rule is
    elementwise, so every element has the exact value of its coordinate); the longest also
    on several threads (when ``threaded``), which must agree bit for bit with one."""
    cls = K.nnlib_attr("optim." + cls_name)
    if cls is None:
        return None
    rng = np.random.default_rng(seed)
    res = {"passed": True, "stats": {}, "first_failure": None}
    tol = {"float64": Tolerance(16, 16), "float32": Tolerance(4, 4)}
    eqs = None
    rules = {}          # the symbolic rule and its lambdified lines, per config (dtypes share)
    for dname in dtypes:
        dt = np.dtype(dname).type
        opt = cls(**kwargs)
        cfg = opt.config()
        eqs = symbolic_rule(cls_name, cfg)
        p = (rng.standard_normal(n) * 2).astype(dt)
        grads = [(rng.standard_normal(n) * [2.0, 0.1, 1.0][(step - 1) % 3]).astype(dt)
                 for step in range(1, steps + 1)]
        exact_w = _exact_trajectory(cls_name, cfg, eqs, p, grads, rules)
        worst = 0.0
        from nnlib import _threads
        several = max(2, _threads.thread_limit())
        # (size, threads) -> [optimizer, vector]: the long vectors repeat the n coordinates
        longs = {(N, nt): [cls(**kwargs), np.resize(p, N).astype(dt)]
                 for N in sizes for nt in ((1, several) if N == sizes[-1] and threaded
                                           else (1,))}
        for step in range(1, steps + 1):
            grad = grads[step - 1]
            opt.step([p], [grad])
            for (N, nt), (o, P) in longs.items():
                o.step([P], [np.resize(grad, N).astype(dt)], n_threads=nt)
            with mpmath.workdps(40):
                for i in range(n):
                    e = {"w": exact_w[step - 1][i]}
                    ms = measure(p[i], e["w"], dt)
                    worst = max(worst, ms.ulps)
                    scale = max(abs(float(e["w"])), 1e-3)
                    ok = ms.ulps <= tol[dname].ulps or ms.abs_eps <= tol[dname].abs_eps * scale
                    if not ok and res["passed"]:
                        res["passed"] = False
                        res["first_failure"] = (f"{dname} step {step} coordinate {i}: got "
                                                f"{float(p[i])!r}, exact "
                                                f"{mpmath.nstr(e['w'], 17)} ({ms.ulps:.3g} ulp)")
                    for (N, nt), (o, P) in longs.items():
                        # elements with the bits of the short run's coordinate i are
                        # measured already; any other is measured itself
                        ut = np.uint64 if P.itemsize == 8 else np.uint32
                        for j in np.nonzero(np.ascontiguousarray(P[i::n]).view(ut)
                                            != np.asarray(p[i]).view(ut))[0]:
                            j = i + n * int(j)
                            ml = measure(P[j], e["w"], dt)
                            worst = max(worst, ml.ulps)
                            if not (ml.ulps <= tol[dname].ulps or
                                    ml.abs_eps <= tol[dname].abs_eps * scale) and res["passed"]:
                                res["passed"] = False
                                res["first_failure"] = (
                                    f"{dname} step {step}, a vector of {N} on {nt} thread(s), "
                                    f"element {j}: got {float(P[j])!r}, exact "
                                    f"{mpmath.nstr(e['w'], 17)} ({ml.ulps:.3g} ulp)")
            for N in sizes[-1:] if threaded else []:
                a1, a2 = longs[(N, 1)][1], longs[(N, several)][1]
                if a1.tobytes() != a2.tobytes() and res["passed"]:
                    res["passed"] = False
                    res["first_failure"] = (f"{dname} step {step}, a vector of {N}: 1 and "
                                            f"{several} threads differ (the update is "
                                            "elementwise: it must not depend on the split)")
        res["stats"][dname] = {"max_ulps": worst, "n_values": n * steps,
                               "tolerance": tol[dname].as_dict()}
    res["latex"] = rule_latex(eqs)
    res["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
    return res


def _exact_trajectory(cls_name, cfg, eqs, p, grads, rules):
    """The exact weights after each step ([step][coordinate], 40 digits) of the symbolic
    rule ``eqs`` from ``p`` under ``grads``. A pure function of the rule (verify's source),
    the config and the numbers, all in the key: derived once, then read from verify.cache
    bit for bit. ``rules``: {config: lambdified lines}, shared by the dtypes of a check."""
    from verify import cache

    def compute():
        key = repr(sorted(cfg.items()))
        if key not in rules:
            hv = _hyper_values(cls_name, cfg)
            rules[key] = [(lhs, lambdify([w, g, t, b, G, s, a, m, v, vmax],
                                         rhs.subs({k: sp.Float(x, 30)
                                                   for k, x in hv.items()}),
                                         MPMATH)) for lhs, rhs in eqs]
        fns = rules[key]
        env = [dict(w=mpmath.mpf(float(x)), b=mpmath.mpf(0),
                    G=mpmath.mpf(cfg.get("initial_accumulator_value", 0.0)), s=mpmath.mpf(0),
                    a=mpmath.mpf(0), m=mpmath.mpf(0), v=mpmath.mpf(0), v_max=mpmath.mpf(0))
               for x in p]
        out = []
        for step, grad in enumerate(grads, 1):
            with mpmath.workdps(40):
                for e, gi in zip(env, grad):
                    e["g"] = mpmath.mpf(float(gi))
                    for lhs, fn in fns:
                        e[str(lhs)] = fn(e["w"], e["g"], step, e["b"], e["G"], e["s"], e["a"],
                                         e["m"], e["v"], e["v_max"])
            out.append([e["w"] for e in env])
        return out
    payload = (cls_name, sorted(cfg.items()), sp.srepr(eqs), p.dtype.str, p.tobytes(),
               [gr.tobytes() for gr in grads])
    return cache.exact_values("optimizer steps", payload, compute)


# Float32 rules whose quotient comes from the float seeds (see the design note).
QUOTIENT_CONFIGS = [
    ("Adam", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9)),
]


def _quotient_step(cls_name, c, grad, state, step):
    """The new weight from w = 0 by the rule's double formula, given the states the
    compiled step stored (float32 values, read as doubles): minus the step."""
    S = state.astype(np.float64)
    if cls_name in ("Adam", "AdamW"):
        step_size = c["lr"] / (1.0 - c["beta1"] ** step)
        denom = np.sqrt(S[1]) / np.sqrt(1.0 - c["beta2"] ** step) + c["eps"]
        return -step_size * (S[0] / denom)
    g = grad.astype(np.float64)
    if cls_name == "Adagrad":
        decay = c["lr"] / (1.0 + (step - 1) * c["lr_decay"])
        return -decay * (g / (np.sqrt(S[0]) + c["eps"]))
    return -c["lr"] * (g / (np.sqrt(S[0]) + c["eps"]))          # RMSprop, plain


# the stored float32 moments' largest distance from their recursion (``_moment_step``)
MOMENT_ULPS = 4


def check_quotient_f32(cls_name, kwargs, n=4096, steps=3, seed=0):
    """Float32 steps of nnlib.optim.<cls_name>(**kwargs) against the rule's double
    formula.

    Each step starts the weights from 0 (the states carried over), with gradients spread
    over nine decades, so the new weight is minus the step rounded once; the formula is
    evaluated in float64 from the states the compiled step stored (``_quotient_step``),
    so only the quotient is under test. Passes when no element is more than 1 ulp from
    the formula's rounding and at most ``max(2, 1e-4 n steps)`` differ at all (a value
    within 2^-44 of a tie may round either way: about 2^-20 of the elements), and when
    every moment the step stored is within MOMENT_ULPS of its recursion from the state
    stored before the step (``_moment_step``).

    Returns
    -------
    dict or None
        passed, max_ulps, mismatches, allowed, n_values, first_failure, state_max_ulps,
        state_mismatches, state_first_failure; None without nnlib.optim.
    """
    cls = K.nnlib_attr("optim." + cls_name)
    if cls is None:
        return None
    rng = np.random.default_rng(seed)
    p = np.zeros(n, np.float32)
    opt = cls([p], **kwargs)
    cfg = opt.config([p])
    worst, mismatches, first = 0, 0, None
    s_worst, s_mismatches, s_first = 0, 0, None
    for step in range(1, steps + 1):
        grad = (rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 3, n)).astype(np.float32)
        p[:] = 0.0
        before = opt.state_arrays([p])[0].copy()
        opt.step([p], [grad])
        state = opt.state_arrays([p])[0]
        want = _quotient_step(cls_name, cfg, grad, state, step)
        want = want.astype(np.float32)
        ulps = np.abs(p.view(np.int32).astype(np.int64) - want.view(np.int32))
        worst = max(worst, int(ulps.max()))
        bad = np.flatnonzero(ulps)
        mismatches += bad.size
        if bad.size and first is None:
            i = bad[0]
            first = (f"step {step} element {i}: got {float(p[i])!r}, the double formula "
                     f"rounds to {float(want[i])!r} ({int(ulps[i])} ulp; gradient "
                     f"{float(grad[i])!r})")
        # the moments the step stored, each against its recursion from the previous
        # stored state (the quotient above reads them as stored, so a moment off by a
        # coefficient would pass it): within MOMENT_ULPS, as the rules' float forms of
        # torch's in-place updates round (1 ulp seen), where a coefficient rounded to
        # float (1 - beta2 from a float beta2: 1.3e-5 relative) is ~200
        want_s = _moment_step(cls_name, cfg, grad, before).astype(np.float32)
        su = np.abs(state.view(np.int32).astype(np.int64) - want_s.view(np.int32))
        s_worst = max(s_worst, int(su.max()))
        sbad = np.argwhere(su)
        s_mismatches += len(sbad)
        if len(sbad) and s_first is None:
            k, i = sbad[0]
            s_first = (f"step {step} state slot {k} element {i}: got "
                       f"{float(state[k, i])!r}, the recursion rounds to "
                       f"{float(want_s[k, i])!r} ({int(su[k, i])} ulp; gradient "
                       f"{float(grad[i])!r}, previous {float(before[k, i])!r})")
    allowed = max(2, int(1e-4 * n * steps))
    return {"passed": worst <= 1 and mismatches <= allowed and s_worst <= MOMENT_ULPS,
            "max_ulps": worst, "mismatches": mismatches, "allowed": allowed,
            "n_values": n * steps, "first_failure": first or s_first,
            "state_max_ulps": s_worst, "state_mismatches": s_mismatches,
            "state_first_failure": s_first}


def _moment_step(cls_name, c, grad, before):
    """The states after one step from w = 0 (no weight-decay term: it is wd w = 0), each
    from the states ``before`` (float32) by the rule's recursion with the double
    coefficients the step takes, in longdouble: Adam's m = m + (1 - beta1)(g - m) (torch's
    lerp) and v = beta2 v + (1 - beta2) g^2, Adagrad's G = G + g^2, RMSprop's v = alpha v
    + (1 - alpha) g^2."""
    LD = np.longdouble
    S, g = before.astype(LD), grad.astype(LD)
    if cls_name in ("Adam", "AdamW"):
        b1, b2 = c["beta1"], c["beta2"]
        return np.stack([S[0] + LD(1.0 - b1) * (g - S[0]),
                         LD(b2) * S[1] + LD(1.0 - b2) * (g * g)])
    if cls_name == "Adagrad":
        return np.stack([S[0] + g * g])
    return np.stack([LD(c["alpha"]) * S[0] + LD(1.0 - c["alpha"]) * (g * g)])  # RMSprop


def _label(cls_name, kw):
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    return f"{cls_name}({args})"


def run_optimizers(ctx):
    out = []
    for cls_name, kw in CONFIGS:
        label = _label(cls_name, kw)
        if not (ctx.wanted(cls_name) or ctx.wanted(label) or ctx.wanted("optimizers")):
            continue
        t0 = time.perf_counter()
        # every configuration runs the thread split: the split is one piece of code, but
        # each chunk addresses its elements' state slots (0 to 3 of them, slot k at k n)
        # through the rule's layout, so a split that gets the slot stride wrong shows only
        # for a rule with two slots or more (Adam, RMSprop centered, ...)
        r = check_optimizer(cls_name, kw, dtypes=ctx.dtypes, seed=ctx.seed,
                            sizes=path_sizes(), threaded=True)
        if r is None:
            out.append({"name": label, "section": "optimizers", "passed": False,
                        "verdict": "FAIL (not available: no nnlib.optim." + cls_name + ")",
                        "rows": [("rule", RULES[cls_name][1])]})
            continue
        rows = [("source of the rule", RULES[cls_name][1]),
                ("update (one coordinate, in order)", f"$\\begin{{aligned}}{r['latex']}"
                                                        f"\\end{{aligned}}$".replace(
                                                            r"\leftarrow", r"&\leftarrow")),
                ("steps compared", "3 steps, 5 coordinates, gradients of sizes 2, 0.1, 1"),
                ("branch paths", "the 5 coordinates repeated to vectors of "
                 f"{', '.join(map(str, path_sizes()))} (OPTIM_CHECK_CHUNK - 1, itself, + 1, "
                 "three blocks): every element against the exact recursion; the longest on "
                 "1 thread and several, bit for bit")]
        for dname, st in r["stats"].items():
            rows.append((f"max error {dname}", f"{st['max_ulps']:.3g} ulp (tolerance "
                                               f"{st['tolerance']['ulps']} ulp or "
                                               f"{st['tolerance']['abs_eps']} eps·|w|)"))
        if r["first_failure"]:
            rows.append(("first failure", r["first_failure"]))
        out.append({"name": label, "section": "optimizers", "passed": r["passed"],
                    "verdict": "pass" if r["passed"] else "FAIL", "rows": rows,
                    "result": r, "seconds": round(time.perf_counter() - t0, 3)})
    if "float32" not in ctx.dtypes:
        return out
    for cls_name, kw in QUOTIENT_CONFIGS:
        label = "float32 quotient: " + _label(cls_name, kw)
        if not (ctx.wanted(cls_name) or ctx.wanted(label) or ctx.wanted("optimizers")):
            continue
        t0 = time.perf_counter()
        r = check_quotient_f32(cls_name, kw, seed=ctx.seed)
        if r is None:
            continue        # reported above: the class is missing
        rows = [("oracle", "the rule's double formula from the states the step stored, "
                 "rounded to float32"),
                ("values", f"{r['n_values']} (weights from 0 each step, gradients over "
                 "nine decades)"),
                ("max error", f"{r['max_ulps']} ulp (allowed 1)"),
                ("elements not bit for bit", f"{r['mismatches']} (allowed {r['allowed']}: "
                 "ties of the double formula)"),
                ("stored moments", f"max {r['state_max_ulps']} ulp from their recursion "
                 f"from the stored previous state (allowed {MOMENT_ULPS}); "
                 f"{r['state_mismatches']} not its exact value rounded once")]
        if r["first_failure"] and not r["passed"]:
            rows.append(("first difference", r["first_failure"]))
        out.append({"name": label, "section": "optimizers", "passed": r["passed"],
                    "verdict": "pass" if r["passed"] else "FAIL", "rows": rows,
                    "result": r, "seconds": round(time.perf_counter() - t0, 3)})
    return out
