"""The file format of a saved :class:`~nnlib.Sequential`: pure write and read functions.

Version 1
---------
An uncompressed ``.npz`` (a zip of ``.npy`` files, readable with
``np.load(path, allow_pickle=False)``) holding

* ``header``: a uint8 array, the UTF-8 bytes of a JSON object::

      {"format": "nnlib.Sequential", "version": 1, "dtype": "float64",
       "layers": [{"type": "Dense", "n_in": 2, "n_out": 4, "activation": "tanh",
                   "activation_param": null, "init": "glorot_uniform"}, ...],
       "arrays": ["W0", "b0", "W1", "b1", ...],
       "sha256": "<hex digest of the arrays' bytes, in that order, C order>"}

* ``W0, b0, W1, b1, ...``: the weights (n_in, n_out) and biases (n_out,) of each layer.

``write`` puts the file in a temporary file in the target directory and moves it into
place with ``os.replace``, so a crash never leaves a half-written model under the target
name. ``read`` checks the format name, version, the listed arrays and the checksum;
``build_model`` checks every layer spec against its arrays before it allocates a layer
(the header is not covered by the checksum). Any mismatch raises ``ValueError`` saying
what is wrong.

hashlib (OpenSSL), json, tempfile and zipfile are imported inside the functions: together
they would add tens of milliseconds to ``import nnlib``.
"""
import os

import numpy as np

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "write", "read", "model_arrays",
           "build_model", "digest"]

FORMAT_NAME = "nnlib.Sequential"
FORMAT_VERSION = 1


class _FormatError(ValueError):
    """A readable archive that is not a valid nnlib model."""


def digest(arrays):
    """SHA-256 hex digest of the arrays' bytes, in order, C order."""
    import hashlib
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def model_arrays(model):
    """(header, arrays) describing ``model`` (a Sequential) in format version 1."""
    arrays = {}
    for i, layer in enumerate(model.layers):
        arrays[f"W{i}"] = np.ascontiguousarray(layer.W)
        arrays[f"b{i}"] = np.ascontiguousarray(layer.b)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
              "dtype": model.dtype.name,
              "layers": [layer.spec() for layer in model.layers],
              "arrays": list(arrays), "sha256": digest(arrays.values())}
    return header, arrays


def write(path, header, arrays):
    """Write ``header`` (a JSON-able dict) and ``arrays`` (name -> ndarray) to ``path``
    atomically: a temporary file in the same directory, fsynced, then renamed."""
    import json
    import tempfile
    payload = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    payload.update(arrays)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nnlib-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read(path):
    """(header, arrays) of the model file at ``path``, after checking its format name,
    version, listed arrays and checksum. Raises ValueError naming the problem."""
    import json
    import zipfile
    import zlib
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path} is not an nnlib model file (not an .npz archive; "
                         f"truncated or corrupted?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            if "header" not in files:
                raise _FormatError(f"{path} is not an nnlib model file (no header)")
            header = json.loads(npz["header"].tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
                found = header.get("format") if isinstance(header, dict) else None
                raise _FormatError(f"{path} is not an nnlib model file (format "
                                   f"{found!r})")
            version = header.get("version")
            if version != FORMAT_VERSION:
                raise _FormatError(f"{path} has format version {version!r}; this nnlib "
                                   f"reads version {FORMAT_VERSION}")
            names = header.get("arrays")
            if not isinstance(names, list) or not set(names) <= files:
                raise _FormatError(f"{path} is missing arrays listed in its header")
            arrays = {name: npz[name] for name in names}
    except _FormatError:
        raise
    # ValueError: np.load's, and json's decode errors. NotImplementedError, RuntimeError,
    # zlib.error: zipfile's answers to a damaged local header (an "unsupported
    # compression method" or "encrypted" flag bit, bad deflate data).
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, UnicodeDecodeError,
            ValueError, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise ValueError(f"{path} is not a readable nnlib model file (truncated or "
                         f"corrupted?): {exc}") from exc
    if digest(arrays[n] for n in names) != header.get("sha256"):
        raise ValueError(f"{path} is corrupted: the arrays' SHA-256 does not match the "
                         f"header's")
    return header, arrays


def build_model(header, arrays, path):
    """The Sequential that ``header`` and ``arrays`` (from :func:`read`) describe; every
    layer spec is checked against its arrays before a layer is built."""
    from nnlib._codes import ACTIVATION_CODES
    from nnlib._validation import DTypeError, ShapeError
    from nnlib.layers import Dense
    from nnlib.model import Sequential
    names = header["arrays"]
    dtype = header.get("dtype")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"{path}: unsupported dtype {dtype!r}")
    specs = header.get("layers")
    if not isinstance(specs, list) or not specs or len(names) != 2 * len(specs):
        raise ValueError(f"{path}: the header's layers do not match its arrays")
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or spec.get("type") != "Dense":
            raise ValueError(f"{path}: layer {i} has unsupported type "
                             f"{spec.get('type') if isinstance(spec, dict) else spec!r}")
        if spec.get("activation") not in ACTIVATION_CODES:
            raise ValueError(f"{path}: layer {i} has unknown activation "
                             f"{spec.get('activation')!r}")
        shapes = {f"W{i}": (spec.get("n_in"), spec.get("n_out")),
                  f"b{i}": (spec.get("n_out"),)}
        for name, shape in shapes.items():
            a = arrays.get(name)
            if a is None or a.shape != shape or a.dtype != np.dtype(dtype):
                raise ValueError(f"{path}: array {name} has shape "
                                 f"{getattr(a, 'shape', None)} and dtype "
                                 f"{getattr(a, 'dtype', None)}; layer {i} needs "
                                 f"{shape} {dtype}")
        try:
            layer = Dense(spec["n_in"], spec["n_out"], spec["activation"], init="zeros",
                          dtype=dtype, activation_param=spec.get("activation_param"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: layer {i} spec is invalid: {exc}") from exc
        layer.init = spec.get("init", "glorot_uniform")
        layer.W[...] = arrays[f"W{i}"]
        layer.b[...] = arrays[f"b{i}"]
        layers.append(layer)
    try:
        return Sequential(layers)
    except (ShapeError, DTypeError) as exc:
        raise ValueError(f"{path}: layers do not fit together: {exc}") from exc
