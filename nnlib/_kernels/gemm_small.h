/* gemm_small.h -- the small matrix products of a mini-batch training step (dense.pxd's
 * mm), register-blocked, in place of BLAS's GEMM below a size (AVX2 and FMA; AVX-512).
 *
 *   nn_gemm_small_{f,d}(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc,
 *                       bias, H, work, act):
 *       C = alpha op(A) op(B) + beta C, row-major, blas.pxd's contract (beta 0: C is
 *       not read), for k <= NN_SMALL_GEMM_MAX_K; then the write-back ``act``
 *       (NN_GEMM_ACT_NONE: nothing, bias, H and work unread; the others, with AVX-512
 *       only, below)
 *
 * Design note
 * -----------
 * At batch 32 the digits net's products are tiny (32 x 64 by 64 x 100, 100 x 32 by
 * 32 x 10, ...): a few microseconds of arithmetic each, and OpenBLAS spends as long again
 * in its interface, in packing both operands and in kernels tuned for large blocks. Here
 * nothing is packed that is contiguous already.
 *
 * AVX2 (no AVX-512). C is formed a panel of P columns at a time (two vectors: 16 floats
 * or 8 doubles; the columns left after them as one vector and one vector or a half
 * vector), and within a panel in blocks of up to MR = 6 rows: the block's 12 vector sums
 * live in registers through the whole inner dimension, each step one broadcast of
 * op(A)[i, p] per row and two vector loads of op(B)[p, panel] (12 fused multiply-adds to
 * 8 loads). op(A) is read in place either way (its element (i, p) is A[i lda + p], or
 * A[p lda + i] transposed: a block's broadcasts then come from one row of A). op(B)'s
 * panel is read in place when B is not transposed and the panel is whole; otherwise (B
 * transposed: dZ W^T; or the last, narrower panel) it is first copied into a (k, P)
 * buffer (NN_GEMM_PACK), zero-padded, so that the inner loop never reads past B's rows and
 * never needs a mask. A narrow panel's results go through a small array to their
 * columns (no masked store: see blas_small.h's note on them).
 *
 * AVX-512. The same scheme with 32 vector registers and masks: panels of up to 4 vectors
 * (64 floats, 32 doubles), the columns left as one panel of 1-3 vectors whose last one is
 * masked to them; blocks of 6 rows for 4 vectors, 8 for 3 and 12 for 1 or 2 (24 sums at
 * most, plus the panel's vectors of op(B) and one broadcast: within the 32 registers).
 * op(B) is read in place whenever B is not transposed (the masked loads read no column
 * past the panel's), and copied when it is, a vector gather per column of B: a row of the
 * copy is LN rows of B, ldb apart (dX = dZ W1^T at batch 32 took 0.66 us with an
 * element-by-element copy, 0.53 us with the gathers; batch 256: 3.8 and 3.55). Each
 * block reads all of its
 * rows of C before it writes any (a masked store of a narrow C spans into the next row,
 * and a load overlapping it would wait for it). On the Xeon (AVX-512, KVM guest) against
 * NumPy's OpenBLAS 0.3.31 (SkylakeX kernels; thread CPU, minimum of 300 runs of 20
 * calls), float32, the digits net's products of a step at batch 256 take 20.4 instead of
 * 25.7 us (forward X W0, 256 x 100 x 64), 4.7 instead of 7.1 (dX = dZ W1^T, k = 10) and
 * 23.6 instead of 25.2 (the fused SGD step of W0, k = 256); at batch 32 about as long as
 * in OpenBLAS (2.2-2.7 against 2.5-2.6 us for X W0; 2.7 against 2.0-2.5 for the SGD step
 * of W0, whose read of C costs 0.4 us here and nothing there); float64 at batch 256:
 * 39.6 instead of 58.9, 8.6 instead of 14.3, 44.4 instead of 63.6 us. The 10-column
 * products stay with OpenBLAS (NN_SMALL_GEMM_MIN_N): X W1 is a little faster here (5.7
 * against 6.6 us at batch 256), the step of W1 a little slower (6.5 against 5.9).
 * Larger products gain too (32 x 2048 x 64: 50 against 65 us; 256 x 1024 x 256: 763
 * against 868 us, one thread), but stay with BLAS above NN_SMALL_GEMM_MAX_MNK, where its
 * threads can help.
 *
 * Each element is one chain: its k products added in increasing p by fused
 * multiply-adds from zero (as act_backward_product's sums, and OpenBLAS's SkylakeX
 * small-matrix kernels), then alpha and beta applied as fma(alpha, s, beta C) (s alone
 * for alpha 1 and beta 0, alpha s for beta 0, fma(alpha, s, C) for beta 1; under
 * NN_GEMM_ACT_ALPHA_FIRST as OpenBLAS applies them, fma(beta, C, alpha s) with alpha s
 * rounded first, and a narrow A^T B in blocks of its own: nn_gemm_small_f_narrow). So the
 * result does not depend on the branch, the blocking, the panel or the row block an
 * element falls in, nor on m and n. OpenBLAS's Haswell kernels add in other orders, and
 * its SkylakeX ones agree bit for bit with these loops on the digits products at batch
 * 256 but not on all at batch 32: results differ from theirs by roundings (within the
 * tests' tolerances against the NumPy twins).
 *
 * The bounds below (mm reads them) keep the copy's buffer small (NN_SMALL_GEMM_MAX_K rows
 * of 16 floats, 16 KiB, with AVX2; of 64 floats, 64 KiB, with AVX-512) and leave to BLAS
 * the narrow products and the large ones. Without AVX-512 or AVX2 with FMA,
 * NN_SMALL_GEMM is 0 and mm keeps BLAS (AVX-512F has its own fused multiply-adds).
 */
#ifndef NNLIB_GEMM_SMALL_H
#define NNLIB_GEMM_SMALL_H

#include <stddef.h>

/* The buffer op(B)'s panels are copied into: one per thread and per product function,
 * not on the stack, where its 16 or 64 KiB would overflow a thread started with a small
 * one (Python's threading.stack_size takes 32 KiB; musl's threads get 128 KiB); no call
 * of a product runs inside another on the same thread. */
#define NN_GEMM_PACK(T, N, ALIGN) static __thread T pack[N] __attribute__((aligned(ALIGN)))

