"""The run directory (docs/runs.md): config.yaml, metrics.csv, checkpoints/, summary.json.

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
from mlpcli.checkpoint import load_checkpoint, save_checkpoint
from mlpcli.config import RunConfig, config_from_dict, dump_config, read_yaml
from mlpcli.engine import blas, fast
from mlpcli.errors import UserError
from mlpcli.resume import TrainerState, is_float, state_from_checkpoint, state_to_checkpoint
from mlpcli.status import RunStatus
from mlpcli.train import Callback, EpochRecord, Trainer, TrainResult
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


def engine_in_use(trainer: Trainer) -> dict[str, str]:
    """What trains this model: NumPy or the numba kernels, and the GEMM of its largest product
    a step (OpenBLAS or MKL). Runs on different engines agree to rounding, not bit for bit."""
    model, rows = trainer.model, trainer.cfg.training.batch_size
    largest = max(rows * layer.fan_in * layer.fan_out for layer in model.layers)
    return {"kernels": fast.path(model.n_params, model.steps), "gemm": blas.gemm(largest)}


def checkpoint_payload(
    trainer: Trainer, metrics: dict[str, float], state: TrainerState, resume: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta of a checkpoint of `state`: the model, how to rebuild and use it,
    and the trainer state (all of it, for `--resume`, with `resume`: mlpcli/resume.py)."""
    data, model = trainer.data, trainer.model
    arrays, state_meta = state_to_checkpoint(state, resume)
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
        "metrics": metrics,
        **state_meta,
    }
    return arrays, meta


# Checkpoints are atomic (temp file + rename), so a killed process never leaves half a file;
# fsyncing them as well (~8 ms each) is done at most this often, and always for the final
# and the interrupt checkpoint.
SYNC_SECONDS = 5.0


class RunWriter(Callback):
    """Writes the run directory as training goes: a new run, or one being resumed.

    Every epoch: a metrics.csv row, flushed. Checkpoints: the newest epoch end and the best
    one are kept in memory and written (best.npz first, then last.npz) at the first epoch,
    then every `checkpoint_every` epochs but at most once every `checkpoint_seconds`, at
    the end and on an interrupt. So a last.npz on disk is always an epoch end with
    best.npz the best up to it, and `--resume` continues exactly from there.
    """

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
        # The newest epoch end and the best one, with their metrics, and whether they are
        # on disk yet. The weights of a half-done epoch are never saved: they cannot be
        # resumed exactly (its shuffled order and dropout draws are spent).
        self.last: tuple[TrainerState, dict[str, float]] | None = None
        self.best: tuple[TrainerState, dict[str, float]] | None = None
        self.unsaved: set[str] = set()  # of "best", "last"
        self.last_write: float | None = None  # monotonic time of the last checkpoint write
        self.last_sync = time.monotonic()

    def on_train_start(self, trainer: Trainer) -> None:
        now = datetime.now().isoformat(timespec="seconds")
        if self.resumed is None:
            write_text_atomic(self.run_dir / "config.yaml", dump_config(self.cfg))
            self.summary = {
                "name": self.cfg.name,
                "status": RunStatus.RUNNING,
                "reason": "training",
                "pid": os.getpid(),
                "started": now,
                "task": trainer.data.task,
                "monitor": trainer.monitor,
                "n_params": trainer.model.n_params,
                "rows": {name: len(part) for name, part in trainer.data.parts.items()},
                "versions": versions(),
                "engine": engine_in_use(trainer),
                # what a finished run reports, as of the last checkpoint: none yet
                **_outcome(trainer, None, 0, {}),
                "wall_seconds": 0.0,
                "finished": None,
            }
        else:
            self.summary = {**self.resumed, "status": RunStatus.RUNNING, "pid": os.getpid()}
            self.summary["reason"] = "training"
            self.summary["resumed"] = [*self.resumed.get("resumed", []), now]
            engine = engine_in_use(trainer)
            if self.resumed.get("engine", engine) != engine:  # the rest agrees only to rounding
                self.summary["engine_before_resume"] = self.resumed["engine"]
            self.summary["engine"] = engine
            self.summary.pop("interrupted", None)
        write_json_atomic(self.run_dir / "summary.json", self.summary)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        row = {"epoch": record.epoch, "restart": record.restart, **_ordered(record.metrics)}
        row.update({"lr": record.lr, "seconds": round(record.seconds, 6), **record.norms})
        if self.writer is None:
            self._open_metrics(list(row))
        self.writer.writerow(row)
        assert self.metrics_file is not None
        self.metrics_file.flush()
        self.last = (trainer.state(), record.metrics)
        self.unsaved.add("last")
        if record.is_best:
            self.best = self.last
            self.unsaved.add("best")
        if self._checkpoint_due(record.epoch):
            self._save(trainer, durable=self._sync_due())

    def _open_metrics(self, columns: list[str]) -> None:
        path = self.run_dir / "metrics.csv"
        header = _csv_header(path) if self.resumed is not None else None
        self.metrics_file = open_append(path, truncate=not header)
        self.writer = csv.DictWriter(self.metrics_file, fieldnames=header or columns)
        if not header:
            self.writer.writeheader()

    def _checkpoint_due(self, epoch: int) -> bool:
        t = self.cfg.training
        if epoch % t.checkpoint_every:
            return False
        return self.last_write is None or (
            time.monotonic() - self.last_write >= t.checkpoint_seconds
        )

    def _sync_due(self) -> bool:
        """Whether this write is also fsynced (every SYNC_SECONDS at most)."""
        now = time.monotonic()
        if now - self.last_sync < SYNC_SECONDS:
            return False
        self.last_sync = now
        return True

    def _save(self, trainer: Trainer, durable: bool = True) -> None:
        """Write what is not on disk yet: best.npz first, so last.npz is never ahead of it."""
        folder = self.run_dir / "checkpoints"
        if "best" in self.unsaved and self.best is not None:
            state, metrics = self.best
            arrays, meta = checkpoint_payload(trainer, metrics, state)
            save_checkpoint(folder / "best.npz", arrays, meta, durable)
            self.unsaved.discard("best")
        if "last" in self.unsaved and self.last is not None:
            state, metrics = self.last
            arrays, meta = checkpoint_payload(trainer, metrics, state, resume=True)
            meta["resume"]["wall_seconds"] = self._seconds()
            save_checkpoint(folder / "last.npz", arrays, meta, durable)
            self.unsaved.discard("last")
            self.summary["last_checkpoint"] = {"restart": state.restart, "epoch": state.epoch}
        self.last_write = time.monotonic()

    def _seconds(self) -> float:
        return round(self.prior_seconds + time.time() - self.started, 3)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.metrics_file is not None:
            self.metrics_file.close()
        self._save(trainer)
        now = datetime.now().isoformat(timespec="seconds")
        if result.status is RunStatus.INTERRUPTED:
            where = self.summary.get("last_checkpoint")
            resumes = (
                f"--resume goes on after epoch {where['epoch']} of restart {where['restart']}"
                if where
                else "no epoch had ended: --resume starts from the beginning"
            )
            if self.last is not None:  # else: a resumed run stopped before an epoch ended
                state = self.last[0]
                self.summary.update(
                    _outcome(trainer, state, _epochs_run(state), self._final_metrics(trainer))
                )
            self.summary.update(
                {
                    "status": RunStatus.INTERRUPTED,
                    "reason": f"{result.reason}; {resumes}",
                    "wall_seconds": self._seconds(),
                    "finished": None,
                    "interrupted": now,
                }
            )
            write_json_atomic(self.run_dir / "summary.json", self.summary)
            return
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
                "final_model": _final_model(result.keep, *result.final_where),
                "wall_seconds": self._seconds(),
                "finished": now,
            }
        )
        if len(result.restarts) > 1:
            self.summary["restart_spread"] = result.spread
        write_json_atomic(self.run_dir / "summary.json", self.summary)

    def _final_metrics(self, trainer: Trainer) -> dict[str, dict[str, float]]:
        """The final model's metrics as of the last checkpoint (best.npz or last.npz)."""
        if self.cfg.training.keep == "best":
            if trainer.best_weights is None:
                return {}
            trainer.model.flat.value[...] = trainer.best_weights
        else:
            assert self.last is not None
            for p in trainer.model.params:
                p.value[...] = self.last[0].weights[p.name]
        return {name: trainer.evaluate(name) for name in trainer.X}


