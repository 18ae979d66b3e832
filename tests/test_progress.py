"""fit(verbose=...): the bar moves within an epoch on a terminal, prints one line per
epoch elsewhere, and never changes what is trained (the epoch is cut at whole batches)."""
import io
import warnings

import numpy as np
import pytest

import nnlib
from nnlib import optim
from nnlib.training import PieceClock


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _model(dtype=np.float64, act="tanh", seed=0):
    return nnlib.Sequential([nnlib.Dense(6, 9, act, dtype=dtype, random_state=seed),
                             nnlib.Dense(9, 3, dtype=dtype, random_state=seed + 1)])


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)), rng.integers(0, 3, n)


def _fit(monkeypatch, stream, piece=None, **kw):
    """Fit with stdout replaced by ``stream``; ``piece`` forces the steps per compiled
    call (otherwise the rate-based choice)."""
    monkeypatch.setattr("sys.stdout", stream)
    if piece is not None:
        monkeypatch.setattr(PieceClock, "steps", lambda self: piece)
    model = _model(kw.pop("dtype", np.float64), kw.pop("act", "tanh"))
    X, y = kw.pop("data", _data())
    hist = model.fit(X, y, **kw)
    return model, hist


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("piece", [1, 3, 7])
@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_epoch_cut_into_pieces_trains_bitwise_the_same(monkeypatch, dtype, piece, opt):
    kw = dict(optimizer=None, epochs=3, batch_size=8, random_state=4, n_threads=1,
              dtype=dtype)
    make = {"SGD": lambda: optim.SGD(lr=0.05, momentum=0.9),
            "Adam": lambda: optim.Adam(lr=0.01)}[opt]
    whole, h_whole = _fit(monkeypatch, io.StringIO(), **{**kw, "optimizer": make()})
    cut, h_cut = _fit(monkeypatch, _Terminal(), piece=piece, verbose=1,
                      **{**kw, "optimizer": make()})
    for a, b in zip(whole.params, cut.params):
        np.testing.assert_array_equal(a, b)
    # the epoch loss is summed piece by piece: equal up to the order of the additions
    np.testing.assert_allclose(h_whole["loss"], h_cut["loss"], rtol=1e-12)


def test_divergence_inside_a_piece_keeps_the_same_last_finite_weights(monkeypatch):
    X = np.random.default_rng(0).standard_normal((40, 6))
    Y = np.random.default_rng(1).standard_normal((40, 3))
    kw = dict(data=(X, Y), act="identity", loss="squared_error", epochs=200,
              batch_size=4, shuffle=False, n_threads=1)
    results = []
    for stream, piece in ((io.StringIO(), None), (_Terminal(), 3)):
        with pytest.warns(RuntimeWarning, match="non-finite"):
            model, hist = _fit(monkeypatch, stream, piece=piece, verbose=1,
                               optimizer=optim.SGD(lr=3.0), **kw)
        assert all(np.isfinite(p).all() for p in model.params)
        results.append((model.params, hist.nonfinite))
    (p0, info0), (p1, info1) = results
    assert info0 == info1
    for a, b in zip(p0, p1):
        np.testing.assert_array_equal(a, b)


def test_terminal_bar_redraws_within_the_epoch(monkeypatch):
    term = _Terminal()
    _fit(monkeypatch, term, verbose=1, optimizer=optim.SGD(lr=0.01), epochs=2,
         batch_size=1, data=_data(n=640))
    out = term.getvalue()
    # the first piece is a probe of steps_per_epoch // 64 steps: always drawn in-epoch
    assert "epoch 1/2  step 10/640" in out
    assert "epoch 2/2  loss" in out and "ms/epoch" in out and "ETA" in out
    # Keras's habit: each finished epoch's line stays (one newline per epoch)
    assert out.count("\n") == 2 and out.endswith("\n")
    assert "\r" in out
    kept = [line.rsplit("\r", 1)[-1].rstrip() for line in out.split("\n")[:-1]]
    assert kept[0].startswith("epoch 1/2  loss") and kept[1].startswith("epoch 2/2  loss")


def _screen_lines(out):
    """What each redraw puts on the screen: the text between control characters."""
    import re
    return [t for t in re.split(r"[\r\n]", out) if t.strip()]


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_every_line_fits_the_terminal_width(monkeypatch, columns):
    """A line as wide as the terminal wraps and leaves a copy at each redraw: every
    line (live and per-epoch) is at most columns - 1 wide, and fields that do not fit
    are dropped whole, never cut inside a number."""
    import os
    monkeypatch.setattr("nnlib._progress.shutil.get_terminal_size",
                        lambda fallback=None: os.terminal_size((columns, 24)))
    term = _Terminal()
    _fit(monkeypatch, term, verbose=1, optimizer=optim.SGD(lr=0.01), epochs=2,
         batch_size=1, data=_data(n=640), validation_split=0.2)
    lines = _screen_lines(term.getvalue())
    assert lines and max(len(t.rstrip()) for t in lines) <= columns - 1
    for t in lines:
        fields = t.rstrip().split("  ")
        assert fields[0].startswith("epoch ")
        for f in fields[1:]:
            if f.startswith(("loss ", "val_loss ", "val_accuracy ")):
                float(f.split(" ", 1)[1])           # a whole number, not a cut one
    if columns >= 80:          # room for step, loss and ETA on the live line
        live = [t for t in lines if "step " in t]
        assert live and all("loss " in t and "ETA " in t for t in live)


def test_live_line_shows_step_loss_eta_and_a_bar(monkeypatch):
    import os
    monkeypatch.setattr("nnlib._progress.shutil.get_terminal_size",
                        lambda fallback=None: os.terminal_size((120, 24)))
    term = _Terminal()
    _fit(monkeypatch, term, verbose=1, optimizer=optim.SGD(lr=0.01), epochs=1,
         batch_size=1, data=_data(n=640))
    live = [t for t in _screen_lines(term.getvalue()) if "step " in t]
    assert live
    import re
    assert all(re.search(r"step \d+/640  loss [-0-9.e]+  ETA [0-9.]+ s  \[=*\.*\]", t)
               for t in live), live[:2]


@pytest.mark.parametrize("verbose", [1, 2, True])
def test_not_a_terminal_gets_one_line_per_epoch(monkeypatch, verbose):
    buf = io.StringIO()
    _fit(monkeypatch, buf, verbose=verbose, optimizer=optim.SGD(lr=0.01), epochs=3,
         validation_split=0.2)
    lines = buf.getvalue().splitlines()
    # no control characters at all where \r would pile up (a file, a pipe, a CI log)
    assert len(lines) == 3 and not any(c in buf.getvalue() for c in "\r\b\x1b")
    for k, line in enumerate(lines, 1):
        assert f"epoch {k}/3  loss" in line and "val_loss" in line and "ETA" in line
    assert "step" not in buf.getvalue()


def test_silent_by_default_and_bad_verbose_rejected(monkeypatch):
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(monkeypatch, buf, optimizer=optim.SGD(lr=0.01), epochs=2)
    assert buf.getvalue() == ""
    with pytest.raises(ValueError, match="verbose must be >= 0; got -1"):
        _fit(monkeypatch, buf, verbose=-1)
    with pytest.raises(TypeError, match="verbose must be an integer"):
        _fit(monkeypatch, buf, verbose="yes")
