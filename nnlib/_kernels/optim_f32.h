/* optim_f32.h -- PyTorch's SGD, Adam and AdamW on float32 arrays with the float<->double
 * conversions written out: the float32 update of those rules wherever optim_rules'
 * explicit_f32 lets it through (the standalone step from optim_wide, the training epoch).
 *
 * Design note
 * -----------
 * optim_rules.pxd states every rule once: each float32 element is widened to double,
 * updated in double and rounded once on store. In SGD, momentum and nesterov the
 * conversions are most of the work (two or three widenings and one or two roundings
 * for one or two multiply-adds), and the loops GCC makes of them are bound by the
 * conversions and by the lane shuffles around them: a float vector loaded whole is
 * widened in halves (vextractf32x8 or vextractf128 of its upper half, then vcvtps2pd),
 * and two rounded halves are joined (vinsert*) before the store. At 512 bits that is 3
 * shuffles to 6 conversions per 16 elements of plain SGD, and on Zen 4 a 512-bit
 * shuffle or conversion takes two cycles. Here each widening reads its 4 floats from
 * memory (vcvtps2pd ymm, m128) and each rounding stores its 4 floats as they come
 * (vcvtpd2ps, then a 16-byte store): conversions and nothing else on those ports (in
 * L1, one thread: SGD 0.20 -> 0.12 ns per element, momentum 0.44 -> 0.29; the same
 * code at 512 bits 0.16 and 0.33). Float32 Adam and AdamW are below (their own note):
 * on AVX-512 a rewrite on 8 floats with the doubles in halves of 4 measured within 2 %
 * of GCC's loop; with the doubles in one 512-bit register it needs no shuffle and 30 %
 * less time (on AVX2 alone the halves of 4 take a quarter less than GCC's loop there).
 *
 * What bounds SGD and momentum is the conversions themselves, and no other way of
 * doing them measured faster (100k or 8k float32 elements, one thread, ns per element,
 * plain SGD / momentum): this loop 0.12-0.14 / 0.30; 8 elements per step (zmm from
 * memory) 0.165 / 0.35; unrolled 2 or 4 times 0.12 / 0.31; widening by integer
 * operations instead of vcvtps2pd (sign-extend, shift by 29, mask: the float times
 * 2^-896, exact, with lr and mu scaled by 2^896, and vfpclassps to send a block holding
 * an inf or NaN to the conversions) 0.196 / 0.45. So against PyTorch, whose float32
 * step does no conversion, this loop alone at 1e6 elements (no overflow check, no
 * Python) takes 141 / 315 us where torch.optim's whole step takes 122 / 294 us: with
 * the rule computed in double, nnlib/torch stays above 1 at that size even with a free
 * check (with the check: 198 / 418 us). On Zen 4 (one thread, a loop of independent
 * instructions) a widening from memory (vcvtps2pd ymm, m128) takes 0.5 cycles of the
 * conversion pipes, a widening of a register 0.73 and a rounding (vcvtpd2ps) 0.75, so
 * plain SGD's 2 + 1 per 4 elements cost 1.75 cycles (0.44 per element, 0.12 ns at 3.6
 * GHz), above the ~0.39 per element of PyTorch's float step at 1e6 elements, which
 * L3's bandwidth bounds. Computing the rule in float as torch does (lr rounded to
 * float, one fmaf: bitwise torch's, about 1 ulp from this rule) would not close the
 * gap: the overflow guard reads every gradient before the first write (a refused step
 * changes nothing; for plain SGD it reads g alone, see optim.pyx's _sgd_bound), and a
 * 4 MB gradient does not stay in L2, so g comes from L3 twice: 16 MB of traffic where
 * torch moves 12. C, 1e6 elements, thread CPU, pinned, medians of 201 (load ~2): the
 * fmaf loop alone 87 us, the check of g then that loop 128 us, against torch.optim's
 * whole step 117 us and its bare add_ 97 us; nnlib's step today 195 us. So float
 * arithmetic would take the ratio from ~1.67 to ~1.3 by changing every float32 SGD
 * result; the rule stays in double.
 * Momentum runs in blocks of NN_SGD_F32_BLOCK elements, two
 * passes each (nn_sgd_f32_momentum_blocked): the buffer's widening back then reads the
 * stored floats from memory instead of a register, and each pass keeps fewer values
 * live (1e6 elements, the kernel alone: 360-375 -> 277-292 us).
 *
 * The arithmetic is the generic loop's, operation for operation, as GCC contracts it
 * on an FMA target: the L2 term g + wd p is fma(wd, p, g), the momentum buffer
 * mu b + (1 - dampening) g is fma(mu, b, c g) with c g rounded first, nesterov's
 * g + mu b is fma(mu, b, g), and the step p - lr g is one fused multiply-subtract;
 * the buffer is stored as float and read back (PyTorch uses the stored buffer). So
 * every result is bitwise the generic loop's (tests/test_optim.py compares this
 * build with optim's generic one on finite and non-finite values at lengths around
 * every vector boundary). The tail (fewer than 4 elements) uses fma() with the same
 * operands. Only with AVX2 and FMA (NN_SGD_F32 is 0 otherwise: the generic loop
 * runs, and on a target without FMA it rounds products separately).
 *
 * On Zen 1 (AVX2 alone; a 256-bit operation is two 128-bit ones) this loop is no
 * faster than GCC's 256-bit one (optim_wide's build), which there widens after cheap
 * vextractf128s: one thread, ns per element, 8k / 1e6 float32 elements, GCC's loop and
 * this one: SGD 0.68 and 0.70 / 0.76 and 0.78, momentum 1.30 and 1.40 / 1.47 and 1.53.
 * Two halves of 4 per step, each stage for both before the next (as the Adam loop
 * below): SGD 0.60 / 0.71, momentum 1.37 / 1.49, still behind GCC's; left as it is.
 */
