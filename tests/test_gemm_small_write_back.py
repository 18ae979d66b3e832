"""gemm_small.h's AVX-512 write-back (the training loop's fused passes, dense.pxd's
mm_bias_act and mm_relu_backward) against the plain product followed by the passes it
replaces, in a C harness: nn_gemm_small_{f,d} with act BIAS or RELU (+ bias, identity or
relu) against the plain product (act NONE, bias, H and work NULL) then bias_act's scalar
formulas, and with act RELU_GRAD (relu's backward from H, the column sums in work)
against the plain product then act_row.h's nn_relu_backward_cols (act_backward's relu
form). Random shapes (1-30 rows:
every row block and rows left; 16-200 columns: one to four panels, masked tails; k 2-40),
both transposes of A and B (B transposed: the gathered panel copy), padded leading
dimensions, +-0, +-inf and NaN operands, H zero a third of the time. C (and every padding
column of it) and work must be bitwise the reference's, except which NaN a sum of two
NaNs keeps (the operand order of an addition, GCC's choice in the reference: the
bias_act and act_backward notes); every array ends at an inaccessible page, so a read
past A's, B's, H's, the bias's or work's last element, or a write past C's or work's,
faults. The Python tests reach these loops only through whole epochs (bitwise against
two threads, exact integer cases in verify), never with NaN operands or B's rows at a
page end."""
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
#include "nnlib/_kernels/act_row.h"

#if !NN_SMALL_GEMM_BIAS_ACT
#error "the write-back is AVX-512 code"
#endif

static uint64_t s_ = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void) { s_ ^= s_ << 13; s_ ^= s_ >> 7; s_ ^= s_ << 17; return s_; }
static double rnd(void) { return (double)(rnd64() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

/* mostly normal values in (-2, 2); now and then +-0, +-inf or a quiet NaN of random
   sign and payload */
#define VALUE(T, UT, EXP, MANT, QUIET)                                                     \
static T value_##T(int special)                                                            \
{                                                                                          \
    UT u = (UT)rnd64() & MANT, sign = (UT)(rnd64() & 1) << (sizeof(UT) * 8 - 1);           \
    T v;                                                                                   \
    if (!special || rnd64() % 200)                                                         \
        return (T)(2.0 * rnd());                                                           \
    switch (rnd64() % 5) {                                                                 \
    case 0: return (T)0;                                                                   \
    case 1: return -(T)0;                                                                  \
    case 2: return (T)INFINITY;                                                            \
    case 3: return -(T)INFINITY;                                                           \
    default: u |= EXP | QUIET | sign; break;                                               \
    }                                                                                      \
    memcpy(&v, &u, sizeof v);                                                              \
    return v;                                                                              \
}
VALUE(float, uint32_t, 0x7f800000u, 0x007fffffu, 0x00400000u)
VALUE(double, uint64_t, 0x7ff0000000000000ull, 0x000fffffffffffffull, 0x0008000000000000ull)

/* buffers each followed by an inaccessible page; tail(r, bytes) places an array at the
   end of buffer r */
enum { CAP = 1 << 20, NREG = 6 };
""" + PAGE_END_BUFFERS + r"""
static long compared, nan_sums;

#define SAME(T, a, b) (memcmp(&(a), &(b), sizeof(T)) == 0)
/* the NaNs and infinities among column j's m terms (rows ldc apart): a sum of two
   infinities of opposite signs is a NaN too */
#define NONFINITE_TERMS(T)                                                                 \
static int nonfinite_terms_##T(const T* R, Py_ssize_t m, Py_ssize_t ldc, Py_ssize_t j)     \
{                                                                                          \
    int count = 0;                                                                         \
    Py_ssize_t r;                                                                          \
    for (r = 0; r < m; r++)                                                                \
        count += !isfinite(R[r * ldc + j]);                                                \
    return count;                                                                          \
}
NONFINITE_TERMS(float)
NONFINITE_TERMS(double)
#define nonfinite_terms(R, m, ldc, j) _Generic((R), float*: nonfinite_terms_float,         \
                                          double*: nonfinite_terms_double)(R, m, ldc, j)

#define CHECK(T, SUF)                                                                      \
static int check_##SUF(int ta, int tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,           \
                       Py_ssize_t pa, Py_ssize_t pb, Py_ssize_t pc, int special)           \
{                                                                                          \
    const Py_ssize_t lda = (ta ? m : k) + pa, ldb = (tb ? k : n) + pb, ldc = n + pc;       \
    const size_t nA = (size_t)((ta ? k : m) * lda), nB = (size_t)((tb ? n : k) * ldb);     \
    const size_t nC = (size_t)(m * ldc);                                                   \
    T* A = tail(0, nA * sizeof(T));                                                        \
    T* B = tail(1, nB * sizeof(T));                                                        \
    T* C = tail(2, nC * sizeof(T));                                                        \
    T* H = tail(3, nC * sizeof(T));                                                        \
    T* bias = tail(4, (size_t)n * sizeof(T));                                              \
    double* w = tail(5, (size_t)n * sizeof(double));                                       \
    T* R = malloc(nC * sizeof(T) + 1);                                                     \
    T* init = malloc(nC * sizeof(T) + 1);                                                  \
    double* w2 = calloc((size_t)n + 1, sizeof(double));                                    \
    size_t i;                                                                              \
    Py_ssize_t r, j;                                                                       \
    int act, bad = 0;                                                                      \
    for (i = 0; i < nA; i++) A[i] = value_##T(special);                                    \
    for (i = 0; i < nB; i++) B[i] = value_##T(special);                                    \
    for (i = 0; i < nC; i++) {                                                             \
        init[i] = value_##T(special);                                                      \
        H[i] = rnd64() % 3 ? value_##T(special) : (T)0;                                    \
    }                                                                                      \
    for (j = 0; j < n; j++) bias[j] = value_##T(special);                                  \
    for (act = NN_GEMM_ACT_BIAS; act <= NN_GEMM_ACT_RELU_GRAD; act++) {                    \
        memcpy(C, init, nC * sizeof(T));                                                   \
        memcpy(R, init, nC * sizeof(T));                                                   \
        for (j = 0; j < n; j++) w[j] = w2[j] = 12345.0;                                    \
        nn_gemm_small_##SUF(ta, tb, m, n, k, (T)1, A, lda, B, ldb, (T)0, R, ldc, NULL,     \
                            NULL, NULL, NN_GEMM_ACT_NONE);                                 \
        if (act == NN_GEMM_ACT_RELU_GRAD) {                                                \
            nn_gemm_small_##SUF(ta, tb, m, n, k, (T)1, A, lda, B, ldb, (T)0, C, ldc, NULL, \
                                H, w, act);                                                \
            for (j = 0; j < n; j++) w2[j] = 0.0;                                           \
            for (r = 0; r < m; r++)    /* act_backward's relu form, row by row */          \
                nn_relu_backward_cols_##SUF(H + r * ldc, R + r * ldc, R + r * ldc, w2, 1,  \
                                            n, 0, n);                                      \
        } else {                                                                           \
            nn_gemm_small_##SUF(ta, tb, m, n, k, (T)1, A, lda, B, ldb, (T)0, C, ldc, bias, \
                                NULL, NULL, act);                                          \
            for (r = 0; r < m; r++)    /* bias_act's formulas */                           \
                for (j = 0; j < n; j++) {                                                  \
                    T x = R[r * ldc + j] + bias[j];                                        \
                    if (act == NN_GEMM_ACT_RELU)                                           \
                        x = x > 0 ? x : x <= 0 ? (T)0 : x;                                 \
                    R[r * ldc + j] = x;                                                    \
                }                                                                          \
        }                                                                                  \
        for (i = 0; i < nC; i++)                                                           \
            if (!SAME(T, C[i], R[i])) {                                                    \
                if (isnan(C[i]) && isnan(R[i]) && act != NN_GEMM_ACT_RELU_GRAD             \
                        && isnan(bias[i % ldc])) {                                         \
                    nan_sums++;         /* a NaN bias added to a NaN product */            \
                    continue;                                                              \
                }                                                                          \
                bad = 1;                                                                   \
                printf(#T " act %d ta %d tb %d m %zd n %zd k %zd pads %zd %zd %zd: "      \
                       "C[%zu] "                                                           \
                       "%a, reference %a\n", act, ta, tb, m, n, k, pa, pb, pc, i,          \
                       (double)C[i], (double)R[i]);                                        \
                break;                                                                     \
            }                                                                              \
        if (act == NN_GEMM_ACT_RELU_GRAD)                                                  \
            for (j = 0; j < n; j++)                                                        \
                if (!SAME(double, w[j], w2[j])) {                                          \
                    if (isnan(w[j]) && isnan(w2[j])                                        \
                            && nonfinite_terms(R, m, ldc, j) > 1) {                        \
                        nan_sums++;     /* two NaNs met in the sums: which one */          \
                        continue;                                                          \
                    }                                                                      \
                    bad = 1;                                                               \
                    printf(#T " work[%zd] ta %d tb %d m %zd n %zd k %zd: %a, reference "   \
                           "%a\n", j, ta, tb, m, n, k, w[j], w2[j]);                       \
                    break;                                                                 \
                }                                                                          \
        compared++;                                                                        \
    }                                                                                      \
    free(R); free(init); free(w2);                                                         \
    return bad;                                                                            \
}
CHECK(float, f)
CHECK(double, d)

