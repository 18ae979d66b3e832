# cython: language_level=3
"""Row-level output maps and losses: layer 1 of the output-map and loss kernels.

Design note
-----------
Everything here is ``cdef inline ... noexcept nogil`` on raw pointers to one row of
``c`` values, written once for the fused ``floating`` type. Three users ``cimport`` it, so
the math of softmax, sparsemax and every loss exists in exactly one place:

* ``output_maps.pyx``  softmax / log_softmax / sparsemax and their vjps (row by row, or
                       several short rows per ``exp_shifted_rows`` block);
* ``losses.pyx``       the functional losses, one ``loss_grad_batch`` call per chunk of
                       rows;
* ``train.pyx``        the compiled training loop, one ``loss_grad_batch`` call per batch.

All reductions (sums of exponentials, cumulative sums of the sorted row, the loss itself)
accumulate in double whatever the array dtype; per-element values are computed in double
and rounded once when stored.

exp, log1p and log are ``vmath.h``'s branch-free nn_exp / nn_log1p_unit / nn_log pieces
(see ``scalar.pxd``: < 1 ulp like libm's, but inlined and vectorized; libm's log in the
Poisson loop kept it scalar, 5x slower than NumPy); the logs of the row sums of a block
of short rows (``exp_shifted_rows``) are nn_log too, taken in one vectorized loop, while
a row longer than a block (``softmax_row``) takes libm's log of its one sum. The loops
that feed a sum are split in blocks of ``VEC_BLOCK`` (evaluate into a stack buffer,
vectorized; then add in order), so the sums are the same sequential double sums as
before, independent of ``n_threads``. The softmax rows' exps
for float32 results are vmath.h's float32 form (``exp_nonpositive``: 1.5e-11 relative,
still in double; 2.5e-4 of a float32 ulp), as the float32 activations' are.

Softmax cross-entropy of rows of at most ``NN_CE_SHORT_MAX_C`` classes (an output layer
of 10) runs ``ce_rows.h`` where it is built (AVX-512): a row in one or two vectors from
its load to its shifted values, its sum and gradient in one pass, a masked vector per 8
classes with no scalar tail; the exps and logs stay this file's loops, so every value is
the one ``exp_shifted_rows`` and its gradient loop give (tests/test_ce_rows.py compares
the two bit for bit; a row with NaNs of two payloads keeps NaN everywhere, its gradient's
payload fixed by a rule where the generic loop's depends on the lane: see the header).

The elementwise losses (logistic, Poisson) take all ``n * c`` outputs of an unweighted
batch through one blocked loop (``logistic_rows``, ``poisson_rows``): their rows are
often one or a few values (a binary classifier has one score per sample), and a call per
row would leave the vectorized loop a scalar tail plus the call. Each output's value is
the one it would have alone, and the losses are added in a fixed index order, so the
blocks change no bit of a sum or a gradient. The logistic loop comes in three forms (loss
alone, gradient alone, both) from one inlined ``logistic_term``: a form that stores one
result lets GCC drop the other's arithmetic (the loss's log1p, the gradient's division).

Numerical tricks
----------------
* softmax / log-sum-exp: shift by the row maximum ``m`` before ``exp`` so every argument
  is <= 0 (no overflow; the largest term is exactly 1, so the sum is >= 1 and its log is
  well conditioned): ``lse(z) = m + log(sum_j exp(z_j - m))``. softmax([1e4, 0]) is then
  exactly [1, 0]. (The standard trick; e.g. Blanchard, Higham & Higham 2021, "Accurately
  computing the log-sum-exp and softmax functions", IMA J. Numer. Anal. 41(4).)
* cross-entropy ``-log softmax_y(z) = lse(z) - z_y`` is computed from the log-sum-exp,
  never as ``-log(p_y)``, which would underflow to ``-log 0 = inf`` for large margins.
* sparsemax (Martins & Astudillo 2016, "From Softmax to Sparsemax", ICML, Algorithm 1):
  the Euclidean projection of ``z`` onto the simplex is ``p_j = max(z_j - tau, 0)`` with
  ``tau = (sum_{j<=k} z_(j) - 1) / k``, ``z_(1) >= z_(2) >= ...`` sorted and
  ``k = max{k : 1 + k z_(k) > sum_{j<=k} z_(j)}``. The row is sorted into a caller-given
  buffer (insertion sort for short rows, heapsort otherwise: O(c log c), in place, no
  allocation, no comparator callbacks) and the cumulative sums run in double on the
  shifted values ``z - m`` (tau is shift-equivariant), so large offsets lose no precision.
* the sparsemax loss of Martins & Astudillo (2016), written in the Fenchel-Young form of
  Blondel, Martins & Niculae (2020, JMLR 21(35)), which is shift-invariant so it can use
  ``u = z - m``:  ``L = 1/2 + sum_j p_j (u_j - p_j / 2) - u_y  (>= 0)``.
* Poisson loss (half the Poisson deviance with the log link, scikit-learn's MLPRegressor
  ``loss="poisson"``): on the log-mean ``z``, ``L = e^z - t z + t log t - t`` (``0 log 0 = 0``),
  which is scikit-learn's ``xlogy(t, t / e^z) - t + e^z`` without forming ``t / e^z``
  (no overflow or underflow of the ratio); gradient ``e^z - t``, second derivative
  ``e^z > 0`` (convex in z; verify/losses.py derives both). ``e^z`` overflows to inf for
  z > ~709: beyond the fit's neighbourhood the loss is then inf (selected as such past
  NN_EXP_ARG_MAX, where a fused ``e^z - t`` would stay finite) and the step is refused.
  The four terms cancel near the fit (z ~ log t), where the loss is small: it is
  computed as ``t phi(d)``, ``d = z - log t``, ``phi(d) = e^d - 1 - d``, for
  ``|d| <= NN_POISSON_NEAR`` (2 ln2) from nn_exp's polynomial at ``d/4`` and two
  doublings of expm1 (a sum of positive terms, see ``poisson_rows``), and beyond as
  ``e^z - t (1 + d)`` arranged so that at most ~1.3 bits cancel. ``log t`` is ``k ln2 + log1p(f)`` (vmath.h's nn_log_reduce and fdlibm's
  kernel), and ``d = (z - k ln2_hi) - (log1p(f) + k ln2_lo)``
  is as accurate as ``log1p(f)``: an absolute error of ~1e-16 however large ``|log t|``
  is. (The same idea as the "deviance residual" forms of GLM software, e.g. R's
  ``dpois_raw`` via ``bd0``, Loader 2000, "Fast and accurate computation of binomial
  probabilities".) The loss-free gradient (``grad_batch``) takes no log at all.
* logistic loss: ``log(1 + e^-s)`` with ``s = z`` for y = 1 and ``s = -z`` for y = 0,
  i.e. ``softplus(-s) = max(-s, 0) + log1p(e^-|z|)``: exp never overflows, log1p keeps
  the small losses of confident right answers, and one ``exp(-|z|)`` serves loss and
  gradient (``sigma(z) - y``, written as ``-sigma(-z)`` for y = 1 to avoid cancellation).
  No ``softplus(z) - y z``, which cancels for large |z|. Targets other than 0 and 1 (soft
  labels) use ``(1 - y) softplus(z) + y softplus(-z)`` with ``scalar.pxd``'s softplus.

NaN anywhere in a row gives NaN for that row (loss and gradient), as NumPy would.

Subgradient conventions (hinge): ``h = margin + max_{j != y} z_j - z_y``; the loss is
``max(0, h)``. The subgradient used is ``e_{j*} - e_y`` when ``h >= 0`` and 0 when ``h < 0``,
where ``j*`` is the FIRST index attaining the maximum over ``j != y``. At ``h = 0`` both 0
and ``e_{j*} - e_y`` are subgradients; taking the latter means that with ``margin = 0`` (the
perceptron criterion) a tie between the true class and another counts as a mistake, so the
perceptron also learns from the all-zero initialization.
"""
from libc.math cimport INFINITY, fabs, log
from cython cimport floating

