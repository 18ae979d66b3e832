"""NumPy twins of the compiled optimizer rules (``nnlib/_kernels/optim_rules.pxd.tp``) and
of the entry points of ``nnlib._kernels.optim``, with their signatures.

``optim_step(config, param, grad, state, step, n_threads)``: one in-place update of the
flat ``param`` and its ``state`` rows. ``optim_step_arrays(config, params, grads, states,
step, n_threads, parallel_min_size)``: one update of every parameter array, all or
nothing (a step that would overflow is refused before any array changes).

Each rule is written once, below, as the plain formula (in float64, stored back in the
arrays' dtype); the tests run 100-step trajectories of the compiled kernel against
these, and these against ``torch.optim`` and scikit-learn.

Symbols: ``w`` parameter, ``g`` gradient (after L2 weight decay ``g + wd w``), ``t`` the
1-based step.

What ``nnlib.optim.Optimizer`` adds around these entry points is plain Python and needs
no twin: parameter groups (one config per group), the state of each array keyed by its
identity with its own step count ``t`` (one call per distinct (config, t)), and
``maximize`` (the gradient negated before the call, torch's rule).
"""
import numpy as np

from nnlib._codes import OPTIM_KINDS as KINDS
from nnlib._validation import DTypeError, NonFiniteError, ShapeError

__all__ = ["optim_step", "optim_step_arrays", "state_slots", "squared_slots", "KINDS"]


def state_slots(config):
    """Number of state rows the rule keeps (see the slot table in optim_rules.pxd)."""
    kind = config["kind"]
    if kind == KINDS["sgd"]:
        return 1 if config["momentum"] != 0 else 0
    if kind == KINDS["rmsprop"]:
        return 1 + (config["momentum"] > 0) + bool(config["centered"])
    if kind in (KINDS["adam"], KINDS["adamw"]):
        return 3 if config["amsgrad"] else 2
    if kind == KINDS["sklearn_adam"]:
        return 2
    return 1


def squared_slots(config):
    """The state rows holding sums or averages of squared gradients, never negative:
    Adagrad's sum, RMSprop's square_avg, Adam's exp_avg_sq (and max_exp_avg_sq),
    scikit-learn Adam's vs."""
    kind = config["kind"]
    if kind in (KINDS["adagrad"], KINDS["notes_adagrad"], KINDS["rmsprop"]):
        return [0]
    if kind in (KINDS["adam"], KINDS["adamw"]):
        return [1, 2] if config["amsgrad"] else [1]
    if kind == KINDS["sklearn_adam"]:
        return [1]
    return []


def _lerp(start, end, weight):
    # PyTorch's two-branch lerp, as the kernel: exact at weight 1 (beta1 = 0 gives m = g,
    # not m + (g - m), which loses g next to a huge m; found by tests/test_fuzz_optim.py).
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _sgd(c, w, g, S, t):
    # torch.optim.SGD: buf = g at t = 1, then buf <- mu buf + (1 - dampening) g
    mu = c["momentum"]
    if mu != 0:
        S[0] = g if t == 1 else mu * S[0] + (1 - c["dampening"]) * g
        g = g + mu * S[0] if c["nesterov"] else S[0]
    return w - c["lr"] * g


def _adagrad(c, w, g, S, t):
    # torch.optim.Adagrad: rate clr = lr / (1 + (t-1) lr_decay), eps outside the root
    clr = c["lr"] / (1 + (t - 1) * c["lr_decay"])
    S[0] = S[0] + g * g
    return w - clr * g / (np.sqrt(S[0]) + c["eps"])


def _rmsprop(c, w, g, S, t):
    # torch.optim.RMSprop: square_avg, optional grad_avg (centered) and momentum buffer
    alpha, mu = c["alpha"], c["momentum"]
    S[0] = alpha * S[0] + (1 - alpha) * g * g
    var = S[0]
    if c["centered"]:
        k = 2 if mu > 0 else 1
        S[k] = _lerp(S[k], g, 1 - alpha)
        var = np.maximum(S[0] - S[k] ** 2, 0.0)
    denom = np.sqrt(var) + c["eps"]
    if mu > 0:
        S[1] = mu * S[1] + g / denom
        return w - c["lr"] * S[1]
    return w - c["lr"] * g / denom


