"""mlpcli's training speed next to PyTorch, scikit-learn and the GEMM limit, in one run.

    pip install -e ".[bench]"
    python benchmarks/bench.py                  # W1, W2, W3 and the start-up check
    python benchmarks/bench.py --quick          # a smoke run: fewer rounds, 1/5 of W1/W3's rows
    python benchmarks/bench.py --breakdown      # where an mlpcli step's time goes, per workload
    python benchmarks/bench.py --baseline DIR   # also time the mlpcli found in DIR (e.g. an
                                                # older checkout), as "mlpcli@base"

Every contender runs in its own process (its own imports, thread pools and peak RSS), and
the parent asks them for one epoch at a time, in turn, in a rotating order: on a shared,
noisy machine the noise then falls on all of them alike. Reported times are medians over
the timed rounds; ratios are only meaningful between rows of the same run.

mlpcli is timed through `Trainer.run`, the code `mlpcli train` runs, with the rich progress
bar attached (drawn to /dev/null); checkpoint writing is not included. PyTorch runs the
idiomatic loop (nn.Sequential, CrossEntropyLoss, torch.optim, a permutation per epoch) and,
like mlpcli, accumulates the running loss and accuracy of each batch.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
N_CLASSES = 10


@dataclass(frozen=True)
class Workload:
    name: str
    rows: int
    features: int
    hidden: tuple[int, ...]
    batch: int
    optimizer: str  # adam (lr 1e-3) | momentum (SGD, lr 0.01, momentum 0.9)
    rounds: int  # timed rounds (one warm-up round comes first)
    epochs_per_turn: int = 1  # tiny epochs: several per turn, each timed

    @property
    def sizes(self) -> list[int]:
        return [self.features, *self.hidden, N_CLASSES]

    @property
    def n_params(self) -> int:
        return sum(fi * fo + fo for fi, fo in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    @property
    def planned_steps(self) -> int:
        return PLANNED_EPOCHS * -(-self.rows // self.batch)

    @property
    def flops_per_epoch(self) -> float:
        """Forward x@W, backward x.T@dz and dz@W.T (not for the first layer): 2 flops a MAC."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        macs = sum(fi * fo * (3 if i > 0 else 2) for i, (fi, fo) in enumerate(pairs))
        return 2.0 * self.rows * macs

    def describe(self) -> str:
        arch = "-".join(map(str, self.sizes))
        opt = "Adam 1e-3" if self.optimizer == "adam" else "SGD momentum 0.9"
        return f"{self.name}: {self.rows}x{self.features}, {arch}, batch {self.batch}, {opt}"


WORKLOADS = {
    "W1": Workload("W1", 60000, 784, (256, 128), 128, "adam", rounds=5),
    "W2": Workload("W2", 1797, 64, (64,), 32, "momentum", rounds=5, epochs_per_turn=10),
    "W3": Workload("W3", 60000, 784, (1024, 1024), 512, "adam", rounds=3),
}
LR = {"adam": 1e-3, "momentum": 0.01}
# mlpcli's runs are planned this long and stopped by the parent when it has its times: a
# long run, which is what an epoch's steady-state time describes. The planned length is
# part of what picks mlpcli's engine path (engine.fast.MIN_STEPS), so W2 runs as a long
# run of a small model does; "mlpcli numpy" shows the path of a short one.
PLANNED_EPOCHS = 100_000


def synthetic(w: Workload) -> tuple[Any, Any]:
    """The same float32 data in every process: standard normal features, random labels."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((w.rows, w.features), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, w.rows)
    return X, y


def rss_mb(field_name: str = "VmRSS") -> float:
    """This process's resident set (or its peak, VmHWM) in MB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------------------- contenders
#
# A contender is a function run in a worker process: it builds its model on the workload,
# then serves the parent's requests through `turns` (see Turns), and returns extra stats.