from nnlib._kernels.scalar cimport (nn_exp, nn_log1p_unit, nn_select, nn_log_reduce,
                                    nn_log_kernel, nn_exp_g, NN_LN2_HI, NN_LN2_LO,
                                    nn_exp_neg_f32_half_bounded, nn_log)

# The loss codes live in nnlib/_codes.py (codes.pxd is rendered from it).
from nnlib._kernels.codes cimport (LossKind, LOSS_SOFTMAX_CROSS_ENTROPY, LOSS_SQUARED_ERROR,
                                   LOSS_LOGISTIC, LOSS_SPARSEMAX, LOSS_HINGE, LOSS_POISSON)

# The branch thresholds live in nnlib/_paths.py (paths.pxd is rendered from it; verify
# runs every kernel on both sides of each):
# SPARSEMAX_INSERTION_MAX: rows up to this length are sorted by insertion sort (fewer
#   moves than heapsort for the handful of classes typical of an output layer), longer
#   ones by heapsort.
# VEC_BLOCK: elementwise work whose results are summed runs in blocks of this many values:
#   one loop evaluates them into a stack buffer (vectorized: nn_exp etc. are branch-free
#   inline C), a second adds them up in order. One loop doing both would not vectorize,
#   because a double sum may not be reordered (no -ffast-math), and the order is what
#   keeps results bitwise reproducible.
# CE_MULTIROW_MIN_ROWS: softmax cross-entropy packs VEC_BLOCK // c rows per block when
#   that is at least this many (exp_shifted_rows; output_maps.pyx packs them from one
#   row of up to VEC_BLOCK values on).
from nnlib._kernels.paths cimport SPARSEMAX_INSERTION_MAX, VEC_BLOCK, CE_MULTIROW_MIN_ROWS
# NN_POISSON_NEAR: the Poisson loss switches from t phi(d) (phi from nn_exp's polynomial
#   at d/4) to forms of e^z - t (1 + d) beyond |d| = |z - log t| = 2 ln2 (d/4 = ln2/2:
#   the range of the polynomial).
# NN_EXP_ARG_MAX: nn_exp caps its argument there (710) and relies on its last product
#   overflowing; fused into e^z - t (GCC contracts it with -march=native) that product
#   never rounds, so beyond the cap e^z - t would be e^710 - t, finite for t ~ 1e308: the
#   Poisson rows select inf there themselves.
cdef extern from "paths.h":
    const double NN_POISSON_NEAR
    const double NN_EXP_ARG_MAX

# The maxima of a block of short rows, a vector at a time (NN_ROWS_MAX 1 where built:
# AVX-512), short_row_max's values wherever it does not leave a row to it (see the header)
cdef extern from "row_max.h" nogil:
    const int NN_ROWS_MAX
    void nn_rows_max_f(const float* z, Py_ssize_t nr, Py_ssize_t c, double* rmax)
    void nn_rows_max_d(const double* z, Py_ssize_t nr, Py_ssize_t c, double* rmax)

# Softmax cross-entropy's passes over a block of rows of at most NN_CE_SHORT_MAX_C classes
# (NN_CE_SHORT 1 where built: AVX-512), bitwise those of exp_shifted_rows and the
# gradient loop of softmax_cross_entropy_rows (see the header)
cdef extern from "ce_rows.h" nogil:
    const int NN_CE_SHORT
    const int NN_CE_SHORT_MAX_C
    Py_ssize_t nn_ce_shift_rows_f(const float* z, Py_ssize_t nr, Py_ssize_t c,
                                  double* rmax, double* e)
    Py_ssize_t nn_ce_shift_rows_d(const double* z, Py_ssize_t nr, Py_ssize_t c,
                                  double* rmax, double* e)
    void nn_ce_row_sums(const double* e, Py_ssize_t nr, Py_ssize_t c, double* rsum)
    void nn_ce_grad_rows_f(const double* e, Py_ssize_t nr, Py_ssize_t c,
                           const long long* y, double scale, const double* rinv, float* dz)
    void nn_ce_grad_rows_d(const double* e, Py_ssize_t nr, Py_ssize_t c,
                           const long long* y, double scale, const double* rinv,
                           double* dz)


