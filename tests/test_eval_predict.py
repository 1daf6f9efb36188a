"""`mlpcli eval` and `mlpcli predict`: metrics by hand, agreement with the run's own record,
and a checkpoint that is enough on its own (docs/eval.md)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.data import load_dataset
from mlpcli.evaluate import (
    averages,
    confusion_matrix,
    evaluate,
    per_class_scores,
    predict,
    regression_metrics,
)
from mlpcli.runs import train_run
from tests.helpers import ROOT, write_config

# ----------------------------------------------------------------------------- metrics by hand


def test_confusion_matrix_rows_are_true_columns_predicted():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 1])
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[1, 1, 0], [1, 2, 0], [0, 1, 0]]


def test_per_class_scores_and_averages_by_hand():
    # class 0: tp 1, predicted 2, actual 2 -> p 1/2, r 1/2, f1 1/2
    # class 1: tp 2, predicted 4, actual 3 -> p 1/2, r 2/3, f1 2*(1/2)(2/3)/(7/6) = 4/7
    # class 2: tp 0, predicted 0, actual 1 -> p 0 (no predictions: zero_division 0), r 0, f1 0
    # class 3: never true, never predicted: left out of the macro average
    counts = confusion_matrix(np.array([0, 0, 1, 1, 1, 2]), np.array([0, 1, 1, 1, 0, 1]), 4)
    s = per_class_scores(counts)
    assert s["precision"].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.0])
    assert s["recall"].tolist() == pytest.approx([0.5, 2 / 3, 0.0, 0.0])
    assert s["f1"].tolist() == pytest.approx([0.5, 4 / 7, 0.0, 0.0])
    assert s["support"].tolist() == [2, 3, 1, 0]
    avg = averages(s, counts)
    assert avg["macro_avg"]["precision"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert avg["macro_avg"]["f1"] == pytest.approx((0.5 + 4 / 7) / 3)
    assert avg["weighted_avg"]["recall"] == pytest.approx((2 * 0.5 + 3 * 2 / 3) / 6)
    assert avg["weighted_avg"]["f1"] == pytest.approx((2 * 0.5 + 3 * 4 / 7) / 6)
    assert avg["macro_avg"]["support"] == avg["weighted_avg"]["support"] == 6


def test_perfect_predictions_score_one():
    y = np.array([2, 0, 1, 1])
    s = per_class_scores(confusion_matrix(y, y, 3))
    assert s["precision"].tolist() == s["recall"].tolist() == s["f1"].tolist() == [1.0] * 3


def test_regression_metrics_by_hand():
    pred = np.array([[1.0], [2.0], [4.0]])
    y = np.array([[1.0], [3.0], [2.0]])  # residuals 0, -1, 2; mean of y is 2, ss_tot 2
    m = regression_metrics(pred, y)
    assert m["mse"] == pytest.approx(5 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 3))
    assert m["mae"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1 - 5 / 2)


def test_metrics_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    counts = confusion_matrix(y_true, y_pred, 4)
    assert counts.tolist() == metrics.confusion_matrix(y_true, y_pred).tolist()
    s, avg = per_class_scores(counts), averages(per_class_scores(counts), counts)
    p, r, f, _ = metrics.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    assert np.allclose(s["precision"], p) and np.allclose(s["recall"], r)
    assert np.allclose(s["f1"], f)
    for how in ("macro", "weighted"):
        expected = metrics.f1_score(y_true, y_pred, average=how, zero_division=0)
        assert avg[f"{how}_avg"]["f1"] == pytest.approx(expected)


# ----------------------------------------------------------------------------- trained runs


def _train(folder: Path, text: str) -> Path:
    run, result = train_run(load_config(write_config(folder, text)), folder / "runs", [])
    assert result.status in ("completed", "stopped_early")
    return run


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    """An iris run whose data file lives in its own folder, so a test can move it."""
    folder = tmp_path_factory.mktemp("iris")
    shutil.copy(ROOT / "datasets" / "iris.csv", folder / "iris.csv")
    shutil.copy(ROOT / "datasets" / "iris.classes.txt", folder / "iris.classes.txt")
    text = (ROOT / "configs" / "iris.yaml").read_text()
    text = text.replace("../datasets/iris.csv", str(folder / "iris.csv"))
    return _train(folder, text.replace("epochs: 200", "epochs: 60"))


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("diabetes")
    return _train(
        folder,
        "data: {source: diabetes}\nloss: mse\noptimizer: {name: adam, lr: 0.01}\n"
        "model: {hidden: [{units: 16}]}\ntraining: {epochs: 30}\n",
    )


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _split_csv(run: Path, split: str, path: Path, labels: str = "names") -> Path:
    """One split of the run's data as a raw CSV, the way a user would hand it over."""
    cfg = load_config(run / "config.yaml")
    data = load_dataset(cfg.data.model_copy(update={"standardize": False}), cfg.seed)
    part = data.parts[split]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*data.feature_names, data.target_name])
        for x, y in zip(part.X, part.y, strict=True):
            if data.task == "regression":
                target = repr(float(y[0]))
            else:
                target = data.class_names[int(y)] if labels == "names" else str(y)
            writer.writerow([*map(repr, x.tolist()), target])
    return path


