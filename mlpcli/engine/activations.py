"""Hidden-layer activations: each a forward function and its derivative.

`ACTIVATIONS[name](z)` returns a = f(z). `DERIVATIVES[name](z, a, grad_a)` returns
grad_z = grad_a * f'(z), written in terms of the output `a` where that is cheaper
(relu, tanh, sigmoid). The names of the dicts are the valid names in a config.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray

LEAKY_SLOPE = 0.01  # PyTorch's LeakyReLU default
ELU_ALPHA = 1.0  # PyTorch's ELU default
_GELU_C = math.sqrt(2.0 / math.pi)  # a Python float, so float32 stays float32


def sigmoid(z: Array) -> Array:
    """Logistic function without overflow: exp is only taken of -|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def _gelu_inner(z: Array) -> Array:
    return _GELU_C * (z + 0.044715 * z**3)


def gelu(z: Array) -> Array:
    """GELU, tanh approximation (PyTorch's GELU(approximate='tanh'))."""
    return 0.5 * z * (1.0 + np.tanh(_gelu_inner(z)))


def _gelu_grad(z: Array, a: Array, g: Array) -> Array:
    t = np.tanh(_gelu_inner(z))
    dinner = _GELU_C * (1.0 + 3 * 0.044715 * z**2)
    return g * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t**2) * dinner)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
    "elu": lambda z: np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0))),
    "gelu": gelu,
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "softplus": lambda z: np.logaddexp(0, z),  # log(1 + e^z) without overflow
    "identity": lambda z: z,
}

DERIVATIVES: dict[str, Callable[[Array, Array, Array], Array]] = {
    "relu": lambda z, a, g: g * (a > 0),
    "leaky_relu": lambda z, a, g: g * np.where(z > 0, 1.0, LEAKY_SLOPE).astype(g.dtype),
    "elu": lambda z, a, g: g * np.where(z > 0, 1.0, a + ELU_ALPHA).astype(g.dtype),
    "gelu": _gelu_grad,
    "tanh": lambda z, a, g: g * (1 - a * a),
    "sigmoid": lambda z, a, g: g * a * (1 - a),
    "softplus": lambda z, a, g: g * sigmoid(z),
    "identity": lambda z, a, g: g,
}


# In-place forms for the training loop, where a fresh array per batch would cost time and
# memory. `forward(z, zeros)` writes a = f(z) over z; `backward(a, g, scratch)` writes
# g * f'(z) over g, computed from the output a alone (z is gone by then). Only activations
# whose derivative is a function of their output qualify; the others take the allocating
# path above. `zeros` is an all-zero array and `scratch` a free array, both shaped like z.


def _relu_forward(z: Array, zeros: Array) -> Array:
    # Against an array of zeros rather than the scalar 0: NumPy's vectorised maximum loop
    # covers two arrays, and is ~5x faster than the array-scalar one here.
    return np.maximum(z, zeros, out=z)


def _relu_backward(a: Array, g: Array, scratch: Array) -> Array:
    np.greater(a, 0, out=scratch)  # f'(z) = 1 where the output is positive, else 0
    return np.multiply(g, scratch, out=g)


def _tanh_forward(z: Array, zeros: Array) -> Array:
    return np.tanh(z, out=z)


def _tanh_backward(a: Array, g: Array, scratch: Array) -> Array:
    np.multiply(a, a, out=scratch)
    np.subtract(1, scratch, out=scratch)  # f'(z) = 1 - a^2
    return np.multiply(g, scratch, out=g)


def _identity_forward(z: Array, zeros: Array) -> Array:
    return z


def _identity_backward(a: Array, g: Array, scratch: Array) -> Array:
    return g


@dataclass(frozen=True)
class InPlace:
    """An activation and its derivative, written into existing arrays."""

    forward: Callable[[Array, Array], Array]
    backward: Callable[[Array, Array, Array], Array]


IN_PLACE: dict[str, InPlace] = {
    "relu": InPlace(_relu_forward, _relu_backward),
    "tanh": InPlace(_tanh_forward, _tanh_backward),
    "identity": InPlace(_identity_forward, _identity_backward),
}
