"""Learning-rate schedules, per epoch (epochs counted from 0 as in torch.optim.lr_scheduler).

`lr(epoch)` gives the learning rate to train epoch `epoch` with; `observe(value)` feeds the
monitored metric at the end of an epoch (only `Plateau` uses it).
"""

import math


class Schedule:
    def __init__(self, base_lr: float) -> None:
        self.base_lr = base_lr

    def lr(self, epoch: int) -> float:
        return self.base_lr

    def observe(self, value: float) -> None:
        """Constant, step, exponential and cosine ignore the metric."""

    def state(self) -> dict[str, float]:
        return {}

    def load_state(self, state: dict[str, float]) -> None:
        """Only stateful schedules (plateau) restore anything."""


class Constant(Schedule):
    """lr = base_lr"""


class Step(Schedule):
    """lr = base_lr * gamma ** (epoch // step_size)   (StepLR)"""

    def __init__(self, base_lr: float, step_size: int, gamma: float) -> None:
        super().__init__(base_lr)
        self.step_size, self.gamma = step_size, gamma

    def lr(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """lr = base_lr * gamma ** epoch   (ExponentialLR)"""

    def __init__(self, base_lr: float, gamma: float) -> None:
        super().__init__(base_lr)
        self.gamma = gamma

    def lr(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


class Cosine(Schedule):
    """Linear warmup, then cosine annealing from base_lr to eta_min over t_max epochs.

    warmup:  lr = base_lr * (epoch + 1) / (warmup + 1)             for epoch < warmup
    cosine:  lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / t)) / 2,
             e = epoch - warmup, t = t_max - warmup   (CosineAnnealingLR)
    """

    def __init__(self, base_lr: float, t_max: int, eta_min: float, warmup: int) -> None:
        super().__init__(base_lr)
        self.t_max, self.eta_min, self.warmup = t_max, eta_min, warmup

    def lr(self, epoch: int) -> float:
        if epoch < self.warmup:
            return self.base_lr * (epoch + 1) / (self.warmup + 1)
        span = max(self.t_max - self.warmup, 1)
        e = min(epoch - self.warmup, span)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * e / span)) / 2


class Plateau(Schedule):
    """Multiply lr by `factor` after `patience` epochs without improvement (ReduceLROnPlateau).

    An improvement beats the best value so far by more than `min_delta`.
    """

    def __init__(
        self,
        base_lr: float,
        minimize: bool,
        factor: float,
        patience: int,
        min_delta: float,
        min_lr: float,
    ) -> None:
        super().__init__(base_lr)
        self.sign = 1.0 if minimize else -1.0
        self.factor, self.patience, self.min_delta, self.min_lr = (
            factor,
            patience,
            min_delta,
            min_lr,
        )
        self.current = base_lr
        self.best = math.inf
        self.wait = 0

    def lr(self, epoch: int) -> float:
        return self.current

    def observe(self, value: float) -> None:
        if self.sign * value < self.best - self.min_delta:
            self.best = self.sign * value
            self.wait = 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.current = max(self.current * self.factor, self.min_lr)
            self.wait = 0

    def state(self) -> dict[str, float]:
        return {"current": self.current, "best": self.best, "wait": self.wait}

    def load_state(self, state: dict[str, float]) -> None:
        self.current, self.best, self.wait = state["current"], state["best"], int(state["wait"])
