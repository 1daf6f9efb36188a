"""The runs as one self-contained web page (`mlpcli report`): table, curves, norms, search.

The page is built from what compare.py reads (`Comparison`, its rows and runs), so there
is one reader of run directories. The figures are plain plotly.js figure dicts; plotly (an
optional extra) only supplies plotly.js itself, inlined once, so the page makes no network
request and can be mailed. `watch` rewrites the page (atomic replace) while runs train,
and the page reloads itself.
"""

import html
import json
import math
import re
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.compare import RUN_FILES, Comparison, Row, Run, compare_runs
from mlpcli.config import minimize
from mlpcli.display import _fmt_stat, format_value, status_style
from mlpcli.errors import UserError

INSTALL_HINT = 'pip install plotly  (or, in a clone of mlpcli: pip install ".[report]")'
# Tableau's 20 colours, the ten strong ones first: one per row of the table.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip
CSS_COLOUR = {"green": "#1a7f37", "yellow": "#9a6700", "red": "#cf222e"}
REGION_GRID = 120  # points per side of the decision-region grid (300 for a PNG: too many here)
LAYER_NORM = re.compile(r"layers\.(\d{1,4})\.grad_norm")  # a metrics.csv column
TRIAL = re.compile(r"(?:^|-)trial-(\d{1,9})$")  # the run name `mlpcli tune` gives a trial
DIGITS = 5  # significant digits of plotted numbers: the page stays small


@dataclass
class Figure:
    """One plotly.js plot: its traces, layout and a line saying what it shows."""

    title: str
    data: list[dict[str, Any]]
    layout: dict[str, Any]
    caption: str = ""


