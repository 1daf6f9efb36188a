"""The picture of a search (`mlpcli tune --plot FILE.png`): optimization history and
parameter importances, drawn with matplotlib (the `plot` extra) from the Optuna study."""

import math
from pathlib import Path

from mlpcli.errors import UserError
from mlpcli.plot import _figure_class, _save
from mlpcli.tune import Study, TunePlan, open_study


def check_plot_path(path: Path) -> None:
    """Refuse a plot that cannot be written before the search starts, not after it."""
    _figure_class(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"--plot {path}: give a .png, .svg or .pdf file name")
    if not path.parent.is_dir():
        raise UserError(f"--plot {path}: no such folder {path.parent}")


def importances(plan: TunePlan) -> dict[str, float]:
    """Optuna's PED-ANOVA parameter importances (no scikit-learn needed, unlike fANOVA)."""
    import optuna

    study = open_study(plan)
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (ValueError, RuntimeError):  # fewer than two complete trials, or one value only
        return {}


def plot_study(plan: TunePlan, result: Study, path: Path) -> None:
    """Left: every trial's value and the best so far; right: what mattered."""
    Figure = _figure_class(path)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    history, bars = fig.subplots(1, 2, width_ratios=[3, 2])
    sign = 1.0 if result.direction == "minimize" else -1.0
    done = sorted((t for t in result.trials if t.value is not None), key=lambda t: t.number)
    if done:
        history.scatter(
            [t.number for t in done], [t.value for t in done], s=18, label="complete trial"
        )
        best, steps = math.inf, []
        for t in done:
            best = min(best, sign * (t.value or 0.0))
            steps.append(sign * best)
        history.step([t.number for t in done], steps, where="post", color="C3", label="best so far")
    pruned = [t.number for t in result.trials if t.state == "pruned"]
    if pruned and done:
        low = min(t.value or 0.0 for t in done)
        history.scatter(pruned, [low] * len(pruned), marker="|", color="grey", label="pruned")
    history.set_xlabel("trial")
    history.set_ylabel(result.metric)
    history.set_title(f"optimization history ({len(result.trials)} trials)", fontsize="medium")
    history.legend(fontsize="small")
    values = importances(plan)
    if values:
        names = list(values)[::-1]
        bars.barh(names, [values[n] for n in names], color="C0")
        bars.set_xlabel("importance (sums to 1)")
    else:
        bars.text(0.5, 0.5, "needs two complete trials", ha="center", va="center")
        bars.set_axis_off()
    bars.set_title("parameter importances (PED-ANOVA)", fontsize="medium")
    fig.suptitle(f"study {result.name}", fontsize="medium")
    _save(fig, path)
