"""The thread-safety contract of README "Threads and concurrency": what may run at the
same time, what waits for what, what is refused -- and fork() after OpenMP has run."""
import pickle
import threading
import time
import warnings

import numpy as np
import pytest

import nnlib
from nnlib import optim
from nnlib.estimators import MLPClassifier
from nnlib.exceptions import ConcurrentUseError


def _data(n=60, d=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.arange(n) % classes


def _model(seed=0):
    return nnlib.Sequential([nnlib.Dense(3, 4, "tanh", random_state=seed),
                             nnlib.Dense(4, 3, random_state=seed + 1)])


class _PausedFit:
    """Runs ``fit(**kw)`` in a thread whose first epoch callback waits until ``go``."""

    def __init__(self, model, X, y, **kw):
        self.inside, self.go, self.error = threading.Event(), threading.Event(), None

        def callback(epoch, logs):
            self.inside.set()
            self.go.wait(10)

        def run():
            try:
                model.fit(X, y, callbacks=[callback], **kw)
            except BaseException as exc:             # reported to the test
                self.error = exc
        self.thread = threading.Thread(target=run)

    def __enter__(self):
        self.thread.start()
        assert self.inside.wait(10)
        return self

    def __exit__(self, *exc):
        self.go.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return False


class _PausedEstimatorFit:
    """Runs ``clf.fit(X, y)`` in a thread that stops (holding the estimator's lock, the
    new network initialized but not trained) until the block ends."""

    def __init__(self, clf, X, y):
        self.inside, self.go = threading.Event(), threading.Event()
        self.clf, self.X, self.y = clf, X, y

    def __enter__(self):
        real = self.real = MLPClassifier._fit_stochastic

        def paused(est, *args, **kwargs):
            self.inside.set()
            self.go.wait(10)
            return real(est, *args, **kwargs)
        MLPClassifier._fit_stochastic = paused
        self.thread = threading.Thread(target=self._fit)
        self.thread.start()
        assert self.inside.wait(10)
        return self

    def _fit(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.fit(self.X, self.y)

    def __exit__(self, *exc):
        MLPClassifier._fit_stochastic = self.real
        self.go.set()
        self.thread.join(10)
        return False


def test_two_fits_sharing_one_optimizer_are_refused():
    """Before: both ran, interleaving their steps, and optimizer.t lost the counts."""
    X, y = _data()
    opt = optim.Adam(lr=0.01)
    with _PausedFit(_model(0), X, y, optimizer=opt, epochs=2, batch_size=10) as first:
        with pytest.raises(ConcurrentUseError, match="optimizer.*in use by a running "
                                                     "fit.*own optimizer"):
            _model(2).fit(X, y, optimizer=opt, epochs=1)
        with pytest.raises(ConcurrentUseError, match="Adam.step.*running fit"):
            opt.step([np.ones(2)], [np.ones(2)])
    assert first.error is None
    assert opt.t == 2 * 6                        # every step of the first fit counted
    second = _model(2)
    second.fit(X, y, optimizer=opt, epochs=1, batch_size=10)        # free again
    # state is per array (torch.optim's): the second model's arrays took 6 steps
    assert opt.t == 2 * 6 and [opt.state[p]["step"] for p in second.params] == [6] * 4


def test_two_fits_of_one_model_are_refused():
    X, y = _data()
    model = _model(0)
    with _PausedFit(model, X, y, epochs=1) as first:
        W = model.layers[0].W.copy()
        with pytest.raises(RuntimeError, match="being trained by another fit"):
            model.fit(X, y, optimizer=optim.SGD(lr=0.1))
        np.testing.assert_array_equal(model.layers[0].W, W)     # refused before a step
    assert first.error is None
    model.fit(X, y, epochs=1)                                   # free again


def test_a_fit_claims_the_layers_its_model_shares_with_another():
    # two models sharing a layer trained its arrays in two fits at once, unrefused (each
    # step's update lost to the other's), and predict read them mid-step
    X, y = _data()
    trained = _model(0)
    sharing = nnlib.Sequential([trained.layers[0], nnlib.Dense(4, 3, random_state=5)])
    with _PausedFit(trained, X, y, epochs=2, optimizer=optim.SGD(lr=0.1)) as first:
        W = trained.layers[0].W.copy()
        opt = optim.SGD(lr=0.1)
        with pytest.raises(ConcurrentUseError, match="a layer of the model .*shares it"):
            sharing.fit(X, y, optimizer=opt)
        with pytest.raises(ConcurrentUseError, match="a layer it shares"):
            sharing.predict(X)
        np.testing.assert_array_equal(trained.layers[0].W, W)  # refused before a step
        assert opt.t == 0
        _model(0).fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1)    # shares nothing
    assert first.error is None
    sharing.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1)          # free again
    sharing.predict(X)


