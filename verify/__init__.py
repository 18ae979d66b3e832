"""verify: SymPy derives every formula nnlib computes, proves the closed forms the kernels
use, measures the compiled kernels against high-precision values in ULPs, decides
convexity, and writes a report (``python -m verify``).

Public API (for your own kernels too): :func:`check_elementwise`, :func:`check_map`,
:func:`check_loss`, each returning a result with ``.passed`` and ``.first_failure``.
nnlib never imports this package.
"""
__all__ = ["check_elementwise", "check_map", "check_loss", "CheckResult", "Failure"]


def __getattr__(name):
    # the public API (verify.api) imports SymPy, mpmath and NumPy, half a second of CPU:
    # loaded when first used, so that ``python -m verify`` starts its worker processes
    # (verify.workers) before it imports them, and the workers import them beside it
    if name in __all__:
        from verify import api
        return getattr(api, name)
    raise AttributeError(f"module 'verify' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
