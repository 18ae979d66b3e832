"""The report's figures as SVG, written without a plotting library (NumPy only).

:class:`Figure` and :class:`Axes` (verify.svg.figure) draw one row of axes in the look of
matplotlib's defaults; verify.svg.ticks places and labels the ticks as matplotlib's default
locators do, verify.svg.colour holds the colour maps and writes images as PNG, verify.svg.contour
traces one contour level, verify.svg.text estimates text widths. verify.plots draws the
report's figures with them.
"""
from verify.svg.colour import BLUES, COOLWARM, CYCLE, Normalize, TwoSlopeNorm, grey
from verify.svg.figure import Axes, Figure

__all__ = ["Figure", "Axes", "CYCLE", "COOLWARM", "BLUES", "Normalize", "TwoSlopeNorm", "grey"]
