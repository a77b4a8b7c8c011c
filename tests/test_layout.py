"""The package's rooms import one way: cli -> defs -> analytics, sources, insights -> storage (README "Code map").

Inside `sources/`, the folder of one API never imports another's: what both need lives in `sources/` itself.
"""

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


def api_folders() -> list[str]:
    """The folders of `sources/` with one API each (`mws`, `sp_api`): packages below the shared pieces."""
    return sorted(path.parent.name for path in (PACKAGE / "sources").glob("*/__init__.py"))


def modules_named(path: Path) -> set[str]:
    """Every module a file names in an import, relative ones resolved, `from package import module` included."""
    package = path.relative_to(PACKAGE.parent).parent.parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            folder = PACKAGE.parent.joinpath(*module.split("."))
            found.update(f"{module}.{alias.name}" for alias in node.names if _is_module(folder / alias.name))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _is_module(path: Path) -> bool:
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def cross_api_imports(folder: str) -> list[str]:
    """The imports from one API folder of `sources/` into another: shared pieces live in `sources/` itself."""
    others = {f"orders_pipeline.sources.{other}" for other in api_folders() if other != folder}
    found = []
    for path in sorted((PACKAGE / "sources" / folder).rglob("*.py")):
        for module in sorted(modules_named(path)):
            if any(module == other or module.startswith(other + ".") for other in others):
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    return found


def test_each_api_has_its_folder():
    assert {"mws", "sp_api"} <= set(api_folders())


@pytest.mark.parametrize("folder", api_folders())
def test_api_folders_do_not_import_each_other(folder):
    assert cross_api_imports(folder) == []


def test_the_check_sees_an_api_importing_another(tmp_path, monkeypatch):
    """SP-API code reaching into MWS (absolute, `from ... import module` or relative) is reported, and vice versa."""
    fake = tmp_path / "orders_pipeline"
    for folder in ("mws", "sp_api"):
        (fake / "sources" / folder).mkdir(parents=True)
        (fake / "sources" / folder / "__init__.py").write_text("")
    (fake / "sources" / "values.py").write_text("")
    (fake / "sources" / "mws" / "schema.py").write_text("")
    (fake / "sources" / "sp_api" / "leaky.py").write_text(
        "from orders_pipeline.sources.mws.values import decode_timestamp\n"
        "from orders_pipeline.sources import mws\n"
        "from ..mws import schema\n"
        "from orders_pipeline.sources.values import convert_columns\n"
    )
    (fake / "sources" / "mws" / "leaky.py").write_text("import orders_pipeline.sources.sp_api.throttle\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert cross_api_imports("sp_api") == [
        "orders_pipeline/sources/sp_api/leaky.py imports orders_pipeline.sources.mws",
        "orders_pipeline/sources/sp_api/leaky.py imports orders_pipeline.sources.mws.schema",
        "orders_pipeline/sources/sp_api/leaky.py imports orders_pipeline.sources.mws.values",
    ]
    assert cross_api_imports("mws") == [
        "orders_pipeline/sources/mws/leaky.py imports orders_pipeline.sources.sp_api.throttle",
    ]


def test_nothing_is_compiled():
    assert not list(PACKAGE.rglob("*.c")) and not (PACKAGE.parent / "setup.py").exists()


def test_no_module_is_over_400_lines():
    lengths = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: lines for name, lines in lengths.items() if lines > 400} == {}