#ifndef NNLIB_OPTIM_F32_H
#define NNLIB_OPTIM_F32_H

#include <math.h>

/* Updates each module has sent to these loops (optim_rules' explicit_f32 counts one per
 * update call it lets through), and whether it lets any through (1; 0 sends every update
 * to the generic loop). Their results are bitwise the generic loop's, so nothing else
 * shows which loop ran: the tests read the count to see that the training epoch takes
 * them, and compare an epoch with the switch off (train._explicit_f32). One of each per
 * module (static); the count is added to atomically (an update may run on any thread). */
static Py_ssize_t nn_explicit_f32_updates = 0;
static int nn_explicit_f32_on = 1;

static inline void nn_count_explicit_f32(void)
{
    __atomic_fetch_add(&nn_explicit_f32_updates, 1, __ATOMIC_RELAXED);
}

static inline void nn_set_explicit_f32(int on) { nn_explicit_f32_on = on; }

#if defined(__AVX2__) && defined(__FMA__)
#define NN_SGD_F32 1
#include <immintrin.h>

/* Elements [lo, hi) of PyTorch's SGD step on float32 param, grad and (momentum)
 * buffer s; the flags are literals at every call (nn_sgd_f32_range), so each
 * combination is a loop of its own without a branch. */
static inline __attribute__((always_inline)) void
nn_sgd_f32_loop(float* p, const float* g, float* s, Py_ssize_t lo, Py_ssize_t hi,
                double lr, double wd, double mu, double damp, int has_wd, int momentum,
                int first, int nesterov)
{
    const __m256d LR = _mm256_set1_pd(lr), WD = _mm256_set1_pd(wd);
    const __m256d MU = _mm256_set1_pd(mu), C = _mm256_set1_pd(1.0 - damp);
    const double c = 1.0 - damp;
    Py_ssize_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        __m256d w = _mm256_cvtps_pd(_mm_loadu_ps(p + i));
        __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
        if (has_wd)
            d = _mm256_fmadd_pd(WD, w, d);                          /* g + wd p */
        if (momentum) {
            __m256d b;
            __m128 bf;
            if (first)
                b = d;                                              /* buffer = g */
            else
                b = _mm256_fmadd_pd(MU, _mm256_cvtps_pd(_mm_loadu_ps(s + i)),
                                    _mm256_mul_pd(C, d));           /* mu b + c g */
            bf = _mm256_cvtpd_ps(b);
            _mm_storeu_ps(s + i, bf);
            b = _mm256_cvtps_pd(bf);                                /* the stored buffer */
            d = nesterov ? _mm256_fmadd_pd(MU, b, d) : b;
        }
        _mm_storeu_ps(p + i, _mm256_cvtpd_ps(_mm256_fnmadd_pd(LR, d, w)));  /* p - lr g */
    }
    for (; i < hi; i++) {
        double w = p[i], d = g[i], b;
        if (has_wd)
            d = fma(wd, w, d);
        if (momentum) {
            b = first ? d : fma(mu, (double)s[i], c * d);
            s[i] = (float)b;
            b = s[i];
            d = nesterov ? fma(mu, b, d) : b;
        }
        p[i] = (float)fma(-lr, d, w);
    }
}

