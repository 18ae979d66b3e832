"""Fuzzing the construction of ``Dense`` layers and ``Sequential`` models: sizes,
activations and their parameters, initializers, dtypes, seeds, layer chains.

What an example may do (the documented error or a checked result) and how many run:
the models-and-estimators section of tests/_fuzz.py.
"""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import nnlib
from nnlib._codes import ACTIVATION_CODES, ACTIVATION_PARAMS
from nnlib._validation import DTypeError, ShapeError
from nnlib.layers import INITIALIZERS

from tests._fuzz import (ACTIVATIONS, F32, F64, FUZZ_SETTINGS, WILD, call_expecting,
                         chance, model_counts_reporter, one_bad, range_errors,
                         scalar_errors)

# Random values overflow in the oracles' own arithmetic and in float casts; expected here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

_report_counts = model_counts_reporter(["dense.", "sequential.construct"],
                                       "fuzz Dense and Sequential construction")


def _param_errors(act, param, dtype=F64):
    if param is None:
        return []
    if act not in ACTIVATION_PARAMS:
        return [(ValueError, "takes no parameter")]
    pname = ACTIVATION_PARAMS[act][0]
    return (scalar_errors(param, pname, low=0.0)
            or range_errors(param, pname, dtype))


SIZES_BAD = st.sampled_from([0, -2, True, 2.0, "3", None])
# Huge sizes only in pairs whose product no array can hold: a huge n_in with a small n_out
# would really try to allocate tens of gigabytes on a shared machine.
HUGE_SIZES = st.tuples(st.sampled_from([10 ** 10, 2 ** 62]), st.sampled_from([10 ** 10, 2 ** 62]))
DENSE_VALID = dict(
    sizes=st.tuples(st.integers(1, 5), st.one_of(st.integers(1, 5), st.just(np.int64(3)))),
    act=st.sampled_from(ACTIVATIONS), param=st.one_of(st.none(), st.floats(0, 3)),
    init=st.sampled_from(list(INITIALIZERS)),
    dtype=st.sampled_from([np.float32, np.float64, "float32", "f8", np.dtype(np.float64), None]),
    seed=st.one_of(st.none(), st.integers(0, 2 ** 32)))
DENSE_BAD = dict(
    sizes=st.one_of(st.tuples(SIZES_BAD, st.integers(1, 3)),
                    st.tuples(st.integers(1, 3), SIZES_BAD), HUGE_SIZES),
    act=st.sampled_from(["swish", None, 3]), param=WILD,
    init=st.sampled_from(["orthogonal", None]),
    dtype=st.sampled_from([np.float16, np.int32, complex, object, "U3", "nonsense"]),
    seed=st.sampled_from([-1, 1.5, "0", True]))


def _dtype_error(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return [(DTypeError, "dtype")]
    return [] if dt in (F32, F64) else [(DTypeError, "dtype")]


@FUZZ_SETTINGS
@given(kw=st.composite(lambda draw: one_bad(draw, DENSE_VALID, DENSE_BAD, p_bad=0.5))())
@example(kw=dict(sizes=(10 ** 10, 10 ** 10), act="tanh", param=None, init="glorot_uniform",
                 dtype=np.float64, seed=0))
def test_fuzz_dense_construction(kw):
    sizes, act, param, init, dtype, seed = (kw[k] for k in ("sizes", "act", "param", "init",
                                                            "dtype", "seed"))
    n_in, n_out = sizes
    expected = []
    huge = False
    for name, v in (("n_in", n_in), ("n_out", n_out)):
        errs = scalar_errors(v, name, integer=True, low=1)
        expected += errs
        huge = huge or (not errs and v > 10 ** 6)
    if act not in ACTIVATION_CODES:
        expected.append((ValueError, "activation"))
    else:
        expected += _param_errors(act, param, dtype)
    expected += _dtype_error(dtype)
    if init not in INITIALIZERS:
        expected.append((ValueError, "init"))
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)
                                 and seed >= 0):
        expected.append((TypeError, "random_state") if not isinstance(seed, int) or
                        isinstance(seed, bool) else (ValueError, "random_state"))
    if huge:
        # More weights than an array can hold: a ShapeError naming the sizes (never a
        # multi-terabyte allocation attempt, nor NumPy's "array is too big").
        expected.append((ShapeError, "too many weights"))
    ok, layer = call_expecting("dense.construct", nnlib.Dense, (n_in, n_out), dict(
        activation=act, activation_param=param, init=init, dtype=dtype, random_state=seed),
        expected)
    if not ok:
        return
    dt = np.dtype(dtype)
    assert layer.W.shape == (n_in, n_out) and layer.b.shape == (n_out,)
    assert layer.W.dtype == dt and layer.b.dtype == dt
    assert layer.W.flags.c_contiguous and layer.W.flags.writeable
    assert np.isfinite(layer.W).all() and not layer.b.any()
    if init == "zeros":
        assert not layer.W.any()
    else:
        bound = np.sqrt(6.0 / (n_in + (n_out if init.startswith("glorot") else 0)))
        if init.endswith("uniform"):
            assert np.abs(layer.W).max() <= bound * (1 + 1e-6)


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_sequential_construction(data):
    k = data.draw(st.integers(0, 4))
    layers, expected = [], []
    if k == 0:
        expected.append((ValueError, "at least one layer"))
    prev = None
    for i in range(k):
        if chance(data.draw, 0.1):
            layers.append(data.draw(st.sampled_from([None, "dense", np.ones((2, 2))])))
            expected.append((TypeError, rf"layers\[{i}\]"))
            prev = None
            continue
        n_in = prev.n_out if prev is not None and data.draw(st.integers(0, 4)) else \
            data.draw(st.integers(1, 4))
        dt = data.draw(st.sampled_from([F32, F64]))
        layer = nnlib.Dense(n_in, data.draw(st.integers(1, 4)), dtype=dt, random_state=i)
        if prev is not None:
            if n_in != prev.n_out:
                expected.append((ShapeError, rf"layers\[{i}\]"))
            if dt != layers[0].dtype if isinstance(layers[0], nnlib.Dense) else False:
                expected.append((DTypeError, "dtype"))
        layers.append(layer)
        prev = layer
    # dtype mismatches are reported against layers[0]; any layer may differ from it
    dts = [l.dtype for l in layers if isinstance(l, nnlib.Dense)]
    if len(set(dts)) > 1:
        expected.append((DTypeError, "dtype"))
    ok, model = call_expecting("sequential.construct", nnlib.Sequential, (layers,), {}, expected)
    if ok:
        assert model.n_in == layers[0].n_in and model.n_out == layers[-1].n_out
        assert len(model.params) == 2 * k
