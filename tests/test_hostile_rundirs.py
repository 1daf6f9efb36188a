"""Damaged run directories: summary.json, metrics.csv and config.yaml that no run wrote.
`--resume` refuses each with one line naming the file; `compare` shows the run with what is
wrong with it and goes on with the others."""

import json
from pathlib import Path

import pytest

from tests.hostile import copy_run, invoke, refused, snapshot


def _bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    return "\n".join(lines) + "\n"


SUMMARY = "summary.json"
METRICS = "metrics.csv"
CONFIG = "config.yaml"
HEADER = "epoch,restart,train_loss,val_loss,train_accuracy,val_accuracy,lr,seconds\n"


def _row(epoch: str, restart: str = "1") -> str:
    return f"{epoch},{restart},1.0,1.0,0.5,0.5,0.001,0.01\n"


# (id, file, new content, words the --resume error holds, words compare's notes hold)
CASES = [
    ("summary-list", SUMMARY, "[1, 2]", ["not a run summary"], ["not a JSON object"]),
    ("summary-number", SUMMARY, "3", ["not a run summary"], ["not a JSON object"]),
    ("summary-string", SUMMARY, '"done"', ["not a run summary"], ["not a JSON object"]),
    ("summary-truncated", SUMMARY, '{"status": "inter', ["cannot read"], ["unreadable"]),
    ("summary-empty", SUMMARY, "", ["cannot read"], ["unreadable"]),
    ("summary-binary", SUMMARY, b"\xff\xfe\x00", ["cannot read"], ["unreadable"]),
    ("summary-deep", SUMMARY, "[" * 100_000, ["nested too deep"], ["nested too deep"]),
    ("summary-no-status", SUMMARY, '{"name": "x"}', ["no 'status'"], ["not a status"]),
    ("summary-status-list", SUMMARY, '{"status": ["running"]}', ["no 'status'"], ["status"]),
    (
        "summary-huge-int",
        SUMMARY,
        '{"status": "interrupted", "epochs_run": 1' + "0" * 400 + "}",
        ["a number no run writes"],
        ["out of range"],
    ),
    (
        "summary-nan",
        SUMMARY,
        '{"status": "interrupted", "wall_seconds": NaN}',
        ["nan, a number no run writes"],
        [],
    ),
    (
        "summary-inf",
        SUMMARY,
        '{"status": "interrupted", "n_params": -Infinity}',
        ["-inf, a number no run writes"],
        [],
    ),
    ("metrics-nan-epoch", METRICS, HEADER + _row("nan") + _row("3"), [":2:"], ["skipped 1"]),
    ("metrics-inf-epoch", METRICS, HEADER + _row("inf") + _row("3"), [":2:"], ["skipped 1"]),
    ("metrics-negative", METRICS, HEADER + _row("-1") + _row("3"), [":2:"], ["skipped 1"]),
    ("metrics-float", METRICS, HEADER + _row("2.5") + _row("3"), [":2:"], ["skipped 1"]),
    ("metrics-restart-nan", METRICS, HEADER + _row("1", "nan") + _row("3"), [":2:"], ["skip"]),
    ("metrics-huge", METRICS, HEADER + _row("1" + "0" * 30) + _row("3"), [":2:"], ["skipped"]),
    ("metrics-no-epoch", METRICS, "loss\n1.0\n", [":1:", "'epoch'"], ["no 'epoch' column"]),
    ("metrics-binary", METRICS, b"\xff\xfe\n\x00\n", ["not UTF-8"], ["unreadable"]),
    ("config-bomb", CONFIG, _bomb(), ["expands to more than"], ["expands to more than"]),
    ("config-deep", CONFIG, "a: " + "[" * 5000 + "]" * 5000, ["deeper than"], ["deeper than"]),
    ("config-duplicate", CONFIG, "seed: 1\nseed: 2\n", [":2:", "twice"], ["twice"]),
    ("config-list", CONFIG, "- 1\n- 2\n", ["not a mapping"], ["not a mapping"]),
    ("config-syntax", CONFIG, "data: [iris\n", ["invalid YAML"], ["invalid YAML"]),
    ("config-binary", CONFIG, b"\xff\xfe", ["not UTF-8"], ["not UTF-8"]),
    ("config-empty", CONFIG, "", ["not a mapping"], ["not a mapping"]),
    ("config-tag", CONFIG, "a: !!python/name:os.system\n", ["invalid YAML"], ["invalid YAML"]),
    ("config-huge", CONFIG, "#" * 1_100_000, ["larger than"], ["larger than"]),
]