/* Elements per block of nn_sgd_f32_momentum_blocked (1 KiB of each array: the block's
 * buffer, stored by the first pass, is still in L1 for the second) */
#define NN_SGD_F32_BLOCK 256

/* nn_sgd_f32_loop with momentum, in blocks of NN_SGD_F32_BLOCK elements and two passes
 * over each: the first forms the buffer (mu b + c g, or g at the first step, with the L2
 * term) and stores it, the second widens the stored buffer from memory (vcvtps2pd ymm,
 * m128) and steps the param. The same operations on the same operands as the one-pass
 * loop, so the same bits; what changes is that the buffer's widening back reads memory
 * instead of a register (vcvtps2pd ymm, xmm measured 0.73 cycles against 0.52 from
 * memory here) and each pass keeps fewer values live. Only where the buffer is neither
 * the param nor the gradient (the second pass reads those after the first wrote the
 * buffer); nn_sgd_f32_range sends an aliased call to the one-pass loop. */
static inline __attribute__((always_inline)) void
nn_sgd_f32_momentum_blocked(float* p, const float* g, float* s, Py_ssize_t lo,
                            Py_ssize_t hi, double lr, double wd, double mu, double damp,
                            int has_wd, int first, int nesterov)
{
    const __m256d LR = _mm256_set1_pd(lr), WD = _mm256_set1_pd(wd);
    const __m256d MU = _mm256_set1_pd(mu), C = _mm256_set1_pd(1.0 - damp);
    const double c = 1.0 - damp;
    Py_ssize_t blo, bhi, i;
    for (blo = lo; blo < hi; blo = bhi) {
        bhi = hi - blo > NN_SGD_F32_BLOCK ? blo + NN_SGD_F32_BLOCK : hi;
        for (i = blo; i + 4 <= bhi; i += 4) {                       /* the buffer */
            __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(g + i)), b;
            if (has_wd)
                d = _mm256_fmadd_pd(WD, _mm256_cvtps_pd(_mm_loadu_ps(p + i)), d);
            if (first)
                b = d;                                              /* buffer = g */
            else
                b = _mm256_fmadd_pd(MU, _mm256_cvtps_pd(_mm_loadu_ps(s + i)),
                                    _mm256_mul_pd(C, d));           /* mu b + c g */
            _mm_storeu_ps(s + i, _mm256_cvtpd_ps(b));
        }
        for (; i < bhi; i++) {
            double d = g[i];
            if (has_wd)
                d = fma(wd, (double)p[i], d);
            s[i] = (float)(first ? d : fma(mu, (double)s[i], c * d));
        }
        for (i = blo; i + 4 <= bhi; i += 4) {                       /* the step */
            __m256d w = _mm256_cvtps_pd(_mm_loadu_ps(p + i));
            __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(s + i));       /* the stored buffer */
            if (nesterov) {
                __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(g + i));
                if (has_wd)
                    d = _mm256_fmadd_pd(WD, w, d);
                b = _mm256_fmadd_pd(MU, b, d);
            }
            _mm_storeu_ps(p + i, _mm256_cvtpd_ps(_mm256_fnmadd_pd(LR, b, w)));
        }
        for (; i < bhi; i++) {
            double w = p[i], b = s[i], d;
            if (nesterov) {
                d = g[i];
                if (has_wd)
                    d = fma(wd, w, d);
                b = fma(mu, b, d);
            }
            p[i] = (float)fma(-lr, b, w);
        }
    }
}

/* nn_sgd_f32_loop with each reachable flag combination as literals (nesterov and first
 * mean nothing without momentum); with momentum, nn_sgd_f32_momentum_blocked's two
 * passes where the buffer aliases neither other array (1e6 float32 elements, one
 * thread, a copy outside nnlib: 296 -> 276 us) */
