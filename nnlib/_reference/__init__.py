"""NumPy twins of nnlib's compiled entry points: plain NumPy, written to be read, the
tests' oracle and the statement of the math next to the fast code.

This package namespace holds the twins of the kernels of :mod:`nnlib.functional`; the
submodules ``optim`` and ``train`` are the twins of ``nnlib._kernels.optim`` and
``nnlib._kernels.train`` (the optimizer steps, the training epoch and its loss and
gradients). Same names, same signatures: tests/test_twins.py enforces it. ``mlp`` states
scikit-learn's MLP training, which the estimators reproduce.
"""
from nnlib._reference.activations import *  # noqa: F401,F403
from nnlib._reference import activations as _activations
from nnlib._reference.output_maps import *  # noqa: F401,F403
from nnlib._reference import output_maps as _output_maps
from nnlib._reference.losses import *  # noqa: F401,F403
from nnlib._reference import losses as _losses
from nnlib._reference.dense import *  # noqa: F401,F403
from nnlib._reference import dense as _dense
from nnlib._reference.dropout import dropout, dropout_vjp  # noqa: F401
from nnlib._reference import dropout as _dropout

__all__ = list(_activations.__all__)
__all__ += _output_maps.__all__
__all__ += _losses.__all__
__all__ += _dense.__all__
__all__ += ["dropout", "dropout_vjp"]
