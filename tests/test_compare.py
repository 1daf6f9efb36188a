"""`mlpcli compare`: real tiny iris runs diffed, sorted and highlighted; damaged runs shown."""

import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from mlpcli.compare import compare_runs, flatten, read_run
from mlpcli.config import load_config
from mlpcli.display import sparkline
from mlpcli.errors import UserError
from mlpcli.runs import train_run
from tests.helpers import ROOT, write_config

TINY = f"""
name: tiny
data:
  source: {ROOT / "datasets" / "iris.csv"}
model:
  hidden: [{{units: 8, activation: tanh}}]
training:
  epochs: 6
  batch_size: 16
"""


def make_run(folder: Path, runs_dir: Path, *overrides: str, text: str = TINY) -> Path:
    cfg = load_config(write_config(folder, text), list(overrides))
    run_dir, _ = train_run(cfg, runs_dir, [])
    return run_dir


@pytest.fixture(scope="module")
def trio(tmp_path_factory) -> Path:
    """Three runs that differ in optimizer name and learning rate."""
    base = tmp_path_factory.mktemp("trio")
    for opt, lr in (("sgd", 0.01), ("adam", 0.01), ("momentum", 0.1)):
        make_run(base, base / "runs", f"optimizer.name={opt}", f"optimizer.lr={lr}", f"name={opt}")
    return base / "runs"


@pytest.fixture
def trio_copy(trio, tmp_path) -> Path:
    """A copy of the trio a test may damage."""
    return Path(shutil.copytree(trio, tmp_path / "runs"))


def only(runs: Path, prefix: str) -> Path:
    (path,) = [p for p in runs.iterdir() if p.name.startswith(prefix)]
    return path


def test_differing_keys_are_the_columns_and_the_rest_is_common(trio):
    c = compare_runs([trio])
    assert c.differing == ["optimizer.name", "optimizer.lr"]
    assert c.common["training.epochs"] == 6
    assert c.common["model.hidden.0.activation"] == "tanh"
    assert "name" not in c.common and "name" not in c.differing
    assert {row.params["optimizer.name"]: row.params["optimizer.lr"] for row in c.rows} == {
        "sgd": 0.01,
        "adam": 0.01,
        "momentum": 0.1,
    }


def test_default_sort_is_val_accuracy_best_first(trio):
    c = compare_runs([trio])
    assert c.sort == "val_accuracy"
    values = [row.stat("val_accuracy")[0] for row in c.rows]
    assert values == sorted(values, reverse=True)
    assert c.best is c.rows[0]


def test_sort_by_loss_config_key_and_name(trio):
    losses = [row.stat("val_loss")[0] for row in compare_runs([trio], sort="val_loss").rows]
    assert losses == sorted(losses) and len(set(losses)) == 3
    by_lr = compare_runs([trio], sort="optimizer.lr").rows
    assert [row.params["optimizer.lr"] for row in by_lr] == [0.01, 0.01, 0.1]
    by_name = compare_runs([trio], sort="name").rows
    assert [row.params["optimizer.name"] for row in by_name] == ["adam", "momentum", "sgd"]
    # the best run is the best on the metric, whatever the table is sorted by
    assert compare_runs([trio], sort="name").best is not None
    best = compare_runs([trio], sort="val_loss").best
    assert best is not None and best.stat("val_loss")[0] == min(losses)


def test_top_and_unknown_sort_key(trio):
    assert len(compare_runs([trio], top=2).rows) == 2
    with pytest.raises(
        UserError, match=r"--sort val_acuracy: not a column.*did you mean 'val_accuracy'"
    ):
        compare_runs([trio], sort="val_acuracy")


def test_table_highlights_the_best_run(cli, trio):
    result = cli("compare", trio)
    assert result.exit_code == 0, result.output
    c = compare_runs([trio])
    assert c.best is not None
    (starred,) = [line for line in result.stdout.splitlines() if "★" in line]
    assert c.best.label in starred
    assert f"best: {c.best.label}" in result.stdout
    assert "same in every run:" in result.stdout and "weight_decay=0" in result.stdout
    for row in c.rows:
        assert row.label in result.stdout


