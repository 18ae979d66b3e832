"""report.html and the console, as a person meets them (issue 15), on one full --quick run:
the page is self-contained (no external URL), renders in a browser with its formulas
typeset, opens with the overview; report.md's old inconsistencies stay fixed; every check
the run makes is one --list knows."""
import base64
import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

pytest.importorskip("sympy")
pytest.importorskip("mpmath")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from verify.__main__ import main
    out = tmp_path_factory.mktemp("report")
    assert main(["--out", str(out), "--quick"]) == 0
    return out, json.loads((out / "report.json").read_text()), \
        (out / "report.md").read_text(), (out / "report.html").read_text()


# ------------------------------------------------------------------ self-contained

class _Refs(HTMLParser):
    """Every URL the page would load or link: src, href, srcset, CSS url(...), @import."""

    def __init__(self):
        super().__init__()
        self.urls, self.ids, self.anchors, self.maths, self._style = [], set(), [], 0, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href", "srcset", "data", "poster", "action"):
            if a.get(k):
                self.urls.append(a[k])
        if a.get("href", "").startswith("#"):
            self.anchors.append(a["href"][1:])
        if a.get("id"):
            self.ids.add(a["id"])
        self.maths += tag == "math"
        self._style = tag == "style"

    def handle_data(self, data):
        if self._style:
            self.urls += re.findall(r"url\(([^)]*)\)|@import\s+['\"]?([^'\";]+)", data)


def test_html_references_no_external_url(report):
    page = report[3]
    p = _Refs()
    p.feed(page)
    external = [u for u in p.urls if not (isinstance(u, str) and
                                          (u.startswith("data:") or u.startswith("#")))]
    assert external == []
    assert "<script" not in page.lower() and "<link" not in page.lower()
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert imgs                        # the figures, SVG embedded as images
    assert all(u.startswith("data:image/svg+xml;base64,") for u in imgs)
    svg = base64.b64decode(imgs[0].split(",", 1)[1]).decode("utf-8")
    assert svg.startswith("<svg xmlns=\"http://www.w3.org/2000/svg\"")


def test_html_opens_with_the_overview_and_links_each_section(report):
    out, data, md, page = report
    p = _Refs()
    p.feed(page)
    assert page.index("Proved") < page.index("Measured") < page.index("Failed") < \
        page.index('<h2 id="section-')
    assert all(a in p.ids for a in p.anchors)           # every link lands
    # one section per verify module (as verify mirrors nnlib), each linked
    assert {a for a in p.anchors if a.startswith("section-")} == {
        f"section-{s}" for s in ("kernels", "activations", "output_maps", "losses", "dense",
                                 "dropout", "optimizers", "backprop", "train", "convexity", "notes",
                                 "approximation")}
    assert p.maths > 100                               # formulas are MathML


def test_a_failure_is_named_and_linked_from_the_overview(tmp_path, monkeypatch):
    import copy

    import verify.activations as A
    from verify.__main__ import main
    from verify.registry import ACTIVATION_BY_NAME
    bad = copy.copy(ACTIVATION_BY_NAME["sigmoid"])
    bad.closed_grad_x = bad.closed_grad_x * 2
    monkeypatch.setattr(A, "ACTIVATIONS", [bad])
    assert main(["--out", str(tmp_path), "--quick", "--only", "sigmoid"]) == 1
    page = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    head = page[:page.index('<h2 id="section-')]
    assert '<a href="#check-kernels-sigmoid">sigmoid</a>' in head
    assert 'id="check-kernels-sigmoid"' in page
    assert "; failed: sigmoid" in md.splitlines()[2]
    assert "[sigmoid](#check-kernels-sigmoid)" in md


# ------------------------------------------------------------------ in a browser

def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless Chromium: install Debian's 'chromium' package (.ci/run does) "
                "to render report.html")


