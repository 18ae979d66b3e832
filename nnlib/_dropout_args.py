"""The arguments of dropout, checked once for the kernel and its twin: the rate and the
three counters of the mask (seed, step, first row), each an unsigned 64-bit integer; and
the dropouts of a compiled network with their seeds and counter offsets."""
import math

import numpy as np

from nnlib._validation import check_int_scalar, check_real_scalar

__all__ = ["check_dropout_args", "check_network_dropout", "check_dropout_counters",
           "check_batch_rows"]

_UINT64 = 1 << 64


def check_dropout_args(rate, seed, step, row0):
    """(rate, seed, step, row0) as (float in [0, 1), int, int, int) in [0, 2**64)."""
    if not (type(rate) is float and 0.0 <= rate < 1.0):    # a plain float: at once
        rate = check_real_scalar(rate, "rate", low=0.0, high=1.0, high_open=True)
    out = [rate]
    for name, value in (("seed", seed), ("step", step), ("row0", row0)):
        if type(value) is int and 0 <= value < _UINT64:   # the common case, at once
            out.append(value)
            continue
        v = check_int_scalar(value, name, low=0)
        if v >= _UINT64:
            raise ValueError(f"{name} must be < 2**64; got {v}")
        out.append(v)
    return tuple(out)


def check_network_dropout(dropout, n_layers):
    """A network's dropouts, checked once for the compiled epoch and its twin.

    ``dropout`` is a sequence of ``(position, rate)`` pairs, position in [0, n_layers]
    (the input of that layer; n_layers: the network's output), non-decreasing (several
    at one position apply in the order given), rate a finite float in [0, 1).

    Returns ``(pairs, first, count, thresholds)``: the pairs as a tuple of
    ``(int, float)``, for each of the n_layers + 1 positions the index of its first
    dropout and how many sit there, and each rate's integer threshold
    ``ceil(rate * 2**53)`` (``dropout_rows.pxd``).
    """
    try:
        items = [tuple(item) for item in dropout]
    except TypeError:
        raise TypeError(f"dropout must be a sequence of (position, rate) pairs; got "
                        f"{dropout!r}") from None
    pairs, first, count, thresholds = [], [0] * (n_layers + 1), [0] * (n_layers + 1), []
    last = 0
    for k, item in enumerate(items):
        if len(item) != 2:
            raise ValueError(f"dropout[{k}] must be a (position, rate) pair; got {item!r}")
        pos = check_int_scalar(item[0], f"dropout[{k}] position", low=0)
        if pos > n_layers:
            raise ValueError(f"dropout[{k}] position must be in [0, {n_layers}] (the "
                             f"input of a layer, or the output); got {pos}")
        if pos < last:
            raise ValueError(f"dropout positions must be non-decreasing; dropout[{k}] is "
                             f"at {pos} after {last}")
        rate = check_real_scalar(item[1], f"dropout[{k}] rate", low=0.0, high=1.0,
                                 high_open=True)
        if count[pos] == 0:
            first[pos] = k
        count[pos] += 1
        last = pos
        pairs.append((pos, rate))
        thresholds.append(math.ceil(rate * 2.0 ** 53))
    return tuple(pairs), first, count, thresholds


def check_dropout_counters(seeds, offsets, n):
    """The seeds and counter offsets of ``n`` dropouts as two uint64 arrays (each value
    an int in [0, 2**64))."""
    out = []
    for name, values in (("seeds", seeds), ("offsets", offsets)):
        values = list(values)
        if len(values) != n:
            raise ValueError(f"set_dropout needs {n} {name} (one per dropout); got "
                             f"{len(values)}")
        checked = []
        for k, v in enumerate(values):
            v = check_int_scalar(v, f"{name}[{k}]", low=0)
            if v >= _UINT64:
                raise ValueError(f"{name}[{k}] must be < 2**64; got {v}")
            checked.append(v)
        out.append(np.array(checked, dtype=np.uint64))
    return tuple(out)


def check_batch_rows(batch_rows, n, train_step):
    """``loss_grad``'s ``batch_rows``: None, or the mask row of each of the ``n`` rows of
    X (its position in a larger batch), as a new C-contiguous int64 array of values in
    [0, 2**63) -- a copy, so the caller cannot change it while the compiled loop reads
    it. Only meaningful in training (``train_step`` given)."""
    if batch_rows is None:
        return None
    if train_step is None:
        raise ValueError("batch_rows needs train_step: at inference there are no masks")
    rows = np.asarray(batch_rows)
    if rows.ndim != 1 or rows.shape[0] != n:
        raise ValueError(f"batch_rows must be a 1-d array of {n} row positions (one per "
                         f"row of X); got shape {rows.shape}")
    if rows.dtype.kind not in "iu" and not (rows.dtype == bool and n == 0):
        raise TypeError(f"batch_rows must hold integers; got dtype {rows.dtype}")
    if n and (int(rows.min()) < 0 or int(rows.max()) >= 2**63):
        raise ValueError(f"batch_rows must hold row positions in [0, 2**63); got "
                         f"{int(rows.min())}..{int(rows.max())}")
    return np.array(rows, dtype=np.int64, order="C")
