"""The multilayer perceptron: dense layers, hidden activations, dropout, initialisation.

All weights live in one flat buffer and all gradients in another; each layer's `weight`
and `bias` are views into them. Optimizers can then update every parameter in a handful
of NumPy calls, and a checkpoint is a list of named views.

Training reuses memory: `forward` and `backward` write into arrays kept from one batch to
the next (a `Workspace`), so that a training step allocates nothing and costs only its
arithmetic. The price: the array `forward` returns is overwritten by the next `forward`.
`logits` (evaluation) returns a fresh array and leaves the training workspace alone.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from mlpcli.engine import blas, fast, memory
from mlpcli.engine.activations import ACTIVATIONS, DERIVATIVES, IN_PLACE

Array = np.ndarray

# Hidden activations the fast path (engine.fast) fuses with the layer's bias: forward
# z = f(x @ W + b) with the bias add and f in one pass; backward g * f'(z) and the bias
# gradient (its column sums) in one pass, instead of a pass and a matrix-vector product.
# Names of functions in engine.kernels: (forward(z, b), backward(a, g, db)).
FUSED: dict[str, tuple[str, str]] = {
    "relu": ("bias_relu", "relu_backward"),
    "identity": ("bias_add", "identity_backward"),
}


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


class Workspace:
    """Arrays reused from batch to batch, and what backward needs from the last forward.

    `array(kind, layer, rows, cols)` hands out the first `rows` rows of an array kept under
    (kind, layer); a batch with more rows than any before replaces it with a larger one.
    Arrays start as zeros (the "ones" kind as ones); the "zeros" and "ones" kinds are never
    written to.
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self._arrays: dict[tuple[str, int], Array] = {}
        # The views handed out, by (kind, layer, rows): batches mostly have one size, and
        # a dict hit costs less than slicing anew (a small model asks ~10 times a step).
        self._views: dict[tuple[str, int, int], Array] = {}
        self.inputs: list[Array] = []  # each layer's input x, for dW = x.T @ dz
        self.saved: list[tuple[Array | None, Array, Array | None]] = []  # (z, a, dropout mask)

    def array(
        self, kind: str, layer: int, rows: int, cols: int, dtype: type | None = None
    ) -> Array:
        view = self._views.get((kind, layer, rows))
        if view is not None:
            return view
        arr = self._arrays.get((kind, layer))
        if arr is None or arr.shape[0] < rows:
            fill = 1 if kind == "ones" else 0
            arr = np.full((rows, cols), fill, dtype or self.dtype)
            self._arrays[kind, layer] = arr
            self._views = {k: v for k, v in self._views.items() if k[:2] != (kind, layer)}
        view = self._views[kind, layer, rows] = arr[:rows]
        return view

    def ones(self, rows: int) -> Array:
        """A vector of ones: `ones @ dz` is dz's column sums as one BLAS call."""
        return self.array("ones", 0, rows, 1)[:, 0]


