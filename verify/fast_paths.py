"""The fit path's compiled shortcuts, each held bit for bit to NumPy and to its NumPy twin in
``nnlib/_reference``.

Design note
-----------
Neither shortcut computes a formula, so there is nothing to prove or to measure in ULPs:
each promises to return exactly what a NumPy expression returns, and its check is that
equality, on the inputs where a slip would show. A difference anywhere fails the check and
names the first input and index that differ.

* ``SeedOrders`` (``nnlib/_kernels/shuffle.pyx``): what ``fit`` draws its epoch orders
  from for an int ``random_state`` (``nnlib._random.shuffle_orders``), promising
  ``np.random.default_rng(seed).permutation(n)`` call after call. The seeds: 0, one-word
  seeds, the 32-bit word boundaries, 2^64 + 5, seeds of four words and of more than four
  (SeedSequence's second mixing loop), NumPy integer scalars, and random ones drawn from
  the run's seed (``--seed``). Each seed is ONE stream, as a fit is: the lengths 0, 1, 2,
  odd ones, powers of two and their neighbours, the edges of the compiled draw's blocks
  of 512 positions, 1797 (the digits data), then ``EPOCHS``
  more orders of 1797, so a state that one order leaves wrong (the spare half of a 64-bit
  draw, a draw too many) shows in the next; some seeds go on to an order of 100000, which
  draws each bound from 1 to 99999 once (every rejection mask, from all-accepting at
  2^k - 1 to half-rejecting at 2^k). The twin (plain Python, a few us per index) follows
  the short lengths of every seed. Not reached: the 64-bit draws, for bounds above
  2^32 - 1 (an order of more than 2^32 rows, 32 GiB).
* ``generator_permutation`` (``nnlib/_kernels/shuffle.pyx``): what ``fit`` draws its
  epoch orders from for a NumPy ``Generator`` on one of NumPy's five bit generators
  (``nnlib._random.epoch_order``), promising ``generator.permutation(n)`` and the state it
  leaves: it runs NumPy's algorithm on the generator's own bit generator. For each bit
  generator (PCG64, PCG64DXSM, MT19937, Philox, SFC64) and seed (0, 1, 2^32 + 1, 2^128 - 1
  and one drawn from the run's seed), ONE stream as a fit draws it: the ``LENGTHS`` above,
  ``EPOCHS`` more orders of 1797, for some seeds one of ``LONG`` (past
  ``GIL_RELEASE_MIN``, where the GIL is let go), each against a second generator of the
  same seed calling ``permutation``; after the stream the two bit generators' states
  must be equal (a buffered half of a 64-bit draw used or left differently shows there
  first), and the twin must agree on the short orders. A negative n must be refused.
* ``first_label_outside`` (``nnlib/_kernels/train.pyx``): fit's check of int64 labels
  before the compiled loops index with them, GIL released; it promises the index of the
  first label outside [0, n_classes), or -1, i.e. the first True of
  ``(y < 0) | (y >= n_classes)``. Cases: empty; all inside; the first, a middle, the last
  label outside; several outside (the first counts); negatives (the kernel folds them into
  its one unsigned comparison); the labels n_classes - 1 and n_classes; n_classes 0 and 1;
  the int64 extremes, also with n_classes = 2^63 - 1; long arrays with one bad label past
  2^16 and at the end; random arrays from the run's seed. A read-only array must be read;
  a strided view, an int32 array and a 2-d array must be refused (the kernel reads a
  contiguous int64 buffer: a view it accepted would be read at the wrong stride).
"""
import time

import numpy as np

from nnlib._paths import path_value
from verify import kernels as K

__all__ = ["ITEM_NAMES", "run_fast_paths", "SEEDS", "LENGTHS", "label_cases",
           "BIT_GENERATORS"]

ITEM_NAMES = ["SeedOrders", "generator_permutation", "first_label_outside"]

M64 = 2**64 - 1
# one-word, word-boundary, four-word and more-than-four-word seeds (SeedSequence reads a
# seed as little-endian 32-bit words and mixes words past the fourth in a second loop)
SEEDS = [0, 1, 2, 7, 42, 12345, 2**31 - 1, 2**32 - 1, 2**32, 2**32 + 1, 2**63, M64,
         2**64 + 5, 2**96 + 1, 2**128 - 1, 2**128, 2**200 + 7, 3**100,
         np.int64(5), np.uint64(M64), np.uint32(2**32 - 1), np.int8(3)]
