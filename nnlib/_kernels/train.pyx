# cython: language_level=3
"""The compiled training loop: one call runs one epoch of mini-batch training.

Design note
-----------
``train_epoch`` takes the network (lists of weight and bias arrays, activation codes), the
data, a precomputed sample order (the seeded shuffle is drawn in Python, so it is
reproducible and identical to what a NumPy reference would use), the loss and optimizer
codes, and a workspace of buffers allocated once per fit (``Workspace`` below). After
unpacking pointers it releases the GIL and loops over mini-batches with no Python call
and no allocation per step:

    gather batch rows (batch 1: point at the row, no copy)
    forward     H_l = g_l(H_{l-1} W_l + b_l)          dense.pxd: mm + bias_act
    loss        dH_L = d(mean loss)/dH_L               loss_rows.pxd: loss_grad_batch
    backward    dZ_l = dH_l * g_l'(H_l), db_l = sum dZ_l, dH_{l-1} = dZ_l W_l^T
    check       loss and every db_l finite, else stop BEFORE touching any weight
    update      dW_l = H_{l-1}^T dZ_l (+ l2 W_l); optim_update on W_l, b_l, their state

Plain SGD (momentum 0) fuses the update into the weight-gradient product: one GEMM
``W <- (1 - lr (l2 + wd)) W - lr H^T dZ`` (beta = 1 - lr (l2 + wd), alpha = -lr) instead of
writing dW and reading it back. Every other optimizer goes through ``optim_update`` of
``optim_rules.pxd`` with the gradient in a buffer.

Non-finite values. The loss and each ``db_l = sum_rows dZ_l`` are checked after the
backward pass: NaN or inf anywhere in dZ (hence in dW = H^T dZ, H being finite) shows in
the column sums, so a bad step is refused before any parameter changes. What this
cannot see is an update that itself overflows: a finite gradient with an infinite
``w - lr g``, or one whose square overflows the optimizer state (Adagrad, RMSprop, Adam:
the weights stay finite, ``m / inf = 0``, and every later step would silently do
nothing). So the call reports whether the weights AND the states are finite at its end
(one pass over them per call, not per step); if not, the Python driver
(``nnlib.model``) restores its start-of-epoch copy and replays with ``check_updates``,
which scans weights and states after every step and stops at the first step that made
one non-finite (``STATUS_NONFINITE_UPDATE``), then restores again and replays only the
steps before it (``max_steps``): the weights and states left behind are always the last
finite ones, at the cost of two replays. A replay is exact: the loop is deterministic
for a fixed thread count.

L2. ``l2`` is added to the weights' gradient (not the biases'), either as given or, with
``l2_per_batch``, divided by the batch length (scikit-learn's ``alpha / n_batch``); the
reported loss includes ``l2_eff / 2 * sum ||W||^2`` then.
"""
from libc.math cimport isfinite
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from cython cimport floating

cimport numpy as cnp
import numpy as np

from nnlib._kernels.dense cimport mm, bias_act, act_backward, PAR_MIN_ELEMS
from nnlib._kernels.loss_rows cimport loss_grad_batch
from nnlib._kernels.optim_rules cimport (OptimConfig, optim_update, optim_update_threads,
                                        optim_state_slots, OPT_SGD)

cnp.import_array()

cdef enum:
    STATUS_OK = 0
    STATUS_NONFINITE_LOSS = 1
    STATUS_NONFINITE_GRAD = 2
    STATUS_NONFINITE_UPDATE = 3     # only with check_updates (a replay, see nnlib.model)


cdef struct NetShape:
    int n_layers
    Py_ssize_t* sizes       # n_layers + 1 widths: sizes[0] = inputs, sizes[l+1] = outputs
    int* kinds              # activation codes
    double* aparams         # activation parameters


