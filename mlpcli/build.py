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
from mlpcli.engine.model import FUSED
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


def build_model(
    cfg: RunConfig, n_features: int, n_outputs: int, rows: int = 0, steps: int = 0
) -> MLP:
    """The configured network; `rows`: how many rows one forward pass will see at most;
    `steps`: the run's `fused_steps` (0 when not training)."""
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
        steps=steps,
    )


def fused_steps(cfg: RunConfig, train_rows: int) -> int:
    """The optimizer steps the run plans (restarts x epochs x batches, as if no restart
    stopped early) when its whole step has kernels: the loss (`loss_kernel`) and every
    hidden activation (model.FUSED); else 0. With numba installed, a small model whose run
    plans at least engine.fast.MIN_STEPS of them takes the fast path. Any other step gains
    too little from the kernels (its optimizer's update alone) to pay numba's import. From
    the config and the data alone: a resumed run takes the path it started on."""
    if loss_kernel(cfg) is None or any(h.activation not in FUSED for h in cfg.model.hidden):
        return 0
    t = cfg.training
    return t.restarts * t.epochs * -(-train_rows // t.batch_size)


def loss_kernel(cfg: RunConfig) -> str | None:
    """The kernel (engine.kernels) computing the configured loss, its gradient and the count
    of correct predictions in one pass, where the loss has one for these options."""
    if cfg.loss.class_weight is not None or cfg.loss.label_smoothing:
        return None
    return LOSSES[cfg.loss.name].kernel
