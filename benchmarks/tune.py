#!/usr/bin/env python3
"""What `mlpcli tune` buys, and what it costs: prints three tables.

1. A 30-trial TPE search with the median pruner on the shipped digits and spirals configs
   and the tour's deep-sigmoid setup, against the hand configs in configs/ (mean test
   accuracy over 3 seeds) and against the same 30 trials unpruned (wall time, ratio).
2. The learning rate of a bad config (the shipped digits config with lr 10x too large or
   too small), searched: the best trial's test accuracy against the shipped config's.
3. The study's own cost (SQLite, 50 trials of a 1-epoch iris run): the search's wall time
   minus the time inside the trials' training runs, per trial and as % of a trial.

    python benchmarks/tune.py              # all three (about 10 minutes on 2 busy cores)
    python benchmarks/tune.py --only 3     # one of them

Needs the tune extra (pip install ".[tune]"). Runs go to a temporary folder, removed after.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu_model  # noqa: E402 (benchmarks/bench.py; this script's folder is on sys.path)

from mlpcli import runs  # noqa: E402
from mlpcli.config import load_config  # noqa: E402
from mlpcli.tune import tune  # noqa: E402

SEEDS = (0, 1, 2)
SETUPS: dict[str, dict[str, Any]] = {
    "digits": {
        "config": "configs/digits.yaml",
        "hand": ["configs/digits.yaml"],
        "space": {
            "optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
            "model.hidden.0.units": {"low": 64, "high": 512, "log": True, "int": True},
            "model.dropout": {"low": 0.0, "high": 0.6},
            "training.batch_size": [16, 32, 64, 128],
        },
    },
    "spirals": {
        "config": "configs/spirals.yaml",
        "hand": ["configs/spirals.yaml"],
        "space": {
            "optimizer.lr": {"low": 1e-3, "high": 0.1, "log": True},
            "model.hidden": {"layers": {"low": 1, "high": 3}, "units": {"low": 16, "high": 128}},
            "training.batch_size": [16, 32, 64],
        },
    },
    "deep-sigmoid": {
        "config": "configs/tour/deep-sigmoid.yaml",
        # the tour's two hand configs for this network shape: sigmoid, and the ReLU cure
        "hand": ["configs/tour/deep-sigmoid.yaml", "configs/tour/deep-relu.yaml"],
        "space": {
            "optimizer.lr": {"low": 1e-3, "high": 3.0, "log": True},
            "optimizer.name": ["sgd", "momentum", "adam"],
            "training.batch_size": [16, 32, 64],
        },
    },
}


def with_tune(
    config: str, folder: Path, space: dict, pruner: str, trials: int, name: str, lr: float = 0
) -> Path:
    """The shipped config with a tune section (and another lr, if given)."""
    raw = yaml.safe_load((ROOT / config).read_text())
    if lr:
        raw["optimizer"]["lr"] = lr
    source = raw["data"].get("source", "")
    if "/" in source:  # a path relative to the shipped config
        raw["data"]["source"] = str(((ROOT / config).parent / source).resolve())
    raw["tune"] = {"trials": trials, "sampler": "tpe", "pruner": pruner, "space": space}
    raw["name"] = name
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_accuracy(run_dir: Path) -> float:
    return float(runs.read_summary(run_dir)["final"]["test"]["accuracy"])


def hand_score(config: str, folder: Path) -> float:
    """Mean test accuracy of a hand config over SEEDS."""
    scores = []
    for seed in SEEDS:
        cfg = load_config(ROOT / config, [f"seed={seed}"])
        run_dir, _ = runs.train_run(cfg, folder / "hand", [])
        scores.append(test_accuracy(run_dir))
    return statistics.fmean(scores)


def search(config: Path, folder: Path, trials: int) -> tuple[float, float, int, int]:
    """Wall time, the best trial's test accuracy, trials pruned, epochs trained in all."""
    start = time.perf_counter()
    study = tune(config, trials=trials, runs_dir=folder)
    wall = time.perf_counter() - start
    assert study.best is not None and study.best.run_dir is not None
    best = test_accuracy(study.folder / study.best.run_dir)
    pruned = sum(t.state == "pruned" for t in study.trials)
    epochs = sum(t.epochs or 0 for t in study.trials)
    return wall, best, pruned, epochs


