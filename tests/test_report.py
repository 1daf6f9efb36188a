"""`mlpcli report`: the page built from real runs, its contents, bad input, and --watch.

What a browser makes of the page is checked in test_report_browser.py.
"""

import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

from mlpcli import report as pages
from mlpcli.compare import compare_runs
from tests.report_runs import GRID_PLOTS, make_grid, make_regression

pytest.importorskip("plotly", reason="the report needs plotly (the 'report' extra)")


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    return make_grid(tmp_path_factory.mktemp("report"))


@pytest.fixture
def grid_copy(grid, tmp_path) -> Path:
    return Path(shutil.copytree(grid, tmp_path / "grid"))


def plot_titles(page: pages.Page) -> list[str]:
    return [f.title for _, figures in page.sections for f in figures]


def test_grid_page_has_every_plot(grid):
    page = pages.build_page([grid])
    assert plot_titles(page) == [
        "loss per epoch",
        "accuracy per epoch",
        "learning rate per epoch",
        "per-layer gradient norms",
        "per-layer weight norms",
        "searched values against the metric",
        "search history",
        "confusion matrix",
        "decision regions",
    ]
    assert page.n_plots == GRID_PLOTS


def test_seed_groups_are_a_mean_and_a_band(grid):
    page = pages.build_page([grid])
    loss = page.sections[0][1][0]
    bands = [t for t in loss.data if t.get("fill") == "toself"]
    lines = [t for t in loss.data if "fill" not in t]
    assert len(lines) == 4 and len(bands) == 4  # 2 rows x (train, val)
    c = compare_runs([grid])
    row = c.rows[0]
    mean = lines[0]["y"]
    by_seed = [r.curves["train_loss"] for r in row.runs]
    assert mean[0] == pytest.approx(sum(s[0] for s in by_seed) / 2)
    assert "optimizer.lr=" in lines[0]["hovertemplate"]


def test_norms_heatmap_is_one_trace_per_run_with_the_best_shown(grid):
    page = pages.build_page([grid])
    grad = next(f for f in page.sections[1][1] if "gradient" in f.title)
    assert len(grad.data) == 4 and sum(t["visible"] for t in grad.data) == 1
    shown = next(t for t in grad.data if t["visible"])
    best = pages._best_run(page.comparison)  # type: ignore[arg-type]
    assert best is not None and shown["name"] == best.name
    assert shown["y"] == ["0: relu 16", "1: tanh 16", "2: output"]
    norms = best.curves["layers.0.grad_norm"]
    assert shown["z"][0][0] == pytest.approx(__import__("math").log10(norms[0]))
    assert len(grad.layout["updatemenus"][0]["buttons"]) == 4


def test_cli_writes_one_self_contained_file(cli, grid, tmp_path):
    from plotly.offline import get_plotlyjs

    out = tmp_path / "r.html"
    result = cli("report", grid, "--out", out)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"report: {re.escape(str(out))} \(4 runs, {GRID_PLOTS} plots, 0\.\d\d MB besides "
        r"plotly\.js\)\n",
        result.stderr,
    )
    text = out.read_text(encoding="utf-8")
    js = get_plotlyjs()
    assert text.count(js) == 1
    rest = text.replace(js, "")
    assert len(rest.encode()) < 1_000_000
    # nothing to fetch: no external script, style, image or font
    assert not re.search(r"https?://|<link|\bsrc=|@import|url\(", rest)
    assert rest.count("<script>") == 2 and "<script>reloadEvery(" not in rest


def test_table_marks_the_best_and_colours_statuses(cli, grid_copy, tmp_path):
    (next(grid_copy.glob("lr-0.003_seed-0*")) / "summary.json").write_text("{", encoding="utf-8")
    page = pages.build_page([grid_copy], group=False)
    html = pages.render(page, "/* plotly */")
    table = html.split("<table", 1)[1].split("</table>", 1)[0]
    rows = table.split("<tr")[2:]
    assert len(rows) == 4
    best = [r for r in rows if 'class="best"' in r]
    assert len(best) == 1 and "★" in best[0]
    assert '<td data-v="corrupt" style="color:#cf222e">corrupt</td>' in table
    assert table.count('style="color:#1a7f37">completed') == 3
    assert "<th" in table and "optimizer.lr" in table
    assert "summary.json is unreadable" in html  # the damaged run's note