def _final_model(keep: str, restart: int | None, epoch: int | None) -> dict[str, Any]:
    """summary.json's `final_model`: which checkpoint holds the final model, which epoch."""
    return {"keep": keep, "checkpoint": FINAL_MODELS[keep], "restart": restart, "epoch": epoch}


def _epochs_run(state: TrainerState) -> int:
    done = sum(result.epochs_run for result, _, _ in state.finished)
    return done + (state.epoch if state.progress is not None else 0)


def _outcome(
    trainer: Trainer,
    state: TrainerState | None,
    epochs_run: int,
    final: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The result keys of summary.json for a run not finished, as of `state`."""
    keep = trainer.cfg.training.keep
    if state is None or state.best_where == (0, 0):
        best: dict[str, Any] = {"best_restart": None, "best_epoch": None, "best_value": None}
        where: tuple[int | None, int | None] = (None, None)
    else:
        sign = 1.0 if trainer.minimize else -1.0
        best = {
            "best_restart": state.best_where[0],
            "best_epoch": state.best_where[1],
            "best_value": sign * state.best_value,
        }
        where = state.best_where if keep == "best" else (state.restart, state.epoch)
    restarts = [] if state is None else [vars(result) for result, _, _ in state.finished]
    return {
        "epochs_run": epochs_run,
        **best,
        "restarts": restarts,
        "final": final,
        "final_model": _final_model(keep, *where),
    }


def _ordered(metrics: dict[str, float]) -> dict[str, float]:
    """train_loss, val_loss, train_<metric>, val_<metric>: the column order docs/runs.md gives."""
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
    """Train into `run_dir`; whatever stops it, summary.json says so truly."""
    try:
        return trainer.run()
    except KeyboardInterrupt:  # a second Ctrl-C: the checkpoints on disk are whole
        _mark_failed(run_dir, "stopped at once by a second Ctrl-C", RunStatus.INTERRUPTED)
        raise RunInterrupted(run_dir) from None
    except OSError as exc:  # disk full, folder removed, permissions changed mid-run
        where = exc.filename or run_dir
        _mark_failed(run_dir, f"cannot write {where}: {exc.strerror or exc}")
        raise UserError(
            f"{where}: cannot write: {exc.strerror or exc}",
            hint=f"checkpoints written before are intact; after freeing space: "
            f"mlpcli train --resume {run_dir}",
        ) from None
    except UserError as exc:  # bad input found only once training ran
        _mark_failed(run_dir, str(exc))
        raise
    except Exception as exc:  # a bug: say so in the run too, then let it surface
        _mark_failed(run_dir, f"internal error: {type(exc).__name__}: {exc}")
        raise


def set_status(run_dir: Path, status: RunStatus, reason: str) -> None:
    """Give a finished run its final status (a tune trial that its pruner stopped: pruned)."""
    summary = read_summary(run_dir)
    summary.update({"status": status, "reason": reason})
    write_json_atomic(run_dir / "summary.json", summary)


def _mark_failed(run_dir: Path, reason: str, status: RunStatus = RunStatus.FAILED) -> None:
    """Best effort: say in summary.json why the run stopped (the disk may still be full)."""
    try:
        summary = read_summary(run_dir)
        if RunStatus.parse(summary.get("status")) is not RunStatus.RUNNING:
            return  # the run wrote its own end (or never started): that is the truth
        summary.update({"status": status, "reason": reason})
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


FINAL_MODELS = {"best": "checkpoints/best.npz", "last": "checkpoints/last.npz"}


def final_checkpoint(run_dir: Path) -> Path:
    """The checkpoint of a run directory's final model: the one summary.json's
    `final_model` names (`training.keep`); for runs older than `keep`, best.npz, else
    last.npz. Only those two paths are ever opened, whatever a summary says."""
    names = list(FINAL_MODELS.values())
    try:
        chosen = read_summary(run_dir).get("final_model")
    except UserError:
        chosen = None
    if isinstance(chosen, dict) and chosen.get("checkpoint") in names:
        path = run_dir / chosen["checkpoint"]
        if not path.exists():
            raise UserError(
                f"{path}: the run's final model (keep: {chosen.get('keep')}) is not written "
                "yet: no epoch has ended"
            )
        return path
    for name in names:
        if (run_dir / name).exists():
            return run_dir / name
    raise UserError(
        f"{run_dir}: a folder without checkpoints/best.npz or last.npz: not a run directory"
    )


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

    # Everything is read and checked before the first write: a resume that cannot go on
    # leaves the run directory as it was (summary.json keeps its status).
    refuse_links([run_dir / n for n in RUN_FILES] + list(run_dir.glob("checkpoints*/*")))
    summary = read_summary(run_dir)
    status = RunStatus.parse(summary.get("status"))
    if status is None:
        raise UserError(
            f"{run_dir / 'summary.json'}: status {summary.get('status')!r:.40} is not a run "
            f"status ({', '.join(s for s in RunStatus if s.written)})"
        )
    if status.finished:
        raise AlreadyFinished(run_dir, status)
    check_resumable_summary(run_dir, summary)
    cfg = read_run_config(run_dir)
    folder = run_dir / "checkpoints"
    if folder.is_symlink() or not folder.is_dir():
        raise UserError(
            f"{folder}: missing or not a folder: the run directory is damaged, nothing to "
            "resume from (nothing was changed)"
        )
    data = load_dataset(cfg.data, cfg.seed, dtype=cfg.training.dtype)
    init = load_checkpoint(Path(cfg.model.init_from)).weights() if cfg.model.init_from else None
    trainer = Trainer(cfg, data, callbacks, init_weights=init, stop=stop)
    last = folder / "last.npz"
    position, prior_seconds = (0, 0), 0.0  # no checkpoint yet: start from the beginning
    if last.exists() or last.is_symlink():
        ckpt = load_checkpoint(last)
        stored = ckpt.meta.get("config")
        if not isinstance(stored, dict):
            raise UserError(f"{last}: not a valid checkpoint: meta 'config' is not a mapping")
        if config_from_dict(stored, f"{last} (meta 'config')").model_dump() != cfg.model_dump():
            raise UserError(
                f"{run_dir / 'config.yaml'}: differs from the config in {last}; "
                "a run resumes with the config it started with"
            )
        state = state_from_checkpoint(last, ckpt, trainer.model, trainer.optimizer)
        try:
            trainer.load_state(state)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            raise UserError(f"{last}: the resume state does not fit this run ({exc})") from None
        position = (state.restart, state.epoch)
        wall = ckpt.meta["resume"].get("wall_seconds")
        prior_seconds = float(wall) if is_float(wall) and 0 <= float(wall) < 1e12 else 0.0
    try:
        truncate_metrics(run_dir / "metrics.csv", position)
    except OSError as exc:
        raise UserError(f"{run_dir / 'metrics.csv'}: cannot rewrite: {exc.strerror}") from None
    trainer.callbacks.insert(
        0, RunWriter(run_dir, cfg, resumed=summary, prior_seconds=prior_seconds)
    )
    return _run(trainer, run_dir)