class Turns:
    """The worker's side of the round robin: wait for 'epoch', report times, until 'done'."""

    def __init__(self, conn: Any, w: Workload) -> None:
        self.conn, self.w = conn, w
        self.stats: dict[str, Any] = {}
        self.announced = False

    def ready(self) -> None:
        """Imports done, no data yet: the RSS baseline."""
        self.stats["baseline_mb"] = rss_mb()

    def next(self) -> bool:
        """Block until the parent's next request; True means: run one turn of epochs.

        The first call tells the parent this contender is set up (data made, model built),
        so that no contender's set-up runs during another's timed epoch.
        """
        if not self.announced:
            self.conn.send(("ready", None, {}))
            self.announced = True
        return self.conn.recv() == "epoch"

    def report(self, seconds: list[float], extra: dict[str, Any] | None = None) -> None:
        self.conn.send(("epoch", seconds, extra or {}))


class StopBench(Exception):
    """Raised from a callback to leave Trainer.run when the parent says 'done'."""


def mlpcli_run(w: Workload) -> tuple[Any, Any]:
    """The config and the dataset (synthetic, all of it for training) of mlpcli's run of `w`."""
    from mlpcli.config import RunConfig
    from mlpcli.data import Dataset, Part

    X, y = synthetic(w)
    opt: dict[str, Any] = {"name": w.optimizer, "lr": LR[w.optimizer]}
    if w.optimizer == "momentum":
        opt["momentum"] = 0.9
    cfg = RunConfig.model_validate(
        {
            "name": "bench",
            "data": {"source": "synthetic", "split": {"train": 1.0, "val": 0.0, "test": 0.0}},
            "model": {"hidden": [{"units": u, "activation": "relu"} for u in w.hidden]},
            "optimizer": opt,
            "training": {"epochs": PLANNED_EPOCHS, "batch_size": w.batch, "early_stopping": None},
        }
    )
    features = [f"x{i}" for i in range(w.features)]
    classes = [str(c) for c in range(N_CLASSES)]
    return cfg, Dataset("classification", features, "y", classes, {"train": Part(X, y)})


def run_mlpcli(
    turns: Turns, w: Workload, breakdown: bool, numpy_path: bool = False, openblas: bool = False
) -> None:
    import numpy as np
    from rich.console import Console

    with contextlib.suppress(ImportError):  # an mlpcli from before the fast path has none
        from mlpcli.engine import fast

        fast.ENABLED = not numpy_path
    if openblas:  # an mlpcli that picks MKL where installed, held to NumPy's OpenBLAS
        from mlpcli.engine import blas

        blas.USE_MKL = False

    from mlpcli import display
    from mlpcli.train import Callback, Trainer

    turns.ready()
    cfg, data = mlpcli_run(w)

    # The rich progress bar a terminal user sees, drawing into /dev/null.
    display.stderr = Console(file=open(os.devnull, "w"), force_terminal=True, width=120)  # noqa: SIM115
    progress = display.RichProgress()
    phases = Phases() if breakdown else None

    class RoundRobin(Callback):
        def on_train_start(self, trainer: Trainer) -> None:
            if phases is not None:
                phases.attach(trainer)
            self._wait()

        def on_epoch_end(self, trainer: Trainer, record: Any) -> None:
            now = time.perf_counter()
            self.times.append(now - self.start)
            self.start = now
            if len(self.times) < w.epochs_per_turn:
                return
            extra = phases.collect(trainer, w, self.times) if phases is not None else {}
            turns.report(self.times, extra)
            self._wait()

        def _wait(self) -> None:
            if not turns.next():
                raise StopBench
            self.times: list[float] = []
            if phases is not None:
                phases.reset()
            self.start = time.perf_counter()

    trainer = Trainer(cfg, data, [progress, RoundRobin()])
    with contextlib.suppress(StopBench):
        trainer.run()
    progress.progress.stop()
    turns.stats["dtype"] = str(np.dtype(trainer.model.dtype))
    turns.stats["path"] = engine_path(trainer.model.n_params, w.planned_steps)


def engine_path(n_params: int, steps: int) -> str:
    """What the imported mlpcli runs a model of this size on, in a run planned for `steps`
    steps: numba kernels or NumPy."""
    try:
        from mlpcli.engine import fast
    except ImportError:
        return "numpy (no fast path)"
    try:
        numba_path = fast.path(n_params, steps) == "numba"
    except TypeError:  # an mlpcli whose path depends on the size alone
        numba_path = fast.path(n_params) == "numba"
    if numba_path:
        import numba

        return f"numba {numba.__version__} kernels"
    return "numpy"  # (asking whether numba is installed would import it, and count its RSS)


