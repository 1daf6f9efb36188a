"""`mlpcli tune` killed or stopped mid-trial: the study stays true and the next start goes on."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, write_config

pytest.importorskip("optuna", reason="mlpcli tune needs the 'tune' extra (optuna)")

CONFIG = f"""
name: stopped
data: {{source: {ROOT / "datasets" / "iris.csv"}}}
model: {{hidden: [{{units: 8}}]}}
training: {{epochs: 3, batch_size: 32, early_stopping: null}}
tune:
  trials: 2
  pruner: none
  space: {{optimizer.lr: {{low: 1.0e-3, high: 0.1, log: true}}}}
"""


def _start(tmp_path, *args):
    config = write_config(tmp_path, CONFIG)
    return subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "tune", str(config), "--quiet", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_a_trial_in_training(tmp_path, proc, timeout=60.0):
    """Until a trial's run has flushed its first epochs (the trial is then RUNNING)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("runs/stopped/trial-*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) >= 3:
            return found[0].parent
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.02)
    raise AssertionError("no trial started training in time")


def _trials(tmp_path):
    return json.loads((tmp_path / "runs" / "stopped" / "tune.json").read_text())["trials"]


@pytest.mark.slow
def test_a_sigkilled_trial_is_failed_on_the_next_start_and_not_counted(tmp_path):
    proc = _start(tmp_path, "--set", "training.epochs=100000")
    try:
        run = _wait_for_a_trial_in_training(tmp_path, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert json.loads((run / "summary.json").read_text())["status"] == "running"

    again = subprocess.run(
        [sys.executable, "-m", "mlpcli", "tune", str(tmp_path / "config.yaml"), "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    trials = _trials(tmp_path)
    assert [t["number"] for t in trials] == [0, 1, 2]
    assert (trials[0]["state"], trials[0]["status"]) == ("failed", "crashed")
    assert trials[0]["run_dir"] == run.name
    # --trials counts finished trials: the killed one is made up for
    assert [t["state"] for t in trials[1:]] == ["complete", "complete"]


@pytest.mark.parametrize(
    ("signum", "code", "jobs"),
    [
        (signal.SIGINT, 130, "1"),
        pytest.param(signal.SIGTERM, 143, "1", marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, 143, "2", marks=pytest.mark.slow),
    ],
    ids=["ctrl-c", "sigterm", "sigterm-2-workers"],
)
def test_a_signal_stops_after_the_batch_and_marks_the_trial(tmp_path, signum, code, jobs):
    proc = _start(tmp_path, "--set", "training.epochs=100000", "--jobs", jobs)
    try:
        run = _wait_for_a_trial_in_training(tmp_path, proc)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr.decode()
    assert "interrupted" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    trials = _trials(tmp_path)
    assert trials and all(t["state"] == "failed" for t in trials), trials
    assert all(t["status"] == "interrupted" for t in trials)
    # the run itself was stopped cleanly: checkpoint and metrics flushed
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert (run / "checkpoints" / "last.npz").is_file()
