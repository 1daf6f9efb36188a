"""Class labels: one set of rules for the training data and for every file scored later.

A label is its text, stripped; a label that is a whole number is read as that number, so
"3", "3.0" and "03" are one class (files written by other tools often say 0.0 for class 0).
Integer classes sort numerically. Labels beyond 2**53 cannot be told apart once read as
numbers (1e300 and 2e300 would collide), so they are refused.
"""

from dataclasses import dataclass

import numpy as np

from mlpcli.data.files import Table, shown
from mlpcli.errors import UserError

EXACT = 2**53  # the largest magnitude up to which every whole float is one integer


@dataclass
class Labels:
    """The classes of a classification target: display names and the keys found in files."""

    names: list[str]
    keys: list[str]  # canonical label text per class: "3" for 3, 3.0 and "03"; else the label
    integer: bool

    @classmethod
    def of(cls, table: Table) -> "Labels":
        """Classes of the training table; integer labels sort numerically."""
        assert table.y is not None
        found = np.unique(keys_of(table.y))
        integer = integers(found, table)
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
                f"{table.origin}: the target '{shown(table.target_name or '')}' has a single "
                f"class ('{shown(labels.names[0])}'): nothing to classify"
            )
        return labels

    @classmethod
    def saved(cls, names: list[str]) -> "Labels":
        """The classes of a saved model, from its class names alone."""
        integer = all(_whole(n) is not None for n in names)
        keys = [str(_whole(n)) for n in names] if integer else list(names)
        return cls(list(names), keys, integer)

    def encode(self, table: Table) -> np.ndarray:
        """Class indices for a table's target, naming the row of an unknown class."""
        assert table.y is not None
        keys = keys_of(table.y)
        uniq, inverse = np.unique(keys, return_inverse=True)
        lookup = {k: i for i, k in enumerate(self.keys)}
        codes = np.empty(len(uniq), dtype=np.int64)
        for i, key in enumerate(uniq.tolist()):
            code = self._code(key, lookup)
            if code is None:
                bad = int(np.flatnonzero(inverse.reshape(-1) == i)[0])
                known = ", ".join(shown(n, 20) for n in self.names[:20])
                raise UserError(
                    f"{table.where(bad)}: class '{shown(key)}' does not occur in the "
                    f"training data (classes: {known})"
                )
            codes[i] = code
        return codes[inverse.reshape(-1)]

    def _code(self, key: str, lookup: dict[str, int]) -> int | None:
        if key in lookup:
            return lookup[key]
        number = _whole(key)
        if number is None:
            return None
        if self.integer:
            return lookup.get(str(number))
        # class names are words (from a sidecar): an integer label is the class's code
        return number if 0 <= number < len(self.names) else None


def keys_of(y: np.ndarray) -> np.ndarray:
    """Label text: integers without a decimal point, strings stripped."""
    if y.dtype.kind in "iub":
        return y.astype(np.int64).astype(str)
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0) and np.all(np.abs(y) < EXACT):
        return y.astype(np.int64).astype(str)
    return np.char.strip(y.astype(str))


def integers(values: np.ndarray, table: Table) -> list[int] | None:
    """The labels as integers if every one is a whole number ("3", "3.0", "03")."""
    out = []
    for v in values.tolist():
        try:
            number = float(v) if _plain(v) else float("nan")
        except ValueError:
            return None
        if not number.is_integer():
            return None
        if abs(number) >= EXACT:
            raise UserError(
                f"{table.origin}: class label '{shown(v)}' in '{shown(table.target_name or '')}' "
                f"is too large to tell apart from its neighbours (labels beyond 2**53 collide "
                "once read as numbers, e.g. 1e300 and 2e300); use text labels"
            )
        out.append(int(number))
    return out


def _plain(text: str) -> bool:
    from mlpcli.data.files import _DECIMAL

    return _DECIMAL.fullmatch(text.strip()) is not None


def _whole(text: str) -> int | None:
    """The integer a label stands for ("3", "3.0", "03"), or None."""
    if not _plain(text):
        return None
    number = float(text)
    if not number.is_integer() or abs(number) >= EXACT:
        return None
    return int(number)
