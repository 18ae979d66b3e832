"""nnlib.functional: the compiled kernels as plain functions, NumPy arrays in and out.

* activations (``identity, sigmoid, tanh, relu, leaky_relu, softplus, elu, sign``), each
  with its vector-Jacobian product ``name_vjp(x, grad_out)``;

Every function has a NumPy twin of the same name and signature in ``nnlib._reference``.
"""
from nnlib.functional.activations import *  # noqa: F401,F403
from nnlib.functional import activations as _activations

__all__ = list(_activations.__all__)
