"""Hyperparameter search: Optuna samples the config's `tune.space`, mlpcli trains each trial.

Every trial is a normal run directory (written by `runs.train_run`) inside the tune
directory `<runs-dir>/<study>/`, which also holds `study.db` (the SQLite study, unless
`--storage` names a database), `tune.json` (every trial and the best) and `best.yaml`
(the best trial's config, ready for `mlpcli train`). Searching, pruning and storage are
Optuna's: a trainer callback reports the monitored metric after each epoch and stops the
run when the pruner says so. The same command again continues the study.
"""

import contextlib
import fcntl
import functools
import math
import multiprocessing
import os
import re
import signal
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlpcli import signals
from mlpcli.config import (
    HiddenSpace,
    Range,
    RunConfig,
    TuneConfig,
    dump_config,
    load_config,
    minimize,
)
from mlpcli.errors import UserError
from mlpcli.status import RunStatus
from mlpcli.train import Callback, EpochRecord, Trainer, TrainResult

if TYPE_CHECKING:
    import optuna

INSTALL_HINT = 'pip install optuna "psycopg[binary]" cmaes  (or, in a clone: pip install ".[tune]")'
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Optuna's own states, lower-cased, as tune.json and the table show them.
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}
UPDATE_SECONDS = 1.0  # tune.json and the live table are redrawn at most this often
HEARTBEAT_SECONDS = 30  # trials of a killed machine are failed after GRACE_SECONDS of silence
GRACE_SECONDS = 120


# ----------------------------------------------------------------------------- the plan


@dataclass
class TunePlan:
    """A validated search: nothing is trained until every value of the space is accepted."""

    config_path: Path
    overrides: list[str]
    base: RunConfig
    tune: TuneConfig
    metric: str
    direction: str  # minimize | maximize
    study: str
    folder: Path  # the tune directory
    storage: str  # SQLAlchemy URL
    trials: int  # finished trials (complete + pruned) the study should reach
    timeout: float | None
    jobs: int
    max_epochs: int

    @property
    def shown_storage(self) -> str:
        """The storage URL without its password."""
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.storage)


def plan_tune(
    config: Path,
    overrides: list[str] | None = None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    runs_dir: Path = Path("runs"),
) -> TunePlan:
    """Read and check the config's tune section; every value the space can take is tried."""
    overrides = list(overrides or [])
    base = load_config(config, overrides)
    if base.tune is None:
        raise UserError(
            f"{config}: no 'tune:' section; add one with a search space, e.g. "
            "tune: {space: {optimizer.lr: {low: 1.0e-4, high: 0.1, log: true}}}"
        )
    spec = base.tune
    metric = spec.metric or base.monitor  # config.py checked it against the monitors
    for key, dim in spec.space.items():
        _check_dimension(config, overrides, base, key, dim)
    if spec.sampler == "grid":
        grid_space(spec)  # refuses continuous ranges
    if trials is not None and trials < 1:
        raise UserError(f"--trials {trials}: must be at least 1")
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout {timeout:g}: must be more than 0 seconds")
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: must be at least 1")
    name = study or base.name
    if not STUDY_NAME.match(name):
        raise UserError(f"--study {name!r}: use letters, digits, '.', '_' and '-' (up to 100)")
    folder = runs_dir / name
    url = _storage_url(storage, folder)
    epochs = spec.space.get("training.epochs")
    max_epochs = int(epochs.high) if isinstance(epochs, Range) else base.training.epochs
    if isinstance(epochs, list):
        max_epochs = max(int(v) for v in epochs if isinstance(v, int | float))
    from mlpcli.data import load_dataset

    load_dataset(base.data, base.seed, dtype=base.training.dtype)  # data errors before any trial
    return TunePlan(
        config_path=config,
        overrides=overrides,
        base=base,
        tune=spec,
        metric=metric,
        direction="minimize" if minimize(metric) else "maximize",
        study=name,
        folder=folder,
        storage=url,
        trials=trials or spec.trials,
        timeout=timeout,
        jobs=jobs,
        max_epochs=max_epochs,
    )


