"""The optimizer's update alone, on hot and on cold caches: mlpcli's Adam against PyTorch's.

    pip install -e ".[bench,fast]"
    python benchmarks/update.py                  # W1's and W3's parameters, Adam
    python benchmarks/update.py --workloads W1 --repeats 200

Inside training the update finds the parameters, their gradient and Adam's two moment
buffers partly out of the caches (what ran since its last call, the step's GEMMs and
whatever else the machine runs, pushed them out): `bench.py --breakdown` times it there.
This script times the same update with nothing in between ("hot": each timed call right
after an untimed one of the same contender, the arrays in cache as far as they fit) and
after PyTorch has summed a buffer larger than the last-level cache on all its threads
("cold"), so that a breakdown's optimizer time can be read against both. An Adam step
reads four arrays and writes three, 28 bytes a float32 parameter: "GB/s" is that traffic
over the cold time.

Every contender holds its own copy of the workload's parameters in this one process and
they take turns call by call, so a noisy moment falls on all of them alike; times are
medians. "mlpcli" is the engine's Adam as `mlpcli train` runs it (one flat parameter, the
fast path where numba is installed and the model is large enough), "mlpcli numpy" the
NumPy reference, and PyTorch's Adam runs on the layers' tensors with `fused=True` and with
its default (foreach) implementation.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402  (the workloads, the CPU and BLAS description)

SWEEP_BYTES = 256 << 20  # larger than any last-level cache these machines have had
BYTES_PER_PARAM = 28  # Adam, float32: p, g, m, v read; p, m, v written


def mlpcli_update(w: bench.Workload, numpy_path: bool) -> Callable[[], None]:
    """The step `Trainer._step` takes: Adam over the model's one flat parameter."""
    from mlpcli.engine import fast
    from mlpcli.engine.model import MLP
    from mlpcli.engine.optimizers import Adam

    model = MLP(w.sizes, ["relu"] * len(w.hidden), steps=w.planned_steps)
    rng = np.random.default_rng(0)
    model.init(rng)
    model.flat.grad[:] = rng.standard_normal(w.n_params, dtype=np.float32) * 0.01
    opt = Adam(bench.LR["adam"])

    def step() -> None:
        fast.ENABLED = not numpy_path
        try:
            opt.step([model.flat], model.steps)
        finally:
            fast.ENABLED = True

    return step


def torch_update(w: bench.Workload, fused: bool) -> Callable[[], None]:
    import torch

    torch.manual_seed(0)
    params = []
    for fi, fo in zip(w.sizes[:-1], w.sizes[1:], strict=True):
        for shape in ((fo, fi), (fo,)):  # nn.Linear's weight and bias
            p = torch.nn.Parameter(torch.randn(shape) * 0.05)
            p.grad = torch.randn(shape) * 0.01
            params.append(p)
    opt = torch.optim.Adam(params, lr=bench.LR["adam"], fused=fused or None)
    return opt.step


def contenders(w: bench.Workload) -> dict[str, Callable[[], None]]:
    return {
        "mlpcli": mlpcli_update(w, numpy_path=False),
        "mlpcli numpy": mlpcli_update(w, numpy_path=True),
        "pytorch fused": torch_update(w, fused=True),
        "pytorch": torch_update(w, fused=False),
    }


def measure(
    steps: dict[str, Callable[[], None]], repeats: int, sweep: Callable[[], object] | None
) -> dict[str, float]:
    """Median seconds a call for each contender, taking turns. Without `sweep`, each turn
    makes two calls and times the second (hot caches); with it, `sweep()` runs before the
    timed call (cold caches)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for rep in range(repeats + 1):  # the first round warms up (numba's cache, page faults)
        for name in names if rep % 2 else reversed(names):
            if sweep is None:
                steps[name]()
            else:
                sweep()
            start = time.perf_counter()
            steps[name]()
            if rep:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="W1,W3", help="comma-separated: W1,W3")
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per contender")
    args = parser.parse_args()
    names = args.workloads.split(",")
    for name in names:
        if name not in bench.WORKLOADS or bench.WORKLOADS[name].optimizer != "adam":
            parser.error(f"--workloads: {name!r} is not an Adam workload (W1, W3)")

    import torch

    from mlpcli.engine import fast

    # PyTorch reads the sweep buffer on all its threads: every core's caches are swept, and
    # PyTorch's thread pool is as awake as the GEMMs before an update leave it in training
    big = torch.ones(SWEEP_BYTES // 4)

    def sweep() -> object:
        return big.sum()

    print(
        f"{bench.cpu_model()}; {bench.blas_description()}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)",
        flush=True,
    )
    print()
    print("| workload | parameters | contender | hot us | cold us | cold GB/s | cold ÷ fused |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        w = bench.WORKLOADS[name]
        steps = contenders(w)
        hot = measure(steps, args.repeats, None)
        cold = measure(steps, args.repeats, sweep)
        for who in steps:
            path = fast.path(w.n_params, w.planned_steps) if who == "mlpcli" else ""
            label = f"{who} ({path})" if path else who
            gbs = w.n_params * BYTES_PER_PARAM / cold[who] / 1e9
            ratio = cold[who] / cold["pytorch fused"]
            print(
                f"| {name} | {w.n_params:,} | {label} | {hot[who] * 1e6:.0f} "
                f"| {cold[who] * 1e6:.0f} | {gbs:.0f} | {ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
