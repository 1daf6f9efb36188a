#!/usr/bin/env python3
"""Rebuild the pictures of docs/tour.md by running the tour's commands.

    python docs/make_tour.py                      # every claim, pictures into docs/img/
    python docs/make_tour.py --only 4 9           # some claims
    python docs/make_tour.py --quick --out /tmp/img   # CI: fewer epochs and seeds, same files
    python docs/make_tour.py --reports docs/reports   # and one `mlpcli report` page per claim

Each mlpcli command is printed (`$ mlpcli ...`) before it runs, then its output; what the
script computes itself from a run (a sum, a mean, a plot of metrics.csv) is printed as a
`# python:` line. Runs go to a temporary folder that is deleted afterwards (--runs DIR keeps
them). Needs matplotlib: pip install ".[plot]" in the clone.
"""

import argparse
import contextlib
import csv
import itertools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "configs" / "tour"

# The pictures each claim makes, in docs/img/ (tests/test_tour.py checks every one).
IMAGES: dict[int, list[str]] = {
    1: ["01-softmax.png"],
    2: ["02-cross-entropy.png"],
    3: ["03-regression.png"],
    4: ["04-boundary-identity.png", "04-boundary-relu.png", "04-boundary-tanh.png"],
    5: ["05-vanishing-gradients.png"],
    6: ["06-batch-size.png"],
    7: ["07-early-stopping.png"],
    8: ["08-xor-restarts.png", "08-xor-stuck.png", "08-xor-solved.png"],
    9: ["09-momentum.png"],
    10: ["10-optimizers.png", "10-schedules.png"],
}

# The run folders (under the runs folder) each claim's `mlpcli report` page shows (--reports).
REPORTS: dict[int, list[str]] = {
    1: ["01"],
    2: ["01"],
    3: ["03"],
    4: ["04"],
    5: ["05"],
    6: ["06"],
    7: ["07"],
    8: ["08"],
    9: ["09"],
    10: ["10", "10-schedules"],
}

SIZE = (8.0, 5.0)  # inches at DPI: 800 x 500 pixels
DPI = 100