def test_a_layer_repeated_in_a_model_is_claimed_once():
    # a Dropout object used twice: its second claim is the run's own, not another fit's
    X, y = _data()
    drop = nnlib.layers.Dropout(0.2, random_state=3)
    model = nnlib.Sequential([nnlib.Dense(3, 4, "relu", random_state=0), drop,
                              nnlib.Dense(4, 4, "relu", random_state=1), drop,
                              nnlib.Dense(4, 3, random_state=2)])
    opt = optim.SGD(lr=0.1)
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=60)
    assert opt.t == 1


# Another optimizer bound to a model's arrays stepped them during the model's fit
# unrefused (only the fit's own optimizer was claimed): its updates interleaved with the
# fit's, from another thread or from a callback.
def _zero_grads(params):
    return [np.zeros_like(p) for p in params]


def test_another_optimizers_step_on_a_running_fits_arrays_is_refused():
    X, y = _data()
    model = _model(0)
    with _PausedFit(model, X, y, epochs=2, optimizer=optim.SGD(lr=0.1)) as first:
        before = [p.copy() for p in model.params]
        bound = optim.Adam(model.params, lr=0.1)
        with pytest.raises(ConcurrentUseError, match=r"Adam\.step: parameter 0 \(shape "
                           r"\(3, 4\)\) is being trained by a running fit with another "
                           r"optimizer \(thread \d+\)"):
            bound.step(_zero_grads(model.params))
        # the functional form, and a view of an array (the memory is what counts)
        with pytest.raises(ConcurrentUseError, match=r"SGD\.step: parameter 1 \(shape "
                           r"\(3,\)\)"):
            optim.SGD(lr=0.1).step([np.zeros(2), model.params[3]],
                                   [np.zeros(2), np.ones(3)])
        view = model.params[0].reshape(-1)
        with pytest.raises(ConcurrentUseError, match="being trained by a running fit"):
            optim.SGD([view], lr=0.1).step([np.ones(12)])
        for p, q in zip(model.params, before):
            np.testing.assert_array_equal(p, q)             # refused before a step
        assert bound.t == 0
        other = _model(5)                                   # arrays of its own: steps
        optim.SGD(other.params, lr=0.1).step(_zero_grads(other.params))
    assert first.error is None
    # the fit removed its array claims (a dead run's would also count as released, but
    # every step would then pay the lookup that an empty table skips)
    from nnlib import _threads
    assert not _threads._ARRAY_OWNERS._data
    bound.step(_zero_grads(model.params))                   # free again
    assert bound.t == 1


def test_another_optimizers_step_from_a_callback_of_the_fit_is_refused():
    X, y = _data()
    model = _model(0)
    other = optim.SGD(model.params, lr=0.1, momentum=0.9)
    seen = []

    def step_the_other(epoch, logs):
        try:
            other.step(_zero_grads(model.params))
            seen.append(None)
        except ConcurrentUseError as exc:
            seen.append(str(exc))

    model.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=2, callbacks=[step_the_other])
    assert len(seen) == 2 and all("being trained by a running fit" in m for m in seen)
    assert other.t == 0 and not other.state_dict()["state"]


NESTED = [
    ("fit", lambda model, other, opt, X, y: model.fit(X, y, optimizer=optim.SGD(lr=0.1))),
    ("train_on_batch", lambda model, other, opt, X, y: model.train_on_batch(X[:5], y[:5])),
    ("other_model_same_optimizer", lambda model, other, opt, X, y: other.fit(
        X, y, optimizer=opt)),
    ("optimizer_step", lambda model, other, opt, X, y: opt.step(
        _zero_grads(model.params))),
]