cdef inline double sum_squares(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef double s = 0.0
    cdef Py_ssize_t i
    for i in range(n):
        s += <double>a[i] * a[i]
    return s


cdef inline bint all_finite_ptr(const floating* a, Py_ssize_t n) noexcept nogil:
    """True when no a[i] is NaN or +-inf: x - x is 0 exactly for finite x and NaN else.
    An OR of compares, not a branch per element, so the loop vectorizes."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad = bad | ((a[i] - a[i]) != 0)
    return bad == 0


cdef bint params_finite(NetShape* net, floating** W, floating** b) noexcept nogil:
    cdef int l
    cdef Py_ssize_t* s = net.sizes
    for l in range(net.n_layers):
        if not (all_finite_ptr(W[l], s[l] * s[l + 1]) and all_finite_ptr(b[l], s[l + 1])):
            return False
    return True


cdef bint states_finite(NetShape* net, floating** st, int slots) noexcept nogil:
    """Every optimizer state (slots x size per W_l, b_l; NULL when there is none) finite.
    Squared gradients can overflow there while the weights stay finite (Adam's update is
    then m / inf = 0: a silently skipped step), so the weights alone do not tell."""
    cdef int l
    cdef Py_ssize_t* s = net.sizes
    for l in range(net.n_layers):
        if st[2 * l] != NULL and not all_finite_ptr(st[2 * l], slots * s[l] * s[l + 1]):
            return False
        if st[2 * l + 1] != NULL and not all_finite_ptr(st[2 * l + 1], slots * s[l + 1]):
            return False
    return True


def all_finite(const floating[:, ::1] X):
    """True when the 2-d array X holds no NaN or +-inf (``np.isfinite(X).all()``
    without the boolean temporary: fit's validation of X, 11 -> 3 us on digits)."""
    cdef bint ok = True
    if X.shape[0] > 0 and X.shape[1] > 0:
        with nogil:
            ok = all_finite_ptr(&X[0, 0], X.shape[0] * X.shape[1])
    return ok


cdef int forward_backward(NetShape* net, floating** W, floating** b,
                          const floating* X0, Py_ssize_t B, floating** H, floating** dZ,
                          floating** db, double* work, int loss_kind,
                          const floating* yt, const long long* yl, double margin,
                          floating* lwork, int n_threads, double* loss_out,
                          bint full, bint backward=True) noexcept nogil:
    """Forward, loss (mean over the B rows) and backward up to every dZ_l and db_l.

    Returns a STATUS_* code and ``loss_out`` holds the mean loss (no L2). With a
    non-finite loss nothing else is computed unless ``full``; with a non-finite gradient
    the backward pass still completes (so loss_grad can return what it found)."""
    cdef int L = net.n_layers, l, status = STATUS_OK
    cdef Py_ssize_t* s = net.sizes
    cdef const floating* inp = X0
    cdef double loss
    cdef Py_ssize_t j
    for l in range(L):
        mm(False, False, B, s[l + 1], s[l], 1.0, inp, s[l], W[l], s[l + 1], 0.0, H[l],
           s[l + 1])
        bias_act(H[l], b[l], B, s[l + 1], net.kinds[l], net.aparams[l], n_threads)
        inp = H[l]
    # d(mean loss)/dH_L lands in dZ[L-1]; act_backward then turns it into dZ in place
    loss = loss_grad_batch(loss_kind, H[L - 1], yt, yl, B, s[L], 1.0 / B, margin,
                           dZ[L - 1], lwork) / B
    loss_out[0] = loss
    if not isfinite(loss):
        if not full:
            return STATUS_NONFINITE_LOSS
        status = STATUS_NONFINITE_LOSS
    if not backward:
        return status
    for l in range(L - 1, -1, -1):
        act_backward(H[l], dZ[l], dZ[l], db[l], work, B, s[l + 1], net.kinds[l],
                     net.aparams[l])
        for j in range(s[l + 1]):
            if not isfinite(db[l][j]) and status == STATUS_OK:
                status = STATUS_NONFINITE_GRAD
        if l > 0:       # dH_{l-1} = dZ_l W_l^T, written where dZ_{l-1} will be formed
            mm(False, True, B, s[l], s[l + 1], 1.0, dZ[l], s[l + 1], W[l], s[l + 1], 0.0,
               dZ[l - 1], s[l])
    return status


cdef void weight_grads(NetShape* net, floating** W, const floating* X0, Py_ssize_t B,
                       floating** H, floating** dZ, floating** dW,
                       double l2_eff) noexcept nogil:
    """dW_l = H_{l-1}^T dZ_l + l2_eff W_l for every layer (H_{-1} = X0)."""
    cdef int l
    cdef Py_ssize_t i, n
    cdef Py_ssize_t* s = net.sizes
    cdef const floating* inp
    for l in range(net.n_layers):
        inp = X0 if l == 0 else H[l - 1]
        mm(True, False, s[l], s[l + 1], B, 1.0, inp, s[l], dZ[l], s[l + 1], 0.0, dW[l],
           s[l + 1])
        if l2_eff != 0.0:
            n = s[l] * s[l + 1]
            for i in range(n):
                dW[l][i] = dW[l][i] + <floating>l2_eff * W[l][i]


cdef void sgd_fused_update(NetShape* net, floating** W, floating** b, const floating* X0,
                           Py_ssize_t B, floating** H, floating** dZ, floating** db,
                           double lr, double decay_W, double decay_b) noexcept nogil:
    """Plain SGD: W <- (1 - lr decay_W) W - lr H^T dZ ; b <- (1 - lr decay_b) b - lr db."""
    cdef int l
    cdef Py_ssize_t j
    cdef Py_ssize_t* s = net.sizes
    cdef const floating* inp
    cdef floating beta_b = <floating>(1.0 - lr * decay_b), flr = <floating>lr
    for l in range(net.n_layers):
        inp = X0 if l == 0 else H[l - 1]
        mm(True, False, s[l], s[l + 1], B, -lr, inp, s[l], dZ[l], s[l + 1],
           1.0 - lr * decay_W, W[l], s[l + 1])
        if decay_b == 0.0:
            for j in range(s[l + 1]):
                b[l][j] = b[l][j] - flr * db[l][j]
        else:
            for j in range(s[l + 1]):
                b[l][j] = beta_b * b[l][j] - flr * db[l][j]


cdef class _Pointers:
    """Raw pointers into a list of same-dtype arrays, kept alive while in use.

    Read with the NumPy C API, not ``a.ctypes.data``: that builds a ctypes helper object
    per array, ~1.5 us each, 25 us of every ``train_epoch`` call."""
    cdef void** p
    cdef list keep

    def __cinit__(self, list arrays):
        cdef Py_ssize_t i, n = len(arrays)
        cdef cnp.ndarray a
        self.p = <void**>malloc(max(n, 1) * sizeof(void*))
        if self.p == NULL:
            raise MemoryError()
        self.keep = arrays
        for i in range(n):
            if arrays[i] is None:
                self.p[i] = NULL
                continue
            if not isinstance(arrays[i], cnp.ndarray):
                raise TypeError("internal: training buffers must be NumPy arrays")
            a = arrays[i]
            if cnp.PyArray_SIZE(a) == 0:
                self.p[i] = NULL
            elif not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a)):
                raise ValueError("internal: training buffers must be writeable and "
                                 "C-contiguous")
            else:
                self.p[i] = cnp.PyArray_DATA(a)

    def __dealloc__(self):
        free(self.p)


