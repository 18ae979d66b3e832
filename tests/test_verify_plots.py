"""verify's report figures (verify.plots, drawn by verify.svg): every figure the report
references exists, is well-formed SVG with content, sits next to the check it illustrates
and is drawn from the check's numbers; a run imports no matplotlib; in a browser no two
texts of a figure overlap and none is cut off."""
import html
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")

ONLY = ["sigmoid", "relu", "sign", "softmax", "sparsemax", "softmax_cross_entropy",
        "hinge_loss", "convexity", "notes", "approximation"]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from verify.__main__ import main
    out = tmp_path_factory.mktemp("report")
    assert main(["--out", str(out), "--quick", "--only", *ONLY]) == 0
    return out, (out / "report.md").read_text()


def _sections(md):
    """{item header: its markdown} for every ### section."""
    parts = re.split(r"^### ", md, flags=re.M)[1:]
    return {p.splitlines()[0]: p for p in parts}


def test_every_expected_figure_is_written_and_well_formed(report):
    out, md = report
    names = {p.name for p in (out / "plots").iterdir()}
    expected = {"sigmoid.svg", "relu.svg", "sign.svg", "simplex_softmax_sparsemax.svg",
                "loss_softmax_cross_entropy.svg", "loss_hinge_loss.svg",
                "ulp_distributions.svg", "optimizer_trajectories.svg",
                "xor_1.svg", "xor_2.svg", "xor_3.svg", "xor_4.svg",
                "approximation_1.svg", "approximation_4.svg"}
    assert expected <= names, expected - names
    assert all(n.endswith(".svg") for n in names)            # written atomically, as SVG
    n_conv = len([h for h in _sections(md) if h.split(" — ")[-1].startswith(
        ("convex", "strictly convex", "not convex"))])
    assert len([n for n in names if n.startswith("convexity_")]) == n_conv >= 10
    for f in (out / "plots").iterdir():
        root = ET.parse(f).getroot()                          # well-formed XML
        assert root.tag == SVG + "svg", f.name
        assert float(root.get("width")) >= 500 and float(root.get("height")) >= 300
        paths = [p for p in root.iter(SVG + "path") if len(p.get("d", "")) > 20]
        texts = [t for t in root.iter(SVG + "text") if "".join(t.itertext()).strip()]
        assert len(paths) >= 2 and len(texts) >= 8, f.name    # not blank
    assert "plot failed" not in md


def test_every_referenced_figure_exists_and_sits_next_to_its_check(report):
    out, md = report
    refs = re.findall(r"!\[[^\]]*\]\((plots/[^)]+)\)", md)
    assert len(refs) >= 25
    for rel in refs:
        assert (out / rel).is_file(), rel
    sec = _sections(md)

    def plots_of(prefix):
        return [r for h, body in sec.items() if h.startswith(prefix)
                for r in re.findall(r"\]\((plots/[^)]+)\)", body)]
    assert plots_of("`sigmoid`") == ["plots/sigmoid.svg"]
    assert plots_of("`hinge_loss`") == ["plots/loss_hinge_loss.svg"]
    assert "plots/simplex_softmax_sparsemax.svg" in plots_of("`sparsemax`")
    assert "plots/simplex_softmax_sparsemax.svg" in plots_of("`softmax`")
    assert plots_of("GD, momentum and AdaGrad") == ["plots/optimizer_trajectories.svg"]
    assert plots_of("XOR — lecture 13") == ["plots/xor_1.svg"]
    assert plots_of("one-hidden-layer network") and plots_of("sigmoid —")
    head = md.split("### ")[0]
    assert "plots/ulp_distributions.svg" in head


def _texts(svg):
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(SVG + "text")]


def test_figures_are_drawn_from_the_checks_data(tmp_path):
    """The loss figure reads the sweep the check computed: a changed compiled value
    changes the figure, and its title states the check's largest error."""
    from verify.losses import run_losses
    from verify.plots import make_plots
    from verify.run import Context
    items = run_losses(Context(quick=True, only=["hinge_loss"]))
    recs = items[0]["_sweep"].points["grad"]["float64"]
    assert len(recs) == 29 and any(len(r["exact"]) == 2 for r in recs)   # the kink t = 1.5
    data = {"items": items, "quick": True}
    assert make_plots(data, str(tmp_path / "a")) == []
    first = (tmp_path / "a" / "plots" / "loss_hinge_loss.svg").read_text()
    assert set(data["plot_cpu_seconds"]) == {"loss_plot", "ulp_summary"}
    loss = items[0]["_sweep"].points["loss"]["float64"]
    worst = max(r["ulps"] for r in loss)
    assert any(f"float64 {worst:.3g} ulp" in t for t in _texts(first))
    loss[3]["got"] = float(loss[3]["got"]) + 1.0             # a visibly wrong point
    loss[3]["ulps"] = 1e9
    assert make_plots({"items": items}, str(tmp_path / "b")) == []
    wrong = (tmp_path / "b" / "plots" / "loss_hinge_loss.svg").read_text()
    assert wrong != first
    assert any("float64 1e+09 ulp" in t for t in _texts(wrong))


def test_a_kernel_far_off_still_gets_its_figures(tmp_path):
    """A float64 result 1e-20 off where the exact value is 0 is 2e303 ulp off, and one
    near the largest double is plotted on a linear axis: the activation figure and the
    ULP summary are drawn (their log axes span 306 decades), not reported as errors."""
    from verify.api import CheckResult
    from verify.plots import make_plots
    res = CheckResult("relu")
    for dt in ("float64", "float32"):
        for which in ("forward", "vjp"):
            recs = [dict(x=x, got=1.7e308 if x == 2.0 else 0.0, exact=0.0,
                         ulps=2e303 if x == -3.0 else 0.0, ok=x != -3.0)
                    for x in (-3.0, -1e-300, 0.0, 2.0)]
            res.points.setdefault(which, {})[dt] = recs
            res.samples.setdefault(which, {})[dt] = [r["ulps"] for r in recs]
    items = [{"name": "relu", "section": "kernels", "kind": "activation", "_result": res}]
    assert make_plots({"items": items}, str(tmp_path)) == []
    for name in ("relu.svg", "ulp_distributions.svg"):
        ET.fromstring((tmp_path / "plots" / name).read_text())


