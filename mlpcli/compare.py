"""Compare runs: read run directories robustly, diff their configs, build plain rows.

Nothing here draws: display.py renders the table, plot.py the curves, and `--json` dumps
`Comparison.to_json()`. Reading never raises on a damaged run: a missing or corrupt file
becomes a status and a note, and the row shows what could be read.
"""

import csv
import difflib
import json
import math
import os
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from mlpcli.config import TASKS, minimize, primary_metric, read_yaml
from mlpcli.errors import UserError, printable
from mlpcli.status import RunStatus

RUN_FILES = ("summary.json", "config.yaml", "metrics.csv")
NOT_HYPERPARAMETERS = ("name",)  # differs between runs by construction
SPECIAL_SORTS = ("name", "epochs", "best_epoch", "time")
JSON_SCHEMA_VERSION = 1


@dataclass
class Run:
    """What could be read from one run directory."""

    path: Path
    status: RunStatus  # summary.json's, or crashed (running, process gone) / corrupt
    reason: str
    task: str | None
    monitor: str
    config: dict[str, Any]  # flattened: dotted key -> value; empty if config.yaml is unreadable
    curves: dict[str, list[float]]  # metrics.csv columns of the kept restart, epoch by epoch
    epochs_run: int | None
    best_epoch: int | None
    metrics: dict[str, float]  # train_/val_ at the best epoch, test_ of the kept model
    wall_seconds: float | None
    problems: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # summary.json as read (report shows it)

    @property
    def name(self) -> str:
        return self.path.name

    def value(self, key: str) -> float | None:
        """A numeric column of the table for this run (None when unknown)."""
        if key == "epochs":
            return None if self.epochs_run is None else float(self.epochs_run)
        if key == "best_epoch":
            return None if self.best_epoch is None else float(self.best_epoch)
        if key == "time":
            return self.wall_seconds
        return self.metrics.get(key)


@dataclass
class Row:
    """One line of the table: a run, or the runs of one config over several seeds."""

    name: str
    runs: list[Run]
    params: dict[str, Any]  # the differing hyperparameters (absent key: not in that config)
    label: str = ""  # the name to show: without the run dir's timestamp where that stays unique

    @property
    def status(self) -> str:
        statuses = [r.status for r in self.runs]
        if len(set(statuses)) == 1:
            return statuses[0]
        counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
        return ", ".join(f"{n} {s}" for s, n in counts.items())

    @property
    def finished(self) -> bool:
        return any(r.status.succeeded for r in self.runs)

    @property
    def failed(self) -> bool:
        return all(r.status.failure for r in self.runs)

    def stat(self, key: str) -> tuple[float | None, float | None]:
        """Mean and sample standard deviation over the runs that have the value."""
        values = [v for r in self.runs if (v := r.value(key)) is not None and math.isfinite(v)]
        if not values:
            return None, None
        std = statistics.stdev(values) if len(values) > 1 else None
        return statistics.fmean(values), std

    def val_loss_curve(self) -> list[float]:
        """The validation loss per epoch, averaged over the row's runs where they overlap."""
        curves = [r.curves.get("val_loss", []) for r in self.runs]
        length = max((len(c) for c in curves), default=0)
        out = []
        for i in range(length):
            at = [c[i] for c in curves if i < len(c) and math.isfinite(c[i])]
            out.append(statistics.fmean(at) if at else math.nan)
        return out


@dataclass
class Comparison:
    """Everything the table, the plot and --json show."""

    rows: list[Row]  # sorted, --top applied
    common: dict[str, Any]  # hyperparameters identical in every readable config
    differing: list[str]  # dotted keys whose values differ between runs (the columns)
    sort: str
    metric: str  # accuracy | r2, or loss when the runs have different tasks
    columns: list[str]  # metric columns to show
    tasks: list[str]
    grouped: bool  # rows are seed groups with mean ± std
    best: Row | None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable form; its keys are stable (schema version 1, docs/compare.md)."""
        keys = ["epochs", "best_epoch", "time", *_all_metric_keys(self.rows)]
        return _json_safe(
            {
                "schema": JSON_SCHEMA_VERSION,
                "sort": self.sort,
                "metric": self.metric,
                "tasks": self.tasks,
                "grouped": self.grouped,
                "best": self.best.name if self.best else None,
                "differing": self.differing,
                "common": self.common,
                "notes": self.notes,
                "rows": [_row_json(row, keys) for row in self.rows],
            }
        )


# ----------------------------------------------------------------------------- finding runs


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """Run directories given directly or found under the given folders (grids nest one deeper)."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such run directory or folder")
        if not path.is_dir():
            raise UserError(f"{path}: not a folder (give a run directory or a folder of runs)")
        if is_run_dir(path):
            found.append(path)
            continue
        before = len(found)
        found.extend(_walk(path))
        if len(found) == before:
            raise UserError(
                f"{path}: no run directories in it "
                f"(a run directory holds {', '.join(RUN_FILES)}); train one with `mlpcli train`"
            )
    return list(dict.fromkeys(p.resolve() for p in found))


