"""Shared fixtures: the repository's paths and a CLI runner."""

import pytest
from typer.testing import CliRunner

from mlpcli.cli import app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner, monkeypatch, tmp_path):
    """Run `mlpcli ARGS...` in-process from a temporary working folder."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory):
    """One finished 3-epoch iris run, trained once per session; tests copy it to damage it."""
    from tests.hostile import train_shared_run

    return train_shared_run(tmp_path_factory.mktemp("hostile"))
