"""The run config: pydantic models for the YAML, loading, `--set` overrides, clear errors.

All validation lives here. Every key has a default, so a minimal config is valid; unknown
keys are errors with a "did you mean"; the resolved config (defaults filled, paths made
absolute) is what a run directory records.
"""

import copy
import difflib
import functools
import re
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mlpcli.engine import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, Optimizer
from mlpcli.engine import optimizers as optim
from mlpcli.engine import schedules as sched
from mlpcli.errors import UserError


def _one_of(registry: dict[str, Any], what: str) -> Any:
    """A string type whose valid values are the keys of an engine registry."""

    def check(value: str) -> str:
        if value not in registry:
            raise ValueError(f"unknown {what} '{value}'{_suggest(value, registry)}")
        return value

    return Annotated[
        str, AfterValidator(check), WithJsonSchema({"type": "string", "enum": list(registry)})
    ]


def _suggest(value: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f" (valid: {', '.join(choices)}){hint}"


if TYPE_CHECKING:
    ActivationName = str
    InitName = str
    LossName = str
else:
    ActivationName = _one_of(ACTIVATIONS, "activation")
    InitName = _one_of(INITIALIZERS, "init")
    LossName = _one_of(LOSSES, "loss")
Task = Literal["classification", "regression"]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]


class Strict(BaseModel):
    # strict about keys; no inf/nan sneaking past numeric bounds (`lr: .inf`); strict types,
    # so `batch_size: true` or `epochs: 1.5` is an error instead of a silent 1 (an int is
    # still a valid float: `lr: 1`)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers(cls, raw: Any) -> Any:
        """NumPy scalars (a dict config built in a notebook) as the Python values they hold;
        np.bool_ stays refused where a number is expected, as `true` is."""
        if isinstance(raw, dict) and any(isinstance(v, np.generic) for v in raw.values()):
            return {k: v.item() if isinstance(v, np.generic) else v for k, v in raw.items()}
        return raw


class Split(Strict):
    train: float = Field(0.7, gt=0.0, le=1.0)
    val: Probability = 0.15
    test: Probability = 0.15
    stratify: bool = True

    @model_validator(mode="after")
    def _sums_to_one(self) -> "Split":
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1 (got {total:g})")
        return self


# ----------------------------------------------------------------------------- generated data


class Generated(Strict):
    """Options every generated dataset takes."""

    n: int = Field(500, gt=0, description="rows to generate")
    noise: float = Field(0.1, ge=0.0, description="standard deviation of the Gaussian noise")
    seed: int | None = Field(
        None, ge=0, lt=2**63, description="seed of the data itself; default: the run's seed"
    )


class XorOptions(Generated):
    n: int = Field(200, gt=0, description="rows; n=4 with noise=0 is the bare truth table")
    noise: float = Field(0.1, ge=0.0, description="jitter around the four corners (+-1, +-1)")


class SpiralsOptions(Generated):
    n: int = Field(600, gt=0)
    noise: float = Field(0.2, ge=0.0, description="angular jitter, in radians")
    arms: int = Field(2, ge=2, le=100, description="spiral arms = classes")
    turns: float = Field(1.0, gt=0.0, description="turns each arm makes from centre to rim")


class MoonsOptions(Generated):
    noise: float = Field(0.1, ge=0.0)


class CirclesOptions(Generated):
    noise: float = Field(0.05, ge=0.0)
    factor: float = Field(0.5, gt=0.0, lt=1.0, description="inner radius / outer radius")


class SineOptions(Generated):
    noise: float = Field(0.1, ge=0.0)
    periods: float = Field(1.0, gt=0.0, description="x spans this many periods of sin")


class Friedman1Options(Generated):
    n: int = Field(1000, gt=0)
    noise: float = Field(1.0, ge=0.0)
    features: int = Field(10, ge=5, le=10_000, description="5 informative, the rest noise")


class GeneratorInfo(BaseModel):
    options: type[Generated]
    task: str
    description: str


# Built-in generated datasets: `data.source: <name>`, options under `data.generator`.
# mlpcli/data/generators.py implements each name (a test keeps the two in step).
GENERATORS: dict[str, GeneratorInfo] = {
    "xor": GeneratorInfo(
        options=XorOptions,
        task="classification",
        description="XOR of the signs of 2 inputs; needs a hidden layer",
    ),
    "spirals": GeneratorInfo(
        options=SpiralsOptions,
        task="classification",
        description="interleaved spiral arms, one class each",
    ),
    "moons": GeneratorInfo(
        options=MoonsOptions, task="classification", description="two interleaving half circles"
    ),
    "circles": GeneratorInfo(
        options=CirclesOptions, task="classification", description="a circle inside another"
    ),
    "sine": GeneratorInfo(
        options=SineOptions, task="regression", description="y = sin(x) + noise, one input"
    ),
    "friedman1": GeneratorInfo(
        options=Friedman1Options,
        task="regression",
        description="Friedman #1: 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4",
    ),
}

