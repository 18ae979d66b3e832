"""Render the kernels' Tempita templates (``nnlib/_kernels/*.tp``): build tooling.

setup.py runs this file by path before cythonizing (importing nnlib would need the
kernels the build is about to make), and the tests import it to check that the rendered
files on disk are current. Each template is rendered with the names of
``nnlib/_codes.py``, the one home of the kind codes, in scope. Only the standard library
and Cython (a build requirement, imported when a template is rendered) are used.
"""
import glob
import os
import runpy

KERNELS = os.path.dirname(os.path.abspath(__file__))
CODES = os.path.join(os.path.dirname(KERNELS), "_codes.py")


def templates():
    """Paths of every template, sorted."""
    return sorted(glob.glob(os.path.join(KERNELS, "*.tp")))


def code_names(path=CODES):
    """The public names of ``nnlib/_codes.py``, run as a plain file."""
    return {k: v for k, v in runpy.run_path(path).items() if not k.startswith("_")}


def render(template, names=None):
    """The text of ``template`` rendered with ``names`` (default: ``code_names()``)."""
    from Cython import Tempita

    with open(template, encoding="utf-8") as f:
        text = Tempita.Template(f.read(), name=template).substitute(
            code_names() if names is None else names)
    return (f"# GENERATED from {os.path.basename(template)} by setup.py: edit the "
            f"template, not this file.\n{text}")


def render_all():
    """Write each template's rendering next to it (``x.pyx.tp`` -> ``x.pyx``), touching a
    file only when its text changes, so an unchanged one keeps cythonize's incremental
    rebuild. Returns the paths written."""
    names, written = code_names(), []
    for template in templates():
        target, text = template[:-len(".tp")], render(template, names)
        try:
            with open(target, encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        written.append(target)
    return written
