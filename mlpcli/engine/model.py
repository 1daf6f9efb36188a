"""The multilayer perceptron: dense layers, hidden activations, dropout, initialisation.

All weights live in one flat buffer and all gradients in another; each layer's `weight`
and `bias` are views into them. Optimizers can then update every parameter in a handful
of NumPy calls, and a checkpoint is a list of named views.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlpcli.engine.activations import ACTIVATIONS, DERIVATIVES

Array = np.ndarray


@dataclass
class Param:
    """A named array and its gradient (same shape, same dtype)."""

    name: str
    value: Array
    grad: Array


def _normal(std: float) -> Callable[[np.random.Generator, int, int], Array]:
    return lambda rng, fan_in, fan_out: rng.normal(0.0, std, (fan_in, fan_out))


def _scaled_normal(gain: float, fans: Callable[[int, int], float]):
    return lambda rng, fi, fo: rng.normal(0.0, np.sqrt(gain / fans(fi, fo)), (fi, fo))


def _scaled_uniform(gain: float, fans: Callable[[int, int], float]):
    def init(rng: np.random.Generator, fi: int, fo: int) -> Array:
        limit = np.sqrt(3.0 * gain / fans(fi, fo))  # a uniform(-l, l) has variance l^2 / 3
        return rng.uniform(-limit, limit, (fi, fo))

    return init


def _fan_in(fi: int, fo: int) -> float:
    return fi


def _fan_avg(fi: int, fo: int) -> float:
    return (fi + fo) / 2


# Weight initialisers: name -> f(rng, fan_in, fan_out). Biases always start at zero.
INITIALIZERS: dict[str, Callable[[np.random.Generator, int, int], Array]] = {
    "he": _scaled_normal(2.0, _fan_in),
    "he_normal": _scaled_normal(2.0, _fan_in),
    "he_uniform": _scaled_uniform(2.0, _fan_in),
    "glorot": _scaled_uniform(1.0, _fan_avg),
    "glorot_uniform": _scaled_uniform(1.0, _fan_avg),
    "glorot_normal": _scaled_normal(1.0, _fan_avg),
    "normal": _normal(0.01),
    "uniform": lambda rng, fi, fo: rng.uniform(-0.05, 0.05, (fi, fo)),
}


class Dense:
    """z = x @ W + b, with W of shape (fan_in, fan_out)."""

    def __init__(self, weight: Param, bias: Param) -> None:
        self.weight = weight
        self.bias = bias
        self.x: Array | None = None  # the input, kept for backward

    def forward(self, x: Array) -> Array:
        self.x = x
        return x @ self.weight.value + self.bias.value

    def backward(self, dz: Array) -> Array:
        assert self.x is not None, "backward before forward"
        self.weight.grad[...] = self.x.T @ dz
        self.bias.grad[...] = dz.sum(axis=0)
        return dz @ self.weight.value.T


class MLP:
    """Dense layers with a hidden activation after each but the last.

    The last layer returns the output pre-activation (logits); the loss applies the
    output activation (see `engine.losses`).
    """

    def __init__(
        self,
        sizes: list[int],
        activations: list[str],
        dropout: float = 0.0,
        dtype: type = np.float32,
    ) -> None:
        if len(activations) != len(sizes) - 2:
            raise ValueError("need one activation per hidden layer")
        self.sizes = sizes
        self.activations = activations
        self.dropout = dropout
        self.dtype = np.dtype(dtype)
        total = sum(fi * fo + fo for fi, fo in itertools.pairwise(sizes))
        self.flat = Param("params", np.zeros(total, self.dtype), np.zeros(total, self.dtype))
        self.layers: list[Dense] = []
        offset = 0
        for i, (fi, fo) in enumerate(itertools.pairwise(sizes)):
            w = self._view(f"layers.{i}.weight", offset, (fi, fo))
            b = self._view(f"layers.{i}.bias", offset + fi * fo, (fo,))
            self.layers.append(Dense(w, b))
            offset += fi * fo + fo
        self._cache: list[tuple[Array, Array, Array | None]] = []

    def _view(self, name: str, offset: int, shape: tuple[int, ...]) -> Param:
        size = int(np.prod(shape))
        value = self.flat.value[offset : offset + size].reshape(shape)
        grad = self.flat.grad[offset : offset + size].reshape(shape)
        return Param(name, value, grad)

    @property
    def params(self) -> list[Param]:
        """Per-layer parameters in checkpoint order: layers.0.weight, layers.0.bias, ..."""
        return [p for layer in self.layers for p in (layer.weight, layer.bias)]

    @property
    def n_params(self) -> int:
        return self.flat.value.size

    def init(self, rng: np.random.Generator, scheme: str = "he") -> None:
        """Draw fresh weights with `INITIALIZERS[scheme]`; biases to zero."""
        make = INITIALIZERS[scheme]
        for layer in self.layers:
            fi, fo = layer.weight.value.shape
            layer.weight.value[...] = make(rng, fi, fo)
            layer.bias.value[...] = 0.0

    def forward(self, x: Array, rng: np.random.Generator | None = None) -> Array:
        """Logits for a batch. Passing `rng` means training: dropout is applied with it."""
        self._cache = []
        h = x.astype(self.dtype, copy=False)
        for layer, name in zip(self.layers[:-1], self.activations, strict=True):
            z = layer.forward(h)
            a = ACTIVATIONS[name](z)
            mask = None
            h = a
            if rng is not None and self.dropout > 0:
                # Inverted dropout: scale the kept units now so evaluation needs nothing.
                keep = 1.0 - self.dropout
                mask = (rng.random(a.shape) < keep).astype(self.dtype) / self.dtype.type(keep)
                h = a * mask
            self._cache.append((z, a, mask))
        return self.layers[-1].forward(h)

    def backward(self, dlogits: Array) -> None:
        """Fill every `Param.grad` from the gradient of the loss w.r.t. the logits."""
        grad = self.layers[-1].backward(dlogits)
        for layer, name, (z, a, mask) in zip(
            reversed(self.layers[:-1]),
            reversed(self.activations),
            reversed(self._cache),
            strict=True,
        ):
            if mask is not None:
                grad = grad * mask
            grad = layer.backward(DERIVATIVES[name](z, a, grad))

    def logits(self, x: Array, chunk: int = 8192) -> Array:
        """Evaluation-mode logits (no dropout), computed in chunks to bound memory."""
        parts = [self.forward(x[i : i + chunk]) for i in range(0, len(x), chunk)]
        self._cache = []
        return np.concatenate(parts) if parts else np.zeros((0, self.sizes[-1]), self.dtype)