static void
nn_sgd_f32_range(float* p, const float* g, float* s, Py_ssize_t lo, Py_ssize_t hi,
                 double lr, double wd, double mu, double damp, int has_wd, int momentum,
                 int first, int nesterov)
{
#define NN_SGD_F32_CALL(W, M, F, N) \
    nn_sgd_f32_loop(p, g, s, lo, hi, lr, wd, mu, damp, W, M, F, N)
#define NN_SGD_F32_TWO(W, F, N) \
    nn_sgd_f32_momentum_blocked(p, g, s, lo, hi, lr, wd, mu, damp, W, F, N)
#define NN_SGD_F32_MOMENTUM(W)                                                     \
    if (!momentum) NN_SGD_F32_CALL(W, 0, 0, 0);                                    \
    else if (s == p || s == g) {                                                   \
        if (first) { if (nesterov) NN_SGD_F32_CALL(W, 1, 1, 1);                    \
                     else NN_SGD_F32_CALL(W, 1, 1, 0); }                           \
        else { if (nesterov) NN_SGD_F32_CALL(W, 1, 0, 1);                          \
               else NN_SGD_F32_CALL(W, 1, 0, 0); } }                               \
    else if (first) { if (nesterov) NN_SGD_F32_TWO(W, 1, 1);                       \
                      else NN_SGD_F32_TWO(W, 1, 0); }                              \
    else { if (nesterov) NN_SGD_F32_TWO(W, 0, 1);                                  \
           else NN_SGD_F32_TWO(W, 0, 0); }
    if (has_wd) { NN_SGD_F32_MOMENTUM(1) }
    else { NN_SGD_F32_MOMENTUM(0) }
#undef NN_SGD_F32_MOMENTUM
#undef NN_SGD_F32_TWO
#undef NN_SGD_F32_CALL
}
#else
#define NN_SGD_F32 0
static void
nn_sgd_f32_range(float* p, const float* g, float* s, Py_ssize_t lo, Py_ssize_t hi,
                 double lr, double wd, double mu, double damp, int has_wd, int momentum,
                 int first, int nesterov)
{
    (void)p; (void)g; (void)s; (void)lo; (void)hi; (void)lr; (void)wd; (void)mu;
    (void)damp; (void)has_wd; (void)momentum; (void)first; (void)nesterov;
}
#endif

