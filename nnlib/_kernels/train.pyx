# cython: language_level=3
"""The compiled training epoch: one call runs an epoch (or a piece of one) of mini-batch
training.

Design note
-----------
Three objects describe a run, each checked once when it is built so the loop can trust
every size it reads: ``Network`` (widths, activation codes and parameters),
``Workspace`` (the per-step buffers, allocated once per fit) and ``EpochSetup`` (the live
weights, biases and optimizer states, the data, the loss, L2, the optimizer config and
thread counts). ``run_epoch(setup, order, step0)`` takes a precomputed sample order (the
seeded shuffle is drawn in Python, so it is reproducible and identical to what the NumPy
twin ``nnlib._reference.train`` uses), releases the GIL (for work worth it: ``gil.pxd``)
and loops over mini-batches with no Python call and no allocation per step:

    gather batch rows (batch 1: point at the row, no copy)
    forward     H_l = g_l(H_{l-1} W_l + b_l)          dense.pxd: mm_bias_act
    loss        dH_L = d(mean loss)/dH_L               loss_rows.pxd: loss_grad_batch
    backward    dZ_l = dH_l * g_l'(H_l), db_l = sum dZ_l, dH_{l-1} = dZ_l W_l^T
                (relu below a blocked dZ_l W_l^T: dZ_{l-1}, db_{l-1} in its write-back,
                dense.pxd: mm_relu_backward)
    check       loss and every db_l finite, else stop BEFORE touching any weight
    update      dW_l = H_{l-1}^T dZ_l (+ l2 W_l); optim_update on W_l, b_l, their state

Gather. A batch of more than one dense row is copied into the workspace (``Xb``) in
visiting order; while a step runs, the next batch's rows are prefetched into L2
(``prefetch.h``), so its gather does not wait on memory row by row, when they are few
enough to stay there through the step (``PREFETCH_MAX_BYTES``). With no dropout, where
both of the first layer's products take gemm_small.h's blocked loops (``dense.pxd``'s
``rows_in_place``: AVX-512, a first layer 16+ wide, batches of at most
``NN_SMALL_GEMM_MAX_K`` rows), nothing is copied: the forward X_b W_0 and the weight
product X_b^T dZ_0 (plain SGD's fused step, or the gradient another rule steps with,
``weight_grad``) read the batch's rows of X in place through their checked numbers
(``mm_bias_act_rows``, ``mm_step_rows``), each element the same chain as on the
gathered rows.

Products. With BLAS on one thread, float64 products above ``SMALL_GEMM_MNK``
multiply-adds (a step's, and ``loss_grad``'s over all rows) go to BLAS in row blocks
under it (``mm_pieces``), which OpenBLAS runs through its small-matrix kernels instead of
packing.

Optimizer configs. Every parameter array has its own ``OptimConfig`` (``EpochSetup``'s
``optimizer``: one config for all, or one per array, as parameter groups with their own
hyper-parameters give), all of one rule ``kind``; each array's state has the slots of its
own config, and its update reads its own lr, weight decay, momentum, ... The loop updates
the layers in order, each layer's weight gradient formed just before its update (no
layer's gradient reads another layer's parameters).

Plain SGD (momentum 0) fuses the update into the weight-gradient product: one GEMM
``W <- (1 - lr (l2 + wd)) W - lr H^T dZ`` (beta = 1 - lr (l2 + wd), alpha = -lr) instead of
writing dW and reading it back; ``verify/train.py`` proves it equals the unfused rule.
Every other array goes through ``optim_update`` of ``optim_rules.pxd`` with the
gradient in a buffer; there, as in the standalone step, float32 PyTorch SGD with momentum,
Adam and AdamW run ``optim_f32.h``'s explicit loops where they are built
(``optim_rules.explicit_f32``; bitwise the generic loop's results), in one pass, in the
chunks of ``optim_update_sq`` or in ``optim_update_threads``' per-thread pieces. At
batch 1 with dense rows, no dropout and every array on plain SGD without decay on W_0,
the first layer's rank-one step and the next row's product x W_0
run in one pass over W_0 (``first_layer_step_and_product``, blas_small.h's
``nn_rank1_axpys``: each row added to the product right after its update, in increasing
order, so bitwise the unfused order); the next forward then skips its first product
(``z0_ready``), and the other layers' steps run first (they read H_0, which the pass
overwrites). It is used only when the next step runs in the same call and its row,
re-read and checked, is the one the product was formed for.

Transposed copies. With batch 1, every array on plain SGD, no weight decay and no L2
(the steps are rank-one updates), ``run_epoch`` copies W_1 .. W_{L-1} transposed
(``EpochSetup._transposed_copies``; at most ``TRANSPOSED_MAX_BYTES`` in all, none when a
weight shares memory with another parameter) and each step updates the copy as it
updates W_l (``sgd_step_transposed``: the same rounded products, so the copy stays the
transpose bitwise). The input gradient ``dZ_l W_l^T`` then reads the copy
(``input_grad_transposed``): the same dot-product chains, a column of a block of rows
one contiguous load instead of a gather from rows as short as the digits net's 10
outputs. W_l (or its padded copy, below) stays the weights the forward and the checks
read; the transposed copy ends with the call. Each row of a copy starts on a cache line
(rows ``line_padded`` apart), so its vectors never straddle two lines.

Padded copies. Under the same conditions, with dense rows, no dropout and no per-step
checks, the loop steps a copy of each W_l whose rows are not a whole number of cache
lines, rows padded to whole lines (``EpochSetup._padded_copies``: ``Wloop``, rows
``ldw[l]`` apart; at most ``PADDED_MAX_BYTES`` in all, none for tied weights). The
digits net's W_0 rows of 100 float32 are 400 bytes: three rows in four start mid-line,
and every vector of the fused first-layer pass would straddle two lines. Past batch 1,
under plain SGD without decay or L2 where the first layer reads its rows in place
(``rows_in_place``), W_0 alone gets the copy: its forward and weight step are
gemm_small.h's loops, whose results do not depend on the row stride (the other layers'
products may be BLAS's). Every operation on an element is the one it gets in W_l, so copying the rows back at the end
of the call (``epoch_loop``, before the finiteness check) gives W_l bitwise; during the
call W_l itself is a call behind (a ``save`` from another thread may see it so), and
nothing else reads it then. A call of few steps (a fit with a per-batch schedule or
batch callbacks, ``train_on_batch``) makes no copies: fewer than ``PADDED_MIN_STEPS``
past batch 1, ``PADDED_MIN_STEPS_B1`` at batch 1, where copying the weights in and back
costs more than the steps gain.

Threads. ``n_threads`` splits the large elementwise passes (bias and activation, the
loss, dropout masks, act_backward by blocks of columns) and a large batch's row gather;
each element and each column sum is formed by the same operations in the same order as
on one thread, so the result does not depend on the thread count. With ``n_threads`` 1
and BLAS on T > 1 threads (a fit's products on BLAS's threads), ``run_epoch`` gives the
gather, bias and activation and act_backward of large passes to BLAS's own T threads
instead (``pool_threads``; pass_blocks.pxd, blas_pool.h), in the same blocks: its worker
would otherwise spin idle through them, and no OpenMP team competes with it.

Non-finite values. The loss and each ``db_l = sum_rows dZ_l`` are checked after the
backward pass: NaN or inf anywhere in dZ (hence in dW = H^T dZ, H being finite) shows in
the column sums, so a bad step is refused before any parameter changes. What this
cannot see is an update that itself overflows: a finite gradient with an infinite
``w - lr g``, or one whose square overflows the optimizer state (Adagrad, RMSprop, Adam:
the weights stay finite, ``m / inf = 0``, and every later step would silently do
nothing). So the call reports whether the weights AND the states are finite at its end
(one pass over them per call, not per step). The owner of the run
(``nnlib.training.TrainingRun.rewind``) then restores its copy and replays with
``check_updates``, which scans weights and states after every step and stops at the
first step that made one non-finite (status 3): a replay is exact, the loop being
deterministic for a fixed thread count.

Dropout. ``Network(..., dropout=[(position, rate), ...])`` puts inverted dropout on the
input of layer ``position`` (0: on X, L: on the network's output), the mask of row ``i`` of
a batch at update ``t`` being the counter-based mask of ``dropout_rows.pxd`` with key
``(seed_k, offset_k + t, i)`` (``EpochSetup.set_dropout`` gives the seeds and offsets): a
pure function of the step, so an epoch cut into pieces, a replay after a rewind and the
NumPy twin all draw the same masks, for any thread count, and nothing is stored. Forward,
the dropped copy ``D_p = H_{p-1} * m / (1 - rate)`` goes into the setup's buffer for that
position and is what layer ``p`` reads (and what its ``dW`` multiplies); ``H_{p-1}``
itself stays, as the activation's derivative is taken from it. Backward, the gradient
with respect to ``D_p`` is multiplied by the same ``m / (1 - rate)`` (the Jacobian of
dropout is that diagonal) before the activation's derivative; several dropouts at one
position apply in order forward and in reverse backward. Under such a position the input
gradient is formed by its own product, never inside the layer below
(``act_backward_product``). ``loss_grad`` is the model at inference (no dropout) unless
given a training step.

L2. ``l2`` is added to the weights' gradient (not the biases'), either as given or, with
``l2_per_batch``, divided by the batch length (scikit-learn's ``alpha / n_batch``); the
reported loss includes ``l2_eff / 2 * sum ||W||^2``. That sum is formed in one fixed order
(``sum_squares_from``, penalty.h: blocks of 64 values in 16 lanes, added pairwise, which
runs at the speed the weights load where one running sum would be a chain of 3-cycle
additions, 30 000 cycles a step for a 100 x 100 layer). With the rule's update on one
thread, the update of each step returns it for the weights it wrote (``optim_update_sq``:
the same additions, each chunk of eight blocks summed right after it is updated, while it
is in L1), so
the next step does not read the weights again; after plain SGD's fused step or an update
split between threads, the next step sums them itself.

Flush-denormal mode. With ``nnlib.set_flush_denormal(True)`` (read at each call),
``run_epoch`` and ``loss_grad`` set flush-to-zero and denormals-are-zero on the calling
thread and on the OpenMP team of the loop (``fpenv.h``) just before the nogil loop and
put back each thread's own bits just after it: the loop cannot raise, so no Python code,
and no exit from the call, sees the mode. Off (the default), the loop runs in the
caller's floating-point environment, IEEE unless the caller changed it.
"""
from libc.math cimport isfinite, fabs, ceil, INFINITY
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from libc.stdint cimport int64_t, uint64_t
from cython cimport floating
from cython.parallel cimport prange

cimport numpy as cnp
from nnlib._kernels.buffers cimport check_flat_int64
import operator

import numpy as np

from nnlib._codes import CLASS_LABEL_LOSSES, LOSS_CODES
from nnlib import _denormals
from nnlib._aligned import aligned_zeros
from nnlib._kernels import blas as _blas
from nnlib._kernels.parallel import max_threads as _max_threads
from nnlib._kernels.optim import state_slots    # one definition; part of this API
from nnlib._dropout_args import (check_batch_rows, check_dropout_args,
                                 check_dropout_counters, check_network_dropout)
from nnlib._validation import (check_buffer as _check_array, check_csr, check_data,
                               check_epoch_data, check_sample_weight,
                               check_fits_dtype, check_weight_total, check_workspace_args,
                               is_sparse)

from nnlib._kernels.codes cimport (N_ACTIVATION_CODES, N_LOSS_CODES, STATUS_OK,
                                   STATUS_NONFINITE_LOSS, STATUS_NONFINITE_GRADIENT,
                                   STATUS_NONFINITE_UPDATE, STATUS_BAD_LABEL,
                                   STATUS_BAD_ORDER)
from nnlib._kernels.dense cimport (mm, mm_bias_act, mm_relu_backward, bias_act,
                                   act_backward, act_backward_product, PAR_MIN_ELEMS,
                                   rows_in_place, mm_bias_act_rows, mm_step_rows)
from nnlib._kernels.pass_blocks cimport PassJob, team_threads, row_block, run_blocks
from nnlib._kernels.dropout_rows cimport dropout_key, dropout_row
from nnlib._kernels.finite cimport all_finite_ptr
from nnlib._kernels.fpenv cimport (nnlib_flush_supported, nnlib_csr_get,
                                   nnlib_flush_enter, nnlib_flush_exit, nnlib_team_csr)
from nnlib._kernels.gil cimport keeps_gil, product_values, STEP_VALUES, ROW_VALUES
from nnlib._kernels.paths cimport (TRANSPOSED_MAX_BYTES, PADDED_MAX_BYTES,
                                   PADDED_MIN_STEPS, PADDED_MIN_STEPS_B1, NARROW_K)

cdef extern from "blas_small.h" nogil:
    # the first layer's batch-1 step fused with the next row's product (see epoch_loop)
    const Py_ssize_t NN_FUSED_MAX_COLS_F, NN_FUSED_MAX_COLS_D
    void nn_rank1_axpys_f(Py_ssize_t m, Py_ssize_t n, float alpha, const float* a,
                          const float* b, float* W, Py_ssize_t ldw, const float* x,
                          float* c)
    void nn_rank1_axpys_d(Py_ssize_t m, Py_ssize_t n, double alpha, const double* a,
                          const double* b, double* W, Py_ssize_t ldw, const double* x,
                          double* c)
    # the batch-1 input gradient and weight step on a transposed copy (see epoch_loop)
    void nn_col_dots_f(Py_ssize_t k, Py_ssize_t n, float alpha, const float* a,
                       const float* BT, Py_ssize_t ldb, float* c)
    void nn_col_dots_d(Py_ssize_t k, Py_ssize_t n, double alpha, const double* a,
                       const double* BT, Py_ssize_t ldb, double* c)
    void nn_rank1_t_f(Py_ssize_t m, Py_ssize_t n, float alpha, const float* a,
                      const float* b, float* CT, Py_ssize_t ldc)
    void nn_rank1_t_d(Py_ssize_t m, Py_ssize_t n, double alpha, const double* a,
                      const double* b, double* CT, Py_ssize_t ldc)
