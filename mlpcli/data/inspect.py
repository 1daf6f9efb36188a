"""`mlpcli inspect`: a table's columns as mlpcli will read them, and a starter config.

The columns are read by the one reader and the kinds decided by the same rules as in
training (`preprocess.infer_ignored`), so what inspect shows is what train will do.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mlpcli.data.files import Table, read_table, shown
from mlpcli.data.labels import keys_of
from mlpcli.data.preprocess import infer_ignored

EXAMPLES = 3  # example values shown per column
CLASSIFY_MAX = 20  # a numeric target with at most this many whole values: classes


@dataclass
class ColumnInfo:
    name: str
    kind: str  # numeric | categorical | ignore | target
    missing: int
    distinct: int
    examples: list[str]
    note: str = ""


@dataclass
class Inspection:
    path: str
    rows: int
    target: str | None
    task: str
    columns: list[ColumnInfo] = field(default_factory=list)
    classes: list[tuple[str, int]] = field(default_factory=list)  # (class, rows)
    config: str = ""  # the starter config, YAML


def inspect_table(path: Path, target: str | None = None) -> Inspection:
    """Read `path` as training would and describe each column; build a starter config."""
    table = read_table(path, target, missing="keep")
    originals = list(table.feature_names)
    kinds = dict(zip(originals, table.kinds or ["numeric"] * len(originals), strict=True))
    full = Table(table.X.copy(), table.y, list(originals), table.target_name, kinds=table.kinds,
                 levels=dict(table.levels), origin=table.origin)  # fmt: skip
    notes = {n.split("'")[1]: n for n in infer_ignored(table, {}, None)}
    columns = []
    for j, name in enumerate(originals):
        kind = "ignore" if name in table.ignored else kinds[name]
        columns.append(_describe(full, j, kind, notes.get(name, "")))
    assert table.y is not None and table.target_name is not None
    task, classes = _target(table.y)
    info = Inspection(str(path), len(table.X), table.target_name, task, columns, classes)
    target_missing = int(_missing_y(table.y).sum())
    columns.append(
        ColumnInfo(
            table.target_name,
            "target",
            target_missing,
            len(np.unique(table.y)),
            _examples(table.y.astype(str).tolist()),
            f"{task}" + (f", {len(classes)} classes" if classes else ""),
        )
    )
    info.config = starter_config(path, info, table, target_missing)
    return info


def _describe(table: Table, j: int, kind: str, note: str) -> ColumnInfo:
    column = table.X[:, j]
    missing = np.isnan(column)
    present = column[~missing]
    name = table.feature_names[j]
    if table.kind(j) == "categorical":
        levels = table.levels.get(name, [])
        values = [levels[int(c)] for c in present[:200]]
    else:
        values = [f"{v:g}" for v in present[:200]]
    return ColumnInfo(
        name, kind, int(missing.sum()), len(np.unique(present)), _examples(values), note
    )


def _examples(values: list[str]) -> list[str]:
    return [shown(v, 20) for v in dict.fromkeys(values)][:EXAMPLES]


def _missing_y(y: np.ndarray) -> np.ndarray:
    from mlpcli.data.files import MISSING_TOKENS

    if y.dtype.kind == "U":
        return np.isin(np.char.lower(np.char.strip(y)), list(MISSING_TOKENS))
    return np.isnan(y) if y.dtype.kind == "f" else np.zeros(len(y), bool)


def _target(y: np.ndarray) -> tuple[str, list[tuple[str, int]]]:
    """classification (text, or few whole numbers) with its classes, or regression."""
    y = y[~_missing_y(y)]
    keys = keys_of(y)
    uniq, counts = np.unique(keys, return_counts=True)
    numbers = [_float(k) for k in uniq.tolist()]
    if all(v is not None for v in numbers):
        whole = all(v is not None and float(v).is_integer() for v in numbers)
        if not (whole and len(uniq) <= CLASSIFY_MAX):
            return "regression", []
        pairs = sorted(zip(uniq.tolist(), counts.tolist(), strict=True), key=lambda p: float(p[0]))
        return "classification", [(str(k), int(c)) for k, c in pairs]
    return "classification", [(str(k), int(c)) for k, c in zip(uniq, counts, strict=True)]


def _float(text: str) -> float | None:
    from mlpcli.data.files import _DECIMAL

    return float(text) if _DECIMAL.fullmatch(text.strip()) else None


def starter_config(path: Path, info: Inspection, table: Table, target_missing: int) -> str:
    """A config that trains on this table as it is: the kinds inferred, missing cells filled
    (or their rows dropped, for a missing target), a small network for the task."""
    data: dict[str, Any] = {"source": str(path), "target": info.target}
    numeric_holes = any(c.missing for c in info.columns if c.kind == "numeric")
    category_holes = any(c.missing for c in info.columns if c.kind == "categorical")
    if target_missing:
        data["missing"] = "drop"
    elif numeric_holes or category_holes:
        data["missing"] = "median"
    if info.task == "classification" and min((n for _, n in info.classes), default=3) < 3:
        data["split"] = {"train": 0.7, "val": 0.15, "test": 0.15, "stratify": False}
    if info.task == "regression":
        data["task"] = "regression"
    config: dict[str, Any] = {
        "name": _run_name(path),
        "seed": 0,
        "data": data,
        "model": {"hidden": [{"units": 32, "activation": "relu"}]},
        "loss": "cross_entropy" if info.task == "classification" else "mse",
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {
            "epochs": 200,
            "batch_size": 32,
            "early_stopping": {"monitor": "val_loss", "patience": 20},
        },
    }
    head = (
        f"# starter config for {shown(path.name)} (mlpcli inspect); save it next to the data\n"
        "# or fix data.source, then: mlpcli train THIS.yaml\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False, default_flow_style=None)


def _run_name(path: Path) -> str:
    import re

    name = re.sub(r"[^A-Za-z0-9._-]", "-", path.stem).strip("-._")[:90] or "table"
    return f"{name}-mlp" if name[0].isalnum() else "table-mlp"