def test_a_float32_only_run_gets_its_loss_figures(tmp_path):
    """``--dtype float32``: the loss figure is drawn from the float32 points (it read the
    float64 ones and raised KeyError), with the exact values as its line."""
    from verify.losses import run_losses
    from verify.plots import make_plots
    from verify.run import Context
    items = run_losses(Context(quick=True, only=["hinge_loss"], dtypes=("float32",)))
    assert make_plots({"items": items}, str(tmp_path)) == []
    texts = _texts((tmp_path / "plots" / "loss_hinge_loss.svg").read_text())
    assert "SymPy (exact)" in texts and "nnlib float32" in texts


def test_a_float32_only_run_gets_its_activation_curves(tmp_path):
    """``--dtype float32``: the activation figure's two curve panels draw the float32
    points (they read only the float64 ones and stayed empty)."""
    from verify.activations import run_activations
    from verify.plots import make_plots
    from verify.run import Context
    items = run_activations(Context(quick=True, only=["sigmoid"], dtypes=("float32",)))
    assert make_plots({"items": items}, str(tmp_path), summary=False) == []
    svg = (tmp_path / "plots" / "sigmoid.svg").read_text()
    texts = _texts(svg)
    assert "nnlib float32" in texts and "nnlib float64" not in texts
    assert "SymPy (exact, mpmath)" in texts


def test_a_broken_figure_is_reported_not_fatal(tmp_path):
    from verify.plots import make_plots
    items = [{"name": "relu", "section": "kernels", "kind": "activation",
              "_result": object()}]
    errors = make_plots({"items": items}, str(tmp_path), summary=False)
    assert len(errors) == 1 and "_activation_plot (relu)" in errors[0]
    assert items[0]["plots"] == []


def test_a_run_imports_no_matplotlib(tmp_path):
    """``import verify`` and a report run (figures included) leave matplotlib (and PIL)
    unimported: the figures are written by verify.svg."""
    code = ("import sys; import verify; from verify.__main__ import main; "
            f"rc = main(['--quick', '--only', 'relu', 'hinge_loss', '--out', {str(tmp_path)!r}]); "
            "print('HEAVY', sorted(m for m in ('matplotlib', 'PIL') if m in sys.modules), rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert "HEAVY [] 0" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    assert (tmp_path / "plots" / "relu.svg").is_file()


# ------------------------------------------------------------------ in a browser

# measured once the page and its fonts are loaded: a script run inline as the page is
# parsed may lay the texts out in a fallback font while the system's loads (a suite run
# at load 4-5 found 22 overlaps that a rerun, and every quiet run, did not);
# --virtual-time-budget lets --dump-dom wait for it
_MEASURE = """<script>
window.addEventListener('load', function () { document.fonts.ready.then(function () {
var res = [];
document.querySelectorAll('div[data-f]').forEach(function (d) {
  var svg = d.querySelector('svg'), sr = svg.getBoundingClientRect(), ts = [];
  svg.querySelectorAll('text').forEach(function (t) {
    var r = t.getBoundingClientRect();
    ts.push({s: t.textContent, l: r.left - sr.left, t: r.top - sr.top,
             r: r.right - sr.left, b: r.bottom - sr.top});
  });
  res.push({f: d.getAttribute('data-f'), W: sr.width, H: sr.height, texts: ts});
});
document.body.innerHTML = '<pre id="out">' + JSON.stringify(res) + '</pre>';
}); });
</script>"""


def test_no_text_overlaps_or_is_cut_off_in_chromium(report, tmp_path):
    """Every figure laid out by headless Chromium (with the fonts this machine has): no
    two texts of a figure overlap by more than a pixel each way, and every text lies
    inside its figure."""
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser",
                                              "google-chrome") if shutil.which(n)), None)
    if browser is None:
        pytest.skip("no headless Chromium: install Debian's 'chromium' package (.ci/run "
                    "does) to lay the figures out")
    out, _ = report
    files = sorted((out / "plots").glob("*.svg"))
    body = "".join(f'<div data-f="{f.name}">{f.read_text()}</div>' for f in files)
    page = tmp_path / "figures.html"
    page.write_text(f"<html><body style='margin:0'>{body}{_MEASURE}</body></html>")
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--dump-dom", "--virtual-time-budget=10000", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="out">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stderr[-2000:]
    figures = json.loads(html.unescape(m.group(1)))
    assert len(figures) == len(files)
    overlaps, outside = [], []
    for fig in figures:
        T = [t for t in fig["texts"] if t["r"] > t["l"]]
        assert len(T) >= 8, fig["f"]
        for t in T:
            if t["l"] < -0.5 or t["t"] < -0.5 or t["r"] > fig["W"] + 0.5 or \
                    t["b"] > fig["H"] + 0.5:
                outside.append((fig["f"], t["s"]))
        for i, a in enumerate(T):
            for b in T[i + 1:]:
                ox = min(a["r"], b["r"]) - max(a["l"], b["l"])
                oy = min(a["b"], b["b"]) - max(a["t"], b["t"])
                if ox > 1 and oy > 1:
                    overlaps.append((fig["f"], a["s"], b["s"]))
    assert outside == [] and overlaps == []
