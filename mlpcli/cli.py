"""The command line: each command parses, calls one library function, renders.

Heavy modules (NumPy, the engine) are imported inside the commands, so `mlpcli --help`
starts fast.
"""

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from mlpcli.errors import TrainingFailed, UserError

app = typer.Typer(
    name="mlpcli",
    help="Train multilayer perceptrons from YAML configs on a NumPy engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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
            print(f"error: {exc}", file=sys.stderr)
            hint = getattr(exc, "hint", None)
            if hint:
                print(f"hint: {hint}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@_clean_errors
def train(
    config: Path = typer.Argument(..., help="the run's YAML config"),
    set_: list[str] = typer.Option(
        [], "--set", help="override a config key: --set optimizer.lr=0.01"
    ),
    runs_dir: Path = typer.Option(
        Path("runs"), "--runs-dir", help="folder that receives the run directory"
    ),
    name: str | None = typer.Option(None, "--name", help="run name (overrides the config's)"),
    seed: int | None = typer.Option(None, "--seed", help="seed (overrides the config's)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
) -> None:
    """Train a model from CONFIG and write a run directory."""
    from mlpcli import display
    from mlpcli.config import load_config
    from mlpcli.runs import train_run

    overrides = [
        *set_,
        *([f"name={name}"] if name else []),
        *([f"seed={seed}"] if seed is not None else []),
    ]
    cfg = load_config(config, overrides)
    progress = display.progress_callback(quiet)
    run_dir, result = train_run(cfg, runs_dir, [progress] if progress else [])
    if result.status == "diverged":
        raise TrainingFailed(f"{run_dir}: training diverged: {result.reason}")
    if len(result.restarts) > 1:
        display.stdout.print(display.restart_table(result))
        spread = result.spread
        display.stdout.print(
            f"restart spread on {result.monitor}: best {spread['best']:.4f}, "
            f"median {spread['median']:.4f}, worst {spread['worst']:.4f}"
        )
    display.stdout.print(display.result_table(result))
    display.stdout.print(f"run directory: {run_dir}", soft_wrap=True)


@app.command()
@_clean_errors
def validate(
    config: Path = typer.Argument(..., help="the YAML config to check"),
    set_: list[str] = typer.Option([], "--set", help="override a config key"),
) -> None:
    """Check a config without training: resolved config, parameter count, dataset shape."""
    from mlpcli import display
    from mlpcli.config import dump_config, load_config
    from mlpcli.data import load_dataset
    from mlpcli.train import build_model

    cfg = load_config(config, list(set_))
    data = load_dataset(cfg.data, cfg.seed)
    model = build_model(cfg, data.n_features, data.n_outputs)
    display.stdout.print(dump_config(cfg), highlight=False, markup=False)
    rows = [
        ("task", data.task),
        ("features", data.n_features),
        ("classes", ", ".join(data.class_names) if data.class_names else "-"),
        *((f"{name} rows", len(part)) for name, part in data.parts.items()),
        ("layers", " -> ".join(map(str, model.sizes))),
        ("parameters", f"{model.n_params:,}"),
    ]
    display.stdout.print(display.key_value_table(f"{config} is valid", rows))


@app.command()
@_clean_errors
def datasets(
    download: str | None = typer.Option(
        None, "--download", metavar="NAME", help="fetch a downloadable dataset (mnist) now"
    ),
) -> None:
    """List the built-in datasets (name, rows, features, task), or fetch MNIST."""
    from mlpcli import display
    from mlpcli.data import catalog, mnist

    if download is not None:
        if download != "mnist":
            raise UserError(f"--download {download}: only mnist is downloaded (the rest ship)")
        with display.DownloadBar("mnist") as bar:
            path = mnist.mnist_path(bar)
        display.stdout.print(f"mnist: {path}", soft_wrap=True)
        return
    rows = [[d.name, d.rows, d.features, d.task, d.classes or "-", d.where] for d in catalog()]
    columns = ["name", "rows", "features", "task", "classes", "source"]
    display.stdout.print(display.rows_table("built-in datasets", columns, rows))


@app.command()
def schema() -> None:
    """Print the config's JSON Schema (for editor completion and checks)."""
    from mlpcli.config import RunConfig

    print(json.dumps(RunConfig.model_json_schema(), indent=2))


def main() -> None:
    app()
