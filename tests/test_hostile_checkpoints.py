"""Crafted checkpoints: wrong types, missing keys and impossible values in `meta` and in the
arrays. eval, predict and --resume refuse each with one line naming the file and the key."""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.hostile import copy_run, read_npz, refused, write_npz


def _set(key: str, value: Any):
    def change(meta: dict[str, Any]) -> None:
        node = meta
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value

    return change


DELETE = object()

# (id, change to meta, words the error line must hold besides the file name)
META_CASES = [
    ("output-list", _set("output", ["softmax"]), ["meta 'output'"]),
    ("output-dict", _set("output", {"a": 1}), ["meta 'output'"]),
    ("output-unknown", _set("output", "tanh"), ["meta 'output'", "softmax"]),
    ("output-null", _set("output", None), ["meta 'output'"]),
    ("output-number", _set("output", 3), ["meta 'output'"]),
    ("activations-string", _set("activations", "relu"), ["meta 'activations'"]),
    ("activations-count", _set("activations", ["relu", "relu"]), ["meta 'activations'"]),
    ("activations-unknown", _set("activations", ["swish"]), ["meta 'activations'"]),
    ("activations-number", _set("activations", [1]), ["meta 'activations'"]),
    ("activations-null", _set("activations", None), ["meta 'activations'"]),
    ("dtype-int8", _set("dtype", "int8"), ["meta 'dtype'"]),
    ("dtype-list", _set("dtype", ["float32"]), ["meta 'dtype'"]),
    ("dtype-null", _set("dtype", None), ["meta 'dtype'"]),
    ("dtype-other", _set("dtype", "float64"), ["dtype float32", "meta says float64"]),
    ("task-unknown", _set("task", "clustering"), ["meta 'task'"]),
    ("task-number", _set("task", 1), ["meta 'task'"]),
    ("task-missing", _set("task", DELETE), ["meta has no 'task'"]),
    ("sizes-missing", _set("sizes", DELETE), ["'sizes'"]),
    ("sizes-short", _set("sizes", [4]), ["'sizes'"]),
    ("sizes-negative", _set("sizes", [4, -32, 3]), ["'sizes'"]),
    ("sizes-string", _set("sizes", "4,32,3"), ["'sizes'"]),
    ("sizes-float", _set("sizes", [4, 32.0, 3]), ["'sizes'"]),
    ("sizes-bool", _set("sizes", [True, 32, 3]), ["'sizes'"]),
    ("sizes-wrong", _set("sizes", [4, 33, 3]), ["layers.0.weight", "shape"]),
    ("sizes-huge", _set("sizes", [4, 10**30, 3]), ["layers.0.weight", "shape"]),
    ("features-missing", _set("feature_names", DELETE), ["'feature_names'"]),
    ("features-count", _set("feature_names", ["a"]), ["'feature_names'"]),
    ("features-numbers", _set("feature_names", [1, 2, 3, 4]), ["'feature_names'"]),
    ("features-duplicate", _set("feature_names", ["a", "a", "b", "c"]), ["'feature_names'"]),
    ("features-string", _set("feature_names", "abcd"), ["'feature_names'"]),
    ("classes-count", _set("class_names", ["a"]), ["'class_names'"]),
    ("classes-missing", _set("class_names", DELETE), ["'class_names'"]),
    ("classes-numbers", _set("class_names", [1, 2, 3]), ["'class_names'"]),
    ("config-missing", _set("config", DELETE), ["meta has no 'config'"]),
    ("config-string", _set("config", "x"), ["meta 'config'"]),
    ("config-list", _set("config", []), ["meta 'config'"]),
    ("config-invalid", _set("config.optimizer.lr", -1), ["optimizer.lr"]),
    ("config-unknown-key", _set("config.training.epochz", 1), ["epochz"]),
    ("config-bool-as-int", _set("config.training.batch_size", True), ["batch_size"]),
    ("epoch-negative", _set("epoch", -1), ["meta 'epoch'"]),
    ("epoch-string", _set("epoch", "3"), ["meta 'epoch'"]),
    ("epoch-float", _set("epoch", 2.5), ["meta 'epoch'"]),
    ("epoch-huge", _set("epoch", 10**30), ["meta 'epoch'"]),
    ("epoch-bool", _set("epoch", True), ["meta 'epoch'"]),
    ("restart-negative", _set("restart", -1), ["meta 'restart'"]),
    ("restart-string", _set("restart", "1"), ["meta 'restart'"]),
    ("version-string", _set("format_version", "1"), ["format version '1'"]),
    ("version-future", _set("format_version", 99), ["format version 99"]),
    ("version-float", _set("format_version", 2.0), ["format version 2.0"]),
    ("preprocess-missing", _set("preprocess", DELETE), ["meta 'preprocess'"]),
    ("preprocess-string", _set("preprocess", "zscore"), ["meta 'preprocess'"]),
    ("preprocess-list", _set("preprocess", []), ["meta 'preprocess'"]),
    ("version-missing", _set("format_version", DELETE), ["format version None"]),
    ("metrics-string", _set("metrics", "good"), ["meta 'metrics'"]),
    ("target-number", _set("target_name", 5), ["meta 'target_name'"]),
]


