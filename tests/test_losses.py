"""Compiled losses vs NumPy twins, finite differences, extremes, label validation."""
import warnings

import numpy as np
import pytest

import nnlib
import nnlib._reference as R
import nnlib.functional as F
from nnlib._codes import CLASS_LABEL_LOSSES, LOSS_CODES, loss_code
from nnlib._kernels import aligned
from tests.conftest import FD_TOL, TOL, central_diff, layouts_of

NAMES = list(LOSS_CODES)
MARGIN = {"hinge_loss": (0.7,)}          # a non-default margin, to exercise the argument


def _args(name):
    return MARGIN.get(name, ())


def _data(name, rng, n=6, c=4, dtype=np.float64, scale=2.0):
    """Scores and targets of the right kind for ``name``."""
    if name == "logistic_loss":
        return (rng.standard_normal(n) * scale).astype(dtype), rng.integers(0, 2, n)
    z = (rng.standard_normal((n, c)) * scale).astype(dtype)
    if name == "squared_error":
        return z, rng.standard_normal((n, c))
    if name == "poisson_loss":
        return z, rng.poisson(1.5, (n, c)).astype(float)
    return z, rng.integers(0, c, n)


def test_codes_match_the_compiled_enum():
    # the values the extensions were compiled with (a build older than _codes.py fails)
    from nnlib._kernels import codes
    assert codes.LOSS_CODES == LOSS_CODES
    assert loss_code("hinge_loss") == 4
    with pytest.raises(ValueError, match="unknown loss"):
        loss_code("l1")


# (loss, columns): logistic_loss has one score per sample; c = 40 uses sparsemax's heapsort.
REF_CASES = [(name, c) for name in NAMES for c in (1, 2, 5, 40)
             if name != "logistic_loss" or c == 1]


@pytest.mark.parametrize("name, c", REF_CASES, ids=[f"{n}-c{c}" for n, c in REF_CASES])
def test_matches_reference(name, c, dtype, rng):
    z, y = _data(name, rng, n=9, c=c, dtype=dtype)
    loss = getattr(F, name)(z, y, *_args(name))
    grad = getattr(F, name + "_grad")(z, y, *_args(name))
    assert isinstance(loss, float)
    assert grad.dtype == dtype and grad.shape == z.shape
    # The loss is accumulated in double from the dtype's inputs: compare in double.
    np.testing.assert_allclose(loss, getattr(R, name)(z, y, *_args(name)),
                               **TOL[np.float64])
    np.testing.assert_allclose(grad, getattr(R, name + "_grad")(z, y, *_args(name)),
                               **TOL[dtype])


def _away_from_kinks(name, z, y, margin, gap):
    """True when z is at least ``gap`` from every kink of the (piecewise) loss."""
    if name != "hinge_loss":
        return True
    rows = np.arange(len(y))
    others = np.where(np.eye(z.shape[1])[y] == 1, -np.inf, z)
    top2 = np.sort(others, axis=1)[:, -2:]
    h = margin + top2[:, 1] - z[rows, y]
    return (np.abs(h) > gap).all() and (top2[:, 1] - top2[:, 0] > gap).all()


@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_finite_differences(name, dtype, rng):
    h = 1e-3 if dtype == np.float64 else 2e-2
    while True:
        z, y = _data(name, rng, n=4, c=3)
        if _away_from_kinks(name, z, y, *(_args(name) or (1.0,)), gap=5 * h):
            break
    z = z.astype(dtype)
    fn = getattr(F, name)
    fd = central_diff(lambda v: fn(v.astype(dtype), y, *_args(name)), z, h=h)
    got = getattr(F, name + "_grad")(z, y, *_args(name))
    np.testing.assert_allclose(got, fd, **FD_TOL[dtype])


def test_sparsemax_loss_is_differentiable_across_support_changes(rng):
    # The sparsemax loss is C1 (its gradient sparsemax(z) - e_y is continuous), so the
    # difference quotient converges even at points where the support changes; there the
    # jump in the second derivative costs the 4-point formula O(h), not O(h^4).
    z = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, -0.5]])     # z_1 = 0 sits on a kink
    y = np.array([1, 2])
    fd = central_diff(lambda v: F.sparsemax_loss(v, y), z, h=1e-6)
    np.testing.assert_allclose(F.sparsemax_loss_grad(z, y), fd, atol=1e-6)


def test_gradients_are_the_closed_forms(rng):
    z, y = _data("softmax_cross_entropy", rng, n=7, c=5)
    onehot = np.eye(5)[y]
    np.testing.assert_allclose(F.softmax_cross_entropy_grad(z, y),
                               (F.softmax(z) - onehot) / 7, atol=1e-16)
    np.testing.assert_allclose(F.sparsemax_loss_grad(z, y),
                               (F.sparsemax(z) - onehot) / 7, atol=1e-16)
    np.testing.assert_allclose(F.softmax_cross_entropy(z, y),
                               -np.mean(F.log_softmax(z)[np.arange(7), y]), rtol=1e-14)


