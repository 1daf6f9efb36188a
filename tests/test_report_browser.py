"""The report in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

Skipped, with the reason, where Playwright or Chromium is absent; .ci/run installs both.
Screenshots go to the test's tmp folder, or to $MLPCLI_REPORT_SHOTS when set (to look at).
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlpcli import report as pages
from tests.helpers import write_config
from tests.report_runs import GRID_PLOTS, SPIRALS, make_grid, make_regression

pytest.importorskip("plotly", reason="the report needs plotly (the 'report' extra)")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (the 'test' extra installs it)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "chromium is not installed (apt-get install chromium; .ci/run does)",
        allow_module_level=True,
    )


class Tab:
    """A page that records console errors and every request it makes."""

    def __init__(self, page: Any) -> None:
        self.page = page
        page.set_default_timeout(120_000)  # a shared CI machine can be slow to draw
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith("file://"):
            route.continue_()
        else:
            route.abort()  # nothing leaves the machine, whatever the page asks for

    def open(self, path: Path) -> None:
        self.page.goto(path.as_uri(), wait_until="load")
        self.page.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot').length === FIGURES.length"
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Tab(context.new_page())
    context.close()


@pytest.fixture(scope="module")
def opened(browser, tmp_path_factory) -> Iterator[tuple[Tab, Path]]:
    """The report of a small grid, opened once for the tests below (a page load is slow)."""
    folder = tmp_path_factory.mktemp("browser")
    out = folder / "report.html"
    pages.write_report([make_grid(folder)], out)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Tab(context.new_page())
    tab.open(out)
    yield tab, out
    context.close()


def shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MLPCLI_REPORT_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_every_plot_draws_without_errors_or_network(opened):
    tab, out = opened
    assert tab.errors == []
    assert tab.requests == [out.as_uri()]  # the page itself, nothing else
    drawn = tab.page.evaluate(
        """Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => [
            gd.data.length, gd.querySelectorAll('.main-svg').length > 0,
            gd.querySelectorAll('.trace, .heatmaplayer image, .parcoords').length > 0])"""
    )
    assert len(drawn) == GRID_PLOTS
    assert all(n > 0 and svg and marks for n, svg, marks in drawn), drawn
    assert tab.page.locator("#runs tbody tr").count() == 2  # 2 lrs, seeds folded
    assert tab.page.locator("details.run").count() == 4


def test_table_sorts_on_a_header_click(opened):
    tab, _ = opened
    lr = tab.page.locator("#runs th", has_text="optimizer.lr")
    cells = "Array.from(document.querySelectorAll('#runs tbody tr td:nth-child(4)'))"
    values = f"{cells}.map(td => Number(td.dataset.v))"
    lr.click()
    assert tab.page.evaluate(values) == [0.003, 0.03]
    lr.click()
    assert tab.page.evaluate(values) == [0.03, 0.003]
    assert tab.errors == []


@pytest.mark.parametrize("width", [1280, 800])
def test_screenshot(opened, tmp_path, width):
    tab, _ = opened
    tab.page.set_viewport_size({"width": width, "height": 900})
    tab.page.wait_for_timeout(300)  # plotly redraws responsive plots on resize
    overflow = tab.page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width  # only the table scrolls sideways, inside itself
    path = shots_dir(tmp_path) / f"report-{width}.png"
    tab.page.screenshot(path=str(path), full_page=True)
    w, h = png_size(path)
    assert w == width and h > 2000  # every section below the fold is in it
    assert tab.errors == []


@pytest.mark.slow
def test_regression_and_hostile_names_draw_as_text(tab, tmp_path):
    run = make_regression(tmp_path)
    runs = tmp_path / "runs"
    for name in ('<a href="javascript:alert(1)">x', "<img src=x onerror=alert(1)>"):
        shutil.copytree(run, runs / name)
    out = tmp_path / "r.html"
    pages.write_report([runs], out, group=False)
    tab.open(out)
    assert tab.errors == [] and tab.requests == [out.as_uri()]
    assert tab.page.locator(".js-plotly-plot").count() == 6  # loss, r2, lr, 2 norms, pred/true
    assert tab.page.locator("img, a[href]").count() == 0  # the names stayed text
    assert tab.page.locator(".legendtext", has_text='<a href="javascript').count() >= 1


@pytest.mark.slow
def test_watch_updates_the_open_page_while_a_run_trains(tab, tmp_path):
    config = write_config(tmp_path, SPIRALS)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    train = subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "train", config, "--runs-dir", tmp_path / "runs",
         "--set", "training.epochs=100000", "--set", "data.generator.n=3000",
         "--set", "training.early_stopping=null", "--quiet"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    (tmp_path / "runs").mkdir(exist_ok=True)
    out = tmp_path / "live.html"
    watch = subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "report", tmp_path / "runs", "--watch",
         "--every", "0.5", "--out", out],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait(out.exists)
        tab.page.goto(out.as_uri())
        seen = _epochs_seen(tab, lambda seen: len(set(seen)) >= 3)  # the page reloaded itself
        assert seen == sorted(seen), seen
        assert train.poll() is None or seen[-1] > seen[0]
    finally:
        train.kill()
        watch.send_signal(signal.SIGINT)
        _, stderr = watch.communicate(timeout=60)
        train.communicate(timeout=60)
    assert watch.returncode == 0, stderr
    assert "<script>reloadEvery(" not in out.read_text(encoding="utf-8")  # the final page
    assert tab.errors == []
    assert all(u.startswith("file://") for u in tab.requests)


def _epochs_seen(tab: Tab, enough: Any, seconds: float = 90.0) -> list[int]:
    """The page's epoch count as it reloads itself, until `enough(seen)` holds."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            epochs = tab.page.evaluate(
                "document.querySelector('.meta') && Number(document.querySelector('.meta')"
                ".dataset.epochs)"
            )
        except sync_api.Error:  # the page is reloading just now
            epochs = None
        if epochs is not None and (not seen or epochs != seen[-1]):
            seen.append(int(epochs))
            if enough(seen):
                return seen
        tab.page.wait_for_timeout(200)
    raise AssertionError(f"the page did not update: epochs seen {seen}")


def _wait(condition: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