def is_run_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in RUN_FILES)


def _walk(folder: Path) -> Iterable[Path]:
    try:
        # a link to a folder is not followed: a link to `..` would never end
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        if child.name.startswith(".") or child.name == "checkpoints":
            continue
        if is_run_dir(child):
            yield child
        else:
            yield from _walk(child)


# ----------------------------------------------------------------------------- reading one run


def read_run(path: Path) -> Run:
    """Read a run directory; never raises: problems become notes and a status."""
    problems: list[str] = []
    summary = _read_summary(path / "summary.json", problems)
    raw_config = _read_config(path / "config.yaml", problems)
    config = flatten(raw_config) if isinstance(raw_config, dict) else {}
    rows = _read_metrics(path / "metrics.csv", problems)

    status = RunStatus.parse(summary.get("status")) or RunStatus.CORRUPT
    reason = printable(str(summary.get("reason") or ""))[:200]
    if summary and status is RunStatus.CORRUPT:
        problems.append(f"summary.json: not a status mlpcli writes: {summary.get('status')!r:.40}")
    if status is RunStatus.RUNNING and not _alive(summary.get("pid")):
        status = RunStatus.CRASHED
        reason = f"summary says running, but its process {summary.get('pid')} is gone"
    if raw_config is None and (path / "config.yaml").exists():
        status = RunStatus.CORRUPT  # what it trained cannot be told: not a run to rank
    if status is RunStatus.CORRUPT:
        reason = "; ".join(problems)
    task = summary.get("task") or config.get("data.task") or _task_from_columns(rows)
    monitor = str(summary.get("monitor") or _monitor_from_config(config))
    lower = minimize(monitor)

    restart = _int(summary.get("best_restart")) or _best_restart(rows, monitor, lower)
    kept = [row for row in rows if int(row.get("restart", 1)) == restart] if rows else []
    curves = {key: [row[key] for row in kept if key in row] for key in (kept[0] if kept else {})}
    best_epoch = _int(summary.get("best_epoch")) or _best_epoch(kept, monitor, lower)

    metrics: dict[str, float] = {}
    if best_epoch is not None:
        at_best = next((row for row in kept if int(row.get("epoch", 0)) == best_epoch), {})
        metrics.update({k: v for k, v in at_best.items() if k.startswith(("train_", "val_"))})
    final = summary.get("final")
    if isinstance(final, dict):
        for split, values in final.items():
            if isinstance(values, dict):
                metrics.update(
                    {f"{split}_{k}": float(v) for k, v in values.items() if _is_number(v)}
                )
    epochs_run = _int(summary.get("epochs_run"))
    if epochs_run is None and rows:
        epochs_run = len(rows)
    wall = summary.get("wall_seconds")
    wall_seconds = float(wall) if _is_number(wall) and math.isfinite(wall) else None
    if wall_seconds is None and rows:
        wall_seconds = sum(row.get("seconds", 0.0) for row in rows)
    return Run(
        path=path,
        status=status,
        reason=reason,
        task=str(task) if task else None,
        monitor=monitor,
        config=config,
        curves=curves,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        metrics=metrics,
        wall_seconds=wall_seconds,
        problems=problems,
        summary=summary,
    )


def _read_file(path: Path) -> str:
    """A run file's text; a link to /dev/zero or a FIFO is not a run file (and never ends)."""
    if path.exists() and not path.is_file():
        raise OSError(f"{path.name} is not a regular file")
    return path.read_text(encoding="utf-8")


def _read_run_or_corrupt(path: Path) -> Run:
    """`read_run`, and a run whose files hold values it cannot make sense of is corrupt."""
    try:
        return read_run(path)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        why = f"its files hold values compare cannot read ({type(exc).__name__})"
        return Run(
            path, RunStatus.CORRUPT, why, None, "val_loss", {}, {}, None, None, {}, None, [why]
        )