def blas_description(n_params: int | None = None, steps: int = 0) -> str:
    """The BLAS NumPy runs (through threadpoolctl where installed) and the engine's path."""
    import numpy as np  # (maps the BLAS into the process)

    text = "BLAS unknown"
    try:
        from threadpoolctl import threadpool_info

        # NumPy's own (from its wheel's numpy.libs) first: SciPy, torch may bring others
        numpy_libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
        found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        found.sort(key=lambda i: Path(i.get("filepath", "")).resolve().parent != numpy_libs)
        for info in found[:1]:
            text = (
                f"BLAS {info.get('internal_api')} {info.get('version')}, "
                f"kernel {info.get('architecture')}, {info.get('num_threads')} threads"
            )
    except ImportError:
        from mlpcli.engine import blas

        text = f"OpenBLAS kernel {blas.kernel() or 'none (not OpenBLAS)'}"
    with contextlib.suppress(ImportError, AttributeError):  # an mlpcli before the MKL path
        from mlpcli.engine import blas

        text += f"; mlpcli's large products on {blas.gemm()}"
    if n_params is not None:
        text += f"; engine path for {n_params:,} parameters: {engine_path(n_params, steps)}"
    with contextlib.suppress(ImportError):
        from mlpcli.engine import fast

        if not fast.available():
            text += "; numba not installed: the NumPy path only"
    return text


