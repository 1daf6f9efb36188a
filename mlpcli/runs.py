"""The run directory (DESIGN §3): config.yaml, metrics.csv, checkpoints/, summary.json.

`RunWriter` is a trainer callback: it flushes a metrics row every epoch, writes
`last.npz` every `checkpoint_every` epochs and `best.npz` whenever the monitored metric
improves, and keeps summary.json telling the truth about the run's status.
"""

import csv
import json
import math
import os
import platform
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from mlpcli import __version__
from mlpcli.checkpoint import Checkpoint, is_count, load_checkpoint, save_checkpoint
from mlpcli.config import RunConfig, config_from_dict, dump_config, read_yaml
from mlpcli.errors import UserError
from mlpcli.status import RunStatus
from mlpcli.train import (
    Callback,
    EpochRecord,
    Finished,
    RestartProgress,
    RestartResult,
    Trainer,
    TrainerState,
    TrainResult,
)
from mlpcli.writes import open_append, refuse_links, write_json_atomic, write_text_atomic

RUN_FILES = ("config.yaml", "metrics.csv", "summary.json", "checkpoints")


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """A new, empty `<runs_dir>/<name>-<YYYYmmdd-HHMMSS>[-k]`; never reuses an existing one."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{runs_dir}: cannot create the runs folder: {exc.strerror}") from None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        path = runs_dir / (f"{name}-{stamp}" + (f"-{k}" if k else ""))
        try:
            path.mkdir()  # atomic: fails if another run took the name first
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserError(f"{runs_dir}: cannot create a run directory: {exc.strerror}") from None
        (path / "checkpoints").mkdir()
        return path
    raise UserError(f"{runs_dir}: too many runs named '{name}' in the same second")


def versions() -> dict[str, str]:
    return {"mlpcli": __version__, "numpy": np.__version__, "python": platform.python_version()}


def checkpoint_payload(
    trainer: Trainer,
    metrics: dict[str, float],
    state: TrainerState | None = None,
    resume: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta of a checkpoint of `state` (default: the trainer's state now).

    With `resume`, the checkpoint also carries what `--resume` needs beyond the weights and
    optimizer state: `resume.*` arrays and a `resume` entry in meta (docs/runs.md).
    """
    data, model = trainer.data, trainer.model
    state = state if state is not None else trainer.state()
    arrays = dict(state.weights)
    arrays.update({f"optimizer.{k}": v for k, v in state.optimizer.items()})
    meta = {
        "mlpcli_version": __version__,
        "config": trainer.cfg.model_dump(mode="json"),
        "task": data.task,
        "sizes": model.sizes,
        "activations": model.activations,
        "output": trainer.cfg.model.output,
        "dtype": model.dtype.name,
        "feature_names": data.feature_names,
        "preprocess": data.preprocess,
        "class_weight": None if trainer.class_weight is None else trainer.class_weight.tolist(),
        "target_name": data.target_name,
        "class_names": data.class_names,
        "restart": state.restart,
        "epoch": state.epoch,
        "metrics": metrics,
        "rng_state": state.rng,
        "schedule_state": state.schedule,
    }
    if resume:
        p = state.progress
        if p is not None:
            arrays["resume.restart_best_weights"] = p.best_weights
        if state.best_weights is not None:
            arrays["resume.best_weights"] = state.best_weights
        meta["resume"] = {
            "restart_best": None if p is None else p.best,
            "restart_best_epoch": None if p is None else p.best_epoch,
            "wait": None if p is None else p.wait,
            "best_value": state.best_value,
            "best_restart": state.best_where[0],
            "best_epoch": state.best_where[1],
            "finished": [
                {**vars(result), "status": status, "reason": reason}
                for result, status, reason in state.finished
            ],
        }
    return arrays, meta


