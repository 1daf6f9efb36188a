"""Parquet files, read with pyarrow (the optional `parquet` extra) into the same `Table` a CSV
gives; from there the same pipeline applies.

Numeric Arrow columns (integers, floats, booleans) are numeric; text and dictionary columns
are categorical, unless `data.columns` declares them numeric, in which case every cell must be
a plain decimal like in a CSV. Nulls and the CSV missing tokens are missing cells.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.data.files import _DECIMAL, MISSING_TOKENS, Table, _choices, shown
from mlpcli.errors import UserError


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(
            "reading Parquet needs pyarrow, which is not installed",
            hint='pip install pyarrow  (or, in a clone of mlpcli: pip install ".[parquet]")',
        ) from None
    return pq


def read_parquet(
    path: Path,
    target: str | None,
    require_target: bool,
    features: list[str] | None,
    kinds: Mapping[str, str],
    keep: list[str],
) -> Table:
    """The columns of a Parquet file as a Table (see the module docstring)."""
    pq = _pyarrow()
    try:
        names = list(pq.ParquetFile(path).schema_arrow.names)
    except Exception as exc:  # pyarrow.ArrowInvalid, OSError: not a readable Parquet file
        raise UserError(f"{path}: cannot read Parquet: {shown(str(exc), 120)}") from None
    if len(set(names)) != len(names):
        twice = next(n for i, n in enumerate(names) if n in names[:i])
        raise UserError(f"{path}: column '{shown(twice)}' appears twice")
    if target is None and require_target:
        target = names[-1]
    if target is not None and target not in names:
        if require_target:
            raise UserError(
                f"{path}: target column '{shown(target)}' not found{_choices(target, names)}"
            )
        target = None
    if features is None:
        features = [n for n in names if n != target and kinds.get(n) != "ignore"]
    for name in [*features, *keep]:
        if name not in names:
            raise UserError(f"{path}: column '{shown(name)}' not found{_choices(name, names)}")
    if not features:
        raise UserError(f"{path}: no input columns besides the target")
    wanted = list(dict.fromkeys([*features, *keep, *([target] if target else [])]))
    try:
        arrow = pq.read_table(path, columns=wanted)
    except Exception as exc:
        raise UserError(f"{path}: cannot read Parquet: {shown(str(exc), 120)}") from None
    if arrow.num_rows == 0:
        raise UserError(f"{path}: no data rows")
    X = np.empty((arrow.num_rows, len(features)), dtype=np.float64)
    levels: dict[str, list[str]] = {}
    column_kinds = []
    for j, name in enumerate(features):
        column = arrow.column(name)
        kind = kinds.get(name) or ("numeric" if _is_numeric(column.type) else "categorical")
        column_kinds.append(kind)
        if kind == "numeric":
            X[:, j] = _numbers(path, name, column)
        else:
            X[:, j], levels[name] = _codes(_texts(column))
    y = None
    if target is not None:
        column = arrow.column(target)
        y = _numbers(path, target, column) if _is_numeric(column.type) else _texts(column)
        if y.dtype.kind == "U":
            y = np.char.strip(y)
    kept = {name: _texts(arrow.column(name)) for name in keep}
    return Table(
        X=X,
        y=y,
        feature_names=list(features),
        target_name=target,
        origin=str(path),
        kinds=column_kinds,
        levels=levels,
        kept=kept,
    )


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    t = arrow_type
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _numbers(path: Path, name: str, column: Any) -> np.ndarray:
    import pyarrow as pa

    if _is_numeric(column.type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64)
    texts = _texts(column)
    out = np.empty(len(texts))
    for r, cell in enumerate(texts.tolist()):
        if cell.strip().lower() in MISSING_TOKENS:
            out[r] = np.nan
        elif _DECIMAL.fullmatch(cell.strip()):
            out[r] = float(cell)
        else:
            raise UserError(
                f"{path}: row {r + 1}: non-numeric value {shown(cell)!r} in numeric column "
                f"'{shown(name)}'"
            )
    return out


def _texts(column: Any) -> np.ndarray:
    """The cells as stripped text; nulls as empty strings (a missing cell)."""
    values = column.to_pylist()
    return np.array(["" if v is None else str(v).strip() for v in values], dtype=str)


def _codes(texts: np.ndarray) -> tuple[np.ndarray, list[str]]:
    uniq, inverse = np.unique(texts, return_inverse=True)
    levels: list[str] = []
    codes = np.empty(len(uniq))
    for i, value in enumerate(uniq.tolist()):
        if value.lower() in MISSING_TOKENS:
            codes[i] = np.nan
        else:
            codes[i] = len(levels)
            levels.append(value)
    return codes[inverse.reshape(-1)], levels
