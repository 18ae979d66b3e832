"""A figure of one row of axes, written as SVG: what the report's figures draw, in the
look of matplotlib's defaults (the figures were matplotlib PNGs before).

Design note
-----------
An :class:`Axes` records what is drawn on it (lines, markers, histograms, bars, spans, an
image, a contour, texts) in data coordinates; :meth:`Figure.svg` then lays the figure out
and writes it. The layout is matplotlib's as verify used it: each axes gets the margins
its tick labels, axis labels, title, twin axis and colorbar need (text sizes estimated by
:mod:`verify.svg.text`), the axes share the rest of the width in their ratios, one legend
sits under the figure, a suptitle above. Ticks follow matplotlib's default locators
(:mod:`verify.svg.ticks`), whose number depends on the axes' size: the layout is computed
twice, the second time with the ticks of the sizes the first one found.

Sizes are in px at 100 px per inch (the PNGs' dpi), fonts in points as matplotlib's
(``PT`` px each). The browser draws the text; everything else is a path, a rect or, for
a colour-mapped field, an embedded PNG drawn pixelated (matplotlib's "nearest").
"""
import math

import numpy as np

from verify.svg.colour import png_data_uri
from verify.svg.contour import contour_segments
from verify.svg.text import FONT_FAMILY, MINUS, PT, esc, num, text_length, text_width
from verify.svg.ticks import linear_labels, linear_ticks, log_ticks, margins, tick_space

__all__ = ["Figure", "Axes"]

# font sizes in points: as verify's matplotlib figures had them (ticks and axis labels
# from its rc settings; titles, legend, suptitle, annotations and colorbars from
# matplotlib's defaults)
TICK, LABEL, TITLE, LEGEND, SUPTITLE, TEXT = 8.5, 9.5, 12.0, 10.0, 12.0, 10.0
ASCENT, DESCENT = 0.928, 0.236    # DejaVu Sans, in em
PAD, GAP = 8.0, 12.0              # px around the figure and between neighbours
TICK_LEN, TICK_PAD, LABEL_PAD, TITLE_PAD = 3.5 * PT, 3.5 * PT, 4 * PT, 6 * PT
_DASHES = {"--": (3.7, 1.6), ":": (1.0, 1.65), "-.": (6.4, 1.6, 1.0, 1.6)}
_GRID = ' stroke="#b0b0b0" stroke-opacity="0.3" stroke-width="1.1" fill="none"'
_BIG = 1e5                        # px coordinates are clipped to +-_BIG


def _h(size_pt):
    """Height in px of one line of text of ``size_pt`` points."""
    return (ASCENT + DESCENT) * size_pt * PT


def _label_w(lab, size):
    """Width in px of a tick label (a string or a (mantissa, exponent) power)."""
    if isinstance(lab, tuple):
        return text_width(lab[0], size) + text_width(str(lab[1]), size * 0.7)
    return text_width(lab or "", size)


def _pts(px, py):
    return "L".join(f"{num(a)} {num(b)}" for a, b in zip(px, py))


