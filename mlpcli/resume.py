"""The resume format: what a trainer's state at an epoch end holds, and how a checkpoint
stores it (docs/runs.md, "What each checkpoint holds").

`TrainerState` is everything `--resume` needs to go on bit for bit where an epoch ended:
the weights, the optimizer's buffers and step count, the schedule's state, the RNG state,
the early-stopping state of the restart in progress, the best over all restarts and the
finished restarts. `state_to_checkpoint` lays it out as checkpoint arrays and meta entries;
`state_from_checkpoint` reads it back, checking every piece against the model.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.checkpoint import Checkpoint, is_count
from mlpcli.engine import MLP, Optimizer
from mlpcli.errors import UserError
from mlpcli.status import RunStatus


@dataclass
class RestartResult:
    restart: int
    best_value: float
    best_epoch: int
    epochs_run: int


Finished = tuple[RestartResult, RunStatus, str]  # a finished restart, its status and reason


@dataclass
class RestartProgress:
    """Early-stopping bookkeeping of the restart in progress, in lower-is-better form."""

    best: float
    best_epoch: int
    wait: int  # epochs since the last improvement


@dataclass
class TrainerState:
    """Everything needed to go on exactly where an epoch ended (see `Trainer.state`)."""

    restart: int  # the restart in progress
    epoch: int  # epochs completed in it
    weights: dict[str, np.ndarray]  # by parameter name, as in a checkpoint
    optimizer: dict[str, np.ndarray]
    schedule: dict[str, float]
    rng: dict[str, Any]
    progress: RestartProgress | None  # None once every restart has finished
    best_value: float  # the best over all restarts, lower-is-better form
    best_where: tuple[int, int]  # (restart, epoch)
    best_weights: np.ndarray | None  # flat
    finished: list[Finished]


def state_to_checkpoint(
    state: TrainerState, resume: bool
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The checkpoint arrays and meta entries of `state`.

    Every checkpoint holds the weights, the optimizer state, and meta `restart`, `epoch`,
    `rng_state` and `schedule_state`. With `resume` (last.npz) it also holds the rest:
    `resume.best_weights` and meta `resume`.
    """
    arrays = dict(state.weights)
    arrays.update({f"optimizer.{k}": v for k, v in state.optimizer.items()})
    meta: dict[str, Any] = {
        "restart": state.restart,
        "epoch": state.epoch,
        "rng_state": state.rng,
        "schedule_state": state.schedule,
    }
    if resume:
        p = state.progress
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


def state_from_checkpoint(
    path: Path, ckpt: Checkpoint, model: MLP, optimizer: Optimizer
) -> TrainerState:
    """The trainer state a last.npz holds, checked against the run's model and optimizer.

    Older last.npz files also hold `resume.restart_best_weights` (the restart's best
    weights, once put back at the end of each restart); it is not needed and ignored.
    """
    meta, arrays = ckpt.meta, ckpt.arrays
    info = meta.get("resume")
    if not isinstance(info, dict):
        raise UserError(f"{path}: the checkpoint has no resume state (meta 'resume' is missing)")
    if meta["sizes"] != model.sizes or meta.get("dtype") != model.dtype.name:
        raise UserError(f"{path}: the checkpoint's model does not match the run's config")
    _check_resume_meta(path, meta, info)
    buffers = _optimizer_state(path, arrays, model, optimizer)
    best = arrays.get("resume.best_weights")
    if best is not None and (best.shape != (model.n_params,) or best.dtype != model.dtype):
        raise UserError(
            f"{path}: 'resume.best_weights' has shape {best.shape} and dtype {best.dtype}, "
            f"expected ({model.n_params},) {model.dtype}"
        )
    if best is not None and not np.isfinite(best).all():
        raise UserError(f"{path}: 'resume.best_weights' holds NaN or infinite values")
    try:
        wait = info["wait"]
        progress = (
            None
            if wait is None
            else RestartProgress(
                _number(info["restart_best"]),
                _count(info["restart_best_epoch"]),
                _count(info["wait"]),
            )
        )
        finished: list[Finished] = [
            (
                RestartResult(
                    _count(r["restart"]),
                    _number(r["best_value"]),
                    _count(r["best_epoch"]),
                    _count(r["epochs_run"]),
                ),
                RunStatus(r["status"]),
                str(r["reason"]),
            )
            for r in info["finished"]
        ]
        state = TrainerState(
            restart=_count(meta["restart"]),
            epoch=_count(meta["epoch"]),
            weights=ckpt.weights(),
            optimizer=buffers,
            schedule=_schedule_state(meta["schedule_state"]),
            rng=dict(meta["rng_state"]),
            progress=progress,
            best_value=_number(info["best_value"]),
            best_where=(_count(info["best_restart"]), _count(info["best_epoch"])),
            best_weights=best,
            finished=finished,
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise UserError(f"{path}: not a valid checkpoint: bad resume state ({exc!r})") from None
    return state


def _optimizer_state(
    path: Path, arrays: dict[str, np.ndarray], model: MLP, optimizer: Optimizer
) -> dict[str, np.ndarray]:
    """`optimizer.t` and, once a step was taken, every buffer of the configured optimizer
    over the flat parameter vector (`optimizer.<param>.<buffer>`), nothing else."""
    state = {
        k.removeprefix("optimizer."): v for k, v in arrays.items() if k.startswith("optimizer.")
    }
    t = state.get("t")
    if t is None:
        raise UserError(f"{path}: not a valid checkpoint: missing 'optimizer.t'")
    if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
        raise UserError(f"{path}: 'optimizer.t' is not a step count (a whole number >= 0)")
    expected = {f"{model.flat.name}.{b}" for b in optimizer.buffers} if int(t) else set()
    for key in sorted(set(state) - {"t"} - expected):
        raise UserError(f"{path}: 'optimizer.{key}' is not a buffer of this run's optimizer")
    for key in sorted(expected):
        value = state.get(key)
        if value is None:
            raise UserError(f"{path}: not a valid checkpoint: missing 'optimizer.{key}'")
        if value.shape != (model.n_params,) or value.dtype != model.dtype:
            raise UserError(
                f"{path}: 'optimizer.{key}' has shape {value.shape} and dtype {value.dtype}, "
                f"expected ({model.n_params},) {model.dtype}"
            )
        if not np.isfinite(value).all():
            raise UserError(f"{path}: 'optimizer.{key}' holds NaN or infinite values")
    return state


def _schedule_state(value: Any) -> dict[str, float]:
    """A schedule's state: names to numbers (plateau: current, best, wait), else {}."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TypeError("schedule_state is not a mapping")
    return {k: _number(v) for k, v in value.items()}


def _count(value: Any) -> int:
    """A non-negative whole number from JSON (a bool, a float or a string is not one)."""
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a count, got {value!r:.40}")
    return value


def _number(value: Any) -> float:
    """A number from JSON: inf is allowed (a best not reached yet), NaN and text are not."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"expected a number, got {value!r:.40}")
    return float(value)


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
        if value is not None and not is_float(value):
            raise bad(f"meta 'resume.{key}' is not a number")
    schedule = meta.get("schedule_state")
    if not (isinstance(schedule, dict) and all(is_float(v) for v in schedule.values())):
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
        if not is_float(r.get("best_value")):
            raise bad("meta 'resume.finished' holds a restart without its best value")


def is_float(value: Any) -> bool:
    """A JSON number that fits a float (inf allowed: a monitor's start; NaN refused)."""
    if type(value) not in (int, float):
        return False
    try:
        return not math.isnan(float(value))
    except OverflowError:
        return False
