"""A run's status never lies after a failure (issue 13, class 2): a resume that cannot go on
changes nothing, and a failure once training ran says `failed` with the reason."""

import errno
import json
import shutil
import threading

import numpy as np
import pytest

import mlpcli.writes
from mlpcli.config import load_config
from mlpcli.runs import train_run
from mlpcli.train import Callback, Trainer
from tests.helpers import write_config

CONFIG = """
data: {source: iris}
model: {hidden: [{units: 4}]}
training: {epochs: 8, batch_size: 16, checkpoint_seconds: 0}
"""


class StopAt(Callback):
    def __init__(self, stop: threading.Event, epoch: int) -> None:
        self.stop, self.epoch = stop, epoch

    def on_batch_end(self, trainer: Trainer, batch: int, n_batches: int) -> None:
        if trainer.epoch == self.epoch and batch == 2:
            self.stop.set()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupted")
    stop = threading.Event()
    cfg = load_config(write_config(folder, CONFIG))
    run, result = train_run(cfg, folder / "runs", [StopAt(stop, 4)], stop=stop)
    assert result.status == "interrupted"
    return run


@pytest.fixture
def run(interrupted, tmp_path):
    return shutil.copytree(interrupted, tmp_path / interrupted.name)


def _files(run):
    return {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def _one_line(result, *expected):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and len(lines) <= 2, result.stderr
    assert "Traceback" not in result.output
    for text in expected:
        assert text in lines[0], (text, lines[0])


def _rewrite_last(run, change):
    path = run / "checkpoints" / "last.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    change(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_resume_without_checkpoints_changes_nothing(cli, run):
    shutil.rmtree(run / "checkpoints")
    before = _files(run)
    _one_line(cli("train", "--resume", run), "checkpoints: missing or not a folder")
    assert _files(run) == before  # summary.json still says interrupted


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda a, m: a.update({"optimizer.t": np.array(-3)}), "'optimizer.t' is not a step count"),
        (
            lambda a, m: a.update({"optimizer.t": np.array(2.5)}),
            "'optimizer.t' is not a step count",
        ),
        (
            lambda a, m: a.update(
                {"optimizer.layers.0.weight.exp_avg": a["optimizer.params.exp_avg"]}
            ),
            "is not a buffer of this run's optimizer",
        ),
        (
            lambda a, m: a.pop("optimizer.params.exp_avg_sq"),
            "missing 'optimizer.params.exp_avg_sq'",
        ),
        (
            lambda a, m: a.update({"optimizer.params.exp_avg": a["optimizer.params.exp_avg"][:5]}),
            "'optimizer.params.exp_avg' has shape (5,)",
        ),
        (lambda a, m: m.update({"schedule_state": "fast"}), "schedule_state"),
        (lambda a, m: m["resume"].update({"finished": [{"restart": 1}]}), "resume.finished"),
        (lambda a, m: m["resume"].update({"best_epoch": True}), "resume.best_epoch"),
        (lambda a, m: m.update({"rng_state": {"state": 1}}), "rng_state"),
        (lambda a, m: m["config"]["optimizer"].update({"lr": 0.5}), "differs from the config"),
    ],
)
def test_resume_of_a_crafted_last_checkpoint_changes_nothing(cli, run, change, expected):
    _rewrite_last(run, change)
    before = _files(run)
    _one_line(cli("train", "--resume", run), expected)
    assert _files(run) == before


def test_disk_full_at_the_start_of_a_resume_keeps_the_status(cli, run, monkeypatch):
    def full(path, write, durable=True):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(mlpcli.writes, "replace_atomically", full)
    before = _files(run)
    _one_line(cli("train", "--resume", run), "No space left on device")
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert _files(run) == before


def test_bad_input_found_once_training_ran_says_failed(cli, tmp_path, monkeypatch):
    real = Trainer._run_epoch

    def epoch_then_bad(self, restart, epoch):
        if epoch == 3:
            from mlpcli.errors import UserError

            raise UserError("data.csv:7: a value found only now")
        return real(self, restart, epoch)

    monkeypatch.setattr(Trainer, "_run_epoch", epoch_then_bad)
    config = write_config(tmp_path, CONFIG)
    _one_line(cli("train", config, "--runs-dir", "runs", "--quiet"), "data.csv:7")
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "data.csv:7" in summary["reason"]


def test_a_second_ctrl_c_leaves_interrupted_not_running(cli, tmp_path, monkeypatch):
    real = Trainer._run_epoch

    def quit_at_once(self, restart, epoch):
        if epoch == 3:
            raise KeyboardInterrupt  # what the second Ctrl-C's handler raises
        return real(self, restart, epoch)

    monkeypatch.setattr(Trainer, "_run_epoch", quit_at_once)
    result = cli("train", write_config(tmp_path, CONFIG), "--runs-dir", "runs", "--quiet")
    assert result.exit_code == 130 and "Traceback" not in result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
