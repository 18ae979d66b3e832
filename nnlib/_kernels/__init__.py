"""Compiled kernels (Cython). Private: use :mod:`nnlib.functional` and the model API."""