@pytest.mark.parametrize("call", [c[1] for c in NESTED], ids=[c[0] for c in NESTED])
def test_a_call_nested_in_this_threads_fit_is_named_so(call):
    # a callback of a running fit that trains the fit's model or optimizer is told it
    # is nested in this thread's fit; it was told "another fit" trained it (and to
    # train one model in one fit at a time), and sent looking for another thread
    X, y = _data()
    model, other, opt = _model(0), _model(2), optim.SGD(lr=0.1)
    seen = []

    def nested(epoch, logs):
        try:
            call(model, other, opt, X, y)
            seen.append(None)
        except ConcurrentUseError as exc:
            seen.append(str(exc))

    model.fit(X, y, optimizer=opt, epochs=2, callbacks=[nested])
    assert len(seen) == 2 and None not in seen, seen
    for message in seen:
        assert "in this thread" in message and "nested in" in message, message
        assert "another fit" not in message and "(thread " not in message, message
    assert opt.t == 2 * 2                       # only the fit's own steps were taken


def test_a_fit_starting_while_another_optimizers_step_runs_is_refused():
    """The other direction: the step recorded its arrays before it checked for fits, so
    a fit that claims them meanwhile finds the step and backs off."""
    X, y = _data()
    model = _model(0)
    stepping = optim.SGD(model.params, lr=0.1)
    inside, go, errors = threading.Event(), threading.Event(), []
    real = stepping._apply

    def paused_apply(*args):                    # the step has passed its checks
        inside.set()
        go.wait(10)
        return real(*args)
    stepping._apply = paused_apply

    def run():
        try:
            stepping.step(_zero_grads(model.params))
        except BaseException as exc:             # reported to the test
            errors.append(exc)
    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.raises(ConcurrentUseError, match=r"a parameter array of the model "
                           r"\(ndarray\) is in use by a running optimizer\.step"):
            model.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1)
        with pytest.raises(ConcurrentUseError, match="running optimizer.step"):
            nnlib.Sequential(model.layers).fit(X, y, epochs=1)
        _model(3).fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1)    # shares nothing
    finally:
        go.set()
        thread.join(10)
    assert not thread.is_alive() and not errors and stepping.t == 1
    model.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1)          # free again


def test_a_fit_claims_the_arrays_its_model_shares_with_another():
    X, y = _data()
    trained = _model(0)
    sharing = _model(7)
    sharing.layers[1].W = trained.layers[1].W           # an array, not the layer
    with _PausedFit(trained, X, y, epochs=2, optimizer=optim.SGD(lr=0.1)) as first:
        with pytest.raises(ConcurrentUseError, match="a parameter array of the model "
                                                     r"\(ndarray\) is in use by a running fit"):
            sharing.fit(X, y, optimizer=optim.SGD(lr=0.1))
    assert first.error is None
    sharing.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1)          # free again


def test_fits_with_their_own_optimizers_run_concurrently():
    X, y = _data()
    with _PausedFit(_model(0), X, y, optimizer=optim.SGD(lr=0.1), epochs=2):
        opt = optim.SGD(lr=0.1)
        _model(2).fit(X, y, optimizer=opt, epochs=1, batch_size=10)
        assert opt.t == 6


class _EqualByValue(nnlib.Sequential):
    """A user's subclass with value equality and, as ``__eq__`` implies, no hash."""

    def __eq__(self, other):
        return isinstance(other, _EqualByValue) and len(self.layers) == len(other.layers)


class _HashedByValue(_EqualByValue):
    def __hash__(self):
        return 1


# The records of fits (claims, kept setups) were keyed by the models' == and hash: such
# a subclass could not fit at all (TypeError: unhashable type), and with a hash one
# model's fit claimed every equal model.
def test_a_model_that_defines_equality_fits_as_any_other():
    X, y = _data()
    model, plain = _EqualByValue(_model(0).layers), _model(0)
    for m in (model, plain):
        for seed in (1, 2):                  # the second fit reuses the kept setup
            m.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1, batch_size=7,
                  random_state=seed)
    for a, b in zip(model.params, plain.params):
        np.testing.assert_array_equal(a, b)


def test_a_fit_claims_its_model_not_the_models_equal_to_it():
    X, y = _data()
    model, other = _HashedByValue(_model(0).layers), _HashedByValue(_model(3).layers)
    seen = []

    def use_the_other_model(epoch, logs):    # while ``model``'s fit holds its claim
        seen.append(other.predict(X).shape)
        other.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1)

    model.fit(X, y, optimizer=optim.SGD(lr=0.1), epochs=1, callbacks=[use_the_other_model])
    assert seen == [(len(X), 3)]


