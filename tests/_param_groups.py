"""Optimizers with parameter groups whose hyper-parameters differ, one per rule kind, as
the tests of fit / the compiled epoch with groups build them (tests/test_fit_param_groups.py,
tests/test_train_twin.py).

``GROUPED``: ``(id, make)`` with ``make(params) -> optimizer`` for the params of a
Sequential ``[W1, b1, W2, b2, ...]``, in three groups: the first layer's weights (a
lower lr, weight decay where the rule has it), the other layers' weights (weight
decay, and a flag or coefficient of their own), and the biases (no weight decay; for the
rules where it changes the state layout, no momentum: those arrays keep fewer state
slots). The groups list the arrays out of the model's order (biases last), so a test
also checks that each array meets its own group's config wherever it sits.
"""
from nnlib import optim as O

# (id, class name -- torch.optim's too for the first five --, the constructor's
# values, then the three groups' own values: first layer's W, other W, biases)
SPECS = [
    ("sgd", "SGD", dict(lr=0.1, momentum=0.9), dict(lr=0.05, weight_decay=0.01),
     dict(weight_decay=0.02, nesterov=True), dict(momentum=0.0)),
    ("sgd-plain", "SGD", dict(lr=0.1), dict(lr=0.05, weight_decay=0.01),
     dict(weight_decay=0.02), dict(lr=0.2)),
    # (torch's Adagrad fills every state with the constructor's
    # initial_accumulator_value, not the group's: nnlib takes the group's; a group's own
    # value is left out here so both agree)
    ("adagrad", "Adagrad", dict(lr=0.1, eps=1e-3, initial_accumulator_value=0.1),
     dict(lr=0.05, weight_decay=0.01), dict(lr_decay=0.01, weight_decay=0.02),
     dict(eps=1e-2)),
    ("rmsprop", "RMSprop", dict(lr=0.01, momentum=0.3, eps=1e-3),
     dict(lr=0.005, weight_decay=0.01, centered=True),
     dict(momentum=0.5, weight_decay=0.02), dict(alpha=0.9, momentum=0.0)),
    ("adam", "Adam", dict(lr=0.01, eps=1e-3), dict(lr=0.005, weight_decay=0.01),
     dict(amsgrad=True, weight_decay=0.02), dict(betas=(0.8, 0.99))),
    ("adamw", "AdamW", dict(lr=0.01, weight_decay=0.05, eps=1e-3), dict(lr=0.005),
     dict(amsgrad=True), dict(weight_decay=0.0)),
    ("notes-momentum", "NotesMomentum", dict(lr=0.1, beta=0.5), dict(lr=0.05),
     dict(beta=0.9), dict()),
    ("notes-adagrad", "NotesAdaGrad", dict(lr=0.1, eps=1e-3), dict(lr=0.05),
     dict(eps=1e-2), dict()),
    ("sklearn-sgd", "SklearnSGD", dict(lr=0.1, momentum=0.9), dict(lr=0.05),
     dict(nesterov=True), dict(momentum=0.5)),
    ("sklearn-adam", "SklearnAdam", dict(lr=0.01, epsilon=1e-3), dict(lr=0.005),
     dict(beta_1=0.8), dict(epsilon=1e-4)),
]
TORCH_CLASSES = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")


def groups(params, spec):
    """The three groups of ``spec`` over ``params`` (arrays, or torch tensors)."""
    first, second, biases = spec[3:]
    return [dict(params=list(params[:1]), **first),
            dict(params=list(params[2::2]), **second),
            dict(params=list(params[1::2]), **biases)]


def make(spec, params, module=O):
    """The optimizer of ``spec`` over ``params`` (``module``: nnlib.optim or torch.optim)."""
    return getattr(module, spec[1])(groups(params, spec), **spec[2])


GROUPED = [(spec[0], lambda p, spec=spec: make(spec, p)) for spec in SPECS]
