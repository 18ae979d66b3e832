"""Branch-plan evidence: every compiled kernel run on both sides of every threshold where it
changes path, in both dtypes, on one thread and several, measured in ULPs against an exact
reference and held to a committed per-path baseline (``verify/baseline.json``).

Design note
-----------
The thresholds are read from ``nnlib/_paths.py``, the table the kernels are built from
(``paths.pxd`` / ``paths.h``), so the plan follows the code: for each size threshold ``t``
the kernels run at ``t - 1``, ``t`` and ``t + 1`` (and past two blocks where a loop is
blocked), for each real cut-off of ``vmath.h`` the inputs include the argument that reaches
it and its neighbours in the dtype. ``PLAN`` lists, per kernel, the cases (shape, which
threshold it straddles) and the report shows them as the paths covered. The output maps
also run each case's rows as a 3-d array ``(n, 1, c)`` (they read any ndim as the rows of
its last axis), measured in the same case; the losses run at ten ``LOSS_CHUNK`` tasks, whose
sums ``loss_grad`` adds as 8 partial sums and a tail (np.sum's pairwise order).

Inputs are drawn from a pool of distinct values (or rows), hard ones first (zeros, ties,
all-equal rows, one-hot rows at +-1e4 and near the dtype's largest value, subnormals, the
kinks, the cut-off arguments, the points where a formula could cancel) and random ones after
(one draw per seed). A long array repeats the pool, so its exact reference is computed once
per distinct value, vectorized, and every element is still compared.

The reference is evaluated in ``numpy.longdouble`` (x87 extended: 64-bit significand, and an
exponent range wide enough that nothing a float64 kernel sees over- or underflows), with
every formula written so that it does not cancel (log1p of the non-negative terms, sigma(-z)
for 1 - sigma(z), sums of non-negative terms). Each elementary step then has a relative error
of a few units of 2^-64, which moves a measured ULP figure of a float64 result by about
2^-11 of an ulp: far below the 2-ulp margin of the baseline. tests/test_verify_paths.py checks
the reference against mpmath at 50 digits; without an 80-bit long double the section fails.

Errors are relative. For an output whose exact value is a sum of terms that the kernel's
formula must cancel (a vjp g_i - <g, p>, the hinge margin mu + z_j - z_y, the loss of an
almost certain right answer computed as log of a sum that rounds to 1, ...), the error is
measured in ULPs of ``|exact| + rho * T`` instead of ULPs of ``|exact|``, where T is the sum
of the magnitudes of the terms the double-precision arithmetic rounds (written per output in
``ERROR_MODELS``, with the reason) and rho = 2^-53 / unit roundoff of the dtype (1 for
float64, 2^-29 for float32, whose kernels compute in double and round once). Where T = 0 the
figure is the plain relative error in ULPs, and an exact zero must be computed as zero.

Three things fail a case: an error above the output's cap (``CAP``), an error more than
``BASELINE_SLACK[dtype]`` ulp (2 in float64, 0.25 in float32) above the committed baseline
for that kernel, output, dtype and path -- or above ``CORRECTLY_ROUNDED_LIMIT`` (0.51 ulp in
float64, 0.501 in float32) where the baseline is correctly rounded (most float32
results: computed in double, rounded once) -- (a path with no baseline fails too: nothing
passes by absence), and a result that differs,
bit for bit, between one thread and several (the kernels promise thread-count independence).
The baseline figure of a case is its largest error over a FIXED point set (hard inputs and
the random draw of ``FIXED_SEED``), measured by every run, so runs compare like with like;
the points of the run's own seeds (--seed; a full run adds the next ones) count toward the
cap, and a failure names the seed and the worst input found. ``--update-baseline``
records today's figure where it is lower (an improvement) or new.

dense_backward's dX on more than one row is a BLAS product summed in the dtype (its dW,
one input column here, is nnlib's own small_gemm), so its figures are the BLAS kernels'
rounding, which differs between BLAS builds and CPUs (OpenBLAS's SkylakeX kernels add
each element's products in order, its Haswell kernels, on CPUs without AVX-512, in an
order that depends on the element's position: up to 1.1 ulp where SkylakeX's were
correctly rounded). So the baseline keeps those cases' figures per BLAS build, under
the bits of a few fixed products (``blas_fingerprint``): ``blas_max_ulps`` maps each
fingerprint measured to its figures. Under a BLAS the file has figures for, the cases are
held to them by the rules above; under one it has none, to their cap only, which the
report and the item's verdict say, until ``--update-baseline`` on that machine records
that BLAS's figures beside the others' (never touching them). Every other output is
nnlib's own loops, kept in ``max_ulps`` and held to it on any machine.

Matrix products. dense.pxd's ``mm`` sends a Dense layer's products (H = X W, dW = X^T dZ,
dX = dZ W^T) and the training step's fused plain-SGD update (W <- beta W - lr X^T dZ,
the one product that reads C) to the one-row plain loops, gemm_small.h's register-blocked
loops or BLAS by their shape: one row or k = 1, and the ``NN_SMALL_GEMM_*`` bounds of
``nnlib/_paths.py`` (k, columns, multiply-adds). The cases above have one input column,
so the ``dense_products`` and ``epoch_sgd`` cases run each product just below, at and
just above each bound (``product_plan``, ``sgd_step_plan``) on integer operands sized so
that every product and partial sum is an integer below 2^p (``product_operands``,
``sgd_step_operands``): the result is then exact whatever loops sum it and in whatever
order, so these cases are held to 0 ulp on every machine and BLAS (no per-BLAS figures).
A dropped, repeated or misplaced term, a wrong alpha or beta, or an intermediate rounded
to a narrower type is off by whole units. The training loop's first layer on sparse X
(sparse_rows.pxd's X_b W and X_b^T dZ, reading X's stored rows in the epoch's order)
runs the same exact operands with X as a CSR matrix and the rows reversed
(``sparse_step_plan``, where SciPy is installed): 0 ulp too; so does its first layer on
dense X where it reads the batch's rows in place through their numbers (gemm_small.h's
``_rows`` products, ``rows_step_plan``): the other epoch cases take X's rows in order,
where a row read by its position is the right one. Float64's input gradient dZ_1 W_1^T
under a hidden layer, formed inside its backward pass in passes of up to four products,
runs every pass form: an output layer of each width from 2 to NARROW_K, under relu and
identity (``narrow_pass_plan``). Several steps in a row with the rows read in place
(``rows_steps_plan``: plain SGD over the padded copy of W_0, which a call of
PADDED_MIN_STEPS steps makes and copies back, and momentum, whose X_b^T dZ is formed
alone into the workspace of the step before) are exact too. The epoch's reported loss
with L2 (its penalty sums in their blocked order: ``l2_epoch_plan``) is held
exactly on integer weights the network fits with zero data loss, and two steps in a row
at batch 1 (the loop's state carried from one step to the next: ``batch1_steps_plan``)
must give the exact weights of two one-row steps. Adam's first step with L2 on a zero
data gradient (g = l2 w) through the update that sums the next step's penalty in chunks
of 512 values (``l2_adam_plan``) is held to w - lr g / (|g| + eps) within L2_ADAM_ULPS. One relu step with BLAS on two threads
and the loop's on one (``pool_step_plan``) runs the batch's gather, bias and activation
and the activation's backward in blocks on OpenBLAS's threads (pass_blocks.pxd): exact
too, and reported skipped where BLAS has no such pool. Every loss is also measured as the
epoch evaluates it under fit's ``sample_weight`` (weighted_loss_grad_batch, row by row):
unequal weights with a 0 among them (``sample_weights``) against the exact weighted mean
sum w_i L_i / sum w and gradient rows w_i dL_i / sum w.
"""
import contextlib
import json
import math
import os
import time

import numpy as np

from verify import kernels as K

__all__ = ["run_paths", "PLAN", "ERROR_MODELS", "BASELINE_PATH", "reference_ok",
           "load_baseline", "element_reference", "row_reference"]

LD = np.longdouble
BASELINE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baseline.json")
# How far a path's figure may rise above its baseline. The figure is measured over a fixed
# point set, so on one build it is reproducible; the slack covers builds whose double
# arithmetic differs (libm's log/log1p, FMA contraction), each by about an ulp per call.
# A float32 result is computed in double and rounded once or twice at the end: such a
# difference moves its float32 figure by ~2^-29 ulp, while a slip that adds a float32
# rounding of an intermediate (1/sum, a product before a sum) adds up to 0.5 ulp at the
# worst point -- below 2 ulp, so float32 gets the tighter slack.
BASELINE_SLACK = {"float64": 2.0, "float32": 0.25}
# A path whose baseline is within correct rounding (the result is the exact value rounded
# once, or exact) must stay there: a slip that adds one rounding (a float32 product of two
# rounded factors, a float32 intermediate) costs less than BASELINE_SLACK and would pass.
# The margin over 0.5 covers the reference's own error (~2^-11 ulp of float64).
CORRECTLY_ROUNDED = 0.51
# The limit such a float32 path is held to: a float32 result computed in double (relative
# error <= ~2e-11, nn_tanh_f32's) and rounded once is within 0.5 + 2^-11 ulp, and the
# reference's error is ~2^-40 float32 ulp; a kernel that picks the other neighbour of a
# value just past the midpoint (an early saturation) is off by more.
CORRECTLY_ROUNDED_LIMIT = {"float64": CORRECTLY_ROUNDED, "float32": 0.501}
DTYPES = {"float64": np.float64, "float32": np.float32}
# rho: the unit roundoff of double over the dtype's (the kernels compute in double)
RHO = {"float64": 1.0, "float32": 2.0 ** -29}


def reference_ok():
    """True when numpy.longdouble has at least a 64-bit significand (x87 extended or
    binary128): the precision the reference's error analysis assumes."""
    return np.finfo(LD).nmant >= 63


def _paths():
    from nnlib import _paths
    return {**{k: v[0] for k, v in _paths.INT_PATHS.items()},
            **{k: v[0] for k, v in _paths.REAL_PATHS.items()}}


# ------------------------------------------------------------------------ error models

ERROR_MODELS = {
    "activation": ("relative", "each activation and its derivative at z is computed without "
                               "cancellation (sigma from e^-|z|, softplus as max + log1p, "
                               "elu from expm1)"),
    "tanh_vjp": ("T = 3 |g| tanh(z)^2", "tanh' = 1 - t^2 from the rounded t = tanh z: 1 - t^2 "
                 "carries t^2's rounding as z grows (only absolute accuracy: the kernel's "
                 "documented formula)"),
    "softmax": ("T = p_i |z_i - max z|", "exp of the rounded shifted argument z_i - max z: "
                "its relative error is |z_i - max z| u"),
    "softmax_vjp": ("T1 = p_i sum_j |g_j| p_j; Td = p_i (|g_i| + sum_j |g_j| p_j (1 + |u_j|))"
                    " + p_i |u_i| |g_i - <g,p>|",
                    "g_i - <g, p> cancels when the upstream gradient is nearly constant; <g, p> "
                    "is formed from the softmax rounded to the dtype (T1)"),
    "log_softmax": ("T = |u_i| + log s + c", "(z_i - m) - log s with s = sum e^{z_j - m} >= 1, "
                    "a sequential sum of c terms: log s carries an absolute error up to c u, "
                    "so the entries near 0 (the maximum of a confident row) are only "
                    "absolutely accurate (relative accuracy would need log1p of the sum of "
                    "the non-maximal terms)"),
    "log_softmax_vjp": ("T1 = p_i |sum g|; Td = |g_i| + p_i sum_j |g_j| (1 + |u_i|)",
                        "g_i - p_i sum(g) cancels; p_i is the softmax rounded to the dtype"),
    "sparsemax": ("T = |u_j| + |tau| + sum_{i in S} |u_i| + 1",
                  "p_j = (z_j - m) - tau: a difference, with tau from a cumulative sum"),
    "sparsemax_vjp": ("T = [j in S] (|g_j| + mean_S |g|)", "g_j - mean_S(g) cancels"),
    "softmax_cross_entropy": ("T = sum_rows ((m - z_y) + log s + c) / n",
                              "log s of a c-term sum s >= 1: absolute error up to c u per row, "
                              "so the loss of a confident right answer (s ~ 1) is absolutely "
                              "accurate"),
    "softmax_cross_entropy_grad": ("T1 = p_j / n; Td = (p_j (1 + |u_j|) + [j = y]) / n",
                                   "p_y - 1 cancels when p_y ~ 1; the exps are rounded to the "
                                   "dtype before the division (T1)"),
    "squared_error": ("relative", "a sum of squares of once-rounded differences"),
    "squared_error_grad": ("relative", "(z - t)/n, rounded twice"),
    "logistic_loss": ("relative", "softplus(-+z) as max + log1p(e^-|z|): no cancellation for "
                                  "either label at any |z|"),
    "logistic_loss_grad": ("relative", "sigma(z) - y written as sigma(z) or -sigma(-z)"),
    "sparsemax_loss": ("T = 1 + sum_{i in S} |u_i| + |u_y|",
                       "1/2 + sum p(u - p/2) - u_y is a difference"),
    "sparsemax_loss_grad": ("T = (sparsemax's T_j + [j = y]) / n", "p_j - [j = y] cancels"),
    "hinge_loss": ("T = sum_rows (mu + |max_{j!=y} z_j| + |z_y|) / n",
                   "the margin mu + z_j* - z_y is a difference"),
    "hinge_loss_grad": ("relative", "exact: (e_j* - e_y)/n or 0"),
    "poisson_loss": ("T = sum t |e^d - 1| (1 + 2|d|) (+ e^z + t (1 + |d| + |z| + |log t|) "
                     "for |d| >= NN_POISSON_NEAR), d = z - log t",
                     "t phi(d) near the fit: d carries ~u (1 + 2|d|) (log1p of t's mantissa, "
                     "z - k ln2_hi), moving the loss by t (e^d - 1) times that; beyond, "
                     "the far forms' terms (e^z, t, t d, and t z, t log t rounded)"),
    "poisson_loss_grad": ("T = e^z / n", "e^z - t cancels near the fit; e^z is rounded"),
    "dense_forward": ("relative", "H = act(X W + b) with X = 1 (one column), b = 0: the product "
                                  "is exact, so H is the activation's own accuracy"),
    "dense_backward": ("T1 = rows x the from-output term (sigmoid: y; tanh: 3 y^2; elu: |y| + "
                       "alpha; softplus: y e^-y; + the dtype's smallest normal for a subnormal "
                       "H) for db and dW (+ sum of |dZ| for dW, whose rows of X = +-1 cancel), "
                       "sum_j |dZ_j W_j| + that term x |W_j| for dX",
                       "the derivative is taken from the output H rounded to the dtype "
                       "(documented), and dW, dX are BLAS sums in the dtype"),
    "dense_forward products": ("exact (cap 0 ulp)", "H = X W + b of integer operands "
                               "(product_operands): every product and partial sum is an "
                               "integer below 2^p, exact in the dtype in any order of "
                               "additions, whichever loops sum it (the one-row plain loops, "
                               "gemm_small.h's blocked loops, BLAS)"),
    "dense_backward products": ("exact (cap 0 ulp)", "dW = X^T dZ, dX = dZ W^T and db of "
                                "integer operands with the identity activation (dZ = the "
                                "upstream gradient), exact on every path likewise"),
    "run_epoch plain SGD": ("exact (cap 0 ulp)", "W and b after one plain-SGD step "
                            "(lr 2^-3, weight decay 0 or 2^-4) of integer operands whose "
                            "loss gradient is an integer D (sgd_step_operands): 2^7 W' = "
                            "2^7 beta W - 2^4 X^T D, exact in the dtype on every path"),
    "run_epoch relu step": ("exact (cap 0 ulp)", "W and b of both layers after one "
                            "plain-SGD step (lr 2^-3) of a relu-identity network on "
                            "integer operands whose loss gradient is an integer D "
                            "(relu_step_operands): relu's backward dZ_0 = (D W_1^T) [H_0 > "
                            "0] (0 at H_0 = 0), its bias gradient and 2^3 W' = 2^3 W - dW "
                            "exact in the dtype on every path (the product's write-back, "
                            "act_backward, act_backward_product)"),
    "epoch loss_grad": ("loss: the loss's own model; db: T1 = sum_i |dz_i| (+ the loss "
                        "gradient's T1), Td = its Td summed",
                        "train.loss_grad of a one-layer identity network with W = I, b = 0 "
                        "(so the scores are X, exactly): the whole batch in one call of the "
                        "row-level loss (no LOSS_CHUNK tasks), db the column sums of dZ, "
                        "whose signed terms cancel"),
    "tanh_vjp_float32": ("T1 = 3 |g| t^2 2^-11", "float32 tanh is nn_tanh_f32 (2e-11 relative, "
                         "~2^-11 of a float32 ulp), then 1 - t^2 cancels"),
}

# Largest error (ULPs of |exact| + rho T) an output may have on any path, whatever the
# baseline says: float32 results are double computations rounded once.
CAP = {"float64": 16.0, "float32": 2.0}


def cap(dname, k=1, in_dtype=False):
    """The cap for an output that sums ``k`` terms in double (a row of c values, a mean
    over n rows) or, with ``in_dtype``, in the dtype (a BLAS product): a sequential sum of
    k terms has a relative error up to (k - 1) u."""
    return CAP[dname] + (1.0 if in_dtype else RHO[dname]) * (k - 1)


def ulp_of(scale, dtype):
    """Spacing of ``dtype`` at each value of ``scale`` (longdouble, >= 0): Muller's ulp,
    with the subnormal spacing at and below the smallest normal (and at 0)."""
    info = np.finfo(dtype)
    p, emin = info.nmant + 1, info.minexp
    _, ex = np.frexp(np.asarray(scale, dtype=LD))
    ex = np.where(np.asarray(scale) == 0, emin, ex - 1)
    return np.ldexp(LD(1), (np.maximum(ex, emin) - p + 1).astype(np.int32))


def ulp_errors(got, exact, T, dtype):
    """|got - exact| in ULPs of |exact| + T1 + rho Td (elementwise, longdouble); inf where
    got is NaN or inf and the exact value is not that overflow. ``T`` is Td, or the pair
    (T1, Td): T1 holds terms rounded in the dtype itself (a float32 output reused as an
    operand), Td terms rounded in double."""
    dname = np.dtype(dtype).name
    T1, T = T if isinstance(T, tuple) else (0, T)
    got = np.asarray(got)
    g = got.astype(LD)
    e = np.asarray(exact, dtype=LD)
    big = LD(np.finfo(dtype).max) * (1 + LD(np.finfo(dtype).eps) / 2)
    over = np.abs(e) > big
    scale = np.abs(e) + np.asarray(T1, dtype=LD) + LD(RHO[dname]) * np.asarray(T, dtype=LD)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - e) / ulp_of(np.where(over, 0, scale), dtype)
        err = np.where(over, np.where(np.isinf(g) & (np.sign(g) == np.sign(e)), 0, np.inf),
                       err)
        err = np.where(np.isnan(g) | (np.isinf(g) & ~over), np.inf, err)
        # NaN in, NaN out: an exact NaN is matched only by a NaN
        err = np.where(np.isnan(e), np.where(np.isnan(g), 0, np.inf), err)
    return err.astype(np.float64)


# ------------------------------------------------------------------------ input pools

def _with_neighbours(values, dt):
    out = []
    for v in values:
        with np.errstate(over="ignore"):
            x = dt(v)
        if np.isinf(x):
            out.append(x)
        if not np.isfinite(x):
            continue
        with np.errstate(over="ignore"):
            out += [x, np.nextafter(x, dt(np.inf)), np.nextafter(x, dt(-np.inf))]
    return out


def cutoff_points():
    """The inputs at which an activation's vmath.h call reaches each real cut-off:
    {threshold: [|x| or x]} (both signs are used)."""
    P = _paths()
    return {
        "NN_EXP_ARG_MIN": [-P["NN_EXP_ARG_MIN"]],          # e^-|x| at |x| = 746; elu e^x
        "NN_EXP_ARG_MAX": [P["NN_EXP_ARG_MAX"]],
        "NN_EXPM1_ARG_MIN": [-P["NN_EXPM1_ARG_MIN"], -P["NN_EXPM1_ARG_MIN"] / 2],  # elu; tanh
        "NN_LOG1P_SPLIT": [-math.log(P["NN_LOG1P_SPLIT"])],  # log1p(e^-|x|): |x| = asinh(1)
        "NN_TANH_F32_SATURATE": [P["NN_TANH_F32_SATURATE"]],
        # on d = z - log t, not on an activation's argument: poisson_pool places z there
        "NN_POISSON_NEAR": [P["NN_POISSON_NEAR"]],
    }


# cut-offs of the Poisson loss's d = z - log t (poisson_pool), not of an activation's input
LOSS_ONLY_CUTOFFS = ("NN_POISSON_NEAR",)


def saturation_points(dname):
    """The arguments at which tanh's and the sigmoid's exact value lies (1 -+ 2^-6) half an
    ulp below 1 in the dtype: the last inputs whose result must not round to 1, their
    value clearly past the rounding midpoint, and the first that must. A kernel that
    saturates early (a cut-off moved below the dtype's own saturation point) returns 1
    there: 0.508 ulp where correct rounding gives 0.492."""
    h = float(np.finfo(DTYPES[dname]).eps) / 4          # half the spacing below 1
    out = []
    for c in (1 + 2.0 ** -6, 1 - 2.0 ** -6):
        d = c * h                                        # 1 - value
        out += [0.5 * math.log((2 - d) / d),             # tanh(x) = 1 - d
                math.log((1 - d) / d)]                   # sigmoid(x) = 1 - d
    return out


def element_pool(dname, seed, n_random=24):
    """Distinct inputs for the elementwise kernels: hard values, each cut-off argument and
    its dtype neighbours (both signs), and ``n_random`` random values for ``seed``."""
    dt = DTYPES[dname]
    info = np.finfo(dt)
    hard = [0.0, -0.0, float(info.smallest_subnormal), float(info.tiny), 1e-30, 1e-8, 0.5,
            1.0, 2.0, 5.0, 18.0, 20.0, 37.0, 40.0, 88.0, 100.0, 709.5, 740.0, 745.0, 1e4,
            float(info.max), np.inf]
    cut = [v for k, vs in cutoff_points().items() if k not in LOSS_ONLY_CUTOFFS for v in vs]
    vals = _with_neighbours(hard + cut, dt) + [dt(v) for v in saturation_points(dname)]
    vals = vals + [-v for v in vals] + [np.nan]
    rng = np.random.default_rng([seed, 1])
    k = n_random // 3
    vals += list(rng.standard_normal(k) * 3) + list(rng.standard_normal(k) * 30) + list(
        rng.choice([-1.0, 1.0], n_random - 2 * k) * 10.0 ** rng.uniform(-20, 15,
                                                                      n_random - 2 * k))
    arr = np.array(vals, dtype=np.float64).astype(dt)
    # keep -0.0 and +0.0 apart (np.unique would merge them)
    _, idx = np.unique(arr.view(np.uint64 if dt == np.float64 else np.uint32),
                       return_index=True)
    return arr[np.sort(idx)]


# the lengths of the calls that run every pool value through the scalar tails: below the
# narrowest vector loop (act_f32.h's 4 floats, a 256-bit vector of doubles), each
# remainder of it
TAIL_NS = (1, 2, 3)

# sign's forward is exact (+-1, or x itself at +-0, or x quieted at a NaN), so it is held
# bit for bit (the sign of zero and a NaN's sign and payload included, which the ULP
# measure does not see) on every pool value and these NaNs, through calls of each length
# up to a vector of 16 floats and one past it (every tail mask of act_f32.h's AVX-512 loop,
# and a vector with and without one) and around two vectors
SIGN_NS = tuple(range(1, 18)) + (31, 32, 33)


