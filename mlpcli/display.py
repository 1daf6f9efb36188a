"""Terminal output: progress while training and the tables shown afterwards.

Progress goes to stderr: rich bars on a terminal, one plain line per epoch otherwise
(CI logs), nothing with --quiet. Rich honours NO_COLOR by itself.
"""

import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlpcli.train import Callback, EpochRecord, Trainer, TrainResult

if TYPE_CHECKING:
    from mlpcli.evaluate import EvalReport

stderr = Console(stderr=True)
stdout = Console()


def progress_callback(quiet: bool) -> Callback | None:
    """The right progress reporter for where stderr goes."""
    if quiet:
        return None
    return RichProgress() if stderr.is_terminal else PlainProgress()


def _fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())


class PlainProgress(Callback):
    """One line per epoch on stderr."""

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        t = trainer.cfg.training
        restart = f"restart {record.restart}/{t.restarts}  " if t.restarts > 1 else ""
        best = "  *" if record.is_best else ""
        print(
            f"{restart}epoch {record.epoch}/{t.epochs}  {_fmt(record.metrics)}  "
            f"lr {record.lr:.3g}  {record.seconds:.2f}s{best}",
            file=sys.stderr,
            flush=True,
        )

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        print(f"{result.status}: {result.reason}", file=sys.stderr, flush=True)


class RichProgress(Callback):
    """An epoch bar with live metrics and a batch bar, redrawn a few times a second."""

    REFRESH_SECONDS = 0.1

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=stderr,
        )
        self.epochs: Any = None
        self.batches: Any = None
        self.last_draw = 0.0

    def on_train_start(self, trainer: Trainer) -> None:
        self.progress.start()

    def on_restart_start(self, trainer: Trainer, restart: int) -> None:
        t = trainer.cfg.training
        label = f"restart {restart}/{t.restarts}" if t.restarts > 1 else "epochs"
        if self.epochs is not None:
            self.progress.remove_task(self.epochs)
            self.progress.remove_task(self.batches)
        self.epochs = self.progress.add_task(label, total=t.epochs, metrics="")
        self.batches = self.progress.add_task("batches", total=None, metrics="")

    def on_batch_end(self, trainer: Trainer, batch: int, n_batches: int) -> None:
        now = time.monotonic()
        if now - self.last_draw >= self.REFRESH_SECONDS or batch == n_batches:
            self.last_draw = now
            self.progress.update(self.batches, completed=batch, total=n_batches)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        self.progress.update(self.epochs, completed=record.epoch, metrics=_fmt(record.metrics))

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.progress.stop()
        stderr.print(f"[bold]{result.status}[/]: {result.reason}")


def result_table(result: TrainResult) -> Table:
    """Final metrics of the kept model, one row per split."""
    table = Table(title="final metrics (best model)")
    table.add_column("split")
    names = sorted({k for m in result.final.values() for k in m}, key=lambda k: k != "loss")
    for name in names:
        table.add_column(name, justify="right")
    for split in ("train", "val", "test"):
        if split in result.final:
            table.add_row(
                split, *(f"{result.final[split].get(n, float('nan')):.4f}" for n in names)
            )
    return table


def restart_table(result: TrainResult) -> Table:
    """One row per restart: its best monitored value and when it was reached."""
    table = Table(title=f"restarts ({result.monitor})")
    for col in ("restart", "best", "at epoch", "epochs run"):
        table.add_column(col, justify="right")
    for r in result.restarts:
        mark = " *" if r.restart == result.best_restart else ""
        table.add_row(
            f"{r.restart}{mark}", f"{r.best_value:.4f}", str(r.best_epoch), str(r.epochs_run)
        )
    return table


def key_value_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, str(value))
    return table


def rows_table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def gradcheck_table(checks: list[Any], tolerance: float) -> Table:
    """Per parameter: analytic gradient norm and relative error against finite differences."""
    table = Table(title="gradient check (float64, central differences)")
    for col in ("parameter", "shape", "|grad|", "relative error", ""):
        table.add_column(col, justify="left" if col in ("parameter", "") else "right")
    for c in checks:
        verdict = "[green]ok[/]" if c.relative_error < tolerance else "[red]FAIL[/]"
        shape = "x".join(map(str, c.shape))
        table.add_row(c.name, shape, f"{c.grad_norm:.3e}", f"{c.relative_error:.2e}", verdict)
    return table


def close_progress(progress: Callback | None) -> None:
    """Take live bars off the terminal when training ended without `on_train_end`."""
    if isinstance(progress, RichProgress):
        progress.progress.stop()


METRIC_LABELS = {"mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def eval_tables(report: "EvalReport") -> list[RenderableType]:
    """`mlpcli eval` output: what was scored, the metrics, per-class scores, confusion matrix."""
    out: list[RenderableType] = [
        f"[bold]{escape(report.checkpoint)}[/] on {escape(report.data)} ({report.rows} rows)",
        key_value_table(
            "metrics", [(METRIC_LABELS.get(k, k), f"{v:.4f}") for k, v in report.metrics.items()]
        ),
    ]
    if report.task != "classification":
        return out
    scores = Table(title="per class")
    scores.add_column("class")
    for col in ("precision", "recall", "f1", "support"):
        scores.add_column(col, justify="right")
    for row in report.per_class:
        scores.add_row(
            escape(row["class"]),
            *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")),
            str(row["support"]),
        )
    scores.add_section()
    for name, avg in report.averages.items():
        scores.add_row(
            f"[italic]{name.replace('_', ' ')}[/]",
            *(f"{avg[k]:.4f}" for k in ("precision", "recall", "f1")),
            str(avg["support"]),
        )
    out.append(scores)
    assert report.class_names is not None and report.confusion is not None
    out.append(confusion_table(report.class_names, report.confusion))
    return out


def confusion_table(class_names: list[str], counts: list[list[int]]) -> Table:
    """Rows: the true class; columns: the predicted class; the diagonal is right."""
    table = Table(title="confusion matrix (rows: true, columns: predicted)")
    table.add_column("true \\ predicted", style="bold")
    for name in class_names:
        table.add_column(escape(name), justify="right")
    for i, (name, row) in enumerate(zip(class_names, counts, strict=True)):
        cells = [
            f"[green]{n}[/]" if i == j else (f"[red]{n}[/]" if n else "0")
            for j, n in enumerate(row)
        ]
        table.add_row(escape(name), *cells)
    return table
