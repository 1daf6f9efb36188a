"""The package's layers point one way: config -> data -> engine -> train -> runs -> api -> cli.

Read off the source with `ast` (nothing is imported), so a new import against the grain
fails here, naming the module and what it imports.
"""

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "mlpcli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The mlpcli modules a file imports (at the top or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mlpcli":
                found |= {f"mlpcli.{alias.name}" for alias in node.names}
            elif node.module.startswith("mlpcli."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mlpcli.")}
    return found - {"mlpcli.__version__"}


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_the_graph_was_read():
    assert "mlpcli.cli" in GRAPH and "mlpcli.engine.model" in GRAPH
    assert "mlpcli.api" in GRAPH["mlpcli.cli"]


@pytest.mark.parametrize("module", [m for m in GRAPH if _in(m, "mlpcli.engine")])
def test_the_engine_knows_nothing_of_configs_files_or_terminals(module):
    outside = {m for m in GRAPH[module] if not _in(m, "mlpcli.engine")}
    assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize("module", [m for m in GRAPH if _in(m, "mlpcli.data")])
def test_data_does_not_reach_up_into_training(module):
    upward = {
        m
        for m in GRAPH[module]
        if not (_in(m, "mlpcli.data") or m in ("mlpcli.config", "mlpcli.errors"))
    }
    assert not upward, f"{module} imports {sorted(upward)}"


def test_the_cli_calls_only_the_api():
    """Each command parses, calls one API function and renders: its only library is mlpcli.api
    (besides the rendering in display, the error types and the signal plumbing)."""
    allowed = {"mlpcli.api", "mlpcli.display", "mlpcli.errors", "mlpcli.signals"}
    assert GRAPH["mlpcli.cli"] <= allowed, sorted(GRAPH["mlpcli.cli"] - allowed)


@pytest.mark.parametrize(
    ("layer", "users"),
    [
        ("mlpcli.cli", {"mlpcli.__main__"}),
        ("mlpcli.api", {"mlpcli", "mlpcli.cli"}),
        ("mlpcli.display", {"mlpcli.api", "mlpcli.cli", "mlpcli.report"}),
    ],
)
def test_nothing_below_a_layer_imports_it(layer, users):
    importers = {m for m, deps in GRAPH.items() if layer in deps}
    assert importers <= users, f"{layer} imported by {sorted(importers - users)}"
