"""docs/make_tour.py rebuilds every picture of docs/tour.md (issue 9).

The default run checks two claims in the script's quick mode (the softmax picture, drawn
from a run through the library; a `--grid --repeat` of restarts and the decision regions of
`eval --plot`): ~10 s. The slow run (`pytest -m slow`, which CI runs too) makes every
picture in quick mode: ~20 s of CPU, about 30 mlpcli commands.
"""

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


def make_tour(out: Path, claims: list[int] | None = None) -> None:
    """Run the script in quick mode and check the pictures of `claims` (default: all)."""
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


def test_quick_tour_makes_its_pictures(tmp_path):
    make_tour(tmp_path / "img", [1, 8])


@pytest.mark.slow
def test_quick_tour_makes_every_picture(tmp_path):
    make_tour(tmp_path / "img")