int main(void)
{
    int bad = 0, c;
    regions();
    for (c = 0; c < 1500; c++) {
        const int ta = (int)(rnd64() & 1), tb = (int)(rnd64() & 1);
        const Py_ssize_t m = 1 + (Py_ssize_t)(rnd64() % 30);
        const Py_ssize_t n = 16 + (Py_ssize_t)(rnd64() % 185);
        const Py_ssize_t k = 2 + (Py_ssize_t)(rnd64() % 39);
        const Py_ssize_t pa = rnd64() % 3 ? 0 : 1 + (Py_ssize_t)(rnd64() % 9);
        const Py_ssize_t pb = rnd64() % 3 ? 0 : 1 + (Py_ssize_t)(rnd64() % 9);
        const Py_ssize_t pc = rnd64() % 3 ? 0 : 1 + (Py_ssize_t)(rnd64() % 9);
        const int special = c % 2;
        bad |= check_f(ta, tb, m, n, k, pa, pb, pc, special);
        bad |= check_d(ta, tb, m, n, k, pa, pb, pc, special);
    }
    printf("compared %ld sums with two NaNs %ld\n", compared, nan_sums);
    return bad;
}
"""


def test_the_write_back_is_the_product_then_the_pass_bitwise(tmp_path):
    # -O3, as setup.py builds the kernels
    run = run_harness(tmp_path, HARNESS, "the training loop runs bias_act and "
                      "act_backward after the product", opt="-O3", timeout=300)
    assert run.returncode == 0, (run.returncode, run.stdout[-3000:], run.stderr[-2000:])
    compared = int(run.stdout.split("compared ")[1].split()[0])
    assert compared == 2 * 1500 * 3, run.stdout[-500:]
