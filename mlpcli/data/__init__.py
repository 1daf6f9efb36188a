"""From a config's `data` section to standardised train / val / test arrays."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlpcli.config import GENERATORS, Data
from mlpcli.data import mnist
from mlpcli.data.builtin import BUILTIN, builtin_path
from mlpcli.data.files import Table, read_table
from mlpcli.data.generators import generate
from mlpcli.errors import UserError

__all__ = [
    "BUILTIN",
    "Dataset",
    "DatasetInfo",
    "Part",
    "catalog",
    "load_dataset",
    "read_like",
    "source_path",
]


@dataclass
class Part:
    """One split: features (float64 or the dtype asked for, standardised if asked) and
    encoded targets."""

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
    fill_values: np.ndarray | None = None  # data.missing: mean, in raw feature units

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.class_names else 1


def source_path(value: str) -> Path:
    """A config's data file: a path, or a built-in dataset's name."""
    return builtin_path(value) if value in BUILTIN else Path(value)


def read_like(cfg: Data, path: Path, require_target: bool = True) -> Table:
    """Read a file with the config's delimiter, target, feature selection and missing policy."""
    return read_table(
        path,
        cfg.target,
        require_target,
        delimiter=cfg.delimiter,
        features=cfg.features,
        missing=cfg.missing,
    )


def load_dataset(
    cfg: Data,
    seed: int,
    progress: mnist.Progress | None = None,
    dtype: str | type = np.float64,
) -> Dataset:
    """Load, encode targets, split with the seed (stratified if asked), standardise.

    `progress` reports a download (MNIST, first use only) as (bytes so far, total).
    `dtype` is the features' dtype in the result: the model's, so that training needs no
    second copy of them. Standardising is computed in float64 either way, then rounded.
    """
    rng = np.random.default_rng([seed, 0])  # the split; training draws from [seed, 1]
    task = cfg.task or "classification"
    tables = _read_tables(cfg, seed, task, progress)
    first = tables.get("whole") or tables["train"]
    labels = _Labels.of(first) if task == "classification" else None
    parts = {name: _encode(table, labels) for name, table in tables.items()}
    if "whole" in parts:
        fractions = {"val": cfg.split.val, "test": cfg.split.test}
        parts = _split(parts.pop("whole"), fractions, cfg, rng, first.origin, labels)
    elif "val" not in parts and cfg.split.val > 0:
        parts |= _split(parts["train"], {"val": cfg.split.val}, cfg, rng, first.origin, labels)
    data = Dataset(
        task,
        first.feature_names,
        first.target_name,
        labels.names if labels else None,
        {name: parts[name] for name in ("train", "val", "test") if name in parts},
    )
    if cfg.missing == "mean":
        _fill_missing(data, first.origin)
    _standardize(data, cfg.standardize, np.dtype(dtype))
    return data


def _read_tables(
    cfg: Data, seed: int, task: str, progress: mnist.Progress | None
) -> dict[str, Table]:
    """`whole` (to be split), or `train` with optional `val` / `test` that come split."""
    if cfg.source in GENERATORS:
        table = generate(cfg.source, cfg.generator or {}, seed)
        table.origin = f"generated '{cfg.source}'"
        return {"whole": table}
    if cfg.source == "mnist":
        train, test = mnist.load_mnist(mnist.mnist_path(progress))
        return {"train": train, "test": test}
    if cfg.source is not None:
        _check_builtin_task(cfg, task)
        return {"whole": read_like(cfg, source_path(cfg.source))}
    assert cfg.train is not None
    tables = {"train": read_like(cfg, source_path(cfg.train))}
    for name in ("val", "test"):
        value = getattr(cfg, name)
        if value is not None:
            tables[name] = _read_matching(cfg, Path(value), tables["train"])
    return tables


def _check_builtin_task(cfg: Data, task: str) -> None:
    """`source: iris` with a regression loss is a mistake (unless another target is named)."""
    builtin = BUILTIN.get(cfg.source or "")
    if builtin and cfg.target is None and builtin[1] != task:
        raise UserError(
            f"data.source '{cfg.source}' is a {builtin[1]} dataset, but the config's loss is "
            f"for {task}; pick a matching loss or name another data.target"
        )


def _read_matching(cfg: Data, path: Path, train: Table) -> Table:
    """A val/test file: the training file's feature columns, found by name."""
    target = cfg.target or train.target_name
    return read_table(
        path,
        target,
        delimiter=cfg.delimiter,
        features=train.feature_names,
        missing=cfg.missing,
    )


# ----------------------------------------------------------------------------- targets


