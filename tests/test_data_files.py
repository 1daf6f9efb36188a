"""Reading a user's CSV and NPZ files: delimiters, columns, labels, missing values, errors."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlpcli.config import Data
from mlpcli.data import files, load_dataset
from mlpcli.data.files import read_table
from mlpcli.errors import UserError

GOOD = "a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n"


def write(folder: Path, text: str, name: str = "data.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def data(path: Path, **keys) -> Data:
    return Data(source=str(path), **keys)


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("d", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, d):
    table = read_table(write(tmp_path, GOOD.replace(",", d)), None)
    assert table.feature_names == ["a", "b"] and table.target_name == "label"
    assert table.X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert table.y is not None and table.y.tolist() == ["x", "y", "x", "y"]


def test_explicit_delimiter_wins(tmp_path):
    # commas inside values would fool a sniffer; data.delimiter says what splits fields
    path = write(tmp_path, "a;b;label\n1;2;x,1\n3;4;y,2\n")
    table = read_table(path, None, delimiter=";")
    assert table.y is not None and table.y.tolist() == ["x,1", "y,2"]


def test_target_by_name_and_feature_selection(tmp_path):
    path = write(tmp_path, "label,a,b,c\nx,1,2,3\ny,4,5,6\n")
    table = read_table(path, "label", features=["c", "a"])
    assert table.feature_names == ["c", "a"]
    assert table.X.tolist() == [[3, 1], [6, 4]]


def test_quoted_fields_bom_crlf_and_blank_lines(tmp_path):
    text = '\ufeff"a","b","label"\r\n"1.5",2,"benign, mostly"\r\n\r\n3,4,malignant\r\n'
    table = read_table(write(tmp_path, text), None)
    assert table.feature_names == ["a", "b"]
    assert table.X.tolist() == [[1.5, 2], [3, 4]]
    assert table.y is not None and table.y.tolist() == ["benign, mostly", "malignant"]
    assert table.lines is not None and table.lines.tolist() == [2, 4]


def test_string_labels_become_named_classes(tmp_path):
    path = write(tmp_path, "a,label\n" + "".join(f"{i},{c}\n" for i, c in enumerate("bcab" * 5)))
    dataset = load_dataset(data(path, split={"train": 1.0, "val": 0.0, "test": 0.0}), 0)
    assert dataset.class_names == ["a", "b", "c"]
    assert set(dataset.parts["train"].y.tolist()) == {0, 1, 2}


def test_integer_labels_sort_numerically(tmp_path):
    rows = "".join(f"{i},{label}\n" for i, label in enumerate([10, 9, 2, 10, 9, 2, 10.0, 9, 2]))
    path = write(tmp_path, "a,label\n" + rows)
    dataset = load_dataset(data(path, split={"train": 1.0, "val": 0.0, "test": 0.0}), 0)
    assert dataset.class_names == ["2", "9", "10"]


@settings(max_examples=25, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.integers(1, 5)),
        elements=st.floats(-1e300, 1e300),
    )
)
def test_numbers_read_back_exactly(tmp_path_factory, X):
    folder = tmp_path_factory.mktemp("roundtrip")
    header = ",".join(f"f{j}" for j in range(X.shape[1])) + ",y\n"
    body = "".join(",".join(repr(float(v)) for v in row) + ",0\n" for row in X)
    table = read_table(write(folder, header + body), None)
    assert np.array_equal(table.X, X)


def test_careful_path_matches_fast_path(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).round(6)
    lines = [",".join(map(str, row)) + f",{i % 2}" for i, row in enumerate(X.tolist())]
    lines[37] = lines[37].replace(lines[37].split(",")[1], "NA", 1)  # forces the careful path
    path = write(tmp_path, "a,b,c,y\n" + "\n".join(lines) + "\n")
    monkeypatch.setattr(files, "BLOCK_CHARS", 150)  # a few rows per block
    table = read_table(path, None, missing="mean")
    expected = X.copy()
    expected[37, 1] = np.nan
    assert np.array_equal(table.X, expected, equal_nan=True)
    assert table.lines is not None and table.lines[37] == 39


def test_npz_with_names(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(
        path,
        X=np.arange(12.0).reshape(6, 2),
        y=np.array(["cat", "dog"] * 3),
        feature_names=np.array(["w", "h"]),
    )
    dataset = load_dataset(data(path, split={"train": 1.0, "val": 0.0, "test": 0.0}), 0)
    assert dataset.feature_names == ["w", "h"] and dataset.class_names == ["cat", "dog"]


def test_npz_regression_target(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(20.0).reshape(10, 2), y=np.linspace(0, 1, 10))
    cfg = data(path, task="regression", split={"train": 0.8, "val": 0.1, "test": 0.1})
    dataset = load_dataset(cfg, 0)
    assert dataset.parts["train"].y.shape == (8, 1) and dataset.class_names is None


def test_presplit_files_match_columns_by_name(tmp_path):
    train = write(tmp_path, GOOD * 1, "train.csv")
    val = write(tmp_path, "b,label,a\n2,x,1\n4,y,3\n", "val.csv")
    dataset = load_dataset(Data(train=str(train), val=str(val), standardize=False), 0)
    assert dataset.parts["val"].X.tolist() == [[1, 2], [3, 4]]
    assert dataset.parts["val"].y.tolist() == [0, 1]


def test_presplit_carves_val_from_train(tmp_path):
    rows = "".join(f"{i},{i % 2}\n" for i in range(40))
    train = write(tmp_path, "a,y\n" + rows, "train.csv")
    dataset = load_dataset(
        Data(train=str(train), split={"train": 0.75, "val": 0.25, "test": 0.0}), 0
    )
    assert len(dataset.parts["train"]) == 30 and len(dataset.parts["val"]) == 10
    assert "test" not in dataset.parts


def test_split_is_stratified_and_seeded(tmp_path):
    rows = "".join(f"{i},{'ab'[i % 2]}\n" for i in range(100))
    path = write(tmp_path, "a,y\n" + rows)
    first = load_dataset(data(path), 3)
    again = load_dataset(data(path), 3)
    other = load_dataset(data(path), 4)
    for name in ("train", "val", "test"):
        counts = np.bincount(first.parts[name].y)
        assert counts[0] == counts[1]
        assert np.array_equal(first.parts[name].X, again.parts[name].X)
    assert not np.array_equal(first.parts["test"].X, other.parts["test"].X)


@pytest.mark.parametrize("how", [True, "global", False])
def test_float32_features_are_the_float64_ones_rounded(tmp_path, monkeypatch, how):
    # the model's dtype straight from the loader (no float64 copy kept for training),
    # standardised block by block: the same numbers as float64 then a cast
    rng = np.random.default_rng(0)
    rows = "".join(
        f"{a:.6f},{b:.3f},{'ab'[i % 2]}\n"
        for i, (a, b) in enumerate(rng.normal(size=(50, 2)) * [1, 1000])
    )
    path = write(tmp_path, "a,b,y\n" + rows)
    wide = load_dataset(data(path, standardize=how), 0)
    monkeypatch.setattr("mlpcli.data.preprocess.BLOCK_ROWS", 7)
    narrow = load_dataset(data(path, standardize=how), 0, dtype="float32")
    for name, part in wide.parts.items():
        assert part.X.dtype == np.float64 and narrow.parts[name].X.dtype == np.float32
        assert np.array_equal(part.X.astype(np.float32), narrow.parts[name].X)
        assert np.array_equal(part.y, narrow.parts[name].y)


# ----------------------------------------------------------------------------- missing values


MISSING = "a,b,y\n1,2,p\n3,,q\n5,NA,p\n7,8,q\n9,10,p\n11,?,q\n"


def test_missing_values_are_an_error_by_default(tmp_path):
    path = write(tmp_path, MISSING)
    with pytest.raises(UserError, match=r"data.csv:3: missing value in column 'b'.*data.missing"):
        read_table(path, None)


def test_missing_drop(tmp_path):
    table = read_table(write(tmp_path, MISSING), None, missing="drop")
    assert table.X.tolist() == [[1, 2], [7, 8], [9, 10]]
    assert table.lines is not None and table.lines.tolist() == [2, 5, 6]


def test_missing_drop_also_drops_missing_targets(tmp_path):
    table = read_table(write(tmp_path, "a,y\n1,p\n2,\n3,q\n"), None, missing="drop")
    assert table.y is not None and table.y.tolist() == ["p", "q"]


def test_missing_mean_fills_with_train_means(tmp_path):
    rows = "".join(f"{i},{'' if i % 5 == 0 else i * 10},{i % 2}\n" for i in range(40))
    path = write(tmp_path, "a,b,y\n" + rows)
    dataset = load_dataset(data(path, missing="mean", standardize=False), 0)
    train = dataset.parts["train"].X
    fill = dataset.preprocess["columns"][1]["fill"]
    assert not np.isnan(train).any()
    filled = train[train[:, 0] % 5 == 0, 1]
    assert np.allclose(filled, fill)
    observed = train[train[:, 0] % 5 != 0, 1]
    assert np.isclose(fill, observed.mean())


def test_missing_target_with_mean_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"data.csv:3: missing target value"):
        read_table(write(tmp_path, "a,y\n1,p\n2,\n3,q\n"), None, missing="mean")


# ----------------------------------------------------------------------------- errors


ERRORS = [
    ("", {}, r"data.csv: the file is empty"),
    ("\n\n  \n", {}, r"data.csv: the file is empty"),
    ("a,b,y\n", {}, r"data.csv: no data rows after the header"),
    ("a,b,y\n1,2,p\n3,4\n", {}, r"data.csv:3: row has 2 fields, the header has 3"),
    ("a,b,y\n1,2,p\n\n3,4,5,6\n", {}, r"data.csv:4: row has 4 fields, the header has 3"),
    (
        "a,b,y\n1,2,p\n3,abc,q\n",
        {"kinds": {"b": "numeric"}},
        r"data.csv:3: non-numeric value 'abc' in numeric column 'b'",
    ),
    ("a,b,y\n1,2,p\n3,,q\n", {}, r"data.csv:3: missing value in column 'b'"),
    ("a,b,y\n1,2,p\n3,inf,q\n", {}, r"data.csv:3: value inf in column 'b' is not finite"),
    ("a,b,y\n1,2,p\n", {"target": "lable"}, r"target column 'lable' not found"),
    ("a,b,label\n1,2,p\n", {"target": "lable"}, r"did you mean 'label'\?"),
    ("a,b,y\n1,2,p\n", {"features": ["a", "c"]}, r"column 'c' not found"),
    ("1,2,3\n4,5,6\n", {}, r"data.csv:1: the first row holds only numbers"),
    ("a,a,y\n1,2,p\n", {}, r"data.csv:1: column 'a' appears twice"),
    ("a b y\n1 2 3\n", {}, r"data.csv: only one column found; set data.delimiter"),
]


@pytest.mark.parametrize(("text", "keys", "message"), ERRORS)
def test_file_errors_name_file_line_and_column(tmp_path, text, keys, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=message) as info:
        read_table(path, keys.get("target"), features=keys.get("features"), kinds=keys.get("kinds"))
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"nope.csv: data file not found"):
        read_table(tmp_path / "nope.csv", None)


SPLIT_ERRORS = [
    ("a,y\n" + "".join(f"{i},p\n" for i in range(20)), {}, r"has a single class \('p'\)"),
    (
        "a,y\n" + "".join(f"{i},p\n" for i in range(20)) + "20,q\n21,q\n",
        {},
        r"data.csv: class 'q' has 2 rows, too few to stratify into train / val / test \(needs 3\)",
    ),
    (
        "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10)),
        {"split": {"train": 0.92, "val": 0.04, "test": 0.04, "stratify": False}},
        r"data.csv: the split leaves the val part empty \(10 rows, split.val=0.04\)",
    ),
    (
        "a,y\n1,2\n2,x\n3,4\n",
        {"task": "regression"},
        r"data.csv:3: non-numeric target value 'x' in column 'y'",
    ),
]


@pytest.mark.parametrize(("text", "keys", "message"), SPLIT_ERRORS)
def test_dataset_errors(tmp_path, text, keys, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=message):
        load_dataset(data(path, **keys), 0)


def test_unknown_class_in_test_file_names_the_line(tmp_path):
    train = write(tmp_path, GOOD, "train.csv")
    test = write(tmp_path, "a,b,label\n1,2,x\n3,4,z\n", "test.csv")
    with pytest.raises(UserError, match=r"test.csv:3: class 'z' does not occur in the training"):
        load_dataset(
            Data(train=str(train), test=str(test), split={"train": 1.0, "val": 0.0, "test": 0.0}), 0
        )


def test_npz_errors(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((3, 2)))
    with pytest.raises(UserError, match=r"d.npz: an NPZ dataset needs arrays 'X' and 'y'"):
        read_table(path, None)
    np.savez(path, X=np.zeros((3, 2)), y=np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(UserError, match=r"d.npz: cannot read NPZ"):  # no pickle, ever
        read_table(path, None)
    np.savez(path, X=np.array([[1.0, np.nan], [2.0, 3.0]]), y=np.array([0, 1]))
    with pytest.raises(UserError, match=r"d.npz: row 1: missing value in column 'x1'"):
        read_table(path, None)


def test_cli_reports_a_data_error_in_one_line(cli, tmp_path):
    write(tmp_path, "a,b,y\n1,2,p\n3,x,q\n")
    write(tmp_path, "data: {source: data.csv, columns: {b: numeric}}\n", "config.yaml")
    result = cli("validate", tmp_path / "config.yaml")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "data.csv:3: non-numeric value 'x' in numeric column 'b'" in result.output
