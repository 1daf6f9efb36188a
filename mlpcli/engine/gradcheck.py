"""Finite-difference check of backprop: analytic vs central-difference gradients."""

from collections.abc import Callable

import numpy as np

from mlpcli.engine import blas
from mlpcli.engine.model import MLP

Array = np.ndarray


def numeric_grad(f: Callable[[], float], x: Array, eps: float = 1e-6) -> Array:
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + eps
        up = f()
        flat_x[i] = old - eps
        down = f()
        flat_x[i] = old
        flat_g[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a: Array, b: Array, floor: float = 1e-12) -> float:
    """max |a - b| / max(|a|, |b|, floor): 0 when equal, ~1 when unrelated."""
    scale = max(float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0)), floor)
    return float(np.abs(a - b).max(initial=0)) / scale


def check_model(
    model: MLP, loss: Callable[[Array, Array], tuple[float, Array]], x: Array, y: Array
) -> dict[str, float]:
    """Relative error of backprop against finite differences, per parameter (float64 model).

    Each parameter's error is relative to the larger of its own gradient and a thousandth
    of the largest gradient in the network: a layer whose gradient has all but vanished
    (deep sigmoid nets) is judged by the absolute error, not by the rounding noise of the
    finite differences (~1e-11 with eps 1e-5) divided by a tiny number.
    """
    _, dlogits = loss(model.forward(x), y)
    model.backward(dlogits)
    analytic = {p.name: p.grad.copy() for p in model.params}
    floor = 1e-3 * max(float(np.abs(g).max(initial=0)) for g in analytic.values())

    def f() -> float:
        return loss(model.forward(x), y)[0]

    errors = {
        p.name: relative_error(analytic[p.name], numeric_grad(f, p.value, eps=1e-5), floor)
        for p in model.params
    }
    blas.restore()
    return errors