# one stream per seed: each order continues the state the previous one left
# (S + 1, S + 2, 2 S + 1, S = NN_SHUFFLE_SWAPS (512): SeedOrders' first pass runs blocks
# of S positions; S + 2 leaves a block of one, and in 2 S + 1's first block the next power
# of two down is the block's end)
_SWAPS = path_value("NN_SHUFFLE_SWAPS")
LENGTHS = [0, 1, 2, 3, 5, 16, 17, 255, 256, 257, _SWAPS + 1, _SWAPS + 2, 2 * _SWAPS,
           2 * _SWAPS + 1, 1797]
EPOCHS = 3                  # further orders of LENGTHS[-1] after the stream, as fit draws
LONG = 100_000              # one order this long, after the epochs, for LONG_SEEDS
LONG_SEEDS = (0, 42, 2**64 + 5, 2**200 + 7)
TWIN_LENGTHS = LENGTHS[:7]  # the twin's share of each stream (plain Python is slow)


def _first_difference(got, want):
    """None when ``got`` is ``want`` exactly (int64, same shape, same values), else what
    differs first."""
    got = np.asarray(got)
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"{got.dtype}{got.shape} instead of {want.dtype}{want.shape}"
    bad = np.flatnonzero(got != want)
    if bad.size:
        i = int(bad[0])
        return f"index {i}: {int(got[i])} instead of {int(want[i])} ({bad.size} differ)"
    return None


def _lookup(*paths):
    """The objects ``nnlib.<path>`` (None where missing) and a failure for each missing."""
    found = [K.nnlib_attr(p) for p in paths]
    return found, [f"nnlib.{p} is not available" for p, x in zip(paths, found) if x is None]


def _item(name, t0, failures, passing, rows, statement):
    return {"name": name, "section": "kernels", "kind": "fast path", "passed": not failures,
            "verdict": "pass: " + passing if not failures else
                       f"FAIL ({len(failures)} differ from NumPy's)",
            "rows": rows, "failures": failures[:10],
            "statement": statement + " (verify/fast_paths.py).",
            "seconds": round(time.perf_counter() - t0, 3)}


BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
GENERATOR_SEEDS = (0, 1, 2**32 + 1, 2**128 - 1)


def _same_state(a, b):
    """Whether two bit-generator ``state`` dicts are equal (MT19937's holds an array)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _generator_item(ctx):
    t0 = time.perf_counter()
    (compiled, twin), failures = _lookup("_kernels.shuffle.generator_permutation",
                                         "_reference.shuffle.generator_permutation")
    seeds = list(GENERATOR_SEEDS) + [
        int(np.random.default_rng([s, 0x6E4]).integers(0, 2**63))
        for s in getattr(ctx, "seeds", None) or [ctx.seed]]
    n_streams = n_orders = n_indices = n_twin = 0
    for name in BIT_GENERATORS if not failures else ():
        make = getattr(np.random, name)
        for seed in seeds:
            ours, ref = np.random.Generator(make(seed)), np.random.Generator(make(seed))
            shadow = np.random.Generator(make(seed))        # the twin's own stream
            lengths = LENGTHS + [LENGTHS[-1]] * EPOCHS + ([LONG] if seed in (0, 2**128 - 1)
                                                          else [])
            label = f"{name}({seed})"
            for k, n in enumerate(lengths):
                want = ref.permutation(n)
                diff = _first_difference(compiled(ours, n), want)
                if diff is None and k < len(TWIN_LENGTHS):
                    n_twin += n
                    diff = _first_difference(twin(shadow, n), want)
                    diff = diff and "twin: " + diff
                if diff:
                    failures.append(f"{label}, order {k + 1} of its stream (n = {n}): "
                                    f"{diff}")
                    break
                n_orders, n_indices = n_orders + 1, n_indices + n
            else:
                if not _same_state(ours.bit_generator.state, ref.bit_generator.state):
                    failures.append(f"{label}: after {len(lengths)} orders the bit "
                                    "generator's state differs from the one "
                                    "Generator.permutation leaves")
                n_streams += 1
    refused = []
    if compiled is not None:
        try:
            compiled(np.random.default_rng(0), -1)
            failures.append("generator_permutation(rng, -1) is accepted; NumPy refuses "
                            "it (ValueError)")
        except ValueError:
            refused.append("n = -1")
    rows = [("against Generator.permutation(n), same seed",
             f"{n_orders} orders ({n_indices} indices) equal in {n_streams} streams: "
             f"{', '.join(BIT_GENERATORS)} x {len(seeds)} seeds, each one stream: n = "
             f"{', '.join(map(str, LENGTHS))}, then {EPOCHS} more of {LENGTHS[-1]} (and "
             f"{LONG} for 2 seeds)"),
            ("the bit generator's state after each stream",
             "equal to the one Generator.permutation leaves"),
            ("against the twin nnlib._reference.shuffle.generator_permutation",
             f"equal on the first {len(TWIN_LENGTHS)} orders of every stream "
             f"({n_twin} indices)"),
            ("refused as NumPy refuses it (ValueError)", ", ".join(refused) or "none")]
    return _item("generator_permutation", t0, failures,
                 f"NumPy's orders and states bit for bit, {n_streams} streams, "
                 f"{n_orders} orders", rows,
                 "The compiled generator_permutation draws generator.permutation(n) on "
                 "each of NumPy's bit generators, order after order, and leaves the "
                 "generator's state as that call does")


def _run_seeds(ctx):
    """SEEDS, and three seeds (one, two and eight words) drawn from each of the run's."""
    out = list(SEEDS)
    for s in getattr(ctx, "seeds", None) or [ctx.seed]:
        rng = np.random.default_rng([s, 0x5EED])
        words = rng.integers(0, 2**32, 8).tolist()
        out += [words[0], words[0] | words[1] << 32,
                sum(w << (32 * k) for k, w in enumerate(words))]
    return out


