"""Hostile YAML and config values: limits on every YAML reader, duplicate keys, strict types,
control characters, and `--set` errors that name the `--set`."""

import pytest

from tests.hostile import IRIS, refused

GOOD = f"data: {{source: {IRIS}}}\n"


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + GOOD


# (id, config text, words the error line must hold besides the file name)
YAML_CASES = [
    ("duplicate-top", GOOD + "seed: 1\nseed: 2\n", [":3:", "'seed' appears twice", "line 2"]),
    ("duplicate-nested", GOOD + "optimizer:\n  lr: 0.1\n  lr: 0.2\n", [":4:", "'lr'"]),
    ("duplicate-flow", GOOD + "optimizer: {lr: 0.1, lr: 0.2}\n", [":2:", "'lr' appears twice"]),
    ("duplicate-in-list", GOOD + "model: {hidden: [{units: 3, units: 4}]}\n", ["'units'"]),
    ("duplicate-data", GOOD + f"data: {{source: {IRIS}}}\n", [":2:", "'data' appears twice"]),
    ("alias-bomb", _bomb(6), ["expands to more than 10000 values"]),
    ("alias-bomb-deep", _bomb(9), ["expands to more than 10000 values"]),
    ("deep-flow", "a: " + "[" * 5000 + "]" * 5000 + "\n", ["nested deeper than 64"]),
    (
        "deep-block",
        "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v\n",
        ["deeper"],
    ),
    ("deep-mapping", "a: " + "{b: " * 200 + "1" + "}" * 200 + "\n", ["nested deeper than 64"]),
    ("too-large", GOOD + "#" + "x" * 1_100_000 + "\n", ["larger than 1,000,000 bytes"]),
    ("python-tag", GOOD + "seed: !!python/object/apply:os.system [ls]\n", ["invalid YAML"]),
    ("control-char", GOOD + "seed: 1\x1b[31m\n", ["invalid YAML", "#x001b"]),
    ("unhashable-key", GOOD + "? [a, b]\n: 1\n", ["invalid YAML", "unhashable"]),
    ("tab-indent", "data:\n\tsource: iris\n", ["invalid YAML"]),
    ("empty", "", ["data", "missing"]),
    ("only-comment", "# nothing\n", ["data", "missing"]),
    ("scalar", "42\n", ["mapping", "int"]),
    ("string", "hello\n", ["mapping", "str"]),
]


@pytest.mark.parametrize("command", ["train", "validate"])
@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES]
)
def test_hostile_yaml_is_refused(hostile_run, tmp_path, command, text, expected):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    args = [command, config] + (["--runs-dir", tmp_path / "runs"] if command == "train" else [])
    line = refused(args, "c.yaml", *expected, watch=[hostile_run])
    assert "\x1b" not in line
    assert not (tmp_path / "runs").exists()


def test_not_utf8_directory_and_device_configs(hostile_run, tmp_path):
    binary = tmp_path / "c.yaml"
    binary.write_bytes(b"data: \xff\xfe\n")
    refused(["validate", binary], "c.yaml", "not UTF-8", watch=[hostile_run])
    refused(["validate", tmp_path], str(tmp_path), "cannot read config", watch=[hostile_run])
    refused(["validate", "/dev/zero"], "/dev/zero", "larger than", watch=[hostile_run])


# (id, `key: value` lines for a section, words the error line must hold)
TYPE_CASES = [
    ("batch-size-true", "training: {batch_size: true}", ["training.batch_size", "integer"]),
    ("units-true", "model: {hidden: [{units: true}]}", ["model.hidden.0.units", "integer"]),
    ("epochs-string", "training: {epochs: '10'}", ["training.epochs", "integer"]),
    ("epochs-float-whole", "training: {epochs: 10.0}", ["training.epochs", "integer"]),
    ("lr-string", "optimizer: {lr: '0.1'}", ["optimizer.lr", "number"]),
    ("lr-true", "optimizer: {lr: true}", ["optimizer.lr", "number"]),
    ("seed-true", "seed: true", ["seed", "integer"]),
    ("restarts-false", "training: {restarts: false}", ["training.restarts"]),
    ("dropout-true", "model: {dropout: true}", ["model.dropout"]),
    ("shuffle-one", "training: {shuffle: 1}", ["training.shuffle", "boolean"]),
    ("shuffle-yes-string", "training: {shuffle: 'yes'}", ["training.shuffle", "boolean"]),
    ("stratify-zero", "data: {source: iris, split: {stratify: 0}}", ["stratify"]),
    ("patience-float", "training: {early_stopping: {patience: 2.0}}", ["patience"]),
    ("checkpoint-every-false", "training: {checkpoint_every: false}", ["checkpoint_every"]),
    ("name-number", "name: 123", ["name", "string"]),
    ("activation-number", "model: {hidden: [{units: 3, activation: 1}]}", ["activation"]),
    ("hidden-mapping", "model: {hidden: {units: 3}}", ["model.hidden"]),
    ("clip-true", "training: {clip_grad_norm: true}", ["clip_grad_norm"]),
    ("weight-decay-true", "optimizer: {weight_decay: true}", ["weight_decay"]),
    ("generator-n-true", "data: {source: xor, generator: {n: true}}", ["n"]),
]