def test_predict_waits_for_a_running_fit_of_the_same_estimator():
    """Before: predict_proba during a re-fit read a network being rebuilt in place
    (arrays of the wrong shape)."""
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    clf.set_params(hidden_layer_sizes=(7, 2))
    out = []
    with _PausedEstimatorFit(clf, X, y % 2):
        reader = threading.Thread(target=lambda: out.append(clf.predict_proba(X)))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive() and not out          # waiting for the fit
    reader.join(10)
    assert out[0].shape == (60, 2)                    # the finished model's classes
    np.testing.assert_allclose(out[0], clf.predict_proba(X))


def test_predict_during_refits_always_sees_a_whole_model():
    X, y = _data(n=200)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
        stop, bad = threading.Event(), []

        def refit():
            sizes = [(3,), (9, 4), (6,)]
            for i in range(15):
                clf.set_params(hidden_layer_sizes=sizes[i % 3])
                clf.fit(X, y if i % 2 else y % 2)
            stop.set()
        t = threading.Thread(target=refit)
        t.start()
        while not stop.is_set():
            try:
                P = clf.predict_proba(X)
            except Exception as exc:                      # noqa: BLE001 - reported
                bad.append(repr(exc))
                continue
            if P.shape not in ((200, 2), (200, 3)) or not np.allclose(P.sum(1), 1):
                bad.append(P.shape)
        t.join()
    assert not bad, bad[:5]


def test_estimators_pickle_and_clone_without_their_lock():
    import pickle
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


# -- fork() after OpenMP has run ------------------------------------------------------
# Before: libgomp's pool does not survive fork(), and the child's first parallel region
# waited forever. Now a forked child runs the compiled loops on one thread.