def test_sparsemax_loss_properties(rng):
    z, y = _data("sparsemax_loss", rng, n=200, c=6)
    per_row = [F.sparsemax_loss(z[i:i + 1], y[i:i + 1]) for i in range(200)]
    assert min(per_row) >= 0
    # Zero exactly when sparsemax(z) is the one-hot of y (margin >= 1 over the rest).
    assert F.sparsemax_loss(np.array([[3.0, 0.0, 2.0]]), [0]) == 0.0
    assert F.sparsemax_loss(np.array([[3.0, 0.0, 2.5]]), [0]) > 0.0
    # Two classes: L = (1 - t)^2 / 4 for |t| <= 1 (t = z_y - z_other), a smoothed hinge.
    t = np.linspace(-0.9, 0.9, 7)
    z2 = np.stack([t, np.zeros_like(t)], axis=1)
    per = [F.sparsemax_loss(z2[i:i + 1], [0]) for i in range(7)]
    np.testing.assert_allclose(per, (1 - t) ** 2 / 4, rtol=1e-12, atol=1e-15)


def test_hinge_conventions():
    z0 = np.zeros((2, 3))
    y = np.array([0, 2])
    assert F.hinge_loss(z0, y, margin=0.0) == 0.0
    # h = 0 counts as active: the perceptron (margin 0) learns from all-zero weights.
    np.testing.assert_array_equal(F.hinge_loss_grad(z0, y, margin=0.0),
                                  [[-0.5, 0.5, 0], [0.5, 0, -0.5]])
    assert F.hinge_loss(z0, y) == 1.0
    # Correct with a margin larger than requested: no loss, no gradient.
    z = np.array([[5.0, 1.0, 1.0]])
    assert F.hinge_loss(z, [0]) == 0.0 and not F.hinge_loss_grad(z, [0]).any()
    # Tied competitors: the first index is j*.
    np.testing.assert_array_equal(F.hinge_loss_grad(np.array([[0.0, 2.0, 2.0]]), [0]),
                                  [[-1, 1, 0]])
    # One column: no competing class.
    assert F.hinge_loss(np.ones((3, 1)), [0, 0, 0]) == 0.0
    assert not F.hinge_loss_grad(np.ones((3, 1)), [0, 0, 0]).any()
    # The perceptron criterion counts how far the best wrong class is ahead.
    assert F.hinge_loss(np.array([[1.0, 3.0]]), [0], margin=0.0) == 2.0


def test_named_extreme_values():
    big = np.array([[1e4, 0.0]])
    assert F.softmax_cross_entropy(big, [0]) == 0.0
    assert F.softmax_cross_entropy(big, [1]) == 1e4
    np.testing.assert_array_equal(F.softmax_cross_entropy_grad(big, [1]), [[1.0, -1.0]])
    assert F.logistic_loss(np.array([1e4]), [1]) == 0.0
    assert F.logistic_loss(np.array([-1e4]), [1]) == 1e4
    assert F.logistic_loss(np.array([40.0]), [1]) == pytest.approx(np.exp(-40), rel=1e-12)
    assert F.sparsemax_loss(big, [1]) == pytest.approx(1e4, rel=1e-15)
    assert F.hinge_loss(big, [1]) == 1e4 + 1


