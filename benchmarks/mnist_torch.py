"""Real MNIST end to end: `mlpcli train configs/mnist.yaml` against the same recipe in PyTorch.

    pip install -e ".[bench]"          # PyTorch (pinned), for the peer
    python benchmarks/mnist_torch.py                 # both, the whole recipe (40 epochs)
    python benchmarks/mnist_torch.py --epochs 2      # a smoke run
    python benchmarks/mnist_torch.py --recipe w1     # W1's network, against fused Adam

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

`--recipe w1` is benchmarks/mnist-w1.yaml instead (bench.py's W1 network, 784-256-128-10,
no dropout, plain cross-entropy, Adam 1e-3 with no schedule, 10 epochs, 1/6 of the training
images for validation) against the same loop with `torch.optim.Adam(fused=True)`, PyTorch's
fastest Adam: the performance issue's "W1 through `mlpcli train`" comparison.

The machine is shared and noisy: the table gives the load average before and after each
contender, and a claim needs several runs of this script.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "datasets" / "mnist.npz"

RECIPES = {
    "mnist": {
        "config": ROOT / "configs" / "mnist.yaml",
        "hidden": (1024, 1024),
        "dropout": 0.3,
        "label_smoothing": 0.1,
        "cosine": True,
        "val": 0.05,
        "epochs": 40,
        "fused": False,
    },
    "w1": {
        "config": ROOT / "benchmarks" / "mnist-w1.yaml",
        "hidden": (256, 128),
        "dropout": 0.0,
        "label_smoothing": 0.0,
        "cosine": False,
        "val": 0.1667,
        "epochs": 10,
        "fused": True,
    },
}


def torch_recipe(recipe: dict[str, Any], epochs: int, seed: int) -> dict[str, float]:
    """The recipe of the mlpcli config, written as a PyTorch user would."""
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
    n_val = round(recipe["val"] * len(x_all))
    val_idx, train_idx = order[:n_val], order[n_val:]
    mean, std = x_all[train_idx].mean(dtype=np.float64), x_all[train_idx].std(dtype=np.float64)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - mean) / std).astype(np.float32))

    x_train, x_val, x_t = tensor(x_all[train_idx]), tensor(x_all[val_idx]), tensor(x_test)
    y_train, y_val, y_t = (torch.from_numpy(a) for a in (y_all[train_idx], y_all[val_idx], y_test))
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=128, shuffle=True)

    layers: list[nn.Module] = []
    width = 784
    for units in recipe["hidden"]:
        layers += [nn.Linear(width, units), nn.ReLU()]
        layers += [nn.Dropout(recipe["dropout"])] if recipe["dropout"] else []
        width = units
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe["label_smoothing"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=recipe["fused"] or None)
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if recipe["cosine"] else None
    )

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
        if schedule is not None:
            schedule.step()
        val = accuracy(x_val, y_val)
        if val > best:
            best, best_state = val, copy.deepcopy(model.state_dict())
    assert best_state is not None
    model.load_state_dict(best_state)
    return {"val_accuracy": best, "test_accuracy": accuracy(x_t, y_t)}


def n_params(recipe: dict[str, Any]) -> int:
    sizes = [784, *recipe["hidden"], 10]
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def load() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def run_mlpcli(
    recipe: dict[str, Any], epochs: int, seed: int, runs: Path
) -> tuple[float, dict[str, float]]:
    script = Path(sys.executable).parent / "mlpcli"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mlpcli"]
    cmd += ["train", str(recipe["config"]), "--runs-dir", str(runs), "--quiet", "--seed", str(seed)]
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


def run_torch(name: str, epochs: int, seed: int) -> tuple[float, dict[str, float]]:
    cmd = [sys.executable, __file__, "--torch-only", "--recipe", name]
    cmd += ["--epochs", str(epochs), "--seed", str(seed)]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, json.loads(out.strip().splitlines()[-1])


def machine(recipe: dict[str, Any]) -> str:
    """The CPU model as lscpu names it, the BLAS NumPy runs, and which engine path ran."""
    sys.path.insert(0, str(ROOT))
    import torch

    from benchmarks.bench import blas_description, cpu_model

    blas = blas_description(n_params(recipe))
    return f"{cpu_model()}, {os.cpu_count()} cores; {blas}; torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=list(RECIPES), default="mnist")
    parser.add_argument("--epochs", type=int, help="default: the recipe's (40, w1: 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipe = RECIPES[args.recipe]
    epochs = args.epochs or recipe["epochs"]
    if args.torch_only:
        print(json.dumps(torch_recipe(recipe, epochs, args.seed)))
        return

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    config = recipe["config"].relative_to(ROOT)
    print(f"real MNIST, {config}, {epochs} epochs, seed {args.seed}; {stamp}")
    print(machine(recipe))
    print()
    print("| contender | wall s | ÷ mlpcli | val accuracy | test accuracy | load before -> after |")
    print("|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before = load()
        seconds, acc = run_mlpcli(recipe, epochs, args.seed, Path(tmp))
        rows.append(("mlpcli train", seconds, acc, f"{before} -> {load()}"))
    before = load()
    seconds, acc = run_torch(args.recipe, epochs, args.seed)
    peer = "PyTorch script, fused Adam" if recipe["fused"] else "PyTorch script"
    rows.append((peer, seconds, acc, f"{before} -> {load()}"))
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
