"""Build nnlib's compiled kernels.

Every ``nnlib/_kernels/*.pyx`` becomes an extension module ``nnlib._kernels.<name>``.

Templates
---------
Loops written once per kind (activation, optimizer rule) and the kind enums are Tempita
templates, ``nnlib/_kernels/<name>.pyx.tp`` / ``.pxd.tp``, as scikit-learn writes its
``_loss.pyx.tp``. Before anything is cythonized, each template is rendered next to itself
(``<name>.pyx`` / ``<name>.pxd``, git-ignored) with the names of ``nnlib/_codes.py`` in
scope, the one home of the kind codes (``nnlib/_kernels/_templates.py``). Rendering is
cheap, so it runs on every build and a file is rewritten only when its text changes: a
newer template or a changed code table always reaches the build, and an unchanged one
leaves cythonize's incremental rebuild alone.

Environment switches
--------------------
NNLIB_DEBUG=1   Cython bounds/initialization checks on, -O1 -g: the build the fuzz tests
                use to make an out-of-bounds access fail loudly instead of corrupting memory.
NNLIB_NATIVE=0  do not pass -march=native (portable binary; slower elementwise loops).
                With it, the vmath.h modules (WIDE_VECTOR_MODULES) also get 512-bit vectors.
NNLIB_OPENMP=0  build without OpenMP even when the compiler supports it.

OpenMP and -march=native are each probed with a tiny test compile, so a compiler that
lacks them still builds a working (single-threaded, portable) nnlib.
"""
import glob
import os
import runpy
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name, default):
    return os.environ.get(name, default).strip().lower() not in ("", "0", "false", "no")


DEBUG = _flag("NNLIB_DEBUG", "0")
NATIVE = _flag("NNLIB_NATIVE", "1")
OPENMP = _flag("NNLIB_OPENMP", "1")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "embedsignature": True,
}


def _compiles(compiler, flags, code="int main(void){return 0;}\n", libs_flags=()):
    """True when ``compiler`` builds and links ``code`` with ``flags``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=list(flags))
            compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                     extra_postargs=list(libs_flags) or list(flags))
        except Exception:
            return False
    return True


# Modules whose loops are the branch-free exp/expm1/log1p/tanh of vmath.h: GCC prefers
# 256-bit vectors even on AVX-512 CPUs; for these compute-bound loops 512-bit ones measured
# 1.3-1.9x faster (tanh/sigmoid/softplus fwd and vjp, 1e6 float64, one thread, interleaved
# A/B). The training epoch (train) also: its elementwise passes (backward, optimizer
# update) run on the same vectors, the estimators' Adam fit measured 1-2% less CPU.
# optim_wide: the standalone step's rules without a division (float32 SGD/momentum
# 1.3-1.6x; see its docstring for why the dividing rules stay at 256 bits). Only these
# modules: elsewhere the wider vectors were not measured. Harmless on CPUs without
# AVX-512 (the compiler cannot use them there).
WIDE_VECTOR_MODULES = ("activations", "losses", "output_maps", "elementary", "train",
                       "optim_wide")
WIDE_VECTOR_FLAG = "-mprefer-vector-width=512"

OMP_PROBE = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"


class BuildExt(build_ext):
    """Adds OpenMP and -march=native where the compiler accepts them."""

    def build_extensions(self):
        cc = self.compiler
        compile_args, link_args = [], []
        wide = []
        if cc.compiler_type == "unix":
            compile_args += ["-O1", "-g"] if DEBUG else ["-O3"]
            compile_args += ["-Wno-unused-function", "-Wno-unreachable-code"]
            # C's sqrt() must set errno on negative input unless told otherwise, which
            # stops GCC from vectorizing it (optimizer rules: 5x); nnlib never reads errno
            # and IEEE sqrt is correctly rounded either way, so no result changes.
            compile_args.append("-fno-math-errno")
            if NATIVE and _compiles(cc, ["-march=native"]):
                compile_args.append("-march=native")
                if _compiles(cc, ["-march=native", WIDE_VECTOR_FLAG]):
                    wide = [WIDE_VECTOR_FLAG]
            if OPENMP and _compiles(cc, ["-fopenmp"], OMP_PROBE):
                compile_args.append("-fopenmp")
                link_args.append("-fopenmp")
            else:
                print("nnlib: building WITHOUT OpenMP (n_threads will be 1)", file=sys.stderr)
        elif cc.compiler_type == "msvc" and OPENMP:
            compile_args.append("/openmp")
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + list(ext.extra_compile_args)
            if ext.name.rsplit(".", 1)[-1] in WIDE_VECTOR_MODULES:
                ext.extra_compile_args += wide
            ext.extra_link_args = link_args + list(ext.extra_link_args)
        super().build_extensions()


KERNELS = os.path.join("nnlib", "_kernels")


def extensions():
    # a plain file, run by path: importing nnlib would need the kernels this build makes
    runpy.run_path(os.path.join(KERNELS, "_templates.py"))["render_all"]()
    exts = []
    for pyx in sorted(glob.glob(os.path.join(KERNELS, "*.pyx"))):
        name = os.path.splitext(pyx)[0].replace(os.sep, ".")
        exts.append(Extension(
            name, [pyx],
            # vmath.h (cimported through scalar.pxd) sits next to the kernels
            include_dirs=[numpy.get_include(), KERNELS],
            depends=glob.glob(os.path.join(KERNELS, "*.h")),
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        ))
    return cythonize(
        exts,
        compiler_directives=DIRECTIVES,
        build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython"),
        nthreads=0,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
