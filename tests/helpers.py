"""Paths and small builders shared by the tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IRIS_MINIMAL = f"""
data:
  source: {ROOT / "datasets" / "iris.csv"}
"""


def write_config(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
