"""Built-in datasets: the real CSVs shipped in datasets/ (and inside the wheel)."""

from pathlib import Path

from mlpcli.errors import UserError

# name -> (file, task)
BUILTIN: dict[str, tuple[str, str]] = {
    "iris": ("iris.csv", "classification"),
    "wine": ("wine.csv", "classification"),
    "digits": ("digits.csv", "classification"),
    "diabetes": ("diabetes.csv", "regression"),
}


def _folders() -> list[Path]:
    package = Path(__file__).resolve().parent.parent
    # inside an installed wheel, then a source checkout (editable install or clone)
    return [package / "_datasets", package.parent / "datasets"]


def builtin_path(name: str) -> Path:
    """The file of a built-in dataset."""
    if name not in BUILTIN:
        raise UserError(
            f"unknown dataset '{name}': not a file path and not a built-in ({', '.join(BUILTIN)})"
        )
    for folder in _folders():
        candidate = folder / BUILTIN[name][0]
        if candidate.exists():
            return candidate
    raise UserError(f"built-in dataset '{name}' is missing from this installation")
