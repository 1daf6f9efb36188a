"""The training loop: batches -> forward -> loss -> backward -> step, epoch after epoch.

Early stopping, learning-rate schedules and restarts live here too. The loop never prints
or touches files: it reports through callbacks (`on_epoch_end`, ...) and the CLI decides
whether they draw progress bars, write a run directory, or do nothing.
"""

import functools
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mlpcli.build import (  # the factories; imported from here by older code too
    build_loss,
    build_model,
    build_optimizer,
    build_schedule,
    class_weights,
    fused_steps,
    loss_kernel,
)
from mlpcli.config import RunConfig, minimize, primary_metric
from mlpcli.data import Dataset
from mlpcli.engine import blas
from mlpcli.engine.metrics import accuracy, predicted_classes, r2
from mlpcli.errors import UserError
from mlpcli.resume import Finished, RestartProgress, RestartResult, TrainerState
from mlpcli.status import RunStatus

NORM_SAMPLE = 512  # rows used for the per-epoch gradient norms
# Training data up to this size is shuffled whole once an epoch (a copy), larger data is
# gathered batch by batch into a reused buffer: the copy saves two NumPy calls a batch,
# which is visible in a small model's step, and costs no memory worth counting.
SHUFFLE_WHOLE_BYTES = 16 << 20


@dataclass
class EpochRecord:
    """What one epoch produced; `restart` and `epoch` count from 1."""

    restart: int
    epoch: int
    metrics: dict[str, float]
    lr: float
    seconds: float
    norms: dict[str, float]
    is_best: bool  # best so far over all restarts, on the monitored metric


@dataclass
class TrainResult:
    status: RunStatus  # completed | stopped_early | diverged | interrupted
    reason: str
    monitor: str
    best_value: float
    best_restart: int
    best_epoch: int
    epochs_run: int
    restarts: list[RestartResult] = field(default_factory=list)
    final: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> metrics
    keep: str = "best"  # the final model: the best epoch, or the last
    final_where: tuple[int, int] = (0, 0)  # (restart, epoch) of the final model's weights

    @property
    def spread(self) -> dict[str, float]:
        """Best / median / worst restart on the monitored metric."""
        values = sorted(r.best_value for r in self.restarts)
        if not minimize(self.monitor):
            values.reverse()
        return {"best": values[0], "median": statistics.median(values), "worst": values[-1]}


class TrainingInterrupted(Exception):
    """The stop flag was seen between batches; `Trainer.run` turns it into a result."""


class Callback:
    """Hooks the trainer calls; every method is optional."""

    def on_train_start(self, trainer: "Trainer") -> None: ...

    def on_restart_start(self, trainer: "Trainer", restart: int) -> None: ...

    def on_batch_end(self, trainer: "Trainer", batch: int, n_batches: int) -> None: ...

    def on_epoch_end(self, trainer: "Trainer", record: EpochRecord) -> None: ...

    def on_train_end(self, trainer: "Trainer", result: TrainResult) -> None: ...


