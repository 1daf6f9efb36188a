"""The one reader of a user's data files: CSV with a header, NPZ with arrays X and y, Parquet.

Every command reads tables here (train, eval, predict, inspect), so one set of rules holds
everywhere: the delimiter is sniffed among , ; tab |, a cell is a number only when it is a
plain decimal (`5_0`, `0x10` and `١٢` are text), the tokens in MISSING_TOKENS are missing
cells, labels are read by `mlpcli.data.labels`.

A column is numeric or categorical: declared (`data.columns`) or inferred (a column with a
cell that is text and not missing is categorical). Both kinds land in one float64 matrix:
numeric columns hold their values, categorical columns the code of their text in
`Table.levels[column]`, and NaN is a missing cell in either. That keeps a categorical cell
at 8 bytes, like a number, and lets rows be split and dropped as one array.

CSV files are read in chunks of lines: NumPy's C parser (`loadtxt`) converts each chunk
straight into the preallocated matrix, so a 60000 x 784 file costs the final array plus a
chunk, not a list of 47 million strings. Only a chunk that the fast parser refuses is read
again cell by cell, to name the exact line and column of the problem.
"""

import csv
import difflib
import io
import itertools
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.errors import UserError

# Cells that mean "no value" (compared stripped and lower-cased).
MISSING_TOKENS = frozenset({"", "?", "na", "n/a", "nan", "null", "none"})
DELIMITERS = [",", ";", "\t", "|"]  # sniffed in this order of preference
SAMPLE_ROWS = 64  # rows of a refused block read cell by cell first, to find text columns
BLOCK_CHARS = 1 << 20  # characters of CSV text parsed at a time (~10,000 rows of 20 columns)
KINDS = ("numeric", "categorical", "ignore")
MAX_HEADER_CHARS = 16_000_000  # a header line longer than this is not a CSV header
_MISSING_HINT = "(set data.missing: drop, mean or median)"
# A plain decimal number, as NumPy's C parser reads it; Python's float() also takes `5_0`,
# `infinity` and non-ASCII digits, which are text here.
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INFINITE = re.compile(r"[+-]?(inf|infinity)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(text: str, limit: int = 60) -> str:
    """A value from a file, safe to print: control characters escaped, long text cut."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Table:
    """Input columns and the raw target column (strings from a CSV, numbers otherwise).

    X is float64 (MNIST keeps its uint8 pixels until standardised): a numeric column holds its
    values, a categorical one the index of its text in `levels[name]`; NaN is a missing cell.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]  # the input columns, in order
    target_name: str | None
    class_names: list[str] | None = None  # from a `<name>.classes.txt` sidecar
    origin: str = ""  # the file, for messages
    lines: np.ndarray | None = None  # each row's line number in a CSV file
    kinds: list[str] | None = None  # per column: numeric | categorical; None: all numeric
    levels: dict[str, list[str]] = field(default_factory=dict)  # categorical column -> texts
    kept: dict[str, np.ndarray] = field(default_factory=dict)  # `keep` columns, as text
    ignored: list[str] = field(default_factory=list)  # columns left out as IDs or constants

    def where(self, row: int) -> str:
        """`file:line` (CSV) or `file: row N` of a row, for error messages."""
        if self.lines is not None:
            return f"{self.origin}:{self.lines[row]}"
        return f"{self.origin}: row {row + 1}"

    def kind(self, j: int) -> str:
        return "numeric" if self.kinds is None else self.kinds[j]

    def select_rows(self, keep: np.ndarray) -> None:
        """Keep only the rows where `keep` is true (a boolean mask)."""
        self.X = self.X[keep]
        self.y = self.y[keep] if self.y is not None else None
        self.lines = self.lines[keep] if self.lines is not None else None
        self.kept = {k: v[keep] for k, v in self.kept.items()}

    def select_columns(self, names: list[str]) -> None:
        """Keep only the named input columns, in that order."""
        idx = [self.feature_names.index(n) for n in names]
        self.X = self.X[:, idx]
        if self.kinds is not None:
            self.kinds = [self.kinds[j] for j in idx]
        self.levels = {n: v for n, v in self.levels.items() if n in names}
        self.feature_names = list(names)


