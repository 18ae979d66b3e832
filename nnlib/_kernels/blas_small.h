/* One-row products of the batch-1 training step (dense.pxd's small_gemm), in C so that the
 * row of the result stays in registers.
 *
 *   nn_row_axpys_{f,d}(k, n, alpha, x, W, ldw, c):
 *       c[j] <- c[j] + sum over p < k with x[p] != 0 of (alpha x[p]) W[p ldw + j]
 *       (the forward product x W of one row: a sum of the rows of W)
 *   nn_rank1_{f,d}(m, n, alpha, a, lda, b, C, ldc):
 *       C[i ldc + j] <- C[i ldc + j] + (alpha a[i lda]) b[j] for a[i lda] != 0
 *       (the batch-1 weight step: a rank-one update)
 *   nn_row_dots_{f,d}(k, n, alpha, a, B, ldb, c):
 *       c[j] <- c[j] + alpha (sum over p < k of a[p] B[j ldb + p])
 *       (the input gradient dz W^T of one row: a dot product per row of W)
 *   nn_col_dots_{f,d}(k, n, alpha, a, BT, ldb, c):
 *       nn_row_dots with B given transposed (BT (k, ldb)): the same chains, read by rows
 *   nn_rank1_t_{f,d}(m, n, alpha, a, b, CT, ldc):
 *       nn_rank1 (lda = 1) on a transposed copy CT (n, ldc) of C
 *   nn_rank1_axpys_{f,d}(m, n, alpha, a, b, W, ldw, x, c) (AVX-512 only):
 *       the first layer's rank-one step and the next row's product x W in one pass
 *       (see its comment below)
 *
 * Each element is formed by exactly the operations of the plain loops they replace (see
 * small_gemm): the terms of a row update added one by one in increasing p, each a
 * fused multiply-add where the compiler contracts ``c + a * w`` (as it does there); a
 * dot product in four accumulators over p mod 4 (the remainder into the first), summed
 * as (acc0 + acc1) + (acc2 + acc3). So the results are bitwise those of the loops, and
 * what changes is where the partial sums live. In the row update the plain loop reads
 * and writes the whole row of c for each nonzero x[p]; here a block of c (up to 8
 * vectors and the columns left over) is held in vector registers while the nonzero
 * terms are added, and stored once. All chains of a block advance in the same pass over
 * the terms: one chain per pass would wait on the FMA latency at every term. With
 * AVX-512 the left-over columns are one masked vector; elsewhere (GCC's vector
 * extensions at the target's register width, nn_vf) a half vector and single columns.
 * In the dot products ``restrict`` lets the compiler keep the row a[] where it is
 * instead of reloading it after every store to c; with AVX-512 the dot products of a
 * vector of rows run side by side, each lane the same chains (the rows' columns
 * gathered), and the rank-one update adds a row's last columns as one masked vector.
 * On a transposed copy (nn_col_dots, nn_rank1_t) every target takes a vector of
 * neighbouring elements at a time: there they are contiguous.
 *
 * Zero coefficients are skipped (0 * finite adds nothing; the training loop keeps its
 * operands finite), their indices compacted without a branch, 64 at a time, as in
 * dense.pxd's sparse_axpys; with AVX-512 a vector of coefficients at a time (vcompress),
 * the same indices in the same order, so the compaction costs a few instructions per 16
 * rows instead of several per row (it runs three times per batch-1 step); with AVX2 a
 * vector at a time too, the packing a permute picked by the test's lane mask from a
 * table (NN_PACK_LANES). SSE2 and AVX-only builds keep the scalar loop.
 *
 * Masked stores. A load that overlaps a masked store still in flight is not forwarded
 * from it: it waits until the store reaches the cache. A masked vector store at a row's
 * last columns spans a whole vector, into the next row when the row's length is not a
 * multiple of the vector; a pass over consecutive rows then stalls on every row. So the
 * row updates keep such a store inside its row (the fused first-layer step) or visit the
 * rows in interleaved passes, ks rows apart (nn_rank1 on a narrow layer).
 */
#ifndef NNLIB_BLAS_SMALL_H
#define NNLIB_BLAS_SMALL_H

#include <stddef.h>
#include <string.h>

/* The generic (non-AVX-512) loops' vectors: the target's register width (32 bytes with
 * AVX, else 16) and half of it for a row's left-over columns. A GCC vector wider than the
 * target's registers has no machine mode: GCC keeps it in memory and moves its pieces
 * through the stack and general registers, and a block of 8 of them cannot stay in
 * registers anyway (64-byte vectors on an AVX2 CPU: the digits net's batch-1 products
 * ran 3-9x slower than with 32-byte ones). */
#if defined(__AVX__)
#define NN_VBYTES 32
#else
#define NN_VBYTES 16
#endif
typedef float nn_vf __attribute__((vector_size(NN_VBYTES)));
typedef float nn_vhf __attribute__((vector_size(NN_VBYTES / 2)));
typedef double nn_vd __attribute__((vector_size(NN_VBYTES)));
typedef double nn_vhd __attribute__((vector_size(NN_VBYTES / 2)));
/* the lane masks of a comparison of nn_vf / nn_vd lanes (all ones or zero) */
typedef int nn_vmf __attribute__((vector_size(NN_VBYTES)));
typedef int nn_vhmf __attribute__((vector_size(NN_VBYTES / 2)));
typedef long long nn_vmd __attribute__((vector_size(NN_VBYTES)));
typedef long long nn_vhmd __attribute__((vector_size(NN_VBYTES / 2)));
/* A row's columns left over after the whole vectors and a half vector are fewer than a
   half vector's lanes; the block loops hold at most three of them (t0..t2, u0..u2). */
_Static_assert(sizeof(nn_vhf) / sizeof(float) <= 4 && sizeof(nn_vhd) / sizeof(double) <= 4,
               "blas_small.h: the block loops hold at most 3 single columns");

/* One multiply-add of a scalar chain, as the compiler forms ``c + a * b`` in the loops
 * these replace: fused where the target has FMA (GCC contracts there), two roundings
 * elsewhere. Spelled out because GCC vectorizes a chain over a short row as products
 * in a vector followed by in-order additions, which would round each product. */
#ifdef __FP_FAST_FMA
#define NN_FMA_D(a, b, c) __builtin_fma((a), (b), (c))
#else
#define NN_FMA_D(a, b, c) ((c) + (a) * (b))
#endif
#ifdef __FP_FAST_FMAF
#define NN_FMA_F(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define NN_FMA_F(a, b, c) ((c) + (a) * (b))
#endif

/* unaligned vector loads and stores: memcpy of a fixed size compiles to one move */
#define NN_LOAD(V, p) ({ V v_; memcpy(&v_, (p), sizeof(V)); v_; })
#define NN_STORE(p, v) do { __typeof__(v) s_ = (v); memcpy((p), &s_, sizeof(s_)); } while (0)

/* The indices i in [i0, i1) with v[i stride] != 0 into idx[], alpha v[i stride] into
 * s[], without a branch on the data (it mispredicts on ReLU's zero pattern); the count. */
#define NN_COMPACT(NAME, T)                                                                 \
static inline Py_ssize_t NAME(const T* restrict v, Py_ssize_t stride, Py_ssize_t i0,        \
                              Py_ssize_t i1, T alpha, Py_ssize_t* restrict idx,             \
                              T* restrict s)                                                \
{                                                                                           \
    Py_ssize_t i, cnt = 0;                                                                  \
    for (i = i0; i < i1; i++) {                                                             \
        idx[cnt] = i;                                                                       \
        s[cnt] = alpha * v[i * stride];                                                     \
        cnt += v[i * stride] != 0;                                                          \
    }                                                                                       \
    return cnt;                                                                             \
}

#if defined(__AVX512F__)
#include <immintrin.h>
NN_COMPACT(nn_compact_loop_f, float)
NN_COMPACT(nn_compact_loop_d, double)

/* AVX-512, stride 1: a vector of v at a time, its nonzero lanes' indices and alpha v
   packed to the front (vcompress) and stored whole. A store at cnt reaches at most a
   vector past the lanes read so far, so a chunk of at most 64 (the callers' arrays)
   stays in its 64 entries. Each s[] is the scalar loop's product, alpha v rounded once. */