def _read_summary(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        content = json.loads(_read_file(path))
    except FileNotFoundError:
        problems.append("summary.json is missing")
        return {}
    except RecursionError:
        problems.append("summary.json is unreadable (nested too deep)")
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"summary.json is unreadable ({_short(exc)})")
        return {}
    if not isinstance(content, dict):
        problems.append("summary.json is not a JSON object")
        return {}
    huge = [k for k, v in content.items() if type(v) is int and abs(v) >= 2**53]
    if huge:
        problems.append(f"summary.json: '{printable(huge[0])[:40]}' is out of range (ignored)")
    return content


def _read_config(path: Path, problems: list[str]) -> Any:
    if not path.exists():
        problems.append("config.yaml is missing")
        return None
    try:
        if not path.is_file():
            raise UserError(f"{path.name} is not a regular file")
        content, _ = read_yaml(path)  # the limits every YAML reader applies
    except UserError as exc:
        problems.append(f"config.yaml is unreadable ({_short(exc)})")
        return None
    if not isinstance(content, dict):
        problems.append("config.yaml is not a mapping")
        return None
    return content


def _read_metrics(path: Path, problems: list[str]) -> list[dict[str, float]]:
    """Rows of metrics.csv; rows that do not parse (a run killed mid-write) are skipped."""
    try:
        text = _read_file(path)
    except FileNotFoundError:
        return []  # a run that has not finished its first epoch yet
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"metrics.csv is unreadable ({_short(exc)})")
        return []
    reader = csv.reader(text.splitlines())
    header = next(reader, None) or []
    rows, bad = [], 0
    for fields in reader:
        try:
            if len(fields) != len(header):
                raise ValueError
            row = {k: float(v) for k, v in zip(header, fields, strict=True) if v != ""}
            if not all(_is_count(row.get(k, 1.0)) for k in ("epoch", "restart")):
                raise ValueError  # nan, inf, -3 or 2.5 as an epoch: not a row mlpcli wrote
            rows.append(row)
        except ValueError:
            bad += 1
    if bad:
        problems.append(f"metrics.csv: skipped {bad} unreadable row(s)")
    if header and "epoch" not in header:
        problems.append("metrics.csv has no 'epoch' column")
        return []
    return rows


def _is_count(value: float) -> bool:
    return math.isfinite(value) and value == int(value) and 0 <= value < 2**53


