"""Terminal output: progress while training and the tables shown afterwards.

Progress goes to stderr: rich bars on a terminal, one plain line per epoch otherwise
(CI logs), nothing with --quiet. Rich honours NO_COLOR by itself.
"""

import math
import statistics
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from mlpcli.status import RunStatus
from mlpcli.train import Callback, EpochRecord, Trainer, TrainResult

if TYPE_CHECKING:
    from mlpcli.checks import GradcheckPlan
    from mlpcli.compare import Comparison
    from mlpcli.data.inspect import Inspection
    from mlpcli.evaluate import EvalReport
    from mlpcli.grid import GridOutcome, GridPlan
    from mlpcli.tune import Study, TrialInfo

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


def live_metrics(metrics: dict[str, float], width: int) -> str:
    """The epoch's metrics in at most `width` characters: all of them, else shorter names,
    else the validation ones, else the losses; a narrow terminal drops, it never folds."""
    names = {k: k.replace("accuracy", "acc") for k in metrics}
    val = {k: v for k, v in metrics.items() if k.startswith("val_")} or metrics
    losses = {k: v for k, v in val.items() if k.endswith("_loss")} or val
    candidates = [
        _fmt(metrics),
        "  ".join(f"{names[k]} {v:.4f}" for k, v in metrics.items()),
        " ".join(f"{names[k]} {v:.4f}" for k, v in val.items()),
        " ".join(f"{names[k]} {v:.4f}" for k, v in losses.items()),
    ]
    return next((text for text in candidates if len(text) <= width), candidates[-1])


class RichProgress(Callback):
    """An epoch bar with live metrics and a batch bar, redrawn a few times a second.

    Laid out for the terminal's width: the label, bar, count and time keep their room
    (the bar shrinks on narrow terminals) and the metrics get what is left (`live_metrics`).
    """

    REFRESH_SECONDS = 0.1

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or stderr
        width = self.console.width
        self.bar_width = 20 if width >= 70 else 10
        self.progress = Progress(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=self.bar_width),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            TextColumn(
                "{task.fields[metrics]}",
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
            ),
            console=self.console,
        )
        self.label_width = 7  # "batches", or "restart k/n"
        self.epochs: Any = None
        self.batches: Any = None
        self.last_draw = 0.0
        self.count_width = 7

    def on_train_start(self, trainer: Trainer) -> None:
        self.progress.start()

    def on_restart_start(self, trainer: Trainer, restart: int) -> None:
        t = trainer.cfg.training
        label = f"restart {restart}/{t.restarts}" if t.restarts > 1 else "epochs"
        self.label_width = max(len(label), 7)
        self.count_width = 2 * len(str(t.epochs)) + 1
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
        self.progress.update(
            self.epochs, completed=record.epoch, metrics=live_metrics(record.metrics, self.room())
        )

    def room(self) -> int:
        """Characters left for the metrics once the other columns have theirs."""
        elapsed = 7  # 0:00:00
        used = self.label_width + self.bar_width + self.count_width + elapsed + 4  # 4 gaps
        return max(self.console.width - used, 10)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.progress.stop()
        self.console.print(f"[bold]{result.status}[/]: {result.reason}")


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


def show_trained(result: TrainResult, run_dir: Any) -> None:
    """After training: the restarts (if several) and their spread, final metrics, the run dir."""
    if len(result.restarts) > 1:
        stdout.print(restart_table(result))
        spread = result.spread
        stdout.print(
            f"restart spread on {result.monitor}: best {spread['best']:.4f}, "
            f"median {spread['median']:.4f}, worst {spread['worst']:.4f}"
        )
    stdout.print(result_table(result))
    stdout.print(f"run directory: {run_dir}", soft_wrap=True)


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
    for col in ("parameter", "shape", "checked", "|grad|", "relative error", ""):
        table.add_column(col, justify="left" if col in ("parameter", "") else "right")
    for c in checks:
        verdict = "[green]ok[/]" if c.relative_error < tolerance else "[red]FAIL[/]"
        shape = "x".join(map(str, c.shape))
        checked = "all" if c.checked == c.size else f"{c.checked:,}"
        table.add_row(
            c.name, shape, checked, f"{c.grad_norm:.3e}", f"{c.relative_error:.2e}", verdict
        )
    return table


