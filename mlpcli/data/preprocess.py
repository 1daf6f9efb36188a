"""The fitted input pipeline: from a table's raw columns to the model's input features.

`fit` learns, on the train part only, what each input column becomes; the result is plain
JSON (saved as the checkpoint's `meta.preprocess`), and `transform` applies it to any rows:
the train, val and test parts, and every file given to eval and predict later. The same
rules, written for NumPy in docs/runs.md, reproduce it outside mlpcli:

    numeric column:      v = fill if v is missing;  feature = (v - mean) / scale
    categorical column:  one feature per category (sorted), then `col=(other)` for the
                         categories folded by max_categories, then `col=(missing)` when the
                         train part had missing cells; a cell sets its feature to 1, an
                         unseen category sets none (unknown: zeros) or is refused (error)

The features are the numeric columns in column order, then each categorical column's
one-hot block; a feature is named `col` or `col=category`.
"""

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mlpcli.data.files import Table, shown
from mlpcli.errors import UserError

VERSION = 1
OTHER = "(other)"
MISSING = "(missing)"
ID_MIN_ROWS = 10  # fewer rows than this: all-distinct text is not evidence of an ID
# Rows transformed at a time when the result is not float64: bounds the float64 scratch.
BLOCK_ROWS = 4096

Pipeline = dict[str, Any]


def infer_ignored(table: Table, declared: Mapping[str, str], listed: list[str] | None) -> list[str]:
    """Drop, with a note each, the undeclared columns that cannot help: text whose values are
    all distinct (an ID, a name) and constant text. Refuse a column with no value at all."""
    notes, keep = [], []
    for j, name in enumerate(table.feature_names):
        column = table.X[:, j]
        present = ~np.isnan(column) if column.dtype.kind == "f" else np.ones(len(column), bool)
        if not present.any():
            raise UserError(
                f"{table.origin}: column '{shown(name)}' has no values (every cell is missing); "
                f"leave it out with data.columns: {{{shown(name)}: ignore}}"
            )
        inferred = name not in declared and (listed is None or name not in listed)
        if table.kind(j) == "categorical" and inferred:
            distinct = len(np.unique(column[present]))
            if distinct == 1 and present.all():
                notes.append(f"column '{shown(name)}' ignored: it holds one value only")
                continue
            if distinct == present.sum() and distinct >= ID_MIN_ROWS:
                notes.append(
                    f"column '{shown(name)}' ignored: every value is different (an ID or a "
                    f"name?); declare it with data.columns: {{{shown(name)}: categorical}} "
                    "to use it"
                )
                continue
        keep.append(name)
    if not keep:
        raise UserError(f"{table.origin}: no input columns left after ignoring IDs and constants")
    if len(keep) != len(table.feature_names):
        ignored = [n for n in table.feature_names if n not in keep]
        table.select_columns(keep)
        table.ignored += ignored
    return notes


def fit(
    X: np.ndarray,
    table: Table,
    *,
    missing: str,
    standardize: bool | str,
    max_categories: int,
    unknown: str,
    ignored: list[str] | None = None,
) -> Pipeline:
    """Learn each column's fill value, scaling and categories from the train rows `X`."""
    columns: list[dict[str, Any]] = []
    numeric = [j for j in range(X.shape[1]) if table.kind(j) == "numeric"]
    values = _numeric_block(X, numeric)
    fills = _fills(values, numeric, table, missing)
    if fills is not None:
        values = _filled(values, fills)
    mean, scale = _scaling(values, standardize)
    for i, j in enumerate(numeric):
        columns.append(
            {
                "name": table.feature_names[j],
                "kind": "numeric",
                "fill": None if fills is None else float(fills[i]),
                "mean": float(mean[i]),
                "scale": float(scale[i]),
            }
        )
    for j in range(X.shape[1]):
        if table.kind(j) == "categorical":
            columns.append(_fit_categorical(X[:, j], table, j, max_categories))
    order = {name: k for k, name in enumerate(table.feature_names)}
    columns.sort(key=lambda c: order[c["name"]])  # column order; features put numbers first
    for name in ignored or []:
        columns.append({"name": name, "kind": "ignore"})
    return {"version": VERSION, "missing": missing, "unknown": unknown, "columns": columns}


