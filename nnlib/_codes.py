"""Integer codes the compiled kernels use for activations (mirrors ``ActivationKind`` in
``nnlib/_kernels/scalar.pxd``; tests/test_activations.py checks they agree)."""

ACTIVATION_CODES = {
    "identity": 0,
    "sigmoid": 1,
    "tanh": 2,
    "relu": 3,
    "leaky_relu": 4,
    "softplus": 5,
    "elu": 6,
    "sign": 7,
}

# The one activation parameter each kind takes, with its default.
ACTIVATION_PARAMS = {"leaky_relu": ("slope", 0.01), "elu": ("alpha", 1.0)}


def activation_code(name):
    """Return the integer code of activation ``name``, or raise ValueError listing the
    valid names."""
    try:
        return ACTIVATION_CODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{sorted(ACTIVATION_CODES)}") from None
