"""Stripe's request encoding: form-encoded with bracketed nesting.

``capabilities[card_payments][requested]=true`` becomes
``{"capabilities": {"card_payments": {"requested": "true"}}}``; ``expand[]=x``
and ``expand[0]=x`` become lists. Values stay strings, as Stripe receives
them; the stdlib parses the form, this only rebuilds the nesting.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class WireError(ValueError):
    """A parameter name Stripe would not accept (e.g. unbalanced brackets)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Invalid parameter name: {name}")
        self.param = name


def decode(body: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        match = _KEY.match(name)
        if match is None:
            raise WireError(name)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _put(out, path, value, name)
    result: dict[str, Any] = _listify(out)
    return result


def _put(node: dict[str, Any], path: list[str], value: str, name: str) -> None:
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if part == "":  # name[] appends
            part = str(sum(1 for k in node if k.isdigit()))
        if last:
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise WireError(name)
        node = child


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted
