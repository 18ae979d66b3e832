"""A disk cache for what verify derives deterministically from its own inputs -- the exact
references its evidence compares the compiled kernels with, the exact replays of a training
epoch and of optimizer steps, and the items of its derivations that read nothing of nnlib
(the convexity certificates, the notes' closed forms) -- so that a run does not derive again
what it derived before from the same numbers. The figures are not cached: verify.svg writes
each in a few milliseconds.

Design note
-----------
An entry is keyed by a SHA-256 of everything that determines it: the source of every
``verify`` module (any edit invalidates every entry), the versions of the libraries that
derive it, the name of the function that made it and the pickled arguments it was made
from -- for an exact reference, the points it is taken at (their bits) and the SymPy
expression it evaluates (by ``srepr``, for the public API's user-given expressions); for a
replay, every number it starts from, the configuration (as nnlib's optimizer class reports
it) and, under dropout, the bits of every mask it reads (the twin
``nnlib._reference.dropout_mask`` makes them). The kernels' outputs are never cached: they
are computed afresh every run. A hit returns what the function would return. An exact
reference (``exact_values``) comes back bit for bit (each mpf's sign, mantissa,
exponent); the compiled result it is compared with is computed every run, so a cached
reference can never make a broken kernel pass.

Why a warm run still runs every check: what an entry holds is a pure function of its key
-- exact values SymPy and mpmath derive from the inputs in the key with verify's own
definitions, or the item of a derivation that reads only verify's definitions
(``derived``; verify's source is in the key; nnlib's is not, as no entry reads it). Every
compiled kernel is run and measured afresh, and every proof that a closed form of nnlib's
equals its derivation (SymPy's simplifications, the training epoch's derivation) is
derived again; a hit only skips deriving once more the same exact values from the same
inputs and deciding again a certificate about verify's own functions. The key leaves out
``NOT_CHECKS`` (the mutation harness): no check imports it, so its source cannot change an
entry.

Entries live in ``$NNLIB_VERIFY_CACHE`` (``0`` or ``off`` disables the cache), else
``$XDG_CACHE_HOME/nnlib-verify``, else ``~/.cache/nnlib-verify``; one directory per
verify source hash, and directories unused for a week are removed. Every write is a
temporary file renamed into place, so concurrent runs see whole entries or none; an
entry that cannot be read is a miss. Entries are JSON (never unpickled: a file in the
cache directory is data, not code); only the key is made by pickling.
"""
import functools
import hashlib
import json
import os
import pickle
import shutil
import time

__all__ = ["cache_dir", "key_of", "load", "store", "exact_values", "derived"]

_STALE_SECONDS = 7 * 24 * 3600


# Subpackages no check imports, so they cannot change what a check computes: the mutation
# harness (verify.mutants) runs verify on faulty copies of nnlib, it is not a check.
NOT_CHECKS = ("mutants",)


@functools.lru_cache(maxsize=1)
def source_hash():
    """SHA-256 (hex) of the source of every module of the verify package (but
    ``NOT_CHECKS``)."""
    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for d, dirs, files in sorted(os.walk(root)):
        dirs[:] = sorted(x for x in dirs if not (d == root and x in NOT_CHECKS))
        for f in sorted(files):
            if f.endswith((".py", ".json")):
                p = os.path.join(d, f)
                h.update(os.path.relpath(p, root).encode() + b"\0")
                with open(p, "rb") as fh:
                    h.update(fh.read() + b"\0")
    return h.hexdigest()


def cache_dir():
    """This source version's cache directory (created), or None when disabled or not
    writable."""
    env = os.environ.get("NNLIB_VERIFY_CACHE")
    if env is not None and env.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    base = env or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                               os.path.join(os.path.expanduser("~"), ".cache"),
                               "nnlib-verify")
    path = os.path.join(base, source_hash()[:32])
    try:
        fresh = not os.path.isdir(path)
        os.makedirs(path, exist_ok=True)
        os.utime(path)
    except OSError:
        return None
    if fresh:
        _prune(base, keep=path)
    return path


def _prune(base, keep):
    now = time.time()
    for name in os.listdir(base):
        p = os.path.join(base, name)
        try:
            if p != keep and os.path.isdir(p) and now - os.path.getmtime(p) > _STALE_SECONDS:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def key_of(kind, versions, payload):
    """The key of an entry: ``kind`` (what made it), ``versions`` (the libraries that
    made it) and ``payload`` (its arguments, pickled: equal arguments, equal bytes)."""
    h = hashlib.sha256()
    h.update(repr((kind, versions)).encode() + b"\0")
    h.update(pickle.dumps(payload, protocol=4))
    return h.hexdigest()