class Axes:
    """What one axes draws, in data coordinates (see the module's note). Attributes set
    by the figure functions: ``title``, ``xlabel``, ``ylabel``, ``xlim``/``ylim`` (a
    reversed pair inverts the axis), ``xticks``/``yticks`` ([(value, label)], fixed),
    ``xrotation`` (degrees, the x tick labels), ``grid`` ("both", "x", "y" or None),
    ``minor_grid``, ``minor`` (draw a log axis' minor ticks), ``axis_off``, ``aspect_equal``.
    """

    def __init__(self, figure, twin_of=None):
        self.figure = figure
        self.items = []
        self.legend = []               # (label, kind, style), in the order drawn
        self.title = self.xlabel = self.ylabel = ""
        self.xscale = self.yscale = "linear"
        self.xlim = self.ylim = None
        self.xticks = self.yticks = None
        self.xrotation = 0
        self.grid = None
        self.minor_grid = False
        self.minor = True
        self.axis_off = False
        self.aspect_equal = False
        self.twin = None
        self.twin_of = twin_of
        self.colorbar = None
        self.sticky_y0 = False         # histograms and bars: no margin below y = 0

    # ------------------------------------------------------------ what is drawn
    def plot(self, x, y, color, lw=1.5, ls="-", marker=None, ms=6.0, alpha=1.0, label=None):
        """A line (``ls``: "-", "--", ":" or None) with optional markers ("o", "x", "s",
        "v") of ``ms`` points, as matplotlib's plot."""
        st = dict(color=color, lw=lw, ls=ls, marker=marker, ms=ms, alpha=alpha)
        self.items.append(("plot", np.asarray(x, float).ravel(), np.asarray(y, float).ravel(),
                           st))
        self._key(label, "plot", st)

    def scatter(self, x, y, s, color, marker="o", label=None):
        """Markers of area ``s`` (points squared), as matplotlib's scatter."""
        self.plot(x, y, color, ls=None, marker=marker, ms=math.sqrt(s), label=label)

    def hist(self, values, bins, color, alpha=0.8, label=None):
        """A "stepfilled" histogram of ``values`` in ``bins`` equal bins over their range."""
        values = np.asarray(values, float)
        counts, edges = np.histogram(values, bins) if values.size else (
            np.zeros(bins), np.linspace(0.0, 1.0, bins + 1))
        self.items.append(("hist", edges, counts.astype(float),
                           dict(color=color, alpha=alpha)))
        self.sticky_y0 = True
        self._key(label, "patch", dict(color=color, alpha=alpha))

    def barh(self, y, widths, height, color, label=None):
        """Horizontal bars from x = 0 (the left edge on a log axis)."""
        self.items.append(("barh", np.asarray(y, float), np.asarray(widths, float),
                           dict(color=color, height=height)))
        self._key(label, "patch", dict(color=color, alpha=1.0))

    def axhline(self, y, color, lw=1.5, ls="-"):
        self.items.append(("hline", float(y), None, dict(color=color, lw=lw, ls=ls, alpha=1.0)))

    def axvline(self, x, color, lw=1.5, ls="-", label=None):
        st = dict(color=color, lw=lw, ls=ls, alpha=1.0, marker=None)
        self.items.append(("vline", float(x), None, st))
        self._key(label, "plot", st)

    def axvspan(self, x0, x1, color, label=None):
        self.items.append(("vspan", float(x0), float(x1), dict(color=color)))
        self._key(label, "patch", dict(color=color, alpha=1.0))

    def fill(self, x, y, color):
        self.items.append(("fill", np.asarray(x, float), np.asarray(y, float),
                           dict(color=color)))

    def image(self, pixels, extent):
        """An RGB image (``pixels``: (rows, cols, 3) uint8, top row first) over ``extent``
        = (left, right, bottom, top) in data coordinates, drawn pixelated."""
        self.items.append(("image", pixels, tuple(map(float, extent)), {}))

    def contour(self, x, y, z, level, color="#000", lw=2.0):
        """The line where ``z`` (shape (len(y), len(x))) crosses ``level``."""
        segs = contour_segments(x, y, z, level)
        self.items.append(("contour", segs, None, dict(color=color, lw=lw)))

    def text(self, x, y, s, size=TEXT, color="#000", ha="center", va="center",
             bold=False, offset=(0.0, 0.0), box=None, axes_coords=False):
        """Text at (x, y) (data coordinates, or fractions of the axes), moved by
        ``offset`` points (right, up); ``box``: the colour of a rounded box behind it."""
        self.items.append(("text", (float(x), float(y)), s,
                           dict(size=size, color=color, ha=ha, va=va, bold=bold,
                                offset=offset, box=box, axes_coords=axes_coords)))

    def twinx(self):
        """An axes sharing this one's x axis, its y axis on the right."""
        self.twin = Axes(self.figure, twin_of=self)
        return self.twin

    def _key(self, label, kind, style):
        if label:
            self.legend.append((label, kind, style))

    # ------------------------------------------------------------ limits and ticks
    def _data_range(self, axis):
        log = (self.xscale if axis == 0 else self.yscale) == "log"
        vals = []
        for kind, a, b, st in self.items:
            if kind == "plot":
                vals.append(a if axis == 0 else b)
            elif kind == "hist":
                vals.append(a if axis == 0 else np.array([0.0, b.max()]))
            elif kind == "barh":
                if axis == 0:
                    vals.append(b if log else np.append(b, 0.0))
                else:
                    vals.append(np.concatenate([a - st["height"] / 2, a + st["height"] / 2]))
            elif kind == "fill":
                vals.append(a if axis == 0 else b)
            elif kind == "hline" and axis == 1 or kind == "vline" and axis == 0:
                vals.append(np.array([a]))
            elif kind == "vspan" and axis == 0:
                vals.append(np.array([a, b]))
            elif kind == "image":
                vals.append(np.array(b[:2] if axis == 0 else b[2:]))
            elif kind == "contour":
                vals.append(np.array([p[axis] for seg in a for p in seg]))
        v = np.concatenate(vals) if vals else np.array([])
        v = v[np.isfinite(v) & ((v > 0) if log else True)]
        if not v.size:
            return (0.0, 1.0) if not log else (1.0, 10.0)
        return float(v.min()), float(v.max())

    def _view(self, axis):
        """(lo, hi) of the view in scale units (log10 of the value on a log axis; lo > hi
        on an inverted axis), as matplotlib's autoscale gives it (5 % margins)."""
        log = (self.xscale if axis == 0 else self.yscale) == "log"
        lim = self.xlim if axis == 0 else self.ylim
        if lim is not None:
            lo, hi = lim
            return (math.log10(lo), math.log10(hi)) if log else (float(lo), float(hi))
        lo, hi = self._data_range(axis)
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
            return margins(lo, hi) if hi > lo else margins(lo - 1, hi + 1)
        if axis == 1 and self.sticky_y0 and lo == 0.0:
            return 0.0, margins(lo, hi)[1]
        return margins(lo, hi)

    def _ticks(self, axis, length):
        """(major [(value, label)], minor [(value, label or None)], offset text) in view,
        for an axis ``length`` px long."""
        horizontal = axis == 0
        lo, hi = sorted(self._view(axis))
        fixed = self.xticks if horizontal else self.yticks
        log = (self.xscale if horizontal else self.yscale) == "log"
        if fixed is not None:
            inside = [(v, lab) for v, lab in fixed
                      if lo - 1e-9 * (hi - lo) <= (math.log10(v) if log else v)
                      <= hi + 1e-9 * (hi - lo)]
            return inside, [], ""
        space = tick_space(length, TICK * PT, horizontal)
        if log:
            major, minor = log_ticks(lo, hi, space, self.minor)
            return major, minor, ""
        ticks, step = linear_ticks(lo, hi, space)
        labels, offset = linear_labels(ticks, step)
        return list(zip(ticks, labels)), [], offset


