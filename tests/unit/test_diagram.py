"""The committed diagrams are exactly what the machine definition generates."""

from __future__ import annotations

from pathlib import Path

from onboarding_fsm.diagram import render
from onboarding_fsm.machine import EDGES

DIAGRAMS = Path(__file__).resolve().parents[2] / "diagrams"


def test_committed_diagrams_are_current() -> None:
    for path, text in render(DIAGRAMS).items():
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
