"""NumPy twins of every compiled kernel in :mod:`nnlib.functional`.

Same names, same signatures (a test enforces it); plain NumPy, written to be read. They
are the tests' oracle and the statement of the math next to the fast code.
"""
from nnlib._reference.activations import *  # noqa: F401,F403
from nnlib._reference import activations as _activations
from nnlib._reference.output_maps import *  # noqa: F401,F403
from nnlib._reference import output_maps as _output_maps
from nnlib._reference.losses import *  # noqa: F401,F403
from nnlib._reference import losses as _losses
from nnlib._reference.dense import *  # noqa: F401,F403
from nnlib._reference import dense as _dense

__all__ = list(_activations.__all__)
__all__ += _output_maps.__all__
__all__ += _losses.__all__
__all__ += _dense.__all__
