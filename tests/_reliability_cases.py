"""Shared pieces of the reliability fuzz cases (tests/test_fuzz_reliability_*.py): random
small models, optimizers and data drawn from a seeded ``numpy.random.Generator``, and an
interrupt fired at a random moment (a real SIGINT, as Ctrl-C sends, or a
KeyboardInterrupt raised asynchronously in the main thread by
``PyThreadState_SetAsyncExc``, which lands between any two bytecodes)."""
import copy
import ctypes
import os
import signal
import threading
import warnings

import numpy as np

import nnlib
from nnlib import optim
from nnlib.layers import Dropout

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu"]
OPTIMIZERS = [(optim.SGD, {}), (optim.SGD, dict(momentum=0.9, nesterov=True)),
              (optim.Adagrad, {}), (optim.RMSprop, dict(centered=True, momentum=0.5)),
              (optim.Adam, {}), (optim.AdamW, dict(amsgrad=True)), (optim.NotesMomentum, {}),
              (optim.NotesAdaGrad, {}), (optim.SklearnSGD, {}), (optim.SklearnAdam, {})]
LOSSES = ["softmax_cross_entropy", "sparsemax_loss", "hinge_loss", "logistic_loss",
          "squared_error"]
DOCUMENTED = (ValueError, TypeError, RuntimeError)     # ConcurrentUseError is a RuntimeError


def pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


class PyDropout(Dropout):
    """A Dropout the compiled epoch does not know: trains through the per-batch path."""

    def forward_train(self, X):
        return super().forward_train(X)


def model(rng, n_in, n_out, dtype=np.float64, max_hidden=2, python_layers=False):
    """A random small Sequential; with ``python_layers``, sometimes a Dropout after a
    hidden layer: a plain one (trained inside the compiled epoch) or, for an odd seed, a
    subclass with its own forward_train (the model then trains through the per-batch
    Python path)."""
    sizes = [n_in] + [int(rng.integers(1, 9)) for _ in range(int(rng.integers(0, max_hidden + 1)))]
    sizes.append(n_out)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nnlib.Dense(a, b, pick(rng, ACTIVATIONS) if i < len(sizes) - 2
                                  else "identity", random_state=int(rng.integers(1 << 30)),
                                  dtype=dtype))
        if python_layers and i < len(sizes) - 2 and rng.random() < 0.5:
            rate, seed = float(rng.uniform(0, 0.5)), int(rng.integers(1 << 30))
            layers.append((PyDropout if seed % 2 else Dropout)(rate, random_state=seed))
    return nnlib.Sequential(layers)


def optimizer(rng, lr=None):
    cls, kw = pick(rng, OPTIMIZERS)
    lr = float(10 ** rng.uniform(-3, -1.5)) if lr is None else lr
    return cls(lr=lr, **kw)


def problem(rng, n=None, d=None, dtype=np.float64, loss=None, python_layers=False):
    """(X, y, loss, model, optimizer): a small random training problem."""
    n = int(rng.integers(2, 300)) if n is None else n
    d = int(rng.integers(1, 6)) if d is None else d
    loss = pick(rng, LOSSES) if loss is None else loss
    c = 1 if loss == "logistic_loss" and rng.random() < 0.5 else int(rng.integers(2, 4))
    X = rng.standard_normal((n, d)).astype(dtype)
    if loss == "squared_error":
        y = rng.standard_normal((n, c)).astype(dtype)
    elif loss == "logistic_loss":
        y = rng.integers(0, 2, n if c == 1 else (n, c))
    else:
        y = (np.arange(n) + rng.integers(0, c, n)) % c
    return X, y, loss, model(rng, d, c, dtype, python_layers=python_layers), optimizer(rng)


def copies(m, opt):
    """Independent copies of a model and its optimizer (state and t included)."""
    return copy.deepcopy(m), copy.deepcopy(opt)


def assert_same_arrays(got, want, what):
    assert len(got) == len(want), what
    for i, (a, b) in enumerate(zip(got, want)):
        if a is None or b is None:
            assert a is None and b is None, f"{what}[{i}]"
            continue
        np.testing.assert_array_equal(a, b, err_msg=f"{what}[{i}]", strict=True)


def state_of(opt, m):
    """The optimizer's state arrays for the model's params (None: none kept yet)."""
    # state is keyed by each array's identity (torch.optim's shape)
    rows = [opt._entries[id(p)].rows.copy() for p in m.params if id(p) in opt._entries]
    return rows or None


# --- interrupts -----------------------------------------------------------------------

