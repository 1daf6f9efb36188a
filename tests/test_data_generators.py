"""Generated datasets: shapes, formulas, seeds, and their config keys."""

import numpy as np
import pytest
import yaml

from mlpcli.config import GENERATORS, Data, dump_config, load_config
from mlpcli.data import load_dataset
from mlpcli.data.generators import GENERATE, generate
from mlpcli.errors import UserError
from tests.helpers import write_config


def test_every_configured_generator_is_implemented():
    assert set(GENERATORS) == set(GENERATE)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_defaults_give_the_documented_shape_and_task(name):
    options = GENERATORS[name].options().model_dump()
    table = generate(name, options, 0)
    assert table.X.shape[0] == options["n"] and np.isfinite(table.X).all()
    assert table.y is not None and len(table.y) == options["n"]
    if GENERATORS[name].task == "classification":
        assert table.class_names is not None
        counts = np.bincount(table.y, minlength=len(table.class_names))
        assert counts.max() - counts.min() <= 1  # balanced classes
    else:
        assert table.class_names is None and table.y.dtype == np.float64


@pytest.mark.parametrize("name", list(GENERATORS))
def test_seeded(name):
    options = GENERATORS[name].options().model_dump()
    a, b = generate(name, options, 1), generate(name, options, 1)
    c = generate(name, options, 2)
    assert np.array_equal(a.X, b.X) and not np.array_equal(a.X, c.X)
    fixed = {**options, "seed": 7}
    assert np.array_equal(generate(name, fixed, 1).X, generate(name, fixed, 2).X)


def test_xor_truth_table():
    table = generate("xor", {"n": 4, "noise": 0.0, "seed": None}, 0)
    assert table.X.tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]
    assert table.y is not None and table.y.tolist() == [0, 1, 1, 0]


def test_spirals_arms_are_classes_on_their_curve():
    table = generate("spirals", {"n": 300, "noise": 0.0, "arms": 3, "turns": 1.0}, 0)
    assert table.class_names == ["arm0", "arm1", "arm2"]
    r = np.hypot(table.X[:, 0], table.X[:, 1])
    theta = np.arctan2(table.X[:, 1], table.X[:, 0])
    assert table.y is not None
    expected = 2 * np.pi * (r + table.y / 3)
    assert np.allclose(np.cos(theta), np.cos(expected)) and np.allclose(
        np.sin(theta), np.sin(expected)
    )


def test_circles_radii_and_moons_shape():
    circles = generate("circles", {"n": 100, "noise": 0.0, "factor": 0.3}, 0)
    assert circles.y is not None
    radius = np.hypot(circles.X[:, 0], circles.X[:, 1])
    assert np.allclose(radius, np.where(circles.y == 0, 1.0, 0.3))
    moons = generate("moons", {"n": 100, "noise": 0.0}, 0)
    assert moons.y is not None
    upper = moons.X[moons.y == 0]
    assert np.allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0) and (upper[:, 1] >= 0).all()


def test_regression_formulas_without_noise():
    sine = generate("sine", {"n": 50, "noise": 0.0, "periods": 2.0}, 0)
    assert np.allclose(sine.y, np.sin(sine.X[:, 0])) and np.abs(sine.X).max() <= 2 * np.pi
    f = generate("friedman1", {"n": 50, "noise": 0.0, "features": 7}, 0)
    X = f.X
    expected = (
        10 * np.sin(np.pi * X[:, 0] * X[:, 1])
        + 20 * (X[:, 2] - 0.5) ** 2
        + 10 * X[:, 3]
        + 5 * X[:, 4]
    )
    assert X.shape == (50, 7) and np.allclose(f.y, expected)


def test_generated_source_loads_and_splits():
    cfg = Data(source="spirals", generator={"n": 300, "arms": 3})
    dataset = load_dataset(cfg, 0)
    assert dataset.class_names == ["arm0", "arm1", "arm2"]
    assert sum(len(p) for p in dataset.parts.values()) == 300


def test_resolved_config_records_every_generator_default(tmp_path):
    cfg = load_config(write_config(tmp_path, "data: {source: spirals, generator: {arms: 4}}"))
    resolved = yaml.safe_load(dump_config(cfg))["data"]["generator"]
    assert resolved == {"n": 600, "noise": 0.2, "seed": None, "arms": 4, "turns": 1.0}
    cfg = load_config(write_config(tmp_path, "data: {source: moons}"), ["data.generator.noise=0.3"])
    assert cfg.data.generator is not None and cfg.data.generator["noise"] == 0.3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "data: {source: spirals, generator: {arm: 3}}",
            r"data.generator: unknown key 'arm' for spirals",
        ),
        ("data: {source: spirals, generator: {arm: 3}}", r"did you mean 'arms'\?"),
        (
            "data: {source: spirals, generator: {arms: 1}}",
            r"data.generator: arms: Input should be greater",
        ),
        ("data: {source: iris, generator: {n: 3}}", r"data.generator: only for a generated source"),
        ("data: {source: xor, target: y}", r"data.target is for files; 'xor' is generated"),
        ("data: {source: spirals}\nloss: mse", r"'spirals' is a classification dataset"),
        ("data: {source: sine}", r"'sine' is a regression dataset"),
    ],
)
def test_generator_config_errors(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as info:
        load_config(write_config(tmp_path, text))
    assert "\n" not in str(info.value)


def test_generator_error_points_at_its_line(tmp_path):
    text = "data:\n  source: spirals\n  generator:\n    arms: 0\n"
    with pytest.raises(UserError, match=r"config.yaml:3: data.generator"):
        load_config(write_config(tmp_path, text))
