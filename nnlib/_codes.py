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


# Loss codes (mirrors ``LossKind`` in ``nnlib/_kernels/loss_rows.pxd``; tests/test_losses.py
# checks they agree). Class-label losses read integer labels, the others float targets.
LOSS_CODES = {
    "softmax_cross_entropy": 0,
    "squared_error": 1,
    "logistic_loss": 2,
    "sparsemax_loss": 3,
    "hinge_loss": 4,
}
CLASS_LABEL_LOSSES = ("softmax_cross_entropy", "sparsemax_loss", "hinge_loss")


def loss_code(name):
    """Return the integer code of loss ``name``, or raise ValueError listing the valid
    names."""
    try:
        return LOSS_CODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of "
                         f"{sorted(LOSS_CODES)}") from None
