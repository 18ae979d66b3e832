"""Bad input gives a clear ValueError/TypeError subclass naming the problem.

One table, ``CASES``: (id, callable, args, kwargs, expected exception, message fragment).
The fragment is matched case-insensitively as a regular expression against the message,
so each case also pins down that the message says *what* is wrong. Cases for parts of
nnlib that have not landed yet are added by the helpers below as those modules appear
(``_optional``), so this file never breaks on a partial checkout.
"""
import re

import numpy as np
import pytest

import nnlib.functional as F
from nnlib._codes import activation_code
from nnlib._validation import DTypeError, LabelError, NonFiniteError, ShapeError

ONES = np.ones((2, 3))
F32 = np.ones((2, 3), dtype=np.float32)


def case(id_, fn, args, exc, fragment, **kwargs):
    return pytest.param(fn, args, kwargs, exc, fragment, id=id_)


def _functional_cases():
    cases = []
    # Every activation and its vjp refuses unusable dtypes, naming the dtype.
    bad_dtypes = [
        ("complex", np.array([1 + 2j]), "complex"),
        ("object", np.array([1.0, None], dtype=object), "object"),
        ("string", np.array(["a", "b"]), "string"),
        ("bytes", np.array([b"a"]), "bytes"),
        ("datetime", np.array(["2020-01-01"], dtype="M8[D]"), "datetime"),
        ("timedelta", np.array([1], dtype="m8[s]"), "timedelta"),
        ("structured", np.zeros(2, dtype=[("a", "f8")]), "void"),
    ]
    for name in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu",
                 "sign"):
        fn, vjp = getattr(F, name), getattr(F, name + "_vjp")
        for tag, arr, frag in bad_dtypes:
            cases.append(case(f"{name}-x-{tag}", fn, (arr,), DTypeError, frag))
        cases += [
            case(f"{name}_vjp-grad-complex", vjp, (ONES, ONES + 1j), DTypeError,
                 "grad_out.*complex"),
            case(f"{name}_vjp-shape-mismatch", vjp, (ONES, np.ones((3, 2))), ShapeError,
                 r"same shape.*\(2, 3\).*\(3, 2\)"),
            case(f"{name}_vjp-grad-broadcastable-but-not-equal", vjp, (ONES, np.ones(3)),
                 ShapeError, "same shape"),
            case(f"{name}-n_threads-zero", fn, (ONES,), ValueError, "n_threads must be >= 1",
                 n_threads=0),
            case(f"{name}-n_threads-negative", fn, (ONES,), ValueError, "n_threads",
                 n_threads=-2),
            case(f"{name}-n_threads-float", fn, (ONES,), TypeError, "n_threads.*integer",
                 n_threads=2.0),
            case(f"{name}-n_threads-bool", fn, (ONES,), TypeError, "n_threads.*integer",
                 n_threads=True),
            case(f"{name}-n_threads-string", vjp, (ONES, ONES), TypeError, "n_threads",
                 n_threads="4"),
        ]
    for name, pname in (("leaky_relu", "slope"), ("elu", "alpha")):
        for fn in (getattr(F, name), getattr(F, name + "_vjp")):
            arrs = (ONES,) if fn.__name__ == name else (ONES, ONES)
            cases += [
                case(f"{fn.__name__}-{pname}-nan", fn, arrs + (np.nan,), ValueError,
                     f"{pname} must be finite"),
                case(f"{fn.__name__}-{pname}-inf", fn, arrs + (np.inf,), ValueError,
                     f"{pname} must be finite"),
                case(f"{fn.__name__}-{pname}-string", fn, arrs + ("0.1",), TypeError,
                     f"{pname} must be a real number"),
                case(f"{fn.__name__}-{pname}-array", fn, arrs + (np.ones(2),), TypeError,
                     f"{pname} must be a real number"),
                case(f"{fn.__name__}-{pname}-none", fn, arrs + (None,), TypeError, pname),
                case(f"{fn.__name__}-{pname}-complex", fn, arrs + (1j,), TypeError, pname),
            ]
    cases += [
        case("elu-alpha-negative", F.elu, (ONES, -0.5), ValueError, "alpha must be >= 0"),
        case("elu_vjp-alpha-negative", F.elu_vjp, (ONES, ONES, -1.0), ValueError,
             "alpha must be >= 0"),
        case("activation-unknown-name", activation_code, ("swish",), ValueError,
             "unknown activation 'swish'.*relu"),
        case("activation-unhashable-name", activation_code, (["relu"],), ValueError,
             "unknown activation"),
        case("sigmoid-ragged-list", F.sigmoid, ([[1.0, 2.0], [3.0]],), ValueError,
             "inhomogeneous|sequence"),
        case("tanh-x-none", F.tanh, (None,), DTypeError, "object"),
    ]
    return cases


CASES = _functional_cases()


@pytest.mark.parametrize("fn, args, kwargs, exc, fragment", CASES)
def test_bad_input_raises_clear_error(fn, args, kwargs, exc, fragment):
    assert issubclass(exc, (ValueError, TypeError))
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, (ValueError, TypeError))
    msg = str(info.value)
    assert re.search(fragment, msg, re.IGNORECASE | re.DOTALL), (
        f"message {msg!r} does not mention {fragment!r}")


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_error_classes_are_value_or_type_errors():
    for exc in (ShapeError, NonFiniteError, LabelError):
        assert issubclass(exc, ValueError)
    assert issubclass(DTypeError, TypeError)
