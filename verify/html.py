"""report.html: the verification report as one self-contained page.

Design note
-----------
A reader opens one file in any browser, offline: the CSS is inline, every plot is embedded
as a base64 PNG (``data:`` URL), formulas are MathML (which browsers render natively, no
script). The checks store their formulas as LaTeX strings (``$...$`` inside text, or a
whole cell); they become presentation MathML through ``latex2mathml`` (the ``report``
extra), an ``aligned`` block as an ``mtable`` of its rows. Where a check also keeps the
SymPy expression of a definition (``definition_sympy``, a ``srepr``), SymPy's own printer
(``sympy.mathml(..., printer="presentation")``) writes it. Without latex2mathml a formula
stays readable LaTeX source in ``<code>``.

The page opens with the overview (what was proved, measured, failed -- each failure a
link to its check), then one section per verify module. Each check shows its verdict,
statement, table, proof steps, kink table, notes and plots, and then every other public
field it carries as data, so a field a check adds later appears without a change here.
"""
import base64
import html
import json
import os
import re

__all__ = ["write_html", "to_mathml", "text_with_math"]

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 color:#1b1f24;background:#fff}
main{max-width:1180px;margin:0 auto;padding:16px 28px 60px}
h1{font-size:26px;margin:.6em 0 .2em} h2{font-size:21px;margin:1.6em 0 .4em;
 border-bottom:2px solid #d0d7de;padding-bottom:4px} h3{font-size:17px;margin:1.2em 0 .3em}
.check{border:1px solid #d0d7de;border-radius:6px;padding:4px 16px 10px;margin:14px 0}
.check.fail{border-color:#cf222e;background:#fff8f8}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;
 font-weight:600;margin-right:6px;vertical-align:2px}
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;margin:6px 0;font-size:14px}
td,th{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top;text-align:left}
th{background:#f6f8fa} td.k{white-space:nowrap;color:#424a53;max-width:320px;
 white-space:normal}
.summary{background:#f6f8fa;border-radius:6px;padding:10px 18px;margin:12px 0}
.summary li{margin:3px 0} figure{margin:10px 0} figure img{max-width:100%;height:auto;
 border:1px solid #eaeef2} figcaption{font-size:13px;color:#424a53;max-width:1000px}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12.5px}
math{font-size:1.08em} code{font-size:13px} details{margin:6px 0}
blockquote{margin:6px 0;padding:2px 12px;border-left:3px solid #d0d7de;color:#424a53}
"""

_KNOWN = {"name", "section", "passed", "verdict", "seed", "statement", "rows", "steps",
          "plots", "error", "traceback", "kind", "definition", "definition_sympy",
          "derived", "closed", "convention", "params", "proof", "evidence", "available",
          "required", "extra_rows", "notes", "seconds", "expected", "sub_evidence",
          "skipped", "module"}


# ------------------------------------------------------------------ formulas

def _l2m():
    try:
        import latex2mathml.converter as conv
    except ImportError:
        return None
    return conv


def _inner(mathml):
    """The content of a <math> element (to nest one converted cell in a table)."""
    return re.sub(r"^<math[^>]*>|</math>$", "", mathml.strip())


def to_mathml(latex, display=False):
    """LaTeX -> a <math> element (presentation MathML); ``None`` when it cannot convert."""
    conv = _l2m()
    if conv is None:
        return None
    latex = latex.strip()
    disp = ' display="block"' if display else ""
    try:
        m = re.fullmatch(r"\\begin\{aligned\}(.*)\\end\{aligned\}", latex, flags=re.S)
        if m:                          # an mtable: one row per line, columns at '&'
            rows = []
            for line in re.split(r"\\\\", m.group(1)):
                if not line.strip():
                    continue
                cells = "".join(
                    f'<mtd style="text-align:{"right" if j == 0 else "left"}">'
                    f"{_inner(conv.convert(c)) if c.strip() else '<mrow/>'}</mtd>"
                    for j, c in enumerate(line.split("&")))
                rows.append(f"<mtr>{cells}</mtr>")
            return (f'<math xmlns="http://www.w3.org/1998/Math/MathML"{disp}>'
                    f"<mtable>{''.join(rows)}</mtable></math>")
        out = conv.convert(latex)
        return out.replace(' display="inline"', disp) if display else out
    except Exception:                  # a construct latex2mathml does not know
        return None


def _math(latex, display=False):
    m = to_mathml(latex, display)
    return m if m is not None else f"<code>{html.escape(latex)}</code>"


def text_with_math(text):
    """Escape ``text`` for HTML, turning each ``$...$`` into MathML and **x** into bold."""
    parts = re.split(r"(?<!\\)\$(.+?)(?<!\\)\$", str(text), flags=re.S)
    out = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append(_math(part))
        else:
            esc = html.escape(part)
            esc = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", esc)
            esc = re.sub(r"`([^`]+)`", r"<code>\1</code>", esc)
            out.append(esc)
    return "".join(out)


def _sympy_mathml(srepr):
    """SymPy's own presentation MathML of an expression kept as ``srepr``."""
    try:
        import sympy as sp
        return ('<math xmlns="http://www.w3.org/1998/Math/MathML">'
                + sp.mathml(sp.sympify(srepr), printer="presentation") + "</math>")
    except Exception:
        return None


# ------------------------------------------------------------------ pieces

def _badge(it):
    return (f'<span class="badge {"ok" if it["passed"] else "bad"}">'
            f'{"pass" if it["passed"] else "FAIL"}</span>')


def _table(rows):
    if not rows:
        return ""
    body = "".join(f'<tr><td class="k">{text_with_math(k)}</td><td>{text_with_math(v)}</td>'
                   "</tr>" for k, v in rows)
    return f"<table>{body}</table>"


# An SVG figure is embedded as an image (not inline <svg>): it is drawn in isolation from
# the page (its ids, styles and fonts cannot clash with the page's or another figure's)
_MIME = {".svg": "image/svg+xml", ".png": "image/png"}


def _img(out, rel):
    path = os.path.join(out, rel)
    try:
        with open(path, "rb") as fh:
            data = base64.b64encode(fh.read()).decode("ascii")
    except OSError:
        return f"<p><i>plot missing: {html.escape(rel)}</i></p>"
    mime = _MIME.get(os.path.splitext(rel)[1].lower(), "application/octet-stream")
    return f'<img alt="{html.escape(os.path.basename(rel))}" src="data:{mime};base64,{data}">'


def _plots(it, out):
    return "".join(f"<figure>{_img(out, rel)}<figcaption>{text_with_math(cap)}."
                   "</figcaption></figure>" for cap, rel in it.get("plots", []))


def _kernel_rows(it):
    from verify.report import _evidence_rows, _verdict, kernel_rows
    rows = kernel_rows(it)
    for label, stats in (it.get("sub_evidence") or {}).items():
        rows += _evidence_rows({"stats": stats}, f" ({label} check, plotted below)")
    rows += [tuple(r) for r in it.get("extra_rows", [])]
    rows.append(("verdict", f"**{_verdict(it)}**"))
    return rows


def _kinks(it):
    kinks = (it.get("evidence") or {}).get("kinks") or []
    if not kinks:
        return ""
    seen, rows = set(), []
    for k in kinks:
        key = (k["which"], k["subdifferential"], k["picked"], k["valid"])
        if key in seen or len(rows) >= 16:
            continue
        seen.add(key)
        rows.append(f"<tr><td>{html.escape(k['which'])}</td><td>{html.escape(str(k['point']))}"
                    f"</td><td>{text_with_math(k['subdifferential'])}</td><td>"
                    f"{text_with_math(k['picked'])}</td><td>{'yes' if k['valid'] else '<b>NO</b>'}"
                    f"</td></tr>")
    return (f"<details><summary>{len(kinks)} non-differentiable points met: the element "
            "the kernel returns and the subdifferential SymPy derives</summary><table><tr>"
            "<th>output</th><th>point (e.g.)</th><th>subdifferential</th><th>kernel's "
            f"element</th><th>valid</th></tr>{''.join(rows)}</table></details>")


def _steps(it):
    steps = list((it.get("proof") or {}).get("steps", [])) + list(it.get("steps", []))
    if not steps:
        return ""
    lis = "".join(
        f"<li>[{html.escape(s.get('status', ''))}] "
        + (_math(s["claim"]) if "proof" in it and "$" not in s["claim"]
           else text_with_math(s["claim"]))
        + (f" — {text_with_math(s['method'])}" if s.get("method") else "") + "</li>"
        for s in steps)
    return (f"<details><summary>proof: {len(steps)} steps</summary><ul>{lis}</ul>"
            "</details>")


def _extra_fields(it):
    """Every public field this page has no layout for, as data (new checks' additions)."""
    rows = []
    for k, v in it.items():
        if k in _KNOWN or k.startswith("_"):
            continue
        text = v if isinstance(v, str) else json.dumps(v, default=str)
        if len(text) > 600:
            text = text[:600] + " …"
        rows.append(f'<tr><td class="k">{html.escape(k)}</td><td><code>'
                    f"{html.escape(text)}</code></td></tr>")
    if not rows:
        return ""
    return (f"<details><summary>more data ({len(rows)} fields; all in report.json)"
            f"</summary><table>{''.join(rows)}</table></details>")


def _check(it, out):
    from verify.report import anchor
    cls = "check" if it["passed"] else "check fail"
    parts = [f'<div class="{cls}" id="{anchor(it)}"><h3>{_badge(it)}{html.escape(it["name"])}'
             f" — {text_with_math(it['verdict'])}"
             + (f" [seed {it['seed']}]" if "seed" in it else "") + "</h3>"]
    if it.get("statement"):
        parts.append(f"<p>{text_with_math(it['statement'])}</p>")
    if "proof" in it and it.get("section") == "kernels":
        parts.append(_table(_kernel_rows(it)))
        if it.get("definition_sympy"):
            m = _sympy_mathml(it["definition_sympy"])
            if m:
                parts.append(f"<p>The definition as SymPy holds it (SymPy's MathML "
                             f"printer): {m}</p>")
    else:
        parts.append(_table([tuple(r) for r in it.get("rows", [])]))
    parts.append(_kinks(it))
    parts.append(_steps(it))
    notes = list(it.get("notes", [])) + list((it.get("evidence") or {}).get("notes", []))[:12]
    parts += [f"<blockquote>{text_with_math(n)}</blockquote>" for n in notes]
    if it.get("error"):
        parts.append(f"<pre>{html.escape(it.get('traceback', it['error']))}</pre>")
    parts.append(_extra_fields(it))
    parts.append(_plots(it, out))
    parts.append("</div>")
    return "".join(parts)


def _overview(data):
    from verify.report import headline, overview
    ov = overview(data)
    failed = ("none" if not ov["failed"] else ", ".join(
        f'<a href="#{aid}">{html.escape(name)}</a> ({text_with_math(v)})'
        for name, aid, v in ov["failed"]))
    secs = "".join(
        f'<tr><td><a href="#section-{sec}">{html.escape(title)}</a></td><td>{n}</td>'
        f'<td>{bad or ""}</td></tr>' for sec, title, n, bad in ov["sections"])
    skipped = ""
    if data.get("skipped"):
        skipped = ("<li><b>Skipped</b> (" + ("failures under --strict" if data.get("strict")
                                             else "not failures; --strict fails them")
                   + "): " + html.escape("; ".join(f"{s['part']} (needs {s['needs']})"
                                                   for s in data["skipped"])) + "</li>")
    return (f'<p>{html.escape(headline(data))}</p><div class="summary"><ul>'
            f"<li><b>Proved</b>: {ov['proof_steps']} proof steps — SymPy shows that each "
            "closed form a kernel computes equals the derivative derived from its "
            "definition" + (f"; the other steps by kind: {ov['other_steps']}" if
                            ov["other_steps"] else "") + ".</li>"
            f"<li><b>Measured</b>: {ov['n_points']} points of compiled kernels against exact "
            f"values (mpmath), {ov['n_by_abs']} of them within the absolute bound only; "
            "optimizer steps, training epochs and small networks against exact replays; "
            "convexity decided by proof or witness.</li>"
            f"<li><b>Failed</b>: {failed}.</li>{skipped}</ul>"
            f"<table><tr><th>section</th><th>checks</th><th>failed</th></tr>{secs}</table>"
            "</div>")


def write_html(data, out):
    """Write ``out``/report.html from the run's data (plots already drawn into ``out``);
    returns its path."""
    from verify.report import KERNEL_SECTIONS, SCALE_TEXT, _atomic_write, group_of, overview
    body = ["<h1>nnlib verification report</h1>", _overview(data),
            "<p>How to read it: a kernel's tolerance <code>≤ k ulp or |error| ≤ m·eps·s"
            "</code> passes a point if either bound holds (eps: the dtype's machine "
            "epsilon; s: " + html.escape("; ".join(f"{w}: {t}" for w, t in
                                                   SCALE_TEXT.items())) + "). \"Worst "
            "point at x of its tolerance\" divides the largest error by the bound that "
            "point had to meet: at most 1 passes.</p>"]
    for e in data.get("plot_errors", []):
        body.append(f"<blockquote><b>plot failed</b>: {html.escape(e)}</blockquote>")
    summary_shown = False
    for sec, title, _, _ in overview(data)["sections"]:
        body.append(f'<h2 id="section-{sec}">{html.escape(title)}</h2>')
        if sec in KERNEL_SECTIONS and not summary_shown:
            summary_shown = True
            body.append(_plots({"plots": data.get("summary_plots", [])}, out))
        if sec == "approximation":
            from verify.approximation import THEOREM_TEXT
            body.append(f"<p>{text_with_math(THEOREM_TEXT)}</p>")
        body += [_check(it, out) for it in data["items"] if group_of(it) == sec]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>nnlib verification report</title><style>{_CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
    path = os.path.join(out, "report.html")
    _atomic_write(path, page)
    return path
