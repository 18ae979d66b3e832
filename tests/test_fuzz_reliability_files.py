"""Fuzz: hostile model files for ``nnlib.load``.

Each case starts from a random saved model and damages or crafts it: random byte flips,
truncations, extensions and overwrites; headers whose fields get hostile values (wrong
types, negative / float / bool / huge sizes, dtype strings, deep nesting, unicode, long
lists), raw JSON text with duplicate keys, NaN literals, huge numbers and invalid UTF-8;
``.npy`` headers with other dtypes, shapes, orders, versions and header lengths; and zip
archives with odd member names (path traversal, absolute, NUL, case, unicode), duplicate
members, many extra members, compressed members (deflate, bzip2, lzma), zip64 records
and comments. Files carry the header checksum as ``save`` writes them; crafted headers
are re-signed (correct SHA-256s of the arrays and of the header) so the checks behind the
checksums are reached too.

What must hold: ``load`` raises ValueError (or a subclass) naming the file, or returns
the model the file declares (its arrays, its layer specs); within ``MAX_SECONDS``, with
the child's peak memory bounded (tests/_fuzz_reliability.py), writing nothing.
"""
import io
import json
import os
import tempfile
import time
import warnings
import zipfile

import numpy as np

import nnlib
from nnlib import _format
from tests._fuzz_reliability import run_subject
from tests._reliability_cases import model, pick

MAX_SECONDS = 2.0
_DIR = None


def child_setup():
    global _DIR
    _DIR = tempfile.mkdtemp(prefix="nnlib-fuzz-files-")


def _saved(rng):
    m = model(rng, int(rng.integers(1, 5)), int(rng.integers(1, 4)),
              dtype=pick(rng, [np.float64, np.float32]))
    header, arrays = _format.model_arrays(m)
    return m, _format.signed(header), arrays


def _npy(arr):
    b = io.BytesIO()
    np.lib.format.write_array(b, np.asarray(arr), allow_pickle=False)
    return b.getvalue()


def _npy_raw(header_text, data=b"", version=(1, 0), length=None):
    h = header_text.encode("latin1", "replace")
    h += b" " * ((-(10 + len(h) + 1)) % 64) + b"\n"
    n = len(h) if length is None else length
    size = n.to_bytes(2 if version[0] == 1 else 4, "little", signed=False) \
        if n < (1 << (16 if version[0] == 1 else 32)) else b"\xff\xff"
    return b"\x93NUMPY" + bytes(version) + size + h + data


def _zip(members, compression=zipfile.ZIP_STORED, zip64=False, comment=b""):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                    # duplicate names
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in members:
                info = zipfile.ZipInfo(name)
                info.compress_type = compression
                with zf.open(info, "w", force_zip64=zip64) as f:
                    f.write(data)
            zf.comment = comment
    return buf.getvalue()


def _members(header, arrays, header_bytes=None):
    hb = json.dumps(header).encode() if header_bytes is None else header_bytes
    return [("header.npy", _npy(np.frombuffer(hb, np.uint8)))] + \
        [(k + ".npy", _npy(v)) for k, v in arrays.items()]


def _load(raw, header=None, arrays=None):
    """Write ``raw``, load it; the outcome label. ``header``/``arrays``: what the file
    declares, when a returned model must match it."""
    path = os.path.join(_DIR, "hostile.npz")
    with open(path, "wb") as f:
        f.write(raw)
    before = sorted(os.listdir(_DIR))
    tic = time.perf_counter()
    try:
        m = nnlib.load(path)
    except ValueError as e:
        took = time.perf_counter() - tic
        assert took < MAX_SECONDS, f"refusing took {took:.2f} s"
        assert path in str(e), f"the message does not name the file: {e}"
        assert sorted(os.listdir(_DIR)) == before
        return f"refused {type(e).__name__}"
    took = time.perf_counter() - tic
    assert took < MAX_SECONDS, f"loading took {took:.2f} s"
    assert header is not None, "a damaged file loaded"
    specs = [{k: s[k] for k in ("n_in", "n_out", "activation")} for s in header["layers"]]
    assert [{k: s[k] for k in ("n_in", "n_out", "activation")}
            for s in (l.spec() for l in m.layers)] == specs
    for k, p in zip(header["arrays"], m.params):
        np.testing.assert_array_equal(p, arrays[k], strict=False)
        assert p.dtype == np.dtype(header["dtype"])
    return "loaded what the file declares"


