"""Interrupt and resume: a run stopped (Ctrl-C) or killed anywhere, then resumed, ends
bit-identical to the same run never interrupted (docs/runs.md)."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from mlpcli.checkpoint import load_checkpoint
from mlpcli.config import load_config
from mlpcli.runs import AlreadyFinished, resume_run, train_run, truncate_metrics
from mlpcli.train import Callback, Trainer
from tests.helpers import ROOT, write_config

# Restart 1 stops early (epoch 10, best 7), restart 2 runs all 12 epochs; dropout, a plateau
# schedule and Adam give every kind of state a part: RNG, schedule, moments, patience.
CONFIG = """
data: {source: iris}
model: {hidden: [{units: 8, activation: tanh}], dropout: 0.1}
optimizer: {name: adam, lr: 0.1}
training:
  epochs: 12
  restarts: 2
  batch_size: 16
  early_stopping: {patience: 3}
  schedule: {name: plateau, patience: 1, factor: 0.5}
  checkpoint_every: EVERY
  checkpoint_seconds: 0
"""
BATCHES = 7  # ceil(105 training rows / 16)


def _config(tmp_path: Path, every: int = 1) -> Path:
    return write_config(tmp_path, CONFIG.replace("EVERY", str(every)), f"resume-{every}.yaml")


def _outcome(run: Path) -> dict:
    """Everything a finished run leaves that must not depend on interruptions."""
    rows = list(csv.DictReader((run / "metrics.csv").open(newline="")))
    for row in rows:
        row.pop("seconds")  # wall time
    summary = json.loads((run / "summary.json").read_text())
    arrays = {}
    for name in ("best", "last"):
        with np.load(run / "checkpoints" / f"{name}.npz", allow_pickle=False) as z:
            arrays.update({f"{name}:{k}": z[k] for k in z.files if k != "meta"})
    keep = ("status", "reason", "epochs_run", "best_restart", "best_epoch", "best_value")
    return {
        "rows": rows,
        "summary": {k: summary[k] for k in (*keep, "restarts", "final", "restart_spread")},
        "arrays": arrays,
    }


def _assert_identical(run: Path, reference: dict) -> None:
    got = _outcome(run)
    assert got["summary"] == reference["summary"]
    assert got["rows"] == reference["rows"]
    assert got["arrays"].keys() == reference["arrays"].keys()
    for key, value in reference["arrays"].items():
        assert np.array_equal(got["arrays"][key], value), key
        assert got["arrays"][key].dtype == value.dtype


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[int, dict]:
    """The uninterrupted runs, for checkpoint_every 1 and 3."""
    out = {}
    for every in (1, 3):
        folder = tmp_path_factory.mktemp(f"reference{every}")
        run, result = train_run(load_config(_config(folder, every)), folder / "runs", [])
        assert [(r.epochs_run, r.best_epoch) for r in result.restarts] == [(10, 7), (12, 10)]
        out[every] = _outcome(run)
    return out


class StopAt(Callback):
    """Sets the stop flag at (restart, epoch, batch), or at an epoch's end with batch 'end'."""

    def __init__(self, stop: threading.Event, where: tuple) -> None:
        self.stop, self.where = stop, where

    def on_batch_end(self, trainer: Trainer, batch: int, n_batches: int) -> None:
        if (trainer.restart, trainer.epoch, batch) == self.where:
            self.stop.set()

    def on_epoch_end(self, trainer: Trainer, record) -> None:
        if (trainer.restart, trainer.epoch, "end") == self.where:
            self.stop.set()