class Phases:
    """Per-step time of each phase of mlpcli's step, by wrapping the trainer's calls."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def attach(self, trainer: Any) -> None:
        self._wrap(trainer.model, "forward", "forward")
        self._wrap(trainer.model, "backward", "backward")
        self._wrap(trainer, "loss_fn", "loss")
        self._wrap(trainer, "_step", "step")
        if hasattr(trainer, "_gather"):
            self._wrap(trainer, "_gather", "gather")
        self.trainer = trainer
        self.optimizer: Any = None

    def _wrap(self, obj: Any, attr: str, key: str) -> None:
        inner = getattr(obj, attr)
        totals = self.totals

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

        setattr(obj, attr, timed)

    def reset(self) -> None:
        self.totals.clear()
        # a restart builds a new optimizer: wrap whichever is current
        if self.trainer.optimizer is not self.optimizer:
            self.optimizer = self.trainer.optimizer
            self._wrap(self.optimizer, "step", "optimizer")

    def collect(self, trainer: Any, w: Workload, epochs: list[float]) -> dict[str, float]:
        """Microseconds per step for each phase, over this turn's epochs."""
        import numpy as np

        steps = len(epochs) * -(-w.rows // w.batch)
        per = {k: v / steps * 1e6 for k, v in self.totals.items()}
        if "gather" not in per and hasattr(trainer, "_gather"):
            per["gather"] = 0.0  # small data: batches are slices of a shuffled copy ("rest")
        if "gather" not in per:  # an engine without _gather: time its X[idx] the same way
            X, y = trainer.X["train"], trainer.y["train"]
            order = np.random.default_rng(1).permutation(len(X))
            start = time.perf_counter()
            for b in range(0, len(X), w.batch):
                idx = order[b : b + w.batch]
                X[idx], y[idx]
            per["gather"] = (time.perf_counter() - start) / -(-len(X) // w.batch) * 1e6
        gemm = gemm_seconds(w, steps=50) / 50 * 1e6
        total = sum(epochs) / steps * 1e6
        work = per.get("forward", 0) + per.get("loss", 0) + per.get("backward", 0)
        return {
            "total": total,
            "GEMM": gemm,
            "elementwise": work - gemm,
            "optimizer": per.get("optimizer", 0.0),
            "batching": per["gather"],
            "rest": total - work - per.get("optimizer", 0.0) - per["gather"],
        }


def gemm_seconds(w: Workload, steps: int, state: dict[str, Any] = {}) -> float:  # noqa: B006
    """Time the GEMMs of `steps` training steps: the floor below any engine on OpenBLAS.

    The products run the way mlpcli's engine runs them (mlpcli.engine.blas: one BLAS thread,
    large products split over the cores), or as plain np.matmul for an mlpcli without it.
    """
    import numpy as np

    try:
        from mlpcli.engine.blas import matmul, restore
    except ImportError:

        def matmul(a: Any, b: Any, out: Any) -> Any:
            return np.matmul(a, b, out=out)

        def restore() -> None: ...

    key = (w.name, w.batch)
    if key not in state:
        rng = np.random.default_rng(2)
        arrays = []
        for i, (fi, fo) in enumerate(zip(w.sizes[:-1], w.sizes[1:], strict=True)):
            x = rng.standard_normal((w.batch, fi), dtype=np.float32)
            weight = rng.standard_normal((fi, fo), dtype=np.float32)
            dz = rng.standard_normal((w.batch, fo), dtype=np.float32)
            outs = (np.empty((w.batch, fo), np.float32), np.empty((fi, fo), np.float32))
            dx = np.empty((w.batch, fi), np.float32) if i > 0 else None
            arrays.append((x, weight, dz, outs, dx))
        state[key] = arrays
    start = time.perf_counter()
    for _ in range(steps):
        for x, weight, dz, (z, dw), dx in state[key]:
            matmul(x, weight, z)
            matmul(x.T, dz, dw)
            if dx is not None:
                matmul(dz, weight.T, dx)
    elapsed = time.perf_counter() - start
    restore()
    return elapsed


def run_gemm(turns: Turns, w: Workload, breakdown: bool) -> None:
    sys.path.insert(0, str(ROOT))  # for mlpcli's choice of BLAS threads
    turns.ready()
    steps = -(-w.rows // w.batch)
    while turns.next():
        turns.report([gemm_seconds(w, steps) for _ in range(w.epochs_per_turn)])


def run_torch(turns: Turns, w: Workload, fused: bool, breakdown: bool = False) -> None:
    """A plain PyTorch loop; with `breakdown`, it also reports opt.step()'s share of a step."""
    import torch
    from torch import nn

    torch.set_num_threads(1 if os.environ.get("OMP_NUM_THREADS") == "1" else CORES)
    torch.manual_seed(0)
    turns.ready()
    Xn, yn = synthetic(w)
    X, y = torch.from_numpy(Xn), torch.from_numpy(yn)
    layers: list[nn.Module] = []
    for fi, fo in zip(w.sizes[:-1], w.sizes[1:], strict=True):
        layers += [nn.Linear(fi, fo), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    loss_fn = nn.CrossEntropyLoss()
    params = model.parameters()
    if w.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=LR["adam"], fused=fused or None)
    else:
        opt = torch.optim.SGD(params, lr=LR["momentum"], momentum=0.9, fused=fused or None)
    turns.stats["path"] = f"{type(opt).__name__}, fused" if fused else type(opt).__name__
    while turns.next():
        times, in_step = [], 0.0
        for _ in range(w.epochs_per_turn):
            start = time.perf_counter()
            order = torch.randperm(len(X))
            total_loss, correct = 0.0, 0
            for b in range(0, len(X), w.batch):
                idx = order[b : b + w.batch]
                xb, yb = X[idx], y[idx]
                opt.zero_grad()
                logits = model(xb)
                loss = loss_fn(logits, yb)
                loss.backward()
                before = time.perf_counter()
                opt.step()
                in_step += time.perf_counter() - before
                total_loss += loss.item() * len(idx)
                correct += int((logits.argmax(1) == yb).sum())
            times.append(time.perf_counter() - start)
        steps = len(times) * -(-w.rows // w.batch)
        extra = {"optimizer": in_step / steps * 1e6, "total": sum(times) / steps * 1e6}
        turns.report(times, extra if breakdown else None)


def run_sklearn(turns: Turns, w: Workload, breakdown: bool) -> None:
    import numpy as np
    from sklearn.neural_network import MLPClassifier

    warnings.filterwarnings("ignore")
    turns.ready()
    X, y = synthetic(w)
    common = {"hidden_layer_sizes": w.hidden, "alpha": 0.0, "batch_size": w.batch}
    if w.optimizer == "adam":
        clf = MLPClassifier(solver="adam", learning_rate_init=LR["adam"], random_state=0, **common)
    else:
        clf = MLPClassifier(
            solver="sgd",
            learning_rate_init=LR["momentum"],
            momentum=0.9,
            nesterovs_momentum=False,
            random_state=0,
            **common,
        )
    classes = np.arange(N_CLASSES)
    while turns.next():
        times = []
        for _ in range(w.epochs_per_turn):
            start = time.perf_counter()
            clf.partial_fit(X, y, classes=classes)  # one epoch
            times.append(time.perf_counter() - start)
        turns.report(times)


CORES = os.cpu_count() or 1
CONTENDERS = {
    "mlpcli": run_mlpcli,
    "mlpcli numpy": lambda t, w, b: run_mlpcli(t, w, b, numpy_path=True),
    "mlpcli openblas": lambda t, w, b: run_mlpcli(t, w, b, openblas=True),
    "mlpcli@base": run_mlpcli,
    "pytorch": lambda t, w, b: run_torch(t, w, fused=False, breakdown=b),
    "pytorch fused": lambda t, w, b: run_torch(t, w, fused=True, breakdown=b),
    "sklearn": run_sklearn,
    "GEMM only": run_gemm,
}


def worker(conn: Any, name: str, w: Workload, breakdown: bool, base: str | None) -> None:
    """A contender's process: set up, serve the round robin, send its stats.

    A name ending in " 1 thread" is the same contender with one BLAS / intra-op thread.
    """
    kind = name.removesuffix(" 1 thread")
    if kind == "mlpcli@base" and base:
        sys.path.insert(0, base)
    elif kind.startswith("mlpcli"):
        sys.path.insert(0, str(ROOT))
    if kind != name:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before NumPy is imported in this process
        os.environ["OMP_NUM_THREADS"] = "1"
    turns = Turns(conn, w)
    try:
        CONTENDERS[kind](turns, w, breakdown)
        turns.stats["peak_mb"] = rss_mb("VmHWM")
        turns.stats["data_mb"] = w.rows * w.features * 4 / 2**20
        conn.send(("done", None, turns.stats))
    except Exception as exc:  # report, don't hang the parent
        conn.send(("error", None, {"error": f"{type(exc).__name__}: {exc}"}))


# ----------------------------------------------------------------------------- the parent


@dataclass
class Result:
    name: str
    times: list[float] = field(default_factory=list)
    extras: list[dict[str, float]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


def measure(w: Workload, names: list[str], breakdown: bool, base: str | None) -> list[Result]:
    """Start every contender, then time them epoch by epoch in rotating turns."""
    ctx = mp.get_context("spawn")
    procs, conns, results = [], {}, {n: Result(n) for n in names}
    for name in names:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(child, name, w, breakdown, base), daemon=True)
        proc.start()
        procs.append(proc)
        conns[name] = parent
    live = []
    for name in names:
        kind, _, info = conns[name].recv()
        if kind == "error":
            results[name].error = info["error"]
        else:
            live.append(name)
    for r in range(1 + w.rounds):
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for name in order:
            if results[name].error:
                continue
            conns[name].send("epoch")
            kind, seconds, extra = conns[name].recv()
            if kind == "error":
                results[name].error = extra["error"]
            else:
                note = f"  round {r}/{w.rounds} {name}: {statistics.median(seconds):.3g} s/epoch"
                print(note + (" (warm-up)" if r == 0 else ""), file=sys.stderr, flush=True)
            if kind != "error" and r > 0:  # round 0 warms up caches, allocators, thread pools
                results[name].times += seconds
                if extra:
                    results[name].extras.append(extra)
            time.sleep(0.05)  # let the previous contender's BLAS threads go idle
    for name in live:
        if results[name].error:
            continue
        conns[name].send("done")
        kind, _, stats = conns[name].recv()
        if kind == "error":
            results[name].error = stats["error"]
        results[name].stats = stats
    for proc in procs:
        proc.join(timeout=30)
    return [results[n] for n in names]


def contenders_for(w: Workload, args: argparse.Namespace) -> list[str]:
    names = ["mlpcli"]
    if _fast_path_differs(w):  # the NumPy reference path beside it, when numba is in use
        names.append("mlpcli numpy")
    if _mkl_in_use(w):  # and on NumPy's OpenBLAS, when the workload's products run on MKL
        names.append("mlpcli openblas")
    names += ["mlpcli@base"] if args.baseline else []
    if args.breakdown:  # PyTorch's fused optimizer beside ours: the same update, timed apart
        return names + (["mlpcli@base 1 thread"] if args.baseline else []) + ["pytorch fused"]
    names += ["pytorch", "pytorch fused", "sklearn", "GEMM only"]
    if args.single_thread:
        names += ["mlpcli 1 thread", "pytorch 1 thread"]
    return names


def _mkl_in_use(w: Workload) -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        from mlpcli.engine import blas
    except ImportError:
        return False
    if not getattr(blas, "gemm", lambda: "")().startswith("MKL"):
        return False
    largest = max(w.batch * fi * fo for fi, fo in zip(w.sizes[:-1], w.sizes[1:], strict=True))
    return largest >= blas.MKL_MIN_MACS


def _fast_path_differs(w: Workload) -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        from mlpcli.engine import fast
    except ImportError:
        return False
    return fast.path(w.n_params, w.planned_steps) == "numba"


def table(w: Workload, results: list[Result]) -> list[str]:
    """Rows of the results table for one workload."""
    ours = next(r for r in results if r.name == "mlpcli").median
    gemm = next((r.median for r in results if r.name == "GEMM only"), float("nan"))
    rows = []
    for r in results:
        if r.error:
            rows.append(f"| {w.name} | {r.name} | failed: {r.error} | | | | | |")
            continue
        spread = f"{min(r.times):.3g}-{max(r.times):.3g}"
        gflops = w.flops_per_epoch / r.median / 1e9
        peak = r.stats.get("peak_mb", float("nan")) - r.stats.get("baseline_mb", float("nan"))
        ratio = "" if r.name == "mlpcli" else f"{ours / r.median:.2f}"
        rows.append(
            f"| {w.name} | {r.name} | {r.median:.4g} | {spread} | {ratio} | {gflops:.0f} "
            f"| {100 * gemm / r.median:.0f}% | {peak:.0f} |"
        )
    return rows


def verdicts(w: Workload, results: list[Result]) -> list[str]:
    """The issue's targets for this workload, checked on this run's medians."""
    med = {r.name: r.median for r in results if not r.error}
    ours = med.get("mlpcli", float("nan"))
    checks: list[tuple[str, float, float, str]] = []  # (peer, value, limit, sense)
    if w.name == "W1":
        checks += [("pytorch", ours / med.get("pytorch", float("nan")), 0.9, "<=")]
        checks += [("pytorch fused", ours / med.get("pytorch fused", float("nan")), 1.0, "<=")]
        checks += [("sklearn", med.get("sklearn", float("nan")) / ours, 2.5, ">=")]
    elif w.name == "W2":
        checks += [("pytorch", med.get("pytorch", float("nan")) / ours, 6.0, ">=")]
        checks += [("sklearn", med.get("sklearn", float("nan")) / ours, 3.0, ">=")]
    else:
        checks += [("pytorch", ours / med.get("pytorch", float("nan")), 1.0, "<=")]
        checks += [("pytorch fused", ours / med.get("pytorch fused", float("nan")), 1.0, "<=")]
    lines = []
    for peer, value, limit, sense in checks:
        ok = value <= limit if sense == "<=" else value >= limit
        what = "mlpcli / peer" if sense == "<=" else "peer / mlpcli"
        mark = "PASS" if ok else "FAIL"
        lines.append(f"- {w.name} vs {peer}: {what} = {value:.2f} (target {sense} {limit}): {mark}")
    gemm = med.get("GEMM only", float("nan"))
    if w.name == "W3":  # the GEMM-only floor on the products mlpcli runs, over mlpcli's time
        mark = "PASS" if gemm / ours >= 0.9 else "FAIL"
        lines.append(
            f"- W3 share of the GEMM floor: {100 * gemm / ours:.0f}% (target >= 90%): {mark}"
        )
    ours_r = next((r for r in results if r.name == "mlpcli" and not r.error), None)
    if ours_r is not None:
        lines.append(f"  ({w.name}: mlpcli ran on {ours_r.stats.get('path', '?')})")
    if w.name == "W1" and ours_r is not None:
        over = ours_r.stats["peak_mb"] - ours_r.stats["baseline_mb"] - ours_r.stats["data_mb"]
        mark = "PASS" if over <= 50 else "FAIL"
        lines.append(f"- W1 peak RSS beyond the float32 data: {over:.0f} MB (target <= 50): {mark}")
    return lines


def breakdown_table(w: Workload, results: list[Result]) -> list[str]:
    cols = [r for r in results if r.extras]
    names = {r.name: f"{r.name} ({r.stats.get('path', '?')})" for r in cols}
    keys = ["GEMM", "elementwise", "optimizer", "batching", "rest", "total"]
    lines = [
        f"{w.describe()}: microseconds per step (median over turns), share of the step",
        "",
        "| phase | " + " | ".join(names[r.name] for r in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for k in keys:
        cells = []
        for r in cols:
            if k not in r.extras[0]:  # a peer times only its optimizer and its whole step
                cells.append("")
                continue
            value = statistics.median(e[k] for e in r.extras)
            # the share as the targets take it: the median of each turn's own share
            share = statistics.median(e[k] / e["total"] for e in r.extras)
            cells.append(f"{value:.0f} ({100 * share:.0f}%)")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    ours = next((r for r in cols if r.name == "mlpcli"), None)
    if w.name == "W1" and ours is not None:
        share = statistics.median(e["optimizer"] / e["total"] for e in ours.extras)
        mark = "PASS" if share <= 0.12 else "FAIL"
        lines += [
            "",
            f"Target: the optimizer's share of a W1 step {100 * share:.1f}% (<= 12%): {mark}",
        ]
        peer = next((r for r in cols if r.name == "pytorch fused"), None)
        if peer is not None:
            theirs = statistics.median(e["optimizer"] / e["total"] for e in peer.extras)
            step = statistics.median(e["optimizer"] for e in peer.extras)
            lines.append(f"  (PyTorch's fused Adam: {step:.0f} us, {100 * theirs:.1f}% of a step)")
    return lines


def startup() -> list[str]:
    """`mlpcli --help` must not import NumPy; its time next to `import numpy`."""

    def best_of(cmd: list[str], n: int = 5) -> float:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    py = sys.executable
    trace = subprocess.run(
        [py, "-X", "importtime", "-m", "mlpcli", "--help"], capture_output=True, text=True
    )
    imported = {line.split("|")[-1].strip() for line in trace.stderr.splitlines() if "|" in line}
    numpy_loaded = any(m == "numpy" or m.startswith("numpy.") for m in imported)
    script = Path(py).parent / "mlpcli"  # the installed console script, as a user runs it
    help_s = best_of([str(script), "--help"] if script.exists() else [py, "-m", "mlpcli", "--help"])
    numpy_s = best_of([py, "-c", "import numpy"])
    bare_s = best_of([py, "-c", "pass"])
    return [
        f"- `mlpcli --help`: {help_s:.2f} s; `python -c 'import numpy'`: {numpy_s:.2f} s; "
        f"`python -c pass`: {bare_s:.2f} s (medians of 5)",
        f"- NumPy imported by `mlpcli --help`: {'yes: FAIL' if numpy_loaded else 'no: PASS'}",
    ]


# Set on some shared machines to pin OpenBLAS to an older kernel (Haswell on an AVX-512 CPU
# halves its float32 GEMM rate); to measure the machine as a user has it, run the benchmark
# with both unset: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py
FORCED_BLAS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cpu_model() -> str:
    """The CPU model as lscpu names it, with its family and model numbers (a virtual machine's
    name, such as a bare "AMD EPYC", covers CPUs of several generations); /proc/cpuinfo's
    name where there is no lscpu."""
    with contextlib.suppress(OSError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "Model name" in fields:
            labels = {"CPU family": "family", "Model": "model"}
            numbers = [f"{label} {fields[k]}" for k, label in labels.items() if k in fields]
            return fields["Model name"] + (f" ({', '.join(numbers)})" if numbers else "")
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def handoff_us(pause: float, tries: int = 100) -> float | None:
    """Median microseconds from handing the engine's other thread a block of work
    (mlpcli.engine.blas.parallel) to its starting it, the thread idle `pause` seconds
    before; None on one core. Every parallel region of a step pays this once: it is why the
    engine splits work into few, long blocks."""
    try:
        from mlpcli.engine import blas
    except ImportError:
        return None
    if blas.cores() < 2:
        return None
    started: list[tuple[float, float]] = []  # (handed over, started), by the other thread

    def start(posted: float) -> None:
        if threading.current_thread() is not threading.main_thread():
            started.append((posted, time.perf_counter()))

    for _ in range(tries):
        # this thread sleeps in the first block: the other one takes the second
        blas.parallel(
            [functools.partial(time.sleep, 0.001), functools.partial(start, time.perf_counter())]
        )
        time.sleep(pause)
    return statistics.median(b - a for a, b in started) * 1e6 if started else None


def machine() -> str:
    versions = []
    for mod in ("numpy", "torch", "sklearn"):
        with contextlib.suppress(ImportError):
            versions.append(f"{mod} {__import__(mod).__version__}")
    sys.path.insert(0, str(ROOT))
    versions.append(blas_description())
    forced = [f"{k}={os.environ[k]}" for k in FORCED_BLAS if k in os.environ]
    if forced:
        versions.append(f"forced by {' '.join(forced)}")
    waits = [handoff_us(pause) for pause in (0.0, 0.001)]
    if None not in waits:
        versions.append(
            "handing a block to the other core {:.0f} us back to back, {:.0f} us after 1 ms "
            "idle (medians)".format(*waits)
        )
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {load}, Python {platform.python_version()}, "
        + ", ".join(versions)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 1/5 of W1/W3 rows")
    parser.add_argument("--workloads", default="W1,W2,W3", help="comma-separated: W1,W2,W3")
    parser.add_argument("--rounds", type=int, help="timed rounds per workload")
    parser.add_argument("--breakdown", action="store_true", help="per-step phase breakdown")
    parser.add_argument("--baseline", metavar="DIR", help="also time the mlpcli in DIR")
    parser.add_argument(
        "--single-thread", action="store_true", help="also mlpcli and PyTorch on one thread"
    )
    parser.add_argument(
        "--only",
        help="comma-separated contenders to run (e.g. 'mlpcli,GEMM only'), for a "
        "machine too busy for the whole field",
    )
    args = parser.parse_args()

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    print(f"mlpcli benchmark, {stamp}; {machine()}")
    print(f"command: python benchmarks/bench.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    out_rows: list[str] = []
    notes: list[str] = []
    for key in args.workloads.split(","):
        w = WORKLOADS[key.strip()]
        if args.quick:
            rows = w.rows // 5 if w.rows > 10000 else w.rows
            w = Workload(w.name, rows, w.features, w.hidden, w.batch, w.optimizer, 2, 1)
        if args.rounds:
            w = Workload(**{**w.__dict__, "rounds": args.rounds})
        print(f"{w.describe()} ...", file=sys.stderr, flush=True)
        names = contenders_for(w, args)
        if args.only:
            names = [n for n in names if n in {o.strip() for o in args.only.split(",")}]
        results = measure(w, names, args.breakdown, args.baseline)
        if args.breakdown:
            print("\n".join(breakdown_table(w, results)) + "\n", flush=True)
            continue
        out_rows += table(w, results)
        notes += verdicts(w, results)
        notes.append(f"  ({w.describe()}; {w.rounds} timed rounds)")
    if args.breakdown:
        return
    print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print(
        "| workload | contender | s/epoch (median) | range | mlpcli ÷ this | GFLOP/s "
        "| % of GEMM peak | peak RSS over baseline, MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(out_rows))
    print()
    print("Targets:")
    print("\n".join(notes + startup()))


if __name__ == "__main__":
    main()
