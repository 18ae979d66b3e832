"""The file format of a saved :class:`~nnlib.Sequential`: pure write and read functions.

Version 1
---------
An uncompressed ``.npz`` (a zip of ``.npy`` files, readable with
``np.load(path, allow_pickle=False)``) holding

* ``header``: a uint8 array, the UTF-8 bytes of a JSON object::

      {"format": "nnlib.Sequential", "version": 1, "dtype": "float64",
       "layers": [{"type": "Dense", "n_in": 2, "n_out": 4, "activation": "tanh",
                   "activation_param": null, "init": "glorot_uniform"},
                  {"type": "Dropout", "rate": 0.5, "seed": null, "step": 120}, ...],
       "arrays": ["W0", "b0", "W1", "b1", ...],
       "sha256": "<hex digest of the arrays' bytes, in that order, C order>",
       "header_sha256": "<hex digest of the header's other fields, see below>"}

* ``W0, b0, W1, b1, ...``: the weights (n_in, n_out) and biases (n_out,) of each Dense
  layer, numbered in order over the Dense layers (a Dropout holds no array).

A Dense spec may hold ``"regularized": [bool, bool]`` (L2 on W, on b), written only
when the layer's flags differ from Dense's ``(True, False)`` (set on the instance).
A Dropout spec holds its ``rate`` (a finite number in [0, 1)), its own ``seed`` (null:
each fit seeds it) and ``step`` (the training batches it has seen, so a loaded model's
next masks are those the saved one would draw), seed and step integers in [0, 2**64).

Two checksums cover the file. ``sha256`` covers the arrays (:func:`digest`).
``header_sha256`` covers the header: the SHA-256 of the ASCII bytes of the header's
canonical JSON, ``json.dumps(fields, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)`` of every field but ``header_sha256`` itself (``sha256`` included,
which ties the header to its arrays) (:func:`header_digest`). ``write`` takes it from the
header as written (the header sent through ``json.dumps`` and ``json.loads``), so ``read``
derives the same text from what it parses: JSON floats are written with ``repr`` and
read back to the same float, and key order does not count. It is an optional field of
version 1, so an older nnlib, whose ``check_header`` ignores unknown fields, still reads
the file; a file without it (written by nnlib before it was added) loads as before,
checked by its arrays' checksum alone. Both checksums catch corruption and accidental
edits (a Dropout rate, an activation, the loss or a learning rate changed by hand), not
tampering: whoever edits a file can recompute them, or drop ``header_sha256``.

Weights only
------------
``save_weights`` of a model with a layer of its own (any layer but ``Dense`` and
``Dropout``, which the format above cannot rebuild) writes the same kind of archive with
``"format": "nnlib.weights"`` (version 1) and the model's ``params`` in order as ``p0,
p1, ...``, each layer listed by its type and the shapes of its arrays (nnlib's own
layers by class name, any other layer's class as ``module.qualname``: a bare name
that is not one of nnlib's is a file of before that, matched by class name)::

      {"format": "nnlib.weights", "version": 1, "dtype": "float64",
       "layers": [{"type": "Dense", "shapes": [[2, 4], [4]]},
                  {"type": "Scale", "shapes": [[4]]}, ...],
       "arrays": ["p0", "p1", "p2", ...], "sha256": "...", "header_sha256": "..."}

It is read with the same checks (``check_weights_header``) by ``load_weights`` into a
model built the same way, as Keras's weights files are; ``nnlib.load`` refuses it,
naming ``load_weights``. A model of Dense and Dropout layers alone keeps saving its
weights as a whole model file, which both read.

``model_arrays`` copies each array once; the checksum is taken from those copies and
they are what ``write`` writes, so a save while another thread trains the model gives a
loadable file. ``write`` puts the file in a temporary file in the target directory,
named ``.nnlib-<target name>.<pid>-<random>.tmp``, and moves it into place with
``os.replace``, so a crash never leaves a half-written model under the target name. A
temporary file a killed save left behind is safe to delete; ``write`` deletes those
older than ``STALE_TEMP_SECONDS`` in the directory it writes to. An existing target
keeps its permission bits, and its owner and group where we may set them (a new one gets
the umask's bits and our user, as ``open`` gives), and a target that is a symbolic link
is written through: the file it points to is replaced, the link stays. An interrupt
anywhere in ``write`` leaves the old file or the new one, and no temporary file.

``read`` reads regular files only (a FIFO, socket or device is refused, never waited
on), and checks everything the file declares before it reads or decompresses any array
data: the zip members' declared sizes, the header's size, format name, version and the
types and values of its fields (``check_header``), the listed arrays (exactly ``W0, b0,
W1, b1, ...``, one pair per layer), and each array's ``.npy`` header (shape and dtype as
the layer specs say, its size within what the member and the file hold); then the
arrays' checksum, then the header's (when present): a damaged field gets the message
naming it. ``build_model`` builds the layers from the checked header. Any mismatch
raises ``ValueError`` naming the file and what is wrong; no pickle is ever read.

hashlib (OpenSSL), json, tempfile and zipfile are imported inside the functions: together
they would add tens of milliseconds to ``import nnlib``.
"""
import os