def read_table(
    path: Path,
    target: str | None,
    require_target: bool = True,
    *,
    delimiter: str | None = None,
    features: list[str] | None = None,
    kinds: Mapping[str, str] | None = None,
    missing: str = "error",
    keep: list[str] | None = None,
) -> Table:
    """Load a CSV, NPZ or Parquet file; `target` names the target column (default: the last).

    `features` selects and orders the input columns (default: all but the target and the
    columns `kinds` marks `ignore`); `kinds` declares numeric / categorical columns (the rest
    are inferred); `missing` is error | drop | mean | median | keep: error refuses a missing
    cell, drop skips its row (a missing category is a level of its own unless error), the
    others leave NaN for the pipeline to fill. `keep` columns come back as text in `kept`.
    """
    check_file(path, "data file")
    kinds = dict(kinds or {})
    suffix = path.suffix.lower()
    if suffix == ".npz":
        table = _read_npz(path, features)
    elif suffix in (".parquet", ".pq"):
        from mlpcli.data.parquet import read_parquet

        table = read_parquet(path, target, require_target, features, kinds, keep or [])
    else:
        reader = _CsvReader(path, delimiter, missing, kinds)
        table = reader.read(target, require_target, features, keep or [])
    return _apply_missing(table, missing)


# Bytes per cell of a table while it is loaded: the float64 matrix, a split copy of it, the
# model's features and a little scratch (measured: peak ~3.3x the float64 matrix).
BYTES_PER_CELL = 8 * 4


def memory_bytes() -> int:
    """This machine's physical memory (what a table can at most take)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a generous 1 TB
        return 2**40


def check_size(rows: int, columns: int, what: str, fix: str) -> None:
    """Refuse, before allocating, a table that cannot fit in memory (an estimate)."""
    need = rows * max(columns, 1) * BYTES_PER_CELL
    have = memory_bytes()
    if need > have:
        raise UserError(
            f"{what}: {rows:,} rows x {columns:,} columns need about {_bytes(need)} of memory, "
            f"more than this machine has ({_bytes(have)}); {fix}"
        )


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def check_file(path: Path, what: str) -> None:
    """Refuse, in one line, what cannot be a file to read: absent, a folder, a device, a
    name the system refuses (too long); nothing is opened before this says yes."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UserError(f"{shown(str(path), 200)}: {what} not found") from None
    except OSError as exc:
        raise UserError(f"{shown(str(path), 200)}: cannot open {what}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{shown(str(path), 200)}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(
            f"{shown(str(path), 200)}: not a regular file (a device, pipe or socket); "
            f"a {what} must be a file"
        )


def _check_text(path: Path, what: str) -> None:
    """A text file, not a binary one: no NUL byte in its first block."""
    with path.open("rb") as f:
        head = f.read(65536)
    if b"\x00" in head:
        raise UserError(f"{shown(str(path), 200)}: a binary file, not a {what}")


# ----------------------------------------------------------------------------- CSV


class _Retry(Exception):
    """An inferred-numeric column met text: read again with it categorical."""

    def __init__(self, columns: set[int]) -> None:
        self.columns = columns


