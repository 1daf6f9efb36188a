"""From a config's `data` section to the model's train / val / test arrays.

The one path for every source: read the table (`files.read_table`), leave out IDs and
constant text (`preprocess.infer_ignored`), encode the target (`labels`), split with the
seed, fit the input pipeline on the train part (`preprocess.fit`) and apply it to every
part (`preprocess.transform`). eval and predict apply a saved pipeline the same way.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.config import GENERATORS, Data
from mlpcli.data import mnist, preprocess
from mlpcli.data.builtin import BUILTIN, builtin_path
from mlpcli.data.files import _DECIMAL, Table, read_table, shown
from mlpcli.data.generators import generate
from mlpcli.data.labels import Labels
from mlpcli.errors import UserError

__all__ = [
    "BUILTIN",
    "Dataset",
    "DatasetInfo",
    "Part",
    "catalog",
    "check_range",
    "load_dataset",
    "read_like",
    "source_path",
]


@dataclass
class Part:
    """One split: features (the pipeline's output, in the dtype asked for) and encoded
    targets; `lines` names each row's place in its file for messages."""

    X: np.ndarray
    y: np.ndarray  # class indices (int64) or regression targets (float64, shape (n, 1))
    origin: str = ""
    lines: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.X)

    def where(self, row: int) -> str:
        if self.lines is not None:
            return f"{self.origin}:{self.lines[row]}"
        return f"{self.origin}: row {row + 1}"


@dataclass
class Dataset:
    task: str
    feature_names: list[str]  # the model's inputs: `col` or `col=category`
    target_name: str | None
    class_names: list[str] | None
    parts: dict[str, Part] = field(default_factory=dict)  # train, and val / test when present
    preprocess: dict[str, Any] = field(default_factory=dict)  # the fitted pipeline (JSON)
    notes: list[str] = field(default_factory=list)  # columns ignored, cells filled, ...

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
    """Read a file with the config's delimiter, target, columns and missing policy."""
    return read_table(
        path,
        cfg.target,
        require_target,
        delimiter=cfg.delimiter,
        features=cfg.features,
        kinds=cfg.columns,
        missing=cfg.missing,
    )


def load_dataset(
    cfg: Data,
    seed: int,
    progress: mnist.Progress | None = None,
    dtype: str | type | np.dtype = np.float64,
    pipeline: dict[str, Any] | None = None,
) -> Dataset:
    """Load, encode targets, split with the seed (stratified if asked), fit the pipeline on
    the train part and apply it to every part.

    `progress` reports a download (MNIST, first use only) as (bytes so far, total).
    `dtype` is the features' dtype in the result: the model's, so that training needs no
    second copy of them. Statistics are computed in float64 either way, then rounded.
    `pipeline` applies a saved pipeline instead of fitting one (eval of a run's split).
    """
    rng = np.random.default_rng([seed, 0])  # the split; training draws from [seed, 1]
    task = cfg.task or "classification"
    dt = np.dtype(dtype)
    tables, notes = _read_tables(cfg, seed, task, progress, pipeline)
    first = tables.get("whole") or tables["train"]
    for table in tables.values():
        check_range(table, dt)
    labels = Labels.of(first) if task == "classification" else None
    parts = {name: _encode(table, labels) for name, table in tables.items()}
    if "whole" in parts:
        fractions = {"val": cfg.split.val, "test": cfg.split.test}
        parts = _split(parts.pop("whole"), fractions, cfg, rng, first.origin, labels)
    elif "val" not in parts and cfg.split.val > 0:
        parts |= _split(parts["train"], {"val": cfg.split.val}, cfg, rng, first.origin, labels)
    if pipeline is None:
        pipeline = preprocess.fit(
            parts["train"].X,
            first,
            missing=cfg.missing,
            standardize=cfg.standardize,
            max_categories=cfg.categorical.max_categories,
            unknown=cfg.categorical.unknown,
            ignored=first.ignored,
        )
    for name in ("train", "val", "test"):
        if name in parts:
            part = parts[name]
            what = f"the {name} part: " if name != "train" else ""
            part.X, found = preprocess.transform(part.X, first, pipeline, dt, part.where, what=what)
            notes += found
    return Dataset(
        task,
        preprocess.feature_names(pipeline),
        first.target_name,
        labels.names if labels else None,
        {name: parts[name] for name in ("train", "val", "test") if name in parts},
        pipeline,
        notes,
    )


def _read_tables(
    cfg: Data,
    seed: int,
    task: str,
    progress: mnist.Progress | None,
    pipeline: dict[str, Any] | None,
) -> tuple[dict[str, Table], list[str]]:
    """`whole` (to be split), or `train` with optional `val` / `test` that come split;
    and the notes on columns left out."""
    if cfg.source in GENERATORS:
        table = generate(cfg.source, cfg.generator or {}, seed)
        table.origin = f"generated '{cfg.source}'"
        return {"whole": table}, []
    if cfg.source == "mnist":
        train, test = mnist.load_mnist(mnist.mnist_path(progress))
        return {"train": train, "test": test}, []
    if cfg.source is not None:
        _check_builtin_task(cfg, task)
        first_path, name = source_path(cfg.source), "whole"
    else:
        assert cfg.train is not None
        first_path, name = source_path(cfg.train), "train"
    if pipeline is not None:  # the saved columns and kinds, nothing inferred
        first = read_columns(cfg, first_path, pipeline)
        notes = []
    else:
        first = read_like(cfg, first_path)
        notes = preprocess.infer_ignored(first, cfg.columns, cfg.features)
    tables = {name: first}
    for split in ("val", "test") if cfg.source is None else ():
        value = getattr(cfg, split)
        if value is not None:
            tables[split] = _read_matching(cfg, Path(value), first)
    return tables, notes