@pytest.mark.parametrize("command", ["eval", "predict"])
@pytest.mark.parametrize(
    ("change", "expected"), [c[1:] for c in META_CASES], ids=[c[0] for c in META_CASES]
)
def test_crafted_meta_is_refused(hostile_run, tmp_path, command, change, expected):
    best = tmp_path / "best.npz"
    arrays, meta = read_npz(hostile_run / "checkpoints" / "best.npz")
    change(meta)
    write_npz(best, arrays, meta)
    args = [command, best]
    if command == "predict":
        args += ["--data", hostile_run.parent.parent / "rows.csv"]
    refused(args, "best.npz", *expected, watch=[tmp_path, hostile_run])


def _meta_entry(value: np.ndarray):
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays["meta"] = value

    return change


def _array(key: str, value: Any):
    def change(arrays: dict[str, np.ndarray]) -> None:
        if value is DELETE:
            del arrays[key]
        else:
            arrays[key] = value

    return change


def _scaler(mean: np.ndarray, scale: np.ndarray):
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays["scaler.mean"], arrays["scaler.scale"] = mean, scale

    return change


ARRAY_CASES = [
    ("meta-list", _meta_entry(np.array("[1, 2]")), ["not a JSON object"]),
    ("meta-number", _meta_entry(np.array("3")), ["not a JSON object"]),
    ("meta-not-json", _meta_entry(np.array("{oops")), ["not JSON"]),
    ("meta-deep-json", _meta_entry(np.array("[" * 100_000 + "]" * 100_000)), ["not JSON"]),
    ("meta-2d", _meta_entry(np.array([["a"]])), ["not a JSON string"]),
    ("meta-ints", _meta_entry(np.arange(3)), ["not a JSON string"]),
    ("weight-nan", _array("layers.0.weight", np.full((4, 32), np.nan, np.float32)), ["NaN"]),
    ("weight-inf", _array("layers.1.bias", np.full(3, np.inf, np.float32)), ["layers.1.bias"]),
    ("weight-int", _array("layers.0.bias", np.zeros(32, np.int32)), ["layers.0.bias", "dtype"]),
    ("weight-scalar", _array("layers.0.weight", np.float32(1)), ["layers.0.weight", "shape"]),
    ("weight-missing", _array("layers.0.weight", DELETE), ["layers.0.weight"]),
    ("layer-extra", _array("layers.7.weight", np.zeros((1, 1), np.float32)), ["layers.7.weight"]),
    ("scaler-alone", _array("scaler.mean", np.zeros(4, np.float32)), ["go together"]),
    ("scaler-zero", _scaler(np.zeros(4), np.zeros(4)), ["scaler.scale"]),
    ("scaler-shape", _scaler(np.zeros(5), np.ones(5)), ["scaler.mean", "shape"]),
    ("scaler-text", _scaler(np.array(["a"] * 4), np.ones(4)), ["scaler.mean"]),
    ("scaler-nan", _scaler(np.full(4, np.nan), np.ones(4)), ["scaler.mean"]),
]


@pytest.mark.parametrize(
    ("change", "expected"), [c[1:] for c in ARRAY_CASES], ids=[c[0] for c in ARRAY_CASES]
)
def test_crafted_arrays_are_refused(hostile_run, tmp_path, change, expected):
    best = tmp_path / "best.npz"
    arrays, _ = read_npz(hostile_run / "checkpoints" / "best.npz")
    change(arrays)
    write_npz(best, arrays, None)
    refused(["eval", best], "best.npz", *expected, watch=[tmp_path, hostile_run])