from nnlib._kernels.loss_rows cimport loss_grad_batch, weighted_loss_grad_batch
from nnlib._kernels.optim_config cimport config_from_dict
from nnlib._optim_args import per_array_configs
from nnlib._kernels.sparse_rows cimport CsrRows, csr_rows_matmul, csr_rows_t_matmul
from nnlib._kernels.optim_rules cimport (OptimConfig, optim_update, optim_update_threads,
                                        optim_update_sq, optim_state_slots,
                                        sum_squares_from, OPT_SGD, OPT_ADAMW,
                                        OPT_SKLEARN_SGD, OPT_NOTES_MOMENTUM, NN_SGD_F32,
                                        NN_ADAM_F32, nn_explicit_f32_updates,
                                        nn_explicit_f32_on, nn_set_explicit_f32)

cdef extern from "penalty.h" nogil:
    # a step's reported loss and the epoch's running sum (see epoch_loop)
    double nn_penalized(double loss, double half_l2, double pen)
    double nn_add_weighted(double total, double loss, double weight)
cdef extern from "prefetch.h" nogil:
    # the next batch's rows of X into L2 while this step runs (see epoch_loop)
    void nn_prefetch_rows(const char* X, Py_ssize_t row_bytes, const long long* order,
                          Py_ssize_t count, long long N)
    # a gathered row's copy, inline (a libc call per short row costs more than its copy)
    void nn_copy_row(char* dst, const char* src, Py_ssize_t bytes)


cnp.import_array()

__all__ = ["Network", "Workspace", "EpochSetup", "run_epoch", "loss_grad", "state_slots",
           "all_finite", "first_label_outside"]


_MAX_THREADS = max(_max_threads(), 1)


def _flush_supported():
    """Whether this CPU has the flush-denormal mode (``nnlib.set_flush_denormal``)."""
    return bool(nnlib_flush_supported())


def _csr():
    """This thread's MXCSR (0 where there is none): for tests of the mode's restore."""
    return nnlib_csr_get()


def _team_csr(int n):
    """The MXCSR of each thread of an OpenMP team of ``n`` (first: this thread's), as the
    epoch's parallel loops get that team: for tests that the workers are put back too."""
    if not 1 <= n <= 1024:
        raise ValueError(f"n must be in [1, 1024]; got {n}")
    out = np.zeros(n, np.uintc)
    cdef unsigned int[::1] o = out
    with nogil:
        nnlib_team_csr(n, &o[0])
    return [int(v) for v in out]


cdef inline int flush_team(EpochC* c) noexcept nogil:
    """The team size the flush mode is set on: every thread the epoch's loops use."""
    return c.n_threads if c.n_threads > c.update_threads else c.update_threads

# The losses that read class labels, by code (nnlib/_codes.py holds the codes).
cdef tuple LABEL_LOSS_KINDS = tuple(LOSS_CODES[name] for name in CLASS_LABEL_LOSSES)


cdef struct NetShape:
    int n_layers
    Py_ssize_t* sizes       # n_layers + 1 widths: sizes[0] = inputs, sizes[l+1] = outputs
    int* kinds              # activation codes
    double* aparams         # activation parameters


cdef struct DropC:
    # the dropouts of a network, in order of position (what the loop reads)
    int n                   # how many (0: none)
    int* first              # L + 1 entries: index of the first dropout at each position
    int* count              # L + 1 entries: how many at each position
    double* rate            # n rates in [0, 1)
    uint64_t* thr           # n thresholds ceil(rate * 2**53)
    uint64_t* seed          # n seeds (EpochSetup.set_dropout)
    uint64_t* offset        # n counter offsets: the mask of update t has counter offset + t
    const long long* rows   # mask row of each batch row (loss_grad's batch_rows); NULL: i
    void** D                # L + 1 buffers (rows, sizes[p]) of the dropped values, or NULL


cdef inline bint dropped_at(const DropC* dr, int p) noexcept nogil:
    return dr != NULL and dr.count[p] > 0


cdef void apply_dropouts(const DropC* dr, int p, bint reverse, const floating* src,
                         floating* dst, Py_ssize_t B, Py_ssize_t c, uint64_t t,
                         int n_threads) noexcept nogil:
    """dst = src * m_k / (1 - rate_k) for each dropout k at position p (in order, or in
    reverse order for the backward pass); row i of the batch is row i of each mask, or
    row ``dr.rows[i]`` (part of a batch: its rows' own masks)."""
    cdef int q, k, cnt = dr.count[p]
    cdef Py_ssize_t i
    cdef const long long* rows = dr.rows
    cdef floating scale
    cdef uint64_t thr, seed, ctr
    cdef int nt = n_threads if B * c >= PAR_MIN_ELEMS else 1
    for q in range(cnt):
        k = dr.first[p] + (cnt - 1 - q if reverse else q)
        scale = <floating>(1.0 / (1.0 - dr.rate[k]))
        thr, seed, ctr = dr.thr[k], dr.seed[k], dr.offset[k] + t
        if nt > 1:
            for i in prange(B, schedule='static', num_threads=nt):
                dropout_row(src + i * c, c, dropout_key(
                    seed, ctr, <uint64_t>(rows[i] if rows != NULL else i)), thr, scale,
                    dst + i * c)
        else:
            for i in range(B):
                dropout_row(src + i * c, c, dropout_key(
                    seed, ctr, <uint64_t>(rows[i] if rows != NULL else i)), thr, scale,
                    dst + i * c)
        src = dst


cdef inline const floating* layer_input(const DropC* dr, int l, const floating* X0,
                                        floating** H) noexcept nogil:
    """What layer l reads: the dropped copy when a dropout sits at its input."""
    if dropped_at(dr, l):
        return <const floating*>dr.D[l]
    return X0 if l == 0 else H[l - 1]


cdef bint params_finite(NetShape* net, floating** W, floating** b) noexcept nogil:
    cdef int l
    cdef Py_ssize_t* s = net.sizes
    for l in range(net.n_layers):
        if not (all_finite_ptr(W[l], s[l] * s[l + 1]) and all_finite_ptr(b[l], s[l + 1])):
            return False
    return True


cdef bint states_finite(NetShape* net, floating** st, const int* slots) noexcept nogil:
    """Every optimizer state (``slots[i]`` x size for array i of W_1, b_1, W_2, ...; NULL
    when there is none) finite.
    Squared gradients can overflow there while the weights stay finite (Adam's update is
    then m / inf = 0: a silently skipped step), so the weights alone do not tell."""
    cdef int l
    cdef Py_ssize_t* s = net.sizes
    for l in range(net.n_layers):
        if st[2 * l] != NULL and not all_finite_ptr(st[2 * l],
                                                    slots[2 * l] * s[l] * s[l + 1]):
            return False
        if st[2 * l + 1] != NULL and not all_finite_ptr(st[2 * l + 1],
                                                        slots[2 * l + 1] * s[l + 1]):
            return False
    return True


def all_finite(const floating[:, ::1] X):
    """True when the 2-d array X holds no NaN or +-inf: ``np.isfinite(X).all()``
    without the boolean temporary (fit's validation of X runs it on every call)."""
    cdef bint ok = True
    cdef Py_ssize_t n = X.shape[0] * X.shape[1]
    if n == 0:
        return True
    cdef const floating* a = &X[0, 0]
    if keeps_gil(n):
        return all_finite_ptr(a, n)
    with nogil:
        ok = all_finite_ptr(a, n)
    return ok


def first_label_outside(cnp.ndarray y not None, int64_t n_classes):
    """Index of the first label of ``y`` outside ``[0, n_classes)``, or -1: fit's label
    check of int64 labels without NumPy's two comparisons, their ``|`` and ``any`` (each a
    boolean temporary). For ``n_classes <= 0`` the range is empty: every label is outside.
    ``y``: a 1-d C-contiguous, aligned int64 array in native byte order, read through its
    data pointer (a typed memoryview costs ~1 us a call, the batch-1 loss's label check)."""
    check_flat_int64(y, "y", "first_label_outside")
    if cnp.PyArray_NDIM(y) != 1:
        raise ValueError(f"first_label_outside: y must be 1-d; got shape "
                         f"{(<object>y).shape}")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(y), first = -1
    cdef const int64_t* p = <const int64_t*>cnp.PyArray_DATA(y)
    if n_classes <= 0:
        return 0 if n else -1
    if n == 0:
        return -1
    if keeps_gil(n):
        return _first_outside(p, n, n_classes)
    with nogil:
        first = _first_outside(p, n, n_classes)
    return first


cdef Py_ssize_t _first_outside(const int64_t* y, Py_ssize_t n,
                               int64_t n_classes) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if <uint64_t>y[i] >= <uint64_t>n_classes:  # negatives wrap above n_classes
            return i
    return -1


cdef inline bint by_product(Py_ssize_t B, Py_ssize_t k, Py_ssize_t c) noexcept nogil:
    """Whether the input gradient (B, c) of a layer k wide is formed inside the backward
    pass below it: for a narrow layer, and only where ``mm`` would call BLAS's GEMM
    kernels (not its own loops for one row or k == 1, nor a product with one column,
    which BLAS hands to its matrix-vector kernels: both add in other orders), whose
    SkylakeX kernels add in the order this path does (with other BLAS kernels the two
    paths differ by roundings). Used in
    float64 only: in float32 the digits net at batch 32 (100 -> 10) measured slower this
    way than through sgemm's small-matrix kernel."""
    return B > 1 and c > 1 and 1 < k <= NARROW_K


# OpenBLAS's small-matrix GEMM kernels (SkylakeX and later, double) take a product of
# at most 100^3 multiply-adds without packing its operands; above that it packs both and
# zeroes C first. ``mm_pieces`` cuts a larger product of a training step into row blocks
# under this size: a 200 x 100 x 100 product (the forward and the weight gradient of a
# 100-wide layer at batch 200) measured a quarter faster as two halves, one thread.
cdef enum:
    SMALL_GEMM_MNK = 1000000


# The next batch is prefetched (``nn_prefetch_rows``) only when its rows take at most
# this many bytes: a larger batch does not stay in L2 through the step's own products
# (the 784-512-512-10 net's weights alone are 2.7 MB), so the gather reads it from memory
# again and the prefetch only stalls the loop, on the calling thread (serial on two
# threads). Batches of 200 rows of 100 doubles (160 KB) gain (prefetch.h).
cdef enum:
    PREFETCH_MAX_BYTES = 1 << 18


