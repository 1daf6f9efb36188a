"""Filesystem faults: a full disk mid-run and an unusable runs folder lose nothing."""

import errno
import json

import numpy as np

import mlpcli.checkpoint
from mlpcli.checkpoint import load_checkpoint
from tests.helpers import IRIS_MINIMAL, write_config


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(cli, tmp_path, monkeypatch):
    config = write_config(
        tmp_path,
        IRIS_MINIMAL + "training: {epochs: 10, early_stopping: null, checkpoint_seconds: 0}\n",
    )
    real_savez = np.savez
    calls = {"n": 0}

    def savez_then_full(file, **arrays):
        calls["n"] += 1
        if calls["n"] == 6:  # a few epochs in: write half a file, then the disk is full
            file.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(file, **arrays)

    monkeypatch.setattr(mlpcli.checkpoint.np, "savez", savez_then_full)
    result = cli("train", config, "--runs-dir", "runs")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert "Traceback" not in result.output
    (run,) = (tmp_path / "runs").iterdir()
    for name in ("last.npz", "best.npz"):
        assert load_checkpoint(run / "checkpoints" / name).meta["epoch"] >= 1
    assert not [p for p in (run / "checkpoints").iterdir() if p.suffix == ".tmp"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left" in summary["reason"]
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert all(len(r.split(",")) == len(header.split(",")) for r in rows)


def test_runs_dir_that_cannot_be_created(cli, tmp_path):
    config = write_config(tmp_path, IRIS_MINIMAL)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    result = cli("train", config, "--runs-dir", tmp_path / "blocker" / "runs")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "cannot create the runs folder" in result.stderr
    assert (tmp_path / "blocker").read_text() == "a file where a folder should be"
