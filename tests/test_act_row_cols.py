"""act_row.h's AVX-512 batch backward of relu (nn_relu_backward_cols: one sweep over the
rows, masked tails) against the column blocks it replaced (nn_relu_backward_colblocks),
in a C harness: every width from 1 to 70 columns and sub-ranges [j0, j1) of them (the
threaded split's blocks), 0 to 5 rows, 512 and 515 columns, in place and not, float32
and float64, with +-0, +-inf, NaNs of random sign and payload (quiet and signalling),
subnormals, and again under flush-to-zero and denormals-are-zero. dZ must be bitwise the
column blocks' (NaN payloads too) and the columns outside [j0, j1) untouched; each array
ends at an inaccessible page, so a load or store past a row's last column faults. The
column sums in work must be bitwise the column blocks' too, except which NaN a sum of
two NaNs keeps: x86 keeps the first operand's, and GCC takes the addition as commutative
(it folds the loaded sums in as the second operand), so that NaN's sign and payload are
the compiler's choice on either form (the column blocks' own scalar tail gives different
ones inlined in two places at -O3). The Python tests reach the one-sweep form only
through dense_backward's bias gradient, whose NaN-insensitive comparison cannot see a
wrong NaN in dZ, and never with j0 > 0."""
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
#include <xmmintrin.h>
#include "nnlib/_kernels/act_row.h"

#if !defined(__AVX512F__)
#error "the one-sweep form is AVX-512 code"
#endif

