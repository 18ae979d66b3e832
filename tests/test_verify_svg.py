"""verify.svg's primitives against matplotlib's values (written here as constants: the
tests import no matplotlib): tick locations and labels, log ticks, colour maps and
norms, the contour of known fields, text widths, and a figure's SVG."""
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from verify.svg import BLUES, COOLWARM, Figure, Normalize, TwoSlopeNorm
from verify.svg.colour import png_bytes, to_hex
from verify.svg.contour import contour_segments
from verify.svg.text import text_width
from verify.svg.ticks import linear_labels, linear_ticks, log_ticks, tick_space

# (view, nbins) -> MaxNLocator(nbins, steps=[1, 2, 2.5, 5, 10]).tick_values, in view
LINEAR = [((0.0, 1.0), 5, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
          ((-5.5, 5.5), 9, [-4, -2, 0, 2, 4]),
          ((-1.0, 21.0), 8, [0, 5, 10, 15, 20]),
          ((-1.0, 21.0), 9, [0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20]),
          ((-0.055, 1.155), 9, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
          ((1000.2, 1000.9), 4, [1000.2, 1000.4, 1000.6, 1000.8]),
          ((-2.2e-6, 3.1e-6), 6, [-2e-6, -1e-6, 0, 1e-6, 2e-6, 3e-6])]


@pytest.mark.parametrize("view, nbins, expected", LINEAR,
                         ids=[f"{v[0]}..{v[1]}/{n}" for v, n, _ in LINEAR])
def test_linear_ticks_are_matplotlibs(view, nbins, expected):
    ticks, _ = linear_ticks(*view, nbins)
    assert np.allclose(ticks, expected, rtol=0, atol=1e-12 * max(map(abs, view)))


LABELS = [([0.0, 0.25, 0.5, 0.75], 0.25, ["0.00", "0.25", "0.50", "0.75"], ""),
          ([-2.0, 0.0, 2.0], 2.0, ["−2", "0", "2"], ""),
          ([0.0, 1e-6, 2e-6], 1e-6, ["0", "1", "2"], "1e−6"),
          ([0.0, 5e6, 1e7], 5e6, ["0.0", "0.5", "1.0"], "1e7"),
          ([0.0, 0.5, 1.0], 0.5, ["0.0", "0.5", "1.0"], "")]


@pytest.mark.parametrize("ticks, step, labels, offset", LABELS,
                         ids=[str(t[-1]) for t, *_ in LABELS])
def test_linear_labels_are_scalar_formatters(ticks, step, labels, offset):
    assert linear_labels(ticks, step) == (labels, offset)


# (log10 view, n_request) -> LogLocator's major decades in view (matplotlib 3.8+)
LOG = [((-3.2, 1.5), 9, [-3, -2, -1, 0, 1]),
       ((-4.1, -1.9), 9, [-4, -3, -2]),
       ((-300.0, 300.0), 6, [-300, -180, -60, 60, 180, 300]),
       ((-3.0, 20.0), 9, [-3, 0, 3, 6, 9, 12, 15, 18]),
       ((0.1, 0.9), 5, [])]


@pytest.mark.parametrize("view, n, decades", LOG, ids=[f"{v[0]}..{v[1]}" for v, *_ in LOG])
def test_log_ticks_are_logLocators(view, n, decades):
    major, minor = log_ticks(*view, n)
    assert [lab for _, lab in major] == [("10", e) for e in decades]
    assert all(math.isclose(v, 10.0 ** e) for (v, _), e in zip(major, decades))


def test_log_minor_ticks_and_their_labels():
    major, minor = log_ticks(-3.2, 1.5, 9)
    assert len(minor) == 37 and all(lab is None for _, lab in minor)   # 4.7 decades
    assert log_ticks(-3.0, 20.0, 9)[1] == []                  # 23 decades: none
    assert log_ticks(-3.0, 1.0, 9, minor=False)[1] == []
    _, minor = log_ticks(-0.6, -0.1, 5)                        # half a decade: a subset
    assert [lab for _, lab in minor if lab] == [("3×10", -1), ("4×10", -1), ("6×10", -1)]


def test_tick_space_is_matplotlibs_estimate():
    fs = 8.5 * 100 / 72
    assert tick_space(310, fs, True) == 8 and tick_space(230, fs, False) == 9


# matplotlib.colormaps[name](x)[:3] at x = 0, 0.25, 0.5, 0.75, 1
COLOURS = {"coolwarm": [(0.2298057, 0.298717966, 0.753683153),
                        (0.5543118699137254, 0.6900970112156862, 0.9955155482352941),
                        (0.8674276350862745, 0.864376599772549, 0.8626024620196079),
                        (0.9566532109764706, 0.598033822717647, 0.4773022923529412),
                        (0.705673158, 0.01555616, 0.150232812)],
           "Blues": [(0.9686274509803922, 0.984313725490196, 1.0),
                     (0.7752402921953095, 0.8583006535947711, 0.9368242983467897),
                     (0.41708573625528644, 0.6806305267204922, 0.8382314494425221),
                     (0.1271049596309112, 0.4401845444059977, 0.7074971164936563),
                     (0.03137254901960784, 0.18823529411764706, 0.4196078431372549)]}


@pytest.mark.parametrize("cmap", [COOLWARM, BLUES], ids=lambda c: c.name)
def test_colour_maps_are_matplotlibs(cmap):
    got = cmap(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert np.allclose(got, COLOURS[cmap.name], rtol=0, atol=1e-12)
    assert np.array_equal(cmap(np.array([-1.0, 2.0, np.nan])), cmap(np.array([0.0, 1.0, 0.0])))
    assert to_hex(COOLWARM(0.5)) == "#dddcdc" and to_hex(BLUES(1.0)) == "#08306b"


def test_norms():
    n = TwoSlopeNorm(0.0, -1.0, 3.0)
    assert np.allclose(n(np.array([-1.0, -0.5, 0.0, 1.5, 3.0])), [0, 0.25, 0.5, 0.75, 1.0])
    assert float(n(1.5)) == 0.75
    with pytest.raises(ValueError):
        TwoSlopeNorm(5.0, -1.0, 3.0)
    assert np.allclose(Normalize(2.0, 4.0)(np.array([2.0, 3.0, 4.0])), [0, 0.5, 1])
    assert np.all(Normalize(1.0, 1.0)(np.array([1.0, 1.0])) == 0)


def test_contour_of_known_fields():
    g = np.linspace(-1.0, 1.0, 41)
    X, Y = np.meshgrid(g, g)
    segs = contour_segments(g, g, X ** 2 + Y ** 2, 0.25)      # the circle of radius 1/2
    r = np.hypot(*np.array(segs).reshape(-1, 2).T)
    assert len(segs) > 40 and np.all(np.abs(r - 0.5) < 2e-3)
    segs = contour_segments(g, g, X + 2 * Y, 0.3)             # a straight line
    pts = np.array(segs).reshape(-1, 2)
    assert np.allclose(pts[:, 0] + 2 * pts[:, 1], 0.3)
    assert contour_segments(g, g, X * 0 + 1.0, 0.5) == []      # never crossed
    saddle = np.array([[1.0, 0.0], [0.0, 1.0]])                # corners 0 and 2 above
    assert len(contour_segments([0.0, 1.0], [0.0, 1.0], saddle, 0.4)) == 2


def test_text_widths_are_dejavu_sans_advances():
    # matplotlib's DejaVu Sans advances (FT2Font, 1/1000 em) summed, at 10 px
    assert text_width("0.5", 10) == pytest.approx(15.9)
    assert text_width("Ag x", 10) == pytest.approx((684 + 635 + 318 + 592) / 100)
    assert text_width("WiW", 8.5) == pytest.approx(8.5 * (989 + 278 + 989) / 1000)
    assert text_width("≤ 6", 12) == pytest.approx(12 * (838 + 318 + 636) / 1000)


def test_a_figure_is_well_formed_svg_of_its_data():
    fig = Figure(6, 4, 2, suptitle="a & b < c")
    ax = fig.axes
    ax[0].plot([0, 1, 2], [1, 4, 9], "#000", marker="o", label="squares")
    ax[0].title = "left"
    ax[1].yscale = "log"
    ax[1].plot([1, 2, 3], [1e-3, 1, 1e3], "#d62728", ls="--", label="powers")
    twin = ax[0].twinx()
    twin.yscale = "log"
    twin.plot([0, 1, 2], [1, 10, 100], "#1f77b4")
    ax[1].image(np.zeros((2, 2, 3), np.uint8), (1, 3, 1e-3, 1e3))
    fig.legend(ax, ncol=2)
    svg = fig.svg()
    root = ET.fromstring(svg)                                  # escaped, well-formed
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "a & b < c" in texts and "squares" in texts and "powers" in texts
    assert "100" in texts or "10" in " ".join(texts)
    ax[0].items[0] = ("plot", np.array([0.0, 1, 2]), np.array([1.0, 4, 10]),
                      ax[0].items[0][3])
    assert fig.svg() != svg                                    # drawn from the data


def test_png_bytes():
    import zlib
    pix = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    png = png_bytes(pix)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"IHDR" in png and png.endswith(
        b"IEND\xaeB`\x82")
    idat = png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(2, 10)
    assert raw[0, 0] == 2 and np.array_equal(raw[0, 1:], pix[0].ravel())
    assert np.array_equal(raw[1, 1:] + raw[0, 1:], pix[1].ravel())   # mod 256


# data at the ends of float64: a kernel's error of 1e303 ulp (a result 1e-20 off where the
# exact value is 0), results near the largest double, values near the smallest
EXTREMES = [("log", [1e-3, 2e303]), ("log", [5e-324, 1.7e308]), ("log", [1e-300, 1e300]),
            ("linear", [-1e308, 1e308]), ("linear", [0.0, 1.7976931348623157e308]),
            ("linear", [1e-320, 2e-320]), ("linear", [-5e-324, 5e-324]),
            ("linear", [-1e308, -1e308]), ("linear", [1.7e308, 1.7e308]),
            ("linear", [-1.7976931348623157e308, -1.7976931348623157e308]),
            ("linear", [9.6e307, 1.7976931348623157e308]), ("linear", [-1e308, 5e306])]


@pytest.mark.parametrize("scale, ys", EXTREMES, ids=[f"{s}:{y[0]:g}..{y[1]:g}"
                                                      for s, y in EXTREMES])
def test_a_figure_of_extreme_values_is_drawn(scale, ys):
    """Data spanning the whole float64 range, or inside its subnormals: the figure is
    drawn (ticks in view, finite coordinates), not an exception that loses it."""
    fig = Figure(6, 4)
    ax = fig.axes[0]
    ax.yscale = scale
    ax.plot([0.0, 1.0], ys, "#000", marker="o")
    ax.axhline(0.0 if scale == "log" else math.nan, "#000")     # not drawable: left out
    ax.axvline(math.nan, "#000")
    svg = fig.svg()
    ET.fromstring(svg)
    assert "nan" not in svg.lower() and "inf" not in svg.lower().replace("info", "")
    assert svg.count("<text") >= 4        # tick labels on both axes


def test_control_characters_in_text_keep_the_svg_well_formed():
    """A title or legend entry with control characters (which XML does not allow, even
    escaped) gives a well-formed figure: the characters are dropped."""
    fig = Figure(4, 3)
    ax = fig.axes[0]
    ax.title = 'a < b & "c"\x0c\x1b\x00 d'
    ax.plot([0, 1], [0, 1], "#000", label="\x07key")
    fig.legend([ax])
    root = ET.fromstring(fig.svg())
    assert any((t.text or "").startswith('a < b & "c"') for t in root.iter()
               if t.tag.endswith("text"))
