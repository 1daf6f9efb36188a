"""Fused per-element kernels, compiled by numba: the `fast` path of the engine.

Each kernel does in one pass over the arrays what the NumPy reference (optimizers.py,
activations.py, model.py) does in several: an Adam step reads p, g, m, v once and writes
p, m, v once, instead of twelve NumPy calls each walking the whole chunk. The arithmetic is
the reference's, operation for operation and in the arrays' own dtype (the Python-side
wrappers cast every scalar to it first), so the two paths agree to rounding; tests hold
them to it (tests/test_fast_path.py).

Only `engine.fast` imports this module, and only once a model is large enough to gain
from it: importing numba costs a few tenths of a second. `cache=True` keeps the compiled
code on disk (next to this file, or in numba's user cache when that is read-only), so only
the first run after an install compiles. `nogil=True` lets the engine run blocks of one
update on two threads (engine.blas.parallel).
"""

import numpy as np
from numba import njit

Array = np.ndarray

jit = njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


# ----------------------------------------------------------------------------- optimizers
# p, g and the state are 1-D views of equal length; every scalar has the arrays' dtype
# (a NumPy scalar: `float` in the signatures is for the reader).


@jit
def sgd(p: Array, g: Array, lr: float, wd: float) -> None:
    for i in range(p.size):
        gi = g[i] + p[i] * wd if wd != 0 else g[i]
        p[i] -= gi * lr


@jit
def momentum(
    p: Array, g: Array, b: Array, lr: float, mu: float, wd: float, first: bool, nesterov: bool
) -> None:
    for i in range(p.size):
        gi = g[i] + p[i] * wd if wd != 0 else g[i]
        bi = gi if first else b[i] * mu + gi
        b[i] = bi
        p[i] -= (bi * mu + gi) * lr if nesterov else bi * lr


@jit
def adam(
    p: Array,
    g: Array,
    m: Array,
    v: Array,
    b1: float,
    c1: float,
    b2: float,
    c2: float,
    step: float,
    eps: float,
    wd: float,
    decay: float,
) -> None:
    """c1 = 1 - b1, c2 = 1 - b2; step and eps with the bias correction folded in (see Adam);
    decay = 1 - lr * wd for AdamW (1 otherwise), wd the coupled L2 term (0 for AdamW)."""
    for i in range(p.size):
        pi = p[i] * decay if decay != 1 else p[i]
        gi = g[i] + pi * wd if wd != 0 else g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i] = mi
        v[i] = vi
        p[i] = pi - (mi / (np.sqrt(vi) + eps)) * step


@jit
def rmsprop(
    p: Array, g: Array, v: Array, lr: float, alpha: float, c: float, eps: float, wd: float
) -> None:
    """c = 1 - alpha."""
    for i in range(p.size):
        gi = g[i] + p[i] * wd if wd != 0 else g[i]
        vi = v[i] * alpha + (gi * gi) * c
        v[i] = vi
        p[i] -= (gi / (np.sqrt(vi) + eps)) * lr


# ----------------------------------------------------------------------------- losses
# z, out: (rows, classes) C-contiguous, out may be z itself; y: (rows,) class indices.


@jit
def softmax_cross_entropy(z: Array, y: Array, out: Array) -> tuple[float, int]:
    """The gradient (softmax(z) - one_hot(y)) / n into `out`, row by row; returns the sum
    of the rows' losses log(sum(exp(z))) - z[y] and how many rows have their arg-max
    (the first, as np.argmax) at y: the training step's loss and accuracy in one pass."""
    rows, classes = z.shape
    n = z.dtype.type(rows)
    inv_n = z.dtype.type(1.0 / rows)
    total = 0.0
    correct = 0
    for i in range(rows):
        top, at = z[i, 0], 0
        for j in range(1, classes):
            if z[i, j] > top:
                top, at = z[i, j], j
        t = y[i]
        z_true = z[i, t]  # read before `out` (perhaps z) is written
        s = z.dtype.type(0)
        for j in range(classes):
            e = np.exp(z[i, j] - top)
            out[i, j] = e
            s += e
        total += (np.log(s) + top) - z_true
        correct += at == t
        s *= n
        for j in range(classes):
            out[i, j] /= s
        out[i, t] -= inv_n
    return total, correct


# ----------------------------------------------------------------------------- layers
# z, a, g: (rows, units) C-contiguous; b, db: (units,).


@jit
def bias_relu(z: Array, b: Array) -> None:
    """z = max(z + b, 0) in place (NaN stays NaN, as with np.maximum)."""
    rows, cols = z.shape
    zero = z.dtype.type(0)
    for i in range(rows):
        for j in range(cols):
            v = z[i, j] + b[j]
            z[i, j] = zero if v < zero else v


@jit
def bias_add(z: Array, b: Array) -> None:
    rows, cols = z.shape
    for i in range(rows):
        for j in range(cols):
            z[i, j] += b[j]


@jit
def relu_backward(a: Array, g: Array, db: Array) -> None:
    """g = g * (a > 0) in place, and db = the column sums of the new g (row by row)."""
    rows, cols = g.shape
    zero = g.dtype.type(0)
    db[:] = zero
    for i in range(rows):
        for j in range(cols):
            gv = g[i, j] if a[i, j] > zero else g[i, j] * zero
            g[i, j] = gv
            db[j] += gv


@jit
def identity_backward(a: Array, g: Array, db: Array) -> None:
    """g unchanged (f'(z) = 1); db = the column sums of g, row by row."""
    rows, cols = g.shape
    db[:] = g.dtype.type(0)
    for i in range(rows):
        for j in range(cols):
            db[j] += g[i, j]
