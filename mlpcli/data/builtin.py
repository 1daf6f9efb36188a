"""Built-in datasets: the real CSVs shipped in datasets/ (and inside the wheel)."""

from pathlib import Path

from mlpcli.errors import UserError

# name -> (file, task). Generated datasets are in config.GENERATORS, MNIST in data.mnist.
BUILTIN: dict[str, tuple[str, str]] = {
    "iris": ("iris.csv", "classification"),
    "wine": ("wine.csv", "classification"),
    "digits": ("digits.csv", "classification"),
    "diabetes": ("diabetes.csv", "regression"),
}


def folders() -> list[Path]:
    """Where shipped data files live: inside an installed wheel, then a source checkout."""
    package = Path(__file__).resolve().parent.parent
    return [package / "_datasets", package.parent / "datasets"]


def builtin_path(name: str) -> Path:
    """The file of a built-in dataset."""
    if name not in BUILTIN:
        raise UserError(
            f"unknown dataset '{name}': not a file path and not a built-in ({', '.join(BUILTIN)})"
        )
    for folder in folders():
        candidate = folder / BUILTIN[name][0]
        if candidate.exists():
            return candidate
    raise UserError(f"built-in dataset '{name}' is missing from this installation")
