"""`mlpcli schema` describes every config mlpcli accepts: the shipped ones validate against it."""

import json
import re
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "configs").rglob("*.yaml"))


def _doc_configs() -> list[tuple[str, dict]]:
    """Every ```yaml block of the README and docs/ that is a whole config (it has `data`)."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for match in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            raw = yaml.safe_load(match.group(1))
            if isinstance(raw, dict) and "data" in raw:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{doc.name}:{line}", raw))
    return found


@pytest.fixture(scope="module")
def validator(cli_schema):
    return jsonschema.Draft202012Validator(cli_schema)


@pytest.fixture(scope="module")
def cli_schema():
    from typer.testing import CliRunner

    from mlpcli.cli import app

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def test_there_are_configs_to_check():
    assert len(SHIPPED) >= 20 and len(_doc_configs()) >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_config_validates(validator, path):
    errors = list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert not errors, f"{path.name}: {errors[0].json_path}: {errors[0].message}"


@pytest.mark.parametrize("where,raw", _doc_configs(), ids=lambda v: v if isinstance(v, str) else "")
def test_docs_config_validates(validator, where, raw):
    errors = list(validator.iter_errors(raw))
    assert not errors, f"{where}: {errors[0].json_path}: {errors[0].message}"


@pytest.mark.parametrize(
    "raw",
    [
        {"data": {"source": "iris"}, "loss": "cross_entropyy"},
        {"data": {"source": "iris"}, "optimiser": {"name": "adam"}},
        {"data": {"source": "iris"}, "model": {"hidden": [{"units": 8, "activation": "rlu"}]}},
        {"model": {}},
    ],
)
def test_schema_rejects_what_load_config_rejects(validator, raw):
    assert list(validator.iter_errors(raw))