def _storage_url(storage: str | None, folder: Path) -> str:
    if storage is None:
        return f"sqlite:///{folder.resolve() / 'study.db'}"
    scheme = storage.partition("://")[0]
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql+psycopg://" + storage.partition("://")[2]
    if scheme == "sqlite":
        return storage
    raise UserError(
        f"--storage {storage.partition('://')[0]}://...: use postgresql://USER@HOST/DB "
        "or sqlite:///FILE.db"
    )


def _check_dimension(
    config: Path, overrides: list[str], base: RunConfig, key: str, dim: Any
) -> None:
    """Every value `dim` can take must make a valid config (extremes, a fraction, each choice)."""
    if key in ("name", "tune") or key.startswith(("tune.", "name.")):
        raise UserError(f"{config}: tune.space.{key}: not a hyperparameter that can be searched")
    for value in _probe_values(base, key, dim):
        items = set_items(value if isinstance(dim, HiddenSpace) else {key: value}, base)
        try:
            load_config(config, [*overrides, *items])
        except UserError as exc:
            reason = re.sub(r"^--set [^:]*: ", "", str(exc))
            raise UserError(
                f"{config}: tune.space.{key}: the value {_show(value)} is not accepted: {reason}"
            ) from None


def _probe_values(base: RunConfig, key: str, dim: Any) -> list[Any]:
    if isinstance(dim, HiddenSpace):
        layers = _extremes(dim.layers)
        units = _extremes(dim.units) if dim.units is not None else [None]
        acts = _extremes(dim.activation) if dim.activation is not None else [None]
        return [
            {"model.hidden.layers": n, "model.hidden.units": u, "model.hidden.activation": a}
            for n in layers
            for u in units
            for a in acts
        ]
    return _extremes(dim)


def _extremes(dim: Any) -> list[Any]:
    if isinstance(dim, list):
        return list(dim)
    if isinstance(dim, Range):
        if dim.int:
            return [int(dim.low), int(dim.high)]
        # a fraction too: an integer key (batch_size) searched without `int: true` fails here
        inside = dim.low + (dim.high - dim.low) * 0.37
        return [dim.low, dim.high, inside] if dim.high > dim.low else [dim.low]
    return [dim]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in value.items() if v is not None)
    return repr(value)


def set_items(params: dict[str, Any], base: RunConfig) -> list[str]:
    """The `--set` items that apply sampled values (model.hidden built from depth and width)."""
    hidden = {
        k: v for k, v in params.items() if k.startswith("model.hidden.") and k.count(".") == 2
    }
    hidden = {k: v for k, v in hidden.items() if k.rsplit(".", 1)[1] in HIDDEN_KEYS}
    items = [f"{k}={_yaml(v)}" for k, v in params.items() if k not in hidden]
    if hidden:
        first = base.model.hidden[0] if base.model.hidden else None
        units = hidden.get("model.hidden.units") or (first.units if first else 32)
        act = hidden.get("model.hidden.activation") or (first.activation if first else "relu")
        layers = [{"units": int(units), "activation": act}] * int(hidden["model.hidden.layers"])
        items.append(f"model.hidden={_yaml(layers)}")
    return items


HIDDEN_KEYS = ("layers", "units", "activation")


