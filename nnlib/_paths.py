"""Where the compiled kernels change path: the one home of every threshold.

A kernel that switches algorithm, block or thread split at some size (or clamps at some
argument) reads the threshold from here, and so does ``verify/``, whose evidence runs every
kernel just below, at and just above each one (``verify/paths.py``), in both dtypes and on
one thread and several. setup.py renders the tables below into the kernels' constants
(``nnlib/_kernels/paths.pxd.tp`` -> ``paths.pxd`` for the integers the Cython code reads,
``paths.h.tp`` -> ``paths.h`` for ``vmath.h``'s real cut-offs and the integers a C header
reads, ``gemm_small.h``'s bounds), and the compiled ``nnlib._kernels.paths``
reports the values it was built with, so a build older than an edit here is caught by
``tests/test_paths.py``. The module is plain Python with no imports, so the build can run
it before anything is compiled (``nnlib/_kernels/_templates.py``).

Each entry is ``name: (value, where, what changes there)``.
"""

# Integer thresholds: Cython enums of paths.pxd, or (a name starting NN_, read by a C
# header) C macros of paths.h.
INT_PATHS = {
    "VEC_BLOCK": (
        256, "loss_rows.pxd",
        "elementwise terms of a sum are evaluated in blocks of this many values "
        "(softmax / log-sum-exp rows, the logistic loss over all n*c scores): longer "
        "rows or batches run several blocks; softmax and log_softmax (and their vjps) "
        "take rows of up to this many values VEC_BLOCK // c rows at a time, longer rows "
        "one at a time"),
    "CE_MULTIROW_MIN_ROWS": (
        4, "loss_rows.pxd",
        "softmax cross-entropy evaluates VEC_BLOCK // c rows per vectorized block when "
        "that is at least this many rows (c <= 64), and row by row otherwise (c >= 65)"),
    "SPARSEMAX_INSERTION_MAX": (
        24, "loss_rows.pxd",
        "sparsemax sorts rows of up to this many values by insertion sort, longer rows "
        "by heapsort"),
    "LOSS_CHUNK": (
        128, "losses.pyx",
        "the losses cut the batch into tasks of this many rows (one prange iteration "
        "each, summed in chunk order)"),
    "ACT_CHUNK": (
        4096, "activations.pyx",
        "the activations and their vjps run tasks of this many elements"),
    "PAR_MIN_ELEMS": (
        32768, "dense.pxd",
        "a Dense layer's elementwise passes (bias + activation, dZ and db) use several "
        "threads from this many elements (rows * cols) on"),
    "PARALLEL_MIN_SIZE": (
        32768, "_threads.py",
        "n_threads=None picks one thread below this many elements, all cores from it on"),
    "TRANSPOSED_MAX_BYTES": (
        262144, "train.pyx",
        "a batch-1 plain-SGD epoch keeps transposed copies of the weights W_1 .. W_L-1 "
        "(the input gradients read them) when they take at most this many bytes"),
    "PADDED_MAX_BYTES": (
        262144, "train.pyx",
        "a batch-1 plain-SGD epoch steps a copy of W_0 with rows padded to whole cache "
        "lines (copied back at the end of the call) when it takes at most this many bytes"),
    "PADDED_MIN_STEPS": (
        8, "train.pyx",
        "past batch 1, a plain-SGD run_epoch call steps the padded copy of W_0 (the first "
        "layer read in place) only when it runs at least this many steps"),
    "PADDED_MIN_STEPS_B1": (
        512, "train.pyx",
        "at batch 1, a plain-SGD run_epoch call steps the padded copies of the weights "
        "only when it runs at least this many steps"),
    "OPTIM_CHECK_CHUNK": (
        256, "optim.pyx",
        "the optimizers' overflow dry run works in blocks of this many elements"),
    "NARROW_K": (
        16, "train.pyx",
        "the float64 training loop forms the input gradient dZ W^T of a layer at most this "
        "wide itself, inside the backward pass below it (dense.pxd's "
        "act_backward_product); a wider layer's is a product (gemm_small.h's blocked "
        "loops with relu's backward in their write-back, or BLAS)"),
    "NN_SHUFFLE_SWAPS": (
        512, "shuffle.pyx",
        "SeedOrders' Fisher-Yates (an int random_state's shuffle) finds the accepted "
        "index of this many positions in one pass, then makes their swaps: an order "
        "longer than this runs several blocks"),
    "NN_SHUFFLE_DRAWS": (
        64, "shuffle.pyx",
        "SeedOrders' Fisher-Yates makes PCG64's outputs this many ahead (each with the "
        "state it leaves), and makes the next ones when a block's draws run out"),
    "NN_SMALL_GEMM_MAX_K": (
        256, "gemm_small.h",
        "dense.pxd's mm sends a product of at least 2 rows with an inner dimension k from "
        "2 up to this to gemm_small.h's register-blocked loops (AVX2 with FMA, or "
        "AVX-512; the stack buffer of a copied panel holds this many rows), longer ones to "
        "BLAS (one row or k = 1: the plain loops)"),
    "NN_SMALL_GEMM_MIN_N": (
        16, "gemm_small.h",
        "mm's blocked loops take products of at least this many columns; narrower ones go "
        "to BLAS (a panel of one vector and a half vector spends as many broadcasts as a "
        "whole one; with AVX-512 the digits net's 10 columns gain as little as they lose)"),
    "NN_SMALL_GEMM_NARROW_MIN_N": (
        9, "gemm_small.h",
        "a float32 forward product with the bias (dense.pxd's mm_bias_act: the training "
        "step's H W + b) of at least this many and fewer than NN_SMALL_GEMM_MIN_N columns "
        "(the digits net's 10 outputs) goes to the blocked loops, the bias added in their "
        "write-back, where it is at most NN_SMALL_GEMM_NARROW_MAX_MNK multiply-adds: "
        "OpenBLAS's SkylakeX small-matrix kernel adds such a product as one chain of "
        "fused multiply-adds per element from zero in increasing k, as the blocked loops "
        "do (with 8 columns or fewer and k >= 32 it reduces a dot product in another "
        "order), so the result is the same"),
    "NN_SMALL_GEMM_NARROW_MAX_MNK": (
        1000000, "gemm_small.h",
        "the narrow forward products of NN_SMALL_GEMM_NARROW_MIN_N take the blocked loops "
        "up to this many multiply-adds (m n k): OpenBLAS's SkylakeX small-matrix kernels "
        "take products up to 100^3, larger ones its packed kernels, which add in other "
        "orders"),
    "NN_SMALL_GEMM_NARROW_STEP_MIN_N": (
        9, "gemm_small.h",
        "a float32 product C = alpha A^T B + beta C (dense.pxd's mm with op(A) transposed: "
        "the training step's fused W <- W - lr H^T dZ, or the gradient H^T dZ alone) of at "
        "least this many and fewer than NN_SMALL_GEMM_MIN_N columns (the digits net's 10 "
        "outputs) goes to the blocked loops with OpenBLAS's write-back (gemm_small.h's "
        "NN_GEMM_ACT_ALPHA_FIRST: alpha times the chain rounded, then beta C added by one "
        "fused multiply-add), where it is at most NN_SMALL_GEMM_NARROW_STEP_MAX_MNK "
        "multiply-adds: OpenBLAS's SkylakeX small-matrix kernel for it (column-major NT) "
        "forms each element so, its chain one fused multiply-add per k in increasing k "
        "from zero, so the result is the same; narrower products go to BLAS"),
    "NN_SMALL_GEMM_NARROW_STEP_MAX_MNK": (
        1000000, "gemm_small.h",
        "the narrow products of NN_SMALL_GEMM_NARROW_STEP_MIN_N take the blocked loops up "
        "to this many multiply-adds (m n k): OpenBLAS's SkylakeX small-matrix kernels take "
        "products up to 100^3, larger ones its packed kernels, which add in other orders"),
    "NN_IDENTITY_SUMS_MAX_C": (
        16, "act_row.h",
        "act_backward in place (dZ is dH: the training loop's output layer) of an "
        "identity layer of 2+ rows and at most this many columns keeps the column sums "
        "in two vectors of 8 doubles down the rows (act_row.h's nn_identity_sums, "
        "AVX-512; at most 16: the two vectors' lanes), a wider one's, or one row's, in "
        "memory (dense.pxd's act_backward_cols): the same sums"),
    "NN_CE_SHORT_MAX_C": (
        16, "ce_rows.h",
        "softmax cross-entropy (the training loop's and nnlib.functional's) takes rows of "
        "at most this many classes a row in one or two vectors of 8 doubles (ce_rows.h, "
        "AVX-512: the maximum and the shift in one pass, the sum and the gradient in "
        "another; at most 16: the two vectors' lanes), wider ones through "
        "loss_rows.pxd's loops: the same values"),
    "NN_SMALL_GEMM_MAX_MNK": (
        2097152, "gemm_small.h",
        "mm's blocked loops take products of at most this many multiply-adds (m n k); "
        "larger ones go to BLAS's cache blocking"),
    "GIL_RELEASE_MIN": (
        32768, "gil.pxd",
        "the kernels a Python caller runs (layers, losses, maps, optimizer steps, input "
        "checks, the epoch) let the GIL go for work of at least this many values (an "
        "element, or MACS_PER_VALUE multiply-adds) and keep it below: the result is the "
        "same either way"),
}

