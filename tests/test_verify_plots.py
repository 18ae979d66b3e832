"""verify's report plots: with matplotlib every plot the report references exists, is a
non-empty PNG with content, and sits next to the check it illustrates; without matplotlib
the report says so and still passes."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")

ONLY = ["sigmoid", "relu", "sign", "softmax", "sparsemax", "softmax_cross_entropy",
        "hinge_loss", "convexity", "notes"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("matplotlib")
    from verify.__main__ import main
    out = tmp_path_factory.mktemp("report")
    assert main(["--out", str(out), "--quick", "--only", *ONLY]) == 0
    return out, (out / "report.md").read_text()


def _sections(md):
    """{item header: its markdown} for every ### section."""
    parts = re.split(r"^### ", md, flags=re.M)[1:]
    return {p.splitlines()[0]: p for p in parts}


def test_every_expected_plot_is_written_and_has_content(report):
    import matplotlib.image as mpimg
    import numpy as np
    out, md = report
    names = {p.name for p in (out / "plots").glob("*.png")}
    expected = {"sigmoid.png", "relu.png", "sign.png", "simplex_softmax_sparsemax.png",
                "loss_softmax_cross_entropy.png", "loss_hinge_loss.png",
                "ulp_distributions.png", "optimizer_trajectories.png",
                "xor_1.png", "xor_2.png", "xor_3.png", "xor_4.png"}
    assert expected <= names, expected - names
    n_conv = len([h for h in _sections(md) if h.split(" — ")[-1].startswith(
        ("convex", "strictly convex", "not convex"))])
    assert len([n for n in names if n.startswith("convexity_")]) == n_conv >= 10
    assert not list((out / "plots").glob("*.tmp"))          # written atomically
    for png in (out / "plots").glob("*.png"):
        assert png.stat().st_size > 2000, png.name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png.name
        img = mpimg.imread(png)
        assert img.ndim == 3 and float(np.std(img[..., :3])) > 0.02, f"{png.name} is blank"
    assert "plot failed" not in md


def test_every_referenced_plot_exists_and_sits_next_to_its_check(report):
    out, md = report
    refs = re.findall(r"!\[[^\]]*\]\((plots/[^)]+)\)", md)
    assert len(refs) >= 25
    for rel in refs:
        assert (out / rel).is_file(), rel
    sec = _sections(md)

    def plots_of(prefix):
        return [r for h, body in sec.items() if h.startswith(prefix)
                for r in re.findall(r"\]\((plots/[^)]+)\)", body)]
    assert plots_of("`sigmoid`") == ["plots/sigmoid.png"]
    assert plots_of("`hinge_loss`") == ["plots/loss_hinge_loss.png"]
    assert "plots/simplex_softmax_sparsemax.png" in plots_of("`sparsemax`")
    assert "plots/simplex_softmax_sparsemax.png" in plots_of("`softmax`")
    assert plots_of("GD, momentum and AdaGrad") == ["plots/optimizer_trajectories.png"]
    assert plots_of("XOR — lecture 13") == ["plots/xor_1.png"]
    assert plots_of("one-hidden-layer network") and plots_of("sigmoid —")
    head = md.split("### ")[0]
    assert "plots/ulp_distributions.png" in head


def test_plots_are_drawn_from_the_checks_data(tmp_path):
    """The loss plot reads the sweep the check computed: a sweep with a wrong compiled
    value is drawn (and failed) as such, not re-derived from the formula."""
    pytest.importorskip("matplotlib")
    from verify.losses import run_losses
    from verify.plots import make_plots
    from verify.run import Context
    items = run_losses(Context(quick=True, only=["hinge_loss"]))
    it = items[0]
    recs = it["_sweep"].points["grad"]["float64"]
    assert len(recs) == 29 and any(len(r["exact"]) == 2 for r in recs)   # the kink t = 1.5
    errors = make_plots({"items": items, "quick": True}, str(tmp_path))
    assert not errors and (tmp_path / "plots" / "loss_hinge_loss.png").stat().st_size > 2000