#define NN_NONZERO_PS(in, x) _mm512_mask_cmp_ps_mask(in, x, _mm512_setzero_ps(), _CMP_NEQ_UQ)
#define NN_NONZERO_PD(in, x) _mm512_mask_cmp_pd_mask(in, x, _mm512_setzero_pd(), _CMP_NEQ_UQ)
static inline Py_ssize_t nn_compact_f(const float* restrict v, Py_ssize_t stride,
                                      Py_ssize_t i0, Py_ssize_t i1, float alpha,
                                      Py_ssize_t* restrict idx, float* restrict s)
{
    Py_ssize_t i, cnt = 0;
    const __m512 al = _mm512_set1_ps(alpha);
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    if (stride != 1)
        return nn_compact_loop_f(v, stride, i0, i1, alpha, idx, s);
    for (i = i0; i < i1; i += 16) {
        __mmask16 in = (__mmask16)(i1 - i >= 16 ? 0xffffu : (1u << (i1 - i)) - 1u);
        __m512 x = _mm512_maskz_loadu_ps(in, v + i);
        __mmask16 k = NN_NONZERO_PS(in, x);
        __m512i at = _mm512_add_epi64(_mm512_set1_epi64(i), lanes);
        int nlo = __builtin_popcount(k & 0xffu);
        _mm512_storeu_ps(s + cnt, _mm512_maskz_compress_ps(k, _mm512_mul_ps(al, x)));
        _mm512_storeu_si512(idx + cnt, _mm512_maskz_compress_epi64((__mmask8)k, at));
        _mm512_storeu_si512(idx + cnt + nlo, _mm512_maskz_compress_epi64(
            (__mmask8)(k >> 8), _mm512_add_epi64(at, _mm512_set1_epi64(8))));
        cnt += __builtin_popcount(k);
    }
    return cnt;
}
static inline Py_ssize_t nn_compact_d(const double* restrict v, Py_ssize_t stride,
                                      Py_ssize_t i0, Py_ssize_t i1, double alpha,
                                      Py_ssize_t* restrict idx, double* restrict s)
{
    Py_ssize_t i, cnt = 0;
    const __m512d al = _mm512_set1_pd(alpha);
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    if (stride != 1)
        return nn_compact_loop_d(v, stride, i0, i1, alpha, idx, s);
    for (i = i0; i < i1; i += 8) {
        __mmask8 in = (__mmask8)(i1 - i >= 8 ? 0xffu : (1u << (i1 - i)) - 1u);
        __m512d x = _mm512_maskz_loadu_pd(in, v + i);
        __mmask8 k = NN_NONZERO_PD(in, x);
        _mm512_storeu_pd(s + cnt, _mm512_maskz_compress_pd(k, _mm512_mul_pd(al, x)));
        _mm512_storeu_si512(idx + cnt, _mm512_maskz_compress_epi64(
            k, _mm512_add_epi64(_mm512_set1_epi64(i), lanes)));
        cnt += __builtin_popcount(k);
    }
    return cnt;
}
/* A block of up to 8 vectors of L values from p into v0..v7 (the rest zero) and the
   columns left over (mask mk) into vt: masked, it reads nothing past the row. */
#define NN_LOAD_BLOCK(SUF, p, nv, mk, v0, v1, v2, v3, v4, v5, v6, v7, vt)                   \
    do {                                                                                    \
        v0 = _mm512_setzero_##SUF(); v1 = v0; v2 = v0; v3 = v0; v4 = v0; v5 = v0;           \
        v6 = v0; v7 = v0;                                                                   \
        if (nv > 0) v0 = _mm512_loadu_##SUF(p);                                             \
        if (nv > 1) v1 = _mm512_loadu_##SUF(p + L);                                         \
        if (nv > 2) v2 = _mm512_loadu_##SUF(p + 2 * L);                                     \
        if (nv > 3) v3 = _mm512_loadu_##SUF(p + 3 * L);                                     \
        if (nv > 4) v4 = _mm512_loadu_##SUF(p + 4 * L);                                     \
        if (nv > 5) v5 = _mm512_loadu_##SUF(p + 5 * L);                                     \
        if (nv > 6) v6 = _mm512_loadu_##SUF(p + 6 * L);                                     \
        if (nv > 7) v7 = _mm512_loadu_##SUF(p + 7 * L);                                     \
        vt = _mm512_maskz_loadu_##SUF(mk, p + nv * L);                                      \
    } while (0)
/* and back: v0..v7 and the masked vt to p */
#define NN_STORE_BLOCK(SUF, p, nv, mk, v0, v1, v2, v3, v4, v5, v6, v7, vt)                  \
    do {                                                                                    \
        if (nv > 0) _mm512_storeu_##SUF(p, v0);                                             \
        if (nv > 1) _mm512_storeu_##SUF(p + L, v1);                                         \
        if (nv > 2) _mm512_storeu_##SUF(p + 2 * L, v2);                                     \
        if (nv > 3) _mm512_storeu_##SUF(p + 3 * L, v3);                                     \
        if (nv > 4) _mm512_storeu_##SUF(p + 4 * L, v4);                                     \
        if (nv > 5) _mm512_storeu_##SUF(p + 5 * L, v5);                                     \
        if (nv > 6) _mm512_storeu_##SUF(p + 6 * L, v6);                                     \
        if (nv > 7) _mm512_storeu_##SUF(p + 7 * L, v7);                                     \
        _mm512_mask_storeu_##SUF(p + nv * L, mk, vt);                                       \
    } while (0)
/* c[k L .. k L + L) += t * bk: one vector of a row's rank-one update, in place */
#define NN_ADD_ROW(SUF, c, k, t, bk)                                                        \
    if (nv > k) _mm512_storeu_##SUF((c) + (k) * L, _mm512_fmadd_##SUF(                      \
        t, bk, _mm512_loadu_##SUF((c) + (k) * L)))

/* AVX-512: a block of up to 8 vectors and the columns left over in one masked vector
   (a masked load reads nothing past the row), all of its chains in one pass. */
#define NN_AXPYS_BLOCKS(NAME, T, SUF, M, MT)                                                \
static inline void NAME(Py_ssize_t cnt, const Py_ssize_t* restrict idx, const T* restrict a,\
                        Py_ssize_t n, const T* restrict W, Py_ssize_t ldw, T* restrict c)   \
{                                                                                           \
    enum { L = 64 / sizeof(T) };                                                            \
    Py_ssize_t q, j0;                                                                       \
    for (j0 = 0; j0 < n; j0 += 8 * L) {                                                     \
        Py_ssize_t rem = n - j0 < 8 * L ? n - j0 : 8 * L;                                   \
        int nv = (int)(rem / L);                                                            \
        MT m = (MT)((1u << (rem - nv * L)) - 1u);                                           \
        T* cb = c + j0;                                                                     \
        M c0, c1, c2, c3, c4, c5, c6, c7, ct;                                               \
        NN_LOAD_BLOCK(SUF, cb, nv, m, c0, c1, c2, c3, c4, c5, c6, c7, ct);                  \
        for (q = 0; q < cnt; q++) {                                                         \
            const T* w = W + idx[q] * ldw + j0;                                             \
            M s = _mm512_set1_##SUF(a[q]);                                                  \
            if (nv > 0) c0 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w), c0);              \
            if (nv > 1) c1 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w + L), c1);          \
            if (nv > 2) c2 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w + 2 * L), c2);      \
            if (nv > 3) c3 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w + 3 * L), c3);      \
            if (nv > 4) c4 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w + 4 * L), c4);      \
            if (nv > 5) c5 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w + 5 * L), c5);      \
            if (nv > 6) c6 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w + 6 * L), c6);      \
            if (nv > 7) c7 = _mm512_fmadd_##SUF(s, _mm512_loadu_##SUF(w + 7 * L), c7);      \
            if (m) ct = _mm512_fmadd_##SUF(s, _mm512_maskz_loadu_##SUF(m, w + nv * L),      \
                                           ct);                                             \
        }                                                                                   \
        NN_STORE_BLOCK(SUF, cb, nv, m, c0, c1, c2, c3, c4, c5, c6, c7, ct);                 \
    }                                                                                       \
}

NN_AXPYS_BLOCKS(nn_axpys_blocks_f, float, ps, __m512, __mmask16)
NN_AXPYS_BLOCKS(nn_axpys_blocks_d, double, pd, __m512d, __mmask8)

#elif defined(__AVX2__) && defined(__SIZEOF_SIZE_T__) && __SIZEOF_SIZE_T__ == 8
/* (the indices go out as 64-bit lanes: a 32-bit Py_ssize_t keeps the scalar loop) */
#include <immintrin.h>
NN_COMPACT(nn_compact_loop_f, float)
NN_COMPACT(nn_compact_loop_d, double)

/* AVX2, stride 1: a vector of v at a time, as with AVX-512 but without vcompress: the
   lane mask of the test (movemask) picks from NN_PACK_LANES the nonzero lanes' numbers
   in increasing order, one per 4 bits (entry k: the set bits of k; 1 KB, where a table
   of whole permutation vectors would take 8), spread to a lane each by a variable
   shift; a permute packs alpha v and the indices to the front, stored whole. The lanes
   after the last whole vector (fewer than a vector) go through the scalar loop: a
   masked load (vmaskmov) there measured slower than that loop on Zen 1. A store at cnt
   reaches at most a vector past the lanes read so far, so a chunk of at most 64 (the
   callers' arrays) stays in its 64 entries. Each s[] is the scalar loop's product,
   alpha v rounded once; NaN counts as nonzero, as there. */
