"""Config validation: defaults, strictness, overrides, and the one-line errors."""

import pytest

from mlpcli.config import load_config, monitors
from mlpcli.errors import UserError
from tests.helpers import IRIS_MINIMAL, ROOT, write_config


def test_minimal_config_is_valid_and_fills_defaults(tmp_path):
    cfg = load_config(write_config(tmp_path, IRIS_MINIMAL))
    assert cfg.loss.name == "cross_entropy"
    assert cfg.model.output == "softmax"
    assert cfg.data.task == "classification"
    assert cfg.optimizer.name == "adam" and cfg.training.epochs > 0


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = load_config(write_config(tmp_path / "sub", "data: {source: ../data.csv}"))
    assert cfg.data.source == str((tmp_path / "data.csv").resolve())


def test_builtin_names_are_not_paths(tmp_path):
    assert load_config(write_config(tmp_path, "data: {source: iris}")).data.source == "iris"


def test_loss_shorthand_and_output_default(tmp_path):
    cfg = load_config(write_config(tmp_path, "data: {source: iris}\nloss: mse"))
    assert cfg.loss.name == "mse" and cfg.model.output == "linear"
    assert cfg.data.task == "regression"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data: {source: iris}\noptimizer: {lrr: 0.1}", "optimizer.lrr: unknown key 'lrr'"),
        ("data: {source: iris}\noptimizer: {lrr: 0.1}", "did you mean 'lr'?"),
        (
            "data: {source: iris}\noptimizer: {lr: -1}",
            "optimizer.lr: Input should be greater than 0",
        ),
        (
            "data: {source: iris}\noptimizer: {lr: fast}",
            "optimizer.lr: Input should be a valid number",
        ),
        ("data: {source: iris}\ntraining: {batch_size: 0}", "training.batch_size"),
        ("data: {source: iris}\nmodel: {dropout: 1.0}", "model.dropout"),
        ("data: {source: iris}\nmodel: {hidden: [{units: 0}]}", "model.hidden.0.units"),
        (
            "data: {source: iris}\nmodel: {hidden: [{units: 8, activation: rleu}]}",
            "did you mean 'relu'",
        ),
        ("data: {source: iris}\noptimizer: {name: adamm}", "unknown optimizer 'adamm'"),
        (
            "data: {source: iris}\nloss: mse\nmodel: {output: softmax}",
            "does not go with loss 'mse'",
        ),
        ("data: {source: iris, split: {train: 0.5, val: 0.1, test: 0.1}}", "must be 1"),
        ("model: {hidden: []}", "data: required key is missing"),
        ("data: {source: iris}\ntraining: {schedule: {name: step, step_size: 0}}", "step_size"),
        (
            "data: {source: iris}\ntraining: {early_stopping: {monitor: val_r2}}",
            "cannot monitor 'val_r2'",
        ),
        ("data: [1, 2", "invalid YAML"),
        ("- just\n- a list", "must be a mapping"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, expected):
    with pytest.raises(UserError) as info:
        load_config(write_config(tmp_path, text))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_errors_point_at_the_line(tmp_path):
    text = "data:\n  source: iris\noptimizer:\n  name: adam\n  lr: -0.5\n"
    with pytest.raises(UserError, match=r"config.yaml:5: optimizer.lr"):
        load_config(write_config(tmp_path, text))


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    with pytest.raises(UserError, match=r"config.yaml:\d+:\d+: invalid YAML"):
        load_config(write_config(tmp_path, "data:\n  source: [iris\n"))


def test_set_overrides(tmp_path):
    path = write_config(tmp_path, IRIS_MINIMAL + "model: {hidden: [{units: 4}]}\n")
    cfg = load_config(
        path,
        [
            "optimizer.lr=0.01",
            "training.batch_size=64",
            "model.hidden.0.units=9",
            "training.early_stopping=null",
        ],
    )
    assert cfg.optimizer.lr == 0.01 and cfg.training.batch_size == 64
    assert cfg.model.hidden[0].units == 9 and cfg.training.early_stopping is None


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("optimizer.lrate=0.1", "--set optimizer.lrate=0.1: optimizer.lrate: unknown key"),
        (
            "optimizer.lr=abc",
            "--set optimizer.lr=abc: optimizer.lr: Input should be a valid number",
        ),
        ("optimizer.lr", "expected KEY=VALUE"),
        ("model.hidden.5.units=3", "not an index"),
    ],
)
def test_bad_overrides_name_the_flag(tmp_path, item, expected):
    with pytest.raises(UserError) as info:
        load_config(write_config(tmp_path, IRIS_MINIMAL), [item])
    assert expected in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_monitor_names_follow_the_task():
    assert monitors("regression", True) == ["train_loss", "train_r2", "val_loss", "val_r2"]
    assert "val_loss" not in monitors("classification", False)


def test_shipped_configs_validate():
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        load_config(path)


def test_pre_split_data_without_val_file_still_has_a_validation_split(tmp_path):
    cfg = load_config(write_config(tmp_path, "data: {train: a.csv, test: b.csv}"))
    assert cfg.has_val and cfg.monitor == "val_loss"
    cfg = load_config(
        write_config(tmp_path, "data: {train: a.csv, split: {train: 0.85, val: 0, test: 0.15}}")
    )
    assert not cfg.has_val