def state_from_checkpoint(path: Path, ckpt: Checkpoint, trainer: Trainer) -> TrainerState:
    """The trainer state a `resume` checkpoint holds, checked against the trainer's model."""
    meta, arrays, model = ckpt.meta, ckpt.arrays, trainer.model
    info = meta.get("resume")
    if not isinstance(info, dict):
        raise UserError(f"{path}: the checkpoint has no resume state (meta 'resume' is missing)")
    if meta["sizes"] != model.sizes or meta.get("dtype") != model.dtype.name:
        raise UserError(f"{path}: the checkpoint's model does not match the run's config")

    def flat(key: str) -> np.ndarray:
        value = arrays.get(key)
        if value is None:
            raise UserError(f"{path}: not a valid checkpoint: missing '{key}'")
        if value.shape != (model.n_params,) or value.dtype != model.dtype:
            raise UserError(
                f"{path}: '{key}' has shape {value.shape} and dtype {value.dtype}, "
                f"expected ({model.n_params},) {model.dtype}"
            )
        return value

    optimizer = {
        k.removeprefix("optimizer."): v for k, v in arrays.items() if k.startswith("optimizer.")
    }
    sizes = {model.n_params, *(q.value.size for q in model.params)}
    for key, value in optimizer.items():
        ok = (
            value.shape == () and value.dtype.kind in "iu" and int(value) >= 0
            if key == "t"
            else value.dtype == model.dtype and value.size in sizes
        )
        if not ok or not np.isfinite(value).all():
            raise UserError(f"{path}: 'optimizer.{key}' does not fit the model's parameters")
    if "t" not in optimizer:
        raise UserError(f"{path}: not a valid checkpoint: missing 'optimizer.t'")
    _check_resume_meta(path, meta, info)
    try:
        wait = info["wait"]
        progress = (
            None
            if wait is None
            else RestartProgress(
                float(info["restart_best"]),
                int(info["restart_best_epoch"]),
                int(wait),
                flat("resume.restart_best_weights"),
            )
        )
        finished: list[Finished] = [
            (
                RestartResult(
                    int(r["restart"]),
                    float(r["best_value"]),
                    int(r["best_epoch"]),
                    int(r["epochs_run"]),
                ),
                RunStatus(r["status"]),
                str(r["reason"]),
            )
            for r in info["finished"]
        ]
        state = TrainerState(
            restart=int(meta["restart"]),
            epoch=int(meta["epoch"]),
            weights=ckpt.weights(),
            optimizer=optimizer,
            schedule=dict(meta["schedule_state"]),
            rng=dict(meta["rng_state"]),
            progress=progress,
            best_value=float(info["best_value"]),
            best_where=(int(info["best_restart"]), int(info["best_epoch"])),
            best_weights=flat("resume.best_weights") if "resume.best_weights" in arrays else None,
            finished=finished,
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise UserError(f"{path}: not a valid checkpoint: bad resume state ({exc!r})") from None
    return state


def _check_resume_meta(path: Path, meta: dict[str, Any], info: dict[str, Any]) -> None:
    """The types of what `state_from_checkpoint` reads, so that a crafted value is refused
    here instead of failing (or silently misbehaving) epochs later."""

    def bad(what: str) -> UserError:
        return UserError(f"{path}: not a valid checkpoint: {what}")

    for key in ("restart", "epoch"):
        if not is_count(meta.get(key)):
            raise bad(f"meta '{key}' is not a count (0, 1, 2, ...)")
    for key in ("best_restart", "best_epoch"):
        if not is_count(info.get(key)):
            raise bad(f"meta 'resume.{key}' is not a count (0, 1, 2, ...)")
    if info.get("wait") is not None and not (
        is_count(info["wait"]) and is_count(info.get("restart_best_epoch"))
    ):
        raise bad("meta 'resume.wait' / 'resume.restart_best_epoch' are not counts")
    for key in ("best_value", "restart_best"):
        value = info.get(key)
        if value is not None and not _is_float(value):
            raise bad(f"meta 'resume.{key}' is not a number")
    schedule = meta.get("schedule_state")
    if not (isinstance(schedule, dict) and all(_is_float(v) for v in schedule.values())):
        raise bad("meta 'schedule_state' is not a mapping of numbers")
    rng = meta.get("rng_state")
    try:
        np.random.default_rng().bit_generator.state = rng  # type: ignore[assignment]
    except (TypeError, ValueError, KeyError, OverflowError):
        raise bad("meta 'rng_state' is not a PCG64 generator state") from None
    finished = info.get("finished")
    if not (isinstance(finished, list) and all(isinstance(r, dict) for r in finished)):
        raise bad("meta 'resume.finished' is not a list of restarts")
    for r in finished:
        if not all(is_count(r.get(k)) for k in ("restart", "best_epoch", "epochs_run")):
            raise bad("meta 'resume.finished' holds a restart without its counts")
        if not _is_float(r.get("best_value")):
            raise bad("meta 'resume.finished' holds a restart without its best value")


def _is_float(value: Any) -> bool:
    """A JSON number that fits a float (inf allowed: a monitor's start; NaN refused)."""
    if type(value) not in (int, float):
        return False
    try:
        return not math.isnan(float(value))
    except OverflowError:
        return False


# Per-epoch checkpoints are atomic (temp file + rename), so a killed process never leaves
# half a file; fsyncing them as well (~8 ms each) would double the time of a small run, so
# that is done at most this often, and always for the final and the interrupt checkpoint.
SYNC_SECONDS = 5.0


class RunWriter(Callback):
    """Writes the run directory as training goes: a new run, or one being resumed."""

    def __init__(
        self,
        run_dir: Path,
        cfg: RunConfig,
        resumed: dict[str, Any] | None = None,
        prior_seconds: float = 0.0,
    ) -> None:
        self.run_dir = run_dir
        self.cfg = cfg
        self.resumed = resumed  # the summary of the run being resumed
        self.prior_seconds = prior_seconds  # training time before this session
        self.started = time.time()
        self.metrics_file: IO[str] | None = None
        self.writer: Any = None
        self.summary: dict[str, Any] = {}
        # The last epoch end when it is not in last.npz yet (checkpoint_every > 1): what an
        # interrupt writes, since the weights of a half-done epoch cannot be resumed exactly.
        self.pending: tuple[TrainerState, dict[str, float]] | None = None
        self.last_sync = time.monotonic()

    def on_train_start(self, trainer: Trainer) -> None:
        now = datetime.now().isoformat(timespec="seconds")
        if self.resumed is None:
            write_text_atomic(self.run_dir / "config.yaml", dump_config(self.cfg))
            self.summary = {
                "name": self.cfg.name,
                "status": RunStatus.RUNNING,
                "pid": os.getpid(),
                "started": now,
                "task": trainer.data.task,
                "monitor": trainer.monitor,
                "n_params": trainer.model.n_params,
                "rows": {name: len(part) for name, part in trainer.data.parts.items()},
                "versions": versions(),
            }
        else:
            self.summary = {**self.resumed, "status": RunStatus.RUNNING, "pid": os.getpid()}
            self.summary["resumed"] = [*self.resumed.get("resumed", []), now]
            for stale in ("reason", "interrupted"):
                self.summary.pop(stale, None)
        write_json_atomic(self.run_dir / "summary.json", self.summary)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        row = {"epoch": record.epoch, "restart": record.restart, **_ordered(record.metrics)}
        row.update({"lr": record.lr, "seconds": round(record.seconds, 6), **record.norms})
        if self.writer is None:
            self._open_metrics(list(row))
        self.writer.writerow(row)
        assert self.metrics_file is not None
        self.metrics_file.flush()
        state = trainer.state()
        durable = self._sync_due()
        if record.is_best:
            best = checkpoint_payload(trainer, record.metrics, state)
            save_checkpoint(self.run_dir / "checkpoints" / "best.npz", *best, durable=durable)
        if record.epoch % self.cfg.training.checkpoint_every == 0:
            self._save_last(trainer, state, record.metrics, durable)
            self.pending = None
        else:
            self.pending = (state, record.metrics)

    def _open_metrics(self, columns: list[str]) -> None:
        path = self.run_dir / "metrics.csv"
        header = _csv_header(path) if self.resumed is not None else None
        self.metrics_file = open_append(path, truncate=not header)
        self.writer = csv.DictWriter(self.metrics_file, fieldnames=header or columns)
        if not header:
            self.writer.writeheader()

    def _sync_due(self) -> bool:
        """Whether this epoch's checkpoints are also fsynced (every SYNC_SECONDS at most)."""
        now = time.monotonic()
        if now - self.last_sync < SYNC_SECONDS:
            return False
        self.last_sync = now
        return True

    def _save_last(
        self,
        trainer: Trainer,
        state: TrainerState,
        metrics: dict[str, float],
        durable: bool = True,
    ) -> None:
        arrays, meta = checkpoint_payload(trainer, metrics, state, resume=True)
        meta["resume"]["wall_seconds"] = self._seconds()
        save_checkpoint(self.run_dir / "checkpoints" / "last.npz", arrays, meta, durable)
        self.summary["last_checkpoint"] = {"restart": state.restart, "epoch": state.epoch}

    def _seconds(self) -> float:
        return round(self.prior_seconds + time.time() - self.started, 3)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.metrics_file is not None:
            self.metrics_file.close()
        now = datetime.now().isoformat(timespec="seconds")
        if result.status is RunStatus.INTERRUPTED:
            if self.pending is not None:
                self._save_last(trainer, *self.pending)
            where = self.summary.get("last_checkpoint")
            resumes = (
                f"--resume goes on after epoch {where['epoch']} of restart {where['restart']}"
                if where
                else "no epoch had ended: --resume starts from the beginning"
            )
            self.summary.update(
                {
                    "status": RunStatus.INTERRUPTED,
                    "reason": f"{result.reason}; {resumes}",
                    "wall_seconds": self._seconds(),
                    "interrupted": now,
                }
            )
            write_json_atomic(self.run_dir / "summary.json", self.summary)
            return
        if result.status is not RunStatus.DIVERGED:
            flat = {f"{split}_{k}": v for split, m in result.final.items() for k, v in m.items()}
            self._save_last(trainer, trainer.state(), flat)
        self.summary.update(
            {
                "status": result.status,
                "reason": result.reason,
                "epochs_run": result.epochs_run,
                "best_restart": result.best_restart,
                "best_epoch": result.best_epoch,
                "best_value": result.best_value,
                "restarts": [vars(r) for r in result.restarts],
                "final": result.final,
                "wall_seconds": self._seconds(),
                "finished": now,
            }
        )
        if len(result.restarts) > 1:
            self.summary["restart_spread"] = result.spread
        write_json_atomic(self.run_dir / "summary.json", self.summary)


def _ordered(metrics: dict[str, float]) -> dict[str, float]:
    """train_loss, val_loss, train_<metric>, val_<metric>: the DESIGN §3 column order."""
    return dict(sorted(metrics.items(), key=lambda kv: (not kv[0].endswith("_loss"), kv[0])))


def _csv_header(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), None)