class _CsvReader:
    """One CSV file: header and delimiter, a scan for shape and target, then the cells."""

    def __init__(self, path: Path, delimiter: str | None, missing: str, kinds: Mapping[str, str]):
        self.path = path
        self.delimiter = delimiter or ""
        self.missing = missing
        self.declared = kinds
        self.careful_only = False

    def read(
        self, target: str | None, require_target: bool, features: list[str] | None, keep: list[str]
    ) -> Table:
        path = self.path
        try:
            _check_text(path, "CSV file")
            with path.open(encoding="utf-8-sig") as f:
                rows = _nonblank(f)
                first = next(rows, None)
                if first is None:
                    raise UserError(f"{path}: the file is empty")
                if len(first[1]) > MAX_HEADER_CHARS:
                    raise UserError(f"{path}:{first[0]}: the header line is too long")
                sample = list(itertools.islice(rows, 5))
                if not self.delimiter:
                    self.delimiter = _sniff(first[1], [line for _, line in sample], path)
                header = self._header(*first)
                self.ncols = len(header)
                ignored = {c for c, k in self.declared.items() if k == "ignore"}
                feature_idx, target_idx = _columns(
                    header, target, require_target, features, ignored, path
                )
                known = set(header)
                for name in self.declared:  # data.columns naming no column is a typo
                    if name not in known:
                        raise UserError(
                            f"{path}: data.columns names '{shown(name)}', which is not a column"
                            f"{_choices(name, header)}"
                        )
                self.keep = keep
                self.keep_idx = [_find(header, name, path, "--keep column") for name in keep]
                self.feature_names = [header[j] for j in feature_idx]
                self.target_name = header[target_idx] if target_idx is not None else None
                self.feature_idx, self.target_idx = feature_idx, target_idx
                self.kinds = [self.declared.get(n, "numeric") for n in self.feature_names]
                self.inferred = [n not in self.declared for n in self.feature_names]
                self._text_in_sample([line for _, line in sample])
                lines, cells = self._scan(itertools.chain(sample, rows))
            if not lines:
                raise UserError(f"{path}: no data rows after the header")
            check_size(len(lines), len(feature_idx), str(path), "use fewer rows or columns")
            y = self._targets(lines, cells) if target_idx is not None else None
            X = self._fast(first[0], lines) if "categorical" not in self.kinds else None
            levels: dict[str, list[str]] = {}
            kept: dict[str, np.ndarray] = {}
            if X is None:
                X, levels, kept = self._chunked(lines)
            elif keep:
                kept = self._kept(first[0])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UserError(f"{path}: cannot read CSV: {shown(str(exc), 120)}") from None
        return Table(
            X=X,
            y=y,
            feature_names=self.feature_names,
            target_name=self.target_name,
            class_names=sidecar_classes(path),
            origin=str(path),
            lines=np.array(lines, dtype=np.int64),
            kinds=list(self.kinds),
            levels=levels,
            kept=kept,
        )

    def _header(self, lineno: int, line: str) -> list[str]:
        names = [h.strip() for h in next(csv.reader([line], delimiter=self.delimiter))]
        names = [h or f"column{j + 1}" for j, h in enumerate(names)]
        if all(_is_number(h) for h in names):
            raise UserError(
                f"{self.path}:{lineno}: the first row holds only numbers; "
                "a CSV needs a header row naming its columns"
            )
        seen: set[str] = set()
        for name in names:  # a set: linear in the number of columns
            if name in seen:
                raise UserError(
                    f"{self.path}:{lineno}: column '{shown(name)}' appears twice in the header"
                )
            seen.add(name)
        return names

    def _text_in_sample(self, sample: list[str]) -> None:
        """Columns with a text cell in the first rows are categorical from the start, so that
        the first block need not be refused to find them (later text still is found)."""
        for row in csv.reader(sample, delimiter=self.delimiter):
            if len(row) != self.ncols:
                return  # the scan names the ragged row
            for c, j in enumerate(self.feature_idx):
                cell = row[j].strip()
                if self.inferred[c] and not _is_number_or_missing(cell):
                    self.kinds[c] = "categorical"

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

    def _loadtxt(
        self, source: Path | list[str] | io.StringIO, usecols: list[int], dtype: Any, skip: int = 0
    ) -> np.ndarray:
        return np.loadtxt(
            source,
            delimiter=self.delimiter,
            usecols=usecols,
            skiprows=skip,
            dtype=dtype,
            comments=None,
            quotechar='"',
            ndmin=2,
            encoding="utf-8-sig",
        )

    def _fast(self, header_line: int, lines: list[int]) -> np.ndarray | None:
        """Every column in one pass of NumPy's C parser; None if it refuses a cell."""
        try:
            X = self._loadtxt(self.path, self.feature_idx, np.float64, header_line)
        except ValueError:
            return None
        if len(X) != len(lines):  # whitespace-only lines: let the careful path sort it out
            return None
        if not np.isfinite(X.sum()):  # one pass; the exact check only when needed
            self._check_finite(X, lines)
        return X

    def _kept(self, header_line: int) -> dict[str, np.ndarray]:
        text = self._loadtxt(self.path, self.keep_idx, str, header_line)
        return {name: np.char.strip(text[:, i]) for i, name in enumerate(self.keep)}

    def _chunked(
        self, lines: list[int]
    ) -> tuple[np.ndarray, dict[str, list[str]], dict[str, np.ndarray]]:
        """Chunk by chunk; an inferred-numeric column that meets text starts it again."""
        while True:
            try:
                return self._chunks(lines)
            except _Retry as retry:
                for c in retry.columns:
                    self.kinds[c] = "categorical"

    def _chunks(
        self, lines: list[int]
    ) -> tuple[np.ndarray, dict[str, list[str]], dict[str, np.ndarray]]:
        """Block by block: each block of text parsed once by NumPy's C parser into a record
        array (numbers and text together); a block it refuses goes cell by cell."""
        num = [c for c, k in enumerate(self.kinds) if k == "numeric"]
        cat = [c for c, k in enumerate(self.kinds) if k == "categorical"]
        X = np.empty((len(lines), len(self.feature_idx)), dtype=np.float64)
        codes: list[dict[str, int]] = [{} for _ in cat]
        kept: list[list[np.ndarray]] = [[] for _ in self.keep_idx]
        n = 0
        for block in self._blocks(lines[0]):
            records = self._records(block, cat) if not self.careful_only else None
            if records is not None:
                end = n + len(records)
                numbers = lines[n:end]
                for c in num:
                    X[n:end, c] = records[f"f{c}"]
                if num and not np.isfinite(X[n:end, num].sum()):
                    self._check_finite(X[n:end, num], numbers, num)
                cells = [records[f"f{c}"] for c in cat]
                text: list[str] | None = None
            else:
                text = [line for line in block.splitlines(keepends=True) if not line.isspace()]
                end = n + len(text)
                numbers = lines[n:end]
                if num:
                    # a text column shows in the first rows: find it there, not cell by cell
                    # through the whole block (the read then starts again with it as text)
                    self._numbers(numbers[:SAMPLE_ROWS], text[:SAMPLE_ROWS], num)
                    X[n:end, num] = self._numbers(numbers, text, num)
                table = (
                    self._loadtxt(text, [self.feature_idx[c] for c in cat], str) if cat else None
                )
                cells = [table[:, i] for i in range(len(cat))] if table is not None else []
            for i, c in enumerate(cat):
                X[n:end, c] = self._codes(cells[i], codes[i], numbers, c)
            if self.keep_idx:
                source = text if text is not None else io.StringIO(block)
                values = self._loadtxt(source, self.keep_idx, str)
                for i in range(len(self.keep_idx)):
                    kept[i].append(np.char.strip(values[:, i]))
            n = end
        if n != len(lines):  # the fast parser skipped or merged a line: read every cell
            self.careful_only = True
            return self._chunks(lines)
        levels = {self.feature_names[c]: list(codes[i]) for i, c in enumerate(cat)}
        return X, levels, {name: np.concatenate(kept[i]) for i, name in enumerate(self.keep)}

    def _blocks(self, first: int) -> Iterator[str]:
        """The file's text from line `first` on, in blocks of whole lines."""
        with self.path.open(encoding="utf-8-sig") as f:
            for _ in range(first - 1):
                f.readline()
            while block := f.read(BLOCK_CHARS):
                if not block.endswith("\n"):
                    block += f.readline()
                yield block

    def _records(self, block: str, cat: list[int]) -> np.ndarray | None:
        """One block as a record array, field f{c} for column c; None if NumPy refuses it."""
        width = 16
        while True:
            dtype = np.dtype(
                [(f"f{c}", f"U{width}" if c in cat else "f8") for c in range(len(self.kinds))]
            )
            try:
                records = self._loadtxt(io.StringIO(block), self.feature_idx, dtype)
            except ValueError:
                return None
            records = records.reshape(-1)
            longest = max(
                (int(np.char.str_len(records[f"f{c}"]).max(initial=0)) for c in cat), default=0
            )
            if longest < width:  # nothing was cut short
                return records
            width *= 4

    def _numbers(self, numbers: list[int], text: list[str], num: list[int]) -> np.ndarray:
        usecols = [self.feature_idx[c] for c in num]
        try:
            Xc = self._loadtxt(text, usecols, np.float64)
        except ValueError:
            return self._careful(numbers, text, num)
        if not np.isfinite(Xc.sum()):
            self._check_finite(Xc, numbers, num)
        return Xc

    def _codes(
        self, cells: np.ndarray, codes: dict[str, int], numbers: list[int], c: int
    ) -> np.ndarray:
        """Category codes of one chunk of a categorical column; NaN for a missing cell.
        Stripped after `unique`: only the few distinct texts, not every cell."""
        uniq, inverse = np.unique(cells, return_inverse=True)
        found = np.empty(len(uniq), dtype=np.float64)
        for i, value in enumerate(uniq.tolist()):
            value = value.strip()
            if value.lower() in MISSING_TOKENS:
                if self.missing == "error":
                    row = int(np.flatnonzero(inverse == i)[0])
                    raise UserError(
                        f"{self.path}:{numbers[row]}: missing value in column "
                        f"'{shown(self.feature_names[c])}' {_MISSING_HINT}"
                    )
                found[i] = np.nan
            else:
                found[i] = codes.setdefault(value, len(codes))
        return found[inverse.reshape(-1)]

    def _careful(self, numbers: list[int], text: list[str], num: list[int]) -> np.ndarray:
        """Cell by cell with the csv module, naming the first problem's line and column."""
        rows = list(csv.reader(text, delimiter=self.delimiter))
        Xc = np.empty((len(rows), len(num)))
        self.text_columns: set[int] = set()
        for r, (lineno, row) in enumerate(zip(numbers, rows, strict=True)):
            if len(row) != self.ncols:
                raise UserError(
                    f"{self.path}:{lineno}: row has {len(row)} fields, the header has {self.ncols}"
                )
            for i, c in enumerate(num):
                Xc[r, i] = self._number(row[self.feature_idx[c]], lineno, c)
        if self.text_columns:  # every text column of the chunk at once: one retry, not one each
            raise _Retry(self.text_columns)
        return Xc

    def _number(self, cell: str, lineno: int, c: int) -> float:
        column = shown(self.feature_names[c])
        text = cell.strip()
        if _DECIMAL.fullmatch(text):
            return float(text)
        if text.lower() not in MISSING_TOKENS:
            if _INFINITE.fullmatch(text):
                raise UserError(
                    f"{self.path}:{lineno}: value {text} in column '{column}' is not finite"
                )
            if self.inferred[c]:
                self.text_columns.add(c)
                return float("nan")
            raise UserError(
                f"{self.path}:{lineno}: non-numeric value {shown(text)!r} in numeric column "
                f"'{column}'",
                hint=f"declare it with data.columns: {{{column}: categorical}}, or leave it "
                "out with data.features",
            )
        if self.missing == "error":
            raise UserError(
                f"{self.path}:{lineno}: missing value in column '{column}' {_MISSING_HINT}"
            )
        return float("nan")

    def _check_finite(
        self, Xc: np.ndarray, numbers: list[int], cols: list[int] | None = None
    ) -> None:
        """NaN cells are missing values; infinities are errors."""
        bad = ~np.isfinite(Xc)
        if self.missing != "error":
            bad &= ~np.isnan(Xc)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            column = shown(self.feature_names[cols[c] if cols is not None else c])
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
                        f"data.missing: {self.missing} fills input cells only; drop skips such rows"
                        if self.missing in ("mean", "median")
                        else "set data.missing: drop to skip such rows"
                    )
                    raise UserError(
                        f"{self.path}:{lineno}: missing target value in column "
                        f"'{shown(self.target_name or '')}' ({hint})"
                    )
        return values