def _seed_orders_item(ctx):
    t0 = time.perf_counter()
    (compiled, twin, shuffle_orders), failures = _lookup(
        "_kernels.shuffle.SeedOrders", "_reference.shuffle.SeedOrders",
        "_random.shuffle_orders")
    seeds = _run_seeds(ctx)
    n_orders = n_indices = n_twin = 0
    for seed in seeds if not failures else []:
        label = f"seed {seed!r}"
        ours, theirs, ref = compiled(seed), twin(seed), np.random.default_rng(seed)
        lengths = LENGTHS + [LENGTHS[-1]] * EPOCHS + ([LONG] if int(seed) in LONG_SEEDS
                                                      else [])
        for k, n in enumerate(lengths):
            want = ref.permutation(n)
            diff = _first_difference(ours.permutation(n), want)
            if diff is None and k < len(TWIN_LENGTHS):
                n_twin += n
                diff = _first_difference(theirs.permutation(n), want)
                diff = diff and "twin: " + diff
            if diff:
                failures.append(f"{label}, order {k + 1} of its stream (n = {n}): {diff}")
                break
            n_orders, n_indices = n_orders + 1, n_indices + n
    # fit's own route to the orders: an int or NumPy integer seed gets the compiled class
    for seed in (5, np.int64(5), np.uint32(5)) if None not in (compiled, shuffle_orders) \
            else ():
        got = shuffle_orders(seed)
        if type(got) is not compiled:
            failures.append(f"shuffle_orders({seed!r}) gives {type(got).__name__}, not the "
                            "compiled SeedOrders")
    refused = []
    for what, call in (("SeedOrders(-1)", lambda: compiled(-1)),
                       ("SeedOrders(0).permutation(-1)", lambda: compiled(0).permutation(-1))
                       ) if compiled is not None else ():
        try:
            call()
            failures.append(f"{what} is accepted; NumPy refuses it (ValueError)")
        except ValueError:
            refused.append(what)
        except Exception as exc:
            failures.append(f"{what} raises {exc!r}; NumPy raises ValueError")
    rows = [("against np.random.default_rng(seed).permutation(n)",
             f"{n_orders} orders ({n_indices} indices) equal, {len(seeds)} seeds, each one "
             f"stream: n = {', '.join(map(str, LENGTHS))}, then {EPOCHS} more of "
             f"{LENGTHS[-1]} (and {LONG} for {len(LONG_SEEDS)} seeds)"),
            ("against the twin nnlib._reference.shuffle.SeedOrders",
             f"equal on the first {len(TWIN_LENGTHS)} orders of every stream "
             f"({n_twin} indices)"),
            ("fit's route (nnlib._random.shuffle_orders)",
             "int, int64 and uint32 seeds get the compiled SeedOrders"),
            ("refused as NumPy refuses them (ValueError)", ", ".join(refused) or "none")]
    return _item("SeedOrders", t0, failures,
                 f"NumPy's orders bit for bit, {len(seeds)} seeds, {n_orders} orders", rows,
                 "The compiled SeedOrders draws np.random.default_rng(seed).permutation(n), "
                 "order after order, bit for bit")


