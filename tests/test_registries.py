"""Every optimizer and schedule name builds the right engine object with every key passed on,
and the run statuses' groupings (issue 13: dispatch by name never builds the wrong thing)."""

import pytest

from mlpcli.config import OPTIMIZER_CONFIGS, SCHEDULES, RunConfig, load_config
from mlpcli.engine import OPTIMIZERS
from mlpcli.engine import schedules as sched
from mlpcli.errors import UserError
from mlpcli.status import RunStatus
from mlpcli.train import build_optimizer, build_schedule
from tests.helpers import write_config

# Values unlike every default, so that a key dropped on the way shows.
OPTIMIZER_KEYS = {
    "sgd": {"lr": 0.03, "weight_decay": 0.004},
    "momentum": {"lr": 0.03, "momentum": 0.7, "weight_decay": 0.004},
    "nesterov": {"lr": 0.03, "momentum": 0.6, "weight_decay": 0.004},
    "adam": {"lr": 0.03, "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "weight_decay": 0.004},
    "adamw": {"lr": 0.03, "beta1": 0.7, "beta2": 0.9, "eps": 1e-5, "weight_decay": 0.004},
    "rmsprop": {"lr": 0.03, "alpha": 0.9, "eps": 1e-7, "weight_decay": 0.004},
}


def _config(**sections) -> RunConfig:
    return RunConfig.model_validate({"data": {"source": "iris"}, **sections})


def test_the_config_and_the_engine_name_the_same_optimizers():
    assert list(OPTIMIZER_CONFIGS) == list(OPTIMIZERS) == list(OPTIMIZER_KEYS)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_builds_its_class_with_every_key(name):
    keys = OPTIMIZER_KEYS[name]
    cfg = _config(optimizer={"name": name, **keys})
    assert set(cfg.optimizer.model_dump()) == {"name", *keys}  # exactly its own keys
    optimizer = build_optimizer(cfg)
    assert type(optimizer) is OPTIMIZERS[name]
    for key, value in keys.items():
        assert getattr(optimizer, key) == value, key
    if name in ("momentum", "nesterov"):
        assert optimizer.nesterov is (name == "nesterov")
    if name.startswith("adam"):
        assert optimizer.decoupled is (name == "adamw")


@pytest.mark.parametrize(
    ("name", "key"),
    [("sgd", "beta1"), ("sgd", "momentum"), ("adam", "momentum"), ("rmsprop", "beta2"),
     ("momentum", "alpha"), ("adamw", "alpha")],
)  # fmt: skip
def test_a_key_of_another_optimizer_is_an_error_naming_it(tmp_path, name, key):
    path = write_config(
        tmp_path, f"data: {{source: iris}}\noptimizer: {{name: {name}, {key}: 0.5}}\n"
    )
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert f"optimizer.{key}: unknown key '{key}' for optimizer {name}" in message
    assert f"{path}:2" in message and "valid: name, lr" in message


def test_an_unknown_optimizer_name_suggests_one(tmp_path):
    path = write_config(tmp_path, "data: {source: iris}\noptimizer: {name: adm}\n")
    with pytest.raises(UserError, match=r"optimizer.name: unknown optimizer 'adm' .*'adam'"):
        load_config(path)


def test_an_optimizer_without_a_name_is_adam_and_set_name_drops_nothing_it_needs(tmp_path):
    assert _config(optimizer={"lr": 0.1}).optimizer.name == "adam"
    path = write_config(tmp_path, "data: {source: iris}\n")
    cfg = load_config(path, ["optimizer.name=sgd", "optimizer.lr=0.2"])
    assert cfg.optimizer.model_dump() == {"name": "sgd", "lr": 0.2, "weight_decay": 0.0}


def test_an_old_run_config_with_every_optimizer_key_still_loads():
    from mlpcli.config import config_from_dict

    old = {
        "data": {"source": "iris"},
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "beta1": 0.9, "beta2": 0.999,
                      "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0},
        "training": {"early_stopping": {"patience": 5, "restore_best": True}},
    }  # fmt: skip
    cfg = config_from_dict(old, "config.yaml")
    assert cfg.optimizer.model_dump() == {"name": "sgd", "lr": 0.1, "weight_decay": 0.0}
    assert cfg.training.keep == "best"


@pytest.mark.parametrize(("restore", "keep"), [(True, "best"), (False, "last")])
def test_restore_best_of_an_old_config_chooses_keep(restore, keep):
    cfg = _config(training={"early_stopping": {"restore_best": restore}})
    assert cfg.training.keep == keep
    other = "last" if restore else "best"
    with pytest.raises(ValueError, match=r"contradicts training\.keep"):
        _config(training={"keep": other, "early_stopping": {"restore_best": restore}})


def test_keep_last_needs_one_restart():
    with pytest.raises(ValueError, match="keep: last goes with restarts: 1"):
        _config(training={"keep": "last", "restarts": 3})


SCHEDULE_KEYS = {
    "constant": ({}, sched.Constant, {}),
    "step": ({"step_size": 7, "gamma": 0.3}, sched.Step, {"step_size": 7, "gamma": 0.3}),
    "exponential": ({"gamma": 0.7}, sched.Exponential, {"gamma": 0.7}),
    "cosine": (
        {"t_max": 40, "eta_min": 0.001, "warmup_epochs": 3},
        sched.Cosine,
        {"t_max": 40, "eta_min": 0.001, "warmup": 3},
    ),
    "plateau": (
        {"monitor": "val_accuracy", "factor": 0.4, "patience": 2, "min_delta": 0.01,
         "min_lr": 1e-5},
        sched.Plateau,
        {"sign": -1.0, "factor": 0.4, "patience": 2, "min_delta": 0.01, "min_lr": 1e-5},
    ),
}  # fmt: skip


def test_the_schedule_registry_is_the_union():
    assert list(SCHEDULES) == list(SCHEDULE_KEYS)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_schedule_builds_its_class_with_every_key(name):
    keys, cls, attributes = SCHEDULE_KEYS[name]
    cfg = _config(
        optimizer={"name": "sgd", "lr": 0.2},
        training={"epochs": 50, "schedule": {"name": name, **keys}},
    )
    schedule = build_schedule(cfg)
    assert type(schedule) is cls and schedule.base_lr == 0.2
    for key, value in attributes.items():
        assert getattr(schedule, key) == value, key


def test_no_schedule_is_constant_and_cosine_defaults_to_all_epochs():
    cfg = _config(training={"epochs": 30, "schedule": None})
    assert type(build_schedule(cfg)) is sched.Constant
    cosine = build_schedule(_config(training={"epochs": 30, "schedule": {"name": "cosine"}}))
    assert isinstance(cosine, sched.Cosine) and cosine.t_max == 30
    plateau = build_schedule(_config(training={"schedule": {"name": "plateau"}}))
    assert isinstance(plateau, sched.Plateau) and plateau.sign == 1.0  # val_loss: minimise


def test_a_key_of_another_schedule_is_an_error_naming_it(tmp_path):
    path = write_config(
        tmp_path, "data: {source: iris}\ntraining:\n  schedule: {name: step, eta_min: 0.1}\n"
    )
    with pytest.raises(UserError, match=r":3: training.schedule.eta_min: unknown key 'eta_min' "):
        load_config(path)


def test_status_groupings():
    assert {s for s in RunStatus if s.succeeded} == {"completed", "stopped_early"}
    assert {s for s in RunStatus if s.finished} == {
        "completed", "stopped_early", "diverged", "pruned"
    }  # fmt: skip
    assert {s for s in RunStatus if s.resumable} == {"running", "interrupted", "failed", "crashed"}
    assert not any(s.finished and s.resumable for s in RunStatus)
    assert RunStatus.parse("completed") is RunStatus.COMPLETED
    assert RunStatus.parse("crashed") is None  # compare derives it; a summary never holds it
    assert RunStatus.parse(["completed"]) is None and RunStatus.parse("done") is None
