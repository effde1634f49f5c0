"""The state machine as inline SVG, with one account's path highlighted.

The six states sit at fixed positions; the edges are read from the machine
definition (``onboarding_fsm.machine.EDGES``), one arrow per (from, to) pair
labelled with every trigger that makes it. States and moves the account's
history went through are drawn thick and dark blue, and marked for machines
and tests: ``data-visited``/``data-taken`` attributes and ``visited``/``taken``
classes. No script, no external resource; ``legend`` says the same in text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from onboarding_fsm.audit import Transition
from onboarding_fsm.machine import EDGES, INITIAL
from onboarding_fsm.states import State, Trigger

S = State
WIDTH, HEIGHT = 1000, 520
BOX_W, BOX_H = 192, 46
#: where each state is drawn (centre of its box)
POSITIONS: dict[State, tuple[float, float]] = {
    S.CREATED: (132, 260),
    S.LINK_ISSUED: (370, 110),
    S.RETURNED_INCOMPLETE: (370, 410),
    S.VERIFIED: (640, 110),
    S.PAST_DUE: (640, 410),
    S.DISABLED: (880, 260),
}
START = (14, 260)
TAKEN = "#1d4ed8"
OTHER = "#b8bec8"
#: how far an arrow bows from the straight line, as a share of its length (left of its direction,
#: so A->B and B->A never overlap)
BOW = 0.12
Pair = tuple[State, State]


@dataclass(frozen=True, slots=True)
class Path:
    """What an account's history went through."""

    states: frozenset[State]
    #: (from, to) -> the triggers that made that move
    moves: dict[Pair, tuple[Trigger, ...]]
    born: bool
    current: State | None


def machine_pairs() -> dict[Pair, tuple[Trigger, ...]]:
    """Every (from, to) pair the machine allows, with its triggers."""
    pairs: dict[Pair, list[Trigger]] = {}
    for trigger, sources, dests in EDGES:
        for source in sources:
            for dest in dests:
                triggers = pairs.setdefault((source, dest), [])
                if trigger not in triggers:
                    triggers.append(trigger)
    return {pair: tuple(triggers) for pair, triggers in pairs.items()}


