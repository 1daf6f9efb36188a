"""`mlpcli gradcheck`: backprop of exactly the configured network against finite differences."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlpcli.build import build_loss, build_model, class_weights
from mlpcli.config import RunConfig
from mlpcli.data import Dataset
from mlpcli.engine import MLP
from mlpcli.engine.gradcheck import check_model
from mlpcli.engine.losses import LossFn

TOLERANCE = 1e-6  # float64 central differences agree to ~1e-9 on smooth activations


# Up to this many parameters a network is checked whole by default; a bigger one (MNIST's
# 784-1024-1024-10 has 1.9 million, hours of forward passes) gets a sample of each tensor.
CHECK_ALL_UP_TO = 20_000
DEFAULT_SAMPLE = 30


@dataclass
class ParamCheck:
    name: str
    shape: tuple[int, ...]
    grad_norm: float  # of the analytic gradient: how much signal reaches this layer
    relative_error: float
    checked: int  # entries compared against finite differences (all, or a sample)

    @property
    def ok(self) -> bool:
        return self.relative_error < TOLERANCE

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class GradcheckPlan:
    """What a check will do, known before it starts: the network, the entries, the cost."""

    cfg: RunConfig
    model: MLP
    loss: LossFn
    x: np.ndarray
    y: np.ndarray
    entries: dict[str, np.ndarray]  # flat indices per parameter
    sample: int | None  # entries per parameter, None for all
    seconds_per_pass: float  # one forward pass and loss on the rows

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.entries.values())

    @property
    def n_params(self) -> int:
        return self.model.n_params

    @property
    def estimate_seconds(self) -> float:
        return 2 * self.total * self.seconds_per_pass  # central differences: 2 passes each


def plan_gradcheck(
    cfg: RunConfig, data: Dataset, rows: int = 8, sample: int | None = None
) -> GradcheckPlan:
    """Build the configured network (float64, dropout off, at its initial weights) and pick
    the entries to check: `sample` random ones per parameter (0: all; None: all up to
    `CHECK_ALL_UP_TO` parameters, else `DEFAULT_SAMPLE`)."""
    float64 = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(update={"dropout": 0.0}),
            "training": cfg.training.model_copy(update={"dtype": "float64"}),
        }
    )
    model = build_model(float64, data.n_features, data.n_outputs)
    model.init(np.random.default_rng([cfg.seed, 1]), cfg.model.init)
    if sample is None:
        sample = 0 if model.n_params <= CHECK_ALL_UP_TO else DEFAULT_SAMPLE
    rng = np.random.default_rng([cfg.seed, 2])
    entries = {
        p.name: np.arange(p.value.size)
        if not sample or sample >= p.value.size
        else np.sort(rng.choice(p.value.size, sample, replace=False))
        for p in model.params
    }
    train = data.parts["train"]
    x = train.X[:rows].astype(np.float64)
    y = train.y[:rows].astype(np.float64) if data.task == "regression" else train.y[:rows]
    loss = build_loss(float64, class_weights(cfg, data))
    start, passes = time.perf_counter(), 0
    while passes < 3 or time.perf_counter() - start < 0.05:
        loss(model.forward(x), y)
        passes += 1
    per_pass = (time.perf_counter() - start) / passes
    return GradcheckPlan(float64, model, loss, x, y, entries, sample or None, per_pass)


def gradcheck(
    cfg: RunConfig,
    data: Dataset,
    rows: int = 8,
    sample: int | None = None,
    on_entry: Callable[[], None] | None = None,
) -> list[ParamCheck]:
    """Per-parameter relative error of backprop on the first `rows` training rows.

    The network is the configured one (layers, activations, output, loss, init, seed) in
    float64 with dropout off, at its initial weights; see `plan_gradcheck` for `sample`.
    """
    return run_gradcheck(plan_gradcheck(cfg, data, rows, sample), on_entry)


def run_gradcheck(
    plan: GradcheckPlan, on_entry: Callable[[], None] | None = None
) -> list[ParamCheck]:
    """Carry out a planned check; `on_entry` is called after each entry checked."""
    model = plan.model
    # leaves the analytic gradients in p.grad
    errors = check_model(model, plan.loss, plan.x, plan.y, plan.entries, on_entry)
    return [
        ParamCheck(
            p.name,
            p.value.shape,
            float(np.linalg.norm(p.grad)),
            errors[p.name],
            len(plan.entries[p.name]),
        )
        for p in model.params
    ]
