"""Metrics, eval and predict on a saved model: the checkpoint alone is enough.

`load_model` rebuilds the network from a checkpoint's arrays and meta (no config file, no
dataset). `evaluate` scores it on a split of the run's own data (re-created from the saved
config and seed) or on a new file; `predict` labels new rows. A new file is read by the
same reader as training data, its columns matched by name against the saved pipeline
(`meta.preprocess`), which is applied as saved: column order and columns the model does not
use do not matter.
"""

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from mlpcli.build import build_loss
from mlpcli.checkpoint import load_checkpoint
from mlpcli.config import RunConfig, config_from_dict
from mlpcli.data import check_range, load_dataset, preprocess, regression_targets
from mlpcli.data.files import read_table, shown
from mlpcli.data.labels import Labels
from mlpcli.engine import MLP
from mlpcli.engine.activations import sigmoid
from mlpcli.engine.losses import LossFn, softmax
from mlpcli.engine.metrics import accuracy, predicted_classes, r2
from mlpcli.errors import UserError

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
    preprocess: dict[str, Any]  # the fitted input pipeline
    loss_fn: LossFn

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Output pre-activations for rows of the model's features (the pipeline applied)."""
        return self.model.logits(X.astype(self.model.dtype, copy=False))


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
    """Rebuild the model of a checkpoint (or of a run directory's final model)."""
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
        preprocess=meta["preprocess"],
        loss_fn=build_loss(cfg, _class_weight(path, meta)),
    )


def _class_weight(path: Path, meta: dict[str, Any]) -> np.ndarray | None:
    """The class weights the model was trained with (`meta.class_weight`), for its loss."""
    weights = meta.get("class_weight")
    if weights is None:
        return None
    classes = meta.get("class_names") or []
    if not (
        isinstance(weights, list)
        and len(weights) == len(classes)
        and all(type(w) in (int, float) and math.isfinite(w) and w > 0 for w in weights)
    ):
        raise UserError(
            f"{path}: not a valid checkpoint: meta 'class_weight' must be {len(classes)} "
            "positive numbers, one per class"
        )
    return np.array(weights, dtype=np.float64)


# ----------------------------------------------------------------------------- data


@dataclass
class Rows:
    """Rows of the model's features, their encoded targets, origin, and what was noted."""

    X: np.ndarray
    y: np.ndarray | None
    origin: str
    notes: list[str] = field(default_factory=list)
    kept: dict[str, np.ndarray] = field(default_factory=dict)


def run_split(saved: SavedModel, split: str, data: Path | None = None) -> Rows:
    """One split of the run's own data, re-created exactly from the saved config and seed.

    The data file is the path stored in the checkpoint: a stranger's checkpoint could point
    anywhere, so it is opened only when it is a file, and the messages say how to choose
    another with --data.
    """
    d = saved.cfg.data
    source = d.source or d.train
    hint = "give --data FILE to evaluate on a file of your choice instead"
    try:
        data_set = load_dataset(
            d, saved.cfg.seed, dtype=saved.model.dtype, pipeline=saved.preprocess
        )
    except UserError as exc:
        raise UserError(
            f"{exc} (a data path stored in {saved.path}; give --data FILE to choose the file)",
            hint=exc.hint,
        ) from None
    if data_set.feature_names != saved.feature_names or data_set.class_names != saved.class_names:
        raise UserError(
            f"{source}: its columns or classes differ from those {saved.path} was trained on",
            hint=hint,
        )
    if split not in data_set.parts:
        raise UserError(
            f"{saved.path}: the run's data has no {split} split "
            f"(it has {', '.join(data_set.parts)})"
        )
    part = data_set.parts[split]
    own_file = d.source is None and getattr(d, split) is not None  # pre-split data
    origin = getattr(d, split) if own_file else f"the {split} split of {source}"
    return Rows(part.X, part.y, origin, data_set.notes)


