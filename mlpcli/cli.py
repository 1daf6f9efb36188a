"""The command line: each command parses, calls one library function, renders.

Heavy modules (NumPy, the engine) are imported inside the commands, so `mlpcli --help`
starts fast.
"""

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.core import TyperGroup

try:  # typer >= 0.22 vendors click as typer._click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click.exceptions import ClickException  # type: ignore[no-redef]

from mlpcli import signals
from mlpcli.errors import TrainingFailed, UserError, printable

if TYPE_CHECKING:
    from mlpcli.api import GradcheckPlan, Grid, Run


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown flag, missing argument, bad value) as one `error:` line, exit 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = functools.partial(
            super().main, args, prog_name, complete_var, False, windows_expand_args, **extra
        )
        if not standalone_mode:
            return run()
        try:
            code = run()
        except ClickException as exc:
            print(f"error: {exc.format_message()}", file=sys.stderr)
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                print(f"hint: see '{ctx.command_path} --help'", file=sys.stderr)
            sys.exit(exc.exit_code)
        except typer.Abort:  # Ctrl-C before the command could handle it (start-up)
            _say("interrupted")
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    # Typer labels every flag `<bool>` in help, as if it took a value; an empty metavar
    # shows flags as what they are. Patched where Click resolves the group and each command.
    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _untyped_flags(command.get_params(ctx))
        return command


def _untyped_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


app = typer.Typer(
    cls=_OneLineErrors,
    name="mlpcli",
    help="Train multilayer perceptrons from YAML configs on a NumPy engine.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstring paragraphs reflow to the terminal's width
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from mlpcli.api import versions

        print("  ".join(f"{name} {version}" for name, version in versions().items()))
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="print the versions of mlpcli, numpy and python, and exit",
    ),
) -> None:
    """Train multilayer perceptrons from YAML configs on a NumPy engine."""


F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(command: F) -> F:
    """Expected errors become one `error:` line on stderr and their exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UserError, TrainingFailed) as exc:
            if os.environ.get("MLPCLI_DEBUG"):
                raise
            print(f"error: {printable(str(exc))}", file=sys.stderr)  # always one line
            hint = getattr(exc, "hint", None)
            if hint:
                print(f"hint: {printable(hint)}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C outside training (which handles its own): exit 130
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _notes(notes: list[str]) -> None:
    """What the data pipeline did that the user should know (columns ignored, cells filled)."""
    for note in notes:
        print(f"note: {printable(note)}", file=sys.stderr)  # column names come from files


def _data_notes() -> Any:
    """A callback that shows the data notes once training starts (the data is loaded)."""
    from mlpcli.api import Callback

    class DataNotes(Callback):
        def on_train_start(self, trainer: Any) -> None:
            _notes(trainer.data.notes)

    return DataNotes()


@contextlib.contextmanager
def _signals_stop(stop: threading.Event) -> Iterator[list[int]]:
    """The first stop signal asks training to stop after the current batch; a second quits
    at once. Yields the signals received: the exit code is 128 + the first one."""
    received: list[int] = []

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()
        if signum == getattr(signal, "SIGHUP", None):
            _detach_terminal()
        with contextlib.suppress(OSError):  # os.write: print() is not safe in a signal handler
            name = signal.Signals(signum).name
            again = "Ctrl-C" if signum == signal.SIGINT else name
            os.write(
                2, f"\n{name}: stopping after this batch ({again} again to quit at once)\n".encode()
            )

    with signals.handling(handle):
        yield received


def _detach_terminal() -> None:
    """After SIGHUP the terminal is gone: output goes to /dev/null, not to an EIO error."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)


