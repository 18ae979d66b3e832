"""vmath.h compiles on targets without FMA or -march=native (NNLIB_NATIVE=0, or a CPU
that lacks them), where its #else branches are the ones built. The suite's own build
uses -march=native, so without this check a broken fallback branch goes unnoticed (a
merge once left a second nn_tanh_f32 inside nn_fms's non-FMA branch)."""
import os
import shutil
import subprocess
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = ('#include "nnlib/_kernels/vmath.h"\n'
       "double f(double x) { return nn_exp(x) + nn_expm1_neg(-x) + nn_log1p_unit(x)\n"
       "                          + nn_tanh(x) + nn_tanh_f32(x); }\n")


def _x86_64_compiler():
    """The C compiler Python was built with; skips unless there is one, on x86-64."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    if sysconfig.get_platform().split("-")[-1] not in ("x86_64", "amd64"):
        pytest.skip("the FMA flags are x86-64's")
    return cc


@pytest.mark.parametrize("flags", [["-mno-fma"], ["-mfma", "-mavx2"]], ids=["no-fma", "fma"])
def test_vmath_compiles_with_and_without_fma(tmp_path, flags):
    cc = _x86_64_compiler()
    src = tmp_path / "probe.c"
    src.write_text(SRC)
    run = subprocess.run([cc, "-O2", "-Wall", "-Werror", *flags, "-I", ROOT, "-c",
                          str(src), "-o", str(tmp_path / "probe.o")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# the other headers with FMA or AVX2 branches (penalty.h once defined its loss helpers
# twice inside the non-FMA branch), and AVX-512 ones (optim_f32.h's Adam loop, gemm_small.h's
# products, act_f32.h's sigmoid forward have an AVX2 and an AVX-512 branch: each build
# compiles one; act_f32.h's leaky_relu loops need AVX-512 alone, without FMA;
# row_max.h's maxima and act_row.h's identity sums are AVX-512 or nothing)
HEADERS = ["penalty.h", "optim_f32.h", "prefetch.h", "gemm_small.h", "act_row.h",
           "act_f32.h", "blas_small.h", "row_max.h"]


@pytest.mark.parametrize("flags", [["-mno-fma"], ["-mfma", "-mavx2"],
                                   ["-mfma", "-mavx2", "-mavx512f", "-mavx512vl"],
                                   ["-mavx512f", "-mavx512vl", "-mno-fma"]],
                         ids=["no-fma", "fma", "avx512", "avx512-no-fma"])
@pytest.mark.parametrize("header", HEADERS)
def test_kernel_headers_compile_with_and_without_fma(tmp_path, header, flags):
    cc = _x86_64_compiler()
    src = tmp_path / "probe.c"
    src.write_text(f'#include <Python.h>\n#include "nnlib/_kernels/{header}"\n')
    run = subprocess.run([cc, "-O2", "-Wall", "-Werror", "-Wno-unused-function", *flags,
                          "-I", ROOT, "-I", sysconfig.get_paths()["include"], "-c", str(src),
                          "-o", str(tmp_path / "probe.o")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
