"""Backpropagation of whole small networks: SymPy differentiates the symbolic loss of a
3-4-3 network (3-4-1 for the logistic loss) with respect to every weight and bias, and the
compiled ``Sequential.loss_and_grads`` must agree at random weights.

Design note
-----------
Every weight and bias is a SymPy symbol; the inputs X (2 samples) are the exact values of
the float inputs. The objective is the one ``loss_and_grads`` documents:

    (1/n) sum_i loss(z_i, y_i) + l2/2 sum_layers ||W||^2     (biases not penalized)

with z = Dense(4 -> C, identity)(act(Dense(3 -> 4)(X))). Piecewise losses (sparsemax,
hinge) and activations (relu, leaky_relu, elu, sign) are smooth on the open region containing
the random point, so the region is read off the exact logits / pre-activations and that
region's expression is differentiated (its derivative equals the function's there); a point
within 1e-9 of a region boundary is reported instead of used (the kinks themselves are
checked against the subdifferential in the kernel section).
Gradients are compared normwise per parameter array: max |compiled - exact| / max |exact|.

SymPy differentiates the objective with its own ``diff``, which takes the derivative of a
repeated subexpression anew at each occurrence: each hidden unit's activation is in every
logit of its row, and each logit in several terms of the loss. ``dag_eval.diff_once``
has ``diff`` keep, while one network is derived, each (expression, symbol)'s derivative
and return it at the next occurrence -- the very expression SymPy derived there, since a
derivative is a function of the expression and the symbol alone (--quick's 8 networks:
3.6 s of CPU before, 2.6 s after, exact values bit for bit the same).
"""
import time

import mpmath
import numpy as np
import sympy as sp

from verify import cache, dag_eval
from verify import kernels as K
from verify.evidence import MPMATH, exact, lambdify
from verify.output_maps import sparsemax_exact
from verify.registry import ACTIVATION_BY_NAME, ACTIVATIONS, z
from verify.workers import worker_pool

__all__ = ["check_network", "run_backprop", "start_backprop", "worker_pool", "LOSSES"]

LOSSES = ["softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss",
          "hinge_loss"]
N_IN, N_HID, N_SAMPLES, L2 = 3, 4, 2, 0.1
TOL_EPS = {"float64": 256, "float32": 256}     # normwise, in units of the dtype's eps


def _row_loss(loss, zrow, yv, zvals):
    """Per-sample loss of one row of symbolic logits ``zrow``; ``zvals`` are their exact
    values at the point (used to pick the smooth piece of a piecewise loss)."""
    c = len(zrow)
    # CE and logistic in the forms proved equal to their definitions (verify.losses):
    # log-sum-exp minus z_y, and softplus; their derivatives stay short through a network
    if loss == "softmax_cross_entropy":
        return sp.log(sum(sp.exp(u) for u in zrow)) - zrow[yv]
    if loss == "squared_error":
        return sp.Rational(1, 2) * sum((u - t) ** 2 for u, t in zip(zrow, yv))
    if loss == "logistic_loss":
        return (1 - yv) * sp.log(1 + sp.exp(zrow[0])) + yv * sp.log(1 + sp.exp(-zrow[0]))
    if loss == "sparsemax_loss":
        _, supports = sparsemax_exact(zvals)
        if len(supports) != 1:
            raise ValueError("on a sparsemax region boundary")
        S = supports[0]
        tau = (sum(zrow[i] for i in S) - 1) / len(S)
        return -zrow[yv] + sum(zrow[i] ** 2 - tau ** 2 for i in S) / 2 + sp.Rational(1, 2)
    if loss == "hinge_loss":
        others = [j for j in range(c) if j != yv]
        jstar = max(others, key=lambda j: zvals[j])
        h = 1 + zvals[jstar] - zvals[yv]
        if abs(h) < 1e-9 or sum(abs(zvals[j] - zvals[jstar]) < 1e-9 for j in others) > 1:
            raise ValueError("on a hinge kink")
        return 1 + zrow[jstar] - zrow[yv] if h > 0 else sp.Integer(0)
    raise KeyError(loss)


