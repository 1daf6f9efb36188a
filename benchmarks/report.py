"""How big and how fast `mlpcli report` is for 20 runs, against `compare` in the same process.

Trains 20 small real runs (spirals: 5 learning rates x 4 seeds, 60 epochs), then writes the
report several times and prints: plotly.js's size (included once), the rest of the page,
and the best-of-N write time, with `compare` (table rows) and `compare --plot` (a
matplotlib PNG) timed on the same runs as peers.

    python benchmarks/report.py [--repeat 5]
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import cpu_model  # benchmarks/bench.py: this script's folder is on sys.path

from mlpcli import report as pages
from mlpcli.compare import compare_runs
from mlpcli.config import config_from_dict
from mlpcli.runs import train_run

CONFIG = {
    "name": "spirals",
    "data": {"source": "spirals", "generator": {"n": 1500, "arms": 3, "noise": 0.2}},
    "model": {"hidden": [{"units": 32, "activation": "relu"}, {"units": 32, "activation": "relu"}]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 60, "batch_size": 32, "early_stopping": None},
}
LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
SEEDS = (0, 1, 2, 3)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="writes timed (the best counts)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        for lr in LRS:
            for seed in SEEDS:
                cfg = config_from_dict(
                    {**CONFIG, "name": f"lr-{lr}_seed-{seed}", "seed": seed,
                     "optimizer": {"name": "adam", "lr": lr}},
                    "benchmark",
                )  # fmt: skip
                train_run(cfg, runs, [])
        out = Path(tmp) / "report.html"
        script = pages.plotly_js()
        pages.write_report([runs], out, script=script)  # warm: imports, dataset cache
        written = pages.write_report([runs], out, script=script)
        report_s = best_of(args.repeat, lambda: pages.write_report([runs], out, script=script))
        per_run = pages.write_report([runs], out, group=False, script=script)
        per_run_s = best_of(
            args.repeat, lambda: pages.write_report([runs], out, group=False, script=script)
        )
        compare_s = best_of(args.repeat, lambda: compare_runs([runs]))
        peers = [("compare (rows only)", compare_s)]
        try:
            from mlpcli.plot import plot_curves

            png = Path(tmp) / "curves.png"
            plot_s = best_of(args.repeat, lambda: plot_curves(compare_runs([runs]), png))
            peers.append(("compare --plot (matplotlib PNG)", plot_s))
        except ImportError:
            pass

    rest = written.bytes_total - written.bytes_script
    print(f"mlpcli report, {written.runs} runs, {written.plots} plots ({cpu_model()})")
    print(f"  plotly.js inlined once : {written.bytes_script / 1e6:6.2f} MB")
    print(f"  the rest of the page   : {rest / 1e6:6.2f} MB  (limit 1 MB)")
    print(f"  whole file             : {written.bytes_total / 1e6:6.2f} MB")
    rest_per_run = (per_run.bytes_total - per_run.bytes_script) / 1e6
    print(f"  the rest, --per-run    : {rest_per_run:6.2f} MB  (20 rows, 20 curves each plot)")
    print()
    print(f"  {'what':34} {'best of ' + str(args.repeat):>10} {'ratio':>8}")
    print(f"  {'report (written to disk)':34} {report_s:9.3f}s {1.0:8.2f}  (limit 2 s)")
    print(f"  {'report --per-run':34} {per_run_s:9.3f}s {per_run_s / report_s:8.2f}")
    for name, seconds in peers:
        print(f"  {name:34} {seconds:9.3f}s {seconds / report_s:8.2f}")


if __name__ == "__main__":
    main()