def _numeric_block(X: np.ndarray, numeric: list[int]) -> np.ndarray:
    """The numeric columns, without a copy when they are all of X."""
    return X if len(numeric) == X.shape[1] else X[:, numeric]


def _fills(values: np.ndarray, numeric: list[int], table: Table, missing: str) -> np.ndarray | None:
    """Per numeric column: the train mean (mean, drop) or median; None for missing: error."""
    if missing == "error" or not numeric:
        return None
    floats = values.dtype.kind == "f"
    holes = floats and bool(np.isnan(values).any())
    if missing == "median":
        fills = np.nanmedian(values, axis=0) if holes else np.median(values, axis=0)
    else:
        fills = np.nanmean(values, axis=0) if holes else values.mean(axis=0, dtype=np.float64)
    empty = np.flatnonzero(np.isnan(fills))
    if len(empty):
        name = table.feature_names[numeric[empty[0]]]
        raise UserError(
            f"{table.origin}: column '{shown(name)}' has no values in the train part to take "
            f"a {'median' if missing == 'median' else 'mean'} from"
        )
    return np.asarray(fills, dtype=np.float64)


def _filled(values: np.ndarray, fills: np.ndarray) -> np.ndarray:
    if values.dtype.kind != "f" or not np.isnan(values).any():
        return values
    out = np.array(values, dtype=np.float64)
    holes = np.isnan(out)
    out[holes] = np.broadcast_to(fills, out.shape)[holes]
    return out


def _scaling(values: np.ndarray, how: bool | str) -> tuple[np.ndarray, np.ndarray]:
    """z-score statistics of the (filled) train values: per column, global, or none."""
    k = values.shape[1]
    if how is False or k == 0:
        return np.zeros(k), np.ones(k)
    if how == "global":
        mean = np.full(k, values.mean(dtype=np.float64))
        scale = np.full(k, values.std(dtype=np.float64) or 1.0)
        return mean, scale
    mean = values.mean(axis=0, dtype=np.float64)
    scale = values.std(axis=0, dtype=np.float64)
    scale[scale == 0] = 1.0  # a constant column stays constant (zero) rather than NaN
    return mean, scale


def _fit_categorical(codes: np.ndarray, table: Table, j: int, max_categories: int) -> dict:
    name = table.feature_names[j]
    levels = table.levels.get(name, [])
    present = ~np.isnan(codes)
    counts = np.bincount(codes[present].astype(np.int64), minlength=len(levels))
    seen = [(int(counts[i]), levels[i]) for i in np.flatnonzero(counts)]
    seen.sort(key=lambda item: (-item[0], item[1]))  # most frequent first, ties by name
    kept = sorted(level for _, level in seen[:max_categories])
    other = sorted(level for _, level in seen[max_categories:])
    return {
        "name": name,
        "kind": "categorical",
        "categories": kept,
        "other": other,
        "missing_level": bool((~present).any()),
    }


def numeric_only(names: list[str], mean: np.ndarray | None, scale: np.ndarray | None) -> Pipeline:
    """The pipeline of a checkpoint from before `meta.preprocess` (format 1): numbers only."""
    k = len(names)
    mean = np.zeros(k) if mean is None else mean
    scale = np.ones(k) if scale is None else scale
    columns = [
        {"name": n, "kind": "numeric", "fill": None, "mean": float(m), "scale": float(s)}
        for n, m, s in zip(names, mean.tolist(), scale.tolist(), strict=True)
    ]
    return {"version": VERSION, "missing": "error", "unknown": "zeros", "columns": columns}


# ----------------------------------------------------------------------------- applying