@dataclass
class _Labels:
    """The classes of a classification target: display names and the keys found in files."""

    names: list[str]
    keys: list[str]  # canonical label text per class: "3" for 3, 3.0 and "03"; else the label
    integer: bool

    @classmethod
    def of(cls, table: Table) -> "_Labels":
        """Classes of the training table; integer labels sort numerically."""
        assert table.y is not None
        found = np.unique(_keys(table.y))
        integer = _integers(found)
        if integer is not None:
            order = sorted(set(integer))
            sidecar = table.class_names
            if sidecar and order[0] >= 0 and order[-1] < len(sidecar):
                # 0..K-1 with names from a `.classes.txt` sidecar (or a generator)
                return cls(list(sidecar), [str(i) for i in range(len(sidecar))], True)
            keys = [str(i) for i in order]
            labels = cls(keys, keys, True)
        else:
            names = sorted(found.tolist())
            labels = cls(names, names, False)
        if len(labels.names) < 2:
            raise UserError(
                f"{table.origin}: the target '{table.target_name}' has a single class "
                f"('{labels.names[0]}'): nothing to classify"
            )
        return labels

    def encode(self, table: Table) -> np.ndarray:
        """Class indices for a table's target, naming the row of an unknown class."""
        assert table.y is not None
        keys = _keys(table.y)
        if self.integer:
            found = _integers(np.unique(keys))
            if found is None:
                bad = next(
                    i for i, k in enumerate(keys.tolist()) if _integers(np.array([k])) is None
                )
                raise UserError(
                    f"{table.where(bad)}: class '{keys[bad]}' is not a number like the "
                    "training data's classes"
                )
            keys = np.array([str(int(float(k))) for k in keys.tolist()]) if len(keys) else keys
        lookup = {k: i for i, k in enumerate(self.keys)}
        uniq, inverse = np.unique(keys, return_inverse=True)
        unknown = [k for k in uniq.tolist() if k not in lookup]
        if unknown:
            bad = int(np.flatnonzero(keys == unknown[0])[0])
            raise UserError(
                f"{table.where(bad)}: class '{unknown[0]}' does not occur in the training data"
            )
        codes = np.array([lookup[k] for k in uniq.tolist()], dtype=np.int64)
        return codes[inverse.reshape(-1)]


def _keys(y: np.ndarray) -> np.ndarray:
    """Label text: integers without a decimal point, strings stripped."""
    if y.dtype.kind in "iub":
        return y.astype(np.int64).astype(str)
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        return y.astype(np.int64).astype(str)
    return np.char.strip(y.astype(str))


def _integers(values: np.ndarray) -> list[int] | None:
    """The labels as integers if every one is a whole number ("3", "3.0", "03")."""
    out = []
    for v in values.tolist():
        try:
            number = float(v)
        except ValueError:
            return None
        if not number.is_integer():
            return None
        out.append(int(number))
    return out


def _encode(table: Table, labels: _Labels | None) -> Part:
    assert table.y is not None
    if labels is not None:
        return Part(table.X, labels.encode(table))
    try:
        y = table.y.astype(np.float64)
    except ValueError:
        bad = next(i for i, v in enumerate(table.y.tolist()) if not _is_float(v))
        raise UserError(
            f"{table.where(bad)}: non-numeric target value '{table.y[bad]}' in column "
            f"'{table.target_name}' (regression needs numbers)"
        ) from None
    if not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise UserError(f"{table.where(bad)}: target value '{table.y[bad]}' is not finite")
    return Part(table.X, y.reshape(-1, 1))


