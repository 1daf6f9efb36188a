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


def numeric_grad_at(
    f: Callable[[], float],
    x: Array,
    indices: Array,
    eps: float = 1e-6,
    on_entry: Callable[[], None] | None = None,
) -> Array:
    """Central differences of f() with respect to the entries `indices` of x.reshape(-1)."""
    flat_x = x.reshape(-1)
    out = np.zeros(len(indices), dtype=x.dtype)
    for k, i in enumerate(indices):
        old = flat_x[i]
        flat_x[i] = old + eps
        up = f()
        flat_x[i] = old - eps
        down = f()
        flat_x[i] = old
        out[k] = (up - down) / (2 * eps)
        if on_entry is not None:
            on_entry()
    return out


def relative_error(a: Array, b: Array, floor: float = 1e-12) -> float:
    """max |a - b| / max(|a|, |b|, floor): 0 when equal, ~1 when unrelated."""
    scale = max(float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0)), floor)
    return float(np.abs(a - b).max(initial=0)) / scale


def check_model(
    model: MLP,
    loss: Callable[[Array, Array], tuple[float, Array]],
    x: Array,
    y: Array,
    entries: dict[str, Array] | None = None,
    on_entry: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Relative error of backprop against finite differences, per parameter (float64 model).

    `entries` limits the check to some flat indices of each parameter (a sample of a big
    net's weights; default: all); `on_entry` is called after each entry, for progress.

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

    errors = {}
    for p in model.params:
        at = np.arange(p.value.size) if entries is None else entries[p.name]
        numeric = numeric_grad_at(f, p.value, at, eps=1e-5, on_entry=on_entry)
        errors[p.name] = relative_error(analytic[p.name].reshape(-1)[at], numeric, floor)
    blas.restore()
    return errors