def _in_fork_child(work, timeout=30):
    """Run ``work()`` in a child forked now; fail if it hangs or raises."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()

    def child():
        try:
            q.put(("ok", work()))
        except BaseException as exc:                  # reported to the parent
            q.put(("error", repr(exc)))
    p = ctx.Process(target=child)
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail(f"the forked child hung (> {timeout} s)")
    status, value = q.get(timeout=5)
    assert status == "ok", value
    return value


def _openmp_has_run():
    import nnlib.functional as F
    from nnlib._threads import MAX_THREADS
    if MAX_THREADS < 2:
        pytest.skip("one OpenMP thread: no pool to lose across fork()")
    F.relu(np.ones(1 << 16), n_threads=2)


def _child_kernels():
    import nnlib.functional as F
    from nnlib._threads import in_forked_child, resolve_threads
    x = np.linspace(-1, 1, 1 << 16)
    z = x.reshape(-1, 4)
    y = np.arange(z.shape[0]) % 4
    out = [F.relu(x, n_threads=2).sum(), F.relu(x).sum(), F.softmax(z).sum(),
           F.softmax_cross_entropy(z, y, n_threads=2)]
    p = np.ones(1 << 16)
    optim.Adam(lr=0.1).step([p], [np.ones(1 << 16)])
    return in_forked_child(), resolve_threads(4, 1 << 20), out, float(p[0])


def test_a_forked_child_runs_the_kernels_after_openmp_ran():
    _openmp_has_run()
    forked, threads, out, p0 = _in_fork_child(_child_kernels)
    assert forked and threads == 1
    import nnlib.functional as F
    x = np.linspace(-1, 1, 1 << 16)
    assert out[0] == F.relu(x, n_threads=2).sum()          # same values, one thread
    assert p0 == pytest.approx(0.9)


def test_a_forked_child_trains_and_predicts():
    _openmp_has_run()
    X, y = _data()

    def work():
        m = _model()
        m.fit(X, y, epochs=2, n_threads=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(X, y)
        return m.predict(X).shape, clf.predict_proba(X).shape
    assert _in_fork_child(work) == ((60, 3), (60, 3))


def test_a_fork_during_a_fit_in_another_thread_leaves_the_child_usable():
    """The parent's running fits hold a model, its optimizer and an estimator's lock;
    the child has no such threads, so it must not inherit them."""
    _openmp_has_run()
    X, y = _data()
    opt = optim.SGD(lr=0.1)
    model = _model()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)

    def work():
        model.fit(X, y, optimizer=opt, epochs=1)
        return opt.t, clf.predict_proba(X).shape
    with _PausedEstimatorFit(clf, X, y), _PausedFit(model, X, y, optimizer=opt,
                                                     epochs=1):
        t_child, shape = _in_fork_child(work)
    assert shape == (60, 3) and t_child >= 1



def _child_status(work):
    """Fork now; in the child run ``work()`` (a hang ends it after 60 s) and exit with
    its int; return that exit status (>= 100: it raised)."""
    import faulthandler
    import os
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            faulthandler.dump_traceback_later(60, exit=True)
            code = work()
        except BaseException as exc:                  # the status tells the parent
            print(f"child: {exc!r}", flush=True)
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_fork_during_an_epoch_of_another_threads_partial_fit_leaves_the_child_usable(
        monkeypatch):
    # forked while a parent thread's epoch ran on the estimator's kept run, the child
    # kept a setup busy for good: its next partial_fit raised "release_data while this
    # EpochSetup is training". A fork waits for the epoch's compiled call to return
    # (nnlib._threads.training_call) unless the wait runs out: with none, the fork lands
    # in the epoch as after a wait that ran out
    from nnlib import _threads
    monkeypatch.setattr(_threads, "FORK_WAIT_SECONDS", 0.0)
    _openmp_has_run()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4000, 50)), np.arange(4000) % 3
    clf = MLPClassifier(hidden_layer_sizes=(256,), random_state=0)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    stop = threading.Event()

    def train():
        while not stop.is_set():
            clf.partial_fit(X, y)

    def child(run):
        if not run.setup.busy:
            return 3                # forked between epochs: not the case tested
        clf.partial_fit(X[:100], y[:100])
        return 0 if clf.predict(X[:5]).shape == (5,) else 1

    thread = threading.Thread(target=train)
    thread.start()
    try:
        status, deadline = 3, time.monotonic() + 20
        while status == 3 and time.monotonic() < deadline:
            run = getattr(getattr(clf, "_trainer", None), "_run", None)
            if run is not None and run.setup.busy:      # an epoch runs without the GIL
                status = _child_status(lambda: child(run))
    finally:
        stop.set()
        thread.join(30)
    assert status == 0


def test_the_readme_states_this_contract():
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md")).read()
    section = text.split("## Threads and concurrency", 1)[1].split("\n## ", 1)[0]
    for phrase in ("tests/test_concurrency.py", "ConcurrentUseError", "estimator's lock",
                   "labels are copied", "save` during a `fit", "fork()", "one thread",
                   "`predict`, `forward`, `evaluate`, `score`, `test_on_batch`,\n  `loss_and_grads`, "
                   "`get_weights`, `set_weights`, `load_weights`, the exports",
                   "pickling take the estimator's lock", "owner and group",
                   "`optimizer.t` counts exactly", "NNLIB_RELIABILITY_SECONDS",
                   "tests/test_fuzz_reliability_*.py", "with each other on one model"):
        assert phrase in section, phrase


def test_predicts_of_one_model_run_concurrently_and_agree():
    X, _ = _data(n=20000)
    model = _model(0)
    want = model.predict(X)
    out = []
    threads = [threading.Thread(target=lambda: out.append(model.predict(X, batch_size=997)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == 4
    for P in out:                   # other chunking: BLAS may round the last bit apart
        np.testing.assert_allclose(P, want, rtol=1e-12, atol=1e-15)


# -- predict during the model's own fit ------------------------------------------------
# Before: a predict in another thread read W and b while the GIL-free loop updated them in
# place, giving outputs of a model that never existed. Now it either returns the outputs
# of the weights of a completed step, or raises ConcurrentUseError.

def test_predict_from_another_thread_during_a_fit_is_refused():
    X, y = _data()
    model = _model(0)
    with _PausedFit(model, X, y, epochs=2) as first:
        with pytest.raises(ConcurrentUseError, match="another thread.*callback"):
            model.predict(X)
        with pytest.raises(ConcurrentUseError):
            model.forward(X)
    assert first.error is None
    assert model.predict(X).shape == (60, 3)                 # free again


# Before (probe34): evaluate, score, test_on_batch and loss_and_grads from another
# thread ran during the fit unchecked, reading W and b while the loop stepped them: a
# loss or accuracy of a model that never existed. They are refused as predict is.
LOSS_CALLS = {
    "evaluate": lambda model, X, y: model.evaluate(X, y),
    "score": lambda model, X, y: model.score(X, y),
    "test_on_batch": lambda model, X, y: model.test_on_batch(X, y),
    "test_on_batch-weighted": lambda model, X, y: model.test_on_batch(
        X, y, sample_weight=np.ones(len(y))),
    "loss_and_grads": lambda model, X, y: model.loss_and_grads(X, y),
}


@pytest.mark.parametrize("call", list(LOSS_CALLS), ids=list(LOSS_CALLS))
def test_a_loss_from_another_thread_during_a_fit_is_refused(call):
    X, y = _data()
    model = _model(0)
    with _PausedFit(model, X, y, epochs=2) as first:
        with pytest.raises(ConcurrentUseError, match="would mix training steps"):
            LOSS_CALLS[call](model, X, y)
    assert first.error is None
    LOSS_CALLS[call](model, X, y)                               # free again


# The refusal names the call the user made. Found reviewing probe34: score and
# test_on_batch were refused by the check of the evaluate or predict they call, so
# model.score(X, y) said "so evaluate there would mix training steps" (R^2: "predict").
NAMED_CALLS = {
    "score": lambda model, X, y: model.score(X, y),
    "score-r2": lambda model, X, y: model.score(X, np.eye(3)[y], loss="squared_error"),
    "test_on_batch": lambda model, X, y: model.test_on_batch(X, y),
    "predict_proba": lambda model, X, y: model.predict_proba(X),
    "predict_on_batch": lambda model, X, y: model.predict_on_batch(X),
}


@pytest.mark.parametrize("call", list(NAMED_CALLS), ids=list(NAMED_CALLS))
def test_a_call_refused_during_another_threads_fit_is_named(call):
    X, y = _data()
    model = _model(0)
    verb = call.split("-")[0]
    with _PausedFit(model, X, y, epochs=2) as first:
        with pytest.raises(ConcurrentUseError, match=f"so {verb} there would mix"):
            NAMED_CALLS[call](model, X, y)
    assert first.error is None
    NAMED_CALLS[call](model, X, y)                              # free again


# Keras's weight verbs and pickles from another thread during a fit (probe35): get_weights
# and pickle.dumps(model) or of its optimizer returned copies of arrays the GIL-free loop
# was stepping (a model, or moments and step counts, of no single step), and a refused
# set_weights or load_weights said "so predict there would mix training steps". They are
# refused, each named; from the fit's own callbacks they run (the epoch's weights).
def _weights_file(model, tmp_path):
    path = str(tmp_path / "w.npz")
    model.save_weights(path)                # allowed during a fit: a loadable file
    return path


WEIGHT_CALLS = {
    "get_weights": lambda model, tmp: model.get_weights(),
    "set_weights": lambda model, tmp: model.set_weights([p.copy() for p in model.params]),
    "load_weights": lambda model, tmp: model.load_weights(_weights_file(model, tmp)),
    "pickling the model": lambda model, tmp: pickle.dumps(model),
    "pickling SGD": lambda model, tmp: pickle.dumps(model.optimizer),
}


@pytest.mark.parametrize("call", list(WEIGHT_CALLS), ids=list(WEIGHT_CALLS))
def test_a_weight_verb_or_pickle_during_another_threads_fit_is_refused_and_named(
        call, tmp_path):
    X, y = _data()
    model = _model(0)
    model.optimizer = optim.SGD(lr=0.1)
    with _PausedFit(model, X, y, epochs=2) as first:
        with pytest.raises(ConcurrentUseError, match=call):
            WEIGHT_CALLS[call](model, tmp_path)
    assert first.error is None
    WEIGHT_CALLS[call](model, tmp_path)                         # free again
    seen = []
    model.fit(X, y, epochs=1, callbacks=[lambda epoch, logs: seen.append(
        WEIGHT_CALLS[call](model, tmp_path))])
    assert len(seen) == 1


# An estimator pickled from another thread during its fit (probe35) was pickled at
# once, mid-fit: here its network initialized but not trained. The pickle takes the
# estimator's lock, as predict does, so it waits and holds the fitted model.
def test_an_estimator_pickled_during_its_fit_in_another_thread_is_the_fitted_one():
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    got = []
    with _PausedEstimatorFit(clf, X, y):
        dumper = threading.Thread(target=lambda: got.append(pickle.dumps(clf)))
        dumper.start()
        dumper.join(0.3)
        assert dumper.is_alive()            # waiting for the fit
    dumper.join(10)
    loaded = pickle.loads(got[0])
    assert loaded.n_iter_ == clf.n_iter_ == 5
    for a, b in zip(loaded.coefs_, clf.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call", list(LOSS_CALLS), ids=list(LOSS_CALLS))
def test_a_loss_from_a_callback_of_the_fit_is_of_the_epochs_weights(call):
    X, y = _data()
    model, seen = _model(0), []

    def callback(epoch, logs):
        seen.append((LOSS_CALLS[call](model, X, y), [p.copy() for p in model.params]))
    model.fit(X, y, epochs=2, callbacks=[callback])
    for got, params in seen:
        twin = _model(0)
        for p, q in zip(twin.params, params):
            p[...] = q
        want = LOSS_CALLS[call](twin, X, y)
        if call == "loss_and_grads":
            assert got[0] == want[0]
        else:
            assert got == want


def test_predict_from_a_callback_of_the_fit_sees_the_epochs_weights():
    X, y = _data()
    model, seen = _model(0), []

    def callback(epoch, logs):
        seen.append((model.predict(X), [p.copy() for p in model.params]))
    model.fit(X, y, epochs=3, callbacks=[callback])
    for P, params in seen:
        twin = _model(0)
        for p, q in zip(twin.params, params):
            p[...] = q
        np.testing.assert_array_equal(P, twin.predict(X))


def test_predict_racing_fits_returns_outputs_of_completed_steps_only():
    """Fits in a thread, predicts in this one: every returned prediction equals the
    prediction of the weights after one of the fits (or the initial ones). The fits go
    on (8 at least, 400 at most) until a predict has met one running: on a loaded
    machine this thread may not get a core while the first few run."""
    X, y = _data(n=2000, d=3)
    model = _model(0)
    snapshots = [[p.copy() for p in model.params]]
    results, done, met = [], threading.Event(), threading.Event()

    def train():
        for i in range(400):
            model.fit(X, y, epochs=1, batch_size=1, optimizer=optim.SGD(lr=0.01))
            snapshots.append([p.copy() for p in model.params])
            if i >= 7 and met.is_set():
                break
        done.set()
    t = threading.Thread(target=train)
    t.start()
    refused = 0
    while not done.is_set():
        try:
            results.append(model.predict(X[:50]))
        except ConcurrentUseError:
            refused += 1
            met.set()
    t.join()
    twin = _model(0)
    allowed = []
    for params in snapshots:
        for p, q in zip(twin.params, params):
            p[...] = q
        allowed.append(twin.predict(X[:50]))
    for P in results:
        assert any(np.array_equal(P, A) for A in allowed)
    assert refused > 0


# who trains during predict: the model itself, or another model sharing its first layer
# (that fit moves the layer's arrays; the layers' counts were not read before c37d8ba)
FITTED_DURING_PREDICT = {
    "the-model": lambda model: model,
    "a-model-sharing-a-layer": lambda model: nnlib.Sequential(
        [model.layers[0], nnlib.Dense(4, 3, random_state=5)]),
}


@pytest.mark.parametrize("fitted", list(FITTED_DURING_PREDICT),
                         ids=list(FITTED_DURING_PREDICT))
def test_a_whole_fit_between_predicts_check_and_its_computation_is_seen(monkeypatch,
                                                                         fitted):
    """The predicting thread can be descheduled for a whole fit right after its first
    check (a GIL switch interval is 5 ms): the fits' start counts, read before that
    check, tell."""
    from nnlib import model as model_module
    X, y = _data()
    model = _model(0)
    other = FITTED_DURING_PREDICT[fitted](model)
    guard = model_module._NotDuringAnotherThreadsFit
    real_check, calls = guard._check, []

    def check_then_a_fit_elsewhere(self):
        real_check(self)
        calls.append(1)
        if len(calls) == 1:
            t = threading.Thread(target=lambda: other.fit(X, y, epochs=1))
            t.start()
            t.join()
    monkeypatch.setattr(guard, "_check", check_then_a_fit_elsewhere)
    with pytest.raises(ConcurrentUseError, match="predict again"):
        model.predict(X)


_SMALL_STACK = """
import sys, threading
import numpy as np
import nnlib, nnlib.functional as F
from nnlib import optim
threading.stack_size(32768)      # the smallest Python takes
done = []

