"""Grids: train every combination of a few config values, in parallel worker processes.

`--grid optimizer.name=sgd,adam --grid optimizer.lr=0.1,0.01` makes four runs, each a
normal run directory (written by `runs.train_run`) named after its values, all in one
folder, so `mlpcli compare FOLDER` shows the grid. A combination that fails (an invalid
value, a crash) is recorded with its status; the others go on.
"""

import itertools
import json
import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlpcli.config import RunConfig, config_from_dict, load_config
from mlpcli.errors import UserError
from mlpcli.signals import STOP_SIGNALS
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
    resume: Path | None = None  # a run dir of an earlier, interrupted session: resume it
    done: "GridOutcome | None" = None  # its outcome, when an earlier session finished it


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


NOT_STARTED = "stopped before it started"


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
    stop: threading.Event | None = None,
) -> list[GridOutcome]:
    """Train the plan's valid points on `jobs` worker processes; outcomes in plan order.

    Setting `stop` (the CLI's signal handler does) stops every worker after its batch and
    starts nothing more: those runs end `interrupted`, the points not started say so, and
    grid.json records all of it for `mlpcli train --resume GRID_DIR`.
    """
    stop = stop if stop is not None else threading.Event()
    total = len(plan.points)
    outcomes: dict[int, GridOutcome] = {}

    def done(i: int, outcome: GridOutcome) -> None:
        outcomes[i] = outcome
        if on_done is not None:
            on_done(outcome, len(outcomes), total)

    todo = []
    for i, point in enumerate(plan.points):
        if point.done is not None:
            done(i, point.done)
        elif point.config is None and point.resume is None:
            done(i, GridOutcome(point, RunStatus.INVALID, point.error or "invalid config"))
        else:
            todo.append(i)
    jobs = min(jobs or default_jobs(), len(todo)) if todo else 1
    try:
        if jobs <= 1:
            for i in todo:
                done(i, train_point(plan.points[i], plan.folder, stop))
        else:
            _run_parallel(plan, todo, jobs, done, stop)
    finally:  # a second Ctrl-C included: record what is known
        for i in todo:
            if i not in outcomes:
                outcomes[i] = GridOutcome(plan.points[i], RunStatus.INTERRUPTED, NOT_STARTED)
        _write_record(plan, [outcomes[i] for i in range(total)])
    return [outcomes[i] for i in range(total)]


def _run_parallel(
    plan: GridPlan,
    todo: list[int],
    jobs: int,
    done: Callable[[int, GridOutcome], None],
    stop: threading.Event,
) -> None:
    # spawn, not fork: a forked child would inherit the parent's BLAS thread pool and
    # terminal state; spawn costs one import of mlpcli per worker, once.
    context = multiprocessing.get_context("spawn")
    with (
        _blas_threads_per_worker(jobs),
        ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init) as pool,
    ):
        # Workers are spawned by submit() and inherit the signal mask: with the stop signals
        # blocked there, a SIGTERM passed on to a worker that is still importing waits for
        # _worker_init's handler instead of killing it (which breaks the whole pool).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            futures: dict[Future[GridOutcome], int] = {
                pool.submit(train_point, plan.points[i], plan.folder): i for i in todo
            }
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        pending = set(futures)
        stopping = False
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = futures[future]
                    done(i, _outcome_of(future, plan.points[i], stop))
                if stop.is_set() and not stopping:
                    stopping = True
                    _stop_workers(pending)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _outcome_of(
    future: "Future[GridOutcome]", point: GridPoint, stop: threading.Event
) -> GridOutcome:
    if future.cancelled():
        return GridOutcome(point, RunStatus.INTERRUPTED, NOT_STARTED)
    try:
        return future.result()
    except Exception as exc:  # the worker process died (killed, out of memory)
        if stop.is_set():  # e.g. Ctrl-C reached a worker still starting up
            return GridOutcome(point, RunStatus.INTERRUPTED, NOT_STARTED)
        return GridOutcome(point, RunStatus.ERROR, f"worker process failed: {exc}")


def _stop_workers(pending: "set[Future[GridOutcome]]") -> None:
    """Nothing queued starts; every worker stops after its batch.

    A Ctrl-C in a terminal reaches the workers by itself (one process group); a SIGTERM
    sent to this process alone does not, so it is passed on (a worker takes the second of
    two signals that close together as the same request).
    """
    for future in pending:
        future.cancel()
    for child in multiprocessing.active_children():
        if child.pid is not None:
            with suppress(OSError):
                os.kill(child.pid, signal.SIGTERM)


# In a worker process: set by its signal handler, checked between batches.
_STOP = threading.Event()
_SIGNAL_ECHO_SECONDS = 2.0


