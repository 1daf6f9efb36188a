"""Property-based: any mutation of a valid config is either valid or one clean error line."""

import copy
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpcli.config import RunConfig, load_config
from mlpcli.errors import UserError

VALID = {
    "name": "fuzz",
    "seed": 3,
    "data": {"source": "iris", "split": {"train": 0.7, "val": 0.15, "test": 0.15}},
    "model": {"hidden": [{"units": 8, "activation": "relu"}, {"units": 4}], "dropout": 0.1},
    "loss": "cross_entropy",
    "optimizer": {"name": "adam", "lr": 0.01, "weight_decay": 0.0},
    "training": {
        "epochs": 5,
        "batch_size": 16,
        "schedule": {"name": "cosine", "warmup_epochs": 1},
        "early_stopping": {"monitor": "val_loss", "patience": 3},
    },
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(alphabet=string.printable, min_size=200, max_size=2000),
    st.sampled_from(["relu", "adam", "mse", "softmax", "val_loss", "step", "iris", "1e-3", "é✓"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


PATHS = [p for p in _paths(VALID) if p]


@st.composite
def mutated(draw):
    config = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = config
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["delete", "replace", "add"]))
            if action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif action == "add" and isinstance(parent, dict):
                parent[draw(st.text(max_size=12))] = draw(values)
            else:
                parent[path[-1]] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return config


def _check(tmp_path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        assert isinstance(load_config(path), RunConfig)
    except UserError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) <= 400
        assert "Traceback" not in message


FUZZ = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(config=mutated())
def test_mutated_configs_validate_or_fail_cleanly(tmp_path, config):
    _check(tmp_path, yaml.safe_dump(config, allow_unicode=True))


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text_validates_or_fails_cleanly(tmp_path, text):
    _check(tmp_path, text)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)
    ]
    lines += ["data: {source: iris}", "model: {hidden: *a11}"]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    try:
        load_config(path)
    except UserError as exc:
        assert "expands to more than" in str(exc)
    else:
        raise AssertionError("a YAML bomb must be refused")


def test_non_string_and_unicode_keys(tmp_path):
    for text in (
        "data: {source: iris}\n1: 2\n",
        "data: {source: iris}\nmodèle: {}\n",
        "? [a, b]\n: 1\n",
    ):
        _check(tmp_path, text)