@dataclass
class Page:
    """What a report shows, before it becomes HTML."""

    title: str
    comparison: Comparison | None
    sections: list[tuple[str, list[Figure]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_plots(self) -> int:
        return sum(len(figures) for _, figures in self.sections)


# ----------------------------------------------------------------------------- building


def build_page(
    paths: Sequence[Path],
    sort: str | None = None,
    group: bool = True,
    cache: dict[Any, Any] | None = None,
) -> Page:
    """Read the runs under `paths` (as compare does) and lay out every figure.

    `cache` (kept by --watch between pages) saves re-scoring a best model that has not
    changed: that loads the run's data again.
    """
    comparison = compare_runs(paths, sort=sort, group=group)
    page = Page(_title(paths), comparison, notes=list(comparison.notes))
    rows = comparison.rows
    curves = [_curves(comparison, "loss", log=True)]
    if comparison.metric != "loss":
        curves.append(_curves(comparison, comparison.metric))
    if any(r.curves.get("lr") for row in rows for r in row.runs):
        curves.append(_lr(comparison))
    page.sections.append(("Learning curves", curves))
    norms = [f for kind in ("grad", "weight") if (f := _norms(comparison, kind)) is not None]
    if norms:
        page.sections.append(("Per-layer norms", norms))
    search = _search(comparison)
    if search:
        page.sections.append(("Search", search))
    best = _best_run(comparison)
    if best is not None:
        key = (best.path, _stamp(best.path / "checkpoints" / "best.npz"))
        if cache is not None and key in cache:
            figures, notes = cache[key]
        else:
            figures, notes = best_run_figures(best)
            if cache is not None:
                cache.clear()
                cache[key] = (figures, notes)
        page.notes += notes
        if figures:
            page.sections.append((f"Best run: {best.name}", figures))
    return page


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _title(paths: Sequence[Path]) -> str:
    names = [p.resolve().name or str(p) for p in paths]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _rank_key(comparison: Comparison) -> str:
    sort = comparison.sort
    return sort if sort.startswith(("train_", "val_", "test_")) else f"val_{comparison.metric}"


def _hover_params(row: Row, differing: list[str]) -> str:
    values = [f"{k}={format_value(row.params[k])}" for k in differing if k in row.params]
    return "<br>".join(values)


def _label(row: Row) -> str:
    return row.label + (f" (n={len(row.runs)})" if len(row.runs) > 1 else "")


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _mean_band(curves: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Mean and mean ± sample std per epoch over the curves that reach that epoch."""
    length = max((len(c) for c in curves), default=0)
    mean, lo, hi = [], [], []
    for i in range(length):
        at = [c[i] for c in curves if i < len(c) and math.isfinite(c[i])]
        m = statistics.fmean(at) if at else math.nan
        s = statistics.stdev(at) if len(at) > 1 else 0.0
        mean.append(m)
        lo.append(m - s)
        hi.append(m + s)
    return mean, lo, hi


def _curves(comparison: Comparison, panel: str, log: bool = False) -> Figure:
    """Train (solid) and val (dashed) `panel` per epoch; a seed group as its mean and a band."""
    data: list[dict[str, Any]] = []
    positive = True
    for i, row in enumerate(comparison.rows):
        colour, name = _colour(i), _label(row)
        params = _hover_params(row, comparison.differing)
        legend = True  # one legend entry per row: it hides or shows all the row's lines
        for split, dash in (("train", "solid"), ("val", "dash")):
            key = f"{split}_{panel}"
            series = [r.curves.get(key, []) for r in row.runs if r.curves.get(key)]
            if not series:
                continue
            mean, lo, hi = _mean_band(series)
            positive = positive and all(v > 0 for v in mean if math.isfinite(v))
            if log:  # a band reaching below 0 would break a log axis: clip it to the curve
                lo = [min(a, m) if a > 0 else m for a, m in zip(lo, mean, strict=True)]
            epochs = list(range(1, len(mean) + 1))
            if len(series) > 1:
                band = {"x": epochs + epochs[::-1], "y": hi + lo[::-1]}
                data.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        **band,
                        "fill": "toself",
                        "fillcolor": _rgba(colour, 0.15),
                        "line": {"width": 0},
                        "hoverinfo": "skip",
                        "showlegend": False,
                        "legendgroup": row.name,
                    }
                )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": epochs,
                    "y": mean,
                    "name": name,
                    "legendgroup": row.name,
                    "showlegend": legend,
                    "line": {"color": colour, "dash": dash, "width": 1.6},
                    "hovertemplate": f"<b>{name}</b> {split}<br>{params}"
                    f"<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                }
            )
            legend = False
    what = "mean and ± std band over seeds, " if comparison.grouped else ""
    return Figure(
        f"{panel} per epoch",
        data,
        _layout(
            "epoch",
            panel,
            yaxis_type="log" if log and positive and data else "linear",
        ),
        f"solid: train, dashed: val; {what}click a legend entry to hide a run",
    )


def _lr(comparison: Comparison) -> Figure:
    data: list[dict[str, Any]] = []
    for i, row in enumerate(comparison.rows):
        run = row.runs[0]
        lr = run.curves.get("lr", [])
        if lr:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": list(range(1, len(lr) + 1)),
                    "y": lr,
                    "name": _label(row),
                    "legendgroup": row.name,
                    "line": {"color": _colour(i), "width": 1.6},
                    "hovertemplate": f"<b>{_label(row)}</b><br>"
                    "epoch %{x}: lr %{y:.4g}<extra></extra>",
                }
            )
    values = [v for row in comparison.rows for v in row.runs[0].curves.get("lr", [])]
    positive = bool(values) and min(values) > 0 and max(values) / min(values) >= 10
    layout = _layout("epoch", "lr", yaxis_type="log" if positive else "linear")
    if not positive:
        layout["yaxis"]["rangemode"] = "tozero"
    return Figure(
        "learning rate per epoch",
        data,
        layout,
        "as the schedule set it (of the first run of each row)",
    )


def _layers(run: Run) -> list[str]:
    """`layers.0`, ... whose norms metrics.csv records, in layer order."""
    found = [m for k in run.curves if (m := LAYER_NORM.fullmatch(k))]
    return [f"layers.{i}" for i in sorted({int(m.group(1)) for m in found})]


def _layer_label(run: Run, layer: str) -> str:
    i = layer.split(".")[1]
    units = run.config.get(f"model.hidden.{i}.units")
    act = run.config.get(f"model.hidden.{i}.activation")
    return f"{i}: {act} {units}" if units is not None else f"{i}: output"


def _norms(comparison: Comparison, kind: str) -> Figure | None:
    """Per-layer gradient (or weight) norms over epochs, a heatmap per run, one shown at a time.

    The colour is log10 of the norm: a vanishing gradient spans orders of magnitude.
    """
    runs = [r for row in comparison.rows for r in row.runs if _layers(r)]
    if not runs:
        return None
    best = _best_run(comparison)
    shown = runs.index(best) if best in runs else 0
    logs = [
        math.log10(v)
        for run in runs
        for layer in _layers(run)
        for v in run.curves.get(f"{layer}.{kind}_norm", [])
        if v > 0 and math.isfinite(v)
    ]
    lo, hi = (min(logs), max(logs)) if logs else (0.0, 1.0)  # one scale: runs compare by colour
    data = []
    for n, run in enumerate(runs):
        layers = _layers(run)
        z, text = [], []
        for layer in layers:
            values = run.curves.get(f"{layer}.{kind}_norm", [])
            z.append([math.log10(v) if v > 0 and math.isfinite(v) else None for v in values])
            text.append([f"{v:.3g}" for v in values])
        data.append(
            {
                "type": "heatmap",
                "z": z,
                "zmin": lo,
                "zmax": hi,
                "x": list(range(1, len(z[0]) + 1)) if z else [],
                "y": [_layer_label(run, layer) for layer in layers],
                "text": text,
                "colorscale": "Viridis",
                "colorbar": {"title": {"text": "log10"}},
                "visible": n == shown,
                "name": run.name,
                "hovertemplate": "epoch %{x}, layer %{y}<br>norm %{text}<extra></extra>",
            }
        )
    buttons = [
        {
            "method": "update",
            "label": run.name,
            "args": [{"visible": [m == n for m in range(len(runs))]}],
        }
        for n, run in enumerate(runs)
    ]
    layout = _layout("epoch", "layer")
    layout["yaxis"]["type"] = "category"
    if len(runs) > 1:
        layout["updatemenus"] = [
            {"buttons": buttons, "active": shown, "x": 0, "xanchor": "left", "y": 1.18}
        ]
        layout["margin"]["t"] = 60
    what = "gradient" if kind == "grad" else "weight"
    caption = (
        f"Frobenius norm of each layer's {what} matrix at every epoch end (log10 colour)"
        + (
            "; the gradient is the full gradient on the first 512 training rows, dropout off"
            if kind == "grad"
            else ""
        )
        + ("; choose the run above the plot (one colour scale for all)" if len(runs) > 1 else "")
    )
    return Figure(f"per-layer {what} norms", data, layout, caption)


# ----------------------------------------------------------------------------- search


def _search(comparison: Comparison) -> list[Figure]:
    """Parallel coordinates and search history, for a grid or tune (several configs)."""
    runs = [r for row in comparison.rows for r in row.runs]
    key = _rank_key(comparison)
    scored = [r for r in runs if _finite(r.value(key))]
    if not comparison.differing or len(comparison.rows) < 2 or len(scored) < 3:
        return []
    return [_parallel(comparison, scored, key), _history(scored, key)]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _parallel(comparison: Comparison, runs: list[Run], key: str) -> Figure:
    dimensions = []
    for k in comparison.differing:
        if k == "seed":  # differs by construction (a tune's trials), not a searched value
            continue
        values = [r.config.get(k) for r in runs]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            numbers = [float(v) for v in values]  # type: ignore[arg-type]
            dimensions.append(_numeric_dimension(k, numbers))
        else:
            texts = [format_value(v) for v in values]
            levels = sorted(set(texts), key=_level_order)
            dimensions.append(
                {
                    "label": k,
                    "values": [levels.index(t) for t in texts],
                    "tickvals": list(range(len(levels))),
                    "ticktext": levels,
                }
            )
    scores = [r.value(key) for r in runs]
    dimensions.append({"label": key, "values": scores})
    higher = not minimize(key)
    data = [
        {
            "type": "parcoords",
            "line": {
                "color": scores,
                "colorscale": "Viridis",
                "reversescale": not higher,
                "showscale": True,
            },
            "dimensions": dimensions,
            "labelangle": -12 if len(dimensions) > 3 else 0,
            "labelside": "top",
        }
    ]
    layout = _layout("", "")
    layout["margin"] = {"l": 60, "r": 60, "t": 50 if len(dimensions) <= 3 else 90, "b": 30}
    return Figure(
        "searched values against the metric",
        data,
        layout,
        f"one line per run, coloured by {key} (yellow: best); drag along an axis to filter",
    )


def _level_order(text: str) -> tuple[bool, float, str]:
    """Numbers in numeric order (8 before 16), then words; `null` (key absent) last."""
    try:
        return (text == "null", float(text), "")
    except ValueError:
        return (True, 0.0, text) if text != "null" else (True, math.inf, text)


def _numeric_dimension(key: str, values: list[float]) -> dict[str, Any]:
    """A parallel-coordinates axis; one spanning a factor of 10 or more is log10 (lr, decay),
    labelled in the values themselves."""
    distinct = sorted(set(values))
    log = min(values) > 0 and max(values) / min(values) >= 10
    where = [math.log10(v) for v in values] if log else values
    dim: dict[str, Any] = {"label": key + (" (log)" if log else ""), "values": where}
    if len(distinct) <= 6:  # a grid's few values: label each
        dim["tickvals"] = [math.log10(v) for v in distinct] if log else distinct
        dim["ticktext"] = [format_value(v) for v in distinct]
    elif log:
        decades = range(math.floor(min(where)), math.ceil(max(where)) + 1)
        dim["tickvals"] = list(decades)
        dim["ticktext"] = [format_value(10.0**d) for d in decades]
    return dim


def _history(runs: list[Run], key: str) -> Figure:
    """Each run's metric in search order (a tune's trial numbers, else the order the runs
    started), and the best so far; pruned trials grey, failed ones red."""
    trials = [TRIAL.search(str(r.config.get("name", r.name))) for r in runs]
    if all(trials):
        order = [int(m.group(1)) for m in trials if m]
        what = "trial"
    else:
        started = sorted(runs, key=lambda r: (str(r.summary.get("started", "")), r.name))
        order = [started.index(r) + 1 for r in runs]
        what = "run (in the order started)"
    ordered = sorted(zip(order, runs, strict=True), key=lambda pair: pair[0])
    scores = [r.value(key) or math.nan for _, r in ordered]
    higher = not minimize(key)
    best, so_far = math.nan, []
    for s in scores:
        best = s if math.isnan(best) or (s > best if higher else s < best) else best
        so_far.append(best)
    xs = [n for n, _ in ordered]
    colours = [
        "#1f77b4" if r.status.succeeded else "#d62728" if r.status.failure else "#9a9a9a"
        for _, r in ordered
    ]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": xs,
            "y": scores,
            "text": [f"{r.name} ({r.status})" for _, r in ordered],
            "name": "run",
            "marker": {"size": 8, "color": colours},
            "hovertemplate": "%{text}<br>" + key + " %{y:.4g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": xs,
            "y": so_far,
            "name": "best so far",
            "line": {"shape": "hv", "color": "#d62728"},
        },
    ]
    layout = _layout(what, key)
    if len(xs) <= 20:
        layout["xaxis"]["dtick"] = 1
    caption = "blue: finished, grey: pruned or interrupted, red: failed"
    return Figure("search history", data, layout, caption)


# ----------------------------------------------------------------------------- best run


def _best_run(comparison: Comparison) -> Run | None:
    """The best finished run of the best row (the best seed of a seed group)."""
    row = comparison.best
    if row is None:
        return None
    key = _rank_key(comparison)
    higher = not minimize(key)
    candidates = [r for r in row.runs if _finite(r.value(key))] or row.runs
    return max(candidates, key=lambda r: (r.value(key) or 0.0) * (1 if higher else -1))


def best_run_figures(run: Run) -> tuple[list[Figure], list[str]]:
    """Confusion matrix or predicted-vs-true, and decision regions for 2-feature data.

    Scored as `mlpcli eval` scores it (the run's test split, else val); a model that
    cannot be loaded or scored becomes a note on the page instead of figures.
    """
    from mlpcli.evaluate import class_probabilities, load_model, run_split

    try:
        saved = load_model(run.path)
        parts = [s for s in ("test", "val") if s in _split_names(run)] or ["test"]
        rows = run_split(saved, parts[0])
    except UserError as exc:
        return [], [f"{run.name}: the best run's model could not be scored: {exc}"]
    assert rows.y is not None
    logits = saved.logits(rows.X)
    where = rows.origin
    if saved.class_names is None:
        return [_predicted_vs_true(logits[:, 0], rows.y[:, 0], where, saved.target_name)], []
    predicted = class_probabilities(logits).argmax(axis=1)
    figures = [_confusion(rows.y, predicted, saved.class_names, where)]
    if len(saved.feature_names) == 2:
        figures.append(_regions(saved, rows.X, rows.y, predicted, where))
    return figures, []


def _split_names(run: Run) -> list[str]:
    rows = run.summary.get("rows")
    return list(rows) if isinstance(rows, dict) else []


def _confusion(y: np.ndarray, predicted: np.ndarray, classes: list[str], where: str) -> Figure:
    from mlpcli.evaluate import confusion_matrix

    counts = confusion_matrix(y, predicted, len(classes))
    accuracy = float(np.trace(counts)) / max(1, int(counts.sum()))
    data = [
        {
            "type": "heatmap",
            "z": counts.tolist(),
            "x": classes,
            "y": classes,
            "colorscale": [[0, "#f7fbff"], [1, "#2171b5"]],
            "texttemplate": "%{z}",
            "hovertemplate": "true %{y}, predicted %{x}: %{z}<extra></extra>",
        }
    ]
    layout = _layout("predicted", "true")
    layout["yaxis"].update({"autorange": "reversed", "type": "category"})
    layout["xaxis"]["type"] = "category"
    return Figure(
        "confusion matrix", data, layout, f"{where}: accuracy {accuracy:.4f} ({len(y)} rows)"
    )


def _predicted_vs_true(pred: np.ndarray, y: np.ndarray, where: str, target: str | None) -> Figure:
    lo, hi = float(min(pred.min(), y.min())), float(max(pred.max(), y.max()))
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": y.tolist(),
            "y": pred.tolist(),
            "name": "rows",
            "marker": {"size": 6, "opacity": 0.7},
            "hovertemplate": "true %{x:.4g}, predicted %{y:.4g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": [lo, hi],
            "y": [lo, hi],
            "name": "predicted = true",
            "line": {"dash": "dot", "color": "#7f7f7f"},
        },
    ]
    name = target or "target"
    return Figure(
        "predicted vs true",
        data,
        _layout(f"true {name}", f"predicted {name}"),
        f"{where} ({len(y)} rows)",
    )


def _regions(saved: Any, X: np.ndarray, y: np.ndarray, predicted: np.ndarray, where: str) -> Figure:
    """Decision regions as `eval --plot` draws them, with the scored rows on top."""
    from mlpcli.plot import decision_regions

    regions = decision_regions(saved, X, size=REGION_GRID)
    k = len(saved.class_names)
    colours = [_colour(c) for c in range(k)]
    scale = [[pos, colours[c]] for c in range(k) for pos in (c / k, (c + 1) / k)]
    data: list[dict[str, Any]] = [
        {
            "type": "heatmap",
            "x": regions.xs.tolist(),
            "y": regions.ys.tolist(),
            "z": regions.classes.tolist(),
            "zmin": -0.5,
            "zmax": k - 0.5,
            "colorscale": scale,
            "opacity": 0.35,
            "showscale": False,
            "hoverinfo": "skip",
        }
    ]
    wrong = predicted != y
    for c, name in enumerate(saved.class_names):
        for miss in (False, True):
            mask = (y == c) & (wrong == miss)
            if not mask.any():
                continue
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": X[mask, 0].tolist(),
                    "y": X[mask, 1].tolist(),
                    "name": f"{name} (misclassified)" if miss else name,
                    "marker": {
                        "color": colours[c],
                        "size": 10 if miss else 6,
                        "symbol": "x" if miss else "circle",
                        "line": {"width": 0.5, "color": "black"},
                    },
                    "hovertemplate": f"true {name}<br>(%{{x:.3g}}, %{{y:.3g}})<extra></extra>",
                }
            )
    accuracy = 1.0 - float(wrong.mean()) if len(wrong) else math.nan
    return Figure(
        "decision regions",
        data,
        _layout(saved.feature_names[0], saved.feature_names[1]),
        f"{where}: accuracy {accuracy:.4f}, {int(wrong.sum())} misclassified (x)",
    )


def _layout(xtitle: str, ytitle: str, yaxis_type: str = "linear") -> dict[str, Any]:
    return {
        "xaxis": {"title": {"text": xtitle}, "automargin": True},
        "yaxis": {
            "title": {"text": ytitle},
            "type": yaxis_type,
            "automargin": True,
            "tickformat": "~g",
        },
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "height": 380,
        "hovermode": "closest",
        "legend": {"font": {"size": 11}},
        "template": None,
        "plot_bgcolor": "#fbfbfb",
    }


# ----------------------------------------------------------------------------- HTML


def plotly_js() -> str:
    """plotly.js as shipped in the plotly package (the `report` extra)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise UserError(
            "mlpcli report needs plotly, which is not installed", hint=INSTALL_HINT
        ) from None
    return str(get_plotlyjs())


def render(page: Page, script: str, reload_seconds: float | None = None) -> str:
    """The page as one HTML document; `script` is plotly.js, inlined once."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>mlpcli report: {html.escape(page.title)}</title>",
        f"<style>{CSS}</style>",
        f"<script>{script}</script>",
        "</head><body>",
        f"<h1>mlpcli report <small>{html.escape(page.title)}</small></h1>",
        _meta_line(page, reload_seconds),
    ]
    c = page.comparison
    if c is not None:
        parts += [_common_html(c), _table_html(c)]
    parts += [f'<p class="note">note: {html.escape(n)}</p>' for n in page.notes]
    figures: list[tuple[str, Figure]] = []
    for heading, section in page.sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><div class=grid>")
        for figure in section:
            div = f"plot-{len(figures)}"
            figures.append((div, figure))
            parts.append(
                f"<figure><figcaption><b>{html.escape(figure.title)}</b> "
                f"{html.escape(figure.caption)}</figcaption><div id={div} class=plot></div>"
                "</figure>"
            )
        parts.append("</div>")
    if c is not None:
        parts.append(_runs_html(c))
    payload = [{"id": div, "data": f.data, "layout": f.layout} for div, f in figures]
    parts.append(f"<script>const FIGURES = {_json(payload)};\n{JS}</script>")
    if reload_seconds is not None:
        parts.append(f"<script>reloadEvery({int(reload_seconds * 1000)});</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _meta_line(page: Page, reload_seconds: float | None) -> str:
    c = page.comparison
    runs = sum(len(row.runs) for row in c.rows) if c else 0
    when = datetime.now().isoformat(sep=" ", timespec="seconds")
    live = (
        f" · <span class=live>live: rewritten every {reload_seconds:g} s while runs train</span>"
        if reload_seconds is not None
        else ""
    )
    epochs = sum(len(r.curves.get("epoch", [])) for row in c.rows for r in row.runs) if c else 0
    return (
        f'<p class=meta data-runs="{runs}" data-epochs="{epochs}">'
        f"{runs} run{'s' if runs != 1 else ''} · written {when}{live}</p>"
    )


def _common_html(c: Comparison) -> str:
    if not c.common:
        return ""
    items = " ".join(
        f"<code>{html.escape(k)}={html.escape(format_value(v))}</code>" for k, v in c.common.items()
    )
    return f"<details class=common><summary>same in every run</summary><p>{items}</p></details>"


def _table_html(c: Comparison) -> str:
    """The compare table: click a header to sort (numbers as numbers, missing last)."""
    heads = ["", "run", "status", *c.differing]
    if c.grouped:
        heads.append("n")
    heads += ["best epoch", "epochs", *c.columns, "time"]
    lines = ["<table id=runs class=sortable><thead><tr>"]
    lines += [f'<th title="sort by {html.escape(h)}">{html.escape(h)}</th>' for h in heads]
    lines.append("</tr></thead><tbody>")
    for row in c.rows:
        best = row is c.best
        colour = CSS_COLOUR[status_style(row.status)]
        cells = [
            _td("★" if best else "", 0 if best else 1, "star"),
            _td(row.label, row.label, "name", title=", ".join(str(r.path) for r in row.runs)),
            f'<td data-v="{html.escape(row.status)}" style="color:{colour}">'
            f"{html.escape(row.status)}</td>",
        ]
        for k in c.differing:
            value = row.params.get(k)
            sort_value = value if isinstance(value, int | float) else format_value(value)
            cells.append(_td(format_value(value) if k in row.params else "-", sort_value))
        if c.grouped:
            cells.append(_td(str(len(row.runs)), len(row.runs)))
        for key in ("best_epoch", "epochs", *c.columns, "time"):
            mean, std = row.stat(key)
            cells.append(_td(_fmt_stat(key, mean, std), mean, "num"))
        lines.append(f'<tr class="{"best" if best else ""}">{"".join(cells)}</tr>')
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _td(text: str, sort_value: Any, cls: str = "", title: str = "") -> str:
    if isinstance(sort_value, float) and not math.isfinite(sort_value):
        sort_value = None
    value = "" if sort_value is None else html.escape(str(sort_value))
    numeric = isinstance(sort_value, int | float) and not isinstance(sort_value, bool)
    attrs = f' data-v="{value}"' + (" data-n" if numeric else "")
    attrs += f' class="{cls}"' if cls else ""
    attrs += f' title="{html.escape(title)}"' if title else ""
    return f"<td{attrs}>{html.escape(text)}</td>"


def _runs_html(c: Comparison) -> str:
    """Every run's summary and resolved config, folded."""
    parts = ["<h2>Runs</h2>"]
    for row in c.rows:
        for run in row.runs:
            colour = CSS_COLOUR[status_style(run.status)]
            reason = f" · {run.reason}" if run.reason else ""
            config = "\n".join(f"{k}: {format_value(v)}" for k, v in run.config.items())
            summary = json.dumps(run.summary, indent=2, default=str)
            problems = "".join(f"<p class=note>{html.escape(p)}</p>" for p in run.problems)
            parts.append(
                f"<details class=run><summary><b>{html.escape(run.name)}</b> "
                f'<span style="color:{colour}">{html.escape(run.status)}</span>'
                f"{html.escape(reason)}</summary>"
                f"<p><code>{html.escape(str(run.path))}</code></p>{problems}"
                "<div class=cols><div><h3>summary.json</h3>"
                f"<pre>{html.escape(summary if run.summary else '(unreadable)')}</pre></div>"
                "<div><h3>config.yaml (resolved, as --set keys)</h3>"
                f"<pre>{html.escape(config or '(unreadable)')}</pre></div></div></details>"
            )
    return "\n".join(parts)


def _json(node: Any) -> str:
    """JSON for inside a <script>: NaN as null, numbers rounded, no `</script>` break-out."""
    text = json.dumps(_plain(node), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# plotly.js reads figure text as HTML-like markup: every string is escaped, then the few tags
# the figures themselves use are put back (a run named `<a href=...>` stays text).
PLOTLY_TAGS = ("<b>", "</b>", "<br>", "<extra>", "</extra>")


def _plain(node: Any) -> Any:
    if isinstance(node, str):
        text = html.escape(node, quote=False)
        for tag in PLOTLY_TAGS:
            text = text.replace(html.escape(tag), tag)
        return text
    if isinstance(node, float):
        return float(f"{node:.{DIGITS}g}") if math.isfinite(node) else None
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    if isinstance(node, np.generic):
        return _plain(node.item())
    return node


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:0 16px 40px;
max-width:1400px;color:#1f2328}
h1{font-size:22px;margin:18px 0 2px}h1 small{font-weight:normal;color:#59636e;font-size:15px}
h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d1d9e0;padding-bottom:3px}
h3{font-size:13px;margin:6px 0}
.meta,.note{color:#59636e;margin:4px 0}.live{color:#9a6700}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;display:block;overflow-x:auto}
th,td{padding:3px 9px;border-bottom:1px solid #e5e8eb;text-align:right;white-space:nowrap}
th{cursor:pointer;user-select:none;background:#f6f8fa;position:sticky;top:0}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.name,th:nth-child(2),td:nth-child(3){text-align:left}
tr.best{font-weight:600;background:#eef8f0}td.star{color:#1a7f37}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:14px}
figure{margin:0;min-width:0}figcaption{font-size:13px;color:#59636e;margin-bottom:2px}
figcaption b{color:#1f2328}.plot{width:100%;min-height:380px}
details{margin:4px 0}summary{cursor:pointer}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:360px;font-size:12px;margin:0}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:10px}
code{font-size:12px;margin-right:8px}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
"""

JS = """
for (const f of FIGURES) {
  Plotly.newPlot(f.id, f.data, f.layout, {responsive: true, displaylogo: false});
}
const table = document.getElementById('runs');
if (table) {
  table.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
    const asc = !th.classList.contains('asc');
    table.querySelectorAll('th').forEach(h => h.classList.remove('asc', 'desc'));
    th.classList.add(asc ? 'asc' : 'desc');
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const key = r => r.cells[col];
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      const xv = x.dataset.v, yv = y.dataset.v;
      if (xv === '' || yv === '') return (xv === '') - (yv === '');
      const c = ('n' in x.dataset && 'n' in y.dataset) ? xv - yv : xv.localeCompare(yv);
      return asc ? c : -c;
    });
    rows.forEach(r => body.appendChild(r));
  }));
}
function reloadEvery(ms) {
  const open = JSON.parse(sessionStorage.getItem('mlpcli-open') || '[]');
  document.querySelectorAll('details').forEach((d, i) => { if (open.includes(i)) d.open = true; });
  window.scrollTo(0, Number(sessionStorage.getItem('mlpcli-scroll') || 0));
  setTimeout(() => {
    const now = [];
    document.querySelectorAll('details').forEach((d, i) => { if (d.open) now.push(i); });
    sessionStorage.setItem('mlpcli-open', JSON.stringify(now));
    sessionStorage.setItem('mlpcli-scroll', String(window.scrollY));
    location.reload();
  }, ms);
}
"""


# ----------------------------------------------------------------------------- writing


@dataclass
class Written:
    """What `write_report` wrote: for the CLI's one line and the benchmark."""

    path: Path
    runs: int
    plots: int
    bytes_total: int
    bytes_script: int


def check_out(out: Path, runs: Sequence[Path]) -> None:
    """Refuse an --out that is a folder, a run directory's file, or a file other than a page."""
    from mlpcli.evaluate import check_output_path

    check_output_path(out, "--out")
    if out.exists() and out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: exists and is not an .html file; not overwriting it")
    target = out.resolve()
    for run in runs:
        if run / "checkpoints" in target.parents:
            raise UserError(f"--out {out}: would write into the checkpoints of the run {run}")
    if not target.parent.is_dir():
        raise UserError(f"--out {out}: the folder {target.parent} does not exist")


def write_report(
    paths: Sequence[Path],
    out: Path,
    sort: str | None = None,
    group: bool = True,
    reload_seconds: float | None = None,
    script: str | None = None,
    cache: dict[Any, Any] | None = None,
) -> Written:
    """Build the page of the runs under `paths` and write it to `out` atomically."""
    from mlpcli.compare import find_runs

    script = script if script is not None else plotly_js()
    check_out(out, find_runs(paths))
    page = build_page(paths, sort, group, cache)
    text = render(page, script, reload_seconds)
    _write_atomic(out, text)
    c = page.comparison
    runs = sum(len(row.runs) for row in c.rows) if c else 0
    return Written(out, runs, page.n_plots, len(text.encode()), len(script.encode()))


def _write_atomic(path: Path, text: str) -> None:
    """Temp file in the same folder, then rename: a reloading browser never sees half a page."""
    from mlpcli.writes import write_text_atomic

    try:
        write_text_atomic(path, text, durable=False)
    except OSError as exc:
        raise UserError(f"--out {path}: cannot write the report: {exc.strerror or exc}") from None


def watch(
    paths: Sequence[Path],
    out: Path,
    every: float,
    stop: threading.Event,
    on_write: Any = None,
    sort: str | None = None,
    group: bool = True,
) -> Written:
    """Rewrite the report whenever a run's files change, until `stop` is set; then once more
    without the self-reload, so the page left behind is a plain report.

    A folder with no runs yet (a grid just started) gets a page that waits for them.
    """
    script = plotly_js()
    cache: dict[Any, Any] = {}
    seen: tuple | None = None
    while not stop.is_set():
        now = _signature(paths)
        if now != seen:
            written = _write_live(paths, out, sort, group, every, script, bool(now), cache)
            seen = now
            if on_write is not None:
                on_write(written)
        stop.wait(every)
    return _write_live(paths, out, sort, group, None, script, bool(_signature(paths)), cache)


def _write_live(
    paths: Sequence[Path],
    out: Path,
    sort: str | None,
    group: bool,
    every: float | None,
    script: str,
    any_runs: bool,
    cache: dict[Any, Any],
) -> Written:
    if any_runs:
        return write_report(paths, out, sort, group, every, script, cache)
    check_out(out, [])
    page = Page(_title(paths), None, notes=["no run has started yet; this page reloads itself"])
    text = render(page, script, every)
    _write_atomic(out, text)
    return Written(out, 0, 0, len(text.encode()), len(script.encode()))


def _signature(paths: Sequence[Path]) -> tuple:
    """Sizes and times of every run file under `paths` (empty: no runs yet)."""
    from mlpcli.compare import find_runs

    try:
        runs = find_runs(paths)
    except UserError:
        if all(p.is_dir() for p in paths):
            return ()  # folders without runs yet
        raise
    out = []
    for run in runs:
        for name in (*RUN_FILES, "checkpoints/best.npz"):
            try:
                st = (run / name).stat()
            except OSError:
                continue
            out.append((str(run), name, st.st_size, st.st_mtime_ns))
    return tuple(out)
