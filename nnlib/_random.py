"""Seeds: turn a user's ``random_state`` into a NumPy ``Generator``."""
import numbers
import sys

import numpy as np

from nnlib._typing import SeedLike


def as_generator(random_state: SeedLike, name: str = "random_state") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``random_state``.

    None -> fresh OS entropy; an int >= 0 -> ``default_rng(seed)`` (reproducible); a
    ``Generator`` -> itself (shared, so successive calls continue its stream); a legacy
    ``RandomState`` -> a Generator seeded from one draw of it (scikit-learn passes those).

    Parameters
    ----------
    random_state : None, int >= 0, numpy.random.Generator or numpy.random.RandomState
    name : str, default "random_state"
        The argument's name in error messages.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError, TypeError
        For a negative seed or a value of another type.

    Examples
    --------
    >>> a, b = as_generator(7), as_generator(7)
    >>> bool(a.random() == b.random())                 # an int seed reproduces
    True
    >>> g = np.random.default_rng(0)
    >>> as_generator(g) is g                           # a Generator is shared
    True
    """
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"{name} must be >= 0; got {random_state}")
        return np.random.default_rng(int(random_state))
    raise TypeError(f"{name} must be None, an int, a numpy Generator or RandomState; got "
                    f"{random_state!r} ({type(random_state).__name__})")


def shuffle_orders(random_state: SeedLike, name: str = "random_state"):
    """What ``fit`` draws its epoch orders from: ``.permutation(n)`` as
    ``as_generator(random_state)`` gives it.

    A plain int seed gets the compiled :class:`nnlib._kernels.shuffle.SeedOrders` (the
    same orders, bit for bit, without building a Generator: about 25 us less per fit);
    anything else the Generator itself. Use it only where nothing else draws from the
    generator (a fit with unseeded Dropout layers spawns their seeds from it).

    Examples
    --------
    >>> a, b = shuffle_orders(7), as_generator(7)
    >>> bool((a.permutation(6) == b.permutation(6)).all())
    True
    """
    if (type(random_state) is int and random_state >= 0) or (
            isinstance(random_state, np.integer) and random_state >= 0):
        return _shuffle().SeedOrders(int(random_state))
    return as_generator(random_state, name)


_SHUFFLE = []       # the compiled shuffle module, imported on first use (once per fit)


def _shuffle():
    if not _SHUFFLE:
        from nnlib._kernels import shuffle
        _SHUFFLE.append(shuffle)
    return _SHUFFLE[0]


# NumPy's own bit generators (a user's BitGenerator may call back into Python)
_NUMPY_BIT_GENERATORS = (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937,
                         np.random.Philox, np.random.SFC64)


def draws_in_library(rng) -> bool:
    """Whether ``rng.permutation`` runs only nnlib's or NumPy's code (no code of the
    user's): a :class:`nnlib._kernels.shuffle.SeedOrders`, or a NumPy ``Generator``
    (not a subclass) on one of NumPy's bit generators.

    Examples
    --------
    >>> draws_in_library(shuffle_orders(7)), draws_in_library(as_generator(None))
    (True, True)
    >>> class Traced(np.random.Generator):
    ...     pass
    >>> draws_in_library(Traced(np.random.PCG64(0)))
    False
    """
    if type(rng) is np.random.Generator:
        return type(rng.bit_generator) in _NUMPY_BIT_GENERATORS
    shuffle = sys.modules.get("nnlib._kernels.shuffle")
    return shuffle is not None and type(rng) is shuffle.SeedOrders


def epoch_order(rng, n: int) -> np.ndarray:
    """``rng.permutation(n)`` as int64: one epoch's order for ``fit``. NumPy's own
    ``Generator`` (on one of NumPy's bit generators) draws it through the compiled
    :func:`nnlib._kernels.shuffle.generator_permutation`, the same order and state, which
    keeps the GIL for a short order (NumPy's ``permutation`` lets it go however short
    it is: gil.pxd says why that matters).

    Examples
    --------
    >>> a, b = np.random.default_rng(3), np.random.default_rng(3)
    >>> bool((epoch_order(a, 7) == b.permutation(7)).all())
    True
    """
    if (type(rng) is np.random.Generator and type(rng.bit_generator) in _NUMPY_BIT_GENERATORS
            and _compiled_permutation_is_numpys()):
        from nnlib._kernels.shuffle import generator_permutation
        return generator_permutation(rng, n)
    return rng.permutation(n).astype(np.int64, copy=False)


_PERMUTATION_CHECKED: list = []


def _compiled_permutation_is_numpys() -> bool:
    """Whether the compiled permutation gives this NumPy's ``Generator.permutation``
    (order and state afterwards), checked once per process on short and long orders
    from a buffered 32-bit state: NumPy does not promise its Generator's streams across
    versions, and an algorithm that changed is then NumPy's own, not a silent copy."""
    if not _PERMUTATION_CHECKED:
        from nnlib._kernels.shuffle import generator_permutation
        same = True
        for n in (97, 40000):
            a, b = np.random.default_rng(n), np.random.default_rng(n)
            a.integers(0, 2**31, dtype=np.int32), b.integers(0, 2**31, dtype=np.int32)
            same = same and bool((generator_permutation(a, n) == b.permutation(n)).all())
            same = same and a.bit_generator.state == b.bit_generator.state
        _PERMUTATION_CHECKED.append(same)
    return _PERMUTATION_CHECKED[0]
