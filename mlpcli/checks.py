"""`mlpcli gradcheck`: backprop of exactly the configured network against finite differences."""

from dataclasses import dataclass

import numpy as np

from mlpcli.config import RunConfig
from mlpcli.data import Dataset
from mlpcli.engine.gradcheck import check_model
from mlpcli.train import build_loss, build_model, class_weights

TOLERANCE = 1e-6  # float64 central differences agree to ~1e-9 on smooth activations


@dataclass
class ParamCheck:
    name: str
    shape: tuple[int, ...]
    grad_norm: float  # of the analytic gradient: how much signal reaches this layer
    relative_error: float

    @property
    def ok(self) -> bool:
        return self.relative_error < TOLERANCE


def gradcheck(cfg: RunConfig, data: Dataset, rows: int = 8) -> list[ParamCheck]:
    """Per-parameter relative error of backprop on the first `rows` training rows.

    The network is the configured one (layers, activations, output, loss, init, seed) in
    float64 with dropout off, at its initial weights.
    """
    float64 = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(update={"dropout": 0.0}),
            "training": cfg.training.model_copy(update={"dtype": "float64"}),
        }
    )
    model = build_model(float64, data.n_features, data.n_outputs)
    model.init(np.random.default_rng([cfg.seed, 1]), cfg.model.init)
    train = data.parts["train"]
    x = train.X[:rows].astype(np.float64)
    y = train.y[:rows].astype(np.float64) if data.task == "regression" else train.y[:rows]
    loss = build_loss(float64, class_weights(cfg, data))
    errors = check_model(model, loss, x, y)  # leaves the analytic gradients in p.grad
    return [
        ParamCheck(p.name, p.value.shape, float(np.linalg.norm(p.grad)), errors[p.name])
        for p in model.params
    ]