def sign_pool(dname, seed):
    """element_pool (+-0, subnormals, +-inf, NaN) and NaNs of both signs with payloads,
    quiet and signalling."""
    dt = DTYPES[dname]
    ut = np.uint64 if dt == np.float64 else np.uint32
    mant = np.finfo(dt).nmant
    exp_bits = ut((1 << (np.dtype(dt).itemsize * 8 - 1)) - (1 << mant))  # all-ones exponent
    sign = ut(1 << (np.dtype(dt).itemsize * 8 - 1))
    nans = [exp_bits | ut(1 << (mant - 1)) | ut(5), exp_bits | ut(3)]  # quiet, signalling
    nans += [v | sign for v in nans]
    return np.concatenate([element_pool(dname, seed), np.array(nans, dtype=ut).view(dt)])


def sign_exact(x):
    """sign(x) as nnlib documents it, bits included: 1 for x > 0, -1 for x < 0, x itself
    at +-0 (x * 0 keeps the zero's sign), and at a NaN x quieted (its sign and payload
    kept, as x * 0 gives it)."""
    x = np.asarray(x)
    ut = np.uint64 if x.dtype == np.float64 else np.uint32
    quiet = ut(1 << (np.finfo(x.dtype).nmant - 1))
    nan = (x.view(ut) | quiet).view(x.dtype)
    one = np.ones_like(x)
    return np.where(x > 0, one, np.where(x < 0, -one, np.where(np.isnan(x), nan, x)))


# The parametrized activations' other parameters, each value through calls of every scalar
# tail length (TAIL_NS) and of a whole vector plus each tail (one 256-bit vector: 4 floats
# or 4 doubles): values not representable in float (the kernels hold the parameter in
# double; a float copy of it changes p x and p g where they round differently), one below 1
# and one above, so every pool value's p x is checked through the code after the vector loop
PARAM_SWEEP = {"leaky_relu": (0.01, 0.1, 1 / 3, 0.7, 1.3), "elu": (0.1, 1 / 3, 1.3)}
PARAM_TAIL_NS = TAIL_NS + (5, 6, 7)

# grad_H of the dense cases, per row: 1 (dZ = act'(H), as rounded), and a second set
# (its db and dW) where dZ = g act'(H) must be formed in double and rounded once: 3/2 on
# the rows of X = +1 and -3/4 on the others, where rounding act'(H) to the dtype first
# gives another rounding in float32
DENSE_GRAD_ROWS = (("", (1.0, 1.0)), (", grad_H 3/2 (X = +1 rows), -3/4 (X = -1)",
                                      (1.5, -0.75)))

# dense_backward given H (an input of it, so the exact result needs no term for H's own
# rounding): X = I (r x r), so dW = X^T dZ is dZ itself (products by 1 and 0, exact on any
# loops), and grad_H drawn with many mantissas (|g| in [0.3, 3], both signs), so g act'(H)
# is not g times an act'(H) already rounded to the dtype. Shapes (r rows, m columns): a few
# rows and many, columns within one vector and past several.
DENSE_GIVEN_H_SHAPES = ((2, 7), (3, 16), (5, 33), (16, 5), (33, 64), (64, 129))
# The double-precision evaluation of g act'(H) (act'(H) from H as the kernels write it:
# y (1 - y), -fma(y, y, -1), -expm1(-y), y + alpha; then the product with g): at most this
# many units of 2^-53 of |g act'(H)| (softplus's expm1 ~1 ulp, one rounding each for the
# subtraction and the two products)
GRAD_Y_DOUBLE_ULPS = 4


def grad_y_reference(name, y, p):
    """act'(z) written in the output y = act(z) (the registry's ``closed_grad_y``), in
    longdouble at the given y (parameter p for leaky_relu's slope and elu's alpha)."""
    y = np.asarray(y, dtype=LD)
    p = LD(p or 0.0)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if name == "identity":
            return np.ones_like(y)
        if name == "sigmoid":
            return y * (1 - y)
        if name == "tanh":
            # factored: 1 - y and 1 + y are exact in longdouble for a double y, while
            # 1 - y * y cancels the product's rounding (2^-64) up to 2^-64 / (1 - y^2)
            # relative, ~1e5 float64 ulps at |y| = 1 - 2.7e-11
            return (1 - y) * (1 + y)
        if name == "relu":
            return np.where(y > 0, LD(1), LD(0))
        if name == "leaky_relu":
            return np.where(y > 0, LD(1), p)
        if name == "softplus":
            return -np.expm1(-y)
        if name == "elu":
            return np.where(y > 0, LD(1), y + p)
        if name == "sign":
            return np.zeros_like(y)
    raise KeyError(name)


def dense_given_h_bounds(dZe, dZ, dt):
    """The largest errors dense_backward's arithmetic allows (longdouble, per element):

    * of dZ = G act'(H) against ``dZe``, its exact value for the H given: act'(H) g in
      double (GRAD_Y_DOUBLE_ULPS units of 2^-53) and rounded once to the dtype (half an ulp
      of |dZ|);
    * of db against the exact sum of the rows of ``dZ``, the kernel's own dZ (checked
      above): their sum in double (r - 1 additions: (r - 1) 2^-53 of sum |dZ|) and its
      rounding to the dtype (half an ulp of |db|).

    Returns (bound on dZ, exact sum of dZ's rows, bound on db). Nothing else rounds: a float
    act'(H) or product, or a float partial sum of db, is one rounding more (up to half an
    ulp of a term), which these bounds do not hold."""
    u53 = LD(2.0) ** -53
    half = lambda v: ulp_of(v * (1 + LD(2.0) ** -40), dt) / 2    # an ulp up at 2^k - tiny
    a = np.abs(dZe)
    b_dz = half(a) + GRAD_Y_DOUBLE_ULPS * u53 * a
    d = np.asarray(dZ).astype(LD)
    sums = d.sum(axis=0)                        # exact: r float32 values in longdouble
    b_db = half(np.abs(sums)) + (d.shape[0] - 1) * u53 * np.abs(d).sum(axis=0)
    return b_dz, sums, b_db


def bound_ratio(got, exact, bound):
    """|got - exact| / bound (elementwise; inf where got is NaN or inf)."""
    g = np.asarray(got).astype(LD)
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.abs(g - exact) / bound
    return np.where(np.isfinite(g), r, np.inf).astype(np.float64)


# The kinds whose outputs on exp_tail_pool are e^x rounded once (elu's alpha 1: alpha e^x
# is then e^x), and the sizes they run there: one task of vectors and a tail, two tasks
EXP_TAIL_KINDS = {"sigmoid": {}, "softplus": {}, "elu": {"alpha": 1.0}}
EXP_TAIL_SIZES = (("x = k ln2 + r, |r| <= 2^-12, n=61 (vectors and a tail)", 61),
                  ("x = k ln2 + r, |r| <= 2^-12, n=ACT_CHUNK+1 (two tasks)", None))


def exp_tail_pool(dname, seed, n=61):
    """Inputs x = k ln 2 + r (k an integer, |r| <= 2^-12; in float64 from -699 to -40,
    in float32 from -78 to -40) where sigma(x), softplus(x), sigma'(x) and elu's alpha
    e^x are e^x to far below an ulp (1 + e^x rounds to 1) and e^x is normal. In float64,
    nn_exp's polynomial terms there are below 2^-24 and its reduction exact, so its only
    rounding of size is its last addition: each such output is correctly rounded, and an
    nn_exp that rounds 1 + r once more (dropping the low part of its Fast2Sum) is up to
    an ulp off on about a fifth of these points, where the pool of random arguments of
    ``element_pool`` has the outputs' other roundings (a division, a product by alpha or
    grad_out) above 0.51 ulp and its baseline 2 ulp of slack. The float32 kernels compute
    in double to ~3e-11 and round once: correctly rounded there too."""
    dt = DTYPES[dname]
    rng = np.random.default_rng([seed, 12])
    k = rng.integers(np.finfo(dt).minexp + 13, -57, n)
    r = rng.choice([-1.0, 1.0], n) * 2.0 ** rng.uniform(-30, -12, n)
    x = (k.astype(LD) * np.log(LD(2)) + r.astype(LD)).astype(dt)
    _, idx = np.unique(x, return_index=True)
    return x[np.sort(idx)]


# The float64 entry points whose results there are vmath.h's log1p of u past sqrt2 - 1
# (nn_log1p_unit's halved range) and nothing else: softplus(x) = 0 + log1p(e^x) for x < 0,
# the logistic loss of one value at its label's softplus (z < 0 with t = 0, -z with t = 1)
LOG1P_SPLIT_PATH = "log1p(u) for u = e^x past sqrt2 - 1, within 0.1 ulp of a double"
LOG1P_SPLIT_SIZES = ((f"x in (-0.882, -0.693): {LOG1P_SPLIT_PATH}, n=61 (vectors and a "
                      "tail)", 61),
                     (f"x in (-0.882, -0.693): {LOG1P_SPLIT_PATH}, n=ACT_CHUNK+1 (two "
                      "tasks)", None),
                     (f"x in (-0.882, -0.693): {LOG1P_SPLIT_PATH}, each value alone (the "
                      "scalar tails)", 1))
LOG1P_SPLIT_NEAR = 0.1          # ulp: log1p(u) this near a double (see log1p_split_pool)
LOG1P_SPLIT_EXP_NEAR = 0.05     # ulp: e^x this near the double u


def log1p_split_pool(seed, n=64):
    """float64 x < 0 whose softplus(x) = 0 + nn_log1p_unit(nn_exp(x)) is log1p(u) of a
    double u in (sqrt2 - 1, 1/2) (nn_log1p_unit's halved range), correctly rounded on
    every build; at most ``n`` of them, drawn for ``seed``.

    Each x has e^x within LOG1P_SPLIT_EXP_NEAR ulp of a double u, so nn_exp (below 0.8
    ulp: tests/test_vmath.py) returns u itself, and the exact softplus(x) is log1p(u)
    within 0.035 ulp; u's last bit is 1, so u - 1 is inexact (its error c = +-2^-54);
    log1p(u) is within LOG1P_SPLIT_NEAR ulp of a double D. The kernel then returns D on
    every build: for u in (sqrt2 - 1, 1/2) it forms y = LN2_HI - t with t = (hfsq - (...))
    - f in [0.25, 1/2) and LN2_HI on a coarser grid, so y is that difference exactly and
    t's rounding (half an ulp of y) is its one rounding of size; every other one rounds a
    term at most 1/8 of y's ulp in size (hfsq ~ 0.04, s (hfsq + R) ~ 0.009, the
    correction c/2 (1 - f), itself within 0.07 ulp of c/2 / (1 + f)), 0.3 ulp of y by
    count and 0.262 measured (400000 such u, the kernel's operations in float64, no FMA);
    an FMA-contracted build has fewer roundings, not more. So y = log1p(u) + e, |e| < 0.4,
    rounded once: D, and the figure stays within CORRECTLY_ROUNDED. vmath.h's log1p that
    adds c/2 (1 - f) twice (catalogue fault held-vmath-log1p-split-correction-unhalved:
    +-0.635 ulp more) rounds to D's neighbour on about three in four of these u (0.9 ulp
    and more off), where the few-ulp slack of random arguments' softplus hid it."""
    rng = np.random.default_rng([seed, 14])
    lo, hi = _paths()["NN_LOG1P_SPLIT"], 0.5
    x = rng.uniform(math.log(lo), math.log(hi), 200 * n)
    e = np.exp(x.astype(LD))
    u = e.astype(np.float64)
    ulp = LD(2.0 ** -54)                      # of u and of log1p(u), both in [1/4, 1/2)
    l = np.log1p(u.astype(LD))
    ok = ((u > lo) & (u < hi) & (u.view(np.uint64) & np.uint64(1) == 1)
          & (np.abs(e - u) <= LOG1P_SPLIT_EXP_NEAR * ulp)
          & (np.abs(l - l.astype(np.float64)) <= LOG1P_SPLIT_NEAR * ulp))
    x = x[ok]
    _, idx = np.unique(x, return_index=True)
    return x[np.sort(idx)][:n]


def log1p_split_rows(seed):
    """(Z, y) of the logistic loss one value a row whose loss is log1p_split_pool's
    softplus(x): z = x with label 0 (softplus(z)) and z = -x with label 1 (softplus(-z))."""
    x = log1p_split_pool(seed)
    Z = np.concatenate([x, -x]).reshape(-1, 1)
    return np.ascontiguousarray(Z), np.repeat(np.array([0, 1]), x.size)


def hard_rows(c, dname, big_divisor=4.0):
    """Rows of width ``c`` a map or loss must get right: all-equal rows, ties at the top,
    one-hot rows at +-1e4 and near the dtype's largest value (max / ``big_divisor``),
    subnormals, a spread."""
    dt = DTYPES[dname]
    info = np.finfo(dt)
    big, sub = float(info.max) / big_divisor * 4.0, float(info.smallest_subnormal)

    def row(*head, fill=0.0):
        r = np.full(c, fill)
        r[:min(c, len(head))] = head[:c]
        return r
    rows = [row(), row(fill=3.0), row(fill=-7.5), row(2.0, 2.0), row(1.0, 1.0, 1.0, fill=-1.0),
            row(1e4), row(-1e4), row(1e4, -1e4), row(big / 4), row(-big / 4),
            row(big / 4, -big / 4), row(sub, -sub), row(fill=sub), row(fill=1e-30),
            np.linspace(-1.0, 1.0, c), row(700.0, -700.0), row(40.0), row(1.0)]
    return [r.astype(dt) for r in rows]


