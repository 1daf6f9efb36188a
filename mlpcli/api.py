"""The Python API: train, load and compare from a notebook or a script.

    import mlpcli
    run = mlpcli.train("configs/iris.yaml", overrides={"optimizer.lr": 0.01})
    model = mlpcli.load(run.path)
    model.predict(X)                  # a NumPy array, a pandas DataFrame, a dict of columns
    model.predict("new-rows.csv")     # or a file, read as train / eval / predict read files
    mlpcli.compare(["runs/"]).best

The CLI is a thin layer over these functions. Every problem with the input (config, data,
checkpoint) is a `mlpcli.UserError` with the one-line message the CLI prints.
"""

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpcli.compare import Comparison, compare_runs, read_run
from mlpcli.config import RunConfig, config_from_mapping, dump_config, load_config
from mlpcli.data import check_range, preprocess
from mlpcli.data.files import MISSING_TOKENS, Table, shown
from mlpcli.errors import UserError
from mlpcli.evaluate import (
    EvalReport,
    Rows,
    SavedModel,
    class_probabilities,
    evaluate,
    file_rows,
    load_model,
)
from mlpcli.runs import (
    AlreadyFinished,
    RunInterrupted,
    read_run_config,
    read_summary,
    resume_run,
    train_run,
    versions,
)
from mlpcli.status import RunStatus
from mlpcli.train import Callback, TrainResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlpcli.checks import GradcheckPlan, ParamCheck
    from mlpcli.data import DatasetInfo
    from mlpcli.data.inspect import Inspection
    from mlpcli.data.mnist import Progress
    from mlpcli.evaluate import Predictions
    from mlpcli.export import Exported
    from mlpcli.grid import GridOutcome, GridPlan
    from mlpcli.report import Written
    from mlpcli.tune import Study

PathLike = str | Path

__all__ = [
    "AlreadyFinished",
    "Callback",
    "Comparison",
    "Gradcheck",
    "Grid",
    "Model",
    "Run",
    "RunInterrupted",
    "RunStatus",
    "Validation",
    "compare",
    "datasets",
    "download",
    "evaluate_model",
    "export",
    "gradcheck",
    "grid",
    "inspect",
    "is_grid",
    "load",
    "predict_file",
    "report",
    "resume",
    "resume_grid",
    "schema",
    "train",
    "tune",
    "validate",
    "versions",
    "watch_report",
]


# ----------------------------------------------------------------------------- training


@dataclass
class Run:
    """A trained run: where its directory is, how it ended, its final metrics."""

    path: Path
    status: RunStatus
    reason: str
    config: RunConfig
    final: dict[str, dict[str, float]]  # split -> metrics of the final model
    best_epoch: int
    epochs_run: int
    result: TrainResult | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict[str, float]:
        """The final model's metrics as flat keys: `test_accuracy`, `val_loss`, ..."""
        return {
            f"{split}_{k}": v for split, values in self.final.items() for k, v in values.items()
        }

    def history(self) -> dict[str, list[float]]:
        """metrics.csv of the kept restart as columns: `epoch`, `train_loss`, `val_loss`, ..."""
        return read_run(self.path).curves

    def load(self) -> "Model":
        """The run's final model."""
        return load(self.path)

    @classmethod
    def open(cls, path: PathLike) -> "Run":
        """An existing run directory (one `train` made before, or the CLI)."""
        path = Path(path)
        summary = read_summary(path)
        cfg = read_run_config(path)
        status = RunStatus.parse(summary.get("status")) or RunStatus.CORRUPT
        final: dict[str, dict[str, float]] = (
            summary["final"] if isinstance(summary.get("final"), dict) else {}
        )
        return cls(
            path=path,
            status=status,
            reason=str(summary.get("reason") or ""),
            config=cfg,
            final=final,
            best_epoch=int(summary.get("best_epoch") or 0),
            epochs_run=int(summary.get("epochs_run") or 0),
        )