@pytest.mark.parametrize("name", NAMES)
def test_extremes_are_finite_and_warning_free(name, dtype, rng):
    big = 1e4 if dtype == np.float32 else 700.0
    vals = np.array([-1e4, -big, -50, 0, 50, big, 1e4])
    if name == "logistic_loss":
        z, y = np.repeat(vals, 2).astype(dtype), np.tile([0, 1], 7)
    elif name == "squared_error":
        z = np.stack([vals, vals[::-1]], axis=1).astype(dtype)
        y = np.zeros_like(z)
    elif name == "poisson_loss":
        # exp overflows past the dtype's log-max: the extremes are its own
        top = 88.0 if dtype == np.float32 else 709.0
        z = np.array([-1e4, -top, -50, 0, 50, top]).reshape(-1, 1).astype(dtype)
        y = np.array([0.0, 3.0, 1.0, 0.0, 2.0, 1e3]).reshape(-1, 1)
    else:
        z = np.stack([vals, vals[::-1], np.zeros(7)], axis=1).astype(dtype)
        y = np.arange(7) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = getattr(F, name)(z, y)
        grad = getattr(F, name + "_grad")(z, y)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, getattr(R, name)(z, y), rtol=1e-12)
    np.testing.assert_allclose(grad, getattr(R, name + "_grad")(z, y), **TOL[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_nan_scores_give_nan(name, rng):
    z, y = _data(name, rng)
    z[1] = np.nan
    assert np.isnan(getattr(F, name)(z, y))
    grad = getattr(F, name + "_grad")(z, y)
    assert np.isnan(grad[1]).all() and np.isfinite(np.delete(grad, 1, axis=0)).all()


@pytest.mark.parametrize("name", NAMES)
def test_readonly_and_noncontiguous_inputs(name, dtype, rng):
    z, y = _data(name, rng, n=12, c=6, dtype=dtype)
    want_loss, want_grad = getattr(R, name)(z, y), getattr(R, name + "_grad")(z, y)
    ro = z.copy()
    ro.flags.writeable = False
    y_ro = np.array(y)
    y_ro.flags.writeable = False
    wide = np.repeat(z, 2, axis=-1)[..., ::2] if z.ndim == 2 else np.repeat(z, 2)[::2]
    for zz in (ro, wide, np.asfortranarray(z)):
        assert not (zz is wide and zz.flags.c_contiguous)
        np.testing.assert_allclose(getattr(F, name)(zz, y_ro), want_loss, rtol=1e-12)
        np.testing.assert_allclose(getattr(F, name + "_grad")(zz, y_ro), want_grad,
                                   **TOL[dtype])
    g = getattr(F, name + "_grad")(ro, y_ro)
    assert g.flags.writeable and not np.shares_memory(g, ro)


@pytest.mark.parametrize("name", NAMES)
def test_one_and_two_threads_agree_bitwise(name, dtype, rng):
    z, y = _data(name, rng, n=20011, c=7, dtype=dtype)
    fn, grad = getattr(F, name), getattr(F, name + "_grad")
    assert fn(z, y, n_threads=1) == fn(z, y, n_threads=2)
    np.testing.assert_array_equal(grad(z, y, n_threads=1), grad(z, y, n_threads=2))


@pytest.mark.parametrize("name", NAMES)
def test_grad_never_aliases_input(name, rng):
    z, y = _data(name, rng)
    keep = z.copy()
    g = getattr(F, name + "_grad")(z, y)
    assert not np.shares_memory(g, z)
    np.testing.assert_array_equal(z, keep)


def test_mixed_and_integer_dtypes(rng):
    z = rng.standard_normal((5, 3)).astype(np.float32)
    t = rng.standard_normal((5, 3))                              # float64 targets
    g = F.squared_error_grad(z, t)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, F.squared_error_grad(z, t.astype(np.float32)))
    assert F.softmax_cross_entropy_grad(np.arange(6).reshape(2, 3), [0, 1]).dtype == np.float64
    y = np.array([0, 2, 1, 1, 0])
    for name in CLASS_LABEL_LOSSES:                   # integral floats and int32 are labels
        for yy in (y.astype(np.float32), y.astype(np.int32), y.astype(np.uint8)):
            assert getattr(F, name)(z, yy) == getattr(F, name)(z, y)
    zb = rng.standard_normal(4)
    for yy in ([0, 1, 1, 0], np.array([0.0, 1.0, 1.0, 0.0]), np.array([False, True, True, False])):
        assert F.logistic_loss(zb, yy) == F.logistic_loss(zb, [0, 1, 1, 0])
    assert F.logistic_loss_grad(zb[:, None], [0, 1, 1, 0]).shape == (4, 1)
    assert F.squared_error_grad(zb, np.zeros(4)).shape == (4,)
    # One output per sample: (n,) and (n, 1) targets are interchangeable.
    t = rng.standard_normal(4)
    for zz, tt in ((zb, t[:, None]), (zb[:, None], t)):
        assert F.squared_error(zz, tt) == F.squared_error(zb, t)
        assert F.squared_error_grad(zz, tt).shape == zz.shape
        np.testing.assert_allclose(F.squared_error_grad(zz, tt), R.squared_error_grad(zz, tt))


@pytest.mark.parametrize("name", CLASS_LABEL_LOSSES)
@pytest.mark.parametrize("y, words", [
    ([0, 1, 3], r"y\[2\] = 3 is not a class label in \[0, 3\)"),
    ([0, -1, 1], r"y\[1\] = -1 is not a class label"),
    ([0.0, 1.5, 1.0], r"y\[1\] = 1\.5 is not an integer class label"),
    ([0.0, 1.0, np.nan], r"y\[2\] = nan is not an integer class label"),
], ids=["too-big", "negative", "fraction", "nan"])
def test_bad_labels_raise_label_error(name, y, words):
    with pytest.raises(nnlib.LabelError, match=words):
        getattr(F, name)(np.zeros((3, 3)), y)
    with pytest.raises(nnlib.LabelError, match=words):
        getattr(F, name + "_grad")(np.zeros((3, 3)), y)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: F.softmax_cross_entropy(np.zeros((3, 2)), [0, 1]), nnlib.ShapeError,
     r"shape \(3,\)"),
    (lambda: F.softmax_cross_entropy(np.zeros((3, 2)), np.eye(2)[[0, 1, 1]]),
     nnlib.ShapeError, "one-hot"),
    (lambda: F.softmax_cross_entropy(np.zeros(3), [0, 1, 1]), nnlib.ShapeError, "2-d"),
    (lambda: F.sparsemax_loss(np.zeros((2, 2, 2)), [0, 1]), nnlib.ShapeError, "2-d"),
    (lambda: F.hinge_loss(np.zeros((0, 3)), []), nnlib.ShapeError, "at least one sample"),
    (lambda: F.softmax_cross_entropy(np.zeros((2, 2)), ["a", "b"]), nnlib.DTypeError,
     "numeric"),
    (lambda: F.softmax_cross_entropy(np.zeros((2, 2), complex), [0, 1]), nnlib.DTypeError,
     "complex"),
    (lambda: F.logistic_loss(np.zeros(3), [0, 2, 1]), nnlib.LabelError,
     r"y\[1\] = 2 is not a binary label"),
    (lambda: F.logistic_loss(np.zeros((3, 2)), [0, 1, 1]), nnlib.ShapeError,
     "one score per sample"),
    (lambda: F.logistic_loss(np.zeros(3), [0, 1]), nnlib.ShapeError, r"\(3,\) or \(3, 1\)"),
    (lambda: F.squared_error(np.zeros((3, 2)), np.zeros((2, 3))), nnlib.ShapeError,
     "shape of z"),
    (lambda: F.squared_error(np.zeros((3, 1)), np.zeros((1, 3))), nnlib.ShapeError,
     "shape of z"),
    (lambda: F.squared_error(np.zeros((2, 2)), [[0, np.nan], [0, 0]]), nnlib.NonFiniteError,
     "finite"),
    (lambda: F.hinge_loss(np.zeros((2, 2)), [0, 1], margin=-1.0), ValueError, "margin"),
    (lambda: F.hinge_loss(np.zeros((2, 2)), [0, 1], n_threads=0), ValueError, "n_threads"),
], ids=["label-length", "one-hot", "1d-scores", "3d-scores", "empty", "string-labels",
        "complex-scores", "logistic-label", "logistic-2-columns", "logistic-length",
        "squared-shape", "squared-row-target", "squared-nan-target", "negative-margin", "zero-threads"])