cdef class _Net:
    cdef NetShape shape
    cdef object _keep

    def __cinit__(self, sizes, kinds, aparams):
        sz = np.ascontiguousarray(sizes, dtype=np.intp)
        kd = np.ascontiguousarray(kinds, dtype=np.intc)
        ap = np.ascontiguousarray(aparams, dtype=np.float64)
        if len(sz) != len(kd) + 1 or len(kd) != len(ap) or len(kd) < 1:
            raise ValueError("internal: inconsistent network description")
        self._keep = (sz, kd, ap)
        self.shape.n_layers = len(kd)
        self.shape.sizes = <Py_ssize_t*><size_t>sz.ctypes.data
        self.shape.kinds = <int*><size_t>kd.ctypes.data
        self.shape.aparams = <double*><size_t>ap.ctypes.data


cdef OptimConfig _config(dict cfg) except *:
    cdef OptimConfig c
    c.kind = int(cfg["kind"])
    c.lr = cfg["lr"]
    c.momentum = cfg["momentum"]
    c.dampening = cfg["dampening"]
    c.weight_decay = cfg["weight_decay"]
    c.alpha = cfg["alpha"]
    c.eps = cfg["eps"]
    c.beta1 = cfg["beta1"]
    c.beta2 = cfg["beta2"]
    c.lr_decay = cfg["lr_decay"]
    c.initial_accumulator_value = cfg["initial_accumulator_value"]
    c.nesterov = int(cfg["nesterov"])
    c.centered = int(cfg["centered"])
    c.amsgrad = int(cfg["amsgrad"])
    return c


