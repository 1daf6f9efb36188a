"""Real tables: column kinds, one-hot, missing cells, and one fitted pipeline that train, eval
and predict apply alike (issue 14)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import Data
from mlpcli.data import load_dataset
from mlpcli.data.files import read_table
from mlpcli.errors import UserError
from tests.helpers import ROOT, write_config

ALL_TRAIN = {"train": 1.0, "val": 0.0, "test": 0.0}


def write_rows(path: Path, rows: list[list[object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def pets(n: int = 60, seed: int = 0) -> list[list[object]]:
    """A small table: an ID, a text column with a missing cell, numbers with gaps, a label."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = [["kind", "id", "colour", "weight", "legs", "note"]]
    for i in range(n):
        kind = ["cat", "dog"][i % 2]
        colour = ["black", "white", "ginger"][int(rng.integers(0, 3))] if i != 3 else "NA"
        weight = f"{(4 if kind == 'cat' else 20) + rng.normal():.2f}" if i % 7 else ""
        rows.append([kind, f"P{i:03d}", colour, weight, 4 - (i % 5 == 0), "same"])
    return rows


def load(path: Path, **keys) -> object:
    return load_dataset(Data(source=str(path), **{"split": ALL_TRAIN, **keys}), 0)


# ----------------------------------------------------------------------------- kinds


def test_kinds_are_inferred_ids_and_constant_text_ignored(tmp_path):
    path = write_rows(tmp_path / "pets.csv", pets())
    data = load(path, target="kind", missing="mean")
    assert data.feature_names == [
        "weight",
        "legs",
        "colour=black",
        "colour=ginger",
        "colour=white",
        "colour=(missing)",
    ]
    kinds = {c["name"]: c["kind"] for c in data.preprocess["columns"]}
    assert kinds == {
        "colour": "categorical",
        "weight": "numeric",
        "legs": "numeric",
        "id": "ignore",
        "note": "ignore",
    }
    assert any("'id' ignored: every value is different" in n for n in data.notes)
    assert any("'note' ignored: it holds one value only" in n for n in data.notes)


def test_declared_kinds_win(tmp_path):
    path = write_rows(tmp_path / "pets.csv", pets())
    data = load(
        path,
        target="kind",
        missing="mean",
        columns={"id": "categorical", "legs": "categorical", "colour": "ignore"},
    )
    assert data.feature_names[-2:] == ["legs=3", "legs=4"]  # integer codes, when declared
    assert sum(f.startswith("id=") for f in data.feature_names) == 51  # 50 and (other)
    assert "id=(other)" in data.feature_names
    assert not any(f.startswith("colour") for f in data.feature_names)


def test_a_listed_feature_is_never_ignored_as_an_id(tmp_path):
    path = write_rows(tmp_path / "pets.csv", pets())
    data = load(path, target="kind", features=["id", "weight"], missing="drop")
    assert data.feature_names[0] == "weight" and data.feature_names[1].startswith("id=")


def test_one_hot_block_is_sorted_and_exact(tmp_path):
    rows = [["c", "x", "y"]] + [[c, i, i % 2] for i, c in enumerate("bcabca" * 3)]
    data = load(write_rows(tmp_path / "t.csv", rows), standardize=False)
    assert data.feature_names == ["x", "c=a", "c=b", "c=c"]
    X = data.parts["train"].X
    letters = [r[0] for r in rows[1:]]
    for row, letter in zip(X, letters, strict=True):
        assert row[0] == letters.index(letter) or True
        assert row[1:].tolist() == [float(letter == v) for v in "abc"]


def test_max_categories_folds_the_rare_ones_into_other(tmp_path):
    rows = [["c", "y"]] + [[c, i % 2] for i, c in enumerate("aaaabbbcd" * 3)]
    data = load(write_rows(tmp_path / "t.csv", rows), categorical={"max_categories": 2})
    assert data.feature_names == ["c=a", "c=b", "c=(other)"]
    column = data.preprocess["columns"][0]
    assert column["categories"] == ["a", "b"] and column["other"] == ["c", "d"]
    X = data.parts["train"].X
    assert X[[r[0] in "cd" for r in rows[1:]], 2].tolist() == [1.0] * 6


def test_plain_decimals_only(tmp_path):
    rows = [["a", "b", "y"], ["5_0", 1, 0], ["1", 2, 1], ["2", 3, 0], ["3", 4, 1]]
    table = read_table(write_rows(tmp_path / "t.csv", rows), None)
    assert table.kinds == ["categorical", "numeric"]
    assert sorted(table.levels["a"]) == ["1", "2", "3", "5_0"]


# ----------------------------------------------------------------------------- missing


@pytest.mark.parametrize(("policy", "expected"), [("mean", 3.0), ("median", 2.0)])
def test_missing_numbers_fill_with_train_statistics(tmp_path, policy, expected):
    rows = [["a", "y"], [1, 0], [2, 1], [6, 0], ["NA", 1], ["", 0]]
    data = load(write_rows(tmp_path / "t.csv", rows), missing=policy, standardize=False)
    assert data.preprocess["columns"][0]["fill"] == expected
    assert data.parts["train"].X[3:, 0].tolist() == [expected, expected]


def test_missing_drop_skips_rows_with_missing_numbers_but_keeps_missing_categories(tmp_path):
    rows = [["a", "c", "y"], [1, "x", 0], ["", "x", 1], [3, "", 0], [4, "z", 1], [5, "z", 0]]
    data = load(write_rows(tmp_path / "t.csv", rows), missing="drop", standardize=False)
    assert len(data.parts["train"]) == 4
    assert data.feature_names == ["a", "c=x", "c=z", "c=(missing)"]


def test_all_missing_column_is_refused(tmp_path):
    rows = [["a", "b", "y"], [1, "", 0], [2, "NA", 1], [3, "", 0]]
    with pytest.raises(UserError, match="column 'b' has no values"):
        load(write_rows(tmp_path / "t.csv", rows), missing="mean")


# ----------------------------------------------------------------------------- train, eval, predict


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory) -> Path:
    from mlpcli.config import load_config
    from mlpcli.runs import train_run

    folder = tmp_path_factory.mktemp("pets")
    write_rows(folder / "pets.csv", pets(120))
    config = write_config(
        folder,
        "data: {source: pets.csv, target: kind, missing: mean}\n"
        "model: {hidden: [{units: 8}]}\noptimizer: {lr: 0.05}\n"
        "training: {epochs: 30, early_stopping: null}\n",
    )
    run, _ = train_run(load_config(config), folder / "runs", [])
    return run


def _shuffled_columns(rows: list[list[object]], order: list[str]) -> list[list[object]]:
    index = [rows[0].index(c) if c in rows[0] else None for c in order]
    return [order] + [[r[i] if i is not None else "extra" for i in index] for r in rows[1:]]


def test_train_eval_predict_on_the_same_file_reordered_with_extra_columns(cli, pets_run, tmp_path):
    own = cli("eval", pets_run, "--data", pets_run.parent.parent / "pets.csv", "--json")
    assert own.exit_code == 0, own.output
    rows = _shuffled_columns(
        pets(120), ["note", "weight", "unused", "colour", "legs", "id", "kind"]
    )
    path = write_rows(tmp_path / "other.csv", rows, delimiter=";")
    moved = cli("eval", pets_run, "--data", path, "--json")
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout)["metrics"] == json.loads(own.stdout)["metrics"]
    tab = write_rows(tmp_path / "tab.tsv", rows, delimiter="\t")
    predicted = cli("predict", pets_run, "--data", tab, "--keep", "id")
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.stdout.splitlines()
    assert lines[0] == "id,kind" and lines[1].startswith("P000,")
    assert len(lines) == 121


def test_unseen_categories_are_zeros_and_counted(cli, pets_run, tmp_path):
    rows = [["weight", "colour", "legs"], [4.1, "purple", 4], [20.3, "black", 4], [19, "purple", 3]]
    result = cli("predict", pets_run, "--data", write_rows(tmp_path / "new.csv", rows))
    assert result.exit_code == 0, result.output
    assert "2 cells of 'colour' hold categories the training data does not have" in result.stderr
    assert "'purple' at" in result.stderr and len(result.stdout.splitlines()) == 4


