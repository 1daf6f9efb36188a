"""The run directory (DESIGN §3): config.yaml, metrics.csv, checkpoints/, summary.json.

`RunWriter` is a trainer callback: it flushes a metrics row every epoch, writes
`last.npz` every `checkpoint_every` epochs and `best.npz` whenever the monitored metric
improves, and keeps summary.json telling the truth about the run's status.
"""

import csv
import json
import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from mlpcli import __version__
from mlpcli.checkpoint import save_checkpoint
from mlpcli.config import RunConfig, dump_config
from mlpcli.errors import UserError
from mlpcli.train import Callback, EpochRecord, Trainer, TrainResult


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
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    return {"mlpcli": __version__, "numpy": np.__version__, "python": platform.python_version()}


def checkpoint_payload(
    trainer: Trainer, metrics: dict[str, float]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta of a checkpoint of the trainer's current state."""
    data, model = trainer.data, trainer.model
    arrays = {p.name: p.value.copy() for p in model.params}
    if data.scaler_mean is not None and data.scaler_scale is not None:
        arrays["scaler.mean"] = data.scaler_mean
        arrays["scaler.scale"] = data.scaler_scale
    arrays.update({f"optimizer.{k}": v for k, v in trainer.optimizer.state_dict().items()})
    meta = {
        "mlpcli_version": __version__,
        "config": trainer.cfg.model_dump(mode="json"),
        "task": data.task,
        "sizes": model.sizes,
        "activations": model.activations,
        "output": trainer.cfg.model.output,
        "dtype": model.dtype.name,
        "feature_names": data.feature_names,
        "target_name": data.target_name,
        "class_names": data.class_names,
        "restart": trainer.restart,
        "epoch": trainer.epoch,
        "metrics": metrics,
        "rng_state": trainer.rng.bit_generator.state,
        "schedule_state": trainer.schedule.state(),
    }
    return arrays, meta


class RunWriter(Callback):
    """Writes the run directory as training goes."""

    def __init__(self, run_dir: Path, cfg: RunConfig) -> None:
        self.run_dir = run_dir
        self.cfg = cfg
        self.started = time.time()
        self.metrics_file: IO[str] | None = None
        self.writer: Any = None
        self.summary: dict[str, Any] = {}

    def on_train_start(self, trainer: Trainer) -> None:
        (self.run_dir / "config.yaml").write_text(dump_config(self.cfg), encoding="utf-8")
        self.summary = {
            "name": self.cfg.name,
            "status": "running",
            "pid": os.getpid(),
            "started": datetime.now().isoformat(timespec="seconds"),
            "task": trainer.data.task,
            "monitor": trainer.monitor,
            "n_params": trainer.model.n_params,
            "rows": {name: len(part) for name, part in trainer.data.parts.items()},
            "versions": versions(),
        }
        write_json_atomic(self.run_dir / "summary.json", self.summary)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        row = {"epoch": record.epoch, "restart": record.restart, **_ordered(record.metrics)}
        row.update({"lr": record.lr, "seconds": round(record.seconds, 6), **record.norms})
        if self.writer is None:
            self.metrics_file = (self.run_dir / "metrics.csv").open(
                "w", newline="", encoding="utf-8"
            )
            self.writer = csv.DictWriter(self.metrics_file, fieldnames=list(row))
            self.writer.writeheader()
        self.writer.writerow(row)
        assert self.metrics_file is not None
        self.metrics_file.flush()
        checkpoints = self.run_dir / "checkpoints"
        if record.is_best:
            save_checkpoint(checkpoints / "best.npz", *checkpoint_payload(trainer, record.metrics))
        if record.epoch % self.cfg.training.checkpoint_every == 0:
            save_checkpoint(checkpoints / "last.npz", *checkpoint_payload(trainer, record.metrics))

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.metrics_file is not None:
            self.metrics_file.close()
        if result.status != "diverged":
            flat = {f"{split}_{k}": v for split, m in result.final.items() for k, v in m.items()}
            save_checkpoint(
                self.run_dir / "checkpoints" / "last.npz", *checkpoint_payload(trainer, flat)
            )
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
                "wall_seconds": round(time.time() - self.started, 3),
                "finished": datetime.now().isoformat(timespec="seconds"),
            }
        )
        if len(result.restarts) > 1:
            self.summary["restart_spread"] = result.spread
        write_json_atomic(self.run_dir / "summary.json", self.summary)


def _ordered(metrics: dict[str, float]) -> dict[str, float]:
    """train_loss, val_loss, train_<metric>, val_<metric>: the DESIGN §3 column order."""
    return dict(sorted(metrics.items(), key=lambda kv: (not kv[0].endswith("_loss"), kv[0])))


def train_run(
    cfg: RunConfig, runs_dir: Path, callbacks: list[Callback]
) -> tuple[Path, TrainResult]:
    """Load the data, train, and write a new run directory; returns it and the result.

    Everything that can fail on bad input (data, init_from) fails before the run
    directory exists, so a bad config leaves nothing behind.
    """
    from mlpcli.checkpoint import load_checkpoint
    from mlpcli.data import load_dataset

    data = load_dataset(cfg.data, cfg.seed)
    init = load_checkpoint(Path(cfg.model.init_from)).weights() if cfg.model.init_from else None
    trainer = Trainer(cfg, data, callbacks, init_weights=init)
    run_dir = create_run_dir(runs_dir, cfg.name)
    trainer.callbacks.insert(0, RunWriter(run_dir, cfg))
    return run_dir, trainer.run()
