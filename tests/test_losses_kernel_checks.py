"""nnlib._kernels.losses.loss_grad reads and writes through raw pointers: every length it
relies on, and every class label it indexes a row by, is checked before its loop, so a
wrong call from Python is a ValueError naming the problem (the functional wrappers never
make one; these call the kernel directly)."""
import re

import numpy as np
import pytest

from nnlib._codes import LOSS_CODES
from nnlib._kernels import losses as K
from tests.conftest import unaligned_copy

LABEL_LOSSES = ("softmax_cross_entropy", "sparsemax_loss", "hinge_loss")


def _args(name, n=5, c=3, dtype=np.float64, threads=1):
    label = name in LABEL_LOSSES
    z = np.zeros((n, c), dtype)
    return dict(kind=LOSS_CODES[name], z=z,
                y_target=np.empty(0, dtype) if label else np.ones(n * c, dtype),
                y_label=np.zeros(n, np.int64) if label else np.empty(0, np.int64),
                scale=1.0 / n, margin=1.0, dz=np.empty(n * c, dtype),
                chunk_loss=np.empty(K.n_chunks(n)), work=np.empty((threads, c), dtype),
                n_threads=threads, weight=None)


def _call(a):
    K.loss_grad(a["kind"], a["z"], a["y_target"], a["y_label"], a["scale"], a["margin"],
                a["dz"], a["chunk_loss"], a["work"], a["n_threads"], a["weight"])


@pytest.mark.parametrize("name", sorted(LOSS_CODES))
def test_well_formed_calls_run(name):
    _call(_args(name))
    a = _args(name)
    a["dz"] = np.empty(0)               # loss only
    _call(a)
    a = _args(name)
    a["chunk_loss"] = np.empty(0)       # gradient only
    _call(a)


BAD = {
    "y_target": lambda a: np.ones(a["z"].size - 1),
    "y_label": lambda a: np.zeros(len(a["z"]) - 1, np.int64),
    "dz": lambda a: np.empty(a["z"].size + 1),
    "chunk_loss": lambda a: np.empty(K.n_chunks(len(a["z"])) + 1),
    "work": lambda a: np.empty((1, a["z"].shape[1] - 1)),
}


# the unused one of y_target / y_label is not read: not checked either
WRONG = [(name, field) for name in sorted(LOSS_CODES) for field in sorted(BAD)
         if field != ("y_target" if name in LABEL_LOSSES else "y_label")]


@pytest.mark.parametrize("name, field", WRONG)
def test_a_wrong_length_is_a_value_error(name, field):
    a = _args(name)
    a[field] = BAD[field](a)
    with pytest.raises(ValueError, match=f"loss_grad: {field}"):
        _call(a)


def test_too_few_work_rows_for_the_threads_and_bad_codes():
    a = _args("sparsemax_loss", n=2000, threads=2)
    a["work"] = np.empty((1, 3))
    with pytest.raises(ValueError, match=r"work has shape \(1, 3\); need at least \(2, 3\)"):
        _call(a)
    a = _args("squared_error")
    a["n_threads"] = 0
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        _call(a)
    a = _args("squared_error")
    a["kind"] = max(LOSS_CODES.values()) + 1
    with pytest.raises(ValueError, match="unknown loss code"):
        _call(a)


@pytest.mark.parametrize("name", LABEL_LOSSES)
@pytest.mark.parametrize("label", [-1, 3, 2 ** 40, -(2 ** 62)])
def test_a_label_outside_the_row_is_a_value_error(name, label):
    a = _args(name, n=700, c=3)
    a["y_label"][-1] = label
    with pytest.raises(ValueError, match=f"label {label} of row 699 is outside"):
        _call(a)


def test_unused_buffers_may_be_none_and_the_total_is_returned():
    a = _args("softmax_cross_entropy")
    a.update(y_target=None, dz=None, work=None)
    a["z"][:] = np.arange(15.0).reshape(5, 3) % 4
    a["y_label"][:] = [0, 1, 2, 0, 1]
    total = K.loss_grad(a["kind"], a["z"], None, a["y_label"], a["scale"], a["margin"],
                        None, a["chunk_loss"], None, 1)
    assert total == np.sum(a["chunk_loss"]) and total > 0
    a = _args("squared_error")
    assert K.loss_grad(a["kind"], a["z"], a["y_target"], None, a["scale"], a["margin"],
                       a["dz"], np.empty(0), None, 1) is None      # gradient only
    a = _args("sparsemax_loss")
    a["work"] = None                                  # sparsemax sorts into work
    with pytest.raises(ValueError, match=r"work has shape \(0, 0\); need at least"):
        _call(a)