def _exit_code(received: list[int]) -> int:
    """128 + the signal that stopped training (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    return 128 + (received[0] if received else signal.SIGINT)


@app.command()
@_clean_errors
def train(
    config: Path | None = typer.Argument(None, metavar="CONFIG", help="the run's YAML config"),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="override a config key: --set optimizer.lr=0.01"
    ),
    runs_dir: Path | None = typer.Option(
        None,
        "--runs-dir",
        metavar="DIR",
        help="folder that receives the run directory (default: runs)",
    ),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="run name (overrides the config's)"
    ),
    seed: int | None = typer.Option(
        None, "--seed", metavar="N", help="seed (overrides the config's)"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last checkpoint (instead of CONFIG)",
    ),
    grid: list[str] = typer.Option(
        [],
        "--grid",
        metavar="KEY=V1,V2",
        help="train every combination of the values (repeat for more keys)",
    ),
    repeat: int = typer.Option(
        1, "--repeat", min=1, metavar="K", help="seeds per grid combination (seed, seed+1, ...)"
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        help="worker processes for --grid (default: CPU cores)",
    ),
) -> None:
    """Train a model from CONFIG and write a run directory (or --resume one).

    Ctrl-C stops after the current batch, saves the last checkpoint and exits with 130;
    `mlpcli train --resume RUN_DIR` then continues exactly where it stopped.
    """
    _check_train_flags(config, set_, runs_dir, name, seed, resume, grid, repeat, jobs)
    overrides = [
        *set_,
        *([f"name={name}"] if name else []),
        *([f"seed={seed}"] if seed is not None else []),
    ]
    from mlpcli import api

    if grid or repeat > 1:
        assert config is not None
        where = runs_dir or Path("runs")
        _train_grid(
            lambda **kw: api.grid(config, overrides, grid, repeat, jobs, where, **kw), quiet
        )
    elif resume is not None and api.is_grid(resume):
        _train_grid(lambda **kw: api.resume_grid(resume, **kw), quiet)
    elif resume is not None:
        _train_one(
            lambda callbacks, stop: api.resume(resume, callbacks=callbacks, stop=stop), quiet
        )
    else:
        assert config is not None
        where = runs_dir or Path("runs")
        _train_one(
            lambda callbacks, stop: api.train(
                config, overrides, where, callbacks=callbacks, stop=stop
            ),
            quiet,
        )


def _check_train_flags(
    config: Path | None,
    set_: list[str],
    runs_dir: Path | None,
    name: str | None,
    seed: int | None,
    resume: Path | None,
    grid: list[str],
    repeat: int,
    jobs: int | None,
) -> None:
    """`train` trains a CONFIG, a grid of it, or resumes a run: flags that do not go together."""
    if config is None and resume is None:
        raise UserError(
            "Missing argument 'CONFIG' (or --resume RUN_DIR to continue a run)",
            hint="see 'mlpcli train --help'",
        )
    if config is not None and resume is not None:
        raise UserError("give a CONFIG to train, or --resume RUN_DIR to continue a run, not both")
    if resume is not None and (
        set_ or runs_dir or name or seed is not None or grid or repeat > 1 or jobs is not None
    ):
        raise UserError(
            "--resume continues a run exactly as it started: --set, --runs-dir, --name, "
            "--seed, --grid, --repeat and --jobs do not go with it"
        )
    if jobs is not None and not (grid or repeat > 1):
        raise UserError("--jobs goes with --grid or --repeat")


def _train_one(start: Callable[[list[Any], threading.Event], "Run"], quiet: bool) -> None:
    """Train (or resume) one run with progress and signal handling, then show the result."""
    from mlpcli import display
    from mlpcli.api import AlreadyFinished, RunInterrupted, RunStatus

    progress = display.progress_callback(quiet)
    callbacks: list[Any] = [progress] if progress else []
    if not quiet:
        callbacks.insert(0, _data_notes())
    stop = threading.Event()
    received: list[int] = []
    try:
        with _signals_stop(stop) as received:
            run = start(callbacks, stop)
    except AlreadyFinished as exc:
        display.stdout.print(str(exc), soft_wrap=True)
        return
    except RunInterrupted as exc:
        display.close_progress(progress)
        _say(f"interrupted: {exc}")
        raise typer.Exit(_exit_code(received)) from None
    if run.status is RunStatus.INTERRUPTED:
        _say(
            f"interrupted: the last checkpoint and metrics.csv are saved in {run.path}\n"
            f"resume with: mlpcli train --resume {run.path}"
        )
        raise typer.Exit(_exit_code(received))
    if run.status is RunStatus.DIVERGED:
        raise TrainingFailed(f"{run.path}: training diverged: {run.reason}")
    assert run.result is not None
    display.show_trained(run.result, run.path)


def _say(text: str) -> None:
    """A last line on stderr; a terminal closed meanwhile (SIGHUP) is no error."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