def _yaml(value: Any) -> str:
    """A value as YAML text that `--set` parses back to the same value (1e-05 would be text)."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000).removesuffix("\n...\n").strip()
    )


def grid_space(spec: TuneConfig) -> dict[str, list[Any]]:
    """The finite values of every dimension, for the grid sampler."""
    out: dict[str, list[Any]] = {}
    for key, dim in spec.space.items():
        if isinstance(dim, HiddenSpace):
            for part in HIDDEN_KEYS:
                sub = getattr(dim, part)
                if sub is not None:
                    out[f"model.hidden.{part}"] = _grid_values(f"{key}.{part}", sub)
        else:
            out[key] = _grid_values(key, dim)
    return out


def _grid_values(key: str, dim: Any) -> list[Any]:
    if isinstance(dim, list):
        return list(dim)
    if not isinstance(dim, Range):
        return [dim]
    if dim.int:
        return list(range(int(dim.low), int(dim.high) + 1, int(dim.step or 1)))
    if dim.step is None:
        raise UserError(
            f"tune.space.{key}: sampler grid needs a finite set of values: "
            "give a list of choices, int: true or a step"
        )
    n = math.floor((dim.high - dim.low) / dim.step + 1e-9) + 1
    return [round(dim.low + i * dim.step, 12) for i in range(n)]


# ----------------------------------------------------------------------------- optuna objects


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UserError(f"mlpcli tune needs Optuna: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the heartbeat (how a killed machine's trials are failed) is marked experimental
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_study(plan: TunePlan, create: bool = False) -> "optuna.Study":
    """The plan's study in its storage (created when `create`), with its sampler and pruner."""
    _optuna()  # the clear message when Optuna is missing
    storage = _storage(plan)
    sampler = _sampler(plan, 0)
    pruner = _pruner(plan)
    for attempt in range(5):  # machines starting at once race to create the study's rows
        try:
            return _open(plan, storage, sampler, pruner, create)
        except Exception as exc:
            if "duplicate key" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _open(plan: TunePlan, storage: Any, sampler: Any, pruner: Any, create: bool) -> Any:
    optuna = _optuna()
    try:
        if create:
            study = optuna.create_study(
                study_name=plan.study,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                direction=plan.direction,
                load_if_exists=True,
            )
        else:
            study = optuna.load_study(
                study_name=plan.study, storage=storage, sampler=sampler, pruner=pruner
            )
    except ValueError as exc:  # e.g. a direction that differs from the stored study's
        raise UserError(f"study '{plan.study}': {exc}") from None
    return study


def _storage(plan: TunePlan) -> Any:
    optuna = _optuna()
    if plan.storage.startswith("sqlite:///"):
        path = plan.storage.removeprefix("sqlite:///")
        kwargs: dict[str, Any] = {"creator": functools.partial(_sqlite_connection, path)}
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise UserError(
                f"--storage postgresql://...: needs the psycopg driver: {INSTALL_HINT}"
            ) from None
        kwargs = {"pool_pre_ping": True}
    try:
        # A heartbeat lets the next start fail a killed machine's trials; a SQLite study
        # lives on one machine, where a dead process id says the same at no cost a trial.
        shared = not plan.storage.startswith("sqlite")
        for attempt in range(5):
            try:
                return optuna.storages.RDBStorage(
                    plan.storage,
                    engine_kwargs=kwargs,
                    heartbeat_interval=HEARTBEAT_SECONDS if shared else None,
                    grace_period=GRACE_SECONDS if shared else None,
                )
            except Exception as exc:
                # machines starting at once on a fresh database race to create its tables;
                # the loser finds them there on the next try
                racing = "duplicate key" in str(exc) or "already exists" in str(exc)
                if not racing or attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")
    except Exception as exc:  # sqlalchemy's OperationalError and friends: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"storage {plan.shown_storage}: cannot open the study: {first}") from None