def train(
    config: PathLike | Mapping[str, Any],
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    runs_dir: PathLike = "runs",
    quiet: bool = True,
    *,
    callbacks: Sequence[Callback] | None = None,
    stop: threading.Event | None = None,
) -> Run:
    """Train a config (a YAML path, or a dict as the YAML would read) into a new run directory.

    `overrides` are dotted keys, as `--set` takes them: `{"optimizer.lr": 0.01}` or
    `["optimizer.lr=0.01"]`. `quiet=False` shows the progress the CLI shows; `callbacks`
    receive the trainer's events instead; setting `stop` ends the run after the current
    batch (status `interrupted`, resumable). A run that diverges is returned with status
    `diverged`, not raised: look at `run.status`.
    """
    cfg = resolve_config(config, overrides)
    run_dir, result = train_run(cfg, Path(runs_dir), _callbacks(quiet, callbacks), stop)
    return _run(run_dir, cfg, result)


def resume(
    run_dir: PathLike,
    quiet: bool = True,
    *,
    callbacks: Sequence[Callback] | None = None,
    stop: threading.Event | None = None,
) -> Run:
    """Continue an interrupted (or killed) run from its last checkpoint, exactly as if it had
    never stopped; a run that has finished raises `AlreadyFinished` (mlpcli.runs)."""
    run_dir = Path(run_dir)
    result = resume_run(run_dir, _callbacks(quiet, callbacks), stop)
    return _run(run_dir, read_run_config(run_dir), result)


def tune(
    config: PathLike,
    overrides: Sequence[str] | None = None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    runs_dir: PathLike = "runs",
    plot: PathLike | None = None,
    on_update: "Callable[[Study], None] | None" = None,
    handle_signals: bool = False,
) -> "Study":
    """Search the config's `tune.space` with Optuna (the `tune` extra) as `mlpcli tune` does.

    The study lives in `<runs_dir>/<study>/` (SQLite, or `storage`, e.g. a PostgreSQL URL);
    calling again continues it. Returns every trial, the best, and `best_yaml`. `plot` draws
    the optimization history and parameter importances (matplotlib; the path is checked
    before the search). `on_update` sees the study after each trial event; with
    `handle_signals` (main thread only) Ctrl-C and SIGTERM end the trial in progress after
    its batch, and the study's `.interrupted` names the signal.
    """
    import contextlib

    from mlpcli.tune import Stopper, plan_tune, signals_stop
    from mlpcli.tune import tune as search

    plan = plan_tune(
        Path(config),
        list(overrides or []),
        trials=trials,
        timeout=timeout,
        jobs=jobs,
        storage=storage,
        study=study,
        runs_dir=Path(runs_dir),
    )
    if plot is not None:
        from mlpcli.tune_plot import check_plot_path

        check_plot_path(Path(plot))
    stopper = Stopper()
    with signals_stop(stopper) if handle_signals else contextlib.nullcontext():
        result = search(Path(config), plan=plan, stopper=stopper, on_update=on_update)
    if plot is not None:
        from mlpcli.tune_plot import plot_study

        plot_study(plan, result, Path(plot))
    return result


def _callbacks(quiet: bool, given: Sequence[Callback] | None) -> list[Callback]:
    if given is not None:
        return list(given)
    if quiet:
        return []
    from mlpcli.display import progress_callback

    progress = progress_callback(False)
    return [progress] if progress else []


def _run(run_dir: Path, cfg: RunConfig, result: TrainResult) -> Run:
    return Run(
        path=run_dir,
        status=result.status,
        reason=result.reason,
        config=cfg,
        final=result.final,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        result=result,
    )


@dataclass
class Validation:
    """What `mlpcli validate` reports: the resolved config and what it would build."""

    config: RunConfig
    task: str
    n_features: int
    class_names: list[str] | None
    rows: dict[str, int]  # split -> rows
    sizes: list[int]  # layer sizes, input to output
    n_params: int

    @property
    def yaml(self) -> str:
        """The resolved config as YAML, every default filled in."""
        return dump_config(self.config)

    def summary(self) -> list[tuple[str, Any]]:
        """(label, value) rows, in the order the CLI shows them."""
        return [
            ("task", self.task),
            ("features", self.n_features),
            ("classes", ", ".join(self.class_names) if self.class_names else "-"),
            *((f"{name} rows", n) for name, n in self.rows.items()),
            ("layers", " -> ".join(map(str, self.sizes))),
            ("parameters", f"{self.n_params:,}"),
        ]