/* Where mm sends a product here (m > 1 and k > 1 besides): k up to NN_SMALL_GEMM_MAX_K
 * (the copy buffer's rows), at least NN_SMALL_GEMM_MIN_N columns (narrower products,
 * the digits net's 10 outputs, measured faster in OpenBLAS: a panel of one vector and a
 * half vector spends as many broadcasts as a whole one) and at most
 * NN_SMALL_GEMM_MAX_MNK multiply-adds (above, BLAS's cache blocking and threads). The
 * three live in nnlib/_paths.py with the other branch thresholds, rendered into
 * paths.h, so that verify/paths.py runs mm on both sides of each. */
#include "paths.h"

/* What the AVX-512 write-back applies after alpha and beta (nn_gemm_small_*'s act):
   nothing (NONE); + bias[j] (BIAS), or relu(. + bias[j]) = (x > 0 ? x : x <= 0 ? +0 :
   x) of the sum rounded to the dtype (RELU): bias_act's identity and relu, bit for bit;
   or relu's backward from its output H (C's layout), x where H > 0 (ordered) else
   x * 0, with the column sums of the results added in double row after row into work
   (RELU_GRAD; work[:n] zeroed first whenever m, n and k are in the loops' range:
   act_backward's dZ and sums, bit for bit; dense.pxd). ALPHA_FIRST changes how alpha
   and beta apply instead (nothing after them): for beta != 0 each element is
   fma(beta, C, alpha s) with alpha s rounded first, two roundings, where the other acts
   round once, fma(alpha, s, C) (beta 1) -- OpenBLAS's SkylakeX small-matrix kernels'
   write-back (a vmulps by alpha, then a vfmadd231ps of C and beta), so a product whose
   chains are theirs is their result bit for bit (dense.pxd's narrow_step: the training
   step's W <- W - lr H^T dZ of a 10-column layer); beta 0: alpha s, as for NONE. Only
   AVX-512 builds (NN_SMALL_GEMM_BIAS_ACT 1) take an act other than NONE. */
enum { NN_GEMM_ACT_NONE = 0, NN_GEMM_ACT_BIAS = 1, NN_GEMM_ACT_RELU = 2,
       NN_GEMM_ACT_RELU_GRAD = 3, NN_GEMM_ACT_ALPHA_FIRST = 4 };

/* The element formulas of the write-back (kind: 0 for alpha 1 and beta 0, 1 for beta 0,
   2 for beta 1, 4 for beta != 0 under NN_GEMM_ACT_ALPHA_FIRST, 3 otherwise), shared by
   every branch's vector and scalar forms. Kind 4's MUL feeds an FMA's addend, which GCC
   cannot contract into it (a MUL feeding an add could become one fused multiply-add
   under -ffp-contract=fast, and lose the rounding of alpha s). */
#define NN_GEMM_OUT(FMA, MUL, s, c, alpha, beta, kind)                                      \
    ((kind) == 0 ? (s) : (kind) == 1 ? MUL(alpha, s)                                        \
     : (kind) == 2 ? FMA(alpha, s, c) : (kind) == 4 ? FMA(beta, c, MUL(alpha, s))           \
     : FMA(alpha, s, MUL(beta, c)))

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#define NN_SMALL_GEMM 1
#include <immintrin.h>
#include <math.h>

enum { NN_GEMM_MR = 6 };

/* Row r < mr of a block: its step (one broadcast, nv multiply-adds) and its write-back
   (mr and nv are literals at every call, so the guards fold away and the sums stay in
   registers). */
#define NN_GEMM_STEP(V, PFX, SUF, BCAST, r, x0, x1)                                         \
    if (mr > r) {                                                                           \
        V ar = BCAST(a + r * sai + p * sap);                                                \
        x0 = PFX##fmadd_##SUF(ar, b0, x0);                                                  \
        if (nv > 1)                                                                         \
            x1 = PFX##fmadd_##SUF(ar, b1, x1);                                              \
    }
#define NN_GEMM_PUT(T, V, LN, PFX, SUF, FMAS, r, x0, x1)                                    \
    if (mr > r) {                                                                           \
        T* cr = c + r * ldc;                                                                \
        if (w == nv * LN) {                                                                 \
            V c0 = kind >= 2 ? PFX##loadu_##SUF(cr) : x0;                                   \
            PFX##storeu_##SUF(cr, NN_GEMM_OUT(PFX##fmadd_##SUF, PFX##mul_##SUF, x0, c0,     \
                                              va, vb, kind));                               \
            if (nv > 1) {                                                                   \
                V c1 = kind >= 2 ? PFX##loadu_##SUF(cr + LN) : x1;                          \
                PFX##storeu_##SUF(cr + LN, NN_GEMM_OUT(PFX##fmadd_##SUF, PFX##mul_##SUF,    \
                                                       x1, c1, va, vb, kind));              \
            }                                                                               \
        } else {                                                                            \
            PFX##storeu_##SUF(t, x0);                                                       \
            if (nv > 1)                                                                     \
                PFX##storeu_##SUF(t + LN, x1);                                              \
            for (j = 0; j < w; j++) {                                                       \
                T cj = kind >= 2 ? cr[j] : (T)0;                                            \
                cr[j] = NN_GEMM_OUT(FMAS, NN_GEMM_MUL_S, t[j], cj, alpha, beta, kind);      \
            }                                                                               \
        }                                                                                   \
    }

/* A block of mr rows by a panel of nv vectors V (LN lanes; PFX##fmadd_##SUF etc. its
   intrinsics), the panel's w <= nv LN columns of C written. */