def _alive(pid: Any) -> bool:
    """Whether a process with this id exists (a run killed hard leaves status 'running')."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _task_from_columns(rows: list[dict[str, float]]) -> str | None:
    columns = set(rows[0]) if rows else set()
    if "train_accuracy" in columns:
        return "classification"
    if "train_r2" in columns:
        return "regression"
    return None


def _monitor_from_config(config: dict[str, Any]) -> str:
    return str(config.get("training.early_stopping.monitor") or "val_loss")


def _best_restart(rows: list[dict[str, float]], monitor: str, minimize: bool) -> int:
    """The restart holding the best monitored value (the last one if none is readable)."""
    best = _best_row(rows, monitor, minimize)
    if best is not None:
        return int(best.get("restart", 1))
    return int(rows[-1].get("restart", 1)) if rows else 1


def _best_epoch(rows: list[dict[str, float]], monitor: str, minimize: bool) -> int | None:
    best = _best_row(rows, monitor, minimize)
    return int(best["epoch"]) if best is not None and "epoch" in best else None


def _best_row(rows: list[dict[str, float]], monitor: str, minimize: bool) -> dict | None:
    scored = [row for row in rows if math.isfinite(row.get(monitor, math.nan))]
    if not scored:
        return None
    sign = 1.0 if minimize else -1.0
    return min(scored, key=lambda row: sign * row[monitor])


def _int(value: Any) -> int | None:
    """A positive count from summary.json (an epoch, a restart), or None."""
    return value if type(value) is int and 0 < value < 2**53 else None


def _is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number a float can hold (inf and NaN included: a diverged run's loss)."""
    if type(value) is int:
        return abs(value) < 2**1023  # a 400-digit integer does not fit a float
    return type(value) is float


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return printable(text)[:200]


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys, lists by index: `model.hidden.0.units` (as --set)."""
    if isinstance(node, dict) and node:
        items: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, list) and node:
        items = enumerate(node)
    else:
        return {prefix: node} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


# ----------------------------------------------------------------------------- comparing


def compare_runs(
    paths: Sequence[Path], sort: str | None = None, top: int | None = None, group: bool = True
) -> Comparison:
    """Read the runs under `paths`, diff their configs, build sorted rows."""
    runs = [_read_run_or_corrupt(p) for p in find_runs(paths)]
    tune_metric = _tune_metric(paths)
    if tune_metric is not None:
        group = False  # a tune dir's trials each have their own seed (seed + k): one row each
    notes = []
    configs = [r.config for r in runs if r.config]
    common, differing = diff_configs(configs)
    rows, grouped = _group_by_seed(runs, differing) if group else ([], False)
    if not grouped:
        rows = [Row(r.name, [r], _pick(r.config, differing)) for r in runs]
    else:
        seeds = sorted({r.config["seed"] for r in runs if "seed" in r.config}, key=_numeric_first)
        differing = [k for k in differing if k != "seed"]
        notes.append(
            f"runs that differ only by seed ({', '.join(map(str, seeds))}) are one row: "
            "mean ± sample std over them; --per-run shows each run"
        )

    tasks = sorted({r.task for r in runs if r.task})
    metric, columns = _shared_metric(tasks)
    if len(tasks) > 1:
        notes.append(
            f"runs of different tasks ({', '.join(tasks)}) are compared on what they share: "
            "loss, epochs and time (losses of different tasks are not on one scale)"
        )
    sort = sort or tune_metric or _default_sort(rows, metric)
    _check_sort(sort, rows, differing)
    if sort not in columns and _is_metric(sort):
        columns.append(sort)
    rows.sort(key=lambda row: _sort_key(row, sort))
    _set_labels(rows)
    rank_by = sort if _is_metric(sort) else _default_sort(rows, metric)
    best = _best(rows, rank_by)
    for r in runs:
        if r.problems:
            notes.append(f"{r.name}: {'; '.join(r.problems)}")
    return Comparison(
        rows=rows[:top] if top else rows,
        common=common,
        differing=differing,
        sort=sort,
        metric=metric,
        columns=columns,
        tasks=tasks,
        grouped=grouped,
        best=best,
        notes=notes,
    )


def _tune_metric(paths: Sequence[Path]) -> str | None:
    """The metric a tune directory among `paths` was searched on (its trials sort by it)."""
    for path in paths:
        try:
            record = json.loads(_read_file(path / "tune.json"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        metric = record.get("metric") if isinstance(record, dict) else None
        if isinstance(metric, str) and _is_metric(metric):
            return metric
    return None


def _shared_metric(tasks: list[str]) -> tuple[str, list[str]]:
    """The primary metric of the runs' task and the metric columns; the loss if tasks differ."""
    if len(tasks) > 1:
        return "loss", ["val_loss", "test_loss"]
    metric = primary_metric(tasks[0] if tasks else "classification")
    return metric, [f"val_{metric}", f"test_{metric}", "test_loss"]