def _is_float(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- split


def _split(
    whole: Part,
    fractions: dict[str, float],
    cfg: Data,
    rng: np.random.Generator,
    origin: str,
    labels: _Labels | None,
) -> dict[str, Part]:
    """Carve val/test parts off `whole`; what is left is train."""
    wanted = {name: frac for name, frac in fractions.items() if frac > 0}
    if cfg.split.stratify and labels is not None:
        groups = _strata(whole.y, wanted, origin, labels)
    else:
        groups = [np.arange(len(whole))]
    picked: dict[str, list[np.ndarray]] = {name: [] for name in ["train", *wanted]}
    for group in groups:
        idx = rng.permutation(group)
        counts = _counts(len(group), wanted, at_least_one=len(groups) > 1)
        start = 0
        for name, count in counts.items():
            picked[name].append(idx[start : start + count])
            start += count
        picked["train"].append(idx[start:])
    parts = {}
    for name, chunks in picked.items():
        idx = np.sort(np.concatenate(chunks))
        if len(idx) == 0:
            key = "train" if name == "train" else f"split.{name}={wanted[name]:g}"
            raise UserError(
                f"{origin}: the split leaves the {name} part empty ({len(whole)} rows, {key}); "
                "change data.split or use more rows"
            )
        parts[name] = Part(whole.X[idx], whole.y[idx])
    return parts


def _strata(
    y: np.ndarray, wanted: dict[str, float], origin: str, labels: _Labels
) -> list[np.ndarray]:
    """Rows per class; each class must be able to put a row into every part."""
    need = 1 + len(wanted)
    groups = []
    for c, name in enumerate(labels.names):
        rows = np.flatnonzero(y == c)
        if 0 < len(rows) < need:
            parts = " / ".join(["train", *wanted])
            raise UserError(
                f"{origin}: class '{name}' has {len(rows)} row{'s' if len(rows) > 1 else ''}, "
                f"too few to stratify into {parts} (needs {need}); add rows, or set "
                "data.split.stratify: false"
            )
        if len(rows):
            groups.append(rows)
    return groups


def _counts(rows: int, wanted: dict[str, float], at_least_one: bool) -> dict[str, int]:
    """Rows of each carved part; with `at_least_one`, every part (train too) gets a row."""
    counts = {name: int(np.floor(frac * rows + 0.5)) for name, frac in wanted.items()}
    if at_least_one:
        counts = {name: max(1, count) for name, count in counts.items()}
        while sum(counts.values()) > rows - 1:  # leave train at least one row
            largest = max(counts, key=lambda k: counts[k])
            counts[largest] -= 1
    return counts


# ----------------------------------------------------------------------------- features


def _fill_missing(data: Dataset, origin: str) -> None:
    """data.missing: mean: fill NaN cells with the train part's column means."""
    train = data.parts["train"].X
    means = np.nanmean(train, axis=0) if np.isnan(train).any() else train.mean(axis=0)
    empty = np.flatnonzero(np.isnan(means))
    if len(empty):
        raise UserError(
            f"{origin}: column '{data.feature_names[empty[0]]}' has no values in the train part "
            "to take a mean from"
        )
    for part in data.parts.values():
        holes = np.isnan(part.X)
        if holes.any():
            part.X[holes] = np.broadcast_to(means, part.X.shape)[holes]
    data.fill_values = means


# Rows standardised at a time when the result is not float64: bounds the float64 scratch.
STANDARDIZE_ROWS = 4096


def _standardize(data: Dataset, how: bool | str, dtype: np.dtype) -> None:
    """z-score every part with the train part's statistics: per feature, or one for all."""
    train = data.parts["train"].X
    if how is False:
        for part in data.parts.values():
            part.X = np.asarray(part.X, dtype=dtype)
        return
    if how == "global":
        mean = np.full(train.shape[1], train.mean(dtype=np.float64))
        scale = np.full(train.shape[1], train.std(dtype=np.float64) or 1.0)
    else:
        mean = train.mean(axis=0, dtype=np.float64)
        scale = train.std(axis=0, dtype=np.float64)
        scale[scale == 0] = 1.0  # a constant column stays constant (zero) rather than NaN
    for part in data.parts.values():
        part.X = _zscore(part.X, mean, scale, dtype)
    data.scaler_mean, data.scaler_scale = mean, scale


def _zscore(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(X - mean) / scale computed in float64, returned as `dtype`, without a second copy
    of a large matrix: in place for float64 input and output, else a block of rows at a time."""
    if X.dtype == np.float64 and dtype == np.float64:
        X -= mean
        X /= scale
        return X
    out = np.empty(X.shape, dtype)
    block = np.empty((min(len(X), STANDARDIZE_ROWS), X.shape[1]), np.float64)
    for start in range(0, len(X), STANDARDIZE_ROWS):
        rows = X[start : start + STANDARDIZE_ROWS]
        scratch = block[: len(rows)]
        np.subtract(rows, mean, out=scratch)
        scratch /= scale
        out[start : start + len(rows)] = scratch
    return out


# ----------------------------------------------------------------------------- catalogue


@dataclass
class DatasetInfo:
    """One row of `mlpcli datasets`."""

    name: str
    kind: str  # file | generated | download
    task: str
    rows: int
    features: int
    classes: int | None
    where: str


def catalog() -> list[DatasetInfo]:
    """Every built-in dataset with its size; generated ones at their default options."""
    infos = []
    for name, (_, task) in BUILTIN.items():
        path = source_path(name)
        table = read_table(path, None)
        assert table.y is not None
        classes = len(np.unique(table.y)) if task == "classification" else None
        shown = f"{path.parent.name}/{path.name}"
        rows, features = table.X.shape
        infos.append(DatasetInfo(name, "file", task, rows, features, classes, shown))
    for name, info in GENERATORS.items():
        options = info.options().model_dump()
        table = generate(name, options, 0)
        classes = len(table.class_names) if table.class_names else None
        shown = "generated: " + " ".join(f"{k}={v}" for k, v in options.items() if k != "seed")
        rows, features = table.X.shape
        infos.append(DatasetInfo(name, "generated", info.task, rows, features, classes, shown))
    found = mnist.find_mnist()
    where = str(found) if found else f"downloads on first use to {mnist.cache_dir()}"
    total = sum(mnist.ROWS.values())
    infos.append(
        DatasetInfo("mnist", "download", "classification", total, mnist.FEATURES, 10, where)
    )
    return infos