def truncate_metrics(path: Path, position: tuple[int, int]) -> None:
    """Drop the rows after (restart, epoch) `position`, and a torn last line, from metrics.csv.

    Rows are written before the checkpoint of their epoch, so every row up to the
    checkpoint is complete; what follows it is redone by the resumed run.
    """
    if not path.exists():
        return
    try:
        with path.open(newline="", encoding="utf-8") as f:  # keep the csv module's \r\n
            lines = f.read().splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UserError(f"{path}: cannot read the run's metrics: {why}") from None
    header = next(csv.reader(lines[:1]), [])
    if not lines or not lines[0].endswith("\n"):
        path.unlink()  # not even a whole header: the resumed run writes a new file
        return
    if not {"epoch", "restart"} <= set(header):
        raise UserError(f"{path}:1: not a metrics.csv header (no 'epoch' and 'restart' columns)")
    epoch_col, restart_col = header.index("epoch"), header.index("restart")
    keep = lines[:1]
    for n, line in enumerate(lines[1:], start=2):
        fields = next(csv.reader([line]), [])
        torn = not line.endswith("\n")  # a run killed mid-write; only ever the last line
        if (
            torn
            or len(fields) != len(header)
            or not all(_is_count_text(fields[i]) for i in (restart_col, epoch_col))
        ):
            if torn or n == len(lines):
                break
            raise UserError(f"{path}:{n}: not a row mlpcli wrote (epoch and restart are counts)")
        where = (int(fields[restart_col]), int(fields[epoch_col]))
        if where > position:
            break
        keep.append(line)
    if len(keep) < len(lines):
        write_text_atomic(path, "".join(keep))


