"""nnlib.datasets: small data sets for the notes' examples, generated or shipped.

* ``make_xor`` — the XOR truth table (the notes' example of a problem no single
  linear unit solves);
* the TensorFlow Playground's 2-d sets: ``make_circle``, ``make_gaussians``,
  ``make_playground_xor``, ``make_spiral`` (seeded, with the Playground's noise);
* ``load_digits`` — the 8x8 handwritten digits (UCI, CC BY 4.0), shipped in the package;
* ``split`` — a seeded, optionally stratified train/test split.
"""
from nnlib.datasets._digits import load_digits
from nnlib.datasets._playground import (make_circle, make_gaussians, make_playground_xor,
                                        make_spiral, make_xor)
from nnlib.datasets._split import split

__all__ = ["make_xor", "make_circle", "make_gaussians", "make_playground_xor",
           "make_spiral", "load_digits", "split"]