import numpy as np

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "WEIGHTS_FORMAT_NAME", "write",
           "write_atomically", "read", "model_arrays", "weights_arrays",
           "check_weights_header",
           "build_model", "check_header", "check_npz_name", "digest", "header_digest",
           "signed"]

FORMAT_NAME = "nnlib.Sequential"
FORMAT_VERSION = 1
WEIGHTS_FORMAT_NAME = "nnlib.weights"   # save_weights of a model with its own layers
WEIGHTS_FORMAT_VERSION = 1
MAX_NDIM = 32                           # NumPy's limit was 32 until NumPy 2.0
MAX_HEADER_BYTES = 1 << 22           # 4 MiB of JSON: ~25 000 layer specs
MAX_NPY_HEADER_BYTES = 1 << 16       # one array's .npy header (NumPy writes ~128 bytes)
TEMP_PREFIX, TEMP_SUFFIX = ".nnlib-", ".tmp"
STALE_TEMP_SECONDS = 3600            # older temporary files are from killed saves
HEADER_DIGEST = "header_sha256"      # the header field holding the header's checksum


class _FormatError(ValueError):
    """A readable archive that is not a valid nnlib model."""


def check_npz_name(path, owner: str) -> None:
    """Refuse a save target whose name does not end in .npz (this format), naming
    ``path`` (``owner``: what was given it, e.g. "ModelCheckpoint filepath ")."""
    name = os.fsdecode(os.fspath(path))     # a bytes path too: b"m.npz" ends in .npz
    if not str(name).lower().endswith(".npz"):
        ext = os.path.splitext(str(name))[1] or "no extension"
        raise ValueError(f"{owner}{name!r}: nnlib saves models as an uncompressed .npz "
                         f"archive, so the name must end in .npz (got {ext}); for ONNX "
                         f"or a PyTorch state_dict see nnlib.export")


def digest(arrays):
    """SHA-256 hex digest of the arrays' values, in order, as little-endian bytes in C
    order. The digest is of values, not of stored bytes: a .npy header whose byte order
    is relabelled (same bytes, other values) no longer matches."""
    import hashlib
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def header_digest(header):
    """SHA-256 hex digest of ``header``'s canonical JSON: every field but
    ``header_sha256``, keys sorted, no spaces, ASCII only (non-ASCII text escaped, so
    any string, a lone surrogate included, encodes)."""
    import hashlib
    import json
    fields = {k: v for k, v in header.items() if k != HEADER_DIGEST}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def signed(header):
    """``header`` as :func:`write` writes it: a new dict, the JSON round trip of
    ``header`` (tuples become lists, float subclasses floats), with ``header_sha256``
    taken from that round trip, so :func:`read` re-derives it from what it parses."""
    import json
    fields = json.loads(json.dumps(header))
    fields.pop(HEADER_DIGEST, None)
    fields[HEADER_DIGEST] = header_digest(fields)
    return fields