/* ---------------------------------------------------------------------------------
 * PyTorch's Adam and AdamW on float32 arrays with float32 seeds (optim_rules._adam with
 * f32 set: _quot_root_f32's quotient), 8 elements at a time: the floats in 256-bit
 * registers, their doubles in 512-bit ones, so a widening (vcvtps2pd zmm, ymm) or a
 * rounding (vcvtpd2ps ymm, zmm) converts 8 elements with no lane shuffle around it.
 * GCC's 512-bit loop holds 16 floats per vector and splits each in halves to widen it
 * (vextractf32x8, vinsertf64x4: 10 shuffles per 16 elements), and it also rounds the
 * AdamW-shrunk weight w * shrink (two conversions more) when shrink is 1 (Adam), where
 * the product and its rounding change nothing: 28 conversions per 16 elements against
 * 24 here, 20 without the shrink. The conversions are the loop's bound (one 512-bit
 * conversion takes 2 cycles of its pipe on Zen 4; the float root and the two float
 * divisions take about 11 cycles of the divider per 8 elements, in parallel):
 * 100k float32 elements, one thread, 1.68 -> 1.18 ns per element. Measured and left
 * (8k elements, in L1): 4 elements per step (floats in xmm, doubles in ymm) 1.62 ns;
 * unrolled twice 1.19; with the root and both divisions replaced by products (wrong
 * results, to find the bound) 1.00: the divider costs 15 %, the conversions most of
 * the rest.
 *
 * The operations are optim_rules._adam's as GCC contracts them: the L2 term
 * fma(l2, w, g); exp_avg's lerp fma(c, g - m, m) (from the end: fma(c, g - m, g));
 * exp_avg_sq fma(b2, v, ((1 - b2) g) g); amsgrad's max a select on vm >= v;
 * _quot_root_f32's seeds in float (vsqrtps; 0.5 / (y + 2^-100); 1 / fma(y, kf, epsf))
 * and its Newton steps in double (d = fma(fma(v - y y, ry, y), k, eps) with v - y y one
 * fnmadd; q = m r; q1 = q (2 - r d) with 2 - r d one fnmadd; q where q1 is NaN); the
 * step fma(-step_size, q1, w). So every result is bitwise the generic loop's, but for
 * which NaN a NaN result is (a product of two NaNs gives its first operand, and GCC
 * orders the operands of m r differently in its own two builds as well)
 * (tests/test_optim.py compares this loop with optim's 256-bit build on finite and
 * non-finite values, lengths around every vector boundary, both lerp branches,
 * amsgrad, AdamW). The tail (fewer than 8 elements) runs the same code under a mask
 * (masked loads read nothing past the end).
 *
 * With AVX2 and FMA but no AVX-512 the same operations run on 8 elements a step as two
 * halves of 4 (floats in 128-bit, doubles in 256-bit registers), each stage of the step
 * for both halves before the next. GCC's loop there (256-bit vectors: optim_wide and
 * train are built with -mprefer-vector-width=512, without which -march=native keeps
 * Zen 1 at 128 bits) widens the upper half of each 8-float vector after a vextractf128
 * (10 per 8 elements), and for Adam it also forms the shrink (a product and two
 * conversions) and the L2 select (bit operations): 28 conversions per 8 elements of
 * Adam against 24 here (AdamW: 28 in both). On
 * Zen 1 (a 256-bit operation is two 128-bit ones) the conversions and the divider
 * bound the loop: 8k float32 elements (in L1), one thread, ns per element, GCC's loop
 * / this one: Adam 6.3 / 4.8, AdamW 6.3 / 5.4, amsgrad 6.4 / 5.3, Adam with L2 and
 * beta1 0.3 6.2 / 4.8 (1e6 elements alike; GCC's 128-bit loop 8.7). Measured and
 * left: one half per step 5.7 (the stages of one half are one long chain; the other
 * half's stages fill its latencies); three or four halves 4.6; with the root and the
 * divisions replaced by products (wrong results, to find the bound) 3.8: the divider's
 * time adds to the conversions'. The tail (fewer than 8 elements) runs the same block
 * on zero-padded copies: AVX2 has masked loads, but its masked store (vmaskmovps) is
 * microcoded on AMD cores.
 *
 * Only with AVX2 (or AVX-512 F and VL) and FMA (NN_ADAM_F32 is 0 otherwise: the
 * generic loop runs).
 * --------------------------------------------------------------------------------- */
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)
#define NN_ADAM_F32 1
#define NN_ADAM_F32_512 1
typedef __m512d nn_adam_f32_pd;     /* the vectors of a block's doubles and floats */
typedef __m256 nn_adam_f32_ps;
#define NN_ADAM_F32_SET1_PD _mm512_set1_pd
#define NN_ADAM_F32_SET1_PS _mm256_set1_ps
#elif defined(__AVX2__) && defined(__FMA__)
#define NN_ADAM_F32 1
#define NN_ADAM_F32_512 0
typedef __m256d nn_adam_f32_pd;
typedef __m128 nn_adam_f32_ps;
#define NN_ADAM_F32_SET1_PD _mm256_set1_pd
#define NN_ADAM_F32_SET1_PS _mm_set1_ps
#else
#define NN_ADAM_F32 0
#define NN_ADAM_F32_512 0
#endif

#if NN_ADAM_F32
/* The per-call scalars of one Adam step as broadcasts. */
typedef struct {
    nn_adam_f32_pd step_size, k, eps, b2, c1b2, shrink, l2, c;
    nn_adam_f32_ps kf, epsf;
} nn_adam_f32_consts;
#endif