def run():
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((64, 100)).astype(dt)
        W = rng.standard_normal((100, 64)).astype(dt)
        dy = rng.standard_normal((64, 64)).astype(dt)
        y = F.dense_forward(x, W, np.zeros(64, dt))
        F.dense_backward(x, W, y, dy)            # dZ W^T: the copied panels
        for name in ("sigmoid", "tanh", "relu", "softplus", "elu"):
            getattr(F, name + "_vjp")(getattr(F, name)(x), x)
        F.softmax_cross_entropy(x, np.arange(64) % 3)
        X, labels = rng.standard_normal((300, 20)).astype(dt), np.arange(300) % 3
        for bs in (1, 32, 300):
            m = nnlib.Sequential([nnlib.Dense(20, 64, "relu", random_state=0),
                                  nnlib.Dense(64, 3, random_state=1)])
            m.fit(X, labels, optimizer=optim.SGD(lr=0.1), epochs=2, batch_size=bs,
                  random_state=0, n_threads=1)
        done.append(dt.__name__)

def guarded():
    try:
        run()
    except BaseException:
        import traceback
        traceback.print_exc()

t = threading.Thread(target=guarded)
t.start()
t.join()
print(" ".join(done))
"""


def test_the_kernels_and_fit_run_in_a_thread_with_the_smallest_stack():
    """No kernel keeps a large buffer on the stack: a thread started with Python's
    smallest stack (32 KiB; musl's threads get 128 KiB) runs the products (their copied
    panels), the elementwise kernels, the loss and whole fits at batch 1, 32 and 300."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", _SMALL_STACK], cwd=root, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.split() == ["float32", "float64"], r.stderr[-2000:]


