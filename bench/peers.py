"""The four ways of training the same MLP: nnlib, PyTorch (CPU, eager), scikit-learn's
MLPClassifier and a plain NumPy loop.

Each ``build_<peer>(spec, X, y, init)`` returns an ``Epoch``: ``run()`` trains one epoch
(shuffle, then mini-batches in order, one optimizer step per batch) and ``params()``
returns the current [(W, b), ...] as NumPy (W of shape (n_in, n_out)), so the runner can
check every peer reached a comparable loss. A peer that cannot run raises
``Unavailable``.

Fairness, peer by peer (the tables state it too):

* same rows, same dtype (float32 unless the spec says otherwise), same initial weights
  (``bench.data.init_params``, copied in), same batch size, learning rate and optimizer,
  one shuffle per epoch, the same thread count (set by the runner for every library);
* PyTorch: the standard loop -- ``nn.Sequential`` of ``nn.Linear`` + activation,
  ``nn.CrossEntropyLoss``, ``torch.optim``, ``zero_grad(set_to_none=True)``; batches are
  slices of a tensor permuted once per epoch (a ``DataLoader`` would be slower still, so
  this favours PyTorch);
* scikit-learn: ``MLPClassifier.partial_fit`` (one pass over the data with its own
  shuffle), ``solver='sgd'`` (momentum 0 or 0.9, no Nesterov) or ``'adam'``,
  ``learning_rate='constant'``, ``alpha=0``; it keeps float32 input in float32;
* NumPy: a vectorized forward/backward per mini-batch with in-place updates -- what one
  writes by hand in 30 lines, not a straw man;
* nnlib: ``Sequential([Dense, ...]).fit(X, y, optimizer=..., epochs=1, batch_size=b,
  n_threads=threads)``, i.e. the public API with its input validation, once per epoch.
"""
import contextlib
import dataclasses
import warnings

import numpy as np

from bench.timing import Unavailable

__all__ = ["TrainSpec", "Epoch", "PEERS", "PEER_LABELS", "BUILDERS", "import_torch",
           "describe_peers", "FLUSH_VARIANT", "flush_variant", "columns"]

PEERS = ("nnlib", "torch", "jax", "sklearn", "numpy")
PEER_LABELS = {"nnlib": "nnlib", "torch": "PyTorch", "jax": "JAX (jit epoch)",
               "sklearn": "scikit-learn", "numpy": "NumPy loop",
               "nnlib_flush": "nnlib, flush-denormal"}
# A variant measured next to nnlib where a peer flushes subnormals: XLA runs every
# compiled CPU program with flush-to-zero and denormals-are-zero set
# (``tsl::port::ScopedFlushDenormal`` in xla/pjrt/cpu/cpu_client.cc), so the JAX targets
# compare it with nnlib in its flush-denormal mode; PyTorch, scikit-learn and NumPy keep
# IEEE subnormals, as nnlib does by default.
FLUSH_VARIANT = "nnlib_flush"

# The optimizers compared, with the hyperparameters every peer gets. lr 0.1 for plain SGD
# as in the issue; with momentum 0.9 the effective step is lr / (1 - 0.9), so 0.01 keeps it
# at 0.1; Adam at its usual 1e-3.
OPTIMIZERS = {
    "sgd": {"lr": 0.1, "momentum": 0.0},
    "momentum": {"lr": 0.01, "momentum": 0.9},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}


@dataclasses.dataclass
class TrainSpec:
    sizes: tuple                 # layer widths, e.g. (64, 100, 10)
    batch_size: int
    optimizer: str = "sgd"       # key of OPTIMIZERS
    activation: str = "relu"     # hidden layers; the output layer is linear + softmax CE
    dtype: type = np.float32
    threads: int = 1
    seed: int = 0
    lr: float = None             # overrides the optimizer's default learning rate
    flush_denormal: bool = False  # nnlib only: nnlib.set_flush_denormal(True) per epoch

    @property
    def hyper(self):
        h = dict(OPTIMIZERS[self.optimizer])
        if self.lr is not None:
            h["lr"] = self.lr
        return h