def state_slots(dict cfg):
    """optim_state_slots for an optimizer config dict (for the Python side's checks)."""
    cdef OptimConfig c = _config(cfg)
    return optim_state_slots(&c)


def _epoch(_Net net, list Ws, list bs, const floating[:, ::1] X,
           const floating[:, ::1] y_target, const long long[::1] y_label,
           const long long[::1] order, Py_ssize_t batch_size, int loss_kind,
           double margin, double l2, bint l2_per_batch, dict cfg, list states,
           long long step0, dict ws, Py_ssize_t max_steps, int n_threads,
           int update_threads, double loss_scale, bint check_updates):
    cdef NetShape* s = &net.shape
    cdef int L = s.n_layers, l, status = STATUS_OK
    cdef Py_ssize_t N = order.shape[0], n_in = s.sizes[0], c = s.sizes[L]
    cdef Py_ssize_t tcols = y_target.shape[1]
    cdef Py_ssize_t start, B, i, r, nW, steps = 0, seen = 0
    cdef double loss = 0.0, total = 0.0, l2_eff, pen
    cdef OptimConfig oc = _config(cfg)
    cdef bint fused = oc.kind == OPT_SGD and oc.momentum == 0.0
    cdef bint label_loss = tcols == 0
    cdef long long step = step0
    cdef const floating* X0
    cdef floating* Xb
    cdef floating* yb
    cdef long long* ylb
    cdef _Pointers pW = _Pointers(Ws), pb = _Pointers(bs)
    cdef _Pointers pH = _Pointers(ws["H"]), pdZ = _Pointers(ws["dZ"])
    cdef _Pointers pdb = _Pointers(ws["db"]), pdW = _Pointers(ws["dW"])
    cdef _Pointers pst = _Pointers(states)
    cdef floating** W = <floating**>pW.p
    cdef floating** bb = <floating**>pb.p
    cdef floating** H = <floating**>pH.p
    cdef floating** dZ = <floating**>pdZ.p
    cdef floating** db = <floating**>pdb.p
    cdef floating** dW = <floating**>pdW.p
    cdef floating** st = <floating**>pst.p
    cdef double[::1] work = ws["work"]
    cdef floating[:, ::1] xbuf = ws["Xb"]
    cdef floating[:, ::1] ybuf = ws["yb"]
    cdef long long[::1] lbuf = ws["yl"]
    cdef floating[::1] lwork = ws["lwork"]
    cdef double wdW = oc.weight_decay, wdb = oc.weight_decay
    cdef bint finite
    cdef int slots = optim_state_slots(&oc)
    if max_steps < 0:
        max_steps = N + 1
    with nogil:
        start = 0
        while start < N and steps < max_steps:
            B = min(batch_size, N - start)
            if B == 1:
                r = order[start]
                X0 = &X[r, 0]
                yb = &y_target[r, 0] if tcols > 0 else &ybuf[0, 0]
                ylb = &lbuf[0]
                lbuf[0] = y_label[r] if label_loss else 0
            else:
                for i in range(B):
                    r = order[start + i]
                    memcpy(&xbuf[i, 0], &X[r, 0], n_in * sizeof(floating))
                    if tcols > 0:
                        memcpy(&ybuf[i, 0], &y_target[r, 0], tcols * sizeof(floating))
                    lbuf[i] = y_label[r] if label_loss else 0
                X0 = &xbuf[0, 0]
                yb = &ybuf[0, 0]
                ylb = &lbuf[0]
            status = forward_backward(s, W, bb, X0, B, H, dZ, db, &work[0], loss_kind,
                                      yb, ylb, margin, &lwork[0], n_threads, &loss,
                                      False)
            if status != STATUS_OK:
                break
            loss = loss * loss_scale        # the reported data loss only, not the gradient
            l2_eff = l2 / B if l2_per_batch else l2
            if l2_eff != 0.0:
                pen = 0.0
                for l in range(L):
                    pen = pen + sum_squares(W[l], s.sizes[l] * s.sizes[l + 1])
                loss = loss + 0.5 * l2_eff * pen
                if not isfinite(loss):
                    status = STATUS_NONFINITE_LOSS
                    break
            step = step + 1
            if fused:
                sgd_fused_update(s, W, bb, X0, B, H, dZ, db, oc.lr, l2_eff + wdW, wdb)
            else:
                weight_grads(s, W, X0, B, H, dZ, dW, l2_eff)
                for l in range(L):
                    nW = s.sizes[l] * s.sizes[l + 1]
                    optim_update_threads(&oc, W[l], dW[l], st[2 * l], nW, step,
                                         update_threads if nW >= PAR_MIN_ELEMS else 1)
                    optim_update(&oc, bb[l], db[l], st[2 * l + 1], s.sizes[l + 1], step)
            if check_updates and not (params_finite(s, W, bb)
                                      and states_finite(s, st, slots)):
                status = STATUS_NONFINITE_UPDATE        # this step is applied, not counted
                break
            total += loss * B
            seen += B
            steps += 1
            start += B
        finite = params_finite(s, W, bb) and states_finite(s, st, slots)
    return total, seen, steps, status, finite