static uint64_t s_ = 88172645463325252ull;
static uint64_t rnd64(void) { s_ ^= s_ << 13; s_ ^= s_ >> 7; s_ ^= s_ << 17; return s_; }
static double rnd(void) { return (double)(rnd64() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

/* a value: +-0, +-inf, a NaN (random sign and payload, quiet or signalling), a
   subnormal, or a normal one in (-1, 1) */
#define VALUE(T, UT, EXP, MANT, QUIET)                                                     \
static T value_##T(void)                                                                   \
{                                                                                          \
    UT u = (UT)rnd64() & MANT, sign = (UT)(rnd64() & 1) << (sizeof(UT) * 8 - 1);          \
    T v;                                                                                   \
    switch (rnd64() % 12) {                                                                \
    case 0: return (T)0;                                                                   \
    case 1: return -(T)0;                                                                  \
    case 2: return (T)INFINITY;                                                            \
    case 3: return -(T)INFINITY;                                                           \
    case 4: u |= EXP | QUIET | sign; break;                /* quiet NaN */                \
    case 5: u = (u & ~QUIET) | 1 | EXP | sign; break;      /* signalling NaN */           \
    case 6: u = (u | 1) | sign; break;                     /* subnormal */                \
    default: return (T)rnd();                                                              \
    }                                                                                      \
    memcpy(&v, &u, sizeof v);                                                              \
    return v;                                                                              \
}
VALUE(float, uint32_t, 0x7f800000u, 0x007fffffu, 0x00400000u)
VALUE(double, uint64_t, 0x7ff0000000000000ull, 0x000fffffffffffffull, 0x0008000000000000ull)

/* four buffers, each followed by an inaccessible page: an array placed at a buffer's
   end (tail) faults on any access past its last element */
enum { CAP = 1 << 18, NREG = 4 };
""" + PAGE_END_BUFFERS + r"""
static long compared, nan_sums;

#define CHECK(T, SUF)                                                                      \
static int check_##SUF(Py_ssize_t n, Py_ssize_t c, Py_ssize_t j0, Py_ssize_t j1,           \
                       int in_place)                                                       \
{                                                                                          \
    size_t N = (size_t)(n * c), i;                                                         \
    T* H = tail(0, N * sizeof(T));                                                         \
    T* G = tail(1, N * sizeof(T));                                                         \
    T* Z = in_place ? G : tail(2, N * sizeof(T));                                          \
    double* w = tail(3, (size_t)c * sizeof(double));                                       \
    T* G2 = malloc(N * sizeof(T) + 1);                                                     \
    T* Z2 = in_place ? G2 : malloc(N * sizeof(T) + 1);                                     \
    double* w2 = malloc((size_t)c * sizeof(double) + 1);                                   \
    int bad = 0;                                                                           \
    for (i = 0; i < N; i++) {                                                              \
        H[i] = rnd64() % 3 ? value_##T() : (T)0;                                           \
        G[i] = G2[i] = value_##T();                                                        \
        if (!in_place)                                                                     \
            Z[i] = Z2[i] = (T)-777.0;                                                      \
    }                                                                                      \
    for (i = 0; i < (size_t)c; i++)                                                        \
        w[i] = w2[i] = rnd64() % 2 ? rnd() : -0.0;                                         \
    nn_relu_backward_cols_##SUF(H, G, Z, w, n, c, j0, j1);                                 \
    nn_relu_backward_colblocks_##SUF(H, G2, Z2, w2, n, c, j0, j1);                         \
    if (memcmp(Z, Z2, N * sizeof(T))) {                                                    \
        bad = 1;                                                                           \
        printf(#T " dZ n=%zd c=%zd j0=%zd j1=%zd in_place=%d differs\n", n, c, j0, j1,    \
               in_place);                                                                  \
    }                                                                                      \
    for (i = 0; i < (size_t)c; i++)                                                        \
        if (memcmp(w + i, w2 + i, sizeof(double))) {                                       \
            if (isnan(w[i]) && isnan(w2[i])) {                                             \
                nan_sums++;                                                                \
                continue;                                                                  \
            }                                                                              \
            bad = 1;                                                                       \
            printf(#T " work[%zu] n=%zd c=%zd j0=%zd j1=%zd: %a, column blocks %a\n", i,  \
                   n, c, j0, j1, w[i], w2[i]);                                             \
        }                                                                                  \
    compared++;                                                                            \
    if (!in_place)                                                                         \
        free(Z2);                                                                          \
    free(G2); free(w2);                                                                    \
    return bad;                                                                            \
}
CHECK(float, f)
CHECK(double, d)

int main(void)
{
    int bad = 0, ftz, p;
    Py_ssize_t n, c, j0, j1;
    regions();
    for (ftz = 0; ftz < 2; ftz++) {
        if (ftz)
            _mm_setcsr(_mm_getcsr() | 0x8040);   /* flush-to-zero, denormals-are-zero */
        for (n = 0; n <= 5; n += n < 3 ? 1 : 2)
            for (c = 1; c <= 70; c++)
                for (j0 = 0; j0 <= c; j0 += c > 24 ? 9 : 1)
                    for (j1 = j0; j1 <= c; j1 += j1 - j0 < 20 || c - j1 < 20 ? 1 : 5)
                        for (p = 0; p < 2; p++)
                            bad |= check_f(n, c, j0, j1, p) | check_d(n, c, j0, j1, p);
        for (p = 0; p < 2; p++) {
            bad |= check_f(33, 512, 0, 512, p) | check_d(33, 512, 0, 512, p);
            bad |= check_f(9, 515, 0, 515, p) | check_d(9, 515, 0, 515, p);
            bad |= check_f(9, 515, 256, 515, p) | check_d(9, 515, 256, 515, p);
        }
    }
    printf("compared %ld sums with two NaNs %ld\n", compared, nan_sums);
    return bad;
}
"""


def test_relu_cols_one_sweep_is_the_column_blocks_bitwise(tmp_path):
    # -O3, as setup.py builds the kernels
    run = run_harness(tmp_path, HARNESS, "the batch backward is the column blocks",
                      opt="-O3", timeout=300)
    assert run.returncode == 0, (run.returncode, run.stdout[-3000:], run.stderr[-2000:])
    compared = int(run.stdout.split("compared ")[1].split()[0])
    assert compared > 100000, run.stdout[-500:]