def test_bad_input_raises(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_logistic_keeps_tiny_losses_and_gradients():
    # Confident right answers: loss e^-40 and gradient -e^-40/(1+e^-40), not 0.
    z = np.array([40.0, -40.0])
    y = np.array([1, 0])
    want = np.exp(-40) / (1 + np.exp(-40))
    np.testing.assert_allclose(F.logistic_loss_grad(z, y), [-want / 2, want / 2], rtol=1e-14)
    assert F.logistic_loss(z, y) == pytest.approx(np.log1p(np.exp(-40)), rel=1e-14)


def test_kernel_accepts_soft_logistic_targets(rng):
    # The public API takes labels in {0, 1}; the kernel (used by the training loop) also
    # accepts soft targets in [0, 1] through the general (1-t) softplus(z) + t softplus(-z).
    from nnlib._kernels import losses as K
    z = rng.standard_normal((50, 1)) * 5
    t = rng.uniform(0, 1, 50)
    dz, chunk_sums = np.empty(50), np.empty(K.n_chunks(50))
    K.loss_grad(LOSS_CODES["logistic_loss"], z, t, np.empty(0, np.int64), 0.5, 0.0, dz,
                chunk_sums, np.empty((1, 1)), 1)
    x = z[:, 0]
    sp = np.logaddexp(0, x)
    np.testing.assert_allclose(chunk_sums.sum(), np.sum((1 - t) * sp + t * (sp - x)),
                               rtol=1e-12)
    np.testing.assert_allclose(dz, 0.5 * (1 / (1 + np.exp(-x)) - t), rtol=1e-12, atol=1e-16)


hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings                      # noqa: E402
from hypothesis import strategies as st                     # noqa: E402
from hypothesis.extra.numpy import arrays                   # noqa: E402


@st.composite
def _scores_and_labels(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 12))
    z = draw(arrays(np.float64, (n, c), elements=st.one_of(
        st.sampled_from([0.0, 1.0, -1.0]),
        st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False))))
    y = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return z, y


@settings(max_examples=150, deadline=None)
@given(data=_scores_and_labels(), margin=st.sampled_from([0.0, 1.0, 2.5]))
def test_class_losses_match_reference_and_are_nonnegative(data, margin):
    z, y = data
    for name, args in (("softmax_cross_entropy", ()), ("sparsemax_loss", ()),
                       ("hinge_loss", (margin,))):
        loss = getattr(F, name)(z, y, *args)
        assert loss >= 0
        # Absolute error relative to the scores' scale (the losses grow like |z|).
        scale = 1 + np.abs(z).max()
        np.testing.assert_allclose(loss, getattr(R, name)(z, y, *args), rtol=1e-12,
                                   atol=1e-13 * scale)
        np.testing.assert_allclose(getattr(F, name + "_grad")(z, y, *args),
                                   getattr(R, name + "_grad")(z, y, *args), atol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_grad_equals_the_separate_calls(name, dtype, rng):
    z, y = _data(name, rng, n=11, c=5, dtype=dtype)
    loss, grad = F.loss_and_grad(name, z, y, 0.3)
    args = (0.3,) if name == "hinge_loss" else ()
    assert loss == getattr(F, name)(z, y, *args)
    np.testing.assert_array_equal(grad, getattr(F, name + "_grad")(z, y, *args))
    ref_loss, ref_grad = R.loss_and_grad(name, z, y, 0.3)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])


