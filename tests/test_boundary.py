"""`mlpcli eval RUN --plot boundary.png`: decision regions of a 2-feature classifier (issue 9)."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.evaluate import load_model
from mlpcli.plot import decision_regions
from mlpcli.runs import train_run
from tests.helpers import ROOT, write_config

PNG = b"\x89PNG\r\n\x1a\n"
CENTRES = {"left": (-3.0, 0.0), "right": (3.0, 0.0), "top": (0.0, 4.0)}


def write_blobs(path: Path, classes: dict[str, tuple[float, float]], n: int = 40) -> Path:
    """`n` points around each centre, in columns u, v (not x0, x1: names come from the file)."""
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["u", "v", "label"])
        for name, (cx, cy) in classes.items():
            for x, y in rng.normal((cx, cy), 0.6, (n, 2)):
                writer.writerow([f"{x:.4f}", f"{y:.4f}", name])
    return path


def train(folder: Path, csv_path: Path, loss: str = "cross_entropy") -> Path:
    config = write_config(
        folder,
        f"""
name: blobs
data: {{source: {csv_path}}}
model: {{hidden: [{{units: 8, activation: tanh}}]}}
loss: {loss}
optimizer: {{name: adam, lr: 0.05}}
training: {{epochs: 30, batch_size: 16, early_stopping: null}}
""",
        name=f"{loss}.yaml",
    )
    run_dir, result = train_run(load_config(config), folder / "runs", [], None)
    assert result.status == "completed"
    return run_dir


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> tuple[Path, Path]:
    """A trained 3-class run on three well-separated blobs, and its CSV."""
    folder = tmp_path_factory.mktemp("blobs")
    csv_path = write_blobs(folder / "blobs.csv", CENTRES)
    return train(folder, csv_path), csv_path


def test_regions_put_each_blob_centre_in_its_own_class(blobs):
    run_dir, _ = blobs
    saved = load_model(run_dir)
    X = np.array(list(CENTRES.values()))
    regions = decision_regions(saved, X, size=61)
    # the grid spans the rows with a margin, in the file's raw units (not standardised)
    assert regions.xs[0] < -3.0 < 3.0 < regions.xs[-1]
    assert regions.ys[0] < 0.0 < 4.0 < regions.ys[-1]
    for k, (cx, cy) in enumerate(CENTRES.values()):
        i, j = np.abs(regions.ys - cy).argmin(), np.abs(regions.xs - cx).argmin()
        assert saved.class_names is not None
        assert saved.class_names[regions.classes[i, j]] == list(CENTRES)[k]
        assert regions.confidence[i, j] > 0.9
    assert ((regions.confidence > 1 / 3 - 1e-9) & (regions.confidence <= 1 + 1e-9)).all()


def test_one_sigmoid_unit_gives_two_regions(tmp_path):
    two = {"left": CENTRES["left"], "right": CENTRES["right"]}
    run_dir = train(tmp_path, write_blobs(tmp_path / "two.csv", two), "binary_cross_entropy")
    saved = load_model(run_dir)
    assert saved.model.sizes[-1] == 1
    regions = decision_regions(saved, np.array([[-3.0, 0.0], [3.0, 0.0]]), size=21)
    assert set(np.unique(regions.classes)) == {0, 1}
    assert regions.classes[10, 0] == 0 and regions.classes[10, -1] == 1


def test_eval_plot_writes_a_png_and_still_prints_metrics(cli, blobs, tmp_path):
    pytest.importorskip("matplotlib")
    run_dir, _ = blobs
    out = tmp_path / "boundary.png"
    result = cli("eval", run_dir, "--plot", out)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
    assert f"plot: {out}" in result.stderr
    assert out.read_bytes()[:8] == PNG
    assert out.stat().st_size > 10_000


def test_eval_plot_with_data_file_and_json(cli, blobs, tmp_path):
    pytest.importorskip("matplotlib")
    run_dir, csv_path = blobs
    out = tmp_path / "on-file.png"
    result = cli("eval", run_dir, "--data", csv_path, "--json", "--plot", out)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 120  # stdout stays pure JSON
    assert out.read_bytes()[:8] == PNG


def test_more_than_two_features_is_one_error_line(cli, tmp_path):
    config = write_config(
        tmp_path,
        f"""
data: {{source: {ROOT / "datasets" / "iris.csv"}}}
model: {{hidden: [{{units: 4}}]}}
training: {{epochs: 2, early_stopping: null}}
""",
    )
    run_dir, _ = train_run(load_config(config), tmp_path / "runs", [], None)
    out = tmp_path / "boundary.png"
    result = cli("eval", run_dir, "--plot", out)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --plot")
    assert "needs data with 2 features" in lines[0] and "trained on 4" in lines[0]
    assert result.stdout == ""  # no metrics table before the error
    assert not out.exists()


def test_regression_model_is_refused(cli, tmp_path):
    config = write_config(
        tmp_path,
        f"""
data: {{source: {ROOT / "datasets" / "diabetes.csv"}}}
model: {{hidden: [{{units: 4}}]}}
loss: mse
training: {{epochs: 1, early_stopping: null}}
""",
    )
    run_dir, _ = train_run(load_config(config), tmp_path / "runs", [], None)
    result = cli("eval", run_dir, "--plot", tmp_path / "b.png")
    assert result.exit_code == 2
    assert "needs a classifier" in result.stderr and "regression" in result.stderr


def test_without_matplotlib_says_how_to_install(cli, blobs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    run_dir, _ = blobs
    result = cli("eval", run_dir, "--plot", tmp_path / "boundary.png")
    assert result.exit_code == 2
    assert 'pip install ".[plot]"' in result.stderr and "mlpcli[" not in result.stderr
    assert not (tmp_path / "boundary.png").exists()
    # without --plot, eval needs no matplotlib at all
    assert cli("eval", run_dir).exit_code == 0