def path_of(history: Sequence[Transition]) -> Path:
    states: set[State] = set()
    moves: dict[Pair, list[Trigger]] = {}
    born = False
    for record in history:
        states.add(record.to_state)
        if record.from_state is None:
            born = born or record.to_state is INITIAL
            continue
        states.add(record.from_state)
        triggers = moves.setdefault((record.from_state, record.to_state), [])
        if record.trigger not in triggers:
            triggers.append(record.trigger)
    current = history[-1].to_state if history else None
    return Path(frozenset(states), {k: tuple(v) for k, v in moves.items()}, born, current)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _clip(centre: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the ray from ``centre`` toward ``toward`` leaves the state's box."""
    (cx, cy), (tx, ty) = centre, toward
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return centre
    scale = min((BOX_W / 2 + 4) / abs(dx) if dx else math.inf, (BOX_H / 2 + 4) / abs(dy) if dy else math.inf)
    return cx + dx * scale, cy + dy * scale


def _curve(source: State, dest: State) -> tuple[str, tuple[float, float]]:
    """The SVG path of an arrow and the point where its label goes."""
    (x1, y1), (x2, y2) = POSITIONS[source], POSITIONS[dest]
    if source is dest:
        above = y1 <= HEIGHT / 2
        edge = y1 - BOX_H / 2 if above else y1 + BOX_H / 2
        lift = -44 if above else 44
        d = f"M {x1 - 22:.1f} {edge:.1f} C {x1 - 44:.1f} {edge + lift:.1f} {x1 + 44:.1f} {edge + lift:.1f} "
        d += f"{x1 + 22:.1f} {edge + (-3 if above else 3):.1f}"
        return d, (x1, edge + lift * 0.9)
    length = math.hypot(x2 - x1, y2 - y1)
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    # the left normal of the direction, in screen coordinates (y grows downwards)
    nx, ny = (y2 - y1) / length, -(x2 - x1) / length
    control = (mx + nx * BOW * length, my + ny * BOW * length)
    start, end = _clip((x1, y1), control), _clip((x2, y2), control)
    d = f"M {start[0]:.1f} {start[1]:.1f} Q {control[0]:.1f} {control[1]:.1f} {end[0]:.1f} {end[1]:.1f}"
    label = (0.25 * start[0] + 0.5 * control[0] + 0.25 * end[0], 0.25 * start[1] + 0.5 * control[1] + 0.25 * end[1])
    return d, label


def _names(triggers: Iterable[Trigger]) -> str:
    return ", ".join(t.value for t in triggers)


def _edge(pair: Pair, triggers: tuple[Trigger, ...], path: Path) -> tuple[str, str]:
    """(the arrow, its label if taken) for one pair."""
    source, dest = pair
    taken = path.moves.get(pair)
    d, (lx, ly) = _curve(source, dest)
    style = (
        f'stroke="{TAKEN}" stroke-width="3.2" marker-end="url(#arrow-taken)"'
        if taken
        else f'stroke="{OTHER}" stroke-width="1.3" stroke-dasharray="5 4" marker-end="url(#arrow)"'
    )
    title = f"{source.value} → {dest.value}: {_names(triggers)}" + (f" (taken: {_names(taken)})" if taken else "")
    arrow = (
        f'<path class="edge{" taken" if taken else ""}" data-edge="{_e(source.value)}->{_e(dest.value)}" '
        f'data-taken="{str(bool(taken)).lower()}" data-triggers="{_e(_names(triggers))}" d="{d}" fill="none" '
        f"{style}><title>{_e(title)}</title></path>"
    )
    label = ""
    if taken:
        label = (
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="12" fill="{TAKEN}" '
            f'stroke="#fff" stroke-width="4" paint-order="stroke">{_e(_names(taken))}</text>'
        )
    return arrow, label


def _state(state: State, path: Path) -> str:
    x, y = POSITIONS[state]
    visited = state in path.states
    current = state is path.current
    if current:
        fill, stroke, width, ink = TAKEN, TAKEN, 3.2, "#fff"
    elif visited:
        fill, stroke, width, ink = "#dbeafe", TAKEN, 3.2, "#0b2a6f"
    else:
        fill, stroke, width, ink = "#f6f7f9", "#9aa1ad", 1.2, "#5b6270"
    classes = "state" + (" visited" if visited else "") + (" current" if current else "")
    note = " (current)" if current else (" (visited)" if visited else "")
    return (
        f'<g class="{classes}" data-state="{_e(state.value)}" data-visited="{str(visited).lower()}" '
        f'data-current="{str(current).lower()}"><title>{_e(state.value + note)}</title>'
        f'<rect x="{x - BOX_W / 2:.1f}" y="{y - BOX_H / 2:.1f}" width="{BOX_W}" height="{BOX_H}" rx="10" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>'
        f'<text x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle" font-size="15" fill="{ink}" '
        f'font-weight="{"bold" if visited else "normal"}">{_e(state.value)}</text></g>'
    )


def _start(path: Path) -> str:
    x, y = START
    target = _clip(POSITIONS[INITIAL], START)
    colour = TAKEN if path.born else OTHER
    marker = "arrow-taken" if path.born else "arrow"
    return (
        f'<g class="start{" taken" if path.born else ""}" data-edge="start->{_e(INITIAL.value)}" '
        f'data-taken="{str(path.born).lower()}"><title>account created</title>'
        f'<circle cx="{x}" cy="{y}" r="7" fill="{colour}"/>'
        f'<path d="M {x + 8} {y} L {target[0]:.1f} {target[1]:.1f}" stroke="{colour}" stroke-width="2.4" '
        f'marker-end="url(#{marker})"/></g>'
    )


def _markers() -> str:
    def marker(name: str, colour: str, size: int) -> str:
        return (
            f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" '
            f'markerWidth="{size}" markerHeight="{size}" '
            f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
        )

    return f"<defs>{marker('arrow', OTHER, 9)}{marker('arrow-taken', TAKEN, 13)}</defs>"


def render(history: Sequence[Transition]) -> str:
    """The diagram with ``history``'s path highlighted (inline SVG markup)."""
    path = path_of(history)
    arrows: list[str] = []
    labels: list[str] = []
    pairs = machine_pairs()
    # untaken first, so taken arrows are drawn over them
    for pair in sorted(pairs, key=lambda p: p in path.moves):
        arrow, label = _edge(pair, pairs[pair], path)
        arrows.append(arrow)
        labels.append(label)
    visited = ", ".join(s.value for s in State if s in path.states) or "none"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="machine" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="machine-title machine-desc" '
        f'style="max-width:{WIDTH}px;font-family:system-ui,sans-serif">'
        '<title id="machine-title">The onboarding state machine</title>'
        f'<desc id="machine-desc">States this account went through: {_e(visited)}.</desc>'
        f"{_markers()}{''.join(arrows)}{_start(path)}{''.join(_state(s, path) for s in State)}"
        f"{''.join(labels)}</svg>"
    )


def legend(history: Sequence[Transition]) -> str:
    """The same in words: how to read the picture, then the path step by step."""
    path = path_of(history)
    pairs = machine_pairs()
    steps: list[str] = []
    for record in history:
        source = record.from_state.value if record.from_state else "(start)"
        outside = record.from_state is not None and (record.from_state, record.to_state) not in pairs
        steps.append(
            f"<li>#{record.seq}: {_e(source)} → {_e(record.to_state.value)} by {_e(record.trigger.value)}"
            + (" <strong>(not an edge of the machine)</strong>" if outside else "")
            + "</li>"
        )
    visited = ", ".join(s.value for s in State if s in path.states) or "none"
    return (
        '<div class="legend"><p><strong>Legend.</strong> Thick dark-blue boxes and solid arrows: the states and '
        "moves this account went through (labelled with the triggers that made them); the filled box is its "
        "current state. Grey dashed arrows: the other moves the machine allows (hover an arrow for its "
        f"triggers).</p><p>States visited: {_e(visited)}.</p>"
        f'<details><summary>Path, step by step ({len(steps)})</summary><ol class="path">{"".join(steps)}</ol>'
        "</details></div>"
    )
