"""One contour level of a field sampled on a grid (marching squares), for the decision
boundaries of the XOR figures."""
import numpy as np

__all__ = ["contour_segments"]

# For each cell, its corners are numbered 0 (x0, y0), 1 (x1, y0), 2 (x1, y1), 3 (x0, y1)
# and its edges 0 (bottom: 0-1), 1 (right: 1-2), 2 (top: 2-3), 3 (left: 3-0). A corner
# is "above" when its value >= the level; the cases (bit k: corner k above) list the
# pairs of edges the level line joins. The two saddles (5 and 10) are resolved by the
# cell's mean, as matplotlib's contour does by default (corner_mask aside).
_EDGE = ((0, 1), (1, 2), (2, 3), (3, 0))
_CASES = {0: (), 15: (), 1: ((3, 0),), 14: ((3, 0),), 2: ((0, 1),), 13: ((0, 1),),
          3: ((3, 1),), 12: ((3, 1),), 4: ((1, 2),), 11: ((1, 2),), 6: ((0, 2),),
          9: ((0, 2),), 7: ((3, 2),), 8: ((3, 2),)}


def contour_segments(x, y, z, level):
    """Line segments ``[((xa, ya), (xb, yb)), ...]`` where the field ``z`` (shape
    (len(y), len(x)): ``z[i, j]`` at ``(x[j], y[i])``) crosses ``level``, linearly
    interpolated along the cell edges.

    Examples
    --------
    >>> x = y = np.array([0.0, 1.0])
    >>> contour_segments(x, y, np.array([[0.0, 1.0], [0.0, 1.0]]), 0.5)
    [((0.5, 0.0), (0.5, 1.0))]
    """
    x, y, z = (np.asarray(a, float) for a in (x, y, z))
    above = z >= level
    segs = []
    ny, nx = z.shape
    for i in range(ny - 1):
        row = above[i:i + 2]
        if row.all() or not row.any():
            continue
        for j in range(nx - 1):
            corners = ((j, i), (j + 1, i), (j + 1, i + 1), (j, i + 1))
            vals = [z[b, a] for a, b in corners]
            case = sum(1 << k for k, v in enumerate(vals) if v >= level)
            if case in (0, 15):
                continue
            if case in (5, 10):
                centre_above = sum(vals) / 4 >= level
                # 5: corners 0 and 2 above; joined through the centre when it is above
                if (case == 5) == centre_above:
                    pairs = ((0, 1), (2, 3))
                else:
                    pairs = ((3, 0), (1, 2))
            else:
                pairs = _CASES[case]

            def cross(edge):
                a, b = _EDGE[edge]
                (xa, ya), (xb, yb) = corners[a], corners[b]
                va, vb = vals[a], vals[b]
                t = (level - va) / (vb - va)
                return (float(x[xa] + t * (x[xb] - x[xa])), float(y[ya] + t * (y[yb] - y[ya])))
            segs.extend((cross(e0), cross(e1)) for e0, e1 in pairs)
    return segs
