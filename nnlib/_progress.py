"""Progress display for ``Sequential.fit(verbose=...)``, and the one line of results
``evaluate`` and ``predict`` print with ``verbose``.

The training run cuts each epoch into compiled pieces of about 0.1 s
(``nnlib.training.PieceClock``) so that Ctrl-C is seen promptly; the bar is redrawn after
each piece. Cutting the shuffled order at multiples of the batch size gives exactly the
same batches, updates and step counts, so the trained weights do not depend on
``verbose`` (bitwise; tested).

On a terminal, verbose=1 keeps Keras's habit: one line per finished epoch stays on screen,
and below it a live line (redrawn in place with ``\\r``) shows the epoch's step, its
running loss, the ETA of the whole fit and a bar. Every line fits the terminal's width
(``shutil.get_terminal_size``, asked at each redraw, so a resized window is followed): a
line that would wrap leaves a copy behind at each redraw, so fields that do not fit are
dropped whole from the right, never cut inside a number. Where ``\\r`` would pile up (a
file, a pipe, a CI log) there are no control characters at all: one plain line per epoch,
as verbose=2 always prints.
"""

import math
import shutil
import sys
import time


def _duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _fit_fields(fields, width):
    """Join ``fields`` with two spaces, keeping only the leading ones that fit ``width``
    (the first is always kept, cut to the width if it alone is too long)."""
    line = fields[0][:width]
    for f in fields[1:]:
        if len(line) + 2 + len(f) > width:
            break
        line += "  " + f
    return line


class Progress:
    """Draw the progress of a fit.

    Parameters
    ----------
    epochs : int
        fit's ``epochs``: the last epoch's index + 1 (lines read ``epoch i/epochs``).
    steps_per_epoch : int
        Mini-batch steps in one full epoch (``ceil(n_rows / batch_size)``).
    verbose : {0, 1, 2}
        0 nothing; 1 one line per finished epoch and, on a terminal, a live line with
        step, loss, ETA and a bar; 2 one line per finished epoch only.
    stream : file-like, optional
        Where to draw (default ``sys.stdout`` at construction).
    initial_epoch : int, default 0
        fit's first epoch: the ETA counts the epochs from it.

    Examples
    --------
    >>> import io
    >>> p = Progress(epochs=2, steps_per_epoch=10, verbose=1, stream=io.StringIO())
    >>> p.epoch_done(0, {"loss": 0.5, "time": 0.01})
    >>> p.stream.getvalue().startswith("epoch 1/2  loss 0.5")
    True
    """

    BAR_MAX = 30

    def __init__(self, epochs, steps_per_epoch, verbose, stream=None, initial_epoch=0):
        self.epochs = max(int(epochs), 1)
        self.initial_epoch = int(initial_epoch)       # epochs before it are not this run's
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.stream = sys.stdout if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.inplace = verbose == 1 and self.terminal
        self.enabled = verbose != 0
        self.t_start = time.perf_counter()
        self._live = 0              # length of the live line on screen (0: none)

    def _columns(self):
        # one column short of the width: a line that ends in the last column makes some
        # terminals wrap before the next \r
        return max(shutil.get_terminal_size((80, 24)).columns - 1, 20)

    def _eta(self, epoch, steps_done):
        done = (epoch - self.initial_epoch) * self.steps_per_epoch + steps_done
        total = (self.epochs - self.initial_epoch) * self.steps_per_epoch
        elapsed = time.perf_counter() - self.t_start
        return elapsed / done * (total - done) if done else math.nan

    def piece_done(self, epoch, steps_done, loss_sum, seen):
        """Redraw the live line after a finished piece: ``steps_done`` steps of the epoch
        covering ``seen`` rows with summed loss ``loss_sum``."""
        if not self.inplace or steps_done >= self.steps_per_epoch:
            return                  # the epoch's own line follows
        width = self._columns()
        fields = [f"epoch {epoch + 1}/{self.epochs}",
                  f"step {steps_done}/{self.steps_per_epoch}"]
        if seen:
            fields.append(f"loss {loss_sum / seen:.4g}")
        fields.append(f"ETA {_duration(self._eta(epoch, steps_done))}")
        line = _fit_fields(fields, width)
        room = min(self.BAR_MAX, width - len(line) - 4)
        if room >= 5 and len(line) == len("  ".join(fields)):
            filled = int(room * steps_done / self.steps_per_epoch)
            line += "  [" + "=" * filled + "." * (room - filled) + "]"
        self._draw(line)

    def epoch_done(self, epoch, logs):
        """Print the line of a finished epoch (``logs`` as in ``History``); it stays."""
        if not self.enabled:
            return
        fields = [f"epoch {epoch + 1}/{self.epochs}", f"loss {logs['loss']:.4g}"]
        # the metrics and validation results, in the order fit logged them
        fields += [f"{k} {v:.4g}" for k, v in logs.items()
                   if k not in ("loss", "time", "lr") and isinstance(v, (int, float))]
        fields.append(f"{logs['time'] * 1e3:.1f} ms/epoch")
        fields.append(f"ETA {_duration(self._eta(epoch + 1, 0))}")
        if self.terminal:
            self._draw(_fit_fields(fields, self._columns()))
            self.stream.write("\n")
            self._live = 0
        else:
            self.stream.write("  ".join(fields) + "\n")
        self.stream.flush()

    def close(self):
        """End a live line left by an epoch that did not finish (an interrupt)."""
        if self._live:
            self.stream.write("\n")
            self.stream.flush()
            self._live = 0

    def _draw(self, line):
        # \r, the new line, and spaces over the tail of a longer previous one
        self.stream.write("\r" + line + " " * max(self._live - len(line), 0))
        self.stream.flush()
        self._live = len(line)


def print_results(what, values, stream=None):
    """Print one line, ``what`` then each ``name value`` of ``values`` (a float with 4
    significant digits, as the epoch lines; other values as they are), and flush."""
    stream = sys.stdout if stream is None else stream
    fields = [what] + [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in values.items()]
    stream.write("  ".join(fields) + "\n")
    stream.flush()
