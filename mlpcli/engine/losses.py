"""Losses, each fused with the output activation it belongs to.

A loss takes the output layer's pre-activation `z` (logits) and the targets, and returns
the batch mean of the loss and its gradient with respect to `z`. Fusing the output
activation into the loss is what makes the gradients simple and stable (softmax with
cross-entropy gives `(p - y) / n`); `LOSSES[name].output` names the activation each loss
is fused with, and the config refuses any other pairing.

Targets: class indices (int) for `cross_entropy`, 0/1 labels for `binary_cross_entropy`,
an (n, k) float array for the regression losses. Regression losses average over every
element, as PyTorch's `reduction='mean'` does.

`cross_entropy` and `binary_cross_entropy` take an optional `class_weight` (one weight per
class): each example's loss is multiplied by its class's weight and the batch mean stays a
plain mean over the n examples, `sum(w[y_i] * loss_i) / n` (PyTorch's weighted mean divides
by `sum(w[y_i])` instead; ours keeps the loss scale, and so the learning rate, of the
unweighted loss when the weights average 1, as `balanced` weights do).

Every loss takes an optional `out`: an array shaped like z (z itself included) that
receives the gradient, so that the training loop allocates nothing per batch.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlpcli.engine.activations import sigmoid

Array = np.ndarray
LossFn = Callable[..., tuple[float, Array]]  # (z, y, [options], out=None)


def log_softmax(z: Array) -> Array:
    """log p = z - logsumexp(z), shifted by the row max so exp never overflows."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z: Array) -> Array:
    """Row-wise probabilities that sum to 1."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=64)
def _row_starts(n: int, k: int) -> Array:
    """Offsets of the rows of an (n, k) array in its flat view (kept: asked every batch)."""
    starts = np.arange(0, n * k, k)
    starts.flags.writeable = False
    return starts


@functools.lru_cache(maxsize=64)
def _ones(k: int, dtype: np.dtype) -> Array:
    ones = np.ones(k, dtype)
    ones.flags.writeable = False
    return ones


def cross_entropy(
    z: Array,
    y: Array,
    label_smoothing: float = 0.0,
    out: Array | None = None,
    class_weight: Array | None = None,
) -> tuple[float, Array]:
    """Mean negative log-likelihood of the softmax of `z` at the true classes `y`.

    With label smoothing eps the target is (1 - eps) * one_hot(y) + eps / K, as in
    PyTorch's CrossEntropyLoss(label_smoothing=eps). The gradient (softmax(z) - target) / n
    is written into `out` when given (a C-contiguous array shaped like z; z itself is fine).
    With `class_weight` w, row i's loss and gradient are scaled by w[y_i].
    """
    if class_weight is not None:
        return _weighted_cross_entropy(z, y, label_smoothing, out, class_weight)
    n, k = z.shape
    eps = label_smoothing
    # Rows are short (one entry per class), so this avoids row-wise reductions, which
    # cost ~5x a plain ufunc call on a (128, 10) array: the row maximum is read at the
    # argmax, and the row sums are a matrix-vector product. In a small model every NumPy
    # call here is a visible part of a training step: keep their number down.
    flat = z.reshape(-1)
    row_start = _row_starts(n, k)
    true_at = row_start + y
    z_max = flat[row_start + z.argmax(axis=1)]
    z_true = flat[true_at]
    z_total = float(z.sum()) if eps else 0.0
    # z is read for the last time above, so `out` may be z itself.
    p = np.subtract(z, z_max[:, None], out=out)  # shifted so that exp never overflows
    np.exp(p, out=p)
    sums = p @ _ones(k, p.dtype)
    log_sum_exp = np.log(sums)
    log_sum_exp += z_max
    # -sum(target * log_softmax) / n, with log_softmax = z - log_sum_exp per row
    # (np.add.reduce, not .sum(): that is a Python wrapper around it)
    nll = float(np.add.reduce(log_sum_exp - z_true))  # row by row: exact near a zero loss
    smooth = k * float(np.add.reduce(log_sum_exp)) - z_total if eps else 0.0
    loss = ((1.0 - eps) * nll + eps / k * smooth) / n
    sums *= n
    p /= sums[:, None]  # softmax / n
    if eps:
        p -= eps / (k * n)
    p.reshape(-1)[true_at] -= (1.0 - eps) / n
    return loss, p


def _weighted_cross_entropy(
    z: Array, y: Array, eps: float, out: Array | None, class_weight: Array
) -> tuple[float, Array]:
    """cross_entropy with row i weighted by class_weight[y_i]; the plain, unfused form."""
    n, k = z.shape
    w = class_weight[y].astype(np.float64)
    log_p = log_softmax(z.astype(np.float64))
    target = np.full((n, k), eps / k)
    target[np.arange(n), y] += 1.0 - eps
    row_loss = -(target * log_p).sum(axis=1)
    loss = float(w @ row_loss) / n
    grad = (np.exp(log_p) - target) * (w / n)[:, None]
    return loss, _into(out, grad.astype(z.dtype, copy=False))


def _into(out: Array | None, grad: Array) -> Array:
    """The gradient, copied into `out` when the caller gave one."""
    if out is None:
        return grad
    out[...] = grad
    return out


def binary_cross_entropy(
    z: Array, y: Array, out: Array | None = None, class_weight: Array | None = None
) -> tuple[float, Array]:
    """Mean of -[y log s(z) + (1 - y) log(1 - s(z))] for one sigmoid unit.

    Written as softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)), finite for any z.
    With `class_weight` w (two weights), row i's loss and gradient are scaled by w[y_i].
    """
    n = z.shape[0]
    t = y.reshape(n, 1).astype(z.dtype)
    losses = np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z)))
    grad = (sigmoid(z) - t) / n
    if class_weight is None:
        return float(losses.mean()), _into(out, grad)
    w = class_weight[y.reshape(n).astype(np.int64)].reshape(n, 1).astype(z.dtype)
    return float((losses * w).mean()), _into(out, grad * w)


def mse(z: Array, y: Array, out: Array | None = None) -> tuple[float, Array]:
    """Mean squared error over all elements."""
    diff = np.subtract(z, y, out=out)
    loss = float(np.vdot(diff, diff)) / diff.size
    diff *= 2.0 / diff.size
    return loss, diff


def mae(z: Array, y: Array, out: Array | None = None) -> tuple[float, Array]:
    """Mean absolute error over all elements (subgradient 0 at a perfect fit)."""
    diff = np.subtract(z, y, out=out)
    loss = float(np.abs(diff).sum()) / diff.size
    np.sign(diff, out=diff)
    diff *= 1.0 / diff.size
    return loss, diff


def huber(z: Array, y: Array, delta: float = 1.0, out: Array | None = None) -> tuple[float, Array]:
    """Quadratic within `delta` of the target, linear outside (PyTorch's HuberLoss)."""
    diff = z - y
    absd = np.abs(diff)
    quad = absd <= delta
    loss = np.where(quad, 0.5 * diff * diff, delta * (absd - 0.5 * delta)).mean()
    grad = np.where(quad, diff, delta * np.sign(diff)) / diff.size
    return float(loss), _into(out, grad.astype(z.dtype, copy=False))


@dataclass(frozen=True)
class Loss:
    """A loss function and the output activation it is fused with.

    `kernel` names its one-pass form in engine.kernels, for the fast path (engine.fast):
    f(z, y, out) -> (sum of the rows' losses, rows predicted right), the gradient of the
    mean loss into `out`; it covers the plain loss (no label smoothing, no class weights).
    """

    fn: LossFn
    output: str
    task: str
    kernel: str | None = None


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss(
        cross_entropy, output="softmax", task="classification", kernel="softmax_cross_entropy"
    ),
    "binary_cross_entropy": Loss(binary_cross_entropy, output="sigmoid", task="classification"),
    "mse": Loss(mse, output="linear", task="regression"),
    "mae": Loss(mae, output="linear", task="regression"),
    "huber": Loss(huber, output="linear", task="regression"),
}

OUTPUTS: dict[str, Callable[[Array], Array]] = {
    "softmax": softmax,
    "sigmoid": sigmoid,
    "linear": lambda z: z,
}
