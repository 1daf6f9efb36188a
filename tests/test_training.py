"""The training loop: early stopping, restarts, determinism, divergence, warm starts."""

import csv
import json

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.data import load_dataset
from mlpcli.train import EpochRecord, Trainer
from tests.helpers import IRIS_MINIMAL, ROOT, write_config


def _trainer(tmp_path, extra: str, source: str = IRIS_MINIMAL) -> Trainer:
    cfg = load_config(write_config(tmp_path, source + extra))
    return Trainer(cfg, load_dataset(cfg.data, cfg.seed))


def _scripted(trainer: Trainer, values: list[float]) -> list[int]:
    """Replace the epoch with a scripted val_loss sequence; returns epochs that ran."""
    seen = []

    def fake_epoch(restart: int, epoch: int) -> EpochRecord:
        seen.append(epoch)
        metrics = {"train_loss": 1.0, "val_loss": values[epoch - 1]}
        return EpochRecord(restart, epoch, metrics, 0.1, 0.0, {}, is_best=False)

    trainer._run_epoch = fake_epoch  # type: ignore[method-assign]
    return seen


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    trainer = _trainer(
        tmp_path, "training: {epochs: 20, early_stopping: {patience: 3, min_delta: 0.05}}\n"
    )
    # best 0.5 at epoch 3; 0.48 is not better by more than min_delta 0.05
    seen = _scripted(trainer, [1.0, 0.7, 0.5, 0.48, 0.6, 0.49, 0.1, 0.1] + [0.1] * 12)
    result = trainer.run()
    assert seen == [1, 2, 3, 4, 5, 6]
    assert result.status == "stopped_early"
    assert result.best_epoch == 3 and result.best_value == 0.5
    assert "did not improve" in result.reason and "epoch 3" in result.reason