def table_1(folder: Path, only: list[str] | None = None) -> None:
    print("\n## 1. 30 trials, TPE: median pruner vs none, against the hand configs\n")
    print(
        "| setup | hand configs, test acc (3 seeds) | tuned test acc | >= hand | pruned | epochs | "
        "wall, pruned | wall, unpruned | unpruned test acc | time ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, setup in SETUPS.items():
        if only and name not in only:
            continue
        scores = {Path(c).stem: hand_score(c, folder / name) for c in setup["hand"]}
        hand = max(scores.values())
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        results = {}
        for pruner in ("median", "none"):
            config = with_tune(
                setup["config"], folder, setup["space"], pruner, 30, f"{name}-{pruner}"
            )
            results[pruner] = search(config, folder / name, 30)
        (w_p, acc_p, n_p, e_p), (w_n, acc_n, _, e_n) = results["median"], results["none"]
        print(
            f"| {name} | {shown} | {acc_p:.4f} | {'yes' if acc_p >= hand else 'no'} (vs best) | "
            f"{n_p}/30 | {e_p} vs {e_n} | {w_p:.1f} s | {w_n:.1f} s | {acc_n:.4f} | "
            f"{w_p / w_n:.2f} |",
            flush=True,
        )


def table_2(folder: Path) -> None:
    print("\n## 2. Searching the learning rate of a bad config (digits, adam, shipped lr 1e-3)\n")
    print(
        "| config lr | its test acc | tuned test acc (12 trials) | shipped test acc | within 1% |"
    )
    print("|---|---|---|---|---|")
    shipped = hand_score("configs/digits.yaml", folder / "shipped")
    space = {"optimizer.lr": {"low": 1e-5, "high": 1e-1, "log": True}}
    for lr in (1e-2, 1e-4):
        bad = statistics.fmean(
            test_accuracy(
                runs.train_run(
                    load_config(ROOT / "configs/digits.yaml", [f"optimizer.lr={lr}", f"seed={s}"]),
                    folder / "bad",
                    [],
                )[0]
            )
            for s in SEEDS
        )
        config = with_tune("configs/digits.yaml", folder, space, "median", 12, f"lr-{lr:g}", lr)
        _, tuned, _, _ = search(config, folder / "lr", 12)
        ok = tuned >= shipped - 0.01
        print(
            f"| {lr:g} | {bad:.4f} | {tuned:.4f} | {shipped:.4f} | {'yes' if ok else 'no'} |",
            flush=True,
        )


def table_3(folder: Path) -> None:
    print("\n## 3. The study's own cost: SQLite, 50 trials of a 1-epoch iris run\n")
    spent: list[float] = []
    original = runs.train_run

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    runs.train_run = timed  # type: ignore[assignment]
    config = folder / "overhead.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "overhead",
                "data": {"source": "iris"},
                "model": {"hidden": [{"units": 16, "activation": "tanh"}]},
                "training": {"epochs": 1, "batch_size": 16, "early_stopping": None},
                "tune": {
                    "trials": 50,
                    "space": {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}},
                },
            }
        )
    )
    try:
        start = time.perf_counter()
        tune(config, runs_dir=folder / "overhead")
        wall = time.perf_counter() - start
    finally:
        runs.train_run = original  # type: ignore[assignment]
    # the same 50 runs without a study: the peer
    plain_start = time.perf_counter()
    for k in range(50):
        runs.train_run(load_config(config, [f"seed={k}"]), folder / "plain", [])
    plain = time.perf_counter() - plain_start
    trial = statistics.fmean(spent)
    overhead = (wall - sum(spent)) / len(spent)
    print(
        "| trials | search wall | inside train_run | per trial | study per trial | "
        "study / trial | 50 plain runs | search / plain |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(spent)} | {wall:.2f} s | {sum(spent):.2f} s | {trial * 1000:.1f} ms | "
        f"{overhead * 1000:.1f} ms | {100 * overhead / trial:.0f}% | {plain:.2f} s | "
        f"{wall / plain:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="*", choices=(1, 2, 3))
    parser.add_argument("--setups", nargs="*", choices=list(SETUPS), help="table 1's setups")
    args = parser.parse_args()
    print(f"# benchmarks/tune.py on {cpu_model()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="mlpcli-tune-bench-") as tmp:
        folder = Path(tmp)
        if not args.only or 1 in args.only:
            table_1(folder, args.setups)
        for n, table in ((2, table_2), (3, table_3)):
            if not args.only or n in args.only:
                table(folder)


if __name__ == "__main__":
    main()
