"""docs/make_tour.py rebuilds every picture of docs/tour.md (issue 9).

The default run checks four claims in the script's quick mode (the softmax picture, drawn
from a run through the library; a `--grid --repeat` of restarts and the decision regions of
`eval --plot`; regression and gradcheck, whose numbers the tour shows must be the ones the
script prints today): ~15 s. The slow run (`pytest -m slow`, which CI runs too) makes every
picture in quick mode: ~20 s of CPU, about 30 mlpcli commands.
"""

import math
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "docs" / "make_tour.py"
IMAGES: dict[int, list[str]] = runpy.run_path(str(SCRIPT), run_name="make_tour")["IMAGES"]
PNG = b"\x89PNG\r\n\x1a\n"


def test_every_image_is_checked_in_and_shown_in_the_tour():
    names = [name for names in IMAGES.values() for name in names]
    assert len(IMAGES) == 10
    assert not [n for n in names if not (ROOT / "docs" / "img" / n).is_file()]
    tour = (ROOT / "docs" / "tour.md").read_text(encoding="utf-8")
    assert not [n for n in names if f"(img/{n})" not in tour]
    for name in names:  # small enough to check in
        assert (ROOT / "docs" / "img" / name).stat().st_size < 150_000, name


def test_tour_configs_are_valid(cli):
    for config in sorted((ROOT / "configs" / "tour").glob("*.yaml")):
        result = cli("validate", config)
        assert result.exit_code == 0, f"{config.name}: {result.output}"


def make_tour(out: Path, claims: list[int] | None = None) -> str:
    """Run the script in quick mode, check the pictures of `claims` (default: all); its stdout."""
    pytest.importorskip("matplotlib")
    only = ["--only", *map(str, claims)] if claims else []
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), *only],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "$ mlpcli train" in done.stdout  # it prints what it runs
    expected = [name for n in claims or IMAGES for name in IMAGES[n]]
    for name in expected:
        path = out / name
        assert path.is_file(), f"{name} was not made"
        assert path.read_bytes()[:8] == PNG, name
        assert path.stat().st_size > 5_000, name
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    return done.stdout


@pytest.fixture(scope="module")
def quick_tour(tmp_path_factory) -> str:
    """Claims 1 and 8 (a run through the library; a grid of restarts and `eval --plot`) and
    3 and 5, whose numbers do not depend on --quick."""
    return make_tour(tmp_path_factory.mktemp("tour") / "img", [1, 3, 5, 8])


def test_quick_tour_makes_its_pictures(quick_tour):
    assert "## claim 8" in quick_tour


def _claim_text(number: int) -> str:
    tour = (ROOT / "docs" / "tour.md").read_text(encoding="utf-8")
    return re.split(r"^## \d+\. ", tour, flags=re.M)[number]


def _shown_numbers(section: str) -> list[str]:
    """Output lines the tour shows with numbers in them: table rows, JSON values, `# python:`
    lines and gradcheck's verdict (not the commands, not a time estimate)."""
    lines = []
    for block in re.findall(r"```(\w*)\n(.*?)```", section, re.S):
        if block[0] in ("bash", "python"):
            continue
        for line in block[1].splitlines():
            line = line.strip()
            if re.match(r"(│ \S|\"\w+\": -?\d|# python: |backprop agrees)", line):
                lines.append(line.rstrip(","))
    return lines


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _same_up_to_rounding(shown: str, printed: str) -> bool:
    """The same line with the same numbers, to 1e-6 relative: float32 training differs in
    its last bits from one CPU to another (NumPy's SIMD exp, OpenBLAS's kernels)."""
    if NUMBER.sub("#", shown) != NUMBER.sub("#", printed):
        return False
    pairs = zip(NUMBER.findall(shown), NUMBER.findall(printed), strict=True)
    return all(math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9) for a, b in pairs)


def test_lines_differing_only_in_last_bits_match_and_others_do_not():
    assert _same_up_to_rounding('"mse": 2376.294281429122', '"mse": 2376.2942110846184')
    assert _same_up_to_rounding("│ train │ 2609.2536 │ 0.5751 │", "│ train │ 2609.2538 │ 0.5751 │")
    assert not _same_up_to_rounding('"mse": 2376.29', '"mse": 2377.29')
    assert not _same_up_to_rounding('"mse": 2376.29', '"rmse": 2376.29')
    assert not _same_up_to_rounding("│ 1 │ 2 │", "│ 1 │ 2 │ 3 │")


@pytest.mark.parametrize("claim", [3, 5])
def test_the_tour_shows_the_numbers_the_script_prints(quick_tour, claim):
    """Claims whose numbers do not depend on --quick: the tour shows today's output."""
    printed = {line.strip().rstrip(",") for line in quick_tour.splitlines()}
    shown = [
        line
        for line in _shown_numbers(_claim_text(claim))
        if "from epoch 1 to" not in line  # claim 5's weight change over all epochs: full only
    ]
    assert len(shown) >= 8
    drifted = [line for line in shown if not any(_same_up_to_rounding(line, p) for p in printed)]
    assert not drifted, f"docs/tour.md claim {claim} shows numbers the tour no longer prints"