def test_without_early_stopping_all_epochs_run(tmp_path):
    trainer = _trainer(tmp_path, "training: {epochs: 6, early_stopping: null}\n")
    seen = _scripted(trainer, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    result = trainer.run()
    assert seen == [1, 2, 3, 4, 5, 6] and result.status == "completed"
    assert result.best_epoch == 1


def test_restore_best_puts_back_the_best_weights(tmp_path):
    trainer = _trainer(tmp_path, "training: {epochs: 30, early_stopping: {patience: 3}}\n")
    result = trainer.run()
    best = trainer.evaluate("val")["loss"]
    assert best == pytest.approx(result.best_value, rel=1e-6)


def test_restarts_keep_the_best_and_report_the_spread(tmp_path):
    trainer = _trainer(
        tmp_path,
        "training: {epochs: 8, restarts: 3, early_stopping: null}\noptimizer: {lr: 0.003}\n",
    )
    result = trainer.run()
    values = [r.best_value for r in result.restarts]
    assert len(values) == 3 and len(set(values)) == 3  # different initialisations
    assert result.best_value == min(values)
    assert result.best_restart == values.index(min(values)) + 1
    assert result.spread["best"] == min(values) and result.spread["worst"] == max(values)
    assert trainer.evaluate("val")["loss"] == pytest.approx(min(values), rel=1e-6)


def _run_and_read(cli, config, *args):
    result = cli("train", config, "--runs-dir", "runs", "--quiet", *args)
    assert result.exit_code == 0, result.output
    runs = sorted((config.parent / "runs").iterdir())
    run = runs[-1]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    for row in rows:
        row.pop("seconds")
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
    return rows, arrays


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_runs(cli, tmp_path, dtype):
    config = write_config(
        tmp_path,
        IRIS_MINIMAL
        + f"model: {{dropout: 0.2}}\ntraining: {{epochs: 5, restarts: 2, dtype: {dtype}}}\n",
    )
    rows1, arrays1 = _run_and_read(cli, config)
    rows2, arrays2 = _run_and_read(cli, config)
    assert rows1 == rows2
    assert arrays1.keys() == arrays2.keys()
    assert all(np.array_equal(arrays1[k], arrays2[k]) for k in arrays1)
    assert arrays1["layers.0.weight"].dtype == np.dtype(dtype)
    rows3, arrays3 = _run_and_read(cli, config, "--seed", "1")
    assert rows3 != rows1
    assert not np.array_equal(arrays3["layers.0.weight"], arrays1["layers.0.weight"])


def test_divergence_exits_1_and_says_why(cli, tmp_path):
    config = write_config(
        tmp_path,
        f"data: {{source: {ROOT / 'datasets' / 'diabetes.csv'}, standardize: false}}\nloss: mse\n"
        "optimizer: {name: sgd, lr: 1.0}\ntraining: {epochs: 5}\n",
    )
    result = cli("train", config, "--runs-dir", "runs")
    assert result.exit_code == 1
    assert "diverged" in result.stderr and "lower learning rate" in result.stderr
    assert "Traceback" not in result.output
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and "epoch 1" in summary["reason"]


def test_regression_on_diabetes_learns_something(cli, tmp_path):
    config = write_config(
        tmp_path,
        "data: {source: diabetes}\nloss: mse\nmodel: {hidden: [{units: 16, activation: relu}]}\n"
        "optimizer: {name: adam, lr: 0.01}\ntraining: {epochs: 60}\n",
    )
    result = cli("train", config, "--runs-dir", "runs", "--quiet")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["test"]["r2"] > 0.3
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train_r2" in header and "val_r2" in header


def test_init_from_starts_from_a_checkpoint(cli, tmp_path):
    base = write_config(tmp_path, IRIS_MINIMAL + "training: {epochs: 20}\n", "base.yaml")
    assert cli("train", base, "--runs-dir", "runs", "--quiet").exit_code == 0
    (run,) = (tmp_path / "runs").iterdir()
    ckpt = run / "checkpoints" / "best.npz"
    warm = write_config(
        tmp_path,
        IRIS_MINIMAL + f"model: {{init_from: {ckpt}}}\ntraining: {{epochs: 1}}\n",
        "warm.yaml",
    )
    cfg = load_config(warm)
    from mlpcli.checkpoint import load_checkpoint

    trainer = Trainer(
        cfg, load_dataset(cfg.data, cfg.seed), init_weights=load_checkpoint(ckpt).weights()
    )
    trainer._fresh_start()
    with np.load(ckpt, allow_pickle=False) as z:
        assert np.array_equal(trainer.model.params[0].value, z["layers.0.weight"])

    wrong = write_config(
        tmp_path,
        IRIS_MINIMAL + f"model: {{init_from: {ckpt}, hidden: [{{units: 7}}]}}\n",
        "wrong.yaml",
    )
    result = cli("train", wrong, "--runs-dir", "runs2")
    assert result.exit_code == 2
    assert "model.init_from: 'layers.0.weight' has shape (4, 32)" in result.stderr
    assert not (tmp_path / "runs2").exists() or not list((tmp_path / "runs2").iterdir())


def test_clip_grad_norm_bounds_the_step(tmp_path):
    trainer = _trainer(
        tmp_path, "training: {clip_grad_norm: 0.01}\noptimizer: {name: sgd, lr: 1.0}\n"
    )
    trainer._fresh_start()
    before = trainer.model.flat.value.copy()
    X, y = trainer.X["train"][:16], trainer.y["train"][:16]
    trainer._step(X, y)
    step = np.linalg.norm(trainer.model.flat.value - before)
    assert step == pytest.approx(0.01, rel=1e-3)  # lr 1 * clipped gradient of norm 0.01


def test_binary_cross_entropy_needs_two_classes(tmp_path):
    from mlpcli.errors import UserError

    with pytest.raises(UserError, match="exactly 2 classes"):
        _trainer(tmp_path, "loss: binary_cross_entropy\n")
