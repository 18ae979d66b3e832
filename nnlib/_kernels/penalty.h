/* The L2 penalty's sum of squares, in one fixed order every path of the epoch uses
 * (train.pyx's epoch loop, optim_rules.pxd's ``sum_squares_from`` and the sums the
 * single-threaded update forms beside itself, ``optim_update_sq``).
 *
 *   nn_sum_squares_{f,d}(s, a, n):
 *       s plus the squares of a[:n] in double, in the order below.
 *
 * The order. a[:n] is cut into blocks of NN_SQ_BLOCK = 64 values from index 0 (the last
 * may be short). A block's values go to NN_SQ_LANES = 16 lanes, value i of the block to
 * lane i % 16, each lane a running sum from 0 (l_k = l_k + a_i^2, fused where the target
 * has FMA); the lanes are then added pairwise, 16 -> 8 -> 4 -> 2 -> 1 (l_k + l_{k+8},
 * then l_k + l_{k+4}, l_k + l_{k+2}, l_0 + l_1), and the blocks' sums are added to s
 * one after the other. A caller that sums a[:n] in pieces of whole blocks from the
 * start (``optim_update_sq``'s chunks of NN_SQ_BLOCK) therefore gets the same bits as one
 * call over all of a[:n].
 *
 * Why this order. One running sum in index order is a chain of n dependent additions:
 * 3 cycles each (Zen 4), 30 000 cycles for a 100 x 100 layer at every step, a tenth of a
 * batch-32 scikit-learn SGD fit. Sixteen lanes are four vectors of doubles whose fused
 * multiply-adds do not wait on each other, a block's four rounds and its tree are short,
 * and the blocks' own chain is one addition per 64 values: the sum runs at the speed the
 * values load. The error bound shrinks with it: a value passes through at most 4 lane
 * additions, the 4 of the tree and n/64 block additions, so |error| <= (8 + n/64) u
 * sum a_i^2 to first order (Higham, "Accuracy and Stability of Numerical Algorithms",
 * 2nd ed., 4.2: each addition a value passes through adds u), where one running sum
 * has n u: still linear in n, 64 times smaller. In float32 the square of a float is exact in double, so the fused and the
 * rounded forms agree; in float64 a build without FMA (``NNLIB_NATIVE=0``) rounds each
 * square, and its last bits may differ from a native build's.
 */
#ifndef NNLIB_PENALTY_H
#define NNLIB_PENALTY_H

#define NN_SQ_BLOCK 64
#define NN_SQ_LANES 16

/* l + x^2: fused where the target has FMA (GCC contracts there anyway), else rounded;
 * NN_SQ_FUSED says which (the tests' model of the order reads it) */
#ifdef __FP_FAST_FMA
#define NN_SQ_FUSED 1
#define NN_SQ_ADD(x, l) __builtin_fma((x), (x), (l))
#else
#define NN_SQ_FUSED 0
#define NN_SQ_ADD(x, l) ((l) + (x) * (x))
#endif

/* One block of m <= NN_SQ_BLOCK values: the lanes, then their pairwise tree. The fixed
 * 16-wide inner loops are what GCC turns into vector FMAs (the lanes are independent,
 * so no addition is reordered to get there). */
#define NN_SQ_BLOCK_FN(NAME, T)                                                         \
static inline double NAME(const T* restrict a, Py_ssize_t m)                            \
{                                                                                       \
    double l[NN_SQ_LANES];                                                              \
    Py_ssize_t i = 0;                                                                   \
    int k;                                                                              \
    for (k = 0; k < NN_SQ_LANES; k++)                                                   \
        l[k] = 0.0;                                                                     \
    for (; i + NN_SQ_LANES <= m; i += NN_SQ_LANES)                                      \
        for (k = 0; k < NN_SQ_LANES; k++)                                               \
            l[k] = NN_SQ_ADD((double)a[i + k], l[k]);                                   \
    for (k = 0; i + k < m; k++)                                                         \
        l[k] = NN_SQ_ADD((double)a[i + k], l[k]);                                       \
    for (k = 0; k < 8; k++)                                                             \
        l[k] = l[k] + l[k + 8];                                                         \
    for (k = 0; k < 4; k++)                                                             \
        l[k] = l[k] + l[k + 4];                                                         \
    l[0] = l[0] + l[2];                                                                 \
    l[1] = l[1] + l[3];                                                                 \
    return l[0] + l[1];                                                                 \
}
NN_SQ_BLOCK_FN(nn_sq_block_d, double)
NN_SQ_BLOCK_FN(nn_sq_block_f, float)

#define NN_SUM_SQUARES_FN(NAME, BLOCK, T)                                               \
static inline double NAME(double s, const T* a, Py_ssize_t n)                           \
{                                                                                       \
    Py_ssize_t lo;                                                                      \
    for (lo = 0; lo < n; lo += NN_SQ_BLOCK)                                             \
        s = s + BLOCK(a + lo, n - lo < NN_SQ_BLOCK ? n - lo : NN_SQ_BLOCK);             \
    return s;                                                                           \
}
NN_SUM_SQUARES_FN(nn_sum_squares_d, nn_sq_block_d, double)
NN_SUM_SQUARES_FN(nn_sum_squares_f, nn_sq_block_f, float)

/* A step's reported loss and the epoch's running sum, in the operations GCC gives
 * epoch_loop's own lines for them (``loss + 0.5 l2 pen`` contracted to a fused
 * multiply-add where the target has FMA, ``total + loss B`` not): spelled out, so that
 * the reported loss does not depend on what GCC makes of the lines around them. */
static inline double nn_penalized(double loss, double half_l2, double pen)
{
#ifdef __FP_FAST_FMA
    return __builtin_fma(half_l2, pen, loss);
#else
    return loss + half_l2 * pen;
#endif
}

static inline double nn_add_weighted(double total, double loss, double weight)
{
    double q = loss * weight;
    __asm__("" : "+x"(q));
    return total + q;
}

#endif