@pytest.mark.parametrize(
    ("every", "where"),
    [
        (3, (1, 1, 1)),  # before any checkpoint: resume starts over
        (1, (1, 3, 4)),  # mid-epoch
        (3, (1, 3, 4)),  # mid-epoch, the epoch before not in last.npz yet
        (3, (1, 5, "end")),  # between epochs
        (3, (1, 8, BATCHES)),  # after the last batch, before validation
        (1, (1, 10, "end")),  # the epoch that stops restart 1 early
        (3, (1, 10, "end")),
        (1, (2, 1, 2)),  # first epoch of the second restart
        (3, (2, 1, 2)),
        (3, (2, 7, 3)),
        (3, (2, 12, "end")),  # after the very last epoch: nothing left to stop
    ],
)
def test_stop_anywhere_then_resume_is_bit_identical(tmp_path, reference, every, where):
    stop = threading.Event()
    cfg = load_config(_config(tmp_path, every))
    run, result = train_run(cfg, tmp_path / "runs", [StopAt(stop, where)], stop=stop)
    summary = json.loads((run / "summary.json").read_text())
    if where == (2, 12, "end"):  # nothing left to stop: the run simply finishes
        assert result.status == summary["status"] == "stopped_early"
        return
    assert result.status == summary["status"] == "interrupted"
    assert "--resume" in summary["reason"]
    assert resume_run(run, []).status == "stopped_early"
    _assert_identical(run, reference[every])


def test_interrupted_twice_then_resumed(tmp_path, reference):
    cfg = load_config(_config(tmp_path, 3))
    stop = threading.Event()
    run, _ = train_run(cfg, tmp_path / "runs", [StopAt(stop, (1, 4, 2))], stop=stop)
    stop = threading.Event()
    assert resume_run(run, [StopAt(stop, (2, 2, 5))], stop=stop).status == "interrupted"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["last_checkpoint"] == {"restart": 2, "epoch": 1}
    resume_run(run, [])
    _assert_identical(run, reference[3])
    assert len(json.loads((run / "summary.json").read_text())["resumed"]) == 2


def test_last_checkpoint_carries_the_resume_state(tmp_path):
    cfg = load_config(_config(tmp_path))
    stop = threading.Event()
    run, _ = train_run(cfg, tmp_path / "runs", [StopAt(stop, (2, 3, 1))], stop=stop)
    ckpt = load_checkpoint(run / "checkpoints" / "last.npz")
    assert "resume.best_weights" in ckpt.arrays
    assert ckpt.meta["restart"] == 2 and ckpt.meta["epoch"] == 2
    resume = ckpt.meta["resume"]
    assert resume["finished"][0]["status"] == "stopped_early"
    assert resume["finished"][0]["epochs_run"] == 10
    assert {"restart_best", "restart_best_epoch", "wait", "best_value", "wall_seconds"} <= set(
        resume
    )


