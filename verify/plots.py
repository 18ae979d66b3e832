"""PNG plots for the report, drawn from the data the checks computed (imported only when
matplotlib is installed).

Design note
-----------
Every plot reads what a check stored on its item (keys starting with ``_``, kept out of
report.json): the per-point records of ``CheckResult.points`` (input, compiled value, exact
value, error in ULPs), the 1-d loss sweeps and the 3-class slice of the output maps, the
convexity checks' curvature sweeps and chord gaps, the XOR networks' compiled decision
regions on a grid, the optimizer trajectories. Nothing is re-derived here from a formula:
a plot shows exactly the numbers the verdict was computed from. Each figure is written to a
temporary file and renamed into place (atomic), and is referenced from the report next to
the check it illustrates (``item["plots"]``: [(caption, relative path)]).
"""
import base64
import functools
import math
import os
import struct
import time
import zlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.backends.backend_agg  # noqa: E402
import matplotlib.cbook  # noqa: E402
import matplotlib.colors  # noqa: E402
import matplotlib.figure  # noqa: E402
import matplotlib.font_manager  # noqa: E402
import matplotlib.text  # noqa: E402
import matplotlib.ticker  # noqa: E402
import matplotlib.transforms  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg  # noqa: E402
try:
    from matplotlib.ft2font import RenderMode as _RenderMode  # noqa: E402
except ImportError:       # an older matplotlib: _fast_text's probe fails, Agg draws text
    _RenderMode = None
import numpy as np  # noqa: E402

__all__ = ["make_plots"]

# Readable at 100 % zoom: 100 dpi, so a 10-inch figure is 1000 px wide and 9-pt text is
# 12 px high. The margins are sized to what is drawn (long titles, legends under the
# figure, tick and colorbar labels) by :func:`_layout`, so nothing is cut off.
_DPI = 100
_RC = {"axes.titley": 1.0, "font.size": 9.5, "axes.titlesize": 10, "axes.labelsize": 9.5, "legend.fontsize": 8.5,
       "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "figure.titlesize": 11}
_STYLE = {"float64": dict(color="C0", marker="o"), "float32": dict(color="C1", marker="x")}


class _Renderer(RendererAgg):
    """Agg, measuring text once per process: matplotlib caches a text's size per renderer,
    and every figure has its own, so each figure measured its tick labels, titles and
    legend entries again (a FreeType layout each).

    Drawing text keeps each text's glyph layout too (:meth:`_draw_cached`), and each
    glyph's rendered bitmap (:meth:`_draw_glyphs`), which restate RendererAgg.draw_text on
    matplotlib's private internals (``_prepare_font``, ``FT2Font._layout``,
    ``_set_transform``, ``_render_glyph``, the loop of ``_draw_text_glyphs_and_boxes``).
    Whether that restatement may be used is decided once per process (:func:`_fast_text`:
    it must draw a probe text pixel for pixel as RendererAgg does); where it may not, or
    it raises AttributeError or TypeError (a matplotlib that changed those internals),
    text is drawn by RendererAgg.draw_text itself -- the same pixels, only slower."""

    def get_text_width_height_descent(self, s, prop, ismath):
        if ismath == "TeX":
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (s, prop, ismath, self.dpi, _font_key())
        got = _METRICS.get(key)
        if got is None:                # kept under a copy: the caller's prop may change
            got = _METRICS[(s, prop.copy()) + key[2:]] = \
                RendererAgg.get_text_width_height_descent(RendererAgg(1, 1, self.dpi), s,
                                                          prop, ismath)
        return got

    def _get_font_height_metrics(self, prop):
        """(ascent, descent, line gap) of ``prop``'s font in pixels, as Text._get_layout
        reads them from the font's OS/2 or hhea table when a renderer has no such method
        (a font look-up and two table reads per text laid out), kept per font, size and
        dpi. Text._get_layout scales by the figure's dpi, which is this renderer's."""
        key = (prop, self.dpi, _font_key())
        got = _HEIGHTS.get(key)
        if got is None:
            got = _HEIGHTS[(prop.copy(),) + key[1:]] = _font_height(prop, self.dpi)
        return got

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        global _FAST_TEXT
        if not ismath and _fast_text():
            try:
                return self._draw_cached(gc, x, y, s, prop, angle, mtext)
            except (AttributeError, TypeError):
                _FAST_TEXT = False
        return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)

    def _draw_cached(self, gc, x, y, s, prop, angle, mtext=None):
        """RendererAgg.draw_text of a plain (not math) text, with the glyph layout (which
        glyph of which font where, relative to the text's origin) kept per font, size and
        string: tick labels and legend entries repeat from figure to figure. The layout is
        complete before the first glyph is drawn, so a failure of the layout draws
        nothing (one while drawing can leave glyphs that the fallback draws over)."""
        self._draw_glyphs(gc, x, y, angle, prop.get_size_in_points(),
                          self._glyph_layout(s, prop, mtext))

    def _draw_glyphs(self, gc, x, y, angle, size, layout):
        """RendererAgg._draw_text_glyphs_and_boxes of upright, unslanted glyphs and no
        boxes, with each glyph's bitmap kept (``_BITMAPS``) per font, size, glyph, hinting,
        antialiasing, rotation and position within its pixel (in FreeType's 1/64 px): the
        transform moves the hinted outline, and an outline moved by whole pixels covers
        the pixels it covered, moved by as many -- so the bitmap is the same and its
        corner moves with it. Tick labels repeat their glyphs at the same sub-pixel
        offsets (--quick: 12300 glyphs drawn, 4800 bitmaps rendered).

        The glyphs of a text are drawn as one image (:meth:`_text_image`, kept per
        layout and glyph positions relative to the first glyph's pixel): Agg blends a
        text image row by row, each pixel by its coverage, and leaves a pixel of
        coverage 0 as it was, so one image holding each glyph's coverage where it is the
        only glyph covering the pixel draws what the glyphs drawn one by one draw. Where
        two glyphs cover a pixel (the second blend starts from the first's result) they
        are drawn one by one."""
        rot = _ROTATIONS.get(angle)
        if rot is None:
            rot = _ROTATIONS[angle] = _rotation(angle)
        cos, sin, matrix, rotation = rot
        flags = _HINTING[_font_key()]
        aa = gc.get_antialiased()
        h = self.height
        x, y = float(x), float(y)      # NumPy's scalars: the same doubles, slower
        # as _draw_text_glyphs_and_boxes places each glyph, in 1/64 px (y upwards)
        pos = [(round(0x40 * (x + dx * cos - dy * sin)),
                round(0x40 * (h - y + dx * sin + dy * cos)))
               for _, _, dx, dy in layout.glyphs]
        if not pos:
            return
        x0, y0 = pos[0][0] >> 6, pos[0][1] >> 6
        key = (size, self.dpi, flags, aa, rotation,
               tuple([(tx - (x0 << 6), ty - (y0 << 6)) for tx, ty in pos]))
        got = layout.images.get(key, False)
        if got is False:
            got = layout.images[key] = self._text_image(
                layout, size, flags, aa, matrix, rotation, pos, x0, y0)
        if got is None:                # glyphs sharing a pixel: one by one
            for (font, glyph, _, _), (tx, ty) in zip(layout.glyphs, pos):
                buffer, left, top = self._bitmap(font, size, glyph, flags, aa, matrix,
                                                 rotation, tx, ty)
                self._renderer.draw_text_image(
                    buffer, left + (tx >> 6), int(h) - (top + (ty >> 6)) + buffer.shape[0],
                    0, gc)
        elif got:
            image, dx, dy = got
            self._renderer.draw_text_image(image, x0 + dx, int(h) - y0 + dy + image.shape[0],
                                           0, gc)

    def _bitmap(self, font, size, glyph, flags, aa, matrix, rotation, tx, ty):
        """(coverage, left, top) of ``glyph`` placed at (tx, ty) (1/64 px, y upwards) as
        _draw_text_glyphs_and_boxes renders it, left and top less the whole pixels of
        (tx, ty): kept per sub-pixel position (see :meth:`_draw_glyphs`)."""
        key = (font, size, self.dpi, glyph, flags, aa, rotation, tx & 63, ty & 63)
        got = _BITMAPS.get(key)
        if got is None:
            font.set_size(size, self.dpi)
            font._set_transform(matrix, [tx, ty])
            bitmap = font._render_glyph(glyph, flags,
                                        _RenderMode.NORMAL if aa else _RenderMode.MONO)
            buffer = bitmap.buffer
            if not aa:
                buffer *= 0xff
            got = _BITMAPS[key] = (buffer, bitmap.left - (tx >> 6), bitmap.top - (ty >> 6))
        return got

    def _text_image(self, layout, size, flags, aa, matrix, rotation, pos, x0, y0):
        """The glyphs of ``layout`` at ``pos`` (1/64 px, y upwards) as one coverage image:
        (image, its left column less x0, its top row less the canvas row of y0), or ()
        when no glyph covers a pixel, or None when two glyphs cover the same pixel."""
        parts = []
        for (font, glyph, _, _), (tx, ty) in zip(layout.glyphs, pos):
            buffer, left, top = self._bitmap(font, size, glyph, flags, aa, matrix, rotation,
                                             tx, ty)
            if buffer.size:            # columns right, rows down from (x0, y0)'s pixel
                parts.append((buffer, left + (tx >> 6) - x0, -(top + (ty >> 6) - y0)))
        if not parts:
            return ()
        c0 = min(c for _, c, _ in parts)
        r0 = min(r for _, _, r in parts)
        image = np.zeros((max(r + b.shape[0] for b, _, r in parts) - r0,
                          max(c + b.shape[1] for b, c, _ in parts) - c0), np.uint8)
        for buffer, c, r in parts:
            region = image[r - r0:r - r0 + buffer.shape[0], c - c0:c - c0 + buffer.shape[1]]
            if region.any() and np.minimum(region, buffer).any():
                return None
            region += buffer
        return image, c0, r0

    def _glyph_layout(self, s, prop, mtext=None):
        """The :class:`_Layout` of ``s`` as RendererAgg.draw_text lays it out, kept per font
        properties (which name the font and its size; finding the font is a font manager
        look-up per text) under a copy of them (the caller's may change)."""
        font_key = _font_key()
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        key = [prop, self.dpi, s, font_key,
               features if features is None else tuple(features),
               language if not isinstance(language, list) else tuple(map(tuple, language))]
        layout = _GLYPHS.get(tuple(key))
        if layout is None:
            font = self._prepare_font(prop)
            layout = _Layout([(item.ft_object, item.glyph_index, item.x, item.y)
                              for item in font._layout(s, flags=_HINTING[font_key],
                                                       features=features,
                                                       language=language)])
            key[0] = prop.copy()
            _GLYPHS[tuple(key)] = layout
        return layout


