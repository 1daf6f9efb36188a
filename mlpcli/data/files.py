"""Reading a user's data files: CSV with a header, or NPZ with arrays X and y."""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpcli.errors import UserError


@dataclass
class Table:
    """Features as float64 and the raw target column (strings from a CSV, numbers from NPZ)."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    class_names: list[str] | None = None  # from a `<name>.classes.txt` sidecar


def read_table(path: Path, target: str | None, require_target: bool = True) -> Table:
    """Load a CSV or NPZ file; `target` names the target column (default: the last)."""
    if not path.exists():
        raise UserError(f"{path}: data file not found")
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    return _read_csv(path, target, require_target)


def _read_csv(path: Path, target: str | None, require_target: bool) -> Table:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read CSV: {exc}") from None
    rows = [r for r in rows if r]  # blank lines carry nothing
    if not rows:
        raise UserError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise UserError(f"{path}: no data rows after the header")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise UserError(
                f"{path}:{i + 2}: row has {len(row)} fields, the header has {len(header)}"
            )
    if target is None:
        target_idx: int | None = len(header) - 1 if require_target else None
    elif target in header:
        target_idx = header.index(target)
    elif require_target:
        raise UserError(
            f"{path}: target column '{target}' not found (columns: {', '.join(header)})"
        )
    else:
        target_idx = None
    cells = np.array(body, dtype=str)
    feature_idx = [j for j in range(len(header)) if j != target_idx]
    X = _to_float(cells[:, feature_idx], path, [header[j] for j in feature_idx])
    y = np.char.strip(cells[:, target_idx]) if target_idx is not None else None
    return Table(
        X=X,
        y=y,
        feature_names=[header[j] for j in feature_idx],
        target_name=header[target_idx] if target_idx is not None else None,
        class_names=_sidecar_classes(path),
    )


def _to_float(cells: np.ndarray, path: Path, names: list[str]) -> np.ndarray:
    """Convert string cells to float64, naming the first bad cell's row and column."""
    try:
        X = cells.astype(np.float64)
    except ValueError:
        for i, row in enumerate(cells):
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    what = "missing value" if not cell.strip() else f"non-numeric value '{cell}'"
                    raise UserError(f"{path}:{i + 2}: {what} in column '{names[j]}'") from None
        raise
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        i, j = bad[0]
        raise UserError(
            f"{path}:{i + 2}: value '{cells[i, j]}' in column '{names[j]}' is not finite"
        )
    return X


def _sidecar_classes(path: Path) -> list[str] | None:
    sidecar = path.with_suffix(".classes.txt")
    if not sidecar.exists():
        return None
    return [
        line.strip() for line in sidecar.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _read_npz(path: Path) -> Table:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "X" not in npz:
                raise UserError(f"{path}: an NPZ dataset needs arrays 'X' and 'y'")
            X = np.asarray(npz["X"], dtype=np.float64)
            y = npz.get("y")
    except UserError:
        raise
    except Exception as exc:  # zipfile/ValueError/OSError: all mean "not a usable npz"
        raise UserError(f"{path}: cannot read NPZ: {exc}") from None
    if X.ndim != 2:
        raise UserError(f"{path}: X must be 2-D (rows x features), got shape {X.shape}")
    if y is None:
        raise UserError(f"{path}: an NPZ dataset needs arrays 'X' and 'y'")
    if len(y) != len(X):
        raise UserError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    names = [f"x{j}" for j in range(X.shape[1])]
    return Table(X=X, y=np.asarray(y).astype(str), feature_names=names, target_name="y")
