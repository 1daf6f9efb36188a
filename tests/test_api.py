"""The Python API: train, load, compare; docs/api.md's worked example still prints what it says."""

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

import mlpcli
from mlpcli.status import RunStatus
from tests.helpers import ROOT

TINY = {
    "name": "tiny",
    "data": {"source": str(ROOT / "datasets" / "iris.csv")},
    "model": {"hidden": [{"units": 8, "activation": "tanh"}]},
    "training": {"epochs": 5, "batch_size": 16},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> mlpcli.Run:
    return mlpcli.train(TINY, runs_dir=tmp_path_factory.mktemp("api") / "runs")


def test_train_returns_a_run_with_its_directory_and_metrics(run):
    assert run.status == RunStatus.COMPLETED and run.epochs_run == 5
    assert (run.path / "summary.json").is_file() and run.path.name.startswith("tiny-")
    assert set(run.final) == {"train", "val", "test"}
    assert 0.0 <= run.metrics["test_accuracy"] <= 1.0
    assert run.history()["epoch"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    again = mlpcli.Run.open(run.path)
    assert again.status == run.status and again.final == run.final


def test_overrides_as_dict_or_list_and_the_callers_dict_untouched(tmp_path):
    config = {**TINY, "training": dict(TINY["training"])}
    a = mlpcli.train(config, {"training.epochs": 2, "optimizer.lr": 0.01}, runs_dir=tmp_path)
    b = mlpcli.train(config, ["training.epochs=2", "optimizer.lr=0.01"], runs_dir=tmp_path)
    assert a.epochs_run == b.epochs_run == 2 and a.config.optimizer.lr == 0.01
    assert a.final == b.final  # same seed, same config
    assert config["training"]["epochs"] == 5


def test_a_yaml_path_trains_too(tmp_path):
    run = mlpcli.train(ROOT / "configs" / "iris.yaml", {"training.epochs": 2}, tmp_path)
    assert run.status == RunStatus.COMPLETED and run.config.name == "iris-mlp"


def test_model_predicts_arrays_dicts_dataframes_and_files_alike(run):
    model = mlpcli.load(run.path)
    assert model.classes == ["setosa", "versicolor", "virginica"]
    assert model.feature_names == model.columns and len(model.columns) == 4
    csv = ROOT / "datasets" / "iris.csv"
    from_file = model.predict(csv)
    raw = np.loadtxt(csv, delimiter=",", skiprows=1)[:, :4]
    assert list(model.predict(raw)) == list(from_file)
    columns = {name: raw[:, j] for j, name in enumerate(model.columns)}
    assert list(model.predict(columns)) == list(from_file)
    proba = model.predict_proba(raw)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(np.array(model.classes)[proba.argmax(axis=1)]) == list(from_file)
    pd = pytest.importorskip("pandas")
    assert list(model.predict(pd.read_csv(csv))) == list(from_file)


def test_evaluate_on_a_file_and_on_the_runs_own_split(run):
    model = run.load()
    whole = model.evaluate(ROOT / "datasets" / "iris.csv")
    assert whole.rows == 150 and set(whole.metrics) == {"loss", "accuracy"}
    test = model.evaluate()
    assert test.metrics["accuracy"] == pytest.approx(run.metrics["test_accuracy"])


def test_categorical_columns_and_missing_cells_in_memory(tmp_path):
    run = mlpcli.train(ROOT / "configs" / "penguins.yaml", {"training.epochs": 3}, tmp_path)
    model = run.load()
    csv = ROOT / "datasets" / "penguins.csv"
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(csv, keep_default_na=False)  # "NA" stays text: mlpcli reads it missing
    assert list(model.predict(frame)) == list(model.predict(csv))
    np.testing.assert_allclose(model.predict_proba(frame), model.predict_proba(csv), atol=1e-6)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: m.predict(np.zeros((2, 3))), r"X has shape \(2, 3\); the model reads 4"),
        (lambda m: m.predict({"sepal_length_cm": [1.0]}), "column 'sepal_width_cm' is missing"),
        (lambda m: m.predict("nowhere.csv"), "nowhere.csv"),
        (
            lambda m: m.predict({c: ["x"] for c in m.columns}),
            "non-numeric value 'x' in column 'sepal_length_cm'",
        ),
    ],
)
def test_bad_input_is_a_user_error(run, call, message):
    with pytest.raises(mlpcli.UserError, match=message):
        call(run.load())


def test_config_errors_are_user_errors_naming_the_key(tmp_path):
    with pytest.raises(mlpcli.UserError, match=r"optimizer.lr: Input should be greater than 0"):
        mlpcli.train({**TINY, "optimizer": {"lr": -1}}, runs_dir=tmp_path)
    with pytest.raises(mlpcli.UserError, match="overrides: give a dict"):
        mlpcli.train(TINY, "optimizer.lr=0.1", runs_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(mlpcli.UserError, match="config file not found"):
        mlpcli.train(tmp_path / "missing.yaml", runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written for a refused config


def test_compare_takes_a_path_or_a_list(run):
    one = mlpcli.compare(run.path.parent)
    assert [row.label for row in one.rows] == ["tiny"] and one.best is not None
    assert mlpcli.compare([run.path]).to_json()["rows"][0]["name"] == run.path.name


def test_the_api_names_win_over_the_submodules_of_the_same_name():
    import mlpcli.compare
    import mlpcli.train

    assert callable(mlpcli.train) and mlpcli.train.__module__ == "mlpcli.api"
    assert callable(mlpcli.compare) and mlpcli.compare.__module__ == "mlpcli.api"
    from mlpcli.train import Trainer  # the module is still there

    assert Trainer.__module__ == "mlpcli.train"


def _doc_examples() -> list[tuple[str, str]]:
    """docs/api.md's ```python blocks, each with the ```text block after it."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    pairs = re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)
    assert len(pairs) >= 8
    return pairs


def test_docs_worked_example_prints_what_the_docs_show(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    for name in ("configs", "datasets"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for n, (code, expected) in enumerate(_doc_examples(), 1):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"docs/api.md block {n}", "exec"), namespace)
        assert out.getvalue() == expected, f"docs/api.md block {n}:\n{code}"
    assert Path("runs").is_dir()


def test_validate_builds_without_training(tmp_path):
    checked = mlpcli.api.validate(TINY)
    assert checked.sizes == [4, 8, 3] and checked.n_params == 4 * 8 + 8 + 8 * 3 + 3
    assert sum(checked.rows.values()) == 150 and checked.task == "classification"
    assert ("layers", "4 -> 8 -> 3") in checked.summary()


def test_a_stopped_run_resumes_to_the_same_result(tmp_path):
    import threading

    from mlpcli.train import Callback

    stop = threading.Event()

    class StopAfterTwo(Callback):
        def on_epoch_end(self, trainer, record):
            if record.epoch == 2:
                stop.set()

    config = {**TINY, "training": {**TINY["training"], "early_stopping": None}}
    stopped = mlpcli.train(config, runs_dir=tmp_path / "a", callbacks=[StopAfterTwo()], stop=stop)
    assert stopped.status == RunStatus.INTERRUPTED
    resumed = mlpcli.api.resume(stopped.path)
    whole = mlpcli.train(config, runs_dir=tmp_path / "b")
    assert resumed.status == whole.status == RunStatus.COMPLETED
    assert resumed.final == whole.final and resumed.epochs_run == 5