# ---------------------------------------------------------------------------------------
# softmax and log-sum-exp
# ---------------------------------------------------------------------------------------

cdef inline double row_max(const floating* z, Py_ssize_t c) noexcept nogil:
    """max_j z_j, or NaN when the row holds a NaN (so the NaN reaches every output)."""
    cdef double m = z[0], v
    cdef Py_ssize_t j
    for j in range(c):
        v = z[j]
        if v != v:
            return v
        if v > m:
            m = v
    return m


cdef inline double short_row_max(const floating* z, Py_ssize_t c) noexcept nogil:
    """row_max (the same value, the same NaN) without a branch per value, for the short
    rows of exp_shifted_rows: there the running maximum changes at unpredictable places
    (a mispredicted branch per few values), where in a long row it rarely does and
    row_max's branches cost less than a max chain."""
    cdef double m = z[0], v
    cdef bint nan = False
    cdef Py_ssize_t j
    for j in range(c):
        v = z[j]
        nan = nan | (v != v)
        m = v if v > m else m
    if nan:
        return row_max(z, c)
    return m


cdef inline void redo_unsure_maxima(const floating* z, Py_ssize_t nr, Py_ssize_t c,
                                    double* rmax, double* e) noexcept nogil:
    """rmax[r] = short_row_max of row r for each r < nr whose vector maximum rmax[r] is a
    NaN or a zero, and, where ``e`` is not NULL, that row's shifted values
    e[r * c + j] = z_j - m again: a vector maximum cannot tell which NaN (payload) or
    which zero (sign) short_row_max's chain of compares keeps."""
    cdef Py_ssize_t r, j
    cdef double m
    cdef const floating* zr
    cdef double* er
    for r in range(nr):
        m = rmax[r]
        if not (m < 0 or m > 0):
            zr = z + r * c
            m = short_row_max(zr, c)
            rmax[r] = m
            if e != NULL:
                er = e + r * c
                for j in range(c):
                    er[j] = zr[j] - m


cdef inline void rows_max(const floating* z, Py_ssize_t nr, Py_ssize_t c,
                          double* rmax) noexcept nogil:
    """rmax[r] = short_row_max of row r (c values) for r < nr, bit for bit: with AVX-512
    row_max.h's vector maxima, and short_row_max itself for a row whose maximum is a NaN
    (its NaN) or a zero (its first zero)."""
    cdef Py_ssize_t r
    if not NN_ROWS_MAX:
        for r in range(nr):
            rmax[r] = short_row_max(z + r * c, c)
        return
    if floating is float:
        nn_rows_max_f(z, nr, c, rmax)
    else:
        nn_rows_max_d(z, nr, c, rmax)
    redo_unsure_maxima(z, nr, c, rmax, NULL)


cdef inline void exp_nonpositive(double* v, Py_ssize_t n,
                                 const floating* dtype_of) noexcept nogil:
    """v_k = exp(v_k) in place for n arguments <= 0 (or NaN), to the accuracy results of
    ``dtype_of``'s dtype need (only its type is used: it picks the specialization).

    float64: nn_exp (< 1 ulp). float32: nn_exp_neg_f32_half_bounded (vmath.h: 1.5e-11
    relative, 2.5e-4 of a float32 ulp; e^-708 instead of e^x below -708), about 2.2x
    fewer vector operations. The float32 callers divide the exps by their sum s >= 1 or
    add them into it, and round to float32: a value below e^-708 gives the float32 0
    either way and moves s by nothing (softmax's vjp multiplies the upstream gradient
    by the softmax already rounded to the dtype, so an infinite g meets the same 0).
    """
    cdef Py_ssize_t k
    if floating is float:
        for k in range(n):
            v[k] = nn_exp_neg_f32_half_bounded(v[k])
    else:
        for k in range(n):
            v[k] = nn_exp(v[k])