@pytest.mark.parametrize(
    ("line", "expected"), [c[1:] for c in TYPE_CASES], ids=[c[0] for c in TYPE_CASES]
)
def test_strict_types(hostile_run, tmp_path, line, expected):
    config = tmp_path / "c.yaml"
    config.write_text(line + "\n" if line.startswith("data:") else GOOD + line + "\n")
    refused(["validate", config], "c.yaml", *expected, watch=[hostile_run])


def test_exponent_without_dot_is_a_number(tmp_path, cli):
    """YAML 1.1 reads `1e-3` as a string; strict types would refuse it, so the loader reads
    it as YAML 1.2 does: a float."""
    config = tmp_path / "c.yaml"
    config.write_text(GOOD + "optimizer: {lr: 1e-3, eps: 1E-8}\n")
    result = cli("validate", config)
    assert result.exit_code == 0, result.output
    assert "lr: 0.001" in result.stdout


def test_an_unknown_key_with_control_characters_is_escaped(hostile_run, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(GOOD + 'optimizer: {"l\\x1b[2Jr\\u0007": 1}\n')
    line = refused(["validate", config], "c.yaml", "\\x1b[2J", "\\x07", watch=[hostile_run])
    assert "\x1b" not in line and "\x07" not in line


# (id, --set item, words the error line must hold)
SET_CASES = [
    ("double-dot", "a..b=1", ["--set a..b=1", "an empty part"]),
    ("leading-dot", ".lr=1", ["--set .lr=1", "an empty part"]),
    ("trailing-dot", "optimizer.=1", ["--set optimizer.=1", "an empty part"]),
    ("space", "optimizer .lr=1", ["--set optimizer .lr=1", "'optimizer '"]),
    ("brackets", "model.hidden[0].units=3", ["--set model.hidden[0].units=3"]),
    ("unknown-section", "optimiser.lr=1", ["--set optimiser.lr=1", "did you mean 'optimizer'"]),
    ("unknown-top", "a.b=1", ["--set a.b=1", "unknown key 'a'"]),
    ("index-out-of-range", "model.hidden.9.units=3", ["--set model.hidden.9.units", "index"]),
    ("index-not-number", "model.hidden.first.units=3", ["--set model.hidden.first.units"]),
    ("bool-batch", "training.batch_size=true", ["--set training.batch_size=true", "integer"]),
    ("float-epochs", "training.epochs=2.5", ["--set training.epochs=2.5", "integer"]),
    ("into-scalar", "seed.x=1", ["--set seed.x=1", "seed"]),
    ("no-key", "=5", ["KEY=VALUE"]),
    ("list-for-number", "optimizer.lr=[1, 2]", ["--set optimizer.lr=[1, 2]", "number"]),
    ("string-for-section", "optimizer=sgd", ["--set optimizer=sgd", "optimizer"]),
    ("duplicate-in-value", "optimizer={lr: 1, lr: 2}", ["--set optimizer={lr: 1, lr: 2}"]),
    ("nan", "optimizer.lr=.nan", ["--set optimizer.lr=.nan", "finite"]),
    ("unknown-nested", "training.early_stopping.patiense=3", ["--set", "did you mean 'patience'"]),
]


@pytest.mark.parametrize("command", ["train", "validate", "gradcheck"])
@pytest.mark.parametrize(
    ("item", "expected"), [c[1:] for c in SET_CASES], ids=[c[0] for c in SET_CASES]
)
def test_set_errors_name_the_set(hostile_run, tmp_path, command, item, expected):
    config = tmp_path / "c.yaml"
    config.write_text(GOOD)
    args = [command, config, "--set", item]
    args += ["--runs-dir", tmp_path / "runs"] if command == "train" else []
    line = refused(args, *expected, watch=[hostile_run])
    assert "c.yaml" not in line  # the file is fine: the --set is at fault


def test_numpy_scalars_in_a_dict_config_are_plain_numbers():
    """Strict types refuse `true` for an int, but a notebook's np.int64(64) is an int."""
    import numpy as np

    from mlpcli.config import RunConfig

    raw = {
        "data": {"source": "iris"},
        "model": {"hidden": [{"units": np.int64(8)}]},
        "training": {"epochs": np.int32(3), "shuffle": np.bool_(False)},
    }
    cfg = RunConfig.model_validate(raw)
    assert (cfg.model.hidden[0].units, cfg.training.epochs, cfg.training.shuffle) == (8, 3, False)
    with pytest.raises(ValueError, match="valid integer"):
        RunConfig.model_validate({**raw, "training": {"batch_size": np.bool_(True)}})