def read_columns(cfg: Data, path: Path, pipeline: dict[str, Any]) -> Table:
    """A file read for a saved pipeline: its columns by name, with their saved kinds."""
    columns = preprocess.used_columns(pipeline)
    return read_table(
        path,
        cfg.target,
        delimiter=cfg.delimiter,
        features=[c["name"] for c in columns],
        kinds={c["name"]: c["kind"] for c in columns},
        missing=cfg.missing,
    )


def _check_builtin_task(cfg: Data, task: str) -> None:
    """`source: iris` with a regression loss is a mistake (unless another target is named)."""
    builtin = BUILTIN.get(cfg.source or "")
    if builtin and cfg.target is None and builtin[1] != task:
        raise UserError(
            f"data.source '{cfg.source}' is a {builtin[1]} dataset, but the config's loss is "
            f"for {task}; pick a matching loss or name another data.target"
        )


def _read_matching(cfg: Data, path: Path, train: Table) -> Table:
    """A val/test file: the training file's input columns, found by name, of the same kinds;
    its categories coded as the training file's."""
    target = cfg.target or train.target_name
    table = read_table(
        path,
        target,
        delimiter=cfg.delimiter,
        features=train.feature_names,
        kinds=dict(zip(train.feature_names, train.kinds or [], strict=False)),
        missing=cfg.missing,
    )
    share_levels(train, table)
    return table


def share_levels(train: Table, other: Table) -> None:
    """Recode `other`'s categorical columns with `train`'s level list (extended by the
    levels only `other` has), so that rows of both are one code space."""
    for j, name in enumerate(other.feature_names):
        if other.kind(j) != "categorical":
            continue
        levels = train.levels.setdefault(name, [])
        index = {level: k for k, level in enumerate(levels)}
        mapping = np.array(
            [index.setdefault(level, len(index)) for level in other.levels.get(name, [])] + [0],
            dtype=np.float64,
        )
        levels.extend(list(index)[len(levels) :])
        codes = other.X[:, j]
        present = ~np.isnan(codes)
        codes[present] = mapping[codes[present].astype(np.int64)]
        other.levels[name] = levels


def check_range(table: Table, dtype: np.dtype) -> None:
    """Numeric cells must fit the model's dtype (float32 overflows past 3.4e38), with room
    to square them for the standard deviation in float64."""
    limit = float(np.finfo(np.float32).max) if dtype == np.float32 else 1e150
    X = table.X
    if X.dtype.kind != "f" or len(X) == 0:
        return
    numeric = [j for j in range(X.shape[1]) if table.kind(j) == "numeric"]
    block = X if len(numeric) == X.shape[1] else X[:, numeric]
    with np.errstate(invalid="ignore"):
        if not (np.nanmax(np.abs(block), initial=0.0) > limit):
            return
        r, c = np.argwhere(np.abs(block) > limit)[0]
    raise UserError(
        f"{table.where(int(r))}: value {block[r, c]:g} in column "
        f"'{shown(table.feature_names[numeric[c]])}' is too large for training.dtype "
        f"{dtype.name} (at most {limit:.3g}); rescale the column"
        + ("" if dtype != np.float32 else " or set training.dtype: float64")
    )


# ----------------------------------------------------------------------------- targets


def _encode(table: Table, labels: Labels | None) -> Part:
    assert table.y is not None
    if labels is not None:
        return Part(table.X, labels.encode(table), table.origin, table.lines)
    return Part(table.X, regression_targets(table), table.origin, table.lines)


def regression_targets(table: Table) -> np.ndarray:
    """The target column as numbers, shape (n, 1); only plain decimals are numbers."""
    assert table.y is not None
    y = table.y
    if y.dtype.kind in "US":
        plain = [bool(_DECIMAL.fullmatch(v.strip())) for v in y.tolist()]
        if not all(plain):
            bad = plain.index(False)
            raise UserError(
                f"{table.where(bad)}: non-numeric target value '{shown(str(y[bad]))}' in "
                f"column '{shown(table.target_name or '')}' (regression needs numbers)"
            )
    values = y.astype(np.float64)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise UserError(f"{table.where(bad)}: target value '{shown(str(y[bad]))}' is not finite")
    return values.reshape(-1, 1)


# ----------------------------------------------------------------------------- split


def _split(
    whole: Part,
    fractions: dict[str, float],
    cfg: Data,
    rng: np.random.Generator,
    origin: str,
    labels: Labels | None,
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
        lines = whole.lines[idx] if whole.lines is not None else None
        parts[name] = Part(whole.X[idx], whole.y[idx], whole.origin, lines)
    return parts


def _strata(
    y: np.ndarray, wanted: dict[str, float], origin: str, labels: Labels
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
