"""blas_small.h's fused first-layer pass (nn_rank1_axpys) against the two calls it stands
for (nn_rank1, then nn_row_axpys into a zeroed row), bitwise, at every width from one
column to past NN_FUSED_MAX_COLS (where the pass is those two calls), in float32 and
float64, with zero coefficients, -0, rows padded or not, and sentinels in the padding.
The training loop reaches the pass only up to NN_FUSED_MAX_COLS columns
(test_train_batch1_fused.py), so the C harness is what reaches the rest."""
from tests._avx512_harness import run_harness

HARNESS = r"""
#include <Python.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnlib/_kernels/blas_small.h"

static unsigned long long s_ = 88172645463325252ull;
static double rnd(void)
{
    s_ ^= s_ << 13; s_ ^= s_ >> 7; s_ ^= s_ << 17;
    return (double)(s_ >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
/* a coefficient: zero (+0 or -0) one time in three */
static double coef(void)
{
    double r = rnd();
    return r < -0.55 ? 0.0 : r > 0.55 ? -0.0 : r;
}

#define CHECK(T, SUF, TAG)                                                                 \
static int check_##SUF(Py_ssize_t m, Py_ssize_t n, Py_ssize_t ldw)                        \
{                                                                                          \
    T *a = malloc(m * sizeof(T)), *x = malloc(m * sizeof(T)), *b = malloc(n * sizeof(T)); \
    T *W1 = malloc(m * ldw * sizeof(T)), *W2 = malloc(m * ldw * sizeof(T));                \
    T *c1 = malloc((n + 16) * sizeof(T)), *c2 = malloc((n + 16) * sizeof(T));              \
    Py_ssize_t i, j;                                                                       \
    int bad = 0;                                                                           \
    for (i = 0; i < m; i++) { a[i] = (T)coef(); x[i] = (T)coef(); }                        \
    for (j = 0; j < n; j++) b[j] = (T)rnd();                                               \
    for (i = 0; i < m * ldw; i++) W1[i] = W2[i] = (i % ldw) < n ? (T)rnd() : (T)1234.5;    \
    for (j = 0; j < n + 16; j++) c1[j] = c2[j] = (T)-77.0;                                 \
    nn_rank1_axpys_##SUF(m, n, (T)-0.37, a, b, W1, ldw, x, c1);                            \
    nn_rank1_##SUF(m, n, (T)-0.37, a, 1, b, W2, ldw);                                      \
    memset(c2, 0, n * sizeof(T));                                                          \
    nn_row_axpys_##SUF(m, n, (T)1, x, W2, ldw, c2);                                        \
    if (memcmp(W1, W2, m * ldw * sizeof(T)) || memcmp(c1, c2, (n + 16) * sizeof(T)))       \
        bad = 1;                                                                           \
    for (i = 0; i < m * ldw; i++)                                                          \
        if ((i % ldw) >= n && W1[i] != (T)1234.5) bad = 1;                                 \
    for (j = n; j < n + 16; j++)                                                           \
        if (c1[j] != (T)-77.0) bad = 1;                                                    \
    if (bad)                                                                               \
        printf("%s m=%zd n=%zd ldw=%zd differs\n", TAG, m, n, ldw);                        \
    free(a); free(x); free(b); free(W1); free(W2); free(c1); free(c2);                     \
    return bad;                                                                            \
}
CHECK(float, f, "float32")
CHECK(double, d, "float64")

int main(void)
{
    int bad = 0;
    Py_ssize_t m, n;
    for (m = 1; m <= 131; m += 65)
        for (n = 1; n <= 9 * 16 + 5; n++) {
            Py_ssize_t lf = (n + 15) / 16 * 16, ld = (n + 7) / 8 * 8;
            bad |= check_f(m, n, n) | check_f(m, n, n + 1) | check_f(m, n, lf + 16);
            bad |= check_d(m, n, n) | check_d(m, n, n + 1) | check_d(m, n, ld + 8);
        }
    printf("max fused columns %zd %zd\n", NN_FUSED_MAX_COLS_F, NN_FUSED_MAX_COLS_D);
    return bad;
}
"""


def test_rank1_axpys_is_the_two_calls_at_every_width(tmp_path):
    run = run_harness(tmp_path, HARNESS, "the pass is the two calls")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "max fused columns 128 64" in run.stdout