cdef inline double exp_shifted_row(const floating* z, Py_ssize_t c, double m,
                                   floating* out) noexcept nogil:
    """out_j = exp(z_j - m); returns sum_j exp(z_j - m) accumulated in double, in order.

    ``out`` may be NULL (only the sum is wanted)."""
    cdef double buf[VEC_BLOCK]
    cdef double s = 0.0
    cdef Py_ssize_t j, j0, nb, blk
    for blk in range((c + VEC_BLOCK - 1) // VEC_BLOCK):
        j0 = blk * VEC_BLOCK
        nb = min(<Py_ssize_t>VEC_BLOCK, c - j0)
        if floating is float:               # exp_nonpositive's, fused with z - m
            for j in range(nb):
                buf[j] = nn_exp_neg_f32_half_bounded(z[j0 + j] - m)
        else:
            for j in range(nb):
                buf[j] = nn_exp(z[j0 + j] - m)  # argument <= 0: never overflows
        for j in range(nb):
            s += buf[j]
        if out != NULL:
            for j in range(nb):
                out[j0 + j] = <floating>buf[j]
    return s


cdef inline void exp_padded(double* e, Py_ssize_t nk,
                            const floating* dtype_of) noexcept nogil:
    """exp_nonpositive of e[:nk], padded first with zeros to a whole number of vectors of
    8 (e holds that many; the padding's exps, 1, are for no one to read), so the loop
    has no scalar tail."""
    while nk % 8 != 0:
        e[nk] = 0.0
        nk += 1
    exp_nonpositive(e, nk, dtype_of)        # argument <= 0: never overflows


cdef inline Py_ssize_t rows_per_block(Py_ssize_t c) noexcept nogil:
    """How many rows of ``c`` values exp_shifted_rows takes at a time: VEC_BLOCK // c when
    that is at least CE_MULTIROW_MIN_ROWS, else 0 (the rows then go one at a time)."""
    cdef Py_ssize_t per = VEC_BLOCK // c if c > 0 else 0
    return per if per >= CE_MULTIROW_MIN_ROWS else 0


cdef inline void exp_shifted_rows(const floating* z, Py_ssize_t nr, Py_ssize_t c,
                                  double* rmax, double* rsum, double* e,
                                  double* rlog) noexcept nogil:
    """exp_shifted_row of nr short rows at once (nr * c <= VEC_BLOCK), bitwise.

    Writes rmax[r] = row_max of row r, e[r * c + j] = exp(z[r * c + j] - rmax[r]),
    rsum[r] = their sum in order and, unless ``rlog`` is NULL, rlog[r] = log rsum[r]
    (nn_log, as the one-row callers take it: one vectorized loop, not a libm call per
    row); ``e`` holds VEC_BLOCK + 8 values. Row by row, c = 10 leaves vectors half
    filled and a scalar tail per row (a scalar exp costs about what a vector of them
    does), so the rows' arguments are laid end to end and go through one exp loop. They
    are padded with zeros to a multiple of 8 values (their exps, 1, are never read), so
    the loop runs in whole vectors with no scalar tail (a batch-1 step's 10 scores: one
    vector and two scalar exps otherwise). The maxima are ``rows_max``'s: with AVX-512 a
    vector at a time, where short_row_max's one chain of compares per row took a quarter
    of the digits net's batch-32 loss.
    """
    cdef Py_ssize_t r, j
    cdef double m, s
    rows_max(z, nr, c, rmax)
    for r in range(nr):
        m = rmax[r]
        for j in range(c):
            e[r * c + j] = z[r * c + j] - m
    exp_padded(e, nr * c, z)
    for r in range(nr):
        s = 0.0
        for j in range(c):
            s += e[r * c + j]
        rsum[r] = s
    if rlog != NULL:
        for r in range(nr):
            rlog[r] = nn_log(rsum[r])


cdef inline double softmax_row(const floating* z, Py_ssize_t c,
                               floating* out) noexcept nogil:
    """out = softmax(z) (``out`` may alias ``z``); returns log-sum-exp(z)."""
    cdef double m = row_max(z, c)
    cdef double s = exp_shifted_row(z, c, m, out)
    cdef double inv = 1.0 / s              # s >= 1: the max term is exp(0) = 1
    cdef Py_ssize_t j
    for j in range(c):
        out[j] = <floating>(out[j] * inv)
    return m + log(s)


# ---------------------------------------------------------------------------------------
# sparsemax: sort, threshold tau, projection
# ---------------------------------------------------------------------------------------

cdef inline void _sift_down_min(floating* a, Py_ssize_t root, Py_ssize_t end) noexcept nogil:
    # Min-heap sift-down on a[0:end]: a min-heap popped to the back sorts descending.
    cdef Py_ssize_t child
    cdef floating tmp
    while 2 * root + 1 < end:
        child = 2 * root + 1
        if child + 1 < end and a[child + 1] < a[child]:
            child += 1
        if a[child] < a[root]:
            tmp = a[root]
            a[root] = a[child]
            a[child] = tmp
            root = child
        else:
            return


cdef inline void sort_descending(floating* a, Py_ssize_t c) noexcept nogil:
    """Sort a[0:c] in place, largest first (no NaN allowed: callers check first)."""
    cdef Py_ssize_t i, j, start, end
    cdef floating v, tmp
    if c <= SPARSEMAX_INSERTION_MAX:
        for i in range(1, c):
            v = a[i]
            j = i
            while j > 0 and a[j - 1] < v:
                a[j] = a[j - 1]
                j -= 1
            a[j] = v
        return
    start = c // 2
    while start > 0:                       # heapify
        start -= 1
        _sift_down_min(a, start, c)
    end = c
    while end > 1:                         # pop the minimum to the back
        end -= 1
        tmp = a[0]
        a[0] = a[end]
        a[end] = tmp
        _sift_down_min(a, 0, end)


cdef inline double sparsemax_tau(const floating* z, Py_ssize_t c, floating* work,
                                 double* shift) noexcept nogil:
    """The sparsemax threshold of row ``z``, relative to the row maximum.

    Writes ``m = max_j z_j`` to ``shift`` and returns ``tau_u = tau - m``, so that
    ``sparsemax(z)_j = max((z_j - m) - tau_u, 0)``: working relative to ``m`` keeps the
    result exact where it can be (a row of c equal values gives exactly 1/c whatever
    their size). ``work`` (length >= c; may alias an output row but not ``z``) receives
    ``z`` sorted descending. A row holding NaN gives NaN for both.
    """
    cdef Py_ssize_t j, k = 1
    cdef double m, u, cumsum = 0.0, cumsum_k = 0.0
    for j in range(c):
        if z[j] != z[j]:
            shift[0] = z[j]
            return z[j]
        work[j] = z[j]
    sort_descending(work, c)
    m = work[0]
    shift[0] = m
    # On u = z - m: u_(1) = 0, so the test 1 + j u_(j) > cumsum_j holds at j = 1 and the
    # support is never empty.
    for j in range(c):
        u = work[j] - m
        cumsum += u
        if 1.0 + (j + 1) * u > cumsum:
            k = j + 1
            cumsum_k = cumsum
        else:
            break                          # the test fails for every later j too
    return (cumsum_k - 1.0) / k


cdef inline double clip_positive(double d) noexcept nogil:
    # max(d, 0) that keeps NaN (as NumPy's maximum does)
    return d if d > 0.0 else (0.0 if d <= 0.0 else d)


cdef inline void sparsemax_row(const floating* z, Py_ssize_t c, floating* out,
                               floating* work) noexcept nogil:
    """out = sparsemax(z). ``work`` (length >= c) may be ``out`` itself."""
    cdef double m
    cdef double tau_u = sparsemax_tau(z, c, work, &m)
    cdef Py_ssize_t j
    for j in range(c):
        out[j] = <floating>clip_positive((z[j] - m) - tau_u)


# ---------------------------------------------------------------------------------------
# per-row losses: return the loss of one sample, write dz = scale * dloss/dz (if dz)
# ---------------------------------------------------------------------------------------

cdef inline double softmax_cross_entropy_row(const floating* z, Py_ssize_t c,
                                             long long y, double scale,
                                             floating* dz) noexcept nogil:
    # L = lse(z) - z_y ;  dL/dz = softmax(z) - e_y
    cdef double m = row_max(z, c)
    cdef double s = exp_shifted_row(z, c, m, dz)
    cdef double inv
    cdef Py_ssize_t j
    if dz != NULL:
        inv = 1.0 / s
        for j in range(c):
            dz[j] = <floating>(scale * (dz[j] * inv - (1.0 if j == y else 0.0)))
    return (m - z[y]) + nn_log(s)


cdef inline double ce_short_rows(const floating* z, Py_ssize_t nr, Py_ssize_t c,
                                 const long long* y, double scale, floating* dz,
                                 double* rmax, double* rsum, double* e, double* rlog,
                                 double* rinv, double total) noexcept nogil:
    # softmax_cross_entropy_rows's block (exp_shifted_rows, then the gradient loop) for
    # nr rows of c <= NN_CE_SHORT_MAX_C classes with ce_rows.h's passes: the maxima and
    # z - m in one, the exps (exp_nonpositive, as there), the sums, the logs (nn_log, as
    # there) and reciprocals (a vector at a time, off the chains of the sums), then the
    # gradient (none when ``dz`` is NULL). Returns ``total`` plus the rows' losses, added
    # to it one row at a time, in order (the running sum of all blocks, as the loop of
    # ce_rows adds them).
    cdef Py_ssize_t r
    cdef double m
    if floating is float:
        r = nn_ce_shift_rows_f(z, nr, c, rmax, e)
    else:
        r = nn_ce_shift_rows_d(z, nr, c, rmax, e)
    if r > 0:                       # a maximum that is NaN or a zero
        redo_unsure_maxima(z, nr, c, rmax, e)
    exp_padded(e, nr * c, z)
    nn_ce_row_sums(e, nr, c, rsum)
    for r in range(nr):
        rlog[r] = nn_log(rsum[r])
    if dz != NULL:
        for r in range(nr):
            rinv[r] = 1.0 / rsum[r]
        if floating is float:
            nn_ce_grad_rows_f(e, nr, c, y, scale, rinv, dz)
        else:
            nn_ce_grad_rows_d(e, nr, c, y, scale, rinv, dz)
    for r in range(nr):
        # total + ((m - z_y) + log s), each addition's first NaN kept where both operands
        # are NaN (rows with NaN of two payloads), as the loop of ce_rows adds them,
        # whichever way the compiler orders the operands of an addition
        m = rmax[r] - z[r * c + y[r]]
        m = m if m != m else m + rlog[r]
        total = total if total != total else total + m
    return total


cdef inline double softmax_cross_entropy_rows(const floating* z, Py_ssize_t n,
                                              Py_ssize_t c, const long long* y,
                                              double scale, floating* dz) noexcept nogil:
    # softmax_cross_entropy_row over n rows, bitwise the same (same exps, sums in the same
    # order): ce_rows, through ce_rows.h's passes for rows of at most NN_CE_SHORT_MAX_C
    # classes where they are built (AVX-512)
    cdef bint narrow = NN_CE_SHORT != 0 and c <= NN_CE_SHORT_MAX_C
    return ce_rows(z, n, c, y, scale, dz, narrow)


cdef inline double ce_rows(const floating* z, Py_ssize_t n, Py_ssize_t c,
                           const long long* y, double scale, floating* dz,
                           bint narrow) noexcept nogil:
    # softmax_cross_entropy_rows's loops. Short rows (an output layer of 10 classes) are
    # taken several at a time (rows_per_block): exp is a visible share of a small
    # network's epoch. A block goes through ce_short_rows (``narrow``: c <=
    # NN_CE_SHORT_MAX_C, with NN_CE_SHORT) or exp_shifted_rows and the gradient loop
    # below; the loss is one running sum over the rows in order either way. (One function
    # for all three paths, as one row's exps and log stay out of its callers: inlined
    # into loss_grad's chunk, the row-by-row path left GCC no room to inline nn_exp into
    # the Poisson gradient there, whose e^z - t must be one FMA.)
    cdef double e[VEC_BLOCK + 8]        # (+ 8: room for the padding to whole vectors)
    cdef double rmax[VEC_BLOCK]
    cdef double rsum[VEC_BLOCK]
    cdef double rlog[VEC_BLOCK]
    cdef double rinv[VEC_BLOCK]
    cdef double s, inv, total = 0.0
    cdef Py_ssize_t i, j, r, r0 = 0, nr, per = rows_per_block(c)
    cdef floating* dzr
    if per == 0:
        for i in range(n):
            total += softmax_cross_entropy_row(z + i * c, c, y[i], scale,
                                               NULL if dz == NULL else dz + i * c)
        return total
    if narrow:
        while r0 < n:
            nr = min(per, n - r0)
            total = ce_short_rows(z + r0 * c, nr, c, y + r0, scale,
                                  NULL if dz == NULL else dz + r0 * c, rmax, rsum, e, rlog,
                                  rinv, total)
            r0 += nr
        return total
    while r0 < n:
        nr = min(per, n - r0)
        exp_shifted_rows(z + r0 * c, nr, c, rmax, rsum, e, rlog)
        for r in range(nr):
            i = r0 + r
            s = rsum[r]
            if dz != NULL:
                dzr = dz + i * c
                inv = 1.0 / s
                for j in range(c):
                    # the exp is rounded to the dtype first, as the row version stores it
                    dzr[j] = <floating>(scale * (<floating>e[r * c + j] * inv
                                                 - (1.0 if j == y[i] else 0.0)))
            total += (rmax[r] - z[i * c + y[i]]) + rlog[r]
        r0 += nr
    return total


cdef inline double squared_error_row(const floating* z, const floating* t, Py_ssize_t c,
                                     double scale, floating* dz) noexcept nogil:
    # L = 1/2 ||z - t||^2 ;  dL/dz = z - t
    cdef double d, acc = 0.0
    cdef Py_ssize_t j
    for j in range(c):
        d = <double>z[j] - <double>t[j]
        acc += d * d
        if dz != NULL:
            dz[j] = <floating>(scale * d)
    return 0.5 * acc


cdef inline void squared_error_grad(const floating* z, const floating* t, Py_ssize_t m,
                                    double scale, floating* dz) noexcept nogil:
    # dz = scale (z - t) over m outputs, without the loss: one loop over the batch (rows
    # of a few outputs leave squared_error_row's loop mostly call and tail), the same
    # arithmetic as squared_error_row's gradient, bitwise
    cdef Py_ssize_t j
    for j in range(m):
        dz[j] = <floating>(scale * (<double>z[j] - <double>t[j]))


cdef inline double logistic_term(double x, double y, double scale,
                                 double* g) noexcept nogil:
    # One output: returns L = (1 - y) softplus(x) + y softplus(-x) and writes
    # g = scale (sigmoid(x) - y).
    # One exp and one log1p serve both: with e = exp(-|x|) <= 1,
    # softplus(s) = max(s, 0) + log1p(e) for s = +-x, and sigma(+-x) is 1/(1+e) or e/(1+e).
    # Writing sigma(x) - 1 as -sigma(-x) avoids the cancellation that would flush small
    # gradients (x = 40: -4.2e-18, not 0) for y = 1. Targets other than 0 and 1 use the
    # general form. Straight-line code (every case computed, then selected) so the loops
    # of logistic_rows vectorize; a NaN score makes e, and so loss and gradient, NaN. A
    # loop that stores only one of the two results lets GCC drop the other's arithmetic
    # (the division of the gradient, the log1p of the loss) once this is inlined.
    cdef double e, l, sp_pos, sp_neg, num, sig
    e = nn_exp(-fabs(x))
    l = nn_log1p_unit(e)
    sp_pos = nn_select(x > 0.0, x, 0.0) + l                 # softplus(x)
    sp_neg = nn_select(x < 0.0, -x, 0.0) + l                # softplus(-x)
    # sigma(-x) for y = 1, else sigma(x): numerator e or 1 over 1 + e
    num = nn_select((x >= 0.0) != (y == 1.0), 1.0, e)
    sig = num / (1.0 + e)
    g[0] = scale * nn_select(y == 1.0, -sig, nn_select(y == 0.0, sig, sig - y))
    return nn_select(y == 1.0, sp_neg, nn_select(
        y == 0.0, sp_pos, (1.0 - y) * sp_pos + y * sp_neg))


cdef inline double logistic_rows(const floating* z, const floating* t, Py_ssize_t n,
                                 Py_ssize_t c, double scale, floating* dz,
                                 bint want_loss) noexcept nogil:
    # Per output: L = (1 - t) softplus(z) + t softplus(-z) ;  dL/dz = sigmoid(z) - t
    # (logistic_term). All n*c outputs run through one blocked loop: a row is one score
    # (c = 1) in a binary classifier, and a call per row would leave the loop a single
    # scalar iteration plus the call. Returns the sum of the losses in index order (one
    # running sum from 0 across the rows: for c = 1 the sum of n rows each summed alone,
    # bitwise) and writes dz = scale dL/dz. Three loops, one per result wanted: the
    # loss alone (``dz`` NULL: no division), the gradient alone (``want_loss`` False: no
    # log1p), or both; each output's values are the same bits in all three.
    cdef double lbuf[VEC_BLOCK]
    cdef double gbuf[VEC_BLOCK]
    cdef double g, total = 0.0
    cdef Py_ssize_t j, j0, nb, blk, m = n * c
    cdef const floating* zb
    cdef const floating* tb
    for blk in range((m + VEC_BLOCK - 1) // VEC_BLOCK):
        j0 = blk * VEC_BLOCK
        nb = min(<Py_ssize_t>VEC_BLOCK, m - j0)
        zb = z + j0
        tb = t + j0
        if not want_loss:
            for j in range(nb):
                logistic_term(zb[j], tb[j], scale, &gbuf[j])
        elif dz == NULL:
            for j in range(nb):
                lbuf[j] = logistic_term(zb[j], tb[j], scale, &g)
        else:
            for j in range(nb):
                lbuf[j] = logistic_term(zb[j], tb[j], scale, &gbuf[j])
        if want_loss:
            for j in range(nb):
                total += lbuf[j]
        if dz != NULL:
            for j in range(nb):
                dz[j0 + j] = <floating>gbuf[j]
    return total


cdef inline double poisson_rows(const floating* z, const floating* t, Py_ssize_t n,
                                Py_ssize_t c, double scale, floating* dz) noexcept nogil:
    # Per output: L = e^z - t z + t log t - t ;  dL/dz = e^z - t  (t >= 0, 0 log 0 = 0)
    # All n*c outputs run through one blocked loop (vectorized; c = 1 or 10 per row would
    # leave it mostly tails); the loss is then summed row by row in order, so the result
    # is the sum of the per-row sums, the same sum as n calls of one row.
    # For t > 0, L = t phi(d) with d = z - log t and phi(d) = e^d - 1 - d >= 0, so the
    # small loss of a good fit does not come out of the cancellation of terms of size
    # t |log t| (the four-term sum was off by up to 4e19 ulp on tests/test_losses.py's
    # sweep, 9e5 ulp at t = 1, z = 0.0015). Near the fit, |d| <= NN_POISSON_NEAR = 2 ln2,
    # phi is built from x = d/4 (exact) by two doublings of expm1 with no subtraction left: E1 = expm1(x) = x + q,
    # q = x^2 g(x) (nn_exp's polynomial, fitted on |x| <= ln2/2), E2 = expm1(d/2) =
    # E1 (2 + E1), and phi(d) = E2^2 + 2 (E2 - d/2) = E2^2 + 4 q + 2 E1^2, a sum of
    # positive terms. Beyond, L = e^z + t (-1 - d) for d < -2 ln2 (a sum of positive
    # terms; -1 - d taken as (lf - 1) - r, two roundings; or the four-term sum when z
    # and log t differ in sign, where none of its terms cancel) and (e^z - t) - t d for
    # d > 2 ln2, which cancels at most ~1.3 bits (at d = 2 ln2, phi = 1.61 of e^d = 4).
    # log t enters as 2^k (1 + f): d = (z - k ln2_hi) - (log1p(f) + k ln2_lo), where
    # z - k ln2_hi is exact (Sterbenz) whenever d is small and k != 0, so d is as
    # accurate as log1p(f) (< 1 ulp of |log1p f| <= 0.35, ~3e-17), not |log t|: the loss
    # is exact for a z moved by a fraction of its ulp. t = 0 keeps e^z - 0 z (0 log 0 =
    # 0; NaN for z = +-inf, as before); a NaN z or t gives NaN.
    cdef double lbuf[VEC_BLOCK]
    cdef double gbuf[VEC_BLOCK]
    cdef double zj, tj, mu, kd, f, hfsq, sr, lf, lt, r, d, x, q, e1, e2, near, far
    cdef double row = 0.0, total = 0.0
    cdef Py_ssize_t j, j0, nb, blk, col = 0, m = n * c
    cdef const floating* zs
    cdef const floating* ts
    for blk in range((m + VEC_BLOCK - 1) // VEC_BLOCK):
        j0 = blk * VEC_BLOCK
        nb = min(<Py_ssize_t>VEC_BLOCK, m - j0)
        zs = z + j0                       # (names of their own: the mutation catalogue
        ts = t + j0                       # anchors logistic_rows's text)
        for j in range(nb):
            zj = zs[j]
            tj = ts[j]
            mu = nn_exp(zj)
            f = nn_log_reduce(tj, &kd)                # t = 2^k (1 + f); junk for t <= 0
            sr = nn_log_kernel(f, &hfsq)
            lf = f - (hfsq - sr)                      # log1p(f), fdlibm's order
            r = zj - kd * NN_LN2_HI
            lf = lf + kd * NN_LN2_LO                  # log t = k ln2_hi + lf
            d = r - lf                                # z - log t
            x = 0.25 * d
            q = (x * x) * nn_exp_g(x)                 # expm1(x) - x
            e1 = x + q                                # expm1(d/4)
            e2 = e1 * (2.0 + e1)                      # expm1(d/2)
            near = tj * (e2 * e2 + (4.0 * q + 2.0 * (e1 * e1)))   # t (e^d - 1 - d)
            lt = kd * NN_LN2_HI + lf                  # log t
            # d < 0, z and log t of opposite signs: no term of the four-term sum cancels
            # (and t z is exact for t a power of 2), else -1 - d = (log t - 1) - z
            far = nn_select(d < 0.0, nn_select(zj * lt <= 0.0, mu - tj * zj + (tj * lt - tj),
                                               mu + tj * ((lf - 1.0) - r)),
                            (mu - tj) - tj * d)       # mu - t >= t (e^d - 1) > t d
            far = nn_select(zj > NN_EXP_ARG_MAX, INFINITY, far)   # see NN_EXP_ARG_MAX
            lbuf[j] = nn_select(tj > 0.0, nn_select(fabs(d) <= NN_POISSON_NEAR, near, far),
                                mu - tj * zj)
            gbuf[j] = poisson_dz(zj, mu - tj, scale)
        for j in range(nb):
            row += lbuf[j]
            col += 1
            if col == c:
                total += row
                row = 0.0
                col = 0
        if dz != NULL:
            for j in range(nb):
                dz[j0 + j] = <floating>gbuf[j]
    return total


cdef inline double poisson_dz(double z, double mu_minus_t, double scale) noexcept nogil:
    # scale (e^z - t), inf beyond NN_EXP_ARG_MAX (where a fused mu - t is e^710 - t) unless
    # the scale (a sample weight) is 0: the row then contributes nothing, as below the cap
    return nn_select((z > NN_EXP_ARG_MAX) & (scale != 0.0), INFINITY, scale * mu_minus_t)


cdef inline void poisson_grad(const floating* z, const floating* t, Py_ssize_t m,
                              double scale, floating* dz) noexcept nogil:
    # dz = scale (e^z - t) over m outputs, without the loss: no log t (poisson_rows's
    # gradient, bitwise)
    cdef Py_ssize_t j
    for j in range(m):
        dz[j] = <floating>poisson_dz(z[j], nn_exp(z[j]) - t[j], scale)


cdef inline double sparsemax_loss_row(const floating* z, Py_ssize_t c, long long y,
                                      double scale, floating* dz,
                                      floating* work) noexcept nogil:
    # L = 1/2 + sum_j p_j (u_j - p_j/2) - u_y, u = z - m ;  dL/dz = sparsemax(z) - e_y
    cdef double m, u, p, acc = 0.0
    cdef double tau_u = sparsemax_tau(z, c, work, &m)     # NaN row: m = NaN, NaN out
    cdef Py_ssize_t j
    for j in range(c):
        u = z[j] - m
        p = clip_positive(u - tau_u)
        if p != 0.0:        # off the support the term is 0, and u may be -inf (z - m
            acc += p * (u - 0.5 * p)    # overflowed: z = -1e308, m = 1e308): 0 * inf = NaN
        if dz != NULL:
            dz[j] = <floating>(scale * (p - (1.0 if j == y else 0.0)))
    return clip_positive(0.5 + acc - (z[y] - m))          # >= 0; rounding could dip below


cdef inline double hinge_row(const floating* z, Py_ssize_t c, long long y, double scale,
                             double margin, floating* dz) noexcept nogil:
    # L = max(0, h), h = margin + max_{j != y} z_j - z_y ; subgradient e_{j*} - e_y if h >= 0
    cdef Py_ssize_t j, jstar = -1
    cdef double h, v, best = 0.0, nan = 0.0
    cdef bint nan_row = False
    for j in range(c):
        v = z[j]
        if v != v and not nan_row:
            nan_row = True
            nan = v                        # keep the first NaN (and its payload)
        if j != y and (jstar < 0 or v > best):
            jstar = j
            best = v
    if dz != NULL:
        for j in range(c):
            dz[j] = <floating>(nan if nan_row else 0.0)
    if nan_row:
        return nan
    if jstar < 0:                          # c == 1: no competing class, no loss
        return 0.0
    h = margin + best - <double>z[y]
    if h < 0.0:
        return 0.0
    if dz != NULL:
        dz[jstar] = <floating>scale
        dz[y] = <floating>(-scale)
    return h


# ---------------------------------------------------------------------------------------
# the batch entry point (INTERFACES.md section 1)
# ---------------------------------------------------------------------------------------

cdef inline double loss_grad_batch(int kind, const floating* z, const floating* y_target,
                                   const long long* y_label, Py_ssize_t n, Py_ssize_t c,
                                   double scale, double margin, floating* dz,
                                   floating* work) noexcept nogil:
    """Sum over the ``n`` rows of the per-sample loss; writes ``dz = scale * dL_i/dz_i``.

    Parameters
    ----------
    kind : LossKind
    z : (n, c) C-contiguous scores (pre-activations of the output layer).
    y_target : (n, c) targets for squared error, logistic and Poisson (logistic: values in
        {0, 1}, normally c == 1; Poisson: >= 0); ignored (may be NULL) for the
        class-label losses.
    y_label : (n,) int64 class labels in [0, c), already validated, for softmax
        cross-entropy, sparsemax and hinge; ignored (may be NULL) otherwise.
    scale : factor applied to the gradient (1/n for the gradient of the mean).
    margin : hinge margin (0.0 is the perceptron criterion); ignored by other losses.
    dz : (n, c) output, or NULL when only the loss is wanted.
    work : (c,) scratch for sparsemax's sort; ignored (may be NULL) by other losses.

    Returns the SUM of the per-sample losses, accumulated in double. Allocates nothing,
    holds no lock: callers may run disjoint row ranges in parallel with separate ``work``.
    """
    cdef Py_ssize_t i
    cdef double total = 0.0
    cdef floating* dzi = NULL
    if kind == LOSS_SOFTMAX_CROSS_ENTROPY:
        return softmax_cross_entropy_rows(z, n, c, y_label, scale, dz)
    for i in range(n):
        if dz != NULL:
            dzi = dz + i * c
        if kind == LOSS_SOFTMAX_CROSS_ENTROPY:
            total += softmax_cross_entropy_row(z + i * c, c, y_label[i], scale, dzi)
        elif kind == LOSS_SQUARED_ERROR:
            total += squared_error_row(z + i * c, y_target + i * c, c, scale, dzi)
        elif kind == LOSS_LOGISTIC:
            # elementwise: all n*c scores in one blocked loop, not n calls of c = 1
            return logistic_rows(z, y_target, n, c, scale, dz, True)
        elif kind == LOSS_SPARSEMAX:
            total += sparsemax_loss_row(z + i * c, c, y_label[i], scale, dzi, work)
        elif kind == LOSS_POISSON:
            # elementwise like logistic: all n*c outputs in one blocked loop, the loss
            # still summed row by row
            return poisson_rows(z, y_target, n, c, scale, dz)
        else:
            total += hinge_row(z + i * c, c, y_label[i], scale, margin, dzi)
    return total


cdef inline double weighted_loss_grad_batch(int kind, const floating* z,
                                            const floating* y_target,
                                            const long long* y_label,
                                            const floating* weight, Py_ssize_t n,
                                            Py_ssize_t c, double scale, double margin,
                                            floating* dz, floating* work) noexcept nogil:
    """``loss_grad_batch`` with a weight per row: returns ``sum_i w_i L_i`` and writes
    ``dz_i = scale * w_i * dL_i/dz_i``.

    A branch of its own, row by row, so the unweighted path above keeps its blocked
    loops (and its bits). With ``scale = 1 / sum_i w_i`` this is the gradient of
    scikit-learn's weighted mean ``np.average(L, weights=w)``; ``weight`` is
    ``(n,)`` in the scores' dtype, checked finite and >= 0 by its owner.
    """
    cdef Py_ssize_t i
    cdef double total = 0.0, wi, li
    cdef floating* dzi = NULL
    cdef const floating* zi
    for i in range(n):
        wi = weight[i]
        zi = z + i * c
        if dz != NULL:
            dzi = dz + i * c
        if kind == LOSS_SOFTMAX_CROSS_ENTROPY:
            li = softmax_cross_entropy_row(zi, c, y_label[i], scale * wi, dzi)
        elif kind == LOSS_SQUARED_ERROR:
            li = squared_error_row(zi, y_target + i * c, c, scale * wi, dzi)
        elif kind == LOSS_LOGISTIC:
            li = logistic_rows(zi, y_target + i * c, 1, c, scale * wi, dzi, True)
        elif kind == LOSS_SPARSEMAX:
            li = sparsemax_loss_row(zi, c, y_label[i], scale * wi, dzi, work)
        elif kind == LOSS_POISSON:
            li = poisson_rows(zi, y_target + i * c, 1, c, scale * wi, dzi)
        else:
            li = hinge_row(zi, c, y_label[i], scale * wi, margin, dzi)
        total += wi * li
    return total


cdef inline void grad_batch(int kind, const floating* z, const floating* y_target,
                            const long long* y_label, Py_ssize_t n, Py_ssize_t c,
                            double scale, double margin, floating* dz,
                            floating* work) noexcept nogil:
    """``loss_grad_batch``'s ``dz`` alone (``dz`` not NULL), bitwise: for the losses whose
    value costs more than their gradient (Poisson: log t; logistic: log1p) or whose
    gradient is elementwise (squared error: one loop over all n * c outputs) the loss is
    not computed; the others run ``loss_grad_batch`` and drop the sum."""
    if kind == LOSS_POISSON:
        poisson_grad(z, y_target, n * c, scale, dz)
    elif kind == LOSS_LOGISTIC:
        logistic_rows(z, y_target, n, c, scale, dz, False)
    elif kind == LOSS_SQUARED_ERROR:
        squared_error_grad(z, y_target, n * c, scale, dz)
    else:
        loss_grad_batch(kind, z, y_target, y_label, n, c, scale, margin, dz, work)