def test_a_call_nested_in_a_step_closure_is_told_the_step_holds_it():
    # the holder is optimizer.step (its closure makes the call), not a fit or a callback
    from nnlib import optim as _optim
    model = nnlib.Sequential([nnlib.Dense(2, 2, random_state=0)])
    opt = _optim.SGD(model.params, lr=0.1)
    seen = []

    def closure():
        for call in (lambda: model.fit(np.eye(2), [0, 1], optimizer=opt, epochs=1),
                     lambda: opt.step([np.zeros_like(p) for p in model.params])):
            with pytest.raises(ConcurrentUseError) as info:
                call()
            seen.append(str(info.value))
        return 0.0, [np.zeros_like(p) for p in model.params]

    opt.step(closure=closure)
    assert len(seen) == 2
    for message in seen:
        assert "running fit" not in message and "callback" not in message, message
        assert "nested" in message and "closure" in message, message


def test_a_dropout_unseeded_by_the_users_code_during_an_unshuffled_fit_gets_a_seed():
    # fit decides it needs no generator before X's conversion runs the user's
    # __array__; a Dropout whose seed that code clears is seeded all the same, from
    # random_state's generator (None: fresh entropy; an int: that seed's)
    from nnlib.layers import Dropout
    for random_state in (None, 7):
        drop = Dropout(0.5, random_state=3)
        model = nnlib.Sequential([nnlib.Dense(2, 4, random_state=0), drop,
                                  nnlib.Dense(4, 2, random_state=1)])

        class X:
            def __array__(self, dtype=None, copy=None):
                drop.seed = None
                return np.eye(2)

        model.fit(X(), [0, 1], epochs=1, shuffle=False, random_state=random_state)
        assert drop._fit_seed is not None
    # an int seed gives the layer the seed it gets when unseeded from the start
    first = drop._fit_seed
    drop2 = Dropout(0.5)
    model2 = nnlib.Sequential([nnlib.Dense(2, 4, random_state=0), drop2,
                               nnlib.Dense(4, 2, random_state=1)])
    model2.fit(np.eye(2), [0, 1], epochs=1, shuffle=False, random_state=7)
    assert drop2._fit_seed == first