def _affine(A, W, b):
    """``A W + 1 b`` (rows of A, a row b), each entry ``Add(*products, b_j)``: the
    expression SymPy's matrix product and sum make (its product adds each entry's terms
    with ``Add(*terms)``, and Add puts its terms in canonical order however they come),
    without the product's test of each entry of A for an infinity (``0 * e == 0``: an
    assumption query on each hidden unit's whole expression)."""
    n, m = W.shape
    return sp.Matrix(A.rows, m, [sp.Add(*[A[i, k] * W[k, j] for k in range(n)], b[0, j])
                                 for i in range(A.rows) for j in range(m)])


def _symbolic_network(act_name, loss, c, Xv, yv, params):
    """Exact objective and gradient at ``params``: the objective is a SymPy expression of
    all the weight and bias symbols, differentiated by SymPy with respect to each."""
    act = ACTIVATION_BY_NAME[act_name]
    W1 = sp.Matrix(N_IN, N_HID, lambda i, j: sp.Symbol(f"W1_{i}{j}"))
    b1 = sp.Matrix(1, N_HID, lambda i, j: sp.Symbol(f"b1_{j}"))
    W2 = sp.Matrix(N_HID, c, lambda i, j: sp.Symbol(f"W2_{i}{j}"))
    b2 = sp.Matrix(1, c, lambda i, j: sp.Symbol(f"b2_{j}"))
    mats = [W1, b1, W2, b2]
    syms = [s for M in mats for s in M]
    point = {s: sp.Float(float(x), 30) for M, P in zip(mats, params)
             for s, x in zip(M, np.ravel(P))}
    Xs = sp.Matrix(N_SAMPLES, N_IN, lambda i, j: sp.Rational(float(Xv[i, j])))
    # tanh enters as sympy.tanh: proved equal to the notes' quotient of exponentials
    # (verify.proofs), and far shorter once differentiated through two layers
    defn = (sp.tanh(z) if act_name == "tanh" else act.definition).subs(act.evidence_params)
    zw = sp.Symbol("zw")              # weights carry no assumptions: diff is much faster
    defn = defn.subs(z, zw)
    pre = _affine(Xs, W1, b1)
    if act.kinks:
        # Piecewise activations, like the piecewise losses below: each pre-activation's
        # exact value picks the open piece it lies in, and that piece's expression (equal
        # to the activation on a neighbourhood, so with the same derivative) is used.
        # Differentiating SymPy's Piecewise itself cost 2-3x more, for the same numbers.
        def piece(e):
            v = sp.N(e.xreplace(point), 30)
            if any(abs(v - k) < 1e-9 for k in act.kinks):
                raise ValueError("on an activation kink")
            ex = next(ex for lo, hi, ex in act.pieces if lo < v < hi)
            return ex.xreplace(act.evidence_params).xreplace({z: e})
        H = pre.applyfunc(piece)
    else:
        H = pre.applyfunc(lambda e: defn.xreplace({zw: e}))
    Z = _affine(H, W2, b2)
    total = 0
    for i in range(N_SAMPLES):
        zrow = list(Z.row(i))
        zvals = [float(sp.N(u.xreplace(point), 30)) for u in zrow] if loss in (
            "sparsemax_loss", "hinge_loss") else None
        target = [sp.Rational(float(t)) for t in yv[i]] if loss == "squared_error" else int(yv[i])
        total += _row_loss(loss, zrow, target, zvals)
    obj = total / N_SAMPLES + sp.Rational(L2) / 2 * sum(e ** 2 for M in (W1, W2) for e in M)
    with dag_eval.diff_once():
        exprs = [obj] + [sp.diff(obj, s) for s in syms]
    vals = [mpmath.mpf(float(point[s])) for s in syms]
    try:
        # the objective and its gradient as one program (verify.dag_eval): the gradient's
        # entries share most of their terms, evaluated once
        both = exact(dag_eval.program(syms, exprs), *vals)
    except dag_eval.Unsupported:
        both = exact(lambdify(syms, exprs, MPMATH, cse=True), *vals)
    return both[0], both[1:], [len(M) for M in mats]