def test_json_schema_is_stable(cli, trio):
    result = cli("compare", trio, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {
        "schema",
        "sort",
        "metric",
        "tasks",
        "grouped",
        "best",
        "differing",
        "common",
        "notes",
        "rows",
    }
    assert (
        out["schema"] == 1 and out["sort"] == "val_accuracy" and out["tasks"] == ["classification"]
    )
    assert out["best"] == out["rows"][0]["name"]
    row = out["rows"][0]
    assert set(row) == {
        "name",
        "status",
        "params",
        "n_runs",
        "values",
        "std",
        "val_loss_curve",
        "runs",
    }
    assert {"epochs", "best_epoch", "time", "val_loss", "val_accuracy", "test_accuracy"} <= set(
        row["values"]
    )
    assert set(row["runs"][0]) == {
        "name",
        "path",
        "status",
        "reason",
        "task",
        "seed",
        "epochs_run",
        "best_epoch",
        "wall_seconds",
        "metrics",
        "problems",
    }
    assert len(row["val_loss_curve"]) == row["runs"][0]["epochs_run"]
    # same schema whatever the sort
    again = json.loads(cli("compare", trio, "--json", "--sort", "val_loss").stdout)
    assert set(again["rows"][0]["values"]) == set(row["values"])


def test_damaged_runs_show_their_status_not_a_traceback(cli, trio_copy):
    corrupt = only(trio_copy, "sgd")
    (corrupt / "summary.json").write_text('{"status": "compl', encoding="utf-8")
    (corrupt / "config.yaml").unlink()
    csv_text = (corrupt / "metrics.csv").read_text(encoding="utf-8")
    (corrupt / "metrics.csv").write_text(csv_text[: len(csv_text) - 40], encoding="utf-8")

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    for prefix, pid in (("adam", int(dead.stdout)), ("momentum", __import__("os").getpid())):
        path = only(trio_copy, prefix) / "summary.json"
        summary = json.loads(path.read_text())
        for key in ("final", "best_epoch", "epochs_run", "wall_seconds", "best_restart"):
            del summary[key]
        path.write_text(json.dumps({**summary, "status": "running", "pid": pid}))

    c = compare_runs([trio_copy])
    status = {row.runs[0].config.get("optimizer.name", "?"): row for row in c.rows}
    assert status["?"].status == "corrupt"
    assert status["adam"].status == "crashed"
    assert status["momentum"].status == "running"
    # what is readable still shows: the truncated file's complete rows, the running run's curve
    assert status["?"].stat("epochs")[0] == 5
    assert status["adam"].stat("val_accuracy")[0] is not None
    assert status["adam"].stat("test_accuracy")[0] is None
    assert c.rows[-1].status == "corrupt"  # failed runs sort last
    assert c.best is None  # no run finished
    assert any("config.yaml is missing" in n for n in c.notes)

    result = cli("compare", trio_copy)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    for word in ("corrupt", "crashed", "running"):
        assert word in result.stdout
    assert json.loads(cli("compare", trio_copy, "--json").stdout)["best"] is None


def test_empty_or_missing_folder_is_a_clear_error(cli, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    result = cli("compare", tmp_path / "empty")
    assert result.exit_code == 2
    assert "no run directories in it" in result.stderr
    assert "Traceback" not in result.output
    result = cli("compare", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "no such run directory" in result.stderr


def test_run_dirs_can_be_given_one_by_one(trio):
    dirs = sorted(trio.iterdir())[:2]
    c = compare_runs(dirs)
    assert len(c.rows) == 2
    assert {r.runs[0].path for r in c.rows} == {d.resolve() for d in dirs}


def test_seed_repeats_become_one_row_with_mean_and_std(tmp_path):
    for seed in (0, 1, 2):
        make_run(tmp_path, tmp_path / "runs", f"seed={seed}", "optimizer.lr=0.05")
    make_run(tmp_path, tmp_path / "runs", "optimizer.lr=0.001")
    c = compare_runs([tmp_path / "runs"])
    assert c.grouped and c.differing == ["optimizer.lr"]
    (group,) = [row for row in c.rows if len(row.runs) == 3]
    values = [r.metrics["val_loss"] for r in group.runs]
    mean, std = group.stat("val_loss")
    assert mean == pytest.approx(statistics.fmean(values))
    assert std == pytest.approx(statistics.stdev(values))
    assert len(compare_runs([tmp_path / "runs"], group=False).rows) == 4


def test_runs_of_different_tasks_compare_on_the_loss(tmp_path):
    make_run(tmp_path, tmp_path / "runs")
    regression = "data: {source: diabetes}\nloss: mse\ntraining: {epochs: 3}\n"
    make_run(tmp_path, tmp_path / "runs", text=regression)
    c = compare_runs([tmp_path / "runs"])
    assert c.tasks == ["classification", "regression"]
    assert c.metric == "loss" and c.sort == "val_loss"
    assert c.columns == ["val_loss", "test_loss"]
    assert any("different tasks" in n for n in c.notes)


def test_read_run_with_only_a_config(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 3\n", encoding="utf-8")
    run = read_run(tmp_path)
    assert run.status == "corrupt" and run.config == {"seed": 3}
    assert run.epochs_run is None and run.curves == {}


def test_sparkline():
    assert sparkline([3.0, 2.0, 1.0, 0.0]) == "█▆▃▁"
    assert sparkline([1.0, 1.0]) == "▄▄"
    assert sparkline([]) == ""
    assert sparkline([1.0, math.nan, 0.0]) == "█\u00d7▁"  # x marks a NaN/inf
    assert len(sparkline([float(i) for i in range(100)], width=10)) == 10


def test_flatten_uses_dotted_keys_like_set():
    nested = {"a": {"b": 1, "c": [{"u": 2}, {"u": 3}]}, "d": None, "e": {}}
    assert flatten(nested) == {"a.b": 1, "a.c.0.u": 2, "a.c.1.u": 3, "d": None, "e": {}}


def test_plot_is_written(cli, trio, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    result = cli("compare", trio, "--plot", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_plot_without_matplotlib_says_how_to_install(cli, trio, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = cli("compare", trio, "--plot", tmp_path / "curves.png")
    assert result.exit_code == 2
    assert 'pip install ".[plot]"' in result.stderr and "mlpcli[" not in result.stderr
    assert not (tmp_path / "curves.png").exists()
