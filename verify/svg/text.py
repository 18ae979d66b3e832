"""Text in the SVG figures: its width estimated without a font, and escaping.

The browser lays the text out; the figure only needs each text's width to size margins,
legend columns and colorbars. The widths are DejaVu Sans' advance widths (the font the
figures name first, as matplotlib's default), so with DejaVu Sans installed the estimate is
the rendered width; a browser that picks another font is held to it by ``textLength``
(:func:`text_length`), which spaces the glyphs to the width the layout assumed.
"""
import re

__all__ = ["text_width", "text_length", "esc", "num", "PT", "MINUS", "FONT_FAMILY"]

# DejaVu Sans advance widths, 1/1000 em, of the characters 32..126 (FreeType's
# linearHoriAdvance of DejaVuSans.ttf); characters outside get _WIDE's or a digit's
_ADV = [318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636,
        636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684,
        686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695,
        635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550,
        635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392,
        634, 592, 818, 592, 592, 525, 636, 337, 636, 838]
_WIDE = {"≤": 838, "≥": 838, "−": 838, "·": 318, "×": 838, "′": 275, "—": 1000, "–": 500,
         "ε": 541, "η": 634, "β": 636, "α": 659, "λ": 592, "σ": 633, "∈": 838, "√": 636}
_DIGIT = 636

PT = 100 / 72                      # px per point: the figures are laid out at 100 px/inch
MINUS = "\u2212"
FONT_FAMILY = "DejaVu Sans, Bitstream Vera Sans, Verdana, Arial, sans-serif"


def text_width(s, size):
    """Estimated width in px of the one-line text ``s`` at ``size`` px (DejaVu Sans).

    Examples
    --------
    >>> round(text_width("0.5", 10), 2)
    15.9
    """
    return size * sum(_ADV[o - 32] if 32 <= (o := ord(c)) < 127 else _WIDE.get(c, _DIGIT)
                      for c in s) / 1000


def text_length(s, size):
    """The ``textLength`` attribute of ``s`` at ``size`` px (see the module's note)."""
    return f' textLength="{text_width(s, size):.1f}" lengthAdjust="spacing"'


# the characters XML 1.0 does not allow in a document (C0 controls but tab, newline and
# carriage return; lone surrogates; U+FFFE, U+FFFF): dropped, not escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(s):
    """``s`` escaped for SVG text and attribute values (characters XML does not allow
    dropped)."""
    return _NOT_XML.sub("", str(s).replace("&", "&amp;").replace("<", "&lt;")
                        .replace(">", "&gt;").replace('"', "&quot;"))


def num(v):
    """A coordinate with 0.1 px precision, without trailing zeros."""
    s = f"{v:.1f}"
    if s == "-0.0":
        return "0"
    return s[:-2] if s.endswith(".0") else s
