"""A table of bad inputs across config, data, checkpoint, CLI and filesystem.

Each must exit with code 2 and exactly one `error:` line on stderr (a `hint:` line may
follow) that names the offending key / file / row, never a traceback, and must leave an
existing run directory byte-for-byte unchanged.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT

IRIS = ROOT / "datasets" / "iris.csv"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with one finished run and every bad file the cases below point at."""
    from typer.testing import CliRunner

    from mlpcli.cli import app

    root = tmp_path_factory.mktemp("bad-inputs")
    config = root / "good.yaml"
    config.write_text(f"data: {{source: {IRIS}}}\ntraining: {{epochs: 3}}\n")
    result = CliRunner().invoke(
        app, ["train", str(config), "--runs-dir", str(root / "runs"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    (run,) = (root / "runs").iterdir()
    best = run / "checkpoints" / "best.npz"
    _write_bad_files(root, best)
    return root, run


def _write_bad_files(root: Path, best: Path) -> None:
    files = {
        "empty.csv": "",
        "header_only.csv": "a,b,target\n",
        "ragged.csv": "a,b,target\n1,2,0\n3,4\n",
        "text_value.csv": "a,b,target\n1,2,0\n3,oops,1\n4,5,0\n6,7,1\n",
        "one_class.csv": "a,b,target\n" + "".join(f"{i},{i},x\n" for i in range(10)),
        "labels.csv": "a,b,target\n" + "".join(f"{i},{i},c{i % 2}\n" for i in range(10)),
        "not_a_checkpoint.npz": "hello",
        "new_rows.csv": "a,b\n1,2\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "truncated.npz").write_bytes(best.read_bytes()[:300])
    arrays = dict(np.load(best, allow_pickle=False))
    meta = json.loads(str(arrays["meta"]))
    np.savez(root / "no_meta.npz", **{k: v for k, v in arrays.items() if k != "meta"})
    np.savez(
        root / "version.npz",
        **{**arrays, "meta": np.array(json.dumps({**meta, "format_version": 99}))},
    )
    np.savez(root / "shape.npz", **{**arrays, "layers.0.weight": np.zeros((5, 32), np.float32)})
    np.savez(
        root / "pickled.npz", **{**arrays, "layers.0.bias": np.array([object()], dtype=object)}
    )
    np.savez(
        root / "missing_layer.npz", **{k: v for k, v in arrays.items() if k != "layers.1.bias"}
    )


def _config(root: Path, name: str, text: str) -> str:
    path = root / f"{name}.yaml"
    path.write_text(text)
    return str(path)


GOOD = f"data: {{source: {IRIS}}}\n"

# (id, command builder, expected substrings of the error line)
CASES = [
    # --- config
    (
        "yaml-syntax",
        lambda r: ["train", _config(r, "c1", "data: [iris\n")],
        ["c1.yaml:", "invalid YAML"],
    ),
    (
        "unknown-top-key",
        lambda r: ["train", _config(r, "c2", GOOD + "optimiser: {}\n")],
        ["optimiser", "did you mean 'optimizer'"],
    ),
    (
        "unknown-nested-key",
        lambda r: ["validate", _config(r, "c3", GOOD + "optimizer: {lrr: 1}\n")],
        ["c3.yaml:2", "optimizer.lrr"],
    ),
    (
        "wrong-type",
        lambda r: ["train", _config(r, "c4", GOOD + "optimizer: {lr: fast}\n")],
        ["optimizer.lr", "valid number"],
    ),
    (
        "lr-zero",
        lambda r: ["train", _config(r, "c5", GOOD + "optimizer: {lr: 0}\n")],
        ["optimizer.lr", "greater than 0"],
    ),
    (
        "lr-negative",
        lambda r: ["train", _config(r, "c6", GOOD + "optimizer: {lr: -0.1}\n")],
        ["optimizer.lr"],
    ),
    (
        "lr-inf",
        lambda r: ["train", _config(r, "c7", GOOD + "optimizer: {lr: .inf}\n")],
        ["optimizer.lr", "finite"],
    ),
    (
        "dropout-one",
        lambda r: ["train", _config(r, "c8", GOOD + "model: {dropout: 1}\n")],
        ["model.dropout"],
    ),
    (
        "batch-zero",
        lambda r: ["train", _config(r, "c9", GOOD + "training: {batch_size: 0}\n")],
        ["training.batch_size"],
    ),
    (
        "units-zero",
        lambda r: ["train", _config(r, "c10", GOOD + "model: {hidden: [{units: 0}]}\n")],
        ["model.hidden.0.units"],
    ),
    (
        "epochs-float",
        lambda r: ["train", _config(r, "c11", GOOD + "training: {epochs: 1.5}\n")],
        ["training.epochs"],
    ),
    (
        "bad-activation",
        lambda r: [
            "train",
            _config(r, "c12", GOOD + "model: {hidden: [{units: 3, activation: rleu}]}\n"),
        ],
        ["unknown activation 'rleu'", "relu"],
    ),
    (
        "bad-optimizer",
        lambda r: ["train", _config(r, "c13", GOOD + "optimizer: {name: adamm}\n")],
        ["unknown optimizer 'adamm'", "valid:"],
    ),
    (
        "bad-loss",
        lambda r: ["train", _config(r, "c14", GOOD + "loss: crossentropy\n")],
        ["unknown loss 'crossentropy'", "cross_entropy"],
    ),
    (
        "bad-init",
        lambda r: ["train", _config(r, "c15", GOOD + "model: {init: xavier}\n")],
        ["unknown init 'xavier'"],
    ),
    (
        "output-mismatch",
        lambda r: ["train", _config(r, "c16", GOOD + "loss: mse\nmodel: {output: softmax}\n")],
        ["model.output", "mse"],
    ),
    (
        "split-sum",
        lambda r: [
            "train",
            _config(
                r, "c17", f"data: {{source: {IRIS}, split: {{train: 0.9, val: 0.2, test: 0}}}}\n"
            ),
        ],
        ["data.split", "must be 1"],
    ),
    (
        "bad-monitor",
        lambda r: [
            "train",
            _config(r, "c18", GOOD + "training: {early_stopping: {monitor: val_acc}}\n"),
        ],
        ["monitor", "val_accuracy"],
    ),
    (
        "bad-schedule",
        lambda r: ["train", _config(r, "c19", GOOD + "training: {schedule: {name: linear}}\n")],
        ["training.schedule"],
    ),
    (
        "not-a-mapping",
        lambda r: ["train", _config(r, "c20", "- a\n- b\n")],
        ["c20.yaml", "mapping"],
    ),
    ("missing-config", lambda r: ["train", str(r / "nope.yaml")], ["nope.yaml", "not found"]),
    ("no-data", lambda r: ["train", _config(r, "c21", "seed: 1\n")], ["data", "missing"]),
    ("negative-seed", lambda r: ["train", _config(r, "c22", GOOD + "seed: -1\n")], ["seed"]),
    ("bad-name", lambda r: ["train", _config(r, "c23", GOOD + "name: ../escape\n")], ["name"]),
    (
        "yaml-bomb",
        lambda r: [
            "train",
            _config(
                r,
                "c24",
                "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                + "".join(
                    f"a{i}: &a{i} [{', '.join(['*a' + (str(i - 1) if i > 1 else '')] * 10)}]\n"
                    for i in range(1, 6)
                )
                + GOOD,
            ),
        ],
        ["expands to more than"],
    ),
    # --- data
    (
        "data-missing-file",
        lambda r: ["train", _config(r, "d1", "data: {source: nowhere.csv}\n")],
        ["nowhere.csv", "not found"],
    ),
    (
        "data-unknown-builtin",
        lambda r: ["train", _config(r, "d2", "data: {source: irises}\n")],
        ["irises"],
    ),
    (
        "data-empty",
        lambda r: ["train", _config(r, "d3", "data: {source: empty.csv}\n")],
        ["empty.csv", "empty"],
    ),
    (
        "data-header-only",
        lambda r: ["train", _config(r, "d4", "data: {source: header_only.csv}\n")],
        ["header_only.csv"],
    ),
    (
        "data-ragged",
        lambda r: ["train", _config(r, "d5", "data: {source: ragged.csv}\n")],
        ["ragged.csv", "3"],
    ),
    (
        "data-text-value",
        lambda r: [
            "train",
            _config(r, "d6", "data: {source: text_value.csv, columns: {b: numeric}}\n"),
        ],
        ["text_value.csv", "3", "'b'", "oops"],
    ),
    (
        "data-no-target",
        lambda r: ["train", _config(r, "d7", f"data: {{source: {IRIS}, target: species}}\n")],
        ["species"],
    ),
    (
        "data-one-class",
        lambda r: ["train", _config(r, "d8", "data: {source: one_class.csv}\n")],
        ["single class"],
    ),
    (
        "data-text-regression",
        lambda r: ["train", _config(r, "d9", "data: {source: labels.csv}\nloss: mse\n")],
        ["target", "numeric"],
    ),
    # --- checkpoint
    ("ckpt-missing", lambda r: ["eval", str(r / "nope.npz")], ["nope.npz", "not found"]),
    (
        "ckpt-not-npz",
        lambda r: ["eval", str(r / "not_a_checkpoint.npz")],
        ["not_a_checkpoint.npz", "not a valid checkpoint"],
    ),
    ("ckpt-truncated", lambda r: ["eval", str(r / "truncated.npz")], ["truncated.npz"]),
    ("ckpt-no-meta", lambda r: ["eval", str(r / "no_meta.npz")], ["no_meta.npz", "meta"]),
    ("ckpt-version", lambda r: ["eval", str(r / "version.npz")], ["version.npz", "version 99"]),
    ("ckpt-shape", lambda r: ["eval", str(r / "shape.npz")], ["shape.npz", "layers.0.weight"]),
    ("ckpt-pickled", lambda r: ["eval", str(r / "pickled.npz")], ["pickled.npz", "pickled"]),
    (
        "ckpt-missing-layer",
        lambda r: ["eval", str(r / "missing_layer.npz")],
        ["missing_layer.npz", "layers.1.bias"],
    ),
    (
        "predict-missing-column",
        lambda r: ["predict", str(next((r / "runs").iterdir())), "--data", str(r / "new_rows.csv")],
        ["new_rows.csv", "sepal_length_cm"],
    ),
    ("resume-not-a-run", lambda r: ["train", "--resume", str(r)], ["not a run directory"]),
    # --- CLI flags
    (
        "set-unknown-key",
        lambda r: ["train", _config(r, "f1", GOOD), "--set", "optimizer.nope=1"],
        ["--set optimizer.nope=1"],
    ),
    (
        "set-wrong-type",
        lambda r: ["train", _config(r, "f2", GOOD), "--set", "training.epochs=many"],
        ["--set training.epochs=many", "integer"],
    ),
    (
        "set-no-equals",
        lambda r: ["train", _config(r, "f3", GOOD), "--set", "optimizer.lr"],
        ["KEY=VALUE"],
    ),
    (
        "unknown-flag",
        lambda r: ["train", _config(r, "f4", GOOD), "--learning-rate", "3"],
        ["--learning-rate"],
    ),
    ("unknown-command", lambda r: ["fit", _config(r, "f5", GOOD)], ["fit"]),
    (
        "eval-bad-split",
        lambda r: ["eval", str(next((r / "runs").iterdir())), "--split", "holdout"],
        ["holdout"],
    ),
    # --- filesystem
    (
        "runs-dir-is-a-file",
        lambda r: ["train", _config(r, "s1", GOOD), "--runs-dir", str(r / "empty.csv" / "runs")],
        ["cannot create the runs folder"],
    ),
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(("case", "build", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(workspace, runner, monkeypatch, case, build, expected):
    from mlpcli.cli import app

    root, run = workspace
    monkeypatch.chdir(root)
    before = _snapshot(run)
    args = build(root)
    if _is_train(args):  # a run that got past validation would land beside the existing one
        args += ["--runs-dir", str(root / "runs")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (case, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert "Traceback" not in result.output
    assert _snapshot(run) == before
    assert sorted(p.name for p in (root / "runs").iterdir()) == [run.name]  # no new run left


def _is_train(args: list[str]) -> bool:
    return args[0] == "train" and "--runs-dir" not in args and "--resume" not in args


def test_the_table_is_large_enough():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)
