"""The package's rooms import one way: cli -> defs -> analytics, sources, insights -> storage (README "Code map")."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "orders_pipeline"

# room -> the rooms (and third-party top-level packages) it may never import
FORBIDDEN = {
    "storage": {"cli", "defs", "definitions", "analytics", "sources", "insights", "simulator", "dagster"},
    "sources": {"cli", "defs", "definitions", "analytics", "insights", "simulator", "dagster", "duckdb"},
    "simulator": {"cli", "defs", "definitions", "analytics", "sources", "insights", "storage", "dagster"},
    "analytics": {"cli", "defs", "definitions", "insights", "simulator", "dagster"},
    "insights": {"cli", "defs", "definitions", "analytics", "sources", "simulator", "dagster"},
    "defs": {"cli"},
}
ANALYTICS_MAY_READ_FROM_SOURCES = {"orders_pipeline.sources.raw_schema"}  # the shared raw schema, nothing else


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def room_of(module: str) -> str | None:
    """`orders_pipeline.sources.mws.client` -> `sources`; a third-party module -> its top-level name."""
    parts = module.split(".")
    return parts[1] if parts[0] == "orders_pipeline" and len(parts) > 1 else parts[0]


def violations(room: str) -> list[str]:
    """The imports of a room's modules that point the wrong way."""
    found = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for module in sorted(imports_of(path)):
            target = room_of(module)
            allowed_exception = room == "analytics" and module in ANALYTICS_MAY_READ_FROM_SOURCES
            if target in FORBIDDEN[room] and not allowed_exception:
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    return found


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_imports_point_one_way(room):
    assert violations(room) == []


def test_the_check_sees_a_wrong_way_import(tmp_path, monkeypatch):
    """A source module importing Dagster is reported (the check can fail)."""
    fake = tmp_path / "orders_pipeline"
    (fake / "sources").mkdir(parents=True)
    (fake / "sources" / "leaky.py").write_text("import dagster as dg\nfrom orders_pipeline.analytics import build\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert violations("sources") == [
        "orders_pipeline/sources/leaky.py imports dagster",
        "orders_pipeline/sources/leaky.py imports orders_pipeline.analytics",
    ]


def test_nothing_is_compiled():
    assert not list(PACKAGE.rglob("*.c")) and not (PACKAGE.parent / "setup.py").exists()


def test_no_module_is_over_400_lines():
    lengths = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: lines for name, lines in lengths.items() if lines > 400} == {}
