"""XOR and the 2-d data sets of the TensorFlow Playground (playground.tensorflow.org,
cited in the notes, seed 002), generated with a seed.

The four Playground generators follow its ``dataset.ts``: points live in the square
[-6, 6]^2, two classes of (nearly) equal size, and ``noise`` is the Playground's slider
value (0 = clean, 0.5 = the slider's maximum "50"; larger values are allowed). Labels are
0/1 (the Playground's -1/+1 mapped to 0/1; label 1 is the Playground's "+1" class).

Every function returns ``(X, y)``: X float64 of shape (n_samples, 2), y int64 of shape
(n_samples,). ``random_state`` is None, an int seed or a ``numpy.random.Generator``.
"""
from typing import Tuple

import numpy as np

from nnlib._random import as_generator
from nnlib._typing import FloatArray, IntArray, SeedLike
from nnlib._validation import check_int_scalar, check_real_scalar

__all__ = ["make_xor", "make_circle", "make_gaussians", "make_playground_xor",
           "make_spiral"]


def _check(n_samples, noise, min_samples=2):
    n = check_int_scalar(n_samples, "n_samples", low=min_samples)
    return n, check_real_scalar(noise, "noise", low=0.0)


def _halves(n):
    """Sizes of the two classes: n // 2 and the rest."""
    return n // 2, n - n // 2


def _finish(parts_X, parts_y, rng):
    X = np.concatenate(parts_X).astype(np.float64, copy=False)
    y = np.concatenate(parts_y).astype(np.int64, copy=False)
    order = rng.permutation(X.shape[0])
    return np.ascontiguousarray(X[order]), np.ascontiguousarray(y[order])


def make_xor(n_samples: int = 4, *, noise: float = 0.0, signed: bool = False,
             random_state: SeedLike = None) -> Tuple[FloatArray, IntArray]:
    """The XOR truth table: the corners of the unit square labelled x1 XOR x2.

    Row i is corner i mod 4 in truth-table order (0,0), (0,1), (1,0), (1,1), plus
    Gaussian noise of standard deviation ``noise``; with the defaults this is exactly the
    four points of the notes' XOR problem (seeds 000-003), in order and unshuffled.

    Parameters
    ----------
    n_samples : int >= 1
    noise : float >= 0
        Standard deviation of the Gaussian jitter added to X.
    signed : bool
        If True the inputs are -1/+1 instead of 0/1 (the encoding of the notes' threshold
        networks, which use sign units); labels stay 0/1.
    random_state : None, int or numpy.random.Generator
        Only used when ``noise > 0`` (checked always).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        1 where exactly one input is "on", else 0.

    Examples
    --------
    >>> X, y = make_xor()
    >>> X
    array([[0., 0.],
           [0., 1.],
           [1., 0.],
           [1., 1.]])
    >>> y
    array([0, 1, 1, 0])
    >>> make_xor(signed=True)[0][1]
    array([-1.,  1.])
    """
    n, noise = _check(n_samples, noise, min_samples=1)
    # checked even when unused: a bad seed is a mistake with or without noise
    rng = as_generator(random_state)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    idx = np.arange(n) % 4
    X = corners[idx]
    y = (corners[idx, 0] != corners[idx, 1]).astype(np.int64)
    if signed:
        X = 2.0 * X - 1.0
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return np.ascontiguousarray(X), y


def make_circle(n_samples: int = 200, *, noise: float = 0.0,
                random_state: SeedLike = None) -> Tuple[FloatArray, IntArray]:
    """A disc of class 1 inside a ring of class 0 (Playground "Circle").

    Class 1: radius uniform in [0, 2.5]; class 0: radius uniform in [3.5, 5]; angle
    uniform. Noise shifts each coordinate by uniform(-5, 5) * noise, and the label is then
    recomputed from the noisy point (inside radius 2.5 -> 1), as the Playground does.

    Parameters
    ----------
    n_samples : int >= 2, default 200
        Points, split into two classes of n // 2 and the rest.
    noise : float >= 0, default 0
        The Playground's noise slider (0.5 is its maximum, "50").
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        0/1 labels.

    Examples
    --------
    >>> X, y = make_circle(100, noise=0.1, random_state=0)
    >>> X.shape, y.shape
    ((100, 2), (100,))
    >>> bool(np.array_equal(y, np.hypot(X[:, 0], X[:, 1]) < 2.5))
    True
    """
    n, noise = _check(n_samples, noise)
    rng = as_generator(random_state)
    radius = 5.0
    parts_X, parts_y = [], []
    for count, (r_lo, r_hi) in zip(_halves(n), ((0.0, radius * 0.5), (radius * 0.7, radius))):
        r = rng.uniform(r_lo, r_hi, count)
        angle = rng.uniform(0.0, 2 * np.pi, count)
        pts = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
        pts += rng.uniform(-radius, radius, pts.shape) * noise
        parts_X.append(pts)
        parts_y.append((np.hypot(pts[:, 0], pts[:, 1]) < radius * 0.5).astype(np.int64))
    return _finish(parts_X, parts_y, rng)


