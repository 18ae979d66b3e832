"""scikit-learn's MLP training math in plain NumPy: the readable statement of what the
estimators compute, and their oracle in the tests.

Everything follows ``sklearn/neural_network/_multilayer_perceptron.py`` and
``_stochastic_optimizers.py`` (scikit-learn 1.9), with the activations of
``nnlib._reference`` (the NumPy twins of nnlib's kernels):

* forward: ``Z_l = H_{l-1} W_l + b_l``, ``H_l = g(Z_l)``; the output map is softmax
  (multiclass), logistic (binary) or identity (regression);
* the batch objective (``n`` = batch length, ``alpha`` = scikit-learn's L2 strength)::

      L = data_loss + alpha / (2 n) * sum_l ||W_l||^2         (biases not penalized)

  with data_loss the mean cross-entropy (softmax), the mean of the summed binary
  cross-entropies (logistic) or ``mean((P - Y)^2) / 2`` over all entries (identity);
* gradients: ``delta_L = P - Y``; ``dW_l = (H_{l-1}^T delta_l + alpha W_l) / n``,
  ``db_l = sum(delta_l) / n``, ``delta_{l-1} = (delta_l W_l^T) * g'(Z_{l-1})``.
  (For identity output with k > 1 targets the gradient is k times that of the reported
  loss, exactly as in scikit-learn.)

Cross-entropies are evaluated from the logits (log-sum-exp / softplus), so they are
finite where scikit-learn clips probabilities at machine epsilon; the two agree whenever
no probability falls below epsilon.
"""
import numpy as np

from nnlib import _reference as R

HIDDEN_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus",
                      "elu")


def _softplus(z):
    return np.logaddexp(0.0, z)


def output_map(kind, Z):
    """The output layer's map: softmax over rows, logistic, exp (Poisson's log link), or
    identity."""
    if kind == "exp":
        return np.exp(Z)
    if kind == "softmax":
        e = np.exp(Z - Z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if kind == "logistic":
        return R.sigmoid(Z)
    return Z


def forward(coefs, intercepts, X, activation, out_activation):
    """Pre-activations and outputs of every layer: ``Zs`` (L arrays), ``Hs`` (L+1, with
    ``Hs[0] = X`` and ``Hs[-1]`` the output map's value)."""
    Zs, Hs = [], [X]
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        Z = Hs[-1] @ W + b
        Zs.append(Z)
        Hs.append(output_map(out_activation, Z) if i == last
                  else getattr(R, activation)(Z))
    return Zs, Hs


def data_loss(out_activation, Z, P, Y, sample_weight=None):
    """scikit-learn's unpenalized loss of outputs P (logits Z) against targets Y; with
    ``sample_weight`` the weighted mean over the rows (``np.average``'s weights)."""
    if sample_weight is not None:
        return float(np.average(_row_losses(out_activation, Z, P, Y),
                                weights=sample_weight))
    n = Y.shape[0]
    if out_activation == "softmax":
        lse = np.logaddexp.reduce(Z, axis=1)
        return float((lse - (Y * Z).sum(axis=1)).sum() / n)
    if out_activation == "logistic":
        return float(((1 - Y) * _softplus(Z) + Y * _softplus(-Z)).sum() / n)
    if out_activation == "exp":
        return float(_row_losses(out_activation, Z, P, Y).sum() / n)
    return float(((P - Y) ** 2).mean() / 2)


def _row_losses(out_activation, Z, P, Y):
    """Each row's loss (squared error: averaged over the outputs, as scikit-learn)."""
    if out_activation == "softmax":
        return np.logaddexp.reduce(Z, axis=1) - (Y * Z).sum(axis=1)
    if out_activation == "logistic":
        return ((1 - Y) * _softplus(Z) + Y * _softplus(-Z)).sum(axis=1)
    if out_activation == "exp":         # half Poisson deviance: xlogy(Y, Y/P) - Y + P
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0)), 0.0)
        return (ylogy - Y * Z - Y + P).sum(axis=1)
    return ((P - Y) ** 2).mean(axis=1) / 2


def penalty(coefs, alpha, n):
    """``alpha / (2 n) * sum ||W||^2`` (scikit-learn's alpha, divided by the batch)."""
    return 0.5 * alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in coefs) / n


def loss_and_grads(coefs, intercepts, X, Y, activation, out_activation, alpha,
                   sample_weight=None):
    """The batch objective and its gradients ``([dW_1..dW_L], [db_1..db_L])``. With
    ``sample_weight`` (scikit-learn 1.9's ``_backprop``): the weighted mean loss,
    ``n = sum(sample_weight)`` in the penalty and the gradients' divisor, and
    ``delta_L = (P - Y) * sample_weight[:, None]``."""
    n = X.shape[0] if sample_weight is None else sample_weight.sum()
    Zs, Hs = forward(coefs, intercepts, X, activation, out_activation)
    loss = data_loss(out_activation, Zs[-1], Hs[-1], Y, sample_weight) + \
        penalty(coefs, alpha, n)
    dWs, dbs = [None] * len(coefs), [None] * len(coefs)
    delta = Hs[-1] - Y
    if sample_weight is not None:
        delta = delta * sample_weight.reshape(-1, 1)
    for i in range(len(coefs) - 1, -1, -1):
        dWs[i] = (Hs[i].T @ delta + alpha * coefs[i]) / n
        dbs[i] = delta.sum(axis=0) / n
        if i:
            delta = getattr(R, activation + "_vjp")(Zs[i - 1], delta @ coefs[i].T)
    return loss, dWs, dbs


# ---------------------------------------------------------------- update rules

def state_slots(solver):
    """How many arrays of state per parameter each rule keeps."""
    return {"sgd": 1, "gd": 0, "adam": 2, "adagrad": 1, "lbfgs": 0}[solver]


def update(solver, params, grads, state, step, hyper):
    """One in-place update of every parameter.

    sgd     (scikit-learn SGDOptimizer): ``v <- mu v - lr g``; ``w <- w + v``, or with
            Nesterov ``w <- w + mu v - lr g``.
    gd      the notes' gradient descent: ``w <- w - lr g`` (momentum ignored).
    adam    (scikit-learn AdamOptimizer): ``m <- b1 m + (1-b1) g``,
            ``v <- b2 v + (1-b2) g^2``, ``lr_t = lr sqrt(1-b2^t) / (1-b1^t)``,
            ``w <- w - lr_t m / (sqrt(v) + eps)`` (eps not bias-corrected).
    adagrad the notes' AdaGrad: ``G <- G + g^2``; ``w <- w - lr g / sqrt(eps + G)``.

    ``state[k][i]`` is slot k of parameter i; ``step`` counts updates from 1.
    """
    lr = hyper["lr"]
    for i, (p, g) in enumerate(zip(params, grads)):
        if solver == "sgd":
            mu, v = hyper["momentum"], state[0][i]
            v *= mu
            v -= lr * g
            p += (mu * v - lr * g) if hyper["nesterov"] else v
        elif solver == "gd":
            p -= lr * g
        elif solver == "adam":
            b1, b2 = hyper["beta_1"], hyper["beta_2"]
            m, v = state[0][i], state[1][i]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            lr_t = lr * np.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            p += -lr_t * m / (np.sqrt(v) + hyper["epsilon"])
        else:
            G = state[0][i]
            G += g * g
            p -= lr * g / np.sqrt(hyper["epsilon"] + G)
