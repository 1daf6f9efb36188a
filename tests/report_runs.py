"""Small real runs for the report tests: a spirals grid over lr x seed, and a regression run."""

from pathlib import Path

from mlpcli.config import load_config
from mlpcli.runs import train_run
from tests.helpers import ROOT, write_config

SPIRALS = """
name: spirals
data:
  source: spirals
  generator: {n: 300, arms: 3, noise: 0.2, turns: 1.0}
model:
  hidden: [{units: 16, activation: relu}, {units: 16, activation: tanh}]
optimizer: {name: adam, lr: 0.01}
training: {epochs: 8, batch_size: 32}
"""

DIABETES = f"""
name: diabetes
data:
  source: {ROOT / "datasets" / "diabetes.csv"}
model:
  hidden: [{{units: 8, activation: relu}}]
loss: mse
training: {{epochs: 5, batch_size: 32}}
"""

# loss, accuracy, lr; gradient and weight norms; parallel coordinates, history;
# confusion matrix, decision regions
GRID_PLOTS = 9


def make_grid(folder: Path) -> Path:
    """2 learning rates x 2 seeds of a 2-feature, 3-class problem, in `folder/grid`."""
    runs = folder / "grid"
    for lr in (0.003, 0.03):
        for seed in (0, 1):
            cfg = load_config(
                write_config(folder, SPIRALS),
                [f"optimizer.lr={lr}", f"seed={seed}", f"name=lr-{lr}_seed-{seed}"],
            )
            train_run(cfg, runs, [])
    return runs


def make_regression(folder: Path) -> Path:
    cfg = load_config(write_config(folder, DIABETES, "diabetes.yaml"), [])
    run_dir, _ = train_run(cfg, folder / "regression", [])
    return run_dir