def model_arrays(model, optimizer=None):
    """(header, arrays) describing ``model`` (a Sequential) in format version 1, with
    ``optimizer``'s defaults, groups and state when given (header ``"optimizer"``, arrays
    ``opt<param position>_<slot>`` after the layers', see ``nnlib.optim._saved_section``).
    Each array is a copy taken once: the checksum is of those copies, and they are what
    :func:`write` writes."""
    arrays = {}
    dense = [layer for layer in model.layers if layer.spec()["type"] == "Dense"]
    for i, layer in enumerate(dense):
        arrays[f"W{i}"] = np.array(layer.W, dtype=model.dtype, order="C", copy=True)
        arrays[f"b{i}"] = np.array(layer.b, dtype=model.dtype, order="C", copy=True)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
              "dtype": model.dtype.name,
              "layers": [layer.spec() for layer in model.layers]}
    if optimizer is not None:
        from nnlib.optim import _saved_section
        header["optimizer"], opt_arrays = _saved_section(optimizer, model.params)
        arrays.update((k, np.array(a, dtype=model.dtype, order="C", copy=True))
                      for k, a in opt_arrays.items())
    header.update(arrays=list(arrays), sha256=digest(arrays.values()))
    if getattr(model, "loss", None) is not None:
        header["loss"] = model.loss           # what evaluate/predict_proba default to
    return header, arrays


def weights_arrays(model):
    """(header, arrays) of the weights-only file of ``model`` (a Sequential): every
    array of its ``params``, in order, as ``p0, p1, ...`` (copies taken once, as
    :func:`model_arrays` takes them). Raises TypeError when the arrays are not all
    float32 or all float64 (the one dtype the file declares), naming the layer."""
    layers, arrays, dtype = [], {}, None
    for i, layer in enumerate(model.layers):
        shapes = []
        for p in layer.params:
            p = np.asarray(p)
            if p.dtype not in (np.float32, np.float64) or \
                    (dtype is not None and p.dtype != dtype):
                raise TypeError(f"save_weights: layers[{i}] ({type(layer).__name__}) "
                                f"holds an array of dtype {p.dtype}; the file holds "
                                f"{dtype or 'float32 or float64'} arrays only")
            dtype = p.dtype
            arrays[f"p{len(arrays)}"] = np.array(p, order="C", copy=True)
            shapes.append(list(p.shape))
        layers.append({"type": layer_type_name(type(layer)), "shapes": shapes})
    dtype = dtype if dtype is not None else np.dtype(model.dtype or np.float64)
    header = {"format": WEIGHTS_FORMAT_NAME, "version": WEIGHTS_FORMAT_VERSION,
              "dtype": dtype.name, "layers": layers, "arrays": list(arrays),
              "sha256": digest(arrays.values())}
    return header, arrays


def _builtin(cls):
    """Whether ``cls`` is one of nnlib's own classes (Dense, Dropout, ...)."""
    return cls.__module__ == "nnlib" or cls.__module__.startswith("nnlib.")


def layer_type_name(cls):
    """The ``"type"`` a weights-only file records for a layer of class ``cls``: nnlib's
    own layers by their class name (``"Dense"``, as every version wrote them), any
    other class by ``module.qualname``, so that a user's class that happens to be
    named ``Dense`` is not taken for nnlib's."""
    if _builtin(cls):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def _same_class(kind, c):
    """``kind`` (``module.qualname``) names class ``c``; a script's class (module
    ``__main__``) matches by qualname on either side, so that weights a script saved
    load where its class is imported from a module, and back."""
    if kind == f"{c.__module__}.{c.__qualname__}":
        return True
    if kind.startswith("__main__."):
        return kind[len("__main__."):] == c.__qualname__
    return c.__module__ == "__main__" and kind.endswith("." + c.__qualname__)


