"""Grids: train every combination of a few config values, in parallel worker processes.

`--grid optimizer.name=sgd,adam --grid optimizer.lr=0.1,0.01` makes four runs, each a
normal run directory (written by `runs.train_run`) named after its values, all in one
folder, so `mlpcli compare FOLDER` shows the grid. A combination that fails (an invalid
value, a crash) is recorded with its status; the others go on.
"""

import itertools
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlpcli.config import RunConfig, load_config
from mlpcli.errors import UserError
from mlpcli.status import RunStatus

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class GridPoint:
    """One run of the grid: its values, the --set items that make it, its config if valid."""

    name: str
    values: dict[str, str]  # grid key -> value as typed (seed included with --repeat)
    overrides: list[str]
    config: RunConfig | None = None
    error: str | None = None  # why the config is invalid


@dataclass
class GridOutcome:
    point: GridPoint
    status: RunStatus  # a run's, or invalid / error for a combination never trained
    message: str
    run_dir: Path | None = None
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status.succeeded


@dataclass
class GridPlan:
    folder: Path
    points: list[GridPoint]
    grid: dict[str, list[str]]
    repeat: int


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """`KEY=V1,V2,...` items into {key: [values]}; values stay text (parsed like --set)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        values = [v.strip() for v in text.split(",")]
        if not sep or not key or not all(values):
            raise UserError(
                f"--grid {spec}: expected KEY=V1,V2,... e.g. --grid optimizer.lr=0.1,0.01"
            )
        if key in grid:
            raise UserError(f"--grid {spec}: '{key}' is given twice; list all its values once")
        if len(set(values)) != len(values):
            raise UserError(f"--grid {spec}: a value is listed twice")
        grid[key] = values
    return grid


def plan_grid(
    config: Path, overrides: list[str], grid: dict[str, list[str]], repeat: int, runs_dir: Path
) -> GridPlan:
    """Validate every combination's config and create the grid folder.

    The base config (without grid values) must be valid: a typo there would fail every
    run, so it is an error up front. An invalid grid value only marks its combinations.
    """
    if repeat < 1:
        raise UserError(f"--repeat {repeat}: must be at least 1")
    base = load_config(config, overrides)
    points = []
    keys = list(grid)
    for combo in itertools.product(*grid.values()):
        values = dict(zip(keys, combo, strict=True))
        for r in range(repeat):
            seed = {"seed": str(base.seed + r)} if repeat > 1 else {}
            name = point_name(base.name if not grid else "", {**values, **seed})
            items = [f"{k}={v}" for k, v in {**values, **seed}.items()]
            point = GridPoint(name, {**values, **seed}, [*overrides, *items, f"name={name}"])
            try:
                point.config = load_config(config, point.overrides)
            except UserError as exc:
                point.error = str(exc)
            points.append(point)
    folder = _create_folder(runs_dir, f"{base.name}-grid")
    return GridPlan(folder, points, grid, repeat)


def point_name(prefix: str, values: dict[str, str]) -> str:
    """A run name from its values: `name-sgd_lr-0.1`, a valid config name."""
    last = [_short_key(k) for k in values]
    # the full key where two grid keys end alike (model.dropout vs training.dropout)
    labels = [s if last.count(s) == 1 else k for s, k in zip(last, values, strict=True)]
    text = "_".join(f"{label}-{v}" for label, v in zip(labels, values.values(), strict=True))
    text = f"{prefix}_{text}" if prefix else text
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text).lstrip("._-")
    return text[:100] or "run"


def _short_key(key: str) -> str:
    """`optimizer.lr` -> lr; `optimizer.name` -> optimizer (its value says which)."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_grid(
    plan: GridPlan,
    jobs: int | None = None,
    on_done: Callable[[GridOutcome, int, int], None] | None = None,
) -> list[GridOutcome]:
    """Train the plan's valid points on `jobs` worker processes; outcomes in plan order."""
    total = len(plan.points)
    outcomes: dict[int, GridOutcome] = {}

    def done(i: int, outcome: GridOutcome) -> None:
        outcomes[i] = outcome
        if on_done is not None:
            on_done(outcome, len(outcomes), total)

    todo = []
    for i, point in enumerate(plan.points):
        if point.config is None:
            done(i, GridOutcome(point, RunStatus.INVALID, point.error or "invalid config"))
        else:
            todo.append(i)
    jobs = min(jobs or default_jobs(), len(todo)) if todo else 1
    if jobs <= 1:
        for i in todo:
            done(i, train_point(plan.points[i], plan.folder))
    else:
        _run_parallel(plan, todo, jobs, done)
    _write_record(plan, [outcomes[i] for i in range(total)])
    return [outcomes[i] for i in range(total)]