def _sniff(header: str, sample: list[str], path: Path) -> str:
    """The delimiter that splits the header into several fields and most rows alike."""
    best, best_score = None, (0, 1)
    lines = [header, *sample]
    for d in DELIMITERS:
        # without quotes a count is exact and has no field-size limit (100,000 columns)
        fields = [
            line.count(d) + 1 if '"' not in line else len(next(csv.reader([line], delimiter=d)))
            for line in lines
        ]
        score = (sum(n == fields[0] for n in fields[1:]), fields[0])
        if fields[0] > 1 and score > best_score:
            best, best_score = d, score
    if best is None:
        raise UserError(
            f"{path}: only one column found; set data.delimiter if it is not one of , ; tab |"
        )
    return best


def _find(header: list[str], name: str, path: Path, what: str) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise UserError(
            f"{path}: {what} '{shown(name)}' not found{_choices(name, header)}"
        ) from None


def _columns(
    header: list[str],
    target: str | None,
    require_target: bool,
    features: list[str] | None,
    ignored: set[str],
    path: Path,
) -> tuple[list[int], int | None]:
    """Indices of the input columns (in the order asked) and of the target column."""
    if target is None:
        target_idx: int | None = len(header) - 1 if require_target else None
        if features is not None and require_target and header[-1] in features:
            raise UserError(
                f"{path}: '{shown(header[-1])}' is listed in data.features; name the target "
                "column with data.target"
            )
    elif target in header:
        target_idx = header.index(target)
    elif require_target:
        raise UserError(
            f"{path}: target column '{shown(target)}' not found{_choices(target, header)}"
        )
    else:
        target_idx = None
    if features is None:
        feature_idx = [
            j for j, name in enumerate(header) if j != target_idx and name not in ignored
        ]
    else:
        position = {name: j for j, name in enumerate(header)}  # linear, not header.index
        for name in features:
            if name not in position:
                raise UserError(f"{path}: column '{shown(name)}' not found{_choices(name, header)}")
        feature_idx = [position[name] for name in features]
    if not feature_idx:
        raise UserError(
            f"{path}: no input columns besides the target '{shown(header[target_idx or 0])}'"
        )
    return feature_idx, target_idx