class Figure:
    """One row of axes (``ncols``, widths in ``width_ratios``) on a ``width`` x ``height``
    inch figure, with an optional ``suptitle``; ``legend(axes, ncol)`` puts one legend
    under it. :meth:`svg` returns the SVG document."""

    def __init__(self, width, height, ncols=1, width_ratios=None, suptitle=""):
        self.w, self.h = width * 100.0, height * 100.0
        self.axes = [Axes(self) for _ in range(ncols)]
        self.ratios = list(width_ratios or [1] * ncols)
        self.suptitle = suptitle
        self.legend_entries, self.legend_ncol = [], 1

    def legend(self, axes, ncol=4):
        """One legend under the figure of the labelled artists of ``axes`` (and their
        twins), first label first: off the data, never covering a point."""
        seen = {}
        for a in list(axes) + [ax.twin for ax in axes if ax.twin is not None]:
            for lab, kind, st in a.legend:
                seen.setdefault(lab, (kind, st))
        self.legend_entries = list(seen.items())
        self.legend_ncol = min(ncol, len(seen)) or 1

    def colorbar(self, ax, cmap, norm, label, alpha=1.0):
        """A vertical colour bar right of ``ax``: ``cmap`` over ``norm``'s range."""
        ax.colorbar = dict(cmap=cmap, norm=norm, label=label, alpha=alpha)

    # ------------------------------------------------------------ layout
    def _legend_layout(self):
        """Columns of the legend (filled column by column, as matplotlib's: the first
        len % ncol columns one entry longer), their widths and the legend's height."""
        entries, ncol = self.legend_entries, self.legend_ncol
        if not entries:
            return [], [], 0.0
        nrow = -(-len(entries) // ncol)
        cols, i = [], 0
        for c in range(ncol):
            n = nrow if c < (len(entries) % ncol or ncol) else nrow - 1
            cols.append(entries[i:i + n])
            i += n
        fs = LEGEND * PT
        widths = [max(2.8 * fs + text_width(lab, fs) for lab, _ in col) for col in cols]
        height = nrow * _h(LEGEND) + (nrow - 1) * 0.4 * fs + 0.8 * fs
        return cols, widths, height

    def _needs(self, ax, ticks, h):
        """(left, right, bottom, top) px that ``ax`` (``h`` px high) draws beyond its
        box."""
        (xt, _, _), (yt, _, yoff) = ticks[0], ticks[1]
        fs = TICK * PT
        title_h = (len(ax.title.split("\n")) * TITLE * PT * 1.2 if ax.title else 0.0)
        if ax.axis_off:
            return 30.0, 30.0, 30.0, 30.0 + title_h + TITLE_PAD
        xw = max((_label_w(lab, fs) for _, lab in xt), default=0.0)
        if ax.xrotation:
            s = math.sin(math.radians(ax.xrotation))
            xh = xw * s + _h(TICK) * math.cos(math.radians(ax.xrotation))
            half = 0.0
        else:
            xh = _h(TICK) if xt else 0.0
            half = xw / 2
        bottom = (xh + TICK_LEN + TICK_PAD if xh else TICK_LEN) + \
            (_h(LABEL) + LABEL_PAD if ax.xlabel else 0.0)
        yw = max((_label_w(lab, fs) for _, lab in yt if lab), default=0.0)
        left = max(half, (yw + TICK_LEN + TICK_PAD if yw else TICK_LEN)
                   + (_h(LABEL) + LABEL_PAD if ax.ylabel else 0.0))
        right = half
        if ax.twin is not None:
            tw = max((_label_w(lab, fs) for _, lab in ticks[2][0] if lab), default=0.0)
            right = max(right, tw + TICK_LEN + TICK_PAD +
                        (_h(LABEL) + LABEL_PAD if ax.twin.ylabel else 0.0))
        if ax.colorbar is not None:
            cw = max((_label_w(lab, TEXT * PT) for _, lab in ticks[3]), default=0.0)
            right += 10 + 16 + TICK_LEN + TICK_PAD + cw + LABEL_PAD + _h(TEXT)
        top = title_h + TITLE_PAD + (_h(TICK) + 2 * PT if yoff else 0.0) + \
            _overhang(ax, ticks, h)
        return left, right, bottom, top

    def _layout(self, sizes):
        """Boxes (x, y, w, h) of the axes, given each axes' (w, h) guess ``sizes`` (for
        its ticks), and the ticks found for them."""
        ticks = []
        for ax, (w, h) in zip(self.axes, sizes):
            t = [ax._ticks(0, w), ax._ticks(1, h),
                 ax.twin._ticks(1, h) if ax.twin is not None else ([], [], ""),
                 self._cbar_ticks(ax, h)]
            ticks.append(t)
        needs = [self._needs(ax, t, h) for ax, t, (_, h) in zip(self.axes, ticks, sizes)]
        _, _, leg_h = self._legend_layout()
        sup_h = _h(SUPTITLE) + 6 if self.suptitle else 0.0
        y0 = PAD + sup_h + max(n[3] for n in needs)
        y1 = self.h - PAD - (leg_h + GAP if leg_h else 0.0) - max(n[2] for n in needs)
        left = [n[0] for n in needs]
        right = [n[1] for n in needs]

        def widths():
            gaps = sum(right[k] + left[k + 1] + GAP for k in range(len(needs) - 1))
            avail = self.w - 2 * PAD - left[0] - right[-1] - gaps
            return [avail * r / sum(self.ratios) for r in self.ratios]
        # a title wider than its axes is centred on it: half the excess on either side
        for k, w in enumerate(widths()):
            lines = self.axes[k].title.split("\n") if self.axes[k].title else []
            over = (max((text_width(s, TITLE * PT) for s in lines), default=0) - w) / 2
            if over > 0:
                left[k], right[k] = max(left[k], over + GAP), max(right[k], over + GAP)
        boxes, x = [], PAD + left[0]
        for k, w in enumerate(widths()):
            boxes.append([x, y0, w, y1 - y0])
            x += w + right[k] + GAP + (left[k + 1] if k + 1 < len(needs) else 0.0)
        for ax, box in zip(self.axes, boxes):
            if ax.aspect_equal:        # shrink to the data's aspect, centred
                (xl, xh), (yl, yh) = ax._view(0), ax._view(1)
                aspect = abs(yh - yl) / abs(xh - xl)
                x0, yy0, w, h = box
                if h / w > aspect:
                    box[1], box[3] = yy0 + (h - w * aspect) / 2, w * aspect
                else:
                    box[0], box[2] = x0 + (w - h / aspect) / 2, h / aspect
        return boxes, ticks

    def _cbar_ticks(self, ax, h):
        cb = ax.colorbar
        if cb is None:
            return []
        n = cb["norm"]
        t, step = linear_ticks(n.vmin, n.vmax, tick_space(0.85 * h, TEXT * PT, False))
        return list(zip(t, linear_labels(t, step)[0]))

    # ------------------------------------------------------------ drawing
    def svg(self):
        """The figure as an SVG document (a string)."""
        sizes = [(self.w / len(self.axes) * 0.8, self.h * 0.7)] * len(self.axes)
        for _ in range(3):             # until the ticks fit the boxes they are sized for
            boxes, ticks = self._layout(sizes)
            if [(b[2], b[3]) for b in boxes] == sizes:
                break
            sizes = [(b[2], b[3]) for b in boxes]
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(self.w)}" '
               f'height="{num(self.h)}" viewBox="0 0 {num(self.w)} {num(self.h)}" '
               f'font-family="{FONT_FAMILY}"><rect width="100%" height="100%" fill="#fff"/>']
        if self.suptitle:
            fs = SUPTITLE * PT
            out.append(_text(self.w / 2, PAD + ASCENT * fs, self.suptitle, fs, "middle"))
        for k, (ax, box, t) in enumerate(zip(self.axes, boxes, ticks)):
            out.append(_draw_axes(f"a{k}", ax, box, t))
        out.append(self._draw_legend())
        out.append("</svg>")
        return "".join(out)

    def _draw_legend(self):
        cols, widths, height = self._legend_layout()
        if not cols:
            return ""
        fs = LEGEND * PT
        gap = 2.0 * fs                 # matplotlib's columnspacing, 2 em
        total = sum(widths) + gap * (len(cols) - 1)
        top = self.h - PAD - height + 0.4 * fs
        o, x = [], (self.w - total) / 2
        for col, w in zip(cols, widths):
            for r, (lab, (kind, st)) in enumerate(col):
                yc = top + r * (_h(LEGEND) + 0.4 * fs) + _h(LEGEND) / 2
                o.append(_key_glyph(kind, st, x, yc, 2.0 * fs))
                o.append(_text(x + 2.8 * fs, yc + (ASCENT - DESCENT) / 2 * fs, lab, fs))
            x += w + gap
        return "".join(o)