def check_network(act_name, loss, dtypes=("float64", "float32"), seed=0):
    """Compiled Sequential.loss_and_grads vs SymPy for one activation and loss, in each
    dtype. The weights, inputs and targets are float32 numbers (exact in float64 too), so one
    symbolic derivative serves both dtypes. Returns {dtype: {loss_err_eps, grad_err_eps,
    passed}} or None when nnlib has no Sequential."""
    Sequential, Dense = K.nnlib_attr("Sequential"), K.nnlib_attr("Dense")
    if Sequential is None or Dense is None:
        return None
    act = ACTIVATION_BY_NAME[act_name]
    c = 1 if loss == "logistic_loss" else 3
    param = next(iter(act.nnlib_kwargs.values()), None)
    rng = np.random.default_rng(seed + 2)
    # inputs and targets are small dyadic rationals: short expressions
    Xv = rng.integers(-16, 17, (N_SAMPLES, N_IN)) / 8
    if loss == "squared_error":
        yv = rng.integers(-16, 17, (N_SAMPLES, c)) / 8
    elif loss == "logistic_loss":
        yv = np.array([0, 1])
    else:
        yv = rng.integers(0, c, N_SAMPLES)
    shapes = [(N_IN, N_HID), (N_HID,), (N_HID, c), (c,)]
    params = [(rng.standard_normal(sh) * (0.8 if len(sh) == 2 else 0.5)).astype(np.float32)
              for sh in shapes]
    # the exact objective and gradient depend on these numbers alone (and on verify's
    # source): derived once, then read from verify.cache, bit for bit
    e_loss, e_grad, sizes = cache.exact_values(
        "backprop network", (act_name, loss, c, sp.srepr(act.definition),
                             sp.srepr(act.pieces), repr(act.kinks),
                             repr(act.evidence_params)) + tuple(
            (str(a.dtype), a.shape, a.tolist()) for a in [np.asarray(Xv), np.asarray(yv)]
            + params),
        lambda: _symbolic_network(act_name, loss, c, Xv, yv, params))
    out = {}
    for dname in dtypes:
        dt = np.dtype(dname).type
        model = Sequential([Dense(N_IN, N_HID, act_name, dtype=dt, activation_param=param),
                            Dense(N_HID, c, "identity", dtype=dt)])
        for p, v in zip(model.params, params):
            p[...] = v
        got_loss, got_grads = model.loss_and_grads(
            Xv.astype(dt), yv.astype(dt) if loss == "squared_error" else yv, loss=loss, l2=L2)
        eps = float(np.finfo(dt).eps)
        res = {"loss_err_eps": float(abs(mpmath.mpf(float(got_loss)) - e_loss)
                                     / max(abs(e_loss), 1e-300)) / eps, "grad_err_eps": {}}
        k = 0
        for name, n, G in zip(("dW1", "db1", "dW2", "db2"), sizes, got_grads):
            ex = e_grad[k:k + n]
            k += n
            den = max(max(abs(x) for x in ex), mpmath.mpf(10) ** -300)
            num = max(abs(mpmath.mpf(float(x)) - y) for x, y in zip(np.ravel(G), ex))
            res["grad_err_eps"][name] = float(num / den) / eps
        tol = TOL_EPS[dname]
        res["passed"] = res["loss_err_eps"] <= tol and all(
            v <= tol for v in res["grad_err_eps"].values())
        out[dname] = res
    return out


def _one(job):
    a, ls, dtypes, seed = job
    try:
        return check_network(a, ls, dtypes, seed), None
    except ValueError as exc:           # a point on a region boundary: reseed
        return check_network(a, ls, dtypes, seed + 10), f"(reseeded: {exc})"