def _adam(c, w, g, S, t):
    # torch.optim.Adam: bias-corrected moments, eps added after the correction
    b1, b2 = c["beta1"], c["beta2"]
    S[0] = _lerp(S[0], g, 1 - b1)
    S[1] = b2 * S[1] + (1 - b2) * g * g
    v = S[1]
    if c["amsgrad"]:
        S[2] = np.maximum(S[2], S[1])
        v = S[2]
    m_hat_scale = c["lr"] / (1 - b1 ** t)
    denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + c["eps"]
    return w - m_hat_scale * S[0] / denom


def _notes_momentum(c, w, g, S, t):
    # the notes: v <- (1 - beta) v + beta grad ; w <- w - lr v   (beta in cfg momentum)
    beta = c["momentum"]
    S[0] = (1 - beta) * S[0] + beta * g
    return w - c["lr"] * S[0]


def _notes_adagrad(c, w, g, S, t):
    # the notes: G <- G + g^2 ; w <- w - lr g / sqrt(eps + G)   (stabilizer under the root)
    S[0] = S[0] + g * g
    return w - c["lr"] * g / np.sqrt(c["eps"] + S[0])


def _sklearn_sgd(c, w, g, S, t):
    # scikit-learn SGDOptimizer: v <- mu v - lr g ; w <- w + v (nesterov: w + mu v - lr g)
    mu, lr = c["momentum"], c["lr"]
    S[0] = mu * S[0] - lr * g
    return w + (mu * S[0] - lr * g if c["nesterov"] else S[0])


def _sklearn_adam(c, w, g, S, t):
    # scikit-learn AdamOptimizer: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), eps not corrected
    b1, b2 = c["beta1"], c["beta2"]
    S[0] = b1 * S[0] + (1 - b1) * g
    S[1] = b2 * S[1] + (1 - b2) * g ** 2
    lr_t = c["lr"] * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return w - lr_t * S[0] / (np.sqrt(S[1]) + c["eps"])


_RULES = {0: _sgd, 1: _adagrad, 2: _rmsprop, 3: _adam, 4: _adam, 5: _notes_momentum,
          6: _notes_adagrad, 7: _sklearn_sgd, 8: _sklearn_adam}


def optim_step(config, param, grad, state, step, n_threads):
    """One in-place update of ``param`` (n,) and ``state`` (slots, n); NumPy twin of the
    compiled kernel. ``n_threads`` is accepted and ignored."""
    c = config
    w = param.astype(np.float64)
    g = grad.astype(np.float64)
    S = state.astype(np.float64)
    wd = c["weight_decay"]
    if wd != 0:
        if c["kind"] == KINDS["adamw"]:
            w = w * (1 - c["lr"] * wd)          # decoupled: shrink w, leave g alone
        else:
            g = g + wd * w                       # L2 penalty's gradient
    param[...] = _RULES[c["kind"]](c, w, g, S, step)
    state[...] = S