#define NN_GEMM_BLOCK(NAME, T, V, LN, PFX, SUF, BCAST, FMAS)                                \
static inline __attribute__((always_inline)) void                                          \
NAME(const int mr, const int nv, Py_ssize_t k, const T* a, Py_ssize_t sai, Py_ssize_t sap,  \
     const T* b, Py_ssize_t sb, T alpha, T beta, int kind, T* c, Py_ssize_t ldc,            \
     Py_ssize_t w)                                                                          \
{                                                                                           \
    const V zero = PFX##setzero_##SUF();                                                    \
    V s00 = zero, s01 = zero, s10 = zero, s11 = zero, s20 = zero, s21 = zero;               \
    V s30 = zero, s31 = zero, s40 = zero, s41 = zero, s50 = zero, s51 = zero;               \
    V va, vb;                                                                               \
    T t[2 * LN];                                                                            \
    Py_ssize_t p, j;                                                                        \
    for (p = 0; p < k; p++) {                                                               \
        V b0 = PFX##loadu_##SUF(b + p * sb);                                                \
        V b1 = nv > 1 ? PFX##loadu_##SUF(b + p * sb + LN) : zero;                           \
        NN_GEMM_STEP(V, PFX, SUF, BCAST, 0, s00, s01)                                       \
        NN_GEMM_STEP(V, PFX, SUF, BCAST, 1, s10, s11)                                       \
        NN_GEMM_STEP(V, PFX, SUF, BCAST, 2, s20, s21)                                       \
        NN_GEMM_STEP(V, PFX, SUF, BCAST, 3, s30, s31)                                       \
        NN_GEMM_STEP(V, PFX, SUF, BCAST, 4, s40, s41)                                       \
        NN_GEMM_STEP(V, PFX, SUF, BCAST, 5, s50, s51)                                       \
    }                                                                                       \
    va = PFX##set1_##SUF(alpha);                                                            \
    vb = PFX##set1_##SUF(beta);                                                             \
    NN_GEMM_PUT(T, V, LN, PFX, SUF, FMAS, 0, s00, s01)                                      \
    NN_GEMM_PUT(T, V, LN, PFX, SUF, FMAS, 1, s10, s11)                                      \
    NN_GEMM_PUT(T, V, LN, PFX, SUF, FMAS, 2, s20, s21)                                      \
    NN_GEMM_PUT(T, V, LN, PFX, SUF, FMAS, 3, s30, s31)                                      \
    NN_GEMM_PUT(T, V, LN, PFX, SUF, FMAS, 4, s40, s41)                                      \
    NN_GEMM_PUT(T, V, LN, PFX, SUF, FMAS, 5, s50, s51)                                      \
}

/* All of a panel's rows: blocks of NN_GEMM_MR, then one of the rows left (mr a literal in
   each call). */
#define NN_GEMM_PANEL_ROWS(BLOCK, NV)                                                       \
    do {                                                                                    \
        for (i0 = 0; i0 + NN_GEMM_MR <= m; i0 += NN_GEMM_MR)                                \
            BLOCK(NN_GEMM_MR, NV, k, A + i0 * sai, sai, sap, b, sb, alpha, beta, kind,      \
                  C + i0 * ldc + j0, ldc, w);                                               \
        switch (m - i0) {                                                                   \
        case 5: BLOCK(5, NV, k, A + i0 * sai, sai, sap, b, sb, alpha, beta, kind,           \
                      C + i0 * ldc + j0, ldc, w); break;                                    \
        case 4: BLOCK(4, NV, k, A + i0 * sai, sai, sap, b, sb, alpha, beta, kind,           \
                      C + i0 * ldc + j0, ldc, w); break;                                    \
        case 3: BLOCK(3, NV, k, A + i0 * sai, sai, sap, b, sb, alpha, beta, kind,           \
                      C + i0 * ldc + j0, ldc, w); break;                                    \
        case 2: BLOCK(2, NV, k, A + i0 * sai, sai, sap, b, sb, alpha, beta, kind,           \
                      C + i0 * ldc + j0, ldc, w); break;                                    \
        case 1: BLOCK(1, NV, k, A + i0 * sai, sai, sap, b, sb, alpha, beta, kind,           \
                      C + i0 * ldc + j0, ldc, w); break;                                    \
        default: break;                                                                     \
        }                                                                                   \
    } while (0)

/* The product: panels of two vectors, then the columns left (fewer than two vectors)
   as one vector and the rest as one vector or one half vector (LH lanes), each panel
   read in place or copied (P its width). */
#define NN_GEMM_SMALL(NAME, T, LN, BLOCK, HALF_BLOCK)                                      \
static void NAME(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,        \
                 T alpha, const T* A, Py_ssize_t lda, const T* B, Py_ssize_t ldb, T beta,   \
                 T* C, Py_ssize_t ldc, const T* bias, const T* H, double* work, int act)    \
{                                                                                           \
    /* (no write-back here: NN_SMALL_GEMM_BIAS_ACT 0, act is NONE) */                       \
    enum { LH = LN / 2 };                                                                   \
    NN_GEMM_PACK(T, NN_SMALL_GEMM_MAX_K * 2 * LN, 32);                                      \
    const Py_ssize_t sai = trans_a ? 1 : lda, sap = trans_a ? lda : 1;                      \
    const int kind = beta == 0 ? (alpha == 1 ? 0 : 1) : (beta == 1 ? 2 : 3);                \
    Py_ssize_t i0, j0, p, jj, w, sb, P;                                                     \
    const T* b;                                                                             \
    if (m <= 0 || n <= 0 || k <= 0 || k > NN_SMALL_GEMM_MAX_K)                              \
        return;                                                                             \
    for (j0 = 0; j0 < n; j0 += w) {                                                         \
        Py_ssize_t r = n - j0;                                                              \
        P = r >= 2 * LN ? 2 * LN : r > LH ? LN : LH;                                        \
        w = r < P ? r : P;                                                                  \
        if (!trans_b && w == P) {                                                           \
            b = B + j0;                                                                     \
            sb = ldb;                                                                       \
        } else {                                                                            \
            for (p = 0; p < k; p++)                                                         \
                for (jj = 0; jj < P; jj++)                                                  \
                    pack[p * P + jj] = jj >= w ? (T)0 : trans_b ? B[(j0 + jj) * ldb + p]    \
                                                                : B[p * ldb + j0 + jj];    \
            b = pack;                                                                       \
            sb = P;                                                                         \
        }                                                                                   \
        if (P == 2 * LN)                                                                    \
            NN_GEMM_PANEL_ROWS(BLOCK, 2);                                                   \
        else if (P == LN)                                                                   \
            NN_GEMM_PANEL_ROWS(BLOCK, 1);                                                   \
        else                                                                                \
            NN_GEMM_PANEL_ROWS(HALF_BLOCK, 1);                                              \
    }                                                                                       \
}