@app.command("eval")
@_clean_errors
def eval_(
    checkpoint: Path = typer.Argument(
        ..., metavar="CHECKPOINT_OR_RUN_DIR", help="a .npz checkpoint, or a run directory"
    ),
    data: Path | None = typer.Option(
        None, "--data", metavar="FILE", help="a CSV (or NPZ) to score; columns matched by name"
    ),
    split: str | None = typer.Option(
        None,
        "--split",
        metavar="SPLIT",
        help="split of the run's own data: test (default), val or train",
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output only"),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        metavar="FILE.png",
        help="decision regions of a 2-feature classifier to an image file, with the scored rows "
        "(needs matplotlib: the 'plot' extra)",
    ),
) -> None:
    """Metrics of a saved model (a checkpoint, or a run directory's final model).

    Classification: loss, accuracy, per-class precision / recall / F1 and a confusion
    matrix. Regression: loss, MSE, RMSE, MAE and R².
    """
    from mlpcli import api, display

    report = api.evaluate_model(checkpoint, data, split, plot=plot)
    _notes(report.notes)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for renderable in display.eval_tables(report):
            display.stdout.print(renderable, soft_wrap=isinstance(renderable, str))
    if plot is not None:
        print(f"plot: {plot}", file=sys.stderr)


def _train_grid(start: Callable[..., "Grid"], quiet: bool) -> None:
    """`train --grid/--repeat` or the resume of a grid: its points in parallel (Ctrl-C /
    SIGTERM stop them all), then the compare table."""
    from mlpcli import display

    stop = threading.Event()
    with _signals_stop(stop) as received:
        done = start(
            on_start=None if quiet else display.grid_start_line,
            on_done=None if quiet else display.grid_progress_line,
            stop=stop,
        )
    if done.stopped:
        _say(
            f"interrupted: {len(done.unfinished)} of {len(done.outcomes)} grid runs did not "
            f"finish; grid.json is saved in {done.folder}\n"
            f"continue the grid with: mlpcli train --resume {done.folder}"
        )
        raise typer.Exit(_exit_code(received))
    comparison = done.compare()
    if comparison is not None:
        display.show_comparison(comparison)
    if done.failed:
        display.stdout.print(display.grid_failures_table(done.failed))
    display.stdout.print(f"grid folder: {done.folder}", soft_wrap=True)
    if done.failed:
        statuses = ", ".join(sorted({o.status for o in done.failed}))
        raise TrainingFailed(
            f"{len(done.failed)} of {len(done.outcomes)} grid runs did not complete "
            f"({statuses}); see the table above"
        )


@app.command()
@_clean_errors
def predict(
    checkpoint: Path = typer.Argument(
        ..., metavar="CHECKPOINT_OR_RUN_DIR", help="a .npz checkpoint, or a run directory"
    ),
    data: Path = typer.Option(
        ..., "--data", metavar="FILE", help="CSV, NPZ or Parquet rows to predict; no target needed"
    ),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="write the CSV here instead of stdout"
    ),
    proba: bool = typer.Option(False, "--proba", help="one probability column per class"),
    label: bool = typer.Option(False, "--label", help="with --proba: the predicted class too"),
    keep: list[str] = typer.Option(
        [], "--keep", metavar="COL", help="copy a column of the input (an ID) into the output"
    ),
) -> None:
    """Predictions for new rows as CSV: class names, probabilities (--proba), or values.

    One output row per input row, in input order; the input needs no target column, and
    columns the model does not use are ignored.
    """
    from mlpcli import api

    predictions = api.predict_file(checkpoint, data, proba=proba, label=label, keep=keep, out=out)
    _notes(predictions.notes)
    if out is None:
        predictions.write_csv(sys.stdout)


@app.command()
@_clean_errors
def inspect(
    data: Path = typer.Argument(..., help="a CSV, Parquet or NPZ file"),
    target: str | None = typer.Option(
        None, "--target", help="the target column (default: the last)"
    ),
) -> None:
    """A table's columns as mlpcli will read them, and a starter config that trains on it.

    Shows each column's kind (numeric / categorical / ignored), missing cells, distinct
    values and examples, the target's classes, then a config as YAML on stdout.
    """
    from mlpcli import api, display

    info = api.inspect(data, target)
    for renderable in display.inspect_tables(info):
        display.stderr.print(renderable, soft_wrap=isinstance(renderable, str))
    print(info.config, end="")


