"""Optimizers: small classes whose `step(params)` updates parameters in place.

Each update rule follows the definition in PyTorch's `torch.optim` documentation, so a
run can be checked against it step by step. In the rules below `g` is the gradient of
the mean batch loss, `p` the parameter, `t` the step count starting at 1.

State (moment buffers, step count) is keyed by parameter name so that it round-trips
through a checkpoint: `state_dict()` / `load_state_dict()`.
"""

import functools
from collections.abc import Callable
from types import ModuleType

import numpy as np

from mlpcli.engine import blas, fast, memory
from mlpcli.engine.model import Param

Array = np.ndarray
Fused = Callable[[Array, Array, dict[str, Array]], None]  # (p, g, state) of one block

# Elements updated per pass. An update makes several passes (10-12 for Adam) over the
# parameter, gradient and state; done a chunk at a time, the arrays stay in cache between
# passes. Much smaller chunks lose to NumPy's per-call overhead (~1 us a call).
CHUNK = 65536

# On the fast path (engine.fast) an update is one pass; parameters of at least this many
# elements are updated in two halves on two cores (engine.blas.parallel). Below it, waking
# the other thread costs more than half an update saves.
PARALLEL_MIN = 1 << 19


class Optimizer:
    """Common state handling; subclasses implement `_update(p, g, state, scratch)`.

    `_update` sees one chunk of a parameter at a time (1-D views of the parameter, its
    gradient and its state buffers) and writes the new values in place. `scratch` holds
    two free arrays of the chunk's length, so that an update allocates nothing. It is the
    reference; `_fused(kernels, dtype)` gives the same rule as one numba kernel (the fast
    path, taken for large parameters when numba is installed: see engine.fast).
    """

    buffers: tuple[str, ...] = ()

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.t = 0
        self.state: dict[str, dict[str, Array]] = {}
        self._scratch: dict[np.dtype, Array] = {}
        # Per parameter name: (the Param, its 1-D views, its state's, its scratch), kept
        # from step to step: rebuilding them costs more than a small model's whole update.
        self._views: dict[str, tuple[Param, Array, Array, dict[str, Array], Array]] = {}

    def step(self, params: list[Param], steps: int = 0) -> None:
        """Apply one update to every parameter, using its `.grad`.

        `steps`, the run's planned number of steps, and the parameters' total size pick the
        path (engine.fast), as they do for the model (MLP.steps).
        """
        self.t += 1
        # the path is the model's, and then every parameter takes it: a kernel call on a
        # bias costs a microsecond, NumPy's dozen passes over it ten
        k = fast.kernels(sum(p.value.size for p in params), steps)
        fused: dict[type, Fused] = {}  # this step's scalars, worked out once per dtype
        for p in params:
            views = self._views.get(p.name)
            if views is None or views[0] is not p:
                views = self._views[p.name] = self._views_of(p)
            _, value, grad, bufs, scratch = views
            if k is not None:
                dt = value.dtype.type
                if dt not in fused:
                    fused[dt] = self._fused(k, dt)
                self._step_fused(fused[dt], value, grad, bufs)
                continue
            if value.size <= CHUNK:  # small models: one chunk, no slicing
                self._update(value, grad, bufs, scratch)
                continue
            for start in range(0, value.size, CHUNK):
                part = slice(start, start + CHUNK)
                size = min(CHUNK, value.size - start)
                chunk = {b: arr[part] for b, arr in bufs.items()}
                self._update(value[part], grad[part], chunk, scratch[:, :size])

    def _step_fused(self, run: Fused, value: Array, grad: Array, bufs: dict[str, Array]) -> None:
        if value.size < PARALLEL_MIN:
            run(value, grad, bufs)
            return
        # two halves at fixed offsets: the same arithmetic whichever thread runs which
        half = value.size // 2
        blas.parallel(
            [
                functools.partial(
                    run, value[part], grad[part], {b: a[part] for b, a in bufs.items()}
                )
                for part in (slice(0, half), slice(half, None))
            ]
        )

    def _views_of(self, p: Param) -> tuple[Param, Array, Array, dict[str, Array], Array]:
        if p.name not in self.state:
            block = memory.zeros((len(self.buffers), *p.value.shape), p.value.dtype)
            self.state[p.name] = dict(zip(self.buffers, block, strict=True))
        value, grad = _flat(p.value), _flat(p.grad)
        bufs = {b: _flat(arr) for b, arr in self.state[p.name].items()}
        if value.dtype not in self._scratch:
            self._scratch[value.dtype] = np.empty((2, CHUNK), value.dtype)
        return p, value, grad, bufs, self._scratch[value.dtype][:, : min(value.size, CHUNK)]

    def _update(self, p: Array, g: Array, state: dict[str, Array], scratch: Array) -> None:
        raise NotImplementedError

    def _fused(self, k: ModuleType, dt: type) -> Fused:
        """This step's rule as a kernel call, its scalars cast to the parameters' dtype `dt`."""
        raise NotImplementedError

    def _with_l2(self, p: Array, g: Array, out: Array) -> Array:
        """g + weight_decay * p (the coupled L2 penalty of torch.optim), into `out` if needed."""
        if not self.weight_decay:
            return g
        np.multiply(p, self.weight_decay, out=out)
        return np.add(out, g, out=out)

    def state_dict(self) -> dict[str, Array]:
        """Flat, checkpointable state: {'t': ..., '<param>.<buffer>': array}."""
        out: dict[str, Array] = {"t": np.asarray(self.t, dtype=np.int64)}
        for name, bufs in self.state.items():
            for b, arr in bufs.items():
                out[f"{name}.{b}"] = arr
        return out

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore what `state_dict` returned (arrays are copied)."""
        self.t = int(state["t"])
        self._views = {}
        loaded: dict[str, dict[str, Array]] = {}
        for key, arr in state.items():
            if key != "t":
                name, b = key.rsplit(".", 1)
                loaded.setdefault(name, {})[b] = np.asarray(arr)
        self.state = {name: _copied(bufs) for name, bufs in loaded.items()}


def _copied(bufs: dict[str, Array]) -> dict[str, Array]:
    """Copies of one parameter's buffers, as rows of one block (engine.memory) when alike."""
    arrays = list(bufs.values())
    if len({(a.shape, a.dtype) for a in arrays}) != 1:
        return {b: np.array(a) for b, a in bufs.items()}
    block = memory.zeros((len(arrays), *arrays[0].shape), arrays[0].dtype)
    block[...] = arrays
    return dict(zip(bufs, block, strict=True))