def _is_count_text(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19


def train_run(
    cfg: RunConfig,
    runs_dir: Path,
    callbacks: list[Callback],
    stop: threading.Event | None = None,
) -> tuple[Path, TrainResult]:
    """Load the data, train, and write a new run directory; returns it and the result.

    Everything that can fail on bad input (data, init_from) fails before the run
    directory exists, so a bad config leaves nothing behind. Setting `stop` ends the
    training between two batches with status `interrupted`.
    """
    from mlpcli.data import load_dataset

    data = load_dataset(cfg.data, cfg.seed, dtype=cfg.training.dtype)
    init = load_checkpoint(Path(cfg.model.init_from)).weights() if cfg.model.init_from else None
    trainer = Trainer(cfg, data, callbacks, init_weights=init, stop=stop)
    if trainer.stop.is_set():  # Ctrl-C while the data loaded: leave nothing behind
        raise RunInterrupted(None)
    run_dir = create_run_dir(runs_dir, cfg.name)
    trainer.callbacks.insert(0, RunWriter(run_dir, cfg))
    return run_dir, _run(trainer, run_dir)


def _run(trainer: Trainer, run_dir: Path) -> TrainResult:
    try:
        return trainer.run()
    except KeyboardInterrupt:  # a second Ctrl-C: the checkpoints on disk are whole
        raise RunInterrupted(run_dir) from None
    except OSError as exc:  # disk full, folder removed, permissions changed mid-run
        where = exc.filename or run_dir
        _mark_failed(run_dir, f"cannot write {where}: {exc.strerror or exc}")
        raise UserError(
            f"{where}: cannot write: {exc.strerror or exc}",
            hint=f"checkpoints written before are intact; after freeing space: "
            f"mlpcli train --resume {run_dir}",
        ) from None


def _mark_failed(run_dir: Path, reason: str) -> None:
    """Best effort: say in summary.json why the run stopped (the disk may still be full)."""
    try:
        summary = read_summary(run_dir)
        summary.update({"status": RunStatus.FAILED, "reason": reason})
        write_json_atomic(run_dir / "summary.json", summary)
    except (OSError, UserError):
        pass


class RunInterrupted(Exception):
    """Training ended at once (a second Ctrl-C) without the usual final writes."""

    exit_code = 130

    def __init__(self, run_dir: Path | None) -> None:
        if run_dir is None:
            message = "interrupted before training started; nothing was written"
        else:
            message = (
                f"stopped at once; the last checkpoint in {run_dir} is intact: "
                f"resume with mlpcli train --resume {run_dir}"
            )
        super().__init__(message)
        self.run_dir = run_dir


class AlreadyFinished(Exception):
    """`--resume` of a run that has finished: there is nothing to do."""

    def __init__(self, run_dir: Path, status: RunStatus) -> None:
        super().__init__(f"{run_dir}: the run has already finished ({status}); nothing to resume")
        self.status = status


def read_summary(run_dir: Path) -> dict[str, Any]:
    """A run directory's summary.json; a UserError if `run_dir` is not a run directory."""
    path = run_dir / "summary.json"
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory (no such folder)")
    if not path.is_file() or not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir}: not a run directory (no summary.json and config.yaml)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deep" if isinstance(exc, RecursionError) else exc
        raise UserError(f"{path}: cannot read the run summary: {why}") from None
    if not isinstance(summary, dict):
        raise UserError(f"{path}: not a run summary (not a JSON object)")
    if not isinstance(summary.get("status"), str):
        raise UserError(f"{path}: not a run summary (no 'status' string)")
    return summary


