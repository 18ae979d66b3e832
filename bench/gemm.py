"""This machine's matrix-multiply limit: NumPy float32 (sgemm) and float64 (dgemm)
products of big squares, in GFLOP/s (2 n^3 flops per product). NumPy calls the same
OpenBLAS that nnlib's dense layers use, so this is the ceiling large-batch training can
approach."""
import time

import numpy as np

__all__ = ["gemm_gflops"]


def gemm_gflops(n, dtype=np.float32, repeats=5, seed=0):
    """GFLOP/s of ``A @ B`` for n x n matrices: {"n", "samples", "median", "best"}."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    C = np.empty((n, n), dtype=dtype)
    np.matmul(A, B, out=C)  # warm-up: threads started, pages touched
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(A, B, out=C)
        rates.append(2.0 * n ** 3 / (time.perf_counter() - t) / 1e9)
    rates.sort()
    return {"n": n, "dtype": np.dtype(dtype).name, "samples_gflops": rates,
            "median": rates[len(rates) // 2], "best": rates[-1]}
