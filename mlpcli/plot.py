"""Learning curves of compared runs as an image (`mlpcli compare --plot curves.png`).

matplotlib is an optional extra (`pip install "mlpcli[plot]"`), imported only here and
only when a plot is asked for. It draws on a bare `Figure`, not pyplot, so no GUI backend
or global figure state is involved.
"""

from pathlib import Path
from typing import Any

from mlpcli.compare import Comparison, Row
from mlpcli.errors import UserError

INSTALL_HINT = 'pip install "mlpcli[plot]"  (or: pip install matplotlib)'


def plot_curves(comparison: Comparison, path: Path) -> None:
    """Train (solid) and val (dashed) loss and primary metric per epoch, a colour per row."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        raise UserError(
            f"--plot {path}: plotting needs matplotlib, which is not installed",
            hint=INSTALL_HINT,
        ) from None
    metric = comparison.metric
    panels = ["loss"] if metric == "loss" else ["loss", metric]
    fig = Figure(figsize=(5.5 * len(panels), 4.5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colours = _colours(len(comparison.rows))
    labels = [_label(row, comparison.differing) for row in comparison.rows]
    if len(set(labels)) < len(labels):  # same hyperparameters twice: tell them apart by name
        labels = [f"{row.label}: {text}" for row, text in zip(comparison.rows, labels, strict=True)]
    for row, colour, label in zip(comparison.rows, colours, labels, strict=True):
        for n, run in enumerate(row.runs):
            epochs = run.curves.get("epoch", [])
            for ax, panel in zip(axes, panels, strict=True):
                for split, style in (("train", "-"), ("val", "--")):
                    values = run.curves.get(f"{split}_{panel}")
                    if values and len(values) == len(epochs):
                        first = n == 0 and split == "train"
                        ax.plot(
                            epochs,
                            values,
                            style,
                            color=colour,
                            linewidth=1.2,
                            label=label if first else None,
                        )
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
        if panel == "loss" and _positive(ax):
            ax.set_yscale("log")  # early epochs' loss would flatten the rest
    if axes[0].get_legend_handles_labels()[0]:
        runs = axes[0].legend(fontsize="small", title=", ".join(comparison.differing) or None)
        if len(axes) == 1:
            axes[0].add_artist(runs)  # keep it when the train/val legend joins this panel
    styles = [Line2D([], [], color="grey", linestyle=s) for s in ("-", "--")]
    axes[-1].legend(styles, ["train", "val"], fontsize="small", loc="lower left")
    fig.suptitle(f"learning curves ({len(comparison.rows)} rows)")
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise UserError(f"--plot {path}: cannot write the plot: {exc}") from None


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
