"""nnlib.ThresholdNetwork: the notes' hand-set XOR networks compute XOR; shapes and bad
input are checked."""
import numpy as np
import pytest

import nnlib
from nnlib.datasets import make_xor
from nnlib.threshold import ThresholdNetwork

XOR_NETS = ["lecture13", "ist-lecture5", "or-and", "relu"]


@pytest.mark.parametrize("which", XOR_NETS)
def test_xor_network_computes_xor_on_all_four_points(which):
    net = ThresholdNetwork.xor_from_notes(which)
    false, true = net.outputs
    X, y = make_xor(signed=net.inputs == (-1.0, 1.0))
    out = net.predict(X)
    np.testing.assert_array_equal(out, np.where(y == 1, true, false))
    assert out.shape == (4,) and net.source.startswith("seed 00")


@pytest.mark.parametrize("which", XOR_NETS)
def test_xor_network_matches_its_formula(which):
    """The stored weights are the lecture's formula, evaluated independently here."""
    net = ThresholdNetwork.xor_from_notes(which)
    X, _ = make_xor(signed=net.inputs == (-1.0, 1.0))
    x1, x2 = X[:, 0], X[:, 1]
    s, r = np.sign, lambda v: np.maximum(v, 0)
    expected = {
        "lecture13": s(s(x1 + x2 + 0.1) + s(-x1 - x2 + 0.1) - 1),
        "ist-lecture5": s(1 - s(1 - x1 + x2) + s(-1 - x1 + x2)),
        "or-and": s(s(x1 - x2 - 1.5) + s(-x1 + x2 - 1.5) + 1.5),
        "relu": r(x1 + x2) - 2 * r(x1 + x2 - 1),
    }[which]
    np.testing.assert_array_equal(net.predict(X), expected)


def test_hidden_layer_of_lecture13_is_or_and_nand():
    # h1 = sign(x1 + x2 + 0.1) is OR, h2 = sign(-x1 - x2 + 0.1) is NAND (on -1/+1).
    net = ThresholdNetwork.xor_from_notes("lecture13")
    X, _ = make_xor(signed=True)
    h = net.layer_outputs(X)[0]
    np.testing.assert_array_equal(h, [[-1, 1], [1, 1], [1, 1], [1, -1]])


def test_general_network_and_multi_output():
    W1, b1 = np.array([[1.0, 0.0, -1.0]]), np.array([0.0, 1.0, 0.5])
    net = ThresholdNetwork([W1], [b1], activations="identity")
    X = np.array([[2.0], [-1.0]])
    np.testing.assert_array_equal(net.predict(X), X @ W1 + b1)
    assert net.forward(X).shape == (2, 3) and net.n_features_in_ == 1


@pytest.mark.parametrize("args, exc, match", [
    (([np.ones((2, 2))], [np.ones(3)]), nnlib.ShapeError, "biases\\[0\\]"),
    (([np.ones((2, 2)), np.ones((3, 1))], [np.ones(2), np.ones(1)]), nnlib.ShapeError,
     "weights\\[1\\]"),
    # nested lists, as the docstring writes weights: the message reads the converted
    # arrays' shapes (it raised AttributeError: 'list' object has no attribute 'shape')
    (([[[1.0], [1.0]], [[1.0, 2.0], [3.0, 4.0]]], [[0.0], [0.0, 0.0]]), nnlib.ShapeError,
     "weights\\[1\\] takes 2 inputs but layer 0 gives 1"),
    (([np.ones((2, 2))], []), nnlib.ShapeError, "one bias"),
    (([np.ones(2)], [np.ones(2)]), nnlib.ShapeError, "weights\\[0\\]"),
    (([np.ones((2, 2))], [np.ones(2)], "step"), ValueError, "unknown activation"),
    (([np.ones((2, 2))], [np.ones(2)], ["sign", "sign"]), ValueError, "one activation"),
], ids=["bias-len", "chain", "chain-lists", "no-bias", "1d-weight", "bad-act", "n-acts"])
def test_bad_construction(args, exc, match):
    with pytest.raises(exc, match=match):
        ThresholdNetwork(*args)


def test_bad_input():
    net = ThresholdNetwork.xor_from_notes()
    with pytest.raises(nnlib.ShapeError, match="X has 3 features.*expecting 2"):
        net.predict(np.ones((4, 3)))
    with pytest.raises(nnlib.NonFiniteError, match="NaN.*row 1"):
        net.predict(np.array([[1.0, 1.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="unknown XOR network"):
        ThresholdNetwork.xor_from_notes("nope")


# the attributes are public lists: edits after construction that the constructor would
# refuse (session 37: a weight matrix of another width whose bias broadcast gave an
# output of another shape, an unknown name an AttributeError from nnlib.functional, a
# NaN written in place "X too large for the weights")
EDITS = {
    "bias-broadcasts": (lambda net: net.weights.__setitem__(0, np.ones((2, 1))),
                        r"biases\[0\] has 2 entries but weights\[0\] has 1 outputs"),
    "chain-broken": (lambda net: net.weights.__setitem__(1, np.ones((3, 1))),
                     r"weights\[1\] takes 3 inputs but layer 0 gives 2"),
    "unknown-activation": (lambda net: setattr(net, "activations", ("sign", "nope")),
                           r"unknown activation 'nope' \(activations\[1\]\)"),
    "nan-in-place": (lambda net: net.weights[1].__setitem__((0, 0), np.nan),
                     r"weights\[1\]"),
    "inf-bias-in-place": (lambda net: net.biases[0].__setitem__(1, np.inf),
                          r"biases\[0\]"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_attributes_edited_after_construction_are_checked_at_predict(edit):
    net = ThresholdNetwork.xor_from_notes()
    X, _ = make_xor(signed=True)
    change, message = EDITS[edit]
    change(net)
    with pytest.raises((ValueError, TypeError), match=message):
        net.predict(X)


@pytest.mark.parametrize("bad,message", [
    (dict(activations=None), "activations must be a str or a sequence of str"),
    (dict(activations=3), "activations must be a str or a sequence of str"),
    (dict(activations=[["sign"]]), r"unknown activation \['sign'\] \(activations\[0\]\)"),
    (dict(weights=None), "weights must be a sequence of 2-d arrays; got NoneType"),
    (dict(biases=None), "biases must be a sequence of 1-d arrays; got NoneType"),
], ids=["act-None", "act-int", "act-nested", "weights-None", "biases-None"])
def test_constructor_arguments_of_the_wrong_kind_are_named(bad, message):
    args = dict(weights=[[[1.0], [1.0]]], biases=[[-1.5]], activations="sign")
    args.update(bad)
    with pytest.raises((TypeError, ValueError), match=message):
        ThresholdNetwork(**args)