def test_loss_and_grad_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        F.loss_and_grad("l1", np.zeros((2, 2)), [0, 1])


@pytest.mark.parametrize("n", [127, 128, 129, 1000])
@pytest.mark.parametrize("name", NAMES)
def test_batches_spanning_several_chunks_match_reference(name, n, rng):
    # The kernel sums the loss over fixed chunks of rows: check partial and full chunks.
    z, y = _data(name, rng, n=n, c=3)
    np.testing.assert_allclose(getattr(F, name)(z, y), getattr(R, name)(z, y), rtol=1e-12)
    np.testing.assert_allclose(getattr(F, name + "_grad")(z, y),
                               getattr(R, name + "_grad")(z, y), **TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 10, 64, 65])
def test_softmax_ce_rows_taken_together_equal_rows_one_at_a_time(dtype, c, rng):
    """loss_rows' softmax_cross_entropy_rows runs the exps of several short rows in one
    vectorized loop: the gradient and the loss sum must not change by a bit against
    rows passed one by one (c = 65 takes the row-by-row path)."""
    from nnlib._kernels import losses as K
    n = 53
    z = (rng.standard_normal((n, c)) * 6).astype(dtype)
    z[3, 1] = 90.0
    y = rng.integers(0, c, n)
    code = LOSS_CODES["softmax_cross_entropy"]
    dz, sums = np.empty(n * c, dtype), np.empty(K.n_chunks(n))
    K.loss_grad(code, z, np.empty(0, dtype), y, 0.25, 0.0, dz, sums, np.empty((1, c), dtype),
                1)
    total = 0.0
    for i in range(n):
        dzi, si = np.empty(c, dtype), np.empty(1)
        K.loss_grad(code, z[i:i + 1], np.empty(0, dtype), y[i:i + 1], 0.25, 0.0, dzi, si,
                    np.empty((1, c), dtype), 1)
        np.testing.assert_array_equal(dz[i * c:(i + 1) * c], dzi)
        total += si[0]
    assert K.n_chunks(n) == 1 and sums[0] == total      # one chunk: the same row order


# -- the caller's labels are read once, into an array the compiled loop owns ----------------

class _ChangesLabelsFirst:
    """Stands in for the compiled module: changes the caller's ``y`` (as another thread or
    a callback could, the GIL released) just before the real kernel runs."""

    def __init__(self, kernels, y, value):
        self._k, self._y, self._value = kernels, y, value

    def __getattr__(self, name):
        return getattr(self._k, name)

    def loss_grad(self, *args):
        self._y[:] = self._value
        return self._k.loss_grad(*args)


@pytest.mark.parametrize("name", sorted(CLASS_LABEL_LOSSES))
@pytest.mark.parametrize("value", [3, 10**12, -1], ids=["valid", "huge", "negative"])
def test_labels_changed_during_the_kernel_are_not_read(name, value, monkeypatch):
    from nnlib.functional import losses as mod
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((5, 4)), np.array([0, 1, 2, 1, 0], dtype=np.int64)
    expected = getattr(F, name + "_grad")(z, y.copy())
    monkeypatch.setattr(mod, "_k", _ChangesLabelsFirst(mod._k, y, value))
    got = getattr(F, name + "_grad")(z, y)
    assert y[0] == value                           # the caller's buffer did change
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [">f8", ">f4", "<f8", "<f4"])
@pytest.mark.parametrize("name", NAMES)
def test_non_native_byte_order_scores_keep_their_values(name, dtype):
    rng = np.random.default_rng(1)
    z, y = _data(name, rng)
    z = z * 1e30 if np.dtype(dtype).itemsize == 8 else z     # beyond float32 for f8
    native = z.astype(np.dtype(dtype).newbyteorder("="))
    loss, grad = F.loss_and_grad(name, z.astype(dtype), y)
    ref_loss, ref_grad = F.loss_and_grad(name, native, y)
    assert grad.dtype == native.dtype and grad.dtype.isnative
    assert loss == ref_loss
    np.testing.assert_array_equal(grad, ref_grad)


# --- Poisson: t phi(z - log t) near the fit, against mpmath --------------------------------

def _poisson_exact(z, t):
    """Per output: e^z - t z + t log t - t (0 log 0 = 0), to 80 digits, as mpf."""
    import mpmath
    with mpmath.workdps(80):
        out = []
        for zj, tj in zip(np.ravel(z).tolist(), np.ravel(t).tolist()):
            zj, tj = mpmath.mpf(zj), mpmath.mpf(tj)
            out.append(mpmath.exp(zj) - tj * zj + (tj * mpmath.log(tj) - tj if tj > 0 else 0))
        return out


