"""The shape the code keeps: a core free of Stripe, SQL, schedulers and web
frameworks that builds nothing at import time; small modules; a thin
service layer; no reaching into another module's private names; no import
cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli.layout import imported_names, module_name

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "onboarding_fsm"
PACKAGES = ("onboarding_fsm", "adapters")
FORBIDDEN = {"stripe", "sqlalchemy", "alembic", "apscheduler", "starlette", "fastapi", "uvicorn", "flask", "django", "psycopg", "httpx", "requests"}  # fmt: skip
MAX_MODULE_LINES = 400
MAX_ENGINE_METHOD_LINES = 40
#: underscore names that are public API of a library (SQLAlchemy rows, namedtuples)
PUBLIC_UNDERSCORE = {"_mapping", "_asdict", "_replace", "_fields", "_make"}


def sources(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py") if "migrations" not in p.parts)


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports(path: Path) -> None:
    roots = imported_roots(path)
    assert not roots & FORBIDDEN, f"{path.name} imports {sorted(roots & FORBIDDEN)}"
    if path.name != "bootstrap.py":
        assert "adapters" not in roots, f"only bootstrap may import adapters ({path.name})"


def test_importing_the_package_builds_and_loads_nothing_heavy() -> None:
    code = (
        "import sys, onboarding_fsm\n"
        "from onboarding_fsm.machine import shared_machine\n"
        "heavy = [m for m in ('stripe', 'sqlalchemy', 'alembic', 'apscheduler', 'adapters') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert shared_machine.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_modules_stay_small() -> None:
    big = {
        module_name(p): n
        for p in sources(*PACKAGES)
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}, f"modules over {MAX_MODULE_LINES} lines: split them by idea"


def test_engine_methods_stay_thin() -> None:
    tree = ast.parse((CORE / "engine.py").read_text("utf-8"))
    [engine] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Engine"]
    long = {
        f.name: (f.end_lineno or f.lineno) - f.lineno + 1
        for f in engine.body
        if isinstance(f, ast.FunctionDef) and (f.end_lineno or f.lineno) - f.lineno + 1 > MAX_ENGINE_METHOD_LINES
    }
    assert long == {}, "Engine methods load, decide (one pure call), save, observe: move the rest into a decision"


def private_reaches(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield f"line {node.lineno}: from {node.module} import {alias.name}"
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if node.attr in PUBLIC_UNDERSCORE:
                continue
            yield f"line {node.lineno}: {ast.unparse(node)}"


@pytest.mark.parametrize("path", sources(*PACKAGES, "tests", "bench"), ids=module_name)
def test_no_module_reaches_into_another_ones_private_names(path: Path) -> None:
    assert list(private_reaches(path)) == []


def module_level(tree: ast.Module) -> Iterator[ast.stmt]:
    """Statements run at import, and those written for the type checker (a
    cycle there is a design cycle too); not those inside functions."""
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from node.body
        else:
            yield node


def top_level_imports(path: Path) -> Iterator[str]:
    """Modules ``path`` depends on as a module (imports inside functions are deferred wiring)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in module_level(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from imported_names(node, package)


def ancestors(module: str) -> set[str]:
    """A module's packages: Python initialises them first, importing them is no cycle."""
    parts = module.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts) + 1)}


def test_no_import_cycles() -> None:
    modules = {module_name(p): p for p in sources(*PACKAGES)}
    graph = {m: {i for i in top_level_imports(p) if i in modules and i not in ancestors(m)} for m, p in modules.items()}
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(node) :], node]))
        if node in done:
            return
        for child in sorted(graph[node]):
            visit(child, [*trail, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
