"""Every way to stop `mlpcli train` from outside, with real processes and signals: SIGINT,
SIGTERM and SIGHUP stop after the batch with the checkpoint and metrics flushed, status
`interrupted`, exit 128 + the signal; `--resume` then ends bit-identical (issue 13)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_config

# iris for 400 epochs: about a second and a half, stopped early on in every test
CONFIG = """
name: sig
data: {source: iris}
model: {hidden: [{units: 8, activation: tanh}], dropout: 0.1}
optimizer: {name: adam, lr: 0.01}
training: {epochs: 400, batch_size: 8, early_stopping: null}
"""
RESULT_KEYS = {"epochs_run", "best_restart", "best_epoch", "best_value", "restarts", "final",
               "final_model", "wall_seconds", "finished", "status", "reason"}  # fmt: skip


def _mlpcli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mlpcli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_rows(folder: Path, proc: subprocess.Popen, rows: int = 3) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(folder.glob("runs/*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) > rows:
            return found[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("training did not start in time")


def _final_state(run: Path) -> dict:
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
    rows = list(csv.DictReader((run / "metrics.csv").open(newline="")))
    for row in rows:
        row.pop("seconds")
    summary = json.loads((run / "summary.json").read_text())
    return {"arrays": arrays, "rows": rows, "final": summary["final"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reference")
    write_config(folder, CONFIG)
    proc = _mlpcli("train", "config.yaml", "--runs-dir", "runs", "--quiet", cwd=folder)
    assert proc.wait(timeout=120) == 0, proc.communicate()
    (run,) = (folder / "runs").iterdir()
    return _final_state(run)


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
        signal.SIGTERM,
        pytest.param(signal.SIGHUP, marks=pytest.mark.slow),
    ],
)
def test_a_stop_signal_flushes_then_resume_is_bit_identical(tmp_path, reference, signum):
    write_config(tmp_path, CONFIG)
    proc = _mlpcli("train", "config.yaml", "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    run = _wait_for_rows(tmp_path, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    if signum != signal.SIGHUP:  # after a hangup the terminal is gone: nothing is printed
        assert f"resume with: mlpcli train --resume {Path('runs') / run.name}" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert set(summary) >= RESULT_KEYS  # the keys of a finished run, as of the checkpoint
    where = summary["last_checkpoint"]
    assert summary["epochs_run"] == where["epoch"] >= 3
    assert summary["final_model"]["checkpoint"] == "checkpoints/best.npz"
    assert summary["final"]["test"]["loss"] > 0
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as z:
        assert json.loads(str(z["meta"]))["epoch"] == where["epoch"]  # flushed at the stop

    resumed = _mlpcli("train", "--resume", str(run), "--quiet", cwd=tmp_path)
    assert resumed.wait(timeout=120) == 0, resumed.communicate()
    got = _final_state(run)
    assert got["rows"] == reference["rows"] and got["final"] == reference["final"]
    for key, value in reference["arrays"].items():
        assert np.array_equal(got["arrays"][key], value), key


def test_sigkill_between_checkpoint_writes_then_resume_is_bit_identical(tmp_path, reference):
    """Checkpoints are written every checkpoint_seconds (5), not every epoch: a kill loses
    the epochs since, and the resume redoes them exactly from last.npz's epoch."""
    write_config(tmp_path, CONFIG)
    proc = _mlpcli("train", "config.yaml", "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    run = _wait_for_rows(tmp_path, proc, rows=20)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    rows = len((run / "metrics.csv").read_text().splitlines()) - 1
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as z:
        epoch = json.loads(str(z["meta"]))["epoch"]
    assert 1 <= epoch < rows  # the first epoch's write, and the rows since not in it
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    resumed = _mlpcli("train", "--resume", str(run), "--quiet", cwd=tmp_path)
    assert resumed.wait(timeout=120) == 0, resumed.communicate()
    got = _final_state(run)
    assert got["rows"] == reference["rows"] and got["final"] == reference["final"]
    for key, value in reference["arrays"].items():
        assert np.array_equal(got["arrays"][key], value), key


@pytest.mark.slow
def test_a_second_signal_quits_at_once_and_says_interrupted(tmp_path):
    write_config(tmp_path, CONFIG.replace("epochs: 400", "epochs: 100000"))
    proc = _mlpcli("train", "config.yaml", "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    run = _wait_for_rows(tmp_path, proc)
    os.kill(proc.pid, signal.SIGSTOP)  # both signals land before it runs on
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


@pytest.mark.parametrize(
    "delay",
    [0.2, pytest.param(0.5, marks=pytest.mark.slow), pytest.param(0.8, marks=pytest.mark.slow)],
)
def test_ctrl_c_during_start_up_exits_130_quietly(tmp_path, delay):
    write_config(tmp_path, CONFIG.replace("iris", "digits"))
    proc = _mlpcli("train", "config.yaml", "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    time.sleep(delay)  # the imports, reading digits.csv, or the first epochs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # 130, or ended by the SIGINT itself (Python does so for a Ctrl-C in its own start-up):
    # a shell shows both as 130
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    for run in (tmp_path / "runs").glob("*"):  # a run dir only once training started
        assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