static const unsigned int NN_PACK_LANES[256] = {
    0x00000000, 0x00000000, 0x00000001, 0x00000010, 0x00000002, 0x00000020, 0x00000021, 0x00000210,
    0x00000003, 0x00000030, 0x00000031, 0x00000310, 0x00000032, 0x00000320, 0x00000321, 0x00003210,
    0x00000004, 0x00000040, 0x00000041, 0x00000410, 0x00000042, 0x00000420, 0x00000421, 0x00004210,
    0x00000043, 0x00000430, 0x00000431, 0x00004310, 0x00000432, 0x00004320, 0x00004321, 0x00043210,
    0x00000005, 0x00000050, 0x00000051, 0x00000510, 0x00000052, 0x00000520, 0x00000521, 0x00005210,
    0x00000053, 0x00000530, 0x00000531, 0x00005310, 0x00000532, 0x00005320, 0x00005321, 0x00053210,
    0x00000054, 0x00000540, 0x00000541, 0x00005410, 0x00000542, 0x00005420, 0x00005421, 0x00054210,
    0x00000543, 0x00005430, 0x00005431, 0x00054310, 0x00005432, 0x00054320, 0x00054321, 0x00543210,
    0x00000006, 0x00000060, 0x00000061, 0x00000610, 0x00000062, 0x00000620, 0x00000621, 0x00006210,
    0x00000063, 0x00000630, 0x00000631, 0x00006310, 0x00000632, 0x00006320, 0x00006321, 0x00063210,
    0x00000064, 0x00000640, 0x00000641, 0x00006410, 0x00000642, 0x00006420, 0x00006421, 0x00064210,
    0x00000643, 0x00006430, 0x00006431, 0x00064310, 0x00006432, 0x00064320, 0x00064321, 0x00643210,
    0x00000065, 0x00000650, 0x00000651, 0x00006510, 0x00000652, 0x00006520, 0x00006521, 0x00065210,
    0x00000653, 0x00006530, 0x00006531, 0x00065310, 0x00006532, 0x00065320, 0x00065321, 0x00653210,
    0x00000654, 0x00006540, 0x00006541, 0x00065410, 0x00006542, 0x00065420, 0x00065421, 0x00654210,
    0x00006543, 0x00065430, 0x00065431, 0x00654310, 0x00065432, 0x00654320, 0x00654321, 0x06543210,
    0x00000007, 0x00000070, 0x00000071, 0x00000710, 0x00000072, 0x00000720, 0x00000721, 0x00007210,
    0x00000073, 0x00000730, 0x00000731, 0x00007310, 0x00000732, 0x00007320, 0x00007321, 0x00073210,
    0x00000074, 0x00000740, 0x00000741, 0x00007410, 0x00000742, 0x00007420, 0x00007421, 0x00074210,
    0x00000743, 0x00007430, 0x00007431, 0x00074310, 0x00007432, 0x00074320, 0x00074321, 0x00743210,
    0x00000075, 0x00000750, 0x00000751, 0x00007510, 0x00000752, 0x00007520, 0x00007521, 0x00075210,
    0x00000753, 0x00007530, 0x00007531, 0x00075310, 0x00007532, 0x00075320, 0x00075321, 0x00753210,
    0x00000754, 0x00007540, 0x00007541, 0x00075410, 0x00007542, 0x00075420, 0x00075421, 0x00754210,
    0x00007543, 0x00075430, 0x00075431, 0x00754310, 0x00075432, 0x00754320, 0x00754321, 0x07543210,
    0x00000076, 0x00000760, 0x00000761, 0x00007610, 0x00000762, 0x00007620, 0x00007621, 0x00076210,
    0x00000763, 0x00007630, 0x00007631, 0x00076310, 0x00007632, 0x00076320, 0x00076321, 0x00763210,
    0x00000764, 0x00007640, 0x00007641, 0x00076410, 0x00007642, 0x00076420, 0x00076421, 0x00764210,
    0x00007643, 0x00076430, 0x00076431, 0x00764310, 0x00076432, 0x00764320, 0x00764321, 0x07643210,
    0x00000765, 0x00007650, 0x00007651, 0x00076510, 0x00007652, 0x00076520, 0x00076521, 0x00765210,
    0x00007653, 0x00076530, 0x00076531, 0x00765310, 0x00076532, 0x00765320, 0x00765321, 0x07653210,
    0x00007654, 0x00076540, 0x00076541, 0x00765410, 0x00076542, 0x00765420, 0x00765421, 0x07654210,
    0x00076543, 0x00765430, 0x00765431, 0x07654310, 0x00765432, 0x07654320, 0x07654321, 0x76543210,
};
/* the scalar loop's steps for i in [i, i1), continuing the count */
#define NN_COMPACT_TAIL                                                                     \
    for (; i < i1; i++) {                                                                   \
        idx[cnt] = i;                                                                       \
        s[cnt] = alpha * v[i];                                                              \
        cnt += v[i] != 0;                                                                   \
    }
static inline Py_ssize_t nn_compact_f(const float* restrict v, Py_ssize_t stride,
                                      Py_ssize_t i0, Py_ssize_t i1, float alpha,
                                      Py_ssize_t* restrict idx, float* restrict s)
{
    Py_ssize_t i, cnt = 0;
    const __m256 al = _mm256_set1_ps(alpha), zero = _mm256_setzero_ps();
    const __m256i nibble = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i low4 = _mm256_set1_epi32(15);
    if (stride != 1)
        return nn_compact_loop_f(v, stride, i0, i1, alpha, idx, s);
    for (i = i0; i + 8 <= i1; i += 8) {
        __m256 x = _mm256_loadu_ps(v + i);
        int k = _mm256_movemask_ps(_mm256_cmp_ps(x, zero, _CMP_NEQ_UQ));
        __m256i lane = _mm256_and_si256(_mm256_srlv_epi32(
            _mm256_set1_epi32((int)NN_PACK_LANES[k]), nibble), low4);
        __m256i at = _mm256_set1_epi64x((long long)i);
        _mm256_storeu_ps(s + cnt, _mm256_permutevar8x32_ps(_mm256_mul_ps(al, x), lane));
        _mm256_storeu_si256((__m256i*)(idx + cnt), _mm256_add_epi64(
            at, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lane))));
        _mm256_storeu_si256((__m256i*)(idx + cnt + 4), _mm256_add_epi64(
            at, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(lane, 1))));
        cnt += __builtin_popcount((unsigned)k);
    }
    NN_COMPACT_TAIL
    return cnt;
}
/* double: 4 lanes, each permuted as its two 32-bit halves (lanes 2l, 2l + 1) */
static inline Py_ssize_t nn_compact_d(const double* restrict v, Py_ssize_t stride,
                                      Py_ssize_t i0, Py_ssize_t i1, double alpha,
                                      Py_ssize_t* restrict idx, double* restrict s)
{
    Py_ssize_t i, cnt = 0;
    const __m256d al = _mm256_set1_pd(alpha), zero = _mm256_setzero_pd();
    const __m256i nibble2 = _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12);
    const __m256i half = _mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1);
    const __m128i nibble = _mm_setr_epi32(0, 4, 8, 12);
    const __m256i low4 = _mm256_set1_epi32(15);
    if (stride != 1)
        return nn_compact_loop_d(v, stride, i0, i1, alpha, idx, s);
    for (i = i0; i + 4 <= i1; i += 4) {
        __m256d x = _mm256_loadu_pd(v + i);
        int k = _mm256_movemask_pd(_mm256_cmp_pd(x, zero, _CMP_NEQ_UQ));
        int packed = (int)NN_PACK_LANES[k];
        __m256i pair = _mm256_add_epi32(_mm256_slli_epi32(_mm256_and_si256(
            _mm256_srlv_epi32(_mm256_set1_epi32(packed), nibble2), low4), 1), half);
        __m128i lane = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(packed), nibble),
                                     _mm256_castsi256_si128(low4));
        _mm256_storeu_pd(s + cnt, _mm256_castps_pd(_mm256_permutevar8x32_ps(
            _mm256_castpd_ps(_mm256_mul_pd(al, x)), pair)));
        _mm256_storeu_si256((__m256i*)(idx + cnt), _mm256_add_epi64(
            _mm256_set1_epi64x((long long)i), _mm256_cvtepi32_epi64(lane)));
        cnt += __builtin_popcount((unsigned)k);
    }
    NN_COMPACT_TAIL
    return cnt;
}
#else
NN_COMPACT(nn_compact_f, float)
NN_COMPACT(nn_compact_d, double)
#endif

#if !defined(__AVX512F__)

/* elsewhere: a block of up to 8 vectors V from p into v0..v7 (the rest zero), a half
   vector at nv L into vh (nh) and the nt (at most 3) single columns at e into t0..t2 */