def file_rows(
    saved: SavedModel, path: Path, need_target: bool, keep: list[str] | None = None
) -> Rows:
    """Rows of a new CSV/NPZ/Parquet file: the reader of the training data, the columns the
    saved pipeline uses found by name (others ignored), the pipeline applied as saved."""
    columns = preprocess.used_columns(saved.preprocess)
    policy = saved.preprocess["missing"]
    table = read_table(
        path,
        saved.target_name,
        require_target=need_target,
        features=[c["name"] for c in columns],
        kinds={c["name"]: c["kind"] for c in columns},
        # every row is scored: missing cells are filled as saved (or refused, for error)
        missing="keep" if policy != "error" else "error",
        keep=keep,
    )
    check_range(table, np.dtype(saved.model.dtype))
    X, notes = preprocess.transform(
        table.X, table, saved.preprocess, np.dtype(saved.model.dtype), table.where
    )
    y = None
    if table.y is not None:
        if saved.class_names is None:
            y = regression_targets(table)
        else:
            y = Labels.saved(saved.class_names).encode(table)
    return Rows(X, y, str(path), notes, table.kept)


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
    notes: list[str] = field(default_factory=list)  # cells filled, unknown categories

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (an undefined R², say) becomes null."""
        out: dict[str, Any] = {
            "checkpoint": self.checkpoint,
            "data": self.data,
            "rows": self.rows,
            "task": self.task,
            "metrics": _finite(self.metrics),
            "notes": self.notes,
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
    report.notes = rows.notes
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
    """One row per input row, in input order, as CSV cells; notes for the user."""

    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def write_csv(self, stream: IO[str]) -> None:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)


def predict(
    path: Path,
    data: Path,
    proba: bool = False,
    label: bool = False,
    keep: list[str] | None = None,
) -> Predictions:
    """Class names (or one probability column per class, with `label` the class too), or
    values for regression; `keep` columns of the file are copied in front, as they are."""
    saved = load_model(path)
    if proba and saved.class_names is None:
        raise UserError("--proba needs a classification model; this one does regression")
    if label and not proba:
        raise UserError("--label goes with --proba (the label alone is the default output)")
    keep = list(keep or [])
    duplicates = [name for i, name in enumerate(keep) if name in keep[:i]]
    if duplicates:
        raise UserError(f"--keep '{shown(duplicates[0])}' is given twice")
    rows = file_rows(saved, data, need_target=False, keep=keep)
    logits = saved.logits(rows.X)
    column = saved.target_name or "prediction"
    if column in keep:
        column = f"predicted_{column}"
    header: list[str] = []
    cells: list[list[str]] = []
    if saved.class_names is None:
        header, cells = [column], [[str(v)] for v in logits[:, 0]]
    else:
        names = saved.class_names
        if proba:
            header = [f"p({n})" if n in keep else n for n in names]
            cells = [[str(p) for p in row] for row in class_probabilities(logits)]
        if label or not proba:
            labels = [names[k] for k in predicted_classes(logits)]
            header = [*header, column]
            cells = [[*row, v] for row, v in zip(cells or [[]] * len(labels), labels, strict=True)]
    if keep:
        kept = [rows.kept[name].tolist() for name in keep]
        cells = [[*(k[i] for k in kept), *row] for i, row in enumerate(cells)]
        header = [*keep, *header]
    return Predictions(header, cells, rows.notes)


# ----------------------------------------------------------------------------- output files

RUN_DIR_MARKERS = ("summary.json", "metrics.csv", "checkpoints")


def check_output_path(out: Path, flag: str, inputs: Sequence[Path] = ()) -> None:
    """Refuse an output file (`--out`, `--plot`) that would overwrite an input or a run's file.

    A new file may go anywhere, a run directory included; an existing file of a run
    directory (its checkpoints, summary, metrics, config) is never overwritten.
    """
    target = out.resolve()
    if target.is_dir():
        raise UserError(f"{flag} {out}: is a folder; give a file name")
    for given in inputs:
        if given.exists() and target == given.resolve():
            raise UserError(f"{flag} {out}: is an input of this command; choose another file")
    if not target.exists():
        return
    for folder in (target.parent, target.parent.parent):
        if any((folder / name).exists() for name in RUN_DIR_MARKERS):
            raise UserError(
                f"{flag} {out}: would overwrite a file of the run directory {folder}; "
                "choose another file"
            )