def _chromium(*args):
    cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced PNG."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(raw):
        n, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        body = raw[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and color in (2, 6)
    bpp = 3 if color == 2 else 4
    data, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for r in range(h):
        f, line = data[r * (stride + 1)], bytearray(data[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def test_report_renders_in_headless_chromium(report, tmp_path):
    out = report[0]
    shot = tmp_path / "shot.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1200,1600",
                  (out / "report.html").as_uri())
    assert shot.exists(), r.stderr[-2000:]
    w, h, bpp, rows = _png_pixels(shot)
    assert (w, h) == (1200, 1600)
    # not blank: many distinct colours, and most rows not a single flat colour
    colours = {row[i:i + 3] for row in rows[::8] for i in range(0, len(row), bpp * 8)}
    assert len(colours) > 50
    flat = sum(len({row[i:i + 3] for i in range(0, len(row), bpp)}) == 1 for row in rows)
    assert flat < 0.8 * h


_MEASURE = """<script>
var out = [];
document.querySelectorAll('mfrac').forEach(function (f) {
  var n = f.children[0].getBoundingClientRect(), d = f.children[1].getBoundingClientRect();
  out.push({num_bottom: n.bottom, den_top: d.top, num_x: n.left + n.width / 2,
            den_x: d.left + d.width / 2, w: f.getBoundingClientRect().width});
});
document.body.insertAdjacentHTML('beforeend',
  '<pre id="meas' + 'ured">' + JSON.stringify(out.slice(0, 40)) + '</pre>');
</script>"""


def test_formulas_are_typeset_in_chromium(report, tmp_path):
    """A fraction typeset as MathML has its numerator above its denominator; were MathML
    not rendered, the two would sit side by side on one line."""
    page = report[3].replace("</body>", _MEASURE + "</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    r = _chromium("--dump-dom", "--virtual-time-budget=10000", probe.as_uri())
    m = re.search(r'<pre id="measured">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stderr[-2000:]
    fracs = json.loads(m.group(1).replace("&quot;", '"'))
    assert len(fracs) >= 10
    for f in fracs:
        assert f["w"] > 0
        assert f["num_bottom"] <= f["den_top"] + 1.0          # stacked
        assert abs(f["num_x"] - f["den_x"]) < 0.5 * f["w"] + 1  # one above the other


# ------------------------------------------------------------------ report.md, fixed

def _section(md, name):
    m = re.search(rf"^### `?{re.escape(name)}`? — .*?(?=^### |^## )", md, re.S | re.M)
    assert m, name
    return m.group(0)


def test_dense_with_measurements_is_not_called_unavailable(report):
    dense = _section(report[2], "dense")
    assert "normwise error" in dense and "not available" not in dense


def test_step_tolerance_is_stated_as_the_code_applies_it(report):
    md = report[2]
    assert "tolerance 8(k+1) ulp at step k" in md and "8 ulp per step" not in md


def test_the_scale_of_every_absolute_bound_is_defined(report):
    md = report[2]
    assert "eps·scale" not in md
    for m in re.finditer(r"eps·s\b(.{0,60})", md):
        # each kernel row names its s; the prose defines it once
        assert re.match(r"(, s = |`| or either| the scale|\)| \()", m.group(1)) or \
            "s = " in m.group(1), m.group(0)
    assert "where eps is the dtype's machine epsilon and s the scale" in md


def test_float32_loss_far_below_an_ulp_is_explained(report):
    rows = re.findall(r"\| max error, loss, float32 \| ([^|]+)\|", report[2])
    tiny = [r for r in rows if float(r.split(" ulp")[0]) < 1e-3 and
            float(r.split(" ulp")[0]) > 0]
    assert tiny, "expected a float32 loss measured far below one float32 ulp"
    assert all("returned in double precision" in r for r in tiny)


def test_table_shows_the_numbers_its_plot_is_drawn_from(report):
    """The loss plots are drawn from the sweep check: the table has the sweep's rows."""
    out, data, md, _ = report
    for it in data["items"]:
        if it.get("kind") != "loss":
            continue
        sec = _section(md, it["name"])
        for which, per in it["sub_evidence"]["sweep"].items():
            for dt, st in per.items():
                row = re.search(rf"\| max error, {which}, {dt} \(sweep check, plotted "
                                r"below\) \| ([^ ]+) ulp", sec)
                assert row and row.group(1) == f"{st['max_ulps']:.3g}", (it["name"], which)


def test_sources_are_named_by_lecture(report):
    md = report[2]
    assert "Source: seed" not in md
    assert "Source: Lecture 13: Deep Neural Networks (" in md
    assert "Source: Lecture 5: Neural Networks I (" in md


def test_the_universal_approximation_section(report):
    out, data, md, page = report
    uat = [it for it in data["items"] if it["section"] == "approximation"]
    assert len(uat) == 4 and all(it["passed"] for it in uat)
    assert "Cybenko 1989" in md and "how to find the weights" in md
    assert (out / "plots" / "approximation_1.svg").exists()


# ------------------------------------------------------------------ the catalogue

def test_every_check_of_a_run_is_in_the_catalogue(report):
    from verify.run import catalogue
    listed = {(sec, n) for sec, _, names in catalogue() for n in names}
    made = {(it["section"], it["name"]) for it in report[1]["items"]
            if it["section"] != "skipped"}
    assert made == listed
