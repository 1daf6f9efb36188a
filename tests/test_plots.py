"""Pictures: seed groups drawn as a mean and a band; legends outside the plotted area."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mlpcli.compare import compare_runs

matplotlib = pytest.importorskip("matplotlib")


def _fake_run(folder: Path, name: str, lr: float, seed: int, val_loss: list[float]) -> None:
    """A finished run directory with a given validation-loss curve."""
    run = folder / f"{name}-seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        f"name: {name}\nseed: {seed}\ndata: {{source: iris}}\noptimizer: {{lr: {lr}}}\n"
    )
    with (run / "metrics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["epoch", "restart", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]
        )
        for epoch, loss in enumerate(val_loss, start=1):
            writer.writerow([epoch, 1, loss * 0.9, loss, 1 - loss / 2, 1 - loss / 2])
    summary = {"status": "completed", "task": "classification", "epochs_run": len(val_loss)}
    (run / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def seeds(tmp_path) -> Path:
    """Two learning rates over three seeds; one seed stops early."""
    curves = {0: [1.0, 0.8, 0.6], 1: [1.2, 0.9, 0.7], 2: [1.1, 1.0]}
    for lr, name in ((0.1, "fast"), (0.01, "slow")):
        for seed, curve in curves.items():
            _fake_run(tmp_path / "runs", name, lr, seed, [v + (lr == 0.01) for v in curve])
    return tmp_path / "runs"


def test_mean_curve_averages_the_runs_that_reached_each_epoch(seeds):
    from mlpcli.plot import mean_curve

    row = next(r for r in compare_runs([seeds]).rows if r.params["optimizer.lr"] == 0.1)
    curve = mean_curve(row, "val_loss")
    assert curve is not None
    epochs, mean, std = curve
    assert epochs.tolist() == [1, 2, 3]
    np.testing.assert_allclose(mean, [1.1, 0.9, 0.65])
    assert std is not None
    np.testing.assert_allclose(std, [0.1, 0.1, np.std([0.6, 0.7], ddof=1)])


def test_compare_plot_draws_one_mean_and_one_band_per_group(seeds, monkeypatch, tmp_path):
    from mlpcli import plot

    drawn = []
    monkeypatch.setattr(plot, "_save", lambda fig, path: drawn.append(fig))
    plot.plot_curves(compare_runs([seeds]), tmp_path / "curves.png")
    (fig,) = drawn
    for ax in fig.axes:
        assert len(ax.get_lines()) == 2 * 2  # 2 groups x (train, val): not 2 x 3 seeds x 2
        assert len(ax.collections) == 2  # one band per group
        assert ax.get_legend() is None
    _legend_outside(fig)


def test_eval_plot_legend_is_outside_the_regions(cli, tmp_path, monkeypatch):
    from mlpcli import plot
    from tests.test_boundary import CENTRES, train, write_blobs

    run = train(tmp_path, write_blobs(tmp_path / "blobs.csv", CENTRES))
    drawn = []
    monkeypatch.setattr(plot, "_save", lambda fig, path: drawn.append(fig))
    plot.plot_boundary(run, tmp_path / "b.png")
    (fig,) = drawn
    _legend_outside(fig)


def _legend_outside(fig) -> None:
    """No legend box overlaps a panel's plotting area."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            area = ax.get_window_extent(renderer)
            assert not box.overlaps(area), "a legend covers the plot"