#define NN_VLOAD_BLOCK(V, VH, p, v0, v1, v2, v3, v4, v5, v6, v7, vh, t0, t1, t2)           \
    do {                                                                                    \
        v0 = z; v1 = z; v2 = z; v3 = z; v4 = z; v5 = z; v6 = z; v7 = z; vh = zh;            \
        t0 = 0; t1 = 0; t2 = 0;                                                             \
        if (nv > 0) v0 = NN_LOAD(V, p);                                                     \
        if (nv > 1) v1 = NN_LOAD(V, p + L);                                                 \
        if (nv > 2) v2 = NN_LOAD(V, p + 2 * L);                                             \
        if (nv > 3) v3 = NN_LOAD(V, p + 3 * L);                                             \
        if (nv > 4) v4 = NN_LOAD(V, p + 4 * L);                                             \
        if (nv > 5) v5 = NN_LOAD(V, p + 5 * L);                                             \
        if (nv > 6) v6 = NN_LOAD(V, p + 6 * L);                                             \
        if (nv > 7) v7 = NN_LOAD(V, p + 7 * L);                                             \
        if (nh) vh = NN_LOAD(VH, p + nv * L);                                               \
        if (nt > 0) t0 = p[e];                                                              \
        if (nt > 1) t1 = p[e + 1];                                                          \
        if (nt > 2) t2 = p[e + 2];                                                          \
    } while (0)

/* elsewhere: GCC's vector extensions at the target's width, the left-over columns as a
   half vector and at most three single columns (fewer than a half vector's lanes) */
#define NN_AXPYS_BLOCKS(NAME, T, V, VH, FMA)                                                \
static inline void NAME(Py_ssize_t cnt, const Py_ssize_t* restrict idx, const T* restrict a,\
                        Py_ssize_t n, const T* restrict W, Py_ssize_t ldw, T* restrict c)   \
{                                                                                           \
    enum { L = sizeof(V) / sizeof(T), LH = sizeof(VH) / sizeof(T) };                        \
    const V z = {0};                                                                        \
    const VH zh = {0};                                                                      \
    Py_ssize_t q, j0;                                                                       \
    for (j0 = 0; j0 < n; j0 += 8 * L) {                                                     \
        /* all of a block's columns in one pass over the terms: up to 8 vectors, a          \
           half vector and up to 3 single columns, each an independent chain */             \
        Py_ssize_t rem = n - j0 < 8 * L ? n - j0 : 8 * L;                                   \
        int nv = (int)(rem / L), nh = rem % L >= LH;                                        \
        int e = nv * L + nh * LH, nt = (int)rem - e;                                        \
        T* cb = c + j0;                                                                     \
        V c0, c1, c2, c3, c4, c5, c6, c7;                                                   \
        VH ch;                                                                              \
        T t0, t1, t2;                                                                       \
        NN_VLOAD_BLOCK(V, VH, cb, c0, c1, c2, c3, c4, c5, c6, c7, ch, t0, t1, t2);          \
        for (q = 0; q < cnt; q++) {                                                         \
            const T* w = W + idx[q] * ldw + j0;                                             \
            T s = a[q];                                                                     \
            if (nv > 0) c0 = c0 + s * NN_LOAD(V, w);                                        \
            if (nv > 1) c1 = c1 + s * NN_LOAD(V, w + L);                                    \
            if (nv > 2) c2 = c2 + s * NN_LOAD(V, w + 2 * L);                                \
            if (nv > 3) c3 = c3 + s * NN_LOAD(V, w + 3 * L);                                \
            if (nv > 4) c4 = c4 + s * NN_LOAD(V, w + 4 * L);                                \
            if (nv > 5) c5 = c5 + s * NN_LOAD(V, w + 5 * L);                                \
            if (nv > 6) c6 = c6 + s * NN_LOAD(V, w + 6 * L);                                \
            if (nv > 7) c7 = c7 + s * NN_LOAD(V, w + 7 * L);                                \
            if (nh) ch = ch + s * NN_LOAD(VH, w + nv * L);                                  \
            if (nt > 0) t0 = FMA(s, w[e], t0);                                              \
            if (nt > 1) t1 = FMA(s, w[e + 1], t1);                                          \
            if (nt > 2) t2 = FMA(s, w[e + 2], t2);                                          \
        }                                                                                   \
        if (nv > 0) NN_STORE(cb, c0);                                                       \
        if (nv > 1) NN_STORE(cb + L, c1);                                                   \
        if (nv > 2) NN_STORE(cb + 2 * L, c2);                                               \
        if (nv > 3) NN_STORE(cb + 3 * L, c3);                                               \
        if (nv > 4) NN_STORE(cb + 4 * L, c4);                                               \
        if (nv > 5) NN_STORE(cb + 5 * L, c5);                                               \
        if (nv > 6) NN_STORE(cb + 6 * L, c6);                                               \
        if (nv > 7) NN_STORE(cb + 7 * L, c7);                                               \
        if (nh) NN_STORE(cb + nv * L, ch);                                                  \
        if (nt > 0) cb[e] = t0;                                                             \
        if (nt > 1) cb[e + 1] = t1;                                                         \
        if (nt > 2) cb[e + 2] = t2;                                                         \
    }                                                                                       \
}

NN_AXPYS_BLOCKS(nn_axpys_blocks_f, float, nn_vf, nn_vhf, NN_FMA_F)
NN_AXPYS_BLOCKS(nn_axpys_blocks_d, double, nn_vd, nn_vhd, NN_FMA_D)
#endif

/* x W as the sum of the rows of W: the nonzero terms 64 at a time, each chunk added
   to c by the blocks above */
#define NN_ROW_AXPYS(NAME, T, CNAME, BLOCKS)                                                \
static inline void NAME(Py_ssize_t k, Py_ssize_t n, T alpha, const T* restrict x,           \
                        const T* restrict W, Py_ssize_t ldw, T* restrict c)                 \
{                                                                                           \
    Py_ssize_t idx[64];                                                                     \
    T a[64];                                                                                \
    Py_ssize_t p0, cnt;                                                                     \
    for (p0 = 0; p0 < k; p0 += 64) {                                                        \
        Py_ssize_t p1 = k - p0 < 64 ? k : p0 + 64;                                          \
        cnt = CNAME(x, 1, p0, p1, alpha, idx, a);                                           \
        if (cnt > 0)                                                                        \
            BLOCKS(cnt, idx, a, n, W, ldw, c);                                              \
    }                                                                                       \
}

NN_ROW_AXPYS(nn_row_axpys_f, float, nn_compact_f, nn_axpys_blocks_f)
NN_ROW_AXPYS(nn_row_axpys_d, double, nn_compact_d, nn_axpys_blocks_d)

/* nn_rank1_{f,d}(m, n, alpha, a, lda, b, C, ldc):
 *     C[i ldc + j] <- C[i ldc + j] + (alpha a[i lda]) b[j] for i < m with a[i lda] != 0
 * (the batch-1 weight step W += alpha x^T dz: one row update per nonzero input), with a
 * block of b held in registers across the rows. */
#if defined(__AVX512F__)
/* AVX-512: a block of up to 8 vectors of b and the columns left over in one masked
   vector, so a narrow layer (the digits net's 10 outputs) or a row's last columns cost
   one masked vector per row instead of a scalar loop. That masked store spans a whole
   vector, past the row's end into the next rows when they are narrow (10 columns: 40
   bytes a row), and a load overlapping a masked store in flight waits for it to reach
   the cache (it is not forwarded). So the rows go in ks interleaved passes, the terms
   q = ph, ph + ks, ...: rows at least ks apart, ks rows spanning the block's vectors.
   Each element still gets its one term, so the order of the rows changes nothing. */