MISSING_POLICIES = ("error", "drop", "mean")


def _first_error(exc: ValidationError, model: type[BaseModel], owner: str) -> str:
    """The first error of a nested model validated by hand, as `key: problem`."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key '{key}' for {owner}{_suggest(key, model.model_fields)}"
    message = err["msg"]
    if "input" in err and not isinstance(err["input"], dict):
        message += f" (got {err['input']!r})"
    return f"{key}: {message}"


ColumnKind = Literal["numeric", "categorical", "ignore"]
WEIGHTED_LOSSES = ("cross_entropy", "binary_cross_entropy")


class Categorical(Strict):
    max_categories: int = Field(
        50, ge=1, le=100_000, description="one-hot levels per column; the rarer ones: (other)"
    )
    unknown: Literal["zeros", "error"] = Field(
        "zeros", description="a category unseen in training: all-zero one-hot, or an error"
    )


class Data(Strict):
    source: str | None = Field(
        None, description="CSV/NPZ path (relative to the config) or a built-in name"
    )
    train: str | None = Field(
        None, description="pre-split training file, instead of source + split"
    )
    val: str | None = None
    test: str | None = None
    target: str | None = Field(None, description="target column; default: the last column")
    features: list[str] | None = Field(
        None, min_length=1, description="feature columns to use, in order; default: all others"
    )
    delimiter: str | None = Field(
        None, description="CSV field separator; default: sniffed among , ; tab |"
    )
    missing: Literal["error", "drop", "mean", "median"] = Field(
        "error",
        description="empty/NA numeric cells: error, drop the row, or fill with the train "
        "split's mean / median; a missing category is a level of its own unless error",
    )
    columns: dict[str, ColumnKind] = Field(
        default_factory=dict,
        description="per-column kind: numeric | categorical | ignore; the rest are inferred "
        "(text is categorical; IDs and constant text are ignored)",
    )
    categorical: Categorical = Categorical()
    task: Task | None = Field(None, description="inferred from the loss when omitted")
    split: Split = Split()
    standardize: bool | Literal["global"] = Field(
        True,
        description="true: z-score each feature; global: one mean and std for all features",
    )
    generator: dict[str, Any] | None = Field(
        None,
        validate_default=True,
        description="options of a generated source (xor, spirals, moons, circles, sine, "
        "friedman1): n, noise, seed and its own keys",
    )

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = {"tab": "\t", "\\t": "\t"}.get(value, value)
        if len(value) != 1 or value in '"\r\n':
            raise ValueError(f"must be one character other than a quote or newline (got {value!r})")
        return value

    @field_validator("features")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            seen = [name for i, name in enumerate(value) if name in value[:i]]
            if seen:
                raise ValueError(f"column '{seen[0]}' is listed twice")
        return value

    @field_validator("generator")
    @classmethod
    def _generator_options(cls, value: dict[str, Any] | None, info: ValidationInfo) -> Any:
        """Validate against the generator's own options; resolved with every default."""
        source = info.data.get("source")
        if source not in GENERATORS:
            if value is not None:
                raise ValueError(
                    f"only for a generated source ({', '.join(GENERATORS)}), "
                    f"not for data.source {source!r}"
                )
            return None
        options = GENERATORS[source].options
        try:
            return options.model_validate(value or {}).model_dump()
        except ValidationError as exc:
            raise ValueError(_first_error(exc, options, source)) from None

    @model_validator(mode="after")
    def _one_source(self) -> "Data":
        if (self.source is None) == (self.train is None):
            raise ValueError("give either data.source or data.train (and optional val/test)")
        if self.source is not None and (self.val or self.test):
            raise ValueError("data.val / data.test go with data.train, not with data.source")
        if self.source in GENERATORS or self.source == "mnist":
            for key in ("target", "features", "delimiter", "columns"):
                if getattr(self, key):
                    what = "generated" if self.source in GENERATORS else "built in"
                    raise ValueError(f"data.{key} is for files; '{self.source}' is {what}")
        if self.target is not None and self.features and self.target in self.features:
            raise ValueError(f"column '{self.target}' is both the target and a feature")
        if self.target is not None and self.target in self.columns:
            raise ValueError(f"data.columns: '{self.target}' is the target, not an input column")
        if self.features:
            dropped = [c for c in self.features if self.columns.get(c) == "ignore"]
            if dropped:
                raise ValueError(f"column '{dropped[0]}' is listed in data.features and ignored")
        return self