# ------------------------------------------------------------------ one axes

class _Map:
    """Data to px along one axis (log10 first on a log axis)."""

    def __init__(self, lo, hi, log, p0, length, flip):
        self.lo, self.hi, self.log = lo, hi, log
        self.p0, self.length, self.flip = p0, length, flip

    def __call__(self, v):
        v = np.asarray(v, float)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
        if math.isinf(self.hi - self.lo):     # a view over most of the doubles
            f = (v / 2 - self.lo / 2) / (self.hi / 2 - self.lo / 2)
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        p = self.p0 + (self.length * (1 - f) if self.flip else self.length * f)
        return np.clip(p, -_BIG, _BIG)


def _draw_axes(cid, ax, box, ticks):
    x0, y0, w, h = box
    (xt, xminor, xoff), (yt, yminor, yoff), twin_t, cbar_t = ticks
    X = _Map(*ax._view(0), ax.xscale == "log", x0, w, False)
    Y = _Map(*ax._view(1), ax.yscale == "log", y0, h, True)
    o = [f'<clipPath id="{cid}"><rect x="{num(x0)}" y="{num(y0)}" width="{num(w)}" '
         f'height="{num(h)}"/></clipPath>']
    if ax.axis_off:
        o += _draw_items(ax, X, Y, box, "under") + _draw_items(ax, X, Y, box, "over")
        o += _draw_title(ax, x0, y0, w, yoff)
        return "".join(o)
    o.append(f'<g clip-path="url(#{cid})">')
    o += _draw_items(ax, X, Y, box, "under")
    o.append(_grid(ax, X, Y, box, xt, yt, xminor, yminor))
    o += _draw_items(ax, X, Y, box, "over")
    o.append("</g>")
    if ax.twin is not None:
        TY = _Map(*ax.twin._view(1), ax.twin.yscale == "log", y0, h, True)
        o.append(f'<g clip-path="url(#{cid})">')
        o += _draw_items(ax.twin, X, TY, box, "under") + _draw_items(ax.twin, X, TY, box, "over")
        o.append("</g>")
    o.append(f'<rect x="{num(x0)}" y="{num(y0)}" width="{num(w)}" height="{num(h)}" '
             'fill="none" stroke="#000" stroke-width="1.1"/>')
    o.append(_axis_ticks(ax, X, Y, box, xt, yt, xminor, yminor, xoff, yoff))
    if ax.twin is not None:
        o.append(_right_ticks(ax.twin, TY, box, twin_t))
    if ax.colorbar is not None:
        o.append(_colorbar(ax, box, cbar_t, twin_t))
    o += _draw_title(ax, x0, y0, w, yoff, _overhang(ax, ticks, h))
    return "".join(o)