def _sqlite_connection(path: str) -> sqlite3.Connection:
    """A connection in WAL mode without an fsync per commit (Optuna commits a dozen a trial).

    A killed process loses nothing that was committed; a power cut may lose the last
    trials, which the next start then runs again. Workers wait for the lock, not fail.
    """
    connection = sqlite3.connect(path, timeout=60, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def _sampler(plan: TunePlan, seed_offset: int) -> Any:
    optuna = _optuna()
    seed = (plan.base.seed + seed_offset) % 2**32
    name = plan.tune.sampler
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=plan.jobs > 1)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(plan.tune), seed=seed)
    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise UserError(f"tune.sampler cmaes needs the cmaes package: {INSTALL_HINT}") from None
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def _pruner(plan: TunePlan) -> Any:
    optuna = _optuna()
    epochs = plan.max_epochs
    if plan.tune.pruner == "median":
        # the first tenth of the epochs is never pruned (steps are epochs from 1): every net
        # starts out poor, and the first epochs say little about where it ends up
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=epochs // 10 + 1)
    if plan.tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, epochs // 20), max_resource=epochs, reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def suggest(trial: "optuna.Trial", spec: TuneConfig) -> dict[str, Any]:
    """Sample every dimension of the space through Optuna's define-by-run API."""
    params: dict[str, Any] = {}
    for key, dim in spec.space.items():
        if isinstance(dim, HiddenSpace):
            for part in HIDDEN_KEYS:
                sub = getattr(dim, part)
                if sub is not None:
                    params[f"model.hidden.{part}"] = _suggest_one(
                        trial, f"model.hidden.{part}", sub
                    )
        else:
            params[key] = _suggest_one(trial, key, dim)
    return params


def _suggest_one(trial: "optuna.Trial", name: str, dim: Any) -> Any:
    if isinstance(dim, list):
        return trial.suggest_categorical(name, dim)
    if isinstance(dim, Range):
        if dim.int:
            step = int(dim.step or 1)
            return trial.suggest_int(name, int(dim.low), int(dim.high), step=step, log=dim.log)
        return trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
    return dim  # a fixed value inside model.hidden (units: 64)


# ----------------------------------------------------------------------------- one trial


class Pruning(Callback):
    """Reports the metric to Optuna after every `every`-th epoch and stops the run when the
    pruner says so.

    Each report is a write to the study and each question to the pruner reads every trial's
    curve, several milliseconds together: `every` keeps that small beside short epochs (see
    `report_every`). The trainer knows nothing of Optuna: pruning sets the run's stop flag,
    so the run ends between batches like an interrupt, checkpoint and metrics flushed.
    """

    def __init__(
        self, trial: "optuna.Trial", metric: str, stop: threading.Event, every: int = 1
    ) -> None:
        self.trial = trial
        self.metric = metric
        self.stop = stop
        self.every = every
        self.step = 0
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        self.step += 1  # over restarts: a step is never reported twice
        if self.step % self.every:
            return
        value = record.metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(value, self.step)
        t = trainer.cfg.training
        if record.epoch == t.epochs and record.restart == t.restarts:
            return  # the run ends here anyway: pruning it would only throw it away
        if self.trial.should_prune():
            self.pruned_at = record.epoch
            self.stop.set()


REPORTS_PER_RUN = 50


