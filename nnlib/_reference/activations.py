"""NumPy twins of nnlib.functional.activations: the readable statement of the math and
the tests' oracle. Same names and signatures as the compiled versions; ``n_threads`` is
accepted and ignored. Computed in float64 and cast back to the input's dtype. Given
``output`` (y = act(x)), a vjp takes the derivative from y, as the compiled one does."""
import numpy as np

from nnlib._codes import ACTIVATION_CODES

__all__ = [n for name in ACTIVATION_CODES for n in (name, name + "_vjp")]


def _f(x):
    x = np.asarray(x)
    dt = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    return x.astype(np.float64), dt


def _y(output, dt):
    """The forward's output in float64, after the cast to x's dtype the compiled one does."""
    return np.asarray(output).astype(dt).astype(np.float64)


def _sigmoid64(x):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def identity(x, *, n_threads=None):
    x, dt = _f(x)
    return x.astype(dt)


def identity_vjp(x, grad_out, *, output=None, n_threads=None):
    x, dt = _f(x)
    return (np.ones_like(x) * grad_out).astype(dt)


def sigmoid(x, *, n_threads=None):
    x, dt = _f(x)
    return _sigmoid64(x).astype(dt)


def sigmoid_vjp(x, grad_out, *, output=None, n_threads=None):
    x, dt = _f(x)
    s = _sigmoid64(x) if output is None else _y(output, dt)
    return (s * (1 - s) * grad_out).astype(dt)


def tanh(x, *, n_threads=None):
    x, dt = _f(x)
    return np.tanh(x).astype(dt)


def tanh_vjp(x, grad_out, *, output=None, n_threads=None):
    x, dt = _f(x)
    t = np.tanh(x) if output is None else _y(output, dt)
    # (1 - t)(1 + t): the factor that is small near |t| = 1 is exact (1 - t*t would cancel)
    return ((1 - t) * (1 + t) * grad_out).astype(dt)


def relu(x, *, n_threads=None):
    x, dt = _f(x)
    return np.where(x > 0, x, np.where(x <= 0, 0.0, x)).astype(dt)


def relu_vjp(x, grad_out, *, output=None, n_threads=None):
    x, dt = _f(x)
    if output is not None:                  # y > 0, y <= 0, NaN as x (slope >= 0)
        x = _y(output, dt)
    # NaN in, NaN out, as the kernel (x <= 0 is False for NaN); found by tests/test_fuzz.py
    return (np.where(x > 0, 1.0, np.where(x <= 0, 0.0, x)) * grad_out).astype(dt)


def leaky_relu(x, slope=0.01, *, n_threads=None):
    x, dt = _f(x)
    return np.where(x > 0, x, slope * x).astype(dt)


def leaky_relu_vjp(x, grad_out, slope=0.01, *, output=None, n_threads=None):
    x, dt = _f(x)
    if output is not None:                  # y > 0, y <= 0, NaN as x (slope >= 0)
        if slope < 0:
            raise ValueError(f"leaky_relu_vjp: output= needs slope >= 0 (got {slope!r}): "
                             "with a negative slope the output's sign does not tell x > 0 "
                             "from x < 0")
        x = _y(output, dt)
    return (np.where(x > 0, 1.0, np.where(x <= 0, slope, x)) * grad_out).astype(dt)


def softplus(x, *, n_threads=None):
    x, dt = _f(x)
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(dt)


def softplus_vjp(x, grad_out, *, output=None, n_threads=None):
    x, dt = _f(x)
    if output is not None:                  # e^y = 1 + e^x: sigma(x) = 1 - e^-y
        return (-np.expm1(-_y(output, dt)) * grad_out).astype(dt)
    return (_sigmoid64(x) * grad_out).astype(dt)


def elu(x, alpha=1.0, *, n_threads=None):
    x, dt = _f(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(dt)


def elu_vjp(x, grad_out, alpha=1.0, *, output=None, n_threads=None):
    x, dt = _f(x)
    if output is not None:                  # alpha e^x = y + alpha where x <= 0
        y = _y(output, dt)
        return (np.where(y > 0, 1.0, y + alpha) * grad_out).astype(dt)
    return (np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))) * grad_out).astype(dt)


def sign(x, *, n_threads=None):
    x, dt = _f(x)
    # x * 0 where x is neither > 0 nor < 0, as the kernel: -0 stays -0 and a NaN comes back
    # quieted with its sign and payload (np.sign gives +0 for -0 and passes a NaN untouched)
    with np.errstate(invalid="ignore"):
        return np.where(x > 0, 1.0, np.where(x < 0, -1.0, x * 0.0)).astype(dt)


def sign_vjp(x, grad_out, *, output=None, n_threads=None):
    x, dt = _f(x)
    return np.zeros(x.shape, dt)              # the zero map: x and grad_out are not read