def written_type_fits(kind, layer):
    """Whether ``layer`` may read the arrays a weights-only file wrote for a layer of
    type ``kind`` (:func:`layer_type_name`): the written class or a subclass of it.
    A module-qualified name is matched against the qualified names of ``layer``'s
    classes (``_same_class``); a bare name of one of nnlib's layers means that class (a user's class of
    the same name is not it); any other bare name, a user's class in a file written
    before names were qualified, is matched by class name as then."""
    mro = type(layer).__mro__
    if "." in kind:
        return any(not _builtin(c) and _same_class(kind, c) for c in mro)
    own = [c for c in mro if _builtin(c) and c.__name__ == kind]
    if own:
        return True
    from nnlib import layers                    # lazily, as this module imports the rest
    builtin = getattr(layers, kind, None)
    if isinstance(builtin, type) and _builtin(builtin):
        return False                            # nnlib's class, which layer is not
    return kind in (c.__name__ for c in mro)


def _check_version_and_dtype(header, path, version_read, what):
    """The header's ``version`` must be ``version_read`` (``what``: which format's) and
    its ``dtype`` float32 or float64."""
    version = header.get("version")
    if version != version_read or isinstance(version, bool):
        raise _FormatError(f"{path} has {what} version {version!r}; this nnlib reads "
                           f"version {version_read}")
    dtype = header.get("dtype")
    if dtype not in ("float32", "float64"):
        raise _FormatError(f"{path}: unsupported dtype {dtype!r}")


def check_weights_header(header, path):
    """The shapes a weights-only header declares, ``{array name: shape}``, after
    checking its fields (format, version, dtype, one ``{"type", "shapes"}`` per layer,
    the arrays ``p0, p1, ...`` one per declared shape); raises ValueError naming
    ``path`` and the field."""
    _check_version_and_dtype(header, path, WEIGHTS_FORMAT_VERSION, "weights format")
    specs, names = header.get("layers"), header.get("arrays")
    if not isinstance(specs, list) or not specs:
        raise _FormatError(f"{path}: the header's 'layers' must be a non-empty list")
    shapes = {}
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) or \
                not isinstance(spec.get("shapes"), list) or \
                set(spec) != {"type", "shapes"}:
            raise _FormatError(f"{path}: layer {i} must be {{'type': <class name>, "
                               f"'shapes': [...]}}; got {spec!r:.200}")
        for shape in spec["shapes"]:
            if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(
                    isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2 ** 63
                    for n in shape):
                raise _FormatError(f"{path}: layer {i} declares the shape {shape!r:.200}; "
                                   f"expected a list of at most {MAX_NDIM} integers >= 0")
            shapes[f"p{len(shapes)}"] = tuple(shape)
    if names != list(shapes):
        raise _FormatError(f"{path}: the header's 'arrays' must be p0, p1, ... one per "
                           f"declared shape ({len(shapes)}); got {names!r:.200}")
    return shapes


def write(path, header, arrays):
    """Write ``header`` (a JSON-able dict, :func:`signed` here: a ``header_sha256`` it
    holds is replaced) and ``arrays`` (name -> ndarray) to ``path`` atomically: a
    temporary file in the target's directory, fsynced, then renamed over the target
    (through a symbolic link, to the file it points to), with the target's permission
    bits, owner and group."""
    import json
    payload = {"header": np.frombuffer(json.dumps(signed(header)).encode(),
                                       dtype=np.uint8)}
    payload.update(arrays)
    write_atomically(path, lambda f: np.savez(f, **payload))


def write_atomically(path, fill):
    """Write a file at ``path`` as :func:`write` does (the module docstring): ``fill(f)``
    writes the contents to ``f``, a new temporary binary file in the target's
    directory, which is then fsynced and renamed over the target (through a symbolic
    link, to the file it points to), with the target's permission bits, owner and
    group; a new target gets the umask's bits. ``nnlib.export.to_onnx`` writes
    through it too."""
    import secrets
    from nnlib._threads import complete
    given = os.fspath(path)
    path = os.path.realpath(os.fsdecode(given))     # bytes paths as str: one type below
    directory, name = os.path.split(path)
    if not os.path.isdir(directory):
        # open() would name the temporary file beside the target: name the user's path
        import errno
        raise FileNotFoundError(errno.ENOENT, f"no folder {directory!r} to write into",
                                given)
    if os.path.isdir(path):
        # os.replace would fail naming the temporary file: name the user's path
        import errno
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name inside it",
                                given)
    remove_stale_temps(directory)
    try:
        target = os.stat(path)
    except FileNotFoundError:
        target = None
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{name}.{os.getpid()}-"
                                  f"{secrets.token_hex(4)}{TEMP_SUFFIX}")
    # Everything from creating the temporary file on is inside the try: an interrupt
    # can land after any call, and the handler removes whatever exists by then. A file
    # object (not a raw descriptor) closes itself even if it is dropped unassigned.
    try:
        # "x": a new file, mode 0o666 less the umask as open() gives (mkstemp: 0600)
        with open(tmp, "xb") as f:
            if target is not None:
                _keep_owner_and_mode(tmp, target)
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        complete(lambda: _remove(tmp))
        raise


