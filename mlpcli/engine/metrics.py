"""Quality metrics computed from logits or predictions (the loss is in `losses`)."""

import numpy as np

Array = np.ndarray


def predicted_classes(logits: Array) -> Array:
    """The arg-max class; one sigmoid unit predicts class 1 when its logit is positive."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return logits.argmax(axis=1)


def accuracy(logits: Array, y: Array) -> float:
    """Fraction of rows whose predicted class is the true class."""
    return float((predicted_classes(logits) == y).mean()) if len(y) else float("nan")


def r2(pred: Array, y: Array) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (0 for the mean predictor)."""
    ss_tot = float(((y - y.mean(axis=0)) ** 2).sum())
    ss_res = float(((y - pred) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