#define NN_RANK1(NAME, T, SUF, M, MT, CNAME)                                                \
static inline void NAME(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,           \
                        Py_ssize_t lda, const T* restrict b, T* restrict C,                 \
                        Py_ssize_t ldc)                                                     \
{                                                                                           \
    enum { L = 64 / sizeof(T) };                                                            \
    Py_ssize_t idx[64];                                                                     \
    T s[64];                                                                                \
    Py_ssize_t r0, q, cnt, j0;                                                              \
    for (r0 = 0; r0 < m; r0 += 64) {                                                        \
        Py_ssize_t r1 = m - r0 < 64 ? m : r0 + 64;                                          \
        cnt = CNAME(a, lda, r0, r1, alpha, idx, s);                                         \
        for (j0 = 0; j0 < n && cnt > 0; j0 += 8 * L) {                                      \
            Py_ssize_t rem = n - j0 < 8 * L ? n - j0 : 8 * L;                               \
            int nv = (int)(rem / L);                                                        \
            MT mk = (MT)((1u << (rem - nv * L)) - 1u);                                      \
            const T* bb = b + j0;                                                           \
            M b0, b1, b2, b3, b4, b5, b6, b7, bt;                                           \
            NN_LOAD_BLOCK(SUF, bb, nv, mk, b0, b1, b2, b3, b4, b5, b6, b7, bt);             \
            Py_ssize_t ks = mk && ldc > 0 ? ((nv + 1) * L + ldc - 1) / ldc : 1, ph;         \
            if (nv == 0) {      /* a narrow layer: the masked vector alone, no tests */     \
                for (ph = 0; ph < ks; ph++)                                                 \
                for (q = ph; q < cnt; q += ks) {                                            \
                    T* c = C + idx[q] * ldc + j0;                                           \
                    _mm512_mask_storeu_##SUF(c, mk, _mm512_fmadd_##SUF(                     \
                        _mm512_set1_##SUF(s[q]), bt, _mm512_maskz_loadu_##SUF(mk, c)));     \
                }                                                                           \
                continue;                                                                   \
            }                                                                               \
            for (ph = 0; ph < ks; ph++)                                                     \
            for (q = ph; q < cnt; q += ks) {                                                \
                T* c = C + idx[q] * ldc + j0;                                               \
                M t = _mm512_set1_##SUF(s[q]);                                              \
                NN_ADD_ROW(SUF, c, 0, t, b0);                                               \
                NN_ADD_ROW(SUF, c, 1, t, b1);                                               \
                NN_ADD_ROW(SUF, c, 2, t, b2);                                               \
                NN_ADD_ROW(SUF, c, 3, t, b3);                                               \
                NN_ADD_ROW(SUF, c, 4, t, b4);                                               \
                NN_ADD_ROW(SUF, c, 5, t, b5);                                               \
                NN_ADD_ROW(SUF, c, 6, t, b6);                                               \
                NN_ADD_ROW(SUF, c, 7, t, b7);                                               \
                if (mk) _mm512_mask_storeu_##SUF(c + nv * L, mk, _mm512_fmadd_##SUF(        \
                    t, bt, _mm512_maskz_loadu_##SUF(mk, c + nv * L)));                      \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

NN_RANK1(nn_rank1_f, float, ps, __m512, __mmask16, nn_compact_f)
NN_RANK1(nn_rank1_d, double, pd, __m512d, __mmask8, nn_compact_d)

#else
/* elsewhere: a block of up to 8 vectors of b, a half vector and at most three single
   columns held in registers (as in nn_axpys_blocks) while each nonzero row of the block
   gets its update; every store stays inside its row. */
#define NN_RANK1(NAME, T, V, VH, CNAME, FMA)                                                \
static inline void NAME(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,           \
                        Py_ssize_t lda, const T* restrict b, T* restrict C,                 \
                        Py_ssize_t ldc)                                                     \
{                                                                                           \
    enum { L = sizeof(V) / sizeof(T), LH = sizeof(VH) / sizeof(T) };                        \
    const V z = {0};                                                                        \
    const VH zh = {0};                                                                      \
    Py_ssize_t idx[64];                                                                     \
    T s[64];                                                                                \
    Py_ssize_t r0, q, cnt, j0;                                                              \
    for (r0 = 0; r0 < m; r0 += 64) {                                                        \
        Py_ssize_t r1 = m - r0 < 64 ? m : r0 + 64;                                          \
        cnt = CNAME(a, lda, r0, r1, alpha, idx, s);                                         \
        for (j0 = 0; j0 < n && cnt > 0; j0 += 8 * L) {                                      \
            Py_ssize_t rem = n - j0 < 8 * L ? n - j0 : 8 * L;                               \
            int nv = (int)(rem / L), nh = rem % L >= LH;                                    \
            int e = nv * L + nh * LH, nt = (int)rem - e;                                    \
            const T* bb = b + j0;                                                           \
            V b0, b1, b2, b3, b4, b5, b6, b7;                                               \
            VH bh;                                                                          \
            T u0, u1, u2;                                                                   \
            NN_VLOAD_BLOCK(V, VH, bb, b0, b1, b2, b3, b4, b5, b6, b7, bh, u0, u1, u2);      \
            for (q = 0; q < cnt; q++) {                                                     \
                T* c = C + idx[q] * ldc + j0;                                               \
                T t = s[q];                                                                 \
                if (nv > 0) NN_STORE(c, NN_LOAD(V, c) + t * b0);                            \
                if (nv > 1) NN_STORE(c + L, NN_LOAD(V, c + L) + t * b1);                    \
                if (nv > 2) NN_STORE(c + 2 * L, NN_LOAD(V, c + 2 * L) + t * b2);            \
                if (nv > 3) NN_STORE(c + 3 * L, NN_LOAD(V, c + 3 * L) + t * b3);            \
                if (nv > 4) NN_STORE(c + 4 * L, NN_LOAD(V, c + 4 * L) + t * b4);            \
                if (nv > 5) NN_STORE(c + 5 * L, NN_LOAD(V, c + 5 * L) + t * b5);            \
                if (nv > 6) NN_STORE(c + 6 * L, NN_LOAD(V, c + 6 * L) + t * b6);            \
                if (nv > 7) NN_STORE(c + 7 * L, NN_LOAD(V, c + 7 * L) + t * b7);            \
                if (nh) NN_STORE(c + nv * L, NN_LOAD(VH, c + nv * L) + t * bh);             \
                if (nt > 0) c[e] = FMA(t, u0, c[e]);                                        \
                if (nt > 1) c[e + 1] = FMA(t, u1, c[e + 1]);                                \
                if (nt > 2) c[e + 2] = FMA(t, u2, c[e + 2]);                                \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

NN_RANK1(nn_rank1_f, float, nn_vf, nn_vhf, nn_compact_f, NN_FMA_F)
NN_RANK1(nn_rank1_d, double, nn_vd, nn_vhd, nn_compact_d, NN_FMA_D)
#endif

/* nn_rank1_axpys_{f,d}(m, n, alpha, a, b, W, ldw, x, c): the batch-1 weight step of a
 * first layer and the next sample's product with the weights it makes, in one pass:
 *     W[i ldw + j] <- W[i ldw + j] + (alpha a[i]) b[j] for i < m with a[i] != 0
 *     c[j] <- sum over i < m with x[i] != 0 of x[i] W[i ldw + j] (the new W), from 0
 * that is nn_rank1 (lda = 1) followed by nn_row_axpys into a zeroed c, with the same
 * operations in the same order: a row of W is read once for both. NN_FUSED_MAX_COLS(T):
 * the widest n it takes (the row of c and of b in registers); 0 where it would not be
 * faster than the two calls it stands for (no AVX-512; it is then those two calls).
 * Without AVX-512's per-row masks the pass saves nothing: a row whose step coefficient is
 * zero must be left as it is (w + 0 b turns -0 into +0) and a row whose product
 * coefficient is zero must stay out of the sum, so each vector takes a blend (on Zen 1
 * in the FMA ports) or a reload of the stored row, and the rows with one coefficient
 * zero are visited too; either makes more operations than the two passes' loads and
 * multiply-adds. */
#if defined(__AVX512F__)
#define NN_FUSED_MAX_COLS(T) (8 * (Py_ssize_t)(64 / sizeof(T)))
/* The rows i in [i0, i1) (at most 64) where a[i] or x[i] is nonzero: i into idx[],
   alpha a[i] and x[i] into su[] and sf[], and each test as a mask of all lanes or none
   (-1 or 0) into ku[] and kf[], packed a vector at a time as in nn_compact; the count. */
static inline Py_ssize_t nn_compact2_f(const float* restrict a, const float* restrict x,
                                       Py_ssize_t i0, Py_ssize_t i1, float alpha,
                                       Py_ssize_t* restrict idx, float* restrict su,
                                       float* restrict sf, int* restrict ku,
                                       int* restrict kf)
{
    Py_ssize_t i, cnt = 0;
    const __m512 al = _mm512_set1_ps(alpha);
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i ones = _mm512_set1_epi32(-1);
    for (i = i0; i < i1; i += 16) {
        __mmask16 in = (__mmask16)(i1 - i >= 16 ? 0xffffu : (1u << (i1 - i)) - 1u);
        __m512 va = _mm512_maskz_loadu_ps(in, a + i), vx = _mm512_maskz_loadu_ps(in, x + i);
        __mmask16 ka = NN_NONZERO_PS(in, va), kx = NN_NONZERO_PS(in, vx), k = ka | kx;
        __m512i at = _mm512_add_epi64(_mm512_set1_epi64(i), lanes);
        int nlo = __builtin_popcount(k & 0xffu);
        _mm512_storeu_ps(su + cnt, _mm512_maskz_compress_ps(k, _mm512_mul_ps(al, va)));
        _mm512_storeu_ps(sf + cnt, _mm512_maskz_compress_ps(k, vx));
        _mm512_storeu_si512(ku + cnt, _mm512_maskz_compress_epi32(
            k, _mm512_maskz_mov_epi32(ka, ones)));
        _mm512_storeu_si512(kf + cnt, _mm512_maskz_compress_epi32(
            k, _mm512_maskz_mov_epi32(kx, ones)));
        _mm512_storeu_si512(idx + cnt, _mm512_maskz_compress_epi64((__mmask8)k, at));
        _mm512_storeu_si512(idx + cnt + nlo, _mm512_maskz_compress_epi64(
            (__mmask8)(k >> 8), _mm512_add_epi64(at, _mm512_set1_epi64(8))));
        cnt += __builtin_popcount(k);
    }
    return cnt;
}
static inline Py_ssize_t nn_compact2_d(const double* restrict a, const double* restrict x,
                                       Py_ssize_t i0, Py_ssize_t i1, double alpha,
                                       Py_ssize_t* restrict idx, double* restrict su,
                                       double* restrict sf, long long* restrict ku,
                                       long long* restrict kf)
{
    Py_ssize_t i, cnt = 0;
    const __m512d al = _mm512_set1_pd(alpha);
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i ones = _mm512_set1_epi64(-1);
    for (i = i0; i < i1; i += 8) {
        __mmask8 in = (__mmask8)(i1 - i >= 8 ? 0xffu : (1u << (i1 - i)) - 1u);
        __m512d va = _mm512_maskz_loadu_pd(in, a + i), vx = _mm512_maskz_loadu_pd(in, x + i);
        __mmask8 ka = NN_NONZERO_PD(in, va), kx = NN_NONZERO_PD(in, vx), k = ka | kx;
        _mm512_storeu_pd(su + cnt, _mm512_maskz_compress_pd(k, _mm512_mul_pd(al, va)));
        _mm512_storeu_pd(sf + cnt, _mm512_maskz_compress_pd(k, vx));
        _mm512_storeu_si512(ku + cnt, _mm512_maskz_compress_epi64(
            k, _mm512_maskz_mov_epi64(ka, ones)));
        _mm512_storeu_si512(kf + cnt, _mm512_maskz_compress_epi64(
            k, _mm512_maskz_mov_epi64(kx, ones)));
        _mm512_storeu_si512(idx + cnt, _mm512_maskz_compress_epi64(
            k, _mm512_add_epi64(_mm512_set1_epi64(i), lanes)));
        cnt += __builtin_popcount(k);
    }
    return cnt;
}

/* the rows where either coefficient is nonzero (nn_compact2); each row's
   update and product masked by its own coefficient's test (all lanes or none), so a
   zero coefficient adds nothing, as the skipped term of the two calls. The columns left
   over after the full vectors are, in a row at least a vector wide whose stride leaves
   no room for a whole vector past its end, the top lanes of the vector that ends at the
   row's end (jt = n - L): a masked store there stays inside the row, where one at nv L
   would span the start of the next row, and the next row's loads would then wait for it
   to reach the cache (a load overlapping a masked store in flight is not forwarded).
   Rows padded to whole lines (ldw >= (nv + 1) L: the training loop's padded copy of
   W_0) take them as the low lanes of the vector at nv L, which starts a line. For the
   same reason every vector of a row is loaded before any of its stores. The body is
   inlined once per vector count nv (0 .. 8: the callers pass n <= NN_FUSED_MAX_COLS;
   a wider row takes the two calls the pass stands for), so the tests on nv compile
   away: with nv a variable they were 8 compare-and-branch pairs per row, a third of the
   pass's instructions on the digits net's W_0 (6 vectors and a masked one). */
#define NN_RANK1_AXPYS(NAME, T, SUF, M, MT, KT, COMPACT2, RANK1, AXPYS)                     \
static inline __attribute__((always_inline)) void                                           \
NAME##_nv(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,                         \
          const T* restrict b, T* restrict W, Py_ssize_t ldw, const T* restrict x,          \
          T* restrict c, const int nv)                                                      \
{                                                                                           \
    enum { L = 64 / sizeof(T) };                                                            \
    Py_ssize_t idx[64];                                                                     \
    T su[64], sf[64];                                                                       \
    KT ku[64], kf[64];                                                                      \
    Py_ssize_t r0, q, cnt;                                                                  \
    int nr = (int)(n - nv * L);                                                             \
    int in_row = nv > 0 && nr > 0 && ldw < (nv + 1) * L;   /* no room past the row */      \
    Py_ssize_t jt = in_row ? n - L : nv * L;                                                \
    MT mt = nr == 0 ? (MT)0 : in_row ? (MT)(~0u << (L - nr)) : (MT)((1u << nr) - 1u);      \
    M b0, b1, b2, b3, b4, b5, b6, b7, bt;                                                   \
    M c0 = _mm512_setzero_##SUF(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;             \
    M c6 = c0, c7 = c0, ct = c0;                                                            \
    NN_LOAD_BLOCK(SUF, b, nv, 0, b0, b1, b2, b3, b4, b5, b6, b7, bt);                       \
    bt = _mm512_maskz_loadu_##SUF(mt, b + jt);                                              \
    for (r0 = 0; r0 < m; r0 += 64) {                                                        \
        Py_ssize_t r1 = m - r0 < 64 ? m : r0 + 64;                                          \
        cnt = COMPACT2(a, x, r0, r1, alpha, idx, su, sf, ku, kf);                           \
        for (q = 0; q < cnt; q++) {                                                         \
            T* w = W + idx[q] * ldw;                                                        \
            M s = _mm512_set1_##SUF(su[q]), t = _mm512_set1_##SUF(sf[q]);                  \
            M w0, w1, w2, w3, w4, w5, w6, w7, wt;                                           \
            MT u = (MT)ku[q], f = (MT)kf[q];                                                \
            NN_LOAD_BLOCK(SUF, w, nv, 0, w0, w1, w2, w3, w4, w5, w6, w7, wt);               \
            wt = _mm512_maskz_loadu_##SUF(mt, w + jt);                                      \
            NN_STEP_ROW(SUF, 0, b0, c0, w0);                                                \
            NN_STEP_ROW(SUF, 1, b1, c1, w1);                                                \
            NN_STEP_ROW(SUF, 2, b2, c2, w2);                                                \
            NN_STEP_ROW(SUF, 3, b3, c3, w3);                                                \
            NN_STEP_ROW(SUF, 4, b4, c4, w4);                                                \
            NN_STEP_ROW(SUF, 5, b5, c5, w5);                                                \
            NN_STEP_ROW(SUF, 6, b6, c6, w6);                                                \
            NN_STEP_ROW(SUF, 7, b7, c7, w7);                                                \
            if (mt) {                                                                       \
                wt = _mm512_mask3_fmadd_##SUF(s, bt, wt, u);                                \
                _mm512_mask_storeu_##SUF(w + jt, u & mt, wt);                               \
                ct = _mm512_mask3_fmadd_##SUF(t, wt, ct, f);                                \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    NN_STORE_BLOCK(SUF, c, nv, 0, c0, c1, c2, c3, c4, c5, c6, c7, ct);                      \
    _mm512_mask_storeu_##SUF(c + jt, mt, ct);                                               \
}                                                                                           \
static inline void NAME(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict b, T* restrict W, Py_ssize_t ldw,                 \
                        const T* restrict x, T* restrict c)                                 \
{                                                                                           \
    switch ((int)(n / (64 / sizeof(T)))) {                                                  \
    case 0: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 0); break;                           \
    case 1: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 1); break;                           \
    case 2: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 2); break;                           \
    case 3: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 3); break;                           \
    case 4: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 4); break;                           \
    case 5: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 5); break;                           \
    case 6: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 6); break;                           \
    case 7: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 7); break;                           \
    case 8: NAME##_nv(m, n, alpha, a, b, W, ldw, x, c, 8); break;                           \
    default:   /* wider than the registers hold: the two calls the pass stands for */      \
        RANK1(m, n, alpha, a, 1, b, W, ldw);                                                \
        memset(c, 0, (size_t)n * sizeof(T));                                                \
        AXPYS(m, n, (T)1, x, W, ldw, c);                                                    \
    }                                                                                       \
}
/* vector V of a row (loaded as wv): its update (where u) stored, then added to the
   product (where f) */
#define NN_STEP_ROW(SUF, V, bv, cv, wv)                                                     \
    if (nv > V) {                                                                           \
        wv = _mm512_mask3_fmadd_##SUF(s, bv, wv, u);                                        \
        _mm512_mask_storeu_##SUF(w + V * L, u, wv);                                         \
        cv = _mm512_mask3_fmadd_##SUF(t, wv, cv, f);                                        \
    }

NN_RANK1_AXPYS(nn_rank1_axpys_f, float, ps, __m512, __mmask16, int, nn_compact2_f,
               nn_rank1_f, nn_row_axpys_f)
NN_RANK1_AXPYS(nn_rank1_axpys_d, double, pd, __m512d, __mmask8, long long, nn_compact2_d,
               nn_rank1_d, nn_row_axpys_d)

#else
#define NN_FUSED_MAX_COLS(T) ((Py_ssize_t)0)
#define NN_RANK1_AXPYS(NAME, T, RANK1, AXPYS)                                               \
static inline void NAME(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict b, T* restrict W, Py_ssize_t ldw,                 \
                        const T* restrict x, T* restrict c)                                 \
{                                                                                           \
    RANK1(m, n, alpha, a, 1, b, W, ldw);                                                    \
    memset(c, 0, (size_t)n * sizeof(T));                                                    \
    AXPYS(m, n, (T)1, x, W, ldw, c);                                                        \
}

NN_RANK1_AXPYS(nn_rank1_axpys_f, float, nn_rank1_f, nn_row_axpys_f)
NN_RANK1_AXPYS(nn_rank1_axpys_d, double, nn_rank1_d, nn_row_axpys_d)
#endif
static const Py_ssize_t NN_FUSED_MAX_COLS_F = NN_FUSED_MAX_COLS(float);
static const Py_ssize_t NN_FUSED_MAX_COLS_D = NN_FUSED_MAX_COLS(double);

/* nn_row_dots_{f,d}(k, n, alpha, a, B, ldb, c): c[j] += alpha (a . B[j, :k]), each dot
   product in four accumulators over p mod 4 (the remainder into the first).
   nn_col_dots_{f,d}(k, n, alpha, a, BT, ldb, c): the same with B given transposed, BT
   (k, ldb) row-major, c[j] += alpha (a . BT[:k, j]): the same chains, bitwise, with
   column p of a block of rows one contiguous load instead of a gather. RS and CS are
   the strides between rows j and between columns p of B. */
#define NN_ROW_DOTS(NAME, T, FMA, RS, CS)                                                   \
static inline void NAME(Py_ssize_t k, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict B, Py_ssize_t ldb, T* restrict c)                 \
{                                                                                           \
    Py_ssize_t j, p;                                                                        \
    for (j = 0; j < n; j++) {                                                               \
        const T* b = B + j * (RS);                                                          \
        T acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;                                           \
        for (p = 0; p + 4 <= k; p += 4) {                                                   \
            acc0 = FMA(a[p], b[p * (CS)], acc0);                                            \
            acc1 = FMA(a[p + 1], b[(p + 1) * (CS)], acc1);                                  \
            acc2 = FMA(a[p + 2], b[(p + 2) * (CS)], acc2);                                  \
            acc3 = FMA(a[p + 3], b[(p + 3) * (CS)], acc3);                                  \
        }                                                                                   \
        for (; p < k; p++) acc0 = FMA(a[p], b[p * (CS)], acc0);                             \
        c[j] = FMA(alpha, (acc0 + acc1) + (acc2 + acc3), c[j]);                             \
    }                                                                                       \
}

#if defined(__AVX512F__)
NN_ROW_DOTS(nn_row_dots_loop_f, float, NN_FMA_F, ldb, 1)
NN_ROW_DOTS(nn_row_dots_loop_d, double, NN_FMA_D, ldb, 1)
NN_ROW_DOTS(nn_col_dots_loop_f, float, NN_FMA_F, 1, ldb)
NN_ROW_DOTS(nn_col_dots_loop_d, double, NN_FMA_D, 1, ldb)

/* AVX-512: the dot products of a vector of rows of B at once, column p of those rows
   gathered (the rows are ldb apart) so that each lane runs the scalar loop's chains, in
   its order: a short row (the digits net's dZ W^T, 100 rows of 10) is otherwise a
   scalar chain of a few fused multiply-adds per row. Fewer rows than half a vector stay
   in the loop (a gather costs about as much however many lanes it fills), and so do
   rows too far apart for an int offset. */
#define NN_ROW_DOTS_GATHER(NAME, T, SUF, M, MT, IDX, IDXSET, GATHER, GATHER4, LOOP, RS, CS) \
static inline void NAME(Py_ssize_t k, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict B, Py_ssize_t ldb, T* restrict c)                 \
{                                                                                           \
    enum { L = 64 / sizeof(T) };                                                            \
    Py_ssize_t j0, p;                                                                       \
    if (n < L / 2 || k < 1 || (L - 1) * ldb > 0x7fffffff) {                                \
        LOOP(k, n, alpha, a, B, ldb, c);                                                    \
        return;                                                                             \
    }                                                                                       \
    const M z = _mm512_setzero_##SUF(), al = _mm512_set1_##SUF(alpha);                      \
    IDX off = IDXSET;                                                                       \
    (void)off;                                                                              \
    for (j0 = 0; j0 < n; j0 += L) {                                                         \
        MT mk = (MT)(n - j0 >= L ? (MT)~0u : (MT)((1u << (n - j0)) - 1u));                  \
        M acc0 = z, acc1 = z, acc2 = z, acc3 = z;                                           \
        const T* bj = B + j0 * (RS);                                                        \
        for (p = 0; p + 4 <= k; p += 4) {                                                   \
            M g0, g1, g2, g3;                                                               \
            GATHER4(bj + p * (CS), g0, g1, g2, g3);                                         \
            acc0 = _mm512_fmadd_##SUF(_mm512_set1_##SUF(a[p]), g0, acc0);                   \
            acc1 = _mm512_fmadd_##SUF(_mm512_set1_##SUF(a[p + 1]), g1, acc1);               \
            acc2 = _mm512_fmadd_##SUF(_mm512_set1_##SUF(a[p + 2]), g2, acc2);               \
            acc3 = _mm512_fmadd_##SUF(_mm512_set1_##SUF(a[p + 3]), g3, acc3);               \
        }                                                                                   \
        for (; p < k; p++)                                                                  \
            acc0 = _mm512_fmadd_##SUF(_mm512_set1_##SUF(a[p]), GATHER(bj + p * (CS)), acc0); \
        M sum = _mm512_add_##SUF(_mm512_add_##SUF(acc0, acc1),                              \
                                 _mm512_add_##SUF(acc2, acc3));                             \
        _mm512_mask_storeu_##SUF(c + j0, mk, _mm512_fmadd_##SUF(                            \
            al, sum, _mm512_maskz_loadu_##SUF(mk, c + j0)));                                \
    }                                                                                       \
}

/* lane l of a gather reads row j0 + l (masked lanes read nothing) */
#define NN_GATHER_F(ptr) _mm512_mask_i32gather_ps(z, mk, off, (ptr), 4)
#define NN_GATHER_D(ptr) _mm512_mask_i32gather_pd(z, mk, off, (ptr), 8)
/* float: columns p and p + 1 of 16 rows as two gathers of 8 pairs (a gather's cost goes
   with its element count, so 16 pairs cost about what 16 single columns do), split into
   the two columns by a permute each: lane l of a column is again row j0 + l. The second
   half's rows are read only where the block has them. */
#define NN_GATHER_PAIR_F(ptr, ge, go)                                                       \
    do {                                                                                    \
        const __m512d zd_ = _mm512_setzero_pd();                                            \
        __m512 lo_ = _mm512_castpd_ps(_mm512_mask_i32gather_pd(                             \
            zd_, (__mmask8)mk, off8, (const void*)(ptr), 4));                               \
        __m512 hi_ = (mk >> 8) ? _mm512_castpd_ps(_mm512_mask_i32gather_pd(                 \
            zd_, (__mmask8)(mk >> 8), off8, (const void*)((ptr) + 8 * ldb), 4)) : z;        \
        ge = _mm512_permutex2var_ps(lo_, even, hi_);                                        \
        go = _mm512_permutex2var_ps(lo_, _mm512_add_epi32(even, one), hi_);                 \
    } while (0)
#define NN_GATHER4_F(ptr, g0, g1, g2, g3)                                                   \
    do { NN_GATHER_PAIR_F(ptr, g0, g1); NN_GATHER_PAIR_F((ptr) + 2, g2, g3); } while (0)
#define NN_GATHER4_D(ptr, g0, g1, g2, g3)                                                   \
    do {                                                                                    \
        g0 = NN_GATHER_D(ptr); g1 = NN_GATHER_D((ptr) + 1);                                 \
        g2 = NN_GATHER_D((ptr) + 2); g3 = NN_GATHER_D((ptr) + 3);                           \
    } while (0)
#define NN_ROW_DOTS_F_SETUP                                                                 \
    _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, \
                                         15), _mm512_set1_epi32((int)ldb));                 \
    const __m256i off8 = _mm512_castsi512_si256(off);                                       \
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,  \
                                           26, 28, 30), one = _mm512_set1_epi32(1)
