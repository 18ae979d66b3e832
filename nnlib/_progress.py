"""Progress display for ``Sequential.fit(verbose=...)``.

The training run cuts each epoch into compiled pieces of about 0.1 s
(``nnlib.training.PieceClock``) so that Ctrl-C is seen promptly; the bar is redrawn after
each piece. Cutting the shuffled order at multiples of the batch size gives exactly the
same batches, updates and step counts, so the trained weights do not depend on
``verbose`` (bitwise; tested).

verbose=1 redraws one line in place (``\\r``) on a terminal. Where ``\\r`` would pile up
(a file, a pipe, a CI log) it prints one line per epoch instead, as verbose=2 always does.
"""

import math
import sys
import time


class Progress:
    """Draw the progress of a fit.

    Parameters
    ----------
    epochs : int
        Epochs requested.
    steps_per_epoch : int
        Mini-batch steps in one full epoch (``ceil(n_rows / batch_size)``).
    verbose : {0, 1, 2}
        0 nothing; 1 a bar redrawn within each epoch on a terminal (else as 2);
        2 one line per finished epoch.
    stream : file-like, optional
        Where to draw (default ``sys.stdout`` at construction).
    """

    WIDTH = 24

    def __init__(self, epochs, steps_per_epoch, verbose, stream=None):
        self.epochs = max(int(epochs), 1)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.stream = sys.stdout if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.inplace = verbose == 1 and bool(isatty and isatty())
        self.enabled = verbose != 0
        self.t_start = time.perf_counter()
        self._drawn = False

    def piece_done(self, epoch, steps_done, loss_sum, seen):
        """Redraw after a finished piece: ``steps_done`` steps of the epoch covering
        ``seen`` rows with summed loss ``loss_sum``."""
        if not self.inplace or steps_done >= self.steps_per_epoch:
            return                  # the epoch's own line follows
        loss = f"  loss {loss_sum / seen:.4g}" if seen else ""
        self._write(epoch, steps_done, f"step {steps_done}/{self.steps_per_epoch}{loss}")

    def epoch_done(self, epoch, logs):
        """Draw the line of a finished epoch (``logs`` as in ``History``)."""
        if not self.enabled:
            return
        extra = "".join(f"  {k} {logs[k]:.4g}" for k in ("val_loss", "val_accuracy")
                        if k in logs)
        text = (f"loss {logs['loss']:.4g}{extra}  {logs['time'] * 1e3:.1f} ms/epoch")
        self._write(epoch, self.steps_per_epoch, text, end="" if self.inplace else "\n")

    def close(self):
        """End the in-place line."""
        if self.inplace and self._drawn:
            self.stream.write("\n")
            self.stream.flush()

    def _write(self, epoch, steps_done, text, end=""):
        done = epoch * self.steps_per_epoch + steps_done
        total = self.epochs * self.steps_per_epoch
        elapsed = time.perf_counter() - self.t_start
        eta = elapsed / done * (total - done) if done else math.nan
        filled = min(self.WIDTH, int(self.WIDTH * done / total))
        bar = "=" * filled + ("." * (self.WIDTH - filled))
        line = f"[{bar}] epoch {epoch + 1}/{self.epochs}  {text}  ETA {eta:.1f} s"
        if self.inplace:
            # pad to erase the tail of a longer previous line
            line = "\r" + line.ljust(getattr(self, "_width", 0))
            self._width = len(line) - 1
        self.stream.write(line + end)
        self.stream.flush()
        self._drawn = True