class Interrupt:
    """Interrupts the main thread ``delay`` seconds after ``start()``, unless
    ``disarm()`` comes first; ``kind`` "sigint" or "async". Use :func:`interrupted`.

    While still armed it interrupts again every ``REPEAT`` seconds, as a user presses
    Ctrl-C again: CPython drops a KeyboardInterrupt that lands inside a weakref callback
    or ``__del__`` ("Exception ignored in ..."), and a fit of a million epochs would
    then run on. (Every interrupt, the repeats too, is one the code must survive.)

    An interrupt sent before ``disarm()`` but not yet raised when it runs is dropped, not
    delivered late into the harness: a SIGINT goes through :meth:`on_sigint`, which raises
    only while armed (as Python's default handler does), and a pending asynchronous
    exception is cleared (``PyThreadState_SetAsyncExc`` with NULL)."""

    REPEAT = 2.0

    def __init__(self, delay, kind):
        self.delay, self.kind = delay, kind
        self.lock, self.armed, self.fired = threading.Lock(), True, False
        self.done = False               # set by interrupted() as soon as op has ended
        self.main = threading.main_thread().ident
        self.timer = threading.Timer(delay, self._fire)

    def _fire(self):
        with self.lock:
            if not self.armed:
                return
            self.fired = True
            if self.kind == "sigint":
                os.kill(os.getpid(), signal.SIGINT)
            else:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.main), ctypes.py_object(KeyboardInterrupt))
            self.timer = threading.Timer(self.REPEAT, self._fire)
            self.timer.daemon = True
            self.timer.start()

    def on_sigint(self, signum, frame):
        """The SIGINT handler while this runs: it raises while op runs. A signal sent as
        op ends is handled at the next check point, which can be ``disarm``'s own entry,
        before it clears ``armed``: ``done`` (a plain store, no check point before it)
        silences it there. It reads the flags without the lock: it runs in the main
        thread, which may hold the lock in ``disarm``."""
        if self.armed and not self.done:
            raise KeyboardInterrupt

    def disarm(self):
        """No interrupt reaches the caller after this returns. True if one was sent."""
        while True:
            try:
                with self.lock:
                    self.armed = False      # _fire sends nothing more; on_sigint is silent
                self.timer.cancel()
                if self.kind == "async":     # one sent may still be pending: drop it
                    _drop_pending_async_exception(self.main)
                else:                        # run a tripped handler now, while it is silent
                    ctypes.pythonapi.PyErr_CheckSignals()
                return self.fired
            except KeyboardInterrupt:        # it landed before armed was cleared
                continue


class _Dropped(Exception):
    """The asynchronous exception :func:`_drop_pending_async_exception` puts in place of a
    pending one, and catches."""


def _drop_pending_async_exception(thread_id):
    """Drop an asynchronous exception pending for the calling thread (``thread_id``, the
    main one). Clearing it with ``PyThreadState_SetAsyncExc(id, NULL)`` would leave
    CPython 3.11's eval breaker set for good (only a delivered one resets it), and then a
    trace function that raises on a "call" event hangs the interpreter (the harness of
    test_fuzz_reliability_regressions does). So one of ours replaces it and is delivered
    here (as the call returns, or at the loop's backward jump), which resets the
    breaker."""
    try:
        if ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                      ctypes.py_object(_Dropped)) != 1:
            raise RuntimeError(f"no thread {thread_id} to drop an exception of")
        while True:
            pass
    except _Dropped:
        pass


def interrupted(op, delay, kind):
    """Run ``op()`` with an interrupt ``delay`` seconds in; (result or None, True if op
    raised KeyboardInterrupt). The interrupt never escapes to the caller."""
    assert threading.current_thread() is threading.main_thread()
    it = Interrupt(delay, kind)
    result, hit = None, False
    previous = signal.signal(signal.SIGINT, it.on_sigint) if kind == "sigint" else None
    try:
        it.timer.start()
        result = op()
    except KeyboardInterrupt:
        it.done = True
        hit = True
    finally:
        it.done = True
        while True:     # an asynchronous one can land at disarm's entry: it is absorbed
            try:
                it.disarm()
                break
            except KeyboardInterrupt:
                continue
        it.timer.join()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return result, hit


def random_interrupt(rng, longest=0.25):
    """(delay, kind) of a random interrupt: often early (inside validation and setup),
    else anywhere up to ``longest`` seconds."""
    delay = float(rng.uniform(0, 0.01)) if rng.random() < 0.3 else float(
        rng.uniform(0, longest))
    return delay, pick(rng, ["sigint", "async"])


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)