#define NN_GEMM_MUL_S(a, b) ((a) * (b))
NN_GEMM_BLOCK(nn_gemm_block_f, float, __m256, 8, _mm256_, ps, _mm256_broadcast_ss, fmaf)
NN_GEMM_BLOCK(nn_gemm_hblock_f, float, __m128, 4, _mm_, ps, _mm_broadcast_ss, fmaf)
NN_GEMM_BLOCK(nn_gemm_block_d, double, __m256d, 4, _mm256_, pd, _mm256_broadcast_sd, fma)
NN_GEMM_BLOCK(nn_gemm_hblock_d, double, __m128d, 2, _mm_, pd, _mm_loaddup_pd, fma)
NN_GEMM_SMALL(nn_gemm_small_f, float, 8, nn_gemm_block_f, nn_gemm_hblock_f)
NN_GEMM_SMALL(nn_gemm_small_d, double, 4, nn_gemm_block_d, nn_gemm_hblock_d)

#elif defined(__AVX512F__)
#define NN_SMALL_GEMM 1
#define NN_SMALL_GEMM_BIAS_ACT 1
#include <immintrin.h>

/* AVX-512: panels of up to NN_GEMM512_NV vectors (the last one masked to the panel's
   columns), blocks of NN_GEMM512_MR(nv) rows: nv mr sums + nv vectors of op(B) + one
   broadcast stay within the 32 registers. */
enum { NN_GEMM512_NV = 4, NN_GEMM512_MR_MAX = 12 };
#define NN_GEMM512_MR(nv) ((nv) == 4 ? 6 : (nv) == 3 ? 8 : 12)

/* op(A)'s element (r, q) of a block is a[r sai + q sap] (amode 0); with its storage rows
   read through row numbers ``ix`` (the epoch's batch, not gathered), a[ix[r] sai + q]
   (amode 1: op(A) = A, a block's rows, whose addresses the block takes once, ahead of
   its inner loop: recomputed there they cost an index load and a multiply per
   broadcast; a is A itself, ix the block's numbers) or a[r + ix[q] sap] (amode 2:
   op(A) = A^T, a column of op(A) per row of A). amode is a literal at each call, so the
   plain loops keep their code. */
#define NN_GEMM512_AQ(q) (amode == 2 ? (Py_ssize_t)ix[q] : (Py_ssize_t)(q))

/* A block of mr rows by nv vectors V (LN lanes, SUF the intrinsics' suffix, M the mask
   type), the last vector's lanes in ``last``; mr and nv are literals at every call, so
   the loops unroll and the sums stay in registers. C's rows are all read before any is
   written: a masked store spans a whole vector, into the next row of a narrow C, and a
   load overlapping it would wait for it to reach the cache (blas_small.h's note). */
#define NN_GEMM512_BLOCK(NAME, T, V, M, LN, SUF, FULL)                                      \
static inline __attribute__((always_inline)) void                                          \
NAME(const int mr, const int nv, Py_ssize_t k, const T* a, Py_ssize_t sai, Py_ssize_t sap,  \
     const T* b, Py_ssize_t sb, M last, T alpha, T beta, int kind, T* c, Py_ssize_t ldc,    \
     const T* bias, const T* h, double* wk, int act, const long long* ix, const int amode)  \
{                                                                                           \
    V s[NN_GEMM512_MR_MAX][NN_GEMM512_NV];                                                  \
    V va, vb;                                                                               \
    const T* ap[NN_GEMM512_MR_MAX];     /* amode 1: the block's rows, held in registers */  \
    Py_ssize_t q;                                                                           \
    int r, v;                                                                               \
    if (amode == 1)                                                                         \
        _Pragma("GCC unroll 16")                                                            \
        for (r = 0; r < mr; r++)                                                            \
            ap[r] = a + ix[r] * sai;                                                        \
    _Pragma("GCC unroll 16")                                                                \
    for (r = 0; r < mr; r++)                                                                \
        _Pragma("GCC unroll 4")                                                             \
        for (v = 0; v < nv; v++)                                                            \
            s[r][v] = _mm512_setzero_##SUF();                                               \
    for (q = 0; q < k; q++) {                                                               \
        V bv[NN_GEMM512_NV];                                                                \
        _Pragma("GCC unroll 4")                                                             \
        for (v = 0; v < nv; v++)                                                            \
            bv[v] = _mm512_maskz_loadu_##SUF(v == nv - 1 ? last : (M)FULL,                  \
                                             b + q * sb + v * LN);                          \
        _Pragma("GCC unroll 16")                                                            \
        for (r = 0; r < mr; r++) {                                                          \
            V ar = _mm512_set1_##SUF(amode == 1 ? ap[r][q]                                \
                                                : a[r * sai + NN_GEMM512_AQ(q) * sap]);     \
            _Pragma("GCC unroll 4")                                                         \
            for (v = 0; v < nv; v++)                                                        \
                s[r][v] = _mm512_fmadd_##SUF(ar, bv[v], s[r][v]);                           \
        }                                                                                   \
    }                                                                                       \
    va = _mm512_set1_##SUF(alpha);                                                          \
    vb = _mm512_set1_##SUF(beta);                                                           \
    if (kind != 0) {                                                                        \
        _Pragma("GCC unroll 16")                                                            \
        for (r = 0; r < mr; r++)                                                            \
            _Pragma("GCC unroll 4")                                                         \
            for (v = 0; v < nv; v++) {                                                      \
                V cv = kind >= 2 ? _mm512_maskz_loadu_##SUF(v == nv - 1 ? last : (M)FULL,   \
                                                            c + r * ldc + v * LN)           \
                                 : s[r][v];                                                 \
                s[r][v] = NN_GEMM_OUT(_mm512_fmadd_##SUF, _mm512_mul_##SUF, s[r][v], cv,    \
                                      va, vb, kind);                                        \
            }                                                                               \
    }                                                                                       \
    if (act == NN_GEMM_ACT_BIAS || act == NN_GEMM_ACT_RELU) {                               \
        const V zero = _mm512_setzero_##SUF();                                              \
        _Pragma("GCC unroll 4")                                                             \
        for (v = 0; v < nv; v++) {                                                          \
            const V bv = _mm512_maskz_loadu_##SUF(v == nv - 1 ? last : (M)FULL,             \
                                                  bias + v * LN);                           \
            _Pragma("GCC unroll 16")                                                        \
            for (r = 0; r < mr; r++) {                                                      \
                s[r][v] = _mm512_add_##SUF(s[r][v], bv);                                    \
                if (act == NN_GEMM_ACT_RELU)    /* x <= 0 (ordered): +0; NaN stays */       \
                    s[r][v] = _mm512_mask_mov_##SUF(                                        \
                        s[r][v], _mm512_cmp_##SUF##_mask(s[r][v], zero, _CMP_LE_OQ), zero); \
            }                                                                               \
        }                                                                                   \
    } else if (act == NN_GEMM_ACT_RELU_GRAD) {                                              \
        const V zero = _mm512_setzero_##SUF();                                              \
        _Pragma("GCC unroll 4")                                                             \
        for (v = 0; v < nv; v++) {                                                          \
            const M mk = v == nv - 1 ? last : (M)FULL;                                      \
            _Pragma("GCC unroll 16")                                                        \
            for (r = 0; r < mr; r++) {   /* g where h > 0 (ordered), else g * 0 */          \
                const V hv = _mm512_maskz_loadu_##SUF(mk, h + r * ldc + v * LN);            \
                s[r][v] = _mm512_mask_mov_##SUF(                                            \
                    _mm512_mul_##SUF(s[r][v], zero),                                        \
                    _mm512_mask_cmp_##SUF##_mask(mk, hv, zero, _CMP_GT_OQ), s[r][v]);       \
            }                                                                               \
            NN_GEMM512_COLSUMS_##SUF(mk, wk + v * LN);                                      \
        }                                                                                   \
    }                                                                                       \
    _Pragma("GCC unroll 16")                                                                \
    for (r = 0; r < mr; r++)                                                                \
        _Pragma("GCC unroll 4")                                                             \
        for (v = 0; v < nv; v++)                                                            \
            _mm512_mask_storeu_##SUF(c + r * ldc + v * LN, v == nv - 1 ? last : (M)FULL,    \
                                     s[r][v]);                                              \
}

