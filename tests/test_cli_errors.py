"""Usage errors from the command line are one `error:` line (plus a hint), exit code 2."""

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--bogus", "x"], "No such option: --bogus"),
        (["train"], "Missing argument"),
        (["trian"], "Did you mean 'train'?"),
        (["gradcheck", str(ROOT / "configs" / "iris.yaml"), "--rows", "x"], "'--rows'"),
        (["gradcheck", str(ROOT / "configs" / "iris.yaml"), "--rows", "0"], "'--rows'"),
    ],
)
def test_usage_errors_are_one_line(cli, args, expected):
    result = cli(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("hint: "))
    assert "Traceback" not in result.output and "╭" not in result.output


def test_help_still_exits_0(cli):
    assert cli("--help").exit_code == 0
    assert cli("train", "--help").exit_code == 0
