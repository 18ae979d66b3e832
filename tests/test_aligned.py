"""nnlib._aligned: the parameters nnlib allocates start on a cache line (the kernels'
speed would otherwise depend on where NumPy's allocator put them)."""
import warnings

import numpy as np
import pytest

import nnlib
from nnlib._aligned import CACHE_LINE, aligned_copy, aligned_zeros
from nnlib.layers import INITIALIZERS, as_generator


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [1, 7, (1, 1), (3, 5), (64, 100), (), np.int64(4),
                                   np.array(5), [2, 3], np.array([2, 3])])
def test_aligned_zeros_and_copy(shape, dtype):
    for _ in range(8):               # several allocations: not one lucky address
        z = aligned_zeros(shape, dtype)
        assert z.ctypes.data % CACHE_LINE == 0
        assert z.shape == np.empty(shape).shape and z.dtype == dtype
        assert z.flags.c_contiguous and z.flags.writeable and not z.any()
    a = np.random.default_rng(0).standard_normal(np.empty(shape).shape)
    c = aligned_copy(a, dtype)
    assert c.ctypes.data % CACHE_LINE == 0
    np.testing.assert_array_equal(c, a.astype(dtype), strict=True)


def test_empty_shapes_are_empty_arrays():
    z = aligned_zeros((0, 4), np.float32)           # no data, so no address to align
    assert z.shape == (0, 4) and z.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("init", sorted(INITIALIZERS))
def test_dense_parameters_are_aligned_and_unchanged(init, dtype):
    for n_in, n_out in [(64, 100), (100, 10), (3, 1), (1, 17)]:
        layer = nnlib.Dense(n_in, n_out, "relu", init=init, dtype=dtype, random_state=5)
        assert layer.W.ctypes.data % CACHE_LINE == 0
        assert layer.b.ctypes.data % CACHE_LINE == 0
        want = INITIALIZERS[init](as_generator(5), n_in, n_out).astype(dtype)
        np.testing.assert_array_equal(layer.W, want, strict=True)
        np.testing.assert_array_equal(layer.b, np.zeros(n_out, dtype), strict=True)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_estimator_coefficients_are_aligned(early_stopping):
    X = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)
    y = np.arange(40) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # early stopping ends on the best epoch's copies: those are aligned too
        est = nnlib.MLPClassifier(hidden_layer_sizes=(9, 4), max_iter=5, random_state=0,
                                  early_stopping=early_stopping).fit(X, y)
    assert all(p.ctypes.data % CACHE_LINE == 0 for p in est.coefs_ + est.intercepts_)
    assert all(p.dtype == np.float32 for p in est.coefs_ + est.intercepts_)


