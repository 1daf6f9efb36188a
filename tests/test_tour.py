"""docs/make_tour.py rebuilds every picture of docs/tour.md (issue 9): the quick mode, in CI."""

import runpy
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "docs" / "make_tour.py"


def expected_images() -> list[str]:
    images = runpy.run_path(str(SCRIPT), run_name="make_tour")["IMAGES"]
    return [name for names in images.values() for name in names]


def test_every_image_of_the_tour_is_checked_in():
    missing = [n for n in expected_images() if not (ROOT / "docs" / "img" / n).is_file()]
    assert not missing
    tour = (ROOT / "docs" / "tour.md").read_text(encoding="utf-8")
    assert not [n for n in expected_images() if f"img/{n}" not in tour]


def test_quick_tour_makes_every_image(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "img"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "$ mlpcli train" in done.stdout  # it prints what it runs
    for name in expected_images():
        path = out / name
        assert path.is_file(), f"{name} was not made"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert path.stat().st_size > 5_000, name
    assert sorted(p.name for p in out.iterdir()) == sorted(expected_images())