def make_gaussians(n_samples: int = 200, *, noise: float = 0.0,
                   random_state: SeedLike = None) -> Tuple[FloatArray, IntArray]:
    """Two Gaussian blobs, class 1 around (2, 2) and class 0 around (-2, -2)
    (Playground "Gaussian").

    The variance of each blob grows linearly with noise, from 0.5 at noise 0 to 4 at
    noise 0.5 (the Playground's ``varianceScale``); labels are the blob each point was
    drawn from, so at high noise the classes overlap.

    Parameters
    ----------
    n_samples : int >= 2, default 200
        Points, split into two classes of n // 2 and the rest.
    noise : float >= 0, default 0
        The Playground's noise slider (0.5 is its maximum, "50").
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        0/1 labels.

    Examples
    --------
    >>> X, y = make_gaussians(100, random_state=0)
    >>> np.bincount(y)
    array([50, 50])
    >>> bool(X[y == 1].mean() > 1 and X[y == 0].mean() < -1)
    True
    """
    n, noise = _check(n_samples, noise)
    rng = as_generator(random_state)
    variance = 0.5 + 7.0 * noise
    parts_X, parts_y = [], []
    for count, (centre, label) in zip(_halves(n), ((2.0, 1), (-2.0, 0))):
        parts_X.append(rng.normal(centre, np.sqrt(variance), (count, 2)))
        parts_y.append(np.full(count, label, dtype=np.int64))
    return _finish(parts_X, parts_y, rng)


def make_playground_xor(n_samples: int = 200, *, noise: float = 0.0,
                        random_state: SeedLike = None) -> Tuple[FloatArray, IntArray]:
    """The four-quadrant XOR of the Playground: label 1 where x1 * x2 >= 0.

    Coordinates uniform in [-5, 5], pushed 0.3 away from the axes; noise shifts each
    coordinate by uniform(-5, 5) * noise before labelling, so noisy points near the axes
    can land in the other quadrant with its label (as the Playground does).

    Parameters
    ----------
    n_samples : int >= 2, default 200
        Points, split into two classes of n // 2 and the rest.
    noise : float >= 0, default 0
        The Playground's noise slider (0.5 is its maximum, "50").
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        0/1 labels.

    Examples
    --------
    >>> X, y = make_playground_xor(100, random_state=0)
    >>> bool(np.array_equal(y, X[:, 0] * X[:, 1] >= 0))
    True
    >>> float(np.abs(X).min()) >= 0.3          # pushed away from the axes
    True
    """
    n, noise = _check(n_samples, noise)
    rng = as_generator(random_state)
    pts = rng.uniform(-5.0, 5.0, (n, 2))
    pts += np.where(pts > 0, 0.3, -0.3)
    pts += rng.uniform(-5.0, 5.0, pts.shape) * noise
    y = (pts[:, 0] * pts[:, 1] >= 0).astype(np.int64)
    return np.ascontiguousarray(pts), y


def make_spiral(n_samples: int = 200, *, noise: float = 0.0,
                random_state: SeedLike = None) -> Tuple[FloatArray, IntArray]:
    """Two interleaved spiral arms (Playground "Spiral"), one per class.

    Point i of an arm of m points has radius r = 5 i / m and angle
    t = 1.75 * 2 pi i / m (+ pi for class 0); noise shifts each coordinate by
    uniform(-1, 1) * noise. The hardest of the four for a small network.

    Parameters
    ----------
    n_samples : int >= 2, default 200
        Points, split into two classes of n // 2 and the rest.
    noise : float >= 0, default 0
        The Playground's noise slider (0.5 is its maximum, "50").
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        0/1 labels.

    Examples
    --------
    >>> X, y = make_spiral(100, random_state=0)
    >>> X.shape, np.bincount(y)
    ((100, 2), array([50, 50]))
    >>> bool(np.hypot(X[:, 0], X[:, 1]).max() <= 5.0)      # radius 5 i / m, no noise
    True
    """
    n, noise = _check(n_samples, noise)
    rng = as_generator(random_state)
    parts_X, parts_y = [], []
    for count, (delta, label) in zip(_halves(n), ((0.0, 1), (np.pi, 0))):
        frac = np.arange(count) / count
        r = 5.0 * frac
        t = 1.75 * frac * 2 * np.pi + delta
        pts = np.column_stack([r * np.sin(t), r * np.cos(t)])
        pts += rng.uniform(-1.0, 1.0, pts.shape) * noise
        parts_X.append(pts)
        parts_y.append(np.full(count, label, dtype=np.int64))
    return _finish(parts_X, parts_y, rng)