def train_epoch(net, Ws, bs, X, y_target, y_label, order, batch_size, loss_kind, margin,
                l2, l2_per_batch, cfg, states, step0, ws, max_steps=-1, n_threads=1,
                update_threads=1, loss_scale=1.0, check_updates=False):
    """Run one epoch (or its first ``max_steps`` steps) of mini-batch training in place.

    Parameters
    ----------
    net : _Net
        Widths, activation codes and parameters (``make_net``).
    Ws, bs : lists of arrays
        The live weights (n_in, n_out) and biases (n_out,), one dtype, C-contiguous.
    X : (N, n_in) array;  y_target : (N, c) array (width 0 for label losses);
    y_label : (N,) int64 (length 1 for target losses);  order : (N,) int64 permutation.
    batch_size, loss_kind, margin, l2, l2_per_batch : as in ``Sequential.fit``.
    cfg : dict
        The optimizer's ``config()``.
    states : list
        For each parameter (W1, b1, W2, ...) its state array (slots, size), or None.
    step0 : int
        Updates taken before this call (the optimizer's ``t``).
    ws : dict
        Buffers from ``workspace``.
    max_steps : int
        Stop after this many steps (-1: the whole order).
    n_threads : int
        OpenMP threads of the elementwise passes (large ones only).
    update_threads : int
        OpenMP threads of the optimizer update of each weight matrix of at least
        PAR_MIN_ELEMS elements (optimizers other than plain SGD, whose update is fused
        into a BLAS product); the result does not depend on it.
    loss_scale : float
        Factor on each batch's data loss as reported in ``loss_sum`` (before the L2 term
        is added); the gradient is not scaled. 1 / n_outputs reports scikit-learn's
        multi-output squared loss, the mean over outputs, whose gradient scikit-learn
        takes as that of the sum (MLPRegressor uses it).

    Returns
    -------
    (loss_sum, n_seen, steps, status, finite): sum over the completed steps of batch loss
    x batch length, the samples they covered, their number, 0 (ok), 1 (non-finite loss)
    or 2 (non-finite gradient) -- on 1 or 2 the failing step was not applied -- and
    whether every weight, bias and optimizer state is finite at the end (an update can
    overflow). With ``check_updates`` they are checked after every step, and status 3
    means the step after the ``steps`` counted made one non-finite (that step WAS
    applied: restore and replay ``steps`` steps).
    """
    return _epoch(net, Ws, bs, X, y_target, y_label, order, batch_size, loss_kind,
                  margin, l2, l2_per_batch, cfg, states, step0, ws, max_steps, n_threads,
                  update_threads, loss_scale, check_updates)


