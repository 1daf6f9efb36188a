"""`mlpcli tune`: the search space, the study, pruning, workers, and what the tune dir holds."""

import json
import math
import threading

import pytest
import yaml

from mlpcli.config import load_config
from mlpcli.train import EpochRecord
from mlpcli.tune import Pruning, plan_tune, report_every, set_items
from tests.helpers import ROOT, write_config

optuna = pytest.importorskip("optuna", reason="mlpcli tune needs the 'tune' extra (optuna)")

BASE = f"""
name: iris-tune
data: {{source: {ROOT / "datasets" / "iris.csv"}}}
model: {{hidden: [{{units: 8, activation: tanh}}]}}
optimizer: {{name: adam, lr: 0.01}}
training: {{epochs: 6, batch_size: 32, early_stopping: null}}
"""

SEARCH = (
    BASE
    + """
tune:
  trials: 4
  space:
    optimizer.lr: {low: 1.0e-3, high: 0.1, log: true}
    training.batch_size: [16, 32]
"""
)


def _config(tmp_path, tune_section: str, name: str = "config.yaml"):
    return write_config(tmp_path, BASE + "tune:\n" + tune_section, name)


def _tune_json(folder):
    return json.loads((folder / "tune.json").read_text())


# ----------------------------------------------------------------------------- the space


GOOD_SPACES = {
    "float log": "optimizer.lr: {low: 1.0e-4, high: 0.3, log: true}",
    "float step": "model.dropout: {low: 0.0, high: 0.5, step: 0.1}",
    "int": "training.batch_size: {low: 8, high: 64, int: true, log: true}",
    "choices": "optimizer.name: [sgd, momentum, adam]",
    "list index": "model.hidden.0.units: {low: 4, high: 32, int: true}",
    "hidden": "model.hidden: {layers: {low: 1, high: 3}, units: {low: 4, high: 16}, "
    "activation: [relu, tanh]}",
    "hidden fixed width": "model.hidden: {layers: [1, 2], units: 8}",
    "seed": "seed: [1, 2, 3]",
}


@pytest.mark.parametrize("space", GOOD_SPACES.values(), ids=GOOD_SPACES.keys())
def test_every_form_of_the_space_plans(tmp_path, space):
    config = _config(tmp_path, f"  space:\n    {space}\n")
    plan = plan_tune(config, runs_dir=tmp_path / "runs")
    assert plan.metric == "val_loss" and plan.direction == "minimize"
    assert not (tmp_path / "runs").exists()  # planning writes nothing


def test_hidden_space_builds_layers(tmp_path):
    base = load_config(_config(tmp_path, "  space: {model.hidden: {layers: [2]}}\n"))
    items = set_items(
        {"model.hidden.layers": 3, "model.hidden.units": 5, "model.hidden.activation": "relu"},
        base,
    )
    cfg = load_config(tmp_path / "config.yaml", items)
    assert [(h.units, h.activation) for h in cfg.model.hidden] == [(5, "relu")] * 3
    # units / activation left out: the config's first layer's
    cfg = load_config(tmp_path / "config.yaml", set_items({"model.hidden.layers": 2}, base))
    assert [(h.units, h.activation) for h in cfg.model.hidden] == [(8, "tanh")] * 2


def test_small_floats_survive_the_override_text(tmp_path):
    base = load_config(_config(tmp_path, "  space: {optimizer.lr: [1.0e-5]}\n"))
    cfg = load_config(tmp_path / "config.yaml", set_items({"optimizer.lr": 1e-5}, base))
    assert cfg.optimizer.lr == 1e-5


