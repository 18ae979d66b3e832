"""verify: SymPy derives every formula nnlib computes, proves the closed forms the kernels
use, measures the compiled kernels against high-precision values in ULPs, decides
convexity, and writes a report (``python -m verify``).

Public API (for your own kernels too): :func:`check_elementwise`, :func:`check_map`,
:func:`check_loss`, each returning a result with ``.passed`` and ``.first_failure``.
nnlib never imports this package.
"""
from verify.api import CheckResult, Failure, check_elementwise, check_loss, check_map

__all__ = ["check_elementwise", "check_map", "check_loss", "CheckResult", "Failure"]
