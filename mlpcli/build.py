"""From a config to engine objects: the model, loss, optimizer and schedule it names.

The registries live in the engine and config (`LOSSES`, `config.OPTIMIZER_CONFIGS`,
`config.SCHEDULES`); these functions bind a run's options to them. Kept apart from the
training loop so that eval, predict and gradcheck build a loss or a model without
importing the trainer.
"""

from functools import partial
from typing import Any

import numpy as np

from mlpcli.config import RunConfig
from mlpcli.data import Dataset
from mlpcli.engine import LOSSES, MLP, Optimizer
from mlpcli.engine import schedules as sched
from mlpcli.engine.losses import LossFn
from mlpcli.errors import UserError
from mlpcli.sizes import check_fits


def build_optimizer(cfg: RunConfig) -> Optimizer:
    """The configured optimizer with only the keys its rule uses (config.OPTIMIZER_CONFIGS)."""
    return cfg.optimizer.build()


def build_schedule(cfg: RunConfig) -> sched.Schedule:
    """The configured schedule (config.SCHEDULES); none is a constant learning rate."""
    s, lr = cfg.training.schedule, cfg.optimizer.lr
    if s is None:
        return sched.Constant(lr)
    return s.build(lr, cfg.training.epochs, cfg.monitor)


def build_loss(cfg: RunConfig, class_weight: np.ndarray | None = None) -> LossFn:
    """The configured loss with its options bound: f(logits, y) -> (mean loss, dlogits).

    `class_weight` (one weight per class, from `class_weights`) weights each example."""
    loss = cfg.loss
    options: dict[str, dict[str, Any]] = {
        "cross_entropy": {"label_smoothing": loss.label_smoothing},
        "huber": {"delta": loss.delta},
    }
    bound = options.get(loss.name, {})
    if class_weight is not None:
        bound = {**bound, "class_weight": class_weight}
    return partial(LOSSES[loss.name].fn, **bound)


def class_weights(cfg: RunConfig, data: Dataset) -> np.ndarray | None:
    """`loss.class_weight` as one weight per class: balanced is n / (K * rows of the class)
    over the train split (scikit-learn's `compute_class_weight`), a mapping names classes."""
    spec = cfg.loss.class_weight
    if spec is None:
        return None
    names = data.class_names or []
    if spec == "balanced":
        y = data.parts["train"].y
        counts = np.bincount(y, minlength=len(names))
        return len(y) / (len(names) * np.maximum(counts, 1)).astype(np.float64)
    unknown = [name for name in spec if name not in names]
    if unknown:
        raise UserError(
            f"loss.class_weight: '{unknown[0]}' is not a class of the data "
            f"(classes: {', '.join(names[:20])})"
        )
    return np.array([spec.get(name, 1.0) for name in names], dtype=np.float64)


def build_model(cfg: RunConfig, n_features: int, n_outputs: int, rows: int = 0) -> MLP:
    """The configured network; `rows`: how many rows one forward pass will see at most."""
    units = [layer.units for layer in cfg.model.hidden]
    out = 1 if cfg.model.output == "sigmoid" else n_outputs
    # refused before NumPy tries to allocate it (parameters, optimizer state, activations)
    sizes = [n_features, *units, out]
    check_fits(sizes, units, rows, cfg.training.dtype, cfg.optimizer.name)
    return MLP(
        [n_features, *units, out],
        [layer.activation for layer in cfg.model.hidden],
        dropout=cfg.model.dropout,
        dtype=np.dtype(cfg.training.dtype).type,
    )
