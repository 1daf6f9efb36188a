"""Help, version and completion: what a new user types first."""

import re

import pytest
import typer
from typer.testing import CliRunner

from mlpcli import __version__
from mlpcli.cli import app


def _commands() -> list[str]:
    """Every command the app has, found in it (new commands are checked without a list)."""
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), env={"COLUMNS": "80", "NO_COLOR": "1"})


def test_version_names_mlpcli_numpy_and_python(run):
    result = run("--version")
    assert result.exit_code == 0
    assert re.fullmatch(
        rf"mlpcli {re.escape(__version__)}  numpy \S+  python 3\.\d+\.\d+\n", result.stdout
    )


def test_shell_completion_is_offered(run):
    top = run("--help").stdout
    assert "--install-completion" in top and "--show-completion" in top
    script = run("--show-completion", "bash")
    assert script.exit_code == 0 and "_mlpcli_completion" in script.stdout


def test_the_app_has_the_documented_commands():
    assert {"train", "eval", "predict", "compare", "validate", "datasets", "gradcheck"} <= set(
        _commands()
    )


@pytest.mark.parametrize("command", ["", *_commands()])
def test_help_reads_well_at_80_columns(run, command):
    result = run(*([command] if command else []), "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout
    text = result.stdout
    assert "<bool>" not in text, "flags take no value: no type label"
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    # the description (outside the option boxes) has no word stranded mid-paragraph
    prose = [line.strip() for line in lines if not re.match(r"\s*[│╭╰]", line)]
    for before, line, after in zip(prose, prose[1:], prose[2:], strict=False):
        if before and after and line and not line.startswith("Usage"):
            assert len(line.split()) > 1, f"orphaned word {line!r} in `{command} --help`"
    if command:  # every command, option and argument says what it does
        cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
        assert cmd.help
        for param in cmd.params:
            assert getattr(param, "help", None), f"{param.name} of `{command}` has no help"


def test_install_hints_name_the_source_not_the_package_index():
    """`mlpcli` on the public index is another project: never `pip install mlpcli[...]`."""
    from tests.helpers import ROOT

    files = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("docs/*.py")]
    files += [*ROOT.glob("mlpcli/**/*.py")]
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            hint = re.search(r"pip install ['\"]?mlpcli\[", line)
            assert not hint, f"{path.name}:{n}: {line.strip()}"
