"""Networks with given, hand-set weights: the notes' threshold (sign-unit) networks.

A ``ThresholdNetwork`` computes ``H_0 = X``, ``H_l = g_l(H_{l-1} W_l + b_l)`` with the
weights ``W_l`` of shape (n_in, n_out) and the activations of nnlib.functional (``sign``
by default: McCulloch-Pitts threshold units). Nothing is learned: sign has zero
derivative wherever it has one, which is why the notes replace it by tanh or sigmoid to
train (seed 001, "sign(x) ~ tanh(x)"). ``xor_from_notes`` builds the XOR networks the
lectures write down, with their weights copied exactly.
"""
from collections.abc import Iterable
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from nnlib import functional as F
from nnlib._codes import ACTIVATION_CODES
from nnlib._inputs import check_output_finite, check_X
from nnlib._typing import ArrayLike, FloatArray
from nnlib._validation import ShapeError, as_float_array, check_finite

__all__ = ["ThresholdNetwork"]

# The XOR constructions of the lecture notes (/work/shared/seeds), weights verbatim.
# Each: (W_1, b_1, W_2, b_2), activations, input encoding, what "true" is, citation.
_XOR_NETWORKS: Dict[str, Dict[str, Any]] = {
    "lecture13": dict(
        layers=[([[1.0, -1.0], [1.0, -1.0]], [0.1, 0.1]),
                ([[1.0], [1.0]], [-1.0])],
        activations=("sign", "sign"), inputs=(-1.0, 1.0), outputs=(-1.0, 1.0),
        formula="sign(sign(x1 + x2 + 0.1) + sign(-x1 - x2 + 0.1) - 1)",
        source="seed 000: Haghtalab & Joachims, Machine Learning for Intelligent Systems, "
               "Lecture 13 'Deep Neural Networks', slide 'Power of Neural Networks: "
               "represent XOR with 1 hidden layer'"),
    "ist-lecture5": dict(
        layers=[([[-1.0, -1.0], [1.0, 1.0]], [1.0, -1.0]),
                ([[-1.0], [1.0]], [1.0])],
        activations=("sign", "sign"), inputs=(-1.0, 1.0), outputs=(-1.0, 1.0),
        formula="y = sgn(1 - z1 + z2), z1 = sgn(1 - x1 + x2), z2 = sgn(-1 - x1 + x2)",
        source="seed 002: Martins, Melo & Figueiredo, Deep Learning course (Fall 2021), "
               "Lecture 5 'Neural Networks I', slide 'Solving XOR with Multi-Layer "
               "Perceptron' (Figure 3.11, Example 3.6)"),
    "or-and": dict(
        layers=[([[1.0, -1.0], [-1.0, 1.0]], [-1.5, -1.5]),
                ([[1.0], [1.0]], [1.5])],
        activations=("sign", "sign"), inputs=(-1.0, 1.0), outputs=(-1.0, 1.0),
        formula="f = OR(AND(x1, -x2), AND(-x1, x2)) with OR(a, b) = sign(a + b + 1.5), "
                "AND(a, b) = sign(a + b - 1.5)",
        source="seed 001: lecture on deep neural networks (slides adapted from "
               "Abu-Mostafa & Magdon-Ismail, Learning From Data), slides 'Perceptrons "
               "for OR and AND' and 'Representing f using OR and AND' (f = h1 h2' + "
               "h1' h2 with h1 = x1, h2 = x2)"),
    "relu": dict(
        layers=[([[1.0, 1.0], [1.0, 1.0]], [0.0, -1.0]),
                ([[1.0], [-2.0]], [0.0])],
        activations=("relu", "identity"), inputs=(0.0, 1.0), outputs=(0.0, 1.0),
        formula="f = relu(x1 + x2) - 2 relu(x1 + x2 - 1)  (W = [[0, -1], [1, 1], "
                "[1, 1]] bias row first, w = (0, 1, -2))",
        source="seed 003: lecture 'Neural Networks' (basis functions learned with "
               "ReLU), slides 'The Xor Problem' / 'A Solution'"),
}