NN_ROW_DOTS_GATHER(nn_row_dots_f, float, ps, __m512, __mmask16, __m512i,
                   NN_ROW_DOTS_F_SETUP, NN_GATHER_F, NN_GATHER4_F, nn_row_dots_loop_f, ldb, 1)
NN_ROW_DOTS_GATHER(nn_row_dots_d, double, pd, __m512d, __mmask8, __m256i,
                   _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                      _mm256_set1_epi32((int)ldb)),
                   NN_GATHER_D, NN_GATHER4_D, nn_row_dots_loop_d, ldb, 1)
/* transposed B: column p of rows j0.. is the contiguous BT[p, j0:], a masked load */
#define NN_COLUMN_F(ptr) _mm512_maskz_loadu_ps(mk, (ptr))
#define NN_COLUMN_D(ptr) _mm512_maskz_loadu_pd(mk, (ptr))
#define NN_COLUMN4(LOAD, ptr, g0, g1, g2, g3)                                               \
    do {                                                                                    \
        g0 = LOAD(ptr); g1 = LOAD((ptr) + ldb);                                             \
        g2 = LOAD((ptr) + 2 * ldb); g3 = LOAD((ptr) + 3 * ldb);                             \
    } while (0)
#define NN_COLUMN4_F(ptr, g0, g1, g2, g3) NN_COLUMN4(NN_COLUMN_F, ptr, g0, g1, g2, g3)
#define NN_COLUMN4_D(ptr, g0, g1, g2, g3) NN_COLUMN4(NN_COLUMN_D, ptr, g0, g1, g2, g3)
NN_ROW_DOTS_GATHER(nn_col_dots_f, float, ps, __m512, __mmask16, int, 0, NN_COLUMN_F,
                   NN_COLUMN4_F, nn_col_dots_loop_f, 1, ldb)