cdef inline void mm_pieces(bint trans_a, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           double alpha, const floating* A, Py_ssize_t lda,
                           const floating* B, Py_ssize_t ldb, double beta, floating* C,
                           Py_ssize_t ldc, bint pieces) noexcept nogil:
    """``mm(trans_a, False, ...)``; with ``pieces`` (float64, BLAS on one thread), as
    blocks of at least 2 rows of C (rows of op(A)) of at most SMALL_GEMM_MNK
    multiply-adds each, in even sizes. Rows of C are independent, so each element is
    the product's; it may differ in the last bit from the unpacked call, whose kernels
    add in another order."""
    cdef Py_ssize_t count, rows, r0 = 0, r1
    if not (floating is double and pieces) or m * n * k <= SMALL_GEMM_MNK:
        mm(trans_a, False, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    rows = SMALL_GEMM_MNK // (n * k)
    if rows < 2:
        mm(trans_a, False, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    count = (m + rows - 1) // rows
    rows = (m + count - 1) // count         # even blocks; each >= 2 rows as m >= 2 count
    while r0 < m:
        r1 = min(r0 + rows, m)
        mm(trans_a, False, r1 - r0, n, k, alpha, A + (r0 if trans_a else r0 * lda), lda,
           B, ldb, beta, C + r0 * ldc, ldc)
        r0 = r1


cdef int forward_backward(NetShape* net, floating** W, floating** b,
                          const floating* X0, Py_ssize_t B, floating** H, floating** dZ,
                          floating** db, floating** scratch, double* work, int loss_kind,
                          const floating* yt, const long long* yl, double margin,
                          floating* lwork, int n_threads, int pool, double* loss_out,
                          bint full, bint backward, const floating* sw,
                          double sw_sum, const CsrRows* xs, bint pieces, const DropC* dr,
                          uint64_t t, bint z0_ready, floating** WT,
                          const Py_ssize_t* ldw, const long long* xrows) noexcept nogil:
    """Forward, loss (mean over the B rows) and backward up to every dZ_l and db_l.

    With row weights ``sw`` (NULL: none) the loss is their weighted mean,
    ``sum_i sw_i L_i / sw_sum`` (``sw_sum = sum_i sw_i``), as scikit-learn's MLP.
    With sparse rows ``xs`` (NULL: dense ``X0``) the first layer reads them.
    With dropouts ``dr`` (NULL: none, the model at inference) the masks of update ``t``
    apply (see the design note). With ``z0_ready`` H[0] holds X0 W[0] already (formed by
    the previous step's update, ``first_layer_step_and_product``). With ``WT`` (NULL:
    none) and one row, ``WT[l]`` (l >= 1) holds W_l transposed, bitwise, and the input
    gradient reads it (``input_grad_transposed``). ``W[l]``'s rows are ``ldw[l]`` apart
    (``sizes[l + 1]``, or a padded copy's stride: see epoch_loop). With ``xrows`` (NULL:
    none) the batch is X0's rows ``xrows[0:B]``, read in place by the first product
    (``mm_bias_act_rows``; only where ``rows_in_place`` holds, and no dropout).

    Returns a STATUS_* code and ``loss_out`` holds the mean loss (no L2). With a
    non-finite loss nothing else is computed unless ``full``; with a non-finite gradient
    the backward pass still completes (so loss_grad can return what it found).
    With ``pool`` > 1 (``n_threads`` 1, BLAS on that many threads) the large passes
    around BLAS's products, bias and activation and the activation's backward, run on
    BLAS's threads (``pass_blocks.pxd``), bit for bit as on one.
    ``scratch[l]`` holds ``sizes[l] * sizes[l+1]`` elements it may overwrite (the weight
    gradients, written after it): under a layer at most ``NARROW_K`` wide, the input
    gradient is formed inside the backward pass of the layer below
    (``act_backward_product``)."""
    cdef int L = net.n_layers, l, status = STATUS_OK
    cdef int formed = -1        # the layer whose dZ and sums mm_relu_backward formed
    cdef Py_ssize_t* s = net.sizes
    cdef Py_ssize_t j
    cdef const floating* inp = X0
    cdef double loss
    cdef floating** D = <floating**>dr.D if dr != NULL else NULL
    if dropped_at(dr, 0):       # (sparse X with input dropout is refused by the setup)
        apply_dropouts(dr, 0, False, X0, D[0], B, s[0], t, n_threads)
        inp = D[0]
    for l in range(L):
        if l == 0 and z0_ready:
            bias_act(H[l], b[l], B, s[l + 1], net.kinds[l], net.aparams[l], n_threads,
                     pool)
        elif l == 0 and xs != NULL:
            csr_rows_matmul(xs, B, W[0], s[1], H[0])
            bias_act(H[l], b[l], B, s[l + 1], net.kinds[l], net.aparams[l], n_threads,
                     pool)
        elif l == 0 and xrows != NULL:
            mm_bias_act_rows(B, s[1], s[0], X0, xrows, W[0], ldw[0], H[0], b[0],
                             net.kinds[0])
        elif floating is float or not pieces or B * s[l + 1] * s[l] <= SMALL_GEMM_MNK:
            # (the product whole, as mm_pieces would run it) with the bias and the
            # activation in its write-back where it can (mm_bias_act)
            mm_bias_act(B, s[l + 1], s[l], inp, s[l], W[l], ldw[l], H[l], b[l],
                        net.kinds[l], net.aparams[l], n_threads, pool)
        else:
            mm_pieces(False, B, s[l + 1], s[l], 1.0, inp, s[l], W[l],
                      ldw[l], 0.0, H[l], s[l + 1], pieces)
            bias_act(H[l], b[l], B, s[l + 1], net.kinds[l], net.aparams[l], n_threads,
                     pool)
        inp = H[l]
        if dropped_at(dr, l + 1):
            apply_dropouts(dr, l + 1, False, H[l], D[l + 1], B, s[l + 1], t, n_threads)
            inp = D[l + 1]
    # d(mean loss)/d(output) lands in dZ[L-1]; act_backward then turns it into dZ in place
    if sw == NULL:
        loss = loss_grad_batch(loss_kind, inp, yt, yl, B, s[L], 1.0 / B, margin,
                               dZ[L - 1], lwork) / B
    else:
        loss = weighted_loss_grad_batch(loss_kind, inp, yt, yl, sw, B, s[L],
                                        1.0 / sw_sum, margin, dZ[L - 1], lwork) / sw_sum
    loss_out[0] = loss
    if not isfinite(loss):
        if not full:
            return STATUS_NONFINITE_LOSS
        status = STATUS_NONFINITE_LOSS
    if not backward:
        return status
    for l in range(L - 1, -1, -1):
        if dropped_at(dr, l + 1):   # dZ[l] holds d/dD_{l+1}: through the masks to d/dH_l
            apply_dropouts(dr, l + 1, True, dZ[l], dZ[l], B, s[l + 1], t, n_threads)
        if l == formed:             # dZ[l] and its column sums, by the product above
            for j in range(s[l + 1]):
                db[l][j] = <floating>work[j]
        elif (floating is double and l < L - 1 and not dropped_at(dr, l + 1)
                and by_product(B, s[l + 2], s[l + 1])):     # dH_l = dZ_{l+1} W_{l+1}^T, here
            act_backward_product(H[l], dZ[l + 1], W[l + 1], scratch[l + 1], dZ[l], db[l],
                                 work, B, s[l + 1], s[l + 2], net.kinds[l],
                                 net.aparams[l])
        else:
            act_backward(H[l], dZ[l], dZ[l], db[l], work, B, s[l + 1], net.kinds[l],
                         net.aparams[l], n_threads, pool)
        if status == STATUS_OK and not all_finite_ptr(db[l], s[l + 1]):
            status = STATUS_NONFINITE_GRADIENT
        if l > 0 and (dropped_at(dr, l) or not (floating is double
                                                 and by_product(B, s[l + 1], s[l]))):
            # dH_{l-1} = dZ_l W_l^T, written where dZ_{l-1} will be formed
            if WT != NULL and B == 1:
                input_grad_transposed(s[l], s[l + 1], dZ[l], WT[l],
                                      line_padded(s[l], sizeof(floating)), dZ[l - 1])
            elif not dropped_at(dr, l) and mm_relu_backward(
                    B, s[l], s[l + 1], dZ[l], W[l], ldw[l], H[l - 1], dZ[l - 1], work,
                    net.kinds[l - 1], n_threads):
                formed = l - 1      # dZ_{l-1} itself, relu's backward in the write-back
            else:
                mm(False, True, B, s[l], s[l + 1], 1.0, dZ[l], s[l + 1], W[l], ldw[l],
                   0.0, dZ[l - 1], s[l])
    return status


cdef inline Py_ssize_t line_padded(Py_ssize_t k, Py_ssize_t itemsize) noexcept nogil:
    """k rounded up to whole 64-byte lines of ``itemsize``-byte elements: the row stride
    of a transposed copy, so that each of its rows starts on a line (its buffer does)."""
    cdef Py_ssize_t per = 64 // itemsize
    return (k + per - 1) // per * per


cdef inline void input_grad_transposed(Py_ssize_t k, Py_ssize_t c, const floating* dz,
                                       const floating* WT, Py_ssize_t ldt,
                                       floating* dh) noexcept nogil:
    """dh = dz W^T for one row (W (k, c), given as WT (c, k) with rows ``ldt`` apart):
    bitwise ``mm``'s one-row product (``small_gemm``: dh zeroed, then ``nn_row_dots``),
    each dot product the same chains, with a column of a block of rows one contiguous
    load instead of a gather."""
    cdef Py_ssize_t j
    for j in range(k):
        dh[j] = 0
    if floating is float:
        nn_col_dots_f(c, k, <float>1.0, dz, WT, ldt, dh)
    else:
        nn_col_dots_d(c, k, 1.0, dz, WT, ldt, dh)


cdef inline void sgd_step_transposed(Py_ssize_t k, Py_ssize_t c, double lr,
                                     const floating* x, const floating* dz,
                                     floating* WT, Py_ssize_t ldt) noexcept nogil:
    """The batch-1 plain SGD step W <- W - lr x^T dz (no decay) on the transposed copy
    WT (c, k), rows ``ldt`` apart, of W (k, c): bitwise ``sgd_fused_W``'s rank-one update
    (``nn_rank1``) of W, so the copy stays its transpose."""
    if floating is float:
        nn_rank1_t_f(k, c, <float>-lr, x, dz, WT, ldt)
    else:
        nn_rank1_t_d(k, c, -lr, x, dz, WT, ldt)


cdef void copy_rows(const floating* A, Py_ssize_t lda, floating* C, Py_ssize_t ldc,
                    Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """C[i, :n] = A[i, :n] for the m rows, ``lda`` and ``ldc`` apart."""
    cdef Py_ssize_t i
    for i in range(m):
        memcpy(C + i * ldc, A + i * lda, n * sizeof(floating))


cdef void transpose_into(const floating* A, Py_ssize_t k, Py_ssize_t c,
                         floating* AT, Py_ssize_t ldt) noexcept nogil:
    """AT (c, k), rows ``ldt`` apart, = A (k, c) transposed."""
    cdef Py_ssize_t i, j
    for i in range(k):
        for j in range(c):
            AT[j * ldt + i] = A[i * c + j]


cdef void weight_grads(NetShape* net, floating** W, const floating* X0, Py_ssize_t B,
                       floating** H, floating** dZ, floating** dW,
                       double l2_eff, const CsrRows* xs, bint pieces,
                       const DropC* dr) noexcept nogil:
    """dW_l = H_{l-1}^T dZ_l + l2_eff W_l for every layer (``weight_grad``)."""
    cdef int l
    for l in range(net.n_layers):
        weight_grad(net, l, W, X0, B, H, dZ, dW, l2_eff, xs, pieces, dr, NULL)


cdef inline void weight_grad(NetShape* net, int l, floating** W, const floating* X0,
                             Py_ssize_t B, floating** H, floating** dZ, floating** dW,
                             double l2_eff, const CsrRows* xs, bint pieces,
                             const DropC* dr, const long long* xrows) noexcept nogil:
    """dW_l = H_{l-1}^T dZ_l + l2_eff W_l (H_{-1} = X0, or the sparse rows ``xs``, or
    X0's rows ``xrows[0:B]`` read in place where ``rows_in_place`` holds: the same chains
    as the gathered rows' product; the dropped copy where a dropout of ``dr`` sits at the
    layer's input)."""
    cdef Py_ssize_t i, n
    cdef Py_ssize_t* s = net.sizes
    cdef const floating* inp = layer_input(dr, l, X0, H)
    if l == 0 and xs != NULL:
        csr_rows_t_matmul(xs, B, dZ[0], s[0], s[1], 1.0, 0.0, dW[0])
    elif l == 0 and xrows != NULL:
        mm_step_rows(s[0], s[1], B, 1.0, X0, xrows, dZ[0], 0.0, dW[0], s[1])
    else:
        mm_pieces(True, s[l], s[l + 1], B, 1.0, inp, s[l], dZ[l], s[l + 1], 0.0,
                  dW[l], s[l + 1], pieces)
    if l2_eff != 0.0:
        # formed in double and rounded once, as the twin (_with_l2) and the rules' own
        # weight decay do: in float32, l2 rounded to float (inf beyond FLT_MAX) times W
        # overflowed where the double sum is finite (l2 3e38, |W| 2)
        n = s[l] * s[l + 1]
        for i in range(n):
            dW[l][i] = <floating>(dW[l][i] + l2_eff * W[l][i])


cdef inline bint plain_sgd(const OptimConfig* oc) noexcept nogil:
    """The rule is SGD without momentum: no state, the update fused (``sgd_fused_W``)."""
    return oc.kind == OPT_SGD and oc.momentum == 0.0


cdef void sgd_fused_update(NetShape* net, floating** W, floating** b, const floating* X0,
                           Py_ssize_t B, floating** H, floating** dZ, int first,
                           floating** db,
                           const OptimConfig* oc, double l2_eff, const CsrRows* xs,
                           const DropC* dr, const Py_ssize_t* ldw,
                           const long long* xrows) noexcept nogil:
    """Every array plain SGD, each by its own config (``oc[2 l]`` for W_l, ``oc[2 l + 1]``
    for b_l): W <- (1 - lr (l2_eff + wd)) W - lr H^T dZ ; b <- (1 - lr wd) b - lr db.
    The whole update of a step of plain SGD in one call, apart from the per-layer loop
    of mixed configs: there gcc inlines the batch-1 products less tightly. The weights
    of the layers before ``first`` are left to the caller; ``W[l]``'s rows are
    ``ldw[l]`` apart; ``xrows``: as in forward_backward."""
    cdef int l
    for l in range(net.n_layers):
        if l >= first:
            sgd_fused_W(net, l, W, X0, B, H, dZ, oc[2 * l].lr,
                        l2_eff + oc[2 * l].weight_decay, xs, dr,
                        ldw[l], xrows)
        sgd_fused_b(b[l], db[l], net.sizes[l + 1], oc[2 * l + 1].lr,
                    oc[2 * l + 1].weight_decay)


cdef inline void sgd_fused_W(NetShape* net, int l, floating** W, const floating* X0,
                             Py_ssize_t B, floating** H, floating** dZ, double lr,
                             double decay, const CsrRows* xs, const DropC* dr,
                             Py_ssize_t ldw, const long long* xrows) noexcept nogil:
    """Plain SGD of layer l's weights, rows ``ldw`` apart: W <- (1 - lr decay) W -
    lr H^T dZ (sparse rows: ``ldw`` is the width; ``xrows``: the first layer's batch is
    X0's rows xrows[0:B], read in place, as in forward_backward)."""
    cdef Py_ssize_t* s = net.sizes
    cdef const floating* inp = layer_input(dr, l, X0, H)
    if l == 0 and xs != NULL:
        csr_rows_t_matmul(xs, B, dZ[0], s[0], s[1], -lr, 1.0 - lr * decay, W[0])
    elif l == 0 and xrows != NULL:
        mm_step_rows(s[0], s[1], B, -lr, X0, xrows, dZ[0], 1.0 - lr * decay, W[0], ldw)
    else:
        mm(True, False, s[l], s[l + 1], B, -lr, inp, s[l], dZ[l], s[l + 1],
           1.0 - lr * decay, W[l], ldw)


cdef inline void first_layer_step_and_product(NetShape* net, floating* W0,
                                             Py_ssize_t ldw, const floating* x,
                                             const floating* dz, double lr,
                                             const floating* x_next,
                                             floating* z_next) noexcept nogil:
    """Batch-1 plain SGD of the first layer's weights, W0 <- W0 - lr x^T dz (no decay),
    and the next row's product z_next = x_next W0 with the new weights, in one pass over
    W0 (rows ``ldw`` apart; ``nn_rank1_axpys``): bitwise the rank-one update of
    ``sgd_fused_W`` and the forward product of ``forward_backward``."""
    if floating is float:
        nn_rank1_axpys_f(net.sizes[0], net.sizes[1], <float>-lr, x, dz, W0, ldw, x_next,
                         z_next)
    else:
        nn_rank1_axpys_d(net.sizes[0], net.sizes[1], -lr, x, dz, W0, ldw, x_next, z_next)


cdef inline void sgd_fused_b(floating* b, const floating* db, Py_ssize_t n, double lr,
                             double decay) noexcept nogil:
    """Plain SGD of a bias: b <- (1 - lr decay) b - lr db."""
    cdef Py_ssize_t j
    cdef floating beta_b = <floating>(1.0 - lr * decay), flr = <floating>lr
    if decay == 0.0:
        for j in range(n):
            b[j] = b[j] - flr * db[j]
    else:
        for j in range(n):
            b[j] = beta_b * b[j] - flr * db[j]


# run_epoch's copies of the weights (the batch-1 transposed copies; the padded copy of
# W_0, at batch 1 and where the first layer reads its rows in place), each kind on or
# off: the tests compare the paths with and without them
_COPIES = {"transposed": True, "padded": True}


def _set_copies(kind, bint enabled):
    """Turn the batch-1 ``"transposed"`` copies or the ``"padded"`` copy of W_0 on or
    off (tests); returns the previous setting."""
    previous = _COPIES[kind]
    _COPIES[kind] = enabled
    return previous


cdef Py_ssize_t _prefetch_max = PREFETCH_MAX_BYTES
cdef bint _rows_in_place = True
cdef double _padded_min_steps = PADDED_MIN_STEPS
cdef double _padded_min_steps_b1 = PADDED_MIN_STEPS_B1


def _set_rows_in_place(bint enabled):
    """Test hook: let the first layer read the batch's rows of X in place where
    ``rows_in_place`` holds (True, the default), or gather them always (False); returns
    the previous setting. Either way the same values."""
    global _rows_in_place
    previous = _rows_in_place
    _rows_in_place = enabled
    return previous


def _set_padded_min_steps(double steps, double steps_b1):
    """Test hook: the fewest steps a call runs for the padded copies to be made past
    batch 1 and at batch 1 (``PADDED_MIN_STEPS``, ``PADDED_MIN_STEPS_B1``); returns the
    previous pair. The copies change no value."""
    global _padded_min_steps, _padded_min_steps_b1
    previous = (_padded_min_steps, _padded_min_steps_b1)
    _padded_min_steps, _padded_min_steps_b1 = steps, steps_b1
    return previous


def _set_prefetch_max(Py_ssize_t n):
    """Test hook: the largest batch (in bytes of X's rows) whose next batch is
    prefetched (``PREFETCH_MAX_BYTES``; -1: never, a huge value: always); returns the
    previous value. A prefetch changes no value."""
    global _prefetch_max
    previous = _prefetch_max
    _prefetch_max = n
    return previous


def _explicit_f32(on=None):
    """Test hook on the float32 updates of this module (the epoch's) that
    ``optim_rules.explicit_f32`` sends to ``optim_f32.h``'s loops: returns ``(sgd, adam,
    count, on)``, whether the SGD and the Adam loop are built, how many updates went to
    them so far and whether they may (before ``on``, if given, sets it: False sends
    every update to the generic loop, for a bitwise comparison)."""
    out = (bool(NN_SGD_F32), bool(NN_ADAM_F32), nn_explicit_f32_updates,
           bool(nn_explicit_f32_on))
    if on is not None:
        nn_set_explicit_f32(1 if on else 0)
    return out


cdef class _Pointers:
    """Raw data pointers of a fixed tuple of same-dtype arrays (None gives NULL), kept
    alive while in use. Read with the NumPy C API: ``a.ctypes.data`` builds a ctypes
    helper per array (~1.5 us each)."""
    cdef void** p
    cdef readonly tuple arrays

    def __cinit__(self, arrays):
        cdef Py_ssize_t i, n
        cdef cnp.ndarray a
        self.arrays = tuple(arrays)
        n = len(self.arrays)
        self.p = <void**>malloc(max(n, 1) * sizeof(void*))
        if self.p == NULL:
            raise MemoryError()
        for i in range(n):
            if self.arrays[i] is None:
                self.p[i] = NULL
                continue
            a = self.arrays[i]
            self.p[i] = NULL if cnp.PyArray_SIZE(a) == 0 else cnp.PyArray_DATA(a)

    def __dealloc__(self):
        free(self.p)


# The docstrings of Network and Workspace open with their signature in CPython's
# text-signature form (``Name(...)``, then ``--``): inspect.signature and help() read it
# there, as they cannot see a __cinit__ (tests/test_twins.py compares it with the twin's).
cdef class Network:
    """Network(sizes, kinds, aparams, dropout=())
--

    Layer widths, activations and dropouts of a dense network, as the compiled loop reads
    them.

    Parameters
    ----------
    sizes : sequence of int, length L + 1
        ``[n_in, n_1, ..., n_L]``, each >= 1.
    kinds : sequence of int, length L
        Activation codes (``nnlib._codes.ACTIVATION_CODES``).
    aparams : sequence of float, length L
        Each layer's activation parameter (leaky_relu's slope, elu's alpha; else unused).
    dropout : sequence of (position, rate) pairs
        Inverted dropout in training on the input of layer ``position`` (0: on X; L: on
        the output), ``rate`` in [0, 1); positions non-decreasing, several at one
        position apply in order (``nnlib._dropout_args.check_network_dropout``).

    Examples
    --------
    >>> net = Network([2, 4, 3], [2, 0], [0.0, 0.0])     # 2-4-3, tanh then identity
    >>> net.n_layers, net.sizes
    (2, (2, 4, 3))
    >>> Network([2, 4, 3], [2, 0], [0.0, 0.0], dropout=[(1, 0.5)]).dropout
    ((1, 0.5),)
    """
    cdef NetShape shape
    cdef object _keep
    cdef readonly tuple sizes, kinds, aparams, dropout
    cdef object _drop_keep      # first, count, rate, threshold arrays (DropC points in)

    def __cinit__(self, sizes, kinds, aparams, dropout=()):
        sz = np.array(sizes, dtype=np.intp).reshape(-1)
        kd = np.array(kinds, dtype=np.intc).reshape(-1)
        ap = np.array(aparams, dtype=np.float64).reshape(-1)
        if len(kd) < 1 or len(sz) != len(kd) + 1 or len(ap) != len(kd):
            raise ValueError(f"a network of L layers needs L + 1 sizes, L kinds and L "
                             f"parameters; got {len(sz)}, {len(kd)}, {len(ap)}")
        if (sz < 1).any():
            raise ValueError(f"layer sizes must be >= 1; got {sz.tolist()}")
        if ((kd < 0) | (kd >= N_ACTIVATION_CODES)).any():
            raise ValueError(f"unknown activation code in {kd.tolist()}")
        if not np.isfinite(ap).all():
            raise ValueError(f"activation parameters must be finite; got {ap.tolist()}")
        self._keep = (sz, kd, ap)
        self.sizes = tuple(int(v) for v in sz)
        self.kinds = tuple(int(v) for v in kd)
        self.aparams = tuple(float(v) for v in ap)
        self.shape.n_layers = len(kd)
        self.shape.sizes = <Py_ssize_t*>cnp.PyArray_DATA(sz)
        self.shape.kinds = <int*>cnp.PyArray_DATA(kd)
        self.shape.aparams = <double*>cnp.PyArray_DATA(ap)
        pairs, first, count, thr = check_network_dropout(dropout, len(kd))
        self.dropout = pairs
        self._drop_keep = (np.array(first, np.intc), np.array(count, np.intc),
                           np.array([r for _, r in pairs] or [0.0], np.float64),
                           np.array(thr or [0], np.uint64))

    cdef void _bind_dropout(self, DropC* dr):
        """Point ``dr`` at this network's dropout arrays (seeds, offsets and buffers are
        the setup's)."""
        first, count, rate, thr = self._drop_keep
        dr.n = len(self.dropout)
        dr.first = <int*>cnp.PyArray_DATA(first)
        dr.count = <int*>cnp.PyArray_DATA(count)
        dr.rate = <double*>cnp.PyArray_DATA(rate)
        dr.thr = <uint64_t*>cnp.PyArray_DATA(thr)
        dr.rows = NULL

    @property
    def n_layers(self):
        return self.shape.n_layers

    def __reduce__(self):
        return (Network, (self.sizes, self.kinds, self.aparams, self.dropout))

    def __repr__(self):
        return (f"Network(sizes={list(self.sizes)}, kinds={list(self.kinds)}"
                + (f", dropout={list(self.dropout)})" if self.dropout else ")"))


cdef class Workspace:
    """Workspace(sizes, rows, n_target_cols, dtype)
--

    The buffers one training step writes, for batches of up to ``rows`` rows.

    Parameters
    ----------
    sizes : sequence of int
        The network's widths (``Network.sizes``).
    rows : int >= 1
        The largest batch (``min(batch_size, n_samples)``; all rows for ``loss_grad``).
    n_target_cols : int >= 0
        Width of the float targets (0 for class-label losses).
    dtype : float32 or float64

    Attributes
    ----------
    H, dZ : tuple of (rows, sizes[l+1]) arrays
        Each layer's output and its gradient; the last forward's output is
        ``H[-1][:B]``.
    db, dW : tuple of (sizes[l+1],) and (sizes[l], sizes[l+1]) arrays
    """
    cdef readonly tuple sizes, H, dZ, db, dW
    cdef readonly Py_ssize_t rows, n_target_cols
    cdef readonly object dtype
    cdef object work, yl, lwork
    cdef Py_ssize_t _nbytes
    cdef readonly object Xb, yb
    cdef _Pointers pH, pdZ, pdb, pdW

    def __cinit__(self, sizes, rows, n_target_cols, dtype):
        sz, dt = check_workspace_args(sizes, rows, n_target_cols, dtype)
        L = len(sz) - 1
        self.sizes, self.rows, self.dtype = tuple(sz), rows, dt
        self.n_target_cols = n_target_cols
        # every buffer at a cache line (nnlib._aligned), as the weights: the batch-1
        # step reads and writes its rows in 64-byte vectors, so a row that straddles
        # lines costs a second access, and the speed would depend on where NumPy's
        # allocator happened to put the buffers
        self.H = tuple(aligned_zeros((rows, sz[l + 1]), dt) for l in range(L))
        self.dZ = tuple(aligned_zeros((rows, sz[l + 1]), dt) for l in range(L))
        self.db = tuple(aligned_zeros(sz[l + 1], dt) for l in range(L))
        self.dW = tuple(aligned_zeros((sz[l], sz[l + 1]), dt) for l in range(L))
        self.work = aligned_zeros(max(sz) + 1, np.float64)
        # the batch-gathering buffers are sized when a setup first trains with this
        # workspace (_gather_buffers): loss_grad over all rows never gathers, and X's
        # size again would double what a full-batch objective (L-BFGS) holds
        self.Xb = np.empty((1, sz[0]), dt)
        self.yb = np.empty((1, max(n_target_cols, 1)), dt)
        self.yl = np.zeros(rows, np.int64)
        self.lwork = aligned_zeros(sz[L] + 1, dt)
        self._nbytes = sum(a.nbytes for group in (self.H, self.dZ, self.db, self.dW)
                           for a in group)
        self.pH, self.pdZ = _Pointers(self.H), _Pointers(self.dZ)
        self.pdb, self.pdW = _Pointers(self.db), _Pointers(self.dW)

    @property
    def nbytes(self):
        return self._nbytes + self.Xb.nbytes + self.yb.nbytes

    def _gather_buffers(self, with_x=True):
        """Size the batch-gathering buffers for ``rows`` rows (once); ``with_x`` False:
        the targets' only (sparse X is read in place, never gathered)."""
        if with_x and self.Xb.shape[0] < self.rows:
            self.Xb = aligned_zeros((self.rows, self.sizes[0]), self.dtype)
        if self.yb.shape[0] < self.rows:
            self.yb = np.empty((self.rows, max(self.n_target_cols, 1)), self.dtype)


cdef struct EpochC:
    # what the nogil loop reads: raw pointers into arrays EpochSetup checked and keeps
    NetShape* net
    void** W
    void** b
    void** st
    void** H
    void** dZ
    void** db
    void** dW
    const void* X
    const void* yt
    const long long* yl
    Py_ssize_t N, tcols, batch_size, n_out
    const void* sw          # (N,) row weights in X's dtype, or NULL (unweighted)
    void* swb               # (rows,) the batch's weights, gathered
    double sw_total         # sum of sw over all N rows (loss_grad's normaliser)
    bint sparse             # X is CSR: xs (rows NULL) points into the setup's copies
    CsrRows xs
    long long* rowsb        # (rows,) the batch's row numbers, checked
    void* Xb
    void* yb
    long long* ylb
    double* work
    void* lwork
    int loss_kind, n_threads, update_threads
    int pool_threads        # run_epoch's passes on this many of BLAS's threads (1: none)
    double margin, l2, loss_scale
    bint l2_per_batch, label_loss, has_opt
    OptimConfig* oc         # 2L configs, one per W1, b1, W2, b2, ... (one kind)
    int* slots              # 2L state slot counts, each of its array's config
    bint all_plain          # every array plain SGD (sgd_fused_update)
    bint plain_no_decay     # ... and none with weight decay
    void** WT               # per layer, W_l transposed (l >= 1), or NULL (see epoch_loop)
    Py_ssize_t n_weights    # elements of all weights together
    void** Wloop            # the weights the loop steps: W, or W with W_0's padded copy
    const Py_ssize_t* ldw   # the row strides of Wloop (net.sizes + 1: those of W)
    bint has_drop           # the network has dropouts (their buffers are allocated)
    DropC drop


cdef class EpochSetup:
    """Everything an epoch reads and writes, checked once.

    Parameters
    ----------
    network : Network
    weights, biases : lists of L arrays
        The live parameters, (sizes[l], sizes[l+1]) and (sizes[l+1],), C-contiguous,
        writeable, one dtype (float32 or float64); ``run_epoch`` updates them in place.
    states : list of 2L entries or None
        For W1, b1, W2, b2, ...: None or the optimizer's state rows of that parameter as
        one flat writeable array of ``state_slots(optimizer) * param.size`` elements.
    X : (N, sizes[0]) array of the same dtype, or a SciPy CSR matrix of it
        Sparse X is checked and its arrays copied (``nnlib._validation.check_csr``);
        the first layer then runs the sparse products of ``sparse_rows.pxd`` on the
        batch's rows in place (O(nnz) per batch, never a dense copy).
    y_target : (N, c) float targets, or (N, 0) for a class-label loss
    y_label : (N,) int64 class labels in [0, c) for a class-label loss; else any length
        >= 1 (unread)
    workspace : Workspace
        At least ``min(batch_size, N)`` rows, same sizes and dtype.
    loss_kind : int
        ``nnlib._codes.LOSS_CODES`` value.
    batch_size : int >= 1
    margin : float >= 0
        hinge_loss's margin.
    l2 : float >= 0
        L2 on the weights (not the biases).
    l2_per_batch : bool
        Divide ``l2`` by each batch's length (scikit-learn's ``alpha``).
    optimizer : dict, sequence of 2L dicts, or None
        The optimizer's ``config()`` for every array, or one config per W1, b1, W2, b2,
        ... (``Optimizer.configs(params)``: parameter groups with their own lr, weight
        decay, momentum, betas, ...; one ``kind`` for all); None when only
        ``loss_grad`` is used. Each array's state follows its own config's layout.
    n_threads, update_threads : int >= 1
        OpenMP threads of the large elementwise passes and of the optimizer update of
        large weight matrices; results do not depend on them.
    loss_scale : float
        Factor on each batch's reported data loss (not on its gradient): 1 / n_outputs
        reports scikit-learn's multi-output squared loss.
    sample_weight : (N,) array or None
        Row weights (finite, >= 0, not all 0; ``nnlib._validation.check_sample_weight``),
        copied into the setup's own array in X's dtype. Each batch's loss is then the
        weighted mean ``sum_i w_i L_i / sum_i w_i`` and ``l2_per_batch`` divides by the
        batch's weight sum instead of its length: scikit-learn's MLP normalisation.

    Attributes
    ----------
    dropout_seeds, dropout_offsets : (n_dropouts,) uint64 arrays
        The counters of the network's dropouts (``set_dropout``; both 0 at first). Their
        buffers (the dropped values, ``rows x width`` per position) are allocated by the
        first call that trains: an evaluation never holds them.

    Examples
    --------
    >>> import numpy as np
    >>> from nnlib.optim import SGD
    >>> net = Network([2, 3, 2], [2, 0], [0.0, 0.0])
    >>> W = [np.full((2, 3), 0.1), np.full((3, 2), 0.1)]
    >>> b = [np.zeros(3), np.zeros(2)]
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> setup = EpochSetup(net, W, b, [None] * 4, X, np.empty((2, 0)),
    ...                    np.array([0, 1]), Workspace(net.sizes, 2, 0, np.float64),
    ...                    loss_kind=0, batch_size=2, optimizer=SGD(lr=0.1).config())
    >>> run_epoch(setup, np.array([0, 1]), 0)[1:4]        # seen, steps, status
    (2, 1, 0)
    """
    cdef EpochC c
    cdef readonly Network network
    cdef readonly tuple weights, biases, states
    cdef readonly object X, y_target, y_label
    cdef readonly Workspace workspace
    cdef readonly int loss_kind, n_threads, update_threads
    cdef readonly Py_ssize_t batch_size
    cdef readonly double margin, l2, loss_scale
    cdef readonly bint l2_per_batch
    cdef readonly object optimizer          # a config dict, or a tuple of 2L, or None
    cdef readonly long long steps_taken
    cdef readonly bint busy         # a run_epoch or loss_grad call is running on it
    cdef readonly object sample_weight     # the setup's own checked copy, or None
    cdef object _swb                       # (rows,) the batch's gathered weights
    cdef object _csr                       # sparse X: its checked (indptr, indices, data)
    cdef object _rowsb                     # (rows,) the batch's checked row numbers
    cdef readonly object dropout_seeds, dropout_offsets     # (n_dropouts,) uint64
    cdef object _dbufs                     # the dropped values per position, or None
    cdef _Pointers pW, pb, pst, pD
    cdef object _oc_keep                   # the arrays c.oc and c.slots point into
    cdef bint _wt_fits                     # the transposed copies may be used (run_epoch)
    cdef _Pointers pWT                     # their buffers, once allocated
    cdef bint _pad_fits                    # the padded copies may be used (run_epoch)
    cdef tuple _pads                       # their strides and buffers, once allocated
    cdef bint _pads_b1                     # _pads made for batch 1 (every layer)
    cdef readonly long long padded_calls   # run_epoch calls that stepped them (tests)

    def __init__(self, Network network not None, weights, biases, states, X, y_target,
                 y_label, Workspace workspace not None, loss_kind, batch_size, margin=1.0,
                 l2=0.0,
                 l2_per_batch=False, optimizer=None, n_threads=1, update_threads=1,
                 loss_scale=1.0, sample_weight=None):
        cdef Py_ssize_t l, L = network.n_layers
        sizes = network.sizes
        _blas.load()        # the loop's products call through pointers resolved here
        loss_kind, batch_size = operator.index(loss_kind), operator.index(batch_size)
        if not 0 <= loss_kind < N_LOSS_CODES:
            raise ValueError(f"unknown loss code {loss_kind}")
        label_loss = loss_kind in LABEL_LOSS_KINDS
        weights, biases = list(weights), list(biases)
        dt, N = check_epoch_data(sizes, weights, biases, X, y_target, y_label, label_loss)
        tcols = 0 if label_loss else sizes[L]
        if workspace.sizes != sizes or workspace.dtype != dt:
            raise ValueError(f"the workspace is for sizes {list(workspace.sizes)} "
                             f"{workspace.dtype}; the network has {list(sizes)} {dt}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if workspace.rows < min(batch_size, N) or workspace.n_target_cols < tcols:
            raise ValueError(f"the workspace holds {workspace.rows} rows of "
                             f"{workspace.n_target_cols} targets; batches need "
                             f"{min(batch_size, N)} of {tcols}")
        if not (margin >= 0 and l2 >= 0 and np.isfinite(margin) and np.isfinite(l2)
                and np.isfinite(loss_scale)):
            raise ValueError(f"margin and l2 must be finite and >= 0, loss_scale finite; "
                             f"got {margin}, {l2}, {loss_scale}")
        # l2 W is formed in the weights' dtype's range (a float32 l2 beyond FLT_MAX
        # made inf * 0 = NaN where the double product is 0), as fit checks it
        check_fits_dtype(l2, "l2", dt)
        if n_threads < 1 or update_threads < 1:
            raise ValueError("n_threads and update_threads must be >= 1")
        # OpenMP cannot start more threads than the machine allows (a huge count
        # aborts inside its runtime): use at most them, as resolve_threads does
        n_threads = min(n_threads, _MAX_THREADS)
        update_threads = min(update_threads, _MAX_THREADS)
        states = [None] * (2 * L) if states is None else list(states)
        if len(states) != 2 * L:
            raise ValueError(f"states needs {2 * L} entries (W1, b1, ...); got "
                             f"{len(states)}")
        self.network, self.workspace = network, workspace
        self.weights, self.biases = tuple(weights), tuple(biases)
        self.states = tuple(states)
        self.X, self.y_target, self.y_label = X, y_target, y_label
        self.loss_kind, self.batch_size = loss_kind, batch_size
        self.margin, self.l2, self.l2_per_batch = margin, l2, l2_per_batch
        self.n_threads, self.update_threads, self.loss_scale = (n_threads, update_threads,
                                                                loss_scale)
        self.pW, self.pb = _Pointers(self.weights), _Pointers(self.biases)
        self.pst = _Pointers(self.states)
        # the transposed copies of W_1 .. W_{L-1} (see epoch_loop): within the size
        # limit, and only for weights no other parameter array shares memory with (a
        # tied W would change under its copy)
        params = self.weights + self.biases
        self._wt_fits = L > 1 and sum(w.shape[1] * line_padded(w.shape[0], w.itemsize)
                                      * w.itemsize
                                      for w in self.weights[1:]) <= TRANSPOSED_MAX_BYTES
        for l in range(1, L):
            for q in params:
                if q is not self.weights[l] and np.may_share_memory(q, self.weights[l]):
                    self._wt_fits = False
        self.pWT = None
        # the padded copies (see epoch_loop), likewise untied and within their limit
        itemsize = np.dtype(dt).itemsize
        self._pad_fits = sum(sizes[l] * line_padded(sizes[l + 1], itemsize) * itemsize
                             for l in range(L)) <= PADDED_MAX_BYTES
        for l in range(L):
            for q in params:
                if q is not self.weights[l] and np.may_share_memory(q, self.weights[l]):
                    self._pad_fits = False
        self._pads = None
        c_ = &self.c
        c_.WT = NULL
        c_.n_weights = sum(sizes[l] * sizes[l + 1] for l in range(L))
        c_.net = &network.shape
        c_.W, c_.b, c_.st = self.pW.p, self.pb.p, self.pst.p
        c_.Wloop, c_.ldw = c_.W, network.shape.sizes + 1
        c_.H, c_.dZ, c_.db, c_.dW = (workspace.pH.p, workspace.pdZ.p, workspace.pdb.p,
                                     workspace.pdW.p)
        self._rowsb = np.zeros(max(workspace.rows, 1), np.int64)
        c_.rowsb = <long long*>cnp.PyArray_DATA(self._rowsb)
        network._bind_dropout(&c_.drop)
        c_.has_drop = False             # until the buffers exist (_dropout_buffers)
        self._dbufs = None
        self.set_dropout([0] * c_.drop.n, [0] * c_.drop.n)
        self._bind_X(X)
        c_.yt = cnp.PyArray_DATA(y_target)
        c_.yl = <const long long*>cnp.PyArray_DATA(y_label)
        c_.N, c_.tcols, c_.batch_size = N, tcols, batch_size
        # labels are read from the caller's array, which the caller may change while the
        # loop runs: each one is copied into the workspace and checked there before use
        c_.n_out = sizes[L] if label_loss else 1
        c_.ylb = <long long*>cnp.PyArray_DATA(workspace.yl)
        c_.work = <double*>cnp.PyArray_DATA(workspace.work)
        c_.lwork = cnp.PyArray_DATA(workspace.lwork)
        c_.loss_kind, c_.n_threads, c_.update_threads = loss_kind, n_threads, update_threads
        c_.pool_threads = 1
        c_.margin, c_.l2, c_.loss_scale = margin, l2, loss_scale
        c_.l2_per_batch, c_.label_loss = l2_per_batch, label_loss
        c_.has_opt = False
        self._swb = np.empty(max(workspace.rows, 1), dt)
        c_.swb = cnp.PyArray_DATA(self._swb)
        self._bind_weights(sample_weight, N, dt)
        self.optimizer = None
        if optimizer is not None:
            self.set_optimizer(optimizer)
        elif any(s is not None for s in self.states):
            raise ValueError("states given without an optimizer config")

    cdef _bind_X(self, X):
        # dense: the caller's array (values may change, sizes cannot); sparse: the
        # setup's own checked copies of its index arrays, which the loop indexes with
        cdef cnp.ndarray indptr, indices, data
        if is_sparse(X):
            if self.network.dropout and self.network.dropout[0][0] == 0:
                raise ValueError("dropout on the input (position 0) needs a dense X; "
                                 "X is sparse")
            _, indptr, indices, data = check_csr(X, self.network.sizes[0], X.dtype)
            self._csr = (indptr, indices, data)
            self.c.sparse = True
            self.c.X = NULL
            self.c.xs.indptr = <const long long*>cnp.PyArray_DATA(indptr)
            self.c.xs.indices = <const long long*>cnp.PyArray_DATA(indices)
            self.c.xs.data = cnp.PyArray_DATA(data)
            self.c.xs.rows = NULL
        else:
            self._csr = None
            self.c.sparse = False
            self.c.X = cnp.PyArray_DATA(X)
        if self.c.has_opt:      # a dense X needs the row-gathering buffer
            self.workspace._gather_buffers(not self.c.sparse)
            self.c.Xb = cnp.PyArray_DATA(self.workspace.Xb)
            self.c.yb = cnp.PyArray_DATA(self.workspace.yb)

    cdef _bind_weights(self, sample_weight, Py_ssize_t N, dt):
        # checked and copied here: the loop reads it without the GIL
        if sample_weight is None:
            self.sample_weight = None
            self.c.sw = NULL
            self.c.sw_total = 0.0
            return
        w = check_sample_weight(sample_weight, N, dt)
        self.sample_weight = w
        self.c.sw = cnp.PyArray_DATA(w)
        # Weights near 1e308 are legal (run_epoch checks each batch's own sum), so this
        # total may overflow to inf without a NumPy warning; loss_grad, the one reader,
        # refuses such a total (check_weight_total).
        with np.errstate(over="ignore"):
            self.c.sw_total = float(np.sum(w, dtype=np.float64))

    def set_data(self, X, y_target, y_label, sample_weight=None):
        """Train on other rows from now on: ``X``, ``y_target``, ``y_label`` and
        ``sample_weight`` as for the constructor (the same widths, dtype and kind of
        targets); the weights, states, workspace and settings stay. The workspace must still hold
        ``min(batch_size, N)`` rows. Zero-row arrays release the caller's data (a setup
        kept for reuse holds no reference to it).

        Examples
        --------
        See :class:`EpochSetup`.
        """
        if self.busy:
            raise RuntimeError("set_data while this EpochSetup is training")
        dt, N = check_data(self.network.sizes, X, y_target, y_label, self.c.label_loss)
        if dt != self.workspace.dtype:
            raise TypeError(f"X has dtype {dt}; this setup trains in "
                            f"{self.workspace.dtype}")
        if self.workspace.rows < min(self.batch_size, N):
            raise ValueError(f"the workspace holds {self.workspace.rows} rows; batches "
                             f"need {min(self.batch_size, N)}")
        self._bind_weights(sample_weight, N, dt)
        self.X, self.y_target, self.y_label = X, y_target, y_label
        self._bind_X(X)
        self.c.yt = cnp.PyArray_DATA(y_target)
        self.c.yl = <const long long*>cnp.PyArray_DATA(y_label)
        self.c.N = N

    def release_data(self):
        """Drop the references to the data (a setup kept for the model's next fit must
        not keep the caller's X alive); ``set_data`` binds new data."""
        if self.busy:
            raise RuntimeError("release_data while this EpochSetup is training")
        self.X = np.empty((0, self.network.sizes[0]), self.workspace.dtype)
        self.y_target = np.empty((0, self.c.tcols), self.workspace.dtype)
        self.y_label = np.empty(0, np.int64)
        self._bind_X(self.X)
        self.c.yt = cnp.PyArray_DATA(self.y_target)
        self.c.yl = <const long long*>cnp.PyArray_DATA(self.y_label)
        self.c.N = 0
        self._bind_weights(None, 0, None)

    def set_dropout(self, seeds, offsets):
        """Seeds and counter offsets of the network's dropouts, one each per dropout (ints
        in [0, 2**64)): the mask of dropout k at update t (``step0 + 1`` for the first
        step of a ``run_epoch`` call) has key ``(seeds[k], offsets[k] + t mod 2**64,
        row)``. Both start at 0.

        Examples
        --------
        >>> import numpy as np
        >>> net = Network([2, 3, 2], [2, 0], [0.0, 0.0], dropout=[(1, 0.5)])
        >>> setup = EpochSetup(net, [np.ones((2, 3)), np.ones((3, 2))],
        ...                    [np.zeros(3), np.zeros(2)], None, np.ones((2, 2)),
        ...                    np.empty((2, 0)), np.array([0, 1]),
        ...                    Workspace(net.sizes, 2, 0, np.float64), 0, 2)
        >>> setup.set_dropout([7], [0]); setup.dropout_seeds
        array([7], dtype=uint64)
        """
        if self.busy:
            raise RuntimeError("set_dropout while this EpochSetup is training")
        seeds, offsets = check_dropout_counters(seeds, offsets, self.c.drop.n)
        self.dropout_seeds, self.dropout_offsets = seeds, offsets
        self.c.drop.seed = <uint64_t*>cnp.PyArray_DATA(seeds) if seeds.size else NULL
        self.c.drop.offset = <uint64_t*>cnp.PyArray_DATA(offsets) if seeds.size else NULL

    cdef _dropout_buffers(self):
        """Allocate the dropped values' buffers on first training use (an evaluation
        never applies dropout and never holds them)."""
        cdef Py_ssize_t p
        if self.c.drop.n == 0 or self._dbufs is not None:
            return
        sizes, rows = self.network.sizes, self.workspace.rows
        count = self.network._drop_keep[1]
        self._dbufs = tuple(np.empty((rows, sizes[p]), self.workspace.dtype)
                            if count[p] else None for p in range(len(sizes)))
        self.pD = _Pointers(self._dbufs)
        self.c.drop.D = self.pD.p
        self.c.has_drop = True

    cdef _enter(self):
        # The GIL is held here, so test-and-set is atomic: a second thread is refused
        # instead of sharing the workspace and the weights mid-step.
        if self.busy:
            raise RuntimeError("this EpochSetup is in use by another thread: one call "
                               "at a time per setup (and per model)")
        self.busy = True

    cdef _transposed_copies(self):
        """Point ``c.WT`` at fresh transposed copies of W_1 .. W_{L-1} when this call's
        steps are batch-1 plain SGD without decay or L2 (see epoch_loop), else NULL."""
        cdef Py_ssize_t l, L = self.network.n_layers
        cdef Py_ssize_t* sz = self.network.shape.sizes
        cdef bint f64 = self.workspace.dtype == np.float64
        self.c.WT = NULL
        if not (_COPIES["transposed"] and self._wt_fits and self.c.batch_size == 1
                and self.c.plain_no_decay and self.c.l2 == 0.0):
            return
        if self.pWT is None:
            self.pWT = _Pointers([None] + [aligned_zeros(
                (w.shape[1], line_padded(w.shape[0], w.itemsize)), w.dtype)
                for w in self.weights[1:]])
        # at most TRANSPOSED_MAX_BYTES: too short a copy to let the GIL go (gil.pxd)
        for l in range(1, L):
            if f64:
                transpose_into(<const double*>self.c.W[l], sz[l], sz[l + 1],
                               <double*>self.pWT.p[l], line_padded(sz[l], 8))
            else:
                transpose_into(<const float*>self.c.W[l], sz[l], sz[l + 1],
                               <float*>self.pWT.p[l], line_padded(sz[l], 4))
        self.c.WT = self.pWT.p

    cdef _padded_copies(self, bint check_updates, double steps):
        """Point ``c.Wloop`` at the weights with W_l whose rows do not fill whole lines
        replaced by a copy of it, rows padded to whole lines (``c.ldw`` apart), when this
        call's ``steps`` are plain SGD without decay or L2 over dense rows with no dropout
        and no per-step checks (see epoch_loop), and either of batch 1 (every such W_l;
        at least ``PADDED_MIN_STEPS_B1`` of them) or of a batch whose first layer reads
        its rows in place (``rows_in_place``: W_0 only, whose products all take
        gemm_small.h's loops; at least ``PADDED_MIN_STEPS``); else at W. A shorter call
        spends more on copying the weights in and back than its steps gain."""
        cdef Py_ssize_t l, L = self.network.n_layers
        cdef Py_ssize_t* sz = self.network.shape.sizes
        cdef Py_ssize_t* ld
        cdef _Pointers ptrs
        cdef cnp.ndarray strides
        cdef bint f64 = self.workspace.dtype == np.float64
        cdef bint b1 = self.c.batch_size == 1
        self.c.Wloop, self.c.ldw = self.c.W, sz + 1
        if not (_COPIES["padded"] and self._pad_fits
                and steps >= (_padded_min_steps_b1 if b1 else _padded_min_steps)
                and self.c.plain_no_decay and self.c.l2 == 0.0 and not self.c.sparse
                and self.c.drop.n == 0 and not check_updates
                and (b1 or rows_in_place(self.c.batch_size, sz[0], sz[1],
                                         self.network.shape.kinds[0], -self.c.oc[0].lr,
                                         self.c.n_threads))):
            return
        if self._pads is None or self._pads_b1 != b1:
            # past batch 1 the other layers keep their rows: their products may be
            # BLAS's, whose results are not shown independent of the row stride
            strides = np.array([line_padded(sz[l + 1], 8 if f64 else 4)
                                if l == 0 or b1 else sz[l + 1] for l in range(L)], np.intp)
            self._pads_b1 = b1
            # () where every row fills whole lines already: nothing to copy, and the
            # strides are not formed again on every call
            self._pads = () if (strides == np.array(self.network.sizes[1:])).all() else (
                strides, _Pointers([aligned_zeros((w.shape[0], strides[l]), w.dtype)
                                    if strides[l] != w.shape[1] else w
                                    for l, w in enumerate(self.weights)]))
        if not self._pads:
            return
        strides, ptrs = self._pads
        ld = <Py_ssize_t*>cnp.PyArray_DATA(strides)
        # at most PADDED_MAX_BYTES: too short a copy to let the GIL go (gil.pxd)
        for l in range(L):
            if ptrs.p[l] == self.c.W[l]:
                continue
            if f64:
                copy_rows(<const double*>self.c.W[l], sz[l + 1],
                          <double*>ptrs.p[l], ld[l], sz[l], sz[l + 1])
            else:
                copy_rows(<const float*>self.c.W[l], sz[l + 1],
                          <float*>ptrs.p[l], ld[l], sz[l], sz[l + 1])
        self.c.Wloop, self.c.ldw = ptrs.p, ld
        self.padded_calls += 1

    def set_optimizer(self, config):
        """Use the optimizer ``config`` from now on (e.g. a new learning rate between
        epochs): one config dict for every array, or a sequence of ``2 L``, one per
        W1, b1, W2, b2, ... (parameter groups with their own hyper-parameters; one
        ``kind`` for all). Each array's state must fit its own config's layout
        (``state_slots``)."""
        cdef Py_ssize_t i, n = 2 * self.network.n_layers
        cdef OptimConfig oc
        configs, stored = per_array_configs(config, n)
        cdef cnp.ndarray ocs = np.zeros(n * sizeof(OptimConfig), np.uint8)
        cdef cnp.ndarray slots = np.zeros(n, np.intc)
        cdef OptimConfig* ocp = <OptimConfig*>cnp.PyArray_DATA(ocs)
        cdef int* sp = <int*>cnp.PyArray_DATA(slots)
        for i in range(n):
            oc = config_from_dict(configs[i])
            ocp[i] = oc
            sp[i] = optim_state_slots(&oc)
        if self.busy:
            raise RuntimeError("set_optimizer while this EpochSetup is training")
        params = [p for pair in zip(self.weights, self.biases) for p in pair]
        for i, (p, s) in enumerate(zip(params, self.states)):
            need = sp[i] * p.size
            if need == 0:
                if s is not None and s.size != 0:
                    raise ValueError(f"states[{i}] is given but the optimizer keeps no "
                                     f"state for it")
                continue
            if s is None:
                raise ValueError(f"the optimizer keeps {sp[i]} state rows; states[{i}] "
                                 f"is None")
            _check_array(s, f"states[{i}]", p.dtype, (need,), True)
        self.workspace._gather_buffers(not self.c.sparse)
        self.c.Xb = cnp.PyArray_DATA(self.workspace.Xb)
        self.c.yb = cnp.PyArray_DATA(self.workspace.yb)
        self.optimizer = stored
        self._oc_keep = (ocs, slots)
        self.c.oc = ocp
        self.c.slots = sp
        self.c.all_plain = True
        self.c.plain_no_decay = True
        for i in range(n):
            self.c.all_plain = self.c.all_plain and plain_sgd(&ocp[i])
            self.c.plain_no_decay = self.c.plain_no_decay and ocp[i].weight_decay == 0.0
        self.c.plain_no_decay = self.c.plain_no_decay and self.c.all_plain
        self.c.has_opt = True


cdef inline void _gather_block(floating* tag, PassJob* p, Py_ssize_t t) noexcept nogil:
    # block t of the gather's rows: out[i] = X[rows[i]] (``tag`` picks the dtype)
    cdef Py_ssize_t i, r0, r1
    row_block(p.n, p.blocks, t, &r0, &r1)
    for i in range(r0, r1):
        memcpy(<floating*>p.out + i * p.c, <const floating*>p.a + p.rows[i] * p.c,
               p.c * sizeof(floating))


cdef inline void _gather_task_f(void* p, Py_ssize_t t) noexcept nogil:
    _gather_block(<float*>NULL, <PassJob*>p, t)


cdef inline void _gather_task_d(void* p, Py_ssize_t t) noexcept nogil:
    _gather_block(<double*>NULL, <PassJob*>p, t)


cdef inline void gather_rows(floating* out, const floating* X, const long long* rows,
                             Py_ssize_t n, Py_ssize_t c, int n_threads,
                             int pool) noexcept nogil:
    """out (n, c) = the rows ``rows`` of X (rows c apart; every row number checked by
    the caller), one block of rows per thread of ``n_threads`` of OpenMP or, with
    ``pool`` > 1, of BLAS's threads (pass_blocks.pxd)."""
    cdef PassJob p
    cdef int threads = team_threads(n_threads, pool)
    p.out, p.a, p.rows, p.n, p.c = out, X, rows, n, c
    p.blocks = threads if threads < n else n
    run_blocks(_gather_task_d if floating is double else _gather_task_f, &p, pool)


cdef struct Tally:
    double total
    Py_ssize_t seen, steps
    int status
    bint finite


cdef Tally epoch_loop(EpochC* c, floating* tag, const long long* order, Py_ssize_t n,
                      long long step0, Py_ssize_t max_steps, bint check_updates,
                      double loss_sum0, bint pieces) noexcept nogil:
    # ``tag`` is never read: its type picks the float32 or float64 specialization
    cdef NetShape* s = c.net
    cdef int L = s.n_layers, l
    cdef Py_ssize_t n_in = s.sizes[0], start = 0, B, i, r, nW
    cdef bint gather_split
    cdef double loss = 0.0, l2_eff, pen, pen_next = 0.0
    cdef bint pen_known = False      # pen_next is the penalty sum of the current weights
    cdef const OptimConfig* oc
    cdef OptimConfig ocW
    cdef long long step = step0
    # W_0 may be a padded copy here (``Wloop``; see the design note), put back at the end
    cdef floating** W = <floating**>c.Wloop
    cdef floating** bb = <floating**>c.b
    cdef floating** st = <floating**>c.st
    cdef floating** H = <floating**>c.H
    cdef floating** dZ = <floating**>c.dZ
    cdef floating** db = <floating**>c.db
    cdef floating** dW = <floating**>c.dW
    cdef const floating* X = <const floating*>c.X
    cdef const floating* yt = <const floating*>c.yt
    cdef floating* xbuf = <floating*>c.Xb
    cdef floating* ybuf = <floating*>c.yb
    cdef const floating* X0
    cdef const floating* yb
    cdef const floating* sw = <const floating*>c.sw
    cdef floating* swb = <floating*>c.swb
    cdef const floating* swp = NULL
    cdef double sw_sum = 0.0
    cdef CsrRows xs = c.xs
    cdef bint sparse = c.sparse       # local: the gather loop tests it per row
    cdef const DropC* dr = &c.drop if c.has_drop else NULL
    cdef const CsrRows* xsp = &xs if sparse else NULL
    cdef int bad_label = 0, bad_row = 0
    # dense rows, no dropout: where both first-layer products take the blocked loops
    # (the forward, and plain SGD's fused step or another rule's gradient, whose alpha
    # is alpha0), they read the batch's rows of X in place through their numbers
    # (``rows_in_place``) and the rows are not gathered
    cdef bint maybe_in_place = _rows_in_place and not sparse and dr == NULL
    cdef double alpha0 = -c.oc[0].lr if plain_sgd(&c.oc[0]) else 1.0
    cdef bint in_place
    cdef const long long* xrows = NULL
    # plain SGD at batch 1 over dense rows: the first layer's weight step also forms the
    # next row's product X W_0 (``first_layer_step_and_product``: W_0 is read once for
    # both), which the next step's forward then skips
    cdef bint fuse0 = (c.batch_size == 1 and not sparse and dr == NULL and c.all_plain
                       and s.sizes[1] <= (NN_FUSED_MAX_COLS_F if sizeof(floating) == 4
                                          else NN_FUSED_MAX_COLS_D))
    cdef bint z0_ready = False      # H[0] holds X[r_fused] W_0, the weights as they are
    cdef Py_ssize_t r_fused = -1
    # batch 1, plain SGD without decay or L2 (the rank-one step): the input gradient
    # dZ_l W_l^T of each layer l >= 1 reads a transposed copy of W_l, made by run_epoch
    # and stepped with W_l (``sgd_step_transposed``): a column of a block of W_l's rows
    # is then one contiguous load instead of a gather (a narrow layer's rows, the digits
    # net's 10 outputs, are short). W_l stays the weights; the copy ends with the call.
    cdef floating** WT = <floating**>c.WT
    # only a batch small enough to stay in L2 until its gather (PREFETCH_MAX_BYTES)
    cdef bint prefetch = c.batch_size * n_in * <Py_ssize_t>sizeof(floating) <= _prefetch_max
    cdef Tally t
    t.total = loss_sum0
    t.seen = 0
    t.steps = 0
    t.status = STATUS_OK
    while start < n and t.steps < max_steps:
        B = min(c.batch_size, n - start)
        if B == 1:
            r = order[start]
            if r < 0 or r >= c.N:      # re-checked at use: the caller owns ``order``
                t.status = STATUS_BAD_ORDER
                break
            z0_ready = z0_ready and r == r_fused    # (``order`` may have changed since)
            xrows = NULL                            # the row itself, in place
            if sparse:
                c.rowsb[0] = r
                xs.rows = c.rowsb
                X0 = NULL
            else:
                X0 = X + r * n_in
            yb = yt + r * c.tcols if c.tcols > 0 else ybuf
            c.ylb[0] = c.yl[r] if c.label_loss else 0
            if c.ylb[0] < 0 or c.ylb[0] >= c.n_out:
                t.status = STATUS_BAD_LABEL
                break
            if sw != NULL:
                swp = sw + r
                sw_sum = sw[r]
        else:
            # a large gather is split between the threads (OpenMP's, or BLAS's with
            # ``pool_threads``), a block of rows each, once every row number is checked
            gather_split = (not sparse and B * n_in >= PAR_MIN_ELEMS
                            and team_threads(c.n_threads, c.pool_threads) > 1)
            # (read in place only where OpenMP's team would not split the gather)
            in_place = (maybe_in_place and not (gather_split and c.n_threads > 1)
                        and rows_in_place(B, n_in, s.sizes[1], s.kinds[0], alpha0,
                                          c.n_threads))
            gather_split = gather_split and not in_place
            for i in range(B):
                r = order[start + i]
                if r < 0 or r >= c.N:
                    bad_row = 1
                    break
                c.rowsb[i] = r      # checked here (sparse X: its rows are read in place)
                if not sparse and not in_place and not gather_split:
                    nn_copy_row(<char*>(xbuf + i * n_in), <const char*>(X + r * n_in),
                                n_in * sizeof(floating))
                if c.tcols > 0:
                    memcpy(ybuf + i * c.tcols, yt + r * c.tcols, c.tcols * sizeof(floating))
                c.ylb[i] = c.yl[r] if c.label_loss else 0
                bad_label = bad_label | (c.ylb[i] < 0) | (c.ylb[i] >= c.n_out)
                if sw != NULL:
                    swb[i] = sw[r]
            if bad_row:
                t.status = STATUS_BAD_ORDER
                break
            if bad_label:
                t.status = STATUS_BAD_LABEL
                break
            if gather_split:
                gather_rows(xbuf, X, c.rowsb, B, n_in, c.n_threads, c.pool_threads)
            X0 = NULL if sparse else (X if in_place else xbuf)
            xrows = c.rowsb if in_place else NULL
            xs.rows = c.rowsb
            yb = ybuf
            if sw != NULL:      # gathered with the rows, each r checked there
                sw_sum = 0.0
                for i in range(B):
                    sw_sum += swb[i]
                swp = swb
        if B > 1 and not sparse and start + B < n and prefetch:
            # the next batch's rows, gathered at the next step, on their way to L2
            nn_prefetch_rows(<const char*>X, n_in * sizeof(floating), order + start + B,
                             min(c.batch_size, n - start - B), c.N)
        # the masks of update step + 1, the one this step makes
        t.status = forward_backward(s, W, bb, X0, B, H, dZ, db, dW, c.work, c.loss_kind, yb,
                                    c.ylb, c.margin, <floating*>c.lwork, c.n_threads,
                                    c.pool_threads, &loss, False, True, swp, sw_sum, xsp,
                                    pieces, dr, <uint64_t>(step + 1), z0_ready, WT, c.ldw,
                                    xrows)
        z0_ready = False
        if t.status != STATUS_OK:
            break
        loss = loss * c.loss_scale      # the reported data loss only, not the gradient
        # scikit-learn divides alpha by the batch's weight sum (its length unweighted)
        l2_eff = (c.l2 / (B if sw == NULL else sw_sum)) if c.l2_per_batch else c.l2
        if l2_eff != 0.0:
            if pen_known:
                pen = pen_next
            else:
                pen = 0.0
                for l in range(L):
                    pen = pen + sum_squares_from(0.0, W[l], s.sizes[l] * s.sizes[l + 1])
            loss = nn_penalized(loss, 0.5 * l2_eff, pen)
            if not isfinite(loss):
                t.status = STATUS_NONFINITE_LOSS
                break
        step = step + 1
        # with L2 on, the single-threaded update of every layer's weights also sums the
        # squares of the new weights (the next step's penalty, the same additions in the
        # same order); a fused or multi-threaded update leaves it to the next step
        pen_known = c.l2 != 0.0
        pen_next = 0.0
        if c.all_plain:
            # fused when the next step runs in this call (its row checked again there),
            # with no decay (the rank-one update): after the other layers' steps, which
            # read H[0]
            r_fused = order[start + 1] if start + 1 < n and t.steps + 1 < max_steps else -1
            r_fused = (r_fused if fuse0 and 0 <= r_fused < c.N
                       and l2_eff + c.oc[0].weight_decay == 0.0 else -1)
            sgd_fused_update(s, W, bb, X0, B, H, dZ, r_fused >= 0,
                             db, c.oc, l2_eff, xsp, dr, c.ldw, xrows)
            if WT != NULL:      # before the fused first-layer pass overwrites H[0]
                for l in range(1, L):
                    sgd_step_transposed(s.sizes[l], s.sizes[l + 1], c.oc[2 * l].lr,
                                        layer_input(dr, l, X0, H), dZ[l], WT[l],
                                        line_padded(s.sizes[l], sizeof(floating)))
            if r_fused >= 0:
                first_layer_step_and_product(s, W[0], c.ldw[0], X0, dZ[0], c.oc[0].lr,
                                             X + r_fused * n_in, H[0])
                z0_ready = True
            pen_known = False
        for l in range(L if not c.all_plain else 0):
            # each array by its own config (parameter groups); a layer's weight
            # gradient is formed just before its update, which reads no other layer
            oc = &c.oc[2 * l]
            nW = s.sizes[l] * s.sizes[l + 1]
            if plain_sgd(oc):
                sgd_fused_W(s, l, W, X0, B, H, dZ, oc.lr, l2_eff + oc.weight_decay, xsp,
                            dr, c.ldw[l], xrows)
                pen_known = False
            else:
                ocW = oc[0]
                if floating is double and oc.weight_decay == 0.0 and oc.kind != OPT_ADAMW:
                    # the rule's own weight decay adds l2 W inside its pass (g + wd w, the
                    # same double arithmetic) instead of a pass of its own over dW
                    ocW.weight_decay = l2_eff
                    weight_grad(s, l, W, X0, B, H, dZ, dW, 0.0, xsp, pieces, dr, xrows)
                else:
                    weight_grad(s, l, W, X0, B, H, dZ, dW, l2_eff, xsp, pieces, dr, xrows)
                if pen_known and (c.update_threads == 1 or nW < PAR_MIN_ELEMS):
                    pen_next = pen_next + optim_update_sq(&ocW, W[l], dW[l], st[2 * l], nW,
                                                          step, 0.0)
                else:
                    pen_known = False
                    optim_update_threads(&ocW, W[l], dW[l], st[2 * l], nW, step,
                                         c.update_threads if nW >= PAR_MIN_ELEMS else 1)
            oc = &c.oc[2 * l + 1]
            if plain_sgd(oc):
                sgd_fused_b(bb[l], db[l], s.sizes[l + 1], oc.lr, oc.weight_decay)
            else:
                optim_update(oc, bb[l], db[l], st[2 * l + 1], s.sizes[l + 1], step)
        if check_updates and not (params_finite(s, W, bb)
                                  and states_finite(s, st, c.slots)):
            t.status = STATUS_NONFINITE_UPDATE      # this step is applied, not counted
            break
        t.total = nn_add_weighted(t.total, loss, <double>B)
        t.seen += B
        t.steps += 1
        start += B
    for l in range(L):      # the padded copies' rows back into the weights
        if W[l] != <floating*>c.W[l]:
            copy_rows(W[l], c.ldw[l], <floating*>c.W[l], s.sizes[l + 1], s.sizes[l],
                      s.sizes[l + 1])
    t.finite = params_finite(s, <floating**>c.W, bb) and states_finite(s, st, c.slots)
    return t


cdef bint _order_in_range(const long long* order, Py_ssize_t n,
                          Py_ssize_t N) noexcept nogil:
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad = bad | (order[i] < 0) | (order[i] >= N)
    return bad == 0


def run_epoch(EpochSetup setup not None, order, step0, max_steps=-1, check_updates=False,
              loss_sum=0.0, counters=None):
    """One epoch (or its first ``max_steps`` steps) of mini-batch training, in place.

    Parameters
    ----------
    setup : EpochSetup
    order : (n,) integer array
        Row indices of ``setup.X`` in visiting order (each in [0, N)); batches are
        ``order[0:B], order[B:2B], ...``, the last one possibly shorter. Each index is
        checked again where it is read (the caller may change the array meanwhile).
    step0 : int
        Updates taken before this call (the optimizer's ``t``); step numbers continue
        from ``step0 + 1``, and so do the dropout masks (``set_dropout``).
    max_steps : int
        Stop after this many steps (-1: the whole order).
    check_updates : bool
        Check weights and states after every step (a replay after ``finite`` came back
        False).
    loss_sum : float
        Where the loss sum starts: an epoch run in several calls passes the sum so far,
        so the additions happen in the same order however the epoch is cut.
    counters : list, optional
        Objects whose attribute ``step`` is set to the step count after this call (as
        ``setup.steps_taken`` counts it), inside the call: Python sees a pending
        interrupt only after the call returns, when the counts already match the
        weights that moved (``TrainingRun`` passes the optimizer's entries).

    Returns
    -------
    (loss_sum, n_seen, steps, status, finite)
        ``loss_sum``: the given start plus, over the completed steps, the reported batch
        loss (data loss times ``loss_scale`` plus ``l2_eff / 2 sum ||W||^2``) times the
        batch length. ``n_seen``: the rows those steps covered. ``status``, a value of
        ``nnlib._codes.EPOCH_STATUS``:

        ================== ==========================================================
        0 ok               every step ran
        1 nonfinite_loss   the next step's loss is NaN/inf: not applied, loop stopped
        2 nonfinite_grad.  a bias gradient is NaN/inf: not applied, loop stopped
        3 nonfinite_update (``check_updates``) the step after ``steps`` was applied and
                           made a weight or state non-finite
        4 bad_label        a label outside [0, c) (changed during the call): not applied
        5 bad_order        a row index outside [0, N) (changed during the call): not
                           applied
        ================== ==========================================================

        ``finite``: every weight, bias and state is finite at the end.
        ``setup.steps_taken`` grows by the updates applied.

    Raises
    ------
    RuntimeError
        The setup is in use by another thread (one call at a time per setup).

    Examples
    --------
    See :class:`EpochSetup`.
    """
    cdef EpochC* c = &setup.c
    cdef const long long[::1] o
    cdef Py_ssize_t n
    cdef Py_ssize_t steps_cap
    cdef long long s0 = operator.index(step0)
    cdef bint check = check_updates
    cdef double sum0 = loss_sum
    cdef Tally t
    cdef const long long* op
    if order is None:
        raise TypeError("order must be an integer array of row indices, not None")
    if not (isinstance(order, np.ndarray) and order.dtype == np.int64):
        order = np.asarray(order)
        if order.dtype.kind not in "iu":
            raise TypeError(f"order must hold integer row indices; got dtype "
                            f"{order.dtype}")
        order = order.astype(np.int64)
    o = order
    n = o.shape[0]
    op = &o[0] if n > 0 else NULL
    steps_cap = n + 1 if max_steps < 0 else max_steps
    if not c.has_opt:
        raise ValueError("this EpochSetup has no optimizer config (set_optimizer)")
    if setup.workspace.rows < min(c.batch_size, n):
        raise ValueError(f"batches of {min(c.batch_size, n)} rows exceed the workspace's "
                         f"{setup.workspace.rows}")
    if s0 < 0:
        raise ValueError(f"step0 must be >= 0; got {step0}")
    # the work of the rows and steps this call can run (gil.pxd): per row its products and
    # its own passes, per step the update of every weight and the step's own cost; on
    # several threads the OpenMP loops let the GIL go anyway
    cdef double rows = min(<double>n, <double>steps_cap * c.batch_size)
    cdef double steps = ceil(rows / c.batch_size) if c.batch_size > 0 else rows
    cdef bint keep = keeps_gil(_rows_values(c.net, rows)
                               + steps * (c.n_weights + STEP_VALUES), flush_team(c))
    if keep:
        ok = _order_in_range(op, n, c.N)
    else:
        with nogil:
            ok = _order_in_range(op, n, c.N)
    if not ok:
        raise ValueError(f"order must hold row indices in [0, {c.N})")
    # cut the step's large products for BLAS's small-matrix kernels only when BLAS runs
    # on one thread: those kernels are single-threaded (see mm_pieces)
    cdef bint pieces = _blas.get_num_threads() == 1
    # with BLAS on several threads and the loop's passes on one, the large passes go to
    # BLAS's threads, which would spin idle through them (pass_blocks.pxd)
    cdef int pool = _blas.pool_threads() if c.n_threads == 1 and not pieces else 1
    # read once per call (nnlib.set_flush_denormal); set and put back around the nogil
    # loop only, which cannot raise: no Python code runs in the mode
    cdef bint flush = _denormals._flush
    setup._dropout_buffers()
    setup._enter()
    try:
        c.pool_threads = pool
        setup._transposed_copies()
        setup._padded_copies(check, steps)
        if setup.workspace.dtype == np.float64:
            t = _epoch(c, <double*>NULL, op, n, s0, steps_cap, check, sum0, pieces, flush,
                       keep)
        else:
            t = _epoch(c, <float*>NULL, op, n, s0, steps_cap, check, sum0, pieces, flush,
                       keep)
        # updates applied by every run_epoch on this setup, counted before Python runs
        # again: an interrupt that arrives as the call returns cannot lose them
        taken = t.steps + (1 if t.status == STATUS_NONFINITE_UPDATE else 0)
        setup.steps_taken += taken
        if counters is not None:
            for counter in counters:
                counter.step = s0 + taken
    finally:
        setup.busy = False
        c.pool_threads = 1
        c.WT = NULL
        c.Wloop, c.ldw = c.W, setup.network.shape.sizes + 1
    return t.total, t.seen, t.steps, t.status, t.finite


cdef Tally _epoch_in_mode(EpochC* c, floating* tag, const long long* order, Py_ssize_t n,
                          long long step0, Py_ssize_t max_steps, bint check_updates,
                          double loss_sum0, bint pieces, bint flush) noexcept nogil:
    # epoch_loop with denormals flushed on its threads if ``flush`` (nothing else runs in
    # the mode)
    cdef Tally t
    if flush:
        nnlib_flush_enter(flush_team(c))
    t = epoch_loop(c, tag, order, n, step0, max_steps, check_updates, loss_sum0, pieces)
    if flush:
        nnlib_flush_exit(flush_team(c))
    return t


cdef Tally _epoch(EpochC* c, floating* tag, const long long* order, Py_ssize_t n,
                  long long step0, Py_ssize_t max_steps, bint check_updates,
                  double loss_sum0, bint pieces, bint flush, bint keep) noexcept:
    # _epoch_in_mode, letting the GIL go unless ``keep`` (gil.pxd)
    cdef Tally t
    if keep:
        return _epoch_in_mode(c, tag, order, n, step0, max_steps, check_updates,
                              loss_sum0, pieces, flush)
    with nogil:
        t = _epoch_in_mode(c, tag, order, n, step0, max_steps, check_updates, loss_sum0,
                           pieces, flush)
    return t


cdef double _rows_values(const NetShape* net, double rows) noexcept nogil:
    # gil.pxd's values of ``rows`` training rows: the multiply-adds of their forward and
    # backward products (three per weight), and per row ROW_VALUES and one per unit
    cdef double macs = 0.0, units = net.sizes[0]
    cdef int l
    for l in range(net.n_layers):
        macs += 3.0 * net.sizes[l] * net.sizes[l + 1]
        units += net.sizes[l + 1]
    return rows * (product_values(macs) + ROW_VALUES + units)


cdef bint _copy_labels(const long long* src, long long* dst, Py_ssize_t n,
                       long long n_classes) noexcept nogil:
    """dst = src; whether every copied label is in [0, n_classes)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        dst[i] = src[i]
        bad = bad | (dst[i] < 0) | (dst[i] >= n_classes)
    return bad == 0


def _input_grad_by_product(const floating[:, ::1] dZn, const floating[:, ::1] Wn,
                           const floating[:, ::1] H, int kind, double param=0.0):
    """Test hook: ``act_backward_product`` (what the backward pass uses under a layer at
    most NARROW_K wide), returning (dZ, db) for the layer below, whose dH = dZn Wn^T is
    each element's k products added in order by fused multiply-adds (bitwise BLAS's
    product where BLAS adds that way, as OpenBLAS's SkylakeX kernels do)."""
    cdef Py_ssize_t n = dZn.shape[0], k = dZn.shape[1], c = Wn.shape[0]
    if Wn.shape[1] != k or H.shape[0] != n or H.shape[1] != c or n < 1 or c < 1 or k < 1:
        raise ValueError("shapes: dZn (n, k), Wn (c, k), H (n, c), all >= 1")
    if not 0 <= kind < N_ACTIVATION_CODES:
        raise ValueError(f"unknown activation code {kind}")
    dt = np.float64 if floating is double else np.float32
    dZ = np.empty((n, c), dt)
    db = np.empty(c, dt)
    wt = np.empty(c * k, dt)
    work = np.empty(c)
    cdef floating[:, ::1] z = dZ
    cdef floating[::1] b = db, w = wt
    cdef double[::1] wk = work
    with nogil:
        act_backward_product(&H[0, 0], &dZn[0, 0], &Wn[0, 0], &w[0], &z[0, 0], &b[0],
                             &wk[0], n, c, k, kind, param)
    return dZ, db


cdef int grad_pass(EpochC* c, floating* tag, const long long* labels, floating** dW,
                   floating** db, bint grads, double* loss_out, bint pieces, bint train,
                   uint64_t t) noexcept nogil:
    cdef NetShape* s = c.net
    cdef int l, status
    cdef double pen = 0.0
    cdef const floating* X = <const floating*>c.X
    cdef const floating* yt = <const floating*>c.yt if c.tcols > 0 else <floating*>c.lwork
    cdef floating** W = <floating**>c.W
    cdef const CsrRows* xsp = &c.xs if c.sparse else NULL     # all rows: xs.rows NULL
    cdef const DropC* dr = &c.drop if train and c.has_drop else NULL
    status = forward_backward(s, W, <floating**>c.b, X, c.N, <floating**>c.H,
                              <floating**>c.dZ, db, dW, c.work, c.loss_kind, yt, labels,
                              c.margin, <floating*>c.lwork, c.n_threads, 1, loss_out, True,
                              grads, <const floating*>c.sw, c.sw_total, xsp, pieces, dr,
                              t, False, NULL, s.sizes + 1, NULL)
    if grads:
        weight_grads(s, W, X, c.N, <floating**>c.H, <floating**>c.dZ, dW, c.l2, xsp,
                     pieces, dr)
    loss_out[0] = loss_out[0] * c.loss_scale    # the reported data loss, not the gradient
    if c.l2 != 0.0:
        for l in range(s.n_layers):
            pen = pen + sum_squares_from(0.0, W[l], s.sizes[l] * s.sizes[l + 1])
        loss_out[0] = loss_out[0] + 0.5 * c.l2 * pen
    return status


cdef int _grad_pass_in_mode(EpochC* c, floating* tag, const long long* labels,
                            floating** dW, floating** db, bint grads, double* loss_out,
                            bint pieces, bint train, uint64_t t, bint flush) noexcept nogil:
    # grad_pass with denormals flushed on its threads if ``flush``
    cdef int status
    if flush:
        nnlib_flush_enter(flush_team(c))
    status = grad_pass(c, tag, labels, dW, db, grads, loss_out, pieces, train, t)
    if flush:
        nnlib_flush_exit(flush_team(c))
    return status


cdef int _grad_pass(EpochC* c, floating* tag, const long long* labels, floating** dW,
                    floating** db, bint grads, double* loss_out, bint pieces, bint train,
                    uint64_t t, bint flush, bint keep) noexcept:
    # _grad_pass_in_mode, letting the GIL go unless ``keep`` (gil.pxd)
    cdef int status
    if keep:
        return _grad_pass_in_mode(c, tag, labels, dW, db, grads, loss_out, pieces, train,
                                  t, flush)
    with nogil:
        status = _grad_pass_in_mode(c, tag, labels, dW, db, grads, loss_out, pieces,
                                    train, t, flush)
    return status


def loss_grad(EpochSetup setup not None, dWs, dbs, grads=True, train_step=None,
              batch_rows=None):
    """Mean loss over all rows of ``setup.X`` (times ``loss_scale``) plus
    ``l2/2 sum ||W||^2``, and its gradient (of the unscaled loss).

    Parameters
    ----------
    setup : EpochSetup
        Its workspace must hold all N rows; ``l2`` is used as given (never per batch).
    dWs, dbs : lists of arrays shaped like ``setup.weights`` / ``setup.biases``
        Written with ``dL/dW_l`` (L2 term included) and ``dL/db_l``.
    grads : bool
        False: forward pass and loss only (dWs, dbs untouched; the output is left in
        ``setup.workspace.H[-1][:N]``).
    train_step : int >= 1 or None
        None: the model at inference (dropout off). An update number t: the network in
        training with the dropout masks ``run_epoch`` draws at update t (row i of X being
        row i of the batch): so a one-batch ``run_epoch`` over ``arange(N)`` with
        ``step0 = t - 1`` steps along this gradient.
    batch_rows : (N,) int array or None
        With ``train_step``: row i of X is row ``batch_rows[i]`` of update t's batch and
        takes that row's masks (None: row i). So the rows of one batch split over several
        calls (nnlib.dask's workers) get the masks the whole batch would.

    Returns
    -------
    (loss, status)
        status 0, 1 (the loss is not finite) or 2 (a gradient is not finite); the
        gradients are computed either way.
    """
    cdef EpochC* c = &setup.c
    cdef double loss = 0.0
    cdef int status
    cdef bint g = grads
    cdef _Pointers pdW, pdb
    cdef Py_ssize_t l
    cdef bint train = train_step is not None
    cdef uint64_t t = 0
    if train:
        t = check_dropout_args(0.0, 0, train_step, 0)[2]
        if train_step < 1:
            raise ValueError(f"train_step must be >= 1 (an update number); got "
                             f"{train_step}")
        setup._dropout_buffers()
    mask_rows = check_batch_rows(batch_rows, c.N, train_step)
    cdef const long long* mrp = NULL        # kept alive by mask_rows
    if mask_rows is not None:
        mrp = <const long long*>cnp.PyArray_DATA(mask_rows)
    if c.N < 1:
        raise ValueError("loss_grad needs at least one row")
    if setup.sample_weight is not None:
        check_weight_total(setup.sample_weight, f"the sample weights of loss_grad's "
                                                f"{c.N} rows")
    if setup.workspace.rows < c.N:
        raise ValueError(f"loss_grad over {c.N} rows needs a workspace of as many; it has "
                         f"{setup.workspace.rows}")
    dWs, dbs = list(dWs), list(dbs)
    if len(dWs) != len(setup.weights) or len(dbs) != len(setup.biases):
        raise ValueError("dWs and dbs need one array per layer")
    for l in range(len(dWs)):
        _check_array(dWs[l], f"dWs[{l}]", setup.X.dtype, setup.weights[l].shape, True)
        _check_array(dbs[l], f"dbs[{l}]", setup.X.dtype, setup.biases[l].shape, True)
    pdW, pdb = _Pointers(dWs), _Pointers(dbs)
    cdef bint keep = keeps_gil(_rows_values(c.net, c.N), c.n_threads)
    cdef bint ok = True
    cdef long long* dst
    labels = setup.y_label
    if c.label_loss:        # copied and checked here: the caller may change its array
        labels = setup.workspace.yl[:c.N]
        # one loop, not np.copyto/min/max: NumPy lets the GIL go briefly in those (over
        # 500 values), and a waiting thread starves on brief releases (gil.pxd)
        dst = <long long*>cnp.PyArray_DATA(labels)
        if keep:
            ok = _copy_labels(c.yl, dst, c.N, c.n_out)
        else:
            with nogil:
                ok = _copy_labels(c.yl, dst, c.N, c.n_out)
        if not ok:
            raise ValueError(f"y_label changed after the setup was built: it now holds "
                             f"{int(labels.min())}..{int(labels.max())}, outside "
                             f"[0, {c.n_out})")
    cdef const long long* lp = <const long long*>cnp.PyArray_DATA(labels)
    cdef bint pieces = _blas.get_num_threads() == 1        # as in run_epoch
    cdef bint flush = _denormals._flush                     # as in run_epoch
    setup._enter()
    try:
        c.drop.rows = mrp       # this call's only: the setup is ours until busy clears
        if setup.workspace.dtype == np.float64:
            status = _grad_pass(c, <double*>NULL, lp, <double**>pdW.p, <double**>pdb.p, g,
                                &loss, pieces, train, t, flush, keep)
        else:
            status = _grad_pass(c, <float*>NULL, lp, <float**>pdW.p, <float**>pdb.p, g,
                                &loss, pieces, train, t, flush, keep)
    finally:
        c.drop.rows = NULL
        setup.busy = False
    return loss, status
