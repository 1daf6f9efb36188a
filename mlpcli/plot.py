"""Pictures: learning curves of compared runs (`mlpcli compare --plot curves.png`) and the
decision regions of a 2-feature classifier (`mlpcli eval RUN --plot boundary.png`).

matplotlib is an optional extra (`pip install ".[plot]"` in a clone), imported only here and
only when a plot is asked for. It draws on a bare `Figure`, not pyplot, so no GUI backend
or global figure state is involved.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpcli.compare import Comparison, Row
from mlpcli.errors import UserError
from mlpcli.evaluate import class_probabilities

if TYPE_CHECKING:
    from mlpcli.evaluate import SavedModel

# The name `mlpcli` on the public package index belongs to an unrelated project, so the
# hint names the source: the extra of a clone, or matplotlib itself.
INSTALL_HINT = 'pip install matplotlib  (or, in a clone of mlpcli: pip install ".[plot]")'


def plot_curves(comparison: Comparison, path: Path) -> None:
    """Write the learning curves of `curves_figure` to an image file."""
    _save(curves_figure(comparison, _figure_class(path)), path)


def curves_figure(comparison: Comparison, Figure: Any) -> Any:
    """Train (solid) and val (dashed) loss and primary metric per epoch, a colour per row.

    A row of several runs (seeds) is drawn as its mean per epoch, with a band of one sample
    standard deviation around the val curve, so that forty seeds stay four readable curves.
    """
    from matplotlib.lines import Line2D

    metric = comparison.metric
    panels = ["loss"] if metric == "loss" else ["loss", metric]
    fig = Figure(figsize=(5.0 * len(panels) + 2.6, 4.5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colours = _colours(len(comparison.rows))
    labels = [_label(row, comparison.differing) for row in comparison.rows]
    if len(set(labels)) < len(labels):  # same hyperparameters twice: tell them apart by name
        labels = [f"{row.label}: {text}" for row, text in zip(comparison.rows, labels, strict=True)]
    for row, colour, label in zip(comparison.rows, colours, labels, strict=True):
        for ax, panel in zip(axes, panels, strict=True):
            for split, style in (("train", "-"), ("val", "--")):
                curve = mean_curve(row, f"{split}_{panel}")
                if curve is None:
                    continue
                epochs, mean, std = curve
                ax.plot(
                    epochs,
                    mean,
                    style,
                    color=colour,
                    linewidth=1.3,
                    label=label if split == "train" else None,
                )
                if std is not None and split == "val":  # one band a row: the curve that ranks
                    low, high = mean - std, mean + std
                    if panel != "loss":  # accuracy and R² have a ceiling of 1
                        high = np.minimum(high, 1.0)
                    ax.fill_between(epochs, low, high, color=colour, alpha=0.2, linewidth=0)
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
        if panel == "loss" and _positive(ax):
            ax.set_yscale("log")  # early epochs' loss would flatten the rest
    handles, names = axes[0].get_legend_handles_labels()
    styles: list[Any] = [Line2D([], [], color="grey", linestyle=s) for s in ("-", "--")]
    style_names = ["train", "val"]
    if any(len(row.runs) > 1 for row in comparison.rows):
        from matplotlib.patches import Patch

        styles.append(Patch(color="grey", alpha=0.3))
        style_names.append("val ± 1 std\nover seeds")
    # Outside the panels, on the right: a legend never covers a curve.
    title = "\n".join(comparison.differing) or None
    fig.legend(
        handles + styles,
        names + style_names,
        loc="outside right upper",
        fontsize="small",
        title=title,
        title_fontsize="small",
    )
    seeds = sum(len(row.runs) for row in comparison.rows)
    runs = f", {seeds} runs" if seeds > len(comparison.rows) else ""
    fig.suptitle(f"learning curves ({len(comparison.rows)} rows{runs})")
    return fig


def mean_curve(row: Row, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Epochs, the mean of `key` over the row's runs, and the sample std (None for one run).

    Each epoch averages the runs that reached it (early stopping ends runs at different
    epochs); non-finite values (a diverged run) are left out.
    """
    by_epoch: dict[int, list[float]] = {}
    for run in row.runs:
        numbers, values = run.curves.get("epoch", []), run.curves.get(key)
        if not values or len(values) != len(numbers):
            continue
        for epoch, value in zip(numbers, values, strict=True):
            if np.isfinite(value):
                by_epoch.setdefault(int(epoch), []).append(value)
    if not by_epoch:
        return None
    epochs = np.array(sorted(by_epoch))
    mean = np.array([np.mean(by_epoch[e]) for e in epochs])
    if len(row.runs) == 1:
        return epochs, mean, None
    std = np.array([np.std(by_epoch[e], ddof=1) if len(by_epoch[e]) > 1 else 0.0 for e in epochs])
    return epochs, mean, std


def _label(row: Row, differing: list[str]) -> str:
    values = [str(row.params.get(k, "-")) for k in differing]
    text = ", ".join(values) if values else row.name
    return f"{text} (n={len(row.runs)})" if len(row.runs) > 1 else text


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    if n > 20:
        return [cmap(i / max(1, n - 1)) for i in range(n)]
    return [cmap(i) for i in range(n)]