EMPTY_LIKE_SHAPES = [(), (0,), (0, 4), (1,), (7,), (3, 5), (100, 10), (2, 3, 4)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", EMPTY_LIKE_SHAPES, ids=str)
def test_compiled_empty_like_keeps_the_ndarray_contract(shape, dtype):
    import gc

    from nnlib._kernels.aligned import CACHE_LINE as compiled_line, empty_like
    assert compiled_line == CACHE_LINE
    x = np.ones(shape, dtype)
    outs = [empty_like(x) for _ in range(8)]    # several allocations: no lucky address
    gc.collect()
    for i, out in enumerate(outs):
        assert type(out) is np.ndarray and out.shape == x.shape and out.dtype == x.dtype
        assert out.flags.c_contiguous and out.flags.writeable and out.flags.aligned
        assert out.ctypes.data % CACHE_LINE == 0 or out.size == 0
        # a view of its own buffer, and of nothing else: the buffer lives as long as it
        buf = out.base
        assert buf.dtype == np.uint8 and buf.ndim == 1 and buf.base is None
        assert buf.nbytes == out.nbytes + CACHE_LINE
        assert buf.ctypes.data <= out.ctypes.data < buf.ctypes.data + CACHE_LINE
        out[...] = i
    for i, out in enumerate(outs):                   # no two share memory
        np.testing.assert_array_equal(out, np.full(shape, i, dtype), strict=True)
    y = outs[-1]
    del outs, buf
    gc.collect()
    np.testing.assert_array_equal(y.copy(), np.full(shape, 7, dtype), strict=True)


def test_functional_outputs_are_aligned():
    from nnlib import functional as F
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((17, 3)).astype(dtype)[1:]   # input 12 bytes or 24 off
        g = rng.standard_normal(x.shape).astype(dtype)
        for name in sorted(F.activations.__all__):
            out = getattr(F, name)(x, g) if name.endswith("_vjp") else getattr(F, name)(x)
            assert out.ctypes.data % CACHE_LINE == 0, name
            assert out.shape == x.shape and out.dtype == x.dtype and out.flags.writeable
        for name in ("softmax", "log_softmax"):
            out = getattr(F, name)(x)
            assert out.ctypes.data % CACHE_LINE == 0, name
        for out in (F.dropout(x, 0.5, seed=1), F.dropout_vjp(x, g, 0.5, seed=1)):
            assert out.ctypes.data % CACHE_LINE == 0, "dropout"
            assert out.shape == x.shape and out.dtype == x.dtype and out.flags.writeable


def test_compiled_empty_like_refuses_none():
    # a typed ndarray argument accepts None unless declared not None: it would read
    # Py_None as an array header
    from nnlib._kernels.aligned import empty_like
    with pytest.raises(TypeError, match="ndarray"):
        empty_like(None)


@pytest.mark.parametrize("dtype", [np.float32, "float32", 4, object()],
                         ids=["scalar type", "str", "int", "object"])
def test_flat_float_names_a_dtype_that_is_not_one(dtype):
    # the kernels' wrappers pass x.dtype; anything else is a mistake named as such,
    # whatever the array (a list too, which is not flat either way)
    from nnlib._kernels.aligned import flat_float
    for a in (np.ones(3, np.float32), [1.0]):
        with pytest.raises(TypeError, match=r"flat_float: dtype must be a numpy\.dtype .* "
                                            r"or None; got .* of type "):
            flat_float(a, dtype)
    assert flat_float(np.ones(3, np.float32), np.dtype(np.float32))
    assert flat_float(np.ones(3, np.float32), None)


# copy_arrays: the snapshot copy of a training epoch (TrainingRun._snapshot)
def _pair_pool():
    return [np.zeros((3, 4), np.float32), np.zeros(4, np.float32), np.zeros(5)]


COPY_REFUSED = [
    pytest.param(lambda d: (d, [None, d[1].copy(), d[2].copy()]), id="none-beside-array"),
    pytest.param(lambda d: (d, [d[0].astype(np.float64), d[1], d[2]]), id="dtype"),
    pytest.param(lambda d: (d, [d[0].reshape(4, 3).copy(), d[1], d[2]]), id="shape"),
    pytest.param(lambda d: (d, [np.zeros((4, 3), np.float32).T, d[1], d[2]]),
                 id="not-c-contiguous"),
    pytest.param(lambda d: (d, [d[0], d[1], d[2].astype(">f8")]), id="byte-swapped"),
    pytest.param(lambda d: (d, [d[0], d[1], [0.0] * 5]), id="list"),
    pytest.param(lambda d: (d, d[:2]), id="lengths"),
    pytest.param(lambda d: (tuple(d), list(d)), id="tuple"),
]


def _read_only(a):
    a.flags.writeable = False
    return a


COPY_REFUSED.append(pytest.param(
    lambda d: ([d[0], d[1], _read_only(d[2])], [x.copy() + 1 for x in d]), id="read-only"))


@pytest.mark.parametrize("make", COPY_REFUSED)
def test_copy_arrays_refuses_a_bad_pair_before_copying_any(make):
    from nnlib._kernels.aligned import copy_arrays
    dst, src = make(_pair_pool())
    before = [None if a is None else np.array(a, copy=True) for a in dst]
    with pytest.raises(ValueError, match="copy_arrays"):
        copy_arrays(dst, src)
    for a, b in zip(dst, before):       # the good pairs before the bad one too
        if b is not None:
            assert np.array_equal(a, b)


def test_copy_arrays_copies_the_bytes_as_they_are():
    from nnlib._kernels.aligned import copy_arrays
    src = [np.array([[np.nan, -0.0], [np.inf, 1e-45]], np.float32),
           None, np.array([-0.0, np.float64(5e-324)])]
    src[0].view(np.uint32)[0, 0] = 0x7fc01234        # a NaN with a payload
    dst = [np.zeros((2, 2), np.float32), None, np.zeros(2)]
    copy_arrays(dst, src)
    assert dst[0].tobytes() == src[0].tobytes() and dst[2].tobytes() == src[2].tobytes()
    m = np.zeros((2, 2), np.float32).view(np.matrix)        # a subclass: its memory
    copy_arrays([m], [src[0].view(np.matrix)])
    assert m.tobytes() == src[0].tobytes()