#if NN_ADAM_F32_512
/* Elements [i, i + 8) of the step, those of mask `k` only unless `full`. */
static inline __attribute__((always_inline)) void
nn_adam_f32_block(float* p, const float* g, float* m, float* v, float* vmax,
                  Py_ssize_t i, __mmask8 k, int full, const nn_adam_f32_consts* C,
                  int shrinks, int has_l2, int amsgrad, int from_end)
{
    const __m256 TINY = _mm256_set1_ps(7.888609052210118e-31f);   /* 2^-100 */
    const __m256 HALF = _mm256_set1_ps(0.5f), ONE = _mm256_set1_ps(1.0f);
    const __m512d TWO = _mm512_set1_pd(2.0);
#define NN_LD(ptr) (full ? _mm256_loadu_ps(ptr) : _mm256_maskz_loadu_ps(k, ptr))
#define NN_ST(ptr, x)                                                              \
    do {                                                                           \
        if (full) _mm256_storeu_ps(ptr, x); else _mm256_mask_storeu_ps(ptr, k, x); \
    } while (0)
    __m512d w = _mm512_cvtps_pd(NN_LD(p + i)), d, q, q1, mw, yd, rd;
    __m256 mf, vf, y, ry, r;
    if (shrinks)                                    /* AdamW stores the shrunk w first */
        w = _mm512_cvtps_pd(_mm512_cvtpd_ps(_mm512_mul_pd(w, C->shrink)));
    d = _mm512_cvtps_pd(NN_LD(g + i));
    if (has_l2)
        d = _mm512_fmadd_pd(C->l2, w, d);                           /* g + l2 w */
    mw = _mm512_cvtps_pd(NN_LD(m + i));
    mf = _mm512_cvtpd_ps(_mm512_fmadd_pd(C->c, _mm512_sub_pd(d, mw),
                                         from_end ? d : mw));      /* exp_avg's lerp */
    NN_ST(m + i, mf);
    vf = _mm512_cvtpd_ps(_mm512_fmadd_pd(C->b2, _mm512_cvtps_pd(NN_LD(v + i)),
                                         _mm512_mul_pd(_mm512_mul_pd(C->c1b2, d), d)));
    NN_ST(v + i, vf);                                               /* exp_avg_sq */
    if (amsgrad) {
        __m256 vm = NN_LD(vmax + i);
        vf = _mm256_blendv_ps(vf, vm, _mm256_cmp_ps(vm, vf, _CMP_GE_OQ));
        NN_ST(vmax + i, vf);
    }
    y = _mm256_sqrt_ps(vf);                                         /* the seeds */
    ry = _mm256_div_ps(HALF, _mm256_add_ps(y, TINY));
    r = _mm256_div_ps(ONE, _mm256_fmadd_ps(y, C->kf, C->epsf));
    yd = _mm512_cvtps_pd(y);
    rd = _mm512_cvtps_pd(r);
    d = _mm512_fmadd_pd(_mm512_fmadd_pd(_mm512_fnmadd_pd(yd, yd, _mm512_cvtps_pd(vf)),
                                        _mm512_cvtps_pd(ry), yd), C->k, C->eps);
    q = _mm512_mul_pd(_mm512_cvtps_pd(mf), rd);                     /* m r */
    q1 = _mm512_mul_pd(q, _mm512_fnmadd_pd(rd, d, TWO));            /* q (2 - r d) */
    q1 = _mm512_mask_mov_pd(q1, _mm512_cmp_pd_mask(q1, q1, _CMP_NEQ_UQ), q);
    NN_ST(p + i, _mm512_cvtpd_ps(_mm512_fnmadd_pd(C->step_size, q1, w)));
#undef NN_LD
#undef NN_ST
}

/* nn_adam_f32_loop's 8 elements from i, and its tail [i, hi) (fewer than 8) */
#define NN_ADAM_F32_FULL(i) \
    nn_adam_f32_block(p, g, m, v, vmax, i, 0xFF, 1, C, shrinks, has_l2, amsgrad, from_end)
#define NN_ADAM_F32_TAIL(i, hi)                                                    \
    nn_adam_f32_block(p, g, m, v, vmax, i, (__mmask8)((1u << ((hi) - (i))) - 1), 0, C, \
                      shrinks, has_l2, amsgrad, from_end)

#elif NN_ADAM_F32
#include <string.h>

/* Elements [0, 8) of the step at p, g, m, v (and vmax) on AVX2: two halves of 4, each
 * stage of the step for both halves before the next stage (NN_FOR_HALVES). */
