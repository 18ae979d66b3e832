"""Build and run a C harness of a kernel header's AVX-512 code (test_blas_small_fused.py,
test_act_row_cols.py, test_gemm_small_write_back.py): compiled with the compiler Python
was built with and the AVX-512 flags, run only on a CPU that has them (the test skips,
with the reason, where there is no compiler, no x86-64 or no AVX-512), and the C text of
buffers ending at an inaccessible page that the harnesses share."""
import os
import shutil
import subprocess
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["-mfma", "-mavx2", "-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw"]


# Buffers each followed by an inaccessible page, for a harness that places its arrays at
# their ends: the includer defines the enum constants NREG (how many) and CAP (bytes each)
# first; regions() maps them, tail(r, bytes) is an array of that size ending at buffer r's
# end, so any access past its last element faults.
PAGE_END_BUFFERS = r"""
static char* region[NREG];
static void regions(void)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    int r;
    for (r = 0; r < NREG; r++) {
        region[r] = mmap(NULL, CAP + pg, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region[r] == MAP_FAILED || mprotect(region[r] + CAP, pg, PROT_NONE)) {
            perror("mmap");
            exit(2);
        }
    }
}
static void* tail(int r, size_t bytes) { return region[r] + CAP - bytes; }

"""


def _has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return all(f" {flag}" in flags for flag in ("avx512f", "avx512vl", "avx512dq",
                                                 "avx512bw"))


def run_harness(tmp_path, source, without, opt="-O2", timeout=120):
    """Compile ``source`` (C including headers as ``nnlib/_kernels/<name>.h``) with ``opt``
    and the AVX-512 flags, warnings as errors, run it and return its CompletedProcess;
    ``without``: what the kernel is where the CPU lacks AVX-512 (the skip's reason)."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    if sysconfig.get_platform().split("-")[-1] not in ("x86_64", "amd64"):
        pytest.skip("the code under test is x86-64 AVX-512 code")
    if not _has_avx512():
        pytest.skip(f"no AVX-512 here: {without}")
    src = tmp_path / "harness.c"
    src.write_text(source)
    exe = tmp_path / "harness"
    build = subprocess.run([cc, opt, "-Wall", "-Werror", "-Wno-unused-function", *FLAGS,
                            "-I", ROOT, "-I", sysconfig.get_paths()["include"], str(src),
                            "-o", str(exe), "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout)