@dataclasses.dataclass
class Epoch:
    run: object      # () -> None: one epoch
    params: object   # () -> [(W, b), ...] as NumPy, W (n_in, n_out)
    compile_seconds: float = None   # ahead-of-time compilation, outside the timings


def _missing(module):
    return Unavailable("not installed", f"python module {module!r} cannot be imported")


def import_torch(threads):
    """Import PyTorch with its intra-op pool set to ``threads`` (or raise Unavailable)."""
    try:
        import torch
    except ImportError:
        raise _missing("torch") from None
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


# --- nnlib --------------------------------------------------------------------------

def nnlib_api():
    """(nnlib, nnlib.optim), or Unavailable("not available yet") naming what is missing."""
    try:
        import nnlib
    except ImportError:
        raise _missing("nnlib") from None
    missing = [n for n in ("Sequential", "Dense") if not hasattr(nnlib, n)]
    try:
        import nnlib.optim as optim
    except ImportError:
        optim = None
        missing.append("nnlib.optim")
    if missing:
        raise Unavailable("not available yet", "nnlib has no " + ", ".join(missing))
    return nnlib, optim


def nnlib_optimizer(optim, spec):
    h = spec.hyper
    if spec.optimizer == "adam":
        return optim.Adam(lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    return optim.SGD(lr=h["lr"], momentum=h["momentum"])


def build_nnlib(spec, X, y, init):
    nnlib, optim = nnlib_api()
    if spec.flush_denormal:
        if not hasattr(nnlib, "set_flush_denormal"):
            raise Unavailable("not available yet", "nnlib has no set_flush_denormal")
        if not nnlib.get_flush_denormal() and not nnlib.set_flush_denormal(False):
            raise Unavailable("not supported", "this CPU has no flush-denormal mode")
    layers = []
    for i, (W, b) in enumerate(init):
        last = i == len(init) - 1
        layers.append(nnlib.Dense(W.shape[0], W.shape[1],
                                  activation="identity" if last else spec.activation,
                                  dtype=spec.dtype))
    model = nnlib.Sequential(layers)
    for p, src in zip(model.params, [a for pair in init for a in pair]):
        p[...] = src
    opt = nnlib_optimizer(optim, spec)
    rng = np.random.default_rng(spec.seed)

    def fit():
        # n_threads explicit: left to None, fit picks its BLAS threads from the load
        # average, and the peers would no longer run with the same thread count.
        model.fit(X, y, loss="softmax_cross_entropy", optimizer=opt, epochs=1,
                  batch_size=spec.batch_size, shuffle=True, verbose=0,
                  random_state=int(rng.integers(2**31)), n_threads=spec.threads)

    def flushed():
        # the previous mode is put back after each epoch, so every other row and peer
        # runs IEEE nnlib
        before = nnlib.get_flush_denormal()
        nnlib.set_flush_denormal(True)
        try:
            fit()
        finally:
            nnlib.set_flush_denormal(before)

    def params():
        ps = model.params
        return [(ps[i], ps[i + 1]) for i in range(0, len(ps), 2)]

    return Epoch(flushed if spec.flush_denormal else fit, params)


def flush_variant(spec):
    """``epoch_row``'s variants entry for nnlib in its flush-denormal mode on ``spec``."""
    return {FLUSH_VARIANT: ("nnlib", dataclasses.replace(spec, flush_denormal=True))}


def columns(names, variants):
    """The table's columns: ``names``, each variant right after the peer it varies (when
    that peer is in ``names``)."""
    out = []
    for n in names:
        out.append(n)
        out += [column for column, (peer, _) in variants.items() if peer == n]
    return out


# --- PyTorch ------------------------------------------------------------------------

def build_torch(spec, X, y, init):
    torch = import_torch(spec.threads)
    nn = torch.nn
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[spec.dtype]
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[spec.activation]
    mods = []
    for i, (W, b) in enumerate(init):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(init) - 1:
            mods.append(act())
    model = nn.Sequential(*mods)
    h = spec.hyper
    if spec.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                               eps=h["eps"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=h["lr"], momentum=h["momentum"])
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, bs = len(X), spec.batch_size
    gen = torch.Generator().manual_seed(spec.seed)

    def run():
        perm = torch.randperm(n, generator=gen)
        Xs, ys = Xt[perm], yt[perm]
        for i in range(0, n, bs):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xs[i:i + bs]), ys[i:i + bs])
            loss.backward()
            opt.step()

    def params():
        lins = [m for m in model if isinstance(m, nn.Linear)]
        return [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in lins]

    return Epoch(run, params)