static inline __attribute__((always_inline)) void
nn_adam_f32_block(float* p, const float* g, float* m, float* v, float* vmax,
                  const nn_adam_f32_consts* C, int shrinks, int has_l2, int amsgrad,
                  int from_end)
{
    const __m128 TINY = _mm_set1_ps(7.888609052210118e-31f);        /* 2^-100 */
    const __m128 HALF = _mm_set1_ps(0.5f), ONE = _mm_set1_ps(1.0f);
    const __m256d TWO = _mm256_set1_pd(2.0);
    __m256d w[2], d[2], q[2], q1[2], mw[2], yd[2], rd[2];
    __m128 mf[2], vf[2], vm, y[2], ry[2], r[2];
    int h;
#define NN_FOR_HALVES for (h = 0; h < 2; h++)
    NN_FOR_HALVES w[h] = _mm256_cvtps_pd(_mm_loadu_ps(p + 4 * h));
    if (shrinks)                                    /* AdamW stores the shrunk w first */
        NN_FOR_HALVES w[h] = _mm256_cvtps_pd(_mm256_cvtpd_ps(_mm256_mul_pd(w[h],
                                                                           C->shrink)));
    NN_FOR_HALVES d[h] = _mm256_cvtps_pd(_mm_loadu_ps(g + 4 * h));
    if (has_l2)
        NN_FOR_HALVES d[h] = _mm256_fmadd_pd(C->l2, w[h], d[h]);   /* g + l2 w */
    NN_FOR_HALVES mw[h] = _mm256_cvtps_pd(_mm_loadu_ps(m + 4 * h));
    NN_FOR_HALVES mf[h] = _mm256_cvtpd_ps(_mm256_fmadd_pd(
        C->c, _mm256_sub_pd(d[h], mw[h]), from_end ? d[h] : mw[h]));  /* exp_avg's lerp */
    NN_FOR_HALVES _mm_storeu_ps(m + 4 * h, mf[h]);
    NN_FOR_HALVES vf[h] = _mm256_cvtpd_ps(_mm256_fmadd_pd(
        C->b2, _mm256_cvtps_pd(_mm_loadu_ps(v + 4 * h)),
        _mm256_mul_pd(_mm256_mul_pd(C->c1b2, d[h]), d[h])));          /* exp_avg_sq */
    NN_FOR_HALVES _mm_storeu_ps(v + 4 * h, vf[h]);
    if (amsgrad)
        NN_FOR_HALVES {
            vm = _mm_loadu_ps(vmax + 4 * h);
            vf[h] = _mm_blendv_ps(vf[h], vm, _mm_cmp_ps(vm, vf[h], _CMP_GE_OQ));
            _mm_storeu_ps(vmax + 4 * h, vf[h]);
        }
    NN_FOR_HALVES y[h] = _mm_sqrt_ps(vf[h]);                        /* the seeds */
    NN_FOR_HALVES ry[h] = _mm_div_ps(HALF, _mm_add_ps(y[h], TINY));
    NN_FOR_HALVES r[h] = _mm_div_ps(ONE, _mm_fmadd_ps(y[h], C->kf, C->epsf));
    NN_FOR_HALVES yd[h] = _mm256_cvtps_pd(y[h]);
    NN_FOR_HALVES rd[h] = _mm256_cvtps_pd(r[h]);
    NN_FOR_HALVES d[h] = _mm256_fmadd_pd(_mm256_fmadd_pd(
        _mm256_fnmadd_pd(yd[h], yd[h], _mm256_cvtps_pd(vf[h])), _mm256_cvtps_pd(ry[h]),
        yd[h]), C->k, C->eps);
    NN_FOR_HALVES q[h] = _mm256_mul_pd(_mm256_cvtps_pd(mf[h]), rd[h]);         /* m r */
    NN_FOR_HALVES q1[h] = _mm256_mul_pd(q[h], _mm256_fnmadd_pd(rd[h], d[h], TWO));
    NN_FOR_HALVES q1[h] = _mm256_blendv_pd(q1[h], q[h],               /* q (2 - r d) */
                                           _mm256_cmp_pd(q1[h], q1[h], _CMP_UNORD_Q));
    NN_FOR_HALVES _mm_storeu_ps(p + 4 * h, _mm256_cvtpd_ps(
        _mm256_fnmadd_pd(C->step_size, q1[h], w[h])));
#undef NN_FOR_HALVES
}

/* Elements [0, n) (n < 8) of the step, on zero-padded copies. */
static inline __attribute__((always_inline)) void
nn_adam_f32_tail(float* p, const float* g, float* m, float* v, float* vmax, Py_ssize_t n,
                 const nn_adam_f32_consts* C, int shrinks, int has_l2, int amsgrad,
                 int from_end)
{
    float tp[8] = {0}, tg[8] = {0}, tm[8] = {0}, tv[8] = {0}, tx[8] = {0};
    size_t bytes = (size_t)n * sizeof(float);
    memcpy(tp, p, bytes);
    memcpy(tg, g, bytes);
    memcpy(tm, m, bytes);
    memcpy(tv, v, bytes);
    if (amsgrad)
        memcpy(tx, vmax, bytes);
    nn_adam_f32_block(tp, tg, tm, tv, tx, C, shrinks, has_l2, amsgrad, from_end);
    memcpy(p, tp, bytes);
    memcpy(m, tm, bytes);
    memcpy(v, tv, bytes);
    if (amsgrad)
        memcpy(vmax, tx, bytes);
}

/* vmax is offset only with amsgrad: without it there may be no such array, and a pointer
 * moved past the end of another one is undefined even if never read */
#define NN_ADAM_F32_FULL(i)                                                            \
    nn_adam_f32_block(p + (i), g + (i), m + (i), v + (i), amsgrad ? vmax + (i) : vmax, C, \
                      shrinks, has_l2, amsgrad, from_end)
#define NN_ADAM_F32_TAIL(i, hi)                                                        \
    nn_adam_f32_tail(p + (i), g + (i), m + (i), v + (i), amsgrad ? vmax + (i) : vmax,   \
                     (hi) - (i), C, shrinks, has_l2, amsgrad, from_end)
#endif

#if NN_ADAM_F32
/* Elements [lo, hi) of the step, 8 at a time, then the tail (the branch's blocks). */
static inline __attribute__((always_inline)) void
nn_adam_f32_loop(float* p, const float* g, float* m, float* v, float* vmax,
                 Py_ssize_t lo, Py_ssize_t hi, const nn_adam_f32_consts* C, int shrinks,
                 int has_l2, int amsgrad, int from_end)
{
    Py_ssize_t i = lo;
    for (; i + 8 <= hi; i += 8)
        NN_ADAM_F32_FULL(i);
    if (i < hi)
        NN_ADAM_F32_TAIL(i, hi);
}
#undef NN_ADAM_F32_FULL
#undef NN_ADAM_F32_TAIL

/* Elements [lo, hi) of the Adam step on float32 param p, grad g and the state slots m,
 * v (and vmax if amsgrad); the scalars as optim_rules' setup computes them (shrink 1:
 * Adam, no shrink), each flag combination a loop of its own. */
static void
nn_adam_f32_range(float* p, const float* g, float* m, float* v, float* vmax,
                  Py_ssize_t lo, Py_ssize_t hi, double step_size, double inv_bc2,
                  double eps, double b2, double shrink, double l2, double c, int has_l2,
                  int amsgrad, int from_end)
{
    nn_adam_f32_consts C;
    int shrinks = shrink != 1.0;
    C.step_size = NN_ADAM_F32_SET1_PD(step_size);
    C.k = NN_ADAM_F32_SET1_PD(inv_bc2);
    C.eps = NN_ADAM_F32_SET1_PD(eps);
    C.b2 = NN_ADAM_F32_SET1_PD(b2);
    C.c1b2 = NN_ADAM_F32_SET1_PD(1.0 - b2);
    C.shrink = NN_ADAM_F32_SET1_PD(shrink);
    C.l2 = NN_ADAM_F32_SET1_PD(l2);
    C.c = NN_ADAM_F32_SET1_PD(c);
    C.kf = NN_ADAM_F32_SET1_PS((float)inv_bc2);
    C.epsf = NN_ADAM_F32_SET1_PS((float)eps);
#define NN_ADAM_F32_CALL(S, W, A, E) \
    nn_adam_f32_loop(p, g, m, v, vmax, lo, hi, &C, S, W, A, E)
#define NN_ADAM_F32_ENDS(S, W, A)                                                  \
    if (from_end) NN_ADAM_F32_CALL(S, W, A, 1); else NN_ADAM_F32_CALL(S, W, A, 0);
#define NN_ADAM_F32_AMS(S, W)                                                      \
    if (amsgrad) { NN_ADAM_F32_ENDS(S, W, 1) } else { NN_ADAM_F32_ENDS(S, W, 0) }
    if (shrinks) {                  /* AdamW (whose setup gives no L2 term, has_l2 0) */
        if (has_l2) { NN_ADAM_F32_AMS(1, 1) } else { NN_ADAM_F32_AMS(1, 0) }
    } else {
        if (has_l2) { NN_ADAM_F32_AMS(0, 1) } else { NN_ADAM_F32_AMS(0, 0) }
    }
#undef NN_ADAM_F32_AMS
#undef NN_ADAM_F32_ENDS
#undef NN_ADAM_F32_CALL
}
#else
static void
nn_adam_f32_range(float* p, const float* g, float* m, float* v, float* vmax,
                  Py_ssize_t lo, Py_ssize_t hi, double step_size, double inv_bc2,
                  double eps, double b2, double shrink, double l2, double c, int has_l2,
                  int amsgrad, int from_end)
{
    (void)p; (void)g; (void)m; (void)v; (void)vmax; (void)lo; (void)hi; (void)step_size;
    (void)inv_bc2; (void)eps; (void)b2; (void)shrink; (void)l2; (void)c; (void)has_l2;
    (void)amsgrad; (void)from_end;
}
#endif

#endif
