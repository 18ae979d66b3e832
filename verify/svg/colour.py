"""Colours of the SVG figures: matplotlib's default colour cycle, the two colour maps the
figures use (coolwarm, Blues) from the control points matplotlib builds them from, its
TwoSlopeNorm, and an RGB(A) image written as a PNG data URI.

A colour map is matplotlib's: a 256-entry table interpolated linearly between its
control points at i / 255, looked up at ``min(int(x * 256), 255)``.
"""
import base64
import struct
import zlib

import numpy as np

__all__ = ["CYCLE", "grey", "to_hex", "Colormap", "COOLWARM", "BLUES", "TwoSlopeNorm",
           "Normalize", "png_bytes", "png_data_uri"]

# matplotlib's default property cycle, "C0".."C9" (tab10)
CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#7f7f7f", "#bcbd22", "#17becf")


def grey(level):
    """matplotlib's colour "0.93" (a grey level as a string) as #rrggbb."""
    v = round(float(level) * 255)
    return f"#{v:02x}{v:02x}{v:02x}"


def to_hex(rgb):
    """An (r, g, b) of floats in [0, 1] as #rrggbb (rounded as matplotlib's to_hex)."""
    return "#" + "".join(f"{int(round(float(c) * 255)):02x}" for c in rgb[:3])


# coolwarm: Kenneth Moreland's CoolWarmFloat33 ("Diverging Color Maps for Scientific
# Visualization"), 33 control points at k / 32, as matplotlib's _cm._coolwarm_data
_COOLWARM_POINTS = (
    (0.2298057, 0.298717966, 0.753683153), (0.26623388, 0.353094838, 0.801466763),
    (0.30386891, 0.406535296, 0.84495867), (0.342804478, 0.458757618, 0.883725899),
    (0.38301334, 0.50941904, 0.917387822), (0.424369608, 0.558148092, 0.945619588),
    (0.46666708, 0.604562568, 0.968154911), (0.509635204, 0.648280772, 0.98478814),
    (0.552953156, 0.688929332, 0.995375608), (0.596262162, 0.726149107, 0.999836203),
    (0.639176211, 0.759599947, 0.998151185), (0.681291281, 0.788964712, 0.990363227),
    (0.722193294, 0.813952739, 0.976574709), (0.761464949, 0.834302879, 0.956945269),
    (0.798691636, 0.849786142, 0.931688648), (0.833466556, 0.860207984, 0.901068838),
    (0.865395197, 0.86541021, 0.865395561), (0.897787179, 0.848937047, 0.820880546),
    (0.924127593, 0.827384882, 0.774508472), (0.944468518, 0.800927443, 0.726736146),
    (0.958852946, 0.769767752, 0.678007945), (0.96732803, 0.734132809, 0.628751763),
    (0.969954137, 0.694266682, 0.579375448), (0.966811177, 0.650421156, 0.530263762),
    (0.958003065, 0.602842431, 0.481775914), (0.943660866, 0.551750968, 0.434243684),
    (0.923944917, 0.49730856, 0.387970225), (0.89904617, 0.439559467, 0.343229596),
    (0.869186849, 0.378313092, 0.300267182), (0.834620542, 0.312874446, 0.259301199),
    (0.795631745, 0.24128379, 0.220525627), (0.752534934, 0.157246067, 0.184115123),
    (0.705673158, 0.01555616, 0.150232812))

# Blues: ColorBrewer's 9-class sequential blues (Cynthia Brewer, colorbrewer2.org; RGB
# from Brewer's sheet, / 255), evenly spaced, as matplotlib's _cm._Blues_data
_BLUES_POINTS = (
    (247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214),
    (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107))


class Colormap:
    """A matplotlib colour map of 256 entries: ``cmap(x)`` is an (..., 3) array of RGB in
    [0, 1] for x in [0, 1] (clipped; NaN maps to 0)."""

    N = 256

    def __init__(self, name, points):
        self.name = name
        pts = np.asarray(points, float)
        at = np.linspace(0.0, 1.0, len(pts))
        grid = np.arange(self.N) / (self.N - 1)
        self.lut = np.stack([np.interp(grid, at, pts[:, c]) for c in range(3)], axis=1)

    def __call__(self, x):
        x = np.nan_to_num(np.asarray(x, float), nan=0.0)
        idx = np.clip((x * self.N).astype(int), 0, self.N - 1)
        return self.lut[idx]


COOLWARM = Colormap("coolwarm", _COOLWARM_POINTS)
BLUES = Colormap("Blues", np.array(_BLUES_POINTS) / 255)


class Normalize:
    """matplotlib's Normalize: ``vmin`` .. ``vmax`` to 0 .. 1 (a constant field: 0)."""

    def __init__(self, vmin, vmax):
        self.vmin, self.vmax = float(vmin), float(vmax)

    def __call__(self, v):
        v = np.asarray(v, float)
        if self.vmax == self.vmin:
            return np.zeros_like(v)
        return (v - self.vmin) / (self.vmax - self.vmin)


class TwoSlopeNorm(Normalize):
    """matplotlib's TwoSlopeNorm: ``vmin`` .. ``vcenter`` to 0 .. 0.5 and ``vcenter`` ..
    ``vmax`` to 0.5 .. 1, each side linear (a diverging map centred on vcenter)."""

    def __init__(self, vcenter, vmin, vmax):
        if not vmin < vcenter < vmax:
            raise ValueError("vmin, vcenter and vmax must be in ascending order")
        super().__init__(vmin, vmax)
        self.vcenter = float(vcenter)

    def __call__(self, v):
        return np.interp(np.asarray(v, float), [self.vmin, self.vcenter, self.vmax],
                         [0.0, 0.5, 1.0])


def _png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data)))


def png_bytes(pixels):
    """The (h, w, 3) or (h, w, 4) uint8 ``pixels`` (top row first) as an 8-bit RGB(A)
    PNG: each row filtered by "Up" (its difference from the row above, computed by
    NumPy), zlib level 6."""
    h, w, c = pixels.shape
    rows = np.ascontiguousarray(pixels, np.uint8).reshape(h, c * w)
    raw = np.empty((h, c * w + 1), np.uint8)
    raw[:, 0] = 2                      # filter type 2, Up (the first row: from zeros)
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])      # modulo 256, as PNG's Up
    return (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6 if c == 4 else 2,
                                              0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + _png_chunk(b"IEND", b""))


def png_data_uri(pixels):
    """``pixels`` (see :func:`png_bytes`) as a ``data:image/png;base64`` URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")