def _keep_owner_and_mode(tmp, target):
    """Give the new file ``tmp`` the owner, group and permission bits of the
    file it replaces (``target``, an ``os.stat`` result), as far as we may: changing
    the owner needs privileges, the group membership of it; otherwise the new file
    keeps ours. The owner first: chown clears set-user-ID bits that chmod then sets."""
    import stat
    if hasattr(os, "chown"):
        st = os.stat(tmp)
        if (st.st_uid, st.st_gid) != (target.st_uid, target.st_gid):
            for uid, gid in ((target.st_uid, target.st_gid), (-1, target.st_gid)):
                try:
                    os.chown(tmp, uid, gid)
                    break
                except OSError:
                    pass
    os.chmod(tmp, stat.S_IMODE(target.st_mode))


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_stale_temps(directory, max_age=STALE_TEMP_SECONDS, now=None):
    """Delete the temporary files of saves killed in ``directory`` (``.nnlib-*.tmp``
    older than ``max_age`` seconds); errors are ignored. Returns the names removed."""
    import time
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for e in entries:
        if not (e.name.startswith(TEMP_PREFIX) and e.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            if e.is_file(follow_symlinks=False) and \
                    now - e.stat(follow_symlinks=False).st_mtime > max_age:
                os.unlink(e.path)
                removed.append(e.name)
        except OSError:
            pass
    return removed


def array_names(n_layers):
    """The arrays of a model of ``n_layers`` Dense layers, in file order."""
    return [f"{k}{i}" for i in range(n_layers) for k in ("W", "b")]


def check_header(header, path):
    """The shapes the header declares, ``{array name: shape}``, after checking every
    field's type and value (format, version, dtype, layer specs, the array list); raises
    ValueError naming ``path`` and the field."""
    from nnlib._codes import ACTIVATION_CODES
    from nnlib.layers import INITIALIZERS
    if isinstance(header, dict) and header.get("format") == WEIGHTS_FORMAT_NAME:
        raise _FormatError(f"{path} holds weights only (format {WEIGHTS_FORMAT_NAME!r}, "
                           f"written by save_weights of a model with layers of its own): "
                           f"build the model and call its load_weights")
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        found = header.get("format") if isinstance(header, dict) else None
        raise _FormatError(f"{path} is not an nnlib model file (format {found!r})")
    _check_version_and_dtype(header, path, FORMAT_VERSION, "format")
    specs, names = header.get("layers"), header.get("arrays")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _FormatError(f"{path}: the header's 'arrays' must be a list of names")
    n_dense = (sum(isinstance(spec, dict) and spec.get("type") == "Dense"
                   for spec in specs) if isinstance(specs, list) else 0)
    n_layer_arrays = 2 * n_dense
    if not isinstance(specs, list) or not specs or \
            names[:n_layer_arrays] != array_names(n_dense) or \
            (len(names) > n_layer_arrays and "optimizer" not in header):
        raise _FormatError(f"{path}: the header's layers do not match its arrays (expected "
                           f"'arrays' to be W0, b0, W1, b1, ... for {n_dense} Dense "
                           f"layer(s); got {len(names)} names)")
    shapes = {}
    k = 0                       # Dense layers so far: their arrays' number
    for i, spec in enumerate(specs):
        if isinstance(spec, dict) and spec.get("type") == "Dropout":
            _check_dropout_spec(spec, i, path)
            continue
        if not isinstance(spec, dict) or spec.get("type") != "Dense":
            raise _FormatError(f"{path}: layer {i} has unsupported type "
                               f"{spec.get('type') if isinstance(spec, dict) else spec!r}")
        act = spec.get("activation")
        if not isinstance(act, str) or act not in ACTIVATION_CODES:
            raise _FormatError(f"{path}: layer {i} has unknown activation {act!r}")
        for key in ("n_in", "n_out"):
            v = spec.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise _FormatError(f"{path}: layer {i} has {key}={v!r}; expected an "
                                   f"integer >= 1")
        init = spec.get("init", "glorot_uniform")
        if not isinstance(init, str) or init not in INITIALIZERS:
            # Dense(init=...) refuses it, so would a model rebuilt from layer.init
            raise _FormatError(f"{path}: layer {i} has init={init!r}; expected one of "
                               f"{sorted(INITIALIZERS)}")
        flags = spec.get("regularized", [True, False])
        if not isinstance(flags, list) or len(flags) != 2 or \
                not all(isinstance(f, bool) for f in flags):
            raise _FormatError(f"{path}: layer {i} has regularized={flags!r}; expected "
                               f"two booleans (L2 on W, on b)")
        shapes[f"W{k}"] = (spec["n_in"], spec["n_out"])
        shapes[f"b{k}"] = (spec["n_out"],)
        k += 1
    from nnlib._codes import LOSS_CODES
    loss = header.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in LOSS_CODES):
        raise _FormatError(f"{path}: the header's loss {loss!r} is not one of "
                           f"{sorted(LOSS_CODES)}")
    if "optimizer" in header:               # saved with include_optimizer=True
        from nnlib.optim import _saved_shapes
        shapes.update(_saved_shapes(header["optimizer"], names[n_layer_arrays:],
                                    list(shapes.values()), path))
    return shapes


