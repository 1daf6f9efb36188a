"""Narrow terminals: live progress and compare drop or shorten columns, never fold names."""

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from mlpcli import display
from mlpcli.compare import compare_runs
from mlpcli.config import load_config
from mlpcli.runs import train_run
from tests.helpers import ROOT, write_config

TINY = f"""
name: a-rather-long-experiment-name
data:
  source: {ROOT / "datasets" / "iris.csv"}
model:
  hidden: [{{units: 8, activation: tanh}}]
training:
  epochs: 4
  batch_size: 32
"""

METRICS = {"train_loss": 0.1234, "val_loss": 0.2345, "train_accuracy": 0.95, "val_accuracy": 0.9333}


class _Trainer:
    """The little of a Trainer that the progress bar reads."""

    class cfg:
        class training:
            restarts = 1
            epochs = 200


class _Record:
    epoch = 37
    metrics = METRICS


def _terminal(width: int) -> Console:
    return Console(width=width, file=io.StringIO(), force_terminal=True, color_system=None)


def _progress_lines(width: int) -> list[str]:
    console = _terminal(width)
    progress = display.RichProgress(console)
    progress.on_restart_start(_Trainer, 1)  # type: ignore[arg-type]
    progress.on_epoch_end(_Trainer, _Record)  # type: ignore[arg-type]
    progress.on_batch_end(_Trainer, 3, 4)  # type: ignore[arg-type]
    console.print(progress.progress.make_tasks_table(progress.progress.tasks))
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [80, 120])
def test_live_progress_keeps_label_bar_count_and_val_metrics(width):
    epochs, batches = _progress_lines(width)
    assert all(len(line) <= width for line in (epochs, batches))
    assert epochs.startswith("epochs ") and batches.startswith("batches ")
    assert "━" in epochs and "37/200" in epochs and "3/4" in batches
    assert "val_loss 0.2345" in epochs and "…" not in epochs
    if width >= 120:
        assert "train_loss 0.1234" in epochs and "train_acc 0.9500" in epochs


def test_live_metrics_drop_before_they_fold():
    assert display.live_metrics(METRICS, 200).startswith("train_loss 0.1234  val_loss")
    assert display.live_metrics(METRICS, 70) == (
        "train_loss 0.1234  val_loss 0.2345  train_acc 0.9500  val_acc 0.9333"
    )
    assert display.live_metrics(METRICS, 40) == "val_loss 0.2345 val_acc 0.9333"
    assert display.live_metrics(METRICS, 20) == "val_loss 0.2345"
    assert display.live_metrics({"train_loss": 0.5}, 20) == "train_loss 0.5000"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two schedules over seeds 0, 2 and 10."""
    base = tmp_path_factory.mktemp("narrow")
    config = write_config(base, TINY)
    for schedule in ("step", "cosine"):
        for seed in (0, 2, 10):
            cfg = load_config(
                config,
                [f"training.schedule.name={schedule}", f"seed={seed}", f"name=sched-{schedule}"],
            )
            train_run(cfg, base / "runs", [])
    return base / "runs"


def _shown(comparison, width: int) -> list[str]:
    console = _terminal(width)
    saved = display.stdout
    display.stdout = console
    try:
        display.show_comparison(comparison)
    finally:
        display.stdout = saved
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("per_run", [False, True])
def test_compare_fits_the_terminal_and_never_folds_a_name(runs, width, per_run):
    c = compare_runs([runs], group=not per_run)
    lines = _shown(c, width)
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    table = "\n".join(lines)
    for row in c.rows:  # every name whole, on one line
        assert re.search(rf"(^|\s){re.escape(row.label)}(\s|$)", table, re.M), row.label
    assert "…" not in table
    assert "acc" in table  # the primary metric always stays


def test_compare_at_120_columns_has_more_columns_than_at_80(runs):
    c = compare_runs([runs], group=False)
    narrow = display.compare_table(c, 80)
    wide = display.compare_table(c, 120)
    full = display.compare_table(c)
    assert len(narrow.columns) < len(wide.columns) <= len(full.columns)
    assert display.natural_width(narrow) <= 80 and display.natural_width(wide) <= 120


def test_seeds_are_listed_in_numeric_order(runs):
    (note,) = [n for n in compare_runs([runs]).notes if "differ only by seed" in n]
    assert "(0, 2, 10)" in note


def test_keys_of_another_schedule_kind_are_no_difference(runs):
    c = compare_runs([runs], group=False)
    assert [k for k in c.differing if k.startswith("training.schedule")] == [
        "training.schedule.name"
    ]
    assert "training.schedule.step_size" not in c.common


def test_same_in_every_run_shows_no_unset_keys(runs):
    text = "\n".join(_shown(compare_runs([runs]), 200))
    common = text.split("runs by")[0]
    assert "init_from" not in common and "=null" not in common
    assert "epochs=4" in common


def test_piped_datasets_keeps_paths_whole(cli, monkeypatch):
    result = cli("datasets")
    assert result.exit_code == 0
    sources = [line for line in result.stdout.splitlines() if "iris" in line]
    assert sources and "datasets/iris.csv" in sources[0]
    assert "…" not in result.stdout


def test_keys_that_cannot_fit_leave_the_table_and_are_named(tmp_path):
    """Two runs that differ in many keys: the table still fits 80 columns."""
    config = write_config(tmp_path, TINY)
    many = [
        "model.hidden.0.units=12", "model.hidden.0.activation=relu", "model.init=glorot",
        "optimizer.name=momentum", "optimizer.lr=0.05", "training.batch_size=16",
        "training.epochs=3", "data.missing=median", "name=another-long-experiment-name",
    ]  # fmt: skip
    train_run(load_config(config), tmp_path / "runs", [])
    train_run(load_config(config, many), tmp_path / "runs", [])
    c = compare_runs([tmp_path / "runs"], group=False)
    lines = _shown(c, 80)
    table = [line for line in lines if not line.lstrip().startswith("/")]  # the best run's path
    assert all(len(line) <= 80 for line in table), max(table, key=len)
    text = "\n".join(lines)
    assert "not shown at this width" in text and "a-rather-long-experiment-name" in text
    assert len(display.compare_table(c).columns) > len(display.compare_table(c, 80).columns)
