"""Reading a user's data files: CSV with a header, or NPZ with arrays X and y.

CSV files are read in chunks of lines: NumPy's C parser (`loadtxt`) converts each chunk
straight into one preallocated float64 array, so a 60000 x 784 file costs the final array
plus a chunk, not a list of 47 million strings. Only a chunk that the fast parser refuses is
read again cell by cell, to name the exact line and column of the problem.
"""

import csv
import difflib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpcli.errors import UserError

# Cells that mean "no value" (compared stripped and lower-cased).
MISSING_TOKENS = frozenset({"", "?", "na", "n/a", "nan", "null", "none"})
DELIMITERS = [",", ";", "\t", "|"]  # sniffed in this order of preference
CHUNK_LINES = 2048
_MISSING_HINT = "(set data.missing: drop or mean)"


@dataclass
class Table:
    """Features and the raw target column (strings from a CSV, numbers otherwise).

    X is float64 (MNIST keeps its uint8 pixels until standardised); a NaN in X is a missing
    value that `data.missing: mean` will fill.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    class_names: list[str] | None = None  # from a `<name>.classes.txt` sidecar
    origin: str = ""  # the file, for messages
    lines: np.ndarray | None = None  # each row's line number in a CSV file

    def where(self, row: int) -> str:
        """`file:line` (CSV) or `file: row N` of a row, for error messages."""
        if self.lines is not None:
            return f"{self.origin}:{self.lines[row]}"
        return f"{self.origin}: row {row + 1}"


def read_table(
    path: Path,
    target: str | None,
    require_target: bool = True,
    *,
    delimiter: str | None = None,
    features: list[str] | None = None,
    missing: str = "error",
) -> Table:
    """Load a CSV or NPZ file; `target` names the target column (default: the last).

    `features` selects and orders the feature columns (default: all but the target);
    `missing` is error | drop | mean (mean leaves NaN in X for the caller to fill).
    """
    if not path.exists():
        raise UserError(f"{path}: data file not found")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a data file")
    if path.suffix.lower() == ".npz":
        table = _read_npz(path, features)
    else:
        table = _CsvReader(path, delimiter, missing).read(target, require_target, features)
    return _apply_missing(table, missing)


# ----------------------------------------------------------------------------- CSV


class _CsvReader:
    """One CSV file: header and delimiter, a scan for shape and target, then the numbers."""

    def __init__(self, path: Path, delimiter: str | None, missing: str) -> None:
        self.path = path
        self.delimiter = delimiter or ""
        self.missing = missing

    def read(self, target: str | None, require_target: bool, features: list[str] | None) -> Table:
        path = self.path
        try:
            with path.open(encoding="utf-8-sig") as f:
                rows = _nonblank(f)
                first = next(rows, None)
                if first is None:
                    raise UserError(f"{path}: the file is empty")
                sample = list(itertools.islice(rows, 5))
                if not self.delimiter:
                    self.delimiter = _sniff(first[1], [line for _, line in sample], path)
                header = self._header(*first)
                self.ncols = len(header)
                feature_idx, target_idx = _columns(header, target, require_target, features, path)
                self.feature_names = [header[j] for j in feature_idx]
                self.target_name = header[target_idx] if target_idx is not None else None
                self.feature_idx, self.target_idx = feature_idx, target_idx
                lines, cells = self._scan(itertools.chain(sample, rows))
            if not lines:
                raise UserError(f"{path}: no data rows after the header")
            y = self._targets(lines, cells) if target_idx is not None else None
            X = self._fast(first[0], lines)
            if X is None:
                X = self._careful_all(lines)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UserError(f"{path}: cannot read CSV: {exc}") from None
        return Table(
            X=X,
            y=y,
            feature_names=self.feature_names,
            target_name=self.target_name,
            class_names=_sidecar_classes(path),
            origin=str(path),
            lines=np.array(lines, dtype=np.int64),
        )

    def _header(self, lineno: int, line: str) -> list[str]:
        names = [h.strip() for h in next(csv.reader([line], delimiter=self.delimiter))]
        names = [h or f"column{j + 1}" for j, h in enumerate(names)]
        if all(_is_number(h) for h in names):
            raise UserError(
                f"{self.path}:{lineno}: the first row holds only numbers; "
                "a CSV needs a header row naming its columns"
            )
        for j, name in enumerate(names):
            if name in names[:j]:
                raise UserError(
                    f"{self.path}:{lineno}: column '{name}' appears twice in the header"
                )
        return names

    def _scan(self, rows: Iterator[tuple[int, str]]) -> tuple[list[int], list[str]]:
        """Line numbers of the data rows and their target cells; refuses a ragged row."""
        d, ncols, t = self.delimiter, self.ncols, self.target_idx
        if t is None:
            take = None
        elif t == ncols - 1:
            take = lambda line: line.rpartition(d)[2]  # noqa: E731 - the common case, fast
        elif t == 0:
            take = lambda line: line.partition(d)[0]  # noqa: E731
        else:
            take = lambda line: line.split(d)[t]  # noqa: E731
        lines: list[int] = []
        cells: list[str] = []
        for lineno, line in rows:
            if '"' in line:  # quoted fields may hold the delimiter: let csv split them
                fields = next(csv.reader([line], delimiter=d))
                count, cell = len(fields), (fields[t] if t is not None and t < len(fields) else "")
            else:
                count = line.count(d) + 1
                cell = take(line) if take is not None and count == ncols else ""
            if count != ncols:
                raise UserError(
                    f"{self.path}:{lineno}: row has {count} fields, the header has {ncols}"
                )
            lines.append(lineno)
            if take is not None:
                cells.append(cell)
        return lines, cells

    def _fast(self, header_line: int, lines: list[int]) -> np.ndarray | None:
        """Every feature column in one pass of NumPy's C parser; None if it refuses a cell."""
        try:
            X = np.loadtxt(
                self.path,
                delimiter=self.delimiter,
                usecols=self.feature_idx,
                skiprows=header_line,
                dtype=np.float64,
                comments=None,
                quotechar='"',
                ndmin=2,
                encoding="utf-8-sig",
            )
        except ValueError:
            return None
        if len(X) != len(lines):  # whitespace-only lines: let the careful path sort it out
            return None
        if not np.isfinite(X.sum()):  # one pass; the exact check only when needed
            self._check_finite(X, lines)
        return X

    def _careful_all(self, lines: list[int]) -> np.ndarray:
        """Read the numbers again chunk by chunk, cell by cell where NumPy refuses."""
        X = np.empty((len(lines), len(self.feature_idx)), dtype=np.float64)
        with self.path.open(encoding="utf-8-sig") as f:
            rows = itertools.dropwhile(lambda row: row[0] < lines[0], _nonblank(f))
            n = 0
            while chunk := list(itertools.islice(rows, CHUNK_LINES)):
                numbers = [i for i, _ in chunk]
                text = [line for _, line in chunk]
                try:
                    Xc = np.loadtxt(
                        text,
                        delimiter=self.delimiter,
                        usecols=self.feature_idx,
                        dtype=np.float64,
                        comments=None,
                        quotechar='"',
                        ndmin=2,
                    )
                    if not np.isfinite(Xc.sum()):
                        self._check_finite(Xc, numbers)
                except ValueError:
                    Xc = self._careful(numbers, text)
                X[n : n + len(Xc)] = Xc
                n += len(Xc)
        return X

    def _careful(self, numbers: list[int], text: list[str]) -> np.ndarray:
        """Cell by cell with the csv module, naming the first problem's line and column."""
        rows = list(csv.reader(text, delimiter=self.delimiter))
        Xc = np.empty((len(rows), len(self.feature_idx)))
        for r, (lineno, row) in enumerate(zip(numbers, rows, strict=True)):
            if len(row) != self.ncols:
                raise UserError(
                    f"{self.path}:{lineno}: row has {len(row)} fields, the header has {self.ncols}"
                )
            for c, j in enumerate(self.feature_idx):
                Xc[r, c] = self._number(row[j], lineno, self.feature_names[c])
        return Xc

    def _number(self, cell: str, lineno: int, column: str) -> float:
        try:
            value = float(cell)
        except ValueError:
            if cell.strip().lower() in MISSING_TOKENS:
                value = float("nan")
            else:
                raise UserError(
                    f"{self.path}:{lineno}: non-numeric value {cell.strip()!r} in feature "
                    f"column '{column}'",
                    hint=f"if '{column}' is the target, set data.target: {column}; "
                    "or leave it out with data.features",
                ) from None
        if value != value and self.missing == "error":
            raise UserError(
                f"{self.path}:{lineno}: missing value in column '{column}' {_MISSING_HINT}"
            )
        if value in (float("inf"), float("-inf")):
            raise UserError(
                f"{self.path}:{lineno}: value {value} in column '{column}' is not finite"
            )
        return value

    def _check_finite(self, Xc: np.ndarray, numbers: list[int]) -> None:
        """NaN cells are missing values; infinities are errors."""
        bad = ~np.isfinite(Xc)
        if self.missing != "error":
            bad &= ~np.isnan(Xc)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            column = self.feature_names[c]
            if np.isnan(Xc[r, c]):
                raise UserError(
                    f"{self.path}:{numbers[r]}: missing value in column '{column}' {_MISSING_HINT}"
                )
            raise UserError(
                f"{self.path}:{numbers[r]}: value {Xc[r, c]} in column '{column}' is not finite"
            )

    def _targets(self, numbers: list[int], cells: list[str]) -> np.ndarray:
        values = np.char.strip(np.array(cells, dtype=str), ' \t\r\n"')
        if self.missing != "drop":
            for lineno, value in zip(numbers, values.tolist(), strict=True):
                if value.lower() in MISSING_TOKENS:
                    hint = (
                        "data.missing: mean fills feature cells only; drop skips such rows"
                        if self.missing == "mean"
                        else "set data.missing: drop to skip such rows"
                    )
                    raise UserError(
                        f"{self.path}:{lineno}: missing target value in column "
                        f"'{self.target_name}' ({hint})"
                    )
        return values