def _damage(run: Path, name: str, content: str | bytes) -> None:
    path = run / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


@pytest.mark.parametrize(
    ("name", "content", "expected"), [(c[1], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_resume_refuses_a_damaged_run(hostile_run, tmp_path, name, content, expected):
    run = copy_run(hostile_run, tmp_path / "run", status="interrupted")
    _damage(run, name, content)
    refused(["train", "--resume", run, "-q"], name, *expected, watch=[run, hostile_run])


@pytest.mark.parametrize(
    ("name", "content", "expected"), [(c[1], c[2], c[4]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_compare_shows_a_damaged_run_and_goes_on(hostile_run, tmp_path, name, content, expected):
    run = copy_run(hostile_run, tmp_path / "run", status="interrupted")
    _damage(run, name, content)
    before = snapshot([run, hostile_run])
    result = invoke(["compare", "--json", "--per-run", run, hostile_run])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    statuses = {r["name"]: r["status"] for r in report["rows"]}
    assert statuses[hostile_run.name] == "completed"  # the healthy run is there, unharmed
    if name == CONFIG or "status" in " ".join(expected) or "JSON" in " ".join(expected):
        assert statuses["run"] == "corrupt", statuses
    notes = " ".join(report["notes"])
    for text in expected:
        assert text in notes, (text, notes)
    plain = invoke(["compare", run, hostile_run])  # and the table draws
    assert plain.exit_code == 0 and "Traceback" not in plain.output, plain.output
    assert snapshot([run, hostile_run]) == before


def test_compare_marks_a_run_without_a_valid_summary_corrupt(hostile_run, tmp_path):
    run = copy_run(hostile_run, tmp_path / "run")
    (run / SUMMARY).write_text("[1, 2]")
    result = invoke(["compare", "--json", "--per-run", run, hostile_run])
    assert result.exit_code == 0, result.output
    statuses = {r["name"]: r["status"] for r in json.loads(result.stdout)["rows"]}
    assert statuses["run"] == "corrupt"
    assert statuses[hostile_run.name] == "completed"


def test_compare_does_not_follow_a_link_loop(hostile_run, tmp_path):
    runs = tmp_path / "runs"
    copy_run(hostile_run, runs / "a")
    (runs / "loop").symlink_to(runs)
    result = invoke(["compare", runs])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", [SUMMARY, METRICS, CONFIG])
def test_compare_reads_no_device_as_a_run_file(hostile_run, tmp_path, name):
    run = copy_run(hostile_run, tmp_path / "run")
    (run / name).unlink()
    (run / name).symlink_to("/dev/zero")
    result = invoke(["compare", "--json", run])
    assert result.exit_code == 0, result.output
    assert "not a regular file" in " ".join(json.loads(result.stdout)["notes"])


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000, "[1, 2]", '{"metric": ["val_loss"]}', "\xff"],
    ids=["deep", "list", "metric-list", "text"],
)
def test_compare_of_a_folder_with_a_damaged_tune_record(hostile_run, tmp_path, content):
    runs = tmp_path / "study"
    copy_run(hostile_run, runs / "trial-0")
    (runs / "tune.json").write_text(content)
    before = snapshot([runs])
    result = invoke(["compare", runs])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert snapshot([runs]) == before


def test_compare_reads_no_device_as_a_tune_record(hostile_run, tmp_path):
    runs = tmp_path / "study"
    copy_run(hostile_run, runs / "trial-0")
    (runs / "tune.json").symlink_to("/dev/zero")
    result = invoke(["compare", runs])
    assert result.exit_code == 0, result.output