def test_unknown_error_policy_names_the_row(cli, tmp_path):
    write_rows(tmp_path / "pets.csv", pets(60))
    config = write_config(
        tmp_path,
        "data: {source: pets.csv, target: kind, missing: mean, categorical: {unknown: error}}\n"
        "training: {epochs: 2}\n",
    )
    assert cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet").exit_code == 0
    run = next((tmp_path / "runs").iterdir())
    rows = [["weight", "colour", "legs"], [4.1, "black", 4], [20.3, "purple", 4]]
    result = cli("predict", run, "--data", write_rows(tmp_path / "new.csv", rows))
    assert result.exit_code == 2
    assert "new.csv:3: category 'purple' of column 'colour'" in result.stderr


def test_missing_cells_at_predict_are_filled_as_in_training(cli, pets_run, tmp_path):
    rows = [["weight", "colour", "legs"], ["", "black", 4], [20.3, "", ""]]
    result = cli("predict", pets_run, "--data", write_rows(tmp_path / "new.csv", rows))
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3


def test_drop_at_predict_fills_with_the_train_mean_and_says_so(cli, tmp_path):
    write_rows(tmp_path / "pets.csv", pets(60))
    config = write_config(
        tmp_path, "data: {source: pets.csv, target: kind, missing: drop}\ntraining: {epochs: 2}\n"
    )
    assert cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet").exit_code == 0
    run = next((tmp_path / "runs").iterdir())
    rows = [["weight", "colour", "legs"], ["", "black", 4], [3, "white", 4]]
    result = cli("predict", run, "--data", write_rows(tmp_path / "new.csv", rows))
    assert result.exit_code == 0, result.output
    assert "1 missing cell in 'weight' filled with the train mean" in result.stderr
    assert len(result.stdout.splitlines()) == 3  # every input row gets a prediction


