"""Fuzzing nnlib.load: a saved model with random bytes flipped, cut short or appended must
load to the same weights (when the damage missed everything that matters, e.g. zip
padding) or raise a ValueError; never another exception, a crash or a wrong model."""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("nnlib.model")

import nnlib  # noqa: E402
from nnlib.model import load  # noqa: E402
from tests._fuzz import COUNTS, FUZZ_SETTINGS, report_counts  # noqa: E402

_DIR = tempfile.mkdtemp(prefix="nnlib-fuzz-load-")
_MODEL = nnlib.Sequential([nnlib.Dense(3, 5, "tanh", random_state=0),
                           nnlib.Dense(5, 2, random_state=1)])
_GOOD = os.path.join(_DIR, "good.npz")
_MODEL.save(_GOOD)
_RAW = open(_GOOD, "rb").read()


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    report_counts(request, "load", "fuzz nnlib.load")


@FUZZ_SETTINGS
@given(data=st.data(), kind=st.sampled_from(["flip", "truncate", "append", "overwrite"]))
def test_fuzz_damaged_model_file(data, kind):
    b = bytearray(_RAW)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(b) - 1))
            b[i] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        b = b[:data.draw(st.integers(0, len(b) - 1))]
    elif kind == "append":
        b += data.draw(st.binary(min_size=1, max_size=64))
    else:
        i = data.draw(st.integers(0, len(b) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=32))
        b[i:i + len(chunk)] = chunk
    path = os.path.join(_DIR, "damaged.npz")
    with open(path, "wb") as f:
        f.write(bytes(b))
    try:
        model = load(path)
    except ValueError as e:
        assert str(path) in str(e)
        COUNTS["load"]["raised"] += 1
        return
    # Loaded: then it must be exactly the saved model (checksummed arrays and header).
    for p, q in zip(model.params, _MODEL.params):
        np.testing.assert_array_equal(p, q)
    assert [l.spec() for l in model.layers] == [l.spec() for l in _MODEL.layers]
    COUNTS["load"]["returned"] += 1