def _optimizer(key: str, value: Any):
    def change(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        _array(f"optimizer.{key}", value)(arrays)

    return change


def _resume_meta(key: str, value: Any):
    def change(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        _set(key, value)(meta)

    return change


RESUME_CASES = [
    ("t-negative", _optimizer("t", np.array(-5)), ["optimizer.t"]),
    ("t-float", _optimizer("t", np.array(1.5)), ["optimizer.t"]),
    ("t-vector", _optimizer("t", np.arange(3)), ["optimizer.t"]),
    ("t-missing", _optimizer("t", DELETE), ["optimizer.t"]),
    ("moment-size", _optimizer("params.exp_avg", np.zeros(7, np.float32)), ["exp_avg"]),
    ("moment-nan", _optimizer("params.exp_avg", np.full(259, np.nan, np.float32)), ["exp_avg"]),
    ("moment-dtype", _optimizer("params.exp_avg_sq", np.zeros(259)), ["exp_avg_sq"]),
    ("moment-text", _optimizer("params.exp_avg", np.array(["x"] * 259)), ["exp_avg"]),
    ("resume-missing", _resume_meta("resume", DELETE), ["resume"]),
    ("resume-string", _resume_meta("resume", "x"), ["resume"]),
    ("best-epoch-negative", _resume_meta("resume.best_epoch", -1), ["resume.best_epoch"]),
    ("best-epoch-string", _resume_meta("resume.best_epoch", "3"), ["resume.best_epoch"]),
    ("best-epoch-null", _resume_meta("resume.best_epoch", None), ["resume.best_epoch"]),
    ("best-restart-float", _resume_meta("resume.best_restart", 1.5), ["resume.best_restart"]),
    ("best-value-string", _resume_meta("resume.best_value", "low"), ["resume.best_value"]),
    ("best-value-nan", _resume_meta("resume.best_value", float("nan")), ["resume.best_value"]),
    ("best-value-huge", _resume_meta("resume.best_value", 10**400), ["resume.best_value"]),
    ("wait-negative", _resume_meta("resume.wait", -1), ["resume.wait"]),
    ("finished-string", _resume_meta("resume.finished", "all"), ["resume.finished"]),
    ("finished-numbers", _resume_meta("resume.finished", [1]), ["resume.finished"]),
    ("finished-partial", _resume_meta("resume.finished", [{"restart": 1}]), ["resume.finished"]),
    ("rng-empty", _resume_meta("rng_state", {}), ["rng_state"]),
    ("rng-string", _resume_meta("rng_state", "seed"), ["rng_state"]),
    ("rng-other", _resume_meta("rng_state.bit_generator", "MT19937"), ["rng_state"]),
    ("rng-negative", _resume_meta("rng_state.uinteger", -1), ["rng_state"]),
    ("rng-huge", _resume_meta("rng_state.has_uint32", 10**400), ["rng_state"]),
    ("schedule-string", _resume_meta("schedule_state", "x"), ["schedule_state"]),
    ("schedule-list", _resume_meta("schedule_state", [1, 2]), ["schedule_state"]),
    ("schedule-text-value", _resume_meta("schedule_state", {"current": "x"}), ["schedule_state"]),
    ("epoch-negative", _resume_meta("epoch", -3), ["meta 'epoch'"]),
    ("restart-float", _resume_meta("restart", 1.0), ["meta 'restart'"]),
    ("config-differs", _resume_meta("config.optimizer.lr", 0.5), ["differs"]),
    ("sizes-differ", _resume_meta("output", "sigmoid"), ["'class_names'"]),
    (
        "best-weights-shape",
        lambda a, m: _array("resume.best_weights", np.zeros(3, np.float32))(a),
        ["resume.best_weights"],
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [c[1:] for c in RESUME_CASES], ids=[c[0] for c in RESUME_CASES]
)
def test_crafted_resume_state_is_refused(hostile_run, tmp_path, change, expected):
    run = copy_run(hostile_run, tmp_path / "run", status="interrupted")
    last = run / "checkpoints" / "last.npz"
    arrays, meta = read_npz(last)
    change(arrays, meta)
    write_npz(last, arrays, meta)
    refused(["train", "--resume", run, "-q"], "last.npz", *expected, watch=[run, hostile_run])


def test_the_shared_run_is_a_valid_resumable_checkpoint(hostile_run, tmp_path):
    """The cases above fail because of their damage alone: the undamaged copy resumes."""
    from tests.hostile import invoke

    run = copy_run(hostile_run, tmp_path / "run", status="interrupted")
    result = invoke(["train", "--resume", run, "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def _folder(path: Path) -> None:
    path.mkdir()


def _device(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # opening it would block until a writer came


def _npy(path: Path) -> None:
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.with_suffix(".npy").rename(path)


FILE_CASES = [
    ("folder", _folder, "not a run directory"),
    ("device", _device, "not a regular file"),
    ("fifo", _fifo, "not a regular file"),
    ("npy", _npy, "a single .npy array"),
    ("text", lambda p: p.write_text("hello"), "not an .npz archive"),
    ("empty", lambda p: p.write_bytes(b""), "the file is empty"),
    ("zip-header-only", lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), "corrupt archive"),
]


@pytest.mark.parametrize("command", ["eval", "predict"])
@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_a_checkpoint_that_is_no_archive(hostile_run, tmp_path, command, make, expected):
    path = tmp_path / "model.npz"
    make(path)
    args = [command, path]
    if command == "predict":
        args += ["--data", hostile_run.parent.parent / "rows.csv"]
    refused(args, "model.npz", expected, watch=[hostile_run])


def test_an_archive_that_unpacks_past_memory(hostile_run, monkeypatch):
    """A compressed .npz of zeros is a few KB on disk and any size in memory: the sizes its
    zip directory declares are checked against available memory before anything unpacks."""
    monkeypatch.setattr("mlpcli.checkpoint.available_bytes", lambda: 1000)
    best = hostile_run / "checkpoints" / "best.npz"
    refused(["eval", best], "best.npz", "unpack to", "more than the memory", watch=[hostile_run])