class _Layout:
    """A text's glyph layout, ``glyphs``: [(FT2Font, glyph index, x, y)] relative to its
    origin; ``images``: the coverage images of the text drawn at given sub-pixel
    positions (see :meth:`_Renderer._draw_glyphs`)."""

    __slots__ = ("glyphs", "images")

    def __init__(self, glyphs):
        self.glyphs = glyphs
        self.images = {}


def _rotation(angle):
    """(cos, sin, FreeType's 16.16 matrix, the matrix as a tuple) of a text rotated by
    ``angle`` degrees, as _draw_text_glyphs_and_boxes computes them (extend 1, slant 0)."""
    cos = math.cos(math.radians(angle))
    sin = math.sin(math.radians(angle))
    matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]])
              @ [[1, 1 * 0], [0, 1]]).round().astype(int)
    return cos, sin, matrix, tuple(matrix.ravel().tolist())


# angle -> _rotation(angle)
_ROTATIONS = {}

# (font properties, dpi, text, font key, ...) -> _Layout: a text's glyph layout
_GLYPHS = {}

# the settings the font of a FontProperties is found by (its family is a generic name
# such as "sans-serif", resolved through these lists when the font is looked up), the
# hinting the metrics depend on, the style a FontProperties made without one takes (the
# tick labels _label_size measures) and the fonts mathtext lays $...$ out in: part of
# every key above and below
_FONT_SETTINGS = ("font.family", "font.sans-serif", "font.serif", "font.monospace",
                  "font.cursive", "font.fantasy", "text.hinting", "text.hinting_factor",
                  "font.style", "font.variant", "font.weight", "font.stretch",
                  "mathtext.default", "mathtext.fallback", "mathtext.rm", "mathtext.it",
                  "mathtext.bf", "mathtext.bfit", "mathtext.sf", "mathtext.tt",
                  "mathtext.cal")


def _font_settings():
    rc = matplotlib.rcParams
    return tuple(tuple(v) if isinstance(v, list) else v
                 for v in map(rc.__getitem__, _FONT_SETTINGS))


# _font_settings() -> a small int standing for them in cache keys; the last settings read
# (lists copied: rcParams' lists may be changed in place) and their int
_FONT_KEYS = {}
_LAST_FONT = [None, None]

# font key -> FreeType's load flags for its text.hinting (backend_agg.get_hinting_flag)
_HINTING = {}


def _font_key():
    """A small int that differs wherever :func:`_font_settings` differ (the font settings
    in cache keys: hashed at every look-up, a tuple of the font lists costs more than
    the look-up). Read with dict's own look-up: RcParams keeps the validated values in
    its dict, and its __getitem__ adds only the handling of deprecated keys and of
    "backend", which these are not."""
    rc = matplotlib.rcParams
    try:
        raw = [_dict_get(rc, k) for k in _FONT_SETTINGS]
    except KeyError:                   # a matplotlib keeping them otherwise
        raw = [rc[k] for k in _FONT_SETTINGS]
    last = _LAST_FONT
    if raw == last[0]:
        return last[1]
    settings = _font_settings()
    key = _FONT_KEYS.get(settings)
    if key is None:
        key = _FONT_KEYS[settings] = len(_FONT_KEYS)
        _HINTING[key] = matplotlib.backends.backend_agg.get_hinting_flag()
    last[:] = [[list(v) if isinstance(v, list) else v for v in raw], key]
    return key


_dict_get = dict.__getitem__

# (font, size, dpi, glyph, hinting, antialiased, rotation, x % 64, y % 64) -> (bitmap,
# its left and top less the glyph's whole-pixel position): see _Renderer._draw_glyphs
_BITMAPS = {}

# Whether _Renderer draws text through its glyph layouts: None until _fast_text decides
_FAST_TEXT = None


def _fast_text():
    """Whether :meth:`_Renderer._draw_cached` draws as RendererAgg.draw_text does, decided
    once per process: a probe text (upright and rotated, as tick labels are; drawn again
    whole pixels away, from the bitmaps kept the first time) drawn both ways onto two
    small canvases must give the same pixels, without an AttributeError or TypeError from
    the private internals it calls."""
    global _FAST_TEXT
    if _FAST_TEXT is None:
        prop = matplotlib.font_manager.FontProperties(size=_RC["font.size"])
        try:
            ours, theirs = _Renderer(160, 120, _DPI), RendererAgg(160, 120, _DPI)
            for r, draw in ((ours, ours._draw_cached), (theirs, theirs.draw_text)):
                for angle in (0.0, 45.0):
                    for x, y in ((10.3, 40.6), (57.3, 93.6)):
                        gc = r.new_gc()
                        draw(gc, x, y, "Ag×10⁻³ -1.5", prop, angle)
                        gc.restore()
            _FAST_TEXT = bool(np.array_equal(np.asarray(ours.buffer_rgba()),
                                             np.asarray(theirs.buffer_rgba())))
        except Exception:              # whatever stops the probe: RendererAgg draws text
            _FAST_TEXT = False
    return _FAST_TEXT


# (text, font properties, ismath, dpi, font settings) -> (width, height, descent) of a text as Agg draws
# it: a function of these alone, not of the canvas it is drawn on
_METRICS = {}

# (font properties, dpi, font settings) -> (ascent, descent, line gap): see _get_font_height_metrics
_HEIGHTS = {}


