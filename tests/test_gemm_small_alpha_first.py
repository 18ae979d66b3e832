"""gemm_small.h's AVX-512 float32 products under NN_GEMM_ACT_ALPHA_FIRST (dense.pxd's
narrow_step: the training step's W <- beta W - lr H^T dZ of a 9-15-column layer, or
H^T dZ alone) against a scalar reference in a C harness: each element one chain of
fmaf in increasing k from zero, then alpha s rounded (s itself for alpha 1 and beta 0),
then fmaf(beta, C, alpha s) where beta != 0 -- OpenBLAS's SkylakeX write-back. Random
shapes: A transposed (the narrow kernel nn_gemm_small_f_narrow for 9-15 columns: 1-70
rows, so blocks of 32, a masked second vector and a lone masked one) and not (the row
blocks' kind 4), 1-16 columns (the row blocks below 9 and at 16), k 2-40, alpha -0.1,
1 or -3 and beta 0, 1 or 0.5, padded leading dimensions, +-0, +-inf and NaN operands.
C (and its padding columns) must be bitwise the reference's, but for which NaN a NaN
result carries (the payload an instruction keeps depends on its operand order, GCC's
choice in the reference); every array ends at an inaccessible page, so a read past A's
or B's last element, or a write past C's, faults."""
from tests._avx512_harness import PAGE_END_BUFFERS, run_harness

HARNESS = r"""
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "nnlib/_kernels/gemm_small.h"

#if !NN_SMALL_GEMM_BIAS_ACT
#error "the ALPHA_FIRST write-back is AVX-512 code"
#endif

static uint64_t s_ = 0x2545f4914f6cdd1dull;
static uint64_t rnd64(void) { s_ ^= s_ << 13; s_ ^= s_ >> 7; s_ ^= s_ << 17; return s_; }
static double rnd(void) { return (double)(rnd64() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

/* mostly normal values in (-2, 2); now and then +-0, +-inf or a quiet NaN */
static float value(int special)
{
    if (!special || rnd64() % 100)
        return (float)(2.0 * rnd());
    switch (rnd64() % 5) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return INFINITY;
    case 3: return -INFINITY;
    default: return NAN;
    }
}

enum { CAP = 1 << 20, NREG = 3 };
""" + PAGE_END_BUFFERS + r"""
static long compared, nan_results;

static int check(int ta, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, Py_ssize_t pa,
                 Py_ssize_t pb, Py_ssize_t pc, float alpha, float beta, int special)
{
    const Py_ssize_t lda = (ta ? m : k) + pa, ldb = n + pb, ldc = n + pc;
    const size_t nA = (size_t)((ta ? k : m) * lda), nB = (size_t)(k * ldb);
    const size_t nC = (size_t)(m * ldc);
    float* A = tail(0, nA * sizeof(float));
    float* B = tail(1, nB * sizeof(float));
    float* C = tail(2, nC * sizeof(float));
    float* R = malloc(nC * sizeof(float) + 1);
    size_t i;
    Py_ssize_t r, j, p;
    for (i = 0; i < nA; i++) A[i] = value(special);
    for (i = 0; i < nB; i++) B[i] = value(special);
    for (i = 0; i < nC; i++) C[i] = R[i] = value(special);
    nn_gemm_small_f(ta, 0, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, NULL,
                    NN_GEMM_ACT_ALPHA_FIRST);
    for (r = 0; r < m; r++)
        for (j = 0; j < n; j++) {
            float s = 0.0f, t;
            for (p = 0; p < k; p++)
                s = fmaf(ta ? A[p * lda + r] : A[r * lda + p], B[p * ldb + j], s);
            t = alpha * s;          /* rounded: it feeds fmaf's addend, never contracted */
            R[r * ldc + j] = beta == 0.0f ? (alpha == 1.0f ? s : t)
                                          : fmaf(beta, R[r * ldc + j], t);
        }
    compared++;
    for (i = 0; i < nC; i++)
        if (memcmp(&C[i], &R[i], sizeof(float))) {
            if (isnan(C[i]) && isnan(R[i])) {
                nan_results++;
                continue;
            }
            printf("ta %d m %zd n %zd k %zd pads %zd %zd %zd alpha %g beta %g: C[%zu] %a, "
                   "reference %a\n", ta, m, n, k, pa, pb, pc, alpha, beta, i, C[i], R[i]);
            free(R);
            return 1;
        }
    free(R);
    return 0;
}

int main(void)
{
    static const float alphas[] = {-0.1f, 1.0f, -3.0f}, betas[] = {1.0f, 0.0f, 0.5f};
    int bad = 0, c;
    regions();
    for (c = 0; c < 3000; c++) {
        const int ta = rnd64() % 4 != 0;
        const Py_ssize_t m = 1 + (Py_ssize_t)(rnd64() % 70);
        const Py_ssize_t n = rnd64() % 4 ? 9 + (Py_ssize_t)(rnd64() % 7)
                                         : 1 + (Py_ssize_t)(rnd64() % 16);
        const Py_ssize_t k = 2 + (Py_ssize_t)(rnd64() % 39);
        const Py_ssize_t pa = rnd64() % 3 ? 0 : 1 + (Py_ssize_t)(rnd64() % 9);
        const Py_ssize_t pb = rnd64() % 3 ? 0 : 1 + (Py_ssize_t)(rnd64() % 9);
        const Py_ssize_t pc = rnd64() % 3 ? 0 : 1 + (Py_ssize_t)(rnd64() % 9);
        bad |= check(ta, m, n, k, pa, pb, pc, alphas[rnd64() % 3], betas[rnd64() % 3],
                     c % 2);
    }
    printf("compared %ld NaN results %ld\n", compared, nan_results);
    return bad;
}
"""


def test_alpha_first_is_the_chain_then_openblas_write_back_bitwise(tmp_path):
    # -O3, as setup.py builds the kernels
    run = run_harness(tmp_path, HARNESS, "dense.pxd's narrow_step leaves the product to "
                      "BLAS", opt="-O3", timeout=300)
    assert run.returncode == 0, (run.returncode, run.stdout[-3000:], run.stderr[-2000:])
    assert int(run.stdout.split("compared ")[1].split()[0]) == 3000, run.stdout[-500:]
