"""The code's layout as a picture, generated from the source tree's imports.

``onboarding-fsm diagram`` writes it beside the state machine; a test fails
when the committed copy differs, so the picture cannot drift from the code.
Every core module must be placed in one of ``ROLES`` (a new module fails
the check until someone decides what it is); adapters are drawn by package.
Edges are imports: solid for a module's own imports, dashed for the wiring
``bootstrap`` does inside its functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import onboarding_fsm

ROOT = Path(onboarding_fsm.__file__).resolve().parents[1]

#: the hexagon: what each core module is
ROLES: dict[str, tuple[str, ...]] = {
    "service layer": (
        "engine",
        "creating",
        "ingestion",
        "sweeping",
        "throttle",
        "limits",
        "service",
        "reconcile",
        "retention",
        "auditing",
        "delivery",
        "operations",
        "reprocessing",
        "issuing",
        "syncing",
        "updating",
        "attention",
    ),
    "pure decisions": (
        "classify",
        "webhooks",
        "deadlines",
        "links",
        "creation",
        "moves",
        "audit",
        "checkpoints",
        "exports",
        "exportcheck",
        "selfcheck",
        "outbox",
        "updates",
    ),
    "ports": ("ports",),
    "wiring": ("bootstrap", "settings", "settings_source", "config"),
}
#: value types, enums, errors and the clock: imported by everything, drawn as one box, no edges
DOMAIN = (
    "account", "snapshot", "states", "machine", "policy", "events", "timers", "errors", "clock", "redact", "inputs",
    "bounds", "diagram", "__init__", "queries", "runs",
)  # fmt: skip
#: imported for their value types by most modules: their incoming edges are left out too
QUIET = ("audit", "config")
DRIVING = ("cli", "http", "worker")
DRIVEN = ("stripe", "stripe_wire", "simulator", "sqlalchemy_store")


def _node(module: str) -> str | None:
    """The box a module belongs to (None: a domain type, not drawn as an edge end)."""
    parts = module.split(".")
    if parts[0] == "adapters" and len(parts) > 1:
        return f"adapters.{parts[1]}"
    if parts[0] == "onboarding_fsm":
        name = parts[1] if len(parts) > 1 else "__init__"
        return None if name in DOMAIN else f"onboarding_fsm.{name}"
    return None


def _imports(path: Path, module: str, modules: set[str]) -> Iterator[tuple[str, bool]]:
    """(imported module, inside a function) for every import of a project module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text("utf-8"))
    deferred = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)}
    checking = {
        id(n)
        for i in tree.body
        if isinstance(i, ast.If) and "TYPE_CHECKING" in ast.unparse(i.test)
        for n in ast.walk(i)
    }
    for node in ast.walk(tree):
        if id(node) in checking or not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        named = imported_names(node, package)
        submodules = [n for n in named[1:] if n in modules]
        wholly = isinstance(node, ast.ImportFrom) and len(submodules) == len(node.names)
        for name in submodules if wholly else named:
            if name in modules:
                yield name, id(node) in deferred


def imported_names(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """Absolute names an import statement in ``package`` refers to: for
    ``from x import a, b`` the module ``x`` first, then ``x.a`` and ``x.b``
    (which may be modules or attributes)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unplaced() -> list[str]:
    """Core modules no role or the domain box claims."""
    placed = {m for members in ROLES.values() for m in members} | set(DOMAIN)
    return sorted(p.stem for p in (ROOT / "onboarding_fsm").glob("*.py") if p.stem not in placed)


def edges() -> dict[tuple[str, str], bool]:
    """(from box, to box) -> deferred (every import of that pair is inside a function)."""
    paths = [p for pkg in ("onboarding_fsm", "adapters") for p in sorted((ROOT / pkg).rglob("*.py"))]
    paths = [p for p in paths if "migrations" not in p.parts]
    modules = {module_name(p) for p in paths}
    quiet = {f"onboarding_fsm.{m}" for m in QUIET}
    found: dict[tuple[str, str], bool] = {}
    for path in paths:
        source = _node(module_name(path))
        for target_module, deferred in _imports(path, module_name(path), modules):
            target = _node(target_module)
            if source is None or target is None or source == target or target in quiet:
                continue
            found[(source, target)] = found.get((source, target), True) and deferred
    return found


def _id(node: str) -> str:
    return node.replace(".", "_")


def mermaid() -> str:
    lines = ["flowchart LR"]
    lines.append('  subgraph driving["driving adapters (they call the core)"]')
    lines += [f'    {_id("adapters." + a)}["adapters.{a}"]' for a in DRIVING]
    lines.append("  end")
    lines.append('  subgraph core["onboarding_fsm (the core)"]')
    for role, members in ROLES.items():
        lines.append(f'    subgraph {_id(role.replace(" ", "_"))}["{role}"]')
        lines += [f'      {_id("onboarding_fsm." + m)}["{m}"]' for m in members]
        lines.append("    end")
    lines.append(f'    domain["domain types: {", ".join(m for m in DOMAIN if not m.startswith("_"))}"]')
    lines.append("  end")
    lines.append('  subgraph driven["driven adapters (the core calls them)"]')
    lines += [f'    {_id("adapters." + a)}["adapters.{a}"]' for a in DRIVEN]
    lines.append("  end")
    for (source, target), deferred in sorted(edges().items()):
        arrow = "-.->" if deferred else "-->"
        lines.append(f"  {_id(source)} {arrow} {_id(target)}")
    return "\n".join(lines) + "\n"


def render(directory: Path) -> dict[Path, str]:
    """Every generated diagram, by path: the state machine and this layout."""
    from onboarding_fsm.diagram import render as machine

    missing = unplaced()
    if missing:
        raise ValueError(f"core modules without a role in adapters/cli/layout.py: {missing}")
    return {**machine(directory), directory / "layout.md": page()}


def page() -> str:
    return (
        "# Layout\n\nGenerated by `onboarding-fsm diagram` from the imports in the source tree; do not edit.\n"
        "Solid arrows are module imports; dashed ones are the wiring `bootstrap` does when called. "
        f"Every module imports the domain types, and most use {' and '.join(QUIET)} for their values: "
        "those edges are left out.\n\n"
        f"```mermaid\n{mermaid()}```\n"
    )