def _choices(name: str, header: list[str]) -> str:
    close = difflib.get_close_matches(name, header[:2000], n=1)
    listed = ", ".join(shown(h, 30) for h in header[:12])
    more = f", ... ({len(header)} in all)" if len(header) > 12 else ""
    return f" (columns: {listed}{more})" + (f"; did you mean '{shown(close[0])}'?" if close else "")


def _nonblank(f: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) for every line with something on it."""
    return ((i, line) for i, line in enumerate(f, start=1) if not line.isspace())


def _is_number_or_missing(cell: str) -> bool:
    return bool(
        _DECIMAL.fullmatch(cell) or cell.lower() in MISSING_TOKENS or _INFINITE.fullmatch(cell)
    )


def _is_number(text: str) -> bool:
    return _DECIMAL.fullmatch(text.strip()) is not None


MAX_SIDECAR_BYTES = 10_000_000


def sidecar_classes(path: Path) -> list[str] | None:
    """Class names from `<name>.classes.txt` beside a data file, one per line."""
    sidecar = path.with_suffix(".classes.txt")
    try:
        if not sidecar.exists():
            return None
    except OSError:
        return None
    check_file(sidecar, "classes file")
    if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
        raise UserError(f"{sidecar}: too large for a list of class names")
    _check_text(sidecar, "classes file")
    try:
        text = sidecar.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{sidecar}: cannot read classes file: {shown(str(exc), 120)}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- NPZ and missing


def _read_npz(path: Path, features: list[str] | None) -> Table:
    """Arrays `X` (rows x features) and `y`; optional `feature_names` and `class_names`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "X" not in npz or "y" not in npz:
                raise UserError(
                    f"{path}: an NPZ dataset needs arrays 'X' and 'y' (has: "
                    f"{', '.join(shown(f, 30) for f in npz.files[:12])})"
                )
            X = np.asarray(npz["X"], dtype=np.float64)
            y = np.asarray(npz["y"])
            names = [str(v) for v in npz["feature_names"]] if "feature_names" in npz else None
            classes = [str(v) for v in npz["class_names"]] if "class_names" in npz else None
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"{path}: an array of the NPZ file is too large to load") from None
    except Exception as exc:  # zipfile/ValueError/OSError: all mean "not a usable npz"
        raise UserError(f"{path}: cannot read NPZ: {shown(str(exc), 120)}") from None
    if X.ndim != 2:
        raise UserError(f"{path}: X must be 2-D (rows x features), got shape {X.shape}")
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise UserError(f"{path}: y must be 1-D (one target per row), got shape {y.shape}")
    y = y.reshape(-1)
    if len(y) != len(X):
        raise UserError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise UserError(f"{path}: X has no rows")
    if X.shape[1] == 0:
        raise UserError(f"{path}: X has no feature columns")
    if names is None:
        names = [f"x{j}" for j in range(X.shape[1])]
    elif len(names) != X.shape[1]:
        raise UserError(f"{path}: {len(names)} feature_names for {X.shape[1]} columns of X")
    elif len(set(names)) != len(names):
        raise UserError(f"{path}: feature_names holds a name twice")
    if features is not None:
        position = {name: j for j, name in enumerate(names)}
        for name in features:
            if name not in position:
                raise UserError(f"{path}: feature '{shown(name)}' not found{_choices(name, names)}")
        X = X[:, [position[name] for name in features]]
        names = list(features)
    if np.isinf(X).any():
        r, c = np.argwhere(np.isinf(X))[0]
        raise UserError(f"{path}: X row {r + 1}, column '{shown(names[c])}' is not finite")
    return Table(X, y, names, "y", class_names=classes, origin=str(path))


def _apply_missing(table: Table, missing: str) -> Table:
    """Refuse or drop rows with missing values; mean / median / keep leave NaN for the
    pipeline. A missing category is a level of its own unless `missing` is error."""
    no_target = _missing_targets(table.y, len(table.X))
    if np.isfinite(table.X.sum()) and not no_target.any():  # one cheap pass in the usual case
        return table
    holes = np.isnan(table.X)
    if table.kinds is not None and missing != "error":
        holes[:, [k == "categorical" for k in table.kinds]] = False
    if not holes.any() and not no_target.any():
        return table
    if missing == "drop":
        keep = ~holes.any(axis=1) & ~no_target
        if not keep.any():
            raise UserError(f"{table.origin}: every row has a missing value; nothing left to use")
        table.select_rows(keep)
        return table
    if no_target.any():
        r = int(np.argmax(no_target))
        raise UserError(f"{table.where(r)}: missing target value (set data.missing: drop)")
    if missing == "error":
        r, c = np.argwhere(holes)[0]
        raise UserError(
            f"{table.where(r)}: missing value in column '{shown(table.feature_names[c])}' "
            f"{_MISSING_HINT}"
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