class Trainer:
    """Trains one config on one dataset; its attributes are what a checkpoint saves."""

    def __init__(
        self,
        cfg: RunConfig,
        data: Dataset,
        callbacks: Sequence[Callback] = (),
        init_weights: dict[str, np.ndarray] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.callbacks = list(callbacks)
        self.init_weights = init_weights
        # Set from outside (the CLI's Ctrl-C handler); checked between batches.
        self.stop = stop if stop is not None else threading.Event()
        if cfg.model.output == "sigmoid" and data.n_outputs != 2:
            raise UserError(
                f"loss binary_cross_entropy needs exactly 2 classes, the data has {data.n_outputs}"
            )
        rows = max(len(part) for part in data.parts.values())  # evaluate() forwards a split
        steps = fused_steps(cfg, len(data.parts["train"]))
        self.model = build_model(cfg, data.n_features, data.n_outputs, rows, steps)
        if init_weights is not None:
            for p in self.model.params:
                got = init_weights.get(p.name)
                if got is None or got.shape != p.value.shape:
                    shape = None if got is None else got.shape
                    raise UserError(
                        f"model.init_from: '{p.name}' has shape {shape}, "
                        f"this model needs {p.value.shape}"
                    )
        self.class_weight = class_weights(cfg, data)
        self.loss_fn = build_loss(cfg, self.class_weight)
        self.loss_kernel = loss_kernel(cfg)  # on the fast path
        self.metric = primary_metric(data.task)
        self.monitor = cfg.monitor
        self.minimize = minimize(self.monitor)
        dtype = self.model.dtype
        self.X = {name: part.X.astype(dtype, copy=False) for name, part in data.parts.items()}
        self.y = {
            name: part.y.astype(dtype) if data.task == "regression" else part.y
            for name, part in data.parts.items()
        }
        if data.task == "regression":
            ytrain = self.y["train"]
            self._train_ss_tot = float(np.square(ytrain - ytrain.mean(axis=0)).sum()) or 1.0
        self.rng = np.random.default_rng([cfg.seed, 1])  # init, shuffling, dropout, restarts
        self.optimizer = build_optimizer(cfg)
        self.schedule = build_schedule(cfg)
        self.restart = 0
        self.epoch = 0
        self.best_value = math.inf  # in "lower is better" form: sign * value
        self.best_weights: np.ndarray | None = None
        self.best_where = (0, 0)  # (restart, epoch)
        self.progress: RestartProgress | None = None
        self.finished: list[Finished] = []

    # ------------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        """Train every restart, keep the best on the monitored metric, evaluate it."""
        # Overflow on the way to a NaN loss is reported as divergence, not as warnings.
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                return self._run()
        finally:
            blas.restore()  # the engine keeps the BLAS on one thread while it trains

    def _run(self) -> TrainResult:
        for cb in self.callbacks:
            cb.on_train_start(self)
        try:
            while len(self.finished) < self.cfg.training.restarts:
                if self.progress is None:  # no restart in progress (a resumed one may be)
                    self._begin_restart(len(self.finished) + 1)
                for cb in self.callbacks:
                    cb.on_restart_start(self, self.restart)
                self.finished.append(self._run_restart())
                self.progress = None
                if self.finished[-1][1] is RunStatus.DIVERGED:
                    break
        except TrainingInterrupted:
            result = self._result(RunStatus.INTERRUPTED, "stopped on request")
            for cb in self.callbacks:
                cb.on_train_end(self, result)
            return result
        status, reason = RunStatus.COMPLETED, f"ran all {self.cfg.training.epochs} epochs"
        for _, restart_status, restart_reason in self.finished:
            if restart_status is RunStatus.DIVERGED or (
                restart_status is RunStatus.STOPPED_EARLY and status is RunStatus.COMPLETED
            ):
                status, reason = restart_status, restart_reason
        result = self._result(status, reason)
        # the last completed epoch (a diverged one did not complete)
        result.final_where = (self.restart, self.epoch - (status is RunStatus.DIVERGED))
        if result.keep == "best" and self.best_weights is not None:
            self.model.flat.value[...] = self.best_weights  # the final model: the best epoch
            result.final_where = self.best_where
        if status is not RunStatus.DIVERGED:
            result.final = {name: self.evaluate(name) for name in self.X}
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def _result(self, status: RunStatus, reason: str) -> TrainResult:
        sign = 1.0 if self.minimize else -1.0
        results = [r for r, _, _ in self.finished]
        return TrainResult(
            status=status,
            reason=reason,
            monitor=self.monitor,
            best_value=sign * self.best_value,
            best_restart=self.best_where[0],
            best_epoch=self.best_where[1],
            epochs_run=sum(r.epochs_run for r in results),
            restarts=results,
            keep=self.cfg.training.keep,
        )

    def _begin_restart(self, restart: int) -> None:
        self.restart, self.epoch = restart, 0
        self._fresh_start()
        self.progress = RestartProgress(math.inf, 0, 0)

    def _run_restart(self) -> Finished:
        """Run the restart in progress from `self.epoch` on, until done or stopped early."""
        t = self.cfg.training
        restart, p = self.restart, self.progress
        assert p is not None
        sign = 1.0 if self.minimize else -1.0
        es = t.early_stopping
        status, reason = RunStatus.COMPLETED, ""
        while True:
            if es is not None and p.wait >= es.patience:
                status = RunStatus.STOPPED_EARLY
                reason = (
                    f"{self.monitor} did not improve by more than {es.min_delta:g} for "
                    f"{es.patience} epochs (best {sign * p.best:.4g} at epoch {p.best_epoch})"
                )
                break
            if self.epoch >= t.epochs:
                break
            if self.stop.is_set():
                raise TrainingInterrupted
            self.epoch = epoch = self.epoch + 1
            record = self._run_epoch(restart, epoch)
            if record is None:
                return (
                    RestartResult(restart, sign * p.best, p.best_epoch, epoch),
                    RunStatus.DIVERGED,
                    f"the loss became NaN/inf in epoch {epoch} of restart {restart}; "
                    f"try a lower learning rate (optimizer.lr={self.cfg.optimizer.lr:g})",
                )
            value = sign * record.metrics[self.monitor]
            min_delta = es.min_delta if es else 0.0
            if value < p.best - min_delta:
                p.best, p.best_epoch, p.wait = value, epoch, 0
                if value < self.best_value:  # the best over all restarts so far
                    self.best_value = value
                    self.best_weights = self.model.flat.value.copy()
                    self.best_where = (restart, epoch)
                    record.is_best = True
            else:
                p.wait += 1
            self.schedule.observe(record.metrics.get(self._schedule_monitor, value))
            for cb in self.callbacks:
                cb.on_epoch_end(self, record)
        return RestartResult(restart, sign * p.best, p.best_epoch, self.epoch), status, reason

    # ------------------------------------------------------------------ resuming

    def state(self) -> TrainerState:
        """A copy of everything needed to go on from here; valid between epochs only."""
        p = self.progress
        return TrainerState(
            restart=self.restart,
            epoch=self.epoch,
            weights={q.name: q.value.copy() for q in self.model.params},
            optimizer={k: np.array(v) for k, v in self.optimizer.state_dict().items()},
            schedule=self.schedule.state(),
            rng=dict(self.rng.bit_generator.state),
            progress=None if p is None else replace(p),
            best_value=self.best_value,
            best_where=self.best_where,
            best_weights=self.best_weights,  # never changed in place: no copy needed
            finished=list(self.finished),
        )

    def load_state(self, state: TrainerState) -> None:
        """Continue from `state`: the next `run()` goes on exactly where it was taken."""
        for q in self.model.params:
            q.value[...] = state.weights[q.name]
        self.optimizer = build_optimizer(self.cfg)
        self.optimizer.load_state_dict(state.optimizer)
        self.schedule = build_schedule(self.cfg)
        self.schedule.load_state(state.schedule)
        self.rng.bit_generator.state = state.rng
        self.restart, self.epoch = state.restart, state.epoch
        p = state.progress
        self.progress = None if p is None else replace(p)
        self.best_value, self.best_where = state.best_value, state.best_where
        self.best_weights = None if state.best_weights is None else state.best_weights.copy()
        self.finished = list(state.finished)

    @property
    def _schedule_monitor(self) -> str:
        return getattr(self.cfg.training.schedule, "monitor", None) or self.monitor

    def _fresh_start(self) -> None:
        """New random weights (or the init_from weights), fresh optimizer and schedule."""
        self.model.init(self.rng, self.cfg.model.init)
        if self.init_weights is not None:
            for p in self.model.params:
                p.value[...] = self.init_weights[p.name]
        self.optimizer = build_optimizer(self.cfg)
        self.schedule = build_schedule(self.cfg)

    def _run_epoch(self, restart: int, epoch: int) -> EpochRecord | None:
        """One pass over the training data; None if the loss went NaN/inf."""
        t = self.cfg.training
        start = time.perf_counter()
        lr = self.schedule.lr(epoch - 1)
        self.optimizer.lr = lr
        X, y = self.X["train"], self.y["train"]
        n, size = len(X), t.batch_size
        order = self.rng.permutation(n) if t.shuffle else np.arange(n)
        # small data: one shuffled copy, each batch a slice of it (unshuffled: of X itself)
        whole = X.nbytes <= SHUFFLE_WHOLE_BYTES or not t.shuffle
        if whole and t.shuffle:
            X, y = X.take(order, axis=0), y.take(order, axis=0)
        n_batches = math.ceil(n / size)
        total_loss = total_quality = 0.0
        gathered: list[tuple[np.ndarray, np.ndarray]] = []  # large data: the next batch

        def gather_next(b: int) -> None:
            gathered.append(self._gather(X, y, order[b * size : (b + 1) * size]))

        if not whole:
            gather_next(0)
        for b in range(n_batches):
            if self.stop.is_set():
                raise TrainingInterrupted
            if whole:
                batch = X[b * size : (b + 1) * size], y[b * size : (b + 1) * size]
                loss, quality = self._step(*batch)
            else:
                # the next batch is gathered (into the same buffers: this one is used up by
                # then) on the other core while the optimizer updates the weights
                batch = gathered.pop()
                then = functools.partial(gather_next, b + 1) if b + 1 < n_batches else None
                loss, quality = self._step(*batch, alongside_update=then)
            if not math.isfinite(loss):
                return None
            total_loss += loss * len(batch[0])
            total_quality += quality
            for cb in self.callbacks:
                cb.on_batch_end(self, b + 1, n_batches)
        # Running means over the epoch's batches (as Keras reports them), dropout active.
        metrics = {"train_loss": total_loss / n}
        if self.metric == "accuracy":
            metrics["train_accuracy"] = total_quality / n
        else:
            metrics["train_r2"] = 1.0 - total_quality / self._train_ss_tot
        if "val" in self.X:
            metrics.update({f"val_{k}": v for k, v in self.evaluate("val").items()})
            if not math.isfinite(metrics["val_loss"]):
                return None
        return EpochRecord(
            restart, epoch, metrics, lr, time.perf_counter() - start, self.norms(), is_best=False
        )

    _batch_buffers: tuple[np.ndarray, np.ndarray] | None = None  # set by _gather

    def _gather(
        self, X: np.ndarray, y: np.ndarray, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows `idx` of X and y, copied into arrays reused from batch to batch."""
        m = len(idx)
        bufs = self._batch_buffers
        if bufs is None or len(bufs[0]) < m or bufs[0].shape[1:] != X.shape[1:]:
            bufs = np.empty((m, *X.shape[1:]), X.dtype), np.empty((m, *y.shape[1:]), y.dtype)
            self._batch_buffers = bufs
        # mode="clip" skips a bounds check that makes take() buffer its output
        xb = X.take(idx, axis=0, out=bufs[0][:m], mode="clip")
        yb = y.take(idx, axis=0, out=bufs[1][:m], mode="clip")
        return xb, yb

    def _step(
        self, xb: np.ndarray, yb: np.ndarray, alongside_update: Callable[[], None] | None = None
    ) -> tuple[float, float]:
        """Forward, backward and one optimizer step on a batch.

        Returns the batch's mean loss and its quality count: correct predictions for
        classification, the sum of squared residuals for regression. `alongside_update`
        (work that needs neither the weights nor xb, yb any more) runs on another core
        while the optimizer updates the weights.
        """
        logits = self.model.forward(xb, self.rng)
        k = self.model.kernels()
        # The logits are not needed after the loss: their array receives the gradient.
        if k is not None and self.loss_kernel is not None:
            total, correct = getattr(k, self.loss_kernel)(logits, yb, logits)
            loss, quality, dlogits = total / len(yb), float(correct), logits
        else:
            if self.metric == "accuracy":
                quality = float(np.count_nonzero(predicted_classes(logits) == yb))
            else:
                quality = float(np.square(logits - yb).sum())
            loss, dlogits = self.loss_fn(logits, yb, out=logits)
        self.model.backward(dlogits)
        clip = self.cfg.training.clip_grad_norm
        if clip is not None:
            g = self.model.flat.grad
            norm = math.sqrt(float(np.dot(g, g)))
            if norm > clip:
                g *= clip / (norm + 1e-6)  # as torch.nn.utils.clip_grad_norm_
        update = functools.partial(self.optimizer.step, [self.model.flat], self.model.steps)
        if alongside_update is None:
            update()
        else:
            blas.parallel([update, alongside_update])
        return loss, quality

    # ------------------------------------------------------------------ measuring

    def evaluate(self, part: str) -> dict[str, float]:
        """Loss and the primary metric of the current weights on one split."""
        logits = self.model.logits(self.X[part])
        loss, _ = self.loss_fn(logits, self.y[part])
        return {"loss": loss, self.metric: self._quality(logits, self.y[part])}

    def _quality(self, logits: np.ndarray, y: np.ndarray) -> float:
        return accuracy(logits, y) if self.metric == "accuracy" else r2(logits, y)

    def norms(self) -> dict[str, float]:
        """Per-layer weight norms and gradient norms on a fixed sample of training rows.

        The gradient is the full gradient on the first NORM_SAMPLE rows, dropout off,
        so epochs are comparable and vanishing or exploding gradients show up clearly.
        """
        x, y = self.X["train"][:NORM_SAMPLE], self.y["train"][:NORM_SAMPLE]
        logits = self.model.forward(x)
        _, dlogits = self.loss_fn(logits, y, out=logits)
        self.model.backward(dlogits)
        out = {}
        for i, layer in enumerate(self.model.layers):
            out[f"layers.{i}.grad_norm"] = float(np.linalg.norm(layer.weight.grad))
            out[f"layers.{i}.weight_norm"] = float(np.linalg.norm(layer.weight.value))
        return out
