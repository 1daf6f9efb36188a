"""`mlpcli train --grid`: every combination runs, in worker processes, past failing ones."""

import json

import pytest

from mlpcli import grid
from mlpcli.errors import UserError
from tests.helpers import ROOT, write_config

TINY = f"""
name: tiny
data:
  source: {ROOT / "datasets" / "iris.csv"}
model:
  hidden: [{{units: 8}}]
training:
  epochs: 4
  batch_size: 16
"""


def test_parse_grid():
    assert grid.parse_grid(["optimizer.lr=0.1, 0.01", "optimizer.name=sgd"]) == {
        "optimizer.lr": ["0.1", "0.01"],
        "optimizer.name": ["sgd"],
    }
    for bad in ("optimizer.lr", "=1,2", "optimizer.lr=0.1,,0.2", "optimizer.lr=1,1"):
        with pytest.raises(UserError, match="--grid"):
            grid.parse_grid([bad])
    with pytest.raises(UserError, match="given twice"):
        grid.parse_grid(["seed=1", "seed=2"])


def test_point_names_say_the_values():
    assert (
        grid.point_name("", {"optimizer.name": "sgd", "optimizer.lr": "0.1"})
        == "optimizer-sgd_lr-0.1"
    )
    assert grid.point_name("", {"model.dropout": "0.1", "x.dropout": "0"}) == (
        "model.dropout-0.1_x.dropout-0"
    )
    assert grid.point_name("base", {"seed": "3"}) == "base_seed-3"
    assert grid.point_name("", {"model.hidden.0.activation": "a b/c"}) == "activation-a-b-c"


def test_grid_runs_every_combination_past_an_invalid_one(cli, tmp_path):
    config = write_config(tmp_path, TINY)
    result = cli(
        "train", config, "--runs-dir", tmp_path / "runs", "--jobs", "2",
        "--grid", "optimizer.name=sgd,bogus,adam", "--grid", "optimizer.lr=0.1,0.01",
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # some combinations failed
    assert "2 of 6 grid runs did not complete (invalid)" in result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 6
    assert sum("invalid" in line for line in progress) == 2

    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("tiny-grid-")
    runs = sorted(p.name.rsplit("-", 2)[0] for p in folder.iterdir() if p.is_dir())
    assert runs == [
        "optimizer-adam_lr-0.01",
        "optimizer-adam_lr-0.1",
        "optimizer-sgd_lr-0.01",
        "optimizer-sgd_lr-0.1",
    ]
    for run in folder.iterdir():
        if run.is_dir():
            summary = json.loads((run / "summary.json").read_text())
            assert summary["status"] in ("completed", "stopped_early")
    record = json.loads((folder / "grid.json").read_text())
    assert record["grid"] == {
        "optimizer.name": ["sgd", "bogus", "adam"],
        "optimizer.lr": ["0.1", "0.01"],
    }
    assert [r["status"] for r in record["runs"]].count("invalid") == 2
    # then the compare table of the grid, and the failures
    assert "runs by val_accuracy" in result.stdout
    assert "optimizer-bogus_lr-0.1" in result.stdout and "unknown optimizer" in result.stdout


def test_repeat_runs_seeds_and_compare_shows_mean_and_std(cli, tmp_path):
    config = write_config(tmp_path, TINY)
    result = cli(
        "train", config, "--runs-dir", tmp_path / "runs", "--jobs", "1", "--quiet",
        "--grid", "optimizer.lr=0.1,0.01", "--repeat", "2", "--seed", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # --quiet
    (folder,) = (tmp_path / "runs").iterdir()
    seeds = sorted(
        json.loads((p / "summary.json").read_text())["name"] for p in folder.iterdir() if p.is_dir()
    )
    assert seeds == ["lr-0.01_seed-5", "lr-0.01_seed-6", "lr-0.1_seed-5", "lr-0.1_seed-6"]
    assert "mean ± std over seeds" in result.stdout
    assert " ± " in result.stdout.split("mean ± std over seeds")[1]


def test_a_crashing_combination_does_not_stop_the_others(tmp_path, monkeypatch):
    import mlpcli.runs

    real = mlpcli.runs.train_run

    def flaky(cfg, runs_dir, callbacks, stop=None):
        if cfg.optimizer.lr == 0.1:
            raise RuntimeError("boom")
        return real(cfg, runs_dir, callbacks, stop)

    monkeypatch.setattr(mlpcli.runs, "train_run", flaky)
    config = write_config(tmp_path, TINY)
    plan = grid.plan_grid(config, [], {"optimizer.lr": ["0.1", "0.01"]}, 1, tmp_path / "runs")
    seen = []
    outcomes = grid.run_grid(plan, jobs=1, on_done=lambda o, done, total: seen.append(done))
    assert [o.status for o in outcomes] == ["error", "completed"]
    assert outcomes[0].message == "RuntimeError: boom"
    assert outcomes[1].run_dir is not None and outcomes[1].run_dir.is_dir()
    assert seen == [1, 2]


def test_bad_base_config_and_stray_jobs_are_input_errors(cli, tmp_path):
    config = write_config(tmp_path, TINY + "optimiser: {}\n")
    result = cli("train", config, "--grid", "optimizer.lr=0.1,0.01", "--runs-dir", tmp_path / "r")
    assert result.exit_code == 2 and "unknown key 'optimiser'" in result.stderr
    assert not (tmp_path / "r").exists()
    result = cli("train", write_config(tmp_path, TINY), "--jobs", "2")
    assert result.exit_code == 2 and "--jobs goes with --grid" in result.stderr
