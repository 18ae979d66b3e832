"""A short tour of nnlib, run by python -m nnlib.demo (the README's main command).

1. The notes' XOR threshold network with hand-set weights computes XOR.
2. A 2-4-1 tanh network learns XOR by per-sample SGD.
3. A 2-32-32-3 network learns the 2-d spiral.
4. A 64-100-10 relu network learns the 8x8 digits (>= 97 % test accuracy); timed per
   epoch; saved and reloaded exactly.

Each step checks its own result and the process exits non-zero if one fails, so the
demonstration is also a smoke test of an installed nnlib.
"""
import os
import sys
import tempfile
import time

import numpy as np

import nnlib
from nnlib import datasets, optim


def _accuracy(model, X, y):
    return float(np.mean(np.argmax(model.predict(X), axis=1) == y))


def xor_by_hand():
    X, y = datasets.make_xor(signed=True)            # the sign networks take -1/+1 inputs
    results = []
    for which in ("lecture13", "ist-lecture5", "or-and"):
        out = np.asarray(nnlib.ThresholdNetwork.xor_from_notes(which).predict(X)).ravel()
        results.append(np.array_equal((out > 0).astype(int), y))
    return ("the notes' three hand-set XOR sign networks", all(results),
            f"compute XOR: {results}")


def xor_learned():
    X, y = datasets.make_xor()
    model = nnlib.Sequential([nnlib.Dense(2, 4, "tanh", random_state=0),
                              nnlib.Dense(4, 1, "identity", random_state=1)])
    model.fit(X, y, loss="logistic_loss", optimizer=optim.SGD(lr=0.1, momentum=0.9),
              epochs=500, batch_size=1, random_state=0)
    pred = (model.predict(X).ravel() > 0).astype(int)
    return "2-4-1 tanh net learns XOR (SGD, batch 1)", np.array_equal(pred, y), \
        f"predictions {pred.tolist()}"


def spiral():
    X, y = datasets.make_spiral(600, noise=0.1, random_state=0)
    Xtr, Xte, ytr, yte = datasets.split(X, y, test_size=0.25, random_state=0, stratify=y)
    n_classes = int(y.max()) + 1
    model = nnlib.Sequential([nnlib.Dense(2, 32, "tanh", random_state=0),
                              nnlib.Dense(32, 32, "tanh", random_state=1),
                              nnlib.Dense(32, n_classes, random_state=2)])
    model.fit(Xtr, ytr, optimizer=optim.Adam(lr=0.01), epochs=300, batch_size=32,
              random_state=0)
    acc = _accuracy(model, Xte, yte)
    return "spiral, 2-32-32-3 tanh, Adam", acc >= 0.95, f"test accuracy {acc:.3f}"


def digits():
    X, y = datasets.load_digits()
    Xtr, Xte, ytr, yte = datasets.split(X, y, test_size=0.25, random_state=0, stratify=y)
    mean, std = Xtr.mean(axis=0), Xtr.std(axis=0) + 1e-8   # standardize on the train part
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    model = nnlib.Sequential([nnlib.Dense(64, 100, "relu", init="he_uniform", random_state=0),
                              nnlib.Dense(100, 10, random_state=1)])
    history = model.fit(Xtr, ytr, optimizer=optim.Adam(lr=1e-3), epochs=60,
                        batch_size=32, random_state=0)
    epoch_ms = 1e3 * float(np.median(history["time"]))
    acc = _accuracy(model, Xte, yte)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.npz")
        model.save(path)
        same = np.array_equal(nnlib.load(path).predict(Xte), model.predict(Xte))
    detail = (f"test accuracy {acc:.3f}, median epoch {epoch_ms:.2f} ms "
              f"({len(Xtr)} samples, batch 32), save/load exact: {same}")
    return "digits, 64-100-10 relu, Adam", acc >= 0.97 and same, detail


def _parser():
    import argparse
    doc = __doc__.split("\n", 1)
    return argparse.ArgumentParser(
        prog="python -m nnlib.demo", description=doc[0],
        epilog=doc[1].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)


def main(argv=None):
    """Run the demonstration; ``argv`` as on the command line (``--help`` only)."""
    _parser().parse_args(argv or [])
    print(f"nnlib {nnlib.__version__} demonstration")
    failed = 0
    for step in (xor_by_hand, xor_learned, spiral, digits):
        t0 = time.perf_counter()
        name, ok, detail = step()
        failed += not ok
        print(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail} "
              f"({time.perf_counter() - t0:.2f} s)")
    print("all demonstrations passed" if not failed else f"{failed} demonstration(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
