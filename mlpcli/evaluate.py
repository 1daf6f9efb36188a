"""Metrics, eval and predict on a saved model: the checkpoint alone is enough.

`load_model` rebuilds the network from a checkpoint's arrays and meta (no config file, no
dataset). `evaluate` scores it on a split of the run's own data (re-created from the saved
config and seed) or on a new file; `predict` labels new rows. Columns of a new file are
matched by name against the feature names saved in the checkpoint, and the saved
standardisation is applied, so a file's column order does not matter.
"""

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from mlpcli.checkpoint import load_checkpoint
from mlpcli.config import RunConfig, config_from_dict
from mlpcli.data import load_dataset
from mlpcli.data.files import read_table
from mlpcli.engine import MLP
from mlpcli.engine.activations import sigmoid
from mlpcli.engine.losses import LossFn, softmax
from mlpcli.engine.metrics import accuracy, predicted_classes, r2
from mlpcli.errors import UserError
from mlpcli.train import build_loss

SPLITS = ("train", "val", "test")

# ----------------------------------------------------------------------------- metrics


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j]: rows of true class i predicted as class j (scikit-learn's layout)."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of every class, from a confusion matrix."""
    tp = np.diag(counts).astype(np.float64)
    support = counts.sum(axis=1)
    precision = _ratio(tp, counts.sum(axis=0))
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def averages(scores: dict[str, np.ndarray], counts: np.ndarray) -> dict[str, dict[str, float]]:
    """Macro (plain mean) and weighted (by support) averages of precision, recall and F1.

    As in scikit-learn, the macro average runs over the classes that occur in the true or
    the predicted labels; a class absent from both would only add a meaningless zero.
    """
    seen = (counts.sum(axis=0) + counts.sum(axis=1)) > 0
    support = scores["support"]
    total = int(support.sum())
    out: dict[str, dict[str, float]] = {"macro_avg": {}, "weighted_avg": {}}
    for name in ("precision", "recall", "f1"):
        values = scores[name]
        out["macro_avg"][name] = float(values[seen].mean()) if seen.any() else 0.0
        out["weighted_avg"][name] = float((values * support).sum() / total) if total else 0.0
    out["macro_avg"]["support"] = out["weighted_avg"]["support"] = total
    return out


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE (means over every element) and R²."""
    diff = pred.astype(np.float64) - y.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(np.mean(np.abs(diff))),
        "r2": r2(pred, y),
    }


# ----------------------------------------------------------------------------- the model


@dataclass
class SavedModel:
    """A network rebuilt from a checkpoint, with everything needed to use it on raw rows."""

    path: Path
    cfg: RunConfig
    model: MLP
    task: str
    feature_names: list[str]
    target_name: str | None
    class_names: list[str] | None
    scaler_mean: np.ndarray | None
    scaler_scale: np.ndarray | None
    loss_fn: LossFn

    def logits(self, X_raw: np.ndarray) -> np.ndarray:
        """Output pre-activations for unstandardised feature rows (features in saved order)."""
        X = X_raw
        if self.scaler_mean is not None and self.scaler_scale is not None:
            X = (X_raw - self.scaler_mean) / self.scaler_scale  # as training standardised
        return self.model.logits(X.astype(self.model.dtype))


def class_probabilities(logits: np.ndarray) -> np.ndarray:
    """One column per class; one sigmoid unit gives P(class 1), so P(class 0) = 1 - that."""
    if logits.shape[1] == 1:
        p1 = sigmoid(logits)
        return np.concatenate([1 - p1, p1], axis=1)
    return softmax(logits)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file as given, or the checkpoint of a run directory's final model."""
    if not path.is_dir():
        return path
    from mlpcli.runs import final_checkpoint

    return final_checkpoint(path)


def load_model(path: Path) -> SavedModel:
    """Rebuild the model of a checkpoint (or of a run directory's best.npz)."""
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    for key in ("config", "task", "feature_names"):
        if meta.get(key) is None:
            raise UserError(f"{path}: not a valid checkpoint: meta has no '{key}'")
    if not isinstance(meta["config"], dict):
        raise UserError(f"{path}: not a valid checkpoint: meta 'config' is not a mapping")
    cfg = config_from_dict(meta["config"], f"{path} (meta 'config')")
    if cfg.model.output != meta.get("output", cfg.model.output):
        raise UserError(
            f"{path}: meta 'output' is {meta['output']!r} but its config says {cfg.model.output!r}"
        )
    model = MLP(meta["sizes"], meta["activations"], dtype=np.dtype(meta["dtype"]).type)
    for p in model.params:
        p.value[...] = ckpt.arrays[p.name]
    return SavedModel(
        path=path,
        cfg=cfg,
        model=model,
        task=meta["task"],
        feature_names=meta["feature_names"],
        target_name=meta.get("target_name"),
        class_names=meta.get("class_names"),
        scaler_mean=ckpt.arrays.get("scaler.mean"),
        scaler_scale=ckpt.arrays.get("scaler.scale"),
        loss_fn=build_loss(cfg),
    )


# ----------------------------------------------------------------------------- data


@dataclass
class Rows:
    """Raw feature rows in the model's feature order, their encoded targets, and origin."""

    X: np.ndarray
    y: np.ndarray | None
    origin: str


def run_split(saved: SavedModel, split: str) -> Rows:
    """One split of the run's own data, re-created exactly from the saved config and seed."""
    data_cfg = saved.cfg.data.model_copy(update={"standardize": False})  # the saved scaler is used
    try:
        data = load_dataset(data_cfg, saved.cfg.seed)
    except UserError as exc:
        raise UserError(str(exc), hint="give --data FILE to evaluate on a file instead") from None
    d = saved.cfg.data
    source = d.source or d.train
    if data.feature_names != saved.feature_names or data.class_names != saved.class_names:
        raise UserError(
            f"{source}: its columns or classes differ from those {saved.path} was trained on",
            hint="give --data FILE to evaluate on a file instead",
        )
    if split not in data.parts:
        raise UserError(
            f"{saved.path}: the run's data has no {split} split (it has {', '.join(data.parts)})"
        )
    part = data.parts[split]
    own_file = d.source is None and getattr(d, split) is not None  # pre-split data
    origin = getattr(d, split) if own_file else f"the {split} split of {source}"
    return Rows(part.X, part.y, origin)


def file_rows(saved: SavedModel, path: Path, need_target: bool) -> Rows:
    """Rows of a new CSV/NPZ file, columns matched by name to the saved feature names."""
    header = _csv_header(path)
    if header is not None:  # check names before parsing numbers: the clearer error first
        _check_columns(saved, path, [c for c in header if c != saved.target_name])
    table = read_table(path, saved.target_name, require_target=need_target)
    columns = table.feature_names
    _check_columns(saved, path, columns)
    X = table.X[:, [columns.index(f) for f in saved.feature_names]]
    y = None
    if table.y is not None:
        y = _encode_targets(saved, table.y, path)
    return Rows(X, y, str(path))


def _csv_header(path: Path) -> list[str] | None:
    """The header row of a CSV file; None for NPZ or anything `read_table` will report."""
    if path.suffix.lower() == ".npz":
        return None
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            first = next((row for row in csv.reader(f) if row), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None if first is None else [h.strip() for h in first]


def _check_columns(saved: SavedModel, path: Path, columns: list[str]) -> None:
    """Exactly the saved feature names, in any order (the target column aside)."""
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise UserError(f"{path}: column '{duplicates[0]}' appears more than once")
    missing = [f for f in saved.feature_names if f not in columns]
    if missing:
        raise UserError(
            f"{path}: column '{missing[0]}' is missing "
            f"(the model needs: {', '.join(saved.feature_names)})"
        )
    extra = [c for c in columns if c not in saved.feature_names]
    if extra:
        target = f"; target: {saved.target_name}" if saved.target_name else ""
        raise UserError(
            f"{path}: unknown column '{extra[0]}' "
            f"(the model's features: {', '.join(saved.feature_names)}{target})"
        )


def _encode_targets(saved: SavedModel, raw: np.ndarray, path: Path) -> np.ndarray:
    if saved.class_names is None:
        try:
            return raw.astype(np.float64).reshape(-1, 1)
        except ValueError:
            raise UserError(f"{path}: target column '{saved.target_name}' is not numeric") from None
    labels, inverse = np.unique(raw, return_inverse=True)
    codes = np.array([_class_index(saved.class_names, str(v)) for v in labels], dtype=np.int64)
    if (codes < 0).any():
        bad = labels[np.flatnonzero(codes < 0)[0]]
        row = int(np.flatnonzero(raw == bad)[0]) + 2  # 1-based, after the header
        raise UserError(
            f"{path}:{row}: class '{bad}' is not one the model knows "
            f"({', '.join(saved.class_names)})"
        )
    return codes[inverse.reshape(-1)]


def _class_index(classes: list[str], label: str) -> int:
    """The index of a label: its class name, or an integer class code; -1 if neither.

    Integer labels are codes 0..K-1 when the class names are words (from a
    `<name>.classes.txt` sidecar), and class names themselves when those are integers.
    """
    label = label.strip()
    if label in classes:
        return classes.index(label)
    try:
        code = int(label)
    except ValueError:
        return -1
    if all(_is_int(c) for c in classes):
        return classes.index(str(code)) if str(code) in classes else -1
    return code if 0 <= code < len(classes) else -1


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- eval


@dataclass
class EvalReport:
    """What `mlpcli eval` shows: plain values, ready for a table or JSON."""

    checkpoint: str
    data: str
    rows: int
    task: str
    metrics: dict[str, float]  # loss and accuracy, or loss, mse, rmse, mae, r2
    class_names: list[str] | None = None
    per_class: list[dict[str, Any]] = field(default_factory=list)
    averages: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] | None = None  # rows: true class, columns: predicted

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (an undefined R², say) becomes null."""
        out: dict[str, Any] = {
            "checkpoint": self.checkpoint,
            "data": self.data,
            "rows": self.rows,
            "task": self.task,
            "metrics": _finite(self.metrics),
        }
        if self.task == "classification":
            out["classes"] = [_finite(c) for c in self.per_class]
            out.update({k: _finite(v) for k, v in self.averages.items()})
            out["confusion_matrix"] = {"labels": self.class_names, "matrix": self.confusion}
        return out


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()
    }


def evaluate(path: Path, data: Path | None = None, split: str | None = None) -> EvalReport:
    """Score the model of a checkpoint or run directory on a split of its data or a file."""
    if data is not None and split is not None:
        raise UserError("--data and --split exclude each other: a file is scored as a whole")
    saved = load_model(path)
    rows = file_rows(saved, data, need_target=True) if data else run_split(saved, split or "test")
    assert rows.y is not None
    logits = saved.logits(rows.X)
    y = rows.y.astype(saved.model.dtype) if saved.task == "regression" else rows.y
    loss, _ = saved.loss_fn(logits, y)
    report = EvalReport(str(saved.path), rows.origin, len(rows.X), saved.task, {"loss": loss})
    if saved.class_names is None:
        report.metrics.update(regression_metrics(logits, y))
        return report
    report.metrics["accuracy"] = accuracy(logits, y)
    counts = confusion_matrix(y, predicted_classes(logits), len(saved.class_names))
    scores = per_class_scores(counts)
    report.class_names = saved.class_names
    report.per_class = [
        {
            "class": name,
            "precision": float(scores["precision"][i]),
            "recall": float(scores["recall"][i]),
            "f1": float(scores["f1"][i]),
            "support": int(scores["support"][i]),
        }
        for i, name in enumerate(saved.class_names)
    ]
    report.averages = averages(scores, counts)
    report.confusion = counts.tolist()
    return report


# ----------------------------------------------------------------------------- predict


@dataclass
class Predictions:
    """One row per input row, in input order, as CSV cells."""

    header: list[str]
    rows: list[list[str]]

    def write_csv(self, stream: IO[str]) -> None:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)


def predict(path: Path, data: Path, proba: bool = False) -> Predictions:
    """Class names (or one probability column per class), or values for regression."""
    saved = load_model(path)
    if proba and saved.class_names is None:
        raise UserError("--proba needs a classification model; this one does regression")
    rows = file_rows(saved, data, need_target=False)
    logits = saved.logits(rows.X)
    column = saved.target_name or "prediction"
    if saved.class_names is None:
        return Predictions([column], [[str(v)] for v in logits[:, 0]])
    if proba:
        probs = class_probabilities(logits)
        return Predictions(list(saved.class_names), [[str(p) for p in row] for row in probs])
    names = saved.class_names
    return Predictions([column], [[names[k]] for k in predicted_classes(logits)])