NN_ROW_DOTS_GATHER(nn_col_dots_d, double, pd, __m512d, __mmask8, int, 0, NN_COLUMN_D,
                   NN_COLUMN4_D, nn_col_dots_loop_d, 1, ldb)
#else
NN_ROW_DOTS(nn_row_dots_f, float, NN_FMA_F, ldb, 1)
NN_ROW_DOTS(nn_row_dots_d, double, NN_FMA_D, ldb, 1)
NN_ROW_DOTS(nn_col_dots_loop_f, float, NN_FMA_F, 1, ldb)
NN_ROW_DOTS(nn_col_dots_loop_d, double, NN_FMA_D, 1, ldb)

/* elsewhere: the dot products of a vector of columns of BT at once, each lane the loop's
   chains in its order (column p of the block one contiguous load); the columns left over
   after the last whole vector in the loop. */
#define NN_COL_DOTS(NAME, T, V, LOOP)                                                       \
static inline void NAME(Py_ssize_t k, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict BT, Py_ssize_t ldb, T* restrict c)                \
{                                                                                           \
    enum { L = sizeof(V) / sizeof(T) };                                                     \
    Py_ssize_t j0, p;                                                                       \
    for (j0 = 0; j0 + L <= n; j0 += L) {                                                    \
        V acc0 = {0}, acc1 = acc0, acc2 = acc0, acc3 = acc0;                                \
        const T* bj = BT + j0;                                                              \
        for (p = 0; p + 4 <= k; p += 4) {                                                   \
            acc0 = acc0 + a[p] * NN_LOAD(V, bj + p * ldb);                                  \
            acc1 = acc1 + a[p + 1] * NN_LOAD(V, bj + (p + 1) * ldb);                        \
            acc2 = acc2 + a[p + 2] * NN_LOAD(V, bj + (p + 2) * ldb);                        \
            acc3 = acc3 + a[p + 3] * NN_LOAD(V, bj + (p + 3) * ldb);                        \
        }                                                                                   \
        for (; p < k; p++) acc0 = acc0 + a[p] * NN_LOAD(V, bj + p * ldb);                   \
        NN_STORE(c + j0, NN_LOAD(V, c + j0) + alpha * ((acc0 + acc1) + (acc2 + acc3)));     \
    }                                                                                       \
    if (j0 < n)                                                                             \
        LOOP(k, n - j0, alpha, a, BT + j0, ldb, c + j0);                                    \
}
NN_COL_DOTS(nn_col_dots_f, float, nn_vf, nn_col_dots_loop_f)
NN_COL_DOTS(nn_col_dots_d, double, nn_vd, nn_col_dots_loop_d)
#endif