def make_net(sizes, kinds, aparams):
    return _Net(sizes, kinds, aparams)


def workspace(sizes, batch_size, n_target_cols, dtype):
    """Buffers for ``train_epoch`` / ``loss_grad``: allocated once per fit."""
    B = max(int(batch_size), 1)
    dt = np.dtype(dtype)
    L = len(sizes) - 1
    return {
        "H": [np.empty((B, sizes[l + 1]), dt) for l in range(L)],
        "dZ": [np.empty((B, sizes[l + 1]), dt) for l in range(L)],
        "db": [np.empty(sizes[l + 1], dt) for l in range(L)],
        "dW": [np.empty((sizes[l], sizes[l + 1]), dt) for l in range(L)],
        "work": np.empty(max(sizes) + 1),
        "Xb": np.empty((B, max(sizes[0], 1)), dt),
        "yb": np.empty((B, max(n_target_cols, 1)), dt),
        "yl": np.zeros(B, np.int64),
        "lwork": np.empty(max(sizes[L], 1) + 1, dt),
    }


def _loss_grad(_Net net, list Ws, list bs, const floating[:, ::1] X,
               const floating[:, ::1] y_target, const long long[::1] y_label,
               int loss_kind, double margin, double l2, dict ws, list dWs, list dbs,
               int n_threads, bint grads):
    cdef NetShape* s = &net.shape
    cdef int L = s.n_layers, l, status
    cdef Py_ssize_t B = X.shape[0], j
    cdef double loss = 0.0, pen = 0.0
    cdef _Pointers pW = _Pointers(Ws), pb = _Pointers(bs)
    cdef _Pointers pH = _Pointers(ws["H"]), pdZ = _Pointers(ws["dZ"])
    cdef _Pointers pdb = _Pointers(dbs), pdW = _Pointers(dWs)
    cdef floating** W = <floating**>pW.p
    cdef floating** dW = <floating**>pdW.p
    cdef double[::1] work = ws["work"]
    cdef floating[::1] lwork = ws["lwork"]
    cdef const floating* yt = &y_target[0, 0] if y_target.shape[1] > 0 else &lwork[0]
    with nogil:
        status = forward_backward(s, W, <floating**>pb.p, &X[0, 0], B,
                                  <floating**>pH.p, <floating**>pdZ.p, <floating**>pdb.p,
                                  &work[0], loss_kind, yt, &y_label[0], margin,
                                  &lwork[0], n_threads, &loss, True, grads)
        if grads:
            weight_grads(s, W, &X[0, 0], B, <floating**>pH.p, <floating**>pdZ.p, dW, l2)
        if l2 != 0.0:
            for l in range(L):
                pen = pen + sum_squares(W[l], s.sizes[l] * s.sizes[l + 1])
            loss = loss + 0.5 * l2 * pen
    return loss, status


def loss_grad(net, Ws, bs, X, y_target, y_label, loss_kind, margin, l2, ws, dWs, dbs,
              n_threads=1, grads=True):
    """Mean loss + l2/2 sum ||W||^2 over all rows of X, gradients written into dWs, dbs.

    Returns (loss, status); status 1 means the loss is not finite, 2 that a gradient is
    not finite (the gradients are computed either way and may hold inf/NaN). With
    ``grads=False`` only the forward pass and the loss are computed (dWs, dbs untouched;
    the output is left in ws["H"][-1])."""
    return _loss_grad(net, Ws, bs, X, y_target, y_label, loss_kind, margin, l2, ws, dWs,
                      dbs, n_threads, grads)
