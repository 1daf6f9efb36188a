"""From a config's `data` section to standardised train / val / test arrays."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlpcli.config import Data
from mlpcli.data.builtin import BUILTIN, builtin_path
from mlpcli.data.files import Table, read_table
from mlpcli.errors import UserError

__all__ = ["BUILTIN", "Dataset", "Part", "load_dataset", "source_path"]


@dataclass
class Part:
    """One split: features (float64, standardised if asked) and encoded targets."""

    X: np.ndarray
    y: np.ndarray  # class indices (int64) or regression targets (float64, shape (n, 1))

    def __len__(self) -> int:
        return len(self.X)


@dataclass
class Dataset:
    task: str
    feature_names: list[str]
    target_name: str | None
    class_names: list[str] | None
    parts: dict[str, Part] = field(default_factory=dict)  # train, and val / test when present
    scaler_mean: np.ndarray | None = None
    scaler_scale: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.class_names else 1


def source_path(value: str) -> Path:
    """A config's data file: a path, or a built-in dataset's name."""
    return builtin_path(value) if value in BUILTIN else Path(value)


def load_dataset(cfg: Data, seed: int) -> Dataset:
    """Load, encode targets, split with the seed (stratified if asked), standardise."""
    rng = np.random.default_rng([seed, 0])  # the split; training draws from [seed, 1]
    task = cfg.task or "classification"
    if cfg.source is not None:
        table = read_table(source_path(cfg.source), cfg.target)
        classes = _classes(table, task)
        whole = _encode(table, task, classes)
        fractions = {"val": cfg.split.val, "test": cfg.split.test}
        parts = _split(whole, fractions, task, cfg.split.stratify, rng, str(cfg.source))
    else:
        assert cfg.train is not None
        table = read_table(source_path(cfg.train), cfg.target)
        classes = _classes(table, task)
        parts = {"train": _encode(table, task, classes)}
        for name in ("val", "test"):
            value = getattr(cfg, name)
            if value is not None:
                other = read_table(source_path(value), cfg.target)
                _check_same_columns(table, other, value)
                parts[name] = _encode(other, task, classes)
        if "val" not in parts and cfg.split.val > 0:
            carved = _split(
                parts["train"], {"val": cfg.split.val}, task, cfg.split.stratify, rng, cfg.train
            )
            parts.update(carved)
    data = Dataset(task, table.feature_names, table.target_name, classes, parts)
    if cfg.standardize:
        _standardize(data)
    return data


def _classes(table: Table, task: str) -> list[str] | None:
    """Class names, in index order; integer labels sort numerically."""
    if task != "classification":
        return None
    assert table.y is not None
    labels = np.unique(table.y)
    try:
        ints = sorted(int(v) for v in labels)
        if (
            table.class_names
            and ints == list(range(len(ints)))
            and len(ints) <= len(table.class_names)
        ):
            return table.class_names  # the sidecar names classes 0..K-1
        names = [str(i) for i in ints]
    except ValueError:
        names = sorted(str(v) for v in labels)
    if len(names) < 2:
        raise UserError(f"the target has a single class ('{names[0]}'): nothing to classify")
    return names


def _encode(table: Table, task: str, classes: list[str] | None) -> Part:
    assert table.y is not None
    if classes is None:
        try:
            y = table.y.astype(np.float64).reshape(-1, 1)
        except ValueError:
            raise UserError(
                f"target column '{table.target_name}' is not numeric: regression needs numbers"
            ) from None
        return Part(table.X, y)
    if table.class_names is not None and classes is table.class_names:
        return Part(table.X, table.y.astype(np.int64))
    index = {name: i for i, name in enumerate(classes)}
    labels = [_label_key(v) for v in table.y]
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise UserError(f"class '{unknown[0]}' was not seen in the training data")
    return Part(table.X, np.array([index[v] for v in labels], dtype=np.int64))


def _label_key(value: str) -> str:
    try:
        return str(int(value))
    except ValueError:
        return str(value)


def _split(
    whole: Part,
    fractions: dict[str, float],
    task: str,
    stratify: bool,
    rng: np.random.Generator,
    origin: str,
) -> dict[str, Part]:
    """Carve val/test parts off `whole`; what is left is train."""
    groups = (
        [np.flatnonzero(whole.y == c) for c in np.unique(whole.y)]
        if stratify and task == "classification"
        else [np.arange(len(whole))]
    )
    picked: dict[str, list[np.ndarray]] = {name: [] for name in ["train", *fractions]}
    for group in groups:
        idx = rng.permutation(group)
        start = 0
        for name, frac in fractions.items():
            count = round(frac * len(group))
            picked[name].append(idx[start : start + count])
            start += count
        picked["train"].append(idx[start:])
    parts = {}
    for name, chunks in picked.items():
        idx = np.sort(np.concatenate(chunks))
        if len(idx) == 0 and (name == "train" or fractions.get(name, 0) > 0):
            raise UserError(f"{origin}: the split leaves the {name} part empty ({len(whole)} rows)")
        if len(idx):
            parts[name] = Part(whole.X[idx], whole.y[idx])
    return parts


def _check_same_columns(train: Table, other: Table, origin: str) -> None:
    if other.feature_names != train.feature_names:
        raise UserError(
            f"{origin}: columns differ from the training file's ({', '.join(train.feature_names)})"
        )


def _standardize(data: Dataset) -> None:
    """z-score every part with the train part's mean and standard deviation."""
    train = data.parts["train"].X
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column stays constant (zero) rather than NaN
    for part in data.parts.values():
        part.X = (part.X - mean) / scale
    data.scaler_mean, data.scaler_scale = mean, scale