def label_cases(rng):
    """[(description, int64 labels, n_classes)] for first_label_outside."""
    big, small = 2**63 - 1, -2**63
    cases = [("empty", [], 3), ("all inside", [0, 1, 2, 1, 0], 3),
             ("the first outside", [3, 0, 1], 3), ("a middle one outside", [0, 1, 5, 2], 3),
             ("the last outside", [0, 1, 2, 3], 3), ("negative", [0, 2, -1, 1], 3),
             ("several outside: the first counts", [1, 4, -1, 9], 3),
             ("n_classes - 1 inside", [2, 0, 2], 3), ("n_classes outside", [2, 0, 3, 2], 3),
             ("n_classes = 1", [0, 0, 1], 1), ("n_classes = 0: every label outside", [0], 0),
             ("n_classes < 0: every label outside", [1, -3], -2),
             ("int64 min", [0, small, 1], 3), ("int64 max", [1, big], 3),
             ("n_classes = int64 max", [0, big - 1, big], big),
             ("n_classes = int64 max, negatives", [big - 1, -1, small], big)]
    cases = [(d, np.array(y, dtype=np.int64), c) for d, y, c in cases]
    long = np.arange(LONG, dtype=np.int64) % 10
    for at in (65536, LONG - 1):
        y = long.copy()
        y[at] = 10 if at % 2 else -1
        cases.append((f"{LONG} labels, one outside at {at}", y, 10))
    cases.append((f"{LONG} labels, all inside", long, 10))
    for n in (1, 7, 64, 1000):             # one label outside at a random place
        y = rng.integers(0, 10, n)
        y[rng.integers(n)] = rng.choice([-1, 10, 11, small, big])
        cases.append((f"random, n = {n}", y.astype(np.int64), 10))
    cases.append(("random, every label drawn from [-1, 11)",
                  rng.integers(-1, 11, 64).astype(np.int64), 10))
    y = long.copy()
    y.flags.writeable = False
    cases.append(("read-only", y, 9))
    return cases


def _plain(y, n_classes):
    """The promise as a plain NumPy expression."""
    bad = (y < 0) | (y >= n_classes)
    return int(np.argmax(bad)) if bad.any() else -1


def _labels_item(ctx):
    t0 = time.perf_counter()
    (compiled, twin), failures = _lookup("_kernels.train.first_label_outside",
                                         "_reference.train.first_label_outside")
    runs = [label_cases(np.random.default_rng([s, 0x1ABE1]))
            for s in getattr(ctx, "seeds", None) or [ctx.seed]]
    n_cases = 0
    for what, y, n_classes in [c for run in runs for c in run] if not failures else []:
        want = _plain(y, n_classes)
        got, by_twin = compiled(y, n_classes), twin(y, n_classes)
        if got != want or by_twin != want:
            failures.append(f"{what} (n_classes = {n_classes}): compiled {got}, twin "
                            f"{by_twin}, NumPy's (y < 0) | (y >= n_classes) {want}")
        n_cases += 1
    labels = np.arange(12, dtype=np.int64)
    refused = []
    for what, y in (("a strided view y[::2]", labels[::2]),
                    ("int32 labels", labels.astype(np.int32)),
                    ("2-d labels", labels.reshape(3, 4))) if compiled is not None else ():
        try:
            got = compiled(y, 20)
            failures.append(f"{what} is accepted (returns {got}); the kernel reads a "
                            "contiguous int64 buffer")
        except (ValueError, TypeError, BufferError):
            refused.append(what)
    rows = [("against (y < 0) | (y >= n_classes) and the twin",
             f"{n_cases} cases equal ({len(runs)} run seed(s)): "
             + "; ".join(d for d, _, _ in runs[0])),
            ("refused (not a contiguous 1-d int64 buffer)", ", ".join(refused) or "none")]
    return _item("first_label_outside", t0, failures,
                 f"{n_cases} cases equal to NumPy's", rows,
                 "The compiled first_label_outside returns the index of the first label "
                 "outside [0, n_classes), or -1, exactly as NumPy and the twin do")


def run_fast_paths(ctx):
    """One item per compiled shortcut of the fit path (``ITEM_NAMES``)."""
    items = []
    if ctx.wanted("SeedOrders"):
        items.append(_seed_orders_item(ctx))
    if ctx.wanted("generator_permutation"):
        items.append(_generator_item(ctx))
    if ctx.wanted("first_label_outside"):
        items.append(_labels_item(ctx))
    return items
