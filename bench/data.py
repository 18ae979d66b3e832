"""Data, initial weights and the common loss every peer is checked with.

All peers get the very same arrays: the same rows, the same initial weights (copied into
each framework's own layout), and their loss after training is computed here, in one
NumPy function, so "did it train the same network" is answered the same way for all.
"""
import numpy as np

__all__ = ["digits", "classification", "synthetic_mnist", "tiled_rows", "init_params",
           "n_params", "mean_cross_entropy"]


def digits(dtype=np.float32):
    """The 8x8 digits (1797 x 64) scaled to [0, 1], labels int64, and where they came from.

    ``nnlib.datasets.load_digits`` when present, else scikit-learn's copy of the same file,
    else a synthetic stand-in of the same shape (said so in the results)."""
    try:
        from nnlib.datasets import load_digits
        X, y = load_digits()[:2]
        source = "nnlib.datasets.load_digits"
    except ImportError:
        try:
            from sklearn.datasets import load_digits as sk_load
            X, y = sk_load(return_X_y=True)
            source = "sklearn.datasets.load_digits"
        except ImportError:
            rng = np.random.default_rng(0)
            X = rng.integers(0, 17, size=(1797, 64)).astype(np.float64)
            y = rng.integers(0, 10, size=1797)
            source = "synthetic 1797x64 (no digits loader installed)"
    return np.ascontiguousarray(X / 16.0, dtype=dtype), np.asarray(y, dtype=np.int64), source


def classification(n_rows, n_features, n_classes, n_informative, seed=0):
    """Standardized float64 classification data, labels int64, and where they came from.

    scikit-learn's ``make_classification`` (two Gaussian clusters per class on the
    vertices of a hypercube in ``n_informative`` dimensions, two redundant combinations,
    the rest noise) when installed; else a NumPy stand-in built the same way (same shape
    and difficulty, not the same numbers -- said so in the results). Every column is then
    standardized (zero mean, unit variance, as ``StandardScaler``)."""
    try:
        from sklearn.datasets import make_classification
        X, y = make_classification(n_samples=n_rows, n_features=n_features,
                                   n_informative=n_informative, n_classes=n_classes,
                                   random_state=seed)
        source = "sklearn.datasets.make_classification"
    except ImportError:
        rng = np.random.default_rng(seed)
        n_clusters = 2 * n_classes
        vertices = rng.choice([-1.0, 1.0], size=(n_clusters, n_informative))
        cluster = rng.integers(0, n_clusters, size=n_rows)
        X = rng.standard_normal((n_rows, n_features))
        X[:, :n_informative] += vertices[cluster]                     # class signal
        X[:, n_informative:n_informative + 2] = \
            X[:, :n_informative] @ rng.uniform(-1, 1, (n_informative, 2))  # redundant
        X = X[:, rng.permutation(n_features)]
        y = cluster % n_classes
        source = "NumPy stand-in for make_classification (scikit-learn not installed)"
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.ascontiguousarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64), source


def synthetic_mnist(n_rows, dtype=np.float32, seed=0):
    """MNIST-shaped data: (n_rows, 784) in [0, 1) and labels from a random linear teacher
    (so the task is learnable and the loss goes down like on real data)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_rows, 784), dtype=np.float64)
    teacher = rng.standard_normal((784, 10))
    y = np.argmax((X - 0.5) @ teacher, axis=1).astype(np.int64)
    return np.ascontiguousarray(X, dtype=dtype), y


def tiled_rows(X, y, n_rows):
    """The first ``n_rows`` rows of X repeated as often as needed (for batch sizes up to
    4096 on a 1797-row data set)."""
    reps = -(-n_rows // len(X))
    return (np.ascontiguousarray(np.tile(X, (reps, 1))[:n_rows]),
            np.ascontiguousarray(np.tile(y, reps)[:n_rows]))


def init_params(sizes, dtype=np.float32, seed=0):
    """[(W, b), ...] with W (n_in, n_out): Glorot-uniform as scikit-learn's MLP (weights
    and biases both U(-a, a), a = sqrt(6 / (n_in + n_out)))."""
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        a = np.sqrt(6.0 / (n_in + n_out))
        out.append((rng.uniform(-a, a, (n_in, n_out)).astype(dtype),
                    rng.uniform(-a, a, n_out).astype(dtype)))
    return out


def n_params(sizes):
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))


def mean_cross_entropy(params, X, y, activation="relu"):
    """Mean softmax cross-entropy of the MLP ``params`` = [(W, b), ...] on (X, y), float64."""
    a = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(params):
        a = a @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
        if i < len(params) - 1:
            a = np.maximum(a, 0.0) if activation == "relu" else np.tanh(a)
    a = a - a.max(axis=1, keepdims=True)
    logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())
