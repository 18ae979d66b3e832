"""The arguments of dropout, checked once for the kernel and its twin: the rate and the
three counters of the mask (seed, step, first row), each an unsigned 64-bit integer."""
from nnlib._validation import check_int_scalar, check_real_scalar

__all__ = ["check_dropout_args"]

_UINT64 = 1 << 64


def check_dropout_args(rate, seed, step, row0):
    """(rate, seed, step, row0) as (float in [0, 1), int, int, int) in [0, 2**64)."""
    rate = check_real_scalar(rate, "rate", low=0.0, high=1.0, high_open=True)
    out = [rate]
    for name, value in (("seed", seed), ("step", step), ("row0", row0)):
        v = check_int_scalar(value, name, low=0)
        if v >= _UINT64:
            raise ValueError(f"{name} must be < 2**64; got {v}")
        out.append(v)
    return tuple(out)
