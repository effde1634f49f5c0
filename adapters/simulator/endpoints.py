"""Webhook endpoints (``/v1/webhook_endpoints``): what a platform's key
creates, lists, retrieves, updates and deletes.

Shaped by Stripe's OpenAPI description (API 2024-04-10) and checked against
it (tests/contract/test_openapi.py): the object has no ``connect`` field — a
Connect endpoint (created with ``connect=true``) carries the platform's
Connect application id in ``application``, null on a platform endpoint;
``secret`` is returned at creation only; ``status`` is ``enabled`` or
``disabled`` (``disabled=true`` on update); a list is newest first with
Stripe's cursors. ``connect`` is a create parameter only. Each platform sees
its own endpoints. The registry is what the API reports (the self-check
reads it); events still go to the simulator's one sink
(``Simulator.connect``), whatever is registered.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from onboarding_fsm.errors import StripeRequestFailed

from . import checks
from .errors import invalid, request_id
from .platforms import Platform

CREATE_PARAMS = frozenset({"api_version", "connect", "description", "enabled_events", "expand", "metadata", "url"})
UPDATE_PARAMS = frozenset({"description", "disabled", "enabled_events", "expand", "metadata", "url"})
LIST_PARAMS = frozenset({"ending_before", "expand", "limit", "starting_after"})
#: ``*`` or a dotted event type (``account.updated``, ``v2.core.event_destination.ping``…)
_EVENT = re.compile(r"\*|[a-z0-9_]+(\.[a-z0-9_]+)+\Z")
_ALPHABET = string.ascii_letters + string.digits


@dataclass
class SimEndpoint:
    id: str
    platform: str
    url: str
    enabled_events: list[str]
    connect: bool
    created: int
    description: str | None = None
    api_version: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    disabled: bool = False


@dataclass
class WebhookEndpoints:
    """Every platform's endpoints, in creation order."""

    all: dict[str, SimEndpoint] = field(default_factory=dict)

    def new_id(self) -> str:
        """``we_`` and 24 letters and digits (not from the world's seeded
        generator: registering an endpoint leaves account ids as they were)."""
        return "we_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def render(endpoint: SimEndpoint, platform: Platform, *, secret: str | None = None) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "api_version": endpoint.api_version,
        "application": platform.application["id"] if endpoint.connect else None,
        "created": endpoint.created,
        "description": endpoint.description,
        "enabled_events": list(endpoint.enabled_events),
        "livemode": False,
        "metadata": dict(endpoint.metadata),
        "status": "disabled" if endpoint.disabled else "enabled",
        "url": endpoint.url,
    }
    if secret is not None:
        rendered["secret"] = secret
    return rendered


def create(
    registry: WebhookEndpoints, platform: Platform, params: Mapping[str, Any], now: int, secret: str
) -> dict[str, Any]:
    """``POST /v1/webhook_endpoints``: ``url`` and ``enabled_events`` required."""
    checks.known(params, CREATE_PARAMS)
    for name in ("url", "enabled_events"):
        if params.get(name) in (None, ""):
            raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
    endpoint = SimEndpoint(
        id=registry.new_id(),
        platform=platform.name,
        url=_url(params["url"]),
        enabled_events=_events(params["enabled_events"]),
        connect=_boolean(params.get("connect", False), "connect"),
        created=now,
        description=_description(params.get("description")),
        api_version=_text(params.get("api_version"), "api_version"),
        metadata=_metadata(params.get("metadata"), {}),
    )
    registry.all[endpoint.id] = endpoint
    return render(endpoint, platform, secret=secret)  # the endpoint's secret: only now, as at Stripe


def listing(registry: WebhookEndpoints, platform: Platform, params: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /v1/webhook_endpoints``: newest first, ``limit`` 1-100 (10), one cursor."""
    checks.known(params, LIST_PARAMS)
    query = checks.list_query({k: v for k, v in params.items() if k != "expand"})
    ordered = [e for e in reversed(registry.all.values()) if e.platform == platform.name]
    page, has_more = query.page(ordered, [e.id for e in ordered], "webhook endpoint")
    data = [render(e, platform) for e in page]
    return {"object": "list", "data": data, "has_more": has_more, "url": "/v1/webhook_endpoints"}


def retrieve(registry: WebhookEndpoints, platform: Platform, endpoint_id: str) -> dict[str, Any]:
    """``GET /v1/webhook_endpoints/{id}``."""
    return render(_mine(registry, platform, endpoint_id), platform)


def update(
    registry: WebhookEndpoints, platform: Platform, endpoint_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST /v1/webhook_endpoints/{id}``: ``enabled_events`` replaces the list whole."""
    endpoint = _mine(registry, platform, endpoint_id)
    checks.known(params, UPDATE_PARAMS)
    url = _url(params["url"]) if "url" in params else endpoint.url
    events = _events(params["enabled_events"]) if "enabled_events" in params else endpoint.enabled_events
    disabled = _boolean(params["disabled"], "disabled") if "disabled" in params else endpoint.disabled
    metadata = _metadata(params.get("metadata"), endpoint.metadata)
    endpoint.url, endpoint.enabled_events, endpoint.disabled, endpoint.metadata = url, events, disabled, metadata
    if "description" in params:
        endpoint.description = _description(params["description"])
    return render(endpoint, platform)


def delete(registry: WebhookEndpoints, platform: Platform, endpoint_id: str) -> dict[str, Any]:
    """``DELETE /v1/webhook_endpoints/{id}``."""
    endpoint = _mine(registry, platform, endpoint_id)
    del registry.all[endpoint.id]
    return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}


# --- parameters ----------------------------------------------------------------------


def _mine(registry: WebhookEndpoints, platform: Platform, endpoint_id: str) -> SimEndpoint:
    endpoint = registry.all.get(endpoint_id)
    if endpoint is None or endpoint.platform != platform.name:
        raise StripeRequestFailed(
            f"No such webhook endpoint: '{endpoint_id}'",
            http_status=404,
            code="resource_missing",
            request_id=request_id(),
        )
    return endpoint


def _url(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(f"Invalid URL: {value}", "url", "url_invalid")
    return str(value)


def _events(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise invalid("Invalid array", "enabled_events")
    for n, name in enumerate(value):
        if not isinstance(name, str) or not _EVENT.match(name):
            raise invalid(f"Invalid enabled_events[{n}]: must be a known event type", f"enabled_events[{n}]")
    return [str(v) for v in dict.fromkeys(value)]


def _boolean(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise invalid(f"Invalid boolean: {value}", param)


def _text(value: Any, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value}", param)
    return value


def _description(value: Any) -> str | None:
    return _text(value, "description")


def _metadata(value: Any, current: Mapping[str, str]) -> dict[str, str]:
    """Stripe's rules: ``""`` clears all; a key set to ``""`` is removed."""
    if value is None:
        return dict(current)
    if value == "":
        return {}
    if not isinstance(value, Mapping):
        raise invalid("Invalid object", "metadata")
    merged = dict(current)
    for key, item in value.items():
        if item in ("", None):
            merged.pop(str(key), None)
        else:
            merged[str(key)] = str(item)
    return merged
