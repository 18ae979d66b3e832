"""Epoch time of nnlib's compiled training loop (and the GEMM limit it is held to).

    python bench/model_speed.py            # digits 64-100-10 at batch 1/32/256, large net
    python bench/model_speed.py --quick    # fewer repeats
    python bench/model_speed.py --gemm     # own small loops vs BLAS at the dense shapes

Digits: 1797x64 (X / 16), MLP 64-100-10 relu, softmax cross-entropy, plain SGD lr 0.1,
float64 (NumPy's default, what the peers' numbers in issue 5 use) and float32.
Large: 784-512-512-10 relu, batch 256, float32, 16384 synthetic rows; the fraction of
the machine's sgemm throughput reached, training FLOPs = 6 x weights x samples.
Each figure is the median (and min) over repeated epochs after a warm-up epoch.
"""
import argparse
import json
import sys
import time

import numpy as np

import nnlib
from nnlib.optim import SGD


def _model(sizes, dtype, seed=0):
    layers = [nnlib.Dense(sizes[i], sizes[i + 1], "relu" if i < len(sizes) - 2 else
                          "identity", init="he_uniform", dtype=dtype,
                          random_state=seed + i) for i in range(len(sizes) - 1)]
    return nnlib.Sequential(layers)


def epoch_times(sizes, X, y, batch_size, dtype, repeats, lr=0.1, n_threads=None):
    model = _model(sizes, dtype)
    X = X.astype(dtype)
    cpu = time.process_time()
    hist = model.fit(X, y, optimizer=SGD(lr=lr), epochs=repeats + 1, batch_size=batch_size,
                     random_state=0, n_threads=n_threads)
    cpu = (time.process_time() - cpu) / (repeats + 1)
    t = np.array(hist["time"][1:])
    return float(np.median(t)), float(t.min()), hist["loss"][-1], cpu


def sgemm_gflops(n=1024, repeats=5):
    """The machine's sgemm rate now: the better of one BLAS thread and all of them (on
    a busy machine one thread wins; fit makes the same choice, see nnlib.model)."""
    from nnlib._kernels import blas
    blas.load()
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    rates = []
    old = blas.get_num_threads()
    try:
        for threads in sorted({1, old or 1}):
            blas.set_num_threads(threads)
            a @ a
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                a @ a
                ts.append(time.perf_counter() - t)
            rates.append(2 * n ** 3 / np.median(ts) / 1e9)
    finally:
        if old:
            blas.set_num_threads(old)
    return max(rates)


def gemm_table():
    """Dense forward at batch 1..64 through the functional API (includes ~5 us of Python
    wrapper): shows where BLAS starts to win over the plain loops."""
    from nnlib.functional import dense_forward
    rng = np.random.default_rng(0)
    print(f"{'n x n_in x n_out':>20} {'us/call':>10}")
    for n in (1, 2, 4, 8, 16, 32, 64, 256):
        for n_in, n_out in ((64, 100), (100, 10), (512, 512)):
            X = rng.standard_normal((n, n_in))
            W = rng.standard_normal((n_in, n_out))
            b = np.zeros(n_out)
            ts = []
            for _ in range(200):
                t = time.perf_counter()
                dense_forward(X, W, b)
                ts.append(time.perf_counter() - t)
            print(f"{f'{n}x{n_in}x{n_out}':>20} {np.median(ts) * 1e6:10.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gemm", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if args.gemm:
        gemm_table()
        return
    reps = 5 if args.quick else 20
    X, y = nnlib.datasets.load_digits()
    X = X / 16
    rows = []
    import os
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (cpu ms: process "
          f"CPU time per epoch, all threads; wall >> cpu means the machine is busy)")
    print(f"{'workload':<40} {'median ms':>10} {'min ms':>9} {'cpu ms':>8} {'final loss':>11}")
    for dtype in (np.float64, np.float32):
        for bs in (1, 32, 256):
            med, mn, loss, cpu = epoch_times([64, 100, 10], X, y, bs, dtype, reps)
            name = f"digits 64-100-10 b{bs} {np.dtype(dtype).name}"
            rows.append({"workload": name, "median_s": med, "min_s": mn, "cpu_s": cpu})
            print(f"{name:<40} {med * 1e3:10.3f} {mn * 1e3:9.3f} {cpu * 1e3:8.3f} "
                  f"{loss:11.4f}")
    rng = np.random.default_rng(0)
    Xl = rng.standard_normal((16384, 784)).astype(np.float32)
    yl = rng.integers(0, 10, 16384)
    sizes = [784, 512, 512, 10]
    med, mn, _, cpu = epoch_times(sizes, Xl, yl, 256, np.float32, 2 if args.quick else 5,
                                  lr=0.01)
    n_w = sum(sizes[i] * sizes[i + 1] for i in range(3))
    gf = 6 * n_w * 16384 / med / 1e9
    peak = sgemm_gflops()
    name = "784-512-512-10 b256 float32"
    rows.append({"workload": name, "median_s": med, "min_s": mn,
                 "samples_per_s": 16384 / med, "gflops": gf, "sgemm_gflops": peak})
    print(f"{name:<40} {med * 1e3:10.1f} {mn * 1e3:9.1f} {cpu * 1e3:8.1f}   "
          f"{16384 / med / 1e3:.1f}k samples/s, {gf:.0f} GFLOP/s = "
          f"{100 * gf / peak:.0f}% of sgemm ({peak:.0f} GFLOP/s, 1024^3)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