def check_resumable_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """An unfinished run's summary holds only finite numbers a float or an int64 can hold;
    anything else was not written by mlpcli, and `--resume` would copy it on."""
    stack: list[Any] = [summary]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif (type(node) is int and abs(node) >= 2**63) or (
            type(node) is float and not math.isfinite(node)
        ):
            raise UserError(
                f"{run_dir / 'summary.json'}: holds {_shown(node)}, a number no run writes"
            )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def read_run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run directory was trained with."""
    path = run_dir / "config.yaml"
    raw, _ = read_yaml(path)  # the limits every YAML reader applies
    if not isinstance(raw, dict):
        raise UserError(f"{path}: not a config (not a mapping)")
    return config_from_dict(raw, str(path))


def resume_run(
    run_dir: Path, callbacks: list[Callback], stop: threading.Event | None = None
) -> TrainResult:
    """Continue an interrupted (or killed) run from its last.npz, appending to metrics.csv.

    The result is bit-identical to the run never interrupted: the checkpoint holds the
    weights, optimizer, schedule, RNG and early-stopping state of an epoch end. Raises
    AlreadyFinished for a run that has finished.
    """
    from mlpcli.data import load_dataset

    refuse_links([run_dir / n for n in RUN_FILES] + list(run_dir.glob("checkpoints*/*")))
    summary = read_summary(run_dir)
    status = RunStatus.parse(summary.get("status"))
    if status is not None and status.finished:
        raise AlreadyFinished(run_dir, status)
    check_resumable_summary(run_dir, summary)
    cfg = read_run_config(run_dir)
    data = load_dataset(cfg.data, cfg.seed, dtype=cfg.training.dtype)
    init = load_checkpoint(Path(cfg.model.init_from)).weights() if cfg.model.init_from else None
    trainer = Trainer(cfg, data, callbacks, init_weights=init, stop=stop)
    last = run_dir / "checkpoints" / "last.npz"
    position, prior_seconds = (0, 0), 0.0  # no checkpoint yet: start from the beginning
    if last.exists():
        ckpt = load_checkpoint(last)
        if ckpt.meta.get("config") != cfg.model_dump(mode="json"):
            raise UserError(
                f"{run_dir / 'config.yaml'}: differs from the config in {last}; "
                "a run resumes with the config it started with"
            )
        state = state_from_checkpoint(last, ckpt, trainer)
        try:
            trainer.load_state(state)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise UserError(f"{last}: the resume state does not fit this run ({exc})") from None
        position = (state.restart, state.epoch)
        wall = ckpt.meta["resume"].get("wall_seconds")
        prior_seconds = float(wall) if _is_float(wall) and math.isfinite(float(wall)) else 0.0
    truncate_metrics(run_dir / "metrics.csv", position)
    trainer.callbacks.insert(
        0, RunWriter(run_dir, cfg, resumed=summary, prior_seconds=prior_seconds)
    )
    return trainer.run()
