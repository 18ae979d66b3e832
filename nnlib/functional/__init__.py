"""nnlib.functional: the compiled kernels as plain functions, NumPy arrays in and out.

* ``dense_forward, dense_backward``: the Dense layer (see nnlib.functional.dense);
* activations (``identity, sigmoid, tanh, relu, leaky_relu, softplus, elu, sign``), each
  with its vector-Jacobian product ``name_vjp(x, grad_out)``;
* output maps over the last axis (``softmax, log_softmax, sparsemax``) and their vjps;
* ``dropout, dropout_vjp``: inverted dropout with a counter-based mask;
* losses ``name(z, y)`` (mean over samples) with ``name_grad(z, y)`` (``softmax_cross_entropy,
  squared_error, logistic_loss, sparsemax_loss, hinge_loss``);

Every function has a NumPy twin of the same name and signature in ``nnlib._reference``.
"""
from nnlib.functional.activations import *  # noqa: F401,F403
from nnlib.functional import activations as _activations
from nnlib.functional.output_maps import *  # noqa: F401,F403
from nnlib.functional import output_maps as _output_maps
from nnlib.functional.losses import *  # noqa: F401,F403
from nnlib.functional import losses as _losses
from nnlib.functional.dense import *  # noqa: F401,F403
from nnlib.functional import dense as _dense
from nnlib.functional.dropout import dropout, dropout_vjp  # noqa: F401
from nnlib.functional import dropout as _dropout

__all__ = list(_activations.__all__)
__all__ += _output_maps.__all__
__all__ += _losses.__all__
__all__ += _dense.__all__
__all__ += ["dropout", "dropout_vjp"]
