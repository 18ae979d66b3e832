"""nnlib.functional: the compiled kernels as plain functions, NumPy arrays in and out.

* ``dense_forward, dense_backward``: the Dense layer (see nnlib.functional.dense);
* activations (``identity, sigmoid, tanh, relu, leaky_relu, softplus, elu, sign``), each
  with its vector-Jacobian product ``name_vjp(x, grad_out)``;

Every function has a NumPy twin of the same name and signature in ``nnlib._reference``.
"""
from nnlib.functional.activations import *  # noqa: F401,F403
from nnlib.functional import activations as _activations
from nnlib.functional.dense import *  # noqa: F401,F403
from nnlib.functional import dense as _dense

__all__ = list(_activations.__all__)
__all__ += _dense.__all__