def _worker_init() -> None:
    """A worker stops its run after the batch on SIGINT / SIGTERM / SIGHUP, like `train`.

    A second signal within a couple of seconds is the same request arriving twice (the
    terminal's Ctrl-C and the one the grid passes on); a later one quits at once.
    """
    first: list[float] = []

    def handle(signum: int, frame: Any) -> None:
        now = time.monotonic()
        if first and now - first[0] > _SIGNAL_ECHO_SECONDS:
            raise KeyboardInterrupt
        if not first:
            first.append(now)
        _STOP.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked since spawn


def train_point(point: GridPoint, folder: Path, stop: threading.Event | None = None) -> GridOutcome:
    """Train (or resume) one combination into `folder`; never raises, so one failure
    stops nothing."""
    from mlpcli.runs import AlreadyFinished, RunInterrupted, resume_run, train_run

    stop = stop if stop is not None else _STOP
    start = time.perf_counter()
    if stop.is_set():
        return GridOutcome(point, RunStatus.INTERRUPTED, NOT_STARTED)
    try:
        if point.resume is not None:
            run_dir, result = point.resume, resume_run(point.resume, [], stop)
        else:
            assert point.config is not None
            run_dir, result = train_run(point.config, folder, [], stop)
    except AlreadyFinished as exc:  # it finished after grid.json was written
        return GridOutcome(point, exc.status, "finished in an earlier session", point.resume)
    except RunInterrupted as exc:  # before training started, or a second signal
        status, message = RunStatus.INTERRUPTED, NOT_STARTED if exc.run_dir is None else str(exc)
        return GridOutcome(point, status, message, exc.run_dir, seconds=time.perf_counter() - start)
    except UserError as exc:  # e.g. a data file this combination points to is missing
        return GridOutcome(
            point, RunStatus.INVALID, str(exc), point.resume, seconds=time.perf_counter() - start
        )
    except Exception as exc:  # a bug in one combination must not take the grid down
        message = f"{type(exc).__name__}: {exc}"
        return GridOutcome(
            point, RunStatus.ERROR, message, point.resume, seconds=time.perf_counter() - start
        )
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
    """grid.json: the grid, and every combination's outcome (failed ones have no run dir)
    and resolved config, so that `train --resume GRID_DIR` can finish the grid."""
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
                "config": o.point.config.model_dump(mode="json") if o.point.config else None,
            }
            for o in outcomes
        ],
    }
    write_json_atomic(plan.folder / "grid.json", record)


def is_grid_folder(path: Path) -> bool:
    return (path / "grid.json").is_file() and not (path / "summary.json").exists()


def plan_from_record(folder: Path) -> GridPlan:
    """The plan of an interrupted grid from its grid.json: finished points are kept,
    interrupted runs resumed, the points never started trained."""
    path = folder / "grid.json"
    try:
        if path.stat().st_size > 50 << 20:
            raise UserError(f"{path}: too large for a grid record")
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"{path}: cannot read the grid record: {exc}") from None
    runs = record.get("runs") if isinstance(record, dict) else None
    if not isinstance(runs, list) or not isinstance(record.get("grid"), dict):
        raise UserError(f"{path}: not a grid record (no 'grid' and 'runs')")
    points = [_point_from_record(path, i, entry) for i, entry in enumerate(runs)]
    repeat = record.get("repeat")
    return GridPlan(folder, points, record["grid"], repeat if type(repeat) is int else 1)


def _point_from_record(path: Path, i: int, entry: Any) -> GridPoint:
    where = f"{path}: runs[{i}]"
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not a mapping")
    name, values, message = entry.get("name"), entry.get("values"), entry.get("message", "")
    status = RunStatus.parse(entry.get("status"))
    if status is None and entry.get("status") in (RunStatus.INVALID, RunStatus.ERROR):
        status = RunStatus(entry["status"])
    if not isinstance(name, str) or not isinstance(values, dict) or status is None:
        raise UserError(f"{where}: needs a 'name', 'values' and a run status")
    run_name = entry.get("run_dir")
    if run_name is not None and (
        not isinstance(run_name, str) or Path(run_name).name != run_name or run_name[:1] in ".~"
    ):
        raise UserError(f"{where}: 'run_dir' must name a folder inside the grid folder")
    run_dir = path.parent / run_name if run_name else None
    point = GridPoint(name, {str(k): str(v) for k, v in values.items()}, [])
    if status.finished or status is RunStatus.INVALID:
        point.done = GridOutcome(point, status, str(message), run_dir)
    elif run_dir is not None:
        point.resume = run_dir
    elif isinstance(entry.get("config"), dict):
        point.config = config_from_dict(entry["config"], f"{where} config")
    else:
        point.error = f"{message} (grid.json holds no config to start it with)"
    return point
