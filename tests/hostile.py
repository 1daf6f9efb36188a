"""Helpers of the hostile-input tests: one trained run shared by all, damaged copies of it,
and the one assertion every case makes.

A refused command exits 2 with exactly one `error:` line on stderr (a `hint:` line may
follow) naming the culprit, never a traceback, and leaves every byte of every run file it
was pointed at (and of the shared run) as it was.
"""

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner, Result

from mlpcli.cli import app
from tests.helpers import ROOT

IRIS = ROOT / "datasets" / "iris.csv"
RUNNER = CliRunner()


def train_shared_run(root: Path) -> Path:
    """A finished 3-epoch iris run (what the session fixture `hostile_run` builds once)."""
    config = root / "good.yaml"
    config.write_text(f"data: {{source: {IRIS}}}\ntraining: {{epochs: 3}}\n")
    result = RUNNER.invoke(app, ["train", str(config), "--runs-dir", str(root / "runs"), "-q"])
    assert result.exit_code == 0, result.output
    (run,) = (root / "runs").iterdir()
    rows = root / "rows.csv"
    rows.write_text(
        "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,3.5,1.4,0.2\n"
    )
    return run


def copy_run(run: Path, dest: Path, status: str | None = None) -> Path:
    """A copy of `run` to damage; `status` rewrites summary.json's (interrupted: resumable)."""
    copy = Path(shutil.copytree(run, dest, symlinks=True))
    if status is not None:
        edit_json(copy / "summary.json", lambda s: {**s, "status": status})
    return copy


def edit_json(path: Path, change: Any) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(str(arrays["meta"]))


def write_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None) -> None:
    payload = dict(arrays)
    if meta is not None:
        payload["meta"] = np.array(json.dumps(meta))
    with path.open("wb") as f:
        np.savez(f, **payload)


def snapshot(folders: Iterable[Path]) -> dict[str, str]:
    """Every file (hash of its bytes) and link (its target) under `folders`."""
    out = {}
    for folder in folders:
        for p in sorted([folder, *folder.rglob("*")]):
            if p.is_symlink():
                out[str(p)] = "-> " + str(p.readlink())
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                out[str(p)] = "dir"
    return out


def invoke(args: list[str]) -> Result:
    return RUNNER.invoke(app, [str(a) for a in args])


def refused(args: list[Any], *expected: str, watch: Iterable[Path] = ()) -> str:
    """Run the command; assert it is refused as every bad input must be; its error line."""
    folders = list(watch)
    before = snapshot(folders)
    result = invoke(args)
    assert result.exit_code == 2, (args, result.output)
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert snapshot(folders) == before, "a refused command changed a run file"
    return lines[0]