def used_columns(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The columns the model reads (ignored ones aside), in column order."""
    return [c for c in pipeline["columns"] if c["kind"] != "ignore"]


def feature_names(pipeline: Pipeline) -> list[str]:
    """The model's input features: numeric columns, then each categorical one-hot block."""
    columns = used_columns(pipeline)
    names = [c["name"] for c in columns if c["kind"] == "numeric"]
    for c in columns:
        if c["kind"] == "categorical":
            names += [f"{c['name']}={v}" for v in _block(c)]
    return names


def one_hot_levels(column: dict[str, Any]) -> list[str]:
    """The one-hot levels of a categorical column, in feature order (as export builds them)."""
    return _block(column)


def _block(column: dict[str, Any]) -> list[str]:
    """The one-hot levels of a categorical column, in feature order."""
    block = list(column["categories"])
    if column["other"]:
        block.append(OTHER)
    if column["missing_level"]:
        block.append(MISSING)
    return block


def transform(
    X: np.ndarray,
    table: Table,
    pipeline: Pipeline,
    dtype: np.dtype,
    where: Callable[[int], str],
    *,
    what: str = "",
) -> tuple[np.ndarray, list[str]]:
    """The model's features for raw rows `X` whose columns are `used_columns(pipeline)`;
    also notes on what was filled or unknown. `where(row)` names a row in an error."""
    columns = used_columns(pipeline)
    notes: list[str] = []
    numeric = [j for j, c in enumerate(columns) if c["kind"] == "numeric"]
    width = len(feature_names(pipeline))
    if len(numeric) == width and X.dtype == np.float64 and np.dtype(dtype) == np.float64:
        # numbers only, in float64: fill and scale in place, no second copy of a large matrix
        _fill(X, _fills_of(columns), [c["name"] for c in columns], pipeline, where, notes, what, X)
        X -= np.array([c["mean"] for c in columns])
        X /= np.array([c["scale"] for c in columns])
        return X, notes
    out = (np.empty if len(numeric) == width else np.zeros)((len(X), width), dtype=dtype)
    if numeric:
        block = _numeric_block(X, numeric)
        chosen = [columns[j] for j in numeric]
        names = [c["name"] for c in chosen]
        block = _fill(block, _fills_of(chosen), names, pipeline, where, notes, what)
        mean = np.array([c["mean"] for c in chosen])
        scale = np.array([c["scale"] for c in chosen])
        _zscore(block, mean, scale, out[:, : len(numeric)])
    start = len(numeric)
    for j, c in enumerate(columns):
        if c["kind"] != "categorical":
            continue
        levels = table.levels.get(c["name"], [])
        start += _one_hot(X[:, j], levels, c, out, start, pipeline, where, notes, what)
    return out, notes


def _fills_of(columns: list[dict[str, Any]]) -> np.ndarray:
    return np.array([np.nan if c["fill"] is None else c["fill"] for c in columns])


def _fill(
    block: np.ndarray,
    fills: np.ndarray,
    names: list[str],
    pipeline: Pipeline,
    where: Callable[[int], str],
    notes: list[str],
    what: str,
    into: np.ndarray | None = None,
) -> np.ndarray:
    """Missing cells filled with the column's fill value (in `into` if given, else a copy)."""
    if block.dtype.kind != "f" or np.isfinite(block.sum()):
        return block
    holes = np.isnan(block)
    if not holes.any():
        return block
    counts = holes.sum(axis=0)
    for i in np.flatnonzero(counts):
        if np.isnan(fills[i]):
            row = int(np.flatnonzero(holes[:, i])[0])
            raise UserError(
                f"{where(row)}: missing value in column '{shown(names[i])}' (the model was "
                "trained with data.missing: error, so it has no fill value)"
            )
        if pipeline["missing"] == "drop":
            notes.append(
                f"{what}{counts[i]} missing cell{'s' if counts[i] > 1 else ''} in "
                f"'{shown(names[i])}' "
                f"filled with the train mean {fills[i]:.6g} (every row gets a prediction; "
                "data.missing: drop only skips rows in training)"
            )
    block = np.array(block, dtype=np.float64) if into is None else into
    block[holes] = np.broadcast_to(fills, block.shape)[holes]
    return block


def _one_hot(
    codes: np.ndarray,
    levels: list[str],
    column: dict[str, Any],
    out: np.ndarray,
    start: int,
    pipeline: Pipeline,
    where: Callable[[int], str],
    notes: list[str],
    what: str,
) -> int:
    """Set the one-hot block of one categorical column; returns the block's width."""
    block = _block(column)
    position = {level: k for k, level in enumerate(block)}
    other = set(column["other"])
    # the block column of each of the table's level codes (-1: unknown); the last is missing
    lookup = np.full(len(levels) + 1, -1, dtype=np.int64)
    for code, level in enumerate(levels):
        if level in position and level not in (OTHER, MISSING):
            lookup[code] = position[level]
        elif level in other:
            lookup[code] = position[OTHER]
    lookup[-1] = position.get(MISSING, -1)
    missing = np.isnan(codes)
    idx = np.where(missing, len(levels), np.nan_to_num(codes, nan=0)).astype(np.int64)
    cols = lookup[idx]
    unknown = cols < 0
    if unknown.any():
        rows = np.flatnonzero(unknown)
        r = int(rows[0])
        example = "a missing cell" if missing[r] else f"'{shown(levels[idx[r]])}'"
        name = shown(column["name"])
        if pipeline["unknown"] == "error" or (missing[r] and pipeline["missing"] == "error"):
            raise UserError(
                f"{where(r)}: category {example} of column '{name}' does not occur in the "
                "training data (data.categorical.unknown: error)"
            )
        notes.append(
            f"{what}{len(rows)} cell{'s' if len(rows) > 1 else ''} of '{name}' "
            f"{'hold' if len(rows) > 1 else 'holds'} categories the training data does not "
            f"have (first: {example} at {where(r)}): encoded as zeros"
        )
    known = np.flatnonzero(~unknown)
    out[known, start + cols[known]] = 1
    return len(block)


def _zscore(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, out: np.ndarray) -> None:
    """out = (X - mean) / scale, computed in float64 a block of rows at a time, so that a
    large matrix in another dtype (uint8 pixels, float32 features) needs no float64 copy."""
    block = np.empty((min(len(X), BLOCK_ROWS), X.shape[1]), np.float64)
    for start in range(0, len(X), BLOCK_ROWS):
        rows = X[start : start + BLOCK_ROWS]
        scratch = block[: len(rows)]
        np.subtract(rows, mean, out=scratch)
        scratch /= scale
        out[start : start + len(rows)] = scratch


# ----------------------------------------------------------------------------- checking


def problem(pipeline: Any) -> str | None:
    """What is wrong with a pipeline read from a file (a checkpoint), or None."""
    if not isinstance(pipeline, dict) or not isinstance(pipeline.get("columns"), list):
        return "it is not an object with a 'columns' list"
    if pipeline.get("version") != VERSION:
        return f"unsupported version {pipeline.get('version')!r}"
    if pipeline.get("missing") not in ("error", "drop", "mean", "median"):
        return "'missing' is not one of error, drop, mean, median"
    if pipeline.get("unknown") not in ("zeros", "error"):
        return "'unknown' is neither zeros nor error"
    names: set[str] = set()
    for i, column in enumerate(pipeline["columns"]):
        what = _column_problem(column)
        if what:
            return f"column {i}: {what}"
        if column["name"] in names:
            return f"column {i}: '{shown(column['name'])}' appears twice"
        names.add(column["name"])
    if not used_columns(pipeline):
        return "no input columns"
    return None


def _number(value: Any) -> bool:
    return type(value) in (int, float) and np.isfinite(value)


def _column_problem(column: Any) -> str | None:
    if not isinstance(column, dict) or not isinstance(column.get("name"), str):
        return "not an object with a 'name'"
    kind = column.get("kind")
    if kind == "numeric":
        if not (_number(column.get("mean")) and _number(column.get("scale"))):
            return "'mean' and 'scale' must be finite numbers"
        if column["scale"] <= 0:
            return "'scale' must be positive"
        fill = column.get("fill")
        if fill is not None and not _number(fill):
            return "'fill' must be a finite number or null"
    elif kind == "categorical":
        for key in ("categories", "other"):
            value = column.get(key)
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                return f"'{key}' must be a list of strings"
        if len(set(column["categories"]) | set(column["other"])) != len(column["categories"]) + len(
            column["other"]
        ):
            return "a category is listed twice"
        if type(column.get("missing_level")) is not bool:
            return "'missing_level' must be true or false"
    elif kind != "ignore":
        return f"kind {shown(str(kind))!r} is not numeric, categorical or ignore"
    return None