def _check_dropout_spec(spec, i, path):
    """A Dropout spec's fields: rate a finite number in [0, 1); seed null or, like step,
    an integer in [0, 2**64)."""
    import math
    unknown = set(spec) - {"type", "rate", "seed", "step"}
    if unknown:
        raise _FormatError(f"{path}: layer {i} (Dropout) has unknown fields "
                           f"{sorted(unknown)}")
    rate = spec.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or \
            not math.isfinite(rate) or not 0.0 <= rate < 1.0:
        raise _FormatError(f"{path}: layer {i} (Dropout) has rate={rate!r}; expected a "
                           f"finite number in [0, 1)")
    for key, allow_none in (("seed", True), ("step", False)):
        v = spec.get(key, 0)
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2 ** 64:
            raise _FormatError(f"{path}: layer {i} (Dropout) has {key}={v!r}; expected "
                               f"an integer in [0, 2**64)" + (" or null" if allow_none
                                                              else ""))


def _member_sizes(zf, path, file_size):
    """{member name: ZipInfo}, after checking each member's declared sizes: nothing is
    decompressed that the file could not hold (a deflate bomb declares its size)."""
    import zipfile
    members = {}
    for info in zf.infolist():
        if info.filename in members:
            raise _FormatError(f"{path}: member {info.filename} appears twice")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _FormatError(f"{path}: member {info.filename} uses compression method "
                               f"{info.compress_type}; nnlib writes stored members")
        # deflate expands at most ~1032:1; stored members are their own size
        limit = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED
                                      else 1032) + 64
        if info.compress_size > file_size or info.file_size > limit:
            raise _FormatError(f"{path}: member {info.filename} declares {info.file_size} "
                               f"bytes, more than the file can hold (corrupted?)")
        members[info.filename] = info
    return members


