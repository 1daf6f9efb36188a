"""SIGKILL at random moments: what a killed run leaves is readable and tells the truth."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlpcli.checkpoint import load_checkpoint
from tests.helpers import write_config

CONFIG = """
name: killed
data: {source: digits}
model: {hidden: [{units: 64}]}
training: {epochs: 400, early_stopping: null}
"""


def _start(tmp_path):
    config = write_config(tmp_path, CONFIG)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "train", str(config), "--runs-dir", "runs", "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_training(tmp_path, proc, timeout=60.0):
    """Until the first metrics row is flushed (the process is then inside the epoch loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("runs/*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            return found[0].parent
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.01)
    raise AssertionError("training did not start in time")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_moment_leaves_a_readable_run(tmp_path, cli, seed):
    proc = _start(tmp_path)
    try:
        run = _wait_for_training(tmp_path, proc)
        time.sleep(np.random.default_rng(seed).uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # metrics.csv: a header and complete rows, each parsing as numbers; a torn last line is
    # possible only if the kill cut a write, and readers skip it
    with (run / "metrics.csv").open(newline="") as f:
        header, *body = list(csv.reader(f))
    complete = [r for r in body if len(r) == len(header)]
    assert complete and len(body) - len(complete) <= 1
    assert all(len(r) == len(header) for r in body[:-1])
    assert np.isfinite(np.array(complete, dtype=float)).all()

    # the checkpoints load (written atomically: never half a file under the real name)
    for name in ("last.npz", "best.npz"):
        path = run / "checkpoints" / name
        assert path.exists()
        assert load_checkpoint(path).meta["epoch"] >= 1

    # summary.json still says running; compare reads the run and calls it crashed
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    result = cli("compare", str(tmp_path / "runs"), "--json")
    assert result.exit_code == 0, result.output
    assert "crashed" in result.stdout