BAD_SPACES = {
    "not a mapping": ("  space: [1, 2]\n", "space"),
    "empty": ("  space: {}\n", "space"),
    "scalar": ("  space: {optimizer.lr: 0.1}\n", "expected {low: ..., high: ...}"),
    "no high": ("  space: {optimizer.lr: {low: 0.1}}\n", "high"),
    "low above high": ("  space: {optimizer.lr: {low: 0.5, high: 0.1}}\n", "low 0.5 is above"),
    "log of zero": ("  space: {model.dropout: {low: 0, high: 0.5, log: true}}\n", "low > 0"),
    "int not whole": ("  space: {training.epochs: {low: 1.5, high: 9, int: true}}\n", "whole"),
    "typo in range": ("  space: {optimizer.lr: {low: 0.1, high: 1, lg: true}}\n", "'log'"),
    "empty choices": ("  space: {optimizer.name: []}\n", "non-empty"),
    "nested choice": ("  space: {optimizer.name: [[sgd]]}\n", "plain values"),
    "twice": ("  space: {optimizer.name: [sgd, sgd]}\n", "listed twice"),
    "unknown key": ("  space: {optimizer.lrr: [0.1]}\n", "did you mean 'lr'"),
    "unknown section": ("  space: {optimiser.lr: [0.1]}\n", "did you mean 'optimizer'"),
    "refused value": ("  space: {optimizer.lr: {low: 0, high: 0.1}}\n", "value 0.0"),
    "refused choice": ("  space: {optimizer.name: [adam, adamm]}\n", "did you mean 'adam'"),
    "over the bound": ("  space: {model.dropout: {low: 0, high: 1.5}}\n", "less than 1"),
    "int key as float": ("  space: {training.batch_size: {low: 8, high: 64}}\n", "integer"),
    "hidden as list": ("  space: {model.hidden: [8, 16]}\n", "layers"),
    "hidden typo": ("  space: {model.hidden: {layers: [1], unit: [8]}}\n", "did you mean 'units'"),
    "hidden activation": (
        "  space: {model.hidden: {layers: [1], activation: [relu, relux]}}\n",
        "did you mean 'relu'",
    ),
    "hidden no layers": ("  space: {model.hidden: {units: [8]}}\n", "layers"),
    "name": ("  space: {name: [a, b]}\n", "not a hyperparameter"),
    "sampler": ("  sampler: tpee\n  space: {seed: [1]}\n", "tpe"),
    "pruner": ("  pruner: medain\n  space: {seed: [1]}\n", "median"),
    "metric": ("  metric: val_acc\n  space: {seed: [1]}\n", "did you mean 'val_accuracy'"),
    "test metric": ("  metric: test_loss\n  space: {seed: [1]}\n", "cannot optimise"),
    "grid of floats": (
        "  sampler: grid\n  space: {optimizer.lr: {low: 0.01, high: 0.1}}\n",
        "finite set",
    ),
    "trials": ("  trials: 0\n  space: {seed: [1]}\n", "trials"),
}