@pytest.mark.parametrize("split", ["test", "val", "train"])
def test_eval_of_a_run_reproduces_its_recorded_metrics(iris_run, split):
    report = evaluate(iris_run, split=None if split == "test" else split)
    recorded = _summary(iris_run)["final"][split]
    assert report.checkpoint.endswith("best.npz") and split in report.data
    assert report.metrics["accuracy"] == recorded["accuracy"]
    # The same forward pass as the trainer's; a tolerance only guards against a future
    # change of summation order in the trainer's evaluation.
    assert report.metrics["loss"] == pytest.approx(recorded["loss"], rel=1e-6)
    assert sum(c["support"] for c in report.per_class) == report.rows
    assert np.trace(np.array(report.confusion)) / report.rows == report.metrics["accuracy"]


def test_eval_of_a_regression_run_reproduces_its_recorded_r2(diabetes_run):
    report = evaluate(diabetes_run)
    recorded = _summary(diabetes_run)["final"]["test"]
    assert report.metrics["r2"] == pytest.approx(recorded["r2"], rel=1e-6)
    assert report.metrics["loss"] == pytest.approx(recorded["loss"], rel=1e-6)
    assert report.metrics["loss"] == pytest.approx(report.metrics["mse"], rel=1e-5)  # loss: mse
    assert report.metrics["rmse"] == pytest.approx(np.sqrt(report.metrics["mse"]))


def test_eval_on_a_file_equals_eval_on_the_split(iris_run, tmp_path):
    by_split = evaluate(iris_run).to_dict()
    for labels in ("names", "codes"):  # class names, or the integer codes of iris.csv
        path = _split_csv(iris_run, "test", tmp_path / f"test-{labels}.csv", labels)
        by_file = evaluate(iris_run, data=path).to_dict()
        assert by_file["metrics"] == by_split["metrics"]
        assert by_file["confusion_matrix"] == by_split["confusion_matrix"]
        assert by_file["classes"] == by_split["classes"]


def test_predict_output_matches_eval(iris_run, tmp_path):
    path = _split_csv(iris_run, "test", tmp_path / "test.csv")
    report = evaluate(iris_run, data=path)
    labels = predict(iris_run, path).rows
    truth = [row[-1] for row in list(csv.reader(path.open()))[1:]]
    assert len(labels) == len(truth) == report.rows
    names = report.class_names
    counts = np.zeros((3, 3), dtype=int)
    for (label,), true in zip(labels, truth, strict=True):
        counts[names.index(true), names.index(label)] += 1
    assert counts.tolist() == report.confusion
    proba = predict(iris_run, path, proba=True)
    assert proba.header == names
    p = np.array(proba.rows, dtype=np.float64)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert [names[k] for k in p.argmax(axis=1)] == [label for (label,) in labels]


def test_predict_regression_gives_one_value_per_row(diabetes_run, tmp_path):
    path = _split_csv(diabetes_run, "test", tmp_path / "test.csv")
    out = predict(diabetes_run, path)
    assert out.header == ["target"]
    values = np.array([float(v) for (v,) in out.rows])
    truth = np.array([float(r[-1]) for r in list(csv.reader(path.open()))[1:]])
    r2 = 1 - ((values - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert r2 == pytest.approx(evaluate(diabetes_run, data=path).metrics["r2"], rel=1e-5)


def test_the_checkpoint_alone_is_enough_after_the_data_moved(cli, iris_run, tmp_path):
    source = iris_run.parent.parent / "iris.csv"
    moved = tmp_path / "elsewhere.csv"
    shutil.copy(source, moved)
    source.rename(source.with_suffix(".gone"))
    try:
        result = cli("eval", iris_run)
        assert result.exit_code == 2
        assert "data file not found" in result.stderr and "--data" in result.stderr
        result = cli("eval", iris_run / "checkpoints" / "best.npz", "--data", moved, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rows"] == 150
        result = cli("predict", iris_run, "--data", moved, "--out", tmp_path / "p.csv")
        assert result.exit_code == 0 and result.stdout == ""
        lines = (tmp_path / "p.csv").read_text().splitlines()
        assert lines[0] == "target" and len(lines) == 151 and lines[1] == "setosa"
    finally:
        source.with_suffix(".gone").rename(source)


def test_columns_are_matched_by_name_and_the_target_may_be_absent(cli, iris_run, tmp_path):
    rows = list(csv.reader((ROOT / "datasets" / "iris.csv").open()))
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="") as f:
        csv.writer(f).writerows([r[4], r[3], r[0], r[2], r[1]] for r in rows)
    features_only = tmp_path / "features.csv"
    with features_only.open("w", newline="") as f:
        csv.writer(f).writerows(r[:4] for r in rows)
    plain = cli("predict", iris_run, "--data", ROOT / "datasets" / "iris.csv").stdout
    assert cli("predict", iris_run, "--data", shuffled).stdout == plain
    assert cli("predict", iris_run, "--data", features_only).stdout == plain
    assert plain.splitlines()[0] == "target" and len(plain.splitlines()) == 151


def _bad_csv(tmp_path: Path, header: list[str], row: list[str]) -> Path:
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, row])
    return path