def gradcheck_start_line(plan: "GradcheckPlan") -> None:
    """What the check will do and about how long it takes, on stderr, before it starts."""
    n = len(plan.entries)
    what = (
        f"all {plan.n_params:,} parameters"
        if plan.sample is None
        else f"{plan.total:,} of {plan.n_params:,} parameters "
        f"(up to {plan.sample} at random in each of the {n} tensors; --sample 0 checks all)"
    )
    slow = "; --sample K checks fewer" if plan.sample is None and plan.estimate_seconds > 60 else ""
    # wrapped between words on a terminal; one line for a log or a pipe
    stderr.print(
        f"gradcheck: {what} on {len(plan.x)} rows, {2 * plan.total:,} forward passes, "
        f"about {_fmt_seconds(plan.estimate_seconds)}{slow}",
        soft_wrap=not stderr.is_terminal,
        markup=False,
        highlight=False,
    )


class CountBar:
    """A bar for `total` steps with time remaining, on a terminal's stderr; else nothing.

    Called once per step; redrawn at most ten times a second. Without `total` it waits for
    `begin(total)`, for work whose size is known only once it is planned.
    """

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = 0
        self.done = 0
        self.last_draw = 0.0
        self.progress: Progress | None = None
        if total is not None:
            self.begin(total)

    def begin(self, total: int) -> None:
        self.total = total
        if stderr.is_terminal:
            self.progress = Progress(
                TextColumn(f"[bold]{escape(self.label)}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=stderr,
                transient=True,
            )
            self.task = self.progress.add_task(self.label, total=total)
            self.progress.start()

    def __enter__(self) -> "CountBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.progress is not None and (now - self.last_draw >= 0.1 or self.done == self.total):
            self.last_draw = now
            self.progress.update(self.task, completed=self.done)


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


# ----------------------------------------------------------------------------- compare, grids


def status_style(status: str) -> str:
    """Green for a run that succeeded, red for a failure, yellow otherwise (a mix too)."""
    try:
        known = RunStatus(status)
    except ValueError:
        return "yellow"
    return "green" if known.succeeded else "red" if known.failure else "yellow"


def show_comparison(comparison: "Comparison") -> None:
    """The keys every run shares, the table, then notes and the best run.

    On a terminal the table is laid out for its width (`compare_table`); a pipe or a log
    file has no width to respect, so the table is printed whole there.
    """
    common = {k: v for k, v in comparison.common.items() if v is not None}  # unset options
    if common:
        stdout.print(Text("same in every run:", style="dim"))
        stdout.print(_common_table(common))
    table = compare_table(comparison, stdout.width if stdout.is_terminal else None)
    if natural_width(table) > stdout.width:  # names are never cut: wider than the terminal
        Console(width=natural_width(table), file=stdout.file, no_color=stdout.no_color).print(table)
    else:
        stdout.print(table)
    for note in comparison.notes:
        stdout.print(Text(f"note: {note}", style="dim"))
    best = comparison.best
    if best is not None:
        key = comparison.sort if comparison.sort.startswith(("train_", "val_", "test_")) else None
        key = key or f"val_{comparison.metric}"
        mean, std = best.stat(key)
        shown = f" ({key} {_fmt_stat(key, mean, std)})" if mean is not None else ""
        stdout.print(Text.assemble("best: ", (best.label, "bold green"), shown))
        if len(best.runs) == 1:
            stdout.print(f"      {best.runs[0].path}", soft_wrap=True, highlight=False)


def print_whole(table: Table, console: Console | None = None) -> None:
    """A table on a terminal as the terminal's width allows; elsewhere (a pipe, a file) at
    its natural width, so that no cell (a path, a run name) is cut or folded."""
    console = console or stdout
    if console.is_terminal:
        console.print(table)
        return
    width = max(console.width, natural_width(table, console))
    Console(width=width, file=console.file, no_color=console.no_color).print(table)


def natural_width(table: Table, console: Console | None = None) -> int:
    """The width a table takes when nothing is wrapped."""
    console = console or stdout
    return Measurement.get(console, console.options.update(max_width=10_000), table).maximum


def _common_table(common: dict[str, Any]) -> Table:
    """Shared keys, one line per config section: `optimizer  beta1=0.9 beta2=0.999 ...`."""
    sections: dict[str, list[str]] = {}
    for key, value in common.items():
        section, _, rest = key.partition(".")
        label = f"{rest}={format_value(value)}" if rest else format_value(value)
        sections.setdefault(section, []).append(label)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(style="dim")
    for section, labels in sections.items():
        table.add_row(f"  {section}", Text("  ".join(labels)))
    return table


# Narrower and narrower layouts of the compare table, tried in turn until one fits the
# terminal: first the curve goes, then time, test loss, the epoch column; then the spread
# is written compactly and headers keep only a key's last part; then a status every row
# shares moves to the title, and the test metric goes; then differing keys leave the table
# from the last, named in its caption. Run names are never cut or folded: when even a table
# of names and the metric is too wide, it is printed wider than the terminal.
_DROPS = ["curve", "time", "test_loss", "compact", "epochs", "n", "status", "test"]
COMPARE_LAYOUTS: list[set[str]] = [set(_DROPS[:i]) for i in range(len(_DROPS) + 1)]


def compare_table(comparison: "Comparison", width: int | None = None) -> Table:
    """One row per run (or seed group): status, differing hyperparameters, metrics, curve.

    With a `width`, the widest layout of `COMPARE_LAYOUTS` that fits it; without, all columns.
    """
    table = _compare_table(comparison, COMPARE_LAYOUTS[0])
    if width is None:
        return table
    for drop in COMPARE_LAYOUTS[1:]:
        if natural_width(table) <= width:
            return table
        table = _compare_table(comparison, drop)
    # Still too wide: the differing keys that do not fit leave the table, named under it.
    keys = list(comparison.differing)
    while keys and natural_width(table) > width:
        keys.pop()
        table = _compare_table(comparison, COMPARE_LAYOUTS[-1], keys)
    return table


def _headers(keys: list[str], short: bool) -> list[str]:
    """`optimizer.\nlr` (two lines, no wider than the last part), or just `lr` if unique."""
    tails = [k.rpartition(".")[2] for k in keys]
    if short and len(set(tails)) == len(tails):
        return tails
    return [f"{head}{dot}\n{tail}" for head, dot, tail in (k.rpartition(".") for k in keys)]


def _compare_table(
    comparison: "Comparison", drop: set[str], keys: list[str] | None = None
) -> Table:
    keys = list(comparison.differing) if keys is None else keys
    hidden = [k for k in comparison.differing if k not in keys]
    statuses = {row.status for row in comparison.rows}
    same_status = "status" in drop and len(statuses) == 1
    title = f"runs by {comparison.sort}" + (
        " (mean ± std over seeds)" if comparison.grouped else ""
    )
    if same_status:
        title += f", all {statuses.pop()}"
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption=f"differ too, not shown at this width: {', '.join(hidden)} (see --json)"
        if hidden
        else None,
        caption_justify="left",
    )
    compact = "compact" in drop
    metrics = [
        k
        for k in comparison.columns
        if k == comparison.sort or not (k in drop or ("test" in drop and k.startswith("test_")))
    ]
    table.add_column("", no_wrap=True)
    table.add_column("run", no_wrap=True)
    if not same_status:
        table.add_column("status", no_wrap=True)
    for header in _headers(keys, short=compact):
        table.add_column(header, justify="right", no_wrap=True)
    if comparison.grouped and "n" not in drop:
        table.add_column("n", justify="right")
    if "epochs" not in drop:
        table.add_column("epoch\nbest/run", justify="right", no_wrap=True)
    for key in metrics:
        header = key.replace("_", "\n", 1).replace("accuracy", "acc")
        table.add_column(header, justify="right", no_wrap=True)
    if "time" not in drop:
        table.add_column("time", justify="right", no_wrap=True)
    if "curve" not in drop:
        table.add_column("val loss", no_wrap=True)
    for row in comparison.rows:
        is_best = row is comparison.best
        best_epoch, epochs = row.stat("best_epoch")[0], row.stat("epochs")[0]
        # Text cells, not markup: names and values may contain [brackets]
        cells = [
            Text("★" if is_best else ""),
            Text(row.label),
            *([] if same_status else [Text(row.status, style=status_style(row.status))]),
            *(Text(format_value(row.params[k]) if k in row.params else "-") for k in keys),
        ]
        if comparison.grouped and "n" not in drop:
            cells.append(Text(str(len(row.runs))))
        if "epochs" not in drop:
            cells.append(Text(f"{_fmt_int(best_epoch)}/{_fmt_int(epochs)}"))
        cells += [Text(_fmt_stat(key, *row.stat(key), compact=compact)) for key in metrics]
        if "time" not in drop:
            cells.append(Text(_fmt_stat("time", *row.stat("time"))))
        if "curve" not in drop:
            cells.append(Text(sparkline(row.val_loss_curve(), width=12)))
        table.add_row(*cells, style="bold" if is_best else None)
    return table


