"""The flush-denormal mode of the compiled training epoch: an opt-in trade of subnormal
float results (magnitudes below ``np.finfo(dtype).tiny``) for speed.

A softmax that has become confident gives probabilities below ``tiny`` (float32:
``2**-126 ~ 1.2e-38``); the loss gradient, the rank-one weight updates and the input
gradient then run on subnormal numbers, each of which costs the CPU a microcode assist of
~100 cycles. XLA (hence JAX) flushes subnormals to zero on the CPU by default; PyTorch,
NumPy and scikit-learn keep them (IEEE 754) unless told otherwise
(``torch.set_flush_denormal``). nnlib keeps them by default too.

With the mode on, the compiled epoch (``nnlib._kernels.train.run_epoch``: ``fit``,
``partial_fit``, the estimators) and its whole-data gradient (``loss_grad``) run with
flush-to-zero (a subnormal result becomes +-0) and denormals-are-zero (a subnormal operand
reads as +-0), on their own thread and their OpenMP worker threads, and put back each
thread's previous mode as they return: the caller's thread never runs in the mode, unlike
``torch.set_flush_denormal``, which sets the calling thread's MXCSR for good. What does
not honour it: the functional kernels (``nnlib.functional``, ``Sequential.predict``),
which are single short calls whose results users compare with NumPy's; the per-batch path
of a model with Python layers, whose user code runs between the kernels and must not
see the mode; and products BLAS runs on its own threads (BLAS with several threads).
The setting is a module global of this process: worker processes (joblib's, Dask's)
start with it off, and a call there needs its own ``set_flush_denormal``.

What changes. Only values below ``tiny``: a result that would be subnormal is 0 and a
subnormal input counts as 0, so each flushed operation is off by less than ``tiny``. An
epoch whose arithmetic meets no subnormal is bitwise the IEEE epoch; one that does
differs in those tiny values, and in the parameters only where a difference below
``tiny`` (times the learning rate) moves a rounding. The NumPy twin
(``nnlib._reference.train``) is the IEEE epoch; tests/test_denormals.py states the bounds
the two are held to.
"""
__all__ = ["set_flush_denormal", "get_flush_denormal"]

# Read by the compiled epoch at each call (a bool's assignment is atomic under the GIL, so
# a call sees either the old or the new mode, never a mix).
_flush = False
# Whether the CPU has the mode: asked of the compiled module once, on the first call
# (a benchmark toggles the mode around every epoch).
_supported = None


def set_flush_denormal(mode: bool) -> bool:
    """Turn the flush-denormal mode of nnlib's compiled training epoch on or off.

    Shaped like ``torch.set_flush_denormal``, but the mode is nnlib's, not the thread's:
    the compiled epoch sets flush-to-zero / denormals-are-zero as it starts and puts the
    caller's floating-point mode back as it returns (also when it stops on a non-finite
    step or an interrupt), so the caller's own NumPy arithmetic stays IEEE. The setting
    is process-wide and read at each epoch call.

    Parameters
    ----------
    mode : bool
        True: results below ``np.finfo(dtype).tiny`` in magnitude become 0 and such
        inputs count as 0 inside the epoch (faster once a softmax is confident; each
        flushed value is off by less than ``tiny``). False (the default): IEEE 754.

    Returns
    -------
    bool
        Whether this CPU supports the mode (x86-64: always). Where it does not, nothing
        changes and False is returned, as torch does.

    Examples
    --------
    >>> import nnlib
    >>> supported = nnlib.set_flush_denormal(True)
    >>> nnlib.get_flush_denormal() == supported
    True
    >>> nnlib.set_flush_denormal(False) == supported
    True
    >>> nnlib.get_flush_denormal()
    False
    """
    global _flush, _supported
    if not isinstance(mode, (bool, int)) or isinstance(mode, float):
        raise TypeError(f"mode must be a bool; got {type(mode).__name__}")
    if _supported is None:
        from nnlib._kernels.train import _flush_supported
        _supported = _flush_supported()
    if not _supported:
        return False
    _flush = bool(mode)
    return True


def get_flush_denormal() -> bool:
    """Whether nnlib's compiled epoch flushes subnormals (``set_flush_denormal``).

    Returns
    -------
    bool
        False by default, and always False where the CPU lacks the mode.

    Examples
    --------
    >>> import nnlib
    >>> nnlib.get_flush_denormal()
    False
    """
    return _flush