def _npy_header(f, path, name):
    """(shape, fortran_order, dtype) from the .npy header at the start of ``f``."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    reader = {(1, 0): fmt.read_array_header_1_0,
              (2, 0): fmt.read_array_header_2_0}.get(version)
    if reader is None:
        raise _FormatError(f"{path}: array {name} has .npy version {version}")
    try:
        return reader(f, max_header_size=MAX_NPY_HEADER_BYTES)
    except Exception as exc:
        # NumPy parses the header text with tokenize and ast.literal_eval: crafted text
        # raises TokenError, SyntaxError, RecursionError, ... besides ValueError
        raise _FormatError(f"{path}: array {name} has an unreadable .npy header "
                           f"({type(exc).__name__}: {exc})") from exc


def _check_member_size(f, info, nbytes, path, name):
    """The member must hold exactly its .npy header and ``nbytes`` of data (checked
    before the data is read: nothing beyond it is ever decompressed)."""
    if info.file_size != f.tell() + nbytes:
        raise _FormatError(f"{path}: array {name} declares {nbytes} bytes of data but its "
                           f"member holds {info.file_size - f.tell()} (corrupted?)")


def _read_npy(zf, info, path, name, shape, dtypes):
    """The array of member ``info``: its .npy header read and checked (``shape``, a dtype
    among ``dtypes``, C order, size within the member) before the data is read."""
    import math
    with zf.open(info) as f:
        got_shape, fortran, dtype = _npy_header(f, path, name)
        if got_shape != shape or dtype.hasobject or dtype.newbyteorder("=") not in dtypes \
                or fortran:
            want = " or ".join(np.dtype(d).name for d in dtypes)
            raise _FormatError(f"{path}: array {name} has shape {got_shape} and dtype "
                               f"{dtype}{' (Fortran order)' if fortran else ''}; "
                               f"{'the header' if name == 'header' else 'its layer'} "
                               f"needs {shape} {want}")
        # Python ints: a declared (2**62, 4) wraps to 0 bytes in int64, and 10**30 rows
        # overflow np.prod
        nbytes = math.prod(shape) * dtype.itemsize
        _check_member_size(f, info, nbytes, path, name)
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise _FormatError(f"{path}: array {name} is truncated")
        f.read()                                # to the end: the CRC is checked there
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def read(path):
    """(header, arrays) of the model file at ``path``, after checking every declared
    size and type and the checksum (see the module docstring); arrays in native byte
    order. Raises ValueError naming the problem."""
    import json
    import zipfile
    import zlib
    path = os.fsdecode(os.fspath(path))     # zipfile takes a bytes path for a file object
    with _open_regular(path) as f:
        magic = f.read(4)
        file_size = os.fstat(f.fileno()).st_size
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path} is not an nnlib model file (not an .npz archive; "
                         f"truncated or corrupted?)")
    try:
        with zipfile.ZipFile(path) as zf:
            members = _member_sizes(zf, path, file_size)
            info = members.get("header.npy")
            if info is None:
                raise _FormatError(f"{path} is not an nnlib model file (no header)")
            if info.file_size > MAX_HEADER_BYTES + MAX_NPY_HEADER_BYTES:
                raise _FormatError(f"{path}: the header declares {info.file_size} bytes; "
                                   f"at most {MAX_HEADER_BYTES} are read")
            raw = _read_header_bytes(zf, info, path)
            header = json.loads(raw.decode("utf-8"))
            if isinstance(header, dict) and isinstance(header.get("arrays"), list) and \
                    not all(isinstance(n, str) and n + ".npy" in members
                            for n in header["arrays"]):
                raise _FormatError(f"{path} is missing arrays listed in its header")
            weights_only = isinstance(header, dict) and \
                header.get("format") == WEIGHTS_FORMAT_NAME
            shapes = (check_weights_header if weights_only else check_header)(header, path)
            dtype = np.dtype(header["dtype"])
            arrays = {}
            for name, shape in shapes.items():
                arrays[name] = _read_npy(zf, members[name + ".npy"], path, name, shape,
                                         (dtype,))
            # here, where a header nested too deep for json.dumps is reported as
            # unreadable (RecursionError is a RuntimeError)
            header_matches = (HEADER_DIGEST not in header or
                              header[HEADER_DIGEST] == header_digest(header))
    except _FormatError:
        raise
    # ValueError: NumPy's .npy header parser, and json's decode errors.
    # NotImplementedError, RuntimeError, zlib.error: zipfile's answers to a damaged local
    # header (an "unsupported compression method" or "encrypted" flag bit, bad deflate
    # data).
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, UnicodeDecodeError,
            ValueError, NotImplementedError, RuntimeError, zlib.error,
            SyntaxError) as exc:
        raise ValueError(f"{path} is not a readable nnlib model file (truncated or "
                         f"corrupted?): {exc}") from exc
    names = header["arrays"]
    if digest(arrays[n] for n in names) != header.get("sha256"):
        raise ValueError(f"{path} is corrupted: the arrays' SHA-256 does not match the "
                         f"header's")
    if not header_matches:          # a header without it predates it: see the docstring
        raise ValueError(f"{path} is corrupted or was edited: the header does not match "
                         f"its checksum ({HEADER_DIGEST}); a changed layer, loss or "
                         f"optimizer field would load as a different model")
    return header, {n: a.astype(a.dtype.newbyteorder("="), copy=False)
                    for n, a in arrays.items()}


def _open_regular(path):
    """``path`` opened for reading in binary, refused unless it is a regular file: a
    FIFO is opened without waiting for a writer (``open`` waited forever for one), a
    folder raises IsADirectoryError, a FIFO, socket or device ValueError."""
    import errno
    import stat
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) |
                 getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "not a regular file")
            raise ValueError(f"{path} is not an nnlib model file: it is {kind}, and a "
                             f"model is read from a regular .npz file")
        return os.fdopen(fd, "rb")      # owns fd from here
    except BaseException:
        os.close(fd)
        raise


def _read_header_bytes(zf, info, path):
    """The JSON bytes of the ``header`` member: a 1-d uint8 .npy of at most
    MAX_HEADER_BYTES."""
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, path, "header")
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_HEADER_BYTES:
            raise _FormatError(f"{path} is not an nnlib model file (header of shape "
                               f"{shape} and dtype {dtype})")
        _check_member_size(f, info, shape[0], path, "header")
        data = f.read(shape[0])
        if len(data) != shape[0]:
            raise _FormatError(f"{path}: the header is truncated")
        f.read()
    return data


def build_model(header, arrays, path):
    """The Sequential that ``header`` and ``arrays`` (from :func:`read`) describe; the
    header is checked (:func:`check_header`) and every array against its layer spec
    before a layer is built."""
    from nnlib._validation import DTypeError, ShapeError
    from nnlib.layers import Dense, Dropout
    from nnlib.model import Sequential
    shapes = check_header(header, path)
    dtype = header["dtype"]
    for name, shape in shapes.items():
        a = arrays.get(name)
        if a is None or a.shape != shape or a.dtype != np.dtype(dtype):
            raise ValueError(f"{path}: array {name} has shape {getattr(a, 'shape', None)} "
                             f"and dtype {getattr(a, 'dtype', None)}; its layer needs "
                             f"{shape} {dtype}")
    layers = []
    k = 0
    for i, spec in enumerate(header["layers"]):
        if spec["type"] == "Dropout":           # checked by check_header
            layer = Dropout(float(spec["rate"]), random_state=spec.get("seed"))
            layer.step = spec.get("step", 0)
            layers.append(layer)
            continue
        try:
            layer = Dense(spec["n_in"], spec["n_out"], spec["activation"], init="zeros",
                          dtype=dtype, activation_param=spec.get("activation_param"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: layer {i} spec is invalid: {exc}") from exc
        layer.init = spec.get("init", "glorot_uniform")
        if "regularized" in spec:
            layer.regularized = tuple(spec["regularized"])
        layer.W[...] = arrays[f"W{k}"]
        layer.b[...] = arrays[f"b{k}"]
        k += 1
        layers.append(layer)
    try:
        model = Sequential(layers)
    except (ShapeError, DTypeError) as exc:
        raise ValueError(f"{path}: layers do not fit together: {exc}") from exc
    model.loss = header.get("loss")
    return model