def _sniff(header: str, sample: list[str], path: Path) -> str:
    """The delimiter that splits the header into several fields and most rows alike."""
    best, best_score = None, (0, 1)
    for d in DELIMITERS:
        fields = [len(row) for row in csv.reader([header, *sample], delimiter=d)]
        score = (sum(n == fields[0] for n in fields[1:]), fields[0])
        if fields[0] > 1 and score > best_score:
            best, best_score = d, score
    if best is None:
        raise UserError(
            f"{path}: only one column found; set data.delimiter if it is not one of , ; tab |"
        )
    return best


def _columns(
    header: list[str],
    target: str | None,
    require_target: bool,
    features: list[str] | None,
    path: Path,
) -> tuple[list[int], int | None]:
    """Indices of the feature columns (in the order asked) and of the target column."""
    if target is None:
        target_idx: int | None = len(header) - 1 if require_target else None
        if features is not None and require_target and header[-1] in features:
            raise UserError(
                f"{path}: '{header[-1]}' is listed in data.features; name the target column "
                "with data.target"
            )
    elif target in header:
        target_idx = header.index(target)
    elif require_target:
        raise UserError(f"{path}: target column '{target}' not found{_choices(target, header)}")
    else:
        target_idx = None
    if features is None:
        feature_idx = [j for j in range(len(header)) if j != target_idx]
    else:
        for name in features:
            if name not in header:
                raise UserError(
                    f"{path}: feature column '{name}' not found{_choices(name, header)}"
                )
        feature_idx = [header.index(name) for name in features]
    if not feature_idx:
        raise UserError(
            f"{path}: no feature columns besides the target '{header[target_idx or 0]}'"
        )
    return feature_idx, target_idx