def _checked_layers(weights, biases, activations, copy):
    """``(weights, biases, activations)`` as float64 arrays (copies if ``copy``) and a
    tuple of names, after checking what the constructor documents: finite, 2-d weights
    and 1-d biases whose shapes chain, one known activation per layer. Raises
    ShapeError, NonFiniteError, DTypeError, TypeError or ValueError naming the item."""
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Iterable):
        raise TypeError(f"weights must be a sequence of 2-d arrays; got "
                        f"{type(weights).__name__}")
    if isinstance(biases, (str, bytes)) or not isinstance(biases, Iterable):
        raise TypeError(f"biases must be a sequence of 1-d arrays; got "
                        f"{type(biases).__name__}")
    Ws = [as_float_array(W, f"weights[{i}]", dtype=np.float64, ndim=2)
          for i, W in enumerate(weights)]
    bs = [as_float_array(b, f"biases[{i}]", dtype=np.float64, ndim=1)
          for i, b in enumerate(biases)]
    if copy:
        Ws, bs = [W.copy() for W in Ws], [b.copy() for b in bs]
    # NaN/inf weights would make every prediction NaN without a word: a hand-set
    # network must have finite weights.
    for i, (W, b) in enumerate(zip(Ws, bs)):
        check_finite(W, f"weights[{i}]")
        check_finite(b, f"biases[{i}]")
    if not Ws or len(Ws) != len(bs):
        raise ShapeError(f"need one bias vector per weight matrix and at least one "
                         f"layer; got {len(Ws)} weights and {len(bs)} biases")
    for i, (W, b) in enumerate(zip(Ws, bs)):
        if b.shape[0] != W.shape[1]:
            raise ShapeError(f"biases[{i}] has {b.shape[0]} entries but weights[{i}] "
                             f"has {W.shape[1]} outputs (shape {W.shape})")
        if i and W.shape[0] != Ws[i - 1].shape[1]:
            raise ShapeError(f"weights[{i}] takes {W.shape[0]} inputs but layer "
                             f"{i - 1} gives {Ws[i - 1].shape[1]}")
    if isinstance(activations, str):
        activations = [activations] * len(Ws)
    if not isinstance(activations, Iterable):
        raise TypeError(f"activations must be a str or a sequence of str; got "
                        f"{type(activations).__name__}")
    activations = tuple(activations)
    if len(activations) != len(Ws):
        raise ValueError(f"need one activation per layer ({len(Ws)}); got "
                         f"{len(activations)}")
    for i, a in enumerate(activations):
        if not isinstance(a, str) or a not in ACTIVATION_CODES:
            raise ValueError(f"unknown activation {a!r} (activations[{i}]); expected one "
                             f"of {sorted(ACTIVATION_CODES)}")
    return Ws, bs, activations