def optim_step_arrays(config, params, grads, states, step, n_threads, parallel_min_size,
                      counters=None):
    """One update of every array of ``params`` (any shapes, C-contiguous) and its state
    ``(slots, size)``, in place; NumPy twin of the compiled fast path of
    ``Optimizer.step``. ``n_threads`` and ``parallel_min_size`` are accepted and ignored.

    All or nothing: if the step would turn an element whose param, gradient and state are
    finite into inf or NaN (a gradient whose square overflows Adagrad's, RMSprop's or
    Adam's state, an ``lr * g`` beyond the dtype's range), NonFiniteError names it and no
    array changes; so does a squared-gradient state row (``squared_slots``) holding a
    value below 0 (-0.0 is none: its root is -0.0), checked first, array by array. A
    non-finite input gives non-finite output in its own elements only.
    ``counters``: when given, each one's ``step`` is set to ``step`` once every array is
    updated (the compiled twin does it inside the call, where no interrupt can separate
    the two).
    """
    if not len(params) == len(grads) == len(states):
        raise ValueError(f"got {len(params)} params, {len(grads)} grads and "
                         f"{len(states)} states")
    if step < 1 or n_threads < 1:
        raise ValueError(f"step and n_threads must be >= 1; got {step}, {n_threads}")
    slots = state_slots(config)
    updated = []
    # every array checked before any is stepped, as the compiled kernel does
    grads = [_check_arrays(i, p, np.asarray(g), s, slots)
             for i, (p, g, s) in enumerate(zip(params, grads, states))]
    for i, (p, g, s) in enumerate(zip(params, grads, states)):
        for k in squared_slots(config):
            neg = s[k] < 0                  # -0.0 (root -0.0) and NaN are not negative
            if neg.any():
                raise NonFiniteError(_negative_square_message(
                    step, i, p, s, k, int(np.argmax(neg)), config["kind"]))
        new_p, new_s = p.reshape(-1).copy(), s.copy()
        with np.errstate(over="ignore", invalid="ignore"):     # found and refused below
            optim_step(config, new_p, g.reshape(-1), new_s, step, 1)
        was_finite = (np.isfinite(p.reshape(-1)) & np.isfinite(g.reshape(-1))
                      & np.isfinite(s).all(axis=0))
        bad = np.flatnonzero(was_finite & ~(np.isfinite(new_p)
                                            & np.isfinite(new_s).all(axis=0)))
        if bad.size:
            raise NonFiniteError(f"step {step}: params[{i}] element {bad[0]} would become "
                                 f"non-finite from finite values; nothing was updated")
        updated.append((new_p, new_s))
    for p, s, (new_p, new_s) in zip(params, states, updated):
        p.reshape(-1)[...] = new_p          # a view: p is C-contiguous
        s[...] = new_s
    if counters is not None:
        for c in counters:
            c.step = step


def _negative_square_message(step, i, p, s, k, j, kind):
    """The compiled kernel's words for a negative squared-gradient state (row ``k`` of
    ``params[i]``'s state, flat element ``j``)."""
    names = _SQUARED_NAMES.get(kind, ())
    name = repr(names[k]) if k < len(names) else f"row {k}"
    at = tuple(int(x) for x in np.unravel_index(j, p.shape))
    return (f"step {step}: params[{i}] (shape {p.shape}): its state[{name}] "
            f"holds {s[k, j].item()!r} at {at}: a sum or average of squared "
            f"gradients is never negative, and the step takes its square root (NaN "
            f"weights, or a wrong finite step once later squares outweigh it); was it "
            f"written into optimizer.state[p] or state_arrays in place? Nothing was "
            f"updated: mend it, or reset() or load_state_dict a saved state")


# the slots' names in nnlib/optim.py's state, by kind (as the compiled kernel's table)
_SQUARED_NAMES = {KINDS["adagrad"]: ("sum",), KINDS["notes_adagrad"]: ("sum",),
                  KINDS["rmsprop"]: ("square_avg",),
                  KINDS["adam"]: ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                  KINDS["adamw"]: ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                  KINDS["sklearn_adam"]: ("ms", "vs")}


def _check_arrays(i, p, g, s, slots):
    """What the compiled ``optim_step_arrays`` checks before it touches any array."""
    if not isinstance(p, np.ndarray):
        raise TypeError(f"params[{i}] must be a NumPy array (updated in place)")
    if p.dtype not in (np.float32, np.float64):
        raise DTypeError(f"params[{i}] must be float32 or float64; got {p.dtype}")
    if not (p.flags.c_contiguous and p.flags.writeable):
        raise ValueError(f"params[{i}] must be C-contiguous and writeable")
    if g.dtype != p.dtype or s.dtype != p.dtype:
        raise DTypeError(f"grads[{i}] and its state must have params[{i}]'s dtype")
    if g.shape != p.shape or s.shape != (slots, p.size):
        raise ShapeError(f"grads[{i}] must have shape {p.shape} and its state "
                         f"({slots}, {p.size})")
    if not (s.flags.c_contiguous and s.flags.writeable):
        raise ValueError(f"the optimizer state of params[{i}] must be C-contiguous and "
                         "writable")
    return np.ascontiguousarray(g)