# --- JAX ----------------------------------------------------------------------------

def import_jax(threads, dtype):
    """Import JAX on the CPU with XLA's thread pools sized to ``threads`` CPUs and 64-bit
    arrays when ``dtype`` is float64.

    XLA sizes its CPU client's pools from the CPUs the creating thread may run on, when
    the client is created; ``--xla_cpu_multi_thread_eigen=false`` no longer limits them
    (measured with JAX 0.10: two ``tf_XLAEigen`` threads shared a "one-thread" epoch).
    So the client is created here, under a CPU mask of ``threads`` CPUs
    (``_cpus_limited``), and every thread started meanwhile gets the full mask back: the
    pools keep their size and the scheduler keeps moving them like any other thread."""
    import os
    import sys
    if "jax" not in sys.modules and threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        with _cpus_limited(threads):
            import jax
            jax.devices("cpu")          # creates the CPU client and its pools now
    except ImportError:
        raise _missing("jax") from None
    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)
    return jax


@contextlib.contextmanager
def _cpus_limited(n):
    """Run the block with this thread allowed on ``n`` of its CPUs (Linux; elsewhere, or
    when it already has at most ``n``, the block runs as it is); afterwards this thread and
    every thread the block started are allowed on all of them again."""
    import os
    try:
        allowed = sorted(os.sched_getaffinity(0))
        before = set(os.listdir("/proc/self/task"))
    except (AttributeError, OSError):
        allowed, before = [], set()
    if len(allowed) <= n:
        yield
        return
    try:
        os.sched_setaffinity(0, allowed[:n])
    except OSError:         # a sandbox that forbids it: unlimited (the thread audit shows it)
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)
        for tid in set(os.listdir("/proc/self/task")) - before:
            try:
                os.sched_setaffinity(int(tid), allowed)
            except OSError:
                pass        # a thread that already exited


