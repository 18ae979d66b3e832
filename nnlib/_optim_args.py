"""The optimizer argument of a training-epoch setup, checked once for the compiled epoch
and its twin: one ``OptimConfig`` dict for every parameter array, or one dict per array
(``W1, b1, W2, b2, ...``), as parameter groups with their own hyper-parameters give.

All the arrays of one setup follow one rule (``kind``); every other field (lr, momentum,
weight decay, betas, eps, the flags) may differ per array, and each array's state layout
follows its own config (``state_slots``)."""
import math

__all__ = ["per_array_configs"]


def per_array_configs(config, n):
    """``(configs, stored)`` for an ``EpochSetup`` of ``n`` parameter arrays.

    Parameters
    ----------
    config : dict or sequence of n dicts
        ``Optimizer.config()`` for all arrays, or ``Optimizer.configs(params)``.
    n : int
        The number of parameter arrays (``2 L``).

    Returns
    -------
    configs : tuple of n dicts
        The config of each array (copies).
    stored : dict or tuple of n dicts
        What the setup keeps as its ``optimizer``: a copy in the form given, so that a
        caller compares it with its next config directly.

    Raises
    ------
    TypeError
        If ``config`` is neither a dict nor a sequence of dicts.
    ValueError
        If the sequence has not ``n`` configs, they differ in ``kind``, or a float field
        is not finite or an lr negative (naming the array and the field).

    Examples
    --------
    >>> a, b = {"kind": 0, "lr": 0.1}, {"kind": 0, "lr": 0.01}
    >>> configs, stored = per_array_configs([a, b], 2)
    >>> [c["lr"] for c in configs], type(stored).__name__
    ([0.1, 0.01], 'tuple')
    """
    if isinstance(config, dict):
        one = dict(config)
        _check_values(one, "optimizer config")
        return (one,) * n, dict(config)
    if not isinstance(config, (list, tuple)):
        raise TypeError(f"optimizer must be a config dict or a sequence of one per "
                        f"parameter array; got {type(config).__name__}")
    if len(config) != n:
        raise ValueError(f"optimizer has {len(config)} configs; the setup has {n} "
                         f"parameter arrays (W1, b1, W2, b2, ...)")
    configs = []
    for i, c in enumerate(config):
        if not isinstance(c, dict):
            raise TypeError(f"optimizer[{i}] must be a config dict; got "
                            f"{type(c).__name__}")
        configs.append(dict(c))
        _check_values(configs[i], f"optimizer[{i}]")
        if configs[i].get("kind") != configs[0].get("kind"):
            raise ValueError(f"optimizer[{i}] has kind {configs[i].get('kind')!r} and "
                             f"optimizer[0] kind {configs[0].get('kind')!r}: the arrays "
                             f"of one setup follow one rule")
    return tuple(configs), tuple(dict(c) for c in configs)


def _check_values(c, name):
    bad = [k for k, v in c.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name}: {bad} must be finite; got {[c[k] for k in bad]}")
    lr = c.get("lr", 0.0)
    if not lr >= 0:
        raise ValueError(f"{name}: lr must be >= 0; got {lr}")