def test_without_matplotlib_the_report_says_so(tmp_path, monkeypatch):
    from verify.__main__ import main
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib fails
    monkeypatch.delitem(sys.modules, "verify.plots", raising=False)
    assert main(["--out", str(tmp_path), "--quick", "--only", "relu"]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "**Plots: none.**" in md and "matplotlib is not installed" in md
    assert "![" not in md
    assert not list(tmp_path.glob("plots/*.png"))


def test_the_fixed_layout_cuts_nothing_off_and_overlaps_nothing(tmp_path, monkeypatch):
    """The margins are measured, not drawn (verify.plots._layout): every drawn artist of
    every figure lies inside it, and no two axes (with their labels), the legend and
    the title overlap."""
    pytest.importorskip("matplotlib")
    from matplotlib.transforms import Bbox
    from verify import plots
    from verify.activations import run_activations
    from verify.losses import run_losses
    from verify.run import Context
    items = run_losses(Context(quick=True, only=["hinge_loss"])) + run_activations(
        Context(quick=True, only=["sigmoid"]))
    problems, checked, close = [], [], plots.plt.close

    def check(fig):
        r = fig.canvas.get_renderer()
        w, h = fig.get_size_inches()
        tb = fig.get_tightbbox(r)
        if tb.x0 < -0.01 or tb.y0 < -0.01 or tb.x1 > w + 0.01 or tb.y1 > h + 0.01:
            problems.append(("outside the figure", tb.bounds, (w, h)))
        cols = {}
        for ax in fig.axes:
            cols.setdefault(ax.get_subplotspec().colspan.start, []).append(ax)
        boxes = [Bbox.union([a.get_tightbbox(r) for a in g]) for g in cols.values()]
        leg = fig._verify_layout.get("legend")
        boxes += [leg.get_window_extent(r)] if leg is not None else []
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and \
                        min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
                    problems.append(("overlap", a.bounds, b.bounds))
        checked.append(len(fig.axes))
        close(fig)
    monkeypatch.setattr(plots.plt, "close", check)
    monkeypatch.setenv("NNLIB_VERIFY_CACHE", "0")          # drawn, not read back
    assert plots.make_plots({"items": items}, str(tmp_path)) == []
    assert len(checked) == 3 and not problems, problems     # loss, activation, summary


def test_a_y_offset_text_lifts_the_title_and_labels_clear_the_tick_labels(tmp_path,
                                                                           monkeypatch):
    """verify.plots places axis labels and titles itself (from the measured tick label
    sizes): the x and y labels sit beyond the tick labels, the title above the y axis'
    offset text (``1e-7``), and all of it inside the figure."""
    pytest.importorskip("matplotlib")
    from verify import plots
    fig, ax = plots._figure(1, 2, figsize=(8, 3))
    ax[0].plot([0, 1, 2], [1e-7, 3e-7, 2e-7], label="tiny")
    ax[0].set(title="above the offset text", xlabel="x", ylabel="y")
    ax[1].plot([0, 1], [1, 2])
    ax[1].set_title("no offset")
    plots._legend_below(fig, ax)
    seen, close = [], plots.plt.close

    def check(f):
        r = f.canvas.get_renderer()
        off = ax[0].yaxis.offsetText
        title = ax[0].title.get_window_extent(r)
        assert off.get_text() and off.get_window_extent(r).y1 <= title.y0
        for axis, side in ((ax[0].xaxis, "y"), (ax[0].yaxis, "x")):
            label = axis.label.get_window_extent(r)
            ticks = [t.get_window_extent(r) for t in axis.get_ticklabels() if t.get_text()]
            if side == "y":
                assert label.y1 <= min(t.y0 for t in ticks)
            else:
                assert label.x1 <= min(t.x0 for t in ticks)
        w, h = f.get_size_inches()
        tb = f.get_tightbbox(r)
        assert tb.x0 >= -0.01 and tb.y0 >= -0.01 and tb.x1 <= w + 0.01 and tb.y1 <= h + 0.01
        seen.append(f)
        close(f)
    monkeypatch.setattr(plots.plt, "close", check)
    (tmp_path / "plots").mkdir()
    plots._save(fig, str(tmp_path), "offset.png")
    assert seen


def _draw_sample(plots, out, name):
    """A figure with upright and rotated tick labels, a log axis, a title, a suptitle and
    a legend, saved by verify.plots; returns its pixels."""
    import matplotlib.image as mpimg
    fig, ax = plots._figure(1, 2, figsize=(8, 3.5))
    ax[0].plot([1, 10, 100], [1e-3, 1.0, 1e3], "o-", label="log-log")
    ax[0].set(xscale="log", yscale="log", title="Ag ×10⁻³", xlabel="z", ylabel="ulp")
    ax[1].plot([0, 1, 2], [2.5, -1.0, 0.5], label="line")
    ax[1].set_xticks([0, 1, 2], ["zero", "one", "two"], rotation=45)
    ax[1]._verify_xrot = 45
    plots._suptitle(fig, "upright and rotated text")
    plots._legend_below(fig, ax)
    (out / "plots").mkdir(exist_ok=True)
    rel = plots._save(fig, str(out), name)
    assert (out / rel).stat().st_size > 2000
    img = mpimg.imread(out / rel)
    assert float(img[..., :3].std()) > 0.02, f"{name} is blank"
    return img


def test_text_falls_back_to_matplotlibs_own_drawing(tmp_path, monkeypatch):
    """_Renderer's cached glyph layout restates RendererAgg.draw_text on matplotlib's
    private internals: when they are missing (an AttributeError: FT2Font._layout gone),
    or the restatement draws other pixels than RendererAgg, text is drawn by
    RendererAgg.draw_text -- the same figure, pixel for pixel."""
    pytest.importorskip("matplotlib")
    import numpy as np
    from verify import plots
    monkeypatch.setattr(plots, "_FAST_TEXT", None)
    reference = _draw_sample(plots, tmp_path, "reference.png")
    assert plots._FAST_TEXT is True           # this matplotlib: the probe draws the same

    def missing(self, s, prop, mtext=None):
        raise AttributeError("'matplotlib.ft2font.FT2Font' object has no attribute '_layout'")
    monkeypatch.setattr(plots._Renderer, "_glyph_layout", missing)
    monkeypatch.setattr(plots, "_FAST_TEXT", None)
    assert plots._fast_text() is False        # decided by the probe, once
    monkeypatch.setattr(plots, "_FAST_TEXT", True)     # or at the first text drawn
    assert np.array_equal(_draw_sample(plots, tmp_path, "missing.png"), reference)
    assert plots._FAST_TEXT is False

    layout = plots._Renderer.__dict__["_glyph_layout"]
    monkeypatch.undo()
    monkeypatch.setattr(plots, "_FAST_TEXT", None)

    def shifted(self, s, prop, mtext=None):   # a matplotlib whose layout means otherwise
        return plots._Layout([(f, g, x + 1, y)
                              for f, g, x, y in layout(self, s, prop, mtext).glyphs])
    monkeypatch.setattr(plots._Renderer, "_glyph_layout", shifted)
    assert np.array_equal(_draw_sample(plots, tmp_path, "shifted.png"), reference)
    assert plots._FAST_TEXT is False


def test_log_labels_and_tick_test_without_matplotlibs_private_attributes(tmp_path,
                                                                          monkeypatch):
    """A log axis whose formatter cannot be restated as plain text (its private settings
    gone) keeps matplotlib's mathtext labels, and the in-view tick test has a copy for a
    matplotlib without its own: the figure is still written."""
    pytest.importorskip("matplotlib")
    import matplotlib.transforms
    from verify import plots

    class Changed(plots._PlainLogFormatter):
        def __init__(self, *args, **kw):
            raise TypeError("unexpected keyword argument 'linthresh'")
    monkeypatch.setattr(plots, "_PlainLogFormatter", Changed)
    monkeypatch.setattr(plots, "_interval_contains_close", plots._contains_close)
    _draw_sample(plots, tmp_path, "mathtext.png")
    own = getattr(matplotlib.transforms, "_interval_contains_close", plots._contains_close)
    for interval in ((0.0, 1.0), (1.0, 0.0), (-3.0, 1e-300), (5.0, 5.0)):
        for v in (-1e-11, 0.0, 0.5, 1.0 + 1e-11, 1.0 + 1e-9, 5.0, 1e-300, -3.0 - 1e-9):
            assert plots._contains_close(interval, v) == own(interval, v)


def test_the_shortcuts_draw_what_matplotlib_draws(tmp_path, monkeypatch):
    """verify.plots' shortcuts through matplotlib (ticks copied from their axis' first,
    tick labels left unmeasured where no offset text needs them, the font heights kept
    per process, its own PNG writer) draw the figure matplotlib draws without them,
    pixel for pixel: figures with log axes, rotated tick labels, a twin, legends and x
    and y offset texts."""
    pytest.importorskip("matplotlib")
    import numpy as np
    from PIL import Image
    from verify import plots

    def sample(name):
        img = _draw_sample(plots, tmp_path, name)
        fig, ax = plots._figure(1, 2, figsize=(8, 3))
        ax[0].plot([1e6, 1e6 + 1, 1e6 + 2], [1e-7, 3e-7, 2e-7], label="tiny")
        ax[0].set(title="above the offset text", xlabel="x (offset below the ticks)",
                  ylabel="y")
        ax[0].grid(alpha=0.3)
        twin = ax[1].twinx()
        ax[1].plot(np.arange(30), np.arange(30) ** 2, "o", label="many ticks")
        twin.plot(np.arange(30), 10.0 ** -np.arange(30), label="log twin")
        plots._ulp_axis(twin)
        plots._legend_below(fig, [ax[0], ax[1], twin])
        rel = plots._save(fig, str(tmp_path), "offset_" + name)
        return img, np.asarray(Image.open(tmp_path / rel))

    fast = sample("fast.png")
    monkeypatch.setattr(plots, "_fast_axes", lambda fig: None)
    monkeypatch.delattr(plots._Renderer, "_get_font_height_metrics")

    def pillow(path, rgba, dpi):
        Image.fromarray(np.array(rgba)).save(path, format="png", dpi=(dpi, dpi))
    monkeypatch.setattr(plots, "_write_png", pillow)
    plain = sample("plain.png")
    assert np.array_equal(fast[0], plain[0]) and np.array_equal(fast[1], plain[1])
    assert Image.open(tmp_path / "plots" / "fast.png").info["dpi"] == \
        pytest.approx((plots._DPI, plots._DPI), abs=0.01)


_ROOT = Path(__file__).resolve().parents[1]
_FONT_CHILD = r"""
import json, sys, numpy as np
from verify import plots
import matplotlib
def draw(name):
    fig, ax = plots._figure(1, 1, figsize=(4, 3))
    ax.plot([0, 1, 2], [3, 1, 2])
    ax.set(title="Title Wg $x_i^2$", xlabel="x label", ylabel="y label")
    return plots._save(fig, sys.argv[1], name)
if sys.argv[2] == "after-default":
    draw("default")
with matplotlib.rc_context(json.loads(sys.argv[3])):
    draw("changed")
"""


@pytest.mark.parametrize("rc", [{"font.sans-serif": ["DejaVu Sans Mono"]},
                                {"mathtext.default": "rm"}, {"font.weight": "bold"}],
                         ids=["font.sans-serif", "mathtext.default", "font.weight"])
def test_the_caches_follow_a_change_of_font_settings(tmp_path, rc):
    """The text sizes, glyph layouts and font heights kept per process are keyed by the
    settings a font is found by, not only by FontProperties (whose family is a generic
    name), by the defaults of a FontProperties made without them (the tick labels
    measured for the layout) and by the mathtext settings: a figure drawn under another
    setting after a default one has the pixels it has in a fresh process."""
    pytest.importorskip("matplotlib")
    from PIL import Image
    pixels = []
    for mode in ("fresh", "after-default"):
        out = tmp_path / mode
        (out / "plots").mkdir(parents=True)
        subprocess.run([sys.executable, "-c", _FONT_CHILD, str(out), mode, json.dumps(rc)],
                       check=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(_ROOT)})
        [png] = out.glob("plots/changed*")
        pixels.append(np.asarray(Image.open(png)))
    assert pixels[0].shape == pixels[1].shape
    assert np.array_equal(pixels[0], pixels[1])


