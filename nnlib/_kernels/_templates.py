"""Render the kernels' Tempita templates (``nnlib/_kernels/*.tp``): build tooling.

setup.py runs this file by path before cythonizing (importing nnlib would need the
kernels the build is about to make), and the tests import it to check that the rendered
files on disk are current. Each template is rendered with the names of
``nnlib/_codes.py``, the one home of the kind codes, and of ``nnlib/_paths.py``, the one
home of the kernels' branch thresholds, in scope. Only the standard library
and Cython (a build requirement, imported when a template is rendered) are used.
"""
import glob
import os
import runpy

KERNELS = os.path.dirname(os.path.abspath(__file__))
CODES = os.path.join(os.path.dirname(KERNELS), "_codes.py")
# the kernels' branch thresholds (paths.pxd, paths.h), rendered with the codes
PATHS = os.path.join(os.path.dirname(KERNELS), "_paths.py")


def templates():
    """Paths of every template, sorted."""
    return sorted(glob.glob(os.path.join(KERNELS, "*.tp")))


def code_names(path=CODES, paths=PATHS):
    """The public names of ``nnlib/_codes.py`` and ``nnlib/_paths.py``, each run as a
    plain file."""
    names = {}
    for p in (path, paths):
        names.update((k, v) for k, v in runpy.run_path(p).items() if not k.startswith("_"))
    return names


def render(template, names=None):
    """The text of ``template`` rendered with ``names`` (default: ``code_names()``)."""
    from Cython import Tempita

    with open(template, encoding="utf-8") as f:
        text = Tempita.Template(f.read(), name=template).substitute(
            code_names() if names is None else names)
    head = (f"GENERATED from {os.path.basename(template)} by setup.py: edit the "
            f"template, not this file.")
    # a C header takes a C comment
    head = f"/* {head} */" if template.endswith(".h.tp") else f"# {head}"
    return f"{head}\n{text}"


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