def _poisson_sweep():
    """(z, t): targets over counts and rates of every size (subnormal t too), each with
    z = log t + d for d from 1e-9 to 30 of both signs, both sides of NN_POISSON_NEAR."""
    from nnlib._paths import path_value
    near = path_value("NN_POISSON_NEAR")
    ts = [1.0, 2.0, 3.0, 7.0, 20.0, 1e5, 0.37, 1e-3, 1e-200, 1e200, 5e-324, 3e-310]
    ds = np.concatenate([np.geomspace(1e-9, 30.0, 40),
                         near * np.array([1 - 1e-9, 1 + 1e-9, 1 - 1e-3, 1 + 1e-3])])
    ds = np.concatenate([ds, -ds])
    z = np.array([np.log(t) + d for t in ts for d in ds])
    t = np.repeat(ts, len(ds))
    keep = z < 709.0                          # e^z finite
    return z[keep], t[keep]


def test_poisson_loss_is_accurate_near_and_far_from_the_fit():
    # One output per call, so each value is one element's loss. The error allowed is a
    # few ulp of the loss plus what an error of an ulp of log1p(f) in d = z - log t
    # moves it by (t |e^d - 1| eps): the four-term sum e^z - t z + t log t - t was off by
    # up to 5e9 times that here (4e19 ulp; t = 1, z = 0.0015: 9e5 ulp), where its terms
    # cancel; measured now: 0.91.
    # (A subnormal loss may be a few subnormal steps off: its roundings are absolute.)
    z, t = _poisson_sweep()
    got = np.array([F.poisson_loss(np.array([[a]]), np.array([[b]]), n_threads=1)
                    for a, b in zip(z, t)])
    exact = _poisson_exact(z, t)
    eps = np.finfo(np.float64).eps
    d = z - np.log(t)
    worst = 0.0
    for g, e, tj, dj in zip(got, exact, t, d):
        err = float(abs(g - e))               # 0 where both underflow (t = 5e-324)
        allow = eps * (float(e) + tj * abs(np.expm1(dj)) * 2.0) + 4 * 5e-324  # subnormal
        worst = max(worst, err / allow if err else 0.0)
    assert worst <= 4.0, worst
    assert (got >= 0).all()                   # each element's loss is >= 0


def test_poisson_zero_targets_and_extremes():
    z = np.array([[0.5, -3.0, 2.0, -800.0]])
    # 0 log 0 = 0: t = 0 costs e^z alone, what the NumPy twin sums (to its rounding)
    assert F.poisson_loss(z, np.zeros_like(z)) == pytest.approx(
        R.poisson_loss(z, np.zeros_like(z)), rel=1e-15)
    # far from the fit in either direction the loss is e^z or t (log t - z - 1)
    big = F.poisson_loss(np.array([[-1e300]]), np.array([[3.0]]))
    assert big == 3e300
    assert F.poisson_loss(np.array([[700.0]]), np.array([[1e-300]])) == pytest.approx(
        np.exp(700.0), rel=1e-15)
    # t = 1: e^z - 1 - z exactly as mpmath, even where it is z^2 / 2 ~ 1e-20
    for v in (1e-10, -1e-10, 1e-3, 0.3):
        assert F.poisson_loss(np.array([[v]]), np.array([[1.0]])) == pytest.approx(
            float(_poisson_exact([v], [1.0])[0]), rel=4e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poisson_grad_alone_is_the_fused_gradient(dtype, rng):
    # the gradient-only call skips log t (grad_batch) but writes the same bits
    z = (rng.standard_normal((300, 7)) * 2).astype(dtype)
    t = rng.poisson(2.0, z.shape).astype(dtype)
    loss, grad = F.loss_and_grad("poisson_loss", z, t)
    np.testing.assert_array_equal(F.poisson_loss_grad(z, t), grad)
    np.testing.assert_array_equal(F.poisson_loss_grad(z, t, n_threads=2), grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poisson_beyond_exps_cap_is_inf_not_a_fused_finite_value(dtype):
    # nn_exp caps z at 710; a fused e^z - t never rounds its product, so it gave e^710 - t
    # (1e308, z = 712: a loss of -1.57e308, a gradient of 1.2e308 at z = 800)
    z = np.array([[712.0, 800.0, 711.5, 720.0]], dtype)
    t = np.array([[1e308, 1e308, 5e307, 0.0]])
    t = np.minimum(t, np.finfo(dtype).max).astype(dtype)   # float32: its largest finite
    assert F.poisson_loss(z, t) == np.inf
    np.testing.assert_array_equal(F.poisson_loss_grad(z, t), np.full(z.shape, np.inf))
    loss, grad = F.loss_and_grad("poisson_loss", z, t)
    assert loss == np.inf
    np.testing.assert_array_equal(grad, np.full(z.shape, np.inf))
    if dtype == np.float64:
        # below the cap the fused difference is e^z - t itself: finite and right
        g = F.poisson_loss_grad(np.array([[709.9]]), np.array([[1e308]]))
        assert g[0, 0] == pytest.approx(np.exp(np.longdouble(709.9)) - 1e308, rel=1e-12)
        near = F.poisson_loss(np.array([[709.9]]), np.array([[1e308]]))
        assert 0 < near < np.inf


@pytest.mark.parametrize("name", NAMES)
def test_arrays_the_kernel_cannot_read_as_is_are_converted_first(name, dtype, rng):
    # z and float targets go to the kernel as they are only when aligned.flat_float says
    # so; the rest take a copy. The result is bitwise that of the contiguous call.
    z, y = _data(name, rng, n=7, c=5, dtype=dtype)
    y = np.asarray(y, dtype=dtype) if name in ("squared_error", "poisson_loss") else y
    loss, grad = F.loss_and_grad(name, z, y, 0.3)
    for zz in layouts_of(z):
        assert not aligned.flat_float(zz)
        got = F.loss_and_grad(name, zz, y, 0.3)
        assert got[0] == loss
        np.testing.assert_array_equal(got[1], grad, strict=True)
    for yy in layouts_of(np.asarray(y)):
        got = F.loss_and_grad(name, z, yy, 0.3)
        assert got[0] == loss
        np.testing.assert_array_equal(got[1], grad, strict=True)


@pytest.mark.parametrize("name", CLASS_LABEL_LOSSES)
def test_labels_of_any_integer_layout_give_the_same_loss(name, rng):
    # aligned native (n,) ndarrays take aligned.class_labels_copy; the rest np.asarray and
    # the general checks: every one is copied before the kernel reads it
    z, y = _data(name, rng, n=9, c=4)
    want = F.loss_and_grad(name, z, y)
    for yy in (y.tolist(), y.astype(np.int32), y.astype(np.uint8), y.astype(">i8"),
               y.astype(np.longlong), np.stack([y, y], 1)[:, 0], y.astype(float)):
        got = F.loss_and_grad(name, z, yy)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1], strict=True)
    copy = aligned.class_labels_copy(y, 9, 4)
    assert copy is not y and copy.flags.owndata and copy.flags.c_contiguous
    np.testing.assert_array_equal(copy, y, strict=True)
    assert aligned.class_labels_copy(y, 8, 4) is None
    assert aligned.class_labels_copy(y.astype(">i8"), 9, 4) is None
    with pytest.raises(nnlib.LabelError, match=r"y\[8\] = 4 is not a class label"):
        F.loss_and_grad(name, z, np.r_[y[:8], 4])