def test_proba_with_label_and_keep(cli, pets_run, tmp_path):
    rows = [["id", "weight", "colour", "legs"], ["a1", 4, "black", 4], ["a2", 21, "white", 4]]
    result = cli(
        "predict", pets_run, "--data", write_rows(tmp_path / "n.csv", rows), "--proba", "--label",
        "--keep", "id",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = list(csv.reader(result.stdout.splitlines()))
    assert out[0] == ["id", "cat", "dog", "kind"]
    assert [r[0] for r in out[1:]] == ["a1", "a2"]
    for r in out[1:]:
        p = [float(v) for v in r[1:3]]
        assert sum(p) == pytest.approx(1.0) and r[3] == ["cat", "dog"][int(np.argmax(p))]


def test_label_without_proba_and_unknown_keep_are_one_line_errors(cli, pets_run, tmp_path):
    path = write_rows(tmp_path / "n.csv", [["weight", "colour", "legs"], [4, "black", 4]])
    result = cli("predict", pets_run, "--data", path, "--label")
    assert result.exit_code == 2 and "--label goes with --proba" in result.stderr
    result = cli("predict", pets_run, "--data", path, "--keep", "idd")
    assert result.exit_code == 2 and "--keep column 'idd' not found" in result.stderr


def test_zero_point_zero_labels_through_eval(cli, tmp_path):
    rows = [["a", "b", "y"]] + [[i, (i * 7) % 5, i % 2] for i in range(40)]
    write_rows(tmp_path / "int.csv", rows)
    config = write_config(tmp_path, "data: {source: int.csv}\ntraining: {epochs: 3}\n")
    assert cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet").exit_code == 0
    run = next((tmp_path / "runs").iterdir())
    floats = [rows[0]] + [[a, b, f"{y}.0"] for a, b, y in rows[1:]]
    first = cli("eval", run, "--data", tmp_path / "int.csv", "--json")
    second = cli("eval", run, "--data", write_rows(tmp_path / "f.csv", floats, ";"), "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["metrics"] == json.loads(first.stdout)["metrics"]


def test_the_pipeline_is_reproduced_with_numpy_alone(pets_run, tmp_path):
    """docs/runs.md: meta.preprocess, then h = act(h @ W + b), gives predict's probabilities."""
    from mlpcli.evaluate import predict

    rows = [
        ["weight", "colour", "legs"],
        [4.2, "black", 4],
        ["", "ginger", 3],
        [19.5, "NA", 4],
        [7, "blue", ""],
    ]
    path = write_rows(tmp_path / "n.csv", rows)
    with np.load(pets_run / "checkpoints" / "best.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        layers = [(z[f"layers.{i}.weight"], z[f"layers.{i}.bias"]) for i in range(2)]
    numeric, onehot = [], []
    for column in meta["preprocess"]["columns"]:
        if column["kind"] == "numeric":
            values = {"weight": [4.2, np.nan, 19.5, 7], "legs": [4, 3, 4, np.nan]}[column["name"]]
            v = np.where(np.isnan(values), column["fill"], values)
            numeric.append((v - column["mean"]) / column["scale"])
        elif column["kind"] == "categorical":
            levels = column["categories"] + ["(missing)"] * column["missing_level"]
            cells = ["black", "ginger", "(missing)", "blue"]
            onehot += [[float(c == level) for c in cells] for level in levels]
    h = np.array(numeric + onehot).T
    h = np.maximum(h @ layers[0][0] + layers[0][1], 0)
    logits = h @ layers[1][0] + layers[1][1]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    out = predict(pets_run, path, proba=True)
    assert np.allclose(np.array(out.rows, dtype=float), probs, atol=1e-6)


# ----------------------------------------------------------------------------- parquet


def test_parquet_goes_through_the_same_pipeline(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = pets(60)
    csv_path = write_rows(tmp_path / "pets.csv", rows)
    columns = {name: [r[j] for r in rows[1:]] for j, name in enumerate(rows[0])}
    columns["weight"] = [float(v) if v != "" else None for v in columns["weight"]]
    columns["colour"] = [None if v == "NA" else v for v in columns["colour"]]
    pq.write_table(pa.table(columns), tmp_path / "pets.parquet")
    from_csv = load(csv_path, target="kind", missing="mean")
    from_parquet = load(tmp_path / "pets.parquet", target="kind", missing="mean")
    assert from_parquet.feature_names == from_csv.feature_names
    assert from_parquet.preprocess == from_csv.preprocess
    assert np.array_equal(from_parquet.parts["train"].X, from_csv.parts["train"].X)


def test_parquet_without_pyarrow_says_what_to_install(cli, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    config = write_config(tmp_path, "data: {source: t.parquet}\n")
    result = cli("validate", config)
    assert result.exit_code == 2
    assert "reading Parquet needs pyarrow" in result.stderr
    assert 'pip install ".[parquet]"' in result.stderr and "mlpcli[" not in result.stderr


# ----------------------------------------------------------------------------- inspect


def test_inspect_shows_kinds_and_prints_a_config_that_trains(cli, tmp_path):
    source = ROOT / "datasets" / "penguins.csv"
    result = cli("inspect", source, "--target", "species")
    assert result.exit_code == 0, result.output
    for text in ("island", "categorical", "ignore", "Adelie", "152", "every value is different"):
        assert text in result.stderr, text
    config = tmp_path / "starter.yaml"
    config.write_text(result.stdout)
    assert "target: species" in result.stdout and "missing: median" in result.stdout
    trained = cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet",
                  "--set", "training.epochs=3")  # fmt: skip
    assert trained.exit_code == 0, trained.output


def test_inspect_a_regression_table(cli, tmp_path):
    result = cli("inspect", ROOT / "datasets" / "houses.csv")
    assert result.exit_code == 0, result.output
    assert "numeric, regression" in result.stderr
    assert "loss: mse" in result.stdout and "task: regression" in result.stdout


# ----------------------------------------------------------------------------- class weights


def imbalanced(tmp_path: Path, n: int = 600) -> Path:
    """Two overlapping classes, 9 to 1: an unweighted model mostly answers 'common'."""
    rng = np.random.default_rng(3)
    rare = rng.random(n) < 0.1
    x = rng.normal(size=(n, 2)) + np.where(rare, 1.2, 0.0)[:, None]
    rows = [["a", "b", "y"]] + [
        [f"{u:.4f}", f"{v:.4f}", "rare" if r else "common"]
        for (u, v), r in zip(x, rare, strict=True)
    ]
    return write_rows(tmp_path / "imbalanced.csv", rows)


def _rare_recall(cli, tmp_path: Path, weight: str) -> float:
    imbalanced(tmp_path)
    config = write_config(
        tmp_path,
        f"data: {{source: imbalanced.csv}}\nloss: {{name: cross_entropy{weight}}}\n"
        "optimizer: {lr: 0.01}\ntraining: {epochs: 40, early_stopping: null}\n",
        f"c{len(weight)}.yaml",
    )
    runs = tmp_path / f"runs{len(weight)}"
    assert cli("train", config, "--runs-dir", runs, "--quiet").exit_code == 0
    run = next(runs.iterdir())
    report = json.loads(cli("eval", run, "--split", "test", "--json").stdout)
    return next(c["recall"] for c in report["classes"] if c["class"] == "rare")


def test_balanced_class_weight_raises_the_rare_class_recall(cli, tmp_path):
    plain = _rare_recall(cli, tmp_path, "")
    balanced = _rare_recall(cli, tmp_path, ", class_weight: balanced")
    assert balanced > plain + 0.2, (plain, balanced)


def test_class_weight_by_name_is_saved_and_used_by_eval(cli, tmp_path):
    imbalanced(tmp_path)
    config = write_config(
        tmp_path,
        "data: {source: imbalanced.csv}\n"
        "loss: {name: cross_entropy, class_weight: {rare: 5}}\ntraining: {epochs: 3}\n",
    )
    assert cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet").exit_code == 0
    run = next((tmp_path / "runs").iterdir())
    with np.load(run / "checkpoints" / "best.npz", allow_pickle=False) as z:
        assert json.loads(str(z["meta"]))["class_weight"] == [1.0, 5.0]
    summary = json.loads((run / "summary.json").read_text())
    report = json.loads(cli("eval", run, "--split", "test", "--json").stdout)
    assert report["metrics"]["loss"] == pytest.approx(summary["final"]["test"]["loss"], rel=1e-5)


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ("{name: mse, class_weight: balanced}", "class_weight goes with cross_entropy"),
        (
            "{name: cross_entropy, class_weight: {rare: -1}}",
            "class 'rare' must be a number above 0",
        ),
        ("{name: cross_entropy, class_weight: {rare: true}}", "(got True)"),
        ("{name: cross_entropy, class_weight: even}", "must be balanced or a mapping"),
        ("{name: cross_entropy, class_weight: {raer: 2}}", "'raer' is not a class of the data"),
    ],
)
def test_bad_class_weights_are_one_line(cli, tmp_path, loss, message):
    imbalanced(tmp_path)
    config = write_config(tmp_path, f"data: {{source: imbalanced.csv}}\nloss: {loss}\n")
    result = cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("block", [40, 300, 1 << 20])
def test_blocks_of_any_size_read_the_same_table(tmp_path, monkeypatch, block):
    """Block boundaries, long categories (past the first text width), blank lines, a block
    that needs the careful path: the table is the same, and line numbers stay right."""
    from mlpcli.data import files

    rng = np.random.default_rng(4)
    rows = [["c", "x", "y"]]
    for i in range(60):
        level = "word" * (1 + i % 9) if i % 10 else "a-much-longer-category-name-" * 3
        rows.append([level, "NA" if i == 33 else f"{rng.normal():.5f}", i % 2])
    path = write_rows(tmp_path / "t.csv", rows)
    text = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*text[:20], "\n", "   \n", *text[20:]]))
    monkeypatch.setattr(files, "BLOCK_CHARS", block)
    table = read_table(path, None, missing="mean")
    assert table.kinds == ["categorical", "numeric"]
    texts = [table.levels["c"][int(code)] for code in table.X[:, 0]]
    assert texts == [r[0] for r in rows[1:]]
    assert np.isnan(table.X[33, 1]) and np.isfinite(np.delete(table.X[:, 1], 33)).all()
    assert table.lines is not None and table.lines[18] == 20 and table.lines[19] == 23
