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
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import yaml

from mlpcli import __version__
from mlpcli.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mlpcli.config import RunConfig, config_from_dict, dump_config
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


def write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a second Ctrl-C included: leave no temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise


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
            value.shape == () and value.dtype.kind in "iu"
            if key == "t"
            else value.dtype == model.dtype and value.size in sizes
        )
        if not ok or not np.isfinite(value).all():
            raise UserError(f"{path}: 'optimizer.{key}' does not fit the model's parameters")
    if "t" not in optimizer:
        raise UserError(f"{path}: not a valid checkpoint: missing 'optimizer.t'")
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
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a valid checkpoint: bad resume state ({exc!r})") from None
    return state


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
            (self.run_dir / "config.yaml").write_text(dump_config(self.cfg), encoding="utf-8")
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
        self.metrics_file = path.open("a" if header else "w", newline="", encoding="utf-8")
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
    with path.open(newline="", encoding="utf-8") as f:  # keep the csv module's \r\n
        lines = f.read().splitlines(keepends=True)
    header = next(csv.reader(lines[:1]), [])
    if not lines or not lines[0].endswith("\n") or not {"epoch", "restart"} <= set(header):
        path.unlink()  # not even a whole header: the resumed run writes a new file
        return
    epoch_col, restart_col = header.index("epoch"), header.index("restart")
    keep = lines[:1]
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        if not line.endswith("\n") or len(fields) != len(header):
            break
        try:
            where = (int(fields[restart_col]), int(fields[epoch_col]))
        except ValueError:
            break
        if where > position:
            break
        keep.append(line)
    if len(keep) < len(lines):
        _write_text_atomic(path, "".join(keep))


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the run summary: {exc}") from None
    if not isinstance(summary, dict):
        raise UserError(f"{path}: not a run summary (not a JSON object)")
    return summary


def read_run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run directory was trained with."""
    path = run_dir / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read the run's config: {exc}") from None
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

    summary = read_summary(run_dir)
    status = RunStatus.parse(summary.get("status"))
    if status is not None and status.finished:
        raise AlreadyFinished(run_dir, status)
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
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{last}: the resume state does not fit this run ({exc})") from None
        position = (state.restart, state.epoch)
        wall = ckpt.meta["resume"].get("wall_seconds")
        prior_seconds = (
            float(wall) if isinstance(wall, int | float) and math.isfinite(wall) else 0.0
        )
    truncate_metrics(run_dir / "metrics.csv", position)
    trainer.callbacks.insert(
        0, RunWriter(run_dir, cfg, resumed=summary, prior_seconds=prior_seconds)
    )
    return trainer.run()