IRIS_HEADER = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]


@pytest.mark.parametrize(
    ("command", "header", "row", "expected"),
    [
        ("predict", IRIS_HEADER[:3], ["1", "2", "3"], "column 'petal_width_cm' not found"),
        ("predict", [*IRIS_HEADER[:3], "sepal_length_cm"], ["1"] * 4, "appears twice"),
        ("predict", IRIS_HEADER, ["1", "2", "x", "4"], "non-numeric value 'x'"),
        ("eval", IRIS_HEADER, ["1", "2", "3", "4"], "target column 'target' not found"),
        ("eval", [*IRIS_HEADER, "target"], ["1", "2", "3", "4", "tulip"], "bad.csv:2: class"),
        ("eval", [*IRIS_HEADER, "target"], ["1", "2", "3", "4", "7"], "class '7'"),
    ],
)
def test_bad_data_files_exit_2_with_one_line(
    cli, iris_run, tmp_path, command, header, row, expected
):
    path = _bad_csv(tmp_path, header, row)
    result = cli(command, iris_run, "--data", path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: "))
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["eval", "RUN", "--split", "holdout"], "--split holdout: choose one of"),
        (["eval", "RUN", "--split", "val", "--data", "x.csv"], "exclude each other"),
        (["eval", "nowhere.npz"], "checkpoint not found"),
        (["eval", "."], "not a run directory"),
        (["predict", "RUN", "--data", "missing.csv"], "data file not found"),
    ],
)
def test_bad_eval_and_predict_requests_exit_2(cli, iris_run, args, expected):
    result = cli(*[str(iris_run) if a == "RUN" else a for a in args])
    assert result.exit_code == 2
    assert expected in result.stderr and "Traceback" not in result.output


def test_proba_needs_a_classifier(cli, diabetes_run, tmp_path):
    path = _split_csv(diabetes_run, "test", tmp_path / "test.csv")
    result = cli("predict", diabetes_run, "--data", path, "--proba")
    assert result.exit_code == 2 and "--proba needs a classification model" in result.stderr


def test_eval_prints_tables_with_class_names_or_json_only(cli, iris_run, diabetes_run):
    result = cli("eval", iris_run)
    assert result.exit_code == 0
    for text in ("accuracy", "macro avg", "weighted avg", "confusion matrix", "virginica"):
        assert text in result.stdout
    as_json = cli("eval", iris_run, "--json")
    report = json.loads(as_json.stdout)  # nothing but JSON on stdout
    assert report["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert set(report) >= {"metrics", "classes", "macro_avg", "weighted_avg", "rows"}
    regression = json.loads(cli("eval", diabetes_run, "--json").stdout)
    assert set(regression["metrics"]) == {"loss", "mse", "rmse", "mae", "r2"}
    assert "confusion_matrix" not in regression
    shown = cli("eval", diabetes_run).stdout
    assert all(name in shown for name in ("MSE", "RMSE", "MAE", "R²"))


def test_binary_classification_with_one_sigmoid_unit(tmp_path):
    rows = list(csv.reader((ROOT / "datasets" / "iris.csv").open()))
    two = tmp_path / "two.csv"
    with two.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(rows[0])
        writer.writerows([*r[:4], ["no", "yes"][int(r[4]) - 1]] for r in rows[1:] if r[4] != "0")
    run = _train(
        tmp_path, f"data: {{source: {two}}}\nloss: binary_cross_entropy\ntraining: {{epochs: 20}}\n"
    )
    report = evaluate(run)
    assert report.class_names == ["no", "yes"]
    assert report.metrics["accuracy"] == _summary(run)["final"]["test"]["accuracy"]
    proba = predict(run, two, proba=True)
    assert proba.header == ["no", "yes"]
    p = np.array(proba.rows, dtype=np.float64)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    labels = [label for (label,) in predict(run, two).rows]
    assert labels == [["no", "yes"][k] for k in p.argmax(axis=1)]


def test_new_commands_have_help(cli):
    for args in (["eval"], ["predict"], ["train"]):
        result = cli(*args, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout
    assert "--resume" in cli("train", "--help").stdout