def load(key):
    """The JSON value stored under ``key``, or None."""
    d = cache_dir()
    if d is None:
        return None
    try:
        with open(os.path.join(d, key + ".json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):      # missing, partial or foreign: a miss
        return None


def store(key, value):
    """Store ``value`` (JSON-able) under ``key``; a failure to write is ignored."""
    d = cache_dir()
    if d is None:
        return
    path = os.path.join(d, key + ".json")
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        # json.dumps, one write: json.dump writes the same text chunk by chunk, from
        # json's pure-Python encoder (dumps uses the C one), several times slower
        text = json.dumps(value)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


def _mpf_json(x):
    sign, man, exp, bc = x._mpf_
    return [sign, hex(man), exp, bc]


def _mpf_back(v):
    import mpmath
    sign, man, exp, bc = v
    t = (int(sign), int(man, 16), int(exp), int(bc))
    # a normalized mpf: zero is (0, 0, 0, 0), any other mantissa odd with bc its bits
    # (mpmath's own form of every finite value; anything else is not an entry of ours)
    if t[0] not in (0, 1) or t[3] != t[1].bit_length() or t[3] > 1 << 20 or (
            not t[1] & 1 if t[1] else t != (0, 0, 0, 0)):
        raise ValueError("not a normalized mpf")
    return mpmath.mp.make_mpf((t[0], mpmath.libmp.MPZ(t[1]), t[2], t[3]))


def exact_values(kind, payload, compute):
    """``compute()`` -- exact reference values made by SymPy and mpmath from ``payload``
    (mpmath.mpf, and ints, strings, None, nested lists, tuples and dicts of them; never a
    compiled kernel's output) -- stored under a key of ``kind``, ``payload`` and the SymPy
    and mpmath versions, and returned from the cache (bit for bit) when stored before. An
    exception is never cached."""
    return derived("exact " + kind, payload, compute)


def derived(kind, payload, compute):
    """``compute()`` -- a pure function of ``payload`` and verify's source, made by SymPy
    and mpmath (a derivation: exact values, a proof's or a certificate's item) -- stored
    under a key of ``kind``, ``payload`` and the SymPy and mpmath versions and returned
    from the cache when stored before: mpmath.mpf bit for bit, floats (JSON's shortest
    repr, read back to the same double), ints, bools, strings, None, lists, tuples and
    dicts (string keys, in order) as they were. An exception is never cached."""
    import mpmath
    import sympy
    key = key_of(kind, (sympy.__version__, mpmath.__version__), payload)
    hit = load(key)
    if isinstance(hit, dict) and hit.get("kind") == kind:
        try:
            return _decode(hit["value"])
        except (KeyError, TypeError, ValueError):
            pass                           # a malformed entry: computed again
    value = compute()
    store(key, {"kind": kind, "value": _encode(value)})
    return value


def _encode(v):
    """mpf -> {"mpf": [sign, hex mantissa, exp, bc]}; tuples -> {"tuple": [...]}, dicts ->
    {"dict": [[key, value], ...]} (so that they come back as they were); lists, strings,
    ints, floats, bools and None as JSON has them."""
    import mpmath
    if isinstance(v, mpmath.mpf):
        return {"mpf": _mpf_json(v)}
    if isinstance(v, tuple):
        return {"tuple": [_encode(u) for u in v]}
    if isinstance(v, list):
        return [_encode(u) for u in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError("cannot store a dict whose keys are not strings")
        return {"dict": [[k, _encode(u)] for k, u in v.items()]}
    if v is None or type(v) in (bool, int, float, str):
        return v
    raise TypeError(f"cannot store {type(v).__name__} as a derived value")


def _decode(v):
    if isinstance(v, dict) and set(v) == {"mpf"}:
        return _mpf_back(v["mpf"])
    if isinstance(v, dict) and set(v) == {"tuple"}:
        return tuple(_decode(u) for u in v["tuple"])
    if isinstance(v, dict) and set(v) == {"dict"}:
        out = {}
        for k, u in v["dict"]:
            if not isinstance(k, str):
                raise ValueError("not a stored dict")
            out[k] = _decode(u)
        return out
    if isinstance(v, list):
        return [_decode(u) for u in v]
    if v is None or type(v) in (bool, int, float, str):
        return v
    raise ValueError("not a stored value")
