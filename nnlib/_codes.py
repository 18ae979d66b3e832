"""Integer codes the compiled kernels use for activations, losses and optimizer rules.

This file is the one home of the codes: setup.py reads it (without importing nnlib) and
renders the Cython enums ``ActivationKind``, ``LossKind`` and ``OptimKind`` from it
(``nnlib/_kernels/codes.pxd.tp`` -> ``codes.pxd``), and the kernel templates generate one
loop per kind listed here. The compiled ``nnlib._kernels.codes`` reports the values it
was built with, so a build older than an edit here is caught by the tests. The module
is plain Python with no imports, so the build can run it before anything is compiled.
"""

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

# Kinds whose float32 kernels (activations.pyx) compute in float, at twice the vector
# width of double: each result is exact in float32 or one double product rounded once,
# so float arithmetic gives the bits of the double formulas (scalar.pxd's
# FLOAT32_NATIVE_FORMS, written once per kind there).
ACTIVATION_FLOAT32_NATIVE = ("identity", "relu", "leaky_relu", "sign")

# Kinds whose vjp is the zero map (sign: its derivative is 0 wherever it exists): the
# vjp loops write zeros and read neither x nor grad_out (nnlib.functional.sign_vjp).
ACTIVATION_ZERO_VJP = ("sign",)

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


# Loss codes (``LossKind`` in the kernels: LOSS_ + the name without its ``_loss`` suffix).
# Class-label losses read integer labels, the others float targets.
LOSS_CODES = {
    "softmax_cross_entropy": 0,
    "squared_error": 1,
    "logistic_loss": 2,
    "sparsemax_loss": 3,
    "hinge_loss": 4,
    "poisson_loss": 5,
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


# Optimizer rule codes (``OptimKind`` in the kernels: OPT_ + the upper-case name).
OPTIM_KINDS = {
    "sgd": 0,               # torch.optim.SGD
    "adagrad": 1,           # torch.optim.Adagrad
    "rmsprop": 2,           # torch.optim.RMSprop
    "adam": 3,              # torch.optim.Adam (amsgrad flag)
    "adamw": 4,             # torch.optim.AdamW
    "notes_momentum": 5,    # the notes: v <- (1-beta) v + beta g ; w <- w - lr v
    "notes_adagrad": 6,     # the notes' AdaGrad with its stabilizer under the root
    "sklearn_sgd": 7,       # scikit-learn's SGDOptimizer (v <- mu v - lr g; w += v)
    "sklearn_adam": 8,      # scikit-learn's AdamOptimizer (lr_t bias-corrected, eps not)
}

# The kernels' C enums rendered from the tables above (nnlib/_kernels/codes.pxd.tp):
# (enum type, constant prefix, name of the table here, the table).
# What one compiled epoch call (nnlib._kernels.train.run_epoch) reports. A step that
# meets a non-finite loss or gradient, or a label or row index outside its range (the
# caller changed the array while the loop ran), is not applied; with check_updates,
# nonfinite_update means the step after those counted was applied and made a weight or
# optimizer state non-finite.
EPOCH_STATUS = {
    "ok": 0,
    "nonfinite_loss": 1,
    "nonfinite_gradient": 2,
    "nonfinite_update": 3,
    "bad_label": 4,
    "bad_order": 5,
}

KERNEL_ENUMS = (
    ("ActivationKind", "ACT_", "ACTIVATION_CODES", ACTIVATION_CODES),
    ("LossKind", "LOSS_", "LOSS_CODES", LOSS_CODES),
    ("OptimKind", "OPT_", "OPTIM_KINDS", OPTIM_KINDS),
    ("EpochStatus", "STATUS_", "EPOCH_STATUS", EPOCH_STATUS),
)


def enum_constant(prefix, name):
    """The kernels' C name of code ``name``, e.g. ``enum_constant("ACT_", "relu")`` is
    ``"ACT_RELU"``; a loss drops its ``_loss`` suffix (``LOSS_HINGE``)."""
    if prefix == "LOSS_":
        name = name.removesuffix("_loss")
    return prefix + name.upper()