def _overhang(ax, ticks, h):
    """Px by which the y tick labels at the top of ``ax`` (``h`` px high; its twin's
    too) reach above its box: the title goes above them."""
    if ax.axis_off or not ax.title:
        return 0.0
    over = 0.0
    for a, major in ((ax, ticks[1][0]), (ax.twin, ticks[2][0])):
        if a is None or not major:
            continue
        lo, hi = a._view(1)
        for v, lab in major:
            if not lab:
                continue
            lv = math.log10(v) if a.yscale == "log" else v
            below = (hi - lv) / (hi - lo) * h      # px from the top of the box
            over = max(over, _h(TICK) / 2 - below)
    return over


def _draw_title(ax, x0, y0, w, yoff, over=0.0):
    if not ax.title:
        return []
    fs = TITLE * PT
    lines = ax.title.split("\n")
    base = y0 - TITLE_PAD - (_h(TICK) + 2 * PT if yoff else 0.0) - over
    return [_text(x0 + w / 2, base - (len(lines) - 1 - i) * fs * 1.2, line, fs, "middle")
            for i, line in enumerate(lines)]


def _grid(ax, X, Y, box, xt, yt, xminor, yminor):
    x0, y0, w, h = box
    d = []
    if ax.grid in ("both", "x"):
        d += [f"M{num(X(v))} {num(y0)}v{num(h)}" for v, _ in xt]
        if ax.minor_grid:
            d += [f"M{num(X(v))} {num(y0)}v{num(h)}" for v, _ in xminor]
    if ax.grid in ("both", "y"):
        d += [f"M{num(x0)} {num(Y(v))}h{num(w)}" for v, _ in yt]
        if ax.minor_grid:
            d += [f"M{num(x0)} {num(Y(v))}h{num(w)}" for v, _ in yminor]
    return f'<path d="{"".join(d)}"{_GRID}/>' if d else ""