class _Done:
    """A finished result with the interface of a future."""
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _Pending:
    """Backprop jobs running on a process pool; ``result()`` waits and builds the item
    (and shuts the pool down when it is its own)."""
    def __init__(self, pool, futures, finish, own=True):
        self.pool, self.futures, self.finish, self.own = pool, futures, finish, own

    def result(self):
        try:
            return self.finish([f.result() for f in self.futures])
        finally:
            if self.own:
                self.pool.shutdown()


def start_backprop(ctx, pool=None):
    """Start the backprop checks; returns an object whose ``result()`` is the item list.
    The networks go to worker processes *now* (``pool``, shared with the other sections a
    whole run sends there -- verify.run --, or a pool of their own: one worker for
    --quick, two for the full run), so that the main process runs other sections (and the
    plots) meanwhile."""
    if ctx.quick:                 # every activation and every loss at least once
        combos = [(a.name, LOSSES[i % len(LOSSES)]) for i, a in enumerate(ACTIVATIONS)]
    else:
        combos = [(a.name, ls) for a in ACTIVATIONS for ls in LOSSES]
    combos = [(a, ls) for a, ls in combos if ctx.wanted(a) or ctx.wanted(ls) or
              ctx.wanted("backprop") or ctx.wanted(f"{a}+{ls}")] if ctx.only else combos
    if not combos:
        return _Done([])
    t0 = time.perf_counter()
    jobs = [(a, ls, tuple(ctx.dtypes), ctx.seed) for a, ls in combos]
    finish = lambda results: _backprop_item(combos, results, t0)  # noqa: E731
    if pool is not None and K.nnlib_attr("Sequential") is not None:
        return _Pending(pool, [pool.submit(_one, j) for j in jobs], finish, own=False)
    if len(jobs) > 1 and K.nnlib_attr("Sequential") is not None:
        # SymPy's diff dominates (about 1 s of CPU per network): the networks run on
        # worker processes while the main process runs the other sections -- one worker
        # for --quick's 8 networks (a second would cost its start-up, ~2 s of imports,
        # for little), two for the full run's 40.
        pool = worker_pool(1 if len(jobs) <= 8 else 2)
        return _Pending(pool, [pool.submit(_one, j) for j in jobs], finish)
    return _Done(finish([_one(j) for j in jobs]))


def run_backprop(ctx):
    return start_backprop(ctx).result()


def _backprop_item(combos, results, t0):
    rows, passed, failures = [], True, []
    for (a, ls), (rr, note) in zip(combos, results):
        cells = [note] if note else []
        if rr is None:
            return [{"name": "backprop", "section": "backprop", "passed": False,
                     "verdict": "FAIL (not available: no nnlib.Sequential)"}]
        for dname, r in rr.items():
            cells.append(f"{dname}: loss {r['loss_err_eps']:.3g}, grads " + ", ".join(
                f"{k} {v:.3g}" for k, v in r["grad_err_eps"].items()))
            if not r["passed"]:
                passed = False
                failures.append(f"{a} + {ls} ({dname})")
        rows.append((f"{a} + {ls}", "; ".join(cells)))
    return [{"name": "backprop", "section": "backprop", "passed": passed,
             "verdict": "pass" if passed else "FAIL: " + ", ".join(failures),
             "statement": (f"Network {N_IN}-{N_HID}-C (C = 3; 1 for the logistic loss), hidden "
                           f"activation as listed, identity output, {N_SAMPLES} samples, "
                           f"l2 = {L2}. SymPy differentiates the whole objective with respect to"
                           f" all weights and biases; errors are normwise relative, in units of"
                           f" the dtype's eps (tolerance {TOL_EPS['float64']})."),
             "rows": [("activation + loss", "relative error / eps")] + rows,
             "seconds": round(time.perf_counter() - t0, 3)}]