def row_pool(c, dname, seed, n_random=6, big_divisor=4.0, nan_row=False):
    """hard_rows, then random rows for ``seed`` (and a row holding a NaN: NaN in, NaN out
    for that row; only where the outputs are per row, not a mean over rows)."""
    rng = np.random.default_rng([seed, 2, c])
    dt = DTYPES[dname]
    rand = [rng.standard_normal(c) * s for s in (0.3, 1.0, 4.0)] + [
        rng.standard_normal(c) * 3 + 2.0 * rng.integers(0, 3, c) for _ in range(n_random - 3)]
    # narrow spreads: sparsemax's support is most or all of the row, so every position of
    # the sort matters (a heap fault that misplaces small values shows); sorted either way
    narrow = rng.standard_normal(c) * 0.02
    rand += [narrow, np.sort(narrow), np.sort(narrow)[::-1].copy(),
             rng.standard_normal(c) * 0.05]
    extra = [np.where(np.arange(c) == c // 2, np.nan, 1.0).astype(dt)] if nan_row else []
    return np.array(hard_rows(c, dname, big_divisor) + [r.astype(dt) for r in rand] + extra,
                    dtype=dt)


def poisson_pool(dname, seed, far=False, n_random=16):
    """(z, t) pairs for the Poisson loss: z = log t + d on both sides of NN_POISSON_NEAR
    (the cut-off and its dtype neighbours in z: t phi(d) inside, the far forms outside),
    d near 0 (where the four terms cancel) and out to +-40, for t from 1e-8 to 1e5, t = 0
    and -0.0, and random pairs for ``seed``. With ``far`` (rows measured alone, whose loss
    may overflow) also t from the dtype's tiny to 1e30 (and 1e300), z around
    NN_EXP_ARG_MAX (the loss and gradient inf beyond it), and z = 673 with t = -0.0: a
    target the wrappers accept whose log is -inf, not log(+0)'s junk; the loss is e^z
    only if -0.0 takes the t = 0 branch (``tj > 0.0``; ``>=`` gives -0.0 there)."""
    dt = DTYPES[dname]
    P = _paths()
    near = P["NN_POISSON_NEAR"]
    ts = [1e-8, 0.3, 1.0, 1.5, 3.0, 7.0, 1e5]
    if far:
        ts += [float(np.finfo(dt).tiny), 1e30] + ([1e300] if dt == np.float64 else [])
    ds = [0.0, 1e-8, 1e-3, 0.5, 2.0, 10.0, 40.0]
    pairs = []
    for t in ts:
        t = dt(t)
        lt = math.log(float(t))
        for d in ds:
            pairs += [(dt(lt + d), t), (dt(lt - d), t)]
        for z in _with_neighbours([lt + near, lt - near], dt):
            pairs.append((z, t))
    zs0 = [-40.0, -1.0, 0.0, 1.0, 40.0]
    pairs += [(dt(z), dt(t)) for t in (0.0, -0.0) for z in zs0]
    if far:
        xm = P["NN_EXP_ARG_MAX"]
        pairs += [(z, dt(t)) for t in (0.0, 1.0, 1e30) for z in
                  _with_neighbours([709.5, xm, 711.0], dt)]
        pairs += [(dt(673.0), dt(t)) for t in (-0.0, 0.0, 1.0)]
    rng = np.random.default_rng([seed, 8])
    tr = np.where(rng.random(n_random) < 0.5, rng.poisson(3.0, n_random),
                  rng.exponential(5.0, n_random))
    zr = np.log(np.maximum(tr, 0.5)) + rng.standard_normal(n_random) * 1.5
    pairs += [(dt(z), dt(t)) for z, t in zip(zr, tr)]
    Z = np.array([p[0] for p in pairs], dtype=dt)
    T = np.array([p[1] for p in pairs], dtype=dt)
    ut = np.uint64 if dt == np.float64 else np.uint32
    _, idx = np.unique(np.stack([Z.view(ut), T.view(ut)], axis=1), axis=0, return_index=True)
    idx = np.sort(idx)
    return Z[idx], T[idx]


def subnormal_target_pool(dname, batch=False):
    """(z, t) for the Poisson loss at targets just below the smallest normal double (t log
    t then takes log's scaling of a subnormal: nn_log_reduce multiplies it by 2^54 and
    takes 54 off the exponent), with z = log t + d for d from 0 to +-40 and z = -1, 0, 1.
    A float32 target is a normal double, so float32 runs its own subnormals as the same
    kind of point. With ``batch`` (pairs to be summed into one loss): without the pairs
    whose loss is e^z to far below an ulp (z = log t + 40, z = -1, 0, 1), which would hide
    every other pair's t log t in the sum."""
    dt = DTYPES[dname]
    tiny = dt(np.finfo(dt).tiny)
    ts = ([1e-310, 2e-309, 1e-308] if dt == np.float64 else [1e-40, 1e-39]) + [
        float(np.nextafter(tiny, dt(0)))]
    pairs = []
    for t in ts:
        t = dt(t)
        lt = math.log(float(t))
        pairs += [(dt(lt + s * d), t) for d in (0.0, 0.5, 2.0, 10.0, 40.0) for s in (1, -1)
                  if not (batch and s * d == 40.0)]
        pairs += [(dt(z), t) for z in (() if batch else (-1.0, 0.0, 1.0))]
    return (np.array([p[0] for p in pairs], dtype=dt).reshape(-1, 1),
            np.array([p[1] for p in pairs], dtype=dt).reshape(-1, 1))


def subnormal_target_shapes(epoch=False):
    """(label, (n, c)) of the Poisson loss's batches of subnormal_target_pool(batch=True)
    pairs: one row of several columns, a few rows, one task past LOSS_CHUNK and (not in
    the epoch, which takes its batch whole) three tasks on several threads -- each
    compiled path that sums t log t into a loss: the functional loss, loss_and_grad and
    the training epoch's loss_grad, with and without sample weights."""
    k = _paths()["LOSS_CHUNK"]
    shapes = [(1, 9), (5, 3), (k + 1, 1)] + ([] if epoch else [(2 * k + 5, 2)])
    return [(f"n={n}, c={c}, t below the smallest normal (a batch)", (n, c))
            for n, c in shapes]


def subnormal_target_batch(dname, n, c, seed):
    """(Z, T) of shape (n, c): the pool's pairs tiled (every pair in each batch of 11 or
    more, from ``seed``'s place)."""
    Zp, Tp = subnormal_target_pool(dname, batch=True)
    idx = _tile(Zp.reshape(-1), n * c, offset=seed)
    return (np.ascontiguousarray(Zp.reshape(-1)[idx].reshape(n, c)),
            np.ascontiguousarray(Tp.reshape(-1)[idx].reshape(n, c)))


def _tile(pool, n, offset=0):
    """n entries cycling through the pool with a stride coprime to its length, starting
    at ``offset``: every element of a long array has a known exact reference."""
    P = len(pool)
    stride = next(s for s in (7, 11, 13, 17, 19, 23, 1) if math.gcd(s, P) == 1)
    idx = (np.arange(n) * stride + offset) % P
    return idx


# ------------------------------------------------------------------------ references

def element_reference(name, x, p):
    """(act(x), act'(x)) in longdouble for activation ``name`` with parameter p (the
    kernels' conventions at kinks: relu'(0) = 0, leaky'(0) = slope, elu'(0) = alpha; NaN
    in, NaN out, as nnlib.functional documents -- except identity' = 1 and sign' = 0 (the
    zero map), which do not look at x)."""
    f, d = _element_reference(name, np.asarray(x, dtype=LD), p)
    nan = np.isnan(np.asarray(x, dtype=LD))
    return (np.where(nan, np.nan, f).astype(LD),
            d if name in ("identity", "sign") else np.where(nan, np.nan, d).astype(LD))


def _element_reference(name, x, p):
    p = LD(p)
    ax = np.abs(x)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        e = np.exp(-ax)
        sig = np.where(x >= 0, 1, e) / (1 + e)
        if name == "identity":
            return x.copy(), np.ones_like(x)
        if name == "sigmoid":
            return sig, e / ((1 + e) * (1 + e))
        if name == "tanh":
            t = np.tanh(x)
            ch = np.cosh(np.minimum(ax, LD(11000)))
            return t, 1 / (ch * ch)
        if name == "relu":
            return np.where(x > 0, x, LD(0)), np.where(x > 0, LD(1), LD(0))
        if name == "leaky_relu":
            return np.where(x > 0, x, p * x), np.where(x > 0, LD(1), p)
        if name == "softplus":
            return np.maximum(x, 0) + np.log1p(e), sig
        if name == "elu":
            xm = np.minimum(x, 0)
            return np.where(x > 0, x, p * np.expm1(xm)), np.where(x > 0, LD(1), p * np.exp(xm))
        if name == "sign":
            return np.sign(x), np.zeros_like(x)
    raise KeyError(name)


def _sparsemax_ld(x):
    """(p, u, tau, support mask, sum_{S}|u|) of each row of x (longdouble), by the sorted
    cumulative sums: k = max{k : 1 + k u_(k) > sum_{j<=k} u_(j)} (a prefix)."""
    m = x.max(axis=1, keepdims=True)
    u = x - m
    us = -np.sort(-u, axis=1)
    cs = np.cumsum(us, axis=1)
    j = np.arange(1, x.shape[1] + 1, dtype=LD)
    ok = 1 + j * us > cs
    k = np.where(ok.all(axis=1), x.shape[1], np.argmin(ok, axis=1))
    k = np.maximum(k, 1)
    csk = np.take_along_axis(cs, (k - 1)[:, None], axis=1)
    tau = (csk - 1) / k[:, None].astype(LD)
    p = np.maximum(u - tau, 0)
    S = p > 0
    sabs = np.where(S, np.abs(u), 0).sum(axis=1, keepdims=True)
    return p, u, tau, S, sabs


def _shifted_exp(x):
    """u = x - max, e = exp(u), s = sum e and log s for each row, log s as log1p of the
    sum of the terms other than the (first) maximum, whose term is exactly 1: log(s) of a
    rounded s = 1 + tiny would lose the tiny part (the log-softmax of the maximum entry,
    the cross-entropy of a confident right answer)."""
    m = x.max(axis=1, keepdims=True)
    u = x - m
    e = np.exp(u)
    first = np.argmax(x, axis=1)
    rest = np.where(np.arange(x.shape[1])[None, :] == first[:, None], 0, e).sum(
        axis=1, keepdims=True)
    return u, e, 1 + rest, np.log1p(rest)


def row_reference(name, X, G=None):
    """Exact (longdouble) value and cancellation term T of an output map or its vjp on the
    rows of X (and upstream gradient G): ((value, T), (vjp, T)) -- see ERROR_MODELS. A row
    holding a NaN is NaN throughout (forward and vjp), as the kernels document."""
    fwd, vjp = _row_reference(name, X, G)
    nan = np.isnan(np.asarray(X, dtype=np.float64)).any(axis=1, keepdims=True)
    fwd = (np.where(nan, np.nan, fwd[0]).astype(LD), fwd[1])
    if vjp is not None:
        vjp = (np.where(nan, np.nan, vjp[0]).astype(LD), vjp[1])
    return fwd, vjp


def _row_reference(name, X, G=None):
    x = np.asarray(X, dtype=LD)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if name == "sparsemax":
            p, u, tau, S, sabs = _sparsemax_ld(x)
            T = np.abs(u) + np.abs(tau) + sabs + 1
            if G is None:
                return (p, T), None
            g = np.asarray(G, dtype=LD)
            k = S.sum(axis=1, keepdims=True)
            mean = np.where(S, g, 0).sum(axis=1, keepdims=True) / k
            mabs = np.where(S, np.abs(g), 0).sum(axis=1, keepdims=True) / k
            return (p, T), (np.where(S, g - mean, 0), np.where(S, np.abs(g) + mabs, 0))
        u, e, s, log_s = _shifted_exp(x)
        p = e / s
        if name == "softmax":
            fwd = (p, p * np.abs(u))
        else:
            # the kernel's log s of a sum of c terms: absolute error (c - 1) u + u
            fwd = (u - log_s, np.abs(u) + log_s + x.shape[1])
        if G is None:
            return fwd, None
        g = np.asarray(G, dtype=LD)
        if name == "softmax":
            dot = (g * p).sum(axis=1, keepdims=True)
            v = p * (g - dot)
            gp = (np.abs(g) * p).sum(axis=1, keepdims=True)
            # the dtype's rounded softmax is reused for <g, p> (T1)
            T = (p * gp, p * (np.abs(g) + (np.abs(g) * p * (1 + np.abs(u))).sum(
                axis=1, keepdims=True)) + p * np.abs(u) * np.abs(g - dot))
        else:
            tot = g.sum(axis=1, keepdims=True)
            v = g - p * tot
            # the dtype's rounded softmax times sum(g) (T1)
            T = (p * np.abs(tot), np.abs(g) + p * np.abs(g).sum(axis=1, keepdims=True)
                 * (1 + np.abs(u)))
        return fwd, (v, T)


def loss_reference(name, Z, y, margin=1.0, per_row=False, weight=None):
    """Exact (longdouble) mean loss and its gradient with their T terms:
    ((mean, T_mean), (grad, T_grad)) for loss ``name`` on (n, c) scores Z; with
    ``per_row`` the loss of each row alone (the mean of a batch of that one row) and its T
    in place of the mean. With ``weight`` ((n,), >= 0, not all 0) the sample-weighted mean
    ``sum_i w_i L_i / sum_i w_i`` (its T likewise) and the gradient rows
    ``w_i dL_i / sum_i w_i``: the training epoch's loss under ``sample_weight``."""
    x = np.asarray(Z, dtype=LD)
    n, c = x.shape
    # the gradient's divisor: n, or per row sum(w) / w_i (inf at w_i = 0: a zero row)
    dv = n
    if weight is not None:
        w = np.asarray(weight, dtype=LD)
        with np.errstate(divide="ignore"):
            dv = (w.sum() / w)[:, None]
    onehot = None
    if name in ("softmax_cross_entropy", "sparsemax_loss", "hinge_loss"):
        y = np.asarray(y, dtype=np.int64)
        onehot = (np.arange(c)[None, :] == y[:, None]).astype(LD)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if name == "softmax_cross_entropy":
            u, e, s, log_s = _shifted_exp(x)
            p = e / s
            uy = (u * onehot).sum(axis=1)
            v = -uy + log_s[:, 0]
            Tv = v + c                       # log of a c-term sum: (c - 1) u + u
            grad = (p - onehot) / dv
            # the exps are rounded to the dtype before the division (T1)
            Tg = (p / dv, (p * (1 + np.abs(u)) + onehot) / dv)
        elif name == "squared_error":
            d = x - np.asarray(y, dtype=LD).reshape(x.shape)
            v = 0.5 * (d * d).sum(axis=1)
            Tv = np.zeros_like(v)
            grad, Tg = d / dv, np.zeros_like(d)
        elif name == "logistic_loss":
            yy = np.asarray(y).reshape(x.shape).astype(LD)
            ax = np.abs(x)
            e = np.exp(-ax)
            l1 = np.log1p(e)
            sp_pos = np.maximum(x, 0) + l1          # softplus(z): the loss for y = 0
            sp_neg = np.maximum(-x, 0) + l1         # softplus(-z): for y = 1
            v = np.where(yy == 1, sp_neg, sp_pos).sum(axis=1)
            sig = np.where(x >= 0, 1, e) / (1 + e)          # sigma(z)
            sig_m = np.where(x >= 0, e, 1) / (1 + e)        # sigma(-z) = 1 - sigma(z)
            grad = np.where(yy == 1, -sig_m, sig) / dv
            Tv, Tg = np.zeros_like(v), np.zeros_like(grad)
        elif name == "sparsemax_loss":
            p, u, tau, S, sabs = _sparsemax_ld(x)
            uy = (u * onehot).sum(axis=1)
            v = 0.5 + (p * (u - p / 2)).sum(axis=1) - uy
            Tv = 1 + sabs[:, 0] + np.abs(uy)
            grad = (p - onehot) / dv
            Tg = (np.abs(u) + np.abs(tau) + sabs + 1 + onehot) / dv
        elif name == "hinge_loss":
            others = np.where(onehot > 0, -np.inf, x)
            if c == 1:
                v = np.zeros(n, dtype=LD)
                Tv = np.zeros(n, dtype=LD)
                grad = np.zeros_like(x)
            else:
                jstar = np.argmax(others, axis=1)     # the FIRST index attaining the max
                best = np.take_along_axis(x, jstar[:, None], axis=1)[:, 0]
                zy = (x * onehot).sum(axis=1)
                h = LD(margin) + best - zy
                v = np.maximum(h, 0)
                Tv = LD(margin) + np.abs(best) + np.abs(zy)
                ej = (np.arange(c)[None, :] == jstar[:, None]).astype(LD)
                grad = np.where((h >= 0)[:, None], ej - onehot, 0) / dv
            Tg = np.zeros_like(grad)
        elif name == "poisson_loss":
            v, Tv, grad, Tg = _poisson_ld(np.asarray(Z), np.asarray(y).reshape(x.shape), dv)
        else:
            raise KeyError(name)
    if per_row:
        return (v, Tv), (grad, Tg)
    if weight is not None:
        return ((w * v).sum() / w.sum(), (w * Tv).sum() / w.sum()), (grad, Tg)
    return (v.sum() / n, Tv.sum() / n), (grad, Tg)


_POISSON_MEMO = {}        # (z bits, t bits) as float64 -> (loss, T, e^z - t, e^z)


def _poisson_ld(Z, Y, n):
    """Per-row Poisson losses, their T, the gradient and its T (longdouble) for (n, c)
    arrays, the gradient divided by ``n`` (a number or an (n, 1) column): each distinct
    (z, t) pair is evaluated once in mpmath at 40 digits (phi(d) = e^d - 1 - d for d near 0
    and log t itself would cancel or round in longdouble)."""
    import mpmath
    P = _paths()
    near = P["NN_POISSON_NEAR"]
    z64, t64 = Z.astype(np.float64).reshape(-1), Y.astype(np.float64).reshape(-1)
    pairs, inv = np.unique(np.stack([z64.view(np.uint64), t64.view(np.uint64)], axis=1),
                           axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    to_ld = lambda v: LD(mpmath.nstr(v, 30, min_fixed=1, max_fixed=0))
    vals = np.empty((len(pairs), 4), dtype=LD)
    with mpmath.workdps(40):
        for k, (zb, tb) in enumerate(pairs):
            if (zb, tb) in _POISSON_MEMO:         # every case tiles the same pool
                vals[k] = _POISSON_MEMO[zb, tb]
                continue
            z = float(np.uint64(zb).view(np.float64))
            t = float(np.uint64(tb).view(np.float64))
            if math.isnan(z) or math.isnan(t):
                vals[k] = [np.nan, 0, np.nan, 0]
                continue
            mu = mpmath.exp(mpmath.mpf(z))
            g, Tg = mu - t, mu
            if t > 0:
                lt = mpmath.log(mpmath.mpf(t))
                d = mpmath.mpf(z) - lt
                v = t * (mpmath.expm1(d) - d)
                # near: t phi(d), d carrying ~u (1 + 2|d|) (log1p(f) and r = z - k ln2_hi);
                # far: the terms e^z, t, t d, and t (|z| + |log t|) (r's rounding)
                Tv = t * abs(mpmath.expm1(d)) * (1 + 2 * abs(d))
                if abs(d) >= near * (1 - 1e-9):
                    Tv += mu + t * (1 + abs(d) + abs(z) + abs(lt))
            else:
                v, Tv = mu, 0
            vals[k] = [to_ld(v), to_ld(Tv), to_ld(g), to_ld(Tg)]
            _POISSON_MEMO[zb, tb] = vals[k].copy()
    e = vals[inv].reshape(Z.shape + (4,))
    return (e[..., 0].sum(axis=1), e[..., 1].sum(axis=1), e[..., 2] / n, e[..., 3] / n)


# ------------------------------------------------------------------------ the plan

def _several_threads():
    from nnlib import _threads
    return max(2, _threads.thread_limit())


def plan():
    """{family: [(label, shape, threshold)]}: the shapes each kernel family runs, each
    labelled with the threshold it straddles (``n - 1``, ``n``, ``n + 1``)."""
    P = _paths()

    def around(key, base, fmt):
        t = P[key] if base is None else base
        return [(fmt.format(v=v, rel=rel, key=key), v, key)
                for v, rel in ((t - 1, "-1"), (t, ""), (t + 1, "+1"))]
    ac = P["ACT_CHUNK"]
    acts = [("n=1 (one element)", 1, "vector tail"), ("n=7 (vector tail)", 7, "vector tail"),
            ("n=17 (vector tail)", 17, "vector tail")]
    acts += [(f"n=ACT_CHUNK{rel} ({v})", v, key) for (_, v, key), rel in
             zip(around("ACT_CHUNK", None, ""), ("-1", "", "+1"))]
    acts += [(f"n=2*ACT_CHUNK+1 ({2 * ac + 1}, three tasks)", 2 * ac + 1, "ACT_CHUNK")]
    pm = P["PARALLEL_MIN_SIZE"]
    acts_auto = [(f"n=PARALLEL_MIN_SIZE{rel} ({v}), n_threads=None", v, "PARALLEL_MIN_SIZE")
                 for v, rel in ((pm - 1, "-1"), (pm, ""), (pm + 1, "+1"))]
    # on one thread, below GIL_RELEASE_MIN the tasks run in order with the GIL held, from
    # it on in the OpenMP loop (nnlib/_kernels/gil.pxd)
    gm = P["GIL_RELEASE_MIN"]
    acts_gil = [(f"n=GIL_RELEASE_MIN{rel} ({v}, "
                 f"{'in order, GIL held' if v < gm else 'OpenMP loop, GIL released'})", v,
                 "GIL_RELEASE_MIN") for v, rel in ((gm - 1, "-1"), (gm, ""), (gm + 1, "+1"))]
    vb, sim = P["VEC_BLOCK"], P["SPARSEMAX_INSERTION_MAX"]
    wide = [(f"c=VEC_BLOCK{rel} ({v})", v, "VEC_BLOCK")
            for v, rel in ((vb - 1, "-1"), (vb, ""), (vb + 1, "+1"))] + [
        (f"c=2*VEC_BLOCK+1 ({2 * vb + 1}, three blocks)", 2 * vb + 1, "VEC_BLOCK")]
    small = [(f"c={c}", c, "narrow row") for c in (1, 2, 3, 4)]
    sims = [(f"c=SPARSEMAX_INSERTION_MAX{rel} ({v}, {'insertion' if v <= sim else 'heap'}"
             f" sort)", v, "SPARSEMAX_INSERTION_MAX")
            for v, rel in ((sim - 1, "-1"), (sim, ""), (sim + 1, "+1"))]
    per_min = P["CE_MULTIROW_MIN_ROWS"]
    c_split = vb // per_min                       # the widest row packed several per block
    ce_c = [(f"c=VEC_BLOCK//CE_MULTIROW_MIN_ROWS{rel} ({v}, "
             f"{'rows packed per block' if vb // v >= per_min else 'row by row'})", v,
             "CE_MULTIROW_MIN_ROWS") for v, rel in ((c_split - 1, "-1"), (c_split, ""),
                                                    (c_split + 1, "+1"))]
    # rows of at most NN_CE_SHORT_MAX_C classes go through ce_rows.h (AVX-512): one and
    # two vectors of 8 classes, the second one lane wide, and wider rows on either side
    cs = P["NN_CE_SHORT_MAX_C"]
    ce_short = [(f"c=NN_CE_SHORT_MAX_C{rel} ({v}, "
                 f"{'ce_rows.h' if v <= cs else 'exp_shifted_rows'})", v, "NN_CE_SHORT_MAX_C")
                for v, rel in ((cs - 1, "-1"), (cs, ""), (cs + 1, "+1"))] + [
        ("c=9 (ce_rows.h's second vector one lane wide)", 9, "NN_CE_SHORT_MAX_C")]
    lc = P["LOSS_CHUNK"]
    # loss_grad adds its task sums in np.sum's pairwise order: in order under 8 sums,
    # from 8 on in 8 partial sums and a tail (ten tasks: a tail of 2)
    chunks = [(f"n=LOSS_CHUNK{rel} ({v})", v, "LOSS_CHUNK")
              for v, rel in ((lc - 1, "-1"), (lc, ""), (lc + 1, "+1"))] + [
        (f"n=2*LOSS_CHUNK+1 ({2 * lc + 1}, three tasks)", 2 * lc + 1, "LOSS_CHUNK"),
        (f"n=9*LOSS_CHUNK+1 ({9 * lc + 1}, ten tasks: 8 partial sums and a tail)",
         9 * lc + 1, "LOSS_CHUNK")]
    per4 = vb // 4
    blocks4 = [(f"n=VEC_BLOCK//4{rel} ({v}) at c=4 (rows per packed block)", v, "VEC_BLOCK")
               for v, rel in ((per4 - 1, "-1"), (per4, ""), (per4 + 1, "+1"))]
    # through nnlib.functional the logistic loss runs in tasks of LOSS_CHUNK rows, so its
    # VEC_BLOCK blocks of scores split only when LOSS_CHUNK > VEC_BLOCK (the training loop
    # passes whole batches: verify.train)
    split = "blocks split" if P["LOSS_CHUNK"] > vb else "tasks of LOSS_CHUNK rows: one block"
    logi = [(f"n=VEC_BLOCK{rel} ({v}; {split})", v, "VEC_BLOCK")
            for v, rel in ((vb - 1, "-1"), (vb, ""), (vb + 1, "+1"))]
    pme = P["PAR_MIN_ELEMS"]
    dense = [("1 x 7, X = +1 (one row: plain loops, not BLAS)", (1, 7), "single row", 1.0),
             ("1 x 7, X = -1 (one row: plain loops, not BLAS)", (1, 7), "single row", -1.0)]
    for target, rel in ((pme - 1, "-1"), (pme, ""), (pme + 1, "+1")):
        r = max(d for d in range(1, math.isqrt(target) + 1) if target % d == 0)
        m = target // r
        dense.append((f"{r} x {m} = PAR_MIN_ELEMS{rel} ({target})", (r, m), "PAR_MIN_ELEMS",
                      1.0))
    # the training epoch passes a whole batch to the row-level loss in one call: the
    # logistic loss's VEC_BLOCK blocks of n*c scores split there (train.loss_grad)
    epoch = {name: [(f"epoch, n=VEC_BLOCK+1 ({vb + 1}) rows x c=4 in one call", (vb + 1, 4),
                     "VEC_BLOCK")] for name in LOSS_KERNELS if name != "logistic_loss"}
    epoch["logistic_loss"] = [
        (f"epoch, n*c=VEC_BLOCK{rel} ({v}) scores in one call", (v, 1), "VEC_BLOCK")
        for v, rel in ((vb - 1, "-1"), (vb, ""), (vb + 1, "+1"), (2 * vb + 1, "*2+1"))]
    # sample weights run a branch of their own, row by row (weighted_loss_grad_batch):
    # a few rows per loss, with unequal weights, a 0 among them (sample_weights)
    weighted = {name: [(f"epoch, sample-weighted, n={n} rows x c={c}", (n, c),
                        "sample weight")]
                for name in LOSS_KERNELS
                for n, c in [(12, 1) if name == "logistic_loss" else (9, 4)]}
    return {
        "epoch": epoch,
        "epoch_weighted": weighted,
        "activation": [("elementwise", n, key, lab) for lab, n, key in acts] + [
            ("auto threads", n, key, lab) for lab, n, key in acts_auto] + [
            ("one thread", n, key, lab) for lab, n, key in acts_gil],
        "softmax": small + wide, "log_softmax": small + wide,
        "sparsemax": small + sims + wide[-1:],
        "softmax_cross_entropy": small + ce_short + ce_c + wide[1:3]
        + [(lab + "", (n, 4), key) for lab, n, key in chunks + blocks4],
        "squared_error": small + wide[2:3] + [(lab, (n, 4), key) for lab, n, key in chunks],
        "logistic_loss": [("n=16, c=1", (16, 1), "narrow row")]
        + [(lab, (n, 1), key) for lab, n, key in chunks + logi],
        # blocks of VEC_BLOCK scores: n*c past one and two blocks, within a task of
        # LOSS_CHUNK rows (c = 3) and across rows (c = VEC_BLOCK +- 1, two rows)
        "poisson_loss": [("n=16, c=1", (16, 1), "narrow row")]
        + [(lab, (n, 3), key) for lab, n, key in chunks]
        + [(f"n=2 rows x c=VEC_BLOCK{rel} ({v}): blocks across rows", (2, v), "VEC_BLOCK")
           for v, rel in ((vb - 1, "-1"), (vb, ""), (vb + 1, "+1"))]
        + [(f"n=1 x c=2*VEC_BLOCK+1 ({2 * vb + 1}, three blocks)", (1, 2 * vb + 1),
            "VEC_BLOCK")],
        "sparsemax_loss": small[1:] + sims + [(lab, (n, 4), key) for lab, n, key in chunks],
        "hinge_loss": small + [(f"c=65", 65, "wide row")]
        + [(lab, (n, 4), key) for lab, n, key in chunks],
        "dense": dense,
        "dense_products": product_plan(P),
        "epoch_sgd": sgd_step_plan(P),
        "epoch_relu": relu_step_plan(P),
        "epoch_narrow": narrow_pass_plan(P),
        "epoch_sparse": sparse_step_plan(),
        "epoch_rows": rows_step_plan(),
        "epoch_l2": l2_epoch_plan(),
        "epoch_l2_adam": l2_adam_plan(),
        "epoch_rows_steps": rows_steps_plan(P),
        "epoch_b1": batch1_steps_plan(),
        "epoch_sklearn": sklearn_step_plan(),
        "epoch_pool": pool_step_plan(),
    }


# The three products of a Dense layer with mm's (m, n, k) for a layer of (rows, n_in,
# n_out): H = X W, dW = X^T dZ, dX = dZ W^T (dense.pxd)
PRODUCTS = {"H = X W": lambda r, i, o: (r, o, i), "dW = X^T dZ": lambda r, i, o: (i, o, r),
            "dX = dZ W^T": lambda r, i, o: (r, i, o)}


def blocked(P, m, n, k):
    """Whether mm sends a product of (m, n, k) to gemm_small.h's blocked loops (where they
    are built): m > 1 and 1 < k <= NN_SMALL_GEMM_MAX_K, n >= NN_SMALL_GEMM_MIN_N and
    m n k <= NN_SMALL_GEMM_MAX_MNK (dense.pxd's mm)."""
    return (m > 1 and 1 < k <= P["NN_SMALL_GEMM_MAX_K"] and n >= P["NN_SMALL_GEMM_MIN_N"]
            and m * n * k <= P["NN_SMALL_GEMM_MAX_MNK"])


def _macs_shapes(P, target):
    """Layers (rows, n_in, n_out) of exactly ``target`` multiply-adds per product that
    together put each product that can be blocked at that size, blocked but for the size,
    at ``target`` (greedy: the shape covering most products first, the smallest arrays
    on a tie), each with the products it covers."""
    divs = [d for d in range(1, math.isqrt(target) + 1) if target % d == 0]
    divs = sorted(set(divs + [target // d for d in divs]))
    cands = []
    for r in divs:
        for i in divs:
            if (target // r) % i:
                continue
            o = target // (r * i)
            big = dict(P, NN_SMALL_GEMM_MAX_MNK=target)
            cover = {name for name, f in PRODUCTS.items() if blocked(big, *f(r, i, o))}
            if cover:
                cands.append((r, i, o, cover))
    left, out = set().union(*(c[3] for c in cands)) if cands else set(), []
    while left:
        r, i, o, cover = min(cands, key=lambda c: (-len(c[3] & left),
                                                   _layer_size(*c[:3])))
        out.append(((r, i, o), sorted(cover & left, key=list(PRODUCTS).index)))
        left -= cover
    return out


def sgd_step_plan(P):
    """[(label, (B, n_in, n_out), threshold)]: one-layer networks whose plain-SGD weight
    update (mm with m = n_in, n = n_out, k = B rows, alpha -lr, beta 1 or 1 - lr wd)
    straddles each bound of mm's blocked loops, and the bounds of the narrow float32
    update of NN_SMALL_GEMM_NARROW_STEP_MIN_N to NN_SMALL_GEMM_MIN_N - 1 columns
    (dense.pxd's narrow_step: the blocked loops with OpenBLAS's write-back) up to
    NN_SMALL_GEMM_NARROW_STEP_MAX_MNK multiply-adds."""
    K, N, MNK = (P["NN_SMALL_GEMM_MAX_K"], P["NN_SMALL_GEMM_MIN_N"],
                 P["NN_SMALL_GEMM_MAX_MNK"])
    out = [("B=1, 20 -> 24 (k = 1: the rank-one plain loop)", (1, 20, 24),
            "one row / k = 1"),
           ("B=2, 20 -> 24 (k = 2)", (2, 20, 24), "one row / k = 1")]
    out += [(f"B=13, 20 -> {v}: n = NN_SMALL_GEMM_MIN_N{rel} ({v})", (13, 20, v),
             "NN_SMALL_GEMM_MIN_N") for v, rel in ((N - 1, "-1"), (N, ""), (N + 1, "+1"))]
    out += [(f"B={v}, 20 -> 24: k = NN_SMALL_GEMM_MAX_K{rel} ({v})", (v, 20, 24),
             "NN_SMALL_GEMM_MAX_K") for v, rel in ((K - 1, "-1"), (K, ""), (K + 1, "+1"))]
    for t, rel in ((MNK - 1, "-1"), (MNK, ""), (MNK + 1, "+1")):
        out += [(f"B={r}, {i} -> {o}: m n k = NN_SMALL_GEMM_MAX_MNK{rel} ({t})", (r, i, o),
                 "NN_SMALL_GEMM_MAX_MNK")
                for (r, i, o), names in _macs_shapes(P, t) if "dW = X^T dZ" in names]
    # narrower updates: float32's narrow_step from NN_SMALL_GEMM_NARROW_STEP_MIN_N columns
    # up to NN_SMALL_GEMM_NARROW_STEP_MAX_MNK multiply-adds, BLAS outside
    SM, SX = P["NN_SMALL_GEMM_NARROW_STEP_MIN_N"], P["NN_SMALL_GEMM_NARROW_STEP_MAX_MNK"]
    out += [(f"B=13, 20 -> {v}: n = NN_SMALL_GEMM_NARROW_STEP_MIN_N{rel} ({v})",
             (13, 20, v), "NN_SMALL_GEMM_NARROW_STEP_MIN_N")
            for v, rel in ((SM - 1, "-1"), (SM, ""), (SM + 1, "+1"))]
    at = _narrow_step_shape(P, SX)
    for (B, i, o), rel in ((_narrow_step_shape(P, SX - 1), "-1"), (at, ""),
                           ((at[0], at[1] + 1, at[2]), "+")):
        what = (f"= NN_SMALL_GEMM_NARROW_STEP_MAX_MNK{rel} ({B * i * o})" if rel != "+"
                else f"{B * i * o} > NN_SMALL_GEMM_NARROW_STEP_MAX_MNK")
        out.append((f"B={B}, {i} -> {o}: m n k {what}", (B, i, o),
                    "NN_SMALL_GEMM_NARROW_STEP_MAX_MNK"))
    return out


def _narrow_step_shape(P, target):
    """(B, n_in, n_out) whose weight update (m = n_in, n = n_out, k = B) has exactly
    ``target`` multiply-adds with n_out in [NN_SMALL_GEMM_NARROW_STEP_MIN_N,
    NN_SMALL_GEMM_MIN_N) and 2 <= B <= NN_SMALL_GEMM_MAX_K: the fewest rows B, then the
    narrowest layer."""
    o, B, i = min(_narrow_factors(P, target, "NN_SMALL_GEMM_NARROW_STEP_MIN_N"),
                  key=lambda f: (f[1], f[0], f[2]))
    return (B, i, o)


def _narrow_factors(P, target, min_n):
    """Every (o, d, f) with o d f = ``target``, o in [P[min_n], NN_SMALL_GEMM_MIN_N) (the
    narrow columns), 2 <= d <= NN_SMALL_GEMM_MAX_K (the blocked loops' bound on k) and
    f >= 2."""
    return [(o, d, target // (o * d))
            for o in range(P[min_n], P["NN_SMALL_GEMM_MIN_N"])
            for d in range(2, P["NN_SMALL_GEMM_MAX_K"] + 1)
            if target % (o * d) == 0 and target // (o * d) >= 2]


def relu_step_plan(P):
    """[(label, (B, n_in, hidden, n_out), threshold)]: relu-identity networks whose
    hidden layer's input gradient dZ_1 W_1^T (mm's m = B, n = hidden, k = n_out) and
    forward product X W_0 (n = hidden) straddle NN_SMALL_GEMM_MIN_N, where the training
    loop takes relu's backward and the bias and relu into the blocked loops' write-back
    (gemm_small.h with AVX-512; act_backward and bias_act elsewhere), and a hidden layer
    of several vectors with a masked last one; one output (k = 1, never blocked) beside
    three; output layers NARROW_K -1/0/+1 wide, above which float64's input gradient is
    a product (up to NARROW_K act_backward_product forms it: the write-back's float64
    form is reached only above it; float32's is a product on every side); output layers
    NN_IDENTITY_SUMS_MAX_C -1/0/+1 wide, up to which the output layer's column sums stay
    in registers, and 8 and 9 wide (the sums' second vector empty, one lane), over 1 and
    2 rows (one row's sums are act_backward's)."""
    N, NK, SC = P["NN_SMALL_GEMM_MIN_N"], P["NARROW_K"], P["NN_IDENTITY_SUMS_MAX_C"]
    out = [(f"B=13, 5 -> {v} relu -> 3: n = NN_SMALL_GEMM_MIN_N{rel} ({v})",
            (13, 5, v, 3), "NN_SMALL_GEMM_MIN_N")
           for v, rel in ((N - 1, "-1"), (N, ""), (N + 1, "+1"))]
    out += [("B=13, 5 -> 37 relu -> 3: hidden 37 (vectors and a masked tail)",
             (13, 5, 37, 3), "masked tail"),
            ("B=13, 5 -> 37 relu -> 1 (k = 1: the plain loops)", (13, 5, 37, 1),
             "one row / k = 1")]
    # float64 forms the input gradient under a layer at most NARROW_K wide inside
    # act_backward_product, so only a wider output layer puts its relu backward in the
    # product's write-back; 70 = 64 + 6 floats: a panel of four vectors and a masked one
    # (32 + 32 + 6 doubles: three panels). The case above the threshold says
    # "> NARROW_K", not "NARROW_K+1": its label is its key in the committed baseline.
    out += [(f"B=13, 5 -> 70 relu -> {v}: n_out = NARROW_K{rel} ({v}: float64's dZ W^T "
             "formed by act_backward_product), panels of 4 vectors and a masked one",
             (13, 5, 70, v), "NARROW_K") for v, rel in ((NK - 1, "-1"), (NK, ""))]
    out.append((f"B=13, 5 -> 70 relu -> {NK + 1}: n_out > NARROW_K (float64's dZ W^T "
                "blocked too), panels of 4 vectors and a masked one",
                (13, 5, 70, NK + 1), "NARROW_K"))
    # the identity output layer's backward keeps its column sums in two vectors of 8
    # doubles (act_row.h's nn_identity_sums, AVX-512) for 2+ rows of at most
    # NN_IDENTITY_SUMS_MAX_C columns, in memory otherwise (act_backward): b_1 holds them
    out += [(f"B=13, 5 -> 20 relu -> {v}: n_out = NN_IDENTITY_SUMS_MAX_C{rel} ({v}: "
             f"{'the sums in registers' if v <= SC else 'the sums in memory'})",
             (13, 5, 20, v), "NN_IDENTITY_SUMS_MAX_C")
            for v, rel in ((SC - 1, "-1"), (SC, ""), (SC + 1, "+1"))]
    out += [(f"B=13, 5 -> 20 relu -> {v}: n_out {v} (the sums' high vector "
             f"{'empty' if v == 8 else 'one lane'})", (13, 5, 20, v), "identity sums lanes")
            for v in (8, 9) if v <= SC]
    out += [(f"B={b}, 5 -> 20 relu -> 10: {what}", (b, 5, 20, 10), "identity sums rows")
            for b, what in ((1, "one row (act_backward's sums)"),
                            (2, "two rows (the fewest summed in registers)"))]
    # a float32 output layer of NN_SMALL_GEMM_NARROW_MIN_N up to NN_SMALL_GEMM_MIN_N - 1
    # columns takes its forward product H_0 W_1 and bias into the blocked loops
    # (dense.pxd's narrow_forward) up to NN_SMALL_GEMM_NARROW_MAX_MNK multiply-adds;
    # narrower or larger ones go to BLAS and bias_act
    NM, NX = P["NN_SMALL_GEMM_NARROW_MIN_N"], P["NN_SMALL_GEMM_NARROW_MAX_MNK"]
    out += [(f"B=13, 5 -> 20 relu -> {v}: n_out = NN_SMALL_GEMM_NARROW_MIN_N{rel} ({v})",
             (13, 5, 20, v), "NN_SMALL_GEMM_NARROW_MIN_N")
            for v, rel in ((NM - 1, "-1"), (NM, ""), (NM + 1, "+1"))]
    at = _narrow_forward_shape(P, NX)
    above = (at[0] + 1,) + at[1:]
    for (B, i, h, o), rel in ((_narrow_forward_shape(P, NX - 1), "-1"), (at, ""),
                              (above, "+")):
        what = (f"= NN_SMALL_GEMM_NARROW_MAX_MNK{rel} ({B * h * o})" if rel != "+" else
                f"{B * h * o} > NN_SMALL_GEMM_NARROW_MAX_MNK")
        out.append((f"B={B}, {i} -> {h} relu -> {o}: m n k of H_0 W_1 {what}",
                     (B, i, h, o), "NN_SMALL_GEMM_NARROW_MAX_MNK"))
    return out


def _narrow_forward_shape(P, target):
    """(B, 5, h, n_out) whose output layer's forward product H_0 W_1 (m = B, n = n_out,
    k = h) has exactly ``target`` multiply-adds with n_out in [NN_SMALL_GEMM_NARROW_MIN_N,
    NN_SMALL_GEMM_MIN_N) and 2 <= h <= NN_SMALL_GEMM_MAX_K: the fewest rows B, then the
    narrowest layers."""
    o, h, B = min(_narrow_factors(P, target, "NN_SMALL_GEMM_NARROW_MIN_N"),
                  key=lambda f: (f[2], f[0], f[1]))
    return (B, 5, h, o)


def narrow_pass_plan(P):
    """[(label, (B, n_in, hidden, n_out, hidden activation), key)]: one plain-SGD step of
    networks whose float64 input gradient dH_0 = dZ_1 W_1^T is formed inside the hidden
    layer's backward pass (dense.pxd's act_backward_product: 2+ rows, an output layer 2 to
    NARROW_K wide) in passes of up to four products, each pass one call of _fma_terms
    with its count as a literal: every n_out from 2 to NARROW_K, so that each form of a
    pass runs -- the first pass of 2, 3 or 4 products and a later pass of 1, 2, 3 or 4
    after one, two and three passes of four -- under relu (act_row.h's select) and
    identity (the activations' generic loop). Why: the other epoch plans pick their
    output widths for other thresholds, and of them only n_out 15 (two relu cases) ends
    on a later pass of three products, 13 (one) on a later pass of one, none on 5-7 or
    11-12: a slip in one pass form was seen by a case or two. Float32 forms dZ_1 W_1^T
    as a product (mm), which the same cases hold exact too."""
    return [(f"B=13, 5 -> 20 {act} -> {o}: n_out {o}, dZ_1 W_1^T in passes of "
             + " + ".join(str(min(4, o - p)) for p in range(0, o, 4)) + " (float64)",
             (13, 5, 20, o, act), "act_backward_product passes")
            for act in ("relu", "identity") for o in range(2, P["NARROW_K"] + 1)]


def sparse_step_plan():
    """[(label, (B, n_in, hidden, n_out), path)]: steps of the training loop on CSR X
    (sparse_rows.pxd: the first layer's X_b W and X_b^T dZ read X's stored rows in place,
    in the epoch's order, so every batch of several rows is taken in reverse): a
    one-layer identity network (hidden 0) under each form of X_b^T dZ the step runs --
    fused into plain SGD's update (alpha -lr, beta 1, or 1 - lr wd with weight decay)
    and formed alone before a momentum step (alpha 1, beta 0) -- and a relu network,
    whose forward product X_b W_0 is the sparse one. sparse_rows has no thresholds:
    one row and several rows cover its loops."""
    fused, decay = "sparse X: X^T dZ fused into the step", "sparse X: fused, with decay"
    alone, first = "sparse X: X^T dZ, then the step", "sparse X: X W_0 forward"
    return [("B=1, 20 -> 24: CSR X, plain SGD (X^T dZ fused: alpha -lr, beta 1)",
             (1, 20, 0, 24), fused),
            ("B=13, 20 -> 24: CSR X, rows reversed, plain SGD (alpha -lr, beta 1)",
             (13, 20, 0, 24), fused),
            ("B=13, 20 -> 24: CSR X, rows reversed, weight_decay 2^-4 (alpha -lr, beta "
             "1 - 2^-7)", (13, 20, 0, 24), decay),
            ("B=13, 20 -> 24: CSR X, rows reversed, momentum 1/2 (X^T dZ alone: alpha "
             "1, beta 0)", (13, 20, 0, 24), alone),
            ("B=1, 20 -> 24: CSR X, momentum 1/2 (X^T dZ alone)", (1, 20, 0, 24), alone),
            ("B=13, 20 -> 30 relu -> 5: CSR X, rows reversed (X_b W_0, then the fused "
             "step)", (13, 20, 30, 5), first)]


def rows_step_plan():
    """[(label, (B, n_in, hidden, n_out), path)]: steps of the training loop whose first
    layer reads the batch's rows of dense X in place through their numbers (dense.pxd's
    ``rows_in_place``: a first layer of identity or relu whose forward X_b W_0 and
    weight product both take gemm_small.h's blocked loops, nn_gemm_small_{f,d}_rows,
    AVX-512: plain SGD's fused step W_0 <- beta W_0 - lr X_b^T dZ, or X_b^T dZ alone
    before a momentum step, alpha 1 and beta 0), the batch's rows in reverse order, so
    that a row read by its position instead of its number is another row (the other
    epoch cases take the rows in X's order): a one-layer identity network (beta 1, and
    1 - lr wd with decay; momentum) and a relu network; 13 rows, so the forward's row
    blocks include one past the first (float32 24 wide: 12 + 1; float64: 8 + 5; the
    relu layer, float64 30 wide: 6 + 6 + 1)."""
    fused, decay = "rows in place: X^T dZ fused into the step", "rows in place: with decay"
    alone, first = "rows in place: X^T dZ, then the step", "rows in place: X W_0 forward"
    return [("B=13, 20 -> 24: X's rows read in place, reversed, plain SGD (alpha -lr, "
             "beta 1)", (13, 20, 0, 24), fused),
            ("B=13, 20 -> 24: X's rows read in place, reversed, weight_decay 2^-4 (alpha "
             "-lr, beta 1 - 2^-7)", (13, 20, 0, 24), decay),
            ("B=13, 20 -> 24: X's rows read in place, reversed, momentum 1/2 (X^T dZ "
             "alone: alpha 1, beta 0)", (13, 20, 0, 24), alone),
            ("B=13, 20 -> 30 relu -> 5: X's rows read in place, reversed (X_b W_0, then "
             "the fused step)", (13, 20, 30, 5), first)]


def rows_steps_plan(P):
    """[(label, (N, B, n_in, n_out), path)]: epochs of several steps of a one-layer identity
    network whose layer reads the batch's rows of X in place through their numbers
    (``rows_in_place``), the rows in reverse order, on the exact operands of
    ``rows_steps_operands``: plain SGD over PADDED_MIN_STEPS + 1 steps, where the loop
    steps W_0 in a copy whose rows are padded to whole cache lines and copies it back at
    the end of the call (20 outputs: 160 and 80 bytes a row, never whole lines), and
    momentum over two steps, whose gradient X_b^T dZ is formed alone at each step (alpha
    1, beta 0) into the workspace the step before wrote. Why: the other rows-in-place
    cases take one step, where neither the copy (made only for calls of
    PADDED_MIN_STEPS steps and more) nor a gradient left by an earlier step is seen."""
    n = P["PADDED_MIN_STEPS"] + 1
    key = "rows in place, steps in a row"
    return [(f"N={16 * n}, B=16 ({n} steps), 20 -> 20 identity: X's rows read in place, "
             "reversed, plain SGD (W_0's padded copy, back at the end of the call)",
             (16 * n, 16, 20, 20, "sgd"), key),
            ("N=32, B=16 (2 steps), 20 -> 20 identity: X's rows read in place, reversed, "
             "momentum 1/2 (X^T dZ alone at each step)", (32, 16, 20, 20, "momentum"), key)]


def l2_adam_plan():
    """[(label, (B, n_in, n_out), path)]: one step of an epoch with L2 under Adam, whose
    single-threaded update forms the next step's penalty beside itself in chunks of 512
    values (``optim_update_sq``; in float32 optim_f32.h's loop over each chunk, its three
    state slots n values apart): a one-layer identity network of 600 weights (a chunk of
    512 and one of 88), 16 (one short chunk), with a zero data gradient, so that the
    step is -lr g / (|g| + eps) for g = l2 w, w - lr sign(w) up to eps. Why: the L2
    epochs of ``l2_epoch_plan`` train with plain SGD and momentum, whose float32 loop
    keeps one state slot; no other case gives a rule of several slots a chunk past the
    first."""
    key = "optim_update_sq chunks"
    return [("B=13, 30 -> 20 identity: W of 600 values (an update chunk of 512 and one of "
             "88), Adam, l2 2^-4, zero data gradient", (13, 30, 20), key),
            ("B=13, 4 -> 4 identity: W of 16 values (one short chunk), Adam, l2 2^-4, zero "
             "data gradient", (13, 4, 4), key)]


def l2_epoch_plan():
    """[(label, (N, B, n_in, hidden, n_out), path)]: epochs of N rows in batches of B whose
    reported loss carries the L2 penalty l2/2 sum ||W_l||^2 of every step, formed in
    penalty.h's blocked order (blocks of 64 values, 16 lanes each, added pairwise). Each
    case trains twice: with plain SGD, whose fused step leaves the sum to the next step
    (every step sums the weights itself), and with momentum, whose update forms the next
    step's sum beside itself (``optim_update_sq``, in chunks of 512 values). Weight
    arrays of 15, 16, 35 + 21, 70 + 21 and 600 + 60 values: a lane group cut short (15,
    35, 21), none (16), a block of 64 followed by a short one (70), and an update chunk
    of 512 followed by a short one (600)."""
    key = "L2 penalty sums"
    return [("N=13, B=2 (7 steps), 5 -> 3 identity: W of 15 values (lanes cut short)",
             (13, 2, 5, 0, 3), key),
            ("N=13, B=2 (7 steps), 4 -> 4 identity: W of 16 values (whole lanes)",
             (13, 2, 4, 0, 4), key),
            ("N=13, B=2 (7 steps), 5 -> 7 relu -> 3: W_0 of 35, W_1 of 21 values",
             (13, 2, 5, 7, 3), key),
            ("N=13, B=2 (7 steps), 10 -> 7 relu -> 3: W_0 of 70 values (a block of 64 "
             "and one of 6)", (13, 2, 10, 7, 3), key),
            ("N=13, B=2 (7 steps), 30 -> 20 relu -> 3: W_0 of 600 values (an update "
             "chunk of 512 and one of 88)", (13, 2, 30, 20, 3), key)]


def batch1_steps_plan():
    """[(label, (N, n_in, hidden, n_out), path)]: epochs of N rows at batch 1 under plain
    SGD on relu-identity networks, N steps in a row: the batch-1 loop's own paths (the
    rank-one steps, float32's transposed weight copies for the input gradient, the
    fused first-layer step with the next row's product), whose state is carried from
    one step to the next; a stale or skipped value shows only from the second step. The
    fused pass and the one-row products take W_0's rows 64 at a time (blas_small.h's
    chunks of nonzero coefficients): 70 and 129 inputs end on a partial chunk (shapes
    whose exact operands batch1_steps_exact finds in a few draws)."""
    key = "batch 1, steps in a row"
    return [("N=2 rows at batch 1 (two steps), 5 -> 20 relu -> 3", (2, 5, 20, 3), key),
            ("N=2 rows at batch 1 (two steps), 7 -> 17 relu -> 9", (2, 7, 17, 9), key),
            ("N=2 rows at batch 1 (two steps), 70 -> 9 relu -> 3", (2, 70, 9, 3), key),
            ("N=2 rows at batch 1 (two steps), 129 -> 5 relu -> 2", (2, 129, 5, 2), key)]


def sklearn_step_plan():
    """[(label, (B, n_in, n_out), path)]: one step of ``train.run_epoch`` under
    scikit-learn's SGD with Nesterov momentum (``SklearnSGD``, the estimators'
    solver='sgd' default) on one-layer identity networks whose update mu v' - lr g
    cancels to 0 exactly while each of its two terms is 2^58 times the weight and more
    (``sklearn_step_operands``): scikit-learn adds the update to w, w + (mu v' - lr g),
    which leaves w as it was; an order that adds mu v' to w first rounds w away. At
    batch 1 and over two rows."""
    key = "SklearnSGD, Nesterov: an update that cancels"
    return [("B=1, 6 -> 5 identity", (1, 6, 5), key),
            ("B=2, 6 -> 5 identity (one x in both rows)", (2, 6, 5), key)]


# BLAS's thread count under which run_epoch's pool cases run (pass_blocks.pxd)
POOL_THREADS = 2
# what those cases need, in the skip verdict where the machine lacks it
POOL_NEEDS = f"OpenBLAS's thread pool on {POOL_THREADS} BLAS threads (blas.pool_threads())"


def pool_step_plan():
    """[(label, (B, n_in, hidden, n_out), path)]: relu-identity networks whose one SGD
    step of ``train.run_epoch``, with BLAS on POOL_THREADS threads and the loop's
    ``n_threads`` 1, runs its large passes on BLAS's threads (pass_blocks.pxd): a batch
    of B n_in >= PAR_MIN_ELEMS values gathered (its first-layer products too large for
    the blocked loops, so the rows are not read in place), the hidden layer's bias and
    relu over B hidden >= PAR_MIN_ELEMS values after a product too large for them; under
    an output layer wider than NARROW_K whose input gradient dZ_1 W_1^T is no blocked
    product (so neither act_backward_product nor the write-back forms relu's backward),
    the hidden layer's relu backward and the output layer's bias, identity and backward
    too, by blocks of columns."""
    B, i, h, wide = 256, 128, 128, 128          # (tests/test_verify_paths.py checks them)
    return [(f"B={B}, {i} -> {h} relu -> 10, BLAS on {POOL_THREADS} threads: the gather "
             "and bias + relu on BLAS's threads", (B, i, h, 10), "BLAS pool: gather, bias + act"),
            (f"B={B}, {i} -> {h} relu -> {wide}, BLAS on {POOL_THREADS} threads: the gather, "
             "bias + activation and both layers' backward on BLAS's threads",
             (B, i, h, wide), "BLAS pool: gather, bias + act, act_backward")]


def batch1_steps_exact(shape, seed, p=24):
    """Integer X (N, n_in), W_0, b_0, W_1, b_1 and targets T, and the exact weights and
    biases (fractions.Fraction object arrays) after ``N`` plain-SGD steps at batch 1 (lr
    2^-3, squared error, rows in order) of a relu-identity network, for ``shape`` = (N,
    n_in, hidden, n_out). Values in [-2, 2] (a third 0), drawn again until every product,
    partial sum and update of the N steps is exact in ``p`` significand bits (float32's
    24: then float64 too), the results are multiples of 2^-12, and the last hidden unit
    passes a nonzero gradient at every step (a value a step leaves behind in the
    input-gradient buffer's tail would otherwise be masked by relu)."""
    from fractions import Fraction
    N, i, h, o = shape
    F = np.vectorize(Fraction, otypes=[object])
    lr = Fraction(1, 8)
    for attempt in range(64):
        rng = np.random.default_rng([seed, 13, N, i, h, o, attempt])

        def draw(*s):
            v = rng.integers(-2, 3, s)
            v[rng.random(s) < 1 / 3] = 0
            return v
        X, W0, b0, W1, b1, T = (draw(N, i), draw(i, h), draw(h), draw(h, o), draw(o),
                                draw(N, o))
        w0, c0, w1, c1 = F(W0), F(b0), F(W1), F(b1)
        need = []                       # (largest partial sum, its grid) of each step
        live = True                     # the last hidden unit passes a gradient each step

        def mm(a, b, c=None):
            bound = abs(a) @ abs(b) + (0 if c is None else abs(c))
            grid = _den(a) * _den(b) if c is None else max(_den(a) * _den(b), _den(c))
            need.append((max(np.ravel(bound), default=0), grid))
            return a @ b + (0 if c is None else c)
        for r in range(N):
            x = F(X[r])
            z0 = mm(x, w0, c0)
            h0 = np.array([v if v > 0 else Fraction(0) for v in z0], dtype=object)
            d = mm(h0, w1, c1) - T[r]           # (1/B)(z - t) at B = 1
            need.append((max(abs(v) for v in d), _den(d)))
            dz0 = np.array([g if v > 0 else Fraction(0) for g, v in zip(mm(d, w1.T), z0)],
                           dtype=object)
            live = live and dz0[-1] != 0
            for a, g in ((w1, lr * np.outer(h0, d)), (c1, lr * d), (w0, lr * np.outer(x, dz0)),
                         (c0, lr * dz0)):
                need.append((max(np.ravel(abs(a) + abs(g))), max(_den(a), _den(g))))
            w1, c1 = w1 - lr * np.outer(h0, d), c1 - lr * d
            w0, c0 = w0 - lr * np.outer(x, dz0), c0 - lr * dz0
        if (live and all(m * g < 2 ** p for m, g in need)
                and max(_den(a) for a in (w0, c0, w1, c1)) <= 2 ** 12):
            return (X, W0, b0, W1, b1, T), (w0, c0, w1, c1)
    raise ValueError(f"batch1_steps_exact: no exact operands for {shape} (seed {seed})")


def _den(a):
    """The largest denominator of the Fractions in ``a``."""
    return max((v.denominator for v in np.ravel(a)), default=1)


def _layer_size(r, i, o):
    """Elements of a layer's X, W and H."""
    return r * i + i * o + r * o


def product_plan(P):
    """[(label, (rows, n_in, n_out), threshold)]: Dense layers whose products (H = X W,
    dW = X^T dZ, dX = dZ W^T) straddle each bound of mm's blocked loops: one row and k = 1
    (the plain loops) against 2; NN_SMALL_GEMM_MIN_N columns -1/0/+1; an inner dimension
    of NN_SMALL_GEMM_MAX_K -1/0/+1 for each product; NN_SMALL_GEMM_MAX_MNK -1/0/+1
    multiply-adds (a layer per product where no one shape has them all). Row counts
    leave every remainder of the 6-row blocks, widths every panel (two vectors, one, a
    half vector; read in place or copied)."""
    K, N, MNK = (P["NN_SMALL_GEMM_MAX_K"], P["NN_SMALL_GEMM_MIN_N"],
                 P["NN_SMALL_GEMM_MAX_MNK"])
    out = [("rows=1, 20 -> 24 (one row: plain loops)", (1, 20, 24), "one row / k = 1"),
           ("rows=2, 20 -> 24 (k = 2 for dW)", (2, 20, 24), "one row / k = 1"),
           ("13 x 1 -> 24 (H: k = 1, plain loops)", (13, 1, 24), "one row / k = 1"),
           ("13 x 2 -> 24 (H: k = 2)", (13, 2, 24), "one row / k = 1"),
           ("13 x 20 -> 1 (dX: k = 1, plain loops)", (13, 20, 1), "one row / k = 1"),
           ("13 x 20 -> 2 (dX: k = 2)", (13, 20, 2), "one row / k = 1")]
    # one row's dX = dz W^T takes the dot products of a vector of W's rows at once
    # (blas_small.h's nn_row_dots, AVX-512): 16 rows (float32) or 8 (float64) a block,
    # gathered two columns at a time, fewer than half a block in the scalar loop, and the
    # columns left after the last 4 one at a time; n_in leaves each part of a block (its
    # first half alone, one lane of the second, both halves, blocks and a tail) and n_out
    # 1-3 columns past the fours, so a block's rows or columns read from the wrong place
    # show in every one of them, not in one shape only
    out += [(f"rows=1, {i} -> {o} (one row: dX's row dots, {why})", (1, i, o),
             "one row / k = 1") for i, o, why in (
        (7, 9, "n_in under half a float32 block"), (8, 5, "half a float32 block"),
        (9, 4, "a float32 block's second half one row"), (12, 6, "12 of 16 rows"),
        (16, 5, "one whole float32 block"), (17, 7, "a block and one row"),
        (33, 8, "two blocks and one row"), (40, 13, "two blocks and a half"),
        (25, 3, "n_out under four columns"))]
    # one row's H = x W sums W's rows of nonzero x in chunks of 64 (blas_small.h's
    # nn_row_axpys): n_in past one chunk and past two, each ending on a partial chunk
    out += [(f"rows=1, {i} -> {o} (one row: x W's chunks of 64 rows, {why})", (1, i, o),
             "one row / k = 1") for i, o, why in (
        (70, 5, "a chunk and 6 rows"), (131, 3, "two chunks and 3 rows"))]
    for v, rel in ((N - 1, "-1"), (N, ""), (N + 1, "+1")):
        out.append((f"13 x {v} -> {v}: n_in = n_out = NN_SMALL_GEMM_MIN_N{rel} ({v})",
                    (13, v, v), "NN_SMALL_GEMM_MIN_N"))
    for v, rel in ((K - 1, "-1"), (K, ""), (K + 1, "+1")):
        out.append((f"7 x {v} -> {v}: k = NN_SMALL_GEMM_MAX_K{rel} ({v}) for H and dX",
                    (7, v, v), "NN_SMALL_GEMM_MAX_K"))
        out.append((f"{v} x 20 -> 24: k = NN_SMALL_GEMM_MAX_K{rel} ({v}) for dW",
                    (v, 20, 24), "NN_SMALL_GEMM_MAX_K"))
    for t, rel in ((MNK - 1, "-1"), (MNK, ""), (MNK + 1, "+1")):
        for (r, i, o), names in _macs_shapes(P, t):
            out.append((f"{r} x {i} -> {o}: m n k = NN_SMALL_GEMM_MAX_MNK{rel} ({t}) for "
                        f"{', '.join(n.split(' =')[0] for n in names)}", (r, i, o),
                        "NN_SMALL_GEMM_MAX_MNK"))
    return out


PLAN = None      # filled on first use: plan() reads nnlib/_paths.py
# PARALLEL_MIN_SIZE is nnlib/_threads.py's choice for n_threads=None, and GIL_RELEASE_MIN
# where one thread's tasks move into the OpenMP loop (code the same for every kind): two
# kinds run them
AUTO_THREAD_KINDS = ("identity", "sigmoid")
# The thread split is code shared by every kind (the prange over tasks; a kind's own loop
# runs inside one task, and every size case runs it on one thread): these kinds also run
# each split case on several threads. (A threaded call costs tens of ms on a loaded
# machine while a thread is descheduled.)
THREAD_KINDS = ("identity", "tanh", "relu")


# ------------------------------------------------------------------------ running

class _Case:
    """The figures of one kernel x output x dtype x path."""

    def __init__(self, kernel, output, dname, path, threshold, cap, blas=False):
        self.kernel, self.output, self.dname, self.path = kernel, output, dname, path
        self.threshold, self.cap = threshold, cap
        self.blas = blas        # a BLAS product: its figure is the BLAS build's rounding
        self.note = None
        self.max_ulps, self.n_points, self.worst = 0.0, 0, None
        # the figure held to the baseline: over the fixed point set only (FIXED_SEED), so
        # that a run with other seeds compares like with like; those seeds' points count
        # toward the cap
        self.base_ulps, self.fixed, self.seed = 0.0, True, 0
        self.threads = set()
        self.problems = []

    @property
    def key(self):
        return f"{self.kernel}|{self.output}|{self.dname}|{self.path}"

    def add(self, err, inputs, got, exact, threads, describe):
        """Fold the per-element errors ``err`` of one run in; ``describe(i)`` names the
        input of element i for a failure."""
        err = np.asarray(err, dtype=np.float64).reshape(-1)
        self.n_points += err.size
        self.threads.add(threads)
        if err.size == 0:
            return
        i = int(np.argmax(np.where(np.isnan(err), np.inf, err)))
        e = float(err[i]) if not np.isnan(err[i]) else math.inf
        if self.fixed:
            self.base_ulps = max(self.base_ulps, e)
        if e >= self.max_ulps:
            self.max_ulps = e
            self.worst = f"seed {self.seed}: " + describe(i)

    def as_dict(self, baseline):
        b = baseline.get(self.key)
        return {"kernel": self.kernel, "output": self.output, "dtype": self.dname,
                "path": self.path, "threshold": self.threshold,
                "threads": sorted(self.threads, key=str), "max_ulps": _round_up(self.base_ulps),
                "max_ulps_all_seeds": _round_up(self.max_ulps),
                "baseline": b, "cap": self.cap, "n_points": self.n_points,
                "worst_input": self.worst, "problems": list(self.problems),
                "note": self.note, "passed": not self.problems}


def _round_up(v):
    return v if not math.isfinite(v) else math.ceil(v * 100) / 100


def _read_baseline(path):
    try:
        with open(path or BASELINE_PATH, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def load_baseline(path=None):
    """{key: max ulps} of nnlib's own loops from ``path`` (default ``BASELINE_PATH``,
    verify/baseline.json; {} when the file does not exist)."""
    return _read_baseline(path).get("max_ulps", {})


def load_blas_baselines(path=None):
    """{blas_fingerprint: {key: max ulps}}: the BLAS products' figures per BLAS build.
    A file of the earlier layout (one ``blas_fingerprint``, its BLAS figures among
    ``max_ulps``) reads as that one BLAS with all of ``max_ulps`` (looked up by key)."""
    doc = _read_baseline(path)
    if "blas_max_ulps" in doc:
        return doc["blas_max_ulps"]
    fp = doc.get("blas_fingerprint")
    return {fp: dict(doc.get("max_ulps", {}))} if fp else {}


def blas_fingerprint():
    """A digest of the bits of fixed float32 and float64 products through nnlib's BLAS
    (``blas.gemm_py``), shaped as dense_backward's dX = dZ W^T of the plan and as a small
    GEMM: two BLAS builds that give the same digest round those products alike. The data
    come from ``RandomState``, whose stream NumPy keeps across versions."""
    import hashlib
    h = hashlib.sha256()
    rng = np.random.RandomState(FIXED_SEED)
    # one order of additions, whatever the BLAS's split
    with one_blas_thread() as blas:
        _fingerprint_products(blas, rng, h)
    return h.hexdigest()[:16]


@contextlib.contextmanager
def one_blas_thread():
    """nnlib's BLAS (``nnlib._kernels.blas``, loaded) on one thread inside the block, its
    thread count restored after (where the BLAS's threads cannot be set, as it is)."""
    from nnlib._kernels import blas
    blas.load()
    threads = blas.get_num_threads()    # None where the BLAS's threads cannot be set
    if threads is not None:
        blas.set_num_threads(1)
    try:
        yield blas
    finally:
        if threads is not None:
            blas.set_num_threads(threads)


def _fingerprint_products(blas, rng, h):
    for dt in (np.float32, np.float64):
        for r, m in ((7, 33), (57, 16), (151, 217), (128, 256), (99, 331)):
            dZ = rng.standard_normal((r, m)).astype(dt)
            W = rng.standard_normal((1, m)).astype(dt)
            dX = np.zeros((r, 1), dt)
            blas.gemm_py(False, True, 1.0, dZ, W, 0.0, dX)
            h.update(dX.tobytes())
        A, B, C = (rng.standard_normal((32, 10)).astype(dt),
                   rng.standard_normal((100, 10)).astype(dt), np.zeros((32, 100), dt))
        blas.gemm_py(False, True, 1.0, A, B, 0.0, C)
        h.update(C.tobytes())


def save_baseline(entries, path=None, blas=None):
    """Write ``entries`` (nnlib's own loops) and ``blas`` ({blas_fingerprint: {key: max
    ulps}}, the BLAS products per BLAS build) to ``path``."""
    doc = {"what": "largest error (ULPs of |exact| + rho T, see verify/paths.py) per "
                   "kernel|output|dtype|path; a run more than 2 ulp (float64) or 0.25 "
                   "ulp (float32) above fails; blas_max_ulps: the BLAS products' figures "
                   "per BLAS build, by blas_fingerprint (under a BLAS with none here they "
                   "are held to their cap only); python -m verify --update-baseline "
                   "records improvements, new paths and a new BLAS's figures",
           "max_ulps": dict(sorted(entries.items())),
           "blas_max_ulps": {fp: dict(sorted(v.items()))
                             for fp, v in sorted((blas or {}).items())}}
    with open(path or BASELINE_PATH, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


def _judge(case, baseline, update, other_blas=None):
    """Fill ``case.problems`` by the rules of the design note; ``other_blas``: the note
    for a BLAS product when the baseline was measured with another BLAS (cap only)."""
    if not math.isfinite(case.max_ulps) or case.max_ulps > case.cap:
        case.problems.append(f"{_round_up(case.max_ulps)} ulp > cap {case.cap} at "
                             f"{case.worst}")
    if case.blas and other_blas:
        case.note = other_blas
        return
    b = baseline.get(case.key)
    if b is None:
        if not update:
            case.problems.append("no baseline for this path (run python -m verify "
                                 "--update-baseline)")
    elif b <= CORRECTLY_ROUNDED and case.base_ulps > max(b, CORRECTLY_ROUNDED_LIMIT[
            case.dname]):
        case.problems.append(f"{_round_up(case.base_ulps)} ulp: no longer correctly rounded "
                             f"(baseline {b} ulp; worst over the run: {case.worst})")
    elif case.base_ulps > b + BASELINE_SLACK[case.dname]:
        case.problems.append(f"{_round_up(case.base_ulps)} ulp is worse than the baseline "
                             f"{b} by more than {BASELINE_SLACK[case.dname]} ulp (worst over "
                             f"the run: {case.worst})")


def _run_threads(call, T, several=True):
    """[(threads, results of call(threads))] for 1 and (when ``several``) T threads, and
    whether they agree bitwise. A case whose work is one task (n <= the chunk) runs on one
    thread only: a second thread would get no iteration, so it is the same path; an OpenMP
    region on a loaded machine costs tens of ms while a thread is descheduled."""
    one = call(1)
    if not several:
        return [(1, one)], True
    many = call(T)
    same = all(_bits_equal(a, b) for a, b in zip(one, many))
    return [(1, one), (T, many)], same


def _take(T, sel):
    if isinstance(T, tuple):
        return tuple(_take(t, sel) for t in T)
    return np.asarray(T)[sel] if np.ndim(T) else T


def index_groups(idx):
    """``(first, pos)`` of the input numbers ``idx`` (any shape, read flat): ``first[k]``
    the first element with the k-th distinct input, ``pos[i]`` the k of element i -- what
    :func:`errors_by_value` groups the elements by, made once for the results of one
    input array (the paths' outputs and thread counts)."""
    idx = np.asarray(idx).reshape(-1)
    uniq, first = np.unique(idx, return_index=True)
    return first, np.searchsorted(uniq, idx)


def errors_by_value(got, idx, exact, T, dtype, groups=None):
    """Per-element errors of an elementwise result whose element i has input number
    ``idx[i]`` of a pool: each distinct input is measured once, and every element whose
    bits differ from the first element with the same input is measured itself (an
    elementwise kernel must give the same bits for the same input on every path).
    ``groups``: :func:`index_groups` (idx), when made already."""
    got = np.asarray(got).reshape(-1)
    first, pos = index_groups(idx) if groups is None else groups
    ut = np.uint64 if got.dtype == np.float64 else np.uint32
    differ = np.nonzero(got.view(ut) != got[first][pos].view(ut))[0]
    at = np.concatenate([first, differ])
    e_at = ulp_errors(got[at], np.asarray(exact).reshape(-1)[at], _take(T, at), dtype)
    err = e_at[:first.size][pos]
    err[differ] = e_at[first.size:]
    return err


def _bits_equal(a, b):
    if isinstance(a, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _fmt_row(r):
    r = np.asarray(r)
    if r.size > 8:
        return f"[{', '.join(repr(float(v)) for v in r[:6])}, ... ({r.size} values)]"
    return "[" + ", ".join(repr(float(v)) for v in r) + "]"


class _Runner:
    def __init__(self, ctx, baseline, update):
        self.ctx, self.baseline, self.update = ctx, baseline, update
        self.cases = {}
        self.T = _several_threads()
        self.fixed = True            # the current seed is FIXED_SEED (see _Case)
        self.seed = FIXED_SEED
        self.pool_skipped = None     # what run_epoch's pool cases need, where they cannot run

    def case(self, kernel, output, dname, path, threshold, cap, blas=False):
        key = (kernel, output, dname, path)
        if key not in self.cases:
            self.cases[key] = _Case(kernel, output, dname, path, threshold, cap, blas)
        self.cases[key].fixed, self.cases[key].seed = self.fixed, self.seed
        return self.cases[key]

    def wanted(self, kernel):
        """Whether ``kernel``'s cases run: selected by its own name (or group) or by the
        name of its item, "<kernel> (branch paths)"."""
        return self.ctx.wanted(kernel) or self.ctx.wanted(f"{kernel} (branch paths)")

    def _points(self, seeds):
        """(dtype name, dtype, seed) for every dtype and seed, marking the fixed point
        set's figures (FIXED_SEED) as the ones held to the baseline."""
        for dname in self.ctx.dtypes:
            for seed in seeds:
                self.fixed, self.seed = seed == FIXED_SEED, seed
                yield dname, DTYPES[dname], seed

    def thread_check(self, kernel, dname, path, same, threshold):
        if not same:
            c = self.case(kernel, "threads", dname, path, threshold, 0.0)
            c.problems.append(f"results differ between 1 and {self.T} threads (the kernel "
                              "promises bitwise thread-count independence)")

    # --- activations ---------------------------------------------------------------
    def activations(self, seeds):
        from verify.registry import ACTIVATIONS
        P = _paths()
        for act in ACTIVATIONS:
            if not self.wanted(act.name):
                continue
            fwd, vjp = K.kernel(act.name), K.kernel(act.name + "_vjp")
            if fwd is None or vjp is None:
                continue           # verify.activations reports the missing kernel
            kw = act.nnlib_kwargs
            param = next(iter(kw.values()), 0.0)
            for dname in self.ctx.dtypes:
                dt = DTYPES[dname]
                for seed in seeds:
                    self.fixed, self.seed = seed == FIXED_SEED, seed
                    pool = element_pool(dname, seed)
                    fv, dv = element_reference(act.name, pool, param)
                    g_pool = np.random.default_rng([seed, 3]).uniform(
                        0.5, 2.0, pool.size) * np.where(np.arange(pool.size) % 2, -1, 1)
                    g_pool = g_pool.astype(dt)
                    for kind, n, key, label in PLAN["activation"]:
                        if (kind in ("auto threads", "one thread")
                                and act.name not in AUTO_THREAD_KINDS):
                            continue
                        idx = _tile(pool, n, offset=seed)
                        x, g = pool[idx], g_pool[(idx * 5 + 1) % pool.size]
                        self._act_case(act.name, fwd, vjp, kw, dname, dt, label, key, x, g,
                                       fv[idx], dv[idx] * g.astype(LD), kind, idx,
                                       n > P["ACT_CHUNK"] and act.name in THREAD_KINDS
                                       and kind == "elementwise")
                    for n_tail in TAIL_NS:
                        self._scalar_tail(act.name, fwd, vjp, kw, dname, dt, pool, fv, dv,
                                          g_pool, n_tail)
                    if act.name == "sign":
                        self._sign_bits(fwd, dname, dt, seed)
                    for n_tail in PARAM_TAIL_NS:
                        self._output_vjp_tail(act.name, fwd, vjp, kw, dname, dt, pool,
                                              g_pool, n_tail)
                    (key_p,) = kw or (None,)
                    for p in PARAM_SWEEP.get(act.name, ()):
                        fp, dp = element_reference(act.name, pool, p)
                        for n_tail in PARAM_TAIL_NS:
                            self._scalar_tail(act.name, fwd, vjp, {key_p: p}, dname, dt,
                                              pool, fp, dp, g_pool, n_tail,
                                              f", {key_p}={p!r}")
                    if act.name in EXP_TAIL_KINDS:
                        self._exp_tail(act.name, fwd, vjp, dname, dt, seed)
                    if act.name == "softplus" and dname == "float64":
                        self._log1p_split(act.name, fwd, vjp, dname, dt, seed)

    def _scalar_tail(self, name, fwd, vjp, kw, dname, dt, pool, fv, dv, g_pool, n_tail,
                     suffix="", label=None, key="vector tail"):
        """Every pool value through the loops' scalar tails: calls of ``n_tail`` elements,
        fewer than any vector loop takes, so each value is computed by the code after the
        vector loops (a long array sends at most its last few values there); with
        ``n_tail`` past a vector, the values at its last ``n_tail % 4`` places.
        ``suffix`` names a parameter other than the registry's (PARAM_SWEEP); ``label``
        and ``key`` replace the case's path and threshold (another pool's)."""
        idx = np.arange(pool.size)
        x, g = pool, g_pool[(idx * 5 + 1) % pool.size]

        def by_calls(f, *arrays, n_threads=1, **kw):
            return np.concatenate([np.asarray(f(*(a[i:i + n_tail] for a in arrays),
                                                n_threads=n_threads, **kw))
                                   for i in range(0, arrays[0].size, n_tail)])
        self._act_case(name, lambda x, **kw: by_calls(fwd, x, **kw),
                       lambda x, g, **kw: by_calls(vjp, x, g, **kw), kw, dname, dt,
                       label or f"n={n_tail}, each pool value (the scalar tails){suffix}",
                       key,
                       x, g, fv, dv * g.astype(LD), "elementwise", idx, False)

    def _sign_bits(self, fwd, dname, dt, seed):
        """sign's forward bit for bit against ``sign_exact`` on ``sign_pool``, through
        calls of each length of SIGN_NS: each value at every place of a call, in the
        masked tail and in whole vectors."""
        x = sign_pool(dname, seed)
        want = sign_exact(x)
        ut = np.uint64 if dt == np.float64 else np.uint32
        for n in SIGN_NS:
            got = np.concatenate([np.asarray(fwd(x[i:i + n], n_threads=1))
                                  for i in range(0, x.size, n)])
            err = np.where(got.view(ut) == want.view(ut), 0.0, np.inf)
            cs = self.case("sign", "forward, bits", dname,
                           f"n={n}, each pool value and NaNs (bits: the sign of zero, "
                           "a NaN's sign and payload)", "vector tail", cap(dname))
            cs.add(err, x, got, want, 1, lambda i, got=got: (
                f"x={float(x[i])!r} (bits {x[i:i + 1].view(ut)[0]:#x}): got "
                f"{float(got[i])!r} (bits {got[i:i + 1].view(ut)[0]:#x}), sign(x) is "
                f"{float(want[i])!r} (bits {want[i:i + 1].view(ut)[0]:#x})"))

    def _output_vjp_tail(self, name, fwd, vjp, kw, dname, dt, pool, g_pool, n_tail):
        """The vjp given the output (``output=``: act'(y) g from y, the loops of
        act_f32.h's output form) on every pool value's forward output, through calls of
        ``n_tail`` values as in _scalar_tail, against g act'(y) for that y exactly: formed
        in double and rounded once, so float32 is held within half an ulp (a float act'(y)
        or a float product is a rounding more)."""
        idx = np.arange(pool.size)
        ok = np.isfinite(pool)
        x, g = pool[ok], g_pool[(idx * 5 + 1) % pool.size][ok]
        y = np.asarray(fwd(x, n_threads=1, **kw))
        got = np.concatenate([np.asarray(vjp(x[i:i + n_tail], g[i:i + n_tail],
                                             output=y[i:i + n_tail], n_threads=1, **kw))
                              for i in range(0, x.size, n_tail)])
        ex = g.astype(LD) * grad_y_reference(name, y, next(iter(kw.values()), 0.0))
        cs = self.case(name, "vjp given the output", dname,
                       f"n={n_tail}, each pool value's output (the scalar tails)",
                       "vector tail", cap(dname))
        cs.add(ulp_errors(got, ex, 0, dt), x, got, ex, 1, lambda i: (
            f"y={float(y[i])!r}, grad_out={float(g[i])!r}: got {float(got[i])!r}"))

    def _exp_tail(self, name, fwd, vjp, dname, dt, seed):
        """The kind on ``exp_tail_pool``, whose outputs there are e^x (or -1 + e^x)
        rounded once, with grad_out +-2^j (exact products): correctly rounded in each
        dtype, so a 0.51-ulp baseline holds them and nn_exp losing half an ulp shows."""
        kw = EXP_TAIL_KINDS[name]
        pool = exp_tail_pool(dname, seed)
        fv, dv = element_reference(name, pool, next(iter(kw.values()), 0.0))
        rng = np.random.default_rng([seed, 13])
        g_pool = (rng.choice([-1.0, 1.0], pool.size) * 2.0 ** rng.integers(-1, 2, pool.size)
                  ).astype(dt)
        for label, n in EXP_TAIL_SIZES:
            idx = _tile(pool, n or _paths()["ACT_CHUNK"] + 1, offset=seed)
            x, g = pool[idx], g_pool[idx]
            self._act_case(name, fwd, vjp, kw, dname, dt, label, "e^x rounded once", x, g,
                           fv[idx], dv[idx] * g.astype(LD), "elementwise", idx, False)

    def _log1p_split(self, name, fwd, vjp, dname, dt, seed):
        """softplus on ``log1p_split_pool``, whose outputs there are vmath.h's log1p of u
        past sqrt2 - 1 correctly rounded on every build, in a long array, two tasks and
        calls of one value; grad_out +-2^j."""
        pool = log1p_split_pool(seed)
        fv, dv = element_reference(name, pool, 0.0)
        rng = np.random.default_rng([seed, 15])
        g_pool = (rng.choice([-1.0, 1.0], pool.size) * 2.0 ** rng.integers(-1, 2, pool.size)
                  ).astype(dt)
        for label, n in LOG1P_SPLIT_SIZES:
            if n == 1:
                self._scalar_tail(name, fwd, vjp, {}, dname, dt, pool, fv, dv, g_pool, 1,
                                  label=label, key=LOG1P_SPLIT_PATH)
                continue
            idx = _tile(pool, n or _paths()["ACT_CHUNK"] + 1, offset=seed)
            x, g = pool[idx], g_pool[idx]
            self._act_case(name, fwd, vjp, {}, dname, dt, label, LOG1P_SPLIT_PATH, x, g,
                           fv[idx], dv[idx] * g.astype(LD), "elementwise", idx, False)

    def _act_case(self, name, fwd, vjp, kw, dname, dt, label, key, x, g, fe, ve, kind, idx,
                  several):
        if kind == "auto threads":
            outs = [("auto", (np.asarray(fwd(x, **kw)), np.asarray(vjp(x, g, **kw))))]
            same = True
        else:
            outs, same = _run_threads(
                lambda t: (np.asarray(fwd(x, n_threads=t, **kw)),
                           np.asarray(vjp(x, g, n_threads=t, **kw))), self.T, several)
        self.thread_check(name, dname, label, same, key)
        groups = index_groups(idx)
        for t, (f, v) in outs:
            T_v = 0
            if name == "tanh":       # float32: nn_tanh_f32's 2e-11 relative error ~ 2^-11 u32
                T_v = 3 * np.abs(g.astype(LD)) * fe * fe
                T_v = (T_v * LD(2.0 ** -11), 0) if dname == "float32" else T_v
            for output, got, ex, T in (("forward", f, fe, 0), ("vjp", v, ve, T_v)):
                err = errors_by_value(got, idx, ex, T, dt, groups)
                c = self.case(name, output, dname, label, key, cap(dname))
                c.add(err, x, got, ex, t, lambda i, got=got: (
                    f"x={float(x[i])!r}" + (f", grad_out={float(g[i])!r}"
                                            if output == "vjp" else "")
                    + f": got {float(got[i])!r}"))

    # --- output maps -----------------------------------------------------------------
    def maps(self, seeds):
        for name in MAP_KERNELS:
            if not self.wanted(name):
                continue
            fwd, vjp = K.kernel(name), K.kernel(name + "_vjp")
            if fwd is None or vjp is None:
                continue
            for dname in self.ctx.dtypes:
                dt = DTYPES[dname]
                for seed in seeds:
                    self.fixed, self.seed = seed == FIXED_SEED, seed
                    for label, c, key in PLAN[name]:
                        X = row_pool(c, dname, seed, nan_row=True)
                        G = (np.random.default_rng([seed, 4, c]).uniform(0.5, 2.0, X.shape)
                             * np.where(np.arange(c) % 3 == 1, -1, 1)).astype(dt)
                        (fe, fT), (ve, vT) = row_reference(name, X, G)
                        outs, same = _run_threads(
                            lambda t: (np.asarray(fwd(X, n_threads=t)),
                                       np.asarray(vjp(X, G, n_threads=t))), self.T,
                            label == PLAN[name][-1][0])      # the widest: rows split
                        self.thread_check(name, dname, label, same, key)
                        # the same rows as a 3-d array (n, 1, c): the maps read any ndim
                        # as the rows of its last axis
                        X3, G3 = X.reshape(-1, 1, c), G.reshape(-1, 1, c)
                        outs.append((1, (np.asarray(fwd(X3, n_threads=1)).reshape(X.shape),
                                         np.asarray(vjp(X3, G3, n_threads=1)).reshape(
                                             X.shape))))
                        for t, (f, v) in outs:
                            for output, got, ex, T in (("forward", f, fe, fT),
                                                       ("vjp", v, ve, vT)):
                                err = ulp_errors(got, ex, T, dt)
                                cs = self.case(name, output, dname, label, key, cap(dname, c))
                                cs.add(err, X, got, ex, t, lambda i, X=X, c=c, got=got: (
                                    f"row {_fmt_row(X[i // c])}, component {i % c}: got "
                                    f"{float(got.reshape(-1)[i])!r}"))

    # --- losses ----------------------------------------------------------------------
    def losses(self, seeds):
        for name in LOSS_KERNELS:
            if not self.wanted(name):
                continue
            loss, grad = K.kernel(name), K.kernel(name + "_grad")
            fused = K.kernel("loss_and_grad")
            if loss is None or grad is None:
                continue
            margins = _margins(name)
            for dname, dt, seed in self._points(seeds):
                for label, shape, key in PLAN[name]:
                    n, c = shape if isinstance(shape, tuple) else (None, shape)
                    Z, Y = self._loss_inputs(name, n, c, dname, seed)
                    for mg in margins:
                        lab = label + ("" if mg is None else f", margin={mg:g}")
                        self._loss_case(name, loss, grad, fused, Z, Y, mg, dname, dt,
                                        lab, key)
                for label, c in per_row_widths(name):
                    Z, Y = self._per_row_inputs(name, c, dname, seed)
                    for mg in margins:
                        lab = label + ("" if mg is None else f", margin={mg:g}")
                        self._per_row_case(name, loss, fused, Z, Y, mg, dname, dt, lab)
                if name == "logistic_loss" and dname == "float64":
                    Z, Y = log1p_split_rows(seed)
                    self._per_row_case(name, loss, fused, Z, Y, None, dname, dt,
                                       f"each value alone, {LOG1P_SPLIT_PATH}")
                if name == "poisson_loss":
                    Z, Y = subnormal_target_pool(dname)
                    self._per_row_case(name, loss, fused, Z, Y, None, dname, dt,
                                       "each (z, t) alone, t below the smallest normal")
                    for label, (n, c) in subnormal_target_shapes():
                        Z, Y = subnormal_target_batch(dname, n, c, seed)
                        self._loss_case(name, loss, grad, fused, Z, Y, None, dname, dt,
                                        label, "t log t, t subnormal")

    def _per_row_inputs(self, name, c, dname, seed):
        """Rows measured one at a time: every pool value with both labels (logistic), or
        every pool row with the label at its maximum (a confident right answer when the
        row is one-hot), at 0 and at c - 1."""
        dt = DTYPES[dname]
        if name == "logistic_loss":
            pool = element_pool(dname, seed)
            pool = pool[np.isfinite(pool) & (np.abs(pool) <= np.finfo(dt).max / 4)]
            Z = np.concatenate([pool, pool]).reshape(-1, 1)
            return Z, np.repeat([0, 1], pool.size)
        if name == "poisson_loss":
            Z, T = poisson_pool(dname, seed, far=True)
            return Z.reshape(-1, 1), T.reshape(-1, 1)
        pool = row_pool(c, dname, seed, big_divisor=2.0 ** 12)
        if name == "squared_error":
            rng = np.random.default_rng([seed, 6, c])
            T = (pool.astype(np.float64) + rng.standard_normal(pool.shape) * np.where(
                rng.random(pool.shape) < 0.2, 0.0, 2.0)).astype(dt)
            return pool, T
        rows, labels = [], []
        for r in pool:
            for y in sorted({int(np.argmax(r)), 0, c - 1}):
                rows.append(r)
                labels.append(y)
        return np.array(rows, dtype=dt), np.array(labels)

    def _per_row_case(self, name, loss, fused, Z, Y, mg, dname, dt, label):
        """The loss of each row alone: a batch mean is dominated by its largest losses, so
        a row whose loss lost its relative accuracy (log(1 + e) for log1p(e) at a
        confident right answer, a loss near 0 of a near-tie) is only seen on its own."""
        kw = {} if mg is None else {"margin": mg}
        (le, lT), _ = loss_reference(name, Z, Y, 1.0 if mg is None else mg, per_row=True)
        n, c = Z.shape
        Yr = np.asarray(Y).reshape(n, -1)
        got_l = np.empty(n, dtype=np.float64)
        got_f = np.empty(n, dtype=np.float64)
        for i in range(n):
            z1, y1 = Z[i:i + 1], Y[i:i + 1]
            got_l[i] = loss(z1, y1, n_threads=1, **kw)
            got_f[i] = (fused(name, z1, y1, **kw, n_threads=1)[0] if fused is not None
                        else got_l[i])
        for output, got in (("loss (each row alone)", got_l),
                            ("loss_and_grad loss (each row alone)", got_f)):
            got = got.astype(dt)
            err = ulp_errors(got, le, lT, dt)
            cs = self.case(name, output, dname, label, "per-row loss", cap(dname, 2 * c))
            cs.add(err, Z, got, le, 1, lambda i, got=got: (
                f"row {_fmt_row(Z[i])}, y={Yr[i].tolist()}: got {float(got[i])!r}"))

    def _loss_inputs(self, name, n, c, dname, seed):
        dt = DTYPES[dname]
        rng = np.random.default_rng([seed, 5, c, n or 0])
        if name == "logistic_loss":
            pool = element_pool(dname, seed)
            idx = _tile(pool, n, offset=seed)
            Z = pool[idx].reshape(n, 1)
            Y = (np.arange(n) // 2) % 2       # every value meets both labels
            return np.ascontiguousarray(Z), Y
        if name == "poisson_loss":
            # finite losses of moderate size (z <= ~52, t <= 1e5): a mean is dominated by
            # its largest terms, and these keep each pair's term in view
            Zp, Tp = poisson_pool(dname, seed)
            idx = _tile(Zp, n * c, offset=seed)
            return (np.ascontiguousarray(Zp[idx].reshape(n, c)),
                    np.ascontiguousarray(Tp[idx].reshape(n, c)))
        # near-limit logits at max / 2^12: a mean over up to 9 LOSS_CHUNK + 1 rows of such
        # losses stays finite (the kernels sum the per-row losses before dividing by n, so
        # rows at max / 4 overflow that sum: a known limit, see the report)
        pool = row_pool(c, dname, seed, big_divisor=2.0 ** 12)
        if n is None:
            Z = pool
        else:
            Z = pool[_tile(pool, n, offset=seed)]
        Z = np.ascontiguousarray(Z)
        if name == "squared_error":
            T = (Z.astype(np.float64) + rng.standard_normal(Z.shape) * np.where(
                rng.random(Z.shape) < 0.2, 0.0, 2.0)).astype(dt)
            return Z, T
        Y = rng.integers(0, c, Z.shape[0])
        Y[: min(len(Y), c)] = np.arange(min(len(Y), c))   # the label at every position
        return Z, Y

    def _loss_case(self, name, loss, grad, fused, Z, Y, mg, dname, dt, label, key):
        kw = {} if mg is None else {"margin": mg}
        (le, lT), (ge, gT) = loss_reference(name, Z, Y, 1.0 if mg is None else mg)

        def call(t):
            # grad and loss_and_grad run the same compiled call (dz requested): grad on
            # one thread only
            lv = loss(Z, Y, n_threads=t, **kw)
            fl, fg = fused(name, Z, Y, **kw, n_threads=t) if fused is not None else (
                lv, np.asarray(grad(Z, Y, n_threads=t, **kw)))
            gv = np.asarray(grad(Z, Y, n_threads=1, **kw)) if t == 1 else fg
            return lv, gv, fl, np.asarray(fg)
        outs, same = _run_threads(call, self.T, Z.shape[0] > 2 * _paths()["LOSS_CHUNK"])
        self.thread_check(name, dname, label, same, key)
        c = Z.shape[1]
        k_all, k_row = cap(dname, Z.size + c), cap(dname, c)
        for t, (lv, gv, fl, fg) in outs:
            for output, got, ex, T, limit in (
                    ("loss", np.array([lv]), np.array([le]), np.array([lT]), k_all),
                    ("grad", gv.reshape(Z.shape), ge, gT, k_row),
                    ("loss_and_grad loss", np.array([fl]), np.array([le]), np.array([lT]),
                     k_all),
                    ("loss_and_grad grad", fg.reshape(Z.shape), ge, gT, k_row)):
                err = ulp_errors(got, ex, T, dt)
                cs = self.case(name, output, dname, label, key, limit)
                if output.endswith("loss"):
                    desc = (lambda i, got=got: f"batch of {Z.shape[0]} rows "
                            f"{_fmt_row(Z[0])}, ...: got {float(got[0])!r}, exact "
                            f"{float(le)!r}")
                else:
                    desc = (lambda i, got=got: f"row {_fmt_row(Z[i // c])}, y="
                            f"{np.asarray(Y).reshape(Z.shape[0], -1)[i // c].tolist()}, "
                            f"component {i % c}: got {float(got.reshape(-1)[i])!r}")
                cs.add(err, Z, got, ex, t, desc)

    # --- the training epoch's loss ------------------------------------------------------
    def epoch_losses(self, seeds):
        """Each loss as the training epoch evaluates it: ``train.loss_grad`` of a one-layer
        identity network with W = I and b = 0, whose scores are X exactly, over a batch
        passed whole to the row-level loss (nnlib.functional cuts it into LOSS_CHUNK
        tasks, so the logistic loss's VEC_BLOCK blocks split only here). Compared: the
        loss and db, the column sums of dZ (which depend on every row's target)."""
        from verify.train import compiled_api
        api = compiled_api()
        if api is None or not hasattr(api, "loss_grad"):
            return              # verify.train reports the missing compiled epoch
        for name in LOSS_KERNELS:
            if not self.wanted(name):
                continue
            margins = _margins(name)
            for dname, dt, seed in self._points(seeds):
                for label, (n, c), key in PLAN["epoch"][name]:
                    Z, Y = self._epoch_inputs(name, n, c, dname, seed)
                    for mg in margins:
                        lab = label + ("" if mg is None else f", margin={mg:g}")
                        got = self._epoch_call(api, name, Z, Y, mg, dt)
                        self._epoch_case(name, Z, Y, mg, got, dname, dt, lab, key)
                # sample_weight: weighted_loss_grad_batch, the rows one by one
                for label, (n, c), key in PLAN["epoch_weighted"][name]:
                    Z, Y = self._epoch_inputs(name, n, c, dname, seed)
                    w = sample_weights(n, dt)
                    for mg in margins:
                        lab = label + ("" if mg is None else f", margin={mg:g}")
                        got = self._epoch_call(api, name, Z, Y, mg, dt, w)
                        self._epoch_case(name, Z, Y, mg, got, dname, dt, lab, key, w)
                if name == "logistic_loss" and dname == "float64":
                    self._epoch_log1p_split(api, name, dname, dt, seed)
                if name == "poisson_loss":
                    for label, (n, c) in subnormal_target_shapes(epoch=True):
                        Z, Y = subnormal_target_batch(dname, n, c, seed)
                        for w, lab in ((None, label), (sample_weights(n, dt),
                                                       label + ", sample weights")):
                            got = self._epoch_call(api, name, Z, Y, None, dt, w)
                            self._epoch_case(name, Z, Y, None, got, dname, dt, lab,
                                             "t log t, t subnormal", w)

    def _epoch_log1p_split(self, api, name, dname, dt, seed):
        """The logistic loss of each of ``log1p_split_rows`` alone as the epoch's
        loss_grad evaluates it (a batch of one row: the loss is that row's, log1p(u))."""
        Z, Y = log1p_split_rows(seed)
        (le, lT), _ = loss_reference(name, Z, Y, 1.0, per_row=True)
        got = np.array([self._epoch_call(api, name, Z[i:i + 1], Y[i:i + 1], None, dt)[0]
                        for i in range(Z.shape[0])])
        cs = self.case(name, "epoch loss_grad loss (each row alone)", dname,
                       f"each value alone, {LOG1P_SPLIT_PATH}", "per-row loss", cap(dname, 2))
        cs.add(ulp_errors(got, le, lT, dt), Z, got, le, 1, lambda i: (
            f"z={float(Z[i, 0])!r}, y={int(Y[i])}: got {float(got[i])!r}"))

    def _epoch_inputs(self, name, n, c, dname, seed):
        if name != "logistic_loss":
            return self._loss_inputs(name, n, c, dname, seed)
        # finite scores only (X W is a BLAS product: inf * 0 would be NaN), at most
        # max / 2^12 (the sum of up to 2 VEC_BLOCK + 1 losses stays finite), and
        # targets drawn at random: a pattern whose period divides VEC_BLOCK would give
        # every block the first block's targets
        pool = element_pool(dname, seed)
        pool = pool[np.isfinite(pool) & (np.abs(pool) <= np.finfo(DTYPES[dname]).max
                                         / 2.0 ** 12)]
        Z = np.ascontiguousarray(pool[_tile(pool, n, offset=seed)].reshape(n, 1))
        Y = np.random.default_rng([seed, 7, n]).integers(0, 2, n)
        return Z, Y

    @staticmethod
    def _epoch_call(api, name, Z, Y, mg, dt, weight=None):
        """(loss, db) of train.loss_grad on the identity network, with ``weight`` as the
        setup's sample_weight (NaN where it reports a non-finite result: every input here
        has a finite exact loss)."""
        n, c = Z.shape
        from nnlib._codes import ACTIVATION_CODES, CLASS_LABEL_LOSSES, LOSS_CODES
        net = api.Network([c, c], [ACTIVATION_CODES["identity"]], [0.0])
        labels = name in CLASS_LABEL_LOSSES
        tcols = 0 if labels else c
        y_target = (np.zeros((n, 0), dt) if labels else
                    np.ascontiguousarray(np.asarray(Y, dt).reshape(n, c)))
        y_label = (np.asarray(Y, np.int64) if labels else np.zeros(1, np.int64))
        W, b = np.eye(c, dtype=dt), np.zeros(c, dt)
        setup = api.EpochSetup(net, [W], [b], [None, None], Z, y_target, y_label,
                               api.Workspace([c, c], n, tcols, dt), LOSS_CODES[name], n,
                               margin=1.0 if mg is None else mg, l2=0.0,
                               sample_weight=weight)
        dW, db = np.empty_like(W), np.empty_like(b)
        loss, status = api.loss_grad(setup, [dW], [db])
        if status != 0:       # a non-finite loss or gradient: measured as NaN, a failure
            return math.nan, np.full_like(b, np.nan)
        return float(loss), db

    def _epoch_case(self, name, Z, Y, mg, got, dname, dt, label, key, weight=None):
        (le, lT), (ge, gT) = loss_reference(name, Z, Y, 1.0 if mg is None else mg,
                                            weight=weight)
        g1, gd = gT if isinstance(gT, tuple) else (0, gT)
        dbe = ge.sum(axis=0)
        dbT = ((np.abs(ge) + g1).sum(axis=0), (np.zeros_like(ge) + gd).sum(axis=0))
        n, c = Z.shape
        loss, db = got
        for output, g, ex, T, limit in (
                ("epoch loss_grad loss", np.array([loss], dt), np.array([le]),
                 np.array([lT]), cap(dname, Z.size + c)),
                ("epoch loss_grad db", np.asarray(db), dbe, dbT, cap(dname, n))):
            cs = self.case(name, output, dname, label, key, limit)
            cs.add(ulp_errors(g, ex, T, dt), Z, g, ex, 1, lambda i, g=g, o=output: (
                f"{o}[{i}] over a batch of {n} rows {_fmt_row(Z[0])}, ...: got "
                f"{float(g[i])!r}, exact {float(ex[i])!r}"))

    # --- dense -------------------------------------------------------------------------
    def dense(self, seeds):
        """dense_forward / dense_backward with X = a column of +-1 (row i: sign s_i),
        W = one row of pool values, b = 0: Z = s_i W exactly, so H = act(s_i w_j) is the
        activation's own accuracy, and the backward's sums have closed forms."""
        from verify.registry import ACTIVATIONS
        fwd, back = K.kernel("dense_forward"), K.kernel("dense_backward")
        if fwd is None or back is None or not (
                self.wanted("dense") or self.wanted("dense_forward")
                or self.wanted("dense_backward")):
            return
        for act in ACTIVATIONS:
            param = next(iter(act.nnlib_kwargs.values()), None)
            p_ld = LD(param or 0.0)
            tf = FROM_OUTPUT_T.get(act.name, lambda y, a: 0 * y)
            for dname in self.ctx.dtypes:
                dt = DTYPES[dname]
                tiny = LD(np.finfo(dt).tiny) if act.name in FROM_OUTPUT_T else 0
                for seed in seeds[:1]:
                    self.fixed, self.seed = seed == FIXED_SEED, seed
                    pool = element_pool(dname, seed)
                    pool = pool[np.abs(pool.astype(np.float64)) < 1e4]  # H finite, dX too
                    P = pool.size
                    fv, dv = element_reference(act.name, pool, param or 0.0)
                    fn, dn = element_reference(act.name, -pool.astype(LD), param or 0.0)
                    f2, d2 = np.concatenate([fv, fn]), np.concatenate([dv, dn])
                    for label, (r, m), key, sign0 in PLAN["dense"]:
                        idx = _tile(pool, m, offset=seed)
                        W = pool[idx].reshape(1, m).copy()
                        s = np.where(np.arange(r) % 2 == 0, sign0, -sign0).astype(dt)
                        X = s.reshape(r, 1).copy()
                        b = np.zeros(m, dtype=dt)
                        neg = (s < 0)[:, None]
                        idx_h = np.where(neg, idx[None, :] + P, idx[None, :])  # (r, m)
                        several = r > 1 and act.name in THREAD_KINDS
                        outs, same = _run_threads(
                            lambda t: (np.asarray(fwd(X, W, b, act.name, param,
                                                      n_threads=t)),), self.T, several)
                        self.thread_check("dense_forward", dname, label + f", {act.name}",
                                          same, key)
                        groups, e_h = index_groups(idx_h), f2[idx_h]
                        for t, (H,) in outs:
                            cs = self.case("dense_forward", f"H ({act.name})", dname, label,
                                           key, cap(dname))
                            cs.add(errors_by_value(H, idx_h, e_h, 0, dt, groups), W, H, None, t,
                                   lambda i, H=H: f"row {i // m} (X = {float(X[i // m, 0])}),"
                                   f" W[0, {i % m}]={float(W[0, i % m])!r}: got "
                                   f"{float(H.reshape(-1)[i])!r}")
                        H = outs[0][1][0]
                        npos, nneg = int((s > 0).sum()), int((s < 0).sum())
                        dp, dm = dv[idx], dn[idx]
                        # H is rounded in the dtype (a subnormal H absolutely: tiny u)
                        tp, tm = tf(fv[idx], p_ld) + tiny, tf(fn[idx], p_ld) + tiny
                        Wl = W[0].astype(LD)
                        for suffix, (cp, cm) in DENSE_GRAD_ROWS:
                            # grad_H = cp on the rows of X = +1, cm on the others
                            G = np.where(s > 0, dt(cp), dt(cm)).astype(dt)[:, None] \
                                * np.ones_like(H)
                            dX, dW, db = back(X, W, H, G, act.name, param)
                            cp, cm = LD(cp), LD(cm)
                            dbe = npos * cp * dp + nneg * cm * dm
                            dbT = (npos * abs(cp) * tp + nneg * abs(cm) * tm,
                                   npos * np.abs(cp * dp) + nneg * np.abs(cm * dm))
                            dWe = npos * cp * dp - nneg * cm * dm
                            dXe = np.where(s > 0, cp * (dp * Wl).sum(), cm * (dm * Wl).sum())
                            dXT = np.where(
                                s > 0, abs(cp) * (np.abs(dp * Wl) + tp * np.abs(Wl)).sum(),
                                abs(cm) * (np.abs(dm * Wl) + tm * np.abs(Wl)).sum())
                            # db sums the rows in double; dW = X^T dZ and dX = dZ W^T are
                            # BLAS products (or plain loops for one row), summed in the
                            # dtype; dX of the scaled rows only scales what dZ's cases show
                            for output, got, ex, T, limit in (
                                    ("db", np.asarray(db), dbe, dbT, cap(dname, r)),
                                    ("dW", np.asarray(dW)[0], dWe, (dbT[0] + dbT[1], 0),
                                     cap(dname, r, True)),
                                    ("dX", np.asarray(dX)[:, 0], dXe, (dXT, 0),
                                     cap(dname, m, True)))[:3 if not suffix else 2]:
                                cs = self.case("dense_backward", f"{output} ({act.name})",
                                               dname, label + suffix, key, limit,
                                               blas=output == "dX" and r > 1)
                                cs.add(ulp_errors(got, ex, T, dt), W, got, ex, 1,
                                       lambda i, got=got, o=output, G=G: f"{o}[{i}] with "
                                       f"X = {_fmt_row(X[:, 0])}, W = {_fmt_row(W[0])}, "
                                       f"grad_H rows {_fmt_row(G[:, 0])}: got "
                                       f"{float(got[i])!r}")
                    if dname == "float32":
                        self._dense_given_h(act.name, param, fwd, back, pool, dname, dt,
                                            seed)
                    if act.name == "softplus" and dname == "float64":
                        self._dense_log1p_split(fwd, dname, dt, seed)

    def _dense_log1p_split(self, fwd, dname, dt, seed):
        """dense_forward of softplus with X a column of ones, W one row of
        ``log1p_split_pool`` and b = 0: Z = W exactly, so H is softplus's log1p(u),
        correctly rounded on every build; one row, a few, and a pass of PAR_MIN_ELEMS+
        values (split on threads)."""
        pool = log1p_split_pool(seed)
        fv, _ = element_reference("softplus", pool, 0.0)
        m = 61
        idx = _tile(pool, m, offset=seed)
        W = pool[idx].reshape(1, m).copy()
        b = np.zeros(m, dtype=dt)
        for r in (1, 5, _paths()["PAR_MIN_ELEMS"] // m + 1):
            X = np.ones((r, 1), dtype=dt)
            label = f"{r} x {m}, X = ones, W: {LOG1P_SPLIT_PATH}"
            outs, same = _run_threads(
                lambda t: (np.asarray(fwd(X, W, b, "softplus", None, n_threads=t)),),
                self.T, r > 1)
            self.thread_check("dense_forward", dname, label, same, LOG1P_SPLIT_PATH)
            idx_h = np.broadcast_to(idx, (r, m))
            for t, (H,) in outs:
                cs = self.case("dense_forward", "H (softplus)", dname, label,
                               LOG1P_SPLIT_PATH, cap(dname))
                cs.add(errors_by_value(H, idx_h, fv[idx_h], 0, dt), W, H, None, t,
                       lambda i, H=H: f"row {i // m}, W[0, {i % m}]={float(W[0, i % m])!r}: "
                       f"got {float(H.reshape(-1)[i])!r}")

    def _dense_given_h(self, name, param, fwd, back, pool, dname, dt, seed):
        """Float32 dense_backward's dZ (as dW with X = I) against G act'(H) for the H it
        is given, and its db against the exact sum of that dZ's rows, each element held to
        the bound of the roundings its arithmetic makes (dense_given_h_bounds): the figure
        is error / bound, so 1 is the cap. (In
        float64 act'(H) is evaluated in the dtype itself, where the cases above hold it.)"""
        rng = np.random.default_rng([seed, 35])
        # H: the activation's own outputs on the pool (finite: |x| < 1e4)
        H_pool = np.asarray(fwd(pool.reshape(-1, 1), np.ones((1, 1), dt), np.zeros(1, dt),
                                name, param)).reshape(-1)
        for r, m in DENSE_GIVEN_H_SHAPES:
            idx = (np.arange(r * m) * 7 + seed) % H_pool.size
            H = H_pool[idx].reshape(r, m).copy()
            G = (rng.uniform(0.3, 3.0, (r, m)) * rng.choice([-1.0, 1.0], (r, m))).astype(dt)
            X = np.eye(r, dtype=dt)
            W = rng.standard_normal((r, m)).astype(dt)
            _, dW, db = back(X, W, H, G, name, param)
            dZe = G.astype(LD) * grad_y_reference(name, H, param)
            b_dz, sums, b_db = dense_given_h_bounds(dZe, dW, dt)
            label = f"{r} x {m}, X = I, grad_H in +-[0.3, 3], given H"
            for output, got, ex, bound in (("dZ = dW", np.asarray(dW), dZe, b_dz),
                                           ("db = sum of dZ's rows", np.asarray(db), sums,
                                            b_db)):
                cs = self.case("dense_backward", f"{output} ({name}), error / bound", dname,
                               label, "given H", 1.0)
                cs.add(bound_ratio(got, ex, bound), H, got, ex, 1,
                       lambda i, got=got, o=output, H=H, G=G: f"{o} element {i} (H column "
                       f"{_fmt_row(H[:, i % m])}, grad_H column {_fmt_row(G[:, i % m])}): got "
                       f"{float(got.reshape(-1)[i])!r}")

    # --- dense products ------------------------------------------------------------
    def dense_products(self, seeds):
        """dense_forward / dense_backward (identity) on integer operands sized so that
        every product and partial sum is exact in the dtype (``product_operands``): H, dW,
        dX and db are then exact whichever loops sum them (the plain loops, gemm_small.h's
        blocked ones, BLAS) and in any order, so every element must be exact, on both
        sides of each of mm's bounds (``product_plan``)."""
        fwd, back = K.kernel("dense_forward"), K.kernel("dense_backward")
        if fwd is None or back is None or not (
                self.wanted("dense") or self.wanted("dense_forward")
                or self.wanted("dense_backward")):
            return
        pme = _paths()["PAR_MIN_ELEMS"]
        # the results are exact on any BLAS thread count; several BLAS threads on a
        # loaded machine took 250 ms for a 9 x 5419 by 5419 x 43 product (0.5 ms on one)
        with one_blas_thread():
            self._dense_products(fwd, back, pme, seeds)

    def _dense_products(self, fwd, back, pme, seeds):
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (r, i, o), key in PLAN["dense_products"]:
                X, W, b, G = product_operands((r, i, o), dname, seed)
                Xi, Wi, Gi = (a.astype(np.int64) for a in (X, W, G))
                # the bias and activation pass runs on several threads from PAR_MIN_ELEMS
                outs, same = _run_threads(
                    lambda t: (np.asarray(fwd(X, W, b, "identity", None, n_threads=t)),),
                    self.T, r > 1 and r * o >= pme)
                self.thread_check("dense_forward", dname, label + ", identity", same, key)
                He = Xi @ Wi + b.astype(np.int64)
                for t, (H,) in outs:
                    self._exact_case("dense_forward", "H", H, He, dname, dt, label, key, t)
                dX, dW, db = back(X, W, outs[0][1][0], G, "identity", None)
                for output, got, ex in (("dW", dW, Xi.T @ Gi), ("dX", dX, Gi @ Wi.T),
                                        ("db", db, Gi.sum(axis=0))):
                    self._exact_case("dense_backward", output, got, ex, dname, dt, label,
                                     key, 1)

    # --- the training epoch's plain SGD step -------------------------------------------
    def _run_epoch_cases(self, cases, seeds):
        """``cases(api, sgd, seeds)`` with the compiled training API and nnlib's SGD, on
        one BLAS thread, where run_epoch's cases are wanted and the build has both."""
        from verify.train import compiled_api
        api = compiled_api()
        sgd = K.nnlib_attr("optim.SGD")
        if (api is None or not hasattr(api, "run_epoch") or sgd is None
                or not self.wanted("run_epoch")):
            return
        with one_blas_thread():         # (as in dense_products)
            cases(api, sgd, seeds)

    def epoch_sgd(self, seeds):
        """One plain-SGD step of ``train.run_epoch`` (a one-layer identity network, squared
        error, all B rows in one batch): the fused update W <- beta W - lr X^T dZ is mm
        with alpha = -lr and beta = 1 (no weight decay, no l2) or 1 - lr wd, the
        training step's only product that reads C. On the exact operands of
        ``sgd_step_operands`` W and b after the step must be exact, on both sides of
        each of mm's bounds for that product (``sgd_step_plan``)."""
        self._run_epoch_cases(self._epoch_sgd, seeds)

    def _epoch_sgd(self, api, sgd, seeds):
        from nnlib._codes import ACTIVATION_CODES
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (B, i, o), key in PLAN["epoch_sgd"]:
                X, W0, b0, T, D = sgd_step_operands((B, i, o), dname, seed)
                Xi, Wi, bi = (a.astype(np.int64) for a in (X, W0, b0))
                for wd in (0.0, SGD_WD):
                    W, b = W0.copy(), b0.copy()
                    _, ok = squared_error_epoch(
                        api, [ACTIVATION_CODES["identity"]], [W], [b], X, T, B,
                        sgd(lr=SGD_LR, weight_decay=wd), np.arange(B, dtype=np.int64))
                    # 2^7 W' = 2^7 beta W - 2^4 X^T D, with 2^7 beta = 127 (wd) or 128
                    keep = 127 if wd else 128
                    lab = label + (", weight_decay 2^-4 (beta 1 - 2^-7)" if wd else
                                   ", no decay (beta 1)")
                    for output, got, ex in (("W", W, keep * Wi - 16 * (Xi.T @ D)),
                                            ("b", b, keep * bi - 16 * D.sum(axis=0))):
                        self._exact_case("run_epoch", f"{output} after a plain SGD step",
                                         got if ok else np.full_like(got, np.nan), ex,
                                         dname, dt, lab, key, 1, scale=2 ** 7,
                                         what="identity, squared error, integer operands")

    def epoch_relu(self, seeds):
        """One plain-SGD step of ``train.run_epoch`` on a relu-identity network (squared
        error, all B rows in one batch): relu's forward and backward in the training
        loop, which (with AVX-512, a hidden layer NN_SMALL_GEMM_MIN_N wide or more) the
        blocked products' write-back forms, or act_backward / act_backward_product. On
        the exact operands of ``relu_step_operands`` every weight and bias after the
        step must be exact (``relu_step_plan``)."""
        self._run_epoch_cases(self._epoch_relu, seeds)

    def _epoch_relu(self, api, sgd, seeds, family="epoch_relu", kernel="run_epoch",
                    what="relu, identity, squared error, integer operands"):
        from nnlib._codes import ACTIVATION_CODES
        ident = ACTIVATION_CODES["identity"]
        for dname, dt, seed in self._points(seeds[:1]):
            for label, shape, key in PLAN[family]:
                (B, i, h, o), act = shape[:4], (shape[4:] or ("relu",))[0]
                X, W0, b0, W1, b1, T, D = relu_step_operands((B, i, h, o), dname, seed)
                Xi, W0i, b0i, W1i, b1i = (a.astype(np.int64) for a in (X, W0, b0, W1, b1))
                Z0 = Xi @ W0i + b0i
                if act == "identity":
                    # the same bounds hold (they are the terms' magnitudes), and T is
                    # formed through the identity hidden layer
                    H0, dZ0 = Z0, D @ W1i.T
                    T = (H0 @ W1i + b1i - B * D).astype(dt)
                else:
                    H0 = np.maximum(Z0, 0)
                    dZ0 = np.where(H0 > 0, D @ W1i.T, 0)
                params = [W0.copy(), W1.copy()], [b0.copy(), b1.copy()]
                _, ok = squared_error_epoch(api, [ACTIVATION_CODES[act], ident], params[0],
                                            params[1], X, T, B, sgd(lr=SGD_LR),
                                            np.arange(B, dtype=np.int64))
                # 2^3 W' = 2^3 W - dW (lr 2^-3)
                for output, got, ex in (
                        ("W_0", params[0][0], 8 * W0i - Xi.T @ dZ0),
                        ("b_0", params[1][0], 8 * b0i - dZ0.sum(axis=0)),
                        ("W_1", params[0][1], 8 * W1i - H0.T @ D),
                        ("b_1", params[1][1], 8 * b1i - D.sum(axis=0))):
                    self._exact_case(kernel, f"{output} after a {act} network's SGD "
                                     "step", got if ok else np.full_like(got, np.nan), ex,
                                     dname, dt, label, key, 1, scale=2 ** 3,
                                     what=what.replace("relu", act, 1))

    def epoch_narrow(self, seeds):
        """One plain-SGD step of ``train.run_epoch`` on relu- and identity-identity
        networks whose output layer is 2 to NARROW_K wide (``narrow_pass_plan``): in
        float64 the hidden layer's backward forms dZ_1 W_1^T itself, in passes of up to
        four products (act_backward_product), one case per output width so that every
        form of a pass runs; on the exact operands of ``relu_step_operands`` every
        weight and bias after the step must be exact."""
        self._run_epoch_cases(lambda api, sgd, s: self._epoch_relu(
            api, sgd, s, "epoch_narrow"), seeds)

    def epoch_pool(self, seeds):
        """One plain-SGD step of ``train.run_epoch`` on a relu-identity network with BLAS
        on POOL_THREADS threads and the loop's ``n_threads`` 1, so that its large passes
        (the row gather, bias and activation, the activation's backward) run in blocks on
        OpenBLAS's worker threads (pass_blocks.pxd, ``pool_step_plan``): every weight and
        bias after the step must be exact, as on one thread (``relu_step_operands``).
        Where BLAS cannot run POOL_THREADS threads with its pool (another BLAS, a pool
        turned off) the cases cannot reach those passes: the item says skipped, with
        what it needs (``self.pool_skipped``), instead of passing."""
        from verify.train import compiled_api
        api = compiled_api()
        sgd = K.nnlib_attr("optim.SGD")
        if (api is None or not hasattr(api, "run_epoch") or sgd is None
                or not self.wanted("run_epoch_pool")):
            return
        from nnlib._kernels import blas
        from nnlib._threads import blas_threads
        with blas_threads(POOL_THREADS):
            if blas.pool_threads() < POOL_THREADS:
                self.pool_skipped = POOL_NEEDS
                return
            self._epoch_relu(api, sgd, seeds, "epoch_pool", "run_epoch_pool",
                             f"relu, identity, squared error, integer operands, BLAS on "
                             f"{POOL_THREADS} threads")

    def epoch_sparse(self, seeds):
        """One SGD step of ``train.run_epoch`` on CSR X (``sparse_step_plan``), where
        SciPy is installed (without it no CSR X reaches nnlib): the exact operands of
        ``sgd_step_operands`` and ``relu_step_operands`` with X passed as a CSR matrix
        (their zeros not stored) and the batch's rows in reverse order; every weight and
        bias after the step must be exact, as on dense X."""
        try:
            import scipy.sparse as sparse
        except ImportError:
            return
        self._run_epoch_cases(
            lambda api, sgd, s: self._epoch_reversed(
                api, sgd, s, "epoch_sparse", sparse.csr_matrix, "on sparse X",
                "CSR X, squared error, integer operands"), seeds)

    def epoch_rows(self, seeds):
        """One plain-SGD step of ``train.run_epoch`` whose first layer reads the batch's
        rows of dense X in place through their numbers (``rows_step_plan``): the exact
        operands of ``sgd_step_operands`` and ``relu_step_operands``, the batch's rows in
        reverse order; every weight and bias after the step must be exact, as with the
        rows in X's order."""
        self._run_epoch_cases(
            lambda api, sgd, s: self._epoch_reversed(
                api, sgd, s, "epoch_rows", lambda X: X, "on X's rows read in place",
                "rows reversed, squared error, integer operands"), seeds)

    def _epoch_reversed(self, api, sgd, seeds, family, make_x, where, what):
        # one step over the rows of PLAN[family] taken in reverse order, X passed to the
        # epoch as make_x(X)
        from nnlib._codes import ACTIVATION_CODES
        relu, ident = ACTIVATION_CODES["relu"], ACTIVATION_CODES["identity"]
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (B, i, h, o), key in PLAN[family]:
                order = np.arange(B, dtype=np.int64)[::-1].copy()
                if h:
                    X, W0, b0, W1, b1, T, D = relu_step_operands((B, i, h, o), dname, seed)
                    Xi, W0i, b0i, W1i, b1i = (a.astype(np.int64)
                                              for a in (X, W0, b0, W1, b1))
                    Ws, bs = [W0.copy(), W1.copy()], [b0.copy(), b1.copy()]
                    kinds = [relu, ident]
                    opt, scale = sgd(lr=SGD_LR), 8           # 2^3 W' = 2^3 W - dW
                    H0 = np.maximum(Xi @ W0i + b0i, 0)
                    dZ0 = np.where(H0 > 0, D @ W1i.T, 0)
                    exact = [("W_0", 8 * W0i - Xi.T @ dZ0), ("W_1", 8 * W1i - H0.T @ D),
                             ("b_0", 8 * b0i - dZ0.sum(axis=0)),
                             ("b_1", 8 * b1i - D.sum(axis=0))]
                else:
                    X, W0, b0, T, D = sgd_step_operands((B, i, o), dname, seed)
                    Xi, Wi, bi = (a.astype(np.int64) for a in (X, W0, b0))
                    Ws, bs, kinds = [W0.copy()], [b0.copy()], [ident]
                    wd = SGD_WD if "decay" in key else 0.0
                    opt = sgd(lr=SGD_LR, weight_decay=wd,
                              momentum=0.5 if "then the step" in key else 0.0)
                    # 2^7 W' = 2^7 beta W - 2^4 X^T D, with 2^7 beta = 127 (wd) or 128;
                    # momentum's first step is the plain one (its buffer is the gradient)
                    keep, scale = (127 if wd else 128), 2 ** 7
                    exact = [("W", keep * Wi - 16 * (Xi.T @ D)),
                             ("b", keep * bi - 16 * D.sum(axis=0))]
                params = [a for pair in zip(Ws, bs) for a in pair]
                states = [None if st is None or not st.size else st.reshape(-1)
                          for st in opt.state_arrays(params)]
                _, ok = squared_error_epoch(api, kinds, Ws, bs, make_x(X), T, B, opt,
                                            order, states)
                got = dict(zip(("W_0", "W_1") if h else ("W",), Ws))
                got.update(zip(("b_0", "b_1") if h else ("b",), bs))
                for output, ex in exact:
                    self._exact_case(
                        "run_epoch", f"{output} after an SGD step {where}",
                        got[output] if ok else np.full_like(got[output], np.nan), ex,
                        dname, dt, label, key, 1, scale=scale, what=what)

    def epoch_rows_steps(self, seeds):
        """Several steps of ``train.run_epoch`` with the first layer's rows read in place
        (``rows_steps_plan``): on the exact operands of ``rows_steps_operands`` W and b
        after the epoch must be exact."""
        self._run_epoch_cases(self._epoch_rows_steps, seeds)

    def _epoch_rows_steps(self, api, sgd, seeds):
        from nnlib._codes import ACTIVATION_CODES
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (N, B, i, o, rule), key in PLAN["epoch_rows_steps"]:
                X, W, b, T, We, be, scale = rows_steps_operands((N, B, i, o), rule, dname,
                                                                seed)
                opt = sgd(lr=SGD_LR, momentum=0.5 if rule == "momentum" else 0.0)
                Ws, bs = [W.copy()], [b.copy()]
                states = [None if st is None or not st.size else st.reshape(-1)
                          for st in opt.state_arrays([Ws[0], bs[0]])]
                order = np.arange(N, dtype=np.int64)[::-1].copy()
                _, ok = squared_error_epoch(api, [ACTIVATION_CODES["identity"]], Ws, bs, X,
                                            T, B, opt, order, states)
                for output, got, ex in (("W", Ws[0], We), ("b", bs[0], be)):
                    self._exact_case("run_epoch", f"{output} after {N // B} steps with the "
                                     "rows read in place", got if ok else
                                     np.full_like(got, np.nan), ex, dname, dt, label, key,
                                     1, scale=scale)

    def epoch_l2_adam(self, seeds):
        """One step of ``train.run_epoch`` with L2 under Adam (``l2_adam_plan``): a zero
        data gradient, so g = l2 w exactly, and the weights after the step are held to
        w - lr g / (|g| + eps) (Adam's first step: m / (1 - beta1) = g, sqrt(v / (1 -
        beta2)) = |g|) in longdouble within L2_ADAM_ULPS; the biases (g = 0) must not
        move."""
        self._run_epoch_cases(self._epoch_l2_adam, seeds)

    def _epoch_l2_adam(self, api, sgd, seeds):
        from nnlib._codes import ACTIVATION_CODES
        adam = K.nnlib_attr("optim.Adam")
        if adam is None:
            return
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (B, i, o), key in PLAN["epoch_l2_adam"]:
                X, W, b, T, D = sgd_step_operands((B, i, o), dname, seed)
                # T = X W + b: every row fitted, the data gradient 0; W clipped to
                # [-8, 8] so that l2 w and its square are exact (sgd_step_operands' M is
                # far above 8, so float64's W is 0 and +-8 only: see L2_ADAM_ULPS)
                W = np.clip(W, -8, 8).astype(dt)
                T = (X.astype(np.int64) @ W.astype(np.int64) + b.astype(np.int64)).astype(dt)
                opt = adam(lr=SGD_LR)
                Ws, bs = [W.copy()], [b.copy()]
                states = [None if st is None or not st.size else st.reshape(-1)
                          for st in opt.state_arrays([Ws[0], bs[0]])]
                _, ok = squared_error_epoch(api, [ACTIVATION_CODES["identity"]], Ws, bs, X,
                                            T, B, opt, np.arange(B, dtype=np.int64), states,
                                            l2=L2_ADAM)
                g = W.astype(LD) * LD(L2_ADAM)
                eps = LD(opt.config()["eps"])
                ex = W.astype(LD) - LD(SGD_LR) * g / (abs(g) + eps)
                got = Ws[0] if ok else np.full_like(Ws[0], np.nan)
                cs = self.case("run_epoch", "W after an Adam step with l2 (identity, zero "
                               "data gradient)", dname, label, key, L2_ADAM_ULPS)
                err = ulp_errors(got.reshape(-1), ex.reshape(-1), 0, dt)
                cs.add(err, None, got, ex, 1, lambda k: (
                    f"W{[int(v) for v in np.unravel_index(k, W.shape)]} of a "
                    f"{label.split(':')[0]} layer: got {float(got.reshape(-1)[k])!r}, "
                    f"exact {float(ex.reshape(-1)[k])!r}"))
                self._exact_case("run_epoch", "b after an Adam step with l2",
                                 bs[0] if ok else np.full_like(bs[0], np.nan),
                                 b.astype(np.int64), dname, dt, label, key, 1,
                                 what="identity, zero data gradient")

    def epoch_l2(self, seeds):
        """The reported loss of ``train.run_epoch`` with L2 (``l2_epoch_plan``): integer
        weights and inputs whose targets the network fits exactly (the data loss is 0),
        l2 = 2^-4 and lr = 0 (the weights stay), so the epoch's loss sum is N l2/2 sum
        ||W_l||^2, an exact double: it must come out exactly."""
        self._run_epoch_cases(self._epoch_l2, seeds)

    def _epoch_l2(self, api, sgd, seeds):
        from nnlib._codes import ACTIVATION_CODES
        relu, ident = ACTIVATION_CODES["relu"], ACTIVATION_CODES["identity"]
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (N, B, i, h, o), key in PLAN["epoch_l2"]:
                rng = np.random.default_rng([seed, 12, N, B, i, h, o])
                sizes = [i, h, o] if h else [i, o]
                Wi = [rng.integers(-8, 9, (a, b)) for a, b in zip(sizes, sizes[1:])]
                bi = [rng.integers(-8, 9, b) for b in sizes[1:]]
                Xi = rng.integers(-8, 9, (N, i))
                Zi = Xi @ Wi[0] + bi[0]
                if h:
                    Zi = np.maximum(Zi, 0) @ Wi[1] + bi[1]
                pen = sum(int((w * w).sum()) for w in Wi)
                # plain SGD: each step sums the weights; momentum: the update's sums
                for rule, opt, slots in (("", sgd(lr=0.0), 0),
                                         (", momentum 1/2", sgd(lr=0.0, momentum=0.5), 1)):
                    Ws, bs = [w.astype(dt) for w in Wi], [b.astype(dt) for b in bi]
                    states = [np.zeros(slots * a.size, dt) if slots else None
                              for pair in zip(Ws, bs) for a in pair]
                    r, ok = squared_error_epoch(
                        api, [relu, ident] if h else [ident], Ws, bs, Xi.astype(dt),
                        Zi.astype(dt), B, opt, np.arange(N, dtype=np.int64),
                        states=states, l2=2.0 ** -4)
                    # l2/2 = 2^-5: 2^5 loss_sum = N pen
                    self._exact_case("run_epoch", "the reported loss sum with L2",
                                     np.array([r[0] if ok else np.nan]),
                                     np.array([N * pen]), dname, np.float64, label, key,
                                     1, scale=2 ** 5, what="data loss 0, l2 2^-4, lr 0, "
                                     "integer weights" + rule)

    def epoch_b1(self, seeds):
        """N plain-SGD steps of ``train.run_epoch`` at batch 1 on a relu-identity network
        (``batch1_steps_plan``): every weight and bias after the epoch must be the exact
        values of ``batch1_steps_exact`` (multiples of 2^-12), as N one-row steps in a
        row give them."""
        self._run_epoch_cases(self._epoch_b1, seeds)

    def _epoch_b1(self, api, sgd, seeds):
        from nnlib._codes import ACTIVATION_CODES
        relu, ident = ACTIVATION_CODES["relu"], ACTIVATION_CODES["identity"]
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (N, i, h, o), key in PLAN["epoch_b1"]:
                (X, W0, b0, W1, b1, T), exact = batch1_steps_exact((N, i, h, o), seed)
                Ws, bs = [W0.astype(dt), W1.astype(dt)], [b0.astype(dt), b1.astype(dt)]
                _, ok = squared_error_epoch(api, [relu, ident], Ws, bs, X.astype(dt),
                                            T.astype(dt), 1, sgd(lr=SGD_LR),
                                            np.arange(N, dtype=np.int64))
                for output, got, ex in zip(("W_0", "b_0", "W_1", "b_1"),
                                           (Ws[0], bs[0], Ws[1], bs[1]), exact):
                    ex = np.array([int(v * 4096) for v in np.ravel(ex)],
                                  dtype=np.int64).reshape(got.shape)
                    self._exact_case("run_epoch", f"{output} after {N} steps at batch 1",
                                     got if ok else np.full_like(got, np.nan), ex,
                                     dname, dt, label, key, 1, scale=2 ** 12,
                                     what="relu, identity, squared error, exact operands")

    def epoch_sklearn(self, seeds):
        """One step of ``train.run_epoch`` under scikit-learn's SGD with Nesterov momentum
        (``sklearn_step_plan``) from a velocity of 3 g, on the exact operands of
        ``sklearn_step_operands``: the velocity must come out g and the weights and
        biases as they were (the update mu g - lr g is 0), exactly."""
        self._run_epoch_cases(self._epoch_sklearn, seeds)

    def _epoch_sklearn(self, api, sgd, seeds):
        from nnlib._codes import ACTIVATION_CODES
        cls = K.nnlib_attr("optim.SklearnSGD")
        if cls is None:
            return
        for dname, dt, seed in self._points(seeds[:1]):
            for label, (B, i, o), key in PLAN["epoch_sklearn"]:
                X, Wi, bi, S, C = sklearn_step_operands((B, i, o), seed)
                W, b = Wi.astype(dt), bi.astype(dt)
                T = (-C.astype(np.float64) * 2.0 ** SKLEARN_SHIFT).astype(dt)
                grads = [np.outer(X[0], S), S]          # 2^-59 times the gradients
                opt = cls(lr=SKLEARN_LR, momentum=SKLEARN_MU, nesterov=True)
                states = [st.reshape(-1) for st in opt.state_arrays([W, b])]
                for st, g in zip(states, grads):
                    st[:] = (3.0 * g.reshape(-1) * 2.0 ** 59).astype(dt)
                _, ok = squared_error_epoch(api, [ACTIVATION_CODES["identity"]], [W], [b],
                                            X.astype(dt), T, B, opt,
                                            np.arange(B, dtype=np.int64), states)
                v = [(st / dt(2.0 ** 59)).reshape(g.shape) for st, g in zip(states, grads)]
                for output, got, ex in (("W", W, Wi), ("b", b, bi),
                                        ("W's velocity / 2^59", v[0], grads[0]),
                                        ("b's velocity / 2^59", v[1], grads[1])):
                    self._exact_case("run_epoch", f"{output} after a scikit-learn Nesterov "
                                     "step", got if ok else np.full_like(got, np.nan), ex,
                                     dname, dt, label, key, 1,
                                     what="velocity 3 g, a cancelling update, exact "
                                          "operands")

    def _exact_case(self, kernel, output, got, exact, dname, dt, label, key, threads,
                    scale=1, what="identity, integer operands"):
        """Hold ``got`` to the integers ``exact`` / ``scale`` exactly (cap 0 ulp)."""
        got = np.asarray(got)
        cs = self.case(kernel, f"{output} ({what})", dname, label, key, 0.0)
        if got.dtype != dt or got.shape != exact.shape:
            err = np.full(max(exact.size, 1), np.inf)
        else:
            # exact integers below 2^53 (scale a power of two): only the elements that
            # differ need the longdouble measure
            err = np.zeros(exact.size)
            off = np.flatnonzero(got.astype(np.float64).reshape(-1) * scale
                                 != exact.reshape(-1))
            err[off] = ulp_errors(got.reshape(-1)[off],
                                  exact.reshape(-1)[off].astype(LD) / scale, 0, dt)
        cs.add(err, None, got, exact, threads, lambda k: (
            f"{output}{[int(v) for v in np.unravel_index(k, exact.shape)]} of a "
            f"{label.split(':')[0]} layer: got {got.dtype}{got.shape}"
            + (f" {float(got.reshape(-1)[k])!r}, exact {int(exact.reshape(-1)[k])}"
               + (f" / {scale}" if scale != 1 else "")
               if got.shape == exact.shape else "")))


def squared_error_epoch(api, kinds, Ws, bs, X, T, batch, optimizer, order, states=None,
                        l2=0.0):
    """One call of ``api.run_epoch`` (the compiled training API) over the rows ``order``
    in batches of ``batch``: a network of activation codes ``kinds`` with weights ``Ws``
    and biases ``bs`` (trained in place), squared error against T, ``optimizer`` (an
    nnlib optimizer; ``states``: its flat state arrays, None for none). Returns
    run_epoch's result and whether every step ran (status ok)."""
    from nnlib._codes import LOSS_CODES
    sizes = [Ws[0].shape[0]] + [w.shape[1] for w in Ws]
    setup = api.EpochSetup(
        api.Network(sizes, kinds, [0.0] * len(kinds)), Ws, bs,
        [None] * (2 * len(Ws)) if states is None else states, X, T,
        np.zeros(1, np.int64), api.Workspace(sizes, batch, T.shape[1], Ws[0].dtype),
        LOSS_CODES["squared_error"], batch, l2=l2, optimizer=optimizer.config())
    r = api.run_epoch(setup, order, 0)
    return r, r[2] == -(-len(order) // batch) and r[3] == 0


# The plain-SGD step of epoch_sgd: lr and weight decay powers of two, so that the decay
# factor 1 - lr wd = 1 - 2^-7 and every update is exact (sgd_step_operands)
SGD_LR, SGD_WD = 2.0 ** -3, 2.0 ** -4


def sgd_step_operands(shape, dname, seed):
    """X (B, n_in), W, b, targets T (B, n_out) and the loss gradient D of one plain-SGD
    step of a one-layer identity network under squared error, for ``shape`` = (B, n_in,
    n_out): integers of magnitude up to the largest M with 32 (max(shape) + 1) M^2 < 2^p,
    T = X W + b - B D for integers D whose gradient (1/B) (B D), as the epoch forms it
    (``1.0 / B`` in double times the double difference, then rounded to the dtype),
    comes out as D exactly (the others are set to 0). Then the scores, the gradient
    D, X^T D and the update (1 - 2^-7) W - 2^-3 X^T D (multiples of 2^-7 below 2^(p-7))
    are all exact in the dtype. Returns the arrays in the dtype and D as int64."""
    B, i, o = shape
    dt = DTYPES[dname]
    p = np.finfo(dt).nmant + 1
    M = math.isqrt((2 ** p - 1) // (32 * (max(shape) + 1)))
    rng = np.random.default_rng([seed, 10, B, i, o])

    def draw(*s):
        v = rng.integers(-M, M + 1, s)
        v[rng.random(s) < 1 / 3] = 0
        return v
    X, W, b, D = draw(B, i), draw(i, o), draw(o), draw(B, o)
    dz = (np.float64(1.0 / B) * (B * D).astype(np.float64)).astype(dt)
    D = np.where(dz == D, D, 0)
    T = X @ W + b - B * D
    return X.astype(dt), W.astype(dt), b.astype(dt), T.astype(dt), D


def rows_steps_operands(shape, rule, dname, seed):
    """X (N, n_in), W, b, targets T (N, n_out) of a one-layer identity network trained
    under squared error in batches of B over X's rows in reverse order, for ``shape`` =
    (N, B, n_in, n_out), B a power of two, by ``rule`` "sgd" (plain SGD, lr 2^-3) or
    "momentum" (SGD, lr 2^-3, momentum 1/2), and the exact W and b after the epoch times
    ``scale``. Each batch's targets are set from the weights the step before left: T =
    X_b W + b - B D for small integers D, so every step's gradient is D exactly; the
    weights are multiples of 1 / scale (2^3, and 2^-1 per momentum step past the first)
    and every score, partial sum and update is one below 2^(p-1) / scale (checked), exact
    in the dtype. Returns (X, W, b, T, W_exact, b_exact, scale)."""
    N, B, i, o = shape
    dt = DTYPES[dname]
    p = np.finfo(dt).nmant + 1
    steps = N // B
    scale = 8 * (2 ** (steps - 1) if rule == "momentum" else 1)
    rng = np.random.default_rng([seed, 12, N, B, i, o])

    def draw(m, *s):
        v = rng.integers(-m, m + 1, s)
        v[rng.random(s) < 1 / 3] = 0
        return v
    X, W, b = draw(3, N, i), draw(3, i, o), draw(3, o)
    Ws, bs = W * scale, b * scale                   # the weights times scale, exactly
    T = np.zeros((N, o), np.int64)                  # the targets times scale
    buf = bbuf = None
    order = np.arange(N)[::-1]
    big = 0
    for s in range(steps):
        rows = order[s * B:(s + 1) * B]
        D = draw(2, B, o)
        Z = X[rows] @ Ws + bs
        T[rows] = Z - B * scale * D
        big = max(big, int((abs(X[rows]) @ abs(Ws) + abs(bs)).max()),
                  int(abs(T[rows]).max()))
        g, gb = X[rows].T @ D * scale, D.sum(axis=0) * scale
        if rule == "momentum":
            buf = g if buf is None else buf // 2 + g
            bbuf = gb if bbuf is None else bbuf // 2 + gb
            g, gb = buf, bbuf
        Ws, bs = Ws - g // 8, bs - gb // 8
        big = max(big, int(abs(Ws).max()), int(abs(g).max()))
    if big >= 2 ** (p - 1):
        raise ValueError(f"rows_steps_operands: {big} >= 2^{p - 1} (draw smaller values)")
    return (X.astype(dt), W.astype(dt), b.astype(dt), (T / scale).astype(dt), Ws, bs,
            scale)


# Adam's step with L2 (epoch_l2_adam): l2 2^-4 on weights up to 8, exact in float32; the
# weights after the step within this many ulps of w - lr g / (|g| + eps) (the rule's own
# roundings of m, v, the root and the quotient are a few ulps of a step of lr = 2^-3).
# The hold that binds is tighter: every baseline figure (0.03-0.34) is within correct
# rounding, so _judge holds these cases to CORRECTLY_ROUNDED_LIMIT on every build. That
# stays true off this build (no FMA, AVX2): float32's step is formed in double and rounded
# once, and float64's W is 0 or +-8, whose w - s lies 0.29 ulp from its rounding, so the
# step s must be off by ~13 of its own ulps (2^-56 against the result's 2^-50) to round the
# other way. A float64 |w| of 5 lies 0.483 ulp off, where one ulp of s flips it: keep such
# weights out of float64's cases.
L2_ADAM = 2.0 ** -4
L2_ADAM_ULPS = 2.0


# scikit-learn's Nesterov step of epoch_sklearn: mu = lr = 2^-1, so that from a velocity
# of 3 g the new velocity mu 3g - lr g is g and the update mu g - lr g is 0, all exact
SKLEARN_LR = SKLEARN_MU = 0.5
# the targets' scale: the gradients are 2^59 times small integers (sklearn_step_operands)
SKLEARN_SHIFT = 60


def sklearn_step_operands(shape, seed):
    """X (B, n_in), W, b and C (B, n_out) of one step of a one-layer identity network
    under squared error with targets T = -2^SKLEARN_SHIFT C, for ``shape`` = (B, n_in,
    n_out), B 1 or 2: every row of X is one x, b = -x W, so the scores are 0 and the
    loss gradient (1/B)(0 - T) is 2^59 (2/B) C exactly; the weight gradient is then
    2^59 outer(x, S) and the bias gradient 2^59 S, S = (2/B) C summed over the rows.
    Small integers without 0 (x and C in [-2, 2], C's sign one per column, so that no
    gradient is 0; W in [-3, 3]), so every gradient and velocity (3 times a gradient) is
    exact in float32 and float64. Returns X, W, b, S and C as int64 arrays."""
    B, i, o = shape
    rng = np.random.default_rng([seed, 14, B, i, o])
    x = rng.choice([-2, -1, 1, 2], i)
    W = rng.choice([-3, -2, -1, 1, 2, 3], (i, o))
    C = rng.choice([1, 2], (B, o)) * rng.choice([-1, 1], o)
    X = np.repeat(x[None, :], B, axis=0)
    return X, W, -(x @ W), (2 // B) * C.sum(axis=0), C


def relu_step_operands(shape, dname, seed):
    """X (B, n_in), W_0 (n_in, h), b_0, W_1 (h, n_out), b_1, targets T and the loss
    gradient D (int64) of one plain-SGD step of a relu-identity network under squared
    error, for ``shape`` = (B, n_in, h, n_out): integers of magnitude up to the largest M
    that keeps every intermediate below 2^(p-1) (H_0 = relu(X W_0 + b_0), Z_1 = H_0 W_1 +
    b_1, D W_1^T, X^T dZ_0, H_0^T D and 2^3 W - dW), a third of them 0, and T = Z_1 - B D
    with D as in ``sgd_step_operands`` (its gradient, as the epoch forms it, is D
    exactly). Roughly half the pre-activations are negative, so H_0 = 0 there."""
    B, i, h, o = shape
    dt = DTYPES[dname]
    p = np.finfo(dt).nmant + 1

    def fits(m):
        return max((h + 1) * (i + 1) * (m + 1) ** 3 + B * (m + 1),
                   B * (i + 1 + o) * (m + 1) ** 3) + 8 * (m + 1) < 2 ** (p - 1)
    # M: the first m >= 1 that does not fit (fits falls with m), found by doubling and
    # bisection (counting up to it took ~25 ms a shape in float64)
    lo, hi = 0, 1
    while fits(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    M = hi
    rng = np.random.default_rng([seed, 11, B, i, h, o])

    def draw(*s):
        v = rng.integers(-M, M + 1, s)
        v[rng.random(s) < 1 / 3] = 0
        return v
    X, W0, b0, W1, b1, D = draw(B, i), draw(i, h), draw(h), draw(h, o), draw(o), draw(B, o)
    dz = (np.float64(1.0 / B) * (B * D).astype(np.float64)).astype(dt)
    D = np.where(dz == D, D, 0)
    H0 = np.maximum(X @ W0 + b0, 0)
    T = H0 @ W1 + b1 - B * D
    return tuple(a.astype(dt) for a in (X, W0, b0, W1, b1, T)) + (D,)


def product_operands(shape, dname, seed):
    """X (rows, n_in), W (n_in, n_out), b (n_out,) and an upstream gradient G (rows,
    n_out) of a Dense layer of ``shape`` = (rows, n_in, n_out): integers of magnitude up to
    the largest M with (k + 1) M^2 < 2^p (p the dtype's significand bits, k the longest
    sum of the layer's products, max(shape)), a third of them 0 (the plain loops skip
    zero coefficients). Every product, partial sum and bias sum is then an integer below
    2^p: exact in the dtype in any order of additions. The values fill much of the
    significand, so an intermediate rounded to a narrower type shows."""
    r, i, o = shape
    dt = DTYPES[dname]
    p = np.finfo(dt).nmant + 1
    M = math.isqrt((2 ** p - 1) // (max(shape) + 1))
    rng = np.random.default_rng([seed, 9, r, i, o])

    def draw(*s):
        v = rng.integers(-M, M + 1, s)
        v[rng.random(s) < 1 / 3] = 0
        return v.astype(dt)
    return draw(r, i), draw(i, o), draw(o), draw(r, o)


# The derivative from the rounded output H (dense_backward): the term its rounding enters
FROM_OUTPUT_T = {"sigmoid": lambda y, a: y, "tanh": lambda y, a: 3 * y * y,
                 "softplus": lambda y, a: y * np.exp(-y), "elu": lambda y, a: np.abs(y) + a}


_ACT_NAMES = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "sign")


# The seed of the fixed point set every run measures first: the baseline figures are its
# largest errors, so runs with other seeds compare like with like.
FIXED_SEED = 0


def _seeds(ctx):
    """FIXED_SEED, then the run's seeds (--seed and, in a full run, the next ones)."""
    seeds = list(getattr(ctx, "seeds", None) or [ctx.seed])
    return [FIXED_SEED] + [s for s in seeds if s != FIXED_SEED]


MAP_KERNELS = ("softmax", "log_softmax", "sparsemax")
def per_row_widths(name):
    """[(label, c)]: the widths at which loss ``name`` is also measured one row at a time
    (a narrow row, and a row wider than VEC_BLOCK: the blocked kernels' one-row path)."""
    if name == "logistic_loss":
        return [("each value alone, both labels", 1)]
    if name == "poisson_loss":
        return [("each (z, t) alone, NN_POISSON_NEAR and NN_EXP_ARG_MAX", 1)]
    wide = _paths()["VEC_BLOCK"] + 1
    return [("each row alone, c=3", 3), (f"each row alone, c=VEC_BLOCK+1 ({wide})", wide)]
LOSS_KERNELS = ("softmax_cross_entropy", "squared_error", "logistic_loss", "sparsemax_loss",
                "hinge_loss", "poisson_loss")


# Row weights of the sample-weighted epoch cases, cycled: unequal, a 0 (a row that must
# drop out of the loss and the gradient), exact in float32, and a total over the plan's
# batches that is no power of two (so 1 / sum w is rounded, as the kernel rounds it)
SAMPLE_WEIGHTS = (0.0, 1.0, 3.0, 0.5, 2.25, 7.0, 1.5, 0.125, 5.0)


def sample_weights(n, dt):
    """(n,) weights of dtype ``dt``: SAMPLE_WEIGHTS cycled, the weight-0 row not first."""
    return np.resize(np.roll(SAMPLE_WEIGHTS, -1), n).astype(dt)


def _margins(name):
    """The hinge loss runs at margin 1 and at 0 (its kink at h = 0); other losses have none."""
    return (1.0, 0.0) if name == "hinge_loss" else (None,)




def item_names():
    """The names of the items run_paths makes (for --list and the catalogue)."""
    from verify.registry import ACTIVATIONS
    kernels = ([a.name for a in ACTIVATIONS] + list(MAP_KERNELS) + list(LOSS_KERNELS)
               + ["dense_forward", "dense_backward", "run_epoch", "run_epoch_pool"])
    return [f"{k} (branch paths)" for k in kernels]


def run_paths(ctx):
    """One item per kernel family: every case of the plan, its figure beside the baseline,
    and a FAIL naming the seed and the worst input for any case that breaks a rule."""
    global PLAN
    t0 = time.perf_counter()
    if not reference_ok():
        return [{"name": "branch paths", "section": "kernels", "passed": False,
                 "verdict": "FAIL: numpy.longdouble has a "
                            f"{np.finfo(LD).nmant + 1}-bit significand here; the exact "
                            "reference needs >= 64 bits"}]
    PLAN = plan()
    baseline = load_baseline()
    update = bool(getattr(ctx, "update_baseline", False))
    run = _Runner(ctx, baseline, update)
    seeds = _seeds(ctx)
    with np.errstate(all="ignore"):
        run.activations(seeds)
        run.maps(seeds)
        run.losses(seeds)
        run.dense(seeds)
        run.dense_products(seeds)
        run.epoch_sgd(seeds)
        run.epoch_relu(seeds)
        run.epoch_narrow(seeds)
        run.epoch_sparse(seeds)
        run.epoch_l2(seeds)
        run.epoch_b1(seeds)
        run.epoch_sklearn(seeds)
        run.epoch_rows(seeds)
        run.epoch_rows_steps(seeds)
        run.epoch_l2_adam(seeds)
        run.epoch_pool(seeds)
        run.epoch_losses(seeds)
    blas_bases, this_fp = load_blas_baselines(), None
    if any(c.blas for c in run.cases.values()):
        this_fp = blas_fingerprint()
    blas_base = blas_bases.get(this_fp, {})
    other_blas = None
    if this_fp is not None and this_fp not in blas_bases and not update:
        other_blas = (f"a BLAS product: verify/baseline.json has no figures for this BLAS "
                      f"(fingerprint {this_fp}; it has "
                      f"{', '.join(sorted(blas_bases)) or 'none'}), whose kernels may round it differently, so this case is held to "
                      "its cap only (python -m verify --update-baseline records them)")

    def base_of(case):
        return blas_base if case.blas else baseline
    for case in run.cases.values():
        if case.output != "threads":
            _judge(case, base_of(case), update, other_blas)
    changed = []
    if update:
        blas_keys = {c.key for c in run.cases.values() if c.blas}
        new = dict(baseline)
        # (a file of the earlier layout reads with all of max_ulps as its BLAS's figures)
        new_blas = {k: v for k, v in blas_base.items() if k in blas_keys or k not in new}
        for case in run.cases.values():
            if case.blas:
                new.pop(case.key, None)     # the earlier layout kept them in max_ulps
            if case.output == "threads" or not math.isfinite(case.base_ulps):
                continue
            into = new_blas if case.blas else new
            v = _round_up(case.base_ulps)
            if case.key not in into or v < into[case.key]:
                into[case.key] = v
        changed = sorted({k for k in new if baseline.get(k) != new[k]}
                         | {k for k in new_blas if blas_base.get(k) != new_blas[k]})
        blas_all = dict(blas_bases)
        if this_fp is not None:
            blas_all[this_fp] = new_blas
        if changed or new != baseline or blas_all != blas_bases:
            save_baseline(new, blas=blas_all)
    families = {}
    for case in run.cases.values():
        families.setdefault(case.kernel, []).append(case)
    items = []
    for kernel, cases in families.items():
        rows = [c.as_dict(base_of(c)) for c in cases]
        bad = [r for r in rows if not r["passed"]]
        cap_only = sum(1 for r in rows if r["note"])
        smallest = min(((c.n_points, f"{c.output} [{c.dname}] {c.path}: {c.worst}")
                        for c in cases if c.problems),
                       default=(0, None))[1]
        items.append({
            "baseline_changed": [k for k in changed if k.startswith(kernel + "|")]
            if update else [],
            "name": f"{kernel} (branch paths)", "section": "kernels", "kind": "paths",
            "smallest_failure": smallest,
            "kernel": kernel, "passed": not bad,
            "verdict": (f"FAIL ({len(bad)} of {len(rows)} cases)" if bad else "pass"
                        + (f" ({cap_only} BLAS cases cap only: a BLAS without figures)"
                           if cap_only else "")),
            "paths": rows, "seeds": seeds,
            "error_models": {k: v for k, v in ERROR_MODELS.items()
                             if k.startswith(kernel) or k == "activation"
                             and kernel in _ACT_NAMES or k == "epoch loss_grad"
                             and kernel in LOSS_KERNELS},
            "paths_covered": sorted({r["path"] for r in rows}),
            "thresholds_covered": sorted({r["threshold"] for r in rows}),
            "failures": [f"{r['output']} [{r['dtype']}] {r['path']}: {p}"
                         for r in bad for p in r["problems"]][:10],
            "seconds": round(time.perf_counter() - t0, 3)})
    if run.pool_skipped:
        items.append({
            "baseline_changed": [], "name": "run_epoch_pool (branch paths)",
            "section": "kernels", "kind": "paths", "smallest_failure": None,
            "kernel": "run_epoch_pool", "passed": True, "skipped": run.pool_skipped,
            "verdict": K.skip_verdict(run.pool_skipped), "paths": [], "seeds": seeds,
            "error_models": {}, "paths_covered": [], "thresholds_covered": [],
            "failures": [], "seconds": round(time.perf_counter() - t0, 3)})
    return items
