"""Nothing is written outside the run directory: no write follows a symbolic link, and output
files (`predict --out`, `--plot`) never overwrite an input or a file of a run directory."""

import shutil
from pathlib import Path

import pytest

from mlpcli.writes import open_append, replace_atomically, write_text_atomic
from tests.hostile import copy_run, refused

LINKED = [
    "metrics.csv",
    "summary.json",
    "config.yaml",
    "checkpoints",
    "checkpoints/last.npz",
    "checkpoints/best.npz",
]


@pytest.mark.parametrize("name", LINKED)
def test_resume_writes_through_no_link(hostile_run, tmp_path, name):
    run = copy_run(hostile_run, tmp_path / "run", status="interrupted")
    outside = tmp_path / "elsewhere" / Path(name).name
    outside.parent.mkdir()
    shutil.move(run / name, outside)  # the same content, so only the link is wrong
    (run / name).symlink_to(outside)
    refused(
        ["train", "--resume", run, "-q"],
        name,
        "symbolic link",
        watch=[run, outside.parent, hostile_run],
    )


def test_the_write_helpers_refuse_links(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("keep")
    (tmp_path / "link.txt").symlink_to(target)
    (tmp_path / "dir").mkdir()
    (tmp_path / "linked_dir").symlink_to(tmp_path / "dir")
    with pytest.raises(OSError, match="symbolic link"):
        write_text_atomic(tmp_path / "link.txt", "changed")
    with pytest.raises(OSError, match="symbolic link"):
        open_append(tmp_path / "link.txt")
    with pytest.raises(OSError, match="symbolic link"):
        replace_atomically(tmp_path / "linked_dir" / "x.npz", lambda f: f.write(b"x"))
    assert target.read_text() == "keep"
    assert list((tmp_path / "dir").iterdir()) == []


OUT_TARGETS = [
    ("best", lambda run: run / "checkpoints" / "best.npz", "would overwrite a file of the run"),
    ("last", lambda run: run / "checkpoints" / "last.npz", "would overwrite a file of the run"),
    ("summary", lambda run: run / "summary.json", "would overwrite a file of the run"),
    ("metrics", lambda run: run / "metrics.csv", "would overwrite a file of the run"),
    ("config", lambda run: run / "config.yaml", "would overwrite a file of the run"),
    ("rows", lambda run: run.parent / "rows.csv", "is an input of this command"),
    ("run-dir", lambda run: run, "is a folder"),
    ("checkpoints-dir", lambda run: run / "checkpoints", "is a folder"),
]


@pytest.mark.parametrize(
    ("where", "expected"), [t[1:] for t in OUT_TARGETS], ids=[t[0] for t in OUT_TARGETS]
)
def test_predict_out_never_overwrites_a_run_file(hostile_run, tmp_path, where, expected):
    run = copy_run(hostile_run, tmp_path / "run")
    shutil.copy(hostile_run.parent.parent / "rows.csv", tmp_path / "rows.csv")
    out = where(run)
    args = ["predict", run, "--data", tmp_path / "rows.csv", "--out", out]
    refused(args, f"--out {out}", expected, watch=[tmp_path, hostile_run])


def test_predict_out_through_a_link_into_a_run(hostile_run, tmp_path):
    run = copy_run(hostile_run, tmp_path / "run")
    shutil.copy(hostile_run.parent.parent / "rows.csv", tmp_path / "rows.csv")
    link = tmp_path / "predictions.csv"
    link.symlink_to(run / "checkpoints" / "best.npz")
    args = ["predict", run, "--data", tmp_path / "rows.csv", "--out", link]
    refused(args, "--out", "would overwrite a file of the run", watch=[tmp_path, hostile_run])


def test_predict_out_onto_its_own_checkpoint(hostile_run, tmp_path):
    best = tmp_path / "model.npz"
    shutil.copy(hostile_run / "checkpoints" / "best.npz", best)
    rows = hostile_run.parent.parent / "rows.csv"
    args = ["predict", best, "--data", rows, "--out", best]
    refused(args, "--out", "is an input of this command", watch=[tmp_path, hostile_run])


def test_predict_out_may_write_a_new_file_in_a_run(hostile_run, tmp_path, cli):
    run = copy_run(hostile_run, tmp_path / "run")
    result = cli(
        "predict",
        run,
        "--data",
        hostile_run.parent.parent / "rows.csv",
        "--out",
        run / "predictions.csv",
    )
    assert result.exit_code == 0, result.output
    assert (run / "predictions.csv").read_text().startswith("target\n")


@pytest.mark.parametrize("name", ["checkpoints/best.npz", "summary.json"])
@pytest.mark.parametrize(
    "command",
    [["eval", "--plot"], ["compare", "--plot"], ["export", "--out"], ["report", "--out"]],
    ids=lambda c: " ".join(c),
)
def test_output_files_never_overwrite_a_run_file(hostile_run, tmp_path, command, name):
    run = copy_run(hostile_run, tmp_path / "run")
    args = [command[0], run, command[1], run / name]
    refused(args, command[1], "would overwrite a file of the run", watch=[run, hostile_run])


SIZE_CASES = [
    ("two-huge-layers", "model: {hidden: [{units: 100000}, {units: 100000}]}", "model.hidden.0"),
    (
        "second-is-largest",
        "model: {hidden: [{units: 8}, {units: 100000}, {units: 90000}]}",
        "model.hidden.1",
    ),
    (
        "float64",
        "model: {hidden: [{units: 60000}, {units: 60000}]}\ntraining: {dtype: float64}",
        "model.hidden.0",
    ),
    (
        "sgd",
        "model: {hidden: [{units: 100000}, {units: 100000}]}\noptimizer: {name: sgd}",
        "model.hidden.0",
    ),
]


@pytest.mark.parametrize("command", ["train", "validate", "gradcheck"])
@pytest.mark.parametrize(
    ("text", "key"), [c[1:] for c in SIZE_CASES], ids=[c[0] for c in SIZE_CASES]
)
def test_a_network_that_cannot_fit_is_refused_before_allocating(
    hostile_run, tmp_path, monkeypatch, command, text, key
):
    from tests.hostile import IRIS

    monkeypatch.setattr("mlpcli.sizes.available_bytes", lambda: 8 * 10**9)  # any machine
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{source: {IRIS}}}\n{text}\n")
    args = [command, config] + (["--runs-dir", tmp_path / "runs"] if command == "train" else [])
    refused(args, key, "GB of memory", "more than the 8.0 GB available", watch=[hostile_run])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["train", "validate"])
def test_activations_of_a_whole_split_count_too(hostile_run, tmp_path, monkeypatch, command):
    """Few parameters, but a forward pass over 35,000 rows of 40,000 units is ~11 GB."""
    monkeypatch.setattr("mlpcli.sizes.available_bytes", lambda: 8 * 10**9)
    config = tmp_path / "c.yaml"
    config.write_text(
        "data: {source: xor, generator: {n: 50000}}\n"
        "model: {hidden: [{units: 40000}]}\ntraining: {batch_size: 50000}\n"
    )
    args = [command, config] + (["--runs-dir", tmp_path / "runs"] if command == "train" else [])
    refused(args, "model.hidden.0.units: 40000", "more than the 8.0 GB", watch=[hostile_run])
    assert not (tmp_path / "runs").exists()
