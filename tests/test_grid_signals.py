"""Stopping a parallel grid from outside (issue 13): every worker stops after its batch,
nothing queued starts, no run is left `running`, grid.json is written, and
`train --resume GRID_DIR` finishes the grid."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import write_config

CONFIG = """
name: g
data: {source: iris}
model: {hidden: [{units: 8, activation: tanh}]}
optimizer: {name: adam}
training: {epochs: 300, batch_size: 8, early_stopping: null}
"""
GRID = ("--grid", "optimizer.lr=0.01,0.003,0.001,0.0003", "--jobs", "2")


def _start(tmp_path: Path) -> subprocess.Popen:
    write_config(tmp_path, CONFIG)
    return subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "train", "config.yaml", "--runs-dir", "runs", *GRID],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _wait_for_training(tmp_path: Path, proc: subprocess.Popen) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for metrics in tmp_path.glob("runs/*/*/metrics.csv"):
            if len(metrics.read_text().splitlines()) > 2:
                return metrics.parent.parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the grid did not start training in time")


def _check_interrupted(folder: Path, proc: subprocess.Popen, code: int) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"continue the grid with: mlpcli train --resume {Path('runs') / folder.name}" in err
    record = json.loads((folder / "grid.json").read_text())
    assert len(record["runs"]) == 4
    assert {r["status"] for r in record["runs"]} == {"interrupted"}
    started = [r for r in record["runs"] if r["run_dir"]]
    assert 1 <= len(started) <= 2  # two workers: nothing queued started
    for run in folder.iterdir():
        if run.is_dir():
            assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


@pytest.mark.slow  # spawns a grid and its workers twice: ~15 s on 2 busy cores
def test_sigterm_stops_the_whole_grid_and_resume_finishes_it(tmp_path):
    proc = _start(tmp_path)
    folder = _wait_for_training(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)  # to the grid process only: it passes it on
    _check_interrupted(folder, proc, 128 + signal.SIGTERM)

    resumed = subprocess.run(
        [sys.executable, "-m", "mlpcli", "train", "--resume", str(folder), "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((folder / "grid.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["completed"] * 4
    runs = [p for p in folder.iterdir() if p.is_dir()]
    assert len(runs) == 4  # the interrupted ones resumed in place, the rest trained
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["epochs_run"] == 300


@pytest.mark.slow
def test_ctrl_c_in_the_terminal_stops_every_worker(tmp_path):
    proc = _start(tmp_path)
    folder = _wait_for_training(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the grid and its workers
    _check_interrupted(folder, proc, 130)
