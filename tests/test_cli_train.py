"""End to end: `mlpcli train` on iris writes a complete run directory (docs/runs.md)."""

import csv
import json

import numpy as np
import pytest
import yaml

from mlpcli.checkpoint import load_checkpoint
from tests.helpers import IRIS_MINIMAL, ROOT, write_config


def _only_run(runs):
    (run,) = list(runs.iterdir())
    return run


def test_train_iris_writes_the_run_directory(cli, tmp_path):
    result = cli(
        "train", ROOT / "configs" / "iris.yaml", "--runs-dir", tmp_path / "runs", "--quiet"
    )
    assert result.exit_code == 0, result.output
    run = _only_run(tmp_path / "runs")
    assert run.name.startswith("iris-mlp-")
    assert f"run directory: {run}" in result.stdout.replace("\n", "")
    assert {p.name for p in run.iterdir()} == {
        "config.yaml",
        "metrics.csv",
        "checkpoints",
        "summary.json",
    }
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.npz", "best.npz"}

    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["optimizer"]["name"] == "momentum" and resolved["model"]["output"] == "softmax"
    assert resolved["data"]["source"] == str(ROOT / "datasets" / "iris.csv")

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert list(rows[0])[:8] == [
        "epoch",
        "restart",
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
        "lr",
        "seconds",
    ]
    assert "layers.0.grad_norm" in rows[0] and "layers.1.weight_norm" in rows[0]
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] in ("completed", "stopped_early")
    assert summary["epochs_run"] == len(rows)
    assert set(summary["final"]) == {"train", "val", "test"}
    assert set(summary["versions"]) == {"mlpcli", "numpy", "python"}
    # a small model: the NumPy engine, its products on NumPy's BLAS (never MKL: too small)
    assert summary["engine"]["kernels"] == "numpy"
    assert summary["engine"]["gemm"] in ("OpenBLAS", "NumPy's BLAS")
    # the shipped iris config reaches the accuracy the README promises
    assert summary["final"]["test"]["accuracy"] >= 0.95

    ckpt = load_checkpoint(run / "checkpoints" / "best.npz")
    with np.load(run / "checkpoints" / "best.npz", allow_pickle=False) as raw:
        keys = set(raw.files)
    assert {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "meta"} <= keys
    assert {"optimizer.t", "optimizer.params.momentum_buffer"} <= keys
    assert not {"scaler.mean", "scaler.scale"} & keys  # format 2: scaling is in meta.preprocess
    assert ckpt.arrays["layers.0.weight"].shape == (4, 16)
    assert ckpt.arrays["layers.1.weight"].shape == (16, 3)
    assert ckpt.arrays["layers.1.bias"].shape == (3,)
    assert ckpt.meta["class_names"] == ["setosa", "versicolor", "virginica"]
    assert ckpt.meta["feature_names"][0] == "sepal_length_cm"
    assert ckpt.meta["epoch"] == summary["best_epoch"]


def test_forward_pass_with_numpy_alone_reproduces_test_accuracy(cli, tmp_path):
    cli("train", ROOT / "configs" / "iris.yaml", "--runs-dir", tmp_path / "runs", "--quiet")
    run = _only_run(tmp_path / "runs")
    summary = json.loads((run / "summary.json").read_text())
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        layers = [(z[f"layers.{i}.weight"], z[f"layers.{i}.bias"]) for i in range(2)]
    columns = meta["preprocess"]["columns"]
    mean = np.array([c["mean"] for c in columns])
    scale = np.array([c["scale"] for c in columns])
    from mlpcli.config import config_from_dict
    from mlpcli.data import load_dataset

    data = load_dataset(config_from_dict(meta["config"], "meta").data, meta["config"]["seed"])
    raw_test = data.parts["test"].X * scale + mean
    h = (raw_test - mean) / scale
    h = np.tanh(h @ layers[0][0] + layers[0][1])
    logits = h @ layers[1][0] + layers[1][1]
    accuracy = (logits.argmax(axis=1) == data.parts["test"].y).mean()
    assert accuracy == pytest.approx(summary["final"]["test"]["accuracy"])


def test_set_name_and_seed_flags(cli, tmp_path):
    config = write_config(tmp_path, IRIS_MINIMAL + "training: {epochs: 3}\n")
    result = cli(
        "train",
        config,
        "--runs-dir",
        "runs",
        "--name",
        "quick",
        "--seed",
        "7",
        "--set",
        "optimizer.lr=0.01",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    run = _only_run(tmp_path / "runs")
    assert run.name.startswith("quick-")
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["seed"] == 7 and resolved["optimizer"]["lr"] == 0.01


def test_plain_progress_lines_when_not_a_terminal(cli, tmp_path):
    config = write_config(tmp_path, IRIS_MINIMAL + "training: {epochs: 3}\n")
    result = cli("train", config, "--runs-dir", "runs")
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "\x1b[" not in result.stderr  # no escape codes in a log


def test_two_runs_in_the_same_second_get_distinct_directories(cli, tmp_path):
    config = write_config(tmp_path, IRIS_MINIMAL + "training: {epochs: 1}\n")
    for _ in range(3):
        assert cli("train", config, "--runs-dir", "runs", "--quiet").exit_code == 0
    assert len(list((tmp_path / "runs").iterdir())) == 3


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("data: {source: iris}\noptimizer: {lr: -1}", [], "optimizer.lr"),
        ("data: {source: iris}\noptimizer: {lrr: 1}", [], "did you mean 'lr'"),
        ("data: {source: iris}\noptimizer: {lr: fast}", [], "valid number"),
        ("data: {source: missing.csv}", [], "data file not found"),
        ("data: {source: iris}", ["--set", "optimizer.nope=1"], "--set optimizer.nope=1"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_run(cli, tmp_path, text, args, expected):
    config = write_config(tmp_path, text)
    result = cli("train", config, "--runs-dir", "runs", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_validate_prints_shapes_and_parameter_count(cli):
    result = cli("validate", ROOT / "configs" / "iris.yaml")
    assert result.exit_code == 0, result.output
    assert "4 -> 16 -> 3" in result.stdout
    assert "131" in result.stdout  # 4*16 + 16 + 16*3 + 3
    assert "train rows" in result.stdout


def test_datasets_lists_the_builtins(cli):
    result = cli("datasets")
    assert result.exit_code == 0
    for name in ("iris", "wine", "digits", "diabetes"):
        assert name in result.stdout


def test_schema_is_json_schema_of_the_config(cli):
    result = cli("schema")
    schema = json.loads(result.stdout)
    assert {"data", "model", "loss", "optimizer", "training"} <= set(schema["properties"])
    assert "relu" in json.dumps(schema)  # activation names are enumerated for editors


def test_every_command_has_help(cli):
    for command in ("train", "validate", "datasets", "schema"):
        result = cli(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout
