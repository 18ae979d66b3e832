/* vmath.h -- branch-free exp, expm1, log1p, log and tanh that GCC/Clang auto-vectorize.
 *
 * Design note
 * -----------
 * libm's exp/tanh/log1p are opaque calls, so a loop that calls them runs one element at
 * a time (NumPy, with its own SIMD routines, was up to 7x faster on tanh). These are
 * straight-line C: arithmetic, compares feeding bitwise selects (nn_select), and integer
 * operations on the bit pattern (memcpy between double and uint64_t, which compilers
 * turn into a register move). Inlined into a loop, GCC 12 vectorizes it for AVX2 and
 * AVX-512 (checked with -fopt-info-vec; 64-bit integer adds and logical shifts only, no
 * float->int conversion). For baseline x86-64 (NNLIB_NATIVE=0) it leaves the loops
 * scalar: still correct, and still cheaper than the libm calls.
 *
 * All in double. nnlib computes float32 kernels in double as well and rounds once.
 *
 * nn_exp(x)       Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2 (ln2 split in two,
 *                 the high part with 21 trailing zero bits so k*LN2_HI is exact), k
 *                 rounded with the 1.5*2^52 shifter (no float->int conversion needed),
 *                 e^r = 1 + r + r^2 g(r), g a degree-10 Chebyshev fit of
 *                 (e^r - 1 - r)/r^2 on [-0.3466, 0.3466] (mpmath.chebyfit, rel. error of
 *                 e^r 3.4e-19 with the coefficients rounded to double), then 2^k applied
 *                 as two factors 2^k1 * 2^k2 (k1 = floor(k/2)) built in the exponent
 *                 field: both are normal for every k in [-1076, 1024], the first
 *                 product is exact and the second rounds once, so gradual underflow
 *                 (results down to 2^-1074) and overflow to +inf come out right.
 *                 x is clamped to [-746, 710] first (exp(-746) < 2^-1075 rounds to 0,
 *                 exp(710) > DBL_MAX); the clamps are written so NaN passes through.
 * nn_expm1_neg(x) expm1 for x <= 0 (and NaN): same reduction (r carried as a pair
 *                 r + r_lo), expm1(r) = r + r^2 g(r), and expm1(x) = 2^k expm1(r) +
 *                 (2^k - 1) summed with Fast2Sum so only the last addition rounds
 *                 (x clamped to >= -60, where expm1 is -1 to double precision).
 *                 -0 is returned as -0. nn_exp adds 1 + r the same way.
 * nn_log1p_unit(u) log1p for 0 <= u <= 1 (and NaN), the range of exp(-|x|): fdlibm's
 *                 log kernel (Lg1..Lg7, s = f/(2+f)) on f = u for u <= sqrt2-1, and on
 *                 f = (u-1)/2 with + ln2 (split) above; u - 1 is not always exact for
 *                 u in (sqrt2-1, 1/2), so its rounding error c (exact, Fast2Sum) is
 *                 added back as c/2 * (1 - f) ~ (c/2)/(1+f) (the approximation error,
 *                 f^2 c/2, is below 0.07 ulp).
 * nn_log(x)       fdlibm's e_log.c without its branches: x = 2^k (1 + f), 1 + f in
 *                 [sqrt2/2, sqrt2), found on the bit pattern (nn_log_reduce; subnormals
 *                 scaled by 2^54 first), log1p(f) by the kernel above (nn_log_kernel),
 *                 k ln2 added in two parts; the specials (+-0, < 0, +inf, NaN) selected
 *                 at the end. The Poisson loss uses the pieces to form z - log t.
 * nn_tanh(x)      -E / (2 + E) with E = expm1(-2|x|) (as a pair) and the sign of x, the
 *                 division done once and corrected with the exact remainder (FMA, or
 *                 Dekker's product without one): relative accuracy for tiny x
 *                 (tanh x = x, subnormals too), exactly +-1 beyond |x| ~ 19.1, +-0 and
 *                 NaN kept.
 *
 * Measured max error (tests/test_vmath.py's sweep with 1e7 points per range against
 * long double expl/expm1l/log1pl/tanhl, plus 1e5 random points against mpmath):
 * exp 0.78 ulp, expm1 0.81, log1p 0.81, tanh 0.75 (glibc's are < 1 ulp too); log
 * 0.85 ulp (logl, 1e7 points per range of tests/test_vmath.py; fdlibm: < 1). The
 * table, per range, is in scalar.pxd's design note.
 */
#ifndef NNLIB_VMATH_H
#define NNLIB_VMATH_H

#include <stdint.h>
#include <string.h>

#include "paths.h"    /* the cut-offs below, rendered from nnlib/_paths.py */

static inline double nn_from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t nn_to_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* c ? a : b, as bit operations: a plain ?: whose result feeds more arithmetic is left
 * as a branch by GCC 12 (-ftrapping-math) on SSE2/AVX2 and blocks vectorization. */
static inline double nn_select(int c, double a, double b)
{
    uint64_t m = (uint64_t)0 - (uint64_t)(c != 0);
    return nn_from_bits((nn_to_bits(a) & m) | (nn_to_bits(b) & ~m));
}

#define NN_ZERO_F 0.0f

/* the same for float: c ? a : b on the bits, so a float loop stays vectorized */
static inline float nn_selectf(int c, float a, float b)
{
    uint32_t m = (uint32_t)0 - (uint32_t)(c != 0), ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

#define NN_LOG2E   1.4426950408889634
#define NN_LN2_HI  6.93147180369123816490e-01   /* 0x3fe62e42fee00000 (fdlibm) */
#define NN_LN2_LO  1.90821492927058770002e-10   /* 0x3dea39ef35793c76 */
#define NN_SHIFTER 6755399441055744.0           /* 1.5 * 2^52: x + SHIFTER rounds x */

/* g(r) ~ (e^r - 1 - r) / r^2 on |r| <= ln2/2 (Horner, highest degree first). */
static inline double nn_exp_g(double r)
{
    double g = 2.0914686968086876e-09;
    g = g * r + 2.5105217004720745e-08;
    g = g * r + 2.75572736431103e-07;
    g = g * r + 2.7557255400206422e-06;
    g = g * r + 2.4801587325547743e-05;
    g = g * r + 0.00019841269874820627;
    g = g * r + 0.0013888888888883748;
    g = g * r + 0.008333333333326136;
    g = g * r + 0.04166666666666667;
    g = g * r + 0.1666666666666667;
    g = g * r + 0.5;
    return g;
}

/* k = round(x / ln2) as a double (kd) and as an integer; x - k ln2 = r + r_lo, with
 * |r_lo| <= ulp(r)/2 (r_lo keeps what the second subtraction rounds away: contracted to
 * an FMA or not, the expressions below give a valid pair). */
static inline double nn_exp_reduce(double x, double *kd, int64_t *k, double *r_lo)
{
    double t = x * NN_LOG2E + NN_SHIFTER;
    double r1, r;
    *k = (int64_t)(nn_to_bits(t) - nn_to_bits(NN_SHIFTER));   /* |k| < 2^51 */
    t -= NN_SHIFTER;
    *kd = t;
    r1 = x - t * NN_LN2_HI;             /* exact: k*LN2_HI has 21 spare bits */
    r = r1 - t * NN_LN2_LO;
    *r_lo = (r1 - r) - t * NN_LN2_LO;
    return r;
}

/* 2^k for an integer k with -1022 <= k <= 1023, built in the exponent field. */
static inline double nn_pow2i(int64_t k)
{
    return nn_from_bits((uint64_t)(k + 1023) << 52);
}

/* always_inline: the loops that call it rely on it being inlined (to vectorize, and for
 * the Poisson gradient's e^z - t to contract into one FMA, which keeps it finite where e^z
 * alone overflows); GCC's unit-growth limit dropped it from losses.pyx's chunk loop once
 * that unit grew (softmax cross-entropy's ce_rows.h paths), leaving a scalar call there. */
static inline __attribute__((always_inline)) double nn_exp(double x)
{
    double kd, r, r_lo, hi, lo, p;
    int64_t k, k1;
    x = nn_select(x > NN_EXP_ARG_MAX, NN_EXP_ARG_MAX, x); /* NaN fails both: stays NaN */
    x = nn_select(x < NN_EXP_ARG_MIN, NN_EXP_ARG_MIN, x);
    r = nn_exp_reduce(x, &kd, &k, &r_lo);
    /* e^r = 1 + r + r^2 g(r): 1 + r as an exact pair (Fast2Sum, |r| < 1), so the only
     * rounding of size ulp/2 is the last addition. */
    hi = 1.0 + r;
    lo = (1.0 - hi) + r;
    p = hi + (lo + (r_lo + (r * r) * nn_exp_g(r)));
    /* k1 = floor(k / 2) without an arithmetic shift (SSE2/AVX2 have none for 64 bits) */
    k1 = (int64_t)((uint64_t)(k + 2048) >> 1) - 1024;
    return (p * nn_pow2i(k1)) * nn_pow2i(k - k1);
}

/* expm1(x) for x <= 0 as an unevaluated pair hi + lo (|lo| <= ~ulp(hi)); NaN -> NaN. */
static inline double nn_expm1_neg_pair(double x, double *lo)
{
    double kd, r, r_lo, q, p, p_lo, t, a, a_lo, b, s;
    int64_t k;
    x = nn_select(x < NN_EXPM1_ARG_MIN, NN_EXPM1_ARG_MIN, x); /* NaN stays; -inf -> -1 */
    r = nn_exp_reduce(x, &kd, &k, &r_lo);
    q = r_lo + (r * r) * nn_exp_g(r);
    p = r + q;                          /* expm1(r) = p + p_lo, Fast2Sum (|r| >= |q|) */
    p_lo = q - (p - r);
    t = nn_pow2i(k);                    /* 2^k, -87 <= k <= 0 */
    a = t - 1.0;                        /* exact for k >= -53 */
    a_lo = (-1.0 - a) + t;              /* its rounding error below (Fast2Sum) */
    b = t * p;                          /* exact */
    s = a + b;                          /* Fast2Sum: |a| >= |b| (k < 0) or a = 0 (k = 0) */
    *lo = ((a - s) + b) + (t * p_lo + a_lo);
    return s;
}

static inline double nn_expm1_neg(double x)
{
    double lo, hi = nn_expm1_neg_pair(x, &lo);
    double y = hi + lo;
    return nn_select(x == 0.0, x, y);   /* keep the sign of a zero */
}

/* fdlibm's log kernel: log(1 + f) = f - hfsq + s (hfsq + R(z)), s = f/(2+f), z = s^2,
 * R(z) = z (NN_LG1 + z (NN_LG2 + ... + z NN_LG7)) (fdlibm's Lg1..Lg7) */
#define NN_LG1 6.666666666666735130e-01
#define NN_LG2 3.999999999940941908e-01
#define NN_LG3 2.857142874366239149e-01
#define NN_LG4 2.222219843214978396e-01
#define NN_LG5 1.818357216161805012e-01
#define NN_LG6 1.531383769920937332e-01
#define NN_LG7 1.479819860511658591e-01

/* fdlibm's kernel on f in [sqrt2/2 - 1, sqrt2 - 1) (nn_log_reduce's range; nn_log1p_unit
 * passes up to 0.415): s = f/(2+f), and log1p(f) = f - (hfsq - s (hfsq + R(s^2))),
 * hfsq = f^2/2. Returns hfsq and s (hfsq + R) so callers can combine them in fdlibm's
 * order (nn_log1p_unit, nn_log, the Poisson loss's log t). */
static inline double nn_log_kernel(double f, double *hfsq)
{
    double s = f / (2.0 + f);
    double z = s * s;
    double R = z * (NN_LG1 + z * (NN_LG2 + z * (NN_LG3 + z * (NN_LG4 + z * (NN_LG5
                                                        + z * (NN_LG6 + z * NN_LG7))))));
    *hfsq = 0.5 * f * f;
    return s * (*hfsq + R);
}

static inline double nn_log1p_unit(double u)
{
    double d = u - 1.0;
    double c = u - (d + 1.0);           /* exact rounding error of u - 1 */
    int big = u > NN_LOG1P_SPLIT;       /* sqrt(2) - 1 */
    double f = nn_select(big, 0.5 * d, u);  /* 1 + u = 2^ke (1 + f), f in [-0.293, 0.415] */
    double cc = nn_select(big, 0.5 * c, 0.0);
    double ke = nn_select(big, 1.0, 0.0);
    double hfsq;
    double sr = nn_log_kernel(f, &hfsq);
    double y = ke * NN_LN2_HI - ((hfsq - (sr + (ke * NN_LN2_LO + cc * (1.0 - f)))) - f);
    return nn_select(u == 0.0, u, y);   /* log1p(-0) = -0 */
}

/* x = 2^k (1 + f) for finite x > 0, with 1 + f in [sqrt2/2, sqrt2) (so |f| <= 0.293 and
 * fdlibm's kernel above applies to f without its own reduction). fdlibm takes k from the
 * high word after adding 0x3ff00000 - 0x3fe6a09e; this is the same on all 64 bits (musl's
 * log does the same with another offset): adding 1.0's bits minus sqrt2/2's carries
 * into the exponent field exactly when the mantissa is >= sqrt2, and the field then
 * holds k + 1023 (a logical shift: x > 0 keeps the sum below 2^63). 1 + f is the
 * mantissa put back over sqrt2/2's bits, so f = (1 + f) - 1 is exact (Sterbenz). k is
 * made a double by the 2^52 trick (no int->double conversion, which AVX2 lacks for 64
 * bits). Subnormal x is scaled by 2^54 first. Garbage for x <= 0, inf or NaN: callers
 * select those. */
#define NN_SQRT1_2_BITS   0x3fe6a09e667f3bcdULL  /* sqrt(2)/2 */
#define NN_DBL_MIN        2.2250738585072014e-308
static inline double nn_log_reduce(double x, double *kd)
{
    int sub = x < NN_DBL_MIN;
    double xs = nn_select(sub, x * 18014398509481984.0, x);          /* 2^54 */
    uint64_t u = nn_to_bits(xs) + (0x3ff0000000000000ULL - NN_SQRT1_2_BITS);
    double e = nn_from_bits(0x4330000000000000ULL | (u >> 52)) - 4503599627370496.0;
    *kd = (e - 1023.0) - nn_select(sub, 54.0, 0.0);
    return nn_from_bits((u & 0x000fffffffffffffULL) + NN_SQRT1_2_BITS) - 1.0;
}

/* log x for every double: fdlibm's e_log.c (< 1 ulp; its reduction done as in
 * nn_log_reduce, its sum in its order: k ln2_hi - ((hfsq - (s (hfsq + R) + k ln2_lo)) - f)),
 * branch-free. log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, NaN stays NaN. */
static inline double nn_log(double x)
{
    double kd, hfsq;
    double f = nn_log_reduce(x, &kd);
    double sr = nn_log_kernel(f, &hfsq);
    double y = kd * NN_LN2_HI - ((hfsq - (sr + kd * NN_LN2_LO)) - f);
    double special = nn_select(x == 0.0, -__builtin_inf(),
                               nn_select(x < 0.0, __builtin_nan(""), x));
    return nn_select((x > 0.0) & (x < __builtin_inf()), y, special);
}

/* a*b - c exactly rounded once: the FMA instruction where the target has one, else
 * Dekker's exact product (Veltkamp split); only used for a remainder in nn_tanh. */
static inline double nn_fms(double a, double b, double c)
{
#if defined(__FP_FAST_FMA) || defined(__FMA__)
    return __builtin_fma(a, b, -c);
#else
    const double split = 134217729.0;   /* 2^27 + 1 */
    double ta = split * a, ah = ta - (ta - a), al = a - ah;
    double tb = split * b, bh = tb - (tb - b), bl = b - bh;
    double p = a * b;
    double e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    return (p - c) + e;
#endif
}

static inline double nn_abs(double x)
{
    return nn_from_bits(nn_to_bits(x) & ~((uint64_t)1 << 63));
}

/* tanh x from t = tanh|x| (>= 0): the sign of x, and +-0 for x = +-0. */
static inline double nn_with_sign_of(double t, double x)
{
    const uint64_t sign = (uint64_t)1 << 63;
    t = nn_select(x == 0.0, 0.0, t);
    return nn_from_bits((nn_to_bits(t) & ~sign) | (nn_to_bits(x) & sign));
}

static inline double nn_tanh(double x)
{
    /* tanh|x| = -E / (2 + E), E = expm1(-2|x|) in (-1, 0] carried as a pair, divided in
     * double-double: q = N/D rounded, then one correction with the exact remainder. */
    double e_lo, e = nn_expm1_neg_pair(-2.0 * nn_abs(x), &e_lo);
    double d = 2.0 + e;
    double d_lo = ((2.0 - d) + e) + e_lo;       /* Fast2Sum: |e| < 2 */
    double inv = 1.0 / d;
    double q = -e * inv;
    double rem = -nn_fms(q, d, -e);             /* -e - q d, exact */
    return nn_with_sign_of(q + ((rem - e_lo) - q * d_lo) * inv, x);
}

/* ---- for float32 results ------------------------------------------------------------
 * The float32 activations (activations.pyx) round a double result to float32 once. They
 * need it only to a relative error far below a float32 ulp (2^-24..2^-23 relative): an
 * error e moves the rounded result by at most e / 2^-24 of a float32 ulp beyond the 0.5
 * of the rounding. These keep double arithmetic (float arithmetic would make the rounding
 * itself inexact: ~1 ulp) and drop what only float64 results need; about 1.4x (exp) to
 * 2x (tanh) fewer vector instructions. Their divisions stay IEEE double divisions: the
 * sigmoid forward loop is bound by exp's FMA-class operations (11 per 8 values), not by
 * the divider (1e6 values, one thread: 778 us, and 697 with the division replaced by a
 * product as a probe), so a division-free quotient, which adds FMA-class work (a float
 * seed from vdivps refined by one Newton step in double: 770 -> 983 us; a reciprocal
 * seed and Newton steps, 7-9 FMAs for 1e-12), only costs. Where AVX2 and FMA exist the
 * float32 sigmoid forward runs act_f32.h's explicit loop: nn_exp_neg_f32_half_core's
 * operations and constants (NN_EXPH_*) written with intrinsics, the same bits; its note
 * records the cheaper e^x forms measured there and not kept (a 4-entry table of
 * 2^(j/4) by vpermd with a degree-5 polynomial, Estrin's scheme). */

/* (e^r - 1)/r on |r| <= ln2/2, degree 7 (least squares in relative error with Lawson
 * weights against mpmath): 4.5e-12 relative, so e^r = 1 + r q(r) to 2e-12 relative and
 * expm1(r) = r q(r) to 4.5e-12, one FMA fewer than 1 + (r + r^2 g(r)). */
#define NN_EXP_Q7_C0 0.999999999995573      /* its coefficients, shared with act_f32.h */
#define NN_EXP_Q7_C1 0.5000000000120556
#define NN_EXP_Q7_C2 0.16666666785353051
#define NN_EXP_Q7_C3 0.041666665951309134
#define NN_EXP_Q7_C4 0.008333283750975608
#define NN_EXP_Q7_C5 0.001388897835278399
#define NN_EXP_Q7_C6 0.00019907451480125584
#define NN_EXP_Q7_C7 2.4801558812985294e-05
static inline double nn_exp_q7(double r)
{
    return NN_EXP_Q7_C0 + r * (NN_EXP_Q7_C1 + r * (NN_EXP_Q7_C2 + r * (NN_EXP_Q7_C3
        + r * (NN_EXP_Q7_C4 + r * (NN_EXP_Q7_C5 + r * (NN_EXP_Q7_C6 + r * NN_EXP_Q7_C7))))));
}

/* -|x| in one bit operation (-fabs(x) is two: an and and an xor); NaN stays NaN */
static inline double nn_neg_abs(double x)
{
    return nn_from_bits(nn_to_bits(x) | ((uint64_t)1 << 63));
}

/* libm's exp(x) is 0 below this (e^x < 2^-1075) */
#define NN_EXP_ARG_UNDERFLOW (-745.1332191019412)

/* e^x for x <= 0 (and NaN) to 2.5e-12 relative (4e-5 float32 ulp): r = x - k ln2 in one
 * FMA (ln2's rounding, 2^-54 ln2 per unit of |k| <= 1022, is 6e-14 of r at most), and
 * 2^k as one factor, normal: the reduction runs on x >= NN_EXP_F32_ARG_MIN = -708. Below
 * it, e^x = e^(x + 64 ln2) 2^-64 (the shift's rounding is 1e-13 of the result), and below
 * NN_EXP_ARG_UNDERFLOW (and at -inf) the result is 0, where libm's exp underflows too:
 * finite float32 values computed from these tiny results are 0 after rounding either
 * way, but a product with an infinite g is inf or NaN exactly as from libm's e^x. */
/* e^x for NN_EXP_F32_ARG_MIN <= x <= 0 (and NaN): the reduction and polynomial of
 * nn_exp_neg_f32 below, without its handling of smaller x. */
static inline double nn_exp_neg_f32_core(double x)
{
    double t, kd, r, p;
    int64_t k;
    t = x * NN_LOG2E + NN_SHIFTER;
    k = (int64_t)(nn_to_bits(t) - nn_to_bits(NN_SHIFTER));
    kd = t - NN_SHIFTER;
    r = x - kd * 0.6931471805599453;                   /* ln 2 rounded */
    p = 1.0 + r * nn_exp_q7(r);
    return p * nn_pow2i(k);
}

static inline double nn_exp_neg_f32(double x)
{
    double e, x0 = x;
    x = nn_select(x0 < NN_EXP_F32_ARG_MIN, x0 + 44.3614195558365, x0);   /* 64 ln 2 */
    x = nn_select(x < NN_EXP_F32_ARG_MIN, NN_EXP_F32_ARG_MIN, x);  /* NaN stays NaN */
    e = nn_exp_neg_f32_core(x);
    e = nn_select(x0 < NN_EXP_F32_ARG_MIN, e * 5.421010862427522e-20, e);   /* 2^-64 */
    return nn_select(x0 < NN_EXP_ARG_UNDERFLOW, 0.0, e);
}

/* e^x for x <= 0 (and NaN) where the float32 result is e^x times at most two factors of
 * float32 range (|a| <= FLT_MAX, or inf or NaN) and a bounded one: the vjps' sigmoid'
 * (e/(1+e)^2), softplus' (sigma) and elu' (alpha e^x), each times grad_out. Between
 * NN_EXP_ARG_UNDERFLOW and NN_EXP_F32_ARG_MIN it is e^-708 instead of e^x: every such
 * product of finite factors is below FLT_MAX^2 e^-708 < 2^-150 either way, so it rounds to
 * the same signed float32 0, and an infinite factor gives inf either way; below
 * NN_EXP_ARG_UNDERFLOW (and at -inf) it is 0, as libm's exp and nn_exp_neg_f32, so inf * 0
 * is NaN there as with them. The float32 results are bitwise those of nn_exp_neg_f32, at
 * the cost of a clamp and one select (four vector operations fewer). */
static inline double nn_exp_neg_f32_factor(double x)
{
    double e = nn_exp_neg_f32_core(nn_select(x < NN_EXP_F32_ARG_MIN, NN_EXP_F32_ARG_MIN, x));
    return nn_select(x < NN_EXP_ARG_UNDERFLOW, 0.0, e);
}

/* expm1(x) for x <= 0 (and NaN) to 1e-11 relative: 2^k expm1(r) + (2^k - 1). For k = 0
 * that is expm1(r), r = x; for k < 0 the first term is at most 0.42 * 2^k against
 * 1 - 2^k >= 1/2, so the sum loses at most one bit to cancellation. */
/* The same for NN_EXPM1_ARG_MIN <= x <= 0 (and NaN), without the clamp and the sign of a
 * zero (expm1(-0) gives +0 here): for nn_tanh_f32, whose argument is already in range and
 * which sets the sign itself. */
static inline double nn_expm1_neg_f32_core(double x)
{
    double t, kd, r, s;
    int64_t k;
    t = x * NN_LOG2E + NN_SHIFTER;
    k = (int64_t)(nn_to_bits(t) - nn_to_bits(NN_SHIFTER));
    kd = t - NN_SHIFTER;
    r = x - kd * 0.6931471805599453;                   /* |k| <= 87: 1e-15 of r */
    s = nn_pow2i(k);                                   /* -87 <= k <= 0 */
    return s * (r * nn_exp_q7(r)) + (s - 1.0);
}

static inline double nn_expm1_neg_f32(double x)
{
    x = nn_select(NN_EXPM1_ARG_MIN > x, NN_EXPM1_ARG_MIN, x); /* NaN stays; -inf -> -1 */
    return nn_select(x == 0.0, x, nn_expm1_neg_f32_core(x));  /* keep the sign of a zero */
}

/* tanh for float32 results: -E / (2 + E) with E = expm1(-2|x|) from nn_expm1_neg_f32:
 * ~1e-11 relative, which the rounding to float32 does not see (measured on every float32
 * in [-20, 20]: 0.50012 ulp). */
static inline double nn_tanh_f32(double x)
{
    /* expm1(-60) = -1; y in [-60, 0] (or NaN), so no clamp. E <= 0 (+0 for x = +-0, where
     * expm1 here gives +0), so |E| with the sign of x is the numerator -E signed as tanh x
     * (+-0 for x = +-0): two bit operations instead of a negation, the select of nn_with_
     * sign_of and its three; the division keeps the sign. */
    const uint64_t sign = (uint64_t)1 << 63;
    double y = nn_select(nn_abs(x) > NN_TANH_F32_SATURATE, -60.0, -2.0 * nn_abs(x));
    double e = nn_expm1_neg_f32_core(y);               /* in (-1, 0] */
    double n = nn_from_bits((nn_to_bits(e) & ~sign) | (nn_to_bits(x) & sign));
    return n / (2.0 + e);
}

/* log1p(u) for float32 results, 0 <= u <= 1 (and NaN), without argument reduction:
 * log1p u = 2 atanh s = s P(s^2) with s = u / (2 + u) in [0, 1/3], P a degree-6 fit of
 * log((1+s)/(1-s)) / s on s^2 in [0, 1/9] with P(0) = 2 (Lawson's weighted least squares
 * in relative error against mpmath): 2.7e-12 relative, about 2e-15 more for the roundings.
 * fdlibm's kernel (nn_log1p_unit) first reduces 1 + u to 2^ke (1 + f), |f| <= sqrt2 - 1,
 * which needs a degree 4 for the same error; its compare, selects and ln 2 term cost
 * more than the two extra FMAs (softplus fwd, 1e6 float32, one thread: 1.41 -> 1.06 ns
 * per element with nn_exp_neg_f32_half_core below). s P + a is one FMA for the
 * softplus kernels' max(x, 0) + log1p(e^-|x|). log1p(+-0) = +-0. */
static inline double nn_log1p_unit_f32(double u)
{
    double s = u / (2.0 + u);
    double z = s * s;
    return s * (2.0 + z * (0.6666666636355653 + z * (0.40000052436496997
        + z * (0.2856841942467141 + z * (0.22301078614770414 + z * (0.17151308589907913
        + z * 0.21781841906860322))))));
}

/* e^x for NN_EXP_F32_ARG_MIN <= x <= 0 (and NaN) in half steps of ln 2, for the float32
 * softplus kernels: x = (2k + j) ln2/2 + r, j in {0, 1}, |r| <= ln2/4, so e^x =
 * 2^k 2^(j/2) e^r with e^r a degree-6 polynomial (Lawson fit as above, with p(0) = 1:
 * 1.5e-11 relative; nn_exp_neg_f32_core's ln2/2 range needs degree 8). The shifter's
 * bias leaves 2(k + 1023) + j in t's low bits, so t's bits shifted up by 51 are 2^k for
 * j = 0 and 1.5 * 2^k for j = 1 (j lands on the mantissa's top bit); adding
 * bits(sqrt2) - bits(1.5) there makes sqrt2 * 2^k: a shift, an and, a negation and an
 * add on the integer lanes instead of two of the FMAs that bound these loops (a select
 * of sqrt2 as a double factor ran no faster than the degree-8 form; finer steps with a
 * table ran slower: 2^(i/64) by a gather with degree 3, vjp 1.01 against 0.91 ns per
 * element, 2^(i/4) by selects with degree 5, 1.11). x >= -708 keeps
 * 2(k + 1023) + j >= 3: 2^k is normal. ln2/2 rounded, times |2k + j| <= 2043, is
 * 6e-14 of r. */
/* its constants, shared with act_f32.h's explicit sigmoid forward (the same operations) */
#define NN_EXPH_SHIFTER (NN_SHIFTER + 2046.0)
#define NN_EXPH_LN2_2   0.34657359027997264                /* ln2/2 rounded */
#define NN_EXPH_SQRT2_D (0x3ff6a09e667f3bcdULL - 0x3ff8000000000000ULL)
#define NN_EXPH_C1 1.0000000005476304
#define NN_EXPH_C2 0.49999999909783166
#define NN_EXPH_C3 0.16666651440602115
#define NN_EXPH_C4 0.041666748893618745
#define NN_EXPH_C5 0.008343659530283763
#define NN_EXPH_C6 0.0013877995305873474
static inline double nn_exp_neg_f32_half_core(double x)
{
    double t = x * (2.0 * NN_LOG2E) + NN_EXPH_SHIFTER;
    double kd = t - NN_EXPH_SHIFTER;                   /* 2k + j */
    double r = x - kd * NN_EXPH_LN2_2;
    uint64_t tb = nn_to_bits(t);
    uint64_t sb = (tb << 51) + (((uint64_t)0 - (tb & 1)) & NN_EXPH_SQRT2_D);
    double p = 1.0 + r * (NN_EXPH_C1 + r * (NN_EXPH_C2 + r * (NN_EXPH_C3 + r * (NN_EXPH_C4
        + r * (NN_EXPH_C5 + r * NN_EXPH_C6)))));
    return p * nn_from_bits(sb);
}

/* e^x for x <= 0 (and NaN) in half steps of ln 2 where the float32 result it feeds is at
 * most e^x times a bounded factor (the sigmoid forward, e/(1+e)): below
 * NN_EXP_F32_ARG_MIN it is e^-708 (~3e-308) instead of e^x, and both round to the same
 * float32 0 (every float32 result below 2^-150, i.e. x < -103.98, is 0); NaN stays NaN.
 * The vjps keep nn_exp_neg_f32_half_factor: there the result multiplies an upstream
 * gradient that may be infinite, and inf * e^-708 is not inf * 0. */
static inline double nn_exp_neg_f32_half_bounded(double x)
{
    return nn_exp_neg_f32_half_core(nn_select(x < NN_EXP_F32_ARG_MIN, NN_EXP_F32_ARG_MIN, x));
}

/* e^-|x| for the softplus forward: as nn_exp_neg_f32_half_bounded, e^-708 below -708, but NaN
 * gives e^-708 too (the forward's max(x, 0) term carries NaN instead): -|x| is clamped
 * as an unsigned min on its bits (those of a negative double grow with its magnitude;
 * -inf's and NaN's are the largest), one integer instruction instead of a compare and a
 * select (fwd, 1e6 float32: 1.068 -> 1.045 ns per element; bitwise the same results for
 * every non-NaN float32 x). */
static inline double nn_exp_neg_abs_f32_half_bounded(double x)
{
    const double lim = NN_EXP_F32_ARG_MIN;
    uint64_t b = nn_to_bits(x) | ((uint64_t)1 << 63), m = nn_to_bits(lim);
    return nn_exp_neg_f32_half_core(nn_from_bits(b < m ? b : m));
}

/* e^x for x <= 0 (and NaN) times grad_out, as nn_exp_neg_f32_factor: e^-708 on
 * [-745.13, -708), 0 below (and at -inf), NaN kept */
static inline double nn_exp_neg_f32_half_factor(double x)
{
    double e = nn_exp_neg_f32_half_core(nn_select(x < NN_EXP_F32_ARG_MIN,
                                                  NN_EXP_F32_ARG_MIN, x));
    return nn_select(x < NN_EXP_ARG_UNDERFLOW, 0.0, e);
}
#endif
