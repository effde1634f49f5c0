"""The committed diagrams are exactly what the machine definition and the
source tree generate."""

from __future__ import annotations

from pathlib import Path

from adapters.cli import layout
from onboarding_fsm.diagram import render
from onboarding_fsm.machine import EDGES

DIAGRAMS = Path(__file__).resolve().parents[2] / "diagrams"


def test_committed_diagrams_are_current() -> None:
    for path, text in layout.render(DIAGRAMS).items():
        assert path.exists(), f"{path} missing: run `onboarding-fsm diagram`"
        assert path.read_text("utf-8") == text, f"{path} is stale: run `onboarding-fsm diagram`"


def test_every_edge_is_drawn() -> None:
    body = next(iter(render(DIAGRAMS).values()))
    for trigger, sources, dests in EDGES:
        for source in sources:
            for dest in dests:
                line = next(
                    line for line in body.splitlines() if line.strip().startswith(f"{source.value} --> {dest.value}:")
                )
                assert trigger.value in line


def test_every_core_module_has_a_place_in_the_layout() -> None:
    assert layout.unplaced() == []


def test_the_layout_shows_the_hexagon() -> None:
    edges = layout.edges()
    assert edges[("onboarding_fsm.engine", "onboarding_fsm.ingestion")] is False  # a module import
    assert edges[("onboarding_fsm.bootstrap", "adapters.stripe")] is True  # wiring, when called
    core = [e for e in edges if e[0].startswith("onboarding_fsm.") and e[0] != "onboarding_fsm.bootstrap"]
    assert all(target.startswith("onboarding_fsm.") for _, target in core), "only bootstrap reaches adapters"
