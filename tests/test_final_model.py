"""What each checkpoint holds (issue 13): last.npz the last epoch, best.npz the best epoch,
the final model the one `training.keep` names, against a textbook NumPy loop.

The validation rows carry the opposite labels of the training rows, so every epoch that
fits the training rows better makes the validation loss worse: epoch 1 is the best, epoch 3
the last, and a checkpoint holding the wrong one is far off the reference.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mlpcli.checkpoint import load_checkpoint
from mlpcli.config import load_config
from mlpcli.data import load_dataset
from mlpcli.evaluate import resolve_checkpoint
from mlpcli.runs import train_run
from tests.helpers import write_config

LR, BATCH, EPOCHS = 0.2, 16, 3


def _tables(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for name, n, flip in (("train", 48, False), ("val", 24, True), ("test", 24, False)):
        x = rng.normal(0, 1, (n, 2))
        label = (x[:, 0] + 0.5 * x[:, 1] > 0) ^ flip
        rows = [
            f"{a:.6f},{b:.6f},{'yes' if c else 'no'}" for (a, b), c in zip(x, label, strict=True)
        ]
        (folder / f"{name}.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")


def _config(folder: Path, keep: str, epochs: int = EPOCHS, init_from: str = "null") -> Path:
    text = f"""
name: keep-{keep}
data: {{train: train.csv, val: val.csv, test: test.csv}}
model: {{hidden: [{{units: 3, activation: tanh}}], init_from: {init_from}}}
optimizer: {{name: sgd, lr: {LR}}}
training:
  epochs: {epochs}
  batch_size: {BATCH}
  shuffle: false
  dtype: float64
  early_stopping: null
  keep: {keep}
"""
    return write_config(folder, text, f"{keep}-{epochs}.yaml")


def _softmax_ce(z, y):
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    onehot = np.eye(p.shape[1])[y]
    return -np.log(p[np.arange(len(y)), y]).mean(), (p - onehot) / len(y)


def _forward(w, x):
    h = np.tanh(x @ w["layers.0.weight"] + w["layers.0.bias"])
    return h, h @ w["layers.1.weight"] + w["layers.1.bias"]


def _textbook(w, x, y, epochs):
    """Mini-batch SGD by the book, batches in row order; the weights after each epoch."""
    w = {k: v.copy() for k, v in w.items()}
    after = []
    for _ in range(epochs):
        for start in range(0, len(x), BATCH):
            xb, yb = x[start : start + BATCH], y[start : start + BATCH]
            h, z = _forward(w, xb)
            _, dz = _softmax_ce(z, yb)
            dh = (dz @ w["layers.1.weight"].T) * (1 - h**2)
            grads = {
                "layers.1.weight": h.T @ dz,
                "layers.1.bias": dz.sum(axis=0),
                "layers.0.weight": xb.T @ dh,
                "layers.0.bias": dh.sum(axis=0),
            }
            w = {k: w[k] - LR * grads[k] for k in w}
        after.append({k: v.copy() for k, v in w.items()})
    return after


def _close(a, b) -> bool:
    return all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-14) for k in b)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keep")
    _tables(folder)
    start, _ = train_run(load_config(_config(folder, "last", 1)), folder / "start", [])
    init = start / "checkpoints" / "last.npz"
    out = {}
    for keep in ("last", "best"):
        cfg = load_config(_config(folder, keep, init_from=str(init)))
        out[keep], _ = train_run(cfg, folder / "runs", [])
    data = load_dataset(cfg.data, cfg.seed, dtype="float64")
    return out, load_checkpoint(init).weights(), data


def test_the_validation_loss_rises_so_best_and_last_differ(runs):
    _, init, data = runs
    after = _textbook(init, data.parts["train"].X, data.parts["train"].y, EPOCHS)
    val = [_softmax_ce(_forward(w, data.parts["val"].X)[1], data.parts["val"].y)[0] for w in after]
    assert val[0] < val[1] < val[2]
    assert not _close(after[0], after[2])


@pytest.mark.parametrize("keep", ["last", "best"])
def test_each_checkpoint_holds_its_epoch(runs, keep):
    out, init, data = runs
    run = out[keep]
    after = _textbook(init, data.parts["train"].X, data.parts["train"].y, EPOCHS)
    batches = math.ceil(len(data.parts["train"]) / BATCH)
    last = load_checkpoint(run / "checkpoints" / "last.npz")
    best = load_checkpoint(run / "checkpoints" / "best.npz")
    assert last.meta["epoch"] == 3 and _close(last.weights(), after[2])
    assert best.meta["epoch"] == 1 and _close(best.weights(), after[0])
    assert int(last.arrays["optimizer.t"]) == 3 * batches  # the optimizer's step count
    assert int(best.arrays["optimizer.t"]) == batches

    summary = json.loads((run / "summary.json").read_text())
    epoch = 3 if keep == "last" else 1
    assert summary["final_model"] == {
        "keep": keep,
        "checkpoint": f"checkpoints/{keep}.npz",
        "restart": 1,
        "epoch": epoch,
    }
    assert resolve_checkpoint(run) == run / "checkpoints" / f"{keep}.npz"
    test_loss = _softmax_ce(
        _forward(after[epoch - 1], data.parts["test"].X)[1], data.parts["test"].y
    )
    assert summary["final"]["test"]["loss"] == pytest.approx(test_loss[0], rel=1e-12)


def test_keep_changes_only_the_final_model(runs):
    """Both runs train alike: their checkpoints are the same, bit for bit."""
    out, _, _ = runs
    for name in ("last.npz", "best.npz"):
        a = load_checkpoint(out["last"] / "checkpoints" / name).arrays
        b = load_checkpoint(out["best"] / "checkpoints" / name).arrays
        assert a.keys() == b.keys()
        for key in a:
            if key != "meta":
                assert np.array_equal(a[key], b[key]) and a[key].dtype == b[key].dtype, key


def test_eval_of_the_run_dir_scores_the_final_model(runs, cli):
    out, _, _ = runs
    for keep in ("last", "best"):
        summary = json.loads((out[keep] / "summary.json").read_text())
        result = cli("eval", out[keep], "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["checkpoint"].endswith(f"checkpoints/{keep}.npz")
        assert report["metrics"]["loss"] == pytest.approx(
            summary["final"]["test"]["loss"], rel=1e-9
        )
