"""The core stays free of Stripe, SQL, schedulers and web frameworks, and
builds nothing at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "onboarding_fsm"
FORBIDDEN = {"stripe", "sqlalchemy", "alembic", "apscheduler", "starlette", "fastapi", "uvicorn", "flask", "django", "psycopg", "httpx", "requests"}  # fmt: skip


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