def build_jax(spec, X, y, init):
    """The whole epoch as ONE XLA-compiled call: the shuffled order goes in, the batches
    are gathered and the steps run by ``lax.scan`` inside the compiled program (the
    strongest way to train a small network on a CPU with JAX); a last short batch is a
    second compiled step inside the same program. Compiled ahead of time, so the timed
    calls never include compilation (reported as ``compile_seconds``)."""
    jax = import_jax(spec.threads, spec.dtype)
    import jax.numpy as jnp
    from jax import lax
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[spec.activation]
    h = spec.hyper
    lr, L, n, B = h["lr"], len(init), len(X), spec.batch_size
    full, rem = (n // B) * B, n % B

    def loss_fn(params, xb, yb):
        z = xb
        for k, (W, b) in enumerate(params):
            z = z @ W + b
            if k < L - 1:
                z = act(z)
        logp = jax.nn.log_softmax(z)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def update(params, opt_state, t, grads):
        # torch.optim's rules, as every other peer runs them
        if spec.optimizer == "adam":
            b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
            m, v = opt_state
            m = jax.tree_util.tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
            v = jax.tree_util.tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
            c1, c2 = 1 - b1 ** t, 1 - b2 ** t
            params = jax.tree_util.tree_map(
                lambda p, m_, v_: p - (lr / c1) * m_ / (jnp.sqrt(v_ / c2) + eps),
                params, m, v)
            return params, (m, v)
        if h["momentum"]:
            (v,) = opt_state
            v = jax.tree_util.tree_map(lambda v_, g: h["momentum"] * v_ + g, v, grads)
            return jax.tree_util.tree_map(lambda p, v_: p - lr * v_, params, v), (v,)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), opt_state

    def step(state, batch):
        params, opt_state, t = state
        xb, yb = batch
        t = t + 1
        params, opt_state = update(params, opt_state, t, jax.grad(loss_fn)(params, xb, yb))
        return (params, opt_state, t), None

    def epoch(state, Xd, yd, perm):
        Xs, ys = Xd[perm], yd[perm]
        if full:
            batches = (Xs[:full].reshape(full // B, B, -1), ys[:full].reshape(full // B, B))
            state, _ = lax.scan(step, state, batches)
        if rem:
            state, _ = step(state, (Xs[full:], ys[full:]))
        return state

    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in init]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    opt_state = ((zeros, zeros) if spec.optimizer == "adam"
                 else (zeros,) if h["momentum"] else ())
    t_dtype = jnp.float64 if np.dtype(spec.dtype) == np.float64 else jnp.float32
    state = [(params, opt_state, jnp.asarray(0, dtype=t_dtype))]
    Xd, yd = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(spec.seed)
    import time
    tic = time.perf_counter()
    compiled = jax.jit(epoch).lower(state[0], Xd, yd,
                                    jnp.asarray(np.arange(n, dtype=np.int32))).compile()
    compile_seconds = time.perf_counter() - tic

    def run():
        perm = jnp.asarray(rng.permutation(n).astype(np.int32))
        state[0] = compiled(state[0], Xd, yd, perm)
        jax.block_until_ready(state[0])

    def params_now():
        return [(np.asarray(W), np.asarray(b)) for W, b in state[0][0]]

    return Epoch(run, params_now, compile_seconds)


# --- scikit-learn -------------------------------------------------------------------

def build_sklearn(spec, X, y, init):
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise _missing("sklearn") from None
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    h = spec.hyper
    kw = dict(hidden_layer_sizes=tuple(spec.sizes[1:-1]), activation=spec.activation,
              alpha=0.0, batch_size=spec.batch_size, learning_rate_init=h["lr"],
              shuffle=True, random_state=spec.seed, max_iter=1, early_stopping=False)
    if spec.optimizer == "adam":
        kw.update(solver="adam", beta_1=h["beta1"], beta_2=h["beta2"], epsilon=h["eps"])
    else:
        kw.update(solver="sgd", learning_rate="constant", momentum=h["momentum"],
                  nesterovs_momentum=False)
    clf = MLPClassifier(**kw)
    # The first partial_fit creates the weights (its own init); overwrite them in place
    # with the shared ones so every peer starts from the same point.
    clf.partial_fit(X, y, classes=np.unique(y))
    for k, (W, b) in enumerate(init):
        clf.coefs_[k][...] = W
        clf.intercepts_[k][...] = b

    def run():
        clf.partial_fit(X, y)

    def params():
        return list(zip(clf.coefs_, clf.intercepts_))

    return Epoch(run, params)


# --- plain NumPy --------------------------------------------------------------------

def build_numpy(spec, X, y, init):
    Ws = [W.copy() for W, _ in init]
    bs_ = [b.copy() for _, b in init]
    params_flat = [p for pair in zip(Ws, bs_) for p in pair]
    h = spec.hyper
    lr, L, n, B = h["lr"], len(Ws), len(X), spec.batch_size
    state = [[np.zeros_like(p) for p in params_flat] for _ in range(2)]
    t = [0]
    rng = np.random.default_rng(spec.seed)
    act, act_grad = _numpy_activation(spec.activation)

    def step(grads):
        t[0] += 1
        if spec.optimizer == "adam":
            b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
            c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
            for p, g, m, v in zip(params_flat, grads, *state):
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                p -= (lr / c1) * m / (np.sqrt(v / c2) + eps)
        elif h["momentum"]:
            for p, g, v in zip(params_flat, grads, state[0]):
                v *= h["momentum"]     # torch's rule; first step v = g since v starts at 0
                v += g
                p -= lr * v
        else:
            for p, g in zip(params_flat, grads):
                p -= lr * g

    def run():
        perm = rng.permutation(n)
        for i in range(0, n, B):
            idx = perm[i:i + B]
            xb, yb = X[idx], y[idx]
            acts = [xb]
            for k in range(L):
                z = acts[-1] @ Ws[k]
                z += bs_[k]
                if k < L - 1:
                    act(z)
                acts.append(z)
            p = acts[-1]                        # softmax in place, stable
            p -= p.max(axis=1, keepdims=True)
            np.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1.0    # dZ = (softmax - onehot) / m
            p /= len(yb)
            dz, grads = p, [None] * (2 * L)
            for k in range(L - 1, -1, -1):
                grads[2 * k] = acts[k].T @ dz
                grads[2 * k + 1] = dz.sum(axis=0)
                if k:
                    dz = dz @ Ws[k].T
                    act_grad(dz, acts[k])
            step(grads)

    return Epoch(run, lambda: list(zip(Ws, bs_)))


def _numpy_activation(name):
    """(forward in place on z, backward in place: dh *= g'(h) from the output h)."""
    if name == "relu":
        return (lambda z: np.maximum(z, 0, out=z)), (lambda dh, h: np.multiply(dh, h > 0, out=dh))
    if name == "tanh":
        return (lambda z: np.tanh(z, out=z)), (lambda dh, h: np.multiply(dh, 1 - h * h, out=dh))
    raise ValueError(f"NumPy peer has no activation {name!r}")


BUILDERS = {"nnlib": build_nnlib, "torch": build_torch, "jax": build_jax,
            "sklearn": build_sklearn, "numpy": build_numpy}


def describe_peers(dtype=np.float32):
    """One line per peer saying exactly what it runs (for the Markdown report)."""
    dt = np.dtype(dtype).name
    return {
        "nnlib": f"nnlib Sequential/Dense + nnlib.optim, model.fit(epochs=1, n_threads=the "
                 f"run's thread count), {dt}",
        "torch": f"PyTorch eager: nn.Sequential + torch.optim, tensor slices of a per-epoch "
                 f"permutation, {dt}",
        "jax": f"JAX on the CPU: the whole epoch one jit-compiled call (lax.scan over the "
               f"batches of the shuffled order), compiled ahead of time (not timed), {dt}; "
               f"XLA's thread pools sized to the run's thread count (its CPU client created "
               f"under a CPU mask of that many CPUs: XLA_FLAGS no longer limit them)",
        "sklearn": f"scikit-learn MLPClassifier.partial_fit (one epoch), alpha=0, {dt}",
        "numpy": f"NumPy: vectorized forward/backward per mini-batch, in-place updates, {dt}",
        FLUSH_VARIANT: f"nnlib as above with nnlib.set_flush_denormal(True) during each "
                       f"epoch (subnormal results flushed to 0, as XLA does on the CPU), "
                       f"{dt}",
    }


def train_builders(spec, X, y, init, peers=PEERS):
    """name -> zero-argument builder returning the epoch callable; the Epoch objects are
    kept in the returned dict ``epochs`` for the loss check afterwards."""
    epochs = {}
    return ({name: epoch_builder(epochs, name, name, spec, X, y, init) for name in peers},
            epochs)


def epoch_builder(epochs, column, peer, spec, X, y, init):
    """A builder of ``peer``'s epoch on ``spec``; the Epoch it builds goes to
    ``epochs[column]``."""
    def build():
        ep = BUILDERS[peer](spec, X, y, init)
        epochs[column] = ep
        return ep.run
    return build