def _draw_texts(plots, out, name):
    """A figure of texts: the same strings at many sub-pixel positions, every alignment,
    rotation and rotation mode, several lines and line spacings, a boxed annotation,
    mathtext, bold and large text and glyphs whose bitmaps share pixels ("VAT//ff"),
    saved by verify.plots; returns its pixels."""
    from PIL import Image
    fig, ax = plots._figure(1, 2, figsize=(9, 5))
    for k in range(12):
        ax[0].text(0.013 + 0.0731 * k, 0.05 + 0.0377 * k, "1e-3 0.5 VAT//ff",
                   fontsize=6 + k % 5, rotation=(0, 45, 90, 30)[k % 4])
    n = 0

    def put(**kw):                     # the same string and font, one setting changed
        nonlocal n
        ax[1].text(0.05 + 0.11 * (n % 9), 0.05 + 0.19 * (n // 9), "Wg ×10⁻³\nline two",
                   **{"fontsize": 7, "rotation": 30, **kw})
        n += 1
    for ha in ("left", "center", "right"):
        for va in ("top", "center", "baseline", "bottom", "center_baseline"):
            for mode in ("default", "anchor"):
                put(ha=ha, va=va, rotation_mode=mode)
    for kw in ({"linespacing": 0.8}, {"linespacing": 1.6}, {"multialignment": "right"},
               {"multialignment": "center"}, {"rotation": 0}, {"rotation": 90},
               {"fontsize": 8}, {"parse_math": False}, {"wrap": True}):
        put(**kw)
    for k, parse in enumerate((True, False)):
        ax[0].text(0.9, 0.3 + 0.1 * k, "$x_2$ cost", parse_math=parse, ha="right")
    ax[0].annotate("boxed", (0.5, 0.9), bbox=dict(boxstyle="round", fc="w"), weight="bold",
                   fontsize=12)
    ax[0].set_title(r"mathtext $x^2_i$ and plain")
    ax[1].set_title("1e-3 0.5 VAT//ff")                # a string drawn above at size 10
    (out / "plots").mkdir(exist_ok=True)
    return np.asarray(Image.open(out / plots._save(fig, str(out), name)))


def test_the_text_shortcuts_draw_what_matplotlib_draws(tmp_path, monkeypatch):
    """Text drawn through verify.plots' shortcuts (each text's glyphs drawn as one image,
    or one by one where two share a pixel; Text._get_layout kept per string, font,
    alignment, rotation and spacing) has matplotlib's pixels: RendererAgg.draw_text and
    Text._get_layout draw the same figure. Both ways of drawing glyphs are taken."""
    pytest.importorskip("matplotlib")
    import matplotlib.text
    from verify import plots
    drawn = []
    image = plots._Renderer._text_image

    def counted(self, *args):
        got = image(self, *args)
        drawn.append(got is None)
        return got
    monkeypatch.setattr(plots._Renderer, "_text_image", counted)
    fast = _draw_texts(plots, tmp_path, "fast.png")
    again = _draw_texts(plots, tmp_path, "again.png")      # from the kept layouts and images
    assert True in drawn and False in drawn
    monkeypatch.setattr(plots, "_FAST_TEXT", False)
    monkeypatch.setattr(matplotlib.text.Text, "_get_layout", plots._TEXT_GET_LAYOUT)
    plain = _draw_texts(plots, tmp_path, "plain.png")
    assert np.array_equal(fast, plain) and np.array_equal(again, plain)