/* Column sums of a block's vector v (mask mk) added to wk in double, row after row. */
#define NN_GEMM512_COLSUMS_ps(mk, w)                                                        \
    do {                                                                                    \
        const __mmask8 lo_ = (__mmask8)(mk), hi_ = (__mmask8)((mk) >> 8);                   \
        __m512d w0_ = _mm512_maskz_loadu_pd(lo_, (w));                                      \
        __m512d w1_ = _mm512_maskz_loadu_pd(hi_, (w) + 8);                                  \
        _Pragma("GCC unroll 16")                                                            \
        for (r = 0; r < mr; r++) {                                                          \
            w0_ = _mm512_add_pd(w0_, _mm512_cvtps_pd(_mm512_castps512_ps256(s[r][v])));     \
            w1_ = _mm512_add_pd(w1_, _mm512_cvtps_pd(_mm256_castpd_ps(                      \
                      _mm512_extractf64x4_pd(_mm512_castps_pd(s[r][v]), 1))));              \
        }                                                                                   \
        _mm512_mask_storeu_pd((w), lo_, w0_);                                               \
        _mm512_mask_storeu_pd((w) + 8, hi_, w1_);                                           \
    } while (0)
#define NN_GEMM512_COLSUMS_pd(mk, w)                                                        \
    do {                                                                                    \
        __m512d w0_ = _mm512_maskz_loadu_pd((mk), (w));                                     \
        _Pragma("GCC unroll 16")                                                            \
        for (r = 0; r < mr; r++)                                                            \
            w0_ = _mm512_add_pd(w0_, s[r][v]);                                              \
        _mm512_mask_storeu_pd((w), (mk), w0_);                                              \
    } while (0)

/* The A and row numbers of the block of rows from i0 (see NN_GEMM512_AQ). */
#define NN_GEMM512_ABLOCK(i0) (amode == 1 ? A : A + (i0) * sai)
#define NN_GEMM512_RBLOCK(i0) (amode == 1 ? arow + (i0) : arow)
/* One case of the rows left after the whole blocks (mr < MR a literal). */
#define NN_GEMM512_LEFT(BLOCK, NV, MR, R)                                                   \
    case R: if (R < MR) BLOCK(R, NV, k, NN_GEMM512_ABLOCK(i0), sai, sap, b, sb, last, alpha, \
                              beta, kind, C + i0 * ldc + j0, ldc, bj, hj + i0 * ldc, wj,  \
                              act, NN_GEMM512_RBLOCK(i0), amode);                          \
            break;
/* All of a panel's rows for nv = NV: blocks of MR rows, then one of the rows left. */
#define NN_GEMM512_PANEL_ROWS(BLOCK, NV)                                                    \
    do {                                                                                    \
        enum { MR = NN_GEMM512_MR(NV) };                                                    \
        for (i0 = 0; i0 + MR <= m; i0 += MR)                                                \
            BLOCK(MR, NV, k, NN_GEMM512_ABLOCK(i0), sai, sap, b, sb, last, alpha, beta,     \
                  kind, C + i0 * ldc + j0, ldc, bj, hj + i0 * ldc, wj, act,                 \
                  NN_GEMM512_RBLOCK(i0), amode);                                            \
        switch (m - i0) {                                                                   \
        NN_GEMM512_LEFT(BLOCK, NV, MR, 1) NN_GEMM512_LEFT(BLOCK, NV, MR, 2)                 \
        NN_GEMM512_LEFT(BLOCK, NV, MR, 3) NN_GEMM512_LEFT(BLOCK, NV, MR, 4)                 \
        NN_GEMM512_LEFT(BLOCK, NV, MR, 5) NN_GEMM512_LEFT(BLOCK, NV, MR, 6)                 \
        NN_GEMM512_LEFT(BLOCK, NV, MR, 7) NN_GEMM512_LEFT(BLOCK, NV, MR, 8)                 \
        NN_GEMM512_LEFT(BLOCK, NV, MR, 9) NN_GEMM512_LEFT(BLOCK, NV, MR, 10)                \
        NN_GEMM512_LEFT(BLOCK, NV, MR, 11)                                                  \
        default: break;                                                                     \
        }                                                                                   \
    } while (0)