def case_bytes(rng):
    m, header, arrays = _saved(rng)
    raw = bytearray(_zip(_members(header, arrays)))
    kind = pick(rng, ["flip", "truncate", "append", "overwrite", "zero-run"])
    for _ in range(int(rng.integers(1, 6))):
        if not raw:
            break
        if kind == "flip":
            raw[int(rng.integers(len(raw)))] ^= int(rng.integers(1, 256))
        elif kind == "truncate":
            raw = raw[:int(rng.integers(len(raw)))]
        elif kind == "append":
            raw += rng.bytes(int(rng.integers(1, 4096)))
        elif kind == "overwrite":
            i = int(rng.integers(len(raw)))
            raw[i:i + 8] = rng.bytes(8)
        else:
            i = int(rng.integers(len(raw)))
            raw[i:i + int(rng.integers(1, 64))] = b"\0" * 64
    out = _load(bytes(raw), header, arrays)
    return f"{kind}: {out}"


def _hostile_value(rng, depth=0):
    k = pick(rng, ["int", "bigint", "neg", "float", "bool", "none", "str", "unicode",
                   "list", "dict", "deep", "longlist", "nan"])
    return {"int": lambda: int(rng.integers(-3, 10)), "bigint": lambda: 10 ** int(rng.integers(9, 400)),
            "neg": lambda: -int(rng.integers(1, 10 ** 6)), "float": lambda: float(rng.uniform(-1e3, 1e3)),
            "bool": lambda: bool(rng.random() < 0.5), "none": lambda: None,
            "str": lambda: pick(rng, ["float64", "float32", ">f8", "<f4", "float16", "object",
                                      "U10", "int64", "Dense", "tanh", "W0", "", "../x"]),
            "unicode": lambda: "\u2603\U0001f600\x00\ud7ff" * int(rng.integers(1, 50)),
            "list": lambda: [_hostile_value(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
            if depth < 3 else [],
            "dict": lambda: {"type": "Dense", "n_in": _hostile_value(rng, depth + 1)} if depth < 3 else {},
            "deep": lambda: json.loads("[" * 500 + "]" * 500),
            "longlist": lambda: ["W0"] * int(10 ** rng.uniform(2, 5.5)),
            "nan": lambda: float(pick(rng, [np.nan, np.inf, -np.inf]))}[k]()


def case_header_fields(rng):
    m, header, arrays = _saved(rng)
    header = json.loads(json.dumps(header))
    for _ in range(int(rng.integers(1, 3))):
        where = pick(rng, ["top", "layer", "arrays", "drop", "layers"])
        if where == "top":
            header[pick(rng, ["format", "version", "dtype", "layers", "arrays", "sha256",
                              "extra"])] = _hostile_value(rng)
        elif where == "layer" and isinstance(header.get("layers"), list) \
                and header["layers"] and isinstance(header["layers"][-1], dict):
            spec = header["layers"][int(rng.integers(len(header["layers"])))]
            if not isinstance(spec, dict):
                continue
            spec[pick(rng, ["type", "n_in", "n_out", "activation", "activation_param",
                            "init"])] = _hostile_value(rng)
        elif where == "arrays":
            names = list(arrays)
            header["arrays"] = pick(rng, [names[::-1], names * 2, names[:-1],
                                          ["W0"] * 100000, [a.lower() for a in names],
                                          ["../" + a for a in names]])
        elif where == "drop":
            header.pop(pick(rng, list(header)), None)
        else:                                   # many copies of the saved specs
            header["layers"] = [dict(s) for s in _format.model_arrays(m)[0]["layers"]
                                for _ in range(int(rng.integers(2, 20000)))]
    if rng.random() < 0.7 and isinstance(header.get("arrays"), list):
        try:
            header["sha256"] = _format.digest(arrays[n] for n in header["arrays"]
                                              if isinstance(n, str) and n in arrays)
        except TypeError:
            pass
        header = _format.signed(header)
    raw = _zip(_members(header, arrays, json.dumps(header, allow_nan=True).encode()))
    return _load(raw, header, arrays)


def case_header_text(rng):
    m, header, arrays = _saved(rng)
    text = json.dumps(header)
    kind = pick(rng, ["duplicate", "nan", "bigexp", "bom", "badutf8", "deep", "trailing",
                      "empty", "notobject", "nul"])
    if kind == "duplicate":
        key = pick(rng, ['"dtype": "float64"', '"version": 1', '"dtype": "float32"',
                         '"format": "x"', '"arrays": []'])
        text = "{" + key + ", " + text[1:] if rng.random() < 0.5 else text[:-1] + ", " + key + "}"
    elif kind == "nan":
        text = text.replace('"version": 1', '"version": NaN')
    elif kind == "bigexp":
        text = text.replace('"version": 1', '"version": 1e999').replace(
            '"n_in": ', '"n_in": 1' + "0" * int(rng.integers(20, 5000)) + "+")
    elif kind == "bom":
        text = "\ufeff" + text
    elif kind == "badutf8":
        b = text.encode()
        i = int(rng.integers(len(b)))
        return _load(_zip(_members(header, arrays, b[:i] + b"\xff\xfe" + b[i:])))
    elif kind == "deep":
        text = text[:-1] + ', "x": ' + "[" * int(rng.integers(1000, 200000)) + "]" * 3 + "}"
    elif kind == "trailing":
        text = text + " garbage"
    elif kind == "empty":
        text = ""
    elif kind == "notobject":
        text = pick(rng, ["[]", "null", "1", '"nnlib.Sequential"'])
    else:
        text = text.replace("tanh", "ta\x00nh").replace("identity", "identity\x00")
    try:
        declared = json.loads(text)
    except (ValueError, RecursionError):
        declared = None
    declared = declared if isinstance(declared, dict) else None
    return f"{kind}: {_load(_zip(_members(header, arrays, text.encode())), declared, arrays)}"


def case_npy(rng):
    m, header, arrays = _saved(rng)
    name = pick(rng, list(arrays) + ["header"])
    arr = arrays.get(name, np.frombuffer(json.dumps(header).encode(), np.uint8))
    descr = pick(rng, ["'<f8'", "'>f8'", "'<f4'", "'|u1'", "'|O'", "'<U5'", "'|V8'",
                       "[('a', '<f8')]", "'<c16'", "'<f2'", "'<i8'", "'f8'", "42", "None"])
    shape = pick(rng, [str(arr.shape), "()", "(-1,)", "(10**12,)", "(2**62, 4)", "(1.5,)",
                       "(True,)", "(" + ", ".join(["1"] * 40) + ")", str(arr.shape[::-1]),
                       "(0,)", "'x'"])
    fortran = pick(rng, ["False", "True", "1", "'no'"])
    text = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    data = arr.tobytes()[: int(rng.integers(0, arr.nbytes + 1))] if rng.random() < 0.3 \
        else arr.tobytes()
    version = pick(rng, [(1, 0), (1, 0), (2, 0), (3, 0), (9, 9)])
    length = None if rng.random() < 0.8 else int(pick(rng, [0, 1, 65535, 10 ** 6]))
    blob = _npy_raw(text, data, version, length)
    members = [(k + ".npy", blob if k == name else _npy(v)) for k, v in
               [("header", np.frombuffer(json.dumps(header).encode(), np.uint8))]
               + list(arrays.items())]
    return _load(_zip(members), header, arrays)


def case_zip(rng):
    m, header, arrays = _saved(rng)
    members = _members(header, arrays)
    kind = pick(rng, ["rename", "duplicate", "many", "compress", "zip64", "comment",
                      "directory", "missing", "reorder"])
    compression, zip64, comment = zipfile.ZIP_STORED, False, b""
    if kind == "rename":
        i = int(rng.integers(len(members)))
        new = pick(rng, ["../" + members[i][0], "/" + members[i][0], members[i][0].upper(),
                         members[i][0] + "\x00", "sub/" + members[i][0], "\u00e9" + members[i][0],
                         members[i][0].replace(".npy", ""), "C:\\" + members[i][0]])
        members[i] = (new, members[i][1])
    elif kind == "duplicate":
        i = int(rng.integers(len(members)))
        other = pick(rng, [members[i][1], _npy(np.zeros(3)), b"junk"])
        members.insert(int(rng.integers(len(members) + 1)), (members[i][0], other))
    elif kind == "many":
        members += [(f"x{i}.npy", b"") for i in range(int(10 ** rng.uniform(1, 4)))]
    elif kind == "compress":
        compression = pick(rng, [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
    elif kind == "zip64":
        zip64 = True
    elif kind == "comment":
        comment = rng.bytes(int(rng.integers(1, 65535)))
    elif kind == "directory":
        members.append((pick(rng, ["W0.npy/", "dir/"]), b""))
    elif kind == "missing":
        members.pop(int(rng.integers(len(members))))
    else:
        rng.shuffle(members)
    raw = _zip(members, compression, zip64, comment)
    return f"{kind}{'' if kind != 'compress' else ' ' + str(compression)}: " \
           f"{_load(raw, header, arrays)}"


CASES = [case_bytes, case_header_fields, case_header_text, case_npy, case_zip]


def test_fuzz_hostile_files(request):
    run_subject(__name__, request)