class Tour:
    """Runs mlpcli commands for one claim, prints them, and saves pictures."""

    def __init__(self, runs: Path, out: Path, quick: bool) -> None:
        self.runs, self.out, self.quick = runs, out, quick
        self.env = {
            **os.environ,
            "NO_COLOR": "1",
            "COLUMNS": "120",
            # Tiny matrices: one BLAS thread is faster, and far faster on a busy machine.
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "1"),
        }

    def pick(self, full: Any, quick: Any) -> Any:
        """The full tour's value, or the quick (CI) one."""
        return quick if self.quick else full

    def mlpcli(self, *args: Any, ok: tuple[int, ...] = (0,)) -> str:
        """Run `mlpcli ARGS`, print it and its output; its stdout."""
        words = [_show(a) for a in args]
        print(f"$ mlpcli {shlex.join(words)}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "mlpcli", *map(str, args)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        text = (done.stdout + done.stderr).rstrip()
        if text:
            print(text, flush=True)
        print(flush=True)
        if done.returncode not in ok:
            raise SystemExit(f"make_tour: exit code {done.returncode} from: mlpcli {args[0]}")
        return done.stdout

    def train(self, config: str, *args: Any) -> Path:
        """`mlpcli train configs/tour/CONFIG --quiet ...`; the run directory."""
        stdout = self.mlpcli("train", TOUR / config, "--quiet", *args)
        return ROOT / _line_after(stdout, "run directory:")

    def grid(self, config: str, *args: Any) -> Path:
        """`mlpcli train configs/tour/CONFIG --grid ... --quiet`; the grid folder."""
        stdout = self.mlpcli("train", TOUR / config, "--quiet", *args)
        return ROOT / _line_after(stdout, "grid folder:")

    def python(self, what: str) -> None:
        print(f"# python: {what}", flush=True)

    def save(self, fig: Any, name: str) -> None:
        path = self.out / name
        fig.savefig(path, dpi=DPI)
        self.python(f"wrote {_show(path)} ({path.stat().st_size // 1024} KB)")
        print(flush=True)


def _show(arg: Any) -> str:
    """A path relative to the repository (or the runs folder) for printing."""
    text = str(arg)
    with contextlib.suppress(ValueError):
        return str(Path(text).relative_to(ROOT))
    return text


def _line_after(stdout: str, prefix: str) -> str:
    for line in stdout.splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    raise SystemExit(f"make_tour: no '{prefix}' line in the output above")


def read_metrics(run: Path) -> list[dict[str, float]]:
    with (run / "metrics.csv").open(newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def runs_in(folder: Path) -> list[Path]:
    return sorted(p.parent for p in folder.rglob("summary.json"))


def figure(cols: int = 1, size: tuple[float, float] = SIZE) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(1, cols, squeeze=False)[0]


def column(rows: list[dict[str, float]], key: str) -> list[float]:
    return [r[key] for r in rows]


# ----------------------------------------------------------------------------- the claims


def claim_1(t: Tour) -> None:
    """Softmax: probabilities that sum to 1, with a clear winner."""
    import numpy as np

    from mlpcli.evaluate import file_rows, load_model

    run = t.train("softmax-iris.yaml", "--runs-dir", t.runs / "01", *_epochs(t, 20))
    flowers = TOUR / "iris-5-flowers.csv"
    text = t.mlpcli("predict", run, "--data", flowers, "--proba")
    lines = list(csv.reader(text.splitlines()))
    classes, probs = lines[0], np.array(lines[1:], dtype=float)
    t.python("row sums of the probabilities: " + ", ".join(f"{s:.6f}" for s in probs.sum(1)))
    saved = load_model(run)
    logits = saved.logits(file_rows(saved, flowers, need_target=True).X)
    t.python("logits = load_model(run).logits(rows)  # the output layer before softmax")
    for row in logits:
        print("  " + "  ".join(f"{v:8.3f}" for v in row))
    truth = [classes[int(r[-1])] for r in list(csv.reader(flowers.read_text().splitlines()))[1:]]
    labels = [f"flower {i + 1}\n({name})" for i, name in enumerate(truth)]

    fig, (left, right) = figure(2)
    x = np.arange(len(labels))
    width = 0.8 / len(classes)
    colours = [f"C{k}" for k in range(len(classes))]
    for k, name in enumerate(classes):
        left.bar(x + (k - 1) * width, logits[:, k], width, color=colours[k], label=name)
    left.axhline(0, color="black", linewidth=0.6)
    left.set_title("output layer: logits (any real numbers)", fontsize="medium")
    bottom = np.zeros(len(labels))
    for k, name in enumerate(classes):
        right.bar(x, probs[:, k], 0.6, bottom=bottom, color=colours[k], label=name)
        bottom += probs[:, k]
    for i, row in enumerate(probs):
        k = int(row.argmax())
        right.text(i, 1.02, f"{row[k]:.2f}", ha="center", fontsize="small", color=colours[k])
    right.set_ylim(0, 1.1)
    right.set_title("after softmax: probabilities, each bar sums to 1", fontsize="medium")
    for ax in (left, right):
        ax.set_xticks(x, labels, fontsize="small")
    left.legend(fontsize="small")
    fig.suptitle("softmax turns logits into probabilities (5 iris flowers)")
    t.save(fig, "01-softmax.png")


def claim_2(t: Tour) -> None:
    """Cross-entropy is the mean of -log p(true class)."""
    import numpy as np

    run = _latest(t.runs / "01") or t.train(
        "softmax-iris.yaml", "--runs-dir", t.runs / "01", *_epochs(t, 20)
    )
    iris = ROOT / "datasets" / "iris.csv"
    report = json.loads(t.mlpcli("eval", run, "--data", iris, "--json"))
    probs_csv = t.runs / "02-iris-proba.csv"
    t.mlpcli("predict", run, "--data", iris, "--proba", "--out", probs_csv)
    with probs_csv.open(newline="") as f:
        probs = np.array(list(csv.reader(f))[1:], dtype=float)
    with iris.open(newline="") as f:
        target = np.array([int(r["target"]) for r in csv.DictReader(f)])
    p_true = probs[np.arange(len(target)), target]
    mean_nll = float(np.mean(-np.log(p_true)))
    loss = report["metrics"]["loss"]
    t.python(f"mean of -log p(true class) over {len(target)} rows: {mean_nll:.6f}")
    t.python(f"loss printed by mlpcli eval:                    {loss:.6f}")

    fig, (ax,) = figure()
    p = np.linspace(0.005, 1, 400)
    ax.plot(p, -np.log(p), color="grey", linewidth=1, label="-log p")
    for k in np.unique(target):
        mine = target == k
        ax.scatter(
            p_true[mine],
            -np.log(p_true[mine]),
            s=18,
            color=f"C{k}",
            zorder=3,
            label=f"true class {report['confusion_matrix']['labels'][k]}",
        )
    ax.axhline(loss, color="C3", linestyle="--", label=f"mlpcli's loss {loss:.4f}")
    ax.axhline(mean_nll, color="black", linestyle=":", label=f"mean of -log p(true) {mean_nll:.4f}")
    ax.set_xlabel("p(true class), from predict --proba")
    ax.set_ylabel("-log p(true class)")
    ax.set_ylim(-0.1, 3)
    ax.legend()
    ax.set_title(f"iris, {len(target)} flowers: one point each", fontsize="medium")
    fig.suptitle("cross-entropy = mean negative log-likelihood of the true class")
    t.save(fig, "02-cross-entropy.png")


def claim_3(t: Tour) -> None:
    """Regression: MSE loss with a linear output."""
    import numpy as np

    from mlpcli.evaluate import load_model, run_split

    # Full length even with --quick (about a second): tests/test_tour.py checks the numbers
    # docs/tour.md shows for this claim against what the script prints.
    run = t.train("regression-diabetes.yaml", "--runs-dir", t.runs / "03")
    report = json.loads(t.mlpcli("eval", run, "--json"))
    saved = load_model(run)
    rows = run_split(saved, "test")
    assert rows.y is not None
    pred = saved.logits(rows.X)[:, 0]
    true = rows.y[:, 0]
    t.python(
        f"test split: mean((pred - y)**2) = {np.mean((pred - true) ** 2):.2f}; "
        f"predictions range {pred.min():.1f} .. {pred.max():.1f}"
    )
    train = run_split(saved, "train")
    assert train.y is not None
    ones = np.ones((len(train.X), 1))
    w = np.linalg.lstsq(np.hstack([train.X, ones]), train.y[:, 0], rcond=None)[0]
    line = np.hstack([rows.X, np.ones((len(rows.X), 1))]) @ w
    r2_line = 1 - np.sum((true - line) ** 2) / np.sum((true - true.mean()) ** 2)
    t.python(f"a least-squares line fitted on the train split: test R² {r2_line:.2f}")
    metrics = read_metrics(run)

    fig, (left, right) = figure(2)
    left.scatter(true, pred, s=16, alpha=0.8)
    lo, hi = min(true.min(), pred.min()), max(true.max(), pred.max())
    left.plot([lo, hi], [lo, hi], color="grey", linewidth=1, label="prediction = truth")
    m = report["metrics"]
    left.set_title(
        f"test split: MSE {m['mse']:.0f}, R² {m['r2']:.2f} ({report['rows']} patients)",
        fontsize="medium",
    )
    left.set_xlabel("true disease progression")
    left.set_ylabel("predicted (linear output)")
    left.legend(fontsize="small")
    epochs = column(metrics, "epoch")
    right.plot(epochs, column(metrics, "train_loss"), label="train")
    right.plot(epochs, column(metrics, "val_loss"), "--", label="val")
    best = read_summary(run)["best_epoch"]
    right.axvline(best, color="grey", linestyle=":", label=f"best epoch {best}")
    right.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("loss = MSE")
    right.legend(fontsize="small")
    right.set_title("the loss is the mean squared error", fontsize="medium")
    fig.suptitle("regression: a linear output unit and the MSE loss (diabetes)")
    t.save(fig, "03-regression.png")


def claim_4(t: Tour) -> None:
    """Hidden layers need a non-linear activation."""
    folder = t.runs / "04"
    runs = {}
    for act in ("identity", "relu", "tanh"):
        runs[act] = t.train(
            "activations-spirals.yaml",
            "--runs-dir",
            folder,
            "--name",
            act,
            "--set",
            f"model.hidden.0.activation={act}",
            "--set",
            f"model.hidden.1.activation={act}",
            *_epochs(t, 30),
        )
    t.mlpcli("compare", folder)
    for act, run in runs.items():
        t.mlpcli("eval", run, "--plot", t.out / f"04-boundary-{act}.png")


def claim_5(t: Tour) -> None:
    """Backprop: gradcheck, and gradient norms layer by layer (vanishing with sigmoid)."""
    t.mlpcli("gradcheck", TOUR / "deep-relu.yaml")
    folder = t.runs / "05"
    runs = {
        act: t.train(f"deep-{act}.yaml", "--runs-dir", folder, *_epochs(t, 5))
        for act in ("sigmoid", "relu")
    }
    t.mlpcli("compare", folder)
    fig, (left, right) = figure(2)
    for k, (act, run) in enumerate(runs.items()):
        metrics = read_metrics(run)
        first = metrics[0]
        n = len([key for key in first if key.endswith(".grad_norm")])
        norms = [first[f"layers.{i}.grad_norm"] for i in range(n)]
        t.python(
            f"{act}: epoch 1 weight-gradient norm per layer (first hidden -> output): "
            + " ".join(f"{v:.1e}" for v in norms)
        )
        moved = [
            metrics[-1][f"layers.{i}.weight_norm"] - first[f"layers.{i}.weight_norm"]
            for i in range(n)
        ]
        t.python(
            f"{act}: change of each layer's weight norm from epoch 1 to {len(metrics)}: "
            + " ".join(f"{v:+.1e}" for v in moved)
        )
        left.plot(range(1, n + 1), norms, "o-", color=f"C{k}", label=act)
        right.plot(column(metrics, "epoch"), column(metrics, "val_accuracy"), color=f"C{k}")
    left.set_yscale("log")
    left.set_xticks(range(1, n + 1), [*(f"h{i}" for i in range(1, n)), "out"])
    left.set_xlabel("layer (backprop runs right to left)")
    left.set_ylabel("|gradient of the weights| after epoch 1")
    left.legend(title="6 hidden layers of 16")
    left.set_title("the signal reaching each layer", fontsize="medium")
    right.set_xlabel("epoch")
    right.set_ylabel("val accuracy")
    right.set_ylim(0, 1)
    right.set_title("learning (digits, 10 classes)", fontsize="medium")
    fig.suptitle("vanishing gradients: sigmoid vs relu in a deep, narrow network")
    t.save(fig, "05-vanishing-gradients.png")


def claim_6(t: Tour) -> None:
    """Full batch vs mini-batch vs single examples: per epoch and per second."""
    folder = t.grid(
        "batch-size.yaml",
        "--runs-dir",
        t.runs / "06",
        "--grid",
        "training.batch_size=1,32,1797",
        "--jobs",
        "1",
        *_epochs(t, 5),
    )
    fig, (left, right) = figure(2)
    runs = sorted(runs_in(folder), key=lambda r: _config(r)["training"]["batch_size"])
    for k, run in enumerate(runs):
        batch = _config(run)["training"]["batch_size"]
        metrics = read_metrics(run)
        label = {1: "1 (stochastic)", 1797: "1797 (full batch)"}.get(batch, f"{batch} (mini-batch)")
        per_epoch = column(metrics, "seconds")
        seconds = list(itertools.accumulate(per_epoch))
        t.python(
            f"batch size {batch}: {math.ceil(1257 / batch)} steps per epoch, "
            f"median {sorted(per_epoch)[len(per_epoch) // 2]:.4f} s per epoch, "
            f"{seconds[-1]:.3f} s for {len(metrics)} epochs"
        )
        loss = column(metrics, "train_loss")
        left.plot(column(metrics, "epoch"), loss, "o-", ms=3, color=f"C{k}", label=label)
        right.plot(seconds, loss, "o-", ms=3, color=f"C{k}", label=label)
    left.set_xlabel("epoch (one pass over the 1257 training rows)")
    right.set_xlabel("seconds of training (this machine)")
    right.set_xscale("log")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_ylabel("train loss (mean over the epoch)")
    left.legend(title="batch size", fontsize="small")
    fig.suptitle("gradient descent on the whole set, on mini-batches, on single rows (digits)")
    t.save(fig, "06-batch-size.png")


def claim_7(t: Tour) -> None:
    """Early stopping: stop on a plateau, keep the best epoch."""
    run = t.train("early-stopping.yaml", "--runs-dir", t.runs / "07")
    summary = read_summary(run)
    t.python(
        f"summary.json: status {summary['status']}, best_epoch {summary['best_epoch']}, "
        f"epochs_run {summary['epochs_run']}: {summary['reason']}"
    )
    metrics = read_metrics(run)
    epochs = column(metrics, "epoch")
    best, last = summary["best_epoch"], summary["epochs_run"]
    fig, (ax,) = figure()
    ax.plot(epochs, column(metrics, "train_loss"), label="train loss")
    ax.plot(epochs, column(metrics, "val_loss"), "--", label="val loss")
    ax.axvline(best, color="C2", label=f"best epoch {best}: weights kept")
    ax.axvspan(best, last, color="grey", alpha=0.15, label=f"patience: {last - best} epochs")
    val_best = metrics[best - 1]["val_loss"]
    ax.plot([best], [val_best], "o", color="C2")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE)")
    ax.legend()
    ax.set_title(f"stopped after epoch {last} of up to 1000", fontsize="medium")
    fig.suptitle("early stopping: the validation loss stops improving, training stops")
    t.save(fig, "07-early-stopping.png")


def claim_8(t: Tour) -> None:
    """Poor local minima on XOR, and restarts."""
    t.train(
        "xor-restarts.yaml",
        "--runs-dir",
        t.runs / "08-one",
        "--set",
        f"training.restarts={t.pick(10, 3)}",
        *_epochs(t, 30),
    )
    seeds, many = t.pick(20, 2), t.pick(10, 3)
    folder = t.grid(
        "xor-restarts.yaml",
        "--runs-dir",
        t.runs / "08",
        "--grid",
        f"training.restarts=1,{many}",
        "--repeat",
        seeds,
        "--jobs",
        "2",
        *_epochs(t, 30),
    )
    solved: dict[int, list[int]] = {1: [], many: []}
    stuck: dict[int, list[int]] = {1: [], many: []}
    accuracy: dict[tuple[int, int], float] = {}
    for run in runs_in(folder):
        cfg = _config(run)
        restarts, seed = cfg["training"]["restarts"], cfg["seed"]
        acc = read_summary(run)["final"]["test"]["accuracy"]
        accuracy[restarts, seed] = acc
        (solved if acc == 1.0 else stuck)[restarts].append(seed)
    for restarts in (1, many):
        t.python(
            f"restarts={restarts}: {len(solved[restarts])} of {seeds} seeds solve XOR "
            f"(test accuracy 1.00); stuck: seeds {sorted(stuck[restarts]) or 'none'}"
        )
    fig, (ax,) = figure(size=(8.0, 4.0))
    for row, restarts in enumerate((1, many)):
        for seed in range(seeds):
            acc = accuracy.get((restarts, seed), math.nan)
            ax.scatter(seed, row, s=120, marker="s", color="C2" if acc == 1.0 else "C3")
            ax.text(seed, row - 0.25, f"{acc:.2f}", ha="center", fontsize=7)
        n = len(solved[restarts])
        ax.text(seeds - 0.3, row, f"  {n}/{seeds} solved", va="center")
    ax.set_yticks([0, 1], ["restarts: 1", f"restarts: {many}"])
    ax.set_xticks(range(seeds))
    ax.set_xlabel("seed (green: test accuracy 1.00, red: stuck)")
    ax.set_xlim(-0.7, seeds + 2.5)
    ax.set_ylim(-0.6, 1.5)
    fig.suptitle(f"XOR with a 2-2-1 network: one start gets stuck, the best of {many} does not")
    t.save(fig, "08-xor-restarts.png")
    # The decision regions of one stuck seed, and of the same seed with restarts.
    seed = min(stuck[1]) if stuck[1] else 0
    by_key = {(_config(r)["training"]["restarts"], _config(r)["seed"]): r for r in runs_in(folder)}
    t.mlpcli("eval", by_key[1, seed], "--plot", t.out / "08-xor-stuck.png")
    t.mlpcli("eval", by_key[many, seed], "--plot", t.out / "08-xor-solved.png")


def claim_9(t: Tour) -> None:
    """Oscillation with a large step; momentum and nesterov damp it."""
    folder = t.runs / "09"
    runs = {}
    for name, optimizer, lr in (
        ("sgd-lr0.2", "sgd", 0.2),
        ("sgd-lr0.05", "sgd", 0.05),
        ("momentum-lr0.02", "momentum", 0.02),
        ("nesterov-lr0.02", "nesterov", 0.02),
    ):
        runs[name] = t.train(
            "oscillation.yaml",
            "--runs-dir",
            folder,
            "--name",
            name,
            "--set",
            f"optimizer.name={optimizer}",
            "--set",
            f"optimizer.lr={lr}",
            *_epochs(t, 30),
        )
    t.mlpcli("compare", folder)
    fig, (ax,) = figure()
    for k, (name, run) in enumerate(runs.items()):
        metrics = read_metrics(run)
        loss = column(metrics, "train_loss")
        ups = sum(b > a for a, b in itertools.pairwise(loss))
        t.python(f"{name}: the train loss went up on {ups} of {len(loss) - 1} steps")
        label = f"{name.replace('-lr', ', lr ')}: {ups} steps up"
        ax.plot(column(metrics, "epoch"), loss, color=f"C{k}", linewidth=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch = one full-batch step")
    ax.set_ylabel("train loss")
    ax.legend(title="optimizer, learning rate (momentum 0.9)")
    ax.set_title("iris, features left unstandardised: a ravine", fontsize="medium")
    fig.suptitle("a large step oscillates across the ravine; momentum damps it")
    t.save(fig, "09-momentum.png")


def claim_10(t: Tour) -> None:
    """Adam adapts the step per parameter; schedules as a last touch."""
    folder = t.grid(
        "optimizers.yaml",
        "--runs-dir",
        t.runs / "10",
        "--grid",
        "optimizer.name=sgd,momentum,adam",
        *_epochs(t, 8),
    )
    t.mlpcli("compare", folder, "--plot", t.out / "10-optimizers.png")
    folder = t.grid(
        "optimizers.yaml",
        "--runs-dir",
        t.runs / "10-schedules",
        "--set",
        "optimizer.name=momentum",
        "--set",
        "optimizer.lr=0.1",
        "--grid",
        "training.schedule.name=constant,cosine",
        *_epochs(t, 8),
    )
    fig, (left, right) = figure(2)
    for k, run in enumerate(sorted(runs_in(folder))):
        name = _config(run)["training"]["schedule"]["name"]
        metrics = read_metrics(run)
        epochs = column(metrics, "epoch")
        t.python(
            f"{name}: val loss at the last epoch {metrics[-1]['val_loss']:.4f}, "
            f"lowest {min(column(metrics, 'val_loss')):.4f}"
        )
        left.plot(epochs, column(metrics, "lr"), color=f"C{k}", label=name)
        right.plot(epochs, column(metrics, "train_loss"), color=f"C{k}", label=f"{name}: train")
        right.plot(epochs, column(metrics, "val_loss"), "--", color=f"C{k}", label=f"{name}: val")
    left.set_ylabel("learning rate")
    left.set_title("the schedule", fontsize="medium")
    left.legend()
    right.set_yscale("log")
    right.set_ylabel("loss")
    right.set_title("momentum 0.9, lr 0.1", fontsize="medium")
    right.legend(fontsize="small")
    for ax in (left, right):
        ax.set_xlabel("epoch")
    fig.suptitle("a learning-rate schedule: big steps first, small steps to settle (digits)")
    t.save(fig, "10-schedules.png")


CLAIMS: dict[int, Callable[[Tour], None]] = {
    1: claim_1,
    2: claim_2,
    3: claim_3,
    4: claim_4,
    5: claim_5,
    6: claim_6,
    7: claim_7,
    8: claim_8,
    9: claim_9,
    10: claim_10,
}


def _epochs(t: Tour, quick: int) -> list[str]:
    """--set training.epochs=N in quick mode; nothing (the config's epochs) otherwise."""
    return ["--set", f"training.epochs={quick}"] if t.quick else []


def _config(run: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


def _latest(folder: Path) -> Path | None:
    runs = runs_in(folder) if folder.exists() else []
    return runs[-1] if runs else None


@contextlib.contextmanager
def runs_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    folder = Path(tempfile.mkdtemp(prefix="mlpcli-tour-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and seeds (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="picture folder")
    parser.add_argument("--runs", type=Path, help="keep the runs in this folder")
    parser.add_argument("--only", type=int, nargs="+", choices=sorted(CLAIMS), help="claims")
    parser.add_argument(
        "--reports",
        type=Path,
        help="also write each claim's `mlpcli report` page here, NN.html (needs plotly)",
    )
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('make_tour needs matplotlib: pip install ".[plot]" in the clone', file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    claims = args.only or sorted(CLAIMS)
    with runs_folder(args.runs) as runs:
        tour = Tour(runs, args.out.resolve(), args.quick)
        for number in claims:
            print(f"## claim {number}: {CLAIMS[number].__doc__}\n", flush=True)
            CLAIMS[number](tour)
            if args.reports is not None:
                args.reports.mkdir(parents=True, exist_ok=True)
                folders = [runs / name for name in REPORTS[number]]
                tour.mlpcli("report", *folders, "--out", args.reports / f"{number:02d}.html")
    print(f"# done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