def _axis_ticks(ax, X, Y, box, xt, yt, xminor, yminor, xoff, yoff):
    x0, y0, w, h = box
    fs = TICK * PT
    marks = [f"M{num(X(v))} {num(y0 + h)}v{num(TICK_LEN)}" for v, _ in xt]
    marks += [f"M{num(x0)} {num(Y(v))}h{num(-TICK_LEN)}" for v, _ in yt]
    minor = [f"M{num(X(v))} {num(y0 + h)}v{num(2 * PT)}" for v, _ in xminor]
    minor += [f"M{num(x0)} {num(Y(v))}h{num(-2 * PT)}" for v, _ in yminor]
    o = [f'<path d="{"".join(marks)}" stroke="#000" stroke-width="1.1"/>' if marks else "",
         f'<path d="{"".join(minor)}" stroke="#000" stroke-width="0.8"/>' if minor else ""]
    top = y0 + h + TICK_LEN + TICK_PAD
    labs = []
    for v, lab in list(xt) + [m for m in xminor if m[1]]:
        px = float(X(v))
        if ax.xrotation:               # the rotated label's box centred under its tick
            a = math.radians(ax.xrotation)
            bh = _label_w(lab, fs) * math.sin(a) + _h(TICK) * math.cos(a)
            labs.append(_tick_text(lab, px, top + bh / 2, "middle", fs, -ax.xrotation,
                                   centred=True))
        elif lab:
            labs.append(_tick_text(lab, px, top + ASCENT * fs, "middle", fs))
    for v, lab in list(yt) + [m for m in yminor if m[1]]:
        if lab:
            labs.append(_tick_text(lab, x0 - TICK_LEN - TICK_PAD,
                                   float(Y(v)) + (ASCENT - DESCENT) / 2 * fs, "end", fs))
    if yoff:
        labs.append(_text(x0, y0 - 2 * PT - DESCENT * fs, yoff, fs))
    if xoff:
        labs.append(_text(x0 + w, top + _h(TICK) + ASCENT * fs, xoff, fs, "end"))
    o.append(f'<g font-size="{num(fs)}">' + "".join(labs) + "</g>")
    if ax.xlabel:
        xh = max((_label_w(lab, fs) for _, lab in xt), default=0.0)
        if ax.xrotation:
            a = math.radians(ax.xrotation)
            xh = xh * math.sin(a) + _h(TICK) * math.cos(a)
        else:
            xh = _h(TICK) if xt else 0.0
        yy = y0 + h + (xh + TICK_LEN + TICK_PAD if xh else TICK_LEN) + LABEL_PAD
        o.append(_text(x0 + w / 2, yy + ASCENT * LABEL * PT, ax.xlabel, LABEL * PT, "middle"))
    if ax.ylabel:
        yw = max((_label_w(lab, fs) for _, lab in yt if lab), default=0.0)
        edge = x0 - (yw + TICK_LEN + TICK_PAD if yw else TICK_LEN) - LABEL_PAD
        o.append(_text(edge - DESCENT * LABEL * PT, y0 + h / 2, ax.ylabel, LABEL * PT,
                       "middle", rotate=-90))
    return "".join(o)


def _right_ticks(twin, TY, box, ticks):
    """The twin's y axis on the right of ``box``: ticks, labels, label."""
    x0, y0, w, h = box
    major, minor, _ = ticks
    fs = TICK * PT
    x1 = x0 + w
    marks = "".join(f"M{num(x1)} {num(TY(v))}h{num(TICK_LEN)}" for v, _ in major)
    small = "".join(f"M{num(x1)} {num(TY(v))}h{num(2 * PT)}" for v, _ in minor)
    o = [f'<path d="{marks}" stroke="#000" stroke-width="1.1"/>' if marks else "",
         f'<path d="{small}" stroke="#000" stroke-width="0.8"/>' if small else ""]
    labs = [_tick_text(lab, x1 + TICK_LEN + TICK_PAD, float(TY(v)) + (ASCENT - DESCENT) / 2 * fs,
                       "start", fs) for v, lab in list(major) + [m for m in minor if m[1]]
            if lab]
    o.append(f'<g font-size="{num(fs)}">' + "".join(labs) + "</g>")
    if twin.ylabel:
        tw = max((_label_w(lab, fs) for _, lab in major if lab), default=0.0)
        edge = x1 + tw + TICK_LEN + TICK_PAD + LABEL_PAD
        o.append(_text(edge + ASCENT * LABEL * PT, y0 + h / 2, twin.ylabel, LABEL * PT,
                       "middle", rotate=-90))
    return "".join(o)


def _colorbar(ax, box, ticks, twin_t):
    """The colour bar of ``ax.colorbar`` right of ``box``: 0.16 in wide, 0.85 of its
    height, its colours an image of the map's 256 entries (blended with white by the
    colour bar's alpha), ticks at ``ticks`` placed through the norm."""
    cb = ax.colorbar
    x0, y0, w, h = box
    bx, bh = x0 + w + 10, 0.85 * h
    by = y0 + (h - bh) / 2
    cmap, norm = cb["cmap"], cb["norm"]
    rgb = cmap(np.linspace(1.0, 0.0, cmap.N) * (1 - 1e-12))
    rgb = cb["alpha"] * rgb + (1 - cb["alpha"])
    pix = np.round(rgb * 255).astype(np.uint8)[:, None, :]
    o = [f'<image x="{num(bx)}" y="{num(by)}" width="16" height="{num(bh)}" '
         f'preserveAspectRatio="none" href="{png_data_uri(pix)}"/>',
         f'<rect x="{num(bx)}" y="{num(by)}" width="16" height="{num(bh)}" fill="none" '
         'stroke="#000" stroke-width="1.1"/>']
    fs = TEXT * PT
    marks, labs = [], []
    for v, lab in ticks:
        py = by + bh * (1 - float(norm(v)))
        marks.append(f"M{num(bx + 16)} {num(py)}h{num(TICK_LEN)}")
        labs.append(_tick_text(lab, bx + 16 + TICK_LEN + TICK_PAD,
                               py + (ASCENT - DESCENT) / 2 * fs, "start", fs))
    o.append(f'<path d="{"".join(marks)}" stroke="#000" stroke-width="1.1"/>')
    o.append(f'<g font-size="{num(fs)}">' + "".join(labs) + "</g>")
    if cb["label"]:
        tw = max((_label_w(lab, fs) for _, lab in ticks), default=0.0)
        edge = bx + 16 + TICK_LEN + TICK_PAD + tw + LABEL_PAD
        o.append(_text(edge + ASCENT * fs, by + bh / 2, cb["label"], fs, "middle", rotate=-90))
    return "".join(o)