/* op(B)'s panel copied from B transposed: row p of the copy is column p of the panel's
   w rows of B, gathered a vector (LN rows of B, ldb apart) at a time; lanes past w are
   zeroed (the masked loads read none of them). An index beyond int32 takes the scalar
   copy. */
#define NN_GEMM512_PACK_T(T, M, LN, SUF, FULL)                                              \
    do {                                                                                    \
        if (ldb <= 0x7fffffff / LN) {                                                       \
            int vv;                                                                         \
            for (vv = 0; vv < nv; vv++) {                                                   \
                const M mk = vv == nv - 1 ? last : (M)FULL;                                 \
                const T* src = B + (j0 + vv * LN) * ldb;                                    \
                for (p = 0; p < k; p++)                                                     \
                    _mm512_store_##SUF(pack + p * nv * LN + vv * LN,                        \
                        NN_GEMM512_GATHER_##SUF(mk, src + p, (int)ldb));                    \
            }                                                                               \
        } else {                                                                            \
            for (jj = 0; jj < w; jj++)                                                      \
                for (p = 0; p < k; p++)                                                     \
                    pack[p * nv * LN + jj] = B[(j0 + jj) * ldb + p];                        \
        }                                                                                   \
    } while (0)
#define NN_GEMM512_GATHER_ps(mk, src, ld)                                                   \
    _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk,                                       \
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,  \
                                             14, 15), _mm512_set1_epi32(ld)), src, 4)
#define NN_GEMM512_GATHER_pd(mk, src, ld)                                                   \
    _mm512_mask_i32gather_pd(_mm512_setzero_pd(), mk,                                       \
        _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(ld)),\
        src, 8)

/* The product: panels of NN_GEMM512_NV vectors, the last one of the vectors its columns
   need (its last vector masked); op(B)'s panel read in place unless B is transposed,
   then copied into a (k, nv LN) buffer (NN_GEMM512_PACK_T). */
#define NN_GEMM512_SMALL(NAME, T, M, LN, BLOCK, FULL, SUF)                                  \
static inline __attribute__((always_inline)) void                                          \
NAME##_body(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, T alpha,    \
            const T* A, Py_ssize_t lda, const T* B, Py_ssize_t ldb, T beta, T* C,           \
            Py_ssize_t ldc, const T* bias, const T* H, double* work, int act,               \
            const long long* arow, const int amode)                                         \
{                                                                                           \
    NN_GEMM_PACK(T, NN_SMALL_GEMM_MAX_K * NN_GEMM512_NV * LN, 64);                          \
    const Py_ssize_t sai = trans_a ? 1 : lda, sap = trans_a ? lda : 1;                      \
    const int kind = beta == 0 ? (alpha == 1 ? 0 : 1)                                       \
                     : act == NN_GEMM_ACT_ALPHA_FIRST ? 4 : (beta == 1 ? 2 : 3);            \
    Py_ssize_t i0, j0, p, jj, w, sb;                                                        \
    const T* b;                                                                             \
    if (m <= 0 || n <= 0 || k <= 0 || k > NN_SMALL_GEMM_MAX_K)                              \
        return;                                                                             \
    if (act == NN_GEMM_ACT_RELU_GRAD)                                                       \
        for (j0 = 0; j0 < n; j0++)                                                          \
            work[j0] = 0.0;                                                                 \
    for (j0 = 0; j0 < n; j0 += w) {                                                         \
        const Py_ssize_t r = n - j0;                                                        \
        const int nv = r >= NN_GEMM512_NV * LN ? NN_GEMM512_NV : (int)((r + LN - 1) / LN);  \
        const M last = (M)(FULL >> (nv * LN - (r < nv * LN ? r : nv * LN)));               \
        const T* bj = act == NN_GEMM_ACT_BIAS || act == NN_GEMM_ACT_RELU ? bias + j0 : bias; \
        /* (not relu's backward: C's own panel, unread, so the row offsets stay in C) */    \
        const T* hj = act == NN_GEMM_ACT_RELU_GRAD ? H + j0 : C + j0;                        \
        double* wj = act == NN_GEMM_ACT_RELU_GRAD ? work + j0 : work;                        \
        w = r < nv * LN ? r : nv * LN;                                                      \
        if (!trans_b) {                                                                     \
            b = B + j0;                                                                     \
            sb = ldb;                                                                       \
        } else {                                                                            \
            NN_GEMM512_PACK_T(T, M, LN, SUF, FULL);                                         \
            b = pack;                                                                       \
            sb = nv * LN;                                                                   \
        }                                                                                   \
        if (nv == 4)                                                                        \
            NN_GEMM512_PANEL_ROWS(BLOCK, 4);                                                \
        else if (nv == 3)                                                                   \
            NN_GEMM512_PANEL_ROWS(BLOCK, 3);                                                \
        else if (nv == 2)                                                                   \
            NN_GEMM512_PANEL_ROWS(BLOCK, 2);                                                \
        else                                                                                \
            NN_GEMM512_PANEL_ROWS(BLOCK, 1);                                                \
    }                                                                                       \
}                                                                                           \
static void NAME(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,        \
                 T alpha, const T* A, Py_ssize_t lda, const T* B, Py_ssize_t ldb, T beta,   \
                 T* C, Py_ssize_t ldc, const T* bias, const T* H, double* work, int act)    \
{                                                                                           \
    /* act a constant in each call: the plain product (every mm), OpenBLAS's rounding    \
       and relu's backward each get loops of their own, without the other write-backs'   \
       tests */                                                                          \
    if (act == NN_GEMM_ACT_NONE)                                                            \
        NAME##_body(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, NULL,   \
                    NULL, NULL, NN_GEMM_ACT_NONE, NULL, 0);                                 \
    else if (act == NN_GEMM_ACT_ALPHA_FIRST) {                                              \
        if (!NAME##_narrow(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)) \
            NAME##_body(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc,     \
                        NULL, NULL, NULL, NN_GEMM_ACT_ALPHA_FIRST, NULL, 0);                \
    }                                                                                       \
    else if (act == NN_GEMM_ACT_RELU_GRAD)                                                  \
        NAME##_body(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, NULL,   \
                    H, work, NN_GEMM_ACT_RELU_GRAD, NULL, 0);                               \
    else                                                                                    \
        NAME##_body(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, bias,   \
                    NULL, NULL, act, NULL, 0);                                              \
}                                                                                           \
/* The training step's two products of the first layer with the batch's rows of X read   \
   in place through their row numbers ``arow`` (A is X, rows lda apart): the forward       \
   X_b B (+ bias, act; m = the batch) and the weight step's X_b^T B (act none; k = the    \
   batch); each element the same chain as with the rows gathered, so the same bits. */   \