def test_hostile_run_name_is_escaped(grid, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(next(grid.glob("lr-0.03_seed-0*")), runs / "a</script><b>x")
    shutil.copytree(next(grid.glob("lr-0.003_seed-0*")), runs / "b&<img onerror=1>")
    html = pages.render(pages.build_page([runs]), "/* plotly */")
    assert "</script><b>" not in html and "<img" not in html
    assert "a&lt;/script&gt;&lt;b&gt;x" in html


def test_regression_best_run_is_predicted_against_true(tmp_path):
    run = make_regression(tmp_path)
    page = pages.build_page([run])
    titles = plot_titles(page)
    assert titles[-1] == "predicted vs true" and "decision regions" not in titles
    assert "r2 per epoch" in titles
    scatter = page.sections[-1][1][0].data[0]
    assert len(scatter["x"]) == len(scatter["y"]) > 10


def test_unscorable_best_model_is_a_note(grid_copy):
    for run in grid_copy.iterdir():
        shutil.rmtree(run / "checkpoints")
    page = pages.build_page([grid_copy])
    assert "confusion matrix" not in plot_titles(page)
    assert any("the best run's model could not be scored" in n for n in page.notes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{empty}"], r"no run directories in it"),
        (["{missing}"], r"no such run directory or folder"),
        (["{grid}", "--out", "{tmp}"], r"--out .*: is a folder"),
        (["{grid}", "--out", "{tmp}/nope/r.html"], r"--out .*: the folder .* does not exist"),
        (["{grid}", "--out", "/proc/r.html"], r"--out /proc/r.html: cannot write the report"),
        (["{grid}", "--out", "{run}/summary.json"], r"would overwrite a file of the run"),
        (["{grid}", "--out", "{run}/checkpoints/r.html"], r"would write into the checkpoints"),
        (["{grid}", "--out", "{run}/checkpoints/best.npz"], r"would overwrite a file of the run"),
        (["{grid}", "--out", "{run}/metrics.csv"], r"would overwrite a file of the run"),
        (["{grid}", "--out", "{tmp}/data.csv"], r"--out .*data.csv: exists and is not an .html"),
        (["{grid}", "--every", "0"], r"Invalid value for '--every'"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, grid, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    run = next(grid.iterdir())
    before = (run / "summary.json").read_bytes()
    fill = {"empty": tmp_path / "empty", "missing": tmp_path / "missing", "grid": grid}
    fill.update({"tmp": tmp_path, "run": run})
    result = cli("report", *[a.format(**fill) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert re.search(message, lines[0]) and lines[0].startswith("error: ")
    assert len(lines) <= 2 and "Traceback" not in result.output
    assert (run / "summary.json").read_bytes() == before
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left


def test_without_plotly_one_line_and_install_hint(cli, grid, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.offline", None)  # import fails
    result = cli("report", grid, "--out", tmp_path / "r.html")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: mlpcli report needs plotly, which is not installed",
        f"hint: {pages.INSTALL_HINT}",
    ]
    assert not (tmp_path / "r.html").exists()


def test_watch_rewrites_as_runs_appear_then_leaves_a_plain_page(grid, tmp_path):
    runs = tmp_path / "runs"
    first, *_, second = sorted(p for p in grid.iterdir() if p.is_dir())
    shutil.copytree(first, runs / first.name)
    out = tmp_path / "live.html"
    stop = threading.Event()
    written: list[pages.Written] = []
    thread = threading.Thread(
        target=pages.watch, args=([runs], out, 0.05, stop, written.append), daemon=True
    )
    thread.start()
    try:
        _wait(lambda: len(written) == 1)
        assert "<script>reloadEvery(50);" in out.read_text(encoding="utf-8")
        staged = shutil.copytree(second, tmp_path / "staging" / second.name)
        staged.rename(runs / second.name)  # appears whole: one change, one page
        _wait(lambda: len(written) == 2)
        assert written[-1].runs == 2
        stop.wait(0.2)
        assert len(written) == 2  # nothing changed: the page is not rewritten
    finally:
        stop.set()
        thread.join(10)
    text = out.read_text(encoding="utf-8")
    assert "<script>reloadEvery(" not in text and 'data-runs="2"' in text


def _wait(condition, seconds: float = 20.0) -> None:
    done = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_tour_script_writes_a_report_per_claim(tmp_path):
    import subprocess

    from tests.helpers import ROOT

    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_tour.py"), "--quick", "--only", "1",
         "--out", str(tmp_path / "img"), "--reports", str(tmp_path / "reports")],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    page = (tmp_path / "reports" / "01.html").read_text(encoding="utf-8")
    assert "softmax-iris" in page and 'data-runs="1"' in page


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_plot_text_is_escaped_for_plotly(grid, tmp_path):
    """plotly.js renders <a href>, <b>... in legend and hover text: run names stay text."""
    import json

    runs = tmp_path / "runs"
    names = ['<a href="javascript:alert(1)">a', "<img src=x onerror=alert(1)>", "<i>c"]
    for i, name in enumerate(names):
        shutil.copytree(sorted(grid.iterdir())[i], runs / name)
    html = pages.render(pages.build_page([runs], group=False), "/* plotly */")
    payload = html.split("const FIGURES = ", 1)[1].split(";\n", 1)[0]
    figures = json.loads(payload)
    for text in _strings(figures):
        stripped = text
        for tag in pages.PLOTLY_TAGS:
            stripped = stripped.replace(tag, "")
        assert "<" not in stripped, text
    assert any("&lt;a href=" in t for t in _strings(figures))  # shown as text


def test_odd_norm_columns_are_ignored(grid_copy):
    run = sorted(grid_copy.iterdir())[0]
    path = run / "metrics.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [lines[0] + ",layers.x.grad_norm,layers.99999.grad_norm"] + [
        line + ",1,2" for line in lines[1:]
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = pages.build_page([run])
    grad = next(f for _, fs in page.sections for f in fs if "gradient" in f.title)
    assert grad.data[0]["y"] == ["0: relu 16", "1: tanh 16", "2: output"]


def test_watch_scores_an_unchanged_best_model_once(grid, monkeypatch):
    calls = []
    real = pages.best_run_figures
    monkeypatch.setattr(pages, "best_run_figures", lambda run: calls.append(run) or real(run))
    cache: dict = {}
    first = pages.build_page([grid], cache=cache)
    second = pages.build_page([grid], cache=cache)
    assert len(calls) == 1 and plot_titles(first) == plot_titles(second)


def test_open_opens_the_written_page(cli, grid, tmp_path, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    out = tmp_path / "r.html"
    result = cli("report", grid, "--out", out, "--open")
    assert result.exit_code == 0, result.output
    assert opened == [out.resolve().as_uri()]


def test_search_history_of_a_tune_follows_trial_numbers(grid, tmp_path):
    """Trials (`mlpcli tune` names them trial-NNNN) in trial order, whenever they started."""
    runs = tmp_path / "tune"
    sources = sorted(grid.iterdir())
    for number, source in zip((2, 0, 3, 1), sources, strict=True):
        run = Path(shutil.copytree(source, runs / f"trial-{number:04d}-20261201-120000"))
        config = (run / "config.yaml").read_text(encoding="utf-8")
        name = next(line for line in config.splitlines() if line.startswith("name:"))
        config = config.replace(name, f"name: trial-{number:04d}")
        (run / "config.yaml").write_text(config, encoding="utf-8")
    page = pages.build_page([runs], group=False)
    history = next(f for _, fs in page.sections for f in fs if f.title == "search history")
    assert history.data[0]["x"] == [0, 1, 2, 3]
    assert [t.split("-2026")[0] for t in history.data[0]["text"]] == [
        f"trial-{n:04d}" for n in range(4)
    ]
    assert history.layout["xaxis"]["title"]["text"] == "trial"


def test_a_real_tune_directory(cli, tmp_path):
    """`mlpcli tune`'s directory: its trials are runs, searched values and history drawn."""
    pytest.importorskip("optuna", reason="mlpcli tune needs the 'tune' extra (optuna)")
    from tests.test_tune import SEARCH, write_config

    config = write_config(tmp_path, SEARCH)
    assert cli("tune", config, "--runs-dir", "runs", "--quiet").exit_code == 0
    page = pages.build_page([tmp_path / "runs" / "iris-tune"], group=False)
    figures = {f.title: f for _, fs in page.sections for f in fs}
    history = figures["search history"]
    assert history.data[0]["x"] == [0, 1, 2, 3]
    assert history.layout["xaxis"]["title"]["text"] == "trial"
    labels = [
        d["label"] for d in figures["searched values against the metric"].data[0]["dimensions"]
    ]
    assert sorted(label.removesuffix(" (log)") for label in labels[:-1]) == [
        "optimizer.lr",
        "training.batch_size",
    ]  # the seed (a trial's own) left out
    assert labels[-1] == pages._rank_key(page.comparison)  # type: ignore[arg-type]