def diff_configs(configs: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Keys identical in every config (with their value), and the keys that differ.

    A key that only some kinds of a section have (`training.schedule.step_size` of the
    step schedule) is no difference of its own where the section's `name` already differs:
    when every config that has it agrees on it, it is left out of both.
    """
    missing = object()
    keys = list(dict.fromkeys(k for c in configs for k in c if k not in NOT_HYPERPARAMETERS))
    common, differing = {}, []
    for key in keys:
        values = [c.get(key, missing) for c in configs]
        present = [v for v in values if v is not missing]
        if len(present) == len(values) and all(v == values[0] for v in values):
            common[key] = values[0]
        elif not (_of_another_kind(key, configs) and all(v == present[0] for v in present)):
            differing.append(key)
    return common, differing


def _of_another_kind(key: str, configs: list[dict[str, Any]]) -> bool:
    """Whether the configs lacking `key` are exactly those whose section is another kind."""
    section = key.rpartition(".")[0]
    name = f"{section}.name"
    if not section or key == name:
        return False
    having = {json.dumps(c.get(name), default=str) for c in configs if key in c}
    lacking = {json.dumps(c.get(name), default=str) for c in configs if key not in c}
    return all(name in c for c in configs) and not having & lacking


def _numeric_first(value: Any) -> tuple[int, Any]:
    """Sort key: numbers by value (2 before 10), then anything else as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _pick(config: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {k: config[k] for k in keys if k in config}


def _group_by_seed(runs: list[Run], differing: list[str]) -> tuple[list[Row], bool]:
    """One row per config over seeds, if any config was run with more than one seed."""
    if "seed" not in differing:
        return [], False
    keys = [k for k in differing if k != "seed"]
    groups: dict[str, list[Run]] = {}
    for run in runs:
        if not run.config:  # unknown config: never merged with others
            groups[f"\0{run.path}"] = [run]
            continue
        identity = json.dumps(_pick(run.config, keys), sort_keys=True, default=str)
        groups.setdefault(identity, []).append(run)
    if all(len(members) == 1 for members in groups.values()):
        return [], False
    rows = [Row(_group_name(m), m, _pick(m[0].config, keys)) for m in groups.values()]
    return rows, True


def _group_name(members: list[Run]) -> str:
    """The config name the seeds share (a grid's `..._seed-N` suffix dropped)."""
    if len(members) == 1:
        return members[0].name
    names = {re.sub(r"[-_]seed-?\d+$", "", str(r.config.get("name", r.name))) for r in members}
    if len(names) == 1:
        return names.pop()
    return f"{members[0].name} (+{len(members) - 1})"


def _set_labels(rows: list[Row]) -> None:
    """Row names without the `-YYYYmmdd-HHMMSS[-k]` a run dir ends with, if still unique."""
    short = [re.sub(r"-\d{8}-\d{6}(-\d+)?$", "", row.name) for row in rows]
    unique = len(set(short)) == len(short)
    for row, label in zip(rows, short, strict=True):
        row.label = label if unique else row.name


def _is_metric(key: str) -> bool:
    return key.startswith(("train_", "val_", "test_"))


def _default_sort(rows: list[Row], metric: str) -> str:
    for key in (f"val_{metric}", f"test_{metric}", f"train_{metric}"):
        if any(row.stat(key)[0] is not None for row in rows):
            return key
    return f"val_{metric}"


def _all_metric_keys(rows: list[Row]) -> list[str]:
    return sorted({k for row in rows for r in row.runs for k in r.metrics})


def _check_sort(sort: str, rows: list[Row], differing: list[str]) -> None:
    names = ["loss", *(primary_metric(task) for task in TASKS)]
    metrics = [f"{s}_{m}" for s in ("train", "val", "test") for m in names]
    known = [*dict.fromkeys([*_all_metric_keys(rows), *metrics]), *SPECIAL_SORTS]
    if sort in known or sort in differing:
        return
    if any(sort in r.config for row in rows for r in row.runs):
        return
    close = difflib.get_close_matches(sort, known + differing, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UserError(
        f"--sort {sort}: not a column or config key of these runs "
        f"(valid: {', '.join(known)}, or a config key such as optimizer.lr){hint}"
    )


def _sort_key(row: Row, sort: str) -> tuple:
    """Best first for metrics; ascending for names, config keys, epochs and time."""
    if sort == "name":
        return (row.name,)
    if sort in SPECIAL_SORTS or _is_metric(sort):
        mean = row.stat(sort)[0]
        sign = 1.0 if minimize(sort) else -1.0
        signed = sign * mean if mean is not None else math.inf
        # failed runs (diverged, crashed, corrupt) go after the rest, then missing values
        return (row.failed, mean is None, signed, row.name)
    value: Any = row.params.get(sort, row.runs[0].config.get(sort))
    if value is not None and not isinstance(value, int | float | str):
        value = json.dumps(value)  # null sections, lists: compare as text
    return (value is None, type(value).__name__, value if value is not None else 0, row.name)


def _best(rows: list[Row], key: str) -> Row | None:
    """The best finished row on `key` (a metric), if any row has it."""
    candidates = [row for row in rows if row.finished and row.stat(key)[0] is not None]
    if not candidates:
        return None
    return min(candidates, key=lambda row: _sort_key(row, key))


def _row_json(row: Row, keys: list[str]) -> dict[str, Any]:
    values, stds = {}, {}
    for key in keys:
        mean, std = row.stat(key)
        values[key] = mean
        if row.runs and len(row.runs) > 1:
            stds[key] = std
    return {
        "name": row.name,
        "status": row.status,
        "params": row.params,
        "n_runs": len(row.runs),
        "values": values,
        "std": stds,
        "val_loss_curve": row.val_loss_curve(),
        "runs": [
            {
                "name": r.name,
                "path": str(r.path),
                "status": r.status,
                "reason": r.reason,
                "task": r.task,
                "seed": r.config.get("seed"),
                "epochs_run": r.epochs_run,
                "best_epoch": r.best_epoch,
                "wall_seconds": r.wall_seconds,
                "metrics": r.metrics,
                "problems": r.problems,
            }
            for r in row.runs
        ],
    }


def _json_safe(node: Any) -> Any:
    """NaN and inf (a diverged curve) as null: JSON has no such numbers."""
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {k: _json_safe(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_json_safe(v) for v in node]
    return node