@pytest.mark.parametrize(("section", "expected"), BAD_SPACES.values(), ids=BAD_SPACES.keys())
def test_bad_space_is_one_line_exit_2(tmp_path, cli, section, expected):
    config = _config(tmp_path, section)
    result = cli("tune", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_a_config_without_tune_section_is_refused(tmp_path, cli):
    result = cli("tune", write_config(tmp_path, BASE))
    assert result.exit_code == 2
    assert "no 'tune:' section" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--storage", "mysql://x/y"], "use postgresql://"),
        (["--study", "../escape"], "--study"),
        (["--timeout", "0"], "--timeout"),
        (["--plot", "history.txt"], ".png"),
    ],
)
def test_bad_flags(tmp_path, cli, args, expected):
    result = cli("tune", write_config(tmp_path, SEARCH), *args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert not (tmp_path / "runs").exists()


def test_train_ignores_the_tune_section(tmp_path, cli):
    result = cli("train", write_config(tmp_path, SEARCH), "--quiet")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert "tune" not in yaml.safe_load((run / "config.yaml").read_text())


# ----------------------------------------------------------------------------- searching


def test_search_writes_tune_dir_and_best_yaml(tmp_path, cli):
    config = write_config(tmp_path, SEARCH)
    result = cli("tune", config, "--runs-dir", "runs", "--quiet")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "iris-tune"
    assert (folder / "study.db").is_file()
    record = _tune_json(folder)
    assert record["study"] == "iris-tune" and record["metric"] == "val_loss"
    assert [t["number"] for t in record["trials"]] == [0, 1, 2, 3]
    for t in record["trials"]:
        assert t["state"] in ("complete", "pruned")
        assert set(t["params"]) == {"optimizer.lr", "training.batch_size"}
        assert t["seed"] == t["number"]  # seed + k
        summary = json.loads((folder / t["run_dir"] / "summary.json").read_text())
        assert summary["status"] == t["status"]
        run_cfg = yaml.safe_load((folder / t["run_dir"] / "config.yaml").read_text())
        assert run_cfg["optimizer"]["lr"] == t["params"]["optimizer.lr"]
        assert run_cfg["seed"] == t["seed"]
    complete = [t for t in record["trials"] if t["state"] == "complete"]
    best = min(complete, key=lambda t: t["value"])
    assert record["best"]["number"] == best["number"]
    assert "train the best: mlpcli train" in result.stdout
    assert "best.yaml" in result.stdout

    # best.yaml is the best trial's config: training it gives the trial's value again
    best_cfg = load_config(folder / "best.yaml")
    assert best_cfg.optimizer.lr == best["params"]["optimizer.lr"]
    assert best_cfg.training.batch_size == best["params"]["training.batch_size"]
    assert best_cfg.seed == best["seed"] and best_cfg.tune is None
    again = cli("train", folder / "best.yaml", "--runs-dir", "again", "--quiet")
    assert again.exit_code == 0, again.output
    (run,) = (tmp_path / "again").iterdir()
    final = json.loads((run / "summary.json").read_text())["final"]
    assert math.isclose(final["val"]["loss"], best["value"], rel_tol=1e-9)


def test_rerun_continues_and_more_trials_extend(tmp_path, cli):
    config = write_config(tmp_path, SEARCH)
    assert cli("tune", config, "--trials", "2", "--quiet").exit_code == 0
    folder = tmp_path / "runs" / "iris-tune"
    assert len(_tune_json(folder)["trials"]) == 2
    assert cli("tune", config, "--trials", "2", "--quiet").exit_code == 0  # already there
    assert len(_tune_json(folder)["trials"]) == 2
    assert cli("tune", config, "--trials", "3", "--quiet").exit_code == 0
    numbers = [t["number"] for t in _tune_json(folder)["trials"]]
    assert numbers == [0, 1, 2]
    # another space on the same study is refused, not mixed in
    other = write_config(tmp_path, SEARCH.replace("[16, 32]", "[8, 16]"), "other.yaml")
    result = cli("tune", other, "--study", "iris-tune", "--quiet")
    assert result.exit_code == 2 and "different tune.space" in result.stderr


def test_seeded_search_is_reproducible(tmp_path, cli):
    config = write_config(tmp_path, SEARCH)
    for folder in ("a", "b"):
        result = cli("tune", config, "--runs-dir", folder, "--quiet", "--jobs", "1")
        assert result.exit_code == 0, result.output

    def outcome(folder):
        record = _tune_json(tmp_path / folder / "iris-tune")
        return [(t["params"], t["state"], t["value"]) for t in record["trials"]]

    assert outcome("a") == outcome("b")


@pytest.mark.slow
def test_every_sampler_and_pruner_runs(tmp_path, cli):
    for sampler, pruner in (("random", "hyperband"), ("cmaes", "none"), ("grid", "median")):
        space = (
            "{optimizer.lr: [0.01, 0.05], training.batch_size: {low: 16, high: 32, step: 16, "
            "int: true}}"
        )
        section = f"  trials: 6\n  sampler: {sampler}\n  pruner: {pruner}\n  space: {space}\n"
        config = _config(tmp_path, section, f"{sampler}.yaml")
        result = cli("tune", config, "--study", sampler, "--quiet")
        assert result.exit_code == 0, result.output
        trials = _tune_json(tmp_path / "runs" / sampler)["trials"]
        # the grid has 4 points: it stops there, each point once
        assert len(trials) == (4 if sampler == "grid" else 6)
        if sampler == "grid":
            points = {tuple(sorted(t["params"].items())) for t in trials}
            assert len(points) == 4


# ----------------------------------------------------------------------------- pruning


def _record(epoch: int, value: float) -> EpochRecord:
    return EpochRecord(1, epoch, {"val_loss": value}, 0.01, 0.0, {}, False)


class _FakeTrainer:
    """What the callback reads of a trainer: the epochs and restarts of the config."""

    class cfg:
        class training:
            epochs = 10
            restarts = 1


def test_median_pruner_stops_a_scripted_bad_trial():
    """Five good curves, then one far above them: the callback must stop it, and only it."""
    study = optuna.create_study(
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    )

    def feed(curve):
        trial = study.ask()
        stop = threading.Event()
        pruning = Pruning(trial, "val_loss", stop)
        for epoch, value in enumerate(curve, start=1):
            pruning.on_epoch_end(_FakeTrainer, _record(epoch, value))  # type: ignore[arg-type]
            if stop.is_set():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return pruning.pruned_at
        study.tell(trial, curve[-1])
        return None

    for k in range(5):
        assert feed([1.0 / (e + k + 1) for e in range(10)]) is None
    assert feed([1.0 / (e + 3.5) for e in range(10)]) is None  # better than the median
    assert (
        feed([5.0 - 0.01 * e for e in range(10)]) == 3
    )  # epochs 1 and 2 are the warmup (steps < 3)


def test_long_runs_report_to_the_pruner_every_few_epochs_at_the_same_epochs():
    assert [report_every(n) for n in (1, 99, 100, 500, 5000)] == [1, 1, 2, 10, 100]
    study = optuna.create_study()
    trial = study.ask()
    pruning = Pruning(trial, "val_loss", threading.Event(), every=3)
    for epoch in range(1, 11):
        pruning.on_epoch_end(_FakeTrainer, _record(epoch, 1.0 / epoch))  # type: ignore[arg-type]
    study.tell(trial, 0.1)
    assert sorted(study.trials[0].intermediate_values) == [3, 6, 9] and pruning.step == 10


def test_pruned_trials_say_so_in_run_dir_and_compare(tmp_path, cli):
    # lr 1e-5 barely moves the loss; after 5 startup trials the median pruner stops such trials
    section = (
        "  trials: 10\n  sampler: random\n"
        "  space: {optimizer.lr: [1.0e-5, 0.05], seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}\n"
    )
    config = _config(tmp_path, section.replace("epochs: 6", "epochs: 20"))
    text = config.read_text().replace("epochs: 6", "epochs: 20")
    config.write_text(text)
    result = cli("tune", config, "--quiet")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "iris-tune"
    trials = _tune_json(folder)["trials"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert any(t["params"]["optimizer.lr"] == 1e-5 for t in pruned), trials
    for t in pruned:
        summary = json.loads((folder / t["run_dir"] / "summary.json").read_text())
        assert summary["status"] == "pruned" and "median pruner" in summary["reason"]
        assert t["epochs"] < 20
    shown = cli("compare", folder, "--json")
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)["rows"]
    assert len(rows) == len(trials)
    assert "optimizer.lr" in json.loads(shown.stdout)["differing"]
    assert sum(r["status"] == "pruned" for r in rows) == len(pruned)
    best = json.loads(shown.stdout)["best"]
    assert best == _tune_json(folder)["best"]["run_dir"]


# ----------------------------------------------------------------------------- workers


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tmp_path, cli):
    config = write_config(tmp_path, SEARCH.replace("epochs: 6", "epochs: 20"))
    result = cli("tune", config, "--trials", "6", "--jobs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    trials = _tune_json(tmp_path / "runs" / "iris-tune")["trials"]
    numbers = [t["number"] for t in trials]
    assert sorted(numbers) == list(range(6))
    assert all(t["state"] in ("complete", "pruned") for t in trials)
    assert len({t["pid"] for t in trials}) == 2  # both workers ran trials
    assert len({t["run_dir"] for t in trials}) == 6


@pytest.mark.parametrize("config", sorted((ROOT / "configs" / "tune").glob("*.yaml")), ids=str)
def test_shipped_tune_configs_plan(tmp_path, config):
    plan = plan_tune(config, runs_dir=tmp_path / "runs")
    assert plan.trials >= 1 and not (tmp_path / "runs").exists()


def test_python_api_tune_is_the_search(tmp_path):
    import mlpcli

    config = write_config(tmp_path, SEARCH)
    study = mlpcli.tune(config, ["training.epochs=2"], trials=2, runs_dir=tmp_path / "runs")
    assert study.folder == tmp_path / "runs" / "iris-tune"
    assert [t.number for t in study.trials] == [0, 1]
    assert study.best is not None and study.best_yaml.is_file()
    again = mlpcli.tune(config, ["training.epochs=2"], trials=3, runs_dir=tmp_path / "runs")
    assert [t.number for t in again.trials] == [0, 1, 2]  # the same study, continued


def test_the_best_trial_is_the_snapshots_own_when_another_worker_completes_one_meanwhile(
    tmp_path,
):
    # Another worker completes trial 1 between the snapshot of the trials (where it is still
    # running, with no value) and a question to the study about its best: the best shown must
    # be the snapshot's (trial 0), not a running trial with no value (which crashed `tune`).
    from types import SimpleNamespace

    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from mlpcli.tune import collect

    lr = {"optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)}
    done = create_trial(value=0.5, params={"optimizer.lr": 0.01}, distributions=lr)
    running = create_trial(
        state=TrialState.RUNNING, params={"optimizer.lr": 0.001}, distributions=lr
    )
    done.number, running.number = 0, 1
    later = create_trial(value=0.1, params={"optimizer.lr": 0.001}, distributions=lr)
    later.number = 1
    study = SimpleNamespace(get_trials=lambda deepcopy=False: [done, running], best_trial=later)
    plan = SimpleNamespace(
        study="s",
        folder=tmp_path,
        shown_storage="sqlite:///x",
        metric="val_loss",
        direction="minimize",
    )
    found = collect(plan, study)
    assert found.best is not None
    assert (found.best.number, found.best.value) == (0, 0.5)
    assert [t.state for t in found.trials] == ["complete", "running"]