@app.command()
@_clean_errors
def compare(
    paths: list[Path] = typer.Argument(
        ..., metavar="RUNS", help="run directories, or folders of runs"
    ),
    sort: str | None = typer.Option(
        None,
        "--sort",
        metavar="KEY",
        help="column or config key to sort by (default: val accuracy / R²)",
    ),
    top: int | None = typer.Option(
        None, "--top", min=1, metavar="N", help="show only the best N rows"
    ),
    json_: bool = typer.Option(False, "--json", help="machine-readable output only"),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        metavar="FILE.png",
        help="learning curves to an image file (needs matplotlib: the 'plot' extra)",
    ),
    per_run: bool = typer.Option(
        False, "--per-run", help="one row per run, even for runs that differ only by seed"
    ),
) -> None:
    """Compare runs: what differs between them, and which did best."""
    from mlpcli import api, display

    comparison = api.compare(paths, sort=sort, top=top, group=not per_run, plot=plot)
    if json_:
        print(json.dumps(comparison.to_json(), indent=2, default=str, allow_nan=False))
    else:
        display.show_comparison(comparison)
    if plot is not None:
        print(f"plot: {plot}", file=sys.stderr)


@app.command()
@_clean_errors
def validate(
    config: Path = typer.Argument(..., metavar="CONFIG", help="the YAML config to check"),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="override a config key"),
) -> None:
    """Check a config without training: resolved config, parameter count, dataset shape."""
    from mlpcli import api, display

    checked = api.validate(config, list(set_))
    display.stdout.print(checked.yaml, highlight=False, markup=False)
    display.stdout.print(display.key_value_table(f"{config} is valid", checked.summary()))


@app.command()
@_clean_errors
def datasets(
    download: str | None = typer.Option(
        None, "--download", metavar="NAME", help="fetch a downloadable dataset (mnist) now"
    ),
) -> None:
    """List the built-in datasets (name, rows, features, task), or fetch MNIST."""
    from mlpcli import api, display

    if download is not None:
        with display.DownloadBar(download) as bar:
            path = api.download(download, bar)
        display.stdout.print(f"{download}: {path}", soft_wrap=True)
        return
    rows = [[d.name, d.rows, d.features, d.task, d.classes or "-", d.where] for d in api.datasets()]
    columns = ["name", "rows", "features", "task", "classes", "source"]
    display.print_whole(display.rows_table("built-in datasets", columns, rows))


@app.command()
@_clean_errors
def gradcheck(
    config: Path = typer.Argument(
        ..., metavar="CONFIG", help="the YAML config whose network to check"
    ),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="override a config key"),
    rows: int = typer.Option(8, "--rows", min=1, metavar="N", help="training rows to check on"),
    sample: int | None = typer.Option(
        None,
        "--sample",
        min=0,
        metavar="K",
        help="check K random entries of each weight and bias (0: all; default: all up to "
        "20,000 parameters, else 30)",
    ),
) -> None:
    """Check backprop of the configured network against finite differences (float64).

    Prints what it checks and an estimate of the time first; a progress bar on a terminal.
    """
    from mlpcli import api, display

    with display.CountBar("gradcheck") as bar:

        def start(plan: "GradcheckPlan") -> None:
            display.gradcheck_start_line(plan)
            bar.begin(plan.total)

        checked = api.gradcheck(config, list(set_), rows, sample, on_start=start, on_entry=bar)
    display.stdout.print(display.gradcheck_table(checked.checks, checked.tolerance))
    if not checked.ok:
        raise TrainingFailed(
            f"backprop disagrees with finite differences (max relative error {checked.worst:.2e})"
        )
    display.stdout.print(
        f"backprop agrees with finite differences: max relative error {checked.worst:.2e}"
    )


@app.command()
@_clean_errors
def tune(
    config: Path = typer.Argument(..., help="a YAML config with a 'tune:' section"),
    set_: list[str] = typer.Option([], "--set", help="override a config key for every trial"),
    trials: int | None = typer.Option(
        None, "--trials", min=1, help="finished trials the study should hold (default: tune.trials)"
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", metavar="S", help="start no new trial after S seconds"
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="worker processes on the one study"),
    storage: str | None = typer.Option(
        None,
        "--storage",
        metavar="URL",
        help="postgresql://USER@HOST/DB to share the study between machines "
        "(default: TUNE_DIR/study.db, SQLite)",
    ),
    study: str | None = typer.Option(
        None, "--study", help="study name; the tune directory is RUNS_DIR/STUDY (default: name)"
    ),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="folder of the tune directory"),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        metavar="FILE.png",
        help="optimization history and parameter importances (needs matplotlib)",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live table"),
) -> None:
    """Search hyperparameters over the config's tune.space with Optuna.

    Every trial is a run directory in RUNS_DIR/STUDY/, next to study.db, tune.json and
    best.yaml. The same command again continues the study. Ctrl-C or SIGTERM stops the
    trial in progress after its batch (marked failed) and exits with 130 / 143.
    """
    from mlpcli import api, display

    with display.TuneLive(quiet) as live:
        result = api.tune(
            config,
            list(set_),
            trials=trials,
            timeout=timeout,
            jobs=jobs,
            storage=storage,
            study=study,
            runs_dir=runs_dir,
            plot=plot,
            on_update=live.update,
            handle_signals=True,
        )
    for renderable in display.tune_summary(result):
        display.stdout.print(renderable, soft_wrap=isinstance(renderable, str))
    display.stdout.print(f"tune directory: {result.folder}", soft_wrap=True)
    if plot is not None:
        print(f"plot: {plot}", file=sys.stderr)
    if result.interrupted is not None:
        print(
            "interrupted: the trial in progress is marked failed; the same command continues "
            "the study",
            file=sys.stderr,
        )
        raise typer.Exit(128 + result.interrupted)