def _run_parallel(
    plan: GridPlan, todo: list[int], jobs: int, done: Callable[[int, GridOutcome], None]
) -> None:
    # spawn, not fork: a forked child would inherit the parent's BLAS thread pool and
    # terminal state; spawn costs one import of mlpcli per worker, once.
    context = multiprocessing.get_context("spawn")
    with (
        _blas_threads_per_worker(jobs),
        ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool,
    ):
        futures = {pool.submit(train_point, plan.points[i], plan.folder): i for i in todo}
        try:
            for future in as_completed(futures):
                i = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    outcome = GridOutcome(
                        plan.points[i], RunStatus.ERROR, f"worker process failed: {exc}"
                    )
                done(i, outcome)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def train_point(point: GridPoint, folder: Path) -> GridOutcome:
    """Train one combination into `folder`; never raises, so one failure stops nothing."""
    from mlpcli.runs import train_run

    assert point.config is not None
    start = time.perf_counter()
    try:
        run_dir, result = train_run(point.config, folder, [])
    except UserError as exc:  # e.g. a data file this combination points to is missing
        return GridOutcome(point, RunStatus.INVALID, str(exc), seconds=time.perf_counter() - start)
    except Exception as exc:  # a bug in one combination must not take the grid down
        message = f"{type(exc).__name__}: {exc}"
        return GridOutcome(point, RunStatus.ERROR, message, seconds=time.perf_counter() - start)
    return GridOutcome(
        point, result.status, result.reason, run_dir, result.final, time.perf_counter() - start
    )


@contextmanager
def _blas_threads_per_worker(jobs: int) -> Iterator[None]:
    """Workers share the cores: each gets cores // jobs BLAS threads, unless the user set them.

    Spawned workers read these variables when they import NumPy; N workers each running
    a full-size BLAS thread pool would oversubscribe the cores.
    """
    threads = str(max(1, default_jobs() // jobs))
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, threads)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _create_folder(runs_dir: Path, name: str) -> Path:
    """A new `<runs_dir>/<name>-<YYYYmmdd-HHMMSS>[-k]` folder, never an existing one."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        for k in range(1000):
            path = runs_dir / (f"{name}-{stamp}" + (f"-{k}" if k else ""))
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path
    except OSError as exc:
        raise UserError(f"{runs_dir}: cannot create the grid folder: {exc.strerror}") from None
    raise UserError(f"{runs_dir}: too many grids named '{name}' in the same second")


def _write_record(plan: GridPlan, outcomes: list[GridOutcome]) -> None:
    """grid.json: the grid, and every combination's outcome (failed ones have no run dir)."""
    from mlpcli.runs import write_json_atomic

    record: dict[str, Any] = {
        "grid": plan.grid,
        "repeat": plan.repeat,
        "runs": [
            {
                "name": o.point.name,
                "values": o.point.values,
                "status": o.status,
                "message": o.message,
                "run_dir": o.run_dir.name if o.run_dir else None,
            }
            for o in outcomes
        ],
    }
    write_json_atomic(plan.folder / "grid.json", record)