class Layer(Strict):
    units: int = Field(gt=0, le=100_000)
    activation: ActivationName = "relu"


class ModelConfig(Strict):
    hidden: list[Layer] = Field(default_factory=lambda: [Layer(units=32)])
    output: Literal["softmax", "sigmoid", "linear"] | None = Field(
        None, description="default: the one the loss is fused with"
    )
    init: InitName = "he"
    dropout: Probability = 0.0
    init_from: str | None = None


class LossConfig(Strict):
    name: LossName = "cross_entropy"
    label_smoothing: Probability = Field(0.0, description="cross_entropy only")
    delta: float = Field(1.0, gt=0.0, description="huber only")
    class_weight: (
        Literal["balanced"] | dict[str, Annotated[float, Field(gt=0.0, le=1e6)]] | None
    ) = Field(
        None,
        description="cross_entropy / binary_cross_entropy: weight each example's loss by "
        "its class: balanced (n / (classes * rows of the class), from the train split) or "
        "{class: weight}; classes not named weigh 1",
    )

    @field_validator("class_weight", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> Any:
        """One clear message rather than one per branch of the union."""
        if value is None or value == "balanced":
            return value
        if not isinstance(value, dict):
            raise ValueError(f"must be balanced or a mapping {{class: weight}} (got {value!r})")
        for name, weight in value.items():
            if type(weight) not in (int, float) or not 0 < weight <= 1e6:
                raise ValueError(
                    f"the weight of class '{name}' must be a number above 0 and at most 1e6 "
                    f"(got {weight!r})"
                )
        return {str(name): float(weight) for name, weight in value.items()}

    @model_validator(mode="after")
    def _weights_for_classes(self) -> "LossConfig":
        if self.class_weight is not None and self.name not in WEIGHTED_LOSSES:
            raise ValueError(
                f"class_weight goes with {' or '.join(WEIGHTED_LOSSES)}, not with '{self.name}'"
            )
        return self


# ----------------------------------------------------------------------------- optimizers
# One class per optimizer name, holding exactly the keys its update rule uses (a key of
# another optimizer is an error), and building the engine's optimizer from them.


class OptimizerBase(Strict):
    name: str  # each kind narrows it to its own name (the union's tag); first in config.yaml
    lr: float = Field(0.001, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0, description="L2 penalty (decoupled for adamw)")

    def build(self) -> Optimizer:
        """The engine's optimizer with these hyperparameters."""
        raise NotImplementedError


class SGDConfig(OptimizerBase):
    name: Literal["sgd"]

    def build(self) -> Optimizer:
        return optim.SGD(self.lr, weight_decay=self.weight_decay)


class MomentumConfig(OptimizerBase):
    name: Literal["momentum"]
    momentum: Probability = 0.9

    def build(self) -> Optimizer:
        return optim.Momentum(
            self.lr,
            momentum=self.momentum,
            nesterov=self.name == "nesterov",
            weight_decay=self.weight_decay,
        )


class NesterovConfig(MomentumConfig):
    name: Literal["nesterov"]  # type: ignore[assignment]


class AdamConfig(OptimizerBase):
    name: Literal["adam"] = "adam"
    beta1: Probability = 0.9
    beta2: Probability = 0.999
    eps: float = Field(1e-8, gt=0.0)

    def build(self) -> Optimizer:
        adam = optim.AdamW if self.name == "adamw" else optim.Adam
        return adam(
            self.lr,
            beta1=self.beta1,
            beta2=self.beta2,
            eps=self.eps,
            weight_decay=self.weight_decay,
        )


class AdamWConfig(AdamConfig):
    name: Literal["adamw"]  # type: ignore[assignment]


class RMSpropConfig(OptimizerBase):
    name: Literal["rmsprop"]
    alpha: Probability = Field(0.99, description="smoothing constant")
    eps: float = Field(1e-8, gt=0.0)

    def build(self) -> Optimizer:
        return optim.RMSprop(
            self.lr, alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay
        )


# The config side of the engine's OPTIMIZERS: the keys of each name, and how it builds.
# The two list the same names (checked here, at import; tests check what each builds).
OPTIMIZER_CONFIGS: dict[str, type[OptimizerBase]] = {
    "sgd": SGDConfig,
    "momentum": MomentumConfig,
    "nesterov": NesterovConfig,
    "adam": AdamConfig,
    "adamw": AdamWConfig,
    "rmsprop": RMSpropConfig,
}
if list(OPTIMIZER_CONFIGS) != list(OPTIMIZERS):  # pragma: no cover - a programming error
    raise ImportError("config.OPTIMIZER_CONFIGS and engine.OPTIMIZERS name different optimizers")

OptimizerConfig = Annotated[
    SGDConfig | MomentumConfig | NesterovConfig | AdamConfig | AdamWConfig | RMSpropConfig,
    Field(discriminator="name"),
]


# ----------------------------------------------------------------------------- schedules


class ScheduleBase(Strict):
    def build(self, lr: float, epochs: int, monitor: str) -> sched.Schedule:
        """The engine's schedule from the base `lr`, the run's epochs and its monitor."""
        raise NotImplementedError


class Constant(ScheduleBase):
    name: Literal["constant"] = "constant"

    def build(self, lr: float, epochs: int, monitor: str) -> sched.Schedule:
        return sched.Constant(lr)


class StepSchedule(ScheduleBase):
    name: Literal["step"]
    step_size: int = Field(30, gt=0, description="epochs between decays")
    gamma: float = Field(0.1, gt=0.0, le=1.0)

    def build(self, lr: float, epochs: int, monitor: str) -> sched.Schedule:
        return sched.Step(lr, self.step_size, self.gamma)


class Exponential(ScheduleBase):
    name: Literal["exponential"]
    gamma: float = Field(0.95, gt=0.0, le=1.0)

    def build(self, lr: float, epochs: int, monitor: str) -> sched.Schedule:
        return sched.Exponential(lr, self.gamma)


class Cosine(ScheduleBase):
    name: Literal["cosine"]
    t_max: int | None = Field(None, gt=0, description="epochs of one cosine; default: all epochs")
    eta_min: float = Field(0.0, ge=0.0)
    warmup_epochs: int = Field(0, ge=0, description="linear warmup from lr / (warmup + 1)")

    def build(self, lr: float, epochs: int, monitor: str) -> sched.Schedule:
        return sched.Cosine(lr, self.t_max or epochs, self.eta_min, self.warmup_epochs)


class Plateau(ScheduleBase):
    name: Literal["plateau"]
    monitor: str | None = Field(
        None, description="default: val_loss, or train_loss without a val split"
    )
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(10, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    min_lr: float = Field(0.0, ge=0.0)

    def build(self, lr: float, epochs: int, monitor: str) -> sched.Schedule:
        down = minimize(self.monitor or monitor)  # its own monitor, else the run's
        return sched.Plateau(lr, down, self.factor, self.patience, self.min_delta, self.min_lr)


# The only list of schedule names: each builds its engine schedule.
SCHEDULES: dict[str, type[ScheduleBase]] = {
    "constant": Constant,
    "step": StepSchedule,
    "exponential": Exponential,
    "cosine": Cosine,
    "plateau": Plateau,
}

Schedule = Annotated[
    Constant | StepSchedule | Exponential | Cosine | Plateau, Field(discriminator="name")
]
UNION_MEMBERS: dict[str, type[BaseModel]] = {**OPTIMIZER_CONFIGS, **SCHEDULES}


class EarlyStopping(Strict):
    monitor: str | None = Field(
        None, description="default: val_loss, or train_loss without a val split"
    )
    patience: int = Field(20, gt=0)
    min_delta: float = Field(0.0, ge=0.0)


class Training(Strict):
    epochs: int = Field(100, gt=0, le=1_000_000)
    batch_size: int = Field(32, gt=0, description="1 = pure stochastic; >= n = full batch")
    shuffle: bool = True
    dtype: Literal["float32", "float64"] = "float32"
    schedule: Schedule | None = Constant()
    early_stopping: EarlyStopping | None = EarlyStopping()
    restarts: int = Field(
        1, ge=1, le=10_000, description="independent initialisations; the best is kept"
    )
    clip_grad_norm: float | None = Field(None, gt=0.0)
    keep: Literal["best", "last"] = Field(
        "best",
        description="the final model: best (the best epoch on the monitor, over all restarts) "
        "or last (the last epoch)",
    )
    checkpoint_every: int = Field(1, gt=0, description="epochs between writes of last.npz")
    checkpoint_seconds: float = Field(
        5.0,
        ge=0.0,
        le=86400.0,
        description="and at most one write of last.npz / best.npz this often (the first epoch, "
        "the end and an interrupt always write); 0: every checkpoint_every epochs",
    )

    @model_validator(mode="after")
    def _keep_last_has_one_restart(self) -> "Training":
        if self.keep == "last" and self.restarts > 1:
            raise ValueError(
                "keep: last goes with restarts: 1 (several restarts keep the best one: keep: best)"
            )
        return self


# ----------------------------------------------------------------------------- tune section


class Range(Strict):
    """A numeric range of a search space: `{low: 1.0e-4, high: 0.3, log: true}`."""

    low: float
    high: float
    log: bool = False
    int: bool = Field(False, description="integers only (units, batch sizes, epochs)")
    step: float | None = Field(None, gt=0.0, description="grid of low, low + step, ...")

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.low > self.high:
            raise ValueError(f"low {self.low:g} is above high {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (got {self.low:g})")
        if self.log and self.step is not None:
            raise ValueError("log and step do not go together")
        if self.int and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError(
                f"int: true needs whole low and high (got {self.low:g}, {self.high:g})"
            )
        return self


Choices = Annotated[
    list[bool | int | float | str | None], Field(min_length=1, description="values to choose from")
]
Dimension = Range | Choices


class HiddenSpace(Strict):
    """`model.hidden` searched as depth and width: every layer gets the same units/activation."""

    layers: Range | Choices | int = Field(description="number of hidden layers")
    units: Range | Choices | int | None = Field(None, description="default: the config's")
    activation: Choices | ActivationName | None = Field(None, description="default: the config's")

    @field_validator("layers", "units")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        """Layers and units are counts: a range of them is a range of integers."""
        if isinstance(value, Range) and not value.int:
            if not (value.low.is_integer() and value.high.is_integer()):
                raise ValueError(
                    f"a count needs whole low and high (got {value.low:g}, {value.high:g})"
                )
            value = value.model_copy(update={"int": True})
        return value


class TuneConfig(Strict):
    """The `tune:` section: what `mlpcli tune` searches (ignored by `mlpcli train`)."""

    trials: int = Field(20, gt=0, le=100_000, description="finished trials the study should hold")
    sampler: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    metric: str | None = Field(None, description="default: the config's monitor")
    space: dict[str, Dimension | HiddenSpace] = Field(
        min_length=1, description="dotted config keys (as --set takes them) -> range or choices"
    )

    @field_validator("space", mode="before")
    @classmethod
    def _forms(cls, raw: Any) -> Any:
        """Each key's form, checked here so that an error names the key."""
        if not isinstance(raw, dict):
            return raw
        out: dict[str, Any] = {}
        for key, value in raw.items():
            key = str(key)
            model: type[BaseModel] = HiddenSpace if key == "model.hidden" else Range
            if isinstance(value, list):
                if key == "model.hidden":
                    raise ValueError(
                        f"{key}: search it as {{layers: {{low: 1, high: 3}}, units: ..., "
                        "activation: [...]}}"
                    )
                bad = [v for v in value if isinstance(v, dict | list)]
                if not value or bad:
                    raise ValueError(f"{key}: choices must be a non-empty list of plain values")
                if len({repr(v) for v in value}) != len(value):
                    raise ValueError(f"{key}: a choice is listed twice")
                out[key] = value
            elif isinstance(value, dict):
                try:
                    out[key] = model.model_validate(value)
                except ValidationError as exc:
                    raise ValueError(f"{key}: {_first_error(exc, model, key)}") from None
            else:
                form = (
                    "{layers: ..., units: ..., activation: ...}"
                    if model is HiddenSpace
                    else ("{low: ..., high: ...} or a list of choices")
                )
                raise ValueError(f"{key}: expected {form}, got {value!r}")
        return out


class RunConfig(Strict):
    """A whole run, as written in YAML."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    seed: int = Field(0, ge=0, lt=2**63)
    data: Data
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = AdamConfig()
    training: Training = Training()
    # Only `mlpcli tune` reads it; never written into a run's config.yaml (a trial is a plain run).
    tune: TuneConfig | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, raw: Any) -> Any:
        """`loss: mse` is short for `loss: {name: mse}`; an optimizer without a name is adam;
        `early_stopping.restore_best` (before `training.keep` existed) says which to keep."""
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        if isinstance(raw.get("loss"), str):
            raw["loss"] = {"name": raw["loss"]}
        optimizer = raw.get("optimizer")
        if isinstance(optimizer, dict) and "name" not in optimizer:
            raw["optimizer"] = {"name": "adam", **optimizer}
        training = raw.get("training")
        stopping = training.get("early_stopping") if isinstance(training, dict) else None
        if isinstance(training, dict) and isinstance(stopping, dict) and "restore_best" in stopping:
            stopping = dict(stopping)
            restore = stopping.pop("restore_best")
            if not isinstance(restore, bool):
                raise ValueError(
                    f"training.early_stopping.restore_best: must be true or false "
                    f"(got {restore!r:.40}); training.keep: best | last replaces it"
                )
            keep = "best" if restore else "last"
            if training.get("keep", keep) != keep:
                raise ValueError(
                    f"training.early_stopping.restore_best: {str(restore).lower()} contradicts "
                    f"training.keep: {training['keep']!r:.20} (keep replaces restore_best: "
                    "drop it)"
                )
            raw["training"] = {**training, "early_stopping": stopping, "keep": keep}
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        loss = LOSSES[self.loss.name]
        if self.model.output is None:
            self.model.output = loss.output  # type: ignore[assignment]
        elif self.model.output != loss.output:
            raise ValueError(
                f"model.output '{self.model.output}' does not go with loss '{self.loss.name}' "
                f"(it is fused with '{loss.output}'); set model.output: {loss.output} or drop it"
            )
        task = self.data.task or loss.task
        generated = GENERATORS.get(self.data.source or "")
        if generated is not None and generated.task != task:
            raise ValueError(
                f"data.source '{self.data.source}' is a {generated.task} dataset; "
                f"loss '{self.loss.name}' is for {task}"
            )
        if task != loss.task:
            raise ValueError(f"data.task '{task}' needs a {task} loss, not '{self.loss.name}'")
        self.data.task = self.data.task or loss.task  # type: ignore[assignment]
        valid = monitors(task, self.has_val)
        for key, chosen in (
            ("training.early_stopping.monitor", self.training.early_stopping),
            ("training.schedule.monitor", self.training.schedule),
        ):
            if chosen is None or not hasattr(chosen, "monitor"):
                continue
            chosen.monitor = chosen.monitor or ("val_loss" if self.has_val else "train_loss")
            monitor = chosen.monitor
            if monitor not in valid:
                raise ValueError(f"{key}: cannot monitor '{monitor}'{_suggest(monitor, valid)}")
        metric = self.tune.metric if self.tune else None
        if metric is not None and metric not in valid:
            raise ValueError(f"tune.metric: cannot optimise '{metric}'{_suggest(metric, valid)}")
        return self

    @property
    def has_val(self) -> bool:
        # pre-split data without a val file carves one from train by split.val, as source does
        return self.data.val is not None or self.data.split.val > 0

    @property
    def monitor(self) -> str:
        """The metric that picks the best epoch / restart."""
        default = "val_loss" if self.has_val else "train_loss"
        if self.training.early_stopping is not None:
            return self.training.early_stopping.monitor or default
        return default


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema, as `mlpcli schema` prints it for editors.

    pydantic describes the models as validated; YAML shorthands accepted before validation
    (`loss: mse` for `loss: {name: mse}`) are added here, so every config that loads also
    validates against the schema.
    """
    schema = RunConfig.model_json_schema()
    loss = schema["properties"]["loss"]
    loss_name = {"type": "string", "enum": list(LOSSES)}
    schema["properties"]["loss"] = {
        "anyOf": [{k: v for k, v in loss.items() if k != "default"}, loss_name],
        "default": loss.get("default"),
        "description": "a loss name, or a mapping with its name and options",
    }
    return schema


def primary_metric(task: str) -> str:
    """The per-epoch quality metric next to the loss: accuracy, or R² for regression."""
    return "accuracy" if task == "classification" else "r2"


def monitors(task: str, has_val: bool) -> list[str]:
    """Names a monitor may take."""
    splits = ["train", "val"] if has_val else ["train"]
    return [f"{s}_{m}" for s in splits for m in ("loss", primary_metric(task))]


TASKS: tuple[str, ...] = typing.get_args(Task)


def minimize(metric: str) -> bool:
    """Losses (and MSE, MAE...) improve downwards, the primary metrics (accuracy, R²) upwards:
    `val_loss`, `test_mse` -> True; `val_accuracy`, `train_r2` -> False."""
    return metric.rpartition("_")[2] not in {primary_metric(task) for task in TASKS}


# ----------------------------------------------------------------------------- loading


def load_config(path: Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a YAML config; relative paths resolve against its folder."""
    raw, text = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a config must be a mapping of keys, not {type(raw).__name__}")
    for item in overrides or []:
        _apply_override(raw, item)
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_short(_describe(exc, path, text, overrides or []), 400)) from None
    _resolve_paths(cfg, path.parent)
    return cfg


def config_from_mapping(
    raw: dict[str, Any], overrides: list[str] | None = None, base: Path | None = None
) -> RunConfig:
    """Override and validate a config given as a mapping (the Python API's `train({...})`);
    relative paths resolve against `base` (default: the working folder)."""
    if not isinstance(raw, dict):
        raise UserError(f"a config must be a mapping of keys, not {type(raw).__name__}")
    raw = copy.deepcopy(raw)  # the caller's dict is left as it was
    for item in overrides or []:
        _apply_override(raw, item)
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_short(_describe(exc, Path("config"), "", overrides or []), 400)) from None
    _resolve_paths(cfg, base or Path.cwd())
    return cfg


# Limits every YAML file mlpcli reads is held to (a config, a run's config.yaml): a real
# config is a few hundred bytes, a dozen levels and a few hundred values.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_DEPTH = 64
MAX_CONFIG_NODES = 10_000


def read_yaml(path: Path) -> tuple[Any, str]:
    """A YAML file's content and text, under the size, depth and alias limits; UserError else.

    A key given twice in one mapping is an error (YAML would silently keep the last).
    """
    text = _read_text(path)
    _check_depth(path, text)
    try:
        raw = yaml.load(text, Loader=_Loader)
    except _DuplicateKey as exc:
        raise UserError(f"{path}:{exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: invalid YAML: {_short(str(problem))}") from None
    except RecursionError:  # pragma: no cover - _check_depth refuses such files first
        raise UserError(f"{path}: nested deeper than {MAX_CONFIG_DEPTH} levels") from None
    if _expanded_size(raw) > MAX_CONFIG_NODES:
        raise UserError(
            f"{path}: the config expands to more than {MAX_CONFIG_NODES} values "
            "(YAML anchors/aliases nested too deep?)"
        )
    return raw, text


def _check_depth(path: Path, text: str) -> None:
    """Refuse deep nesting from the event stream, before the recursive composer sees it."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_CONFIG_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    raise UserError(f"{path}:{line}: nested deeper than {MAX_CONFIG_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if "nesting depth" not in str(exc):
            return  # the loader reports the syntax error with its line
        # libyaml's own limit (1000 levels), met before the events reach ours
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else "?"
        raise UserError(f"{path}:{line}: nested deeper than {MAX_CONFIG_DEPTH} levels") from None


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"key {_short(repr(key))} appears twice (first on line {first})")
        self.line = line


# libyaml's parser where PyYAML was built with it (its wheels are): ~5x faster than the
# pure-Python one, which is most of the cost of reading a config (tune reads one per trial)
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate keys and reads `1e-3` as a number (as YAML 1.2 does)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads `1e-3` (no dot) as a string; a number is what every user means by it.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _expanded_size(node: Any, budget: int = MAX_CONFIG_NODES + 1) -> int:
    """Values in the config once aliases are expanded; counting stops past the budget."""
    count, stack = 0, [node]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def config_from_dict(raw: dict[str, Any], origin: str) -> RunConfig:
    """Validate an already-resolved config (from a run directory or a checkpoint)."""
    try:
        return RunConfig.model_validate(upgrade_stored(raw))
    except ValidationError as exc:
        raise UserError(_short(_describe(exc, Path(origin), "", []), 400)) from None


def upgrade_stored(raw: dict[str, Any]) -> dict[str, Any]:
    """A resolved config written by an older mlpcli, in today's form (docs/config.md).

    Older versions wrote every optimizer's keys whatever the name (`momentum: 0.9` for
    adam): the keys the named optimizer does not use are dropped. They wrote
    `early_stopping.restore_best`, which never changed the final model: every run kept
    its best epoch, so it becomes `keep: best`.
    """
    raw = dict(raw)
    optimizer = raw.get("optimizer")
    if isinstance(optimizer, dict):
        spec = OPTIMIZER_CONFIGS.get(optimizer.get("name", "adam"))
        if spec is not None:
            raw["optimizer"] = {k: v for k, v in optimizer.items() if k in spec.model_fields}
    training = raw.get("training")
    stopping = training.get("early_stopping") if isinstance(training, dict) else None
    if isinstance(training, dict) and isinstance(stopping, dict) and "restore_best" in stopping:
        stopping = {k: v for k, v in stopping.items() if k != "restore_best"}
        raw["training"] = {**training, "early_stopping": stopping, "keep": "best"}
    return raw


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML, every default written out."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def _read_text(path: Path) -> str:
    """A config's text, at most MAX_CONFIG_BYTES of it (a device or a huge file is refused)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes: not a config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: cannot read config: not UTF-8 text (byte {exc.start})") from None


def _apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `--set a.b.c=value`; the value is parsed as a YAML scalar."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set optimizer.lr=0.01")
    parts = key.strip().split(".")
    bad = next((p for p in parts if not _KEY_PART.fullmatch(p)), None)
    if bad is not None:
        what = "an empty part" if not bad else f"'{_short(bad, 40)}'"
        raise UserError(
            f"--set {_short(item, 60)}: not a dotted config key ({what}); "
            "e.g. --set optimizer.lr=0.01 or --set model.hidden.0.units=64"
        )
    try:
        value = yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        value = text
    node: Any = raw
    default: Any = _defaults()
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(
                    f"--set {key}: '{part}' is not an index of the list at {'.'.join(parts[:i])}"
                )
            if last:
                node[int(part)] = value
            else:
                node, default = node[int(part)], None
        elif isinstance(node, dict):
            default = default.get(part) if isinstance(default, dict) else None
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    # a section the file leaves to its defaults: start from them
                    node[part] = copy.deepcopy(default) if default is not None else {}
                node = node[part]
        else:
            raise UserError(f"--set {key}: '{'.'.join(parts[:i])}' is not a mapping")


_KEY_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


@functools.cache
def _defaults() -> dict[str, Any]:
    """The default value of every section that has one (data has none)."""
    return {
        "model": ModelConfig().model_dump(mode="json", exclude_none=True),
        "loss": LossConfig().model_dump(mode="json"),
        # not adam's keys: `--set optimizer.name=sgd` must not inherit beta1 and the rest
        "optimizer": {},
        "training": Training().model_dump(mode="json"),
    }


def _describe(exc: ValidationError, path: Path, text: str, overrides: list[str]) -> str:
    """One line for the first validation error: file:line: key: problem."""
    err = exc.errors()[0]
    tags, loc = _split_union_tags(err["loc"])
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        model = UNION_MEMBERS[str(tags[-1])] if tags else _model_at(loc[:-1])
        choices = list(model.model_fields) if model else []
        owner = f" for {loc[-2]} {tags[-1]}" if tags and len(loc) > 1 else ""
        message = f"unknown key '{loc[-1]}'{owner}" + (
            _suggest(loc[-1], choices) if choices else ""
        )
    elif err["type"] == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", "")
        what = "optimizer" if loc and loc[0] == "optimizer" else "schedule"
        valid = OPTIMIZER_CONFIGS if what == "optimizer" else SCHEDULES
        message = f"unknown {what} {tag!r:.60}{_suggest(tag, valid)}"
        key = ".".join([*loc, "name"])
    elif err["type"] == "missing":
        message = "required key is missing"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if (
            "input" in err
            and err["type"] not in ("model_type", "dict_type")
            and not isinstance(err["input"], dict)
        ):
            message += f" (got {_short(repr(err['input']))})"
    for item in reversed(overrides):  # the last --set of a key is the one that counts
        target = item.partition("=")[0].strip()
        if key and (target == key or key.startswith(f"{target}.") or target.startswith(f"{key}.")):
            return f"--set {item}: {key}: {message}"
    line = _line_of(text, loc)
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {key}: {message}" if key else f"{where}: {message}"


def _short(text: str, limit: int = 80) -> str:
    """One line of bounded length: an error message must stay readable whatever the input."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _split_union_tags(path: tuple[Any, ...]) -> tuple[list[str], list[str]]:
    """The union members pydantic puts into an error location (`optimizer.sgd.beta1`:
    sgd), and the location without them; a member only right after its union's key."""
    tags: list[str] = []
    loc: list[str] = []
    for part in map(str, path):
        if loc and loc[-1] in ("optimizer", "schedule") and part in UNION_MEMBERS and not tags:
            tags.append(part)
        else:
            loc.append(part)
    return tags, loc


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at a config location."""
    model: type[BaseModel] = RunConfig
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if part == "hidden":
            nested = [Layer]
        if not nested:
            return None
        model = nested[0]
    return model


def _line_of(text: str, loc: list[str]) -> int | None:
    """1-based line of the deepest YAML node along `loc` that exists in the file."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == part]
            keys = [k for k, v in node.value if getattr(k, "value", None) == part]
            if not match:
                break
            line = keys[0].start_mark.line + 1
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _resolve_paths(cfg: RunConfig, base: Path) -> None:
    data = cfg.data
    for field in ("source", "train", "val", "test"):
        value = getattr(data, field)
        if value is not None and _looks_like_path(value):
            setattr(data, field, str((base / value).resolve()))
    if cfg.model.init_from is not None:
        cfg.model.init_from = str((base / cfg.model.init_from).resolve())


def _looks_like_path(value: str) -> bool:
    return (
        "/" in value
        or "\\" in value
        or Path(value).suffix.lower() in (".csv", ".npz", ".parquet", ".pq", ".tsv")
    )