SPARK = "▁▂▃▄▅▆▇█"
NOT_FINITE = "\u00d7"  # a multiplication sign: the loss blew up


def sparkline(values: Sequence[float], width: int = 20) -> str:
    """A unicode sparkline of a curve, squeezed to `width` characters by bucket means."""
    if not values:
        return ""
    if len(values) > width:
        buckets = [
            values[i * len(values) // width : (i + 1) * len(values) // width] for i in range(width)
        ]
        values = [_finite_mean(b) for b in buckets]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return NOT_FINITE * len(values)
    lo, hi = min(finite), max(finite)
    top = len(SPARK) - 1
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append(NOT_FINITE)
        elif hi == lo:
            out.append(SPARK[top // 2])
        else:
            out.append(SPARK[round((v - lo) / (hi - lo) * top)])
    return "".join(out)


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def _fmt_int(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def format_value(value: Any) -> str:
    """A config value as typed in YAML: 0.001, true, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return str(value) if value else ("{}" if isinstance(value, dict) else "[]")
    return str(value)


def _fmt_stat(key: str, mean: float | None, std: float | None, compact: bool = False) -> str:
    if mean is None:
        return "-"
    if key == "time":
        text, spread = _fmt_seconds(mean), f" ± {_fmt_seconds(std)}" if std is not None else ""
        return text + spread
    if key in ("epochs", "best_epoch"):
        return f"{mean:.0f}" + (f" ± {std:.0f}" if std is not None else "")
    if compact:  # 0.972±0.048: three digits, no spaces
        return f"{mean:.3f}" + (f"±{std:.3f}" if std is not None else "")
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def _fmt_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def grid_start_line(plan: "GridPlan", jobs: int) -> None:
    """What the grid is about to run, on stderr."""
    sizes = " x ".join(f"{len(v)} {k}" for k, v in plan.grid.items()) or "1 config"
    seeds = f" x {plan.repeat} seeds" if plan.repeat > 1 else ""
    print(
        f"grid: {len(plan.points)} runs ({sizes}{seeds}), {jobs} worker(s) -> {plan.folder}",
        file=sys.stderr,
        flush=True,
    )


def grid_progress_line(outcome: "GridOutcome", done: int, total: int) -> None:
    """One plain line on stderr per finished combination (workers cannot draw bars)."""
    width = len(str(total))
    text = f"[{done:>{width}}/{total}] {outcome.point.name}  {outcome.status}"
    if outcome.ok and "val" in outcome.final:
        text += "  " + _fmt({f"val_{k}": v for k, v in outcome.final["val"].items()})
    elif not outcome.ok:
        text += f"  {outcome.message}"
    if outcome.seconds:
        text += f"  {_fmt_seconds(outcome.seconds)}"
    print(text, file=sys.stderr, flush=True)


def grid_failures_table(outcomes: list["GridOutcome"]) -> Table:
    """The combinations that did not complete, and why."""
    table = Table(
        title="grid runs that did not complete", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("run", overflow="fold")
    table.add_column("status")
    table.add_column("why", overflow="fold")
    for o in outcomes:
        table.add_row(
            Text(o.point.name),
            Text(o.status, style=status_style(o.status)),
            Text(o.message),
        )
    return table


def inspect_tables(info: "Inspection") -> list[RenderableType]:
    """`mlpcli inspect`: the columns as they will be read, and the target's classes."""
    table = Table(title=f"{escape(info.path)}: {info.rows} rows", box=box.SIMPLE_HEAD)
    for column in ("column", "kind", "missing", "distinct", "examples"):
        justify = "right" if column in ("missing", "distinct") else "left"
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for c in info.columns:
        kind = "[bold]target[/]" if c.kind == "target" else c.kind
        style = "dim" if c.kind == "ignore" else None
        table.add_row(
            escape(c.name), kind, str(c.missing), str(c.distinct),
            escape(", ".join(c.examples)), style=style,
        )  # fmt: skip
    out: list[RenderableType] = [table]
    for c in info.columns:
        if c.note and c.kind == "ignore":
            out.append(f"note: {escape(c.note)}")
    if info.classes:
        classes = Table(title=f"classes of '{escape(info.target or '')}'", box=box.SIMPLE_HEAD)
        classes.add_column("class")
        classes.add_column("rows", justify="right")
        for name, count in info.classes[:50]:
            classes.add_row(escape(name), str(count))
        if len(info.classes) > 50:
            classes.add_row(f"... {len(info.classes) - 50} more", "")
        out.append(classes)
    else:
        out.append(f"target '{escape(info.target or '')}': numeric, regression")
    return out


# ----------------------------------------------------------------------------- tune


def _short_param(key: str) -> str:
    """`optimizer.lr` -> lr, `model.hidden.units` -> units: the table stays narrow."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def format_params(params: dict[str, Any]) -> str:
    return " ".join(
        f"{_short_param(k)}={v:.3g}" if isinstance(v, float) else f"{_short_param(k)}={v}"
        for k, v in params.items()
    )


def _fmt_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def tune_table(study: "Study", last: int = 15) -> Table:
    """The trials so far (the last `last`), with the best value up to each one."""
    sign = 1.0 if study.direction == "minimize" else -1.0
    best_so_far: dict[int, float | None] = {}
    best: float | None = None
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.value is not None and (best is None or sign * t.value < sign * best):
            best = t.value
        best_so_far[t.number] = best
    counts = {s: sum(t.state == s for t in study.trials) for s in ("complete", "pruned", "failed")}
    title = (
        f"study {study.name}: {len(study.trials)} trials ({counts['complete']} complete, "
        f"{counts['pruned']} pruned, {counts['failed']} failed); {study.direction} {study.metric}"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("params", overflow="fold")
    table.add_column("value", justify="right")
    table.add_column("state")
    table.add_column("best so far", justify="right")
    shown = sorted(study.trials, key=lambda t: t.number)[-last:]
    for t in shown:
        is_best = study.best is not None and t.number == study.best.number
        table.add_row(
            str(t.number),
            format_params(t.params),
            _fmt_metric(t.value),
            Text(t.status, style=status_style(t.status)),
            _fmt_metric(best_so_far[t.number]),
            style="bold" if is_best else None,
        )
    return table


class TuneLive:
    """The trial table while searching: redrawn on a terminal, one line a trial otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live: Any = None
        self.printed: set[int] = set()

    def __enter__(self) -> "TuneLive":
        if not self.quiet and stderr.is_terminal:
            from rich.live import Live

            self.live = Live(console=stderr, auto_refresh=False, transient=False)
            self.live.start()
        return self

    def update(self, study: "Study") -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(tune_table(study), refresh=True)
            return
        for t in sorted(study.trials, key=lambda t: t.number):
            if t.state != "running" and t.number not in self.printed:
                self.printed.add(t.number)
                print(_plain_trial_line(study, t), file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()


def _plain_trial_line(study: "Study", t: "TrialInfo") -> str:
    sign = 1.0 if study.direction == "minimize" else -1.0
    done = [u for u in study.trials if u.number <= t.number and u.value is not None]
    best = min(done, key=lambda u: sign * (u.value or 0.0), default=None)
    shown = (
        f"  best {best.value:.4f} (trial {best.number})" if best and best.value is not None else ""
    )
    value = f"  {study.metric} {t.value:.4f}" if t.value is not None else ""
    return f"trial {t.number} {t.status}{value}  {format_params(t.params)}{shown}"


def tune_summary(study: "Study") -> list[RenderableType]:
    """After the search: the top trials, the best params and value, how to train the best."""
    out: list[RenderableType] = []
    top = study.top(5)
    if top:
        table = Table(
            title=f"top trials by {study.metric}", box=box.SIMPLE_HEAD, title_justify="left"
        )
        table.add_column("trial", justify="right")
        table.add_column(study.metric, justify="right")
        table.add_column("epochs", justify="right")
        table.add_column("params", overflow="fold")
        for t in top:
            epochs = "-" if t.epochs is None else str(t.epochs)
            table.add_row(str(t.number), _fmt_metric(t.value), epochs, format_params(t.params))
        out.append(table)
    best = study.best
    if best is None:
        out.append("no trial has completed yet")
        return out
    rows = [(key, format_value(value)) for key, value in best.params.items()]
    rows.append((study.metric, _fmt_metric(best.value)))
    out.append(key_value_table(f"best: trial {best.number}", rows))
    out.append(f"train the best: mlpcli train {study.best_yaml}")
    return out