# rows -> chunks of 128: 1, 7, 8, 9, 16, 128, 129, 256, 257, 301, 1000 (each side of
# np.sum's 8 accumulators and its blocks of 128)
@pytest.mark.parametrize("n", [1, 127, 7 * 128, 8 * 128, 8 * 128 + 5, 16 * 128, 128 * 128,
                               129 * 128, 256 * 128, 257 * 128, 300 * 128 + 1,
                               1000 * 128])
def test_the_kernels_total_is_np_sum_of_the_chunk_sums(n, rng):
    """loss_grad returns the chunk sums added in NumPy's pairwise order: under 8 chunks,
    up to 128, and split above (the mean loss kept bitwise what np.sum gave)."""
    from nnlib._kernels import losses as K
    z = rng.standard_normal((n, 1)) * 10.0 ** rng.integers(-3, 4, (n, 1))
    t = rng.standard_normal(n)
    sums = np.empty(K.n_chunks(n))
    total = K.loss_grad(LOSS_CODES["squared_error"], z, t, None, 1.0 / n, 0.0, None, sums,
                        None, 1)
    assert type(total) is float
    assert np.float64(total).tobytes() == np.float64(0.0 + np.sum(sums)).tobytes()
    assert F.squared_error(z, t[:, None]) == float(np.sum(sums) / n)


def test_loss_grad_refuses_buffers_that_share_the_labels_memory():
    # the labels are checked, then read by the loop: a buffer it writes must not hold them
    from nnlib._kernels import losses as K
    buf = np.zeros(2000)
    y = buf.view(np.int64)[:1000]
    hinge = LOSS_CODES["hinge_loss"]
    with pytest.raises(ValueError, match="dz shares memory with y_label"):
        K.loss_grad(hinge, np.zeros((1000, 2)), None, y, 1e-3, 1.0, buf, np.empty(8), None, 1)
    sums = np.zeros(8)                  # 8 labels of 0, and the chunk sum's slot
    with pytest.raises(ValueError, match="chunk_loss shares memory with y_label"):
        K.loss_grad(hinge, np.zeros((8, 2)), None, sums.view(np.int64), 1.0 / 8, 1.0, None,
                    sums[:K.n_chunks(8)], None, 1)
    work = np.zeros((1, 16))
    with pytest.raises(ValueError, match="work shares memory with y_label"):
        K.loss_grad(LOSS_CODES["sparsemax_loss"], np.zeros((8, 2)), None,
                    work.view(np.int64)[0, :8], 1.0 / 8, 1.0, np.empty((8, 2)), np.empty(1),
                    work, 1)
    # apart, the same call runs
    K.loss_grad(hinge, np.zeros((8, 2)), None, np.zeros(8, np.int64), 1.0 / 8, 1.0,
                np.empty((8, 2)), np.empty(1), None, 1)


# -- the elementwise losses run many rows per blocked loop, bitwise as one row at a time -----