@app.command()
@_clean_errors
def export(
    source: Path = typer.Argument(
        ..., metavar="RUN_OR_CHECKPOINT", help="a run directory (its final model) or a .npz"
    ),
    fmt: str = typer.Option("onnx", "--format", metavar="FORMAT", help="onnx (the only one)"),
    out: Path = typer.Option(..., "--out", metavar="FILE", help="the file to write: model.onnx"),
) -> None:
    """Export the final model, preprocessing included, for other runtimes (ONNX).

    The graph takes the raw columns (one double matrix `features` for numeric data, else one
    input per column) and gives `probabilities` and `label` (classifier) or `values`
    (regression); see docs/export.md.
    """
    from mlpcli import api

    done = api.export(source, out, fmt)
    inputs = (
        f"input 'features' [N, {done.n_features}] double"
        if done.inputs == ["features"]
        else f"{len(done.inputs)} inputs, one per column"
    )
    print(
        f"exported {done.checkpoint} to {done.path} (ONNX opset {done.opset}; {inputs}; "
        f"outputs {', '.join(done.outputs)})"
    )


@app.command()
def schema() -> None:
    """Print the config's JSON Schema (for editor completion and checks)."""
    from mlpcli import api

    print(json.dumps(api.schema(), indent=2))


@app.command()
@_clean_errors
def report(
    paths: list[Path] = typer.Argument(
        ..., metavar="RUNS_DIR_OR_RUNS", help="run directories, or folders of runs"
    ),
    out: Path = typer.Option(Path("report.html"), "--out", help="the HTML file to write"),
    open_: bool = typer.Option(False, "--open", help="open the page in the web browser"),
    watch: bool = typer.Option(
        False, "--watch", help="rewrite the page while runs train (Ctrl-C ends); it reloads itself"
    ),
    every: float = typer.Option(
        3.0, "--every", min=0.2, help="with --watch: seconds between checks for new epochs"
    ),
    sort: str | None = typer.Option(
        None, "--sort", help="column or config key to sort the table by (as compare)"
    ),
    per_run: bool = typer.Option(
        False, "--per-run", help="one row per run, even for runs that differ only by seed"
    ),
) -> None:
    """The runs as one self-contained HTML page: table, curves, norms, search, best model.

    Every script and style is inside the file (no network request), so it opens offline
    and can be mailed. Needs plotly (the 'report' extra).
    """
    from mlpcli import api

    if not watch:
        written = api.report(paths, out, sort=sort, group=not per_run)
    else:
        stop = threading.Event()
        with _signals_end_watch(stop):
            if open_:
                api.report(paths, out, sort, not per_run, reload_seconds=every)
                _open_page(out)
                open_ = False
            written = api.watch_report(
                paths,
                out,
                every,
                stop,
                on_write=lambda w: print(f"report: {w.path} ({w.runs} runs)", file=sys.stderr),
                sort=sort,
                group=not per_run,
            )
    size = (written.bytes_total - written.bytes_script) / 1e6
    print(
        f"report: {written.path} ({written.runs} run{'s' if written.runs != 1 else ''}, "
        f"{written.plots} plots, "
        f"{size:.2f} MB besides plotly.js)",
        file=sys.stderr,
    )
    if open_:
        _open_page(out)


def _open_page(out: Path) -> None:
    import webbrowser

    if not webbrowser.open(out.resolve().as_uri()):
        print(f"no web browser found: open {out} yourself", file=sys.stderr)


@contextlib.contextmanager
def _signals_end_watch(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM sets `stop`: a watch loop ends after writing its last page."""

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    with signals.handling(handle, (signal.SIGINT, signal.SIGTERM)):
        yield


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C before a command could handle it (start-up)
        _say("interrupted")
        sys.exit(130)