def validate(
    config: PathLike | Mapping[str, Any],
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> Validation:
    """Check a config without training: it loads its data and builds (not trains) its model."""
    from mlpcli.build import build_model
    from mlpcli.data import load_dataset

    cfg = resolve_config(config, overrides)
    data = load_dataset(cfg.data, cfg.seed)
    rows = {name: len(part) for name, part in data.parts.items()}
    model = build_model(cfg, data.n_features, data.n_outputs, max(rows.values()))
    return Validation(
        cfg, data.task, data.n_features, data.class_names, rows, model.sizes, model.n_params
    )


def resolve_config(
    config: PathLike | Mapping[str, Any], overrides: Mapping[str, Any] | Sequence[str] | None
) -> RunConfig:
    """A validated config from a path or a mapping, with `--set`-style overrides applied."""
    if isinstance(overrides, Mapping):
        # JSON is YAML: each value keeps its type (0.01, true, null, [1, 2]) through --set
        items = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    elif isinstance(overrides, str):
        raise UserError("overrides: give a dict {key: value} or a list of 'KEY=VALUE' strings")
    else:
        items = list(overrides or [])
    if isinstance(config, Mapping):
        return config_from_mapping(dict(config), items)
    return load_config(Path(config), items)


# ----------------------------------------------------------------------------- a saved model


class Model:
    """A saved model: predictions and metrics on raw rows, the checkpoint's pipeline applied."""

    def __init__(self, saved: SavedModel) -> None:
        self._saved = saved

    @property
    def path(self) -> Path:
        """The checkpoint the model was loaded from."""
        return self._saved.path

    @property
    def task(self) -> str:
        return self._saved.task

    @property
    def classes(self) -> list[str] | None:
        """The class names, in the column order of `predict_proba`; None for regression."""
        return None if self._saved.class_names is None else list(self._saved.class_names)

    @property
    def feature_names(self) -> list[str]:
        """The model's input features after the pipeline: `col`, or `col=category`."""
        return list(self._saved.feature_names)

    @property
    def columns(self) -> list[str]:
        """The raw columns the model reads, in the order an array's columns must have."""
        return [c["name"] for c in preprocess.used_columns(self._saved.preprocess)]

    def __repr__(self) -> str:
        what = f"{len(self.classes)} classes" if self.classes else "regression"
        return f"<mlpcli.Model {self.path} ({what}, {len(self.columns)} columns)>"

    def predict(self, X: Any) -> np.ndarray:
        """Class names (classification) or values (regression), one per row of `X`.

        `X` is a file path (CSV, NPZ, Parquet), a pandas DataFrame or a dict of columns
        (matched by name, other columns ignored), or a 2-D array whose columns are
        `self.columns` in order (numeric data only).
        """
        logits = self._logits(X)
        if self._saved.class_names is None:
            return logits[:, 0].astype(np.float64)
        names = np.array(self._saved.class_names, dtype=object)
        return names[class_probabilities(logits).argmax(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """One probability column per class (`self.classes`), one row per row of `X`."""
        if self._saved.class_names is None:
            raise UserError("predict_proba needs a classification model; this one does regression")
        return class_probabilities(self._logits(X)).astype(np.float64)

    def evaluate(self, data: PathLike | None = None, split: str | None = None) -> EvalReport:
        """Metrics on a file with the target column, or on a split of the run's own data
        (default: test): `.metrics`, and per-class scores and a confusion matrix."""
        return evaluate(self._saved.path, None if data is None else Path(data), split)

    def _logits(self, X: Any) -> np.ndarray:
        return self._saved.logits(self._rows(X).X)

    def _rows(self, X: Any) -> Rows:
        if isinstance(X, str | Path):
            return file_rows(self._saved, Path(X), need_target=False)
        columns = _columns_of(X, self.columns)
        table = _table(columns, self._saved.preprocess)
        dtype = np.dtype(self._saved.model.dtype)
        check_range(table, dtype)
        features, notes = preprocess.transform(
            table.X, table, self._saved.preprocess, dtype, table.where
        )
        return Rows(features, None, table.origin, notes)


def load(run_dir_or_checkpoint: PathLike) -> Model:
    """The final model of a run directory, or the model of a checkpoint `.npz`."""
    return Model(load_model(Path(run_dir_or_checkpoint)))


def _columns_of(X: Any, names: list[str]) -> dict[str, np.ndarray]:
    """The named columns of a DataFrame, a dict of columns, or a 2-D array (in order)."""
    if hasattr(X, "columns") and hasattr(X, "__getitem__") and not isinstance(X, np.ndarray):
        X = {str(c): X[c].to_numpy() for c in X.columns}  # a pandas (or alike) DataFrame
    if isinstance(X, Mapping):
        missing = [n for n in names if n not in X]
        if missing:
            raise UserError(
                f"column '{missing[0]}' is missing (the model reads: {', '.join(names)})"
            )
        out = {n: np.asarray(X[n]).reshape(-1) for n in names}
        lengths = {len(v) for v in out.values()}
        if len(lengths) > 1:
            raise UserError(
                f"the columns have different lengths ({', '.join(map(str, sorted(lengths)))})"
            )
        return out
    array = np.asarray(X)
    if array.ndim == 1 and len(names) == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise UserError(
            f"X has shape {array.shape}; the model reads {len(names)} columns "
            f"({', '.join(names)}): give an array of shape (rows, {len(names)}), a DataFrame "
            "or a file"
        )
    return {n: array[:, j] for j, n in enumerate(names)}


def _table(columns: dict[str, np.ndarray], pipeline: dict[str, Any]) -> Table:
    """In-memory columns as the reader's Table: numbers as float64 (NaN missing), categories
    as codes of their text; the same missing tokens as in a file."""
    used = preprocess.used_columns(pipeline)
    n = len(next(iter(columns.values()))) if columns else 0
    X = np.empty((n, len(used)), dtype=np.float64)
    levels: dict[str, list[str]] = {}
    for j, c in enumerate(used):
        values = columns[c["name"]]
        if c["kind"] == "numeric":
            X[:, j] = _numbers(values, c["name"])
        else:
            texts = [None if _is_missing(v) else str(v).strip() for v in values]
            levels[c["name"]] = sorted({t for t in texts if t is not None})
            code = {t: k for k, t in enumerate(levels[c["name"]])}
            X[:, j] = [math.nan if t is None else code[t] for t in texts]
    return Table(
        X=X,
        y=None,
        feature_names=[c["name"] for c in used],
        target_name=None,
        origin="the given rows",
        kinds=[c["kind"] for c in used],
        levels=levels,
    )


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_TOKENS


def _numbers(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if _is_missing(v):
            out[i] = math.nan
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise UserError(
                f"row {i + 1}: non-numeric value '{shown(str(v))}' in column '{shown(name)}'"
            ) from None
    return out


# ----------------------------------------------------------------------------- comparing


def compare(
    paths: PathLike | Sequence[PathLike],
    sort: str | None = None,
    top: int | None = None,
    group: bool = True,
    *,
    plot: PathLike | None = None,
) -> Comparison:
    """Runs under `paths` (run directories or folders of them) as `mlpcli compare` shows them:
    `.rows` (sorted, best first), `.best`, `.differing` keys, `.to_json()`. `plot` also draws
    their learning curves to an image file (matplotlib), checked before the runs are read."""
    from mlpcli.evaluate import check_output_path

    given = _paths(paths)
    if plot is not None:
        check_output_path(Path(plot), "--plot", given)
    comparison = compare_runs(given, sort=sort, top=top, group=group)
    if plot is not None:
        from mlpcli.plot import plot_curves

        plot_curves(comparison, Path(plot))
    return comparison


# ----------------------------------------------------------------------------- the other commands
# One function per CLI command: the command parses its flags, calls it, and renders the result.


def evaluate_model(
    source: PathLike,
    data: PathLike | None = None,
    split: str | None = None,
    *,
    plot: PathLike | None = None,
) -> EvalReport:
    """`mlpcli eval`: metrics of a checkpoint or a run directory's final model, on a split of
    its own data (default test) or on a file with the target; `plot` also draws the decision
    regions of a 2-feature classifier (matplotlib), checked before anything is scored."""
    from mlpcli.evaluate import SPLITS, check_output_path

    source, data = Path(source), None if data is None else Path(data)
    if split is not None and split not in SPLITS:
        raise UserError(f"--split {split}: choose one of {', '.join(SPLITS)}")
    if plot is not None:
        check_output_path(Path(plot), "--plot", [source, *([data] if data else [])])
    report = evaluate(source, data, split)
    if plot is not None:
        from mlpcli.plot import plot_boundary

        plot_boundary(source, Path(plot), data, split)
    return report


def predict_file(
    source: PathLike,
    data: PathLike,
    *,
    proba: bool = False,
    label: bool = False,
    keep: Sequence[str] = (),
    out: PathLike | None = None,
) -> "Predictions":
    """`mlpcli predict`: one output row per row of the file `data`, as CSV cells: the class
    (or `proba` columns, with `label` the class too) or the value; `keep` copies input
    columns (IDs) in front. With `out` the CSV is also written there."""
    from mlpcli.evaluate import check_output_path, predict

    source, data = Path(source), Path(data)
    if out is not None:
        check_output_path(Path(out), "--out", [source, data])
    predictions = predict(source, data, proba, label, list(keep))
    if out is not None:
        try:
            with Path(out).open("w", newline="", encoding="utf-8") as f:
                predictions.write_csv(f)
        except OSError as exc:
            raise UserError(f"{out}: cannot write predictions: {exc.strerror}") from None
    return predictions


def inspect(data: PathLike, target: str | None = None) -> "Inspection":
    """`mlpcli inspect`: each column of a table as mlpcli reads it, and a starter config
    (`.config`, YAML text) that trains on it."""
    from mlpcli.data.inspect import inspect_table

    return inspect_table(Path(data), target)


def export(source: PathLike, out: PathLike, format: str = "onnx") -> "Exported":
    """`mlpcli export`: the final model with its preprocessing as an ONNX file (`onnx` extra)."""
    from mlpcli.evaluate import check_output_path
    from mlpcli.export import export as export_model

    source, out = Path(source), Path(out)
    check_output_path(out, "--out", [source])
    return export_model(source, out, format)


def report(
    paths: PathLike | Sequence[PathLike],
    out: PathLike = "report.html",
    sort: str | None = None,
    group: bool = True,
    *,
    reload_seconds: float | None = None,
) -> "Written":
    """`mlpcli report`: the runs under `paths` as one self-contained HTML page (`report` extra);
    `reload_seconds` makes the page reload itself (for a report being rewritten)."""
    from mlpcli.evaluate import check_output_path
    from mlpcli.report import write_report

    given, out = _paths(paths), Path(out)
    check_output_path(out, "--out", given)
    return write_report(given, out, sort, group, reload_seconds=reload_seconds)


def watch_report(
    paths: PathLike | Sequence[PathLike],
    out: PathLike,
    every: float,
    stop: threading.Event,
    *,
    on_write: "Callable[[Written], None] | None" = None,
    sort: str | None = None,
    group: bool = True,
) -> "Written":
    """`mlpcli report --watch`: rewrite the page whenever a run's files change, until `stop`
    is set; the last page written is a plain report (no self-reload)."""
    from mlpcli.evaluate import check_output_path
    from mlpcli.report import watch

    given, out = _paths(paths), Path(out)
    check_output_path(out, "--out", given)
    return watch(given, out, every, stop, on_write=on_write, sort=sort, group=group)


@dataclass
class Gradcheck:
    """What `gradcheck` checked, and the relative error of backprop per parameter."""

    plan: "GradcheckPlan"
    checks: "list[ParamCheck]"

    @property
    def worst(self) -> float:
        return max(c.relative_error for c in self.checks)

    @property
    def tolerance(self) -> float:
        """The largest relative error that passes."""
        from mlpcli.checks import TOLERANCE

        return TOLERANCE

    @property
    def ok(self) -> bool:
        return self.worst < self.tolerance


def gradcheck(
    config: PathLike | Mapping[str, Any],
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    rows: int = 8,
    sample: int | None = None,
    *,
    on_start: "Callable[[GradcheckPlan], None] | None" = None,
    on_entry: "Callable[[], None] | None" = None,
) -> Gradcheck:
    """`mlpcli gradcheck`: backprop of the configured network (float64, dropout off, initial
    weights) against central finite differences on the first `rows` training rows.

    `sample` random entries per weight and bias (0: all; None: all up to 20,000 parameters,
    else 30); `on_start` sees the plan (its size and time estimate) before the check runs,
    `on_entry` is called after each entry checked.
    """
    from mlpcli.checks import plan_gradcheck, run_gradcheck
    from mlpcli.data import load_dataset

    cfg = resolve_config(config, overrides)
    plan = plan_gradcheck(cfg, load_dataset(cfg.data, cfg.seed), rows, sample)
    if on_start is not None:
        on_start(plan)
    return Gradcheck(plan, run_gradcheck(plan, on_entry))


def datasets() -> "list[DatasetInfo]":
    """`mlpcli datasets`: every built-in dataset (name, rows, features, task, source)."""
    from mlpcli.data import catalog

    return catalog()


def download(name: str, progress: "Progress | None" = None) -> Path:
    """`mlpcli datasets --download`: fetch a downloadable dataset (mnist) into the cache now;
    the path of the file (found locally, or downloaded)."""
    from mlpcli.data import mnist

    if name != "mnist":
        raise UserError(f"--download {name}: only mnist is downloaded (the rest ship)")
    return mnist.mnist_path(progress)


def schema() -> dict[str, Any]:
    """`mlpcli schema`: the config's JSON Schema."""
    from mlpcli.config import json_schema

    return json_schema()


# ----------------------------------------------------------------------------- grids


@dataclass
class Grid:
    """A grid's runs: each point's outcome in plan order, in `folder` (with grid.json)."""

    folder: Path
    outcomes: "list[GridOutcome]"
    stopped: bool  # a stop request ended it early: `resume_grid(folder)` continues it

    @property
    def failed(self) -> "list[GridOutcome]":
        return [o for o in self.outcomes if not o.ok]

    @property
    def unfinished(self) -> "list[GridOutcome]":
        return [o for o in self.outcomes if o.status.resumable]

    def compare(self) -> Comparison | None:
        """The grid's runs as `compare` shows them; None when no run was trained."""
        if not any(o.run_dir for o in self.outcomes):
            return None
        return compare_runs([self.folder])


def grid(
    config: PathLike,
    overrides: Sequence[str] = (),
    values: Mapping[str, Sequence[Any]] | Sequence[str] = (),
    repeat: int = 1,
    jobs: int | None = None,
    runs_dir: PathLike = "runs",
    *,
    on_start: "Callable[[GridPlan, int], None] | None" = None,
    on_done: "Callable[[GridOutcome, int, int], None] | None" = None,
    stop: threading.Event | None = None,
) -> Grid:
    """`mlpcli train --grid/--repeat`: every combination of `values` (`{"optimizer.lr":
    [0.1, 0.01]}` or `["optimizer.lr=0.1,0.01"]`), `repeat` seeds each, on `jobs` worker
    processes (default: the cores), in one grid folder under `runs_dir`.

    An invalid combination is marked and skipped, not raised. `on_start` gets the plan and
    the workers used, `on_done` each outcome with its count and the total; setting `stop`
    ends every run after its batch (`Grid.stopped`, resumable with `resume_grid`).
    """
    from mlpcli.grid import parse_grid, plan_grid

    specs = (
        [f"{k}={','.join(str(v) for v in vs)}" for k, vs in values.items()]
        if isinstance(values, Mapping)
        else list(values)
    )
    plan = plan_grid(Path(config), list(overrides), parse_grid(specs), repeat, Path(runs_dir))
    return _run_grid(plan, jobs, on_start, on_done, stop)


def resume_grid(
    folder: PathLike,
    jobs: int | None = None,
    *,
    on_start: "Callable[[GridPlan, int], None] | None" = None,
    on_done: "Callable[[GridOutcome, int, int], None] | None" = None,
    stop: threading.Event | None = None,
) -> Grid:
    """`mlpcli train --resume GRID_DIR`: finish a stopped grid (its interrupted runs resume,
    the ones never started start, the finished ones stay)."""
    from mlpcli.grid import plan_from_record

    return _run_grid(plan_from_record(Path(folder)), jobs, on_start, on_done, stop)


def is_grid(path: PathLike) -> bool:
    """Whether `path` is a grid folder (what `resume_grid` takes) rather than a run."""
    from mlpcli.grid import is_grid_folder

    return is_grid_folder(Path(path))


def _run_grid(
    plan: "GridPlan",
    jobs: int | None,
    on_start: "Callable[[GridPlan, int], None] | None",
    on_done: "Callable[[GridOutcome, int, int], None] | None",
    stop: threading.Event | None,
) -> Grid:
    from mlpcli.grid import default_jobs, run_grid

    jobs = jobs or default_jobs()
    if on_start is not None:
        on_start(plan, min(jobs, len(plan.points)))
    stop = stop if stop is not None else threading.Event()
    outcomes = run_grid(plan, jobs, on_done, stop)
    return Grid(plan.folder, outcomes, stop.is_set())


def _paths(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
