"""Shared test helpers: dtype tolerances, seeded data, 4th-order finite differences."""
import numpy as np
import pytest

DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["f64", "f32"]

# rtol/atol for comparisons against the float64 reference and against finite differences.
TOL = {
    np.float64: dict(rtol=1e-12, atol=1e-14),
    np.float32: dict(rtol=2e-6, atol=1e-7),
}
FD_TOL = {
    np.float64: dict(rtol=1e-7, atol=1e-9),
    np.float32: dict(rtol=2e-2, atol=2e-3),
}


@pytest.fixture(params=DTYPES, ids=DTYPE_IDS)
def dtype(request):
    return request.param


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt for the test's duration, as in an interactive
    Python. A process started in the background by a non-interactive shell inherits
    SIGINT ignored, and Python then installs no handler: a test that sends itself SIGINT
    would wait for an interrupt that never comes."""
    import signal
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def central_diff_in_place(f, p, h=None):
    """``central_diff`` of ``f()`` (no arguments) with respect to the array ``p``, which
    ``f`` reads in place (a model's live parameter): each probe is written into ``p``,
    and ``p`` is restored after."""
    saved = p.copy()

    def at(v):
        p[...] = v
        return f()
    try:
        return central_diff(at, p, h)
    finally:
        p[...] = saved


def central_diff(f, x, h=None):
    """Gradient of scalar ``f`` at ``x`` (any shape) by the 4th-order central difference
    (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h, evaluated in float64."""
    x = np.array(x, dtype=np.float64)
    h = 1e-3 if h is None else h
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        vals = []
        for step in (2, 1, -1, -2):
            flat[i] = orig + step * h
            vals.append(float(f(x)))
        flat[i] = orig
        gflat[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return grad


def unaligned_copy(a):
    """A copy of ``a`` whose data starts one byte past an aligned address (a view at an
    odd offset of a buffer): the compiled entry points refuse it, the wrappers copy it."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = buf[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def layouts_of(a):
    """``a`` in the layouts the compiled kernels do not read as they are (aligned.
    flat_float is False): at an odd address, Fortran-ordered (for ndim >= 2),
    byte-swapped, and a strided view; each holds ``a``'s values."""
    out = [unaligned_copy(a), a.astype(a.dtype.newbyteorder(">")),
           np.stack([a, a], axis=-1)[..., 0]]
    if a.ndim >= 2:
        out.append(np.asfortranarray(a))
    return out
