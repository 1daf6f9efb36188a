"""Terminal output: progress while training and the tables shown afterwards.

Progress goes to stderr: rich bars on a terminal, one plain line per epoch otherwise
(CI logs), nothing with --quiet. Rich honours NO_COLOR by itself.
"""

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from mlpcli.train import Callback, EpochRecord, Trainer, TrainResult

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


class DownloadBar:
    """A download's progress on stderr: a rich bar on a terminal, a few plain lines otherwise.

    Called by the data layer as `bar(bytes_so_far, total_or_None)`.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Progress | None = None
        self.task: Any = None
        self.next_report = 0.0  # plain mode: the next fraction (in quarters) to report

    def __enter__(self) -> "DownloadBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int | None) -> None:
        if not stderr.is_terminal:
            self._plain(done, total)
            return
        if self.progress is None:
            self.progress = Progress(
                TextColumn(f"[bold]downloading {self.label}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=stderr,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def _plain(self, done: int, total: int | None) -> None:
        if done == 0:
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            print(f"downloading {self.label}{size}", file=sys.stderr, flush=True)
        elif total and done / total >= self.next_report:
            print(f"  {100 * done // total}%", file=sys.stderr, flush=True)
        if total:
            while done / total >= self.next_report:
                self.next_report += 0.25


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