# Real cut-offs of vmath.h's exp / expm1 / log1p / tanh (C macros of paths.h).
REAL_PATHS = {
    "NN_EXP_ARG_MAX": (
        710.0, "vmath.h",
        "nn_exp clamps larger arguments to this (e^710 > DBL_MAX: +inf either way)"),
    "NN_EXP_ARG_MIN": (
        -746.0, "vmath.h",
        "nn_exp clamps smaller arguments to this (e^-746 < 2^-1075 rounds to 0)"),
    "NN_EXP_F32_ARG_MIN": (
        -708.0, "vmath.h",
        "nn_exp_neg_f32 (float32 sigmoid, softplus, elu') clamps smaller arguments to this "
        "(e^-708 is normal, so 2^k is one factor; every float32 result it feeds rounds to "
        "0 below it)"),
    "NN_EXPM1_ARG_MIN": (
        -60.0, "vmath.h",
        "nn_expm1_neg clamps smaller arguments to this (expm1(-60) rounds to -1)"),
    "NN_LOG1P_SPLIT": (
        0.41421356237309503, "vmath.h",
        "nn_log1p_unit reduces u above sqrt(2) - 1 by a factor of 2 before its polynomial"),
    "NN_POISSON_NEAR": (
        1.3862943611198906, "loss_rows.pxd",
        "the Poisson loss is t phi(d) (d = z - log t; phi from nn_exp's polynomial, fitted "
        "on |x| <= ln2/2, at x = d/4) for |d| up to this (2 ln2), e^z - t (1 + d) beyond"),
    "NN_TANH_F32_SATURATE": (
        30.0, "vmath.h",
        "nn_tanh_f32 (float32 tanh) uses expm1(-60) = -1 for |x| above this"),
}


def c_macro(name):
    """Whether threshold ``name`` is a C macro of paths.h (the real cut-offs, and the
    integers a C header reads: their names start with NN_) rather than an enum of
    paths.pxd. A header's macro cannot also be an enum: a module that cimports paths.pxd
    and includes the header would declare the enum constant over the macro."""
    return name.startswith("NN_")


def path_value(name):
    """The value of threshold ``name`` (either table); KeyError naming the known ones."""
    for table in (INT_PATHS, REAL_PATHS):
        if name in table:
            return table[name][0]
    raise KeyError(f"unknown branch threshold {name!r}; known: "
                   f"{sorted(INT_PATHS) + sorted(REAL_PATHS)}")


def real_literal(value):
    """A C double literal that reads back as exactly ``value`` (repr round-trips)."""
    text = repr(float(value))
    return text if ("." in text or "e" in text) else text + ".0"