# field -> (a buffer the kernel refuses, the error and its message)
BAD_BUFFERS = {
    "z": [(lambda a: a["z"].astype(np.float32), TypeError, "y_target must have the dtype"),
          (lambda a: np.zeros((5, 6))[:, ::2], TypeError, "z must be a C-contiguous"),
          (lambda a: unaligned_copy(a["z"]), TypeError, "z must be a C-contiguous"),
          (lambda a: a["z"].astype(">f8"), TypeError, "z must be a C-contiguous"),
          (lambda a: a["z"].ravel(), ValueError, "z must be 2-d")],
    "y_target": [(lambda a: np.ones(15, np.float32), TypeError, "y_target must have"),
                 (lambda a: np.ones(30)[::2], TypeError, "y_target must be a C-contig")],
    "y_label": [(lambda a: np.zeros(5, np.int32), TypeError, "y_label must be a C-contig"),
                (lambda a: np.zeros(5, ">i8"), TypeError, "y_label must be a C-contig"),
                (lambda a: np.zeros(5), TypeError, "y_label must be a C-contig")],
    "dz": [(lambda a: np.empty(15, np.float32), TypeError, "dz must have the dtype"),
           (lambda a: _readonly(15), ValueError, "dz is read-only")],
    "chunk_loss": [(lambda a: np.empty(1, np.float32), TypeError,
                    "chunk_loss must have the dtype")],
    "work": [(lambda a: np.empty((1, 3), np.float32), TypeError, "work must have the dtype"),
             (lambda a: np.empty(3), ValueError, "work must be 2-d")],
}


def _readonly(n):
    out = np.empty(n)
    out.setflags(write=False)
    return out


@pytest.mark.parametrize("field, case", [(f, i) for f in BAD_BUFFERS
                                         for i in range(len(BAD_BUFFERS[f]))])
def test_buffers_of_another_dtype_layout_or_writeability_are_refused(field, case):
    make, error, message = BAD_BUFFERS[field][case]
    name = "squared_error" if field == "y_target" else "softmax_cross_entropy"
    a = _args(name)
    a[field] = make(a)
    with pytest.raises(error, match=f"loss_grad: {message}"):
        _call(a)


# field -> (an array of the right size in a shape the kernel does not document, message)
BAD_SHAPES = {
    "y_label": (lambda a: a["y_label"].reshape(-1, 1), r"y_label must have shape \(5,\)"),
    "y_target": (lambda a: a["y_target"].reshape(a["z"].shape[::-1]),
                 r"y_target must have shape \(5, 3\) or \(15,\); got shape \(3, 5\)"),
    "dz": (lambda a: a["dz"].reshape(-1, 1),
           r"dz must have shape \(5, 3\) or \(15,\); got shape \(15, 1\)"),
}


@pytest.mark.parametrize("field", sorted(BAD_SHAPES))
def test_arrays_of_the_right_size_in_another_shape_are_refused(field):
    # the loops read them flat, but only the shapes the docstring names are accepted:
    # (n,) labels, (n, c) or (n * c,) targets and gradient
    make, message = BAD_SHAPES[field]
    a = _args("softmax_cross_entropy" if field == "y_label" else "squared_error")
    a[field] = make(a)
    with pytest.raises(ValueError, match=f"loss_grad: {message}"):
        _call(a)


@pytest.mark.parametrize("name", ["squared_error", "logistic_loss", "hinge_loss"])
@pytest.mark.parametrize("shape", [(4,), (6,), (5, 1), (1, 5), (15,)])
def test_per_row_weights_of_another_shape_are_refused(name, shape):
    # one weight per row, (n,): the loop reads weight[i] for row i
    a = _args(name)
    a["weight"] = np.ones(shape)
    with pytest.raises(ValueError, match=rf"loss_grad: weight must have shape \(5,\), one "
                                         rf"weight per row; got shape {re.escape(str(shape))}"):
        _call(a)
    a["weight"] = np.ones(5)
    _call(a)


@pytest.mark.parametrize("name", ["squared_error", "hinge_loss"])
def test_the_documented_shapes_run(name):
    a = _args(name)
    a["dz"] = a["dz"].reshape(a["z"].shape)                    # (n, c)
    if name == "squared_error":
        a["y_target"] = a["y_target"].reshape(a["z"].shape)
    _call(a)
    a = _args(name, c=1)                                       # one column: (n,) is flat
    a["dz"] = a["dz"].reshape(-1)
    _call(a)


@pytest.mark.parametrize("name", sorted(LOSS_CODES))
@pytest.mark.parametrize("n", [1, 700, K.STACK_ROWS])
def test_no_chunk_loss_buffer_gives_the_same_total_and_gradient(name, n):
    # chunk_loss None: the kernel sums its chunks on its stack, up to STACK_ROWS rows
    a = _args(name, n=n)
    a["z"][:] = np.random.default_rng(n).standard_normal(a["z"].shape)
    total = K.loss_grad(a["kind"], a["z"], a["y_target"], a["y_label"], a["scale"],
                        a["margin"], a["dz"], a["chunk_loss"], a["work"], 1)
    dz = np.empty_like(a["dz"])
    alone = K.loss_grad(a["kind"], a["z"], a["y_target"], a["y_label"], a["scale"],
                        a["margin"], dz, None, a["work"], 1)
    assert np.float64(alone).tobytes() == np.float64(total).tobytes()
    np.testing.assert_array_equal(dz, a["dz"])


def test_no_chunk_loss_buffer_past_the_stack_rows_is_a_value_error():
    a = _args("squared_error", n=K.STACK_ROWS + 1, c=1)
    a["chunk_loss"] = None
    with pytest.raises(ValueError, match=r"loss_grad: chunk_loss is None for \d+ rows; the "
                                         r"kernel holds the sums of \d+ rows at most"):
        _call(a)
    a["dz"], a["chunk_loss"] = np.empty(0), np.empty(0)
    with pytest.raises(ValueError, match="chunk_loss and dz are both empty"):
        _call(a)