def _choices(name: str, header: list[str]) -> str:
    close = difflib.get_close_matches(name, header, n=1)
    shown = ", ".join(header[:12]) + (f", ... ({len(header)} in all)" if len(header) > 12 else "")
    return f" (columns: {shown})" + (f"; did you mean '{close[0]}'?" if close else "")


def _nonblank(f: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) for every line with something on it."""
    return ((i, line) for i, line in enumerate(f, start=1) if not line.isspace())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sidecar_classes(path: Path) -> list[str] | None:
    sidecar = path.with_suffix(".classes.txt")
    if not sidecar.exists():
        return None
    return [
        line.strip() for line in sidecar.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


# ----------------------------------------------------------------------------- NPZ and missing


def _read_npz(path: Path, features: list[str] | None) -> Table:
    """Arrays `X` (rows x features) and `y`; optional `feature_names` and `class_names`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "X" not in npz or "y" not in npz:
                raise UserError(
                    f"{path}: an NPZ dataset needs arrays 'X' and 'y' (has: {', '.join(npz.files)})"
                )
            X = np.asarray(npz["X"], dtype=np.float64)
            y = np.asarray(npz["y"])
            names = [str(v) for v in npz["feature_names"]] if "feature_names" in npz else None
            classes = [str(v) for v in npz["class_names"]] if "class_names" in npz else None
    except UserError:
        raise
    except Exception as exc:  # zipfile/ValueError/OSError: all mean "not a usable npz"
        raise UserError(f"{path}: cannot read NPZ: {exc}") from None
    if X.ndim != 2:
        raise UserError(f"{path}: X must be 2-D (rows x features), got shape {X.shape}")
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise UserError(f"{path}: y must be 1-D (one target per row), got shape {y.shape}")
    y = y.reshape(-1)
    if len(y) != len(X):
        raise UserError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise UserError(f"{path}: X has no rows")
    if names is None:
        names = [f"x{j}" for j in range(X.shape[1])]
    elif len(names) != X.shape[1]:
        raise UserError(f"{path}: {len(names)} feature_names for {X.shape[1]} columns of X")
    if features is not None:
        for name in features:
            if name not in names:
                raise UserError(f"{path}: feature '{name}' not found{_choices(name, names)}")
        X = X[:, [names.index(name) for name in features]]
        names = list(features)
    if np.isinf(X).any():
        r, c = np.argwhere(np.isinf(X))[0]
        raise UserError(f"{path}: X row {r + 1}, column '{names[c]}' is not finite")
    return Table(X, y, names, "y", class_names=classes, origin=str(path))