def _positive(ax: Any) -> bool:
    ys = [y for line in ax.get_lines() for y in line.get_ydata()]
    return bool(ys) and min(ys) > 0


# ----------------------------------------------------------------------------- boundary

GRID = 300  # points per side of the decision-region grid


@dataclass
class Regions:
    """A classifier's predicted class and confidence over a grid of the 2-feature plane."""

    xs: np.ndarray  # (GRID,) first-feature values, raw units
    ys: np.ndarray  # (GRID,) second-feature values
    classes: np.ndarray  # (GRID, GRID) predicted class index; row i is ys[i]
    confidence: np.ndarray  # (GRID, GRID) probability of the predicted class


def decision_regions(saved: "SavedModel", X: np.ndarray, size: int = GRID) -> Regions:
    """Predict every point of a grid spanning the rows `X` (raw units) with a margin."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.08 * np.where(hi > lo, hi - lo, 1.0)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], size)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], size)
    gx, gy = np.meshgrid(xs, ys)
    probs = class_probabilities(saved.logits(np.column_stack([gx.ravel(), gy.ravel()])))
    return Regions(
        xs,
        ys,
        probs.argmax(axis=1).reshape(size, size),
        probs.max(axis=1).reshape(size, size),
    )


def plot_boundary(
    checkpoint: Path, path: Path, data: Path | None = None, split: str | None = None
) -> None:
    """Decision regions of a 2-feature classifier with the rows it is scored on."""
    from mlpcli.evaluate import file_rows, load_model, run_split

    saved = load_model(checkpoint)
    what = "a decision-boundary plot"
    if saved.class_names is None:
        raise UserError(f"--plot {path}: {what} needs a classifier; {saved.path} does regression")
    n = len(saved.feature_names)
    if n != 2:
        names = ", ".join(saved.feature_names[:4]) + (", ..." if n > 4 else "")
        raise UserError(
            f"--plot {path}: {what} needs data with 2 features; "
            f"{saved.path} was trained on {n} ({names})"
        )
    Figure = _figure_class(path)
    rows = file_rows(saved, data, need_target=True) if data else run_split(saved, split or "test")
    assert rows.y is not None
    regions = decision_regions(saved, rows.X)
    predicted = class_probabilities(saved.logits(rows.X)).argmax(axis=1)
    wrong = predicted != rows.y
    colours = _colours(len(saved.class_names))

    fig = Figure(figsize=(7.6, 5.0), layout="constrained")
    ax = fig.add_subplot()
    # Each pixel takes its predicted class's colour, paler where the model is less sure.
    k = len(saved.class_names)
    certainty = (regions.confidence - 1 / k) / (1 - 1 / k)
    rgba = np.array([colours[c] for c in regions.classes.ravel()]).reshape(GRID, GRID, 4)
    rgba[..., 3] = 0.12 + 0.38 * np.round(certainty * 4) / 4  # 5 shades: a small PNG
    extent = (regions.xs[0], regions.xs[-1], regions.ys[0], regions.ys[-1])
    ax.imshow(rgba, origin="lower", extent=extent, aspect="auto", interpolation="nearest")
    ax.contour(
        regions.xs,
        regions.ys,
        regions.classes,
        levels=np.arange(k - 1) + 0.5,
        colors="black",
        linewidths=0.8,
    )
    for c, name in enumerate(saved.class_names):
        right = (rows.y == c) & ~wrong
        ax.scatter(
            *rows.X[right].T, s=14, color=colours[c], edgecolors="black", linewidths=0.4, label=name
        )
    if wrong.any():
        ax.scatter(
            *rows.X[wrong].T,
            s=30,
            c=[colours[c] for c in rows.y[wrong]],
            marker="X",
            edgecolors="black",
            linewidths=0.6,
            label=f"misclassified ({int(wrong.sum())})",
        )
    ax.set_xlabel(saved.feature_names[0])
    ax.set_ylabel(saved.feature_names[1])
    # Outside the axes, on the right: the legend never covers a point of the plane.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    accuracy = 1.0 - float(wrong.mean()) if len(wrong) else float("nan")
    fig.suptitle(f"{_run_name(saved.path)}: decision regions", fontsize="medium")
    scored = data.name if data else f"{split or 'test'} split"
    ax.set_title(f"{scored}: accuracy {accuracy:.3f} ({len(wrong)} rows)", fontsize="small")
    _save(fig, path)


def _figure_class(path: Path) -> Any:
    """matplotlib's Figure, or a UserError saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(
            f"--plot {path}: plotting needs matplotlib, which is not installed",
            hint=INSTALL_HINT,
        ) from None
    return Figure


def _run_name(checkpoint: Path) -> str:
    """The run directory's name for a run's checkpoint, else the file's name."""
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent.name
    return checkpoint.name


def _save(fig: Any, path: Path) -> None:
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise UserError(f"--plot {path}: cannot write the plot: {exc}") from None