/* nn_rank1_t_{f,d}(m, n, alpha, a, b, CT, ldc): nn_rank1 (lda = 1) on a transposed copy,
 *     CT[j ldc + i] <- CT[j ldc + i] + (alpha a[i]) b[j] for i < m with a[i] != 0
 * each element by nn_rank1's one operation (alpha a[i] rounded once, then a fused
 * multiply-add), so the copy stays bitwise the transpose of the weights nn_rank1 steps.
 * A row of CT is contiguous in i: the test on a[i] is a mask, the row a few vectors. */
#define NN_RANK1_T(NAME, T, FMA)                                                            \
static inline void NAME(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict b, T* restrict CT, Py_ssize_t ldc)                \
{                                                                                           \
    Py_ssize_t i, j;                                                                        \
    for (j = 0; j < n; j++) {                                                               \
        T* restrict c = CT + j * ldc;                                                       \
        const T bj = b[j];                                                                  \
        for (i = 0; i < m; i++) {                                                           \
            T t = FMA(alpha * a[i], bj, c[i]);                                              \
            c[i] = a[i] != 0 ? t : c[i];                                                    \
        }                                                                                   \
    }                                                                                       \
}

#if defined(__AVX512F__)
/* AVX-512: a vector of the a[i] at a time, its products alpha a[i] and its test a[i] != 0
   (a mask: NaN counts as nonzero, as in the loop) formed once for all n rows of CT; each
   row's vector then one fused multiply-add and a masked store. The loop above forms the
   product and the test again for every row of CT, and stores every element. */
#define NN_RANK1_T_AVX512(NAME, T, SUF, M, MT, NONZERO)                                    \
static inline void NAME(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict b, T* restrict CT, Py_ssize_t ldc)                \
{                                                                                           \
    enum { L = 64 / sizeof(T) };                                                            \
    const M al = _mm512_set1_##SUF(alpha);                                                  \
    Py_ssize_t i0, j;                                                                       \
    for (i0 = 0; i0 < m; i0 += L) {                                                         \
        MT in = (MT)(m - i0 >= L ? (MT)~0u : (MT)((1u << (m - i0)) - 1u));                  \
        M av = _mm512_maskz_loadu_##SUF(in, a + i0);                                        \
        MT k = NONZERO(in, av);                                                             \
        M s = _mm512_mul_##SUF(al, av);                                                     \
        if (!k)                                                                             \
            continue;                                                                       \
        for (j = 0; j < n; j++) {                                                           \
            T* c = CT + j * ldc + i0;                                                       \
            _mm512_mask_storeu_##SUF(c, k, _mm512_fmadd_##SUF(                              \
                s, _mm512_set1_##SUF(b[j]), _mm512_maskz_loadu_##SUF(k, c)));              \
        }                                                                                   \
    }                                                                                       \
}
NN_RANK1_T_AVX512(nn_rank1_t_f, float, ps, __m512, __mmask16, NN_NONZERO_PS)
NN_RANK1_T_AVX512(nn_rank1_t_d, double, pd, __m512d, __mmask8, NN_NONZERO_PD)
#else
NN_RANK1_T(nn_rank1_t_loop_f, float, NN_FMA_F)
NN_RANK1_T(nn_rank1_t_loop_d, double, NN_FMA_D)

/* elsewhere: a vector of the a[i] at a time (then a half vector, then the loop above on
   the rows' last few elements), its products and its test formed once for all n rows of
   CT, each row's vector one multiply-add blended by the test into the old values. The
   loop above compiles to a branch per element, on ReLU's zero pattern: it mispredicts. */
#define NN_BLEND(M, k, t, c) ((__typeof__(c))(((M)(t) & (k)) | ((M)(c) & ~(k))))
/* elements i0 .. i0 + (lanes of V) of the n rows of CT, one vector each */
#define NN_RANK1_T_BLOCK(T, V, M, zv)                                                       \
    do {                                                                                    \
        V av = NN_LOAD(V, a + i0), s = alpha * av;                                          \
        M k = av != zv;                                                                     \
        for (j = 0; j < n; j++) {                                                           \
            T* c = CT + j * ldc + i0;                                                       \
            V cv = NN_LOAD(V, c);                                                           \
            NN_STORE(c, NN_BLEND(M, k, cv + s * b[j], cv));                                 \
        }                                                                                   \
    } while (0)
#define NN_RANK1_T_V(NAME, T, V, VH, M, MH, LOOP)                                           \
static inline void NAME(Py_ssize_t m, Py_ssize_t n, T alpha, const T* restrict a,           \
                        const T* restrict b, T* restrict CT, Py_ssize_t ldc)                \
{                                                                                           \
    enum { L = sizeof(V) / sizeof(T), LH = sizeof(VH) / sizeof(T) };                        \
    const V z = {0};                                                                        \
    const VH zh = {0};                                                                      \
    Py_ssize_t i0, j;                                                                       \
    for (i0 = 0; i0 + L <= m; i0 += L)                                                      \
        NN_RANK1_T_BLOCK(T, V, M, z);                                                       \
    if (i0 + LH <= m && LH < L) {                                                           \
        NN_RANK1_T_BLOCK(T, VH, MH, zh);                                                    \
        i0 += LH;                                                                           \
    }                                                                                       \
    if (i0 < m)                                                                             \
        LOOP(m - i0, n, alpha, a + i0, b, CT + i0, ldc);                                    \
}
NN_RANK1_T_V(nn_rank1_t_f, float, nn_vf, nn_vhf, nn_vmf, nn_vhmf, nn_rank1_t_loop_f)
NN_RANK1_T_V(nn_rank1_t_d, double, nn_vd, nn_vhd, nn_vmd, nn_vhmd, nn_rank1_t_loop_d)
#endif

#endif
