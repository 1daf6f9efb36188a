"""Train every shipped config over several seeds and compare the held-out test score to its target.

    python benchmarks/accuracy.py                      # all configs, seeds 0..4
    python benchmarks/accuracy.py --only iris wine --seeds 3
    python benchmarks/accuracy.py --only xor --stuck 100   # how often a 2-2-1 net gets stuck

The seed drives the split too, so the spread shows both initialisation and split luck.
Runs in-process without writing run directories; prints a Markdown table (mean ± std over
seeds next to the target) that the README quotes.
"""

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from mlpcli.config import RunConfig, load_config
from mlpcli.data import load_dataset
from mlpcli.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@dataclass(frozen=True)
class Target:
    config: str  # file in configs/
    metric: str  # test metric: accuracy or r2
    goal: float  # the mean over seeds must reach this


TARGETS: dict[str, Target] = {
    "iris": Target("iris.yaml", "accuracy", 0.96),
    "wine": Target("wine.yaml", "accuracy", 0.97),
    "digits": Target("digits.yaml", "accuracy", 0.975),
    "diabetes": Target("diabetes.yaml", "r2", 0.45),
    "xor": Target("xor.yaml", "accuracy", 1.0),
    "spirals": Target("spirals.yaml", "accuracy", 0.98),
    "mnist": Target("mnist.yaml", "accuracy", 0.985),
}


def score_of(name: str, seed: int, overrides: list[str] | None = None) -> tuple[float, float]:
    """Train `name`'s config with `seed`; its test metric and the seconds it took."""
    target = TARGETS[name]
    cfg: RunConfig = load_config(CONFIGS / target.config, [*(overrides or []), f"seed={seed}"])
    start = time.perf_counter()
    data = load_dataset(cfg.data, cfg.seed, dtype=cfg.training.dtype)
    result = Trainer(cfg, data).run()
    if result.status == "diverged":
        raise RuntimeError(f"{name} seed {seed}: {result.reason}")
    return result.final["test"][target.metric], time.perf_counter() - start


def stuck_study(name: str, runs: int) -> str:
    """How often the config's net ends below its goal with 1 restart, and with its own restarts."""
    cfg = load_config(CONFIGS / TARGETS[name].config)
    goal = TARGETS[name].goal
    lines = []
    for restarts in sorted({1, cfg.training.restarts}):
        scores = [
            score_of(name, seed, [f"training.restarts={restarts}"])[0] for seed in range(runs)
        ]
        stuck = sum(score < goal for score in scores)
        worst = min(scores)
        lines.append(
            f"{name}, restarts={restarts}: {stuck}/{runs} seeds below {goal:g} "
            f"({100 * stuck / runs:.0f}%), worst {worst:.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--stuck", type=int, metavar="RUNS", help="restart study instead")
    args = parser.parse_args()
    if args.stuck:
        for name in args.only:
            print(stuck_study(name, args.stuck), flush=True)
        return
    print(f"accuracy on the held-out test split, {args.seeds} seeds, {date.today()}")
    print(f"command: python benchmarks/accuracy.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| config | test metric | mean ± std | min | target | met | s/run |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only:
        target = TARGETS[name]
        runs = [score_of(name, seed, args.overrides) for seed in range(args.seeds)]
        scores = [score for score, _ in runs]
        mean = statistics.fmean(scores)
        std = statistics.stdev(scores) if len(scores) > 1 else 0.0
        seconds = statistics.fmean(s for _, s in runs)
        met = "yes" if mean >= target.goal else "NO"
        print(
            f"| {target.config} | {target.metric} | {mean:.4f} ± {std:.4f} | {min(scores):.4f} "
            f"| >= {target.goal:g} | {met} | {seconds:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
