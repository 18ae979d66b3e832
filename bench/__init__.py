"""bench: nnlib measured against PyTorch (CPU, eager), scikit-learn's MLP and plain NumPy.

Run ``python -m bench [--quick] [--only NAME ...] [--out DIR]`` (or ``nnlib-bench``). Each
workload is a small module here (``import_time``, ``per_sample``, ``minibatch``, ``large``,
``kernels``, ``scaling``, ``verify_time``); the runner (``bench.__main__``) fixes the thread
count, times every peer interleaved (``bench.timing``) and writes ``results.json``,
``results.md`` and PNG plots (``bench.report``).

Nothing is imported here: the runner must set the thread environment variables before
NumPy (and its OpenBLAS) is loaded.
"""
