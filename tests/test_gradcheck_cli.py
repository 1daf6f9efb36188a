"""`mlpcli gradcheck` checks the configured network and fails loudly when backprop is wrong."""

import re

import numpy as np

from mlpcli.engine import activations
from tests.helpers import ROOT, write_config


def test_gradcheck_passes_for_the_iris_config(cli):
    result = cli("gradcheck", ROOT / "configs" / "iris.yaml")
    assert result.exit_code == 0, result.output
    for name in ("layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"):
        assert name in result.stdout
    assert "backprop agrees with finite differences" in result.stdout


def test_gradcheck_covers_every_layer_of_a_deep_regression_net(cli, tmp_path):
    config = write_config(
        tmp_path,
        "data: {source: diabetes}\nloss: huber\nmodel:\n  hidden:\n"
        "    - {units: 5, activation: elu}\n    - {units: 4, activation: gelu}\n"
        "    - {units: 3, activation: softplus}\n  dropout: 0.5\n",
    )
    result = cli("gradcheck", config, "--rows", "4")
    assert result.exit_code == 0, result.output
    assert "layers.3.weight" in result.stdout


def test_gradcheck_fails_with_exit_1_on_a_wrong_derivative(cli, tmp_path, monkeypatch):
    wrong = dict(activations.DERIVATIVES)
    wrong["sigmoid"] = lambda z, a, g: g * a  # a plausible-looking mistake: forgot (1 - a)
    monkeypatch.setattr("mlpcli.engine.model.DERIVATIVES", wrong)
    config = write_config(
        tmp_path, "data: {source: iris}\nmodel: {hidden: [{units: 6, activation: sigmoid}]}\n"
    )
    result = cli("gradcheck", config)
    assert result.exit_code == 1
    assert "FAIL" in result.stdout
    assert "error: backprop disagrees" in result.stderr


def test_gradcheck_reports_vanishing_gradients_in_a_deep_sigmoid_net(tmp_path):
    from mlpcli.checks import gradcheck
    from mlpcli.config import load_config
    from mlpcli.data import load_dataset

    hidden = "\n".join("    - {units: 8, activation: sigmoid}" for _ in range(5))
    cfg = load_config(
        write_config(tmp_path, f"data: {{source: iris}}\nmodel:\n  hidden:\n{hidden}\n")
    )
    checks = gradcheck(cfg, load_dataset(cfg.data, cfg.seed))
    weights = [c.grad_norm for c in checks if c.name.endswith("weight")]
    assert all(c.ok for c in checks)
    assert weights[0] < weights[-1] / 20  # the signal shrinks going back
    assert np.all(np.diff(weights) > 0)


def test_gradcheck_passes_on_a_deep_sigmoid_net_whose_first_gradients_vanish(cli):
    result = cli("gradcheck", ROOT / "configs" / "tour" / "deep-sigmoid.yaml")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout


def test_gradcheck_says_what_it_checks_and_how_long_it_takes(cli):
    result = cli("gradcheck", ROOT / "configs" / "iris.yaml")
    assert result.exit_code == 0
    assert re.search(
        r"gradcheck: all 131 parameters on 8 rows, 262 forward passes, about", result.stderr
    )


def test_gradcheck_sample_checks_k_entries_of_each_tensor(cli, tmp_path):
    config = write_config(tmp_path, "data: {source: iris}\nmodel: {hidden: [{units: 6}]}\n")
    result = cli("gradcheck", config, "--sample", "4")
    assert result.exit_code == 0, result.output
    assert "15 of 51 parameters (up to 4 at random in each of the 4 tensors" in result.stderr
    rows = {
        line.split("│")[1].strip(): line.split("│")[3].strip()
        for line in result.stdout.splitlines()
        if "layers." in line
    }
    assert rows == {
        "layers.0.weight": "4",
        "layers.0.bias": "4",
        "layers.1.weight": "4",
        "layers.1.bias": "all",
    }


def test_a_big_net_is_sampled_by_default_and_still_checked(tmp_path, monkeypatch):
    from mlpcli.checks import CHECK_ALL_UP_TO, DEFAULT_SAMPLE, gradcheck, plan_gradcheck
    from mlpcli.config import load_config
    from mlpcli.data import load_dataset

    cfg = load_config(
        write_config(
            tmp_path,
            "data: {source: digits}\n"
            "model: {hidden: [{units: 400, activation: sigmoid}, {units: 50}]}\n",
        )
    )
    data = load_dataset(cfg.data, cfg.seed)
    plan = plan_gradcheck(cfg, data, rows=2)
    assert plan.n_params > CHECK_ALL_UP_TO and plan.sample == DEFAULT_SAMPLE
    assert all(len(e) <= DEFAULT_SAMPLE for e in plan.entries.values())
    assert plan.total < 200 and plan.estimate_seconds < 5
    assert all(c.ok for c in gradcheck(cfg, data, rows=2))
    # a wrong derivative is caught from a sample as well
    wrong = dict(activations.DERIVATIVES)
    wrong["sigmoid"] = lambda z, a, g: g * a  # forgot (1 - a)
    monkeypatch.setattr("mlpcli.engine.model.DERIVATIVES", wrong)
    assert not all(c.ok for c in gradcheck(cfg, data, rows=2))
