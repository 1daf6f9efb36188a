"""Real MNIST end to end: `mlpcli train configs/mnist.yaml` against the same recipe in PyTorch.

    pip install -e ".[bench]"          # PyTorch (pinned), for the peer
    python benchmarks/mnist_torch.py                 # both, the whole recipe (40 epochs)
    python benchmarks/mnist_torch.py --epochs 2      # a smoke run

Both run as a user runs them, each in its own process, one after the other, timed from
start to exit by the wall clock: start-up, reading datasets/mnist.npz, training, the
validation pass of every epoch and the final test evaluation are all in the time (and, for
mlpcli, its run directory with a checkpoint every epoch). The PyTorch side is the script a
PyTorch user would write for the recipe of configs/mnist.yaml:

- 784-1024-1024-10, ReLU, dropout 0.3 after each hidden layer, PyTorch's default init;
- global standardisation (one mean and one std over the training pixels), 5% of the
  training images held out for validation, MNIST's own 10000 test images;
- CrossEntropyLoss(label_smoothing=0.1), torch.optim.Adam(lr=1e-3), CosineAnnealingLR over
  40 epochs, batches of 128 from a shuffling DataLoader over a TensorDataset;
- validation accuracy after every epoch, the best epoch's weights kept (as mlpcli's
  `keep: best`) and evaluated on the test images at the end.

The machine is shared and noisy: the table gives the load average before and after each
contender, and a claim needs several runs of this script.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "mnist.yaml"
MNIST = ROOT / "datasets" / "mnist.npz"


def torch_recipe(epochs: int, seed: int) -> dict[str, float]:
    """The recipe of configs/mnist.yaml, written as a PyTorch user would."""
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    with np.load(MNIST) as z:
        x_all, y_all = z["x_train"].reshape(-1, 784), z["y_train"].astype(np.int64)
        x_test, y_test = z["x_test"].reshape(-1, 784), z["y_test"].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x_all))
    n_val = round(0.05 * len(x_all))
    val_idx, train_idx = order[:n_val], order[n_val:]
    mean, std = x_all[train_idx].mean(dtype=np.float64), x_all[train_idx].std(dtype=np.float64)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - mean) / std).astype(np.float32))

    x_train, x_val, x_t = tensor(x_all[train_idx]), tensor(x_all[val_idx]), tensor(x_test)
    y_train, y_val, y_t = (torch.from_numpy(a) for a in (y_all[train_idx], y_all[val_idx], y_test))
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=128, shuffle=True)

    model = nn.Sequential(
        nn.Linear(784, 1024), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(1024, 10),
    )  # fmt: skip
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)

    def accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        with torch.no_grad():
            right = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in
                        zip(x.split(2048), y.split(2048), strict=True))  # fmt: skip
        model.train()
        return right / len(y)

    best, best_state = -1.0, None
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        schedule.step()
        val = accuracy(x_val, y_val)
        if val > best:
            best, best_state = val, copy.deepcopy(model.state_dict())
    assert best_state is not None
    model.load_state_dict(best_state)
    return {"val_accuracy": best, "test_accuracy": accuracy(x_t, y_t)}


def load() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def run_mlpcli(epochs: int, seed: int, runs: Path) -> tuple[float, dict[str, float]]:
    script = Path(sys.executable).parent / "mlpcli"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mlpcli"]
    cmd += ["train", str(CONFIG), "--runs-dir", str(runs), "--quiet", "--seed", str(seed)]
    cmd += ["--set", f"training.epochs={epochs}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    summary = json.loads(next(runs.glob("*/summary.json")).read_text())
    final = summary["final"]
    return seconds, {
        "val_accuracy": final["val"]["accuracy"],
        "test_accuracy": final["test"]["accuracy"],
    }


def run_torch(epochs: int, seed: int) -> tuple[float, dict[str, float]]:
    cmd = [sys.executable, __file__, "--torch-only", "--epochs", str(epochs), "--seed", str(seed)]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, json.loads(out.strip().splitlines()[-1])


def machine() -> str:
    """The CPU model as lscpu names it, the BLAS NumPy runs, and which engine path ran."""
    cpu = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    sys.path.insert(0, str(ROOT))
    import torch

    from benchmarks.bench import blas_description

    return (
        f"{cpu}, {os.cpu_count()} cores; {blas_description(1_900_000)}; torch {torch.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40, help="40 is the recipe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_only:
        print(json.dumps(torch_recipe(args.epochs, args.seed)))
        return

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    print(f"real MNIST, configs/mnist.yaml, {args.epochs} epochs, seed {args.seed}; {stamp}")
    print(machine())
    print()
    print("| contender | wall s | ÷ mlpcli | val accuracy | test accuracy | load before -> after |")
    print("|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before = load()
        seconds, acc = run_mlpcli(args.epochs, args.seed, Path(tmp))
        rows.append(("mlpcli train", seconds, acc, f"{before} -> {load()}"))
    before = load()
    seconds, acc = run_torch(args.epochs, args.seed)
    rows.append(("PyTorch script", seconds, acc, f"{before} -> {load()}"))
    ours = rows[0][1]
    for name, seconds, acc, loads in rows:
        print(
            f"| {name} | {seconds:.1f} | {seconds / ours:.2f} | {acc['val_accuracy']:.4f} "
            f"| {acc['test_accuracy']:.4f} | {loads} |"
        )
    verdict = "PASS" if ours < rows[1][1] else "FAIL"
    print(f"\nTarget: mlpcli train faster than the PyTorch script: {verdict}")


if __name__ == "__main__":
    main()