def _flat(a: Array) -> Array:
    """A 1-D view of a contiguous array (a copy would silently drop in-place updates)."""
    if not a.flags.c_contiguous:
        raise ValueError("optimizers update contiguous arrays in place")
    return a.reshape(-1)


class SGD(Optimizer):
    """Plain (mini-batch) stochastic gradient descent.

    g = g + weight_decay * p
    p = p - lr * g
    """

    def _update(self, p: Array, g: Array, state: dict[str, Array], scratch: Array) -> None:
        g = self._with_l2(p, g, out=scratch[0])
        step = np.multiply(g, self.lr, out=scratch[1])
        p -= step

    def _fused(self, k: ModuleType, dt: type) -> Fused:
        lr, wd = dt(self.lr), dt(self.weight_decay)
        return lambda p, g, state: k.sgd(p, g, lr, wd)


class Momentum(Optimizer):
    """SGD with momentum, optionally Nesterov's form (torch.optim.SGD, dampening 0).

    g = g + weight_decay * p
    b = g if t == 1 else momentum * b + g
    p = p - lr * (g + momentum * b if nesterov else b)
    """

    buffers = ("momentum_buffer",)

    def __init__(
        self, lr: float, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = momentum
        self.nesterov = nesterov

    def _update(self, p: Array, g: Array, state: dict[str, Array], scratch: Array) -> None:
        g = self._with_l2(p, g, out=scratch[0])
        b = state["momentum_buffer"]
        if self.t == 1:
            b[...] = g
        else:
            b *= self.momentum
            b += g
        step = scratch[1]
        if self.nesterov:
            np.multiply(b, self.momentum, out=step)
            step += g
            step *= self.lr
        else:
            np.multiply(b, self.lr, out=step)
        p -= step

    def _fused(self, k: ModuleType, dt: type) -> Fused:
        lr, mu, wd = dt(self.lr), dt(self.momentum), dt(self.weight_decay)
        first, nesterov = self.t == 1, self.nesterov
        return lambda p, g, s: k.momentum(p, g, s["momentum_buffer"], lr, mu, wd, first, nesterov)


class Adam(Optimizer):
    """Adam with bias correction (torch.optim.Adam, amsgrad off).

    g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    p = p - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)
    """

    buffers = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(
        self,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, p: Array, g: Array, state: dict[str, Array], scratch: Array) -> None:
        if self.decoupled:
            p *= 1.0 - self.lr * self.weight_decay
        else:
            g = self._with_l2(p, g, out=scratch[0])
        m, v, tmp = state["exp_avg"], state["exp_avg_sq"], scratch[1]
        m *= self.beta1
        m += np.multiply(g, 1.0 - self.beta1, out=tmp)
        v *= self.beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.beta2
        v += tmp
        # The last line of the rule with c = sqrt(1 - beta2**t) taken out of the square
        # root: p -= (lr * c / (1 - beta1**t)) * m / (sqrt(v) + eps * c). Same value, and
        # two passes fewer over the arrays.
        c = (1.0 - self.beta2**self.t) ** 0.5
        step_size = self.lr * c / (1.0 - self.beta1**self.t)
        denom = np.sqrt(v, out=tmp)
        denom += self.eps * c
        update = np.divide(m, denom, out=tmp)
        update *= step_size
        p -= update

    def _fused(self, k: ModuleType, dt: type) -> Fused:
        c = (1.0 - self.beta2**self.t) ** 0.5  # as in _update
        step, eps = dt(self.lr * c / (1.0 - self.beta1**self.t)), dt(self.eps * c)
        b1, c1, b2, c2 = dt(self.beta1), dt(1.0 - self.beta1), dt(self.beta2), dt(1.0 - self.beta2)
        wd = dt(0.0 if self.decoupled else self.weight_decay)
        decay = dt(1.0 - self.lr * self.weight_decay if self.decoupled else 1.0)
        return lambda p, g, s: k.adam(
            p, g, s["exp_avg"], s["exp_avg_sq"], b1, c1, b2, c2, step, eps, wd, decay
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW).

    p = p * (1 - lr * weight_decay)
    then the Adam update with g (no L2 term added to g)
    """

    decoupled = True


class RMSprop(Optimizer):
    """RMSprop, not centred, no momentum (torch.optim.RMSprop).

    g = g + weight_decay * p
    v = alpha * v + (1 - alpha) * g**2
    p = p - lr * g / (sqrt(v) + eps)
    """

    buffers = ("square_avg",)

    def __init__(
        self, lr: float, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        self.alpha, self.eps = alpha, eps

    def _update(self, p: Array, g: Array, state: dict[str, Array], scratch: Array) -> None:
        g = self._with_l2(p, g, out=scratch[0])
        v, tmp = state["square_avg"], scratch[1]
        v *= self.alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.alpha
        v += tmp
        denom = np.sqrt(v, out=tmp)
        denom += self.eps
        update = np.divide(g, denom, out=tmp)
        update *= self.lr
        p -= update

    def _fused(self, k: ModuleType, dt: type) -> Fused:
        lr, alpha, c = dt(self.lr), dt(self.alpha), dt(1.0 - self.alpha)
        eps, wd = dt(self.eps), dt(self.weight_decay)
        return lambda p, g, s: k.rmsprop(p, g, s["square_avg"], lr, alpha, c, eps, wd)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Momentum,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}