static void NAME##_rows(int trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, T alpha,    \
                        const T* A, Py_ssize_t lda, const long long* arow, const T* B,     \
                        Py_ssize_t ldb, T beta, T* C, Py_ssize_t ldc, const T* bias,       \
                        int act)                                                           \
{                                                                                           \
    if (trans_a)                                                                            \
        NAME##_body(1, 0, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, NULL,   \
                    NN_GEMM_ACT_NONE, arow, 2);                                             \
    else                                                                                    \
        NAME##_body(0, 0, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, bias, NULL, NULL,   \
                    act, arow, 1);                                                          \
}

/* The float32 narrow A^T B under NN_GEMM_ACT_ALPHA_FIRST (dense.pxd's narrow_step: the
   training step's W <- W - lr H^T dZ of a layer of NN_GEMM_NARROW_TN_MIN to 15 outputs;
   nn_gemm_small_f takes it here, other shapes in its row blocks). A block of the row
   loops would hold a row of C, n of its 16 lanes, and spend a broadcast of A on each
   fused multiply-add: here the lanes run over C's rows instead, which are contiguous in
   A's rows (op(A) = A^T), so the sums fill every lane and A's row is one vector load; the
   n columns are n broadcasts of B's row, one per n x nv multiply-adds. A block is 16 nv
   rows of C (nv = 2: 2 n sums, at most 32, with the two loads of A), and the write-back
   transposes each of its vectors' n x 16 tile (nn_transpose16_ps) into 16 rows of C,
   written under a mask of n lanes. Each element is the same chain as in the row blocks,
   so the same bits: its k products added in increasing k by fused multiply-adds from
   zero, then the write-back (kind 0, 1 or 4). */
enum { NN_GEMM_NARROW_TN_MIN = 9 };

/* t[0..15] := its transpose (t[r][c] <- t[c][r]). */
static inline __attribute__((always_inline)) void nn_transpose16_ps(__m512 t[16])
{
    __m512 u[16], w[16];
    int g;
    _Pragma("GCC unroll 8")
    for (g = 0; g < 8; g++) {          /* pairs of rows, interleaved within 128-bit lanes */
        u[2 * g] = _mm512_unpacklo_ps(t[2 * g], t[2 * g + 1]);
        u[2 * g + 1] = _mm512_unpackhi_ps(t[2 * g], t[2 * g + 1]);
    }
    _Pragma("GCC unroll 4")
    for (g = 0; g < 4; g++) {          /* four rows' element e of each 128-bit lane */
        w[4 * g] = _mm512_shuffle_ps(u[4 * g], u[4 * g + 2], 0x44);
        w[4 * g + 1] = _mm512_shuffle_ps(u[4 * g], u[4 * g + 2], 0xee);
        w[4 * g + 2] = _mm512_shuffle_ps(u[4 * g + 1], u[4 * g + 3], 0x44);
        w[4 * g + 3] = _mm512_shuffle_ps(u[4 * g + 1], u[4 * g + 3], 0xee);
    }
    _Pragma("GCC unroll 4")
    for (g = 0; g < 4; g++) {          /* 128-bit lanes 0 and 2, 1 and 3 of rows 0-7, 8-15 */
        u[g] = _mm512_shuffle_f32x4(w[g], w[4 + g], 0x88);
        u[4 + g] = _mm512_shuffle_f32x4(w[g], w[4 + g], 0xdd);
        u[8 + g] = _mm512_shuffle_f32x4(w[8 + g], w[12 + g], 0x88);
        u[12 + g] = _mm512_shuffle_f32x4(w[8 + g], w[12 + g], 0xdd);
    }
    _Pragma("GCC unroll 4")
    for (g = 0; g < 4; g++) {
        t[g] = _mm512_shuffle_f32x4(u[g], u[8 + g], 0x88);
        t[8 + g] = _mm512_shuffle_f32x4(u[g], u[8 + g], 0xdd);
        t[4 + g] = _mm512_shuffle_f32x4(u[4 + g], u[12 + g], 0x88);
        t[12 + g] = _mm512_shuffle_f32x4(u[4 + g], u[12 + g], 0xdd);
    }
}

/* A block of C's rows [0, rows) (rows <= 16 nv; the last vector's lanes in ``last``) by
   its nn columns (nn and nv literals at every call: the loops unroll and the sums stay in
   registers). Row i + 1 of C is read before row i is written: the masked store writes
   only row i's nn lanes, but its 64 bytes reach into row i + 1, and a load of row i + 1
   after it would wait for the store (store forwarding: blas_small.h's note). */