class Dense:
    """z = x @ W + b, with W of shape (fan_in, fan_out)."""

    def __init__(self, weight: Param, bias: Param) -> None:
        self.weight = weight
        self.bias = bias
        self.fan_in, self.fan_out = weight.value.shape

    def forward(self, x: Array, out: Array | None = None, bias: bool = True) -> Array:
        """z = x @ W + b (with `bias` False, x @ W: the caller adds b)."""
        if out is None:
            out = np.empty((len(x), self.fan_out), np.result_type(x, self.weight.value))
        z = blas.matmul(x, self.weight.value, out)
        if bias:
            z += self.bias.value
        return z

    def backward(self, x: Array, dz: Array, ones: Array | None, dx: Array | None) -> Array | None:
        """dW = x.T @ dz and db = dz.sum(0) into the grads; dx = dz @ W.T into `dx`.

        `ones` is a vector of len(dz) ones (db as a matrix-vector product, faster than a
        sum over axis 0); None when the caller has filled db already. With `dx` None the
        input gradient is skipped: the first layer's input is the data, whose gradient
        nobody needs.
        """
        # blas.matmul: large products are split over the cores (see engine.blas)
        blas.matmul(x.T, dz, self.weight.grad)
        if ones is not None:
            blas.matmul(ones, dz, self.bias.grad)
        if dx is None:
            return None
        return blas.matmul(dz, self.weight.value.T, dx)


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
        steps: int = 0,
    ) -> None:
        """`steps`: the training steps the run plans whose work the kernels cover, which
        with the model's size picks the path (engine.fast); 0 when not training."""
        if len(activations) != len(sizes) - 2:
            raise ValueError("need one activation per hidden layer")
        self.sizes = sizes
        self.activations = activations
        self.dropout = dropout
        self.dtype = np.dtype(dtype)
        self.steps = steps
        total = sum(fi * fo + fo for fi, fo in itertools.pairwise(sizes))
        # values and gradient side by side, on huge pages where possible (engine.memory)
        value, grad = memory.zeros((2, total), self.dtype)
        self.flat = Param("params", value, grad)
        self.layers: list[Dense] = []
        offset = 0
        for i, (fi, fo) in enumerate(itertools.pairwise(sizes)):
            w = self._view(f"layers.{i}.weight", offset, (fi, fo))
            b = self._view(f"layers.{i}.bias", offset + fi * fo, (fo,))
            self.layers.append(Dense(w, b))
            offset += fi * fo + fo
        self._work = Workspace(self.dtype)  # the training path's arrays

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

    def kernels(self) -> ModuleType | None:
        """The fused kernels this model runs on (engine.fast), or None: the NumPy path."""
        return fast.kernels(self.flat.value.size, self.steps)

    def init(self, rng: np.random.Generator, scheme: str = "he") -> None:
        """Draw fresh weights with `INITIALIZERS[scheme]`; biases to zero."""
        make = INITIALIZERS[scheme]
        for layer in self.layers:
            fi, fo = layer.weight.value.shape
            layer.weight.value[...] = make(rng, fi, fo)
            layer.bias.value[...] = 0.0

    def forward(self, x: Array, rng: np.random.Generator | None = None) -> Array:
        """Logits for a batch. Passing `rng` means training: dropout is applied with it.

        The result lives in the workspace: the next `forward` overwrites it. Like
        `backward`, it leaves the BLAS on one thread (see engine.blas): training code
        calls `blas.restore()` when it is done, not after every step.
        """
        return self._forward(x, rng, self._work)

    def _forward(self, x: Array, rng: np.random.Generator | None, work: Workspace) -> Array:
        n = len(x)
        h = x.astype(self.dtype, copy=False)
        k = self.kernels()
        work.inputs, work.saved = [], []
        for i, (layer, name) in enumerate(zip(self.layers[:-1], self.activations, strict=True)):
            work.inputs.append(h)
            out = work.array("z", i, n, layer.fan_out)
            if k is not None and name in FUSED:
                a = layer.forward(h, out, bias=False)
                getattr(k, FUSED[name][0])(a, layer.bias.value)  # a = f(z + b), in place
                kept_z = None
            elif name in IN_PLACE:
                z = layer.forward(h, out)
                # a overwrites z: the derivative is computed from a alone
                a = IN_PLACE[name].forward(z, work.array("zeros", i, n, layer.fan_out))
                kept_z = None
            else:
                z = layer.forward(h, out)
                a, kept_z = ACTIVATIONS[name](z), z
            mask = None
            h = a
            if rng is not None and self.dropout > 0:
                mask = self._dropout_mask(rng, work, i, a.shape)
                h = np.multiply(a, mask, out=work.array("dropped", i, n, layer.fan_out))
            work.saved.append((kept_z, a, mask))
        work.inputs.append(h)
        last = self.layers[-1]
        return last.forward(h, out=work.array("z", len(self.layers) - 1, n, last.fan_out))

    def _dropout_mask(
        self, rng: np.random.Generator, work: Workspace, i: int, shape: tuple[int, int]
    ) -> Array:
        """Inverted dropout: kept units are scaled by 1 / keep now so evaluation needs nothing."""
        keep = 1.0 - self.dropout
        draws = work.array("draws", i, *shape, dtype=np.float64)
        rng.random(out=draws)  # float64 draws, the same stream as rng.random(shape)
        mask = work.array("mask", i, *shape)
        np.less(draws, keep, out=mask)
        mask /= self.dtype.type(keep)
        return mask

    def backward(self, dlogits: Array) -> None:
        """Fill every `Param.grad` from the gradient of the loss w.r.t. the logits."""
        work = self._work
        n = len(dlogits)
        ones = work.ones(n)
        last = len(self.layers) - 1
        top = self.layers[last]
        dx_top = work.array("dx", last, n, top.fan_in) if last > 0 else None
        grad = top.backward(work.inputs[last], dlogits, ones, dx_top)
        k = self.kernels()
        for i in reversed(range(last)):
            assert grad is not None
            kept_z, a, mask = work.saved[i]
            if mask is not None:
                grad *= mask  # grad is the dx array of the layer above: ours to overwrite
            name = self.activations[i]
            layer = self.layers[i]
            db_ones: Array | None = ones
            if k is not None and name in FUSED:
                # grad = grad * f'(z) and the bias gradient, in one pass
                getattr(k, FUSED[name][1])(a, grad, layer.bias.grad)
                db_ones = None
            elif name in IN_PLACE:
                grad = IN_PLACE[name].backward(a, grad, work.array("scratch", i, n, a.shape[1]))
            else:
                assert kept_z is not None
                grad = DERIVATIVES[name](kept_z, a, grad)
            dx = work.array("dx", i, n, layer.fan_in) if i > 0 else None
            grad = layer.backward(work.inputs[i], grad, db_ones, dx)

    def logits(self, x: Array, chunk: int = 2048) -> Array:
        """Evaluation-mode logits (no dropout), computed in chunks to bound memory."""
        out = np.empty((len(x), self.sizes[-1]), self.dtype)
        work = Workspace(self.dtype)  # not the training workspace: a pending backward survives
        for i in range(0, len(x), chunk):
            out[i : i + chunk] = self._forward(x[i : i + chunk], None, work)
        blas.restore()
        return out
