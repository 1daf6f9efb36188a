"""Paired A/B of the engine's tuning constants, in one process: is a threshold still right here?

One trainer per variant, on a bench.py workload, all in this process; they take one epoch
each in turn (the order flipping every round), each variant's constants set just before its
epoch. A noisy minute then falls on every variant alike, and the ratio of two variants'
epochs in the same round is steadier than either time. The first round is a warm-up.

    python benchmarks/ab.py W1 --epochs 12 \\
        --variant "no split: blas.PARALLEL_MIN_MACS=10**9" \\
        --variant "halves: optimizers.PARALLEL_MIN=2**17"

The first variant is always the engine as it is ("as is"). A setting is MODULE.NAME=VALUE
with MODULE one of mlpcli.engine's modules (blas, optimizers, fast, model, ...) and VALUE a
Python number or literal (`2**17` and `10**9` are read as powers). Prints each variant's
median s/epoch and its median paired ratio to "as is" (above 1: slower).
"""

import argparse
import ast
import importlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402  (the workloads and their data)


def value(text: str) -> Any:
    """A Python literal, or a power written a**b."""
    if "**" in text:
        base, exp = text.split("**")
        return ast.literal_eval(base.strip()) ** ast.literal_eval(exp.strip())
    return ast.literal_eval(text)


def variant(text: str) -> tuple[str, list[tuple[Any, str, Any]]]:
    """'NAME: module.attr=value, module.attr=value' as (NAME, [(module, attr, value)])."""
    name, _, settings = text.partition(":")
    parsed = []
    for item in filter(None, (s.strip() for s in settings.split(","))):
        key, _, val = item.partition("=")
        module_name, _, attr = key.strip().rpartition(".")
        module = importlib.import_module(f"mlpcli.engine.{module_name}")
        if not hasattr(module, attr):
            raise SystemExit(f"ab.py: mlpcli.engine.{module_name} has no {attr}")
        parsed.append((module, attr, value(val)))
    return name.strip(), parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=sorted(bench.WORKLOADS))
    parser.add_argument("--epochs", type=int, default=12, help="rounds (the first is a warm-up)")
    parser.add_argument("--variant", action="append", default=[], metavar="'NAME: M.A=V, ...'")
    args = parser.parse_args()

    from mlpcli.train import Trainer

    w = bench.WORKLOADS[args.workload]
    cfg, data = bench.mlpcli_run(w)

    variants = [variant(v) for v in args.variant]
    # "as is": every constant any variant changes, at its value now
    as_is = [(m, a, getattr(m, a)) for _, settings in variants for m, a, _ in settings]
    variants.insert(0, ("as is", as_is))
    trainers = []
    for _ in variants:
        trainer = Trainer(cfg, data, [])
        trainer._fresh_start()
        trainers.append(trainer)
    times: list[list[float]] = [[] for _ in variants]
    # not bench.machine(): it imports PyTorch and scikit-learn into this process
    print(f"{w.describe()}; {bench.cpu_model()}; {bench.blas_description()}", flush=True)
    for epoch in range(1, args.epochs + 1):
        turn = range(len(variants)) if epoch % 2 else reversed(range(len(variants)))
        for i in turn:
            for module, attr, val in variants[i][1]:
                setattr(module, attr, val)
            start = time.perf_counter()
            trainers[i]._run_epoch(0, epoch)
            times[i].append(time.perf_counter() - start)
    print("| variant | s/epoch (median) | paired ratio to 'as is' |")
    print("|---|---|---|")
    for (name, _), t in zip(variants, times, strict=True):
        ratio = statistics.median(a / b for a, b in zip(t[1:], times[0][1:], strict=True))
        print(f"| {name} | {statistics.median(t[1:]):.4g} | {ratio:.3f} |")
        print("  epochs: " + " ".join(f"{x:.3f}" for x in t), file=sys.stderr)  # the spread


if __name__ == "__main__":
    main()