static inline __attribute__((always_inline)) void
nn_narrow_tn_block_f(const int nn, const int nv, Py_ssize_t k, const float* a,
                     Py_ssize_t lda, const float* b, Py_ssize_t ldb, __mmask16 last,
                     float alpha, float beta, int kind, float* c, Py_ssize_t ldc,
                     Py_ssize_t rows)
{
    const __m512 zero = _mm512_setzero_ps(), va = _mm512_set1_ps(alpha),
                 vb = _mm512_set1_ps(beta);
    const __mmask16 cols = (__mmask16)((1u << nn) - 1u);
    __m512 s[16][2], t[16], cnext = zero;
    Py_ssize_t kk, r;
    int j, v;
    _Pragma("GCC unroll 16")
    for (j = 0; j < nn; j++)
        _Pragma("GCC unroll 2")
        for (v = 0; v < nv; v++)
            s[j][v] = zero;
    for (kk = 0; kk < k; kk++) {        /* row kk of A and of B */
        __m512 av[2];
        _Pragma("GCC unroll 2")
        for (v = 0; v < nv; v++)
            av[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xffffu,
                                          a + kk * lda + v * 16);
        _Pragma("GCC unroll 16")
        for (j = 0; j < nn; j++) {
            const __m512 bj = _mm512_set1_ps(b[kk * ldb + j]);
            _Pragma("GCC unroll 2")
            for (v = 0; v < nv; v++)
                s[j][v] = _mm512_fmadd_ps(av[v], bj, s[j][v]);
        }
    }
    if (kind >= 2)
        cnext = _mm512_maskz_loadu_ps(cols, c);
    _Pragma("GCC unroll 2")
    for (v = 0; v < nv; v++) {
        _Pragma("GCC unroll 16")
        for (j = 0; j < 16; j++)
            t[j] = j < nn ? s[j][v] : zero;
        nn_transpose16_ps(t);
        _Pragma("GCC unroll 16")
        for (r = 0; r < 16; r++) {
            const Py_ssize_t i = v * 16 + r;
            __m512 cr = cnext;
            if (i >= rows)
                break;
            if (kind >= 2 && i + 1 < rows)
                cnext = _mm512_maskz_loadu_ps(cols, c + (i + 1) * ldc);
            _mm512_mask_storeu_ps(c + i * ldc, cols,
                                  NN_GEMM_OUT(_mm512_fmadd_ps, _mm512_mul_ps, t[r], cr, va,
                                              vb, kind));
        }
    }
}

/* C's rows in blocks of 32 (two vectors), the rest as one block of one or two vectors,
   the last masked. */
#define NN_NARROW_TN_ROWS(NN)                                                              \
    do {                                                                                    \
        for (i0 = 0; i0 + 32 <= m; i0 += 32)                                                \
            nn_narrow_tn_block_f(NN, 2, k, A + i0, lda, B, ldb, (__mmask16)0xffffu, alpha,  \
                                 beta, kind, C + i0 * ldc, ldc, 32);                        \
        if (m - i0 > 16)                                                                    \
            nn_narrow_tn_block_f(NN, 2, k, A + i0, lda, B, ldb,                             \
                                 (__mmask16)((1u << (m - i0 - 16)) - 1u), alpha, beta,      \
                                 kind, C + i0 * ldc, ldc, m - i0);                          \
        else if (m - i0 > 0)                                                                \
            nn_narrow_tn_block_f(NN, 1, k, A + i0, lda, B, ldb,                             \
                                 (__mmask16)((1u << (m - i0)) - 1u), alpha, beta, kind,     \
                                 C + i0 * ldc, ldc, m - i0);                                \
    } while (0)

/* C (m, n) = alpha A^T B + beta C with NN_GEMM_ACT_ALPHA_FIRST's write-back, for
   NN_GEMM_NARROW_TN_MIN <= n <= 15 (returns 1), or nothing (returns 0: another shape,
   which the row blocks take). */
static int nn_gemm_small_f_narrow(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n,
                                  Py_ssize_t k, float alpha, const float* A,
                                  Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                                  float beta, float* C, Py_ssize_t ldc)
{
    const int kind = beta == 0 ? (alpha == 1 ? 0 : 1) : 4;
    Py_ssize_t i0;
    if (!trans_a || trans_b || n < NN_GEMM_NARROW_TN_MIN || n > 15 || m <= 0 || k <= 0)
        return 0;
    switch (n) {
    case 9: NN_NARROW_TN_ROWS(9); break;
    case 10: NN_NARROW_TN_ROWS(10); break;
    case 11: NN_NARROW_TN_ROWS(11); break;
    case 12: NN_NARROW_TN_ROWS(12); break;
    case 13: NN_NARROW_TN_ROWS(13); break;
    case 14: NN_NARROW_TN_ROWS(14); break;
    default: NN_NARROW_TN_ROWS(15); break;
    }
    return 1;
}
/* (float64 takes the row blocks) */
static inline int nn_gemm_small_d_narrow(int trans_a, int trans_b, Py_ssize_t m,
                                         Py_ssize_t n, Py_ssize_t k, double alpha,
                                         const double* A, Py_ssize_t lda, const double* B,
                                         Py_ssize_t ldb, double beta, double* C,
                                         Py_ssize_t ldc) { return 0; }

NN_GEMM512_BLOCK(nn_gemm512_block_f, float, __m512, __mmask16, 16, ps, 0xffffu)
NN_GEMM512_BLOCK(nn_gemm512_block_d, double, __m512d, __mmask8, 8, pd, 0xffu)
NN_GEMM512_SMALL(nn_gemm_small_f, float, __mmask16, 16, nn_gemm512_block_f, 0xffffu, ps)
NN_GEMM512_SMALL(nn_gemm_small_d, double, __mmask8, 8, nn_gemm512_block_d, 0xffu, pd)

#else
#define NN_SMALL_GEMM 0
/* never called (mm tests NN_SMALL_GEMM first); declared so that the callers compile */
static inline void nn_gemm_small_f(int ta, int tb, Py_ssize_t m, Py_ssize_t n,
                                   Py_ssize_t k, float alpha, const float* A,
                                   Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                                   float beta, float* C, Py_ssize_t ldc, const float* bias,
                                   const float* H, double* work, int act) { }
static inline void nn_gemm_small_d(int ta, int tb, Py_ssize_t m, Py_ssize_t n,
                                   Py_ssize_t k, double alpha, const double* A,
                                   Py_ssize_t lda, const double* B, Py_ssize_t ldb,
                                   double beta, double* C, Py_ssize_t ldc,
                                   const double* bias, const double* H, double* work,
                                   int act) { }
#endif

#ifndef NN_SMALL_GEMM_BIAS_ACT
#define NN_SMALL_GEMM_BIAS_ACT 0
/* never called (the training loop reads X's rows in place only with AVX-512) */
static inline void nn_gemm_small_f_rows(int ta, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                        float alpha, const float* A, Py_ssize_t lda,
                                        const long long* arow, const float* B,
                                        Py_ssize_t ldb, float beta, float* C,
                                        Py_ssize_t ldc, const float* bias, int act) { }
static inline void nn_gemm_small_d_rows(int ta, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                        double alpha, const double* A, Py_ssize_t lda,
                                        const long long* arow, const double* B,
                                        Py_ssize_t ldb, double beta, double* C,
                                        Py_ssize_t ldc, const double* bias, int act) { }
#endif

#endif