def _apply_missing(table: Table, missing: str) -> Table:
    """Refuse or drop rows with missing values; `mean` leaves NaN features for the caller."""
    no_target = _missing_targets(table.y, len(table.X))
    if np.isfinite(table.X.sum()) and not no_target.any():  # one cheap pass in the usual case
        return table
    holes = np.isnan(table.X)
    if not holes.any() and not no_target.any():
        return table
    if missing == "drop":
        keep = ~holes.any(axis=1) & ~no_target
        if not keep.any():
            raise UserError(f"{table.origin}: every row has a missing value; nothing left to use")
        table.X = table.X[keep]
        table.y = table.y[keep] if table.y is not None else None
        table.lines = table.lines[keep] if table.lines is not None else None
        return table
    if no_target.any():
        r = int(np.argmax(no_target))
        raise UserError(f"{table.where(r)}: missing target value (set data.missing: drop)")
    if missing == "error":
        r, c = np.argwhere(holes)[0]
        raise UserError(
            f"{table.where(r)}: missing value in column '{table.feature_names[c]}' {_MISSING_HINT}"
        )
    return table


def _missing_targets(y: np.ndarray | None, n: int) -> np.ndarray:
    """Which target cells are empty / NA (strings) or NaN (numbers)."""
    if y is None:
        return np.zeros(n, dtype=bool)
    if y.dtype.kind == "U":
        return np.isin(np.char.lower(y), list(MISSING_TOKENS))
    if y.dtype.kind == "f":
        return np.isnan(y)
    return np.zeros(n, dtype=bool)