# n rows of c outputs: one row, a few, around a VEC_BLOCK (256) and a LOSS_CHUNK (128 rows),
# several blocks per chunk (c = 3, 5: rows straddle the blocks' edges) and several chunks
BLOCK_SHAPES = [(1, 1), (7, 1), (128, 1), (300, 1), (1, 5), (85, 3), (86, 3), (200, 3),
                (51, 5), (52, 5), (260, 5), (129, 2)]


def _elementwise_case(name, n, c, dtype, rng):
    """Scores and targets with the special values spread over the batch: signed zeros,
    +-inf, NaN, huge and tiny scores; logistic targets 0, 1, -0.0 and soft or odd ones
    (the kernel takes any, as the epoch may pass them), Poisson counts with 0 and -0.0."""
    z = rng.standard_normal(n * c) * 10.0 ** rng.integers(-2, 2, n * c)
    t = rng.integers(0, 2, n * c).astype(float) if name == "logistic_loss" else \
        rng.poisson(2.0, n * c).astype(float) * 10.0 ** rng.integers(-1, 2, n * c)
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 40.0, -40.0, 700.0, -745.0, 1e-30]
    at = rng.choice(n * c, min(n * c, 2 * len(specials)), replace=False)
    z[at[:len(specials)]] = specials[:len(at[:len(specials)])]
    odd = [0.3, -0.0, 2.5, -1.0, np.nan, np.inf] if name == "logistic_loss" else \
        [0.0, -0.0, 1e30, 1e-30, 0.5, 7.0]
    t[at[len(specials):]] = (odd * 2)[:len(at[len(specials):])]
    return z.astype(dtype).reshape(n, c), t.astype(dtype)


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint8)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c", BLOCK_SHAPES, ids=[f"n{n}-c{c}" for n, c in BLOCK_SHAPES])
@pytest.mark.parametrize("name", ["logistic_loss", "poisson_loss"])
def test_elementwise_losses_in_blocks_equal_rows_one_at_a_time(name, n, c, dtype,
                                                               weighted, rng):
    """loss_rows' logistic_rows and poisson_rows take all n*c outputs of a chunk (or of a
    training batch) through one blocked loop, weighted or not. Against the kernel called
    on each output alone: every gradient element the same bits (fused, gradient alone,
    for any row and block position), and each chunk's sum the same bits as the order the
    rows define: the logistic loss adds its outputs in index order across rows, Poisson
    each row's sum (from 0) in row order, and with weights both add w_i times the row's
    sum in row order (the weights are powers of 2 and 0, so w_i times a sum is exact and
    a fused multiply-add in the kernel gives the same bits)."""
    from nnlib._kernels import losses as K
    code, scale, chunk = LOSS_CODES[name], 0.37, 128
    z, t = _elementwise_case(name, n, c, dtype, rng)
    w = (2.0 ** rng.integers(-3, 4, n) * (rng.random(n) > 0.1)).astype(dtype) \
        if weighted else None
    sums, dz = np.full(K.n_chunks(n), -7.0), np.empty(n * c, dtype)
    with np.errstate(all="ignore"):
        K.loss_grad(code, z, t, None, scale, 0.0, dz, sums, None, 1, w)
        alone_sums, alone_dz = np.empty(K.n_chunks(n)), np.empty(n * c, dtype)
        K.loss_grad(code, z, t, None, scale, 0.0, None, alone_sums, None, 1, w)
        K.loss_grad(code, z, t, None, scale, 0.0, alone_dz, np.empty(0), None, 1, w)
        # each output alone: its loss (0 + L, the same bits but for -0.0, which no sum
        # below can tell from 0.0) and its gradient
        loss = np.empty(n * c)
        one_dz = np.empty(n * c, dtype)
        for k in range(n * c):
            s1 = np.empty(1)
            K.loss_grad(code, z.reshape(-1)[k:k + 1].reshape(1, 1), t[k:k + 1], None, scale,
                        0.0, one_dz[k:k + 1], s1, None, 1,
                        None if w is None else w[k // c:k // c + 1])
            K.loss_grad(code, z.reshape(-1)[k:k + 1].reshape(1, 1), t[k:k + 1], None, scale,
                        0.0, None, s1, None, 1)
            loss[k] = s1[0]
    np.testing.assert_array_equal(_bits(dz), _bits(one_dz))
    np.testing.assert_array_equal(_bits(alone_dz), _bits(dz))
    np.testing.assert_array_equal(_bits(alone_sums), _bits(sums))
    want = []
    for k0 in range(0, n, chunk):
        total = 0.0
        for i in range(k0, min(n, k0 + chunk)):
            row = 0.0 if (weighted or name == "poisson_loss") else total
            for j in range(c):
                row += float(loss[i * c + j])
            total = (total + float(w[i]) * row if weighted else
                     total + row if name == "poisson_loss" else row)
        want.append(total)
    # (a NaN's sign and payload follow the operand order of x86's add and fma, which
    # Python's sums need not copy)
    want = np.array(want)
    np.testing.assert_array_equal(np.isnan(sums), np.isnan(want))
    np.testing.assert_array_equal(_bits(sums[~np.isnan(sums)]), _bits(want[~np.isnan(want)]))
