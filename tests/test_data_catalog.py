"""The list of built-in datasets, what the wheel carries, the docs, and the reader's memory."""

import re
import tomllib
import tracemalloc

import numpy as np

from mlpcli.config import GENERATORS, Data
from mlpcli.data import catalog
from mlpcli.data.files import read_table
from tests.helpers import ROOT

NAMES = ["iris", "wine", "digits", "diabetes", *GENERATORS, "mnist"]


def test_datasets_command_lists_every_builtin(cli):
    result = cli("datasets")
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert re.search(rf"│ {name}\s", result.output), name


def test_catalog_sizes():
    rows = {d.name: (d.rows, d.features, d.task, d.classes) for d in catalog()}
    assert list(rows) == NAMES
    assert rows["iris"] == (150, 4, "classification", 3)
    assert rows["diabetes"] == (442, 10, "regression", None)
    assert rows["mnist"] == (70_000, 784, "classification", 10)
    assert rows["spirals"][1:] == (2, "classification", 2)


def test_wheel_carries_the_small_datasets_but_not_mnist():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packed = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    shipped = {p.name for p in (ROOT / "datasets").iterdir() if p.is_file()}
    assert {_file_name(k) for k in packed} == shipped - {"mnist.npz"}
    assert all(v == f"mlpcli/_datasets/{_file_name(k)}" for k, v in packed.items())


def _file_name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def test_every_data_key_and_generator_option_is_documented():
    text = (ROOT / "docs" / "config.md").read_text()
    for key in Data.model_fields:
        assert f"`{key}`" in text, key
    for name, info in GENERATORS.items():
        assert f"`{name}`" in text, name
        for option in info.options.model_fields:
            assert re.search(rf"`{option}[`:]", text), f"{name}.{option}"
    readme = (ROOT / "datasets" / "README.md").read_text()
    for name in NAMES:
        assert name in readme, name


def test_reading_a_large_csv_holds_under_three_times_the_float32_data(tmp_path):
    rows, cols = 10_000, 100
    X = np.random.default_rng(0).integers(0, 256, (rows, cols))
    path = tmp_path / "big.csv"
    header = ",".join(f"f{j}" for j in range(cols)) + ",label\n"
    body = "\n".join(",".join(map(str, row)) + f",{i % 10}" for i, row in enumerate(X.tolist()))
    path.write_text(header + body + "\n")
    tracemalloc.start()
    try:
        table = read_table(path, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(table.X, X)
    assert peak < 3 * rows * cols * 4