# ------------------------------------------------------------------ the items

_UNDER = ("image", "fill", "hist", "barh", "vspan")   # below the grid (matplotlib's zorder)


def _draw_items(ax, X, Y, box, layer):
    x0, y0, w, h = box
    o = []
    for kind, a, b, st in ax.items:
        if (kind in _UNDER) != (layer == "under"):
            continue
        if kind == "image":
            l, r, bot, top = b
            xl, xr = sorted((float(X(l)), float(X(r))))
            yt, yb = sorted((float(Y(top)), float(Y(bot))))
            pix = a if float(Y(top)) <= float(Y(bot)) else a[::-1]
            pix = pix if float(X(l)) <= float(X(r)) else pix[:, ::-1]
            o.append(f'<image x="{num(xl)}" y="{num(yt)}" width="{num(xr - xl)}" '
                     f'height="{num(yb - yt)}" preserveAspectRatio="none" '
                     f'style="image-rendering:pixelated" href="{png_data_uri(pix)}"/>')
        elif kind == "fill":
            o.append(f'<path d="M{_pts(X(a), Y(b))}Z" fill="{st["color"]}"/>')
        elif kind == "hist":
            px, py, base = X(a), Y(b), float(Y(0.0))
            d = [f"M{num(px[0])} {num(base)}"]
            d += [f"V{num(py[i])}H{num(px[i + 1])}" for i in range(len(b))]
            o.append(f'<path d="{"".join(d)}V{num(base)}Z" fill="{st["color"]}" '
                     f'fill-opacity="{st["alpha"]}"/>')
        elif kind == "barh":
            left = x0 if ax.xscale == "log" else float(X(0.0))
            for yy, ww in zip(a, b):
                if not np.isfinite(ww) or (ax.xscale == "log" and ww <= 0):
                    continue
                ya, yb = sorted((float(Y(yy - st["height"] / 2)), float(Y(yy + st["height"] / 2))))
                xr = float(X(ww))
                o.append(f'<rect x="{num(min(left, xr))}" y="{num(ya)}" '
                         f'width="{num(abs(xr - left))}" height="{num(yb - ya)}" '
                         f'fill="{st["color"]}"/>')
        elif kind == "vspan":
            xa, xb = sorted((float(X(a)), float(X(b))))
            o.append(f'<rect x="{num(xa)}" y="{num(y0)}" width="{num(xb - xa)}" '
                     f'height="{num(h)}" fill="{st["color"]}"/>')
        elif kind == "plot":
            px, py = X(a), Y(b)
            ok = np.isfinite(px) & np.isfinite(py)
            if st["ls"]:
                runs = np.split(np.arange(len(px)), np.nonzero(~ok)[0])
                d = "".join("M" + _pts(px[r[ok[r]]], py[r[ok[r]]]) for r in runs
                            if ok[r].sum() >= 2)
                if d:
                    o.append(_stroke(d, st))
            if st["marker"] and ok.any():
                o.append(_marks(px[ok], py[ok], st))
        elif kind == "hline" and np.isfinite(Y(a)):     # (not 0 or NaN on a log axis)
            o.append(_stroke(f"M{num(x0)} {num(Y(a))}h{num(w)}", st))
        elif kind == "vline" and np.isfinite(X(a)):
            o.append(_stroke(f"M{num(X(a))} {num(y0)}v{num(h)}", st))
        elif kind == "contour":
            d = "".join(f"M{num(X(p[0]))} {num(Y(p[1]))}L{num(X(q[0]))} {num(Y(q[1]))}"
                        for p, q in a)
            if d:
                o.append(f'<path d="{d}" fill="none" stroke="{st["color"]}" '
                         f'stroke-width="{num(st["lw"] * PT)}" stroke-linecap="round"/>')
        elif kind == "text":
            o.append(_data_text(a, b, st, X, Y, box))
    return o


def _data_text(xy, s, st, X, Y, box):
    x0, y0, w, h = box
    if st["axes_coords"]:
        px, py = x0 + xy[0] * w, y0 + (1 - xy[1]) * h
    else:
        px, py = float(X(xy[0])), float(Y(xy[1]))
    px += st["offset"][0] * PT
    py -= st["offset"][1] * PT
    fs = st["size"] * PT
    lines = s.split("\n")
    n = len(lines)
    lh = fs * 1.2
    # the baseline of the first line, by the vertical alignment of the whole block
    block = (n - 1) * lh + _h(st["size"])
    top = {"top": py, "bottom": py - block, "center": py - block / 2,
           "baseline": py - ASCENT * fs - (n - 1) * lh}[st["va"]]
    anchor = {"left": "start", "center": "middle", "right": "end"}[st["ha"]]
    o = []
    if st["box"]:
        tw = max(text_width(line, fs) * (1.08 if st["bold"] else 1.0) for line in lines)
        left = {"start": px, "middle": px - tw / 2, "end": px - tw}[anchor]
        pad = 0.15 * fs
        o.append(f'<rect x="{num(left - pad)}" y="{num(top - pad)}" '
                 f'width="{num(tw + 2 * pad)}" height="{num(block + 2 * pad)}" '
                 f'rx="{num(pad)}" fill="{st["box"]}" fill-opacity="0.8"/>')
    for i, line in enumerate(lines):
        o.append(_text(px, top + ASCENT * fs + i * lh, line, fs, anchor, color=st["color"],
                       bold=st["bold"]))
    return "".join(o)