class ThresholdNetwork:
    """A feed-forward network with fixed weights (threshold units by default).

    Parameters
    ----------
    weights : sequence of array_like, each of shape (n_in, n_out)
        Consecutive shapes must chain (n_out of one layer = n_in of the next). Finite
        (NaN or +-inf raise NonFiniteError).
    biases : sequence of array_like, each of shape (n_out,), finite
    activations : str or sequence of str
        One activation of nnlib.functional for every layer (or one for all); default
        ``"sign"`` (``sign(0) = 0``, as in nnlib.functional.sign).

    Attributes
    ----------
    weights, biases : lists of float64 arrays (copies)
    activations : tuple of str
    inputs, outputs : (false, true) encodings, set by ``xor_from_notes`` (else None)
    formula, source : str, set by ``xor_from_notes`` (else None)

    Examples
    --------
    >>> net = ThresholdNetwork([[[1.0], [1.0]]], [[-1.5]])      # AND of +-1 inputs
    >>> net
    ThresholdNetwork(2-1, activations=('sign',))
    >>> net.predict([[-1, -1], [-1, 1], [1, -1], [1, 1]])
    array([-1., -1., -1.,  1.])
    >>> from nnlib.datasets import make_xor
    >>> X, y = make_xor(signed=True)
    >>> ThresholdNetwork.xor_from_notes().predict(X)           # +1 for "x1 XOR x2"
    array([-1.,  1.,  1., -1.])
    """

    def __init__(self, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike],
                 activations: Union[str, Sequence[str]] = "sign") -> None:
        Ws, bs, activations = _checked_layers(weights, biases, activations, copy=True)
        self.weights, self.biases, self.activations = Ws, bs, activations
        self.inputs: Optional[Any] = None
        self.outputs: Optional[Any] = None
        self.formula: Optional[str] = None
        self.source: Optional[str] = None

    @classmethod
    def xor_from_notes(cls, which: str = "lecture13") -> "ThresholdNetwork":
        """One of the notes' hand-built XOR networks (2 inputs, 2 hidden units, 1 output).

        Parameters
        ----------
        which : {"lecture13", "ist-lecture5", "or-and", "relu"}
            "lecture13" (default): seed 000, Haghtalab & Joachims, Lecture 13 "Deep
            Neural Networks": ``sign(sign(x1 + x2 + 0.1) + sign(-x1 - x2 + 0.1) - 1)``.
            "ist-lecture5": seed 002, Martins, Melo & Figueiredo, Lecture 5 "Neural
            Networks I": ``sgn(1 - z1 + z2)``, ``z1 = sgn(1 - x1 + x2)``,
            ``z2 = sgn(-1 - x1 + x2)``.
            "or-and": seed 001's OR and AND perceptrons, ``OR(AND(x1, -x2),
            AND(-x1, x2))`` with ``OR = sign(a + b + 1.5)``, ``AND = sign(a + b - 1.5)``.
            "relu": seed 003's ReLU solution, ``relu(x1 + x2) - 2 relu(x1 + x2 - 1)``.

            The sign networks take inputs in {-1, +1} and answer +1 for "x1 XOR x2";
            the ReLU one takes {0, 1} and answers 1 (see ``inputs`` / ``outputs``;
            ``nnlib.datasets.make_xor(signed=True)`` gives the -1/+1 inputs).

        Examples
        --------
        >>> net = ThresholdNetwork.xor_from_notes("relu")
        >>> net, net.inputs, net.outputs
        (ThresholdNetwork(2-2-1, activations=('relu', 'identity')), (0.0, 1.0), (0.0, 1.0))
        >>> net.predict([[0, 0], [0, 1], [1, 0], [1, 1]])
        array([0., 1., 1., 0.])
        """
        try:
            spec = _XOR_NETWORKS[which]
        except (KeyError, TypeError):
            raise ValueError(f"unknown XOR network {which!r}; expected one of "
                             f"{sorted(_XOR_NETWORKS)}") from None
        net = cls([W for W, _ in spec["layers"]], [b for _, b in spec["layers"]],
                  spec["activations"])
        net.inputs, net.outputs = spec["inputs"], spec["outputs"]
        net.formula, net.source = spec["formula"], spec["source"]
        return net

    @property
    def n_features_in_(self) -> int:
        """Inputs the network takes (rows of the first weight matrix), scikit-learn's
        name.

        Examples
        --------
        >>> net = ThresholdNetwork([[[1.0, -1.0], [1.0, 1.0], [0.0, 1.0]]], [[0.0, 0.5]])
        >>> net.n_features_in_, net.predict([[1.0, 0.0, -2.0]])
        (3, array([[ 1., -1.]]))
        """
        return self.weights[0].shape[0]

    def layer_outputs(self, X: ArrayLike) -> List[FloatArray]:
        """``[H_1, ..., H_L]``: every layer's output for X (n_samples, n_features_in_).

        Raises NonFiniteError if a layer's output overflows to NaN or inf (X too large
        for the weights) rather than return it.

        Parameters
        ----------
        X : array_like (n_samples, n_features_in_)

        Returns
        -------
        list of ndarray
            One (n_samples, n_out) array per layer, float64.

        Examples
        --------
        >>> hidden, out = ThresholdNetwork.xor_from_notes("relu").layer_outputs([[1, 1]])
        >>> hidden, out                          # relu(x1 + x2), relu(x1 + x2 - 1)
        (array([[2., 1.]]), array([[0.]]))
        """
        # the attributes are public lists: checked again (a few shape tests per layer),
        # so one replaced by an array of another shape, a bias that would broadcast,
        # or an unknown activation name is named rather than computed with
        Ws, bs, acts = _checked_layers(self.weights, self.biases, self.activations,
                                       copy=False)
        H = check_X(X, owner="ThresholdNetwork", n_features=Ws[0].shape[0],
                    dtype=np.float64)
        outs = []
        for W, b, act in zip(Ws, bs, acts):
            # (sign(inf) = 1 is the right answer for a huge positive signal; an inf that
            # the activation keeps, or a NaN from inf - inf, is refused)
            H = check_output_finite(getattr(F, act)(H @ W + b), owner="ThresholdNetwork")
            outs.append(H)
        return outs

    def forward(self, X: ArrayLike) -> FloatArray:
        """The network's output, shape (n_samples, n_out of the last layer).

        Parameters
        ----------
        X : array_like (n_samples, n_features_in_)

        Returns
        -------
        ndarray (n_samples, n_out)

        Examples
        --------
        >>> ThresholdNetwork.xor_from_notes("relu").forward([[0, 1], [1, 1]])
        array([[1.],
               [0.]])
        """
        return self.layer_outputs(X)[-1]

    def predict(self, X: ArrayLike) -> FloatArray:
        """The output, raveled to (n_samples,) when the last layer has one unit.

        Parameters
        ----------
        X : array_like (n_samples, n_features_in_)

        Returns
        -------
        ndarray (n_samples,) or (n_samples, n_out)

        Examples
        --------
        >>> ThresholdNetwork.xor_from_notes().predict([[-1, 1], [1, 1]])    # sign units
        array([ 1., -1.])
        """
        out = self.forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    __call__ = predict

    def __repr__(self) -> str:
        sizes = [self.weights[0].shape[0]] + [W.shape[1] for W in self.weights]
        return (f"ThresholdNetwork({'-'.join(map(str, sizes))}, "
                f"activations={self.activations})")