def report_every(max_epochs: int) -> int:
    """Epochs between two reports to the pruner: about `REPORTS_PER_RUN` in the longest run
    (every epoch in runs under 100 epochs, every 10th in 500). The same for every trial, so that the
    median pruner compares trials at the same epochs."""
    return max(1, max_epochs // REPORTS_PER_RUN)


class Interrupted(BaseException):
    """Ctrl-C / SIGTERM reached a trial: it is marked failed, the search stops.

    A BaseException, like KeyboardInterrupt: it passes through Optuna's optimize (which
    would log a traceback for an Exception), and `work` marks the trial.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass
class Stopper:
    """What the signal handler sets: the signal, and the stop flag of the trial in progress."""

    signum: int | None = None
    current: threading.Event = field(default_factory=threading.Event)

    def request(self, signum: int) -> None:
        self.signum = signum
        self.current.set()


def run_trial(
    plan: TunePlan,
    trial: "optuna.Trial",
    stopper: Stopper,
    callbacks: list[Callback],
) -> float:
    """Train one trial into the tune directory; its value, or TrialPruned."""
    from optuna import TrialPruned

    from mlpcli.runs import set_status, train_run

    params = suggest(trial, plan.tune)
    seed = params.get("seed", plan.base.seed + trial.number)
    # one attribute, one commit: who runs the trial (a dead pid here = a killed trial)
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid(), "seed": seed})
    items = [*plan.overrides, *set_items(params, plan.base), f"seed={seed}"]
    items.append(f"name=trial-{trial.number:04d}")
    try:
        cfg = load_config(plan.config_path, items)
    except UserError as exc:  # a combination the config refuses (each value alone passed)
        trial.set_user_attr("outcome", {"status": RunStatus.INVALID, "reason": str(exc)})
        raise
    stop = threading.Event()
    stopper.current = stop
    if stopper.signum is not None:
        stop.set()
    pruning = Pruning(trial, plan.metric, stop, report_every(plan.max_epochs))
    run_dir, result = train_run(cfg, plan.folder, [pruning, *callbacks], stop)
    outcome: dict[str, Any] = {
        "run_dir": run_dir.name,
        "status": result.status,
        "epochs": pruning.step,
        "reason": result.reason,
    }
    interrupted = result.status is RunStatus.INTERRUPTED
    if interrupted and pruning.pruned_at is not None and stopper.signum is None:
        outcome["status"] = RunStatus.PRUNED
        outcome["reason"] = (
            f"pruned by the {plan.tune.pruner} pruner after epoch {pruning.pruned_at} "
            f"({plan.metric} not among the better trials)"
        )
        set_status(run_dir, RunStatus.PRUNED, outcome["reason"])
    trial.set_user_attr("outcome", outcome)
    if outcome["status"] is RunStatus.PRUNED:
        raise TrialPruned(outcome["reason"])
    if interrupted:
        raise Interrupted(stopper.signum or signal.SIGINT)
    if result.status is RunStatus.DIVERGED:
        # told to Optuna as pruned: samplers rank it below every finished trial
        raise TrialPruned(result.reason)
    return trial_value(result, plan.metric)


def trial_value(result: TrainResult, metric: str) -> float:
    """The metric of the run's final model (`train_loss` -> final['train']['loss'])."""
    split, _, name = metric.partition("_")
    return float(result.final[split][name])


# ----------------------------------------------------------------------------- the search


@dataclass
class TrialInfo:
    """One trial as tune.json and the tables show it."""

    number: int
    state: str  # complete | pruned | failed | running (Optuna's)
    status: str  # the run's: completed, stopped_early, pruned, diverged, interrupted, crashed
    value: float | None
    params: dict[str, Any]
    seed: int | None
    run_dir: str | None
    epochs: int | None
    seconds: float | None
    host: str | None
    pid: int | None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Study:
    """A search: its tune directory, every trial, the best one."""

    name: str
    folder: Path
    storage: str
    metric: str
    direction: str
    trials: list[TrialInfo]
    interrupted: int | None = None  # the signal that stopped this session's search

    @property
    def best(self) -> TrialInfo | None:
        """The best complete trial of these trials, by Optuna's rule (best value, then the
        lowest number). Taken from this snapshot, never asked of the study: the study could
        name a trial another worker completed since, still running here with no value."""
        return next(iter(self.top(1)), None)

    @property
    def best_yaml(self) -> Path:
        return self.folder / "best.yaml"

    def top(self, n: int = 5) -> list[TrialInfo]:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        sign = 1.0 if self.direction == "minimize" else -1.0
        return sorted(done, key=lambda t: (sign * (t.value or 0.0), t.number))[:n]


def collect(plan: TunePlan, study: "optuna.Study") -> Study:
    """Every trial of the study (from all workers and machines), and the best."""
    infos = [_info(t) for t in study.get_trials(deepcopy=False)]
    if any(t.run_dir is None for t in infos):  # a killed trial: find its run dir by name
        local = _local_run_dirs(plan.folder)
        for t in infos:
            t.run_dir = t.run_dir or local.get(t.number)
    return Study(plan.study, plan.folder, plan.shown_storage, plan.metric, plan.direction, infos)


def _local_run_dirs(folder: Path) -> dict[int, str]:
    """Trial number -> run directory name (`trial-0007-20261201-120000`) in this tune dir."""
    found: dict[int, str] = {}
    with contextlib.suppress(OSError):
        for path in sorted(folder.iterdir()):
            match = re.match(r"trial-(\d+)-\d{8}-\d{6}", path.name)
            if match and path.is_dir():
                found.setdefault(int(match.group(1)), path.name)
    return found


def _info(t: Any) -> TrialInfo:
    worker = t.user_attrs.get("worker") or {}
    outcome = t.user_attrs.get("outcome") or {}
    state = STATES.get(t.state.name, t.state.name.lower())
    derived = {"running": RunStatus.RUNNING, "failed": RunStatus.CRASHED}  # no outcome yet
    status = outcome.get("status") or derived.get(state, state)
    seconds = None
    if t.datetime_start is not None and t.datetime_complete is not None:
        seconds = round((t.datetime_complete - t.datetime_start).total_seconds(), 3)
    return TrialInfo(
        number=t.number,
        state=state,
        status=str(status),
        value=t.value if state == "complete" else None,
        params=dict(t.params),
        seed=worker.get("seed"),
        run_dir=outcome.get("run_dir"),
        epochs=outcome.get("epochs"),
        seconds=seconds,
        host=worker.get("host"),
        pid=worker.get("pid"),
    )


def fail_dead_trials(study: "optuna.Study") -> list[int]:
    """Mark failed the running trials of this machine whose process is gone (SIGKILL, power cut).

    Trials of other machines are failed by Optuna's heartbeat once silent for GRACE_SECONDS.
    """
    from optuna.trial import TrialState

    from mlpcli.compare import _alive

    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or {}
        if worker.get("host") == host and not _alive(worker.get("pid")):
            with contextlib.suppress(Exception):  # another process failed it first
                gone = f"process {worker.get('pid')} is gone"
                outcome = {"status": RunStatus.CRASHED, "reason": gone}
                study._storage.set_trial_user_attr(t._trial_id, "outcome", outcome)
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                failed.append(t.number)
    return failed


def _counted(study: "optuna.Study") -> int:
    """Trials that count towards --trials: finished (complete, pruned) or in progress."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def work(
    plan: TunePlan,
    stopper: Stopper,
    worker: int = 0,
    callbacks: list[Callback] | None = None,
    on_trial: Callable[[], object] | None = None,
    deadline: float | None = None,
    study: "optuna.Study | None" = None,
) -> None:
    """Run trials until the study holds `plan.trials`, the deadline passes or a signal stops it."""
    study = study or open_study(plan)
    # seeded by the config, offset by the trials already there: a continued study samples
    # new points instead of replaying the first ones; each worker its own stream
    offset = len(study.get_trials(deepcopy=False)) + 1000 * worker
    study.sampler = _sampler(plan, offset)
    limit = plan.trials
    if plan.tune.sampler == "grid":
        limit = min(limit, math.prod(len(v) for v in grid_space(plan.tune).values()))
    while stopper.signum is None:
        if deadline is not None and time.monotonic() >= deadline:
            return
        with _TurnLock(plan.folder / ".tune.lock") as turn:
            if _counted(study) >= limit:
                return
            _one_trial(plan, study, stopper, turn, callbacks or [])
        if on_trial is not None:
            on_trial()


def _one_trial(
    plan: TunePlan,
    study: "optuna.Study",
    stopper: Stopper,
    turn: "_TurnLock",
    callbacks: list[Callback],
) -> None:
    """Run the next trial; a signal or a refused config marks it failed and stops the search."""
    from mlpcli.runs import RunInterrupted

    failed = _optuna().trial.TrialState.FAIL
    started: list[Any] = []

    def objective(trial: "optuna.Trial") -> float:
        turn.release()  # the trial is in the study: the next worker may count
        started.append(trial)
        try:
            return run_trial(plan, trial, stopper, callbacks)
        except UserError as exc:
            raise _Refused(exc) from None
        except (KeyboardInterrupt, RunInterrupted):  # a second Ctrl-C
            raise Interrupted(signal.SIGINT) from None

    try:
        # optimize, not ask/tell: it runs the heartbeat and lets the grid sampler stop
        study.optimize(objective, n_trials=1, catch=())
    except (Interrupted, _Refused) as exc:
        if started:
            study.tell(started[-1], state=failed)
        if isinstance(exc, _Refused):
            raise exc.error from None
        raise


class _Refused(BaseException):
    """A UserError inside a trial, carried past Optuna's traceback logging to `work`."""

    def __init__(self, error: UserError) -> None:
        super().__init__(str(error))
        self.error = error


class _TurnLock:
    """Workers of this machine take turns to count the trials and start the next one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: Any = None

    def __enter__(self) -> "_TurnLock":
        self.file = self.path.open("a")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def signals_stop(stopper: Stopper) -> Iterator[None]:
    """Ctrl-C and SIGTERM end the trial in progress after its batch; a second Ctrl-C at once."""

    def handle(signum: int, frame: Any) -> None:
        if stopper.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopper.request(signum)
        with contextlib.suppress(OSError):  # os.write: print() is not safe in a signal handler
            os.write(2, b"\nstopping after this batch (Ctrl-C again to quit at once)\n")

    with signals.handling(handle, (signal.SIGINT, signal.SIGTERM)):
        yield


def _worker_main(plan: TunePlan, worker: int, deadline_in: float | None) -> int:
    """A --jobs worker process: its own connection to the study, its own signal handling."""
    stopper = Stopper()
    deadline = None if deadline_in is None else time.monotonic() + deadline_in
    try:
        with signals_stop(stopper):
            work(plan, stopper, worker, deadline=deadline)
    except Interrupted as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 130
    except UserError as exc:
        os.write(2, f"error: worker {worker}: {exc}\n".encode())
        return 2
    return 0


def tune(
    config: Path,
    overrides: list[str] | None = None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    runs_dir: Path = Path("runs"),
    callbacks: list[Callback] | None = None,
    on_update: Callable[[Study], None] | None = None,
    stopper: Stopper | None = None,
    plan: TunePlan | None = None,
) -> Study:
    """Search the config's `tune.space`; continues the study if it exists. Returns every trial.

    With `jobs` > 1 the trials run in that many worker processes on the one study. Setting
    `stopper` (a signal does) ends the search after the current batch of each trial.
    """
    plan = plan or plan_tune(
        config,
        overrides,
        trials=trials,
        timeout=timeout,
        jobs=jobs,
        storage=storage,
        study=study,
        runs_dir=runs_dir,
    )
    stopper = stopper or Stopper()
    try:
        plan.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"{plan.folder}: cannot create the tune directory: {exc.strerror}"
        ) from None
    optuna_study = open_study(plan, create=True)
    _check_same_search(plan, optuna_study)
    fail_dead_trials(optuna_study)
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout

    last = [-math.inf]
    best_written: list[int | None] = [None]

    def update(final: bool = False) -> Study | None:
        """tune.json and the live table, at most every UPDATE_SECONDS: reading the whole
        study after every trial would cost short trials more than the trials themselves."""
        if not final and time.monotonic() - last[0] < UPDATE_SECONDS:
            return None
        last[0] = time.monotonic()
        result = collect(plan, optuna_study)
        best_written[0] = write_outputs(plan, result, best_written[0])
        if on_update is not None:
            on_update(result)
        return result

    update()
    try:
        if plan.jobs == 1:
            work(
                plan,
                stopper,
                callbacks=callbacks,
                on_trial=update,
                deadline=deadline,
                study=optuna_study,
            )
        else:
            _run_workers(plan, stopper, update, plan.timeout)
    except Interrupted:
        pass
    result = update(final=True)
    assert result is not None
    result.interrupted = stopper.signum
    return result


def _run_workers(
    plan: TunePlan, stopper: Stopper, update: Callable[[], object], timeout: float | None
) -> None:
    from mlpcli.grid import _blas_threads_per_worker

    context = multiprocessing.get_context("spawn")
    with _blas_threads_per_worker(plan.jobs):
        procs = [
            context.Process(target=_worker_exit, args=(plan, k, timeout), daemon=False)
            for k in range(plan.jobs)
        ]
        for p in procs:
            p.start()
    forwarded = False
    while any(p.is_alive() for p in procs):
        if stopper.signum is not None and not forwarded:
            # Passed on as SIGTERM: a Ctrl-C in the terminal reached the workers already,
            # and a second SIGINT would make them quit at once instead of after the batch.
            for p in procs:
                if p.pid is not None and p.is_alive():
                    with contextlib.suppress(OSError):
                        os.kill(p.pid, signal.SIGTERM)
            forwarded = True
        for p in procs:
            p.join(timeout=1.0 / len(procs))
        update()
    codes = [p.exitcode for p in procs]
    errors = [c for c in codes if c == 2]
    if errors and stopper.signum is None:
        raise UserError(f"{len(errors)} of {len(procs)} workers stopped on an error (above)")


def _worker_exit(plan: TunePlan, worker: int, timeout: float | None) -> None:
    raise SystemExit(_worker_main(plan, worker, timeout))


def _check_same_search(plan: TunePlan, study: "optuna.Study") -> None:
    """A study continues only with the search it started with (metric and space)."""
    search = {
        "metric": plan.metric,
        "space": _space_json(plan.tune),
        "sampler": plan.tune.sampler,
    }
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", search)
        return
    for key in ("metric", "space", "sampler"):
        if stored.get(key) != search[key]:
            raise UserError(
                f"study '{plan.study}' in {plan.shown_storage} was started with a different "
                f"tune.{key}; continue it with the same config, or start another with --study NAME"
            )


def _space_json(spec: TuneConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, dim in spec.space.items():
        if isinstance(dim, Range | HiddenSpace):
            out[key] = dim.model_dump(mode="json", exclude_none=True)
        else:
            out[key] = dim
    return out


# ----------------------------------------------------------------------------- outputs


def write_outputs(plan: TunePlan, result: Study, best_written: int | None = None) -> int | None:
    """tune.json (every trial, the best) and best.yaml (the best trial's config).

    best.yaml is rewritten only when the best trial is not `best_written` (the one it holds
    already); returns the trial it holds now."""
    from mlpcli.runs import write_json_atomic

    record = {
        "study": plan.study,
        "storage": plan.shown_storage,
        "config": str(plan.config_path.resolve()),
        "metric": plan.metric,
        "direction": plan.direction,
        "sampler": plan.tune.sampler,
        "pruner": plan.tune.pruner,
        "space": _space_json(plan.tune),
        "trials_target": plan.trials,
        "counts": {
            s: sum(t.state == s for t in result.trials)
            for s in ("complete", "pruned", "failed", "running")
        },
        "best": result.best.to_json() if result.best else None,
        "trials": [t.to_json() for t in result.trials],
    }
    write_json_atomic(plan.folder / "tune.json", _finite(record))
    best_yaml = plan.folder / "best.yaml"
    if result.best is not None and (best_written != result.best.number or not best_yaml.exists()):
        _write_best_yaml(plan, result.best)
    return result.best.number if result.best is not None else None


def _write_best_yaml(plan: TunePlan, best: TrialInfo) -> None:
    items = [*plan.overrides, *set_items(best.params, plan.base)]
    if best.seed is not None:
        items.append(f"seed={best.seed}")
    items.append(f"name={plan.base.name[:95]}-best")
    cfg = load_config(plan.config_path, items)
    params = ", ".join(f"{k}={_yaml(v)}" for k, v in best.params.items())
    header = (
        f"# The best trial ({best.number}) of study '{plan.study}': {plan.metric} "
        f"{best.value:.6g}\n# params: {params}\n# run: {best.run_dir}\n"
        f"# train it again with: mlpcli train {plan.folder / 'best.yaml'}\n"
    )
    from mlpcli.runs import write_text_atomic

    write_text_atomic(plan.folder / "best.yaml", header + dump_config(cfg))


def _finite(node: Any) -> Any:
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {k: _finite(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_finite(v) for v in node]
    return node
