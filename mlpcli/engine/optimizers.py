"""Optimizers: small classes whose `step(params)` updates parameters in place.

Each update rule follows the definition in PyTorch's `torch.optim` documentation, so a
run can be checked against it step by step. In the rules below `g` is the gradient of
the mean batch loss, `p` the parameter, `t` the step count starting at 1.

State (moment buffers, step count) is keyed by parameter name so that it round-trips
through a checkpoint: `state_dict()` / `load_state_dict()`.
"""

import numpy as np

from mlpcli.engine.model import Param

Array = np.ndarray


class Optimizer:
    """Common state handling; subclasses implement `_update(p, g, state)`."""

    buffers: tuple[str, ...] = ()

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.t = 0
        self.state: dict[str, dict[str, Array]] = {}

    def step(self, params: list[Param]) -> None:
        """Apply one update to every parameter, using its `.grad`."""
        self.t += 1
        for p in params:
            if p.name not in self.state:
                self.state[p.name] = {b: np.zeros_like(p.value) for b in self.buffers}
            self._update(p.value, p.grad, self.state[p.name])

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        raise NotImplementedError

    def _with_l2(self, p: Array, g: Array) -> Array:
        """g + weight_decay * p (the coupled L2 penalty of torch.optim)."""
        return g + self.weight_decay * p if self.weight_decay else g

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
        self.state = {}
        for key, arr in state.items():
            if key == "t":
                continue
            name, b = key.rsplit(".", 1)
            self.state.setdefault(name, {})[b] = np.array(arr)


class SGD(Optimizer):
    """Plain (mini-batch) stochastic gradient descent.

    g = g + weight_decay * p
    p = p - lr * g
    """

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        p -= self.lr * self._with_l2(p, g)


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

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        g = self._with_l2(p, g)
        b = state["momentum_buffer"]
        if self.t == 1:
            b[...] = g
        else:
            b *= self.momentum
            b += g
        p -= self.lr * (g + self.momentum * b if self.nesterov else b)


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

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        if self.decoupled:
            p *= 1.0 - self.lr * self.weight_decay
        else:
            g = self._with_l2(p, g)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        bias1 = 1.0 - self.beta1**self.t
        bias2 = 1.0 - self.beta2**self.t
        p -= (self.lr / bias1) * m / (np.sqrt(v / bias2) + self.eps)


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

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        g = self._with_l2(p, g)
        v = state["square_avg"]
        v *= self.alpha
        v += (1.0 - self.alpha) * (g * g)
        p -= self.lr * g / (np.sqrt(v) + self.eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Momentum,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}