def _font_height(prop, dpi):
    """Text._get_layout's reading of the font's vertical extent, restated: the first of
    the OS/2 and hhea tables the font has, scaled to the size and dpi; (None, None,
    None) when it has neither (Text._get_layout then measures "lp")."""
    font = matplotlib.font_manager.get_font(
        matplotlib.font_manager.fontManager._find_fonts_by_props(prop))
    for table_name, gap, ascent, descent in (
            ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
            ("hhea", "lineGap", "ascent", "descent")):
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        # in Text._get_layout's order of operations: the same floats
        scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * prop.get_size_in_points() \
            * dpi / 72
        return table[ascent] * scale, -table[descent] * scale, table[gap] * scale
    return None, None, None


# matplotlib's own Text._get_layout (see _text_layout)
_TEXT_GET_LAYOUT = matplotlib.text.Text._get_layout

# (text, font properties, dpi, ...) -> (bounds of the rotated box, lines, box corner and
# size): Text._get_layout's results for _Renderer
_LAYOUTS = {}


def _text_layout(text, renderer):
    """Text._get_layout (the text's box, lines and their offsets from its anchor, which
    Text.draw, Text.get_window_extent and a legend's TextArea ask for, each time), kept
    per process when ``renderer`` is a :class:`_Renderer`: it is a function of the
    string, the font properties, the dpi, the font's metrics (the renderer's: kept per
    font settings), the line spacing, the alignments, the rotation and its mode, and
    whether the string may be mathtext -- all in the key. A wrapped or TeX text, or
    another renderer, is laid out by matplotlib. Installed as Text._get_layout (every
    Text of the process: the cached path is taken only for this module's renderer)."""
    if type(renderer) is not _Renderer or text.get_wrap() or text.get_usetex():
        return _TEXT_GET_LAYOUT(text, renderer)
    angle = text.get_rotation()
    try:
        key = (text.get_text(), text._fontproperties, text.get_figure(root=True).dpi,
               renderer.dpi, _font_key(), text.get_parse_math(), text._linespacing,
               text._multialignment, text._horizontalalignment, text._verticalalignment,
               text.get_rotation_mode(), angle)
    except AttributeError:             # a matplotlib whose Text keeps these otherwise
        return _TEXT_GET_LAYOUT(text, renderer)
    got = _LAYOUTS.get(key)
    if got is None:
        bbox, lines, corner = _TEXT_GET_LAYOUT(text, renderer)
        got = (bbox.bounds, lines, corner)
        if angle == angle:             # not NaN (a key that never matches)
            _LAYOUTS[(key[0], key[1].copy()) + key[2:]] = got
    bounds, lines, corner = got
    return matplotlib.transforms.Bbox.from_bounds(*bounds), list(lines), corner


matplotlib.text.Text._get_layout = _text_layout


class _Canvas(FigureCanvasAgg):
    """An Agg canvas drawing with :class:`_Renderer` (one per size and dpi, as
    FigureCanvasAgg keeps its own; the key is kept here, not in FigureCanvasAgg's private
    ``_lastKey``)."""

    _verify_key = None

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._verify_key != key:
            self.renderer = _Renderer(w, h, self.figure.dpi)
            self._verify_key = key
        return self.renderer


# ------------------------------------------------------------------ ticks

_TICK_PARTS = ("tick1line", "tick2line", "gridline", "label1", "label2")


def _copy_artist(artist):
    """A copy of a tick's Line2D or Text sharing what its drawing only reads (transforms,
    clip box and path, marker, colours), with its own callbacks and font properties: the
    data, position and text a tick's update sets are replaced, never changed in place."""
    new = object.__new__(type(artist))
    new.__dict__.update(artist.__dict__)
    new._callbacks = matplotlib.cbook.CallbackRegistry(signals=["pchanged"])
    if isinstance(artist, matplotlib.text.Text):
        new._fontproperties = artist._fontproperties.copy()
    return new


def _clone_tick(tick):
    """``tick`` and its five artists copied (:func:`_copy_artist`)."""
    new = _copy_artist(tick)
    for part in _TICK_PARTS:
        setattr(new, part, _copy_artist(getattr(tick, part)))
    return new


def _ticks(axis, major, numticks=None):
    """Axis.get_major_ticks / get_minor_ticks: the first tick made by matplotlib, the
    others copied from it (:func:`_clone_tick`). Matplotlib makes each new tick anew (three
    Line2D and two Text, each reading its defaults from rcParams) and then copies the
    first tick's properties onto it, which is what a copy of the first tick has (--quick
    makes 1200 such ticks). Where the copy fails (a matplotlib whose ticks are made
    otherwise), matplotlib makes the tick."""
    ticks = axis.majorTicks if major else axis.minorTicks
    if numticks is None:
        numticks = len(axis.get_majorticklocs() if major else axis.get_minorticklocs())
    while len(ticks) < numticks:
        try:
            tick = _clone_tick(ticks[0]) if ticks else None
        except (AttributeError, TypeError):
            tick = None
        if tick is None:
            tick = axis._get_tick(major=major)
            axis._copy_tick_props(ticks[0] if ticks else tick, tick)
        ticks.append(tick)
    return ticks[:numticks]


def _draw_axis(axis, renderer):
    """Axis.draw, telling :func:`_ticklabel_bboxes` that the next measure it is asked for
    is the draw's own."""
    axis._verify_drawing = True
    try:
        type(axis).draw(axis, renderer)
    finally:
        axis._verify_drawing = False


def _ticklabel_bboxes(axis, ticks, renderer):
    """Axis._get_ticklabel_bboxes, except for Axis.draw's own call when the axis has no
    offset text: draw measures every tick label (a text layout each) only to put the
    offset text (``1e-5``, ``+1e3``) beyond them, and an empty one draws nothing
    wherever it is put. Every other use (tight boxes, a colorbar's label placed beside
    its ticks) measures them."""
    if axis.__dict__.get("_verify_drawing"):
        axis._verify_drawing = False   # the draw's first call, before the ticks draw
        if not axis.major.formatter.get_offset():
            return [], []
    return type(axis)._get_ticklabel_bboxes(axis, ticks, renderer)