def test_resuming_a_finished_run_does_nothing(cli, tmp_path):
    config = _config(tmp_path)
    assert cli("train", config, "--runs-dir", "runs", "--quiet").exit_code == 0
    (run,) = (tmp_path / "runs").iterdir()
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    result = cli("train", "--resume", run)
    assert result.exit_code == 0
    assert "already finished (stopped_early)" in result.stdout
    assert before == {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    with pytest.raises(AlreadyFinished):
        resume_run(run, [])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--resume", "nowhere"], "not a run directory"),
        (["--resume", "."], "not a run directory"),
        ([], "Missing argument 'CONFIG'"),
        (["config.yaml", "--resume", "."], "not both"),
        (["--resume", ".", "--seed", "3"], "--resume continues a run exactly"),
    ],
)
def test_bad_resume_requests_exit_2(cli, tmp_path, args, expected):
    result = cli("train", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: "))


def test_resume_refuses_an_edited_config(cli, tmp_path):
    stop = threading.Event()
    cfg = load_config(_config(tmp_path))
    run, _ = train_run(cfg, tmp_path / "runs", [StopAt(stop, (1, 2, 1))], stop=stop)
    path = run / "config.yaml"
    path.write_text(path.read_text().replace("epochs: 12", "epochs: 13"))
    result = cli("train", "--resume", run)
    assert result.exit_code == 2 and "differs from the config in" in result.stderr


def test_truncate_metrics_keeps_rows_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.csv"
    rows = ["epoch,restart,train_loss", "1,1,0.5", "2,1,0.4", "3,1,0.3", "1,2,0.9", "2,2,0.8"]
    path.write_text("\r\n".join(rows) + "\r\n2,2,0.7")  # a torn last line
    truncate_metrics(path, (2, 1))
    assert path.read_bytes().decode().split("\r\n") == [*rows[:5], ""]
    truncate_metrics(path, (1, 2))
    assert path.read_bytes().decode().split("\r\n") == [*rows[:3], ""]
    truncate_metrics(path, (0, 0))
    assert path.read_bytes().decode() == rows[0] + "\r\n"


# ----------------------------------------------------------------------------- real signals

# Runs the real CLI in a child process; a callback sends the signal to the process itself at
# an exact batch, so the interrupt lands where the test wants it, with the real handler.
CHILD = """
import os, signal, sys
from mlpcli import cli, display
from mlpcli.train import Callback

restart, epoch, batch, signame, times = sys.argv[1:6]
where = (int(restart), int(epoch), batch if batch == "end" else int(batch))

class Signal(Callback):
    def on_batch_end(self, trainer, b, n):
        self.check((trainer.restart, trainer.epoch, b))

    def on_epoch_end(self, trainer, record):
        self.check((trainer.restart, trainer.epoch, "end"))

    def check(self, now):
        if now == where:
            for _ in range(int(times)):
                os.kill(os.getpid(), getattr(signal, signame))

display.progress_callback = lambda quiet: Signal()
sys.argv = ["mlpcli", *sys.argv[6:]]
cli.main()
"""


def _child(tmp_path: Path, where: tuple, signame: str, times: int, *args: str):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", CHILD, *map(str, where), signame, str(times), *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)


# A few interrupt points with real processes (the signal plumbing); the in-process tests
# above cover many more points of the state machine.
@pytest.mark.parametrize(
    ("every", "where"),
    [
        (3, (1, 9, "end")),  # between epochs, last.npz from the epoch before
        (1, (2, 2, 6)),  # mid-epoch in the second restart
        pytest.param(1, (1, 4, 3), marks=pytest.mark.slow),
    ],
)
def test_sigint_exits_130_and_resume_is_bit_identical(cli, tmp_path, reference, every, where):
    config = _config(tmp_path, every)
    done = _child(tmp_path, where, "SIGINT", 1, "train", str(config), "--runs-dir", "runs")
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert f"resume with: mlpcli train --resume {Path('runs') / run.name}" in done.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    resumed = cli("train", "--resume", run, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    _assert_identical(run, reference[every])


@pytest.mark.parametrize(
    ("every", "where"), [(3, (1, 5, 4)), pytest.param(1, (2, 3, "end"), marks=pytest.mark.slow)]
)
def test_sigkill_then_resume_is_bit_identical(cli, tmp_path, reference, every, where):
    config = _config(tmp_path, every)
    done = _child(tmp_path, where, "SIGKILL", 1, "train", str(config), "--runs-dir", "runs")
    assert done.returncode == -signal.SIGKILL
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    if every == 3:  # epochs 4 and 5 are in metrics.csv but not in last.npz
        assert load_checkpoint(run / "checkpoints" / "last.npz").meta["epoch"] == 3
        assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 4
    resumed = cli("train", "--resume", run, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    _assert_identical(run, reference[every])


def test_second_ctrl_c_exits_at_once_leaving_the_checkpoint_whole(cli, tmp_path, reference):
    config = _config(tmp_path, 1)
    done = _child(tmp_path, (1, 6, 2), "SIGINT", 2, "train", str(config), "--runs-dir", "runs")
    assert done.returncode == 130, done.stderr
    assert "stopped at once" in done.stderr and "Traceback" not in done.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert load_checkpoint(run / "checkpoints" / "last.npz").meta["epoch"] == 5
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    resumed = cli("train", "--resume", run, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    _assert_identical(run, reference[1])
