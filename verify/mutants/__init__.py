"""Mutation self-test of verify: does ``python -m verify --quick`` fail on a wrong kernel?

``python -m verify.mutants`` applies each fault of a catalogue of single, plausible slips
(``verify.mutants.catalogue``: a dropped mean, a wrong factor, an off-by-one at a branch
threshold, a tie broken the other way, a kink convention changed, a cancellation-prone
rewrite, a float32 rounding change), one at a time, to a scratch copy of the tree,
rebuilds only what changed, runs ``python -m verify --quick`` there and prints the kill
rate (``verify.mutants.harness``). It rebuilds, so it is not part of CI; the catalogue's
anchors are (tests/test_verify_mutants.py), so a kernel edit that orphans a fault fails
the test suite.
"""