def _text(x, y, s, size, anchor="start", rotate=0, color=None, bold=False):
    """One line of text with its baseline at (x, y) (rotated about that point)."""
    pos = (f'transform="translate({num(x)} {num(y)}) rotate({rotate})"' if rotate
           else f'x="{num(x)}" y="{num(y)}"')
    extra = (f' fill="{color}"' if color and color != "#000" else "") + \
        (' font-weight="bold"' if bold else "")
    width = "" if bold else text_length(s, size)      # no bold widths in the table
    return (f'<text {pos} font-size="{num(size)}" text-anchor="{anchor}"{extra}{width}>'
            f'{esc(s)}</text>')


def _tick_text(lab, x, y, anchor, size, rotate=0, centred=False):
    """A tick label at (x, y): its baseline there, or (``centred``) its centre, rotated
    by ``rotate`` degrees about it."""
    pos = f'x="{num(x)}" y="{num(y)}"'
    dy = ""
    if rotate or centred:
        pos = f'transform="translate({num(x)} {num(y)}) rotate({rotate})"'
        dy = f' dy="{num((ASCENT - DESCENT) / 2 * size)}"'
    if isinstance(lab, tuple):                 # a power of ten: a superscript exponent
        base, e = lab
        return (f'<text {pos} text-anchor="{anchor}"{dy}>{esc(base)}'
                f'<tspan dy="{num(-size * 0.4)}" font-size="{num(size * 0.7)}">'
                f'{str(e).replace("-", MINUS)}</tspan></text>')
    return f'<text {pos} text-anchor="{anchor}"{dy}{text_length(lab, size)}>{esc(lab)}</text>'


def _dash(st):
    pat = _DASHES.get(st.get("ls") or "-")
    if not pat:
        return ' stroke-linecap="square"'
    return (' stroke-dasharray="' + ",".join(num(p * st["lw"] * PT) for p in pat) +
            '" stroke-linecap="butt"')


def _stroke(d, st):
    op = f' stroke-opacity="{st["alpha"]}"' if st.get("alpha", 1.0) != 1.0 else ""
    return (f'<path d="{d}" fill="none" stroke="{st["color"]}" '
            f'stroke-width="{num(st["lw"] * PT)}"{_dash(st)}{op} stroke-linejoin="round"/>')


def _marks(px, py, st):
    """All markers of a series as one path: a circle is a zero-length segment with round
    caps as wide as the marker (with matplotlib's 1-pt edge), a cross two segments, a
    square or triangle a polygon."""
    s = st["ms"] * PT
    m, c = st["marker"], st["color"]
    op = f' opacity="{st["alpha"]}"' if st["alpha"] != 1.0 else ""
    if m == "o":
        d = "".join(f"M{num(a)} {num(b)}h0" for a, b in zip(px, py))
        return (f'<path d="{d}" stroke="{c}" stroke-width="{num(s + PT)}" '
                f'stroke-linecap="round"{op}/>')
    r = s / 2
    if m == "x":
        d = "".join(f"M{num(a - r)} {num(b - r)}l{num(s)} {num(s)}m0 {num(-s)}l{num(-s)} {num(s)}"
                    for a, b in zip(px, py))
        return f'<path d="{d}" stroke="{c}" stroke-width="{num(PT)}" fill="none"{op}/>'
    edge = f' stroke="{c}" stroke-width="{num(PT)}" stroke-linejoin="miter"'
    if m == "v":
        d = "".join(f"M{num(a - r)} {num(b - r)}h{num(s)}l{num(-r)} {num(s)}z"
                    for a, b in zip(px, py))
    else:                              # "s": a square
        r *= 0.9
        d = "".join(f"M{num(a - r)} {num(b - r)}h{num(2 * r)}v{num(2 * r)}h{num(-2 * r)}z"
                    for a, b in zip(px, py))
    return f'<path d="{d}" fill="{c}"{edge}{op}/>'


def _key_glyph(kind, st, x, yc, length):
    """The legend's handle of an entry, ``length`` px wide, centred on ``yc``."""
    if kind == "patch":
        op = f' fill-opacity="{st["alpha"]}"' if st.get("alpha", 1.0) != 1.0 else ""
        return (f'<rect x="{num(x)}" y="{num(yc - 0.35 * LEGEND * PT)}" width="{num(length)}" '
                f'height="{num(0.7 * LEGEND * PT)}" fill="{st["color"]}"{op}/>')
    o = ""
    if st.get("ls"):
        o += _stroke(f"M{num(x)} {num(yc)}h{num(length)}", st)
    if st.get("marker"):
        o += _marks(np.array([x + length / 2]), np.array([yc]), st)
    return o

