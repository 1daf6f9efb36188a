"""The API functions behind the CLI's other commands: the same results, the same errors."""

import io
import json
import threading

import pytest

import mlpcli
from mlpcli import api
from mlpcli.status import RunStatus
from tests.helpers import ROOT, write_config

IRIS = ROOT / "datasets" / "iris.csv"

TINY = f"""
name: tiny
data: {{source: {IRIS}}}
model: {{hidden: [{{units: 8, activation: tanh}}]}}
training: {{epochs: 3, batch_size: 16}}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return write_config(tmp_path_factory.mktemp("cfg"), TINY)


@pytest.fixture(scope="module")
def run(config, tmp_path_factory) -> mlpcli.Run:
    return mlpcli.train(config, runs_dir=tmp_path_factory.mktemp("runs"))


def test_evaluate_model_scores_a_split_or_a_file(run):
    test = api.evaluate_model(run.path)
    assert test.metrics["accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert api.evaluate_model(run.path, IRIS).rows == 150
    with pytest.raises(mlpcli.UserError, match="--split dev: choose one of"):
        api.evaluate_model(run.path, split="dev")


def test_evaluate_model_refuses_a_plot_over_its_input_before_scoring(run):
    checkpoint = run.load().path
    before = checkpoint.read_bytes()
    with pytest.raises(mlpcli.UserError, match="is an input of this command"):
        api.evaluate_model(checkpoint, plot=checkpoint)
    assert checkpoint.read_bytes() == before


def test_predict_file_gives_the_csv_and_writes_it_with_out(run, tmp_path):
    predictions = api.predict_file(run.path, IRIS, proba=True, label=True)
    assert predictions.header == ["setosa", "versicolor", "virginica", "target"]
    assert len(predictions.rows) == 150
    out = tmp_path / "p.csv"
    api.predict_file(run.path, IRIS, proba=True, label=True, out=out)
    shown = io.StringIO()
    predictions.write_csv(shown)
    assert out.read_text() == shown.getvalue()
    with pytest.raises(mlpcli.UserError, match="--label goes with --proba"):
        api.predict_file(run.path, IRIS, label=True)


def test_inspect_describes_the_columns_and_writes_a_starter_config(tmp_path):
    csv = ROOT / "datasets" / "penguins.csv"
    info = api.inspect(csv, target="species")
    assert info.target == "species" and "target: species" in info.config
    started = mlpcli.validate(write_config(tmp_path, info.config), [f"data.source={csv}"])
    assert started.task == "classification" and started.class_names is not None
    assert len(started.class_names) == 3


def test_grid_trains_every_combination_then_resume_grid_leaves_it_done(config, tmp_path):
    starts, done = [], []
    grid = api.grid(
        config,
        values={"optimizer.lr": [0.1, 0.01]},
        repeat=1,
        jobs=1,
        runs_dir=tmp_path,
        on_start=lambda plan, workers: starts.append((len(plan.points), workers)),
        on_done=lambda outcome, k, total: done.append((k, total)),
    )
    assert starts == [(2, 1)] and sorted(done) == [(1, 2), (2, 2)]
    assert not grid.stopped and not grid.failed and api.is_grid(grid.folder)
    comparison = grid.compare()
    assert comparison is not None and len(comparison.rows) == 2
    again = api.resume_grid(grid.folder, jobs=1)
    assert [o.status for o in again.outcomes] == [RunStatus.COMPLETED] * 2


def test_a_stopped_grid_says_so_and_starts_nothing(config, tmp_path):
    stop = threading.Event()
    stop.set()
    grid = api.grid(config, values=["optimizer.lr=0.1,0.01"], jobs=1, runs_dir=tmp_path, stop=stop)
    assert grid.stopped and len(grid.unfinished) == 2 and grid.compare() is None


def test_gradcheck_shows_its_plan_first_and_passes_on_iris(config):
    seen = []
    entries = []
    checked = api.gradcheck(
        config, rows=4, on_start=seen.append, on_entry=lambda: entries.append(1)
    )
    assert len(seen) == 1 and seen[0].total == len(entries) > 0
    assert checked.ok and checked.worst < checked.tolerance
    assert [c.name for c in checked.checks] == [p.name for p in seen[0].model.params]


def test_datasets_download_and_schema():
    assert "iris" in [d.name for d in api.datasets()]
    with pytest.raises(mlpcli.UserError, match="only mnist is downloaded"):
        api.download("iris")
    assert "optimizer" in json.dumps(api.schema())


def test_export_and_report_refuse_to_overwrite_a_run_file(run):
    summary = run.path / "summary.json"
    before = summary.read_bytes()
    with pytest.raises(mlpcli.UserError, match="would overwrite a file of the run directory"):
        api.export(run.path, summary)
    with pytest.raises(mlpcli.UserError, match="would overwrite a file of the run directory"):
        api.report(run.path, summary)
    assert summary.read_bytes() == before


def test_export_writes_an_onnx_file(run, tmp_path):
    pytest.importorskip("onnx")
    done = api.export(run.path, tmp_path / "m.onnx")
    assert done.path.is_file() and done.inputs == ["features"]


def test_report_writes_one_page(run, tmp_path):
    pytest.importorskip("plotly")
    written = api.report([run.path], tmp_path / "r.html")
    assert written.runs == 1 and "<html" in (tmp_path / "r.html").read_text()