def _fast_axes(fig):
    """Every axis of ``fig`` makes its new ticks by :func:`_ticks` and measures its tick
    labels only where they are needed (:func:`_ticklabel_bboxes`); an axes added later,
    such as a twin or a colorbar, is set so when :func:`_save` calls this again."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if "get_major_ticks" not in axis.__dict__:
                axis.get_major_ticks = functools.partial(_ticks, axis, True)
                axis.get_minor_ticks = functools.partial(_ticks, axis, False)
                axis.draw = functools.partial(_draw_axis, axis)
                axis._get_ticklabel_bboxes = functools.partial(_ticklabel_bboxes, axis)


def _figure(nrows=1, ncols=1, figsize=(6, 4), **kw):
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(nrows, ncols, figsize=figsize, dpi=_DPI, **kw)
    _Canvas(fig)                       # the figure draws on it (pyplot still closes it)
    _fast_axes(fig)
    fig._verify_layout = {}            # what _layout needs beyond the axes: legend, colorbar
    return fig, ax


def _save(fig, out, name):
    rel = os.path.join("plots", name)
    path = os.path.join(out, rel)
    tmp = path + ".tmp"
    with plt.rc_context(_RC):
        _layout(fig)
        _ticks_in_view(fig)
        _fast_axes(fig)
        fig.canvas.draw()              # what savefig draws, at the figure's dpi (_DPI)
    _write_png(tmp, np.asarray(fig.canvas.buffer_rgba()), fig.dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return rel


def _png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data)))


def _write_png(path, rgba, dpi):
    """Write the (h, w, 4) uint8 pixels ``rgba`` as an 8-bit RGBA PNG of ``dpi``: each row
    filtered by "Up" (its difference from the row above, computed by NumPy), zlib level
    2. The same pixels as savefig's PNG (Pillow, which tries the five PNG filters on
    every row and keeps the best: half its encoding time) at a third of the CPU, and
    about as many bytes."""
    h, w, _ = rgba.shape
    rows = rgba.reshape(h, 4 * w)
    raw = np.empty((h, 4 * w + 1), np.uint8)
    raw[:, 0] = 2                      # filter type 2, Up (the first row: from zeros)
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])      # modulo 256, as PNG's Up
    ppm = round(dpi / 0.0254)          # pixels per metre
    png = (b"\x89PNG\r\n\x1a\n"
           + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
           + _png_chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
           + _png_chunk(b"IDAT", zlib.compress(raw, 2))
           + _png_chunk(b"IEND", b""))
    with open(path, "wb") as fh:
        fh.write(png)


def _suptitle(fig, text):
    """``fig.suptitle(text)``, kept for _layout (which makes room for it)."""
    fig._verify_layout["suptitle"] = fig.suptitle(text)


def _legend_below(fig, axes, ncol=4):
    """One legend for ``axes`` under the figure: off the data, never covering a point."""
    seen = {}
    for ax in np.atleast_1d(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab and not lab.startswith("_"):
                seen.setdefault(lab, h)
    if seen:
        fig._verify_layout["legend"] = fig.legend(
            seen.values(), seen.keys(), loc="lower center", bbox_to_anchor=(0.5, 0.0),
            borderaxespad=0.0, ncol=min(ncol, len(seen)), frameon=False)


# ------------------------------------------------------------------ layout

# Margins between the measured parts (inches): around the figure and between neighbours.
_PAD = 0.08
_GAP = 0.12


def _extent(text, renderer):
    """(width, height) in inches of a Text artist as it will be drawn; 0 when empty."""
    if not text.get_visible() or not text.get_text():
        return 0.0, 0.0
    bb = text.get_window_extent(renderer)
    return bb.width / _DPI, bb.height / _DPI


def _tick_extent(axis, renderer, rotation=0.0):
    """The largest (width, height) in inches of ``axis``'s tick labels (major and minor,
    within the view limits), from its locators and formatters -- no tick is made."""
    lo, hi = sorted(axis.get_view_interval())
    w = h = 0.0
    for loc, fmt in ((axis.get_major_locator(), axis.get_major_formatter()),
                     (axis.get_minor_locator(), axis.get_minor_formatter())):
        locs = [v for v in loc() if lo - 1e-9 * abs(lo) <= v <= hi + 1e-9 * abs(hi)]
        for label in set(fmt.format_ticks(locs)) if locs else ():
            if label:
                tw, th = _label_size(label, rotation, _font_key())
                w, h = max(w, tw), max(h, th)
    return w, h


@functools.lru_cache(maxsize=4096)
def _label_size(label, rotation, settings):
    """(width, height) in inches of a tick label (most repeat from figure to figure);
    ``settings``: _font_key(), which the font it is measured in follows."""
    fig, renderer = _measuring(settings)
    t = matplotlib.text.Text(0, 0, label, fontsize=_RC["xtick.labelsize"], rotation=rotation)
    t.set_figure(fig)
    return _extent(t, renderer)


@functools.lru_cache(maxsize=1)
def _measuring(settings):
    """A figure and renderer to measure text with (one: making a figure costs more than
    measuring a label), made anew when ``settings`` (_font_key()) change: matplotlib
    keeps text sizes per renderer and font properties, which do not name the font. A
    :class:`_Renderer`, so that the sizes measured here are those the figures' own
    renderers find when they draw the labels (one FreeType measure per label)."""
    fig = matplotlib.figure.Figure(dpi=_DPI)
    return fig, _Canvas(fig).get_renderer()


def _side_need(ax, renderer, side, memo):
    """Inches ``ax`` draws beyond its box on ``side`` ("left", "right", "bottom", "top"):
    tick marks, tick labels and the axis label on that side, or the title on top.
    ``memo``: {(axis, rotation): _tick_extent}, shared by the sides of one placement of
    the axes (the ticks depend on the axes' size)."""
    def extent(axis, rotation=0.0):
        key = axis, rotation
        if key not in memo:
            memo[key] = _tick_extent(axis, renderer, rotation)
        return memo[key]
    if side == "top":
        return max(_extent(t, renderer)[1] for t in _titles(ax)) + 6 / 72 + \
            _offset_height(ax, renderer)
    rot = getattr(ax, "_verify_xrot", 0.0)
    tick = 7 / 72                      # tick length + pad (3.5 pt each)
    if side == "bottom":
        tw, th = extent(ax.xaxis, rot)
        lh = _extent(ax.xaxis.label, renderer)[1]
        return (th + tick if th else 3.5 / 72) + (lh + 4 / 72 if lh else 0.0)
    # the first and last x tick labels are centred on the box's edges: half sticks out
    need = extent(ax.xaxis, rot)[0] / 2
    if ax.yaxis.get_label_position() == side:      # a twin's y axis is on the right
        tw = extent(ax.yaxis)[0]
        lw = _extent(ax.yaxis.label, renderer)[0]
        need = max(need, (tw + tick if tw else 3.5 / 72) + (lw + 4 / 72 if lw else 0.0))
    return need


def _titles(ax):
    """The title Text artists of ``ax``: the centre one (public) and, where this matplotlib
    has them, the left and right ones (private attributes; no verify plot sets those)."""
    sides = (getattr(ax, "_left_title", None), getattr(ax, "_right_title", None))
    return [ax.title] + [t for t in sides if t is not None]


def _offset_text(axis):
    """The offset or multiplier text (``1e-5``, ``+1e3``) a ScalarFormatter puts at the end
    of ``axis``, or ""."""
    fmt = axis.get_major_formatter()
    if not isinstance(fmt, matplotlib.ticker.ScalarFormatter):
        return ""
    lo, hi = sorted(axis.get_view_interval())
    fmt.set_locs([v for v in axis.get_major_locator()() if lo <= v <= hi])
    return fmt.get_offset()


def _offset_height(ax, renderer):
    """Inches the y axis' offset text (ScalarFormatter's ``1e-5``) adds above ``ax``."""
    text = _offset_text(ax.yaxis)
    if not text:
        return 0.0
    t = matplotlib.text.Text(0, 0, text, fontsize=_RC["ytick.labelsize"])
    t.set_figure(ax.figure)
    return _extent(t, renderer)[1] + 2 / 72


def _place_labels(ax, renderer, w, h):
    """Put ``ax``'s axis labels and title where matplotlib's automatic placement puts them
    (beyond the tick labels by the label pad; the title 6 pt above the box, above a y
    offset text if any), from the measured tick label sizes: the automatic placement
    lays out every tick label of the axes and its twins once more per label, a third of
    a figure's cost. ``w``, ``h``: the axes box in inches."""
    if not ax.axison:
        return
    tick, pad = 7 / 72, matplotlib.rcParams["axes.labelpad"] / 72
    th = _tick_extent(ax.xaxis, renderer, getattr(ax, "_verify_xrot", 0.0))[1]
    if ax.xaxis.get_label_position() == "bottom":
        ax.xaxis.set_label_coords(0.5, -((th + tick if th else 0.0) + pad) / h)
    tw = _tick_extent(ax.yaxis, renderer)[0]
    off = (tw + tick if tw else 0.0) + pad
    ax.yaxis.set_label_coords(1 + off / w if ax.yaxis.get_label_position() == "right"
                              else -off / w, 0.5)
    ax.title.set_y(1 + _offset_height(ax, renderer) / h)


def _layout(fig):
    """Place the axes of a one-row figure by measured margins: each axes' tick labels,
    axis labels and title, its twin's right-hand labels, the colorbar and the legend
    under the figure (``_legend_below``) are measured as text (never drawn) and the axes
    get the rest, in the width ratios of their grid. Constrained layout does the same by
    drawing every tick of every axes once more: about half of a plot's cost."""
    _plain_log_labels(fig)
    renderer = fig.canvas.get_renderer()
    W, H = fig.get_size_inches()
    meta = getattr(fig, "_verify_layout", {})
    cbar = meta.get("cbar")                      # (colorbar axes, the axes it belongs to)
    groups = {}                        # grid column -> [its axes, then its twins]
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None and (cbar is None or ax is not cbar[0]):
            groups.setdefault(spec.colspan.start, []).append(ax)
    cols = sorted(groups)
    mains = [groups[c][0] for c in cols]
    left, right, bottom, top = [], [], [], []
    memo = {}
    for c, ax in zip(cols, mains):
        group = groups[c]
        left.append(max(_side_need(a, renderer, "left", memo) for a in group))
        right.append(max(_side_need(a, renderer, "right", memo) for a in group))
        bottom.append(max(_side_need(a, renderer, "bottom", memo) for a in group))
        top.append(max(_side_need(a, renderer, "top", memo) for a in group))
        if not ax.axison:              # annotations drawn off the axes: a fixed margin
            left[-1] = right[-1] = bottom[-1] = 0.3
            top[-1] += 0.3
    if cbar is not None:
        right[-1] += 0.1 + 0.16 + _side_need(cbar[0], renderer, "right", memo)
    leg = meta.get("legend")
    leg_h = leg.get_window_extent(renderer).height / _DPI if leg is not None else 0.0
    sup = meta.get("suptitle")                   # set by _suptitle
    sup_h = _extent(sup, renderer)[1] + 0.06 if sup is not None else 0.0
    y0 = _PAD + leg_h + (_GAP if leg_h else 0.0) + max(bottom)
    y1 = H - _PAD - sup_h - max(top)
    gs = mains[0].get_subplotspec().get_gridspec()
    ratios = gs.get_width_ratios() or [1] * gs.ncols
    ratios = [ratios[c] for c in cols]

    def widths():
        gaps = sum(right[k] + left[k + 1] + _GAP for k in range(len(mains) - 1))
        avail = W - 2 * _PAD - left[0] - right[-1] - gaps
        return [avail * r / sum(ratios) for r in ratios]
    # a title wider than its axes is centred on it: half the excess on either side
    for k, w in enumerate(widths()):
        over = (_extent(mains[k].title, renderer)[0] - w) / 2
        if over > 0:
            left[k], right[k] = max(left[k], over + _GAP), max(right[k], over + _GAP)
    x = _PAD + left[0]
    for k, (ax, w) in enumerate(zip(mains, widths())):
        ax.set_position([x / W, y0 / H, w / W, (y1 - y0) / H])
        if cbar is not None and ax is cbar[1]:
            h = 0.85 * (y1 - y0)
            cbar[0].set_position([(x + w + 0.1) / W, (y0 + (y1 - y0 - h) / 2) / H,
                                  0.16 / W, h / H])
        x += w + right[k] + _GAP + (left[k + 1] if k + 1 < len(mains) else 0.0)
    for c in cols:
        box = groups[c][0].get_position()
        for a in groups[c]:
            _place_labels(a, renderer, box.width * W, box.height * H)
    if sup is not None:
        sup.set_y(1 - _PAD / H)
    if leg is not None:
        leg.set_bbox_to_anchor((0.5, _PAD / H), transform=fig.transFigure)


def _contains_close(interval, val, rtol=1e-10):
    """Whether ``val`` lies in ``interval`` widened by ``rtol`` of its length at each end:
    matplotlib.transforms._interval_contains_close restated, for a matplotlib without it."""
    a, b = sorted(interval)
    rtol = (b - a) * rtol
    return a - rtol <= val <= b + rtol


# the test by which matplotlib's axis draws a tick (private: used where it exists, so the
# ticks kept are exactly those it would draw)
_interval_contains_close = getattr(matplotlib.transforms, "_interval_contains_close",
                                   _contains_close)


class _InView(matplotlib.ticker.Locator):
    """``locator``'s locations that are drawn: those in the axis' view interval, by the
    test matplotlib applies to the ticks it has made (the scale's transform, a relative
    tolerance of 1e-10). Matplotlib makes a tick (five artists) for every location its
    locator returns and draws only those in view; most axes' locators return one or two
    beyond each end, and a log axis' minor locator whole decades."""

    def __init__(self, locator):
        self.locator = locator

    def set_axis(self, axis):
        super().set_axis(axis)
        self.locator.set_axis(axis)

    def __call__(self):
        locs = np.asarray(self.locator())
        if locs.size == 0:
            return locs
        tr = self.axis.get_transform()
        lo, hi = sorted(self.axis.get_view_interval())
        interval_t = tr.transform([lo, hi])
        keep = [k for k, v in enumerate(tr.transform(locs))
                if _interval_contains_close(interval_t, v)]
        return locs[keep]

    def tick_values(self, vmin, vmax):
        return self.locator.tick_values(vmin, vmax)


def _ticks_in_view(fig):
    """Every axis of ``fig`` locates only the ticks it draws (:class:`_InView`), once its
    view limits are final."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for loc, setter in ((axis.get_major_locator(), axis.set_major_locator),
                                (axis.get_minor_locator(), axis.set_minor_locator)):
                if not isinstance(loc, (_InView, matplotlib.ticker.NullLocator)):
                    setter(_InView(loc))


class _PlainLogFormatter(matplotlib.ticker.LogFormatterSciNotation):
    """The labels of matplotlib's log axes (the same ticks labelled, the same values) as
    plain text, 10⁻³ and 2×10⁻³, instead of mathtext: laying out mathtext is most of a
    log axis' cost."""

    _SUP = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

    def __call__(self, x, pos=None):
        s = super().__call__(x, pos)
        if not (s.startswith(r"$\mathdefault{") and s.endswith("}$")):
            return s
        s = s[len(r"$\mathdefault{"):-2].replace(r"\times", "×")
        base, sep, exp = s.partition("^{")
        return base + exp.rstrip("}").translate(self._SUP) if sep else s


def _plain_log_labels(fig):
    """Every log axis of ``fig`` labelled by :class:`_PlainLogFormatter`."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for fmt, setter in ((axis.get_major_formatter(), axis.set_major_formatter),
                                (axis.get_minor_formatter(), axis.set_minor_formatter)):
                if type(fmt) is matplotlib.ticker.LogFormatterSciNotation:
                    try:               # its settings are private attributes
                        plain = _PlainLogFormatter(
                            base=fmt._base, labelOnlyBase=fmt.labelOnlyBase,
                            minor_thresholds=fmt.minor_thresholds,
                            linthresh=fmt._linthresh)
                    except (AttributeError, TypeError):   # mathtext labels, as given
                        continue
                    setter(plain)


def _floor(u):
    return max(float(u), 1e-3) if not math.isinf(u) else 1e20


def _ulp_axis(ax, label="error (ulp; 0 drawn at 1e-3)"):
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_ylabel(label)


# ------------------------------------------------------------------ activations

def _abs_axis_points(recs):
    """|z| for a log axis (z = 0 drawn at the left edge) and the sign of z."""
    xs = np.array([abs(r["x"]) for r in recs], dtype=float)
    tiny = max(np.min(xs[xs > 0]) / 10, 5e-324) if np.any(xs > 0) else 1e-3
    return np.where(xs > 0, xs, tiny), np.array([r["x"] < 0 for r in recs])


def _activation_plot(it, out):
    res = it["_result"]
    fw = res.points.get("forward", {})
    vj = res.points.get("vjp", {})
    acc = it.get("_accuracy")
    name = it["name"]
    ncol = 4 if acc else 3
    fig, ax = _figure(1, ncol, figsize=(4.0 * ncol, 3.9))
    for k, (recs, title) in enumerate(((fw.get("float64", []), f"{name}(z)"),
                                       (vj.get("float64", []), f"{name}'(z)"))):
        near = sorted((r for r in recs if abs(r["x"]) <= 6), key=lambda r: r["x"])
        smooth = [r for r in near if r["exact"] is not None]
        ax[k].plot([r["x"] for r in smooth], [r["exact"] for r in smooth], "k-", lw=1.5,
                   label="SymPy (exact, mpmath)")
        ax[k].plot([r["x"] for r in near], [r["got"] for r in near], "o", ms=3, color="C0",
                   label="nnlib float64")
        for r in near:
            if r.get("interval"):            # a kink: the subdifferential and the pick
                lo, hi = r["interval"]
                ax[k].plot([r["x"], r["x"]], [lo, hi], "-", color="C3", lw=4, alpha=0.5,
                           label="subdifferential at the kink")
        ax[k].set_title(f"{title}: nnlib vs SymPy, |z| ≤ 6")
        ax[k].set_xlabel("z")
    span = [math.inf, 0.0]
    for which, mk in (("forward", "o"), ("vjp", "x")):
        for dt, recs in res.points.get(which, {}).items():
            xs, neg = _abs_axis_points(recs)
            span = [min(span[0], xs.min()), max(span[1], xs.max())]
            us = np.array([_floor(r["ulps"]) for r in recs])
            c = _STYLE[dt]["color"]
            ax[2].plot(xs[~neg], us[~neg], mk, ms=3.5, color=c, ls="none",
                       label=f"{which} {dt}")
            ax[2].plot(xs[neg], us[neg], mk, ms=3.5, color=c, ls="none", alpha=0.35)
    ax[2].set_xscale("log")
    if span[1] > 0:      # explicit: autoscale's margins overflow past 1e308
        ax[2].set_xlim(span[0], span[1])
    if span[1] > 0:      # a few decades, evenly spaced: a readable axis over 600 decades
        lo, hi = math.log10(max(span[0], 5e-324)), math.log10(span[1])
        step = next(k for k in (1, 2, 5, 10, 20, 50, 100, 200) if (hi - lo) / k <= 7)
        exps = [e for e in range(int(math.floor(lo / step) * step), int(hi) + 1, step)
                if lo <= e <= hi]
        ax[2].set_xticks([10.0 ** e for e in exps], [f"1e{e}" for e in exps])
        ax[2].xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    _ulp_axis(ax[2])
    ax[2].set_xlabel("|z| (faint: z < 0; z = 0 at the left edge)")
    ax[2].set_title("error of every point of the check")
    if acc:
        for s in acc["series"]:
            zs = np.abs(np.array(s["z"]))
            pos = np.array(s["z"]) > 0
            ls = "-" if s["path"].startswith("vjp") else ":"
            c = _STYLE[s["dtype"]]["color"]
            for mask, side in ((pos, "z>0"), (~pos, "z<0")):
                ax[3].plot(zs[mask], [_floor(u) for u in np.array(s["ulps"])[mask]], ls,
                           color=c, alpha=1.0 if side == "z>0" else 0.4, lw=1,
                           label=f"{s['path'].split(' ')[0]} {s['dtype']} (faint: z < 0)"
                           if side == "z>0" else None)
            if s["z_star"]:
                ax[3].axvline(s["z_star"], color=c, lw=0.6, ls="--")
            ax[3].axhline(s["tol_ulps"], color=c, lw=0.5)
        ax[3].set_xscale("log")
        _ulp_axis(ax[3])
        ax[3].set_xlabel("|z|")
        ax[3].set_title(f"{name}' from the output: error vs |z|\n(dashed: first |z| over "
                        "the ulp bound)")
    for a in ax:
        a.grid(alpha=0.3)
    _legend_below(fig, ax, ncol=6)
    return [(f"{name}: compiled vs SymPy and the error in ULPs at every point of the "
             "check" + (" (right: the derivative-from-output sweep of the accuracy rows)"
                        if acc else ""), _save(fig, out, f"{name}.png"))]


# ------------------------------------------------------------------ output maps

_TRI = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])


def _simplex_plot(soft, sparse, out):
    fig, ax = _figure(1, 3, figsize=(14, 4.8))
    for k, it in enumerate((soft, sparse)):
        recs = it["_slice"].points.get("forward", {}).get("float64", [])
        P = np.array([r["got"] for r in recs])
        on_edge = np.any(P == 0.0, axis=1)
        XY = P @ _TRI
        ax[k].fill(_TRI[:, 0], _TRI[:, 1], color="0.93", zorder=0)
        ax[k].plot(*np.vstack([_TRI, _TRI[:1]]).T, "k-", lw=1)
        ax[k].scatter(XY[~on_edge, 0], XY[~on_edge, 1], s=9, c="C0",
                      label="interior (all p_j > 0)")
        ax[k].scatter(XY[on_edge, 0], XY[on_edge, 1], s=14, c="C3", marker="s",
                      label="on the boundary (some p_j = 0)")
        for j, name in enumerate(("p0 = 1", "p1 = 1", "p2 = 1")):
            ax[k].annotate(name, _TRI[j], ha="center",
                           va="top" if j < 2 else "bottom")
        ax[k].set_title(f"{it['name']}(a, b, 0) in the probability simplex\n(nnlib float64: "
                        f"{int(on_edge.sum())} of {len(P)} outputs on the boundary)")
        ax[k].set_aspect("equal")
        ax[k].axis("off")

        for which, mk in (("forward", "o"), ("vjp", "x")):
            for dt, rs in it["_slice"].points.get(which, {}).items():
                ax[2].plot(sorted(_floor(r["ulps"]) for r in rs), mk, ms=3,
                           label=f"{it['name']} {which} {dt}")
    _ulp_axis(ax[2], "worst component error (ulp), sorted")
    ax[2].set_xlabel("slice row (sorted by error)")
    ax[2].set_title("compiled - exact on the slice (both maps, both dtypes)")
    ax[2].grid(alpha=0.3)
    _legend_below(fig, ax, ncol=4)
    rel = _save(fig, out, "simplex_softmax_sparsemax.png")
    cap = ("softmax vs sparsemax on the 3-class slice z = (a, b, 0), drawn in the simplex "
           "from the compiled outputs of the slice check: sparsemax reaches the boundary, "
           "softmax never does")
    return [(cap, rel)]


# ------------------------------------------------------------------ losses

def _loss_plot(it, out):
    res = it["_sweep"]
    fig, ax = _figure(1, 2, figsize=(12, 4.4))
    t_of = (lambda x: x[0][0]) if isinstance(res.points["loss"]["float64"][0]["x"][0], list) \
        else (lambda x: x[0])
    twins = []
    for k, which in enumerate(("loss", "grad")):
        twin = ax[k].twinx()
        twins.append(twin)
        for dt, recs in res.points.get(which, {}).items():
            if which == "loss":
                ts = [t_of(r["x"]) for r in recs]
                ex = [r["exact"] for r in recs]
                got = [r["got"] for r in recs]
            else:
                ts = [r["x"][0] for r in recs]
                ex = [min(c[0] for c in r["exact"]) for r in recs]
                got = [r["got"][0] for r in recs]
                for t, r in zip(ts, recs):
                    if len(r["exact"]) > 1:     # a kink: the subdifferential's range
                        vals = [c[0] for c in r["exact"]]
                        ax[k].plot([t, t], [min(vals), max(vals)], "-", color="C3", lw=5,
                                   alpha=0.4, label="subdifferential (SymPy)")
            if dt == "float64":
                ax[k].plot(ts, ex, "k-", lw=1.5, label="SymPy (exact)")
            ax[k].plot(ts, got, _STYLE[dt]["marker"], ms=3, color=_STYLE[dt]["color"],
                       label=f"nnlib {dt}")
            twin.plot(ts, [_floor(r["ulps"]) for r in recs], "-", lw=0.8, alpha=0.6,
                      color=_STYLE[dt]["color"], label=f"error {dt}")
        _ulp_axis(twin, "compiled - SymPy (ulp; floor 1e-3)")
        ax[k].set_xlabel("t")
        worst = {dt: max(r["ulps"] for r in recs)
                 for dt, recs in res.points.get(which, {}).items()}
        ax[k].set_title(("loss L" if which == "loss" else "gradient dL/dz_0")
                        + " along the sweep (the sweep check's points)\nmax error "
                        + ", ".join(f"{dt} {u:.3g} ulp" for dt, u in worst.items()))
        ax[k].grid(alpha=0.3)
    _legend_below(fig, list(ax) + twins, ncol=4)
    from verify.losses import SWEEP_TEXT
    cap = (f"{it['name']} and its derivative along {SWEEP_TEXT[it['name']]}: SymPy vs "
           "compiled, error in ULPs on the right axis (the sweep check's points)")
    return [(cap, _save(fig, out, f"loss_{it['name']}.png"))]


# ------------------------------------------------------------------ ULP distributions

def _ulp_summary(items, out):
    from verify.api import CheckResult
    rows = []
    for it in items:
        res = it.get("_result")
        if not isinstance(res, CheckResult):
            continue
        for which, per in res.samples.items():
            for dt, vals in per.items():
                rows.append((f"{it['name']} {which}", dt, vals))
    if not rows:
        return []
    labels = sorted({r[0] for r in rows}, key=lambda s: [r[0] for r in rows].index(s))
    edges = [0.5, 1, 10, 1e2, 1e4, 1e8, 1e16, math.inf]
    edge_txt = ["<=0.5", "<=1", "<=10", "<=1e2", "<=1e4", "<=1e8", "<=1e16", ">1e16"]
    fig, ax = _figure(1, 3, figsize=(15, 0.3 * len(labels) + 2.2),
                           gridspec_kw=dict(width_ratios=[1.4, 1, 1]))
    y = np.arange(len(labels))
    for off, dt in ((-0.2, "float64"), (0.2, "float32")):
        mx = [max((_floor(v) for lab, d, vs in rows if lab == L and d == dt for v in vs),
                  default=np.nan) for L in labels]
        ax[0].barh(y + off, mx, height=0.4, color=_STYLE[dt]["color"], label=dt)
    ax[0].set_xscale("log")
    ax[0].set_yticks(y, labels)
    ax[0].set_ylim(len(labels) - 0.5, -0.5)
    ax[0].set_xlabel("max error over the check's points (ulp)")
    ax[0].set_title("largest error per kernel output")
    ax[0].grid(alpha=0.3, axis="x")
    _legend_below(fig, ax[:1], ncol=2)
    for k, dt in ((1, "float64"), (2, "float32")):
        M = np.zeros((len(labels), len(edges)))
        for i, L in enumerate(labels):
            vs = [v for lab, d, vals in rows if lab == L and d == dt for v in vals]
            for v in vs:
                M[i, next(j for j, e in enumerate(edges) if v <= e)] += 1
            if vs:
                M[i] /= len(vs)
        ax[k].imshow(M, aspect="auto", cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(edges)):
                if M[i, j] > 0:
                    ax[k].text(j, i, f"{100 * M[i, j]:.0f}", ha="center", va="center", fontsize=7.5,
                               color="k" if M[i, j] < 0.6 else "w")
        ax[k].set_xticks(range(len(edges)), edge_txt, rotation=45)
        ax[k]._verify_xrot = 45                # for _layout: the labels' height
        ax[k].set_yticks(y, [""] * len(labels))
        ax[k].set_ylim(len(labels) - 0.5, -0.5)
        ax[k].set_title(f"{dt}: % of points per error decade (ulp)")
    return [("distribution of the compiled-vs-exact error (ULPs) per kernel, output and "
             "dtype, over every point of the evidence checks; points far right passed by "
             "the absolute bound (tiny exact values, see each kernel's tolerance)",
             _save(fig, out, "ulp_distributions.png"))]


# ------------------------------------------------------------------ convexity

def _convexity_plot(it, out, idx):
    d = it["_data"]
    sw = d["sweep"]
    fig, ax = _figure(1, 2 if sw else 1, figsize=(11 if sw else 6, 4.0), squeeze=False)
    _suptitle(fig, f"{it['name']}: {it['verdict']}")
    ax = ax[0]
    k = 0
    if sw:
        E = np.array(sw["eigs"])
        for j in range(E.shape[1]):
            ax[0].plot(sw["s"], E[:, j], "-", lw=1.5 if j == 0 else 0.8,
                       color="C3" if j == 0 else "0.5",
                       label="smallest eigenvalue" if j == 0 and E.shape[1] > 1 else
                       ("f''" if E.shape[1] == 1 else None))
        ax[0].axhline(0, color="k", lw=0.6)
        neg = E[:, 0] < -1e-25                 # the check's threshold (0 is convex)
        if neg.any():
            ax[0].plot(np.array(sw["s"])[neg], E[neg, 0], "v", color="C3", ms=4,
                       label="negative: not convex here")
        w = d.get("witness")
        if w is not None:
            wv = w if isinstance(w, (tuple, list)) else (w,)
            if d["n_vars"] == 1:
                s_w = float(wv[0]) / sw["direction"][0]
            else:
                s_w = 0.0                      # the line passes through the witness
            ax[0].axvline(s_w, color="C3", ls="--", lw=0.8, label=f"witness {tuple(wv)}")
        where = ("x(s) = s·d" if not any(sw["base"]) else f"x(s) = {tuple(sw['base'])} + s·d")
        ax[0].set_title(("f'' " if d["n_vars"] == 1 else "Hessian eigenvalues ") +
                        f"along {where}")
        ax[0].set_xlabel("s")
        ax[0].grid(alpha=0.3)
        k = 1
    g = np.array(d["gaps"])
    if g.size:
        bins = 30
        ax[k].hist(g[g <= 1e-25], bins=bins, color="C0", alpha=0.8, histtype="stepfilled",
                   label=f"chord holds ({int((g <= 1e-25).sum())})")
        if (g > 1e-25).any():
            ax[k].hist(g[g > 1e-25], bins=bins, color="C3", alpha=0.8, histtype="stepfilled",
                       label=f"chord violated ({int((g > 1e-25).sum())})")
        ax[k].axvline(0, color="k", lw=0.6)
        ax[k].set_xlabel("chord gap (convex: <= 0)")
        ax[k].set_ylabel("chords")
    else:
        ax[k].text(0.5, 0.5, "no random chord test for this case\n(proved by certificate)",
                   ha="center", va="center", transform=ax[k].transAxes)
    ax[k].set_title("chord gaps f((1-t)a+tb) - [(1-t)f(a)+t f(b)]\nat the check's random chords")
    _legend_below(fig, ax, ncol=4)
    cap = (f"{it['name']}: " + ("curvature along a line (the check's sweep) and " if sw else "")
           + "the chord gaps the check computed (convex: all <= 0)")
    return [(cap, _save(fig, out, f"convexity_{idx:02d}.png"))]


# ------------------------------------------------------------------ the notes

def _xor_plot(it, out, idx):
    g = it["_grid"]
    ax_ = np.array(g["axis"])
    O = np.array(g["out"])
    step = ax_[1] - ax_[0]
    ext = [ax_[0] - step / 2, ax_[-1] + step / 2] * 2
    fig, ax = _figure(figsize=(6.4, 5.4))
    level = (min(g["sym"]) + max(g["sym"])) / 2     # between the two output codes
    norm = None
    if O.min() < level < O.max():
        norm = matplotlib.colors.TwoSlopeNorm(vcenter=level, vmin=O.min(), vmax=O.max())
    im = ax.imshow(O, origin="lower", extent=ext, cmap="coolwarm", alpha=0.55, norm=norm)
    cax = fig.add_axes([0, 0, 1, 1])      # placed beside ax by _layout
    fig.colorbar(im, cax=cax, label="network output (nnlib)")
    fig._verify_layout["cbar"] = (cax, ax)
    if O.min() < level < O.max():
        ax.contour(ax_, ax_, O, levels=[level], colors="k", linewidths=2)
        ax.plot([], [], "k-", lw=2, label=f"decision boundary (output = {level:g})")
    xs = np.array([ext[0], ext[1]])
    W, b = g["layers"][0][0], g["layers"][0][1]
    for j in range(len(b)):
        w0, w1, bj = float(W[0][j]), float(W[1][j]), float(b[j])
        lab = "a hidden unit's line (pre-activation 0)" if j == 0 else None
        if w1 != 0:
            ax.plot(xs, -(w0 * xs + bj) / w1, "k--", lw=0.8, label=lab)
        else:
            ax.axvline(-bj / w0, color="k", ls="--", lw=0.8, label=lab)
    for (x1, x2), v in zip(g["points"], g["sym"]):
        ax.plot(x1, x2, "ko", ms=7)
        ax.annotate(f"{v}", (x1, x2), textcoords="offset points", xytext=(7, 7),
                    weight="bold", fontsize=12,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(f"{it['name'].split(':')[0]}: decision regions\n"
                 "(labels: SymPy's exact output at the four XOR inputs)")
    _legend_below(fig, [ax], ncol=1)
    return [("decision regions of the notes' construction, computed by nnlib's compiled "
             "dense_forward on the grid the check compares with the exact rational forward",
             _save(fig, out, f"xor_{idx}.png"))]


def _trajectory_plot(it, out):
    series = it["_traj"]
    names = list(dict.fromkeys(s["label"] for s in series))
    fig, ax = _figure(1, len(names), figsize=(4.6 * len(names), 4.2))
    ax = np.atleast_1d(ax)
    twins = []
    for k, name in enumerate(names):
        twin = ax[k].twinx()
        for s in (s for s in series if s["label"] == name):
            ks = np.arange(len(s["x"]))
            if s["dtype"] == "float64":
                ax[k].plot(ks, s["exact"], "k-", lw=1.5, label="SymPy")
            ax[k].plot(ks, s["x"], _STYLE[s["dtype"]]["marker"], ms=4,
                       color=_STYLE[s["dtype"]]["color"], label=f"nnlib {s['dtype']}")
            twin.plot(ks, [_floor(u) for u in s["ulps"]], "-", lw=0.8, alpha=0.6,
                      color=_STYLE[s["dtype"]]["color"], label=f"error {s['dtype']}")
        _ulp_axis(twin, "nnlib - SymPy (ulp)")
        twins.append(twin)
        ax[k].set_xlabel("step k")
        ax[k].set_ylabel("iterate x_k")
        ax[k].set_title(f"{name}: x_k, nnlib vs SymPy")
        ax[k].grid(alpha=0.3)
    _legend_below(fig, list(ax) + twins, ncol=5)
    return [("iterates x_k of nnlib's optimizers on the notes' quadratic vs SymPy, error in "
             "ULPs on the right axis", _save(fig, out, "optimizer_trajectories.png"))]


# ------------------------------------------------------------------ universal approximation

def _uat_plot(it, out, idx):
    d = it["_uat"]
    target = it["name"].split(": ", 1)[-1]
    fig, ax = _figure(1, 2, figsize=(12, 4.4))
    for act, mk, c in (("sigmoid", "o", "C0"), ("tanh", "s", "C1")):
        ax[0].plot(d["widths"], d["sup"][act], "-" + mk, color=c, label=f"sup-norm error, {act}")
        ax[0].plot(d["widths"], d["rms"][act], ":" + mk, color=c, alpha=0.6,
                   label=f"RMS error, {act}")
    ax[0].set_xscale("log", base=2)
    ax[0].set_yscale("log")
    ax[0].set_xticks(d["widths"], [str(w) for w in d["widths"]])
    ax[0].set_xlabel("hidden units N (one hidden layer, linear output)")
    ax[0].set_ylabel("error on [-1, 1]")
    ax[0].set_title(f"f(x) = {target}: error of the fitted network vs its width")
    ax[0].grid(alpha=0.3, which="both")
    wide = np.array(d["wide"])
    ax[1].axvspan(-1.5, d["interval"][0], color="0.9")
    ax[1].axvspan(d["interval"][1], 1.5, color="0.9", label="outside [-1, 1] (no promise)")
    ax[1].plot(wide, d["target_wide"], "k-", lw=2.2, label=f"f(x) = {target}")
    for k, (lab, ys) in enumerate(d["fits"].items()):
        ax[1].plot(wide, ys, "-", lw=1.1, color=f"C{k + 2}", label=f"nnlib, {lab}")
    ax[1].set_xlim(-1.5, 1.5)
    finite = np.array(d["target_wide"], dtype=float)
    lo, hi = np.nanmin(finite), np.nanmax(finite)
    ax[1].set_ylim(lo - 0.6 * (hi - lo + 0.2), hi + 0.6 * (hi - lo + 0.2))
    ax[1].set_xlabel("x")
    ax[1].set_title("the target and a few fitted networks, beyond the interval")
    ax[1].grid(alpha=0.3)
    _legend_below(fig, ax, ncol=4)
    cap = (f"universal approximation, f(x) = {target}: one-hidden-layer networks of growing "
           "width fitted by nnlib (L-BFGS); left, the sup-norm and RMS errors on [-1, 1]; "
           "right, fits of three widths, drawn beyond the interval where the theorem says "
           "nothing")
    return [(cap, _save(fig, out, f"approximation_{idx}.png"))]


# ------------------------------------------------------------------ driver

# What a plot function reads from its items is the checks' data; these keys are not part
# of it (wall times, and the list of figures the plots themselves fill in)
_NOT_PLOTTED = ("seconds", "plots")


def _plotted(arg, out):
    """An argument of a plot function as it enters the cache key: items without their
    volatile keys, the output directory (where, not what) left out."""
    if isinstance(arg, dict):
        return {k: v for k, v in arg.items() if k not in _NOT_PLOTTED}
    if isinstance(arg, list):
        return [_plotted(a, out) for a in arg]
    return None if arg is out else arg


def _drawn(fn, args, out):
    """``fn(*args)`` -- [(caption, path relative to out)] of the figures it wrote -- or,
    when a figure of exactly these numbers was drawn before by this source version of
    verify with the same libraries, those figures' bytes written again (verify.cache: the
    key holds every number the plot draws, so a changed kernel output is a miss)."""
    from verify import cache
    try:
        import PIL
        versions = (matplotlib.__version__, np.__version__, PIL.__version__)
        key = cache.key_of("plot " + fn.__name__, versions,
                           [_plotted(a, out) for a in args])
    except Exception:                  # unpicklable data: draw it, uncached
        return fn(*args)
    hit = cache.load(key)
    try:                               # a malformed entry is a miss: the plot is drawn
        made = [(str(cap), str(rel)) for cap, rel in hit["plots"]]
        files = {rel: base64.b64decode(hit["files"][rel], validate=True) for _, rel in made}
        if not all(os.path.dirname(rel) == "plots" and
                   os.path.basename(rel) not in ("", ".", "..") for rel in files):
            raise ValueError("not a plot path")
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    else:
        for rel, data in files.items():
            path = os.path.join(out, rel)
            with open(path + ".tmp", "wb") as fh:
                fh.write(data)
            os.replace(path + ".tmp", path)
        return made
    made = fn(*args)
    files = {}
    for _, rel in made:
        with open(os.path.join(out, rel), "rb") as fh:
            files[rel] = base64.b64encode(fh.read()).decode("ascii")
    cache.store(key, {"plots": [list(p) for p in made], "files": files})
    return made


def make_plots(data, out, summary=True, first=None):
    """Draw every plot; returns a list of errors (a plot that fails is reported in the
    report, not fatal). Sets ``item["plots"]`` and ``data["summary_plots"]`` (the ULP
    summary only when ``summary``: a worker process draws its own sections' plots).
    ``first``: {"convexity" / "xor" / "uat": n}, the number before the first such plot's
    file name (a worker draws one check of a section)."""
    os.makedirs(os.path.join(out, "plots"), exist_ok=True)
    items = data["items"]
    errors = []

    cpu = data.setdefault("plot_cpu_seconds", {})

    def attempt(target, fn, *args):
        t0 = time.process_time()
        try:
            with np.errstate(over="ignore"):   # symlog axes spanning +-1e308
                target.setdefault("plots", []).extend(_drawn(fn, args, out))
        except Exception as exc:     # one broken plot must not hide the report
            errors.append(f"{fn.__name__} ({target.get('name', 'summary')}): {exc!r}")
            target.setdefault("plots", [])
        key = fn.__name__.strip("_")
        cpu[key] = round(cpu.get(key, 0) + time.process_time() - t0, 3)

    by_name = {it["name"]: it for it in items if it.get("section") == "kernels"}
    first = first or {}
    n_conv, n_xor, n_uat = (first.get(k, 0) for k in ("convexity", "xor", "uat"))
    for it in items:
        if it.get("section") == "kernels" and it.get("_result") is not None:
            if it.get("kind") == "activation":
                attempt(it, _activation_plot, it, out)
            elif it.get("kind") == "loss" and it.get("_sweep") is not None:
                attempt(it, _loss_plot, it, out)
        elif it.get("section") == "convexity" and it.get("_data"):
            n_conv += 1
            attempt(it, _convexity_plot, it, out, n_conv)
        elif it.get("section") == "notes" and it.get("_grid"):
            n_xor += 1
            attempt(it, _xor_plot, it, out, n_xor)
        elif it.get("section") == "notes" and it.get("_traj"):
            attempt(it, _trajectory_plot, it, out)
        elif it.get("section") == "approximation" and it.get("_uat"):
            n_uat += 1
            attempt(it, _uat_plot, it, out, n_uat)
    soft, sparse = by_name.get("softmax"), by_name.get("sparsemax")
    if soft and sparse and soft.get("_slice") and sparse.get("_slice"):
        attempt(sparse, _simplex_plot, soft, sparse, out)
        soft["plots"] = soft.get("plots", []) + sparse["plots"][-1:]
    if summary:
        summary = {"name": "ULP summary"}
        attempt(summary, _ulp_summary,
                [it for it in items if it.get("section") == "kernels"], out)
        data["summary_plots"] = summary["plots"]
    return errors
